# shellcheck shell=bash
# The TCP modes of scripts/bench-netns.sh (`--tcp`), sourced by it after
# the build with its options, helpers (bg, stop_pg, forget_pg, log,
# median) and cleanup trap in place.
#
# Bulk TCP (iperf3, one stream, client → server) through the lab's
# two-hop chain, built by scripts/topology.sh with XC_NS=$P (namespaces
# ${P}cust, ${P}pe, ${P}ms, ${P}vnet, ${P}m365, the lab's interface names):
#
#   ${P}cust           ${P}pe (hop 1)          ${P}ms (hop 2)            ${P}vnet
#   iperf3 -c ── cust-priv ═ xc-pe-priv [hop] xc-pe-tra ═ xc-ms-tra [hop] xc-ms-vnet ═ vnet0 ── iperf3 -s
#   (core 0)                             trunk, MTU 1508                              (core 1)
#
#   tcp-xconnect-l2   the lab's forwarders, as scripts/demo.sh runs them:
#                     examples/lab-pe-qinq.toml (provider edge, pushes
#                     S 100 + C 200) and examples/msee-qinq.toml (MSEE,
#                     pops them), both on core 1 (--xc-cores PE,MSEE
#                     moves them; the demo's 0,1); 192.0.2.1 → 192.0.2.2
#   tcp-xconnect-l2-tap  tcp-xconnect-l2 with the access ports TAPs that the
#                     forwarders create (topology.sh up --tap, then taps:
#                     the hosts' ends are the TAPs, moved into ${P}cust and
#                     ${P}vnet), as a host's VMs or containers are attached
#   tcp-xconnect-l3   the same in routed mode (topology.sh up --l3):
#                     examples/lab-pe-l3.toml, examples/lab-msee-l3.toml;
#                     203.0.113.2 → 198.51.100.130
#   tcp-kernel-fwd    the --l3 lab's addresses on ${P}pe and ${P}ms, which
#                     forward in the kernel (ip_forward=1, static routes;
#                     the trunk untagged, 192.0.2.0/29)
#   tcp-bridge        a Linux bridge in each of ${P}pe and ${P}ms (access
#                     veth + trunk-a); 192.0.2.1 → 192.0.2.2
#
# Trunk-b exists (the forwarders' configs name it); the kernel paths leave
# it out, the forwarders may hash a direction onto it. `--nice N` runs the
# forwarders at nice N; `--gen` does not apply.
# Every run builds the chain afresh, starts the iperf3 server (bound to
# the server's address, one test: -1) and then the client (-t WINDOW,
# --json, --connect-timeout 3 s), both under `timeout`, each in its own
# process group and stopped by it, like the forwarders; runs interleave
# the modes (round r runs every mode once). Per mode: the median receiver
# Gbit/s (end.sum_received.bits_per_second) and the range over the runs,
# the sender's retransmits (end.sum_sent.retransmits) summed over the runs
# and per GB sent (end.sum_sent.bytes), and the ratio to tcp-kernel-fwd of
# the same invocation (its offloads-on row when there is one). A run whose
# iperf3 fails (no connection, timeout) counts as failed, with the error
# in the note; the note of an xconnect mode also has the forwarders'
# final drop counters, and any mode's the TCP segments the server's
# kernel refused for a bad checksum (Tcp InCsumErrors in ${P}vnet).
#
# --offloads (the end hosts' cust-priv and vnet0; the hops' veths keep
# the kernel's defaults):
#   default  on everywhere, as the lab sets them (scripts/topology.sh)
#   on       the kernel's defaults everywhere (what a user's hosts have:
#            tx checksum, TSO, GSO on; veth GRO off): the hosts hand over
#            64 KiB super-frames, which xconnect carries whole
#   off      tx checksum, TSO, GSO and GRO off on both hosts everywhere
#   both     every mode twice, on and off

TCP_PORT=5201
# The forwarders' cores (--xc-cores PE,MSEE). Default: both on core 1,
# the core the iperf3 client does not use: the client's TCP work (which the
# kernel paths do in its softirq on core 0) then does not wait for a
# forwarder's poll loop. Measured against 0,1 (the demo's placement, the
# provider edge beside the client), alternated, 2026-12-07: L2 0.52/0.52
# of kernel forwarding against 0.44/0.50, L3 0.50/0.50 against 0.44/0.47
# (docs/throughput.md).
XC_PE_CORE=1 XC_MS_CORE=1
if [ -n "${XC_CORES:-}" ]; then XC_PE_CORE=${XC_CORES%,*} XC_MS_CORE=${XC_CORES#*,}; fi
CUST_NS=${P}cust PE_NS=${P}pe MS_NS=${P}ms VNET_NS=${P}vnet

# tcp_offl MODE: the end hosts' offloads of MODE under --offloads.
tcp_offl() {
  case "${OFFLOADS:-default}" in
    default) echo on ;;
    *) echo "$OFFLOADS" ;;
  esac
}
# The rows: MODE/OFFLOADS, in the order of the selected modes.
ROWS=()
for m in "${SEL[@]}"; do
  if [ "${OFFLOADS:-default}" = both ]; then ROWS+=("$m/on" "$m/off"); else ROWS+=("$m/$(tcp_offl "$m")"); fi
done

# tcp_csum_errors NS: the TCP segments NS's kernel dropped for a bad
# checksum (InCsumErrors of /proc/net/snmp's Tcp lines).
tcp_csum_errors() {
  # shellcheck disable=SC2016 # an awk program
  ip netns exec "$1" awk '$1 == "Tcp:" { if (!h) { for (i = 2; i <= NF; i++) c[$i] = i; h = 1 } else print $(c["InCsumErrors"]) + 0 }' /proc/net/snmp
}

# tcp_xc NAME NS CONFIG CORE: start one of the lab's forwarders (its own
# control socket in $WORK: the default one is the demo's); sets LAST_PG.
tcp_xc() {
  local name=$1 ns=$2 conf=$3 core=$4
  bg "$name" ip netns exec "$ns" nice -n "$NICE" timeout -s INT 600 "$BIN" run "$conf" --stats-interval 0 \
    --first-core "$core" --control "$WORK/$name.sock"
  XC_PGS+=("$LAST_PG")
  for _ in $(seq 100); do
    grep -qs running "$WORK/$name.err" && return 0
    kill -0 "$LAST_PG" 2>/dev/null || break
    sleep 0.05
  done
  cat "$WORK/$name.err" >&2
  log "xconnect ($name) did not start"
  return 1
}

# tcp_up MODE OFFL: the chain and its hops; sets SRV_ADDR.
tcp_up() {
  local m=$1 offl=$2 l3=() c
  case "$m" in tcp-xconnect-l3|tcp-kernel-fwd) l3=(--l3) ;; tcp-xconnect-l2-tap) l3=(--tap) ;; esac
  XC_NS=$P XC_HOST_OFFLOADS=$offl scripts/topology.sh up "${l3[@]}" >&2
  case "$m" in
    tcp-xconnect-l2-tap)
      SRV_ADDR=192.0.2.2
      # The lab's configs with the access ports' backend TAP.
      for c in lab-pe-qinq msee-qinq; do
        sed -E '/interface = "xc-(pe-priv|pe-ms|ms-vnet|ms-m365)"/{n;s/backend = "af_packet"/backend = "tap"/}' \
          "examples/$c.toml" >"$WORK/$c-tap.toml"
      done
      tcp_xc pe "$PE_NS" "$WORK/lab-pe-qinq-tap.toml" "$XC_PE_CORE"
      tcp_xc ms "$MS_NS" "$WORK/msee-qinq-tap.toml" "$XC_MS_CORE"
      XC_NS=$P XC_HOST_OFFLOADS=$offl scripts/topology.sh taps >&2
      ;;
    tcp-xconnect-l2)
      SRV_ADDR=192.0.2.2
      tcp_xc pe "$PE_NS" examples/lab-pe-qinq.toml "$XC_PE_CORE"
      tcp_xc ms "$MS_NS" examples/msee-qinq.toml "$XC_MS_CORE"
      ;;
    tcp-xconnect-l3)
      SRV_ADDR=198.51.100.130
      tcp_xc pe "$PE_NS" examples/lab-pe-l3.toml "$XC_PE_CORE"
      tcp_xc ms "$MS_NS" examples/lab-msee-l3.toml "$XC_MS_CORE"
      ;;
    tcp-kernel-fwd)
      SRV_ADDR=198.51.100.130
      local ns
      for ns in "$PE_NS" "$MS_NS"; do
        ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
          net.ipv4.conf.default.rp_filter=0
      done
      ip -n "$PE_NS" addr add 203.0.113.1/30 dev xc-pe-priv
      ip -n "$PE_NS" addr add 192.0.2.1/29 dev xc-pe-tra
      ip -n "$PE_NS" route add 198.51.100.128/30 via 192.0.2.2
      ip -n "$MS_NS" addr add 192.0.2.2/29 dev xc-ms-tra
      ip -n "$MS_NS" addr add 198.51.100.129/30 dev xc-ms-vnet
      ip -n "$MS_NS" route add 203.0.113.0/30 via 192.0.2.1
      ;;
    tcp-bridge)
      SRV_ADDR=192.0.2.2
      ip -n "$PE_NS" link add xcb-br0 type bridge
      ip -n "$PE_NS" link set xc-pe-priv master xcb-br0
      ip -n "$PE_NS" link set xc-pe-tra master xcb-br0
      ip -n "$PE_NS" link set xcb-br0 up
      ip -n "$MS_NS" link add xcb-br0 type bridge
      ip -n "$MS_NS" link set xc-ms-tra master xcb-br0
      ip -n "$MS_NS" link set xc-ms-vnet master xcb-br0
      ip -n "$MS_NS" link set xcb-br0 up
      ;;
  esac
}

declare -A T_GBPS T_RETR T_BYTES T_OK T_FAIL T_NOTE T_DROPS T_CSUM
tcp_note() { [[ "${T_NOTE[$1]:-}" == *"$2"* ]] || T_NOTE[$1]="${T_NOTE[$1]:+${T_NOTE[$1]}; }$2"; }

# tcp_run ROW ROUND: one iperf3 run of ROW (MODE/OFFLOADS) on a fresh chain.
tcp_run() {
  local row=$1 r=$2 m=${1%/*} offl=${1#*/} pg rc csum0 csum1 gbps retr bytes err n d k a b c e
  log "$m, offloads $offl (run $r/$WINDOWS)"
  XC_PGS=()
  tcp_up "$m" "$offl"
  bg iperf-s ip netns exec "$VNET_NS" taskset -c 1 timeout -s INT $((WINDOW + 30)) \
    iperf3 -s -1 -B "$SRV_ADDR" -p "$TCP_PORT"
  pg=$LAST_PG
  for _ in $(seq 100); do
    ip netns exec "$VNET_NS" ss -Hltn "sport = :$TCP_PORT" | grep -q . && break
    sleep 0.05
  done
  csum0=$(tcp_csum_errors "$VNET_NS")
  bg iperf-c ip netns exec "$CUST_NS" taskset -c 0 timeout -s INT $((WINDOW + 15)) \
    iperf3 -c "$SRV_ADDR" -p "$TCP_PORT" -t "$WINDOW" --connect-timeout 3000 --json
  rc=0
  wait "$LAST_PG" || rc=$?
  forget_pg "$LAST_PG"
  csum1=$(tcp_csum_errors "$VNET_NS")
  stop_pg "$pg"
  forget_pg "$pg"
  T_CSUM[$row]=$(( ${T_CSUM[$row]:-0} + csum1 - csum0 ))
  read -r gbps retr bytes < <(jq -r '[(.end.sum_received.bits_per_second // 0) / 1e9,
      .end.sum_sent.retransmits // 0, .end.sum_sent.bytes // 0] | map(tostring) | join(" ")' \
      "$WORK/iperf-c.out" 2>/dev/null) || true
  err=$(jq -r '.error // empty' "$WORK/iperf-c.out" 2>/dev/null || true)
  [ "$rc" != 124 ] || err="iperf3 killed by its $((WINDOW + 15)) s timeout${err:+ ($err)}"
  if [ -z "$err" ] && [ "$rc" != 0 ]; then err="iperf3 exit $rc: $(head -c 200 "$WORK/iperf-c.err" | tr '\n' ' ')"; fi
  if [ -z "$err" ] && awk -v g="${gbps:-0}" 'BEGIN { exit !(g > 0) }'; then
    T_GBPS[$row]+=" $gbps" T_RETR[$row]+=" $retr" T_BYTES[$row]+=" $bytes"
    T_OK[$row]=$(( ${T_OK[$row]:-0} + 1 ))
    log "  $(printf '%.2f' "$gbps") Gbit/s, $retr retransmits, mean RTT $(jq -r '[.end.streams[].sender.mean_rtt // empty] | first // "?"' "$WORK/iperf-c.out" 2>/dev/null) us"
  else
    T_FAIL[$row]=$(( ${T_FAIL[$row]:-0} + 1 ))
    tcp_note "$row" "${err:-no data}"
    log "  failed: ${err:-no data}"
  fi
  # The forwarders: stopped (SIGTERM: a final stats line); their drops
  # and the kernel's drops at their rings (kdrop, every port) summed.
  for pg in "${XC_PGS[@]}"; do stop_pg "$pg"; forget_pg "$pg"; done
  for n in pe ms; do
    [ -f "$WORK/$n.out" ] || continue
    d=$(tail -1 "$WORK/$n.out" | sed -n 's/.*| drops \([0-9]*\).*/\1/p')
    k=$(tail -1 "$WORK/$n.out" | { grep -o 'kdrop [0-9]*' || true; } | awk '{ s += $2 } END { print s + 0 }')
    read -r a b c e <<<"${T_DROPS[$row]:-0 0 0 0}"
    if [ "$n" = pe ]; then a=$((a + ${d:-0})) c=$((c + k)); else b=$((b + ${d:-0})) e=$((e + k)); fi
    T_DROPS[$row]="$a $b $c $e"
    grep -h . "$WORK/$n.out" | tail -1 | sed "s/^/bench-netns:   xconnect $n /" >&2 || true
    rm -f "$WORK/$n.out" "$WORK/$n.err"
  done
  stop_all
  ns_down
}

# shellcheck disable=SC2153 # DATE, KERNEL, LOAD0: set by bench-netns.sh
log "$DATE kernel $KERNEL, $(nproc) cores, load before: $LOAD0; TCP: ${WINDOWS} run(s) of ${WINDOW} s, modes interleaved, offloads ${OFFLOADS:-default}"
ns_down
for r in $(seq "$WINDOWS"); do
  for row in "${ROWS[@]}"; do tcp_run "$row" "$r"; done
done
LOAD1=$(uptime | sed 's/.*load average: //')

# The reference: tcp-kernel-fwd with offloads on, else any tcp-kernel-fwd row.
REF_ROW=""
for row in "${ROWS[@]}"; do
  case "$row" in tcp-kernel-fwd/on) REF_ROW=$row; break ;; tcp-kernel-fwd/*) [ -n "$REF_ROW" ] || REF_ROW=$row ;; esac
done
declare -A G_MED G_MIN G_MAX G_RETR G_GB G_RPG
for row in "${ROWS[@]}"; do
  G_MED[$row]=$(echo "${T_GBPS[$row]:-}" | median)
  G_MIN[$row]=$(echo "${T_GBPS[$row]:-}" | tr ' ' '\n' | awk 'NF' | sort -g | head -1)
  G_MAX[$row]=$(echo "${T_GBPS[$row]:-}" | tr ' ' '\n' | awk 'NF' | sort -g | tail -1)
  G_RETR[$row]=$(echo "${T_RETR[$row]:-}" | awk '{ for (i = 1; i <= NF; i++) s += $i } END { print s + 0 }')
  G_GB[$row]=$(echo "${T_BYTES[$row]:-}" | awk '{ for (i = 1; i <= NF; i++) s += $i } END { printf "%.3f", s / 1e9 }')
  G_RPG[$row]=$(awk -v r="${G_RETR[$row]}" -v g="${G_GB[$row]}" 'BEGIN { if (g > 0) printf "%.1f", r / g; else print "nan" }')
  if [ -n "${T_DROPS[$row]:-}" ]; then
    read -r a b c e <<<"${T_DROPS[$row]}"
    [ "$a$b" = 00 ] || tcp_note "$row" "xconnect drops pe $a ms $b"
    [ "$c$e" = 00 ] || tcp_note "$row" "ring kdrop pe $c ms $e"
  fi
  [ "${T_CSUM[$row]:-0}" = 0 ] || tcp_note "$row" "server refused ${T_CSUM[$row]} TCP segments for a bad checksum"
done
REF=nan
[ -z "$REF_ROW" ] || REF=${G_MED[$REF_ROW]:-nan}
tcp_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan" || b == 0) print "nan"; else printf "%.2f", a / b }'; }
tcp_num() { awk -v a="$1" -v f="$2" 'BEGIN { if (a == "" || a == "nan") print "nan"; else printf f, a }'; }
dash() { sed 's/^nan$/-/'; }
offl_words() {
  case "${OFFLOADS:-default}" in
    default) echo "default (on everywhere: the kernel's defaults, as a user's hosts have them)" ;;
    both) echo "both (every mode with the end hosts' offloads on and off)" ;;
    *) echo "$OFFLOADS everywhere" ;;
  esac
}

if [ "$JSON" = 1 ]; then
  printf '{"date":"%s","kernel":"%s","cores":%s,"load_before":"%s","load_after":"%s","benchmark":"tcp","tool":"%s","run_s":%s,"runs":%s,"client_core":0,"server_core":1,"pe_core":%s,"msee_core":%s,"offloads":"%s","reference":"%s","modes":[' \
    "$DATE" "$KERNEL" "$(nproc)" "$LOAD0" "$LOAD1" "$(iperf3 --version | head -1 | awk '{print $1 " " $2}')" \
    "$WINDOW" "$WINDOWS" "$XC_PE_CORE" "$XC_MS_CORE" "${OFFLOADS:-default}" "$REF_ROW"
  sep=""
  for row in "${ROWS[@]}"; do
    printf '%s{"name":"%s","offloads":"%s","gbps":%s,"gbps_min":%s,"gbps_max":%s,"gbps_runs":%s,"runs_ok":%s,"runs_failed":%s,"retransmits":%s,"retransmits_runs":%s,"gbytes_sent":%s,"retransmits_per_gb":%s,"vs_kernel_fwd":%s,"server_csum_errors":%s,"note":"%s"}' \
      "$sep" "${row%/*}" "${row#*/}" "$(tcp_num "${G_MED[$row]}" %.3f | sed 's/nan/null/')" \
      "$(tcp_num "${G_MIN[$row]}" %.3f | sed 's/nan/null/')" "$(tcp_num "${G_MAX[$row]}" %.3f | sed 's/nan/null/')" \
      "$(echo "${T_GBPS[$row]:-}" | json_list)" "${T_OK[$row]:-0}" "${T_FAIL[$row]:-0}" "${G_RETR[$row]}" \
      "$(echo "${T_RETR[$row]:-}" | json_list)" "${G_GB[$row]}" "${G_RPG[$row]/nan/null}" \
      "$(tcp_ratio "${G_MED[$row]}" "$REF" | sed 's/nan/null/')" "${T_CSUM[$row]:-0}" \
      "$(printf '%s' "${T_NOTE[$row]:-}" | sed 's/\\/\\\\/g; s/"/\\"/g')"
    sep=","
  done
  printf ']}\n'
else
  echo "xconnect bench-netns --tcp  $DATE  kernel $KERNEL  $(nproc) cores  iperf3 TCP, 1 stream, client core 0, server core 1, provider edge core $XC_PE_CORE, MSEE core $XC_MS_CORE"
  echo "load average before: $LOAD0   after: $LOAD1   (median of ${WINDOWS} × ${WINDOW} s runs, modes interleaved)"
  echo "end hosts' offloads: $(offl_words)"
  printf '%-19s %-4s %7s %13s %5s %8s %8s %8s  %s\n' mode offl Gbit/s min-max runs retrans retr/GB vs-kfwd note
  for row in "${ROWS[@]}"; do
    span=-
    [ -z "${G_MIN[$row]}" ] || span=$(printf '%.2f-%.2f' "${G_MIN[$row]}" "${G_MAX[$row]}")
    rpg=-
    [ "${T_OK[$row]:-0}" = 0 ] || rpg=$(echo "${G_RPG[$row]}" | dash)
    printf '%-19s %-4s %7s %13s %5s %8s %8s %8s  %s\n' "${row%/*}" "${row#*/}" "$(tcp_num "${G_MED[$row]}" %.2f | dash)" \
      "$span" "${T_OK[$row]:-0}/$WINDOWS" "${G_RETR[$row]}" "$rpg" "$(tcp_ratio "${G_MED[$row]}" "$REF" | dash)" \
      "${T_NOTE[$row]:-}"
  done
  echo "Gbit/s: the receiver's; retrans: the sender's, summed over the runs (retr/GB: per GB sent);"
  echo "vs-kfwd: median over ${REF_ROW:-(no tcp-kernel-fwd row)}'s median, same invocation"
fi
