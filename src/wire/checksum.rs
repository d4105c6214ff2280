//! The Internet checksum (RFC 1071), its incremental update (RFC 1624),
//! and the pseudo-headers of the upper-layer checksums (UDP, TCP, ICMPv6).
//!
//! RFC 1624 §3, eqn. 3: `HC' = ~(~HC + ~m + m')` — the form that stays
//! correct when the sum crosses 0xffff/0x0000 (eqn. 2 of RFC 1141 does not).
//!
//! Nothing here panics or allocates.

use std::net::{Ipv4Addr, Ipv6Addr};

/// One's complement sum of `data` as 16-bit big-endian words, added to
/// `initial`, not yet folded.
#[inline]
pub fn sum(data: &[u8], initial: u32) -> u32 {
    let mut acc = initial as u64;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u16::from_be_bytes([c[0], c[1]]) as u64;
    }
    if let [last] = chunks.remainder() {
        acc += (*last as u64) << 8;
    }
    fold64(acc)
}

#[inline(always)]
fn fold64(mut acc: u64) -> u32 {
    while acc > 0xffff_ffff {
        acc = (acc & 0xffff_ffff) + (acc >> 32);
    }
    acc as u32
}

/// Fold a 32-bit one's complement accumulator to 16 bits.
#[inline(always)]
pub fn fold(mut acc: u32) -> u16 {
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc as u16
}

/// The Internet checksum of `data` (complement of the folded sum).
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data, 0))
}

/// Update checksum `hc` after a 16-bit word changed from `old` to `new`
/// (RFC 1624 eqn. 3).
#[inline(always)]
pub fn update16(hc: u16, old: u16, new: u16) -> u16 {
    let acc = (!hc as u32) + (!old as u32 & 0xffff) + new as u32;
    !fold(acc)
}

/// The one's complement sum of the IPv4 pseudo-header (RFC 768; RFC 9293
/// §3.1): source, destination, zero, protocol, upper-layer length.
#[inline]
pub fn pseudo_header_v4(src: &Ipv4Addr, dst: &Ipv4Addr, protocol: u8, len: usize) -> u32 {
    let acc = sum(&src.octets(), 0);
    let acc = sum(&dst.octets(), acc);
    let acc = sum(&[0, protocol], acc);
    sum(&(len as u32).to_be_bytes(), acc)
}

/// The one's complement sum of the IPv6 pseudo-header (RFC 8200 §8.1):
/// source, destination, 32-bit upper-layer length, three zero bytes, next
/// header.
#[inline]
pub fn pseudo_header_v6(src: &Ipv6Addr, dst: &Ipv6Addr, next_header: u8, len: usize) -> u32 {
    let acc = sum(&src.octets(), 0);
    let acc = sum(&dst.octets(), acc);
    let acc = sum(&(len as u32).to_be_bytes(), acc);
    sum(&[0, 0, 0, next_header], acc)
}

/// The addresses an upper-layer checksum covers besides the message: the
/// IPv4 (RFC 768) or IPv6 (RFC 8200 §8.1) pseudo-header's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PseudoHeader {
    /// Under an IPv4 header.
    V4 {
        /// Source address.
        src: Ipv4Addr,
        /// Destination address.
        dst: Ipv4Addr,
    },
    /// Under an IPv6 header.
    V6 {
        /// Source address.
        src: Ipv6Addr,
        /// Destination address.
        dst: Ipv6Addr,
    },
}

impl PseudoHeader {
    /// The pseudo-header's sum for a message of `protocol` and `len` bytes.
    #[inline]
    pub fn sum(&self, protocol: u8, len: usize) -> u32 {
        match self {
            PseudoHeader::V4 { src, dst } => pseudo_header_v4(src, dst, protocol, len),
            PseudoHeader::V6 { src, dst } => pseudo_header_v6(src, dst, protocol, len),
        }
    }

    /// The checksum of `message` under this pseudo-header: the value to
    /// store when the message's checksum field is zero, and 0 when the
    /// field holds a correct checksum (RFC 1071 §1: the check sums the
    /// field too).
    #[inline]
    pub fn checksum(&self, protocol: u8, message: &[u8]) -> u16 {
        !fold(sum(message, self.sum(protocol, message.len())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An IPv6 UDP datagram checksummed by hand: the pseudo-header of RFC
    /// 8200 §8.1 spelled out byte by byte, summed as one buffer.
    #[test]
    fn pseudo_header_v6_matches_the_spelled_out_layout() {
        let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let msg = [0xc3, 0x50, 0x0d, 0x96, 0, 10, 0, 0, 0xab, 0xcd];
        let mut flat = Vec::new();
        flat.extend_from_slice(&src.octets());
        flat.extend_from_slice(&dst.octets());
        flat.extend_from_slice(&[0, 0, 0, 10, 0, 0, 0, 17]);
        flat.extend_from_slice(&msg);
        let ph = PseudoHeader::V6 { src, dst };
        assert_eq!(ph.checksum(17, &msg), checksum(&flat));
        let v4 = PseudoHeader::V4 {
            src: Ipv4Addr::new(192, 0, 2, 1),
            dst: Ipv4Addr::new(198, 51, 100, 1),
        };
        let flat4 = [&[192, 0, 2, 1, 198, 51, 100, 1, 0, 17, 0, 10][..], &msg[..]].concat();
        assert_eq!(v4.checksum(17, &msg), checksum(&flat4));
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 example bytes: sum 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data, 0)), 0xddf2);
    }

    proptest! {
        #[test]
        fn incremental_matches_full(mut data in proptest::collection::vec(any::<u8>(), 2..64), idx in 0usize..31, new in any::<u16>()) {
            let words = data.len() / 2;
            let i = idx % words;
            let before = checksum(&data);
            let old = u16::from_be_bytes([data[2 * i], data[2 * i + 1]]);
            data[2 * i..2 * i + 2].copy_from_slice(&new.to_be_bytes());
            let full = checksum(&data);
            let inc = update16(before, old, new);
            // 0x0000 and 0xffff are the same one's complement value.
            prop_assert!(inc == full || (inc ^ full) == 0xffff && (inc == 0 || full == 0), "inc {inc:#x} full {full:#x}");
        }
    }
}
