//! Prometheus metrics of a running forwarder (`xconnect run --metrics
//! ADDR:PORT`): `GET /metrics` answers the text exposition format, written
//! by the `prometheus-client` encoder from the same report as the stats
//! line and `xconnect show summary`.
//!
//! Contract:
//! - [`MetricsServer::start`] binds before it returns (a bad or busy
//!   address is a start-up error naming it); one thread serves requests one
//!   at a time, each answered within [`super::socket::IO_TIMEOUT`] or with
//!   503. Paths other than `/metrics` get 404, methods other than GET 405.
//! - The numbers come from the runtime's main loop over the same channel as
//!   the control socket ([`super::socket::Call`]): the metrics thread takes
//!   no lock a worker waits on, and a scrape costs the workers nothing.
//! - [`render`] turns a report (as JSON) into the exposition; it never
//!   panics on any JSON (missing fields are left out).

use super::socket::{Call, Request, IO_TIMEOUT};
use crossbeam::channel::{bounded, Sender};
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::Value;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the serving loop looks at the stop flag.
const POLL: Duration = Duration::from_millis(50);

/// Labels of a port.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PortLabels {
    port: String,
    interface: String,
}

/// Labels of a drop reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

/// Labels of a peering's table of one family.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabels {
    peering: String,
    family: String,
}

/// Labels of a peering.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeeringLabels {
    peering: String,
}

/// Labels of an outcome (reloads).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

/// Labels of an l3 counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    event: String,
}

/// Labels of a route source.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
    peering: String,
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// The exposition of `report` (the JSON of the runtime's report).
pub fn render(report: &Value) -> String {
    let mut reg = Registry::with_prefix("xconnect");
    let uptime = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
    uptime.set(report["seconds"].as_f64().unwrap_or(0.0));
    reg.register(
        "uptime_seconds",
        "Seconds since the forwarder started",
        uptime,
    );

    let port_counter = |reg: &mut Registry, name: &str, help: &str, key: &str| {
        let f = Family::<PortLabels, Counter>::default();
        for p in report["ports"].as_array().into_iter().flatten() {
            f.get_or_create(&PortLabels {
                port: p["name"].as_str().unwrap_or("").into(),
                interface: p["interface"].as_str().unwrap_or("").into(),
            })
            .inc_by(u(&p[key]));
        }
        reg.register(name, help, f);
    };
    port_counter(
        &mut reg,
        "port_rx_packets",
        "Frames received per port",
        "rx_packets",
    );
    port_counter(
        &mut reg,
        "port_tx_packets",
        "Frames sent per port",
        "tx_packets",
    );
    port_counter(
        &mut reg,
        "port_rx_bytes",
        "Bytes received per port",
        "rx_bytes",
    );
    port_counter(&mut reg, "port_tx_bytes", "Bytes sent per port", "tx_bytes");
    port_counter(
        &mut reg,
        "port_kernel_drops",
        "Frames the kernel dropped before the port's socket (ring full)",
        "kernel_drops",
    );
    let up = Family::<PortLabels, Gauge>::default();
    for p in report["ports"].as_array().into_iter().flatten() {
        up.get_or_create(&PortLabels {
            port: p["name"].as_str().unwrap_or("").into(),
            interface: p["interface"].as_str().unwrap_or("").into(),
        })
        .set(i64::from(p["up"] == true));
    }
    reg.register("port_up", "1 when the port's link is up", up);
    let admin = Family::<PortLabels, Gauge>::default();
    for p in report["ports"].as_array().into_iter().flatten() {
        admin
            .get_or_create(&PortLabels {
                port: p["name"].as_str().unwrap_or("").into(),
                interface: p["interface"].as_str().unwrap_or("").into(),
            })
            .set(i64::from(p["admin_down"] == true));
    }
    reg.register(
        "port_admin_down",
        "1 when the operator took the port down (xconnect ctl link PORT down)",
        admin,
    );
    port_counter(
        &mut reg,
        "port_down_events",
        "Times the port stopped forwarding (down in the kernel or taken down): failovers of its circuits",
        "down_events",
    );
    let prefixes = Family::<TableLabels, Gauge>::default();
    let limit = Family::<TableLabels, Gauge>::default();
    let over = Family::<PeeringLabels, Gauge>::default();
    let events = Family::<PeeringLabels, Counter>::default();
    let neighbors = Family::<PeeringLabels, Gauge>::default();
    for t in report["tables"].as_array().into_iter().flatten() {
        let peering: String = t["peering"].as_str().unwrap_or("").into();
        let r = &t["routes"];
        for (family, n, l) in [
            ("ipv4", "v4_routes", "v4_limit"),
            ("ipv6", "v6_routes", "v6_limit"),
        ] {
            let labels = TableLabels {
                peering: peering.clone(),
                family: family.into(),
            };
            prefixes
                .get_or_create(&labels)
                .set(u(&r[n]).min(i64::MAX as u64) as i64);
            limit
                .get_or_create(&labels)
                .set(u(&r[l]).min(i64::MAX as u64) as i64);
        }
        let p = PeeringLabels { peering };
        over.get_or_create(&p)
            .set(i64::from(r["over_limit"] == true));
        events.get_or_create(&p).inc_by(u(&r["limit_events"]));
        neighbors
            .get_or_create(&p)
            .set(u(&t["neighbors"]).min(i64::MAX as u64) as i64);
    }
    reg.register(
        "route_prefixes",
        "Prefixes in an l3 peering's table (configured and learned), by family",
        prefixes,
    );
    reg.register(
        "route_prefix_limit",
        "The peering's prefix limit, by family",
        limit,
    );
    reg.register(
        "route_over_limit",
        "1 while the peering's routes are withdrawn for being over the prefix limit",
        over,
    );
    reg.register(
        "route_limit_events",
        "Times the prefix limit took the peering's routes down",
        events,
    );
    reg.register(
        "neighbors_resolved",
        "Neighbour slots of the peering holding a MAC (learned or static)",
        neighbors,
    );
    let capture = &report["capture"];
    let running = Gauge::<i64>::default();
    running.set(i64::from(capture.is_object()));
    reg.register("capture_running", "1 while a capture runs", running);
    let written = Counter::<u64>::default();
    written.inc_by(u(&capture["written"]));
    reg.register(
        "capture_written",
        "Frames the running capture wrote",
        written,
    );
    let lost = Counter::<u64>::default();
    lost.inc_by(u(&capture["dropped"]));
    reg.register(
        "capture_dropped",
        "Frames the running capture selected but could not keep (writer behind)",
        lost,
    );
    let reloads = Family::<ResultLabels, Counter>::default();
    for result in ["ok", "failed"] {
        reloads
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .inc_by(u(&report["reloads"][result]));
    }
    reg.register(
        "reloads",
        "Configuration reloads, swapped in (ok) or refused (failed)",
        reloads,
    );

    let drops = Family::<ReasonLabels, Counter>::default();
    for (reason, n) in report["drops"].as_object().into_iter().flatten() {
        drops
            .get_or_create(&ReasonLabels {
                reason: reason.clone(),
            })
            .inc_by(u(n));
    }
    reg.register("drops", "Frames dropped, by reason", drops);

    let l3 = Family::<EventLabels, Counter>::default();
    for (event, n) in report["l3"].as_object().into_iter().flatten() {
        l3.get_or_create(&EventLabels {
            event: event.clone(),
        })
        .inc_by(u(n));
    }
    reg.register(
        "l3_events",
        "What the managed Layer 3 service did (routed, echo replies, ICMP errors, ARP/ND, punts)",
        l3,
    );
    let dscp = Counter::<u64>::default();
    dscp.inc_by(u(&report["dscp_rewritten"]));
    reg.register("dscp_rewritten", "Packets whose DSCP was rewritten", dscp);
    let held = Gauge::<i64>::default();
    held.set(u(&report["held"]).min(i64::MAX as u64) as i64);
    reg.register(
        "held_packets",
        "Packets waiting for a neighbour's MAC now",
        held,
    );

    let installed = Family::<SourceLabels, Gauge>::default();
    let live = Family::<SourceLabels, Gauge>::default();
    let accepted = Family::<SourceLabels, Counter>::default();
    let rejected = Family::<SourceLabels, Counter>::default();
    let withdrawn = Family::<SourceLabels, Counter>::default();
    for (source, list, flag) in [
        ("fpm", &report["fpm"], "connected"),
        ("kernel", &report["kernel"], "synced"),
    ] {
        for s in list.as_array().into_iter().flatten() {
            let l = SourceLabels {
                source: source.into(),
                peering: s["name"].as_str().unwrap_or("").into(),
            };
            let r = &s["routes"];
            installed
                .get_or_create(&l)
                .set(u(&r["installed"]).min(i64::MAX as u64) as i64);
            live.get_or_create(&l).set(i64::from(s[flag] == true));
            accepted.get_or_create(&l).inc_by(u(&r["accepted"]));
            rejected.get_or_create(&l).inc_by(u(&r["rejected"]));
            withdrawn.get_or_create(&l).inc_by(u(&r["withdrawn"]));
        }
    }
    reg.register(
        "route_source_installed_routes",
        "Routes a route source (FPM, kernel table) has installed in its peering's table",
        installed,
    );
    reg.register(
        "route_source_up",
        "1 when the route source is connected (FPM) or synced (kernel table)",
        live,
    );
    reg.register("route_source_accepted", "Route updates written", accepted);
    reg.register("route_source_rejected", "Route updates refused", rejected);
    reg.register(
        "route_source_withdrawn",
        "Routes withdrawn by the grace timers or a resync",
        withdrawn,
    );
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, &reg);
    out
}

/// A running metrics endpoint.
pub struct MetricsServer {
    local: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsServer")
            .field("local", &self.local)
            .finish()
    }
}

impl MetricsServer {
    /// Bind `addr` and serve `/metrics`, asking `calls` for the report.
    pub fn start(addr: SocketAddr, calls: Sender<Call>) -> io::Result<MetricsServer> {
        let server = tiny_http::Server::http(addr).map_err(|e| {
            io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!("metrics on {addr}: {e}"),
            )
        })?;
        let local = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| io::Error::other(format!("metrics on {addr}: not an IP listener")))?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("xc-metrics".into())
                .spawn(move || serve(&server, &calls, &stop))?
        };
        Ok(MetricsServer {
            local,
            stop,
            thread: Some(thread),
        })
    }

    /// The address it listens on (as bound).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(server: &tiny_http::Server, calls: &Sender<Call>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let req = match server.recv_timeout(POLL) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(_) => {
                std::thread::sleep(POLL);
                continue;
            }
        };
        let (code, body) = if *req.method() != tiny_http::Method::Get {
            (405, "only GET\n".to_string())
        } else if req.url() != "/metrics" {
            (404, "the metrics are at /metrics\n".to_string())
        } else {
            match summary(calls) {
                Some(report) => (200, render(&report)),
                None => (503, "the forwarder did not answer in time\n".to_string()),
            }
        };
        let mut resp = tiny_http::Response::from_string(body).with_status_code(code);
        if code == 200 {
            if let Ok(h) = tiny_http::Header::from_bytes(
                &b"Content-Type"[..],
                &b"text/plain; version=0.0.4; charset=utf-8"[..],
            ) {
                resp = resp.with_header(h);
            }
        }
        let _ = req.respond(resp);
    }
}

/// The runtime's report, over the control channel.
fn summary(calls: &Sender<Call>) -> Option<Value> {
    let (tx, rx) = bounded(1);
    calls
        .send(Call {
            request: Request {
                command: "show".into(),
                args: vec!["summary".into()],
            },
            reply: tx,
        })
        .ok()?;
    let v = rx.recv_timeout(IO_TIMEOUT).ok()?;
    (v["ok"] == true).then(|| v["data"].clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report() -> Value {
        json!({
            "seconds": 12.5,
            "ports": [
                {"name": "trunk-a", "interface": "xc-pe-tra", "up": true, "rx_packets": 10,
                 "tx_packets": 7, "rx_bytes": 1000, "tx_bytes": 700, "kernel_drops": 1},
                {"name": "trunk-b", "interface": "xc-pe-trb", "up": false, "rx_packets": 0,
                 "tx_packets": 0, "rx_bytes": 0, "tx_bytes": 0, "kernel_drops": 0}
            ],
            "drops": {"no-route": 3, "port-down": 0},
            "l3": {"routed": 5, "punted_ip": 2},
            "dscp_rewritten": 4,
            "held": 0,
            "fpm": [{"name": "c/private", "connected": true,
                     "routes": {"installed": 2, "accepted": 3, "rejected": 1, "withdrawn": 0}}],
            "kernel": []
        })
    }

    #[test]
    fn the_exposition_names_every_counter_with_its_labels() {
        let t = render(&report());
        for line in [
            "xconnect_port_rx_packets_total{port=\"trunk-a\",interface=\"xc-pe-tra\"} 10",
            "xconnect_port_up{port=\"trunk-b\",interface=\"xc-pe-trb\"} 0",
            "xconnect_drops_total{reason=\"no-route\"} 3",
            "xconnect_l3_events_total{event=\"routed\"} 5",
            "xconnect_dscp_rewritten_total 4",
            "xconnect_route_source_installed_routes{source=\"fpm\",peering=\"c/private\"} 2",
            "xconnect_route_source_up{source=\"fpm\",peering=\"c/private\"} 1",
            "xconnect_uptime_seconds 12.5",
        ] {
            assert!(t.contains(line), "{line} missing from\n{t}");
        }
        assert!(t.contains("# TYPE xconnect_drops counter"), "{t}");
        assert!(t.ends_with("# EOF\n"), "{t}");
    }

    #[test]
    fn any_json_renders_without_a_panic() {
        for v in [
            json!(null),
            json!([]),
            json!({"ports": 3, "drops": [1], "fpm": {"x": 1}}),
            json!({"ports": [{"name": 5}], "seconds": "x"}),
        ] {
            let t = render(&v);
            assert!(t.contains("xconnect_uptime_seconds"), "{t}");
        }
    }

    #[test]
    fn serves_metrics_404_and_503() {
        let (tx, rx) = crossbeam::channel::unbounded::<Call>();
        let m = MetricsServer::start("127.0.0.1:0".parse().unwrap(), tx).unwrap();
        let owner = std::thread::spawn(move || {
            // Answer one scrape, then stop answering.
            if let Ok(c) = rx.recv() {
                let _ = c.reply.send(super::super::socket::ok(report()));
            }
            std::thread::sleep(IO_TIMEOUT * 2);
            drop(rx);
        });
        let get = |path: &str| -> String {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(m.local_addr()).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            out
        };
        let ok = get("/metrics");
        assert!(
            ok.starts_with("HTTP/1.0 200") || ok.starts_with("HTTP/1.1 200"),
            "{ok}"
        );
        assert!(ok.contains("xconnect_port_rx_packets_total"), "{ok}");
        assert!(get("/other").contains(" 404 "));
        let late = get("/metrics");
        assert!(late.contains(" 503 "), "{late}");
        let _ = owner.join();
    }
}
