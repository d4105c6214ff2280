//! Address classes: is an address (or prefix) public, documentation,
//! private, shared, loopback, …?
//!
//! Microsoft peering accepts only public addresses (ExpressRoute routing
//! requirements). *Model*: documentation space (RFC 5737, RFC 3849) stands in
//! for public space so that tests and demos can use it. `check` prints the
//! class of every address so the reason for a refusal is visible.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The class an IP address (or prefix) falls into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressClass {
    /// Globally routable unicast space.
    Public,
    /// Documentation space (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
    /// 2001:db8::/32): treated as public by the model.
    Documentation,
    /// RFC 1918 private space (10/8, 172.16/12, 192.168/16).
    Private,
    /// RFC 6598 shared address space (100.64.0.0/10).
    Shared,
    /// Loopback (127/8, ::1).
    Loopback,
    /// Link-local (169.254/16, fe80::/10).
    LinkLocal,
    /// IPv6 unique local addresses (fc00::/7).
    Ula,
    /// Multicast (224/4, ff00::/8).
    Multicast,
    /// The unspecified address (0.0.0.0, ::).
    Unspecified,
    /// Other reserved space (0/8, 240/4, 192.0.0.0/24, 198.18.0.0/15,
    /// IPv4-mapped IPv6, IPv6 outside 2000::/3 not listed above).
    Reserved,
}

impl AddressClass {
    /// True for the classes Microsoft peering accepts: public and (model)
    /// documentation space.
    pub fn is_public(self) -> bool {
        matches!(self, AddressClass::Public | AddressClass::Documentation)
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressClass::Public => "public",
            AddressClass::Documentation => "documentation (counts as public)",
            AddressClass::Private => "private (RFC 1918)",
            AddressClass::Shared => "shared (100.64.0.0/10, RFC 6598)",
            AddressClass::Loopback => "loopback",
            AddressClass::LinkLocal => "link-local",
            AddressClass::Ula => "unique local (fc00::/7)",
            AddressClass::Multicast => "multicast",
            AddressClass::Unspecified => "unspecified",
            AddressClass::Reserved => "reserved",
        })
    }
}

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> (Ipv4Addr, u8) {
    (Ipv4Addr::new(a, b, c, d), len)
}

/// IPv4 special blocks, most specific class first where they nest.
const V4_BLOCKS: &[((Ipv4Addr, u8), AddressClass)] = &[
    (v4(0, 0, 0, 0, 32), AddressClass::Unspecified),
    (v4(0, 0, 0, 0, 8), AddressClass::Reserved),
    (v4(10, 0, 0, 0, 8), AddressClass::Private),
    (v4(172, 16, 0, 0, 12), AddressClass::Private),
    (v4(192, 168, 0, 0, 16), AddressClass::Private),
    (v4(100, 64, 0, 0, 10), AddressClass::Shared),
    (v4(127, 0, 0, 0, 8), AddressClass::Loopback),
    (v4(169, 254, 0, 0, 16), AddressClass::LinkLocal),
    (v4(224, 0, 0, 0, 4), AddressClass::Multicast),
    (v4(240, 0, 0, 0, 4), AddressClass::Reserved),
    (v4(192, 0, 0, 0, 24), AddressClass::Reserved),
    (v4(198, 18, 0, 0, 15), AddressClass::Reserved),
    (v4(192, 0, 2, 0, 24), AddressClass::Documentation),
    (v4(198, 51, 100, 0, 24), AddressClass::Documentation),
    (v4(203, 0, 113, 0, 24), AddressClass::Documentation),
];

const fn v6(segs: [u16; 8], len: u8) -> (Ipv6Addr, u8) {
    (
        Ipv6Addr::new(
            segs[0], segs[1], segs[2], segs[3], segs[4], segs[5], segs[6], segs[7],
        ),
        len,
    )
}

/// IPv6 special blocks, most specific first where they nest.
const V6_BLOCKS: &[((Ipv6Addr, u8), AddressClass)] = &[
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 128), AddressClass::Unspecified),
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), AddressClass::Loopback),
    (
        v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96),
        AddressClass::Reserved,
    ),
    (
        v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
        AddressClass::LinkLocal,
    ),
    (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), AddressClass::Ula),
    (
        v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),
        AddressClass::Multicast,
    ),
    (
        v6([0x2001, 0x0db8, 0, 0, 0, 0, 0, 0], 32),
        AddressClass::Documentation,
    ),
];

fn blocks() -> impl Iterator<Item = (IpNet, AddressClass)> {
    let b4 = V4_BLOCKS
        .iter()
        .filter_map(|&((a, l), c)| Ipv4Net::new(a, l).ok().map(|n| (IpNet::V4(n), c)));
    let b6 = V6_BLOCKS
        .iter()
        .filter_map(|&((a, l), c)| Ipv6Net::new(a, l).ok().map(|n| (IpNet::V6(n), c)));
    b4.chain(b6)
}

/// The special blocks that are not public (private, shared, loopback,
/// link-local, ULA, multicast, unspecified, reserved), IPv4 then IPv6, each
/// with its class: what a Microsoft peering refuses. IPv6 outside
/// 2000::/3 is reserved as well (see [`prefix_class`]).
pub fn non_public_blocks() -> impl Iterator<Item = (IpNet, AddressClass)> {
    blocks().filter(|(_, c)| !c.is_public())
}

/// The class of one address.
pub fn address_class(ip: IpAddr) -> AddressClass {
    prefix_class(IpNet::from(ip))
}

/// The class of a prefix: the class of the special block that contains it,
/// else the first non-public class of a special block it contains (a prefix
/// that covers private space is not public), else public.
pub fn prefix_class(net: IpNet) -> AddressClass {
    let net = net.trunc();
    if let Some((_, c)) = blocks().find(|(b, _)| b.contains(&net)) {
        return c;
    }
    if let Some((_, c)) = blocks().find(|(b, c)| !c.is_public() && net.contains(b)) {
        return c;
    }
    if let IpNet::V6(n) = net {
        let global = Ipv6Net::new(Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3).ok();
        if !global.is_some_and(|g| g.contains(&n)) {
            return AddressClass::Reserved;
        }
    }
    AddressClass::Public
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> AddressClass {
        address_class(s.parse().unwrap())
    }

    fn p(s: &str) -> AddressClass {
        prefix_class(s.parse().unwrap())
    }

    #[test]
    fn ipv4_classes() {
        assert_eq!(c("8.8.8.8"), AddressClass::Public);
        assert_eq!(c("192.0.2.1"), AddressClass::Documentation);
        assert_eq!(c("198.51.100.7"), AddressClass::Documentation);
        assert_eq!(c("203.0.113.255"), AddressClass::Documentation);
        assert_eq!(c("10.1.2.3"), AddressClass::Private);
        assert_eq!(c("172.31.255.1"), AddressClass::Private);
        assert_eq!(c("172.32.0.1"), AddressClass::Public);
        assert_eq!(c("192.168.0.1"), AddressClass::Private);
        assert_eq!(c("100.64.0.1"), AddressClass::Shared);
        assert_eq!(c("100.128.0.1"), AddressClass::Public);
        assert_eq!(c("127.0.0.1"), AddressClass::Loopback);
        assert_eq!(c("169.254.1.1"), AddressClass::LinkLocal);
        assert_eq!(c("224.0.0.5"), AddressClass::Multicast);
        assert_eq!(c("0.0.0.0"), AddressClass::Unspecified);
        assert_eq!(c("0.1.2.3"), AddressClass::Reserved);
        assert_eq!(c("255.255.255.255"), AddressClass::Reserved);
    }

    #[test]
    fn ipv6_classes() {
        assert_eq!(c("2001:db8::1"), AddressClass::Documentation);
        assert_eq!(c("2620:1ec::1"), AddressClass::Public);
        assert_eq!(c("::1"), AddressClass::Loopback);
        assert_eq!(c("::"), AddressClass::Unspecified);
        assert_eq!(c("fe80::1"), AddressClass::LinkLocal);
        assert_eq!(c("fd00::1"), AddressClass::Ula);
        assert_eq!(c("ff02::1"), AddressClass::Multicast);
        assert_eq!(c("::ffff:192.0.2.1"), AddressClass::Reserved);
        assert_eq!(c("4000::1"), AddressClass::Reserved);
    }

    #[test]
    fn prefixes_covering_special_space_are_not_public() {
        assert_eq!(p("8.0.0.0/6"), AddressClass::Private);
        assert_eq!(p("8.0.0.0/8"), AddressClass::Public);
        assert_eq!(p("192.0.0.0/16"), AddressClass::Reserved);
        assert_eq!(p("192.0.2.0/29"), AddressClass::Documentation);
        assert_eq!(p("10.0.0.0/29"), AddressClass::Private);
        assert_eq!(p("2001:db8:1::/48"), AddressClass::Documentation);
        assert_eq!(p("2001::/16"), AddressClass::Public);
        assert!(!p("0.0.0.0/0").is_public());
        assert!(!p("::/0").is_public());
    }

    #[test]
    fn display_names_the_class() {
        assert_eq!(AddressClass::Private.to_string(), "private (RFC 1918)");
        assert!(AddressClass::Documentation.to_string().contains("public"));
    }
}
