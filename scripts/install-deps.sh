#!/usr/bin/env bash
# install-deps.sh - the Debian packages m40-llm's build and tests need.
# Installs only what is missing; safe to run again. CUDA is separate
# (scripts/setup-cuda.sh), because CPU-only builds need none of it.
set -euo pipefail

packages=(
    cmake ninja-build make gcc g++ # build
    clang                          # the second compiler CI builds with (-Werror)
    clang-format                   # formatting check
    binutils                       # strip, for the GPU bundle
    git ca-certificates
    pkg-config libpcre2-dev        # pre-tokenizer regexes (Unicode classes, JIT)
    libcjson-dev                   # JSON: chat messages, server requests
    libmicrohttpd-dev              # HTTP: m40-llm serve
    python3 python3-pip            # scripts/get-default-model.sh, reference scripts
    chromium chromium-driver       # the chat page's test in a headless browser
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all present"
    exit 0
fi
echo "install-deps: installing ${missing[*]}"
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
