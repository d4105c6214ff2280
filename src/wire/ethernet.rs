//! Ethernet II header (IEEE 802.3 clause 3.2, the DIX layout): view and
//! [`EthernetRepr`], the header with its VLAN tags.
//!
//! `EthernetFrame::new_checked` guarantees 14 bytes; accessors never panic
//! after it. `EthernetRepr::emit` checks that the header (with its tags)
//! fits before writing and never panics.

use super::error::{Layer, WireError};
use super::vlan::{TagStack, TAG_LEN};
use super::{emit_area, get_u16, set_u16};
use std::net::Ipv6Addr;

/// Byte ranges of the Ethernet II header.
pub mod field {
    use crate::wire::Field;
    /// Destination MAC.
    pub const DST: Field = 0..6;
    /// Source MAC.
    pub const SRC: Field = 6..12;
    /// Ethertype (or the TPID of the first VLAN tag).
    pub const ETHERTYPE: Field = 12..14;
    /// The bytes after an untagged header.
    pub const PAYLOAD: core::ops::RangeFrom<usize> = 14..;
}

/// Length of an untagged Ethernet II header.
pub const HEADER_LEN: usize = 14;
/// Length of the two MAC addresses that precede the tags.
pub const MACS_LEN: usize = 12;

/// Ethertypes xconnect decodes.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
}

/// A MAC address.
pub type Mac = [u8; 6];

/// The broadcast address.
pub const BROADCAST: Mac = [0xff; 6];

/// The Ethernet group address an IPv6 multicast address maps to: 33:33
/// then its last four bytes (RFC 2464 §7).
pub fn ipv6_multicast_mac(group: &Ipv6Addr) -> Mac {
    let [.., a, b, c, d] = group.octets();
    [0x33, 0x33, a, b, c, d]
}

/// Format a MAC as `aa:bb:cc:dd:ee:ff`.
pub fn mac_to_string(m: &Mac) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// A checked view of an Ethernet II header at the start of a buffer.
#[derive(Debug, Clone, Copy)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wrap without checking; accessors may panic on short buffers.
    pub const fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wrap after checking that the header fits.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let len = buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::truncated(Layer::Ethernet, 0, HEADER_LEN, len));
        }
        Ok(EthernetFrame { buffer })
    }

    /// Destination MAC.
    pub fn dst(&self) -> Mac {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buffer.as_ref()[field::DST]);
        m
    }

    /// Source MAC.
    pub fn src(&self) -> Mac {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buffer.as_ref()[field::SRC]);
        m
    }

    /// The ethertype field at offset 12 (a TPID if the frame is tagged).
    pub fn ethertype(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::ETHERTYPE)
    }

    /// The bytes after the 14-byte header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Set the destination MAC.
    pub fn set_dst(&mut self, m: &Mac) {
        self.buffer.as_mut()[field::DST].copy_from_slice(m);
    }

    /// Set the source MAC.
    pub fn set_src(&mut self, m: &Mac) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(m);
    }

    /// Set the ethertype at offset 12.
    pub fn set_ethertype(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::ETHERTYPE, v);
    }
}

/// An Ethernet II header with its VLAN tags (outermost first), as values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EthernetRepr {
    /// Destination MAC.
    pub dst: Mac,
    /// Source MAC.
    pub src: Mac,
    /// The tags between the source MAC and the ethertype.
    pub tags: TagStack,
    /// The ethertype after the tags.
    pub ethertype: u16,
}

impl EthernetRepr {
    /// Read the addresses, walk the tags (at most [`super::MAX_TAGS`],
    /// each complete with the ethertype after it) and take the ethertype
    /// that follows them.
    pub fn parse<T: AsRef<[u8]>>(frame: &EthernetFrame<T>) -> Result<EthernetRepr, WireError> {
        let b = frame.buffer.as_ref();
        let (tags, at) = super::frame::parse_tags(b)?;
        // parse_tags checked that the ethertype at `at` is present.
        let ethertype = b
            .get(at..at + 2)
            .map_or(0, |e| u16::from_be_bytes([e[0], e[1]]));
        Ok(EthernetRepr {
            dst: frame.dst(),
            src: frame.src(),
            tags,
            ethertype,
        })
    }

    /// Bytes of the header: 14 plus 4 per tag.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN + TAG_LEN * self.tags.len()
    }

    /// Bytes `emit` writes (the header alone).
    pub const fn buffer_len(&self) -> usize {
        self.header_len()
    }

    /// Write the header at the start of `buf`: MACs, each tag (TPID then
    /// TCI), the ethertype. Returns [`EthernetRepr::header_len`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let len = self.header_len();
        let b = emit_area(buf, Layer::Ethernet, len)?;
        b[field::DST].copy_from_slice(&self.dst);
        b[field::SRC].copy_from_slice(&self.src);
        let mut at = MACS_LEN;
        for tag in self.tags.iter() {
            at += tag.emit(&mut b[at..])?;
        }
        set_u16(b, at..at + 2, self.ethertype);
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Tpid, VlanTag, MAX_TAGS};
    use proptest::prelude::*;

    static FRAME: [u8; 16] = [
        0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x08, 0x00, 0xaa, 0xbb,
    ];

    #[test]
    fn take_apart() {
        let f = EthernetFrame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(f.dst(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(f.src(), [2, 0, 0, 0, 0, 2]);
        assert_eq!(f.ethertype(), ethertype::IPV4);
        assert_eq!(f.payload(), &[0xaa, 0xbb]);
        assert!(EthernetFrame::new_checked(&FRAME[..13]).is_err());
    }

    #[test]
    fn build() {
        let mut buf = [0u8; 16];
        let mut f = EthernetFrame::new_checked(&mut buf[..]).unwrap();
        f.set_dst(&[2, 0, 0, 0, 0, 1]);
        f.set_src(&[2, 0, 0, 0, 0, 2]);
        f.set_ethertype(0x0800);
        assert_eq!(&buf[..14], &FRAME[..14]);
    }

    /// An 802.1ad S-tag 100 (PCP 3) over an 802.1Q C-tag 200, then IPv6.
    static QINQ_HEADER: [u8; 22] = [
        0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, // MACs
        0x88, 0xa8, 0x60, 0x64, // S-tag
        0x81, 0x00, 0x00, 0xc8, // C-tag
        0x86, 0xdd, // IPv6
    ];

    fn qinq_repr() -> EthernetRepr {
        EthernetRepr {
            dst: [2, 0, 0, 0, 0, 2],
            src: [2, 0, 0, 0, 0, 1],
            tags: TagStack::from_slice(&[
                VlanTag::from_tci(Tpid::DOT1AD, 0x6064),
                VlanTag::from_tci(Tpid::DOT1Q, 200),
            ])
            .unwrap(),
            ethertype: ethertype::IPV6,
        }
    }

    #[test]
    fn repr_take_apart() {
        let f = EthernetFrame::new_checked(&QINQ_HEADER[..]).unwrap();
        let r = EthernetRepr::parse(&f).unwrap();
        assert_eq!(r, qinq_repr());
        assert_eq!(r.header_len(), 22);
        // Cut inside the C-tag: the tag walk says so.
        let cut = EthernetFrame::new_checked(&QINQ_HEADER[..19]).unwrap();
        assert_eq!(EthernetRepr::parse(&cut).unwrap_err().layer, Layer::Vlan);
    }

    #[test]
    fn repr_build() {
        let mut buf = [0xeeu8; 24];
        assert_eq!(qinq_repr().emit(&mut buf), Ok(22));
        assert_eq!(&buf[..22], &QINQ_HEADER[..]);
        assert_eq!(&buf[22..], &[0xee, 0xee], "nothing past the header");
        for n in 0..22 {
            let e = qinq_repr().emit(&mut buf[..n]).unwrap_err();
            assert_eq!(
                e.kind,
                crate::wire::ErrorKind::Truncated {
                    required: 22,
                    present: n
                }
            );
        }
    }

    #[test]
    fn multicast_and_broadcast_macs() {
        let g: Ipv6Addr = "ff02::1:ff00:2".parse().unwrap();
        assert_eq!(ipv6_multicast_mac(&g), [0x33, 0x33, 0xff, 0, 0, 2]);
        assert_eq!(BROADCAST, [0xff; 6]);
    }

    fn arb_repr() -> impl Strategy<Value = EthernetRepr> {
        let tag = (
            prop_oneof![Just(0x8100u16), Just(0x88a8), Just(0x9100)],
            any::<u16>(),
        )
            .prop_map(|(tpid, tci)| VlanTag::from_tci(Tpid(tpid), tci));
        (
            any::<Mac>(),
            any::<Mac>(),
            proptest::collection::vec(tag, 0..=MAX_TAGS),
            any::<u16>().prop_filter("a TPID reads as one more tag", |e| !Tpid::is_vlan(*e)),
        )
            .prop_map(|(dst, src, tags, ethertype)| EthernetRepr {
                dst,
                src,
                tags: TagStack::from_slice(&tags).unwrap(),
                ethertype,
            })
    }

    proptest! {
        #[test]
        fn parse_emit_round_trip(r in arb_repr(), extra in 0usize..4) {
            let mut buf = vec![0u8; r.buffer_len() + extra];
            prop_assert_eq!(r.emit(&mut buf), Ok(r.header_len()));
            let f = EthernetFrame::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(EthernetRepr::parse(&f), Ok(r));
            // etherparse reads the same header.
            let e = etherparse::Ethernet2Header::from_slice(&buf).unwrap().0;
            prop_assert_eq!((e.destination, e.source), (r.dst, r.src));
        }
    }
}
