//! Wire errors that say which layer failed and where.
//!
//! A parse error reads like a sentence: `ipv4 header at offset 18: needs 20
//! bytes, 12 present`. Fuzz findings and `trace` output use it as is.
//!
//! The building side (`Repr::emit`) reports with the same type: the offset
//! is then from the start of the buffer handed to `emit`, and a buffer too
//! short for the header is a `Truncated` error.

use core::fmt;

/// The protocol layer a view or parse step was working on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layer {
    /// Ethernet II header.
    Ethernet,
    /// An 802.1Q/802.1ad tag.
    Vlan,
    /// IPv4 header.
    Ipv4,
    /// IPv6 fixed header.
    Ipv6,
    /// An IPv6 extension header.
    Ipv6Ext,
    /// An IP authentication header (IPv4 or IPv6, RFC 4302).
    IpAuth,
    /// ARP for Ethernet/IPv4.
    Arp,
    /// UDP header.
    Udp,
    /// TCP header.
    Tcp,
    /// ICMPv4 header.
    Icmpv4,
    /// ICMPv6 header.
    Icmpv6,
    /// An IPv6 neighbour discovery option (RFC 4861 §4.6).
    NdOption,
    /// An MPLS label stack entry (RFC 3032).
    Mpls,
    /// A pseudowire control word (RFC 4385).
    ControlWord,
}

impl Layer {
    /// Lower-case name as used in messages and JSON.
    pub const fn name(self) -> &'static str {
        match self {
            Layer::Ethernet => "ethernet",
            Layer::Vlan => "vlan",
            Layer::Ipv4 => "ipv4",
            Layer::Ipv6 => "ipv6",
            Layer::Ipv6Ext => "ipv6-ext",
            Layer::IpAuth => "ip-auth",
            Layer::Arp => "arp",
            Layer::Udp => "udp",
            Layer::Tcp => "tcp",
            Layer::Icmpv4 => "icmpv4",
            Layer::Icmpv6 => "icmpv6",
            Layer::NdOption => "nd-option",
            Layer::Mpls => "mpls",
            Layer::ControlWord => "pw-control-word",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What was wrong with the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Fewer bytes than the header (or the length it announces) needs.
    Truncated {
        /// Bytes needed from the layer's start.
        required: usize,
        /// Bytes present from the layer's start.
        present: usize,
    },
    /// More VLAN tags than [`super::MAX_TAGS`].
    TooManyTags,
    /// More MPLS label stack entries than [`super::mpls::MAX_LABELS`]
    /// before the bottom of the stack.
    TooManyLabels,
    /// A pseudowire control word whose first nibble is not 0.
    BadControlWord(u8),
    /// The IP version nibble does not match the ethertype.
    BadVersion(u8),
    /// A header-length field below its minimum (IPv4 IHL, TCP data offset).
    BadHeaderLen(u8),
    /// A total/payload length field inconsistent with the header.
    BadTotalLen(u16),
    /// More IPv6 extension headers than xconnect walks.
    TooManyExtensions,
    /// An ARP packet that is not Ethernet/IPv4.
    UnsupportedArp,
    /// A message type the view does not read (an ND view over another
    /// ICMPv6 type).
    BadType(u8),
    /// A message code other than the one the type requires (RFC 4861
    /// §7.1: ND messages have code 0).
    BadCode(u8),
    /// An option length field of zero (RFC 4861 §4.6: such a packet is
    /// discarded).
    BadOptionLen(u8),
    /// On the building side: a value that does not fit its header field
    /// (a length over 65535, a flow label over 20 bits).
    TooBig {
        /// Largest value the field holds.
        max: usize,
        /// The value asked for.
        value: usize,
    },
}

/// A parse failure: the layer, the offset of that layer in the frame, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WireError {
    /// The layer being parsed.
    pub layer: Layer,
    /// Byte offset of the start of that layer in the frame.
    pub offset: usize,
    /// What was wrong.
    pub kind: ErrorKind,
}

impl WireError {
    /// A truncation error.
    #[inline]
    pub const fn truncated(layer: Layer, offset: usize, required: usize, present: usize) -> Self {
        WireError {
            layer,
            offset,
            kind: ErrorKind::Truncated { required, present },
        }
    }

    /// An error of another kind.
    #[inline]
    pub const fn new(layer: Layer, offset: usize, kind: ErrorKind) -> Self {
        WireError {
            layer,
            offset,
            kind,
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} header at offset {}: ", self.layer, self.offset)?;
        match self.kind {
            ErrorKind::Truncated { required, present } => {
                write!(f, "needs {required} bytes, {present} present")
            }
            ErrorKind::TooManyTags => write!(f, "more than {} VLAN tags", super::MAX_TAGS),
            ErrorKind::TooManyLabels => write!(
                f,
                "more than {} MPLS labels before the bottom of the stack",
                super::mpls::MAX_LABELS
            ),
            ErrorKind::BadControlWord(n) => {
                write!(f, "first nibble {n} where a control word has 0")
            }
            ErrorKind::BadVersion(v) => write!(f, "IP version {v} does not match the ethertype"),
            ErrorKind::BadHeaderLen(v) => write!(f, "header length field {v} below the minimum"),
            ErrorKind::BadTotalLen(v) => write!(f, "length field {v} inconsistent with the header"),
            ErrorKind::TooManyExtensions => write!(f, "too many IPv6 extension headers"),
            ErrorKind::UnsupportedArp => write!(f, "not an Ethernet/IPv4 ARP packet"),
            ErrorKind::BadType(v) => write!(f, "message type {v} is not one this view reads"),
            ErrorKind::BadCode(v) => write!(f, "message code {v} where the type requires 0"),
            ErrorKind::BadOptionLen(v) => write!(f, "option length field {v} (must be ≥ 1)"),
            ErrorKind::TooBig { max, value } => {
                write!(f, "value {value} does not fit its field (at most {max})")
            }
        }
    }
}

impl std::error::Error for WireError {}
