//! IPv4 header (RFC 791 §3.1): view with checksum verification and
//! incremental updates (RFC 1624) for the fields the forwarder rewrites —
//! DSCP and TTL — and [`Ipv4Repr`], the building side.
//!
//! `Ipv4Packet::new_checked` guarantees: version 4, IHL ≥ 5, the header
//! (with options) fits, and `ihl*4 ≤ total length ≤ buffer length`. After
//! it no accessor panics. `Ipv4Repr::emit` checks the buffer and the total
//! length before writing and never panics.

use super::checksum;
use super::error::{ErrorKind, Layer, WireError};
use super::{emit_area, get_u16, set_u16, Dscp};
use std::net::Ipv4Addr;

/// Byte offsets of the IPv4 header fields.
pub mod field {
    use crate::wire::Field;
    /// Version (4 bits) and IHL (4 bits).
    pub const VER_IHL: usize = 0;
    /// DSCP (6 bits) and ECN (2 bits).
    pub const TOS: usize = 1;
    /// Total length.
    pub const TOTAL_LEN: Field = 2..4;
    /// Identification.
    pub const IDENT: Field = 4..6;
    /// Flags (3 bits) and fragment offset (13 bits).
    pub const FLAGS_FRAG: Field = 6..8;
    /// Time to live.
    pub const TTL: usize = 8;
    /// Protocol.
    pub const PROTOCOL: usize = 9;
    /// Header checksum.
    pub const CHECKSUM: Field = 10..12;
    /// Source address.
    pub const SRC: Field = 12..16;
    /// Destination address.
    pub const DST: Field = 16..20;
}

/// Bits of the flags-and-fragment-offset word (RFC 791 §3.1).
pub mod flags {
    /// Don't fragment.
    pub const DONT_FRAG: u16 = 0x4000;
    /// More fragments.
    pub const MORE_FRAGS: u16 = 0x2000;
    /// The fragment offset, in 8-byte units.
    pub const OFFSET_MASK: u16 = 0x1fff;
}

/// Minimum IPv4 header length.
pub const MIN_HEADER_LEN: usize = 20;

/// Largest total length the header can announce.
pub const MAX_TOTAL_LEN: usize = u16::MAX as usize;

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
        let version = b[field::VER_IHL] >> 4;
        if version != 4 {
            return Err(WireError::new(
                Layer::Ipv4,
                offset,
                ErrorKind::BadVersion(version),
            ));
        }
        let ihl = b[field::VER_IHL] & 0x0f;
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
        let total = get_u16(b, field::TOTAL_LEN);
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
        (self.b()[field::VER_IHL] & 0x0f) as usize * 4
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
        get_u16(self.b(), field::TOTAL_LEN)
    }

    /// Identification field.
    pub fn ident(&self) -> u16 {
        get_u16(self.b(), field::IDENT)
    }

    #[inline]
    fn flags_frag(&self) -> u16 {
        get_u16(self.b(), field::FLAGS_FRAG)
    }

    /// Don't-fragment flag.
    pub fn dont_frag(&self) -> bool {
        self.flags_frag() & flags::DONT_FRAG != 0
    }

    /// More-fragments flag.
    pub fn more_frags(&self) -> bool {
        self.flags_frag() & flags::MORE_FRAGS != 0
    }

    /// Fragment offset in 8-byte units.
    pub fn frag_offset(&self) -> u16 {
        self.flags_frag() & flags::OFFSET_MASK
    }

    /// True if this is any fragment of a larger datagram.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.flags_frag() & (flags::MORE_FRAGS | flags::OFFSET_MASK) != 0
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
        get_u16(self.b(), field::CHECKSUM)
    }

    /// Source address.
    pub fn src(&self) -> Ipv4Addr {
        addr_at(self.b(), field::SRC.start)
    }

    /// Destination address.
    pub fn dst(&self) -> Ipv4Addr {
        addr_at(self.b(), field::DST.start)
    }

    /// True if the header checksum is correct. A header without options
    /// (the common case, checked per routed packet) is summed as ten
    /// fixed words that the compiler unrolls.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        let b = self.b();
        if let Some(h) = b.first_chunk::<MIN_HEADER_LEN>() {
            if h[field::VER_IHL] & 0x0f == 5 {
                let mut acc = 0u32;
                for w in h.chunks_exact(2) {
                    acc += u32::from(u16::from_be_bytes([w[0], w[1]]));
                }
                return checksum::fold(acc) == 0xffff;
            }
        }
        checksum::fold(checksum::sum(&b[..self.header_len()], 0)) == 0xffff
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
        // The TOS byte shares its 16-bit checksum word with VER_IHL.
        let old_word = u16::from_be_bytes([b[field::VER_IHL], b[field::TOS]]);
        let tos = (dscp.get() << 2) | (b[field::TOS] & 3);
        if tos == b[field::TOS] {
            return;
        }
        b[field::TOS] = tos;
        let new_word = u16::from_be_bytes([b[field::VER_IHL], tos]);
        let hc = checksum::update16(get_u16(b, field::CHECKSUM), old_word, new_word);
        set_u16(b, field::CHECKSUM, hc);
    }

    /// Set the TTL and patch the checksum incrementally.
    #[inline]
    pub fn set_ttl(&mut self, ttl: u8) {
        let b = self.b_mut();
        // TTL shares its 16-bit checksum word with PROTOCOL.
        let old_word = u16::from_be_bytes([b[field::TTL], b[field::PROTOCOL]]);
        b[field::TTL] = ttl;
        let new_word = u16::from_be_bytes([ttl, b[field::PROTOCOL]]);
        let hc = checksum::update16(get_u16(b, field::CHECKSUM), old_word, new_word);
        set_u16(b, field::CHECKSUM, hc);
    }

    /// The payload up to the total length, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (start, end) = (self.header_len(), self.total_len() as usize);
        &mut self.b_mut()[start..end]
    }

    /// Recompute the header checksum from scratch.
    pub fn fill_checksum(&mut self) {
        let hl = self.header_len();
        let b = self.b_mut();
        set_u16(b, field::CHECKSUM, 0);
        let c = checksum::checksum(&b[..hl]);
        set_u16(b, field::CHECKSUM, c);
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

fn addr_at(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

/// An IPv4 header without options, as values. Fragments are not
/// represented: `emit` writes offset 0 and more-fragments clear.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Protocol of the payload (`l4::protocol`).
    pub protocol: u8,
    /// Bytes after the header (total length − header length).
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// The TOS byte: DSCP (6 bits) and ECN (2 bits), RFC 2474 / RFC 3168.
    pub tos: u8,
    /// Identification.
    pub ident: u16,
    /// The don't-fragment flag.
    pub dont_frag: bool,
}

impl Ipv4Repr {
    /// The header a checked view holds. Options are skipped (the payload
    /// starts after them); the fragment offset and more-fragments flag are
    /// not kept.
    pub fn parse<T: AsRef<[u8]>>(p: &Ipv4Packet<T>) -> Ipv4Repr {
        Ipv4Repr {
            src: p.src(),
            dst: p.dst(),
            protocol: p.protocol(),
            payload_len: p.total_len() as usize - p.header_len(),
            ttl: p.ttl(),
            tos: p.tos(),
            ident: p.ident(),
            dont_frag: p.dont_frag(),
        }
    }

    /// Bytes of the header `emit` writes: [`MIN_HEADER_LEN`].
    pub const fn header_len(&self) -> usize {
        MIN_HEADER_LEN
    }

    /// Bytes of the whole packet: header and payload.
    pub const fn buffer_len(&self) -> usize {
        MIN_HEADER_LEN + self.payload_len
    }

    /// Write the 20-byte header, checksum included (RFC 791 §3.1: the
    /// one's complement of the one's complement sum of the header's
    /// 16-bit words), at the start of `buf`. The payload is the caller's.
    /// Errors when `buf` is shorter than 20 bytes or the total length
    /// exceeds 65535.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let total = self.buffer_len();
        if total > MAX_TOTAL_LEN {
            return Err(WireError::new(
                Layer::Ipv4,
                0,
                ErrorKind::TooBig {
                    max: MAX_TOTAL_LEN - MIN_HEADER_LEN,
                    value: self.payload_len,
                },
            ));
        }
        let b = emit_area(buf, Layer::Ipv4, MIN_HEADER_LEN)?;
        b[field::VER_IHL] = 0x45;
        b[field::TOS] = self.tos;
        set_u16(b, field::TOTAL_LEN, total as u16);
        set_u16(b, field::IDENT, self.ident);
        let flags = if self.dont_frag { flags::DONT_FRAG } else { 0 };
        set_u16(b, field::FLAGS_FRAG, flags);
        b[field::TTL] = self.ttl;
        b[field::PROTOCOL] = self.protocol;
        set_u16(b, field::CHECKSUM, 0);
        b[field::SRC].copy_from_slice(&self.src.octets());
        b[field::DST].copy_from_slice(&self.dst.octets());
        let c = checksum::checksum(b);
        set_u16(b, field::CHECKSUM, c);
        Ok(MIN_HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

    fn header_repr() -> Ipv4Repr {
        Ipv4Repr {
            src: Ipv4Addr::new(192, 0, 2, 1),
            dst: Ipv4Addr::new(198, 51, 100, 1),
            protocol: 17,
            payload_len: 8,
            ttl: 64,
            tos: 0xb9,
            ident: 0x1234,
            dont_frag: true,
        }
    }

    #[test]
    fn repr_take_apart_and_build() {
        let h = header();
        let p = Ipv4Packet::new_checked(&h[..], 0).unwrap();
        assert_eq!(Ipv4Repr::parse(&p), header_repr());
        let mut buf = [0u8; 28];
        buf[20..].copy_from_slice(&h[20..]);
        assert_eq!(header_repr().emit(&mut buf), Ok(20));
        assert_eq!(buf, h);
        for n in 0..20 {
            assert!(header_repr().emit(&mut buf[..n]).is_err());
        }
        let too_big = Ipv4Repr {
            payload_len: 65516,
            ..header_repr()
        };
        let e = too_big.emit(&mut buf).unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::TooBig {
                max: 65515,
                value: 65516
            }
        );
    }

    fn arb_repr() -> impl Strategy<Value = Ipv4Repr> {
        (
            any::<[u8; 4]>(),
            any::<[u8; 4]>(),
            any::<u8>(),
            0usize..=65515,
            any::<u8>(),
            any::<u8>(),
            any::<u16>(),
            any::<bool>(),
        )
            .prop_map(
                |(s, d, protocol, payload_len, ttl, tos, ident, dont_frag)| Ipv4Repr {
                    src: s.into(),
                    dst: d.into(),
                    protocol,
                    payload_len,
                    ttl,
                    tos,
                    ident,
                    dont_frag,
                },
            )
    }

    proptest! {
        #[test]
        fn parse_emit_round_trip(r in arb_repr()) {
            let mut buf = vec![0u8; r.buffer_len()];
            prop_assert_eq!(r.emit(&mut buf), Ok(20));
            let p = Ipv4Packet::new_checked(&buf[..], 0).unwrap();
            prop_assert!(p.verify_checksum());
            prop_assert_eq!(Ipv4Repr::parse(&p), r);
        }

        /// etherparse builds the same 20 bytes from the same values.
        #[test]
        fn same_bytes_as_etherparse(r in arb_repr()) {
            let mut ours = [0u8; 20];
            prop_assert_eq!(r.emit(&mut ours), Ok(20));
            let mut theirs = etherparse::Ipv4Header::new(
                r.payload_len as u16,
                r.ttl,
                etherparse::IpNumber(r.protocol),
                r.src.octets(),
                r.dst.octets(),
            )
            .unwrap();
            theirs.dscp = etherparse::IpDscp::try_new(r.tos >> 2).unwrap();
            theirs.ecn = etherparse::IpEcn::try_new(r.tos & 3).unwrap();
            theirs.identification = r.ident;
            theirs.dont_fragment = r.dont_frag;
            theirs.header_checksum = theirs.calc_header_checksum();
            prop_assert_eq!(&ours[..], &theirs.to_bytes()[..]);
        }
    }
}
