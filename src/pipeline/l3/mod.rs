//! The managed Layer 3 stage: what happens to a frame classified to an
//! `l3` attachment. Each peering routes in its own VRF (the plan's
//! [`L3Peering`]: lock-free tables, neighbours, links).
//!
//! Contract, per frame:
//! - Only frames for this router are handled: unicast to our MAC on the
//!   link, or group-addressed ARP and IPv6 to a link-local scope multicast
//!   group (ND). Anything else (another station's unicast on a shared
//!   segment, IP sent to a broadcast or multicast MAC) is dropped as
//!   `not-our-mac`, with no ICMP.
//! - ARP and IPv6 neighbour discovery for this forwarder's addresses are
//!   answered in place (the reply leaves by the attachment the request came
//!   in on); the peers' MACs are learned from their ARP/ND ([`local`]).
//! - IPv4/IPv6 headers are validated (version, header length, total length,
//!   IPv4 checksum); ICMP echo to our addresses is answered.
//! - TTL / hop limit: a packet that would leave with 0 gets ICMP time
//!   exceeded (rate-limited); otherwise it is decremented, the IPv4
//!   checksum patched incrementally (RFC 1624).
//! - The destination is looked up in this peering's table only: private
//!   and Microsoft peering never share a route. No route: ICMP destination
//!   unreachable (rate-limited). The IPv4 and IPv6 destinations of a
//!   batch's frames of one peering are looked up together, prefetched.
//! - The path picks the primary, the secondary or both trunk links (ECMP by
//!   flow hash among the links up in the batch's snapshot), or the access
//!   link, and the frame leaves through the shared egress tail
//!   ([`super::egress`]): MTU, DSCP mark by the policy of the direction,
//!   link pick, next-hop MAC, tags with PCP, MACs.
//! - A packet whose next hop is unresolved is held ([`hold`]) while an ARP
//!   request / neighbour solicitation is out (one per neighbour per
//!   500 ms), and sent in order when the neighbour answers; with no room to
//!   hold it, it becomes that request and counts as `neighbor-unresolved`.
//!
//! The stage reads only the plan, the frame and the batch's link snapshot;
//! it calls nothing above the pipeline.

pub mod hold;
pub mod local;
pub mod reply;

pub use hold::HoldQueue;

use super::egress::{encap, Dest, NextHopMac, Out, Step, Tail};
use super::links::LinkSnapshot;
use super::stats::Counters;
use crate::frame::{Batch, DropReason, Meta, Verdict, BATCH_SIZE};
use crate::lpm::{NextHop, Route};
use crate::plan::{
    Adjacency, Family, L3Peering, PathId, Plan, Service, Side, LOCAL_PATH, PATH_ACCESS, PATH_ECMP,
    PATH_PRIMARY, PATH_SECONDARY,
};
use crate::wire::ethernet::Mac;
use crate::wire::icmp::{v4_type, v6_type};
use crate::wire::{ipv4::Ipv4Packet, ipv6, PacketBuf, L3};
use std::net::Ipv6Addr;

/// A per-worker token bucket: ICMP errors (RFC 1812 §4.3.2.8) and frames
/// punted to host interfaces each have one.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    tokens: u32,
    last_ms: u64,
    per_second: u32,
    burst: u32,
}

/// ICMP errors per second per worker.
pub const ICMP_PER_SECOND: u32 = 1000;
/// Burst of ICMP errors.
pub const ICMP_BURST: u32 = 100;
/// Frames per second per worker handed to host interfaces (BGP and BFD
/// need a few per second per link; this bounds what a flood toward the
/// forwarder's addresses costs the host).
pub const PUNT_PER_SECOND: u32 = 10_000;
/// Burst of punted frames.
pub const PUNT_BURST: u32 = 1_000;

impl RateLimiter {
    /// A full bucket of `burst` tokens refilled at `per_second`.
    pub const fn new(per_second: u32, burst: u32) -> RateLimiter {
        RateLimiter {
            tokens: burst,
            last_ms: 0,
            per_second,
            burst,
        }
    }

    /// The ICMP error limiter.
    pub const fn icmp() -> RateLimiter {
        RateLimiter::new(ICMP_PER_SECOND, ICMP_BURST)
    }

    /// The host interface (punt) limiter.
    pub const fn punt() -> RateLimiter {
        RateLimiter::new(PUNT_PER_SECOND, PUNT_BURST)
    }

    /// Take a token at `now_ms`; `false` when the rate is exceeded.
    pub fn allow(&mut self, now_ms: u64) -> bool {
        let elapsed = now_ms.saturating_sub(self.last_ms);
        if elapsed > 0 {
            let refill = (elapsed.min(10_000) * self.per_second as u64 / 1000) as u32;
            if refill > 0 {
                self.tokens = self.tokens.saturating_add(refill).min(self.burst);
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

/// What the stage needs besides the plan and the frames: the batch's time
/// and link snapshot, this worker's ICMP limiter and counters.
pub struct Context<'a, 'l> {
    /// The batch's link state.
    pub links: &'a LinkSnapshot<'l>,
    /// Coarse time in ms.
    pub now_ms: u64,
    /// This worker's ICMP limiter.
    pub icmp: &'a mut RateLimiter,
    /// This worker's limiter of frames punted to host interfaces.
    pub punt: &'a mut RateLimiter,
    /// This worker's counters.
    pub counters: &'a mut Counters,
    /// This worker's packets waiting for a neighbour.
    pub hold: &'a mut HoldQueue,
}

#[inline(always)]
fn ipv4_dst(frame: &[u8], l3: usize) -> u32 {
    match frame.get(l3 + 16..).and_then(|b| b.first_chunk::<4>()) {
        Some(b) => u32::from_be_bytes(*b),
        None => 0,
    }
}

#[inline(always)]
fn ipv6_dst(frame: &[u8], l3: usize) -> u128 {
    match frame.get(l3 + 24..).and_then(|b| b.first_chunk::<16>()) {
        Some(b) => u128::from_be_bytes(*b),
        None => 0,
    }
}

/// Route the `l3` frames of a batch (indexes in `frames`, each with
/// verdict `Pending`): one batched, prefetched lookup per address family
/// for the frames of the first frame's peering, then each frame through
/// `route_frame`. Every frame gets its verdict and is counted.
/// `LABELS`: the plan has MPLS attachments (see [`crate::plan::Plan::labels`]).
pub fn route_batch<const LABELS: bool>(
    plan: &Plan,
    batch: &mut Batch,
    frames: &[u8],
    cx: &mut Context<'_, '_>,
) {
    let mut first: Option<u16> = None;
    let mut addrs4 = [0u32; BATCH_SIZE];
    let mut addrs6 = [0u128; BATCH_SIZE];
    let mut slot_of = [u8::MAX; BATCH_SIZE];
    let (mut m4, mut m6) = (0usize, 0usize);
    for (k, &i) in frames.iter().enumerate() {
        let meta = batch.meta(i as usize);
        let Some(Service::L3 { peering, .. }) = plan
            .attachments
            .get(meta.attachment as usize)
            .map(|a| a.service)
        else {
            continue;
        };
        if *first.get_or_insert(peering) != peering {
            continue;
        }
        let l3 = meta.info.l3_offset as usize;
        match meta.info.l3 {
            L3::Ipv4 => {
                addrs4[m4] = ipv4_dst(batch.buf(i as usize).frame(), l3);
                slot_of[k] = m4 as u8;
                m4 += 1;
            }
            L3::Ipv6 => {
                addrs6[m6] = ipv6_dst(batch.buf(i as usize).frame(), l3);
                slot_of[k] = (BATCH_SIZE + m6) as u8;
                m6 += 1;
            }
            _ => {}
        }
    }
    // paths[0..32] IPv4 answers, paths[32..64] IPv6 answers.
    let mut paths = [Route::NONE; 2 * BATCH_SIZE];
    if let Some(p) = first.and_then(|pi| plan.l3.get(pi as usize)) {
        let (p4, p6) = paths.split_at_mut(BATCH_SIZE);
        if m4 > 0 {
            p.v4.lookup_batch(&addrs4[..m4], &mut p4[..m4]);
        }
        if m6 > 0 {
            p.v6.lookup_batch(&addrs6[..m6], &mut p6[..m6]);
        }
    }
    let mut tails = TailCache::default();
    for (k, &i) in frames.iter().enumerate() {
        let (buf, meta) = batch.get_mut(i as usize);
        let verdict = match plan
            .attachments
            .get(meta.attachment as usize)
            .map(|a| a.service)
        {
            Some(Service::L3 { peering, side, pop }) => match plan.l3.get(peering as usize) {
                Some(p) => {
                    let path = paths.get(slot_of[k] as usize).map(|r| r.next_hop());
                    let ingress = Ingress { peering, side, pop };
                    route_frame::<LABELS>(plan, p, ingress, buf, meta, path, &mut tails, cx)
                }
                None => Verdict::Drop(DropReason::UnknownAttachment),
            },
            _ => Verdict::Drop(DropReason::UnknownAttachment),
        };
        meta.verdict = verdict;
        cx.counters.count(verdict, buf.wire_len());
    }
}

/// The ingress attachment of a routed frame.
#[derive(Clone, Copy, Debug)]
pub struct Ingress {
    /// Index of its l3 peering in the plan.
    pub peering: u16,
    /// Which link it is.
    pub side: Side,
    /// Its tags (popped on the way out).
    pub pop: u8,
}

/// The last resolved (peering, path, family) → tail of a batch: frames of
/// one flow or one peering in a row resolve once. The tail is handed out
/// by reference: copying it per frame stalled on store forwarding.
struct TailCache<'p> {
    key: Option<(u16, PathId, Family)>,
    tail: Result<Tail<'p>, DropReason>,
}

impl Default for TailCache<'_> {
    fn default() -> Self {
        TailCache {
            key: None,
            tail: Err(DropReason::NoRoute),
        }
    }
}

impl<'p> TailCache<'p> {
    #[inline(always)]
    fn get(
        &mut self,
        plan: &'p Plan,
        p: &'p L3Peering,
        key: (u16, PathId, Family),
        links: &LinkSnapshot<'_>,
    ) -> Result<&Tail<'p>, DropReason> {
        if self.key != Some(key) {
            self.key = Some(key);
            self.tail = tail_of(plan, p, key.1, key.2, links);
        }
        self.tail.as_ref().map_err(|r| *r)
    }
}

/// How packets of `fam` on `path` leave peering `p`, given the links up.
fn tail_of<'p>(
    plan: &'p Plan,
    p: &'p L3Peering,
    path: PathId,
    fam: Family,
    links: &LinkSnapshot<'_>,
) -> Result<Tail<'p>, DropReason> {
    let out = |side: Side| p.link(side).map(|a| Out::routed(a, fam));
    let pair = match path {
        PATH_ACCESS => out(Side::Access).map(|o| [o; 2]),
        PATH_PRIMARY => out(Side::Primary).map(|o| [o; 2]),
        PATH_SECONDARY => out(Side::Secondary).map(|o| [o; 2]),
        PATH_ECMP => match (out(Side::Primary), out(Side::Secondary)) {
            (Some(a), Some(b)) => Some([a, b]),
            (Some(a), None) => Some([a; 2]),
            (None, b) => b.map(|b| [b; 2]),
        },
        _ => None,
    };
    let Some(pair) = pair else {
        return Err(DropReason::NoRoute);
    };
    let side = if path == PATH_ACCESS {
        Side::Access
    } else {
        Side::Primary
    };
    let marker = plan.markers.get(p.marker_to(side) as usize);
    Tail::over(links, pair, p.mtu, p.pcp_from_dscp, marker).ok_or(if side == Side::Access {
        DropReason::PortDown
    } else {
        DropReason::NoLinkUp
    })
}

/// Whether a router on this link takes the frame: unicast to its own MAC,
/// or group-addressed and for the link itself (ARP; IPv6 to a link-local
/// scope multicast group, where neighbour discovery lives). Ports are
/// promiscuous, so without this every unicast frame on a shared segment
/// would be routed a second time; and an IP packet sent to a broadcast or
/// multicast MAC is not to be forwarded (RFC 1812 §5.3.4).
fn addressed_to_us(frame: &[u8], l3: usize, kind: L3, ours: &Mac) -> bool {
    let Some(dst_mac) = frame.first_chunk::<6>() else {
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
#[allow(clippy::too_many_arguments)]
fn route_frame<'p, const LABELS: bool>(
    plan: &'p Plan,
    p: &'p L3Peering,
    ingress: Ingress,
    buf: &mut PacketBuf,
    meta: &mut Meta,
    path: Option<Option<NextHop>>,
    tails: &mut TailCache<'p>,
    cx: &mut Context<'_, '_>,
) -> Verdict {
    let Some(inl) = p.link(ingress.side) else {
        return Verdict::Drop(DropReason::UnknownAttachment);
    };
    let l3 = meta.info.l3_offset as usize;
    if !addressed_to_us(buf.frame(), l3, meta.info.l3, &inl.mac) {
        return Verdict::Drop(DropReason::NotOurMac);
    }
    let fam = match meta.info.l3 {
        L3::Arp => {
            let v = local::arp(p, ingress.side, inl, buf, l3, cx);
            return punt(v, inl, ingress.pop, Punt::Arp, buf, cx);
        }
        L3::Other => return Verdict::Drop(DropReason::NotIp),
        L3::Ipv4 => {
            let header_ok = buf
                .frame()
                .get(l3..)
                .and_then(|b| Ipv4Packet::new_checked(b, l3).ok())
                .is_some_and(|ip| ip.verify_checksum());
            if !header_ok {
                return Verdict::Drop(DropReason::BadIpHeader);
            }
            Family::V4
        }
        L3::Ipv6 => Family::V6,
    };
    let path = match (path, fam) {
        (Some(x), _) => x,
        (None, Family::V4) => p.v4.lookup_u32(ipv4_dst(buf.frame(), l3)),
        (None, Family::V6) => p.v6.lookup(Ipv6Addr::from(ipv6_dst(buf.frame(), l3))),
    };
    meta.route = path.map_or(Meta::NO_ROUTE, |x| x as u8);
    let local = path == Some(LOCAL_PATH as NextHop);
    // A reply leaves by the link the frame came in on, behind its labels
    // when that is an L3VPN attachment.
    let labelled = LABELS && inl.push.mpls.is_some();
    let reply = |v: Verdict, buf: &mut PacketBuf| {
        if labelled {
            super::mpls::reply_over_labels(v, &Out::routed(inl, fam), buf)
        } else {
            v
        }
    };
    match fam {
        Family::V4 if local => {
            let v = local::echo_v4(inl, buf, meta, cx);
            return reply(punt(v, inl, ingress.pop, Punt::Ip, buf, cx), buf);
        }
        Family::V6 if local || ipv6_dst(buf.frame(), l3) >> 112 == 0xff02 => {
            let v = local::icmp_v6(p, ingress.side, inl, buf, meta, cx);
            let why = if meta.info.protocol == crate::wire::l4::protocol::ICMPV6 {
                Punt::Nd
            } else {
                Punt::Ip
            };
            return reply(punt(v, inl, ingress.pop, why, buf, cx), buf);
        }
        _ => {}
    }
    if meta.info.ttl <= 1 {
        let kind = match fam {
            Family::V4 => (v4_type::TIME_EXCEEDED, 0),
            Family::V6 => (v6_type::TIME_EXCEEDED, 0),
        };
        let v = local::icmp_error(inl, buf, meta, fam, kind, DropReason::TtlExpired, cx);
        return reply(v, buf);
    }
    let Some(path) = path else {
        // Network unreachable (RFC 792), no route to destination (RFC 4443).
        let kind = match fam {
            Family::V4 => (v4_type::DEST_UNREACHABLE, 0),
            Family::V6 => (v6_type::DEST_UNREACHABLE, 0),
        };
        let v = local::icmp_error(inl, buf, meta, fam, kind, DropReason::NoRoute, cx);
        return reply(v, buf);
    };
    let tail = match tails.get(plan, p, (ingress.peering, path as PathId, fam), cx.links) {
        Ok(t) => t,
        Err(reason) => return Verdict::Drop(reason),
    };
    // TTL first (the header is known good), then the shared tail.
    let ttl = meta.info.ttl - 1;
    if let Some(h) = buf.frame_mut().get_mut(l3..) {
        match fam {
            Family::V4 => Ipv4Packet::new_unchecked(h).set_ttl(ttl),
            Family::V6 => ipv6::Ipv6Packet::new_unchecked(h).set_hop_limit(ttl),
        }
    }
    meta.info.ttl = ttl;
    let next_hop = Routed {
        p,
        peering: ingress.peering,
        hold: cx.hold,
        now_ms: cx.now_ms,
    };
    let mut rewritten = 0;
    let step = if LABELS && tail.labelled {
        tail.run_labelled(ingress.pop, &mut rewritten, buf, meta, &next_hop)
    } else {
        tail.run(ingress.pop, &mut rewritten, buf, meta, &next_hop)
    };
    cx.counters.dscp_rewritten += rewritten;
    match step {
        Step::Done(v) => {
            if let Verdict::Forward(_) = v {
                cx.counters.l3.routed += 1;
            }
            v
        }
        Step::Unresolved(out) => {
            let held = cx.hold.hold(
                ingress.peering,
                out,
                ingress.pop,
                p.pcp_from_dscp,
                buf,
                &meta.info,
                cx.now_ms,
            );
            if held {
                Verdict::Held
            } else {
                resolve(p, ingress.pop, buf, fam, &out, cx)
            }
        }
    }
}

/// The next hop of a routed frame: the neighbour on the picked link, from
/// the peering's table at the batch's time — unless packets of this worker
/// already wait for that neighbour: then this one waits behind them.
struct Routed<'a> {
    p: &'a L3Peering,
    peering: u16,
    hold: &'a HoldQueue,
    now_ms: u64,
}

impl NextHopMac for Routed<'_> {
    #[inline(always)]
    fn mac(&self, out: &Out) -> Dest {
        match self.p.neighbors.lookup(out.slot as usize, self.now_ms) {
            Some(_) if self.hold.waiting(self.peering, out.slot) => Dest::Unresolved,
            Some(mac) => Dest::To(mac),
            None => Dest::Unresolved,
        }
    }
}

/// Why a frame went to a host interface (counted apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Punt {
    /// ARP (after the data plane learned from it).
    Arp,
    /// ICMPv6 (neighbour discovery after the data plane learned from it,
    /// anything else it did not answer).
    Nd,
    /// Any other packet for this forwarder's addresses (BGP, BFD, …).
    Ip,
}

/// A frame for this forwarder that the data plane consumed without an
/// answer (`Local`) goes to the link's host interface when it has one,
/// with the link's `pop` tags removed, within the worker's punt rate;
/// every other verdict stands.
#[inline]
fn punt(
    v: Verdict,
    inl: &Adjacency,
    pop: u8,
    why: Punt,
    buf: &mut PacketBuf,
    cx: &mut Context<'_, '_>,
) -> Verdict {
    let (Verdict::Local, Some(host)) = (v, inl.host) else {
        return v;
    };
    if !cx.punt.allow(cx.now_ms) {
        return Verdict::Drop(DropReason::PuntLimited);
    }
    if !buf.rewrite_tags(pop as usize, &[]) {
        return Verdict::Drop(DropReason::TagRewrite);
    }
    let l3 = &mut cx.counters.l3;
    match why {
        Punt::Arp => l3.punted_arp += 1,
        Punt::Nd => l3.punted_nd += 1,
        Punt::Ip => l3.punted_ip += 1,
    }
    Verdict::Forward(host)
}

/// The neighbour is unresolved and the packet could not be held: the frame
/// becomes an ARP request / NS for it (rate-limited per neighbour) and the
/// packet counts as unresolved.
fn resolve(
    p: &L3Peering,
    pop: u8,
    buf: &mut PacketBuf,
    fam: Family,
    out: &Out,
    cx: &mut Context<'_, '_>,
) -> Verdict {
    if !p.neighbors.claim_request(out.slot as usize, cx.now_ms) {
        return Verdict::Drop(DropReason::NeighborUnresolved);
    }
    // The slot is the link's side and the family (`neighbor_slot`).
    let Some(link) = p.links.get(out.slot as usize / 2).and_then(Option::as_ref) else {
        return Verdict::Drop(DropReason::NeighborUnresolved);
    };
    if !encap(out, pop, 0, buf) {
        return Verdict::Drop(DropReason::NeighborUnresolved);
    }
    let l3 = 14 + 4 * out.count as usize;
    buf.set_len(buf.capacity_from_head());
    let n = match fam {
        Family::V4 => match (link.own_v4, link.peer_v4) {
            (Some(own), Some(peer)) => {
                reply::arp_request(buf.frame_mut(), l3, &link.mac, own, peer)
            }
            _ => None,
        },
        Family::V6 => match (link.own_v6, link.peer_v6) {
            (Some(own), Some(peer)) => reply::nd_solicit(buf.frame_mut(), l3, &link.mac, own, peer),
            _ => None,
        },
    };
    match n {
        Some(n) => {
            buf.set_len(n.max(60));
            cx.counters.l3.nd_requests += 1;
            Verdict::Resolve(out.port)
        }
        None => Verdict::Drop(DropReason::NeighborUnresolved),
    }
}
