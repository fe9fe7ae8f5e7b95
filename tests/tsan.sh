#!/usr/bin/env bash
# tsan.sh — the ThreadSanitizer runs of `make tsan`: the TSAN build of
# ssmlab (build/tsan/ssmlab) drives the engine thread and the lab through
# the scripted lab (tests/e2e/tui_script.sh, every panel, training,
# validation, cancels, saves and loads), the lab's runs and checkpoints
# (tests/e2e/tui_lab.sh) and `ssmlab tui --bench-latency` with two OpenMP
# threads.  Any report fails it: halt_on_error=1 exitcode=66, and since 66
# is also EX_NOINPUT, which the scripts expect of some bad inputs, every
# report is also written under log_path and the run fails when one exists.
# libomp is not built with TSAN: tests/tsan.supp suppresses what libomp
# itself calls (its mutexes), nothing else.
# Ends with one line "N passed, M failed".
set -u
cd "$(dirname "$0")/.."
export SSMLAB=build/tsan/ssmlab
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 log_path=$logs/report suppressions=$PWD/tests/tsan.supp"
passed=0 failed=0

check() { # check NAME RC: the run passed and left no report
    local reports
    reports=$(ls "$logs"/report.* 2>/dev/null)
    if [ "$2" -eq 0 ] && [ -z "$reports" ]; then passed=$((passed + 1)); echo "ok: tsan/$1"
    else
        failed=$((failed + 1)); echo "FAIL: tsan/$1 (exit $2)"
        for r in $reports; do head -40 "$r"; mv "$r" "$r.seen"; done
    fi
}

for t in tui_script tui_lab; do
    bash "tests/e2e/$t.sh" >"$logs/$t.log" 2>&1
    rc=$?
    [ "$rc" -ne 0 ] && grep -E '^FAIL' "$logs/$t.log" | head -10
    check "$t" "$rc"
done

tmp=$(mktemp -d)
for i in $(seq 1 60); do echo "The quick brown fox $i jumps over the lazy dog."; done >"$tmp/c.txt"
"$SSMLAB" tui --bench-latency --bench-keys 40 d_model=64 n_layer=2 d_state=8 seq_len=32 batch_size=8 \
    steps=1000 warmup=1 eval_every=0 eval_batches=1 threads=2 data="$tmp/c.txt" out="$tmp/run" \
    >"$tmp/lat.csv" 2>"$tmp/lat.err"
rc=$?
[ "$rc" -ne 0 ] && tail -5 "$tmp/lat.err"
awk -F, 'NR == 2 && $1 == "tui-latency" && $2 == 40 { ok = 1 } END { exit !ok }' "$tmp/lat.csv" || rc=1
check bench-latency "$rc"
rm -rf "$tmp"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
