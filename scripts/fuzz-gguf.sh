#!/usr/bin/env bash
# fuzz-gguf.sh [SECONDS] - fuzz the GGUF reader with libFuzzer.
#
# Configures build-fuzz with clang (-DM40_FUZZ=ON), builds tests/fuzz/
# fuzz_gguf.c and runs it for SECONDS (default 600) over a temporary copy of
# tests/fuzz/seeds/gguf (libFuzzer writes new inputs into the first corpus
# directory) plus tests/fixtures/vocab, read-only.
# Inputs are capped at MAX_LEN bytes (default 65536; larger files, such as
# the vocab fixtures, are cut to that prefix). Crashes land in
# build-fuzz/fuzz-artifacts/: once fixed, add the input to
# tests/fuzz/seeds/gguf so that the fuzz_gguf_seeds test replays it in every
# build. KEEP_CORPUS=1 keeps the grown corpus (its path is printed).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-600}
build=$root/build-fuzz
export CC=${CC:-clang}

# libFuzzer's runtime (libclang_rt.fuzzer) comes with compiler-rt.
if ! dpkg-query -W -f='${Status}' libclang-rt-14-dev 2>/dev/null | grep -q "ok installed"; then
    echo "fuzz-gguf: installing libclang-rt-14-dev (libFuzzer)"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get install -y libclang-rt-14-dev
fi

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DM40_FUZZ=ON >/dev/null
cmake --build "$build" --target fuzz_gguf -j "${JOBS:-$(nproc)}"

corpus=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-gguf.XXXXXX")
if [ "${KEEP_CORPUS:-0}" = 1 ]; then
    echo "fuzz-gguf: corpus kept in $corpus"
else
    trap 'rm -rf "$corpus"' EXIT
fi
cp "$root"/tests/fuzz/seeds/gguf/* "$corpus"/
dirs=("$corpus" "$root/tests/fixtures/vocab")
mkdir -p "$build/fuzz-artifacts"

"$build/tests/fuzz_gguf" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -max_len="${MAX_LEN:-65536}" -print_final_stats=1 \
    -artifact_prefix="$build/fuzz-artifacts/" "${dirs[@]}"
