#!/usr/bin/env bash
# regressions.sh — one check per small CLI bug that was fixed, each of which
# failed on the binary before its fix: the echoed config's float noise,
# the message of a token outside the vocabulary, exit codes missing from
# ssmlab(1), `bench --case scan` ignoring --steps, and `sweep --attack` on
# language models only.
. "$(dirname "$0")/lib.sh"
tiny_train "$TMP/ck" lr=3e-3 min_lr=3e-4 || { fail "tiny training run"; finish; }

# the resolved config prints each float in the fewest digits that read back
# as the same float (before: lr = 0.00300000003, val_fraction = 0.10000000000000001)
grep -qx '#   lr = 0.003' "$TMP/train.err" && grep -qx '#   min_lr = 0.0003' "$TMP/train.err" \
    && grep -qx '#   norm_eps = 1e-05' "$TMP/train.err" && grep -qx '#   val_fraction = 0.1' "$TMP/train.err" \
    && ok "echoed floats without noise" || fail "echoed floats: $(grep -E 'lr|eps|fraction' "$TMP/train.err")"

# a token outside the vocabulary: the message names the option and the
# model directory (before: only the position, with no option or model)
expect_error 65 "^ssmlab: --tokens: token id 99999 \(sequence 1, position 2\) is outside the vocabulary \[0, 256\) of the model in $TMP/ck\$" \
    "$SSMLAB" eval --model "$TMP/ck" --tokens '1,2,3;4,5,99999' --threads 1
grep -q config.json "$TMP/err" && fail "the token error blames config.json: $(cat "$TMP/err")"

# every sysexits code the sources return is listed under EXIT STATUS in
# ssmlab(1) (before: 69, 70 and 71 were missing)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
/usr/bin/python3 - "$ROOT" <<'PY' && ok "every exit code documented in ssmlab(1)" || fail "exit codes undocumented"
import glob, re, sys
root = sys.argv[1]
codes = dict(re.findall(r'#define\s+(EX_[A-Z]+)\s+(\d+)', open('/usr/include/sysexits.h').read()))
used = set()
for f in glob.glob(root + '/cli/*.c') + glob.glob(root + '/tui/*.c') + [root + '/engine/status.c']:
    used |= set(re.findall(r'\bEX_[A-Z]+\b', open(f).read()))
page = open(root + '/man/ssmlab.1').read()
section = page[page.index('.Sh EXIT STATUS'):page.index('.Sh EXAMPLES')]
listed = set(re.findall(r'^\.It (\d+)', section, re.M))
missing = sorted(f'{codes[e]} ({e})' for e in used if e in codes and codes[e] not in listed)
assert not missing and '130' in listed, missing
PY

# bench --case scan times exactly --steps passes after --warmup (before: it
# ignored both and timed for at least 0.25 s)
if "$SSMLAB" bench --case scan --steps 2 --warmup 0 --threads 1 >"$TMP/bench.csv" 2>"$TMP/err"; then
    /usr/bin/python3 - "$TMP/bench.csv" <<'PY' && ok "bench --case scan --steps 2 --warmup 0" || fail "scan rows: $(cat "$TMP/bench.csv")"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
wide = [('avx512',)] if ' avx512f' in open('/proc/cpuinfo').read() else []
want = ([('scan-fwd', 'naive'), ('scan-fwd', 'avx2')] + [('scan-fwd',) + w for w in wide]
        + [('scan-bwd', 'naive'), ('scan-bwd', 'fast'), ('scan-130m-fwd', 'avx2')]
        + [('scan-130m-fwd',) + w for w in wide]
        + [(c, i) for c in ('scan-130m-conv', 'scan-130m-conv-silu') for i in ('naive', 'fast')])
assert [(r['case'], r['impl']) for r in rows] == want, rows
assert all(r['steps'] == '2' and r['warmup'] == '0' for r in rows), rows
PY
else
    fail "bench --case scan: $(cat "$TMP/err")"
fi

# sweep --attack with no classifier among the presets: refused before any
# training, with one line, and no attack table (before: exit 0 and a 0-byte
# attack.csv with no header)
tiny_corpus "$TMP/c.txt"
printf 'd_model = 16\nn_layer = 1\nd_state = 4\nseq_len = 16\nbatch_size = 2\nsteps = 2\nwarmup = 1\neval_batches = 1\ndata = %s\n' \
    "$TMP/c.txt" >"$TMP/lm-tiny.conf"
expect_error 64 "lm-tiny.conf: sweep: --attack: no preset is a classifier \(task = classify\), so there is nothing to attack; this one is task = lm" \
    "$SSMLAB" sweep "$TMP/lm-tiny.conf" --attack adversarial --out "$TMP/sw" threads=1
[ ! -e "$TMP/sw/attack.csv" ] && [ ! -e "$TMP/sw/lm-tiny" ] && ok "no attack.csv, nothing trained" \
    || fail "sweep --attack on a language model left $(ls "$TMP/sw" 2>&1)"

finish
