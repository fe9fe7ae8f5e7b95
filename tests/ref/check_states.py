# check_states.py — the PyTorch/numpy reference check of `ssmlab inspect
# --states --lens` (ssmlab-inspect(1) STATES and LENS).  For each case it
# writes a random language model with tests/ref/mamba_ref.py's builders, runs
#   ssmlab inspect --model DIR --tokens ... --states --lens --format csv
# and compares with a float64 reference forward that records every layer's
# state h_t (B, L, E, Ns), Delta and residual stream (mamba_ref.PROBE):
#   norm      ||h_t||_F per layer, sequence and position: max |got - ref| / |ref|;
#   erank     the effective rank of h_t as an E x Ns matrix, exp of the entropy
#             of its singular values (np.linalg.svd) normalised to sum 1:
#             max |got - ref| / ref;
#   horizon   1 / (mean_t Delta_t[e] * min_n |A[e,n]|) per layer, sequence and
#             channel: infinite exactly where the reference is (every channel
#             of a one-polarized model, none of a plain one), the finite ones
#             max |got - ref| / ref;
#   lens      the final RMSNorm and head applied to the residual stream x_l of
#             every depth l = 0 (the embedding) .. n_layer: top-1 ids exactly,
#             except where the reference's two largest logits are within
#             TIE_GAP (skipped, and counted); its probability, the entropy and
#             KL(final || lens_l): max |got - ref| / max(|ref|, KL_FLOOR); and
#             KL = 0 at depth n_layer (the lens there is the final distribution).
# Every tolerance is 1e-4 relative.  Cases: odd L, B = 2, polarize none,
# zero (finite horizons), one and both (infinite), a tied and an untied head;
# one case on two threads.
#
#   /usr/bin/python3 tests/ref/check_states.py [BINARY] [--keep] [--break-reference]
# BINARY defaults to ./ssmlab and may be a command with arguments.  Prints one
# PASS/FAIL line per check and ends with "N passed, M failed"; exit status 1
# when anything failed.  --break-reference perturbs the reference (dt bias
# + 0.05, embedding and final norm weight * 1.01, the lens logits shifted by
# one id): the norm, erank, finite horizon and lens checks (top-1 ids
# included) must then fail.
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mamba_ref as ref  # noqa: E402
from check_norms import Case, run_inspect  # noqa: E402
from refcheck import Report, parse_args, run_cases  # noqa: E402

TOL = 1e-4
TIE_GAP = 1e-5      # top two lens logits closer than this: the top-1 id is not compared
KL_FLOOR = 1e-3     # nats: KL below it is compared absolutely (it is 0 at the last depth)
LAST_KL_MAX = 1e-6  # KL(final || lens_n), nats


CASES = [
    Case("plain-l7", ref.Config(d_model=16, n_layer=2, d_state=5, d_conv=4, vocab_size=37), 2, 7, 1),
    Case("zero-untied-l9", ref.Config(d_model=24, n_layer=3, d_state=4, d_conv=3, vocab_size=45,
                                      polarize="zero", tie_embeddings=False), 2, 9, 2),
    Case("one-l5", ref.Config(d_model=16, n_layer=2, d_state=3, d_conv=4, vocab_size=30,
                              polarize="one"), 2, 5, 3),
    Case("both-untied-l11", ref.Config(d_model=32, n_layer=2, d_state=5, d_conv=4, vocab_size=50,
                                       polarize="both", tie_embeddings=False), 2, 11, 4),
]

THREADS = {"both-untied-l11": 2}   # the effective ranks split over threads; others run on one


# ---------------------------------------------------------------------------
# The reference, in float64

def effective_rank(h):
    """exp(entropy of the singular values normalised to sum 1) of h (E, Ns); 0 for h = 0."""
    s = np.linalg.svd(h, compute_uv=False)
    if s.sum() <= 0:
        return 0.0
    p = s / s.sum()
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def reference_states(cfg, p, rec):
    """norm, erank (n_layer, B, L), horizon (n_layer, B, E) from a recorded forward."""
    norm, erank, horizon = [], [], []
    for i in range(cfg.n_layer):
        h = rec[f"layers.{i}.h"].numpy()                       # (B, L, E, Ns)
        norm.append(np.sqrt((h ** 2).sum(axis=(2, 3))))
        erank.append(np.array([[effective_rank(h[b, t]) for t in range(h.shape[1])] for b in range(h.shape[0])]))
        min_a = ref.state_A(p, i, cfg).abs().min(dim=1).values.numpy()    # (E)
        rate = rec[f"layers.{i}.delta"].numpy().mean(axis=1) * min_a      # (B, E)
        with np.errstate(divide="ignore"):
            horizon.append(np.where(rate > 0, 1.0 / rate, np.inf))
    return np.array(norm), np.array(erank), np.array(horizon)


def reference_lens(cfg, p, rec):
    """Lens logits (n_layer+1, B, L, V) of x_0 .. x_n and the final logits (B, L, V)."""
    head = p[ref.EMBED] if cfg.tie_embeddings else p[ref.LM_HEAD]
    xs = [rec[f"layers.{i}.residual"] for i in range(cfg.n_layer)]
    lens = [ref.rms_norm(x, p[ref.NORM_F], cfg.norm_eps) @ head.T for x in xs]
    lens.append(rec["norm_f"] @ head.T)                      # x_n: the final logits themselves
    return torch.stack(lens).numpy(), rec["logits"].numpy()


def lens_stats(lens, final):
    """top-1, its probability, entropy, KL(final || lens), and whether the top
    two logits are a near tie, over the last axis."""
    logp = lens - lens.max(-1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    logq = final - final.max(-1, keepdims=True)
    logq = logq - np.log(np.exp(logq).sum(-1, keepdims=True))
    top2 = np.sort(lens, axis=-1)[..., -2:]
    p = np.exp(logp)
    return (lens.argmax(-1), p.max(-1), -(p * logp).sum(-1), (np.exp(logq) * (logq - logp)).sum(-1),
            top2[..., 1] - top2[..., 0] < TIE_GAP)


# ---------------------------------------------------------------------------
# The engine's output

def engine_states(tables, cfg, B, L):
    nl, E = cfg.n_layer, cfg.d_inner
    norm, erank = np.full((nl, B, L), np.nan), np.full((nl, B, L), np.nan)
    horizon = np.full((nl, B, E), np.nan)
    for r in tables.get("states", []):
        where = {"norm": norm, "erank": erank, "horizon": horizon}[r["kind"]]
        last = r["channel"] if r["kind"] == "horizon" else r["pos"]
        where[int(r["layer"]), int(r["seq"]), int(last)] = float(r["value"])   # "inf" parses
    return norm, erank, horizon


def engine_lens(tables, cfg, B, L):
    shape = (cfg.n_layer + 1, B, L)
    top = np.full(shape, -1)
    prob, ent, kl = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    for r in tables.get("lens", []):
        i = int(r["layer"]), int(r["seq"]), int(r["pos"])
        top[i] = int(r["top_id"])
        prob[i], ent[i], kl[i] = float(r["prob"]), float(r["entropy"]), float(r["kl"])
    return top, prob, ent, kl


# ---------------------------------------------------------------------------
# Checks

def rel(got, want, floor=0.0):
    """max |got - want| / max(|want|, floor) elementwise; inf when got has gaps."""
    if np.isnan(got).any():
        return np.inf
    return float((np.abs(got - want) / np.maximum(np.abs(want), floor)).max()) if want.size else 0.0


def check_states(case, report, got, want):
    n = case.name
    (norm, erank, horizon), (rn, re, rh) = got, want
    report.within(f"{n}/||h_t||_F", rel(norm, rn, 1e-30), TOL)
    report.within(f"{n}/effective rank of h_t", rel(erank, re, 1e-30), TOL)
    inf_got, inf_want = np.isinf(horizon), np.isinf(rh)
    report.line(bool((inf_got == inf_want).all()), f"{n}/infinite horizons where A = 0",
                f"{int(inf_got.sum())} infinite (reference {int(inf_want.sum())} of {rh.size})")
    one = case.cfg.n_one > 0
    report.line(bool(inf_want.all() if one else not inf_want.any()),
                f"{n}/horizons {'all inf (one-polarized)' if one else 'all finite'}",
                f"{int(inf_want.sum())} of {rh.size} infinite")
    fin = ~inf_want
    report.within(f"{n}/finite horizons", rel(horizon[fin], rh[fin], 1e-30) if fin.any() else 0.0, TOL)


def check_lens(case, report, got, lens, final):
    n = case.name
    top, prob, ent, kl = got
    rtop, rprob, rent, rkl, tie = lens_stats(lens, final[None])
    compared = ~tie
    bad = int((top[compared] != rtop[compared]).sum())
    report.line(bad == 0, f"{n}/lens top-1 ids",
                f"{bad} of {int(compared.sum())} differ; {int(tie.sum())} near ties skipped")
    report.within(f"{n}/lens top-1 probability", rel(prob, rprob), TOL)
    report.within(f"{n}/lens entropy", rel(ent, rent), TOL)
    report.within(f"{n}/lens KL(final || lens)", rel(kl, rkl, KL_FLOOR), TOL)
    last = float(np.abs(kl[-1]).max())
    report.line(last <= LAST_KL_MAX, f"{n}/lens KL = 0 at the last depth", f"max {last:.2e} nats")


def check_case(case, command, report, workroot, break_reference):
    cfg = case.cfg
    model_dir = os.path.join(workroot, case.name, "model")
    p = ref.init_params(cfg, seed=case.seed)
    ref.write_checkpoint(model_dir, cfg, p)
    g = torch.Generator().manual_seed(100 + case.seed)
    tokens = torch.randint(0, cfg.vocab_size, (case.B, case.L), generator=g)
    try:
        tables = run_inspect(command, model_dir, tokens.tolist(),
                             ["--states", "--lens", "--threads", str(THREADS.get(case.name, 1))])
    except RuntimeError as e:
        report.line(False, f"{case.name}/inspect --states --lens", str(e))
        return
    report.line(True, f"{case.name}/inspect --states --lens", "ran")
    rp = {k: v.to(torch.float64) for k, v in p.items()}
    if break_reference:
        for k in rp:
            if k.endswith("dt_proj.bias"):
                rp[k] = rp[k] + 0.05
        rp[ref.EMBED], rp[ref.NORM_F] = rp[ref.EMBED] * 1.01, rp[ref.NORM_F] * 1.01
    ref.PROBE = {"record": {}}
    try:
        ref.forward(rp, cfg, tokens)
        rec = ref.PROBE["record"]
    finally:
        ref.PROBE = None
    check_states(case, report, engine_states(tables, cfg, case.B, case.L), reference_states(cfg, rp, rec))
    lens, final = reference_lens(cfg, rp, rec)
    if break_reference:
        lens = np.roll(lens, 1, axis=-1)   # the lens's vocabulary off by one id
    check_lens(case, report, engine_lens(tables, cfg, case.B, case.L), lens, final)


def main():
    args = parse_args("Check ssmlab inspect --states --lens against PyTorch and numpy.",
                      "the norm, rank, horizon and lens checks")
    return run_cases(CASES, check_case, args, "ssmlab-states-", Report(width=48))

if __name__ == "__main__":
    sys.exit(main())
