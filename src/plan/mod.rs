//! The [`Plan`]: a configuration compiled into the immutable tables the
//! hot path reads — the classification table (port + tag stack →
//! [`Attachment`]), each attachment's [`Service`] with its tag pushes and
//! DSCP marker, and each managed Layer 3 peering's VRF ([`L3Peering`]: its
//! links, its lock-free route tables and its neighbours).
//!
//! Contract:
//! - A `Plan` is built once, by `config::compile`, through [`Plan::new`],
//!   and never changes after; a reload builds a new one beside it and the
//!   runtime swaps it between batches ([`PlanHandle`]).
//! - It holds what the stages read, plus the labels that reports need to
//!   name what the stages decided (port and circuit names). It holds no
//!   backend, no interface name and nothing else of how ports are opened:
//!   that is the runtime's port list.
//! - The only shared mutable state it points to is the route API of each
//!   `l3` peering ([`RouteTable`], behind a mutex that only writers take;
//!   readers look up the lock-free tables) and its neighbour table
//!   ([`NeighborTable`], atomics): routes can be written into a running
//!   forwarder without touching the stages.

pub mod classify;
pub mod handle;
pub mod l3;
pub mod mpls;
pub mod neighbor;
pub mod routes;

pub use classify::ClassTable;
pub use handle::PlanHandle;
pub use l3::{
    neighbor_slot, Adjacency, Family, L3Peering, PathId, VrfInputs, LOCAL_PATH, PATH_ACCESS,
    PATH_ECMP, PATH_PRIMARY, PATH_SECONDARY,
};
pub use mpls::{MplsIn, MplsPush, TtlModel};
pub use neighbor::NeighborTable;
pub use routes::{RouteError, RouteState, RouteTable};

use crate::frame::PortId;
use crate::qos::Marker;
use crate::wire::ethernet::Mac;
use std::sync::{Arc, Mutex};

/// Private peering (virtual networks) or Microsoft peering (public services).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PeeringKind {
    /// Private peering.
    Private,
    /// Microsoft peering.
    Microsoft,
}

impl PeeringKind {
    /// Lower-case name as in configs, reports and JSON.
    pub const fn name(self) -> &'static str {
        match self {
            PeeringKind::Private => "private",
            PeeringKind::Microsoft => "microsoft",
        }
    }
}

/// How the forwarder serves a peering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceMode {
    /// Point-to-point Ethernet Layer 2: tags rewritten, frames otherwise untouched.
    L2,
    /// Managed Layer 3: the forwarder routes for the peering.
    L3,
}

impl ServiceMode {
    /// Lower-case name as in configs, reports and JSON.
    pub const fn name(self) -> &'static str {
        match self {
            ServiceMode::L2 => "l2",
            ServiceMode::L3 => "l3",
        }
    }
}

/// Which side of the cross-connect an attachment (or an `l3` link) is.
/// The discriminants index [`L3Peering::links`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    /// The access (non-trunk) side.
    Access = 0,
    /// The primary trunk link.
    Primary = 1,
    /// The secondary trunk link.
    Secondary = 2,
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

    /// True for the two trunk links.
    pub const fn is_trunk(self) -> bool {
        !matches!(self, Side::Access)
    }

    /// The sides whose routes are advertised toward Microsoft and so count
    /// against the prefix limits. On the provider edge (`customer_side`,
    /// role `provider-edge`) the access link's peer is the customer and the
    /// trunk peers are the MSEEs, whose routes are received from Microsoft:
    /// only [`Side::Access`] counts. On the MSEE the trunk peers are the
    /// customer's routers and the access side is Microsoft's own networks:
    /// [`Side::Primary`] and [`Side::Secondary`] count.
    pub const fn advertised(customer_side: bool) -> &'static [Side] {
        if customer_side {
            &[Side::Access]
        } else {
            &[Side::Primary, Side::Secondary]
        }
    }
}

/// A port as the hot path needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortPlan {
    /// Name from the configuration (a label for reports; never read per frame).
    pub name: String,
    /// The MAC this forwarder uses as source on the port (routed frames,
    /// ARP/ND): locally administered 02:78:63:00:<id+1 as 16 bits>.
    pub mac: Mac,
    /// A backbone port (`role = "backbone"`): its frames may be labelled
    /// (the pipeline looks for the MPLS ethertype only on such ports).
    pub backbone: bool,
    /// A backbone port's own transport label: a frame may arrive with it
    /// on top of its VPN or pseudowire label (no penultimate-hop popping).
    pub transport_label: Option<u32>,
}

impl PortPlan {
    /// The forwarder's MAC on port `id`: 02:78:63:00:hi:lo with hi:lo = id + 1.
    pub fn mac_of(id: usize) -> Mac {
        let n = id.wrapping_add(1);
        [0x02, 0x78, 0x63, 0, (n >> 8) as u8, n as u8]
    }
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
    /// Toward an MPLS backbone: the labels (and for a pseudowire, the
    /// outer Ethernet header) to put in front as well.
    pub mpls: Option<MplsPush>,
}

impl TagPush {
    /// A push of `tags` (wire bytes of whole tags, at most three are kept)
    /// on `port`.
    pub fn new(port: PortId, tags: &[[u8; 4]]) -> TagPush {
        let mut bytes = [0u8; 12];
        for (dst, t) in bytes.chunks_exact_mut(4).zip(tags.iter().take(3)) {
            dst.copy_from_slice(t);
        }
        TagPush {
            port,
            bytes,
            count: tags.len().min(3) as u8,
            mpls: None,
        }
    }

    /// This push, leaving toward an MPLS backbone with `mpls`.
    pub fn with_mpls(self, mpls: MplsPush) -> TagPush {
        TagPush {
            mpls: Some(mpls),
            ..self
        }
    }

    /// The tag bytes to write.
    #[inline(always)]
    pub fn bytes(&self) -> &[u8] {
        self.bytes.get(..self.count as usize * 4).unwrap_or(&[])
    }

    /// The tags as words (TPID << 16 | TCI, PCP zero), outermost first:
    /// the form the egress tail writes.
    #[inline(always)]
    pub fn words(&self) -> [u32; 3] {
        let [a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3] = self.bytes;
        [
            u32::from_be_bytes([a0, a1, a2, a3]),
            u32::from_be_bytes([b0, b1, b2, b3]),
            u32::from_be_bytes([c0, c1, c2, c3]),
        ]
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
        side: Side,
        /// Tags to pop (the attachment's own tags).
        pop: u8,
    },
}

/// One sub-interface: a port plus an exact VID stack, or on a backbone
/// port, a label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// The port.
    pub port: PortId,
    /// VIDs, outermost first.
    pub vids: Vec<u16>,
    /// An MPLS attachment (L3VPN or pseudowire): classified by its label,
    /// not by `vids` (which is empty).
    pub mpls: Option<MplsIn>,
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
    /// Some attachment is an MPLS attachment: the pipeline runs its
    /// labelled instantiation (a plan without labels runs code with no
    /// label check at all).
    pub labels: bool,
    classes: ClassTable,
}

impl Plan {
    /// Assemble a plan and build its classification table from the
    /// attachments (the first attachment of a port and tag stack wins; the
    /// configuration checker refuses duplicates before this point).
    pub fn new(
        ports: Vec<PortPlan>,
        attachments: Vec<Attachment>,
        peerings: Vec<PeeringPlan>,
        markers: Vec<Marker>,
        l3: Vec<L3Peering>,
        warnings: Vec<String>,
    ) -> Plan {
        let entries: Vec<(u64, u32)> = attachments
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let k = match a.mpls {
                    Some(m) => classify::label_key(a.port, m.label),
                    None => classify::key(a.port, &a.vids),
                };
                (k, i as u32)
            })
            .collect();
        let labels = attachments.iter().any(|a| a.mpls.is_some());
        Plan {
            ports,
            attachments,
            peerings,
            markers,
            l3,
            warnings,
            labels,
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

    /// Every l3 peering: its circuit, kind and data, in plan order.
    pub fn l3_peerings(&self) -> impl Iterator<Item = (&str, PeeringKind, &L3Peering)> + '_ {
        self.peerings
            .iter()
            .filter(|p| p.mode == ServiceMode::L3)
            .zip(&self.l3)
            .map(|(p, l)| (p.circuit.as_str(), p.kind, l))
    }

    /// Every l3 peering: its circuit, kind and route table, in plan order.
    pub fn route_tables(&self) -> Vec<(String, PeeringKind, Arc<Mutex<RouteTable>>)> {
        self.l3_peerings()
            .map(|(c, k, l)| (c.to_string(), k, l.routes.clone()))
            .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_push_words_and_bytes() {
        let p = TagPush::new(3, &[[0x81, 0, 0, 100], [0x81, 0, 0, 200]]);
        assert_eq!(p.bytes(), &[0x81, 0, 0, 100, 0x81, 0, 0, 200]);
        assert_eq!(p.words(), [0x8100_0064, 0x8100_00c8, 0]);
        let four = TagPush::new(0, &[[1, 1, 1, 1]; 4]);
        assert_eq!(four.count, 3, "at most three tags are kept");
    }

    #[test]
    fn port_macs_are_locally_administered_and_distinct() {
        assert_eq!(PortPlan::mac_of(0), [2, 0x78, 0x63, 0, 0, 1]);
        assert_eq!(PortPlan::mac_of(255), [2, 0x78, 0x63, 0, 1, 0]);
        assert_ne!(PortPlan::mac_of(1), PortPlan::mac_of(257));
    }
}
