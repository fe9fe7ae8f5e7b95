# lib.sh — helpers for the end-to-end tests: a scratch directory, a tiny
# training run, and assertions on exit codes and messages.
set -u
SSMLAB=$(realpath "${SSMLAB:-./ssmlab}")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0

fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

# expect_error CODE PATTERN CMD... : the command exits CODE and prints one
# stderr line matching PATTERN
expect_error() {
    local code=$1 pattern=$2; shift 2
    "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    if [ "$rc" -ne "$code" ]; then fail "$* exited $rc, expected $code: $(cat "$TMP/err")"; return; fi
    if ! grep -v '^#' "$TMP/err" | grep -qE -- "$pattern"; then fail "$*: stderr lacks /$pattern/: $(cat "$TMP/err")"; return; fi
    ok "$* -> $code ($(grep -v '^#' "$TMP/err" | head -1))"
}

# tiny_corpus FILE: a few KB of text
tiny_corpus() {
    for i in $(seq 1 60); do echo "The quick brown fox $i jumps over the lazy dog. Pack my box with five dozen liquor jugs."; done >"$1"
}

# tiny_train DIR [key=value...]: a two-step run of a tiny model into DIR
tiny_train() {
    local dir=$1; shift
    tiny_corpus "$TMP/corpus.txt"
    "$SSMLAB" train d_model=16 n_layer=2 d_state=4 seq_len=16 batch_size=2 steps=2 warmup=1 \
        eval_every=0 eval_batches=1 threads=1 data="$TMP/corpus.txt" out="$dir" "$@" >/dev/null 2>"$TMP/train.err" \
        || { cat "$TMP/train.err"; return 1; }
}

# tiny_lm_preset FILE CORPUS: a tiny 2-layer language-model preset on
# CORPUS, 3 steps of 2 x 16 bytes, seed 99
tiny_lm_preset() {
    cat >"$1" <<EOF
d_model = 16
n_layer = 2
d_state = 4
seq_len = 16
batch_size = 2
steps = 3
warmup = 1
eval_every = 0
eval_batches = 2
seed = 99
data = $2
EOF
}

# tiny_classifier FILE IMGDIR: a tiny 2-layer classifier preset on the IDX
# fixture in IMGDIR (tests/data/make_idx_fixture.py), 2 x 2 patches, hard
# reordering, 50 steps (tests shorten it with steps=)
tiny_classifier() {
    cat >"$1" <<EOF
task = classify
dataset = mnist
data = $2
patch = 2
reorder = hard
d_model = 16
n_layer = 2
d_state = 4
batch_size = 4
steps = 50
eval_every = 0
eval_batches = 0
EOF
}

finish() { [ "$fails" -eq 0 ] && echo "all ok" || { echo "$fails failed"; exit 1; }; }

# mpi_or_skip: with mpirun on the PATH, nothing; without it a line saying
# why the test is skipped, and exit 0 (scripts/deps.sh installs it, so CI
# always runs the MPI tests).
mpi_or_skip() {
    command -v mpirun >/dev/null 2>&1 && return 0
    echo "skip: mpirun not found (scripts/deps.sh installs openmpi-bin and libopenmpi-dev)"
    exit 0
}

# mpi_run NP CMD...: CMD as NP ranks on this machine (loopback, more ranks
# than cores allowed, as root too, which CI is; shared memory without
# cross-process reads, which containers often forbid).
mpi_run() {
    local np=$1; shift
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader,tcp \
        OMPI_MCA_btl_vader_single_copy_mechanism=none mpirun -np "$np" --oversubscribe "$@"
}

# same_losses A.csv B.csv [FIRST_STEP]: the step, split and loss columns
# (and bpb or acc) of two ssmlab train CSV outputs agree to 1e-5 relative,
# from FIRST_STEP on (default all rows of A); prints the largest difference.
same_losses() {
    /usr/bin/python3 - "$@" <<'PY'
import csv, sys
def rows(p, first):
    return [(r['step'], r['split'], float(r['loss']), float(list(r.values())[3] or 'nan'))
            for r in csv.DictReader(open(p)) if int(r['step']) >= first]
first = int(sys.argv[3]) if len(sys.argv) > 3 else 0
a, b = rows(sys.argv[1], first), rows(sys.argv[2], first)
if not a or [r[:2] for r in a] != [r[:2] for r in b]:
    print('rows differ:', a, b); sys.exit(1)
worst = max(abs(x[i] - y[i]) / max(abs(x[i]), 1e-12) for x, y in zip(a, b) for i in (2, 3) if x[i] == x[i])
print('%d rows, max relative difference %.2e' % (len(a), worst)); sys.exit(0 if worst <= 1e-5 else 1)
PY
}
