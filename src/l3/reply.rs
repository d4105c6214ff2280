//! Frames the managed Layer 3 service writes in place of the frame that
//! triggered them: ARP replies and requests, ICMP and ICMPv6 echo replies
//! and errors, IPv6 neighbour advertisements and solicitations.
//!
//! Contract: each builder works on the frame bytes from the network header
//! on (`l3` = offset after the tags), keeps the MACs-and-tags prefix in
//! place, returns the new frame length, and returns `None` (frame
//! untouched) if the buffer is too small. Checksums are computed in full:
//! these frames are rare and rate-limited.

use crate::wire::checksum;
use crate::wire::ethernet::Mac;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Bytes of the offending packet an ICMPv4 error quotes beyond its IP header.
const ICMP4_QUOTE: usize = 8;
/// An ICMPv6 error stays within the IPv6 minimum MTU (RFC 4443 §2.4 (c)).
const ICMP6_MAX: usize = 1280;

/// Set the Ethernet addresses.
pub fn set_macs(frame: &mut [u8], dst: &Mac, src: &Mac) {
    frame[0..6].copy_from_slice(dst);
    frame[6..12].copy_from_slice(src);
}

/// Address a reply back to the frame's sender: destination MAC = the
/// received source MAC, source MAC = ours. The builders call it last; they
/// never write the first 12 bytes before it.
pub fn reply_to_sender(frame: &mut [u8], our_mac: &Mac) {
    frame.copy_within(6..12, 0);
    frame[6..12].copy_from_slice(our_mac);
}

/// Set the ethertype that follows the tags (at `l3 - 2`).
pub fn set_ethertype(frame: &mut [u8], l3: usize, et: u16) {
    frame[l3 - 2..l3].copy_from_slice(&et.to_be_bytes());
}

/// An ARP reply to the request at `l3`: we (`mac`, `ip`) answer its sender.
pub fn arp_reply(frame: &mut [u8], l3: usize, mac: &Mac, ip: Ipv4Addr) -> Option<usize> {
    let a = frame.get_mut(l3..l3 + 28)?;
    let mut sha = [0u8; 6];
    sha.copy_from_slice(&a[8..14]);
    let mut spa = [0u8; 4];
    spa.copy_from_slice(&a[14..18]);
    a[6..8].copy_from_slice(&2u16.to_be_bytes());
    a[8..14].copy_from_slice(mac);
    a[14..18].copy_from_slice(&ip.octets());
    a[18..24].copy_from_slice(&sha);
    a[24..28].copy_from_slice(&spa);
    set_macs(frame, &sha, mac);
    Some(l3 + 28)
}

/// An ARP request for `target` from (`mac`, `ip`), broadcast.
pub fn arp_request(
    frame: &mut [u8],
    l3: usize,
    mac: &Mac,
    ip: Ipv4Addr,
    target: Ipv4Addr,
) -> Option<usize> {
    let a = frame.get_mut(l3..l3 + 28)?;
    crate::wire::ArpRepr {
        operation: crate::wire::arp::op::REQUEST,
        sender_mac: *mac,
        sender_ip: ip,
        target_mac: [0; 6],
        target_ip: target,
    }
    .emit(a)
    .ok()?;
    set_ethertype(frame, l3, 0x0806);
    set_macs(frame, &[0xff; 6], mac);
    Some(l3 + 28)
}

fn ipv4_header(h: &mut [u8], total: usize, proto: u8, src: Ipv4Addr, dst: Ipv4Addr) {
    h[0] = 0x45;
    h[1] = 0;
    h[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    h[4..8].copy_from_slice(&[0, 0, 0x40, 0]);
    h[8] = 64;
    h[9] = proto;
    h[10..12].copy_from_slice(&[0, 0]);
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let c = checksum::checksum(&h[..20]);
    h[10..12].copy_from_slice(&c.to_be_bytes());
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
    let ip = frame.get(l3..len)?;
    if ip.len() < 20 {
        return None;
    }
    let ihl = (ip[0] & 0x0f) as usize * 4;
    let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    let quote = (ihl + ICMP4_QUOTE).min(total).min(ip.len());
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let new_len = l3 + 28 + quote;
    if frame.len() < new_len {
        return None;
    }
    frame.copy_within(l3..l3 + quote, l3 + 28);
    ipv4_header(&mut frame[l3..l3 + 20], 28 + quote, 1, our_ip, src);
    let icmp = &mut frame[l3 + 20..new_len];
    icmp[0] = kind;
    icmp[1] = code;
    icmp[2..8].copy_from_slice(&[0; 6]);
    let c = checksum::checksum(icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    reply_to_sender(frame, our_mac);
    Some(new_len)
}

/// An ICMPv4 echo reply to the echo request at `l3` (addressed to us).
pub fn icmp4_echo_reply(frame: &mut [u8], len: usize, l3: usize, our_mac: &Mac) -> Option<usize> {
    let ip = frame.get_mut(l3..len)?;
    let ihl = (ip[0] & 0x0f) as usize * 4;
    let total = (u16::from_be_bytes([ip[2], ip[3]]) as usize).min(ip.len());
    if total < ihl + 8 {
        return None;
    }
    let mut src = [0u8; 4];
    src.copy_from_slice(&ip[12..16]);
    ip.copy_within(16..20, 12);
    ip[16..20].copy_from_slice(&src);
    ip[8] = 64;
    ip[10..12].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(&ip[..ihl]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let icmp = &mut ip[ihl..total];
    icmp[0] = 0;
    icmp[2..4].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    reply_to_sender(frame, our_mac);
    Some(l3 + total)
}

/// The ICMPv6 checksum of `msg` between `src` and `dst` (RFC 8200 §8.1).
pub fn icmp6_checksum(src: &Ipv6Addr, dst: &Ipv6Addr, msg: &[u8]) -> u16 {
    let mut acc = checksum::sum(&src.octets(), 0);
    acc = checksum::sum(&dst.octets(), acc);
    acc = checksum::sum(&(msg.len() as u32).to_be_bytes(), acc);
    acc = checksum::sum(&[0, 0, 0, 58], acc);
    !checksum::fold(checksum::sum(msg, acc))
}

fn ipv6_header(h: &mut [u8], payload: usize, hop: u8, src: &Ipv6Addr, dst: &Ipv6Addr) {
    h[0..4].copy_from_slice(&[0x60, 0, 0, 0]);
    h[4..6].copy_from_slice(&(payload as u16).to_be_bytes());
    h[6] = 58;
    h[7] = hop;
    h[8..24].copy_from_slice(&src.octets());
    h[24..40].copy_from_slice(&dst.octets());
}

fn finish_icmp6(frame: &mut [u8], l3: usize, len: usize, src: &Ipv6Addr, dst: &Ipv6Addr) {
    let msg = &mut frame[l3 + 40..len];
    msg[2..4].copy_from_slice(&[0, 0]);
    let c = icmp6_checksum(src, dst, msg);
    msg[2..4].copy_from_slice(&c.to_be_bytes());
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
    let ip = frame.get(l3..len)?;
    if ip.len() < 40 {
        return None;
    }
    let mut s = [0u8; 16];
    s.copy_from_slice(&ip[8..24]);
    let src = Ipv6Addr::from(s);
    let quote = ip.len().min(ICMP6_MAX - 48);
    let new_len = l3 + 48 + quote;
    if frame.len() < new_len {
        return None;
    }
    frame.copy_within(l3..l3 + quote, l3 + 48);
    ipv6_header(&mut frame[l3..l3 + 40], 8 + quote, 64, &our_ip, &src);
    frame[l3 + 40..l3 + 48].copy_from_slice(&[kind, code, 0, 0, 0, 0, 0, 0]);
    finish_icmp6(frame, l3, new_len, &our_ip, &src);
    reply_to_sender(frame, our_mac);
    Some(new_len)
}

/// An ICMPv6 echo reply to the echo request at `l3` (addressed to us).
pub fn icmp6_echo_reply(frame: &mut [u8], len: usize, l3: usize, our_mac: &Mac) -> Option<usize> {
    let ip = frame.get_mut(l3..len)?;
    let plen = u16::from_be_bytes([ip[4], ip[5]]) as usize;
    if ip.len() < 48 || 40 + plen > ip.len() || ip[6] != 58 {
        return None;
    }
    let mut s = [0u8; 16];
    s.copy_from_slice(&ip[8..24]);
    ip.copy_within(24..40, 8);
    ip[24..40].copy_from_slice(&s);
    ip[7] = 64;
    ip[40] = 129;
    let (src, dst) = (addr6(&ip[8..24]), addr6(&ip[24..40]));
    let end = l3 + 40 + plen;
    finish_icmp6(frame, l3, end, &src, &dst);
    reply_to_sender(frame, our_mac);
    Some(end)
}

fn addr6(b: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    Ipv6Addr::from(a)
}

/// The solicited-node multicast address of `target` (RFC 4291 §2.7.1).
pub fn solicited_node(target: &Ipv6Addr) -> Ipv6Addr {
    let t = target.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | t[13] as u16,
        (t[14] as u16) << 8 | t[15] as u16,
    )
}

/// A neighbour advertisement for `target` (our address) answering the
/// solicitation at `l3`: solicited, override, router flags; our MAC as
/// the target link-layer address option.
pub fn nd_advert(frame: &mut [u8], l3: usize, our_mac: &Mac, target: Ipv6Addr) -> Option<usize> {
    let new_len = l3 + 40 + 32;
    if frame.len() < new_len || frame.len() < l3 + 40 {
        return None;
    }
    let sol_src = addr6(&frame[l3 + 8..l3 + 24]);
    let (dst, flags) = if sol_src.is_unspecified() {
        // RFC 4861 §7.2.4: to all-nodes, solicited flag clear.
        (Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1), 0xa0u8)
    } else {
        (sol_src, 0xe0u8)
    };
    ipv6_header(&mut frame[l3..l3 + 40], 32, 255, &target, &dst);
    let m = &mut frame[l3 + 40..new_len];
    m[0..8].copy_from_slice(&[136, 0, 0, 0, flags, 0, 0, 0]);
    m[8..24].copy_from_slice(&target.octets());
    m[24..26].copy_from_slice(&[2, 1]);
    m[26..32].copy_from_slice(our_mac);
    finish_icmp6(frame, l3, new_len, &target, &dst);
    reply_to_sender(frame, our_mac);
    Some(new_len)
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
    let new_len = l3 + 40 + 32;
    if frame.len() < new_len {
        return None;
    }
    let dst = solicited_node(&target);
    let d = dst.octets();
    set_ethertype(frame, l3, 0x86dd);
    ipv6_header(&mut frame[l3..l3 + 40], 32, 255, &our_ip, &dst);
    let m = &mut frame[l3 + 40..new_len];
    m[0..8].copy_from_slice(&[135, 0, 0, 0, 0, 0, 0, 0]);
    m[8..24].copy_from_slice(&target.octets());
    m[24..26].copy_from_slice(&[1, 1]);
    m[26..32].copy_from_slice(our_mac);
    finish_icmp6(frame, l3, new_len, &our_ip, &dst);
    set_macs(frame, &[0x33, 0x33, d[12], d[13], d[14], d[15]], our_mac);
    Some(new_len)
}

/// The link-layer address option of type `kind` (1 source, 2 target) in the
/// options of an ND message starting at `opts`.
pub fn nd_lladdr(opts: &[u8], kind: u8) -> Option<Mac> {
    let mut o = opts;
    while o.len() >= 8 {
        let len = o[1] as usize * 8;
        if len == 0 || len > o.len() {
            return None;
        }
        if o[0] == kind && len >= 8 {
            let mut m = [0u8; 6];
            m.copy_from_slice(&o[2..8]);
            return Some(m);
        }
        o = &o[len..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::{FrameSpec, Payload, MAC_A, MAC_B};

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

    /// Every builder on `inputs()`: (what, input name, result and the
    /// FNV-1a of the bytes it produced).
    fn built() -> Vec<Pin> {
        let mut out = Vec::new();
        for (name, input, len, l3) in inputs() {
            type Builder = fn(&mut [u8], usize, usize) -> Option<usize>;
            let builders: [(&str, Builder); 9] = [
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
            ];
            for (what, b) in builders {
                // The builders that take no length work on the frame as received.
                let mut f = input.clone();
                if matches!(what, "arp_reply" | "nd_advert") {
                    f.truncate(len);
                }
                let r = b(&mut f, len, l3).map(|n| (n, fnv1a(&f[..n])));
                out.push((what, name, l3, r));
            }
        }
        out
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
