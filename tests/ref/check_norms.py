# check_norms.py — the PyTorch/numpy reference check of `ssmlab inspect`
# (ssmlab-math(7), DYNAMICS).  For each case it writes a random checkpoint with
# tests/ref/mamba_ref.py's builders, runs
#   ssmlab inspect --model DIR --tokens ... --format csv
# and compares:
#   norms       ||x_{l,t}||_2 of the float64 reference residual stream and the
#               mixer output norms: max |got - ref| / ref over all entries, tol 1e-4;
#   slopes      least-squares slopes of log-norm over depth (numpy.polyfit on
#               the reference norms): max |got - ref|, tol 1e-4; the mean slope
#               likewise; the R^2 of the mean log-norm's line (numpy), tol
#               1e-4; the verdict by the rule of ssmlab-inspect(1);
#   importance  the layer-0 proxy score mean_e Delta_t[e]: max |got - ref| / max|ref|,
#               tol 1e-4, and that the ranking orders ssmlab's scores increasingly;
#   spectrum    eigenvalues of S_B S_C^T per layer against numpy.linalg.eigvals
#               (each reference eigenvalue matched to its nearest): max distance
#               / spectral radius, tol 1e-6; the per-layer counts and class.
# Scenario cases (positive, negative, mixed) build S_B = diag(sigma) U(P) and
# S_C = U(P) here from P and q, store them in x_proj and P, q beside it, and
# check that every layer has the class the scenario promises.
#
#   /usr/bin/python3 tests/ref/check_norms.py [BINARY] [--keep] [--break-reference]
# BINARY defaults to ./ssmlab and may be a command with arguments.  Prints one
# PASS/FAIL line per check and ends with "N passed, M failed"; exit status 1
# when anything failed.  --break-reference perturbs the reference (norm
# weights * 1.01, eigenvalues * 1.001): the norm and spectrum checks must fail.
import csv
import io
import json
import os
import shlex
import sys
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mamba_ref as ref  # noqa: E402
import refcheck  # noqa: E402
from refcheck import Report, parse_args, run_cases  # noqa: E402

NORM_TOL = 1e-4
SLOPE_TOL = 1e-4
SCORE_TOL = 1e-4
EIG_TOL = 1e-6
# the rules of engine/dynamics.h
VERDICT_TAU, VERDICT_FRAC, VERDICT_R2_MIN = 0.01, 0.5, 0.5
SPECTRUM_TOL = 1e-6


@dataclass
class Case:
    name: str
    cfg: ref.Config
    B: int
    L: int
    seed: int
    naming: str = "mamba_ssm"
    scenario: str = "default"


CASES = [
    Case("d24-l3-n5", ref.Config(d_model=24, n_layer=3, d_state=5, d_conv=4, vocab_size=37), 2, 9, 1),
    Case("hf-names", ref.Config(d_model=32, n_layer=2, d_state=7, d_conv=3, vocab_size=45), 1, 12, 2,
         naming="transformers"),
    Case("deep-l6", ref.Config(d_model=16, n_layer=6, d_state=4, d_conv=4, vocab_size=256), 2, 7, 3),
    Case("scenario-positive", ref.Config(d_model=16, n_layer=2, d_state=6, vocab_size=20), 1, 8, 4,
         scenario="positive"),
    Case("scenario-negative", ref.Config(d_model=16, n_layer=3, d_state=5, vocab_size=20), 1, 8, 5,
         scenario="negative"),
    Case("scenario-mixed", ref.Config(d_model=24, n_layer=2, d_state=8, vocab_size=20), 2, 6, 6,
         scenario="mixed"),
]


# ---------------------------------------------------------------------------
# Checkpoints

def apply_scenario(cfg, p, scenario, g):
    """Draw P, q per layer; write S_B, S_C into x_proj.  Returns the extra tensors."""
    extra = {}
    N, E, R = cfg.d_state, cfg.d_inner, cfg.rank
    for i in range(cfg.n_layer):
        P = (torch.rand(N, E, generator=g) * 2 - 1) * E ** -0.5
        q = torch.randn(N, generator=g)
        U = torch.triu(P, diagonal=1)
        U[range(N), range(N)] = 1.0
        SB = ref.scenario_sigma(scenario, q)[:, None] * U
        xp = p[ref.mixer_name(i, "x_proj.weight")].clone()
        xp[R:R + N], xp[R + N:R + 2 * N] = SB, U
        p[ref.mixer_name(i, "x_proj.weight")] = xp
        extra[ref.mixer_name(i, "scenario_P")] = P
        extra[ref.mixer_name(i, "scenario_q")] = q
    return extra


def write_case(case, model_dir):
    """The checkpoint of a case; returns the float32 parameters."""
    cfg = case.cfg
    p = ref.init_params(cfg, seed=case.seed)
    ref.write_checkpoint(model_dir, cfg, p, naming=case.naming)
    if case.scenario == "default":
        return p
    extra = apply_scenario(cfg, p, case.scenario, torch.Generator().manual_seed(50 + case.seed))
    conf_path = os.path.join(model_dir, "config.json")
    with open(conf_path) as f:
        conf = json.load(f)
    conf["ssmlab"] = {"scenario": case.scenario}
    with open(conf_path, "w") as f:
        json.dump(conf, f, indent=2)
    tensors = dict(p)
    tensors.update(extra)
    ref.write_safetensors(os.path.join(model_dir, "model.safetensors"), tensors, "F32",
                          {"format": "pt", "ssmlab.tensors": ",".join(extra)})
    return p


# ---------------------------------------------------------------------------
# The reference measurements, in float64

def reference(cfg, p, tokens):
    """(norms (n_layer+1, B, L), mix norms (n_layer, B, L), layer-0 proxy scores (B, L))."""
    p = {k: v.to(torch.float64) for k, v in p.items()}
    x = ref.model_input(p, cfg, tokens)
    norms, mix = [x.norm(dim=-1)], []
    for i in range(cfg.n_layer):
        y = ref.mixer(p, i, ref.rms_norm(x, p[ref.norm_name(i)], cfg.norm_eps), cfg)
        mix.append(y.norm(dim=-1))
        x = x + y
        norms.append(x.norm(dim=-1))
    return torch.stack(norms).numpy(), torch.stack(mix).numpy(), layer0_delta_mean(cfg, p, tokens)


def layer0_delta_mean(cfg, p, tokens):
    """mean_e Delta_t[e] in the first mixer (ssmlab-math(7) MODEL steps 1-4)."""
    E, R = cfg.d_inner, cfg.rank
    w = lambda t: p[ref.mixer_name(0, t)]
    x = ref.rms_norm(ref.model_input(p, cfg, tokens), p[ref.norm_name(0)], cfg.norm_eps)
    u = (x @ w("in_proj.weight").T)[..., :E]
    u = F.silu(ref.causal_conv(u, w("conv1d.weight").reshape(E, -1), w("conv1d.bias")))
    dlow = (u @ w("x_proj.weight").T)[..., :R]
    delta = F.softplus(dlow @ w("dt_proj.weight").T + w("dt_proj.bias"))
    return delta.mean(-1).numpy()


def reference_spectrum(cfg, p):
    """Per layer: eigenvalues of S_B S_C^T (numpy, float64)."""
    N, R = cfg.d_state, cfg.rank
    out = []
    for i in range(cfg.n_layer):
        xp = p[ref.mixer_name(i, "x_proj.weight")].to(torch.float64).numpy()
        out.append(np.linalg.eigvals(xp[R:R + N] @ xp[R + N:R + 2 * N].T))
    return out


def classify(ev):
    """(n_pos, n_neg, n_complex, class) by the rule of engine/dynamics.h."""
    rho = np.abs(ev).max()
    tol = SPECTRUM_TOL * rho
    cpx = int((np.abs(ev.imag) > tol).sum())
    real = ev.real[np.abs(ev.imag) <= tol]
    pos, neg = int((real > tol).sum()), int((real < -tol).sum())
    cls = "complex" if cpx else "mixed" if pos and neg else "negative" if neg else "positive"
    return pos, neg, cpx, cls


def trend_r2(log_norms):
    """R^2 of the line through the mean over tokens of ln ||x_l|| against l."""
    y = log_norms.reshape(log_norms.shape[0], -1).mean(axis=1)
    if len(y) < 2:
        return float("nan")
    resid = y - np.polyval(np.polyfit(np.arange(len(y)), y, 1), np.arange(len(y)))
    tot = ((y - y.mean()) ** 2).sum()
    return 1.0 - (resid ** 2).sum() / tot if tot > 1e-12 * len(y) else 0.0


def verdict(slopes, r2=float("nan")):
    mean = slopes.mean()
    if r2 < VERDICT_R2_MIN:
        return "no-trend"
    if mean < -VERDICT_TAU and (slopes < -VERDICT_TAU).sum() >= VERDICT_FRAC * slopes.size:
        return "converging"
    if mean > VERDICT_TAU and (slopes > VERDICT_TAU).sum() >= VERDICT_FRAC * slopes.size:
        return "diverging"
    return "mixed"


# ---------------------------------------------------------------------------
# The engine's output

def run_inspect(command, model_dir, tokens, tables=()):
    """{table name: list of row dicts} from `inspect --format csv` (with the
    options in tables, e.g. ["--states"]; none: the default tables), or
    RuntimeError."""
    argv = shlex.split(command) + ["inspect", "--model", model_dir, "--tokens", refcheck.tokens_arg(tokens),
                                   "--format", "csv", "--threads", "1", *tables]
    stdout = refcheck.run_binary(argv)
    tables = {}
    for block in stdout.split("\n\n"):
        for row in csv.DictReader(io.StringIO(block.strip("\n"))):
            tables.setdefault(row["table"], []).append(row)
    return tables


def engine_arrays(tables, cfg, B, L):
    """norms, mix norms, slopes, mean slope, (verdict, R^2), scores, ranking from the tables."""
    nl = cfg.n_layer
    norms, mix = np.full((nl + 1, B, L), np.nan), np.full((nl, B, L), np.nan)
    slopes, mean, verd, r2 = np.full((B, L), np.nan), np.nan, None, np.nan
    for r in tables.get("norms", []):
        k = r["kind"]
        if k == "norm":
            norms[int(r["layer"]), int(r["seq"]), int(r["pos"])] = float(r["value"])
        elif k == "mix_norm":
            mix[int(r["layer"]), int(r["seq"]), int(r["pos"])] = float(r["value"])
        elif k == "slope":
            slopes[int(r["seq"]), int(r["pos"])] = float(r["value"])
        elif k == "mean_slope":
            mean = float(r["value"])
        elif k == "r2":
            r2 = float(r["value"])
        elif k == "verdict":
            verd = r["value"]
    scores, ranking = np.full((B, L), np.nan), [[None] * L for _ in range(B)]
    for r in tables.get("importance", []):
        b, pos = int(r["seq"]), int(r["pos"])
        scores[b, pos] = float(r["score"])
        ranking[b][int(r["rank"])] = pos
    return norms, mix, slopes, mean, (verd, r2), scores, ranking


def engine_spectrum(tables, cfg):
    ev = [[] for _ in range(cfg.n_layer)]
    summary = {}
    for r in tables.get("spectrum", []):
        layer = int(r["layer"])
        if r["kind"] == "eigenvalue":
            ev[layer].append(complex(float(r["re"]), float(r["im"])))
        else:
            summary[layer] = (int(r["n_pos"]), int(r["n_neg"]), int(r["n_complex"]), r["class"])
    return [np.array(e) for e in ev], summary


# ---------------------------------------------------------------------------
# Checks

def match_error(got, want):
    """Each reference eigenvalue matched to its nearest unmatched engine one:
    max distance / spectral radius (inf when the counts differ)."""
    if len(got) != len(want):
        return np.inf
    left, worst = list(got), 0.0
    for w in want:
        j = int(np.argmin([abs(g - w) for g in left]))
        worst = max(worst, abs(left.pop(j) - w))
    return worst / max(np.abs(want).max(), 1e-300)


def check_norms(case, report, got, want):
    (norms, mix, slopes, mean, verd, scores, ranking), (rn, rm, rs) = got, want
    n = case.name
    report.within(f"{n}/norms ||x_l,t||", np.nanmax(np.abs(norms - rn) / rn) if not np.isnan(norms).any() else np.inf,
                  NORM_TOL)
    report.within(f"{n}/mixer output norms", np.abs(mix - rm).max() / rm.min() if not np.isnan(mix).any() else np.inf,
                  NORM_TOL)
    depth = np.arange(case.cfg.n_layer + 1)
    ref_slopes = np.polyfit(depth, np.log(rn.reshape(len(depth), -1)), 1)[0].reshape(case.B, case.L)
    report.within(f"{n}/log-norm slopes", np.abs(slopes - ref_slopes).max(), SLOPE_TOL)
    report.within(f"{n}/mean slope", abs(mean - ref_slopes.mean()), SLOPE_TOL)
    verd, r2 = verd
    report.within(f"{n}/R^2 of the mean log-norm's line", abs(r2 - trend_r2(np.log(rn))), SLOPE_TOL)
    want_verd = verdict(ref_slopes, trend_r2(np.log(rn)))
    report.line(verd == want_verd, f"{n}/verdict", f"{verd} (reference {want_verd})")
    report.within(f"{n}/importance scores (proxy mean Delta)", ref.rel_err(scores, rs), SCORE_TOL)
    ordered = all(None not in r and all(scores[b, r[i]] <= scores[b, r[i + 1]] for i in range(len(r) - 1))
                  for b, r in enumerate(ranking))
    report.line(ordered, f"{n}/ranking by increasing score", "ordered" if ordered else f"{ranking}")


def check_spectrum(case, report, tables, p, break_reference):
    got, summary = engine_spectrum(tables, case.cfg)
    want = reference_spectrum(case.cfg, p)
    if break_reference:
        want = [w * 1.001 for w in want]
    promised = {"positive": "positive", "negative": "negative", "mixed": "mixed"}.get(case.scenario)
    for layer, (g, w) in enumerate(zip(got, want)):
        label = f"{case.name}/spectrum layer {layer}"
        report.within(f"{label} vs numpy eigvals", match_error(g, w), EIG_TOL)
        report.line(summary.get(layer) == classify(w), f"{label} counts and class",
                    f"{summary.get(layer)} (reference {classify(w)})")
        if promised:
            report.line(classify(w)[3] == promised and summary.get(layer, (0,) * 4)[3] == promised,
                        f"{label} is {promised} as the scenario promises",
                        f"engine {summary.get(layer, (None,) * 4)[3]}, numpy {classify(w)[3]}")


def check_case(case, command, report, workroot, break_reference):
    cfg = case.cfg
    model_dir = os.path.join(workroot, case.name, "model")
    p = write_case(case, model_dir)
    g = torch.Generator().manual_seed(100 + case.seed)
    tokens = torch.randint(0, cfg.vocab_size, (case.B, case.L), generator=g)
    try:
        tables = run_inspect(command, model_dir, tokens.tolist())
    except RuntimeError as e:
        report.line(False, f"{case.name}/inspect", str(e))
        return
    report.line(True, f"{case.name}/inspect", "ran")
    rp = p
    if break_reference:
        rp = {k: (v * 1.01 if k.endswith("norm.weight") and k != ref.NORM_F else v) for k, v in p.items()}
        rp[ref.EMBED] = p[ref.EMBED] * 1.01
    check_norms(case, report, engine_arrays(tables, cfg, case.B, case.L), reference(cfg, rp, tokens))
    check_spectrum(case, report, tables, p, break_reference)


def main():
    args = parse_args("Check ssmlab inspect against PyTorch and numpy.", "the norm and spectrum checks")
    return run_cases(CASES, check_case, args, "ssmlab-norms-", Report(width=44))

if __name__ == "__main__":
    sys.exit(main())
