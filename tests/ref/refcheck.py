"""refcheck.py — what the checks of ssmlab against PyTorch share: a report of
PASS/FAIL lines that ends with "N passed, M failed" (the line tests/run.sh
reads), running the binary, the driver that runs every case in one scratch
directory, and the command line of a check (with or without named cases)."""
import argparse
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass


@dataclass
class Case:
    """A random checkpoint of config cfg (mamba_ref.Config), checked on a
    (B, L) batch drawn from seed."""
    name: str
    cfg: object
    B: int
    L: int
    seed: int


class Report:
    def __init__(self, width=52):
        self.passed = self.failed = 0
        self.width = width

    def line(self, ok, name, detail):
        self.passed += ok
        self.failed += not ok
        print(f"{'PASS' if ok else 'FAIL'}  {name:<{self.width}} {detail}", flush=True)

    def within(self, name, err, tol):
        self.line(bool(err <= tol), name, f"err={err:.2e} (tol {tol:.0e})")


def run_cases(cases, check_case, args, prefix, report=None):
    """check_case(case, args.binary, report, workroot, args.break_reference)
    for every case; keeps the scratch directory with args.keep.  Prints the
    summary line and returns the exit status."""
    report = report or Report()
    workroot = tempfile.mkdtemp(prefix=prefix)
    try:
        for case in cases:
            check_case(case, args.binary, report, workroot, args.break_reference)
    finally:
        if args.keep:
            print(f"kept {workroot}", file=sys.stderr)
        else:
            shutil.rmtree(workroot, ignore_errors=True)
    print(f"{report.passed} passed, {report.failed} failed")
    return 1 if report.failed else 0


def compare_grads(report, case_name, grads, got_grads, rename, tol, rel_err):
    """Every reference gradient (name -> tensor) against the engine's file
    (file name -> array), where rename maps a reference name to the name in
    the file (the canonical name is accepted too); conv1d weights may come
    as (C, K) for (C, 1, K).  Returns the file's names no reference
    gradient claimed."""
    for name, want in grads.items():
        label = f"{case_name}/grad {rename.get(name, name)}"
        file_name = rename.get(name, name)
        if file_name not in got_grads and name in got_grads:
            file_name = name          # accepted: the canonical mamba_ssm name
            label += f" (as {name})"
        if file_name not in got_grads:
            report.line(False, label, "missing from the gradient file")
            continue
        got = got_grads[file_name]
        if name.endswith("conv1d.weight") and got.ndim == 2:
            got = got[:, None, :]     # (C, K) is accepted for (C, 1, K)
        if tuple(got.shape) != tuple(want.shape):
            report.line(False, label, f"shape {tuple(got.shape)}, want {tuple(want.shape)}")
            continue
        report.within(label, rel_err(got, want), tol)
    known = set(grads) | {rename.get(k, k) for k in grads}
    return sorted(set(got_grads) - known)


def tokens_arg(tokens):
    """Token ids (B, L) as ssmlab's --tokens: 1,2,3;4,5,6."""
    return ";".join(",".join(str(int(v)) for v in row) for row in tokens)


def run_command(argv, timeout=300):
    """Run argv; its CompletedProcess (text), or RuntimeError with the last
    stderr line when it cannot start or exits non-zero."""
    try:
        run = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RuntimeError(f"cannot run {argv[0]}: {e}")
    if run.returncode != 0:
        tail = (run.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        raise RuntimeError(f"exit {run.returncode}: {tail}")
    return run


def run_binary(argv):
    """stdout of argv, or RuntimeError naming the failure (the last stderr line)."""
    return run_command(argv).stdout


def main(cases, name_of, check_case, description, break_help, prefix):
    """The command line BINARY [--case NAME]... [--keep] [--break-reference]
    of a check, then run_cases on the chosen cases; returns the exit status
    (64 for an unknown case)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("binary", nargs="?", default="./ssmlab",
                    help="engine command (default ./ssmlab); may include arguments")
    ap.add_argument("--case", action="append", help="run only this case (repeatable)")
    ap.add_argument("--keep", action="store_true", help="keep the checkpoints and outputs")
    ap.add_argument("--break-reference", action="store_true", help=break_help)
    args = ap.parse_args()
    chosen = [c for c in cases if not args.case or name_of(c) in args.case]
    if not chosen:
        print(f"no such case; cases: {', '.join(name_of(c) for c in cases)}", file=sys.stderr)
        return 64
    return run_cases(chosen, check_case, args, prefix)


def parse_args(description, breaks):
    """The command line of a check that runs `ssmlab inspect`: [BINARY]
    [--keep] [--break-reference]; breaks says which checks must then fail."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("binary", nargs="?", default="./ssmlab",
                    help="engine command (default ./ssmlab); may include arguments")
    ap.add_argument("--keep", action="store_true", help="keep the checkpoints")
    ap.add_argument("--break-reference", action="store_true",
                    help=f"perturb the reference: {breaks} must fail")
    return ap.parse_args()
