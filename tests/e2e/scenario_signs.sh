#!/usr/bin/env bash
# scenario_signs.sh — tiny byte models trained a few dozen steps with
# scenario = positive, negative and mixed keep the eigenvalue signs ssmlab-math(7) DYNAMICS
# promises in every layer, as `ssmlab inspect --spectrum` reports them
# (positive: all N > 0; negative: all N < 0; mixed: floor(N/2) > 0 and the
# rest < 0; all real), also with polarized channels; numpy recomputes each
# spectrum from the checkpoint (S_B, S_C rows of x_proj, and those rows from
# scenario_P, scenario_q, and q has moved from its initial 0); a default
# model's spectrum is printed too.
. "$(dirname "$0")/lib.sh"
N=5          # odd: mixed has 2 positive and 3 negative eigenvalues per layer
NL=2
PY=${PYTHON:-/usr/bin/python3}

# layer_rows CSV: "layer n_pos n_neg n_complex class" per summary row,
# columns found by name in the header
layer_rows() {
    awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
             $c["table"] == "spectrum" && $c["kind"] == "layer" {
                 print $c["layer"], $c["n_pos"], $c["n_neg"], $c["n_complex"], $c["class"] }' "$1"
}

# check_signs NAME WANT_POS WANT_NEG CLASS: every layer has these counts and class
check_signs() {
    local name=$1 pos=$2 neg=$3 cls=$4 rows bad
    rows=$(layer_rows "$TMP/$name.csv")
    if [ "$(echo "$rows" | grep -c .)" -ne "$NL" ]; then
        fail "$name: $NL layer rows expected in the spectrum, got: $rows"; return
    fi
    bad=$(echo "$rows" | awk -v p="$pos" -v n="$neg" -v c="$cls" '$2 != p || $3 != n || $4 != 0 || $5 != c')
    if [ -n "$bad" ]; then fail "$name: layers off their scenario (layer n_pos n_neg n_complex class): $bad"
    else ok "$name: every layer has $pos > 0, $neg < 0, 0 complex ($cls)"; fi
}

# cross_check NAME: numpy's spectrum of S_B S_C^T from the checkpoint matches
# inspect's eigenvalues; under a scenario the rows equal diag(sigma) U(P), U(P)
# and training has moved q
cross_check() {
    local name=$1
    if "$PY" - "$TMP/$name" "$TMP/$name.csv" >"$TMP/$name.py.out" 2>&1 <<'PY'
import csv, json, struct, sys
import numpy as np
model, table = sys.argv[1], sys.argv[2]
cfg = json.load(open(f"{model}/config.json"))
raw = open(f"{model}/model.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
head = json.loads(raw[8:8 + n])
def tensor(name):
    h = head[name]; a, b = h["data_offsets"]
    assert h["dtype"] == "F32", h["dtype"]
    return np.frombuffer(raw[8 + n + a:8 + n + b], "<f4").reshape(h["shape"]).astype(np.float64)
s = cfg["ssm_cfg"]; x = cfg.get("ssmlab", {})
N, R = s["d_state"], s["dt_rank"]
pol = x.get("polarize", "none"); scen = x.get("scenario", "default")
n1, n0 = int(pol in ("one", "both")), int(pol in ("zero", "both"))
Ns = n1 + N + n0
rows = list(csv.DictReader(open(table)))
worst_rows = worst_eig = moved = 0.0
for l in range(cfg["n_layer"]):
    W = tensor(f"backbone.layers.{l}.mixer.x_proj.weight")
    SB, SC = W[R + n1:R + n1 + N], W[R + Ns + n1:R + Ns + n1 + N]
    if scen != "default":
        P = tensor(f"backbone.layers.{l}.mixer.scenario_P")
        q = tensor(f"backbone.layers.{l}.mixer.scenario_q")
        U = np.triu(P, 1) + np.eye(*P.shape)
        sp = np.logaddexp(0, q)
        sigma = {"positive": sp + 0.7, "negative": -(sp + 0.7),
                 "mixed": np.where(np.arange(N) < N // 2, sp, -sp)}[scen]
        worst_rows = max(worst_rows, np.abs(SC - U).max() / np.abs(U).max(),
                         np.abs(SB - sigma[:, None] * U).max() / np.abs(SB).max())
        moved = max(moved, np.abs(q).max())      # q starts at 0: did training reach it?
    want = np.linalg.eigvals(SB @ SC.T)
    got = [complex(float(r["re"]), float(r["im"])) for r in rows
           if r["kind"] == "eigenvalue" and int(r["layer"]) == l]
    if len(got) != N:
        sys.exit(f"layer {l}: {len(got)} eigenvalues in the table, want {N}")
    radius = np.abs(want).max()
    worst_eig = max(worst_eig, max(min(abs(w - g) for g in got) for w in want) / radius)
print(f"x_proj rows vs U(P), sigma: {worst_rows:.1e}; eigenvalues vs numpy: {worst_eig:.1e}"
      + (f"; max |q| after training {moved:.1e}" if scen != "default" else ""))
trained = scen == "default" or moved > 1e-6
sys.exit(0 if worst_rows <= 1e-6 and worst_eig <= 1e-4 and trained else 1)
PY
    then ok "$name: numpy agrees ($(tail -1 "$TMP/$name.py.out"))"
    else fail "$name: numpy disagrees: $(tail -3 "$TMP/$name.py.out")"; fi
}

for spec in positive:none negative:none mixed:none negative:both default:none; do
    scen=${spec%:*} pol=${spec#*:} name=${spec/:/-}
    if ! tiny_train "$TMP/$name" d_state=$N n_layer=$NL steps=40 scenario="$scen" polarize="$pol"; then
        fail "$name: training failed"; continue
    fi
    if ! "$SSMLAB" inspect --model "$TMP/$name" --spectrum >"$TMP/$name.csv" 2>"$TMP/$name.err"; then
        fail "$name: inspect --spectrum failed: $(grep -v '^#' "$TMP/$name.err" | head -1)"; continue
    fi
    case $scen in
    positive) check_signs "$name" $N 0 positive ;;
    negative) check_signs "$name" 0 $N negative ;;
    mixed) check_signs "$name" $((N / 2)) $((N - N / 2)) mixed ;;
    default)
        rows=$(layer_rows "$TMP/$name.csv")
        if [ "$(echo "$rows" | awk 'NF == 5 && $5 ~ /^(positive|negative|mixed|complex)$/' | grep -c .)" -eq "$NL" ]
        then ok "default: spectrum printed for $NL layers ($(echo "$rows" | awk '{printf "%s%s", s, $5; s=" "}'))"
        else fail "default: no spectrum summary per layer: $rows"; fi ;;
    esac
    cross_check "$name"
done
finish
