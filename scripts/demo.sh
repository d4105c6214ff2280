#!/usr/bin/env bash
# The demo: build xconnect, bring up the network-namespace lab
# (scripts/topology.sh), run both forwarders (provider edge and MSEE), send
# real traffic and print a short report: the tags on the trunk wire, DSCP
# before/after per peering, iperf3 throughput with the hosts' offloads on
# and off (super-frames carried whole, then 1500-byte frames), and the
# pings lost when the primary trunk goes down. Cleans up on exit and on Ctrl-C: no namespace
# (xc-*) or process is left behind.
#
#   sudo scripts/demo.sh                 builds as you, then the lab as root
#   scripts/demo.sh                      the same: builds, then runs itself
#                                        again through sudo for the lab
#   sudo scripts/demo.sh --binary PATH   no build: the lab with this xconnect
#   [sudo] scripts/demo.sh --bgp         the BGP lab instead: no static route,
#                                        FRR per peering over host interfaces,
#                                        routes into xconnect over FPM; shows
#                                        the sessions, routes per peering,
#                                        traffic, and BFD failover
#                                        (scripts/lib/demo-bgp.sh; installs frr)
#
# The build runs with the invoking user's identity and toolchain: sudo
# resets PATH, which hides rustup's ~/.cargo/bin, and a build as root would
# leave a target/ the user cannot write. Without sudo it is the cargo on
# PATH (else ~/.cargo/bin). Under sudo it is $SUDO_USER's cargo
# ($CARGO_HOME/bin when sudo kept a CARGO_HOME of theirs, else
# ~/.cargo/bin, else one on PATH), run as $SUDO_USER with their HOME, so
# rustup finds their ~/.rustup (or a RUSTUP_HOME of theirs that sudo kept).
# A root shell without sudo builds as root, and so does sudo when
# $SUDO_USER cannot write the target directory (a checkout of root's).
#
# Installs iproute2, iperf3, tcpdump, iputils-ping and ethtool when missing
# (scripts/lib/packages.sh: waits while another apt-get holds the lock).
set -euo pipefail

die() { echo "demo: $*" >&2; exit 1; }

BIN=
BGP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --binary)
      [ -n "${2:-}" ] || die "--binary needs the path of an xconnect binary"
      BIN=$2
      case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac
      shift 2 ;;
    --bgp) BGP=1; shift ;;
    *) echo "usage: [sudo] $0 [--bgp] [--binary PATH]" >&2; exit 2 ;;
  esac
done
BGP_ARG=()
[ "$BGP" = 1 ] && BGP_ARG=(--bgp)

cd "$(dirname "$0")/.."
REPO=$PWD
# shellcheck source=scripts/lib/packages.sh
. scripts/lib/packages.sh

# owned_by USER PATH: PATH exists and belongs to USER.
owned_by() { [ -e "$2" ] && [ "$(stat -c %U "$2")" = "$1" ]; }

# can_run USER FILE: USER may execute FILE (root's ~/.cargo/bin is not
# reachable for others, for one).
can_run() {
  if [ "$1" = "$(id -un)" ]; then [ -x "$2" ]; else runuser -u "$1" -- test -x "$2" 2>/dev/null; fi
}

# find_cargo USER HOME: the cargo that USER builds with, or nothing. Our
# own PATH first when we are USER (no sudo in between: it is theirs).
find_cargo() {
  local user=$1 home=$2 c
  if [ "$user" = "$(id -un)" ] && c=$(command -v cargo); then
    echo "$c"
  elif [ -n "${CARGO_HOME:-}" ] && owned_by "$user" "$CARGO_HOME" && can_run "$user" "$CARGO_HOME/bin/cargo"; then
    echo "$CARGO_HOME/bin/cargo"
  elif can_run "$user" "$home/.cargo/bin/cargo"; then
    echo "$home/.cargo/bin/cargo"
  elif c=$(command -v cargo) && can_run "$user" "$c"; then
    echo "$c"
  fi
}

no_toolchain() { # no_toolchain USER HOME
  {
    echo "demo: no Rust toolchain found for $1: no cargo in ${CARGO_HOME:+$CARGO_HOME/bin, }$2/.cargo/bin or on PATH."
    echo "demo: install one as $1 with rustup (https://rustup.rs: it puts cargo in ~/.cargo/bin),"
    echo "demo: or Debian's (sudo apt-get install cargo), then run this again."
    [ -z "${SUDO_USER:-}" ] ||
      echo "demo: A toolchain elsewhere: run scripts/demo.sh without sudo, with that cargo on your PATH."
  } >&2
  exit 1
}

# build USER HOME: cargo build --release as USER, in USER's own environment
# (HOME, PATH with their cargo first; CARGO_HOME/RUSTUP_HOME only when
# they are USER's; CARGO_TARGET_DIR when set).
build() {
  local user=$1 home=$2 cargo v env
  cargo=$(find_cargo "$user" "$home")
  [ -n "$cargo" ] || no_toolchain "$user" "$home"
  echo "==> cargo build --release (as $user: $cargo)"
  if [ "$user" = "$(id -un)" ]; then
    "$cargo" build --release --quiet
    return
  fi
  env=(HOME="$home" USER="$user" LOGNAME="$user" TERM="${TERM:-dumb}"
    PATH="$(dirname "$cargo"):/usr/local/bin:/usr/bin:/bin")
  for v in CARGO_HOME RUSTUP_HOME; do
    if [ -n "${!v:-}" ] && owned_by "$user" "${!v}"; then env+=("$v=${!v}"); fi
  done
  [ -z "${CARGO_TARGET_DIR:-}" ] || env+=("CARGO_TARGET_DIR=$CARGO_TARGET_DIR")
  runuser -u "$user" -- env -i "${env[@]}" "$cargo" build --release --quiet
}

target=${CARGO_TARGET_DIR:-target}
case $target in /*) ;; *) target=$REPO/$target ;; esac

if [ -n "$BIN" ]; then
  [ -x "$BIN" ] || die "$BIN is not an executable"
  [ "$(id -u)" = 0 ] || die "--binary: run as root (sudo $0 --binary $BIN)"
elif [ "$(id -u)" != 0 ]; then
  # Unprivileged: build as ourselves, then the lab through sudo.
  command -v sudo >/dev/null ||
    die "the lab needs root (network namespaces, raw sockets) and sudo is not installed: run this as root"
  build "$(id -un)" "$HOME"
  BIN=$target/release/xconnect
  echo "==> the lab needs root (network namespaces, raw sockets): sudo scripts/demo.sh ${BGP_ARG[*]:+${BGP_ARG[*]} }--binary $BIN"
  exec sudo -- "$REPO/scripts/demo.sh" "${BGP_ARG[@]}" --binary "$BIN"
else
  user=${SUDO_USER:-root}
  home=$(getent passwd "$user" | cut -d: -f6) || true
  [ -n "$home" ] || die "no home directory for $user"
  probe=$target
  [ -e "$probe" ] || probe=$REPO
  if [ "$user" != root ] && ! runuser -u "$user" -- test -w "$probe" 2>/dev/null; then
    echo "demo: $user cannot write $probe, so the build runs as root" >&2
    user=root home=$(getent passwd root | cut -d: -f6)
  fi
  build "$user" "$home"
  BIN=$target/release/xconnect
fi

# Root from here on.
pkg_install ip:iproute2 ss:iproute2 iperf3:iperf3 tcpdump:tcpdump ping:iputils-ping \
  ethtool:ethtool timeout:coreutils || die "the lab needs these tools"

export XC_NS=xc-
WORK=$(mktemp -d /tmp/xconnect-demo.XXXXXX)
# FRR's daemons run as user frr and keep their sockets below.
chmod 0755 "$WORK"
PIDS=()
STATS_ARGS=(--stats-interval 0)
cleanup() {
  trap - EXIT INT TERM
  if declare -F frr_stop >/dev/null; then frr_stop; fi
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  scripts/topology.sh down
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted, cleaning up"; exit 130' INT TERM

in_ns() { local ns=$1; shift; ip netns exec "xc-$ns" timeout 30 "$@"; }
start() { # start ROLE CONFIG CORE
  ip netns exec "xc-$1" "$BIN" run "$2" "${STATS_ARGS[@]}" --first-core "$3" --control "$WORK/$1.sock" \
    >"$WORK/$1.out" 2>"$WORK/$1.err" &
  PIDS+=($!)
  for _ in $(seq 100); do grep -q running "$WORK/$1.err" && return; sleep 0.05; done
  cat "$WORK/$1.err" >&2; exit 1
}

if [ "$BGP" = 1 ]; then
  # shellcheck source=scripts/lib/demo-bgp.sh
  . scripts/lib/demo-bgp.sh
  exit 0
fi

echo "==> lab: xc-cust -> xconnect (xc-pe) => trunks xc-pe-tra/xc-pe-trb => xconnect (xc-ms) -> xc-vnet, xc-m365"
scripts/topology.sh up

start pe examples/lab-pe-qinq.toml 0
start ms examples/msee-qinq.toml 1
sleep 0.3

capture() { # capture NS IFACE FILTER OUT -- then run traffic, then stop_captures
  ip netns exec "xc-$1" timeout 20 tcpdump -l -e -nn -v -Q in -i "$2" ${3:+"$3"} >"$WORK/$4" 2>"$WORK/$4.err" &
  CAPS+=($!); PIDS+=($!)
  for _ in $(seq 100); do grep -q listening "$WORK/$4.err" && return; sleep 0.05; done
}
stop_captures() { sleep 0.2; for p in "${CAPS[@]}"; do kill -INT "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; CAPS=(); }
CAPS=()

echo
echo "== tags on the trunk wire (captured on the MSEE side of both links)"
capture ms xc-ms-tra "" tra.cap
capture ms xc-ms-trb "" trb.cap
in_ns cust ping -c 3 -i 0.2 -W 1 192.0.2.2 | tail -1 | sed 's/^/  private   ping 192.0.2.2:    /'
in_ns cust ping -c 3 -i 0.2 -W 1 198.51.100.2 | tail -1 | sed 's/^/  microsoft ping 198.51.100.2: /'
stop_captures
for tag in 200 300; do
  line=$(cat "$WORK/tra.cap" "$WORK/trb.cap" | grep -m1 "vlan $tag," || true)
  echo "  C-tag $tag: $(echo "$line" | grep -o 'ethertype [^:]*(0x[0-9a-f]*), length [0-9]*: vlan 100, p [0-7], ethertype 802.1Q (0x8100), vlan [0-9]*' | head -1)"
done

echo
echo "== DSCP before -> after (echo requests captured at the far host)"
dscp() { # dscp HOST IFACE DST TOS LABEL
  capture "$1" "$2" "icmp and icmp[icmptype] = icmp-echo" dscp.cap
  in_ns cust ping -c 2 -i 0.2 -W 1 -Q "$4" "$3" >/dev/null || true
  stop_captures
  local got; got=$(grep -o 'tos 0x[0-9a-f]*' "$WORK/dscp.cap" | head -1 | cut -d' ' -f2)
  printf '  %-34s sent tos %-5s arrived tos %s\n' "$5" "$4" "${got:-none}"
}
dscp m365 m365-0 198.51.100.2 0x6a "microsoft peering, AF31+ECT(0):"
dscp m365 m365-0 198.51.100.2 0xb9 "microsoft peering, EF+ECT(1):"
dscp vnet vnet0 192.0.2.2 0x6a "private peering, AF31+ECT(0):"
echo "  (Microsoft peering keeps EF/AF41/AF21/AF11/CS0 and rewrites the rest to 0; ECN bits kept)"

echo
echo "== throughput: iperf3 TCP, 3 s, customer -> vnet over private peering"
# iperf_run LABEL: one 3 s iperf3 run; prints the receiver's rate and
# leaves it in $RATE (Mbit/s).
iperf_run() {
  ip netns exec xc-vnet timeout 20 iperf3 -s -1 -B 192.0.2.2 >/dev/null 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do ip netns exec xc-vnet ss -Hltn 'sport = :5201' | grep -q 5201 && break; sleep 0.05; done
  RATE=$(in_ns cust iperf3 -c 192.0.2.2 -t 3 -f m | awk '/receiver/ {print $7}')
  echo "  $1: ${RATE:-?} Mbits/sec (receiver)"
}
# The hosts' offloads as a user has them: TCP hands over 64 KiB
# super-frames, which xconnect carries whole. Then without them (every
# 1500-byte segment moved on its own), to show what that is worth.
iperf_run "hosts' offloads on (super-frames)"
ON=${RATE:-0}
for h in cust:cust-priv vnet:vnet0; do
  ip netns exec "xc-${h%%:*}" ethtool -K "${h#*:}" tx off tso off gso off >/dev/null 2>&1 || true
done
iperf_run "hosts' offloads off (1500-byte frames)"
OFF=${RATE:-0}
for h in cust:cust-priv vnet:vnet0; do
  ip netns exec "xc-${h%%:*}" ethtool -K "${h#*:}" tx on tso on gso on >/dev/null 2>&1 || true
done
awk -v on="$ON" -v off="$OFF" 'BEGIN { if (off > 0) printf "  super-frames: %.1fx the rate of segment-by-segment forwarding\n", on / off }'

echo
echo "== failover: 10 ms pings while the primary trunk (xc-pe-tra) is down for 1 s"
in_ns cust ping -i 0.01 -c 300 -W 1 192.0.2.2 >"$WORK/failover" 2>&1 &
PING=$!; PIDS+=("$PING")
sleep 0.6; ip -n xc-pe link set xc-pe-tra down
sleep 1.0; ip -n xc-pe link set xc-pe-tra up
wait "$PING" || true
grep -E 'packets transmitted' "$WORK/failover" | awk -F', ' '{split($1,a," "); split($2,b," "); print "  sent " a[1] ", received " b[1] ", lost " a[1]-b[1] " (each ping is 10 ms)"}'

echo
echo "== final counters (SIGTERM)"
for p in "${PIDS[@]:0:2}"; do kill -TERM "$p"; wait "$p" 2>/dev/null || true; done
for r in pe ms; do
  tail -1 "$WORK/$r.out" | sed "s/^/  $r: /"
done
PIDS=("${PIDS[@]:2}")
echo
echo "demo done; cleaning up"
