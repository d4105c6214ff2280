//! The runtime's actions on the control socket (`xconnect ctl …`):
//! `reload [FILE]`, `link PORT down|up`, `route add|del …`,
//! `capture start|stop …`.
//!
//! Contract: [`answer`] runs on the runtime's main loop (the only place
//! that changes what the workers read), never panics on any request, and
//! answers every request: an error reply names what is wrong and what is
//! known; a success reply says what changed. An action either happens
//! whole or not at all.

use super::Runtime;
use crate::control::socket::error;
use crate::control::socket::ok;
use crate::plan::{Plan, RouteTable, ServiceMode, Side};
use ipnet::IpNet;
use serde_json::{json, Value};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The commands of `ctl`.
pub const COMMANDS: &[&str] = &["reload", "link", "route", "capture"];

/// The reply to `ctl ARGS…`.
pub fn answer(rt: &mut Runtime, args: &[String]) -> Value {
    let Some((cmd, rest)) = args.split_first() else {
        return error(format!("ctl what? one of {}", COMMANDS.join(", ")));
    };
    match cmd.as_str() {
        "reload" => match rest {
            [] => rt.reload(None),
            [file] => rt.reload(Some(std::path::Path::new(file))),
            _ => error("ctl reload [FILE]: one file at most"),
        },
        "link" => link(rt, rest),
        "route" => route(rt, rest),
        "capture" => super::capture_ctl::answer(rt, rest),
        other => error(format!(
            "unknown ctl command {other:?}: one of {}",
            COMMANDS.join(", ")
        )),
    }
}

/// `link PORT down|up`: the operator's state of a port. Down, the port
/// forwards nothing and its circuits' flows take the other link (from the
/// workers' next batch); up, it follows the kernel's state again.
fn link(rt: &mut Runtime, args: &[String]) -> Value {
    let [port, state] = args else {
        return error("ctl link PORT down|up");
    };
    let up = match state.as_str() {
        "up" => true,
        "down" => false,
        other => return error(format!("ctl link {port} {other}: down or up")),
    };
    let plan = rt.plan();
    let Some(id) = plan.port_id(port) else {
        let names: Vec<&str> = rt.ports().iter().map(|p| p.name.as_str()).collect();
        return error(format!(
            "no port {port:?}: the ports are {}",
            names.join(", ")
        ));
    };
    if rt.ports().get(id as usize).is_some_and(|p| p.removed) {
        return error(format!(
            "port {port} was removed by a reload: it is closed (add it back with a reload)"
        ));
    }
    let links = rt.link_state();
    let was = !links.is_admin_down(id);
    links.set_admin(id, up);
    let moved = trunk_partners(&plan, id);
    let message = match (up, was) {
        (false, false) | (true, true) => format!("port {port} is already administratively {state}"),
        (false, true) => format!("port {port} administratively down"),
        (true, false) if links.is_oper_up(id) => format!("port {port} up again"),
        (true, false) => {
            format!("port {port} is no longer held down, but its link is down in the kernel")
        }
    };
    let changes: Vec<String> = moved
        .iter()
        .map(|(circuit, other)| {
            if up {
                format!("circuit {circuit}: flows spread over both links again where both are up")
            } else {
                format!("circuit {circuit}: flows on {other}")
            }
        })
        .collect();
    rt.log(&format!("ctl: {message}"));
    ok(json!({
        "message": message,
        "port": port,
        "admin_down": !up,
        "up": links.is_up(id),
        "changes": changes,
    }))
}

/// The circuits that have port `id` as a trunk link, with the port of
/// their other link.
fn trunk_partners(plan: &Plan, id: u16) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for a in &plan.attachments {
        if a.port != id || !a.side.is_trunk() {
            continue;
        }
        let Some(p) = plan.peerings.get(a.peering as usize) else {
            continue;
        };
        let other_side = if a.side == Side::Primary {
            Side::Secondary
        } else {
            Side::Primary
        };
        let other = plan
            .attachments
            .iter()
            .find(|b| b.peering == a.peering && b.side == other_side)
            .map_or_else(|| "?".to_string(), |b| plan.port_name(b.port));
        if !out.iter().any(|(c, _)| *c == p.circuit) {
            out.push((p.circuit.clone(), other));
        }
    }
    out
}

/// The table of the l3 peering named `name` (`circuit/kind`, or a kind
/// when only one circuit has it).
fn table(plan: &Plan, name: &str) -> Result<(String, Arc<Mutex<RouteTable>>), String> {
    let tables = plan.route_tables();
    let found: Vec<&(String, crate::plan::PeeringKind, Arc<Mutex<RouteTable>>)> = tables
        .iter()
        .filter(|(c, k, _)| name == k.name() || name == format!("{c}/{}", k.name()))
        .collect();
    match found.as_slice() {
        [(c, k, t)] => Ok((format!("{c}/{}", k.name()), t.clone())),
        [] | [_, _, ..] => {
            let names: Vec<String> = tables
                .iter()
                .map(|(c, k, _)| format!("{c}/{}", k.name()))
                .collect();
            let l2: Vec<String> = plan
                .peerings
                .iter()
                .filter(|p| p.mode == ServiceMode::L2)
                .map(|p| format!("{}/{}", p.circuit, p.kind.name()))
                .collect();
            Err(format!(
                "{} l3 peering {name:?}: the l3 peerings are {}{}",
                if found.is_empty() {
                    "no"
                } else {
                    "more than one"
                },
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                },
                if l2.iter().any(|p| p.ends_with(name) || p == name) {
                    " (an l2 peering has no routes)"
                } else {
                    ""
                }
            ))
        }
    }
}

/// `route add PEERING PREFIX via NH [NH…]` / `route del PEERING PREFIX
/// [NH]`: a route of an l3 peering written into its running table (the
/// workers see it at once). It is not in the configuration file: a
/// reload keeps it as it keeps the routing daemon's.
fn route(rt: &mut Runtime, args: &[String]) -> Value {
    const USAGE: &str =
        "ctl route add PEERING PREFIX via NEXT-HOP [NEXT-HOP…] | ctl route del PEERING PREFIX [NEXT-HOP]";
    let (op, peering, prefix, rest) = match args {
        [op, peering, prefix, rest @ ..] => (op.as_str(), peering, prefix, rest),
        _ => return error(USAGE),
    };
    let prefix: IpNet = match prefix.parse() {
        Ok(p) => p,
        Err(_) => {
            return error(format!(
                "{prefix:?} is not a prefix (e.g. 203.0.113.0/24): {USAGE}"
            ))
        }
    };
    let hops: Vec<IpAddr> = {
        let words = match (op, rest) {
            ("add", [via, hops @ ..]) if via == "via" && !hops.is_empty() => hops,
            ("del", hops) if hops.len() <= 1 => hops,
            _ => return error(USAGE),
        };
        let mut v = Vec::new();
        for w in words {
            match w.parse() {
                Ok(a) => v.push(a),
                Err(_) => return error(format!("{w:?} is not an address: {USAGE}")),
            }
        }
        v
    };
    let plan = rt.plan();
    let (name, table) = match table(&plan, peering) {
        Ok(t) => t,
        Err(e) => return error(e),
    };
    let mut t = table.lock().unwrap_or_else(|e| e.into_inner());
    let result = match op {
        "add" => {
            // The next hops the route has, plus these: one change.
            let v4 = prefix.addr().is_ipv4();
            let mut all: Vec<IpAddr> = t
                .entries()
                .into_iter()
                .filter(|e| e.0 == prefix && e.2 == "route")
                .flat_map(|e| e.1.into_iter().filter_map(|s| t.peer_on(s, v4)))
                .collect();
            for h in &hops {
                if !all.contains(h) {
                    all.push(*h);
                }
            }
            t.set_next_hops(prefix, &all).map(|()| {
                format!(
                    "{name}: {prefix} via {}",
                    all.iter()
                        .map(IpAddr::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
        }
        _ => t
            .delete(prefix, hops.first().copied())
            .map(|removed| match (removed, hops.first()) {
                (true, Some(h)) => format!("{name}: {prefix} via {h} deleted"),
                (true, None) => format!("{name}: {prefix} deleted"),
                (false, _) => format!(
                    "{name}: no such route: {prefix}{}",
                    hops.first().map_or(String::new(), |h| format!(" via {h}"))
                ),
            }),
    };
    let state = t.state();
    drop(t);
    match result {
        Ok(message) => {
            rt.log(&format!("ctl: {message}"));
            ok(json!({ "message": message, "peering": name, "state": state }))
        }
        Err(e) => error(format!("{name}: {e}")),
    }
}
