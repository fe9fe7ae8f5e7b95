#!/usr/bin/env bash
# mpi_train.sh — data-parallel training under mpirun on loopback: two ranks
# give the loss curve of one process (1e-5 relative) for a language model
# with an uneven split (B = 3) and gradient accumulation, and for MQAR,
# whose slices score different numbers of targets; a checkpoint written
# by two ranks resumes in one process with the same next losses; SIGTERM
# to one rank saves one resumable checkpoint and stops both; rank 0 alone
# writes train.csv.  Skipped, with a line, without mpirun.
. "$(dirname "$0")/lib.sh"
mpi_or_skip
tiny_corpus "$TMP/c.txt"
lm=(d_model=16 n_layer=2 d_state=4 seq_len=16 batch_size=3 grad_accum=2 steps=6 warmup=2 eval_every=3
    eval_batches=3 log_every=1 threads=1 seed=7 format=csv data="$TMP/c.txt")
mq=(task=mqar vocab_size=16 mqar_vocab=16 mqar_len=8 mqar_pairs=2 d_model=16 n_layer=1 d_state=4 batch_size=5
    steps=6 warmup=2 eval_every=3 eval_batches=0 mqar_val_examples=12 log_every=1 threads=1 seed=3 format=csv)

# ---- the loss curve of P = 2 is that of P = 1
for t in lm mq; do
    declare -n args=$t
    "$SSMLAB" train "${args[@]}" out="$TMP/$t.1" >"$TMP/$t.1.csv" 2>"$TMP/$t.1.err" || fail "$t alone: $(tail -2 "$TMP/$t.1.err")"
    mpi_run 2 "$SSMLAB" train "${args[@]}" out="$TMP/$t.2" >"$TMP/$t.2.csv" 2>"$TMP/$t.2.err" \
        || fail "$t on 2 ranks: $(grep -v '^#' "$TMP/$t.2.err" | tail -3)"
    d=$(same_losses "$TMP/$t.1.csv" "$TMP/$t.2.csv") && ok "$t: P = 2 losses equal P = 1 ($d)" \
        || fail "$t: P = 2 losses differ from P = 1: $d"
    grep -q '^# data parallel: 2 ranks' "$TMP/$t.2.err" && ok "$t: two ranks announced" || fail "$t: no data-parallel line"
done
[ "$(grep -c '^1,train' "$TMP/lm.2.csv")" -eq 1 ] && [ "$(grep -c '^1,train' "$TMP/lm.2/train.csv")" -eq 1 ] \
    && ok "rank 0 alone writes the rows and train.csv" || fail "rows written twice: $(cat "$TMP/lm.2.csv")"

# ---- a checkpoint of P = 2 resumes under P = 1 with the same next losses
mpi_run 2 "$SSMLAB" train "${lm[@]}" stop_at=3 out="$TMP/half" >/dev/null 2>"$TMP/half.err" \
    || fail "P = 2 to step 3: $(grep -v '^#' "$TMP/half.err" | tail -3)"
"$SSMLAB" train "${lm[@]}" resume="$TMP/half" out="$TMP/resumed" >"$TMP/resumed.csv" 2>"$TMP/resumed.err" \
    || fail "resume under P = 1: $(tail -2 "$TMP/resumed.err")"
grep -q "resumed $TMP/half at step 3" "$TMP/resumed.err" && ok "resumed at step 3" || fail "no resume message"
d=$(same_losses "$TMP/lm.1.csv" "$TMP/resumed.csv" 4) && ok "P = 2 checkpoint, P = 1 resume: steps 4-6 as straight ($d)" \
    || fail "resumed losses differ: $d"
/usr/bin/python3 - "$TMP/lm.1/model.safetensors" "$TMP/lm.2/model.safetensors" <<'PY' \
    && ok "P = 2 and P = 1 checkpoints agree (float reduction order)" || fail "checkpoints differ"
import json, struct, sys
def tensors(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8+n])
    return {k: struct.unpack('<%df' % ((v['data_offsets'][1] - v['data_offsets'][0]) // 4),
                             b[8+n+v['data_offsets'][0]:8+n+v['data_offsets'][1]]) for k, v in h.items() if k != '__metadata__'}
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
worst = max(abs(x - y) for k in a for x, y in zip(a[k], b[k]))
print('max abs weight difference %.2e' % worst); sys.exit(0 if a.keys() == b.keys() and worst < 1e-5 else 1)
PY

# ---- SIGTERM to one rank: one resumable checkpoint, both ranks stop
mpi_run 2 "$SSMLAB" train "${lm[@]}" steps=1000000 eval_every=0 log_every=100000 out="$TMP/intr" \
    >/dev/null 2>"$TMP/intr.err" &
job=$!
for _ in $(seq 1 100); do grep -q '^# history' "$TMP/intr.err" && break; sleep 0.2; done
sleep 1
rank1=$(pgrep -f -- "out=$TMP/intr" | while read -r p; do [ "$(cat /proc/"$p"/comm 2>/dev/null)" = ssmlab ] \
    && grep -qz '^OMPI_COMM_WORLD_RANK=1$' /proc/"$p"/environ && echo "$p"; done | head -1)
[ -n "$rank1" ] && kill -TERM "$rank1"
wait $job
rc=$?
[ -n "$rank1" ] && [ "$rc" -ne 0 ] && grep -q '^# saved .* at step' "$TMP/intr.err" \
    && [ "$(grep -c '^# saved' "$TMP/intr.err")" -eq 1 ] && ok "SIGTERM to rank 1: rank 0 saved once, job stopped (exit $rc)" \
    || fail "SIGTERM to rank 1 (pid '${rank1}'): exit $rc: $(grep -v '^#   ' "$TMP/intr.err" | tail -4)"
step=$(sed -n 's/^# saved .* at step \([0-9]*\)$/\1/p' "$TMP/intr.err")
"$SSMLAB" train "${lm[@]}" steps=$((${step:-0} + 2)) eval_every=0 resume="$TMP/intr" out="$TMP/intr2" \
    >/dev/null 2>"$TMP/intr2.err" && grep -q "resumed $TMP/intr at step $step" "$TMP/intr2.err" \
    && ok "the interrupted checkpoint resumes (step $step)" || fail "resume after SIGTERM: $(tail -2 "$TMP/intr2.err")"
finish
