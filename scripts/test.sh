#!/usr/bin/env bash
# The test command: formatting, lints, and every test.
#
#   scripts/test.sh          fmt --check, clippy -D warnings, cargo test (all targets)
#
# Installs what it needs when missing (rustfmt and clippy components).
# Runs from any directory; uses the repository's target dir (or
# CARGO_TARGET_DIR) so CI builds everything once.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

need_component() {
  if ! cargo "$1" --version >/dev/null 2>&1; then
    step "installing rustup component $2"
    rustup component add "$2"
  fi
}
need_component fmt rustfmt
need_component clippy clippy

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "cargo test"
cargo test --all-targets

step "cargo test --doc"
cargo test --doc
