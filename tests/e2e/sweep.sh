#!/usr/bin/env bash
# sweep.sh — `ssmlab sweep` on two tiny presets (a byte-level LM and an image
# classifier on the IDX fixture) with overrides: results.csv, results.md and
# stdout have the documented columns and one row per preset with the right
# cells; each preset's CSV, log and checkpoint are kept; both verdicts are
# the ones their slopes give; the recency cells (influence decay, half-life,
# over-smoothing) are in range; with --attack, attack.csv and attack.md hold
# one row per (classifier, k) that `ssmlab attack` reproduces exactly; bad
# presets and options fail early (64, 66, 78), naming the file.
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
tiny_classifier "$TMP/cls-tiny.conf" "$TMP/img"
HDR='preset,scenario,polarize,reorder,task,n_layer,params,steps,val_loss,val_ppl,val_acc,unigram_loss,train_s,mean_slope,verdict,mix_slope,mix_verdict,decay_rate,half_life,fit_r2,tail64,cos_last,dev_last,dev_ratio'
AHDR='preset,scenario,polarize,reorder,attack,method,k,k_fraction,eps,images,clean_acc,attacked_acc,success_rate,region'

"$SSMLAB" sweep "$TMP/lm-tiny.conf" "$TMP/cls-tiny.conf" --out "$TMP/sw" steps=3 threads=1 scenario=negative \
    --attack adversarial --eps 1 --last 1,25%,100% --images 20 \
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
def verdict_ok(s, verdict):
    v = 'converging' if s < -0.01 else 'diverging' if s > 0.01 else None
    if verdict == 'no-trend':   # a poor fit over depth (R^2 < 0.5) says no side
        return True
    return verdict in ('converging', 'diverging', 'mixed') and (v is None or verdict in (v, 'mixed'))
for r in rows:
    assert int(r['params']) > 0 and float(r['train_s']) >= 0 and r['n_layer'] == '2'
    assert verdict_ok(float(r['mean_slope']), r['verdict']), r
    assert verdict_ok(float(r['mix_slope']), r['mix_verdict']), r
PY
# the recency cells of each preset: the half-life is ln 2 / decay_rate (inf
# when the influence does not decay), finite and positive for the causal LM,
# and empty when the fit's R^2 is below 0.5 (no exponential decay: the
# classifier's hard reordering scrambles distances); an R^2 in [0, 1],
# cosines and deviations in range
$PY - "$TMP/sw/results.csv" <<'PY' && ok "recency columns in range" || fail "recency cells: $(cat "$TMP/sw/results.csv")"
import csv, math, sys
for r in csv.DictReader(open(sys.argv[1])):
    rate, r2 = float(r['decay_rate']), float(r['fit_r2'])
    if r['task'] == 'lm':
        assert rate > 0 and r2 >= 0.5 and math.isfinite(float(r['half_life'])), r
    if r2 < 0.5:
        assert r['half_life'] == '', r
    else:
        hl = float(r['half_life'])
        assert hl > 0 and (abs(hl * rate - math.log(2)) < 1e-3 * math.log(2) + 1e-4 if rate > 0 else hl == math.inf), r
    assert 0 <= r2 <= 1, r
    assert r['tail64'] == '' or float(r['tail64']) > 0, r   # empty when L <= 64
    assert -1 <= float(r['cos_last']) <= 1 and 0 < float(r['dev_last']) <= 1 and float(r['dev_ratio']) > 0, r
PY
# the attack table: the classifier's rows only, k resolved against its 16
# patch tokens, each k on the last tokens and on the first (the control),
# rates in range and consistent with each other
[ "$(head -1 "$TMP/sw/attack.csv")" = "$AHDR" ] && ok "attack.csv columns" || fail "attack header: $(head -1 "$TMP/sw/attack.csv")"
$PY - "$TMP/sw/attack.csv" <<'PY' && ok "attack rows: one per k and region, rates consistent" || fail "attack rows: $(cat "$TMP/sw/attack.csv")"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert [(r['preset'], r['k'], r['method'], r['eps'], r['images'], r['region']) for r in rows] == \
    [('cls-tiny', k, 'fgsm', '1', '20', g) for k in ('1', '4', '16') for g in ('last', 'first')], rows
assert len({r['clean_acc'] for r in rows}) == 1
for r in rows:
    c, a, s = (float(r[x]) for x in ('clean_acc', 'attacked_acc', 'success_rate'))
    assert 0 <= c <= 1 and 0 <= a <= 1 and 0 <= s <= 1, r
    # the clean-correct images that stay correct are counted in attacked_acc
    assert c * (1 - s) <= a + 1e-6 and a <= c * (1 - s) + (1 - c) + 1e-6, r
PY
"$SSMLAB" attack adversarial --model "$TMP/sw/cls-tiny" --eps 1 --last 1,25%,100% --images 20 --threads 1 \
    2>/dev/null | tail -n +2 >"$TMP/attack.rows"
cut -d, -f5- "$TMP/sw/attack.csv" | tail -n +2 | cmp -s - "$TMP/attack.rows" && [ -s "$TMP/attack.rows" ] \
    && ok "ssmlab attack reproduces the sweep's attack rows" || fail "attack rows differ: $(cat "$TMP/attack.rows")"
[ "$(wc -l <"$TMP/sw/attack.md")" -eq 8 ] && sed -n 3p "$TMP/sw/attack.md" | grep -q '^| cls-tiny | negative | none | hard | adversarial | fgsm | 1 | .* | last |$' \
    && sed -n 4p "$TMP/sw/attack.md" | grep -q '^| cls-tiny | .* | fgsm | 1 | .* | first |$' \
    && ok "attack.md table" || fail "attack.md: $(cat "$TMP/sw/attack.md")"
md="$TMP/sw/results.md"
[ "$(wc -l <"$md")" -eq 4 ] && head -1 "$md" | grep -q '^| preset | scenario | .* | verdict | mix_slope | mix_verdict | .* | dev_ratio |$' \
    && sed -n 2p "$md" | grep -qE '^(\|-*:?)+\|$' && sed -n 3p "$md" | grep -q '^| lm-tiny | negative | none | off | lm |' \
    && sed -n 4p "$md" | grep -q '^| cls-tiny | negative | none | hard | classify |' \
    && ok "results.md table" || fail "results.md: $(cat "$md")"
for p in lm-tiny cls-tiny; do
    [ -f "$TMP/sw/$p/model.safetensors" ] && grep -q '^3,val,' "$TMP/sw/$p/train.csv" && grep -q '^# saved' "$TMP/sw/$p/train.log" \
        && ok "$p: checkpoint, CSV and log kept" || fail "$p: run files missing"
done
grep -q '^#   scenario = negative$' "$TMP/sw/cls-tiny/train.log" && ok "overrides passed to train" || fail "override not in the train log"

# jsonl on stdout, the files stay CSV and Markdown; one layer: no mixer
# verdict (one depth), no attack table without --attack
"$SSMLAB" sweep "$TMP/lm-tiny.conf" --out "$TMP/sw2" --format jsonl steps=2 threads=1 n_layer=1 >"$TMP/out.jsonl" 2>"$TMP/err" \
    && $PY -c "import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; assert len(r)==1 and r[0]['preset']=='lm-tiny' and 'val_acc' not in r[0] and r[0]['n_layer']==1 and r[0]['mix_verdict']=='none' and 'mix_slope' not in r[0] and r[0]['half_life']>0, r" "$TMP/out.jsonl" \
    && head -1 "$TMP/sw2/results.csv" | grep -qx "$HDR" && [ ! -e "$TMP/sw2/attack.csv" ] && ok "--format jsonl, one layer" \
    || fail "jsonl sweep: $(tail -2 "$TMP/err") $(cat "$TMP/out.jsonl")"

# the target attack: a splice, no eps, here of the middle tokens and the
# first (the control); the LM of the sweep gets no rows
"$SSMLAB" sweep "$TMP/cls-tiny.conf" "$TMP/lm-tiny.conf" --out "$TMP/swt" steps=2 threads=1 --attack target --class 1 \
    --region middle --last 50%,100% --images 12 --seed 3 >/dev/null 2>"$TMP/err" || fail "target sweep: $(tail -2 "$TMP/err")"
"$SSMLAB" attack target --model "$TMP/swt/cls-tiny" --class 1 --region middle --last 50%,100% --images 12 --seed 3 \
    --threads 1 2>/dev/null | tail -n +2 >"$TMP/target.rows"
[ "$(wc -l <"$TMP/swt/attack.csv")" -eq 5 ] && cut -d, -f5- "$TMP/swt/attack.csv" | tail -n +2 | cmp -s - "$TMP/target.rows" \
    && grep -q '^cls-tiny,default,none,hard,target,splice,16,1,,12,.*,middle$' "$TMP/swt/attack.csv" \
    && grep -q '^cls-tiny,default,none,hard,target,splice,8,0.5,,12,.*,first$' "$TMP/swt/attack.csv" \
    && ok "target attack rows by region, reproduced by ssmlab attack" || fail "target rows: $(cat "$TMP/swt/attack.csv")"

# noise on the first tokens: no control row (the region is the control), no eps
"$SSMLAB" sweep "$TMP/cls-tiny.conf" --out "$TMP/swn" steps=2 threads=1 --attack adversarial --method noise \
    --region first --last 25% --images 8 --seed 5 >/dev/null 2>"$TMP/err" || fail "noise sweep: $(tail -2 "$TMP/err")"
"$SSMLAB" attack adversarial --model "$TMP/swn/cls-tiny" --method noise --region first --last 25% --images 8 --seed 5 \
    --threads 1 2>/dev/null | tail -n +2 >"$TMP/noise.rows"
[ "$(wc -l <"$TMP/swn/attack.csv")" -eq 2 ] && grep -q '^cls-tiny,default,none,hard,adversarial,noise,4,0.25,,8,.*,first$' "$TMP/swn/attack.csv" \
    && cut -d, -f5- "$TMP/swn/attack.csv" | tail -n +2 | cmp -s - "$TMP/noise.rows" \
    && ok "noise attack rows, reproduced by ssmlab attack" || fail "noise rows: $(cat "$TMP/swn/attack.csv")"

# bad attack options: usage errors before anything is trained
A=("$SSMLAB" sweep "$TMP/cls-tiny.conf" --out "$TMP/swa")
expect_error 64 "attack must be adversarial or target" "${A[@]}" --attack sideways
expect_error 64 "attack needs a value" "${A[@]}" --attack
expect_error 64 "last goes with --attack" "${A[@]}" --last 1
expect_error 64 "eps goes with --attack" "${A[@]}" --eps 0.5
expect_error 64 "--eps: '-1' is not" "${A[@]}" --attack adversarial --eps -1
expect_error 64 "--images: '0' is not" "${A[@]}" --attack adversarial --images 0
expect_error 64 "method must be fgsm, pgd or noise" "${A[@]}" --attack adversarial --method cw
expect_error 64 "region must be first, last or middle, not 'x'" "${A[@]}" --attack adversarial --region x
expect_error 64 "region goes with --attack" "${A[@]}" --region first
expect_error 64 "random-start=1: takes no value" "${A[@]}" --attack adversarial --random-start=1
expect_error 64 "'0' is not a token count" "${A[@]}" --attack adversarial --last 1,0
expect_error 64 "'1x' is not a token count" "${A[@]}" --attack adversarial --last 1x
expect_error 64 "'101%' is more than the whole sequence" "${A[@]}" --attack adversarial --last 101%
expect_error 64 "cls-tiny.conf: sweep: --last: '17' is more than the 16 tokens" "${A[@]}" --attack adversarial --last 1,17
expect_error 64 "class C is required" "${A[@]}" --attack target
expect_error 64 "class goes with the target" "${A[@]}" --attack adversarial --class 1
expect_error 64 "cls-tiny.conf: sweep: --class 4: the model has classes 0 .. 3" "${A[@]}" --attack target --class 4
[ ! -e "$TMP/swa/cls-tiny" ] && ok "no training after a bad attack option" || fail "trained despite a bad attack option"

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
