#!/bin/bash
# no_mpi_build.sh — ssmlab builds and trains without Open MPI: a copy of
# the sources built with `make MPI=0` links no libmpi, trains a tiny preset
# alone, and started by mpirun as one of 2 ranks refuses (exit 70) rather
# than train two copies alone.  The first two checks run everywhere; the
# last one only where mpirun is.
. "$(dirname "$0")/lib.sh"
ROOT=$(realpath "$(dirname "$0")/../..")
SRC="$TMP/src"
mkdir -p "$SRC"
(cd "$ROOT" && git ls-files -z 2>/dev/null | xargs -0 cp --parents -t "$SRC" 2>/dev/null) \
    || cp -r "$ROOT"/{Makefile,engine,data,scenarios,lab,figures,tui,cli} "$SRC"
if make -C "$SRC" -j2 MPI=0 ssmlab >"$TMP/make.log" 2>&1; then
    ldd "$SRC/ssmlab" | grep -q libmpi && fail "MPI=0 build links libmpi: $(ldd "$SRC/ssmlab" | grep mpi)" \
        || ok "make MPI=0 builds ssmlab without libmpi"
else
    fail "make MPI=0: $(tail -5 "$TMP/make.log")"; finish
fi
tiny_corpus "$TMP/c.txt"
tiny_lm_preset "$TMP/lm.conf" "$TMP/c.txt"
"$SRC/ssmlab" train "$TMP/lm.conf" out="$TMP/run" threads=1 >"$TMP/train.csv" 2>"$TMP/train.err" \
    && [ -s "$TMP/run/model.safetensors" ] && ok "the MPI=0 build trains alone" \
    || fail "MPI=0 train: $(tail -3 "$TMP/train.err")"
if command -v mpirun >/dev/null 2>&1; then
    mpi_run 2 "$SRC/ssmlab" train "$TMP/lm.conf" out="$TMP/run2" threads=1 >/dev/null 2>"$TMP/mpi.err"
    rc=$?
    grep -q 'built without MPI' "$TMP/mpi.err" && [ "$rc" -ne 0 ] \
        && ok "the MPI=0 build under mpirun -np 2 refuses (exit $rc): $(grep -m1 'built without MPI' "$TMP/mpi.err" | cut -c1-100)" \
        || fail "MPI=0 build under mpirun: exit $rc: $(tail -3 "$TMP/mpi.err")"
else
    echo "skip: mpirun not found: the MPI=0 build's refusal under a launcher is not checked"
fi
finish
