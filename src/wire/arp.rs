//! ARP for Ethernet/IPv4 (RFC 826).
//!
//! `ArpPacket::new_checked` guarantees 28 bytes with htype 1, ptype 0x0800,
//! hlen 6, plen 4; accessors never panic after it.

use super::error::{ErrorKind, Layer, WireError};
use super::ethernet::Mac;
use std::net::Ipv4Addr;

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;

/// ARP operation codes.
pub mod op {
    /// Request.
    pub const REQUEST: u16 = 1;
    /// Reply.
    pub const REPLY: u16 = 2;
}

/// A checked view of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wrap after the checks in the module header; `offset` only for errors.
    pub fn new_checked(buffer: T, offset: usize) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < PACKET_LEN {
            return Err(WireError::truncated(
                Layer::Arp,
                offset,
                PACKET_LEN,
                b.len(),
            ));
        }
        if b[0..6] != [0, 1, 0x08, 0x00, 6, 4] {
            return Err(WireError::new(
                Layer::Arp,
                offset,
                ErrorKind::UnsupportedArp,
            ));
        }
        Ok(ArpPacket { buffer })
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Operation (1 request, 2 reply).
    pub fn operation(&self) -> u16 {
        u16::from_be_bytes([self.b()[6], self.b()[7]])
    }

    /// Sender hardware address.
    pub fn sender_mac(&self) -> Mac {
        let mut m = [0; 6];
        m.copy_from_slice(&self.b()[8..14]);
        m
    }

    /// Sender protocol address.
    pub fn sender_ip(&self) -> Ipv4Addr {
        let b = self.b();
        Ipv4Addr::new(b[14], b[15], b[16], b[17])
    }

    /// Target hardware address.
    pub fn target_mac(&self) -> Mac {
        let mut m = [0; 6];
        m.copy_from_slice(&self.b()[18..24]);
        m
    }

    /// Target protocol address.
    pub fn target_ip(&self) -> Ipv4Addr {
        let b = self.b();
        Ipv4Addr::new(b[24], b[25], b[26], b[27])
    }
}

/// Write an Ethernet/IPv4 ARP packet into `buf[..28]`; `false` if too short.
pub fn emit(
    buf: &mut [u8],
    operation: u16,
    sender: (Mac, Ipv4Addr),
    target: (Mac, Ipv4Addr),
) -> bool {
    let Some(b) = buf.get_mut(..PACKET_LEN) else {
        return false;
    };
    b[0..6].copy_from_slice(&[0, 1, 0x08, 0x00, 6, 4]);
    b[6..8].copy_from_slice(&operation.to_be_bytes());
    b[8..14].copy_from_slice(&sender.0);
    b[14..18].copy_from_slice(&sender.1.octets());
    b[18..24].copy_from_slice(&target.0);
    b[24..28].copy_from_slice(&target.1.octets());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_and_take_apart() {
        let mut buf = [0u8; 28];
        let s = ([2, 0, 0, 0, 0, 1], Ipv4Addr::new(192, 0, 2, 1));
        let t = ([0; 6], Ipv4Addr::new(192, 0, 2, 2));
        assert!(emit(&mut buf, op::REQUEST, s, t));
        let p = ArpPacket::new_checked(&buf[..], 14).unwrap();
        assert_eq!(p.operation(), op::REQUEST);
        assert_eq!((p.sender_mac(), p.sender_ip()), s);
        assert_eq!((p.target_mac(), p.target_ip()), t);
        assert!(ArpPacket::new_checked(&buf[..27], 14).is_err());
        buf[1] = 6;
        assert!(ArpPacket::new_checked(&buf[..], 14).is_err());
        assert!(!emit(&mut [0u8; 27], op::REPLY, s, t));
    }
}
