#!/usr/bin/env bash
# history.sh — `ssmlab train` leaves OUT/train.csv, the run's history: the
# documented columns; a row per logged step and per validation, with the
# same numbers as stdout (which keeps its columns); the dynamics on the
# validation rows only, consistent with each other and with the R^2 rule;
# rows on disk while training runs; on resume, the rows after the resumed
# step dropped so that every step appears once, with the numbers of a
# straight run; a resume into another directory copies the history.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
tiny_corpus "$TMP/c.txt"
common=(d_model=16 n_layer=2 d_state=4 seq_len=16 batch_size=3 steps=8 warmup=2 eval_every=4
        eval_batches=2 log_every=2 threads=1 seed=3 data="$TMP/c.txt")
HDR='step,split,loss,acc,lr,grad_norm,tokens_per_s,elapsed_s,bpb,eig_pos,eig_neg,eig_complex,eig_pos_layers,eig_neg_layers,eig_complex_layers,mean_slope,verdict,mix_slope,mix_verdict,decay_rate,half_life,fit_r2,decay,cos_last,dev_last,dev_ratio,dynamics_s'

"$SSMLAB" train "${common[@]}" out="$TMP/straight" >"$TMP/stdout.csv" 2>"$TMP/err" || fail "straight run: $(tail -2 "$TMP/err")"
[ "$(head -1 "$TMP/straight/train.csv")" = "$HDR" ] && ok "train.csv columns" || fail "header: $(head -1 "$TMP/straight/train.csv")"
[ "$(head -1 "$TMP/stdout.csv")" = "step,split,loss,bpb,lr,grad_norm,tokens_per_s,elapsed_s" ] \
    && ok "stdout keeps its columns" || fail "stdout header: $(head -1 "$TMP/stdout.csv")"

# check PYTHON-CODE FILE...: run the code with h = the rows of train.csv
# files (lists of dicts) and s = the stdout rows of the straight run
check() {
    local code=$1; shift
    "$PY" - "$TMP/stdout.csv" "$@" <<PY
import csv, math, sys
s = list(csv.DictReader(open(sys.argv[1])))
h = [list(csv.DictReader(open(p))) for p in sys.argv[2:]]
$code
PY
}

DYN='eig_pos eig_neg eig_complex eig_pos_layers eig_neg_layers eig_complex_layers mean_slope verdict mix_slope mix_verdict decay_rate half_life fit_r2 decay cos_last dev_last dev_ratio dynamics_s'
check "
rows = h[0]
assert [(r['step'], r['split']) for r in rows] == [('2', 'train'), ('4', 'train'), ('4', 'val'), ('6', 'train'),
                                                  ('8', 'train'), ('8', 'val')], rows
for a, b in zip(rows, s):   # the numbers stdout shows, bpb in its own column
    assert (a['step'], a['split'], a['loss'], a['bpb'], a['lr'], a['grad_norm'], a['elapsed_s']) == \
           (b['step'], b['split'], b['loss'], b['bpb'], b['lr'], b['grad_norm'], b['elapsed_s']), (a, b)
    assert a['acc'] == '' and abs(float(a['bpb']) - float(a['loss']) / math.log(2)) < 1e-6, a
dyn = '$DYN'.split()
for r in rows:
    if r['split'] == 'train':
        assert all(r[c] == '' for c in dyn) and float(r['tokens_per_s']) > 0, r
        continue
    assert r['lr'] == r['grad_norm'] == r['tokens_per_s'] == '', r
    for k in ('pos', 'neg', 'complex'):
        layers = [int(x) for x in r['eig_%s_layers' % k].split(';')]
        assert len(layers) == 2 and sum(layers) == int(r['eig_' + k]), r
    assert int(r['eig_pos']) + int(r['eig_neg']) + int(r['eig_complex']) <= 2 * 4, r
    assert r['verdict'] in ('converging', 'diverging', 'mixed') and r['mix_verdict'] in ('converging', 'diverging', 'mixed')
    assert math.isfinite(float(r['mean_slope'])) and math.isfinite(float(r['mix_slope']))
    r2 = float(r['fit_r2'])
    assert r['decay'] == ('exponential' if r2 >= 0.5 else 'none'), r
    assert (r['half_life'] == '') == (r['decay'] == 'none'), r
    if r['half_life'] and float(r['decay_rate']) > 0:
        assert abs(float(r['half_life']) * float(r['decay_rate']) - math.log(2)) < 1e-4, r
    assert -1 <= float(r['cos_last']) <= 1 and 0 < float(r['dev_last']) <= 1 and float(r['dev_ratio']) > 0, r
    assert 0 <= float(r['dynamics_s']) < 10, r
" "$TMP/straight/train.csv" && ok "rows: stdout's numbers, dynamics on validation rows, the R^2 rule" \
    || fail "train.csv rows: $(cat "$TMP/straight/train.csv")"
grep -qE '^# step 4: eigenvalues [0-9]+\+ [0-9]+- [0-9]+ complex; stream [a-z]+, mixer [a-z]+; .*measured in' "$TMP/err" \
    && ok "the dynamics of each validation on stderr" || fail "no dynamics line: $(grep '^# step' "$TMP/err")"

# resume: a checkpoint at step 4, a history that ran on to step 6 past it
# (a crash after the checkpoint): the resumed run drops rows 5..6 and writes
# each step once, with the straight run's numbers
"$SSMLAB" train "${common[@]}" stop_at=4 out="$TMP/run" >/dev/null 2>"$TMP/err" || fail "first part: $(tail -2 "$TMP/err")"
cp -r "$TMP/run" "$TMP/at4"
"$SSMLAB" train "${common[@]}" stop_at=6 out="$TMP/run" resume="$TMP/run" >/dev/null 2>"$TMP/err" || fail "second part: $(tail -2 "$TMP/err")"
grep -q '^6,train,' "$TMP/run/train.csv" || fail "the second part wrote no step 6"
cp "$TMP/at4"/*.safetensors "$TMP/at4/config.json" "$TMP/run/"
"$SSMLAB" train "${common[@]}" out="$TMP/run" resume="$TMP/run" >/dev/null 2>"$TMP/err" || fail "resume at 4: $(tail -2 "$TMP/err")"
"$SSMLAB" train "${common[@]}" out="$TMP/other" resume="$TMP/at4" >/dev/null 2>"$TMP/err" || fail "resume elsewhere: $(tail -2 "$TMP/err")"
same="
a, b = h[0], h[1]
keys = [k for k in a[0] if k not in ('tokens_per_s', 'elapsed_s', 'dynamics_s')]
steps = [(r['step'], r['split']) for r in b]
assert len(steps) == len(set(steps)), 'duplicate steps: %s' % steps
assert [[r[k] for k in keys] for r in a] == [[r[k] for k in keys] for r in b], (a, b)
"
check "$same" "$TMP/straight/train.csv" "$TMP/run/train.csv" && ok "resume in place: rows after step 4 dropped, each step once, numbers of a straight run" \
    || fail "resumed history: $(cat "$TMP/run/train.csv")"
check "$same" "$TMP/straight/train.csv" "$TMP/other/train.csv" && ok "resume into another directory copies the history up to step 4" \
    || fail "history of a resume elsewhere: $(cat "$TMP/other/train.csv")"
[ "$(head -1 "$TMP/at4/train.csv" | cut -d, -f1)" = step ] && [ "$(tail -1 "$TMP/at4/train.csv" | cut -d, -f1-2)" = 4,val ] \
    && ok "the source history is left as it was" || fail "at4/train.csv: $(cat "$TMP/at4/train.csv")"

# the rows are on disk while training runs: a long MQAR run (acc, no bpb)
"$SSMLAB" train task=mqar vocab_size=32 mqar_vocab=32 mqar_len=16 mqar_pairs=2 mqar_val_examples=8 d_model=16 \
    n_layer=1 d_state=4 batch_size=4 steps=100000 eval_every=5 eval_batches=1 log_every=1 threads=1 \
    out="$TMP/long" >/dev/null 2>"$TMP/long.err" &
pid=$!
for _ in $(seq 1 100); do grep -q '^5,val,' "$TMP/long/train.csv" 2>/dev/null && break; sleep 0.1; done
grep -q '^5,val,' "$TMP/long/train.csv" 2>/dev/null && ok "rows on disk while training runs" || fail "no rows while training"
kill -INT $pid
wait $pid
check "
r = [r for r in h[0] if r['split'] == 'val'][0]
assert 0 <= float(r['acc']) <= 1 and r['bpb'] == '' and r['mix_verdict'] == 'none' and r['mix_slope'] == '', r
assert all(r['step'] for r in h[0])
" "$TMP/long/train.csv" && ok "MQAR: acc, no bpb; one layer: no mixer verdict" || fail "MQAR rows: $(head -3 "$TMP/long/train.csv")"
finish
