#!/usr/bin/env bash
# The network-namespace lab: a customer host, xconnect as provider edge,
# two trunk links, xconnect as the MSEE pair, and one host per peering.
#
#   scripts/topology.sh up [--tap]   build it (removed again if a step fails)
#   scripts/topology.sh up --l3      the same wires, hosts addressed for the
#                                    managed Layer 3 service (each behind a
#                                    forwarder's address on its access link;
#                                    examples/lab-pe-l3.toml, lab-msee-l3.toml)
#   scripts/topology.sh up --bgp     --l3, plus one namespace per peering and
#                                    side for its host interfaces and its FRR
#                                    (${P}pe-frr-p, ${P}pe-frr-m, ${P}ms-frr-p,
#                                    ${P}ms-frr-m; examples/lab-pe-bgp.toml and
#                                    lab-msee-bgp.toml name them with P=xc-)
#   scripts/topology.sh taps         --tap only, after both forwarders run:
#                                    move the TAPs xconnect created into the
#                                    host namespaces and address them
#   scripts/topology.sh down         remove every namespace of the lab
#
#  ${P}cust                ${P}pe                                ${P}ms                ${P}vnet
#  cust-priv 192.0.2.1 ─── xc-pe-priv ┐                    ┌ xc-ms-vnet ─── vnet0 192.0.2.2
#  cust-ms 198.51.100.1 ── xc-pe-ms  ─┤ xconnect   trunks  ├ xconnect           ${P}m365
#                                     │ lab-pe-    ══════  │ msee-qinq  xc-ms-m365 ─── m365-0 198.51.100.2
#                                     └ xc-pe-tra ═══════ xc-ms-tra (primary, S 100 + C 200|300)
#                                       xc-pe-trb ═══════ xc-ms-trb (secondary, same tags)
#
# P is $XC_NS (default "xc-"): tests use their own prefix. Interface names
# are those of examples/lab-pe-qinq.toml and examples/msee-qinq.toml; they
# live inside the namespaces, so several labs never collide.
#
# This kernel has no 8021q module: hosts cannot tag, so each peering has its
# own untagged access port; the tags exist only on the trunks, written by
# xconnect. Host interfaces keep the kernel's default offloads, as a user's
# hosts have them: their TCP stacks hand over 64 KiB super-frames with
# partial checksums, which xconnect carries whole (docs/throughput.md).
# XC_HOST_OFFLOADS=off turns checksum and segmentation offloads off, so
# every frame is complete on the wire (scripts/bench-netns.sh --tcp
# measures both).
# IPv6 is off inside the forwarders' namespaces (no kernel chatter on the
# trunks); hosts keep it. Trunk MTU 1508: a 1500-byte IP packet plus S- and
# C-tag (the kernel allows one tag beyond the MTU) with room to spare.
#
# With --l3 the forwarders route: the hosts sit on /30s (/126s) of their
# own with a forwarder's address as gateway, the trunks carry the link
# subnets 192.0.2.0/29 (private) and 198.51.100.0/29 (Microsoft):
#   cust-priv 203.0.113.2 (gw .1)   vnet0 198.51.100.130 (gw .129)
#   cust-ms   203.0.113.6 (gw .5)   m365-0 198.51.100.134 (gw .133)
set -euo pipefail
# shellcheck source=scripts/lib/packages.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/packages.sh"

P=${XC_NS:-xc-}
HOST_OFFLOADS=${XC_HOST_OFFLOADS:-on}
case "$HOST_OFFLOADS" in on|off) ;; *) echo "topology: XC_HOST_OFFLOADS=on|off, not $HOST_OFFLOADS" >&2; exit 2 ;; esac
CUST=${P}cust PE=${P}pe MS=${P}ms VNET=${P}vnet M365=${P}m365
FRR_NS=("${P}pe-frr-p" "${P}pe-frr-m" "${P}ms-frr-p" "${P}ms-frr-m")
ALL=("$CUST" "$PE" "$MS" "$VNET" "$M365" "${FRR_NS[@]}")

die() { echo "topology: $*" >&2; exit 1; }

down() {
  for n in "${ALL[@]}"; do
    if ip netns list 2>/dev/null | grep -qw -- "$n"; then
      ip netns del "$n" 2>/dev/null || true
    fi
  done
}

# host_if NS DEV IPV4/LEN IPV6/LEN: address a host interface (offloads off
# with XC_HOST_OFFLOADS=off).
host_if() {
  local ns=$1 dev=$2
  if [ "$HOST_OFFLOADS" = off ]; then
    ip netns exec "$ns" ethtool -K "$dev" tx off tso off gso off gro off >/dev/null 2>&1 || true
  fi
  ip -n "$ns" link set "$dev" up
  ip -n "$ns" addr add "$3" dev "$dev"
  ip -n "$ns" addr add "$4" dev "$dev" nodad
}

# wait_up NS DEV...: until the kernel reports each interface up (a new
# veth's operstate follows its carrier through linkwatch, up to a second
# later): a forwarder started before that sees the link down at first.
wait_up() {
  local ns=$1 dev; shift
  for dev in "$@"; do
    for _ in $(seq 100); do
      ip -n "$ns" -o link show dev "$dev" 2>/dev/null | grep -q "state UP" && continue 2
      sleep 0.05
    done
    die "$dev in $ns did not come up within 5 s"
  done
}

veth() { # veth NS_A A NS_B B [MTU]
  ip -n "$1" link add "$2" ${5:+mtu $5} type veth peer name "$4" netns "$3" ${5:+mtu $5}
  ip -n "$1" link set "$2" up
  ip -n "$3" link set "$4" up
}

up() {
  local tap=0 l3=0 bgp=0
  case "${1:-}" in
    --tap) tap=1 ;;
    --l3) l3=1 ;;
    --bgp) l3=1 bgp=1 ;;
    "") ;;
    *) die "unknown option ${1}: up [--tap | --l3 | --bgp]" ;;
  esac
  [ "$(id -u)" = 0 ] || die "needs root (ip netns)"
  pkg_install ip:iproute2 ethtool:ethtool || die "needs iproute2 and ethtool"
  trap 'echo "topology: setup failed, removing ${P}*" >&2; down' ERR
  local n
  for n in "$CUST" "$PE" "$MS" "$VNET" "$M365"; do
    ip netns add "$n"
    ip -n "$n" link set lo up
  done
  if [ "$bgp" = 1 ]; then
    # Empty until xconnect moves the host interfaces in; FRR runs here.
    for n in "${FRR_NS[@]}"; do
      ip netns add "$n"
      ip -n "$n" link set lo up
    done
  fi
  for n in "$PE" "$MS"; do
    ip netns exec "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  done
  veth "$PE" xc-pe-tra "$MS" xc-ms-tra 1508
  veth "$PE" xc-pe-trb "$MS" xc-ms-trb 1508
  if [ "$tap" = 0 ]; then
    veth "$CUST" cust-priv "$PE" xc-pe-priv
    veth "$CUST" cust-ms "$PE" xc-pe-ms
    veth "$VNET" vnet0 "$MS" xc-ms-vnet
    veth "$M365" m365-0 "$MS" xc-ms-m365
    if [ "$l3" = 1 ]; then hosts_l3; else hosts; fi
    wait_up "$PE" xc-pe-priv xc-pe-ms
    wait_up "$MS" xc-ms-vnet xc-ms-m365
  fi
  wait_up "$PE" xc-pe-tra xc-pe-trb
  wait_up "$MS" xc-ms-tra xc-ms-trb
  trap - ERR
}

# The hosts of the l3 lab: each behind a forwarder's access address.
hosts_l3() {
  host_if "$CUST" cust-priv 203.0.113.2/30 2001:db8:ff::2/126
  host_if "$CUST" cust-ms 203.0.113.6/30 2001:db8:ff:2::2/126
  host_if "$VNET" vnet0 198.51.100.130/30 2001:db8:ff:1::2/126
  host_if "$M365" m365-0 198.51.100.134/30 2001:db8:ff:3::2/126
  ip -n "$CUST" route add default via 203.0.113.1
  ip -n "$CUST" route add 198.51.100.132/30 via 203.0.113.5
  ip -n "$CUST" -6 route add default via 2001:db8:ff::1
  ip -n "$VNET" route add default via 198.51.100.129
  ip -n "$VNET" -6 route add default via 2001:db8:ff:1::1
  ip -n "$M365" route add default via 198.51.100.133
}

hosts() {
  host_if "$CUST" cust-priv 192.0.2.1/30 2001:db8:0:1::1/126
  host_if "$CUST" cust-ms 198.51.100.1/30 2001:db8:0:2::1/126
  host_if "$VNET" vnet0 192.0.2.2/30 2001:db8:0:1::2/126
  host_if "$M365" m365-0 198.51.100.2/30 2001:db8:0:2::2/126
}

# move FROM_NS DEV TO_NS NEWNAME: hand a TAP that xconnect holds to a host.
move() {
  ip -n "$1" link show "$2" >/dev/null 2>&1 || die "$2 not found in $1: is xconnect running there with backend = \"tap\"?"
  ip -n "$1" link set "$2" netns "$3"
  ip -n "$3" link set "$2" name "$4"
}

taps() {
  trap 'echo "topology: moving the TAPs failed" >&2' ERR
  move "$PE" xc-pe-priv "$CUST" cust-priv
  move "$PE" xc-pe-ms "$CUST" cust-ms
  move "$MS" xc-ms-vnet "$VNET" vnet0
  move "$MS" xc-ms-m365 "$M365" m365-0
  hosts
  trap - ERR
}

case "${1:-}" in
  up) shift; down; up "$@" ;;
  taps) taps ;;
  down) down ;;
  *) echo "usage: $0 up [--tap | --l3 | --bgp] | taps | down   (namespaces ${P}*, prefix from \$XC_NS)" >&2; exit 2 ;;
esac
