#!/usr/bin/env bash
# gpu-pack.sh - pack the GPU bundle (and any variants) into one xz archive
# for a device call whose carried files are limited in size.
#
#   scripts/gpu-pack.sh [PATH...]   (paths under dist/; default: gpu, and
#                                    variants when dist/variants exists)
#
# writes dist/pack.tar.xz. The bundle's binaries compress about 7:1 (the
# whole bundle, ~50 MiB, to ~7 MiB; each variant ~10 -> ~2 MiB), so one
# call can carry the bundle and several variants beside the source tree.
# On the GPU machine, from the repository root:
#
#   tar -xJf dist/pack.tar.xz -C dist
#
# e.g. scripts/gpu-pack.sh gpu/lib gpu/bin/m40-llm gpu/tests/test_gpu_ops
# packs only what one test run needs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/dist" 2>/dev/null || { echo "gpu-pack: no dist/ (run scripts/gpu-bundle.sh)" >&2; exit 1; }
paths=("$@")
if [ ${#paths[@]} -eq 0 ]; then
    paths=(gpu)
    [ -d variants ] && paths+=(variants)
fi
for p in "${paths[@]}"; do
    case $p in
        /* | *..*) echo "gpu-pack: $p: a path under dist/, please" >&2 && exit 2 ;;
    esac
    [ -e "$p" ] || { echo "gpu-pack: dist/$p does not exist" >&2; exit 1; }
done
tar -cJf pack.tar.xz.tmp "${paths[@]}"
mv pack.tar.xz.tmp pack.tar.xz
echo "gpu-pack: dist/pack.tar.xz ($(du -k pack.tar.xz | cut -f1) KiB): ${paths[*]}"
