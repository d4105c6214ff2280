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
use crate::config::{BackendKind, Circuit, Config, Encapsulation, PeeringKind, Role, ServiceMode};
use crate::qos::Marker;
use crate::wire::{Tpid, VlanTag};

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
    /// Managed Layer 3 (forwarding not available yet: dropped as `l3-pending`).
    L3Pending,
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
            .map(|p| PortPlan {
                name: p.name.clone(),
                interface: p.interface.clone(),
                backend: p.backend,
            })
            .collect();
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
                        Service::L3Pending
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
                            Service::L3Pending
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
            classes: ClassTable::build(&entries),
        }
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
}
