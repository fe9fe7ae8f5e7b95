#!/usr/bin/env bash
# cli_basics.sh — version, help, usage errors, config parsing and the
# resolved-config echo, the metric formats, and that the man page documents
# every configuration key.
. "$(dirname "$0")/lib.sh"

"$SSMLAB" --version | grep -qE '^ssmlab [0-9]' && ok "--version" || fail "--version"
"$SSMLAB" -h | grep -q 'ssmlab train' && ok "-h" || fail "-h"
expect_error 64 "unknown command 'frobnicate'" "$SSMLAB" frobnicate
expect_error 64 "usage" "$SSMLAB"
expect_error 64 "model DIR is required" "$SSMLAB" eval

tiny_corpus "$TMP/c.txt"
printf 'd_model = 16\nbogus_key = 3\n' >"$TMP/bad.conf"
expect_error 78 "bad.conf:2: unknown key 'bogus_key'" "$SSMLAB" train "$TMP/bad.conf"
expect_error 78 "'abc' for key 'n_layer' is not a valid integer" "$SSMLAB" train n_layer=abc
expect_error 78 "unknown key 'nope'" "$SSMLAB" train nope=1
expect_error 66 "missing.conf: cannot open config" "$SSMLAB" train "$TMP/missing.conf"
expect_error 66 "nowhere.txt" "$SSMLAB" train data="$TMP/nowhere.txt" threads=1
expect_error 78 "d_state = 0" "$SSMLAB" train d_state=0
expect_error 78 "format = 'xml'" "$SSMLAB" train format=xml

# the resolved config is echoed, overrides win over the file
printf 'd_model = 16\nn_layer = 1\nseq_len = 16\nbatch_size = 2\nsteps = 1\nwarmup = 0\n' >"$TMP/ok.conf"
"$SSMLAB" train "$TMP/ok.conf" n_layer=2 d_state=4 eval_batches=1 threads=1 data="$TMP/c.txt" \
    out="$TMP/run" format=jsonl >"$TMP/rows" 2>"$TMP/err" || fail "train ok.conf: $(cat "$TMP/err")"
grep -q '^#   n_layer = 2$' "$TMP/err" && ok "override echoed" || fail "resolved config not echoed"
grep -q '^# seed = 1, omp_threads = 1, blas_threads = 1' "$TMP/err" && ok "seed and threads logged" || fail "header"
grep -q '^# openblas = ' "$TMP/err" && ok "openblas config logged" || fail "openblas not logged"
/usr/bin/python3 -c "import json,sys; [json.loads(l) for l in open(sys.argv[1])]" "$TMP/rows" \
    && ok "jsonl parses" || fail "jsonl does not parse"

"$SSMLAB" eval --model "$TMP/run" --data "$TMP/c.txt" --seq-len 16 --batch-size 2 >"$TMP/eval.csv" 2>"$TMP/err" \
    || fail "eval: $(cat "$TMP/err")"
head -1 "$TMP/eval.csv" | grep -q '^model,split,batch,seq_len,loss,ppl,bpb$' && ok "eval header" || fail "eval header: $(cat "$TMP/eval.csv")"

# every configuration key is documented in ssmlab(1)
"$SSMLAB" train --list-keys | cut -f1 | while read -r k; do
    grep -qE "^\.It (Cm [a-z0-9_]+ , )*Cm $k( ,|$)" man/ssmlab.1 || echo "$k" >>"$TMP/undocumented"
done
[ -s "$TMP/undocumented" ] && fail "keys missing from man/ssmlab.1: $(tr '\n' ' ' <"$TMP/undocumented")" || ok "man page documents every key"
finish
