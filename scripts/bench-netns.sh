#!/usr/bin/env bash
# Throughput on real interfaces: gen → dut → sink network namespaces joined
# by veth pairs, 64-byte UDP frames from a generator, packets counted over fixed
# windows. The dut is xconnect (AF_PACKET, 1 and 2 workers; TAP access
# port), the Linux kernel (IPv4 forwarding, bridge; with and without RPS),
# Open vSwitch's userspace datapath, or nothing (the gen → sink ceiling).
#
#   sudo scripts/bench-netns.sh [--quick] [--json] [--window S] [--windows N]
#                               [--modes a,b,…] [--list] [--gen xconnect|trafgen]
#                               [--nice N]
#   sudo scripts/bench-netns.sh --tcp [--quick] [--json] [--window S] [--windows N]
#                               [--modes tcp-…] [--list] [--offloads on|off|both]
#                               [--xc-cores PE,MSEE]
#
#            ${P}gen              ${P}dut                    ${P}sink
#   trafgen → xcb-gen0 ═══ xcb-din  [dut]  xcb-dtra ═══ xcb-stra   (primary trunk / routed / bridged)
#   (core 0)                       (core 1) xcb-dtrb ═══ xcb-strb   (secondary trunk: xconnect only)
#
# Offered = the generator veth's tx_packets + tx_dropped (frames the dut's
# receive path refused are counted there); delivered = the sum of the sink
# veths' rx_packets, over the same window. The sink drops every frame early
# (foreign destination MAC, or an S-tag nobody terminates). Every mode runs
# on a fresh topology, 1 s warm-up, then one window; `--windows` rounds
# interleave the modes. The table shows medians, the delivered range over
# the windows (min-max), the ratio to kernel IPv4
# forwarding with RPS of the same run and the share of offered that arrives.
# `--quick`: one round of 2 s windows. `--nice N`: run the generator,
# xconnect and OVS at nice N (the kernel baselines work in softirq, which
# a busy box's other tasks do not slow down the same way).
#
# `xconnect-1w-capture` is xconnect-1w with `--capture` on every port
# (rx, tx, drop; pcapng on tmpfs under /dev/shm, 8 × 64 MiB kept); the
# note column gives the capture's own written/dropped frames over the
# whole runs. Its writer thread is pinned to core 1, beside the worker
# (XCB_CAPTURE_CORE=N|none to change): core 0 already carries the
# generator and the receive softirq that bound the offered rate.
# XCB_CAPTURE_ARGS adds `xconnect run` arguments to that mode.
#
# `xconnect-1w-metrics` is xconnect-1w with `--metrics 127.0.0.1:9477`
# and a scraper in the dut namespace, started with xconnect, that GETs
# http://127.0.0.1:9477/metrics once a second (curl, unpinned) until the
# window ends; it runs in its own process group, stopped like the
# generators. The note column counts the scrapes over the whole runs
# (warm-up and windows): succeeded, failed (curl error or HTTP status),
# cut short by the stop at the end of a run, tried; and the median time
# of a successful one. Every xconnect
# mode serves its control socket (on by default, /run/xconnect/
# bench-dut.sock; the script never passes --no-control), so this mode
# against xconnect-1w measures what a scraped /metrics costs the worker.
#
# Where the work runs (2 cores). A veth runs its peer's receive in the
# softirq of the core that transmits: without RPS the dut's ingress
# receive (routing, bridging, or the copy into an AF_PACKET ring) runs on
# core 0, in the generator's send calls, and slows the generator; the
# dut's transmit and the sink's receive run on core 1, where the dut is.
#   kernel-fwd, bridge     all dut work on core 0 with the generator
#   kernel-fwd-rps,        ingress receive steered to core 1 (rps_cpus =
#   bridge-rps             2): every bit of dut work on core 1
#   xconnect-1w,           worker (or the whole ovs-vswitchd) pinned to
#   ovs-netdev             core 1; the ingress receive into its socket on
#                          core 0, in the generator's send calls
#   xconnect-1w-rps        as xconnect-1w, ingress receive on core 1 too:
#                          the same one-core budget as kernel-fwd-rps
#   xconnect-1w-capture    as xconnect-1w, its capture writer on core 1
#   xconnect-1w-metrics    as xconnect-1w, plus the metrics thread and the
#                          scraper (scheduler's choice of core)
#   kernel-fwd-napi,       the ingress veth received through threaded NAPI
#   xconnect-1w-napi       (GRO on, its thread pinned to core 1; the
#                          generator's veth without TSO/GSO so its frames
#                          take that path): the generator only queues each
#                          frame, the receive runs batched on core 1 beside
#                          the dut. xconnect's worker runs SCHED_FIFO there
#                          (--worker-priority 10) so the NAPI thread gets
#                          core 1 only when the worker waits; without it
#                          CFS splits the core and fewer frames arrive.
#   ovs-afxdp              ovs-netdev with AF_XDP ports (native XDP on the
#                          veths, copy mode) and one PMD thread on core 1
# So xconnect-1w has more than one core's worth of dut work done for it
# but a generator slowed by that work (offered is lower); xconnect-1w-rps
# has exactly kernel-fwd-rps's budget. The table shows both; a share
# under 100% means the dut, not the generator, set the rate.
#
# The generator (core 0) is `xconnect gen` by default: 16 UDP flows, 32
# frames per kick of a TX ring (with the af_packet port's virtio-header
# trick, so the frames are linear skbs) on a qdisc-bypassing AF_PACKET
# socket; a batch that finds the ring full is retried. `--gen trafgen`
# uses trafgen (netsniff-ng) instead, with `--cpus 1` (its one worker
# pinned to core 0) and `--no-sock-mem`;
# trafgen 0.6.8 exits on EAGAIN ("Flushing TX_RING failed"), which happens
# here as soon as the receive work runs on the other core (RPS): such a
# window is discarded and trafgen restarted (`rst` column). Generators run
# in their own process group under `timeout` and are stopped by killing
# the group.
#
# Installs netsniff-ng (with --gen trafgen), ethtool (the -napi modes),
# curl (xconnect-1w-metrics) and openvswitch-switch when missing, keeping
# the packages' services from starting (policy-rc.d). OVS
# runs as a private instance (own db, run directory and sockets in a
# temporary directory) inside the dut namespace, pinned to core 1, with
# AF_PACKET ("system") ports, or AF_XDP ports (ovs-afxdp), and one
# OpenFlow rule per direction.
# Everything created (namespaces ${P}*, processes, the temporary
# directory) is removed on exit, failure and Ctrl-C.
#
# `--tcp`: bulk TCP instead (iperf3, one stream) through the lab's
# two-hop chain (scripts/topology.sh: customer host → hop 1 → trunk →
# hop 2 → VNet host), the hops being the lab's two xconnects (L2 QinQ or
# routed l3), two namespaces of kernel IPv4 forwarding, or two Linux
# bridges; `--window` is each iperf3 run's seconds, `--windows` the runs;
# `--offloads` the end hosts' offloads. See scripts/lib/bench-tcp.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/packages.sh
. scripts/lib/packages.sh

ALL_MODES=(ceiling kernel-fwd kernel-fwd-rps bridge bridge-rps ovs-netdev ovs-afxdp
  xconnect-1w xconnect-2w xconnect-1w-rps xconnect-1w-napi kernel-fwd-napi xconnect-tap xconnect-1w-capture
  xconnect-1w-metrics)
# The --tcp modes (scripts/lib/bench-tcp.sh); --list shows them with --tcp.
TCP_MODES=(tcp-kernel-fwd tcp-bridge tcp-xconnect-l2 tcp-xconnect-l3 tcp-xconnect-l2-tap)
WINDOW=5 WINDOWS=3 JSON=0 MODES="" GEN_TOOL=xconnect NICE=0 TCP=0 OFFLOADS="" LIST=0 XC_CORES=""
usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) WINDOW=2; WINDOWS=1 ;;
    --json) JSON=1 ;;
    --window) WINDOW=${2:?}; shift ;;
    --windows) WINDOWS=${2:?}; shift ;;
    --modes) MODES=${2:?}; shift ;;
    --gen) GEN_TOOL=${2:?}; shift ;;
    --nice) NICE=${2:?}; shift ;;
    --tcp) TCP=1 ;;
    --offloads) OFFLOADS=${2:?}; shift ;;
    --xc-cores) XC_CORES=${2:?}; shift ;;
    --list) LIST=1 ;;
    -h|--help) usage ;;
    *) echo "bench-netns: unknown argument $1" >&2; usage ;;
  esac
  shift
done
[[ "$WINDOW" =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "bench-netns: --window needs seconds" >&2; exit 2; }
[[ "$NICE" =~ ^-?[0-9]+$ ]] || { echo "bench-netns: --nice needs an integer" >&2; exit 2; }
[[ -z "$XC_CORES" || "$XC_CORES" =~ ^[0-9]+,[0-9]+$ ]] || { echo "bench-netns: --xc-cores needs PE,MSEE core numbers, e.g. 1,1" >&2; exit 2; }
[[ "$WINDOWS" =~ ^[1-9][0-9]?$ ]] || { echo "bench-netns: --windows needs 1..99" >&2; exit 2; }
# --modes naming only tcp-* modes implies --tcp (the two kinds do not mix).
if [ -n "$MODES" ]; then
  IFS=, read -r -a SEL <<<"$MODES"
  tcp_only=1
  for m in "${SEL[@]}"; do [[ "$m" == tcp-* ]] || tcp_only=0; done
  [ "$tcp_only" = 0 ] || TCP=1
fi
if [ "$TCP" = 1 ]; then ALL_MODES=("${TCP_MODES[@]}"); fi
if [ "$LIST" = 1 ]; then printf '%s\n' "${ALL_MODES[@]}"; exit 0; fi
if [ -n "$MODES" ]; then IFS=, read -r -a SEL <<<"$MODES"; else SEL=("${ALL_MODES[@]}"); fi
for m in "${SEL[@]}"; do
  [[ " ${ALL_MODES[*]} " == *" $m "* ]] ||
    { echo "bench-netns: unknown mode $m (--list; --tcp --list for the TCP modes, which do not mix with the UDP ones)" >&2; exit 2; }
done
if [ "$TCP" = 1 ]; then
  [[ "$WINDOW" =~ ^[1-9][0-9]*$ ]] || { echo "bench-netns: --tcp: --window needs whole seconds (iperf3 -t)" >&2; exit 2; }
  case "${OFFLOADS:-default}" in default|on|off|both) ;; *) echo "bench-netns: --offloads on|off|both" >&2; exit 2 ;; esac
elif [ -n "$OFFLOADS" ]; then
  echo "bench-netns: --offloads is for --tcp (the UDP modes set no host offloads)" >&2; exit 2
fi

# Threaded NAPI (Linux 5.12+): without it the -napi modes cannot be set up.
if [ ! -e /sys/class/net/lo/threaded ]; then
  keep=()
  for m in "${SEL[@]}"; do
    if [[ "$m" == *-napi ]]; then
      echo "bench-netns: skipping $m: this kernel has no threaded NAPI (/sys/class/net/*/threaded)" >&2
    else
      keep+=("$m")
    fi
  done
  SEL=("${keep[@]}")
fi

[ "$(id -u)" = 0 ] || { echo "bench-netns: run as root (namespaces, raw sockets): sudo $0" >&2; exit 1; }
log() { echo "bench-netns: $*" >&2; }

case "$GEN_TOOL" in xconnect|trafgen) ;; *) echo "bench-netns: --gen xconnect|trafgen" >&2; exit 2 ;; esac
tools=(ip:iproute2 timeout:coreutils taskset:util-linux pgrep:procps)
[ "$TCP" = 0 ] || tools+=(iperf3:iperf3 ethtool:ethtool jq:jq ss:iproute2)
[[ " ${SEL[*]} " != *"-napi "* ]] || tools+=(ethtool:ethtool)
[[ " ${SEL[*]} " != *" xconnect-1w-metrics "* ]] || tools+=(curl:curl)
[ "$GEN_TOOL" != trafgen ] || tools+=(trafgen:netsniff-ng)
[[ " ${SEL[*]} " != *" ovs-"* ]] || tools+=(ovs-vswitchd:openvswitch-switch)
# (the packages' services are not started: see scripts/lib/packages.sh)
pkg_install "${tools[@]}" || { log "cannot run without these tools"; exit 1; }

log "cargo build --release"
cargo build --release --quiet
BIN=$(realpath "${CARGO_TARGET_DIR:-target}/release/xconnect")

P=${XCB_NS:-xcb-}
GEN=${P}gen DUT=${P}dut SINK=${P}sink
WORK=$(mktemp -d /tmp/xcb-bench.XXXXXX)
# xconnect-1w-capture writes its pcapng files to tmpfs (the disk is not
# what is measured), at most 8 × 64 MiB (--capture-files 8).
CAPDIR=$(mktemp -d /dev/shm/xcb-capture.XXXXXX)
# Where the capture writer thread runs: a core number, or "none" (the
# scheduler's choice).
CAPTURE_CORE=${XCB_CAPTURE_CORE:-1}
# Extra `xconnect run` arguments for that mode (e.g. "--capture-buffer 128K").
CAPTURE_ARGS=${XCB_CAPTURE_ARGS:-}
PGS=() # process groups we started (leader pid = pgid)

stop_pg() { # stop_pg PGID: TERM the group, then KILL after 3 s
  local pg=$1
  kill -TERM -- "-$pg" 2>/dev/null || return 0
  for _ in $(seq 30); do kill -0 -- "-$pg" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL -- "-$pg" 2>/dev/null || true
}
stop_all() {
  local pg
  for pg in "${PGS[@]}"; do stop_pg "$pg"; done
  PGS=()
}
# The --tcp modes' namespaces: the lab's (scripts/topology.sh, XC_NS=$P).
TCP_NS=("${P}cust" "${P}pe" "${P}ms" "${P}vnet" "${P}m365")
ns_down() {
  local n
  for n in "$GEN" "$DUT" "$SINK" "${TCP_NS[@]}"; do
    if ip netns list 2>/dev/null | grep -qw -- "$n"; then ip netns del "$n" 2>/dev/null || true; fi
  done
}
cleanup() {
  trap - EXIT INT TERM
  stop_all
  ns_down
  rm -rf "$WORK" "$CAPDIR"
  local left
  left=$(ip netns list 2>/dev/null | grep -c -- "^$P" || true)
  [ "$left" = 0 ] || log "warning: $left namespace(s) ${P}* still present"
}
trap cleanup EXIT
trap 'echo >&2; log "interrupted, cleaning up"; exit 130' INT TERM

# bg NAME CMD…: start CMD in its own process group (setsid; the shell has
# no job control, so the child is not a group leader and setsid does not
# fork: $! is the group id). Output to $WORK/NAME.{out,err}.
bg() {
  local name=$1; shift
  # Remove the last run's files first: the redirection below happens in
  # the child, and a reader must not see the old contents meanwhile.
  rm -f "$WORK/$name.out" "$WORK/$name.err"
  setsid "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" </dev/null &
  LAST_PG=$!
  PGS+=("$LAST_PG")
}
forget_pg() { local pg=$1 keep=() p; for p in "${PGS[@]}"; do [ "$p" = "$pg" ] || keep+=("$p"); done; PGS=("${keep[@]}"); }

veth() { # veth NS_A A NS_B B [MTU]
  ip -n "$1" link add "$2" ${5:+mtu $5} type veth peer name "$4" netns "$3" ${5:+mtu $5}
  ip -n "$1" link set "$2" up
  ip -n "$3" link set "$4" up
}

GEN_MAC=02:00:00:00:00:01 DIN_MAC=02:00:00:00:00:02 FAR_MAC=02:00:00:00:00:99
GENIF=xcb-gen0 SINKIFS=(xcb-stra xcb-strb)

topo_up() { # topo_up MODE
  local n
  for n in "$GEN" "$DUT" "$SINK"; do
    ip netns add "$n"
    ip -n "$n" link set lo up
    ip netns exec "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 \
      net.ipv4.ip_forward=0
  done
  GENIF=xcb-gen0
  case "$1" in
    ceiling) veth "$GEN" xcb-gen0 "$SINK" xcb-stra; SINKIFS=(xcb-stra) ;;
    xconnect-tap) ;; # the TAP comes from xconnect
    *) veth "$GEN" xcb-gen0 "$DUT" xcb-din ;;
  esac
  if [ "$1" != ceiling ]; then
    veth "$DUT" xcb-dtra "$SINK" xcb-stra 1508
    veth "$DUT" xcb-dtrb "$SINK" xcb-strb 1508
    SINKIFS=(xcb-stra xcb-strb)
  fi
  if [ "$1" != xconnect-tap ]; then
    ip -n "$GEN" link set xcb-gen0 address "$GEN_MAC"
    [ "$1" = ceiling ] || ip -n "$DUT" link set xcb-din address "$DIN_MAC"
  fi
}

# napi NS IF: receive IF through a NAPI thread pinned to core 1 (veth GRO
# on, threaded NAPI; the generator's veth without TSO so its frames are
# eligible): the sender only queues the frame, the receive runs batched on
# core 1.
napi() {
  local pid n=0
  ip netns exec "$GEN" ethtool -K "$GENIF" tso off gso off >/dev/null
  ip netns exec "$1" ethtool -K "$2" gro on >/dev/null
  ip netns exec "$1" sh -c "echo 1 > /sys/class/net/$2/threaded"
  for pid in $(ps -eo pid=,comm= | awk -v n="napi/$2-" 'index($2, n) == 1 {print $1}'); do
    taskset -pc 1 "$pid" >/dev/null
    n=$((n + 1))
  done
  [ "$n" -gt 0 ] || { log "no NAPI thread for $2 (threaded NAPI unsupported?)"; return 1; }
}
# rps NS IF: steer the receive work of IF to core 1 (RPS mask 2).
rps() { ip netns exec "$1" sh -c "echo 2 > /sys/class/net/$2/queues/rx-0/rps_cpus"; }

# trafgen configuration: 16 UDP flows (source ports 1024..1039), 64-byte
# frames on the wire (60 + FCS), round robin over static packets (no
# per-packet rewriting in the generator).
gen_conf() { # gen_conf DST_MAC > file
  local i
  for i in $(seq 0 15); do
    printf '{ eth(da=%s, sa=%s, type=0x0800), ipv4(saddr=192.0.2.1, daddr=198.51.100.2, ttl=64, df), udp(sport=%d, dport=9), fill(0x00, 18) }\n' \
      "$1" "$GEN_MAC" $((1024 + i))
  done
}

GEN_PG="" GEN_CONF="" GEN_RUNS=0
gen_start() {
  GEN_RUNS=$((GEN_RUNS + 1))
  # timeout bounds the run; a mode takes much less than this.
  if [ "$GEN_TOOL" = trafgen ]; then
    bg "gen$GEN_RUNS" ip netns exec "$GEN" nice -n "$NICE" timeout -s INT 600 \
      trafgen --dev "$GENIF" --conf "$GEN_CONF" --cpus 1 --no-sock-mem --no-cpu-stats
  else
    bg "gen$GEN_RUNS" ip netns exec "$GEN" nice -n "$NICE" timeout -s INT 600 \
      "$BIN" gen "$GENIF" --dst-mac "$GEN_DST" --src-mac "$GEN_MAC" --flows 16 --size 64 \
      --duration 300 --core 0
  fi
  GEN_PG=$LAST_PG
}
gen_alive() {
  [ -n "$GEN_PG" ] && kill -0 -- "-$GEN_PG" 2>/dev/null || return 1
  [ "$GEN_TOOL" != trafgen ] || pgrep -g "$GEN_PG" -x trafgen >/dev/null
}
gen_stop() { [ -n "$GEN_PG" ] && { stop_pg "$GEN_PG"; forget_pg "$GEN_PG"; GEN_PG=""; }; return 0; }

stat_sum() { # stat_sum NS COUNTER IF…
  local ns=$1 c=$2; shift 2
  local files=() i
  for i in "$@"; do files+=("/sys/class/net/$i/statistics/$c"); done
  ip netns exec "$ns" cat "${files[@]}" | awk '{s+=$1} END {print s+0}'
}
sample() { # → "time offered delivered"
  local t o d
  t=$(date +%s.%N)
  o=$(( $(stat_sum "$GEN" tx_packets "$GENIF") + $(stat_sum "$GEN" tx_dropped "$GENIF") ))
  d=$(stat_sum "$SINK" rx_packets "${SINKIFS[@]}")
  echo "$t $o $d"
}

XC_PG=""
xc_start() { # xc_start CONFIG ARGS…
  local conf=$1; shift
  bg xconnect ip netns exec "$DUT" nice -n "$NICE" timeout -s INT 600 "$BIN" run "$conf" --stats-interval 0 "$@"
  XC_PG=$LAST_PG
  for _ in $(seq 100); do
    grep -qs running "$WORK/xconnect.err" && return 0
    kill -0 "$XC_PG" 2>/dev/null || break
    sleep 0.05
  done
  cat "$WORK/xconnect.err" >&2
  log "xconnect did not start"
  return 1
}

# The metrics scraper of xconnect-1w-metrics: one GET of /metrics a
# second in the dut namespace. Each attempt appends a line to
# $WORK/scrapes.try; a success (HTTP 2xx, whole body read) its time in
# seconds to $WORK/scrapes.ok, a failure a line to $WORK/scrapes.fail (an
# attempt in neither was cut short by the stop). timeout bounds it like
# the generators; scrape_stop ends it at the end of the window.
METRICS_ADDR=127.0.0.1:9477
SCRAPE_PG=""
scrape_start() {
  rm -f "$WORK/scrapes.try" "$WORK/scrapes.ok" "$WORK/scrapes.fail"
  # shellcheck disable=SC2016 # expanded by the inner bash, from its arguments
  bg scraper ip netns exec "$DUT" timeout -s INT 600 bash -c '
    while :; do
      echo >>"$2.try"
      if t=$(curl -sf -o /dev/null -w "%{time_total}" --max-time 2 "$1"); then
        echo "$t" >>"$2.ok"
      else
        echo >>"$2.fail"
      fi
      sleep 1
    done' scraper "http://$METRICS_ADDR/metrics" "$WORK/scrapes"
  SCRAPE_PG=$LAST_PG
}
scrape_stop() { [ -n "$SCRAPE_PG" ] && { stop_pg "$SCRAPE_PG"; forget_pg "$SCRAPE_PG"; SCRAPE_PG=""; }; return 0; }
scrape_count() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }

OVS_RUN=""
ovs() { OVS_RUNDIR=$OVS_RUN OVS_DBDIR=$OVS_RUN OVS_LOGDIR=$OVS_RUN "$@"; }
ovs_start() { # ovs_start [PORT_TYPE]: system (AF_PACKET) or afxdp
  local schema ptype=${1:-system}
  OVS_RUN=$WORK/ovs
  rm -rf "$OVS_RUN"
  mkdir -p "$OVS_RUN"
  schema=$(ls /usr/share/openvswitch/vswitch.ovsschema)
  ovsdb-tool create "$OVS_RUN/conf.db" "$schema"
  bg ovsdb ip netns exec "$DUT" env OVS_RUNDIR="$OVS_RUN" OVS_DBDIR="$OVS_RUN" OVS_LOGDIR="$OVS_RUN" \
    ovsdb-server "$OVS_RUN/conf.db" --remote="punix:$OVS_RUN/db.sock" \
    --pidfile="$OVS_RUN/ovsdb-server.pid" --unixctl="$OVS_RUN/ovsdb-server.ctl" \
    --log-file="$OVS_RUN/ovsdb-server.log"
  for _ in $(seq 100); do [ -S "$OVS_RUN/db.sock" ] && break; sleep 0.05; done
  ovs ovs-vsctl --db="unix:$OVS_RUN/db.sock" --no-wait init
  # The whole process (the main thread polls the AF_PACKET ports) on core 1.
  bg vswitchd ip netns exec "$DUT" env OVS_RUNDIR="$OVS_RUN" OVS_DBDIR="$OVS_RUN" OVS_LOGDIR="$OVS_RUN" \
    nice -n "$NICE" taskset -c 1 ovs-vswitchd "unix:$OVS_RUN/db.sock" --pidfile="$OVS_RUN/ovs-vswitchd.pid" \
    --unixctl="$OVS_RUN/ovs-vswitchd.ctl" --log-file="$OVS_RUN/ovs-vswitchd.log"
  for _ in $(seq 100); do [ -S "$OVS_RUN/ovs-vswitchd.ctl" ] && break; sleep 0.05; done
  ovs ip netns exec "$DUT" ovs-vsctl --db="unix:$OVS_RUN/db.sock" --timeout=10 \
    add-br xcb-br0 -- set bridge xcb-br0 datapath_type=netdev \
    -- add-port xcb-br0 xcb-din -- add-port xcb-br0 xcb-dtra
  if [ "$ptype" = afxdp ]; then
    # AF_XDP ports are polled by a PMD thread: one, on core 1.
    ovs ovs-vsctl --db="unix:$OVS_RUN/db.sock" --timeout=10 set Open_vSwitch . other_config:pmd-cpu-mask=0x2 \
      -- set interface xcb-din type=afxdp options:xdp-mode=native \
      -- set interface xcb-dtra type=afxdp options:xdp-mode=native
  fi
  # A port-to-port cross-connect (OVS's cheapest forwarding), both ways.
  ovs ovs-ofctl del-flows xcb-br0
  ovs ovs-ofctl add-flow xcb-br0 "in_port=xcb-din,actions=output:xcb-dtra"
  ovs ovs-ofctl add-flow xcb-br0 "in_port=xcb-dtra,actions=output:xcb-din"
}

dut_setup() { # dut_setup MODE: configure the dut; sets GEN_CONF
  local m=$1 conf
  gen_conf "$FAR_MAC" >"$WORK/l2.cfg"
  gen_conf "$DIN_MAC" >"$WORK/l3.cfg"
  GEN_CONF=$WORK/l2.cfg GEN_DST=$FAR_MAC
  case "$m" in
    ceiling) ;;
    kernel-fwd|kernel-fwd-rps|kernel-fwd-napi)
      GEN_CONF=$WORK/l3.cfg GEN_DST=$DIN_MAC
      ip netns exec "$DUT" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
        net.ipv4.conf.default.rp_filter=0
      ip -n "$DUT" addr add 192.0.2.2/24 dev xcb-din
      ip -n "$DUT" addr add 198.51.100.1/24 dev xcb-dtra
      ip -n "$DUT" neigh replace 198.51.100.2 lladdr "$FAR_MAC" dev xcb-dtra nud permanent
      ip -n "$DUT" neigh replace 192.0.2.1 lladdr "$GEN_MAC" dev xcb-din nud permanent
      case "$m" in kernel-fwd-rps) rps "$DUT" xcb-din ;; kernel-fwd-napi) napi "$DUT" xcb-din ;; esac
      ;;
    bridge|bridge-rps)
      ip -n "$DUT" link add xcb-br0 type bridge
      ip -n "$DUT" link set xcb-din master xcb-br0
      ip -n "$DUT" link set xcb-dtra master xcb-br0
      ip -n "$DUT" link set xcb-br0 up
      bridge -n "$DUT" fdb replace "$FAR_MAC" dev xcb-dtra master static
      [ "$m" = bridge ] || rps "$DUT" xcb-din
      ;;
    ovs-netdev) ovs_start ;;
    ovs-afxdp)
      ovs_start afxdp
      # An OVS built without AF_XDP, or a kernel that refuses the XDP
      # program, leaves the port in the database with an error.
      local port err
      for port in xcb-din xcb-dtra; do
        err=$(ovs ovs-vsctl --db="unix:$OVS_RUN/db.sock" --timeout=5 get interface "$port" error 2>/dev/null || true)
        [ -z "$err" ] || [ "$err" = "[]" ] || note "$m" "$port: $err"
      done
      ;;
    xconnect-1w) xc_start examples/bench-dut.toml --workers 1 --first-core 1 ;;
    xconnect-1w-rps) rps "$DUT" xcb-din; xc_start examples/bench-dut.toml --workers 1 --first-core 1 ;;
    xconnect-1w-napi)
      napi "$DUT" xcb-din
      xc_start examples/bench-dut.toml --workers 1 --first-core 1 --worker-priority 10
      ;;
    xconnect-2w) xc_start examples/bench-dut.toml --workers 2 --first-core 0 ;;
    xconnect-1w-capture)
      rm -rf "${CAPDIR:?}"/*
      # shellcheck disable=SC2086 # XCB_CAPTURE_ARGS: options, split on purpose
      xc_start examples/bench-dut.toml --workers 1 --first-core 1 --capture "$CAPDIR" \
        --capture-max-bytes 64M --capture-files 8 --capture-core "$CAPTURE_CORE" $CAPTURE_ARGS
      ;;
    xconnect-1w-metrics)
      xc_start examples/bench-dut.toml --workers 1 --first-core 1 --metrics "$METRICS_ADDR"
      scrape_start
      ;;
    xconnect-tap)
      conf=$WORK/bench-dut-tap.toml
      awk '/interface = "xcb-din"/ {print; getline; print "backend = \"tap\""; next} {print}' \
        examples/bench-dut.toml >"$conf"
      xc_start "$conf" --workers 1 --first-core 1
      # Hand the TAP xconnect holds to the generator namespace.
      ip -n "$DUT" link set xcb-din netns "$GEN"
      ip -n "$GEN" link set xcb-din address "$GEN_MAC"
      ip -n "$GEN" link set xcb-din up
      GENIF=xcb-din
      ;;
  esac
}

dut_stop() {
  stop_all
  GEN_PG="" XC_PG="" SCRAPE_PG=""
  ns_down
}

median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
# "min-max" of the windows (Mpps, 3 decimals), or "-" without windows.
span() { tr ' ' '\n' | awk 'NF' | sort -g | awk 'NR==1 {lo=$1} {hi=$1} END {if (NR==0) print "-"; else printf "%.3f-%.3f\n", lo, hi}'; }
# The windows as a JSON array.
json_list() { tr ' ' '\n' | awk 'NF' | awk 'BEGIN {printf "["} {printf "%s%s", (NR>1 ? "," : ""), $1} END {printf "]"}'; }

declare -A OFFS DELS RST NOTE OFF DEL WIN SPAN RESTARTS CAPW CAPD SCRT SCOK SCFAIL SCTIME
note() { [[ "${NOTE[$1]:-}" == *"$2"* ]] || NOTE[$1]="${NOTE[$1]:+${NOTE[$1]}; }$2"; }
# run_mode MODE ROUND: one window of MODE on a fresh topology.
run_mode() {
  local m=$1 r=$2 try s0 s1="" t0 o0 d0 t1 o1 d1 off del
  GEN_RUNS=0
  log "mode $m (round $r/$WINDOWS)"
  topo_up "$m"
  dut_setup "$m"
  gen_start
  sleep 1
  [[ "$m" != ovs-* ]] || sleep 1
  for try in 1 2 3 4; do
    gen_alive || { gen_stop; gen_start; sleep 0.5; }
    s0=$(sample)
    sleep "$WINDOW"
    s1=$(sample)
    if gen_alive; then break; fi
    log "  $m: the generator exited during the window ($(grep -ho 'Flushing TX_RING failed[^.!]*' "$WORK"/gen*.err 2>/dev/null | head -1 || true)); window discarded, restarting it (try $try)"
    s1=""
  done
  if [ -n "$s1" ]; then
    read -r t0 o0 d0 <<<"$s0"
    read -r t1 o1 d1 <<<"$s1"
    off=$(awk -v a="$o0" -v b="$o1" -v t="$t0" -v u="$t1" 'BEGIN {printf "%.4f", (b-a)/(u-t)/1e6}')
    del=$(awk -v a="$d0" -v b="$d1" -v t="$t0" -v u="$t1" 'BEGIN {printf "%.4f", (b-a)/(u-t)/1e6}')
    OFFS[$m]+=" $off" DELS[$m]+=" $del"
    log "  offered $off Mpps, delivered $del Mpps"
  fi
  if [ -n "$XC_PG" ] && ! kill -0 "$XC_PG" 2>/dev/null; then note "$m" "xconnect exited early"; fi
  if grep -q 'Flushing TX_RING failed' "$WORK"/gen*.err 2>/dev/null; then note "$m" "trafgen EAGAIN exits"; fi
  gen_stop
  if [ -n "$SCRAPE_PG" ]; then
    scrape_stop
    SCRT[$m]=$(( ${SCRT[$m]:-0} + $(scrape_count "$WORK/scrapes.try") ))
    SCOK[$m]=$(( ${SCOK[$m]:-0} + $(scrape_count "$WORK/scrapes.ok") ))
    SCFAIL[$m]=$(( ${SCFAIL[$m]:-0} + $(scrape_count "$WORK/scrapes.fail") ))
    [ ! -f "$WORK/scrapes.ok" ] || SCTIME[$m]+=" $(tr '\n' ' ' <"$WORK/scrapes.ok")"
  fi
  if [ -n "$XC_PG" ]; then
    stop_pg "$XC_PG"
    grep -h . "$WORK/xconnect.out" | tail -1 | sed "s/^/bench-netns:   xconnect /" >&2 || true
    # The capture's own counters, from the final stats line, summed over
    # the mode's windows (warm-up and window both: the whole run).
    local cw cd
    read -r cw cd < <(tail -1 "$WORK/xconnect.out" | sed -n 's/.*capture written \([0-9]*\) dropped \([0-9]*\).*/\1 \2/p') || true
    if [ -n "${cw:-}" ]; then
      CAPW[$m]=$(( ${CAPW[$m]:-0} + cw )) CAPD[$m]=$(( ${CAPD[$m]:-0} + cd ))
      ! grep -q "STOPPED" "$WORK/xconnect.out" || note "$m" "capture stopped on an error"
    fi
    rm -rf "${CAPDIR:?}"/*
  fi
  dut_stop
  RST[$m]=$(( ${RST[$m]:-0} + GEN_RUNS - 1 ))
  rm -f "$WORK"/gen*.err "$WORK"/gen*.out
}

DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOAD0=$(uptime | sed 's/.*load average: //')
KERNEL=$(uname -r)
if [ "$TCP" = 1 ]; then
  # shellcheck source=scripts/lib/bench-tcp.sh
  . scripts/lib/bench-tcp.sh
  exit 0
fi
log "$DATE kernel $KERNEL, $(nproc) cores, load before: $LOAD0; ${WINDOWS} round(s) of ${WINDOW} s windows, modes interleaved"
ns_down
# Rounds interleave the modes, so a burst of load from elsewhere on the box
# hits one window of several modes rather than every window of one.
for r in $(seq "$WINDOWS"); do
  for m in "${SEL[@]}"; do run_mode "$m" "$r"; done
done
for m in "${SEL[@]}"; do
  OFF[$m]=$(echo "${OFFS[$m]:-}" | median)
  DEL[$m]=$(echo "${DELS[$m]:-}" | median)
  WIN[$m]=$(echo "${DELS[$m]:-}" | wc -w)
  SPAN[$m]=$(echo "${DELS[$m]:-}" | span)
  RESTARTS[$m]=${RST[$m]:-0}
  if [ -n "${SCRT[$m]:-}" ]; then
    note "$m" "metrics scrapes (1/s) ok ${SCOK[$m]} failed ${SCFAIL[$m]} cut by the stop $(( SCRT[$m] - SCOK[$m] - SCFAIL[$m] )) of ${SCRT[$m]}, median $(echo "${SCTIME[$m]:-}" | median | awk '{if ($1 == "nan") print "-"; else printf "%.1f", $1 * 1000}') ms"
  fi
  if [ -n "${CAPW[$m]:-}" ]; then
    note "$m" "capture written ${CAPW[$m]} dropped ${CAPD[$m]} ($(awk -v w="${CAPW[$m]}" -v d="${CAPD[$m]}" 'BEGIN {printf "%.1f", (w+d) ? 100*d/(w+d) : 0}') % lost), writer core $CAPTURE_CORE${CAPTURE_ARGS:+ $CAPTURE_ARGS}"
  fi
done
LOAD1=$(uptime | sed 's/.*load average: //')

REF=${DEL[kernel-fwd-rps]:-nan}
ratio() { awk -v a="$1" -v b="$2" -v f="${3:-%.2f}" 'BEGIN {if (a=="nan" || b=="nan" || b==0) print "nan"; else printf f, a/b}'; }
mpps() { ratio "$1" 1 %.3f; }
if [ "$JSON" = 1 ]; then
  printf '{"date":"%s","kernel":"%s","cores":%s,"load_before":"%s","load_after":"%s","window_s":%s,"windows":%s,"frame_bytes":64,"generator":"%s","nice":%s,"modes":[' \
    "$DATE" "$KERNEL" "$(nproc)" "$LOAD0" "$LOAD1" "$WINDOW" "$WINDOWS" "$GEN_TOOL" "$NICE"
  sep=""
  for m in "${SEL[@]}"; do
    printf '%s{"name":"%s","offered_mpps":%s,"delivered_mpps":%s,"share":%s,"vs_kernel_fwd_rps":%s,"windows":%s,"delivered_windows_mpps":%s,"gen_restarts":%s,"capture_written":%s,"capture_dropped":%s,"note":"%s"}' \
      "$sep" "$m" "$(mpps "${OFF[$m]}" | sed 's/nan/null/')" "$(mpps "${DEL[$m]}" | sed 's/nan/null/')" \
      "$(ratio "${DEL[$m]}" "${OFF[$m]}" | sed 's/nan/null/')" "$(ratio "${DEL[$m]}" "$REF" | sed 's/nan/null/')" \
      "${WIN[$m]}" "$(echo "${DELS[$m]:-}" | json_list)" "${RESTARTS[$m]}" "${CAPW[$m]:-null}" "${CAPD[$m]:-null}" "${NOTE[$m]:-}"
    sep=","
  done
  printf ']}\n'
else
  echo "xconnect bench-netns  $DATE  kernel $KERNEL  $(nproc) cores  64-byte UDP, 16 flows, generator $GEN_TOOL (core 0)"
  echo "load average before: $LOAD0   after: $LOAD1   (median of ${WINDOWS} × ${WINDOW} s windows; nice $NICE)"
  printf '%-20s %9s %9s %13s %7s %10s %4s  %s\n' mode offered delivered windows share vs-kfwd-rps rst note
  printf '%-20s %9s %9s %13s %7s %10s %4s\n' "" Mpps Mpps "min-max" "" "" ""
  for m in "${SEL[@]}"; do
    share=$(ratio "${DEL[$m]}" "${OFF[$m]}")
    [ "$share" = nan ] || share=$(awk -v s="$share" 'BEGIN {printf "%d%%", s*100+0.5}')
    printf '%-20s %9s %9s %13s %7s %10s %4s  %s\n' "$m" "$(mpps "${OFF[$m]}")" "$(mpps "${DEL[$m]}")" \
      "${SPAN[$m]}" "$share" "$(ratio "${DEL[$m]}" "$REF")" "${RESTARTS[$m]}" "${NOTE[$m]:-}"
  done
fi
