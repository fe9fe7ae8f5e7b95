#!/usr/bin/env bash
# tui_man.sh — ssmlab-tui(1) lists exactly the keys of the key table: the
# block between the "keys" comments equals `ssmlab tui --keys-mdoc`, and the
# page is clean under mandoc -Tlint.
. "$(dirname "$0")/lib.sh"
page="$(dirname "$0")/../../man/ssmlab-tui.1"
[ -f "$page" ] || { fail "no man page $page"; finish; }
sed -n '/^\.\\" keys: begin$/,/^\.\\" keys: end$/p' "$page" | sed '1d;$d' >"$TMP/page.keys"
"$SSMLAB" tui --keys-mdoc >"$TMP/table.keys" || fail "--keys-mdoc failed"
[ -s "$TMP/page.keys" ] || fail "the man page has no generated key block"
if diff -u "$TMP/table.keys" "$TMP/page.keys" >"$TMP/diff"; then ok "man page keys = key table ($(grep -c '^\.It' "$TMP/table.keys") actions)"
else fail "man page keys differ from the key table (regenerate with ssmlab tui --keys-mdoc):"; cat "$TMP/diff"; fi
if mandoc -Tlint -W warning "$page" >"$TMP/lint" 2>&1; then ok "mandoc -Tlint clean"
else fail "mandoc lint:"; cat "$TMP/lint"; fi
finish
