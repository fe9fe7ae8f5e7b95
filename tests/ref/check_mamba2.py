# check_mamba2.py — the PyTorch reference check of ssmlab's Mamba-2 forward and
# backward (ssmlab-math(7) MAMBA-2).  For each case it writes a random Mamba-2
# checkpoint (state-spaces or transformers layout), runs
#   ssmlab eval --model DIR --tokens ... --save-logits OUT.npy --save-grads OUT.safetensors
# and compares the logits, the loss and the gradient of every parameter with
# float64 autograd through tests/ref/mamba2_ref.py (the SSD recurrence step by
# step).  The cases cover lengths that are not a multiple of the chunk size,
# one chunk longer than the sequence, chunks of 1, one and two groups (of B,
# C and the gated norm), tied and untied heads, B = 1 and B > 1, and
# polarized models (zero, one, both: pinned heads beyond the learned ones).
#
# Errors are  max|engine - ref| / max|ref|  over the whole tensor (loss:
# |engine - ref| / |ref|).  Tolerances: logits and loss 1e-4, gradients 1e-3.
#
#   /usr/bin/python3 tests/ref/check_mamba2.py [BINARY] [--keep] [--case NAME] [--break-reference]
# Ends with "N passed, M failed"; exit status 1 when anything failed.
import os
import sys
from dataclasses import dataclass

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_engine  # noqa: E402
import mamba2_ref as ref2  # noqa: E402
import mamba_ref as ref  # noqa: E402
import refcheck  # noqa: E402

GRAD_TOL = check_engine.GRAD_TOL   # logits and loss: check_engine.check_outputs


@dataclass
class Case(refcheck.Case):
    naming: str = "mamba_ssm"     # or "transformers"


CASES = [
    # L 13 = 3 chunks of 4 and one of 1
    Case("g1-tied-q4", ref2.Config(d_model=16, n_layer=2, vocab_size=37, d_state=5, d_conv=4,
                                   head_dim=8, n_groups=1, chunk_size=4), B=2, L=13, seed=1),
    Case("g2-untied-q5", ref2.Config(d_model=24, n_layer=2, vocab_size=45, d_state=4, d_conv=3,
                                     head_dim=6, n_groups=2, chunk_size=5, tie_embeddings=False),
         B=3, L=11, seed=2),
    Case("hf-g2-q3", ref2.Config(d_model=16, n_layer=3, vocab_size=30, d_state=6, d_conv=4,
                                 head_dim=4, n_groups=2, chunk_size=3, tie_embeddings=False),
         B=2, L=10, seed=3, naming="transformers"),
    Case("hf-tied-g1", ref2.Config(d_model=16, n_layer=2, vocab_size=29, d_state=3, d_conv=2,
                                   head_dim=8, n_groups=1, chunk_size=4), B=2, L=9, seed=4,
         naming="transformers"),
    # B = 1 (logits (L, V)); chunks of 1 position; a chunk longer than L
    Case("single-q1", ref2.Config(d_model=8, n_layer=2, vocab_size=20, d_state=4, d_conv=4,
                                  head_dim=4, n_groups=2, chunk_size=1), B=1, L=7, seed=5),
    Case("q-beyond-l", ref2.Config(d_model=16, n_layer=2, vocab_size=33, d_state=4, d_conv=4,
                                   expand=3, head_dim=12, n_groups=4, chunk_size=16), B=2, L=9, seed=6),
    # polarized: pinned heads (A = 0 first, A = -100 last) beyond the learned
    # ones; their A_log gets no gradient (the reference's is exactly 0)
    Case("pol-both-g2", ref2.Config(d_model=16, n_layer=2, vocab_size=31, d_state=4, d_conv=4,
                                    head_dim=4, n_groups=2, chunk_size=4, tie_embeddings=False,
                                    polarize="both"), B=2, L=13, seed=7),
    Case("pol-one-g1", ref2.Config(d_model=8, n_layer=2, vocab_size=19, d_state=3, d_conv=3,
                                   head_dim=4, n_groups=1, chunk_size=3, polarize="one"), B=2, L=11, seed=8),
    Case("pol-zero-g1", ref2.Config(d_model=16, n_layer=3, vocab_size=25, d_state=5, d_conv=4,
                                    head_dim=8, n_groups=1, chunk_size=5, polarize="zero"), B=1, L=9, seed=9),
]


def check_case(case, command, report, workroot, break_reference):
    cfg = case.cfg
    params = ref2.init_params(cfg, seed=case.seed)
    g = torch.Generator().manual_seed(100 + case.seed)
    tokens = torch.randint(0, cfg.vocab_size, (case.B, case.L), generator=g)
    workdir = os.path.join(workroot, case.name)
    model_dir = os.path.join(workdir, "model")
    ref2.write_checkpoint(model_dir, cfg, params, naming=case.naming)
    if break_reference:   # a deliberately wrong reference: everything should FAIL
        params = dict(params)
        params[ref.NORM_F] = params[ref.NORM_F] * 1.01
    loss, logits, grads = ref2.loss_and_grads(params, cfg, tokens)
    try:
        got_logits, got_grads, got_loss = check_engine.run_engine(command, model_dir, tokens, None, workdir)
    except RuntimeError as e:
        report.line(False, f"{case.name}/eval", str(e))
        return
    report.line(True, f"{case.name}/eval", "ran")
    want_shape = (case.L, cfg.padded_vocab) if case.B == 1 else (case.B, case.L, cfg.padded_vocab)
    check_engine.check_outputs(report, case.name, want_shape, got_logits, logits, got_loss, loss)
    extras = refcheck.compare_grads(report, case.name, grads, got_grads, ref.checkpoint_names(case.naming),
                                    GRAD_TOL, ref.rel_err)
    for extra in extras:
        report.line(False, f"{case.name}/grad {extra}", "unexpected tensor in the gradient file")


def main():
    return refcheck.main(CASES, lambda c: c.name, check_case,
                         "Check ssmlab eval of Mamba-2 models against PyTorch autograd.",
                         "perturb the reference (norm_f * 1.01): every case must fail", "ssmlab-m2-")


if __name__ == "__main__":
    sys.exit(main())
