//! What `xconnect run --metrics` serves, read back by a Prometheus text
//! parser written outside this project (`prometheus-parse`): every sample
//! parses, with its labels and value, and the names are unique per label
//! set.

use prometheus_parse::{Scrape, Value as Sample};
use serde_json::json;
use std::collections::HashSet;
use xconnect::control::metrics::render;

#[test]
fn an_outside_parser_reads_every_sample() {
    let report = json!({
        "seconds": 3.0,
        "ports": [
            {"name": "cust", "interface": "xc-pe-priv", "up": true, "rx_packets": 42,
             "tx_packets": 40, "rx_bytes": 4200, "tx_bytes": 4000, "kernel_drops": 0},
            {"name": "trunk-a", "interface": "xc-pe-tra", "up": true, "rx_packets": 40,
             "tx_packets": 42, "rx_bytes": 4400, "tx_bytes": 4300, "kernel_drops": 2}
        ],
        "drops": {"no-route": 7, "ttl-expired": 1},
        "l3": {"routed": 80, "echo_replies": 2},
        "dscp_rewritten": 0,
        "held": 1,
        "fpm": [],
        "kernel": [{"name": "c/microsoft", "synced": true,
                    "routes": {"installed": 9, "accepted": 12, "rejected": 0, "withdrawn": 3}}],
        "reloads": {"ok": 2, "failed": 1},
        "tables": [{"peering": "c/private", "neighbors": 4,
                    "routes": {"v4_routes": 12, "v6_routes": 3, "v4_limit": 4000, "v6_limit": 100,
                               "over_limit": false, "limit_events": 1}}],
        "capture": {"dir": "/var/tmp/xc", "written": 77, "dropped": 5, "files": 1, "bytes": 9000}
    });
    let text = render(&report);
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("parses");
    let value = |name: &str, label: (&str, &str)| -> f64 {
        let s = scrape
            .samples
            .iter()
            .find(|s| s.metric == name && s.labels.get(label.0) == Some(label.1))
            .unwrap_or_else(|| panic!("{name}{{{}={}}} in\n{text}", label.0, label.1));
        match s.value {
            Sample::Counter(v) | Sample::Gauge(v) | Sample::Untyped(v) => v,
            _ => panic!("{name}: not a number"),
        }
    };
    assert_eq!(
        value("xconnect_port_rx_packets_total", ("port", "cust")),
        42.0
    );
    assert_eq!(
        value(
            "xconnect_port_kernel_drops_total",
            ("interface", "xc-pe-tra")
        ),
        2.0
    );
    assert_eq!(value("xconnect_drops_total", ("reason", "no-route")), 7.0);
    assert_eq!(value("xconnect_l3_events_total", ("event", "routed")), 80.0);
    assert_eq!(
        value(
            "xconnect_route_source_installed_routes",
            ("source", "kernel")
        ),
        9.0
    );
    assert_eq!(
        value(
            "xconnect_route_source_withdrawn_total",
            ("peering", "c/microsoft")
        ),
        3.0
    );
    assert_eq!(value("xconnect_reloads_total", ("result", "failed")), 1.0);
    assert_eq!(value("xconnect_route_prefixes", ("family", "ipv6")), 3.0);
    assert_eq!(
        value("xconnect_route_prefix_limit", ("family", "ipv4")),
        4000.0
    );
    assert_eq!(
        value(
            "xconnect_route_limit_events_total",
            ("peering", "c/private")
        ),
        1.0
    );
    assert_eq!(
        value("xconnect_neighbors_resolved", ("peering", "c/private")),
        4.0
    );
    let plain = |name: &str| -> f64 {
        match scrape
            .samples
            .iter()
            .find(|s| s.metric == name)
            .map(|s| &s.value)
        {
            Some(Sample::Counter(v) | Sample::Gauge(v) | Sample::Untyped(v)) => *v,
            _ => panic!("{name} in\n{text}"),
        }
    };
    assert_eq!(plain("xconnect_capture_written_total"), 77.0);
    assert_eq!(plain("xconnect_capture_dropped_total"), 5.0);
    assert_eq!(plain("xconnect_capture_running"), 1.0);
    let mut seen = HashSet::new();
    for s in &scrape.samples {
        let mut labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        labels.sort();
        assert!(
            seen.insert((s.metric.clone(), labels.join(","))),
            "{} twice",
            s.metric
        );
    }
    assert!(scrape.samples.len() >= 20, "{}", scrape.samples.len());
}
