#!/usr/bin/env bash
# inspect_weights.sh — `ssmlab inspect --weights bf16` against the default
# f32 on the same checkpoint, a trained byte model: the token norms,
# mixer-output norms and slopes, the hidden attention of every layer (raw
# alpha; the row-normalized view divides by a row's largest entry, which
# can be tiny, and is left out), the exact influence map and the
# spectrum's eigenvalues each agree within 1e-2 relative (max |a - b| over
# a table's column, over max |b|), row for row, and the bf16 run is not
# the f32 one (something was rounded).  The mamba_ssm pytorch_model.bin
# fixture's weights are bf16 numbers already: there every table is the
# f32 one bit for bit.  f32 is the default; --weights takes only f32 and
# bf16.
. "$(dirname "$0")/lib.sh"
tiny_train "$TMP/ck" steps=6 || { fail "tiny training run"; finish; }
tables=(--spectrum --norms --attention --influence --format jsonl --threads 1)

compare() { # NAME F32.jsonl BF16.jsonl
    /usr/bin/python3 - "$2" "$3" <<'PY' && ok "$1: bf16 tables within 1e-2 of f32" || fail "$1: bf16 tables off f32"
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
assert len(a) == len(b) and len(a) > 0, f"{len(a)} f32 rows, {len(b)} bf16 rows"
want = {("norms", "norm"): ["value"], ("norms", "mix_norm"): ["value"], ("norms", "slope"): ["value"],
        ("attention", None): ["raw"], ("influence", "influence"): ["value"],
        ("spectrum", "eigenvalue"): ["re", "im"]}
cols, seen = {}, set()
for x, y in zip(a, b):
    key = (x["table"], x.get("kind"))
    for f in want.get(key, []):
        skip = want[key] + ["row_normalized"]
        keys = {k: v for k, v in x.items() if k not in skip}
        assert keys == {k: v for k, v in y.items() if k not in skip}, f"rows differ: {x} {y}"
        c = cols.setdefault(key + (f,), [0.0, 0.0])
        c[0] = max(c[0], abs(y[f] - x[f]))
        c[1] = max(c[1], abs(x[f]))
        seen.add(key)
assert seen == set(want), f"tables missing: {set(want) - seen}"
worst = max(d / s for d, s in cols.values() if s > 0)
total = sum(d for d, _ in cols.values())
for k, (d, s) in sorted(cols.items(), key=str):
    print(f"  {k}: max |bf16 - f32| / max |f32| = {d / s:.2e}", file=sys.stderr)
assert worst <= 1e-2, f"worst {worst:.3g}"
assert total > 0, "bf16 gave the f32 numbers exactly: nothing was rounded"
PY
}

both() { # NAME DIR ARGS...: inspect DIR in f32 and bf16 into $TMP/NAME.f32, .bf16
    local name=$1 dir=$2; shift 2
    "$SSMLAB" inspect --model "$dir" "$@" "${tables[@]}" >"$TMP/$name.f32" 2>"$TMP/err" &&
        "$SSMLAB" inspect --model "$dir" "$@" "${tables[@]}" --weights bf16 >"$TMP/$name.bf16" 2>>"$TMP/err" \
        || { fail "$name: inspect: $(cat "$TMP/err")"; return 1; }
}
both ck "$TMP/ck" --text "The quick brown fox jumps" && compare "trained byte model" "$TMP/ck.f32" "$TMP/ck.bf16"
if both tiny "$(dirname "$0")/../data/mamba_tiny_torch" --tokens 1,2,3,4,5,6,7,8,9,0,1,2; then
    cmp -s "$TMP/tiny.f32" "$TMP/tiny.bf16" && ok "mamba_tiny_torch (bf16-exact weights): bf16 tables are the f32 ones" \
        || fail "mamba_tiny_torch (bf16-exact weights): bf16 tables differ from f32"
fi
"$SSMLAB" inspect --model "$TMP/ck" --text "The quick brown fox jumps" "${tables[@]}" --weights f32 >"$TMP/again" 2>/dev/null
cmp -s "$TMP/again" "$TMP/ck.f32" && ok "--weights f32 is the default" || fail "--weights f32 differs from the default"
expect_error 64 "weights" "$SSMLAB" inspect --model "$TMP/ck" --weights f16
finish
