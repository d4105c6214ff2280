//! The ExpressRoute rules: raw file → validated [`Config`].
//!
//! Contract: [`validate`] checks every rule of `docs/model.md` (the ExpressRoute rules) (and
//! the model's own rules) against a [`RawConfig`], reports **every**
//! violation it finds (it never stops at the first), and returns a
//! [`Config`] only when there is none. Each rule has a short stable id
//! (listed in [`RULES`]); each report points at the offending value and
//! says what would be valid. Nothing here panics on any input.

use super::address::prefix_class;
use super::diag::{Diagnostic, Diagnostics};
use super::model::*;
use super::raw::*;
use crate::qos::{DscpAction, DscpPolicy, DscpRule, EXPRESSROUTE_WHITELIST};
use crate::wire::mpls::{Label, LabelError};
use crate::wire::{Dscp, Tpid, VlanId};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Every rule id the loader can report, with a one-line description.
pub const RULES: &[(&str, &str)] = &[
    (
        "syntax",
        "TOML syntax, unknown keys, wrong value types, missing required keys",
    ),
    (
        "enum-value",
        "a keyword field (role, backend, encapsulation, kind, mode) has an unknown value",
    ),
    ("name-empty", "port and circuit names must not be empty"),
    ("port-unique", "port names are unique"),
    ("circuit-unique", "circuit names are unique"),
    ("no-circuits", "a configuration needs at least one circuit"),
    (
        "interface-name",
        "Linux interface names are 1..=15 bytes without '/' or spaces",
    ),
    (
        "unknown-port",
        "a referenced port must be defined in [[port]]",
    ),
    ("vlan-range", "VLAN IDs are 1..=4094"),
    (
        "s-tag",
        "qinq circuits need an s_tag, dot1q circuits have none",
    ),
    ("tpid", "outer_tpid is 0x8100, 0x88a8 or 0x9100"),
    (
        "bandwidth",
        "bandwidth_mbps is a circuit size of its port pair: 50 Mbps..10 Gbps through a provider, \
         1/2/5/10 Gbps on 10-Gbps ExpressRoute Direct, 5/10/40/100 Gbps on 100-Gbps Direct",
    ),
    (
        "direct-port",
        "direct_gbps is 10 or 100 on trunk ports; both links of a circuit are Direct ports of \
         one speed, or neither is",
    ),
    (
        "direct-subscription",
        "circuits on one ExpressRoute Direct port pair add up to at most twice the port speed",
    ),
    (
        "link-ports-differ",
        "primary and secondary use different ports",
    ),
    (
        "same-tags-both-links",
        "both links use the same S-tag and peering tag",
    ),
    (
        "port-pair",
        "a trunk port belongs to exactly one primary/secondary pair",
    ),
    (
        "one-encapsulation",
        "a trunk port pair carries one encapsulation",
    ),
    ("stag-unique", "S-tags are unique across a trunk port pair"),
    ("ctag-unique", "C-tags are unique within a circuit"),
    (
        "dot1q-unique",
        "Dot1Q tags are unique across a trunk port pair",
    ),
    (
        "trunk-not-access",
        "a trunk port cannot also be an access port",
    ),
    (
        "host-interface-unique",
        "a host interface (TAP) name is used once, and by no port",
    ),
    (
        "host-netns",
        "host interfaces live in a network namespace of their own (host.netns)",
    ),
    (
        "netns-name",
        "a network namespace name is 1..=255 bytes without '/' or whitespace",
    ),
    (
        "pnet-untagged",
        "a pnet port is an untagged access port only (pnet cannot see the outer VLAN tag)",
    ),
    (
        "access-unique",
        "two peerings cannot share an access attachment",
    ),
    (
        "access-vlans",
        "access takes `vlan` or `vlans` (at most two), not both",
    ),
    (
        "backbone-port",
        "a backbone port (role = \"backbone\") carries MPLS attachments (access.mpls) only, is no \
         trunk, and only it takes transport_label and mtu",
    ),
    (
        "mpls-label",
        "an MPLS label is 16..=1048575 (0..=15 are reserved)",
    ),
    (
        "mpls-label-unique",
        "a label names one attachment of a backbone port, and is not the port's transport label",
    ),
    (
        "mpls-attachment",
        "access.mpls: a unicast next_hop_mac, ttl uniform or pipe, tc_map of eight TCs 0..=7, \
         control_word only on a pseudowire (l2 peering), no VLANs",
    ),
    (
        "mpls-mtu",
        "a backbone port's mtu holds the peering's MTU plus its label stack (and for a \
         pseudowire the inner Ethernet header and control word)",
    ),
    (
        "peering-unique",
        "at most one peering of each kind per circuit",
    ),
    (
        "ipv4-link-subnet",
        "IPv4 link subnets: one /29 or two /30s, host bits zero",
    ),
    (
        "ipv6-link-subnet",
        "IPv6 link subnets: one /125 or two /126s, host bits zero",
    ),
    (
        "subnet-overlap",
        "link subnets of a circuit's peerings do not overlap",
    ),
    (
        "ms-subnet-unique",
        "a Microsoft peering link subnet is used by no peering of another circuit",
    ),
    (
        "route-covers-link-subnet",
        "a Microsoft peering route covers no link subnet of another peering",
    ),
    ("l3-address", "an l3 peering needs ipv4 or ipv6"),
    (
        "l3-only",
        "routes, neighbors, access addresses, BGP keys, host interfaces, fpm and kernel_table \
         only on l3 peerings",
    ),
    (
        "access-address",
        "an l3 peering has this forwarder's address on its access link: a usable host of a /30 \
         or /31 (/126 or /127), one per address family it routes",
    ),
    (
        "fpm",
        "fpm is an IP:PORT listen address; fpm_netns a namespace name; fpm_grace_ms 0..=3600000; \
         the last two only with fpm",
    ),
    (
        "fpm-unique",
        "two peerings cannot share an FPM listen address in one network namespace",
    ),
    (
        "kernel-table",
        "kernel_table is a routing table id 1..=4294967295 other than 255 (local); kernel_netns a \
         namespace name, only with kernel_table; a peering takes routes from fpm or \
         kernel_table, not both",
    ),
    (
        "kernel-table-unique",
        "two peerings cannot follow the same routing table of one network namespace",
    ),
    (
        "ms-public-address",
        "Microsoft peering uses public addresses only",
    ),
    (
        "ms-no-default-route",
        "no default route on Microsoft peering",
    ),
    (
        "ms-dscp-whitelist",
        "Microsoft peering sets only EF, AF41, AF21, AF11, CS0",
    ),
    (
        "prefix-limit",
        "distinct prefixes advertised toward Microsoft, per address family, within the \
         peering's prefix limit",
    ),
    (
        "route-prefix",
        "route prefixes parse and have host bits zero",
    ),
    (
        "route-next-hop",
        "next hop is the peer's address on a link subnet",
    ),
    (
        "neighbor-ip",
        "a neighbour is the peer's address on a link subnet",
    ),
    (
        "neighbor-mac",
        "a neighbour MAC is unicast, non-zero, aa:bb:cc:dd:ee:ff",
    ),
    ("asn", "peer_asn is a valid customer ASN"),
    ("mtu", "IP MTU 576..=1500 (1280..=1500 with IPv6)"),
    (
        "bfd-interval",
        "BFD interval 300..=60000 ms (ExpressRoute: never below 300; FRR: at most 60000)",
    ),
    (
        "bfd-multiplier",
        "BFD multiplier 2..=255 (FRR's detect-multiplier)",
    ),
    (
        "bgp-timers",
        "BGP hold time 0 or 3..=65535 s (RFC 4271), keepalive 1..=hold/3 (0 only with hold 0)",
    ),
    (
        "bgp-md5-key",
        "bgp_md5_key_file is a readable regular file holding one key of 1..=80 printable ASCII \
         characters without whitespace (the key is never shown)",
    ),
    (
        "announce-prefix",
        "announced prefixes parse, have host bits zero, are listed once and belong to an address \
         family the peering has link subnets for",
    ),
    (
        "bgp-needs-asn",
        "BGP keys (md5 key file, timers, announce) need the customer's peer_asn",
    ),
    ("dscp-value", "a DSCP policy or value is known"),
    (
        "dscp-rule-protocol",
        "dscp rule protocol is udp, tcp, icmp, icmpv6 or 0..=255",
    ),
    (
        "dscp-rule-ports",
        "dscp rule ports: N or N-M with N ≤ M, tcp/udp only",
    ),
    (
        "dscp-rule-prefix",
        "dscp rule prefixes parse, host bits zero, one family",
    ),
    ("read", "the file could not be read"),
    (
        "internal",
        "a bug in xconnect: no rule failed but no model was built",
    ),
];

/// Circuit sizes through a provider, in Mbit/s: 50 Mbps to 10 Gbps.
pub const PROVIDER_BANDWIDTHS_MBPS: &[u32] = &[50, 100, 200, 500, 1000, 2000, 5000, 10000];
/// Circuit sizes on a 10-Gbps ExpressRoute Direct port pair, in Mbit/s.
pub const DIRECT_10G_BANDWIDTHS_MBPS: &[u32] = &[1000, 2000, 5000, 10000];
/// Circuit sizes on a 100-Gbps ExpressRoute Direct port pair, in Mbit/s.
pub const DIRECT_100G_BANDWIDTHS_MBPS: &[u32] = &[5000, 10000, 40000, 100_000];
/// ExpressRoute Direct port speeds in Gbit/s (`direct_gbps` of a port).
pub const DIRECT_PORT_GBPS: &[u32] = &[10, 100];
/// The circuits on one ExpressRoute Direct port pair may add up to this
/// many times the port speed (200 Gbps on 100-Gbps ports, 20 on 10-Gbps).
pub const DIRECT_SUBSCRIPTION_FACTOR: u32 = 2;
/// Bandwidth of a circuit whose `bandwidth_mbps` is left out.
pub const DEFAULT_BANDWIDTH_MBPS: u32 = 1000;

/// The circuit sizes (Mbit/s) a trunk port pair allows: through a provider
/// (`None`) or on an ExpressRoute Direct pair of `Some(10)` or `Some(100)`
/// Gbit/s ports. Any other speed allows none.
pub fn bandwidths_mbps(direct_gbps: Option<u32>) -> &'static [u32] {
    match direct_gbps {
        None => PROVIDER_BANDWIDTHS_MBPS,
        Some(10) => DIRECT_10G_BANDWIDTHS_MBPS,
        Some(100) => DIRECT_100G_BANDWIDTHS_MBPS,
        Some(_) => &[],
    }
}

/// What the circuits of a Direct port pair may add up to, in Mbit/s.
pub fn direct_capacity_mbps(direct_gbps: u32) -> u64 {
    u64::from(direct_gbps) * 1000 * u64::from(DIRECT_SUBSCRIPTION_FACTOR)
}

/// Private peering IPv4 prefix limit (without / with Premium).
pub const PRIVATE_V4_LIMIT: (usize, usize) = (4000, 10_000);
/// Private peering IPv6 prefix limit.
pub const PRIVATE_V6_LIMIT: usize = 100;
/// Microsoft peering prefix limit, per address family.
pub const MICROSOFT_LIMIT: usize = 200;

/// A Linux interface name: 1 to 15 bytes, not `.` or `..`, without `/`,
/// `:` or whitespace.
fn valid_ifname(s: &str) -> bool {
    !(s.is_empty()
        || s.len() > 15
        || s == "."
        || s == ".."
        || s.chars().any(|c| c == '/' || c == ':' || c.is_whitespace()))
}

/// The longest TCP MD5 key, in bytes: Linux's `TCP_MD5SIG_MAXKEYLEN`
/// (include/uapi/linux/tcp.h). FRR copies the key into a buffer of that
/// size without checking (lib/sockopt.c, `sockopt_tcp_signature_ext`),
/// and the kernel refuses longer keys.
pub const MD5_KEY_MAX_LEN: usize = 80;
/// BFD transmit/receive interval bounds in ms: ExpressRoute never goes
/// below 300; FRR's `receive-interval`/`transmit-interval` take at most
/// 60000.
pub const BFD_INTERVAL_MS: RangeInclusive<u32> = 300..=60_000;
/// BFD detection multiplier bounds: FRR's `detect-multiplier (2-255)`.
pub const BFD_MULTIPLIER: RangeInclusive<u8> = 2..=255;

/// Read a TCP MD5 key file: one line (a final newline is not part of the
/// key) of 1..=[`MD5_KEY_MAX_LEN`] printable ASCII characters without
/// whitespace, which is what FRR's `neighbor … password WORD` and the
/// kernel accept. Only a regular file is opened (never a FIFO or a
/// device), without blocking, and at most a few hundred bytes are read.
/// The error says what is wrong with the key but never contains any of it.
pub fn read_md5_key(path: &Path) -> Result<String, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read it: {e}"))?;
    if !meta.is_file() {
        return Err("it is not a regular file".to_string());
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| format!("cannot read it: {e}"))?;
    let mut bytes = Vec::new();
    let limit = (MD5_KEY_MAX_LEN as u64 + 2) * 4;
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read it: {e}"))?;
    if bytes.len() as u64 > limit {
        return Err(format!(
            "it holds more than {limit} bytes; a TCP MD5 key is at most {MD5_KEY_MAX_LEN} \
             characters"
        ));
    }
    let body = bytes
        .strip_suffix(b"\r\n")
        .or_else(|| bytes.strip_suffix(b"\n"))
        .unwrap_or(&bytes);
    if body.is_empty() {
        return Err("it is empty; write the key on its first line".to_string());
    }
    if body.contains(&b'\n') {
        return Err("it holds more than one line; write only the key".to_string());
    }
    if let Some(i) = body.iter().position(|b| !b.is_ascii_graphic()) {
        return Err(format!(
            "character {} of the key is whitespace, a control character or not ASCII; FRR \
             takes the key as one word of printable ASCII (33..=126)",
            i + 1
        ));
    }
    if body.len() > MD5_KEY_MAX_LEN {
        return Err(format!(
            "the key is {} characters; TCP MD5 keys are at most {MD5_KEY_MAX_LEN} (Linux \
             TCP_MD5SIG_MAXKEYLEN, which FRR does not check)",
            body.len()
        ));
    }
    String::from_utf8(body.to_vec()).map_err(|_| "the key is not ASCII".to_string())
}

/// Check `raw` (parsed from `text`, read from `file`) against every rule.
pub fn validate(raw: &RawConfig, text: &str, file: &Path) -> Result<Config, Diagnostics> {
    let mut ck = Checker {
        text,
        file,
        diags: Vec::new(),
        role: Role::ProviderEdge,
        ports: Vec::new(),
        port_names: HashMap::new(),
        bad_direct: HashSet::new(),
    };
    ck.role(raw);
    ck.ports(raw);
    if raw.circuit.is_empty() {
        ck.report(
            0..0,
            "no-circuits",
            "circuit",
            "the file defines no circuit; add at least one [[circuit]] with its primary and \
             secondary links",
        );
    }
    let mut circuits = Vec::new();
    let mut facts = Vec::new();
    let mut seen_names: HashMap<&str, usize> = HashMap::new();
    for (i, rc) in raw.circuit.iter().enumerate() {
        let name = rc.name.get_ref().as_str();
        if let Some(first) = seen_names.get(name) {
            ck.report(
                rc.name.span(),
                "circuit-unique",
                format!("circuit[{i}].name"),
                format!(
                    "circuit name {name:?} is already used by circuit[{first}]; circuit names \
                     must be unique"
                ),
            );
        } else {
            seen_names.insert(name, i);
        }
        let (circuit, fact) = ck.circuit(i, rc);
        circuits.push(circuit);
        facts.push(fact);
    }
    ck.trunk_pairs(&facts);
    ck.access_attachments(&facts);
    ck.microsoft_public_space(&facts);
    ck.fpm_listeners(&facts);
    ck.kernel_tables(&facts);
    ck.pnet_ports(raw, &facts);
    ck.host_interfaces(&facts);
    ck.direct_ports(raw, &facts);
    ck.direct_subscription(&facts);

    let circuits: Option<Vec<Circuit>> = circuits.into_iter().collect();
    match circuits {
        Some(circuits) if ck.diags.is_empty() => Ok(Config {
            source: file.to_path_buf(),
            role: ck.role,
            ports: ck.ports,
            circuits,
        }),
        _ => {
            if ck.diags.is_empty() {
                ck.report(
                    0..0,
                    "internal",
                    "",
                    "the configuration could not be built although no rule failed (a bug in \
                     xconnect)",
                );
            }
            let mut d = Diagnostics::from(ck.diags);
            d.sort();
            Err(d)
        }
    }
}

/// What the cross-circuit rules need to know about one circuit.
struct CircuitFacts {
    name: String,
    encap: Option<(Encapsulation, Range<usize>)>,
    s_tag: Option<(VlanId, Range<usize>)>,
    primary: Option<(PortIndex, Range<usize>)>,
    secondary: Option<(PortIndex, Range<usize>)>,
    /// A valid bandwidth and where it is written (the circuit's name when
    /// it is the default).
    bandwidth: Option<(u32, Range<usize>)>,
    /// The port speed when both links are ExpressRoute Direct ports of it.
    direct: Option<u32>,
    peerings: Vec<PeeringFacts>,
}

/// What the cross-peering rules need to know about one peering.
struct PeeringFacts {
    kind: Option<(PeeringKind, Range<usize>)>,
    tag: Option<(VlanId, Range<usize>)>,
    access: Option<(PortIndex, Vec<VlanId>, Range<usize>)>,
    /// The label of an MPLS access attachment, and where it is written.
    label: Option<(Label, Range<usize>)>,
    /// Link subnets (each /30 or /126) with the span and field they came
    /// from and the value as written there (the /29 rather than its half).
    subnets: Vec<(IpNet, Range<usize>, String, String)>,
    /// Microsoft peering only: its valid route prefixes (public, not the
    /// default route) with their span and field.
    ms_routes: Vec<(IpNet, Range<usize>, String)>,
    /// Host interface names with the span and field they came from (the
    /// `host` table for a default name).
    host_names: Vec<(String, Range<usize>, String)>,
    /// The FPM listener (address, namespace) with its span and field.
    fpm: Option<(std::net::SocketAddr, Option<String>, Range<usize>, String)>,
    /// The followed routing table (id, namespace) with its span and field.
    kernel: Option<(u32, Option<String>, Range<usize>, String)>,
}

/// A peering's `routes` as written and as checked (`None`: refused).
type GivenRoutes<'a> = (&'a Spanned<Vec<RawRoute>>, &'a [Option<Route>]);
/// A peering's `announce` as written and the prefixes that parsed.
type GivenAnnounce<'a> = (&'a Spanned<Vec<Spanned<String>>>, &'a [IpNet]);

/// Context a peering is checked in.
struct PeeringCtx<'c> {
    circuit: &'c str,
    path: String,
    premium: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
    fn rule(self) -> &'static str {
        match self {
            Family::V4 => "ipv4-link-subnet",
            Family::V6 => "ipv6-link-subnet",
        }
    }
    /// (pair length, link length)
    fn lens(self) -> (u8, u8) {
        match self {
            Family::V4 => (29, 30),
            Family::V6 => (125, 126),
        }
    }
    fn example(self) -> &'static str {
        match self {
            Family::V4 => "\"192.0.2.0/29\" or [\"192.0.2.0/30\", \"192.0.2.4/30\"]",
            Family::V6 => {
                "\"2001:db8:0:1::/125\" or [\"2001:db8:0:1::/126\", \"2001:db8:0:1::4/126\"]"
            }
        }
    }
    fn of(net: &IpNet) -> Family {
        match net {
            IpNet::V4(_) => Family::V4,
            IpNet::V6(_) => Family::V6,
        }
    }
}

/// (customer, Microsoft) addresses of a link subnet.
fn link_addresses(net: IpNet) -> (IpAddr, IpAddr) {
    match net {
        IpNet::V4(n) => {
            let (c, m) = LinkSubnets::<Ipv4Net>::addresses(n);
            (IpAddr::V4(c), IpAddr::V4(m))
        }
        IpNet::V6(n) => {
            let (c, m) = LinkSubnets::<Ipv6Net>::addresses(n);
            (IpAddr::V6(c), IpAddr::V6(m))
        }
    }
}

/// "primary 192.0.2.0/30: customer 192.0.2.1, Microsoft 192.0.2.2; secondary …"
fn describe_links(primary: IpNet, secondary: IpNet) -> String {
    let (pc, pm) = link_addresses(primary);
    let (sc, sm) = link_addresses(secondary);
    format!(
        "primary {primary}: customer {pc}, Microsoft {pm}; secondary {secondary}: customer {sc}, \
         Microsoft {sm}"
    )
}

/// A link subnet's value as written: the /29 (/125) it was given as, or
/// the /30 (/126) itself when given in a list.
fn written(v: &Spanned<OneOrList>, net: IpNet) -> String {
    match v.get_ref() {
        OneOrList::One(s) => s.trim().to_string(),
        OneOrList::List(_) => net.to_string(),
    }
}

/// A name `ip netns` could have made (`/var/run/netns/NAME`).
fn netns_name_ok(n: &str) -> bool {
    !(n.is_empty()
        || n.len() > 255
        || n == "."
        || n == ".."
        || n.chars().any(|c| c == '/' || c.is_whitespace()))
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

fn quote_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn dscp_whitelist_text() -> String {
    EXPRESSROUTE_WHITELIST
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

struct Checker<'a> {
    text: &'a str,
    file: &'a Path,
    diags: Vec<Diagnostic>,
    role: Role,
    ports: Vec<Port>,
    port_names: HashMap<String, PortIndex>,
    /// Ports whose `direct_gbps` is invalid (reported): their pairs are not
    /// checked further.
    bad_direct: HashSet<PortIndex>,
}

/// "50, 100 and 200".
fn sizes_text(sizes: &[u32]) -> String {
    match sizes {
        [] => "none".to_string(),
        [one] => one.to_string(),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(|n| n.to_string()).collect();
            format!("{} and {last}", init.join(", "))
        }
    }
}

impl Checker<'_> {
    fn report(
        &mut self,
        span: Range<usize>,
        rule: &'static str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.diags.push(Diagnostic::at_span(
            self.file, self.text, span, rule, field, message,
        ));
    }

    /// `role`, `transport_label` and `mtu` of a port (`backbone-port`).
    fn backbone(&mut self, rp: &RawPort, path: &str) -> Option<Backbone> {
        let backbone = match &rp.role {
            Some(r) => self
                .keyword(r, &format!("{path}.role"), &[("backbone", true)])
                .unwrap_or(false),
            None => false,
        };
        let transport_label = rp
            .transport_label
            .as_ref()
            .and_then(|v| self.label(v, &format!("{path}.transport_label")));
        let mtu = rp.mtu.as_ref().and_then(|v| {
            let n = *v.get_ref();
            let m = u16::try_from(n).ok().filter(|m| (1280..=9216).contains(m));
            if m.is_none() {
                self.report(
                    v.span(),
                    "backbone-port",
                    format!("{path}.mtu"),
                    format!(
                        "mtu {n} is not a backbone link MTU; give the interface MTU of the \
                         backbone link, 1280..=9216 (e.g. 1600 for labelled 1500-byte packets)"
                    ),
                );
            }
            m
        });
        if !backbone {
            for (given, key) in [
                (
                    rp.transport_label.as_ref().map(Spanned::span),
                    "transport_label",
                ),
                (rp.mtu.as_ref().map(Spanned::span), "mtu"),
            ] {
                if let Some(span) = given {
                    self.report(
                        span,
                        "backbone-port",
                        format!("{path}.{key}"),
                        format!(
                            "{key} is a setting of a backbone port; add role = \"backbone\" \
                             to this port or remove {key}"
                        ),
                    );
                }
            }
        }
        backbone.then_some(Backbone {
            transport_label,
            mtu,
        })
    }

    /// An MPLS label a configuration may use, else `mpls-label`.
    fn label(&mut self, v: &Spanned<i64>, field: &str) -> Option<Label> {
        let n = *v.get_ref();
        let l = match u32::try_from(n) {
            Ok(u) => Label::usable(u),
            Err(_) => Err(LabelError::TooLarge(u32::MAX)),
        };
        match l {
            Ok(l) => Some(l),
            Err(e) => {
                let why = match e {
                    LabelError::TooLarge(_) if n < 0 || n > i64::from(u32::MAX) => {
                        format!("{n} is not a label; usable labels are 16..=1048575")
                    }
                    _ => e.to_string(),
                };
                self.report(v.span(), "mpls-label", field, why);
                None
            }
        }
    }

    /// `access.mpls = { … }` (`mpls-attachment`, `mpls-label`).
    fn mpls(&mut self, m: &RawMpls, path: &str) -> Option<MplsAccess> {
        let label = self.label(&m.label, &format!("{path}.label"));
        let remote_label = self.label(&m.remote_label, &format!("{path}.remote_label"));
        let transport_label = match &m.transport_label {
            Some(v) => Some(self.label(v, &format!("{path}.transport_label"))?),
            None => None,
        };
        let mac = match parse_mac(m.next_hop_mac.get_ref()) {
            Some(mac) if mac[0] & 1 == 0 && mac != [0; 6] => Some(mac),
            _ => {
                self.report(
                    m.next_hop_mac.span(),
                    "mpls-attachment",
                    format!("{path}.next_hop_mac"),
                    format!(
                        "{:?} is not a unicast MAC; next_hop_mac is the backbone router's MAC, \
                         six hex octets with an even first octet, e.g. \"02:00:00:00:00:02\"",
                        m.next_hop_mac.get_ref()
                    ),
                );
                None
            }
        };
        let ttl = match &m.ttl {
            Some(t) => self.keyword(
                t,
                &format!("{path}.ttl"),
                &[("uniform", TtlModel::Uniform), ("pipe", TtlModel::Pipe)],
            ),
            None => Some(TtlModel::Uniform),
        };
        let mut tc_map = [0, 1, 2, 3, 4, 5, 6, 7];
        let mut tc_ok = true;
        if let Some(list) = &m.tc_map {
            let values = list.get_ref();
            if values.len() != 8 || values.iter().any(|v| !(0..=7).contains(v.get_ref())) {
                self.report(
                    list.span(),
                    "mpls-attachment",
                    format!("{path}.tc_map"),
                    "tc_map is eight traffic classes 0..=7, one per DSCP class (DSCP >> 3, \
                     CS0 first), e.g. [0, 1, 2, 3, 4, 5, 6, 7]",
                );
                tc_ok = false;
            } else {
                for (dst, v) in tc_map.iter_mut().zip(values) {
                    *dst = *v.get_ref() as u8;
                }
            }
        }
        if !tc_ok {
            return None;
        }
        Some(MplsAccess {
            label: label?,
            remote_label: remote_label?,
            transport_label,
            next_hop_mac: mac?,
            control_word: m.control_word.as_ref().is_none_or(|c| *c.get_ref()),
            ttl: ttl?,
            tc_map,
        })
    }

    /// The rules of an access side on a backbone port or with `mpls`
    /// (`backbone-port`, `mpls-attachment`, `mpls-mtu`).
    fn mpls_access(&mut self, ra: &RawAccess, a: &Access, mode: ServiceMode, mtu: u16, path: &str) {
        let Some(port) = self.ports.get(a.port).cloned() else {
            return;
        };
        let pname = port.name.clone();
        match (&port.backbone, &a.mpls, &ra.mpls) {
            (None, Some(_), Some(raw)) => {
                self.report(
                    raw.span(),
                    "backbone-port",
                    format!("{path}.mpls"),
                    format!(
                        "port {pname:?} is not a backbone port; an MPLS attachment needs one: \
                         add role = \"backbone\" to port {pname:?}"
                    ),
                );
            }
            (Some(_), None, _) => {
                self.report(
                    ra.port.span(),
                    "backbone-port",
                    format!("{path}.port"),
                    format!(
                        "port {pname:?} is a backbone port (role = \"backbone\"): its \
                         attachments are labelled; give access.mpls = {{ label = …, \
                         remote_label = …, next_hop_mac = \"…\" }}"
                    ),
                );
            }
            (Some(bb), Some(m), Some(raw)) => {
                if !a.vlans.is_empty() {
                    self.report(
                        raw.span(),
                        "mpls-attachment",
                        format!("{path}.vlans"),
                        "an MPLS attachment is named by its label, not by VLANs: remove vlan/vlans",
                    );
                }
                let pw = mode == ServiceMode::L2;
                if let (false, Some(cw)) = (pw, raw.get_ref().control_word.as_ref()) {
                    self.report(
                        cw.span(),
                        "mpls-attachment",
                        format!("{path}.mpls.control_word"),
                        "control_word belongs to an Ethernet pseudowire (an l2 peering); an \
                         L3VPN attachment carries IP right under its labels: remove it",
                    );
                }
                let received = 1 + usize::from(bb.transport_label.is_some());
                let labels = 4 * received.max(m.pushed_labels()) as u32;
                let need = u32::from(mtu)
                    + labels
                    + if pw {
                        14 + 4 * u32::from(m.control_word)
                    } else {
                        0
                    };
                if let Some(pm) = bb.mtu {
                    if need > u32::from(pm) {
                        let what = if pw {
                            "its inner Ethernet header, labels and control word"
                        } else {
                            "its labels"
                        };
                        self.report(
                            raw.span(),
                            "mpls-mtu",
                            format!("{path}.mpls"),
                            format!(
                                "the peering's MTU {mtu} plus {what} needs {need} bytes on \
                                 backbone port {pname:?}, whose mtu is {pm}: raise the port's mtu \
                                 to {need} (and the backbone link's) or lower the peering's mtu \
                                 to {}",
                                u32::from(mtu).saturating_sub(need - u32::from(pm))
                            ),
                        );
                    }
                }
            }
            _ => {}
        }
    }

    /// A keyword field: one of `choices`, else `enum-value`.
    fn keyword<T: Copy>(
        &mut self,
        v: &Spanned<String>,
        field: &str,
        choices: &[(&str, T)],
    ) -> Option<T> {
        let s = v.get_ref().as_str();
        if let Some((_, t)) = choices.iter().find(|(k, _)| *k == s) {
            return Some(*t);
        }
        let names: Vec<&str> = choices.iter().map(|(k, _)| *k).collect();
        self.report(
            v.span(),
            "enum-value",
            field,
            format!(
                "{s:?} is not a valid value; expected one of {}",
                quote_list(&names)
            ),
        );
        None
    }

    /// A VLAN ID in 1..=4094, else `vlan-range`.
    fn vlan(&mut self, v: &Spanned<i64>, field: &str, what: &str) -> Option<VlanId> {
        let n = *v.get_ref();
        let id = u16::try_from(n).ok().and_then(VlanId::new);
        if id.is_none() {
            self.report(
                v.span(),
                "vlan-range",
                field,
                format!(
                    "{what} {n} is not a usable VLAN ID; valid VLAN IDs are 1..=4094 (0 means \
                     priority-tagged, 4095 is reserved)"
                ),
            );
        }
        id
    }

    /// A port name that must exist, else `unknown-port`.
    fn port_ref(&mut self, v: &Spanned<String>, field: &str) -> Option<PortIndex> {
        if let Some(&i) = self.port_names.get(v.get_ref()) {
            return Some(i);
        }
        let known: Vec<&str> = self.ports.iter().map(|p| p.name.as_str()).collect();
        let hint = if known.is_empty() {
            "no [[port]] is defined; add one with this name".to_string()
        } else {
            format!("known ports: {}", quote_list(&known))
        };
        self.report(
            v.span(),
            "unknown-port",
            field,
            format!("there is no port named {:?}; {hint}", v.get_ref()),
        );
        None
    }

    fn role(&mut self, raw: &RawConfig) {
        if let Some(r) = &raw.role {
            if let Some(role) = self.keyword(
                r,
                "role",
                &[("provider-edge", Role::ProviderEdge), ("msee", Role::Msee)],
            ) {
                self.role = role;
            }
        }
    }

    fn ports(&mut self, raw: &RawConfig) {
        for (i, rp) in raw.port.iter().enumerate() {
            let path = format!("port[{i}]");
            let name = rp.name.get_ref().clone();
            if name.trim().is_empty() {
                self.report(
                    rp.name.span(),
                    "name-empty",
                    format!("{path}.name"),
                    "a port needs a non-empty name, e.g. \"customer\" or \"trunk-a\"",
                );
            }
            if let Some(&first) = self.port_names.get(&name) {
                self.report(
                    rp.name.span(),
                    "port-unique",
                    format!("{path}.name"),
                    format!(
                        "port name {name:?} is already used by port[{first}]; port names must \
                         be unique"
                    ),
                );
            } else {
                self.port_names.insert(name.clone(), i);
            }
            let interface = match &rp.interface {
                Some(ifname) => {
                    let s = ifname.get_ref();
                    if !valid_ifname(s) {
                        self.report(
                            ifname.span(),
                            "interface-name",
                            format!("{path}.interface"),
                            format!(
                                "{s:?} is not a valid Linux interface name; use 1 to 15 bytes \
                                 without '/', ':' or whitespace, e.g. \"xc-pe-cust\""
                            ),
                        );
                    }
                    s.clone()
                }
                None => {
                    if name.len() > 15 {
                        self.report(
                            rp.name.span(),
                            "interface-name",
                            format!("{path}.name"),
                            format!(
                                "the interface defaults to the port name, and {name:?} is longer \
                                 than 15 bytes; set `interface` to a name of 1 to 15 bytes"
                            ),
                        );
                    }
                    name.clone()
                }
            };
            let backend = match &rp.backend {
                Some(b) => self
                    .keyword(
                        b,
                        &format!("{path}.backend"),
                        &[
                            ("af_packet", BackendKind::AfPacket),
                            ("tap", BackendKind::Tap),
                            ("pnet", BackendKind::Pnet),
                            ("mem", BackendKind::Mem),
                        ],
                    )
                    .unwrap_or(BackendKind::AfPacket),
                None => BackendKind::AfPacket,
            };
            let direct_gbps = rp.direct_gbps.as_ref().and_then(|v| {
                let n = *v.get_ref();
                let g = u32::try_from(n)
                    .ok()
                    .filter(|g| DIRECT_PORT_GBPS.contains(g));
                if g.is_none() {
                    self.bad_direct.insert(i);
                    self.report(
                        v.span(),
                        "direct-port",
                        format!("{path}.direct_gbps"),
                        format!(
                            "{n} is not an ExpressRoute Direct port speed; Direct ports are 10 or \
                             100 Gbit/s (direct_gbps = 10 or 100); leave direct_gbps out for a \
                             port through a provider"
                        ),
                    );
                }
                g
            });
            let backbone = self.backbone(rp, &path);
            self.ports.push(Port {
                name,
                interface,
                backend,
                direct_gbps,
                backbone,
            });
        }
    }

    fn circuit(&mut self, i: usize, rc: &RawCircuit) -> (Option<Circuit>, CircuitFacts) {
        let path = format!("circuit[{i}]");
        let before = self.diags.len();
        let name = rc.name.get_ref().clone();
        if name.trim().is_empty() {
            self.report(
                rc.name.span(),
                "name-empty",
                format!("{path}.name"),
                "a circuit needs a non-empty name, e.g. \"contoso-ams\"",
            );
        }
        let encap = self.keyword(
            &rc.encapsulation,
            &format!("{path}.encapsulation"),
            &[
                ("qinq", Encapsulation::QinQ),
                ("dot1q", Encapsulation::Dot1Q),
            ],
        );
        let s_tag = rc
            .s_tag
            .as_ref()
            .and_then(|v| self.vlan(v, &format!("{path}.s_tag"), "S-tag"));
        match (encap, &rc.s_tag) {
            (Some(Encapsulation::QinQ), None) => self.report(
                rc.encapsulation.span(),
                "s-tag",
                format!("{path}.s_tag"),
                "a qinq circuit needs `s_tag = 1..=4094`: the S-tag identifies the circuit on \
                 the trunk (or use encapsulation = \"dot1q\")",
            ),
            (Some(Encapsulation::Dot1Q), Some(v)) => self.report(
                v.span(),
                "s-tag",
                format!("{path}.s_tag"),
                "a dot1q circuit carries one tag per peering and no S-tag; remove `s_tag` or use \
                 encapsulation = \"qinq\"",
            ),
            _ => {}
        }
        let outer_tpid = match &rc.outer_tpid {
            Some(v) => self.tpid(v, &format!("{path}.outer_tpid")),
            None => Some(Tpid::DOT1Q),
        };
        let premium = rc.premium.unwrap_or(false);
        let primary = self.link(&rc.primary, &format!("{path}.primary"), encap, &rc.s_tag);
        let secondary = self.link(
            &rc.secondary,
            &format!("{path}.secondary"),
            encap,
            &rc.s_tag,
        );
        if let (Some(p), Some(s)) = (&primary, &secondary) {
            if p.port == s.port {
                self.report(
                    rc.secondary.port.span(),
                    "link-ports-differ",
                    format!("{path}.secondary.port"),
                    format!(
                        "the secondary link uses port {:?} like the primary; a circuit lands on \
                         two links to two MSEEs, so primary and secondary need different ports",
                        rc.primary.port.get_ref()
                    ),
                );
            }
        }
        let pair = self.direct_pair(&path, rc, &primary, &secondary);
        let bandwidth_mbps = self.bandwidth(&path, rc, pair);

        let mut peerings = Vec::new();
        let mut pfacts = Vec::new();
        for (j, rp) in rc.peering.iter().enumerate() {
            let ctx = PeeringCtx {
                circuit: &name,
                path: format!("{path}.peering[{j}]"),
                premium,
            };
            let (p, f) = self.peering(&ctx, rp);
            peerings.push(p);
            pfacts.push(f);
        }
        self.within_circuit(&path, &name, encap, &pfacts);

        let facts = CircuitFacts {
            name: name.clone(),
            encap: encap.map(|e| (e, rc.encapsulation.span())),
            s_tag: s_tag.zip(rc.s_tag.as_ref().map(Spanned::span)),
            primary: primary.as_ref().map(|l| (l.port, rc.primary.port.span())),
            secondary: secondary
                .as_ref()
                .map(|l| (l.port, rc.secondary.port.span())),
            bandwidth: bandwidth_mbps.map(|b| {
                let span = rc
                    .bandwidth_mbps
                    .as_ref()
                    .map_or(rc.name.span(), Spanned::span);
                (b, span)
            }),
            direct: pair.flatten(),
            peerings: pfacts,
        };
        if self.diags.len() != before {
            return (None, facts);
        }
        let peerings: Option<Vec<Peering>> = peerings.into_iter().collect();
        let circuit = (|| {
            Some(Circuit {
                name,
                encapsulation: encap?,
                s_tag,
                outer_tpid: outer_tpid?,
                primary: primary?,
                secondary: secondary?,
                bandwidth_mbps: bandwidth_mbps?,
                premium,
                peerings: peerings?,
            })
        })();
        (circuit, facts)
    }

    /// The kind of a circuit's trunk port pair: `Some(None)` through a
    /// provider, `Some(Some(gbps))` an ExpressRoute Direct pair, `None`
    /// unknown (a link failed, or the links disagree: `direct-port`).
    fn direct_pair(
        &mut self,
        path: &str,
        rc: &RawCircuit,
        primary: &Option<Link>,
        secondary: &Option<Link>,
    ) -> Option<Option<u32>> {
        let (p, s) = (primary.as_ref()?.port, secondary.as_ref()?.port);
        if p == s || self.bad_direct.contains(&p) || self.bad_direct.contains(&s) {
            return None;
        }
        let speed = |i: PortIndex| self.ports.get(i).and_then(|x| x.direct_gbps);
        let (a, b) = (speed(p), speed(s));
        if a == b {
            return Some(a);
        }
        let describe = |name: &str, g: Option<u32>| match g {
            Some(g) => format!("port {name:?} is a {g}-Gbps ExpressRoute Direct port"),
            None => format!("port {name:?} is a port through a provider (no direct_gbps)"),
        };
        self.report(
            rc.secondary.port.span(),
            "direct-port",
            format!("{path}.secondary.port"),
            format!(
                "the secondary link's {}, but the primary link's {}; both links of a circuit are \
                 ExpressRoute Direct ports of the same speed (the customer's port pair: \
                 direct_gbps = 10 or 100 on both) or both ports through a provider",
                describe(rc.secondary.port.get_ref(), b),
                describe(rc.primary.port.get_ref(), a),
            ),
        );
        None
    }

    /// `bandwidth_mbps` (default 1000) against the sizes of the circuit's
    /// port pair (`pair` as from [`Checker::direct_pair`]).
    fn bandwidth(&mut self, path: &str, rc: &RawCircuit, pair: Option<Option<u32>>) -> Option<u32> {
        let (n, span) = match &rc.bandwidth_mbps {
            Some(v) => (*v.get_ref(), v.span()),
            None => (i64::from(DEFAULT_BANDWIDTH_MBPS), rc.name.span()),
        };
        let all = [
            PROVIDER_BANDWIDTHS_MBPS,
            DIRECT_10G_BANDWIDTHS_MBPS,
            DIRECT_100G_BANDWIDTHS_MBPS,
        ];
        let b = u32::try_from(n).ok();
        let ok = match pair {
            Some(direct) => b.filter(|b| bandwidths_mbps(direct).contains(b)),
            // Unknown pair (reported elsewhere): any circuit size passes.
            None => b.filter(|b| all.iter().any(|l| l.contains(b))),
        };
        if ok.is_some() {
            return ok;
        }
        let ports = format!(
            "({:?}, {:?})",
            rc.primary.port.get_ref(),
            rc.secondary.port.get_ref()
        );
        let (on, valid) = match pair {
            Some(None) => (
                format!("the port pair {ports} through a provider"),
                PROVIDER_BANDWIDTHS_MBPS,
            ),
            Some(Some(g)) => (
                format!("the {g}-Gbps ExpressRoute Direct port pair {ports}"),
                bandwidths_mbps(Some(g)),
            ),
            None => (String::new(), PROVIDER_BANDWIDTHS_MBPS),
        };
        let hint = match (pair, b) {
            (_, Some(b)) if DIRECT_100G_BANDWIDTHS_MBPS.contains(&b) && pair != Some(Some(100)) => {
                format!(
                    "; {b} Mbit/s needs a 100-Gbps ExpressRoute Direct port pair (direct_gbps = \
                     100 on both ports)"
                )
            }
            (Some(Some(_)), Some(b)) if PROVIDER_BANDWIDTHS_MBPS.contains(&b) => {
                format!("; {b} Mbit/s is a size through a provider, not on ExpressRoute Direct")
            }
            _ => String::new(),
        };
        let message = match (pair, &rc.bandwidth_mbps) {
            (None, _) => format!(
                "{n} Mbit/s is not an ExpressRoute circuit size; through a provider circuits are \
                 {} Mbit/s, on 10-Gbps ExpressRoute Direct {}, on 100-Gbps Direct {}",
                sizes_text(PROVIDER_BANDWIDTHS_MBPS),
                sizes_text(DIRECT_10G_BANDWIDTHS_MBPS),
                sizes_text(DIRECT_100G_BANDWIDTHS_MBPS),
            ),
            (Some(_), Some(_)) => format!(
                "{n} Mbit/s is not a circuit size on {on}; valid sizes there are {} Mbit/s{hint}",
                sizes_text(valid)
            ),
            (Some(_), None) => format!(
                "bandwidth_mbps defaults to {n} Mbit/s, which is not a circuit size on {on}; set \
                 bandwidth_mbps to one of {} Mbit/s",
                sizes_text(valid)
            ),
        };
        self.report(span, "bandwidth", format!("{path}.bandwidth_mbps"), message);
        None
    }

    fn tpid(&mut self, v: &Spanned<Scalar>, field: &str) -> Option<Tpid> {
        let value = match v.get_ref() {
            Scalar::Int(n) => u16::try_from(*n).ok(),
            Scalar::Str(s) => {
                let t = s.trim();
                match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                    Some(hex) => u16::from_str_radix(hex, 16).ok(),
                    None => t.parse::<u16>().ok(),
                }
            }
        };
        match value {
            Some(n) if Tpid::is_vlan(n) => Some(Tpid(n)),
            _ => {
                let shown = match v.get_ref() {
                    Scalar::Int(n) => format!("{n:#x}"),
                    Scalar::Str(s) => format!("{s:?}"),
                };
                self.report(
                    v.span(),
                    "tpid",
                    field,
                    format!(
                        "{shown} is not a VLAN TPID; valid outer TPIDs are 0x8100 (default, as \
                         ExpressRoute Direct documents), 0x88a8 (IEEE 802.1ad) and 0x9100"
                    ),
                );
                None
            }
        }
    }

    fn link(
        &mut self,
        rl: &RawLink,
        path: &str,
        encap: Option<Encapsulation>,
        circuit_s_tag: &Option<Spanned<i64>>,
    ) -> Option<Link> {
        let port = self.port_ref(&rl.port, &format!("{path}.port"));
        let outer_tag = match &rl.outer_tag {
            Some(v) => Some(self.vlan(v, &format!("{path}.outer_tag"), "outer tag")?),
            None => None,
        };
        if let Some(v) = &rl.s_tag {
            let field = format!("{path}.s_tag");
            let tag = self.vlan(v, &field, "S-tag");
            match (encap, circuit_s_tag) {
                (Some(Encapsulation::Dot1Q), _) => self.report(
                    v.span(),
                    "s-tag",
                    field,
                    "a dot1q circuit has no S-tag; remove `s_tag` from the link",
                ),
                (_, Some(c)) if tag.is_some() && c.get_ref() != v.get_ref() => self.report(
                    v.span(),
                    "same-tags-both-links",
                    field,
                    format!(
                        "S-tag {} differs from the circuit's s_tag {}; both links of a circuit \
                         use the same S-tag: set it to {} or remove it",
                        v.get_ref(),
                        c.get_ref(),
                        c.get_ref()
                    ),
                ),
                _ => {}
            }
        }
        Some(Link {
            port: port?,
            outer_tag,
        })
    }

    /// Rules among the peerings of one circuit.
    fn within_circuit(
        &mut self,
        path: &str,
        name: &str,
        encap: Option<Encapsulation>,
        peerings: &[PeeringFacts],
    ) {
        let mut kinds: HashMap<PeeringKind, usize> = HashMap::new();
        let mut ctags: HashMap<VlanId, usize> = HashMap::new();
        for (j, p) in peerings.iter().enumerate() {
            if let Some((kind, span)) = &p.kind {
                if let Some(first) = kinds.get(kind) {
                    self.report(
                        span.clone(),
                        "peering-unique",
                        format!("{path}.peering[{j}].kind"),
                        format!(
                            "circuit {name:?} already has a {} peering (peering[{first}]); a \
                             circuit carries at most one private and one microsoft peering",
                            kind_name(*kind)
                        ),
                    );
                } else {
                    kinds.insert(*kind, j);
                }
            }
            if encap == Some(Encapsulation::QinQ) {
                if let Some((tag, span)) = &p.tag {
                    if let Some(first) = ctags.get(tag) {
                        self.report(
                            span.clone(),
                            "ctag-unique",
                            format!("{path}.peering[{j}].tag"),
                            format!(
                                "C-tag {tag} is already used by peering[{first}] of circuit \
                                 {name:?}; C-tags must be unique within a circuit"
                            ),
                        );
                    } else {
                        ctags.insert(*tag, j);
                    }
                }
            }
        }
        // Link subnets of different peerings must not overlap.
        for (j, p) in peerings.iter().enumerate() {
            // One report per field (a /29 gives two /30s that may both clash).
            let mut reported: HashSet<&str> = HashSet::new();
            for (net, span, field, _) in &p.subnets {
                if reported.contains(field.as_str()) {
                    continue;
                }
                let clash = peerings[..j].iter().enumerate().find_map(|(k, q)| {
                    q.subnets
                        .iter()
                        .find(|(other, ..)| overlaps(net, other))
                        .map(|(other, ..)| (k, *other))
                });
                if let Some((k, other)) = clash {
                    reported.insert(field.as_str());
                    self.report(
                        span.clone(),
                        "subnet-overlap",
                        field.clone(),
                        format!(
                            "link subnet {net} overlaps {other} of peering[{k}] in circuit \
                             {name:?}; each peering of a circuit needs its own link subnets"
                        ),
                    );
                }
            }
        }
    }

    fn peering(
        &mut self,
        ctx: &PeeringCtx<'_>,
        rp: &RawPeering,
    ) -> (Option<Peering>, PeeringFacts) {
        let path = &ctx.path;
        let before = self.diags.len();
        let kind = self.keyword(
            &rp.kind,
            &format!("{path}.kind"),
            &[
                ("private", PeeringKind::Private),
                ("microsoft", PeeringKind::Microsoft),
            ],
        );
        let ms = kind == Some(PeeringKind::Microsoft);
        let tag = self.vlan(&rp.tag, &format!("{path}.tag"), "tag");
        if let Some(st) = &rp.secondary_tag {
            let field = format!("{path}.secondary_tag");
            if let (Some(t), Some(s)) = (tag, self.vlan(st, &field, "secondary tag")) {
                if t != s {
                    self.report(
                        st.span(),
                        "same-tags-both-links",
                        field,
                        format!(
                            "secondary_tag {s} differs from tag {t}; the primary and secondary \
                             links use the same VLAN IDs: set it to {t} or remove it"
                        ),
                    );
                }
            }
        }
        let mode = match &rp.mode {
            Some(m) => self.keyword(
                m,
                &format!("{path}.mode"),
                &[("l2", ServiceMode::L2), ("l3", ServiceMode::L3)],
            ),
            None => Some(ServiceMode::L2),
        };
        let access = self.access(&rp.access, &format!("{path}.access"));

        let mut subnets = Vec::new();
        let ipv4 = rp.ipv4.as_ref().and_then(|v| {
            let field = format!("{path}.ipv4");
            let pair = self.link_subnets(v, Family::V4, &field, ms)?;
            for net in [pair.0, pair.1] {
                subnets.push((net, v.span(), field.clone(), written(v, net)));
            }
            match pair {
                (IpNet::V4(primary), IpNet::V4(secondary)) => {
                    Some(LinkSubnets { primary, secondary })
                }
                _ => None,
            }
        });
        let ipv6 = rp.ipv6.as_ref().and_then(|v| {
            let field = format!("{path}.ipv6");
            let pair = self.link_subnets(v, Family::V6, &field, ms)?;
            for net in [pair.0, pair.1] {
                subnets.push((net, v.span(), field.clone(), written(v, net)));
            }
            match pair {
                (IpNet::V6(primary), IpNet::V6(secondary)) => {
                    Some(LinkSubnets { primary, secondary })
                }
                _ => None,
            }
        });
        if let (Some(a), Some(m)) = (&access, mode) {
            let given = [("ipv4", &rp.access.ipv4), ("ipv6", &rp.access.ipv6)];
            for (fam, raw) in given {
                let Some(raw) = raw else { continue };
                if m == ServiceMode::L2 {
                    self.report(
                        raw.span(),
                        "l3-only",
                        format!("{path}.access.{fam}"),
                        "an access address only makes sense on an l3 (managed Layer 3) peering; \
                         an l2 peering passes frames unchanged: remove it or set mode = \"l3\"",
                    );
                    continue;
                }
                let net = if fam == "ipv4" {
                    a.ipv4.map(IpNet::V4)
                } else {
                    a.ipv6.map(IpNet::V6)
                };
                if let Some(net) = net {
                    let class = crate::config::address::address_class(net.addr());
                    if ms && !class.is_public() {
                        self.report(
                            raw.span(),
                            "ms-public-address",
                            format!("{path}.access.{fam}"),
                            format!(
                                "{net} is {class}; Microsoft peering needs public addresses \
                                 (documentation space stands in for them in tests)"
                            ),
                        );
                    }
                }
            }
            if m == ServiceMode::L3 {
                let needs = [
                    (
                        "ipv4",
                        rp.ipv4.is_some(),
                        a.ipv4.is_some() || rp.access.ipv4.is_some(),
                    ),
                    (
                        "ipv6",
                        rp.ipv6.is_some(),
                        a.ipv6.is_some() || rp.access.ipv6.is_some(),
                    ),
                ];
                for (fam, has_links, has_access) in needs {
                    if has_links && !has_access {
                        self.report(
                            rp.access.port.span(),
                            "access-address",
                            format!("{path}.access.{fam}"),
                            format!(
                                "an l3 peering with {fam} link subnets routes to the access side \
                                 too: give this forwarder's address on the access link, e.g. \
                                 access = {{ port = \"…\", {fam} = {} }}",
                                if fam == "ipv4" {
                                    "\"203.0.113.1/30\""
                                } else {
                                    "\"2001:db8:ff::1/126\""
                                }
                            ),
                        );
                    }
                }
            }
        }
        if mode == Some(ServiceMode::L3) && rp.ipv4.is_none() && rp.ipv6.is_none() {
            if let Some(m) = &rp.mode {
                self.report(
                    m.span(),
                    "l3-address",
                    format!("{path}.mode"),
                    "an l3 (managed Layer 3) peering routes with its own addresses on the link \
                     subnets: give `ipv4` (a /29 or two /30s) and/or `ipv6` (a /125 or two \
                     /126s), or use mode = \"l2\"",
                );
            }
        }
        let peer_asn = match &rp.peer_asn {
            Some(v) => self.asn(v, ms, &format!("{path}.peer_asn")),
            None => None,
        };
        let mtu = match &rp.mtu {
            Some(v) => self.mtu(v, rp.ipv6.is_some(), &format!("{path}.mtu")),
            None => Some(1500),
        };
        if let (Some(a), Some(m), Some(u)) = (&access, mode, mtu) {
            self.mpls_access(&rp.access, a, m, u, &format!("{path}.access"));
        }
        let default_dscp = if ms {
            DscpAction::ExpressRoute
        } else {
            DscpAction::Preserve
        };
        let dscp_action = match &rp.dscp {
            Some(v) => self.dscp_action(v, ms, &format!("{path}.dscp")),
            None => Some(default_dscp),
        };
        let dscp_return = match &rp.dscp_return {
            Some(v) => self.dscp_action(v, false, &format!("{path}.dscp_return")),
            None => Some(DscpAction::Preserve),
        };
        let mut rules = Vec::new();
        for (k, r) in rp.dscp_rules.iter().enumerate() {
            rules.push(self.dscp_rule(r, ms, &format!("{path}.dscp_rules[{k}]")));
        }
        let bfd_default = Bfd::default_for(kind.unwrap_or(PeeringKind::Private));
        let bfd = match &rp.bfd {
            Some(b) => self.bfd(b, bfd_default, &format!("{path}.bfd")),
            None => Some(bfd_default),
        };

        let mut routes = Vec::new();
        let mut ms_routes = Vec::new();
        let mut neighbors = Vec::new();
        let l2 = mode == Some(ServiceMode::L2);
        if let Some(rs) = &rp.routes {
            if l2 && !rs.get_ref().is_empty() {
                self.report(
                    rs.span(),
                    "l3-only",
                    format!("{path}.routes"),
                    "routes only make sense on an l3 (managed Layer 3) peering; an l2 peering \
                     passes frames unchanged: remove `routes` or set mode = \"l3\"",
                );
            } else if !l2 {
                let links = LinkView {
                    v4: ipv4,
                    v6: ipv6,
                    access_v4: access.as_ref().and_then(|a| a.ipv4),
                    access_v6: access.as_ref().and_then(|a| a.ipv6),
                    own_is_customer: self.role == Role::ProviderEdge,
                };
                for (k, r) in rs.get_ref().iter().enumerate() {
                    routes.push(self.route(r, ms, &links, &format!("{path}.routes[{k}]")));
                }
                if ms {
                    // Only prefixes that passed the Microsoft rules: a
                    // default or non-public route is reported already.
                    for (k, (r, raw)) in routes.iter().zip(rs.get_ref()).enumerate() {
                        if let Some(r) = r {
                            if r.prefix.prefix_len() > 0 && prefix_class(r.prefix).is_public() {
                                ms_routes.push((
                                    r.prefix,
                                    raw.prefix.span(),
                                    format!("{path}.routes[{k}].prefix"),
                                ));
                            }
                        }
                    }
                }
            }
        }
        if let Some(ns) = &rp.neighbors {
            if l2 && !ns.get_ref().is_empty() {
                self.report(
                    ns.span(),
                    "l3-only",
                    format!("{path}.neighbors"),
                    "neighbors only make sense on an l3 (managed Layer 3) peering; remove \
                     `neighbors` or set mode = \"l3\"",
                );
            } else if !l2 {
                let links = LinkView {
                    v4: ipv4,
                    v6: ipv6,
                    access_v4: access.as_ref().and_then(|a| a.ipv4),
                    access_v6: access.as_ref().and_then(|a| a.ipv6),
                    own_is_customer: self.role == Role::ProviderEdge,
                };
                for (k, n) in ns.get_ref().iter().enumerate() {
                    neighbors.push(self.neighbor(n, &links, &format!("{path}.neighbors[{k}]")));
                }
            }
        }

        let mut host_names = Vec::new();
        let host = match &rp.host {
            Some(h) if l2 => {
                self.report(
                    h.span(),
                    "l3-only",
                    format!("{path}.host"),
                    "host interfaces only make sense on an l3 (managed Layer 3) peering, whose \
                     forwarder has addresses of its own; remove `host` or set mode = \"l3\"",
                );
                None
            }
            Some(h) => kind.and_then(|k| self.host(h, ctx.circuit, k, path, &mut host_names)),
            None => None,
        };
        let (bgp, announced) = self.bgp(rp, path, ms, l2, peer_asn.is_some());
        if !l2 {
            let links = LinkView {
                v4: ipv4,
                v6: ipv6,
                access_v4: access.as_ref().and_then(|a| a.ipv4),
                access_v6: access.as_ref().and_then(|a| a.ipv6),
                own_is_customer: self.role == Role::ProviderEdge,
            };
            let routes_given = rp.routes.as_ref().map(|rs| (rs, routes.as_slice()));
            let announce_given = rp
                .announce
                .as_ref()
                .map(|a| (a, announced.iter().map(|(n, _)| *n).collect::<Vec<_>>()));
            self.prefix_limit(
                ctx,
                kind,
                routes_given,
                announce_given.as_ref().map(|(a, n)| (*a, n.as_slice())),
                &links,
            );
        }
        if ms {
            // Announced prefixes reach Microsoft's routing domain like
            // routes do: they may not cover another peering's link subnet.
            for (k, (net, span)) in announced.iter().enumerate() {
                if net.prefix_len() > 0 && prefix_class(*net).is_public() {
                    ms_routes.push((*net, span.clone(), format!("{path}.announce[{k}]")));
                }
            }
        }
        let fpm = self.fpm(rp, l2, path);
        let kernel = self.kernel_table(rp, l2, path);

        let facts = PeeringFacts {
            kernel: kernel
                .as_ref()
                .and_then(|k| k.as_ref())
                .zip(rp.kernel_table.as_ref())
                .map(|(k, raw)| {
                    (
                        k.table,
                        k.netns.clone(),
                        raw.span(),
                        format!("{path}.kernel_table"),
                    )
                }),
            fpm: fpm
                .as_ref()
                .and_then(|f| f.as_ref())
                .zip(rp.fpm.as_ref())
                .map(|(f, raw)| (f.listen, f.netns.clone(), raw.span(), format!("{path}.fpm"))),
            kind: kind.map(|k| (k, rp.kind.span())),
            tag: tag.map(|t| (t, rp.tag.span())),
            access: access
                .as_ref()
                .map(|a| (a.port, a.vlans.clone(), rp.access.port.span())),
            label: access
                .as_ref()
                .and_then(|a| a.mpls)
                .map(|m| (m.label, rp.access.mpls.as_ref().map_or(0..0, Spanned::span))),
            subnets,
            ms_routes,
            host_names,
        };
        if self.diags.len() != before {
            return (None, facts);
        }
        let peering = (|| {
            Some(Peering {
                kind: kind?,
                tag: tag?,
                mode: mode?,
                access: access?,
                ipv4,
                ipv6,
                peer_asn,
                mtu: mtu?,
                dscp: DscpPolicy {
                    rules: rules.into_iter().collect::<Option<Vec<_>>>()?,
                    action: dscp_action?,
                },
                dscp_return: DscpPolicy::plain(dscp_return?),
                pcp_from_dscp: rp.pcp_from_dscp.unwrap_or(false),
                routes: routes.into_iter().collect::<Option<Vec<_>>>()?,
                neighbors: neighbors.into_iter().collect::<Option<Vec<_>>>()?,
                bfd: bfd?,
                bgp: bgp?,
                host,
                fpm: fpm?,
                kernel: kernel?,
            })
        })();
        (peering, facts)
    }

    /// `fpm`, `fpm_netns`, `fpm_grace_ms`: `Some(None)` when not given,
    /// `None` after a report.
    fn fpm(&mut self, rp: &RawPeering, l2: bool, path: &str) -> Option<Option<Fpm>> {
        let Some(raw) = &rp.fpm else {
            for (key, span) in [
                ("fpm_netns", rp.fpm_netns.as_ref().map(|v| v.span())),
                ("fpm_grace_ms", rp.fpm_grace_ms.as_ref().map(|v| v.span())),
            ] {
                if let Some(span) = span {
                    self.report(
                        span,
                        "fpm",
                        format!("{path}.{key}"),
                        format!(
                            "{key} needs `fpm`, the listen address, e.g. fpm = \"127.0.0.1:2620\""
                        ),
                    );
                    return None;
                }
            }
            return Some(None);
        };
        if l2 {
            self.report(
                raw.span(),
                "l3-only",
                format!("{path}.fpm"),
                "fpm (routes from a routing daemon) only makes sense on an l3 (managed Layer 3) \
                 peering: remove `fpm` or set mode = \"l3\"",
            );
            return None;
        }
        let mut ok = true;
        let listen = match raw.get_ref().parse::<std::net::SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.report(
                    raw.span(),
                    "fpm",
                    format!("{path}.fpm"),
                    format!(
                        "{:?} is not a listen address: write IP:PORT, e.g. \"127.0.0.1:2620\" \
                         (zebra's `fpm address 127.0.0.1 port 2620`)",
                        raw.get_ref()
                    ),
                );
                None
            }
        };
        let netns = match &rp.fpm_netns {
            Some(v) => {
                let n = v.get_ref();
                if !netns_name_ok(n) {
                    self.report(
                        v.span(),
                        "fpm",
                        format!("{path}.fpm_netns"),
                        format!(
                            "{n:?} is not a network namespace name (as in /var/run/netns/NAME)"
                        ),
                    );
                    ok = false;
                }
                Some(n.clone())
            }
            None => None,
        };
        let grace_ms = match &rp.fpm_grace_ms {
            Some(v) if (0..=3_600_000).contains(v.get_ref()) => *v.get_ref() as u64,
            Some(v) => {
                self.report(
                    v.span(),
                    "fpm",
                    format!("{path}.fpm_grace_ms"),
                    format!(
                        "fpm_grace_ms {} is out of range: 0..=3600000 (ms)",
                        v.get_ref()
                    ),
                );
                ok = false;
                0
            }
            None => FPM_GRACE_MS_DEFAULT,
        };
        let listen = listen?;
        ok.then_some(Some(Fpm {
            listen,
            netns,
            grace_ms,
        }))
    }

    /// `kernel_table`, `kernel_netns`: `Some(None)` when not given, `None`
    /// after a report.
    fn kernel_table(
        &mut self,
        rp: &RawPeering,
        l2: bool,
        path: &str,
    ) -> Option<Option<KernelTable>> {
        let Some(raw) = &rp.kernel_table else {
            if let Some(v) = &rp.kernel_netns {
                self.report(
                    v.span(),
                    "kernel-table",
                    format!("{path}.kernel_netns"),
                    "kernel_netns needs `kernel_table`, the routing table to follow, e.g. \
                     kernel_table = 100",
                );
                return None;
            }
            return Some(None);
        };
        if l2 {
            self.report(
                raw.span(),
                "l3-only",
                format!("{path}.kernel_table"),
                "kernel_table (routes from a Linux routing table) only makes sense on an l3 \
                 (managed Layer 3) peering: remove `kernel_table` or set mode = \"l3\"",
            );
            return None;
        }
        if let Some(f) = &rp.fpm {
            self.report(
                raw.span(),
                "kernel-table",
                format!("{path}.kernel_table"),
                format!(
                    "this peering already takes its routes over FPM (fpm = {:?}, line {}): a \
                     peering has one route source, fpm or kernel_table",
                    f.get_ref(),
                    super::line_column(self.text, f.span().start).0
                ),
            );
            return None;
        }
        let mut ok = true;
        let id = *raw.get_ref();
        if !(1..=u32::MAX as i64).contains(&id) || id == 255 {
            self.report(
                raw.span(),
                "kernel-table",
                format!("{path}.kernel_table"),
                if id == 255 {
                    "kernel_table 255 is the local table (the host's own addresses), which has \
                     no routes to forward: use the table the routing daemon writes, e.g. 254 \
                     (main) or its own id"
                        .to_string()
                } else {
                    format!("kernel_table {id} is out of range: 1..=4294967295 (254 is main)")
                },
            );
            ok = false;
        }
        let netns = match &rp.kernel_netns {
            Some(v) => {
                let n = v.get_ref();
                if !netns_name_ok(n) {
                    self.report(
                        v.span(),
                        "kernel-table",
                        format!("{path}.kernel_netns"),
                        format!(
                            "{n:?} is not a network namespace name (as in /var/run/netns/NAME)"
                        ),
                    );
                    ok = false;
                }
                Some(n.clone())
            }
            None => None,
        };
        ok.then_some(Some(KernelTable {
            table: id as u32,
            netns,
        }))
    }

    /// `kernel-table-unique`: two peerings following one table would both
    /// take its routes (a leak between routing domains).
    fn kernel_tables(&mut self, facts: &[CircuitFacts]) {
        self.unique_per_netns(
            facts,
            |p| p.kernel.as_ref(),
            "kernel-table-unique",
            |id, ns, first| {
                format!(
                    "routing table {id}{} is already followed by {first}: its routes would reach \
                 both peerings; give each peering its own table or kernel_netns",
                    ns.map_or(String::new(), |n| format!(" of netns {n:?}"))
                )
            },
        );
    }

    /// `fpm-unique`: two peerings cannot listen on one address in one
    /// network namespace (each peering has its own zebra).
    fn fpm_listeners(&mut self, facts: &[CircuitFacts]) {
        self.unique_per_netns(
            facts,
            |p| p.fpm.as_ref(),
            "fpm-unique",
            |addr, ns, first| {
                format!(
                    "{addr}{} is already the FPM listener of {first}; each l3 peering has its own \
                 zebra and its own listener: use another port or fpm_netns",
                    ns.map_or(String::new(), |n| format!(" in netns {n:?}"))
                )
            },
        );
    }

    /// Report `rule` at every peering whose (key, namespace) from `pick`
    /// an earlier peering already has; `message` gets the key, the
    /// namespace and the earlier peering's field.
    fn unique_per_netns<K: std::hash::Hash + Eq + Clone>(
        &mut self,
        facts: &[CircuitFacts],
        pick: impl Fn(&PeeringFacts) -> Option<&(K, Option<String>, Range<usize>, String)>,
        rule: &'static str,
        message: impl Fn(&K, Option<&String>, &str) -> String,
    ) {
        let mut seen: HashMap<(K, Option<String>), String> = HashMap::new();
        for p in facts.iter().flat_map(|c| &c.peerings) {
            let Some((key, ns, span, field)) = pick(p) else {
                continue;
            };
            match seen.get(&(key.clone(), ns.clone())) {
                Some(first) => {
                    let m = message(key, ns.as_ref(), first);
                    self.report(span.clone(), rule, field.clone(), m)
                }
                None => {
                    seen.insert((key.clone(), ns.clone()), field.clone());
                }
            }
        }
    }

    fn access(&mut self, ra: &RawAccess, path: &str) -> Option<Access> {
        let port = self.port_ref(&ra.port, &format!("{path}.port"));
        let mut vlans = Vec::new();
        let mut ok = true;
        match (&ra.vlan, &ra.vlans) {
            (Some(_), Some(list)) => {
                self.report(
                    list.span(),
                    "access-vlans",
                    format!("{path}.vlans"),
                    "give either `vlan = N` (one tag) or `vlans = [outer, inner]`, not both",
                );
                ok = false;
            }
            (Some(v), None) => match self.vlan(v, &format!("{path}.vlan"), "access VLAN") {
                Some(id) => vlans.push(id),
                None => ok = false,
            },
            (None, Some(list)) => {
                if list.get_ref().len() > 2 {
                    self.report(
                        list.span(),
                        "access-vlans",
                        format!("{path}.vlans"),
                        format!(
                            "{} access VLANs given; an access attachment has at most two tags \
                             (outer first), or none for untagged",
                            list.get_ref().len()
                        ),
                    );
                    ok = false;
                }
                for (k, v) in list.get_ref().iter().enumerate() {
                    match self.vlan(v, &format!("{path}.vlans[{k}]"), "access VLAN") {
                        Some(id) => vlans.push(id),
                        None => ok = false,
                    }
                }
            }
            (None, None) => {}
        }
        let ipv4 = ra.ipv4.as_ref().and_then(|v| {
            match self.access_address(v, Family::V4, &format!("{path}.ipv4"))? {
                IpNet::V4(n) => Some(n),
                IpNet::V6(_) => None,
            }
        });
        let ipv6 = ra.ipv6.as_ref().and_then(|v| {
            match self.access_address(v, Family::V6, &format!("{path}.ipv6"))? {
                IpNet::V6(n) => Some(n),
                IpNet::V4(_) => None,
            }
        });
        if (ra.ipv4.is_some() && ipv4.is_none()) || (ra.ipv6.is_some() && ipv6.is_none()) {
            ok = false;
        }
        let mpls = match &ra.mpls {
            Some(m) => {
                let parsed = self.mpls(m.get_ref(), &format!("{path}.mpls"));
                ok &= parsed.is_some();
                parsed
            }
            None => None,
        };
        if !ok {
            return None;
        }
        Some(Access {
            port: port?,
            vlans,
            ipv4,
            ipv6,
            mpls,
        })
    }

    /// This forwarder's address on an `l3` access link: a usable host
    /// address of a /30 or /31 (/126 or /127), so the link has one peer.
    fn access_address(&mut self, v: &Spanned<String>, fam: Family, field: &str) -> Option<IpNet> {
        let (ok_lens, example) = match fam {
            Family::V4 => ([30u8, 31], "\"203.0.113.1/30\" (peer 203.0.113.2)"),
            Family::V6 => ([126u8, 127], "\"2001:db8:ff::1/126\" (peer 2001:db8:ff::2)"),
        };
        let net = match v.get_ref().trim().parse::<IpNet>() {
            Ok(n) if n.addr().is_ipv4() == (fam == Family::V4) => n,
            _ => {
                self.report(
                    v.span(),
                    "access-address",
                    field,
                    format!(
                        "{:?} is not an {} address with a prefix length; write this \
                         forwarder's address on the access link, e.g. {example}",
                        v.get_ref(),
                        if fam == Family::V4 { "IPv4" } else { "IPv6" }
                    ),
                );
                return None;
            }
        };
        if !ok_lens.contains(&net.prefix_len()) {
            self.report(
                v.span(),
                "access-address",
                field,
                format!(
                    "{net}: the access link of an l3 peering is point-to-point, a /{} or /{} \
                     with exactly one peer; e.g. {example}",
                    ok_lens[0], ok_lens[1]
                ),
            );
            return None;
        }
        if net.prefix_len() == ok_lens[0] {
            let host = match net {
                IpNet::V4(n) => (u32::from(n.addr()) - u32::from(n.network())) as u128,
                IpNet::V6(n) => u128::from(n.addr()) - u128::from(n.network()),
            };
            if host == 0 || host == 3 {
                self.report(
                    v.span(),
                    "access-address",
                    field,
                    format!(
                        "{} is the {} address of {}; use one of its two usable addresses \
                         (the other is the peer's)",
                        net.addr(),
                        if host == 0 { "network" } else { "last" },
                        net.trunc()
                    ),
                );
                return None;
            }
        }
        Some(net)
    }

    /// One /29 (/125) or two /30s (/126s) → (primary, secondary).
    fn link_subnets(
        &mut self,
        v: &Spanned<OneOrList>,
        fam: Family,
        field: &str,
        ms: bool,
    ) -> Option<(IpNet, IpNet)> {
        let (pair_len, link_len) = fam.lens();
        let rule = fam.rule();
        let valid = format!(
            "give one /{pair_len} or two /{link_len}s (first primary, second secondary), e.g. {}",
            fam.example()
        );
        let pair = match v.get_ref() {
            OneOrList::One(s) => {
                let net = self.parse_net(s, fam, v.span(), rule, field, &valid)?;
                let len = net.prefix_len();
                if len == link_len {
                    let (c, m) = link_addresses(net.trunc());
                    self.report(
                        v.span(),
                        rule,
                        field,
                        format!(
                            "a single /{link_len} covers one link only ({} {}: customer {c}, \
                             Microsoft {m}); ExpressRoute needs one per link: {valid}",
                            "primary",
                            net.trunc()
                        ),
                    );
                    return None;
                }
                if len != pair_len {
                    self.report(v.span(), rule, field, format!("{net} is a /{len}; {valid}"));
                    return None;
                }
                let halves: Vec<IpNet> = net.trunc().subnets(link_len).ok()?.take(2).collect();
                let (primary, secondary) = match halves.as_slice() {
                    [a, b] => (*a, *b),
                    _ => return None,
                };
                if net.trunc() != net {
                    self.report(
                        v.span(),
                        rule,
                        field,
                        format!(
                            "{net} has host bits set; did you mean {} ({})?",
                            net.trunc(),
                            describe_links(primary, secondary)
                        ),
                    );
                    return None;
                }
                (primary, secondary)
            }
            OneOrList::List(items) => {
                if items.len() != 2 {
                    self.report(
                        v.span(),
                        rule,
                        field,
                        format!("{} subnets given; {valid}", items.len()),
                    );
                    return None;
                }
                let mut nets = Vec::new();
                for (k, item) in items.iter().enumerate() {
                    let f = format!("{field}[{k}]");
                    let Some(net) =
                        self.parse_net(item.get_ref(), fam, item.span(), rule, &f, &valid)
                    else {
                        continue;
                    };
                    if net.prefix_len() != link_len {
                        self.report(
                            item.span(),
                            rule,
                            f,
                            format!("{net} is a /{}; in a list {valid}", net.prefix_len()),
                        );
                        continue;
                    }
                    if net.trunc() != net {
                        let (c, m) = link_addresses(net.trunc());
                        self.report(
                            item.span(),
                            rule,
                            f,
                            format!(
                                "{net} has host bits set; did you mean {} (customer {c}, \
                                 Microsoft {m})?",
                                net.trunc()
                            ),
                        );
                        continue;
                    }
                    nets.push((net, item.span()));
                }
                let [(a, _), (b, span_b)] = nets.as_slice() else {
                    return None;
                };
                if a == b {
                    self.report(
                        span_b.clone(),
                        rule,
                        format!("{field}[1]"),
                        format!(
                            "the secondary link subnet {b} is the same as the primary; each link \
                             needs its own /{link_len}"
                        ),
                    );
                    return None;
                }
                (*a, *b)
            }
        };
        if ms {
            for net in [pair.0, pair.1] {
                let class = prefix_class(net);
                if !class.is_public() {
                    // Name the value as written (the /29 rather than its half).
                    let net = match v.get_ref() {
                        OneOrList::One(s) => s.trim().to_string(),
                        OneOrList::List(_) => net.to_string(),
                    };
                    self.report(
                        v.span(),
                        "ms-public-address",
                        field,
                        format!(
                            "Microsoft peering needs public addresses (traffic is SNATed to \
                             them), but {net} is {class} space; use public {} space you own \
                             (documentation space stands in for it in tests)",
                            fam.name()
                        ),
                    );
                    break;
                }
            }
        }
        Some(pair)
    }

    fn parse_net(
        &mut self,
        s: &str,
        fam: Family,
        span: Range<usize>,
        rule: &'static str,
        field: &str,
        valid: &str,
    ) -> Option<IpNet> {
        match s.trim().parse::<IpNet>() {
            Ok(net) if Family::of(&net) == fam => Some(net),
            Ok(net) => {
                self.report(
                    span,
                    rule,
                    field,
                    format!("{net} is not an {} prefix; {valid}", fam.name()),
                );
                None
            }
            Err(_) => {
                self.report(
                    span,
                    rule,
                    field,
                    format!(
                        "{s:?} is not an {} prefix (address/length); {valid}",
                        fam.name()
                    ),
                );
                None
            }
        }
    }

    fn asn(&mut self, v: &Spanned<i64>, ms: bool, field: &str) -> Option<u32> {
        let n = *v.get_ref();
        let why = match n {
            0 => Some("AS 0 is reserved (RFC 7607)".to_string()),
            23456 => Some("AS 23456 is AS_TRANS (RFC 6793), not a real AS".to_string()),
            65535 | 4_294_967_295 => Some(format!("AS {n} is reserved (RFC 7300)")),
            65515..=65520 => Some(format!("AS {n} is reserved by Microsoft (65515-65520)")),
            12076 => Some(
                "AS 12076 is Microsoft's own ASN (the MSEE side of the BGP session)".to_string(),
            ),
            64496..=64511 if ms => Some(format!(
                "AS {n} is a documentation ASN (64496-64511), refused on Microsoft peering; use \
                 65536-65551 in tests"
            )),
            _ if !(1..=4_294_967_294).contains(&n) => Some(format!(
                "{n} is not an ASN; ASNs are 1..=4294967294 (2-byte or 4-byte)"
            )),
            _ => None,
        };
        match why {
            Some(why) => {
                self.report(
                    v.span(),
                    "asn",
                    field,
                    format!(
                        "{why}; use your own public ASN or a private one (64512-65514, \
                         4200000000-4294967294)"
                    ),
                );
                None
            }
            None => u32::try_from(n).ok(),
        }
    }

    fn mtu(&mut self, v: &Spanned<i64>, ipv6: bool, field: &str) -> Option<u16> {
        let n = *v.get_ref();
        let min = if ipv6 { 1280 } else { 576 };
        let range = if ipv6 {
            "1280..=1500 with IPv6 configured"
        } else {
            "576..=1500"
        };
        let why = if n > 1500 {
            Some(format!(
                "IP MTU {n} exceeds 1500, the ExpressRoute interface MTU (tags not counted)"
            ))
        } else if n < min {
            Some(if ipv6 {
                format!("IP MTU {n} is below 1280, the IPv6 minimum (RFC 8200)")
            } else {
                format!("IP MTU {n} is below 576, the IPv4 minimum")
            })
        } else {
            None
        };
        match why {
            Some(why) => {
                self.report(
                    v.span(),
                    "mtu",
                    field,
                    format!(
                        "{why}; valid: {range}; Microsoft documents 1500 and 1400 as supported"
                    ),
                );
                None
            }
            None => u16::try_from(n).ok(),
        }
    }

    /// A DSCP value (name or number) for `set`.
    fn dscp_value(&mut self, v: &Scalar, span: Range<usize>, field: &str) -> Option<Dscp> {
        let d = match v {
            Scalar::Int(n) => u8::try_from(*n).ok().and_then(Dscp::new),
            Scalar::Str(s) => Dscp::parse(s),
        };
        if d.is_none() {
            let shown = match v {
                Scalar::Int(n) => n.to_string(),
                Scalar::Str(s) => format!("{s:?}"),
            };
            self.report(
                span,
                "dscp-value",
                field,
                format!(
                    "{shown} is not a DSCP; use a number 0..=63 or a name such as EF, AF41, \
                     AF21, AF11, CS0"
                ),
            );
        }
        d
    }

    fn whitelist(&mut self, d: Dscp, span: Range<usize>, field: &str) -> Option<Dscp> {
        if EXPRESSROUTE_WHITELIST.contains(&d) {
            return Some(d);
        }
        self.report(
            span,
            "ms-dscp-whitelist",
            field,
            format!(
                "DSCP {d} is not kept on Microsoft peering (Microsoft rewrites it to 0); set one \
                 of {}",
                dscp_whitelist_text()
            ),
        );
        None
    }

    fn dscp_action(&mut self, v: &Spanned<RawDscp>, ms: bool, field: &str) -> Option<DscpAction> {
        let span = v.span();
        let (value, value_span) = match v.get_ref() {
            RawDscp::Str(s) => {
                let t = s.trim().to_ascii_lowercase();
                match t.as_str() {
                    "preserve" if ms => {
                        self.report(
                            span,
                            "ms-dscp-whitelist",
                            field,
                            "\"preserve\" would send any DSCP to Microsoft; on Microsoft peering \
                             every value but EF, AF41, AF21, AF11 and CS0 must be rewritten to 0: \
                             use \"expressroute\" (the default), \"reset\", or set a \
                             whitelisted value",
                        );
                        return None;
                    }
                    "preserve" => return Some(DscpAction::Preserve),
                    "expressroute" => return Some(DscpAction::ExpressRoute),
                    "reset" => return Some(DscpAction::Reset),
                    _ => {}
                }
                let arg = t.strip_prefix("set ").map_or(s.trim(), str::trim);
                match Dscp::parse(arg) {
                    Some(d) => (d, span),
                    None => {
                        self.report(
                            span,
                            "dscp-value",
                            field,
                            format!(
                                "{s:?} is not a DSCP policy; use \"preserve\", \"expressroute\", \
                                 \"reset\", or a DSCP to set (a name such as \"EF\" or a number \
                                 0..=63, or {{ set = \"EF\" }})"
                            ),
                        );
                        return None;
                    }
                }
            }
            RawDscp::Int(n) => {
                let d = self.dscp_value(&Scalar::Int(*n), span.clone(), field)?;
                (d, span)
            }
            RawDscp::Set(s) => {
                let d = self.dscp_value(s.get_ref(), s.span(), &format!("{field}.set"))?;
                (d, s.span())
            }
        };
        if ms {
            self.whitelist(value, value_span, field)?;
        }
        Some(DscpAction::Set(value))
    }

    fn dscp_rule(&mut self, r: &RawDscpRule, ms: bool, path: &str) -> Option<DscpRule> {
        let before = self.diags.len();
        let protocol = match &r.protocol {
            None => None,
            Some(p) => {
                let n = match p.get_ref() {
                    Scalar::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
                        "udp" => Some(17),
                        "tcp" => Some(6),
                        "icmp" => Some(1),
                        "icmpv6" => Some(58),
                        other => other.parse::<u8>().ok(),
                    },
                    Scalar::Int(n) => u8::try_from(*n).ok(),
                };
                if n.is_none() {
                    self.report(
                        p.span(),
                        "dscp-rule-protocol",
                        format!("{path}.protocol"),
                        "unknown protocol; use \"udp\", \"tcp\", \"icmp\", \"icmpv6\" or an IP \
                         protocol number 0..=255",
                    );
                }
                n
            }
        };
        let src_ports = r
            .src_ports
            .as_ref()
            .and_then(|v| self.ports_range(v, protocol, &format!("{path}.src_ports")));
        let dst_ports = r
            .dst_ports
            .as_ref()
            .and_then(|v| self.ports_range(v, protocol, &format!("{path}.dst_ports")));
        let src_prefix = r
            .src_prefix
            .as_ref()
            .and_then(|v| self.rule_prefix(v, &format!("{path}.src_prefix")));
        let dst_prefix = r
            .dst_prefix
            .as_ref()
            .and_then(|v| self.rule_prefix(v, &format!("{path}.dst_prefix")));
        if let (Some(s), Some(d), Some(dv)) = (src_prefix, dst_prefix, &r.dst_prefix) {
            if Family::of(&s) != Family::of(&d) {
                self.report(
                    dv.span(),
                    "dscp-rule-prefix",
                    format!("{path}.dst_prefix"),
                    format!(
                        "dst_prefix {d} is {} but src_prefix {s} is {}; a rule matches one \
                         address family: use prefixes of the same family",
                        Family::of(&d).name(),
                        Family::of(&s).name()
                    ),
                );
            }
        }
        let family_needed = match protocol {
            Some(1) => Some(Family::V4),
            Some(58) => Some(Family::V6),
            _ => None,
        };
        if let Some(fam) = family_needed {
            for (net, raw, name) in [
                (src_prefix, &r.src_prefix, "src_prefix"),
                (dst_prefix, &r.dst_prefix, "dst_prefix"),
            ] {
                if let (Some(net), Some(raw)) = (net, raw) {
                    if Family::of(&net) != fam {
                        self.report(
                            raw.span(),
                            "dscp-rule-prefix",
                            format!("{path}.{name}"),
                            format!(
                                "{net} is {} but the rule's protocol only exists in {}; use an \
                                 {} prefix (or protocol \"{}\")",
                                Family::of(&net).name(),
                                fam.name(),
                                fam.name(),
                                if fam == Family::V4 { "icmpv6" } else { "icmp" }
                            ),
                        );
                    }
                }
            }
        }
        let set_field = format!("{path}.set");
        let set = self.dscp_value(r.set.get_ref(), r.set.span(), &set_field);
        let set = match set {
            Some(d) if ms => self.whitelist(d, r.set.span(), &set_field),
            other => other,
        };
        if self.diags.len() != before {
            return None;
        }
        Some(DscpRule {
            protocol,
            src_ports,
            dst_ports,
            src_prefix,
            dst_prefix,
            set: set?,
        })
    }

    fn ports_range(
        &mut self,
        v: &Spanned<Scalar>,
        protocol: Option<u8>,
        field: &str,
    ) -> Option<RangeInclusive<u16>> {
        let parse = |s: &str| s.trim().parse::<u16>().ok();
        let range = match v.get_ref() {
            Scalar::Int(n) => u16::try_from(*n).ok().map(|p| (p, p)),
            Scalar::Str(s) => match s.split_once('-') {
                Some((lo, hi)) => parse(lo).zip(parse(hi)),
                None => parse(s).map(|p| (p, p)),
            },
        };
        let Some((lo, hi)) = range else {
            self.report(
                v.span(),
                "dscp-rule-ports",
                field,
                "not a port range; use a port 0..=65535 or \"N-M\" with N ≤ M, e.g. \
                 \"50000-50019\"",
            );
            return None;
        };
        if lo > hi {
            self.report(
                v.span(),
                "dscp-rule-ports",
                field,
                format!("port range {lo}-{hi} is empty; write it low-high: \"{hi}-{lo}\""),
            );
            return None;
        }
        if !matches!(protocol, Some(6) | Some(17)) {
            self.report(
                v.span(),
                "dscp-rule-ports",
                field,
                "ports only exist for TCP and UDP; add protocol = \"udp\" or \"tcp\" to the rule",
            );
            return None;
        }
        Some(lo..=hi)
    }

    fn rule_prefix(&mut self, v: &Spanned<String>, field: &str) -> Option<IpNet> {
        match v.get_ref().trim().parse::<IpNet>() {
            Ok(net) if net.trunc() == net => Some(net),
            Ok(net) => {
                self.report(
                    v.span(),
                    "dscp-rule-prefix",
                    field,
                    format!("{net} has host bits set; did you mean {}?", net.trunc()),
                );
                None
            }
            Err(_) => {
                self.report(
                    v.span(),
                    "dscp-rule-prefix",
                    field,
                    format!(
                        "{:?} is not a prefix; use address/length such as \"203.0.113.0/24\" or \
                         \"2001:db8::/32\"",
                        v.get_ref()
                    ),
                );
                None
            }
        }
    }

    /// `host = { … }`: the TAP names (given or derived) and the namespace.
    fn host(
        &mut self,
        h: &Spanned<RawHost>,
        circuit: &str,
        kind: PeeringKind,
        path: &str,
        names_out: &mut Vec<(String, Range<usize>, String)>,
    ) -> Option<HostInterfaces> {
        let raw = h.get_ref();
        let mut ok = true;
        let mut names: [String; 3] = Default::default();
        for (side, given, key) in [
            (Side::Access, &raw.access, "access"),
            (Side::Primary, &raw.primary, "primary"),
            (Side::Secondary, &raw.secondary, "secondary"),
        ] {
            let field = format!("{path}.host.{key}");
            let (name, span) = match given {
                Some(v) => (v.get_ref().clone(), v.span()),
                None => (HostInterfaces::default_name(circuit, kind, side), h.span()),
            };
            if !valid_ifname(&name) {
                self.report(
                    span.clone(),
                    "interface-name",
                    field.clone(),
                    format!(
                        "{name:?} is not a valid Linux interface name; use 1 to 15 bytes \
                         without '/', ':' or whitespace, e.g. \"xh-ams-p1\""
                    ),
                );
                ok = false;
            }
            names_out.push((name.clone(), span, field));
            names[side as usize] = name;
        }
        let netns = match &raw.netns {
            Some(v) => {
                let n = v.get_ref();
                if !netns_name_ok(n) {
                    self.report(
                        v.span(),
                        "netns-name",
                        format!("{path}.host.netns"),
                        format!(
                            "{n:?} is not a network namespace name as `ip netns` keeps them \
                             (/var/run/netns/NAME): use 1 to 255 bytes without '/' or whitespace"
                        ),
                    );
                    ok = false;
                }
                Some(n.clone())
            }
            None => {
                self.report(
                    h.span(),
                    "host-netns",
                    format!("{path}.host.netns"),
                    "host interfaces need a network namespace of their own: set `netns` (e.g. \
                     netns = \"frr-private\", made with `ip netns add frr-private`). In the \
                     forwarder's own namespace the kernel would own the link addresses and \
                     answer for them on the data ports too (ARP with its own MAC, TCP resets)",
                );
                ok = false;
                None
            }
        };
        let echo_to_host = match &raw.echo {
            Some(v) => match self.keyword(
                v,
                &format!("{path}.host.echo"),
                &[("forwarder", false), ("host", true)],
            ) {
                Some(b) => b,
                None => {
                    ok = false;
                    false
                }
            },
            None => false,
        };
        ok.then_some(HostInterfaces {
            names,
            netns,
            echo_to_host,
        })
    }

    /// Host interface names are used once across the file and by no port.
    fn host_interfaces(&mut self, facts: &[CircuitFacts]) {
        let mut seen: HashMap<String, String> = self
            .ports
            .iter()
            .enumerate()
            .map(|(i, p)| (p.interface.clone(), format!("port[{i}] ({:?})", p.name)))
            .collect();
        for (name, span, field) in facts
            .iter()
            .flat_map(|c| &c.peerings)
            .flat_map(|p| &p.host_names)
        {
            if let Some(owner) = seen.get(name) {
                let msg = format!(
                    "host interface {name:?} is already the interface of {owner}; give each \
                     link's TAP its own name (set it in `host = {{ primary = …, secondary = …, \
                     access = … }}`)"
                );
                self.report(span.clone(), "host-interface-unique", field.clone(), msg);
            } else {
                seen.insert(name.clone(), field.clone());
            }
        }
    }

    fn bfd(&mut self, b: &RawBfd, default: Bfd, path: &str) -> Option<Bfd> {
        let mut bfd = Bfd {
            enabled: b.enabled.unwrap_or(default.enabled),
            ..default
        };
        let mut ok = true;
        if let Some(v) = &b.interval_ms {
            let n = *v.get_ref();
            match u32::try_from(n) {
                Ok(ms) if BFD_INTERVAL_MS.contains(&ms) => bfd.interval_ms = ms,
                _ => {
                    let why = if n < 300 {
                        "is too short; MSEEs use 300 ms or 750 ms, never shorter"
                    } else {
                        "is too long; FRR's BFD intervals go up to 60000 ms"
                    };
                    self.report(
                        v.span(),
                        "bfd-interval",
                        format!("{path}.interval_ms"),
                        format!("BFD interval {n} ms {why}: use interval_ms 300..=60000"),
                    );
                    ok = false;
                }
            }
        }
        if let Some(v) = &b.multiplier {
            let n = *v.get_ref();
            match u8::try_from(n) {
                Ok(m) if BFD_MULTIPLIER.contains(&m) => bfd.multiplier = m,
                _ => {
                    self.report(
                        v.span(),
                        "bfd-multiplier",
                        format!("{path}.multiplier"),
                        format!(
                            "BFD multiplier {n} is out of range; use 2..=255 (FRR's \
                             detect-multiplier; default 3)"
                        ),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(bfd)
    }

    /// The BGP keys of a peering: `bgp_md5_key_file`, `bgp_keepalive_s`,
    /// `bgp_hold_s` and `announce`. Returns the model (`None` when a key
    /// failed) and the announced prefixes that parsed, with their spans,
    /// for the prefix limits and the cross-peering rules. The MD5 key
    /// itself never reaches a message.
    fn bgp(
        &mut self,
        rp: &RawPeering,
        path: &str,
        ms: bool,
        l2: bool,
        has_asn: bool,
    ) -> (Option<Bgp>, Vec<(IpNet, Range<usize>)>) {
        let before = self.diags.len();
        let given: Vec<(&str, Range<usize>)> = [
            (
                "bgp_md5_key_file",
                rp.bgp_md5_key_file.as_ref().map(Spanned::span),
            ),
            (
                "bgp_keepalive_s",
                rp.bgp_keepalive_s.as_ref().map(Spanned::span),
            ),
            ("bgp_hold_s", rp.bgp_hold_s.as_ref().map(Spanned::span)),
            ("announce", rp.announce.as_ref().map(Spanned::span)),
        ]
        .into_iter()
        .filter_map(|(k, s)| Some((k, s?)))
        .collect();
        if l2 {
            for (key, span) in given {
                self.report(
                    span,
                    "l3-only",
                    format!("{path}.{key}"),
                    format!(
                        "`{key}` configures the BGP sessions that FRR runs for an l3 (managed \
                         Layer 3) peering; on an l2 peering BGP passes through the cross-connect \
                         between the customer and the MSEEs: remove it or set mode = \"l3\""
                    ),
                );
            }
            let ok = self.diags.len() == before;
            return (ok.then(Bgp::default), Vec::new());
        }
        if !has_asn && rp.peer_asn.is_none() {
            if let Some((key, span)) = given.first() {
                self.report(
                    span.clone(),
                    "bgp-needs-asn",
                    format!("{path}.{key}"),
                    "BGP keys need the customer's ASN: add peer_asn (the provider edge speaks \
                     as peer_asn to AS 12076, the MSEE as AS 12076 to peer_asn), e.g. peer_asn \
                     = 65536",
                );
            }
        }
        let mut bgp = Bgp::default();
        let timer = |ck: &mut Self, v: &Option<Spanned<i64>>, key: &str, default: u16| {
            let Some(v) = v else { return Some(default) };
            let n = *v.get_ref();
            let t = u16::try_from(n).ok();
            if t.is_none() {
                ck.report(
                    v.span(),
                    "bgp-timers",
                    format!("{path}.{key}"),
                    format!("{n} s is out of range; BGP timers are 0..=65535 s (defaults 60/180)"),
                );
            }
            t
        };
        let keepalive = timer(
            self,
            &rp.bgp_keepalive_s,
            "bgp_keepalive_s",
            bgp.keepalive_s,
        );
        let hold = timer(self, &rp.bgp_hold_s, "bgp_hold_s", bgp.hold_s);
        if let (Some(ka), Some(hold)) = (keepalive, hold) {
            let at_keepalive = rp.bgp_keepalive_s.as_ref().map(Spanned::span);
            let at_hold = rp.bgp_hold_s.as_ref().map(Spanned::span);
            let why = if hold != 0 && hold < 3 {
                Some((
                    at_hold.clone(),
                    "bgp_hold_s",
                    format!(
                        "hold time {hold} s: RFC 4271 (section 4.2) allows 0 (no keepalives) or at \
                         least 3 s; ExpressRoute uses 180"
                    ),
                ))
            } else if hold == 0 && ka != 0 {
                Some((
                    at_keepalive.clone().or(at_hold.clone()),
                    if at_keepalive.is_some() { "bgp_keepalive_s" } else { "bgp_hold_s" },
                    format!(
                        "hold time 0 turns keepalives off (RFC 4271 section 4.4: none may be sent), but \
                         the keepalive is {ka} s: set bgp_keepalive_s = 0 too, or use a hold \
                         time ≥ 3 × keepalive (ExpressRoute: 60/180)"
                    ),
                ))
            } else if hold != 0 && ka == 0 {
                Some((
                    at_keepalive.clone().or(at_hold.clone()),
                    "bgp_keepalive_s",
                    format!(
                        "keepalive 0 with hold time {hold} s: without keepalives the session \
                         expires after {hold} s; use 1..={} (a third of the hold time, RFC \
                         4271 section 10)",
                        hold / 3
                    ),
                ))
            } else if u32::from(ka) * 3 > u32::from(hold) {
                Some((
                    at_keepalive.clone().or(at_hold.clone()),
                    if at_keepalive.is_some() { "bgp_keepalive_s" } else { "bgp_hold_s" },
                    format!(
                        "keepalive {ka} s is more than a third of the hold time {hold} s (RFC \
                         4271 section 10 suggests one third; FRR would silently lower it to {}): use \
                         bgp_hold_s ≥ 3 × bgp_keepalive_s (ExpressRoute: 60/180)",
                        hold / 3
                    ),
                ))
            } else {
                None
            };
            if let Some((Some(span), key, message)) = why {
                self.report(span, "bgp-timers", format!("{path}.{key}"), message);
            }
            bgp.keepalive_s = ka;
            bgp.hold_s = hold;
        }
        if let Some(v) = &rp.bgp_md5_key_file {
            let written = v.get_ref().trim();
            let field = format!("{path}.bgp_md5_key_file");
            if written.is_empty() {
                self.report(
                    v.span(),
                    "bgp-md5-key",
                    field,
                    "an empty path; name the file that holds the key, e.g. \
                     bgp_md5_key_file = \"secrets/contoso-private.key\"",
                );
            } else {
                let resolved = match self.file.parent() {
                    Some(dir) if Path::new(written).is_relative() => dir.join(written),
                    _ => PathBuf::from(written),
                };
                match read_md5_key(&resolved) {
                    Ok(key) => {
                        bgp.md5 = Some(BgpAuth {
                            key_file: resolved,
                            key: Md5Key::new(key),
                        })
                    }
                    Err(why) => self.report(
                        v.span(),
                        "bgp-md5-key",
                        field,
                        format!(
                            "MD5 key file {}: {why} (relative paths are relative to the \
                             configuration file's directory)",
                            resolved.display()
                        ),
                    ),
                }
            }
        }
        let mut announced: Vec<(IpNet, Range<usize>)> = Vec::new();
        if let Some(list) = &rp.announce {
            let families = [
                (Family::V4, rp.ipv4.is_some(), "ipv4"),
                (Family::V6, rp.ipv6.is_some(), "ipv6"),
            ];
            for (k, item) in list.get_ref().iter().enumerate() {
                let field = format!("{path}.announce[{k}]");
                let net = match item.get_ref().trim().parse::<IpNet>() {
                    Ok(net) if net.trunc() == net => net,
                    Ok(net) => {
                        self.report(
                            item.span(),
                            "announce-prefix",
                            field,
                            format!("{net} has host bits set; did you mean {}?", net.trunc()),
                        );
                        continue;
                    }
                    Err(_) => {
                        self.report(
                            item.span(),
                            "announce-prefix",
                            field,
                            format!(
                                "{:?} is not a prefix; use address/length such as \
                                 \"203.0.113.0/24\" or \"2001:db8:ff::/48\"",
                                item.get_ref()
                            ),
                        );
                        continue;
                    }
                };
                let fam = Family::of(&net);
                if let Some((_, false, key)) = families.iter().find(|(f, _, _)| *f == fam) {
                    self.report(
                        item.span(),
                        "announce-prefix",
                        field,
                        format!(
                            "{net} is {} but the peering has no {} link subnets, so no {} BGP \
                             session carries it: add `{key}` link subnets or leave the prefix out",
                            fam.name(),
                            fam.name(),
                            fam.name()
                        ),
                    );
                    continue;
                }
                if let Some(first) = announced.iter().position(|(n, _)| *n == net) {
                    self.report(
                        item.span(),
                        "announce-prefix",
                        field,
                        format!("{net} is already announced by announce[{first}]; list it once"),
                    );
                    continue;
                }
                if ms {
                    if net.prefix_len() == 0 {
                        self.report(
                            item.span(),
                            "ms-no-default-route",
                            field.clone(),
                            format!(
                                "a default route ({net}) is accepted only on private peering; \
                                 Microsoft peering carries specific public prefixes"
                            ),
                        );
                    } else {
                        let class = prefix_class(net);
                        if !class.is_public() {
                            self.report(
                                item.span(),
                                "ms-public-address",
                                field.clone(),
                                format!(
                                    "Microsoft peering needs public prefixes, but {net} is \
                                     {class} space; announce public space you own \
                                     (documentation space in tests)"
                                ),
                            );
                        }
                    }
                }
                announced.push((net, item.span()));
            }
            bgp.announce = announced.iter().map(|(n, _)| *n).collect();
        }
        let ok = self.diags.len() == before;
        (ok.then_some(bgp), announced)
    }

    fn route(&mut self, r: &RawRoute, ms: bool, links: &LinkView, path: &str) -> Option<Route> {
        let pfield = format!("{path}.prefix");
        let prefix = match r.prefix.get_ref().trim().parse::<IpNet>() {
            Ok(net) if net.trunc() == net => Some(net),
            Ok(net) => {
                self.report(
                    r.prefix.span(),
                    "route-prefix",
                    pfield.clone(),
                    format!("{net} has host bits set; did you mean {}?", net.trunc()),
                );
                None
            }
            Err(_) => {
                self.report(
                    r.prefix.span(),
                    "route-prefix",
                    pfield.clone(),
                    format!(
                        "{:?} is not a prefix; use address/length such as \"203.0.113.0/24\"",
                        r.prefix.get_ref()
                    ),
                );
                None
            }
        };
        if let (true, Some(net)) = (ms, prefix) {
            if net.prefix_len() == 0 {
                self.report(
                    r.prefix.span(),
                    "ms-no-default-route",
                    pfield,
                    format!(
                        "a default route ({net}) is accepted only on private peering; Microsoft \
                         peering carries specific public prefixes"
                    ),
                );
            } else {
                let class = prefix_class(net);
                if !class.is_public() {
                    self.report(
                        r.prefix.span(),
                        "ms-public-address",
                        pfield,
                        format!(
                            "Microsoft peering needs public prefixes, but {net} is {class} \
                             space; use public space you own (documentation space in tests)"
                        ),
                    );
                }
            }
        }
        let nfield = format!("{path}.next_hop");
        let next_hop = match r.next_hop.get_ref().trim().parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.report(
                    r.next_hop.span(),
                    "route-next-hop",
                    nfield.clone(),
                    format!(
                        "{:?} is not an IP address; use the peer's address on a link, {}",
                        r.next_hop.get_ref(),
                        links.peers_text()
                    ),
                );
                None
            }
        };
        let (prefix, next_hop) = (prefix?, next_hop?);
        if prefix.addr().is_ipv4() != next_hop.is_ipv4() {
            self.report(
                r.next_hop.span(),
                "route-next-hop",
                nfield,
                format!(
                    "next hop {next_hop} is not of the family of {prefix}; use the peer's \
                     address on a link, {}",
                    links.peers_text()
                ),
            );
            return None;
        }
        if let Err(why) = links.check_peer(next_hop) {
            self.report(r.next_hop.span(), "route-next-hop", nfield, why);
            return None;
        }
        Some(Route { prefix, next_hop })
    }

    /// The ExpressRoute prefix limits count, per address family per
    /// peering, the **distinct prefixes advertised toward Microsoft**: ECMP
    /// over both links is one prefix, and routes received from Microsoft do
    /// not count (see [`LinkView::advertised`]). On the provider edge the
    /// prefixes it announces over BGP (`announce`) are advertised toward
    /// Microsoft too; on the MSEE they are Microsoft's own and do not
    /// count. The report points at `announce` when announced prefixes are
    /// part of the count, else at `routes`.
    fn prefix_limit(
        &mut self,
        ctx: &PeeringCtx<'_>,
        kind: Option<PeeringKind>,
        routes: Option<GivenRoutes<'_>>,
        announce: Option<GivenAnnounce<'_>>,
        links: &LinkView,
    ) {
        let Some(kind) = kind else { return };
        let mut advertised: HashSet<IpNet> = routes
            .iter()
            .flat_map(|(_, rs)| rs.iter().flatten())
            .filter(|r| links.advertised(r.next_hop))
            .map(|r| r.prefix)
            .collect();
        let announce = announce.filter(|(_, nets)| links.own_is_customer && !nets.is_empty());
        if let Some((_, nets)) = announce {
            advertised.extend(nets.iter().copied());
        }
        let (span, field) = match (announce, routes) {
            (Some((a, _)), _) => (a.span(), format!("{}.announce", ctx.path)),
            (None, Some((rs, _))) => (rs.span(), format!("{}.routes", ctx.path)),
            (None, None) => return,
        };
        let v4 = advertised.iter().filter(|p| p.addr().is_ipv4()).count();
        let v6 = advertised.len() - v4;
        let counted = if links.own_is_customer {
            "on the provider edge, `announce` and routes via the access peer, the customer, are \
             advertised; routes via the MSEEs are received from Microsoft and not counted"
        } else {
            "on the MSEE, routes via the customer's routers on the links are advertised; routes \
             toward the access side, Microsoft's own networks, are not counted"
        };
        let checks = match kind {
            PeeringKind::Private => {
                let (base, premium) = PRIVATE_V4_LIMIT;
                let limit4 = if ctx.premium { premium } else { base };
                let note4 = if ctx.premium {
                    format!("{premium} with premium = true")
                } else {
                    format!("{base}; {premium} with premium = true")
                };
                [
                    (v4, limit4, "IPv4", note4),
                    (
                        v6,
                        PRIVATE_V6_LIMIT,
                        "IPv6",
                        format!("{PRIVATE_V6_LIMIT}; premium does not raise it"),
                    ),
                ]
            }
            PeeringKind::Microsoft => [
                (v4, MICROSOFT_LIMIT, "IPv4", MICROSOFT_LIMIT.to_string()),
                (v6, MICROSOFT_LIMIT, "IPv6", MICROSOFT_LIMIT.to_string()),
            ],
        };
        for (count, limit, fam, note) in checks {
            if count > limit {
                self.report(
                    span.clone(),
                    "prefix-limit",
                    field.clone(),
                    format!(
                        "{} peering of circuit {:?} has {count} distinct {fam} prefixes \
                         advertised toward Microsoft ({counted}); the limit is {note}: over the \
                         limit ExpressRoute drops the BGP session",
                        kind_name(kind),
                        ctx.circuit
                    ),
                );
            }
        }
    }

    fn neighbor(&mut self, n: &RawNeighbor, links: &LinkView, path: &str) -> Option<Neighbor> {
        let ifield = format!("{path}.ip");
        let ip = match n.ip.get_ref().trim().parse::<IpAddr>() {
            Ok(ip) => match links.check_peer(ip) {
                Ok(()) => Some(ip),
                Err(why) => {
                    self.report(n.ip.span(), "neighbor-ip", ifield, why);
                    None
                }
            },
            Err(_) => {
                self.report(
                    n.ip.span(),
                    "neighbor-ip",
                    ifield,
                    format!(
                        "{:?} is not an IP address; a neighbour is the peer on a link, {}",
                        n.ip.get_ref(),
                        links.peers_text()
                    ),
                );
                None
            }
        };
        let mac = match parse_mac(n.mac.get_ref()) {
            Some(mac) if mac[0] & 1 == 1 || mac == [0; 6] => {
                self.report(
                    n.mac.span(),
                    "neighbor-mac",
                    format!("{path}.mac"),
                    format!(
                        "{} is a multicast or zero MAC; a neighbour needs a unicast MAC (first \
                         octet even), e.g. \"02:00:00:00:00:02\"",
                        n.mac.get_ref()
                    ),
                );
                None
            }
            Some(mac) => Some(mac),
            None => {
                self.report(
                    n.mac.span(),
                    "neighbor-mac",
                    format!("{path}.mac"),
                    format!(
                        "{:?} is not a MAC address; write six hex octets aa:bb:cc:dd:ee:ff",
                        n.mac.get_ref()
                    ),
                );
                None
            }
        };
        Some(Neighbor { ip: ip?, mac: mac? })
    }

    /// Rules across circuits on the same trunk port pair.
    fn trunk_pairs(&mut self, facts: &[CircuitFacts]) {
        // Each trunk port → (its pair, first circuit that used it).
        let mut owner: HashMap<PortIndex, ((PortIndex, PortIndex), usize)> = HashMap::new();
        let mut groups: Vec<((PortIndex, PortIndex), Vec<usize>)> = Vec::new();
        for (i, c) in facts.iter().enumerate() {
            let (Some((p, p_span)), Some((s, s_span))) = (&c.primary, &c.secondary) else {
                continue;
            };
            if p == s {
                continue;
            }
            let key = ((*p).min(*s), (*p).max(*s));
            let mut conflict = false;
            for (port, span, which) in [(*p, p_span, "primary"), (*s, s_span, "secondary")] {
                if let Some((pair, first)) = owner.get(&port) {
                    if *pair != key {
                        let first_name = facts.get(*first).map_or("", |f| f.name.as_str());
                        self.report(
                            span.clone(),
                            "port-pair",
                            format!("circuit[{i}].{which}.port"),
                            format!(
                                "port {:?} already pairs with {:?} in circuit {first_name:?}; a \
                                 trunk port belongs to exactly one primary/secondary pair: use \
                                 the same two ports or two other ports",
                                self.port_name(port),
                                self.port_name(if pair.0 == port { pair.1 } else { pair.0 }),
                            ),
                        );
                        conflict = true;
                    }
                }
            }
            if conflict {
                continue;
            }
            owner.entry(*p).or_insert((key, i));
            owner.entry(*s).or_insert((key, i));
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, members)) => members.push(i),
                None => groups.push((key, vec![i])),
            }
        }
        for (pair, members) in &groups {
            let pair_text = format!(
                "({:?}, {:?})",
                self.port_name(pair.0),
                self.port_name(pair.1)
            );
            let mut first_encap: Option<(Encapsulation, usize)> = None;
            let mut s_tags: HashMap<VlanId, usize> = HashMap::new();
            let mut dot1q: HashMap<VlanId, (usize, usize)> = HashMap::new();
            for &i in members {
                let Some(c) = facts.get(i) else { continue };
                let Some((encap, encap_span)) = &c.encap else {
                    continue;
                };
                match first_encap {
                    None => first_encap = Some((*encap, i)),
                    Some((e, first)) if e != *encap => {
                        let first_name = facts.get(first).map_or("", |f| f.name.as_str());
                        self.report(
                            encap_span.clone(),
                            "one-encapsulation",
                            format!("circuit[{i}].encapsulation"),
                            format!(
                                "circuit {first_name:?} on the same trunk pair {pair_text} uses \
                                 {}; a trunk port pair carries one encapsulation for all its \
                                 circuits: use {} here or other ports",
                                encap_name(e),
                                encap_name(e)
                            ),
                        );
                        continue;
                    }
                    Some(_) => {}
                }
                match encap {
                    Encapsulation::QinQ => {
                        if let Some((tag, span)) = &c.s_tag {
                            if let Some(&first) = s_tags.get(tag) {
                                let first_name = facts.get(first).map_or("", |f| f.name.as_str());
                                self.report(
                                    span.clone(),
                                    "stag-unique",
                                    format!("circuit[{i}].s_tag"),
                                    format!(
                                        "S-tag {tag} is already used by circuit {first_name:?} \
                                         on the same trunk pair {pair_text}; the S-tag \
                                         identifies the circuit and must be unique across the \
                                         port pair"
                                    ),
                                );
                            } else {
                                s_tags.insert(*tag, i);
                            }
                        }
                    }
                    Encapsulation::Dot1Q => {
                        for (j, p) in c.peerings.iter().enumerate() {
                            let Some((tag, span)) = &p.tag else { continue };
                            if let Some(&(fi, fj)) = dot1q.get(tag) {
                                let first_name = facts.get(fi).map_or("", |f| f.name.as_str());
                                self.report(
                                    span.clone(),
                                    "dot1q-unique",
                                    format!("circuit[{i}].peering[{j}].tag"),
                                    format!(
                                        "tag {tag} is already used by peering[{fj}] of circuit \
                                         {first_name:?} on the same trunk pair {pair_text}; \
                                         Dot1Q tags must be unique across all circuits of a \
                                         port pair"
                                    ),
                                );
                            } else {
                                dot1q.insert(*tag, (i, j));
                            }
                        }
                    }
                }
            }
        }
    }

    /// Access attachments: not on trunk ports, and not shared.
    fn access_attachments(&mut self, facts: &[CircuitFacts]) {
        let trunks: HashSet<PortIndex> = facts
            .iter()
            .flat_map(|c| [&c.primary, &c.secondary])
            .flatten()
            .map(|(p, _)| *p)
            .collect();
        for (i, c) in facts.iter().enumerate() {
            for (link, l) in [("primary", &c.primary), ("secondary", &c.secondary)] {
                let Some((port, span)) = l else { continue };
                if self.ports.get(*port).is_some_and(|p| p.backbone.is_some()) {
                    self.report(
                        span.clone(),
                        "backbone-port",
                        format!("circuit[{i}].{link}.port"),
                        format!(
                            "port {:?} is a backbone port (role = \"backbone\"); a circuit's \
                             trunk links are tagged sub-interfaces: use another port",
                            self.port_name(*port)
                        ),
                    );
                }
            }
        }
        let mut labels: HashMap<(PortIndex, Label), (usize, usize)> = HashMap::new();
        for (i, c) in facts.iter().enumerate() {
            for (j, p) in c.peerings.iter().enumerate() {
                let (Some((port, _, _)), Some((label, span))) = (&p.access, &p.label) else {
                    continue;
                };
                let field = format!("circuit[{i}].peering[{j}].access.mpls.label");
                let pname = self.port_name(*port);
                let transport = self
                    .ports
                    .get(*port)
                    .and_then(|x| x.backbone)
                    .and_then(|b| b.transport_label);
                if transport == Some(*label) {
                    self.report(
                        span.clone(),
                        "mpls-label-unique",
                        field,
                        format!(
                            "label {label} is the transport label of port {pname:?}; an \
                             attachment's label must differ from it"
                        ),
                    );
                } else if let Some(&(fi, fj)) = labels.get(&(*port, *label)) {
                    let first_name = facts.get(fi).map_or("", |f| f.name.as_str());
                    self.report(
                        span.clone(),
                        "mpls-label-unique",
                        field,
                        format!(
                            "label {label} on port {pname:?} already names peering[{fj}] of \
                             circuit {first_name:?}; each attachment needs its own label, or \
                             another customer's traffic would reach this peering"
                        ),
                    );
                } else {
                    labels.insert((*port, *label), (i, j));
                }
            }
        }
        let mut seen: HashMap<(PortIndex, Vec<VlanId>), (usize, usize)> = HashMap::new();
        for (i, c) in facts.iter().enumerate() {
            for (j, p) in c.peerings.iter().enumerate() {
                let Some((port, vlans, span)) = &p.access else {
                    continue;
                };
                if p.label.is_some() {
                    continue;
                }
                let field = format!("circuit[{i}].peering[{j}].access.port");
                if trunks.contains(port) {
                    self.report(
                        span.clone(),
                        "trunk-not-access",
                        field,
                        format!(
                            "port {:?} is a trunk port (primary or secondary of a circuit); a \
                             trunk port cannot also be an access port: use a separate port",
                            self.port_name(*port)
                        ),
                    );
                    continue;
                }
                let key = (*port, vlans.clone());
                if let Some(&(fi, fj)) = seen.get(&key) {
                    let first_name = facts.get(fi).map_or("", |f| f.name.as_str());
                    let tags = if vlans.is_empty() {
                        "untagged".to_string()
                    } else {
                        format!(
                            "VLAN {}",
                            vlans
                                .iter()
                                .map(|v| v.to_string())
                                .collect::<Vec<_>>()
                                .join("/")
                        )
                    };
                    self.report(
                        span.clone(),
                        "access-unique",
                        field,
                        format!(
                            "port {:?} {tags} is already the access of peering[{fj}] of circuit \
                             {first_name:?}; each peering needs its own access attachment: use \
                             another port or VLAN",
                            self.port_name(*port)
                        ),
                    );
                } else {
                    seen.insert(key, (i, j));
                }
            }
        }
    }

    /// Microsoft peering runs on public addresses registered to one
    /// customer (traffic is SNATed to them), and "its subnets are unique
    /// per peering per circuit" (expressroute.md).
    ///
    /// `ms-subnet-unique`: a Microsoft peering link subnet is used by no
    /// peering of another circuit (within a circuit `subnet-overlap`
    /// already holds). Private peerings may reuse their own (private)
    /// subnets across circuits: only pairs with a Microsoft peering count.
    ///
    /// `route-covers-link-subnet`: a Microsoft peering route must not
    /// cover (or lie inside) the link subnet of another peering, of this
    /// circuit or another: private and Microsoft peering are separate
    /// routing domains, and a public prefix of the Microsoft domain that
    /// reaches another peering's link addresses steers that domain's
    /// traffic to them (or claims addresses registered to that peering).
    /// The rule is for **Microsoft peering only**: private peering accepts
    /// any prefix, a default route included ("a default route is accepted
    /// only on private peering"), and a default route covers every link
    /// subnet, so the rule cannot hold there. A Microsoft peering's own
    /// link subnet may lie inside an aggregate it carries (same domain).
    fn microsoft_public_space(&mut self, facts: &[CircuitFacts]) {
        let is_ms = |p: &PeeringFacts| matches!(p.kind, Some((PeeringKind::Microsoft, _)));
        let kind_of = |p: &PeeringFacts| p.kind.as_ref().map_or("?", |(k, _)| kind_name(*k));
        for (i, c) in facts.iter().enumerate() {
            for p in &c.peerings {
                // One report per field (a /29 gives two /30s).
                let mut reported: HashSet<&str> = HashSet::new();
                for (net, span, field, _) in &p.subnets {
                    if reported.contains(field.as_str()) {
                        continue;
                    }
                    let clash = facts[..i].iter().find_map(|other| {
                        other
                            .peerings
                            .iter()
                            .filter(|q| is_ms(p) || is_ms(q))
                            .find_map(|q| {
                                q.subnets
                                    .iter()
                                    .find(|s| overlaps(net, &s.0))
                                    .map(|s| (other, q, s))
                            })
                    });
                    let Some((other, q, (_, _, ofield, owritten))) = clash else {
                        continue;
                    };
                    reported.insert(field.as_str());
                    self.report(
                        span.clone(),
                        "ms-subnet-unique",
                        field.clone(),
                        format!(
                            "link subnet {net} overlaps {owritten} ({ofield}), a link subnet of \
                             the {} peering of circuit {:?}; Microsoft peering runs on public \
                             addresses registered to you, each subnet on one peering of one \
                             circuit: give this {} peering another public subnet",
                            kind_of(q),
                            other.name,
                            kind_of(p),
                        ),
                    );
                }
            }
        }
        for (i, c) in facts.iter().enumerate() {
            for (j, p) in c.peerings.iter().enumerate() {
                for (prefix, span, field) in &p.ms_routes {
                    let clash = facts.iter().enumerate().find_map(|(k, other)| {
                        other
                            .peerings
                            .iter()
                            .enumerate()
                            .filter(|(l, _)| (k, *l) != (i, j))
                            .find_map(|(_, q)| {
                                q.subnets
                                    .iter()
                                    .find(|s| overlaps(prefix, &s.0))
                                    .map(|s| (other, q, s))
                            })
                    });
                    let Some((other, q, (onet, _, ofield, owritten))) = clash else {
                        continue;
                    };
                    let how = if prefix.prefix_len() <= onet.prefix_len() {
                        "covers"
                    } else {
                        "lies inside"
                    };
                    self.report(
                        span.clone(),
                        "route-covers-link-subnet",
                        field.clone(),
                        format!(
                            "Microsoft peering route {prefix} {how} link subnet {owritten} \
                             ({ofield}) of the {} peering of circuit {:?}; the peerings are \
                             separate routing domains and those addresses belong to that \
                             peering's links: use prefixes that leave {owritten} out",
                            kind_of(q),
                            other.name,
                        ),
                    );
                }
            }
        }
    }

    /// pnet's channel cannot see the outer VLAN tag: the kernel strips it
    /// on receive and pnet exposes no `PACKET_AUXDATA` to put it back. A
    /// pnet port may only be an untagged access port; one report per port,
    /// at its `backend`, naming its first tagged use.
    fn pnet_ports(&mut self, raw: &RawConfig, facts: &[CircuitFacts]) {
        for (i, rp) in raw.port.iter().enumerate() {
            let Some(backend) = &rp.backend else { continue };
            if self.ports.get(i).map(|p| p.backend) != Some(BackendKind::Pnet) {
                continue;
            }
            let trunk = facts.iter().find_map(|c| {
                [("primary", &c.primary), ("secondary", &c.secondary)]
                    .into_iter()
                    .find(|(_, l)| l.as_ref().is_some_and(|(p, _)| *p == i))
                    .map(|(which, _)| {
                        format!(
                            "is the {which} trunk of circuit {:?}, whose frames carry the \
                             circuit's tags",
                            c.name
                        )
                    })
            });
            let tagged = || {
                facts.iter().find_map(|c| {
                    c.peerings.iter().find_map(|p| {
                        let (port, vlans, _) = p.access.as_ref()?;
                        (*port == i && !vlans.is_empty()).then(|| {
                            let tags: Vec<String> = vlans.iter().map(|v| v.to_string()).collect();
                            format!(
                                "is the access port of the {} peering of circuit {:?} with \
                                 VLAN {}",
                                p.kind.as_ref().map_or("?", |(k, _)| kind_name(*k)),
                                c.name,
                                tags.join("/")
                            )
                        })
                    })
                })
            };
            let Some(why) = trunk.or_else(tagged) else {
                continue;
            };
            let name = self.port_name(i).to_string();
            self.report(
                backend.span(),
                "pnet-untagged",
                format!("port[{i}].backend"),
                format!(
                    "port {name:?} uses backend \"pnet\" but {why}; pnet cannot see the outer \
                     VLAN tag (the kernel strips it on receive and pnet exposes no auxdata), so \
                     it only serves untagged access ports: use backend = \"af_packet\" (the \
                     default, which restores the tag) or \"tap\""
                ),
            );
        }
    }

    /// An ExpressRoute Direct port is one of the customer's pair on the
    /// Microsoft edge: a trunk, never an access port.
    fn direct_ports(&mut self, raw: &RawConfig, facts: &[CircuitFacts]) {
        for (i, rp) in raw.port.iter().enumerate() {
            let Some(v) = &rp.direct_gbps else { continue };
            if self.bad_direct.contains(&i) {
                continue;
            }
            let trunk = facts
                .iter()
                .flat_map(|c| [&c.primary, &c.secondary])
                .flatten()
                .any(|(p, _)| *p == i);
            if trunk {
                continue;
            }
            let access = facts.iter().find_map(|c| {
                c.peerings.iter().find_map(|p| {
                    let (port, _, _) = p.access.as_ref()?;
                    (*port == i).then(|| {
                        (
                            c.name.clone(),
                            p.kind.as_ref().map_or("?", |(k, _)| kind_name(*k)),
                        )
                    })
                })
            });
            let Some((circuit, kind)) = access else {
                continue;
            };
            let name = self.port_name(i).to_string();
            self.report(
                v.span(),
                "direct-port",
                format!("port[{i}].direct_gbps"),
                format!(
                    "port {name:?} is declared an ExpressRoute Direct port (direct_gbps = {}) but \
                     is the access port of the {kind} peering of circuit {circuit:?}; a Direct \
                     port is one of the pair facing the MSEEs, a circuit's primary or secondary \
                     link: remove direct_gbps here",
                    v.get_ref()
                ),
            );
        }
    }

    /// The circuits on one ExpressRoute Direct port pair may add up to
    /// twice the port speed; one report per pair, at the circuit whose
    /// bandwidth crosses it (in file order).
    fn direct_subscription(&mut self, facts: &[CircuitFacts]) {
        let mut groups: Vec<((PortIndex, PortIndex), u32, Vec<usize>)> = Vec::new();
        for (i, c) in facts.iter().enumerate() {
            let (Some(g), Some((p, _)), Some((s, _)), Some(_)) =
                (c.direct, &c.primary, &c.secondary, &c.bandwidth)
            else {
                continue;
            };
            let key = ((*p).min(*s), (*p).max(*s));
            match groups.iter_mut().find(|(k, gg, _)| *k == key && *gg == g) {
                Some((_, _, members)) => members.push(i),
                None => groups.push((key, g, vec![i])),
            }
        }
        for (pair, g, members) in groups {
            let bw = |i: usize| {
                facts
                    .get(i)
                    .and_then(|c| c.bandwidth.as_ref())
                    .map_or(0, |(b, _)| u64::from(*b))
            };
            let cap = direct_capacity_mbps(g);
            let total: u64 = members.iter().map(|&i| bw(i)).sum();
            if total <= cap {
                continue;
            }
            let mut running = 0;
            let Some(&over) = members.iter().find(|&&i| {
                running += bw(i);
                running > cap
            }) else {
                continue;
            };
            let Some((_, span)) = facts.get(over).and_then(|c| c.bandwidth.clone()) else {
                continue;
            };
            let list: Vec<String> = members
                .iter()
                .map(|&i| format!("{} {}", facts.get(i).map_or("", |c| c.name.as_str()), bw(i)))
                .collect();
            let message = format!(
                "circuits on the {g}-Gbps ExpressRoute Direct port pair ({:?}, {:?}) add up to \
                 {total} Mbit/s ({}); the circuits of one Direct port pair may add up to twice \
                 the port speed, {cap} Mbit/s: make a circuit smaller or move it to another \
                 Direct port pair",
                self.port_name(pair.0),
                self.port_name(pair.1),
                list.join(", "),
            );
            self.report(
                span,
                "direct-subscription",
                format!("circuit[{over}].bandwidth_mbps"),
                message,
            );
        }
    }

    fn port_name(&self, i: PortIndex) -> &str {
        self.ports.get(i).map_or("?", |p| p.name.as_str())
    }
}

/// The other usable address of a point-to-point access link.
fn access_peer(net: IpNet) -> IpAddr {
    let a = Access {
        port: 0,
        vlans: vec![],
        ipv4: match net {
            IpNet::V4(n) => Some(n),
            IpNet::V6(_) => None,
        },
        ipv6: match net {
            IpNet::V6(n) => Some(n),
            IpNet::V4(_) => None,
        },
        mpls: None,
    };
    match net {
        IpNet::V4(_) => a.peer_v4().map(IpAddr::V4),
        IpNet::V6(_) => a.peer_v6().map(IpAddr::V6),
    }
    .unwrap_or(net.addr())
}

/// The link subnets of a peering as seen by routes and neighbours.
struct LinkView {
    v4: Option<LinkSubnets<Ipv4Net>>,
    v6: Option<LinkSubnets<Ipv6Net>>,
    /// This forwarder's address on the access link (its peer is the other
    /// usable address).
    access_v4: Option<Ipv4Net>,
    /// The same for IPv6.
    access_v6: Option<Ipv6Net>,
    /// Role provider-edge owns the customer side, role msee the Microsoft side.
    own_is_customer: bool,
}

impl LinkView {
    fn links(&self) -> Vec<(&'static str, IpNet)> {
        let mut out = Vec::new();
        if let Some(l) = self.v4 {
            out.push(("primary", IpNet::V4(l.primary)));
            out.push(("secondary", IpNet::V4(l.secondary)));
        }
        if let Some(l) = self.v6 {
            out.push(("primary", IpNet::V6(l.primary)));
            out.push(("secondary", IpNet::V6(l.secondary)));
        }
        out
    }

    /// (own, peer) address on a link subnet.
    fn own_peer(&self, net: IpNet) -> (IpAddr, IpAddr) {
        let (c, m) = link_addresses(net);
        if self.own_is_customer {
            (c, m)
        } else {
            (m, c)
        }
    }

    fn peers_text(&self) -> String {
        let links = self.links();
        if links.is_empty() {
            return "but this peering has no link subnets (give ipv4/ipv6)".to_string();
        }
        let side = if self.own_is_customer {
            "Microsoft"
        } else {
            "customer"
        };
        let peers: Vec<String> = links
            .iter()
            .map(|(which, net)| format!("{} ({which})", self.own_peer(*net).1))
            .collect();
        format!("the {side} side: {}", peers.join(", "))
    }

    /// True if a route via `next_hop` is advertised toward Microsoft and so
    /// counts against the prefix limits. Provider edge: the peer on the
    /// access link is the customer, the peers on the trunk links are the
    /// MSEEs (routes via them are received from Microsoft). MSEE: the peers
    /// on the trunk links are the customer's routers (what they advertised),
    /// the access side is Microsoft's own networks.
    fn advertised(&self, next_hop: IpAddr) -> bool {
        let on_access = [self.access_v4.map(IpNet::V4), self.access_v6.map(IpNet::V6)]
            .into_iter()
            .flatten()
            .any(|net| access_peer(net) == next_hop && net.addr() != next_hop);
        let on_trunk = self
            .links()
            .into_iter()
            .any(|(_, net)| self.own_peer(net).1 == next_hop);
        if self.own_is_customer {
            on_access
        } else {
            on_trunk
        }
    }

    /// Ok if `ip` is the peer's address on one of the link subnets or on
    /// the access link.
    fn check_peer(&self, ip: IpAddr) -> Result<(), String> {
        let access = [self.access_v4.map(IpNet::V4), self.access_v6.map(IpNet::V6)];
        for net in access.into_iter().flatten() {
            if net.trunc().contains(&ip) {
                if ip == net.addr() {
                    return Err(format!(
                        "{ip} is this forwarder's own address on the access link {}",
                        net.trunc()
                    ));
                }
                let peer = access_peer(net);
                if ip == peer {
                    return Ok(());
                }
                return Err(format!(
                    "{ip} is on the access link {} but is not its peer; the peer there is {peer}",
                    net.trunc()
                ));
            }
        }
        let Some((which, net)) = self.links().into_iter().find(|(_, n)| n.contains(&ip)) else {
            return Err(format!(
                "{ip} is not on a link subnet of this peering; use the peer's address on a link, \
                 {}",
                self.peers_text()
            ));
        };
        let (own, peer) = self.own_peer(net);
        if ip == own {
            let role = if self.own_is_customer {
                "provider-edge owns the customer side"
            } else {
                "msee owns the Microsoft side"
            };
            return Err(format!(
                "{ip} is this forwarder's own address on the {which} link {net} (role {role}); \
                 the peer there is {peer}"
            ));
        }
        if ip != peer {
            return Err(format!(
                "{ip} is not a usable host of the {which} link {net}; the peer there is {peer}"
            ));
        }
        Ok(())
    }
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.trim().split(':');
    for byte in &mut mac {
        let p = parts.next()?;
        if p.len() != 2 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        *byte = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

fn kind_name(k: PeeringKind) -> &'static str {
    match k {
        PeeringKind::Private => "private",
        PeeringKind::Microsoft => "microsoft",
    }
}

fn encap_name(e: Encapsulation) -> &'static str {
    match e {
        Encapsulation::QinQ => "qinq",
        Encapsulation::Dot1Q => "dot1q",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_parsing() {
        assert_eq!(parse_mac("02:00:00:00:00:0a"), Some([2, 0, 0, 0, 0, 0x0a]));
        assert_eq!(parse_mac("02:00:00:00:00"), None);
        assert_eq!(parse_mac("02:00:00:00:00:00:00"), None);
        assert_eq!(parse_mac("2:00:00:00:00:00"), None);
        assert_eq!(parse_mac("+2:00:00:00:00:00"), None);
        assert_eq!(parse_mac("zz:00:00:00:00:00"), None);
    }

    #[test]
    fn link_addresses_follow_first_second_rule() {
        let net: IpNet = "192.0.2.4/30".parse().unwrap();
        let (c, m) = link_addresses(net);
        assert_eq!(c.to_string(), "192.0.2.5");
        assert_eq!(m.to_string(), "192.0.2.6");
        let p: IpNet = "192.0.2.0/30".parse().unwrap();
        assert_eq!(
            describe_links(p, net),
            "primary 192.0.2.0/30: customer 192.0.2.1, Microsoft 192.0.2.2; secondary \
             192.0.2.4/30: customer 192.0.2.5, Microsoft 192.0.2.6"
        );
    }

    #[test]
    fn peer_check_depends_on_role() {
        let v4 = Some(LinkSubnets {
            primary: "192.0.2.0/30".parse().unwrap(),
            secondary: "192.0.2.4/30".parse().unwrap(),
        });
        let pe = LinkView {
            v4,
            v6: None,
            access_v4: Some("203.0.113.1/30".parse().unwrap()),
            access_v6: None,
            own_is_customer: true,
        };
        let msee = LinkView {
            v4,
            v6: None,
            access_v4: None,
            access_v6: None,
            own_is_customer: false,
        };
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(pe.check_peer(ip("192.0.2.2")).is_ok());
        assert!(pe.check_peer(ip("203.0.113.2")).is_ok());
        assert!(pe.check_peer(ip("203.0.113.1")).is_err());
        assert!(pe.check_peer(ip("203.0.113.3")).is_err());
        assert!(msee.check_peer(ip("203.0.113.2")).is_err());
        assert!(pe.check_peer(ip("192.0.2.6")).is_ok());
        assert!(pe.check_peer(ip("192.0.2.1")).is_err());
        assert!(pe.check_peer(ip("192.0.2.3")).is_err());
        assert!(pe.check_peer(ip("192.0.2.9")).is_err());
        assert!(msee.check_peer(ip("192.0.2.1")).is_ok());
        assert!(msee.check_peer(ip("192.0.2.2")).is_err());
    }

    #[test]
    fn every_rule_id_is_unique() {
        let mut seen = HashSet::new();
        for (id, _) in RULES {
            assert!(seen.insert(*id), "{id}");
        }
    }
}
