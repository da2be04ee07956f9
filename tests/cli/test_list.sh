#!/usr/bin/env bash
# test_list.sh BINARY - model names (issue 20): `m40-llm list` shows the
# models folder ($M40LLM_MODELS), and -m / info take a name from it.
set -u
bin=$1
. "$(dirname "$0")/lib.sh"

mkdir -p "$tmp/models"
expect 0 synth --shape mini-phi3 --type q8_0 -o "$tmp/models/phi-small.gguf"
expect 0 synth --shape tiny --type q4_0 -o "$tmp/models/tiny-one.gguf"
echo "not a gguf" >"$tmp/models/broken.gguf"
export M40LLM_MODELS=$tmp/models

expect 0 list
contains "$tmp/out" "NAME"
# sorted by name; arch and the type most matrices have; no GPU here: "-"
grep -q "^broken .*unreadable" "$tmp/out" && ok || bad "broken file not reported: $(cat "$tmp/out")"
grep -q "^phi-small .* phi3 .* q8_0 " "$tmp/out" && ok || bad "phi-small row: $(cat "$tmp/out")"
grep -q "^tiny-one .* llama .* q4_0 " "$tmp/out" && ok || bad "tiny-one row: $(cat "$tmp/out")"
[ "$(grep -n '^phi-small' "$tmp/out" | cut -d: -f1)" -lt "$(grep -n '^tiny-one' "$tmp/out" | cut -d: -f1)" ] &&
    ok || bad "list not sorted"

# a name from the folder, with or without .gguf; a path still works
expect 0 info phi-small --device cpu
contains "$tmp/out" "architecture: phi3"
expect 0 info -m tiny-one.gguf --device cpu
contains "$tmp/out" "architecture: llama"
expect 0 generate -m tiny-one --device cpu -p hi -n 2
expect 0 info "$tmp/models/phi-small.gguf" --device cpu
# a name found nowhere: the load names what is missing, on one line
expect 1 info no-such-model --device cpu
contains "$tmp/err" "no-such-model"
one_line "$tmp/err"

# an empty or absent folder is not an error
M40LLM_MODELS=$tmp/empty expect 0 list
contains "$tmp/out" "no models folder"
expect 2 list --bogus
one_line "$tmp/err"
finish
