#!/usr/bin/env bash
# figures.sh — the figures and table files of ssmlab: `inspect --figures DIR`
# draws one figure per table (SVG that xmllint accepts, PNG with a valid
# signature and IHDR whose pixels are not all background, PDF on request);
# `inspect --out DIR` writes one file per table, the same bytes as the
# stream on stdout; a tiny `sweep` writes a bar chart per result column in
# DIR/figures/; `plot` draws train.csv files (hand-written ones with quoted
# fields, CRLF, empty cells and unknown columns, and real `train` output)
# (PNGs: structure and filtered data on all of them, decoded pixels on one;
# the unit tests read every kind back through Cairo)
# on shared axes; and every bad directory, file or option fails with its
# sysexits code and a message naming it.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
cat >"$TMP/png.py" <<'PY'
# png.py [--decode] FILE...: each FILE is a PNG (signature, IHDR first,
# 8-bit RGB or RGBA, IEND last, image data of the declared size) that is
# not blank: the filtered image data holds more nonzero bytes than a
# one-colour image can (its first row and the first pixel of every row);
# with --decode, the rows are unfiltered and 1% of the pixels must differ
# from the first (slow in Python: for one file).  Prints "W H COUNT".
import struct, sys, zlib
def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c
def pixels_differing(raw, w, h, bpp):
    stride, prev, bg, diff = w * bpp, bytearray(w * bpp), None, 0
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + (0, a, b, (a + b) // 2, paeth(a, b, c))[f]) & 255
        bg = bg or bytes(line[:bpp])
        diff += sum(1 for x in range(w) if line[x * bpp:(x + 1) * bpp] != bg)
        prev = line
    return diff
decode = sys.argv[1] == "--decode"
for path in sys.argv[1 + decode:]:
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: no PNG signature"
    pos, chunks = 8, []
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunks.append((kind, data[pos + 8:pos + 8 + n]))
        assert zlib.crc32(data[pos + 4:pos + 8 + n]) == struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0], f"{path}: CRC"
        pos += 12 + n
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND", f"{path}: chunk order"
    w, h, depth, ctype = struct.unpack(">IIBB", chunks[0][1][:10])
    assert depth == 8 and ctype in (2, 6) and w > 100 and h > 100, f"{path}: IHDR {w}x{h} {depth} {ctype}"
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(d for k, d in chunks if k == b"IDAT"))
    assert len(raw) == h * (w * bpp + 1), f"{path}: {len(raw)} bytes of image data for {w}x{h}"
    nonzero = len(raw) - raw.count(0) - sum(1 for y in range(h) if raw[y * (w * bpp + 1)])
    assert nonzero > w * bpp + h * bpp + 0.01 * w * h, f"{path}: blank ({nonzero} nonzero bytes)"
    if decode:
        diff = pixels_differing(raw, w, h, bpp)
        assert diff > 0.01 * w * h, f"{path}: only {diff} pixels differ from the background"
    print(w, h, diff if decode else nonzero)
PY
svg_ok() { xmllint --noout "$@" 2>"$TMP/xml.err" && grep -q '<svg' "$1"; }
png_ok() { $PY "$TMP/png.py" "$@" >"$TMP/png.out" 2>&1; }
png_decoded() { $PY "$TMP/png.py" --decode "$@" >"$TMP/png.out" 2>&1; }
pdf_ok() { for f in "$@"; do [ "$(head -c 5 "$f")" = "%PDF-" ] || return 1; done; }

tiny_train "$TMP/ck" || { fail "tiny training run"; finish; }
ALL=(--spectrum --norms --importance --attention --influence --smoothing)
NAMES="spectrum norms importance attention influence smoothing"

# ---- inspect --figures: one figure per table, named after it
"$SSMLAB" inspect --model "$TMP/ck" --text 'Hi, "you"' "${ALL[@]}" --threads 1 --figures "$TMP/fig/new" \
    >"$TMP/with-figures.csv" 2>"$TMP/err" || fail "inspect --figures: $(cat "$TMP/err")"
for n in $NAMES; do
    svg_ok "$TMP/fig/new/$n.svg" && ok "$n.svg is well-formed SVG" || fail "$n.svg: $(cat "$TMP/xml.err")"
    png_ok "$TMP/fig/new/$n.png" && ok "$n.png is a valid, drawn PNG ($(cat "$TMP/png.out"))" || fail "$n.png: $(cat "$TMP/png.out")"
done
[ "$(ls "$TMP/fig/new" | wc -l)" -eq 12 ] && ok "12 files, no temporaries left" || fail "files: $(ls "$TMP/fig/new")"
png_decoded "$TMP/fig/new/norms.png" && ok "norms.png decoded: pixels drawn ($(cat "$TMP/png.out"))" || fail "norms.png: $(cat "$TMP/png.out")"
grep -q '^# inspect: figures in ' "$TMP/err" && ok "a note says where the figures are" || fail "no note: $(cat "$TMP/err")"
"$SSMLAB" inspect --model "$TMP/ck" --norms --smoothing --threads 1 --figures "$TMP/fig/pdf" --figure-format pdf \
    >/dev/null 2>"$TMP/err" && pdf_ok "$TMP/fig/pdf/norms.pdf" "$TMP/fig/pdf/smoothing.pdf" \
    && [ "$(ls "$TMP/fig/pdf" | wc -l)" -eq 2 ] && ok "--figure-format pdf: norms.pdf, smoothing.pdf only" \
    || fail "pdf figures: $(ls "$TMP/fig/pdf") $(cat "$TMP/err")"
# the default tables only: spectrum, norms, importance
"$SSMLAB" inspect --model "$TMP/ck" --threads 1 --figures "$TMP/fig/default" >/dev/null 2>"$TMP/err" \
    && [ "$(ls "$TMP/fig/default" | tr '\n' ' ')" = "importance.png importance.svg norms.png norms.svg spectrum.png spectrum.svg " ] \
    && ok "default tables, their figures" || fail "default figures: $(ls "$TMP/fig/default") $(cat "$TMP/err")"

# ---- inspect --out: one file per table, the bytes of the stdout stream
"$SSMLAB" inspect --model "$TMP/ck" --text 'Hi, "you"' "${ALL[@]}" --threads 1 >"$TMP/stream.csv" 2>"$TMP/err" \
    || fail "plain inspect: $(cat "$TMP/err")"
cmp -s "$TMP/stream.csv" "$TMP/with-figures.csv" && ok "--figures leaves stdout unchanged" || fail "--figures changed stdout"
"$SSMLAB" inspect --model "$TMP/ck" --text 'Hi, "you"' "${ALL[@]}" --threads 1 --out "$TMP/tab" >"$TMP/out.stdout" 2>"$TMP/err" \
    || fail "inspect --out: $(cat "$TMP/err")"
first=1
# the verdicts table (no figure) comes last, after the flow it needs
for n in $NAMES verdicts; do [ $first = 1 ] || echo; first=0; cat "$TMP/tab/$n.csv"; done >"$TMP/joined.csv"
cmp -s "$TMP/joined.csv" "$TMP/stream.csv" && [ ! -s "$TMP/out.stdout" ] \
    && ok "--out: $NAMES verdicts as DIR/TABLE.csv, the stream's bytes, nothing on stdout" \
    || fail "--out files differ from the stream: $(diff "$TMP/joined.csv" "$TMP/stream.csv" | head -5)"
$PY - "$TMP/tab" <<'PY' && ok "every CSV reads back with the csv module, one table each" || fail "CSV files"
import csv, os, sys
for name in ("spectrum", "norms", "importance", "attention", "influence", "smoothing", "verdicts"):
    with open(os.path.join(sys.argv[1], name + ".csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and {r["table"] for r in rows} == {name}, name
    assert all(None not in r for r in rows), name
PY
"$SSMLAB" inspect --model "$TMP/ck" --norms --importance --format jsonl --threads 1 --out "$TMP/tabj" >/dev/null 2>&1 \
    && $PY -c 'import json,sys; [json.loads(l) for n in ("norms","importance") for l in open(sys.argv[1]+"/"+n+".jsonl")]' "$TMP/tabj" \
    && [ "$(ls "$TMP/tabj" | tr '\n' ' ')" = "importance.jsonl norms.jsonl verdicts.jsonl " ] \
    && ok "--out with --format jsonl: DIR/TABLE.jsonl" || fail "jsonl tables: $(ls "$TMP/tabj")"

# ---- inspect: directories that cannot be made, options out of place
: >"$TMP/plainfile"
expect_error 73 "figures $TMP/plainfile/figs: cannot create directory" \
    "$SSMLAB" inspect --model "$TMP/ck" --norms --figures "$TMP/plainfile/figs"
expect_error 73 "out $TMP/plainfile/tables: cannot create directory" \
    "$SSMLAB" inspect --model "$TMP/ck" --norms --out "$TMP/plainfile/tables"
[ ! -s "$TMP/out" ] && ok "no table printed before the directory error" || fail "tables before the error: $(head -2 "$TMP/out")"
expect_error 64 "figure-format goes with --figures" "$SSMLAB" inspect --model "$TMP/ck" --figure-format pdf
expect_error 64 "figure-format.*'png,gif' is not a list of svg, png and pdf" \
    "$SSMLAB" inspect --model "$TMP/ck" --figures "$TMP/f2" --figure-format png,gif

# ---- sweep: a bar chart per result column in DIR/figures
tiny_corpus "$TMP/c.txt"
for s in default negative; do
    printf 'd_model = 16\nn_layer = 2\nd_state = 4\nseq_len = 16\nbatch_size = 2\nsteps = 2\nwarmup = 1\neval_every = 0\neval_batches = 1\nscenario = %s\ndata = %s\n' \
        "$s" "$TMP/c.txt" >"$TMP/lm-$s.conf"
done
"$SSMLAB" sweep "$TMP/lm-default.conf" "$TMP/lm-negative.conf" --out "$TMP/sw" threads=1 >/dev/null 2>"$TMP/err" \
    || fail "sweep: $(tail -3 "$TMP/err")"
charts="cos_last decay_rate dev_last dev_ratio fit_r2 half_life mean_slope mix_slope train_s unigram_loss val_loss val_ppl"
for c in $charts; do
    svg_ok "$TMP/sw/figures/$c.svg" && png_ok "$TMP/sw/figures/$c.png" || fail "sweep chart $c: $(cat "$TMP/xml.err" "$TMP/png.out")"
done
[ "$(ls "$TMP/sw/figures" | sed 's/\.[a-z]*$//' | sort -u | tr '\n' ' ')" = "$charts " ] \
    && ok "sweep: a chart per numeric column ($charts), none for val_acc of language models" \
    || fail "sweep charts: $(ls "$TMP/sw/figures")"
grep -q "charts in $TMP/sw/figures" "$TMP/err" && ok "sweep says where the charts are" || fail "no note: $(tail -2 "$TMP/err")"
"$SSMLAB" sweep "$TMP/lm-default.conf" --out "$TMP/sw2" --figure-format pdf threads=1 >/dev/null 2>&1 \
    && pdf_ok "$TMP/sw2/figures/val_loss.pdf" && [ ! -e "$TMP/sw2/figures/val_loss.svg" ] \
    && ok "sweep --figure-format pdf" || fail "sweep pdf charts: $(ls "$TMP/sw2/figures")"

# ---- plot: hand-written train.csv files and real training output
mkdir -p "$TMP/runs/quoted" "$TMP/runs/valonly"
printf 'step,split,loss,acc,lr,grad_norm,tokens_per_s,elapsed_s,"new, metric"\r\n1,train,2.5,0.1,0.1,1,100,0.1,"x ""y"""\r\n2,train,2.0,,,,,,\r\n2,val,2.2,0.3,,,,0.2,\r\n3,test,9,9\r\n\r\n4,train,,0.5\r\n5,train,1.5,0.6,0.1\r\n' \
    >"$TMP/runs/quoted/train.csv"
printf 'split,loss,step\nval,1.5,5\nval,1.2,10\n' >"$TMP/runs/valonly/train.csv"
"$SSMLAB" train d_model=16 n_layer=2 d_state=4 seq_len=16 batch_size=2 steps=20 warmup=1 eval_every=10 \
    eval_batches=1 threads=1 data="$TMP/c.txt" out="$TMP/runs/lm" >"$TMP/lm.csv" 2>/dev/null && mv "$TMP/lm.csv" "$TMP/runs/lm/train.csv" \
    || fail "train for plot"
"$SSMLAB" plot "$TMP/runs/quoted" "$TMP/runs/valonly/" "$TMP/runs/lm" --out "$TMP/plots" >"$TMP/out" 2>"$TMP/err" \
    || fail "plot: $(cat "$TMP/err")"
for n in loss acc bpb; do
    svg_ok "$TMP/plots/$n.svg" && png_ok "$TMP/plots/$n.png" && ok "plot: $n.svg and $n.png" || fail "plot $n: $(cat "$TMP/xml.err" "$TMP/png.out" "$TMP/err")"
done
[ ! -s "$TMP/out" ] && [ "$(grep -c '^# plot: ' "$TMP/err")" -eq 3 ] && ok "plot: one note per figure, nothing on stdout" \
    || fail "plot output: $(cat "$TMP/out" "$TMP/err")"
"$SSMLAB" plot "$TMP/runs/lm/train.csv" --out "$TMP/plots2" --log-y --figure-format pdf >/dev/null 2>"$TMP/err" \
    && pdf_ok "$TMP/plots2/loss.pdf" "$TMP/plots2/bpb.pdf" && [ ! -e "$TMP/plots2/acc.pdf" ] \
    && ok "plot a CSV file directly, --log-y, pdf; no accuracy for a language model" || fail "plot file: $(cat "$TMP/err")"
expect_error 66 "$TMP/runs/none/train.csv: cannot open" "$SSMLAB" plot "$TMP/runs/none" --out "$TMP/p3"
printf 'a,b\n1,2\n' >"$TMP/nohdr.csv"
expect_error 65 "nohdr.csv: the header has no 'step' column" "$SSMLAB" plot "$TMP/nohdr.csv" --out "$TMP/p3"
printf 'step,split,loss\n1,train,abc\n' >"$TMP/badcell.csv"
expect_error 65 "badcell.csv: row 2: loss 'abc' is not a number" "$SSMLAB" plot "$TMP/badcell.csv" --out "$TMP/p3"
: >"$TMP/empty.csv"
expect_error 65 "empty.csv: empty" "$SSMLAB" plot "$TMP/empty.csv" --out "$TMP/p3"
expect_error 64 "plot: --out DIR is required" "$SSMLAB" plot "$TMP/runs/lm"
expect_error 64 "plot: no run directories" "$SSMLAB" plot --out "$TMP/p3"
expect_error 73 "out $TMP/plainfile/p: cannot create directory" "$SSMLAB" plot "$TMP/runs/lm" --out "$TMP/plainfile/p"
[ ! -e "$TMP/p3" ] && ok "no output directory after a bad input" || fail "$TMP/p3 was made"
"$SSMLAB" plot -h | grep -q -- '--figure-format LIST' && ok "plot -h lists the options" || fail "plot -h"
finish
