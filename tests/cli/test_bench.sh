#!/usr/bin/env bash
# test_bench.sh BINARY - `m40-llm bench` on the CPU: its JSON rows, the
# contention measurement (--contend), the batched one (--batch) and its
# argument errors.
set -u
bin=$1
. "$(dirname "$0")/lib.sh"

# json_field FILE KEY: prints the number after "KEY": in FILE's first line
json_field() { sed -n 's/.*"'"$2"'": \([0-9.]*\).*/\1/p' "$1" | head -1; }
positive() { if awk -v v="$2" 'BEGIN { exit !(v > 0) }'; then ok; else bad "$1 = '$2', expected > 0"; fi; }

model=$tmp/tiny.gguf
expect 0 synth --shape tiny -o "$model" --type q8_0

expect 0 bench -m "$model" --device cpu -p 16 -n 4 -r 1 --json
contains "$tmp/out" '"test": "pp16"'
contains "$tmp/out" '"test": "tg4"'
positive tps_mean "$(json_field "$tmp/out" tps_mean)"

# One request decodes while another prefills 96 tokens in chunks of 16.
expect 0 bench -m "$model" --device cpu --contend 96 -b 16 -n 4 --json
contains "$tmp/out" '"mode": "one stream"'
contains "$tmp/out" '"prompt": 96'
contains "$tmp/out" '"n_batch": 16'
positive decode_ms_alone "$(json_field "$tmp/out" decode_ms_alone)"
positive prefill_s_beside "$(json_field "$tmp/out" prefill_s_beside)"

expect 0 bench -m "$model" --device cpu --contend 64 -b 16 -n 4
contains "$tmp/out" "decode steps during it"

# Two and three sequences at once: a row each, and the decode steps carried
# more than one sequence's token (the engine batches them).
expect 0 bench -m "$model" --device cpu --batch 1,2,3 -p 8 -n 6 -r 1 --json
contains "$tmp/out" '"batch": 1,'
contains "$tmp/out" '"batch": 3,'
positive tg_tps "$(json_field "$tmp/out" tg_tps)"
rows=$(sed -n 's/.*"batch": 3,.*"decode_rows_per_step": \([0-9.]*\).*/\1/p' "$tmp/out")
if awk -v v="$rows" 'BEGIN { exit !(v > 1.0) }'; then ok; else bad "3 sequences, $rows decode rows per step"; fi
# every step took time, and the steps of the same three sequences had the
# host's turns between them, measured
step=$(sed -n 's/.*"batch": 3,.*"step_ms": \([0-9.]*\).*/\1/p' "$tmp/out")
turn=$(sed -n 's/.*"batch": 3,.*"turn_ms": \([0-9.]*\).*/\1/p' "$tmp/out")
if awk -v s="$step" -v t="$turn" 'BEGIN { exit !(s > 0 && t > 0 && t < s * 100) }'; then ok; else bad "3 sequences: step $step ms, turn $turn ms"; fi
expect 2 bench -m "$model" --batch 0,2
contains "$tmp/err" "--batch takes up to 32 sizes"

# The CUDA switches are flags bench knows; the CPU backend refuses each by name.
for sw in no-graphs one-stream no-batch pieces-of-4 tiled-attn split-attn vec-attn scalar-attn \
    prompt-gemv prompt-gemm batch-rows-4 batch-rows-8 batch-rows-16; do
    expect 1 bench -m "$model" --device cpu -p 8 -n 2 -r 1 --$sw
    contains "$tmp/err" "has no switch \"$sw\""
done

expect 2 bench -m "$model" --prompt-gemv --prompt-gemm
contains "$tmp/err" "exclude each other"
# at most one of the rows-a-block switches
for pair in "4 8" "4 16" "8 16"; do
    expect 2 bench -m "$model" --batch-rows-${pair% *} --batch-rows-${pair#* }
    contains "$tmp/err" "--batch-rows-4, --batch-rows-8 and --batch-rows-16 exclude each other"
done

expect 2 bench -m "$model" --contend 8
contains "$tmp/err" "at least 32 tokens"
expect 2 bench -m "$model" -b 0
contains "$tmp/err" "-b must be at least 1"

finish
