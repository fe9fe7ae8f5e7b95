#!/usr/bin/env bash
# resume.sh — training N steps, saving and resuming to 2N gives the same
# losses and weights, bit for bit, as 2N steps straight (fixed threads);
# SIGINT mid-run saves a resumable checkpoint and exits 130.
. "$(dirname "$0")/lib.sh"
tiny_corpus "$TMP/c.txt"
common=(d_model=24 n_layer=2 d_state=5 seq_len=17 batch_size=3 grad_accum=2 steps=8 warmup=2
        eval_every=4 eval_batches=2 log_every=1 threads=2 seed=5 data="$TMP/c.txt")

"$SSMLAB" train "${common[@]}" out="$TMP/straight" >"$TMP/a.csv" 2>"$TMP/a.err" || fail "straight run: $(cat "$TMP/a.err")"
"$SSMLAB" train "${common[@]}" out="$TMP/half" stop_at=4 >"$TMP/b1.csv" 2>"$TMP/b1.err" || fail "first half: $(cat "$TMP/b1.err")"
"$SSMLAB" train "${common[@]}" out="$TMP/resumed" resume="$TMP/half" >"$TMP/b2.csv" 2>"$TMP/b2.err" || fail "resume: $(cat "$TMP/b2.err")"

cut -d, -f1-6 "$TMP/a.csv" >"$TMP/a.rows"
{ cut -d, -f1-6 "$TMP/b1.csv"; tail -n +2 "$TMP/b2.csv" | cut -d, -f1-6; } | grep -v '^4,val' >"$TMP/b.rows"
grep -v '^4,val' "$TMP/a.rows" >"$TMP/a2.rows"
if diff "$TMP/a2.rows" "$TMP/b.rows" >"$TMP/diff"; then ok "losses identical ($(wc -l <"$TMP/a2.rows") rows)"
else fail "losses differ:"; cat "$TMP/diff"; fi
grep -q "resumed $TMP/half at step 4" "$TMP/b2.err" && ok "resumed at step 4" || fail "no resume message"

/usr/bin/python3 - "$TMP/straight/model.safetensors" "$TMP/resumed/model.safetensors" <<'PY' && ok "weights identical" || fail "weights differ"
import json, struct, sys
def tensors(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8+n])
    return {k: b[8+n+v['data_offsets'][0]:8+n+v['data_offsets'][1]] for k, v in h.items() if k != '__metadata__'}
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
bad = [k for k in a if a[k] != b.get(k)]
print('differing tensors:', bad[:5]); sys.exit(1 if bad or a.keys() != b.keys() else 0)
PY

# Ctrl-C: a resumable checkpoint, exit 130
"$SSMLAB" train "${common[@]}" steps=100000 eval_every=0 out="$TMP/intr" >/dev/null 2>"$TMP/i.err" &
pid=$!
for _ in $(seq 1 50); do grep -q '^# model' "$TMP/i.err" && break; sleep 0.2; done
sleep 1
kill -INT $pid
wait $pid
rc=$?
[ "$rc" -eq 130 ] && ok "SIGINT exits 130" || fail "SIGINT exit code $rc: $(tail -2 "$TMP/i.err")"
grep -q "interrupted at step" "$TMP/i.err" && ok "interrupt message" || fail "no interrupt message"
"$SSMLAB" train "${common[@]}" steps=100000 stop_at=1 out="$TMP/intr2" resume="$TMP/intr" >/dev/null 2>"$TMP/i2.err" \
    && grep -q "resumed $TMP/intr at step" "$TMP/i2.err" && ok "interrupted run resumes" || fail "resume after SIGINT: $(tail -2 "$TMP/i2.err")"
[ -z "$(ls "$TMP/intr" | grep -v -E '^(config.json|model.safetensors|optimizer.safetensors|train.csv)$')" ] \
    && ok "no temporary files left" || fail "leftover files: $(ls "$TMP/intr")"
finish
