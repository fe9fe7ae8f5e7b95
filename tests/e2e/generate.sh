#!/usr/bin/env bash
# generate.sh — `ssmlab generate` end to end on tiny trained models: output
# length in bytes, tokens and JSON lines; the same seed gives the same text,
# another seed other text; greedy equals temperature 0; ids in and out for a
# model without a tokenizer; a BPE tokenizer.json in and out, stopping at
# a special token; the weight formats (bf16 by default, logged with the
# product's path; greedy tokens of bf16 and f32 agree on the torch fixture,
# whose weights bf16 holds exactly); and the errors (missing model,
# classifier, bad options, text prompt without a tokenizer, token outside
# the vocabulary).
. "$(dirname "$0")/lib.sh"
tiny_train "$TMP/ck" || { fail "tiny training run"; finish; }
gen() { "$SSMLAB" generate --model "$TMP/ck" --threads 1 "$@" 2>"$TMP/gen.err"; }

# same_output NAME FILE1 FILE2 / diff_output NAME FILE1 FILE2
same_output() { if cmp -s "$2" "$3"; then ok "$1"; else fail "$1: outputs differ"; fi; }
diff_output() { if cmp -s "$2" "$3"; then fail "$1: outputs are equal"; else ok "$1"; fi; }

# length in bytes of the text, and in lines of JSONL
gen --prompt "The quick" --max-tokens 37 --seed 5 >"$TMP/a" || fail "generate exited $?: $(cat "$TMP/gen.err")"
n=$(wc -c <"$TMP/a")
[ "$n" -eq 37 ] && ok "37 tokens give 37 bytes" || fail "37 tokens gave $n bytes"
grep -q '^# seed = 5' "$TMP/gen.err" && ok "seed logged" || fail "no seed line: $(cat "$TMP/gen.err")"
grep -q '^# sampling = temperature 1, top_p 1, top_k 0' "$TMP/gen.err" && ok "sampling logged" \
    || fail "no sampling line: $(cat "$TMP/gen.err")"
grep -qE '^# prompt: 9 tokens .* generated: 37 tokens .*tokens/s' "$TMP/gen.err" && ok "speed logged" \
    || fail "no speed line: $(cat "$TMP/gen.err")"
gen --prompt "The quick" --max-tokens 12 --format jsonl >"$TMP/j"
[ "$(wc -l <"$TMP/j")" -eq 12 ] && ok "12 JSON lines" || fail "JSONL has $(wc -l <"$TMP/j") lines"
/usr/bin/python3 - "$TMP/j" <<'PY' && ok "JSONL fields" || fail "JSONL fields: $(head -2 "$TMP/j")"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert [r["i"] for r in rows] == list(range(12))
assert all(0 <= r["token"] < 256 and r["logprob"] <= 0 and isinstance(r["text"], str) for r in rows)
PY
gen --tokens 84,104,101 --max-tokens 0 >"$TMP/z"
[ ! -s "$TMP/z" ] && ok "--max-tokens 0 prints nothing" || fail "--max-tokens 0 printed $(wc -c <"$TMP/z") bytes"

# determinism
gen --prompt "The quick" --max-tokens 37 --seed 5 >"$TMP/b"
same_output "same seed, same text" "$TMP/a" "$TMP/b"
gen --prompt "The quick" --max-tokens 37 --seed 6 >"$TMP/c"
diff_output "another seed, other text" "$TMP/a" "$TMP/c"
gen --prompt "The quick" --max-tokens 20 --seed 5 --temperature 0.7 --top-p 0.9 --top-k 50 >"$TMP/d1"
gen --prompt "The quick" --max-tokens 20 --seed 5 --temperature 0.7 --top-p 0.9 --top-k 50 >"$TMP/d2"
same_output "same seed with top-p and top-k" "$TMP/d1" "$TMP/d2"
gen --prompt "The quick" --max-tokens 20 --greedy --seed 1 >"$TMP/g1"
gen --prompt "The quick" --max-tokens 20 --greedy --seed 2 >"$TMP/g2"
gen --prompt "The quick" --max-tokens 20 --temperature 0 >"$TMP/g3"
same_output "greedy ignores the seed" "$TMP/g1" "$TMP/g2"
same_output "temperature 0 is greedy" "$TMP/g1" "$TMP/g3"
gen --tokens 84,104,101,32,113,117,105,99,107 --max-tokens 20 --greedy >"$TMP/g4"
same_output "--tokens equals the same --prompt" "$TMP/g1" "$TMP/g4"
grep -q '^# sampling = greedy' "$TMP/gen.err" && ok "greedy logged" || fail "greedy not logged: $(cat "$TMP/gen.err")"

# a model with 300 tokens and no tokenizer: ids in, ids out
tiny_train "$TMP/v300" vocab_size=300 || fail "tiny training run, vocab 300"
"$SSMLAB" generate --model "$TMP/v300" --tokens 1,299,3 --max-tokens 9 --threads 1 >"$TMP/ids" 2>/dev/null
grep -qE '^[0-9]+( [0-9]+){8}$' "$TMP/ids" && ok "ids out without a tokenizer" || fail "ids output: $(cat "$TMP/ids")"

# a BPE tokenizer.json: ids 0..255 are the bytes (GPT-2 byte characters),
# merges "T h" "Th e" "Ġ q" are 256..258, and special token <|endoftext|>
# has id SPECIAL (a byte id takes that byte out of the vocabulary)
write_tokenizer() { # write_tokenizer FILE SPECIAL
    /usr/bin/python3 - "$1" "$2" <<'PY'
import json, sys
path, special = sys.argv[1], int(sys.argv[2])
keep = set(range(33, 127)) | set(range(161, 173)) | set(range(174, 256))
chars, extra = [], 0
for b in range(256):
    chars.append(chr(b) if b in keep else chr(256 + extra)); extra += b not in keep
vocab = {chars[b]: b for b in range(256) if b != special}
merges = ["T h", "Th e", "\u0120 q"]
for i, m in enumerate(merges): vocab[m.replace(" ", "")] = 256 + i
added = [{"id": special, "content": "<|endoftext|>", "single_word": False, "lstrip": False,
          "rstrip": False, "normalized": False, "special": True}]
bl = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
model = {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
         "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
         "vocab": vocab, "merges": merges}
json.dump({"version": "1.0", "added_tokens": added, "normalizer": None, "pre_tokenizer": bl,
           "post_processor": None, "decoder": bl, "model": model}, open(path, "w"))
PY
}
tiny_train "$TMP/bpe" vocab_size=264 || fail "tiny training run, vocab 264"
write_tokenizer "$TMP/bpe/tokenizer.json" 259
bpe() { "$SSMLAB" generate --model "$TMP/bpe" --threads 1 "$@" 2>"$TMP/bpe.err"; }
bpe --prompt "The quick" --max-tokens 25 --format jsonl >"$TMP/bj" || fail "BPE generate: $(cat "$TMP/bpe.err")"
grep -q '^# prompt = 6 tokens' "$TMP/bpe.err" && ok "BPE prompt: 6 tokens" || fail "BPE prompt: $(cat "$TMP/bpe.err")"
grep -q "tokenizer $TMP/bpe/tokenizer.json" "$TMP/bpe.err" && ok "tokenizer logged" || fail "tokenizer not logged"
/usr/bin/python3 - "$TMP/bj" <<'PY' && ok "BPE tokens below 260" || fail "BPE ids: $(cat "$TMP/bj")"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert rows and all(0 <= r["token"] < 260 and "text" in r for r in rows)
PY
bpe --prompt "The quick" --max-tokens 10 --greedy >"$TMP/b1"
bpe --tokens 257,258,117,105,99,107 --max-tokens 10 --greedy >"$TMP/b2"
same_output "BPE --prompt equals its ids" "$TMP/b1" "$TMP/b2"
# generation stops at the special token: make greedy's first choice special
bpe --tokens 257,258,117,105,99,107 --max-tokens 1 --greedy --format jsonl >"$TMP/first"
x=$(sed -n 's/.*"token":\([0-9]*\).*/\1/p' "$TMP/first")
if [ -n "$x" ] && [ "$x" -lt 256 ]; then
    write_tokenizer "$TMP/bpe/tokenizer.json" "$x"
    bpe --tokens 257,258,117,105,99,107 --max-tokens 10 --greedy >"$TMP/b3"
    if [ ! -s "$TMP/b3" ] && grep -q "^# stopped at special token $x" "$TMP/bpe.err"; then ok "stops at a special token"
    else fail "special token $x: printed '$(cat "$TMP/b3")', $(cat "$TMP/bpe.err")"; fi
else
    fail "greedy's first token '$x' is not a byte"
fi

# a classifier
python_idx() {
    /usr/bin/python3 - "$1" <<'PY'
import random, struct, sys
d = sys.argv[1]; random.seed(1); n, r, c = 12, 3, 3
for split in ("train", "t10k"):
    open(f"{d}/{split}-images-idx3-ubyte", "wb").write(
        struct.pack(">IIII", 0x803, n, r, c) + bytes(random.randrange(256) for _ in range(n * r * c)))
    open(f"{d}/{split}-labels-idx1-ubyte", "wb").write(
        struct.pack(">II", 0x801, n) + bytes(random.randrange(3) for _ in range(n)))
PY
}
mkdir -p "$TMP/img" && python_idx "$TMP/img"
"$SSMLAB" train task=classify dataset=mnist data="$TMP/img" d_model=8 n_layer=1 d_state=2 batch_size=2 \
    steps=1 warmup=1 eval_every=0 eval_batches=1 threads=1 out="$TMP/cls" >/dev/null 2>"$TMP/cls.err" \
    || fail "classifier training run: $(cat "$TMP/cls.err")"

# errors
expect_error 66 "$TMP/nowhere: cannot open" "$SSMLAB" generate --model "$TMP/nowhere" --prompt hi
expect_error 78 "$TMP/cls: generation needs a language model.*classifier" \
    "$SSMLAB" generate --model "$TMP/cls" --tokens 1,2
expect_error 64 "generate: --model DIR is required" "$SSMLAB" generate --prompt hi
expect_error 64 "one of --prompt TEXT or --tokens IDS" "$SSMLAB" generate --model "$TMP/ck"
expect_error 64 "one of --prompt TEXT or --tokens IDS" "$SSMLAB" generate --model "$TMP/ck" --prompt a --tokens 1
expect_error 64 "generate: --top-p must be in \(0, 1\]" "$SSMLAB" generate --model "$TMP/ck" --prompt a --top-p 1.5
expect_error 64 "generate: --temperature must be >= 0" "$SSMLAB" generate --model "$TMP/ck" --prompt a --temperature -1
expect_error 64 "--max-tokens: 'x' is not" "$SSMLAB" generate --model "$TMP/ck" --prompt a --max-tokens x
expect_error 64 "generate: --format must be text or jsonl" "$SSMLAB" generate --model "$TMP/ck" --prompt a --format csv
expect_error 64 "prompt is empty" "$SSMLAB" generate --model "$TMP/ck" --prompt ""

# weight formats
gen --prompt "The quick" --max-tokens 3 >/dev/null
grep -qE '^# weights = bf16 \([0-9]+ bf16 \+ [0-9]+ f32 values, .* MB\), matvec = (dpbf16|avx512|avx2|naive)$' "$TMP/gen.err" \
    && ok "bf16 by default, logged with its path" || fail "no bf16 weights line: $(cat "$TMP/gen.err")"
gen --prompt "The quick" --max-tokens 3 --weights f32 >/dev/null
grep -qE '^# weights = f32 \([0-9]+ values, .* MB\), matvec = sgemv' "$TMP/gen.err" \
    && ok "--weights f32 logged" || fail "no f32 weights line: $(cat "$TMP/gen.err")"
FIX="$(dirname "$0")/../data/mamba_tiny_torch"
for w in f32 bf16; do
    "$SSMLAB" generate --model "$FIX" --tokens 1,2,3 --max-tokens 24 --greedy --threads 1 --weights $w \
        >"$TMP/fix.$w" 2>/dev/null || fail "generate --weights $w on the fixture exited $?"
done
same_output "greedy bf16 = greedy f32 on bf16-exact weights" "$TMP/fix.f32" "$TMP/fix.bf16"
expect_error 64 "weights" "$SSMLAB" generate --model "$TMP/ck" --tokens 1 --weights f16
expect_error 64 "ssmlab: --tokens: .*not a comma-separated list" "$SSMLAB" generate --model "$TMP/ck" --tokens 1,,2
expect_error 64 "v300 has no tokenizer.json" "$SSMLAB" generate --model "$TMP/v300" --prompt hi
expect_error 65 "token id 300 .*outside the vocabulary" "$SSMLAB" generate --model "$TMP/ck" --tokens 1,300
finish
