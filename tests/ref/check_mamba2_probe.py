# check_mamba2_probe.py — the PyTorch reference check of the probes of a
# Mamba-2 model (ssmlab-inspect(1) MAMBA-2: dump, states, interventions).
# For each case it writes a random Mamba-2 checkpoint with
# tests/ref/mamba2_ref.py and compares, against the float64 reference
# (mamba2_ref.forward with a probe dict):
#   dump        `inspect --dump`: the tensor names and order (residual x z
#               dt B C h y out per layer), every shape (dt (B, L, H), B and C
#               (B, L, G, N), h (B, L, H, P, N)) and every value, max|a -
#               b| / max|b| <= 1e-4;
#   states      `inspect --states`: ||h_t||_F, the effective rank of h_t as
#               an (H P) x N matrix, the horizon 1 / (mean_t dt_t[h] |A_h|)
#               of every head, 1e-4 relative;
#   interventions `eval --ablate/--pin/--patch --save-logits`: the logits of
#               head ablations, (p, n) entry ablations, pins of A_h, residual
#               and state patches, 1e-4 relative;
#   gradients   `inspect --influence --probes 0` with ablations and pins
#               attached: I(t, s) = ||d x_n[t] / d x_0[s]||_F from the
#               engine's backward against torch.autograd's Jacobian of the
#               intervened reference, 1e-4 relative;
#   attention   `inspect --attention --layer 0` with a head ablated and an
#               A_h pinned: the mean over heads of |alpha_h| with that head's
#               map 0 and the pinned A_h, 1e-4 of the largest;
#   flow        `inspect --flow` of the last layer's mixer with a head
#               ablated and an A_h pinned: ||x_i|| after every Euler step,
#               1e-4 relative.
# Cases: one and two groups, a length that is not a multiple of the chunk
# size, B = 2 (influence: B = 1), tied and untied heads.
#
#   /usr/bin/python3 tests/ref/check_mamba2_probe.py [BINARY] [--keep] [--break-reference]
# --break-reference gives the reference the wrong probe (every head one
# further on, h * 1.01 in the dump): the dump, states, intervention,
# influence, flow and attention checks must fail.  Ends with "N passed, M failed"; exit status
# 1 when anything failed.
import os
import shlex
import sys
from dataclasses import dataclass

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_norms  # noqa: E402
import check_states  # noqa: E402
import mamba2_ref as ref2  # noqa: E402
import mamba_ref as ref  # noqa: E402
import refcheck  # noqa: E402
from refcheck import Report, parse_args, run_cases, tokens_arg  # noqa: E402

TOL = 1e-4
PER_LAYER = ("residual", "x", "z", "dt", "B", "C", "h", "y", "out")


@dataclass
class Case:
    name: str
    cfg: ref2.Config
    B: int
    L: int
    seed: int


CASES = [
    Case("g2-b2-l9", ref2.Config(d_model=16, n_layer=2, vocab_size=37, d_state=4, head_dim=4, n_groups=2,
                                 chunk_size=4), B=2, L=9, seed=11),
    Case("g1-untied", ref2.Config(d_model=12, n_layer=3, vocab_size=29, d_state=3, head_dim=6, n_groups=1,
                                  chunk_size=5, tie_embeddings=False), B=2, L=7, seed=12),
]


def recorded(p, cfg, tokens, probe=None):
    """The reference forward's record (float64 tensors) under probe."""
    probe = dict(probe or {}, record={})
    with torch.no_grad():
        ref2.forward(p, cfg, tokens, probe=probe)
    return probe["record"]


def shifted(probe, cfg):
    """The same probe one head further on (--break-reference)."""
    H = cfg.n_heads
    return dict(probe, ablate=[(l, (h + 1) % H, j) for (l, h, j) in probe.get("ablate", [])],
                pin=[(l, (h + 1) % H, v) for (l, h, v) in probe.get("pin", [])])


# ---------------------------------------------------------------------------
# The dump

def check_dump(case, command, report, workdir, model_dir, p, tokens, brk):
    cfg = case.cfg
    rec = recorded(p, cfg, tokens)
    out = os.path.join(workdir, "dump.safetensors")
    try:
        run = refcheck.run_command(shlex.split(command) + ["inspect", "--model", model_dir, "--tokens",
                                                           tokens_arg(tokens), "--dump", out])
        if run.stdout:
            raise RuntimeError("--dump alone printed tables")
        got = ref.read_safetensors(out)
        header, _ = ref.read_safetensors_header(out)
    except (RuntimeError, OSError) as e:
        report.line(False, f"{case.name}/dump", str(e))
        return
    names = [k for k in header if k != "__metadata__"]
    want_names = (["embeddings"] + [f"layers.{i}.{t}" for i in range(cfg.n_layer) for t in PER_LAYER]
                  + ["norm_f", "logits"])
    report.line(names == want_names, f"{case.name}/dump names", f"{len(names)} tensors")
    worst, worst_name, bad = 0.0, "", []
    for name in want_names:
        want = rec[name].numpy()
        if name.startswith("layers.0.h") and brk:
            want = want * 1.01
        if name == "logits":
            want = want[..., :got[name].shape[-1]] if want.shape[-1] > got[name].shape[-1] else want
        if name not in got or tuple(got[name].shape) != tuple(want.shape):
            bad.append(f"{name} {tuple(got[name].shape) if name in got else None} want {tuple(want.shape)}")
            continue
        if name == "logits":   # the padded vocabulary's extra columns
            continue
        err = ref.rel_err(got[name], want)
        if err >= worst:
            worst, worst_name = err, name
    report.line(not bad, f"{case.name}/dump shapes", "; ".join(bad) or "dt (B,L,H), B C (B,L,G,N), h (B,L,H,P,N)")
    report.line(bool(worst <= TOL), f"{case.name}/dump values", f"worst {worst_name}: err={worst:.2e} (tol {TOL:.0e})")


# ---------------------------------------------------------------------------
# The states

def reference_states(cfg, rec):
    """norm, erank (n_layer, B, L), horizon (n_layer, B, H)."""
    norm, erank, horizon = [], [], []
    E, N = cfg.d_inner, cfg.d_state
    for i in range(cfg.n_layer):
        h = rec[f"layers.{i}.h"].numpy()                          # (B, L, H, P, N)
        Bsz, L = h.shape[:2]
        norm.append(np.sqrt((h ** 2).sum(axis=(2, 3, 4))))
        erank.append(np.array([[check_states.effective_rank(h[b, t].reshape(E, N)) for t in range(L)]
                               for b in range(Bsz)]))
        rate = rec[f"layers.{i}.dt"].numpy().mean(axis=1) * np.abs(rec[f"layers.{i}.A"].numpy())   # (B, H)
        with np.errstate(divide="ignore"):
            horizon.append(np.where(rate > 0, 1.0 / rate, np.inf))
    return np.array(norm), np.array(erank), np.array(horizon)


def engine_states(tables, cfg, B, L):
    nl, H = cfg.n_layer, cfg.n_heads
    norm, erank = np.full((nl, B, L), np.nan), np.full((nl, B, L), np.nan)
    horizon = np.full((nl, B, H), np.nan)
    for r in tables.get("states", []):
        where = {"norm": norm, "erank": erank, "horizon": horizon}[r["kind"]]
        last = r["head"] if r["kind"] == "horizon" else r["pos"]
        where[int(r["layer"]), int(r["seq"]), int(last)] = float(r["value"])
    return norm, erank, horizon


def check_states_table(case, command, report, model_dir, p, tokens, brk):
    cfg = case.cfg
    try:
        tables = check_norms.run_inspect(command, model_dir, tokens.tolist(), ["--states"])
    except RuntimeError as e:
        report.line(False, f"{case.name}/inspect --states", str(e))
        return
    rp = dict(p)
    if brk:
        rp[ref.EMBED] = p[ref.EMBED] * 1.01
    got = engine_states(tables, cfg, case.B, case.L)
    want = reference_states(cfg, recorded(rp, cfg, tokens))
    for label, g, w in zip(("||h_t||_F", "effective rank of h_t", "horizon of each head"), got, want):
        report.within(f"{case.name}/states {label}", check_states.rel(g, w, 1e-30), TOL)


# ---------------------------------------------------------------------------
# Interventions and their gradients

def interventions(cfg):
    """(name, reference probe, engine flags) of each forward-only run."""
    H, PN, last = cfg.n_heads, cfg.head_dim * cfg.d_state, cfg.n_layer - 1
    runs = [
        ("ablate heads", {"ablate": [(0, 1, -1), (last, H - 1, -1)]}),
        ("ablate entries", {"ablate": [(0, 2, 0), (0, 2, PN - 1), (last, 0, PN // 2)]}),
        ("pin A_h", {"pin": [(0, 0, 0.0), (last, H - 2, -3.5)]}),
        ("ablate+pin", {"ablate": [(last, 1, 3)], "pin": [(0, H - 1, -0.25)]}),
    ]
    out = []
    for name, probe in runs:
        flags = []
        for (l, h, j) in probe.get("ablate", []):
            flags += ["--ablate", f"{l}:{h}" if j < 0 else f"{l}:{h}:{j}"]
        for (l, h, v) in probe.get("pin", []):
            flags += ["--pin", f"{l}:{h}:{v!r}"]
        out.append((name, probe, flags))
    return out


def eval_logits(command, model_dir, tokens, flags, path):
    argv = shlex.split(command) + ["eval", "--model", model_dir, "--threads", "1", "--tokens",
                                   tokens_arg(tokens), *flags, "--save-logits", path]
    refcheck.run_binary(argv)
    return np.load(path)


def logits_err(got, want):
    V = want.shape[-1]
    return ref.rel_err(got[..., :V], want)


def check_interventions(case, command, report, workdir, model_dir, p, tokens, brk):
    cfg = case.cfg
    g = torch.Generator().manual_seed(300 + case.seed)
    source = torch.randint(0, cfg.vocab_size, tokens.shape, generator=g)
    src = recorded(p, cfg, source)
    runs = [(name, probe, flags, []) for name, probe, flags in interventions(cfg)]
    runs.append(("patch residual", {"patch": ("residual", 1, 4, src["layers.1.residual"][:, 4])},
                 ["--patch", "1:4"], ["--patch-tokens", tokens_arg(source)]))
    runs.append(("patch state", {"patch": ("state", 0, 5, src["layers.0.h"][:, 5])},
                 ["--patch", "0:5:state"], ["--patch-tokens", tokens_arg(source)]))
    for k, (name, probe, flags, extra) in enumerate(runs):
        want_probe = shifted(probe, cfg) if brk else probe
        if brk and "patch" in probe:   # the patch one position further on
            kind, layer, pos, value = probe["patch"]
            want_probe = dict(probe, patch=(kind, layer, pos + 1, value))
        want = recorded(p, cfg, tokens, want_probe)["logits"].numpy()
        try:
            got = eval_logits(command, model_dir, tokens, flags + extra, os.path.join(workdir, f"iv{k}.npy"))
        except (RuntimeError, OSError) as e:
            report.line(False, f"{case.name}/eval {name}", str(e))
            continue
        report.within(f"{case.name}/logits, {name}", logits_err(got, want), TOL)


def reference_influence(p, cfg, tokens, probe):
    """I (L, L) of sequence 0: ||d x_n[t] / d x_0[s]||_F, torch.autograd."""
    x0 = p[ref2.EMBED][tokens[:1]]

    def stream(x):
        for i in range(cfg.n_layer):
            x = x + ref2.mixer(p, i, ref.rms_norm(x, p[ref.norm_name(i)], cfg.norm_eps), cfg, probe=probe)
        return x

    J = torch.autograd.functional.jacobian(stream, x0)   # (1, L, D, 1, L, D)
    return J[0, :, :, 0].pow(2).sum(dim=(1, 3)).sqrt().numpy()   # (t, s)


def check_influence(case, command, report, model_dir, p, tokens, brk):
    cfg = case.cfg
    probe = {"ablate": [(0, 1, -1), (cfg.n_layer - 1, 0, 2)], "pin": [(0, 2, -2.0)]}
    flags = ["--influence", "--probes", "0", "--targets", "2", "--ablate", "0:1", "--ablate",
             f"{cfg.n_layer - 1}:0:2", "--pin", "0:2:-2.0"]
    try:
        tables = check_norms.run_inspect(command, model_dir, tokens[:1].tolist(), flags)
    except RuntimeError as e:
        report.line(False, f"{case.name}/inspect --influence with interventions", str(e))
        return
    want = reference_influence(p, cfg, tokens, shifted(probe, cfg) if brk else probe)
    rows = [r for r in tables.get("influence", []) if r["kind"] == "influence"]
    err = 0.0 if rows else np.inf
    for r in rows:
        t, s = int(r["t"]), int(r["s"])
        err = max(err, abs(float(r["value"]) - want[t, s]) / np.abs(want).max())
    report.within(f"{case.name}/influence (backward) with ablations and pins, {len(rows)} rows", err, TOL)


# ---------------------------------------------------------------------------
# The hidden attention under interventions

def check_attention(case, command, report, model_dir, p, tokens, brk):
    """--attention --layer 0 with head 1 ablated and A_2 pinned: the mean
    over heads of |alpha_h| with alpha_1 = 0 and A_2 = -2, 1e-4 of the max."""
    cfg = case.cfg
    probe = {"ablate": [(0, 1, -1)], "pin": [(0, 2, -2.0)]}
    try:
        tables = check_norms.run_inspect(command, model_dir, tokens.tolist(),
                                         ["--attention", "--layer", "0", "--ablate", "0:1", "--pin", "0:2:-2.0"])
    except RuntimeError as e:
        report.line(False, f"{case.name}/inspect --attention with interventions", str(e))
        return
    probe = shifted(probe, cfg) if brk else probe
    layers, _ = ref2.scan_inputs(p, cfg, tokens)
    Bm, Cm, dt, A = layers[0]
    A = A.clone()
    A[probe["pin"][0][1]] = probe["pin"][0][2]
    alpha = ref2.hidden_attention(Bm, Cm, dt, A)
    alpha[:, probe["ablate"][0][1]] = 0
    want = alpha.abs().mean(dim=1).numpy()                    # (B, L, L)
    got = np.zeros_like(want)
    rows = [r for r in tables.get("attention", []) if r["aggregation"] == "mean_abs"]
    for r in rows:
        got[int(r["seq"]), int(r["t"]), int(r["s"])] = float(r["raw"])
    err = np.abs(got - want).max() / np.abs(want).max() if rows else np.inf
    report.within(f"{case.name}/attention mean_h |alpha_h|, head ablated, A_h pinned", err, TOL)


# ---------------------------------------------------------------------------
# The flow of one layer's mixer

def check_flow(case, command, report, model_dir, p, tokens, brk):
    """--flow of the last layer (an ablated head and a pinned A_h attached)
    from sequence 0's embeddings: ||x_i(k h)|| after every Euler step
    x <- x + h Mixer(x), 1e-4 relative."""
    cfg = case.cfg
    layer, steps, h = cfg.n_layer - 1, 6, 0.25
    probe = {"ablate": [(layer, 1, -1)], "pin": [(layer, 0, -4.0)]}
    flags = ["--flow", "--flow-layer", str(layer), "--flow-steps", str(steps), "--flow-step", str(h),
             "--ablate", f"{layer}:1", "--pin", f"{layer}:0:-4.0"]
    try:
        tables = check_norms.run_inspect(command, model_dir, tokens[:1].tolist(), flags)
    except RuntimeError as e:
        report.line(False, f"{case.name}/inspect --flow", str(e))
        return
    x = p[ref2.EMBED][tokens[:1]]
    want = [x[0].norm(dim=-1).numpy()]
    with torch.no_grad():
        for _ in range(steps):
            x = x + h * ref2.mixer(p, layer, x, cfg, probe=shifted(probe, cfg) if brk else probe)
            want.append(x[0].norm(dim=-1).numpy())
    want = np.array(want)                                   # (steps + 1, L)
    got = np.full(want.shape, np.nan)
    for r in tables.get("flow", []):
        if r["kind"] == "norm":
            got[int(r["step"]), int(r["pos"])] = float(r["value"])
    report.within(f"{case.name}/flow ||x_i(t)|| of layer {layer}'s mixer, {steps} steps",
                  check_states.rel(got, want), TOL)


def check_case(case, command, report, workroot, break_reference):
    cfg = case.cfg
    workdir = os.path.join(workroot, case.name)
    model_dir = os.path.join(workdir, "model")
    p = ref2.init_params(cfg, seed=case.seed)
    ref2.write_checkpoint(model_dir, cfg, p)
    p64 = {k: v.to(torch.float64) for k, v in p.items()}
    g = torch.Generator().manual_seed(100 + case.seed)
    tokens = torch.randint(0, cfg.vocab_size, (case.B, case.L), generator=g)
    check_dump(case, command, report, workdir, model_dir, p64, tokens, break_reference)
    check_states_table(case, command, report, model_dir, p64, tokens, break_reference)
    check_interventions(case, command, report, workdir, model_dir, p64, tokens, break_reference)
    check_influence(case, command, report, model_dir, p64, tokens, break_reference)
    check_flow(case, command, report, model_dir, p64, tokens, break_reference)
    check_attention(case, command, report, model_dir, p64, tokens, break_reference)


def main():
    args = parse_args("Check ssmlab's Mamba-2 dump, states and interventions against PyTorch.",
                      "the dump, states, intervention, influence, flow and attention checks")
    return run_cases(CASES, check_case, args, "ssmlab-m2p-", Report(width=60))


if __name__ == "__main__":
    sys.exit(main())
