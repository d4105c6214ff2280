#!/usr/bin/env bash
# The test command: formatting, lints, and every test.
#
#   scripts/test.sh          fmt --check, clippy -D warnings, cargo test (all targets)
#   scripts/test.sh --deep   then also the loom models of the LPM publication
#                            protocol and the LPM's unsafe parts under Miri
#
# Installs what it needs when missing: rustfmt and clippy components; as
# root (through apt-get, scripts/lib/packages.sh), the tools of the netns
# end-to-end tests (iproute2, ethtool, iperf3, tcpdump, ping), tshark
# for the trace differential test, frr, whose parsers check what
# `xconnect frr-config` writes (tests/frr_parse.rs) and whose daemons run
# the BGP lab, and bird2 for the kernel-table route source's lab test
# (tests/netns_e2e.rs), and llvm, whose llc builds the XDP program of the
# silent-trunk BFD test. Not root, the netns
# tests skip and say why; so do tests/trace_tshark.rs without tshark and
# tests/frr_parse.rs without FRR (with CI=true they fail instead).
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

# tests/netns_e2e.rs (as root) drives the lab with these tools; it fails
# under CI=true when one is missing, and skips naming it otherwise.
# tests/trace_tshark.rs compares `xconnect trace` with tshark.
NETNS_TOOLS=(ip:iproute2 ethtool:ethtool iperf3:iperf3 tcpdump:tcpdump ping:iputils-ping timeout:coreutils curl:curl)
if [ "$(id -u)" = 0 ]; then
  if ! command -v tshark >/dev/null 2>&1 && command -v debconf-set-selections >/dev/null 2>&1; then
    # wireshark-common asks whether non-root users may capture: no.
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  fi
  pkg_install "${NETNS_TOOLS[@]}" tshark:tshark vtysh:frr /usr/lib/frr/zebra:frr bird:bird2 llc:llvm ||
    echo "note: the netns end-to-end tests, tests/trace_tshark.rs, tests/frr_parse.rs, tests/fpm_frr.rs and the BGP lab tests (FRR, BIRD) need the tools above" >&2
else
  if [ -n "$(pkg_missing tshark:tshark)" ]; then
    echo "note: tshark missing and not root: tests/trace_tshark.rs will be skipped (sudo apt-get install tshark)" >&2
  fi
  if [ -n "$(pkg_missing vtysh:frr)" ]; then
    echo "note: FRR missing and not root: tests/frr_parse.rs and tests/fpm_frr.rs will be skipped (sudo apt-get install frr)" >&2
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

  step "miri: the unsafe parts of the LPM and of lent payloads (nightly)"
  if ! cargo +nightly miri --version >/dev/null 2>&1; then
    rustup component add --toolchain nightly miri
  fi
  # Tree Borrows: crossbeam-epoch's own list code is reported under Stacked
  # Borrows (crossbeam-rs/crossbeam#545); crossbeam's CI uses Tree Borrows too.
  MIRIFLAGS="-Zmiri-tree-borrows -Zmiri-permissive-provenance -Zmiri-ignore-leaks" \
    CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/miri" \
    cargo +nightly miri test --lib -- lpm:: frame::batch::
fi
