#!/usr/bin/env bash
# The test command: formatting, lints, and every test.
#
#   scripts/test.sh          fmt --check, clippy -D warnings, cargo test (all targets)
#   scripts/test.sh --deep   then also the loom models of the LPM publication
#                            protocol and the LPM's unsafe parts under Miri
#
# Installs what it needs when missing (rustfmt and clippy components;
# tshark for the trace differential test, through apt-get when root:
# scripts/lib/packages.sh).
# Runs from any directory; uses the repository's target dir (or
# CARGO_TARGET_DIR) so CI builds everything once.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/packages.sh
. scripts/lib/packages.sh

step() { printf '\n==> %s\n' "$*"; }

need_component() {
  if ! cargo "$1" --version >/dev/null 2>&1; then
    step "installing rustup component $2"
    rustup component add "$2"
  fi
}
need_component fmt rustfmt
need_component clippy clippy

# tests/trace_tshark.rs compares `xconnect trace` with tshark.
if [ -n "$(pkg_missing tshark:tshark)" ]; then
  if [ "$(id -u)" = 0 ]; then
    # wireshark-common asks whether non-root users may capture: no.
    ! command -v debconf-set-selections >/dev/null ||
      echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    pkg_install tshark:tshark || echo "note: tests/trace_tshark.rs will be skipped" >&2
  else
    echo "note: tshark missing and not root: tests/trace_tshark.rs will be skipped (sudo apt-get install tshark)" >&2
  fi
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "cargo test"
cargo test --all-targets

step "cargo test --doc"
cargo test --doc

if [ "${1:-}" = "--deep" ]; then
  # loom changes RUSTFLAGS, so it builds in a target dir of its own.
  step "loom: LPM publication protocol (tests/lpm_loom.rs)"
  RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/loom" \
    cargo test --release --test lpm_loom

  step "miri: the LPM's unsafe parts (nightly)"
  if ! cargo +nightly miri --version >/dev/null 2>&1; then
    rustup component add --toolchain nightly miri
  fi
  # Tree Borrows: crossbeam-epoch's own list code is reported under Stacked
  # Borrows (crossbeam-rs/crossbeam#545); crossbeam's CI uses Tree Borrows too.
  MIRIFLAGS="-Zmiri-tree-borrows -Zmiri-permissive-provenance -Zmiri-ignore-leaks" \
    CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/miri" \
    cargo +nightly miri test --lib lpm::
fi
