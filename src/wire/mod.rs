//! Zero-copy, checked views over frame bytes, and the building side.
//!
//! Owns: Ethernet, the VLAN tag stack (≤ 3 tags; TPIDs 0x8100, 0x88a8,
//! 0x9100), IPv4, IPv6 with extension headers, UDP/TCP, ARP,
//! ICMPv4/ICMPv6, IPv6 neighbour discovery, the MPLS label stack (≤ 4
//! entries) and the pseudowire control word, the Internet checksum (RFC
//! 1071/1624) with the pseudo-headers, [`PacketBuf`], a frame buffer
//! with headroom for in-place tag push/pop, and super-frames ([`gso`]: the
//! `virtio_net_hdr`, offload metadata, software TCP segmentation).
//!
//! Two levels per protocol, as in smoltcp: a view (`EthernetFrame`,
//! `Ipv4Packet`, …) whose byte offsets live in the module's `mod field`,
//! and a `Repr` (`EthernetRepr`, `Ipv4Repr`, …) — the header as plain
//! values — with `parse` (from a checked view), `header_len`/`buffer_len`
//! and `emit(&self, buf) -> Result<usize, WireError>`.
//!
//! Contract: every view is built by a `new_checked` (or [`parse`]) that
//! validates lengths once; after that no accessor panics. `emit` writes
//! only after checking that the header fits and returns the bytes written,
//! or an error, never a panic. Nothing in this module panics, allocates, or
//! uses `unsafe`, whatever the input bytes.

#![deny(unsafe_code)]

pub mod arp;
pub mod checksum;
pub mod dscp;
pub mod error;
pub mod ethernet;
pub mod frame;
pub mod gso;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod l4;
pub mod mpls;
pub mod nd;
pub mod packet;
pub mod vlan;

pub use arp::ArpRepr;
pub use checksum::PseudoHeader;
pub use dscp::Dscp;
pub use error::{ErrorKind, Layer, WireError};
pub use ethernet::EthernetRepr;
pub use frame::{parse, parse_into, parse_tags, FrameInfo, L3};
pub use gso::{ChecksumState, GsoError, GsoKind, Offload, Segmenter, VirtioNetHdr};
pub use icmp::{Icmpv4Repr, Icmpv6Repr};
pub use ipv4::Ipv4Repr;
pub use ipv6::Ipv6Repr;
pub use l4::{TcpRepr, UdpRepr};
pub use mpls::{ControlWord, Label, LabelEntry, LabelStack};
pub use nd::NdRepr;
pub use packet::PacketBuf;
pub use vlan::{TagStack, Tpid, VlanId, VlanTag, MAX_TAGS};

/// The byte range of a header field, as in each module's `mod field`.
pub type Field = core::ops::Range<usize>;

/// Read the big-endian `u16` at `f`; callers hold a checked view.
#[inline(always)]
fn get_u16(b: &[u8], f: Field) -> u16 {
    u16::from_be_bytes([b[f.start], b[f.start + 1]])
}

/// Read the big-endian `u32` at `f`; callers hold a checked view.
#[inline(always)]
fn get_u32(b: &[u8], f: Field) -> u32 {
    u32::from_be_bytes([b[f.start], b[f.start + 1], b[f.start + 2], b[f.start + 3]])
}

/// Write `v` big-endian at `f`; callers hold a checked view.
#[inline(always)]
fn set_u32(b: &mut [u8], f: Field, v: u32) {
    b[f].copy_from_slice(&v.to_be_bytes());
}

/// Write `v` big-endian at `f`; callers hold a checked view.
#[inline(always)]
fn set_u16(b: &mut [u8], f: Field, v: u16) {
    b[f].copy_from_slice(&v.to_be_bytes());
}

/// The first `len` bytes of `buf` for `emit` to write into, or the
/// truncation error that names `layer`.
#[inline]
fn emit_area(buf: &mut [u8], layer: Layer, len: usize) -> Result<&mut [u8], WireError> {
    let present = buf.len();
    buf.get_mut(..len)
        .ok_or(WireError::truncated(layer, 0, len, present))
}
