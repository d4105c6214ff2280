#!/usr/bin/env bash
# Route scale in the lab: N IPv4 routes (default 1,000,000) announced over
# eBGP by a feeder (Debian's gobgpd) to FRR's bgpd; FRR's zebra installs
# them into the kernel's FIB of its namespace and, in the same run,
# streams them over FPM (dplane_fpm_nl) to `xconnect run`, which writes
# them into its provider-edge private peering's table. Timed from the
# session coming up (the first UPDATE follows within milliseconds) to
# xconnect holding all N routes, and to the kernel's FIB holding them.
#
#   sudo scripts/bgp-scale.sh [--routes N] [--json] [--limit S]
#                             [--fpm-module dplane_fpm_nl|fpm] [--timestamps]
#
# --timestamps: also time the end of the run to the microsecond from the
# outside: `ip -ts monitor route` in the namespace (when the kernel
# notified its last route) against tcpdump on its loopback (when the last
# FPM segment reached xconnect's socket); xconnect's own ingest of a route
# is about a microsecond (`xconnect bench --case fpm-ingest`).
#
# zebra has two FPM modules: dplane_fpm_nl (the default here and in
# `xconnect frr-config`) is a dataplane provider that runs after the
# kernel provider, so every route reaches FPM after the kernel took it;
# the older `fpm` module (zebra_fpm, netlink encoding) sends from the RIB
# as routes are selected, beside the kernel install. xconnect reads both.
#
#   ${P}feed  gobgpd AS 12076, 192.0.2.2 ═══ veth ═══ 192.0.2.1  ${P}pe
#             (N routes injected from an MRT file       FRR AS 65536: bgpd, zebra
#              before the session exists)                 ├─ kernel FIB (main)
#                                                          └─ FPM → xconnect run
#
# How each side is watched (every 10 ms; the report gives the slowest
# round of the loop, which bounds the resolution):
#   xconnect  its stats line (`--json --stats-interval 0.01`): the FPM
#             listener's `installed` count;
#   kernel    `Prefixes:` of the main table in the namespace's
#             /proc/net/fib_triestat, less the count before the session;
#   FRR       `show bgp summary json` (the routes received), for progress.
# Reported: each time from the session's establishment, the ratio
# xconnect/kernel (below 1: xconnect held them first), and the rates.
# Everything runs in namespaces ${P}feed and ${P}pe (P=xcs-<pid>- unless
# XCS_NS is set), stopped by PID and deleted on exit, failure included;
# the whole run is bounded by --limit seconds (default 600).
set -euo pipefail

ROUTES=1000000
JSON=0
LIMIT=600
FPM_MODULE=dplane_fpm_nl
STAMPS=0
while [ $# -gt 0 ]; do
  case "$1" in
    --routes) ROUTES="$2"; shift 2 ;;
    --json) JSON=1; shift ;;
    --limit) LIMIT="$2"; shift 2 ;;
    --fpm-module) FPM_MODULE="$2"; shift 2 ;;
    --timestamps) STAMPS=1; shift ;;
    -h|--help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bgp-scale: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$FPM_MODULE" in dplane_fpm_nl|fpm) ;; *) echo "bgp-scale: --fpm-module is dplane_fpm_nl or fpm" >&2; exit 2 ;; esac
case "$ROUTES" in ''|*[!0-9]*) echo "bgp-scale: --routes needs a number" >&2; exit 2 ;; esac
if [ "$ROUTES" -lt 1 ] || [ "$ROUTES" -gt 4000000 ]; then
  echo "bgp-scale: --routes must be 1..4000000" >&2; exit 2
fi

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ "$(id -u)" != 0 ]; then
  echo "bgp-scale: needs root (network namespaces, FRR, gobgpd): sudo $0 $*" >&2
  exit 1
fi
# shellcheck source=lib/packages.sh
. "$ROOT/scripts/lib/packages.sh"
pkg_install /usr/lib/frr/zebra:frr vtysh:frr gobgpd:gobgpd gobgp:gobgpd ip:iproute2 python3:python3 >&2
[ "$STAMPS" = 0 ] || pkg_install tcpdump:tcpdump >&2

P="${XCS_NS:-xcs-$$-}"
FEED="${P}feed"
PE="${P}pe"
WORK="$(mktemp -d /tmp/xconnect-bgp-scale.XXXXXX)"
chmod 0777 "$WORK"
PIDS=()
cleanup() {
  set +e
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for f in "$WORK"/frr/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
  sleep 0.5
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; done
  ip netns del "$FEED" 2>/dev/null
  ip netns del "$PE" 2>/dev/null
  rm -rf "/var/run/frr/${P}pe" "$WORK"
}
trap cleanup EXIT INT TERM

echo "bgp-scale: building xconnect (release)" >&2
(cd "$ROOT" && cargo build --release --quiet)
XC="${CARGO_TARGET_DIR:-$ROOT/target}/release/xconnect"

ip netns add "$FEED"
ip netns add "$PE"
ip -n "$FEED" link set lo up
ip -n "$PE" link set lo up
ip link add "${P}f0" netns "$FEED" type veth peer name "${P}p0" netns "$PE"
ip -n "$FEED" addr add 192.0.2.2/30 dev "${P}f0"
ip -n "$PE" addr add 192.0.2.1/30 dev "${P}p0"
ip -n "$FEED" link set "${P}f0" up
ip -n "$PE" link set "${P}p0" up
# xconnect's own ports: veth pairs inside the PE namespace that carry no
# traffic here (the run is about routes).
for n in a b c; do
  ip -n "$PE" link add "${P}x$n" mtu 1508 type veth peer name "${P}y$n" mtu 1508
  ip -n "$PE" link set "${P}x$n" up
  ip -n "$PE" link set "${P}y$n" up
done

# The provider edge: private peering 192.0.2.0/29 (we are .1 and .5, the
# MSEEs .2 and .6), FPM in this namespace; no static routes.
cat > "$WORK/pe.toml" <<EOF
role = "provider-edge"
[[port]]
name = "cust"
interface = "${P}xa"
[[port]]
name = "trunk-a"
interface = "${P}xb"
[[port]]
name = "trunk-b"
interface = "${P}xc"
[[circuit]]
name = "scale"
encapsulation = "qinq"
s_tag = 100
primary = { port = "trunk-a" }
secondary = { port = "trunk-b" }
[[circuit.peering]]
kind = "private"
tag = 200
mode = "l3"
access = { port = "cust", ipv4 = "203.0.113.1/30" }
ipv4 = "192.0.2.0/29"
peer_asn = 65536
fpm = "127.0.0.1:2620"
fpm_grace_ms = 60000
EOF
"$XC" check "$WORK/pe.toml" >&2
"$XC" frr-config "$WORK/pe.toml" --output "$WORK/frr-conf" >&2
CONF="$WORK/frr-conf/scale-private.conf"
# The old module connects to 127.0.0.1:2620 by default and has no
# `fpm address` command.
[ "$FPM_MODULE" = fpm ] && sed -i '/^fpm address /d' "$CONF"

# The feeder's RIB, built before the session exists: an MRT TABLE_DUMP_V2
# file of N /24s (or longer) with AS path 65010, injected into gobgpd.
# `gobgp mrt inject` (3.10) loses the tail of the file (the last few
# hundred to few thousand paths never reach the RIB): the file holds 10 %
# more, and the run counts what gobgpd holds.
python3 - "$WORK/routes.mrt" "$((ROUTES + ROUTES / 10 + 5000))" <<'EOF'
import struct, sys
path, n = sys.argv[1], int(sys.argv[2])
out = open(path, "wb")
def mrt(subtype, body):
    out.write(struct.pack("!IHHI", 0, 13, subtype, len(body)) + body)
# PEER_INDEX_TABLE: one peer, IPv4, 4-byte AS.
mrt(1, struct.pack("!IH", 0x0a000001, 0) + struct.pack("!H", 1)
    + struct.pack("!BI4sI", 0x02, 0xc0000202, bytes([192, 0, 2, 2]), 12076))
attrs = (struct.pack("!BBBB", 0x40, 1, 1, 0)                        # ORIGIN IGP
         + struct.pack("!BBBBBI", 0x40, 2, 6, 2, 1, 65010)          # AS_PATH
         + struct.pack("!BBB4s", 0x40, 3, 4, bytes([192, 0, 2, 2])))  # NEXT_HOP
for i in range(n):
    # /24s from 16.0.0.0 on: 65,536 per /8.
    a, b, c = 16 + (i >> 16), (i >> 8) & 0xff, i & 0xff
    rib = struct.pack("!IB3s", i, 24, bytes([a, b, c])) + struct.pack("!H", 1)
    rib += struct.pack("!HIH", 0, 0, len(attrs)) + attrs
    mrt(2, rib)
EOF

cat > "$WORK/gobgpd.toml" <<EOF
[global.config]
  as = 12076
  router-id = "192.0.2.2"
  port = 179
[[neighbors]]
  [neighbors.config]
    neighbor-address = "192.0.2.1"
    peer-as = 65536
  # The default timers (60/180 s): while gobgpd builds the first
  # UPDATEs of a million paths it sends nothing for tens of seconds, and a
  # short hold time drops the session.
  [neighbors.timers.config]
    connect-retry = 1
EOF
ip netns exec "$FEED" gobgpd -f "$WORK/gobgpd.toml" --api-hosts 127.0.0.1:50051 \
  >"$WORK/gobgpd.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
  ip netns exec "$FEED" gobgp global >/dev/null 2>&1 && break
  sleep 0.1
done
echo "bgp-scale: injecting $ROUTES routes into gobgpd" >&2
t=$(date +%s.%N)
ip netns exec "$FEED" timeout "$LIMIT" gobgp mrt inject global "$WORK/routes.mrt" >&2
# The inject returns before gobgpd has taken every path: wait until the
# count stops changing, then announce exactly what it holds.
HELD=0
PREV=-1
for _ in $(seq 600); do
  HELD=$(ip netns exec "$FEED" gobgp global rib summary 2>/dev/null | grep -o 'Destination: [0-9]*' | grep -o '[0-9]*' || echo 0)
  [ "$HELD" -ge "$ROUTES" ] && [ "$HELD" = "$PREV" ] && break
  PREV=$HELD
  sleep 0.5
done
echo "bgp-scale: gobgpd holds $HELD destinations ($(python3 -c "print(f'{$(date +%s.%N)-$t:.1f}')") s)" >&2
[ "$HELD" -ge "$ROUTES" ] || { echo "bgp-scale: gobgpd took $HELD of $ROUTES routes" >&2; exit 1; }
ROUTES=$HELD

# xconnect, then FRR: the session comes up once bgpd has its config.
ip netns exec "$PE" "$XC" run "$WORK/pe.toml" --json --stats-interval 0.01 --first-core 1 --control "$WORK/xc.sock" \
  >"$WORK/xc.out" 2>"$WORK/xc.err" &
XPID=$!
PIDS+=($XPID)
for _ in $(seq 100); do grep -q running "$WORK/xc.err" 2>/dev/null && break; sleep 0.1; done
grep -q running "$WORK/xc.err" || { cat "$WORK/xc.err" >&2; echo "bgp-scale: xconnect did not start" >&2; exit 1; }
mkdir -p "$WORK/frr"
chmod 0777 "$WORK/frr"
if [ "$STAMPS" = 1 ]; then
  ip netns exec "$PE" ip -ts monitor route >"$WORK/monitor.txt" 2>&1 &
  MON=$!
  PIDS+=($MON)
  ip netns exec "$PE" tcpdump -i lo -nn -s 96 -w "$WORK/fpm.pcap" 'tcp dst port 2620' \
    >/dev/null 2>"$WORK/tcpdump.err" &
  DUMP=$!
  PIDS+=($DUMP)
  for _ in $(seq 100); do grep -q listening "$WORK/tcpdump.err" 2>/dev/null && break; sleep 0.05; done
fi
BASE=$(ip netns exec "$PE" awk '/^Main:/{m=1} m&&/Prefixes:/{print $2; exit}' /proc/net/fib_triestat)
for d in zebra bgpd bfdd; do
  extra=""
  [ "$d" = zebra ] && extra="-M $FPM_MODULE"
  [ "$d" = zebra ] && [ "$FPM_MODULE" = fpm ] && extra="-M fpm:netlink"
  [ "$d" = bfdd ] && extra="--bfdctl $WORK/frr/bfdd.sock"
  # shellcheck disable=SC2086
  ip netns exec "$PE" timeout 10 /usr/lib/frr/$d -d -N "${P}pe" $extra \
    --vty_socket "$WORK/frr" -i "$WORK/frr/$d.pid" -f /dev/null
done
ip netns exec "$PE" timeout 20 vtysh --vty_socket "$WORK/frr" -f "$CONF" >/dev/null
echo "bgp-scale: FRR configured; waiting for the session, then the routes" >&2

FPM_MODULE="$FPM_MODULE" python3 - "$PE" "$WORK" "$ROUTES" "$BASE" "$LIMIT" "$JSON" <<'EOF'
import json, os, subprocess, sys, time
ns, work, n, base, limit, as_json = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), sys.argv[6] == "1"
def vtysh(cmd):
    r = subprocess.run(["ip", "netns", "exec", ns, "timeout", "5", "vtysh", "--vty_socket",
                        work + "/frr", "-c", cmd], capture_output=True, text=True)
    return r.stdout
def received():
    try:
        v = json.loads(vtysh("show bgp ipv4 unicast summary json"))
        p = v.get("peers", {}).get("192.0.2.2", {})
        return p.get("state", ""), p.get("pfxRcd", 0)
    except ValueError:
        return "", 0
def fib():
    with open("/proc/%d/net/fib_triestat" % nsproc, errors="replace") as f:
        main = False
        for line in f:
            if line.startswith("Main:"):
                main = True
            elif main and "Prefixes:" in line:
                return int(line.split()[1]) - base
    return 0
# A process in the namespace to read /proc/PID/net from.
holder = subprocess.Popen(["ip", "netns", "exec", ns, "sleep", str(int(limit) + 5)])
nsproc = holder.pid
time.sleep(0.2)
# `ip netns exec` execs sleep in place: the PID is the sleeper's.
xc_out = open(work + "/xc.out")
def xconnect():
    last = None
    for line in xc_out:
        last = line
    if last:
        try:
            r = json.loads(last)
            return r["fpm"][0]["routes"]["installed"] if r.get("fpm") else 0
        except (ValueError, KeyError, IndexError):
            return None
    return None
start = time.monotonic()
t0 = None
while time.monotonic() - start < limit:
    st, _ = received()
    if st == "Established":
        t0 = time.monotonic()
        break
    time.sleep(0.05)
if t0 is None:
    sys.exit("bgp-scale: the session did not come up: " + vtysh("show bgp summary"))
t_xc = t_fib = None
xc_n = fib_n = 0
# FRR's received count from a thread of its own: vtysh waits for a busy
# bgpd for a second or more, which would blunt the 10 ms loop.
import threading
frr = {"t": None}
def watch_frr():
    while frr["t"] is None and time.monotonic() - t0 < limit:
        _, r = received()
        if r >= n:
            frr["t"] = time.monotonic() - t0
            return
        time.sleep(0.5)
threading.Thread(target=watch_frr, daemon=True).start()
last_print = 0
slowest = 0.0
prev = time.monotonic()
while time.monotonic() - t0 < limit and (t_xc is None or t_fib is None):
    tick = time.monotonic()
    slowest = max(slowest, tick - prev)
    prev = tick
    now = tick - t0
    x = xconnect()
    if x is not None:
        xc_n = x
    fib_n = fib()
    if t_xc is None and xc_n >= n:
        t_xc = now
    if t_fib is None and fib_n >= n:
        t_fib = now
    if now - last_print >= 1:
        last_print = now
        print(f"bgp-scale: {now:5.1f} s  xconnect {xc_n:>8}  kernel FIB {fib_n:>8}", file=sys.stderr)
    time.sleep(0.01)
t_frr = frr["t"]
holder.kill()
if t_xc is None or t_fib is None:
    sys.exit(f"bgp-scale: not all {n} routes within {limit} s: xconnect {xc_n}, kernel {fib_n}")
res = {
    "routes": n,
    "xconnect_s": round(t_xc, 2),
    "kernel_fib_s": round(t_fib, 2),
    "frr_received_s": round(t_frr, 2) if t_frr is not None else None,
    "ratio_xconnect_to_kernel": round(t_xc / t_fib, 3),
    "xconnect_routes_per_s": round(n / t_xc),
    "kernel_routes_per_s": round(n / t_fib),
    "slowest_poll_ms": round(slowest * 1000),
    "fpm_module": os.environ.get("FPM_MODULE", ""),
}
if as_json:
    print(json.dumps(res))
else:
    print(f"{n} routes from the session's establishment: xconnect holds them all after "
          f"{t_xc:.2f} s ({n / t_xc:,.0f} routes/s), the kernel FIB after {t_fib:.2f} s "
          f"({n / t_fib:,.0f} routes/s); xconnect/kernel = {t_xc / t_fib:.3f}"
          + (f"; FRR had received them all after {t_frr:.2f} s" if t_frr else "")
          + f" (polled every 10 ms, the slowest round {slowest * 1000:.0f} ms)")
EOF
if [ "$STAMPS" = 1 ]; then
  sleep 1
  kill "$MON" "$DUMP" 2>/dev/null || true
  wait "$MON" "$DUMP" 2>/dev/null || true
  tcpdump -r "$WORK/fpm.pcap" -tt -nn 2>/dev/null | python3 -c '
import datetime, re, sys
fpm = None
for line in sys.stdin:
    m = re.match(r"(\d+\.\d+) .* length (\d+)", line)
    if m and int(m.group(2)) > 0:
        fpm = float(m.group(1))
kernel = None
with open(sys.argv[1], errors="replace") as f:
    for line in f:
        m = re.match(r"\[(\S+)\] (?!Deleted).*proto bgp", line)
        if m:
            kernel = m.group(1)
if fpm is None or kernel is None:
    sys.exit("bgp-scale: --timestamps: no FPM segment or no kernel route seen")
k = datetime.datetime.fromisoformat(kernel).replace(tzinfo=datetime.timezone.utc).timestamp()
print(f"bgp-scale: the kernel notified its last BGP route at {kernel}; the last FPM segment "
      f"reached xconnect {(fpm - k) * 1000:+.1f} ms from then")
' "$WORK/monitor.txt" || true
fi
kill "$XPID" 2>/dev/null || true
wait "$XPID" 2>/dev/null || true
tail -1 "$WORK/xc.out" | python3 -c 'import json,sys; r=json.load(sys.stdin); [print("bgp-scale: xconnect final:", f["name"], f["routes"], file=sys.stderr) for f in r.get("fpm", [])]' || true
