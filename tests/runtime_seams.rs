//! The seams a reload and a routing daemon plug into, on a running
//! forwarder over real interfaces: `Runtime::swap_plan` makes the workers
//! forward by a new plan, and a route written through
//! `Runtime::route_table` is forwarded by at once — no restart, no stage
//! touched.
//!
//! Needs root (a private network namespace, veth pairs, raw sockets);
//! without it the test says why it skips. The test thread moves into a
//! network namespace of its own (`unshare(CLONE_NEWNET)`): the veths, the
//! forwarder's workers and every frame stay there, and the namespace
//! disappears with the thread.

use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use xconnect::config::{self, PeeringKind};
use xconnect::frame::Batch;
use xconnect::gen::FrameSpec;
use xconnect::io::af_packet::{open_tx_socket, send_frames, AfPacketOptions, AfPacketPort};
use xconnect::io::Backend;
use xconnect::runtime::{RunOptions, Runtime};
use xconnect::wire::{self, ethernet::Mac, L3};

/// A provider edge over three veths: the customer port untagged, two
/// trunks with S-tag `s_tag`; the private peering in `mode`.
fn config(s_tag: u16, mode: &str) -> String {
    let l3 = if mode == "l3" {
        ", ipv4 = \"203.0.113.1/30\""
    } else {
        ""
    };
    format!(
        r#"
role = "provider-edge"
[[port]]
name = "customer"
interface = "xs-cust"
[[port]]
name = "trunk-a"
interface = "xs-tra"
[[port]]
name = "trunk-b"
interface = "xs-trb"
[[circuit]]
name = "seams"
encapsulation = "qinq"
s_tag = {s_tag}
primary = {{ port = "trunk-a" }}
secondary = {{ port = "trunk-b" }}
[[circuit.peering]]
kind = "private"
tag = 200
mode = "{mode}"
access = {{ port = "customer"{l3} }}
ipv4 = "192.0.2.0/29"
neighbors = [{{ ip = "192.0.2.2", mac = "02:00:00:00:00:a1" }}, {{ ip = "192.0.2.6", mac = "02:00:00:00:00:b1" }}]
"#
    )
    .replace(
        "neighbors",
        if mode == "l3" { "neighbors" } else { "# neighbors" },
    )
}

fn sh(cmd: &str) {
    let o = Command::new("sh").args(["-c", cmd]).output().unwrap();
    assert!(
        o.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Receives on the far ends of the trunks (`xs-tra-p`, `xs-trb-p`), outer
/// tag restored.
struct Far {
    ports: Vec<AfPacketPort>,
}

impl Far {
    /// The frames that arrive within `wait`, with their far port.
    fn collect(&mut self, wait: Duration) -> Vec<(usize, Vec<u8>)> {
        let mut got = Vec::new();
        let end = Instant::now() + wait;
        let mut batch = Batch::new();
        while Instant::now() < end {
            for (k, p) in self.ports.iter_mut().enumerate() {
                batch.clear();
                if p.recv(&mut batch).unwrap_or(0) > 0 {
                    got.extend((0..batch.len()).map(|i| (k, batch.buf(i).frame().to_vec())));
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        got
    }
}

fn udp_to(dst: &str, dst_mac: Mac, sport: u16) -> Vec<u8> {
    let mut s = FrameSpec::udp(
        &[],
        "203.0.113.2".parse().unwrap(),
        dst.parse().unwrap(),
        (sport, 9),
        0,
        64,
    );
    s.dst_mac = dst_mac;
    s.build()
}

fn in_private_namespace() -> Result<(), String> {
    // SAFETY: unshare(2) affects only the calling thread's namespaces.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(format!(
            "unshare(CLONE_NEWNET): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

#[test]
fn a_running_forwarder_takes_a_new_plan_and_new_routes() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipping: needs root (a network namespace, veths, raw sockets)");
        return;
    }
    // All of it in a thread of its own, in a namespace of its own.
    std::thread::spawn(|| {
        in_private_namespace().unwrap();
        sh("ip link set lo up");
        for (a, b) in [
            ("xs-cust", "xs-cust-p"),
            ("xs-tra", "xs-tra-p"),
            ("xs-trb", "xs-trb-p"),
        ] {
            sh(&format!(
                "ip link add {a} mtu 1508 type veth peer name {b} mtu 1508"
            ));
            sh(&format!("ip link set {a} up && ip link set {b} up"));
        }
        for dev in ["xs-cust", "xs-tra", "xs-trb"] {
            let end = Instant::now() + Duration::from_secs(5);
            while !String::from_utf8_lossy(
                &Command::new("ip")
                    .args(["-o", "link", "show", "dev", dev])
                    .output()
                    .unwrap()
                    .stdout,
            )
            .contains("state UP")
            {
                assert!(Instant::now() < end, "{dev} did not come up");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let path = std::path::Path::new("seams.toml");
        let cfg = config::load_str(&config(100, "l2"), path).unwrap_or_else(|d| panic!("{d}"));
        let ports = config::port_specs(&cfg);
        let plan = Arc::new(config::compile(&cfg));
        let stop = Arc::new(AtomicBool::new(false));
        let opts = RunOptions {
            stats_interval: None,
            first_core: None,
            ..RunOptions::default()
        };
        let rt = Runtime::start(plan, &ports, &opts, stop.clone(), |_| {}).unwrap();
        let far_opts = AfPacketOptions::default();
        let mut far = Far {
            ports: vec![
                AfPacketPort::open("xs-tra-p", &far_opts).unwrap(),
                AfPacketPort::open("xs-trb-p", &far_opts).unwrap(),
            ],
        };
        let cust = open_tx_socket("xs-cust-p").unwrap();
        let s_tags = |far: &mut Far, frames: &[Vec<u8>]| -> Vec<u16> {
            assert_eq!(
                send_frames(&cust, frames.iter().map(Vec::as_slice)),
                frames.len()
            );
            let mut vids: Vec<u16> = far
                .collect(Duration::from_millis(300))
                .iter()
                .filter_map(|(_, f)| wire::parse(f).ok())
                .filter(|i| i.l3 == L3::Ipv4)
                .map(|i| i.tags.vid(0))
                .collect();
            vids.dedup();
            vids
        };
        let frames: Vec<Vec<u8>> = (0..8)
            .map(|k| udp_to("198.51.100.9", [2, 0, 0, 0, 0, 0xee], 1000 + k))
            .collect();
        assert_eq!(s_tags(&mut far, &frames), [100], "the first plan's S-tag");

        // A reload: the same ports, S-tag 300. The workers take the new
        // plan before their next batch.
        let cfg2 = config::load_str(&config(300, "l2"), path).unwrap();
        let g = rt.swap_plan(Arc::new(config::compile(&cfg2))).unwrap();
        assert_eq!(g, 1);
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(s_tags(&mut far, &frames), [300], "the swapped plan's S-tag");

        // Routed: an l3 plan, then a route written into the running
        // forwarder through the route API.
        let cfg3 = config::load_str(&config(100, "l3"), path).unwrap_or_else(|d| panic!("{d}"));
        rt.swap_plan(Arc::new(config::compile(&cfg3))).unwrap();
        std::thread::sleep(Duration::from_millis(150));
        let ours = rt.plan().ports[0].mac;
        let routed: Vec<Vec<u8>> = (0..8)
            .map(|k| udp_to("198.51.100.9", ours, 2000 + k))
            .collect();
        let got = {
            assert_eq!(
                send_frames(&cust, routed.iter().map(Vec::as_slice)),
                routed.len()
            );
            far.collect(Duration::from_millis(300))
        };
        assert!(
            got.iter()
                .all(|(_, f)| wire::parse(f).map_or(true, |i| i.l3 != L3::Ipv4)),
            "no route yet: nothing routed to the trunks"
        );
        let table = rt
            .route_table("seams", PeeringKind::Private)
            .expect("an l3 peering");
        table
            .lock()
            .unwrap()
            .add(
                "198.51.100.0/24".parse().unwrap(),
                "192.0.2.2".parse().unwrap(),
            )
            .unwrap();
        assert_eq!(
            send_frames(&cust, routed.iter().map(Vec::as_slice)),
            routed.len()
        );
        let got = far.collect(Duration::from_millis(300));
        let on_primary: Vec<_> = got
            .iter()
            .filter(|(k, f)| *k == 0 && wire::parse(f).is_ok_and(|i| i.l3 == L3::Ipv4))
            .collect();
        assert_eq!(
            on_primary.len(),
            routed.len(),
            "every routed frame leaves by the new route's link"
        );
        for (_, f) in on_primary {
            assert_eq!(&f[..6], &[2, 0, 0, 0, 0, 0xa1], "to the primary MSEE's MAC");
            assert_eq!(wire::parse(f).unwrap().ttl, 63);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let report = rt.run(&opts, |_| {}).unwrap_or_else(|e| panic!("{e:#}"));
        assert!(report.l3.routed >= routed.len() as u64, "{}", report.line());
    })
    .join()
    .unwrap();
}

/// `xconnect run`'s FPM listener (`fpm` on the l3 peering): a route frame
/// sent to it is in the running forwarder's table at once, and the final
/// report carries the listener's counters.
#[test]
fn fpm_routes_reach_the_running_forwarders_table() {
    use std::io::Write;
    use xconnect::control::decode::encode::{push_route, route_message};
    use xconnect::control::fpm::frame;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipping: needs root (a network namespace, veths, raw sockets)");
        return;
    }
    std::thread::spawn(|| {
        in_private_namespace().unwrap();
        sh("ip link set lo up");
        for (a, b) in [
            ("xs-cust", "xs-cust-p"),
            ("xs-tra", "xs-tra-p"),
            ("xs-trb", "xs-trb-p"),
        ] {
            sh(&format!(
                "ip link add {a} mtu 1508 type veth peer name {b} mtu 1508"
            ));
            sh(&format!("ip link set {a} up && ip link set {b} up"));
        }
        let text = config(100, "l3").replace(
            "neighbors =",
            "fpm = \"127.0.0.1:0\"\nfpm_grace_ms = 1000\nneighbors =",
        );
        let cfg = config::load_str(&text, std::path::Path::new("seams.toml"))
            .unwrap_or_else(|d| panic!("{d}"));
        let stop = Arc::new(AtomicBool::new(false));
        let opts = RunOptions {
            stats_interval: None,
            first_core: None,
            fpm: config::fpm_specs(&cfg),
            ..RunOptions::default()
        };
        assert_eq!(opts.fpm.len(), 1);
        let rt = Runtime::start(
            Arc::new(config::compile(&cfg)),
            &config::port_specs(&cfg),
            &opts,
            stop.clone(),
            |_| {},
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
        let mut zebra = std::net::TcpStream::connect(rt.fpm_addrs()[0]).unwrap();
        let mut m = Vec::new();
        let hops: Vec<std::net::IpAddr> =
            vec!["192.0.2.2".parse().unwrap(), "192.0.2.6".parse().unwrap()];
        push_route(
            &mut m,
            true,
            0,
            route_message(
                "198.51.100.0/24".parse().unwrap(),
                netlink_packet_route::route::RouteType::Unicast,
                &hops,
                None,
            ),
        );
        zebra.write_all(&frame(&m).unwrap()).unwrap();
        let table = rt
            .route_table("seams", PeeringKind::Private)
            .expect("an l3 peering");
        let end = Instant::now() + Duration::from_secs(5);
        let dst: std::net::IpAddr = "198.51.100.9".parse().unwrap();
        while table.lock().unwrap().lookup(dst) != Some(xconnect::plan::PATH_ECMP as u32) {
            assert!(
                Instant::now() < end,
                "the FPM route never reached the table"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let report = rt.run(&opts, |_| {}).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(report.fpm.len(), 1);
        assert_eq!(report.fpm[0].routes.installed, 1, "{}", report.line());
        assert!(
            report.line().contains("fpm seams/private routes 1"),
            "{}",
            report.line()
        );
        assert!(report.json().contains("\"fpm\""));
    })
    .join()
    .unwrap();
}
