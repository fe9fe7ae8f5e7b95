#!/usr/bin/python3
"""table.py — the one table of `make bench`, from the rows of bench.csv.

Reads the CSV rows of `ssmlab bench` and bench/torch_baseline.py (one
header, the columns of both) and prints every case's ssmlab figure, the
figure it is compared with, the ratio, the target and PASS/FAIL, with each
side's peak RSS; then the sgemm and stream rows, the scan micro-benchmark
and the configuration of both sides.  Exits 1 when a target fails.

Targets (issue 16): train-small >= 6x PyTorch (loop scan, fair malloc);
train-130m >= 3x the same (no issue target: ours); prefill-130m >= 2.5x
llama.cpp F32's recorded 303 tok/s and its GEMMs >= 70% of this run's sgemm
peak (the 2048^3 row); decode in bf16 weights, generate's default
(gen-130m-bf16), >= 2x llama.cpp F32's recorded 44 tok/s and >= 80% of
the bandwidth bound (the read kernel's GB/s over the weights, read between
the timed steps, over the bytes of weights one step reads; the stream read's
best pass gives a second bound, no target); decode in float32 weights
(gen-130m) against the same figures with no target: 2x llama.cpp is past
the bound of 517 MB a token, and its products are OpenBLAS's sgemv.  Mamba-2 (issue 12):
m2-train-small, m2-prefill-130m and m2-gen-130m against the PyTorch
baseline's Mamba-2 (chunked SSD, fair malloc; no target), the m2 prefill's
GEMMs against the sgemm peak and m2 decode (m2-gen-130m, m2-gen-130m-bf16)
against the bandwidth bound (no target), and m2-ssd-130m: the chunked SSD scan faster than the recurrent
step at L 512 (ratio > 1).  Comparisons without a target print "-" in the
target column.  Usage: table.py BENCH.CSV
"""
import csv
import sys

# llama-bench -p 512 -n 64 -t 2, F32, random mamba-130m-shaped weights, on
# this machine with a Feb 2025 build (not installable here): the upper ends
# of the recorded ranges (prefill 259-303, generation 39-44 tok/s).
LLAMA_PREFILL, LLAMA_GEN = 303.0, 44.0

TARGETS = {"train-small": 6.0, "train-130m": 3.0}
BASELINES = [("loop-fairmalloc", "pytorch loop, fair malloc"),
             ("loop-glibcmalloc", "pytorch loop, glibc malloc"),
             ("pscan-fairmalloc", "pytorch pscan, fair malloc"),
             ("ssd-fairmalloc", "pytorch chunked SSD, fair malloc")]
SSD_CASE, SSD_TARGET = "m2-ssd-130m", 1.0   # chunked over recurrent, strictly above


def num(row, key):
    try:
        return float(row.get(key) or 0.0)
    except ValueError:
        return 0.0


class Table:
    def __init__(self):
        self.fail = False
        print("%-15s %-16s %-40s %14s %8s %8s %6s %8s %8s" % (
            "case", "ssmlab", "compared with", "figure", "ratio", "target", "result",
            "ss MiB", "cmp MiB"))

    def row(self, case, ours, what, theirs, target=None, ours_mib=None, their_mib=None,
            pct=False, unit="tok/s", strict=False):
        ratio = ours / theirs if theirs > 0 else 0.0
        if target is None:
            tgt, res = "-", "-"
        else:
            ok = ratio > target if strict else ratio >= target
            self.fail |= not ok
            cmp = ">" if strict else ">="
            tgt = (cmp + "%.0f%%" % (100 * target)) if pct else (cmp + "%gx" % target)
            res = "PASS" if ok else "FAIL"
        shown = ("%.0f%%" % (100 * ratio)) if pct else ("%.2fx" % ratio)
        mib = lambda v: "%.0f" % v if v is not None else ""
        print("%-15s %-16s %-40s %14s %8s %8s %6s %8s %8s" % (
            case, "%.1f %s" % (ours, unit), what, "%.1f %s" % (theirs, unit) if unit else "",
            shown, tgt, res, mib(ours_mib), mib(their_mib)))


def main(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    ss = {(r["case"], r["variant"]): r for r in rows if r["impl"] == "ssmlab"}
    pt = {(r["case"], r["variant"]): r for r in rows if r["impl"] == "pytorch"}
    sgemm_peak = num(ss.get(("sgemm", "square-2048"), {}), "value")
    best = max([num(r, "value") for (c, _), r in ss.items() if c == "stream"] or [0.0])
    best_kernel = max([(num(r, "value"), v) for (c, v), r in ss.items() if c == "stream"] or
                      [(0.0, "none")])[1]
    # a decode step only reads its weights: the bound is the read kernel's
    # rate (copy's GB/s counts its writes too, so it overstates reading)
    bandwidth = num(ss.get(("stream", "read"), {}), "value") or best
    t = Table()
    model_cases = [c for (c, v), r in ss.items() if r["unit"] == "tok/s" and not v]
    for case in model_cases:   # in the order of the CSV
        s = ss[(case, "")]
        tps, mib = num(s, "tokens_per_s"), num(s, "peak_mib")
        m2 = case.startswith("m2-")   # Mamba-2: no recorded llama.cpp figure, no target
        kind = case[3:] if m2 else case
        if kind.startswith("prefill-"):
            if not m2:
                t.row(case, tps, "llama.cpp F32 (recorded, not this run)", LLAMA_PREFILL, 2.5, mib)
            t.row(case, num(s, "gemm_gflops"), "sgemm 2048^3 peak, GEMMs' GFLOP/s",
                  sgemm_peak, None if m2 else 0.70, pct=True, unit="GF/s")
        if kind.startswith("gen-"):   # a case per weight format (column weights)
            # the targets are on generation as ssmlab runs it by default,
            # in bf16; float32 weights are shown against the same figures
            # (2x llama.cpp is past their bound: 517 MB a token)
            judged = not m2 and s["weights"] == "bf16"
            if not m2:
                t.row(case, tps, "llama.cpp F32 (recorded, not this run)", LLAMA_GEN,
                      2.0 if judged else None, mib)
            wb = num(s, "weight_bytes")
            # the target's bound: the read kernel over the weights between
            # the timed steps (the same seconds); then, for reference, the
            # stream read's best pass earlier in the run
            for gbs, what, target in ((num(s, "read_gbs"), "read between steps", 0.80),
                                      (bandwidth, "stream read best", None)):
                if gbs > 0 and wb > 0:
                    t.row(case, tps, "bound, %s %.0f MB, %s" % (s["weights"], wb / 1e6, what),
                          gbs * 1e9 / wb, target if judged else None, pct=True)
        for variant, label in BASELINES:
            p = pt.get((case, variant))
            if p is None:
                continue
            target = TARGETS.get(case) if variant == "loop-fairmalloc" else None
            if kind.startswith("gen-"):
                label = label.replace("loop", "decode step").replace("chunked SSD", "decode step")
            t.row(case, tps, label, num(p, "tokens_per_s"), target, mib, num(p, "peak_mib"))
    chunked, recurrent = ss.get((SSD_CASE, "chunked")), ss.get((SSD_CASE, "recurrent"))
    if chunked and recurrent:   # one mamba2-130m layer's SSD scan, L 512
        t.row(SSD_CASE, num(chunked, "tokens_per_s"),
              "recurrent SSD step (ssm_ssd_step), L %s" % recurrent["seq_len"],
              num(recurrent, "tokens_per_s"), SSD_TARGET, strict=True)
    print()
    for (case, variant), r in ss.items():
        if case in ("sgemm", "stream"):
            print("%-7s %-12s %8.1f %-8s (M %s, best of %s)" % (
                case, variant, num(r, "value"), r["unit"], r["seq_len"], r["steps"])
                  if case == "sgemm" else
                  "%-7s %-12s %8.1f %-8s (best of %s)" % (
                      case, variant, num(r, "value"), r["unit"], r["steps"]))
    naive, first = {}, {}   # the scan micro-benchmark: naive, then fast paths
    for r in rows:
        if r["impl"] in ("naive", "fast", "avx2", "avx512"):
            case, tps = r["case"], num(r, "tokens_per_s")
            line = "%-19s %-6s %12.1f tok/s" % (case, r["impl"], tps)
            if r["impl"] == "naive":
                naive[case] = tps
            elif naive.get(case, 0) > 0:
                line += "  (%.1fx naive)" % (tps / naive[case])
            if r["impl"] == "avx512" and first.get(case, 0) > 0:
                line += "  (%.2fx avx2)" % (tps / first[case])
            if r["impl"] != "naive":
                first.setdefault(case, tps)
            print(line)
    print()
    one_ss = next((r for r in rows if r["impl"] == "ssmlab"), {})
    one_pt = next((r for r in rows if r["impl"] == "pytorch"), {})
    print("OpenBLAS (ssmlab):  %s, core %s; omp/blas threads %s/%s" % (
        one_ss.get("blas_config"), one_ss.get("blas_core"), one_ss.get("omp_threads"),
        one_ss.get("blas_threads")))
    print("OpenBLAS (pytorch): %s, core %s; intra-op/blas threads %s/%s" % (
        one_pt.get("blas_config"), one_pt.get("blas_core"), one_pt.get("omp_threads"),
        one_pt.get("blas_threads")))
    print("sgemm peak (2048^3, ssmlab's threading): %.1f GFLOP/s; bandwidth: read %.1f GB/s "
          "(the decode bound's), best stream kernel %s %.1f GB/s" % (
              sgemm_peak, bandwidth, best_kernel, best))
    return 1 if t.fail else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
