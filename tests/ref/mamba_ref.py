# mamba_ref.py — the PyTorch reference for ssmlab: a small, literal implementation
# of the Mamba-1 model of ssmlab-math(7), MODEL (token, continuous-input and classification
# variants, and the classifier's pool: mean, last or an appended cls token), the S_B/S_C scenarios and first-layer token reordering of DYNAMICS, the
# polarized state channels of RECENCY, its mamba_ssm-style initialisation, and
# hand-written safetensors / checkpoint I/O.  tests/ref/check_engine.py
# compares the C engine against it.
#
#   /usr/bin/python3 tests/ref/mamba_ref.py --self-test
#       checks the reference itself (scan and conv against second formulations,
#       autograd against float64 finite differences, also under scenarios,
#       polarization and hard/soft reordering; the scenario spectra's signs,
#       pinned channels, SoftSort's limits; file round trips; injected bugs).
#   /usr/bin/python3 tests/ref/mamba_ref.py [--bug NAME] eval --model DIR --tokens "1,2;3,4" \
#       --save-logits OUT.npy --save-grads OUT.safetensors
#   /usr/bin/python3 tests/ref/mamba_ref.py [--bug NAME] eval --model DIR --inputs X.npy \
#       --labels 3,1 --save-logits OUT.npy --save-grads OUT.safetensors
#       runs this reference in float32 behind the same command-line contract as
#       `ssmlab eval` (language model: --tokens; classifier: --inputs (B, L, I)
#       float32 and --labels), so check_engine.py can be tested (and made to
#       fail with --bug) without the C binary.
import argparse
import json
import math
import os
import struct
import sys
import tempfile
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------
# Configuration and tensor names

EMBED = "backbone.embedding.weight"          # (V, D)
EMBED_HF = "backbone.embeddings.weight"      # the transformers spelling
NORM_F = "backbone.norm_f.weight"            # (D)
LM_HEAD = "lm_head.weight"                   # (V, D), untied models only
# ssmlab's extra tensors (ssmlab-math(7) MODEL: "clear names under the same prefixes").
# These follow engine/model.c (ssm_model_tensors).
INPUT_W = "backbone.input_proj.weight"       # (D, I)  continuous input
INPUT_B = "backbone.input_proj.bias"         # (D)
CLS_W = "classifier.weight"                   # (C, D)  classification head
CLS_B = "classifier.bias"                     # (C)
CLS_TOKEN = "backbone.cls_token"              # (D)     pool cls: appended after the input
# Per-layer extras (engine/model.c, ssm_model_tensors), under the mixer prefix:
SCEN_P = "scenario_P"                         # (N, E)  scenarios: S_C = U(P)
SCEN_Q = "scenario_q"                         # (N)     S_B = diag(sigma(q)) U(P)
IMP_K = "importance_k"                        # (E)     each layer of reorder_layers, reorder hard/soft

SCENARIOS = ("default", "positive", "negative", "mixed")
POLARIZE = ("none", "zero", "one", "both")
REORDER = ("off", "hard", "soft")
POOL = ("mean", "last", "cls")
PINNED_A_ZERO = -100.0                        # A of a zero-polarized channel (ssmlab-math(7) RECENCY)
SOFTSORT_TAU = 1.0

MIXER_TENSORS = ["in_proj.weight", "conv1d.weight", "conv1d.bias", "x_proj.weight",
                 "dt_proj.weight", "dt_proj.bias", "A_log", "D", "out_proj.weight"]


def norm_name(i):
    return f"backbone.layers.{i}.norm.weight"


def mixer_name(i, tensor):
    return f"backbone.layers.{i}.mixer.{tensor}"


@dataclass
class Config:
    d_model: int                      # D
    n_layer: int
    vocab_size: int = 0               # raw vocabulary; 0 with continuous input
    d_state: int = 16                 # N
    d_conv: int = 4                   # K
    expand: int = 2
    dt_rank: int = 0                  # R; 0 means ceil(D / 16)
    pad_vocab_size_multiple: int = 8
    tie_embeddings: bool = True
    norm_eps: float = 1e-5
    d_input: int = 0                  # I > 0: continuous input instead of tokens
    n_classes: int = 0                # C > 0: classification head instead of LM head
    scenario: str = "default"         # ssmlab-math(7) DYNAMICS: default | positive | negative | mixed
    polarize: str = "none"            # ssmlab-math(7) RECENCY: none | zero | one | both
    reorder: str = "off"              # ssmlab-math(7) DYNAMICS: off | hard | soft (classifiers only)
    reorder_tau: float = 1.0          # SoftSort temperature tau
    reorder_layers: tuple = (0,)      # the layers that reorder their SSM input u
    pool: str = "mean"                # ssmlab-math(7) MODEL: mean | last | cls (classifiers only)

    def __post_init__(self):
        if (self.scenario not in SCENARIOS or self.polarize not in POLARIZE
                or self.reorder not in REORDER):
            raise ValueError(f"bad scenario/polarize/reorder: {self.scenario}/{self.polarize}/{self.reorder}")
        if self.reorder != "off" and not self.n_classes:
            raise ValueError("reorder is for classifiers only")
        if self.pool not in POOL or (self.pool != "mean" and not self.n_classes):
            raise ValueError(f"bad pool {self.pool} (mean, last or cls; not mean for classifiers only)")
        if self.pool == "cls" and self.reorder != "off":
            raise ValueError("pool cls does not combine with reordering")
        if self.scenario != "default" and self.d_inner < self.d_state:
            raise ValueError("a scenario needs d_inner >= d_state")

    def reorders(self, i):
        """Does layer i reorder its SSM input?"""
        return self.reorder != "off" and i in self.reorder_layers

    @property
    def first_reorder(self):          # the layer whose scores the ranking shows
        return min(self.reorder_layers)

    @property
    def n_zero(self):                 # zero-polarized channels, A = -100
        return int(self.polarize in ("zero", "both"))

    @property
    def n_one(self):                  # one-polarized channels, A = 0
        return int(self.polarize in ("one", "both"))

    @property
    def state_dim(self):              # Ns = n_one + N + n_zero, the scan's width
        return self.n_one + self.d_state + self.n_zero

    @property
    def needs_ssmlab(self):
        """Does config.json need the "ssmlab" object?"""
        return bool(self.d_input or self.n_classes or self.norm_eps != 1e-5
                    or self.scenario != "default" or self.polarize != "none"
                    or self.reorder != "off" or self.pool != "mean")

    @property
    def d_inner(self):                # E
        return self.expand * self.d_model

    @property
    def rank(self):                   # R
        return self.dt_rank or math.ceil(self.d_model / 16)

    @property
    def padded_vocab(self):           # V, rounded up as mamba_ssm does
        m = self.pad_vocab_size_multiple
        return self.vocab_size + (-self.vocab_size) % m

    def param_shapes(self):
        """Every parameter: checkpoint name -> shape, in checkpoint order."""
        D, E, N, R, K, V = (self.d_model, self.d_inner, self.d_state, self.rank,
                            self.d_conv, self.padded_vocab)
        Ns = self.state_dim
        shapes = {}
        if self.d_input:
            shapes[INPUT_W] = (D, self.d_input)
            shapes[INPUT_B] = (D,)
        else:
            shapes[EMBED] = (V, D)
        if self.pool == "cls":
            shapes[CLS_TOKEN] = (D,)
        for i in range(self.n_layer):
            shapes[norm_name(i)] = (D,)
            layer = {"in_proj.weight": (2 * E, D), "conv1d.weight": (E, 1, K),
                     "conv1d.bias": (E,), "x_proj.weight": (R + 2 * Ns, E),
                     "dt_proj.weight": (E, R), "dt_proj.bias": (E,), "A_log": (E, N),
                     "D": (E,), "out_proj.weight": (D, E)}
            for t in MIXER_TENSORS:
                shapes[mixer_name(i, t)] = layer[t]
            if self.scenario != "default":
                shapes[mixer_name(i, SCEN_P)] = (N, E)
                shapes[mixer_name(i, SCEN_Q)] = (N,)
            if self.reorders(i):
                shapes[mixer_name(i, IMP_K)] = (E,)
        shapes[NORM_F] = (D,)
        if self.n_classes:
            shapes[CLS_W] = (self.n_classes, D)
            shapes[CLS_B] = (self.n_classes,)
        elif not self.tie_embeddings or self.d_input:
            shapes[LM_HEAD] = (V, D)
        return shapes


# ---------------------------------------------------------------------------
# The model.  `p` is a dict: checkpoint name -> tensor (any float dtype).

def rms_norm(x, w, eps):
    """y = x / sqrt(mean(x^2) + eps) * w over the last axis."""
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def causal_conv(u, w, b):
    """Depthwise causal conv, zero left padding.  u (B, L, E), w (E, K), b (E).
    out[t, e] = b[e] + sum_k w[e, k] * u[t - K + 1 + k, e]."""
    K, L = w.shape[1], u.shape[1]
    padded = F.pad(u, (0, 0, K - 1, 0))              # (B, K-1+L, E)
    out = b.expand_as(u)
    for k in range(K):
        out = out + w[:, k] * padded[:, k:k + L]
    return out


def probe_step(h, t, keep, patch, states):
    """The probes on the state h_t after step t of a scan (Mamba-1's or
    Mamba-2's): keep multiplies it, patch (t, value) replaces it at its
    position, states (a list) gets it.  Returns h_t."""
    if keep is not None:
        h = h * keep
    if patch is not None and t == patch[0]:
        h = patch[1].to(h.dtype)
    if states is not None:
        states.append(h)
    return h


def selective_scan(u, delta, A, Bm, Cm, Dskip, keep=None, patch=None, states=None):
    """Sequential scan of ssmlab-math(7) MODEL step 5.  u, delta (B, L, E); A (E, N);
    Bm, Cm (B, L, N); Dskip (E).  Returns y (B, L, E).  Probes: keep (E, N)
    multiplies h after every step (0 ablates a channel); patch = (t, h (B, E, N))
    replaces h_t before y_t is read; states, a list, gets h_t (B, E, N) of every t."""
    batch, L, E = u.shape
    h = u.new_zeros(batch, E, A.shape[1])           # (B, E, N)
    ys = []
    for t in range(L):
        dt = delta[:, t, :, None]                   # (B, E, 1)
        h = probe_step(torch.exp(dt * A) * h + dt * Bm[:, t, None, :] * u[:, t, :, None], t, keep, patch,
                       states)
        ys.append((h * Cm[:, t, None, :]).sum(-1) + Dskip * u[:, t])
    return torch.stack(ys, dim=1)


def hidden_attention(delta, A, Bm, Cm):
    """The scan as one matrix per channel (ssmlab-math(7) RECENCY):
    alpha[b, t, s, e] = sum_n C_t[n] exp(A[e,n] sum_{k=s+1..t} delta_k[e]) delta_s[e] B_s[n]
    for s <= t, zero above the diagonal.  Shape (B, L, L, E)."""
    L = delta.shape[1]
    cum = delta.cumsum(1)                                      # (B, L, E)
    gap = cum[:, :, None, :] - cum[:, None, :, :]              # (B, t, s, E)
    causal = torch.ones(L, L, dtype=torch.bool).tril()[None, :, :, None]
    gap = gap.masked_fill(~causal, 0.0)
    decay = torch.exp(gap[..., None] * A)                      # (B, t, s, E, N)
    alpha = torch.einsum("btn,btsen,bsn->btse", Cm, decay, Bm) * delta[:, None]
    return alpha.masked_fill(~causal, 0.0)


def selective_scan_closed_form(u, delta, A, Bm, Cm, Dskip):
    """The same scan through the hidden-attention matrix (a second formulation)."""
    alpha = hidden_attention(delta, A, Bm, Cm)
    return torch.einsum("btse,bse->bte", alpha, u) + Dskip * u


# A deliberate bug for `eval --bug NAME` (None in every other use); the model
# functions below consult it in the few places the new paths could go wrong.
BUG = None

# A probe of the forward pass (ssmlab-inspect(1) DUMP and INTERVENTIONS), None
# in a plain run, else a dict of any of:
#   "record": a dict the forward fills: "embeddings", "norm_f", "logits" and per
#             layer i "layers.{i}.residual", ".u", ".z", ".delta", ".B", ".C",
#             ".h" (B, L, E, Ns), ".y" (the scan output before the gate), ".out";
#   "ablate": [(layer, e, n)], n = -1 for every n of channel e: h[e, n] held at 0;
#   "pin":    [(layer, e, n, value)]: A[e, n] replaced by value;
#   "patch":  ("residual", layer, pos, x (B, D)) or ("state", layer, pos, h (B, E, Ns)).
PROBE = None


def probe_get(key, default=None):
    return PROBE.get(key, default) if PROBE else default


def probe_record(name, value):
    rec = probe_get("record")
    if rec is not None:
        rec[name] = value.detach().clone()


def upper(P):
    """U(P) of ssmlab-math(7) DYNAMICS for P (N, E), E >= N: P's strict upper triangle, 1 on
    the diagonal (i, i), 0 below it."""
    N, E = P.shape
    strict = torch.ones(N, E, dtype=torch.bool).triu(1)
    return torch.where(strict, P, torch.eye(N, E, dtype=P.dtype))


def scenario_sigma(scenario, q):
    """sigma (N) of ssmlab-math(7) DYNAMICS: softplus(q) + 0.7, -(softplus(q) + 0.7), or
    +softplus(q) on the first floor(N/2) rows and -softplus(q) on the rest."""
    sp = F.softplus(q)
    if scenario == "positive":
        return sp + 0.7
    if scenario == "negative":
        return -(sp + 0.7)
    N = q.shape[0]
    n_pos = -(-N // 2) if BUG == "mixed-ceil" else N // 2
    sign = torch.ones(N, dtype=q.dtype)
    sign[n_pos:] = -1.0
    return sign * sp


def x_proj_weight(p, i, cfg):
    """The W_x (R + 2Ns, E) layer i computes with: the stored x_proj, whose
    learned B and C rows (channels n_one .. n_one+N-1 of each block) are
    replaced by S_B = diag(sigma) U(P) and S_C = U(P) under a scenario."""
    W = p[mixer_name(i, "x_proj.weight")]
    if cfg.scenario == "default":
        return W
    R, N, Ns, n1 = cfg.rank, cfg.d_state, cfg.state_dim, cfg.n_one
    U = upper(p[mixer_name(i, SCEN_P)])
    SB = scenario_sigma(cfg.scenario, p[mixer_name(i, SCEN_Q)])[:, None] * U
    b0, c0 = R + n1, R + Ns + n1                      # first learned B row, C row
    return torch.cat([W[:b0], SB, W[b0 + N:c0], U, W[c0 + N:]], 0)


def state_A(p, i, cfg):
    """A (E, Ns) in channel order [one-polarized A = 0, the N learned
    -exp(A_log), zero-polarized A = -100] (ssmlab-math(7) RECENCY)."""
    A = -torch.exp(p[mixer_name(i, "A_log")])
    E = A.shape[0]
    one = A.new_zeros(E, cfg.n_one)
    zero = A.new_full((E, cfg.n_zero), PINNED_A_ZERO)
    parts = [zero, A, one] if BUG == "polarize-swap" else [one, A, zero]
    A = torch.cat(parts, 1)
    for (l, e, n, v) in probe_get("pin", []):
        if l == i:
            A = A.clone()
            A[e, n] = v
    return A


def probe_keep(i, E, Ns, like):
    """The keep mask (E, Ns) of layer i's ablations, or None."""
    cuts = [(e, n) for (l, e, n) in probe_get("ablate", []) if l == i]
    if not cuts:
        return None
    keep = like.new_ones(E, Ns)
    for e, n in cuts:
        if n < 0:
            keep[e, :] = 0
        else:
            keep[e, n] = 0
    return keep


def mixer_in(p, i, xn, cfg):
    """Steps 1-2: u = SiLU(conv(W_in xn)[u half]) and the gate z, (B, L, E) each."""
    E = cfg.d_inner
    w = lambda t: p[mixer_name(i, t)]
    uz = xn @ w("in_proj.weight").T                           # (B, L, 2E)
    u, z = uz[..., :E], uz[..., E:]
    u = F.silu(causal_conv(u, w("conv1d.weight").reshape(E, -1), w("conv1d.bias")))
    return u, z


def dt_raw(p, i, dbc, cfg):
    """W_dt delta + b_dt (B, L, E) from dbc = u W_x^T (B, L, R+2Ns)."""
    return dbc[..., :cfg.rank] @ p[mixer_name(i, "dt_proj.weight")].T + p[mixer_name(i, "dt_proj.bias")]


def mixer_out(p, i, u, z, cfg):
    """Steps 3-6 from u and z: the selective scan, the gate and W_out."""
    R, Ns = cfg.rank, cfg.state_dim
    w = lambda t: p[mixer_name(i, t)]
    dbc = u @ x_proj_weight(p, i, cfg).T                       # (B, L, R+2Ns)
    Bm, Cm = dbc[..., R:R + Ns], dbc[..., R + Ns:]
    delta = F.softplus(dt_raw(p, i, dbc, cfg))                 # (B, L, E)
    patch = probe_get("patch")
    patch = (patch[2], patch[3]) if patch and patch[0] == "state" and patch[1] == i else None
    states = [] if probe_get("record") is not None else None
    y = selective_scan(u, delta, state_A(p, i, cfg), Bm, Cm, w("D"),
                       probe_keep(i, u.shape[-1], Ns, u), patch, states)   # (B, L, E)
    out = (y * F.silu(z)) @ w("out_proj.weight").T             # (B, L, D)
    if states is not None:
        for name, v in (("u", u), ("z", z), ("delta", delta), ("B", Bm), ("C", Cm),
                        ("h", torch.stack(states, 1)), ("y", y), ("out", out)):
            probe_record(f"layers.{i}.{name}", v)
    return out


def mixer(p, i, x, cfg):
    """Mixer of layer i (ssmlab-math(7) MODEL steps 1-6), no reordering.  x (B, L, D) is already normed."""
    u, z = mixer_in(p, i, x, cfg)
    return mixer_out(p, i, u, z, cfg)


def importance_scores(p, i, u0, cfg):
    """Layer i's s (B, L) = k . dtraw0 and dtraw0 = W_dt delta0 + b_dt (B, L, E),
    delta0 the first R columns of u0 W_x^T."""
    dtraw0 = dt_raw(p, i, u0 @ x_proj_weight(p, i, cfg).T, cfg)
    return dtraw0 @ p[mixer_name(i, IMP_K)], dtraw0


def reorder_matrix(s, mode, tau=SOFTSORT_TAU):
    """P-hat (B, L, L) with row i the weights of new position i.
    soft (SoftSort): s~ = -s, P-hat = softmax_j(-|sort_desc(s~)_i - s~_j| / tau).
    hard: P-hat[i, argsort(s)[i]] = 1 (ascending: most important last) in the
    forward pass, straight-through: its gradient is SoftSort's."""
    if BUG == "reorder-desc":
        s = -s
    if BUG == "tau-ignored":
        tau = SOFTSORT_TAU
    st = -s
    top = st.sort(dim=-1, descending=True).values
    soft = torch.softmax(-(top[..., :, None] - st[..., None, :]).abs() / tau, dim=-1)
    if mode == "soft":
        return soft
    order = torch.sort(s.detach(), dim=-1, stable=True).indices
    hard = F.one_hot(order, s.shape[-1]).to(s.dtype)
    if BUG == "hard-no-grad":
        return hard
    if ST_FROZEN is not None:          # finite differences of the straight-through surrogate
        return st_frozen(hard, soft)
    return hard + (soft - soft.detach())


# Finite differences cannot see a straight-through gradient: the loss of a
# hard sort is piecewise constant in the scores.  They can see the surrogate
# whose gradient it is, hard(theta0) + soft(theta) - soft(theta0): the sort
# and SoftSort matrix of every reordering layer frozen at the base point
# theta0.  ST_FROZEN is None, or {"calls": [(hard, soft), ...], "i": next}.
ST_FROZEN = None


def st_frozen(hard, soft):
    calls, i = ST_FROZEN["calls"], ST_FROZEN["i"]
    ST_FROZEN["i"] += 1
    if i == len(calls):                # recording the base point
        calls.append((hard.detach(), soft.detach()))
    h0, s0 = calls[i]
    return h0 + soft - s0


def layer(p, i, x, cfg, info=None):
    """x_{i+1} from x_i.  In a reordering layer only the SSM input u is
    permuted by P-hat, after the conv: z and the residual stream x keep input
    order.  The first reordering layer's scores and P-hat go into `info` (a
    dict) when given."""
    patch = probe_get("patch")
    if patch and patch[0] == "residual" and patch[1] == i:
        x = x.clone()
        x[:, patch[2]] = patch[3].to(x.dtype)
    probe_record(f"layers.{i}.residual", x)
    u, z = mixer_in(p, i, rms_norm(x, p[norm_name(i)], cfg.norm_eps), cfg)
    if cfg.reorders(i):
        s, dtraw0 = importance_scores(p, i, u, cfg)
        P = reorder_matrix(s, cfg.reorder, cfg.reorder_tau)
        u = P @ u
        if BUG == "reorder-z":
            z, x = P @ z, P @ x
        if info is not None and "scores" not in info:
            info.update(scores=s, perm=P, dtraw0=dtraw0)
    return x + mixer_out(p, i, u, z, cfg)


def backbone(p, cfg, x, stream=None, info=None):
    """Residual stack and final norm.  x (B, L, D) is x_0; returns RMSNorm_f(x_n).
    If `stream` is a list, the residual stream x_0 .. x_n is appended to it
    (x_0 in input order)."""
    for i in range(cfg.n_layer):
        if stream is not None:
            stream.append(x)
        x = layer(p, i, x, cfg, info)
    if stream is not None:
        stream.append(x)
    return rms_norm(x, p[NORM_F], cfg.norm_eps)


def model_input(p, cfg, inputs):
    """x_0: embedding of token ids (B, L), or the linear projection of
    continuous inputs (B, L, I); under pool cls the cls token appended as
    position L, so x_0 is (B, L+1, D)."""
    x = inputs @ p[INPUT_W].T + p[INPUT_B] if cfg.d_input else p[EMBED][inputs]
    if cfg.pool == "cls":
        tok = p[CLS_TOKEN].to(x.dtype).expand(x.shape[0], 1, x.shape[2])
        x = torch.cat([tok, x], 1) if BUG == "cls-first" else torch.cat([x, tok], 1)
    return x


def readout(cfg, out):
    """The classifier's input (B, D): the mean over positions, or the last one
    (pool last; pool cls, where it is the cls token's)."""
    if cfg.pool == "mean":
        return out.mean(1)
    return out[:, -2] if BUG == "last-off-by-one" else out[:, -1]


def forward(p, cfg, inputs, info=None):
    """Logits: (B, L, V) for the LM head, (B, C) for the classification head."""
    x0 = model_input(p, cfg, inputs)
    probe_record("embeddings", x0)
    out = backbone(p, cfg, x0, info=info)
    probe_record("norm_f", out)
    if cfg.n_classes:
        logits = readout(cfg, out) @ p[CLS_W].T + p[CLS_B]
    else:
        head = p[EMBED] if cfg.tie_embeddings and not cfg.d_input else p[LM_HEAD]
        logits = out @ head.T
    probe_record("logits", logits)
    return logits


def importance(p, cfg, inputs):
    """The first reordering layer's scores s (B, L), P-hat (B, L, L) and dtraw0 (B, L, E) in
    float64, no gradients (for choosing test weights and inputs)."""
    info = {}
    with torch.no_grad():
        forward({k: v.to(torch.float64) for k, v in p.items()}, cfg,
                inputs.to(torch.float64) if cfg.d_input else inputs, info)
    return info["scores"], info["perm"], info["dtraw0"]


def scale_importance(p, cfg, inputs, spread):
    """p with importance_k rescaled so the scores' standard deviation over
    `inputs` is `spread` (s is linear in k; SoftSort depends on its scale)."""
    name = mixer_name(cfg.first_reorder, IMP_K)
    s = importance(p, cfg, inputs)[0]
    return {**p, name: (p[name].to(torch.float64) * spread / s.std()).to(torch.float32)}


def score_gap(p, cfg, inputs):
    """The smallest gap between two scores of the first reordering layer, over the
    size of the terms they sum (max_t sum_e |k_e dtraw0_te|), which sets their
    rounding error: float32 computes s to about 1e-6 of that."""
    s, _, dtraw0 = importance(p, cfg, inputs)
    if s.shape[-1] < 2:
        return 1.0
    terms = (dtraw0 * p[mixer_name(cfg.first_reorder, IMP_K)].to(torch.float64)).abs().sum(-1).max()
    return (s.sort(-1).values.diff(dim=-1).min() / terms).item()


def spread_scores(p, factor, layer=0):
    """p with the layer's dt_proj.weight scaled by factor: W_dt delta then varies
    more from token to token against the shared b_dt, so the scores (and a
    hard sort of them) stand further above their rounding error."""
    name = mixer_name(layer, "dt_proj.weight")
    return {**p, name: p[name] * factor}


def separated_inputs(p, cfg, shape, generator, min_gap, tries=500):
    """Continuous inputs (float32, `shape`) whose layer-0 scores are at least
    min_gap apart (as score_gap measures), so a hard sort is the same in
    float32 and float64 and under small perturbations."""
    for _ in range(tries):
        x = torch.randn(shape, generator=generator)
        if score_gap(p, cfg, x) >= min_gap:
            return x
    raise RuntimeError(f"no inputs with scores {min_gap} apart in {tries} tries")


def lm_loss(logits, tokens):
    """Mean next-token cross-entropy over all B*(L-1) positions."""
    V = logits.shape[-1]
    return F.cross_entropy(logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1))


def loss_fn(p, cfg, inputs, labels=None):
    """The training loss: next-token CE (tokens), or class CE with labels (B)."""
    logits = forward(p, cfg, inputs)
    if cfg.n_classes:
        return F.cross_entropy(logits, labels)
    return lm_loss(logits, inputs)


def loss_and_grads(p, cfg, inputs, labels=None, dtype=torch.float64):
    """Loss, logits and d loss / d param for every parameter, computed in `dtype`."""
    leaves = {k: v.detach().to(dtype).clone().requires_grad_(True) for k, v in p.items()}
    if cfg.d_input:
        inputs = inputs.to(dtype)
    logits = forward(leaves, cfg, inputs)
    loss = (F.cross_entropy(logits, labels) if cfg.n_classes else lm_loss(logits, inputs))
    loss.backward()
    # a tensor outside the graph (importance_k under a hard sort) has gradient 0
    return loss.detach(), logits.detach(), {k: v.grad if v.grad is not None else torch.zeros_like(v)
                                            for k, v in leaves.items()}


# ---------------------------------------------------------------------------
# Parameters

def init_params(cfg, seed=0, perturb=True):
    """float32 parameters with the mamba_ssm initialisation (ssmlab-math(7) MODEL).  With
    perturb, D, norm weights, biases and A_log are moved off their initial
    constants (so a transposed or mis-indexed tensor shows up), and the
    embedding, x_proj and dt bias are scaled up so the scan carries a large
    share of every output and every gradient path carries signal.
    Scenario P is drawn like the (scaled) x_proj rows it replaces and q ~ N(0, 1);
    importance_k ~ U(+-E^-0.5).  Under a scenario the B and C rows of x_proj
    hold S_B and S_C, as in a checkpoint the engine writes."""
    g = torch.Generator().manual_seed(seed)
    uniform = lambda shape, bound: (torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1) * bound
    normal = lambda shape, std: torch.randn(shape, generator=g, dtype=torch.float64) * std
    D, E, N, R, K = cfg.d_model, cfg.d_inner, cfg.d_state, cfg.rank, cfg.d_conv
    Ns = cfg.state_dim
    p = {}
    for name, shape in cfg.param_shapes().items():
        if name == EMBED:
            p[name] = normal(shape, 0.02)
        elif name in (INPUT_W, INPUT_B):
            p[name] = uniform(shape, cfg.d_input ** -0.5)     # nn.Linear default
        elif name in (CLS_W, CLS_B, LM_HEAD):
            p[name] = uniform(shape, D ** -0.5)
        elif name.endswith("norm.weight") or name == NORM_F:
            p[name] = torch.ones(shape, dtype=torch.float64)
    for i in range(cfg.n_layer):
        m = lambda t: mixer_name(i, t)
        p[m("in_proj.weight")] = uniform((2 * E, D), D ** -0.5)
        p[m("conv1d.weight")] = uniform((E, 1, K), K ** -0.5)  # fan_in = K (depthwise)
        p[m("conv1d.bias")] = uniform((E,), K ** -0.5)
        p[m("x_proj.weight")] = uniform((R + 2 * Ns, E), E ** -0.5)
        p[m("dt_proj.weight")] = uniform((E, R), R ** -0.5)
        lo, hi = math.log(1e-3), math.log(1e-1)
        dt = torch.exp(lo + torch.rand(E, generator=g, dtype=torch.float64) * (hi - lo)).clamp(min=1e-4)
        p[m("dt_proj.bias")] = dt + torch.log(-torch.expm1(-dt))  # inverse softplus
        p[m("A_log")] = torch.log(torch.arange(1, N + 1, dtype=torch.float64)).repeat(E, 1)
        p[m("D")] = torch.ones(E, dtype=torch.float64)
        p[m("out_proj.weight")] = uniform((D, E), E ** -0.5) / math.sqrt(cfg.n_layer)
    if perturb:
        for name in p:
            if name.endswith("norm.weight") or name == NORM_F:
                p[name] = 1 + normal(p[name].shape, 0.2)
            elif name.endswith(".D"):
                p[name] = 1 + normal(p[name].shape, 0.5)
            elif name.endswith("A_log"):
                p[name] = p[name] + normal(p[name].shape, 0.2)
            elif name.endswith("dt_proj.bias"):
                p[name] = p[name] + 2 + normal(p[name].shape, 0.3)   # delta ~ 0.01 .. 0.7
            elif name.endswith("bias"):
                p[name] = p[name] + normal(p[name].shape, 0.1)
            elif name.endswith("x_proj.weight"):
                p[name] = p[name] * 3            # larger B, C: the scan, not D*u, dominates y
            elif name == EMBED:
                p[name] = p[name] * 5
    # the extras, drawn last so the other tensors do not depend on them
    for i in range(cfg.n_layer):
        if cfg.scenario != "default":
            p[mixer_name(i, SCEN_P)] = uniform((N, E), E ** -0.5) * (3 if perturb else 1)
            p[mixer_name(i, SCEN_Q)] = normal((N,), 1.0) if perturb else torch.zeros(N, dtype=torch.float64)
            p[mixer_name(i, "x_proj.weight")] = x_proj_weight(p, i, cfg)
    for i in range(cfg.n_layer):
        if cfg.reorders(i):
            p[mixer_name(i, IMP_K)] = uniform((E,), E ** -0.5)
    if cfg.pool == "cls":   # N(0, 0.02^2) like an embedding; perturbed: of the inputs' size
        p[CLS_TOKEN] = normal((D,), 0.02) * (25 if perturb else 1)
    shapes = cfg.param_shapes()
    return {name: p[name].to(torch.float32) for name in shapes}


def round_params(p, dtype):
    """The values a checkpoint stored in dtype ("F32", "F16", "BF16") holds, as float32."""
    torch_dtype = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}[dtype]
    return {k: v.to(torch_dtype).to(torch.float32) for k, v in p.items()}


# ---------------------------------------------------------------------------
# safetensors, written and read by hand: an 8-byte little-endian header
# length, a JSON header {name: {dtype, shape, data_offsets}}, raw LE data.

NP_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4",
             "U8": "u1", "BF16": "<u2"}


def tensor_bytes(t, dtype):
    t = torch.as_tensor(t).detach().cpu().contiguous()
    if dtype == "BF16":
        return t.to(torch.bfloat16).view(torch.int16).numpy().astype("<i2").tobytes()
    return t.numpy().astype(NP_DTYPES[dtype]).tobytes()


def write_safetensors(path, tensors, dtype="F32", metadata=None):
    """tensors: name -> tensor/array, all stored as dtype."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        data = tensor_bytes(t, dtype)
        header[name] = {"dtype": dtype, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)                  # align the data to 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def read_safetensors_header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n)), 8 + n


def read_safetensors(path):
    """name -> numpy array; BF16 comes back as float32, other dtypes as stored."""
    header, start = read_safetensors_header(path)
    with open(path, "rb") as f:
        raw = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dtype, shape = info["dtype"], info["shape"]
        if dtype not in NP_DTYPES:
            raise ValueError(f"{path}: {name}: unsupported dtype {dtype}")
        a = np.frombuffer(raw[start + begin:start + end], dtype=NP_DTYPES[dtype])
        if a.size != math.prod(shape) or start + end > len(raw):
            raise ValueError(f"{path}: {name}: data does not match shape {shape}")
        if dtype == "BF16":
            a = (a.astype(np.uint32) << 16).view(np.float32)
        out[name] = a.reshape(shape)
    return out


# ---------------------------------------------------------------------------
# Checkpoint directories (config.json + model.safetensors)

def ssmlab_json(cfg):
    """The "ssmlab" object of config.json (engine/checkpoint.c, cfg_read_ssmlab)."""
    o = {"input_kind": "continuous" if cfg.d_input else "tokens",
         "d_input": cfg.d_input or 1, "n_classes": cfg.n_classes, "norm_eps": cfg.norm_eps,
         "scenario": cfg.scenario, "polarize": cfg.polarize, "reorder": cfg.reorder,
         "pool": cfg.pool}
    if cfg.reorder != "off":
        o.update(reorder_tau=cfg.reorder_tau, reorder_layers=sorted(cfg.reorder_layers))
    return o


def config_json(cfg, naming="mamba_ssm"):
    c = config_json_keys(cfg, naming)
    if cfg.needs_ssmlab:
        c["ssmlab"] = ssmlab_json(cfg)
    return c


def config_json_keys(cfg, naming):
    if naming == "transformers":
        return {"model_type": "mamba", "architectures": ["MambaForCausalLM"],
                "hidden_size": cfg.d_model, "num_hidden_layers": cfg.n_layer,
                "state_size": cfg.d_state, "expand": cfg.expand,
                "intermediate_size": cfg.d_inner, "conv_kernel": cfg.d_conv,
                "time_step_rank": cfg.rank, "layer_norm_epsilon": cfg.norm_eps,
                "vocab_size": cfg.padded_vocab,
                "pad_vocab_size_multiple": cfg.pad_vocab_size_multiple,
                "tie_word_embeddings": cfg.tie_embeddings, "use_bias": False,
                "use_conv_bias": True, "residual_in_fp32": True}
    c = {"d_model": cfg.d_model, "n_layer": cfg.n_layer, "vocab_size": cfg.vocab_size,
         "ssm_cfg": {"d_state": cfg.d_state, "d_conv": cfg.d_conv, "expand": cfg.expand,
                     "dt_rank": cfg.dt_rank or "auto"},
         "rms_norm": True, "residual_in_fp32": True, "fused_add_norm": True,
         "pad_vocab_size_multiple": cfg.pad_vocab_size_multiple,
         "tie_embeddings": cfg.tie_embeddings}
    if cfg.norm_eps != 1e-5:
        c["norm_epsilon"] = cfg.norm_eps
    return c


def checkpoint_names(naming):
    """Reference name -> name in the file, for names that differ."""
    return {EMBED: EMBED_HF} if naming == "transformers" else {}


def write_checkpoint(dirpath, cfg, p, naming="mamba_ssm", dtype="F32"):
    """naming: "mamba_ssm" or "transformers"; dtype: "F32", "F16" or "BF16"."""
    os.makedirs(dirpath, exist_ok=True)
    with open(os.path.join(dirpath, "config.json"), "w") as f:
        json.dump(config_json(cfg, naming), f, indent=2)
    rename = checkpoint_names(naming)
    tensors = {rename.get(k, k): v for k, v in p.items()}
    extra = [k for k in tensors if k in (INPUT_W, INPUT_B, CLS_W, CLS_B, CLS_TOKEN)
             or k.rsplit(".", 1)[-1] in (SCEN_P, SCEN_Q, IMP_K)]
    meta = {"format": "pt"}
    if extra:
        meta["ssmlab.tensors"] = ",".join(extra)
    write_safetensors(os.path.join(dirpath, "model.safetensors"), tensors, dtype, meta)


def checkpoint_naming(dirpath):
    """ "transformers" when config.json uses the transformers keys, else "mamba_ssm"."""
    with open(os.path.join(dirpath, "config.json")) as f:
        return "transformers" if "hidden_size" in json.load(f) else "mamba_ssm"


def read_checkpoint(dirpath):
    """(Config, params as float32 tensors under the reference names)."""
    with open(os.path.join(dirpath, "config.json")) as f:
        c = json.load(f)
    if "hidden_size" in c:
        cfg = Config(d_model=c["hidden_size"], n_layer=c["num_hidden_layers"],
                     vocab_size=c["vocab_size"], d_state=c["state_size"],
                     d_conv=c["conv_kernel"], expand=c["expand"],
                     dt_rank=c["time_step_rank"],
                     pad_vocab_size_multiple=c.get("pad_vocab_size_multiple", 8),
                     tie_embeddings=c.get("tie_word_embeddings", True),
                     norm_eps=c.get("layer_norm_epsilon", 1e-5))
    else:
        s = c.get("ssm_cfg", {})
        rank = s.get("dt_rank", "auto")
        cfg = Config(d_model=c["d_model"], n_layer=c["n_layer"],
                     vocab_size=c.get("vocab_size", 0), d_state=s.get("d_state", 16),
                     d_conv=s.get("d_conv", 4), expand=s.get("expand", 2),
                     dt_rank=0 if rank == "auto" else rank,
                     pad_vocab_size_multiple=c.get("pad_vocab_size_multiple", 8),
                     tie_embeddings=c.get("tie_embeddings", True),
                     norm_eps=c.get("norm_epsilon", 1e-5))
    x = c.get("ssmlab", {})
    continuous = x.get("input_kind", "tokens") == "continuous"
    cfg = Config(**{**cfg.__dict__, "vocab_size": 0 if continuous else cfg.vocab_size,
                    "d_input": x.get("d_input", 1) if continuous else 0,
                    "n_classes": x.get("n_classes", 0), "norm_eps": x.get("norm_eps", cfg.norm_eps),
                    "scenario": x.get("scenario", "default"), "polarize": x.get("polarize", "none"),
                    "reorder": x.get("reorder", "off"), "pool": x.get("pool", "mean"),
                    "reorder_tau": x.get("reorder_tau", 1.0),
                    "reorder_layers": tuple(x.get("reorder_layers", (0,)))})
    tensors = read_safetensors(os.path.join(dirpath, "model.safetensors"))
    back = {v: k for k, v in checkpoint_names("transformers").items()}
    p = {back.get(k, k): torch.from_numpy(v.astype(np.float32)) for k, v in tensors.items()}
    if LM_HEAD in p and cfg.tie_embeddings and not cfg.d_input:
        cfg.tie_embeddings = False
    for name, shape in cfg.param_shapes().items():
        if name not in p:
            raise ValueError(f"{dirpath}: missing tensor {name}")
        if tuple(p[name].shape) != tuple(shape):
            raise ValueError(f"{dirpath}: {name} has shape {tuple(p[name].shape)}, want {shape}")
    return cfg, {k: p[k] for k in cfg.param_shapes()}


# ---------------------------------------------------------------------------
# `eval`: this reference behind the `ssmlab eval` command line, in float32.
# --bug injects a deliberate engine bug, to show that check_engine.py fails.

BUGS = {
    "conv-flip": "the conv taps are applied in reverse order",
    "loss-over-L": "the loss is averaged over B*L positions instead of B*(L-1)",
    "grad-D": "the gradient of every D is 0.3% too large",
    "mixed-ceil": "scenario mixed makes the first ceil(N/2) rows positive, not floor(N/2)",
    "polarize-swap": "the zero-polarized channel comes first and the one-polarized last",
    "reorder-z": "reordering permutes z and the residual stream as well as u (the earlier behaviour)",
    "reorder-desc": "reordering sorts by decreasing score (most important first)",
    "hard-no-grad": "reorder hard passes no gradient through the sort (not straight-through)",
    "tau-ignored": "SoftSort uses tau = 1 whatever reorder_tau says",
    "cls-first": "pool cls prepends the cls token instead of appending it",
    "last-off-by-one": "pool last and cls read the next-to-last position",
}


def parse_tokens(text):
    rows = [[int(v) for v in row.split(",")] for row in text.split(";")]
    if len({len(r) for r in rows}) != 1:
        raise ValueError("--tokens: sequences differ in length")
    return torch.tensor(rows, dtype=torch.long)


def parse_labels(text):
    return torch.tensor([int(v) for v in text.split(",")], dtype=torch.long)


def cmd_eval(args):
    global BUG
    BUG = args.bug
    cfg, p = read_checkpoint(args.model)
    if bool(cfg.n_classes) != bool(args.inputs):
        raise SystemExit("eval: a classifier takes --inputs and --labels, a language model --tokens")
    if cfg.n_classes:
        inputs = torch.from_numpy(np.load(args.inputs).astype(np.float32))
        labels = parse_labels(args.labels)
    else:
        inputs, labels = parse_tokens(args.tokens), None
    leaves = {k: v.clone().requires_grad_(True) for k, v in p.items()}
    used = dict(leaves)
    if args.bug == "conv-flip":
        for i in range(cfg.n_layer):
            used[mixer_name(i, "conv1d.weight")] = leaves[mixer_name(i, "conv1d.weight")].flip(-1)
    logits = forward(used, cfg, inputs)
    loss = F.cross_entropy(logits, labels) if cfg.n_classes else lm_loss(logits, inputs)
    if args.bug == "loss-over-L":
        loss = loss * (inputs.shape[1] - 1) / inputs.shape[1]
    loss.backward()
    grads = {k: v.grad if v.grad is not None else torch.zeros_like(v) for k, v in leaves.items()}
    if args.bug == "grad-D":
        grads = {k: g * 1.003 if k.endswith(".D") else g for k, g in grads.items()}
    out = logits.detach().numpy().astype(np.float32)
    np.save(args.save_logits, out[0] if out.shape[0] == 1 and not cfg.n_classes else out)
    rename = checkpoint_names(checkpoint_naming(args.model))
    write_safetensors(args.save_grads, {rename.get(k, k): g for k, g in grads.items()})
    print("batch,length,loss")
    print(f"{inputs.shape[0]},{inputs.shape[1]},{loss.item():.9g}")


# ---------------------------------------------------------------------------
# Self-test

def rel_err(got, ref):
    """max |got - ref| / max |ref| (the measure every check here uses)."""
    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    scale = np.abs(ref).max() if ref.size else 0.0
    diff = np.abs(got - ref).max() if ref.size else 0.0
    return diff / scale if scale > 0 else diff


def finite_difference_grads(p, cfg, inputs, labels=None, h=1e-5):
    """Central differences of the float64 loss for every element of every parameter."""
    global ST_FROZEN
    p = {k: v.detach().to(torch.float64).clone() for k, v in p.items()}
    if cfg.d_input:
        inputs = inputs.to(torch.float64)
    grads = {}
    if cfg.reorder == "hard":          # record the base point's sorts, then replay them
        ST_FROZEN = {"calls": [], "i": 0}
        with torch.no_grad():
            loss_fn(p, cfg, inputs, labels)
    try:
        with torch.no_grad():
            for name, t in p.items():
                grads[name] = fd_tensor(p, cfg, inputs, labels, t, h)
    finally:
        ST_FROZEN = None
    return grads


def fd_tensor(p, cfg, inputs, labels, t, h):
    """Central differences of the loss for every element of t (a tensor of p)."""
    def loss():
        if ST_FROZEN is not None:
            ST_FROZEN["i"] = 0
        return loss_fn(p, cfg, inputs, labels).item()
    g = torch.zeros_like(t)
    flat, gflat = t.view(-1), g.view(-1)
    for j in range(flat.numel()):
        keep = flat[j].item()
        flat[j] = keep + h
        up = loss()
        flat[j] = keep - h
        down = loss()
        flat[j] = keep
        gflat[j] = (up - down) / (2 * h)
    return g


class SelfTest:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, name, err, tol, expect_fail=False):
        """PASS when err <= tol, or, with expect_fail, when err > tol (the check bites)."""
        ok = (err > tol) if expect_fail else (err <= tol)
        self.passed += ok
        self.failed += not ok
        rule = f"must exceed {tol:.0e}" if expect_fail else f"tol {tol:.0e}"
        print(f"{'PASS' if ok else 'FAIL'}  {name:<58} err={err:.2e} ({rule})")


def self_test_variants(t):
    """Scenarios, polarization and reordering, beyond finite differences."""
    global BUG
    f64 = torch.float64
    # U(P) and the spectrum of S_B S_C^T: the signs sigma promises (ssmlab-math(7) DYNAMICS).
    P = torch.randn(5, 8, dtype=f64)
    U = upper(P)
    want = torch.triu(P, 1) + torch.eye(5, 8, dtype=f64)
    t.check("U(P): strict upper triangle of P, 1 on the diagonal, 0 below", rel_err(U, want), 0)
    for scenario, n_pos in (("positive", 5), ("negative", 0), ("mixed", 2)):
        cfg = Config(d_model=4, n_layer=1, vocab_size=6, d_state=5, scenario=scenario,
                     polarize="both")
        p = init_params(cfg, seed=3)
        W = x_proj_weight(p, 0, cfg).to(f64).numpy()
        R, Ns, n1 = cfg.rank, cfg.state_dim, cfg.n_one
        SB, SC = W[R + n1:R + n1 + 5], W[R + Ns + n1:R + Ns + n1 + 5]
        ev = np.linalg.eigvals(SB @ SC.T)
        got = (int((ev.real > 0).sum()), int((ev.real < 0).sum()), float(np.abs(ev.imag).max()))
        t.check(f"spectrum of S_B S_C^T, {scenario}: {got[0]} > 0, {got[1]} < 0, real",
                abs(got[0] - n_pos) + abs(got[1] - (5 - n_pos)) + (got[2] > 1e-9), 0)
        stored = p[mixer_name(0, "x_proj.weight")].to(f64)
        t.check(f"  init_params stores S_B, S_C in x_proj ({scenario})", rel_err(stored, W), 1e-6)

    # Polarization: A in channel order [0, -exp(A_log), -100], and pinned
    # channels whose B rows are zero change nothing.
    plain = Config(d_model=8, n_layer=2, vocab_size=11, d_state=3, d_conv=3)
    both = Config(**{**plain.__dict__, "polarize": "both"})
    p = init_params(plain, seed=4)
    A = state_A(p, 0, both)
    t.check("polarize both: A = [0, -exp(A_log), -100] per channel",
            rel_err(A, torch.cat([torch.zeros(16, 1), -torch.exp(p[mixer_name(0, "A_log")]),
                                  torch.full((16, 1), -100.0)], 1)), 0)
    R = plain.rank
    pp = dict(p)
    for i in range(2):
        W = p[mixer_name(i, "x_proj.weight")]
        pin = torch.zeros(1, W.shape[1])
        c_pin = torch.randn(1, W.shape[1])        # C of a channel whose state stays 0
        pp[mixer_name(i, "x_proj.weight")] = torch.cat(
            [W[:R], pin, W[R:R + 3], pin, c_pin, W[R + 3:], c_pin], 0)
    tokens = torch.randint(0, 11, (2, 6))
    t.check("polarize both with zero pinned B rows = no polarization",
            rel_err(forward(pp, both, tokens), forward(p, plain, tokens)), 1e-6)

    # Reordering: hard P-hat sorts the scores ascending; SoftSort rows sum to 1
    # and tend to the hard sort as tau -> 0.
    cfg = Config(d_model=4, n_layer=2, d_state=3, d_conv=3, d_input=3, n_classes=3, reorder="hard")
    g = torch.Generator().manual_seed(5)
    p = spread_scores(init_params(cfg, seed=5), 10)
    p = scale_importance(p, cfg, torch.randn(3, 7, 3, generator=g), 1.0)
    x = separated_inputs(p, cfg, (3, 7, 3), g, 2e-4)
    s, hard, _ = importance(p, cfg, x)
    perm_ok = bool(((hard == 0) | (hard == 1)).all() and (hard.sum(-1) == 1).all() and (hard.sum(-2) == 1).all())
    t.check("hard P-hat is a permutation", 0 if perm_ok else 1, 0)
    ordered = (hard @ s[..., None])[..., 0]
    t.check("hard P-hat s is ascending (most important last)", int((ordered.diff(dim=-1) <= 0).sum()), 0)
    soft = reorder_matrix(s, "soft")
    t.check("SoftSort rows sum to 1", rel_err(soft.sum(-1), torch.ones(3, 7, dtype=f64)), 1e-12)
    t.check("SoftSort with tau = 1e-4 is the hard sort", rel_err(reorder_matrix(s, "soft", 1e-4), hard), 1e-9)
    t.check("SoftSort with tau = 1 is not the hard sort", rel_err(soft, hard), 1e-2, expect_fail=True)

    # The checks can fail: every injected bug changes the logits.
    tau = Config(**{**cfg.__dict__, "reorder": "soft", "reorder_tau": 0.3})
    cases = [("mixed-ceil", Config(d_model=4, n_layer=1, vocab_size=6, d_state=5, scenario="mixed"), None),
             ("polarize-swap", both, None), ("reorder-z", cfg, x), ("reorder-desc", cfg, x),
             ("tau-ignored", tau, x)]
    pooled = Config(d_model=4, n_layer=2, d_state=3, d_conv=3, d_input=3, n_classes=3, pool="cls")
    xp = torch.randn(3, 7, 3, generator=g)
    cases += [("cls-first", pooled, xp), ("last-off-by-one", pooled, xp),
              ("last-off-by-one", Config(**{**pooled.__dict__, "pool": "last"}), xp)]
    for bug, c, inputs in cases:
        q = init_params(c, seed=6) if c not in (cfg, tau) else p
        inputs = inputs if inputs is not None else torch.randint(0, c.vocab_size, (2, 6))
        good = forward(q, c, inputs).detach()
        BUG = bug
        try:
            bad = forward(q, c, inputs).detach()
        finally:
            BUG = None
        what = (f"pool {c.pool}" if c.pool != "mean" else c.reorder) if c.d_input else c.polarize + '/' + c.scenario
        t.check(f"bug {bug} is caught in the logits ({what})",
                rel_err(bad, good), 1e-4, expect_fail=True)


def self_test():
    torch.manual_seed(0)
    t = SelfTest()
    f64 = torch.float64

    # The sequential scan against the hidden-attention formulation.
    B, L, E, N = 2, 7, 6, 5
    u, Bm, Cm = torch.randn(B, L, E, dtype=f64), torch.randn(B, L, N, dtype=f64), torch.randn(B, L, N, dtype=f64)
    delta = F.softplus(torch.randn(B, L, E, dtype=f64))
    A = -torch.exp(torch.randn(E, N, dtype=f64))
    Dskip = torch.randn(E, dtype=f64)
    t.check("scan: sequential vs hidden-attention form",
            rel_err(selective_scan(u, delta, A, Bm, Cm, Dskip),
                    selective_scan_closed_form(u, delta, A, Bm, Cm, Dskip)), 1e-12)

    # The causal conv against torch's conv1d (padding K-1, keep the first L).
    K = 4
    w, b = torch.randn(E, K, dtype=f64), torch.randn(E, dtype=f64)
    ref = F.conv1d(u.transpose(1, 2), w[:, None, :], b, padding=K - 1, groups=E)[..., :L].transpose(1, 2)
    t.check("conv: shifted taps vs torch conv1d", rel_err(causal_conv(u, w, b), ref), 1e-12)
    t.check("conv: position 0 sees only u_0", rel_err(causal_conv(u, w, b)[:, 0], b + w[:, K - 1] * u[:, 0]), 1e-12)

    # Autograd against float64 finite differences, on tiny models.
    tiny = [("lm tied", Config(d_model=4, n_layer=2, vocab_size=6, d_state=3, d_conv=3), None),
            ("lm untied", Config(d_model=4, n_layer=1, vocab_size=5, d_state=2, d_conv=2,
                                 dt_rank=2, tie_embeddings=False), None),
            ("classifier, continuous input", Config(d_model=4, n_layer=2, d_state=3, d_conv=3,
                                                    d_input=3, n_classes=3), 3)]
    lm = dict(d_model=4, n_layer=2, vocab_size=6, d_state=3, d_conv=3)
    cls = dict(d_model=4, n_layer=2, d_state=3, d_conv=3, d_input=3, n_classes=3)
    tiny += [("lm scenario positive", Config(**lm, scenario="positive"), None),
             ("lm scenario negative, polarize zero", Config(**lm, scenario="negative", polarize="zero"), None),
             ("lm scenario mixed, polarize both", Config(**lm, scenario="mixed", polarize="both"), None),
             ("lm polarize one", Config(**lm, polarize="one"), None),
             ("classifier, scenario mixed", Config(**cls, scenario="mixed"), 3),
             ("classifier, reorder soft", Config(**cls, reorder="soft"), 3),
             ("classifier, reorder soft, tau 0.5, layers 0 and 1",
              Config(**cls, reorder="soft", reorder_tau=0.5, reorder_layers=(0, 1)), 3),
             ("classifier, reorder hard (straight-through)", Config(**cls, reorder="hard", polarize="both"), 3),
             ("classifier, reorder hard in layer 1", Config(**cls, reorder="hard", reorder_layers=(1,)), 3),
             ("classifier, pool last", Config(**cls, pool="last"), 3),
             ("classifier, pool cls, polarize both", Config(**cls, pool="cls", polarize="both"), 3)]
    for label, cfg, classes in tiny:
        p = init_params(cfg, seed=1)
        if cfg.d_input:
            g = torch.Generator().manual_seed(7)
            inputs, labels = torch.randn(2, 5, cfg.d_input, generator=g), torch.tensor([0, 2])
            if cfg.reorder != "off":   # scores with gaps of order 1: SoftSort is far from hard
                p = scale_importance(spread_scores(p, 4, cfg.first_reorder), cfg, inputs, 1.5)
            # (a hard sort needs no separated scores here: the finite
            # differences freeze it, see ST_FROZEN)
        else:
            inputs, labels = torch.randint(0, cfg.vocab_size, (2, 5)), None
        _, _, auto = loss_and_grads(p, cfg, inputs, labels)
        numeric = finite_difference_grads(p, cfg, inputs, labels)
        worst = max(rel_err(auto[k], numeric[k]) for k in p)
        t.check(f"autograd vs finite differences ({label}, {len(p)} tensors)", worst, 1e-5)
        if cfg.reorder != "off":
            big = max(v.abs().max().item() for v in auto.values())
            k = max(auto[mixer_name(i, IMP_K)].abs().max().item() for i in cfg.reorder_layers)
            t.check(f"  the {cfg.reorder} sort passes a real gradient to importance_k",
                    k / big, 1e-5, expect_fail=True)
        if cfg.scenario != "default":
            R, N, Ns, n1 = cfg.rank, cfg.d_state, cfg.state_dim, cfg.n_one
            rows = list(range(R + n1, R + n1 + N)) + list(range(R + Ns + n1, R + Ns + n1 + N))
            t.check("  the replaced B, C rows of x_proj get no gradient",
                    max(auto[mixer_name(i, "x_proj.weight")][rows].abs().max().item()
                        for i in range(cfg.n_layer)), 0)

    self_test_variants(t)

    # Gradients are non-trivial: every tensor gets some signal.
    cfg = Config(d_model=8, n_layer=2, vocab_size=11, d_state=3, d_conv=3)
    p = init_params(cfg, seed=2)
    tokens = torch.randint(0, 11, (2, 6))
    loss, logits, grads = loss_and_grads(p, cfg, tokens)
    zero = [k for k, g in grads.items() if g.abs().max().item() == 0]
    t.check("every gradient tensor is nonzero", len(zero), 0)
    manual = -torch.log_softmax(logits[:, :-1], -1).gather(-1, tokens[:, 1:, None]).mean()
    t.check("loss = mean -log p(next token) over B*(L-1)", abs(loss.item() - manual.item()), 1e-12)

    # File round trips.
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in ("F32", "F16", "BF16"):
            path = os.path.join(tmp, f"t_{dtype}.safetensors")
            write_safetensors(path, p, dtype)
            back = read_safetensors(path)
            rounded = round_params(p, dtype)
            t.check(f"safetensors round trip {dtype}",
                    max(rel_err(back[k].astype(np.float32), rounded[k]) for k in p), 0)
        for naming in ("mamba_ssm", "transformers"):
            d = os.path.join(tmp, naming)
            write_checkpoint(d, cfg, p, naming=naming)
            cfg2, p2 = read_checkpoint(d)
            same = cfg2.param_shapes() == cfg.param_shapes() and cfg2.padded_vocab == cfg.padded_vocab
            t.check(f"checkpoint round trip ({naming})",
                    max(rel_err(p2[k], p[k]) for k in p) if same else 1.0, 0)

    # The checks can fail: a 0.3% gradient error and a reversed conv are caught.
    g = grads[mixer_name(0, "D")]
    t.check("a 0.3% gradient error is caught", rel_err(g * 1.003, g), 1e-3, expect_fail=True)
    flipped = dict(p)
    flipped[mixer_name(0, "conv1d.weight")] = p[mixer_name(0, "conv1d.weight")].flip(-1)
    t.check("reversed conv taps are caught in the logits",
            rel_err(forward(flipped, cfg, tokens).detach(), logits), 1e-4, expect_fail=True)

    print(f"{t.passed} passed, {t.failed} failed")
    return 1 if t.failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--self-test", action="store_true", help="check the reference itself")
    ap.add_argument("--bug", choices=sorted(BUGS), help="inject an engine bug into eval")
    sub = ap.add_subparsers(dest="command")
    ev = sub.add_parser("eval", help="the `ssmlab eval` contract, computed by this reference")
    ev.add_argument("--model", required=True)
    ev.add_argument("--tokens", help="language model: token ids, e.g. \"1,2;3,4\"")
    ev.add_argument("--inputs", help="classifier: a float32 .npy of shape (B, L, I)")
    ev.add_argument("--labels", help="classifier: one class per sequence, e.g. 3,1")
    ev.add_argument("--save-logits", required=True)
    ev.add_argument("--save-grads", required=True)
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    if args.command == "eval":
        cmd_eval(args)
        return 0
    ap.print_help()
    return 64


if __name__ == "__main__":
    sys.exit(main())
