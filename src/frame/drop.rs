//! Why a frame was dropped. Every drop in the pipeline is counted under one
//! of these reasons; none is silent.

use core::fmt;

/// The reason a frame was not forwarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum DropReason {
    /// The frame failed to parse (truncated or inconsistent header).
    Malformed = 0,
    /// More than three VLAN tags.
    TooManyTags,
    /// No attachment matches the ingress port and tag stack.
    UnknownAttachment,
    /// The IP packet is larger than the peering's MTU.
    OverMtu,
    /// Neither trunk link of the circuit is up.
    NoLinkUp,
    /// The egress access port is down.
    PortDown,
    /// An `l3` frame whose IP header is invalid (checksum, lengths).
    BadIpHeader,
    /// An `l3` frame that is neither IP nor ARP.
    NotIp,
    /// TTL / hop limit exhausted (an ICMP error was sent unless rate-limited).
    TtlExpired,
    /// No route in the peering's table (ICMP unreachable unless rate-limited).
    NoRoute,
    /// The next hop's MAC is not resolved yet (a request was sent, rate-limited).
    NeighborUnresolved,
    /// The tag rewrite did not fit the buffer's headroom.
    TagRewrite,
    /// The backend's transmit ring was full.
    TxFull,
    /// An `l3` frame sent to another station's unicast MAC (not ours, not
    /// broadcast or multicast): a router does not route what is not
    /// addressed to it, even when its port is promiscuous.
    NotOurMac,
    /// A frame for a host interface over the worker's punt rate.
    PuntLimited,
    /// A labelled frame on a backbone port whose label (or transport
    /// label) no attachment of this forwarder owns.
    UnknownLabel,
}

impl DropReason {
    /// Number of reasons (size of counter arrays).
    pub const COUNT: usize = 16;

    /// All reasons in counter order.
    pub const ALL: [DropReason; Self::COUNT] = [
        DropReason::Malformed,
        DropReason::TooManyTags,
        DropReason::UnknownAttachment,
        DropReason::OverMtu,
        DropReason::NoLinkUp,
        DropReason::PortDown,
        DropReason::BadIpHeader,
        DropReason::NotIp,
        DropReason::TtlExpired,
        DropReason::NoRoute,
        DropReason::NeighborUnresolved,
        DropReason::TagRewrite,
        DropReason::TxFull,
        DropReason::NotOurMac,
        DropReason::PuntLimited,
        DropReason::UnknownLabel,
    ];

    /// Stable kebab-case name used in stats output and JSON.
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::TooManyTags => "too-many-tags",
            DropReason::UnknownAttachment => "unknown-attachment",
            DropReason::OverMtu => "over-mtu",
            DropReason::NoLinkUp => "no-link-up",
            DropReason::PortDown => "port-down",
            DropReason::BadIpHeader => "bad-ip-header",
            DropReason::NotIp => "not-ip",
            DropReason::TtlExpired => "ttl-expired",
            DropReason::NoRoute => "no-route",
            DropReason::NeighborUnresolved => "neighbor-unresolved",
            DropReason::TagRewrite => "tag-rewrite",
            DropReason::TxFull => "tx-full",
            DropReason::NotOurMac => "not-our-mac",
            DropReason::PuntLimited => "punt-limited",
            DropReason::UnknownLabel => "unknown-label",
        }
    }

    /// Index into counter arrays.
    #[inline(always)]
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_in_index_order() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
