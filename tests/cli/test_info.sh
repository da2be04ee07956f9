#!/usr/bin/env bash
# test_info.sh BINARY - `m40-llm info` and the CLI's error contract.
# Every failure path must exit non-zero with one line on stderr.
set -u
bin=$1
. "$(dirname "$0")/lib.sh"
one_line() {
    local n
    n=$(wc -l <"$1")
    if [ "$n" -eq 1 ]; then ok; else bad "$1 has $n lines, expected 1: $(cat "$1")"; fi
}

expect 0 info
contains "$tmp/out" "m40-llm 0.1.0 (git "
contains "$tmp/out" "kernels: "

expect 0 info --device cpu
contains "$tmp/out" "CUDA: not probed"

if [ -e /dev/nvidia0 ] || ldconfig -p 2>/dev/null | grep -q 'libcuda.so.1 '; then
    echo "note: a CUDA driver is present; the no-GPU checks are left to machines without one"
else
    expect 0 info
    contains "$tmp/out" "CUDA: unusable: CUDA driver not found (libcuda.so.1)"
    expect 1 info --device cuda
    one_line "$tmp/err"
    contains "$tmp/err" "m40-llm: CUDA requested but unusable: CUDA driver not found"
fi

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
