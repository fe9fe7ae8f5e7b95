#!/usr/bin/env bash
# tui_lab.sh — the lab as researchers use it, without a display (`ssmlab
# tui --script`): a loaded checkpoint is inspected and never overwritten (a
# toggle makes a new run named after its settings, a save into someone
# else's checkpoint asks first), loading over unsaved training asks first,
# a checkpoint's tokenizer.json tokenizes the text and names the tokens, a
# vocabulary that bytes do not fit is refused with the reason (and inspected
# through token ids), closing the help leaves no stray letters, a prompt
# pauses training and shows the true step, the screen at 80x24 shortens its
# labels instead of cutting them, Esc stops a validation and not the
# training, spaces are visible, the session log is written, the key hint
# bar is always there; focus and zoom, token search, typed layer, channel
# and token numbers, image classifiers in 2-D with class names, and the
# layers numbered as ssmlab inspect numbers them; a Mamba-2 model (from
# scenarios/m2-bytes-small.conf and from a checkpoint): the attention
# selector picks heads and says so, a spectrum row per group, steps move
# the loss, validations write their dynamics, importance, states (horizons
# per head), flow and interventions on a head work, its refused settings
# are refused before asking, and its checkpoint trains on as a new run that
# saves and reloads.
. "$(dirname "$0")/lib.sh"
export HOME="$TMP" LC_ALL=C.UTF-8
tiny_corpus "$TMP/c.txt"
# out= keeps the lab's runs (and their train.csv) in $TMP; a later out= wins
lm=(d_model=16 n_layer=2 d_state=4 seq_len=16 batch_size=2 warmup=1 eval_every=0 eval_batches=1 threads=1
    data="$TMP/c.txt" out="$TMP/runs/bytes-small")

# run NAME ARGS... <script: the lab on it; dumps in $TMP/NAME.out, status in $TMP/NAME.rc
run() {
    local name=$1; shift
    sed "s|TMP|$TMP|g" >"$TMP/$name.txt"
    "$SSMLAB" tui --script "$TMP/$name.txt" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
    echo $? >"$TMP/$name.rc"
}
rc_ok() { [ "$(cat "$TMP/$1.rc")" = 0 ] && ok "$2" || fail "$2: exit $(cat "$TMP/$1.rc"): $(tail -3 "$TMP/$1.err")"; }
nth_dump() { awk -v n="$2" '/^--- screen/{k++} k==n' "$TMP/$1.out"; }
sums() { (cd "$1" && sha256sum -- * | sort); }
step_of() { python3 -c "import json,struct,sys;b=open(sys.argv[1]+'/model.safetensors','rb').read();n=struct.unpack('<Q',b[:8])[0];print(json.loads(b[8:8+n])['__metadata__']['ssmlab.step'])" "$1"; }
train() { # train DIR key=value...: a few steps of a tiny model with ssmlab train
    local dir=$1; shift
    "$SSMLAB" train "${lm[@]}" out="$dir" "$@" >/dev/null 2>"$TMP/train.err" || fail "ssmlab train $dir: $(tail -1 "$TMP/train.err")"
}

# --- 1. a loaded checkpoint is never overwritten --------------------------
train "$TMP/b7" steps=3
sums "$TMP/b7" >"$TMP/b7.sum"
# toggle NAME DIR: the lab on checkpoint DIR: s (y to a question), n, q y
toggle() {
    local name=$1 dir=$2
    printf 'key s y\nwait-idle\nkey n\nwait-idle\nkey q y\n' | run "$name" --model "$dir" --paused "${lm[@]}"
}
toggle b7 "$TMP/b7"
rc_ok b7 "toggle the scenario of a loaded checkpoint, step, quit with save"
sums "$TMP/b7" | cmp -s - "$TMP/b7.sum" && ok "the loaded checkpoint is byte-identical afterwards" \
    || fail "runs/b7 was overwritten (step $(step_of "$TMP/b7"))"
[ -f "$TMP/b7-positive/model.safetensors" ] && [ "$(step_of "$TMP/b7-positive")" = 1 ] \
    && ok "the new run went to b7-positive, named after its scenario" || fail "no b7-positive run: $(ls "$TMP")"
run inspect --model "$TMP/b7" "${lm[@]}" <<'EOF'
dump-screen
expect inspecting TMP/b7 at step 3 (bf16 weights); training makes the new run TMP/b7-2
key s
expect New model (scenario positive, polarize none, reorder off) as TMP/b7-positive-2
expect ? b7 stays as it is. [y/n]
key y
wait-idle
expect b7-positive-2
EOF
rc_ok inspect "a loaded checkpoint is inspected; a toggle asks and names the new run after its settings"

train "$TMP/bytes-small" steps=2 scenario=positive
sums "$TMP/bytes-small" >"$TMP/bs.sum"
toggle bs "$TMP/bytes-small"
rc_ok bs "a positive model: toggle to negative, step, quit with save"
sums "$TMP/bytes-small" | cmp -s - "$TMP/bs.sum" && [ -f "$TMP/bytes-small-negative/model.safetensors" ] \
    && ok "bytes-small stays; the run went to bytes-small-negative" || fail "bytes-small overwritten or no bytes-small-negative"

IMG="$TMP/img"
python3 "$(dirname "$0")/../data/make_idx_fixture.py" "$IMG"
cls=(task=classify dataset=fashion-mnist data="$IMG" patch=2 d_model=16 n_layer=2 d_state=4 batch_size=8 warmup=1
     eval_every=0 eval_batches=1 threads=1 steps=50)
run reorder "${cls[@]}" out="$TMP/fmnist-reorder-off" <<'EOF'
key r
wait-idle
key n
wait-idle
key q
expect to TMP/fmnist-reorder-hard before quitting
key n
EOF
rc_ok reorder "a reorder=hard model saves to fmnist-reorder-hard, not fmnist-reorder-off"

# saving into someone else's checkpoint asks, and no keeps it
run overwrite --model "$TMP/b7" "${lm[@]}" <<'EOF'
key w C-u
type TMP/b7
key Enter
expect holds a checkpoint this session did not write
key n
wait-idle
key w C-u
type TMP/b7-copy
key Enter
wait-idle
expect saved TMP/b7-copy at step 3
EOF
rc_ok overwrite "a save into the loaded checkpoint asks first; a new path saves at once"
sums "$TMP/b7" | cmp -s - "$TMP/b7.sum" && ok "answering no keeps the checkpoint" || fail "b7 changed after answering no"

# training a loaded checkpoint makes a new run beside it
run resume --model "$TMP/b7" "${lm[@]}" <<'EOF'
key n
wait-idle
expect training from step 3 as the new run TMP/b7-2
key q y
EOF
rc_ok resume "a step on a loaded checkpoint starts the new run b7-2"
[ "$(step_of "$TMP/b7-2")" = 4 ] && sums "$TMP/b7" | cmp -s - "$TMP/b7.sum" && ok "b7-2 holds step 4, b7 is untouched" \
    || fail "resumed run: $(ls "$TMP")"

# --- 2. loading over unsaved training asks first --------------------------
run load "${lm[@]}" steps=50 out="$TMP/fresh" <<'EOF'
key n n
wait-idle
key o C-u
type TMP/b7
key Enter
expect ? The unsaved training of fresh (step 2) is lost. [y/n]
key n
expect 2/50
key o C-u
type TMP/b7
key Enter y
wait-idle
expect inspecting
EOF
rc_ok load "o asks before unsaved training is dropped"

# --- 3. the checkpoint's tokenizer.json ---------------------------------
train "$TMP/bpe" steps=2 vocab_size=1264
cp "$(dirname "$0")/../data/tokenizer_fortunes.json" "$TMP/bpe/tokenizer.json"
text='The quick brown fox jumps over the lazy dog'
"$SSMLAB" inspect --model "$TMP/bpe" --text "$text" --importance --format csv >"$TMP/bpe.csv" 2>/dev/null
n_tok=$(grep -c '^importance' "$TMP/bpe.csv")
second=$(awk -F, '$1=="importance" && $4==1 {print $8}' "$TMP/bpe.csv" | sed 's/ /␣/g')
run bpe --model "$TMP/bpe" --text "$text" <<EOF
expect x0 token $((n_tok - 1)) 'g'
key g
expect x0 token 0 'The'
key l
expect x0 token 1 '$second'
key space
expect inspected, not trained
EOF
rc_ok bpe "tokenizer.json: $n_tok tokens as ssmlab inspect has them, labelled with their strings; no byte training"
run vocab10 --model "$(dirname "$0")/../data/mamba_tiny_torch" "${lm[@]}" <<'EOF'
expect token 15 '5'
key e
expect Token ids (0..9
key C-u
type 1,2,3
key Enter
wait-idle
expect x0 token 2 '3'
dump-screen
EOF
rc_ok vocab10 "a vocabulary of 10 without tokenizer is inspected through token ids"
for want in '^residual .*(converging|diverging|mixed|no-trend)' '^flow .*(converging|diverging|no-trend)' 'importance' ' L1 +[a-z]+ +\+[0-9]' \
            'peaks at' 'I (half-life|t½)|no decay fit|I grows'; do
    grep -qE -- "$want" "$TMP/vocab10.out" && ok "transformers-layout checkpoint shows /$want/" || fail "no /$want/ for mamba_tiny_torch"
done
expect_error 64 "vocabulary of 10 tokens: text .*does not fit" "$SSMLAB" tui --script "$TMP/b7.txt" \
    --model "$(dirname "$0")/../data/mamba_tiny_torch" --text hello

# --- 4. ? ? C-l leaves no stray letters ----------------------------------
run help --size 80x24 "${lm[@]}" steps=50 <<'EOF'
key n
wait-idle
dump-screen
key ?
key ?
key C-l
dump-screen
EOF
rc_ok help "help open and closed"
if diff <(nth_dump help 1 | tail -n +2) <(nth_dump help 2 | tail -n +2) >"$TMP/help.diff"; then
    ok "after ? ? C-l the screen is as before the help"
else fail "stray letters after the help:"; cat "$TMP/help.diff"; fi

# --- 6. a prompt pauses training and shows the true step ------------------
run quitstep "${lm[@]}" steps=100000 <<'EOF'
key space
wait-step 3
key q
sleep 600
dump-screen
key c
wait-text training from step
sleep 300
dump-screen
EOF
rc_ok quitstep "quit prompt over running training"
status_step=$(nth_dump quitstep 1 | sed -n 2p | grep -oE ' [0-9]+/100000' | cut -d/ -f1 | tr -d ' ')
prompt_step=$(nth_dump quitstep 1 | grep -oE 'Save the training \(step [0-9]+\)' | grep -oE '[0-9]+')
[ -n "$prompt_step" ] && [ "$prompt_step" = "$status_step" ] && ok "the quit prompt shows the true step ($prompt_step)" \
    || fail "prompt step '$prompt_step', status step '$status_step'"
nth_dump quitstep 2 | sed -n 2p | grep -q '▶' && ok "cancelling the prompt resumes training" || fail "training did not resume"

# --- 9. 80x24: labels shorten instead of colliding or being cut -----------
run small --size 80x24 "${lm[@]}" steps=50 <<'EOF'
key n n
wait-idle
dump-screen
key ?
dump-screen
EOF
rc_ok small "80x24"
nth_dump small 1 | grep -q 'scorernk' && fail "ranking headers collide (scorernk)" || ok "no colliding ranking headers"
nth_dump small 1 | grep -qE 'I (half-life [0-9.]+ tok|t½ [0-9.]+$)|I grows|I: no exp( |$)' && ok "the influence's half-life is whole" \
    || fail "half-life cut: $(nth_dump small 1 | grep -o 'I half.*')"
for who in residual mixer flow; do   # the three named verdicts, shortened but whole
    nth_dump small 1 | grep -qE "^$who ([-+][0-9.]+ )?(converging|diverging|mixed|no-trend)( |\$)" \
        && ok "the $who verdict is whole" || fail "$who verdict cut: $(nth_dump small 1 | grep "^$who")"
done
nth_dump small 2 | grep -q 'Start or paus[^e]' && fail "help text cut (Start or paus)" || ok "help texts are whole at 80x24"
nth_dump small 2 | grep -q 'Start/pause' && ok "the help uses brief texts in two columns" || fail "no brief help"

# --- 10. Esc, visible spaces, the session log, the hint bar --------------
for i in $(seq 1 3000); do echo "Line $i of a corpus large enough that validating it takes a while."; done >"$TMP/big.txt"
run esc "${lm[@]}" data="$TMP/big.txt" d_model=64 seq_len=64 batch_size=4 steps=100000 <<'EOF'
key space
wait-step 1
key v
wait-text validating
key Esc
sleep 800
dump-screen
EOF
rc_ok esc "Esc during a validation"
nth_dump esc 1 | sed -n 2p | grep -q '▶' && nth_dump esc 1 | grep -q 'validation cancelled at step [0-9]*; training goes on' \
    && ok "Esc stops the validation and says so; training goes on" || fail "training stopped: $(nth_dump esc 1 | sed -n '2p;$p')"
run paused --log "$TMP/session.log" "${lm[@]}" steps=50 out="$TMP/logged" <<'EOF'
dump-screen
key n
wait-idle
key w Enter
wait-idle
EOF
rc_ok paused "started paused"
nth_dump paused 1 | grep -q 'The␣quick␣brown' && ok "spaces are shown as ␣" || fail "spaces are blank"
nth_dump paused 1 | tail -2 | head -1 | grep -qE '\? help +q quit' && ok "the key hint bar is there when started paused" \
    || fail "no hint bar: '$(nth_dump paused 1 | tail -2 | head -1)'"
grep -q 'session:' "$TMP/session.log" 2>/dev/null && grep -q "saved $TMP/logged at step 1" "$TMP/session.log" \
    && ok "the session log has the session and its messages" || fail "session log: $(cat "$TMP/session.log" 2>&1)"

# --- conventions: focus and zoom, search, numbers, images, layer numbers --
run nav "${lm[@]}" steps=50 text='abc abcd' <<'EOF'
key Tab z
dump-screen
key z
key g /
type c
key Enter
expect x0 token 2 'c'
key / Enter
expect x0 token 6 'c'
key :
type 1
key Enter
wait-idle
expect x2 token 6
expect layer 1, all channels
key #
type 3
key Enter
wait-idle
expect layer 1, channel 3
key @
type 3
key Enter
expect x2 token 3 '␣'
key : C-u
type x0
key Enter
expect x0 token 3
EOF
rc_ok nav "search, go to layer, channel and token"
nth_dump nav 1 | sed -n 3p | grep -q 'depth' && ! nth_dump nav 1 | grep -q 'token norms' \
    && ok "Tab then z zooms the depth panel to the whole screen" || fail "zoom: $(nth_dump nav 1 | sed -n 3p)"
"$SSMLAB" train "${cls[@]}" steps=5 out="$TMP/fm" >/dev/null 2>&1
run img --model "$TMP/fm" <<'EOF'
dump-screen
EOF
rc_ok img "a Fashion-MNIST classifier"
classes='(T-shirt/top|Trouser|Pullover|Dress|Coat|Sandal|Shirt|Sneaker|Bag|Ankle boot)'
grep -qE "image 0 \\($classes, predicted $classes\\)" "$TMP/img.out" && grep -qE "$classes (→|->) $classes" "$TMP/img.out" \
    && ok "the test image is shown with its class names" || fail "no class names: $(grep -m2 'image' "$TMP/img.out")"
"$SSMLAB" inspect --model "$TMP/b7" --spectrum --format csv 2>/dev/null | awk -F, '$2=="layer"{print $3}' | tr '\n' ' ' >"$TMP/layers"
[ "$(cat "$TMP/layers")" = "0 1 " ] && grep -qE ' L0 +[a-z]+ +\+' "$TMP/inspect.out" && ! grep -qE ' L2 +[a-z]+ +\+' "$TMP/inspect.out" \
    && ok "layers are numbered 0..n-1 in the lab as in ssmlab inspect" || fail "layer numbers: inspect '$(cat "$TMP/layers")'"
# --- the run's history: shown when loaded, continued by the lab -----------
train "$TMP/h7" steps=30 eval_every=5 log_every=2
sha256sum "$TMP/h7/train.csv" >"$TMP/h7.sum"
run hist --model "$TMP/h7" "${lm[@]}" eval_every=5 log_every=2 --size 80x24 <<'EOF'
dump-screen
resize 220 60
dump-screen
key n n n n n
wait-idle
key q y
EOF
rc_ok hist "a checkpoint with a train.csv, at 80x24 and 220x60, trained on 5 steps"
val=$(awk -F, '$2=="val"{v=$3} END{printf "%.3f", v}' "$TMP/h7/train.csv")
for n in 1 2; do nth_dump hist $n >"$TMP/hist$n.screen"; done
grep -q "val $val" "$TMP/hist1.screen" && grep -q 'history: 6 val' "$TMP/hist1.screen" \
    && ok "80x24: the loss panel shows the loaded validation loss ($val), the history panel its 6 validations" \
    || fail "80x24 history: $(grep -m3 'history\|val' "$TMP/hist1.screen")"
spark='(▁|▂|▃|▄|▅|▆|▇|█|·)+'
for l in 'e\+' 'e-' 'res' 'mix' 't1/2' 'cos'; do
    grep -qE " $l +$spark" "$TMP/hist1.screen" || fail "80x24: no sparkline '$l'"
done
for l in 'eig \+' 'eig -' 'resid slope' 'mixer slope' 'half-life' 'cos_last'; do
    grep -qE "$l +$spark" "$TMP/hist2.screen" || fail "220x60: no sparkline '$l'"
done
grep -q "$TMP/h7/train.csv" "$TMP/hist2.screen" && ok "sparklines of the six metrics at both sizes, the file named at 220x60" \
    || fail "220x60: the file is not named"
curve=$(sed -n '/loss, nats/,/train [0-9]/p' "$TMP/hist1.screen" | grep -cE '(⠁|⠉|⠒|⠤|⣀|⡀|⢀|⠑|⠢|⠔|⠊)')
[ "$curve" -ge 3 ] && ok "the loaded training curve is drawn" || fail "no loss curve ($curve lines)"
sha256sum -c --quiet "$TMP/h7.sum" && ok "the loaded train.csv is unchanged" || fail "h7/train.csv was written"
rows=$(awk -F, 'NR>1 && $1<=30' "$TMP/h7-2/train.csv" | wc -l)
[ "$rows" = "$(($(wc -l <"$TMP/h7/train.csv") - 1))" ] && grep -q '^34,train,' "$TMP/h7-2/train.csv" \
    && awk -F, '$1==35 && $2=="val" && $10!="" {f=1} END{exit !f}' "$TMP/h7-2/train.csv" \
    && ok "h7-2/train.csv continues h7's rows with the lab's steps and a validation with dynamics" \
    || fail "h7-2/train.csv: $(tail -3 "$TMP/h7-2/train.csv" | cut -c1-60)"

# the R^2 rule: a fit with R^2 below 0.5 shows no half-life
for t in 2 3 4 5 6 7 8 9 10 11 12; do printf 'key @ C-u\ntype %s\nkey Enter\nwait-idle\ndump-screen\n' "$t"; done \
    | run r2 --model "$TMP/h7" "${lm[@]}" --size 220x60
rc_ok r2 "the influence of tokens 2 to 12"
grep -o 'I: no exponential decay (R2 [0-9.]* < 0.5)\|I half-life [^)]*R2 [0-9.]*)' "$TMP/r2.out" >"$TMP/r2.fits"
awk -F'R2 ' '{r = $2 + 0} /no exponential/{n++; if (r >= 0.5) bad++} /half-life/{h++; if (r < 0.5) bad++}
     END{exit !(n > 0 && h > 0 && !bad)}' "$TMP/r2.fits" \
    && ok "R2 < 0.5: 'no exponential decay'; R2 >= 0.5: the half-life ($(grep -c 'no exp' "$TMP/r2.fits") and $(grep -c half-life "$TMP/r2.fits") of 11)" \
    || fail "the R2 rule: $(sort "$TMP/r2.fits" | uniq -c | head -5)"
# --- the export key: the panels as SVG and PNG figures --------------------
(cd "$TMP" && printf 'key x\nwait-idle\nexpect wrote 12 figures (SVG and PNG) to figures/\nkey n\nwait-idle\nkey x\nexpect wrote 12 figures (SVG and PNG) to TMP/h7-3/figures/\nkey q n\n' \
    | run export --model "$TMP/h7" "${lm[@]}")
rc_ok export "x while inspecting writes ./figures, after a step the new run's figures/"
[ ! -e "$TMP/h7/figures" ] && ok "the loaded checkpoint's directory gets no figures" || fail "h7/figures was written"
bad_figs=$fails
for f in loss norms attention influence eigenvalues history; do
    for d in "$TMP/figures" "$TMP/h7-3/figures"; do
        xmllint --noout "$d/$f.svg" 2>/dev/null || fail "$d/$f.svg is not well-formed XML"
        [ "$(head -c 8 "$d/$f.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || fail "$d/$f.png is not a PNG"
    done
done
[ "$fails" = "$bad_figs" ] && ok "each export: six figures, SVG that xmllint accepts and PNG with the PNG signature"

conf="$(dirname "$0")/../../scenarios/m2-bytes-small.conf"
# 2 layers; d_inner 64 = 2 heads of head_dim 32 in the preset's 2 groups
m2=(d_model=32 n_layer=2 seq_len=32 batch_size=2 warmup=1 eval_batches=1 threads=1 data="$TMP/c.txt")

# the loss on the status line of dump N of script NAME
loss_of() { nth_dump "$1" "$2" | sed -n 2p | grep -oE 'loss [0-9.]+' | head -1 | cut -d' ' -f2; }

# --- Mamba-2: the run configuration: heads, groups, training --------------
run conf "$conf" "${m2[@]}" out="$TMP/runs/m2" eval_every=2 --paused <<'EOF'
wait-idle
dump-screen
expect eigenvalues of S_B S_Cᵀ per group
expect L0g0
expect L1g1
expect hidden attention α and influence I: layer 0, all heads
expect α: mean over heads of |α_h| (2)
key n
wait-step 1
dump-screen
key n
wait-step 2
key n
wait-step 3
dump-screen
key ]
wait-idle
expect layer 0, head 0
expect α: head 0 alone, |α_h|
key ] ]
wait-idle
expect layer 0, all heads
key #
expect Head (0..1, or mean):
type 2
key Enter
expect '2' is not a head: 0..1
key #
type 1
key Enter
wait-idle
expect layer 0, head 1
key j j
wait-idle
expect layer 1, head 1
dump-screen
key q n
EOF
rc_ok conf "a Mamba-2 run configuration opens, trains three steps and quits"
d1=$(nth_dump conf 1)
grep -q '│ loss - ' <<<"$d1" && ok "no loss before the first step" || fail "a loss before training: $(sed -n 2p <<<"$d1")"
l1=$(loss_of conf 2) l3=$(loss_of conf 3)
[ -n "$l1" ] && [ -n "$l3" ] && [ "$l1" != "$l3" ] && ok "training steps move the loss ($l1 -> $l3)" \
    || fail "the loss did not move: '$l1' '$l3'"
grep -cE '^.*L[01]g[01] +(positive|negative|mixed|complex) +\+[0-9]+ -[0-9]+ ~[0-9]+' <<<"$d1" | grep -qx 4 \
    && ok "four spectrum rows: two layers of two groups, each with its counts" \
    || fail "spectrum rows: $(grep -E 'L[0-9]g' <<<"$d1")"
rows=$(grep -c '^[0-9]*,val,' "$TMP/runs/m2/train.csv" 2>/dev/null)
dyn=$(awk -F, 'NR == 1 {for (i = 1; i <= NF; i++) if ($i == "eig_pos") c = i} $2 == "val" && $c != "" {n++} END {print n + 0}' \
      "$TMP/runs/m2/train.csv" 2>/dev/null)
[ "$rows" = 1 ] && [ "$dyn" = 1 ] && ok "the validation at step 2 wrote its row with the dynamics" \
    || fail "train.csv: $rows validation rows, $dyn with dynamics: $(cat "$TMP/runs/m2/train.csv" 2>&1)"

# --- Mamba-2: every view, per head; the settings it lacks refused --------
run views "$conf" "${m2[@]}" out="$TMP/runs/m2r" --paused <<'EOF'
wait-idle
key Tab Tab Tab Tab
key z
wait-idle
dump-screen
expect by score
key z
key i
wait-idle
dump-screen
expect horizon median
expect logit lens at
key i
key f
wait-idle
dump-screen
key f
key ]
wait-idle
key a
wait-idle
expect ablated layer 0 head 0
expect ablate 0:0
key P
wait-idle
expect pinned A = 0 in layer 0 head 0
# unsaved training: a new model the engine would build asks first; these are refused at once
key n
wait-step 1
key s
expect arch mamba2 is a language model on tokens
expect-not [y/n]
key p
expect must divide
expect-not [y/n]
key n
wait-step 2
dump-screen
expect 2/600
key q n
EOF
rc_ok views "importance, states per head, flow and interventions on a head; scenario and polarize refused; the lab steps"
nth_dump views 1 | grep -qE "^ *[0-9]+ +[0-9]+ +[0-9.-]+ '" && ok "z on the ranking: Mamba-2's importance, ranked" \
    || fail "no ranking: $(nth_dump views 1 | head -8)"
nth_dump views 2 | grep -qE '^hd +[0-9]' && ok "i: the horizons are counted per head (hd)" \
    || fail "no per-head horizon counts: $(nth_dump views 2 | grep -E '^(ch|hd) ')"
nth_dump views 3 | grep -qE 'flow .*(converging|diverging|no-trend)' && ok "f: the flow is measured, with its verdict" \
    || fail "no flow verdict: $(nth_dump views 3 | grep -i flow)"
grep -q "L0g1" <<<"$(nth_dump views 4)" && ok "after the interventions the panels still measure (spectrum per group)" \
    || fail "no spectrum after the interventions"

# --- Mamba-2: a checkpoint inspected, trained on as a new run, reloaded ----
"$SSMLAB" train "$conf" "${m2[@]}" steps=3 eval_every=0 out="$TMP/ck" >/dev/null 2>"$TMP/train.err" \
    || fail "ssmlab train a Mamba-2 checkpoint: $(tail -1 "$TMP/train.err")"
(cd "$TMP/ck" && sha256sum -- * | sort) >"$TMP/ck.sum"
run ck --model "$TMP/ck" "${m2[@]}" <<'EOF'
wait-idle
expect inspecting TMP/ck at step 3 (bf16 weights); training makes the new run TMP/ck-2
expect L1g1
expect all heads
key n
wait-step 4
expect training from step 3 as the new run TMP/ck-2
key w
key Enter
wait-idle
expect saved TMP/ck-2 at step 4
key q
EOF
rc_ok ck "a Mamba-2 checkpoint: inspected, one step as ck-2, saved"
(cd "$TMP/ck" && sha256sum -- * | sort) | cmp -s - "$TMP/ck.sum" && ok "the loaded checkpoint is untouched" \
    || fail "ck was written"
[ "$(step_of "$TMP/ck-2" 2>/dev/null)" = 4 ] && ok "ck-2 holds step 4" || fail "ck-2: no step-4 checkpoint"
run ck2 --model "$TMP/ck-2" "${m2[@]}" <<'EOF'
wait-idle
expect inspecting TMP/ck-2 at step 4
key n
wait-step 5
expect training from step 4 as the new run TMP/ck-2-2
key q n
EOF
rc_ok ck2 "the lab's Mamba-2 checkpoint reloads at its step and trains on"
finish
