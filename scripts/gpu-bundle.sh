#!/usr/bin/env bash
# gpu-bundle.sh - build the release CLI and the GPU tests with CUDA on and
# pack them into dist/gpu/, a folder that runs on any x86-64 Linux box with
# an NVIDIA driver and no compiler (the H100 test machine is one):
#
#   dist/gpu/bin/m40-llm        the CLI (kernels embedded)
#   dist/gpu/tests/test_gpu_*   the GPU tests
#   dist/gpu/run-tests.sh       runs them all; fails on any failure or skip
#
# Usage: scripts/gpu-bundle.sh [BUILD_DIR [CMAKE_ARGS...]]   (default build-gpu)
#   e.g. scripts/gpu-bundle.sh build-gpu-dbg -DCMAKE_BUILD_TYPE=RelWithDebInfo
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-gpu}
shift $(($# > 0 ? 1 : 0))
dist=$root/dist/gpu
max_mib=60

[ -x "$root/.cuda/bin/nvcc" ] || bash "$root/scripts/setup-cuda.sh"
cmake -S "$root" -B "$build" -G Ninja -DM40_CUDA=ON -DCMAKE_BUILD_TYPE=Release \
    -DM40_CPU_TESTS=OFF "$@" >/dev/null
cmake --build "$build" --target m40-llm gpu_tests

rm -rf "$dist"
mkdir -p "$dist/bin" "$dist/tests"
cp "$build/src/m40-llm" "$build/tests/gpu/bench_kernels" "$build/tests/gpu/real_greedy" "$dist/bin/"
for t in "$build"/tests/gpu/test_gpu_*; do
    [ -x "$t" ] && [ -f "$t" ] && cp "$t" "$dist/tests/"
done
strip "$dist"/bin/* "$dist"/tests/*
# The libraries from Debian that the binaries link (cJSON, PCRE2, OpenMP's
# runtime) may be missing on the GPU machine: ship them in lib/. glibc is
# not shipped; the machine's own is used.
mkdir -p "$dist/lib"
ldd "$dist"/bin/* "$dist"/tests/* | awk '/=> \// {print $3}' | sort -u |
    grep -Ev '/(libc|libm|libdl|libpthread|librt|ld-linux[^/]*)\.so' |
    while read -r lib; do cp -L "$lib" "$dist/lib/"; done
cat >"$dist/m40-llm" <<'WRAP'
#!/bin/sh
# Runs bin/m40-llm with the libraries shipped in lib/.
here=$(cd "$(dirname "$0")" && pwd)
LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$here/bin/m40-llm" "$@"
WRAP
chmod +x "$dist/m40-llm"
cp "$root/scripts/gpu-run-tests.sh" "$dist/run-tests.sh"
cp "$root/tests/fixtures/forward/gemma3-270m.json" "$dist/"
chmod +x "$dist/run-tests.sh"

size_kib=$(du -sk "$dist" | cut -f1)
if [ "$size_kib" -gt $((max_mib * 1024)) ]; then
    echo "gpu-bundle: $dist is $((size_kib / 1024)) MiB, over the $max_mib MiB limit" >&2
    exit 1
fi
echo "gpu-bundle: $dist ($size_kib KiB): $(ls "$dist/tests" | wc -l) GPU tests"
