#!/bin/sh
# run.sh — `make bench`: runs `ssmlab bench` and the PyTorch eager baseline
# (bench/torch_baseline.py) on each case with the same thread count, prints
# tokens/s, the ratio ssmlab/pytorch against the targets (training >= 3x,
# inference >= 2x), peak memory and the OpenBLAS build, then the scan-kernel
# micro-benchmark.  Targets are judged on mean tokens/s over the timed passes;
# "best ratio" (fastest pass of each) is shown to expose noise from a busy
# machine.  Builds nothing.  Exits 1 if a target fails, 69 if the
# baseline cannot run.  Each case runs in its own process, so peak memory is
# per case.  Raw rows go to $BENCH_OUT (default build/bench.csv).
# Last, the TUI's key latency: `ssmlab tui --bench-latency` types 200 keys
# into the real UI loop (on a virtual terminal) while the engine thread
# trains scenarios/bytes-small.conf, and reports p50/p99/max from key to
# screen update; the target is p99 <= 50 ms (its row goes to
# build/bench-tui.csv beside $BENCH_OUT).
#
# Environment: BENCH_THREADS (default nproc), SSMLAB (./ssmlab),
# PYTHON (/usr/bin/python3, Debian's, which has torch), BENCH_OUT.
set -eu

cd "$(dirname "$0")/.."
THREADS=${BENCH_THREADS:-$(nproc)}
SSMLAB=${SSMLAB:-./ssmlab}
PYTHON=${PYTHON:-/usr/bin/python3}
OUT=${BENCH_OUT:-build/bench.csv}

if [ ! -x "$SSMLAB" ]; then
    echo "bench/run.sh: $SSMLAB is missing: run 'make' first" >&2
    exit 66
fi
if ! "$PYTHON" -c 'import torch' 2>/dev/null; then
    echo "bench/run.sh: $PYTHON cannot import torch (apt-get install python3-torch)" >&2
    exit 69
fi
mkdir -p "$(dirname "$OUT")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Steps per case, chosen to keep `make bench` within a few minutes on 2 cores:
# case  ssmlab-steps ssmlab-warmup  pytorch-steps pytorch-warmup  target
CASES="train-small 10 2 3 1 3
infer-130m 3 1 2 1 2"

echo "ssmlab bench: $THREADS threads; ssmlab $("$SSMLAB" --version 2>/dev/null | cut -d' ' -f2)," \
     "PyTorch $("$PYTHON" -c 'import torch; print(torch.__version__)')" >&2
echo "$CASES" | while read -r name ss sw ps pw _target; do
    echo "== $name: ssmlab ($ss timed, $sw warmup)" >&2
    "$SSMLAB" bench --case "$name" --threads "$THREADS" --steps "$ss" --warmup "$sw" \
        >"$tmp/$name.ssmlab" 2>"$tmp/$name.ssmlab.err" \
        || { cat "$tmp/$name.ssmlab.err" >&2; exit 70; }
    echo "== $name: pytorch ($ps timed, $pw warmup)" >&2
    OMP_NUM_THREADS=$THREADS "$PYTHON" bench/torch_baseline.py --case "$name" \
        --threads "$THREADS" --steps "$ps" --warmup "$pw" \
        >"$tmp/$name.pytorch" 2>"$tmp/$name.pytorch.err" \
        || { cat "$tmp/$name.pytorch.err" >&2; exit 70; }
done
echo "== scan kernels (naive vs fast)" >&2
"$SSMLAB" bench --case scan --threads "$THREADS" >"$tmp/scan.ssmlab" 2>"$tmp/scan.err" \
    || { cat "$tmp/scan.err" >&2; exit 70; }
echo "== tui key latency while training (bytes-small, 200 keys)" >&2
"$SSMLAB" tui --bench-latency --bench-keys 200 scenarios/bytes-small.conf threads="$THREADS" out="$tmp/tui-run" \
    >"$tmp/tui.latency" 2>"$tmp/tui.err" || { cat "$tmp/tui.err" >&2; exit 70; }
cp "$tmp/tui.latency" "$(dirname "$OUT")/bench-tui.csv"

# One CSV: the header once, then every row.
head -n 1 "$tmp/train-small.ssmlab" >"$OUT"
for f in "$tmp"/*.ssmlab "$tmp"/*.pytorch; do tail -n +2 "$f"; done >>"$OUT"

echo
echo "$CASES" | awk -v dir="$tmp" '
function field(file, col,    line, a) {
    getline line < file; getline line < file; close(file)
    split(line, a, ","); return a[col]
}
BEGIN {
    printf "%-12s %14s %14s %8s %8s %6s %11s %12s %11s\n", "case", "ssmlab tok/s",
        "pytorch tok/s", "ratio", "target", "result", "ssmlab MiB", "pytorch MiB",
        "best ratio"
    fail = 0
}
{
    s = dir "/" $1 ".ssmlab"; p = dir "/" $1 ".pytorch"
    st = field(s, 4) + 0; pt = field(p, 4) + 0
    ratio = pt > 0 ? st / pt : 0
    ok = ratio >= $6
    if (!ok) fail = 1
    sb = field(s, 16) + 0; pb = field(p, 16) + 0
    best = pb > 0 ? sb / pb : 0
    printf "%-12s %14.1f %14.1f %7.2fx %7s %6s %11.1f %12.1f %10.2fx\n", $1, st, pt, ratio,
        ">=" $6 "x", ok ? "PASS" : "FAIL", field(s, 5), field(p, 5), best
}
END { exit fail }' && status=0 || status=1

echo
awk -F, 'NR > 1 {
    printf "%-9s %-6s %12.1f tok/s", $1, $2, $4
    if ($2 == "naive") naive[$1] = $4
    else if (naive[$1] > 0) printf "  (%.1fx naive)", $4 / naive[$1]
    printf "\n"
}' "$tmp/scan.ssmlab"
echo
echo "OpenBLAS (ssmlab):  $(cut -d, -f6,7 "$tmp/train-small.ssmlab" | tail -n 1 | sed 's/,/ core /')"
echo "OpenBLAS (pytorch): $(cut -d, -f6,7 "$tmp/train-small.pytorch" | tail -n 1 | sed 's/,/ core /')"
echo "threads: $THREADS (ssmlab omp/blas $(cut -d, -f8,9 "$tmp/train-small.ssmlab" | tail -n 1 | tr , /)," \
     "pytorch intra-op/blas $(cut -d, -f8,9 "$tmp/train-small.pytorch" | tail -n 1 | tr , /)); rows in $OUT"
awk -F, 'NR == 2 {
    ok = $4 + 0 <= 50
    printf "tui key latency while training bytes-small (%d keys, %.0f ms/step, %d threads): p50 %.2f ms, p99 %.2f ms, max %.2f ms (target p99 <= 50 ms): %s\n",
        $2, $8, $9, $3, $4, $5, ok ? "PASS" : "FAIL"
    exit !ok
}' "$tmp/tui.latency" || status=1
[ "$status" -eq 0 ] && echo "bench: all targets met" || echo "bench: a target FAILED"
exit "$status"
