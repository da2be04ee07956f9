#!/usr/bin/env bash
# install-hooks.sh - use the repository's git hooks (.githooks/).
set -euo pipefail
cd "$(dirname "$0")/.."
git config core.hooksPath .githooks
echo "git hooks: .githooks (pre-commit: format + build; commit-msg: Conventional Commits + body)"
