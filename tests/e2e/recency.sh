#!/usr/bin/env bash
# recency.sh — end-to-end tests of `ssmlab inspect --attention / --influence
# / --smoothing` on tiny byte models: the documented columns in CSV and
# JSONL, the shapes of the tables, a positive finite half-life, probes
# against the exact influence, the R^2 rule (no half-life below 0.5),
# polarized models, and bad options.  Tiny random models prove nothing
# about recency itself: the half-lives of the polarize=none and
# polarize=one models are printed, not compared.
. "$(dirname "$0")/lib.sh"
tiny_train "$TMP/ck" || { fail "tiny training run"; finish; }
tiny_train "$TMP/one" polarize=one || { fail "tiny training run, polarize=one"; finish; }
inspect() { "$SSMLAB" inspect --threads 1 "$@"; }
PY=/usr/bin/python3

# check_tables FILE FORMAT SCRIPT: run the python SCRIPT on the rows of FILE
# (a list of dicts per table name in `t`, values as text)
check_tables() {
    local file=$1 fmt=$2; shift 2
    "$PY" - "$file" "$fmt" "$@" <<'PY'
import csv, json, math, sys
path, fmt, code = sys.argv[1], sys.argv[2], sys.argv[3]
t, headers = {}, []
if fmt == "jsonl":
    for line in open(path):
        r = {k: str(v) for k, v in json.loads(line).items()}
        t.setdefault(r["table"], []).append(r)
else:
    for block in open(path).read().strip().split("\n\n"):
        lines = block.splitlines()
        headers.append(lines[0])
        for r in csv.DictReader(lines):
            t.setdefault(r["table"], []).append(r)
exec(code)
PY
}

ATTN_COLS="table,layer,seq,t,s,aggregation,channel,raw,row_normalized"
INFL_COLS="table,kind,t,s,distance,value,method,probes,n_seq"
SMOO_COLS="table,kind,layer,value,n_seq"

# ---- the three tables on the default text (44 bytes, one sequence)
if inspect --model "$TMP/ck" --attention --influence --smoothing >"$TMP/all.csv" 2>"$TMP/err"; then
    for h in "$ATTN_COLS" "$INFL_COLS" "$SMOO_COLS"; do
        grep -qx "$h" "$TMP/all.csv" && ok "header $h" || fail "no header $h"
    done
    grep -qE '^(spectrum|norms|importance),' "$TMP/all.csv" && fail "recency options alone print other tables"
    check_tables "$TMP/all.csv" csv '
L = 44
a = t["attention"]
assert len(a) == 2 * L * (L + 1) // 2, len(a)
assert {r["aggregation"] for r in a} == {"mean_abs"} and {r["channel"] for r in a} == {""}
assert all(float(r["raw"]) >= 0 and int(r["s"]) <= int(r["t"]) for r in a)
rowmax = {}
for r in a:
    k = (r["layer"], r["t"]); rowmax[k] = max(rowmax.get(k, 0.0), float(r["row_normalized"]))
assert all(abs(v - 1) < 1e-6 for v in rowmax.values()), "every row normalised to max 1"
i = t["influence"]
vals = [r for r in i if r["kind"] == "influence"]
assert sorted({int(r["t"]) for r in vals}) == [10, 21, 32, 43], "targets"
assert len(vals) == 11 + 22 + 33 + 44, len(vals)
assert all(int(r["distance"]) == int(r["t"]) - int(r["s"]) for r in vals)
assert {(r["method"], r["probes"], r["n_seq"]) for r in i} == {("exact", "0", "1")}, "exact for D * 4 = 64"
fit = {r["kind"]: r["value"] for r in i if r["kind"] != "influence"}
rate, half, r2 = float(fit["decay_rate"]), float(fit["half_life"]), float(fit["r2"])
assert math.isfinite(rate) and rate > 0, rate
assert math.isfinite(half) and half > 0 and abs(half - math.log(2) / rate) < 1e-6 * half, half
assert 0 <= r2 <= 1, r2
assert fit["decay"] == ("exponential" if r2 >= 0.5 else "none"), fit   # R^2 rule
assert fit["fit_points"] == str(len(vals) - 4) and fit["fit_min_distance"] == "1", fit
s = t["smoothing"]
assert [(r["kind"], r["layer"]) for r in s] == [(k, str(l)) for l in range(3) for k in ("cos_mean", "deviation")]
for r in s:
    v = float(r["value"])
    assert (-1 <= v <= 1) if r["kind"] == "cos_mean" else (0 <= v <= 1), r
print("half-life %.3g tokens, R^2 %.2f" % (half, r2))
' >"$TMP/py" 2>&1 && ok "tables: shapes, normalisation, fit rows, smoothing ranges ($(cat "$TMP/py"))" \
        || fail "table contents: $(cat "$TMP/py")"
else
    fail "inspect --attention --influence --smoothing: $(cat "$TMP/err")"
fi

# ---- one channel of one layer, JSONL
if inspect --model "$TMP/ck" --attention --layer 1 --channel 3 --format jsonl >"$TMP/a.jsonl" 2>"$TMP/err"; then
    check_tables "$TMP/a.jsonl" jsonl '
a = t["attention"]
assert set(t) == {"attention"} and {r["layer"] for r in a} == {"1"}
assert {(r["aggregation"], r["channel"]) for r in a} == {("channel", "3")}
assert all(abs(float(r["row_normalized"])) <= 1 + 1e-6 for r in a)
' >"$TMP/py" 2>&1 && ok "--layer 1 --channel 3 --format jsonl" || fail "one channel: $(cat "$TMP/py")"
else
    fail "inspect --attention --layer 1 --channel 3: $(cat "$TMP/err")"
fi

# ---- probes estimate the exact influence; several sequences
h0=$(grep '^influence,half_life' "$TMP/all.csv" | cut -d, -f6)
if inspect --model "$TMP/ck" --influence --probes 256 >"$TMP/p.csv" 2>"$TMP/err"; then
    check_tables "$TMP/p.csv" csv '
exact = float(sys.argv[4])
i = t["influence"]
assert {(r["method"], r["probes"]) for r in i} == {("probes", "256")}
half = [float(r["value"]) for r in i if r["kind"] == "half_life"][0]
assert abs(half - exact) < 0.25 * exact, (half, exact)
' "$h0" >"$TMP/py" 2>&1 && ok "--probes 256: half-life within 25% of exact" || fail "probes: $(cat "$TMP/py")"
else
    fail "inspect --influence --probes 256: $(cat "$TMP/err")"
fi
inspect --model "$TMP/ck" --influence --smoothing --targets 2 --tokens '72,101,108,108,111,32,119,111;84,104,101,32,113,117,105,99' \
    >"$TMP/s.csv" 2>"$TMP/err" \
    && check_tables "$TMP/s.csv" csv '
assert {r["n_seq"] for r in t["influence"] + t["smoothing"]} == {"2"}
assert sorted({r["t"] for r in t["influence"] if r["kind"] == "influence"}) == ["3", "7"]
' >"$TMP/py" 2>&1 && ok "two sequences: n_seq 2, --targets 2" || fail "two sequences: $(cat "$TMP/err" "$TMP/py")"

# ---- polarize=one: the same tables; half-lives reported, not compared.  A
# fit with R^2 < 0.5 is "no exponential decay": decay none, no half-life
if inspect --model "$TMP/one" --attention --influence --smoothing >"$TMP/one.csv" 2>"$TMP/err"; then
    h1=$(grep '^influence,half_life' "$TMP/one.csv" | cut -d, -f6)
    d1=$(grep '^influence,decay,' "$TMP/one.csv" | cut -d, -f6)
    r1=$(grep '^influence,r2' "$TMP/one.csv" | cut -d, -f6)
    "$PY" -c "
import sys
h, d, r2 = sys.argv[1:]
if d == 'exponential': assert float(h) > 0 and float(r2) >= 0.5
else: assert d == 'none' and h == '' and float(r2) < 0.5" "$h1" "$d1" "$r1" \
        && ok "polarize=one: tables and a positive half-life or none (none: $h0 tokens, one: ${h1:+$h1 tokens}${h1:-no exponential decay}, R^2 $r1)" \
        || fail "polarize=one half-life '$h1', decay '$d1', R^2 '$r1'"
else
    fail "inspect on a polarize=one model: $(cat "$TMP/err")"
fi

# ---- errors
# the sweep's tail64 column: far influence (distance >= 64) over distance 1,
# a positive number for 128-token sequences
"$SSMLAB" sweep scenarios/recency-d1-one.conf steps=5 seq_len=128 batch_size=2 eval_batches=2 threads=1 \
    --out "$TMP/tail" >"$TMP/tail.csv" 2>"$TMP/tail.err" || fail "sweep for tail64: $(tail -1 "$TMP/tail.err")"
"$PY" -c "
import csv, sys
r = next(csv.DictReader(open('$TMP/tail.csv')))
sys.exit(0 if 0 < float(r['tail64']) < 1 else 1)" 2>/dev/null \
    && ok "sweep tail64 at 128 tokens: $(cut -d, -f21 "$TMP/tail.csv" | tail -1)" || fail "tail64: $(cat "$TMP/tail.csv")"

expect_error 64 "ssmlab: --layer 2: the model has layers 0..1" inspect --model "$TMP/ck" --attention --layer 2
expect_error 64 "ssmlab: --channel 32: the model has channels 0..31" inspect --model "$TMP/ck" --attention --channel 32
expect_error 64 "ssmlab: inspect: --channel: 'x' is not a channel number or 'mean'" inspect --model "$TMP/ck" --attention --channel x
expect_error 64 "ssmlab: inspect: --targets: '0' is not a count >= 1" inspect --model "$TMP/ck" --influence --targets 0
expect_error 64 "ssmlab: inspect: --layer and --channel go with --attention" inspect --model "$TMP/ck" --layer 1
expect_error 64 "ssmlab: inspect: --targets and --probes go with --influence" inspect --model "$TMP/ck" --probes 4

finish
