#!/usr/bin/env bash
# layers.sh — the layering rule: the tree passes tests/check_layers.sh, and
# the check fails on a tree that breaks the rule (an include from a layer
# above, or one without its folder), for sources and for unit tests; figures/
# sits between lab/ and tui/.
. "$(dirname "$0")/lib.sh"
CHECK=$(realpath "$(dirname "$0")/../check_layers.sh")

if "$CHECK" >"$TMP/out" 2>&1; then ok "the tree follows the layers: $(tail -1 "$TMP/out")"
else fail "the tree breaks the layering rule: $(cat "$TMP/out")"; fi

bad_tree() { # bad_tree FILE LINE: a one-file tree whose FILE holds LINE
    rm -rf "$TMP/t"; mkdir -p "$TMP/t/$(dirname "$1")"; echo "$2" >"$TMP/t/$1"
}
for c in 'engine/x.c|#include "lab/session.h"' 'data/x.c|#include "scenarios/task.h"' \
         'scenarios/x.h|#include "lab/engine_thread.h"' 'lab/x.c|#include "tui/app.h"' \
         'tui/x.c|#include "cli/cli.h"' 'engine/x.c|#include "model.h"' \
         'figures/x.c|#include "tui/app.h"' 'lab/x.c|#include "figures/figure.h"' \
         'tests/unit/figures/test_x.c|#include "tui/app.h"' \
         'tests/unit/engine/test_x.c|#include "lab/session.h"' 'tests/unit/misc/test_x.c|#include "engine/model.h"'; do
    bad_tree "${c%%|*}" "${c#*|}"
    if "$CHECK" "$TMP/t" >"$TMP/out" 2>&1; then fail "check accepted ${c%%|*}: ${c#*|}"
    else ok "check refuses ${c%%|*}: $(head -1 "$TMP/out")"; fi
done
for c in 'cli/x.c|#include "tui/app.h"' 'tests/unit/lab/test_x.c|#include "tests/tmpdir.h"' \
         'tui/x.c|#include "figures/figure.h"' 'figures/x.c|#include "lab/session.h"' \
         'cli/x.c|#include "figures/figure.h"' 'tests/unit/figures/test_x.c|#include "figures/figure.h"' \
         'tests/unit/lab/test_y.c|#include "engine/model.h"'; do
    bad_tree "${c%%|*}" "${c#*|}"
    if "$CHECK" "$TMP/t" >"$TMP/out" 2>&1; then ok "allowed: ${c%%|*}: ${c#*|}"
    else fail "refused ${c%%|*}: ${c#*|}: $(cat "$TMP/out")"; fi
done
finish
