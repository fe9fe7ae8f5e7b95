#!/usr/bin/env bash
# kill_trials.sh — kill -9 trials of training: a tiny run saving every 2
# steps is killed with SIGKILL at 20 seeded random moments; after each, the
# checkpoint left behind must load, its model and optimizer state must be
# of one step, and resume= must continue with the losses of an
# uninterrupted run (train.csv rows after the resumed step, to 1e-6).
# KILL_SEED seeds the moments, drawn as fractions of the reference run's
# time (default 1); no trial starts after 50 s, so it ends within a minute.
# A checkpoint whose model is a save ahead of its optimizer state fails as
# "mixed steps", naming both steps.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.sh

TRIALS=${KILL_TRIALS:-20}
STEPS=60
tiny_corpus "$TMP/corpus.txt"
# the tiny run, saving every 2 steps (started directly, so that $! is ssmlab itself)
RUN=(train d_model=16 n_layer=2 d_state=4 seq_len=16 batch_size=2 steps=$STEPS warmup=5 eval_every=0
     eval_batches=1 threads=1 log_every=1 save_every=2 data="$TMP/corpus.txt")

# step_of FILE KEY: the step a safetensors file's metadata records (its
# JSON header is read as text: python would cost a second a trial here)
step_of() {
    head -c 65536 "$1" | tr -c '[:print:]' ' ' | grep -o "\"$2\" *: *\"[0-9]*\"" | head -1 | tr -dc '0-9'
}

# losses CSV FROM TO: "step loss" of the training rows FROM < step <= TO
losses() { awk -F, -v a="$2" -v b="$3" '$2 == "train" && $1 > a && $1 <= b { print $1, $3 }' "$1"; }

t0=$(date +%s.%N)
"$SSMLAB" "${RUN[@]}" out="$TMP/ref" >/dev/null 2>"$TMP/ref.err" || { cat "$TMP/ref.err"; fail "the reference run failed"; finish; }
span=$(echo "$(date +%s.%N) - $t0" | bc)   # seconds the whole run takes
ok "reference run of $STEPS steps in ${span%???????} s"

RANDOM=${KILL_SEED:-1}
bad=0 mixed=0 unsaved=0
ran=0
for i in $(seq 1 "$TRIALS"); do
    # the time bound: no trial starts after 50 s
    if [ "$(echo "$(date +%s.%N) - $t0 > 50" | bc)" = 1 ]; then echo "# time is up after $ran trials"; break; fi
    ran=$i
    dir="$TMP/trial$i"
    delay=$(echo "scale=3; 0.05 + $span * $RANDOM / 32768" | bc)
    "$SSMLAB" "${RUN[@]}" out="$dir" >/dev/null 2>"$TMP/trial.err" &
    pid=$!
    sleep "$delay"
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    what="trial $i (killed after ${delay} s)"
    if [ ! -f "$dir/model.safetensors" ]; then
        unsaved=$((unsaved + 1)); ok "$what: killed before the first save"; continue
    fi
    if ! "$SSMLAB" eval --model "$dir" --tokens 72,101,108,108,111 >/dev/null 2>"$TMP/eval.err"; then
        bad=$((bad + 1)); fail "$what: the checkpoint left behind does not load: $(grep -v '^#' "$TMP/eval.err")"; continue
    fi
    ms=$(step_of "$dir/model.safetensors" ssmlab.step)
    os=$(step_of "$dir/optimizer.safetensors" step)
    if [ -z "$ms" ] || [ -z "$os" ]; then
        bad=$((bad + 1)); fail "$what: no step in the metadata of model.safetensors ($ms) or optimizer.safetensors ($os)"
        continue
    fi
    if [ "$ms" != "$os" ]; then
        bad=$((bad + 1)); mixed=$((mixed + 1))
        fail "$what: mixed steps: model.safetensors is at step $ms, optimizer.safetensors at step $os" \
             "(the checkpoint directory was not committed as one unit)"
        continue
    fi
    to=$((ms + 4 > STEPS ? STEPS : ms + 4))
    if [ "$ms" -lt "$STEPS" ]; then
        stop=$((to < STEPS ? to : 0))
        if ! "$SSMLAB" "${RUN[@]}" out="$dir" resume="$dir" stop_at=$stop save_every=0 >/dev/null 2>"$TMP/resume.err"; then
            bad=$((bad + 1)); fail "$what: resume from step $ms failed: $(grep -v '^#' "$TMP/resume.err" | tail -1)"
            continue
        fi
    fi
    got=$(losses "$dir/train.csv" "$ms" "$to")
    want=$(losses "$TMP/ref/train.csv" "$ms" "$to")
    diff=$(paste -d' ' <(echo "$want") <(echo "$got") | awk '
        NF != 4 || $1 != $3 { print "row", $0; exit }
        { d = $2 - $4; if (d < 0) d = -d; if (d > 1e-6) { print "step", $1, "loss", $4, "!=", $2; exit } }')
    if [ -n "$diff" ] || [ -z "$want" ] && [ "$ms" -lt "$STEPS" ]; then
        bad=$((bad + 1)); fail "$what: resumed at step $ms, the losses differ from the uninterrupted run: ${diff:-no rows}"
    elif [ "$ms" -eq "$STEPS" ]; then ok "$what: the run had finished; its checkpoint of step $ms loads"
    else ok "$what: checkpoint of step $ms loads; resumed, steps $((ms + 1))..$to match the reference"; fi
done
elapsed=$(echo "$(date +%s.%N) - $t0" | bc)
echo "kill trials: $ran of $TRIALS, failed $bad (mixed steps $mixed), killed before the first save $unsaved, ${elapsed%???????} s"
finish
