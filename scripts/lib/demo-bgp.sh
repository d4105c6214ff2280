# The BGP part of the demo (`scripts/demo.sh --bgp`), sourced by demo.sh
# once xconnect is built and the script runs as root; uses its BIN, WORK,
# PIDS, in_ns and start. Both forwarders run lab-pe-bgp.toml /
# lab-msee-bgp.toml: no static route anywhere. Per peering and side, FRR
# (zebra with dplane_fpm_nl, bgpd, bfdd, configured by `xconnect
# frr-config`) runs in the namespace of that peering's host interfaces;
# its eBGP sessions cross the cross-connect and its routes come back into
# xconnect over FPM. The report: the sessions, the routes per peering
# (FRR's and what xconnect installed), traffic on both peerings, and the
# primary trunk failing (BFD, the ECMP route shrinking, pings lost).

pkg_install vtysh:frr /usr/lib/frr/zebra:frr || die "the BGP demo needs FRR (apt-get install frr)"

frr_dirs=()
since() { python3 -c "import sys,time; print(f'{time.time() - float(sys.argv[1]):.1f}')" "$1"; }
# frr_start SIDE KIND: FRR for peering KIND (private|microsoft) of SIDE
# (pe|ms), in xc-SIDE-frr-{p,m}.
frr_start() {
  local side=$1 kind=$2 k=${2:0:1}
  local ns="xc-$side-frr-$k" dir="$WORK/frr-$side-$k" d extra
  mkdir -p "$dir"
  chmod 0777 "$dir"
  frr_dirs+=("$dir")
  for d in zebra bgpd bfdd; do
    extra=()
    [ "$d" = zebra ] && extra=(-M dplane_fpm_nl)
    [ "$d" = bfdd ] && extra=(--bfdctl "$dir/bfdd.sock")
    ip netns exec "$ns" timeout 10 /usr/lib/frr/$d -d -N "xc-$side-$k" "${extra[@]}" \
      --vty_socket "$dir" -i "$dir/$d.pid" -f /dev/null
  done
  ip netns exec "$ns" timeout 20 vtysh --vty_socket "$dir" \
    -f "$WORK/conf-$side/contoso-ams-$kind.conf" >/dev/null
}
vty() { # vty SIDE K COMMAND...
  local side=$1 k=$2; shift 2
  ip netns exec "xc-$side-frr-$k" timeout 10 vtysh --vty_socket "$WORK/frr-$side-$k" -c "$@"
}
frr_stop() {
  local dir f
  for dir in "${frr_dirs[@]}"; do
    for f in "$dir"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
  done
  sleep 0.3
  for p in xc-pe-p xc-pe-m xc-ms-p xc-ms-m; do rm -rf "/var/run/frr/$p"; done
  frr_dirs=()
}
# Established sessions of SIDE K's FRR (both families).
established() {
  vty "$1" "$2" "show bgp summary json" 2>/dev/null |
    python3 -c 'import json,sys
v=json.load(sys.stdin)
print(sum(p.get("state")=="Established" for f in v.values() if isinstance(f,dict) for p in f.get("peers",{}).values()))' 2>/dev/null || echo 0
}
# What a forwarder holds, over its control socket: xconnect show VIEW.
show() { # show ROLE VIEW [ARGS]
  local role=$1; shift
  "$BIN" show "$@" --control "$WORK/$role.sock" | sed 's/^/    /'
}

echo "==> lab: xc-cust -> xconnect (xc-pe) => trunks => xconnect (xc-ms) -> xc-vnet, xc-m365; FRR per peering and side"
scripts/topology.sh up --bgp
for side in pe ms; do
  cfg=examples/lab-$side-bgp.toml
  [ "$side" = ms ] && cfg=examples/lab-msee-bgp.toml
  "$BIN" frr-config "$cfg" --output "$WORK/conf-$side" >/dev/null
done
STATS_ARGS=(--json --stats-interval 0)
start pe examples/lab-pe-bgp.toml 0
start ms examples/lab-msee-bgp.toml 1
for side in pe ms; do for kind in private microsoft; do frr_start "$side" "$kind"; done; done
# The MSEE side came up last: skip the connect-retry wait.
for k in p m; do vty pe "$k" "clear bgp *" >/dev/null 2>&1 || true; done

echo
echo "== BGP sessions (customer side; 4 on private peering: IPv4 and IPv6 on both trunks, 2 on Microsoft)"
t0=$(date +%s.%N)
for _ in $(seq 240); do
  [ "$(established pe p)" -ge 4 ] && [ "$(established pe m)" -ge 2 ] && break
  sleep 0.25
done
printf '  established after %.1f s\n' "$(since "$t0")"
# Then the routes (the VNet answers) and BFD (four sessions up).
for _ in $(seq 40); do
  ping_ok=$(in_ns cust ping -c 1 -W 1 198.51.100.130 2>/dev/null | grep -c ' 0% packet loss' || true)
  [ "$ping_ok" = 1 ] && break
  sleep 0.25
done
sleep 1.2
for _ in $(seq 40); do
  [ "$(vty pe p "show bfd peers brief" | grep -c ' up ')" -ge 4 ] && break
  sleep 0.25
done
vty pe p "show bgp summary" | grep -E '^(Neighbor|192|2001)' | sed 's/^/  private   /'
vty pe m "show bgp summary" | grep -E '^(Neighbor|198)' | sed 's/^/  microsoft /'
vty pe p "show bfd peers brief" | grep -E 'up|down' | sed 's/^/  bfd       /'

echo
echo "== routes: what FRR learned, what xconnect installed (per peering: separate tables)"
vty pe p "show ip route bgp" | grep -E '^B' -A1 | sed 's/^/  pe private   /'
vty pe p "show ipv6 route bgp" | grep -E '^B' -A1 | sed 's/^/  pe private   /'
vty pe m "show ip route bgp" | grep -E '^B' -A1 | sed 's/^/  pe microsoft /'
echo "  xconnect provider edge (xconnect show routes; show sources):"
show pe routes | grep -v ' local$'
show pe sources
echo "  xconnect MSEE:"
show ms routes | grep -v ' local$'
show ms sources

echo
echo "== traffic over BGP-learned routes"
{ in_ns cust ping -c 3 -i 0.2 -W 1 198.51.100.130 || true; } | tail -2 | head -1 | sed 's/^/  private   IPv4 -> vnet 198.51.100.130:    /'
{ in_ns cust ping -6 -c 3 -i 0.2 -W 1 2001:db8:ff:1::2 || true; } | tail -2 | head -1 | sed 's/^/  private   IPv6 -> vnet 2001:db8:ff:1::2: /'
{ in_ns cust ping -c 3 -i 0.2 -W 1 198.51.100.134 || true; } | tail -2 | head -1 | sed 's/^/  microsoft IPv4 -> m365 198.51.100.134:   /'

echo
echo "== the primary trunk fails: 10 ms pings to the VNet while xc-pe-tra is down for 3 s"
in_ns cust ping -i 0.01 -c 500 -W 1 198.51.100.130 >"$WORK/failover" 2>&1 &
PING=$!; PIDS+=("$PING")
sleep 0.5
ip -n xc-pe link set xc-pe-tra down
t0=$(date +%s.%N)
for _ in $(seq 40); do
  vty pe p "show bfd peers brief" | grep -q down && break
  sleep 0.1
done
printf '  BFD saw it after %.1f s:\n' "$(since "$t0")"
vty pe p "show bfd peers brief" | grep -E 'up|down' | sed 's/^/    /'
sleep 0.5
echo "  the VNet route now (one path left):"
vty pe p "show ip route 198.51.100.128/30" | grep -E 'via' | sed 's/^/   /'
sleep 2
ip -n xc-pe link set xc-pe-tra up
wait "$PING" || true
grep -E 'packets transmitted' "$WORK/failover" | awk -F', ' '{split($1,a," "); split($2,b," "); print "  sent " a[1] ", received " b[1] ", lost " a[1]-b[1] " (" (a[1]-b[1])*10 " ms of traffic)"}'

echo
echo "== final counters (SIGTERM)"
frr_stop
for p in "${PIDS[@]:0:2}"; do kill -TERM "$p"; wait "$p" 2>/dev/null || true; done
for r in pe ms; do
  tail -1 "$WORK/$r.out" | python3 -c 'import json,sys
r=json.load(sys.stdin)
d={k:v for k,v in r["drops"].items() if v}
print("  '"$r"': routed", r["l3"]["routed"], "punted", r["l3"]["punted_ip"] + r["l3"]["punted_arp"] + r["l3"]["punted_nd"], "drops", d or "none")'
done
PIDS=("${PIDS[@]:2}")
echo
echo "demo --bgp done; cleaning up"
