//! ICMPv4 (RFC 792) and ICMPv6 (RFC 4443) headers: the shared view (type,
//! code, checksum and the four rest-of-header bytes), its checksum fillers
//! and checks, and the building side, [`Icmpv4Repr`] and [`Icmpv6Repr`].
//!
//! `IcmpHeader::new_checked` guarantees 8 bytes; after it no accessor
//! panics. The view's buffer is the whole ICMP message: the checksum
//! methods cover all of it (RFC 792: "the 16-bit one's complement of the
//! one's complement sum of the ICMP message starting with the ICMP Type";
//! RFC 4443 §2.3: the same with the IPv6 pseudo-header of RFC 8200 §8.1
//! in front). `emit` checks that the 8 bytes fit before writing and never
//! panics.

use super::checksum::{self, PseudoHeader};
use super::error::{Layer, WireError};
use super::l4::protocol;
use super::{emit_area, get_u16, set_u16};
use std::net::Ipv6Addr;

/// Byte offsets of the ICMP header fields (the same for v4 and v6).
pub mod field {
    use crate::wire::Field;
    /// Message type.
    pub const TYPE: usize = 0;
    /// Message code.
    pub const CODE: usize = 1;
    /// Checksum.
    pub const CHECKSUM: Field = 2..4;
    /// Rest of the header: identifier and sequence number of an echo,
    /// unused in destination unreachable and time exceeded (RFC 792,
    /// RFC 4443 §3.1, §3.3), the MTU of packet too big.
    pub const REST: Field = 4..8;
    /// Echo identifier (RFC 792 "Echo or Echo Reply Message", RFC 4443 §4.1).
    pub const ECHO_IDENT: Field = 4..6;
    /// Echo sequence number.
    pub const ECHO_SEQ: Field = 6..8;
    /// The message body after the header (data of an echo, the invoking
    /// packet of an error).
    pub const BODY: core::ops::RangeFrom<usize> = 8..;
}

/// ICMP header length (type, code, checksum, rest of header).
pub const HEADER_LEN: usize = 8;

/// ICMPv4 types xconnect produces or answers (RFC 792).
pub mod v4_type {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable.
    pub const DEST_UNREACHABLE: u8 = 3;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
}

/// ICMPv6 types xconnect produces or answers (RFC 4443 §2.1, RFC 4861 §4).
pub mod v6_type {
    /// Destination unreachable.
    pub const DEST_UNREACHABLE: u8 = 1;
    /// Packet too big.
    pub const PACKET_TOO_BIG: u8 = 2;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 3;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 129;
    /// Neighbour solicitation.
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    /// Neighbour advertisement.
    pub const NEIGHBOR_ADVERT: u8 = 136;
}

/// A checked view of an ICMPv4 or ICMPv6 message (the header layout is
/// shared): the buffer is the message, header and body.
#[derive(Debug, Clone, Copy)]
pub struct IcmpHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IcmpHeader<T> {
    /// Wrap without checking; accessors may panic on buffers shorter than
    /// [`HEADER_LEN`].
    pub const fn new_unchecked(buffer: T) -> Self {
        IcmpHeader { buffer }
    }

    /// Wrap after checking 8 bytes. `v6` selects the layer named in errors.
    pub fn new_checked(buffer: T, offset: usize, v6: bool) -> Result<Self, WireError> {
        let n = buffer.as_ref().len();
        if n < HEADER_LEN {
            let layer = if v6 { Layer::Icmpv6 } else { Layer::Icmpv4 };
            return Err(WireError::truncated(layer, offset, HEADER_LEN, n));
        }
        Ok(IcmpHeader { buffer })
    }

    /// Message type.
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// Message code.
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The four rest-of-header bytes (identifier/sequence for echo, MTU…).
    pub fn rest(&self) -> [u8; 4] {
        let mut r = [0u8; 4];
        r.copy_from_slice(&self.buffer.as_ref()[field::REST]);
        r
    }

    /// The bytes after the header.
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[field::BODY]
    }

    /// True if the ICMPv4 checksum over the whole message is correct.
    pub fn verify_checksum_v4(&self) -> bool {
        checksum::checksum(self.buffer.as_ref()) == 0
    }

    /// True if the ICMPv6 checksum over the pseudo-header of `src` and
    /// `dst` and the whole message is correct.
    pub fn verify_checksum_v6(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        v6_pseudo(src, dst).checksum(protocol::ICMPV6, self.buffer.as_ref()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpHeader<T> {
    /// Set the message type.
    pub fn set_msg_type(&mut self, t: u8) {
        self.buffer.as_mut()[field::TYPE] = t;
    }

    /// Set the message code.
    pub fn set_code(&mut self, c: u8) {
        self.buffer.as_mut()[field::CODE] = c;
    }

    /// Set the rest-of-header bytes.
    pub fn set_rest(&mut self, r: [u8; 4]) {
        self.buffer.as_mut()[field::REST].copy_from_slice(&r);
    }

    /// Compute and store the ICMPv4 checksum over the whole message.
    pub fn fill_checksum_v4(&mut self) {
        let b = self.buffer.as_mut();
        set_u16(b, field::CHECKSUM, 0);
        let c = checksum::checksum(b);
        set_u16(b, field::CHECKSUM, c);
    }

    /// Compute and store the ICMPv6 checksum over the pseudo-header of
    /// `src` and `dst` (RFC 8200 §8.1, upper-layer length = the message's)
    /// and the whole message.
    pub fn fill_checksum_v6(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        let b = self.buffer.as_mut();
        set_u16(b, field::CHECKSUM, 0);
        let c = v6_pseudo(src, dst).checksum(protocol::ICMPV6, b);
        set_u16(b, field::CHECKSUM, c);
    }
}

fn v6_pseudo(src: &Ipv6Addr, dst: &Ipv6Addr) -> PseudoHeader {
    PseudoHeader::V6 {
        src: *src,
        dst: *dst,
    }
}

fn emit_header(
    buf: &mut [u8],
    layer: Layer,
    msg_type: u8,
    code: u8,
    rest: [u8; 4],
) -> Result<usize, WireError> {
    let b = emit_area(buf, layer, HEADER_LEN)?;
    b[field::TYPE] = msg_type;
    b[field::CODE] = code;
    set_u16(b, field::CHECKSUM, 0);
    b[field::REST].copy_from_slice(&rest);
    Ok(HEADER_LEN)
}

/// The rest-of-header bytes of an echo: identifier, then sequence number.
const fn echo_rest(ident: u16, seq: u16) -> [u8; 4] {
    let i = ident.to_be_bytes();
    let s = seq.to_be_bytes();
    [i[0], i[1], s[0], s[1]]
}

macro_rules! icmp_repr {
    ($name:ident, $layer:expr, $doc:literal) => {
        #[doc = $doc]
        ///
        /// `emit` writes the 8-byte header with a zero checksum; the body
        /// is the caller's, then the checksum filler of [`IcmpHeader`]
        /// covers the whole message.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $name {
            /// Message type.
            pub msg_type: u8,
            /// Message code.
            pub code: u8,
            /// The rest-of-header bytes.
            pub rest: [u8; 4],
        }

        impl $name {
            /// An echo request or reply header (`msg_type` says which).
            pub const fn echo(msg_type: u8, ident: u16, seq: u16) -> $name {
                $name {
                    msg_type,
                    code: 0,
                    rest: echo_rest(ident, seq),
                }
            }

            /// An error header (destination unreachable, time exceeded):
            /// the rest of the header is unused, zero.
            pub const fn error(msg_type: u8, code: u8) -> $name {
                $name {
                    msg_type,
                    code,
                    rest: [0; 4],
                }
            }

            /// The header a checked view holds.
            pub fn parse<T: AsRef<[u8]>>(h: &IcmpHeader<T>) -> $name {
                $name {
                    msg_type: h.msg_type(),
                    code: h.code(),
                    rest: h.rest(),
                }
            }

            /// Bytes of the header: [`HEADER_LEN`].
            pub const fn header_len(&self) -> usize {
                HEADER_LEN
            }

            /// Bytes `emit` writes: [`HEADER_LEN`].
            pub const fn buffer_len(&self) -> usize {
                HEADER_LEN
            }

            /// Write the header, checksum zero, at the start of `buf`;
            /// returns [`HEADER_LEN`].
            pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
                emit_header(buf, $layer, self.msg_type, self.code, self.rest)
            }
        }
    };
}

icmp_repr!(
    Icmpv4Repr,
    Layer::Icmpv4,
    "An ICMPv4 header (RFC 792) as values."
);
icmp_repr!(
    Icmpv6Repr,
    Layer::Icmpv6,
    "An ICMPv6 header (RFC 4443 §2.1) as values."
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn take_apart() {
        let b = [11u8, 0, 0xf4, 0xff, 0, 0, 0, 0];
        let h = IcmpHeader::new_checked(&b[..], 34, false).unwrap();
        assert_eq!((h.msg_type(), h.code(), h.checksum()), (11, 0, 0xf4ff));
        assert!(h.verify_checksum_v4());
        let e = IcmpHeader::new_checked(&b[..4], 54, true).unwrap_err();
        assert_eq!(e.layer, Layer::Icmpv6);
    }

    /// An echo request as `ping` sends it: identifier 0x1c2d, sequence 1,
    /// eight data bytes, checksum 0xcbbd (summed by hand: the words
    /// 0x0800, 0x1c2d, 0x0001, 0x0102, 0x0304, 0x0506 and 0x0708 add up to
    /// 0x3442, whose complement is 0xcbbd).
    static ECHO_V4: [u8; 16] = [
        0x08, 0x00, 0xcb, 0xbd, 0x1c, 0x2d, 0x00, 0x01, 1, 2, 3, 4, 5, 6, 7, 8,
    ];

    #[test]
    fn echo_v4_take_apart_and_build() {
        let h = IcmpHeader::new_checked(&ECHO_V4[..], 34, false).unwrap();
        assert!(h.verify_checksum_v4());
        assert_eq!(
            Icmpv4Repr::parse(&h),
            Icmpv4Repr::echo(v4_type::ECHO_REQUEST, 0x1c2d, 1)
        );
        assert_eq!(h.body(), &[1, 2, 3, 4, 5, 6, 7, 8]);
        let mut buf = [0u8; 16];
        buf[8..].copy_from_slice(&ECHO_V4[8..]);
        let r = Icmpv4Repr::echo(v4_type::ECHO_REQUEST, 0x1c2d, 1);
        assert_eq!(r.emit(&mut buf), Ok(8));
        IcmpHeader::new_checked(&mut buf[..], 0, false)
            .unwrap()
            .fill_checksum_v4();
        assert_eq!(buf, ECHO_V4);
        assert!(r.emit(&mut buf[..7]).is_err());
    }

    /// Echo request 2001:db8::1 -> 2001:db8::2, identifier 0x1234,
    /// sequence 7, data "ab"; the checksum is etherparse's.
    #[test]
    fn echo_v6_checksum_matches_etherparse() {
        let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let mut msg = [0u8; 10];
        msg[8..].copy_from_slice(b"ab");
        let r = Icmpv6Repr::echo(v6_type::ECHO_REQUEST, 0x1234, 7);
        assert_eq!(r.emit(&mut msg), Ok(8));
        let mut h = IcmpHeader::new_checked(&mut msg[..], 0, true).unwrap();
        h.fill_checksum_v6(&src, &dst);
        assert!(h.verify_checksum_v6(&src, &dst));
        assert!(!h.verify_checksum_v6(&dst, &dst));
        let theirs = etherparse::Icmpv6Header::with_checksum(
            etherparse::Icmpv6Type::EchoRequest(etherparse::IcmpEchoHeader { id: 0x1234, seq: 7 }),
            src.octets(),
            dst.octets(),
            b"ab",
        )
        .unwrap();
        assert_eq!(&msg[..8], &theirs.to_bytes()[..]);
    }

    fn v4_types() -> impl Strategy<Value = (u8, u8)> {
        prop_oneof![
            Just((v4_type::ECHO_REQUEST, 0)),
            Just((v4_type::ECHO_REPLY, 0)),
            (Just(v4_type::DEST_UNREACHABLE), 0u8..=15),
            (Just(v4_type::TIME_EXCEEDED), 0u8..=1),
        ]
    }

    fn v6_types() -> impl Strategy<Value = (u8, u8)> {
        prop_oneof![
            Just((v6_type::ECHO_REQUEST, 0)),
            Just((v6_type::ECHO_REPLY, 0)),
            (Just(v6_type::DEST_UNREACHABLE), 0u8..=6),
            (Just(v6_type::TIME_EXCEEDED), 0u8..=1),
        ]
    }

    /// The etherparse type for the same header values.
    fn their_v4(t: u8, code: u8, rest: [u8; 4]) -> etherparse::Icmpv4Type {
        use etherparse::icmpv4::{DestUnreachableHeader, TimeExceededCode};
        use etherparse::{IcmpEchoHeader, Icmpv4Type};
        let echo = IcmpEchoHeader::from_bytes(rest);
        match t {
            v4_type::ECHO_REQUEST => Icmpv4Type::EchoRequest(echo),
            v4_type::ECHO_REPLY => Icmpv4Type::EchoReply(echo),
            v4_type::DEST_UNREACHABLE => Icmpv4Type::DestinationUnreachable(
                DestUnreachableHeader::from_values(code, 0).unwrap(),
            ),
            _ => Icmpv4Type::TimeExceeded(TimeExceededCode::from_u8(code).unwrap()),
        }
    }

    fn their_v6(t: u8, code: u8, rest: [u8; 4]) -> etherparse::Icmpv6Type {
        use etherparse::icmpv6::{DestUnreachableCode, TimeExceededCode};
        use etherparse::{IcmpEchoHeader, Icmpv6Type};
        let echo = IcmpEchoHeader::from_bytes(rest);
        match t {
            v6_type::ECHO_REQUEST => Icmpv6Type::EchoRequest(echo),
            v6_type::ECHO_REPLY => Icmpv6Type::EchoReply(echo),
            v6_type::DEST_UNREACHABLE => {
                Icmpv6Type::DestinationUnreachable(DestUnreachableCode::from_u8(code).unwrap())
            }
            _ => Icmpv6Type::TimeExceeded(TimeExceededCode::from_u8(code).unwrap()),
        }
    }

    proptest! {
        #[test]
        fn v4_round_trip_and_etherparse(
            (t, code) in v4_types(),
            ident in any::<u16>(),
            seq in any::<u16>(),
            body in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let echo = matches!(t, v4_type::ECHO_REQUEST | v4_type::ECHO_REPLY);
            let r = if echo { Icmpv4Repr::echo(t, ident, seq) } else { Icmpv4Repr::error(t, code) };
            let mut msg = vec![0u8; 8 + body.len()];
            msg[8..].copy_from_slice(&body);
            prop_assert_eq!(r.emit(&mut msg), Ok(8));
            let mut h = IcmpHeader::new_checked(&mut msg[..], 0, false).unwrap();
            h.fill_checksum_v4();
            prop_assert!(h.verify_checksum_v4());
            prop_assert_eq!(Icmpv4Repr::parse(&h), r);
            let theirs = etherparse::Icmpv4Header::with_checksum(their_v4(t, code, r.rest), &body);
            prop_assert_eq!(&msg[..8], &theirs.to_bytes()[..]);
        }

        #[test]
        fn v6_round_trip_and_etherparse(
            (t, code) in v6_types(),
            ident in any::<u16>(),
            seq in any::<u16>(),
            body in proptest::collection::vec(any::<u8>(), 0..64),
            src in any::<[u8; 16]>(),
            dst in any::<[u8; 16]>(),
        ) {
            let echo = matches!(t, v6_type::ECHO_REQUEST | v6_type::ECHO_REPLY);
            let r = if echo { Icmpv6Repr::echo(t, ident, seq) } else { Icmpv6Repr::error(t, code) };
            let mut msg = vec![0u8; 8 + body.len()];
            msg[8..].copy_from_slice(&body);
            prop_assert_eq!(r.emit(&mut msg), Ok(8));
            let (s, d) = (Ipv6Addr::from(src), Ipv6Addr::from(dst));
            let mut h = IcmpHeader::new_checked(&mut msg[..], 0, true).unwrap();
            h.fill_checksum_v6(&s, &d);
            prop_assert!(h.verify_checksum_v6(&s, &d));
            prop_assert_eq!(Icmpv6Repr::parse(&h), r);
            let theirs = etherparse::Icmpv6Header::with_checksum(their_v6(t, code, r.rest), src, dst, &body).unwrap();
            prop_assert_eq!(&msg[..8], &theirs.to_bytes()[..]);
        }
    }
}
