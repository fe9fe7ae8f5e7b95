#!/usr/bin/env bash
# mpi_sweep.sh — ssmlab sweep under mpirun on loopback: 2 presets x 2
# seeds over two ranks write the tables one process writes (every column
# but the timings); a run whose process is killed with SIGKILL mid-sweep
# is reported and marked failed, its training child stops, and the other
# runs finish into the tables.  Under `mpirun --enable-recovery`, a rank
# process itself killed with SIGKILL mid-run (a machine lost) costs only
# the run it had: rank 0 hears nothing from it for SSMLAB_SWEEP_TIMEOUT
# seconds, marks that run failed and runs the rest itself; the dead
# rank's run and its training child stop (mpirun --enable-recovery exits
# 0 whatever rank 0 returns, so the message and the tables are checked).
# Skipped, with a line, without mpirun.
. "$(dirname "$0")/lib.sh"
mpi_or_skip
tiny_corpus "$TMP/c.txt"
tiny_lm_preset "$TMP/lm-two.conf" "$TMP/c.txt"
sed 's/^n_layer = 2$/n_layer = 1/' "$TMP/lm-two.conf" >"$TMP/lm-one.conf"

# ---- the same tables under P = 1 and P = 2
args=("$TMP/lm-two.conf" "$TMP/lm-one.conf" --seeds 1-2 --compare lm-two:lm-one --figure-format svg threads=1)
"$SSMLAB" sweep "${args[@]}" --out "$TMP/p1" >"$TMP/p1.csv" 2>"$TMP/p1.err" || fail "P = 1: $(tail -3 "$TMP/p1.err")"
mpi_run 2 "$SSMLAB" sweep "${args[@]}" --out "$TMP/p2" >"$TMP/p2.csv" 2>"$TMP/p2.err" \
    || fail "P = 2: $(grep -v '^#' "$TMP/p2.err" | tail -3)"
grep -q '^# sweep: 4 runs over 2 ranks' "$TMP/p2.err" && ok "4 runs over 2 ranks" || fail "no ranks line: $(head -5 "$TMP/p2.err")"
# every column but the timings (train_s*, and compare.csv's train_s rows), which differ between any two runs
same_table() {
    /usr/bin/python3 - "$1" "$2" <<'PY'
import csv, sys
def rows(p):
    t = list(csv.reader(open(p)))
    keep = [i for i, c in enumerate(t[0]) if not c.startswith('train_s')]
    return [[r[i] for i in keep] for r in t if 'train_s' not in r]   # compare.csv: a row per column
a, b = rows(sys.argv[1]), rows(sys.argv[2])
if a != b:
    print('first difference:', next((x, y) for x, y in zip(a, b) if x != y) if len(a) == len(b) else (len(a), len(b)))
sys.exit(a != b)
PY
}
for f in results.csv runs.csv compare.csv; do
    d=$(same_table "$TMP/p1/$f" "$TMP/p2/$f") && ok "$f: P = 2 as P = 1 ($(($(wc -l <"$TMP/p1/$f") - 1)) rows)" \
        || fail "$f differs under P = 2: $d"
done
same_table "$TMP/p1.csv" "$TMP/p2.csv" >/dev/null && ok "stdout: the same table" || fail "stdout differs"

# ---- SIGKILL of the process running one run: reported, marked failed, the rest finish
sed 's/^steps = 3$/steps = 300/; s/^seq_len = 16$/seq_len = 64/; s/^batch_size = 2$/batch_size = 8/' \
    "$TMP/lm-two.conf" >"$TMP/slow.conf"   # about 2 s
mpi_run 2 "$SSMLAB" sweep "$TMP/slow.conf" "$TMP/lm-one.conf" --seeds 1-2 --out "$TMP/k" --figure-format svg \
    threads=1 >"$TMP/k.csv" 2>"$TMP/k.err" &
job=$!
train=
for _ in $(seq 1 150); do
    train=$(pgrep -f -- "out=$TMP/k/slow/seed-1" | head -1)
    [ -n "$train" ] && break
    sleep 0.1
done
run=$(ps -o ppid= -p "${train:-1}" | tr -d ' ')
[ -n "$train" ] && [ "$(cat /proc/"$run"/comm 2>/dev/null)" = ssmlab ] && kill -KILL "$run"
wait $job
rc=$?
sleep 0.5
[ -n "$train" ] && [ "$rc" -eq 137 ] \
    && grep -q 'slow seed 1: the run failed on rank [01] (killed by signal 9); its rows say failed' "$TMP/k.err" \
    && ok "SIGKILL of run slow seed 1 (pid $run): reported, exit 137" \
    || fail "SIGKILL (train '$train', run '$run'): exit $rc: $(grep -v '^#' "$TMP/k.err" | tail -4)"
! kill -0 "${train:-999999}" 2>/dev/null && grep -q '^# interrupted at step' "$TMP/k/slow/seed-1/train.log" \
    && ok "its training child stopped at once, with a resumable checkpoint" \
    || fail "training child $train went on: $(grep -v '^#   ' "$TMP/k/slow/seed-1/train.log" | tail -2)"
/usr/bin/python3 - "$TMP/k" <<'PY' && ok "tables: slow seed 1 failed, the other 3 runs finished" || fail "tables after the kill: $(cat "$TMP/k/runs.csv" "$TMP/k/results.csv")"
import csv, sys
runs = {(r['preset'], r['seed']): r for r in csv.DictReader(open(sys.argv[1] + '/runs.csv'))}
res = {r['preset']: r for r in csv.DictReader(open(sys.argv[1] + '/results.csv'))}
bad = runs[('slow', '1')]
ok = bad['verdict'] == 'failed' and bad['val_loss'] == '' and bad['steps'] == ''
for k in [('slow', '2'), ('lm-one', '1'), ('lm-one', '2')]:
    ok = ok and runs[k]['verdict'] != 'failed' and runs[k]['val_loss'] != '' and runs[k]['steps'] == ('300' if k[0] == 'slow' else '3')
ok = ok and res['slow']['n'] == '1' and res['lm-one']['n'] == '2' and res['slow']['val_loss_mean'] != ''
sys.exit(0 if ok and len(runs) == 4 else 1)
PY

# ---- SIGKILL of rank 1's own process while it runs a run (a machine lost)
rank_pid() { # the MPI process of rank $1: an ssmlab whose parent is not one (its runs' are)
    local p pp
    for p in $(pgrep -x ssmlab); do
        pp=$(ps -o ppid= -p "$p" | tr -d ' ')
        [ "$(cat /proc/"$pp"/comm 2>/dev/null)" = ssmlab ] && continue
        tr '\0' '\n' 2>/dev/null <"/proc/$p/environ" | grep -qx "OMPI_COMM_WORLD_RANK=$1" && { echo "$p"; return; }
    done 2>/dev/null
}
sed 's/^steps = 300$/steps = 3000/' "$TMP/slow.conf" >"$TMP/slower.conf"   # about 20 s
SSMLAB_SWEEP_TIMEOUT=3 mpi_run 2 --enable-recovery -x SSMLAB_SWEEP_TIMEOUT "$SSMLAB" sweep "$TMP/slower.conf" "$TMP/lm-one.conf" \
    --seeds 1-2 --out "$TMP/r" --figure-format svg threads=1 >"$TMP/r.csv" 2>"$TMP/r.err" &
job=$!
( sleep 120; pkill -KILL -f -- "--out $TMP/r" ) >/dev/null 2>&1 &   # a rank 0 that waits for the dead one fails, not hangs
watchdog=$!
r1= busy=
for _ in $(seq 1 200); do   # rank 1 with a training grandchild: it is running a run
    r1=$(rank_pid 1)
    [ -n "$r1" ] && busy=$(pgrep -P "$(pgrep -P "$r1" | head -1)" 2>/dev/null | head -1)
    [ -n "$busy" ] && break
    sleep 0.1
done
[ -n "$busy" ] && kill -KILL "$r1"
wait $job
rc=$?
pkill -P "$watchdog" sleep 2>/dev/null; kill "$watchdog" 2>/dev/null
grep -q 'the run failed on rank 1 (the rank stopped answering); its rows say failed' "$TMP/r.err" \
    && ok "SIGKILL of rank 1 (pid $r1) mid-run: its run reported lost, sweep exit $rc" \
    || fail "rank 1 killed (pid '$r1', busy '$busy'): exit $rc: $(grep -v '^#' "$TMP/r.err" | tail -4)"
sleep 0.5
pgrep -f -- "out=$TMP/r/" >/dev/null && fail "the dead rank's training child goes on: $(pgrep -af -- "out=$TMP/r/")" \
    || ok "the dead rank's run and training child stopped"
/usr/bin/python3 - "$TMP/r" <<'PY' && ok "tables: one run failed, the other 3 finished on rank 0" || fail "tables after rank 1 died: $(cat "$TMP/r/runs.csv" 2>&1)"
import csv, sys
runs = list(csv.DictReader(open(sys.argv[1] + '/runs.csv')))
failed = [r for r in runs if r['verdict'] == 'failed']
done = [r for r in runs if r['verdict'] != 'failed' and r['val_loss'] != '']
sys.exit(0 if len(runs) == 4 and len(failed) == 1 and len(done) == 3 else 1)
PY
finish
