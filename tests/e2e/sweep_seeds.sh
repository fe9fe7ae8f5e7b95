#!/usr/bin/env bash
# sweep_seeds.sh — `ssmlab sweep --seeds`: two tiny LM presets (2 layers and
# 1 layer) over 3 seeds.  Each run has its own directory and seed; runs.csv
# has a row per preset and seed; results.csv's COL_mean and COL_ci95 and
# compare.csv's paired differences, intervals and p-values agree with a
# numpy reference computed here from runs.csv, with the t quantile taken
# from a printed table (t_0.975 for df 1..5) and, for df = 2, the exact
# two-sided p-value 1 - |t| / sqrt(t^2 + 2) (no scipy); results.md shows
# mean +- ci and marks p < 0.05; the charts get error bars; bad --seeds and
# --compare fail with 64 before anything is trained.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
tiny_corpus "$TMP/c.txt"
cat >"$TMP/lm-two.conf" <<CONF
d_model = 16
n_layer = 2
d_state = 4
seq_len = 16
batch_size = 2
steps = 3
warmup = 1
eval_every = 0
eval_batches = 2
seed = 99
data = $TMP/c.txt
CONF
sed 's/^n_layer = 2$/n_layer = 1/' "$TMP/lm-two.conf" >"$TMP/lm-one.conf"

"$SSMLAB" sweep "$TMP/lm-two.conf" "$TMP/lm-one.conf" --seeds 1,3-4 --compare lm-two:lm-one --out "$TMP/sw" \
    --figure-format svg threads=1 >"$TMP/stdout.csv" 2>"$TMP/err" || fail "sweep --seeds: $(tail -3 "$TMP/err")"
seeded=1
for p in lm-two lm-one; do
    for s in 1 3 4; do
        grep -q "^#   seed = $s\$" "$TMP/sw/$p/seed-$s/train.log" && [ -f "$TMP/sw/$p/seed-$s/model.safetensors" ] \
            || { seeded=0; fail "$p seed $s: no run directory trained with seed $s"; }
    done
done
[ "$seeded" = 1 ] && ok "a run directory per preset and seed, each trained with its seed"
cmp -s "$TMP/stdout.csv" "$TMP/sw/results.csv" && ok "stdout is results.csv" || fail "stdout differs from results.csv"

# the reference: numpy over runs.csv, t quantiles from a printed table
$PY - "$TMP/sw" <<'PY' && ok "means, CIs and paired tests match the numpy reference" || fail "statistics differ from the reference"
import csv, math, sys
import numpy as np
d = sys.argv[1]
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571}   # printed t table, two-sided 95%
runs = list(csv.DictReader(open(d + '/runs.csv')))
res = list(csv.DictReader(open(d + '/results.csv')))
cmp = list(csv.DictReader(open(d + '/compare.csv')))
assert [(r['preset'], r['seed']) for r in runs] == [(p, s) for p in ('lm-two', 'lm-one') for s in ('1', '3', '4')], runs
assert [r['preset'] for r in res] == ['lm-two', 'lm-one'] and all(r['n'] == '3' for r in res), res
cols = ['val_loss', 'val_ppl', 'unigram_loss', 'mean_slope', 'decay_rate', 'half_life', 'fit_r2', 'cos_last',
        'dev_last', 'dev_ratio']
def vals(p, c):
    return np.array([float(r[c]) for r in runs if r['preset'] == p])
def close(got, want, rel, absl):
    return abs(float(got) - want) <= rel * abs(want) + absl
checked = 0
for r in res:
    for c in cols:
        x = vals(r['preset'], c)
        if not np.all(np.isfinite(x)):
            continue
        mean = x.mean()
        ci = T975[len(x) - 1] * x.std(ddof=1) / math.sqrt(len(x))
        # results.csv rounds to the column's digits (3 to 5 decimals, 4 significant for half_life)
        assert close(r[c + '_mean'], mean, 1e-3, 6e-4), (r['preset'], c, r[c + '_mean'], mean)
        assert close(r[c + '_ci95'], ci, 2e-3, 6e-4), (r['preset'], c, r[c + '_ci95'], ci)
        checked += 1
assert all(r['val_acc_mean'] == '' for r in res) and res[1]['mix_slope_mean'] == '' and res[0]['mix_slope_mean'] != ''
assert checked >= 18, checked
want = {'val_loss', 'half_life'}
for r in cmp:
    assert (r['a'], r['b']) == ('lm-two', 'lm-one'), r
    a, b = vals('lm-two', r['column']), vals('lm-one', r['column'])
    ok = np.isfinite(a) & np.isfinite(b)
    diff = b[ok] - a[ok]
    n = len(diff)
    assert int(r['n']) == n == 3, r
    sd = diff.std(ddof=1)
    assert close(r['diff_mean'], diff.mean(), 1e-4, 1e-9), (r, diff.mean())
    assert close(r['diff_ci95'], T975[n - 1] * sd / math.sqrt(n), 1e-3, 1e-9), r
    if sd > 0:
        t = diff.mean() / (sd / math.sqrt(n))
        p = 1 - abs(t) / math.sqrt(t * t + 2)       # Student t, df = 2, two-sided
        assert close(r['t'], t, 1e-4, 1e-9), (r, t)
        assert close(r['p_value'], p, 2e-3, 1e-6), (r, p)
        assert r['significant'] == str(int(p < 0.05)), r
        assert (p < 0.05) == (abs(t) > T975[2]), (p, t)
    want.discard(r['column'])
assert not want, ('no comparison row for', want)
PY

md="$TMP/sw/results.md"
grep -q '^| lm-two | default | none | off | lm | 2 | [0-9]* | 3 | 3 | [0-9.]* ± [0-9.]* |' "$md" \
    && grep -q '^## Paired comparisons' "$md" && grep -q '^| lm-two | lm-one | val_loss | 3 |' "$md" \
    && ok "results.md: mean ± ci, the comparisons section" || fail "results.md: $(cat "$md")"
$PY - "$TMP/sw/compare.csv" "$md" <<'PY' && ok "results.md marks p < 0.05 with *" || fail "significance marks in results.md"
import csv, sys
rows = {r['column']: r for r in csv.DictReader(open(sys.argv[1]))}
for line in open(sys.argv[2]):
    f = [x.strip() for x in line.strip().strip('|').split('|')]
    if len(f) == 8 and f[0] == 'lm-two' and f[2] in rows:
        assert f[7].endswith(' *') == (float(rows[f[2]]['p_value']) < 0.05), (f, rows[f[2]])
        rows.pop(f[2])
assert not rows, rows
PY
# error bars: the val_loss chart of the seeds draws more paths than the
# same chart of one run per preset (a whisker per preset); without --seeds
# there is no runs.csv or compare.csv and the runs stay in DIR/PRESET
"$SSMLAB" sweep "$TMP/lm-two.conf" "$TMP/lm-one.conf" --out "$TMP/sw1" --figure-format svg threads=1 >/dev/null 2>"$TMP/err1" \
    || fail "sweep without --seeds: $(tail -2 "$TMP/err1")"
n_seeds=$(grep -c '<path' "$TMP/sw/figures/val_loss.svg")
n_one=$(grep -c '<path' "$TMP/sw1/figures/val_loss.svg")
[ "$n_one" -gt 0 ] && [ "$n_seeds" -gt "$n_one" ] && [ ! -e "$TMP/sw1/runs.csv" ] && [ ! -e "$TMP/sw1/compare.csv" ] \
    && [ -f "$TMP/sw1/lm-two/model.safetensors" ] \
    && ok "error bars with seeds, none without; no runs.csv without --seeds" || fail "error bars: $n_seeds against $n_one paths"

# bad --seeds and --compare: usage errors, nothing trained
B=("$SSMLAB" sweep "$TMP/lm-two.conf" "$TMP/lm-one.conf" --out "$TMP/swb")
expect_error 64 "--seeds: '3-1' is not a list of seeds" "${B[@]}" --seeds 3-1
expect_error 64 "--seeds: '1,1' is not" "${B[@]}" --seeds 1,1
expect_error 64 "--seeds: '1,,2' is not" "${B[@]}" --seeds 1,,2
expect_error 64 "--seeds: 'x' is not" "${B[@]}" --seeds x
expect_error 64 "--seeds: '0-64' is not" "${B[@]}" --seeds 0-64
expect_error 64 "compare goes with --seeds of at least 2" "${B[@]}" --compare lm-two:lm-one
expect_error 64 "compare goes with --seeds of at least 2" "${B[@]}" --seeds 1 --compare lm-two:lm-one
expect_error 64 "--compare: 'lm-two' is not two preset names" "${B[@]}" --seeds 1-2 --compare lm-two
expect_error 64 "--compare lm-two:nope: no preset named 'nope'" "${B[@]}" --seeds 1-2 --compare lm-two:nope
expect_error 64 "a preset compared with itself" "${B[@]}" --seeds 1-2 --compare lm-one:lm-one
expect_error 64 "seeds does not go with --attack" "${B[@]}" --seeds 1-2 --attack adversarial
[ ! -e "$TMP/swb/lm-two" ] && ok "no training after a bad --seeds or --compare" || fail "trained despite a bad option"
finish
