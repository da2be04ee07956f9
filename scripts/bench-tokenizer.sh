#!/usr/bin/env bash
# bench-tokenizer.sh [MEGABYTES] - tokenizer encode/decode speed, one core.
#
# Builds tests/bench/bench_tokenizer.c in a Release build (build-tok-rel),
# then encodes MEGABYTES (default 1) of deterministic mixed text (prose,
# code, CJK, emoji, numbers) with each of llama.cpp's test vocabularies in
# tests/fixtures/vocab and prints MB/s (best of three). Run it on an
# otherwise idle machine; docs/tokenizer.md records the numbers.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-tok-rel
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --target bench_tokenizer -j "${JOBS:-1}" >/dev/null
exec "$build/tests/bench_tokenizer" "$root/tests/fixtures/vocab" "${1:-1}"
