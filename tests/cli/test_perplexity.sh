#!/usr/bin/env bash
# test_perplexity.sh BINARY - `m40-llm perplexity` from the command line:
# llama-perplexity's lines on a synth model, and its refusals (non-zero
# exit, one line on stderr).
set -u
bin=$1
. "$(dirname "$0")/lib.sh"

"$bin" synth --shape tiny --type q8_0 -o "$tmp/tiny.gguf" >/dev/null
for i in $(seq 1 60); do printf 'the quick brown fox %d jumps over the lazy dog. ' "$i"; done >"$tmp/text.txt"

expect 0 perplexity -m "$tmp/tiny.gguf" -f "$tmp/text.txt" -c 32 --chunks 3 --device cpu -t 2
contains "$tmp/out" "windows of 32, CPU"
contains "$tmp/out" "[1]"
contains "$tmp/out" "[3]"
contains "$tmp/out" "Final estimate: PPL = "
contains "$tmp/out" "(3 windows, 45 tokens scored)"
# the same run gives the same bytes
cp "$tmp/out" "$tmp/first"
expect 0 perplexity -m "$tmp/tiny.gguf" -f "$tmp/text.txt" -c 32 --chunks 3 --device cpu -t 2
if cmp -s "$tmp/out" "$tmp/first"; then ok; else bad "two runs differ"; fi

printf 'too short' >"$tmp/short.txt"
expect 1 perplexity -m "$tmp/tiny.gguf" -f "$tmp/short.txt" -c 32 --device cpu
one_line "$tmp/err"
contains "$tmp/err" "a window of 32 needs at least 64"
expect 1 perplexity -m "$tmp/tiny.gguf" -f "$tmp/missing.txt" --device cpu
one_line "$tmp/err"
expect 2 perplexity -m "$tmp/tiny.gguf"
one_line "$tmp/err"
contains "$tmp/err" "give the text with -f FILE"
expect 2 perplexity -m "$tmp/tiny.gguf" -f "$tmp/text.txt" --chunks x
expect 0 perplexity --help
contains "$tmp/out" "usage: m40-llm perplexity"

finish
