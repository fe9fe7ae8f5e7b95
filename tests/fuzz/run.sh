#!/usr/bin/env bash
# run.sh — runs the libFuzzer harnesses built in build/fuzz/bin (make
# fuzz-build), one process at a time:
#   run.sh fuzz SECONDS [HARNESS...]  fuzz each for SECONDS with its seed
#       corpus and dictionary; new inputs go to build/fuzz/work/HARNESS,
#       crashes, leaks, OOMs and timeouts to build/fuzz/findings/HARNESS/;
#       ends with a table of executions, coverage and findings.
#   run.sh replay [HARNESS...]  run the seed corpus and every file in
#       tests/fuzz/regressions/ (except those listed in PENDING) once
#       through each harness; prints "ok: " / "FAIL: " lines, exits 1 on
#       a failure.
# The seeds are made by make_corpus.py into build/fuzz/corpus when missing.
set -u
cd "$(dirname "$0")/../.."
FUZZ=build/fuzz
REG=tests/fuzz/regressions
PY=${PYTHON:-/usr/bin/python3}
LIMITS=(-rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10)

harnesses() {
    if [ $# -gt 0 ]; then echo "$@"; return; fi
    for b in "$FUZZ"/bin/fuzz_*; do [ -x "$b" ] && basename "$b" | sed 's/^fuzz_//'; done
}

dict_for() { # the dictionary option of a harness, if it has one
    case $1 in
        npy) echo "-dict=tests/fuzz/npy.dict" ;;
        safetensors|checkpoint|config|tokenizer) echo "-dict=tests/fuzz/json.dict" ;;
        torch) echo "-dict=tests/fuzz/pickle.dict" ;;
        run_config) echo "-dict=tests/fuzz/conf.dict" ;;
        keys) echo "-dict=tests/fuzz/keys.dict" ;;
    esac
}

corpus() {
    if [ ! -f "$FUZZ/corpus/.stamp" ] || [ tests/fuzz/make_corpus.py -nt "$FUZZ/corpus/.stamp" ]; then
        rm -rf "$FUZZ/corpus"
        "$PY" tests/fuzz/make_corpus.py "$FUZZ/corpus" || { echo "FAIL: make_corpus.py"; exit 1; }
        touch "$FUZZ/corpus/.stamp"
    fi
}

pending() { # names listed in regressions/PENDING (comments and blanks skipped)
    [ -f "$REG/PENDING" ] && sed -e 's/#.*//' -e 's/[[:space:]]*$//' "$REG/PENDING" | grep -v '^$'
}

replay() {
    local fails=0 h files=() f
    for f in "$REG"/*; do
        local name; name=$(basename "$f")
        [ "$name" = PENDING ] && continue
        if pending | grep -qxF "$name"; then echo "skip: $name (pending a reader fix, see $REG/PENDING)"
        else files+=("$f"); fi
    done
    for h in $(harnesses "$@"); do
        local log="$FUZZ/logs/replay_$h.log" inputs=("$FUZZ/corpus/$h"/* "${files[@]}")
        if "$FUZZ/bin/fuzz_$h" "${LIMITS[@]}" "${inputs[@]}" >"$log" 2>&1; then
            echo "ok: replay $h (${#inputs[@]} inputs)"
        else
            echo "FAIL: replay $h: $(grep -E '^Running: ' "$log" | tail -1 | cut -c10-):" \
                "$(grep -m1 -E '^(SUMMARY|==[0-9]+== ?ERROR|fuzz_[a-z_]+:)' "$log") (log: $log)"
            fails=$((fails + 1))
        fi
    done
    [ "$fails" -eq 0 ]
}

fuzz() {
    local secs=$1; shift
    local h found=0
    printf '%-12s %10s %6s %7s  %s\n' harness execs cov ft findings >"$FUZZ/logs/table.txt"
    for h in $(harnesses "$@"); do
        local work="$FUZZ/work/$h" art="$FUZZ/findings/$h/" log="$FUZZ/logs/fuzz_$h.log"
        local end=$((SECONDS + secs)) execs=0 runs=0 n
        mkdir -p "$work" "$art"
        : >"$log"
        echo "fuzzing $h for ${secs}s (log: $log)"
        # a finding stops libFuzzer: start it again (the corpus kept) until the time is up
        while [ $((end - SECONDS)) -gt 0 ] && [ "$runs" -lt 20 ]; do
            runs=$((runs + 1))
            # shellcheck disable=SC2046
            "$FUZZ/bin/fuzz_$h" "${LIMITS[@]}" -max_total_time=$((end - SECONDS)) \
                -print_final_stats=1 -artifact_prefix="$art" $(dict_for "$h") \
                "$work" "$FUZZ/corpus/$h" >"$log.run" 2>&1
            n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log.run" | tail -1)
            execs=$((execs + ${n:-0}))
            cat "$log.run" >>"$log"
            # no input ran and nothing found: libFuzzer refused to start (a bad dictionary...)
            if [ -z "$n" ] && [ -z "$(ls "$art")" ]; then
                echo "FAIL: $h did not start: $(head -1 "$log.run")"; found=$((found + 1)); break
            fi
        done
        rm -f "$log.run"
        local cov ft arts
        cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
        ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
        arts=$(ls "$art" 2>/dev/null | tr '\n' ' ')
        [ -n "$arts" ] && found=$((found + 1))
        printf '%-12s %10s %6s %7s  %s\n' "$h" "$execs" "${cov:-?}" "${ft:-?}" "${arts:-none}" \
            >>"$FUZZ/logs/table.txt"
    done
    cat "$FUZZ/logs/table.txt"
    [ "$found" -eq 0 ]
}

mkdir -p "$FUZZ/logs"
[ -n "$(harnesses)" ] || { echo "FAIL: no harnesses in $FUZZ/bin (make fuzz-build)"; exit 1; }
corpus
case ${1:-} in
    replay) shift; replay "$@" ;;
    fuzz) shift; [ $# -ge 1 ] || { echo "usage: run.sh fuzz SECONDS [HARNESS...]" >&2; exit 64; }
          fuzz "$@" ;;
    *) echo "usage: run.sh fuzz SECONDS [HARNESS...] | run.sh replay [HARNESS...]" >&2; exit 64 ;;
esac
