#!/usr/bin/env bash
# gpu-ab.sh - on the GPU machine: time the bundle and its variants side by
# side, the same commands in turns, in one device call.
#
#   bash scripts/gpu-ab.sh [-r ROUNDS] [-t SECONDS] 'CMD' ['CMD'...]
#
# From the repository root, with dist/pack.tar.xz carried (scripts/gpu-pack.sh;
# unpacked here unless dist/gpu is already there). The builds are dist/gpu
# ("gpu") and each dist/variants/NAME (scripts/gpu-variant.sh). In each CMD,
# BIN stands for the build's bin/ folder, and MODEL for a synth llama2-7b
# Q4_0 made once (/tmp/gpu-ab-7b.gguf), e.g.
#
#   bash scripts/gpu-ab.sh -r 2 'BIN/bench_kernels --tile' \
#       'BIN/m40-llm bench -m MODEL -p 512 -n 0 -r 1 -d 32768'
#
# Every build's kernels are compute_52 PTX the driver compiles on first use
# (~25 s for the whole set): they are compiled for all builds at once, in
# parallel, before anything is timed. Then, ROUNDS times (default 1), each
# CMD runs on each build in turn, under a limit of SECONDS (default 120),
# its output kept whole in $OUT/ab/NAME.CMDNUMBER.ROUND.txt (or ./ab-out
# without $OUT) and its markdown table rows (lines starting "|") printed
# under a header naming the build, command and round.
set -uo pipefail
rounds=1
limit=120
while getopts "r:t:" o; do
    case $o in
        r) rounds=$OPTARG ;;
        t) limit=$OPTARG ;;
        *) sed -n '2,22p' "$0" >&2 && exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { sed -n '2,22p' "$0" >&2 && exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
if [ ! -d dist/gpu ]; then
    [ -f dist/pack.tar.xz ] || { echo "gpu-ab: no dist/gpu and no dist/pack.tar.xz" >&2 && exit 1; }
    (cd dist && tar -xJf pack.tar.xz) || exit 1
fi
export LD_LIBRARY_PATH=$root/dist/gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
out=${OUT:-$root/ab-out}/ab
mkdir -p "$out"
names=(gpu)
bins=("$root/dist/gpu/bin")
for v in dist/variants/*/; do
    [ -x "$v/bin/m40-llm" ] || continue
    names+=("$(basename "$v")")
    bins+=("$root/${v%/}/bin")
done
t0=$(date +%s)
ts() { echo "== $(($(date +%s) - t0))s $*"; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null
model=/tmp/gpu-ab-7b.gguf
[ -f $model ] || "${bins[0]}/m40-llm" synth --shape llama2-7b --type q4_0 -o $model >/dev/null ||
    exit 1
ts "model; builds: ${names[*]}"
for i in "${!names[@]}"; do
    "${bins[$i]}/m40-llm" bench -m $model -p 8 -n 8 -r 1 >"$out/${names[$i]}.warm.txt" 2>&1 &
done
wait
ts "kernels compiled"
for r in $(seq 1 "$rounds"); do
    c=0
    for cmd in "$@"; do
        c=$((c + 1))
        for i in "${!names[@]}"; do
            line=${cmd//BIN/${bins[$i]}}
            line=${line//MODEL/$model}
            f="$out/${names[$i]}.$c.$r.txt"
            timeout "$limit" bash -c "$line" >"$f" 2>&1
            echo "-- ${names[$i]}, command $c, round $r (exit $?)"
            grep -E '^\|' "$f" | grep -vE '^\|[- |]*$'
        done
    done
    ts "round $r"
done
