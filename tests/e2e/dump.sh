#!/usr/bin/env bash
# dump.sh — end-to-end tests of `ssmlab inspect --dump` (ssmlab-inspect(1)
# DUMP): a dump of a trained byte model with --dump-layers (only the dump,
# no tables; the names, shapes and metadata read back), every bad --dump
# or --dump-layers as one stderr line and exit 64 before the forward pass
# with no file left behind, and the memory the dump needs: the peak RSS of
# a dump of a mid-size model on 512 tokens stays below the size of the
# file it writes plus the model's.
. "$(dirname "$0")/lib.sh"
tiny_train "$TMP/ck" || { fail "tiny training run"; finish; }
inspect() { "$SSMLAB" inspect --threads 1 "$@"; }

# ---- a dump
mkdir -p "$TMP/dumps"
if inspect --model "$TMP/ck" --tokens "1,2,3;4,5,6" --dump "$TMP/dumps/d.safetensors" --dump-layers 1 \
        >"$TMP/stdout" 2>"$TMP/err"; then
    [ -s "$TMP/stdout" ] && fail "--dump alone printed tables" || ok "--dump alone writes no tables"
    /usr/bin/python3 - "$TMP/dumps/d.safetensors" "$TMP/ck" <<'PY' && ok "dump names, shapes, metadata" || fail "dump contents"
import json, struct, sys
f = open(sys.argv[1], "rb")
n, = struct.unpack("<Q", f.read(8))
h = json.loads(f.read(n))
meta = h.pop("__metadata__")
names = list(h)
want = ["embeddings"] + [f"layers.1.{t}" for t in ("residual", "u", "z", "delta", "B", "C", "h", "y", "out")] \
    + ["norm_f", "logits"]
assert names == want, names
assert h["layers.1.h"]["shape"] == [2, 3, 32, 4], h["layers.1.h"]
assert h["logits"]["shape"][:2] == [2, 3], h["logits"]
assert meta["ssmlab.format"] == "ssmlab-dump 1" and meta["ssmlab.input"] == "1,2,3;4,5,6", meta
assert meta["ssmlab.model"] == sys.argv[2] and meta["ssmlab.layers"] == "1", meta
end = max(v["data_offsets"][1] for v in h.values())
f.seek(0, 2)
assert f.tell() == 8 + n + end, "file size"
PY
else
    fail "inspect --dump: $(cat "$TMP/err")"
fi
[ -z "$(ls -A "$TMP/dumps" | grep -v '^d.safetensors$')" ] && ok "no temporary file left" || fail "left: $(ls -A "$TMP/dumps")"

# ---- bad specs: one line, 64, before the forward, nothing written (and
# --inputs, which a token model refuses)
bad() {   # bad PATTERN ARGS...
    local pattern=$1; shift
    expect_error 64 "$pattern" inspect --model "$TMP/ck" --tokens 1,2,3 "$@"
    local lines; lines=$(grep -vc '^#' "$TMP/err")
    [ "$lines" -eq 1 ] || fail "$*: $lines message lines"
}
bad "--dump $TMP/nodir/x.safetensors: the directory $TMP/nodir does not exist" --dump "$TMP/nodir/x.safetensors"
bad "--dump $TMP/dumps: is a directory" --dump "$TMP/dumps"
bad "--dump: the file name is empty" --dump ""
bad "--dump-layers 0,5: the model has layers 0 to 1" --dump "$TMP/dumps/e.safetensors" --dump-layers 0,5
for spec in "x" "0,,1" "1," "-1" "64" ""; do
    bad "dump-layers" --dump "$TMP/dumps/e.safetensors" --dump-layers "$spec"
done
bad "--dump-layers goes with --dump" --dump-layers 0
/usr/bin/python3 -c 'import numpy, sys; numpy.save(sys.argv[1], numpy.zeros((2, 3, 1), numpy.float32))' "$TMP/x.npy"
expect_error 64 "--inputs: the model in $TMP/ck takes token ids" inspect --model "$TMP/ck" --inputs "$TMP/x.npy" \
    --dump "$TMP/dumps/e.safetensors"
[ ! -e "$TMP/dumps/e.safetensors" ] && [ "$(ls -A "$TMP/dumps")" = d.safetensors ] \
    && ok "bad specs leave no file" || fail "bad specs left: $(ls -A "$TMP/dumps")"

# ---- memory: streamed, not held.  A 4-layer d_model 256 model on 512
# tokens writes ~90 MB; holding the dump would need that on top of the model.
if [ -x /usr/bin/time ] && /usr/bin/python3 - "$TMP/mid" "$(dirname "$0")/../ref" <<'PY'
import sys
sys.path.insert(0, sys.argv[2])
import mamba_ref as ref
cfg = ref.Config(d_model=256, n_layer=4, d_state=16, d_conv=4, expand=2, vocab_size=256)
ref.write_checkpoint(sys.argv[1], cfg, ref.init_params(cfg, seed=1))
PY
then
    ids=$(seq 0 511 | awk '{print $1 % 256}' | paste -sd,)
    if /usr/bin/time -v "$SSMLAB" inspect --threads 1 --model "$TMP/mid" --tokens "$ids" \
            --dump "$TMP/mid.safetensors" >/dev/null 2>"$TMP/time"; then
        rss=$(( $(sed -n 's/.*Maximum resident set size (kbytes): //p' "$TMP/time") * 1024 ))
        file=$(stat -c %s "$TMP/mid.safetensors")
        model=$(stat -c %s "$TMP/mid/model.safetensors")
        [ "$rss" -lt $((file + model)) ] && ok "peak RSS $rss < dump $file + model $model bytes" \
            || fail "peak RSS $rss >= dump $file + model $model bytes"
    else
        fail "mid-size dump: $(tail -3 "$TMP/time")"
    fi
else
    fail "cannot build the mid-size checkpoint (or no /usr/bin/time)"
fi

# ---- Mamba-2 (4 heads of 8, 2 groups, d_state 4): its nine tensors per layer
tiny_train "$TMP/m2" arch=mamba2 head_dim=8 n_groups=2 chunk_size=4 || { fail "tiny Mamba-2 run"; finish; }
if "$SSMLAB" inspect --threads 1 --model "$TMP/m2" --tokens '1,2,3,4,5,6,7;7,6,5,4,3,2,1' \
        --dump "$TMP/m2.safetensors" --dump-layers 1 >/dev/null 2>"$TMP/err" &&
    /usr/bin/python3 - "$TMP/m2.safetensors" "$(dirname "$0")/../ref" <<'PY'
import sys
sys.path.insert(0, sys.argv[2])
import mamba_ref as ref
header, _ = ref.read_safetensors_header(sys.argv[1])
shapes = {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}
want = {"embeddings": (2, 7, 16), "layers.1.residual": (2, 7, 16), "layers.1.x": (2, 7, 32),
        "layers.1.z": (2, 7, 32), "layers.1.dt": (2, 7, 4), "layers.1.B": (2, 7, 2, 4),
        "layers.1.C": (2, 7, 2, 4), "layers.1.h": (2, 7, 4, 8, 4), "layers.1.y": (2, 7, 32),
        "layers.1.out": (2, 7, 16), "norm_f": (2, 7, 16), "logits": (2, 7, 256)}
assert list(shapes) == list(want) and shapes == want, shapes
t = ref.read_safetensors(sys.argv[1])
assert float(t["layers.1.dt"].min()) > 0 and float(abs(t["layers.1.h"]).max()) > 0
PY
then ok "Mamba-2 dump: residual x z dt B C h y out with per-head and per-group shapes"
else fail "Mamba-2 dump: $(cat "$TMP/err")"; fi
finish
