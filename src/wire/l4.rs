//! UDP (RFC 768) and TCP (RFC 9293) header views: the ports the flow hash
//! and the DSCP classifier read.
//!
//! `new_checked` guarantees the whole fixed header (8 bytes UDP; TCP data
//! offset ≥ 5 and the header with its options present).

use super::error::{ErrorKind, Layer, WireError};

/// IP protocol numbers xconnect names.
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

/// UDP header length.
pub const UDP_HEADER_LEN: usize = 8;
/// Minimum TCP header length.
pub const TCP_MIN_HEADER_LEN: usize = 20;

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
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[2], b[3]])
    }

    /// Length field.
    pub fn len(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[4], b[5]])
    }

    /// True if the length field is zero (invalid for UDP, but possible on the wire).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[6], b[7]])
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
        let doff = b[12] >> 4;
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

    /// Source port.
    pub fn src_port(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[2], b[3]])
    }

    /// Header length in bytes.
    pub fn header_len(&self) -> usize {
        (self.buffer.as_ref()[12] >> 4) as usize * 4
    }

    /// The flag bits (CWR..FIN).
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[13]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
