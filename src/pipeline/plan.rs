//! The `Plan`: a validated [`Config`] compiled into the immutable lookup
//! tables the hot path reads.
//!
//! Every attachment (a port plus an exact VID stack) gets an entry in the
//! classification table and a precomputed action: how many tags to pop,
//! the tag bytes to push on each possible egress (outer TPID from the
//! circuit, inner tags 0x8100, PCP filled in per frame), the DSCP marker for
//! its direction, and the MTU. A reload builds a new `Plan` beside the old
//! one; nothing here is mutated after [`Plan::compile`].

use super::classify::{self, ClassTable};
use crate::config::validate::{MICROSOFT_LIMIT, PRIVATE_V4_LIMIT, PRIVATE_V6_LIMIT};
use crate::config::{BackendKind, Circuit, Config, Encapsulation, PeeringKind, Role, ServiceMode};
use crate::config::{LinkSubnets, Peering};
use crate::l3::{self, Adjacency, L3Peering, LinkSide, NeighborTable, RouteTable, LOCAL_PATH};
use crate::qos::Marker;
use crate::wire::ethernet::Mac;
use crate::wire::{Tpid, VlanTag};
use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Index of a port in [`Plan::ports`].
pub type PortId = u16;

/// A port as the runtime needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortPlan {
    /// Name from the configuration.
    pub name: String,
    /// Linux interface.
    pub interface: String,
    /// Backend that opens it.
    pub backend: BackendKind,
    /// The MAC this forwarder uses as source on the port (routed frames,
    /// ARP/ND): locally administered 02:78:63:00:00:<port id + 1>.
    pub mac: Mac,
}

/// Tags to push on one egress port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TagPush {
    /// Egress port.
    pub port: PortId,
    /// Tag bytes, outermost first, PCP bits zero.
    pub bytes: [u8; 12],
    /// Number of tags (0..=3).
    pub count: u8,
}

impl TagPush {
    /// The tag bytes to write.
    #[inline(always)]
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..self.count as usize * 4]
    }
}

/// Where an L2 cross-connect sends a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Egress {
    /// The access attachment of the peering.
    Access(TagPush),
    /// The circuit's trunks: primary and secondary, picked per flow.
    Trunk([TagPush; 2]),
}

/// The service a frame arriving on an attachment receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// Layer 2 cross-connect.
    L2 {
        /// Tags to pop (the attachment's own tags).
        pop: u8,
        /// Where to send it.
        egress: Egress,
        /// Index into [`Plan::markers`].
        marker: u16,
        /// IP MTU of the peering.
        mtu: u16,
        /// Pushed tags take PCP = DSCP >> 3 (else the PCP of the popped outer tag).
        pcp_from_dscp: bool,
    },
    /// Managed Layer 3: routed by the peering's own table.
    L3 {
        /// Index into [`Plan::l3`].
        peering: u16,
        /// Which link of the peering this attachment is.
        side: LinkSide,
        /// Tags to pop (the attachment's own tags).
        pop: u8,
    },
}

/// Which side of the cross-connect an attachment is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The access (non-trunk) side.
    Access,
    /// The primary trunk link.
    Primary,
    /// The secondary trunk link.
    Secondary,
}

impl Side {
    /// Lower-case name as in reports and JSON.
    pub const fn name(self) -> &'static str {
        match self {
            Side::Access => "access",
            Side::Primary => "primary",
            Side::Secondary => "secondary",
        }
    }
}

/// One sub-interface: a port plus an exact VID stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// The port.
    pub port: PortId,
    /// VIDs, outermost first.
    pub vids: Vec<u16>,
    /// Index into [`Plan::peerings`].
    pub peering: u16,
    /// Access, primary or secondary.
    pub side: Side,
    /// What frames received here get.
    pub service: Service,
}

/// A peering as the reports need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeeringPlan {
    /// Circuit name.
    pub circuit: String,
    /// Private or Microsoft.
    pub kind: PeeringKind,
    /// `l2` or `l3`.
    pub mode: ServiceMode,
}

/// The compiled, immutable forwarding plan.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Ports by id.
    pub ports: Vec<PortPlan>,
    /// Attachments by id.
    pub attachments: Vec<Attachment>,
    /// Peerings by id.
    pub peerings: Vec<PeeringPlan>,
    /// Compiled DSCP markers, referenced by index.
    pub markers: Vec<Marker>,
    /// The managed Layer 3 peerings (their VRFs, links and neighbours).
    pub l3: Vec<L3Peering>,
    /// Problems met while compiling that did not stop it (e.g. a route
    /// table refusing the configured routes); shown by `check` and `run`.
    pub warnings: Vec<String>,
    classes: ClassTable,
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

fn push_of(port: PortId, tags: &[[u8; 4]]) -> TagPush {
    let mut bytes = [0u8; 12];
    for (i, t) in tags.iter().take(3).enumerate() {
        bytes[i * 4..i * 4 + 4].copy_from_slice(t);
    }
    TagPush {
        port,
        bytes,
        count: tags.len().min(3) as u8,
    }
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

impl Plan {
    /// Compile a validated configuration.
    pub fn compile(cfg: &Config) -> Plan {
        let ports = cfg
            .ports
            .iter()
            .enumerate()
            .map(|(i, p)| PortPlan {
                name: p.name.clone(),
                interface: p.interface.clone(),
                backend: p.backend,
                mac: [
                    0x02,
                    0x78,
                    0x63,
                    0,
                    (i >> 8) as u8,
                    (i as u8).wrapping_add(1),
                ],
            })
            .collect::<Vec<_>>();
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
                let access_port = p.access.port as PortId;
                // Access tags: outer one with the circuit's TPID? No: the access
                // side is the customer's own VLAN, always 0x8100.
                let access_bytes: Vec<[u8; 4]> = access_vids
                    .iter()
                    .map(|&v| tag_bytes(Tpid::DOT1Q, v))
                    .collect();
                let access_push = push_of(access_port, &access_bytes);

                let links = [(&c.primary, Side::Primary), (&c.secondary, Side::Secondary)];
                let trunk: Vec<(PortId, Vec<u16>, TagPush, Side)> = links
                    .iter()
                    .map(|(l, side)| {
                        let (vids, bytes) =
                            trunk_tags(c, l.outer_tag.map(|v| v.get()), p.tag.get());
                        let port = l.port as PortId;
                        (port, vids, push_of(port, &bytes), *side)
                    })
                    .collect();
                let trunk_pushes = [trunk[0].2, trunk[1].2];

                let l2 = p.mode == ServiceMode::L2;
                let l3_index = l3_peerings.len() as u16;
                if !l2 {
                    let pushes = [access_push, trunk_pushes[0], trunk_pushes[1]];
                    let (peering, warn) = compile_l3(
                        cfg.role,
                        c.premium,
                        p,
                        &pushes,
                        &ports,
                        &markers[m_trunk as usize],
                        &markers[m_access as usize],
                    );
                    if let Some(w) = warn {
                        warnings.push(format!("circuit {:?} {:?} peering: {w}", c.name, p.kind));
                    }
                    l3_peerings.push(peering);
                }
                attachments.push(Attachment {
                    port: access_port,
                    vids: access_vids.clone(),
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
                            side: LinkSide::Access,
                            pop: access_vids.len() as u8,
                        }
                    },
                });
                for (port, vids, _, side) in trunk {
                    attachments.push(Attachment {
                        port,
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
                                side: if side == Side::Primary {
                                    LinkSide::Primary
                                } else {
                                    LinkSide::Secondary
                                },
                                pop: vids.len() as u8,
                            }
                        },
                        vids,
                    });
                }
            }
        }
        let entries: Vec<(u64, u32)> = attachments
            .iter()
            .enumerate()
            .map(|(i, a)| (classify::key(a.port, &a.vids), i as u32))
            .collect();
        Plan {
            ports,
            attachments,
            peerings,
            markers,
            l3: l3_peerings,
            warnings,
            classes: ClassTable::build(&entries),
        }
    }

    /// The route API of an l3 peering, by circuit name and kind.
    pub fn route_table(&self, circuit: &str, kind: PeeringKind) -> Option<Arc<Mutex<RouteTable>>> {
        let mut k = 0;
        for p in &self.peerings {
            if p.mode == ServiceMode::L3 {
                if p.circuit == circuit && p.kind == kind {
                    return self.l3.get(k).map(|x| x.routes.clone());
                }
                k += 1;
            }
        }
        None
    }

    /// Look up the attachment for a port and a received tag stack.
    #[inline(always)]
    pub fn classify(&self, key: u64) -> Option<u32> {
        self.classes.get(key)
    }

    /// Port id by configured name.
    pub fn port_id(&self, name: &str) -> Option<PortId> {
        self.ports
            .iter()
            .position(|p| p.name == name)
            .map(|i| i as PortId)
    }

    /// The name of port `id` (its number if the plan has no such port).
    pub fn port_name(&self, id: PortId) -> String {
        self.ports
            .get(id as usize)
            .map_or_else(|| id.to_string(), |p| p.name.clone())
    }
}

/// Build the L3 side of a peering: its links (own and peer addresses on
/// each), its VRF with connected and configured routes, its neighbours.
#[allow(clippy::too_many_arguments)]
fn compile_l3(
    role: Role,
    premium: bool,
    p: &Peering,
    pushes: &[TagPush; 3],
    ports: &[PortPlan],
    to_trunk: &Marker,
    to_access: &Marker,
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
            .map_or([0x02, 0x78, 0x63, 0, 0, 0], |x| x.mac)
    };
    let mut links: [Option<Adjacency>; 3] = [None, None, None];
    let mut peers = Vec::new();
    let mut connected: Vec<(IpNet, l3::PathId)> = Vec::new();
    // Access link.
    let a = &p.access;
    links[0] = Some(Adjacency {
        side: LinkSide::Access,
        port: pushes[0].port,
        push: pushes[0],
        mac: mac_of(pushes[0].port),
        own_v4: a.ipv4.map(|n| n.addr()),
        peer_v4: a.peer_v4(),
        own_v6: a.ipv6.map(|n| n.addr()),
        peer_v6: a.peer_v6(),
    });
    if let Some(n) = a.ipv4 {
        connected.push((IpNet::V4(n.trunc()), l3::PATH_ACCESS));
    }
    if let Some(n) = a.ipv6 {
        connected.push((IpNet::V6(n.trunc()), l3::PATH_ACCESS));
    }
    for (i, side) in [(1usize, LinkSide::Primary), (2, LinkSide::Secondary)] {
        let (o4, p4) = v4_links[i - 1].map(own_peer4).unzip();
        let (o6, p6) = v6_links[i - 1].map(own_peer6).unzip();
        links[i] = Some(Adjacency {
            side,
            port: pushes[i].port,
            push: pushes[i],
            mac: mac_of(pushes[i].port),
            own_v4: o4,
            peer_v4: p4,
            own_v6: o6,
            peer_v6: p6,
        });
        let path = if side == LinkSide::Primary {
            l3::PATH_PRIMARY
        } else {
            l3::PATH_SECONDARY
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
    let counted = LinkSide::advertised(customer_side);
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
    let neighbors = NeighborTable::new(6);
    for n in &p.neighbors {
        for l in links.iter().flatten() {
            if Some(n.ip) == l.peer_v4.map(IpAddr::V4) {
                neighbors.set_static(l3::slot(l.side, l3::Family::V4), &n.mac);
            }
            if Some(n.ip) == l.peer_v6.map(IpAddr::V6) {
                neighbors.set_static(l3::slot(l.side, l3::Family::V6), &n.mac);
            }
        }
    }
    let peering = L3Peering {
        links,
        v4: table.reader_v4(),
        v6: table.reader_v6(),
        neighbors: Arc::new(neighbors),
        routes: Arc::new(Mutex::new(table)),
        marker_to_trunk: to_trunk.clone(),
        marker_to_access: to_access.clone(),
        mtu: p.mtu,
    };
    (peering, warning)
}
