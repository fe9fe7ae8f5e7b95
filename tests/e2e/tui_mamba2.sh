#!/usr/bin/env bash
# tui_mamba2.sh — a Mamba-2 model in the lab without a display (`ssmlab tui
# --script`), from scenarios/m2-bytes-small.conf and from a checkpoint that
# ssmlab train wrote: the hidden-attention selector picks heads and says
# so, the eigenvalue panel has a row per group, training steps move the
# loss and validations write their dynamics, the views the engine does not
# have for Mamba-2 yet (importance, states, flow, interventions) show its
# refusal in their place while the lab goes on, the settings a Mamba-2
# model refuses are refused before any question, and a loaded checkpoint
# trains on as a new run that saves and reloads.
. "$(dirname "$0")/lib.sh"
export HOME="$TMP" LC_ALL=C.UTF-8
tiny_corpus "$TMP/c.txt"
conf="$(dirname "$0")/../../scenarios/m2-bytes-small.conf"
# 2 layers; d_inner 64 = 2 heads of head_dim 32 in the preset's 2 groups
m2=(d_model=32 n_layer=2 seq_len=32 batch_size=2 warmup=1 eval_batches=1 threads=1 data="$TMP/c.txt")
refusal='not available for mamba2 models yet'

# run NAME ARGS... <script: the lab on it; dumps in $TMP/NAME.out, status in $TMP/NAME.rc
run() {
    local name=$1; shift
    sed "s|TMP|$TMP|g" >"$TMP/$name.txt"
    "$SSMLAB" tui --script "$TMP/$name.txt" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
    echo $? >"$TMP/$name.rc"
}
rc_ok() { [ "$(cat "$TMP/$1.rc")" = 0 ] && ok "$2" || fail "$2: exit $(cat "$TMP/$1.rc"): $(tail -3 "$TMP/$1.err")"; }
nth_dump() { awk -v n="$2" '/^--- screen/{k++} k==n' "$TMP/$1.out"; }
# the loss on the status line of dump N
loss_of() { nth_dump "$1" "$2" | sed -n 2p | grep -oE 'loss [0-9.]+' | head -1 | cut -d' ' -f2; }
step_of() { python3 -c "import json,struct,sys;b=open(sys.argv[1]+'/model.safetensors','rb').read();n=struct.unpack('<Q',b[:8])[0];print(json.loads(b[8:8+n])['__metadata__']['ssmlab.step'])" "$1"; }

# --- 1. the run configuration: heads, groups, training ---------------------
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

# --- 2. the views Mamba-2 does not have yet: the engine's refusal ----------
run refuse "$conf" "${m2[@]}" out="$TMP/runs/m2r" --paused <<'EOF'
wait-idle
key Tab Tab Tab Tab
key z
wait-idle
dump-screen
expect the importance ranking: not available for mamba2 models yet (Mamba-1 only)
key z
key i
wait-idle
dump-screen
expect the states and their horizons: not available for mamba2 models yet
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
expect interventions (ablations, pins): not available for mamba2 models yet (Mamba-1 only)
expect-not ablate 0:0
key P
wait-idle
expect interventions (ablations, pins): not available for mamba2 models yet
key s
expect arch mamba2 is a language model on tokens
expect-not [y/n]
key p
expect-not [y/n]
key n
wait-step 1
dump-screen
expect 1/600
key q n
EOF
rc_ok refuse "importance, states, flow, interventions and settings refused; the lab goes on and steps"
# the depth panel's left 37 columns, rows joined: the note is wrapped beside the curve
nth_dump refuse 3 | python3 -c 'import re, sys; rows = sys.stdin.read().split("\n")[8:20]
print(re.sub("[\u2800-\u28ff]", " ", " ".join(r[:37] for r in rows)))' \
    | tr -s ' ' | grep -q "the flow (one-layer runs): not available for mamba2 models yet (Mamba-1 only)" \
    && ok "f: the depth panel shows the flow's refusal beside the depth curve" \
    || fail "no flow refusal in the depth panel: $(nth_dump refuse 3 | sed -n 9,16p)"
grep -q "L0g1" <<<"$(nth_dump refuse 4)" && ok "after the refusals the panels still measure (spectrum per group)" \
    || fail "no spectrum after the refusals"

# --- 3. a Mamba-2 checkpoint: inspected, trained on as a new run, reloaded --
"$SSMLAB" train "$conf" "${m2[@]}" steps=3 eval_every=0 out="$TMP/ck" >/dev/null 2>"$TMP/train.err" \
    || fail "ssmlab train a Mamba-2 checkpoint: $(tail -1 "$TMP/train.err")"
(cd "$TMP/ck" && sha256sum -- * | sort) >"$TMP/ck.sum"
run ck --model "$TMP/ck" "${m2[@]}" <<'EOF'
wait-idle
expect inspecting TMP/ck at step 3; training makes the new run TMP/ck-2
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
