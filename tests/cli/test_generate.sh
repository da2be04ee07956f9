#!/usr/bin/env bash
# test_generate.sh BINARY - `m40-llm generate` as a user runs it, on a tiny
# synth model (random weights, a byte-level SentencePiece vocabulary):
# determinism for a seed, stop strings cut exactly, and every bad input a
# one-line error with a non-zero exit.
set -u
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0 passes=0
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

"$bin" synth --shape tiny --type q8_0 --seed 3 -o "$tmp/tiny.gguf" >/dev/null || bad "synth"
gen() { "$bin" generate -m "$tmp/tiny.gguf" --device cpu "$@"; }

# expect STATUS ARGS...: generate exits STATUS; stderr kept in $tmp/err
expect() {
    local want=$1
    shift
    gen "$@" >"$tmp/out" 2>"$tmp/err"
    local got=$?
    if [ "$got" -eq "$want" ]; then ok; else bad "generate $* exited $got, expected $want: $(cat "$tmp/err")"; fi
}
one_line_with() { # the error is one line and says $1
    if [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -qF -- "$1" "$tmp/err"; then ok; else
        bad "stderr should be one line with '$1': $(cat "$tmp/err")"
    fi
}

# A run streams text and ends with a timing line on stderr.
expect 0 -p "hello world" -n 12 --temp 0 --ignore-eos
grep -q "generated 12 tokens" "$tmp/err" && ok || bad "no timing line: $(cat "$tmp/err")"

# The same seed and flags give the same text; another seed (almost surely) not.
gen -p "abc" -n 24 --temp 1.0 --top-k 0 --seed 7 --ignore-eos >"$tmp/a" 2>/dev/null
gen -p "abc" -n 24 --temp 1.0 --top-k 0 --seed 7 --ignore-eos >"$tmp/b" 2>/dev/null
gen -p "abc" -n 24 --temp 1.0 --top-k 0 --seed 8 --ignore-eos >"$tmp/c" 2>/dev/null
cmp -s "$tmp/a" "$tmp/b" && ok || bad "same seed, different output"
cmp -s "$tmp/a" "$tmp/c" && bad "seeds 7 and 8 gave the same 24 tokens" || ok

# Stop strings: cut the greedy text at a piece from its middle (it may span
# tokens); the output must be exactly the text before that piece.
gen -p "the" -n 40 --temp 0 --ignore-eos >"$tmp/full" 2>/dev/null
stop=$(python3 -c 'import sys; t=open(sys.argv[1],"rb").read().rstrip(b"\n"); print(t[len(t)//2:len(t)//2+3].decode("utf-8","ignore"), end="")' "$tmp/full")
if [ -n "$stop" ]; then
    gen -p "the" -n 40 --temp 0 --ignore-eos --stop "$stop" >"$tmp/cut" 2>"$tmp/err"
    python3 - "$tmp/full" "$tmp/cut" "$stop" <<'PY' && ok || bad "stop string '$stop' not cut exactly"
import sys
full = open(sys.argv[1], "rb").read().rstrip(b"\n")
cut = open(sys.argv[2], "rb").read().rstrip(b"\n")
stop = sys.argv[3].encode()
sys.exit(0 if cut == full[: full.find(stop)] else 1)
PY
    grep -q "finish: stop" "$tmp/err" && ok || bad "stop string did not finish with stop"
else
    bad "greedy text too short to test stop strings"
fi

# Bad input: one line, non-zero exit, never a crash.
expect 1 -m "$tmp/missing.gguf" -p x
one_line_with "missing.gguf"
printf 'not a model' >"$tmp/junk.gguf"
expect 1 -m "$tmp/junk.gguf" -p x
one_line_with "not a GGUF file"
expect 2 -p x --bogus-flag 1
one_line_with "unknown option"
expect 2 -p x --temp abc
one_line_with "is not a number"
expect 2 -p x --device tpu
one_line_with "--device must be auto, cpu or cuda"
expect 2 -n 5
one_line_with "give a prompt"
expect 2 -p x --system hi
one_line_with "--system needs --chat"
expect 2 -p x --logit-bias nonsense
one_line_with "--logit-bias"
long=$(printf 'word %.0s' $(seq 1 200))
expect 1 -p "$long" -c 16
one_line_with "the context holds 16"
expect 1 -p x --prompt-file "$tmp/nope.txt"
one_line_with "cannot read --prompt-file"

expect 2 -p x -b 0
one_line_with "-b must be at least 1"

# A grammar or a JSON schema constrains the text (docs/grammar.md); a bad
# one is a usage error before the model loads.
expect 0 -p x -n 50 --temp 1 --seed 4 --grammar 'root ::= "yes" | "no"'
grep -qxE "yes|no" "$tmp/out" && ok || bad "grammar output: $(cat "$tmp/out")"
printf 'root ::= "[" [0-9] "]"\n' >"$tmp/g.gbnf"
expect 0 -p x -n 50 --grammar-file "$tmp/g.gbnf"
grep -qxE "\[[0-9]\]" "$tmp/out" && ok || bad "grammar-file output: $(cat "$tmp/out")"
expect 0 -p x -n 80 --temp 0.8 --seed 2 -j '{"enum": ["red", "green"]}'
grep -qxE '"(red|green)"' "$tmp/out" && ok || bad "json-schema output: $(cat "$tmp/out")"
expect 2 -p x --grammar 'root ::= nope'
one_line_with "rule 'nope' is used but not defined"
expect 2 -p x -j '{"type": "string", "pattern": "a"}'
one_line_with "unsupported keyword 'pattern'"
expect 2 -p x -j '{nope'
one_line_with "not valid JSON"
expect 2 -p x --grammar 'root ::= "a"' -j '{}'
one_line_with "give one of --grammar"

# A full context ends the text, unless --context-shift drops its oldest
# half and goes on (docs/long-context.md).
expect 0 -p "hello world" -n 100 -c 32 --ignore-eos --temp 0
grep -q "generated 100 tokens" "$tmp/err" && bad "no shift, yet 100 tokens" || ok
expect 0 -p "hello world" -n 100 -c 32 --ignore-eos --temp 0 --context-shift --keep -1
grep -q "generated 100 tokens" "$tmp/err" && ok || bad "context shift: $(cat "$tmp/err")"
expect 2 -p x --keep x
one_line_with "--keep"

# A long load (256 MiB of weights or more) reports its progress on stderr:
# on a terminal one redrawn bar, otherwise a line at the start, each
# quarter and the end. A small model's load says nothing (above: one line).
"$bin" synth --shape mini --type f32 --vocab-size 140000 -o "$tmp/big.gguf" >/dev/null ||
    bad "synth big"
"$bin" generate -m "$tmp/big.gguf" --device cpu -p hi -n 1 >/dev/null 2>"$tmp/err" ||
    bad "generate on the big model: $(cat "$tmp/err")"
for pct in 0 25 50 75; do
    grep -qx "m40-llm: loading weights: $pct% of 0.2[67] GiB" "$tmp/err" && ok ||
        bad "no $pct% progress line: $(cat "$tmp/err")"
done
grep -q "^m40-llm: loading weights: 100% of 0.2[67] GiB (.* s)$" "$tmp/err" && ok ||
    bad "no final progress line: $(cat "$tmp/err")"
[ "$(grep -c "loading weights" "$tmp/err")" -eq 5 ] && ok || bad "progress lines: $(cat "$tmp/err")"
rm -f "$tmp/big.gguf"

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
