#!/usr/bin/env bash
# outputs.sh — outputs never destroy what they replace: --save-logits
# /dev/full (a node of its device) exits 74 and stays a device; a symlinked output
# replaces its target and stays a link; a FIFO is written through; a
# 254-character name works; a directory as output names the path; a save
# that fills a 2 MiB tmpfs leaves the previous checkpoint loadable (when
# mount works here, else skipped with a line saying so).
. "$(dirname "$0")/lib.sh"
tiny_train "$TMP/run" || fail "tiny run"
eval_to() { "$SSMLAB" eval --model "$TMP/run" --tokens 1,2,3 --save-logits "$1" >/dev/null; }
is_npy() { [ "$(head -c 6 "$1" | tail -c 5)" = NUMPY ]; }

# /dev/full's device (1, 7) in a node of our own when we may make one (as
# root, a writer that replaces devices would replace the real /dev/full),
# else /dev/full itself (which a non-root writer cannot replace)
full=/dev/full
mknod -m 666 "$TMP/full" c 1 7 2>/dev/null && full=$TMP/full
if [ -c "$full" ]; then
    expect_error 74 "$full: write failed: No space left on device" eval_to "$full"
    [ -c "$full" ] && ok "$full is still a character device" || fail "$full was replaced"
else
    echo "skip: no /dev/full here"
fi

echo old >"$TMP/target.npy"
ln -s target.npy "$TMP/link.npy"
eval_to "$TMP/link.npy" 2>"$TMP/err" || fail "symlinked output: $(cat "$TMP/err")"
[ -L "$TMP/link.npy" ] && ok "the link is still a link" || fail "the link was replaced"
is_npy "$TMP/target.npy" && ok "its target holds the logits" || fail "target not written"

mkfifo "$TMP/pipe.npy"
timeout 10 cat "$TMP/pipe.npy" >"$TMP/from_pipe" &   # bounded: a replaced FIFO gets no writer
eval_to "$TMP/pipe.npy" 2>"$TMP/err" || fail "FIFO output: $(cat "$TMP/err")"
wait
[ -p "$TMP/pipe.npy" ] && is_npy "$TMP/from_pipe" && ok "FIFO written through" || fail "FIFO replaced or empty"

long=$(printf 'a%.0s' $(seq 1 250)).npy
eval_to "$TMP/$long" 2>"$TMP/err" && is_npy "$TMP/$long" && ok "254-character name" \
    || fail "254-character name: $(cat "$TMP/err")"

mkdir "$TMP/dir.npy"
expect_error 73 'dir.npy: is a directory' eval_to "$TMP/dir.npy"
expect_error 73 'missing/x.npy: cannot create in' eval_to "$TMP/missing/x.npy"
[ -z "$(ls -A "$TMP" | grep '^\.ssmlab')" ] && ok "no temporary files left" || fail "leftovers: $(ls -A "$TMP")"

# A checkpoint of ~1.3 MB in a 2 MiB tmpfs: the first save fits, the second
# cannot, and must leave the first whole.
mnt="$TMP/mnt"
mkdir "$mnt"
if mount -t tmpfs -o size=2m tmpfs "$mnt" 2>/dev/null; then
    trap 'umount "$mnt" 2>/dev/null; rm -rf "$TMP"' EXIT
    tiny_corpus "$TMP/c.txt"
    "$SSMLAB" train d_model=80 n_layer=2 d_state=4 seq_len=16 batch_size=2 steps=4 save_every=2 warmup=1 \
        eval_every=0 eval_batches=1 threads=1 data="$TMP/c.txt" out="$mnt/run" >/dev/null 2>"$TMP/full.err"
    rc=$?
    [ "$rc" -eq 74 ] && grep -q 'No space left on device' "$TMP/full.err" && ok "full disk: exit 74" \
        || fail "full disk: exit $rc: $(grep -v '^#' "$TMP/full.err")"
    "$SSMLAB" train d_model=80 n_layer=2 d_state=4 seq_len=16 batch_size=2 steps=3 warmup=1 eval_every=0 \
        eval_batches=1 threads=1 data="$TMP/c.txt" out="$TMP/after" resume="$mnt/run" >/dev/null 2>"$TMP/res.err" \
        && grep -q "resumed $mnt/run at step 2" "$TMP/res.err" && ok "the step-2 checkpoint survives and resumes" \
        || fail "after a full disk: $(grep -v '^#' "$TMP/res.err")"
    step=$(/usr/bin/python3 -c 'import json, struct, sys
b = open(sys.argv[1], "rb").read(1 << 20); n = struct.unpack("<Q", b[:8])[0]
print(json.loads(b[8:8 + n])["__metadata__"]["ssmlab.step"])' "$mnt/run/model.safetensors")
    # (the model file fits beside the old checkpoint, the optimizer state
    # does not: renamed one by one, the weights would be step 4's)
    [ "$step" = 2 ] && ok "model.safetensors is still step 2's" || fail "model.safetensors is at step $step"
    [ -f "$mnt/run/train.csv" ] && ok "train.csv kept" || fail "train.csv lost"
    umount "$mnt"
else
    echo "skip: cannot mount a 2 MiB tmpfs here (not root, or no permission); the unit test injects the failure instead"
fi
finish
