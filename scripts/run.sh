#!/usr/bin/env bash
# run.sh - the main job on a fresh machine: install what is missing, build
# m40-llm (with the sm_52 kernels), and run it.
#
# Today m40-llm can describe itself and the GPUs it sees (`info`); text
# generation with the default model (SmolLM2-135M-Instruct) arrives with the
# CPU forward pass and engine (issue 6), and this script will then fetch the
# model and generate. Arguments are passed to `m40-llm info`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/install-deps.sh >/dev/null
bash scripts/setup-cuda.sh >/dev/null
cmake -S . -B build/release -G Ninja -DM40_CUDA=ON -DCMAKE_BUILD_TYPE=Release -DM40_BUILD_TESTS=OFF >/dev/null
cmake --build build/release -j "$(nproc)" >/dev/null
exec build/release/src/m40-llm info "$@"
