# check_engine.py — the PyTorch reference check of ssmlab's forward and backward
# pass (ssmlab-math(7), MODEL; the scenarios and first-layer reordering of DYNAMICS; the
# polarized state channels of RECENCY; the classifier's pool mean, last, cls).  For each case it writes a random
# checkpoint, runs
#   ssmlab eval --model DIR --tokens ... --save-logits OUT.npy --save-grads OUT.safetensors
# (language models), or for classifiers
#   ssmlab eval --model DIR --inputs X.npy --labels 3,1,4 --save-logits OUT.npy --save-grads OUT.safetensors
# and compares the logits, the loss (CSV column `loss` on stdout) and the
# gradient of every parameter with float64 PyTorch autograd on the same weights
# (for F16/BF16 checkpoints: the rounded weights).  Variant cases also check
# that the x_proj rows a scenario replaces get zero gradient, that a soft
# sort and a hard (straight-through) one give importance_k a real gradient,
# and that the appended cls token (pool cls) gets a real gradient.  The
# reordering cases permute the SSM input u only, with tau and the layers of
# the config (ssmlab-math(7) DYNAMICS).
#
# Every error is  max|engine - ref| / max|ref|  over the whole tensor (for the
# loss: |engine - ref| / |ref|).  Tolerances: logits and loss 1e-4, gradients 1e-3.
#
#   /usr/bin/python3 tests/ref/check_engine.py [BINARY] [--keep] [--case NAME] [--break-reference]
# BINARY defaults to ./ssmlab and may be a command with arguments, e.g.
#   "/usr/bin/python3 tests/ref/mamba_ref.py --bug conv-flip"   (must fail)
# Prints one PASS/FAIL line per check and ends with "N passed, M failed";
# the exit status is 1 when anything failed.
import os
import shlex
import sys
from dataclasses import dataclass

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mamba_ref as ref  # noqa: E402
import refcheck  # noqa: E402

LOGITS_TOL = 1e-4
LOSS_TOL = 1e-4
GRAD_TOL = 1e-3


@dataclass
class Case:
    name: str
    cfg: ref.Config
    B: int
    L: int
    seed: int
    naming: str = "mamba_ssm"     # or "transformers"
    dtype: str = "F32"            # storage dtype: F32, F16, BF16
    # reorder only: the first reordering layer's dt_proj.weight is scaled by dt_spread (scores
    # vary more against the shared dt bias) and importance_k so the scores'
    # std is score_std; a hard sort also gets inputs whose scores are
    # HARD_GAP apart (ref.score_gap), far above float32 rounding.
    dt_spread: float = 4.0
    score_std: float = 1.5


HARD_GAP = 2e-4     # float32 computes the scores to ~1e-6 of the terms they sum
K_GRAD_MIN = 1e-5   # reorder: max|d importance_k| / max over all gradients (0 without a gradient)
CLS_GRAD_MIN = 1e-3 # pool cls: max|d cls_token| / max over all gradients


CASES = [
    # dt_rank 0 is written as "auto" (ceil(24/16) = 2); V 37 pads to 40.
    Case("d24-l2-n5", ref.Config(d_model=24, n_layer=2, d_state=5, d_conv=4, expand=2,
                                 vocab_size=37), B=3, L=13, seed=1),
    Case("d40-l3-n12", ref.Config(d_model=40, n_layer=3, d_state=12, d_conv=3, expand=2,
                                  dt_rank=3, vocab_size=64), B=2, L=9, seed=2),
    Case("hf-names", ref.Config(d_model=32, n_layer=2, d_state=7, d_conv=4, expand=2,
                                vocab_size=45), B=2, L=11, seed=3, naming="transformers"),
    Case("bf16", ref.Config(d_model=16, n_layer=2, d_state=6, d_conv=4, expand=3,
                            vocab_size=30), B=2, L=7, seed=4, dtype="BF16"),
    # B = 1: the logits file must then be (L, V).
    Case("f16-single", ref.Config(d_model=24, n_layer=2, d_state=3, d_conv=2, expand=2,
                                  vocab_size=50), B=1, L=15, seed=5, dtype="F16"),
    # ssmlab-math(7) DYNAMICS scenarios: S_B = diag(sigma) U(P), S_C = U(P) from scenario_P, scenario_q.
    Case("scen-positive", ref.Config(d_model=24, n_layer=2, d_state=5, d_conv=4, vocab_size=37,
                                     scenario="positive"), B=2, L=11, seed=11),
    Case("scen-negative", ref.Config(d_model=20, n_layer=3, d_state=7, d_conv=3, vocab_size=41,
                                     scenario="negative"), B=3, L=9, seed=12),
    # odd N: floor(5/2) = 2 positive rows, 3 negative
    Case("scen-mixed", ref.Config(d_model=16, n_layer=2, d_state=5, d_conv=4, expand=3,
                                  vocab_size=29, scenario="mixed"), B=2, L=13, seed=13),
    # ssmlab-math(7) RECENCY polarization: channels [A = 0, N learned, A = -100].
    Case("pol-zero", ref.Config(d_model=24, n_layer=2, d_state=6, d_conv=4, vocab_size=33,
                                polarize="zero"), B=2, L=9, seed=14),
    Case("pol-one", ref.Config(d_model=16, n_layer=2, d_state=3, d_conv=3, vocab_size=30,
                               polarize="one"), B=3, L=7, seed=15),
    Case("pol-both-hf", ref.Config(d_model=32, n_layer=2, d_state=5, d_conv=4, vocab_size=45,
                                   polarize="both"), B=2, L=11, seed=16, naming="transformers"),
    Case("scen-mixed-pol-both", ref.Config(d_model=24, n_layer=2, d_state=7, d_conv=4,
                                           vocab_size=37, scenario="mixed", polarize="both"),
         B=3, L=9, seed=17),
    # Classifiers: continuous input, mean-pooled head; reorder in layer 0.
    Case("cls", ref.Config(d_model=16, n_layer=2, d_state=6, d_conv=4, d_input=3, n_classes=4),
         B=3, L=9, seed=21),
    Case("cls-hard", ref.Config(d_model=16, n_layer=2, d_state=5, d_conv=4, d_input=3, n_classes=4,
                                reorder="hard"), B=3, L=9, seed=22),
    Case("cls-soft", ref.Config(d_model=16, n_layer=2, d_state=5, d_conv=3, d_input=3, n_classes=4,
                                reorder="soft"), B=3, L=8, seed=23),
    Case("cls-soft-neg-both", ref.Config(d_model=24, n_layer=2, d_state=5, d_conv=4, d_input=2,
                                         n_classes=3, reorder="soft", scenario="negative",
                                         polarize="both"), B=2, L=7, seed=24),
    # The classifier's pool (ssmlab-math(7) MODEL): the last token, or a learned
    # cls token appended after the last one (L+1 positions) and read there.
    Case("pool-last", ref.Config(d_model=16, n_layer=2, d_state=6, d_conv=4, d_input=3, n_classes=4,
                                 pool="last"), B=3, L=9, seed=25),
    Case("pool-cls", ref.Config(d_model=16, n_layer=2, d_state=6, d_conv=4, d_input=3, n_classes=4,
                                pool="cls"), B=3, L=8, seed=26),
    Case("pool-cls-single", ref.Config(d_model=8, n_layer=3, d_state=4, d_conv=3, d_input=2, n_classes=3,
                                       pool="cls"), B=1, L=5, seed=27),
    Case("pool-cls-neg-both", ref.Config(d_model=24, n_layer=2, d_state=5, d_conv=4, d_input=2,
                                         n_classes=3, scenario="negative", polarize="both",
                                         pool="cls"), B=2, L=7, seed=28),
    Case("pool-last-soft", ref.Config(d_model=16, n_layer=2, d_state=5, d_conv=3, d_input=3, n_classes=4,
                                      reorder="soft", pool="last"), B=3, L=8, seed=30),
    # reorder_tau and reorder_layers: SoftSort at tau 0.5 in layers 0 and 2;
    # a straight-through hard sort in layer 1 alone.
    Case("soft-tau-layers", ref.Config(d_model=16, n_layer=3, d_state=4, d_conv=3, d_input=3, n_classes=4,
                                       reorder="soft", reorder_tau=0.5, reorder_layers=(0, 2)),
         B=2, L=9, seed=31),
    Case("hard-layer1", ref.Config(d_model=16, n_layer=2, d_state=5, d_conv=4, d_input=3, n_classes=4,
                                   reorder="hard", reorder_layers=(1,)), B=3, L=7, seed=32),
]


def parse_loss(stdout):
    """The value under the CSV header column `loss`."""
    lines = [ln.strip() for ln in stdout.splitlines() if ln.strip()]
    for i, header in enumerate(lines[:-1]):
        cols = [c.strip() for c in header.split(",")]
        if "loss" in cols:
            return float(lines[i + 1].split(",")[cols.index("loss")])
    raise ValueError("no CSV column named loss on stdout")


def run_engine(command, model_dir, inputs, labels, workdir):
    """Run `eval` on token ids (B, L), or on continuous inputs (B, L, I) with
    labels (B); returns (logits, grads, loss) or raises RuntimeError."""
    logits_path = os.path.join(workdir, "logits.npy")
    grads_path = os.path.join(workdir, "grads.safetensors")
    if labels is None:
        batch = ["--tokens", refcheck.tokens_arg(inputs)]
    else:
        inputs_path = os.path.join(workdir, "inputs.npy")
        np.save(inputs_path, inputs.numpy().astype(np.float32))
        batch = ["--inputs", inputs_path, "--labels", ",".join(str(int(v)) for v in labels)]
    argv = shlex.split(command) + ["eval", "--model", model_dir, *batch,
                                   "--save-logits", logits_path, "--save-grads", grads_path]
    run = refcheck.run_command(argv)
    try:
        return (np.load(logits_path), ref.read_safetensors(grads_path), parse_loss(run.stdout))
    except (OSError, ValueError) as e:
        raise RuntimeError(f"bad output: {e}")


def case_inputs(case, params):
    """(params, inputs, labels): token ids and no labels for a language model;
    for a classifier float32 inputs (B, L, I) and labels (B), and under
    reorder the rescaled scores and, for a hard sort, separated inputs."""
    cfg = case.cfg
    g = torch.Generator().manual_seed(100 + case.seed)
    if not cfg.n_classes:
        return params, torch.randint(0, cfg.vocab_size, (case.B, case.L), generator=g), None
    labels = torch.randint(0, cfg.n_classes, (case.B,), generator=g)
    inputs = torch.randn(case.B, case.L, cfg.d_input, generator=g)
    if cfg.reorder != "off":
        params = ref.spread_scores(params, case.dt_spread, cfg.first_reorder)
        params = ref.round_params(ref.scale_importance(params, cfg, inputs, case.score_std), case.dtype)
        if cfg.reorder == "hard":
            inputs = ref.separated_inputs(params, cfg, inputs.shape, g, HARD_GAP)
    return params, inputs, labels


def replaced_rows(cfg):
    """x_proj rows a scenario overwrites: the N learned B rows and C rows."""
    R, N, Ns, n1 = cfg.rank, cfg.d_state, cfg.state_dim, cfg.n_one
    return list(range(R + n1, R + n1 + N)) + list(range(R + Ns + n1, R + Ns + n1 + N))


def check_variant(case, grads, got_grads, report):
    """The extra checks of scenario and reorder cases (engine gradient file
    against exact zeros, and the reference's soft k gradient against 0).
    Tensors missing or misshapen in the file have already failed."""
    cfg = case.cfg
    shapes = cfg.param_shapes()
    ok = lambda name: name in got_grads and tuple(got_grads[name].shape) == tuple(shapes[name])
    xp = [ref.mixer_name(i, "x_proj.weight") for i in range(cfg.n_layer)]
    if cfg.scenario != "default" and all(ok(name) for name in xp):
        rows = replaced_rows(cfg)
        worst = max(np.abs(got_grads[name][rows]).max() for name in xp)
        report.line(worst == 0, f"{case.name}/x_proj S_B, S_C rows: zero gradient",
                    f"max |grad| = {worst:.2e}")
    for i in cfg.reorder_layers if cfg.reorder != "off" else ():
        k = ref.mixer_name(i, ref.IMP_K)
        if not ok(k):
            continue
        ratio = np.abs(got_grads[k]).max() / max(np.abs(g).max() for g in got_grads.values())
        report.line(ratio > K_GRAD_MIN, f"{case.name}/layer {i} importance_k: real gradient ({cfg.reorder} sort)",
                    f"max |grad k| / max |grad| = {ratio:.2e} (must exceed {K_GRAD_MIN:.0e})")
    if cfg.pool == "cls" and ok(ref.CLS_TOKEN):
        ratio = np.abs(got_grads[ref.CLS_TOKEN]).max() / max(np.abs(g).max() for g in got_grads.values())
        report.line(ratio > CLS_GRAD_MIN, f"{case.name}/cls_token: real gradient",
                    f"max |grad cls| / max |grad| = {ratio:.2e} (must exceed {CLS_GRAD_MIN:.0e})")


def check_outputs(report, name, want_shape, got_logits, logits, got_loss, loss):
    """The engine's logits (of want_shape) and loss against the reference's."""
    if got_logits.shape != want_shape:
        report.line(False, f"{name}/logits", f"shape {got_logits.shape}, want {want_shape}")
    else:
        report.within(f"{name}/logits", ref.rel_err(got_logits, logits.reshape(want_shape)), LOGITS_TOL)
    report.within(f"{name}/loss", abs(got_loss - loss.item()) / abs(loss.item()), LOSS_TOL)


def check_case(case, command, report, workroot, break_reference):
    cfg = case.cfg
    params = ref.round_params(ref.init_params(cfg, seed=case.seed), case.dtype)
    params, inputs, labels = case_inputs(case, params)
    workdir = os.path.join(workroot, case.name)
    model_dir = os.path.join(workdir, "model")
    ref.write_checkpoint(model_dir, cfg, params, naming=case.naming, dtype=case.dtype)

    if break_reference:   # a deliberately wrong reference: everything should FAIL
        params = dict(params)
        params[ref.NORM_F] = params[ref.NORM_F] * 1.01
    loss, logits, grads = ref.loss_and_grads(params, cfg, inputs, labels, dtype=torch.float64)

    try:
        got_logits, got_grads, got_loss = run_engine(command, model_dir, inputs, labels, workdir)
    except RuntimeError as e:
        report.line(False, f"{case.name}/eval", str(e))
        return
    detail = "ran"
    if cfg.reorder == "hard":
        detail += f" (score gap {ref.score_gap(params, cfg, inputs):.1e} of the terms)"
    report.line(True, f"{case.name}/eval", detail)

    if cfg.n_classes:
        want_shape = (case.B, cfg.n_classes)
    elif case.B == 1:
        want_shape = (case.L, cfg.padded_vocab)
    else:
        want_shape = (case.B, case.L, cfg.padded_vocab)
    check_outputs(report, case.name, want_shape, got_logits, logits, got_loss, loss)

    extras = refcheck.compare_grads(report, case.name, grads, got_grads, ref.checkpoint_names(case.naming),
                                    GRAD_TOL, ref.rel_err)
    check_variant(case, grads, got_grads, report)
    for extra in extras:
        print(f"note  {case.name}: unexpected tensor {extra} in the gradient file", file=sys.stderr)


def main():
    return refcheck.main(CASES, lambda c: c.name, check_case, "Check ssmlab eval against PyTorch autograd.",
                         "perturb the reference (norm_f * 1.01): every case must fail", "ssmlab-ref-")


if __name__ == "__main__":
    sys.exit(main())
