#!/usr/bin/env bash
# faults.sh — end-to-end tests of hostile settings and numerical faults:
# optimizer and schedule keys out of their ranges are refused before
# training (exit 78, one line with key, value and range); a diverging run
# stops at the first non-finite loss, names the step and never saves over
# the last good checkpoint; eval refuses a NaN loss, and a checkpoint with
# NaN weights is refused on load with the tensor's name; and the man
# pages' EXIT STATUS sections list every code of their commands.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.sh

# 1. Each value once trained silently wrong or died of NaN: refused.
tiny_corpus "$TMP/corpus.txt"
for kv in min_lr=-1 beta1=2 eps=0 eps=-1e-3 grad_clip=nan grad_clip=-1 lr=inf beta2=1 weight_decay=nan; do
    key=${kv%%=*}
    expect_error 78 "command line: $key = [^ ]+ is out of range [[(]" \
        "$SSMLAB" train d_model=16 n_layer=1 steps=1 threads=1 data="$TMP/corpus.txt" out="$TMP/never" "$kv"
done
expect_error 78 "min_lr = 0.1 is out of range \[0, lr = 0.01\]" \
    "$SSMLAB" train steps=1 data="$TMP/corpus.txt" out="$TMP/never" lr=0.01 min_lr=0.1
[ -e "$TMP/never" ] && fail "a refused config created its out directory" || ok "nothing was written"

# set_tensor FILE NAME VALUE [all]: write VALUE (a Python float) into the
# first element, or every element, of an F32 tensor of a safetensors file
set_tensor() {
    python3 - "$@" <<'PY'
import json, struct, sys
path, name, value = sys.argv[1], sys.argv[2], float(sys.argv[3])
every = len(sys.argv) > 4
with open(path, "r+b") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    t = json.loads(f.read(n))[name]
    a, b = t["data_offsets"]
    f.seek(8 + n + a)
    f.write(struct.pack("<f", value) * ((b - a) // 4 if every else 1))
PY
}

# 2. A run that diverges stops at the first non-finite loss, names the step
# and leaves the last good checkpoint alone; once it saved step 3's weights
# (up to 1e9) over it and then died of "loss became -nan at step 4".
TT="d_model=16 n_layer=2 d_state=4 seq_len=16 batch_size=2 warmup=1 eval_every=0 eval_batches=1 threads=1"
tiny_train "$TMP/run"
cp "$TMP/run/model.safetensors" "$TMP/good.safetensors"
# shellcheck disable=SC2086
expect_error 65 "loss became -?nan at step [0-9]+ .*not saved, so .* keeps its last good checkpoint" \
    "$SSMLAB" train $TT steps=10 data="$TMP/corpus.txt" lr=1e9 save_every=1 resume="$TMP/run" out="$TMP/run"
cmp -s "$TMP/run/model.safetensors" "$TMP/good.safetensors" && ok "the good checkpoint of step 2 is kept" \
    || fail "the diverging run saved over the last good checkpoint"
if "$SSMLAB" eval --model "$TMP/run" --data "$TMP/corpus.txt" --seq-len 16 >"$TMP/eval.csv" 2>/dev/null \
    && ! grep -qi nan "$TMP/eval.csv"; then ok "the kept checkpoint evaluates to a finite loss"
else fail "the kept checkpoint: $(cat "$TMP/eval.csv")"; fi

# 3. eval never reports a NaN loss with exit status 0: weights that are
# finite but overflow (norm_f at 3e38) give exit 65 and a message.
cp -r "$TMP/run" "$TMP/huge"
set_tensor "$TMP/huge/model.safetensors" backbone.norm_f.weight 3e38 all
expect_error 65 "the loss on the validation split is -?(nan|inf)" \
    "$SSMLAB" eval --model "$TMP/huge" --data "$TMP/corpus.txt" --seq-len 16
expect_error 65 "the loss on --tokens is -?(nan|inf)" "$SSMLAB" eval --model "$TMP/huge" --tokens 72,101,108,108,111

# 4. A checkpoint with a NaN or Inf weight is refused on load, naming the tensor.
cp -r "$TMP/run" "$TMP/nan"
set_tensor "$TMP/nan/model.safetensors" backbone.layers.1.mixer.A_log nan
expect_error 65 "tensor 'backbone.layers.1.mixer.A_log' holds NaN" \
    "$SSMLAB" eval --model "$TMP/nan" --data "$TMP/corpus.txt" --seq-len 16
set_tensor "$TMP/nan/model.safetensors" backbone.layers.1.mixer.A_log inf
expect_error 65 "tensor 'backbone.layers.1.mixer.A_log' holds Inf" \
    "$SSMLAB" train $TT steps=4 data="$TMP/corpus.txt" resume="$TMP/nan" out="$TMP/nan"

# 5. Each command's man page lists, under EXIT STATUS, every code it returns.
while read -r page codes; do
    section=$(awk '/^\.Sh EXIT STATUS/ { p = 1; next } /^\.Sh / { p = 0 } p' "man/$page")
    missing=""
    for c in $codes; do echo "$section" | grep -qw "$c" || missing="$missing $c"; done
    [ -z "$missing" ] && ok "$page: EXIT STATUS lists $codes" || fail "$page: EXIT STATUS lacks$missing"
done <<'EOF2'
ssmlab.1 0 64 65 66 70 71 73 74 78 130
ssmlab-attack.1 0 64 65 66 70 71 74 78
ssmlab-generate.1 0 64 65 66 70 71 74 78
ssmlab-inspect.1 0 64 65 66 70 71 73 74 78
ssmlab-plot.1 0 64 65 66 70 71 73 74
ssmlab-sweep.1 0 64 65 66 70 71 73 74 78 127 130 137
ssmlab-tui.1 0 1 64 65 66 69 70 71 74 78 130
EOF2

finish
