#!/usr/bin/python3
"""torch_baseline.py — the PyTorch eager CPU baseline for `ssmlab bench`.

A plain Mamba-1 (ssmlab-math(7) MODEL) written with ordinary torch ops.  The
selective scan is either a sequential Python loop over time (--scan loop, the
way the reference (non-CUDA) paths of mamba_ssm and transformers run it) or
a log-depth parallel scan over time (--scan pscan: recursive pairing of
adjacent steps, log2 L levels of whole-tensor ops, O(L) work).  It times the
same cases as `ssmlab bench` (train-small and train-130m: forward + backward
+ AdamW; infer-130m: one no-grad forward; prefill-130m: the same with the
head on the last position only; gen-130m: a prompt's forward that keeps
each layer's state, then recurrent decode steps in torch, the same math as
ssm_model_step) with the same method (warmup passes, then timed passes,
wall clock) and prints the same CSV/JSONL columns with impl=pytorch and
variant SCAN-MALLOC (MALLOC "fairmalloc" when MALLOC_MMAP_MAX_=0 is set for
this process, else "glibcmalloc").  Run it with Debian's /usr/bin/python3,
which has torch.

The Mamba-2 cases (m2-train-small, m2-prefill-130m, m2-gen-130m; the
shapes of `ssmlab bench`'s) run a plain Mamba-2 (ssmlab-math(7) MAMBA-2)
whose SSD scan is chunked (--scan ssd, their only scan): inside each chunk
the decay-masked C B^T applied to x, for all chunks at once; across chunks
a loop over chunk states; decode is a recurrent step per token.
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
    # name: model shape, batch, length (the prompt's for gen), pass, default steps
    "train-small": dict(d_model=128, n_layer=4, vocab=256, batch=8, seq_len=256,
                        kind="train", steps=5, warmup=2),
    "train-130m": dict(d_model=768, n_layer=24, vocab=50280, batch=1, seq_len=512,
                       kind="train", steps=1, warmup=1),
    "infer-130m": dict(d_model=768, n_layer=24, vocab=50280, batch=1, seq_len=512,
                       kind="infer", steps=1, warmup=1),
    "prefill-130m": dict(d_model=768, n_layer=24, vocab=50280, batch=1, seq_len=512,
                         kind="prefill", steps=2, warmup=1),
    "gen-130m": dict(d_model=768, n_layer=24, vocab=50280, batch=1, seq_len=512,
                     kind="gen", steps=32, warmup=2),
    # Mamba-2: the m2-bytes-small layer at train-small's batch, and mamba2-130m
    "m2-train-small": dict(d_model=128, n_layer=4, vocab=256, batch=8, seq_len=256,
                           kind="train", steps=5, warmup=2,
                           m2=dict(d_state=16, head_dim=32, n_groups=2, chunk=64)),
    "m2-prefill-130m": dict(d_model=768, n_layer=24, vocab=50280, batch=1, seq_len=512,
                            kind="prefill", steps=2, warmup=1,
                            m2=dict(d_state=128, head_dim=64, n_groups=1, chunk=256)),
    "m2-gen-130m": dict(d_model=768, n_layer=24, vocab=50280, batch=1, seq_len=512,
                        kind="gen", steps=32, warmup=2,
                        m2=dict(d_state=128, head_dim=64, n_groups=1, chunk=256)),
}
D_STATE, EXPAND, D_CONV, NORM_EPS = 16, 2, 4, 1e-5

COLUMNS = ["case", "impl", "threads", "tokens_per_s", "peak_mib", "blas_config",
           "blas_core", "omp_threads", "blas_threads", "batch", "seq_len",
           "steps", "warmup", "seconds", "n_params", "best_tokens_per_s",
           "variant", "value", "unit", "gemm_gflops", "weights", "weight_bytes", "read_gbs"]


def scan_loop(a, b):
    """h_t = a_t * h_{t-1} + b_t over dim 1 (h_{-1} = 0), one step at a time."""
    h = torch.zeros_like(b[:, 0])
    hs = []
    # unbind, not a[:, t]: indexing a slice per step would make autograd
    # build a full zero gradient of a per step (O(L^2) backward).
    for a_t, b_t in zip(a.unbind(1), b.unbind(1)):
        h = a_t * h + b_t
        hs.append(h)
    return torch.stack(hs, dim=1)


def scan_parallel(a, b):
    """The same recurrence as scan_loop in log2(L) levels of whole-tensor ops.

    Steps 2i and 2i+1 compose into one step of the same form,
    h_{2i+1} = (a_{2i+1} a_{2i}) h_{2i-1} + (a_{2i+1} b_{2i} + b_{2i+1}),
    so the odd positions are a scan of half the length (recursion); the even
    positions then follow from their odd predecessors in one op each level.
    An odd length is padded with identity steps (a = 1, b = 0) at the end.
    """
    L = b.shape[1]
    if L == 1:
        return b
    if L % 2:
        a = torch.cat([a, torch.ones_like(a[:, :1])], dim=1)
        b = torch.cat([b, torch.zeros_like(b[:, :1])], dim=1)
    a_even, a_odd = a[:, 0::2], a[:, 1::2]
    b_even, b_odd = b[:, 0::2], b[:, 1::2]
    h_odd = scan_parallel(a_odd * a_even, a_odd * b_even + b_odd)
    h_before = torch.cat([torch.zeros_like(h_odd[:, :1]), h_odd[:, :-1]], dim=1)
    h_even = a_even * h_before + b_even
    h = torch.stack([h_even, h_odd], dim=2).flatten(1, 2)
    return h[:, :L]


SCANS = {"loop": scan_loop, "pscan": scan_parallel}
M2_SCANS = ("ssd",)   # the Mamba-2 cases' scan: chunked SSD


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


def torch_blas_info():
    """BLAS_INFO=... of torch.__config__.show(): the BLAS torch was built for."""
    for item in torch.__config__.show().replace(",", "\n").split("\n"):
        if "BLAS_INFO" in item and "LAPACK" not in item:
            return item[item.index("BLAS_INFO"):].strip()
    return "BLAS_INFO unknown"


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

    def scan(self, u, delta, Bm, Cm, scan_fn):
        """Selective scan. u, delta (B, L, E); Bm, Cm (B, L, N).  Returns y
        (B, L, E) and the last state h (B, E, N)."""
        A = -torch.exp(self.A_log)                                    # (E, N)
        dA = torch.exp(delta.unsqueeze(-1) * A)                       # (B, L, E, N)
        dBu = (delta * u).unsqueeze(-1) * Bm.unsqueeze(2)             # (B, L, E, N)
        h = scan_fn(dA, dBu)                                          # (B, L, E, N)
        y = torch.matmul(h, Cm.unsqueeze(-1)).squeeze(-1)             # (B, L, E)
        return y + u * self.D, h[:, -1].clone()

    def forward(self, x, scan_fn, cache=None):
        """cache: None, or a list to which (conv window (B, E, K-1), h (B, E, N))
        is appended, the state a decode step continues from."""
        L = x.shape[1]
        u, z = self.in_proj(x).chunk(2, dim=-1)                       # (B, L, E) each
        ut = u.transpose(1, 2)                                        # (B, E, L)
        u = self.conv1d(ut)[..., :L].transpose(1, 2)                  # causal conv
        u = F.silu(u)
        dbc = self.x_proj(u)                                          # (B, L, R+2N)
        dt, Bm, Cm = torch.split(dbc, [self.R, self.N, self.N], dim=-1)
        delta = F.softplus(self.dt_proj(dt))                          # (B, L, E)
        y, h = self.scan(u, delta, Bm, Cm, scan_fn)
        if cache is not None:
            K1 = D_CONV - 1
            cache.append((F.pad(ut, (max(K1 - L, 0), 0))[..., -K1:].clone(), h))
        return self.out_proj(y * F.silu(z))

    def step(self, x, state):
        """One token: x (B, D); state (conv window (B, E, K-1), h (B, E, N))."""
        win, h = state
        u, z = self.in_proj(x).chunk(2, dim=-1)                       # (B, E) each
        full = torch.cat([win, u.unsqueeze(-1)], dim=-1)              # (B, E, K)
        u = F.silu((full * self.conv1d.weight.squeeze(1)).sum(-1) + self.conv1d.bias)
        dt, Bm, Cm = torch.split(self.x_proj(u), [self.R, self.N, self.N], dim=-1)
        delta = F.softplus(self.dt_proj(dt))                          # (B, E)
        A = -torch.exp(self.A_log)                                    # (E, N)
        h = torch.exp(delta.unsqueeze(-1) * A) * h \
            + (delta * u).unsqueeze(-1) * Bm.unsqueeze(1)             # (B, E, N)
        y = torch.matmul(h, Cm.unsqueeze(-1)).squeeze(-1) + u * self.D
        return self.out_proj(y * F.silu(z)), (full[..., 1:], h)


def ssd_chunked(x, dt, A, Bm, Cm, Q):
    """The SSD scan of ssmlab-math(7) MAMBA-2 in chunks of Q positions.
    x (B, L, H, P), dt (B, L, H) after softplus, A (H), Bm and Cm (B, L,
    G, N) shared by the H/G heads of each group.  Returns y (B, L, H, P)
    without the D skip and the state after the last position (B, H, P, N).

    Per chunk, with s the running sum of dt A inside it, the output is
    (C B^T o exp(s_i - s_j) dt_j, j <= i) x plus exp(s_i) C applied to the
    state entering the chunk, and the state leaving it is exp(s_last) times
    the one entering plus sum_j exp(s_last - s_j) dt_j x_j B_j^T.  The
    positions past L are padded with dt = 0 (decay 1, no input)."""
    Bsz, L, H, P = x.shape
    G, N = Bm.shape[2], Bm.shape[3]
    R, nc = H // G, -(-L // Q)
    pad = nc * Q - L
    if pad:
        x, dt, Bm, Cm = (F.pad(t, (0,) * (2 * (t.dim() - 2)) + (0, pad)) for t in (x, dt, Bm, Cm))
    x = x.reshape(Bsz, nc, Q, G, R, P)
    dt = dt.reshape(Bsz, nc, Q, G, R)
    Bm = Bm.reshape(Bsz, nc, Q, G, N)
    Cm = Cm.reshape(Bsz, nc, Q, G, N)
    s = torch.cumsum(dt * A.reshape(G, R), dim=2)                 # (B, c, Q, G, R)
    st = s.permute(0, 1, 3, 4, 2)                                 # (B, c, G, R, Q)
    causal = torch.ones(Q, Q, dtype=torch.bool).tril()
    seg = (st.unsqueeze(-1) - st.unsqueeze(-2)).masked_fill(~causal, float("-inf"))
    cb = torch.einsum("bcign,bcjgn->bcgij", Cm, Bm)               # (B, c, G, Q, Q)
    mask = cb.unsqueeze(3) * torch.exp(seg) * dt.permute(0, 1, 3, 4, 2).unsqueeze(-2)
    y = torch.einsum("bcgrij,bcjgrp->bcigrp", mask, x)            # inside the chunks
    w = torch.exp(s[:, :, -1:] - s) * dt                          # (B, c, Q, G, R)
    into = torch.einsum("bcjgr,bcjgrp,bcjgn->bcgrpn", w, x, Bm)   # each chunk's own input
    decay = torch.exp(s[:, :, -1])                                # (B, c, G, R)
    h = x.new_zeros(Bsz, G, R, P, N)
    entering = []
    for c in range(nc):                                           # across the chunks
        entering.append(h)
        h = decay[:, c, :, :, None, None] * h + into[:, c]
    entering = torch.stack(entering, dim=1)                       # (B, c, G, R, P, N)
    y = y + torch.exp(s).unsqueeze(-1) * torch.einsum("bcign,bcgrpn->bcigrp", Cm, entering)
    return y.reshape(Bsz, nc * Q, H, P)[:, :L], h.reshape(Bsz, H, P, N)


class Mixer2(torch.nn.Module):
    """One Mamba-2 mixer, ssmlab-math(7) MAMBA-2, with mamba_ssm's Mamba2
    initialisation of dt, A and D."""

    def __init__(self, d_model, n_layer, d_state, head_dim, n_groups, chunk):
        super().__init__()
        E = EXPAND * d_model
        self.E, self.N, self.P, self.G, self.Q = E, d_state, head_dim, n_groups, chunk
        self.H = E // head_dim
        self.Cw = E + 2 * n_groups * d_state                           # conv channels x, B, C
        self.in_proj = torch.nn.Linear(d_model, E + self.Cw + self.H, bias=False)
        self.conv1d = torch.nn.Conv1d(self.Cw, self.Cw, D_CONV, groups=self.Cw, padding=D_CONV - 1)
        self.out_proj = torch.nn.Linear(E, d_model, bias=False)
        with torch.no_grad():
            self.out_proj.weight /= math.sqrt(n_layer)
        dt = torch.exp(torch.rand(self.H) * (math.log(1e-1) - math.log(1e-3))
                       + math.log(1e-3)).clamp(min=1e-4)
        self.dt_bias = torch.nn.Parameter(dt + torch.log(-torch.expm1(-dt)))    # (H)
        self.A_log = torch.nn.Parameter(torch.log(torch.empty(self.H).uniform_(1, 16)))
        self.D = torch.nn.Parameter(torch.ones(self.H))                          # (H)
        self.norm_w = torch.nn.Parameter(torch.ones(E))                         # gated norm

    def split(self, zxd):
        """[z; xBC; dt] of in_proj's output (..., E + Cw + H)."""
        return torch.split(zxd, [self.E, self.Cw, self.H], dim=-1)

    def heads(self, xbc):
        """x (..., H, P), B and C (..., G, N) of xBC (..., Cw)."""
        GN = self.G * self.N
        x, Bm, Cm = torch.split(xbc, [self.E, GN, GN], dim=-1)
        lead = xbc.shape[:-1]
        return (x.reshape(*lead, self.H, self.P), Bm.reshape(*lead, self.G, self.N),
                Cm.reshape(*lead, self.G, self.N))

    def gated_out(self, y, z):
        """out_proj(RMSNorm over groups of E/G channels of y SiLU(z))."""
        v = y * F.silu(z)
        g = v.reshape(*v.shape[:-1], self.G, self.E // self.G)
        g = g * torch.rsqrt(g.pow(2).mean(-1, keepdim=True) + NORM_EPS)
        return self.out_proj(g.reshape(v.shape) * self.norm_w)

    def forward(self, u, scan_fn=None, cache=None):
        """u (B, L, D); cache: None, or a list to which (conv window (B, Cw,
        K-1), h (B, H, P, N)) is appended.  scan_fn is Mixer's (unused)."""
        Bsz, L, _ = u.shape
        z, xbc, dt = self.split(self.in_proj(u))
        xt = xbc.transpose(1, 2)                                      # (B, Cw, L)
        xbc = F.silu(self.conv1d(xt)[..., :L].transpose(1, 2))
        x, Bm, Cm = self.heads(xbc)
        dt = F.softplus(dt + self.dt_bias)                            # (B, L, H)
        y, h = ssd_chunked(x, dt, -torch.exp(self.A_log), Bm, Cm, self.Q)
        y = (y + self.D[:, None] * x).reshape(Bsz, L, self.E)
        if cache is not None:
            K1 = D_CONV - 1
            cache.append((F.pad(xt, (max(K1 - L, 0), 0))[..., -K1:].clone(), h))
        return self.gated_out(y, z)

    def step(self, u, state):
        """One token: u (B, D); state (conv window (B, Cw, K-1), h (B, H, P, N))."""
        win, h = state
        Bsz = u.shape[0]
        z, xbc, dt = self.split(self.in_proj(u))
        full = torch.cat([win, xbc.unsqueeze(-1)], dim=-1)            # (B, Cw, K)
        xbc = F.silu((full * self.conv1d.weight.squeeze(1)).sum(-1) + self.conv1d.bias)
        x, Bm, Cm = self.heads(xbc)                                   # (B, H, P), (B, G, N)
        dt = F.softplus(dt + self.dt_bias)                            # (B, H)
        R = self.H // self.G
        hg = h.reshape(Bsz, self.G, R, self.P, self.N)
        dA = torch.exp(dt * -torch.exp(self.A_log)).reshape(Bsz, self.G, R, 1, 1)
        dx = (dt.unsqueeze(-1) * x).reshape(Bsz, self.G, R, self.P, 1)
        hg = dA * hg + dx * Bm.reshape(Bsz, self.G, 1, 1, self.N)
        y = torch.einsum("bgrpn,bgn->bgrp", hg, Cm).reshape(Bsz, self.H, self.P)
        y = (y + self.D[:, None] * x).reshape(Bsz, self.E)
        return self.gated_out(y, z), (full[..., 1:], hg.reshape(Bsz, self.H, self.P, self.N))


class Mamba(torch.nn.Module):
    """The language model: Mamba-1 mixers, or Mamba-2 ones when m2 holds
    their shape (Mixer2's d_state, head_dim, n_groups, chunk)."""

    def __init__(self, d_model, n_layer, vocab, scan="loop", m2=None):
        super().__init__()
        self.scan_fn = SCANS.get(scan)
        self.embedding = torch.nn.Embedding(vocab, d_model)
        torch.nn.init.normal_(self.embedding.weight, std=0.02)
        self.norms = torch.nn.ModuleList(RMSNorm(d_model) for _ in range(n_layer))
        self.mixers = torch.nn.ModuleList(
            Mixer2(d_model, n_layer, **m2) if m2 else Mixer(d_model, n_layer)
            for _ in range(n_layer))
        self.norm_f = RMSNorm(d_model)

    def forward(self, tokens, last=False, cache=None):
        """Logits (B, L, V), or (B, 1, V) of the last position when last;
        cache as in Mixer.forward, one entry per layer."""
        x = self.embedding(tokens)
        for norm, mixer in zip(self.norms, self.mixers):
            x = x + mixer(norm(x), self.scan_fn, cache)
        if last:
            x = x[:, -1:]
        return F.linear(self.norm_f(x), self.embedding.weight)       # tied head

    def step(self, token, cache):
        """Next-token logits (B, V) after token (B); cache updated in place."""
        x = self.embedding(token)
        for i, (norm, mixer) in enumerate(zip(self.norms, self.mixers)):
            out, cache[i] = mixer.step(norm(x), cache[i])
            x = x + out
        return F.linear(self.norm_f(x), self.embedding.weight)


def time_passes(name, step, steps, warmup):
    """warmup untimed calls of step, then steps timed ones: (seconds, best)."""
    for i in range(warmup):
        step()
        print("pytorch %s: warmup %d/%d" % (name, i + 1, warmup), file=sys.stderr)
    t0 = time.perf_counter()
    best = float("inf")
    for _ in range(steps):
        t = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - t)
    return time.perf_counter() - t0, best


def case_step(model, spec, tokens, targets):
    """The timed unit of a training or forward case."""
    V = spec["vocab"]
    if spec["kind"] == "train":
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
        return step
    model.eval()
    last = spec["kind"] == "prefill"

    def step():
        with torch.no_grad():
            model(tokens, last=last)
    return step


def run_gen(name, model, tokens, steps, warmup):
    """The prompt's forward keeping each layer's state (untimed), then warmup
    and timed decode steps fed the previous step's greedy token."""
    model.eval()
    cache = []
    with torch.no_grad():
        t = time.perf_counter()
        logits = model(tokens, last=True, cache=cache)[:, -1]
        print("pytorch %s: prefill of %d tokens %.3f s" % (name, tokens.shape[1],
              time.perf_counter() - t), file=sys.stderr)
        state = dict(logits=logits)

        def step():
            state["logits"] = model.step(state["logits"].argmax(-1), cache)
        return time_passes(name, step, steps, warmup)


def run_case(name, spec, args):
    torch.manual_seed(1234)
    model = Mamba(spec["d_model"], spec["n_layer"], spec["vocab"], args.scan, spec.get("m2"))
    n_params = sum(p.numel() for p in model.parameters())
    Bsz, L, V = spec["batch"], spec["seq_len"], spec["vocab"]
    tokens = torch.randint(0, V, (Bsz, L))
    targets = torch.randint(0, V, (Bsz, L))
    steps = args.steps if args.steps is not None else spec["steps"]
    warmup = args.warmup if args.warmup is not None else spec["warmup"]
    gen = spec["kind"] == "gen"
    if gen:
        seconds, best = run_gen(name, model, tokens, steps, warmup)
    else:
        seconds, best = time_passes(name, case_step(model, spec, tokens, targets), steps, warmup)
    per_pass = Bsz if gen else Bsz * L     # tokens per timed pass
    tps = per_pass * steps / seconds if seconds > 0 else 0.0
    return dict(n_params=n_params, batch=Bsz, seq_len=L, steps=steps,
                warmup=warmup, seconds=seconds, tokens_per_s=tps,
                best_tokens_per_s=per_pass / best if best > 0 else 0.0,
                value=tps, unit="tok/s", gemm_gflops=0.0,
                weights="f32" if gen else "", weight_bytes=4 * n_params if gen else 0,
                read_gbs=0.0)


def emit(row, fmt):
    if fmt == "jsonl":
        print(json.dumps({k: row[k] for k in COLUMNS}))
        return
    cells = []
    for k in COLUMNS:
        v = row[k]
        if isinstance(v, float):
            v = "%.1f" % v if k.endswith("tokens_per_s") or k in ("value", "gemm_gflops") \
                else "%.6g" % v
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
    ap.add_argument("--scan", default=None, choices=list(SCANS) + list(M2_SCANS),
                    help="Mamba-1's selective scan: a loop over time (default) or the "
                    "parallel scan; the Mamba-2 cases' chunked SSD (ssd, their default)")
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
    config += " (torch %s)" % torch_blas_info()
    malloc = "fairmalloc" if os.environ.get("MALLOC_MMAP_MAX_") == "0" else "glibcmalloc"
    print("pytorch %s, %d threads, BLAS: %s" % (torch.__version__, args.threads, config),
          file=sys.stderr)

    if args.format == "csv" and not args.no_header:
        print(",".join(COLUMNS))
    names = list(CASES) if args.case == "all" else [args.case]
    scans = {n: args.scan or (M2_SCANS[0] if "m2" in CASES[n] else "loop") for n in names}
    wrong = [n for n in names if ("m2" in CASES[n]) != (scans[n] in M2_SCANS)]
    if args.case != "all" and wrong:
        ap.error("--scan %s: the Mamba-2 cases run %s, the others %s" % (
            args.scan, ", ".join(M2_SCANS), ", ".join(SCANS)))
    for name in names:
        if name in wrong:   # --case all with one family's scan: the other is skipped
            continue
        r = run_case(name, CASES[name], argparse.Namespace(**dict(vars(args), scan=scans[name])))
        r.update(case=name, impl="pytorch", threads=args.threads,
                 omp_threads=torch.get_num_threads(), blas_threads=blas_threads,
                 blas_config=config, blas_core=core, variant=scans[name] + "-" + malloc,
                 peak_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
        emit(r, args.format)
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
