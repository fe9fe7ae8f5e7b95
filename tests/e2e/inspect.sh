#!/usr/bin/env bash
# inspect.sh — end-to-end tests of `ssmlab inspect`: the three tables in CSV
# and JSONL on a trained byte model, a mamba_ssm pytorch_model.bin and an
# image classifier (--image on Fashion-MNIST when installed), and every bad
# input as one stderr line naming the file and the problem with its sysexits
# code: missing model directory, bad --tokens, ids outside the vocabulary,
# --image on a language model, --text on an image classifier, no run config.
. "$(dirname "$0")/lib.sh"
tiny_train "$TMP/ck" || { fail "tiny training run"; finish; }
inspect() { "$SSMLAB" inspect --threads 1 "$@"; }

# ---- outputs
if inspect --model "$TMP/ck" >"$TMP/all.csv" 2>"$TMP/err"; then
    for h in "table,kind,layer,index,re,im,n_pos,n_neg,n_complex,class" \
             "table,kind,seq,layer,pos,id,token,value" "table,seq,rank,pos,score,method,id,token"; do
        grep -qx "$h" "$TMP/all.csv" && ok "default output has header $h" || fail "no header $h"
    done
    grep -qE '^norms,verdict,,,,,,(converging|diverging|mixed|no-trend)$' "$TMP/all.csv" \
        && ok "verdict row" || fail "no verdict row"
    n=$(grep -c '^spectrum,layer,' "$TMP/all.csv")
    [ "$n" -eq 2 ] && ok "one spectrum summary per layer" || fail "$n spectrum summary rows, want 2"
else
    fail "inspect --model (defaults): $(cat "$TMP/err")"
fi

if inspect --model "$TMP/ck" --text 'a,"b"' --norms --importance --format jsonl >"$TMP/o.jsonl" 2>"$TMP/err"; then
    /usr/bin/python3 - "$TMP/o.jsonl" <<'PY' && ok "JSONL rows parse; tables norms, importance, verdicts; tokens escaped" || fail "JSONL output"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert {r["table"] for r in rows} == {"norms", "importance", "verdicts"}, "tables"
assert [r["name"] for r in rows if r["table"] == "verdicts"] == ["residual", "mixer", "flow"]
norms = [r for r in rows if r.get("kind") == "norm"]
assert len(norms) == 3 * 5, len(norms)          # (n_layer + 1) x 5 bytes
assert {r["token"] for r in norms} == {"a", ",", '"', "b"}, {r["token"] for r in norms}
ranks = sorted(r["rank"] for r in rows if r["table"] == "importance")
assert ranks == list(range(5)), ranks
PY
else
    fail "inspect --text --format jsonl: $(cat "$TMP/err")"
fi

inspect --model "$TMP/ck" --spectrum --tokens '1,2,3;4,5,6' >"$TMP/s.csv" 2>"$TMP/err" \
    && ! grep -q '^norms' "$TMP/s.csv" && grep -q '^spectrum,layer' "$TMP/s.csv" \
    && ok "--spectrum prints only the spectrum" || fail "--spectrum alone: $(cat "$TMP/err")"

inspect --model tests/data/mamba_tiny_torch --norms --tokens '1,2,3,4,5;5,4,3,2,1' >"$TMP/t.csv" 2>"$TMP/err" \
    && [ "$(grep -c '^norms,slope,' "$TMP/t.csv")" -eq 10 ] \
    && ok "pytorch_model.bin checkpoint: 10 slope rows" || fail "mamba_tiny_torch: $(cat "$TMP/err")"

# ---- errors
expect_error 66 "$TMP/nowhere: cannot open" inspect --model "$TMP/nowhere"
expect_error 64 "ssmlab: inspect: --model DIR is required" inspect --norms
expect_error 64 "ssmlab: --tokens: '1,x,3' is not a list of token ids" inspect --model "$TMP/ck" --tokens 1,x,3
expect_error 64 "ssmlab: --tokens: sequences differ in length" inspect --model "$TMP/ck" --tokens '1,2;3'
expect_error 64 "ssmlab: --tokens: .* is not a list" inspect --model "$TMP/ck" --tokens '1,,2'
expect_error 64 "ssmlab: --tokens: .* is not a list" inspect --model "$TMP/ck" --tokens '-4'
expect_error 65 "^ssmlab: --tokens: token id 999 \(sequence 0, position 1\) is outside the vocabulary \[0, 256\) of the model in $TMP/ck$" inspect --model "$TMP/ck" --tokens 1,999
expect_error 64 "^ssmlab: --image: the model in $TMP/ck takes token ids" inspect --model "$TMP/ck" --image 0
expect_error 64 "ssmlab: inspect: --image: 'x' is not an image index" inspect --model "$TMP/ck" --image x
expect_error 64 "at most one of --text, --tokens, --image and --inputs" inspect --model "$TMP/ck" --text hi --tokens 1
expect_error 64 "ssmlab: inspect: --format must be csv or jsonl" inspect --model "$TMP/ck" --format xml
expect_error 64 "ssmlab: --text: the text is empty" inspect --model "$TMP/ck" --text ''

# ---- a tokenizer.json beside the weights: --text goes through BPE
/usr/bin/python3 - "$TMP/bpe" <<'PY' || fail "BPE checkpoint"
import json, os, sys
sys.path.insert(0, "tests/ref")
import mamba_ref as ref
d = sys.argv[1]
cfg = ref.Config(d_model=16, n_layer=2, d_state=4, vocab_size=260)
ref.write_checkpoint(d, cfg, ref.init_params(cfg, seed=5))
# GPT-2's byte-level alphabet: printable bytes map to themselves, the rest to U+0100..
keep = [b for b in range(256) if 33 <= b <= 126 or 161 <= b <= 172 or 174 <= b <= 255]
chars, extra = {}, 0
for b in range(256):
    chars[b] = chr(b) if b in keep else chr(256 + extra)
    extra += b not in keep
vocab = {chars[b]: b for b in range(256)}
sp = chars[32]
eacute = chars[0xc3] + chars[0xa9]   # U+00E9 as one token
for tok in ("he", sp + "t", sp + "the", eacute):
    vocab[tok] = len(vocab)
tk = {"version": "1.0", "added_tokens": [], "normalizer": None,
      "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
      "post_processor": None, "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
      "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                "vocab": vocab, "merges": ["h e", sp + " t", sp + "t he", chars[0xc3] + " " + chars[0xa9]]}}
json.dump(tk, open(os.path.join(d, "tokenizer.json"), "w"), ensure_ascii=False)
PY
if inspect --model "$TMP/bpe" --text 'he the' --importance --format jsonl >"$TMP/b.jsonl" 2>"$TMP/err"; then
    /usr/bin/python3 - "$TMP/b.jsonl" <<'PY' && ok "--text through tokenizer.json: he, ' the'" || fail "BPE tokens"
import json, sys
rows = sorted((json.loads(l) for l in open(sys.argv[1])), key=lambda r: r["pos"])
got = [(r["id"], r["token"]) for r in rows]
assert got == [(256, "he"), (258, " the")], got
PY
else
    fail "inspect with tokenizer.json: $(cat "$TMP/err")"
fi
# token text that needs quoting: a comma, a quote, a newline, a backslash,
# a digit and a non-ASCII token read back with Python's csv and json modules
label_text=$'a,"b\n\\7\xc3\xa9'
if inspect --model "$TMP/bpe" --text "$label_text" --importance >"$TMP/q.csv" 2>"$TMP/err" \
   && inspect --model "$TMP/bpe" --text "$label_text" --importance --format jsonl >"$TMP/q.jsonl" 2>>"$TMP/err"; then
    /usr/bin/python3 - "$TMP/q.csv" "$TMP/q.jsonl" <<'PY' && ok "RFC 4180 CSV and JSON strings: token text read back exactly" \
        || fail "quoted token text: $(cat "$TMP/q.csv")"
import csv, json, sys
want = ["a", ",", '"', "b", "\n", "\\x5c", "7", "\u00e9"]   # by position; the backslash as \x5c
with open(sys.argv[1], newline="") as f:
    rows = list(csv.DictReader(f))
got = [r["token"] for r in sorted(rows, key=lambda r: int(r["pos"]))]
assert got == want, got
assert all(len(r) == 8 and None not in r for r in rows), rows        # no field split by a comma
js = sorted((json.loads(l) for l in open(sys.argv[2])), key=lambda r: r["pos"])
assert [r["token"] for r in js] == want, [r["token"] for r in js]
assert all(isinstance(r["token"], str) for r in js)                # "7" stays a string
assert isinstance(js[0]["score"], float) and js[0]["id"] == 97
PY
else
    fail "inspect with quoted token text: $(cat "$TMP/err")"
fi
echo '{"model": {"type": "WordPiece"}}' >"$TMP/bpe/tokenizer.json"
expect_error 65 "$TMP/bpe/tokenizer.json: " inspect --model "$TMP/bpe" --text hi

# ---- an image classifier (patch 7 on 28 x 28: 16 tokens of 49 values)
image_ck() { # image_ck DIR RUN_CONFIG
    /usr/bin/python3 - "$1" "$2" <<'PY'
import json, os, sys
sys.path.insert(0, "tests/ref")
import mamba_ref as ref
d, rc = sys.argv[1], sys.argv[2]
cfg = ref.Config(d_model=16, n_layer=2, d_state=4, d_input=49, n_classes=10)
p = ref.init_params(cfg, seed=3)
os.makedirs(d, exist_ok=True)
c = ref.config_json(cfg)
for k in ("d_input", "n_classes"):
    c.pop(k, None)
c["ssmlab"] = {"input_kind": "continuous", "d_input": 49, "n_classes": 10}
json.dump(c, open(os.path.join(d, "config.json"), "w"))
meta = {"format": "pt", "ssmlab.tensors": ",".join([ref.INPUT_W, ref.INPUT_B, ref.CLS_W, ref.CLS_B])}
if rc:
    meta["ssmlab.run_config"] = rc
ref.write_safetensors(os.path.join(d, "model.safetensors"), p, "F32", meta)
PY
}
image_ck "$TMP/img" "$(printf 'task = classify\ndataset = fashion-mnist\npatch = 7\nstandardize = 0\n')" || fail "image checkpoint"
image_ck "$TMP/img-norc" "" || fail "image checkpoint without run config"
image_ck "$TMP/img-text" "$(printf 'task = lm\ndataset = text\n')" || fail "image checkpoint with a text run config"
expect_error 65 "$TMP/img-text/model.safetensors: the recorded run config is a task = lm run.s, not task = classify" \
    inspect --model "$TMP/img-text" --image 0
expect_error 66 "$TMP/no-images" inspect --model "$TMP/img" --image 0 --data "$TMP/no-images"
expect_error 64 "^ssmlab: --text: the model in $TMP/img takes continuous input: use --image N" inspect --model "$TMP/img" --text hello
expect_error 65 "$TMP/img-norc/model.safetensors: no ssmlab.run_config" inspect --model "$TMP/img-norc" --image 0
if [ -e /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
    inspect --model "$TMP/img" --image 3 --importance >"$TMP/i.csv" 2>"$TMP/err" \
        && [ "$(grep -c '^importance,0,' "$TMP/i.csv")" -eq 16 ] && grep -q ',y3x3$' "$TMP/i.csv" \
        && ok "--image 3: 16 patches ranked" || fail "--image 3: $(cat "$TMP/err")"
    expect_error 64 "ssmlab: --image 10000: .*has 10000 test images" inspect --model "$TMP/img" --image 10000
else
    echo "skip: Fashion-MNIST is not installed"
fi
finish
