#!/usr/bin/env bash
# test_fatbin.sh CUOBJDUMP FATBIN BINARY - the kernels are Maxwell code.
# Both the built fatbin and the m40-llm binary that embeds it must hold one
# sm_52 cubin (SASS) and compute_52 PTX, and nothing for any other target.
set -u
cuobjdump=$1
shift
fails=0 passes=0
check() { # check DESCRIPTION COMMAND... : the command must succeed
    local what=$1
    shift
    if "$@"; then passes=$((passes + 1)); else echo "FAIL: $what" >&2; fails=$((fails + 1)); fi
}
for f in "$@"; do
    elf=$("$cuobjdump" --list-elf "$f" 2>&1)
    ptx=$("$cuobjdump" --list-ptx "$f" 2>&1)
    echo "$f:"
    echo "$elf" | sed 's/^/  /'
    echo "$ptx" | sed 's/^/  /'
    check "$f lists an sm_52 cubin" grep -q 'sm_52\.cubin' <<<"$elf"
    check "$f lists PTX" grep -q '\.ptx' <<<"$ptx"
    check "$f has no cubin for another arch" test "$(grep -c '\.cubin' <<<"$elf")" -eq \
        "$(grep -c 'sm_52\.cubin' <<<"$elf")"
    check "$f cubin is arch sm_52" grep -q 'arch = sm_52' <(
        "$cuobjdump" --dump-elf "$f" 2>&1
    )
    targets=$("$cuobjdump" --dump-ptx "$f" 2>&1 | grep '^\.target' | sort -u)
    check "$f PTX targets compute_52 only (.target sm_52): got '$targets'" \
        test "$targets" = ".target sm_52"
done
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
