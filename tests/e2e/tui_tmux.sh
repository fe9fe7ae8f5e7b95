#!/usr/bin/env bash
# tui_tmux.sh — drives the real `ssmlab tui` in a detached tmux session
# (120x40): training starts and the token norms appear, pause, the reorder
# refusal, a scenario change after confirmation (a new run named after it),
# the flow key's view in the depth panel, resize to too small and back
# (and to 80x24, with the key hint bar), a
# stderr line shown without corrupting the screen, quit with save (which
# says what it saved); a checkpoint written by ssmlab train, opened in the
# lab, shown in the states view (states and lens), ablated and pinned
# (the status line says so, also at 80x24) and cleared, toggled, stepped
# and saved on quit, stays byte-identical while the
# new run goes to a directory named after its settings; an image classifier
# whose reordering toggles; then a loaded run trained on and stopped by
# SIGTERM into a new run beside it, colour levels; a Mamba-2 model (per-group
# spectrum, head selector, a head ablated, its horizons, training goes on);
# and Ctrl-C.
# Keeps well under 60 s.
. "$(dirname "$0")/lib.sh"
command -v tmux >/dev/null || { fail "tmux is missing (scripts/deps.sh installs it)"; finish; }
tiny_corpus "$TMP/c.txt"
SOCK="ssmlab-test-$$"
T() { tmux -L "$SOCK" "$@"; }
trap 'T kill-server 2>/dev/null; rm -rf "$TMP"' EXIT
keys="$TMP/keys"; : >"$keys"
common=(d_model=32 n_layer=3 d_state=8 seq_len=32 batch_size=4 steps=100000 warmup=5 eval_every=0
        eval_batches=2 threads=1 data="$TMP/c.txt" keys="$keys" log="$TMP/tui.log")

screen() { T capture-pane -p -t tui 2>/dev/null; }
step_of() { python3 -c "import json,struct,sys;b=open(sys.argv[1]+'/model.safetensors','rb').read();n=struct.unpack('<Q',b[:8])[0];print(json.loads(b[8:8+n])['__metadata__']['ssmlab.step'])" "$1"; }
# wait_screen PATTERN [SECONDS]: the pane shows PATTERN (grep -E)
wait_screen() {
    local i n=$(( ${2:-15} * 10 ))
    for ((i = 0; i < n; i++)); do screen | grep -qE -- "$1" && return 0; sleep 0.1; done
    return 1
}
check() { # check PATTERN SECONDS WHAT
    if wait_screen "$1" "$2"; then ok "$3"; else fail "$3: /$1/ not on screen:"; screen | head -45; fi
}
press() { # press KEY PATTERN SECONDS WHAT: send KEY, then check
    T send-keys -t tui "$1"
    shift
    check "$@"
}
# step shown in the status line ("12/100000")
status_step() { screen | head -1 | grep -oE '[0-9]+/100000' | cut -d/ -f1; }
# advances WHAT: the step shown grows within a second
advances() {
    local a b
    a=$(status_step); sleep 1; b=$(status_step)
    [ -n "$a" ] && [ -n "$b" ] && [ "$b" -gt "$a" ] && ok "$1 ($a -> $b)" || fail "$1: the step did not advance: '$a' '$b'"
}
# start ARGS...: the TUI in a fresh tmux session; its pid in $TMP/pid, exit code in $TMP/exit
start() {
    rm -f "$TMP/exit" "$TMP/pid"
    T new-session -d -s tui -x 120 -y 40 \
        "echo \$\$ >'$TMP/pid'; LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=xterm-256color HOME='$TMP' $(printf '%q ' "$SSMLAB" tui "$@"); echo \$? >'$TMP/exit'; sleep 60"
    for _ in $(seq 50); do [ -s "$TMP/pid" ] && break; sleep 0.1; done
}
wait_exit() {
    for _ in $(seq ${1:-150}); do [ -s "$TMP/exit" ] && { cat "$TMP/exit"; return; }; sleep 0.1; done
    echo timeout
}

# --- a fresh run --------------------------------------------------------
start "${common[@]}" out="$TMP/run"
check 'token norms' 15 "the token-norm heatmap appears"
check '^x3' 5 "layers x0..x3 are rows of the heatmap"
check 'quick␣brown' 5 "columns are labelled with the text"
check '▶ training|▶ run ' 10 "training starts at once"
advances "the step advances"

T send-keys -t tui space
check 'paused at step' 5 "space pauses"
check '^residual [+-][0-9.]+.* (converging|diverging|mixed|no-trend)' 5 "the depth panel names the residual verdict"
T send-keys -t tui f
check '─ depth[^─]*\| flow[^─]* of layer 0' 5 "f: the flow of layer 0 beside the depth curve"
check ' t0 +flow +t5' 5 "with its flow-time axis"
check '^flow [+-][0-9.]+/t R\^2 [0-9.]+: (converging|diverging|no-trend)' 5 "and the flow verdict"
T send-keys -t tui f
T send-keys -t tui r
check 'reorder is for classifiers' 5 "reorder on a language model is refused with a reason"
T send-keys -t tui s
check 'New model \(scenario positive' 5 "changing the scenario asks first"
T send-keys -t tui y
check 'scen(ario)? positive' 10 "the new model has the positive scenario"
check 'L1 +positive +\+8 -0' 10 "its spectrum is all positive"
check ' 0/100000' 5 "and starts at step 0"

T resize-window -t tui -x 70 -y 20
check 'terminal too small: 70x20' 5 "a small terminal gets a message"
T resize-window -t tui -x 80 -y 24
check '\? help +q quit' 5 "at 80x24 the key hint bar is there"
T resize-window -t tui -x 120 -y 40
check 'token norms' 5 "back to 120x40 the panels return"

pid=$(cat "$TMP/pid"); tui_pid=$(pgrep -P "$pid" | head -1); tui_pid=${tui_pid:-$pid}
echo "hello from stderr" >"/proc/$tui_pid/fd/2" 2>/dev/null
check 'stderr: hello from stderr' 5 "a stderr line shows on the message line"
screen | head -1 | grep -q 'scen' && ok "the status line is intact" || fail "status line corrupted"
grep -q "hello from stderr" "$TMP/tui.log" && ok "stderr goes to the log file" || fail "no stderr in the log"

T send-keys -t tui space
sleep 1
T send-keys -t tui q
check 'Save the training' 5 "quit with unsaved training offers to save"
T send-keys -t tui y
rc=$(wait_exit)
[ "$rc" = 0 ] && ok "quit after saving exits 0" || fail "quit exit code $rc"
[ -f "$TMP/run-positive/model.safetensors" ] && [ -f "$TMP/run-positive/optimizer.safetensors" ] \
    && ok "checkpoint saved as the run run-positive" || fail "no checkpoint in run-positive: $(ls "$TMP")"
screen | grep -q 'token norms' && fail "the screen was not restored" || ok "the terminal is restored"
check "ssmlab: saved step [0-9]+ in $TMP/run-positive" 3 "quitting with save says what it saved"
T kill-server 2>/dev/null

# --- a checkpoint of ssmlab train is inspected and never written -----------
tiny_train "$TMP/b7" || fail "ssmlab train"
(cd "$TMP/b7" && sha256sum -- *) >"$TMP/b7.sum"
start --model "$TMP/b7" keys="$keys" log="$TMP/tui.log"
check '○ inspecting' 15 "a checkpoint opens to be inspected, not trained"
sleep 0.5
screen | head -1 | grep -q ' 2/2' && ok "it does not train by itself" || fail "inspecting trained: $(screen | head -1)"
T send-keys -t tui i
check '─ states ‖h_t‖: layers L0..L1' 10 "i: the states panel of the checkpoint"
check '^tok +<1 +1 +4 +16 .* inf' 5 "with its horizon bins"
check 'logit lens at .* \(token [0-9]+\)' 5 "and the logit lens of the selected token"
T send-keys -t tui ']' a
check 'intervened: ablate 0:0' 10 "a ablates the selected channel and the status line says so"
check 'states ‖h_t‖ \(intervened\)' 5 "the states are measured on the intervened model"
T send-keys -t tui P
check 'intervened: ablate 0:0, pin 0:0:\*=0' 10 "P pins it"
T resize-window -t tui -x 80 -y 24
check 'intervened: ablate 0:0' 5 "at 80x24 the status line still shows the interventions"
T resize-window -t tui -x 120 -y 40
T send-keys -t tui c
check 'interventions cleared' 10 "c clears them"
screen | head -1 | grep -q intervened && fail "still intervened: $(screen | head -1)" || ok "the status line is plain again"
T send-keys -t tui i
check '─ depth' 5 "i again: the depth panel returns"
T send-keys -t tui s
check 'New model \(scenario positive' 5 "toggling its scenario asks first"
T send-keys -t tui y
check 'b7-positive' 10 "the new model is the run b7-positive"
T send-keys -t tui n
check ' 1/2' 10 "one step"
T send-keys -t tui q
check "Save the training \(step 1\) to $TMP/b7-positive" 5 "quitting asks to save the new run"
T send-keys -t tui y
rc=$(wait_exit)
[ "$rc" = 0 ] && ok "quit with save exits 0" || fail "quit exit code $rc"
check "saved step 1 in $TMP/b7-positive" 3 "and says where it saved"
(cd "$TMP/b7" && sha256sum -- *) | cmp -s - "$TMP/b7.sum" && ok "the loaded checkpoint's files are byte-identical" \
    || fail "the loaded checkpoint changed"
[ -f "$TMP/b7-positive/model.safetensors" ] && [ "$(step_of "$TMP/b7-positive")" = 1 ] \
    && ok "the new run went to the settings-named b7-positive" || fail "no b7-positive: $(ls "$TMP")"
T kill-server 2>/dev/null

# --- an image classifier: reordering takes effect --------------------------
python3 "$(dirname "$0")/../data/make_idx_fixture.py" "$TMP/img"
start task=classify dataset=mnist data="$TMP/img" patch=2 d_model=16 n_layer=2 d_state=4 batch_size=16 \
    steps=100000 warmup=2 eval_every=0 eval_batches=0 threads=1 keys="$keys" out="$TMP/cls"
check 'of test image 0 \(label [0-9]' 15 "an image classifier opens on test image 0"
check '^y +0000111122223333' 5 "columns carry patch rows"
check '^x +0123012301230123' 5 "and patch columns"
check '▶ ' 10 "the classifier trains"
T send-keys -t tui r
check 'New model \(scenario default, polarize none, reorder hard' 5 "reordering asks first"
T send-keys -t tui y
check 'reord(er)? hard' 10 "the new model reorders its tokens"
check 'reordered' 5 "the ranking shows the reordered sequence"
check 'layer 0 reorders the tokens' 5 "the attention panel explains the reordering layer"
T send-keys -t tui q
if wait_screen 'Save the training' 3; then T send-keys -t tui n; fi
rc=$(wait_exit)
[ "$rc" = 0 ] && ok "the classifier session quits cleanly" || fail "classifier quit exit code $rc"
T kill-server 2>/dev/null

# --- a loaded run trained on, then SIGTERM ---------------------------------
saved_step=$(step_of "$TMP/run-positive")
(cd "$TMP/run-positive" && sha256sum -- *) >"$TMP/rp.sum"
start --model "$TMP/run-positive" "${common[@]}"
check "inspecting" 15 "the checkpoint loads to be inspected"
T send-keys -t tui space
check "▶ run-positive-2" 15 "space trains it as the new run run-positive-2"
sleep 1.5
pid=$(cat "$TMP/pid"); tui_pid=$(pgrep -P "$pid" | head -1)
kill -TERM "$tui_pid"
rc=$(wait_exit)
[ "$rc" = 130 ] && ok "SIGTERM exits 130" || fail "SIGTERM exit code $rc"
check 'interrupted at step [0-9]+; the run is saved' 3 "SIGTERM saves and says how to resume"
new_step=$(step_of "$TMP/run-positive-2")
[ "$new_step" -gt "$saved_step" ] && ok "the resumed run saved later steps into run-positive-2 ($saved_step -> $new_step)" \
    || fail "step $saved_step -> $new_step"
(cd "$TMP/run-positive" && sha256sum -- *) | cmp -s - "$TMP/rp.sum" && ok "the loaded run is untouched" || fail "run-positive changed"
T kill-server 2>/dev/null

# --- colour levels: truecolor (a direct-colour terminfo entry), 256, 8, none
mkdir -p "$TMP/terminfo"
printf '%s\n' 'ssmlab-direct|xterm-256color with 24-bit colour for tests,' \
    '	RGB, colors#0x1000000, pairs#0x10000,' \
    '	setaf=\E[38;2;%p1%{65536}%/%d;%p1%{256}%/%{255}%&%d;%p1%{255}%&%dm,' \
    '	setab=\E[48;2;%p1%{65536}%/%d;%p1%{256}%/%{255}%&%d;%p1%{255}%&%dm,' \
    '	use=xterm-256color,' >"$TMP/direct.src"
tic -x -o "$TMP/terminfo" "$TMP/direct.src" 2>/dev/null || fail "tic could not build the test terminfo entry"
colour_run() { # colour_run TERM PATTERN WHAT [ENV...]
    local term=$1 pattern=$2 what=$3; shift 3
    T new-session -d -s col -x 120 -y 40 "env TERMINFO='$TMP/terminfo' TERM=$term LC_ALL=C.UTF-8 HOME='$TMP' $* $(printf '%q ' "$SSMLAB" tui --paused "${common[@]}" out="$TMP/col"); sleep 30"
    local i
    for ((i = 0; i < 100; i++)); do T capture-pane -p -t col | grep -q 'token norms' && break; sleep 0.1; done
    sleep 0.3
    if T capture-pane -p -e -t col | grep -qE -- "$pattern"; then ok "$what"; else fail "$what: no /$pattern/"; fi
    T kill-session -t col
}
colour_run ssmlab-direct '48;2;253;231;37' "truecolor heatmap on a direct-colour terminal"
colour_run xterm-256color '48;5;[0-9]+m' "256 colours on xterm-256color"
colour_run xterm $'\e\\[4[0-7]m' "8/16 colours on xterm"
T new-session -d -s col -x 120 -y 40 "env TERM=xterm-256color LC_ALL=C.UTF-8 HOME='$TMP' NO_COLOR=1 $(printf '%q ' "$SSMLAB" tui --paused "${common[@]}" out="$TMP/col"); sleep 30"
for _ in $(seq 100); do T capture-pane -p -t col | grep -q 'token norms' && break; sleep 0.1; done
sleep 0.3
T capture-pane -p -e -t col | grep -qE $'\e\\[([34][0-7]|[34]8;)' && fail "NO_COLOR still coloured" || ok "NO_COLOR: no colours"
T capture-pane -p -t col | grep -qE '^x1 +[ .:=+*#%@-]*[:=+*#%@-]' && ok "NO_COLOR: density characters" || fail "NO_COLOR heatmap"
T kill-session -t col

# --- a Mamba-2 model: heads, groups, views, training ----------------------
m2conf="$(dirname "$0")/../../scenarios/m2-bytes-small.conf"
start "$m2conf" "${common[@]}" n_layer=2 out="$TMP/m2"   # d_inner 64: 2 heads of 32 in 2 groups
check 'eigenvalues of S_B S_Cᵀ per group' 15 "Mamba-2: the eigenvalue panel is per group"
check '^.*L1g1 +(positive|negative|mixed|complex)' 5 "Mamba-2: rows L0g0..L1g1"
check 'layer 0, all heads' 5 "Mamba-2: the attention panel averages heads"
check '▶ training|▶ m2 ' 10 "Mamba-2: training starts at once"
advances "Mamba-2: the step advances"
press ] 'layer 0, head 0' 5 "Mamba-2: ] selects head 0"
press a 'ablated layer 0 head 0' 5 "Mamba-2: a ablates the selected head"
press i 'horizon' 10 "Mamba-2: the states view shows the horizons"
T send-keys -t tui i
advances "Mamba-2: training goes on with the head ablated"
T send-keys -t tui q
if wait_screen 'Save the training' 3; then T send-keys -t tui y; fi
rc=$(wait_exit)
[ "$rc" = 0 ] && ok "the Mamba-2 session quits cleanly" || fail "Mamba-2 quit exit code $rc"
[ -f "$TMP/m2/model.safetensors" ] && ok "Mamba-2: quit with save wrote the checkpoint" || fail "no Mamba-2 checkpoint"
T kill-server 2>/dev/null

# --- Ctrl-C --------------------------------------------------------------
start "${common[@]}" out="$TMP/run2"
check '▶ ' 15 "a second run trains"
sleep 1
T send-keys -t tui C-c
rc=$(wait_exit)
[ "$rc" = 130 ] && ok "Ctrl-C exits 130" || fail "Ctrl-C exit code $rc"
[ -f "$TMP/run2/optimizer.safetensors" ] && ok "Ctrl-C saved a resumable checkpoint" || fail "no checkpoint after Ctrl-C"
finish
