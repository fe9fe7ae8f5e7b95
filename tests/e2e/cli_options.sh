#!/usr/bin/env bash
# cli_options.sh — the option tables of every subcommand: -h and --help
# print a usage line naming the subcommand on stdout and exit 0; a number
# that is not one, a number with trailing junk, an overflowing number and an
# out-of-range number each give exactly one stderr line naming the
# subcommand, the option and the value, and exit 64; so do an unknown
# option and a missing value.  Valid options around the bad one keep the
# command from failing for another reason, and a timeout keeps a command
# that wrongly accepts the value from running long.
. "$(dirname "$0")/lib.sh"
tiny_train "$TMP/ck" || { fail "tiny training run"; finish; }
printf 'd_model = 16\n' >"$TMP/p.conf"

# run SECS CMD...: the command with stdin closed; out, err and rc in $TMP
run() {
    local secs=$1; shift
    timeout "$secs" "$@" </dev/null >"$TMP/out" 2>"$TMP/err"
    echo $? >"$TMP/rc"
}

# help SUB ARGS...: -h and --help (after ARGS) print the same usage on stdout
help() {
    local sub=$1; shift
    local flag
    for flag in -h --help; do
        run 20 "$SSMLAB" "$sub" "$@" "$flag"
        if [ "$(cat "$TMP/rc")" -ne 0 ]; then fail "$sub $flag exited $(cat "$TMP/rc"): $(cat "$TMP/err")"; continue; fi
        if ! grep -qE "^usage: ssmlab $sub( |$)" "$TMP/out"; then fail "$sub $flag: no 'usage: ssmlab $sub' line on stdout: $(head -3 "$TMP/out")"; continue; fi
        if ! grep -qE -- '--help' "$TMP/out"; then fail "$sub $flag: the help does not list --help"; continue; fi
        if [ -s "$TMP/err" ]; then fail "$sub $flag: wrote to stderr: $(cat "$TMP/err")"; continue; fi
        cp "$TMP/out" "$TMP/help$flag"
        ok "$sub $flag: $(head -1 "$TMP/out")"
    done
    cmp -s "$TMP/help-h" "$TMP/help--help" && ok "$sub: -h and --help agree" || fail "$sub: -h and --help differ"
    rm -f "$TMP/help-h" "$TMP/help--help"
}

# bad SUB OPTION VALUE ARGS...: `ssmlab SUB ARGS... OPTION VALUE` exits 64
# with one stderr line naming SUB, OPTION and 'VALUE'
bad() {
    local sub=$1 opt=$2 val=$3; shift 3
    run 60 "$SSMLAB" "$sub" "$@" "$opt" "$val"
    local rc lines; rc=$(cat "$TMP/rc"); lines=$(wc -l <"$TMP/err")
    local what="$sub $opt '$val'"
    if [ "$rc" -ne 64 ]; then fail "$what exited $rc, expected 64: $(head -2 "$TMP/err")"; return; fi
    if [ "$lines" -ne 1 ]; then fail "$what: $lines stderr lines, expected 1: $(cat "$TMP/err")"; return; fi
    if ! grep -qF -- "$sub" "$TMP/err" || ! grep -qF -- "$opt" "$TMP/err" || ! grep -qF -- "'$val'" "$TMP/err"; then
        fail "$what: the message does not name the subcommand, option and value: $(cat "$TMP/err")"; return
    fi
    ok "$what -> 64 ($(cat "$TMP/err"))"
}

# numbers SUB OPTION RANGE_BAD ARGS...: not a number, trailing junk and an
# overflow for OPTION; RANGE_BAD, an out-of-range value
numbers() {
    local sub=$1 opt=$2 range=$3; shift 3
    bad "$sub" "$opt" lots "$@"
    bad "$sub" "$opt" 12abc "$@"
    bad "$sub" "$opt" 99999999999999999999999 "$@"
    bad "$sub" "$opt" "$range" "$@"
}

# unknown SUB ARGS...: an unknown option and a missing value exit 64 with one line
unknown() {
    local sub=$1; shift
    run 60 "$SSMLAB" "$sub" "$@" --bogus-option
    if [ "$(cat "$TMP/rc")" -eq 64 ] && [ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -qF -- "--bogus-option" "$TMP/err" \
        && grep -qF "$sub" "$TMP/err"; then ok "$sub --bogus-option -> 64 ($(cat "$TMP/err"))"
    else fail "$sub --bogus-option exited $(cat "$TMP/rc"), expected 64 and one line naming it: $(cat "$TMP/err")"; fi
}

# missing SUB OPTION ARGS...: OPTION last, without its value
missing() {
    local sub=$1 opt=$2; shift 2
    run 60 "$SSMLAB" "$sub" "$@" "$opt"
    if [ "$(cat "$TMP/rc")" -eq 64 ] && [ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -qF -- "$opt" "$TMP/err"; then
        ok "$sub $opt without a value -> 64 ($(cat "$TMP/err"))"
    else fail "$sub $opt without a value exited $(cat "$TMP/rc"): $(cat "$TMP/err")"; fi
}

M=(--model "$TMP/ck")

# ---- train: CONFIG [key=value ...], --list-keys
help train
unknown train "$TMP/p.conf"
run 20 "$SSMLAB" train --list-keys
[ "$(cat "$TMP/rc")" -eq 0 ] && grep -q '^d_model' "$TMP/out" && ok "train --list-keys" || fail "train --list-keys: $(cat "$TMP/err")"

# ---- eval
help eval
numbers eval --threads 99999 "${M[@]}"
numbers eval --seq-len 1 "${M[@]}"
bad eval --batch-size 0 "${M[@]}"
bad eval --batches -1 "${M[@]}"
bad eval --threads "" "${M[@]}"
unknown eval "${M[@]}"
missing eval --seq-len "${M[@]}"

# ---- generate
help generate
numbers generate --threads 99999 "${M[@]}" --prompt hi
numbers generate --max-tokens -1 "${M[@]}" --prompt hi
bad generate --top-k -1 "${M[@]}" --prompt hi
bad generate --seed -3 "${M[@]}" --prompt hi
bad generate --temperature nan "${M[@]}" --prompt hi
bad generate --top-p 0.5x "${M[@]}" --prompt hi
unknown generate "${M[@]}" --prompt hi
missing generate --max-tokens "${M[@]}" --prompt hi

# ---- inspect
help inspect
numbers inspect --threads 99999 "${M[@]}"
numbers inspect --image -1 "${M[@]}"
bad inspect --targets 0 "${M[@]}" --influence
bad inspect --probes 12abc "${M[@]}" --influence
bad inspect --layer lots "${M[@]}" --attention
bad inspect --channel 3x "${M[@]}" --attention
unknown inspect "${M[@]}"
missing inspect --threads "${M[@]}"

# ---- attack
A=(adversarial "${M[@]}" --last 1)
help attack
help attack adversarial
numbers attack --threads 99999 "${A[@]}"
numbers attack --steps 0 "${A[@]}"
bad attack --batch-size 0 "${A[@]}"
bad attack --eps inf "${A[@]}"
bad attack --eps 0.1junk "${A[@]}"
bad attack --step-size 0 "${A[@]}"
unknown attack "${A[@]}"
missing attack --eps "${A[@]}"

# ---- sweep
S=("$TMP/p.conf" --out "$TMP/sweep" --attack adversarial)
help sweep
numbers sweep --steps 0 "${S[@]}"
numbers sweep --images 0 "${S[@]}"
bad sweep --eps nan "${S[@]}"
unknown sweep "${S[@]}"
missing sweep --out "${S[@]}"
[ ! -e "$TMP/sweep" ] && ok "sweep: no output directory after a usage error" || fail "sweep wrote $TMP/sweep"

# ---- bench
help bench
numbers bench --threads 99999 --case scan
numbers bench --steps 0 --case scan
bad bench --warmup -1 --case scan
bad bench --seed 1.5 --case scan
unknown bench --case scan
missing bench --steps --case scan

# ---- tui (with a script that does not exist: should a bad value be
# accepted, the command still ends at once)
T=(--script "$TMP/no-script.txt")
help tui
numbers tui --bench-keys 0 "${T[@]}"
numbers tui --image -1 "${T[@]}"
unknown tui "${T[@]}"
missing tui --bench-keys "${T[@]}"

# ---- plot
P=("$TMP/ck" --out "$TMP/plots")
help plot
bad plot --figure-format gif "${P[@]}"
bad plot --figure-format svg, "${P[@]}"
unknown plot "${P[@]}"
missing plot --out "$TMP/ck"
[ ! -e "$TMP/plots" ] && ok "plot: no output directory after a usage error" || fail "plot wrote $TMP/plots"
finish
