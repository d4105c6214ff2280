//! ICMPv4 (RFC 792) and ICMPv6 (RFC 4443) header views: type, code,
//! checksum and the four rest-of-header bytes.
//!
//! `IcmpHeader::new_checked` guarantees 8 bytes.

use super::error::{Layer, WireError};

/// ICMP header length (type, code, checksum, rest of header).
pub const HEADER_LEN: usize = 8;

/// ICMPv4 types xconnect produces or answers.
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

/// ICMPv6 types xconnect produces or answers.
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

/// A checked view of an ICMPv4 or ICMPv6 header (the layout is shared).
#[derive(Debug, Clone, Copy)]
pub struct IcmpHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IcmpHeader<T> {
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
        self.buffer.as_ref()[0]
    }

    /// Message code.
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[1]
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[2], b[3]])
    }

    /// The four rest-of-header bytes (identifier/sequence for echo, MTU…).
    pub fn rest(&self) -> [u8; 4] {
        let b = self.buffer.as_ref();
        [b[4], b[5], b[6], b[7]]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_apart() {
        let b = [11u8, 0, 0xf4, 0xff, 0, 0, 0, 0];
        let h = IcmpHeader::new_checked(&b[..], 34, false).unwrap();
        assert_eq!((h.msg_type(), h.code(), h.checksum()), (11, 0, 0xf4ff));
        let e = IcmpHeader::new_checked(&b[..4], 54, true).unwrap_err();
        assert_eq!(e.layer, Layer::Icmpv6);
    }
}
