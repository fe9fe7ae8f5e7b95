#!/bin/bash
# mamba2.sh — Mamba-2 checkpoints end to end: small random models written by
# tests/ref/mamba2_ref.py in the state-spaces layout (ssm_cfg.layer Mamba2)
# and the transformers Mamba2ForCausalLM layout load and run through eval
# and generate (greedy generation repeats); a missing or misshapen tensor
# is refused naming the file and the tensor; train arch=mamba2 trains,
# saves, evaluates and resumes, with its dynamics in train.csv, and the
# sweep measures it; the m2-*.conf presets are their Mamba-1 presets with
# the Mamba-2 keys, and train; a sweep over the polarized MQAR and recency
# series at depth 2 gives one row per polarization; inspect prints the
# per-group spectra, norms, verdicts with the flow, importance and per-head
# attention, influence and over-smoothing (also of a polarized model)
# (states, dump and interventions: states.sh, dump.sh, intervene.sh); what
# has no Mamba-2 meaning (the S6 map's flow) refuses a Mamba-2 model with a
# clear message instead of computing nonsense.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
REF="$(dirname "$0")/../ref/mamba2_ref.py"

$PY "$REF" write --out "$TMP/ss" >/dev/null || { fail "state-spaces fixture"; finish; }
$PY "$REF" write --out "$TMP/hf" --naming transformers >/dev/null || { fail "transformers fixture"; finish; }
grep -q '"layer": "Mamba2"' "$TMP/ss/config.json" && ok "state-spaces config names layer Mamba2" \
    || fail "state-spaces config"
grep -q '"model_type": "mamba2"' "$TMP/hf/config.json" && ok "transformers config is model_type mamba2" \
    || fail "transformers config"

for layout in ss hf; do
    if "$SSMLAB" eval --model "$TMP/$layout" --tokens "1,2,3,4,5,6,7;7,6,5,4,3,2,1" >"$TMP/eval.csv" 2>"$TMP/err" &&
        awk -F, 'NR == 2 { exit !($5 > 0 && $5 < 10) }' <(grep -v '^#' "$TMP/eval.csv"); then
        ok "eval of the $layout layout: loss $(grep -v '^#' "$TMP/eval.csv" | awk -F, 'NR == 2 { print $5 }')"
    else
        fail "eval of the $layout layout: $(cat "$TMP/err" "$TMP/eval.csv")"
    fi
    a=$("$SSMLAB" generate --model "$TMP/$layout" --tokens 3,1,4 --max-tokens 12 --greedy 2>/dev/null)
    b=$("$SSMLAB" generate --model "$TMP/$layout" --tokens 3,1,4 --max-tokens 12 --greedy 2>/dev/null)
    if [ -n "$a" ] && [ "$a" = "$b" ]; then ok "greedy generation of the $layout layout repeats: $a"
    else fail "generate $layout: '$a' vs '$b'"; fi
done
# generate's default weights are bf16 for Mamba-2 too (and it says so);
# --weights f32 keeps float32; each repeats its greedy tokens
"$SSMLAB" generate --model "$TMP/ss" --tokens 3,1,4 --max-tokens 2 --greedy >/dev/null 2>"$TMP/err"
if grep -qE '^# weights = bf16 \([0-9]+ bf16 \+ [0-9]+ f32 values' "$TMP/err"; then
    ok "generate of a Mamba-2 model holds bf16 weights by default"
else fail "generate's default weights for Mamba-2: $(cat "$TMP/err")"; fi
for w in bf16 f32; do
    a=$("$SSMLAB" generate --model "$TMP/ss" --tokens 3,1,4 --max-tokens 12 --greedy --weights $w 2>"$TMP/err")
    b=$("$SSMLAB" generate --model "$TMP/ss" --tokens 3,1,4 --max-tokens 12 --greedy --weights $w 2>/dev/null)
    if [ -n "$a" ] && [ "$a" = "$b" ] && grep -q "^# weights = $w" "$TMP/err"; then
        ok "generate --weights $w of a Mamba-2 model repeats: $a"
    else fail "generate --weights $w of a Mamba-2 model: '$a' vs '$b', $(cat "$TMP/err")"; fi
done

# bad weights: a tensor left out, a tensor one row short
cp -r "$TMP/ss" "$TMP/bad"
drop() { # drop DIR NAME [narrow]: rewrite DIR/model.safetensors without NAME (or NAME one row short)
    $PY - "$1/model.safetensors" "$2" "${3:-}" <<'PY'
import os, sys
sys.path.insert(0, os.path.join(os.environ["REFDIR"]))
import mamba_ref as ref
path, name, narrow = sys.argv[1:4]
t = {k: v.copy() for k, v in ref.read_safetensors(path).items()}
if narrow:
    t[name] = t[name][:-1]
else:
    del t[name]
ref.write_safetensors(path, t, "F32", {"format": "pt"})
PY
}
export REFDIR="$(cd "$(dirname "$0")/../ref" && pwd)"
drop "$TMP/bad" backbone.layers.1.mixer.dt_bias
expect_error 65 "model.safetensors: missing tensor 'backbone.layers.1.mixer.dt_bias'" \
    "$SSMLAB" eval --model "$TMP/bad" --tokens 1,2,3
cp "$TMP/ss/model.safetensors" "$TMP/bad/"
drop "$TMP/bad" backbone.layers.0.mixer.in_proj.weight narrow
expect_error 65 "model.safetensors: tensor 'backbone.layers.0.mixer.in_proj.weight' has shape \(83, 16\), expected \(84, 16\)" \
    "$SSMLAB" eval --model "$TMP/bad" --tokens 1,2,3

# a Mamba-2 run from the run configuration: trains, saves the state-spaces
# layout, evaluates, resumes; a Mamba-1 config does not resume it
if tiny_train "$TMP/run" arch=mamba2 head_dim=8 n_groups=2 chunk_size=8; then
    grep -q '"layer": "Mamba2"' "$TMP/run/config.json" && ok "train arch=mamba2 saves ssm_cfg.layer Mamba2" \
        || fail "train arch=mamba2: $(cat "$TMP/run/config.json")"
    if "$SSMLAB" eval --model "$TMP/run" --data "$TMP/corpus.txt" --seq-len 16 --batches 2 >"$TMP/eval.csv" 2>"$TMP/err"
    then ok "eval of the trained Mamba-2 run on its corpus"; else fail "eval of the run: $(cat "$TMP/err")"; fi
    if tiny_train "$TMP/run" arch=mamba2 head_dim=8 n_groups=2 chunk_size=8 steps=3 resume="$TMP/run"
    then ok "train resumes the Mamba-2 run"; else fail "resume of the Mamba-2 run"; fi
    expect_error 78 "checkpoint architecture differs from the config" \
        "$SSMLAB" train d_model=16 n_layer=2 d_state=4 seq_len=16 batch_size=2 steps=3 threads=1 \
        data="$TMP/corpus.txt" out="$TMP/run1" resume="$TMP/run"
else
    fail "train arch=mamba2: $(cat "$TMP/train.err")"
fi
printf 'arch = mamba2\nd_model = 16\nn_layer = 1\nhead_dim = 8\nsteps = 1\n' >"$TMP/m2.conf"

# the dynamics of a Mamba-2 run (task_dynamics: eigenvalue signs summed over
# each layer's groups, verdicts, influence, smoothing) in train.csv and in
# the sweep's table: 2 layers x 2 groups x N 4 = 16 eigenvalues
tiny_lm_preset "$TMP/m2-sweep.conf" "$TMP/corpus.txt"
printf 'arch = mamba2\nhead_dim = 8\nn_groups = 2\nchunk_size = 8\nthreads = 1\n' >>"$TMP/m2-sweep.conf"
if "$SSMLAB" train "$TMP/m2-sweep.conf" out="$TMP/m2-train" >/dev/null 2>"$TMP/err"; then
    awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
             $c["split"] == "val" { n++; s = $c["eig_pos"] + $c["eig_neg"] + $c["eig_complex"]
                                   if (s != 16 || $c["verdict"] == "" || $c["cos_last"] == "") bad = 1 }
             END { exit !(n >= 1 && !bad) }' "$TMP/m2-train/train.csv" \
        && ok "train.csv of a Mamba-2 run has its dynamics (16 eigenvalues, verdicts, smoothing)" \
        || fail "Mamba-2 dynamics in train.csv: $(tail -1 "$TMP/m2-train/train.csv"; grep 'dynamics' "$TMP/err")"
else
    fail "train of the Mamba-2 preset: $(tail -2 "$TMP/err")"
fi
if "$SSMLAB" sweep "$TMP/m2-sweep.conf" --out "$TMP/sweep" >"$TMP/sweep.csv" 2>"$TMP/err"; then
    grep -v '^#' "$TMP/sweep.csv" | awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
        { n++; if ($c["verdict"] == "" || $c["verdict"] == "failed" || $c["cos_last"] == "") bad = 1 }
        END { exit !(n == 1 && !bad) }' \
        && ok "sweep measures a Mamba-2 preset" || fail "sweep of Mamba-2: $(cat "$TMP/sweep.csv")"
else
    fail "sweep of a Mamba-2 preset: $(tail -2 "$TMP/err")"
fi

# the Mamba-2 presets: each is its Mamba-1 preset (bytes-small, lm-default,
# mqar-d{1,2,4}-*, recency-d{1,2,4}-*) with the four Mamba-2 keys and its
# own out; the two LM presets and the depth 1 and 4 polarize = both ones
# train one step here, the depth-2 series in the sweeps below
S="$(dirname "$0")/../../scenarios"
m2=("$S"/m2-*.conf)
keys() { grep -v '^#' "$1" | grep -Ev '^(arch|head_dim|n_groups|chunk_size|out) = ' | sort; }
same=0
for f in "${m2[@]}"; do
    twin="$S/$(basename "$f" | sed 's/^m2-//')"
    [ -f "$twin" ] && [ "$(keys "$f")" = "$(keys "$twin")" ] && grep -q '^arch = mamba2$' "$f" && same=$((same + 1)) \
        || fail "$(basename "$f") differs from $(basename "$twin") beyond the Mamba-2 keys"
done
[ "$same" -eq 26 ] && ok "the 26 Mamba-2 presets keep their Mamba-1 presets' task, sizes, polarization and budget" \
    || fail "$same of ${#m2[@]} Mamba-2 presets match their Mamba-1 presets (26 expected)"
n=0
for f in "$S"/m2-{bytes-small,lm-default,mqar-d1-both,mqar-d4-both,recency-d1-both,recency-d4-both}.conf; do
    data=(data="$TMP/corpus.txt" seq_len=64)
    grep -q '^task = mqar$' "$f" && data=(mqar_val_examples=4)
    "$SSMLAB" train "$f" steps=1 eval_batches=1 threads=1 "${data[@]}" \
        out="$TMP/preset" >/dev/null 2>"$TMP/p.err" && grep -q "arch = mamba2" "$TMP/p.err" \
        && n=$((n + 1)) || fail "$f: $(tail -1 "$TMP/p.err")"
done
[ "$n" -eq 6 ] && ok "6 Mamba-2 presets train (LM, and MQAR and recency polarized at depths 1 and 4)"

# a sweep over a polarized series: one row per polarization, each with its
# measurements, and the pinned heads in the parameter count (a head of 32
# channels on d_model 64: in_proj 65 rows, conv 32 x 5, dt_bias, D, norm
# 32, A_log and out_proj 32 columns: 6403 per layer and pinned head, 2 layers)
sweep_series() { # sweep_series NAME KEY=VALUE...: sweep scenarios/m2-NAME-*.conf
    local name=$1; shift
    if "$SSMLAB" sweep "$S"/m2-"$name"-*.conf steps=1 threads=1 "$@" --out "$TMP/sw-$name" \
        >"$TMP/sw.csv" 2>"$TMP/err"; then
        grep -v '^#' "$TMP/sw.csv" | awk -F, -v name="m2-$name" '
            NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
            { n++; p[$c["polarize"]] = $c["params"]
              if ($c["preset"] != name "-" $c["polarize"] || $c["verdict"] == "" || $c["cos_last"] == "") bad = 1 }
            END { exit !(n == 4 && !bad && p["zero"] - p["none"] == 12806 && p["one"] == p["zero"] &&
                         p["both"] - p["none"] == 25612) }' \
            && ok "sweep of m2-$name-*.conf: none, zero, one, both with their pinned heads" \
            || fail "sweep of m2-$name: $(cat "$TMP/sw.csv")"
    else
        fail "sweep of m2-$name-*.conf: $(tail -2 "$TMP/err")"
    fi
}
sweep_series mqar-d2 batch_size=4 eval_every=0 eval_batches=0 mqar_val_examples=8
sweep_series recency-d2 seq_len=64 batch_size=2 eval_batches=1 data="$TMP/corpus.txt"
# the sweep's polarize = both run reloads with its pinned heads: inspect
# reads 6 heads, the one-polarized head 0's attention and the importance
pol="$TMP/sw-mqar-d2/m2-mqar-d2-both"
if "$SSMLAB" inspect --model "$pol" --tokens 1,2,3,4,5 --importance --attention --channel 0 --layer 1 \
    >"$TMP/pol.csv" 2>"$TMP/err"; then
    grep -q "polarize both" "$TMP/err" && grep -q "mamba2, 6 heads of 32 (1 first with A = 0, 1 last with A = -100)" "$TMP/err" \
        && [ "$(grep -c '^importance,0,' "$TMP/pol.csv")" -eq 5 ] \
        && [ "$(grep -c '^attention,1,0,[0-9]*,[0-9]*,head,0,' "$TMP/pol.csv")" -eq 15 ] \
        && ok "inspect of the polarized Mamba-2 run: 6 heads, importance, head 0's attention" \
        || fail "inspect of the polarized run: $(cat "$TMP/err"; head -3 "$TMP/pol.csv")"
else
    fail "inspect of the polarized Mamba-2 run: $(cat "$TMP/err")"
fi

# inspect on a Mamba-2 checkpoint: the spectra per (layer, group), the norms
# and their verdicts (with the flow of layer 0's mixer), the
# per-head hidden attention, influence and over-smoothing; the tables it
# does not compute yet refuse the model by name
if "$SSMLAB" inspect --model "$TMP/ss" --tokens 1,2,3,4,5,6,7,8,9 >"$TMP/insp.csv" 2>"$TMP/err"; then
    grep -q "mamba2, 4 heads of 8 in 2 groups, chunk_size 4" "$TMP/err" && ok "inspect logs the model's heads" \
        || fail "inspect log: $(cat "$TMP/err")"
    [ "$(grep -c '^spectrum,group,' "$TMP/insp.csv")" -eq 4 ] && grep -q '^table,kind,layer,index,re,im,n_pos,n_neg,n_complex,class,group$' "$TMP/insp.csv" \
        && grep -q '^spectrum,group,1,,,,[0-9]*,[0-9]*,[0-9]*,[a-z]*,1$' "$TMP/insp.csv" \
        && ok "inspect prints a spectrum per layer and group (2 x 2)" || fail "inspect spectrum: $(grep '^spectrum,group' "$TMP/insp.csv")"
    grep -q '^verdicts,residual,' "$TMP/insp.csv" && grep -q '^norms,verdict,' "$TMP/insp.csv" \
        && grep -q '^verdicts,flow,ln ||x_i(t)|| over flow time,0,' "$TMP/insp.csv" \
        && [ "$(grep -c '^importance,0,[0-9]*,[0-9]*,[-0-9.e]*,proxy,' "$TMP/insp.csv")" -eq 9 ] \
        && ok "inspect's default tables: norms and verdicts with the flow, the importance of 9 tokens" \
        || fail "inspect default tables: $(cut -d, -f1,2 "$TMP/insp.csv" | sort -u | tr '\n' ' ')"
else
    fail "inspect of a Mamba-2 checkpoint: $(cat "$TMP/err")"
fi
if "$SSMLAB" inspect --model "$TMP/hf" --tokens "1,2,3,4,5,6;6,5,4,3,2,1" --attention --channel 3 --layer 1 \
    >"$TMP/attn.csv" 2>"$TMP/err"; then
    grep -q '^table,layer,seq,t,s,aggregation,head,raw,row_normalized$' "$TMP/attn.csv" \
        && [ "$(grep -c '^attention,1,[01],[0-9]*,[0-9]*,head,3,' "$TMP/attn.csv")" -eq 42 ] \
        && ok "inspect --attention --channel 3: head 3's map, 2 x 21 entries" || fail "attention by head: $(head -3 "$TMP/attn.csv")"
else
    fail "inspect --attention of a Mamba-2 checkpoint: $(cat "$TMP/err")"
fi
"$SSMLAB" inspect --model "$TMP/ss" --tokens 1,2,3,4,5,6,7,8 --attention >"$TMP/attn.csv" 2>"$TMP/err" \
    && [ "$(grep -c '^attention,[01],0,[0-9]*,[0-9]*,mean_abs,,' "$TMP/attn.csv")" -eq 72 ] \
    && ok "inspect --attention: the mean over heads, every layer" || fail "attention mean: $(cat "$TMP/err")"
"$SSMLAB" inspect --model "$TMP/ss" --tokens 1,2,3,4,5,6,7,8,9,10,11,12 --influence --smoothing --format jsonl \
    >"$TMP/inf.jsonl" 2>"$TMP/err" && grep -q '"kind":"half_life"' "$TMP/inf.jsonl" \
    && [ "$(grep -c '"table":"smoothing"' "$TMP/inf.jsonl")" -eq 6 ] \
    && ok "inspect --influence --smoothing run through the Mamba-2 backward" || fail "influence: $(cat "$TMP/err")"
expect_error 64 "--channel 4: a Mamba-2 model's attention is per head, and it has heads 0..3" \
    "$SSMLAB" inspect --model "$TMP/ss" --tokens 1,2,3 --attention --channel 4
expect_error 64 "the S6 map alone \(--flow-system s6\) is Mamba-1's: a mamba2 SSD takes B, C and dt from in_proj" \
    "$SSMLAB" inspect --model "$TMP/ss" --tokens 1,2,3 --flow --flow-system s6
"$SSMLAB" inspect --model "$TMP/ss" --tokens 1,2,3,4,5 --flow --flow-layer 1 --flow-steps 4 >"$TMP/flow.csv" 2>"$TMP/err" \
    && [ "$(grep -c '^flow,norm,' "$TMP/flow.csv")" -eq 25 ] && grep -q '^flow,verdict,' "$TMP/flow.csv" \
    && ok "inspect --flow: layer 1's mixer, 5 tokens x (4 steps + 1)" || fail "flow: $(cat "$TMP/err")"
# the lab opens a Mamba-2 checkpoint and run configuration, heads selected
# (the lab's own tests: tui_lab.sh, tui_tmux.sh)
printf 'wait-idle\nexpect all heads\nkey q\n' >"$TMP/keys"
"$SSMLAB" tui --model "$TMP/ss" --script "$TMP/keys" >/dev/null 2>"$TMP/err" \
    && ok "the lab inspects a Mamba-2 checkpoint" || fail "tui --model: $(tail -2 "$TMP/err")"
printf 'wait-idle\nexpect all heads\nkey q n\n' >"$TMP/keys"
"$SSMLAB" tui "$TMP/m2.conf" data="$TMP/corpus.txt" --paused --script "$TMP/keys" >/dev/null 2>"$TMP/err" \
    && ok "the lab opens a Mamba-2 run configuration" || fail "tui m2.conf: $(tail -2 "$TMP/err")"
finish
