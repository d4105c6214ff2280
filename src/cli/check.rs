//! `xconnect check`: validate configuration files and show what they
//! compile to (circuits, peerings, attachments, address classes), or every
//! error with file:line:column, the rule and what would be valid.

use crate::config::validate::direct_capacity_mbps;
use crate::config::{
    self, prefix_class, Circuit, Config, Encapsulation, LinkSubnets, PeeringKind, Role, ServiceMode,
};
use crate::plan::{Egress, Service, Side};
use clap::Args;
use serde_json::{json, Value};
use std::path::PathBuf;

/// Arguments of `xconnect check`.
#[derive(Args, Debug)]
#[command(after_help = "\
Exit status: 0 if every file is valid, 1 if any file has errors (all of
them are listed, each as file:line:column: error[rule]: field: message).

Examples:
  xconnect check examples/pe-qinq.toml
  xconnect check examples/*.toml
  xconnect check --json examples/pe-dot1q.toml | jq '.files[0].attachments'")]
pub struct CheckArgs {
    /// Configuration files (TOML).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Print one JSON object {\"files\":[{file, ok, errors|circuits,attachments}]}.
    #[arg(long)]
    pub json: bool,
}

fn kind(k: PeeringKind) -> &'static str {
    k.name()
}

fn mode(m: ServiceMode) -> &'static str {
    m.name()
}

fn side(s: Side) -> &'static str {
    s.name()
}

/// The ExpressRoute Direct port speed of a circuit's port pair (`None`:
/// through a provider).
fn direct_gbps(cfg: &Config, c: &Circuit) -> Option<u32> {
    let speed = |i: usize| cfg.ports.get(i).and_then(|p| p.direct_gbps);
    speed(c.primary.port).filter(|g| speed(c.secondary.port) == Some(*g))
}

/// Mbit/s subscribed on a circuit's port pair: the sum over its circuits.
fn pair_subscribed_mbps(cfg: &Config, c: &Circuit) -> u64 {
    let pair = |x: &Circuit| {
        let (a, b) = (x.primary.port, x.secondary.port);
        (a.min(b), a.max(b))
    };
    cfg.circuits
        .iter()
        .filter(|x| pair(x) == pair(c))
        .map(|x| u64::from(x.bandwidth_mbps))
        .sum()
}

/// The BGP sessions FRR runs for an `l3` peering with a `peer_asn`
/// (`null` otherwise). Names the MD5 key file, never the key.
fn bgp_summary(role: Role, p: &config::Peering) -> Value {
    let Some(asn) = p.peer_asn.filter(|_| p.mode == ServiceMode::L3) else {
        return Value::Null;
    };
    let (local, remote) = role.bgp_asns(asn);
    json!({
        "local_asn": local, "remote_asn": remote,
        "keepalive_s": p.bgp.keepalive_s, "hold_s": p.bgp.hold_s,
        "md5_key_file": p.bgp.md5.as_ref().map(|m| m.key_file.display().to_string()),
        "announce": p.bgp.announce.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
    })
}

/// The summary of a valid configuration as JSON. A circuit on an
/// ExpressRoute Direct port pair has `direct_gbps` (the port speed),
/// `pair_subscribed_mbps` (the bandwidths of the pair's circuits added up)
/// and `pair_capacity_mbps` (twice the port speed); otherwise they are null.
pub fn summary(cfg: &Config) -> Value {
    let plan = crate::config::compile(cfg);
    let own_is_customer = cfg.role == Role::ProviderEdge;
    let circuits: Vec<Value> = cfg
        .circuits
        .iter()
        .map(|c| {
            let peerings: Vec<Value> = c
                .peerings
                .iter()
                .map(|p| {
                    let v4: Vec<Value> = p.ipv4.iter().flat_map(|s| [("primary", s.primary), ("secondary", s.secondary)]).map(|(link, net)| {
                        let (cust, ms) = LinkSubnets::<ipnet::Ipv4Net>::addresses(net);
                        json!({"link": link, "subnet": net.to_string(), "customer": cust.to_string(), "microsoft": ms.to_string(),
                               "local": if own_is_customer { cust.to_string() } else { ms.to_string() }, "class": prefix_class(net.into()).to_string()})
                    }).collect();
                    let v6: Vec<Value> = p.ipv6.iter().flat_map(|s| [("primary", s.primary), ("secondary", s.secondary)]).map(|(link, net)| {
                        let (cust, ms) = LinkSubnets::<ipnet::Ipv6Net>::addresses(net);
                        json!({"link": link, "subnet": net.to_string(), "customer": cust.to_string(), "microsoft": ms.to_string(),
                               "local": if own_is_customer { cust.to_string() } else { ms.to_string() }, "class": prefix_class(net.into()).to_string()})
                    }).collect();
                    json!({
                        "kind": kind(p.kind), "tag": p.tag.get(), "mode": mode(p.mode), "mtu": p.mtu,
                        "access_port": cfg.ports.get(p.access.port).map(|x| x.name.clone()),
                        "access_vlans": p.access.vlans.iter().map(|v| v.get()).collect::<Vec<_>>(),
                        "dscp": format!("{:?}", p.dscp.action).to_lowercase(), "dscp_rules": p.dscp.rules.len(),
                        "dscp_return": format!("{:?}", p.dscp_return.action).to_lowercase(),
                        "peer_asn": p.peer_asn, "routes": p.routes.len(), "ipv4": v4, "ipv6": v6,
                        "bfd": json!({"enabled": p.bfd.enabled, "interval_ms": p.bfd.interval_ms, "multiplier": p.bfd.multiplier}),
                        "bgp": bgp_summary(cfg.role, p),
                        "mpls": p.access.mpls.as_ref().map(|m| json!({
                            "kind": if p.mode == ServiceMode::L2 { "pseudowire" } else { "l3vpn" },
                            "label": m.label.value(), "remote_label": m.remote_label.value(),
                            "transport_label": m.transport_label.map(|l| l.value()),
                            "next_hop_mac": crate::wire::ethernet::mac_to_string(&m.next_hop_mac),
                            "control_word": p.mode == ServiceMode::L2 && m.control_word,
                            "ttl": m.ttl.name(), "tc_map": m.tc_map,
                            "backbone_bytes": config::mpls_overhead(cfg, p, m),
                        })),
                    })
                })
                .collect();
            let direct = direct_gbps(cfg, c);
            json!({
                "name": c.name,
                "direct_gbps": direct,
                "pair_subscribed_mbps": direct.map(|_| pair_subscribed_mbps(cfg, c)),
                "pair_capacity_mbps": direct.map(direct_capacity_mbps),
                "encapsulation": match c.encapsulation { Encapsulation::QinQ => "qinq", Encapsulation::Dot1Q => "dot1q" },
                "s_tag": c.s_tag.map(|s| s.get()),
                "outer_tpid": format!("0x{:04x}", c.outer_tpid.0),
                "primary": cfg.ports.get(c.primary.port).map(|p| p.name.clone()),
                "secondary": cfg.ports.get(c.secondary.port).map(|p| p.name.clone()),
                "bandwidth_mbps": c.bandwidth_mbps, "premium": c.premium,
                "peerings": peerings,
            })
        })
        .collect();
    let attachments: Vec<Value> = plan
        .attachments
        .iter()
        .map(|a| {
            let pp = &plan.peerings[a.peering as usize];
            let (service, egress) = match a.service {
                Service::L2 { egress, .. } => (
                    "l2",
                    match egress {
                        Egress::Access(t) => plan.ports[t.port as usize].name.clone(),
                        Egress::Trunk([x, y]) => format!("{}|{}", plan.ports[x.port as usize].name, plan.ports[y.port as usize].name),
                    },
                ),
                Service::L3 { .. } => ("l3", String::from("(routed)")),
            };
            json!({
                "port": plan.ports[a.port as usize].name, "vlans": a.vids,
                "label": a.mpls.map(|m| m.label), "side": side(a.side),
                "circuit": pp.circuit, "peering": kind(pp.kind), "service": service, "egress": egress,
            })
        })
        .collect();
    let role = match cfg.role {
        Role::ProviderEdge => "provider-edge",
        Role::Msee => "msee",
    };
    json!({"role": role, "ports": cfg.ports.iter().map(|p| json!({"name": p.name, "interface": p.interface, "backend": format!("{:?}", p.backend).to_lowercase(), "direct_gbps": p.direct_gbps})).collect::<Vec<_>>(),
           "circuits": circuits, "attachments": attachments})
}

fn vlans_text(v: &Value) -> String {
    match v.as_array() {
        Some(a) if !a.is_empty() => a
            .iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join("/"),
        _ => "untagged".into(),
    }
}

fn print_summary(file: &str, s: &Value) {
    println!("{file}: ok (role {})", s["role"].as_str().unwrap_or("?"));
    let direct: Vec<String> = s["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let g = p["direct_gbps"].as_u64()?;
            Some(format!("{} ({g} Gbit/s)", p["name"].as_str().unwrap_or("")))
        })
        .collect();
    if !direct.is_empty() {
        println!("  ExpressRoute Direct ports: {}", direct.join(", "));
    }
    println!("  circuits:");
    for c in s["circuits"].as_array().into_iter().flatten() {
        let subscribed = match (
            c["direct_gbps"].as_u64(),
            c["pair_subscribed_mbps"].as_u64(),
            c["pair_capacity_mbps"].as_u64(),
        ) {
            (Some(g), Some(sub), Some(cap)) => {
                format!(" on {g}G Direct ports, pair {sub}/{cap} Mbit/s subscribed")
            }
            _ => String::new(),
        };
        println!(
            "    {:<14} {:<6} s-tag {:<5} tpid {} links {} / {}  {} Mbit/s{subscribed}{}",
            c["name"].as_str().unwrap_or(""),
            c["encapsulation"].as_str().unwrap_or(""),
            c["s_tag"].as_u64().map_or("-".into(), |v| v.to_string()),
            c["outer_tpid"].as_str().unwrap_or(""),
            c["primary"].as_str().unwrap_or(""),
            c["secondary"].as_str().unwrap_or(""),
            c["bandwidth_mbps"],
            if c["premium"].as_bool() == Some(true) {
                " premium"
            } else {
                ""
            }
        );
        for p in c["peerings"].as_array().into_iter().flatten() {
            println!(
                "      {:<9} tag {:<5} {} access {} vlan {:<8} dscp {}{} mtu {}",
                p["kind"].as_str().unwrap_or(""),
                p["tag"],
                p["mode"].as_str().unwrap_or(""),
                p["access_port"].as_str().unwrap_or(""),
                vlans_text(&p["access_vlans"]),
                p["dscp"].as_str().unwrap_or(""),
                match p["dscp_rules"].as_u64() {
                    Some(n) if n > 0 => format!(" +{n} rules"),
                    _ => String::new(),
                },
                p["mtu"]
            );
            let m = &p["mpls"];
            if m.is_object() {
                let out = match m["transport_label"].as_u64() {
                    Some(t) => format!("{t}/{}", m["remote_label"]),
                    None => m["remote_label"].to_string(),
                };
                println!(
                    "        mpls {} label {} in, push {} to {}{}, ttl {}, +{} bytes on the backbone",
                    m["kind"].as_str().unwrap_or(""),
                    m["label"],
                    out,
                    m["next_hop_mac"].as_str().unwrap_or(""),
                    if m["control_word"].as_bool() == Some(true) {
                        " with control word"
                    } else {
                        ""
                    },
                    m["ttl"].as_str().unwrap_or(""),
                    m["backbone_bytes"]
                );
            }
            let b = &p["bgp"];
            if b.is_object() {
                let bfd = &p["bfd"];
                println!(
                    "        bgp AS {} -> AS {}, timers {}/{} s, md5 {}, bfd {}, announce [{}]",
                    b["local_asn"],
                    b["remote_asn"],
                    b["keepalive_s"],
                    b["hold_s"],
                    b["md5_key_file"]
                        .as_str()
                        .map_or("off".to_string(), |f| format!("key from {f}")),
                    if bfd["enabled"].as_bool() == Some(true) {
                        format!("{} ms x {}", bfd["interval_ms"], bfd["multiplier"])
                    } else {
                        "off".to_string()
                    },
                    b["announce"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            for fam in ["ipv4", "ipv6"] {
                for a in p[fam].as_array().into_iter().flatten() {
                    println!(
                        "        {:<9} {:<22} customer {:<18} microsoft {:<18} local {} [{}]",
                        a["link"].as_str().unwrap_or(""),
                        a["subnet"].as_str().unwrap_or(""),
                        a["customer"].as_str().unwrap_or(""),
                        a["microsoft"].as_str().unwrap_or(""),
                        a["local"].as_str().unwrap_or(""),
                        a["class"].as_str().unwrap_or("")
                    );
                }
            }
        }
    }
    println!("  attachments:");
    println!(
        "    {:<12} {:<12} {:<10} {:<14} {:<10} {:<8} egress",
        "port", "vlans", "side", "circuit", "peering", "service"
    );
    for a in s["attachments"].as_array().into_iter().flatten() {
        println!(
            "    {:<12} {:<12} {:<10} {:<14} {:<10} {:<8} {}",
            a["port"].as_str().unwrap_or(""),
            match a["label"].as_u64() {
                Some(l) => format!("label {l}"),
                None => vlans_text(&a["vlans"]),
            },
            a["side"].as_str().unwrap_or(""),
            a["circuit"].as_str().unwrap_or(""),
            a["peering"].as_str().unwrap_or(""),
            a["service"].as_str().unwrap_or(""),
            a["egress"].as_str().unwrap_or("")
        );
    }
}

/// Run the check; exit code 0 if all files are valid, 1 otherwise.
pub fn run(a: &CheckArgs) -> anyhow::Result<i32> {
    let mut files = Vec::new();
    let mut failed = false;
    for path in &a.files {
        let name = path.display().to_string();
        match config::load(path) {
            Ok(cfg) => {
                let s = summary(&cfg);
                if !a.json {
                    print_summary(&name, &s);
                }
                files.push(json!({"file": name, "ok": true, "summary": s}));
            }
            Err(diags) => {
                failed = true;
                if !a.json {
                    eprint!("{diags}");
                    if !diags.to_string().ends_with('\n') {
                        eprintln!();
                    }
                }
                files.push(json!({"file": name, "ok": false, "errors": diags.to_json()}));
            }
        }
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"files": files}))?
        );
    }
    Ok(if failed { 1 } else { 0 })
}
