#!/usr/bin/env bash
# test.sh - the whole test suite, as CI runs it (.ci/run calls this).
#
# On a fresh Debian bookworm machine it installs what it needs (Debian
# packages; CUDA 11.8's compiler into .cuda/), then:
#   1. checks formatting (clang-format, .clang-format)
#   2. builds with CUDA kernels for sm_52 (gcc, -Werror), runs ctest there,
#      which includes the check that the fatbin holds sm_52 SASS + compute_52
#      PTX, and packs the GPU bundle (dist/gpu, must stay under 60 MiB)
#   3. builds CPU-only with clang (-Werror) and runs ctest (without the
#      "slow" label: the reference forward on a real model already ran in 2)
#   4. builds CPU-only with gcc under ASan+UBSan and runs ctest (likewise)
# GPU tests need a GPU: run dist/gpu/run-tests.sh on one (CONTRIBUTING.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=$(nproc)
step() { printf '\n== %s\n' "$*"; }

step "dependencies"
bash scripts/install-deps.sh
bash scripts/setup-cuda.sh
bash scripts/get-default-model.sh # test_reference runs the default model
bash scripts/get-gemma3-270m.sh    # test_real_greedy_gemma3 runs Gemma 3 270M
# The server's tests drive it with the official openai and ollama packages,
# validate structured outputs with jsonschema and load the chat page in
# headless Chromium through selenium.
# (Debian's own python3 refuses plain pip installs, PEP 668; a pyenv or
# venv python takes them.)
pip_install() {
    python3 -m pip install --quiet --disable-pip-version-check "$@" 2>/dev/null ||
        python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "$@"
}
pip_install "openai==2.54.0" "ollama==0.6.3" "jsonschema==4.26.0" "selenium==4.51.0"

step "format"
bash scripts/check-format.sh

# build DIR CC CTEST_ARGS [cmake args...] then ctest in DIR
build_and_test() {
    local dir=$1 cc=$2 ctest_args=$3
    shift 3
    CC=$cc cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
    cmake --build "$dir" -j "$jobs"
    # shellcheck disable=SC2086
    ctest --test-dir "$dir" --output-on-failure -j "$jobs" $ctest_args
}

step "gcc + CUDA kernels (sm_52), Release"
build_and_test build/ci-cuda gcc "" -DM40_CUDA=ON -DCMAKE_BUILD_TYPE=Release
bash scripts/gpu-bundle.sh "$root/build/ci-bundle"

step "clang, CPU-only, Debug"
build_and_test build/ci-clang clang "-LE slow" -DCMAKE_BUILD_TYPE=Debug

step "gcc, CPU-only, ASan + UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    build_and_test build/ci-asan gcc "-LE slow" -DCMAKE_BUILD_TYPE=Debug -DM40_SANITIZE=ON
