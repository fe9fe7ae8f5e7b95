#!/usr/bin/env bash
# bad_inputs.sh — every bad checkpoint or data input reaches the user as one
# line naming the file and the problem, with its sysexits code, never a
# crash: empty, truncated, header past the end, header not JSON, offsets out
# of range, wrong shape, missing tensor, unknown dtype, NaN weights, garbage
# and inconsistent config.json, missing directory and data file.
. "$(dirname "$0")/lib.sh"
tiny_train "$TMP/ck" || { fail "tiny training run"; finish; }
eval_ck() { "$SSMLAB" eval --model "$1" --tokens 1,2,3,4 --threads 1; }

# variant NAME: a fresh copy of the checkpoint to damage
variant() { rm -rf "$TMP/$1"; cp -r "$TMP/ck" "$TMP/$1"; echo "$TMP/$1"; }

# edit_header DIR PYTHON-EXPR: rewrite the safetensors header dict h in place
edit_header() {
    /usr/bin/python3 - "$1/model.safetensors" "$2" <<'PY'
import json, struct, sys
p, expr = sys.argv[1], sys.argv[2]
b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n]); data = b[8 + n:]
exec(expr)
hb = json.dumps(h).encode(); hb += b' ' * (-len(hb) % 8)
open(p, 'wb').write(struct.pack('<Q', len(hb)) + hb + data)
PY
}
L0=backbone.layers.0.mixer

d=$(variant empty); : >"$d/model.safetensors"
expect_error 65 "$d/model.safetensors: empty" eval_ck "$d"
d=$(variant trunc); head -c 700 "$TMP/ck/model.safetensors" >"$d/model.safetensors"
expect_error 65 "$d/model.safetensors: .*(past the end|truncated)" eval_ck "$d"
d=$(variant hdrlen); printf '\377\377\377\377\000\000\000\000' | dd of="$d/model.safetensors" conv=notrunc 2>/dev/null
expect_error 65 "$d/model.safetensors: header length .* past the end" eval_ck "$d"
d=$(variant notjson); printf '\020\000\000\000\000\000\000\000this is no json!' >"$d/model.safetensors"
expect_error 65 "$d/model.safetensors: .*not JSON" eval_ck "$d"
d=$(variant offsets); edit_header "$d" "h['$L0.D']['data_offsets'][1] += 10**9"
expect_error 65 "$d/model.safetensors: .*$L0.D" eval_ck "$d"
d=$(variant shape); edit_header "$d" "t=h['$L0.A_log']; t['shape']=[t['shape'][1], t['shape'][0]]"
expect_error 65 "$d/model.safetensors: .*$L0.A_log.*shape" eval_ck "$d"
d=$(variant missing); edit_header "$d" "del h['$L0.out_proj.weight']"
expect_error 65 "$d/model.safetensors: .*missing.*$L0.out_proj.weight|$L0.out_proj.weight.*missing" eval_ck "$d"
d=$(variant dtype); edit_header "$d" "h['$L0.D']['dtype']='Q7'"
expect_error 65 "$d/model.safetensors: .*dtype" eval_ck "$d"
d=$(variant nan)
/usr/bin/python3 - "$d/model.safetensors" "$L0.D" <<'PY'
import json, struct, sys
p, name = sys.argv[1], sys.argv[2]
b = bytearray(open(p, 'rb').read()); n = struct.unpack('<Q', b[:8])[0]
off = json.loads(b[8:8 + n])[name]['data_offsets'][0] + 8 + n
b[off:off + 4] = struct.pack('<f', float('nan')); open(p, 'wb').write(b)
PY
expect_error 65 "$d/model.safetensors: .*$L0.D.*NaN|NaN.*$L0.D" eval_ck "$d"
d=$(variant badjson); echo '{"d_model": 16,' >"$d/config.json"
expect_error 65 "$d/config.json: .*not JSON" eval_ck "$d"
d=$(variant badtype); sed -i 's/"d_model": 16/"d_model": "sixteen"/' "$d/config.json"
expect_error 78 "$d/config.json: .*d_model" eval_ck "$d"
d=$(variant inconsistent); sed -i 's/"d_model": 16/"d_model": 24/' "$d/config.json"
expect_error 65 "$d/model.safetensors: .*shape" eval_ck "$d"
expect_error 66 "$TMP/nowhere: cannot open" eval_ck "$TMP/nowhere"
d=$(variant noweights); rm "$d/model.safetensors"
expect_error 66 "$d" eval_ck "$d"
expect_error 66 "$TMP/none.txt" "$SSMLAB" eval --model "$TMP/ck" --data "$TMP/none.txt" --threads 1
expect_error 65 "token id 999" "$SSMLAB" eval --model "$TMP/ck" --tokens 1,999 --threads 1
expect_error 64 "not a list of token ids" "$SSMLAB" eval --model "$TMP/ck" --tokens 1,x --threads 1
finish
