# mamba_ref.py — the PyTorch reference for ssmlab: a small, literal implementation
# of the Mamba-1 model of SPEC.md §1 (token, continuous-input and classification
# variants), its mamba_ssm-style initialisation, and hand-written safetensors /
# checkpoint I/O.  tests/ref/check_engine.py compares the C engine against it.
#
#   /usr/bin/python3 tests/ref/mamba_ref.py --self-test
#       checks the reference itself (scan and conv against second formulations,
#       autograd against float64 finite differences, file round trips).
#   /usr/bin/python3 tests/ref/mamba_ref.py [--bug NAME] eval --model DIR --tokens "1,2;3,4" \
#       --save-logits OUT.npy --save-grads OUT.safetensors
#       runs this reference in float32 behind the same command-line contract as
#       `ssmlab eval`, so check_engine.py can be tested (and made to fail with
#       --bug) without the C binary.
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
# ssmlab's extra tensors (SPEC §1: "clear names under the same prefixes").
# These follow engine/model.c (ssm_model_tensors).
INPUT_W = "backbone.input_proj.weight"       # (D, I)  continuous input
INPUT_B = "backbone.input_proj.bias"         # (D)
CLS_W = "classifier.weight"                   # (C, D)  classification head
CLS_B = "classifier.bias"                     # (C)

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
        shapes = {}
        if self.d_input:
            shapes[INPUT_W] = (D, self.d_input)
            shapes[INPUT_B] = (D,)
        else:
            shapes[EMBED] = (V, D)
        for i in range(self.n_layer):
            shapes[norm_name(i)] = (D,)
            layer = {"in_proj.weight": (2 * E, D), "conv1d.weight": (E, 1, K),
                     "conv1d.bias": (E,), "x_proj.weight": (R + 2 * N, E),
                     "dt_proj.weight": (E, R), "dt_proj.bias": (E,), "A_log": (E, N),
                     "D": (E,), "out_proj.weight": (D, E)}
            for t in MIXER_TENSORS:
                shapes[mixer_name(i, t)] = layer[t]
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


def selective_scan(u, delta, A, Bm, Cm, Dskip):
    """Sequential scan of SPEC §1 step 5.  u, delta (B, L, E); A (E, N);
    Bm, Cm (B, L, N); Dskip (E).  Returns y (B, L, E)."""
    batch, L, E = u.shape
    h = u.new_zeros(batch, E, A.shape[1])           # (B, E, N)
    ys = []
    for t in range(L):
        dt = delta[:, t, :, None]                   # (B, E, 1)
        h = torch.exp(dt * A) * h + dt * Bm[:, t, None, :] * u[:, t, :, None]
        ys.append((h * Cm[:, t, None, :]).sum(-1) + Dskip * u[:, t])
    return torch.stack(ys, dim=1)


def hidden_attention(delta, A, Bm, Cm):
    """The scan as one matrix per channel (SPEC §3):
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


def mixer(p, i, x, cfg):
    """Mixer of layer i (SPEC §1 steps 1-6).  x (B, L, D) is already normed."""
    E, N, R = cfg.d_inner, cfg.d_state, cfg.rank
    w = lambda t: p[mixer_name(i, t)]
    uz = x @ w("in_proj.weight").T                             # (B, L, 2E)
    u, z = uz[..., :E], uz[..., E:]
    u = F.silu(causal_conv(u, w("conv1d.weight").reshape(E, -1), w("conv1d.bias")))
    dbc = u @ w("x_proj.weight").T                             # (B, L, R+2N)
    dlow, Bm, Cm = dbc[..., :R], dbc[..., R:R + N], dbc[..., R + N:]
    delta = F.softplus(dlow @ w("dt_proj.weight").T + w("dt_proj.bias"))  # (B, L, E)
    A = -torch.exp(w("A_log"))                                 # (E, N)
    y = selective_scan(u, delta, A, Bm, Cm, w("D"))            # (B, L, E)
    y = y * F.silu(z)
    return y @ w("out_proj.weight").T                          # (B, L, D)


def backbone(p, cfg, x, stream=None):
    """Residual stack and final norm.  x (B, L, D) is x_0; returns RMSNorm_f(x_n).
    If `stream` is a list, the residual stream x_0 .. x_n is appended to it."""
    for i in range(cfg.n_layer):
        if stream is not None:
            stream.append(x)
        x = x + mixer(p, i, rms_norm(x, p[norm_name(i)], cfg.norm_eps), cfg)
    if stream is not None:
        stream.append(x)
    return rms_norm(x, p[NORM_F], cfg.norm_eps)


def model_input(p, cfg, inputs):
    """x_0: embedding of token ids (B, L), or the linear projection of
    continuous inputs (B, L, I)."""
    if cfg.d_input:
        return inputs @ p[INPUT_W].T + p[INPUT_B]
    return p[EMBED][inputs]


def forward(p, cfg, inputs):
    """Logits: (B, L, V) for the LM head, (B, C) for the classification head."""
    out = backbone(p, cfg, model_input(p, cfg, inputs))
    if cfg.n_classes:
        return out.mean(1) @ p[CLS_W].T + p[CLS_B]
    head = p[EMBED] if cfg.tie_embeddings and not cfg.d_input else p[LM_HEAD]
    return out @ head.T


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
    return loss.detach(), logits.detach(), {k: v.grad for k, v in leaves.items()}


# ---------------------------------------------------------------------------
# Parameters

def init_params(cfg, seed=0, perturb=True):
    """float32 parameters with the mamba_ssm initialisation (SPEC §1).  With
    perturb, D, norm weights, biases and A_log are moved off their initial
    constants (so a transposed or mis-indexed tensor shows up), and the
    embedding, x_proj and dt bias are scaled up so the scan carries a large
    share of every output and every gradient path carries signal."""
    g = torch.Generator().manual_seed(seed)
    uniform = lambda shape, bound: (torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1) * bound
    normal = lambda shape, std: torch.randn(shape, generator=g, dtype=torch.float64) * std
    D, E, N, R, K = cfg.d_model, cfg.d_inner, cfg.d_state, cfg.rank, cfg.d_conv
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
        p[m("x_proj.weight")] = uniform((R + 2 * N, E), E ** -0.5)
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

def config_json(cfg, naming="mamba_ssm"):
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
    if cfg.d_input:
        c["d_input"] = cfg.d_input
    if cfg.n_classes:
        c["n_classes"] = cfg.n_classes
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
    extra = [k for k in tensors if k in (INPUT_W, INPUT_B, CLS_W, CLS_B)]
    meta = {"format": "pt"}
    if extra:
        meta["ssmlab_extra_tensors"] = ",".join(extra)
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
                     d_input=c.get("d_input", 0), n_classes=c.get("n_classes", 0))
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
}


def parse_tokens(text):
    rows = [[int(v) for v in row.split(",")] for row in text.split(";")]
    if len({len(r) for r in rows}) != 1:
        raise ValueError("--tokens: sequences differ in length")
    return torch.tensor(rows, dtype=torch.long)


def cmd_eval(args):
    cfg, p = read_checkpoint(args.model)
    tokens = parse_tokens(args.tokens)
    leaves = {k: v.clone().requires_grad_(True) for k, v in p.items()}
    used = dict(leaves)
    if args.bug == "conv-flip":
        for i in range(cfg.n_layer):
            used[mixer_name(i, "conv1d.weight")] = leaves[mixer_name(i, "conv1d.weight")].flip(-1)
    logits = forward(used, cfg, tokens)
    loss = lm_loss(logits, tokens)
    if args.bug == "loss-over-L":
        loss = loss * (tokens.shape[1] - 1) / tokens.shape[1]
    loss.backward()
    grads = {k: v.grad for k, v in leaves.items()}
    if args.bug == "grad-D":
        grads = {k: g * 1.003 if k.endswith(".D") else g for k, g in grads.items()}
    out = logits.detach().numpy().astype(np.float32)
    np.save(args.save_logits, out[0] if out.shape[0] == 1 else out)
    rename = checkpoint_names(checkpoint_naming(args.model))
    write_safetensors(args.save_grads, {rename.get(k, k): g for k, g in grads.items()})
    print("batch,length,loss")
    print(f"{tokens.shape[0]},{tokens.shape[1]},{loss.item():.9g}")


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
    p = {k: v.detach().to(torch.float64).clone() for k, v in p.items()}
    if cfg.d_input:
        inputs = inputs.to(torch.float64)
    grads = {}
    with torch.no_grad():
        for name, t in p.items():
            g = torch.zeros_like(t)
            flat, gflat = t.view(-1), g.view(-1)
            for j in range(flat.numel()):
                keep = flat[j].item()
                flat[j] = keep + h
                up = loss_fn(p, cfg, inputs, labels).item()
                flat[j] = keep - h
                down = loss_fn(p, cfg, inputs, labels).item()
                flat[j] = keep
                gflat[j] = (up - down) / (2 * h)
            grads[name] = g
    return grads


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
    for label, cfg, classes in tiny:
        p = init_params(cfg, seed=1)
        if cfg.d_input:
            inputs, labels = torch.randn(2, 5, cfg.d_input), torch.tensor([0, 2])
        else:
            inputs, labels = torch.randint(0, cfg.vocab_size, (2, 5)), None
        _, _, auto = loss_and_grads(p, cfg, inputs, labels)
        numeric = finite_difference_grads(p, cfg, inputs, labels)
        worst = max(rel_err(auto[k], numeric[k]) for k in p)
        t.check(f"autograd vs finite differences ({label}, {len(p)} tensors)", worst, 1e-5)

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
    ev.add_argument("--tokens", required=True)
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
