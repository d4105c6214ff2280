//! Frames the managed Layer 3 service writes in place of the frame that
//! triggered them: ARP replies and requests, ICMP and ICMPv6 echo replies
//! and errors, IPv6 neighbour advertisements and solicitations.
//!
//! Contract: each builder works on the frame bytes from the network header
//! on (`l3` = offset after the tags), keeps the MACs-and-tags prefix in
//! place, returns the new frame length, and returns `None` (frame
//! untouched) if the buffer is too small, `l3` leaves no room for an
//! Ethernet header, or the packet it answers does not pass its `wire`
//! view. Checksums are computed in full: these frames are rare and
//! rate-limited.
//!
//! Every header is written by `wire`'s `Repr::emit` or through a checked
//! view, and every other byte access is checked (`get`, `split_at_checked`):
//! nothing here panics, whatever the frame, `len` or `l3`. Each builder
//! makes all its checks before its first write.

use crate::wire::arp::{self, ArpPacket};
use crate::wire::ethernet::{self, ethertype, EthernetFrame, Mac, BROADCAST};
use crate::wire::icmp::{self, v4_type, v6_type, IcmpHeader};
use crate::wire::ipv4::{self, Ipv4Packet};
use crate::wire::ipv6::{self, Ipv6Packet};
use crate::wire::l4::protocol;
use crate::wire::nd::NdOptions;
use crate::wire::{ArpRepr, Icmpv4Repr, Icmpv6Repr, Ipv4Repr, Ipv6Repr, NdRepr, PseudoHeader};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Bytes of the offending packet an ICMPv4 error quotes beyond its IP
/// header (RFC 792: "the internet header plus the first 64 bits of the
/// original datagram's data").
const ICMP4_QUOTE: usize = 8;
/// An ICMPv6 error stays within the IPv6 minimum MTU (RFC 4443 §2.4 (c)).
const ICMP6_MAX: usize = 1280;
/// TTL and hop limit of the packets the forwarder originates.
const TTL: u8 = 64;
/// Hop limit of neighbour discovery messages (RFC 4861 §7.1.1, §7.1.2).
const ND_HOP_LIMIT: u8 = 255;
/// Bytes of an ICMPv4 error before the quote: IPv4 and ICMP headers.
const ICMP4_ERROR_HEADERS: usize = ipv4::MIN_HEADER_LEN + icmp::HEADER_LEN;
/// Bytes of an ICMPv6 error before the quote: IPv6 and ICMPv6 headers.
const ICMP6_ERROR_HEADERS: usize = ipv6::HEADER_LEN + icmp::HEADER_LEN;

/// Set the Ethernet addresses. A frame shorter than an Ethernet header is
/// left as it is.
pub fn set_macs(frame: &mut [u8], dst: &Mac, src: &Mac) {
    if let Ok(mut eth) = EthernetFrame::new_checked(frame) {
        eth.set_dst(dst);
        eth.set_src(src);
    }
}

/// Address a reply back to the frame's sender: destination MAC = the
/// received source MAC, source MAC = ours. The builders call it last; they
/// never write the first 12 bytes before it. A frame shorter than an
/// Ethernet header is left as it is.
pub fn reply_to_sender(frame: &mut [u8], our_mac: &Mac) {
    if let Ok(mut eth) = EthernetFrame::new_checked(frame) {
        let sender = eth.src();
        eth.set_dst(&sender);
        eth.set_src(our_mac);
    }
}

/// Set the ethertype that follows the tags (at `l3 - 2`). Nothing happens
/// if those two bytes are not in the frame.
pub fn set_ethertype(frame: &mut [u8], l3: usize, et: u16) {
    let field = l3.checked_sub(2).and_then(|at| frame.get_mut(at..l3));
    if let Some(b) = field {
        b.copy_from_slice(&et.to_be_bytes());
    }
}

/// The frame split at `l3` into the Ethernet header with its tags and the
/// rest; `None` if `l3` is inside the Ethernet header or past the end.
fn split_at_l3(frame: &mut [u8], l3: usize) -> Option<(&mut [u8], &mut [u8])> {
    if l3 < ethernet::HEADER_LEN {
        return None;
    }
    frame.split_at_mut_checked(l3)
}

/// An ARP reply to the request at `l3`: we (`mac`, `ip`) answer its sender.
pub fn arp_reply(frame: &mut [u8], l3: usize, mac: &Mac, ip: Ipv4Addr) -> Option<usize> {
    let (head, rest) = split_at_l3(frame, l3)?;
    let a = rest.get_mut(..arp::PACKET_LEN)?;
    let request = ArpRepr::parse(&ArpPacket::new_checked(&*a, l3).ok()?);
    ArpRepr {
        operation: arp::op::REPLY,
        sender_mac: *mac,
        sender_ip: ip,
        target_mac: request.sender_mac,
        target_ip: request.sender_ip,
    }
    .emit(a)
    .ok()?;
    set_macs(head, &request.sender_mac, mac);
    Some(l3 + arp::PACKET_LEN)
}

/// An ARP request for `target` from (`mac`, `ip`), broadcast.
pub fn arp_request(
    frame: &mut [u8],
    l3: usize,
    mac: &Mac,
    ip: Ipv4Addr,
    target: Ipv4Addr,
) -> Option<usize> {
    let (head, rest) = split_at_l3(frame, l3)?;
    let a = rest.get_mut(..arp::PACKET_LEN)?;
    ArpRepr {
        operation: arp::op::REQUEST,
        sender_mac: *mac,
        sender_ip: ip,
        target_mac: [0; 6],
        target_ip: target,
    }
    .emit(a)
    .ok()?;
    set_ethertype(head, l3, ethertype::ARP);
    set_macs(head, &BROADCAST, mac);
    Some(l3 + arp::PACKET_LEN)
}

/// An ICMPv4 error (`kind`, `code`) about the IPv4 packet at `l3`, from
/// `our_ip`, back to its source and to the MAC it came from.
pub fn icmp4_error(
    frame: &mut [u8],
    len: usize,
    l3: usize,
    kind: u8,
    code: u8,
    our_mac: &Mac,
    our_ip: Ipv4Addr,
) -> Option<usize> {
    let (head, rest) = split_at_l3(frame, l3)?;
    let ip = Ipv4Packet::new_checked(rest.get(..len.checked_sub(l3)?)?, l3).ok()?;
    // RFC 792: the offending header and the first 8 bytes of its data.
    let quote = (ip.header_len() + ICMP4_QUOTE).min(ip.total_len() as usize);
    let src = ip.src();
    let out = rest.get_mut(..ICMP4_ERROR_HEADERS + quote)?;
    out.copy_within(..quote, ICMP4_ERROR_HEADERS);
    let (ip_header, msg) = out.split_at_mut_checked(ipv4::MIN_HEADER_LEN)?;
    Ipv4Repr {
        src: our_ip,
        dst: src,
        protocol: protocol::ICMP,
        payload_len: msg.len(),
        ttl: TTL,
        tos: 0,
        ident: 0,
        dont_frag: true,
    }
    .emit(ip_header)
    .ok()?;
    Icmpv4Repr::error(kind, code).emit(msg).ok()?;
    IcmpHeader::new_checked(msg, l3 + ipv4::MIN_HEADER_LEN, false)
        .ok()?
        .fill_checksum_v4();
    reply_to_sender(head, our_mac);
    Some(l3 + ICMP4_ERROR_HEADERS + quote)
}

/// An ICMPv4 echo reply to the echo request at `l3` (addressed to us):
/// addresses swapped, TTL reset, the rest of the packet kept.
pub fn icmp4_echo_reply(frame: &mut [u8], len: usize, l3: usize, our_mac: &Mac) -> Option<usize> {
    let (head, rest) = split_at_l3(frame, l3)?;
    let mut ip = Ipv4Packet::new_checked(rest.get_mut(..len.checked_sub(l3)?)?, l3).ok()?;
    if ip.protocol() != protocol::ICMP {
        return None;
    }
    let (src, dst, total) = (ip.src(), ip.dst(), ip.total_len() as usize);
    let at = l3 + ip.header_len();
    let mut echo = IcmpHeader::new_checked(ip.payload_mut(), at, false).ok()?;
    echo.set_msg_type(v4_type::ECHO_REPLY);
    echo.fill_checksum_v4();
    ip.set_src(dst);
    ip.set_dst(src);
    ip.set_ttl(TTL);
    ip.fill_checksum();
    reply_to_sender(head, our_mac);
    Some(l3 + total)
}

/// The ICMPv6 checksum of `msg` between `src` and `dst` (RFC 8200 §8.1):
/// the value to store when `msg`'s checksum field is zero, 0 when it holds
/// a correct one.
pub fn icmp6_checksum(src: &Ipv6Addr, dst: &Ipv6Addr, msg: &[u8]) -> u16 {
    PseudoHeader::V6 {
        src: *src,
        dst: *dst,
    }
    .checksum(protocol::ICMPV6, msg)
}

/// An ICMPv6 error (`kind`, `code`) about the IPv6 packet at `l3`.
pub fn icmp6_error(
    frame: &mut [u8],
    len: usize,
    l3: usize,
    kind: u8,
    code: u8,
    our_mac: &Mac,
    our_ip: Ipv6Addr,
) -> Option<usize> {
    let (head, rest) = split_at_l3(frame, l3)?;
    let received = len.checked_sub(l3)?;
    let src = Ipv6Packet::new_checked(rest.get(..received)?, l3)
        .ok()?
        .src();
    // RFC 4443 §2.4 (c): as much of the invoking packet as fits in 1280.
    let quote = received.min(ICMP6_MAX - ICMP6_ERROR_HEADERS);
    let out = rest.get_mut(..ICMP6_ERROR_HEADERS + quote)?;
    out.copy_within(..quote, ICMP6_ERROR_HEADERS);
    let (ip_header, msg) = out.split_at_mut_checked(ipv6::HEADER_LEN)?;
    Ipv6Repr {
        src: our_ip,
        dst: src,
        next_header: protocol::ICMPV6,
        payload_len: msg.len(),
        hop_limit: TTL,
        traffic_class: 0,
        flow_label: 0,
    }
    .emit(ip_header)
    .ok()?;
    Icmpv6Repr::error(kind, code).emit(msg).ok()?;
    IcmpHeader::new_checked(msg, l3 + ipv6::HEADER_LEN, true)
        .ok()?
        .fill_checksum_v6(&our_ip, &src);
    reply_to_sender(head, our_mac);
    Some(l3 + ICMP6_ERROR_HEADERS + quote)
}

/// An ICMPv6 echo reply to the echo request at `l3` (addressed to us):
/// addresses swapped, hop limit reset, the rest of the packet kept.
pub fn icmp6_echo_reply(frame: &mut [u8], len: usize, l3: usize, our_mac: &Mac) -> Option<usize> {
    let (head, rest) = split_at_l3(frame, l3)?;
    let mut ip = Ipv6Packet::new_checked(rest.get_mut(..len.checked_sub(l3)?)?, l3).ok()?;
    if ip.next_header() != protocol::ICMPV6 {
        return None;
    }
    let (src, dst) = (ip.src(), ip.dst());
    let end = l3 + ipv6::HEADER_LEN + ip.payload_len() as usize;
    let at = l3 + ipv6::HEADER_LEN;
    let mut echo = IcmpHeader::new_checked(ip.payload_mut(), at, true).ok()?;
    echo.set_msg_type(v6_type::ECHO_REPLY);
    echo.fill_checksum_v6(&dst, &src);
    ip.set_src(&dst);
    ip.set_dst(&src);
    ip.set_hop_limit(TTL);
    reply_to_sender(head, our_mac);
    Some(end)
}

/// The solicited-node multicast address of `target` (RFC 4291 §2.7.1).
pub fn solicited_node(target: &Ipv6Addr) -> Ipv6Addr {
    ipv6::solicited_node(target)
}

/// The IPv6 header and the ND message `nd` from `src` to `dst`, into
/// `out` (exactly their length).
fn emit_nd(out: &mut [u8], nd: &NdRepr, src: &Ipv6Addr, dst: &Ipv6Addr) -> Option<()> {
    let (ip_header, msg) = out.split_at_mut_checked(ipv6::HEADER_LEN)?;
    Ipv6Repr {
        src: *src,
        dst: *dst,
        next_header: protocol::ICMPV6,
        payload_len: nd.buffer_len(),
        hop_limit: ND_HOP_LIMIT,
        traffic_class: 0,
        flow_label: 0,
    }
    .emit(ip_header)
    .ok()?;
    nd.emit(src, dst, msg).ok()?;
    Some(())
}

/// A neighbour advertisement for `target` (our address) answering the
/// solicitation at `l3`: solicited, override, router flags; our MAC as
/// the target link-layer address option.
pub fn nd_advert(frame: &mut [u8], l3: usize, our_mac: &Mac, target: Ipv6Addr) -> Option<usize> {
    let (head, rest) = split_at_l3(frame, l3)?;
    let solicitor = Ipv6Packet::new_checked(&*rest, l3).ok()?.src();
    // RFC 4861 §7.2.4: to all-nodes, solicited flag clear, when the
    // solicitation came from the unspecified address (DAD).
    let (dst, solicited) = if solicitor.is_unspecified() {
        (ipv6::ALL_NODES, false)
    } else {
        (solicitor, true)
    };
    let na = NdRepr::NeighborAdvert {
        router: true,
        solicited,
        override_: true,
        target,
        lladdr: Some(*our_mac),
    };
    let n = ipv6::HEADER_LEN + na.buffer_len();
    emit_nd(rest.get_mut(..n)?, &na, &target, &dst)?;
    reply_to_sender(head, our_mac);
    Some(l3 + n)
}

/// A neighbour solicitation for `target` from (`our_mac`, `our_ip`), to the
/// target's solicited-node multicast group.
pub fn nd_solicit(
    frame: &mut [u8],
    l3: usize,
    our_mac: &Mac,
    our_ip: Ipv6Addr,
    target: Ipv6Addr,
) -> Option<usize> {
    let (head, rest) = split_at_l3(frame, l3)?;
    let dst = ipv6::solicited_node(&target);
    let ns = NdRepr::NeighborSolicit {
        target,
        lladdr: Some(*our_mac),
    };
    let n = ipv6::HEADER_LEN + ns.buffer_len();
    emit_nd(rest.get_mut(..n)?, &ns, &our_ip, &dst)?;
    set_ethertype(head, l3, ethertype::IPV6);
    set_macs(head, &ethernet::ipv6_multicast_mac(&dst), our_mac);
    Some(l3 + n)
}

/// The link-layer address option of type `kind` (1 source, 2 target) in the
/// options of an ND message starting at `opts`: the first option of that
/// type, if every option before it is well formed (RFC 4861 §4.6).
pub fn nd_lladdr(opts: &[u8], kind: u8) -> Option<Mac> {
    NdOptions::new(opts, 0).lladdr(kind).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::{FrameSpec, Payload, MAC_A, MAC_B};
    use crate::wire::checksum;

    fn addr6(b: &[u8]) -> Ipv6Addr {
        Ipv6Addr::from(*b.first_chunk::<16>().unwrap())
    }

    const US: Mac = [2, 0x78, 0x63, 0, 0, 1];

    #[test]
    fn arp_request_then_reply() {
        let mut f = FrameSpec {
            dst_mac: [0xff; 6],
            src_mac: MAC_A,
            tags: vec![],
            payload: Payload::ArpRequest {
                sender: Ipv4Addr::new(192, 0, 2, 2),
                target: Ipv4Addr::new(192, 0, 2, 1),
            },
            wire_len: 64,
        }
        .build();
        let n = arp_reply(&mut f, 14, &US, Ipv4Addr::new(192, 0, 2, 1)).unwrap();
        let a = crate::wire::arp::ArpPacket::new_checked(&f[14..n], 14).unwrap();
        assert_eq!(
            (a.operation(), a.sender_mac(), a.sender_ip()),
            (2, US, Ipv4Addr::new(192, 0, 2, 1))
        );
        assert_eq!(
            (a.target_mac(), a.target_ip()),
            (MAC_A, Ipv4Addr::new(192, 0, 2, 2))
        );
        assert_eq!(&f[0..12], &[MAC_A, US].concat()[..]);
    }

    #[test]
    fn icmp_errors_and_echo_are_valid() {
        let mut f = FrameSpec::udp(
            &[],
            "198.51.100.7".parse().unwrap(),
            "203.0.113.9".parse().unwrap(),
            (1, 2),
            0,
            200,
        )
        .build();
        f.resize(400, 0);
        let n = icmp4_error(&mut f, 196, 14, 11, 0, &US, Ipv4Addr::new(192, 0, 2, 1)).unwrap();
        let info = crate::wire::parse(&f[..n]).unwrap();
        assert_eq!(info.protocol, 1);
        let ip = crate::wire::ipv4::Ipv4Packet::new_checked(&f[14..n], 14).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.dst(), Ipv4Addr::new(198, 51, 100, 7));
        assert_eq!(checksum::checksum(&f[34..n]), 0);
        assert_eq!(&f[0..6], &MAC_A);
        let mut e = FrameSpec {
            dst_mac: MAC_B,
            src_mac: MAC_A,
            tags: vec![],
            payload: Payload::Ip {
                src: "2001:db8::7".parse().unwrap(),
                dst: "2001:db8::1".parse().unwrap(),
                protocol: 58,
                src_port: 0,
                dst_port: 0,
                tos: 0,
                ttl: 9,
            },
            wire_len: 100,
        }
        .build();
        let len = e.len();
        let n = icmp6_echo_reply(&mut e, len, 14, &US).unwrap();
        let (s, d) = (addr6(&e[22..38]), addr6(&e[38..54]));
        assert_eq!(s, "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(e[54], 129);
        assert_eq!(icmp6_checksum(&s, &d, &e[54..n]), 0);
        e.resize(1600, 0);
        let n = icmp6_error(&mut e, len, 14, 3, 0, &US, "2001:db8::1".parse().unwrap()).unwrap();
        let (s, d) = (addr6(&e[22..38]), addr6(&e[38..54]));
        assert_eq!(icmp6_checksum(&s, &d, &e[54..n]), 0);
    }

    #[test]
    fn nd_solicit_and_advert() {
        let mut f = vec![0u8; 100];
        let ours: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let target: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let n = nd_solicit(&mut f, 14, &US, ours, target).unwrap();
        assert_eq!(&f[0..6], &[0x33, 0x33, 0xff, 0, 0, 2]);
        assert_eq!(
            icmp6_checksum(&ours, &solicited_node(&target), &f[54..n]),
            0
        );
        assert_eq!(nd_lladdr(&f[78..n], 1), Some(US));
        // Answer it as the target would.
        let n = nd_advert(&mut f, 14, &MAC_B, target).unwrap();
        assert_eq!(f[54], 136);
        assert_eq!(icmp6_checksum(&target, &ours, &f[54..n]), 0);
        assert_eq!(nd_lladdr(&f[78..n], 2), Some(MAC_B));
    }

    fn fnv1a(b: &[u8]) -> u64 {
        b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
            (h ^ x as u64).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }

    /// Valid inputs for every builder, untagged and QinQ: (name, frame,
    /// frame length, l3 offset). The frames are built with `FrameSpec`
    /// and, for the solicitation, with `nd_solicit` itself; buffers have
    /// room for the longest reply.
    fn inputs() -> Vec<(&'static str, Vec<u8>, usize, usize)> {
        use crate::wire::{Tpid, VlanTag};
        let mut out = Vec::new();
        for tags in [
            vec![],
            vec![
                VlanTag::from_tci(Tpid::DOT1AD, 0x6064),
                VlanTag::from_tci(Tpid::DOT1Q, 0x00c8),
            ],
        ] {
            let l3 = 14 + 4 * tags.len();
            let spec = |payload: Payload, wire_len: usize| FrameSpec {
                dst_mac: MAC_B,
                src_mac: MAC_A,
                tags: tags.clone(),
                payload,
                wire_len,
            };
            let ip = |s: &str, d: &str, protocol: u8| Payload::Ip {
                src: s.parse().unwrap(),
                dst: d.parse().unwrap(),
                protocol,
                src_port: 50000,
                dst_port: 3478,
                tos: 0xb9,
                ttl: 9,
            };
            let arp = spec(
                Payload::ArpRequest {
                    sender: Ipv4Addr::new(192, 0, 2, 2),
                    target: Ipv4Addr::new(192, 0, 2, 1),
                },
                64,
            )
            .build();
            out.push(("arp-request", arp, 0, l3));
            out.push((
                "echo4",
                spec(ip("198.51.100.7", "192.0.2.1", 1), 98).build(),
                0,
                l3,
            ));
            out.push((
                "udp4",
                spec(ip("198.51.100.7", "203.0.113.9", 17), 200).build(),
                0,
                l3,
            ));
            out.push((
                "echo6",
                spec(ip("2001:db8::7", "2001:db8::1", 58), 118).build(),
                0,
                l3,
            ));
            out.push((
                "udp6",
                spec(ip("2001:db8::7", "2001:db8:ff::9", 17), 1400).build(),
                0,
                l3,
            ));
            let mut ns = spec(ip("2001:db8::7", "2001:db8::1", 58), 64).build();
            ns.resize(l3 + 72, 0);
            let n = nd_solicit(
                &mut ns,
                l3,
                &MAC_A,
                "2001:db8::7".parse().unwrap(),
                "2001:db8::1".parse().unwrap(),
            )
            .unwrap();
            assert_eq!(n, ns.len());
            out.push(("ns", ns, 0, l3));
        }
        for (_, f, len, _) in &mut out {
            *len = f.len();
            f.resize(1600, 0);
        }
        out
    }

    /// A builder, an input, its l3 offset, and what the builder returned
    /// with the FNV-1a of the bytes it produced.
    type Pin = (&'static str, &'static str, usize, Option<(usize, u64)>);

    type Builder = fn(&mut [u8], usize, usize) -> Option<usize>;

    /// Every builder with fixed parameters, as (name, builder taking the
    /// frame, its length and l3).
    fn builders() -> [(&'static str, Builder); 9] {
        [
            ("arp_reply", |f, _, l3| {
                arp_reply(f, l3, &US, Ipv4Addr::new(192, 0, 2, 1))
            }),
            ("arp_request", |f, _, l3| {
                arp_request(
                    f,
                    l3,
                    &US,
                    Ipv4Addr::new(192, 0, 2, 1),
                    Ipv4Addr::new(192, 0, 2, 2),
                )
            }),
            ("icmp4_error", |f, len, l3| {
                icmp4_error(f, len, l3, 11, 0, &US, Ipv4Addr::new(192, 0, 2, 1))
            }),
            ("icmp4_unreachable", |f, len, l3| {
                icmp4_error(f, len, l3, 3, 0, &US, Ipv4Addr::new(192, 0, 2, 1))
            }),
            ("icmp4_echo_reply", |f, len, l3| {
                icmp4_echo_reply(f, len, l3, &US)
            }),
            ("icmp6_error", |f, len, l3| {
                icmp6_error(f, len, l3, 3, 0, &US, "2001:db8::1".parse().unwrap())
            }),
            ("icmp6_echo_reply", |f, len, l3| {
                icmp6_echo_reply(f, len, l3, &US)
            }),
            ("nd_advert", |f, _, l3| {
                nd_advert(f, l3, &US, "2001:db8::1".parse().unwrap())
            }),
            ("nd_solicit", |f, _, l3| {
                nd_solicit(
                    f,
                    l3,
                    &US,
                    "2001:db8::1".parse().unwrap(),
                    "2001:db8::2".parse().unwrap(),
                )
            }),
        ]
    }

    /// The builders that take no length work on the frame as received.
    fn frame_for(what: &str, input: &[u8], len: usize) -> Vec<u8> {
        let mut f = input.to_vec();
        if matches!(what, "arp_reply" | "nd_advert") {
            f.truncate(len);
        }
        f
    }

    /// Every builder on `inputs()`: (what, input name, result and the
    /// FNV-1a of the bytes it produced).
    fn built() -> Vec<Pin> {
        let mut out = Vec::new();
        for (name, input, len, l3) in inputs() {
            for (what, b) in builders() {
                let mut f = frame_for(what, &input, len);
                let r = b(&mut f, len, l3).map(|n| (n, fnv1a(&f[..n])));
                out.push((what, name, l3, r));
            }
        }
        out
    }

    /// Every builder on every prefix of every input (frame and length cut
    /// to it): `None` with the bytes untouched, or a frame no longer than
    /// the prefix that keeps its tags and is valid when the input was one
    /// its caller hands it. Never a panic.
    #[test]
    fn short_buffers_give_none_or_a_valid_frame() {
        for (name, input, len, l3) in inputs() {
            for (what, b) in builders() {
                let full = frame_for(what, &input, len);
                let mut answered = 0;
                for n in 0..=full.len() {
                    let before = &full[..n];
                    let mut f = before.to_vec();
                    let r = b(&mut f, len.min(n), l3);
                    let Some(k) = r else {
                        assert_eq!(f, before, "{what} on {name}[..{n}] wrote, then refused");
                        continue;
                    };
                    answered += 1;
                    assert!(k <= n, "{what} on {name}[..{n}]: {k} bytes");
                    assert_eq!(&f[12..l3 - 2], &before[12..l3 - 2], "{what}: tags");
                    if relevant(what, name) {
                        if let Err(e) = crate::invariants::reply_is_valid(&f[..k]) {
                            panic!("{what} on {name}[..{n}]: {e}");
                        }
                    }
                }
                if relevant(what, name) {
                    assert!(answered > 0, "{what} never answered {name}");
                }
            }
        }
    }

    /// The fuzz target's invariant on every input, builder, a range of
    /// `l3` offsets (right, inside the header, past the tags) and buffer
    /// capacities.
    #[test]
    fn any_l3_and_capacity_through_the_fuzz_invariant() {
        for (_, input, len, l3) in inputs() {
            let frame = &input[..len];
            for b in 0..crate::invariants::L3_REPLY_BUILDERS.len() {
                for at in (0..l3 + 12).step_by(3).chain([l3]) {
                    for cap in [0, 13, 14, l3 + 27, l3 + 28, l3 + 71, len, 1600] {
                        let data =
                            crate::invariants::l3_reply_input(b, cap as u16, at as u8, 0, 0, frame);
                        crate::invariants::l3_reply(&data);
                    }
                }
            }
        }
    }

    /// The inputs each builder gets from its caller in `l3` (the others
    /// are refused or nonsense, and not pinned).
    fn relevant(what: &str, input: &str) -> bool {
        match what {
            "arp_reply" => input == "arp-request",
            "icmp4_error" | "icmp4_unreachable" => matches!(input, "echo4" | "udp4"),
            "icmp4_echo_reply" => input == "echo4",
            "icmp6_error" => matches!(input, "echo6" | "udp6" | "ns"),
            "icmp6_echo_reply" => input == "echo6",
            "nd_advert" => input == "ns",
            _ => true,
        }
    }

    /// The bytes every builder made from its valid inputs before the
    /// builders moved onto `wire`'s `Repr`/`emit` (length and FNV-1a of
    /// the frame): the rewrite changed how, not what.
    #[test]
    fn reply_bytes_are_pinned() {
        let want: [Pin; 46] = [
            (
                "arp_reply",
                "arp-request",
                14,
                Some((42, 0x3041c7e5bb56c72d)),
            ),
            (
                "arp_request",
                "arp-request",
                14,
                Some((42, 0xc71e6d94ee86476a)),
            ),
            (
                "nd_solicit",
                "arp-request",
                14,
                Some((86, 0xd30d9d5647b8754d)),
            ),
            ("arp_request", "echo4", 14, Some((42, 0xc71e6d94ee86476a))),
            ("icmp4_error", "echo4", 14, Some((70, 0x195fb13c3c8efd66))),
            (
                "icmp4_unreachable",
                "echo4",
                14,
                Some((70, 0xb65f4f23171cb016)),
            ),
            (
                "icmp4_echo_reply",
                "echo4",
                14,
                Some((94, 0xc8d67934afdde4d6)),
            ),
            ("nd_solicit", "echo4", 14, Some((86, 0xd30d9d5647b8754d))),
            ("arp_request", "udp4", 14, Some((42, 0xc71e6d94ee86476a))),
            ("icmp4_error", "udp4", 14, Some((70, 0xa025aaf1cb83706d))),
            (
                "icmp4_unreachable",
                "udp4",
                14,
                Some((70, 0xe20bea53226b6fad)),
            ),
            ("nd_solicit", "udp4", 14, Some((86, 0xd30d9d5647b8754d))),
            ("arp_request", "echo6", 14, Some((42, 0xc71e6d94ee86476a))),
            ("icmp6_error", "echo6", 14, Some((162, 0x3e82c2022c9551be))),
            (
                "icmp6_echo_reply",
                "echo6",
                14,
                Some((114, 0x54fb74ca48d0a908)),
            ),
            ("nd_solicit", "echo6", 14, Some((86, 0xd30d9d5647b8754d))),
            ("arp_request", "udp6", 14, Some((42, 0xc71e6d94ee86476a))),
            ("icmp6_error", "udp6", 14, Some((1294, 0x9423ed3aec2630c9))),
            ("nd_solicit", "udp6", 14, Some((86, 0xd30d9d5647b8754d))),
            ("arp_request", "ns", 14, Some((42, 0xc71e6d94ee86476a))),
            ("icmp6_error", "ns", 14, Some((134, 0xd661f7e4aefd91b9))),
            ("nd_advert", "ns", 14, Some((86, 0x4d7ca7c25debace0))),
            ("nd_solicit", "ns", 14, Some((86, 0xd30d9d5647b8754d))),
            (
                "arp_reply",
                "arp-request",
                22,
                Some((50, 0xf27fefd0b542c3c4)),
            ),
            (
                "arp_request",
                "arp-request",
                22,
                Some((50, 0xe5b56d490159d2e7)),
            ),
            (
                "nd_solicit",
                "arp-request",
                22,
                Some((94, 0x15bdea008404fa8c)),
            ),
            ("arp_request", "echo4", 22, Some((50, 0xe5b56d490159d2e7))),
            ("icmp4_error", "echo4", 22, Some((78, 0x05d5c3f0267644fb))),
            (
                "icmp4_unreachable",
                "echo4",
                22,
                Some((78, 0x2197ccf04d855e3b)),
            ),
            (
                "icmp4_echo_reply",
                "echo4",
                22,
                Some((94, 0x666e3ac866f75691)),
            ),
            ("nd_solicit", "echo4", 22, Some((94, 0x15bdea008404fa8c))),
            ("arp_request", "udp4", 22, Some((50, 0xe5b56d490159d2e7))),
            ("icmp4_error", "udp4", 22, Some((78, 0xe16872f15be45150))),
            (
                "icmp4_unreachable",
                "udp4",
                22,
                Some((78, 0xaa7983b9e05c1180)),
            ),
            ("nd_solicit", "udp4", 22, Some((94, 0x15bdea008404fa8c))),
            ("arp_request", "echo6", 22, Some((50, 0xe5b56d490159d2e7))),
            ("icmp6_error", "echo6", 22, Some((162, 0xb920fb77025ed7eb))),
            (
                "icmp6_echo_reply",
                "echo6",
                22,
                Some((114, 0xaa8a8f4f7ad8b243)),
            ),
            ("nd_solicit", "echo6", 22, Some((94, 0x15bdea008404fa8c))),
            ("arp_request", "udp6", 22, Some((50, 0xe5b56d490159d2e7))),
            ("icmp6_error", "udp6", 22, Some((1302, 0x8b3c4184b75af768))),
            ("nd_solicit", "udp6", 22, Some((94, 0x15bdea008404fa8c))),
            ("arp_request", "ns", 22, Some((50, 0xe5b56d490159d2e7))),
            ("icmp6_error", "ns", 22, Some((142, 0xdfac14739cd5713c))),
            ("nd_advert", "ns", 22, Some((94, 0x232110dc91d746c1))),
            ("nd_solicit", "ns", 22, Some((94, 0x15bdea008404fa8c))),
        ];
        let got: Vec<Pin> = built()
            .into_iter()
            .filter(|(what, input, _, _)| relevant(what, input))
            .collect();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert_eq!(*g, w);
        }
    }
}
