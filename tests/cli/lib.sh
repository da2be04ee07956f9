# lib.sh - what the CLI test scripts share; source it after setting bin=.
#   ok / bad MSG      count a pass / a failure
#   expect STATUS ARGS...   runs "$bin" ARGS, stdout in $tmp/out, stderr in
#                     $tmp/err, checks the exit status
#   contains FILE TEXT      FILE holds TEXT
#   one_line FILE     FILE has exactly one line (an error's contract)
#   finish            prints the counts; exits non-zero on any failure
fails=0 passes=0
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

expect() {
    local want=$1
    shift
    "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
    local got=$?
    if [ "$got" -eq "$want" ]; then ok; else bad "m40-llm $* exited $got, expected $want"; fi
}
contains() { if grep -qF -- "$2" "$1"; then ok; else bad "$1 lacks '$2': $(cat "$1")"; fi; }
one_line() {
    local n
    n=$(wc -l <"$1")
    if [ "$n" -eq 1 ]; then ok; else bad "$1 has $n lines, expected 1: $(cat "$1")"; fi
}
finish() {
    echo "$(basename "$0"): $passes passed, $fails failed"
    [ "$fails" -eq 0 ]
}
