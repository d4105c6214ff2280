//! IPv4 header view (RFC 791) with checksum verification and incremental
//! updates (RFC 1624) for the fields the forwarder rewrites: DSCP and TTL.
//!
//! `Ipv4Packet::new_checked` guarantees: version 4, IHL ≥ 5, the header
//! (with options) fits, and `ihl*4 ≤ total length ≤ buffer length`. After
//! it no accessor panics.

use super::checksum;
use super::error::{ErrorKind, Layer, WireError};
use super::Dscp;
use std::net::Ipv4Addr;

/// Byte offsets of the IPv4 header fields.
pub mod field {
    /// Version (4 bits) and IHL (4 bits).
    pub const VER_IHL: usize = 0;
    /// DSCP (6 bits) and ECN (2 bits).
    pub const TOS: usize = 1;
    /// Total length.
    pub const TOTAL_LEN: core::ops::Range<usize> = 2..4;
    /// Identification.
    pub const IDENT: core::ops::Range<usize> = 4..6;
    /// Flags (3 bits) and fragment offset (13 bits).
    pub const FLAGS_FRAG: core::ops::Range<usize> = 6..8;
    /// Time to live.
    pub const TTL: usize = 8;
    /// Protocol.
    pub const PROTOCOL: usize = 9;
    /// Header checksum.
    pub const CHECKSUM: core::ops::Range<usize> = 10..12;
    /// Source address.
    pub const SRC: core::ops::Range<usize> = 12..16;
    /// Destination address.
    pub const DST: core::ops::Range<usize> = 16..20;
}

/// Minimum IPv4 header length.
pub const MIN_HEADER_LEN: usize = 20;

/// A checked view of an IPv4 packet.
#[derive(Debug, Clone, Copy)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wrap without checks.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wrap after the checks listed in the module header. `offset` is the
    /// position of this header in the frame, used only in errors.
    pub fn new_checked(buffer: T, offset: usize) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(WireError::truncated(
                Layer::Ipv4,
                offset,
                MIN_HEADER_LEN,
                b.len(),
            ));
        }
        let version = b[0] >> 4;
        if version != 4 {
            return Err(WireError::new(
                Layer::Ipv4,
                offset,
                ErrorKind::BadVersion(version),
            ));
        }
        let ihl = b[0] & 0x0f;
        if ihl < 5 {
            return Err(WireError::new(
                Layer::Ipv4,
                offset,
                ErrorKind::BadHeaderLen(ihl),
            ));
        }
        let hlen = ihl as usize * 4;
        if b.len() < hlen {
            return Err(WireError::truncated(Layer::Ipv4, offset, hlen, b.len()));
        }
        let total = u16::from_be_bytes([b[2], b[3]]);
        if (total as usize) < hlen {
            return Err(WireError::new(
                Layer::Ipv4,
                offset,
                ErrorKind::BadTotalLen(total),
            ));
        }
        if total as usize > b.len() {
            return Err(WireError::truncated(
                Layer::Ipv4,
                offset,
                total as usize,
                b.len(),
            ));
        }
        Ok(Ipv4Packet { buffer })
    }

    #[inline(always)]
    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Header length in bytes (IHL × 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        (self.b()[0] & 0x0f) as usize * 4
    }

    /// The TOS byte (DSCP and ECN).
    #[inline]
    pub fn tos(&self) -> u8 {
        self.b()[field::TOS]
    }

    /// DSCP.
    #[inline]
    pub fn dscp(&self) -> Dscp {
        Dscp::from_tos(self.tos())
    }

    /// ECN codepoint (2 bits).
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.tos() & 3
    }

    /// Total length field.
    #[inline]
    pub fn total_len(&self) -> u16 {
        u16::from_be_bytes([self.b()[2], self.b()[3]])
    }

    /// Identification field.
    pub fn ident(&self) -> u16 {
        u16::from_be_bytes([self.b()[4], self.b()[5]])
    }

    /// Don't-fragment flag.
    pub fn dont_frag(&self) -> bool {
        self.b()[6] & 0x40 != 0
    }

    /// More-fragments flag.
    pub fn more_frags(&self) -> bool {
        self.b()[6] & 0x20 != 0
    }

    /// Fragment offset in 8-byte units.
    pub fn frag_offset(&self) -> u16 {
        u16::from_be_bytes([self.b()[6] & 0x1f, self.b()[7]])
    }

    /// True if this is any fragment of a larger datagram.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        let b = self.b();
        (b[6] & 0x3f) != 0 || b[7] != 0
    }

    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.b()[field::TTL]
    }

    /// Protocol number.
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.b()[field::PROTOCOL]
    }

    /// Header checksum field.
    pub fn checksum(&self) -> u16 {
        u16::from_be_bytes([self.b()[10], self.b()[11]])
    }

    /// Source address.
    pub fn src(&self) -> Ipv4Addr {
        let b = self.b();
        Ipv4Addr::new(b[12], b[13], b[14], b[15])
    }

    /// Destination address.
    pub fn dst(&self) -> Ipv4Addr {
        let b = self.b();
        Ipv4Addr::new(b[16], b[17], b[18], b[19])
    }

    /// True if the header checksum is correct.
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(&self.b()[..self.header_len()], 0)) == 0xffff
    }

    /// The options bytes (may be empty).
    pub fn options(&self) -> &[u8] {
        &self.b()[MIN_HEADER_LEN..self.header_len()]
    }

    /// The payload up to the total length (Ethernet padding excluded).
    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len()..self.total_len() as usize]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    #[inline(always)]
    fn b_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Set the DSCP, keeping ECN, and patch the checksum incrementally.
    #[inline(always)]
    pub fn set_dscp(&mut self, dscp: Dscp) {
        let b = self.b_mut();
        let old_word = u16::from_be_bytes([b[0], b[1]]);
        let tos = (dscp.get() << 2) | (b[1] & 3);
        if tos == b[1] {
            return;
        }
        b[1] = tos;
        let new_word = u16::from_be_bytes([b[0], b[1]]);
        let hc = u16::from_be_bytes([b[10], b[11]]);
        let hc = checksum::update16(hc, old_word, new_word);
        b[10..12].copy_from_slice(&hc.to_be_bytes());
    }

    /// Set the TTL and patch the checksum incrementally.
    #[inline]
    pub fn set_ttl(&mut self, ttl: u8) {
        let b = self.b_mut();
        let old_word = u16::from_be_bytes([b[8], b[9]]);
        b[8] = ttl;
        let new_word = u16::from_be_bytes([b[8], b[9]]);
        let hc = u16::from_be_bytes([b[10], b[11]]);
        let hc = checksum::update16(hc, old_word, new_word);
        b[10..12].copy_from_slice(&hc.to_be_bytes());
    }

    /// Recompute the header checksum from scratch.
    pub fn fill_checksum(&mut self) {
        let hl = self.header_len();
        let b = self.b_mut();
        b[10] = 0;
        b[11] = 0;
        let c = checksum::checksum(&b[..hl]);
        b[10..12].copy_from_slice(&c.to_be_bytes());
    }

    /// Set the source address (checksum not updated; call `fill_checksum`).
    pub fn set_src(&mut self, a: Ipv4Addr) {
        self.b_mut()[field::SRC].copy_from_slice(&a.octets());
    }

    /// Set the destination address (checksum not updated).
    pub fn set_dst(&mut self, a: Ipv4Addr) {
        self.b_mut()[field::DST].copy_from_slice(&a.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 192.0.2.1 -> 198.51.100.1, UDP, TTL 64, TOS 0xb9 (EF + ECN 01), total 28.
    static HEADER: [u8; 28] = [
        0x45, 0xb9, 0x00, 0x1c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 192, 0, 2, 1, 198,
        51, 100, 1, 0x30, 0x39, 0xd4, 0x31, 0x00, 0x08, 0x00, 0x00,
    ];

    fn header() -> [u8; 28] {
        let mut h = HEADER;
        let c = checksum::checksum(&h[..20]);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h
    }

    #[test]
    fn take_apart() {
        let h = header();
        let p = Ipv4Packet::new_checked(&h[..], 0).unwrap();
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.dscp(), Dscp::EF);
        assert_eq!(p.ecn(), 1);
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), 17);
        assert!(p.dont_frag());
        assert!(!p.is_fragment());
        assert_eq!(p.src(), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(p.dst(), Ipv4Addr::new(198, 51, 100, 1));
        assert!(p.verify_checksum());
        assert_eq!(p.payload().len(), 8);
    }

    #[test]
    fn rejects_bad_headers() {
        let mut h = header();
        assert!(Ipv4Packet::new_checked(&h[..19], 0).is_err());
        h[0] = 0x44;
        assert!(Ipv4Packet::new_checked(&h[..], 0).is_err());
        h[0] = 0x65;
        assert!(Ipv4Packet::new_checked(&h[..], 0).is_err());
        let mut h = header();
        h[3] = 40; // total length beyond the buffer
        assert!(Ipv4Packet::new_checked(&h[..], 0).is_err());
    }

    #[test]
    fn set_dscp_keeps_ecn_and_checksum() {
        let mut h = header();
        let mut p = Ipv4Packet::new_checked(&mut h[..], 0).unwrap();
        p.set_dscp(Dscp::CS0);
        assert_eq!(p.tos(), 0x01);
        assert!(p.verify_checksum());
        p.set_ttl(1);
        assert!(p.verify_checksum());
    }
}
