#!/usr/bin/env bash
# fuzz-tokenizer.sh [SECONDS] - fuzz the tokenizer with libFuzzer.
#
# Configures build-tok-fuzz with clang (-DM40_FUZZ=ON), builds
# tests/fuzz/fuzz_tokenizer.c and runs it for SECONDS (default 600) on one
# core. The seed corpus is made in a temporary directory from llama.cpp's
# tokenizer suite (tests/fixtures/vocab/*.inp, one file per case, under
# every option byte); a dictionary of special-token texts, contractions and
# odd whitespace helps it reach the special-token and regex paths. Crashes
# land in build-tok-fuzz/fuzz-artifacts/; replay one with
#   build-tok-fuzz/tests/fuzz_tokenizer FILE
# KEEP_CORPUS=1 keeps the grown corpus (its path is printed).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-600}
build=$root/build-tok-fuzz
vocab=$root/tests/fixtures/vocab
export CC=${CC:-clang}

if [ ! -d "$vocab" ]; then
    echo "fuzz-tokenizer: $vocab is missing (the vocab fixtures)" >&2
    exit 1
fi
# libFuzzer's runtime (libclang_rt.fuzzer) comes with compiler-rt.
if ! dpkg-query -W -f='${Status}' libclang-rt-14-dev 2>/dev/null | grep -q "ok installed"; then
    echo "fuzz-tokenizer: installing libclang-rt-14-dev (libFuzzer)"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get install -y libclang-rt-14-dev
fi

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DM40_FUZZ=ON >/dev/null
cmake --build "$build" --target fuzz_tokenizer -j "${JOBS:-1}"

corpus=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-tokenizer.XXXXXX")
if [ "${KEEP_CORPUS:-0}" = 1 ]; then
    echo "fuzz-tokenizer: corpus kept in $corpus"
else
    trap 'rm -rf "$corpus"' EXIT
fi
# Seeds: each suite case, prefixed by an option byte (bit 0 parse_special,
# bit 1 add_special, bit 2 the other BPE vocabulary).
for inp in "$vocab"/*.inp; do
    awk -v pre="$corpus/$(basename "$inp" .inp)-" \
        'BEGIN { RS = "\n__ggml_vocab_test__\n"; ORS = "" } { f = pre NR; print $0 > f; close(f) }' "$inp"
done
for f in "$corpus"/*; do
    for opt in 0 1 6 7; do
        printf "\\x0$opt" | cat - "$f" >"$f.$opt"
    done
    rm -f "$f"
done
dict=$corpus.dict
cat >"$dict" <<'DICT'
"<s>"
"</s>"
"<unk>"
"<|endoftext|>"
"<|im_start|>"
"<|im_end|>"
"<|begin_of_text|>"
"<|eot_id|>"
"[PAD151650]"
"'s"
"'LL"
"'Ve"
"\xe2\x96\x81"
"\xe3\x80\x80"
"\xc2\xa0"
"\xe1\xa0\x8e"
"\x0d\x0a"
"   \x0a"
"\xf0\x9f\x98\x81"
"\xed\xa0\x80"
"\xc0\x80"
"\xf4\x90\x80\x80"
"1234567"
DICT
mkdir -p "$build/fuzz-artifacts"
"$build/tests/fuzz_tokenizer" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -max_len="${MAX_LEN:-4096}" -print_final_stats=1 -dict="$dict" \
    -artifact_prefix="$build/fuzz-artifacts/" "$corpus"
rm -f "$dict"
