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
