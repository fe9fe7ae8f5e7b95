#!/usr/bin/env bash
# flow.sh — end-to-end tests of `ssmlab inspect --flow` (ssmlab-math(7)
# DYNAMICS, "The flow of one layer"): on random weights under a scenario the
# S6 map's flow converges for negative and diverges for positive (d_model 8,
# d_state 4, 8 Gaussian tokens, step 0.1, 50 steps: the setting of
# tests/unit/engine/test_flow.c), the table in CSV and JSONL, the flow of a
# trained checkpoint's embedded text, the verdicts table of plain `inspect`
# (residual, mixer and flow side by side, the flow's agreeing with --flow's),
# and the usage errors.
. "$(dirname "$0")/lib.sh"
flow() { "$SSMLAB" inspect --threads 1 --flow "$@"; }
small="d_model=8 d_state=4 n_layer=1"

# ---- the theorem's signs on random weights, two seeds, two input scales
for seed in 1 2; do
    for scale in 0.3 1; do
        for sc in negative:converging positive:diverging; do
            # shellcheck disable=SC2086
            if flow --scenario "${sc%%:*}" --flow-system s6 --seed $seed --flow-scale $scale $small \
                >"$TMP/f.csv" 2>"$TMP/err"; then
                grep -qx "flow,verdict,,,,,,${sc#*:}" "$TMP/f.csv" \
                    && ok "s6 ${sc%%:*} seed $seed scale $scale: ${sc#*:}" \
                    || fail "s6 ${sc%%:*} seed $seed scale $scale: $(grep -E 'verdict|mean' "$TMP/f.csv" | tr '\n' ' ')"
            else
                fail "flow --scenario ${sc%%:*}: $(cat "$TMP/err")"
            fi
        done
    done
done

# ---- the table
# shellcheck disable=SC2086
if flow --scenario negative --flow-steps 7 --flow-step 0.2 --format jsonl $small >"$TMP/f.jsonl" 2>"$TMP/err"; then
    /usr/bin/python3 - "$TMP/f.jsonl" <<'PY' && ok "JSONL flow table: 8 norms a step, t = step h, rates, verdict" || fail "JSONL flow table"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert {r["table"] for r in rows} == {"flow"}
norms = [r for r in rows if r["kind"] == "norm"]
assert len(norms) == 8 * 8, len(norms)               # (7 + 1) steps x 8 tokens
assert all(abs(r["t"] - 0.2 * r["step"]) < 1e-6 for r in norms)
assert len([r for r in rows if r["kind"] == "rate"]) == 8
assert [r["value"] for r in rows if r["kind"] == "steps_done"] == [7]
assert [r["value"] for r in rows if r["kind"] == "verdict"][0] in ("converging", "diverging", "no-trend")
PY
else
    fail "flow --format jsonl: $(cat "$TMP/err")"
fi

# ---- a checkpoint: the embedded text, labelled
if tiny_train "$TMP/ck"; then
    if flow --model "$TMP/ck" --text 'abc' --flow-layer 1 --flow-steps 5 >"$TMP/c.csv" 2>"$TMP/err"; then
        grep -qx "table,kind,step,t,pos,id,token,value" "$TMP/c.csv" && ok "flow header" || fail "flow header"
        [ "$(grep -c '^flow,norm,' "$TMP/c.csv")" -eq 18 ] && grep -q '^flow,norm,0,0,1,98,b,' "$TMP/c.csv" \
            && ok "checkpoint flow: 6 x 3 norms, tokens labelled" || fail "checkpoint flow rows: $(head -3 "$TMP/c.csv")"
        ! grep -q '^spectrum\|^norms' "$TMP/c.csv" && ok "--flow alone prints only the flow" || fail "other tables"
    else
        fail "flow --model: $(cat "$TMP/err")"
    fi
    # the three named verdicts, each with its slope and R^2
    if "$SSMLAB" inspect --threads 1 --model "$TMP/ck" --text 'abcabc' >"$TMP/v.csv" 2>"$TMP/err"; then
        grep -qx "table,name,quantity,layer,verdict,slope,r2" "$TMP/v.csv" && ok "verdicts header" || fail "verdicts header"
        for who in residual mixer flow; do
            grep -qE "^verdicts,$who,[^,]+,[0-9]*,(converging|diverging|mixed|no-trend),-?[0-9.e+-]+,[0-9.e+-]+\$" "$TMP/v.csv" \
                && ok "inspect names the $who verdict with slope and R^2" || fail "no $who verdict: $(grep '^verdicts' "$TMP/v.csv")"
        done
        grep -qE '^verdicts,flow,[^,]+,0,' "$TMP/v.csv" && ok "the flow verdict is layer 0's by default" || fail "flow layer"
        "$SSMLAB" inspect --threads 1 --model "$TMP/ck" --text 'abcabc' --flow-layer 1 --flow-steps 20 \
            >"$TMP/v1.csv" 2>/dev/null
        flow --model "$TMP/ck" --text 'abcabc' --flow-layer 1 --flow-steps 20 >"$TMP/f1.csv" 2>/dev/null
        /usr/bin/python3 - "$TMP/v1.csv" "$TMP/f1.csv" <<'PY' && ok "--flow-layer 1: the verdicts row is --flow's" || fail "verdicts flow vs --flow"
import sys
v = [l.split(",") for l in open(sys.argv[1]) if l.startswith("verdicts,flow,")][0]
f = {l.split(",")[1]: l.strip().split(",")[-1] for l in open(sys.argv[2]) if l.startswith("flow,")}
assert v[3] == "1", v
assert v[4] == f["verdict"], (v, f["verdict"])
assert abs(float(v[5]) - float(f["mean_rate"])) < 1e-6 and abs(float(v[6]) - float(f["mean_r2"])) < 1e-6, (v, f)
PY
    else
        fail "inspect verdicts: $(cat "$TMP/err")"
    fi
    expect_error 64 "ssmlab: --flow-layer 2: the model has 2 layers" flow --model "$TMP/ck" --flow-layer 2
    expect_error 64 "ssmlab: --flow-layer 2: the model has 2 layers" "$SSMLAB" inspect --model "$TMP/ck" --flow-layer 2
    expect_error 64 "give --model DIR or --scenario NAME, not both" flow --model "$TMP/ck" --scenario positive
else
    fail "tiny training run"
fi

# ---- errors
expect_error 64 "inspect: --flow-step goes with --flow or the norms" "$SSMLAB" inspect --model x --spectrum --flow-step 0.2
expect_error 64 "inspect: --scenario goes with --flow" "$SSMLAB" inspect --scenario negative
expect_error 64 "unexpected argument 'd_model=8' \(key=value model keys go with --flow --scenario NAME\)" \
    flow --model x d_model=8
expect_error 64 "only --flow and --spectrum go with it" flow --scenario negative --norms
expect_error 64 "inspect: --flow-steps" flow --scenario negative --flow-steps 1001
expect_error 64 "inspect: --flow-step" flow --scenario negative --flow-step 0
expect_error 64 "inspect: --scenario must be" flow --scenario sideways
expect_error 78 "d_model" flow --scenario negative d_model=0
finish
