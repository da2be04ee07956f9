#!/usr/bin/env bash
# setup-cuda.sh - install a CUDA toolchain that can compile for the Tesla M40
# (sm_52) into .cuda/ (git-ignored), and g++-11 as its host compiler.
#
# Why this toolchain (docs/toolchain.md has the details):
# - CUDA 13 (the toolkit on PATH here) cannot target sm_52 at all.
# - PyPI's nvidia-cuda-nvcc-cu12 wheels (12.4 to 12.9, checked 2026-11-25)
#   carry ptxas and libnvvm but no nvcc driver and no cicc, so they cannot
#   compile a .cu file.
# - Debian bookworm's non-free nvidia-cuda-toolkit 11.8 can. We take only the
#   compiler binaries and headers out of its packages (apt-get download +
#   dpkg-deb, through a private apt configuration), so the system's apt
#   sources and installed packages stay as they are; g++-11 comes from main.
#
# Idempotent: a second run checks the installed nvcc and prints it.
# Usage: scripts/setup-cuda.sh      (prints the nvcc the build will use)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dest=$root/.cuda
version=11.8
stamp=$dest/.installed-$version

say() { echo "setup-cuda: $*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

ensure_gxx11() {
    if command -v g++-11 >/dev/null 2>&1; then
        return
    fi
    say "installing g++-11 (CUDA 11.8's nvcc refuses gcc 12)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends g++-11 >/dev/null
}

nvcc_works() {
    [ -x "$dest/bin/nvcc" ] && "$dest/bin/nvcc" --version 2>/dev/null | grep -q "release $version"
}

# Downloads the .deb files of the named packages from bookworm non-free into
# $work/debs without touching the system's apt configuration.
download_debs() {
    local work=$1
    shift
    mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/debs"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm non-free" \
        >"$work/apt/sources.list"
    local opts=(-o "Dir::Etc::SourceList=$work/apt/sources.list" -o "Dir::Etc::SourceParts=-"
        -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache"
        -o "APT::Sandbox::User=root")
    say "fetching the non-free package index"
    apt-get "${opts[@]}" update -qq
    say "downloading $* (about 870 MB)"
    (cd "$work/debs" && apt-get "${opts[@]}" download -qq "$@")
}

install_toolkit() {
    local work
    work=$(mktemp -d)
    trap 'rm -rf "$work"' RETURN
    download_debs "$work" nvidia-cuda-toolkit nvidia-cuda-dev

    say "unpacking the compiler"
    mkdir -p "$work/tk"
    dpkg-deb -x "$work"/debs/nvidia-cuda-toolkit_*.deb "$work/tk"
    say "unpacking the headers (only usr/include of nvidia-cuda-dev)"
    mkdir -p "$work/dev"
    dpkg-deb --fsys-tarfile "$work"/debs/nvidia-cuda-dev_*.deb | tar -x -C "$work/dev" ./usr/include

    local new=$dest.new
    rm -rf "$new"
    mkdir -p "$new/bin" "$new/nvvm/libdevice"
    local tk=$work/tk/usr/lib/nvidia-cuda-toolkit
    cp "$tk/bin/nvcc" "$tk/bin/cicc" "$new/bin/"
    cp -r "$tk/bin/crt" "$new/bin/"
    for tool in cudafe++ ptxas fatbinary nvlink cuobjdump nvdisasm bin2c nvprune; do
        cp "$work/tk/usr/bin/$tool" "$new/bin/"
    done
    cp "$tk/libdevice/libdevice.10.bc" "$new/nvvm/libdevice/"
    cp -r "$work/dev/usr/include" "$new/include"
    # nvcc reads nvcc.profile beside itself; _HERE_ is that folder, so the
    # tree works wherever .cuda/ lives.
    cat >"$new/bin/nvcc.profile" <<'PROFILE'
TOP                = $(_HERE_)/..
NVVMIR_LIBRARY_DIR = $(TOP)/nvvm/libdevice
PATH              += $(_HERE_):
INCLUDES          += "-I$(TOP)/include" $(_SPACE_)
PROFILE
    rm -rf "$dest"
    mv "$new" "$dest"
    touch "$dest/.installed-$version"
}

ensure_gxx11
if [ -f "$stamp" ] && nvcc_works; then
    say "CUDA $version already installed in $dest"
else
    install_toolkit
    nvcc_works || { say "error: $dest/bin/nvcc does not run"; exit 1; }
fi
# Prove it compiles for sm_52 with the host compiler the build will use,
# with nothing but our bin/ and the system's on PATH (no CUDA 13 ptxas).
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf 'extern "C" __global__ void probe(float *x) { x[threadIdx.x] += 1.0f; }\n' >"$probe/p.cu"
env PATH="$dest/bin:/usr/bin:/bin" "$dest/bin/nvcc" -ccbin g++-11 --fatbin \
    -gencode arch=compute_52,code=sm_52 -gencode arch=compute_52,code=compute_52 \
    -o "$probe/p.fatbin" "$probe/p.cu"
say "nvcc: $dest/bin/nvcc ($("$dest/bin/nvcc" --version | grep -o 'release [0-9.]*')), host compiler $(command -v g++-11), sm_52 probe compiled"
