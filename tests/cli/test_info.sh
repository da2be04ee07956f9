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
