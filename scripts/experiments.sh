#!/usr/bin/env bash
# experiments.sh — run the papers' experiment series through `ssmlab sweep`
# over several seeds, one output directory per series, and list where the
# Markdown tables went.  `make experiments` calls it; it is not part of
# `make test` (a full run takes hours on two cores).
#
# Environment (all optional):
#   SERIES  series to run, space- or comma-separated (default: all):
#           mqar lm reorder attack recency
#   SEEDS   seeds of every sweep (default 1-3), as `ssmlab sweep --seeds`
#   OUT     root of the results (default runs/experiments)
#   SSMLAB  the binary (default ./ssmlab)
#   ARGS    key=value overrides for every preset, e.g. ARGS='threads=1'
#   CIFAR10 a directory with the CIFAR-10 binary files; when set, the
#           attack series also runs the pixel-cifar10*.conf presets on it
# Example: make experiments SERIES=mqar SEEDS=1-3
set -u

SERIES=${SERIES:-all}
SEEDS=${SEEDS:-1-3}
OUT=${OUT:-runs/experiments}
SSMLAB=${SSMLAB:-./ssmlab}
ARGS=${ARGS:-}
CIFAR10=${CIFAR10:-}
S=scenarios
ALL="mqar lm reorder attack recency"

[ "$SERIES" = all ] && SERIES=$ALL
SERIES=${SERIES//,/ }
for s in $SERIES; do
    case " $ALL " in *" $s "*) ;; *) echo "experiments.sh: unknown series '$s' (known: $ALL)" >&2; exit 64 ;; esac
done
[ -x "$SSMLAB" ] || { echo "experiments.sh: $SSMLAB is not an executable (run make first)" >&2; exit 66; }

failed=()
done_tables=()

# sweep NAME PRESET... [options]: one sweep into $OUT/NAME over $SEEDS
sweep() {
    local name=$1
    shift
    local dir="$OUT/$name"
    mkdir -p "$dir"
    echo "== $name: $SSMLAB sweep $* --seeds $SEEDS --out $dir $ARGS" >&2
    # shellcheck disable=SC2086  # ARGS is a list of key=value words
    if "$SSMLAB" sweep "$@" --seeds "$SEEDS" --out "$dir" $ARGS >"$dir/sweep.out" 2>"$dir/sweep.log"; then
        done_tables+=("$dir/results.md")
        [ -f "$dir/attack.md" ] && done_tables+=("$dir/attack.md")
    else
        echo "experiments.sh: $name failed (exit $?): $(tail -1 "$dir/sweep.log")" >&2
        failed+=("$name")
    fi
}

# MQAR: depth x polarization; each depth's plain model against each
# polarized one
series_mqar() {
    local d cmp=()
    for d in 1 2 4; do
        cmp+=(--compare "mqar-d$d-none:mqar-d$d-zero" --compare "mqar-d$d-none:mqar-d$d-one"
              --compare "mqar-d$d-none:mqar-d$d-both")
    done
    sweep mqar "$S"/mqar-d{1,2,4}-{none,zero,one,both}.conf "${cmp[@]}"
}

# scenario language models at depth: the default against each fixed sign
series_lm() {
    sweep lm "$S"/lm-{default,positive,negative,mixed}.conf \
        --compare lm-default:lm-positive --compare lm-default:lm-negative \
        --compare lm-default:lm-mixed --compare lm-negative:lm-positive
}

# token reordering off against soft
series_reorder() {
    sweep reorder "$S"/fmnist-reorder-off.conf "$S"/fmnist-reorder-soft.conf \
        --compare fmnist-reorder-off:fmnist-reorder-soft
}

# ---- the attack call: the one place that sets the attack's options ----
# Random noise on the last 1 token, 5% and 10% of the pixels, default
# against polarized Mamba (the sweep adds the first-region control itself).
ATTACK_OPTS=(--attack adversarial --method noise --region last --last 1,5%,10%)
series_attack() {
    sweep attack "$S"/pixel-fmnist.conf "$S"/pixel-fmnist-polarized.conf \
        --compare pixel-fmnist:pixel-fmnist-polarized "${ATTACK_OPTS[@]}"
    if [ -n "$CIFAR10" ]; then
        ARGS="$ARGS data=$CIFAR10" sweep attack-cifar10 "$S"/pixel-cifar10.conf "$S"/pixel-cifar10-polarized.conf \
            --compare pixel-cifar10:pixel-cifar10-polarized "${ATTACK_OPTS[@]}"
    fi
}
# ---- end of the attack call ----

# influence decay and over-smoothing: depth x polarization
series_recency() {
    local d cmp=()
    for d in 1 2 4; do
        cmp+=(--compare "recency-d$d-none:recency-d$d-one" --compare "recency-d$d-none:recency-d$d-both")
    done
    sweep recency "$S"/recency-d{1,2,4}-{none,zero,one,both}.conf "${cmp[@]}"
}

t0=$(date +%s)
for s in $SERIES; do "series_$s"; done

mkdir -p "$OUT"
{
    echo "# ssmlab experiments"
    echo
    echo "Seeds $SEEDS; series: $SERIES; $(( ($(date +%s) - t0) / 60 )) minutes; $("$SSMLAB" --version 2>/dev/null | head -1)"
    echo
    for t in "${done_tables[@]}"; do echo "- ${t#"$OUT"/}"; done
    for f in "${failed[@]}"; do echo "- $f: FAILED, see $f/sweep.log"; done
} >"$OUT/SUMMARY.md"
echo "tables:" >&2
for t in "${done_tables[@]}"; do echo "  $t" >&2; done
echo "summary: $OUT/SUMMARY.md" >&2
[ ${#failed[@]} -eq 0 ] || { echo "experiments.sh: failed: ${failed[*]}" >&2; exit 1; }
