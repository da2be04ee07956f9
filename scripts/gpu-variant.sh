#!/usr/bin/env bash
# gpu-variant.sh - build one revision's CLI and kernel benchmarks for a
# side-by-side run on the GPU machine, beside the GPU bundle.
#
#   scripts/gpu-variant.sh NAME [REV]     (REV: a commit or branch; default:
#                                          the working tree as it is)
#   KERNEL_DEFINES="-DM40_Q4_K_SCALED_DECODE=0" scripts/gpu-variant.sh NAME
#                                         (a kernel macro set otherwise)
#
# puts bin/m40-llm and bin/bench_kernels of REV (kernels embedded) into
# dist/variants/NAME/, built in a worktree of its own (build-variant/NAME),
# so several revisions travel in one call (about 10 MiB each; they use the
# bundle's lib/). On the GPU machine, time them in one run:
#
#   export LD_LIBRARY_PATH=$PWD/dist/gpu/lib
#   for v in dist/variants/*/; do $v/bin/m40-llm bench -m 7b.gguf -p 8 -n 8 -r 1; done
#   for v in dist/variants/*/; do $v/bin/m40-llm bench -m 7b.gguf --batch 1,8 ...; done
#
# (scripts/gpu-ab.sh runs such commands for the bundle and every variant.)
# The first line is the warm-up that matters: each revision's kernels are
# compute_52 PTX that the driver compiles for the GPU the first time a
# binary loads them (tens of seconds for the whole set), then keeps in its
# cache (~/.nv/ComputeCache). A timed command with a short limit that does
# the compiling itself runs out of time before printing anything.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    sed -n '2,24p' "$0" >&2
    exit 2
fi
name=$1
rev=${2:-}
case $name in
    */* | .* | '') echo "gpu-variant: NAME must be a plain name" >&2 && exit 2 ;;
esac
out=$root/dist/variants/$name
build=$root/build-variant/$name
src=$root
if [ -n "$rev" ]; then
    src=$root/build-variant/$name.src
    rm -rf "$src"
    git -C "$root" worktree prune
    git -C "$root" worktree add --detach -f "$src" "$rev" >/dev/null
    # the toolchain the README's set-up installed, shared
    ln -sfn "$root/.cuda" "$src/.cuda"
fi
[ -x "$root/.cuda/bin/nvcc" ] || bash "$root/scripts/setup-cuda.sh"
# KERNEL_DEFINES="-DNAME=1 ...": nvcc flags that turn on a kernel
# experiment its source keeps off (cmake's M40_KERNEL_DEFINES)
defines=${KERNEL_DEFINES:-}
cmake -S "$src" -B "$build" -G Ninja -DM40_CUDA=ON -DCMAKE_BUILD_TYPE=Release \
    -DM40_CPU_TESTS=OFF "-DM40_KERNEL_DEFINES=${defines// /;}" >/dev/null
cmake --build "$build" --target m40-llm bench_kernels
rm -rf "$out"
mkdir -p "$out/bin"
cp "$build/src/m40-llm" "$build/tests/gpu/bench_kernels" "$out/bin/"
strip "$out"/bin/*
git -C "$src" log -1 --format='%h %s' >"$out/REVISION" 2>/dev/null || true
[ -z "$defines" ] || echo "(kernels built with $defines)" >>"$out/REVISION"
[ -z "$(git -C "$src" status --porcelain --untracked-files=no 2>/dev/null)" ] ||
    echo "(with uncommitted changes)" >>"$out/REVISION"
if [ -n "$rev" ]; then
    git -C "$root" worktree remove --force "$src"
fi
echo "gpu-variant: $out ($(du -sk "$out" | cut -f1) KiB): $(cat "$out/REVISION")"
