#!/bin/bash
# memory.sh — a checkpoint loads in about its own size: the loader drops
# the file's mapped pages as it converts them, so a model is not resident
# twice (the mapping and the parameters).  Peak RSS of `inspect --spectrum`
# (load, no forward) and of `generate --weights f32` (load, prefill, two
# steps) on a ~130 MB checkpoint must stay below its size plus 48 MB;
# holding the mapping too would need twice the size.  With bf16 weights
# (the default of generate) the model takes half: `generate --weights bf16`
# on the F32 checkpoint and on the same weights saved as BF16 must stay
# below half the F32 size plus 32 MB, which a float32 copy of any large
# tensor (the embedding alone is 103 MB) would break.  The prefill of a
# 512-token prompt on a deep, narrow model (24 layers, D 256) runs lean:
# one layer's activations and two slots of the residual stream take about
# 12 MB over loading alone (limit 20 MB), where keeping every layer's
# residual and mixer output, as a measuring forward does, takes 39 MB.
# The lab's inspect mode (`ssmlab tui --model`, a script that waits for
# the measurements: norms, hidden attention, influence through the
# input-only backward, spectrum, flow) on a mamba-130m-shaped checkpoint
# (D 768, 24 layers, vocabulary 50277; 517 MB in F32) holds its weights
# once (the probe runs on the model's) and no training buffers (no
# gradients, no AdamW moments until the first step).  In bf16 its peak
# must stay below half the F32 size plus 128 MB (measured 318 MB; a
# second bf16 copy of the weights, 258 MB, breaks it, and so does a
# float32 copy of the embedding, 154 MB); in f32 below the size plus
# 128 MB (measured 556 MB), far under the 2.1 GB of weights, gradients
# and two moments, which any one of these (517 MB) breaks, as does a
# second copy of the weights or parameter gradients for the probe.
# (Before issue 16's lab work: 580 MB in bf16, 3.66 GB in f32.)
# A Mamba-2 checkpoint generates in bf16 (its default) under half the F32
# size plus 32 MB, and under 0.6 of its f32 peak.
. "$(dirname "$0")/lib.sh"

MID="$TMP/mid" MID16="$TMP/mid16"
if ! /usr/bin/python3 - "$MID" "$MID16" "$(dirname "$0")/../ref" <<'PY'
import sys
sys.path.insert(0, sys.argv[3])
import mamba_ref as ref
cfg = ref.Config(d_model=512, n_layer=4, vocab_size=50277)
p = ref.init_params(cfg, seed=1, perturb=False)
ref.write_checkpoint(sys.argv[1], cfg, p)
ref.write_checkpoint(sys.argv[2], cfg, p, dtype="BF16")
PY
then fail "cannot write the checkpoints"; finish; fi
size=$(stat -c %s "$MID/model.safetensors")
limit=$((size + 48 * 1024 * 1024))
limit16=$((size / 2 + 32 * 1024 * 1024))

peak() { # peak RSS in bytes of the command, or 0
    /usr/bin/time -v "$@" >/dev/null 2>"$TMP/time" || { cat "$TMP/time" >&2; echo 0; return; }
    echo $(( $(sed -n 's/.*Maximum resident set size (kbytes): //p' "$TMP/time") * 1024 ))
}

gen="generate --tokens 1,2,3,4,5 --max-tokens 2"
for what in "inspect --spectrum" "$gen --weights f32"; do
    rss=$(peak "$SSMLAB" ${what%% *} --model "$MID" --threads 1 ${what#* })
    if [ "$rss" -gt 0 ] && [ "$rss" -lt "$limit" ]; then ok "$what: peak RSS $rss < checkpoint $size + 48 MB"
    else fail "$what: peak RSS $rss, checkpoint $size bytes (limit $limit)"; fi
done
for dir in "$MID" "$MID16"; do
    what="$gen --weights bf16 ($(basename "$dir"))"
    rss=$(peak "$SSMLAB" generate --model "$dir" --threads 1 ${gen#* } --weights bf16)
    if [ "$rss" -gt 0 ] && [ "$rss" -lt "$limit16" ]; then ok "$what: peak RSS $rss < F32 checkpoint $size / 2 + 32 MB"
    else fail "$what: peak RSS $rss, F32 checkpoint $size bytes (limit $limit16)"; fi
done
# Mamba-2 the same way: a ~130 MB mamba2 checkpoint (D 512, 4 layers, head_dim
# 64, d_state 64) generates in bf16 below half its size plus 32 MB, and
# below 0.6 of the peak with --weights f32
M2="$TMP/m2"
if /usr/bin/python3 - "$M2" "$(dirname "$0")/../ref" <<'PY'
import sys
sys.path.insert(0, sys.argv[2])
import mamba2_ref as ref
cfg = ref.Config(d_model=512, n_layer=4, vocab_size=50277, d_state=64, head_dim=64, chunk_size=64)
ref.write_checkpoint(sys.argv[1], cfg, ref.init_params(cfg, seed=1))
PY
then
    size2=$(stat -c %s "$M2/model.safetensors")
    r32=$(peak "$SSMLAB" generate --model "$M2" --threads 1 ${gen#* } --weights f32)
    r16=$(peak "$SSMLAB" generate --model "$M2" --threads 1 ${gen#* })
    lim=$((size2 / 2 + 32 * 1024 * 1024))
    if [ "$r16" -gt 0 ] && [ "$r16" -lt "$lim" ] && [ $((10 * r16)) -lt $((6 * r32)) ]; then
        ok "mamba2 $gen (bf16 by default): peak RSS $r16 < F32 checkpoint $size2 / 2 + 32 MB and 0.6 of f32's $r32"
    else fail "mamba2 $gen: bf16 peak RSS $r16, f32 $r32, F32 checkpoint $size2 (limit $lim)"; fi
else fail "cannot write the mamba2 checkpoint"; fi
random_checkpoint() { # DIR D_MODEL N_LAYER VOCAB: mamba_ssm-initialised F32 weights
    /usr/bin/python3 - "$@" "$(dirname "$0")/../ref" <<'PY'
import sys
sys.path.insert(0, sys.argv[5])
import mamba_ref as ref
cfg = ref.Config(d_model=int(sys.argv[2]), n_layer=int(sys.argv[3]), vocab_size=int(sys.argv[4]))
ref.write_checkpoint(sys.argv[1], cfg, ref.init_params(cfg, seed=1, perturb=False))
PY
}
DEEP="$TMP/deep"
if random_checkpoint "$DEEP" 256 24 256; then
    base=$(peak "$SSMLAB" inspect --spectrum --model "$DEEP" --threads 1)
    rss=$(peak "$SSMLAB" generate --model "$DEEP" --weights f32 --threads 1 --tokens "$(seq -s, 1 255),$(seq -s, 1 255),1,2" --max-tokens 2)
    grow=$(( rss - base ))
    if [ "$base" -gt 0 ] && [ "$rss" -gt 0 ] && [ "$grow" -lt $((20 * 1024 * 1024)) ]; then
        ok "512-token prefill on 24 layers, D 256: peak RSS $rss, $grow bytes over loading alone (< 20 MB)"
    else fail "512-token prefill on 24 layers, D 256: peak RSS $rss, $grow bytes over loading alone ($base), limit 20 MB"; fi
else fail "cannot write the deep checkpoint"; fi
BIG="$TMP/m130"
if random_checkpoint "$BIG" 768 24 50277; then
    size=$(stat -c %s "$BIG/model.safetensors")
    tiny_corpus "$TMP/c.txt"
    printf 'wait-idle\nkey q\n' >"$TMP/lab.txt"
    lab_peak() { peak "$SSMLAB" tui --script "$TMP/lab.txt" --model "$BIG" --weights "$1" --text "Hi there" \
                      data="$TMP/c.txt" seq_len=64 batch_size=1 threads=2; }
    r16=$(lab_peak bf16)
    r32=$(lab_peak f32)
    echo "# lab inspect mode, 130m shape: peak RSS bf16 $((r16 / 1048576)) MiB, f32 $((r32 / 1048576)) MiB" >&2
    lim=$((size / 2 + 128 * 1024 * 1024))
    if [ "$r16" -gt 0 ] && [ "$r16" -lt "$lim" ]; then ok "the lab inspects 130m in bf16: peak RSS $r16 < F32 checkpoint $size / 2 + 128 MB"
    else fail "the lab inspects 130m in bf16: peak RSS $r16, F32 checkpoint $size (limit $lim: one bf16 copy of the weights)"; fi
    lim=$((size + 128 * 1024 * 1024))
    if [ "$r32" -gt 0 ] && [ "$r32" -lt "$lim" ]; then
        ok "the lab inspects 130m in f32: peak RSS $r32 < checkpoint $size + 128 MB (weights, gradients, moments: $((4 * size)))"
    else fail "the lab inspects 130m in f32: peak RSS $r32, checkpoint $size (limit $lim: the weights once, no training buffers)"; fi
else fail "cannot write the 130m-shaped checkpoint"; fi
finish
