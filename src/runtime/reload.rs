//! Hot reload: a new configuration checked whole, compiled to a new
//! [`Plan`] that keeps the running tables where it can, and described.
//!
//! Contract:
//! - [`prepare`] reads nothing but its arguments and changes nothing that
//!   runs: the new configuration was loaded and validated by the caller
//!   (`config::load`, every error with file:line), and here the port list
//!   is compared with the running one. Ports cannot be added, removed or
//!   changed by a reload (each port's id is its MAC address and its place
//!   in every worker's queue list): such a configuration is refused with
//!   the ports named, and the running one stays. A port whose peerings now
//!   need a larger MTU than its interface has is refused likewise.
//! - [`adopt_tables`] is the one step that touches running state, and it
//!   runs only once everything was checked. For each `l3` peering of the
//!   new plan that also runs now (same circuit and kind):
//!   - when its VRF inputs ([`VrfInputs`]: links, peers, limits, connected
//!     routes) are unchanged, the new plan takes the running tables and
//!     their readers as they are — every route a source or `ctl route`
//!     wrote stays, with no gap — and the static routes that were added
//!     or removed in the file are added or deleted in place; its
//!     neighbour table is kept too (with its learned MACs) when the static
//!     neighbours did not change;
//!   - otherwise the new tables are kept, the running peering's routes that
//!     are not its old static routes are copied over where their link
//!     still has a peer, and the new tables take the running ones' place
//!     behind the same route API handle, so the FPM listener or followed
//!     kernel table of the peering writes into them from then on.
//! - [`describe`] lists what changed: peerings (with their attachments)
//!   added, removed or changed and how, and what happened to each running
//!   peering's routes.

use crate::config::{self, Config, PortSpec};
use crate::plan::{L3Peering, PeeringKind, Plan, Side, VrfInputs};
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// A checked, compiled configuration ready to be swapped in.
#[derive(Debug)]
pub struct Prepared {
    /// The configuration.
    pub cfg: Config,
    /// Its compiled plan (its l3 tables still its own).
    pub plan: Plan,
    /// Its port list (the running one's, with the new MTU needs).
    pub ports: Vec<PortSpec>,
}

/// The MTU of interface `name` in this network namespace, if readable.
fn interface_mtu(name: &str) -> Option<u32> {
    std::fs::read_to_string(format!("/sys/class/net/{name}/mtu"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Check `next` against the running port list and compile it.
pub fn prepare(running: &[PortSpec], next: Config) -> Result<Prepared, String> {
    let ports = config::port_specs(&next);
    let mut problems = Vec::new();
    let name_of = |p: &PortSpec| format!("{} ({}, {})", p.name, p.interface, p.backend.name());
    for p in &ports {
        match running.iter().find(|r| r.name == p.name) {
            None => problems.push(format!("added {}", name_of(p))),
            Some(r) if r.interface != p.interface || r.backend != p.backend || r.host != p.host => {
                problems.push(format!("changed {} (was {})", name_of(p), name_of(r)))
            }
            Some(_) => {}
        }
    }
    for r in running {
        if !ports.iter().any(|p| p.name == r.name) {
            problems.push(format!("removed {}", name_of(r)));
        }
    }
    if problems.is_empty()
        && ports
            .iter()
            .map(|p| &p.name)
            .ne(running.iter().map(|r| &r.name))
    {
        problems.push("the ports are listed in another order".to_string());
    }
    if !problems.is_empty() {
        return Err(format!(
            "{}: the ports differ from the running ones ({}); a reload keeps the ports as \
             they are (a port's id is its MAC address): restore them, or restart the forwarder \
             to change ports",
            next.source.display(),
            problems.join("; ")
        ));
    }
    for (p, r) in ports.iter().zip(running) {
        if p.required_mtu > r.required_mtu && p.host.is_none() {
            if let Some(mtu) = interface_mtu(&p.interface) {
                if mtu < p.required_mtu {
                    return Err(format!(
                        "{}: port {} now needs an MTU of {} on {} (its peerings' MTU plus the \
                         tags beyond the first), which has {}: raise it first (ip link set {} \
                         mtu {})",
                        next.source.display(),
                        p.name,
                        p.required_mtu,
                        p.interface,
                        mtu,
                        p.interface,
                        p.required_mtu
                    ));
                }
            }
        }
    }
    let plan = config::compile(&next);
    Ok(Prepared {
        cfg: next,
        plan,
        ports,
    })
}

/// The VRF inputs that decide whether a running table can be kept: all
/// but the static routes and neighbours.
fn table_key(i: &VrfInputs) -> VrfInputs {
    VrfInputs {
        statics: Vec::new(),
        static_neighbors: Vec::new(),
        ..i.clone()
    }
}

/// Give `next`'s l3 peerings the running tables of `running` where the
/// module contract says so. Returns one line per running peering kept
/// (what happened to its routes) and any route the tables refused.
pub fn adopt_tables(next: &mut Plan, running: &Plan) -> Vec<String> {
    let old: HashMap<(String, PeeringKind), &L3Peering> = running
        .l3_peerings()
        .map(|(c, k, l)| ((c.to_string(), k), l))
        .collect();
    let names: Vec<(String, PeeringKind)> = next
        .l3_peerings()
        .map(|(c, k, _)| (c.to_string(), k))
        .collect();
    let mut notes = Vec::new();
    for (new, key) in next.l3.iter_mut().zip(names) {
        let Some(old) = old.get(&key) else { continue };
        let name = format!("{}/{}", key.0, key.1.name());
        if table_key(&old.inputs) == table_key(&new.inputs) {
            notes.push(keep_tables(&name, new, old));
        } else {
            notes.push(carry_routes(&name, new, old));
        }
    }
    notes
}

/// `new` takes `old`'s tables (and neighbours when their statics are the
/// same); the static routes that changed are written in place.
fn keep_tables(name: &str, new: &mut L3Peering, old: &L3Peering) -> String {
    new.routes = old.routes.clone();
    new.v4 = old.v4.clone();
    new.v6 = old.v6.clone();
    let neighbors = if old.inputs.static_neighbors == new.inputs.static_neighbors {
        new.neighbors = old.neighbors.clone();
        "neighbours kept"
    } else {
        "static neighbours changed: neighbours learned again"
    };
    let removed: Vec<&(IpNet, IpAddr)> = old
        .inputs
        .statics
        .iter()
        .filter(|r| !new.inputs.statics.contains(r))
        .collect();
    let added: Vec<&(IpNet, IpAddr)> = new
        .inputs
        .statics
        .iter()
        .filter(|r| !old.inputs.statics.contains(r))
        .collect();
    let mut table = new.routes.lock().unwrap_or_else(|e| e.into_inner());
    let mut refused = Vec::new();
    for (prefix, nh) in &removed {
        if let Err(e) = table.delete(*prefix, Some(*nh)) {
            refused.push(format!("delete {prefix} via {nh}: {e}"));
        }
    }
    for (prefix, nh) in &added {
        if let Err(e) = table.add(*prefix, *nh) {
            refused.push(format!("add {prefix} via {nh}: {e}"));
        }
    }
    let st = table.state();
    let mut line = format!(
        "{name}: tables kept ({} IPv4, {} IPv6 prefixes), {neighbors}",
        st.v4_routes, st.v6_routes
    );
    if !added.is_empty() || !removed.is_empty() {
        line.push_str(&format!(
            "; static routes +{} -{}",
            added.len() - refused.iter().filter(|r| r.starts_with("add")).count(),
            removed.len()
        ));
    }
    if !refused.is_empty() {
        line.push_str(&format!("; refused: {}", refused.join("; ")));
    }
    line
}

/// `new` keeps its own tables, with `old`'s learned routes copied in, and
/// they take the place of `old`'s behind its route API handle.
fn carry_routes(name: &str, new: &mut L3Peering, old: &L3Peering) -> String {
    let statics: std::collections::HashSet<IpNet> =
        old.inputs.statics.iter().map(|r| r.0).collect();
    let mut fresh = new.routes.lock().unwrap_or_else(|e| e.into_inner());
    let mut running = old.routes.lock().unwrap_or_else(|e| e.into_inner());
    let (mut carried, mut lost) = (0usize, 0usize);
    for (prefix, sides, what) in running.entries() {
        if what != "route" || statics.contains(&prefix) {
            continue;
        }
        let v4 = prefix.addr().is_ipv4();
        let hops: Vec<IpAddr> = sides
            .iter()
            .filter_map(|s: &Side| fresh.peer_on(*s, v4))
            .collect();
        if hops.is_empty() || fresh.set_next_hops(prefix, &hops).is_err() {
            lost += 1;
        } else {
            carried += 1;
        }
    }
    std::mem::swap(&mut *fresh, &mut *running);
    drop(fresh);
    drop(running);
    new.routes = Arc::clone(&old.routes);
    format!(
        "{name}: links or limits changed: tables rebuilt, {carried} learned routes carried \
         over{}; neighbours learned again",
        if lost > 0 {
            format!(", {lost} dropped (no peer on their link now)")
        } else {
            String::new()
        }
    )
}

/// One line per peering added, removed or changed between `old` and
/// `new` (attachments named from `plan`, the new plan), and the number
/// of peerings unchanged.
pub fn describe(old: &Config, new: &Config, plan: &Plan) -> (Vec<String>, usize) {
    type Key = (String, PeeringKind);
    let peerings = |cfg: &Config| -> Vec<(Key, usize, usize)> {
        let mut v = Vec::new();
        for (ci, c) in cfg.circuits.iter().enumerate() {
            for (pi, p) in c.peerings.iter().enumerate() {
                v.push(((c.name.clone(), p.kind), ci, pi));
            }
        }
        v
    };
    let (before, after) = (peerings(old), peerings(new));
    fn port(cfg: &Config, i: usize) -> &str {
        cfg.ports.get(i).map_or("?", |p| p.name.as_str())
    }
    let attachments = |key: &Key| -> String {
        let mut v = Vec::new();
        for a in &plan.attachments {
            let Some(p) = plan.peerings.get(a.peering as usize) else {
                continue;
            };
            if p.circuit == key.0 && p.kind == key.1 {
                let tags: Vec<String> = a.vids.iter().map(u16::to_string).collect();
                v.push(format!(
                    "{} {}",
                    plan.port_name(a.port),
                    if tags.is_empty() {
                        "untagged".to_string()
                    } else {
                        tags.join(".")
                    }
                ));
            }
        }
        v.join(", ")
    };
    let mut lines = Vec::new();
    let mut unchanged = 0;
    for (key, ci, pi) in &after {
        let (c, p) = (&new.circuits[*ci], &new.circuits[*ci].peerings[*pi]);
        let name = format!("{}/{}", key.0, key.1.name());
        let Some((_, oci, opi)) = before.iter().find(|b| b.0 == *key) else {
            lines.push(format!(
                "added peering {name} ({}): {}",
                p.mode.name(),
                attachments(key)
            ));
            continue;
        };
        let (oc, op) = (&old.circuits[*oci], &old.circuits[*oci].peerings[*opi]);
        let mut what = Vec::new();
        let links = |c: &config::Circuit, cfg: &Config| {
            (
                c.encapsulation,
                c.s_tag,
                c.outer_tpid,
                port(cfg, c.primary.port).to_string(),
                c.primary.outer_tag,
                port(cfg, c.secondary.port).to_string(),
                c.secondary.outer_tag,
            )
        };
        if links(c, new) != links(oc, old) || p.tag != op.tag {
            what.push("trunk tags or links".to_string());
        }
        if (port(new, p.access.port), &p.access.vlans)
            != (port(old, op.access.port), &op.access.vlans)
        {
            what.push("access port or tags".to_string());
        }
        if p.mode != op.mode {
            what.push(format!("mode {} -> {}", op.mode.name(), p.mode.name()));
        }
        if (p.access.ipv4, p.access.ipv6, p.ipv4, p.ipv6)
            != (op.access.ipv4, op.access.ipv6, op.ipv4, op.ipv6)
        {
            what.push("link addresses".to_string());
        }
        if p.mtu != op.mtu {
            what.push(format!("mtu {} -> {}", op.mtu, p.mtu));
        }
        if (&p.dscp, &p.dscp_return, p.pcp_from_dscp)
            != (&op.dscp, &op.dscp_return, op.pcp_from_dscp)
        {
            what.push("DSCP policy".to_string());
        }
        if c.premium != oc.premium {
            what.push("premium (prefix limit)".to_string());
        }
        if p.routes != op.routes {
            let added = p.routes.iter().filter(|r| !op.routes.contains(r)).count();
            let removed = op.routes.iter().filter(|r| !p.routes.contains(r)).count();
            what.push(format!("static routes +{added} -{removed}"));
        }
        if p.neighbors != op.neighbors {
            what.push("static neighbours".to_string());
        }
        if p.fpm != op.fpm {
            what.push("fpm listener".to_string());
        }
        if p.kernel != op.kernel {
            what.push("followed kernel table".to_string());
        }
        if (&p.bgp, &p.bfd, p.peer_asn) != (&op.bgp, &op.bfd, op.peer_asn) {
            what.push("BGP/BFD settings (for frr-config; the data plane does not use them)".into());
        }
        if c.bandwidth_mbps != oc.bandwidth_mbps {
            what.push("bandwidth (informational)".to_string());
        }
        if what.is_empty() {
            unchanged += 1;
        } else {
            lines.push(format!("changed peering {name}: {}", what.join(", ")));
        }
    }
    for (key, ci, _) in &before {
        if !after.iter().any(|a| a.0 == *key) {
            let c = &old.circuits[*ci];
            lines.push(format!(
                "removed peering {}/{} (circuit {}): its attachments drain",
                key.0,
                key.1.name(),
                c.name
            ));
        }
    }
    (lines, unchanged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn text(name: &str) -> String {
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("examples")
                .join(name),
        )
        .unwrap()
    }

    fn load(text: &str) -> Config {
        config::load_str(text, Path::new("reload.toml")).unwrap_or_else(|d| panic!("{d}"))
    }

    #[test]
    fn ports_cannot_change() {
        let cfg = load(&text("pe-qinq.toml"));
        let running = config::port_specs(&cfg);
        let renamed = load(&text("pe-qinq.toml").replace("xc-pe-cust", "xc-other"));
        let e = prepare(&running, renamed).unwrap_err();
        assert!(e.contains("changed") && e.contains("xc-other"), "{e}");
        assert!(e.starts_with("reload.toml"), "{e}");
        assert!(prepare(&running, cfg).is_ok());
    }

    #[test]
    fn unchanged_tables_are_kept_with_learned_routes_and_statics_applied() {
        let t = text("lab-pe-l3.toml");
        let old_cfg = load(&t);
        let old = config::compile(&old_cfg);
        // A learned route in the running private table.
        let (_, _, private) = old.l3_peerings().next().unwrap();
        let learned: IpNet = "203.0.113.0/24".parse().unwrap();
        private
            .routes
            .lock()
            .unwrap()
            .add(learned, "192.0.2.2".parse().unwrap())
            .unwrap();
        // The new file drops the static route of the private peering.
        let new_text = t.replace("198.51.100.128/30", "198.51.100.128/31");
        let new_cfg = load(&new_text);
        let mut prepared = prepare(&config::port_specs(&old_cfg), new_cfg).unwrap();
        let notes = adopt_tables(&mut prepared.plan, &old);
        assert!(notes[0].contains("tables kept"), "{notes:?}");
        assert!(notes[0].contains("static routes +2 -2"), "{notes:?}");
        let (_, _, next) = prepared.plan.l3_peerings().next().unwrap();
        assert!(Arc::ptr_eq(&next.routes, &private.routes));
        assert!(Arc::ptr_eq(&next.neighbors, &private.neighbors));
        let t = next.routes.lock().unwrap();
        assert!(t.has_route(learned), "the learned route stays");
        assert!(t.has_route("198.51.100.128/31".parse().unwrap()));
        assert!(!t.has_route("198.51.100.128/30".parse().unwrap()));
        drop(t);
        // The reader the new plan uses sees it.
        assert!(next.v4.lookup("203.0.113.9".parse().unwrap()).is_some());
        let (lines, unchanged) = describe(&old_cfg, &prepared.cfg, &prepared.plan);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("static routes +2 -2"), "{lines:?}");
        assert_eq!(unchanged, 1);
    }

    #[test]
    fn changed_links_rebuild_and_carry_learned_routes_behind_the_same_handle() {
        let t = text("lab-pe-l3.toml");
        let old_cfg = load(&t);
        let old = config::compile(&old_cfg);
        let (_, _, private) = old.l3_peerings().next().unwrap();
        let learned: IpNet = "203.0.113.0/24".parse().unwrap();
        private
            .routes
            .lock()
            .unwrap()
            .set_next_hops(
                learned,
                &["192.0.2.2".parse().unwrap(), "192.0.2.6".parse().unwrap()],
            )
            .unwrap();
        let handle = private.routes.clone();
        // Premium raises the private peering's limit: its tables are rebuilt.
        let new_cfg = load(&t.replacen(
            "secondary = { port = \"trunk-b\" }\n",
            "secondary = { port = \"trunk-b\" }\npremium = true\n",
            1,
        ));
        assert_ne!(new_cfg, old_cfg);
        let mut prepared = prepare(&config::port_specs(&old_cfg), new_cfg).unwrap();
        let notes = adopt_tables(&mut prepared.plan, &old);
        assert!(notes[0].contains("rebuilt"), "{notes:?}");
        assert!(notes[0].contains("1 learned routes carried"), "{notes:?}");
        let (_, _, next) = prepared.plan.l3_peerings().next().unwrap();
        assert!(Arc::ptr_eq(&next.routes, &handle), "same route API handle");
        assert!(next.v4.lookup("203.0.113.9".parse().unwrap()).is_some());
        // Writes through the handle reach the new plan's readers.
        handle
            .lock()
            .unwrap()
            .add(
                "198.51.100.0/25".parse().unwrap(),
                "192.0.2.2".parse().unwrap(),
            )
            .unwrap();
        assert!(next.v4.lookup("198.51.100.1".parse().unwrap()).is_some());
    }

    #[test]
    fn describe_names_added_and_removed_peerings() {
        let t = text("pe-qinq.toml");
        let old = load(&t);
        let plan = config::compile(&old);
        let (lines, unchanged) = describe(&old, &old, &plan);
        assert!(lines.is_empty(), "{lines:?}");
        assert!(unchanged > 0);
        // Every peering of the file gone: each listed as removed.
        let none = Config {
            circuits: Vec::new(),
            ..old.clone()
        };
        let (lines, _) = describe(&old, &none, &plan);
        assert_eq!(lines.len(), unchanged, "{lines:?}");
        assert!(lines.iter().all(|l| l.starts_with("removed peering")));
        let (lines, _) = describe(&none, &old, &plan);
        assert!(lines.iter().all(|l| l.starts_with("added peering")));
        assert!(
            lines[0].contains("untagged") || lines[0].contains('.'),
            "{lines:?}"
        );
    }
}
