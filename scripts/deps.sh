#!/bin/sh
# deps.sh — installs the Debian packages ssmlab needs to build, run and test,
# only those missing.  Uses sudo when not root.  Idempotent and quiet when
# everything is present.
set -eu
PKGS="make clang pkg-config libncurses-dev libgsl-dev libopenblas-dev libomp-dev
libjson-c-dev zlib1g-dev libcriterion-dev libclang-rt-14-dev python3-torch
python3-numpy python3-regex libunistring-dev mandoc groff-base tmux fortunes
dataset-fashion-mnist libcairo2-dev fonts-dejavu-core libxml2-utils openmpi-bin libopenmpi-dev"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps.sh: installing:$missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >&2
