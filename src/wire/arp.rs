//! ARP for Ethernet/IPv4 (RFC 826): the view and [`ArpRepr`].
//!
//! `ArpPacket::new_checked` guarantees 28 bytes with htype 1, ptype 0x0800,
//! hlen 6, plen 4; accessors never panic after it. `ArpRepr::emit` checks
//! that the 28 bytes fit before writing and never panics.

use super::error::{ErrorKind, Layer, WireError};
use super::ethernet::Mac;
use super::{emit_area, get_u16, set_u16};
use std::net::Ipv4Addr;

/// Byte offsets of the ARP fields (RFC 826, "Packet format").
pub mod field {
    use crate::wire::Field;
    /// Hardware address space (1: Ethernet).
    pub const HTYPE: Field = 0..2;
    /// Protocol address space (0x0800: IPv4).
    pub const PTYPE: Field = 2..4;
    /// Hardware address length.
    pub const HLEN: usize = 4;
    /// Protocol address length.
    pub const PLEN: usize = 5;
    /// Operation code.
    pub const OPER: Field = 6..8;
    /// Sender hardware address.
    pub const SHA: Field = 8..14;
    /// Sender protocol address.
    pub const SPA: Field = 14..18;
    /// Target hardware address.
    pub const THA: Field = 18..24;
    /// Target protocol address.
    pub const TPA: Field = 24..28;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;

/// The fixed start of every Ethernet/IPv4 ARP packet: htype 1, ptype
/// 0x0800, hlen 6, plen 4.
const ETHERNET_IPV4: [u8; 6] = [0, 1, 0x08, 0x00, 6, 4];

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
        if b[field::HTYPE.start..=field::PLEN] != ETHERNET_IPV4 {
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
        get_u16(self.b(), field::OPER)
    }

    /// Sender hardware address.
    pub fn sender_mac(&self) -> Mac {
        let mut m = [0; 6];
        m.copy_from_slice(&self.b()[field::SHA]);
        m
    }

    /// Sender protocol address.
    pub fn sender_ip(&self) -> Ipv4Addr {
        ipv4_at(self.b(), field::SPA.start)
    }

    /// Target hardware address.
    pub fn target_mac(&self) -> Mac {
        let mut m = [0; 6];
        m.copy_from_slice(&self.b()[field::THA]);
        m
    }

    /// Target protocol address.
    pub fn target_ip(&self) -> Ipv4Addr {
        ipv4_at(self.b(), field::TPA.start)
    }
}

fn ipv4_at(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

/// An Ethernet/IPv4 ARP packet as values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ArpRepr {
    /// Operation ([`op::REQUEST`], [`op::REPLY`]).
    pub operation: u16,
    /// Sender hardware address.
    pub sender_mac: Mac,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address (zero in a request, RFC 826).
    pub target_mac: Mac,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl ArpRepr {
    /// The packet a checked view holds.
    pub fn parse<T: AsRef<[u8]>>(p: &ArpPacket<T>) -> ArpRepr {
        ArpRepr {
            operation: p.operation(),
            sender_mac: p.sender_mac(),
            sender_ip: p.sender_ip(),
            target_mac: p.target_mac(),
            target_ip: p.target_ip(),
        }
    }

    /// Bytes `emit` writes: [`PACKET_LEN`].
    pub const fn buffer_len(&self) -> usize {
        PACKET_LEN
    }

    /// Write the 28-byte packet at the start of `buf`; returns
    /// [`PACKET_LEN`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let b = emit_area(buf, Layer::Arp, PACKET_LEN)?;
        b[field::HTYPE.start..=field::PLEN].copy_from_slice(&ETHERNET_IPV4);
        set_u16(b, field::OPER, self.operation);
        b[field::SHA].copy_from_slice(&self.sender_mac);
        b[field::SPA].copy_from_slice(&self.sender_ip.octets());
        b[field::THA].copy_from_slice(&self.target_mac);
        b[field::TPA].copy_from_slice(&self.target_ip.octets());
        Ok(PACKET_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Who has 192.0.2.2? Tell 192.0.2.1 (02:00:00:00:00:01).
    static REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // Ethernet/IPv4, request
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 192, 0, 2, 1, // sender
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 192, 0, 2, 2, // target
    ];

    fn request() -> ArpRepr {
        ArpRepr {
            operation: op::REQUEST,
            sender_mac: [2, 0, 0, 0, 0, 1],
            sender_ip: Ipv4Addr::new(192, 0, 2, 1),
            target_mac: [0; 6],
            target_ip: Ipv4Addr::new(192, 0, 2, 2),
        }
    }

    #[test]
    fn take_apart() {
        let p = ArpPacket::new_checked(&REQUEST[..], 14).unwrap();
        assert_eq!(p.operation(), op::REQUEST);
        assert_eq!(ArpRepr::parse(&p), request());
        assert!(ArpPacket::new_checked(&REQUEST[..27], 14).is_err());
        let mut bad = REQUEST;
        bad[1] = 6;
        let e = ArpPacket::new_checked(&bad[..], 14).unwrap_err();
        assert_eq!((e.kind, e.offset), (ErrorKind::UnsupportedArp, 14));
    }

    #[test]
    fn build() {
        let mut buf = [0xaau8; 30];
        assert_eq!(request().emit(&mut buf), Ok(PACKET_LEN));
        assert_eq!(&buf[..28], &REQUEST[..]);
        assert_eq!(&buf[28..], &[0xaa, 0xaa]);
        let e = request().emit(&mut buf[..27]).unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::Truncated {
                required: 28,
                present: 27
            }
        );
    }

    proptest! {
        #[test]
        fn parse_emit_round_trip(op in any::<u16>(), sm in any::<Mac>(), si in any::<[u8; 4]>(), tm in any::<Mac>(), ti in any::<[u8; 4]>()) {
            let r = ArpRepr { operation: op, sender_mac: sm, sender_ip: si.into(), target_mac: tm, target_ip: ti.into() };
            let mut buf = [0u8; PACKET_LEN];
            prop_assert_eq!(r.emit(&mut buf), Ok(PACKET_LEN));
            let p = ArpPacket::new_checked(&buf[..], 0).unwrap();
            prop_assert_eq!(ArpRepr::parse(&p), r);
            // etherparse builds the same bytes.
            let theirs = etherparse::ArpEthIpv4Packet {
                operation: etherparse::ArpOperation(op),
                sender_mac: sm,
                sender_ipv4: si,
                target_mac: tm,
                target_ipv4: ti,
            };
            prop_assert_eq!(buf, theirs.to_bytes());
        }
    }
}
