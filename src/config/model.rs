//! The validated configuration model: what a loaded, rule-checked TOML file
//! says, in domain terms. Produced by [`super::load`]; consumed by
//! [`super::compile()`]. Every value here has already passed
//! the ExpressRoute rules of `docs/model.md` (the ExpressRoute rules), so compilation cannot
//! fail on a model that came from the loader.

pub use crate::plan::{PeeringKind, ServiceMode, Side, TtlModel};
use crate::qos::DscpPolicy;
use crate::wire::mpls::Label;
use crate::wire::{Tpid, VlanId};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

/// Which side of the cross-connect this forwarder plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The provider (or customer) edge: access ports face the customer, and
    /// traffic towards the trunks goes to Microsoft.
    ProviderEdge,
    /// The Microsoft edge pair (MSEE): trunks face the provider, access
    /// ports face the peering's networks; traffic from the trunks is
    /// arriving at Microsoft.
    Msee,
}

/// The I/O backend that opens a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// TPACKET_V3 rings on a Linux interface (the fast path).
    AfPacket,
    /// A TAP device (`IFF_TAP|IFF_NO_PI`).
    Tap,
    /// pnet's datalink channel (portable, one syscall per packet).
    Pnet,
    /// In-memory port for tests, benches and fuzzing.
    Mem,
}

impl BackendKind {
    /// The name used in configuration files and reports.
    pub const fn name(self) -> &'static str {
        match self {
            BackendKind::AfPacket => "af_packet",
            BackendKind::Tap => "tap",
            BackendKind::Pnet => "pnet",
            BackendKind::Mem => "mem",
        }
    }
}

/// Index of a port in [`Config::ports`].
pub type PortIndex = usize;

/// One Linux interface (or in-memory port).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    /// Name used by circuits and peerings to refer to this port.
    pub name: String,
    /// The Linux interface; defaults to `name`.
    pub interface: String,
    /// The backend that opens it.
    pub backend: BackendKind,
    /// `Some(10)` or `Some(100)`: one of an ExpressRoute Direct port pair
    /// (the customer owns a pair of 10-Gbps or 100-Gbps ports on the
    /// Microsoft edge; circuits on it take the Direct sizes). `None`: a
    /// port through a provider.
    pub direct_gbps: Option<u32>,
    /// `Some`: the port faces the provider's MPLS backbone (`role =
    /// "backbone"`); its attachments are MPLS attachments.
    pub backbone: Option<Backbone>,
}

/// What a backbone port says beyond its interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Backbone {
    /// This forwarder's own transport label, accepted on top of a VPN or
    /// pseudowire label.
    pub transport_label: Option<Label>,
    /// The backbone link's MTU, when given (checked against the peerings'
    /// MTU plus their labels).
    pub mtu: Option<u16>,
}

/// An MPLS attachment: the access side of a peering over the provider's
/// backbone, an L3VPN (`l3` peering) or an Ethernet pseudowire (`l2`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MplsAccess {
    /// The label frames of this attachment arrive with.
    pub label: Label,
    /// The label pushed toward the backbone (bottom of stack).
    pub remote_label: Label,
    /// A transport label pushed on top of it.
    pub transport_label: Option<Label>,
    /// The backbone router's MAC.
    pub next_hop_mac: [u8; 6],
    /// Pseudowire: the control word is carried.
    pub control_word: bool,
    /// TTL model (RFC 3443).
    pub ttl: TtlModel,
    /// TC by DSCP class (DSCP >> 3).
    pub tc_map: [u8; 8],
}

impl MplsAccess {
    /// The TC map as the plan packs it (4 bits per class).
    pub fn packed_tc_map(&self) -> u32 {
        self.tc_map
            .iter()
            .enumerate()
            .fold(0, |m, (i, &tc)| m | u32::from(tc & 7) << (4 * i))
    }

    /// Labels pushed toward the backbone (1 or 2).
    pub fn pushed_labels(&self) -> usize {
        1 + usize::from(self.transport_label.is_some())
    }
}

/// Trunk encapsulation of a circuit (one per trunk port pair).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encapsulation {
    /// S-tag per circuit, C-tag per peering.
    QinQ,
    /// One tag per peering, unique across the port pair.
    Dot1Q,
}

/// One of the two trunk links of a circuit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// The trunk port.
    pub port: PortIndex,
    /// *Model*: an optional provider tag outside the circuit's tags, per link.
    pub outer_tag: Option<VlanId>,
}

/// An ExpressRoute circuit: two links, one encapsulation, its peerings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Circuit {
    /// Name, unique in the file.
    pub name: String,
    /// QinQ or Dot1Q.
    pub encapsulation: Encapsulation,
    /// The S-tag (QinQ only), the same on both links.
    pub s_tag: Option<VlanId>,
    /// TPID written on the outermost circuit tag (S-tag in QinQ, the tag in
    /// Dot1Q). Default 0x8100. Inner tags are always 0x8100.
    pub outer_tpid: Tpid,
    /// Primary link (first /30 of each peering).
    pub primary: Link,
    /// Secondary link (second /30 of each peering).
    pub secondary: Link,
    /// Provisioned bandwidth in Mbit/s (informational; shown by `check`).
    pub bandwidth_mbps: u32,
    /// ExpressRoute Premium: raises the private-peering IPv4 limit to 10,000.
    pub premium: bool,
    /// The peerings carried by this circuit.
    pub peerings: Vec<Peering>,
}

/// The non-trunk side of a peering's cross-connect: a port and its tags
/// (empty = untagged), outermost first, at most two.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// The access port.
    pub port: PortIndex,
    /// VLAN IDs on the access port, outermost first (empty = untagged).
    pub vlans: Vec<VlanId>,
    /// `l3`: this forwarder's IPv4 address on the access link and its
    /// prefix (a /30 or /31: exactly one peer, see [`Access::peer_v4`]).
    pub ipv4: Option<Ipv4Net>,
    /// `l3`: this forwarder's IPv6 address on the access link (/126 or /127).
    pub ipv6: Option<Ipv6Net>,
    /// An MPLS attachment on a backbone port (then `vlans` is empty).
    pub mpls: Option<MplsAccess>,
}

impl Access {
    /// The one other usable address of the access /30 (/31).
    pub fn peer_v4(&self) -> Option<Ipv4Addr> {
        let net = self.ipv4?;
        let own = u32::from(net.addr());
        let base = u32::from(net.network());
        Some(Ipv4Addr::from(match net.prefix_len() {
            31 => base + (1 - (own - base)),
            _ => base + 3 - (own - base),
        }))
    }

    /// The one other usable address of the access /126 (/127).
    pub fn peer_v6(&self) -> Option<Ipv6Addr> {
        let net = self.ipv6?;
        let own = u128::from(net.addr());
        let base = u128::from(net.network());
        Some(Ipv6Addr::from(match net.prefix_len() {
            127 => base + (1 - (own - base)),
            _ => base + 3 - (own - base),
        }))
    }
}

/// The primary and secondary link subnets of one address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkSubnets<N> {
    /// First /30 (/126): the primary link.
    pub primary: N,
    /// Second /30 (/126): the secondary link.
    pub secondary: N,
}

impl LinkSubnets<Ipv4Net> {
    /// (customer, microsoft) addresses of a /30: first and second usable.
    pub fn addresses(net: Ipv4Net) -> (Ipv4Addr, Ipv4Addr) {
        let base = u32::from(net.network());
        (Ipv4Addr::from(base + 1), Ipv4Addr::from(base + 2))
    }
}

impl LinkSubnets<Ipv6Net> {
    /// (customer, microsoft) addresses of a /126: first and second usable.
    pub fn addresses(net: Ipv6Net) -> (Ipv6Addr, Ipv6Addr) {
        let base = u128::from(net.network());
        (Ipv6Addr::from(base + 1), Ipv6Addr::from(base + 2))
    }
}

/// A route in a peering's table (`l3` mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// Destination prefix.
    pub prefix: IpNet,
    /// Next hop; must lie in one of the peering's link subnets.
    pub next_hop: IpAddr,
}

/// A static neighbour (`l3` mode): an IP on a link subnet and its MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Neighbor {
    /// The neighbour's address.
    pub ip: IpAddr,
    /// Its MAC address.
    pub mac: [u8; 6],
}

/// BFD timers of a peering's links.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bfd {
    /// Whether BFD runs (on by default).
    pub enabled: bool,
    /// Transmit/receive interval in ms (≥ 300).
    pub interval_ms: u32,
    /// Detection multiplier (default 3).
    pub multiplier: u8,
}

impl Default for Bfd {
    fn default() -> Self {
        Bfd {
            enabled: true,
            interval_ms: 300,
            multiplier: 3,
        }
    }
}

impl Bfd {
    /// The default of a peering of `kind`: on for private peering (as
    /// ExpressRoute configures it on every private peering), off for
    /// Microsoft peering (enable it there with `bfd = { enabled = true }`);
    /// 300 ms × 3 either way.
    pub fn default_for(kind: PeeringKind) -> Bfd {
        Bfd {
            enabled: kind == PeeringKind::Private,
            ..Bfd::default()
        }
    }
}

/// Microsoft's ASN: the MSEE side of every ExpressRoute BGP session.
pub const MICROSOFT_ASN: u32 = 12076;

impl Role {
    /// (local, remote) BGP ASN of this forwarder's sessions on a peering
    /// whose customer ASN is `peer_asn`: the provider edge speaks for the
    /// customer (`peer_asn` to 12076), the MSEE for Microsoft (12076 to
    /// `peer_asn`).
    pub fn bgp_asns(self, peer_asn: u32) -> (u32, u32) {
        match self {
            Role::ProviderEdge => (peer_asn, MICROSOFT_ASN),
            Role::Msee => (MICROSOFT_ASN, peer_asn),
        }
    }
}

/// A TCP MD5 (RFC 2385) key, read from a file. It has no `Display`, its
/// `Debug` prints `<redacted>`, and only [`Md5Key::expose`] gives the text
/// (for the one place that writes it: an FRR configuration file).
#[derive(Clone, PartialEq, Eq)]
pub struct Md5Key(String);

impl Md5Key {
    /// Wrap a key that passed the `bgp-md5-key` rule (1..=80 printable
    /// ASCII characters without whitespace).
    pub(crate) fn new(key: String) -> Md5Key {
        Md5Key(key)
    }

    /// The key itself. Every caller writes it only where the operator
    /// asked for it (an FRR configuration file of mode 0600).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Md5Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Md5Key(<redacted>)")
    }
}

/// The MD5 authentication of a peering's BGP sessions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BgpAuth {
    /// The key file as resolved (relative paths against the configuration
    /// file's directory); named in messages instead of the key.
    pub key_file: PathBuf,
    /// The key read from it.
    pub key: Md5Key,
}

/// The BGP sessions of an `l3` peering (one per link and address family),
/// run by FRR with xconnect as its data plane (`xconnect frr-config`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bgp {
    /// Keepalive interval in seconds (default 60; 0 only with hold 0).
    pub keepalive_s: u16,
    /// Hold time in seconds (default 180): 0 or 3..=65535, ≥ 3 × keepalive.
    pub hold_s: u16,
    /// TCP MD5 authentication, when `bgp_md5_key_file` is set.
    pub md5: Option<BgpAuth>,
    /// The prefixes this forwarder announces to its BGP peers.
    pub announce: Vec<IpNet>,
}

impl Default for Bgp {
    fn default() -> Self {
        Bgp {
            keepalive_s: 60,
            hold_s: 180,
            md5: None,
            announce: Vec::new(),
        }
    }
}

/// One peering of a circuit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peering {
    /// Private or Microsoft.
    pub kind: PeeringKind,
    /// The peering tag on the trunks: the C-tag in QinQ, the only tag in Dot1Q.
    pub tag: VlanId,
    /// `l2` or `l3`.
    pub mode: ServiceMode,
    /// The access side.
    pub access: Access,
    /// IPv4 link subnets (two /30s).
    pub ipv4: Option<LinkSubnets<Ipv4Net>>,
    /// IPv6 link subnets (two /126s), same sub-interface as IPv4.
    pub ipv6: Option<LinkSubnets<Ipv6Net>>,
    /// The customer's BGP ASN, if given.
    pub peer_asn: Option<u32>,
    /// IP MTU (tags not counted), 1280/1400..=1500, default 1500.
    pub mtu: u16,
    /// DSCP policy for traffic towards Microsoft.
    pub dscp: DscpPolicy,
    /// DSCP policy for traffic from Microsoft (default preserve).
    pub dscp_return: DscpPolicy,
    /// Write PCP = DSCP >> 3 into pushed tags instead of copying the PCP of the
    /// popped tag.
    pub pcp_from_dscp: bool,
    /// Static routes (`l3`).
    pub routes: Vec<Route>,
    /// Static neighbours (`l3`).
    pub neighbors: Vec<Neighbor>,
    /// BFD timers.
    pub bfd: Bfd,
    /// BGP session settings (`l3`; defaults elsewhere).
    pub bgp: Bgp,
    /// Host interfaces (`l3`), if asked for.
    pub host: Option<HostInterfaces>,
    /// `l3`: the FPM listener of this peering's routing daemon.
    pub fpm: Option<Fpm>,
    /// `l3`: the Linux routing table this peering follows.
    pub kernel: Option<KernelTable>,
}

/// The host interfaces of an `l3` peering (the linux-cp model): one TAP
/// per link that stands for it on the host, carrying this forwarder's
/// address and MAC on that link, so a routing daemon (FRR) runs its
/// sessions over them. Frames for the forwarder that the data plane does
/// not answer itself are handed to the TAP with the link's tags removed;
/// what the host writes into the TAP leaves by the link with its tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostInterfaces {
    /// TAP names by [`Side`] (access, primary, secondary).
    pub names: [String; 3],
    /// The network namespace (by name, as `ip netns` keeps it) the TAPs
    /// are moved into. Required by the checker (in the forwarder's own
    /// namespace the kernel would answer for the addresses on the data
    /// ports); `None` only in plans built by hand.
    pub netns: Option<String>,
    /// ICMP echo to this forwarder's addresses goes to the host interface
    /// (`echo = "host"`) instead of being answered by the data plane.
    pub echo_to_host: bool,
}

impl HostInterfaces {
    /// The default TAP name of a link: `xh-` then up to nine characters of
    /// the circuit name (characters other than ASCII letters, digits, `_`
    /// and `-` become `-`), `-`, `p` or `m` for the peering and `a`, `1`
    /// or `2` for the access, primary or secondary link (15 bytes at most).
    pub fn default_name(circuit: &str, kind: PeeringKind, side: Side) -> String {
        let c: String = circuit
            .chars()
            .map(|ch| {
                if ch.is_ascii_alphanumeric() || ch == '_' || ch == '-' {
                    ch
                } else {
                    '-'
                }
            })
            .take(9)
            .collect();
        let k = match kind {
            PeeringKind::Private => 'p',
            PeeringKind::Microsoft => 'm',
        };
        let s = match side {
            Side::Access => 'a',
            Side::Primary => '1',
            Side::Secondary => '2',
        };
        format!("xh-{c}-{k}{s}")
    }

    /// The TAP standing for the link on `side`.
    pub fn name(&self, side: Side) -> &str {
        &self.names[side as usize]
    }
}

/// Where an `l3` peering's zebra sends its routes (FPM), see
/// `docs/control-plane.md`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fpm {
    /// Listen address (`fpm`).
    pub listen: std::net::SocketAddr,
    /// Named network namespace to listen in (`fpm_netns`).
    pub netns: Option<String>,
    /// How long routes outlive their connection (`fpm_grace_ms`).
    pub grace_ms: u64,
}

/// A Linux routing table an `l3` peering follows over rtnetlink (a dump,
/// then its events): whatever daemon installs routes there (BIRD, FRR
/// without FPM, `ip route`) drives the peering's table. See
/// `docs/control-plane.md`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelTable {
    /// The table id (`kernel_table`; 254 is `main`).
    pub table: u32,
    /// Named network namespace whose table it is (`kernel_netns`).
    pub netns: Option<String>,
}

/// `fpm_grace_ms` when not given.
pub const FPM_GRACE_MS_DEFAULT: u64 = 30_000;

/// A whole validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The file it was read from (for messages).
    pub source: PathBuf,
    /// Which side this forwarder plays.
    pub role: Role,
    /// Ports, referred to by index.
    pub ports: Vec<Port>,
    /// Circuits.
    pub circuits: Vec<Circuit>,
}
