//! Ethernet II header view.
//!
//! `EthernetFrame::new_checked` guarantees 14 bytes; accessors never panic after it.

use super::error::{Layer, WireError};

/// Byte ranges of the Ethernet II header.
pub mod field {
    /// Destination MAC.
    pub const DST: core::ops::Range<usize> = 0..6;
    /// Source MAC.
    pub const SRC: core::ops::Range<usize> = 6..12;
    /// Ethertype (or the TPID of the first VLAN tag).
    pub const ETHERTYPE: core::ops::Range<usize> = 12..14;
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
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[12], b[13]])
    }

    /// The bytes after the 14-byte header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
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
        self.buffer.as_mut()[field::ETHERTYPE].copy_from_slice(&v.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
