//! Pipeline tests over `io::mem` for every example configuration: frames
//! in, exact frames out, in both directions, on both links, with a link
//! down, and drops by reason. Expected frames are built independently with
//! the frame generator from what the configuration says.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use xconnect::config::{self, Config, Encapsulation, PeeringKind, Role};
use xconnect::driver::pump;
use xconnect::frame::DropReason;
use xconnect::gen::FrameSpec;
use xconnect::io::mem::MemPort;
use xconnect::pipeline::{LinkState, Pipeline};
use xconnect::wire::{Tpid, VlanTag};

const EXAMPLES: [&str; 3] = [
    "examples/pe-qinq.toml",
    "examples/pe-dot1q.toml",
    "examples/msee-qinq.toml",
];

struct Rig {
    cfg: Config,
    pipeline: Pipeline,
    ports: Vec<MemPort>,
    links: LinkState,
}

fn rig_from(cfg: Config) -> Rig {
    let plan = Arc::new(xconnect::config::compile(&cfg));
    let links = LinkState::new(plan.ports.len());
    let ports = vec![MemPort::new(); plan.ports.len()];
    Rig {
        pipeline: Pipeline::new(plan, links.clone()),
        cfg,
        ports,
        links,
    }
}

fn rig(path: &str) -> Rig {
    let cfg = config::load(Path::new(path)).unwrap_or_else(|d| panic!("{path}: {d}"));
    rig_from(cfg)
}

fn rig_text(path: &str, edit: impl Fn(&str) -> String) -> Rig {
    let text = edit(&std::fs::read_to_string(path).unwrap());
    let cfg = config::load_str(&text, Path::new(path)).unwrap_or_else(|d| panic!("{path}: {d}"));
    rig_from(cfg)
}

fn tag(tpid: Tpid, vid: u16, pcp: u8) -> VlanTag {
    VlanTag {
        tpid,
        pcp,
        dei: false,
        vid,
    }
}

/// The tags a peering's frames carry on a trunk link.
fn trunk_tags(
    cfg: &Config,
    circuit: usize,
    peering: usize,
    secondary: bool,
    pcp: u8,
) -> Vec<VlanTag> {
    let c = &cfg.circuits[circuit];
    let p = &c.peerings[peering];
    let link = if secondary { &c.secondary } else { &c.primary };
    let mut tpid = c.outer_tpid;
    let mut v = Vec::new();
    if let Some(o) = link.outer_tag {
        v.push(tag(tpid, o.get(), pcp));
        tpid = Tpid::DOT1Q;
    }
    if c.encapsulation == Encapsulation::QinQ {
        v.push(tag(tpid, c.s_tag.unwrap().get(), pcp));
        tpid = Tpid::DOT1Q;
    }
    v.push(tag(tpid, p.tag.get(), pcp));
    v
}

fn access_tags(cfg: &Config, circuit: usize, peering: usize, pcp: u8) -> Vec<VlanTag> {
    cfg.circuits[circuit].peerings[peering]
        .access
        .vlans
        .iter()
        .map(|v| tag(Tpid::DOT1Q, v.get(), pcp))
        .collect()
}

fn addrs(v6: bool, i: u16) -> (IpAddr, IpAddr) {
    if v6 {
        (
            format!("2001:db8:1::{:x}", i + 1).parse().unwrap(),
            "2001:db8:2::1".parse().unwrap(),
        )
    } else {
        (
            format!("192.0.2.{}", 10 + (i % 200)).parse().unwrap(),
            "203.0.113.9".parse().unwrap(),
        )
    }
}

/// A UDP frame whose IP packet is the same whatever the number of tags.
fn frame(tags: &[VlanTag], v6: bool, flow: u16, tos: u8) -> Vec<u8> {
    let (s, d) = addrs(v6, flow);
    FrameSpec::udp(tags, s, d, (40000 + flow, 443), tos, 128 + 4 * tags.len()).build()
}

/// DSCP a policy leaves: `expressroute` keeps the whitelist, `preserve` keeps all.
fn expected_tos(kind: PeeringKind, towards_microsoft: bool, tos: u8) -> u8 {
    let dscp = tos >> 2;
    let whitelisted = [0, 10, 18, 34, 46].contains(&dscp);
    if kind == PeeringKind::Microsoft && towards_microsoft && !whitelisted {
        tos & 3
    } else {
        tos
    }
}

/// Access → trunk for every peering of every example, IPv4 and IPv6, many
/// flows: each frame comes out of exactly one trunk with the exact bytes
/// expected, and both links carry some flows.
#[test]
fn access_to_trunk_golden_on_both_links() {
    for path in EXAMPLES {
        let mut r = rig(path);
        let cfg = r.cfg.clone();
        let towards_ms_from_access = cfg.role == Role::ProviderEdge;
        for (ci, c) in cfg.circuits.iter().enumerate() {
            for (pi, p) in c.peerings.iter().enumerate() {
                let access = p.access.port;
                let (ta, tb) = (c.primary.port, c.secondary.port);
                let mut per_link = [0usize; 2];
                for flow in 0..64u16 {
                    for v6 in [false, true] {
                        // AF31 + ECN 01: rewritten to CS0 towards Microsoft on Microsoft peering.
                        let tos = if flow % 2 == 0 {
                            (26 << 2) | 1
                        } else {
                            (46 << 2) | 2
                        };
                        let input = frame(&access_tags(&cfg, ci, pi, 0), v6, flow, tos);
                        r.ports[access].inject(&input);
                        pump(&mut r.pipeline, &mut r.ports);
                        let a = r.ports[ta].take_sent();
                        let b = r.ports[tb].take_sent();
                        assert_eq!(
                            a.len() + b.len(),
                            1,
                            "{path} peering {pi} flow {flow}: one frame out"
                        );
                        let secondary = a.is_empty();
                        per_link[secondary as usize] += 1;
                        let out = if secondary { &b[0] } else { &a[0] };
                        let want_tos = expected_tos(p.kind, towards_ms_from_access, tos);
                        let want =
                            frame(&trunk_tags(&cfg, ci, pi, secondary, 0), v6, flow, want_tos);
                        assert_eq!(out, &want, "{path} peering {pi} flow {flow} v6 {v6}");
                    }
                }
                assert!(
                    per_link[0] > 10 && per_link[1] > 10,
                    "{path}: flows on both links {per_link:?}"
                );
            }
        }
        let c = r.pipeline.counters();
        assert_eq!(c.total_drops(), 0, "{path}: {:?}", c.drops);
        assert_eq!(c.total_rx(), c.total_tx());
    }
}

/// Trunk → access on both links, with the DSCP policy of that direction.
#[test]
fn trunk_to_access_golden_from_both_links() {
    for path in EXAMPLES {
        let mut r = rig(path);
        let cfg = r.cfg.clone();
        let towards_ms_from_trunk = cfg.role == Role::Msee;
        for (ci, c) in cfg.circuits.iter().enumerate() {
            for (pi, p) in c.peerings.iter().enumerate() {
                for secondary in [false, true] {
                    let ingress = if secondary {
                        c.secondary.port
                    } else {
                        c.primary.port
                    };
                    for (flow, tos) in [(1u16, (26u8 << 2) | 1), (2, 46 << 2), (3, (34 << 2) | 3)] {
                        for v6 in [false, true] {
                            let input =
                                frame(&trunk_tags(&cfg, ci, pi, secondary, 0), v6, flow, tos);
                            r.ports[ingress].inject(&input);
                            pump(&mut r.pipeline, &mut r.ports);
                            let out = r.ports[p.access.port].take_sent();
                            let want_tos = expected_tos(p.kind, towards_ms_from_trunk, tos);
                            let want = frame(&access_tags(&cfg, ci, pi, 0), v6, flow, want_tos);
                            assert_eq!(
                                out,
                                vec![want],
                                "{path} peering {pi} secondary {secondary}"
                            );
                        }
                    }
                }
            }
        }
    }
}

/// With the primary trunk down every flow takes the secondary, and back;
/// with both down frames are dropped as `no-link-up`.
#[test]
fn link_down_moves_every_flow() {
    let mut r = rig("examples/pe-qinq.toml");
    let cfg = r.cfg.clone();
    let c = &cfg.circuits[0];
    let (ta, tb) = (c.primary.port, c.secondary.port);
    let access = c.peerings[0].access.port;
    let tags = access_tags(&cfg, 0, 0, 0);
    let send_all = |r: &mut Rig| {
        for flow in 0..100 {
            r.ports[access].inject(&frame(&tags, false, flow, 0));
        }
        pump(&mut r.pipeline, &mut r.ports);
        (r.ports[ta].take_sent().len(), r.ports[tb].take_sent().len())
    };
    let (a, b) = send_all(&mut r);
    assert!(a > 20 && b > 20 && a + b == 100, "{a} {b}");
    r.links.set(ta as u16, false);
    assert_eq!(send_all(&mut r), (0, 100));
    r.links.set(ta as u16, true);
    r.links.set(tb as u16, false);
    assert_eq!(send_all(&mut r), (100, 0));
    r.links.set(ta as u16, false);
    assert_eq!(send_all(&mut r), (0, 0));
    assert_eq!(r.pipeline.counters().drops_for(DropReason::NoLinkUp), 100);
    // Frames from the trunks are accepted on either link whatever the state of the other.
    r.links.set(ta as u16, true);
    r.ports[tb].inject(&frame(&trunk_tags(&cfg, 0, 0, true, 0), false, 1, 0));
    pump(&mut r.pipeline, &mut r.ports);
    assert_eq!(r.ports[access].take_sent().len(), 1);
}

/// Every drop reason the L2 pipeline can produce, counted, and nothing else sent.
#[test]
fn drops_by_reason() {
    let mut r = rig("examples/pe-qinq.toml");
    let cfg = r.cfg.clone();
    let access = cfg.circuits[0].peerings[0].access.port;
    let ta = cfg.circuits[0].primary.port;
    let good = frame(&access_tags(&cfg, 0, 0, 0), false, 1, 0);
    // Unknown VLAN on the access port, untagged frame on a trunk, wrong C-tag.
    r.ports[access].inject(&frame(&[tag(Tpid::DOT1Q, 999, 0)], false, 1, 0));
    r.ports[ta].inject(&frame(&[], false, 1, 0));
    r.ports[ta].inject(&frame(
        &[tag(Tpid::DOT1Q, 100, 0), tag(Tpid::DOT1Q, 201, 0)],
        false,
        1,
        0,
    ));
    // Four tags.
    let four: Vec<VlanTag> = (0..4).map(|i| tag(Tpid::DOT1Q, 10 + i, 0)).collect();
    r.ports[access].inject(&frame(&four, false, 1, 0));
    // Truncated IPv4 (total length beyond the frame).
    r.ports[access].inject(&good[..40]);
    // Over the MTU: a 1600-byte IP packet.
    let (s, d) = addrs(false, 1);
    r.ports[access]
        .inject(&FrameSpec::udp(&access_tags(&cfg, 0, 0, 0), s, d, (1, 2), 0, 1622).build());
    // Exactly the MTU passes.
    r.ports[access]
        .inject(&FrameSpec::udp(&access_tags(&cfg, 0, 0, 0), s, d, (1, 2), 0, 1522).build());
    pump(&mut r.pipeline, &mut r.ports);
    let c = r.pipeline.counters().clone();
    assert_eq!(c.drops_for(DropReason::UnknownAttachment), 3);
    assert_eq!(c.drops_for(DropReason::TooManyTags), 1);
    assert_eq!(c.drops_for(DropReason::Malformed), 1);
    assert_eq!(c.drops_for(DropReason::OverMtu), 1);
    assert_eq!(c.total_tx(), 1);
    assert_eq!(c.total_rx(), 7);
    assert_eq!(c.total_rx(), c.total_tx() + c.total_drops() + c.local);
}

/// Frames of one peering never come out tagged for the other peering.
#[test]
fn peerings_never_leak() {
    for path in EXAMPLES {
        let mut r = rig(path);
        let cfg = r.cfg.clone();
        let c = &cfg.circuits[0];
        for (pi, p) in c.peerings.iter().enumerate() {
            let other = &c.peerings[1 - pi];
            for flow in 0..32 {
                r.ports[p.access.port].inject(&frame(&access_tags(&cfg, 0, pi, 0), false, flow, 0));
            }
            pump(&mut r.pipeline, &mut r.ports);
            for port in [c.primary.port, c.secondary.port] {
                for f in r.ports[port].take_sent() {
                    let info = xconnect::wire::parse(&f).unwrap();
                    let inner = info.tags.vid(info.tags.len() - 1);
                    assert_eq!(inner, p.tag.get(), "{path}");
                    assert_ne!(inner, other.tag.get(), "{path}");
                }
            }
            // And trunk frames of this peering go only to its access attachment.
            r.ports[c.primary.port].inject(&frame(&trunk_tags(&cfg, 0, pi, false, 0), false, 1, 0));
            pump(&mut r.pipeline, &mut r.ports);
            let out = r.ports[p.access.port].take_sent();
            assert_eq!(out.len(), 1);
            let want_vlans: Vec<u16> = p.access.vlans.iter().map(|v| v.get()).collect();
            let info = xconnect::wire::parse(&out[0]).unwrap();
            let got: Vec<u16> = (0..info.tags.len()).map(|i| info.tags.vid(i)).collect();
            assert_eq!(got, want_vlans);
            if other.access.port != p.access.port {
                assert!(r.ports[other.access.port].take_sent().is_empty());
            }
        }
    }
}

/// 0x88a8 outer TPID, PCP copied from the customer tag, push/pop round trip.
#[test]
fn outer_tpid_pcp_and_round_trip() {
    let mut r = rig_text("examples/pe-qinq.toml", |t| {
        t.replace("outer_tpid = 0x8100", "outer_tpid = 0x88a8")
    });
    let cfg = r.cfg.clone();
    assert_eq!(cfg.circuits[0].outer_tpid, Tpid::DOT1AD);
    let c = &cfg.circuits[0];
    let access = c.peerings[0].access.port;
    let input = frame(&access_tags(&cfg, 0, 0, 5), false, 7, 46 << 2);
    r.ports[access].inject(&input);
    pump(&mut r.pipeline, &mut r.ports);
    let mut out = r.ports[c.primary.port].take_sent();
    let mut secondary = false;
    if out.is_empty() {
        out = r.ports[c.secondary.port].take_sent();
        secondary = true;
    }
    assert_eq!(out.len(), 1);
    let want = frame(&trunk_tags(&cfg, 0, 0, secondary, 5), false, 7, 46 << 2);
    assert_eq!(out[0], want);
    assert_eq!(&out[0][12..14], &[0x88, 0xa8]);
    // Back in through the trunk: the original customer frame.
    let ingress = if secondary {
        c.secondary.port
    } else {
        c.primary.port
    };
    r.ports[ingress].inject(&out[0]);
    pump(&mut r.pipeline, &mut r.ports);
    assert_eq!(r.ports[access].take_sent(), vec![input]);
    // Any of the three TPIDs is accepted as the outer tag on receive.
    for tpid in [Tpid::DOT1Q, Tpid::DOT1AD, Tpid::QINQ_9100] {
        let mut tags = trunk_tags(&cfg, 0, 0, false, 0);
        tags[0].tpid = tpid;
        r.ports[c.primary.port].inject(&frame(&tags, false, 1, 0));
    }
    pump(&mut r.pipeline, &mut r.ports);
    assert_eq!(r.ports[access].take_sent().len(), 3);
}

/// PCP from DSCP on pushed tags when configured.
#[test]
fn pcp_from_dscp() {
    let mut r = rig_text("examples/pe-qinq.toml", |t| {
        t.replacen("pcp_from_dscp = false", "pcp_from_dscp = true", 1)
    });
    let cfg = r.cfg.clone();
    let c = &cfg.circuits[0];
    assert!(c.peerings[0].pcp_from_dscp);
    r.ports[c.peerings[0].access.port].inject(&frame(
        &access_tags(&cfg, 0, 0, 0),
        false,
        3,
        46 << 2,
    ));
    pump(&mut r.pipeline, &mut r.ports);
    let mut out = r.ports[c.primary.port].take_sent();
    out.extend(r.ports[c.secondary.port].take_sent());
    let info = xconnect::wire::parse(&out[0]).unwrap();
    assert!(info.tags.iter().all(|t| t.pcp == 5), "{:?}", info.tags);
}

proptest::proptest! {
    /// Any bytes on any port: no panic, every frame counted once, every
    /// forwarded frame parses and carries a configured tag stack.
    #[test]
    fn arbitrary_frames_are_counted_once(frames in proptest::collection::vec((0usize..3, proptest::collection::vec(proptest::prelude::any::<u8>(), 0..120)), 1..80)) {
        let mut r = rig("examples/pe-qinq.toml");
        for (port, f) in &frames {
            r.ports[*port].inject(f);
        }
        pump(&mut r.pipeline, &mut r.ports);
        let c = r.pipeline.counters();
        proptest::prop_assert_eq!(c.total_rx(), frames.len() as u64);
        proptest::prop_assert_eq!(c.total_rx(), c.total_tx() + c.total_drops() + c.local);
        for p in &mut r.ports {
            for f in p.take_sent() {
                proptest::prop_assert!(xconnect::wire::parse(&f).is_ok());
            }
        }
    }
}
