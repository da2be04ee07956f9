#!/usr/bin/env bash
# test_info.sh BINARY - `m40-llm info` and the CLI's error contract.
# Every failure path must exit non-zero with one line on stderr.
set -u
bin=$1
. "$(dirname "$0")/lib.sh"

expect 0 info
contains "$tmp/out" "m40-llm 0.1.0 (git "
contains "$tmp/out" "kernels: "

expect 0 info --device cpu
contains "$tmp/out" "CUDA: not probed"

# Without a GPU, CUDA is unusable, whatever the reason: no driver library
# ("CUDA driver not found (libcuda.so.1)"), or a driver library and no
# device ("cuInit: no CUDA-capable device is detected"). The contract is the
# same: info reports it on one line and succeeds; --device cuda fails with
# one line saying why.
# reason_after FILE PREFIX: the rest of FILE's one line starting with PREFIX
# must be a non-empty reason.
reason_after() {
    local n reason
    n=$(grep -c -- "^$2" "$1")
    reason=$(sed -n "s/^$2//p" "$1" | head -1)
    if [ "$n" -eq 1 ] && [ -n "$reason" ]; then ok; else bad "$1: want one '$2<why>' line: $(cat "$1")"; fi
}
if [ -e /dev/nvidia0 ]; then
    echo "note: a GPU is present; the no-GPU checks are left to machines without one"
else
    expect 0 info
    reason_after "$tmp/out" "CUDA: unusable: "
    expect 1 info --device cuda
    one_line "$tmp/err"
    reason_after "$tmp/err" "m40-llm: CUDA requested but unusable: "
fi

# A model: the header, then whether m40-llm can run it.
"$bin" synth --shape tiny --type q8_0 -o "$tmp/tiny.gguf" >/dev/null
expect 0 info --device cpu "$tmp/tiny.gguf"
contains "$tmp/out" "architecture: llama"
contains "$tmp/out" "weight types: "
contains "$tmp/out" "supported: yes"
contains "$tmp/out" "details: normal RoPE"
# gguf_file ARCH TYPE: a one-tensor GGUF (tensor 'w', 256 elements of
# ggml type id TYPE, one 66-byte block of zeros) whose architecture is ARCH
gguf_file() {
    python3 - "$1" "$2" <<'PY'
import struct, sys
arch, ggml_type = sys.argv[1].encode(), int(sys.argv[2])
def s(b): return struct.pack("<Q", len(b)) + b
out = b"GGUF" + struct.pack("<IQQ", 3, 1, 1)
out += s(b"general.architecture") + struct.pack("<I", 8) + s(arch)
out += s(b"w") + struct.pack("<IQIQ", 1, 256, ggml_type, 0)
out += b"\0" * (-len(out) % 32) + b"\0" * 66
sys.stdout.buffer.write(out)
PY
}
# synth's q4_K_M: llama-quantize's mix. Of mini's 2 layers the last gets
# more bits (the last eighth): its attn_v and ffn_down are Q6_K, as is the
# output; everything else Q4_K (token_embd and 10 matrices + layer 0's v
# and down).
expect 0 synth --shape mini --type q4_K_M -o "$tmp/mix.gguf"
contains "$tmp/out" "q4_K_M"
expect 0 info --device cpu "$tmp/mix.gguf"
contains "$tmp/out" "weight types: f32 x 5, q4_K x 13, q6_K x 3"
contains "$tmp/out" "supported: yes"
expect 2 synth --shape mini --type q8_0_M -o "$tmp/bad.gguf"
contains "$tmp/err" 'unknown type "q8_0_M"'

gguf_file gptneox 19 >"$tmp/gptneox.gguf"
expect 1 info --device cpu "$tmp/gptneox.gguf"
contains "$tmp/out" "architecture: gptneox"
contains "$tmp/out" "weight types: iq1_s x 1"
contains "$tmp/out" 'supported: no: architecture "gptneox" is not supported (supported: llama, qwen2, qwen3, qwen3moe, gemma2, gemma3, phi3)'
one_line "$tmp/err"
contains "$tmp/err" "gptneox.gguf: architecture \"gptneox\" is not supported"
gguf_file llama 19 >"$tmp/iq.gguf"
expect 1 info --device cpu "$tmp/iq.gguf"
contains "$tmp/out" "supported: no: tensor type m40-llm cannot run: iq1_s x 1 (first: w)"
one_line "$tmp/err"

expect 2 info --device tpu
one_line "$tmp/err"
contains "$tmp/err" "--device must be auto, cpu or cuda"
expect 2 info --gpu abc
one_line "$tmp/err"
expect 2 info --gpu
expect 2 info --bogus
expect 2 frobnicate
one_line "$tmp/err"
contains "$tmp/err" "unknown command"
expect 2
expect 0 --help
contains "$tmp/out" "info"
expect 0 --version

finish
