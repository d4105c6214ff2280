//! UDP (RFC 768) and TCP (RFC 9293 §3.1) headers: the views the flow hash
//! and the DSCP classifier read, their checksum fillers and checks over the
//! pseudo-header, and the building side, [`UdpRepr`] and a minimal
//! [`TcpRepr`] (no options) — what the generator writes.
//!
//! `new_checked` guarantees the whole fixed header (8 bytes UDP; TCP data
//! offset ≥ 5 and the header with its options present); after it no
//! accessor panics. The checksum methods cover the whole buffer of the
//! view: hand them exactly the datagram or segment. `emit` checks that the
//! header fits (and that the UDP length does) before writing and never
//! panics.

use super::checksum::PseudoHeader;
use super::error::{ErrorKind, Layer, WireError};
use super::{emit_area, get_u16, get_u32, set_u16, set_u32};

/// IP protocol numbers xconnect names (IANA "Assigned Internet Protocol
/// Numbers").
pub mod protocol {
    /// ICMP for IPv4.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// ICMP for IPv6.
    pub const ICMPV6: u8 = 58;
}

/// Byte offsets of the UDP and TCP header fields.
pub mod field {
    /// UDP (RFC 768, "Format").
    pub mod udp {
        use crate::wire::Field;
        /// Source port.
        pub const SRC_PORT: Field = 0..2;
        /// Destination port.
        pub const DST_PORT: Field = 2..4;
        /// Length of header and data.
        pub const LENGTH: Field = 4..6;
        /// Checksum.
        pub const CHECKSUM: Field = 6..8;
    }

    /// TCP (RFC 9293 §3.1).
    pub mod tcp {
        use crate::wire::Field;
        /// Source port.
        pub const SRC_PORT: Field = 0..2;
        /// Destination port.
        pub const DST_PORT: Field = 2..4;
        /// Sequence number.
        pub const SEQ: Field = 4..8;
        /// Acknowledgment number.
        pub const ACK: Field = 8..12;
        /// Data offset (4 bits, in 32-bit words) and reserved bits.
        pub const DATA_OFF: usize = 12;
        /// Control bits (CWR .. FIN).
        pub const FLAGS: usize = 13;
        /// Window.
        pub const WINDOW: Field = 14..16;
        /// Checksum.
        pub const CHECKSUM: Field = 16..18;
        /// Urgent pointer.
        pub const URGENT: Field = 18..20;
    }
}

/// TCP control bits (RFC 9293 §3.1, RFC 3168 §6.1 for ECE and CWR).
pub mod tcp_flags {
    /// No more data from sender.
    pub const FIN: u8 = 0x01;
    /// Synchronize sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push function.
    pub const PSH: u8 = 0x08;
    /// Acknowledgment field is significant.
    pub const ACK: u8 = 0x10;
    /// Urgent pointer field is significant.
    pub const URG: u8 = 0x20;
    /// ECN-Echo.
    pub const ECE: u8 = 0x40;
    /// Congestion window reduced.
    pub const CWR: u8 = 0x80;
}

/// UDP header length.
pub const UDP_HEADER_LEN: usize = 8;
/// Minimum TCP header length.
pub const TCP_MIN_HEADER_LEN: usize = 20;
/// Largest UDP length field (header and data).
pub const UDP_MAX_LEN: usize = u16::MAX as usize;

/// A checked view of a UDP header.
#[derive(Debug, Clone, Copy)]
pub struct UdpHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpHeader<T> {
    /// Wrap after checking 8 bytes; `offset` only for errors.
    pub fn new_checked(buffer: T, offset: usize) -> Result<Self, WireError> {
        let n = buffer.as_ref().len();
        if n < UDP_HEADER_LEN {
            return Err(WireError::truncated(Layer::Udp, offset, UDP_HEADER_LEN, n));
        }
        Ok(UdpHeader { buffer })
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::udp::SRC_PORT)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::udp::DST_PORT)
    }

    /// Length field.
    pub fn len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::udp::LENGTH)
    }

    /// True if the length field is zero (invalid for UDP, but possible on the wire).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::udp::CHECKSUM)
    }

    /// True if the checksum over `ph` and the whole buffer is correct, or
    /// absent where that is allowed (zero under IPv4, RFC 768; IPv6
    /// requires one, RFC 8200 §8.1).
    pub fn verify_checksum(&self, ph: &PseudoHeader) -> bool {
        if self.checksum() == 0 {
            return matches!(ph, PseudoHeader::V4 { .. });
        }
        ph.checksum(protocol::UDP, self.buffer.as_ref()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpHeader<T> {
    /// Compute and store the checksum over `ph` and the whole buffer. A
    /// computed zero is sent as 0xffff (RFC 768: zero means "none").
    pub fn fill_checksum(&mut self, ph: &PseudoHeader) {
        let b = self.buffer.as_mut();
        set_u16(b, field::udp::CHECKSUM, 0);
        let c = match ph.checksum(protocol::UDP, b) {
            0 => 0xffff,
            c => c,
        };
        set_u16(b, field::udp::CHECKSUM, c);
    }
}

/// A UDP header as values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UdpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Bytes of data after the header.
    pub payload_len: usize,
}

impl UdpRepr {
    /// The header a checked view holds. Errors when the length field is
    /// below 8 or runs past the buffer.
    pub fn parse<T: AsRef<[u8]>>(h: &UdpHeader<T>) -> Result<UdpRepr, WireError> {
        let len = h.len() as usize;
        if len < UDP_HEADER_LEN {
            return Err(WireError::new(
                Layer::Udp,
                0,
                ErrorKind::BadTotalLen(h.len()),
            ));
        }
        let present = h.buffer.as_ref().len();
        if len > present {
            return Err(WireError::truncated(Layer::Udp, 0, len, present));
        }
        Ok(UdpRepr {
            src_port: h.src_port(),
            dst_port: h.dst_port(),
            payload_len: len - UDP_HEADER_LEN,
        })
    }

    /// Bytes of the header: [`UDP_HEADER_LEN`].
    pub const fn header_len(&self) -> usize {
        UDP_HEADER_LEN
    }

    /// Bytes of the datagram: header and data.
    pub const fn buffer_len(&self) -> usize {
        UDP_HEADER_LEN + self.payload_len
    }

    /// Write the 8-byte header with a zero checksum at the start of `buf`
    /// ([`UdpHeader::fill_checksum`] computes it once the data is in
    /// place). Errors when `buf` is short or the length exceeds 65535.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let len = self.buffer_len();
        if len > UDP_MAX_LEN {
            return Err(WireError::new(
                Layer::Udp,
                0,
                ErrorKind::TooBig {
                    max: UDP_MAX_LEN - UDP_HEADER_LEN,
                    value: self.payload_len,
                },
            ));
        }
        let b = emit_area(buf, Layer::Udp, UDP_HEADER_LEN)?;
        set_u16(b, field::udp::SRC_PORT, self.src_port);
        set_u16(b, field::udp::DST_PORT, self.dst_port);
        set_u16(b, field::udp::LENGTH, len as u16);
        set_u16(b, field::udp::CHECKSUM, 0);
        Ok(UDP_HEADER_LEN)
    }
}

/// A checked view of a TCP header.
#[derive(Debug, Clone, Copy)]
pub struct TcpHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpHeader<T> {
    /// Wrap after checking the data offset and that the header fits.
    pub fn new_checked(buffer: T, offset: usize) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < TCP_MIN_HEADER_LEN {
            return Err(WireError::truncated(
                Layer::Tcp,
                offset,
                TCP_MIN_HEADER_LEN,
                b.len(),
            ));
        }
        let doff = b[field::tcp::DATA_OFF] >> 4;
        if doff < 5 {
            return Err(WireError::new(
                Layer::Tcp,
                offset,
                ErrorKind::BadHeaderLen(doff),
            ));
        }
        if b.len() < doff as usize * 4 {
            return Err(WireError::truncated(
                Layer::Tcp,
                offset,
                doff as usize * 4,
                b.len(),
            ));
        }
        Ok(TcpHeader { buffer })
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        get_u16(self.b(), field::tcp::SRC_PORT)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        get_u16(self.b(), field::tcp::DST_PORT)
    }

    /// Sequence number.
    pub fn seq_number(&self) -> u32 {
        get_u32(self.b(), field::tcp::SEQ)
    }

    /// Acknowledgment number.
    pub fn ack_number(&self) -> u32 {
        get_u32(self.b(), field::tcp::ACK)
    }

    /// Header length in bytes.
    pub fn header_len(&self) -> usize {
        (self.b()[field::tcp::DATA_OFF] >> 4) as usize * 4
    }

    /// The flag bits (CWR..FIN, [`tcp_flags`]).
    pub fn flags(&self) -> u8 {
        self.b()[field::tcp::FLAGS]
    }

    /// Window.
    pub fn window(&self) -> u16 {
        get_u16(self.b(), field::tcp::WINDOW)
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        get_u16(self.b(), field::tcp::CHECKSUM)
    }

    /// True if the checksum over `ph` and the whole buffer is correct.
    pub fn verify_checksum(&self, ph: &PseudoHeader) -> bool {
        ph.checksum(protocol::TCP, self.b()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpHeader<T> {
    /// Compute and store the checksum over `ph` and the whole buffer
    /// (RFC 9293 §3.1).
    pub fn fill_checksum(&mut self, ph: &PseudoHeader) {
        let b = self.buffer.as_mut();
        set_u16(b, field::tcp::CHECKSUM, 0);
        let c = ph.checksum(protocol::TCP, b);
        set_u16(b, field::tcp::CHECKSUM, c);
    }
}

/// A TCP header without options (data offset 5) as values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TcpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Control bits ([`tcp_flags`]).
    pub flags: u8,
    /// Window.
    pub window: u16,
}

impl TcpRepr {
    /// The header a checked view holds (options skipped, urgent pointer
    /// not kept).
    pub fn parse<T: AsRef<[u8]>>(h: &TcpHeader<T>) -> TcpRepr {
        TcpRepr {
            src_port: h.src_port(),
            dst_port: h.dst_port(),
            seq: h.seq_number(),
            ack: h.ack_number(),
            flags: h.flags(),
            window: h.window(),
        }
    }

    /// Bytes of the header `emit` writes: [`TCP_MIN_HEADER_LEN`].
    pub const fn header_len(&self) -> usize {
        TCP_MIN_HEADER_LEN
    }

    /// Bytes `emit` writes: [`TCP_MIN_HEADER_LEN`].
    pub const fn buffer_len(&self) -> usize {
        TCP_MIN_HEADER_LEN
    }

    /// Write the 20-byte header (data offset 5, checksum and urgent
    /// pointer zero) at the start of `buf`; [`TcpHeader::fill_checksum`]
    /// computes the checksum once the data is in place.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let b = emit_area(buf, Layer::Tcp, TCP_MIN_HEADER_LEN)?;
        set_u16(b, field::tcp::SRC_PORT, self.src_port);
        set_u16(b, field::tcp::DST_PORT, self.dst_port);
        set_u32(b, field::tcp::SEQ, self.seq);
        set_u32(b, field::tcp::ACK, self.ack);
        b[field::tcp::DATA_OFF] = 5 << 4;
        b[field::tcp::FLAGS] = self.flags;
        set_u16(b, field::tcp::WINDOW, self.window);
        set_u16(b, field::tcp::CHECKSUM, 0);
        set_u16(b, field::tcp::URGENT, 0);
        Ok(TCP_MIN_HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn udp_and_tcp() {
        let u = [0xc3, 0x50, 0x0d, 0x96, 0, 8, 0, 0];
        let h = UdpHeader::new_checked(&u[..], 34).unwrap();
        assert_eq!((h.src_port(), h.dst_port(), h.len()), (50000, 3478, 8));
        assert!(UdpHeader::new_checked(&u[..7], 34).is_err());
        let mut t = [0u8; 24];
        t[0..4].copy_from_slice(&[0, 80, 0x1f, 0x90]);
        t[12] = 6 << 4;
        t[13] = 0x12;
        let h = TcpHeader::new_checked(&t[..], 34).unwrap();
        assert_eq!(
            (h.src_port(), h.dst_port(), h.header_len(), h.flags()),
            (80, 8080, 24, 0x12)
        );
        t[12] = 4 << 4;
        assert!(TcpHeader::new_checked(&t[..], 34).is_err());
        t[12] = 7 << 4;
        assert!(TcpHeader::new_checked(&t[..], 34).is_err());
    }

    /// 192.0.2.1:50000 -> 198.51.100.1:3478, data "hi"; checksum from the
    /// RFC 768 pseudo-header summed by hand: c000 + 0201 + c633 + 6401 +
    /// 0011 + 000a (pseudo) + c350 + 0d96 + 000a + 6869 (datagram) =
    /// 0x325a9, folded 0x25ac, complement 0xda53.
    static UDP_V4: [u8; 10] = [0xc3, 0x50, 0x0d, 0x96, 0x00, 0x0a, 0xda, 0x53, b'h', b'i'];

    fn v4() -> PseudoHeader {
        PseudoHeader::V4 {
            src: Ipv4Addr::new(192, 0, 2, 1),
            dst: Ipv4Addr::new(198, 51, 100, 1),
        }
    }

    #[test]
    fn udp_take_apart_and_build() {
        let h = UdpHeader::new_checked(&UDP_V4[..], 34).unwrap();
        assert!(h.verify_checksum(&v4()));
        let r = UdpRepr::parse(&h).unwrap();
        assert_eq!(
            r,
            UdpRepr {
                src_port: 50000,
                dst_port: 3478,
                payload_len: 2
            }
        );
        let mut buf = [0u8; 10];
        buf[8..].copy_from_slice(b"hi");
        assert_eq!(r.emit(&mut buf), Ok(8));
        assert_eq!(&buf[6..8], &[0, 0], "emit leaves the checksum zero");
        UdpHeader::new_checked(&mut buf[..], 0)
            .unwrap()
            .fill_checksum(&v4());
        assert_eq!(buf, UDP_V4);
        assert!(r.emit(&mut buf[..7]).is_err());
        // Length field below the header, or past the buffer.
        let mut bad = UDP_V4;
        bad[5] = 7;
        assert!(UdpRepr::parse(&UdpHeader::new_checked(&bad[..], 0).unwrap()).is_err());
        bad[5] = 11;
        assert!(UdpRepr::parse(&UdpHeader::new_checked(&bad[..], 0).unwrap()).is_err());
        let long = UdpRepr {
            payload_len: 65528,
            ..r
        };
        assert!(matches!(
            long.emit(&mut buf).unwrap_err().kind,
            ErrorKind::TooBig { .. }
        ));
    }

    #[test]
    fn zero_udp_checksum_means_none_only_under_ipv4() {
        let mut u = UDP_V4;
        u[6] = 0;
        u[7] = 0;
        let h = UdpHeader::new_checked(&u[..], 0).unwrap();
        assert!(h.verify_checksum(&v4()));
        let v6 = PseudoHeader::V6 {
            src: Ipv6Addr::LOCALHOST,
            dst: Ipv6Addr::LOCALHOST,
        };
        assert!(!h.verify_checksum(&v6));
    }

    /// A SYN, 192.0.2.1:40000 -> 198.51.100.1:443, seq 1, window 65535.
    #[test]
    fn tcp_take_apart_and_build() {
        let r = TcpRepr {
            src_port: 40000,
            dst_port: 443,
            seq: 1,
            ack: 0,
            flags: tcp_flags::SYN,
            window: 0xffff,
        };
        let mut buf = [0u8; 20];
        assert_eq!(r.emit(&mut buf), Ok(20));
        assert_eq!(
            buf,
            [0x9c, 0x40, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]
        );
        let mut h = TcpHeader::new_checked(&mut buf[..], 0).unwrap();
        h.fill_checksum(&v4());
        assert!(h.verify_checksum(&v4()));
        assert_eq!(TcpRepr::parse(&h), r);
        assert!(r.emit(&mut [0u8; 19]).is_err());
    }

    fn arb_pseudo() -> impl Strategy<Value = PseudoHeader> {
        prop_oneof![
            (any::<[u8; 4]>(), any::<[u8; 4]>()).prop_map(|(s, d)| PseudoHeader::V4 {
                src: s.into(),
                dst: d.into()
            }),
            (any::<[u8; 16]>(), any::<[u8; 16]>()).prop_map(|(s, d)| PseudoHeader::V6 {
                src: s.into(),
                dst: d.into()
            }),
        ]
    }

    proptest! {
        #[test]
        fn udp_round_trip_and_etherparse(
            src_port in any::<u16>(),
            dst_port in any::<u16>(),
            data in proptest::collection::vec(any::<u8>(), 0..80),
            ph in arb_pseudo(),
        ) {
            let r = UdpRepr { src_port, dst_port, payload_len: data.len() };
            let mut buf = vec![0u8; r.buffer_len()];
            buf[8..].copy_from_slice(&data);
            prop_assert_eq!(r.emit(&mut buf), Ok(8));
            let mut h = UdpHeader::new_checked(&mut buf[..], 0).unwrap();
            h.fill_checksum(&ph);
            prop_assert!(h.verify_checksum(&ph));
            prop_assert_eq!(UdpRepr::parse(&h), Ok(r));
            // etherparse computes the same header, checksum included.
            let theirs = match ph {
                PseudoHeader::V4 { src, dst } => etherparse::UdpHeader::with_ipv4_checksum(
                    src_port, dst_port,
                    &etherparse::Ipv4Header::new(0, 64, etherparse::IpNumber::UDP, src.octets(), dst.octets()).unwrap(),
                    &data,
                ),
                PseudoHeader::V6 { src, dst } => etherparse::UdpHeader::with_ipv6_checksum(
                    src_port, dst_port,
                    &etherparse::Ipv6Header {
                        source: src.octets(),
                        destination: dst.octets(),
                        next_header: etherparse::IpNumber::UDP,
                        ..Default::default()
                    },
                    &data,
                ),
            }
            .unwrap();
            prop_assert_eq!(&buf[..8], &theirs.to_bytes()[..]);
        }

        #[test]
        fn tcp_round_trip_and_etherparse(
            src_port in any::<u16>(),
            dst_port in any::<u16>(),
            seq in any::<u32>(),
            ack in any::<u32>(),
            flags in any::<u8>(),
            window in any::<u16>(),
            data in proptest::collection::vec(any::<u8>(), 0..40),
            ph in arb_pseudo(),
        ) {
            let r = TcpRepr { src_port, dst_port, seq, ack, flags, window };
            let mut buf = vec![0u8; 20 + data.len()];
            buf[20..].copy_from_slice(&data);
            prop_assert_eq!(r.emit(&mut buf), Ok(20));
            let mut h = TcpHeader::new_checked(&mut buf[..], 0).unwrap();
            h.fill_checksum(&ph);
            prop_assert!(h.verify_checksum(&ph));
            prop_assert_eq!(TcpRepr::parse(&h), r);
            let mut theirs = etherparse::TcpHeader::new(src_port, dst_port, seq, window);
            theirs.acknowledgment_number = ack;
            theirs.fin = flags & tcp_flags::FIN != 0;
            theirs.syn = flags & tcp_flags::SYN != 0;
            theirs.rst = flags & tcp_flags::RST != 0;
            theirs.psh = flags & tcp_flags::PSH != 0;
            theirs.ack = flags & tcp_flags::ACK != 0;
            theirs.urg = flags & tcp_flags::URG != 0;
            theirs.ece = flags & tcp_flags::ECE != 0;
            theirs.cwr = flags & tcp_flags::CWR != 0;
            theirs.checksum = match ph {
                PseudoHeader::V4 { src, dst } => theirs.calc_checksum_ipv4_raw(src.octets(), dst.octets(), &data),
                PseudoHeader::V6 { src, dst } => theirs.calc_checksum_ipv6_raw(src.octets(), dst.octets(), &data),
            }
            .unwrap();
            prop_assert_eq!(&buf[..20], &theirs.to_bytes()[..]);
        }
    }
}
