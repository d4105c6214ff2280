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

    /// Next-hop objects known.
    pub fn next_hop_objects(&self) -> usize {
        self.nexthops.len()
    }

    /// Decode one netlink message (type, flags, payload after the netlink
    /// header).
    pub fn decode(&mut self, message_type: u16, payload: &[u8]) -> Decoded {
        match message_type {
            RTM_NEWROUTE | RTM_DELROUTE => self.route(message_type == RTM_NEWROUTE, payload),
            RTM_NEWNEXTHOP | RTM_DELNEXTHOP => {
                self.nexthop(message_type == RTM_NEWNEXTHOP, payload)
            }
            t => Decoded::Ignored(t),
        }
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
        let wanted = match self.table {
            None => table == RT_TABLE_MAIN || table == RouteHeader::RT_TABLE_UNSPEC as u32,
            Some(t) => table == t,
        };
        if !wanted {
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
}
