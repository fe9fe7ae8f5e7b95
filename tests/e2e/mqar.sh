#!/usr/bin/env bash
# mqar.sh — task = mqar end to end: a tiny run logs the accuracy columns
# with accuracies in [0, 1], the checkpoint records the mqar keys, eval
# reports loss and accuracy over the validation stream's query positions
# (the training run's last numbers), resuming is bit-exact, a short run on an
# easy setting beats both chance and guessing a value of the context, a
# sweep of an MQAR preset reports its accuracy, the twelve scenarios/mqar-*
# presets train and share all but depth and polarization, and nonsense keys
# and options are refused with one line and their sysexits code.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
mq=(task=mqar vocab_size=16 mqar_vocab=16 mqar_len=8 mqar_pairs=2 d_model=16 n_layer=1 d_state=4 threads=2)

# a tiny run: the classifier's columns, accuracies in [0, 1], queries only
"$SSMLAB" train "${mq[@]}" batch_size=4 steps=6 warmup=1 eval_every=3 eval_batches=0 log_every=1 \
    mqar_val_examples=10 out="$TMP/tiny" >"$TMP/tiny.csv" 2>"$TMP/tiny.err" || fail "train: $(tail -2 "$TMP/tiny.err")"
head -1 "$TMP/tiny.csv" | grep -qx 'step,split,loss,acc,lr,grad_norm,tokens_per_s,elapsed_s' \
    && ok "MQAR CSV columns" || fail "CSV header: $(head -1 "$TMP/tiny.csv")"
$PY - "$TMP/tiny.csv" <<'PY' && ok "6 train and 2 val rows, accuracies in [0, 1]" || fail "rows: $(cat "$TMP/tiny.csv")"
import csv, math, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert [r['split'] for r in rows].count('train') == 6 and [r['split'] for r in rows].count('val') == 2, rows
for r in rows:
    acc, loss = float(r['acc']), float(r['loss'])
    assert 0.0 <= acc <= 1.0 and math.isfinite(loss) and loss > 0, r
    assert (float(r['acc']) * 8) % 1 == 0 if r['split'] == 'train' else True, r   # 4 rows x 2 queries
PY
grep -q '# data = mqar: V 16, T 8, K 2 pairs, a = 0.01, random filler; fresh training examples (stream seed 2), 10 validation examples (stream seed 3); chance 0.1250' "$TMP/tiny.err" \
    && ok "data described" || fail "no data line: $(grep '# data' "$TMP/tiny.err")"
$PY - "$TMP/tiny/model.safetensors" >"$TMP/runcfg" <<'PY' || fail "no run config in the checkpoint"
import json, struct, sys
b = open(sys.argv[1], 'rb').read(); n = struct.unpack('<Q', b[:8])[0]
print(json.loads(b[8:8 + n])['__metadata__']['ssmlab.run_config'])
PY
for kv in 'task = mqar' 'mqar_vocab = 16' 'mqar_len = 8' 'mqar_pairs = 2' 'mqar_filler = random' 'mqar_val_examples = 10'; do
    grep -qx "$kv" "$TMP/runcfg" && ok "run config has '$kv'" || fail "run config lacks '$kv'"
done

# eval: the validation stream's 10 examples x 2 queries, the last val row's numbers
"$SSMLAB" eval --model "$TMP/tiny" --batch-size 4 --threads 2 >"$TMP/eval.csv" 2>"$TMP/eval.err" || fail "eval: $(cat "$TMP/eval.err")"
head -1 "$TMP/eval.csv" | grep -qx 'model,split,n,seq_len,loss,acc' && ok "eval columns" || fail "eval header: $(head -1 "$TMP/eval.csv")"
IFS=, read -r _ split n L eloss eacc < <(tail -1 "$TMP/eval.csv")
[ "$split,$n,$L" = "val,20,8" ] && ok "eval scores the 20 validation queries" || fail "eval row: $(tail -1 "$TMP/eval.csv")"
IFS=, read -r _ _ tloss tacc _ < <(grep '^6,val,' "$TMP/tiny.csv")
$PY -c "import sys; sys.exit(0 if abs($eloss - $tloss) <= 1e-6 * max(1, abs($tloss)) and abs($eacc - $tacc) < 1e-9 else 1)" \
    && ok "eval matches the last validation row" || fail "eval $eloss/$eacc vs train $tloss/$tacc"
"$SSMLAB" eval --model "$TMP/tiny" --batch-size 3 --batches 2 --threads 2 2>/dev/null | tail -1 | grep -q ',val,12,8,' \
    && ok "eval --batches limits the stream" || fail "eval --batches"
"$SSMLAB" eval --model "$TMP/tiny" --tokens 1,9,2,10,1,0,2,0 --threads 2 2>/dev/null | tail -1 | grep -q ',tokens,1,8,' \
    && ok "eval --tokens still scores a given sequence" || fail "eval --tokens on an MQAR model"

# resume: N steps + resume to 2N == 2N straight, bit for bit
common=("${mq[@]}" batch_size=3 grad_accum=2 steps=8 warmup=2 eval_every=4 eval_batches=2 log_every=1 seed=5 mqar_train_examples=20)
"$SSMLAB" train "${common[@]}" out="$TMP/straight" >"$TMP/a.csv" 2>"$TMP/a.err" || fail "straight: $(tail -1 "$TMP/a.err")"
"$SSMLAB" train "${common[@]}" out="$TMP/half" stop_at=4 >"$TMP/b1.csv" 2>"$TMP/b1.err" || fail "half: $(tail -1 "$TMP/b1.err")"
"$SSMLAB" train "${common[@]}" out="$TMP/resumed" resume="$TMP/half" >"$TMP/b2.csv" 2>"$TMP/b2.err" || fail "resume: $(tail -1 "$TMP/b2.err")"
cut -d, -f1-6 "$TMP/a.csv" | grep -v '^4,val' >"$TMP/a.rows"
{ cut -d, -f1-6 "$TMP/b1.csv"; tail -n +2 "$TMP/b2.csv" | cut -d, -f1-6; } | grep -v '^4,val' >"$TMP/b.rows"
[ -s "$TMP/a.rows" ] && diff "$TMP/a.rows" "$TMP/b.rows" >/dev/null && ok "resumed losses and accuracies identical ($(wc -l <"$TMP/a.rows") rows)" \
    || fail "resumed rows differ: $(diff "$TMP/a.rows" "$TMP/b.rows" | head -4)"

# learning: V 16, T 8, K 2 in 800 steps; chance is 1/8 (any value) and 1/2
# (a value of the context), so 0.75 needs the key-value association
"$SSMLAB" train "${mq[@]}" d_model=32 d_state=8 batch_size=32 steps=800 warmup=20 lr=1e-2 eval_every=0 \
    eval_batches=0 mqar_val_examples=256 out="$TMP/learn" >"$TMP/learn.csv" 2>"$TMP/learn.err" \
    || fail "learn: $(tail -2 "$TMP/learn.err")"
acc=$(grep '^800,val,' "$TMP/learn.csv" | cut -d, -f4)
$PY -c "import sys; sys.exit(0 if float('$acc') >= 0.75 else 1)" 2>/dev/null \
    && ok "validation accuracy $acc after 800 steps (chance 0.125, in-context guess 0.5)" \
    || fail "validation accuracy '$acc' < 0.75"

# a sweep of an MQAR preset reports its accuracy
{ echo "# a tiny MQAR preset"; printf '%s\n' "${mq[@]}" steps=3 batch_size=4 eval_every=0 eval_batches=0 \
    mqar_val_examples=8 | sed 's/=/ = /'; } >"$TMP/mqar-tiny.conf"
"$SSMLAB" sweep "$TMP/mqar-tiny.conf" --out "$TMP/sw" >"$TMP/sw.csv" 2>"$TMP/sw.err" || fail "sweep: $(tail -2 "$TMP/sw.err")"
$PY - "$TMP/sw/results.csv" "$TMP/sw/mqar-tiny/train.csv" <<'PY' && ok "sweep row: task mqar with val_acc" || fail "sweep: $(cat "$TMP/sw/results.csv")"
import csv, sys
row = next(csv.DictReader(open(sys.argv[1])))
last = [r for r in csv.DictReader(open(sys.argv[2])) if r['split'] == 'val'][-1]
assert row['task'] == 'mqar' and row['val_ppl'] == '', row
assert abs(float(row['val_acc']) - float(last['acc'])) < 1e-4, (row, last)
PY

# the twelve presets: each trains, and they differ only in depth, polarize
# and out, and the four 4-layer ones in their learning rate (lr 1e-3,
# min_lr 3e-4: at 3e-3 four layers stayed at chance)
presets=("$(dirname "$0")"/../../scenarios/mqar-d*.conf)
n=0
for f in "${presets[@]}"; do
    "$SSMLAB" train "$f" steps=1 eval_batches=1 mqar_val_examples=4 threads=1 out="$TMP/preset" >/dev/null 2>"$TMP/p.err" \
        && n=$((n + 1)) || fail "$f: $(tail -1 "$TMP/p.err")"
done
[ "$n" -eq 12 ] && ok "12 MQAR presets train" || fail "$n of ${#presets[@]} MQAR presets train"
[ "$(grep -hv '^#' "${presets[@]}" | grep -Ev '^(n_layer|polarize|out|lr|min_lr) = ' | sort | uniq -c | awk '$1 != 12' | wc -l)" -eq 0 ] \
    && ok "MQAR presets share every other key" || fail "MQAR presets differ beyond n_layer, polarize, out and the learning rate"
d4=("$(dirname "$0")"/../../scenarios/mqar-d4-*.conf)
[ "$(grep -hE '^(lr|min_lr) = ' "${presets[@]}" | sort | uniq -c | awk '{$1 = $1; print}' | sort)" = \
  "$(printf '8 lr = 3e-3\n4 lr = 1e-3\n4 min_lr = 3e-4\n8 min_lr = 1e-3\n' | sort)" ] \
    && [ "$(grep -lE '^lr = 1e-3$' "${presets[@]}" | sort)" = "$(printf '%s\n' "${d4[@]}" | sort)" ] \
    && ok "the 4-layer presets, and only they, train at lr 1e-3" || fail "MQAR learning rates: $(grep -hE '^(lr|min_lr) = ' "${presets[@]}" | sort | uniq -c | tr '\n' ';')"

# nonsense: one line naming the key, and the config code (78) or usage (64)
expect_error 78 "unknown key 'mqar_pair'" "$SSMLAB" train "${mq[@]}" mqar_pair=2
expect_error 78 "mqar_len = 15 must be even" "$SSMLAB" train "${mq[@]}" mqar_len=15
expect_error 78 "mqar_pairs = 3 must be between 1 and mqar_len / 4 = 2" "$SSMLAB" train "${mq[@]}" mqar_pairs=3
expect_error 78 "mqar_pairs = 8 is more than the 7 distinct keys of mqar_vocab = 16" \
    "$SSMLAB" train "${mq[@]}" mqar_len=64 mqar_pairs=8
expect_error 78 "mqar_vocab = 64 must be between 4 and vocab_size = 16" "$SSMLAB" train "${mq[@]}" mqar_vocab=64
expect_error 78 "mqar_vocab = 16 must be greater than mqar_len = 16" "$SSMLAB" train "${mq[@]}" mqar_len=16
expect_error 78 "mqar_vocab = 12 must be greater than mqar_len = 16" "$SSMLAB" train "${mq[@]}" mqar_len=16 mqar_vocab=12
expect_error 78 "reorder = soft is for classifiers: task = mqar is causal" "$SSMLAB" train "${mq[@]}" reorder=soft
expect_error 78 "mqar_alpha = -1 must be finite and positive" "$SSMLAB" train "${mq[@]}" mqar_alpha=-1
expect_error 78 "'striped' is not a valid mqar_filler" "$SSMLAB" train "${mq[@]}" mqar_filler=striped
expect_error 78 "data = '/tmp/x.txt' is not used by task = mqar" "$SSMLAB" train "${mq[@]}" data=/tmp/x.txt
expect_error 78 "dataset = mnist holds labelled images: set task = classify" "$SSMLAB" train "${mq[@]}" dataset=mnist
expect_error 78 "'recall' is not a valid task" "$SSMLAB" train task=recall
expect_error 64 "an MQAR model's examples are generated: give no --data" "$SSMLAB" eval --model "$TMP/tiny" --data /tmp/x.txt
finish
