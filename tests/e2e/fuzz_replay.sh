#!/usr/bin/env bash
# fuzz_replay.sh — runs every libFuzzer harness of tests/fuzz/ once over its
# seed corpus and every input in tests/fuzz/regressions/ (those listed in
# regressions/PENDING are skipped, each with a line): a crash, leak, OOM or
# timeout fails.  The harnesses are built by `make test` (fuzz-build); built
# here when missing.
cd "$(dirname "$0")/../.."
fails=0
if ! ls build/fuzz/bin/fuzz_* >/dev/null 2>&1; then
    make -s -j2 fuzz-build >/dev/null || { echo "FAIL: make fuzz-build"; exit 1; }
fi
./tests/fuzz/run.sh replay || fails=1
exit "$fails"
