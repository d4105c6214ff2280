//! Netlink route messages (as zebra's `dplane_fpm_nl` sends them) →
//! [`RouteUpdate`]s, decoded with `netlink-packet-route`.
//!
//! Contract:
//! - `RTM_NEWROUTE` gives the complete set of next-hop addresses of a
//!   prefix (zebra always sends the whole set, with or without
//!   `NLM_F_REPLACE`, and on a change a `RTM_DELROUTE` before it in the
//!   same frame); `RTM_DELROUTE` withdraws the prefix. IPv4 and IPv6;
//!   next hops from `RTA_GATEWAY`, from `RTA_MULTIPATH` (ECMP) or, with
//!   next-hop groups, from `RTA_NH_ID` resolved through the
//!   `RTM_NEWNEXTHOP` / `RTM_DELNEXTHOP` objects seen before (the
//!   decoder keeps that id → gateways map, at most [`MAX_NEXTHOP_IDS`]
//!   entries).
//! - Routes this forwarder cannot forward are reported as
//!   [`Decoded::Skipped`] with the prefix (when known) and a
//!   [`SkipReason`]: blackhole/unreachable/prohibit and other non-unicast
//!   types, tables other than main (254), routes without a gateway
//!   (connected), source-specific routes, unknown next-hop ids. A delete
//!   is never skipped for its type or gateways (withdrawing what is not
//!   installed is harmless).
//! - A message the crate cannot decode is [`Decoded::Skipped`] with
//!   [`SkipReason::Undecodable`]; other message types are
//!   [`Decoded::Ignored`]. Nothing here panics on any input.

use ipnet::IpNet;
use netlink_packet_core::{NlasIterator, ParseableParametrized};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `RTM_NEWROUTE`.
pub const RTM_NEWROUTE: u16 = 24;
/// `RTM_DELROUTE`.
pub const RTM_DELROUTE: u16 = 25;
/// `RTM_NEWNEXTHOP`.
pub const RTM_NEWNEXTHOP: u16 = 104;
/// `RTM_DELNEXTHOP`.
pub const RTM_DELNEXTHOP: u16 = 105;
/// `NLM_F_REPLACE`.
pub const NLM_F_REPLACE: u16 = 0x100;
/// The main routing table.
pub const RT_TABLE_MAIN: u32 = 254;
/// Next-hop objects the decoder remembers at most.
pub const MAX_NEXTHOP_IDS: usize = 1 << 16;
/// Next hops of one route at most (more are a [`SkipReason::TooManyNextHops`]).
pub const MAX_ROUTE_NEXT_HOPS: usize = 64;

/// `NHA_ID`.
const NHA_ID: u16 = 1;
/// `NHA_GROUP`.
const NHA_GROUP: u16 = 2;
/// `NHA_BLACKHOLE`.
const NHA_BLACKHOLE: u16 = 4;
/// `NHA_GATEWAY`.
const NHA_GATEWAY: u16 = 6;
/// Bytes of `struct nhmsg`.
const NHMSG_LEN: usize = 8;
/// Bytes of `struct nexthop_grp`.
const NEXTHOP_GRP_LEN: usize = 8;

/// A change of one prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteUpdate {
    /// The destination.
    pub prefix: IpNet,
    /// The complete next-hop set (sorted, distinct); `None`: withdraw.
    pub next_hops: Option<Vec<IpAddr>>,
}

/// Why a route message was not turned into an update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// A route type other than unicast (blackhole, unreachable, …).
    Type(RouteType),
    /// A table other than the one decoded (main, unless
    /// [`RouteDecoder::for_table`]).
    Table(u32),
    /// No gateway: a connected (interface) route.
    Connected,
    /// A source-specific route (`from` prefix).
    SourceSpecific,
    /// An address family other than IPv4/IPv6.
    Family(u8),
    /// A next-hop id that no `RTM_NEWNEXTHOP` defined.
    UnknownNextHopId(u32),
    /// More next hops than [`MAX_ROUTE_NEXT_HOPS`], or a full id map.
    TooManyNextHops,
    /// A next hop of the other address family (e.g. IPv4 via IPv6).
    GatewayFamily,
    /// The destination attribute does not fit the prefix length.
    BadPrefix,
    /// The crate could not decode the message.
    Undecodable(String),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Type(t) => write!(f, "route type {t:?} is not forwarded"),
            SkipReason::Table(t) => write!(f, "table {t} is not the table followed"),
            SkipReason::Connected => write!(f, "no gateway (a connected route)"),
            SkipReason::SourceSpecific => write!(f, "source-specific route"),
            SkipReason::Family(a) => write!(f, "address family {a}"),
            SkipReason::UnknownNextHopId(id) => write!(f, "unknown next-hop id {id}"),
            SkipReason::TooManyNextHops => write!(f, "too many next hops"),
            SkipReason::GatewayFamily => write!(f, "next hop of the other address family"),
            SkipReason::BadPrefix => write!(f, "destination does not match its length"),
            SkipReason::Undecodable(e) => write!(f, "undecodable: {e}"),
        }
    }
}

/// What one netlink message meant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A route to apply.
    Route(RouteUpdate),
    /// A next-hop object was defined or removed (kept in the decoder).
    NextHop(u32),
    /// A route (or next-hop object) that is not applied, and why.
    Skipped(Option<IpNet>, SkipReason),
    /// A message type this decoder does not handle.
    Ignored(u16),
}

/// Route updates in flat storage: what [`RouteDecoder::decode_into`]
/// fills and `RouteSync::apply_batch` writes, without an allocation per
/// route once its vectors have grown.
#[derive(Clone, Debug, Default)]
pub struct UpdateBatch {
    routes: Vec<BatchRoute>,
    hops: Vec<IpAddr>,
}

/// One update of a batch: its next hops are `hops[start..start + len]`.
#[derive(Clone, Copy, Debug)]
struct BatchRoute {
    prefix: IpNet,
    start: u32,
    len: u32,
    withdraw: bool,
}

impl UpdateBatch {
    /// An empty batch.
    pub fn new() -> UpdateBatch {
        UpdateBatch::default()
    }

    /// Updates held.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// No update held?
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Forget every update (keeping the storage).
    pub fn clear(&mut self) {
        self.routes.clear();
        self.hops.clear();
    }

    /// Keep the first `len` updates only.
    pub fn truncate(&mut self, len: usize) {
        if len < self.routes.len() {
            let hops = self.routes[len].start as usize;
            self.routes.truncate(len);
            self.hops.truncate(hops);
        }
    }

    /// Append an update: `prefix` set to `next_hops`, or withdrawn (`None`).
    pub fn push(&mut self, prefix: IpNet, next_hops: Option<&[IpAddr]>) {
        let start = self.hops.len();
        self.hops.extend_from_slice(next_hops.unwrap_or(&[]));
        self.routes.push(BatchRoute {
            prefix,
            start: start as u32,
            len: (self.hops.len() - start) as u32,
            withdraw: next_hops.is_none(),
        });
    }

    /// Update `i`: the prefix and its complete next-hop set (`None`:
    /// withdraw).
    pub fn get(&self, i: usize) -> Option<(IpNet, Option<&[IpAddr]>)> {
        let r = self.routes.get(i)?;
        let hops = if r.withdraw {
            None
        } else {
            let s = r.start as usize;
            Some(self.hops.get(s..s + r.len as usize).unwrap_or(&[]))
        };
        Some((r.prefix, hops))
    }

    /// The updates in order.
    pub fn iter(&self) -> impl Iterator<Item = (IpNet, Option<&[IpAddr]>)> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

/// A next-hop object: one gateway (or none), or a group of other ids.
#[derive(Clone, Debug, PartialEq, Eq)]
enum NextHopObject {
    Single(Option<IpAddr>),
    Group(Vec<u32>),
}

/// The decoder of one FPM connection: the next-hop objects it was sent.
#[derive(Clone, Debug, Default)]
pub struct RouteDecoder {
    nexthops: HashMap<u32, NextHopObject>,
    /// The routing table whose routes are decoded; `None`: main (zebra's
    /// FPM stream of one instance).
    table: Option<u32>,
}

impl RouteDecoder {
    /// A decoder that knows no next-hop object.
    pub fn new() -> RouteDecoder {
        RouteDecoder::default()
    }

    /// A decoder of routes of routing table `table` only (a followed
    /// kernel table); routes of other tables are [`SkipReason::Table`].
    pub fn for_table(table: u32) -> RouteDecoder {
        RouteDecoder {
            table: Some(table),
            ..RouteDecoder::default()
        }
    }

    /// Are routes of routing table `table` decoded (the followed one, or
    /// main for FPM, where zebra may leave the id unset)?
    fn wants(&self, table: u32) -> bool {
        match self.table {
            None => table == RT_TABLE_MAIN || table == RouteHeader::RT_TABLE_UNSPEC as u32,
            Some(t) => table == t,
        }
    }

    /// Next-hop objects known.
    pub fn next_hop_objects(&self) -> usize {
        self.nexthops.len()
    }

    /// Decode one netlink message (type, flags, payload after the netlink
    /// header).
    pub fn decode(&mut self, message_type: u16, payload: &[u8]) -> Decoded {
        if message_type == RTM_NEWROUTE || message_type == RTM_DELROUTE {
            let mut hops = Vec::new();
            if let Some(prefix) = self.fast_route(message_type == RTM_NEWROUTE, payload, &mut hops)
            {
                return Decoded::Route(RouteUpdate {
                    prefix,
                    next_hops: (message_type == RTM_NEWROUTE).then_some(hops),
                });
            }
        }
        self.decode_reference(message_type, payload)
    }

    /// [`RouteDecoder::decode`] without allocation for the common route
    /// message: a route update is appended to `out` (and `None`
    /// returned); anything else (a skip, a next-hop object, another
    /// message type) is returned as [`RouteDecoder::decode`] returns it.
    /// The same outcome as [`RouteDecoder::decode`] for every input.
    pub fn decode_into(
        &mut self,
        message_type: u16,
        payload: &[u8],
        out: &mut UpdateBatch,
    ) -> Option<Decoded> {
        if message_type == RTM_NEWROUTE || message_type == RTM_DELROUTE {
            let new = message_type == RTM_NEWROUTE;
            let start = out.hops.len();
            if let Some(prefix) = self.fast_route(new, payload, &mut out.hops) {
                out.routes.push(BatchRoute {
                    prefix,
                    start: start as u32,
                    len: (out.hops.len() - start) as u32,
                    withdraw: !new,
                });
                return None;
            }
        }
        match self.decode_reference(message_type, payload) {
            Decoded::Route(u) => {
                out.push(u.prefix, u.next_hops.as_deref());
                None
            }
            other => Some(other),
        }
    }

    /// The decoding of [`RouteDecoder::decode`] through
    /// `netlink-packet-route` alone, without the hand-written fast path
    /// for the common route message shape: the reference the fast path is
    /// tested against (property tests, the `fpm_decode` fuzz target).
    pub fn decode_reference(&mut self, message_type: u16, payload: &[u8]) -> Decoded {
        match message_type {
            RTM_NEWROUTE | RTM_DELROUTE => self.route(message_type == RTM_NEWROUTE, payload),
            RTM_NEWNEXTHOP | RTM_DELNEXTHOP => {
                self.nexthop(message_type == RTM_NEWNEXTHOP, payload)
            }
            t => Decoded::Ignored(t),
        }
    }

    /// The fast path: the route messages zebra sends for forwarded routes
    /// (unicast, main table, no source prefix, destination, gateways from
    /// `RTA_GATEWAY`, `RTA_MULTIPATH` or `RTA_NH_ID`, plus `RTA_OIF`,
    /// `RTA_PRIORITY`, `RTA_PREFSRC`, `RTA_TABLE`), walked in place.
    /// Returns the prefix with its sorted, distinct next hops appended to
    /// `hops` (nothing for a delete), or `None` — with `hops` as it was —
    /// for anything else, which the crate path then decodes (skips,
    /// unusual attributes, anything malformed). Bounded by the payload;
    /// no panic, no allocation beyond `hops`.
    fn fast_route(&self, new: bool, payload: &[u8], hops: &mut Vec<IpAddr>) -> Option<IpNet> {
        let start = hops.len();
        let r = self.fast_route_walk(new, payload, hops);
        match r {
            Some(_) if new => {
                let added = &mut hops[start..];
                added.sort_unstable();
                let mut n = 0;
                for i in 0..added.len() {
                    if i == 0 || added[i] != added[n - 1] {
                        added[n] = added[i];
                        n += 1;
                    }
                }
                hops.truncate(start + n);
            }
            Some(_) => hops.truncate(start),
            None => hops.truncate(start),
        }
        r
    }

    fn fast_route_walk(&self, new: bool, payload: &[u8], hops: &mut Vec<IpAddr>) -> Option<IpNet> {
        let start = hops.len();
        let h = payload.get(..RTMSG_LEN)?;
        let (family, dst_len, src_len, table8, kind) = (h[0], h[1], h[2], h[4], h[7]);
        let alen = match family {
            AF_INET => 4,
            AF_INET6 => 16,
            _ => return None,
        };
        if src_len != 0 || kind != RTN_UNICAST {
            return None;
        }
        let mut table = u32::from(table8);
        let mut dst: Option<&[u8]> = None;
        let mut nh_id = None;
        // The crate path keeps the last RTA_GATEWAY and RTA_MULTIPATH of
        // a message: repeated ones are left to it.
        let (mut gateway, mut paths) = (false, false);
        let mut rest = &payload[RTMSG_LEN..];
        while !rest.is_empty() {
            let (kind, value, next) = nla(rest)?;
            match kind {
                RTA_DST if value.len() == alen => dst = Some(value),
                RTA_GATEWAY if !gateway => {
                    gateway = true;
                    hops.push(addr_of(value, alen)?);
                }
                RTA_PREFSRC if value.len() == alen => {}
                RTA_OIF | RTA_PRIORITY if value.len() == 4 => {}
                RTA_TABLE => table = u32_of(value)?,
                RTA_NH_ID => nh_id = Some(u32_of(value)?),
                RTA_MULTIPATH if !paths => {
                    paths = true;
                    multipath(value, alen, start, hops)?;
                }
                _ => return None,
            }
            rest = next;
        }
        let addr = match dst {
            None if alen == 4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            None => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            Some(d) => addr_of(d, alen)?,
        };
        let prefix = match IpNet::new(addr, dst_len) {
            Ok(p) if p.trunc() == p => p,
            _ => return None,
        };
        if !self.wants(table) {
            return None;
        }
        if !new {
            return Some(prefix);
        }
        if let Some(id) = nh_id {
            self.resolve(id, hops, 0).ok()?;
        }
        let n = hops.len() - start;
        if n == 0 || n > MAX_ROUTE_NEXT_HOPS {
            return None;
        }
        // Next-hop objects may hold a gateway of the other family.
        if hops[start..].iter().any(|g| g.is_ipv4() != (alen == 4)) {
            return None;
        }
        Some(prefix)
    }

    fn route(&self, new: bool, payload: &[u8]) -> Decoded {
        let kind = if new { RTM_NEWROUTE } else { RTM_DELROUTE };
        let msg = match RouteNetlinkMessage::parse_with_param(payload, kind) {
            Ok(RouteNetlinkMessage::NewRoute(m) | RouteNetlinkMessage::DelRoute(m)) => m,
            Ok(_) => return Decoded::Ignored(kind),
            Err(e) => return Decoded::Skipped(None, SkipReason::Undecodable(e.to_string())),
        };
        let h = &msg.header;
        let v4 = match h.address_family {
            AddressFamily::Inet => true,
            AddressFamily::Inet6 => false,
            other => return Decoded::Skipped(None, SkipReason::Family(u8::from(other))),
        };
        let mut table = h.table as u32;
        let mut dst = None;
        let mut gateway = None;
        let mut multipath = None;
        let mut nh_id = None;
        for a in &msg.attributes {
            match a {
                RouteAttribute::Destination(d) => dst = Some(d),
                RouteAttribute::Gateway(g) => gateway = Some(g),
                RouteAttribute::MultiPath(m) => multipath = Some(m),
                RouteAttribute::NhId(id) => nh_id = Some(*id),
                RouteAttribute::Table(t) => table = *t,
                _ => {}
            }
        }
        let addr = match dst {
            None if v4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            None => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            Some(d) => match ip_of(d) {
                Some(a) if a.is_ipv4() == v4 => a,
                _ => return Decoded::Skipped(None, SkipReason::BadPrefix),
            },
        };
        let prefix = match IpNet::new(addr, h.destination_prefix_length) {
            Ok(p) if p.trunc() == p => p,
            _ => return Decoded::Skipped(None, SkipReason::BadPrefix),
        };
        let skip = |r| Decoded::Skipped(Some(prefix), r);
        if !self.wants(table) {
            return skip(SkipReason::Table(table));
        }
        if h.source_prefix_length != 0 {
            return skip(SkipReason::SourceSpecific);
        }
        if !new {
            return Decoded::Route(RouteUpdate {
                prefix,
                next_hops: None,
            });
        }
        if h.kind != RouteType::Unicast {
            return skip(SkipReason::Type(h.kind));
        }
        let mut hops = Vec::new();
        if let Some(g) = gateway {
            hops.extend(ip_of(g));
        }
        if let Some(m) = multipath {
            for nh in m {
                for a in &nh.attributes {
                    if let RouteAttribute::Gateway(g) = a {
                        hops.extend(ip_of(g));
                    }
                }
            }
        }
        if let Some(id) = nh_id {
            match self.resolve(id, &mut hops, 0) {
                Ok(()) => {}
                Err(r) => return skip(r),
            }
        }
        if hops.len() > MAX_ROUTE_NEXT_HOPS {
            return skip(SkipReason::TooManyNextHops);
        }
        if hops.iter().any(|g| g.is_ipv4() != v4) {
            return skip(SkipReason::GatewayFamily);
        }
        hops.sort_unstable();
        hops.dedup();
        if hops.is_empty() {
            return skip(SkipReason::Connected);
        }
        Decoded::Route(RouteUpdate {
            prefix,
            next_hops: Some(hops),
        })
    }

    /// The gateways of next-hop object `id` (groups one level deep, as
    /// the kernel allows).
    fn resolve(&self, id: u32, out: &mut Vec<IpAddr>, depth: u8) -> Result<(), SkipReason> {
        match self.nexthops.get(&id) {
            None => Err(SkipReason::UnknownNextHopId(id)),
            Some(NextHopObject::Single(g)) => {
                out.extend(*g);
                Ok(())
            }
            Some(NextHopObject::Group(ids)) if depth == 0 => {
                for m in ids {
                    self.resolve(*m, out, 1)?;
                    if out.len() > MAX_ROUTE_NEXT_HOPS {
                        return Err(SkipReason::TooManyNextHops);
                    }
                }
                Ok(())
            }
            Some(NextHopObject::Group(_)) => Err(SkipReason::UnknownNextHopId(id)),
        }
    }

    /// `RTM_NEWNEXTHOP` / `RTM_DELNEXTHOP`: `struct nhmsg` then attributes,
    /// walked with the crate's NLA iterator (the route crate has no
    /// next-hop message type).
    fn nexthop(&mut self, new: bool, payload: &[u8]) -> Decoded {
        let undecodable = |e: &str| Decoded::Skipped(None, SkipReason::Undecodable(e.into()));
        let Some(attrs) = payload.get(NHMSG_LEN..) else {
            return undecodable("next-hop message shorter than struct nhmsg");
        };
        let (mut id, mut gateway, mut group, mut blackhole) = (None, None, None, false);
        for nla in NlasIterator::new(attrs) {
            let Ok(nla) = nla else {
                return undecodable("bad next-hop attribute");
            };
            let v = nla.value();
            match nla.kind() {
                NHA_ID => {
                    id = v
                        .get(..4)
                        .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                }
                NHA_GATEWAY => {
                    gateway = match v.len() {
                        4 => Some(IpAddr::from([v[0], v[1], v[2], v[3]])),
                        16 => {
                            let mut a = [0u8; 16];
                            a.copy_from_slice(v);
                            Some(IpAddr::from(a))
                        }
                        _ => return undecodable("next-hop gateway of a bad length"),
                    }
                }
                NHA_GROUP => {
                    group = Some(
                        v.chunks_exact(NEXTHOP_GRP_LEN)
                            .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
                            .collect::<Vec<u32>>(),
                    )
                }
                NHA_BLACKHOLE => blackhole = true,
                _ => {}
            }
        }
        let Some(id) = id else {
            return undecodable("next-hop message without NHA_ID");
        };
        if !new {
            self.nexthops.remove(&id);
            return Decoded::NextHop(id);
        }
        if !self.nexthops.contains_key(&id) && self.nexthops.len() >= MAX_NEXTHOP_IDS {
            return Decoded::Skipped(None, SkipReason::TooManyNextHops);
        }
        let obj = match group {
            Some(g) if g.len() > MAX_ROUTE_NEXT_HOPS => {
                return Decoded::Skipped(None, SkipReason::TooManyNextHops)
            }
            Some(g) => NextHopObject::Group(g),
            // A blackhole next hop has no gateway: routes over it are skipped.
            None => NextHopObject::Single(if blackhole { None } else { gateway }),
        };
        self.nexthops.insert(id, obj);
        Decoded::NextHop(id)
    }
}

/// `AF_INET`.
const AF_INET: u8 = 2;
/// `AF_INET6`.
const AF_INET6: u8 = 10;
/// Bytes of `struct rtmsg`.
const RTMSG_LEN: usize = 12;
/// `RTN_UNICAST`.
const RTN_UNICAST: u8 = 1;
/// `RTA_DST`.
const RTA_DST: u16 = 1;
/// `RTA_OIF`.
const RTA_OIF: u16 = 4;
/// `RTA_GATEWAY`.
const RTA_GATEWAY: u16 = 5;
/// `RTA_PRIORITY`.
const RTA_PRIORITY: u16 = 6;
/// `RTA_PREFSRC`.
const RTA_PREFSRC: u16 = 7;
/// `RTA_MULTIPATH`.
const RTA_MULTIPATH: u16 = 9;
/// `RTA_TABLE`.
const RTA_TABLE: u16 = 15;
/// `RTA_NH_ID`.
const RTA_NH_ID: u16 = 30;
/// Bytes of `struct rtnexthop`.
const RTNH_LEN: usize = 8;
/// The type bits of an attribute's type (without `NLA_F_NESTED` and
/// `NLA_F_NET_BYTEORDER`), as the crate masks them.
const NLA_TYPE_MASK: u16 = 0x3fff;

/// The first attribute of `rest`: (type, value, what follows), stepping
/// as the crate's `NlasIterator` does (aligned length, or to the end).
/// `None` where the crate would fail.
fn nla(rest: &[u8]) -> Option<(u16, &[u8], &[u8])> {
    let len = usize::from(u16::from_ne_bytes([*rest.first()?, *rest.get(1)?]));
    let kind = u16::from_ne_bytes([*rest.get(2)?, *rest.get(3)?]) & NLA_TYPE_MASK;
    if len < 4 || len > rest.len() {
        return None;
    }
    let step = (len + 3) & !3;
    Some((kind, &rest[4..len], rest.get(step..).unwrap_or(&[])))
}

/// An address attribute of exactly the family's length.
fn addr_of(v: &[u8], alen: usize) -> Option<IpAddr> {
    if v.len() != alen {
        return None;
    }
    Some(match *v {
        [a, b, c, d] => IpAddr::from([a, b, c, d]),
        _ => {
            let mut a = [0u8; 16];
            a.copy_from_slice(v);
            IpAddr::from(a)
        }
    })
}

/// A 4-byte host-order attribute.
fn u32_of(v: &[u8]) -> Option<u32> {
    match *v {
        [a, b, c, d] => Some(u32::from_ne_bytes([a, b, c, d])),
        _ => None,
    }
}

/// The gateways of `RTA_MULTIPATH` appended to `hops` (this route's from
/// `start`): `rtnexthop`s stepped by their length (unaligned, as the crate
/// steps), each with only `RTA_GATEWAY` attributes; `None` for anything
/// else.
fn multipath(mut v: &[u8], alen: usize, start: usize, hops: &mut Vec<IpAddr>) -> Option<()> {
    while !v.is_empty() {
        if v.len() < RTNH_LEN {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([v[0], v[1]]));
        if len < RTNH_LEN || len > v.len() {
            return None;
        }
        let mut attrs = &v[RTNH_LEN..len];
        while !attrs.is_empty() {
            let (kind, value, next) = nla(attrs)?;
            if kind != RTA_GATEWAY {
                return None;
            }
            hops.push(addr_of(value, alen)?);
            if hops.len() - start > 2 * MAX_ROUTE_NEXT_HOPS {
                return None;
            }
            attrs = next;
        }
        v = &v[len..];
    }
    Some(())
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// Encoding route and next-hop messages as zebra does: for tests, the
/// `fpm-ingest` benchmark and the fuzz seeds. Routes are emitted with
/// `netlink-packet-route` itself.
pub mod encode {
    use super::*;
    use netlink_packet_core::{
        DefaultNla, Emitable, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_REQUEST,
    };
    use netlink_packet_route::route::{RouteNextHop, RouteProtocol, RouteScope};

    /// A route message as zebra builds it: protocol, table main, scope
    /// universe; one next hop as `RTA_GATEWAY`, several as
    /// `RTA_MULTIPATH`, or `RTA_NH_ID` when `nh_id` is given.
    pub fn route_message(
        prefix: IpNet,
        kind: RouteType,
        next_hops: &[IpAddr],
        nh_id: Option<u32>,
    ) -> RouteMessage {
        let mut m = RouteMessage::default();
        m.header.address_family = if prefix.addr().is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        m.header.destination_prefix_length = prefix.prefix_len();
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::Static;
        m.header.scope = RouteScope::Universe;
        m.header.kind = kind;
        m.attributes
            .push(RouteAttribute::Destination(prefix.addr().into()));
        m.attributes.push(RouteAttribute::Priority(20));
        if let Some(id) = nh_id {
            m.attributes.push(RouteAttribute::NhId(id));
        } else if next_hops.len() == 1 {
            m.attributes
                .push(RouteAttribute::Gateway(next_hops[0].into()));
        } else if next_hops.len() > 1 {
            let hops = next_hops
                .iter()
                .map(|g| {
                    let mut nh = RouteNextHop::default();
                    nh.attributes.push(RouteAttribute::Gateway((*g).into()));
                    nh.interface_index = 2;
                    nh
                })
                .collect();
            m.attributes.push(RouteAttribute::MultiPath(hops));
        }
        m
    }

    /// One netlink message (`RTM_NEWROUTE` when `new`, else
    /// `RTM_DELROUTE`) appended to `out`, `NLMSG_ALIGN`ed.
    pub fn push_route(out: &mut Vec<u8>, new: bool, flags: u16, msg: RouteMessage) {
        let payload = if new {
            RouteNetlinkMessage::NewRoute(msg)
        } else {
            RouteNetlinkMessage::DelRoute(msg)
        };
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(payload));
        nl.finalize();
        push_emitted(out, nl.buffer_len(), |b| nl.serialize(b));
    }

    /// A `RTM_NEWNEXTHOP` (or `RTM_DELNEXTHOP` when not `new`) with a
    /// gateway or a group, appended to `out`.
    pub fn push_nexthop(
        out: &mut Vec<u8>,
        new: bool,
        id: u32,
        gateway: Option<IpAddr>,
        group: &[u32],
    ) {
        let family = match gateway {
            Some(IpAddr::V6(_)) => libc::AF_INET6 as u8,
            _ => libc::AF_INET as u8,
        };
        let mut nlas = vec![DefaultNla::new(NHA_ID, id.to_ne_bytes().to_vec())];
        if let Some(g) = gateway {
            let v = match g {
                IpAddr::V4(a) => a.octets().to_vec(),
                IpAddr::V6(a) => a.octets().to_vec(),
            };
            nlas.push(DefaultNla::new(NHA_GATEWAY, v));
        }
        if !group.is_empty() {
            let mut v = Vec::new();
            for g in group {
                v.extend_from_slice(&g.to_ne_bytes());
                v.extend_from_slice(&[1, 0, 0, 0]);
            }
            nlas.push(DefaultNla::new(NHA_GROUP, v));
        }
        let body_len = NHMSG_LEN + nlas.as_slice().buffer_len();
        let total = super::super::fpm::NLMSG_HDRLEN + body_len;
        let kind = if new { RTM_NEWNEXTHOP } else { RTM_DELNEXTHOP };
        push_emitted(out, total, |b| {
            b[0..4].copy_from_slice(&(total as u32).to_ne_bytes());
            b[4..6].copy_from_slice(&kind.to_ne_bytes());
            b[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
            b[16] = family;
            nlas.as_slice().emit(&mut b[16 + NHMSG_LEN..]);
        });
    }

    fn push_emitted(out: &mut Vec<u8>, len: usize, emit: impl FnOnce(&mut [u8])) {
        let start = out.len();
        out.resize(start + ((len + 3) & !3), 0);
        emit(&mut out[start..start + len]);
    }
}

#[cfg(test)]
mod tests {
    use super::encode::*;
    use super::*;
    use crate::control::fpm::{frame, FrameDecoder};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    /// Decode every message of `bytes` (netlink messages) through the
    /// framing layer.
    fn decode_all(d: &mut RouteDecoder, msgs: &[u8]) -> Vec<Decoded> {
        let mut f = FrameDecoder::new();
        f.feed(&frame(msgs).unwrap()).unwrap();
        let fr = f.next_frame().unwrap().unwrap();
        fr.messages()
            .map(|m| {
                let m = m.unwrap();
                d.decode(m.message_type, m.payload)
            })
            .collect()
    }

    #[test]
    fn gateway_multipath_delete_v4_and_v6() {
        let mut out = Vec::new();
        let p4 = net("198.51.100.0/24");
        let p6 = net("2001:db8:100::/48");
        push_route(
            &mut out,
            true,
            NLM_F_REPLACE,
            route_message(p4, RouteType::Unicast, &[ip("192.0.2.2")], None),
        );
        push_route(
            &mut out,
            true,
            0,
            route_message(
                p6,
                RouteType::Unicast,
                &[ip("2001:db8::6"), ip("2001:db8::2")],
                None,
            ),
        );
        push_route(
            &mut out,
            false,
            0,
            route_message(p4, RouteType::Unicast, &[ip("192.0.2.2")], None),
        );
        let mut d = RouteDecoder::new();
        assert_eq!(
            decode_all(&mut d, &out),
            vec![
                Decoded::Route(RouteUpdate {
                    prefix: p4,
                    next_hops: Some(vec![ip("192.0.2.2")])
                }),
                Decoded::Route(RouteUpdate {
                    prefix: p6,
                    next_hops: Some(vec![ip("2001:db8::2"), ip("2001:db8::6")])
                }),
                Decoded::Route(RouteUpdate {
                    prefix: p4,
                    next_hops: None
                }),
            ]
        );
    }

    #[test]
    fn skipped_routes_say_why() {
        let p = net("203.0.113.0/24");
        let mut out = Vec::new();
        push_route(
            &mut out,
            true,
            0,
            route_message(p, RouteType::BlackHole, &[], None),
        );
        let mut other = route_message(p, RouteType::Unicast, &[ip("192.0.2.2")], None);
        other.header.table = 10;
        push_route(&mut out, true, 0, other);
        let mut big = route_message(p, RouteType::Unicast, &[ip("192.0.2.2")], None);
        big.header.table = 252;
        big.attributes.push(RouteAttribute::Table(1000));
        push_route(&mut out, true, 0, big);
        push_route(
            &mut out,
            true,
            0,
            route_message(p, RouteType::Unicast, &[], None),
        );
        push_route(
            &mut out,
            true,
            0,
            route_message(p, RouteType::Unreachable, &[], None),
        );
        push_route(
            &mut out,
            true,
            0,
            route_message(p, RouteType::Unicast, &[], Some(77)),
        );
        let mut d = RouteDecoder::new();
        let got = decode_all(&mut d, &out);
        let reasons: Vec<SkipReason> = got
            .into_iter()
            .map(|x| match x {
                Decoded::Skipped(Some(q), r) if q == p => r,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            reasons,
            vec![
                SkipReason::Type(RouteType::BlackHole),
                SkipReason::Table(10),
                SkipReason::Table(1000),
                SkipReason::Connected,
                SkipReason::Type(RouteType::Unreachable),
                SkipReason::UnknownNextHopId(77),
            ]
        );
        // An IPv4 route via an IPv6 gateway (without RTA_VIA) is refused
        // by the crate, as by the kernel.
        let mut out = Vec::new();
        push_route(
            &mut out,
            true,
            0,
            route_message(p, RouteType::Unicast, &[ip("2001:db8::2")], None),
        );
        assert!(matches!(
            decode_all(&mut d, &out)[..],
            [Decoded::Skipped(None, SkipReason::Undecodable(_))]
        ));
        assert_eq!(d.decode(200, &[]), Decoded::Ignored(200));
        assert!(matches!(
            d.decode(RTM_NEWROUTE, &[1, 2, 3]),
            Decoded::Skipped(None, SkipReason::Undecodable(_))
        ));
    }

    #[test]
    fn next_hop_groups_resolve_by_id() {
        let mut out = Vec::new();
        push_nexthop(&mut out, true, 1, Some(ip("192.0.2.2")), &[]);
        push_nexthop(&mut out, true, 2, Some(ip("192.0.2.6")), &[]);
        push_nexthop(&mut out, true, 3, None, &[1, 2]);
        let p = net("198.51.100.0/25");
        push_route(
            &mut out,
            true,
            0,
            route_message(p, RouteType::Unicast, &[], Some(3)),
        );
        push_route(
            &mut out,
            true,
            0,
            route_message(p, RouteType::Unicast, &[], Some(2)),
        );
        push_nexthop(&mut out, false, 2, None, &[]);
        push_route(
            &mut out,
            true,
            0,
            route_message(p, RouteType::Unicast, &[], Some(3)),
        );
        let mut d = RouteDecoder::new();
        let got = decode_all(&mut d, &out);
        assert_eq!(got[..3], [1, 2, 3].map(Decoded::NextHop));
        assert_eq!(
            got[3],
            Decoded::Route(RouteUpdate {
                prefix: p,
                next_hops: Some(vec![ip("192.0.2.2"), ip("192.0.2.6")])
            })
        );
        assert_eq!(
            got[4],
            Decoded::Route(RouteUpdate {
                prefix: p,
                next_hops: Some(vec![ip("192.0.2.6")])
            })
        );
        assert_eq!(got[5], Decoded::NextHop(2));
        assert_eq!(
            got[6],
            Decoded::Skipped(Some(p), SkipReason::UnknownNextHopId(2))
        );
        assert_eq!(d.next_hop_objects(), 2);
    }

    /// A decoder that knows next-hop objects 1 (IPv4), 2 (IPv6), 3 (a
    /// group of both) and 4 (a blackhole).
    fn with_objects() -> RouteDecoder {
        let mut out = Vec::new();
        push_nexthop(&mut out, true, 1, Some(ip("192.0.2.2")), &[]);
        push_nexthop(&mut out, true, 2, Some(ip("2001:db8::2")), &[]);
        push_nexthop(&mut out, true, 3, None, &[1, 2]);
        push_nexthop(&mut out, true, 4, None, &[]);
        let mut d = RouteDecoder::new();
        decode_all(&mut d, &out);
        d
    }

    /// One attribute: type, value, padded.
    fn attr(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
        out.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(value);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    }

    /// A route message payload (rtmsg and attributes) from a recipe:
    /// mostly the shapes zebra sends, with odd values and lengths mixed in.
    fn payload_of(r: &[u8]) -> Vec<u8> {
        let b = |i: usize| r.get(i).copied().unwrap_or(0);
        let v6 = b(0) & 1 == 1;
        // Mostly well-formed attributes (the fast path's shapes).
        let clean = b(0) & 6 != 0;
        let alen = if v6 { 16 } else { 4 };
        let family = match b(1) % 16 {
            0 => b(2),
            _ if v6 => 10,
            _ => 2,
        };
        let dst_len = match b(3) % 8 {
            0 => b(4),
            _ => b(4) % (8 * alen as u8 + 1),
        };
        let mut out = vec![
            family,
            dst_len,
            if b(5) % 16 == 0 { b(6) } else { 0 },
            0,
            match b(7) % 8 {
                0 => b(8),
                1 => 0,
                _ => 254,
            },
            b(9),
            0,
            if b(10) % 8 == 0 { b(11) % 12 } else { 1 },
            0,
            0,
            0,
            0,
        ];
        let addr = |seed: u8, len: usize| -> Vec<u8> {
            let mut a = vec![0u8; len];
            if let Some(x) = a.first_mut() {
                *x = if len == 16 { 0x20 } else { 192 };
            }
            for (i, x) in a.iter_mut().enumerate().skip(1) {
                *x = seed.wrapping_mul(i as u8 + 7) & if i + 1 == len { 0x7 } else { 0xff };
            }
            a
        };
        // Attributes from the rest of the recipe, two bytes each.
        let (mut gateway, mut paths) = (false, false);
        for c in r.get(12..).unwrap_or(&[]).chunks(2) {
            let (mut k, x) = (c[0], c.get(1).copied().unwrap_or(0));
            if clean {
                // One RTA_GATEWAY, one RTA_MULTIPATH, host bits clear.
                let g = matches!(k % 16, 1 | 2 | 13..=15);
                let m = matches!(k % 16, 8..=10);
                if (g && gateway) || (m && paths) || k % 16 == 0 {
                    k = 3;
                }
                gateway |= g;
                paths |= m;
                if k % 16 == 12 {
                    let a = addr(x, alen);
                    let n = match alen {
                        4 => IpNet::new(IpAddr::from([a[0], a[1], a[2], a[3]]), dst_len),
                        _ => {
                            let mut o = [0u8; 16];
                            o.copy_from_slice(&a);
                            IpNet::new(IpAddr::from(o), dst_len)
                        }
                    };
                    if let Ok(n) = n {
                        match n.trunc().addr() {
                            IpAddr::V4(v) => attr(&mut out, RTA_DST, &v.octets()),
                            IpAddr::V6(v) => attr(&mut out, RTA_DST, &v.octets()),
                        }
                        continue;
                    }
                }
            }
            let odd_len = if x % 13 == 0 && !clean {
                alen + 1
            } else {
                alen
            };
            match k % 16 {
                0 => attr(&mut out, RTA_DST, &addr(x, odd_len)),
                1 | 2 => attr(&mut out, RTA_GATEWAY, &addr(x % 4, odd_len)),
                3 => attr(&mut out, RTA_OIF, &u32::from(x).to_ne_bytes()),
                4 if clean => attr(&mut out, RTA_PRIORITY, &[x; 4]),
                4 => attr(&mut out, RTA_PRIORITY, &[x; 5][..(x % 5) as usize]),
                5 if clean => attr(&mut out, RTA_TABLE, &(254 * u32::from(x % 2)).to_ne_bytes()),
                5 => attr(&mut out, RTA_TABLE, &(u32::from(x) * 32).to_ne_bytes()),
                6 if clean => attr(&mut out, RTA_NH_ID, &u32::from(1 + x % 3).to_ne_bytes()),
                6 => attr(&mut out, RTA_NH_ID, &u32::from(x % 6).to_ne_bytes()),
                7 if clean => attr(&mut out, RTA_PREFSRC, &addr(x, alen)),
                7 => attr(
                    &mut out,
                    RTA_PREFSRC,
                    &addr(x, alen + (x % 2) as usize * 12),
                ),
                8..=10 => {
                    let mut mp = Vec::new();
                    for i in 0..(x % 5) {
                        let mut nh = vec![0u8; RTNH_LEN];
                        if x % 11 != 3 || clean {
                            attr(&mut nh, RTA_GATEWAY, &addr(x.wrapping_add(i) % 5, odd_len));
                        }
                        if x % 17 == 5 && !clean {
                            attr(&mut nh, RTA_OIF, &[1, 0, 0, 0]);
                        }
                        let len = if x % 19 == 7 && !clean {
                            nh.len() as u16 + 3
                        } else {
                            nh.len() as u16
                        };
                        nh[..2].copy_from_slice(&len.to_ne_bytes());
                        mp.extend_from_slice(&nh);
                    }
                    attr(
                        &mut out,
                        RTA_MULTIPATH | if x % 7 == 0 && !clean { 0x8000 } else { 0 },
                        &mp,
                    );
                }
                11 if clean => attr(&mut out, RTA_OIF, &[x; 4]),
                11 => attr(&mut out, u16::from(x), &[x; 4][..(x % 5) as usize]),
                12 => attr(&mut out, RTA_DST, &addr(x, alen)),
                _ => attr(&mut out, RTA_GATEWAY, &addr(x % 3, alen)),
            }
        }
        out
    }

    /// Both decodings of one message, the batch one included.
    fn assert_same(d: &RouteDecoder, kind: u16, payload: &[u8]) {
        let want = d.clone().decode_reference(kind, payload);
        let got = d.clone().decode(kind, payload);
        assert_eq!(got, want, "payload {payload:?}");
        let mut batch = UpdateBatch::new();
        batch.push(net("10.0.0.0/8"), Some(&[ip("10.0.0.1"), ip("192.0.2.6")]));
        // Many hops before: the limits count this route's own.
        let filler = vec![ip("192.0.2.2"); 3 * MAX_ROUTE_NEXT_HOPS];
        batch.push(net("10.0.0.0/8"), Some(&filler));
        batch.truncate(1);
        batch.hops.extend_from_slice(&filler);
        let other = d.clone().decode_into(kind, payload, &mut batch);
        match want {
            Decoded::Route(u) => {
                assert_eq!(other, None);
                assert_eq!(batch.len(), 2);
                assert_eq!(batch.get(1), Some((u.prefix, u.next_hops.as_deref())));
            }
            w => {
                assert_eq!(other, Some(w));
                assert_eq!(batch.len(), 1);
            }
        }
        assert_eq!(
            batch.get(0),
            Some((
                net("10.0.0.0/8"),
                Some(&[ip("10.0.0.1"), ip("192.0.2.6")][..])
            ))
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]

        /// The hand-written fast path decodes exactly as the crate path,
        /// on generated route messages (zebra's shapes and odd ones) and
        /// on their truncations and byte flips.
        #[test]
        fn fast_path_decodes_as_the_crate(
            recipe in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            cut in proptest::prelude::any::<u16>(),
            flip in proptest::prelude::any::<(u16, u8)>(),
        ) {
            let d = with_objects();
            let p = payload_of(&recipe);
            for kind in [RTM_NEWROUTE, RTM_DELROUTE] {
                assert_same(&d, kind, &p);
                assert_same(&d, kind, &p[..usize::from(cut) % (p.len() + 1)]);
                let mut q = p.clone();
                if !q.is_empty() {
                    let i = usize::from(flip.0) % q.len();
                    q[i] ^= flip.1;
                }
                assert_same(&d, kind, &q);
            }
        }
    }

    /// The generated messages exercise both paths: many take the fast
    /// path, many fall back (and decode the same either way).
    #[test]
    fn generated_messages_take_both_paths() {
        let d = with_objects();
        let mut rng = crate::lpm::gen::XorShift64::new(16);
        let (mut fast, mut total) = (0, 0);
        for _ in 0..20_000 {
            let n = rng.below(40) as usize;
            let recipe: Vec<u8> = (0..n).map(|_| rng.next_u32() as u8).collect();
            let p = payload_of(&recipe);
            for kind in [RTM_NEWROUTE, RTM_DELROUTE] {
                assert_same(&d, kind, &p);
                total += 1;
                fast += d
                    .fast_route(kind == RTM_NEWROUTE, &p, &mut Vec::new())
                    .is_some() as u32;
            }
        }
        assert!(
            fast > total / 10 && fast < total * 9 / 10,
            "{fast} of {total} fast"
        );
    }

    /// The messages zebra sent in `tests/fpm_frr.rs`, and the benchmark's
    /// stream shape: the fast path decodes them, as the crate does.
    #[test]
    fn captured_and_bench_messages_decode_as_the_crate() {
        let mut fast = 0;
        for bytes in [
            &include_bytes!("../../tests/data/fpm/frr-8.4-static-nhg.fpm")[..],
            &include_bytes!("../../tests/data/fpm/frr-8.4-static.fpm")[..],
        ] {
            let mut f = FrameDecoder::new();
            f.feed(bytes).unwrap();
            let mut d = RouteDecoder::new();
            while let Some(fr) = f.next_frame().unwrap() {
                for m in fr.messages() {
                    let m = m.unwrap();
                    assert_same(&d, m.message_type, m.payload);
                    let mut hops = Vec::new();
                    if d.fast_route(m.message_type == RTM_NEWROUTE, m.payload, &mut hops)
                        .is_some()
                    {
                        fast += 1;
                    }
                    d.decode_reference(m.message_type, m.payload);
                }
            }
        }
        assert!(fast >= 4, "the fast path took {fast} captured messages");
        let mut out = Vec::new();
        for (p, h) in [
            ("198.51.100.0/24", &["192.0.2.6", "192.0.2.2"][..]),
            (
                "2001:db8:100::/48",
                &["2001:db8::6", "2001:db8::2", "2001:db8::6"][..],
            ),
            ("0.0.0.0/0", &["192.0.2.2"][..]),
        ] {
            let hops: Vec<IpAddr> = h.iter().map(|s| ip(s)).collect();
            push_route(
                &mut out,
                true,
                NLM_F_REPLACE,
                route_message(net(p), RouteType::Unicast, &hops, None),
            );
        }
        let mut f = FrameDecoder::new();
        f.feed(&frame(&out).unwrap()).unwrap();
        let fr = f.next_frame().unwrap().unwrap();
        let d = with_objects();
        for m in fr.messages() {
            let m = m.unwrap();
            assert_same(&d, m.message_type, m.payload);
            assert!(d.fast_route(true, m.payload, &mut Vec::new()).is_some());
        }
    }
}
