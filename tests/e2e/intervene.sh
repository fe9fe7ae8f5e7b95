#!/usr/bin/env bash
# intervene.sh — end-to-end tests of the interventions of `ssmlab inspect`
# and `ssmlab eval` (--ablate, --pin, --patch with --patch-from or
# --patch-tokens; ssmlab-inspect(1) INTERVENTIONS) on a tiny byte model
# (2 layers, d_inner 32, polarize = both: 6 state channels): every bad spec
# is refused with exit 64, one stderr line naming the problem and nothing on
# stdout; the intervention table's columns, its total row with eval's delta
# loss, a self-patch changing nothing, an ablation changing something, and
# the table next to inspect's others (--out).  A tiny Mamba-2 model
# (4 heads of 8, d_state 4, 2 groups): per-head specs and their ranges,
# head ablations and A_h pins changing the loss, a self-patch of a state
# changing nothing, and an ablated head's states at zero in the dump.
. "$(dirname "$0")/lib.sh"
tiny_train "$TMP/ck" polarize=both || { fail "tiny training run"; finish; }
PY=/usr/bin/python3
M=(--model "$TMP/ck" --threads 1)

# refused CODE PATTERN CMD...: exit CODE, one stderr line (besides the #
# header) matching PATTERN, and nothing on stdout
refused() {
    local before=$fails
    expect_error "$@"
    [ "$fails" -ne "$before" ] && return
    local lines
    lines=$(grep -vc '^#' "$TMP/err")
    [ "$lines" -eq 1 ] || fail "${*:3}: $lines stderr lines, expected one"
    [ -s "$TMP/out" ] && fail "${*:3}: wrote to stdout before refusing"
}

for cmd in inspect eval; do
    if [ "$cmd" = inspect ]; then IN=(--text hello); else IN=(--tokens 104,101,108,108,111); fi
    run=("$SSMLAB" "$cmd" "${M[@]}" "${IN[@]}")
    # out of range
    refused 64 "ablate 2:0: layer 2 is out of range" "${run[@]}" --ablate 2:0
    refused 64 "ablate 0:32: channel 32 is out of range" "${run[@]}" --ablate 0:32
    refused 64 "ablate 1:0:6: state channel 6 is out of range" "${run[@]}" --ablate 1:0:6
    refused 64 "pin 0:1:9: state channel 9 is out of range" "${run[@]}" --pin 0:1:9:-1
    refused 64 "pin 3:1:0: layer 3 is out of range" "${run[@]}" --ablate 0:1 --pin 3:1:0:-1
    refused 64 "patch 0:5: position 5 is out of range" "${run[@]}" --patch 0:5 --patch-from jelly
    refused 64 "patch 2:1: layer 2 is out of range" "${run[@]}" --patch 2:1:state --patch-from jelly
    # malformed
    refused 64 "--ablate: '0' is not LAYER:CHANNEL" "${run[@]}" --ablate 0
    refused 64 "--ablate: '0:x' is not LAYER:CHANNEL" "${run[@]}" --ablate 0:x
    refused 64 "--ablate: '0:1,,1:2' is not" "${run[@]}" --ablate 0:1,,1:2
    refused 64 "--ablate: '-1:2' is not" "${run[@]}" --ablate=-1:2
    refused 64 "--pin: '0:1' is not LAYER:CHANNEL\[:STATE\]:VALUE" "${run[@]}" --pin 0:1
    refused 64 "--pin: '0:1:2' is not .*VALUE <= 0" "${run[@]}" --pin 0:1:2
    refused 64 "--pin: '0:1:2:0.5' is not .*VALUE <= 0" "${run[@]}" --pin 0:1:2:0.5
    refused 64 "--pin: '0:1:2:nan' is not" "${run[@]}" --pin 0:1:2:nan
    refused 64 "--patch: '0:1:mixer' is not LAYER:POSITION" "${run[@]}" --patch 0:1:mixer --patch-from jelly
    refused 64 "--patch-tokens: '1,x' is not a list of token ids" "${run[@]}" --patch 0:1 --patch-tokens 1,x
    # the pairs
    refused 64 "$cmd: --patch needs a patch input" "${run[@]}" --patch 0:1
    refused 64 "$cmd: --patch-from goes with --patch" "${run[@]}" --patch-from jelly
    refused 64 "$cmd: --patch-tokens goes with --patch" "${run[@]}" --patch-tokens 1,2,3,4,5
    refused 64 "$cmd: give --patch-from or --patch-tokens, not both" "${run[@]}" --patch 0:1 \
        --patch-from jelly --patch-tokens 1,2,3,4,5
    # the patch input's shape
    refused 64 "--patch-from: the patch input is 1 x 2 tokens, the input 1 x 5" "${run[@]}" --patch 0:1 --patch-from hi
    refused 64 "--patch-tokens: the patch input is 2 x 5 tokens, the input 1 x 5" "${run[@]}" --patch 0:1 \
        --patch-tokens "1,2,3,4,5;1,2,3,4,5"
    refused 65 "--patch-tokens: token id 999 .* outside the vocabulary" "${run[@]}" --patch 0:1 --patch-tokens 1,2,999,4,5
done
refused 64 "eval: --ablate, --pin and --patch go with --tokens or --inputs" "$SSMLAB" eval "${M[@]}" --ablate 0:1
refused 64 "eval: --patch cannot go with --save-grads" "$SSMLAB" eval "${M[@]}" --tokens 1,2,3 --patch 0:1 \
    --patch-tokens 3,2,1 --save-grads "$TMP/g.safetensors"
refused 64 "inspect: --patch cannot go with --influence" "$SSMLAB" inspect "${M[@]}" --influence --patch 0:1 \
    --patch-from "The quick brown fox jumps over the lazy dog."
refused 64 "inspect: --ablate, --pin and --patch do not go with --scenario" "$SSMLAB" inspect --flow \
    --scenario positive --ablate 0:1

# check FILE SCRIPT: SCRIPT on the intervention rows of eval's or inspect's
# stdout (r: the rows as dicts, total: the total row, cols: the header)
check() {
    "$PY" - "$1" "$2" <<'PY'
import csv, sys
blocks = open(sys.argv[1]).read().strip().split("\n\n")
block = [b for b in blocks if b.startswith("table,kind,seq,pos")][0].splitlines()
cols = block[0].split(",")
rows = list(csv.DictReader(block))
r = [x for x in rows if x["kind"] != "total"]
total = [x for x in rows if x["kind"] == "total"]
assert len(total) == 1, f"{len(total)} total rows"
total = total[0]
exec(sys.argv[2])
PY
}
COLS="table,kind,seq,pos,id,target,kl,clean_logp,logp,dlogp,clean_loss,loss,delta_loss"

TOK="104,101,108,108,111;106,101,108,108,121"
if "$SSMLAB" eval "${M[@]}" --tokens "$TOK" --ablate 0:3,1:5 --pin 1:2:1:0 >"$TMP/ev.csv" 2>"$TMP/ev.err" &&
    grep -q "^# interventions: ablate 0:3, ablate 1:5, pin 1:2:1=0$" "$TMP/ev.err" &&
    check "$TMP/ev.csv" "
assert ','.join(cols) == '$COLS', cols
assert len(r) == 10 and [x['pos'] for x in r[:5]] == ['0', '1', '2', '3', '4']
assert r[4]['target'] == '' and r[0]['target'] == '101'
assert max(float(x['kl']) for x in r) > 0
d = float(total['loss']) - float(total['clean_loss'])
assert abs(float(total['delta_loss']) - d) < 1e-6, (total, d)
assert total['delta_loss'] != ''
"; then ok "eval: ablate and pin, the intervention table with delta_loss, echoed on stderr"
else fail "eval --ablate --pin: $(cat "$TMP/ev.err")"; fi

if "$SSMLAB" eval "${M[@]}" --tokens "$TOK" --patch 1:2:state --patch-tokens "$TOK" >"$TMP/self.csv" 2>"$TMP/err" &&
    check "$TMP/self.csv" "
assert all(x['kl'] == '0' and x['dlogp'] in ('0', '') for x in r), r
assert total['delta_loss'] == '0' and total['clean_loss'] == total['loss']
"; then ok "eval: a self-patch changes nothing"
else fail "eval self-patch: $(cat "$TMP/err")"; fi

if "$SSMLAB" inspect "${M[@]}" --text hello --patch 1:2 --patch-from jelly --format jsonl >"$TMP/p.jsonl" 2>"$TMP/err" &&
    "$PY" - "$TMP/p.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
pos = [r for r in rows if r["kind"] == "position"]
assert len(pos) == 5 and all(r["table"] == "intervention" for r in rows)
assert all(r["kl"] == 0 for r in pos[:2]), pos      # causal: before the patch nothing moves
assert pos[2]["kl"] > 0, pos[2]
PY
then ok "inspect: a residual patch moves nothing before its position, JSONL"
else fail "inspect --patch-from: $(cat "$TMP/err")"; fi

if "$SSMLAB" inspect "${M[@]}" --text hello --norms --ablate 0:1 --out "$TMP/tabs" 2>"$TMP/err" &&
    [ -s "$TMP/tabs/norms.csv" ] && head -1 "$TMP/tabs/intervention.csv" | grep -qx "$COLS" &&
    [ ! -e "$TMP/tabs/spectrum.csv" ]; then ok "inspect --norms --ablate --out: both tables, no defaults"
else fail "inspect --norms --ablate --out: $(cat "$TMP/err")"; fi

# --states and --dump measure the intervened model: an ablated channel's
# states are zero in the dump, and only the ablated layer's norms move
if "$SSMLAB" inspect "${M[@]}" --text hello --ablate 1:3 --states --dump "$TMP/ab.st" >"$TMP/ab.csv" 2>"$TMP/err" &&
    "$SSMLAB" inspect "${M[@]}" --text hello --states >"$TMP/clean.csv" 2>>"$TMP/err" &&
    "$PY" - "$TMP/ab.csv" "$TMP/clean.csv" "$TMP/ab.st" <<'PY'
import csv, io, sys
sys.path.insert(0, "tests/ref")
import mamba_ref as ref
def norms(path):
    text = open(path).read().split("\n\n")
    rows = [r for b in text for r in csv.DictReader(io.StringIO(b.strip("\n"))) if r.get("kind") == "norm"]
    return {(r["layer"], r["pos"]): float(r["value"]) for r in rows}
ab, clean = norms(sys.argv[1]), norms(sys.argv[2])
assert ab and ab.keys() == clean.keys()
assert all(ab[k] == clean[k] for k in ab if k[0] == "0"), "layer 0 is before the ablation"
assert all(ab[k] < clean[k] for k in ab if k[0] == "1"), "layer 1 loses channel 3's states"
h = ref.read_safetensors(sys.argv[3])["layers.1.h"]
assert float(abs(h[:, :, 3, :]).max()) == 0.0 and float(abs(h[:, :, 4, :]).max()) > 0
PY
then ok "inspect --ablate with --states and --dump: the tables and the dump see the ablation"
else fail "inspect --ablate --states --dump: $(cat "$TMP/err")"; fi

# ---- Mamba-2: heads, entries p*N+n of a head's (8, 4) state, A_h
tiny_train "$TMP/m2" arch=mamba2 head_dim=8 n_groups=2 chunk_size=4 || { fail "tiny Mamba-2 run"; finish; }
M2=("$SSMLAB" eval --model "$TMP/m2" --threads 1 --tokens "$TOK")
refused 64 "ablate 0:4: head 4 is out of range \(the model has 0 to 3\)" "${M2[@]}" --ablate 0:4
refused 64 "ablate 1:0:32: state entry p\*N\+n 32 is out of range \(the model has 0 to 31\)" "${M2[@]}" --ablate 1:0:32
refused 64 "pin 0:1:1: entry of the head's scalar A \(pin L:H:VALUE\) 1 is out of range" "${M2[@]}" --pin 0:1:1:-1
if "${M2[@]}" --ablate 0:1,1:2:31 --pin 1:3:0 >"$TMP/m2.csv" 2>"$TMP/m2.err" &&
    grep -q "^# interventions: ablate 0:1, ablate 1:2:31, pin 1:3=0$" "$TMP/m2.err" &&
    check "$TMP/m2.csv" "
assert ','.join(cols) == '$COLS', cols
assert len(r) == 10 and max(float(x['kl']) for x in r) > 0
assert total['delta_loss'] != '' and float(total['delta_loss']) != 0
"; then ok "Mamba-2 eval: a head, an entry and a pinned A_h change the loss"
else fail "Mamba-2 eval --ablate --pin: $(cat "$TMP/m2.err")"; fi
if "${M2[@]}" --patch 1:3:state --patch-tokens "$TOK" >"$TMP/m2self.csv" 2>"$TMP/err" &&
    check "$TMP/m2self.csv" "
assert all(x['kl'] == '0' and x['dlogp'] in ('0', '') for x in r), r
"; then ok "Mamba-2 eval: a self-patch of a state changes nothing"
else fail "Mamba-2 eval self-patch: $(cat "$TMP/err")"; fi
if "$SSMLAB" inspect --model "$TMP/m2" --threads 1 --tokens "$TOK" --ablate 1:2 --dump "$TMP/m2.safetensors" \
        >/dev/null 2>"$TMP/err" && $PY - "$TMP/m2.safetensors" <<'PY'
import sys
sys.path.insert(0, "tests/ref")
import mamba_ref as ref
h = ref.read_safetensors(sys.argv[1])["layers.1.h"]          # (B, L, H, P, N)
assert h.shape == (2, 5, 4, 8, 4), h.shape
assert float(abs(h[:, :, 2]).max()) == 0.0 and float(abs(h[:, :, 1]).max()) > 0
PY
then ok "Mamba-2 inspect --ablate --dump: the ablated head's states are zero"
else fail "Mamba-2 inspect --ablate --dump: $(cat "$TMP/err")"; fi
finish
