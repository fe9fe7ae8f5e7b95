#!/usr/bin/env bash
# run.sh — runs every test suite of ssmlab: Criterion unit tests (release and
# AddressSanitizer+UBSan builds), the PyTorch reference checks, end-to-end
# CLI tests and the man-page lint.  Ends with one line "N passed, M failed".
set -u
cd "$(dirname "$0")/.."
export SSMLAB=${SSMLAB:-./ssmlab}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
PY=${PYTHON:-/usr/bin/python3}
passed=0 failed=0 failures=()
log=build/test-logs
mkdir -p "$log"

record() { # record NAME PASSED FAILED
    passed=$((passed + $2)); failed=$((failed + $3))
    [ "$3" -gt 0 ] && failures+=("$1")
    printf '%-44s %4d passed %4d failed\n' "$1" "$2" "$3"
}

criterion_suite() { # criterion_suite LABEL BINARY
    local out="$log/$(echo "$1" | tr '/ ' '__').log" p f c
    "$2" --jobs 1 >"$out" 2>&1
    local rc=$?
    p=$(sed -n 's/.*Passing: \([0-9]*\).*/\1/p' "$out" | tail -1)
    f=$(sed -n 's/.*Failing: \([0-9]*\).*/\1/p' "$out" | tail -1)
    c=$(sed -n 's/.*Crashing: \([0-9]*\).*/\1/p' "$out" | tail -1)
    p=${p:-0}; f=$((${f:-0} + ${c:-0}))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    [ "$f" -gt 0 ] && grep -E "FAIL|CRASH|ERROR|Assertion|runtime error|Sanitizer" "$out" | head -20
    record "$1" "$p" "$f"
}

# unit suites by layer: build/{rel,asan}/tests/unit/LAYER/test_NAME
for t in build/rel/tests/unit/*/test_*; do
    [ -x "$t" ] && criterion_suite "unit/${t#build/rel/tests/unit/}" "$t"
done
for t in build/asan/tests/unit/*/test_*; do
    [ -x "$t" ] && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        criterion_suite "asan/${t#build/asan/tests/unit/}" "$t"
done

ref_suite() { # ref_suite NAME CMD... : a script that ends with "N passed, M failed"
    local name=$1; shift
    local out="$log/ref_$name.log"
    "$@" >"$out" 2>&1
    local rc=$? line p f
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -1)
    p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed.*/\1/p'); p=${p:-0}
    f=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p'); f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    [ "$f" -gt 0 ] && grep -E "FAIL|Error|error" "$out" | head -20
    record "ref/$name" "$p" "$f"
}
ref_suite "reference-self-test" "$PY" tests/ref/mamba_ref.py --self-test
ref_suite "reference-mamba2-self-test" "$PY" tests/ref/mamba2_ref.py --self-test
for t in tests/ref/check_*.py; do
    [ -f "$t" ] && ref_suite "$(basename "$t")" "$PY" "$t" "$SSMLAB"
done

for t in tests/e2e/*.sh; do
    [ -f "$t" ] && [ "$(basename "$t")" != lib.sh ] || continue
    out="$log/e2e_$(basename "$t").log"
    bash "$t" >"$out" 2>&1
    rc=$?
    p=$(grep -c '^ok: ' "$out"); f=$(grep -c '^FAIL: ' "$out")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    [ "$f" -gt 0 ] && { grep '^FAIL: ' "$out" | head -10; tail -5 "$out"; }
    record "e2e/$(basename "$t")" "$p" "$f"
done

if mandoc -Tlint -W warning man/*.[0-9] >"$log/mandoc.log" 2>&1; then record "man/mandoc-lint" 1 0
else cat "$log/mandoc.log"; record "man/mandoc-lint" 0 1; fi
# man(1) renders with groff, which warns where mandoc -Tlint is silent: one count per page
: >"$log/groff.log"; gp=0 gf=0
for f in man/*.[0-9]; do
    if out=$(groff -man -ww -z "$f" 2>&1) && [ -z "$out" ]; then gp=$((gp + 1))
    else gf=$((gf + 1)); printf '%s:\n%s\n' "$f" "$out" | tee -a "$log/groff.log"; fi
done
record "man/groff-warnings" "$gp" "$gf"

[ "$failed" -gt 0 ] && printf 'failing suites: %s\n' "${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
