"""refcheck.py — what the checks of ssmlab against PyTorch share: a report of
PASS/FAIL lines that ends with "N passed, M failed" (the line tests/run.sh
reads), the driver that runs every case in one scratch directory, and the
command line of a check with named cases."""
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


def tokens_arg(tokens):
    """Token ids (B, L) as ssmlab's --tokens: 1,2,3;4,5,6."""
    return ";".join(",".join(str(int(v)) for v in row) for row in tokens)


def run_binary(argv):
    """stdout of argv, or RuntimeError naming the failure (the last stderr line)."""
    try:
        run = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RuntimeError(f"cannot run {argv[0]}: {e}")
    if run.returncode != 0:
        tail = (run.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        raise RuntimeError(f"exit {run.returncode}: {tail}")
    return run.stdout


def main(description, cases, check_case, prefix, break_help):
    """The command line [BINARY] [--case NAME] [--keep] [--break-reference]
    of a check over named cases; returns the exit status."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("binary", nargs="?", default="./ssmlab",
                    help="engine command (default ./ssmlab); may include arguments")
    ap.add_argument("--case", action="append", help="run only this case (repeatable)")
    ap.add_argument("--keep", action="store_true", help="keep the checkpoints and outputs")
    ap.add_argument("--break-reference", action="store_true", help=break_help)
    args = ap.parse_args()
    chosen = [c for c in cases if not args.case or c.name in args.case]
    if not chosen:
        print(f"no such case; cases: {', '.join(c.name for c in cases)}", file=sys.stderr)
        return 64
    return run_cases(chosen, check_case, args, prefix)
