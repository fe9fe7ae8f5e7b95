# mamba2_ref.py — the PyTorch reference for ssmlab's Mamba-2 models: a small,
# literal implementation of the Mamba-2 language model of ssmlab-math(7)
# MAMBA-2 (the SSD recurrence step by step, the grouped gated RMSNorm), a
# second formulation of the SSD scan in chunks (quadratic form inside a
# chunk, state passing across chunks) to check the first, random
# parameters, and checkpoints in the state-spaces/mamba and the
# transformers Mamba2ForCausalLM layouts.  tests/ref/check_mamba2.py
# compares the C engine against it; the safetensors I/O, the RMSNorm, the
# causal conv and the loss are mamba_ref.py's.
#
#   /usr/bin/python3 tests/ref/mamba2_ref.py --self-test
#       the recurrence against the chunked form (several chunk sizes, odd
#       lengths, one and two groups, pinned A = 0 and A = -100 heads), the
#       per-head hidden attention against the recurrence, and autograd
#       against finite differences (plain and polarized models).
# It also holds the per-head measurements (scan_inputs, hidden_attention,
# group_spectra) that tests/ref/check_mamba2_inspect.py compares
# `ssmlab inspect` against.
#   /usr/bin/python3 tests/ref/mamba2_ref.py write --out DIR [--naming transformers]
#       a small random Mamba-2 checkpoint (the fixture of tests/e2e/mamba2.sh).
import argparse
import json
import math
import os
import sys
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mamba_ref as ref  # noqa: E402

EMBED, EMBED_HF, NORM_F, LM_HEAD = ref.EMBED, ref.EMBED_HF, ref.NORM_F, ref.LM_HEAD
MIXER_TENSORS = ["in_proj.weight", "conv1d.weight", "conv1d.bias", "dt_bias", "A_log", "D",
                 "norm.weight", "out_proj.weight"]


@dataclass
class Config:
    d_model: int                      # D
    n_layer: int
    vocab_size: int                   # raw vocabulary
    d_state: int = 16                 # N
    d_conv: int = 4                   # K
    expand: int = 2
    head_dim: int = 8                 # P
    n_groups: int = 1                 # G
    chunk_size: int = 8               # Q
    pad_vocab_size_multiple: int = 8
    tie_embeddings: bool = True
    norm_eps: float = 1e-5
    polarize: str = "none"            # pinned heads: none, zero, one, both

    @property
    def n_one(self):                  # heads with A = 0, first
        return int(self.polarize in ("one", "both"))

    @property
    def n_zero(self):                 # heads with A = -100, last
        return int(self.polarize in ("zero", "both"))

    @property
    def n_heads(self):                # H: the learned heads and the pinned ones
        return self.expand * self.d_model // self.head_dim + self.n_one + self.n_zero

    @property
    def d_inner(self):                # E = H P
        return self.n_heads * self.head_dim

    @property
    def conv_dim(self):               # Cw = E + 2 G N
        return self.d_inner + 2 * self.n_groups * self.d_state

    @property
    def in_dim(self):                 # W = 2E + 2GN + H
        return self.d_inner + self.conv_dim + self.n_heads

    @property
    def padded_vocab(self):
        m = self.pad_vocab_size_multiple
        return self.vocab_size + (-self.vocab_size) % m

    def param_shapes(self):
        D, E, H, K, V, Cw = (self.d_model, self.d_inner, self.n_heads, self.d_conv,
                             self.padded_vocab, self.conv_dim)
        s = {EMBED: (V, D)}
        for i in range(self.n_layer):
            s[ref.norm_name(i)] = (D,)
            for name, shape in zip(MIXER_TENSORS, [(self.in_dim, D), (Cw, 1, K), (Cw,), (H,), (H,),
                                                   (H,), (E,), (D, E)]):
                s[ref.mixer_name(i, name)] = shape
        s[NORM_F] = (D,)
        if not self.tie_embeddings:
            s[LM_HEAD] = (V, D)
        return s


# ---------------------------------------------------------------------------
# The model

def ssd_recurrent(x, dt, A, Bm, Cm, Dskip, keep=None, patch=None, states=None):
    """The SSD scan step by step.  x (B, L, H, P), dt (B, L, H), A (H),
    Bm and Cm (B, L, G, N), Dskip (H) -> y (B, L, H, P).  Head h reads
    group h // (H / G):  h_t = exp(dt A) h + dt x B^T,  y = h C + D x.
    Probes (ssmlab-inspect(1) MAMBA-2): keep (H, P, N) multiplies h_t after
    every step (0: an ablated entry); patch (t, value (B, H, P, N)) replaces
    h_t before y_t is read; states, a list, gets every h_t."""
    Bsz, L, H, P = x.shape
    G, N = Bm.shape[2], Bm.shape[3]
    Bh = Bm.repeat_interleave(H // G, dim=2)          # (B, L, H, N)
    Ch = Cm.repeat_interleave(H // G, dim=2)
    h = x.new_zeros(Bsz, H, P, N)
    ys = []
    for t in range(L):
        decay = torch.exp(dt[:, t] * A)               # (B, H)
        h = ref.probe_step(decay[..., None, None] * h + (dt[:, t, :, None, None] * x[:, t, :, :, None]
                                                         * Bh[:, t, :, None, :]), t, keep, patch, states)
        ys.append(torch.einsum("bhpn,bhn->bhp", h, Ch[:, t]) + Dskip[:, None] * x[:, t])
    return torch.stack(ys, dim=1)


def ssd_chunked(x, dt, A, Bm, Cm, Dskip, Q):
    """The same scan in chunks of Q positions (a second formulation): the
    decay-masked C B^T inside a chunk, states passed across chunks."""
    Bsz, L, H, P = x.shape
    G, N = Bm.shape[2], Bm.shape[3]
    Bh = Bm.repeat_interleave(H // G, dim=2)
    Ch = Cm.repeat_interleave(H // G, dim=2)
    state = x.new_zeros(Bsz, H, P, N)
    out = []
    for t0 in range(0, L, Q):
        sl = slice(t0, min(t0 + Q, L))
        a = dt[:, sl] * A                              # (B, n, H)
        s = torch.cumsum(a, dim=1)                     # (B, n, H)
        n = a.shape[1]
        seg = s[:, :, None, :] - s[:, None, :, :]      # (B, i, j, H): s_i - s_j
        mask = torch.tril(torch.ones(n, n, dtype=torch.bool))[None, :, :, None]
        decay = torch.where(mask, torch.exp(torch.where(mask, seg, torch.zeros_like(seg))),
                            torch.zeros_like(seg))
        cb = torch.einsum("bihn,bjhn->bijh", Ch[:, sl], Bh[:, sl])
        y = torch.einsum("bijh,bjh,bjhp->bihp", cb * decay, dt[:, sl], x[:, sl])
        y = y + torch.exp(s)[..., None] * torch.einsum("bihn,bhpn->bihp", Ch[:, sl], state)
        w = torch.exp(s[:, -1:, :] - s) * dt[:, sl]    # (B, n, H)
        state = (torch.exp(s[:, -1])[..., None, None] * state
                 + torch.einsum("bjh,bjhp,bjhn->bhpn", w, x[:, sl], Bh[:, sl]))
        out.append(y + Dskip[:, None] * x[:, sl])
    return torch.cat(out, dim=1)


def gated_norm(y, z, w, G, eps):
    """RMSNorm over groups of E/G channels of y * SiLU(z), times w."""
    v = y * F.silu(z)
    shape = v.shape
    v = v.reshape(*shape[:-1], G, shape[-1] // G)
    v = v * torch.rsqrt(v.pow(2).mean(-1, keepdim=True) + eps)
    return v.reshape(shape) * w


A_ONE_POLARIZED, A_ZERO_POLARIZED = 0.0, -100.0


def heads_A(A_log, cfg):
    """A (H): -exp(A_log) for the learned heads; the first n_one heads
    pinned to 0 and the last n_zero to -100, which do not depend on A_log
    (so it gets no gradient there)."""
    H, n1, n0 = cfg.n_heads, cfg.n_one, cfg.n_zero
    learned = -torch.exp(A_log[n1:H - n0])
    return torch.cat([learned.new_full((n1,), A_ONE_POLARIZED), learned,
                      learned.new_full((n0,), A_ZERO_POLARIZED)])


def probe_keep(probe, i, cfg, like):
    """Layer i's keep mask (H, P, N) of the probe's ablations (layer, head,
    j): j = -1 the whole head, else entry j = p N + n; None without any."""
    H, P, N = cfg.n_heads, cfg.head_dim, cfg.d_state
    mine = [(h, j) for (l, h, j) in (probe or {}).get("ablate", []) if l == i]
    if not mine:
        return None
    keep = like.new_ones(H, P * N)
    for h, j in mine:
        if j < 0:
            keep[h, :] = 0
        else:
            keep[h, j] = 0
    return keep.reshape(H, P, N)


def mixer(p, i, xn, cfg, scan=ssd_recurrent, probe=None):
    """Layer i's mixer.  probe (a dict, optional): "ablate" [(layer, head,
    j)], "pin" [(layer, head, value)] replacing A_h, "patch" ("state",
    layer, pos, value (B, H, P, N)), and "record", a dict that gets the
    layer's intermediates under the names of ssmlab-inspect(1)'s dump."""
    E, H, P, G, N = cfg.d_inner, cfg.n_heads, cfg.head_dim, cfg.n_groups, cfg.d_state
    Bsz, L, _ = xn.shape
    zx = xn @ p[ref.mixer_name(i, "in_proj.weight")].T
    z, xbc, dt = zx[..., :E], zx[..., E:E + cfg.conv_dim], zx[..., E + cfg.conv_dim:]
    w = p[ref.mixer_name(i, "conv1d.weight")].reshape(cfg.conv_dim, cfg.d_conv)
    xbc = F.silu(ref.causal_conv(xbc, w, p[ref.mixer_name(i, "conv1d.bias")]))
    x = xbc[..., :E].reshape(Bsz, L, H, P)
    Bm = xbc[..., E:E + G * N].reshape(Bsz, L, G, N)
    Cm = xbc[..., E + G * N:].reshape(Bsz, L, G, N)
    dt = F.softplus(dt + p[ref.mixer_name(i, "dt_bias")])
    A = heads_A(p[ref.mixer_name(i, "A_log")], cfg)
    if probe is None:
        y = scan(x, dt, A, Bm, Cm, p[ref.mixer_name(i, "D")]).reshape(Bsz, L, E)
    else:
        pins = [(h, v) for (l, h, v) in probe.get("pin", []) if l == i]
        if pins:
            A = A.clone()
            for h, v in pins:
                A[h] = v
        patch = probe.get("patch")
        patch = (patch[2], patch[3]) if patch and patch[0] == "state" and patch[1] == i else None
        states = []
        y = ssd_recurrent(x, dt, A, Bm, Cm, p[ref.mixer_name(i, "D")], probe_keep(probe, i, cfg, x),
                          patch, states).reshape(Bsz, L, E)
        rec = probe.get("record")
        if rec is not None:
            for k, v in (("x", x.reshape(Bsz, L, E)), ("z", z), ("dt", dt), ("B", Bm), ("C", Cm),
                         ("h", torch.stack(states, dim=1)), ("y", y), ("A", A)):
                rec[f"layers.{i}.{k}"] = v.detach()
    out = gated_norm(y, z, p[ref.mixer_name(i, "norm.weight")], G, cfg.norm_eps) @ p[ref.mixer_name(i, "out_proj.weight")].T
    if probe is not None and probe.get("record") is not None:
        probe["record"][f"layers.{i}.out"] = out.detach()
    return out


def forward(p, cfg, tokens, scan=ssd_recurrent, probe=None):
    """Logits (B, L, V) of token ids (B, L).  probe as for mixer, and
    "patch" ("residual", layer, pos, value (B, D)) replacing x entering the
    layer at pos; its record gets the residual stream, norm_f and the
    logits too."""
    x = p[EMBED][tokens]
    rec = probe.get("record") if probe else None
    if rec is not None:
        rec["embeddings"] = x.detach()
    for i in range(cfg.n_layer):
        patch = probe.get("patch") if probe else None
        if patch and patch[0] == "residual" and patch[1] == i:
            x = x.clone()
            x[:, patch[2]] = patch[3].to(x.dtype)
        if rec is not None:
            rec[f"layers.{i}.residual"] = x.detach()
        x = x + mixer(p, i, ref.rms_norm(x, p[ref.norm_name(i)], cfg.norm_eps), cfg, scan, probe)
    x = ref.rms_norm(x, p[NORM_F], cfg.norm_eps)
    logits = x @ (p[EMBED] if cfg.tie_embeddings else p[LM_HEAD]).T
    if rec is not None:
        rec["norm_f"] = x.detach()
        rec["logits"] = logits.detach()
    return logits


# ---------------------------------------------------------------------------
# The per-head measurements (ssmlab-math(7) MAMBA-2, Per-head measurements)

def scan_inputs(p, cfg, tokens):
    """Per layer, in float64: (Bm, Cm (B, L, G, N), dt (B, L, H), A (H)) as
    the layer's SSD reads them, and the residual stream x_0 .. x_n."""
    E, G, N = cfg.d_inner, cfg.n_groups, cfg.d_state
    p = {k: v.to(torch.float64) for k, v in p.items()}
    x = p[EMBED][tokens]
    Bsz, L = tokens.shape
    stream, layers = [x], []
    for i in range(cfg.n_layer):
        xn = ref.rms_norm(x, p[ref.norm_name(i)], cfg.norm_eps)
        zx = xn @ p[ref.mixer_name(i, "in_proj.weight")].T
        xbc, dt = zx[..., E:E + cfg.conv_dim], zx[..., E + cfg.conv_dim:]
        w = p[ref.mixer_name(i, "conv1d.weight")].reshape(cfg.conv_dim, cfg.d_conv)
        xbc = F.silu(ref.causal_conv(xbc, w, p[ref.mixer_name(i, "conv1d.bias")]))
        layers.append((xbc[..., E:E + G * N].reshape(Bsz, L, G, N), xbc[..., E + G * N:].reshape(Bsz, L, G, N),
                       F.softplus(dt + p[ref.mixer_name(i, "dt_bias")]),
                       heads_A(p[ref.mixer_name(i, "A_log")], cfg)))
        x = x + mixer(p, i, xn, cfg)
        stream.append(x)
    return layers, stream


def hidden_attention(Bm, Cm, dt, A):
    """alpha (B, H, L, L), literally: alpha_h[t][s] = C_t . B_s (group of h)
    * exp(sum_{k=s+1..t} dt_k[h] A_h) * dt_s[h] for s <= t, else 0."""
    Bsz, L, H = dt.shape
    G = Bm.shape[2]
    alpha = torch.zeros(Bsz, H, L, L, dtype=torch.float64)
    for h in range(H):
        g = h // (H // G)
        for t in range(L):
            for s in range(t + 1):
                decay = torch.exp((dt[:, s + 1:t + 1, h] * A[h]).sum(dim=1))
                alpha[:, h, t, s] = (Cm[:, t, g] * Bm[:, s, g]).sum(-1) * decay * dt[:, s, h]
    return alpha


def group_spectra(p, cfg):
    """[layer][group]: eigenvalues of S_B S_C^T, S_B and S_C (N, D) the rows
    of in_proj that make group g's B and C (numpy, float64)."""
    E, G, N = cfg.d_inner, cfg.n_groups, cfg.d_state
    out = []
    for i in range(cfg.n_layer):
        w = p[ref.mixer_name(i, "in_proj.weight")].to(torch.float64).numpy()
        b0, c0 = 2 * E, 2 * E + G * N
        out.append([np.linalg.eigvals(w[b0 + g * N:b0 + (g + 1) * N] @ w[c0 + g * N:c0 + (g + 1) * N].T)
                    for g in range(G)])
    return out


def loss_and_grads(p, cfg, tokens, dtype=torch.float64):
    """Loss, logits and d loss / d param for every parameter, in dtype."""
    leaves = {k: v.detach().to(dtype).clone().requires_grad_(True) for k, v in p.items()}
    logits = forward(leaves, cfg, tokens)
    loss = ref.lm_loss(logits, tokens)
    loss.backward()
    return loss.detach(), logits.detach(), {k: v.grad for k, v in leaves.items()}


def init_params(cfg, seed=0):
    """float32 parameters near mamba_ssm's Mamba2 initialisation, with D,
    the norms and dt_bias moved off their initial constants and A_log drawn
    so some heads forget fast, so every gradient is exercised."""
    g = torch.Generator().manual_seed(seed)
    u = lambda shape, b: (torch.rand(shape, generator=g) * 2 - 1) * b
    D, E, H, K = cfg.d_model, cfg.d_inner, cfg.n_heads, cfg.d_conv
    p = {}
    for name, shape in cfg.param_shapes().items():
        leaf = name.rsplit(".", 1)[-1] if "mixer." not in name else name.split("mixer.", 1)[1]
        if name in (EMBED, LM_HEAD):
            p[name] = torch.randn(shape, generator=g) * 0.5
        elif name == NORM_F or name.endswith(".norm.weight"):
            p[name] = 1.0 + u(shape, 0.3)
        elif leaf == "in_proj.weight":
            p[name] = u(shape, 1 / math.sqrt(D))
        elif leaf.startswith("conv1d"):
            p[name] = u(shape, 1 / math.sqrt(K))
        elif leaf == "dt_bias":
            dt = torch.exp(torch.rand(shape, generator=g) * (math.log(0.5) - math.log(1e-2)) + math.log(1e-2))
            p[name] = dt + torch.log(-torch.expm1(-dt))
        elif leaf == "A_log":
            p[name] = torch.log(1 + torch.rand(shape, generator=g) * 3)
        elif leaf == "D":
            p[name] = 1.0 + u(shape, 0.5)
        elif leaf == "out_proj.weight":
            p[name] = u(shape, 1 / math.sqrt(E))
        else:
            raise KeyError(name)
    return {k: v.float() for k, v in p.items()}


# ---------------------------------------------------------------------------
# Checkpoints

def config_json(cfg, naming="mamba_ssm"):
    if naming == "transformers":
        return {"model_type": "mamba2", "architectures": ["Mamba2ForCausalLM"],
                "hidden_size": cfg.d_model, "num_hidden_layers": cfg.n_layer,
                "state_size": cfg.d_state, "expand": cfg.expand, "conv_kernel": cfg.d_conv,
                "num_heads": cfg.n_heads, "head_dim": cfg.head_dim, "n_groups": cfg.n_groups,
                "chunk_size": cfg.chunk_size, "layer_norm_epsilon": cfg.norm_eps,
                "vocab_size": cfg.padded_vocab, "tie_word_embeddings": cfg.tie_embeddings,
                "use_bias": False, "use_conv_bias": True, "rms_norm": True,
                "residual_in_fp32": True, "time_step_rank": "auto",
                "time_step_limit": [0.0, float("inf")]}
    c = {"d_model": cfg.d_model, "n_layer": cfg.n_layer, "vocab_size": cfg.vocab_size,
         "ssm_cfg": {"layer": "Mamba2", "d_state": cfg.d_state, "d_conv": cfg.d_conv,
                     "expand": cfg.expand, "headdim": cfg.head_dim, "ngroups": cfg.n_groups,
                     "chunk_size": cfg.chunk_size, "dt_limit": [0.0, float("inf")]},
         "d_intermediate": 0, "attn_layer_idx": [], "rms_norm": True, "residual_in_fp32": True,
         "fused_add_norm": True, "pad_vocab_size_multiple": cfg.pad_vocab_size_multiple,
         "tie_embeddings": cfg.tie_embeddings}
    if cfg.norm_eps != 1e-5:
        c["norm_epsilon"] = cfg.norm_eps
    if cfg.polarize != "none":
        c["ssmlab"] = {"polarize": cfg.polarize}
    return c


def write_checkpoint(dirpath, cfg, p, naming="mamba_ssm"):
    os.makedirs(dirpath, exist_ok=True)
    with open(os.path.join(dirpath, "config.json"), "w") as f:
        json.dump(config_json(cfg, naming), f, indent=2)
    rename = ref.checkpoint_names(naming)
    tensors = {rename.get(k, k): v for k, v in p.items()}
    ref.write_safetensors(os.path.join(dirpath, "model.safetensors"), tensors, "F32", {"format": "pt"})


# ---------------------------------------------------------------------------
# Self-test

def random_scan_inputs(g, Bsz, L, H, P, G, N):
    x = torch.randn(Bsz, L, H, P, generator=g, dtype=torch.float64)
    dt = F.softplus(torch.randn(Bsz, L, H, generator=g, dtype=torch.float64))
    A = -torch.exp(torch.rand(H, generator=g, dtype=torch.float64))
    Bm = torch.randn(Bsz, L, G, N, generator=g, dtype=torch.float64)
    Cm = torch.randn(Bsz, L, G, N, generator=g, dtype=torch.float64)
    Dskip = torch.randn(H, generator=g, dtype=torch.float64)
    return x, dt, A, Bm, Cm, Dskip


def self_test(bug=False):
    passed = failed = 0

    def check(name, err, tol, expect_fail=False):
        nonlocal passed, failed
        ok = (err > tol) if expect_fail else (err <= tol)
        passed += ok
        failed += not ok
        print(f"{'PASS' if ok else 'FAIL'}  {name:<56} err={err:.2e} (tol {tol:.0e}"
              f"{', must exceed' if expect_fail else ''})")

    g = torch.Generator().manual_seed(7)
    for (Bsz, L, H, P, G, N, Q) in [(2, 13, 4, 3, 1, 5, 4), (1, 9, 4, 2, 2, 3, 9), (2, 7, 2, 3, 2, 4, 1),
                                    (1, 17, 6, 2, 3, 2, 5)]:
        args = random_scan_inputs(g, Bsz, L, H, P, G, N)
        err = ref.rel_err(ssd_chunked(*args, Q).numpy(), ssd_recurrent(*args).numpy())
        check(f"ssd chunked == recurrent (L {L} Q {Q} G {G})", err, 1e-12)
    # pinned decays: A = 0 (never forgets) and A = -100 in one scan
    args = list(random_scan_inputs(g, 2, 11, 4, 2, 2, 3))
    args[2] = torch.tensor([0.0, -0.5, -1.5, -100.0], dtype=torch.float64)
    err = ref.rel_err(ssd_chunked(*args, 4).numpy(), ssd_recurrent(*args).numpy())
    check("ssd chunked == recurrent with A = 0 and A = -100 heads", err, 1e-12)
    args = list(random_scan_inputs(g, 1, 10, 2, 2, 1, 3))
    wrong = ssd_recurrent(args[0], args[1], args[2] * 1.01, *args[3:])
    check("ssd: a 1% change of A is seen", ref.rel_err(wrong.numpy(), ssd_chunked(*args, 4).numpy()),
          1e-6, expect_fail=True)
    # the hidden attention is the SSD's kernel: y - D x = sum_s alpha[t][s] x_s per head
    x, dt, A, Bm, Cm, Dskip = random_scan_inputs(g, 2, 9, 4, 3, 2, 3)
    mixed = torch.einsum("bhts,bshp->bthp", hidden_attention(Bm, Cm, dt, A * (1.01 if bug else 1)), x)
    check("hidden attention reproduces the SSD scan", ref.rel_err(
        mixed.numpy(), ssd_recurrent(x, dt, A, Bm, Cm, torch.zeros_like(Dskip)).numpy()), 1e-12)
    # autograd of the whole model against central differences, float64,
    # plain and polarized (pinned heads: their A_log gets exactly no gradient)
    for polarize in ("none", "both"):
        check(f"autograd == finite differences (sampled elements), polarize {polarize}",
              fd_worst(g, polarize), 1e-6)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def fd_worst(g, polarize):
    """max |central difference - autograd| / max |grad| over sampled elements."""
    cfg = Config(d_model=8, n_layer=2, vocab_size=11, d_state=3, d_conv=3, head_dim=4, n_groups=2,
                 chunk_size=3, tie_embeddings=False, polarize=polarize)
    p = {k: v.double() for k, v in init_params(cfg, seed=3).items()}
    tokens = torch.randint(0, cfg.vocab_size, (2, 7), generator=g)
    _, _, grads = loss_and_grads(p, cfg, tokens)
    worst = 0.0
    for name in p:
        flat = p[name].reshape(-1)
        num = torch.zeros_like(flat)
        for j in range(0, flat.numel(), max(1, flat.numel() // 6)):
            for sign in (1, -1):
                q = dict(p)
                t = flat.clone()
                t[j] += sign * 1e-6
                q[name] = t.reshape(p[name].shape)
                num[j] += sign * ref.lm_loss(forward(q, cfg, tokens), tokens).item() / 2e-6
            worst = max(worst, abs(num[j].item() - grads[name].reshape(-1)[j].item()) /
                        max(1e-3, grads[name].abs().max().item()))
    return worst


def main():
    ap = argparse.ArgumentParser(description="The Mamba-2 PyTorch reference of ssmlab.")
    ap.add_argument("--self-test", action="store_true")
    sub = ap.add_subparsers(dest="cmd")
    w = sub.add_parser("write", help="write a small random Mamba-2 checkpoint")
    w.add_argument("--out", required=True)
    w.add_argument("--naming", default="mamba_ssm", choices=["mamba_ssm", "transformers"])
    w.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    if args.cmd == "write":
        cfg = Config(d_model=16, n_layer=2, vocab_size=37, d_state=4, head_dim=8, n_groups=2,
                     chunk_size=4, tie_embeddings=args.naming != "transformers")
        write_checkpoint(args.out, cfg, init_params(cfg, seed=args.seed), args.naming)
        return 0
    ap.print_help()
    return 64


if __name__ == "__main__":
    sys.exit(main())
