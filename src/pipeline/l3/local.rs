//! What the `l3` stage answers itself, in place of the frame that asked:
//! ARP and IPv6 neighbour discovery for this forwarder's addresses (and
//! learning the peers' MACs from them), ICMP echo to its addresses, and
//! ICMP errors (time exceeded, unreachable), rate-limited.
//!
//! Contract: a reply leaves by the attachment the request came in on, with
//! the same tags; the frame bytes are built by [`super::reply`]. A frame
//! for this forwarder that is not answered is `local` (consumed).

use super::reply;
use super::Context;
use crate::frame::{DropReason, Meta, Verdict};
use crate::plan::{neighbor_slot, Adjacency, Family, L3Peering, Side};
use crate::wire::arp::{self, ArpPacket};
use crate::wire::icmp::{v4_type, v6_type};
use crate::wire::l4::protocol;
use crate::wire::PacketBuf;
use std::net::Ipv6Addr;

fn addr6_at(frame: &[u8], at: usize) -> Option<Ipv6Addr> {
    let b: [u8; 16] = *frame.get(at..)?.first_chunk::<16>()?;
    Some(Ipv6Addr::from(b))
}

/// An ARP packet on link `side`: learn the peer, answer a request for our
/// address.
pub fn arp(
    p: &L3Peering,
    side: Side,
    inl: &Adjacency,
    buf: &mut PacketBuf,
    at: usize,
    cx: &mut Context<'_, '_>,
) -> Verdict {
    let Some(a) = buf
        .frame()
        .get(at..)
        .and_then(|b| ArpPacket::new_checked(b, at).ok())
    else {
        return Verdict::Drop(DropReason::Malformed);
    };
    let (op, sha, spa, tpa) = (a.operation(), a.sender_mac(), a.sender_ip(), a.target_ip());
    if Some(spa) == inl.peer_v4 {
        p.neighbors
            .learn(neighbor_slot(side, Family::V4), &sha, cx.now_ms);
        cx.counters.l3.nd_learned += 1;
    }
    if op == arp::op::REQUEST && Some(tpa) == inl.own_v4 {
        if let Some(n) = reply::arp_reply(buf.frame_mut(), at, &inl.mac, tpa) {
            buf.set_len(n.max(60));
            cx.counters.l3.nd_answers += 1;
            return Verdict::Forward(inl.port);
        }
    }
    Verdict::Local
}

/// An IPv4 packet to one of our addresses: answer an echo request.
pub fn echo_v4(
    inl: &Adjacency,
    buf: &mut PacketBuf,
    meta: &Meta,
    cx: &mut Context<'_, '_>,
) -> Verdict {
    let l3 = meta.info.l3_offset as usize;
    let l4 = meta.info.l4_offset as usize;
    let len = buf.len();
    let is_echo = !inl.punt_echo
        && meta.info.protocol == protocol::ICMP
        && !meta.info.fragment
        && buf.frame().get(l4) == Some(&v4_type::ECHO_REQUEST);
    if is_echo {
        if let Some(n) = reply::icmp4_echo_reply(buf.frame_mut(), len, l3, &inl.mac) {
            buf.set_len(n.max(60));
            cx.counters.l3.echo_replies += 1;
            return Verdict::Forward(inl.port);
        }
    }
    Verdict::Local
}

/// An ICMPv6 packet for us (our address or a link-local group): echo,
/// neighbour solicitation and advertisement.
pub fn icmp_v6(
    p: &L3Peering,
    side: Side,
    inl: &Adjacency,
    buf: &mut PacketBuf,
    meta: &Meta,
    cx: &mut Context<'_, '_>,
) -> Verdict {
    let l3 = meta.info.l3_offset as usize;
    let l4 = meta.info.l4_offset as usize;
    let len = buf.len();
    if meta.info.protocol != protocol::ICMPV6 || l4 == 0 {
        return Verdict::Local;
    }
    let frame = buf.frame();
    let kind = frame.get(l4).copied().unwrap_or(0);
    let hop_255 = meta.info.ttl == 255;
    let src = addr6_at(frame, l3 + 8);
    let dst = addr6_at(frame, l3 + 24);
    let slot = neighbor_slot(side, Family::V6);
    match kind {
        v6_type::ECHO_REQUEST if !inl.punt_echo && dst.is_some() && dst == inl.own_v6 => {
            if let Some(n) = reply::icmp6_echo_reply(buf.frame_mut(), len, l3, &inl.mac) {
                buf.set_len(n.max(60));
                cx.counters.l3.echo_replies += 1;
                return Verdict::Forward(inl.port);
            }
        }
        // Neighbour solicitation (RFC 4861 §7.1.1: hop limit 255).
        v6_type::NEIGHBOR_SOLICIT if hop_255 => {
            let target = addr6_at(frame, l4 + 8);
            if src.is_some() && src == inl.peer_v6 {
                if let Some(m) = frame.get(l4 + 24..len).and_then(|o| reply::nd_lladdr(o, 1)) {
                    p.neighbors.learn(slot, &m, cx.now_ms);
                    cx.counters.l3.nd_learned += 1;
                }
            }
            if let Some(t) = target.filter(|t| Some(*t) == inl.own_v6) {
                if let Some(n) = reply::nd_advert(buf.frame_mut(), l3, &inl.mac, t) {
                    buf.set_len(n.max(60));
                    cx.counters.l3.nd_answers += 1;
                    return Verdict::Forward(inl.port);
                }
            }
        }
        // Neighbour advertisement.
        v6_type::NEIGHBOR_ADVERT if hop_255 => {
            let target = addr6_at(frame, l4 + 8);
            if target.is_some() && target == inl.peer_v6 {
                if let Some(m) = frame.get(l4 + 24..len).and_then(|o| reply::nd_lladdr(o, 2)) {
                    p.neighbors.learn(slot, &m, cx.now_ms);
                    cx.counters.l3.nd_learned += 1;
                }
            }
        }
        _ => {}
    }
    Verdict::Local
}

/// Answer the packet with an ICMP error (`kind`, `code`) from our address
/// on the ingress link, unless it is itself an ICMP error or a non-first
/// fragment (RFC 1812 §4.3.2.7) or the rate limit says no; the packet is
/// counted as dropped for `reason` either way.
pub fn icmp_error(
    inl: &Adjacency,
    buf: &mut PacketBuf,
    meta: &Meta,
    fam: Family,
    (kind, code): (u8, u8),
    reason: DropReason,
    cx: &mut Context<'_, '_>,
) -> Verdict {
    let l4 = meta.info.l4_offset as usize;
    let is_error = match fam {
        Family::V4 => {
            meta.info.protocol == protocol::ICMP
                && matches!(
                    buf.frame().get(l4),
                    Some(&(v4_type::DEST_UNREACHABLE | 4 | 5 | v4_type::TIME_EXCEEDED | 12))
                )
        }
        Family::V6 => {
            meta.info.protocol == protocol::ICMPV6 && buf.frame().get(l4).is_some_and(|t| *t < 128)
        }
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
            cx.counters.l3.icmp_errors += 1;
            Verdict::Forward(inl.port)
        }
        None => {
            buf.set_len(len);
            Verdict::Drop(reason)
        }
    }
}
