#!/usr/bin/env bash
# attack.sh — `ssmlab attack` end to end: a tiny pixel-sequence classifier
# (trained on the 8 x 8 IDX fixture with `ssmlab train task=classify`, or,
# before that exists, random weights written by tests/ref/mamba_ref.py) is
# attacked with FGSM, PGD, N(0,1) noise and the target splice, on the last,
# first or middle k tokens (the first k always reported too, the control);
# columns, k resolution, ranges, determinism, JSONL and every error case
# are checked.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
HERE=$(cd "$(dirname "$0")" && pwd)
IMG="$TMP/img"
$PY "$HERE/../data/make_idx_fixture.py" "$IMG" || { fail "fixture"; finish; }
COLS='attack,method,k,k_fraction,eps,images,clean_acc,attacked_acc,success_rate,region'

# the classifier: 64 pixel tokens, 4 classes
trained=0
if "$SSMLAB" train --list-keys 2>/dev/null | grep -q '^task'; then
    "$SSMLAB" train task=classify dataset=mnist data="$IMG" patch=1 d_model=16 n_layer=2 d_state=4 \
        batch_size=16 steps=300 lr=2e-2 warmup=10 eval_every=0 eval_batches=0 threads=2 \
        out="$TMP/cls" >/dev/null 2>"$TMP/train.err" && trained=1 || fail "train: $(tail -2 "$TMP/train.err")"
else
    PYTHONPATH="$HERE/../ref" $PY - "$TMP/cls" <<'PY' || fail "writing a classifier checkpoint"
import sys
import mamba_ref as r
cfg = r.Config(d_model=16, n_layer=2, d_state=4, d_input=1, n_classes=4)
r.write_checkpoint(sys.argv[1], cfg, r.init_params(cfg, seed=3, perturb=False))
PY
fi
A=(--model "$TMP/cls" --data "$IMG" --threads 2)

# FGSM over counts and percentages: k resolved against L = 64, two rows
# each: the last k tokens (the default region), then the first k (the control)
"$SSMLAB" attack adversarial "${A[@]}" --last 1,10%,50%,100% --eps 1 >"$TMP/fgsm.csv" 2>"$TMP/fgsm.err" \
    || fail "fgsm: $(cat "$TMP/fgsm.err")"
head -1 "$TMP/fgsm.csv" | grep -qx "$COLS" && ok "columns" || fail "header: $(head -1 "$TMP/fgsm.csv")"
cut -d, -f1-6,10 "$TMP/fgsm.csv" | tail -n +2 | tr '\n' ' ' | grep -qx "$(for k in 1,0.015625 6,0.09375 32,0.5 64,1; do
    printf 'adversarial,fgsm,%s,1,64,%s ' "$k" last "$k" first; done)" \
    && ok "k from counts and percentages, last then first; all 64 test images" \
    || fail "rows: $(cut -d, -f1-6,10 "$TMP/fgsm.csv")"
# k = L: the first and the last 64 tokens are the same tokens, the same numbers
tail -2 "$TMP/fgsm.csv" | cut -d, -f1-9 | uniq | wc -l | grep -qx 1 && ok "k = L: first = last" \
    || fail "k = L rows differ: $(tail -2 "$TMP/fgsm.csv")"

# every rate in [0, 1]; clean accuracy the same on every row; on the trained
# model, attacking every token flips some predictions, and no fewer than
# k = 1 (not "most": FGSM's one step on this 16-wide model flipped 9% to
# 67% of them as the training's float sums were ordered by 1, 2 or 3
# threads, each run deterministic)
$PY - "$TMP/fgsm.csv" "$trained" <<'PY' && ok "rates in range and consistent" || fail "rates: $(cat "$TMP/fgsm.csv")"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
for r in rows:
    for c in ("clean_acc", "attacked_acc", "success_rate"):
        assert 0 <= float(r[c]) <= 1, (c, r)
assert len({r["clean_acc"] for r in rows}) == 1
if sys.argv[2] == "1":
    assert float(rows[0]["clean_acc"]) >= 0.8, rows[0]
    assert float(rows[-1]["success_rate"]) > 0, rows[-1]
    assert float(rows[-1]["success_rate"]) >= float(rows[0]["success_rate"]), rows
PY

# a zero budget changes nothing
"$SSMLAB" attack adversarial "${A[@]}" --last 100% --eps 0 2>/dev/null | tail -1 | \
    awk -F, '$7 == $8 && $9 == 0 {ok = 1} END {exit !ok}' && ok "eps 0: attacked = clean, success 0" \
    || fail "eps 0 changed predictions"

# PGD, JSONL, determinism
P=("${A[@]}" --last 25%,100% --method pgd --eps 0.5 --steps 10 --random-start --seed 4 --format jsonl)
"$SSMLAB" attack adversarial "${P[@]}" >"$TMP/pgd1.jsonl" 2>"$TMP/pgd.err" || fail "pgd: $(cat "$TMP/pgd.err")"
"$SSMLAB" attack adversarial "${P[@]}" --batch-size 7 >"$TMP/pgd2.jsonl" 2>/dev/null
cmp -s "$TMP/pgd1.jsonl" "$TMP/pgd2.jsonl" && ok "PGD rows repeat exactly (also with another batch size)" \
    || fail "PGD not reproducible: $(diff "$TMP/pgd1.jsonl" "$TMP/pgd2.jsonl")"
$PY - "$TMP/pgd1.jsonl" "$trained" <<'PY' && ok "PGD JSONL rows" || fail "PGD rows: $(cat "$TMP/pgd1.jsonl")"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert [(r["k"], r["region"]) for r in rows] == [(16, "last"), (16, "first"), (64, "last"), (64, "first")], rows
assert all(r["method"] == "pgd" for r in rows), rows
assert all(0 <= r["success_rate"] <= 1 and r["images"] == 64 and r["eps"] == 0.5 for r in rows), rows
if sys.argv[2] == "1":
    assert rows[-1]["success_rate"] > 0, rows[-1]
PY

# target: the splice of a whole class-3 image is predicted class 3
"$SSMLAB" attack target "${A[@]}" --last 1,50%,100% --class 3 --images 40 >"$TMP/tgt.csv" 2>"$TMP/tgt.err" \
    || fail "target: $(cat "$TMP/tgt.err")"
$PY - "$TMP/tgt.csv" "$trained" <<'PY' && ok "target rows" || fail "target rows: $(cat "$TMP/tgt.csv")"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert [(r["attack"], r["method"], r["k"], r["eps"], r["images"], r["region"]) for r in rows] == \
    [("target", "splice", k, "", "40", g) for k in ("1", "32", "64") for g in ("last", "first")], rows
for r in rows:
    assert 0 <= float(r["success_rate"]) <= 1
if sys.argv[2] == "1":
    assert float(rows[-1]["success_rate"]) >= 0.8, rows[-1]
    assert float(rows[-1]["attacked_acc"]) <= 0.4, rows[-1]
PY
"$SSMLAB" attack target "${A[@]}" --last 100% --class 3 --images 40 --seed 1 2>/dev/null >"$TMP/tgt1.csv"
"$SSMLAB" attack target "${A[@]}" --last 100% --class 3 --images 40 --seed 1 --threads 1 2>/dev/null >"$TMP/tgt2.csv"
[ -s "$TMP/tgt1.csv" ] && cmp -s "$TMP/tgt1.csv" "$TMP/tgt2.csv" && ok "target rows repeat" || fail "target not reproducible"

# noise, the paper's attack: the region's values become N(0,1) draws; every
# region runs, and last and middle come with the first-region control
for g in first last middle; do
    "$SSMLAB" attack adversarial "${A[@]}" --method noise --region $g --last 4,50%,100% --seed 2 \
        >"$TMP/noise-$g.csv" 2>"$TMP/noise.err" || fail "noise --region $g: $(cat "$TMP/noise.err")"
done
$PY - "$TMP" "$trained" <<'PY' && ok "noise rows, first/last/middle and the control" || fail "noise rows: $(cat "$TMP"/noise-*.csv)"
import csv, sys
rows = {g: list(csv.DictReader(open(f"{sys.argv[1]}/noise-{g}.csv"))) for g in ("first", "last", "middle")}
for g, rs in rows.items():
    want = [(k, g) for k in ("4", "32", "64")] if g == "first" else [(k, h) for k in ("4", "32", "64") for h in (g, "first")]
    assert [(r["k"], r["region"]) for r in rs] == want, (g, rs)
    assert all(r["attack"] == "adversarial" and r["method"] == "noise" and r["eps"] == "" for r in rs), rs
    for r in rs:
        assert 0 <= float(r["success_rate"]) <= 1 and 0 <= float(r["attacked_acc"]) <= 1, r
# the control of every region is the same attack on the same first tokens
control = lambda rs: [r for r in rs if r["region"] == "first"]
assert control(rows["last"]) == control(rows["middle"]) == rows["first"], rows
if sys.argv[2] == "1":   # noise on every token ruins the trained classifier
    assert float(rows["last"][-1]["success_rate"]) > 0.3, rows["last"][-1]
PY
"$SSMLAB" attack adversarial "${A[@]}" --method noise --region middle --last 4,50%,100% --seed 2 --batch-size 5 \
    2>/dev/null >"$TMP/noise-b5.csv"
[ -s "$TMP/noise-b5.csv" ] && cmp -s "$TMP/noise-middle.csv" "$TMP/noise-b5.csv" \
    && ok "noise rows repeat with another batch size" || fail "noise depends on batching: $(cat "$TMP/noise-b5.csv")"
"$SSMLAB" attack target "${A[@]}" --region middle --last 50% --class 3 --images 40 >"$TMP/tgt-mid.csv" 2>/dev/null \
    && cut -d, -f1-3,10 "$TMP/tgt-mid.csv" | tail -n +2 | tr '\n' ' ' | grep -qx 'target,splice,32,middle target,splice,32,first ' \
    && ok "target splice of the middle region, with the first-region control" || fail "target middle: $(cat "$TMP/tgt-mid.csv")"

# errors
tiny_train "$TMP/lm"
expect_error 65 'language model' "$SSMLAB" attack adversarial --model "$TMP/lm" --last 1
expect_error 64 'adversarial.*target' "$SSMLAB" attack --model "$TMP/cls" --last 1
expect_error 64 'unknown attack' "$SSMLAB" attack sideways --model "$TMP/cls" --last 1
expect_error 64 'model DIR is required' "$SSMLAB" attack adversarial --last 1
expect_error 64 'last' "$SSMLAB" attack adversarial --model "$TMP/cls"
expect_error 66 "$TMP/nowhere" "$SSMLAB" attack adversarial --model "$TMP/nowhere" --last 1
expect_error 64 "'0' is not" "$SSMLAB" attack adversarial "${A[@]}" --last 0
expect_error 64 "'1x' is not" "$SSMLAB" attack adversarial "${A[@]}" --last 4,1x
expect_error 64 'more than the 64 tokens' "$SSMLAB" attack adversarial "${A[@]}" --last 65
expect_error 64 'more than the 64 tokens' "$SSMLAB" attack adversarial "${A[@]}" --last 101%
expect_error 64 'method must be fgsm, pgd or noise' "$SSMLAB" attack adversarial "${A[@]}" --last 1 --method cw
expect_error 64 "^ssmlab: attack: --region must be first, last or middle, not 'x'\$" \
    "$SSMLAB" attack adversarial "${A[@]}" --last 1 --region x
expect_error 64 "--region must be first, last or middle, not 'LAST'" "$SSMLAB" attack target "${A[@]}" --last 1 --class 1 --region LAST
expect_error 64 'region needs a value' "$SSMLAB" attack adversarial "${A[@]}" --last 1 --region
expect_error 64 "--eps: '-1' is not" "$SSMLAB" attack adversarial "${A[@]}" --last 1 --eps -1
expect_error 64 'csv or jsonl' "$SSMLAB" attack adversarial "${A[@]}" --last 1 --format xml
expect_error 64 'class C is required' "$SSMLAB" attack target "${A[@]}" --last 1
expect_error 64 'class goes with the target' "$SSMLAB" attack adversarial "${A[@]}" --last 1 --class 2
expect_error 64 'classes 0 .. 3' "$SSMLAB" attack target "${A[@]}" --last 1 --class 7
expect_error 64 'unknown option' "$SSMLAB" attack adversarial "${A[@]}" --last 1 --bogus
mkdir -p "$TMP/empty"
expect_error 66 "$TMP/empty" "$SSMLAB" attack adversarial --model "$TMP/cls" --data "$TMP/empty" --last 1
finish
