//! Hot reload: a new configuration checked whole, compiled to a new
//! [`Plan`] that keeps the running tables where it can, and described.
//!
//! Contract:
//! - [`prepare`] reads nothing but its arguments and changes nothing that
//!   runs: the new configuration was loaded and validated by the caller
//!   (`config::load`, every error with file:line), and here the port list
//!   is compared with the running one. The new configuration is compiled
//!   in the running [`PortLayout`]: a port that stays keeps its id (its
//!   MAC address, its counters, its place in every worker's queue list),
//!   an added port takes a new id, a removed one keeps its id reserved.
//!   [`Prepared`] lists the ports to open (added, or their interface,
//!   backend or host set-up changed) and to close; the caller opens them
//!   before anything changes, so a port that cannot be opened refuses the
//!   reload. A kept port whose peerings now need a larger MTU than its
//!   interface has is refused likewise, as is a pnet port added to a
//!   forwarder with several workers.
//! - [`adopt_tables`] is the one step that touches running state, and it
//!   runs only once everything was checked. For each `l3` peering of the
//!   new plan that also runs now (same circuit and kind):
//!   - when its VRF inputs ([`VrfInputs`]: links, peers, limits, connected
//!     routes) are unchanged, the new plan takes the running tables and
//!     their readers as they are — every route a source or `ctl route`
//!     wrote stays, with no gap — and the static routes that were added
//!     or removed in the file are added or deleted in place; its
//!     neighbour table is kept too (with its learned MACs) when the static
//!     neighbours did not change and every link is on the same port with
//!     the same tags (a MAC belongs to its segment);
//!   - otherwise the new tables are kept, the running peering's routes that
//!     are not its old static routes are copied over where their link
//!     still has a peer, and the new tables take the running ones' place
//!     behind the same route API handle, so the FPM listener or followed
//!     kernel table of the peering writes into them from then on.
//! - [`describe`] lists what changed: peerings (with their attachments)
//!   added, removed or changed and how, and what happened to each running
//!   peering's routes.

use crate::config::{self, Config, PortLayout, PortSpec};
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
    /// Its compiled plan (its l3 tables still its own), ports numbered
    /// by `layout`.
    pub plan: Plan,
    /// Its port list by id: ports kept, opened and removed (a removed
    /// port keeps its interface and backend, for reports).
    pub ports: Vec<PortSpec>,
    /// The running layout with the ports `cfg` adds.
    pub layout: PortLayout,
    /// Ports to open (added, or their interface, backend or host set-up
    /// changed), by id.
    pub open: Vec<u16>,
    /// Ports to close (removed), by id.
    pub close: Vec<u16>,
}

impl Prepared {
    /// One line per port opened or closed.
    pub fn port_changes(&self, running: &[PortSpec]) -> Vec<String> {
        let name_of = |p: &PortSpec| format!("{} ({}, {})", p.name, p.interface, p.backend.name());
        let mut out = Vec::new();
        for &id in &self.open {
            let p = &self.ports[id as usize];
            match running.get(id as usize).filter(|r| !r.removed) {
                Some(r) => out.push(format!(
                    "port {} changed (was {}): opened again as port {id}",
                    name_of(p),
                    name_of(r)
                )),
                None => out.push(format!("port {} added as port {id}", name_of(p))),
            }
        }
        for &id in &self.close {
            out.push(format!(
                "port {} removed: closed (port {id} and its counters kept)",
                name_of(&self.ports[id as usize])
            ));
        }
        out
    }
}

/// The MTU of interface `name` in this network namespace, if readable.
fn interface_mtu(name: &str) -> Option<u32> {
    std::fs::read_to_string(format!("/sys/class/net/{name}/mtu"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Check `next` against the running ports (`running`, numbered by
/// `layout`) and compile it in that layout; `workers`: queues per port,
/// `capacity`: the most port ids the run can hold.
pub fn prepare(
    running: &[PortSpec],
    layout: &PortLayout,
    next: Config,
    workers: usize,
    capacity: usize,
) -> Result<Prepared, String> {
    let layout = layout.next(&next);
    if layout.len() > capacity {
        return Err(format!(
            "{}: {} port ids needed (ports removed by earlier reloads keep theirs), this              forwarder holds {capacity}: restart it to number the ports afresh",
            next.source.display(),
            layout.len()
        ));
    }
    let mut ports = config::port_specs_in(&next, &layout);
    let (mut open, mut close) = (Vec::new(), Vec::new());
    for (id, p) in ports.iter_mut().enumerate() {
        let r = running.get(id).filter(|r| !r.removed);
        if p.removed {
            if let Some(r) = running.get(id) {
                // Reports still name the interface it had.
                p.interface = r.interface.clone();
                p.backend = r.backend;
            }
            if r.is_some() {
                close.push(id as u16);
            }
            continue;
        }
        match r {
            Some(r) if r.interface == p.interface && r.backend == p.backend && r.host == p.host => {
                if p.required_mtu > r.required_mtu && p.host.is_none() {
                    if let Some(mtu) = interface_mtu(&p.interface) {
                        if mtu < p.required_mtu {
                            return Err(format!(
                                "{}: port {} now needs an MTU of {} on {} (its peerings' MTU \
                                 plus the tags beyond the first), which has {}: raise it \
                                 first (ip link set {} mtu {})",
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
            _ => {
                if p.backend == config::BackendKind::Pnet && workers > 1 {
                    return Err(format!(
                        "{}: port {} uses pnet, which cannot be shared by the {workers} \
                         workers of this forwarder (no fanout)",
                        next.source.display(),
                        p.name
                    ));
                }
                open.push(id as u16);
            }
        }
    }
    let plan = config::compile_in(&next, &layout);
    Ok(Prepared {
        cfg: next,
        plan,
        ports,
        layout,
        open,
        close,
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
/// same and every link is on the same port with the same tags); the
/// static routes that changed are written in place.
fn keep_tables(name: &str, new: &mut L3Peering, old: &L3Peering) -> String {
    new.routes = old.routes.clone();
    new.v4 = old.v4.clone();
    new.v6 = old.v6.clone();
    // A MAC learned on a link means that link's segment: a link that moved
    // to another port or other tags learns its neighbours again.
    let segment = |l: &Option<crate::plan::Adjacency>| l.as_ref().map(|a| (a.port, a.push));
    let same_segments = old
        .links
        .iter()
        .zip(&new.links)
        .all(|(a, b)| segment(a) == segment(b));
    let neighbors = if !same_segments {
        "a link moved (port or tags): neighbours learned again"
    } else if old.inputs.static_neighbors == new.inputs.static_neighbors {
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
    use crate::plan::PortPlan;
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

    /// `prepare` with the running state of `cfg` (one worker).
    fn prepare_from(cfg: &Config, next: Config) -> Result<Prepared, String> {
        prepare(&config::port_specs(cfg), &PortLayout::of(cfg), next, 1, 256)
    }

    /// The id of port `name` in `p`.
    fn id(p: &Prepared, name: &str) -> u16 {
        p.ports.iter().position(|s| s.name == name).unwrap() as u16
    }

    #[test]
    fn ports_keep_their_ids_across_adds_removes_and_changes() {
        let t = text("lab-pe-qinq.toml");
        let cfg = load(&t);
        let running = config::port_specs(&cfg);
        // The same file: nothing to open or close.
        let same = prepare_from(&cfg, cfg.clone()).unwrap();
        assert!(same.open.is_empty() && same.close.is_empty(), "{same:?}");
        assert_eq!(same.ports, running);
        // A port's interface changed: opened again under its own id.
        let moved = prepare_from(&cfg, load(&t.replace("xc-pe-ms\"", "xc-pe-ms2\""))).unwrap();
        assert_eq!(moved.open, vec![1]);
        assert!(moved.close.is_empty());
        let lines = moved.port_changes(&running);
        assert!(
            lines[0].contains("changed") && lines[0].contains("xc-pe-ms2"),
            "{lines:?}"
        );
        // The Microsoft peering moved to a new port, the old one removed:
        // the new port takes the next id, the old id stays reserved, and
        // the other ports keep theirs (and so their MACs).
        let swapped = t.replacen(
            "name = \"cust-microsoft\"\ninterface = \"xc-pe-ms\"",
            "name = \"cust-microsoft-2\"\ninterface = \"xc-pe-ms2\"",
            1,
        );
        let swapped = swapped.replace("port = \"cust-microsoft\"", "port = \"cust-microsoft-2\"");
        let next = prepare_from(&cfg, load(&swapped)).unwrap();
        assert_eq!(next.ports.len(), running.len() + 1);
        assert_eq!(id(&next, "cust-microsoft-2") as usize, running.len());
        assert_eq!(next.open, vec![running.len() as u16]);
        assert_eq!(next.close, vec![1]);
        let old = &next.ports[1];
        assert!(old.removed && old.name == "cust-microsoft" && old.interface == "xc-pe-ms");
        for (i, r) in running.iter().enumerate().filter(|(i, _)| *i != 1) {
            assert_eq!(&next.ports[i], r, "port {i} kept");
            assert_eq!(next.plan.ports[i].mac, PortPlan::mac_of(i));
        }
        assert!(next.plan.attachments.iter().all(|a| a.port != 1));
        assert!(next.plan.attachments.iter().any(|a| a.port == 4));
        let lines = next.port_changes(&running);
        assert!(
            lines
                .iter()
                .any(|l| l.contains("cust-microsoft-2") && l.contains("added as port 4")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("cust-microsoft (") && l.contains("removed")),
            "{lines:?}"
        );
        // And back: the old port comes back under its old id, the new one
        // is removed and keeps its id.
        let back = prepare(&next.ports, &next.layout, cfg.clone(), 1, 256).unwrap();
        assert_eq!(back.open, vec![1]);
        assert_eq!(back.close, vec![4]);
        assert_eq!(id(&back, "cust-microsoft"), 1);
        assert_eq!(back.plan.ports.len(), 5);
        // A layout past the capacity is refused, naming the restart.
        let e = prepare(&next.ports, &next.layout, cfg.clone(), 1, 4).unwrap_err();
        assert!(e.contains("restart"), "{e}");
        // A pnet port cannot be added to a forwarder of several workers.
        let pnet = swapped.replace(
            "interface = \"xc-pe-ms2\"\nbackend = \"af_packet\"",
            "interface = \"xc-pe-ms2\"\nbackend = \"pnet\"",
        );
        assert!(pnet.contains("\"pnet\""));
        let e = prepare(&running, &PortLayout::of(&cfg), load(&pnet), 2, 256).unwrap_err();
        assert!(e.contains("pnet") && e.contains("cust-microsoft-2"), "{e}");
    }

    #[test]
    fn a_link_moved_to_another_port_keeps_its_routes_but_learns_its_neighbours_again() {
        let t = text("lab-pe-l3.toml");
        let old_cfg = load(&t);
        let old = config::compile(&old_cfg);
        let moved = t
            .replacen(
                "name = \"cust-microsoft\"\ninterface = \"xc-pe-ms\"",
                "name = \"cust-microsoft-2\"\ninterface = \"xc-pe-ms2\"",
                1,
            )
            .replace("port = \"cust-microsoft\"", "port = \"cust-microsoft-2\"");
        let mut prepared = prepare_from(&old_cfg, load(&moved)).unwrap();
        let notes = adopt_tables(&mut prepared.plan, &old);
        assert!(notes[0].contains("neighbours kept"), "{notes:?}");
        assert!(notes[1].contains("tables kept"), "{notes:?}");
        assert!(notes[1].contains("a link moved"), "{notes:?}");
        let old_ms: Vec<_> = old.l3_peerings().map(|(_, _, l)| l.clone()).collect();
        let new_ms: Vec<_> = prepared
            .plan
            .l3_peerings()
            .map(|(_, _, l)| l.clone())
            .collect();
        assert!(Arc::ptr_eq(&new_ms[0].neighbors, &old_ms[0].neighbors));
        assert!(Arc::ptr_eq(&new_ms[1].routes, &old_ms[1].routes));
        assert!(!Arc::ptr_eq(&new_ms[1].neighbors, &old_ms[1].neighbors));
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
        let mut prepared = prepare_from(&old_cfg, new_cfg).unwrap();
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
        let mut prepared = prepare_from(&old_cfg, new_cfg).unwrap();
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
