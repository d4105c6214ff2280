//! DSCP policy as configured: a base action and an ordered rule list.
//!
//! A [`DscpPolicy`] is the configuration-level description; [`super::Marker`]
//! is its compiled, hot-path form.

use crate::wire::Dscp;
use ipnet::IpNet;
use std::ops::RangeInclusive;

/// What happens to the DSCP of a packet that no rule matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DscpAction {
    /// Leave the DSCP as it is (private peering default).
    Preserve,
    /// Keep EF(46), AF41(34), AF21(18), AF11(10) and CS0; rewrite every other
    /// value to 0 (ExpressRoute Microsoft peering).
    ExpressRoute,
    /// Rewrite every value to 0 (the legacy private-peering behaviour).
    Reset,
    /// Rewrite every value to this one.
    Set(Dscp),
}

/// The DSCP values ExpressRoute keeps on Microsoft peering.
pub const EXPRESSROUTE_WHITELIST: [Dscp; 5] =
    [Dscp::EF, Dscp::AF41, Dscp::AF21, Dscp::AF11, Dscp::CS0];

/// One classifier rule: all present fields must match; the first matching
/// rule sets the DSCP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DscpRule {
    /// IP protocol number (6 TCP, 17 UDP, 1/58 ICMP); `None` matches any.
    pub protocol: Option<u8>,
    /// Source port range (TCP/UDP only).
    pub src_ports: Option<RangeInclusive<u16>>,
    /// Destination port range (TCP/UDP only).
    pub dst_ports: Option<RangeInclusive<u16>>,
    /// Source prefix.
    pub src_prefix: Option<IpNet>,
    /// Destination prefix.
    pub dst_prefix: Option<IpNet>,
    /// The DSCP written when the rule matches.
    pub set: Dscp,
}

/// A DSCP policy: ordered rules, then a base action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DscpPolicy {
    /// Rules tried in order before `action`.
    pub rules: Vec<DscpRule>,
    /// Applied when no rule matched.
    pub action: DscpAction,
}

impl DscpPolicy {
    /// A policy with no rules.
    pub fn plain(action: DscpAction) -> DscpPolicy {
        DscpPolicy {
            rules: Vec::new(),
            action,
        }
    }

    /// True if the policy never changes a packet.
    pub fn is_preserve(&self) -> bool {
        self.rules.is_empty() && self.action == DscpAction::Preserve
    }
}

impl Default for DscpPolicy {
    fn default() -> Self {
        Self::plain(DscpAction::Preserve)
    }
}
