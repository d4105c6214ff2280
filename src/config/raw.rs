//! The configuration file as written: serde structs that mirror the TOML.
//!
//! Contract: these types only check the *shape* of the file (known keys,
//! value types). Every value that a rule checks is wrapped in
//! [`Spanned`] so that [`super::validate`] can point at its line and
//! column; integers are read as `i64` so that out-of-range values reach the
//! rules (with a useful message) instead of failing in serde. Unknown keys
//! are errors everywhere (`deny_unknown_fields`).

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `provider-edge` (default) or `msee`.
    pub role: Option<Spanned<String>>,
    /// `[[port]]` tables.
    #[serde(default)]
    pub port: Vec<RawPort>,
    /// `[[circuit]]` tables.
    #[serde(default)]
    pub circuit: Vec<RawCircuit>,
}

/// One `[[port]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPort {
    /// Name used by circuits and peerings.
    pub name: Spanned<String>,
    /// Linux interface name (default: `name`).
    pub interface: Option<Spanned<String>>,
    /// `af_packet` (default), `tap`, `pnet` or `mem`.
    pub backend: Option<Spanned<String>>,
    /// An ExpressRoute Direct port: its speed in Gbit/s (10 or 100).
    pub direct_gbps: Option<Spanned<i64>>,
    /// `backbone`: the port faces the provider's MPLS backbone (its
    /// attachments are `access.mpls`). Left out: a port of tagged
    /// sub-interfaces (access or trunk, by its use).
    pub role: Option<Spanned<String>>,
    /// `backbone` only: this forwarder's own transport label, which a
    /// frame may carry on top of its VPN or pseudowire label.
    pub transport_label: Option<Spanned<i64>>,
    /// `backbone` only: the backbone link's MTU (bytes after the Ethernet
    /// header), checked against every MPLS attachment's peering MTU plus
    /// its labels.
    pub mtu: Option<Spanned<i64>>,
}

/// One `[[circuit]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCircuit {
    /// Unique circuit name.
    pub name: Spanned<String>,
    /// `qinq` or `dot1q`.
    pub encapsulation: Spanned<String>,
    /// The S-tag (QinQ only).
    pub s_tag: Option<Spanned<i64>>,
    /// Outer TPID: an integer or a string such as `"0x88a8"`.
    pub outer_tpid: Option<Spanned<Scalar>>,
    /// Bandwidth in Mbit/s.
    pub bandwidth_mbps: Option<Spanned<i64>>,
    /// ExpressRoute Premium.
    pub premium: Option<bool>,
    /// The primary link.
    pub primary: RawLink,
    /// The secondary link.
    pub secondary: RawLink,
    /// `[[circuit.peering]]` tables.
    #[serde(default)]
    pub peering: Vec<RawPeering>,
}

/// `primary = { … }` / `secondary = { … }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLink {
    /// The trunk port name.
    pub port: Spanned<String>,
    /// Optional provider tag outside the circuit's tags.
    pub outer_tag: Option<Spanned<i64>>,
    /// Optional S-tag override; must equal the circuit's S-tag.
    pub s_tag: Option<Spanned<i64>>,
}

/// One `[[circuit.peering]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPeering {
    /// `private` or `microsoft`.
    pub kind: Spanned<String>,
    /// C-tag (QinQ) or the VLAN (Dot1Q).
    pub tag: Spanned<i64>,
    /// Optional tag of the secondary link; must equal `tag`.
    pub secondary_tag: Option<Spanned<i64>>,
    /// `l2` (default) or `l3`.
    pub mode: Option<Spanned<String>>,
    /// The access side.
    pub access: RawAccess,
    /// A /29 or two /30s.
    pub ipv4: Option<Spanned<OneOrList>>,
    /// A /125 or two /126s.
    pub ipv6: Option<Spanned<OneOrList>>,
    /// Customer BGP ASN.
    pub peer_asn: Option<Spanned<i64>>,
    /// IP MTU.
    pub mtu: Option<Spanned<i64>>,
    /// DSCP policy towards Microsoft.
    pub dscp: Option<Spanned<RawDscp>>,
    /// DSCP policy from Microsoft.
    pub dscp_return: Option<Spanned<RawDscp>>,
    /// Derive PCP from DSCP.
    pub pcp_from_dscp: Option<bool>,
    /// BFD timers.
    pub bfd: Option<RawBfd>,
    /// BGP (l3): a file holding the TCP MD5 key of both sessions; relative
    /// paths are relative to the configuration file's directory.
    pub bgp_md5_key_file: Option<Spanned<String>>,
    /// BGP (l3): keepalive interval in seconds (default 60).
    pub bgp_keepalive_s: Option<Spanned<i64>>,
    /// BGP (l3): hold time in seconds (default 180).
    pub bgp_hold_s: Option<Spanned<i64>>,
    /// BGP (l3): the prefixes this forwarder announces to its peers.
    pub announce: Option<Spanned<Vec<Spanned<String>>>>,
    /// Static routes.
    pub routes: Option<Spanned<Vec<RawRoute>>>,
    /// Static neighbours.
    pub neighbors: Option<Spanned<Vec<RawNeighbor>>>,
    /// Host interfaces (`l3`): one TAP per link for a routing daemon.
    pub host: Option<Spanned<RawHost>>,
    /// `l3`: where this peering's zebra connects over FPM (`"IP:PORT"`).
    pub fpm: Option<Spanned<String>>,
    /// `l3`: the named network namespace the FPM listener binds in.
    pub fpm_netns: Option<Spanned<String>>,
    /// `l3`: how long FPM routes outlive their connection, in ms.
    pub fpm_grace_ms: Option<Spanned<i64>>,
    /// `l3`: follow this Linux routing table (id) for routes.
    pub kernel_table: Option<Spanned<i64>>,
    /// `l3`: the named network namespace whose routing table is followed.
    pub kernel_netns: Option<Spanned<String>>,
    /// `[[circuit.peering.dscp_rules]]`.
    #[serde(default)]
    pub dscp_rules: Vec<RawDscpRule>,
}

/// `access = { port = …, vlan = … }` or `{ port = …, vlans = [ … ] }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccess {
    /// The access port name.
    pub port: Spanned<String>,
    /// One VLAN (single-tagged access).
    pub vlan: Option<Spanned<i64>>,
    /// Up to two VLANs, outermost first.
    pub vlans: Option<Spanned<Vec<Spanned<i64>>>>,
    /// `l3`: this forwarder's IPv4 address on the access link, with its
    /// prefix length (a /30 or /31), e.g. "203.0.113.1/30".
    pub ipv4: Option<Spanned<String>>,
    /// `l3`: this forwarder's IPv6 address on the access link (/126 or /127).
    pub ipv6: Option<Spanned<String>>,
    /// On a backbone port: the access side is an MPLS attachment (L3VPN
    /// for an `l3` peering, Ethernet pseudowire for an `l2` one).
    pub mpls: Option<Spanned<RawMpls>>,
}

/// `access.mpls = { … }`: an MPLS attachment.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMpls {
    /// The label frames of this attachment arrive with (bottom of stack).
    pub label: Spanned<i64>,
    /// The label pushed toward the backbone (bottom of stack): the remote
    /// PE's VPN or pseudowire label.
    pub remote_label: Spanned<i64>,
    /// A transport label pushed on top (toward the remote PE).
    pub transport_label: Option<Spanned<i64>>,
    /// The backbone router's MAC, the next hop of every labelled frame.
    pub next_hop_mac: Spanned<String>,
    /// Pseudowire only: carry the RFC 4385 control word (default true).
    pub control_word: Option<Spanned<bool>>,
    /// `uniform` (default) or `pipe` (RFC 3443).
    pub ttl: Option<Spanned<String>>,
    /// TC by the DSCP's class: eight values 0..=7, indexed by DSCP >> 3
    /// (default: TC = class).
    pub tc_map: Option<Spanned<Vec<Spanned<i64>>>>,
}

/// `host = { … }`: host interfaces of an `l3` peering (every key optional;
/// the table's presence turns them on).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHost {
    /// The network namespace the TAPs are moved into.
    pub netns: Option<Spanned<String>>,
    /// Name of the access link's TAP.
    pub access: Option<Spanned<String>>,
    /// Name of the primary link's TAP.
    pub primary: Option<Spanned<String>>,
    /// Name of the secondary link's TAP.
    pub secondary: Option<Spanned<String>>,
    /// Who answers ICMP echo to this forwarder's addresses: `forwarder`
    /// (default) or `host`.
    pub echo: Option<Spanned<String>>,
}

/// `bfd = { … }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBfd {
    /// Whether BFD runs.
    pub enabled: Option<bool>,
    /// Interval in ms.
    pub interval_ms: Option<Spanned<i64>>,
    /// Detection multiplier.
    pub multiplier: Option<Spanned<i64>>,
}

/// One entry of `routes`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// Destination prefix.
    pub prefix: Spanned<String>,
    /// Next-hop address.
    pub next_hop: Spanned<String>,
}

/// One entry of `neighbors`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNeighbor {
    /// The neighbour's IP.
    pub ip: Spanned<String>,
    /// Its MAC, `aa:bb:cc:dd:ee:ff`.
    pub mac: Spanned<String>,
}

/// One `[[circuit.peering.dscp_rules]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDscpRule {
    /// `udp`, `tcp`, `icmp`, `icmpv6` or a protocol number.
    pub protocol: Option<Spanned<Scalar>>,
    /// `"N"`, `"N-M"` or an integer.
    pub src_ports: Option<Spanned<Scalar>>,
    /// `"N"`, `"N-M"` or an integer.
    pub dst_ports: Option<Spanned<Scalar>>,
    /// Source prefix.
    pub src_prefix: Option<Spanned<String>>,
    /// Destination prefix.
    pub dst_prefix: Option<Spanned<String>>,
    /// The DSCP to set: a name or a number.
    pub set: Spanned<Scalar>,
}

/// A value that may be written as an integer or as a string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scalar {
    /// An integer.
    Int(i64),
    /// A string.
    Str(String),
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::Int(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Str(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A string or an array of strings (link subnets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OneOrList {
    /// One string (a /29 or /125).
    One(String),
    /// An array of strings, each with its span (two /30s or /126s).
    List(Vec<Spanned<String>>),
}

impl<'de> Deserialize<'de> for OneOrList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a prefix string or an array of two prefix strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OneOrList, E> {
                Ok(OneOrList::One(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrList, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<String>>()? {
                    out.push(item);
                }
                Ok(OneOrList::List(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A DSCP policy as written: a keyword or DSCP name (string), a DSCP
/// number (integer), or `{ set = … }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawDscp {
    /// `"preserve"`, `"expressroute"`, `"reset"`, `"EF"`, `"set EF"`, `"46"`.
    Str(String),
    /// A DSCP number to set.
    Int(i64),
    /// `{ set = "EF" }` or `{ set = 46 }`.
    Set(Spanned<Scalar>),
}

impl<'de> Deserialize<'de> for RawDscp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawDscp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "\"preserve\", \"expressroute\", \"reset\", a DSCP name or number, or { set = … }",
                )
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawDscp, E> {
                Ok(RawDscp::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawDscp, E> {
                Ok(RawDscp::Int(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawDscp, E> {
                Ok(RawDscp::Str(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawDscp, A::Error> {
                let mut set = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key != "set" {
                        return Err(de::Error::unknown_field(&key, &["set"]));
                    }
                    if set.is_some() {
                        return Err(de::Error::duplicate_field("set"));
                    }
                    set = Some(map.next_value::<Spanned<Scalar>>()?);
                }
                set.map(RawDscp::Set)
                    .ok_or_else(|| de::Error::missing_field("set"))
            }
        }
        d.deserialize_any(V)
    }
}
