#!/usr/bin/python3
"""torch_baseline.py — the PyTorch eager CPU baseline for `ssmlab bench`.

A plain Mamba-1 (ssmlab-math(7) MODEL) written with ordinary torch ops; the selective scan
is a sequential Python loop over time, the way the reference (non-CUDA) paths
of mamba_ssm and transformers run it.  It times the same cases as
`ssmlab bench` (train-small: forward + backward + AdamW; infer-130m: one
no-grad forward of the mamba-130m shape) with the same method (warmup passes,
then timed passes, wall clock) and prints the same CSV/JSONL columns with
impl=pytorch.  Run it with Debian's /usr/bin/python3, which has torch.
"""
import argparse
import ctypes
import json
import math
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

CASES = {
    # name: model shape, batch, length, training?
    "train-small": dict(d_model=128, n_layer=4, vocab=256, batch=8, seq_len=256,
                        train=True, steps=5, warmup=2),
    "infer-130m": dict(d_model=768, n_layer=24, vocab=50280, batch=1, seq_len=512,
                       train=False, steps=1, warmup=1),
}
D_STATE, EXPAND, D_CONV, NORM_EPS = 16, 2, 4, 1e-5

COLUMNS = ["case", "impl", "threads", "tokens_per_s", "peak_mib", "blas_config",
           "blas_core", "omp_threads", "blas_threads", "batch", "seq_len",
           "steps", "warmup", "seconds", "n_params", "best_tokens_per_s"]


def find_openblas():
    """The OpenBLAS library torch loaded (from /proc/self/maps), or None."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                if "openblas" in os.path.basename(path) and ".so" in path:
                    return ctypes.CDLL(path)
    except OSError:
        pass
    return None


def blas_info(lib):
    if lib is None:
        return "torch %s (no OpenBLAS loaded)" % torch.__version__, "unknown", 0
    lib.openblas_get_config.restype = ctypes.c_char_p
    lib.openblas_get_corename.restype = ctypes.c_char_p
    return (lib.openblas_get_config().decode().strip(),
            lib.openblas_get_corename().decode().strip(),
            lib.openblas_get_num_threads())


class RMSNorm(torch.nn.Module):
    def __init__(self, d):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(d))

    def forward(self, x):
        rstd = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + NORM_EPS)
        return x * rstd * self.weight


class Mixer(torch.nn.Module):
    """One Mamba-1 mixer, ssmlab-math(7) MODEL steps 1-6."""

    def __init__(self, d_model, n_layer):
        super().__init__()
        E, N, K = EXPAND * d_model, D_STATE, D_CONV
        R = math.ceil(d_model / 16)
        self.E, self.N, self.R = E, N, R
        self.in_proj = torch.nn.Linear(d_model, 2 * E, bias=False)
        self.conv1d = torch.nn.Conv1d(E, E, K, groups=E, padding=K - 1)
        self.x_proj = torch.nn.Linear(E, R + 2 * N, bias=False)
        self.dt_proj = torch.nn.Linear(R, E)
        self.out_proj = torch.nn.Linear(E, d_model, bias=False)
        with torch.no_grad():
            self.out_proj.weight /= math.sqrt(n_layer)
            bound = R ** -0.5
            self.dt_proj.weight.uniform_(-bound, bound)
            dt = torch.exp(torch.rand(E) * (math.log(1e-1) - math.log(1e-3))
                           + math.log(1e-3)).clamp(min=1e-4)
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        a = torch.arange(1, N + 1, dtype=torch.float32).repeat(E, 1)
        self.A_log = torch.nn.Parameter(torch.log(a))          # (E, N)
        self.D = torch.nn.Parameter(torch.ones(E))              # (E)

    def scan(self, u, delta, Bm, Cm):
        """Sequential selective scan. u, delta (B, L, E); Bm, Cm (B, L, N)."""
        Bsz, L, E = u.shape
        A = -torch.exp(self.A_log)                                    # (E, N)
        dA = torch.exp(delta.unsqueeze(-1) * A)                       # (B, L, E, N)
        dBu = (delta * u).unsqueeze(-1) * Bm.unsqueeze(2)             # (B, L, E, N)
        h = u.new_zeros(Bsz, E, self.N)                               # (B, E, N)
        ys = []
        # unbind, not dA[:, t]: indexing a slice per step would make autograd
        # build a full (B, L, E, N) zero gradient per step (O(L^2) backward).
        for dA_t, dBu_t, C_t in zip(dA.unbind(1), dBu.unbind(1), Cm.unbind(1)):
            h = dA_t * h + dBu_t
            ys.append(torch.bmm(h, C_t.unsqueeze(-1)).squeeze(-1))    # (B, E)
        y = torch.stack(ys, dim=1)                                    # (B, L, E)
        return y + u * self.D

    def forward(self, x):
        L = x.shape[1]
        u, z = self.in_proj(x).chunk(2, dim=-1)                       # (B, L, E) each
        u = self.conv1d(u.transpose(1, 2))[..., :L].transpose(1, 2)   # causal conv
        u = F.silu(u)
        dbc = self.x_proj(u)                                          # (B, L, R+2N)
        dt, Bm, Cm = torch.split(dbc, [self.R, self.N, self.N], dim=-1)
        delta = F.softplus(self.dt_proj(dt))                          # (B, L, E)
        y = self.scan(u, delta, Bm, Cm)
        return self.out_proj(y * F.silu(z))


class Mamba(torch.nn.Module):
    def __init__(self, d_model, n_layer, vocab):
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab, d_model)
        torch.nn.init.normal_(self.embedding.weight, std=0.02)
        self.norms = torch.nn.ModuleList(RMSNorm(d_model) for _ in range(n_layer))
        self.mixers = torch.nn.ModuleList(Mixer(d_model, n_layer) for _ in range(n_layer))
        self.norm_f = RMSNorm(d_model)

    def forward(self, tokens):
        x = self.embedding(tokens)
        for norm, mixer in zip(self.norms, self.mixers):
            x = x + mixer(norm(x))
        return F.linear(self.norm_f(x), self.embedding.weight)       # tied head


def run_case(name, spec, args):
    torch.manual_seed(1234)
    model = Mamba(spec["d_model"], spec["n_layer"], spec["vocab"])
    n_params = sum(p.numel() for p in model.parameters())
    Bsz, L, V = spec["batch"], spec["seq_len"], spec["vocab"]
    tokens = torch.randint(0, V, (Bsz, L))
    targets = torch.randint(0, V, (Bsz, L))
    steps = args.steps if args.steps is not None else spec["steps"]
    warmup = args.warmup if args.warmup is not None else spec["warmup"]

    if spec["train"]:
        # ssmlab's AdamW defaults: betas (0.9, 0.95), decay 0.1, clip at norm 1.
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95),
                                eps=1e-8, weight_decay=0.1)

        def step():
            logits = model(tokens)
            loss = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))
            opt.zero_grad(set_to_none=False)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
    else:
        model.eval()

        def step():
            with torch.no_grad():
                model(tokens)

    for i in range(warmup):
        step()
        print("pytorch %s: warmup %d/%d" % (name, i + 1, warmup), file=sys.stderr)
    t0 = time.perf_counter()
    best = float("inf")
    for _ in range(steps):
        t = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - t)
    seconds = time.perf_counter() - t0
    return dict(n_params=n_params, batch=Bsz, seq_len=L, steps=steps,
                warmup=warmup, seconds=seconds,
                tokens_per_s=Bsz * L * steps / seconds if seconds > 0 else 0.0,
                best_tokens_per_s=Bsz * L / best if best > 0 else 0.0)


def emit(row, fmt):
    if fmt == "jsonl":
        print(json.dumps({k: row[k] for k in COLUMNS}))
        return
    cells = []
    for k in COLUMNS:
        v = row[k]
        if isinstance(v, float):
            v = "%.1f" % v if k.endswith("tokens_per_s") else "%.6g" % v
        v = str(v)
        if any(c in v for c in ',"\n'):
            v = '"' + v.replace('"', '""') + '"'
        cells.append(v)
    print(",".join(cells))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", default="all", choices=list(CASES) + ["all"])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--format", default="csv", choices=["csv", "jsonl"])
    ap.add_argument("--no-header", action="store_true")
    args = ap.parse_args()
    if args.threads < 1 or (args.steps is not None and args.steps < 1) \
            or (args.warmup is not None and args.warmup < 0):
        ap.error("--threads and --steps must be >= 1, --warmup >= 0")

    torch.set_num_threads(args.threads)
    lib = find_openblas()
    if lib is not None:
        lib.openblas_set_num_threads(args.threads)
    config, core, blas_threads = blas_info(lib)
    print("pytorch %s, %d threads, BLAS: %s" % (torch.__version__, args.threads, config),
          file=sys.stderr)

    if args.format == "csv" and not args.no_header:
        print(",".join(COLUMNS))
    names = list(CASES) if args.case == "all" else [args.case]
    for name in names:
        r = run_case(name, CASES[name], args)
        r.update(case=name, impl="pytorch", threads=args.threads,
                 omp_threads=torch.get_num_threads(), blas_threads=blas_threads,
                 blas_config=config, blas_core=core,
                 peak_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
        emit(r, args.format)
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
