#!/usr/bin/env bash
# progress.sh — the progress line of `ssmlab train` and `ssmlab eval`
# (step or batch of the total, loss, tokens/s, elapsed, ETA) is drawn on
# standard error only when it is a terminal: never into a file, and on a
# pseudo-terminal (script(1)) it is there, while stdout keeps clean rows.
. "$(dirname "$0")/lib.sh"
tiny_corpus "$TMP/c.txt"
args=(d_model=16 n_layer=1 d_state=4 seq_len=16 batch_size=4 steps=40 warmup=1 eval_every=20 log_every=10
      eval_batches=0 threads=1 data="$TMP/c.txt")

"$SSMLAB" train "${args[@]}" out="$TMP/run" >"$TMP/train.csv" 2>"$TMP/train.err" || fail "train: $(tail -2 "$TMP/train.err")"
"$SSMLAB" eval --model "$TMP/run" --data "$TMP/c.txt" --seq-len 16 --batch-size 2 --threads 1 \
    >"$TMP/eval.csv" 2>"$TMP/eval.err" || fail "eval: $(tail -2 "$TMP/eval.err")"
for f in train.err eval.err train.csv eval.csv; do
    if grep -q $'\r' "$TMP/$f" || grep -qE 'ETA|elapsed [0-9]' "$TMP/$f"; then fail "progress in $f: $(cat -A "$TMP/$f" | head -3)"
    else ok "no progress line in $f (stderr is a file)"; fi
done

if ! command -v script >/dev/null; then
    echo "# script(1) is not installed: the terminal half is skipped"
    finish
fi
# on a pseudo-terminal: stderr is the terminal, stdout still a file
script -qec "'$SSMLAB' train ${args[*]} out='$TMP/tty' >'$TMP/tty.csv'" /dev/null >"$TMP/train.tty" 2>&1 \
    || fail "train under script: $(tail -3 "$TMP/train.tty")"
tr '\r' '\n' <"$TMP/train.tty" | grep -qE '^step 40/40  loss [0-9.]+  [0-9]+ tok/s  elapsed 0:[0-9]{2}  ETA 0:00' \
    && tr '\r' '\n' <"$TMP/train.tty" | grep -qE '^batch [0-9]+/[0-9]+  loss [0-9.]+  [0-9]+ tok/s  elapsed' \
    && ok "train on a terminal: step/total, loss, tokens/s, elapsed, ETA; and the validation's batches" \
    || fail "train progress: $(cat -A "$TMP/train.tty" | head -5)"
cmp -s <(cut -d, -f1-6 "$TMP/train.csv") <(cut -d, -f1-6 "$TMP/tty.csv") && ok "stdout rows unchanged on a terminal" \
    || fail "stdout differs under a terminal: $(cat -A "$TMP/tty.csv" | head -3)"
script -qec "'$SSMLAB' eval --model '$TMP/run' --data '$TMP/c.txt' --seq-len 16 --batch-size 2 --threads 1 >'$TMP/tty.eval'" \
    /dev/null >"$TMP/eval.tty" 2>&1 || fail "eval under script: $(tail -3 "$TMP/eval.tty")"
tr '\r' '\n' <"$TMP/eval.tty" | grep -qE '^batch ([0-9]+)/\1  loss [0-9.]+  [0-9]+ tok/s  elapsed 0:[0-9]{2}  ETA 0:00' \
    && cmp -s "$TMP/eval.csv" "$TMP/tty.eval" && ok "eval on a terminal: batch/total with ETA; the same row on stdout" \
    || fail "eval progress: $(cat -A "$TMP/eval.tty" | head -5)"
finish
