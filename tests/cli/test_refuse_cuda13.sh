#!/usr/bin/env bash
# test_refuse_cuda13.sh SOURCE_DIR - configuring the CUDA build with a CUDA 13
# nvcc must fail, saying that CUDA 13 dropped sm_52 and what to run instead.
# Uses a stand-in nvcc that reports release 13.0 (so the test runs anywhere),
# and also the real CUDA 13 nvcc when this machine has one.
set -u
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0 passes=0

try_nvcc() {
    local nvcc=$1 label=$2
    rm -rf "$tmp/build"
    if cmake -S "$src" -B "$tmp/build" -DM40_CUDA=ON -DM40_BUILD_TESTS=OFF \
        -DM40_NVCC="$nvcc" >"$tmp/log" 2>&1; then
        echo "FAIL: $label: configure succeeded with CUDA 13" >&2
        fails=$((fails + 1))
        return
    fi
    for want in "CUDA 13 dropped Maxwell (sm_52 / compute_52)" "scripts/setup-cuda.sh"; do
        if grep -qF "$want" "$tmp/log"; then
            passes=$((passes + 1))
        else
            echo "FAIL: $label: message lacks '$want':" >&2
            cat "$tmp/log" >&2
            fails=$((fails + 1))
        fi
    done
}

mkdir -p "$tmp/fake"
cat >"$tmp/fake/nvcc" <<'NVCC'
#!/bin/sh
echo "nvcc: NVIDIA (R) Cuda compiler driver"
echo "Cuda compilation tools, release 13.0, V13.0.88"
NVCC
chmod +x "$tmp/fake/nvcc"
try_nvcc "$tmp/fake/nvcc" "stand-in CUDA 13 nvcc"

real=/usr/local/cuda/bin/nvcc
if [ -x "$real" ] && "$real" --version 2>/dev/null | grep -q "release 1[3-9]\."; then
    try_nvcc "$real" "real $real"
else
    echo "note: no real CUDA 13 nvcc at $real; stand-in only"
fi

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
