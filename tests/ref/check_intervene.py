# check_intervene.py — the PyTorch reference check of ssmlab's interventions
# from the command line (ssmlab-inspect(1) INTERVENTIONS): for random
# checkpoints (language models with B = 2 and an odd L, polarize both and
# none; a classifier with labels) it runs
#   ssmlab eval --model DIR --tokens ... [--ablate L:E[:N]] [--pin L:E:N:V]
#         [--patch L:POS[:state] --patch-tokens ...] --save-logits OUT.npy
# (classifiers: --inputs X.npy --labels ...) and compares with the reference
# (tests/ref/mamba_ref.py) making the same change by hand through ref.PROBE,
# in float64:
#   - the intervened logits (--save-logits), max|engine - ref| / max|ref| <= 1e-4;
#   - the intervention table's kl and dlogp columns against the reference's
#     KL(clean || intervened) and change of the target's log-probability,
#     max error / max |reference| <= 1e-3 (1e-9 absolute floor);
#   - its total row: clean_loss and loss against the reference's, 1e-5
#     relative (both are means of float64 log-probabilities of float32 logits).
# The patch value is the reference's own record of the patch input's run
# (x entering the layer, or h after the position).  A self-patch (the
# patch input is the input itself) must change nothing to the last bit:
# every kl and dlogp exactly 0, and logits files identical to a run without
# the patch.
#
#   /usr/bin/python3 tests/ref/check_intervene.py [BINARY] [--keep] [--case NAME] [--break-reference]
# --break-reference gives the reference the wrong intervention (every
# channel and position one further on) and skips the runs that change
# nothing: every logits, kl, dlogp and loss check must then FAIL (clean_loss,
# of the run without interventions, still passes).  Ends with "N passed, M failed"; exit 1
# when anything failed.
import csv
import os
import shlex
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mamba_ref as ref  # noqa: E402
import refcheck  # noqa: E402
from refcheck import Case, tokens_arg  # noqa: E402

LOGITS_TOL = 1e-4
TABLE_TOL = 1e-3
LOSS_TOL = 1e-5


CASES = [
    Case("lm-both", ref.Config(d_model=16, n_layer=3, d_state=4, d_conv=4, vocab_size=29,
                               polarize="both"), B=2, L=9, seed=41),
    Case("lm-plain", ref.Config(d_model=24, n_layer=2, d_state=5, d_conv=3, vocab_size=37),
         B=2, L=11, seed=42),
    Case("cls-one", ref.Config(d_model=16, n_layer=2, d_state=4, d_conv=4, d_input=3, n_classes=4,
                               polarize="one"), B=3, L=7, seed=43),
]


def interventions(case):
    """(name, probe dict for the reference, engine flags) of each run; a
    patch's value is filled in from the patch input's run."""
    cfg = case.cfg
    E, Ns, last = cfg.d_inner, cfg.state_dim, cfg.n_layer - 1
    runs = [
        # changes large enough to be measured well above float32 rounding:
        # every state of every fourth channel of layer 0 held at zero, and
        # the first learned state of every third channel of layers 0 and the last
        # made one-polarized (A = 0)
        ("ablate", {"ablate": [(0, e, -1) for e in range(0, E, 4)] + [(last, 5, Ns - 1)]}),
        ("pin", {"pin": [(l, e, cfg.n_one, 0.0) for l in (0, last) for e in range(0, E, 3)]
                 + [(0, E - 1, Ns - 1, -3.5)]}),
        ("ablate+pin", {"ablate": [(last, 1, 1)], "pin": [(0, 7, 2, -0.25)]}),
    ]
    if not cfg.n_classes:
        runs += [("patch-residual", {"patch": ("residual", last, case.L // 2)}),
                 ("patch-state", {"patch": ("state", 0, 2)})]
    return runs


def engine_flags(probe):
    flags = []
    for (l, e, n) in probe.get("ablate", []):
        flags += ["--ablate", f"{l}:{e}" if n < 0 else f"{l}:{e}:{n}"]
    for (l, e, n, v) in probe.get("pin", []):
        flags += ["--pin", f"{l}:{e}:{n}:{v!r}"]
    if "patch" in probe:
        kind, l, pos = probe["patch"][:3]
        flags += ["--patch", f"{l}:{pos}:{kind}"]
    return flags


def broken(probe, cfg):
    """The same interventions one channel and one position further on."""
    E, Ns = cfg.d_inner, cfg.state_dim
    out = {"ablate": [(l, (e + 1) % E, n if n < 0 else (n + 1) % Ns) for (l, e, n) in probe.get("ablate", [])],
           "pin": [(l, (e + 1) % E, n, v) for (l, e, n, v) in probe.get("pin", [])]}
    if "patch" in probe:
        kind, l, pos, value = probe["patch"]
        out["patch"] = (kind, l, pos - 1, value)
    return out


def run_eval(command, model_dir, batch, flags, logits_path):
    """stdout of `eval` (the table's rows) and the logits; raises RuntimeError."""
    argv = shlex.split(command) + ["eval", "--model", model_dir, "--threads", "1", *batch, *flags,
                                   "--save-logits", logits_path]
    return refcheck.run_binary(argv), np.load(logits_path)


def table_rows(stdout):
    """The intervention table's rows (dicts) and its total row."""
    blocks = [b for b in stdout.strip().split("\n\n") if b.startswith("table,kind,")]
    if len(blocks) != 1:
        raise ValueError("no intervention table on stdout")
    rows = list(csv.DictReader(blocks[0].splitlines()))
    total = [r for r in rows if r["kind"] == "total"]
    if len(total) != 1:
        raise ValueError(f"{len(total)} total rows")
    return [r for r in rows if r["kind"] != "total"], total[0]


def ref_logits(params, cfg, inputs, probe):
    ref.PROBE = probe
    try:
        with torch.no_grad():
            return ref.forward(params, cfg, inputs)
    finally:
        ref.PROBE = None


def compare(clean, hit, targets):
    """Per row (position, or sequence): KL(clean || hit), the change of the
    target's log-probability (NaN without a target), and the mean losses."""
    V = clean.shape[-1]
    lp, lq = F.log_softmax(clean.reshape(-1, V), -1), F.log_softmax(hit.reshape(-1, V), -1)
    kl = (lp.exp() * (lp - lq)).sum(-1)
    t = targets.reshape(-1)
    has = t >= 0
    idx = t.clamp(min=0)[:, None]
    lpt, lqt = lp.gather(1, idx)[:, 0], lq.gather(1, idx)[:, 0]
    dlogp = torch.where(has, lqt - lpt, torch.full_like(lqt, float("nan")))
    return kl, dlogp, -lpt[has].mean().item(), -lqt[has].mean().item()


def table_error(rows, col, want):
    got = np.array([float(r[col]) if r[col] != "" else np.nan for r in rows])
    want = want.numpy()
    if not np.array_equal(np.isnan(got), np.isnan(want)):
        return np.inf
    ok = ~np.isnan(want)
    scale = max(np.abs(want[ok]).max(), 1e-9)
    return np.abs(got[ok] - want[ok]).max() / scale


class Setup:
    """A case's checkpoint, inputs, the engine's batch flags and targets."""

    def __init__(self, case, workroot):
        cfg = self.cfg = case.cfg
        self.params = ref.init_params(cfg, seed=case.seed)
        self.p64 = {k: v.to(torch.float64) for k, v in self.params.items()}
        self.workdir = os.path.join(workroot, case.name)
        self.model_dir = os.path.join(self.workdir, "model")
        ref.write_checkpoint(self.model_dir, cfg, self.params)
        g = torch.Generator().manual_seed(200 + case.seed)
        if cfg.n_classes:
            self.labels = torch.randint(0, cfg.n_classes, (case.B,), generator=g)
            self.inputs = torch.randn(case.B, case.L, cfg.d_input, generator=g).to(torch.float32)
            x_path = os.path.join(self.workdir, "inputs.npy")
            np.save(x_path, self.inputs.numpy())
            self.batch = ["--inputs", x_path, "--labels", ",".join(str(int(v)) for v in self.labels)]
            self.inputs = self.inputs.to(torch.float64)
            self.targets = self.labels
        else:
            self.inputs = torch.randint(0, cfg.vocab_size, (case.B, case.L), generator=g)
            self.source = torch.randint(0, cfg.vocab_size, (case.B, case.L), generator=g)
            self.batch = ["--tokens", tokens_arg(self.inputs)]
            self.targets = torch.cat([self.inputs[:, 1:], torch.full((case.B, 1), -1)], 1)
        self.clean = ref_logits(self.p64, cfg, self.inputs, None)

    def patch_value(self, kind, layer, pos):
        """The reference's x entering layer at pos (or h after pos) on the patch input."""
        rec = {}
        ref_logits(self.p64, self.cfg, self.source, {"record": rec})
        name = f"layers.{layer}.{'residual' if kind == 'residual' else 'h'}"
        return rec[name][:, pos]


def check_run(s, name, probe, command, report, break_reference):
    cfg = s.cfg
    flags = engine_flags(probe)
    if "patch" in probe:
        probe = dict(probe, patch=probe["patch"] + (s.patch_value(*probe["patch"]),))
        flags += ["--patch-tokens", tokens_arg(s.source)]
    want_probe = broken(probe, cfg) if break_reference else probe
    hit = ref_logits(s.p64, cfg, s.inputs, want_probe)
    try:
        stdout, got = run_eval(command, s.model_dir, s.batch, flags, os.path.join(s.workdir, name.split("/")[-1] + ".npy"))
        rows, total = table_rows(stdout)
    except (RuntimeError, ValueError, OSError) as e:
        report.line(False, f"{name}/eval", str(e))
        return
    report.within(f"{name}/logits", ref.rel_err(got, hit.reshape(got.shape)), LOGITS_TOL)
    kl, dlogp, clean_loss, loss = compare(s.clean, hit, s.targets)
    report.within(f"{name}/kl", table_error(rows, "kl", kl), TABLE_TOL)
    report.within(f"{name}/dlogp", table_error(rows, "dlogp", dlogp), TABLE_TOL)
    report.within(f"{name}/clean_loss", abs(float(total["clean_loss"]) - clean_loss) / clean_loss, LOSS_TOL)
    report.within(f"{name}/loss", abs(float(total["loss"]) - loss) / loss, LOSS_TOL)


def no_change_runs(case):
    """(name, flags) of interventions that change nothing: a residual and a
    state self-patch, and in a polarized model A = 0 pinned at 0."""
    last, pos = case.cfg.n_layer - 1, case.L // 2
    runs = [(f"self-patch-{k}", ["--patch", f"{last}:{pos}:{k}"]) for k in ("residual", "state")]
    if case.cfg.n_one:
        runs.append(("pin-own-value", ["--pin", f"{last}:1:0:0"]))
    return runs


def check_no_change(s, case, command, report):
    """Each run's table is exactly 0, and their logits files are identical
    (each is the clean run's logits)."""
    files = []
    for name, flags in no_change_runs(case):
        if "--patch" in flags:
            flags = flags + ["--patch-tokens", tokens_arg(s.inputs)]
        try:
            stdout, logits = run_eval(command, s.model_dir, s.batch, flags, os.path.join(s.workdir, f"{name}.npy"))
            rows, total = table_rows(stdout)
        except (RuntimeError, ValueError, OSError) as e:
            report.line(False, f"{case.name}/{name}", str(e))
            continue
        check_zero_table(f"{case.name}/{name}", rows, total, report)
        files.append((name, logits))
    for name, logits in files[1:]:
        same = logits.shape == files[0][1].shape and logits.tobytes() == files[0][1].tobytes()
        report.line(same, f"{case.name}/{name} logits", f"bit-identical to {files[0][0]}'s" if same else "differ")


def check_zero_table(name, rows, total, report):
    moved = [r for r in rows if r["kl"] != "0" or r["dlogp"] not in ("0", "")]
    zero = not moved and total["delta_loss"] == "0"
    report.line(zero, f"{name} table", "kl, dlogp, delta_loss exactly 0" if zero else
                f"seq {moved[0]['seq']} pos {moved[0]['pos']}: kl {moved[0]['kl']}" if moved else "delta_loss")


def check_case(case, command, report, workroot, break_reference):
    s = Setup(case, workroot)
    for name, probe in interventions(case):
        check_run(s, f"{case.name}/{name}", probe, command, report, break_reference)
    if not case.cfg.n_classes and not break_reference:
        check_no_change(s, case, command, report)


def main():
    return refcheck.main(CASES, lambda c: c.name, check_case,
                         "Check ssmlab's interventions against the PyTorch reference.",
                         "give the reference the wrong interventions: the checks must fail", "ssmlab-intervene-")

if __name__ == "__main__":
    sys.exit(main())
