//! Zero-copy, checked views over frame bytes.
//!
//! Owns: Ethernet, the VLAN tag stack (≤ 3 tags; TPIDs 0x8100, 0x88a8,
//! 0x9100), IPv4, IPv6 with extension headers, UDP/TCP ports, ARP,
//! ICMPv4/ICMPv6, the Internet checksum (RFC 1071/1624), and [`PacketBuf`],
//! a frame buffer with headroom for in-place tag push/pop.
//!
//! Contract: every view is built by a `new_checked` (or [`parse`]) that
//! validates lengths once; after that no accessor panics. Nothing in this
//! module panics, allocates on the parse path, or uses `unsafe`, whatever
//! the input bytes.

#![deny(unsafe_code)]

pub mod arp;
pub mod checksum;
pub mod dscp;
pub mod error;
pub mod ethernet;
pub mod frame;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod l4;
pub mod packet;
pub mod vlan;

pub use dscp::Dscp;
pub use error::{ErrorKind, Layer, WireError};
pub use frame::{parse, parse_into, parse_tags, FrameInfo, L3};
pub use packet::PacketBuf;
pub use vlan::{TagStack, Tpid, VlanId, VlanTag, MAX_TAGS};
