//! The managed Layer 3 service of a peering: its own routing table (a VRF,
//! looked up lock-free), its addresses on the point-to-point links, the
//! neighbours on those links, and what happens to a frame routed through it.
//!
//! Contract of [`route_frame`], per frame classified to an `l3` attachment:
//! - Only frames for this router are handled: unicast to our MAC on the
//!   link, or group-addressed ARP and IPv6 to a link-local scope multicast
//!   group (ND). Anything else (another station's unicast on a shared
//!   segment, IP sent to a broadcast or multicast MAC) is dropped as
//!   `not-our-mac`, with no ICMP.
//! - ARP and IPv6 neighbour discovery for this forwarder's addresses are
//!   answered in place (the reply leaves by the attachment the request came
//!   in on); the peers' MACs are learned from their ARP/ND.
//! - IPv4/IPv6 headers are validated (version, header length, total length,
//!   IPv4 checksum); ICMP echo to our addresses is answered.
//! - TTL / hop limit: a packet that would leave with 0 gets ICMP time
//!   exceeded (rate-limited); otherwise it is decremented, the IPv4
//!   checksum patched incrementally (RFC 1624).
//! - The destination is looked up in this peering's table only: private
//!   and Microsoft peering never share a route. No route: ICMP destination
//!   unreachable (rate-limited).
//! - The path picks the primary, the secondary or both trunk links (ECMP by
//!   flow hash among the links that are up), or the access link. An
//!   unresolved neighbour turns the frame into an ARP request / neighbour
//!   solicitation (one per neighbour per 500 ms) and the packet is counted
//!   as `neighbor-unresolved`.
//! - DSCP marking after routing, by the policy of the direction; tags popped
//!   and pushed as for `l2`; MACs rewritten to the neighbour and our port.

pub mod neighbor;
pub mod reply;
pub mod routes;

pub use neighbor::NeighborTable;
pub use routes::{LinkSide, RouteError, RouteState, RouteTable};

use crate::lpm::{Lpm4Reader, Lpm6Reader, NextHop};
use crate::pipeline::{DropReason, LinkState, Meta, PortId, TagPush, Verdict};
use crate::qos::Marker;
use crate::wire::ethernet::Mac;
use crate::wire::{ipv4::Ipv4Packet, ipv6, PacketBuf, L3};
use std::net::{Ipv4Addr, Ipv6Addr};
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

/// One point-to-point link of an l3 peering as the data path needs it.
#[derive(Clone, Debug)]
pub struct Adjacency {
    /// Which link.
    pub side: LinkSide,
    /// The egress port.
    pub port: PortId,
    /// Tags to push when leaving by this link.
    pub push: TagPush,
    /// Our MAC on that port.
    pub mac: Mac,
    /// Our IPv4 address on the link.
    pub own_v4: Option<Ipv4Addr>,
    /// The peer's IPv4 address.
    pub peer_v4: Option<Ipv4Addr>,
    /// Our IPv6 address on the link.
    pub own_v6: Option<Ipv6Addr>,
    /// The peer's IPv6 address.
    pub peer_v6: Option<Ipv6Addr>,
}

/// Neighbour slot of a link and family.
#[inline(always)]
pub fn slot(side: LinkSide, fam: Family) -> usize {
    (side as usize) * 2 + (fam == Family::V6) as usize
}

/// A compiled l3 peering.
#[derive(Clone)]
pub struct L3Peering {
    /// Links by [`LinkSide`] index (access, primary, secondary).
    pub links: [Option<Adjacency>; 3],
    /// IPv4 table reader.
    pub v4: Lpm4Reader,
    /// IPv6 table reader.
    pub v6: Lpm6Reader,
    /// Neighbours, slot per link and family.
    pub neighbors: Arc<NeighborTable>,
    /// The writer side: the route API.
    pub routes: Arc<Mutex<RouteTable>>,
    /// DSCP marker for traffic leaving by a trunk.
    pub marker_to_trunk: Marker,
    /// DSCP marker for traffic leaving by the access link.
    pub marker_to_access: Marker,
    /// IP MTU.
    pub mtu: u16,
}

impl std::fmt::Debug for L3Peering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("L3Peering")
            .field("links", &self.links)
            .field("mtu", &self.mtu)
            .finish_non_exhaustive()
    }
}

/// Informational L3 counters (frames are counted once by their verdict;
/// these say what the L3 service did on the way).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct L3Counters {
    /// Packets routed to a neighbour.
    pub routed: u64,
    /// ICMP/ICMPv6 errors sent (time exceeded, unreachable).
    pub icmp_errors: u64,
    /// Echo replies sent.
    pub echo_replies: u64,
    /// ARP replies and neighbour advertisements sent.
    pub nd_answers: u64,
    /// ARP requests and neighbour solicitations sent.
    pub nd_requests: u64,
    /// Neighbour MACs learned or confirmed.
    pub nd_learned: u64,
}

impl L3Counters {
    /// Add another worker's counters.
    pub fn add(&mut self, o: &L3Counters) {
        self.routed += o.routed;
        self.icmp_errors += o.icmp_errors;
        self.echo_replies += o.echo_replies;
        self.nd_answers += o.nd_answers;
        self.nd_requests += o.nd_requests;
        self.nd_learned += o.nd_learned;
    }
}

/// A per-worker token bucket for ICMP errors (RFC 1812 §4.3.2.8).
#[derive(Clone, Debug)]
pub struct IcmpLimiter {
    tokens: u32,
    last_ms: u64,
}

/// ICMP errors per second per worker.
pub const ICMP_PER_SECOND: u32 = 1000;
/// Burst of ICMP errors.
pub const ICMP_BURST: u32 = 100;

impl Default for IcmpLimiter {
    fn default() -> Self {
        IcmpLimiter {
            tokens: ICMP_BURST,
            last_ms: 0,
        }
    }
}

impl IcmpLimiter {
    /// Take a token at `now_ms`; `false` when the rate is exceeded.
    pub fn allow(&mut self, now_ms: u64) -> bool {
        let elapsed = now_ms.saturating_sub(self.last_ms);
        if elapsed > 0 {
            let refill = (elapsed.min(10_000) * ICMP_PER_SECOND as u64 / 1000) as u32;
            if refill > 0 {
                self.tokens = (self.tokens + refill).min(ICMP_BURST);
                self.last_ms = now_ms;
            }
        }
        if self.tokens > 0 {
            self.tokens -= 1;
            true
        } else {
            false
        }
    }
}

/// What the worker passes to [`route_frame`] besides the frame.
pub struct L3Context<'a> {
    /// Link state.
    pub links: &'a LinkState,
    /// Coarse time in ms.
    pub now_ms: u64,
    /// This worker's ICMP limiter.
    pub icmp: &'a mut IcmpLimiter,
    /// This worker's L3 counters.
    pub counters: &'a mut L3Counters,
    /// DSCP rewrites counter.
    pub dscp_rewritten: &'a mut u64,
}

#[inline(always)]
fn ipv4_dst(frame: &[u8], l3: usize) -> u32 {
    match frame.get(l3 + 16..l3 + 20) {
        Some(b) => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        None => 0,
    }
}

/// IPv4 destination of a parsed frame (for batch lookups).
#[inline(always)]
pub fn dst_v4(buf: &PacketBuf, meta: &Meta) -> u32 {
    ipv4_dst(buf.frame(), meta.info.l3_offset as usize)
}

/// IPv6 destination of a parsed frame (for batch lookups).
#[inline(always)]
pub fn dst_v6(buf: &PacketBuf, meta: &Meta) -> u128 {
    let at = meta.info.l3_offset as usize + 24;
    match buf.frame().get(at..at + 16) {
        Some(b) => u128::from_be_bytes(b.try_into().unwrap_or([0; 16])),
        None => 0,
    }
}

fn addr6_at(frame: &[u8], at: usize) -> Option<Ipv6Addr> {
    let b: [u8; 16] = frame.get(at..at + 16)?.try_into().ok()?;
    Some(Ipv6Addr::from(b))
}

/// Whether a router on this link takes the frame: unicast to its own MAC,
/// or group-addressed and for the link itself (ARP; IPv6 to a link-local
/// scope multicast group, where neighbour discovery lives). Ports are
/// promiscuous, so without this every unicast frame on a shared segment
/// would be routed a second time; and an IP packet sent to a broadcast or
/// multicast MAC is not to be forwarded (RFC 1812 §5.3.4).
fn addressed_to_us(frame: &[u8], l3: usize, kind: L3, ours: &Mac) -> bool {
    let Some(dst_mac) = frame.get(..6) else {
        return false;
    };
    if dst_mac[0] & 1 == 0 {
        return dst_mac == ours;
    }
    match kind {
        L3::Arp => true,
        L3::Ipv6 => frame.get(l3 + 24..l3 + 26) == Some(&[0xff, 0x02][..]),
        _ => false,
    }
}

/// Route one frame of an l3 attachment (see the module contract).
/// `path` is the LPM answer already looked up for the batch (`None` when
/// the frame was not in the batch lookup: it is looked up here).
pub fn route_frame(
    p: &L3Peering,
    ingress: LinkSide,
    pop: u8,
    buf: &mut PacketBuf,
    meta: &mut Meta,
    path: Option<Option<NextHop>>,
    cx: &mut L3Context<'_>,
) -> Verdict {
    let Some(inl) = p.links[ingress as usize].as_ref() else {
        return Verdict::Drop(DropReason::UnknownAttachment);
    };
    let l3 = meta.info.l3_offset as usize;
    if !addressed_to_us(buf.frame(), l3, meta.info.l3, &inl.mac) {
        return Verdict::Drop(DropReason::NotOurMac);
    }
    let len = buf.len();
    match meta.info.l3 {
        L3::Arp => arp(p, ingress, inl, buf, l3, cx),
        L3::Ipv4 => {
            {
                let Ok(ip) = Ipv4Packet::new_checked(&buf.frame()[l3..], l3) else {
                    return Verdict::Drop(DropReason::BadIpHeader);
                };
                if !ip.verify_checksum() {
                    return Verdict::Drop(DropReason::BadIpHeader);
                }
            }
            let dst = ipv4_dst(buf.frame(), l3);
            let path = match path {
                Some(x) => x,
                None => p.v4.lookup_u32(dst),
            };
            meta.route = path.map_or(Meta::NO_ROUTE, |x| x as u8);
            if path.is_some_and(routes::is_local) {
                return local_v4(inl, buf, meta, len, cx);
            }
            if meta.info.ttl <= 1 {
                return icmp_error(
                    inl,
                    buf,
                    meta,
                    Family::V4,
                    (11, 0),
                    DropReason::TtlExpired,
                    cx,
                );
            }
            let Some(path) = path else {
                return icmp_error(inl, buf, meta, Family::V4, (3, 0), DropReason::NoRoute, cx);
            };
            forward(p, pop, buf, meta, Family::V4, path as PathId, cx)
        }
        L3::Ipv6 => {
            let frame = buf.frame();
            let Some(dst) = addr6_at(frame, l3 + 24) else {
                return Verdict::Drop(DropReason::BadIpHeader);
            };
            let path = match path {
                Some(x) => x,
                None => p.v6.lookup(dst),
            };
            meta.route = path.map_or(Meta::NO_ROUTE, |x| x as u8);
            if path.is_some_and(routes::is_local) || dst.segments()[0] == 0xff02 {
                return local_v6(p, ingress, inl, buf, meta, len, dst, cx);
            }
            if meta.info.ttl <= 1 {
                return icmp_error(
                    inl,
                    buf,
                    meta,
                    Family::V6,
                    (3, 0),
                    DropReason::TtlExpired,
                    cx,
                );
            }
            let Some(path) = path else {
                return icmp_error(inl, buf, meta, Family::V6, (1, 0), DropReason::NoRoute, cx);
            };
            forward(p, pop, buf, meta, Family::V6, path as PathId, cx)
        }
        L3::Other => Verdict::Drop(DropReason::NotIp),
    }
}

fn arp(
    p: &L3Peering,
    side: LinkSide,
    inl: &Adjacency,
    buf: &mut PacketBuf,
    at: usize,
    cx: &mut L3Context<'_>,
) -> Verdict {
    let frame = buf.frame();
    let Ok(a) = crate::wire::arp::ArpPacket::new_checked(&frame[at..], at) else {
        return Verdict::Drop(DropReason::Malformed);
    };
    let (op, sha, spa, tpa) = (a.operation(), a.sender_mac(), a.sender_ip(), a.target_ip());
    if Some(spa) == inl.peer_v4 {
        p.neighbors.learn(slot(side, Family::V4), &sha, cx.now_ms);
        cx.counters.nd_learned += 1;
    }
    if op == crate::wire::arp::op::REQUEST && Some(tpa) == inl.own_v4 {
        if let Some(n) = reply::arp_reply(buf.frame_mut(), at, &inl.mac, tpa) {
            buf.set_len(n.max(60));
            cx.counters.nd_answers += 1;
            return Verdict::Forward(inl.port);
        }
    }
    Verdict::Local
}

fn local_v4(
    inl: &Adjacency,
    buf: &mut PacketBuf,
    meta: &Meta,
    len: usize,
    cx: &mut L3Context<'_>,
) -> Verdict {
    let l3 = meta.info.l3_offset as usize;
    let l4 = meta.info.l4_offset as usize;
    let is_echo = meta.info.protocol == 1 && !meta.info.fragment && buf.frame().get(l4) == Some(&8);
    if is_echo {
        if let Some(n) = reply::icmp4_echo_reply(buf.frame_mut(), len, l3, &inl.mac) {
            buf.set_len(n.max(60));
            cx.counters.echo_replies += 1;
            return Verdict::Forward(inl.port);
        }
    }
    Verdict::Local
}

#[allow(clippy::too_many_arguments)]
fn local_v6(
    p: &L3Peering,
    side: LinkSide,
    inl: &Adjacency,
    buf: &mut PacketBuf,
    meta: &Meta,
    len: usize,
    dst: Ipv6Addr,
    cx: &mut L3Context<'_>,
) -> Verdict {
    let l3 = meta.info.l3_offset as usize;
    let l4 = meta.info.l4_offset as usize;
    if meta.info.protocol != 58 || l4 == 0 {
        return Verdict::Local;
    }
    let frame = buf.frame();
    let kind = frame.get(l4).copied().unwrap_or(0);
    let hop_255 = meta.info.ttl == 255;
    let src = addr6_at(frame, l3 + 8);
    match kind {
        128 if Some(dst) == inl.own_v6 => {
            if let Some(n) = reply::icmp6_echo_reply(buf.frame_mut(), len, l3, &inl.mac) {
                buf.set_len(n.max(60));
                cx.counters.echo_replies += 1;
                return Verdict::Forward(inl.port);
            }
        }
        // Neighbour solicitation (RFC 4861 §7.1.1: hop limit 255).
        135 if hop_255 => {
            let target = addr6_at(frame, l4 + 8);
            if src == inl.peer_v6 {
                if let Some(m) = frame.get(l4 + 24..len).and_then(|o| reply::nd_lladdr(o, 1)) {
                    p.neighbors.learn(slot(side, Family::V6), &m, cx.now_ms);
                    cx.counters.nd_learned += 1;
                }
            }
            if target.is_some() && target == inl.own_v6 {
                let t = target.unwrap_or(Ipv6Addr::UNSPECIFIED);
                if let Some(n) = reply::nd_advert(buf.frame_mut(), l3, &inl.mac, t) {
                    buf.set_len(n.max(60));
                    cx.counters.nd_answers += 1;
                    return Verdict::Forward(inl.port);
                }
            }
        }
        // Neighbour advertisement.
        136 if hop_255 => {
            let target = addr6_at(frame, l4 + 8);
            if target.is_some() && target == inl.peer_v6 {
                if let Some(m) = frame.get(l4 + 24..len).and_then(|o| reply::nd_lladdr(o, 2)) {
                    p.neighbors.learn(slot(side, Family::V6), &m, cx.now_ms);
                    cx.counters.nd_learned += 1;
                }
            }
        }
        _ => {}
    }
    Verdict::Local
}

fn icmp_error(
    inl: &Adjacency,
    buf: &mut PacketBuf,
    meta: &Meta,
    fam: Family,
    (kind, code): (u8, u8),
    reason: DropReason,
    cx: &mut L3Context<'_>,
) -> Verdict {
    // Never answer an ICMP error or a non-first fragment with an error (RFC 1812 §4.3.2.7).
    let l4 = meta.info.l4_offset as usize;
    let is_error = match fam {
        Family::V4 => {
            meta.info.protocol == 1 && matches!(buf.frame().get(l4), Some(3 | 4 | 5 | 11 | 12))
        }
        Family::V6 => meta.info.protocol == 58 && buf.frame().get(l4).is_some_and(|t| *t < 128),
    };
    if is_error || (meta.info.fragment && l4 == 0) || !cx.icmp.allow(cx.now_ms) {
        return Verdict::Drop(reason);
    }
    let l3 = meta.info.l3_offset as usize;
    let len = buf.len();
    let built = match fam {
        Family::V4 => inl.own_v4.and_then(|ip| {
            buf.set_len(buf.capacity_from_head());
            reply::icmp4_error(buf.frame_mut(), len, l3, kind, code, &inl.mac, ip)
        }),
        Family::V6 => inl.own_v6.and_then(|ip| {
            buf.set_len(buf.capacity_from_head());
            reply::icmp6_error(buf.frame_mut(), len, l3, kind, code, &inl.mac, ip)
        }),
    };
    match built {
        Some(n) => {
            buf.set_len(n.max(60));
            cx.counters.icmp_errors += 1;
            Verdict::Forward(inl.port)
        }
        None => {
            buf.set_len(len);
            Verdict::Drop(reason)
        }
    }
}

fn forward(
    p: &L3Peering,
    pop: u8,
    buf: &mut PacketBuf,
    meta: &mut Meta,
    fam: Family,
    path: PathId,
    cx: &mut L3Context<'_>,
) -> Verdict {
    let side = match path {
        PATH_ACCESS => LinkSide::Access,
        PATH_PRIMARY => LinkSide::Primary,
        PATH_SECONDARY => LinkSide::Secondary,
        PATH_ECMP => {
            let a = p.links[1].as_ref().is_some_and(|l| cx.links.is_up(l.port));
            let b = p.links[2].as_ref().is_some_and(|l| cx.links.is_up(l.port));
            match (a, b) {
                (true, true) => {
                    if crate::pipeline::flow_hash(&meta.info, buf.frame()) >> 31 == 0 {
                        LinkSide::Primary
                    } else {
                        LinkSide::Secondary
                    }
                }
                (false, true) => LinkSide::Secondary,
                _ => LinkSide::Primary,
            }
        }
        _ => return Verdict::Drop(DropReason::NoRoute),
    };
    let Some(out) = p.links[side as usize].as_ref() else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    if !cx.links.is_up(out.port) {
        return Verdict::Drop(if side == LinkSide::Access {
            DropReason::PortDown
        } else {
            DropReason::NoLinkUp
        });
    }
    let l3 = meta.info.l3_offset as usize;
    let ip_len = match meta.info.l3 {
        L3::Ipv4 => buf
            .frame()
            .get(l3 + 2..l3 + 4)
            .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]) as usize),
        _ => buf
            .frame()
            .get(l3 + 4..l3 + 6)
            .map_or(0, |b| 40 + u16::from_be_bytes([b[0], b[1]]) as usize),
    };
    if ip_len > p.mtu as usize {
        return Verdict::Drop(DropReason::OverMtu);
    }
    let Some(mac) = p.neighbors.lookup(slot(side, fam), cx.now_ms) else {
        return resolve(p, pop, buf, fam, side, out, cx);
    };
    // Mark by the policy of the direction, then TTL, tags and MACs.
    let marker = if side == LinkSide::Access {
        &p.marker_to_access
    } else {
        &p.marker_to_trunk
    };
    if let Some((b, a)) = marker.apply(&mut meta.info, buf.frame_mut()) {
        meta.dscp_before = b.get();
        meta.dscp_after = a.get();
        *cx.dscp_rewritten += (a != b) as u64;
    }
    let ttl = meta.info.ttl - 1;
    match meta.info.l3 {
        L3::Ipv4 => Ipv4Packet::new_unchecked(&mut buf.frame_mut()[l3..]).set_ttl(ttl),
        _ => ipv6::Ipv6Packet::new_unchecked(&mut buf.frame_mut()[l3..]).set_hop_limit(ttl),
    }
    if !buf.rewrite_tags(pop as usize, out.push.bytes()) {
        return Verdict::Drop(DropReason::TagRewrite);
    }
    reply::set_macs(buf.frame_mut(), &mac, &out.mac);
    cx.counters.routed += 1;
    Verdict::Forward(out.port)
}

/// The neighbour is unresolved: the frame becomes an ARP request / NS for
/// it (rate-limited per neighbour) and the packet counts as unresolved.
#[allow(clippy::too_many_arguments)]
fn resolve(
    p: &L3Peering,
    pop: u8,
    buf: &mut PacketBuf,
    fam: Family,
    side: LinkSide,
    out: &Adjacency,
    cx: &mut L3Context<'_>,
) -> Verdict {
    if !p.neighbors.claim_request(slot(side, fam), cx.now_ms) {
        return Verdict::Drop(DropReason::NeighborUnresolved);
    }
    if !buf.rewrite_tags(pop as usize, out.push.bytes()) {
        return Verdict::Drop(DropReason::NeighborUnresolved);
    }
    let l3 = 14 + 4 * out.push.count as usize;
    buf.set_len(buf.capacity_from_head());
    let n = match fam {
        Family::V4 => match (out.own_v4, out.peer_v4) {
            (Some(own), Some(peer)) => reply::arp_request(buf.frame_mut(), l3, &out.mac, own, peer),
            _ => None,
        },
        Family::V6 => match (out.own_v6, out.peer_v6) {
            (Some(own), Some(peer)) => reply::nd_solicit(buf.frame_mut(), l3, &out.mac, own, peer),
            _ => None,
        },
    };
    match n {
        Some(n) => {
            buf.set_len(n.max(60));
            cx.counters.nd_requests += 1;
            Verdict::Resolve(out.port)
        }
        None => Verdict::Drop(DropReason::NeighborUnresolved),
    }
}
