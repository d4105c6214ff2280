//! IPv6 fixed header (RFC 8200 §3): view, the extension-header walk, and
//! [`Ipv6Repr`], the building side.
//!
//! The traffic class spans two bytes: the low nibble of byte 0 and the
//! high nibble of byte 1. `Ipv6Packet::new_checked` guarantees version 6,
//! 40 bytes, and `40 + payload length ≤ buffer length`; after it no
//! accessor panics. `Ipv6Repr::emit` checks the buffer, the payload length
//! and the flow label before writing and never panics.

use super::error::{ErrorKind, Layer, WireError};
use super::{emit_area, get_u16, set_u16, Dscp};
use std::net::Ipv6Addr;

/// Byte offsets of the fixed header's fields (RFC 8200 §3).
pub mod field {
    use crate::wire::Field;
    /// Version (4 bits), traffic class (8), flow label (20).
    pub const VER_TC_FLOW: Field = 0..4;
    /// Payload length.
    pub const PAYLOAD_LEN: Field = 4..6;
    /// Next header.
    pub const NEXT_HEADER: usize = 6;
    /// Hop limit.
    pub const HOP_LIMIT: usize = 7;
    /// Source address.
    pub const SRC: Field = 8..24;
    /// Destination address.
    pub const DST: Field = 24..40;
}

/// Length of the fixed header.
pub const HEADER_LEN: usize = 40;

/// Largest flow label (20 bits).
pub const MAX_FLOW_LABEL: u32 = 0x000f_ffff;

/// Largest payload length the header can announce (no jumbograms).
pub const MAX_PAYLOAD_LEN: usize = u16::MAX as usize;

/// The all-nodes link-local multicast group (RFC 4291 §2.7.1).
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// The solicited-node multicast address of `target` (RFC 4291 §2.7.1):
/// ff02::1:ff00:0/104 and the low 24 bits of `target`.
pub const fn solicited_node(target: &Ipv6Addr) -> Ipv6Addr {
    let [.., a, b, c] = target.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | a as u16,
        (b as u16) << 8 | c as u16,
    )
}

/// Most extension headers [`upper_layer`] walks before giving up.
pub const MAX_EXTENSIONS: usize = 8;

/// IPv6 extension header numbers xconnect walks (RFC 8200 §4, RFC 4302).
pub mod next_header {
    /// Hop-by-hop options.
    pub const HOP_BY_HOP: u8 = 0;
    /// Routing header.
    pub const ROUTING: u8 = 43;
    /// Fragment header.
    pub const FRAGMENT: u8 = 44;
    /// Authentication header.
    pub const AUTH: u8 = 51;
    /// Destination options.
    pub const DEST_OPTS: u8 = 60;
    /// Mobility header (RFC 6275).
    pub const MOBILITY: u8 = 135;
    /// Host identity protocol (RFC 7401).
    pub const HIP: u8 = 139;
    /// Shim6 (RFC 5533).
    pub const SHIM6: u8 = 140;
    /// Experimental (RFC 3692).
    pub const EXP1: u8 = 253;
    /// Experimental (RFC 3692).
    pub const EXP2: u8 = 254;
}

/// A checked view of an IPv6 packet.
#[derive(Debug, Clone, Copy)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wrap without checks.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Wrap after the checks in the module header; `offset` only for errors.
    pub fn new_checked(buffer: T, offset: usize) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::truncated(
                Layer::Ipv6,
                offset,
                HEADER_LEN,
                b.len(),
            ));
        }
        let version = b[field::VER_TC_FLOW.start] >> 4;
        if version != 6 {
            return Err(WireError::new(
                Layer::Ipv6,
                offset,
                ErrorKind::BadVersion(version),
            ));
        }
        let plen = get_u16(b, field::PAYLOAD_LEN) as usize;
        if HEADER_LEN + plen > b.len() {
            return Err(WireError::truncated(
                Layer::Ipv6,
                offset,
                HEADER_LEN + plen,
                b.len(),
            ));
        }
        Ok(Ipv6Packet { buffer })
    }

    #[inline(always)]
    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Traffic class (DSCP and ECN), assembled from its two nibbles.
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        let b = &self.b()[field::VER_TC_FLOW];
        (b[0] << 4) | (b[1] >> 4)
    }

    /// DSCP.
    #[inline]
    pub fn dscp(&self) -> Dscp {
        Dscp::from_tos(self.traffic_class())
    }

    /// ECN codepoint.
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.traffic_class() & 3
    }

    /// Flow label (20 bits).
    pub fn flow_label(&self) -> u32 {
        let b = &self.b()[field::VER_TC_FLOW];
        u32::from_be_bytes([0, b[1] & 0x0f, b[2], b[3]])
    }

    /// Payload length field.
    pub fn payload_len(&self) -> u16 {
        get_u16(self.b(), field::PAYLOAD_LEN)
    }

    /// Next header of the fixed header.
    pub fn next_header(&self) -> u8 {
        self.b()[field::NEXT_HEADER]
    }

    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.b()[field::HOP_LIMIT]
    }

    /// Source address.
    pub fn src(&self) -> Ipv6Addr {
        addr_at(self.b(), field::SRC)
    }

    /// Destination address.
    pub fn dst(&self) -> Ipv6Addr {
        addr_at(self.b(), field::DST)
    }

    /// The payload (extension headers and upper layer), padding excluded.
    pub fn payload(&self) -> &[u8] {
        &self.b()[HEADER_LEN..HEADER_LEN + self.payload_len() as usize]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Set the traffic class across its two bytes.
    #[inline]
    pub fn set_traffic_class(&mut self, tc: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_TC_FLOW];
        b[0] = 0x60 | (tc >> 4);
        b[1] = (tc << 4) | (b[1] & 0x0f);
    }

    /// Set the DSCP, keeping ECN.
    #[inline]
    pub fn set_dscp(&mut self, dscp: Dscp) {
        let tc = (dscp.get() << 2) | self.ecn();
        self.set_traffic_class(tc);
    }

    /// Set the hop limit.
    pub fn set_hop_limit(&mut self, h: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = h;
    }

    /// The payload (extension headers and upper layer), writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = HEADER_LEN + self.payload_len() as usize;
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }

    /// Set the source address.
    pub fn set_src(&mut self, a: &Ipv6Addr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.octets());
    }

    /// Set the destination address.
    pub fn set_dst(&mut self, a: &Ipv6Addr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.octets());
    }
}

fn addr_at(b: &[u8], f: crate::wire::Field) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[f]);
    Ipv6Addr::from(a)
}

/// An IPv6 fixed header, as values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv6Repr {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Next header (an extension header or the upper-layer protocol).
    pub next_header: u8,
    /// Bytes after the fixed header.
    pub payload_len: usize,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class: DSCP (6 bits) and ECN (2 bits), RFC 2474 / RFC 3168.
    pub traffic_class: u8,
    /// Flow label, 20 bits (RFC 6437).
    pub flow_label: u32,
}

impl Ipv6Repr {
    /// The fixed header a checked view holds.
    pub fn parse<T: AsRef<[u8]>>(p: &Ipv6Packet<T>) -> Ipv6Repr {
        Ipv6Repr {
            src: p.src(),
            dst: p.dst(),
            next_header: p.next_header(),
            payload_len: p.payload_len() as usize,
            hop_limit: p.hop_limit(),
            traffic_class: p.traffic_class(),
            flow_label: p.flow_label(),
        }
    }

    /// Bytes of the header `emit` writes: [`HEADER_LEN`].
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Bytes of the whole packet: header and payload.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Write the 40-byte fixed header at the start of `buf`. Errors when
    /// `buf` is shorter, the payload length exceeds 65535 or the flow
    /// label 20 bits.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let too_big = |max: usize, value: usize| {
            WireError::new(Layer::Ipv6, 0, ErrorKind::TooBig { max, value })
        };
        if self.payload_len > MAX_PAYLOAD_LEN {
            return Err(too_big(MAX_PAYLOAD_LEN, self.payload_len));
        }
        if self.flow_label > MAX_FLOW_LABEL {
            return Err(too_big(MAX_FLOW_LABEL as usize, self.flow_label as usize));
        }
        let b = emit_area(buf, Layer::Ipv6, HEADER_LEN)?;
        let word = 6 << 28 | (self.traffic_class as u32) << 20 | self.flow_label;
        b[field::VER_TC_FLOW].copy_from_slice(&word.to_be_bytes());
        set_u16(b, field::PAYLOAD_LEN, self.payload_len as u16);
        b[field::NEXT_HEADER] = self.next_header;
        b[field::HOP_LIMIT] = self.hop_limit;
        b[field::SRC].copy_from_slice(&self.src.octets());
        b[field::DST].copy_from_slice(&self.dst.octets());
        Ok(HEADER_LEN)
    }
}

/// Where the upper-layer protocol starts after the extension headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpperLayer {
    /// Upper-layer protocol number (6 TCP, 17 UDP, 58 ICMPv6, 59 none…).
    pub protocol: u8,
    /// Offset of the upper-layer header from the start of the IPv6 payload.
    pub offset: usize,
    /// True if a fragment header makes this a fragment of a larger packet
    /// (offset ≠ 0 or more-fragments set; an atomic fragment, RFC 6946, is
    /// not one).
    pub fragmented: bool,
}

/// True for the next-header values that are walked as extension headers:
/// hop-by-hop, routing, fragment, destination options and AH — the set
/// Linux's `ipv6_ext_hdr()` and etherparse walk. Mobility, HIP, Shim6 and
/// the experimental values end the walk (they are the upper layer here), so
/// every flow hash and port read agrees with the kernel's view of the packet.
#[inline]
pub const fn is_extension(nh: u8) -> bool {
    use next_header::*;
    matches!(nh, HOP_BY_HOP | ROUTING | FRAGMENT | AUTH | DEST_OPTS)
}

/// Length of the IP authentication header at the start of `rest` (RFC 4302
/// §2.2: payload length in 4-octet units, minus 2). It is at least 12 bytes
/// (next header, length, reserved, SPI, sequence number, and a non-empty
/// ICV length field ≥ 1), as etherparse requires. `at` is the frame offset
/// for errors.
pub fn auth_header_len(rest: &[u8], at: usize) -> Result<usize, WireError> {
    if rest.len() < 12 {
        return Err(WireError::truncated(Layer::IpAuth, at, 12, rest.len()));
    }
    if rest[1] == 0 {
        return Err(WireError::new(
            Layer::IpAuth,
            at,
            ErrorKind::BadHeaderLen(0),
        ));
    }
    let len = (rest[1] as usize + 2) * 4;
    if rest.len() < len {
        return Err(WireError::truncated(Layer::IpAuth, at, len, rest.len()));
    }
    Ok(len)
}

/// Walk the extension headers of `payload` (the bytes after the fixed header)
/// starting with `first` as next header. `base` is the frame offset of
/// `payload`, used only in errors.
pub fn upper_layer(first: u8, payload: &[u8], base: usize) -> Result<UpperLayer, WireError> {
    let mut nh = first;
    let mut off = 0usize;
    let mut fragmented = false;
    for _ in 0..=MAX_EXTENSIONS {
        if !is_extension(nh) {
            return Ok(UpperLayer {
                protocol: nh,
                offset: off,
                fragmented,
            });
        }
        let rest = payload.get(off..).unwrap_or(&[]);
        if rest.len() < 8 {
            return Err(WireError::truncated(
                Layer::Ipv6Ext,
                base + off,
                8,
                rest.len(),
            ));
        }
        let len = match nh {
            next_header::FRAGMENT => {
                // Offset (13 bits) and M flag: bytes 2-3, RFC 8200 §4.5.
                fragmented |= u16::from_be_bytes([rest[2], rest[3]]) & 0xfff9 != 0;
                8
            }
            next_header::AUTH => auth_header_len(rest, base + off)?,
            _ => (rest[1] as usize + 1) * 8,
        };
        if rest.len() < len {
            return Err(WireError::truncated(
                Layer::Ipv6Ext,
                base + off,
                len,
                rest.len(),
            ));
        }
        nh = rest[0];
        off += len;
    }
    Err(WireError::new(
        Layer::Ipv6Ext,
        base + off,
        ErrorKind::TooManyExtensions,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn packet(tc: u8, nh: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        p[0] = 0x60 | (tc >> 4);
        p[1] = tc << 4 | 0x0a;
        p[2] = 0xbc;
        p[3] = 0xde;
        p[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
        p[6] = nh;
        p[7] = 64;
        p[8..24].copy_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        p[24..40].copy_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn traffic_class_spans_two_bytes() {
        let mut p = packet(0xb9, 17, &[0; 8]);
        let mut v = Ipv6Packet::new_checked(&mut p[..], 0).unwrap();
        assert_eq!(v.traffic_class(), 0xb9);
        assert_eq!(v.dscp(), Dscp::EF);
        assert_eq!(v.ecn(), 1);
        assert_eq!(v.flow_label(), 0xabcde);
        v.set_dscp(Dscp::AF41);
        assert_eq!(v.traffic_class(), (34 << 2) | 1);
        assert_eq!(v.flow_label(), 0xabcde);
        assert_eq!(v.src(), "2001:db8::1".parse::<Ipv6Addr>().unwrap());
    }

    #[test]
    fn walks_extension_headers() {
        // hop-by-hop (8 bytes) -> fragment (8 bytes) -> UDP
        let mut pl = vec![44, 0, 1, 4, 0, 0, 0, 0];
        pl.extend_from_slice(&[17, 0, 0, 1, 0, 0, 0, 1]); // M set
        pl.extend_from_slice(&[0; 8]);
        let p = packet(0, 0, &pl);
        let v = Ipv6Packet::new_checked(&p[..], 0).unwrap();
        let ul = upper_layer(v.next_header(), v.payload(), 40).unwrap();
        assert_eq!(
            ul,
            UpperLayer {
                protocol: 17,
                offset: 16,
                fragmented: true
            }
        );
        let mut atomic = pl.clone();
        atomic[11] = 0; // offset 0, M clear: an atomic fragment
        assert!(!upper_layer(0, &atomic, 40).unwrap().fragmented);
        assert!(upper_layer(0, &pl[..4], 40).is_err());
    }

    /// 2001:db8::1 -> 2001:db8::2, traffic class 0xb9 (EF, ECN 01), flow
    /// label 0xabcde, UDP, 8 bytes of payload, hop limit 64.
    static HEADER: [u8; 40] = [
        0x6b, 0x9a, 0xbc, 0xde, 0x00, 0x08, 17, 64, // version .. hop limit
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, // src
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, // dst
    ];

    fn header_repr() -> Ipv6Repr {
        Ipv6Repr {
            src: "2001:db8::1".parse().unwrap(),
            dst: "2001:db8::2".parse().unwrap(),
            next_header: 17,
            payload_len: 8,
            hop_limit: 64,
            traffic_class: 0xb9,
            flow_label: 0xabcde,
        }
    }

    #[test]
    fn repr_take_apart_and_build() {
        let mut p = HEADER.to_vec();
        p.extend_from_slice(&[0; 8]);
        let v = Ipv6Packet::new_checked(&p[..], 0).unwrap();
        assert_eq!(Ipv6Repr::parse(&v), header_repr());
        let mut buf = [0u8; 40];
        assert_eq!(header_repr().emit(&mut buf), Ok(40));
        assert_eq!(buf, HEADER);
        assert!(header_repr().emit(&mut buf[..39]).is_err());
        let flow = Ipv6Repr {
            flow_label: 0x10_0000,
            ..header_repr()
        };
        assert!(matches!(
            flow.emit(&mut buf).unwrap_err().kind,
            ErrorKind::TooBig { .. }
        ));
        let long = Ipv6Repr {
            payload_len: 65536,
            ..header_repr()
        };
        assert!(long.emit(&mut buf).is_err());
        assert_eq!(buf, HEADER, "a refused emit writes nothing");
    }

    #[test]
    fn solicited_node_and_all_nodes() {
        let t: Ipv6Addr = "2001:db8::abcd:1234:5678".parse().unwrap();
        assert_eq!(
            solicited_node(&t),
            "ff02::1:ff34:5678".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(ALL_NODES, "ff02::1".parse::<Ipv6Addr>().unwrap());
    }

    fn arb_repr() -> impl Strategy<Value = Ipv6Repr> {
        (
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
            any::<u8>(),
            0usize..=600,
            any::<u8>(),
            any::<u8>(),
            0u32..=MAX_FLOW_LABEL,
        )
            .prop_map(
                |(s, d, next_header, payload_len, hop_limit, traffic_class, flow_label)| Ipv6Repr {
                    src: s.into(),
                    dst: d.into(),
                    next_header,
                    payload_len,
                    hop_limit,
                    traffic_class,
                    flow_label,
                },
            )
    }

    proptest! {
        #[test]
        fn parse_emit_round_trip(r in arb_repr()) {
            let mut buf = vec![0u8; r.buffer_len()];
            prop_assert_eq!(r.emit(&mut buf), Ok(40));
            let v = Ipv6Packet::new_checked(&buf[..], 0).unwrap();
            prop_assert_eq!(Ipv6Repr::parse(&v), r);
        }

        /// etherparse builds the same 40 bytes from the same values.
        #[test]
        fn same_bytes_as_etherparse(r in arb_repr(), long in 0usize..=65535) {
            let r = Ipv6Repr { payload_len: long, ..r };
            let mut ours = [0u8; 40];
            prop_assert_eq!(r.emit(&mut ours), Ok(40));
            let theirs = etherparse::Ipv6Header {
                traffic_class: r.traffic_class,
                flow_label: etherparse::Ipv6FlowLabel::try_new(r.flow_label).unwrap(),
                payload_length: long as u16,
                next_header: etherparse::IpNumber(r.next_header),
                hop_limit: r.hop_limit,
                source: r.src.octets(),
                destination: r.dst.octets(),
            };
            prop_assert_eq!(ours, theirs.to_bytes());
        }
    }
}
