//! FRR's configuration, derived from a validated model: one integrated
//! `frr.conf` (zebra, bgpd and bfdd sections) per `l3` peering, for one
//! FRR instance per peering in the peering's own network namespace, with
//! xconnect as its data plane (routes to xconnect over FPM).
//!
//! Contract: [`render`] is a pure function of a [`Config`] that passed
//! every rule (so the ExpressRoute rules — ASNs, prefix limits, timers,
//! BFD bounds, the MD5 key — are checked once, by the loader) and of
//! [`FrrOptions`]; it never panics and does no I/O. It refuses, with a
//! [`FrrSkip`] that says why, a peering that is not `l3`, has no
//! `peer_asn` (no BGP), or has no IPv4 link (FRR needs an IPv4 router id).
//! The MD5 key is written only with [`Password::Write`]; with
//! [`Password::Redact`] its line becomes a comment naming the key file.
//! Every name taken from the configuration is reduced to `[A-Za-z0-9._-]`
//! (or quoted in comments) so no value can break out of its line.
//!
//! The policy, and why: FRR 8.4 (`frr defaults traditional`) applies RFC
//! 8212 to eBGP, `bgp ebgp-requires-policy`: with no policy a session
//! neither accepts nor announces anything. Rather than turning that off,
//! each neighbour gets explicit route-maps: out, exactly the peering's
//! `announce` prefixes (a prefix-list per family; nothing when empty); in,
//! everything on the provider edge, and on the MSEE what ExpressRoute
//! accepts — on Microsoft peering no default route, no non-public space
//! and no documentation ASN in the AS path. `no bgp network import-check`
//! lets `network` announce a prefix that zebra's RIB does not hold: the
//! routes live in xconnect's tables, not in the namespace's kernel.

use super::address::non_public_blocks;
use super::model::{Config, LinkSubnets, Peering, PeeringKind, Role, ServiceMode};
use super::validate::{MICROSOFT_LIMIT, PRIVATE_V4_LIMIT, PRIVATE_V6_LIMIT};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// zebra's FPM port when `--fpm` is not given (FRR's default, 2620).
pub const DEFAULT_FPM_PORT: u16 = 2620;

/// The FPM listener zebra connects to by default: 127.0.0.1:2620 in the
/// peering's namespace.
pub const DEFAULT_FPM: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), DEFAULT_FPM_PORT);

/// What to do with a peering's MD5 key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Password {
    /// Write `neighbor … password KEY` (into a file of mode 0600).
    Write,
    /// Write a comment naming the key file instead (for terminals, logs).
    Redact,
}

/// How to render.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrrOptions {
    /// The FPM listener zebra streams routes to.
    pub fpm: SocketAddr,
    /// The configuration file's name as the header shows it.
    pub source: String,
    /// Whether the MD5 key is written.
    pub password: Password,
}

/// One BGP neighbour of a peering: the peer's address on one link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Neighbor {
    /// `primary` or `secondary`.
    pub link: &'static str,
    /// This forwarder's address on the link.
    pub local: IpAddr,
    /// The peer's address: the neighbour.
    pub peer: IpAddr,
}

/// The FRR configuration of one peering.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrrPeering {
    /// `circuit/kind`, as `--peering` takes it.
    pub id: String,
    /// Index of the circuit in the configuration.
    pub circuit: usize,
    /// Index of the peering in its circuit.
    pub peering: usize,
    /// `circuit-kind` reduced to `[A-Za-z0-9._-]`: the file name without
    /// `.conf`; `xc-` and it is the FRR hostname and pathspace (`-N`).
    pub stem: String,
    /// This forwarder's ASN in the sessions.
    pub local_asn: u32,
    /// The peers' ASN.
    pub remote_asn: u32,
    /// The BGP router id: this forwarder's IPv4 address on the primary link.
    pub router_id: Ipv4Addr,
    /// The neighbours, IPv4 then IPv6, primary then secondary.
    pub neighbors: Vec<Neighbor>,
    /// True when the text holds the MD5 key (written, not redacted).
    pub has_password: bool,
    /// The configuration text.
    pub text: String,
}

/// Why a peering has no FRR configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrrSkip {
    /// The peering is `l2`: BGP passes through the cross-connect.
    NotL3,
    /// No `peer_asn`: the peering has static routes only.
    NoAsn,
    /// No IPv4 link subnets: FRR needs an IPv4 router id.
    NoRouterId,
    /// No such circuit/peering index.
    NoSuchPeering,
}

impl fmt::Display for FrrSkip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FrrSkip::NotL3 => {
                "the peering is l2: its BGP sessions run between the customer and the MSEEs \
                 through the cross-connect, not in FRR here (set mode = \"l3\")"
            }
            FrrSkip::NoAsn => {
                "the peering has no peer_asn, so no BGP session: give the customer's ASN \
                 (peer_asn = 65536) for FRR to run one per link"
            }
            FrrSkip::NoRouterId => {
                "the peering has no IPv4 link subnets; FRR's BGP router id is an IPv4 address \
                 (this forwarder's on the primary link): add ipv4 link subnets"
            }
            FrrSkip::NoSuchPeering => "there is no such peering",
        })
    }
}

/// `circuit/kind` of a peering, as `--peering` takes it.
pub fn peering_id(circuit: &str, kind: PeeringKind) -> String {
    format!("{circuit}/{}", kind.name())
}

/// `s` with every character outside `[A-Za-z0-9._-]` replaced by `_`.
pub fn safe_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The neighbours of a peering for a role: the peer's address on each link
/// (the /30s, then the /126s).
pub fn neighbors(role: Role, p: &Peering) -> Vec<Neighbor> {
    let own_is_customer = role == Role::ProviderEdge;
    let pick = |(customer, microsoft): (IpAddr, IpAddr)| {
        if own_is_customer {
            (customer, microsoft)
        } else {
            (microsoft, customer)
        }
    };
    let mut out = Vec::new();
    if let Some(l) = p.ipv4 {
        for (link, net) in [("primary", l.primary), ("secondary", l.secondary)] {
            let (c, m) = LinkSubnets::<Ipv4Net>::addresses(net);
            let (local, peer) = pick((c.into(), m.into()));
            out.push(Neighbor { link, local, peer });
        }
    }
    if let Some(l) = p.ipv6 {
        for (link, net) in [("primary", l.primary), ("secondary", l.secondary)] {
            let (c, m) = LinkSubnets::<Ipv6Net>::addresses(net);
            let (local, peer) = pick((c.into(), m.into()));
            out.push(Neighbor { link, local, peer });
        }
    }
    out
}

/// The ExpressRoute prefix limits (IPv4, IPv6) of a peering: what the MSEE
/// accepts from the customer per session before it drops it.
pub fn prefix_limits(kind: PeeringKind, premium: bool) -> (usize, usize) {
    match kind {
        PeeringKind::Private => {
            let (base, with_premium) = PRIVATE_V4_LIMIT;
            (if premium { with_premium } else { base }, PRIVATE_V6_LIMIT)
        }
        PeeringKind::Microsoft => (MICROSOFT_LIMIT, MICROSOFT_LIMIT),
    }
}

/// Every `l3` peering of `cfg` as (circuit index, peering index), in file
/// order.
pub fn l3_peerings(cfg: &Config) -> Vec<(usize, usize)> {
    cfg.circuits
        .iter()
        .enumerate()
        .flat_map(|(i, c)| {
            c.peerings
                .iter()
                .enumerate()
                .filter(|(_, p)| p.mode == ServiceMode::L3)
                .map(move |(j, _)| (i, j))
        })
        .collect()
}

/// The line that makes an inbound IPv6 route-map keep the peer's global
/// next hop (`""` for IPv4). An eBGP peer on a shared link sends a global
/// and a link-local next hop, and bgpd hands zebra the link-local one by
/// default; xconnect's tables only know the peers' global addresses on the
/// link subnets (FPM next hops are checked against them), so a link-local
/// next hop would be rejected and the route not forwarded.
fn prefer_global(fam: &str) -> &'static str {
    if fam == "v6" {
        "\n set ipv6 next-hop prefer-global"
    } else {
        ""
    }
}

/// The BFD profile name of every peering's sessions.
const BFD_PROFILE: &str = "xc-bfd";

/// Render the FRR configuration of peering `peering` of circuit `circuit`.
pub fn render(
    cfg: &Config,
    circuit: usize,
    peering: usize,
    opts: &FrrOptions,
) -> Result<FrrPeering, FrrSkip> {
    let c = cfg.circuits.get(circuit).ok_or(FrrSkip::NoSuchPeering)?;
    let p = c.peerings.get(peering).ok_or(FrrSkip::NoSuchPeering)?;
    if p.mode != ServiceMode::L3 {
        return Err(FrrSkip::NotL3);
    }
    let asn = p.peer_asn.ok_or(FrrSkip::NoAsn)?;
    let links = p.ipv4.ok_or(FrrSkip::NoRouterId)?;
    let (local_asn, remote_asn) = cfg.role.bgp_asns(asn);
    let own_is_customer = cfg.role == Role::ProviderEdge;
    let (c_addr, m_addr) = LinkSubnets::<Ipv4Net>::addresses(links.primary);
    let router_id = if own_is_customer { c_addr } else { m_addr };
    let neighbors = neighbors(cfg.role, p);
    let kind = p.kind.name();
    let id = peering_id(&c.name, p.kind);
    let stem = format!("{}-{kind}", safe_name(&c.name));
    let msee = cfg.role == Role::Msee;
    let ms = p.kind == PeeringKind::Microsoft;
    let has_v6 = p.ipv6.is_some();
    let v4: Vec<IpNet> = p
        .bgp
        .announce
        .iter()
        .filter(|n| n.addr().is_ipv4())
        .copied()
        .collect();
    let v6: Vec<IpNet> = p
        .bgp
        .announce
        .iter()
        .filter(|n| n.addr().is_ipv6())
        .copied()
        .collect();
    let (limit4, limit6) = prefix_limits(p.kind, c.premium);
    let peer_side = if own_is_customer {
        "MSEE"
    } else {
        "customer edge"
    };

    let mut t = String::new();
    // Writing to a String cannot fail; the results are ignored below.
    let role = if own_is_customer {
        "provider-edge"
    } else {
        "msee"
    };
    let _ = writeln!(
        t,
        "! FRR configuration of peering {id:?} (circuit {:?}, {kind} peering, tag {})",
        c.name, p.tag
    );
    let _ = writeln!(
        t,
        "! generated by `xconnect frr-config` from {:?}: change that file and regenerate,",
        opts.source
    );
    let _ = writeln!(
        t,
        "! do not edit this one. Role {role}: AS {local_asn} to AS {remote_asn} on both links."
    );
    let _ = writeln!(
        t,
        "! One FRR instance per peering, in the peering's network namespace: start\n\
         !   zebra -d -N xc-{stem} -M dplane_fpm_nl --vty_socket DIR -f /dev/null -i DIR/zebra.pid\n\
         !   and bgpd, bfdd alike (without -M), then apply this file: vtysh --vty_socket DIR -f FILE"
    );
    t.push_str("frr defaults traditional\n");
    let _ = writeln!(t, "hostname xc-{stem}");
    t.push_str("!\n! zebra: routes go to xconnect over FPM (netlink messages in FPM frames)\n");
    let _ = writeln!(t, "fpm address {} port {}", opts.fpm.ip(), opts.fpm.port());

    // Policy (RFC 8212): out, the announced prefixes; in, what the role accepts.
    t.push_str("!\n! eBGP policy (RFC 8212, on in FRR 8.4): announce exactly `announce`\n");
    let families: Vec<(&str, &[IpNet], &str, &str)> = if has_v6 {
        vec![("v4", &v4, "ip", "0.0.0.0/0"), ("v6", &v6, "ipv6", "::/0")]
    } else {
        vec![("v4", &v4, "ip", "0.0.0.0/0")]
    };
    for (fam, nets, ip, _) in &families {
        for (k, n) in nets.iter().enumerate() {
            let _ = writeln!(
                t,
                "{ip} prefix-list xc-announce-{fam} seq {} permit {n}",
                (k + 1) * 5
            );
        }
    }
    for (fam, nets, ip, _) in &families {
        if nets.is_empty() {
            let _ = writeln!(t, "route-map xc-out-{fam} deny 10\nexit");
        } else {
            let _ = writeln!(
                t,
                "route-map xc-out-{fam} permit 10\n match {ip} address prefix-list xc-announce-{fam}\nexit"
            );
        }
    }
    if msee && ms {
        t.push_str(
            "! in (the MSEE on Microsoft peering): no default route, no non-public space,\n\
             ! no documentation ASN (64496-64511) in the AS path\n",
        );
        t.push_str(
            "bgp as-path access-list xc-doc-asn seq 5 permit _(6449[6-9]|6450[0-9]|6451[01])_\n",
        );
        for (fam, _, ip, default) in &families {
            let max = if *fam == "v4" { 32 } else { 128 };
            let mut seq = 5;
            let _ = writeln!(t, "{ip} prefix-list xc-in-{fam} seq {seq} deny {default}");
            for (net, _) in
                non_public_blocks().filter(|(n, _)| (n.addr().is_ipv4()) == (*fam == "v4"))
            {
                seq += 5;
                let le = if net.prefix_len() < max {
                    format!(" le {max}")
                } else {
                    String::new()
                };
                let _ = writeln!(t, "{ip} prefix-list xc-in-{fam} seq {seq} deny {net}{le}");
            }
            let any = if *fam == "v4" {
                "0.0.0.0/0 le 32"
            } else {
                "2000::/3 le 128"
            };
            let _ = writeln!(
                t,
                "{ip} prefix-list xc-in-{fam} seq {} permit {any}",
                seq + 5
            );
            let _ = writeln!(
                t,
                "route-map xc-in-{fam} deny 5\n match as-path xc-doc-asn\nexit\n\
                 route-map xc-in-{fam} permit 10\n match {ip} address prefix-list xc-in-{fam}{}\nexit",
                prefer_global(fam)
            );
        }
    } else {
        t.push_str("! in: everything the peers send");
        t.push_str(if msee {
            " (bounded by maximum-prefix)\n"
        } else {
            "\n"
        });
        for (fam, ..) in &families {
            let _ = writeln!(
                t,
                "route-map xc-in-{fam} permit 10{}\nexit",
                prefer_global(fam)
            );
        }
    }

    // bgpd
    t.push_str("!\n");
    let _ = writeln!(t, "router bgp {local_asn}");
    let _ = writeln!(t, " bgp router-id {router_id}");
    t.push_str(" no bgp default ipv4-unicast\n");
    t.push_str(" ! the announced prefixes are in xconnect's tables, not in zebra's RIB\n");
    t.push_str(" no bgp network import-check\n");
    for n in &neighbors {
        let peer = n.peer;
        let _ = writeln!(t, " neighbor {peer} remote-as {remote_asn}");
        let _ = writeln!(
            t,
            " neighbor {peer} description {stem} {} link, {peer_side}",
            n.link
        );
        if let Some(auth) = &p.bgp.md5 {
            match opts.password {
                Password::Write => {
                    let _ = writeln!(t, " neighbor {peer} password {}", auth.key.expose());
                }
                Password::Redact => {
                    let _ = writeln!(
                        t,
                        " ! neighbor {peer} password <redacted: the key of {:?}, written only with --output>",
                        auth.key_file.display().to_string()
                    );
                }
            }
        }
        let _ = writeln!(
            t,
            " neighbor {peer} timers {} {}",
            p.bgp.keepalive_s, p.bgp.hold_s
        );
        if p.bfd.enabled {
            let _ = writeln!(t, " neighbor {peer} bfd profile {BFD_PROFILE}");
        }
    }
    for (fam, nets, _, _) in &families {
        let (af, limit) = if *fam == "v4" {
            ("ipv4", limit4)
        } else {
            ("ipv6", limit6)
        };
        t.push_str(" !\n");
        let _ = writeln!(t, " address-family {af} unicast");
        for n in nets.iter() {
            let _ = writeln!(t, "  network {n}");
        }
        for n in neighbors
            .iter()
            .filter(|n| n.peer.is_ipv4() == (*fam == "v4"))
        {
            let peer = n.peer;
            let _ = writeln!(t, "  neighbor {peer} activate");
            let _ = writeln!(t, "  neighbor {peer} route-map xc-in-{fam} in");
            let _ = writeln!(t, "  neighbor {peer} route-map xc-out-{fam} out");
            if msee {
                // ExpressRoute drops the session over the limit; FRR
                // retries it after a minute (it is back once under).
                let _ = writeln!(t, "  neighbor {peer} maximum-prefix {limit} restart 1");
            }
        }
        t.push_str("  maximum-paths 2\n exit-address-family\n");
    }
    t.push_str("exit\n");

    // bfdd
    if p.bfd.enabled {
        t.push_str("!\n! bfdd: both links, detection in interval x multiplier\n");
        let _ = writeln!(
            t,
            "bfd\n profile {BFD_PROFILE}\n  detect-multiplier {}\n  receive-interval {}\n  transmit-interval {}\n exit\nexit",
            p.bfd.multiplier, p.bfd.interval_ms, p.bfd.interval_ms
        );
    }
    t.push_str("!\n");

    Ok(FrrPeering {
        id,
        circuit,
        peering,
        stem,
        local_asn,
        remote_asn,
        router_id,
        neighbors,
        has_password: p.bgp.md5.is_some() && opts.password == Password::Write,
        text: t,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn opts() -> FrrOptions {
        FrrOptions {
            fpm: DEFAULT_FPM,
            source: "x.toml".into(),
            password: Password::Redact,
        }
    }

    #[test]
    fn names_are_reduced_to_safe_characters() {
        assert_eq!(safe_name("contoso-ams"), "contoso-ams");
        assert_eq!(safe_name("a b/c\nd"), "a_b_c_d");
        assert_eq!(safe_name("é"), "_");
    }

    #[test]
    fn l2_and_asn_less_peerings_are_skipped() {
        let cfg = crate::config::load(Path::new("examples/pe-qinq.toml")).unwrap();
        assert!(l3_peerings(&cfg).is_empty());
        assert_eq!(render(&cfg, 0, 0, &opts()), Err(FrrSkip::NotL3));
        assert_eq!(render(&cfg, 9, 0, &opts()), Err(FrrSkip::NoSuchPeering));
        let text = std::fs::read_to_string("examples/lab-pe-l3.toml").unwrap();
        let text = text.replace("peer_asn = 65537\n", "");
        let cfg = crate::config::load_str(&text, Path::new("lab.toml")).unwrap();
        assert_eq!(render(&cfg, 0, 1, &opts()), Err(FrrSkip::NoAsn));
        assert!(render(&cfg, 0, 0, &opts()).is_ok());
    }

    #[test]
    fn sessions_follow_the_role() {
        for (file, local, remote, own, peer) in [
            (
                "examples/lab-pe-l3.toml",
                65536,
                12076,
                "192.0.2.1",
                "192.0.2.2",
            ),
            (
                "examples/lab-msee-l3.toml",
                12076,
                65536,
                "192.0.2.2",
                "192.0.2.1",
            ),
        ] {
            let cfg = crate::config::load(Path::new(file)).unwrap();
            let r = render(&cfg, 0, 0, &opts()).unwrap();
            assert_eq!((r.local_asn, r.remote_asn), (local, remote));
            assert_eq!(r.router_id.to_string(), own);
            assert_eq!(r.neighbors[0].peer.to_string(), peer);
            assert_eq!(r.neighbors.len(), 4, "two links, two families");
            assert!(r.text.contains(&format!("router bgp {local}\n")));
            assert!(r
                .text
                .contains(&format!(" neighbor {peer} remote-as {remote}\n")));
            // Only the MSEE bounds what the customer sends.
            assert_eq!(
                r.text.contains("maximum-prefix 4000 restart 1"),
                local == 12076
            );
            assert_eq!(
                r.text.contains("maximum-prefix 100 restart 1"),
                local == 12076
            );
            // IPv6 routes keep the peer's global next hop (xconnect's
            // tables know no link-local one); IPv4 has nothing to set.
            assert!(r.text.contains(
                "route-map xc-in-v6 permit 10\n set ipv6 next-hop prefer-global\nexit\n"
            ));
            assert!(r.text.contains("route-map xc-in-v4 permit 10\nexit\n"));
        }
        // The MSEE's Microsoft-peering policy too, after its match.
        let cfg = crate::config::load(Path::new("tests/configs/valid/frr-msee.toml")).unwrap();
        let r = render(&cfg, 0, 1, &opts()).unwrap();
        assert!(r.text.contains(
            "route-map xc-in-v6 permit 10\n match ipv6 address prefix-list xc-in-v6\n \
             set ipv6 next-hop prefer-global\nexit\n"
        ));
    }
}
