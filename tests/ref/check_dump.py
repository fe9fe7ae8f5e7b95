# check_dump.py — the PyTorch reference check of `ssmlab inspect --dump`
# (ssmlab-inspect(1) DUMP): for each case it writes a random checkpoint with
# tests/ref/mamba_ref.py, runs
#   ssmlab inspect --model DIR --tokens 1,2;3,4 --dump OUT.safetensors
# (classifiers: --inputs X.npy), reads the file back with mamba_ref's
# safetensors reader and compares
#   names       the tensor names and their order, exactly (embeddings, per
#               layer residual u z delta B C h y out, norm_f, logits);
#   shapes      every shape exactly (L with the cls token under pool cls);
#   values      every tensor against the float64 reference forward's probe
#               record (mamba_ref.PROBE), max|a - b| / max|b| <= 1e-4;
#   metadata    format tag, model directory, input kind and ids or file,
#               layers, and the version `ssmlab --version` prints;
# and, with --dump-layers, that only the listed layers are there, with the
# same values.  Each case also checks that the comparison catches a wrong
# reference (one tensor * 1.01 must exceed the tolerance).
#
#   /usr/bin/python3 tests/ref/check_dump.py [BINARY] [--keep] [--case NAME] [--break-reference]
# BINARY defaults to ./ssmlab.  --break-reference perturbs the reference's
# layers.0.h (* 1.01): every case must fail.  Prints one PASS/FAIL line per
# check and ends with "N passed, M failed"; exit status 1 on any failure.
import os
import shlex
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_engine  # noqa: E402  (its Case and case_inputs: scores spread, hard sorts separated)
import mamba_ref as ref  # noqa: E402
from check_engine import Case  # noqa: E402
import refcheck  # noqa: E402

TOL = 1e-4
PER_LAYER = ("residual", "u", "z", "delta", "B", "C", "h", "y", "out")
BROKEN = "layers.0.h"          # the tensor --break-reference perturbs
FORMAT = "ssmlab-dump 1"

# (case, --dump-layers or None)
CASES = [
    # odd L, B = 2; V 37 pads to 40
    (Case("lm-odd", ref.Config(d_model=24, n_layer=3, d_state=5, d_conv=4, expand=2, vocab_size=37),
          B=2, L=7, seed=41), "0,2"),
    (Case("pol-both", ref.Config(d_model=16, n_layer=2, d_state=4, d_conv=3, vocab_size=30,
                                 polarize="both"), B=2, L=9, seed=42), "1"),
    (Case("hf-names", ref.Config(d_model=32, n_layer=2, d_state=6, d_conv=4, vocab_size=45),
          B=1, L=11, seed=43, naming="transformers"), None),
    # reordering classifiers: u, delta, B, C, h, y in the scan's sorted order
    (Case("reorder-soft", ref.Config(d_model=16, n_layer=2, d_state=5, d_conv=3, d_input=3, n_classes=4,
                                     reorder="soft"), B=3, L=8, seed=44), "0"),
    (Case("reorder-hard", ref.Config(d_model=16, n_layer=2, d_state=5, d_conv=4, d_input=3, n_classes=4,
                                     reorder="hard", reorder_layers=(0, 1)), B=2, L=7, seed=45), None),
    # pool cls: L + 1 positions
    (Case("pool-cls", ref.Config(d_model=16, n_layer=2, d_state=4, d_conv=4, d_input=2, n_classes=3,
                                 pool="cls", polarize="one"), B=2, L=5, seed=46), None),
]


def reference(case, params, inputs, break_reference):
    """The float64 reference forward's probe record, as numpy arrays."""
    p = {k: v.detach().to(torch.float64) for k, v in params.items()}
    x = inputs.to(torch.float64) if case.cfg.d_input else inputs
    ref.PROBE = {"record": {}}
    try:
        ref.forward(p, case.cfg, x)
        rec = {k: v.numpy() for k, v in ref.PROBE["record"].items()}
    finally:
        ref.PROBE = None
    if break_reference:
        rec[BROKEN] = rec[BROKEN] * 1.01
    return rec


def expected_names(cfg, layers):
    chosen = range(cfg.n_layer) if layers is None else [int(v) for v in layers.split(",")]
    return (["embeddings"] + [f"layers.{i}.{t}" for i in chosen for t in PER_LAYER]
            + ["norm_f", "logits"])


def run_dump(command, model_dir, case, inputs, workdir, layers):
    """Run inspect --dump; returns (path, stderr) or raises RuntimeError."""
    out = os.path.join(workdir, f"dump-{layers or 'all'}.safetensors")
    if case.cfg.d_input:
        x_path = os.path.join(workdir, "inputs.npy")
        np.save(x_path, inputs.numpy().astype(np.float32))
        batch = ["--inputs", x_path]
    else:
        batch = ["--tokens", ";".join(",".join(str(int(v)) for v in row) for row in inputs)]
    argv = shlex.split(command) + ["inspect", "--model", model_dir, *batch, "--dump", out]
    if layers:
        argv += ["--dump-layers", layers]
    run = refcheck.run_command(argv)
    if run.stdout:
        raise RuntimeError(f"--dump alone printed tables: {run.stdout[:60]!r}")
    return out


def version(command):
    run = subprocess.run(shlex.split(command) + ["--version"], capture_output=True, text=True, timeout=60)
    return run.stdout.split()[-1] if run.returncode == 0 and run.stdout.split() else None


def check_metadata(label, meta, want, report):
    bad = [f"{k}={meta.get(k)!r} (want {v!r})" for k, v in want.items() if meta.get(k) != v]
    report.line(not bad, f"{label}/metadata", "; ".join(bad) if bad else f"{len(want)} entries")


def check_file(label, path, case, rec, want_meta, layers, report):
    header, _ = ref.read_safetensors_header(path)
    got = ref.read_safetensors(path)
    names = [k for k in header if k != "__metadata__"]
    want_names = expected_names(case.cfg, layers)
    report.line(names == want_names, f"{label}/names",
                f"{len(names)} tensors" if names == want_names else f"got {names}, want {want_names}")
    check_metadata(label, header.get("__metadata__", {}), want_meta, report)
    worst, worst_name, bad_shapes = 0.0, "", []
    for name in want_names:
        if name not in got:
            continue
        want = rec[name]
        if tuple(got[name].shape) != tuple(want.shape):
            bad_shapes.append(f"{name} {tuple(got[name].shape)} want {tuple(want.shape)}")
            continue
        err = ref.rel_err(got[name], want)
        if err >= worst:
            worst, worst_name = err, name
    report.line(not bad_shapes, f"{label}/shapes", "; ".join(bad_shapes) or "all as documented")
    report.line(bool(worst <= TOL), f"{label}/values",
                f"worst {worst_name}: err={worst:.2e} (tol {TOL:.0e})")
    return got


def check_case(entry, command, report, workroot, break_reference):
    case, layers = entry
    cfg = case.cfg
    params = ref.init_params(cfg, seed=case.seed)
    params, inputs, _ = check_engine.case_inputs(case, params)
    workdir = os.path.join(workroot, case.name)
    model_dir = os.path.join(workdir, "model")
    ref.write_checkpoint(model_dir, cfg, params, naming=case.naming)
    rec = reference(case, params, inputs, break_reference)
    if cfg.d_input:
        input_meta = ("inputs", os.path.join(workdir, "inputs.npy"))
    else:
        input_meta = ("tokens", ";".join(",".join(str(int(v)) for v in row) for row in inputs))
    whole = {}
    for sub in [None] + ([layers] if layers else []):
        label = f"{case.name}/{'layers ' + sub if sub else 'all'}"
        try:
            path = run_dump(command, model_dir, case, inputs, workdir, sub)
        except RuntimeError as e:
            report.line(False, f"{label}/dump", str(e))
            continue
        want_meta = {"ssmlab.format": FORMAT, "ssmlab.model": model_dir,
                     "ssmlab.input_kind": input_meta[0], "ssmlab.input": input_meta[1],
                     "ssmlab.layers": sub or "all", "ssmlab.version": version(command)}
        got = check_file(label, path, case, rec, want_meta, sub, report)
        whole = whole or got
    if "layers.0.h" in whole:   # the comparison can fail: a wrong reference is caught
        err = ref.rel_err(whole["layers.0.h"], rec["layers.0.h"] * 1.01)
        report.line(bool(err > TOL), f"{case.name}/catches a wrong reference",
                    f"h * 1.01: err={err:.2e} (must exceed {TOL:.0e})")


def main():
    return refcheck.main(CASES, lambda c: c[0].name, check_case, "Check ssmlab inspect --dump against PyTorch.",
                         f"perturb the reference's {BROKEN} (* 1.01): every case must fail", "ssmlab-dump-")


if __name__ == "__main__":
    sys.exit(main())
