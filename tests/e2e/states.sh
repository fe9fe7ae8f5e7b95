#!/usr/bin/env bash
# states.sh — end-to-end tests of `ssmlab inspect --states --lens`
# (ssmlab-inspect(1) STATES and LENS): the two tables' columns and row
# counts in CSV and JSONL, infinite horizons (CSV inf, JSON "inf") on a
# one-polarized model and finite ones on a plain model, the lens at the last
# depth is the final distribution (KL ~ 0), a cls token's row on a pool = cls
# classifier, --lens on a classifier refused (exit 64), --states with
# --scenario refused, and their figures.  A tiny Mamba-2 model: the horizon
# per head (column head), ranks of the (H P) x N state, its figures.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
tiny_train "$TMP/ck" || { fail "tiny training run"; finish; }
tiny_train "$TMP/one" polarize=one || { fail "tiny one-polarized run"; finish; }
inspect() { "$SSMLAB" inspect --threads 1 "$@"; }
STATES_COLS="table,kind,seq,layer,pos,id,token,channel,value"
LENS_COLS="table,seq,layer,pos,id,token,top_id,top_token,prob,entropy,kl"

# ---- the tables (2 layers, d_inner 32, 3 tokens x 2 sequences)
if inspect --model "$TMP/ck" --states --lens --tokens '72,105,33;98,121,101' >"$TMP/s.csv" 2>"$TMP/err"; then
    grep -qx "$STATES_COLS" "$TMP/s.csv" && ok "states header" || fail "no states header $STATES_COLS"
    grep -qx "$LENS_COLS" "$TMP/s.csv" && ok "lens header" || fail "no lens header $LENS_COLS"
    ! grep -qE '^(spectrum|norms|importance),' "$TMP/s.csv" && ok "--states --lens print only their tables" \
        || fail "default tables printed too"
    $PY - "$TMP/s.csv" <<'PY' && ok "row counts, labels, finite horizons, KL ~ 0 at the last depth" || fail "tables"
import csv, io, math, sys
blocks = open(sys.argv[1]).read().strip().split("\n\n")
rows = [r for b in blocks for r in csv.DictReader(io.StringIO(b))]
st = [r for r in rows if r["table"] == "states"]
lens = [r for r in rows if r["table"] == "lens"]
kinds = {k: [r for r in st if r["kind"] == k] for k in ("norm", "erank", "horizon")}
assert len(kinds["norm"]) == len(kinds["erank"]) == 2 * 2 * 3, {k: len(v) for k, v in kinds.items()}
assert len(kinds["horizon"]) == 2 * 2 * 32, len(kinds["horizon"])
assert all(r["channel"] == "" and r["pos"] != "" for r in kinds["norm"] + kinds["erank"])
assert all(r["pos"] == r["id"] == r["token"] == "" and r["channel"] != "" for r in kinds["horizon"])
assert {(r["seq"], r["pos"], r["id"], r["token"]) for r in kinds["norm"]} == \
    {("0", "0", "72", "H"), ("0", "1", "105", "i"), ("0", "2", "33", "!"),
     ("1", "0", "98", "b"), ("1", "1", "121", "y"), ("1", "2", "101", "e")}
assert all(0 < float(r["value"]) < math.inf for r in kinds["horizon"]), "plain model: finite horizons"
assert all(1 <= float(r["value"]) <= 4 + 1e-6 for r in kinds["erank"] if float(r["value"]) > 0)
assert len(lens) == 3 * 2 * 3, len(lens)                  # depths 0..n_layer x B x L
for r in lens:
    p, h, kl = float(r["prob"]), float(r["entropy"]), float(r["kl"])
    assert 0 < p <= 1 and h >= 0 and kl >= -1e-9, r
    if 32 < int(r["top_id"]) < 127:                          # a byte model: printable ids are their byte
        assert r["top_token"] == chr(int(r["top_id"])), r
last = [float(r["kl"]) for r in lens if r["layer"] == "2"]
assert len(last) == 6 and max(last) < 1e-6, last
assert max(float(r["kl"]) for r in lens if r["layer"] == "0") > 1e-6, "the embedding's lens is not the final"
PY
else
    fail "inspect --states --lens: $(cat "$TMP/err")"
fi

# ---- infinite horizons: CSV inf, JSONL "inf"
inspect --model "$TMP/one" --states --text 'ab' >"$TMP/one.csv" 2>"$TMP/err" \
    && [ "$(grep -c '^states,horizon,0,[01],,,,[0-9]*,inf$' "$TMP/one.csv")" -eq 64 ] \
    && ok "one-polarized: every horizon is inf in CSV" || fail "one-polarized CSV: $(grep -m2 horizon "$TMP/one.csv") $(cat "$TMP/err")"
if inspect --model "$TMP/one" --states --lens --text 'ab' --format jsonl >"$TMP/one.jsonl" 2>"$TMP/err"; then
    $PY - "$TMP/one.jsonl" <<'PY' && ok "JSONL: horizons the string \"inf\", other values numbers" || fail "JSONL"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
hz = [r for r in rows if r.get("kind") == "horizon"]
assert len(hz) == 64 and all(r["value"] == "inf" and "pos" not in r for r in hz), hz[:2]
assert all(isinstance(r["value"], float) for r in rows if r.get("kind") in ("norm", "erank"))
lens = [r for r in rows if r["table"] == "lens"]
assert lens and all(isinstance(r[k], (int, float)) for r in lens for k in ("top_id", "prob", "entropy", "kl"))
assert all(isinstance(r["top_token"], str) and isinstance(r["token"], str) for r in lens)
PY
else
    fail "inspect --format jsonl: $(cat "$TMP/err")"
fi

# ---- figures
if inspect --model "$TMP/ck" --states --lens --text 'Hi there' --figures "$TMP/fig" >/dev/null 2>"$TMP/err"; then
    for n in states lens; do
        xmllint --noout "$TMP/fig/$n.svg" 2>"$TMP/xml.err" && ok "$n.svg is well-formed SVG" \
            || fail "$n.svg: $(cat "$TMP/xml.err")"
        [ "$(head -c 8 "$TMP/fig/$n.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] \
            && ok "$n.png is a PNG" || fail "$n.png"
    done
    [ "$(ls "$TMP/fig" | wc -l)" -eq 4 ] && ok "4 figure files" || fail "figures: $(ls "$TMP/fig")"
else
    fail "inspect --figures: $(cat "$TMP/err")"
fi

# ---- a pool = cls classifier: --states has the cls token's row, --lens is refused
$PY "$(dirname "$0")/../data/make_idx_fixture.py" "$TMP/img" || fail "fixture"
"$SSMLAB" train task=classify dataset=mnist data="$TMP/img" patch=2 d_model=16 n_layer=2 d_state=4 pool=cls \
    batch_size=4 steps=2 warmup=1 eval_every=0 eval_batches=0 threads=1 out="$TMP/cls" >/dev/null 2>"$TMP/err" \
    || fail "classifier: $(tail -1 "$TMP/err")"
inspect --model "$TMP/cls" --states --image 1 >"$TMP/c.csv" 2>"$TMP/err" \
    && [ "$(grep -c '^states,norm,' "$TMP/c.csv")" -eq 34 ] && grep -q '^states,norm,0,1,16,,,,' "$TMP/c.csv" \
    && grep -q '^states,erank,0,0,15,15,y3x3,,' "$TMP/c.csv" \
    && ok "classifier: 16 patches and the cls token (pos 16, no id or token) per layer" \
    || fail "classifier --states: $(grep -c '^states,norm,' "$TMP/c.csv") rows; $(cat "$TMP/err")"
expect_error 64 "^ssmlab: --lens: the logit lens needs a language model; this model is a classifier \(4 classes\)" \
    inspect --model "$TMP/cls" --lens --states
[ ! -s "$TMP/out" ] && ok "--lens on a classifier prints no table" || fail "tables printed: $(head -2 "$TMP/out")"
expect_error 64 "only --flow and --spectrum go with it" inspect --flow --scenario positive --states

# ---- Mamba-2 (4 heads of 8, d_state 4): the horizon is per head
tiny_train "$TMP/m2" arch=mamba2 head_dim=8 n_groups=2 chunk_size=4 || { fail "tiny Mamba-2 run"; finish; }
if inspect --model "$TMP/m2" --states --lens --tokens '72,105,33,1,2;98,121,101,3,4' --figures "$TMP/m2fig" \
        >"$TMP/m2.csv" 2>"$TMP/err"; then
    grep -qx "table,kind,seq,layer,pos,id,token,head,value" "$TMP/m2.csv" && ok "Mamba-2 states header names the head" \
        || fail "Mamba-2 states header: $(grep '^table,kind' "$TMP/m2.csv")"
    $PY - "$TMP/m2.csv" <<'PY' && ok "Mamba-2: 2 x 2 x 5 norms and ranks, 2 x 2 x 4 finite head horizons, the lens" || fail "Mamba-2 tables"
import csv, io, math, sys
blocks = open(sys.argv[1]).read().strip().split("\n\n")
rows = [r for b in blocks for r in csv.DictReader(io.StringIO(b))]
st = [r for r in rows if r["table"] == "states"]
kinds = {k: [r for r in st if r["kind"] == k] for k in ("norm", "erank", "horizon")}
assert len(kinds["norm"]) == len(kinds["erank"]) == 2 * 2 * 5, {k: len(v) for k, v in kinds.items()}
assert len(kinds["horizon"]) == 2 * 2 * 4 and {r["head"] for r in kinds["horizon"]} == {"0", "1", "2", "3"}
assert all(0 < float(r["value"]) < math.inf for r in kinds["horizon"])
assert all(1 <= float(r["value"]) <= 4 + 1e-6 for r in kinds["erank"] if float(r["value"]) > 0)
assert len([r for r in rows if r["table"] == "lens"]) == 3 * 2 * 5
PY
    [ "$(ls "$TMP/m2fig" | wc -l)" -eq 4 ] && ok "Mamba-2: 4 figure files" || fail "Mamba-2 figures: $(ls "$TMP/m2fig")"
else
    fail "Mamba-2 inspect --states --lens: $(cat "$TMP/err")"
fi
finish
