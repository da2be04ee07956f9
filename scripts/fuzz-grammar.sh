#!/usr/bin/env bash
# fuzz-grammar.sh [SECONDS] - fuzz the grammar compiler, the JSON Schema
# converter and the matcher (src/grammar/).
#
# Configures build-fuzz-grammar with clang (-DM40_FUZZ=ON), builds
# tests/fuzz/fuzz_grammar.c and runs it for SECONDS (default 600) over a
# temporary copy of tests/fuzz/seeds/grammar (libFuzzer writes new inputs
# into it). A dictionary of GBNF and JSON Schema tokens steers mutations
# toward valid syntax. Crashes land in build-fuzz-grammar/fuzz-artifacts/:
# once fixed, add the input to tests/fuzz/seeds/grammar so that the
# fuzz_grammar_seeds test replays it in every build. KEEP_CORPUS=1 keeps
# the grown corpus.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-600}
build=$root/build-fuzz-grammar
export CC=${CC:-clang}

# libFuzzer's runtime (libclang_rt.fuzzer) comes with compiler-rt.
if ! dpkg-query -W -f='${Status}' libclang-rt-14-dev 2>/dev/null | grep -q "ok installed"; then
    echo "fuzz-grammar: installing libclang-rt-14-dev (libFuzzer)"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get install -y libclang-rt-14-dev
fi

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DM40_FUZZ=ON >/dev/null
cmake --build "$build" --target fuzz_grammar -j "${JOBS:-$(nproc)}"

work=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-grammar.XXXXXX")
if [ "${KEEP_CORPUS:-0}" = 1 ]; then
    echo "fuzz-grammar: corpus kept in $work/corpus"
else
    trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work/corpus"
cp "$root"/tests/fuzz/seeds/grammar/* "$work/corpus"/

# GBNF's syntax and JSON Schema's keywords.
dict=$work/grammar.dict
{
    for tok in 'root' '::=' '|' '(' ')' '[' ']' '[^' '*' '+' '?' '{' '}' '{0,' ',}' '.' '#' \
        '\\x' '\\u' '\\U' '\\n' '\\"' '\\\\' 'a-z' '0-9' '"type"' '"object"' '"array"' \
        '"string"' '"number"' '"integer"' '"boolean"' '"null"' '"properties"' '"required"' \
        '"items"' '"prefixItems"' '"minItems"' '"maxItems"' '"minLength"' '"maxLength"' \
        '"enum"' '"const"' '"anyOf"' '"oneOf"' '"allOf"' '"$ref"' '"#/$defs/' '"$defs"' \
        '"definitions"' '"additionalProperties"' '"minimum"' 'true' 'false' ':' ','; do
        printf '"%s"\n' "$(printf '%s' "$tok" | sed 's/\\/\\\\/g; s/"/\\"/g')"
    done
} >"$dict"
mkdir -p "$build/fuzz-artifacts"

"$build/tests/fuzz_grammar" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -max_len="${MAX_LEN:-4096}" -dict="$dict" -print_final_stats=1 \
    -artifact_prefix="$build/fuzz-artifacts/" "$work/corpus"
