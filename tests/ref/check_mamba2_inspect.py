# check_mamba2_inspect.py — the PyTorch/numpy reference check of `ssmlab
# inspect` on Mamba-2 models (ssmlab-math(7) MAMBA-2, Per-head
# measurements).  For each case it writes a random Mamba-2 checkpoint with
# tests/ref/mamba2_ref.py, runs
#   ssmlab inspect --model DIR --tokens ... --format csv --spectrum --norms --importance --attention
# and once more with --attention --layer 0 --channel h for one head h, and
# compares, against the float64 reference:
#   spectrum   eigenvalues of S_B S_C^T per (layer, group), S_B and S_C the
#              in_proj rows of the group's B and C, against
#              numpy.linalg.eigvals (each reference eigenvalue matched to
#              its nearest): max distance / spectral radius, tol 1e-6; the
#              counts and class of each (layer, group);
#   norms      ||x_{l,t}|| of the residual stream: max relative error, tol
#              1e-4, and the residual verdict by the rule of ssmlab-inspect(1);
#   attention  alpha_h[t][s] = C_t . B_s prod_{k=s+1..t} exp(dt_k[h] A_h) dt_s[h]
#              (mamba2_ref.hidden_attention, literal products): the mean over
#              heads of |alpha_h| for every layer and sequence, and one
#              head's signed alpha_h: max |got - ref| / max |ref|, tol 1e-4;
#   importance s_t = (1/H) sum_h dt_t[h] of layer 0 (every head, the pinned
#              ones too), computed here from the float64 scan inputs: max
#              relative error of the scores, tol 1e-4, and the ranking
#              (positions by increasing score, ties by position).
# Cases: one and two groups, one and several sequences, a length that is not
# a multiple of the chunk size, a polarized model (whose signed head is the
# one-polarized head 0, A = 0, and whose pinned heads count in the mean).
#
#   /usr/bin/python3 tests/ref/check_mamba2_inspect.py [BINARY] [--keep] [--break-reference]
# Ends with "N passed, M failed"; exit status 1 when anything failed.
# --break-reference perturbs the reference (A * 1.01 in the attention,
# eigenvalues * 1.001, embedding * 1.01): the attention, spectrum, norm and
# importance checks must fail.
import os
import sys
from dataclasses import dataclass

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_norms  # noqa: E402
import mamba2_ref as ref2  # noqa: E402
import mamba_ref as ref  # noqa: E402
from refcheck import Report, parse_args, run_cases  # noqa: E402

ATTN_TOL = 1e-4


@dataclass
class Case:
    name: str
    cfg: ref2.Config
    B: int
    L: int
    seed: int
    head: int          # the head of the signed --channel run (layer 0)
    naming: str = "mamba_ssm"


CASES = [
    Case("g2-b2-l11", ref2.Config(d_model=16, n_layer=2, vocab_size=37, d_state=4, head_dim=8, n_groups=2,
                                  chunk_size=4), B=2, L=11, seed=1, head=3),
    Case("g1-l3-l9", ref2.Config(d_model=24, n_layer=3, vocab_size=40, d_state=5, head_dim=6, n_groups=1,
                                 chunk_size=5, tie_embeddings=False), B=1, L=9, seed=2, head=5),
    Case("hf-g4", ref2.Config(d_model=16, n_layer=2, vocab_size=30, d_state=3, expand=3, head_dim=4,
                              n_groups=4, chunk_size=3), B=2, L=8, seed=3, head=6, naming="transformers"),
    Case("pol-both-g2", ref2.Config(d_model=16, n_layer=2, vocab_size=29, d_state=4, head_dim=4, n_groups=2,
                                    chunk_size=4, polarize="both"), B=2, L=10, seed=4, head=0),
]


def engine_group_spectra(tables, cfg):
    ev = [[[] for _ in range(cfg.n_groups)] for _ in range(cfg.n_layer)]
    summary = {}
    for r in tables.get("spectrum", []):
        layer, group = int(r["layer"]), int(r["group"])
        if r["kind"] == "eigenvalue":
            ev[layer][group].append(complex(float(r["re"]), float(r["im"])))
        else:
            summary[layer, group] = (int(r["n_pos"]), int(r["n_neg"]), int(r["n_complex"]), r["class"])
    return [[np.array(e) for e in row] for row in ev], summary


def engine_attention(rows, nl, B, L):
    """(nl, B, L, L) raw alpha from the attention table (NaN where absent)."""
    got = np.full((nl, B, L, L), np.nan)
    for r in rows:
        got[int(r["layer"]), int(r["seq"]), int(r["t"]), int(r["s"])] = float(r["raw"])
    return np.where(np.tril(np.ones((L, L), dtype=bool)), got, 0.0)


def rel(got, want):
    return np.abs(got - want).max() / np.abs(want).max() if not np.isnan(got).any() else np.inf


def check_spectra(case, report, tables, p, break_reference):
    got, summary = engine_group_spectra(tables, case.cfg)
    for layer, groups in enumerate(ref2.group_spectra(p, case.cfg)):
        for g, want in enumerate(groups):
            if break_reference:
                want = want * 1.001
            label = f"{case.name}/spectrum layer {layer} group {g}"
            report.within(f"{label} vs numpy", check_norms.match_error(got[layer][g], want), check_norms.EIG_TOL)
            report.line(summary.get((layer, g)) == check_norms.classify(want), f"{label} class",
                        f"{summary.get((layer, g))} (reference {check_norms.classify(want)})")


def check_norms_verdict(case, report, tables, stream):
    norms, _, _, _, (verd, _), _, _ = check_norms.engine_arrays(tables, case.cfg, case.B, case.L)
    want = np.stack([x.norm(dim=-1).numpy() for x in stream])   # (n_layer + 1, B, L)
    report.within(f"{case.name}/norms ||x_l,t||", np.nanmax(np.abs(norms - want) / want)
                  if not np.isnan(norms).any() else np.inf, check_norms.NORM_TOL)
    depth = np.arange(case.cfg.n_layer + 1)
    slopes = np.polyfit(depth, np.log(want.reshape(len(depth), -1)), 1)[0]
    want_verd = check_norms.verdict(slopes, check_norms.trend_r2(np.log(want)))
    report.line(verd == want_verd, f"{case.name}/residual verdict", f"{verd} (reference {want_verd})")


def importance(layers):
    """(B, L) layer 0's scores, the mean over heads of dt, float64."""
    return layers[0][2].mean(dim=-1).numpy()


def check_importance(case, report, tables, want):
    got = np.full((case.B, case.L), np.nan)
    order = [[None] * case.L for _ in range(case.B)]
    for r in tables.get("importance", []):
        b, rank, pos = int(r["seq"]), int(r["rank"]), int(r["pos"])
        got[b, pos] = float(r["score"])
        order[b][rank] = pos
    report.within(f"{case.name}/importance scores (1/H) sum_h dt_t[h]",
                  np.nanmax(np.abs(got - want) / np.abs(want)) if not np.isnan(got).any() else np.inf,
                  ATTN_TOL)
    want_order = [list(np.argsort(want[b], kind="stable")) for b in range(case.B)]
    report.line(order == want_order, f"{case.name}/importance ranking", f"{order} (reference {want_order})")


def check_case(case, command, report, workroot, break_reference):
    cfg = case.cfg
    model_dir = os.path.join(workroot, case.name, "model")
    p = ref2.init_params(cfg, seed=case.seed)
    ref2.write_checkpoint(model_dir, cfg, p, naming=case.naming)
    g = torch.Generator().manual_seed(100 + case.seed)
    tokens = torch.randint(0, cfg.vocab_size, (case.B, case.L), generator=g)
    try:
        tables = check_norms.run_inspect(command, model_dir, tokens.tolist(),
                                         ["--spectrum", "--norms", "--importance", "--attention"])
        head = check_norms.run_inspect(command, model_dir, tokens.tolist(),
                                       ["--attention", "--layer", "0", "--channel", str(case.head)])
    except RuntimeError as e:
        report.line(False, f"{case.name}/inspect", str(e))
        return
    report.line(True, f"{case.name}/inspect", "ran")
    rp = dict(p)
    if break_reference:
        rp[ref.EMBED] = p[ref.EMBED] * 1.01
    layers, stream = ref2.scan_inputs(rp, cfg, tokens)
    check_spectra(case, report, tables, p, break_reference)
    check_norms_verdict(case, report, tables, stream)
    check_importance(case, report, tables, importance(layers) * (1.01 if break_reference else 1))
    alphas = [ref2.hidden_attention(Bm, Cm, dt, A * (1.01 if break_reference else 1)).numpy()
              for Bm, Cm, dt, A in layers]   # [layer] (B, H, L, L)
    want = np.stack([np.abs(a).mean(axis=1) for a in alphas])
    mean_rows = [r for r in tables.get("attention", []) if r["aggregation"] == "mean_abs"]
    report.within(f"{case.name}/attention mean_h |alpha_h|, every layer",
                  rel(engine_attention(mean_rows, cfg.n_layer, case.B, case.L), want), ATTN_TOL)
    rows = [r for r in head.get("attention", []) if r["aggregation"] == "head" and int(r["head"]) == case.head]
    got = engine_attention(rows, 1, case.B, case.L)[0]
    report.within(f"{case.name}/attention of head {case.head} (signed)", rel(got, alphas[0][:, case.head]),
                  ATTN_TOL)


def main():
    args = parse_args("Check ssmlab inspect's Mamba-2 measurements against PyTorch and numpy.",
                      "the attention, spectrum and norm checks")
    return run_cases(CASES, check_case, args, "ssmlab-m2i-", Report(width=52))


if __name__ == "__main__":
    sys.exit(main())
