#!/usr/bin/env bash
# sweep_seeds.sh — `ssmlab sweep --seeds`: two tiny LM presets (2 layers and
# 1 layer) over 3 seeds.  Each run has its own directory and seed; runs.csv
# has a row per preset and seed; results.csv's COL_mean and COL_ci95 and
# compare.csv's paired differences, intervals and p-values agree with a
# numpy reference computed here from runs.csv, with the t quantile taken
# from a printed table (t_0.975 for df 1..5) and, for df = 2, the exact
# two-sided p-value 1 - |t| / sqrt(t^2 + 2) (no scipy); results.md shows
# mean +- ci and marks p < 0.05; the charts get error bars.  With --attack
# (noise on the last k tokens of two tiny classifiers on the IDX fixture):
# attack_runs.csv's rows per seed are those of single-seed sweeps with
# seed=N; attack.csv's means and CIs, and attack_compare.csv's region
# (last - first) and preset comparisons, agree with numpy from
# attack_runs.csv; attack.md shows mean +- ci and the comparisons.  Bad
# --seeds and --compare fail with 64 before anything is trained.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
tiny_corpus "$TMP/c.txt"
tiny_lm_preset "$TMP/lm-two.conf" "$TMP/c.txt"
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

# --seeds with --attack: two tiny classifiers, noise on the last 2 and 4 tokens
$PY "$(dirname "$0")/../data/make_idx_fixture.py" "$TMP/img" || fail "fixture"
tiny_classifier "$TMP/cls-two.conf" "$TMP/img"
sed 's/^n_layer = 2$/n_layer = 1/' "$TMP/cls-two.conf" >"$TMP/cls-one.conf"
AT=(--attack adversarial --method noise --region last --last 2,4 --images 16)
"$SSMLAB" sweep "$TMP/cls-two.conf" "$TMP/cls-one.conf" --seeds 1-3 --compare cls-two:cls-one --out "$TMP/sa" \
    "${AT[@]}" steps=5 threads=1 --figure-format svg >/dev/null 2>"$TMP/err" || fail "sweep --seeds --attack: $(tail -3 "$TMP/err")"
same=1
for s in 1 2 3; do
    "$SSMLAB" sweep "$TMP/cls-two.conf" --out "$TMP/sa$s" "${AT[@]}" steps=5 threads=1 seed=$s --figure-format svg \
        >/dev/null 2>"$TMP/err$s" || { same=0; fail "single-seed sweep seed=$s: $(tail -2 "$TMP/err$s")"; }
    [ ! -e "$TMP/sa$s/attack_runs.csv" ] && [ ! -e "$TMP/sa$s/attack_compare.csv" ] || { same=0; fail "seed=$s: seed files without --seeds"; }
    grep "^cls-two,$s," "$TMP/sa/attack_runs.csv" | cut -d, -f1,3- >"$TMP/rows$s"
    tail -n +2 "$TMP/sa$s/attack.csv" | cmp -s - "$TMP/rows$s" && [ "$(wc -l <"$TMP/rows$s")" -eq 4 ] \
        || { same=0; fail "seed $s: attack rows differ: $(cat "$TMP/rows$s") against $(cat "$TMP/sa$s/attack.csv")"; }
done
[ "$same" = 1 ] && ok "attack_runs.csv: each seed's rows are those of a single-seed sweep with seed=N"

$PY - "$TMP/sa" <<'PY' && ok "attack.csv and attack_compare.csv match the numpy reference" || fail "attack statistics differ from the reference"
import csv, math, sys
import numpy as np
d = sys.argv[1]
T975 = {2: 4.303}                                   # printed t table, df = 2
def rows(name):
    f = open(d + '/' + name)
    hdr = f.readline().strip()
    f.seek(0)
    return hdr, list(csv.DictReader(f))
hr, runs = rows('attack_runs.csv')
ha, agg = rows('attack.csv')
hc, cmp = rows('attack_compare.csv')
assert hr == 'preset,seed,scenario,polarize,reorder,attack,method,k,k_fraction,eps,images,clean_acc,attacked_acc,success_rate,region', hr
assert ha == ('preset,scenario,polarize,reorder,attack,method,k,k_fraction,eps,images,region,n,clean_acc_mean,clean_acc_ci95,'
              'attacked_acc_mean,attacked_acc_ci95,success_rate_mean,success_rate_ci95'), ha
assert hc == 'a_preset,a_region,b_preset,b_region,k,column,n,a_mean,b_mean,diff_mean,diff_ci95,t,p_value,significant', hc
keys = [(k, g) for k in ('2', '4') for g in ('last', 'first')]
assert [(r['preset'], r['seed'], r['k'], r['region']) for r in runs] == \
    [(p, s, k, g) for p in ('cls-two', 'cls-one') for s in '123' for k, g in keys], runs
assert [(r['preset'], r['k'], r['region'], r['n']) for r in agg] == [(p, k, g, '3') for p in ('cls-two', 'cls-one') for k, g in keys]
def vals(p, k, g, c):
    return np.array([float(r[c]) for r in runs if (r['preset'], r['k'], r['region']) == (p, k, g)])
def close(got, want, rel=1e-4, absl=1e-6):
    return abs(float(got) - want) <= rel * abs(want) + absl
for r in agg:
    assert r['method'] == 'noise' and r['eps'] == '' and r['images'] == '16', r
    for c in ('clean_acc', 'attacked_acc', 'success_rate'):
        x = vals(r['preset'], r['k'], r['region'], c)
        assert len(x) == 3
        assert close(r[c + '_mean'], x.mean()), (r, c, x)
        assert close(r[c + '_ci95'], T975[2] * x.std(ddof=1) / math.sqrt(3)), (r, c, x)
want = {(p, 'first', p, 'last', k, c) for p in ('cls-two', 'cls-one') for k in ('2', '4') for c in ('attacked_acc', 'success_rate')}
want |= {('cls-two', g, 'cls-one', g, k, c) for k, g in keys for c in ('attacked_acc', 'success_rate')}
seen = set()
for r in cmp:
    key = (r['a_preset'], r['a_region'], r['b_preset'], r['b_region'], r['k'], r['column'])
    seen.add(key)
    a, b = vals(r['a_preset'], r['k'], r['a_region'], r['column']), vals(r['b_preset'], r['k'], r['b_region'], r['column'])
    diff = b - a                                     # the same seed, in order
    assert r['n'] == '3' and close(r['a_mean'], a.mean()) and close(r['b_mean'], b.mean()), (r, a, b)
    sd = diff.std(ddof=1)
    assert close(r['diff_mean'], diff.mean(), 1e-4, 1e-9), (r, diff)
    assert close(r['diff_ci95'], T975[2] * sd / math.sqrt(3), 1e-4, 1e-9), (r, diff)
    if sd > 0:
        t = diff.mean() / (sd / math.sqrt(3))
        p = 1 - abs(t) / math.sqrt(t * t + 2)        # Student t, df = 2, two-sided
        assert close(r['t'], t, 1e-4, 1e-9) and close(r['p_value'], p, 2e-3, 1e-6), (r, t, p)
    else:
        p = 1.0 if diff.mean() == 0 else 0.0
        assert r['t'] == '' and float(r['p_value']) == p, r
    assert r['significant'] == str(int(p < 0.05)), r
assert seen == want, (sorted(want - seen), sorted(seen - want))
# the recency test itself: a region row whose differences vary across seeds
assert any(r['a_region'] == 'first' and r['t'] != '' for r in cmp), 'no region comparison with spread'
PY
md="$TMP/sa/attack.md"
$PY - "$TMP/sa/attack_compare.csv" "$md" <<'PY' && ok "attack.md: mean ± ci cells, region and preset comparisons, * for p < 0.05" || fail "attack.md: $(cat "$md")"
import csv, sys
cmp = {(r['a_preset'], r['a_region'], r['b_preset'], r['b_region'], r['k'], r['column']): r for r in csv.DictReader(open(sys.argv[1]))}
lines = open(sys.argv[2]).read().split('\n')
assert lines[0].startswith('| preset | scenario | polarize | reorder | attack | method | k | k_fraction | eps | images | region | n |'), lines[0]
cells = [[x.strip() for x in l.strip().strip('|').split('|')] for l in lines if l.startswith('| cls-')]
assert sum(len(f) == 15 and ' ± ' in f[13] for f in cells) == 8, cells
assert '## Paired comparisons' in lines
for f in cells:
    if len(f) == 11:
        r = cmp.pop(tuple(f[:6]))
        assert f[6] == '3' and f[10].endswith(' *') == (float(r['p_value']) < 0.05), (f, r)
assert not cmp, cmp
PY

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
[ ! -e "$TMP/swb/lm-two" ] && ok "no training after a bad --seeds or --compare" || fail "trained despite a bad option"
finish
