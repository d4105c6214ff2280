//! The compiled form of a managed Layer 3 (`l3`) peering: its
//! point-to-point links ([`Adjacency`]), its VRF (lock-free IPv4/IPv6
//! readers of the [`RouteTable`]), its neighbours, and what its egress
//! tail needs (markers, MTU, PCP rule).
//!
//! Route answers are [`PathId`]s: which link(s) the next hop is on, or
//! [`LOCAL_PATH`] for this forwarder's own addresses. One neighbour slot
//! per link and address family ([`neighbor_slot`]) holds the peer's MAC.

use super::{NeighborTable, RouteTable, Side, TagPush};
use crate::frame::PortId;
use crate::lpm::{Lpm4Reader, Lpm6Reader};
use crate::wire::ethernet::Mac;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};

/// Index of a forwarding path in a peering's tables (the LPM next hop).
pub type PathId = u8;
/// The access link's peer.
pub const PATH_ACCESS: PathId = 0;
/// The primary link's peer.
pub const PATH_PRIMARY: PathId = 1;
/// The secondary link's peer.
pub const PATH_SECONDARY: PathId = 2;
/// Both trunk links' peers, per flow.
pub const PATH_ECMP: PathId = 3;
/// One of this forwarder's own addresses.
pub const LOCAL_PATH: PathId = 4;

/// IPv4 or IPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: std::net::IpAddr) -> Family {
        if addr.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
}

/// Neighbour slot of a link and family in [`L3Peering::neighbors`].
#[inline(always)]
pub fn neighbor_slot(side: Side, fam: Family) -> usize {
    (side as usize) * 2 + (fam == Family::V6) as usize
}

/// Number of neighbour slots of a peering (three links, two families).
pub const NEIGHBOR_SLOTS: usize = 6;

/// One point-to-point link of an l3 peering as the data path needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Adjacency {
    /// Which link.
    pub side: Side,
    /// The egress port.
    pub port: PortId,
    /// Tags to push when leaving by this link.
    pub push: TagPush,
    /// Our MAC on that port.
    pub mac: Mac,
    /// The host interface standing for this link, if any: frames for this
    /// forwarder that the data plane does not answer go there, untagged.
    pub host: Option<PortId>,
    /// ICMP echo to our addresses goes to [`Adjacency::host`] instead of
    /// being answered (only with a host interface).
    pub punt_echo: bool,
    /// Our IPv4 address on the link.
    pub own_v4: Option<Ipv4Addr>,
    /// The peer's IPv4 address.
    pub peer_v4: Option<Ipv4Addr>,
    /// Our IPv6 address on the link.
    pub own_v6: Option<Ipv6Addr>,
    /// The peer's IPv6 address.
    pub peer_v6: Option<Ipv6Addr>,
}

/// What a peering's VRF and neighbour table were built from: a reload
/// keeps a running peering's tables (and the routes its route sources and
/// `ctl route` wrote into them) when these are unchanged but for the
/// static routes, which it then adds and deletes in place.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VrfInputs {
    /// Microsoft peering (no default route).
    pub microsoft: bool,
    /// (IPv4, IPv6) prefix limits.
    pub limits: (usize, usize),
    /// The sides whose routes count against the limits.
    pub counted: Vec<Side>,
    /// Link peers (next-hop candidates) and their sides.
    pub peers: Vec<(IpAddr, Side)>,
    /// Connected and local routes.
    pub connected: Vec<(IpNet, PathId)>,
    /// Configured static routes (prefix, next hop).
    pub statics: Vec<(IpNet, IpAddr)>,
    /// Configured static neighbours (slot, MAC).
    pub static_neighbors: Vec<(usize, Mac)>,
}

/// A compiled l3 peering.
#[derive(Clone)]
pub struct L3Peering {
    /// Links by [`Side`] (access, primary, secondary).
    pub links: [Option<Adjacency>; 3],
    /// IPv4 table reader.
    pub v4: Lpm4Reader,
    /// IPv6 table reader.
    pub v6: Lpm6Reader,
    /// Neighbours, one slot per link and family ([`neighbor_slot`]).
    pub neighbors: Arc<NeighborTable>,
    /// The writer side: the route API.
    pub routes: Arc<Mutex<RouteTable>>,
    /// Index into `Plan::markers` of the DSCP marker for traffic leaving
    /// by a trunk.
    pub marker_to_trunk: u16,
    /// Index into `Plan::markers` of the marker for traffic leaving by the
    /// access link.
    pub marker_to_access: u16,
    /// IP MTU.
    pub mtu: u16,
    /// Pushed tags take PCP = DSCP >> 3 (else the PCP of the popped outer tag).
    pub pcp_from_dscp: bool,
    /// What the VRF and the neighbour table were built from.
    pub inputs: Arc<VrfInputs>,
}

impl L3Peering {
    /// The link on `side`, if the peering has it.
    #[inline(always)]
    pub fn link(&self, side: Side) -> Option<&Adjacency> {
        self.links.get(side as usize).and_then(Option::as_ref)
    }

    /// The marker index for traffic leaving by `side`.
    #[inline(always)]
    pub fn marker_to(&self, side: Side) -> u16 {
        if side.is_trunk() {
            self.marker_to_trunk
        } else {
            self.marker_to_access
        }
    }
}

impl std::fmt::Debug for L3Peering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("L3Peering")
            .field("links", &self.links)
            .field("mtu", &self.mtu)
            .field("pcp_from_dscp", &self.pcp_from_dscp)
            .finish_non_exhaustive()
    }
}
