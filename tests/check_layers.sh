#!/bin/sh
# check_layers.sh — the layering rule of DEVELOPERS.md: every source file
# includes project headers by folder ("engine/model.h"), and only from its
# own layer or the layers below it:
#     engine < data < scenarios < lab < figures < tui < cli
# A unit test in tests/unit/LAYER/ tests that layer: it may include the
# layer and those below, and tests/ helpers.  bench/ is free.  Prints each violation and the
# closing line "N passed, N failed"; exits 1 when any file breaks the rule.
# Usage: check_layers.sh [ROOT] (default: the tree this script is in).
cd "${1:-$(dirname "$0")/..}" || exit 66
rank() {
    case "$1" in
    engine) echo 0 ;; data) echo 1 ;; scenarios) echo 2 ;; lab) echo 3 ;;
    figures) echo 4 ;; tui) echo 5 ;; cli) echo 6 ;; build) echo 0 ;; *) echo -1 ;;
    esac
}
pass=0 fail=0
for f in engine/*.[ch] data/*.[ch] scenarios/*.[ch] lab/*.[ch] figures/*.[ch] tui/*.[ch] cli/*.[ch] \
         tests/unit/*/*.[ch]; do
    [ -f "$f" ] || continue
    layer=${f%%/*}
    case "$f" in tests/unit/*) layer=${f#tests/unit/}; layer=${layer%%/*} ;; esac
    own=$(rank "$layer")
    if [ "$own" -lt 0 ]; then
        echo "$f: tests/unit/$layer is not a layer" >&2; fail=$((fail + 1)); continue
    fi
    bad=0
    for inc in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f"); do
        dir=${inc%%/*}
        case "$f:$dir" in tests/*:tests) continue ;; esac
        if [ "$dir" = "$inc" ]; then
            echo "$f: includes \"$inc\" without its folder" >&2; bad=1; continue
        fi
        r=$(rank "$dir")
        if [ "$r" -lt 0 ]; then
            echo "$f: includes \"$inc\" from outside the layers" >&2; bad=1
        elif [ "$r" -gt "$own" ]; then
            echo "$f: includes \"$inc\", a layer above $layer/" >&2; bad=1
        fi
    done
    if [ $bad -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
done
echo "layers: $pass passed, $fail failed"
[ $fail -eq 0 ]
