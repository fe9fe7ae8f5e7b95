#!/bin/sh
# mpi_scaling.sh — data-parallel scaling of `ssmlab train` on this machine:
# the train-small case of `ssmlab bench` (D 128, 4 layers, vocabulary 256,
# global batch 8 x 256 tokens; forward, backward, gradient allreduce and
# AdamW) trained for STEPS steps at P = 1 and at each P of NP, THREADS
# threads per rank, on the fortunes corpus.  Prints CSV rows
#   case,P,tokens_per_s,efficiency
# tokens_per_s: the best step's global tokens per second (steps after the
# first WARMUP, best of the steps because the machine is shared; the
# median goes to stderr); efficiency: tokens_per_s(P) / (P tokens_per_s(1)),
# strong scaling with each rank's cores fixed.  Without mpirun only the
# P = 1 row is printed, with a line on stderr saying why.
#
# Environment: SSMLAB (./ssmlab), NP ("2"), THREADS (1), STEPS (12),
# WARMUP (2), DATA (/usr/share/games/fortunes).
set -eu
cd "$(dirname "$0")/.."
SSMLAB=${SSMLAB:-./ssmlab}
NP=${NP:-2}
THREADS=${THREADS:-1}
STEPS=${STEPS:-12}
WARMUP=${WARMUP:-2}
DATA=${DATA:-/usr/share/games/fortunes}
[ -x "$SSMLAB" ] || { echo "bench/mpi_scaling.sh: $SSMLAB is missing: run 'make' first" >&2; exit 66; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run P: train-small for STEPS steps as P ranks (P = 1: no mpirun); prints
# "best median" tokens/s over the steps after WARMUP
run() {
    set -- "$1" "$SSMLAB" train d_model=128 n_layer=4 d_state=16 expand=2 vocab_size=256 seq_len=256 \
        batch_size=8 steps="$STEPS" warmup=1 eval_every=0 eval_batches=1 save_every=0 log_every=1 \
        threads="$THREADS" seed=1 data="$DATA" format=csv out="$tmp/p$1"
    p=$1; shift
    if [ "$p" -eq 1 ]; then "$@" >"$tmp/p$p.csv" 2>"$tmp/p$p.err"
    else OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none \
        mpirun -np "$p" --oversubscribe \
        --bind-to none "$@" >"$tmp/p$p.csv" 2>"$tmp/p$p.err"; fi \
        || { tail -5 "$tmp/p$p.err" >&2; exit 70; }
    awk -F, -v w="$WARMUP" '$2 == "train" && $1 > w { print $7 }' "$tmp/p$p.csv" | sort -g \
        | awk '{ v[NR] = $1 } END { if (!NR) exit 1; print v[NR], v[int((NR + 1) / 2)] }'
}

echo "case,P,tokens_per_s,efficiency"
set -- $(run 1)
base=$1
echo "mpi_scaling: P = 1: best $1, median $2 tokens/s ($THREADS threads per rank)" >&2
echo "train-small,1,$base,1.000"
if ! command -v mpirun >/dev/null 2>&1; then
    echo "mpi_scaling: mpirun not found: no rows for P > 1 (scripts/deps.sh installs openmpi-bin)" >&2
    exit 0
fi
for p in $NP; do
    set -- $(run "$p")
    echo "mpi_scaling: P = $p: best $1, median $2 tokens/s" >&2
    awk -v c=train-small -v p="$p" -v t="$1" -v b="$base" 'BEGIN { printf "%s,%d,%s,%.3f\n", c, p, t, t / (p * b) }'
done
