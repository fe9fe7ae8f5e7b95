#!/usr/bin/env bash
# classify.sh — image classification end to end on a tiny MNIST-like IDX
# fixture: training learns and logs accuracy, the run config recorded in the
# checkpoint names dataset/patch/standardize, resuming is bit-exact, eval
# reports test loss and accuracy, the --inputs/--labels contract (logits,
# loss, accuracy and gradients checked against numpy), the read-outs
# pool = last and cls (trained, reloaded, evaluated, inspected, attacked; a
# checkpoint without pool loads as mean), and bad inputs.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
IMG="$TMP/img"
$PY "$(dirname "$0")/../data/make_idx_fixture.py" "$IMG" || { fail "fixture"; finish; }
cls=(task=classify dataset=mnist data="$IMG" patch=2 d_model=16 n_layer=2 d_state=4 threads=2)

# training learns the fixture and logs the classifier columns
"$SSMLAB" train "${cls[@]}" batch_size=16 steps=200 lr=1e-2 warmup=10 eval_every=100 eval_batches=0 \
    log_every=50 out="$TMP/learn" >"$TMP/learn.csv" 2>"$TMP/learn.err" || fail "train: $(tail -2 "$TMP/learn.err")"
head -1 "$TMP/learn.csv" | grep -qx 'step,split,loss,acc,lr,grad_norm,tokens_per_s,elapsed_s' \
    && ok "classifier CSV columns" || fail "CSV header: $(head -1 "$TMP/learn.csv")"
acc=$(grep '^200,val,' "$TMP/learn.csv" | cut -d, -f4)
$PY -c "import sys; sys.exit(0 if float('$acc') >= 0.9 else 1)" 2>/dev/null \
    && ok "test accuracy $acc after 200 steps" || fail "test accuracy '$acc' < 0.9"
grep -q '# data = .*256 train and 64 test images of 8 x 8 x 1, 4 classes; 16 tokens of 4 values' "$TMP/learn.err" \
    && ok "data described" || fail "no data line: $(grep '# data' "$TMP/learn.err")"

# the run config in the checkpoint records what inputs were built from
$PY - "$TMP/learn/model.safetensors" >"$TMP/runcfg" <<'PY' || fail "no run config in the checkpoint"
import json, struct, sys
b = open(sys.argv[1], 'rb').read(); n = struct.unpack('<Q', b[:8])[0]
print(json.loads(b[8:8 + n])['__metadata__']['ssmlab.run_config'])
PY
for kv in 'task = classify' 'dataset = mnist' 'patch = 2' 'standardize = 1' "data = $IMG"; do
    grep -qx "$kv" "$TMP/runcfg" && ok "run config has '$kv'" || fail "run config lacks '$kv'"
done

# eval on the test split: columns, all 64 images, the training run's numbers
"$SSMLAB" eval --model "$TMP/learn" --threads 2 >"$TMP/eval.csv" 2>"$TMP/eval.err" || fail "eval: $(cat "$TMP/eval.err")"
head -1 "$TMP/eval.csv" | grep -qx 'model,split,n,seq_len,loss,acc' && ok "eval columns" || fail "eval header: $(head -1 "$TMP/eval.csv")"
IFS=, read -r _ split n L eloss eacc < <(tail -1 "$TMP/eval.csv")
[ "$split,$n,$L" = "test,64,16" ] && ok "eval covers the 64 test images" || fail "eval row: $split,$n,$L"
tloss=$(grep '^200,val,' "$TMP/learn.csv" | cut -d, -f3)
$PY -c "import sys; sys.exit(0 if abs($eloss - $tloss) <= 1e-6 * max(1, abs($tloss)) and $eacc == $acc else 1)" \
    && ok "eval matches the last validation row" || fail "eval $eloss/$eacc vs train $tloss/$acc"
"$SSMLAB" eval --model "$TMP/learn" --batch-size 5 --batches 2 --threads 2 2>/dev/null | tail -1 | grep -q ',test,10,16,' \
    && ok "eval --batches limits the split" || fail "eval --batches"

# resume: N steps + resume to 2N == 2N straight, bit for bit (soft reordering, accumulation)
common=("${cls[@]}" reorder=soft batch_size=3 grad_accum=2 steps=8 warmup=2 eval_every=4 eval_batches=2 log_every=1 seed=5)
"$SSMLAB" train "${common[@]}" out="$TMP/straight" >"$TMP/a.csv" 2>"$TMP/a.err" || fail "straight: $(tail -1 "$TMP/a.err")"
"$SSMLAB" train "${common[@]}" out="$TMP/half" stop_at=4 >"$TMP/b1.csv" 2>"$TMP/b1.err" || fail "half: $(tail -1 "$TMP/b1.err")"
"$SSMLAB" train "${common[@]}" out="$TMP/resumed" resume="$TMP/half" >"$TMP/b2.csv" 2>"$TMP/b2.err" || fail "resume: $(tail -1 "$TMP/b2.err")"
cut -d, -f1-6 "$TMP/a.csv" | grep -v '^4,val' >"$TMP/a.rows"
{ cut -d, -f1-6 "$TMP/b1.csv"; tail -n +2 "$TMP/b2.csv" | cut -d, -f1-6; } | grep -v '^4,val' >"$TMP/b.rows"
[ -s "$TMP/a.rows" ] && diff "$TMP/a.rows" "$TMP/b.rows" >/dev/null && ok "resumed losses and accuracies identical ($(wc -l <"$TMP/a.rows") rows)" \
    || fail "resumed rows differ: $(diff "$TMP/a.rows" "$TMP/b.rows" | head -4)"
$PY - "$TMP/straight/model.safetensors" "$TMP/resumed/model.safetensors" <<'PY' && ok "resumed weights identical" || fail "resumed weights differ"
import json, struct, sys
def tensors(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8+n])
    return {k: b[8+n+v['data_offsets'][0]:8+n+v['data_offsets'][1]] for k, v in h.items() if k != '__metadata__'}
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
sys.exit(1 if a != b or 'classifier.weight' not in a else 0)
PY
expect_error 78 "checkpoint architecture differs" "$SSMLAB" train "${common[@]}" patch=4 out="$TMP/x" resume="$TMP/half"

# --inputs/--labels: logits (B, C), the mean cross-entropy and accuracy, and
# the classifier-bias gradient mean_b(softmax - onehot), against numpy
$PY -c "
import numpy as np; r = np.random.default_rng(1)
np.save('$TMP/x.npy', r.normal(size=(3, 16, 4)).astype(np.float32))
np.save('$TMP/x1.npy', r.normal(size=(16, 4)).astype(np.float32))
np.save('$TMP/bad.npy', r.normal(size=(3, 16, 5)).astype(np.float32))"
"$SSMLAB" eval --model "$TMP/learn" --inputs "$TMP/x.npy" --labels 2,0,3 --save-logits "$TMP/l.npy" \
    --save-grads "$TMP/g.safetensors" --threads 1 >"$TMP/in.csv" 2>"$TMP/in.err" || fail "eval --inputs: $(cat "$TMP/in.err")"
$PY - "$TMP/in.csv" "$TMP/l.npy" "$TMP/g.safetensors" <<'PY' && ok "--inputs contract (logits, loss, acc, gradients)" || fail "--inputs contract"
import json, struct, sys
import numpy as np
row = open(sys.argv[1]).read().splitlines()
assert row[0] == 'model,split,n,seq_len,loss,acc', row[0]
_, split, n, L, loss, acc = row[1].split(',')
assert (split, n, L) == ('inputs', '3', '16'), row[1]
lg = np.load(sys.argv[2]).astype(np.float64); y = np.array([2, 0, 3])
assert lg.shape == (3, 4), lg.shape
p = np.exp(lg - lg.max(1, keepdims=True)); p /= p.sum(1, keepdims=True)
ce = -np.log(p[np.arange(3), y]).mean()
assert abs(ce - float(loss)) <= 1e-5 * max(1, ce), (ce, loss)
assert abs((lg.argmax(1) == y).mean() - float(acc)) < 1e-6, acc
b = open(sys.argv[3], 'rb').read(); k = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + k])
t = h['classifier.bias']; o = 8 + k
g = np.frombuffer(b[o + t['data_offsets'][0]:o + t['data_offsets'][1]], dtype='<f4')
onehot = np.eye(4)[y]
assert np.allclose(g, (p - onehot).mean(0), rtol=1e-4, atol=1e-6), (g, (p - onehot).mean(0))
assert 'backbone.layers.0.mixer.in_proj.weight' in h and 'classifier.weight' in h
PY
"$SSMLAB" eval --model "$TMP/learn" --inputs "$TMP/x1.npy" --save-logits "$TMP/l1.npy" --threads 1 >"$TMP/in1.csv" 2>/dev/null \
    && $PY -c "import numpy as np; assert np.load('$TMP/l1.npy').shape == (1, 4)" \
    && grep -q '^.*,inputs,1,16,,$' "$TMP/in1.csv" && ok "(L, I) inputs without labels: logits, no loss" \
    || fail "(L, I) inputs: $(cat "$TMP/in1.csv")"

# pool = last and cls: train, the pool and the cls token recorded, eval and
# inspect reload the head, attack reads it; a checkpoint without pool is mean
for pool in last cls; do
    "$SSMLAB" train "${cls[@]}" pool=$pool batch_size=8 steps=6 warmup=1 eval_every=0 eval_batches=2 \
        out="$TMP/pool-$pool" >"$TMP/pool-$pool.csv" 2>"$TMP/pool-$pool.err" || fail "train pool=$pool: $(tail -1 "$TMP/pool-$pool.err")"
    $PY - "$TMP/pool-$pool" $pool <<'PY' && ok "pool=$pool recorded in config.json and the tensors" || fail "pool=$pool checkpoint"
import json, struct, sys
d, pool = sys.argv[1], sys.argv[2]
assert json.load(open(d + '/config.json'))['ssmlab']['pool'] == pool
b = open(d + '/model.safetensors', 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
extras = h['__metadata__']['ssmlab.tensors'].split(',')
assert ('backbone.cls_token' in h) == (pool == 'cls') == ('backbone.cls_token' in extras), extras
if pool == 'cls': assert h['backbone.cls_token']['shape'] == [16]
PY
    tloss=$(grep '^6,val,' "$TMP/pool-$pool.csv" | cut -d, -f3)
    eloss=$("$SSMLAB" eval --model "$TMP/pool-$pool" --batch-size 8 --batches 2 --threads 2 2>/dev/null | tail -1 | cut -d, -f5)
    $PY -c "import sys; sys.exit(0 if abs($eloss - $tloss) <= 1e-6 * max(1, abs($tloss)) else 1)" 2>/dev/null \
        && ok "pool=$pool: eval of the reloaded checkpoint matches training" || fail "pool=$pool: eval '$eloss' vs train '$tloss'"
    "$SSMLAB" inspect --model "$TMP/pool-$pool" --image 0 --norms --importance --attention --layer 1 --influence --smoothing --threads 2 >"$TMP/insp-$pool.csv" 2>"$TMP/insp-$pool.err" \
        && [ "$(grep -c '^norms,norm,0,0,' "$TMP/insp-$pool.csv")" = 16 ] && [ "$(grep -c '^importance,' "$TMP/insp-$pool.csv")" = 16 ] \
        && [ "$(grep -c '^attention,1,0,' "$TMP/insp-$pool.csv")" = 136 ] \
        && ok "pool=$pool: inspect measures the 16 input tokens" || fail "pool=$pool inspect: $(tail -1 "$TMP/insp-$pool.err")"
    "$SSMLAB" attack adversarial --model "$TMP/pool-$pool" --last 2 --images 8 --threads 2 >"$TMP/att-$pool.csv" 2>"$TMP/att-$pool.err" \
        && [ "$(wc -l <"$TMP/att-$pool.csv")" -ge 2 ] && ok "pool=$pool: attack runs" || fail "pool=$pool attack: $(tail -1 "$TMP/att-$pool.err")"
done
"$SSMLAB" eval --model "$TMP/pool-cls" --inputs "$TMP/x.npy" --labels 2,0,3 --save-logits "$TMP/lc.npy" \
    --save-grads "$TMP/gc.safetensors" --threads 1 >/dev/null 2>"$TMP/lc.err" \
    && $PY -c "import numpy as np; assert np.load('$TMP/lc.npy').shape == (3, 4)" \
    && grep -q 'backbone.cls_token' "$TMP/gc.safetensors" && ok "pool=cls: --inputs logits (B, C) and the cls gradient" \
    || fail "pool=cls --inputs: $(cat "$TMP/lc.err")"
mkdir "$TMP/nopool"; cp "$TMP/learn"/model.safetensors "$TMP/nopool"
$PY -c "
import json; c = json.load(open('$TMP/learn/config.json')); del c['ssmlab']['pool']
json.dump(c, open('$TMP/nopool/config.json', 'w'))"
a=$("$SSMLAB" eval --model "$TMP/learn" --batch-size 8 --batches 1 --threads 2 2>/dev/null | tail -1 | cut -d, -f3-)
b=$("$SSMLAB" eval --model "$TMP/nopool" --data "$IMG" --batch-size 8 --batches 1 --threads 2 2>/dev/null | tail -1 | cut -d, -f3-)
[ -n "$a" ] && [ "$a" = "$b" ] && ok "a checkpoint without pool loads as mean" || fail "no pool: '$b' vs '$a'"
expect_error 78 "pool = cls with reorder = hard: the appended cls token must stay last" \
    "$SSMLAB" train "${cls[@]}" pool=cls reorder=hard
expect_error 78 "'first' is not a valid pool" "$SSMLAB" train "${cls[@]}" pool=first

# reordering: only u is permuted, with tau and the chosen layers; each
# reordering layer keeps its own k, and config.json records tau and layers
"$SSMLAB" train "${cls[@]}" reorder=hard reorder_tau=0.5 reorder_layers=0,1 batch_size=8 steps=3 \
    warmup=1 eval_batches=1 out="$TMP/ro" >/dev/null 2>"$TMP/ro.err" || fail "train reorder_layers: $(tail -1 "$TMP/ro.err")"
grep -q '^# *reorder_layers = 0,1$' "$TMP/ro.err" && grep -q '^# *reorder_tau = 0.5$' "$TMP/ro.err" \
    && ok "the resolved config echoes reorder_tau and reorder_layers" || fail "echo: $(grep reorder "$TMP/ro.err")"
$PY - "$TMP/ro" <<'PY' && ok "importance_k per reordering layer, tau and layers in config.json" || fail "reorder checkpoint"
import json, struct, sys
d = sys.argv[1]; c = json.load(open(d + '/config.json'))['ssmlab']
b = open(d + '/model.safetensors', 'rb').read(); n = struct.unpack('<Q', b[:8])[0]
k = sorted(x for x in json.loads(b[8:8 + n]) if x.endswith('importance_k'))
sys.exit(0 if c['reorder_layers'] == [0, 1] and c['reorder_tau'] == 0.5 and
         k == ['backbone.layers.0.mixer.importance_k', 'backbone.layers.1.mixer.importance_k'] else 1)
PY
"$SSMLAB" eval --model "$TMP/ro" --batch-size 8 --batches 1 --threads 2 >/dev/null 2>&1 \
    && ok "a model reordering in two layers evaluates" || fail "eval of the reorder_layers model"
expect_error 78 "reorder_layers names layer 2, but the model's layers are 0 to 1" \
    "$SSMLAB" train "${cls[@]}" reorder=soft reorder_layers=0,2
expect_error 78 "'0;1' for key 'reorder_layers' is not a list of layer numbers" \
    "$SSMLAB" train "${cls[@]}" reorder=soft "reorder_layers=0;1"
expect_error 78 "reorder_tau = 0 must be a finite number > 0" "$SSMLAB" train "${cls[@]}" reorder=soft reorder_tau=0
expect_error 78 "pool = last is a classifier.s read-out .task = classify." "$SSMLAB" train pool=last

# bad inputs: one line naming the file or key, with its sysexits code
expect_error 65 "bad.npy: tokens have 5 values, the model takes 4" \
    "$SSMLAB" eval --model "$TMP/learn" --inputs "$TMP/bad.npy" --labels 1,2,3
expect_error 64 "ssmlab: .*--labels: 2 labels for 3 sequences in .*x.npy" "$SSMLAB" eval --model "$TMP/learn" --inputs "$TMP/x.npy" --labels 1,2
expect_error 65 "ssmlab: .*--labels: label 7 is outside the model's 4 classes" "$SSMLAB" eval --model "$TMP/learn" --inputs "$TMP/x.npy" --labels 1,2,7
expect_error 64 "ssmlab: .*--labels: '1,a,2' is not a list" "$SSMLAB" eval --model "$TMP/learn" --inputs "$TMP/x.npy" --labels 1,a,2
expect_error 64 "ssmlab: .*--save-grads needs --labels" "$SSMLAB" eval --model "$TMP/learn" --inputs "$TMP/x.npy" --save-grads "$TMP/g2"
expect_error 66 "nothere.npy" "$SSMLAB" eval --model "$TMP/learn" --inputs "$TMP/nothere.npy"
expect_error 64 "is a classifier: give it --inputs" "$SSMLAB" eval --model "$TMP/learn" --tokens 1,2,3
tiny_train "$TMP/lm" || fail "tiny LM"
expect_error 64 "is a language model: --inputs is for classifiers" "$SSMLAB" eval --model "$TMP/lm" --inputs "$TMP/x.npy"
expect_error 66 "$TMP/none/train-images-idx3-ubyte\[.gz\]: no such file" "$SSMLAB" train "${cls[@]}" data="$TMP/none"
mkdir "$TMP/nolabels"; cp "$IMG"/*images* "$TMP/nolabels"
expect_error 66 "$TMP/nolabels/train-labels-idx1-ubyte\[.gz\]: no such file" "$SSMLAB" train "${cls[@]}" data="$TMP/nolabels"
mkdir "$TMP/badmagic"; cp "$IMG"/* "$TMP/badmagic"; printf '\000\000\010\077' | dd of="$TMP/badmagic/t10k-images-idx3-ubyte" conv=notrunc 2>/dev/null
expect_error 65 "$TMP/badmagic/t10k-images-idx3-ubyte: " "$SSMLAB" train "${cls[@]}" data="$TMP/badmagic"
expect_error 65 "$TMP/badmagic/t10k-images-idx3-ubyte: " "$SSMLAB" eval --model "$TMP/learn" --data "$TMP/badmagic"
expect_error 78 "patch size 3 does not divide 8 x 8 images" "$SSMLAB" train "${cls[@]}" patch=3
expect_error 78 "'imagenet' is not a valid dataset" "$SSMLAB" train "${cls[@]}" dataset=imagenet
expect_error 78 "dataset = mnist has no default location: set data = DIR" "$SSMLAB" train task=classify dataset=mnist
expect_error 78 "dataset = fashion-mnist holds labelled images: set task = classify" "$SSMLAB" train dataset=fashion-mnist
expect_error 78 "task = classify needs an image dataset" "$SSMLAB" train task=classify
expect_error 78 "labels go up to 3 but n_classes = 2" "$SSMLAB" train "${cls[@]}" n_classes=2
expect_error 78 "standardize = 2 must be 0 or 1" "$SSMLAB" train "${cls[@]}" standardize=2
finish
