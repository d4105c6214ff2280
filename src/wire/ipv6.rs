//! IPv6 fixed header view (RFC 8200 §3) and the extension-header walk.
//!
//! The traffic class spans two bytes: the low nibble of byte 0 and the
//! high nibble of byte 1. `Ipv6Packet::new_checked` guarantees version 6,
//! 40 bytes, and `40 + payload length ≤ buffer length`.

use super::error::{ErrorKind, Layer, WireError};
use super::Dscp;
use std::net::Ipv6Addr;

/// Length of the fixed header.
pub const HEADER_LEN: usize = 40;

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
        let version = b[0] >> 4;
        if version != 6 {
            return Err(WireError::new(
                Layer::Ipv6,
                offset,
                ErrorKind::BadVersion(version),
            ));
        }
        let plen = u16::from_be_bytes([b[4], b[5]]) as usize;
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
        let b = self.b();
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
        let b = self.b();
        u32::from_be_bytes([0, b[1] & 0x0f, b[2], b[3]])
    }

    /// Payload length field.
    pub fn payload_len(&self) -> u16 {
        u16::from_be_bytes([self.b()[4], self.b()[5]])
    }

    /// Next header of the fixed header.
    pub fn next_header(&self) -> u8 {
        self.b()[6]
    }

    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.b()[7]
    }

    /// Source address.
    pub fn src(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.b()[8..24]);
        Ipv6Addr::from(a)
    }

    /// Destination address.
    pub fn dst(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.b()[24..40]);
        Ipv6Addr::from(a)
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
        let b = self.buffer.as_mut();
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
        self.buffer.as_mut()[7] = h;
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
}
