//! `xconnect ctl capture start|stop` and `xconnect show capture` against a
//! real forwarder: `xconnect run` in a network namespace of its own, its
//! three ports veths whose other ends are in a second namespace, where
//! `xconnect gen` sends frames into the customer port. The forwarder
//! starts without a capture; one is started over the control socket
//! (a relative directory, made absolute by the client), frames are sent,
//! the capture is stopped, and the pcapng file holds exactly the frames
//! sent while it ran — none from before.
//!
//! Needs root and `ip netns`; without them the test says why it skips
//! and passes. The namespaces (`xccap<pid>f`, `xccap<pid>h`) and the
//! forwarder (by PID) are removed by a guard even when an assertion
//! fails.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const XCONNECT: &str = env!("CARGO_BIN_EXE_xconnect");

fn skip_reason() -> Option<&'static str> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (network namespaces need CAP_SYS_ADMIN)");
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(o) if o.status.success() => None,
        _ => Some("`ip netns` is not available (install iproute2)"),
    }
}

fn sh(cmd: &str) -> Output {
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

/// The namespaces, the forwarder and the scratch directory; all removed
/// on drop.
struct Lab {
    fw: String,
    host: String,
    dir: PathBuf,
    forwarder: Option<Child>,
}

impl Lab {
    fn up() -> Lab {
        let id = std::process::id() % 100_000;
        let lab = Lab {
            fw: format!("xccap{id}f"),
            host: format!("xccap{id}h"),
            dir: std::env::temp_dir().join(format!("xconnect-capture-ctl-{id}")),
            forwarder: None,
        };
        let _ = fs::remove_dir_all(&lab.dir);
        fs::create_dir_all(&lab.dir).unwrap();
        let (f, h) = (&lab.fw, &lab.host);
        let mut script = format!(
            "set -e; ip netns add {f}; ip netns add {h}; \
             for n in {f} {h}; do \
             ip -n $n link set lo up; done; "
        );
        for end in ["c", "a", "b"] {
            script.push_str(&format!(
                "ip link add xcc-{end}0 netns {h} type veth peer name xcc-{end}1 netns {f}; \
                 ip -n {h} link set xcc-{end}0 up; ip -n {f} link set xcc-{end}1 up; "
            ));
        }
        let o = sh(&script);
        assert!(o.status.success(), "namespaces: {}", text(&o));
        fs::write(
            lab.dir.join("pe.toml"),
            r#"role = "provider-edge"
[[port]]
name = "customer"
interface = "xcc-c1"
[[port]]
name = "trunk-a"
interface = "xcc-a1"
[[port]]
name = "trunk-b"
interface = "xcc-b1"
[[circuit]]
name = "c1"
encapsulation = "dot1q"
bandwidth_mbps = 1000
primary = { port = "trunk-a" }
secondary = { port = "trunk-b" }
[[circuit.peering]]
kind = "private"
tag = 200
mode = "l2"
access = { port = "customer", vlan = 10 }
ipv4 = "192.0.2.0/29"
peer_asn = 65536
"#,
        )
        .unwrap();
        lab
    }

    fn sock(&self) -> PathBuf {
        self.dir.join("pe.sock")
    }

    fn start(&mut self) {
        let err = self.dir.join("pe.err");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.fw, XCONNECT, "run"])
            .arg(self.dir.join("pe.toml"))
            .args(["--json", "--stats-interval", "0", "--duration", "60"])
            .args(["--first-core", "none", "--control"])
            .arg(self.sock())
            .stdout(fs::File::create(self.dir.join("pe.out")).unwrap())
            .stderr(fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        self.forwarder = Some(child);
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let log = fs::read_to_string(&err).unwrap_or_default();
            if log.contains("running") {
                return;
            }
            if let Some(Ok(Some(st))) = self.forwarder.as_mut().map(Child::try_wait) {
                panic!("xconnect run exited with {st}: {log}");
            }
            assert!(Instant::now() < end, "xconnect run did not start: {log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `xconnect SUB --control SOCK ARGS…` run in `cwd` (the client's
    /// options before the command: `ctl` passes everything after the
    /// command to the forwarder).
    fn client(&self, args: &[&str], cwd: &Path) -> Output {
        Command::new(XCONNECT)
            .arg(args[0])
            .arg("--control")
            .arg(self.sock())
            .args(&args[1..])
            .current_dir(cwd)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// The data of `show capture --json`.
    fn show_capture(&self) -> serde_json::Value {
        let o = self.client(&["show", "--json", "capture"], &self.dir);
        assert!(o.status.success(), "show capture: {}", text(&o));
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)))
    }

    /// `count` frames from `src_mac` into the customer port (VLAN 10).
    fn send(&self, count: u32, src_mac: &str) {
        let o = sh(&format!(
            "ip netns exec {} timeout 20 {XCONNECT} gen xcc-c0 --vlan 10 --count {count} \
             --duration 5 --core none --src-mac {src_mac} --dst-mac 02:00:00:00:0c:99",
            self.host
        ));
        assert!(o.status.success(), "gen: {}", text(&o));
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(c) = self.forwarder.as_mut() {
            // SAFETY: kill(2) on the PID of the child started here.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let end = Instant::now() + Duration::from_secs(5);
            while Instant::now() < end && !matches!(c.try_wait(), Ok(Some(_))) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = sh(&format!(
            "ip netns del {} 2>/dev/null; ip netns del {} 2>/dev/null",
            self.fw, self.host
        ));
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// (port name, epb flags, source MAC) of every packet of every pcapng
/// file in `dir`.
fn read_capture(dir: &Path) -> Vec<(String, u32, [u8; 6])> {
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
    use pcap_file::pcapng::{Block, PcapNgReader};
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcapng"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no pcapng file in {}", dir.display());
    let mut out = Vec::new();
    for f in &files {
        let mut r = PcapNgReader::new(fs::File::open(f).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let mut names = Vec::new();
        while let Some(b) = r.next_block() {
            match b.unwrap_or_else(|e| panic!("{}: {e}", f.display())) {
                Block::InterfaceDescription(i) => names.push(
                    i.options
                        .iter()
                        .find_map(|o| match o {
                            InterfaceDescriptionOption::IfName(n) => Some(n.to_string()),
                            _ => None,
                        })
                        .unwrap_or_default(),
                ),
                Block::EnhancedPacket(p) => {
                    let flags = p
                        .options
                        .iter()
                        .find_map(|o| match o {
                            EnhancedPacketOption::Flags(f) => Some(*f),
                            _ => None,
                        })
                        .unwrap_or(0);
                    let mut src = [0u8; 6];
                    if p.data.len() >= 12 {
                        src.copy_from_slice(&p.data[6..12]);
                    }
                    let port = names
                        .get(p.interface_id as usize)
                        .cloned()
                        .unwrap_or_default();
                    out.push((port, flags, src));
                }
                _ => {}
            }
        }
    }
    out
}

#[test]
fn capture_started_and_stopped_over_the_control_socket() {
    if let Some(why) = skip_reason() {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "skipping capture_started_and_stopped_over_the_control_socket: {why}"
        );
        return;
    }
    let mut lab = Lab::up();
    lab.start();
    // The veths were just made: until the kernel has them up the forwarder
    // holds the trunks down and drops the frames (`no-link-up`), so none
    // would be transmitted. Wait for every port to be up.
    let end = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let o = lab.client(&["show", "--json", "ports"], &lab.dir);
        let ports: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        if ports
            .as_array()
            .is_some_and(|a| !a.is_empty() && a.iter().all(|p| p["up"] == true))
        {
            break;
        }
        assert!(std::time::Instant::now() < end, "ports not up: {ports}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(lab.show_capture().is_null(), "no capture at start");
    let o = lab.client(&["show", "capture"], &lab.dir);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "no capture running\n");

    // Frames before the capture: not in the file.
    lab.send(5, "02:00:00:00:0c:02");
    std::thread::sleep(Duration::from_millis(200));

    // A relative directory: the client makes it absolute.
    let cap = lab.dir.join("cap");
    let o = lab.client(
        &["ctl", "capture", "start", "cap", "--direction", "rx,tx"],
        &lab.dir,
    );
    assert!(o.status.success(), "ctl capture start: {}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("capturing every port; rx,tx to "),
        "{}",
        text(&o)
    );
    // A second one is refused, naming where the first writes.
    let o = lab.client(&["ctl", "capture", "start", "/tmp/other"], &lab.dir);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("already running") && e.contains(&*cap.to_string_lossy()),
        "{e}"
    );
    // A port that does not exist: refused, listing the ports.
    let o = lab.client(
        &["ctl", "capture", "start", "/tmp/x", "--port", "trunk-z"],
        &lab.dir,
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("customer, trunk-a, trunk-b"),
        "{}",
        text(&o)
    );
    let running = lab.show_capture();
    assert_eq!(running["dir"], cap.display().to_string(), "{running}");
    assert_eq!(running["filter"], "every port; rx,tx", "{running}");

    lab.send(20, "02:00:00:00:0c:01");
    std::thread::sleep(Duration::from_millis(200));
    let o = lab.client(&["ctl", "--json", "capture", "stop"], &lab.dir);
    assert!(o.status.success(), "ctl capture stop: {}", text(&o));
    let stopped: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let report = &stopped["capture"];
    assert_eq!(report["dropped"], 0, "{stopped}");
    assert_eq!(report["files"], 1, "{stopped}");
    assert!(lab.show_capture().is_null(), "stopped");
    let o = lab.client(&["ctl", "capture", "stop"], &lab.dir);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no capture is running"),
        "{}",
        text(&o)
    );

    let pkts = read_capture(&cap);
    assert_eq!(
        Some(pkts.len() as u64),
        report["written"].as_u64(),
        "every written frame is in the file: {stopped}"
    );
    let ours = [2, 0, 0, 0, 0x0c, 1];
    let rx = pkts
        .iter()
        .filter(|(p, f, s)| p == "customer" && *f == 1 && *s == ours)
        .count();
    let tx = pkts
        .iter()
        .filter(|(p, f, s)| p.starts_with("trunk-") && *f == 2 && *s == ours)
        .count();
    // Both links carry the circuit (flows spread over them).
    assert_eq!(
        (rx, tx),
        (20, 20),
        "received and forwarded while capturing: {}",
        String::from_utf8_lossy(&lab.client(&["show", "--json", "summary"], &lab.dir).stdout)
    );
    assert!(
        pkts.iter().all(|(_, _, s)| *s != [2, 0, 0, 0, 0x0c, 2]),
        "nothing from before the start"
    );
}
