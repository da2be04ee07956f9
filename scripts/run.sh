#!/usr/bin/env bash
# run.sh - the main job on a fresh machine: install what is missing, build
# m40-llm (with its sm_52 kernels), fetch the default model
# (SmolLM2-135M-Instruct, Q4_1) and generate text with it.
#
#   bash scripts/run.sh                    # a chat answer from the default model
#   bash scripts/run.sh -p "Once upon a time" -n 64    # any `generate` flags
#
# It runs on the GPU when one is usable and says so when it falls back to
# the CPU.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/install-deps.sh >/dev/null
bash scripts/setup-cuda.sh >/dev/null
bash scripts/get-default-model.sh >/dev/null
cmake -S . -B build/release -G Ninja -DM40_CUDA=ON -DCMAKE_BUILD_TYPE=Release \
    -DM40_BUILD_TESTS=OFF >/dev/null
cmake --build build/release -j "$(nproc)" >/dev/null
if [ $# -eq 0 ]; then
    set -- --chat -p "In three sentences, why is the sky blue?" -n 120 --temp 0.3 --seed 1
fi
exec build/release/src/m40-llm generate "$@"
