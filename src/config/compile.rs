//! Compiling a validated [`Config`] into the [`Plan`] the hot path reads
//! ([`compile`]) and the port list the runtime opens ([`port_specs`]).
//!
//! Every attachment (a port plus an exact VID stack) gets an entry in the
//! classification table and a precomputed action: how many tags to pop,
//! the tag bytes to push on each possible egress (outer TPID from the
//! circuit, inner tags 0x8100, PCP filled in per frame), the DSCP marker for
//! its direction, and the MTU. Each `l3` peering gets its VRF: links with
//! this forwarder's and the peer's addresses, connected and configured
//! routes, static neighbours.
//!
//! Contract: compiling cannot fail on a model that came from the loader
//! (every ExpressRoute rule was checked there); a route table that refuses
//! the configured routes is reported in [`Plan::warnings`]. What ports are
//! opened with (backend, interface, MTU needed) goes to [`PortSpec`], never
//! into the plan.

use super::validate::{MICROSOFT_LIMIT, PRIVATE_V4_LIMIT, PRIVATE_V6_LIMIT};
use super::{
    BackendKind, Circuit, Config, Encapsulation, Fpm, KernelTable, LinkSubnets, MplsAccess,
    Peering, Role,
};
use crate::frame::PortId;
use crate::plan::l3::NEIGHBOR_SLOTS;
use crate::plan::{neighbor_slot, Family, MplsIn, MplsPush};
use crate::plan::{
    Adjacency, Attachment, Egress, L3Peering, NeighborTable, PathId, PeeringKind, PeeringPlan,
    Plan, PortPlan, RouteTable, Service, ServiceMode, Side, TagPush, VrfInputs, LOCAL_PATH,
    PATH_ACCESS, PATH_PRIMARY, PATH_SECONDARY,
};
use crate::qos::{DscpAction, DscpPolicy, Marker};
use crate::wire::ethernet::Mac;
use crate::wire::{Tpid, VlanTag};
use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// A port as the runtime opens it: the configuration's name, the Linux
/// interface, the backend, and the interface MTU its tags need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSpec {
    /// Name from the configuration.
    pub name: String,
    /// Linux interface.
    pub interface: String,
    /// Backend that opens it.
    pub backend: BackendKind,
    /// The interface MTU the port needs: the largest peering IP MTU plus
    /// the bytes of its tags on that port, less the one 4-byte tag the
    /// kernel accepts beyond the MTU (an untagged or Dot1Q port needs the
    /// IP MTU, a QinQ trunk 4 bytes more).
    pub required_mtu: u32,
    /// Set on a host interface: what the runtime gives the TAP once it is
    /// created (it is opened with the TAP backend like any port).
    pub host: Option<HostSetup>,
    /// The port was removed by a reload: its id stays reserved (so no
    /// other port's id, and so MAC, changes) and its counters stay, but it
    /// is closed and nothing forwards to it. A later reload that names it
    /// again opens it under the same id.
    pub removed: bool,
}

/// How a host interface (the TAP standing for one link of an `l3`
/// peering) is set up on the host: this forwarder's MAC and addresses on
/// that link, the link's IP MTU, and the namespace it is moved into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSetup {
    /// The link's MAC (the data plane's own on that port).
    pub mac: [u8; 6],
    /// The IP MTU of the peering.
    pub mtu: u16,
    /// This forwarder's addresses on the link, with the link's prefix length.
    pub addrs: Vec<IpNet>,
    /// The network namespace to move the TAP into (by name).
    pub netns: Option<String>,
}

/// Every host interface of `cfg` in port-id order (they follow the
/// configured ports): circuit, peering, side and the TAP name.
fn host_links(cfg: &Config) -> impl Iterator<Item = (&Circuit, &Peering, Side, &str)> {
    cfg.circuits.iter().flat_map(|c| {
        c.peerings.iter().flat_map(move |p| {
            p.host.iter().flat_map(move |h| {
                [Side::Access, Side::Primary, Side::Secondary]
                    .into_iter()
                    .map(move |side| (c, p, side, h.name(side)))
            })
        })
    })
}

/// This forwarder's addresses on one link of an `l3` peering, each with
/// the link's prefix length.
fn own_addresses(role: Role, p: &Peering, side: Side) -> Vec<IpNet> {
    let customer_side = role == Role::ProviderEdge;
    fn pick<A>(customer_side: bool, (c, m): (A, A)) -> A {
        if customer_side {
            c
        } else {
            m
        }
    }
    let mut out = Vec::new();
    match side {
        Side::Access => {
            out.extend(p.access.ipv4.map(IpNet::V4));
            out.extend(p.access.ipv6.map(IpNet::V6));
        }
        Side::Primary | Side::Secondary => {
            let first = side == Side::Primary;
            if let Some(s) = p.ipv4 {
                let net = if first { s.primary } else { s.secondary };
                let a = pick(customer_side, LinkSubnets::<ipnet::Ipv4Net>::addresses(net));
                out.extend(ipnet::Ipv4Net::new(a, net.prefix_len()).ok().map(IpNet::V4));
            }
            if let Some(s) = p.ipv6 {
                let net = if first { s.primary } else { s.secondary };
                let a = pick(customer_side, LinkSubnets::<ipnet::Ipv6Net>::addresses(net));
                out.extend(ipnet::Ipv6Net::new(a, net.prefix_len()).ok().map(IpNet::V6));
            }
        }
    }
    out
}

/// The port of the link on `side` of peering `p` of circuit `c`.
fn link_port(c: &Circuit, p: &Peering, side: Side) -> usize {
    match side {
        Side::Access => p.access.port,
        Side::Primary => c.primary.port,
        Side::Secondary => c.secondary.port,
    }
}

/// The FPM listener of one `l3` peering, as the runtime starts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FpmSpec {
    /// The circuit's name.
    pub circuit: String,
    /// Which peering of the circuit.
    pub kind: crate::plan::PeeringKind,
    /// Where and how to listen.
    pub fpm: Fpm,
}

/// The FPM listeners of `cfg`: one per `l3` peering with `fpm`.
pub fn fpm_specs(cfg: &Config) -> Vec<FpmSpec> {
    cfg.circuits
        .iter()
        .flat_map(|c| {
            c.peerings.iter().filter_map(|p| {
                let fpm = p.fpm.clone()?;
                (p.mode == ServiceMode::L3).then(|| FpmSpec {
                    circuit: c.name.clone(),
                    kind: p.kind,
                    fpm,
                })
            })
        })
        .collect()
}

/// The followed routing table of one `l3` peering, as the runtime starts
/// it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelTableSpec {
    /// The circuit's name.
    pub circuit: String,
    /// Which peering of the circuit.
    pub kind: crate::plan::PeeringKind,
    /// The table and its namespace.
    pub kernel: KernelTable,
}

/// The followed routing tables of `cfg`: one per `l3` peering with
/// `kernel_table`.
pub fn kernel_specs(cfg: &Config) -> Vec<KernelTableSpec> {
    cfg.circuits
        .iter()
        .flat_map(|c| {
            c.peerings.iter().filter_map(|p| {
                let kernel = p.kernel.clone()?;
                (p.mode == ServiceMode::L3).then(|| KernelTableSpec {
                    circuit: c.name.clone(),
                    kind: p.kind,
                    kernel,
                })
            })
        })
        .collect()
}

/// The ports of `cfg` in port-id order, as the runtime opens them.
pub fn port_specs(cfg: &Config) -> Vec<PortSpec> {
    port_specs_in(cfg, &PortLayout::of(cfg))
}

/// The ports of `cfg` numbered by `layout` (which must hold every port of
/// `cfg`: [`PortLayout::of`] or [`PortLayout::next`]); a slot of the layout
/// that `cfg` no longer has is a [`PortSpec::removed`] port with no
/// interface.
pub fn port_specs_in(cfg: &Config, layout: &PortLayout) -> Vec<PortSpec> {
    // Complete (a no-op for a layout made for `cfg`).
    let layout = &layout.next(cfg);
    let mut need = vec![0u32; cfg.ports.len()];
    let mut raise_to = |port: usize, bytes: u32| {
        if let Some(n) = need.get_mut(port) {
            *n = (*n).max(bytes);
        }
    };
    // The first tag rides in the Ethernet header's allowance; labels do not.
    let mut raise = |port: usize, mtu: u16, tags: usize| {
        raise_to(port, mtu as u32 + 4 * tags.saturating_sub(1) as u32)
    };
    let mut labelled = Vec::new();
    for c in &cfg.circuits {
        for p in &c.peerings {
            if let Some(m) = &p.access.mpls {
                labelled.push((p.access.port, p.mtu as u32 + mpls_overhead(cfg, p, m)));
                continue;
            }
            raise(p.access.port, p.mtu, p.access.vlans.len());
            for l in [&c.primary, &c.secondary] {
                let tags = 1
                    + usize::from(c.encapsulation == Encapsulation::QinQ)
                    + usize::from(l.outer_tag.is_some());
                raise(l.port, p.mtu, tags);
            }
        }
    }
    for (port, bytes) in labelled {
        if let Some(n) = need.get_mut(port) {
            *n = (*n).max(bytes);
        }
    }
    let mut specs: Vec<PortSpec> = layout
        .slots
        .iter()
        .map(|slot| PortSpec {
            name: slot.name().to_string(),
            interface: String::new(),
            backend: BackendKind::Tap,
            required_mtu: 0,
            host: None,
            removed: true,
        })
        .collect();
    for ((p, required_mtu), id) in cfg.ports.iter().zip(need).zip(layout.port_ids(cfg)) {
        specs[id as usize] = PortSpec {
            name: p.name.clone(),
            interface: p.interface.clone(),
            backend: p.backend,
            required_mtu,
            host: None,
            removed: false,
        };
    }
    let ids = layout.port_ids(cfg);
    for (c, p, side, name) in host_links(cfg) {
        let Some(id) = layout.id(&Slot::Host(name.to_string())) else {
            continue;
        };
        specs[id as usize] = PortSpec {
            name: name.to_string(),
            interface: name.to_string(),
            backend: BackendKind::Tap,
            required_mtu: p.mtu as u32,
            host: Some(HostSetup {
                mac: PortPlan::mac_of(ids[link_port(c, p, side)] as usize),
                mtu: p.mtu,
                addrs: own_addresses(cfg.role, p, side),
                netns: p.host.as_ref().and_then(|h| h.netns.clone()),
            }),
            removed: false,
        };
    }
    specs
}

/// One port id of a [`PortLayout`]: a port of the configuration or a host
/// interface (a TAP of an `l3` peering's link), by name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    /// A `[[port]]` of the configuration.
    Port(String),
    /// A host interface.
    Host(String),
}

impl Slot {
    /// The port's name.
    pub fn name(&self) -> &str {
        match self {
            Slot::Port(n) | Slot::Host(n) => n,
        }
    }
}

/// Which port has which id. A configuration on its own numbers its ports
/// in order, then its host interfaces ([`PortLayout::of`]); a reload keeps
/// the running ids ([`PortLayout::next`]): a port's id is its MAC address
/// (02:78:63:00:id+1), its counters and its queue in every worker, so a
/// port that stays keeps its id, a removed port's id stays reserved, and an
/// added port takes a new id at the end (or its old one if it comes back).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortLayout {
    slots: Vec<Slot>,
}

impl PortLayout {
    /// The ports of `cfg` in their own order: its ports, then its host
    /// interfaces.
    pub fn of(cfg: &Config) -> PortLayout {
        let slots = cfg
            .ports
            .iter()
            .map(|p| Slot::Port(p.name.clone()))
            .chain(host_links(cfg).map(|(_, _, _, n)| Slot::Host(n.to_string())))
            .collect();
        PortLayout { slots }
    }

    /// The layout of `cfg` after this one: every slot kept where it is,
    /// the ports `cfg` adds appended in their own order.
    pub fn next(&self, cfg: &Config) -> PortLayout {
        let mut slots = self.slots.clone();
        for s in PortLayout::of(cfg).slots {
            if !slots.contains(&s) {
                slots.push(s);
            }
        }
        PortLayout { slots }
    }

    /// Number of ids (ports removed included).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when there are no ports.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The slots by id.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// The id of a slot.
    pub fn id(&self, slot: &Slot) -> Option<PortId> {
        self.slots
            .iter()
            .position(|s| s == slot)
            .map(|i| i as PortId)
    }

    /// The id of each of `cfg`'s ports, by configuration index (the
    /// layout holds them all: it is `next(cfg)` of some layout).
    fn port_ids(&self, cfg: &Config) -> Vec<PortId> {
        cfg.ports
            .iter()
            .map(|p| self.id(&Slot::Port(p.name.clone())).unwrap_or_default())
            .collect()
    }
}

fn tag_bytes(tpid: Tpid, vid: u16) -> [u8; 4] {
    VlanTag {
        tpid,
        pcp: 0,
        dei: false,
        vid,
    }
    .to_bytes()
}

/// The trunk VID stack of a peering on one link, outermost first, and the
/// tag bytes to push for it.
fn trunk_tags(c: &Circuit, link_outer: Option<u16>, peering_tag: u16) -> (Vec<u16>, Vec<[u8; 4]>) {
    let mut vids = Vec::with_capacity(3);
    let mut bytes = Vec::with_capacity(3);
    // The outermost tag written carries the circuit's outer TPID.
    let mut tpid = c.outer_tpid;
    if let Some(o) = link_outer {
        vids.push(o);
        bytes.push(tag_bytes(tpid, o));
        tpid = Tpid::DOT1Q;
    }
    if let (Encapsulation::QinQ, Some(s)) = (c.encapsulation, c.s_tag) {
        vids.push(s.get());
        bytes.push(tag_bytes(tpid, s.get()));
        tpid = Tpid::DOT1Q;
    }
    vids.push(peering_tag);
    bytes.push(tag_bytes(tpid, peering_tag));
    (vids, bytes)
}

/// Compile a validated configuration into its plan.
pub fn compile(cfg: &Config) -> Plan {
    compile_in(cfg, &PortLayout::of(cfg))
}

/// Bytes an MPLS attachment adds to its peering's IP MTU on the backbone
/// link: the deeper of the received and pushed label stacks, and for a
/// pseudowire the inner Ethernet header and the control word.
pub fn mpls_overhead(cfg: &Config, p: &Peering, m: &MplsAccess) -> u32 {
    let transport = cfg
        .ports
        .get(p.access.port)
        .and_then(|x| x.backbone)
        .and_then(|b| b.transport_label);
    let received = 1 + usize::from(transport.is_some());
    let labels = 4 * received.max(m.pushed_labels()) as u32;
    labels
        + if p.mode == ServiceMode::L2 {
            14 + 4 * u32::from(m.control_word)
        } else {
            0
        }
}

/// The plan's view of an MPLS access attachment of `p` on port `port`
/// (our MAC there `own_mac`): how frames come in, and what leaving ones get.
fn mpls_plan(p: &Peering, m: &MplsAccess, own_mac: Mac) -> (MplsIn, MplsPush) {
    let pseudowire = p.mode == ServiceMode::L2;
    let labels: Vec<u32> = m
        .transport_label
        .iter()
        .chain([&m.remote_label])
        .map(|l| l.value())
        .collect();
    let (words, count) = MplsPush::words_of(&labels);
    (
        MplsIn {
            label: m.label.value(),
            pseudowire,
            control_word: pseudowire && m.control_word,
            ttl: m.ttl,
        },
        MplsPush {
            words,
            count,
            pseudowire,
            control_word: pseudowire && m.control_word,
            ttl: m.ttl,
            tc_map: m.packed_tc_map(),
            peer_mac: m.next_hop_mac,
            own_mac,
        },
    )
}

/// [`compile`] with the ports numbered by `layout` (see [`PortLayout`]): a
/// reload compiles the new configuration in the running layout, so every
/// port keeps its id and MAC. A removed port's slot stays in
/// [`Plan::ports`] with no attachment.
pub fn compile_in(cfg: &Config, layout: &PortLayout) -> Plan {
    // Complete (a no-op for a layout made for `cfg`).
    let layout = &layout.next(cfg);
    let ids = layout.port_ids(cfg);
    let id_of = |cfg_port: usize| ids[cfg_port];
    let mut ports = layout
        .slots()
        .iter()
        .enumerate()
        .map(|(i, slot)| PortPlan {
            name: slot.name().to_string(),
            mac: PortPlan::mac_of(i),
            backbone: false,
            transport_label: None,
        })
        .collect::<Vec<_>>();
    for (cfg_port, p) in cfg.ports.iter().enumerate() {
        if let Some(x) = ports.get_mut(id_of(cfg_port) as usize) {
            x.backbone = p.backbone.is_some();
            x.transport_label = p
                .backbone
                .and_then(|b| b.transport_label)
                .map(|l| l.value());
        }
    }
    let mut host_ports: Vec<(PortId, PortPlan)> = Vec::new();
    let mut l3_peerings = Vec::new();
    let mut warnings = Vec::new();
    let mut attachments = Vec::new();
    let mut peerings = Vec::new();
    let mut markers = Vec::new();
    for c in &cfg.circuits {
        for p in &c.peerings {
            let pid = peerings.len() as u16;
            peerings.push(PeeringPlan {
                circuit: c.name.clone(),
                kind: p.kind,
                mode: p.mode,
            });
            // Towards Microsoft is access → trunk on a provider edge and
            // trunk → access on the MSEE side.
            let (to_trunk_policy, to_access_policy) = match cfg.role {
                Role::ProviderEdge => (&p.dscp, &p.dscp_return),
                Role::Msee => (&p.dscp_return, &p.dscp),
            };
            let m_trunk = markers.len() as u16;
            markers.push(Marker::new(to_trunk_policy));
            let m_access = markers.len() as u16;
            markers.push(Marker::new(to_access_policy));

            let access_vids: Vec<u16> = p.access.vlans.iter().map(|v| v.get()).collect();
            let access_port = id_of(p.access.port);
            // Access tags: outer one with the circuit's TPID? No: the access
            // side is the customer's own VLAN, always 0x8100.
            let access_bytes: Vec<[u8; 4]> = access_vids
                .iter()
                .map(|&v| tag_bytes(Tpid::DOT1Q, v))
                .collect();
            let mut access_push = TagPush::new(access_port, &access_bytes);
            let mut access_mpls = None;
            if let Some(m) = &p.access.mpls {
                let own = ports
                    .get(access_port as usize)
                    .map_or_else(|| PortPlan::mac_of(access_port as usize), |x| x.mac);
                let (min, push) = mpls_plan(p, m, own);
                access_push = access_push.with_mpls(push);
                access_mpls = Some(min);
            }

            let links = [(&c.primary, Side::Primary), (&c.secondary, Side::Secondary)];
            let trunk: Vec<(PortId, Vec<u16>, TagPush, Side)> = links
                .iter()
                .map(|(l, side)| {
                    let (vids, bytes) = trunk_tags(c, l.outer_tag.map(|v| v.get()), p.tag.get());
                    let port = id_of(l.port);
                    (port, vids, TagPush::new(port, &bytes), *side)
                })
                .collect();
            let trunk_pushes = [trunk[0].2, trunk[1].2];

            let l2 = p.mode == ServiceMode::L2;
            let l3_index = l3_peerings.len() as u16;
            if !l2 {
                let pushes = [access_push, trunk_pushes[0], trunk_pushes[1]];
                // Host interfaces: a port each, cross-connected at Layer 2
                // to its link (the host's frames leave with the link's tags
                // and DSCP, otherwise untouched).
                let host = p.host.as_ref().map(|_| {
                    let m_keep = markers.len() as u16;
                    markers.push(Marker::new(&DscpPolicy::plain(DscpAction::Preserve)));
                    let mut ids = [0 as PortId; 3];
                    for (side, push) in [Side::Access, Side::Primary, Side::Secondary]
                        .into_iter()
                        .zip(pushes)
                    {
                        let name = p.host.as_ref().map_or("", |h| h.name(side)).to_string();
                        let id = layout.id(&Slot::Host(name.clone())).unwrap_or_default();
                        ids[side as usize] = id;
                        host_ports.push((
                            id,
                            PortPlan {
                                name,
                                mac: PortPlan::mac_of(push.port as usize),
                                backbone: false,
                                transport_label: None,
                            },
                        ));
                        attachments.push(Attachment {
                            port: id,
                            vids: Vec::new(),
                            mpls: None,
                            peering: pid,
                            side,
                            service: Service::L2 {
                                pop: 0,
                                egress: Egress::Access(push),
                                marker: m_keep,
                                mtu: p.mtu,
                                pcp_from_dscp: p.pcp_from_dscp,
                            },
                        });
                    }
                    ids
                });
                let (peering, warn) = compile_l3(
                    cfg.role,
                    c.premium,
                    p,
                    &pushes,
                    host,
                    &ports,
                    (m_trunk, m_access),
                );
                if let Some(w) = warn {
                    warnings.push(format!("circuit {:?} {:?} peering: {w}", c.name, p.kind));
                }
                l3_peerings.push(peering);
            }
            attachments.push(Attachment {
                port: access_port,
                vids: access_vids.clone(),
                mpls: access_mpls,
                peering: pid,
                side: Side::Access,
                service: if l2 {
                    Service::L2 {
                        pop: access_vids.len() as u8,
                        egress: Egress::Trunk(trunk_pushes),
                        marker: m_trunk,
                        mtu: p.mtu,
                        pcp_from_dscp: p.pcp_from_dscp,
                    }
                } else {
                    Service::L3 {
                        peering: l3_index,
                        side: Side::Access,
                        pop: access_vids.len() as u8,
                    }
                },
            });
            for (port, vids, _, side) in trunk {
                attachments.push(Attachment {
                    port,
                    mpls: None,
                    peering: pid,
                    side,
                    service: if l2 {
                        Service::L2 {
                            pop: vids.len() as u8,
                            egress: Egress::Access(access_push),
                            marker: m_access,
                            mtu: p.mtu,
                            pcp_from_dscp: p.pcp_from_dscp,
                        }
                    } else {
                        Service::L3 {
                            peering: l3_index,
                            side,
                            pop: vids.len() as u8,
                        }
                    },
                    vids,
                });
            }
        }
    }
    for (id, plan) in host_ports {
        ports[id as usize] = plan;
    }
    Plan::new(ports, attachments, peerings, markers, l3_peerings, warnings)
}

/// Build the L3 side of a peering: its links (own and peer addresses on
/// each), its VRF with connected and configured routes, its neighbours.
#[allow(clippy::too_many_arguments)]
fn compile_l3(
    role: Role,
    premium: bool,
    p: &Peering,
    pushes: &[TagPush; 3],
    host: Option<[PortId; 3]>,
    ports: &[PortPlan],
    (marker_to_trunk, marker_to_access): (u16, u16),
) -> (L3Peering, Option<String>) {
    let customer_side = role == Role::ProviderEdge;
    let own_peer4 = |net: ipnet::Ipv4Net| {
        let (c, m) = LinkSubnets::<ipnet::Ipv4Net>::addresses(net);
        if customer_side {
            (c, m)
        } else {
            (m, c)
        }
    };
    let own_peer6 = |net: ipnet::Ipv6Net| {
        let (c, m) = LinkSubnets::<ipnet::Ipv6Net>::addresses(net);
        if customer_side {
            (c, m)
        } else {
            (m, c)
        }
    };
    let v4_links = [p.ipv4.map(|s| s.primary), p.ipv4.map(|s| s.secondary)];
    let v6_links = [p.ipv6.map(|s| s.primary), p.ipv6.map(|s| s.secondary)];
    let mac_of = |port: PortId| {
        ports
            .get(port as usize)
            .map_or_else(|| PortPlan::mac_of(port as usize), |x| x.mac)
    };
    let mut links: [Option<Adjacency>; 3] = [None, None, None];
    let mut peers = Vec::new();
    let mut connected: Vec<(IpNet, PathId)> = Vec::new();
    // Access link.
    let a = &p.access;
    links[0] = Some(Adjacency {
        side: Side::Access,
        port: pushes[0].port,
        push: pushes[0],
        mac: mac_of(pushes[0].port),
        host: host.map(|h| h[0]),
        punt_echo: host.is_some() && p.host.as_ref().is_some_and(|h| h.echo_to_host),
        own_v4: a.ipv4.map(|n| n.addr()),
        peer_v4: a.peer_v4(),
        own_v6: a.ipv6.map(|n| n.addr()),
        peer_v6: a.peer_v6(),
    });
    if let Some(n) = a.ipv4 {
        connected.push((IpNet::V4(n.trunc()), PATH_ACCESS));
    }
    if let Some(n) = a.ipv6 {
        connected.push((IpNet::V6(n.trunc()), PATH_ACCESS));
    }
    for (i, side) in [(1usize, Side::Primary), (2, Side::Secondary)] {
        let (o4, p4) = v4_links[i - 1].map(own_peer4).unzip();
        let (o6, p6) = v6_links[i - 1].map(own_peer6).unzip();
        links[i] = Some(Adjacency {
            side,
            port: pushes[i].port,
            push: pushes[i],
            mac: mac_of(pushes[i].port),
            host: host.map(|h| h[i]),
            punt_echo: host.is_some() && p.host.as_ref().is_some_and(|h| h.echo_to_host),
            own_v4: o4,
            peer_v4: p4,
            own_v6: o6,
            peer_v6: p6,
        });
        let path = if side == Side::Primary {
            PATH_PRIMARY
        } else {
            PATH_SECONDARY
        };
        if let Some(n) = v4_links[i - 1] {
            connected.push((IpNet::V4(n), path));
        }
        if let Some(n) = v6_links[i - 1] {
            connected.push((IpNet::V6(n), path));
        }
    }
    for l in links.iter().flatten() {
        for (own, peer) in [
            (l.own_v4.map(IpAddr::V4), l.peer_v4.map(IpAddr::V4)),
            (l.own_v6.map(IpAddr::V6), l.peer_v6.map(IpAddr::V6)),
        ] {
            if let Some(o) = own {
                connected.push((IpNet::from(o), LOCAL_PATH));
            }
            if let Some(x) = peer {
                peers.push((x, l.side));
            }
        }
    }
    let microsoft = p.kind == PeeringKind::Microsoft;
    let limits = if microsoft {
        (MICROSOFT_LIMIT, MICROSOFT_LIMIT)
    } else {
        (
            if premium {
                PRIVATE_V4_LIMIT.1
            } else {
                PRIVATE_V4_LIMIT.0
            },
            PRIVATE_V6_LIMIT,
        )
    };
    let mut warning = None;
    let counted = Side::advertised(customer_side);
    let mut inputs = VrfInputs {
        microsoft,
        limits,
        counted: counted.to_vec(),
        peers: peers.clone(),
        connected: connected.clone(),
        statics: p.routes.iter().map(|r| (r.prefix, r.next_hop)).collect(),
        static_neighbors: Vec::new(),
    };
    let table = match RouteTable::new(microsoft, limits, counted, peers.clone(), connected) {
        Ok(mut t) => {
            let routes: Vec<(IpNet, IpAddr)> =
                p.routes.iter().map(|r| (r.prefix, r.next_hop)).collect();
            if let Err(e) = t.bulk_load(&routes) {
                warning = Some(format!("configured routes not installed: {e}"));
            }
            t
        }
        Err(e) => {
            warning = Some(format!("connected routes not installed: {e}"));
            // Cannot fail: no routes at all.
            RouteTable::new(microsoft, limits, counted, peers.clone(), Vec::new())
                .unwrap_or_else(|_| unreachable!("an empty route table always builds"))
        }
    };
    let mut table = table;
    let neighbors = NeighborTable::new(NEIGHBOR_SLOTS);
    for n in &p.neighbors {
        for l in links.iter().flatten() {
            for (fam, peer) in [
                (Family::V4, l.peer_v4.map(IpAddr::V4)),
                (Family::V6, l.peer_v6.map(IpAddr::V6)),
            ] {
                if Some(n.ip) == peer {
                    let slot = neighbor_slot(l.side, fam);
                    neighbors.set_static(slot, &n.mac);
                    inputs.static_neighbors.push((slot, n.mac));
                }
            }
        }
    }
    // Over an L3VPN, the access side's next hop is the backbone router
    // for every address: its MAC is known, nothing is resolved.
    if let Some(m) = &p.access.mpls {
        for fam in [Family::V4, Family::V6] {
            let slot = neighbor_slot(Side::Access, fam);
            neighbors.set_static(slot, &m.next_hop_mac);
            inputs.static_neighbors.push((slot, m.next_hop_mac));
        }
    }
    let peering = L3Peering {
        links,
        v4: table.reader_v4(),
        v6: table.reader_v6(),
        neighbors: Arc::new(neighbors),
        routes: Arc::new(Mutex::new(table)),
        marker_to_trunk,
        marker_to_access,
        mtu: p.mtu,
        pcp_from_dscp: p.pcp_from_dscp,
        inputs: Arc::new(inputs),
    };
    (peering, warning)
}
