//! The runtime's answers on the control socket ([`crate::control::socket`]):
//! `show` views built from the same [`Report`] as the stats line and from
//! the plan: its classification table (`attachments`), its circuits with
//! the link state of their trunks (`circuits`) and its route tables.
//!
//! Contract: [`answer`] never panics on any request; unknown commands and
//! views, and bad arguments, are error replies naming what is known. Route
//! tables are read under their writer lock (which no worker takes: workers
//! read the lock-free LPM), one peering at a time.

use super::Report;
use crate::control::socket::{error, ok, Request};
use crate::plan::{
    neighbor_slot, Attachment, Egress, Family, PeeringKind, Plan, Service, ServiceMode, Side,
    TagPush,
};
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
    "attachments",
    "circuits",
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
        "attachments" if rest.is_empty() => attachments(plan),
        "attachments" => error("show attachments takes no arguments"),
        "circuits" => circuits(plan, report, rest),
        other => error(format!(
            "unknown view {other:?}: one of {}",
            VIEWS.join(", ")
        )),
    }
}

/// How the egress tail picks one of a circuit's two trunk links for a
/// frame while both are up (`crate::pipeline::egress`, `Tail::over` and
/// `flow_hash`), for people.
pub const FLOW_HASH: &str = "a flow is the IP 5-tuple (addresses, protocol, and the ports of \
    unfragmented TCP/UDP), or the MAC addresses of a non-IP frame; the top bit of its hash \
    picks primary (0) or secondary (1), so one flow stays on one link while both are up";

/// The VIDs a push writes, outermost first.
fn push_vids(p: &TagPush) -> Vec<u16> {
    p.bytes()
        .chunks_exact(4)
        .map(|t| u16::from_be_bytes([t[2], t[3]]) & 0x0fff)
        .collect()
}

/// A tag stack for people, outermost first: `100.200` (QinQ S-tag 100,
/// C-tag 200), `300` (dot1q), `untagged`.
pub fn tags_text(vids: &[u16]) -> String {
    if vids.is_empty() {
        return "untagged".into();
    }
    vids.iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// An attachment of a host interface (an `l3` peering's TAP standing for
/// one of its links): cross-connected at Layer 2 to that link.
fn is_host(plan: &Plan, a: &Attachment) -> bool {
    matches!(a.service, Service::L2 { .. })
        && plan
            .peerings
            .get(a.peering as usize)
            .is_some_and(|p| p.mode == ServiceMode::L3)
}

/// `circuit/kind` of peering `id`.
fn peering_name(plan: &Plan, id: u16) -> String {
    plan.peerings.get(id as usize).map_or_else(
        || format!("peering {id}"),
        |p| format!("{}/{}", p.circuit, p.kind.name()),
    )
}

/// One push of an egress as JSON: the link it stands for, the port, the
/// tags written (and the outermost TPID).
fn push_json(plan: &Plan, link: Side, p: &TagPush) -> Value {
    let vids = push_vids(p);
    json!({
        "link": link.name(),
        "port": plan.port_name(p.port),
        "push": vids,
        "tags": tags_text(&vids),
        "tpid": format!("0x{:04x}", u16::from_be_bytes([p.bytes[0], p.bytes[1]])),
    })
}

/// `show attachments`: the classification table — per attachment (port
/// and exact tag stack) its peering, side, mode and where its frames go.
fn attachments(plan: &Plan) -> Value {
    let rows: Vec<Value> = plan
        .attachments
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let pp = plan.peerings.get(a.peering as usize);
            let host = is_host(plan, a);
            let (mode, pop, egress, to) = match a.service {
                Service::L2 { pop, egress, .. } => {
                    let outs: Vec<(Side, TagPush)> = match egress {
                        // A host interface's frames leave by its own link.
                        Egress::Access(t) if host => vec![(a.side, t)],
                        Egress::Access(t) => vec![(Side::Access, t)],
                        Egress::Trunk([p, s]) => vec![(Side::Primary, p), (Side::Secondary, s)],
                    };
                    let each: Vec<String> = outs
                        .iter()
                        .map(|(_, t)| {
                            let vids = push_vids(t);
                            if vids.is_empty() {
                                format!("{} untagged", plan.port_name(t.port))
                            } else {
                                format!("{} push {}", plan.port_name(t.port), tags_text(&vids))
                            }
                        })
                        .collect();
                    let mut to = each.join(" / ");
                    if outs.len() == 2 {
                        to.push_str(", per flow");
                    }
                    if host {
                        to.push_str(&format!(
                            " (host interface of {} {})",
                            peering_name(plan, a.peering),
                            a.side.name()
                        ));
                    }
                    let egress: Vec<Value> =
                        outs.iter().map(|(l, t)| push_json(plan, *l, t)).collect();
                    (ServiceMode::L2, pop, egress, to)
                }
                Service::L3 { pop, .. } => (
                    ServiceMode::L3,
                    pop,
                    Vec::new(),
                    format!("routed in {}", peering_name(plan, a.peering)),
                ),
            };
            json!({
                "id": i,
                "port": plan.port_name(a.port),
                "vlans": a.vids,
                "tags": tags_text(&a.vids),
                "circuit": pp.map(|p| p.circuit.clone()),
                "peering": pp.map(|p| p.kind.name()),
                "side": a.side.name(),
                "mode": mode.name(),
                "host": host,
                "pop": pop,
                "egress": egress,
                "to": to,
            })
        })
        .collect();
    ok(Value::Array(rows))
}

/// One trunk link of a circuit as the plan has it: its port, and the tags
/// outside the peering tag (S-tag, provider outer tag) on it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct TrunkLink {
    port: crate::frame::PortId,
    outer: Vec<u16>,
}

/// `show circuits [CIRCUIT]`: per circuit its two trunk links with their
/// link state (from the report), how its flows are spread over them now,
/// and its peerings with their tags.
fn circuits(plan: &Plan, report: &dyn Fn() -> Report, args: &[String]) -> Value {
    let mut names: Vec<&str> = Vec::new();
    for p in &plan.peerings {
        if !names.contains(&p.circuit.as_str()) {
            names.push(&p.circuit);
        }
    }
    let wanted: Vec<&str> = match args {
        [] => names.clone(),
        [one] if names.contains(&one.as_str()) => vec![one.as_str()],
        [one] => {
            return error(format!(
                "no circuit {one:?}: known are {}",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ))
        }
        _ => return error("show circuits takes at most one circuit name"),
    };
    let r = report();
    let up = |port: crate::frame::PortId| {
        let name = plan.port_name(port);
        r.ports.iter().find(|p| p.name == name).map(|p| p.up)
    };
    let mut out = Vec::new();
    for name in wanted {
        let mut links: [Option<TrunkLink>; 2] = [None, None];
        let mut peerings = Vec::new();
        for (pid, pp) in plan.peerings.iter().enumerate() {
            if pp.circuit != name {
                continue;
            }
            let mine = plan
                .attachments
                .iter()
                .filter(|a| a.peering as usize == pid && !is_host(plan, a));
            let mut trunk = serde_json::Map::new();
            let mut access = Value::Null;
            for a in mine {
                match a.side {
                    Side::Access => {
                        access = json!({
                            "port": plan.port_name(a.port),
                            "tags": tags_text(&a.vids),
                        })
                    }
                    side => {
                        let slot = &mut links[side as usize - 1];
                        if slot.is_none() {
                            // The peering tag is the innermost; the rest
                            // is the circuit's on this link.
                            let outer = a.vids.split_last().map_or(Vec::new(), |(_, o)| o.to_vec());
                            *slot = Some(TrunkLink {
                                port: a.port,
                                outer,
                            });
                        }
                        trunk.insert(side.name().into(), json!(tags_text(&a.vids)));
                    }
                }
            }
            peerings.push(json!({
                "kind": pp.kind.name(),
                "mode": pp.mode.name(),
                "access": access,
                "trunk": trunk,
            }));
        }
        let state: Vec<bool> = links
            .iter()
            .map(|l| l.as_ref().is_some_and(|l| up(l.port) == Some(true)))
            .collect();
        let same = links[0].is_some() && links[0] == links[1];
        let (pick, flows) = match (state[0], state[1]) {
            (true, true) if same => ("primary", "all on primary (the two links are one)"),
            (true, true) => ("per-flow", "per-flow over primary and secondary"),
            (true, false) => ("primary", "all on primary (secondary down)"),
            (false, true) => ("secondary", "all on secondary (primary down)"),
            (false, false) => ("none", "no path (both links down: dropped as no-link-up)"),
        };
        let links_json: Vec<Value> = [Side::Primary, Side::Secondary]
            .iter()
            .zip(&links)
            .map(|(side, l)| match l {
                Some(l) => json!({
                    "link": side.name(),
                    "port": plan.port_name(l.port),
                    "outer": l.outer,
                    "outer_tags": if l.outer.is_empty() { Value::Null } else { json!(tags_text(&l.outer)) },
                    "up": up(l.port),
                }),
                None => json!({ "link": side.name(), "port": null, "outer": [], "outer_tags": null, "up": null }),
            })
            .collect();
        out.push(json!({
            "circuit": name,
            "links": links_json,
            "pick": pick,
            "flows": flows,
            "hash": FLOW_HASH,
            "peerings": peerings,
        }));
    }
    ok(Value::Array(out))
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

/// A report of `cfg`'s ports with zero counters, the ports named in
/// `down` down and the others up (the fuzz target's and the tests').
fn report_for(cfg: &crate::config::Config, down: &[&str]) -> Report {
    let specs = crate::config::port_specs(cfg);
    let links = crate::pipeline::LinkState::new(specs.len());
    for (i, p) in specs.iter().enumerate() {
        if down.contains(&p.name.as_str()) {
            links.set(i as u16, false);
        }
    }
    let counters = crate::pipeline::Counters::new(specs.len());
    Report::new(
        &specs,
        &links,
        &counters,
        &[],
        std::time::Duration::ZERO,
        false,
    )
}

/// Whether `reply` has the shape every reply has: an object with a bool
/// `ok`, and a non-empty string `error` when it is false.
pub fn well_formed(reply: &Value) -> Result<(), String> {
    match reply["ok"].as_bool() {
        None => Err(format!("a reply without a bool \"ok\": {reply}")),
        Some(false) if reply["error"].as_str().is_none_or(str::is_empty) => {
            Err(format!("an error reply without an error message: {reply}"))
        }
        Some(_) => Ok(()),
    }
}

/// The check of the `control` fuzz target (and of its corpus, replayed by
/// `tests/fuzz_corpus.rs`): any bytes as one request line go through the
/// server's parser ([`crate::control::socket::parse_request`]), whose
/// refusal is a non-empty message; a request that parses goes through
/// [`answer`] against the plans of `examples/pe-qinq.toml`,
/// `lab-pe-l3.toml` and `lab-pe-bgp.toml` (host interfaces), each with a
/// report that has its `trunk-b` down. It never panics, and every reply is
/// [`well_formed`]. Panics when not: that is the finding.
pub fn fuzz_request_line(line: &[u8]) {
    use std::sync::OnceLock;
    static FIXTURES: OnceLock<Vec<(Plan, Report)>> = OnceLock::new();
    let fixtures = FIXTURES.get_or_init(|| {
        ["pe-qinq.toml", "lab-pe-l3.toml", "lab-pe-bgp.toml"]
            .iter()
            .map(|name| {
                let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("examples")
                    .join(name);
                let cfg = crate::config::load(&path).unwrap_or_else(|d| panic!("{d}"));
                (crate::config::compile(&cfg), report_for(&cfg, &["trunk-b"]))
            })
            .collect()
    });
    let request = match crate::control::socket::parse_request(line) {
        Ok(r) => r,
        Err(e) => {
            assert!(!e.is_empty(), "a refusal without a message");
            return;
        }
    };
    for (plan, report) in fixtures {
        let reply = answer(&request, plan, &|| report.clone());
        if let Err(e) = well_formed(&reply) {
            panic!("{request:?}: {e}");
        }
    }
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

    fn config(name: &str) -> crate::config::Config {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(name);
        crate::config::load(&p).unwrap_or_else(|d| panic!("{d}"))
    }

    /// `show ARGS` of `name`'s plan with the ports in `down` down.
    fn show_with(name: &str, down: &[&str], args: &[&str]) -> Value {
        let cfg = config(name);
        let plan = crate::config::compile(&cfg);
        let report = report_for(&cfg, down);
        let r = Request {
            command: "show".into(),
            args: args.iter().map(|s| s.to_string()).collect(),
        };
        answer(&r, &plan, &|| report.clone())
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
    fn attachments_of_a_qinq_cross_connect() {
        let v = show(&plan("pe-qinq.toml"), &["attachments"]);
        assert_eq!(v["ok"], true, "{v}");
        let rows = v["data"].as_array().unwrap();
        assert_eq!(rows.len(), 6, "{v}");
        // The access side: dot1q 10 in, both trunks out with S-tag 100 and
        // C-tag 200, per flow.
        let access = &rows[0];
        assert_eq!(access["port"], "customer");
        assert_eq!(access["tags"], "10");
        assert_eq!(access["circuit"], "contoso-ams");
        assert_eq!(access["peering"], "private");
        assert_eq!(access["side"], "access");
        assert_eq!(access["mode"], "l2");
        assert_eq!(access["pop"], 1);
        assert_eq!(access["egress"][0]["link"], "primary");
        assert_eq!(access["egress"][0]["port"], "trunk-a");
        assert_eq!(access["egress"][0]["push"], json!([100, 200]));
        assert_eq!(access["egress"][1]["port"], "trunk-b");
        assert_eq!(
            access["to"],
            "trunk-a push 100.200 / trunk-b push 100.200, per flow"
        );
        // A trunk side: 100.200 in, the access VLAN out.
        let primary = &rows[1];
        assert_eq!(primary["port"], "trunk-a");
        assert_eq!(primary["tags"], "100.200");
        assert_eq!(primary["side"], "primary");
        assert_eq!(primary["to"], "customer push 10");
        assert_eq!(rows[5]["tags"], "100.300");
        assert_eq!(rows[5]["side"], "secondary");
        // Dot1q: one tag on the trunks.
        let v = show(&plan("pe-dot1q.toml"), &["attachments"]);
        assert_eq!(v["data"][1]["tags"], "200", "{v}");
        assert_eq!(v["data"][0]["egress"][0]["push"], json!([200]), "{v}");
    }

    #[test]
    fn attachments_of_l3_peerings_and_host_interfaces() {
        let v = show(&plan("lab-pe-l3.toml"), &["attachments"]);
        let rows = v["data"].as_array().unwrap();
        assert_eq!(rows.len(), 6, "{v}");
        for r in rows {
            assert_eq!(r["mode"], "l3", "{r}");
            assert_eq!(r["egress"], json!([]), "{r}");
            let peering = format!("contoso-ams/{}", r["peering"].as_str().unwrap());
            assert_eq!(r["to"], format!("routed in {peering}"), "{r}");
        }
        assert_eq!(rows[0]["tags"], "untagged");
        assert_eq!(rows[1]["tags"], "100.200");
        // With host interfaces: each TAP is cross-connected to its link.
        let v = show(&plan("lab-pe-bgp.toml"), &["attachments"]);
        let hosts: Vec<&Value> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["host"] == true)
            .collect();
        assert_eq!(hosts.len(), 6, "{v}");
        let h = hosts
            .iter()
            .find(|r| r["side"] == "primary" && r["peering"] == "private")
            .unwrap();
        assert_eq!(h["mode"], "l2");
        assert_eq!(h["egress"][0]["port"], "trunk-a", "{h}");
        assert_eq!(h["egress"][0]["link"], "primary", "{h}");
        assert!(
            h["to"]
                .as_str()
                .unwrap()
                .ends_with("(host interface of contoso-ams/private primary)"),
            "{h}"
        );
        let v = show(&plan("lab-pe-l3.toml"), &["attachments", "x"]);
        assert_eq!(v["ok"], false, "{v}");
    }

    #[test]
    fn circuits_follow_the_trunk_links() {
        let v = show_with("pe-qinq.toml", &[], &["circuits"]);
        assert_eq!(v["ok"], true, "{v}");
        let c = &v["data"][0];
        assert_eq!(c["circuit"], "contoso-ams");
        assert_eq!(c["links"][0]["port"], "trunk-a");
        assert_eq!(c["links"][0]["outer"], json!([100]), "the S-tag");
        assert_eq!(c["links"][0]["up"], true);
        assert_eq!(c["links"][1]["port"], "trunk-b");
        assert_eq!(c["pick"], "per-flow");
        assert_eq!(c["flows"], "per-flow over primary and secondary");
        let kinds: Vec<&Value> = c["peerings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| &p["kind"])
            .collect();
        assert_eq!(kinds, [&json!("private"), &json!("microsoft")]);
        assert_eq!(c["peerings"][0]["trunk"]["secondary"], "100.200");
        assert_eq!(c["peerings"][1]["access"]["tags"], "20");
        // One trunk down: everything on the other.
        let v = show_with("pe-qinq.toml", &["trunk-b"], &["circuits"]);
        let c = &v["data"][0];
        assert_eq!(c["links"][1]["up"], false, "{v}");
        assert_eq!(c["pick"], "primary");
        assert_eq!(c["flows"], "all on primary (secondary down)");
        let v = show_with("pe-qinq.toml", &["trunk-a"], &["circuits"]);
        assert_eq!(v["data"][0]["pick"], "secondary", "{v}");
        let v = show_with("pe-qinq.toml", &["trunk-a", "trunk-b"], &["circuits"]);
        assert_eq!(v["data"][0]["pick"], "none", "{v}");
        assert!(v["data"][0]["flows"]
            .as_str()
            .unwrap()
            .starts_with("no path"));
        // Dot1q: no tag outside the peering's; l3 peerings count too.
        let v = show_with("pe-dot1q.toml", &[], &["circuits"]);
        assert_eq!(v["data"][0]["links"][0]["outer"], json!([]), "{v}");
        assert_eq!(v["data"][0]["links"][0]["outer_tags"], Value::Null);
        let v = show_with(
            "lab-pe-bgp.toml",
            &["trunk-a"],
            &["circuits", "contoso-ams"],
        );
        let c = &v["data"][0];
        assert_eq!(
            c["links"][0]["port"], "trunk-a",
            "not a host interface: {v}"
        );
        assert_eq!(c["peerings"][0]["mode"], "l3");
        assert_eq!(c["pick"], "secondary");
        let v = show_with("lab-pe-bgp.toml", &[], &["circuits", "fabrikam"]);
        assert!(v["error"].as_str().unwrap().contains("contoso-ams"), "{v}");
    }

    #[test]
    fn every_reply_is_well_formed() {
        for line in [
            &b""[..],
            b"{}",
            b"{\"command\":\"show\",\"args\":[\"circuits\"]}",
            b"{\"command\":\"show\",\"args\":[\"attachments\"]}\n",
            b"{\"command\":\"show\",\"args\":[\"routes\",\"::/0\"]}",
            b"{\"command\":\"show\",\"args\":[\"summary\"]}",
            b"{\"command\":\"ctl\",\"args\":[\"reload\"]}",
            b"\xff\xfe",
        ] {
            fuzz_request_line(line);
        }
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
