#!/usr/bin/env bash
# sweep.sh — `ssmlab sweep` on two tiny presets (a byte-level LM and an image
# classifier on the IDX fixture) with overrides: results.csv, results.md and
# stdout have the documented columns and one row per preset with the right
# cells; each preset's CSV, log and checkpoint are kept; the verdict is the
# one the token norms give; bad presets fail early, naming the file.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
$PY "$(dirname "$0")/../data/make_idx_fixture.py" "$TMP/img" || { fail "fixture"; finish; }
tiny_corpus "$TMP/c.txt"
cat >"$TMP/lm-tiny.conf" <<EOF
# a tiny byte-level LM
d_model = 16
n_layer = 2
d_state = 4
seq_len = 16
batch_size = 2
steps = 50
warmup = 1
eval_every = 0
eval_batches = 2
data = $TMP/c.txt
EOF
cat >"$TMP/cls-tiny.conf" <<EOF
task = classify
dataset = mnist
data = $TMP/img
patch = 2
reorder = hard
d_model = 16
n_layer = 2
d_state = 4
batch_size = 4
steps = 50
eval_every = 0
eval_batches = 0
EOF
HDR='preset,scenario,polarize,reorder,task,params,steps,val_loss,val_ppl,val_acc,unigram_loss,train_s,mean_slope,verdict'

"$SSMLAB" sweep "$TMP/lm-tiny.conf" "$TMP/cls-tiny.conf" --out "$TMP/sw" steps=3 threads=1 scenario=negative \
    >"$TMP/stdout.csv" 2>"$TMP/sweep.err" || fail "sweep: $(tail -3 "$TMP/sweep.err")"
[ "$(head -1 "$TMP/sw/results.csv")" = "$HDR" ] && ok "results.csv columns" || fail "header: $(head -1 "$TMP/sw/results.csv")"
cmp -s "$TMP/stdout.csv" "$TMP/sw/results.csv" && ok "stdout is results.csv" || fail "stdout differs from results.csv"
$PY - "$TMP/sw/results.csv" <<'PY' && ok "one row per preset, cells as documented" || fail "results rows: $(cat "$TMP/sw/results.csv")"
import csv, math, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert [r['preset'] for r in rows] == ['lm-tiny', 'cls-tiny'], rows
lm, cl = rows
assert lm['task'] == 'lm' and cl['task'] == 'classify'
assert lm['scenario'] == cl['scenario'] == 'negative'          # the override reached both
assert lm['reorder'] == 'off' and cl['reorder'] == 'hard'
assert lm['steps'] == cl['steps'] == '3'                       # steps=3 overrode 50
assert abs(float(lm['val_ppl']) - math.exp(float(lm['val_loss']))) < 1e-2 * float(lm['val_ppl'])
assert lm['val_acc'] == '' and float(lm['unigram_loss']) > 0
assert cl['val_ppl'] == '' and cl['unigram_loss'] == '' and 0 <= float(cl['val_acc']) <= 1
for r in rows:
    assert int(r['params']) > 0 and float(r['train_s']) >= 0
    s = float(r['mean_slope'])
    v = 'converging' if s < -0.01 else 'diverging' if s > 0.01 else None
    assert r['verdict'] in ('converging', 'diverging', 'mixed') and (v is None or r['verdict'] in (v, 'mixed')), r
PY
md="$TMP/sw/results.md"
[ "$(wc -l <"$md")" -eq 4 ] && head -1 "$md" | grep -q '^| preset | scenario | .* | verdict |$' \
    && sed -n 2p "$md" | grep -qE '^(\|-*:?)+\|$' && sed -n 3p "$md" | grep -q '^| lm-tiny | negative | none | off | lm |' \
    && sed -n 4p "$md" | grep -q '^| cls-tiny | negative | none | hard | classify |' \
    && ok "results.md table" || fail "results.md: $(cat "$md")"
for p in lm-tiny cls-tiny; do
    [ -f "$TMP/sw/$p/model.safetensors" ] && grep -q '^3,val,' "$TMP/sw/$p/train.csv" && grep -q '^# saved' "$TMP/sw/$p/train.log" \
        && ok "$p: checkpoint, CSV and log kept" || fail "$p: run files missing"
done
grep -q '^#   scenario = negative$' "$TMP/sw/cls-tiny/train.log" && ok "overrides passed to train" || fail "override not in the train log"

# jsonl on stdout, the files stay CSV and Markdown
"$SSMLAB" sweep "$TMP/lm-tiny.conf" --out "$TMP/sw2" --format jsonl steps=2 threads=1 >"$TMP/out.jsonl" 2>"$TMP/err" \
    && $PY -c "import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; assert len(r)==1 and r[0]['preset']=='lm-tiny' and 'val_acc' not in r[0]" "$TMP/out.jsonl" \
    && head -1 "$TMP/sw2/results.csv" | grep -qx "$HDR" && ok "--format jsonl" || fail "jsonl sweep: $(tail -2 "$TMP/err")"

# bad input: nothing is trained, and the message names the preset
expect_error 66 "$TMP/nope.conf: cannot open config" "$SSMLAB" sweep "$TMP/lm-tiny.conf" "$TMP/nope.conf" --out "$TMP/sw3"
[ ! -e "$TMP/sw3/lm-tiny" ] && ok "no training before the presets are checked" || fail "trained despite a missing preset"
printf 'd_model = 16\nbogus = 1\n' >"$TMP/bad.conf"
expect_error 78 "bad.conf:2: unknown key 'bogus'" "$SSMLAB" sweep "$TMP/bad.conf" --out "$TMP/sw4"
expect_error 78 "lm-tiny.conf: .*d_state = 0" "$SSMLAB" sweep "$TMP/lm-tiny.conf" d_state=0 --out "$TMP/sw4"
mkdir -p "$TMP/dup"; cp "$TMP/lm-tiny.conf" "$TMP/dup/"
expect_error 64 "two presets named 'lm-tiny'" "$SSMLAB" sweep "$TMP/lm-tiny.conf" "$TMP/dup/lm-tiny.conf" --out "$TMP/sw4"
expect_error 64 "the sweep sets out and format" "$SSMLAB" sweep "$TMP/lm-tiny.conf" out=x
expect_error 64 "no preset files" "$SSMLAB" sweep --out "$TMP/sw4"
sed "s|^data = .*|data = $TMP/missing.txt|" "$TMP/lm-tiny.conf" >"$TMP/nodata.conf"
expect_error 66 "nodata.conf: training failed \(exit 66\): .*missing.txt" "$SSMLAB" sweep "$TMP/nodata.conf" --out "$TMP/sw5" threads=1

# Ctrl-C (SIGINT to the process group) stops the running training with a
# resumable checkpoint; the sweep reports it, exits 130 and keeps the rows done
setsid "$SSMLAB" sweep "$TMP/cls-tiny.conf" "$TMP/lm-tiny.conf" --out "$TMP/sw6" steps=100000 threads=1 \
    eval_batches=1 >/dev/null 2>"$TMP/int.err" &
pid=$!
for _ in $(seq 1 100); do grep -q '^# model' "$TMP/sw6/cls-tiny/train.log" 2>/dev/null && break; sleep 0.1; done
sleep 0.5
kill -INT -- -"$pid"
wait "$pid"
rc=$?
[ "$rc" -eq 130 ] && grep -q 'cls-tiny.conf: training failed (exit 130): interrupted at step' "$TMP/int.err" \
    && [ -f "$TMP/sw6/cls-tiny/optimizer.safetensors" ] && ok "SIGINT: exit 130, resumable checkpoint" \
    || fail "SIGINT: exit $rc: $(tail -2 "$TMP/int.err")"
finish
