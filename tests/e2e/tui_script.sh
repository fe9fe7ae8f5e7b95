#!/usr/bin/env bash
# tui_script.sh — the TUI without a display (`ssmlab tui --script`): screen
# dumps after keys show every panel, steps, a scenario change after
# confirmation (the runs and checkpoints rules are tui_lab.sh's), polarization, the reorder refusal, text editing, selection
# by keys and clicks, hidden-attention channels, the influence and its
# decay, the states and logit-lens panels with ablations and pins (the
# status line, clear), plot styles, the help screen (also in two columns at 80x24), a too
# small terminal, save and load through prompts with Tab completion, rebound
# keys, colour and locale fallbacks, cancelling a validation and an
# influence; an image classifier loaded from its checkpoint (patch indices,
# picking a test image, reordering, training and validating with accuracy),
# trained from a config, and loaded into a language-model session and back;
# then bad inputs and the latency measurement.
. "$(dirname "$0")/lib.sh"
tiny_corpus "$TMP/c.txt"
export HOME="$TMP" LC_ALL=C.UTF-8
common=(d_model=16 n_layer=3 d_state=4 seq_len=16 batch_size=2 steps=1000 warmup=1 eval_every=0
        eval_batches=1 threads=1 data="$TMP/c.txt" out="$TMP/run")

# run_script NAME [ARGS...] <script: runs it, dumps in $TMP/NAME.out
run_script() {
    local name=$1; shift
    cat >"$TMP/$name.txt"
    "$SSMLAB" tui --script "$TMP/$name.txt" "${common[@]}" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
    echo $? >"$TMP/$name.rc"
}
# has NAME PATTERN WHAT: the dumps of NAME match PATTERN (grep -E)
has() { grep -qE -- "$2" "$TMP/$1.out" && ok "$3" || { fail "$3: /$2/ not in the dump"; head -45 "$TMP/$1.out"; }; }
rc_is() { [ "$(cat "$TMP/$1.rc")" = "$2" ] && ok "$1 exits $2" || fail "$1 exits $(cat "$TMP/$1.rc"), expected $2: $(cat "$TMP/$1.err")"; }
# dump N of NAME into a file
nth_dump() { awk -v n="$2" '/^--- screen/{k++} k==n' "$TMP/$1.out"; }

cat >"$TMP/main.txt" <<'EOF'
dump-screen
expect over 16x16 channels, exact
expect I half-life
key n n n
wait-idle
dump-screen
key s
expect New model (scenario positive
key n
expect-not scen positive
key s y
wait-idle
dump-screen
key p
wait-idle
expect polar zero
key r
expect reorder is for classifiers
key e C-u
type abc!
key Enter
wait-idle
dump-screen
key g j j l
wait-idle
expect x2 token 1
click 3 6
wait-idle
expect x1 token 2
key ]
wait-idle
expect channel 0
key [
wait-idle
expect mean over channels
key ?
dump-screen
key x
expect-not keys (any key closes
key m
expect plot style: blocks
key m
expect plot style: ascii
key m
expect plot style: braille
resize 70 20
expect terminal too small: 70x20
resize 120 40
expect token norms
key w C-u
type RUN/saved
key Enter
wait-idle
expect saved RUN/saved at step 0
key o C-u
type RUN/sav
key Tab
expect Load checkpoint to inspect: RUN/saved/
key Enter
wait-idle
expect loaded RUN/saved/ at step 0
dump-screen
resize 80 24
key ?
dump-screen
EOF
sed -i "s|RUN|$TMP|g" "$TMP/main.txt"
"$SSMLAB" tui --script "$TMP/main.txt" "${common[@]}" >"$TMP/main.out" 2>"$TMP/main.err"; echo $? >"$TMP/main.rc"
rc_is main 0
nth_dump main 1 >"$TMP/d1"
for title in 'token norms' 'depth' 'loss, nats per byte' 'eigenvalues of S_B S_C' 'importance' 'history' 'hidden attention'; do
    grep -q "$title" "$TMP/d1" && ok "panel '$title' is drawn" || fail "panel '$title' missing"
done
grep -qE '^x3' "$TMP/d1" && grep -qE '^x0' "$TMP/d1" && ok "heatmap rows x0..x3" || fail "heatmap rows"
grep -q 'The␣quick␣brown␣fox␣jumps' "$TMP/d1" && ok "columns labelled with the text" || fail "no text labels"
grep -qE 'scen(ario)? default' "$TMP/d1" && grep -q 'reord' "$TMP/d1" && grep -q 'polar' "$TMP/d1" \
    && ok "status shows scenario, reorder, polarize" || fail "status line: $(head -1 "$TMP/d1")"
for who in residual mixer; do
    grep -qE "^$who [+-][0-9.]+(/layer R\^2 [0-9.]+:| R2 [0-9.]+) (converging|diverging|mixed|no-trend)" "$TMP/d1" \
        && ok "depth panel: the $who verdict with slope and R^2" || fail "no $who verdict"
done
grep -qE '^flow [+-][0-9.]+(/t R\^2 [0-9.]+:| R2 [0-9.]+) (converging|diverging|no-trend)' "$TMP/d1" \
    && ok "depth panel: the flow verdict" || fail "no flow verdict"
nth_dump main 2 | sed -n 2p | grep -qE ' 3/1000' && ok "three steps in the status line" || fail "step after n n n"
nth_dump main 2 | grep -qE 'train [0-9]+\.[0-9]+' && ok "training loss shown" || fail "no training loss"
nth_dump main 3 | grep -qE 'L1 +positive +\+4 -0 ~0 +\+\+\+\+' && ok "positive scenario: all eigenvalues positive" \
    || fail "spectrum after the positive scenario"
nth_dump main 4 | grep -qE '^ +abc!$' && ok "edited text labels the columns" || fail "edited text"
n_actions=$("$SSMLAB" tui --keys-mdoc | grep -c '^\.It')
n_help=0
n_small=0
for a in $("$SSMLAB" tui --keys-mdoc | sed -n 's/.*Pq Cm \(.*\)/\1/p'); do
    nth_dump main 5 | grep -qE " $a +[A-Z]" && n_help=$((n_help + 1))
    nth_dump main 7 | grep -qE " $a +[A-Z]" && n_small=$((n_small + 1))
done
[ "$n_help" = "$n_actions" ] && ok "help screen lists all $n_actions actions" || fail "help lists $n_help of $n_actions actions"
[ "$n_small" = "$n_actions" ] && ok "at 80x24 the help lists all $n_actions actions (two columns)" \
    || fail "help at 80x24 lists $n_small of $n_actions actions"
[ -f "$TMP/saved/model.safetensors" ] && ok "save through the prompt" || fail "no saved checkpoint"

# the flow key: the depth panel shows the selected layer's flow beside the
# depth curve, follows the layer selection, and goes back
run_script flow <<'EOF'
wait-idle
dump-screen
key f
wait-idle
dump-screen
key j j
wait-idle
dump-screen
key f
dump-screen
EOF
rc_is flow 0
nth_dump flow 1 | grep -qE '─ depth[^─]*flow' && fail "flow view before the key" || ok "depth curve alone at first"
nth_dump flow 2 >"$TMP/f2"
grep -qE '─ depth[^─]*\| flow[^─]* of layer 0' "$TMP/f2" && ok "flow key: the flow of layer 0 beside the depth curve" \
    || fail "no flow view: $(grep depth "$TMP/f2")"
grep -qE ' t0 +flow +t5( |$)' "$TMP/f2" && ok "flow time axis t0..t5 (50 steps of 0.1)" || fail "no flow time axis"
grep -qE '^flow [+-][0-9.]+/t R\^2 [0-9.]+: (converging|diverging|no-trend)' "$TMP/f2" \
    && ok "flow view: the flow verdict with rate and R^2" || fail "flow verdict in the flow view"
grep -q 'depth panel: the flow of layer 0 beside the depth curve' "$TMP/f2" && ok "flow key message" || fail "no message"
nth_dump flow 3 | grep -qE '─ depth[^─]*\| flow[^─]* of layer 1' && ok "the flow follows the selected layer" \
    || fail "flow after j j: $(nth_dump flow 3 | grep depth)"
nth_dump flow 4 | grep -qE '─ depth[^─]*flow' && fail "flow key again: still the flow" \
    || ok "flow key again: the depth curve alone"

# the states view: the states and lens panels in the middle row; ablating
# and pinning the selected channel re-measures every panel, the status line
# says what is intervened, and clear goes back
run_script states <<'EOF'
wait-idle
key a
expect select a channel first
key i
wait-idle
dump-screen
key j ]
wait-idle
key a
wait-idle
dump-screen
key P
wait-idle
dump-screen
key a
wait-idle
expect no longer ablated
key c
wait-idle
dump-screen
key c
expect no ablations or pins to clear
resize 80 24
dump-screen
key i
dump-screen
EOF
rc_is states 0
nth_dump states 1 >"$TMP/s1"
grep -qE '─ states ‖h_t‖: layers L0..L2 down' "$TMP/s1" && ok "i: the states panel, layers L0..L2" || fail "no states panel"
grep -qE '^L2 ' "$TMP/s1" && grep -qE '^tok +<1 +1 +4 +16 +64 +256 +1k +4k +16k +inf' "$TMP/s1" \
    && ok "states: a row per layer and the horizon bins in tokens, inf last" || fail "states rows or horizon bins"
grep -qE '^ch( +[0-9]+){10}' "$TMP/s1" && ok "states: channel counts per horizon bin" || fail "no horizon counts"
grep -qE '─ logit lens at .\.. \(token 72\)' "$TMP/s1" && ok "the lens panel at the selected token" || fail "no lens title"
grep -qE 'x3  .{1,10} .* [01]\.[0-9]{2} +[0-9]+\.[0-9]{2} +0\.00' "$TMP/s1" \
    && ok "lens: the last row's KL(final||lens) is 0" || fail "lens rows: $(grep -E '^ *x[0-3] ' "$TMP/s1" | head -4)"
grep -q '─ depth' "$TMP/s1" && fail "the depth panel is still drawn in the states view" || ok "the states view replaces depth, loss, spectrum"
nth_dump states 2 >"$TMP/s2"
sed -n 2p "$TMP/s2" | grep -q 'intervened: ablate 0:0 *$' && ok "the status line shows the ablation" \
    || fail "status: $(sed -n 2p "$TMP/s2")"
grep -q 'ablated layer 0 channel 0' "$TMP/s2" && grep -q 'states ‖h_t‖ (intervened)' "$TMP/s2" \
    && ok "ablating says so and the panels are marked intervened" || fail "ablate message or marks"
grep -q 'hidden attention α and influence I: layer 0, channel 0' "$TMP/s2" && ok "the selected channel is the attention's" \
    || fail "attention channel"
nth_dump states 3 >"$TMP/s3"
sed -n 2p "$TMP/s3" | grep -q 'intervened: ablate 0:0, pin 0:0:\*=0' && ok "the status line shows the pin" \
    || fail "status: $(sed -n 2p "$TMP/s3")"
grep -qE 'L0 horizons?.* [1-9][0-9]*( of |/)32 ' "$TMP/s3" && ok "the pinned channel's horizon is infinite" \
    || fail "horizons: $(grep -E 'horizon' "$TMP/s3")"
nth_dump states 4 >"$TMP/s4"
grep -q 'intervened' "$TMP/s4" && fail "intervened after clear" || ok "clear: no interventions left"
grep -q 'interventions cleared' "$TMP/s4" && ok "clear says so" || fail "no clear message"
cmp -s <(grep -E '^ *x[0-3] ' "$TMP/s1" | cut -c60-) <(grep -E '^ *x[0-3] ' "$TMP/s4" | cut -c60-) \
    && ok "cleared: the lens is the model's again" || fail "lens after clear differs"
nth_dump states 5 >"$TMP/s5"
grep -q '─ states' "$TMP/s5" && grep -q 'logit lens' "$TMP/s5" && grep -qE '^tok +<1' "$TMP/s5" \
    && ok "at 80x24 the states (with horizons) and lens panels fit" || fail "80x24 states view"
nth_dump states 6 | grep -q '─ depth' && ok "i again: depth, loss and spectrum" || fail "no depth after i i"

# plot styles: Braille, then blocks, then ASCII
run_script plots <<'EOF'
key n n
wait-idle
dump-screen
key m
dump-screen
key m
dump-screen
EOF
rc_is plots 0
braille='[\x{2801}-\x{28ff}]' quad='[\x{2580}\x{2584}\x{2588}\x{258c}\x{2590}\x{2596}-\x{259f}]'
nth_dump plots 1 | grep -qP "$braille" && ok "Braille plots by default" || fail "no Braille plot"
nth_dump plots 2 | grep -qP "$quad" && ! nth_dump plots 2 | grep -qP "$braille" && ok "block plots after m" \
    || fail "block plots: $(nth_dump plots 2 | sed -n 9,12p)"
nth_dump plots 3 | grep -qP "$quad|$braille" && fail "ASCII plots still use block or Braille glyphs" \
    || ok "ASCII plots after m m"
nth_dump plots 3 | sed -n 9,19p | cut -c1-36 | grep -qE "[.':]" && ok "ASCII plot glyphs" || fail "no ASCII plot glyphs"

# rebound keys, no colour, ASCII locale
printf 'step = x\nquit = Q\n' >"$TMP/keys"
run_script rebind keys="$TMP/keys" color=none <<'EOF'
key n
wait-idle
key x x
wait-idle
dump-screen
key ?
expect colours none
EOF
rc_is rebind 0
has rebind ' 2/1000' "a rebound key steps (and the old one does not)"
has rebind '^x[0-9] +[ .:=+*#%@-]*[:=+*#%@-]' "without colour the heatmap uses density characters"
LC_ALL=C run_script ascii <<'EOF'
key n
wait-idle
dump-screen
EOF
rc_is ascii 0
LC_ALL=C grep -q $'[\x80-\xff]' "$TMP/ascii.out" && fail "non-ASCII output in the C locale" || ok "the C locale gets ASCII only"
has ascii '\|x_\{l,t\}\|' "ASCII norm symbols"
NO_COLOR=1 run_script nocolor <<'EOF'
key ?
expect colours none
EOF
rc_is nocolor 0

# cancelling a long computation: validation over a large split
for i in $(seq 1 4000); do echo "Line $i of a corpus large enough that validating it takes a while."; done >"$TMP/big.txt"
run_script cancel data="$TMP/big.txt" d_model=64 seq_len=64 batch_size=4 <<'EOF'
key v
wait-text validating
key Esc
wait-text validation cancelled
EOF
rc_is cancel 0

# cancelling a long influence: a 16-layer model on 256 tokens
long_text=$(python3 -c "print(('Pack my box with five dozen liquor jugs. ' * 10)[:256])")
run_script infcancel d_model=64 n_layer=16 text=ab <<EOF
key e C-u
type $long_text
key Enter
wait-text measuring
key Esc
wait-text cancelled
dump-screen
key G
wait-idle
dump-screen
EOF
rc_is infcancel 0
nth_dump infcancel 2 | grep -qE 'I half-life|I: no exp' && ok "selecting a token measures the influence again" \
    || fail "no influence after the cancel: $(nth_dump infcancel 2 | tail -3)"
has infcancel '(hidden attention|influence) cancelled' "Esc cancels a long attention or influence measurement"

# an image classifier: its checkpoint (test images, patch indices, reordering, accuracy) and its config
IMG="$TMP/img"
python3 "$(dirname "$0")/../data/make_idx_fixture.py" "$IMG"
cls=(task=classify dataset=mnist data="$IMG" patch=2 d_model=16 n_layer=2 d_state=4 batch_size=16 warmup=2
     eval_every=0 eval_batches=0 threads=1)
"$SSMLAB" train "${cls[@]}" steps=20 out="$TMP/cls" >/dev/null 2>"$TMP/cls.err" || fail "training the classifier: $(tail -1 "$TMP/cls.err")"
run_plain() { # run_plain NAME ARGS... <script: like run_script without the language-model arguments
    local name=$1; shift
    cat >"$TMP/$name.txt"
    "$SSMLAB" tui --script "$TMP/$name.txt" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
    echo $? >"$TMP/$name.rc"
}
run_plain image --model "$TMP/cls" <<'EOF'
dump-screen
expect loss (nats) and accuracy
key e C-u
type 5
key Enter
wait-idle
expect test image 5 (label
key e C-u
type 99
key Enter
expect '99' is not a test image: 0..63
key g l l l l l
wait-idle
expect token 5 y1x1
key n n
wait-idle
key v
wait-text accuracy
key r
expect New model (scenario default, polarize none, reorder hard)
key y
wait-idle
dump-screen
key j j
wait-idle
expect-not layer 0 reorders the tokens
key i
wait-idle
expect the logit lens needs a language model
expect ─ states
EOF
rc_is image 0
has image 'token norms .* of (test )?image 0 \(label [0-3], predicted [0-3]\)' "an image's heatmap names the test image, label and prediction"
nth_dump image 1 | grep -qE '^y +0000111122223333' && nth_dump image 1 | grep -qE '^x +0123012301230123' \
    && ok "columns are labelled with patch rows and columns" || fail "patch labels: $(nth_dump image 1 | sed -n 7,9p)"
nth_dump image 1 | grep -qE 'chance 1\.386|ch 1\.39' && ok "the loss panel's baseline is chance, ln 4" || fail "no chance baseline"
nth_dump image 2 | grep -qE 'reord(er)? hard' && ok "r reorders the classifier's tokens" || fail "reorder: $(nth_dump image 2 | head -1)"
nth_dump image 2 | grep -q 'reordered' && ok "the ranking shows the reordered sequence" || fail "ranking after reorder"
nth_dump image 2 | grep -q 'layer 0 reorders the tokens' && ok "the attention explains the reordering layer" || fail "reordering layer note"
run_plain imgcfg "${cls[@]}" steps=50 out="$TMP/cls2" image=3 <<'EOF'
expect test image 3 (label
key n n n
wait-idle
dump-screen
EOF
rc_is imgcfg 0
has imgcfg ' 3/50' "an image classifier trains in the TUI from its config"
has imgcfg 'train [0-9.]+ [0-9]+%' "with its training accuracy"

# loading a classifier into a language-model session and back
run_script switch <<EOF
key w C-u
type $TMP/lm
key Enter
wait-idle
key o C-u
type $TMP/cls
key Enter
wait-idle
expect test image 0 (label
key o C-u
type $TMP/lm
key Enter
wait-idle
expect The␣quick␣brown␣fox␣jumps
expect token 72 '.'
EOF
rc_is switch 0

# bad inputs
printf 'key n\nfrobnicate\n' >"$TMP/bad.txt"
expect_error 65 'bad.txt:2: unknown command' "$SSMLAB" tui --script "$TMP/bad.txt" "${common[@]}"
printf 'expect no such text\n' >"$TMP/exp.txt"
expect_error 1 "exp.txt:1: the screen does not show" "$SSMLAB" tui --script "$TMP/exp.txt" "${common[@]}"
printf 'fly = f\n' >"$TMP/badkeys"
expect_error 78 'badkeys:1: unknown action' "$SSMLAB" tui --script "$TMP/exp.txt" keys="$TMP/badkeys" "${common[@]}"
expect_error 66 'cannot open the script' "$SSMLAB" tui --script "$TMP/none.txt" "${common[@]}"
expect_error 64 "--size: '5x5' is not" "$SSMLAB" tui --script "$TMP/exp.txt" --size 5x5
expect_error 64 'unknown option' "$SSMLAB" tui --frob
expect_error 78 'unknown key' "$SSMLAB" tui --script "$TMP/exp.txt" frob=1
expect_error 69 'TERM=dumb.*ssmlab train' env TERM=dumb "$SSMLAB" tui "${common[@]}"
expect_error 69 'needs a terminal' env TERM=xterm "$SSMLAB" tui "${common[@]}"
expect_error 66 'nothing' "$SSMLAB" tui --script "$TMP/exp.txt" --model "$TMP/nothing"
expect_error 64 'image 64: .* has 64 test images' "$SSMLAB" tui --script "$TMP/exp.txt" --model "$TMP/cls" image=64
expect_error 64 "bad value in 'image=-1'" "$SSMLAB" tui --script "$TMP/exp.txt" image=-1
for bad in 'sleep lots' 'sleep' 'wait-idle 2s' 'wait-step 3abc' 'wait-step 3 -1'; do
    printf '%s\n' "$bad" >"$TMP/badnum.txt"
    expect_error 65 "badnum.txt:1: .* not" "$SSMLAB" tui --script "$TMP/badnum.txt" "${common[@]}"
done

# the latency measurement
"$SSMLAB" tui --bench-latency --bench-keys 40 "${common[@]}" >"$TMP/lat.csv" 2>"$TMP/lat.err"
if awk -F, 'NR==2 && $1=="tui-latency" && $2==40 && $4 < 50 {ok=1} END {exit !ok}' "$TMP/lat.csv"; then
    ok "tui-latency: $(tail -1 "$TMP/lat.csv")"
else fail "latency: $(cat "$TMP/lat.csv" "$TMP/lat.err")"; fi
finish
