#!/usr/bin/env bash
# hostile_inputs.sh — files whose headers claim more than they hold, gzip
# bombs, FIFOs and devices as data, oversized models and overlong lines all
# end as one line naming the file, with exit 65 (corrupt), 66 (not a regular
# file) or 71 (too big for memory): never a hang, a crash or a huge
# allocation (engine/bound.h).
. "$(dirname "$0")/lib.sh"
tiny_train "$TMP/ck" || { fail "tiny training run"; finish; }
T="timeout 60"

# one_line CODE PATTERN CMD...: expect_error, and stderr is a single line
one_line() {
    expect_error "$@"
    local n; n=$(grep -vc '^#' "$TMP/err")
    [ "$n" -eq 1 ] || fail "$3: $n lines on stderr: $(cat "$TMP/err")"
}

# npy FILE DICT NDATA: an npy v1.0 file with header dict DICT and NDATA zero bytes
npy() {
    /usr/bin/python3 - "$@" <<'PY'
import struct, sys
p, d, n = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
open(p, 'wb').write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(d)) + d + b'\0' * n)
PY
}
# a one-step classifier on the IDX fixture, for --inputs
/usr/bin/python3 "$(dirname "$0")/../data/make_idx_fixture.py" "$TMP/img" || { fail "fixture"; finish; }
"$SSMLAB" train task=classify dataset=mnist data="$TMP/img" patch=2 d_model=16 n_layer=2 d_state=4 \
    threads=1 batch_size=4 steps=1 warmup=1 eval_every=0 eval_batches=0 out="$TMP/cls" \
    >/dev/null 2>"$TMP/cls.err" || { fail "classifier: $(tail -1 "$TMP/cls.err")"; finish; }
ev() { $T "$SSMLAB" eval --model "$TMP/cls" --threads 1 "$@"; }

# npy: a one-quote descr (read past the header), 2^60 elements, 4 TB in 80 bytes
npy "$TMP/descr.npy" "{'descr': '" 0
one_line 65 "$TMP/descr.npy: npy header has no descr" ev --inputs "$TMP/descr.npy"
npy "$TMP/e60.npy" "{'descr': '<f4', 'fortran_order': False, 'shape': (1073741824, 1073741824), }" 8
one_line 65 "$TMP/e60.npy: corrupt: header claims [0-9]+ bytes, file has 8" ev --inputs "$TMP/e60.npy"
npy "$TMP/tb.npy" "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,), }" 1
one_line 65 "$TMP/tb.npy: corrupt: header claims 4398046511104 bytes, file has 1" ev --inputs "$TMP/tb.npy"

# a long path keeps its reason (messages used to be cut at 1024 bytes)
long=$TMP; for i in $(seq 1 14); do long=$long/$(printf 'd%.0s' $(seq 1 200)); done
mkdir -p "$long" && cp "$TMP/descr.npy" "$long/x.npy"
one_line 65 "/x.npy: npy header has no descr$" ev --inputs "$long/x.npy"

# data that is not a regular file
mkfifo "$TMP/fifo"
one_line 66 "$TMP/fifo: not a regular file \(a FIFO\)" ev --inputs "$TMP/fifo"
one_line 66 "/dev/zero: not a regular file" $T "$SSMLAB" train data=/dev/zero steps=1 threads=1 out="$TMP/z"
one_line 66 "$TMP/fifo: not a regular file \(a FIFO\)" $T "$SSMLAB" train data="$TMP/fifo" steps=1 threads=1 out="$TMP/f"

# images: an IDX header asking for 27.5 GiB with 3 data bytes; a CIFAR gzip bomb
mkdir -p "$TMP/idx" "$TMP/cifar"
printf '\0\0\10\3\0\0\140\140\0\0\40\351\0\0\0\216abc' >"$TMP/idx/train-images-idx3-ubyte"
printf '\0\0\10\1\0\0\140\140' >"$TMP/idx/train-labels-idx1-ubyte"
one_line 65 "train-images-idx3-ubyte: corrupt: header claims 29516347200 bytes, file has 3" \
    $T "$SSMLAB" train task=classify dataset=mnist data="$TMP/idx" steps=1 threads=1 out="$TMP/i"
head -c $((3073 * 8000)) /dev/zero | gzip -9 >"$TMP/cifar/data_batch_1.bin"
one_line 65 "data_batch_1.bin: corrupt: gzip data grows past" \
    $T "$SSMLAB" train task=classify dataset=cifar10 data="$TMP/cifar" steps=1 threads=1 out="$TMP/c"

# checkpoints: a pickle memo index of 0xFFFFFF, a tokenizer id of 16777215,
# a config.json whose model cannot fit in memory
mkdir -p "$TMP/pt" && cp "$TMP/ck/config.json" "$TMP/pt/"
/usr/bin/python3 - "$TMP/pt/pytorch_model.bin" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_STORED) as z:
    z.writestr('archive/data.pkl', b'\x80\x02}r\xff\xff\xff\x00.')
PY
one_line 65 "$TMP/pt/pytorch_model.bin: corrupt: data.pkl memo index 16777215" \
    $T "$SSMLAB" eval --model "$TMP/pt" --tokens 1,2 --threads 1
rm -rf "$TMP/tk" && cp -r "$TMP/ck" "$TMP/tk"
printf '{"pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": {"a": 16777215}, "merges": []}}' \
    >"$TMP/tk/tokenizer.json"
one_line 65 "$TMP/tk/tokenizer.json: corrupt: token id 16777215" \
    $T "$SSMLAB" generate --model "$TMP/tk" --prompt a --max-tokens 1 --threads 1
rm -rf "$TMP/big" && cp -r "$TMP/ck" "$TMP/big"
/usr/bin/python3 - "$TMP/big/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c.update(d_model=65536, n_layer=1024, vocab_size=1 << 24)
json.dump(c, open(sys.argv[1], 'w'))
PY
one_line 71 "$TMP/big/config.json: a model of [0-9]+ parameters needs [0-9]+ MB, the machine has [0-9]+ MB available" \
    $T "$SSMLAB" eval --model "$TMP/big" --tokens 1,2 --threads 1

# a run config whose comment outgrows the old line buffer stays a comment
tiny_corpus "$TMP/corpus.txt"
{ printf '#%.0s' $(seq 1 1087); echo 'lr = 1e+09'; echo "data = $TMP/corpus.txt"; } >"$TMP/long.conf"
if $T "$SSMLAB" train "$TMP/long.conf" d_model=16 n_layer=2 d_state=4 seq_len=16 batch_size=2 steps=1 \
    warmup=1 eval_every=0 eval_batches=1 threads=1 out="$TMP/lc" >"$TMP/lc.csv" 2>"$TMP/err" \
    && grep -q '^#  *lr = 0\.003$' "$TMP/err"; then ok "a 1 KB comment stays a comment"
else fail "long comment: $(grep -i 'lr' "$TMP/err" | head -2) $(tail -1 "$TMP/err")"; fi
finish
