#!/usr/bin/env bash
# The whole test suite from a fresh machine: starts (installing if needed)
# the services the tests use, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
  # nextest does not run doctests.
  cargo test --workspace --locked --doc
else
  cargo test --workspace --locked --no-fail-fast
fi
