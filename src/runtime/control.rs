//! The runtime's answers on the control socket ([`crate::control::socket`]):
//! `show` views built from the same [`Report`] as the stats line and from
//! the plan's route tables.
//!
//! Contract: [`answer`] never panics on any request; unknown commands and
//! views, and bad arguments, are error replies naming what is known. Route
//! tables are read under their writer lock (which no worker takes: workers
//! read the lock-free LPM), one peering at a time.

use super::Report;
use crate::control::socket::{error, ok, Request};
use crate::plan::{neighbor_slot, Family, PeeringKind, Plan, Side};
use ipnet::IpNet;
use serde_json::{json, Value};
use std::net::IpAddr;

/// The views of `show`.
pub const VIEWS: &[&str] = &[
    "summary",
    "ports",
    "drops",
    "routes",
    "neighbors",
    "sources",
    "capture",
];
/// `show routes` lists at most this many routes per peering (the counts
/// are always whole).
pub const ROUTE_LIST_LIMIT: usize = 1000;

/// The reply to `request`; `report` builds the current counters.
pub fn answer(request: &Request, plan: &Plan, report: &dyn Fn() -> Report) -> Value {
    match request.command.as_str() {
        "show" => {}
        other => {
            return error(format!(
                "unknown command {other:?}: known are \"show\", \"ctl\" and \"ping\""
            ))
        }
    }
    let Some((view, rest)) = request.args.split_first() else {
        return error(format!("show what? one of {}", VIEWS.join(", ")));
    };
    match view.as_str() {
        "summary" => ok(serde_json::to_value(report()).unwrap_or(Value::Null)),
        "ports" => ok(serde_json::to_value(report().ports).unwrap_or(Value::Null)),
        "drops" => ok(serde_json::to_value(report().drops).unwrap_or(Value::Null)),
        "sources" => {
            let r = report();
            ok(json!({ "fpm": r.fpm, "kernel": r.kernel }))
        }
        "capture" => ok(serde_json::to_value(report().capture).unwrap_or(Value::Null)),
        "routes" => routes(plan, rest),
        "neighbors" => neighbors(plan),
        other => error(format!(
            "unknown view {other:?}: one of {}",
            VIEWS.join(", ")
        )),
    }
}

/// `show neighbors`: per l3 peering and link, each peer address and the
/// MAC the data plane holds for it (learned from ARP/ND, or static), or
/// none yet.
fn neighbors(plan: &Plan) -> Value {
    let now = crate::pipeline::clock_ms();
    let mut out = Vec::new();
    for (circuit, kind, l3) in plan.l3_peerings() {
        let entries = l3.neighbors.entries(now);
        for link in l3.links.iter().flatten() {
            for (fam, peer) in [
                (Family::V4, link.peer_v4.map(IpAddr::V4)),
                (Family::V6, link.peer_v6.map(IpAddr::V6)),
            ] {
                let Some(peer) = peer else { continue };
                let held = entries
                    .get(neighbor_slot(link.side, fam))
                    .copied()
                    .flatten();
                out.push(json!({
                    "peering": format!("{circuit}/{}", kind.name()),
                    "link": link.side.name(),
                    "peer": peer.to_string(),
                    "mac": held.map(|(m, _)| crate::wire::ethernet::mac_to_string(&m)),
                    "static": held.is_some_and(|(_, s)| s),
                }));
            }
        }
    }
    ok(Value::Array(out))
}

/// `show routes [PEERING] [ADDRESS|PREFIX]`: PEERING is `circuit/kind`
/// or a kind (`private`, `microsoft`); an address is looked up (longest
/// match), a prefix listed if present.
fn routes(plan: &Plan, args: &[String]) -> Value {
    let mut peering: Option<&str> = None;
    let mut target: Option<&str> = None;
    for a in args {
        if a.parse::<IpAddr>().is_ok() || a.parse::<IpNet>().is_ok() {
            if target.replace(a).is_some() {
                return error("show routes takes one address or prefix");
            }
        } else if peering.replace(a).is_some() {
            return error(format!(
                "show routes [PEERING] [ADDRESS|PREFIX]: {a:?} is neither an address nor a \
                 prefix, and a peering was already given"
            ));
        }
    }
    let tables = plan.route_tables();
    let wanted = |circuit: &str, kind: PeeringKind| match peering {
        None => true,
        Some(p) => p == kind.name() || p == format!("{circuit}/{}", kind.name()),
    };
    let mut out = Vec::new();
    for (circuit, kind, table) in &tables {
        if !wanted(circuit, *kind) {
            continue;
        }
        let t = table.lock().unwrap_or_else(|e| e.into_inner());
        let name = format!("{circuit}/{}", kind.name());
        let hop = |side: Side, v4: bool| {
            t.peer_on(side, v4).map_or(side.name().to_string(), |a| {
                format!("{a} ({})", side.name())
            })
        };
        let describe = |net: IpNet, sides: &[Side], what: &str| {
            let via: Vec<String> = match what {
                "local" => vec!["local".to_string()],
                "connected" => sides
                    .iter()
                    .map(|s| format!("connected ({})", s.name()))
                    .collect(),
                _ => sides
                    .iter()
                    .map(|s| hop(*s, net.addr().is_ipv4()))
                    .collect(),
            };
            json!({ "prefix": net.to_string(), "kind": what, "via": via })
        };
        let entries = t.entries();
        let listed: Vec<Value> = match target {
            Some(x) => match x.parse::<IpAddr>() {
                Ok(addr) => match t.matching_prefix(addr) {
                    Some(net) => entries
                        .iter()
                        .filter(|e| e.0 == net)
                        .map(|e| describe(e.0, &e.1, e.2))
                        .collect(),
                    None => Vec::new(),
                },
                Err(_) => {
                    let net: IpNet = x.parse().map(|n: IpNet| n.trunc()).unwrap_or_default();
                    entries
                        .iter()
                        .filter(|e| e.0 == net)
                        .map(|e| describe(e.0, &e.1, e.2))
                        .collect()
                }
            },
            None => entries
                .iter()
                .take(ROUTE_LIST_LIMIT)
                .map(|e| describe(e.0, &e.1, e.2))
                .collect(),
        };
        out.push(json!({
            "peering": name,
            "state": t.state(),
            "entries": entries.len(),
            "routes": listed,
            "truncated": target.is_none() && entries.len() > ROUTE_LIST_LIMIT,
        }));
    }
    if out.is_empty() {
        let names: Vec<String> = tables
            .iter()
            .map(|(c, k, _)| format!("{c}/{}", k.name()))
            .collect();
        return error(match peering {
            Some(p) => format!(
                "no l3 peering {p:?}: known are {}",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ),
            None => "this forwarder has no l3 peering (no route tables)".to_string(),
        });
    }
    ok(Value::Array(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn plan(name: &str) -> Plan {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(name);
        let cfg = crate::config::load(&p).unwrap_or_else(|d| panic!("{d}"));
        crate::config::compile(&cfg)
    }

    fn show(plan: &Plan, args: &[&str]) -> Value {
        let r = Request {
            command: "show".into(),
            args: args.iter().map(|s| s.to_string()).collect(),
        };
        answer(&r, plan, &|| panic!("no report for these views"))
    }

    #[test]
    fn routes_per_peering_and_longest_match() {
        let p = plan("lab-pe-l3.toml");
        let v = show(&p, &["routes"]);
        assert_eq!(v["ok"], true, "{v}");
        let peerings: Vec<&str> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["peering"].as_str().unwrap())
            .collect();
        assert_eq!(peerings, ["contoso-ams/private", "contoso-ams/microsoft"]);
        let v = show(&p, &["routes", "private", "198.51.100.130"]);
        let only = &v["data"][0];
        assert_eq!(only["routes"][0]["prefix"], "198.51.100.128/30", "{v}");
        assert_eq!(
            only["routes"][0]["via"],
            json!(["192.0.2.2 (primary)", "192.0.2.6 (secondary)"])
        );
        assert_eq!(only["state"]["v4_routes"], 1);
        // Own addresses are local; a prefix is listed as written.
        let v = show(&p, &["routes", "contoso-ams/private", "192.0.2.1"]);
        assert_eq!(v["data"][0]["routes"][0]["via"], json!(["local"]), "{v}");
        let v = show(&p, &["routes", "microsoft", "198.51.100.132/30"]);
        assert_eq!(v["data"][0]["routes"].as_array().unwrap().len(), 1, "{v}");
        // The same address in the other peering: no route there.
        let v = show(&p, &["routes", "microsoft", "198.51.100.130"]);
        assert_eq!(v["data"][0]["routes"], json!([]), "{v}");
    }

    #[test]
    fn neighbors_per_link_and_family() {
        let p = plan("lab-pe-l3.toml");
        let v = show(&p, &["neighbors"]);
        let rows = v["data"].as_array().unwrap();
        // Private: access, primary, secondary in both families; Microsoft:
        // three links in IPv4.
        assert_eq!(rows.len(), 9, "{v}");
        let primary = rows
            .iter()
            .find(|r| r["peer"] == "192.0.2.2")
            .unwrap_or_else(|| panic!("{v}"));
        assert_eq!(primary["link"], "primary");
        assert_eq!(primary["peering"], "contoso-ams/private");
        assert_eq!(primary["mac"], Value::Null, "nothing learned yet");
        let (_, _, l3) = p.l3_peerings().next().unwrap();
        l3.neighbors.learn(
            neighbor_slot(Side::Primary, Family::V4),
            &[2, 0, 0, 0, 0, 9],
            crate::pipeline::clock_ms(),
        );
        let v = show(&p, &["neighbors"]);
        let primary = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["peer"] == "192.0.2.2")
            .cloned()
            .unwrap();
        assert_eq!(primary["mac"], "02:00:00:00:00:09", "{primary}");
    }

    #[test]
    fn capture_is_null_when_off_and_the_report_when_on() {
        let p = plan("pe-dot1q.toml");
        let cfg = crate::config::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pe-dot1q.toml"),
        )
        .unwrap_or_else(|d| panic!("{d}"));
        let ports = crate::config::port_specs(&cfg);
        let links = crate::pipeline::LinkState::new(ports.len());
        let report = |capture: Option<crate::capture::CaptureReport>| {
            let mut r = Report::new(
                &ports,
                &links,
                &crate::pipeline::Counters::default(),
                &[],
                std::time::Duration::ZERO,
                false,
            );
            r.capture = capture;
            r
        };
        let r = Request {
            command: "show".into(),
            args: vec!["capture".into()],
        };
        let v = answer(&r, &p, &|| report(None));
        assert_eq!(v, json!({ "ok": true, "data": null }));
        let on = crate::capture::CaptureReport {
            dir: "/var/tmp/xc".into(),
            filter: "every port; rx,tx,drop".into(),
            written: 7,
            ..Default::default()
        };
        let v = answer(&r, &p, &|| report(Some(on.clone())));
        assert_eq!(v["data"]["dir"], "/var/tmp/xc", "{v}");
        assert_eq!(v["data"]["written"], 7, "{v}");
        assert_eq!(v["data"]["filter"], "every port; rx,tx,drop", "{v}");
    }

    #[test]
    fn bad_requests_are_error_replies() {
        let p = plan("lab-pe-l3.toml");
        for args in [
            &[][..],
            &["colours"][..],
            &["routes", "gold"][..],
            &["routes", "private", "gold"][..],
            &["routes", "192.0.2.1", "192.0.2.2"][..],
        ] {
            let v = show(&p, args);
            assert_eq!(v["ok"], false, "{args:?}: {v}");
            assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()));
        }
        let v = answer(
            &Request {
                command: "reboot".into(),
                args: vec![],
            },
            &p,
            &|| panic!(),
        );
        assert!(v["error"].as_str().unwrap().contains("reboot"), "{v}");
        // An l2-only forwarder has no tables.
        let v = show(&plan("pe-qinq.toml"), &["routes"]);
        assert_eq!(v["ok"], false, "{v}");
    }
}
