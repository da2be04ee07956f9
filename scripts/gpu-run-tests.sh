#!/usr/bin/env bash
# run-tests.sh - the GPU suite, as packed by scripts/gpu-bundle.sh.
#
# Runs every tests/test_gpu_* and checks the CLI sees the GPU. Any failure
# and any skip ("skipped: ..." or exit 77) is a failure: this runner only
# passes on a machine where every GPU test really ran.
#
#   ./run-tests.sh              run the suite
#   ./run-tests.sh --sanitize   run each test under compute-sanitizer memcheck
#
# M40LLM_ENABLE_CUBLAS=0 runs the suite with cuBLAS off (the cuBLAS test
# then checks that it is off).
set -u
here=$(cd "$(dirname "$0")" && pwd)
sanitizer=()
if [ "${1:-}" = "--sanitize" ]; then
    cs=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
    [ -x "$cs" ] || { echo "run-tests: compute-sanitizer not found" >&2; exit 1; }
    # API errors are not reported: every driver call's status is checked by
    # our code and the tests, and some tests provoke one on purpose (a
    # kernel name that does not exist). memcheck still catches every bad
    # device memory access and leak.
    sanitizer=("$cs" --tool memcheck --error-exitcode 99 --leak-check full --report-api-errors no)
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
passed=0 failed=0

run_one() { # run_one NAME COMMAND...
    local name=$1
    shift
    "$@" >"$log" 2>&1
    local rc=$?
    sed 's/^/    /' "$log"
    if [ $rc -ne 0 ] || grep -q '^skipped' "$log"; then
        echo "FAIL $name (exit $rc)"
        failed=$((failed + 1))
    else
        echo "ok   $name"
        passed=$((passed + 1))
    fi
}

for t in "$here"/tests/test_gpu_*; do
    run_one "$(basename "$t")" "${sanitizer[@]}" "$t"
done

# The CLI must find the device, load its kernels and report cuBLAS.
cli_check() {
    local out
    out=$("$here/bin/m40-llm" info --device cuda) || return 1
    echo "$out"
    grep -q '^selected: GPU' <<<"$out" || return 1
    if [ "${M40LLM_ENABLE_CUBLAS:-}" = "0" ]; then
        grep -q '^cuBLAS: off (disabled by M40LLM_ENABLE_CUBLAS=0)' <<<"$out"
    else
        grep -q '^cuBLAS: loaded' <<<"$out"
    fi
}
run_one "m40-llm info --device cuda" cli_check

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
