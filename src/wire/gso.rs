//! Super-frames: the `virtio_net_hdr` that AF_PACKET and TAP carry beside
//! a frame, the offload metadata xconnect keeps for it, and the software
//! segmentation of a TCP or UDP super-frame into the frames Linux would
//! send.
//!
//! Owns:
//! - [`VirtioNetHdr`], the 10-byte legacy `struct virtio_net_hdr`
//!   (include/uapi/linux/virtio_net.h) that precedes each frame on an
//!   AF_PACKET socket with `PACKET_VNET_HDR` and on a TAP with
//!   `IFF_VNET_HDR`. Its 16-bit fields are in **host byte order**: AF_PACKET
//!   converts them with `__virtio16_to_cpu(vio_le(), …)` where `vio_le()` is
//!   `virtio_legacy_is_little_endian()` (true exactly on little-endian
//!   hosts), and TAP does the same unless told otherwise with
//!   `TUNSETVNETLE`/`TUNSETVNETBE`. So this module reads and writes them
//!   native-endian.
//! - [`Offload`], the same facts as domain values (a super-frame's
//!   [`GsoKind`] and segment size, the [`ChecksumState`] of its transport
//!   checksum), which the batch carries beside the frame and which moves
//!   with [`Offload::shift`] when tags are pushed or popped in front of the
//!   network header.
//! - [`Segmenter`] / [`segment`]: cut a TCP super-frame (Ethernet, up to
//!   three VLAN tags, IPv4 with options or IPv6 without extension headers,
//!   TCP with options) into segments, each written into a buffer the caller
//!   provides, byte for byte as Linux's software GSO makes them
//!   (`inet_gso_segment`/`ipv6_gso_segment` → `tcp_gso_segment` →
//!   `skb_segment`, checked against the running kernel by
//!   `tests/gso_kernel.rs`):
//!   - every segment carries a copy of all headers, then the next
//!     `segment_size` payload bytes (the last one the rest);
//!   - IPv4: total length and header checksum per segment, the
//!     identification of segment *k* is the super-frame's + *k* (mod 2¹⁶;
//!     a super-frame injected through a packet socket never has
//!     `SKB_GSO_TCP_FIXEDID`), options and flags copied; IPv6: payload
//!     length per segment, the rest copied;
//!   - TCP: sequence number of segment *k* is the super-frame's +
//!     *k* × `segment_size`; CWR stays only on the first segment, FIN and
//!     PSH only on the last; every other header byte is copied;
//!   - the TCP checksum of every segment is computed in full over the
//!     segment and its pseudo-header (the kernel adjusts the pseudo-header
//!     sum the super-frame holds, which gives the same bytes when that sum
//!     is right; xconnect recomputes it, so a wrong one cannot leak into
//!     the segments).
//!
//!   A UDP super-frame (`VIRTIO_NET_HDR_GSO_UDP_L4`: a host's
//!   `UDP_SEGMENT`, as QUIC stacks send) is cut the same way
//!   (`__udp_gso_segment`): every segment is one datagram of
//!   `segment_size` payload bytes (the last one the rest), with its UDP
//!   length and checksum (0 written as 0xffff) of its own and the IP
//!   fields as for TCP. A datagram is never cut smaller than the sender
//!   made it: when one would not fit the egress MTU the super-frame is
//!   refused ([`GsoError::DatagramOverMtu`]).
//!
//!   A super-frame whose payload fits in one segment is not segmented
//!   (the kernel's `virtio_net_hdr_to_skb` does not even mark it GSO): it
//!   leaves whole, its checksum completed if it was partial.
//! - [`complete_checksum`]: the checksum a `NEEDS_CSUM` frame still owes,
//!   as the kernel's `skb_checksum_help` fills it.
//!
//! Contract: nothing here panics, allocates or uses `unsafe`, whatever the
//! bytes and metadata; every failure is a [`GsoError`] that says what was
//! wrong. A [`Segmenter`] validates the whole super-frame when it is built;
//! after that, writing a segment fails only on a buffer that is too small.

use core::fmt;

use super::checksum::{self, PseudoHeader};
use super::error::WireError;
use super::ethernet::ethertype;
use super::frame::parse_tags;
use super::ipv4::{self, Ipv4Packet};
use super::ipv6::{self, Ipv6Packet};
use super::l4::{
    field::tcp as tcp_field, field::udp as udp_field, protocol, tcp_flags, TcpHeader,
    UDP_HEADER_LEN,
};

/// The bits of [`VirtioNetHdr::flags`] (virtio 1.x §5.1.6).
pub mod vnet_flags {
    /// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum at `csum_start +
    /// csum_offset` holds only the pseudo-header sum; the sum over
    /// `[csum_start..]` is still owed.
    pub const NEEDS_CSUM: u8 = 1;
    /// `VIRTIO_NET_HDR_F_DATA_VALID` (receive only): the kernel verified
    /// the checksum.
    pub const DATA_VALID: u8 = 2;
}

/// The values of [`VirtioNetHdr::gso_type`] (include/uapi/linux/virtio_net.h).
pub mod vnet_gso {
    /// `VIRTIO_NET_HDR_GSO_NONE`: not a super-frame.
    pub const NONE: u8 = 0;
    /// `VIRTIO_NET_HDR_GSO_TCPV4`: TCP over IPv4.
    pub const TCPV4: u8 = 1;
    /// `VIRTIO_NET_HDR_GSO_UDP`: UDP fragmentation offload (xconnect does
    /// not carry it).
    pub const UDP: u8 = 3;
    /// `VIRTIO_NET_HDR_GSO_TCPV6`: TCP over IPv6.
    pub const TCPV6: u8 = 4;
    /// `VIRTIO_NET_HDR_GSO_UDP_L4`: UDP segmentation (USO), IPv4 or IPv6.
    pub const UDP_L4: u8 = 5;
    /// `VIRTIO_NET_HDR_GSO_ECN`: flag bit; the super-frame's TCP header
    /// has CWR set.
    pub const ECN: u8 = 0x80;
}

/// The legacy `struct virtio_net_hdr` (10 bytes), fields as they are on
/// the socket. See the module header for the byte order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct VirtioNetHdr {
    /// [`vnet_flags`] bits.
    pub flags: u8,
    /// One of [`vnet_gso`], possibly with [`vnet_gso::ECN`].
    pub gso_type: u8,
    /// Length of the headers (Ethernet through TCP): for the kernel a hint
    /// of how much to keep linear; on receive it is the skb's linear length.
    pub hdr_len: u16,
    /// Payload bytes per segment (the MSS), 0 when not a super-frame.
    pub gso_size: u16,
    /// Offset from the frame's first byte where checksumming starts.
    pub csum_start: u16,
    /// Offset of the checksum field from `csum_start`.
    pub csum_offset: u16,
}

/// Byte offsets of the [`VirtioNetHdr`] fields.
mod field {
    use crate::wire::Field;
    pub const FLAGS: usize = 0;
    pub const GSO_TYPE: usize = 1;
    pub const HDR_LEN: Field = 2..4;
    pub const GSO_SIZE: Field = 4..6;
    pub const CSUM_START: Field = 6..8;
    pub const CSUM_OFFSET: Field = 8..10;
}

#[inline(always)]
fn ne16(b: &[u8; VirtioNetHdr::LEN], f: core::ops::Range<usize>) -> u16 {
    u16::from_ne_bytes([b[f.start], b[f.start + 1]])
}

impl VirtioNetHdr {
    /// Length of the legacy header on the wire.
    pub const LEN: usize = 10;

    /// Read the header from the first [`Self::LEN`] bytes of `bytes`
    /// (more bytes, the frame, may follow).
    pub fn parse(bytes: &[u8]) -> Result<VirtioNetHdr, GsoError> {
        let b = bytes
            .first_chunk::<{ Self::LEN }>()
            .ok_or(GsoError::Truncated {
                what: "virtio_net_hdr",
                needed: Self::LEN,
                present: bytes.len(),
            })?;
        Ok(VirtioNetHdr {
            flags: b[field::FLAGS],
            gso_type: b[field::GSO_TYPE],
            hdr_len: ne16(b, field::HDR_LEN),
            gso_size: ne16(b, field::GSO_SIZE),
            csum_start: ne16(b, field::CSUM_START),
            csum_offset: ne16(b, field::CSUM_OFFSET),
        })
    }

    /// Write the header into the first [`Self::LEN`] bytes of `buf`;
    /// returns [`Self::LEN`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, GsoError> {
        let present = buf.len();
        let b = buf
            .first_chunk_mut::<{ Self::LEN }>()
            .ok_or(GsoError::Truncated {
                what: "virtio_net_hdr buffer",
                needed: Self::LEN,
                present,
            })?;
        b[field::FLAGS] = self.flags;
        b[field::GSO_TYPE] = self.gso_type;
        b[field::HDR_LEN].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[field::GSO_SIZE].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[field::CSUM_START].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[field::CSUM_OFFSET].copy_from_slice(&self.csum_offset.to_ne_bytes());
        Ok(Self::LEN)
    }
}

/// The standard Ethernet MTU (network-layer bytes): the link
/// [`Offload::of_captured`] assumes when no segment size is given.
pub const ETHERNET_MTU: u16 = 1500;

/// Whether a frame is a super-frame, and of what.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum GsoKind {
    /// An ordinary frame: it leaves as it is.
    #[default]
    None,
    /// A TCP-over-IPv4 super-frame.
    TcpV4,
    /// A TCP-over-IPv6 super-frame.
    TcpV6,
    /// A UDP super-frame over IPv4 or IPv6 (the IP version is read from
    /// the bytes): datagrams of `segment_size` payload bytes each.
    Udp,
}

/// What is owed on a frame's transport checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ChecksumState {
    /// Nothing: the bytes hold whatever checksum they hold.
    #[default]
    InBytes,
    /// `NEEDS_CSUM` (the kernel's `CHECKSUM_PARTIAL`): the 16-bit field at
    /// `start + offset` holds the pseudo-header sum; the Internet checksum
    /// over `[start..]` is still to be folded into it by whoever is last.
    Partial {
        /// Offset from the frame's first byte where checksumming starts
        /// (the transport header).
        start: u16,
        /// Offset of the checksum field from `start` (16 for TCP).
        offset: u16,
    },
    /// `DATA_VALID` (the kernel's `CHECKSUM_UNNECESSARY`, receive only):
    /// the receiving kernel verified the checksum in the bytes.
    Verified,
}

/// The offload metadata of one frame: what the batch carries beside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Offload {
    /// Super-frame or not, and of what.
    pub gso: GsoKind,
    /// `VIRTIO_NET_HDR_GSO_ECN`: the super-frame's CWR flag is set (kept
    /// for the round trip; segmentation reads the flag from the bytes).
    pub ecn: bool,
    /// Payload bytes per segment (the MSS); 0 when `gso` is `None`.
    pub segment_size: u16,
    /// The header-length hint (`hdr_len`), moved by [`Offload::shift`];
    /// 0 when unknown. Segmentation does not trust it: it reads the headers.
    pub header_len: u16,
    /// The transport checksum's state.
    pub checksum: ChecksumState,
}

impl Offload {
    /// An ordinary frame with nothing owed.
    pub const NONE: Offload = Offload {
        gso: GsoKind::None,
        ecn: false,
        segment_size: 0,
        header_len: 0,
        checksum: ChecksumState::InBytes,
    };

    /// The metadata a received `virtio_net_hdr` describes. Refuses what
    /// xconnect cannot carry: an unknown type (UFO among them), the ECN
    /// bit without a TCP type (the kernel's `virtio_net_hdr_to_skb`
    /// refuses it alone, and never sets it on UDP) and a super-frame with
    /// segment size 0.
    pub fn from_virtio(h: &VirtioNetHdr) -> Result<Offload, GsoError> {
        let ecn = h.gso_type & vnet_gso::ECN != 0;
        let gso = match h.gso_type {
            vnet_gso::NONE => GsoKind::None,
            t => match t & !vnet_gso::ECN {
                vnet_gso::TCPV4 => GsoKind::TcpV4,
                vnet_gso::TCPV6 => GsoKind::TcpV6,
                vnet_gso::UDP_L4 if !ecn => GsoKind::Udp,
                _ => return Err(GsoError::UnsupportedGsoType(h.gso_type)),
            },
        };
        if gso != GsoKind::None && h.gso_size == 0 {
            return Err(GsoError::ZeroSegmentSize);
        }
        let checksum = if h.flags & vnet_flags::NEEDS_CSUM != 0 {
            ChecksumState::Partial {
                start: h.csum_start,
                offset: h.csum_offset,
            }
        } else if h.flags & vnet_flags::DATA_VALID != 0 {
            ChecksumState::Verified
        } else {
            ChecksumState::InBytes
        };
        Ok(Offload {
            gso,
            ecn,
            segment_size: if gso == GsoKind::None { 0 } else { h.gso_size },
            header_len: h.hdr_len,
            checksum,
        })
    }

    /// The `virtio_net_hdr` that hands this frame to the kernel.
    pub fn to_virtio(&self) -> VirtioNetHdr {
        let (flags, csum_start, csum_offset) = match self.checksum {
            ChecksumState::InBytes => (0, 0, 0),
            ChecksumState::Partial { start, offset } => (vnet_flags::NEEDS_CSUM, start, offset),
            ChecksumState::Verified => (vnet_flags::DATA_VALID, 0, 0),
        };
        let (gso_type, gso_size) = match self.gso {
            GsoKind::None => (vnet_gso::NONE, 0),
            GsoKind::TcpV4 => (vnet_gso::TCPV4, self.segment_size),
            GsoKind::TcpV6 => (vnet_gso::TCPV6, self.segment_size),
            GsoKind::Udp => (vnet_gso::UDP_L4, self.segment_size),
        };
        let ecn = if self.ecn && matches!(self.gso, GsoKind::TcpV4 | GsoKind::TcpV6) {
            vnet_gso::ECN
        } else {
            0
        };
        VirtioNetHdr {
            flags,
            gso_type: gso_type | ecn,
            hdr_len: self.header_len,
            gso_size,
            csum_start,
            csum_offset,
        }
    }

    /// The metadata of a TCP super-frame read back from a capture, where
    /// the `virtio_net_hdr` that came with it is lost. `tcpdump` on a host
    /// or veth with segmentation offload on records a super-frame as the
    /// kernel holds it: one IP packet with many segments' payload, its TCP
    /// checksum field holding only the pseudo-header sum (over the whole
    /// TCP length) when the checksum is owed.
    ///
    /// `Some` for an IPv4 (not a fragment) or IPv6 (TCP as the first next
    /// header) packet carrying TCP, whose IP length ends where the frame
    /// ends and whose payload is longer than one segment:
    /// - the kind from the IP version; ECN from the TCP CWR flag (as the
    ///   kernel sets `SKB_GSO_TCP_ECN`);
    /// - the segment size `segment_size`, or by default what an MTU of
    ///   [`ETHERNET_MTU`] leaves after this frame's IP and TCP headers
    ///   (the MSS Linux sends with on such a link);
    /// - the checksum `Partial` at the TCP header when its field holds the
    ///   pseudo-header sum, else `InBytes` (a complete checksum that
    ///   happens to equal that sum, one in 65,536, would be read as owed);
    /// - the header length: Ethernet through TCP options.
    ///
    /// `None` for anything else (the frame is then an ordinary one).
    pub fn of_captured(frame: &[u8], segment_size: Option<u16>) -> Option<Offload> {
        let (_, et_at) = parse_tags(frame).ok()?;
        let gso = match u16::from_be_bytes([*frame.get(et_at)?, *frame.get(et_at + 1)?]) {
            ethertype::IPV4 => GsoKind::TcpV4,
            ethertype::IPV6 => GsoKind::TcpV6,
            _ => return None,
        };
        let trial = Offload {
            gso,
            ecn: false,
            segment_size: u16::MAX,
            header_len: 0,
            checksum: ChecksumState::InBytes,
        };
        let s = Segmenter::new(frame, &trial, None).ok()?;
        let headers = u16::try_from(s.payload - s.l3).ok()?;
        let mss = segment_size.unwrap_or(ETHERNET_MTU.checked_sub(headers)?);
        if mss == 0 || frame.len() - s.payload <= mss as usize {
            return None;
        }
        let field = frame.get(s.l4 + tcp_field::CHECKSUM.start..s.l4 + tcp_field::CHECKSUM.end)?;
        let pseudo = checksum::fold(s.pseudo.sum(protocol::TCP, frame.len() - s.l4));
        let checksum = if u16::from_be_bytes([field[0], field[1]]) == pseudo {
            ChecksumState::Partial {
                start: u16::try_from(s.l4).ok()?,
                offset: tcp_field::CHECKSUM.start as u16,
            }
        } else {
            ChecksumState::InBytes
        };
        Some(Offload {
            gso,
            ecn: frame.get(s.l4 + tcp_field::FLAGS)? & tcp_flags::CWR != 0,
            segment_size: mss,
            header_len: u16::try_from(s.payload).ok()?,
            checksum,
        })
    }

    /// True for a super-frame (it may need cutting before it leaves).
    #[inline]
    pub fn is_super_frame(&self) -> bool {
        self.gso != GsoKind::None
    }

    /// Follow the frame's network header moving by `delta` bytes (+4 per
    /// tag pushed, −4 per tag popped): the checksum start and the header
    /// length move with it (a `header_len` of 0, unknown, stays 0). On an
    /// error (an offset would leave 0..=65535) nothing changes.
    pub fn shift(&mut self, delta: isize) -> Result<(), GsoError> {
        let moved = |v: u16| -> Result<u16, GsoError> {
            (v as isize)
                .checked_add(delta)
                .and_then(|n| u16::try_from(n).ok())
                .ok_or(GsoError::ShiftOutOfRange { value: v, delta })
        };
        let checksum = match self.checksum {
            ChecksumState::Partial { start, offset } => ChecksumState::Partial {
                start: moved(start)?,
                offset,
            },
            other => other,
        };
        let header_len = if self.header_len == 0 {
            0
        } else {
            moved(self.header_len)?
        };
        self.checksum = checksum;
        self.header_len = header_len;
        Ok(())
    }
}

/// Why a frame could not be segmented or its metadata read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GsoError {
    /// A header of the frame is malformed or cut short.
    Wire(WireError),
    /// Fewer bytes than a fixed-size structure needs.
    Truncated {
        /// What was being read or written.
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        present: usize,
    },
    /// A `gso_type` xconnect does not carry (UFO, unknown, ECN alone or
    /// on UDP).
    UnsupportedGsoType(u8),
    /// A super-frame with segment size 0.
    ZeroSegmentSize,
    /// The frame's ethertype (after the tags) is not the network layer
    /// the metadata names.
    KindMismatch {
        /// What the metadata says.
        kind: GsoKind,
        /// The ethertype found.
        ethertype: u16,
    },
    /// The network header is followed by IPv6 extension headers, which
    /// xconnect does not segment.
    Ipv6Extension {
        /// The first extension header's number.
        next_header: u8,
    },
    /// The transport protocol is not the one the metadata names.
    WrongProtocol {
        /// What the metadata says.
        kind: GsoKind,
        /// The protocol found.
        protocol: u8,
    },
    /// The IPv4 packet is a fragment.
    Fragment,
    /// The IP length fields (or a UDP super-frame's UDP length) do not end
    /// where the frame ends (padding or bytes missing), so the payload to
    /// cut is not well defined.
    LengthMismatch {
        /// Where the IP packet ends by its length field.
        ip_end: usize,
        /// The frame's length.
        frame_len: usize,
    },
    /// A partial checksum whose field lies outside the frame.
    ChecksumOutOfFrame {
        /// `csum_start`.
        start: usize,
        /// `csum_offset`.
        offset: usize,
        /// The frame's length.
        len: usize,
    },
    /// A super-frame's partial checksum that is not its transport
    /// checksum (the kernel refuses a TCP super-frame whose `csum_offset`
    /// is not 16, a UDP one whose is not 6).
    ChecksumNotTransport {
        /// `csum_start`.
        start: u16,
        /// `csum_offset`.
        offset: u16,
        /// Where the transport header is.
        l4_offset: usize,
        /// Where its checksum field is, from the transport header.
        field: usize,
    },
    /// A UDP super-frame's datagrams do not fit the egress MTU (a
    /// datagram is never cut smaller than its sender made it).
    DatagramOverMtu {
        /// The MTU asked for (network-layer bytes).
        mtu: u16,
        /// The network-layer bytes of the largest datagram.
        needed: usize,
    },
    /// The MTU leaves no room for payload after the headers.
    MtuTooSmall {
        /// The MTU asked for (network-layer bytes).
        mtu: u16,
        /// Network and transport header bytes.
        headers: usize,
    },
    /// [`Offload::shift`] would move an offset out of 0..=65535.
    ShiftOutOfRange {
        /// The offset.
        value: u16,
        /// The shift.
        delta: isize,
    },
}

impl From<WireError> for GsoError {
    fn from(e: WireError) -> Self {
        GsoError::Wire(e)
    }
}

impl fmt::Display for GsoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            GsoError::Wire(e) => write!(f, "{e}"),
            GsoError::Truncated {
                what,
                needed,
                present,
            } => write!(f, "{what}: needs {needed} bytes, {present} present"),
            GsoError::UnsupportedGsoType(t) => {
                write!(f, "gso_type {t:#04x} is not TCPv4/TCPv6/UDP segmentation")
            }
            GsoError::ZeroSegmentSize => write!(f, "super-frame with segment size 0"),
            GsoError::KindMismatch { kind, ethertype } => {
                write!(f, "{kind:?} super-frame carries ethertype {ethertype:#06x}")
            }
            GsoError::Ipv6Extension { next_header } => write!(
                f,
                "IPv6 extension header {next_header} before the transport header: not segmented"
            ),
            GsoError::WrongProtocol { kind, protocol } => {
                write!(f, "{kind:?} super-frame carries protocol {protocol}")
            }
            GsoError::Fragment => write!(f, "super-frame is an IPv4 fragment"),
            GsoError::LengthMismatch { ip_end, frame_len } => write!(
                f,
                "IP length ends at byte {ip_end}, the frame at {frame_len}"
            ),
            GsoError::ChecksumOutOfFrame { start, offset, len } => write!(
                f,
                "checksum field at {start}+{offset} outside a {len}-byte frame"
            ),
            GsoError::ChecksumNotTransport {
                start,
                offset,
                l4_offset,
                field,
            } => write!(
                f,
                "partial checksum at {start}+{offset} is not the transport checksum ({l4_offset}+{field})"
            ),
            GsoError::DatagramOverMtu { mtu, needed } => write!(
                f,
                "UDP datagrams of {needed} bytes do not fit MTU {mtu} (not cut smaller)"
            ),
            GsoError::MtuTooSmall { mtu, headers } => {
                write!(
                    f,
                    "MTU {mtu} leaves no payload after {headers} header bytes"
                )
            }
            GsoError::ShiftOutOfRange { value, delta } => {
                write!(f, "offset {value} shifted by {delta} leaves 0..=65535")
            }
        }
    }
}

impl std::error::Error for GsoError {}

/// Make the IP length field of `frame`, whose network header starts at
/// `l3` and whose bytes end with the transport header, count `extra`
/// payload bytes beyond them (`extra` = 0: the headers alone); for a UDP
/// super-frame the UDP length follows too. IPv4's header checksum follows
/// incrementally (RFC 1624), so a wrong one stays wrong as it was. A
/// partial UDP checksum, whose pseudo-header sum counts the UDP length,
/// is left as it is: the length goes back to what it summed before the
/// frame leaves. This is how a super-frame's headers travel through the
/// pipeline as a frame of their own ([`crate::frame::SuperFrame`]).
pub fn set_ip_length(
    frame: &mut [u8],
    l3: usize,
    kind: GsoKind,
    extra: usize,
) -> Result<(), GsoError> {
    let v4 = match kind {
        GsoKind::None => return Ok(()),
        GsoKind::TcpV4 => true,
        GsoKind::TcpV6 => false,
        GsoKind::Udp => frame.get(l3).is_some_and(|b| b >> 4 == 4),
    };
    let truncated = |what, needed| GsoError::Truncated {
        what,
        needed,
        present: frame.len(),
    };
    let fixed = if v4 { 20 } else { ipv6::HEADER_LEN };
    if frame.len() < l3 + fixed {
        return Err(truncated("network header", l3 + fixed));
    }
    let after = frame.len() - l3;
    let ip_header = if v4 {
        (frame[l3] & 0x0f) as usize * 4
    } else {
        ipv6::HEADER_LEN
    };
    let to_u16 = |len: usize| {
        u16::try_from(len).map_err(|_| GsoError::Truncated {
            what: "IP length field (65535 at most)",
            needed: len,
            present: u16::MAX as usize,
        })
    };
    let (at, len) = if v4 {
        (l3 + 2, to_u16(after + extra)?)
    } else {
        (l3 + 4, to_u16(after + extra - ipv6::HEADER_LEN)?)
    };
    if kind == GsoKind::Udp {
        let l4 = l3 + ip_header;
        if frame.len() < l4 + UDP_HEADER_LEN {
            return Err(truncated("UDP header", l4 + UDP_HEADER_LEN));
        }
        let udp_len = to_u16(after + extra - ip_header)?;
        frame[l4 + udp_field::LENGTH.start..l4 + udp_field::LENGTH.end]
            .copy_from_slice(&udp_len.to_be_bytes());
    }
    let old = u16::from_be_bytes([frame[at], frame[at + 1]]);
    frame[at..at + 2].copy_from_slice(&len.to_be_bytes());
    if v4 {
        let c = l3 + 10;
        let hc = u16::from_be_bytes([frame[c], frame[c + 1]]);
        let hc = checksum::update16(hc, old, len);
        frame[c..c + 2].copy_from_slice(&hc.to_be_bytes());
    }
    Ok(())
}

/// Fold the Internet checksum over `frame[start..]` into the 16-bit field
/// at `start + offset`, which holds the pseudo-header sum (virtio 1.x
/// §5.1.6.2, `VIRTIO_NET_HDR_F_NEEDS_CSUM`). A result of 0 is written as
/// 0xffff, as the kernel's `skb_checksum_help` does (`CSUM_MANGLED_0`:
/// the same value in one's complement, and the one UDP requires).
pub fn complete_checksum(frame: &mut [u8], start: usize, offset: usize) -> Result<(), GsoError> {
    let len = frame.len();
    let out_of_frame = GsoError::ChecksumOutOfFrame { start, offset, len };
    let at = start.checked_add(offset).ok_or(out_of_frame)?;
    if at.checked_add(2).is_none_or(|end| end > len) {
        return Err(out_of_frame);
    }
    let c = !checksum::fold(checksum::sum(&frame[start..], 0));
    let c = if c == 0 { 0xffff } else { c };
    frame[at..at + 2].copy_from_slice(&c.to_be_bytes());
    Ok(())
}

/// How a validated frame is cut.
#[derive(Clone, Copy, Debug)]
enum Plan {
    /// Leave whole; complete the partial checksum at (start, offset) if any.
    Whole(Option<(usize, usize)>),
    /// Leave whole with the transport checksum recomputed (a super-frame
    /// that fits in one segment, with a partial checksum).
    WholeL4,
    /// Cut into segments.
    Cut,
}

/// A super-frame, validated, cut one segment at a time into buffers the
/// caller provides (no allocation; a lending iterator).
#[derive(Clone, Debug)]
pub struct Segmenter<'a> {
    frame: &'a [u8],
    plan: Plan,
    /// Offset of the network header.
    l3: usize,
    /// Offset of the transport header.
    l4: usize,
    /// The transport protocol (TCP or UDP).
    proto: u8,
    /// Offset of the transport checksum field from `l4`.
    csum_field: usize,
    /// Offset of the payload (end of the headers).
    payload: usize,
    v4: bool,
    mss: usize,
    count: usize,
    next: usize,
    pseudo: PseudoHeader,
    seq: u32,
    ident: u16,
}

impl<'a> Segmenter<'a> {
    /// Validate `frame` against `offload` and plan its segments. `mtu`, the
    /// egress MTU in network-layer bytes (as Linux counts it), lowers the
    /// segment size when the segments would not fit. A frame that is not a
    /// super-frame is not parsed: it comes out whole, its partial checksum
    /// completed.
    pub fn new(frame: &'a [u8], offload: &Offload, mtu: Option<u16>) -> Result<Self, GsoError> {
        let mut s = Segmenter {
            frame,
            plan: Plan::Whole(None),
            l3: 0,
            l4: 0,
            proto: protocol::TCP,
            csum_field: tcp_field::CHECKSUM.start,
            payload: 0,
            v4: false,
            mss: 0,
            count: 1,
            next: 0,
            pseudo: PseudoHeader::V4 {
                src: [0; 4].into(),
                dst: [0; 4].into(),
            },
            seq: 0,
            ident: 0,
        };
        // The IP version the metadata names (`None`: UDP, either), and the
        // transport protocol.
        let (want_v4, proto) = match offload.gso {
            GsoKind::None => {
                if let ChecksumState::Partial { start, offset } = offload.checksum {
                    let (start, offset) = (start as usize, offset as usize);
                    if start + offset + 2 > frame.len() {
                        return Err(GsoError::ChecksumOutOfFrame {
                            start,
                            offset,
                            len: frame.len(),
                        });
                    }
                    s.plan = Plan::Whole(Some((start, offset)));
                }
                return Ok(s);
            }
            GsoKind::TcpV4 => (Some(true), protocol::TCP),
            GsoKind::TcpV6 => (Some(false), protocol::TCP),
            GsoKind::Udp => (None, protocol::UDP),
        };
        if offload.segment_size == 0 {
            return Err(GsoError::ZeroSegmentSize);
        }
        let (_tags, et_at) = parse_tags(frame)?;
        let l3 = et_at + 2;
        let et = u16::from_be_bytes([frame[et_at], frame[et_at + 1]]);
        let l3_bytes = frame.get(l3..).unwrap_or_default();
        let wrong = |protocol| GsoError::WrongProtocol {
            kind: offload.gso,
            protocol,
        };
        let (l4, ip_end, v4) = match (want_v4, et) {
            (Some(true) | None, ethertype::IPV4) => {
                let p = Ipv4Packet::new_checked(l3_bytes, l3)?;
                if p.is_fragment() {
                    return Err(GsoError::Fragment);
                }
                if p.protocol() != proto {
                    return Err(wrong(p.protocol()));
                }
                s.pseudo = PseudoHeader::V4 {
                    src: p.src(),
                    dst: p.dst(),
                };
                s.ident = p.ident();
                (l3 + p.header_len(), l3 + p.total_len() as usize, true)
            }
            (Some(false) | None, ethertype::IPV6) => {
                let p = Ipv6Packet::new_checked(l3_bytes, l3)?;
                let nh = p.next_header();
                if nh != proto {
                    return Err(if ipv6::is_extension(nh) {
                        GsoError::Ipv6Extension { next_header: nh }
                    } else {
                        wrong(nh)
                    });
                }
                s.pseudo = PseudoHeader::V6 {
                    src: p.src(),
                    dst: p.dst(),
                };
                (
                    l3 + ipv6::HEADER_LEN,
                    l3 + ipv6::HEADER_LEN + p.payload_len() as usize,
                    false,
                )
            }
            _ => {
                return Err(GsoError::KindMismatch {
                    kind: offload.gso,
                    ethertype: et,
                })
            }
        };
        if ip_end != frame.len() {
            return Err(GsoError::LengthMismatch {
                ip_end,
                frame_len: frame.len(),
            });
        }
        let (payload, csum_field) = if proto == protocol::TCP {
            let tcp = TcpHeader::new_checked(&frame[l4..], l4)?;
            s.seq = tcp.seq_number();
            (l4 + tcp.header_len(), tcp_field::CHECKSUM.start)
        } else {
            if frame.len() < l4 + UDP_HEADER_LEN {
                return Err(GsoError::Truncated {
                    what: "UDP header",
                    needed: l4 + UDP_HEADER_LEN,
                    present: frame.len(),
                });
            }
            // The UDP length must say what the IP length says (a stack's
            // super-frame always does): the pipeline carries the headers
            // with both lengths counting only them and gives both back.
            let at = l4 + udp_field::LENGTH.start;
            let udp_end = l4 + u16::from_be_bytes([frame[at], frame[at + 1]]) as usize;
            if udp_end != frame.len() {
                return Err(GsoError::LengthMismatch {
                    ip_end: udp_end,
                    frame_len: frame.len(),
                });
            }
            (l4 + UDP_HEADER_LEN, udp_field::CHECKSUM.start)
        };
        if let ChecksumState::Partial { start, offset } = offload.checksum {
            if start as usize != l4 || offset as usize != csum_field {
                return Err(GsoError::ChecksumNotTransport {
                    start,
                    offset,
                    l4_offset: l4,
                    field: csum_field,
                });
            }
        }
        let payload_len = frame.len() - payload;
        let mut mss = offload.segment_size as usize;
        if let Some(mtu) = mtu {
            let headers = payload - l3;
            if (mtu as usize) <= headers {
                return Err(GsoError::MtuTooSmall { mtu, headers });
            }
            if proto == protocol::UDP {
                // A datagram keeps the size its sender gave it.
                let needed = headers + mss.min(payload_len);
                if needed > mtu as usize {
                    return Err(GsoError::DatagramOverMtu { mtu, needed });
                }
            }
            mss = mss.min(mtu as usize - headers);
        }
        (s.l3, s.l4, s.payload, s.v4, s.mss) = (l3, l4, payload, v4, mss);
        (s.proto, s.csum_field) = (proto, csum_field);
        if payload_len <= mss {
            s.plan = match offload.checksum {
                ChecksumState::Partial { .. } => Plan::WholeL4,
                _ => Plan::Whole(None),
            };
        } else {
            s.plan = Plan::Cut;
            s.count = payload_len.div_ceil(mss);
        }
        Ok(s)
    }

    /// Offset of the network header (0 for a frame that is not a
    /// super-frame: it was not parsed).
    #[inline]
    pub fn network_offset(&self) -> usize {
        self.l3
    }

    /// Bytes of headers (Ethernet through TCP or UDP): where the payload starts
    /// (0 for a frame that is not a super-frame).
    #[inline]
    pub fn header_len(&self) -> usize {
        self.payload
    }

    /// How many frames come out (1 for a frame that is not cut).
    #[inline]
    pub fn segments(&self) -> usize {
        self.count
    }

    /// The payload bytes per segment (the segment size, lowered to fit the
    /// MTU); 0 for a frame that is not a super-frame.
    #[inline]
    pub fn segment_size(&self) -> usize {
        self.mss
    }

    /// The longest frame that comes out: the size a buffer for
    /// [`Segmenter::write_next`] needs.
    #[inline]
    pub fn max_segment_len(&self) -> usize {
        match self.plan {
            Plan::Cut => self.payload + self.mss,
            _ => self.frame.len(),
        }
    }

    /// Write the next frame into the front of `out` and return its length,
    /// or `None` when every frame has been written. Fails only when `out`
    /// is shorter than that frame (then nothing is consumed).
    pub fn write_next(&mut self, out: &mut [u8]) -> Result<Option<usize>, GsoError> {
        if self.next >= self.count {
            return Ok(None);
        }
        let len = match self.plan {
            Plan::Whole(csum) => {
                let n = self.frame.len();
                let dst = Self::area(out, n)?;
                dst.copy_from_slice(self.frame);
                if let Some((start, offset)) = csum {
                    complete_checksum(dst, start, offset)?;
                }
                n
            }
            Plan::WholeL4 => {
                let n = self.frame.len();
                let dst = Self::area(out, n)?;
                dst.copy_from_slice(self.frame);
                let c = self.l4_checksum(dst);
                // As skb_checksum_help writes it (see complete_checksum).
                let c = if c == 0 { 0xffff } else { c };
                self.put_checksum(dst, c);
                n
            }
            Plan::Cut => self.cut(self.next, out)?,
        };
        self.next += 1;
        Ok(Some(len))
    }

    fn area(out: &mut [u8], n: usize) -> Result<&mut [u8], GsoError> {
        let present = out.len();
        out.get_mut(..n).ok_or(GsoError::Truncated {
            what: "segment buffer",
            needed: n,
            present,
        })
    }

    /// The transport checksum of the segment in `seg` (its field zeroed
    /// first).
    fn l4_checksum(&self, seg: &mut [u8]) -> u16 {
        self.put_checksum(seg, 0);
        self.pseudo.checksum(self.proto, &seg[self.l4..])
    }

    /// Write `c` into the transport checksum field of `seg`.
    fn put_checksum(&self, seg: &mut [u8], c: u16) {
        let at = self.l4 + self.csum_field;
        seg[at..at + 2].copy_from_slice(&c.to_be_bytes());
    }

    /// Build segment `k` of a super-frame in `out`.
    fn cut(&self, k: usize, out: &mut [u8]) -> Result<usize, GsoError> {
        let from = self.payload + k * self.mss;
        let to = (from + self.mss).min(self.frame.len());
        let n = self.payload + (to - from);
        let seg = Self::area(out, n)?;
        seg[..self.payload].copy_from_slice(&self.frame[..self.payload]);
        seg[self.payload..].copy_from_slice(&self.frame[from..to]);
        let ip = &mut seg[self.l3..];
        if self.v4 {
            // inet_gso_segment: id++ per segment, tot_len, ip_send_check.
            let ihl = (ip[ipv4::field::VER_IHL] & 0x0f) as usize * 4;
            ip[ipv4::field::TOTAL_LEN].copy_from_slice(&((n - self.l3) as u16).to_be_bytes());
            ip[ipv4::field::IDENT]
                .copy_from_slice(&self.ident.wrapping_add(k as u16).to_be_bytes());
            ip[ipv4::field::CHECKSUM].fill(0);
            let c = checksum::checksum(&ip[..ihl]);
            ip[ipv4::field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
        } else {
            // ipv6_gso_segment: payload_len per segment.
            let plen = (n - self.l3 - ipv6::HEADER_LEN) as u16;
            ip[ipv6::field::PAYLOAD_LEN].copy_from_slice(&plen.to_be_bytes());
        }
        if self.proto == protocol::UDP {
            // __udp_gso_segment: each datagram its own length and checksum
            // (0 goes out as 0xffff: 0 would mean "none" over IPv4).
            let len = ((n - self.l4) as u16).to_be_bytes();
            seg[self.l4 + udp_field::LENGTH.start..self.l4 + udp_field::LENGTH.end]
                .copy_from_slice(&len);
            let c = self.l4_checksum(seg);
            self.put_checksum(seg, if c == 0 { 0xffff } else { c });
            return Ok(n);
        }
        // tcp_gso_segment: seq += mss per segment; CWR on the first only,
        // FIN and PSH on the last only.
        let tcp = &mut seg[self.l4..];
        let seq = self.seq.wrapping_add((k * self.mss) as u32);
        tcp[tcp_field::SEQ].copy_from_slice(&seq.to_be_bytes());
        if k > 0 {
            tcp[tcp_field::FLAGS] &= !tcp_flags::CWR;
        }
        if k + 1 < self.count {
            tcp[tcp_field::FLAGS] &= !(tcp_flags::FIN | tcp_flags::PSH);
        }
        let c = self.l4_checksum(seg);
        // As skb_checksum_help writes it (see complete_checksum).
        self.put_checksum(seg, if c == 0 { 0xffff } else { c });
        Ok(n)
    }
}

/// Cut `frame` as [`Segmenter`] does, building each frame in `scratch` and
/// handing it to `each`; returns how many frames were handed over. On an
/// error nothing was handed over (the frame is validated first, and
/// `scratch` must hold [`Segmenter::max_segment_len`] bytes).
pub fn segment(
    frame: &[u8],
    offload: &Offload,
    mtu: Option<u16>,
    scratch: &mut [u8],
    mut each: impl FnMut(&[u8]),
) -> Result<usize, GsoError> {
    let mut s = Segmenter::new(frame, offload, mtu)?;
    let need = s.max_segment_len();
    if scratch.len() < need {
        return Err(GsoError::Truncated {
            what: "segment buffer",
            needed: need,
            present: scratch.len(),
        });
    }
    let mut n = 0;
    while let Some(len) = s.write_next(scratch)? {
        each(&scratch[..len]);
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// An IPv4 TCP super-frame under one 802.1Q tag (VID 100), DF set,
    /// IPv4 ID 0xfffe, TCP seq 0xfffffffa, flags CWR|ACK|PSH|FIN, a
    /// 12-byte timestamp option, 10 payload bytes "ABCDEFGHIJ", its
    /// checksums complete.
    const SUPER: &str = "0200000000020200000000018100006408004500003efffe400040064e84c0000201c63364029c401451fffffffa010203048099020078fe00000101080a00000001000000024142434445464748494a";
    /// The same frame cut at 4 payload bytes, written out independently of
    /// this module (a 20-line Python script summing 16-bit words): IDs
    /// 0xfffe, 0xffff, 0x0000 and sequence numbers that wrap, CWR on the
    /// first segment only, PSH and FIN on the last only.
    const SEGMENTS: [&str; 3] = [
        "02000000000202000000000181000064080045000038fffe400040064e8ac0000201c63364029c401451fffffffa01020304809002004ee600000101080a000000010000000241424344",
        "02000000000202000000000181000064080045000038ffff400040064e89c0000201c63364029c401451fffffffe0102030480100200475a00000101080a000000010000000245464748",
        "020000000002020000000001810000640800450000360000400040064e8bc0000201c63364029c4014510000000201020304801902008a9400000101080a0000000100000002494a",
    ];
    /// Offsets in SUPER: tag, then IPv4 at 18, TCP at 38.
    const L4: usize = 38;

    fn tcp4(mss: u16, checksum: ChecksumState) -> Offload {
        Offload {
            gso: GsoKind::TcpV4,
            ecn: true,
            segment_size: mss,
            header_len: (L4 + 32) as u16,
            checksum,
        }
    }

    const PARTIAL: ChecksumState = ChecksumState::Partial {
        start: L4 as u16,
        offset: 16,
    };

    fn cut(frame: &[u8], o: &Offload, mtu: Option<u16>) -> Result<Vec<Vec<u8>>, GsoError> {
        let mut scratch = [0u8; 2048];
        let mut out = Vec::new();
        segment(frame, o, mtu, &mut scratch, |s| out.push(s.to_vec()))?;
        Ok(out)
    }

    /// The super-frame with the TCP checksum field holding the
    /// pseudo-header sum, as a sender using NEEDS_CSUM hands it over.
    fn partial(frame: &[u8]) -> Vec<u8> {
        let mut f = frame.to_vec();
        let ph = PseudoHeader::V4 {
            src: [192, 0, 2, 1].into(),
            dst: [198, 51, 100, 2].into(),
        };
        let sum = checksum::fold(ph.sum(protocol::TCP, f.len() - L4));
        f[L4 + 16..L4 + 18].copy_from_slice(&sum.to_be_bytes());
        f
    }

    #[test]
    fn virtio_net_hdr_takes_apart_and_builds() {
        let h = VirtioNetHdr {
            flags: vnet_flags::NEEDS_CSUM,
            gso_type: vnet_gso::TCPV4 | vnet_gso::ECN,
            hdr_len: 66,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
        };
        let mut b = [0xaau8; 12];
        assert_eq!(h.emit(&mut b), Ok(10));
        assert_eq!(b[10..], [0xaa, 0xaa], "writes 10 bytes only");
        #[cfg(target_endian = "little")]
        assert_eq!(b[..10], [0x01, 0x81, 66, 0, 0xa8, 0x05, 34, 0, 16, 0]);
        assert_eq!(VirtioNetHdr::parse(&b), Ok(h));
        assert_eq!(
            VirtioNetHdr::parse(&b[..9]),
            Err(GsoError::Truncated {
                what: "virtio_net_hdr",
                needed: 10,
                present: 9
            })
        );
        assert!(h.emit(&mut [0u8; 9]).is_err());
    }

    #[test]
    fn offload_reads_what_the_kernel_sends_and_refuses_the_rest() {
        let h = |flags, gso_type, gso_size| VirtioNetHdr {
            flags,
            gso_type,
            hdr_len: 54,
            gso_size,
            csum_start: 34,
            csum_offset: 16,
        };
        let o = Offload::from_virtio(&h(1, vnet_gso::TCPV6, 1440)).unwrap();
        assert_eq!(o.gso, GsoKind::TcpV6);
        assert_eq!(o.segment_size, 1440);
        assert_eq!(
            o.checksum,
            ChecksumState::Partial {
                start: 34,
                offset: 16
            }
        );
        assert_eq!(o.to_virtio(), h(1, vnet_gso::TCPV6, 1440));
        let o = Offload::from_virtio(&h(2, vnet_gso::NONE, 1440)).unwrap();
        assert_eq!((o.gso, o.segment_size), (GsoKind::None, 0));
        assert_eq!(o.checksum, ChecksumState::Verified);
        let o = Offload::from_virtio(&h(0, vnet_gso::TCPV4 | vnet_gso::ECN, 9)).unwrap();
        assert!(o.ecn && o.is_super_frame());
        assert_eq!(o.checksum, ChecksumState::InBytes);
        assert_eq!(o.to_virtio().gso_type, 0x81);
        let o = Offload::from_virtio(&h(1, vnet_gso::UDP_L4, 1200)).unwrap();
        assert_eq!((o.gso, o.segment_size, o.ecn), (GsoKind::Udp, 1200, false));
        assert_eq!(o.to_virtio(), h(1, vnet_gso::UDP_L4, 1200));
        let udp_ecn = vnet_gso::UDP_L4 | vnet_gso::ECN;
        for t in [vnet_gso::UDP, udp_ecn, vnet_gso::ECN, 2, 0x7f] {
            assert_eq!(
                Offload::from_virtio(&h(1, t, 100)),
                Err(GsoError::UnsupportedGsoType(t))
            );
        }
        assert_eq!(
            Offload::from_virtio(&h(1, vnet_gso::TCPV4, 0)),
            Err(GsoError::ZeroSegmentSize)
        );
        assert_eq!(Offload::NONE.to_virtio(), VirtioNetHdr::default());
    }

    #[test]
    fn shift_moves_the_checksum_start_and_header_length() {
        let mut o = tcp4(1448, PARTIAL);
        o.shift(4).unwrap();
        assert_eq!(
            o.checksum,
            ChecksumState::Partial {
                start: 42,
                offset: 16
            }
        );
        assert_eq!(o.header_len, 74);
        o.shift(-8).unwrap();
        assert_eq!(
            o.checksum,
            ChecksumState::Partial {
                start: 34,
                offset: 16
            }
        );
        assert_eq!(o.header_len, 66);
        let before = o;
        assert_eq!(
            o.shift(-40),
            Err(GsoError::ShiftOutOfRange {
                value: 34,
                delta: -40
            })
        );
        assert_eq!(o, before, "a failed shift changes nothing");
        let mut none = Offload::NONE;
        none.shift(-4).unwrap();
        assert_eq!(none, Offload::NONE, "nothing to move");
        assert!(o.shift(isize::MAX).is_err());
    }

    #[test]
    fn cuts_like_the_kernel_ids_and_sequence_numbers_wrap() {
        let sup = hex(SUPER);
        let want: Vec<Vec<u8>> = SEGMENTS.iter().map(|s| hex(s)).collect();
        // The checksum field's content does not matter: complete, partial
        // (pseudo-header sum) or unannounced.
        for (frame, c) in [
            (sup.clone(), ChecksumState::InBytes),
            (partial(&sup), PARTIAL),
            (sup.clone(), ChecksumState::Verified),
        ] {
            assert_eq!(cut(&frame, &tcp4(4, c), None).unwrap(), want, "{c:?}");
        }
        // The MTU lowers the segment size: 20 + 32 + 4 bytes at most.
        assert_eq!(cut(&sup, &tcp4(1448, PARTIAL), Some(56)).unwrap(), want);
        let s = Segmenter::new(&sup, &tcp4(1448, PARTIAL), Some(56)).unwrap();
        assert_eq!(
            (s.segments(), s.segment_size(), s.max_segment_len()),
            (3, 4, 74)
        );
        assert_eq!(
            Segmenter::new(&sup, &tcp4(4, PARTIAL), Some(52)).unwrap_err(),
            GsoError::MtuTooSmall {
                mtu: 52,
                headers: 52
            }
        );
    }

    #[test]
    fn a_super_frame_that_fits_leaves_whole_with_its_checksum_completed() {
        let sup = hex(SUPER);
        for mss in [10, 11, 1448] {
            assert_eq!(
                cut(&partial(&sup), &tcp4(mss, PARTIAL), None).unwrap(),
                std::slice::from_ref(&sup)
            );
            // Without NEEDS_CSUM the bytes are left as they are.
            let p = partial(&sup);
            assert_eq!(
                cut(&p, &tcp4(mss, ChecksumState::InBytes), None).unwrap(),
                [p]
            );
        }
    }

    #[test]
    fn a_captured_super_frame_gets_its_metadata_back() {
        let sup = hex(SUPER);
        // As tcpdump records it with offloads on: the checksum owed.
        assert_eq!(
            Offload::of_captured(&partial(&sup), Some(4)),
            Some(tcp4(4, PARTIAL))
        );
        // With its checksum complete it is owed nothing.
        assert_eq!(
            Offload::of_captured(&sup, Some(3)),
            Some(tcp4(3, ChecksumState::InBytes))
        );
        // The segments it makes are the kernel's (the test above).
        let o = Offload::of_captured(&partial(&sup), Some(4)).unwrap();
        assert_eq!(cut(&partial(&sup), &o, None).unwrap(), SEGMENTS.map(hex));
        // The default segment size: a 1500-byte MTU less 20 + 32 header
        // bytes; 10 payload bytes fit one such segment: not a super-frame.
        assert_eq!(Offload::of_captured(&sup, None), None);
        let mut big = partial(&sup);
        big.extend(std::iter::repeat_n(0x55, 3000));
        let ip_len = (big.len() - 18) as u16;
        big[20..22].copy_from_slice(&ip_len.to_be_bytes());
        // The IPv4 header checksum is not the capture's business here.
        let o = Offload::of_captured(&big, None).unwrap();
        assert_eq!((o.segment_size, o.header_len), (1448, 70));
        // Stale pseudo-header sum (length changed): read as in the bytes.
        assert_eq!(o.checksum, ChecksumState::InBytes);
        // Ending elsewhere than the IP length says, a fragment, not TCP,
        // not IP, cut short: not a super-frame, and no panic.
        let mut longer = partial(&sup);
        longer.push(0);
        let mut frag = partial(&sup);
        frag[18 + 6] |= 0x20;
        let mut udp = partial(&sup);
        udp[18 + 9] = 17;
        let mut arp = partial(&sup);
        arp[16..18].copy_from_slice(&[0x08, 0x06]);
        for f in [longer, frag, udp, arp] {
            assert_eq!(Offload::of_captured(&f, Some(4)), None);
        }
        for n in 0..sup.len() {
            assert_eq!(Offload::of_captured(&partial(&sup)[..n], Some(4)), None);
        }
        assert_eq!(Offload::of_captured(&partial(&sup), Some(0)), None);
    }

    #[test]
    fn a_plain_frame_with_a_partial_checksum_is_completed() {
        let sup = hex(SUPER);
        let o = Offload {
            checksum: PARTIAL,
            ..Offload::NONE
        };
        assert_eq!(
            cut(&partial(&sup), &o, None).unwrap(),
            std::slice::from_ref(&sup)
        );
        let mut f = partial(&sup);
        complete_checksum(&mut f, L4, 16).unwrap();
        assert_eq!(f, sup);
        // Not parsed: any bytes do, as long as the field is inside.
        assert_eq!(
            cut(&[0u8; 3], &Offload::NONE, None).unwrap(),
            [vec![0u8; 3]]
        );
        let o = Offload {
            checksum: ChecksumState::Partial {
                start: 1,
                offset: 1,
            },
            ..Offload::NONE
        };
        assert_eq!(
            cut(&[0u8; 3], &o, None),
            Err(GsoError::ChecksumOutOfFrame {
                start: 1,
                offset: 1,
                len: 3
            })
        );
        assert!(complete_checksum(&mut [0u8; 4], usize::MAX, 2).is_err());
        assert!(complete_checksum(&mut [0u8; 4], 2, 1).is_err());
        // A zero sum is written as 0xffff, as skb_checksum_help does.
        let mut z = [0u8; 4];
        complete_checksum(&mut z, 0, 2).unwrap();
        assert_eq!(z, [0, 0, 0xff, 0xff]);
    }

    /// A UDP super-frame: Ethernet, one 802.1Q tag, IPv4 or IPv6, UDP
    /// with the pseudo-header sum in its checksum field (as a host's
    /// `UDP_SEGMENT` hands it over), `payload` bytes counting up.
    fn udp_super(v6: bool, payload: usize) -> (Vec<u8>, Offload) {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x81, 0, 0, 100];
        let l3 = 18;
        let udp_len = 8 + payload;
        let ph = if v6 {
            f.extend_from_slice(&0x86ddu16.to_be_bytes());
            f.extend_from_slice(&[0x60, 0, 0, 0]);
            f.extend_from_slice(&(udp_len as u16).to_be_bytes());
            f.extend_from_slice(&[17, 64]);
            let src: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
            let dst: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
            f.extend_from_slice(&src);
            f.extend_from_slice(&dst);
            PseudoHeader::V6 {
                src: src.into(),
                dst: dst.into(),
            }
        } else {
            f.extend_from_slice(&0x0800u16.to_be_bytes());
            let mut ip = [0u8; 20];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&((20 + udp_len) as u16).to_be_bytes());
            ip[4..6].copy_from_slice(&0xfffeu16.to_be_bytes());
            ip[6] = 0x40; // DF
            ip[8] = 64;
            ip[9] = 17;
            ip[12..16].copy_from_slice(&[192, 0, 2, 1]);
            ip[16..20].copy_from_slice(&[192, 0, 2, 2]);
            let c = checksum::checksum(&ip);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&ip);
            PseudoHeader::V4 {
                src: [192, 0, 2, 1].into(),
                dst: [192, 0, 2, 2].into(),
            }
        };
        let l4 = f.len();
        f.extend_from_slice(&[0xc3, 0x50, 0x01, 0xbb]);
        f.extend_from_slice(&(udp_len as u16).to_be_bytes());
        let sum = checksum::fold(ph.sum(protocol::UDP, udp_len));
        f.extend_from_slice(&sum.to_be_bytes());
        f.extend((0..payload).map(|i| i as u8));
        let o = Offload {
            gso: GsoKind::Udp,
            ecn: false,
            segment_size: 500,
            header_len: (l4 + 8) as u16,
            checksum: ChecksumState::Partial {
                start: l4 as u16,
                offset: 6,
            },
        };
        assert_eq!(l3, 18);
        (f, o)
    }

    #[test]
    fn a_udp_super_frame_is_cut_into_datagrams_of_the_senders_size() {
        for v6 in [false, true] {
            let (sup, o) = udp_super(v6, 1300);
            let l4 = o.header_len as usize - 8;
            let segs = cut(&sup, &o, None).unwrap();
            assert_eq!(segs.len(), 3, "500 + 500 + 300");
            for (k, seg) in segs.iter().enumerate() {
                let size = if k < 2 { 500 } else { 300 };
                assert_eq!(seg.len(), l4 + 8 + size);
                assert_eq!(&seg[..18], &sup[..18], "MACs and tag copied");
                assert_eq!(&seg[l4..l4 + 4], &sup[l4..l4 + 4], "ports copied");
                let udp_len = u16::from_be_bytes([seg[l4 + 4], seg[l4 + 5]]) as usize;
                assert_eq!(udp_len, 8 + size);
                assert_eq!(&seg[l4 + 8..], &sup[l4 + 8 + 500 * k..][..size]);
                let ph = if v6 {
                    let plen = u16::from_be_bytes([seg[22], seg[23]]) as usize;
                    assert_eq!(plen, udp_len);
                    PseudoHeader::V6 {
                        src: <[u8; 16]>::try_from(&seg[26..42]).unwrap().into(),
                        dst: <[u8; 16]>::try_from(&seg[42..58]).unwrap().into(),
                    }
                } else {
                    let ip = &seg[18..38];
                    assert_eq!(u16::from_be_bytes([ip[2], ip[3]]) as usize, 20 + udp_len);
                    let id = u16::from_be_bytes([ip[4], ip[5]]);
                    assert_eq!(id, 0xfffeu16.wrapping_add(k as u16), "ID + k, wrapping");
                    assert_eq!(checksum::checksum(ip), 0, "IPv4 header checksum");
                    PseudoHeader::V4 {
                        src: [192, 0, 2, 1].into(),
                        dst: [192, 0, 2, 2].into(),
                    }
                };
                let c = u16::from_be_bytes([seg[l4 + 6], seg[l4 + 7]]);
                assert_ne!(c, 0, "a UDP checksum of 0 goes out as 0xffff");
                assert_eq!(
                    checksum::fold(ph.sum(protocol::UDP, udp_len) + checksum::sum(&seg[l4..], 0)),
                    0xffff,
                    "segment {k}: UDP checksum verifies"
                );
            }
            // The datagrams fit an MTU of exactly their size, not one less;
            // they are never cut smaller.
            let headers = o.header_len as usize - 18;
            let fit = (headers + 500) as u16;
            assert_eq!(cut(&sup, &o, Some(fit)).unwrap(), segs);
            assert_eq!(
                cut(&sup, &o, Some(fit - 1)),
                Err(GsoError::DatagramOverMtu {
                    mtu: fit - 1,
                    needed: headers + 500
                })
            );
            // A payload that fits one datagram leaves whole, checksum done.
            let (one, o1) = udp_super(v6, 400);
            let whole = cut(&one, &o1, None).unwrap();
            assert_eq!(whole.len(), 1);
            assert_eq!(whole[0].len(), one.len());
            // A UDP length that disagrees with the IP length is refused.
            let mut bad = sup.clone();
            bad[l4 + 5] ^= 1;
            assert!(matches!(
                cut(&bad, &o, None),
                Err(GsoError::LengthMismatch { .. })
            ));
            // The checksum must be at UDP's field, not TCP's.
            let off = Offload {
                checksum: ChecksumState::Partial {
                    start: l4 as u16,
                    offset: 16,
                },
                ..o
            };
            assert!(matches!(
                cut(&sup, &off, None),
                Err(GsoError::ChecksumNotTransport { field: 6, .. })
            ));
        }
    }

    #[test]
    fn a_udp_super_frames_headers_travel_with_both_lengths_counting_them() {
        for v6 in [false, true] {
            let (sup, o) = udp_super(v6, 1300);
            let n = o.header_len as usize;
            let mut headers = sup[..n].to_vec();
            set_ip_length(&mut headers, 18, GsoKind::Udp, 0).unwrap();
            assert_eq!(u16::from_be_bytes([headers[n - 4], headers[n - 3]]), 8);
            if !v6 {
                assert_eq!(u16::from_be_bytes([headers[20], headers[21]]), 28);
                assert_eq!(checksum::checksum(&headers[18..38]), 0);
            } else {
                assert_eq!(u16::from_be_bytes([headers[22], headers[23]]), 8);
            }
            set_ip_length(&mut headers, 18, GsoKind::Udp, 1300).unwrap();
            assert_eq!(&headers[..], &sup[..n], "back to the received bytes");
        }
    }

    #[test]
    fn refuses_what_it_cannot_cut_and_says_why() {
        let sup = hex(SUPER);
        let o = tcp4(4, PARTIAL);
        let v6 = Offload {
            gso: GsoKind::TcpV6,
            ..o
        };
        assert_eq!(
            cut(&sup, &v6, None),
            Err(GsoError::KindMismatch {
                kind: GsoKind::TcpV6,
                ethertype: 0x0800
            })
        );
        let mut udp = sup.clone();
        udp[18 + 9] = 17;
        assert_eq!(
            cut(&udp, &o, None),
            Err(GsoError::WrongProtocol {
                kind: GsoKind::TcpV4,
                protocol: 17
            })
        );
        let mut frag = sup.clone();
        frag[18 + 6] = 0x20; // MF
        assert_eq!(cut(&frag, &o, None), Err(GsoError::Fragment));
        let mut padded = sup.clone();
        padded.push(0);
        assert_eq!(
            cut(&padded, &o, None),
            Err(GsoError::LengthMismatch {
                ip_end: 80,
                frame_len: 81
            })
        );
        let off = Offload {
            checksum: ChecksumState::Partial {
                start: 38,
                offset: 6,
            },
            ..o
        };
        assert!(matches!(
            cut(&sup, &off, None),
            Err(GsoError::ChecksumNotTransport { field: 16, .. })
        ));
        let zero = Offload {
            segment_size: 0,
            ..o
        };
        assert_eq!(cut(&sup, &zero, None), Err(GsoError::ZeroSegmentSize));
        let mut s = Segmenter::new(&sup, &o, None).unwrap();
        let mut small = [0u8; 73];
        assert!(matches!(
            s.write_next(&mut small),
            Err(GsoError::Truncated { needed: 74, .. })
        ));
        assert_eq!(
            s.write_next(&mut [0u8; 74]),
            Ok(Some(74)),
            "nothing consumed by the failure"
        );
        assert!(segment(&sup, &o, None, &mut small, |_| panic!("handed over")).is_err());
        // Every truncation is an error, never a panic.
        for n in 0..sup.len() {
            assert!(cut(&sup[..n], &o, None).is_err(), "{n} bytes");
        }
        // An IPv6 extension header is named.
        let mut v6f = sup[..14].to_vec();
        v6f[12..14].copy_from_slice(&[0x86, 0xdd]);
        v6f.extend_from_slice(&[0x60, 0, 0, 0, 0, 8, 0, 64]);
        v6f.extend_from_slice(&[0u8; 32]);
        v6f.extend_from_slice(&[6, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            cut(&v6f, &v6, None),
            Err(GsoError::Ipv6Extension { next_header: 0 })
        );
        let msg = GsoError::Ipv6Extension { next_header: 0 }.to_string();
        assert!(msg.contains("extension header 0"), "{msg}");
    }

    proptest! {
        /// No input makes the segmenter or the header parser panic.
        #[test]
        fn never_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            hdr in any::<[u8; 10]>(),
            mtu in proptest::option::of(any::<u16>()),
            buf_len in 0usize..300,
        ) {
            let h = VirtioNetHdr::parse(&hdr).unwrap();
            let mut buf = vec![0u8; buf_len];
            if let Ok(mut o) = Offload::from_virtio(&h) {
                let _ = o.shift(hdr[0] as isize - 128);
                let _ = segment(&bytes, &o, mtu, &mut buf, |_| {});
                if let Ok(mut s) = Segmenter::new(&bytes, &o, mtu) {
                    while let Ok(Some(_)) = s.write_next(&mut buf) {}
                }
            }
            let mut b = bytes.clone();
            let _ = complete_checksum(&mut b, h.csum_start as usize, h.csum_offset as usize);
            for kind in [GsoKind::TcpV4, GsoKind::TcpV6, GsoKind::Udp] {
                let mut b = bytes.clone();
                let _ = set_ip_length(&mut b, hdr[1] as usize % 64, kind, hdr[2] as usize * 300);
            }
        }

        /// Offload ↔ virtio_net_hdr round-trips for every header xconnect
        /// accepts.
        #[test]
        fn virtio_round_trip(hdr in any::<[u8; 10]>()) {
            let h = VirtioNetHdr::parse(&hdr).unwrap();
            if let Ok(o) = Offload::from_virtio(&h) {
                prop_assert_eq!(Offload::from_virtio(&o.to_virtio()), Ok(o));
            }
        }
    }
}
