//! One-pass parse of a whole frame into [`FrameInfo`]: the tag stack, the
//! ethertype, where L3 and L4 start, the traffic class and the ports.
//!
//! This is the parse the pipeline runs on every frame. It is strict: a frame
//! is either fully understood up to its transport header, or rejected with
//! the layer and offset that failed. Ethertypes other than IPv4, IPv6 and
//! ARP are accepted as opaque (`L3::Other`). The transport header is
//! read only from unfragmented packets (any fragment, first or not, hashes
//! on addresses alone, so a flow's fragments stay on one link).

use super::arp::ArpPacket;
use super::error::{ErrorKind, Layer, WireError};
use super::ethernet::{ethertype, HEADER_LEN, MACS_LEN};
use super::icmp::IcmpHeader;
use super::ipv4::Ipv4Packet;
use super::ipv6::{self, Ipv6Packet};
use super::l4::{protocol, TcpHeader, UdpHeader};
use super::vlan::{TagStack, Tpid, MAX_TAGS};
use super::Dscp;

/// The network layer found after the tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum L3 {
    /// An ethertype xconnect does not decode.
    #[default]
    Other,
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
    /// ARP (Ethernet/IPv4).
    Arp,
}

/// What one parse pass learned about a frame. Offsets are from the first
/// byte of the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FrameInfo {
    /// The VLAN tags, outermost first.
    pub tags: TagStack,
    /// The ethertype after the tags.
    pub ethertype: u16,
    /// Offset of the network header (= 14 + 4 × tags).
    pub l3_offset: u16,
    /// The network layer.
    pub l3: L3,
    /// Length of the network-layer packet: the IPv4 total length, 40 +
    /// the IPv6 payload length (Ethernet padding excluded), or for other
    /// ethertypes every byte after the ethertype.
    pub l3_len: u32,
    /// IPv4 TOS / IPv6 traffic class (0 for non-IP).
    pub tos: u8,
    /// IPv4 TTL / IPv6 hop limit (0 for non-IP).
    pub ttl: u8,
    /// Upper-layer protocol (after IPv6 extension headers).
    pub protocol: u8,
    /// True if the IP packet is a fragment (IPv4 MF/offset, IPv6 fragment header).
    pub fragment: bool,
    /// Offset of the upper-layer header (0 if none was located).
    pub l4_offset: u16,
    /// TCP/UDP source port (0 when `has_ports` is false).
    pub src_port: u16,
    /// TCP/UDP destination port (0 when `has_ports` is false).
    pub dst_port: u16,
    /// True if the ports were read from a TCP or UDP header.
    pub has_ports: bool,
}

impl FrameInfo {
    /// DSCP of an IP packet.
    #[inline]
    pub fn dscp(&self) -> Dscp {
        Dscp::from_tos(self.tos)
    }

    /// ECN bits of an IP packet.
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.tos & 3
    }

    /// True for IPv4 and IPv6.
    #[inline]
    pub fn is_ip(&self) -> bool {
        matches!(self.l3, L3::Ipv4 | L3::Ipv6)
    }
}

#[inline(always)]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Parse the Ethernet header and the tag stack only: returns the tags and
/// the offset of the ethertype that follows them.
#[inline]
pub fn parse_tags(frame: &[u8]) -> Result<(TagStack, usize), WireError> {
    if frame.len() < HEADER_LEN {
        return Err(WireError::truncated(
            Layer::Ethernet,
            0,
            HEADER_LEN,
            frame.len(),
        ));
    }
    let mut tags = TagStack::new();
    let mut at = MACS_LEN;
    let mut et = be16(frame, at);
    while Tpid::is_vlan(et) {
        if tags.len() == MAX_TAGS {
            return Err(WireError::new(Layer::Vlan, at, ErrorKind::TooManyTags));
        }
        // A tag needs its TCI and the next ethertype: 4 bytes past `at + 2`.
        if frame.len() < at + 6 {
            return Err(WireError::truncated(Layer::Vlan, at, 6, frame.len() - at));
        }
        // Cannot fail: the length was checked against MAX_TAGS above.
        let _ = tags.push_raw(et, be16(frame, at + 2));
        at += 4;
        et = be16(frame, at);
    }
    Ok((tags, at))
}

/// Parse a whole frame (see the module header for what is checked).
#[inline]
pub fn parse(frame: &[u8]) -> Result<FrameInfo, WireError> {
    let mut info = FrameInfo::default();
    parse_into(frame, &mut info)?;
    Ok(info)
}

/// Parse a whole frame into `info`, overwriting every field (on error the
/// fields are unspecified). The hot-path form of [`parse`]: it writes the
/// result in place, field by field, instead of building it on the stack and
/// moving it (a moved struct is reloaded with wide loads that straddle the
/// narrow stores that built it, which defeats store-to-load forwarding).
#[inline]
pub fn parse_into(frame: &[u8], info: &mut FrameInfo) -> Result<(), WireError> {
    parse_impl::<true>(frame, info)
}

/// [`parse_into`], with or without the IPv4 fast path (the tests check
/// both agree on every input).
#[inline(always)]
fn parse_impl<const FAST: bool>(frame: &[u8], info: &mut FrameInfo) -> Result<(), WireError> {
    // Walk the header by splitting fixed-size chunks off the front: each
    // step is one length check, and what remains is the L3 slice.
    let Some((eth, mut rest)) = frame.split_first_chunk::<HEADER_LEN>() else {
        return Err(WireError::truncated(
            Layer::Ethernet,
            0,
            HEADER_LEN,
            frame.len(),
        ));
    };
    let mut et = u16::from_be_bytes([eth[12], eth[13]]);
    let mut at = MACS_LEN;
    // The tags are read into registers (unrolled: at most MAX_TAGS) and the
    // stack stored once: a stack built in place reloads its length after
    // every push, a store-to-load round trip per tag.
    let mut raw = [0u32; MAX_TAGS];
    let mut n = 0;
    if Tpid::is_vlan(et) {
        (raw[0], et, rest) = one_tag(et, rest, at, frame.len())?;
        (n, at) = (1, at + 4);
        if Tpid::is_vlan(et) {
            (raw[1], et, rest) = one_tag(et, rest, at, frame.len())?;
            (n, at) = (2, at + 4);
            if Tpid::is_vlan(et) {
                (raw[2], et, rest) = one_tag(et, rest, at, frame.len())?;
                (n, at) = (3, at + 4);
                if Tpid::is_vlan(et) {
                    return Err(WireError::new(Layer::Vlan, at, ErrorKind::TooManyTags));
                }
            }
        }
    }
    const _: () = assert!(MAX_TAGS == 3, "the tag parse is unrolled for three tags");
    info.tags = TagStack::from_words(raw, n);
    let l3_off = at + 2;
    let l3 = rest;
    info.ethertype = et;
    info.l3_offset = l3_off as u16;
    // Fast path: IPv4 without options, not a fragment, UDP or TCP with the
    // transport header inside the packet. Read straight from one
    // fixed-size view and write every field once.
    if FAST && et == ethertype::IPV4 {
        if let Some(h) = l3.first_chunk::<24>() {
            let total = u16::from_be_bytes([h[2], h[3]]) as usize;
            let frag = u16::from_be_bytes([h[6], h[7]]) & 0x3fff;
            let proto = h[9];
            // Not taken (full parse): other protocols, a TCP data offset under 5.
            const SLOW: usize = usize::MAX / 2;
            let l4_len = match proto {
                protocol::UDP => 8,
                protocol::TCP => match l3.get(32) {
                    Some(&b) if b >> 4 >= 5 => (b >> 4) as usize * 4,
                    _ => SLOW,
                },
                _ => SLOW,
            };
            if h[0] == 0x45 && frag == 0 && 20 + l4_len <= total && total <= l3.len() {
                info.l3 = L3::Ipv4;
                info.l3_len = total as u32;
                info.tos = h[1];
                info.ttl = h[8];
                info.protocol = proto;
                info.fragment = false;
                info.l4_offset = (l3_off + 20) as u16;
                info.src_port = u16::from_be_bytes([h[20], h[21]]);
                info.dst_port = u16::from_be_bytes([h[22], h[23]]);
                info.has_ports = true;
                return Ok(());
            }
        }
    }
    info.l3 = L3::Other;
    info.tos = 0;
    info.ttl = 0;
    info.protocol = 0;
    info.fragment = false;
    info.l4_offset = 0;
    info.src_port = 0;
    info.dst_port = 0;
    info.has_ports = false;
    info.l3_len = u32::try_from(l3.len()).unwrap_or(u32::MAX);
    match et {
        ethertype::IPV4 => {
            let ip = Ipv4Packet::new_checked(l3, l3_off)?;
            info.l3 = L3::Ipv4;
            info.l3_len = ip.total_len() as u32;
            info.tos = ip.tos();
            info.ttl = ip.ttl();
            info.protocol = ip.protocol();
            info.fragment = ip.is_fragment();
            let mut l4_off = l3_off + ip.header_len();
            let mut payload = &l3[ip.header_len()..ip.total_len() as usize];
            // An authentication header (RFC 4302) sits between IPv4 and the
            // transport header; walk it as etherparse does (also in fragments).
            if info.protocol == super::ipv6::next_header::AUTH {
                let len = ipv6::auth_header_len(payload, l4_off)?;
                info.protocol = payload[0];
                payload = &payload[len..];
                l4_off += len;
            }
            if !info.fragment {
                parse_l4(info, payload, l4_off, false)?;
            }
        }
        ethertype::IPV6 => {
            let ip = Ipv6Packet::new_checked(l3, l3_off)?;
            info.l3 = L3::Ipv6;
            info.l3_len = ipv6::HEADER_LEN as u32 + ip.payload_len() as u32;
            info.tos = ip.traffic_class();
            info.ttl = ip.hop_limit();
            let payload = ip.payload();
            let ul = ipv6::upper_layer(ip.next_header(), payload, l3_off + ipv6::HEADER_LEN)?;
            info.protocol = ul.protocol;
            info.fragment = ul.fragmented;
            let l4_off = l3_off + ipv6::HEADER_LEN + ul.offset;
            if !ul.fragmented {
                parse_l4(info, &payload[ul.offset..], l4_off, true)?;
            }
        }
        ethertype::ARP => {
            ArpPacket::new_checked(l3, l3_off)?;
            info.l3 = L3::Arp;
        }
        _ => {}
    }
    Ok(())
}

/// One tag whose TPID `et` was read at `at`: its word (TPID << 16 | TCI),
/// the ethertype after it and the bytes after that.
#[inline(always)]
fn one_tag(
    et: u16,
    rest: &[u8],
    at: usize,
    frame_len: usize,
) -> Result<(u32, u16, &[u8]), WireError> {
    // A tag needs its TCI and the next ethertype: 4 bytes past `at + 2`.
    let Some((t, r)) = rest.split_first_chunk::<4>() else {
        return Err(WireError::truncated(Layer::Vlan, at, 6, frame_len - at));
    };
    let word = (et as u32) << 16 | u16::from_be_bytes([t[0], t[1]]) as u32;
    Ok((word, u16::from_be_bytes([t[2], t[3]]), r))
}

#[inline(always)]
fn parse_l4(info: &mut FrameInfo, l4: &[u8], l4_off: usize, v6: bool) -> Result<(), WireError> {
    info.l4_offset = l4_off as u16;
    match info.protocol {
        protocol::UDP => {
            let u = UdpHeader::new_checked(l4, l4_off)?;
            info.src_port = u.src_port();
            info.dst_port = u.dst_port();
            info.has_ports = true;
        }
        protocol::TCP => {
            let t = TcpHeader::new_checked(l4, l4_off)?;
            info.src_port = t.src_port();
            info.dst_port = t.dst_port();
            info.has_ports = true;
        }
        protocol::ICMP if !v6 => {
            IcmpHeader::new_checked(l4, l4_off, false)?;
        }
        protocol::ICMPV6 if v6 => {
            IcmpHeader::new_checked(l4, l4_off, true)?;
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::wire::VlanTag;

    /// 0x88a8 S-tag 100 (PCP 3), 0x8100 C-tag 200, IPv4 UDP 192.0.2.1:50000 -> 198.51.100.1:3478, TOS 0xb8.
    pub(crate) static QINQ_UDP: [u8; 64] = [
        0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, // MACs
        0x88, 0xa8, 0x60, 0x64, // S-tag 100 PCP 3
        0x81, 0x00, 0x00, 0xc8, // C-tag 200
        0x08, 0x00, // IPv4
        0x45, 0xb8, 0x00, 0x2a, 0, 0, 0x40, 0, 64, 17, 0x3a, 0x74, 192, 0, 2, 1, 198, 51, 100, 1,
        0xc3, 0x50, 0x0d, 0x96, 0x00, 0x16, 0, 0, // UDP
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, // payload
    ];

    #[test]
    fn qinq_udp() {
        let i = parse(&QINQ_UDP).unwrap();
        assert_eq!(i.tags.len(), 2);
        assert_eq!(
            i.tags.get(0),
            Some(VlanTag {
                tpid: Tpid::DOT1AD,
                pcp: 3,
                dei: false,
                vid: 100
            })
        );
        assert_eq!(i.tags.vid(1), 200);
        assert_eq!(i.ethertype, ethertype::IPV4);
        assert_eq!(i.l3, L3::Ipv4);
        assert_eq!(i.l3_offset, 22);
        assert_eq!(i.l3_len, 42);
        assert_eq!(i.dscp(), Dscp::EF);
        assert_eq!((i.src_port, i.dst_port, i.has_ports), (50000, 3478, true));
        assert_eq!(i.l4_offset, 42);
    }

    #[test]
    fn truncation_names_the_layer() {
        for n in 0..QINQ_UDP.len() {
            // The IPv4 total length is 42, so the frame needs 22 + 42 = 64 bytes.
            let e = parse(&QINQ_UDP[..n]).unwrap_err();
            let want = match n {
                0..=13 => Layer::Ethernet,
                14..=21 => Layer::Vlan,
                _ => Layer::Ipv4,
            };
            assert_eq!(e.layer, want, "len {n}: {e}");
        }
    }

    proptest::proptest! {
        /// The IPv4 fast path and the full parse agree (result and every
        /// field) on frames built around a valid one with bytes mutated.
        #[test]
        fn fast_path_matches_full_parse(
            tags in 0usize..3,
            tcp in proptest::bool::ANY,
            len in 0usize..120,
            edits in proptest::collection::vec((0usize..90, proptest::num::u8::ANY), 0..4),
        ) {
            let mut f = QINQ_UDP[..12].to_vec();
            for t in 0..tags {
                f.extend_from_slice(&[0x81, 0x00, 0x00, 10 + t as u8]);
            }
            f.extend_from_slice(&QINQ_UDP[20..]);
            if tcp {
                let l3 = 14 + 4 * tags;
                f[l3 + 9] = 6;
                f[l3 + 20 + 12] = 0x50;
                f.resize(l3 + 40, 0);
                f[l3 + 2..l3 + 4].copy_from_slice(&40u16.to_be_bytes());
            }
            for (at, b) in edits {
                if let Some(x) = f.get_mut(at) {
                    *x = b;
                }
            }
            f.truncate(len);
            let (mut a, mut b) = (FrameInfo::default(), FrameInfo::default());
            let ra = parse_impl::<true>(&f, &mut a);
            let rb = parse_impl::<false>(&f, &mut b);
            proptest::prop_assert_eq!(&ra, &rb);
            if ra.is_ok() {
                proptest::prop_assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn four_tags_are_too_many() {
        let mut f = vec![0u8; 12];
        for _ in 0..4 {
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x01]);
        }
        f.extend_from_slice(&[0x88, 0xb5, 0, 0]);
        let e = parse(&f).unwrap_err();
        assert_eq!(e.kind, ErrorKind::TooManyTags);
        assert_eq!(e.offset, 24);
        f.drain(12..16);
        assert_eq!(parse(&f).unwrap().tags.len(), 3);
    }
}
