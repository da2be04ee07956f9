#!/usr/bin/env bash
# fuzz-jinja.sh [SECONDS] - fuzz the chat-template (Jinja) interpreter.
#
# Configures build-fuzz-jinja with clang (-DM40_FUZZ=ON), builds
# tests/fuzz/fuzz_jinja.c and runs it for SECONDS (default 600) over a
# temporary copy of tests/fuzz/seeds/jinja (libFuzzer writes new inputs into
# the first corpus directory) plus the real templates in
# tests/fixtures/chat/templates, read-only. A dictionary of Jinja tokens steers mutations toward valid
# syntax. Crashes land in build-fuzz-jinja/fuzz-artifacts/: once fixed, add
# the input to tests/fuzz/seeds/jinja so that the fuzz_jinja_seeds test
# replays it in every build. KEEP_CORPUS=1 keeps the grown corpus.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-600}
build=$root/build-fuzz-jinja
export CC=${CC:-clang}

# libFuzzer's runtime (libclang_rt.fuzzer) comes with compiler-rt.
if ! dpkg-query -W -f='${Status}' libclang-rt-14-dev 2>/dev/null | grep -q "ok installed"; then
    echo "fuzz-jinja: installing libclang-rt-14-dev (libFuzzer)"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get install -y libclang-rt-14-dev
fi

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DM40_FUZZ=ON >/dev/null
cmake --build "$build" --target fuzz_jinja -j "${JOBS:-$(nproc)}"

work=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-jinja.XXXXXX")
if [ "${KEEP_CORPUS:-0}" = 1 ]; then
    echo "fuzz-jinja: corpus kept in $work/corpus"
else
    trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work/corpus"
cp "$root"/tests/fuzz/seeds/jinja/* "$work/corpus"/
dirs=("$work/corpus" "$root/tests/fixtures/chat/templates")

# Jinja's delimiters, keywords, filters, tests and methods.
dict=$work/jinja.dict
{
    for tok in '{{' '}}' '{%' '%}' '{#' '#}' '{%-' '-%}' '{{-' '-}}' '{%+' '+%}' \
        for in endfor if elif else endif set endset macro endmacro call endcall \
        filter endfilter raw endraw with endwith break continue generation endgeneration \
        recursive namespace range dict joiner raise_exception strftime_now caller varargs kwargs \
        loop.index loop.index0 loop.first loop.last loop.length loop.cycle loop.changed \
        loop.previtem loop.nextitem loop.depth loop.revindex messages tools bos_token \
        add_generation_prompt true false none is not and or '|tojson' '|tojson(indent=2)' \
        '|trim' '|length' '|default(' '|join(' '|map(attribute=' '|selectattr(' '|rejectattr(' \
        '|select(' '|reject(' '|list' '|items' '|sort' '|unique' '|reverse' '|first' '|last' \
        '|string' '|int' '|float' '|upper' '|lower' '|title' '|capitalize' '|replace(' '|indent(' \
        '|format(' '|round' '|sum' '|max' '|min' '|batch(' '|dictsort' '|e' '|safe' '|truncate(' \
        defined undefined mapping sequence iterable string number integer equalto divisibleby \
        odd even '.items()' '.keys()' '.values()' '.get(' '.strip(' '.split(' '.startswith(' \
        '.endswith(' '.format(' '.replace(' '.join(' '.lstrip(' '.rstrip(' '.title()' '[::-1]' \
        '[1:]' '[-1]' '**' '//' '~' '==' '!=' '>=' '<=' "'" '"' '\n' '\u00e9' '%s'; do
        printf '"%s"\n' "$(printf '%s' "$tok" | sed 's/\\/\\\\/g; s/"/\\"/g')"
    done
} >"$dict"
mkdir -p "$build/fuzz-artifacts"

"$build/tests/fuzz_jinja" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -max_len="${MAX_LEN:-8192}" -dict="$dict" -print_final_stats=1 \
    -artifact_prefix="$build/fuzz-artifacts/" "${dirs[@]}"
