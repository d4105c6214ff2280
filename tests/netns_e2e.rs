//! End-to-end tests over real network namespaces: `scripts/topology.sh`
//! builds the lab (customer host → xconnect provider edge → two veth
//! trunks → xconnect MSEE → vnet and m365 hosts), both forwarders run as
//! `xconnect run` processes, and real tools (ping, iperf3, tcpdump) check
//! what a person would: reachability per peering, throughput, the tags on
//! the trunk wire, DSCP on arrival, peering isolation and link failover —
//! with AF_PACKET ports, with TAP access ports, and a pnet smoke test —;
//! a trunk deleted and created again under the same name (issue #15);
//! a capture from the running provider edge (`--capture`), read back
//! with pcap-file, tcpdump and (when installed) tshark; and the control
//! plane (issue #16): FRR per peering per side over host interfaces, BGP
//! on both peerings with routes only over FPM, the same prefix kept apart
//! by peering, BFD failover (a trunk down, and a silent trunk failure
//! made with XDP when `llc` is installed), the MSEE's prefix limit, and
//! an FPM reconnection.
//!
//! Needs root, `ip netns` and the tools iperf3, tcpdump, ping, ethtool and
//! timeout (`scripts/test.sh` installs them when root). Without them every
//! test prints why it is skipped, naming what is missing, and passes —
//! except under CI (`CI` set, and not `false` or `0`): there a missing tool
//! fails the tests, so that a broken install is a clear failure rather than
//! a silent skip (not root or no `ip netns` still skip in CI: a CI that runs
//! unprivileged cannot run them at all). Tests run one at a time (a mutex),
//! each lab under its own namespace prefix, every command under `timeout`;
//! the [`Lab`] guard stops the forwarders by PID and removes the
//! namespaces even when an assertion fails.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

const XCONNECT: &str = env!("CARGO_BIN_EXE_xconnect");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Why the tests cannot run here (`None`: they can), naming every missing
/// tool. Panics under CI when only tools are missing: see the module
/// documentation.
fn skip_reason() -> Option<String> {
    // (command, Debian package)
    let tools = [
        ("iperf3", "iperf3"),
        ("tcpdump", "tcpdump"),
        ("ping", "iputils-ping"),
        ("ethtool", "ethtool"),
        ("timeout", "coreutils"),
        ("curl", "curl"),
    ];
    let missing: Vec<(&str, &str)> = tools
        .into_iter()
        .filter(|(t, _)| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    let tools_missing = (!missing.is_empty()).then(|| {
        let names: Vec<&str> = missing.iter().map(|(t, _)| *t).collect();
        let packages: Vec<&str> = missing.iter().map(|(_, p)| *p).collect();
        format!(
            "missing {}: apt-get install {} (scripts/test.sh installs them when root)",
            names.join(", "),
            packages.join(" ")
        )
    });
    let also = |why: &str| match &tools_missing {
        Some(m) => Some(format!("{why}; also {m}")),
        None => Some(why.to_string()),
    };
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return also("not root (network namespaces need CAP_SYS_ADMIN)");
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(o) if o.status.success() => {}
        _ => return also("`ip netns` is not available (install iproute2)"),
    }
    let why = tools_missing?;
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(!ci, "CI is set, so the netns tests must run, but: {why}");
    Some(why)
}

/// Take the serial lock, or `None` (with a message) if the tests cannot run here.
fn serial(test: &str) -> Option<std::sync::MutexGuard<'static, ()>> {
    if let Some(why) = skip_reason() {
        // Straight to stderr, past the test harness's capture: a skip is
        // news even when the test passes.
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "skipping {test}: {why}");
        return None;
    }
    Some(SERIAL.lock().unwrap_or_else(|p| p.into_inner()))
}

fn run(cmd: &str) -> Output {
    Command::new("sh")
        .args(["-c", cmd])
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a PID we started; at worst it no longer exists.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// Wait for `child` up to `limit`, then SIGKILL it.
fn reap(child: &mut Child, limit: Duration) {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Access {
    AfPacket,
    Tap,
    Pnet,
}

/// One lab: namespaces, both forwarders, a scratch directory.
struct Lab {
    prefix: String,
    dir: PathBuf,
    forwarders: Vec<(String, Child)>,
    helpers: Vec<Child>,
    /// Extra arguments of the provider edge's `xconnect run`.
    pe_args: Vec<String>,
    /// `--stats-interval` of both forwarders (0: only the final line).
    stats_interval: &'static str,
    /// Extra arguments of both forwarders' `xconnect run` (from the next
    /// start on).
    run_args: Vec<String>,
    /// Namespaces the lab made beyond the topology script's (deleted on
    /// drop).
    extra_ns: Vec<String>,
}

impl Lab {
    fn up(name: &str, access: Access, tpid: &str) -> Lab {
        Lab::up_with(name, access, tpid, |_| Vec::new())
    }

    /// [`Lab::up`] with extra arguments for the provider edge's
    /// `xconnect run`, made from the lab's scratch directory.
    /// A lab with nothing up yet: its namespace prefix (from the test's
    /// process id and `name`) and an empty scratch directory.
    fn empty(name: &str, stats_interval: &'static str) -> Lab {
        let prefix = format!("xt{}{}-", std::process::id() % 10_000, &name[..2]);
        let dir = std::env::temp_dir().join(format!("xconnect-e2e-{prefix}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Lab {
            prefix,
            dir,
            forwarders: Vec::new(),
            helpers: Vec::new(),
            pe_args: Vec::new(),
            stats_interval,
            run_args: Vec::new(),
            extra_ns: Vec::new(),
        }
    }

    fn up_with(
        name: &str,
        access: Access,
        tpid: &str,
        pe_args: impl FnOnce(&Path) -> Vec<String>,
    ) -> Lab {
        let mut lab = Lab::empty(name, "0");
        lab.pe_args = pe_args(&lab.dir);
        let tap = if access == Access::Tap { " --tap" } else { "" };
        let o = lab.script(&format!("up{tap}"));
        assert!(o.status.success(), "topology up: {}", text(&o));

        let backend = match access {
            Access::AfPacket => "af_packet",
            Access::Tap => "tap",
            Access::Pnet => "pnet",
        };
        let access_port = |t: String, iface: &str| {
            t.replace(
                &format!("interface = \"{iface}\"\nbackend = \"af_packet\""),
                &format!("interface = \"{iface}\"\nbackend = \"{backend}\""),
            )
        };
        let pe = fs::read_to_string(Path::new(ROOT).join("examples/lab-pe-qinq.toml")).unwrap();
        let pe = access_port(access_port(pe, "xc-pe-priv"), "xc-pe-ms")
            .replace("outer_tpid = 0x8100", &format!("outer_tpid = {tpid}"));
        let ms = fs::read_to_string(Path::new(ROOT).join("examples/msee-qinq.toml")).unwrap();
        let ms_backend = if access == Access::Tap {
            access
        } else {
            Access::AfPacket
        };
        let ms = if ms_backend == Access::Tap {
            access_port(access_port(ms, "xc-ms-vnet"), "xc-ms-m365")
        } else {
            ms
        }
        .replace(
            "s_tag = 100\n",
            &format!("s_tag = 100\nouter_tpid = {tpid}\n"),
        );
        assert!(pe.contains(&format!("outer_tpid = {tpid}")));
        fs::write(lab.dir.join("pe.toml"), pe).unwrap();
        fs::write(lab.dir.join("ms.toml"), ms).unwrap();
        lab.start("pe", "pe.toml", 0);
        lab.start("ms", "ms.toml", 1);
        if access == Access::Tap {
            let o = lab.script("taps");
            assert!(o.status.success(), "topology taps: {}", text(&o));
        }
        // Let IPv6 addresses and the first blocks settle.
        std::thread::sleep(Duration::from_millis(300));
        lab
    }

    /// The managed Layer 3 lab (`topology.sh up --l3`): both forwarders
    /// route (`examples/lab-pe-l3.toml`, `examples/lab-msee-l3.toml`), the
    /// hosts are plain Linux behind the forwarders' access addresses.
    fn up_l3(name: &str) -> Lab {
        Lab::up_l3_with(name, |t| t, |t| t)
    }

    /// [`Lab::up_l3`] with the provider edge's and the MSEE's
    /// configurations changed by `pe` and `ms`.
    fn up_l3_with(
        name: &str,
        pe: impl FnOnce(String) -> String,
        ms: impl FnOnce(String) -> String,
    ) -> Lab {
        Lab::up_l3_stats(name, pe, ms, "0")
    }

    /// [`Lab::up_l3_with`] with both forwarders printing a JSON stats
    /// line every `interval` seconds (see [`Lab::live`]).
    fn up_l3_stats(
        name: &str,
        pe: impl FnOnce(String) -> String,
        ms: impl FnOnce(String) -> String,
        interval: &'static str,
    ) -> Lab {
        let mut lab = Lab::empty(name, interval);
        let o = lab.script("up --l3");
        assert!(o.status.success(), "topology up --l3: {}", text(&o));
        let read = |f: &str| fs::read_to_string(Path::new(ROOT).join("examples").join(f)).unwrap();
        fs::write(lab.dir.join("pe.toml"), pe(read("lab-pe-l3.toml"))).unwrap();
        fs::write(lab.dir.join("ms.toml"), ms(read("lab-msee-l3.toml"))).unwrap();
        lab.start("pe", "pe.toml", 0);
        lab.start("ms", "ms.toml", 1);
        // Let the hosts' IPv6 addresses settle.
        std::thread::sleep(Duration::from_millis(300));
        lab
    }

    fn script(&self, args: &str) -> Output {
        run(&format!(
            "XC_NS={} timeout 60 {ROOT}/scripts/topology.sh {args}",
            self.prefix
        ))
    }

    fn ns(&self, n: &str) -> String {
        format!("{}{n}", self.prefix)
    }

    /// `xconnect show ARGS --json` against forwarder `role`'s control
    /// socket: the reply's data.
    fn show(&self, role: &str, args: &str) -> serde_json::Value {
        let o = run(&format!(
            "{XCONNECT} show {args} --json --control {}",
            self.dir.join(format!("{role}.sock")).display()
        ));
        assert!(o.status.success(), "show {args} ({role}): {}", text(&o));
        serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("show {args}: {e}: {}", text(&o)))
    }

    /// `xconnect ctl ARGS --json` against forwarder `role`: the whole
    /// reply (`ok` and `data`, or `error`), whether it succeeded or not.
    fn ctl(&self, role: &str, args: &str) -> serde_json::Value {
        let o = run(&format!(
            "{XCONNECT} ctl {args} --json --control {}",
            self.dir.join(format!("{role}.sock")).display()
        ));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("ctl {args}: {e}: {}", text(&o)));
        if o.status.success() {
            serde_json::json!({ "ok": true, "data": v })
        } else {
            v
        }
    }

    fn start(&mut self, role: &str, config: &str, core: usize) {
        let out = fs::File::create(self.dir.join(format!("{role}.out"))).unwrap();
        let err = fs::File::create(self.dir.join(format!("{role}.err"))).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(role), XCONNECT, "run"])
            .arg(self.dir.join(config))
            .args(["--json", "--stats-interval", self.stats_interval])
            .arg("--control")
            .arg(self.dir.join(format!("{role}.sock")))
            .args(["--duration", "300"])
            .args(["--first-core", &core.to_string()])
            .args(if role == "pe" { &self.pe_args[..] } else { &[] })
            .args(&self.run_args)
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap();
        self.forwarders.push((role.to_string(), child));
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let log = fs::read_to_string(self.dir.join(format!("{role}.err"))).unwrap_or_default();
            if log.contains("running") {
                return;
            }
            let (_, c) = self.forwarders.last_mut().unwrap();
            if let Ok(Some(st)) = c.try_wait() {
                panic!("xconnect ({role}) exited with {st}: {log}");
            }
            assert!(
                Instant::now() < end,
                "xconnect ({role}) did not start: {log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Run `cmd` in namespace `ns` (bounded by `timeout`).
    fn exec(&self, ns: &str, cmd: &str) -> Output {
        run(&format!("ip netns exec {} timeout 30 {cmd}", self.ns(ns)))
    }

    /// Start `cmd` in namespace `ns` in the background (stdout/stderr to files).
    fn spawn(&mut self, ns: &str, cmd: &str, name: &str) -> usize {
        let out = fs::File::create(self.dir.join(format!("{name}.out"))).unwrap();
        let err = fs::File::create(self.dir.join(format!("{name}.err"))).unwrap();
        let child = Command::new("sh")
            .args([
                "-c",
                &format!("exec ip netns exec {} timeout 30 {cmd}", self.ns(ns)),
            ])
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap();
        self.helpers.push(child);
        self.helpers.len() - 1
    }

    fn read(&self, name: &str) -> String {
        fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    /// Capture on `iface` in `ns` while `traffic` runs; returns tcpdump's lines.
    fn capture(
        &mut self,
        ns: &str,
        ifaces: &[&str],
        filter: &str,
        traffic: impl FnOnce(&Lab),
    ) -> String {
        self.capture_each(ns, ifaces, filter, traffic).concat()
    }

    /// [`Lab::capture`], tcpdump's lines per interface.
    fn capture_each(
        &mut self,
        ns: &str,
        ifaces: &[&str],
        filter: &str,
        traffic: impl FnOnce(&Lab),
    ) -> Vec<String> {
        let mut ids = Vec::new();
        for (k, i) in ifaces.iter().enumerate() {
            let name = format!("cap-{ns}-{i}-{k}");
            ids.push((
                self.spawn(
                    ns,
                    &format!("tcpdump -l -e -nn -v -Q in -i {i} {filter}"),
                    &name,
                ),
                name,
            ));
        }
        let end = Instant::now() + Duration::from_secs(5);
        while !ids
            .iter()
            .all(|(_, n)| self.read(&format!("{n}.err")).contains("listening"))
        {
            assert!(Instant::now() < end, "tcpdump did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        traffic(self);
        std::thread::sleep(Duration::from_millis(200));
        let mut all = Vec::new();
        for (id, name) in ids {
            let c = &mut self.helpers[id];
            signal(c.id(), libc::SIGINT);
            reap(c, Duration::from_secs(3));
            all.push(self.read(&format!("{name}.out")));
        }
        all
    }

    /// The newest JSON stats line `role` printed (with a stats interval,
    /// [`Lab::up_l3_stats`]); `Null` before the first.
    fn live(&self, role: &str) -> serde_json::Value {
        self.read(&format!("{role}.out"))
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
            .unwrap_or_default()
    }

    /// Stop both forwarders (SIGTERM) and return their final JSON stats.
    fn stop(&mut self) -> Vec<(String, serde_json::Value)> {
        let mut finals = Vec::new();
        for (role, c) in &mut self.forwarders {
            signal(c.id(), libc::SIGTERM);
            reap(c, Duration::from_secs(5));
            let out = fs::read_to_string(self.dir.join(format!("{role}.out"))).unwrap_or_default();
            let last = out.lines().last().unwrap_or("{}").to_string();
            let v: serde_json::Value = serde_json::from_str(&last)
                .unwrap_or_else(|e| panic!("{role}: final line {last:?}: {e}"));
            finals.push((role.clone(), v));
        }
        self.forwarders.clear();
        finals
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in self.helpers.iter_mut() {
            signal(c.id(), libc::SIGTERM);
            reap(c, Duration::from_secs(2));
        }
        for (_, c) in self.forwarders.iter_mut() {
            signal(c.id(), libc::SIGTERM);
            reap(c, Duration::from_secs(5));
        }
        let _ = self.script("down");
        for n in &self.extra_ns {
            let _ = run(&format!("ip netns del {n}"));
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// (transmitted, received) from ping's summary.
fn ping_counts(out: &str) -> (u32, u32) {
    for line in out.lines() {
        if let Some((tx, rest)) = line.split_once(" packets transmitted, ") {
            let rx = rest.split_whitespace().next().unwrap_or("0");
            return (tx.trim().parse().unwrap_or(0), rx.parse().unwrap_or(0));
        }
    }
    (0, 0)
}

/// The longest time without a reply in the output of `ping -D`: from one
/// reply to the next, less one `interval` (ping slows down while replies
/// are missing, so the lost count alone understates an outage).
fn ping_outage(out: &str, interval: Duration) -> Duration {
    let times: Vec<f64> = out
        .lines()
        .filter(|l| l.contains(" bytes from "))
        .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
        .collect();
    let gap = times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    Duration::from_secs_f64(gap).saturating_sub(interval)
}

fn ping_ok(lab: &Lab, dst: &str) {
    let v6 = if dst.contains(':') { "-6 " } else { "" };
    let o = lab.exec("cust", &format!("ping {v6}-c 3 -i 0.2 -W 2 {dst}"));
    let (tx, rx) = ping_counts(&text(&o));
    assert!(tx == 3 && rx == 3, "ping {dst}: {}", text(&o));
}

fn ping_fails(lab: &Lab, via: &str, dst: &str) {
    let r = lab.exec("cust", &format!("ip route add {dst}/32 dev {via}"));
    assert!(r.status.success(), "{}", text(&r));
    let o = lab.exec("cust", &format!("ping -c 3 -i 0.2 -W 1 {dst}"));
    let _ = lab.exec("cust", &format!("ip route del {dst}/32 dev {via}"));
    let (tx, rx) = ping_counts(&text(&o));
    assert!(
        tx == 3 && rx == 0,
        "{dst} must be unreachable through {via}: {}",
        text(&o)
    );
}

/// The TOS byte of the first echo request tcpdump shows in `cap`.
fn tos_seen(cap: &str) -> Option<u8> {
    let at = cap.find("tos 0x")? + 6;
    let hex: String = cap[at..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();
    u8::from_str_radix(&hex, 16).ok()
}

/// Send echo requests with TOS `tos` from the customer to `dst` and return
/// the TOS they arrive with at `host` (`iface`).
fn tos_on_arrival(lab: &mut Lab, host: &str, iface: &str, dst: &str, tos: u8) -> u8 {
    let cap = lab.capture(
        host,
        &[iface],
        "icmp and icmp[icmptype] = icmp-echo",
        |lab| {
            let o = lab.exec(
                "cust",
                &format!("ping -c 2 -i 0.2 -W 1 -Q 0x{tos:02x} {dst}"),
            );
            assert_eq!(ping_counts(&text(&o)).1, 2, "{}", text(&o));
        },
    );
    tos_seen(&cap).unwrap_or_else(|| panic!("no echo request captured at {host}: {cap}"))
}

/// Every captured frame of C-tag `ctag` carries the outer tag (TPID
/// `outer_tpid`, VID 100) and then the C-tag with TPID 0x8100; returns how
/// many frames that was. (`tcpdump -e` prints the whole tag stack on the
/// first line of each frame.)
fn check_tags(cap: &str, outer_tpid: &str, ctag: u16) -> usize {
    let mut n = 0;
    for l in cap.lines().filter(|l| l.contains(&format!("vlan {ctag},"))) {
        let outer = l.find(&format!("({outer_tpid})"));
        let s_tag = l.find("vlan 100,");
        assert!(
            outer.is_some() && outer < s_tag,
            "outer tag must be TPID {outer_tpid} VID 100: {l}"
        );
        let after = &l[s_tag.unwrap_or(0)..];
        assert!(
            after.contains(&format!("ethertype 802.1Q (0x8100), vlan {ctag},")),
            "inner C-tag must be TPID 0x8100 VID {ctag}: {l}"
        );
        n += 1;
    }
    n
}

fn tags_on_the_trunks(lab: &mut Lab, outer_tpid: &str) {
    let cap = lab.capture("ms", &["xc-ms-tra", "xc-ms-trb"], "", |lab| {
        ping_ok(lab, "192.0.2.2");
        ping_ok(lab, "198.51.100.2");
    });
    let private = check_tags(&cap, outer_tpid, 200);
    let microsoft = check_tags(&cap, outer_tpid, 300);
    assert!(
        private >= 3 && microsoft >= 3,
        "tagged frames: private {private}, microsoft {microsoft}\n{cap}"
    );
    println!("tags on the trunks: outer {outer_tpid} vlan 100, inner 0x8100 vlan 200 ({private} frames) / 300 ({microsoft} frames)");
}

fn iperf(lab: &mut Lab, host: &str, addr: &str) -> f64 {
    let id = lab.spawn(
        host,
        &format!("iperf3 -s -1 -B {addr}"),
        &format!("iperf-{host}"),
    );
    let end = Instant::now() + Duration::from_secs(5);
    while !text(&lab.exec(host, "ss -Hltn sport = :5201")).contains("5201") {
        assert!(Instant::now() < end, "iperf3 server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = lab.exec("cust", &format!("iperf3 -c {addr} -t 2 -J"));
    reap(&mut lab.helpers[id], Duration::from_secs(5));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("iperf3 JSON: {e}: {}", text(&o)));
    let bps = v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(bps > 1e6, "iperf3 to {addr}: {bps} bit/s: {}", text(&o));
    bps / 1e6
}

/// A bounded transfer of 24 MiB of pseudo-random bytes from the customer
/// to `host` over one TCP connection (a Python sender and receiver, as a
/// `curl` download would move them: every byte read until the sender
/// closes), compared by SHA-256. With the hosts' offloads on, the bytes
/// cross both forwarders as super-frames.
fn transfer_identical(lab: &mut Lab, host: &str, addr: &str) {
    let src = lab.dir.join(format!("xfer-{host}.src"));
    let dst = lab.dir.join(format!("xfer-{host}.dst"));
    let mut bytes = vec![0u8; 24 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ host.len() as u64;
    for b in bytes.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    fs::write(&src, &bytes).unwrap();
    let port = 5301;
    let server = format!(
        "python3 -c \"import socket\ns = socket.create_server(('{addr}', {port}))\n\
         c, _ = s.accept()\nf = open('{}', 'wb')\nwhile True:\n    b = c.recv(1 << 16)\n    \
         if not b: break\n    f.write(b)\nf.close()\n\"",
        dst.display()
    );
    let id = lab.spawn(host, &server, &format!("xfer-{host}"));
    let end = Instant::now() + Duration::from_secs(5);
    while !text(&lab.exec(host, &format!("ss -Hltn sport = :{port}"))).contains(&port.to_string()) {
        assert!(Instant::now() < end, "receiver did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = lab.exec(
        "cust",
        &format!(
            "timeout 30 python3 -c \"import socket\nc = socket.create_connection(('{addr}', {port}), 5)\n\
             c.sendall(open('{}', 'rb').read())\nc.close()\n\"",
            src.display()
        ),
    );
    assert!(o.status.success(), "sender to {addr}: {}", text(&o));
    reap(&mut lab.helpers[id], Duration::from_secs(15));
    let got = fs::metadata(&dst).map(|m| m.len()).unwrap_or(0);
    assert_eq!(got, bytes.len() as u64, "bytes received by {host}");
    let sha = |p: &Path| {
        let o = run(&format!("sha256sum {}", p.display()));
        text(&o)
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    let (a, b) = (sha(&src), sha(&dst));
    assert!(
        a.len() == 64 && a == b,
        "SHA-256 of what {host} received {b}, of what was sent {a}"
    );
    println!(
        "transfer to {host}: {} bytes, SHA-256 {a} on both ends",
        bytes.len()
    );
    let _ = fs::remove_file(&src);
    let _ = fs::remove_file(&dst);
}

/// UDP super-frames (`UDP_SEGMENT`, as QUIC stacks send): the customer
/// sends 20 writes of 8 datagrams of 1,000 bytes each to `host`, which
/// must receive all 160 datagrams, each with its own content (an index
/// and a pattern). With the hosts' offloads on, each write crosses the
/// forwarders as one super-frame.
fn udp_gso_datagrams_arrive(lab: &mut Lab, host: &str, addr: &str) {
    const PORT: u16 = 5401;
    let datagram = "bytes([i, k]) + bytes((i * 31 + k * 7 + j) & 0xff for j in range(998))";
    let family = if addr.contains(':') {
        "AF_INET6"
    } else {
        "AF_INET"
    };
    let tag = addr.replace([':', '.'], "_");
    let rx = lab.dir.join(format!("udp-gso-rx-{tag}.py"));
    let tx = lab.dir.join(format!("udp-gso-tx-{tag}.py"));
    fs::write(
        &rx,
        format!(
            "import socket, json\n\
             s = socket.socket(socket.{family}, socket.SOCK_DGRAM)\n\
             s.bind(('{addr}', {PORT}))\n\
             s.settimeout(3)\n\
             seen, bad = set(), 0\n\
             try:\n\
             \x20   while len(seen) < 160:\n\
             \x20       d = s.recv(65535)\n\
             \x20       i, k = (d[0], d[1]) if len(d) > 1 else (0, 0)\n\
             \x20       if d == {datagram}:\n\
             \x20           seen.add((i, k))\n\
             \x20       else:\n\
             \x20           bad += 1\n\
             except socket.timeout:\n\
             \x20   pass\n\
             print(json.dumps({{'distinct': len(seen), 'bad': bad}}))\n"
        ),
    )
    .unwrap();
    fs::write(
        &tx,
        format!(
            "import socket\n\
             s = socket.socket(socket.{family}, socket.SOCK_DGRAM)\n\
             s.setsockopt(socket.SOL_UDP, 103, 1000)  # UDP_SEGMENT\n\
             for i in range(20):\n\
             \x20   s.sendto(b''.join({datagram} for k in range(8)), ('{addr}', {PORT}))\n"
        ),
    )
    .unwrap();
    let name = format!("udp-gso-{tag}");
    let rx_of = |v: &serde_json::Value| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "cust-private")
            .map(|p| {
                (
                    p["rx_packets"].as_u64().unwrap_or(0),
                    p["rx_bytes"].as_u64().unwrap_or(0),
                )
            })
            .unwrap()
    };
    // Counters settled: traffic before this (published late) not counted.
    let mut before = rx_of(&lab.show("pe", "ports"));
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(200));
        let now = rx_of(&lab.show("pe", "ports"));
        if now == before {
            break;
        }
        before = now;
    }
    let id = lab.spawn(host, &format!("python3 {}", rx.display()), &name);
    let end = Instant::now() + Duration::from_secs(5);
    while !text(&lab.exec(host, &format!("ss -Hlun sport = :{PORT}"))).contains(&PORT.to_string()) {
        assert!(Instant::now() < end, "UDP receiver did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = lab.exec("cust", &format!("python3 {}", tx.display()));
    assert!(
        o.status.success(),
        "UDP_SEGMENT sender to {addr}: {}",
        text(&o)
    );
    reap(&mut lab.helpers[id], Duration::from_secs(10));
    let out = lab.read(&format!("{name}.out"));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| {
        panic!(
            "UDP receiver at {addr}: {e}: {out} {}",
            lab.read(&format!("{name}.err"))
        )
    });
    // The workers publish their counters now and then: wait for the
    // 160,000 payload bytes to show.
    let end = Instant::now() + Duration::from_secs(3);
    let mut after = rx_of(&lab.show("pe", "ports"));
    while after.1 - before.1 < 160_000 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
        after = rx_of(&lab.show("pe", "ports"));
    }
    let (frames, bytes) = (after.0 - before.0, after.1 - before.1);
    println!(
        "UDP_SEGMENT to {addr}: {v} (of 160 datagrams); the provider edge received {frames} frames, {bytes} bytes"
    );
    assert_eq!(
        v["distinct"], 160,
        "every datagram of the UDP super-frames arrives, intact: {v}"
    );
    assert_eq!(v["bad"], 0, "no datagram arrives altered: {v}");
    // The customer's offloads are on: its writes reach the provider edge
    // as super-frames (on a veth, and on a TAP with UDP segmentation),
    // not as 160 datagrams (a few frames of other traffic may count too).
    assert!(
        frames < 80 && bytes / frames.max(1) > 4000,
        "UDP super-frames carried whole: {frames} frames, {bytes} bytes"
    );
}

/// Ping at 10 ms intervals while `link` goes down and comes back;
/// returns the pings lost.
fn failover_loss(lab: &mut Lab, link: &str) -> u32 {
    let id = lab.spawn(
        "cust",
        "ping -i 0.01 -c 250 -W 1 192.0.2.2",
        &format!("failover-{link}"),
    );
    std::thread::sleep(Duration::from_millis(600));
    let d = lab.exec("pe", &format!("ip link set {link} down"));
    assert!(d.status.success(), "{}", text(&d));
    std::thread::sleep(Duration::from_millis(1200));
    let u = lab.exec("pe", &format!("ip link set {link} up"));
    assert!(u.status.success(), "{}", text(&u));
    reap(&mut lab.helpers[id], Duration::from_secs(10));
    let out = lab.read(&format!("failover-{link}.out"));
    let (tx, rx) = ping_counts(&out);
    assert!(tx >= 200, "ping ran: {out}");
    // Let both forwarders see the link up again.
    std::thread::sleep(Duration::from_millis(300));
    tx - rx
}

/// The suite every access backend must pass.
fn suite(lab: &mut Lab, label: &str) {
    let t = Instant::now();
    ping_ok(lab, "192.0.2.2");
    ping_ok(lab, "198.51.100.2");
    ping_ok(lab, "2001:db8:0:1::2");
    ping_ok(lab, "2001:db8:0:2::2");

    tags_on_the_trunks(lab, "0x8100");

    // DSCP: Microsoft peering rewrites AF31 to 0 (ECN kept), keeps EF;
    // private peering keeps AF31.
    let af31_ect0 = (26 << 2) | 0b10;
    let ef_ect1 = (46 << 2) | 0b01;
    let ms_af31 = tos_on_arrival(lab, "m365", "m365-0", "198.51.100.2", af31_ect0);
    assert_eq!(
        ms_af31, 0b10,
        "AF31 on Microsoft peering arrives as CS0 with ECN kept"
    );
    let ms_ef = tos_on_arrival(lab, "m365", "m365-0", "198.51.100.2", ef_ect1);
    assert_eq!(ms_ef, ef_ect1, "EF stays EF");
    let pv_af31 = tos_on_arrival(lab, "vnet", "vnet0", "192.0.2.2", af31_ect0);
    assert_eq!(pv_af31, af31_ect0, "private peering keeps AF31");
    println!(
        "[{label}] DSCP: microsoft 0x{af31_ect0:02x}->0x{ms_af31:02x}, 0x{ef_ect1:02x}->0x{ms_ef:02x}; private 0x{af31_ect0:02x}->0x{pv_af31:02x}"
    );

    // Isolation: each peering reaches only its own host.
    ping_fails(lab, "cust-priv", "198.51.100.2");
    ping_fails(lab, "cust-ms", "192.0.2.2");

    let private = iperf(lab, "vnet", "192.0.2.2");
    let microsoft = iperf(lab, "m365", "198.51.100.2");
    transfer_identical(lab, "vnet", "192.0.2.2");
    transfer_identical(lab, "m365", "198.51.100.2");
    udp_gso_datagrams_arrive(lab, "vnet", "192.0.2.2");
    udp_gso_datagrams_arrive(lab, "vnet", "2001:db8:0:1::2");
    println!(
        "[{label}] iperf3 TCP 2 s: private {private:.0} Mbit/s, microsoft {microsoft:.0} Mbit/s"
    );

    let lost_a = failover_loss(lab, "xc-pe-tra");
    let lost_b = failover_loss(lab, "xc-pe-trb");
    println!("[{label}] failover at 10 ms pings: primary down lost {lost_a}, secondary down lost {lost_b}");
    assert!(
        lost_a < 100 && lost_b < 100,
        "recovery within 1 s: lost {lost_a} / {lost_b}"
    );

    for (role, v) in lab.stop() {
        assert_eq!(v["final"], true, "{role}: {v}");
        let rx: u64 = v["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["rx_packets"].as_u64().unwrap_or(0))
            .sum();
        assert!(rx > 1000, "{role} forwarded traffic: {v}");
        assert_eq!(v["drops"]["malformed"], 0, "{role}: {v}");
        if label == "af_packet" || label == "tap" {
            // The hosts' offloads are on: their TCP hands the customer
            // ports super-frames, which count as one frame of their whole
            // length each; the MSEE hands them to the VNet host whole
            // (through a TAP too: IFF_VNET_HDR).
            let (port, dir) = if role == "pe" { (0, "rx") } else { (2, "tx") };
            let p = &v["ports"][port];
            let (bytes, frames) = (
                p[format!("{dir}_bytes")].as_u64().unwrap_or(0),
                p[format!("{dir}_packets")].as_u64().unwrap_or(1).max(1),
            );
            println!(
                "[{label}] {role} {}: {} bytes per frame {dir}",
                p["name"],
                bytes / frames
            );
            assert!(bytes / frames > 4096, "super-frames carried whole: {p}");
        }
        println!("[{label}] {role} final: {v}");
    }
    println!("[{label}] suite took {:.1} s", t.elapsed().as_secs_f64());
}

#[test]
fn af_packet_lab() {
    let Some(_g) = serial("af_packet_lab") else {
        return;
    };
    let mut lab = Lab::up("af", Access::AfPacket, "0x8100");
    suite(&mut lab, "af_packet");
}

#[test]
fn af_packet_lab_8021ad_outer_tag() {
    let Some(_g) = serial("af_packet_lab_8021ad_outer_tag") else {
        return;
    };
    let mut lab = Lab::up("ad", Access::AfPacket, "0x88a8");
    tags_on_the_trunks(&mut lab, "0x88a8");
    ping_ok(&lab, "2001:db8:0:2::2");
    lab.stop();
}

#[test]
fn tap_lab() {
    let Some(_g) = serial("tap_lab") else { return };
    let mut lab = Lab::up("tp", Access::Tap, "0x8100");
    suite(&mut lab, "tap");
}

#[test]
fn pnet_access_ports_smoke() {
    let Some(_g) = serial("pnet_access_ports_smoke") else {
        return;
    };
    let mut lab = Lab::up("pn", Access::Pnet, "0x8100");
    ping_ok(&lab, "192.0.2.2");
    ping_ok(&lab, "198.51.100.2");
    let finals = lab.stop();
    let pe = &finals[0].1;
    assert_eq!(pe["ports"][0]["backend"], "pnet", "{pe}");
    assert!(
        pe["ports"][0]["rx_packets"].as_u64().unwrap_or(0) >= 3,
        "{pe}"
    );
}

/// One packet block of a capture file.
struct Captured {
    port: String,
    flags: u32,
    comment: Option<String>,
    data: Vec<u8>,
}

/// Every packet of every `.pcapng` file in `dir`, in file order, read
/// with pcap-file's reader (the files must parse completely).
fn read_capture(dir: &Path) -> (Vec<PathBuf>, Vec<Captured>) {
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
    use pcap_file::pcapng::{Block, PcapNgReader};
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcapng"))
        .collect();
    files.sort();
    let mut all = Vec::new();
    for f in &files {
        let mut r = PcapNgReader::new(fs::File::open(f).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let mut names: Vec<String> = Vec::new();
        while let Some(b) = r.next_block() {
            let b = b.unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            let p = match b {
                Block::SectionHeader(_) => {
                    names.clear();
                    continue;
                }
                Block::InterfaceDescription(i) => {
                    names.push(
                        i.options
                            .iter()
                            .find_map(|o| match o {
                                InterfaceDescriptionOption::IfName(n) => Some(n.to_string()),
                                _ => None,
                            })
                            .unwrap_or_default(),
                    );
                    continue;
                }
                Block::EnhancedPacket(p) => p,
                _ => continue,
            };
            let port = names
                .get(p.interface_id as usize)
                .cloned()
                .unwrap_or_default();
            let mut c = Captured {
                port,
                flags: 0,
                comment: None,
                data: p.data.to_vec(),
            };
            for o in &p.options {
                match o {
                    EnhancedPacketOption::Flags(f) => c.flags = *f,
                    EnhancedPacketOption::Comment(s) => c.comment = Some(s.to_string()),
                    _ => {}
                }
            }
            all.push(c);
        }
    }
    (files, all)
}

/// An ICMP echo request (IPv4, untagged or behind `tags` VLAN tags) to `dst`.
fn is_echo_to(frame: &[u8], tags: usize, dst: [u8; 4]) -> bool {
    let ip = 14 + 4 * tags;
    frame.len() > ip + 20
        && frame[ip - 2..ip] == [0x08, 0x00]
        && frame[ip + 9] == 1
        && frame[ip + 16..ip + 20] == dst
        && frame[ip + 20] == 8
}

#[test]
fn capture_from_a_running_forwarder() {
    let Some(_g) = serial("capture_from_a_running_forwarder") else {
        return;
    };
    let mut lab = Lab::up_with("cp", Access::AfPacket, "0x8100", |dir| {
        vec![
            "--capture".into(),
            dir.join("cap").display().to_string(),
            // Small files, so the run rotates.
            "--capture-max-bytes".into(),
            "4K".into(),
        ]
    });
    let cap_dir = lab.dir.join("cap");
    ping_ok(&lab, "192.0.2.2");
    ping_ok(&lab, "198.51.100.2");
    ping_ok(&lab, "2001:db8:0:1::2");
    // Untagged frames sent into the provider edge's trunk: no attachment
    // takes them there (dropped as unknown-attachment).
    let o = lab.exec(
        "ms",
        &format!(
            "{XCONNECT} gen xc-ms-tra --count 5 --duration 2 --core none \
             --src-mac 02:00:00:00:0d:01 --dst-mac 02:00:00:00:0d:02"
        ),
    );
    assert!(o.status.success(), "gen: {}", text(&o));
    std::thread::sleep(Duration::from_millis(300));
    let finals = lab.stop();
    let pe = &finals[0].1;
    let c = &pe["capture"];
    let written = c["written"].as_u64().unwrap_or(0);
    assert!(written >= 20, "capture counters: {pe}");
    assert_eq!(c["dropped"], 0, "{pe}");
    assert!(c["error"].is_null(), "{pe}");
    assert!(
        pe["drops"]["unknown-attachment"].as_u64().unwrap_or(0) >= 5,
        "{pe}"
    );
    assert!(
        finals[1].1["capture"].is_null(),
        "the MSEE does not capture"
    );

    let (files, pkts) = read_capture(&cap_dir);
    assert!(files.len() >= 2, "4K files must rotate: {files:?}");
    assert_eq!(c["files"].as_u64(), Some(files.len() as u64), "{pe}");
    assert_eq!(
        pkts.len() as u64,
        written,
        "every written frame is in a file"
    );
    let first = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        first.starts_with("xconnect-") && first.ends_with("-0001.pcapng"),
        "{first}"
    );

    // Received on the customer port as sent: untagged, inbound.
    let rx = pkts
        .iter()
        .filter(|p| p.port == "cust-private" && p.flags == 1 && p.comment.is_none())
        .filter(|p| is_echo_to(&p.data, 0, [192, 0, 2, 2]))
        .count();
    // Transmitted on a trunk: S-tag 100 then C-tag 200, outbound.
    let tx = pkts
        .iter()
        .filter(|p| p.port.starts_with("trunk-") && p.flags == 2)
        .filter(|p| {
            p.data[12..14] == [0x81, 0x00]
                && u16::from_be_bytes([p.data[14], p.data[15]]) & 0xfff == 100
                && p.data[16..18] == [0x81, 0x00]
                && u16::from_be_bytes([p.data[18], p.data[19]]) & 0xfff == 200
                && is_echo_to(&p.data, 2, [192, 0, 2, 2])
        })
        .count();
    // Microsoft peering: C-tag 300.
    let tx_ms = pkts
        .iter()
        .filter(|p| p.port.starts_with("trunk-") && p.flags == 2)
        .filter(|p| {
            p.data.len() > 20 && u16::from_be_bytes([p.data[18], p.data[19]]) & 0xfff == 300
        })
        .count();
    let dropped: Vec<&Captured> = pkts
        .iter()
        .filter(|p| p.comment.as_deref() == Some("drop: unknown-attachment"))
        .collect();
    assert!(
        rx >= 3 && tx >= 3 && tx_ms >= 3,
        "rx {rx} tx {tx} tx-ms {tx_ms}"
    );
    assert!(
        dropped.len() >= 5 && dropped.iter().all(|p| p.port == "trunk-a" && p.flags == 1),
        "{} drops: {:?}",
        dropped.len(),
        dropped
            .iter()
            .map(|p| (&p.port, p.flags))
            .collect::<Vec<_>>()
    );
    assert!(
        dropped
            .iter()
            .any(|p| p.data[6..12] == [2, 0, 0, 0, 0x0d, 1]),
        "the generator's frames are among the drops"
    );

    // tcpdump reads every file and shows the tags.
    let mut dump = String::new();
    for f in &files {
        let o = run(&format!("timeout 30 tcpdump -nn -e -r {}", f.display()));
        assert!(
            o.status.success(),
            "tcpdump -r {}: {}",
            f.display(),
            text(&o)
        );
        dump.push_str(&String::from_utf8_lossy(&o.stdout));
    }
    assert!(
        dump.contains("vlan 100,") && dump.contains("vlan 200,") && dump.contains("vlan 300,"),
        "{dump}"
    );
    // tshark (when installed) sees the interfaces and the drop comments.
    if run("command -v tshark").status.success() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let mut seen = 0;
        for f in &files {
            let o = run(&format!(
                "timeout 60 tshark -r {} -Y 'frame.comment contains \"drop:\"' -T fields \
                 -e frame.interface_name -e frame.comment -e frame.time_epoch \
                 -e frame.packet_flags_direction",
                f.display()
            ));
            assert!(
                o.status.success(),
                "tshark -r {}: {}",
                f.display(),
                text(&o)
            );
            for l in String::from_utf8_lossy(&o.stdout).lines() {
                let v: Vec<&str> = l.split('\t').collect();
                assert_eq!(v[..2], ["trunk-a", "drop: unknown-attachment"], "{l}");
                // Nanosecond timestamps (if_tsresol 9) read as this run's time.
                let t: f64 = v[2].parse().unwrap_or(0.0);
                assert!((now - t).abs() < 600.0, "timestamp {t} vs now {now}: {l}");
                // epb_flags direction: inbound.
                assert!(v[3] == "1" || v[3] == "0x00000001", "direction: {l}");
                seen += 1;
            }
        }
        assert_eq!(seen, dropped.len(), "tshark shows every drop comment");
    }
    println!(
        "capture: {written} frames in {} files; rx {rx}, tx {tx}+{tx_ms}, drops {}",
        files.len(),
        dropped.len()
    );
}

/// Managed Layer 3 over real interfaces: two forwarders routing, untagged
/// access links, plain Linux hosts. The first pings of a new flow are not
/// lost while each hop resolves its next hop (the packets wait for the
/// neighbour); TTL 1 gets time exceeded and an unrouted address gets
/// unreachable, both from the provider edge's access address; IPv6 and
/// Microsoft peering route too; iperf3 runs through both hops.
#[test]
fn l3_lab() {
    let Some(_g) = serial("l3_lab") else { return };
    let mut lab = Lab::up_l3("l3");
    // Nothing is resolved yet anywhere: the host, both forwarders and the
    // VNet host each ask for their next hop while the first ping waits.
    let o = lab.exec("cust", "ping -c 5 -i 0.2 -W 2 198.51.100.130");
    assert_eq!(
        ping_counts(&text(&o)),
        (5, 5),
        "first pings of a new flow: {}",
        text(&o)
    );
    let o = lab.exec("cust", "ping -6 -c 5 -i 0.2 -W 2 2001:db8:ff:1::2");
    assert_eq!(ping_counts(&text(&o)), (5, 5), "IPv6: {}", text(&o));
    let o = lab.exec("cust", "ping -c 5 -i 0.2 -W 2 198.51.100.134");
    assert_eq!(
        ping_counts(&text(&o)),
        (5, 5),
        "Microsoft peering: {}",
        text(&o)
    );
    let o = lab.exec("cust", "ping -c 2 -i 0.2 -W 1 -t 1 198.51.100.130");
    assert!(
        text(&o).contains("From 203.0.113.1") && text(&o).contains("Time to live exceeded"),
        "TTL 1: {}",
        text(&o)
    );
    let o = lab.exec("cust", "ping -c 2 -i 0.2 -W 1 198.51.100.200");
    assert!(
        text(&o).contains("From 203.0.113.1") && text(&o).contains("Unreachable"),
        "no route: {}",
        text(&o)
    );
    // A static route written into the running table: answered at once,
    // and gone again when deleted.
    let r = lab.ctl(
        "pe",
        "route add private 198.51.100.192/26 via 192.0.2.2 192.0.2.6",
    );
    assert_eq!(r["ok"], true, "{r}");
    let v = lab.show("pe", "routes private 198.51.100.200");
    assert_eq!(v[0]["routes"][0]["prefix"], "198.51.100.192/26", "{v}");
    assert_eq!(
        v[0]["routes"][0]["via"].as_array().map(Vec::len),
        Some(2),
        "{v}"
    );
    let r = lab.ctl("pe", "route del private 198.51.100.192/26");
    assert_eq!(r["ok"], true, "{r}");
    let v = lab.show("pe", "routes private 198.51.100.200");
    assert_eq!(v[0]["routes"], serde_json::json!([]), "{v}");
    let r = lab.ctl("pe", "route add private 198.51.100.192/26 via 192.0.2.9");
    assert_eq!(r["ok"], false, "not a peer: {r}");
    assert!(r["error"].as_str().unwrap().contains("192.0.2.9"), "{r}");
    let mbps = iperf(&mut lab, "vnet", "198.51.100.130");
    println!("l3 lab: iperf3 {mbps:.0} Mbit/s through two routing forwarders");
    // UDP super-frames routed: TTL and hop limit once per super-frame,
    // every datagram intact.
    udp_gso_datagrams_arrive(&mut lab, "vnet", "198.51.100.130");
    udp_gso_datagrams_arrive(&mut lab, "vnet", "2001:db8:ff:1::2");
    let finals = lab.stop();
    for (role, v) in &finals {
        assert_eq!(
            v["drops"]["neighbor-unresolved"], 0,
            "{role}: packets lost to resolution: {v}"
        );
        assert!(v["l3"]["routed"].as_u64().unwrap_or(0) > 0, "{role}: {v}");
        assert_eq!(v["held"], 0, "{role}: packets still held at the end: {v}");
    }
}

/// Ping every 10 ms through the private peering while `ctl link PORT down`
/// and, 0.8 s later, `up`: the pings lost (`ping -D` output returned too).
fn ctl_link_loss(lab: &mut Lab, port: &str) -> (u32, String) {
    let name = format!("ctl-link-{port}");
    let id = lab.spawn("cust", "ping -D -i 0.01 -c 200 -W 1 192.0.2.2", &name);
    std::thread::sleep(Duration::from_millis(600));
    let before = lab.show("pe", "ports");
    let r = lab.ctl("pe", &format!("link {port} down"));
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["data"]["admin_down"], true, "{r}");
    std::thread::sleep(Duration::from_millis(100));
    // From here on the port sends nothing.
    let frozen = lab.show("pe", "ports");
    let tx = |v: &serde_json::Value| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == port)
            .map(|p| (p["tx_packets"].as_u64().unwrap(), p["admin_down"] == true))
            .unwrap()
    };
    assert!(!tx(&before).1 && tx(&frozen).1, "{frozen}");
    std::thread::sleep(Duration::from_millis(700));
    let after = lab.show("pe", "ports");
    assert_eq!(tx(&after).0, tx(&frozen).0, "{port} sent while held down");
    let r = lab.ctl("pe", &format!("link {port} up"));
    assert_eq!(r["ok"], true, "{r}");
    reap(&mut lab.helpers[id], Duration::from_secs(10));
    let out = lab.read(&format!("{name}.out"));
    let (tx, rx) = ping_counts(&out);
    assert!(tx >= 150, "ping ran: {out}");
    (tx - rx, out)
}

/// The provider edge's `/metrics` (read by an outside parser) against
/// `show summary` around it: every port counter, drop reason and the
/// reload counts lie between the two shows.
fn metrics_equal_show(lab: &Lab) {
    use prometheus_parse::{Scrape, Value as Sample};
    let before = lab.show("pe", "summary");
    let o = lab.exec("pe", "curl -sf http://127.0.0.1:9477/metrics");
    assert!(o.status.success(), "curl /metrics: {}", text(&o));
    let after = lab.show("pe", "summary");
    let body = String::from_utf8_lossy(&o.stdout).to_string();
    let scrape = Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("parses");
    let value = |name: &str, label: (&str, &str)| -> u64 {
        let s = scrape
            .samples
            .iter()
            .find(|s| s.metric == name && s.labels.get(label.0) == Some(label.1))
            .unwrap_or_else(|| panic!("{name}{{{}={}}} in\n{body}", label.0, label.1));
        match s.value {
            Sample::Counter(v) | Sample::Gauge(v) | Sample::Untyped(v) => v as u64,
            _ => panic!("{name}: not a number"),
        }
    };
    let mut checked = 0;
    for (i, p) in before["ports"].as_array().unwrap().iter().enumerate() {
        let name = p["name"].as_str().unwrap();
        for key in [
            "rx_packets",
            "tx_packets",
            "rx_bytes",
            "tx_bytes",
            "kernel_drops",
            "down_events",
        ] {
            let m = value(&format!("xconnect_port_{key}_total"), ("port", name));
            let (lo, hi) = (
                p[key].as_u64().unwrap(),
                after["ports"][i][key].as_u64().unwrap(),
            );
            assert!(
                lo <= m && m <= hi,
                "{name} {key}: show {lo}..{hi}, metrics {m}"
            );
            checked += 1;
        }
    }
    for (reason, n) in before["drops"].as_object().unwrap() {
        let m = value("xconnect_drops_total", ("reason", reason));
        let hi = after["drops"][reason].as_u64().unwrap();
        assert!(
            n.as_u64().unwrap() <= m && m <= hi,
            "drops {reason}: metrics {m}"
        );
        checked += 1;
    }
    for result in ["ok", "failed"] {
        let m = value("xconnect_reloads_total", ("result", result));
        assert_eq!(
            m,
            after["reloads"][result].as_u64().unwrap(),
            "reloads {result}"
        );
        checked += 1;
    }
    println!(
        "metrics: {checked} counters of /metrics equal show summary's ({} samples parsed)",
        scrape.samples.len()
    );
}

/// Operating a running forwarder over its control socket, under traffic:
/// `ctl link` moves a circuit's flows to the other trunk; reloads (by
/// `ctl reload` and by SIGHUP) that remove and add back the Microsoft
/// peering lose no datagram of a UDP stream through the private one; a
/// configuration with errors changes nothing.
#[test]
fn reload_and_link_control_under_traffic() {
    let Some(_g) = serial("reload_and_link_control_under_traffic") else {
        return;
    };
    let mut lab = Lab::up("rl", Access::AfPacket, "0x8100");
    // The workers run SCHED_FIFO, as a forwarder that must not lose a
    // frame is run: on this shared 2-core box a normal-priority worker is
    // at times held off its core for longer than its receive ring holds at
    // a low packet rate (8 blocks, each retired after 1 ms), and the
    // kernel drops the excess whether a reload runs or not.
    lab.stop();
    lab.run_args = vec!["--worker-priority".into(), "10".into()];
    lab.pe_args = vec!["--metrics".into(), "127.0.0.1:9477".into()];
    lab.start("pe", "pe.toml", 0);
    lab.start("ms", "ms.toml", 1);
    ping_ok(&lab, "192.0.2.2");
    ping_ok(&lab, "198.51.100.2");

    // ctl link: either trunk held down moves the flows to the other one.
    for port in ["trunk-a", "trunk-b"] {
        let (lost, out) = ctl_link_loss(&mut lab, port);
        let gap = ping_outage(&out, Duration::from_millis(10));
        println!(
            "ctl link {port} down/up at 10 ms pings: {lost} lost, longest gap {} ms",
            gap.as_millis()
        );
        assert!(
            lost <= 10 && gap <= Duration::from_millis(100),
            "flows moved within 100 ms: lost {lost}, gap {gap:?}"
        );
    }

    // A bounded UDP stream through the private peering (unchanged by
    // every reload below): 1000 datagrams/s for 8 s.
    let server = lab.spawn("vnet", "iperf3 -s -1 -B 192.0.2.2", "reload-iperf-s");
    let end = Instant::now() + Duration::from_secs(5);
    while !text(&lab.exec("vnet", "ss -Hltn sport = :5201")).contains("5201") {
        assert!(Instant::now() < end, "iperf3 server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let client = lab.spawn(
        "cust",
        "iperf3 -c 192.0.2.2 -u -b 8M -l 1000 -t 8 -J",
        "reload-iperf-c",
    );
    std::thread::sleep(Duration::from_millis(800));
    let pe_toml = lab.dir.join("pe.toml");
    let original = fs::read_to_string(&pe_toml).unwrap();
    let summary = |lab: &Lab| lab.show("pe", "summary");

    // 1. The Microsoft peering removed (the last one of the file, with its
    // DSCP rules).
    let at = original
        .find("[[circuit.peering]]\nkind = \"microsoft\"")
        .unwrap();
    let without = original[..at].to_string();
    assert!(!without.contains("kind = \"microsoft\""), "{without}");
    fs::write(&pe_toml, &without).unwrap();
    let r = lab.ctl("pe", "reload");
    assert_eq!(r["ok"], true, "{r}");
    let changes = r["data"]["changes"].to_string();
    assert!(
        changes.contains("removed peering") && changes.contains("microsoft"),
        "{r}"
    );
    println!("reload 1: {}", r["data"]["message"]);
    let o = lab.exec("cust", "ping -c 2 -i 0.2 -W 1 198.51.100.2");
    assert_eq!(
        ping_counts(&text(&o)).1,
        0,
        "the removed peering forwards nothing"
    );

    // 2. A configuration with an error: refused with file:line, nothing
    // changes (generation, counters, the peering still gone).
    let before = summary(&lab);
    fs::write(&pe_toml, original.replace("tag = 200", "tag = 5000")).unwrap();
    let r = lab.ctl("pe", "reload");
    assert_eq!(r["ok"], false, "{r}");
    let e = r["error"].as_str().unwrap();
    assert!(
        e.contains("pe.toml:") && e.contains("nothing changed"),
        "{e}"
    );
    println!("reload 2 (broken): {}", e.lines().next().unwrap_or(""));
    let after = summary(&lab);
    assert_eq!(after["reloads"]["failed"], 1, "{after}");
    assert_eq!(after["reloads"]["ok"], 1, "{after}");
    let rx = |v: &serde_json::Value| -> u64 {
        v["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["rx_packets"].as_u64().unwrap())
            .sum()
    };
    assert!(
        rx(&after) >= rx(&before),
        "counters kept: {before} then {after}"
    );
    let o = lab.exec("cust", "ping -c 2 -i 0.2 -W 1 198.51.100.2");
    assert_eq!(ping_counts(&text(&o)).1, 0, "still the reloaded plan");

    // 3. The original back, by SIGHUP.
    fs::write(&pe_toml, &original).unwrap();
    let pid = lab
        .forwarders
        .iter()
        .find(|(r, _)| r == "pe")
        .unwrap()
        .1
        .id();
    signal(pid, libc::SIGHUP);
    let end = Instant::now() + Duration::from_secs(5);
    while summary(&lab)["reloads"]["ok"] != 2 {
        assert!(
            Instant::now() < end,
            "SIGHUP did not reload: {}",
            lab.read("pe.err")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        lab.read("pe.err").contains("added peering contoso"),
        "{}",
        lab.read("pe.err")
    );
    ping_ok(&lab, "198.51.100.2");

    // 4. Ports added and removed: the Microsoft peering moves to a new
    // access port (a new veth), and its old port is removed.
    let (pe, cust) = (lab.ns("pe"), lab.ns("cust"));
    for cmd in [
        format!("ip -n {pe} link add xc-pe-ms2 type veth peer name cust-ms2 netns {cust}"),
        format!("ip -n {pe} link set xc-pe-ms2 up"),
        format!("ip netns exec {cust} ethtool -K cust-ms2 tx off tso off gso off gro off"),
        format!("ip -n {cust} link set cust-ms2 up"),
        format!("ip -n {cust} addr del 198.51.100.1/30 dev cust-ms"),
        format!("ip -n {cust} addr add 198.51.100.1/30 dev cust-ms2"),
    ] {
        let o = run(&cmd);
        assert!(o.status.success(), "{cmd}: {}", text(&o));
    }
    let packet_sockets = |iface: &str| -> usize {
        let index = text(&lab.exec("pe", &format!("cat /sys/class/net/{iface}/ifindex")));
        let index = index.trim();
        text(&lab.exec("pe", "cat /proc/net/packet"))
            .lines()
            .skip(1)
            .filter(|l| l.split_whitespace().nth(4) == Some(index))
            .count()
    };
    assert!(packet_sockets("xc-pe-ms") > 0);
    let moved = original
        .replacen(
            "name = \"cust-microsoft\"\ninterface = \"xc-pe-ms\"",
            "name = \"cust-microsoft-2\"\ninterface = \"xc-pe-ms2\"",
            1,
        )
        .replace("port = \"cust-microsoft\"", "port = \"cust-microsoft-2\"");
    assert_ne!(moved, original);
    fs::write(&pe_toml, &moved).unwrap();
    let r = lab.ctl("pe", "reload");
    assert_eq!(r["ok"], true, "{r}");
    let ports = r["data"]["ports"].to_string();
    println!("reload 4 (ports): {}", r["data"]["ports"]);
    assert!(
        ports.contains("cust-microsoft-2 (xc-pe-ms2, af_packet) added as port 4")
            && ports.contains("port cust-microsoft-2: up")
            && ports.contains("cust-microsoft (xc-pe-ms, af_packet) removed"),
        "{r}"
    );
    ping_ok(&lab, "198.51.100.2");
    let p = lab.show("pe", "ports");
    let by_name = |p: &serde_json::Value, n: &str| {
        p.as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == n)
            .cloned()
            .unwrap_or_else(|| panic!("no port {n}: {p}"))
    };
    let added = by_name(&p, "cust-microsoft-2");
    assert!(
        added["up"] == true && added["rx_packets"].as_u64().unwrap() >= 3,
        "{p}"
    );
    let removed = by_name(&p, "cust-microsoft");
    assert!(removed["removed"] == true && removed["up"] == false, "{p}");
    assert!(
        removed["rx_packets"].as_u64().unwrap() > 0,
        "counters kept: {p}"
    );
    assert_eq!(
        packet_sockets("xc-pe-ms"),
        0,
        "the removed port's sockets closed"
    );
    assert!(packet_sockets("xc-pe-ms2") > 0);

    // 5. And back: the old port opened again under its old id, the new one
    // removed.
    for cmd in [
        format!("ip -n {cust} addr del 198.51.100.1/30 dev cust-ms2"),
        format!("ip -n {cust} addr add 198.51.100.1/30 dev cust-ms"),
    ] {
        let o = run(&cmd);
        assert!(o.status.success(), "{cmd}: {}", text(&o));
    }
    fs::write(&pe_toml, &original).unwrap();
    let r = lab.ctl("pe", "reload");
    assert_eq!(r["ok"], true, "{r}");
    let ports = r["data"]["ports"].to_string();
    println!("reload 5 (ports): {}", r["data"]["ports"]);
    assert!(
        ports.contains("cust-microsoft (xc-pe-ms, af_packet) added as port 1")
            && ports.contains("port cust-microsoft: up")
            && ports.contains("cust-microsoft-2 (xc-pe-ms2, af_packet) removed"),
        "{r}"
    );
    ping_ok(&lab, "198.51.100.2");
    assert_eq!(packet_sockets("xc-pe-ms2"), 0);
    assert!(packet_sockets("xc-pe-ms") > 0);

    reap(&mut lab.helpers[client], Duration::from_secs(15));
    reap(&mut lab.helpers[server], Duration::from_secs(5));
    let out = lab.read("reload-iperf-c.out");
    let v: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("iperf3 JSON: {e}: {out}"));
    let sum = &v["end"]["sum"];
    let (sent, lost) = (
        sum["packets"].as_u64().unwrap_or(0),
        sum["lost_packets"].as_u64().unwrap_or(u64::MAX),
    );
    println!("UDP through the unchanged private peering across 5 reloads (1 refused, 2 adding and removing ports): {sent} datagrams, {lost} lost");
    metrics_equal_show(&lab);
    let finals = lab.stop();
    for (role, v) in &finals {
        assert_eq!(v["final"], true, "{role}: {v}");
        let kd: Vec<String> = v["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| format!("{}={}", p["name"].as_str().unwrap(), p["kernel_drops"]))
            .collect();
        let drops: Vec<String> = v["drops"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, n)| n.as_u64() != Some(0))
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        println!(
            "{role}: kernel drops {}; drops {}",
            kd.join(" "),
            drops.join(" ")
        );
    }
    assert!(sent >= 4000, "the stream ran: {out}");
    assert_eq!(
        lost, 0,
        "no datagram of the unchanged attachment lost: {sum}"
    );
}

/// Host interfaces on the private peering of both forwarders: the hosts'
/// kernels resolve each other over the cross-connect (their ARP through
/// the data planes) and hold a TCP session and pings across it — what
/// BGP and BFD between routing daemons on the two sides need — while the
/// data planes keep answering their own ARP and echo.
#[test]
fn host_interfaces_carry_sessions_between_the_two_sides() {
    let Some(_g) = serial("host_interfaces") else {
        return;
    };
    fn host(names: [&'static str; 3], netns: String) -> impl FnOnce(String) -> String {
        move |t: String| {
            let at = "peer_asn = 65536";
            assert!(t.contains(at));
            t.replacen(
                at,
                &format!(
                    "{at}\nhost = {{ netns = \"{netns}\", access = \"{}\", primary = \"{}\", \
                     secondary = \"{}\" }}",
                    names[0], names[1], names[2]
                ),
                1,
            )
        }
    }
    // The hosts' namespaces (where FRR would run), made and removed here.
    let prefix = format!("xt{}hi-", std::process::id() % 10_000);
    let hosts = HostNamespaces::new([format!("{prefix}peh"), format!("{prefix}msh")]);
    let mut lab = Lab::up_l3_with(
        "hi",
        host(["xh-pe-a", "xh-pe-1", "xh-pe-2"], hosts.0[0].clone()),
        host(["xh-ms-a", "xh-ms-1", "xh-ms-2"], hosts.0[1].clone()),
    );
    let o = lab.exec("cust", "ping -c 3 -i 0.2 -W 2 198.51.100.130");
    assert_eq!(ping_counts(&text(&o)), (3, 3), "routed first: {}", text(&o));
    // Each side's TAP has its forwarder's address and MAC on the link.
    let o = lab.exec("peh", "ip -br addr show dev xh-pe-1");
    assert!(text(&o).contains("192.0.2.1/30"), "{}", text(&o));
    let o = lab.exec("msh", "ip -br addr show dev xh-ms-2");
    assert!(text(&o).contains("192.0.2.6/30"), "{}", text(&o));
    // Host to host over each trunk, both ways resolved by the hosts.
    for (dst, dev) in [("192.0.2.2", "xh-pe-1"), ("192.0.2.6", "xh-pe-2")] {
        let o = lab.exec("peh", &format!("ping -c 3 -i 0.2 -W 2 -I {dev} {dst}"));
        assert_eq!(
            ping_counts(&text(&o)),
            (3, 3),
            "{dst} via {dev}: {}",
            text(&o)
        );
    }
    let o = lab.exec("msh", "ping -6 -c 3 -i 0.2 -W 2 -I xh-ms-1 2001:db8:0:1::1");
    assert_eq!(ping_counts(&text(&o)), (3, 3), "IPv6: {}", text(&o));
    // A TCP session (as BGP's) between the two hosts across trunk A.
    let id = lab.spawn("msh", "iperf3 -s -1 -B 192.0.2.2", "iperf-host");
    let end = Instant::now() + Duration::from_secs(5);
    while !text(&lab.exec("msh", "ss -Hltn sport = :5201")).contains("5201") {
        assert!(Instant::now() < end, "iperf3 server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = lab.exec("peh", "iperf3 -c 192.0.2.2 -B 192.0.2.1 -t 1 -J");
    reap(&mut lab.helpers[id], Duration::from_secs(5));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("iperf3 JSON: {e}: {}", text(&o)));
    let mbps = v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or(0.0)
        / 1e6;
    assert!(mbps > 1.0, "TCP between the host interfaces: {mbps} Mbit/s");
    println!("host interfaces: TCP {mbps:.0} Mbit/s between the two sides' hosts");
    // Customer traffic is still routed by the data planes.
    let o = lab.exec("cust", "ping -c 3 -i 0.2 -W 2 198.51.100.130");
    let routed = ping_counts(&text(&o));
    let finals = lab.stop();
    assert_eq!(routed, (3, 3), "routed: {}\n{finals:?}", text(&o));
    for (role, v) in &finals {
        let l3 = &v["l3"];
        assert!(l3["punted_arp"].as_u64().unwrap_or(0) > 0, "{role}: {v}");
        assert!(l3["punted_ip"].as_u64().unwrap_or(0) > 0, "{role}: {v}");
        assert!(l3["routed"].as_u64().unwrap_or(0) > 0, "{role}: {v}");
        // The bulk TCP stream is held to the punt rate (10,000 frames/s
        // per worker); BGP and BFD are far below it.
        println!(
            "{role}: punted arp {} nd {} ip {}, over the punt rate {}",
            l3["punted_arp"], l3["punted_nd"], l3["punted_ip"], v["drops"]["punt-limited"]
        );
    }
}

/// One FRR instance (zebra, bgpd, bfdd) in a namespace, from an
/// integrated file of `xconnect frr-config`; stopped by the PIDs in its pid
/// files when dropped.
struct Frr {
    ns: String,
    pathspace: String,
    dir: PathBuf,
}

impl Frr {
    fn start(ns: &str, pathspace: &str, dir: PathBuf, conf: &Path) -> Frr {
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        // The daemons drop to user frr and write their sockets here.
        run(&format!("chmod 0777 {}", dir.display()));
        let frr = Frr {
            ns: ns.to_string(),
            pathspace: pathspace.to_string(),
            dir,
        };
        for d in ["zebra", "bgpd", "bfdd"] {
            frr.start_daemon(d);
        }
        let o = frr.vtysh(&format!("-f {}", conf.display()));
        assert!(
            o.status.success(),
            "vtysh -f {}: {}",
            conf.display(),
            text(&o)
        );
        frr
    }

    /// Start daemon `d` (`zebra`, `bgpd`, `bfdd`) with an empty
    /// configuration; it writes its PID to `<dir>/<d>.pid`.
    fn start_daemon(&self, d: &str) {
        let extra = match d {
            "zebra" => "-M dplane_fpm_nl".to_string(),
            "bfdd" => format!("--bfdctl {}/bfdd.sock", self.dir.display()),
            _ => String::new(),
        };
        let o = run(&format!(
            "ip netns exec {ns} timeout 10 /usr/lib/frr/{d} -d -N {pathspace} {extra} \
             --vty_socket {dir} -i {dir}/{d}.pid -f /dev/null",
            ns = self.ns,
            pathspace = self.pathspace,
            dir = self.dir.display()
        ));
        assert!(o.status.success(), "{d} in {}: {}", self.ns, text(&o));
    }

    /// The PID of daemon `d` from its pid file.
    fn pid(&self, d: &str) -> Option<u32> {
        fs::read_to_string(self.dir.join(format!("{d}.pid")))
            .ok()
            .and_then(|p| p.trim().parse().ok())
    }

    fn vtysh(&self, args: &str) -> Output {
        run(&format!(
            "ip netns exec {} timeout 10 vtysh --vty_socket {} {args}",
            self.ns,
            self.dir.display()
        ))
    }

    /// `show bgp summary json`'s peers of `family` (`ipv4Unicast`, …):
    /// address → state.
    fn peers(&self, family: &str) -> Vec<(String, String)> {
        let o = self.vtysh("-c 'show bgp summary json'");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        v[family]["peers"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, p)| (k.clone(), p["state"].as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Frr {
    fn drop(&mut self) {
        for d in ["bfdd", "bgpd", "zebra"] {
            if let Some(pid) = self.pid(d) {
                signal(pid, libc::SIGTERM);
            }
        }
        std::thread::sleep(Duration::from_millis(300));
        let _ = fs::remove_dir_all(&self.dir);
        // zebra's zserv.api socket directory of this pathspace.
        let _ = fs::remove_dir_all(Path::new("/var/run/frr").join(&self.pathspace));
    }
}

/// The lab speaks BGP: both forwarders of the l3 lab get host interfaces
/// on their private peering, FRR (configured by `xconnect frr-config`)
/// runs in each side's host namespace, and its eBGP sessions (IPv4 and
/// IPv6, on both links, with BFD) come up across the cross-connect and
/// exchange the announced prefixes with two paths (ECMP over the trunks).
#[test]
fn bgp_sessions_establish_over_host_interfaces() {
    let Some(_g) = serial("bgp") else { return };
    let Some((prefix, hosts)) = bgp_hosts("bg") else {
        return;
    };
    let lab = Lab::up_l3_with(
        "bg",
        bgp_peering(
            ["xb-pe-a", "xb-pe-1", "xb-pe-2"],
            hosts.0[0].clone(),
            "203.0.113.0/30",
            false,
        ),
        bgp_peering(
            ["xb-ms-a", "xb-ms-1", "xb-ms-2"],
            hosts.0[1].clone(),
            "198.51.100.128/30",
            false,
        ),
    );
    let frrs = [
        start_frr(&lab, "pe", &hosts.0[0], &format!("{prefix}pe")),
        start_frr(&lab, "ms", &hosts.0[1], &format!("{prefix}ms")),
    ];
    // Both sides are configured now: skip the connect-retry wait of a
    // first attempt that met an unconfigured peer.
    let _ = frrs[0].vtysh("-c 'clear bgp *'");
    let t = wait_established(&frrs[0], Duration::from_secs(40));
    println!(
        "bgp: 4 sessions (v4, v6 on both trunks) established in {:.1} s",
        t.as_secs_f64()
    );
    // The MSEE's announced prefix arrives by both links (multipath).
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        let o = frrs[0].vtysh("-c 'show bgp ipv4 unicast 198.51.100.128/30 json'");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        let paths = v["paths"].as_array().map_or(0, |p| p.len());
        if paths == 2 {
            break;
        }
        assert!(
            Instant::now() < end,
            "198.51.100.128/30 on the provider edge: {}",
            text(&o)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // BFD (300 ms x 3) up on all four sessions, seen from both sides.
    let end = Instant::now() + Duration::from_secs(10);
    for f in &frrs {
        loop {
            let o = f.vtysh("-c 'show bfd peers brief'");
            if text(&o).matches(" up ").count() == 4 {
                break;
            }
            assert!(Instant::now() < end, "BFD sessions: {}", text(&o));
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    drop(frrs);
    drop(lab);
}

/// The BGP tests' preconditions and the two hosts' namespaces (lo up):
/// `None` (skip, with a message) when FRR is missing outside CI; under
/// `CI=true` a missing FRR fails. Returns the namespace prefix too.
fn bgp_hosts(tag: &str) -> Option<(String, HostNamespaces)> {
    bgp_hosts_named(tag, &["peh", "msh"])
}

/// [`bgp_hosts`] with one host namespace per name (`<prefix><name>`).
fn bgp_hosts_named(tag: &str, names: &[&str]) -> Option<(String, HostNamespaces)> {
    if !Path::new("/usr/lib/frr/bgpd").exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "FRR is missing (scripts/test.sh installs it as root)"
        );
        println!("skipped: FRR is not installed (/usr/lib/frr/bgpd; apt-get install frr)");
        return None;
    }
    let prefix = format!("xt{}{tag}-", std::process::id() % 10_000);
    let hosts = HostNamespaces::new(names.iter().map(|n| format!("{prefix}{n}")));
    for n in &hosts.0 {
        run(&format!("ip -n {n} link set lo up"));
    }
    Some((prefix, hosts))
}

/// The private peering of a lab configuration with host interfaces
/// `names` in `netns`, an `announce`d prefix, BGP timers 3/9 s; with
/// `fpm`, an FPM listener in `netns` (where the peering's zebra runs) and
/// no static routes (every route then comes from BGP).
fn bgp_peering(
    names: [&'static str; 3],
    netns: String,
    announce: &'static str,
    fpm: bool,
) -> impl FnOnce(String) -> String {
    move |t: String| {
        let at = "peer_asn = 65536";
        let pos = t.find(at).expect("the private peering");
        let mut t = t;
        if fpm {
            let start = pos + t[pos..].find("routes = [\n").expect("static routes");
            let end = start + t[start..].find("\n]\n").expect("end of routes") + 3;
            t.replace_range(start..end, "");
        }
        let fpm_keys = if fpm {
            format!("\nfpm = \"127.0.0.1:2620\"\nfpm_netns = \"{netns}\"")
        } else {
            String::new()
        };
        t.replacen(
            at,
            &format!(
                "{at}\nhost = {{ netns = \"{netns}\", access = \"{}\", primary = \"{}\", \
                 secondary = \"{}\" }}\nannounce = [\"{announce}\"]\nbgp_keepalive_s = 3\n\
                 bgp_hold_s = 9{fpm_keys}",
                names[0], names[1], names[2]
            ),
            1,
        )
    }
}

/// Start FRR for the private peering of `role` (`pe`, `ms`) of `lab` in
/// namespace `ns`, configured by `xconnect frr-config`.
fn start_frr(lab: &Lab, role: &str, ns: &str, pathspace: &str) -> Frr {
    start_frr_for(lab, role, "private", ns, pathspace)
}

/// [`start_frr`] for the peering of `kind` (`private`, `microsoft`).
fn start_frr_for(lab: &Lab, role: &str, kind: &str, ns: &str, pathspace: &str) -> Frr {
    let out = lab.dir.join(format!("frr-{role}-{kind}"));
    let o = run(&format!(
        "{XCONNECT} frr-config {} --peering contoso-ams/{kind} --output {}",
        lab.dir.join(format!("{role}.toml")).display(),
        out.display()
    ));
    assert!(o.status.success(), "frr-config {role} {kind}: {}", text(&o));
    Frr::start(
        ns,
        pathspace,
        lab.dir.join(format!("frr-run-{role}-{kind}")),
        &out.join(format!("contoso-ams-{kind}.conf")),
    )
}

/// Wait (at most `limit`) until `frr` has its four sessions established.
fn wait_established(frr: &Frr, limit: Duration) -> Duration {
    wait_sessions(frr, &["ipv4Unicast", "ipv6Unicast"], limit)
}

/// Wait (at most `limit`) until `frr` has both links' sessions of each
/// of `families` (`ipv4Unicast`, `ipv6Unicast`) established.
fn wait_sessions(frr: &Frr, families: &[&str], limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let peers: Vec<Vec<(String, String)>> = families.iter().map(|f| frr.peers(f)).collect();
        let up = |p: &[(String, String)]| p.len() == 2 && p.iter().all(|(_, s)| s == "Established");
        if peers.iter().all(|p| up(p)) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{}: sessions not established in {limit:?}: {families:?} {peers:?}\n{}",
            frr.ns,
            text(&frr.vtysh("-c 'show bgp summary'"))
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Routes learned by FRR reach the forwarders' tables over FPM: with no
/// static route on the private peering, the customer reaches the VNet
/// host only once BGP has run, and a prefix withdrawn in BGP stops being
/// forwarded.
#[test]
fn bgp_routes_reach_the_data_plane_over_fpm() {
    let Some(_g) = serial("bgp") else { return };
    let Some((prefix, hosts)) = bgp_hosts("bf") else {
        return;
    };
    let lab = Lab::up_l3_with(
        "bf",
        bgp_peering(
            ["xf-pe-a", "xf-pe-1", "xf-pe-2"],
            hosts.0[0].clone(),
            "203.0.113.0/30",
            true,
        ),
        bgp_peering(
            ["xf-ms-a", "xf-ms-1", "xf-ms-2"],
            hosts.0[1].clone(),
            "198.51.100.128/30",
            true,
        ),
    );
    // No route yet: nothing reaches the VNet host.
    let o = lab.exec("cust", "ping -c 1 -W 1 198.51.100.130");
    assert_eq!(ping_counts(&text(&o)).1, 0, "before BGP: {}", text(&o));
    let frrs = [
        start_frr(&lab, "pe", &hosts.0[0], &format!("{prefix}pe")),
        start_frr(&lab, "ms", &hosts.0[1], &format!("{prefix}ms")),
    ];
    let _ = frrs[0].vtysh("-c 'clear bgp *'");
    let t = wait_established(&frrs[0], Duration::from_secs(40));
    println!(
        "bgp over fpm: sessions established in {:.1} s",
        t.as_secs_f64()
    );
    // Routes arrive over FPM on both sides: the customer reaches the VNet.
    let started = Instant::now();
    loop {
        let o = lab.exec("cust", "ping -c 1 -W 1 198.51.100.130");
        if ping_counts(&text(&o)).1 == 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no forwarding 20 s after the sessions came up: {}\npe routes: {}",
            text(&o),
            text(&frrs[0].vtysh("-c 'show ip route'"))
        );
    }
    println!(
        "bgp over fpm: traffic flows {:.1} s after the sessions came up",
        started.elapsed().as_secs_f64()
    );
    let o = lab.exec("cust", "ping -c 5 -i 0.2 -W 2 198.51.100.130");
    assert_eq!(ping_counts(&text(&o)), (5, 5), "{}", text(&o));
    // The MSEE withdraws the VNet prefix: forwarding to it stops.
    let o = frrs[1].vtysh(
        "-c 'configure terminal' -c 'router bgp 12076' -c 'address-family ipv4 unicast' \
         -c 'no network 198.51.100.128/30'",
    );
    assert!(o.status.success(), "withdraw: {}", text(&o));
    let started = Instant::now();
    loop {
        let o = lab.exec("cust", "ping -c 1 -W 1 198.51.100.130");
        if text(&o).contains("Unreachable") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the withdrawn prefix is still forwarded: {}",
            text(&o)
        );
    }
    println!(
        "bgp over fpm: withdrawn prefix unreachable after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    drop(frrs);
    drop(lab);
}

/// Network namespaces a test makes (`ip netns add`) and removes when it
/// ends, passed or failed.
struct HostNamespaces(Vec<String>);

impl HostNamespaces {
    fn new(names: impl IntoIterator<Item = String>) -> HostNamespaces {
        let names: Vec<String> = names.into_iter().collect();
        for n in &names {
            let _ = run(&format!("ip netns del {n} 2>/dev/null"));
            let o = run(&format!("ip netns add {n}"));
            assert!(o.status.success(), "ip netns add {n}: {}", text(&o));
        }
        HostNamespaces(names)
    }
}

impl Drop for HostNamespaces {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = run(&format!("ip netns del {n}"));
        }
    }
}

/// The link messages (`xconnect: link …`) `role` logged so far.
fn link_log(lab: &Lab, role: &str) -> Vec<String> {
    lab.read(&format!("{role}.err"))
        .lines()
        .filter_map(|l| l.strip_prefix("xconnect: "))
        .filter(|l| l.starts_with("link "))
        .map(str::to_string)
        .collect()
}

/// Wait (at most `limit`) until `role` logs, after its first `from`
/// link messages, one that `want` accepts; returns its position.
fn wait_link_log(
    lab: &Lab,
    role: &str,
    from: usize,
    limit: Duration,
    want: impl Fn(&str) -> bool,
) -> usize {
    let end = Instant::now() + limit;
    loop {
        let log = link_log(lab, role);
        if let Some(i) = log.iter().skip(from).position(|l| want(l)) {
            return from + i;
        }
        assert!(
            Instant::now() < end,
            "{role}: the awaited link message did not come within {limit:?}; link log:\n{}",
            log.join("\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The ifindex and MTU of `dev` in the lab namespace `ns`.
fn link_of(lab: &Lab, ns: &str, dev: &str) -> (u32, u32) {
    let o = lab.exec(ns, &format!("ip -o link show dev {dev}"));
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    let index = t.split(':').next().and_then(|i| i.trim().parse().ok());
    let mtu = t
        .split_whitespace()
        .skip_while(|w| *w != "mtu")
        .nth(1)
        .and_then(|m| m.parse().ok());
    match (index, mtu) {
        (Some(i), Some(m)) => (i, m),
        _ => panic!("ip link show {dev}: {t}"),
    }
}

/// Issue #15: a trunk deleted and created again under the same name (a veth
/// pair re-created) must carry traffic again — the sockets of its port
/// reopened on the new interface, the link down until then — and while it
/// is gone its flows take the other trunk. The provider edge runs two
/// workers (one fanout group per port), the MSEE one.
#[test]
fn trunk_recreated_under_the_same_name_carries_traffic_again() {
    let Some(_g) = serial("trunk_recreated_under_the_same_name_carries_traffic_again") else {
        return;
    };
    let mut lab = Lab::up_with("rc", Access::AfPacket, "0x8100", |_| {
        vec!["--workers".into(), "2".into()]
    });
    ping_ok(&lab, "192.0.2.2");
    ping_ok(&lab, "198.51.100.2");
    let (pe_old, mtu) = link_of(&lab, "pe", "xc-pe-tra");
    let (ms_old, _) = link_of(&lab, "ms", "xc-ms-tra");
    let (pe_mark, ms_mark) = (link_log(&lab, "pe").len(), link_log(&lab, "ms").len());

    // Delete the pair: both ends go, both forwarders take trunk-a down.
    let o = lab.exec("pe", "ip link del xc-pe-tra");
    assert!(o.status.success(), "{}", text(&o));
    let limit = Duration::from_secs(5);
    let down = |dev: &'static str| {
        move |l: &str| l.starts_with(&format!("link trunk-a ({dev})")) && l.ends_with("down")
    };
    let pe_down = wait_link_log(&lab, "pe", pe_mark, limit, down("xc-pe-tra"));
    let ms_down = wait_link_log(&lab, "ms", ms_mark, limit, down("xc-ms-tra"));
    // Meanwhile every flow takes trunk-b.
    ping_ok(&lab, "192.0.2.2");
    ping_ok(&lab, "198.51.100.2");

    // Create it again under the same names, with the lab's MTU.
    let o = lab.exec(
        "pe",
        &format!(
            "ip link add xc-pe-tra mtu {mtu} type veth peer name xc-ms-tra netns {} mtu {mtu}",
            lab.ns("ms")
        ),
    );
    assert!(o.status.success(), "{}", text(&o));
    for (ns, dev) in [("pe", "xc-pe-tra"), ("ms", "xc-ms-tra")] {
        let o = lab.exec(ns, &format!("ip link set {dev} up"));
        assert!(o.status.success(), "{}", text(&o));
    }
    let (pe_new, _) = link_of(&lab, "pe", "xc-pe-tra");
    let (ms_new, _) = link_of(&lab, "ms", "xc-ms-tra");
    assert!(pe_new != pe_old && ms_new != ms_old, "new interfaces");
    let up = |dev: &'static str| {
        move |l: &str| l.starts_with(&format!("link trunk-a ({dev})")) && l.ends_with("up")
    };
    let pe_up = wait_link_log(&lab, "pe", pe_down + 1, limit, up("xc-pe-tra"));
    let ms_up = wait_link_log(&lab, "ms", ms_down + 1, limit, up("xc-ms-tra"));

    // 100 tagged frames (S-tag 100, C-tag 300: the Microsoft peering) into
    // the re-created trunk from the MSEE end: the provider edge receives
    // them on both workers' queues and hands every one to cust-ms.
    let cap = lab.capture("cust", &["cust-ms"], "udp and dst port 9", |lab| {
        let o = lab.exec(
            "ms",
            &format!(
                "{XCONNECT} gen xc-ms-tra --vlan 100,300 --count 100 --flows 16 \
                 --duration 5 --core none"
            ),
        );
        assert!(o.status.success(), "gen: {}", text(&o));
    });
    let received = cap.matches("> 198.51.100.2.9:").count();
    assert_eq!(
        received,
        100,
        "tagged frames sent into the re-created trunk and received at cust-ms; \
         provider edge link log:\n{}",
        link_log(&lab, "pe").join("\n")
    );

    // Both forwarders send on it again: with trunk-b down every flow takes
    // trunk-a, both ways.
    let (pe_mark, ms_mark) = (link_log(&lab, "pe").len(), link_log(&lab, "ms").len());
    let o = lab.exec("pe", "ip link set xc-pe-trb down");
    assert!(o.status.success(), "{}", text(&o));
    let b_down = |dev: &'static str| move |l: &str| l == format!("link trunk-b ({dev}) down");
    wait_link_log(&lab, "pe", pe_mark, limit, b_down("xc-pe-trb"));
    wait_link_log(&lab, "ms", ms_mark, limit, b_down("xc-ms-trb"));
    ping_ok(&lab, "192.0.2.2");
    ping_ok(&lab, "198.51.100.2");
    let o = lab.exec("pe", "ip link set xc-pe-trb up");
    assert!(o.status.success(), "{}", text(&o));

    // The log tells the story: gone (old ifindex) → reopening (new) → up
    // (a deleted veth is first set down: a plain "down" may come first).
    for (role, dev, old, new, workers, from, up) in [
        (
            "pe",
            "xc-pe-tra",
            pe_old,
            pe_new,
            "2 workers",
            pe_down,
            pe_up,
        ),
        (
            "ms",
            "xc-ms-tra",
            ms_old,
            ms_new,
            "1 worker",
            ms_down,
            ms_up,
        ),
    ] {
        let log = link_log(&lab, role);
        let name = format!("link trunk-a ({dev})");
        // Reopened: up at once when the new interface already has its
        // carrier, else "down" and then up when the carrier comes.
        let reopened = format!("{name} reopened on ifindex {new} by {workers}: ");
        let mut story = vec![
            format!("{name} gone (ifindex {old}): down"),
            format!("{name} is back as ifindex {new}: reopening"),
        ];
        let carrier_later = log[from..=up].contains(&format!("{reopened}down"));
        if carrier_later {
            story.extend([format!("{reopened}down"), format!("{name} up")]);
        } else {
            story.push(format!("{reopened}up"));
        }
        let mut at = from;
        for line in &story {
            at += log[at..=up]
                .iter()
                .position(|l| l == line)
                .unwrap_or_else(|| {
                    panic!("{role}: {line:?} in order:\n{}", log[from..=up].join("\n"))
                });
        }
        assert_eq!(at, up, "{role}: up last");
        println!("{role}: {}", log[from..=up].join(" → "));
    }
    for (role, v) in lab.stop() {
        let trunk_a = &v["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "trunk-a")
            .unwrap_or_else(|| panic!("{role}: {v}"))
            .clone();
        assert_eq!(trunk_a["up"], true, "{role}: {v}");
        assert_eq!(v["drops"]["malformed"], 0, "{role}: {v}");
        if role == "pe" {
            assert!(trunk_a["rx_packets"].as_u64().unwrap_or(0) >= 100, "{v}");
        }
    }
}

/// One BIRD in a namespace, stopped by its PID when dropped.
struct Bird {
    ns: String,
    sock: PathBuf,
    pid_file: PathBuf,
}

impl Bird {
    fn start(ns: &str, dir: &Path, conf: &str) -> Bird {
        fs::create_dir_all(dir).unwrap();
        let file = dir.join("bird.conf");
        fs::write(&file, conf).unwrap();
        let bird = Bird {
            ns: ns.to_string(),
            sock: dir.join("bird.ctl"),
            pid_file: dir.join("bird.pid"),
        };
        let o = run(&format!(
            "ip netns exec {ns} timeout 10 bird -c {} -s {} -P {}",
            file.display(),
            bird.sock.display(),
            bird.pid_file.display()
        ));
        assert!(o.status.success(), "bird in {ns}: {}", text(&o));
        bird
    }

    fn birdc(&self, cmd: &str) -> String {
        text(&run(&format!(
            "ip netns exec {} timeout 10 birdc -s {} {cmd}",
            self.ns,
            self.sock.display()
        )))
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        if let Ok(pid) = fs::read_to_string(&self.pid_file) {
            if let Ok(pid) = pid.trim().parse::<u32>() {
                signal(pid, libc::SIGTERM);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The provider edge's BIRD: eBGP (AS 65536) to both MSEEs over the host
/// interfaces, IPv4 and IPv6 (no BFD: BIRD 2.0.12 and FRR 8.4's bfdd
/// did not bring a session up between them in this lab, and BIRD then
/// holds BGP down; the FRR-to-FRR tests cover BFD); what it learns goes
/// into kernel table 100 of its namespace (ECMP merged), which xconnect
/// follows.
fn pe_bird_conf() -> String {
    let mut c = String::from(
        "router id 192.0.2.1;\n\
         protocol device { scan time 2; }\n\
         protocol kernel k4 { kernel table 100; merge paths on; \
         ipv4 { import none; export where source = RTS_BGP; }; }\n\
         protocol kernel k6 { kernel table 100; merge paths on; \
         ipv6 { import none; export where source = RTS_BGP; }; }\n",
    );
    for (local, peer, family) in [
        ("192.0.2.1", "192.0.2.2", "ipv4"),
        ("192.0.2.5", "192.0.2.6", "ipv4"),
        ("2001:db8:0:1::1", "2001:db8:0:1::2", "ipv6"),
        ("2001:db8:0:1::5", "2001:db8:0:1::6", "ipv6"),
    ] {
        let extra = if family == "ipv6" {
            " next hop prefer global;"
        } else {
            ""
        };
        c.push_str(&format!(
            "protocol bgp {{ local {local} as 65536; neighbor {peer} as 12076; direct; \
             hold time 9; keepalive time 3; connect retry time 2; \
             {family} {{ import all; export none;{extra} }}; }}\n"
        ));
    }
    c
}

/// The second route source: the provider edge's private peering follows
/// kernel table 100 of its host namespace, where BIRD (not FRR) installs
/// what it learns over BGP from the MSEE's FRR. No static routes: the
/// customer reaches the VNet only once BIRD's routes are in the table,
/// over both trunks (ECMP); a route added to the table by hand is followed
/// too; and a prefix the MSEE withdraws stops being forwarded.
#[test]
fn bird_routes_reach_the_data_plane_through_a_kernel_table() {
    let Some(_g) = serial("bird") else { return };
    if !Path::new("/usr/sbin/bird").exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "BIRD is missing (scripts/test.sh installs bird2 as root)"
        );
        println!("skipped: BIRD is not installed (/usr/sbin/bird; apt-get install bird2)");
        return;
    }
    let Some((prefix, hosts)) = bgp_hosts("bd") else {
        return;
    };
    let pe_ns = hosts.0[0].clone();
    let pe = {
        let edit = bgp_peering(
            ["xd-pe-a", "xd-pe-1", "xd-pe-2"],
            pe_ns.clone(),
            "203.0.113.0/30",
            true,
        );
        let ns = pe_ns.clone();
        move |t: String| {
            let t = edit(t);
            let fpm = format!("fpm = \"127.0.0.1:2620\"\nfpm_netns = \"{ns}\"");
            assert!(t.contains(&fpm), "{t}");
            t.replacen(
                &fpm,
                &format!("kernel_table = 100\nkernel_netns = \"{ns}\""),
                1,
            )
        }
    };
    let ms = {
        let edit = bgp_peering(
            ["xd-ms-a", "xd-ms-1", "xd-ms-2"],
            hosts.0[1].clone(),
            "198.51.100.128/30",
            false,
        );
        // The VNet's IPv6 subnet is announced too.
        move |t: String| {
            edit(t).replacen(
                "announce = [\"198.51.100.128/30\"]",
                "announce = [\"198.51.100.128/30\", \"2001:db8:ff:1::/126\"]",
                1,
            )
        }
    };
    let lab = Lab::up_l3_with("bd", pe, ms);
    let o = lab.exec("cust", "ping -c 1 -W 1 198.51.100.130");
    assert_eq!(ping_counts(&text(&o)).1, 0, "before BGP: {}", text(&o));
    let ms = start_frr(&lab, "ms", &hosts.0[1], &format!("{prefix}ms"));
    let bird = Bird::start(&pe_ns, &lab.dir.join("bird"), &pe_bird_conf());
    // BIRD's four sessions (IPv4 and IPv6 on both trunks) to the MSEE.
    let started = Instant::now();
    loop {
        let p = bird.birdc("show protocols");
        if p.matches("Established").count() == 4 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "BIRD sessions: {p}\nMSEE: {}",
            text(&ms.vtysh("-c 'show bgp summary'"))
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    println!(
        "bird: 4 sessions established in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // Both paths in table 100, then traffic through the provider edge.
    let started = Instant::now();
    loop {
        let o = lab.exec("cust", "ping -c 1 -W 1 198.51.100.130");
        if ping_counts(&text(&o)).1 == 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no forwarding 20 s after the sessions came up: {}\ntable 100: {}\nbird: {}",
            text(&o),
            text(&run(&format!("ip -n {pe_ns} route show table 100"))),
            bird.birdc("show route")
        );
    }
    println!(
        "bird: traffic flows {:.1} s after the sessions came up",
        started.elapsed().as_secs_f64()
    );
    let t100 = text(&run(&format!("ip -n {pe_ns} route show table 100")));
    assert!(
        t100.contains("198.51.100.128/30") && t100.matches("nexthop via").count() >= 2,
        "ECMP route in table 100: {t100}"
    );
    let o = lab.exec("cust", "ping -c 5 -i 0.2 -W 2 198.51.100.130");
    assert_eq!(ping_counts(&text(&o)), (5, 5), "{}", text(&o));
    let o = lab.exec("cust", "ping -6 -c 3 -i 0.2 -W 2 2001:db8:ff:1::2");
    assert_eq!(ping_counts(&text(&o)), (3, 3), "IPv6: {}", text(&o));
    // The running forwarder shows what it took from table 100.
    let v = lab.show("pe", "routes private 198.51.100.130");
    assert_eq!(v[0]["routes"][0]["prefix"], "198.51.100.128/30", "{v}");
    assert_eq!(
        v[0]["routes"][0]["via"],
        serde_json::json!(["192.0.2.2 (primary)", "192.0.2.6 (secondary)"]),
        "{v}"
    );
    let v = lab.show("pe", "sources");
    assert_eq!(v["kernel"][0]["synced"], true, "{v}");
    println!("bird: xconnect show sources: {}", v["kernel"][0]);
    // Any daemon, or a person: a route added to table 100 by hand.
    let o = run(&format!(
        "ip -n {pe_ns} route add 198.51.100.192/26 via 192.0.2.6 table 100"
    ));
    assert!(o.status.success(), "{}", text(&o));
    // The MSEE withdraws the VNet prefix: BIRD removes it from table 100
    // and xconnect stops forwarding it.
    let o = ms.vtysh(
        "-c 'configure terminal' -c 'router bgp 12076' -c 'address-family ipv4 unicast' \
         -c 'no network 198.51.100.128/30'",
    );
    assert!(o.status.success(), "withdraw: {}", text(&o));
    let started = Instant::now();
    loop {
        let o = lab.exec("cust", "ping -c 1 -W 1 198.51.100.130");
        if text(&o).contains("Unreachable") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the withdrawn prefix is still forwarded: {}",
            text(&o)
        );
    }
    println!(
        "bird: withdrawn prefix unreachable after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!(
        "bird: table 100 at the end: {}",
        text(&run(&format!("ip -n {pe_ns} -4 route show table 100")))
            + &text(&run(&format!("ip -n {pe_ns} -6 route show table 100")))
    );
    // The forwarders stop first: BIRD flushes its routes from table 100
    // when it stops, and xconnect would follow.
    let mut lab = lab;
    let reports = lab.stop();
    drop(bird);
    drop(ms);
    let (_, pe) = reports
        .iter()
        .find(|(r, _)| r == "pe")
        .expect("the provider edge's report");
    let k = &pe["kernel"][0];
    println!("bird: provider edge's kernel source at the end: {k}");
    // IPv6 VNet and the hand-made route are still installed, the
    // withdrawn prefix is not.
    assert_eq!(k["routes"]["installed"], 2, "{pe}");
    assert!(k["routes"]["accepted"].as_u64().unwrap_or(0) >= 4, "{pe}");
    assert_eq!(k["routes"]["rejected"], 0, "{pe}");
}

/// One peering of a [`BgpLab`] that speaks BGP on both sides.
struct BgpSpeaker {
    /// `private` or `microsoft`.
    kind: &'static str,
    /// What the provider edge (the customer's side) announces.
    pe_announce: &'static [&'static str],
    /// What the MSEE announces.
    ms_announce: &'static [&'static str],
    /// More keys for both sides' peering (`fpm_grace_ms = …`).
    extra: &'static str,
}

/// The managed Layer 3 lab with BGP on the peerings of its speakers:
/// each speaking peering of each forwarder gets host interfaces in a host
/// namespace of its own (`<prefix><role><k>`, k the kind's initial), an
/// FRR instance there configured by `xconnect frr-config`, and an FPM
/// listener in that namespace; its static routes are removed, so every
/// route of the peering comes from BGP. Fields drop in order: FRR, the
/// lab (forwarders, namespaces), the host namespaces.
struct BgpLab {
    /// (`pe-private`, …) → instance.
    frrs: Vec<(String, Frr)>,
    lab: Lab,
    _hosts: HostNamespaces,
    /// How long the sessions took to establish after `clear bgp *`.
    established: Duration,
}

/// `t` (a lab configuration) with the peering of `kind` speaking BGP:
/// host interfaces `names` in `netns`, `announce`, timers 3/9 s, an FPM
/// listener in `netns`, no static routes, and `extra`.
fn bgp_keys(
    t: String,
    kind: &str,
    names: &[String; 3],
    netns: &str,
    announce: &[&str],
    extra: &str,
) -> String {
    let at = match kind {
        "private" => "peer_asn = 65536",
        _ => "peer_asn = 65537",
    };
    let mut t = t;
    let pos = t.find(at).expect("the peering");
    let start = pos + t[pos..].find("routes = [\n").expect("static routes");
    let end = start + t[start..].find("\n]\n").expect("end of routes") + 3;
    t.replace_range(start..end, "");
    let announce: Vec<String> = announce.iter().map(|a| format!("\"{a}\"")).collect();
    t.replacen(
        at,
        &format!(
            "{at}\nhost = {{ netns = \"{netns}\", access = \"{}\", primary = \"{}\", \
             secondary = \"{}\" }}\nannounce = [{}]\nbgp_keepalive_s = 3\nbgp_hold_s = 9\n\
             fpm = \"127.0.0.1:2620\"\nfpm_netns = \"{netns}\"\n{extra}",
            names[0],
            names[1],
            names[2],
            announce.join(", ")
        ),
        1,
    )
}

impl BgpLab {
    /// Build the lab, start the FRR instances and wait until every session
    /// is established (`None`: FRR is missing, see [`bgp_hosts`]).
    fn up(tag: &str, speakers: &[BgpSpeaker]) -> Option<BgpLab> {
        let names: Vec<String> = speakers
            .iter()
            .flat_map(|s| ["pe", "ms"].map(|r| format!("{r}{}", &s.kind[..1])))
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let (prefix, hosts) = bgp_hosts_named(tag, &names)?;
        let ns = |role: &str, kind: &str| format!("{prefix}{role}{}", &kind[..1]);
        let configure = |role: &str, mut t: String| {
            for s in speakers {
                let k = &s.kind[..1];
                let names = ["a", "1", "2"].map(|l| format!("x{tag}-{role}{k}{l}"));
                let announce = if role == "pe" {
                    s.pe_announce
                } else {
                    s.ms_announce
                };
                t = bgp_keys(t, s.kind, &names, &ns(role, s.kind), announce, s.extra);
            }
            t
        };
        let lab = Lab::up_l3_stats(tag, |t| configure("pe", t), |t| configure("ms", t), "0.5");
        let mut frrs = Vec::new();
        for s in speakers {
            for role in ["pe", "ms"] {
                let space = ns(role, s.kind);
                let f = start_frr_for(&lab, role, s.kind, &space, &space);
                frrs.push((format!("{role}-{}", s.kind), f));
            }
        }
        // Both sides are configured: skip the connect-retry wait of first
        // attempts that met an unconfigured peer.
        for (_, f) in frrs.iter().filter(|(n, _)| n.starts_with("pe-")) {
            let _ = f.vtysh("-c 'clear bgp *'");
        }
        let started = Instant::now();
        for s in speakers {
            let pe = frrs
                .iter()
                .find(|(n, _)| *n == format!("pe-{}", s.kind))
                .map(|(_, f)| f)
                .unwrap();
            let families: &[&str] = if s.kind == "private" {
                &["ipv4Unicast", "ipv6Unicast"]
            } else {
                &["ipv4Unicast"]
            };
            wait_sessions(pe, families, Duration::from_secs(40));
        }
        Some(BgpLab {
            frrs,
            lab,
            _hosts: hosts,
            established: started.elapsed(),
        })
    }

    /// The FRR instance of `role` (`pe`, `ms`) for peering `kind`.
    fn frr(&self, role: &str, kind: &str) -> &Frr {
        let name = format!("{role}-{kind}");
        self.frrs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| f)
            .unwrap_or_else(|| panic!("no FRR {name}"))
    }
}

/// Retry `f` every 50 ms until it gives `Some` (at most `limit`, then
/// panic naming `what` and the last state `f` described); returns the
/// value and the time it took.
fn wait_for<T>(
    what: &str,
    limit: Duration,
    mut f: impl FnMut(&mut String) -> Option<T>,
) -> (T, Duration) {
    let started = Instant::now();
    let mut last = String::new();
    loop {
        if let Some(v) = f(&mut last) {
            return (v, started.elapsed());
        }
        assert!(
            started.elapsed() < limit,
            "{what}: not within {limit:?}; last: {last}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The active next hops of `prefix`'s selected route in `frr`'s RIB
/// (zebra's, which is what it streams over FPM).
fn rib_next_hops(frr: &Frr, prefix: &str) -> Vec<String> {
    let ip = if prefix.contains(':') { "ipv6" } else { "ip" };
    let o = frr.vtysh(&format!("-d zebra -c 'show {ip} route {prefix} json'"));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    let Some(routes) = v[prefix].as_array() else {
        return Vec::new();
    };
    routes
        .iter()
        .filter(|r| r["selected"] == true)
        .flat_map(|r| r["nexthops"].as_array().cloned().unwrap_or_default())
        .filter(|n| n["active"] == true)
        .filter_map(|n| n["ip"].as_str().map(str::to_string))
        .collect()
}

/// `show bfd peers json` of `frr`: (peer address, status, detect
/// multiplier, receive interval ms).
fn bfd_peers(frr: &Frr) -> Vec<(String, String, u64, u64)> {
    let o = frr.vtysh("-d bfdd -c 'show bfd peers json'");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    (
                        p["peer"].as_str().unwrap_or("").to_string(),
                        p["status"].as_str().unwrap_or("").to_string(),
                        p["detect-multiplier"].as_u64().unwrap_or(0),
                        p["receive-interval"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Ping `dst` from the customer once a second (at most `limit`) until it
/// answers; returns how long that took.
fn wait_reachable(lab: &Lab, dst: &str, limit: Duration) -> Duration {
    let v6 = if dst.contains(':') { "-6 " } else { "" };
    wait_for(
        &format!("{dst} reachable from the customer"),
        limit,
        |last| {
            let o = lab.exec("cust", &format!("ping {v6}-c 1 -W 1 {dst}"));
            *last = text(&o);
            (ping_counts(last).1 == 1).then_some(())
        },
    )
    .1
}

/// The `fpm` entry for peering `kind` in a stats line of a forwarder.
fn fpm_entry(stats: &serde_json::Value, kind: &str) -> serde_json::Value {
    stats["fpm"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|f| f["name"] == format!("contoso-ams/{kind}"))
        })
        .cloned()
        .unwrap_or_default()
}

/// Wait (at most `limit`) until the newest stats line of `role` shows an
/// `fpm` entry for `kind` that `want` accepts; returns it and the time.
fn wait_fpm(
    lab: &Lab,
    role: &str,
    kind: &str,
    limit: Duration,
    want: impl Fn(&serde_json::Value) -> bool,
) -> (serde_json::Value, Duration) {
    wait_for(&format!("{role}'s fpm {kind}"), limit, |last| {
        let f = fpm_entry(&lab.live(role), kind);
        *last = f.to_string();
        want(&f).then_some(f)
    })
}

/// The Microsoft peering speaks BGP too: four host namespaces, four FRR
/// instances (one per peering per side), no static route on either
/// peering. The customer reaches the VNet host (IPv4 and IPv6) and the
/// Microsoft 365 host only over routes learned in BGP and streamed to
/// the forwarders over FPM; IPv6 routes carry the MSEE's global next hop
/// (the generated `set ipv6 next-hop prefer-global`), which xconnect
/// accepts.
#[test]
fn bgp_on_both_peerings_carries_the_traffic() {
    let Some(_g) = serial("bgp") else { return };
    let Some(b) = BgpLab::up(
        "bb",
        &[
            BgpSpeaker {
                kind: "private",
                pe_announce: &["203.0.113.0/30", "2001:db8:ff::/126"],
                ms_announce: &["198.51.100.128/30", "2001:db8:ff:1::/126"],
                extra: "",
            },
            BgpSpeaker {
                kind: "microsoft",
                pe_announce: &["203.0.113.4/30"],
                ms_announce: &["198.51.100.132/30"],
                extra: "",
            },
        ],
    ) else {
        return;
    };
    println!(
        "both peerings: 6 sessions (private v4+v6, Microsoft v4, both links) established in {:.1} s",
        b.established.as_secs_f64()
    );
    for dst in ["198.51.100.130", "2001:db8:ff:1::2", "198.51.100.134"] {
        let t = wait_reachable(&b.lab, dst, Duration::from_secs(20));
        let v6 = if dst.contains(':') { "-6 " } else { "" };
        let o = b
            .lab
            .exec("cust", &format!("ping {v6}-c 5 -i 0.2 -W 2 {dst}"));
        assert_eq!(ping_counts(&text(&o)), (5, 5), "{dst}: {}", text(&o));
        println!(
            "both peerings: {dst} answers over BGP routes ({:.1} s after the sessions)",
            t.as_secs_f64()
        );
    }
    // zebra's routes: the IPv6 prefix over both MSEEs' global addresses.
    let mut v6 = rib_next_hops(b.frr("pe", "private"), "2001:db8:ff:1::/126");
    v6.sort();
    assert_eq!(v6, ["2001:db8:0:1::2", "2001:db8:0:1::6"], "IPv6 next hops");
    // Why the route-map sets it: without `prefer-global` zebra takes the
    // MSEEs' link-local next hops, which xconnect rejects (it knows only
    // the link peers' global addresses), and IPv6 stops being forwarded.
    let pe = b.frr("pe", "private");
    let prefer_global = |on: bool| {
        let no = if on { "" } else { "no " };
        let o = pe.vtysh(&format!(
            "-c 'configure terminal' -c 'route-map xc-in-v6 permit 10' \
             -c '{no}set ipv6 next-hop prefer-global' -c 'end' \
             -c 'clear bgp ipv6 unicast * soft in'"
        ));
        assert!(o.status.success(), "prefer-global {on}: {}", text(&o));
    };
    prefer_global(false);
    let (hops, _) = wait_for(
        "link-local IPv6 next hops without prefer-global",
        Duration::from_secs(15),
        |last| {
            let h = rib_next_hops(pe, "2001:db8:ff:1::/126");
            *last = format!("{h:?}");
            (h.len() == 2 && h.iter().all(|a| a.starts_with("fe80:"))).then_some(h)
        },
    );
    let (f, _) = wait_fpm(&b.lab, "pe", "private", Duration::from_secs(5), |f| {
        f["routes"]["rejected_next_hops"].as_u64().unwrap_or(0) >= 2
            && f["routes"]["installed"] == 1
    });
    let o = b
        .lab
        .exec("cust", "ping -6 -c 2 -i 0.2 -W 1 2001:db8:ff:1::2");
    assert_eq!(
        ping_counts(&text(&o)).1,
        0,
        "IPv6 without prefer-global: {}",
        text(&o)
    );
    println!(
        "both peerings: without prefer-global zebra's IPv6 next hops are {hops:?}; xconnect \
         rejected {} next hops and holds {} route (IPv4 only); IPv6 pings 0/2",
        f["routes"]["rejected_next_hops"], f["routes"]["installed"]
    );
    prefer_global(true);
    wait_fpm(&b.lab, "pe", "private", Duration::from_secs(15), |f| {
        f["routes"]["installed"] == 2
    });
    ping_ok(&b.lab, "2001:db8:ff:1::2");
    let mut ms = rib_next_hops(b.frr("pe", "microsoft"), "198.51.100.132/30");
    ms.sort();
    assert_eq!(ms, ["198.51.100.2", "198.51.100.6"], "Microsoft next hops");
    // What the forwarders report: each peering's routes, all from FPM.
    for role in ["pe", "ms"] {
        for (kind, want) in [("private", 2), ("microsoft", 1)] {
            let (f, _) = wait_fpm(&b.lab, role, kind, Duration::from_secs(5), |f| {
                f["routes"]["installed"] == want
            });
            let r = &f["routes"];
            // Only the two link-local next hops of the demonstration.
            let rejected = if (role, kind) == ("pe", "private") {
                2
            } else {
                0
            };
            assert_eq!(r["rejected_next_hops"], rejected, "{role} {kind}: {f}");
            assert_eq!(f["connections"], 1, "{role} {kind}: {f}");
            println!(
                "both peerings: {role} {kind}: {} routes installed over FPM ({} messages)",
                r["installed"], f["messages"]
            );
        }
    }
}

/// The same prefixes on both peerings stay in each peering's own table:
/// the customer announces 203.0.113.0/29 and the MSEE 198.51.100.128/25
/// on private and on Microsoft peering. zebra of each peering holds them
/// over that peering's own link addresses; and traffic shows it: from the
/// customer, the VNet host (198.51.100.130) answers only by private
/// peering and the Microsoft 365 host (198.51.100.134) only by Microsoft
/// peering, although the /25 is routed on both, because behind each MSEE
/// table only its own peering's host is connected; the same holds from
/// the MSEE's hosts towards the customer's /29.
#[test]
fn same_prefix_on_both_peerings_stays_separate() {
    let Some(_g) = serial("bgp") else { return };
    let Some(b) = BgpLab::up(
        "bs",
        &[
            BgpSpeaker {
                kind: "private",
                pe_announce: &["203.0.113.0/29"],
                ms_announce: &["198.51.100.128/25"],
                extra: "",
            },
            BgpSpeaker {
                kind: "microsoft",
                pe_announce: &["203.0.113.0/29"],
                ms_announce: &["198.51.100.128/25"],
                extra: "",
            },
        ],
    ) else {
        return;
    };
    println!(
        "same prefix: sessions established in {:.1} s",
        b.established.as_secs_f64()
    );
    // Each zebra holds the shared prefixes over its own peering's links.
    for (role, prefix, private, microsoft) in [
        (
            "pe",
            "198.51.100.128/25",
            ["192.0.2.2", "192.0.2.6"],
            ["198.51.100.2", "198.51.100.6"],
        ),
        (
            "ms",
            "203.0.113.0/29",
            ["192.0.2.1", "192.0.2.5"],
            ["198.51.100.1", "198.51.100.5"],
        ),
    ] {
        for (kind, want) in [("private", private), ("microsoft", microsoft)] {
            let (hops, t) = wait_for(
                &format!("{role} {kind}: {prefix} over both links"),
                Duration::from_secs(15),
                |last| {
                    let mut h = rib_next_hops(b.frr(role, kind), prefix);
                    h.sort();
                    *last = format!("{h:?}");
                    (h.len() == 2).then_some(h)
                },
            );
            assert_eq!(hops, want, "{role} {kind}: {prefix}");
            println!(
                "same prefix: {role} {kind}: {prefix} via {} ({:.1} s)",
                hops.join(", "),
                t.as_secs_f64()
            );
        }
    }
    // Each host by its own peering.
    let t = wait_reachable(&b.lab, "198.51.100.130", Duration::from_secs(20));
    wait_reachable(&b.lab, "198.51.100.134", Duration::from_secs(20));
    println!(
        "same prefix: both hosts answer by their own peering ({:.1} s)",
        t.as_secs_f64()
    );
    // The customer's host steered into the other peering: the shared /25
    // is routed there, but that peering's table on the MSEE has no way to
    // the other peering's host. (The customer's host routes
    // 198.51.100.132/30 by Microsoft peering and everything else by
    // private peering, see scripts/topology.sh.)
    let steer = |dst: &str, gw: &str| {
        let r = b
            .lab
            .exec("cust", &format!("ip route replace {dst}/32 via {gw}"));
        assert!(r.status.success(), "{}", text(&r));
        let o = b.lab.exec("cust", &format!("ping -c 3 -i 0.2 -W 1 {dst}"));
        let _ = b.lab.exec("cust", &format!("ip route del {dst}/32"));
        text(&o)
    };
    // Each is answered by "unreachable" from the MSEE's address on the
    // other peering's link: the packet went by that peering's /25 and
    // found no route in that peering's table on the MSEE.
    let unreachable = |out: &str| {
        out.lines()
            .find(|l| l.starts_with("From ") && l.contains("Unreachable"))
            .map(str::to_string)
    };
    let vnet_by_ms = steer("198.51.100.130", "203.0.113.5");
    assert_eq!(
        ping_counts(&vnet_by_ms).1,
        0,
        "VNet host by Microsoft peering: {vnet_by_ms}"
    );
    let m365_by_private = steer("198.51.100.134", "203.0.113.1");
    assert_eq!(
        ping_counts(&m365_by_private).1,
        0,
        "Microsoft 365 host by private peering: {m365_by_private}"
    );
    for (what, out, msee) in [
        (
            "VNet host by Microsoft peering",
            &vnet_by_ms,
            ["198.51.100.2", "198.51.100.6"],
        ),
        (
            "Microsoft 365 host by private peering",
            &m365_by_private,
            ["192.0.2.2", "192.0.2.6"],
        ),
    ] {
        let line = unreachable(out).unwrap_or_else(|| panic!("{what}: {out}"));
        assert!(
            msee.iter().any(|a| line.starts_with(&format!("From {a} "))),
            "{what}: answered by the MSEE on that peering's link ({msee:?}): {line}"
        );
        println!("same prefix: {what}: {line}");
    }
    // The same destinations by their own peering still answer.
    ping_ok(&b.lab, "198.51.100.130");
    ping_ok(&b.lab, "198.51.100.134");
    // And the reverse direction: each MSEE-side host reaches the customer
    // address of its own peering only (203.0.113.0/29 is on both).
    for (host, dst, want) in [
        ("vnet", "203.0.113.2", 3),
        ("vnet", "203.0.113.6", 0),
        ("m365", "203.0.113.6", 3),
        ("m365", "203.0.113.2", 0),
    ] {
        let o = b.lab.exec(host, &format!("ping -c 3 -i 0.2 -W 1 {dst}"));
        assert_eq!(
            ping_counts(&text(&o)).1,
            want,
            "{host} → {dst}: {}",
            text(&o)
        );
    }
    println!("same prefix: cross-peering pings 0/3 in all four directions, own-peering 3/3");
}

/// Count the frames to 198.51.100.130 UDP port 9 captured on each of the
/// MSEE's trunks while the customer sends one datagram on each of 32
/// flows (a new source port each): which trunks xconnect's table uses.
fn udp_flows_per_trunk(lab: &mut Lab) -> (usize, usize) {
    let cap = lab.capture_each("ms", &["xc-ms-tra", "xc-ms-trb"], "", |lab| {
        let o = lab.exec(
            "cust",
            "bash -c 'for i in $(seq 32); do echo x > /dev/udp/198.51.100.130/9; done'",
        );
        assert!(o.status.success(), "udp flows: {}", text(&o));
    });
    let count = |c: &str| c.matches("> 198.51.100.130.9:").count();
    (count(&cap[0]), count(&cap[1]))
}

/// The trunk (`a`, `b`) the customer's pings to the VNet host take:
/// where the MSEE receives three echo requests (one flow, one trunk).
fn ping_trunk(lab: &mut Lab) -> &'static str {
    let cap = lab.capture_each("ms", &["xc-ms-tra", "xc-ms-trb"], "", |lab| {
        let o = lab.exec("cust", "ping -c 3 -i 0.1 -W 1 198.51.100.130");
        assert_eq!(ping_counts(&text(&o)).1, 3, "{}", text(&o));
    });
    let count = |c: &str| c.matches("> 198.51.100.130: ICMP echo request").count();
    match (count(&cap[0]), count(&cap[1])) {
        (3, 0) => "a",
        (0, 3) => "b",
        (a, b) => panic!("one flow takes one trunk: {a} on a, {b} on b"),
    }
}

/// An XDP program that drops every frame (`XDP_DROP`), as LLVM IR for
/// `llc -march=bpf`: attached (generic XDP) to the MSEE's end of a trunk
/// it drops what arrives there before any packet socket sees it, while
/// the link and its carrier stay up.
const XDP_DROP_IR: &str = r#"@_license = global [4 x i8] c"GPL\00", section "license"
define i32 @xdp_drop(i8* %ctx) section "xdp" {
  ret i32 1
}
"#;

/// BFD on the private peering (300 ms × 3, the default) takes a failed
/// trunk out of BGP, and xconnect's table follows over FPM: the ECMP
/// routes shrink to the other trunk while a 10 ms ping keeps going. The
/// trunk failed is the one the ping's flow takes. First it goes down
/// (`ip link set … down`: its carrier too, so the data plane moves at
/// once, and BFD takes the path out of the routes); then a failure the
/// carrier does not show — every frame arriving at either end of the
/// trunk is dropped (XDP, before xconnect's sockets), the link stays up —
/// so only BFD can find it, and the loss is what BFD's detection and the
/// route update over FPM take. UDP flows that used both trunks before use
/// only the other one after.
#[test]
fn bfd_failover_moves_routes_to_the_other_trunk() {
    let Some(_g) = serial("bgp") else { return };
    let Some(mut b) = BgpLab::up(
        "bd",
        &[BgpSpeaker {
            kind: "private",
            pe_announce: &["203.0.113.0/30"],
            ms_announce: &["198.51.100.128/30"],
            extra: "",
        }],
    ) else {
        return;
    };
    let prefix = "198.51.100.128/30";
    let ecmp = |b: &BgpLab, what: &str| {
        wait_for(what, Duration::from_secs(30), |last| {
            let pe = rib_next_hops(b.frr("pe", "private"), prefix);
            let ms = rib_next_hops(b.frr("ms", "private"), "203.0.113.0/30");
            let bfd = bfd_peers(b.frr("pe", "private"));
            *last = format!("pe {pe:?} ms {ms:?} bfd {bfd:?}");
            (pe.len() == 2 && ms.len() == 2 && bfd.len() == 4 && bfd.iter().all(|p| p.1 == "up"))
                .then_some(bfd)
        })
    };
    let (bfd, _) = ecmp(&b, "ECMP and BFD up");
    assert!(
        bfd.iter().all(|p| p.2 == 3 && p.3 == 300),
        "BFD 300 ms x 3: {bfd:?}"
    );
    wait_reachable(&b.lab, "198.51.100.130", Duration::from_secs(20));
    let (a, bb) = udp_flows_per_trunk(&mut b.lab);
    assert!(a > 0 && bb > 0, "32 flows over both trunks: {a} / {bb}");
    // The trunk to fail: the one the ping's flow takes. Its peers (the
    // MSEE's and the customer's address on it) and the other link's.
    let x = ping_trunk(&mut b.lab);
    let (pe_peer, pe_peer6, pe_other, ms_peer, ms_peer6, ms_other) = if x == "a" {
        (
            "192.0.2.2",
            "2001:db8:0:1::2",
            "192.0.2.6",
            "192.0.2.1",
            "2001:db8:0:1::1",
            "192.0.2.5",
        )
    } else {
        (
            "192.0.2.6",
            "2001:db8:0:1::6",
            "192.0.2.2",
            "192.0.2.5",
            "2001:db8:0:1::5",
            "192.0.2.1",
        )
    };
    println!("bfd failover: the ping's flow takes trunk {x}; failing it");

    // One failure while a 10 ms ping runs: wait for zebra's route to lose
    // the failed trunk's path; returns (time to that, pings lost, sent).
    let fail = |b: &mut BgpLab, name: &str, break_it: &dyn Fn(&BgpLab)| {
        let id = b.lab.spawn(
            "cust",
            "ping -D -i 0.01 -c 400 -W 1 198.51.100.130",
            &format!("bfd-{name}"),
        );
        std::thread::sleep(Duration::from_millis(1000));
        break_it(b);
        // When each side's zebra dropped the failed trunk's path, and each
        // side's BFD declared that link down (the side that still hears
        // the other learns it from the other's Down packets, sent once a
        // second when down). One poller per condition, so that each time
        // is as close as one vtysh call (the slowest poll is printed too).
        let names = ["pe route", "msee route", "pe bfd", "msee bfd"];
        let failed = Instant::now();
        let (pe, ms) = (b.frr("pe", "private"), b.frr("ms", "private"));
        let polled: Vec<(Option<Duration>, Duration)> = std::thread::scope(|sc| {
            let pollers: Vec<_> = (0..4)
                .map(|k| {
                    sc.spawn(move || {
                        let mut slowest = Duration::ZERO;
                        loop {
                            let asked = Instant::now();
                            let hit = match k {
                                0 => rib_next_hops(pe, prefix) == [pe_other],
                                1 => rib_next_hops(ms, "203.0.113.0/30") == [ms_other],
                                2 => bfd_peers(pe).iter().any(|p| p.0 == pe_peer && p.1 != "up"),
                                _ => bfd_peers(ms).iter().any(|p| p.0 == ms_peer && p.1 != "up"),
                            };
                            slowest = slowest.max(asked.elapsed());
                            if hit {
                                return (Some(failed.elapsed()), slowest);
                            }
                            if failed.elapsed() > Duration::from_secs(6) {
                                return (None, slowest);
                            }
                            std::thread::sleep(Duration::from_millis(10));
                        }
                    })
                })
                .collect();
            pollers.into_iter().map(|p| p.join().unwrap()).collect()
        });
        let seen: Vec<Option<Duration>> = polled.iter().map(|p| p.0).collect();
        let slowest = polled.iter().map(|p| p.1).max().unwrap_or_default();
        assert!(
            seen.iter().all(Option::is_some),
            "{name}: within 6 s: {:?}",
            names.iter().zip(&seen).collect::<Vec<_>>()
        );
        let seen: Vec<Duration> = seen.into_iter().map(Option::unwrap_or_default).collect();
        let t = seen[0];
        println!(
            "bfd failover ({name}): after the failure (ms): {} (slowest poll {:.0} ms)",
            names
                .iter()
                .zip(&seen)
                .map(|(n, t)| format!("{n} {:.0}", t.as_secs_f64() * 1e3))
                .collect::<Vec<_>>()
                .join(", "),
            slowest.as_secs_f64() * 1e3
        );
        reap(&mut b.lab.helpers[id], Duration::from_secs(15));
        let out = b.lab.read(&format!("bfd-{name}.out"));
        let (tx, rx) = ping_counts(&out);
        assert!(tx >= 300, "{name}: the ping ran: {out}");
        (t, tx - rx, tx, ping_outage(&out, Duration::from_millis(10)))
    };
    let (t, lost, tx, outage) = fail(&mut b, "trunk down", &|b| {
        let d = b.lab.exec("pe", &format!("ip link set xc-pe-tr{x} down"));
        assert!(d.status.success(), "{}", text(&d));
    });
    println!(
        "bfd failover (trunk {x} down): zebra's route down to one next hop {:.0} ms after the \
         failure; lost {lost} of {tx} pings at 10 ms = {} ms; longest gap between replies \
         {:.0} ms",
        t.as_secs_f64() * 1e3,
        lost * 10,
        outage.as_secs_f64() * 1e3
    );
    assert!(lost <= 100, "at most 1 s of traffic lost: {lost} pings");
    assert!(
        outage <= Duration::from_secs(1),
        "at most 1 s without replies: {outage:?}"
    );

    // Back to ECMP: the trunk up, its sessions restarted at once.
    let u = b.lab.exec("pe", &format!("ip link set xc-pe-tr{x} up"));
    assert!(u.status.success(), "{}", text(&u));
    for (role, peers) in [("pe", [pe_peer, pe_peer6]), ("ms", [ms_peer, ms_peer6])] {
        for p in peers {
            let _ = b.frr(role, "private").vtysh(&format!("-c 'clear bgp {p}'"));
        }
    }
    let (_, t) = ecmp(&b, "ECMP back after the trunk came up");
    println!(
        "bfd failover: ECMP back {:.1} s after the trunk came up",
        t.as_secs_f64()
    );

    // A failure the carrier does not show: XDP drops every frame arriving
    // at either end of the trunk (both ways: a one-way failure is learnt
    // late by the side that still hears, see below).
    if !run("command -v llc").status.success() {
        println!("bfd failover: silent failure skipped: llc (LLVM) is not installed");
        return;
    }
    let ir = b.lab.dir.join("xdp-drop.ll");
    let obj = b.lab.dir.join("xdp-drop.o");
    fs::write(&ir, XDP_DROP_IR).unwrap();
    let o = run(&format!(
        "timeout 30 llc -march=bpf -filetype=obj {} -o {}",
        ir.display(),
        obj.display()
    ));
    assert!(o.status.success(), "llc: {}", text(&o));
    let (t, lost, tx, outage) = fail(&mut b, "silent", &|b| {
        for end in ["ms", "pe"] {
            let d = b.lab.exec(
                end,
                &format!(
                    "ip link set dev xc-{end}-tr{x} xdpgeneric obj {} sec xdp",
                    obj.display()
                ),
            );
            assert!(d.status.success(), "xdp: {}", text(&d));
        }
    });
    let o = b
        .lab
        .exec("pe", &format!("ip -o link show dev xc-pe-tr{x}"));
    assert!(
        text(&o).contains("LOWER_UP") && text(&o).contains("state UP"),
        "the carrier stays up: {}",
        text(&o)
    );
    println!(
        "bfd failover (trunk {x} silent, carrier up): BFD took the path out of zebra's route \
         {:.0} ms after the failure; lost {lost} of {tx} pings at 10 ms = {} ms; longest gap \
         between replies {:.0} ms",
        t.as_secs_f64() * 1e3,
        lost * 10,
        outage.as_secs_f64() * 1e3
    );
    // Only BFD (3 x 300 ms: 600-900 ms after the last packet heard) can
    // see it: the outage is its detection plus the route's way through
    // bgpd, zebra and FPM into xconnect's table. (Dropped one way only, at
    // the MSEE's end, the MSEE detects it as here, but the provider edge
    // still hears the MSEE and learns it from BGP's notification, or, when
    // TCP holds that back, from the Down packets BFD sends once a second:
    // its route then went 1.7 s after the failure in one run.)
    assert!(
        t >= Duration::from_millis(400),
        "a silent failure is found by BFD's detection time, not at once: {t:?}"
    );
    assert!(
        outage >= Duration::from_millis(300),
        "the flow's trunk dropped everything until BFD: {outage:?} without replies"
    );
    assert!(lost <= 100, "at most 1 s of traffic lost: {lost} pings");
    assert!(
        outage <= Duration::from_millis(1500),
        "at most 1.5 s without replies (BFD's 900 ms, the way to the table, and room for a \
         loaded machine): {outage:?}"
    );
    let (a2, b2) = udp_flows_per_trunk(&mut b.lab);
    let other = if x == "a" { b2 } else { a2 };
    assert_eq!(
        other, 32,
        "after BFD took the path out, xconnect sends every flow by the other trunk: {a2} / {b2}"
    );
    println!("bfd failover: 32 UDP flows by trunk a/b: before {a}/{bb}, after the silent failure {a2}/{b2}");
}

/// The MSEE's prefix limit on Microsoft peering (200): the customer's
/// FRR announces 201 more prefixes, the MSEE drops the sessions over the
/// limit, and the routes it had learned on them leave its table on
/// xconnect (the Microsoft 365 host gets "unreachable" from the MSEE's
/// access address for the customer's address it reached before).
#[test]
fn prefix_limit_drops_the_session_and_its_routes() {
    let Some(_g) = serial("bgp") else { return };
    let Some(b) = BgpLab::up(
        "bp",
        &[BgpSpeaker {
            kind: "microsoft",
            pe_announce: &["203.0.113.4/30"],
            ms_announce: &["198.51.100.132/30"],
            extra: "",
        }],
    ) else {
        return;
    };
    let reach = |b: &BgpLab| {
        let o = b.lab.exec("m365", "ping -c 1 -W 1 203.0.113.6");
        text(&o)
    };
    let (_, t) = wait_for("m365 reaches cust-ms", Duration::from_secs(20), |last| {
        *last = reach(&b);
        (ping_counts(last).1 == 1).then_some(())
    });
    println!(
        "prefix limit: m365 reaches the customer {:.1} s after the sessions",
        t.as_secs_f64()
    );
    // The MSEE's forwarder holds the customer's prefix from FPM.
    wait_fpm(&b.lab, "ms", "microsoft", Duration::from_secs(5), |f| {
        f["routes"]["installed"] == 1
    });
    // 201 more prefixes (203.0.113.8/32 … 203.0.113.208/32), permitted out.
    let mut conf = String::from(
        "ip prefix-list xc-announce-v4 seq 1000 permit 203.0.113.0/24 le 32\n\
         router bgp 65537\n address-family ipv4 unicast\n",
    );
    for i in 8..=208 {
        conf.push_str(&format!("  network 203.0.113.{i}/32\n"));
    }
    conf.push_str(" exit-address-family\nexit\n");
    let file = b.lab.dir.join("over-limit.conf");
    fs::write(&file, conf).unwrap();
    let started = Instant::now();
    let o = b
        .frr("pe", "microsoft")
        .vtysh(&format!("-f {}", file.display()));
    assert!(o.status.success(), "201 networks: {}", text(&o));
    let msee = b.frr("ms", "microsoft");
    let (summary, _) = wait_for(
        "the MSEE drops both sessions over the limit",
        Duration::from_secs(20),
        |last| {
            *last = text(&msee.vtysh("-c 'show bgp summary'"));
            (last.matches("Idle (PfxCt)").count() == 2).then(|| last.clone())
        },
    );
    for l in summary.lines().filter(|l| l.contains("PfxCt")) {
        println!("prefix limit: msee: {l}");
    }
    let t_drop = started.elapsed();
    // The forwarder reports the Microsoft table empty of FPM routes.
    let (f, _) = wait_fpm(&b.lab, "ms", "microsoft", Duration::from_secs(20), |f| {
        f["routes"]["installed"] == 0
    });
    let t_table = started.elapsed();
    assert_eq!(f["connected"], true, "zebra stayed connected: {f}");
    // And traffic: the MSEE now answers for the customer's address with
    // "unreachable" from its access address (no route in its table).
    let o = b.lab.exec("m365", "ping -c 1 -W 1 203.0.113.6");
    assert!(
        text(&o).contains("From 198.51.100.133") && text(&o).contains("Unreachable"),
        "m365 → cust-ms after the limit: {}",
        text(&o)
    );
    println!(
        "prefix limit: sessions dropped {:.1} s after the 201 prefixes were added, the \
         MSEE's forwarder reports its Microsoft table empty at {:.1} s (fpm: accepted {} \
         updates, installed {}); m365 → 203.0.113.6: {}",
        t_drop.as_secs_f64(),
        t_table.as_secs_f64(),
        f["routes"]["accepted"],
        f["routes"]["installed"],
        text(&o)
            .lines()
            .find(|l| l.contains("Unreachable"))
            .unwrap_or("")
    );
}

/// The FPM connection of the provider edge's private peering is lost
/// and comes back while a ping runs over the BGP routes: zebra is sent
/// to another port (nothing listens there; it drops the connection to
/// xconnect), then back. The routes stay for the grace time
/// (`fpm_grace_ms` = 8000); meanwhile the MSEE withdraws one of its two
/// prefixes, which zebra cannot pass on. zebra reconnects and replays its
/// RIB; the stale sweep 8 s after the reconnection keeps the replayed
/// route (no echo answered "unreachable", no gap near the 3 s without
/// FPM; on an idle machine not a ping lost) and removes the withdrawn one
/// (the reconcile).
/// (zebra itself killed and restarted is a different matter: its bfdd
/// and bgpd lose it too, and in this lab the BFD and BGP sessions were
/// reset, so the routes went with BGP — see docs/control-plane.md.)
#[test]
fn fpm_reconnect_keeps_forwarding() {
    let Some(_g) = serial("bgp") else { return };
    let Some(mut b) = BgpLab::up(
        "br",
        &[BgpSpeaker {
            kind: "private",
            pe_announce: &["203.0.113.0/30"],
            ms_announce: &["198.51.100.128/30", "198.51.100.192/26"],
            extra: "fpm_grace_ms = 8000",
        }],
    ) else {
        return;
    };
    wait_reachable(&b.lab, "198.51.100.130", Duration::from_secs(20));
    wait_fpm(&b.lab, "pe", "private", Duration::from_secs(5), |f| {
        f["routes"]["installed"] == 2 && f["connections"] == 1
    });
    // Where a packet to the second prefix dies: with the route, at the
    // MSEE (nothing behind it there); without, at the provider edge.
    let unreachable_from = |b: &BgpLab| {
        let o = b.lab.exec("cust", "ping -c 1 -W 1 198.51.100.200");
        let t = text(&o);
        t.lines()
            .find(|l| l.starts_with("From ") && l.contains("Unreachable"))
            .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
            .unwrap_or_else(|| panic!("198.51.100.200: {t}"))
    };
    let before = unreachable_from(&b);
    assert!(
        before == "192.0.2.2" || before == "192.0.2.6",
        "routed to the MSEE first: {before}"
    );
    let id = b.lab.spawn(
        "cust",
        "ping -D -i 0.02 -c 900 -W 1 198.51.100.130",
        "fpm-reconnect",
    );
    let ping_started = Instant::now();
    std::thread::sleep(Duration::from_millis(1000));
    let pe = b.frr("pe", "private");
    let fpm = |port: u16| {
        let o = pe.vtysh(&format!(
            "-c 'configure terminal' -c 'fpm address 127.0.0.1 port {port}'"
        ));
        assert!(o.status.success(), "fpm address: {}", text(&o));
    };
    let lost_at = Instant::now();
    fpm(2621);
    let (f, _) = wait_fpm(&b.lab, "pe", "private", Duration::from_secs(5), |f| {
        f["connected"] == false
    });
    assert_eq!(f["routes"]["installed"], 2, "kept for the grace time: {f}");
    // The MSEE withdraws its second prefix; the provider edge's zebra
    // drops it, and has no FPM connection to say so.
    let o = b.frr("ms", "private").vtysh(
        "-c 'configure terminal' -c 'router bgp 12076' -c 'address-family ipv4 unicast' \
         -c 'no network 198.51.100.192/26'",
    );
    assert!(o.status.success(), "withdraw: {}", text(&o));
    wait_for(
        "the provider edge's zebra drops the withdrawn prefix",
        Duration::from_secs(5),
        |last| {
            let h = rib_next_hops(pe, "198.51.100.192/26");
            *last = format!("{h:?}");
            h.is_empty().then_some(())
        },
    );
    let f = fpm_entry(&b.lab.live("pe"), "private");
    assert_eq!(f["routes"]["installed"], 2, "no FPM, no news: {f}");
    std::thread::sleep(Duration::from_millis(1000));
    fpm(2620);
    let (f, t) = wait_fpm(&b.lab, "pe", "private", Duration::from_secs(15), |f| {
        f["connected"] == true && f["connections"] == 2
    });
    let reconnected = Instant::now();
    println!(
        "fpm reconnect: FPM down {:.1} s; zebra reconnected {:.1} s after its address was \
         restored ({} routes installed then, one of them withdrawn meanwhile)",
        (reconnected - lost_at).as_secs_f64(),
        t.as_secs_f64(),
        f["routes"]["installed"]
    );
    // The sweep: the route zebra did not replay goes after the grace time.
    let (f, t_sweep) = wait_fpm(&b.lab, "pe", "private", Duration::from_secs(15), |f| {
        f["routes"]["installed"] == 1
    });
    assert_eq!(f["routes"]["withdrawn"], 1, "{f}");
    assert!(
        t_sweep >= Duration::from_millis(7000),
        "swept at the end of the grace time, not before: {t_sweep:?}"
    );
    let after = unreachable_from(&b);
    assert_eq!(after, "203.0.113.1", "no route on the provider edge now");
    println!(
        "fpm reconnect: the stale route swept {:.1} s after the reconnection (grace 8 s); \
         198.51.100.200 unreachable from {before} before, from {after} after",
        t_sweep.as_secs_f64()
    );
    reap(&mut b.lab.helpers[id], Duration::from_secs(25));
    let ended = Instant::now();
    let out = b.lab.read("fpm-reconnect.out");
    let (tx, rx) = ping_counts(&out);
    // The ping outlasted the stale sweep: the replayed route was kept.
    assert!(
        ended > reconnected + Duration::from_millis(8500),
        "the ping ({:.1} s) ran past the sweep, 8 s after the reconnection at {:.1} s",
        (ended - ping_started).as_secs_f64(),
        (reconnected - ping_started).as_secs_f64()
    );
    println!(
        "fpm reconnect: lost {} of {tx} pings at 20 ms over {:.1} s (longest gap between \
         replies {:.0} ms): disconnect, {:.1} s without FPM, reconnection and the stale sweep",
        tx - rx,
        (ended - ping_started).as_secs_f64(),
        ping_outage(&out, Duration::from_millis(20)).as_secs_f64() * 1e3,
        (reconnected - lost_at).as_secs_f64()
    );
    assert!(tx >= 850, "the ping ran: {out}");
    // The route never left the provider edge's table: no echo was answered
    // "unreachable" (what xconnect sends without a route), and no gap
    // came near the 3 s without FPM. (On a loaded 2-core VM a forwarder
    // can be held off its core for some 100 ms, and the ping then loses a
    // few: those are not the route's, so they are bounded, not zero.)
    assert!(!out.contains("Unreachable"), "the route stayed: {out}");
    let gap = ping_outage(&out, Duration::from_millis(20));
    assert!(gap < Duration::from_secs(1), "longest gap {gap:?}: {out}");
    assert!(tx - rx <= tx / 20, "at most 5% lost: {out}");
    let log = b.lab.read("pe.err");
    let swept: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("withdrew") || l.contains("withdrawn"))
        .collect();
    assert_eq!(
        swept,
        [
            "xconnect: fpm contoso-ams/private: 1 routes not sent again within the grace time \
          after reconnecting: withdrawn"
        ],
        "only the stale route withdrawn"
    );
    let (f, _) = wait_fpm(&b.lab, "pe", "private", Duration::from_secs(5), |f| {
        f["connections"] == 2 && f["connected"] == true
    });
    assert_eq!(f["routes"]["withdrawn"], 1, "{f}");
    assert_eq!(f["routes"]["installed"], 1, "{f}");
    println!(
        "fpm reconnect: pe fpm private: connections {}, installed {}, withdrawn {}, {} messages",
        f["connections"], f["routes"]["installed"], f["routes"]["withdrawn"], f["messages"]
    );
}

/// The any-to-any (IPVPN) lab: four forwarders. The provider edge
/// (`examples/pe-ipvpn.toml`) joins the customer's MPLS VPN to the
/// ExpressRoute circuit; the MSEE is the L3 lab's (with routes to the
/// branches and the pseudowire circuit's access port). Across an MPLS
/// veth link (MTU 1600) the remote PE (`examples/lab-rpe-ipvpn.toml`)
/// pushes and pops the labels a backbone carries, and the branch's CE
/// (`examples/lab-bce-ipvpn.toml`) puts the plain hosts on its QinQ
/// trunks (the hosts cannot tag). Hosts: the branch (private peering,
/// 203.0.113.66), the branch's Microsoft-peering host (203.0.113.130),
/// site A (192.0.2.65) whose LAN the pseudowire carries to site B
/// (192.0.2.66, behind the MSEE), the VNet and M365 hosts of the L3 lab.
impl Lab {
    fn up_ipvpn(name: &str) -> Lab {
        let mut lab = Lab::empty(name, "0");
        let o = lab.script("up --l3");
        assert!(o.status.success(), "topology up --l3: {}", text(&o));
        for n in ["rpe", "bce", "brp", "brm", "sitea"] {
            let ns = lab.ns(n);
            let o = run(&format!("ip netns add {ns}"));
            assert!(o.status.success(), "netns add {ns}: {}", text(&o));
            lab.extra_ns.push(ns);
            let _ = run(&format!("ip -n {} link set lo up", lab.ns(n)));
        }
        let n = |x: &str| lab.ns(x);
        let veth = |a: &str, ia: &str, b: &str, ib: &str, mtu: u32| {
            format!(
                "ip -n {} link add {ia} mtu {mtu} type veth peer name {ib} netns {} mtu {mtu}",
                n(a),
                n(b)
            )
        };
        let mut cmds = vec![
            // The backbone link: the L3 lab's customer link, its far end
            // moved to the remote PE.
            format!("ip -n {} link set cust-priv netns {}", n("cust"), n("rpe")),
            format!(
                "ip -n {} link set cust-priv name xc-rpe-wan mtu 1600",
                n("rpe")
            ),
            format!("ip -n {} link set xc-pe-priv mtu 1600", n("pe")),
            veth("bce", "xc-bce-tra", "rpe", "xc-rpe-tra", 1508),
            veth("bce", "xc-bce-trb", "rpe", "xc-rpe-trb", 1508),
            veth("brp", "brp0", "bce", "xc-bce-brp", 1500),
            veth("brm", "brm0", "bce", "xc-bce-brm", 1500),
            veth("sitea", "site0a", "bce", "xc-bce-site", 1500),
            veth("m365", "site0b", "ms", "xc-ms-site2", 1500),
        ];
        for (ns, devs) in [
            ("rpe", &["xc-rpe-wan", "xc-rpe-tra", "xc-rpe-trb"][..]),
            (
                "bce",
                &[
                    "xc-bce-tra",
                    "xc-bce-trb",
                    "xc-bce-brp",
                    "xc-bce-brm",
                    "xc-bce-site",
                ],
            ),
            ("ms", &["xc-ms-site2"]),
        ] {
            for d in devs {
                cmds.push(format!("ip -n {} link set {d} up", n(ns)));
            }
        }
        for (ns, dev, addr, gw) in [
            ("brp", "brp0", "203.0.113.66/30", Some("203.0.113.65")),
            ("brm", "brm0", "203.0.113.130/30", Some("203.0.113.129")),
            ("sitea", "site0a", "192.0.2.65/27", None),
            ("m365", "site0b", "192.0.2.66/27", None),
        ] {
            cmds.push(format!("ip -n {} link set {dev} up", n(ns)));
            cmds.push(format!("ip -n {} addr add {addr} dev {dev}", n(ns)));
            if let Some(gw) = gw {
                cmds.push(format!("ip -n {} route add default via {gw}", n(ns)));
            }
        }
        for c in &cmds {
            let o = run(c);
            assert!(o.status.success(), "{c}: {}", text(&o));
        }
        let read = |f: &str| fs::read_to_string(Path::new(ROOT).join("examples").join(f)).unwrap();
        // The backbone router the provider edge sees is the remote PE
        // (its wan is its port 2).
        let pe_cfg = read("pe-ipvpn.toml")
            .replace("interface = \"xc-pe-wan\"", "interface = \"xc-pe-priv\"")
            .replace("02:00:00:00:00:b1", RPE_MAC);
        let ms_cfg = read("lab-msee-l3.toml")
            .replace(
                "  { prefix = \"203.0.113.0/30\", next_hop = \"192.0.2.1\" },",
                "  { prefix = \"203.0.113.64/26\", next_hop = \"192.0.2.1\" },\n  \
                 { prefix = \"203.0.113.64/26\", next_hop = \"192.0.2.5\" },\n  \
                 { prefix = \"203.0.113.0/30\", next_hop = \"192.0.2.1\" },",
            )
            .replace(
                "  { prefix = \"203.0.113.4/30\", next_hop = \"198.51.100.1\" },",
                "  { prefix = \"203.0.113.128/26\", next_hop = \"198.51.100.1\" },\n  \
                 { prefix = \"203.0.113.128/26\", next_hop = \"198.51.100.5\" },\n  \
                 { prefix = \"203.0.113.4/30\", next_hop = \"198.51.100.1\" },",
            )
            + "\n[[port]]\nname = \"site2\"\ninterface = \"xc-ms-site2\"\n\n\
               [[circuit]]\nname = \"contoso-pw\"\nencapsulation = \"qinq\"\ns_tag = 101\n\
               primary = { port = \"trunk-a\" }\nsecondary = { port = \"trunk-b\" }\n\n\
               [[circuit.peering]]\nkind = \"private\"\ntag = 200\nmode = \"l2\"\n\
               access = { port = \"site2\" }\nipv4 = \"192.0.2.8/29\"\npeer_asn = 65536\n";
        assert!(ms_cfg.contains("203.0.113.64/26") && ms_cfg.contains("203.0.113.128/26"));
        fs::write(lab.dir.join("pe.toml"), pe_cfg).unwrap();
        fs::write(lab.dir.join("ms.toml"), ms_cfg).unwrap();
        fs::write(lab.dir.join("rpe.toml"), read("lab-rpe-ipvpn.toml")).unwrap();
        fs::write(lab.dir.join("bce.toml"), read("lab-bce-ipvpn.toml")).unwrap();
        lab.start("pe", "pe.toml", 0);
        lab.start("ms", "ms.toml", 1);
        lab.start("rpe", "rpe.toml", 0);
        lab.start("bce", "bce.toml", 1);
        std::thread::sleep(Duration::from_millis(300));
        lab
    }

    /// Send `count` labelled frames onto the backbone link from the remote
    /// PE's end (`xconnect gen`, beside the remote PE forwarder), with
    /// `args` (labels, addresses, DSCP): labels the remote PE would never
    /// push (another VPN's, unknown ones).
    fn send_labelled(&self, count: u32, args: &str) {
        let o = self.exec(
            "rpe",
            &format!(
                "{XCONNECT} gen xc-rpe-wan --core none --duration 5 --count {count} --flows 4 \
                 --dst-mac 02:78:63:00:00:01 --src-mac {RPE_MAC} {args}"
            ),
        );
        assert!(o.status.success(), "gen {args}: {}", text(&o));
    }
}

/// The remote PE's MAC on the backbone link (its port 2).
const RPE_MAC: &str = "02:78:63:00:00:03";

/// A label stack as tcpdump printed it: (label, tc, bottom, ttl) per entry.
type LabelStackSeen = Vec<(u32, u8, bool, u8)>;

/// The label stacks of the labelled frames in tcpdump's output (`tcpdump
/// -e -v` prints `MPLS (label L, tc T, ttl N)` on a frame's first line
/// and each further entry, `(label L, tc T, [S], ttl N)`, on a line of its
/// own): for each frame, its entries as (label, tc, bottom, ttl), and its
/// lines.
fn mpls_frames(cap: &str) -> Vec<(LabelStackSeen, String)> {
    let entry = |body: &str| {
        let field = |name: &str| -> Option<u32> {
            body.split(", ")
                .find_map(|f| f.trim().strip_prefix(name))
                .and_then(|v| v.trim().parse().ok())
        };
        let label: u32 = body
            .split(',')
            .next()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let tc = field("tc ").or_else(|| field("exp ")).unwrap_or(99) as u8;
        let ttl = field("ttl ").unwrap_or(0) as u8;
        (label, tc, body.contains("[S]"), ttl)
    };
    let mut out: Vec<(LabelStackSeen, String)> = Vec::new();
    let mut in_frame = false;
    for l in cap.lines() {
        if let Some(at) = l.find("MPLS (label ") {
            let body = l[at + 12..].split(')').next().unwrap_or("");
            out.push((vec![entry(body)], l.to_string()));
            in_frame = true;
        } else if l.starts_with(|c: char| c.is_whitespace()) && in_frame {
            let Some((entries, text)) = out.last_mut() else {
                continue;
            };
            if let Some(rest) = l.trim_start().strip_prefix("(label ") {
                entries.push(entry(rest.split(')').next().unwrap_or("")));
            }
            text.push('\n');
            text.push_str(l);
        } else {
            in_frame = false;
        }
    }
    out
}

fn drops_of(lab: &Lab, role: &str, reason: &str) -> u64 {
    let v = lab.show(role, "drops");
    v.get(reason)
        .and_then(|x| x.as_u64())
        .unwrap_or_else(|| panic!("show drops has no {reason}: {v}"))
}

/// The frames of `cap` with bottom label `label`.
fn with_label(cap: &str, label: u32) -> Vec<(LabelStackSeen, String)> {
    mpls_frames(cap)
        .into_iter()
        .filter(|(e, _)| e.last().is_some_and(|x| x.0 == label))
        .collect()
}

#[test]
fn ipvpn_lab() {
    let Some(_g) = serial("ipvpn_lab") else {
        return;
    };
    let mut lab = Lab::up_ipvpn("ipvpn");

    // L3VPN both ways on both peerings, and the pseudowire both ways:
    // plain hosts at both ends, every label pushed and popped by the
    // forwarders. Captured on the backbone link.
    let cap = lab.capture("rpe", &["xc-rpe-wan"], "mpls", |lab| {
        for (ns, dst, tos) in [
            ("brp", "198.51.100.130", "0xb8"),
            ("brm", "198.51.100.134", "0x68"),
            ("sitea", "192.0.2.66", "0x00"),
        ] {
            let o = lab.exec(ns, &format!("ping -c 5 -i 0.2 -W 2 -Q {tos} {dst}"));
            assert_eq!(ping_counts(&text(&o)), (5, 5), "{ns} → {dst}: {}", text(&o));
        }
    });
    // `-Q in`: what the provider edge sent the remote PE.
    let private = with_label(&cap, 2001);
    let microsoft = with_label(&cap, 2002);
    let pw = with_label(&cap, 2101);
    assert!(
        private.len() >= 5 && microsoft.len() >= 5 && pw.len() >= 5,
        "labelled replies toward the branch: {} private, {} microsoft, {} pseudowire:\n{cap}",
        private.len(),
        microsoft.len(),
        pw.len()
    );
    for (e, line) in private.iter().chain(&microsoft) {
        // The remote PE's transport label 16002 over its VPN label;
        // uniform TTL: the replies left their hosts with 64, the MSEE and
        // the provider edge routed them.
        assert_eq!(e.len(), 2, "{line}");
        assert_eq!((e[0].0, e[0].2), (16002, false), "{line}");
        assert!(e[1].2 && e[0].3 == 62 && e[1].3 == 62, "{line}");
    }
    // TC from the DSCP's class: EF (46) → 5 on private; on Microsoft
    // peering AF31 reached M365 as CS0 (the ExpressRoute marker), whose
    // echo reply comes back with CS0: TC 0.
    assert!(private.iter().all(|(e, _)| e[0].1 == 5), "{cap}");
    assert!(microsoft.iter().all(|(e, _)| e[0].1 == 0), "{cap}");
    for (e, line) in &pw {
        assert_eq!(e.len(), 1, "{line}");
        assert!(
            e[0].2 && e[0].3 == 255,
            "pseudowire label: bottom, TTL 255: {line}"
        );
    }
    println!(
        "L3VPN and pseudowire: pings 5/5 branch ↔ VNet, branch ↔ M365, site A ↔ site B; \
         toward the branch {} frames 16002/2001, {} 16002/2002, {} 2101",
        private.len(),
        microsoft.len(),
        pw.len()
    );
    // What the remote PE sent the provider edge, seen there: its
    // transport label 16001 over the VPN label, uniform TTL (64, less
    // the CE and the remote PE).
    let cap = lab.capture("pe", &["xc-pe-priv"], "mpls", |lab| {
        let o = lab.exec("brp", "ping -c 3 -i 0.2 -W 2 198.51.100.130");
        assert_eq!(ping_counts(&text(&o)), (3, 3), "{}", text(&o));
    });
    let toward_pe = with_label(&cap, 1001);
    assert!(toward_pe.len() >= 3, "{cap}");
    for (e, line) in &toward_pe {
        assert_eq!((e[0].0, e[1].2, e[1].3), (16001, true, 62), "{line}");
    }
    // Uniform TTL end to end: the branch's echo requests reach the VNet
    // host with 64 less four routers (CE, remote PE, provider edge, MSEE).
    let cap = lab.capture("vnet", &["vnet0"], "icmp", |lab| {
        let _ = lab.exec("brp", "ping -c 2 -i 0.2 -W 2 198.51.100.130");
    });
    assert!(cap.contains("ttl 60"), "TTL 64 - 4 at the VNet host: {cap}");

    // Isolation: the Microsoft peering's label toward the VNet reaches
    // nothing (its table has no such route); unknown labels are dropped
    // and counted.
    let before = drops_of(&lab, "pe", "unknown-label");
    let cap = lab.capture("vnet", &["vnet0"], "udp and dst port 9", |lab| {
        lab.send_labelled(
            20,
            "--mpls 1002 --src-ip 203.0.113.130 --dst-ip 198.51.100.130",
        );
        lab.send_labelled(
            30,
            "--mpls 1999 --src-ip 203.0.113.66 --dst-ip 198.51.100.130",
        );
        lab.send_labelled(
            30,
            "--mpls 16009,1001 --src-ip 203.0.113.66 --dst-ip 198.51.100.130",
        );
        // And one that belongs there, as a control.
        lab.send_labelled(
            10,
            "--mpls 16001,1001 --src-ip 203.0.113.66 --dst-ip 198.51.100.130",
        );
    });
    let reached = cap
        .lines()
        .filter(|l| l.contains("198.51.100.130.9:"))
        .count();
    assert_eq!(
        reached, 10,
        "only the private VPN's label reaches the VNet: {cap}"
    );
    let unknown = drops_of(&lab, "pe", "unknown-label") - before;
    assert_eq!(unknown, 60, "unknown labels dropped and counted");
    println!(
        "isolation: label 1002 → VNet 0/20, label 1001 → VNet 10/10; \
         unknown labels: {unknown}/60 dropped as unknown-label"
    );

    // Failover of a trunk, as for VLAN attachments: with the provider
    // edge's trunk-a down, the L3VPN and the pseudowire take trunk-b.
    let d = lab.exec("pe", "ip link set xc-pe-tra down");
    assert!(d.status.success(), "{}", text(&d));
    std::thread::sleep(Duration::from_millis(500));
    for (ns, dst) in [("brp", "198.51.100.130"), ("sitea", "192.0.2.66")] {
        let o = lab.exec(ns, &format!("ping -c 5 -i 0.2 -W 2 {dst}"));
        assert_eq!(
            ping_counts(&text(&o)),
            (5, 5),
            "{ns} → {dst} with trunk-a down: {}",
            text(&o)
        );
    }
    let u = lab.exec("pe", "ip link set xc-pe-tra up");
    assert!(u.status.success(), "{}", text(&u));
    let finals = lab.stop();
    for (role, v) in &finals {
        let drops = &v["drops"];
        println!(
            "{role}: tx {} drops {drops}",
            v["ports"].as_array().map_or(0, |p| p
                .iter()
                .map(|x| x["tx_packets"].as_u64().unwrap_or(0))
                .sum::<u64>())
        );
    }
    println!("failover: provider edge trunk-a down, pings 5/5 over L3VPN and the pseudowire");
}
