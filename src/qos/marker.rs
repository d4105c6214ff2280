//! The compiled DSCP marker: a policy turned into a 64-entry rewrite table
//! plus (rarely) an ordered rule list, applied in place to IPv4 or IPv6.
//!
//! Contract: only the six DSCP bits change; ECN is kept; the IPv4 header
//! checksum is patched incrementally (RFC 1624); the IPv6 traffic class is
//! written across its two bytes. A marker never fails: non-IP frames and
//! frames the caller did not parse as IP are left alone.

use super::policy::{DscpAction, DscpPolicy, DscpRule, EXPRESSROUTE_WHITELIST};
use crate::wire::frame::{FrameInfo, L3};
use crate::wire::ipv4::Ipv4Packet;
use crate::wire::ipv6::Ipv6Packet;
use crate::wire::Dscp;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A compiled DSCP policy.
#[derive(Clone, Debug)]
pub struct Marker {
    table: [u8; 64],
    rules: Box<[DscpRule]>,
    identity: bool,
}

impl Marker {
    /// Compile a policy.
    pub fn new(policy: &DscpPolicy) -> Marker {
        let mut table = [0u8; 64];
        for (v, out) in table.iter_mut().enumerate() {
            let d = v as u8;
            *out = match policy.action {
                DscpAction::Preserve => d,
                DscpAction::Reset => 0,
                DscpAction::Set(s) => s.get(),
                DscpAction::ExpressRoute => {
                    if EXPRESSROUTE_WHITELIST.iter().any(|w| w.get() == d) {
                        d
                    } else {
                        0
                    }
                }
            };
        }
        let identity =
            policy.rules.is_empty() && table.iter().enumerate().all(|(i, &v)| i as u8 == v);
        Marker {
            table,
            rules: policy.rules.clone().into_boxed_slice(),
            identity,
        }
    }

    /// True if this marker never changes a packet.
    #[inline(always)]
    pub fn is_identity(&self) -> bool {
        self.identity
    }

    /// The DSCP a packet with this `info` (and `frame` for the addresses)
    /// leaves with.
    #[inline(always)]
    pub fn decide(&self, info: &FrameInfo, frame: &[u8]) -> Dscp {
        if !self.rules.is_empty() {
            if let Some(d) = self.decide_by_rules(info, frame) {
                return d;
            }
        }
        // `tos >> 2` is < 64, so the index is in bounds.
        Dscp::from_tos(self.table[(info.tos >> 2) as usize] << 2)
    }

    /// The DSCP of the first rule that matches, if any (kept out of line:
    /// most policies have no rules, and the table lookup is inlined).
    #[inline(never)]
    fn decide_by_rules(&self, info: &FrameInfo, frame: &[u8]) -> Option<Dscp> {
        self.rules
            .iter()
            .find(|r| rule_matches(r, info, frame))
            .map(|r| r.set)
    }

    /// Apply to a parsed IP frame in place. Returns `(before, after)` DSCP
    /// when the frame is IP, `None` otherwise. `info` must come from parsing
    /// `frame` (its offsets are trusted, but a mismatch only means no change).
    ///
    /// Inlined into the egress tail: a call per frame cost more than the
    /// table lookup and checksum patch it wraps.
    #[inline(always)]
    pub fn apply(&self, info: &mut FrameInfo, frame: &mut [u8]) -> Option<(Dscp, Dscp)> {
        if !info.is_ip() {
            return None;
        }
        let before = info.dscp();
        if self.identity {
            return Some((before, before));
        }
        let after = self.decide(info, frame);
        if after != before {
            let l3 = frame.get_mut(info.l3_offset as usize..)?;
            match info.l3 {
                L3::Ipv4 => match l3.first_chunk_mut::<20>() {
                    Some(h) => Ipv4Packet::new_unchecked(h).set_dscp(after),
                    None => return Some((before, before)),
                },
                L3::Ipv6 => match l3.first_chunk_mut::<40>() {
                    Some(h) => Ipv6Packet::new_unchecked(h).set_dscp(after),
                    None => return Some((before, before)),
                },
                _ => return Some((before, before)),
            }
            info.tos = (after.get() << 2) | (info.tos & 3);
        }
        Some((before, after))
    }
}

/// Source and destination address of a parsed IP frame.
pub fn addresses(info: &FrameInfo, frame: &[u8]) -> Option<(IpAddr, IpAddr)> {
    let l3 = frame.get(info.l3_offset as usize..)?;
    match info.l3 {
        L3::Ipv4 if l3.len() >= 20 => {
            let s: [u8; 4] = l3[12..16].try_into().ok()?;
            let d: [u8; 4] = l3[16..20].try_into().ok()?;
            Some((Ipv4Addr::from(s).into(), Ipv4Addr::from(d).into()))
        }
        L3::Ipv6 if l3.len() >= 40 => {
            let s: [u8; 16] = l3[8..24].try_into().ok()?;
            let d: [u8; 16] = l3[24..40].try_into().ok()?;
            Some((Ipv6Addr::from(s).into(), Ipv6Addr::from(d).into()))
        }
        _ => None,
    }
}

fn prefix_matches(p: &Option<IpNet>, a: IpAddr) -> bool {
    match p {
        None => true,
        Some(net) => net.contains(&a),
    }
}

fn rule_matches(r: &DscpRule, info: &FrameInfo, frame: &[u8]) -> bool {
    if let Some(p) = r.protocol {
        if p != info.protocol {
            return false;
        }
    }
    if r.src_ports.is_some() || r.dst_ports.is_some() {
        if !info.has_ports {
            return false;
        }
        if let Some(sp) = &r.src_ports {
            if !sp.contains(&info.src_port) {
                return false;
            }
        }
        if let Some(dp) = &r.dst_ports {
            if !dp.contains(&info.dst_port) {
                return false;
            }
        }
    }
    if r.src_prefix.is_some() || r.dst_prefix.is_some() {
        let Some((s, d)) = addresses(info, frame) else {
            return false;
        };
        if !prefix_matches(&r.src_prefix, s) || !prefix_matches(&r.dst_prefix, d) {
            return false;
        }
    }
    true
}

/// PCP derived from a DSCP: its class selector (DSCP >> 3).
#[inline(always)]
pub const fn pcp_from_dscp(d: Dscp) -> u8 {
    d.get() >> 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressroute_table() {
        let m = Marker::new(&DscpPolicy::plain(DscpAction::ExpressRoute));
        let info = |d: u8| FrameInfo {
            l3: L3::Ipv4,
            tos: (d << 2) | 2,
            ..FrameInfo::default()
        };
        for d in 0..64u8 {
            let out = m.decide(&info(d), &[]).get();
            let keep = [46, 34, 18, 10, 0].contains(&d);
            assert_eq!(out, if keep { d } else { 0 }, "dscp {d}");
        }
        assert!(!m.is_identity());
        assert!(Marker::new(&DscpPolicy::default()).is_identity());
        let set = Marker::new(&DscpPolicy::plain(DscpAction::Set(Dscp::AF41)));
        assert_eq!(set.decide(&info(7), &[]), Dscp::AF41);
    }

    #[test]
    fn teams_rule_then_base() {
        let policy = DscpPolicy {
            rules: vec![DscpRule {
                protocol: Some(17),
                src_ports: Some(50000..=50019),
                dst_ports: None,
                src_prefix: Some("192.0.2.0/24".parse().unwrap()),
                dst_prefix: None,
                set: Dscp::EF,
            }],
            action: DscpAction::ExpressRoute,
        };
        let m = Marker::new(&policy);
        let mut f = crate::wire::frame::tests::QINQ_UDP;
        let mut info = crate::wire::parse(&f).unwrap();
        // TOS 0xb8 = EF already; force AF31 first.
        info.tos = 26 << 2;
        assert_eq!(m.decide(&info, &f), Dscp::EF);
        info.src_port = 40000;
        assert_eq!(m.decide(&info, &f), Dscp::CS0);
        let mut info = crate::wire::parse(&f).unwrap();
        assert_eq!(m.apply(&mut info, &mut f), Some((Dscp::EF, Dscp::EF)));
    }
}
