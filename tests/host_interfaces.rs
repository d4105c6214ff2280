//! Host interfaces of an `l3` peering over `io::mem`, with
//! `examples/pe-l3.toml` given `host = {}` on its private peering: frames
//! for the forwarder that the data plane does not answer (BFD, BGP, ARP
//! and ND answers to the host's own requests) reach the link's host
//! interface untagged; what the host sends leaves by its link with the
//! link's tags; what the data plane answers (ARP requests, echo) it still
//! answers; punting is rate-limited; the configuration rules.

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;
use xconnect::config::{self, port_specs, Config};
use xconnect::driver::pump;
use xconnect::frame::DropReason;
use xconnect::gen::{FrameSpec, Payload};
use xconnect::io::mem::MemPort;
use xconnect::pipeline::{LinkState, Pipeline};
use xconnect::plan::Plan;
use xconnect::wire::{self, Tpid, VlanTag};

const TRUNK_A: usize = 1;
const TRUNK_B: usize = 2;
/// The private peering's host interfaces follow the three configured ports.
const HOST_ACCESS: usize = 3;
const HOST_PRIMARY: usize = 4;
const HOST_SECONDARY: usize = 5;
const MSEE_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xa1];

fn t(vid: u16) -> VlanTag {
    VlanTag::from_tci(Tpid::DOT1Q, vid)
}

fn private_trunk() -> Vec<VlanTag> {
    vec![t(100), t(200)]
}

/// `examples/pe-l3.toml` with `host` on its private peering.
fn config_with_host(host: &str) -> Result<Config, String> {
    let path = Path::new("examples/pe-l3.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let marker = "ipv4 = \"192.0.2.0/29\"";
    assert!(text.contains(marker));
    let text = text.replacen(marker, &format!("host = {host}\n{marker}"), 1);
    config::load_str(&text, path).map_err(|d| d.to_string())
}

struct Rig {
    plan: Arc<Plan>,
    pipeline: Pipeline,
    ports: Vec<MemPort>,
    links: LinkState,
}

fn rig() -> Rig {
    rig_with("{ netns = \"xc-frr\" }")
}

fn rig_with(host: &str) -> Rig {
    let cfg = config_with_host(host).unwrap_or_else(|e| panic!("{e}"));
    let plan = Arc::new(config::compile(&cfg));
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    let links = LinkState::new(plan.ports.len());
    let mut pipeline = Pipeline::new(plan.clone(), links.clone());
    pipeline.set_time_ms(Some(1_000));
    Rig {
        ports: vec![MemPort::new(); plan.ports.len()],
        plan,
        pipeline,
        links,
    }
}

/// A UDP packet from the MSEE on trunk A (192.0.2.2) to our address
/// there (192.0.2.1), to `port`, TTL 255: single-hop BFD on 3784.
fn from_msee(r: &Rig, port: u16) -> Vec<u8> {
    let mut s = FrameSpec::udp(
        &private_trunk(),
        "192.0.2.2".parse().unwrap(),
        "192.0.2.1".parse().unwrap(),
        (49152, port),
        0xc0,
        90,
    );
    s.src_mac = MSEE_A;
    s.dst_mac = r.plan.ports[TRUNK_A].mac;
    if let Payload::Ip { ttl, .. } = &mut s.payload {
        *ttl = 255;
    }
    s.build()
}

fn arp(r: &Rig, op: u16, sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let tags = private_trunk();
    let mut f = FrameSpec {
        dst_mac: if op == 1 {
            [0xff; 6]
        } else {
            r.plan.ports[TRUNK_A].mac
        },
        src_mac: MSEE_A,
        tags: tags.clone(),
        payload: Payload::Raw(0x0806),
        wire_len: 64,
    }
    .build();
    let l3 = 14 + 4 * tags.len();
    f.resize(l3 + 28, 0);
    wire::ArpRepr {
        operation: op,
        sender_mac: MSEE_A,
        sender_ip: sender,
        target_mac: r.plan.ports[TRUNK_A].mac,
        target_ip: target,
    }
    .emit(&mut f[l3..])
    .unwrap();
    f
}

/// Everything sent, by port.
fn sent(r: &mut Rig) -> Vec<Vec<Vec<u8>>> {
    r.ports.iter_mut().map(|p| p.take_sent()).collect()
}

/// `frame` with its tag stack removed.
fn untagged(frame: &[u8], tags: usize) -> Vec<u8> {
    let mut f = frame[..12].to_vec();
    f.extend_from_slice(&frame[12 + 4 * tags..]);
    f
}

#[test]
fn host_interfaces_get_default_names_addresses_and_the_links_mac() {
    let cfg = config_with_host("{ netns = \"xc-frr\" }").unwrap();
    let specs = port_specs(&cfg);
    assert_eq!(specs.len(), 6);
    let names: Vec<&str> = specs[3..].iter().map(|s| s.interface.as_str()).collect();
    assert_eq!(
        names,
        ["xh-contoso-a-pa", "xh-contoso-a-p1", "xh-contoso-a-p2"]
    );
    let plan = config::compile(&cfg);
    for (host, link) in [
        (HOST_ACCESS, 0),
        (HOST_PRIMARY, TRUNK_A),
        (HOST_SECONDARY, TRUNK_B),
    ] {
        let h = specs[host].host.as_ref().expect("a host interface");
        assert_eq!(h.mac, plan.ports[link].mac, "port {host}");
        assert_eq!(specs[host].backend, config::BackendKind::Tap);
        assert_eq!(h.mtu, 1500);
        assert_eq!(h.netns.as_deref(), Some("xc-frr"));
    }
    let addrs = |i: usize| -> Vec<String> {
        specs[i]
            .host
            .as_ref()
            .unwrap()
            .addrs
            .iter()
            .map(|a| a.to_string())
            .collect()
    };
    assert_eq!(addrs(HOST_ACCESS), ["203.0.113.1/30", "2001:db8:ff::1/126"]);
    assert_eq!(addrs(HOST_PRIMARY), ["192.0.2.1/30", "2001:db8:0:1::1/126"]);
    assert_eq!(
        addrs(HOST_SECONDARY),
        ["192.0.2.5/30", "2001:db8:0:1::5/126"]
    );
    // Named ones and a namespace.
    let cfg = config_with_host(
        "{ primary = \"frr-a\", secondary = \"frr-b\", access = \"frr-c\", netns = \"xc-frr\" }",
    )
    .unwrap();
    let specs = port_specs(&cfg);
    assert_eq!(specs[HOST_PRIMARY].interface, "frr-a");
    assert_eq!(
        specs[HOST_PRIMARY].host.as_ref().unwrap().netns.as_deref(),
        Some("xc-frr")
    );
}

#[test]
fn configuration_rules_of_host_interfaces() {
    let e = config_with_host("{}").unwrap_err();
    assert!(e.contains("host-netns"), "{e}");
    let e = config_with_host("{ netns = \"n\", primary = \"xc-pe-tra\" }").unwrap_err();
    assert!(
        e.contains("host-interface-unique") && e.contains("port[1]"),
        "{e}"
    );
    let e = config_with_host("{ netns = \"n\", primary = \"a-name-longer-than-15\" }").unwrap_err();
    assert!(e.contains("interface-name"), "{e}");
    let e = config_with_host("{ netns = \"n\", primary = \"same\", secondary = \"same\" }")
        .unwrap_err();
    assert!(e.contains("host-interface-unique"), "{e}");
    let e = config_with_host("{ netns = \"a/b\" }").unwrap_err();
    assert!(e.contains("netns-name"), "{e}");
    let e = config_with_host("{ table = 1 }").unwrap_err();
    assert!(e.contains("table"), "{e}");
    // On an l2 peering.
    let path = Path::new("examples/pe-qinq.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let text = text.replacen(
        "[[circuit.peering]]",
        "[[circuit.peering]]\nhost = { netns = \"n\" }",
        1,
    );
    let e = config::load_str(&text, path).unwrap_err().to_string();
    assert!(e.contains("l3-only") && e.contains("host"), "{e}");
}

#[test]
fn bfd_and_bgp_to_our_address_reach_the_host_untagged() {
    let mut r = rig();
    let bfd = from_msee(&r, 3784);
    let bgp = from_msee(&r, 179);
    r.ports[TRUNK_A].inject(&bfd);
    r.ports[TRUNK_A].inject(&bgp);
    pump(&mut r.pipeline, &mut r.ports);
    let out = sent(&mut r);
    assert_eq!(out[HOST_PRIMARY], [untagged(&bfd, 2), untagged(&bgp, 2)]);
    for (i, o) in out.iter().enumerate() {
        if i != HOST_PRIMARY {
            assert!(o.is_empty(), "port {i} sent {o:?}");
        }
    }
    let c = r.pipeline.counters();
    assert_eq!(c.l3.punted_ip, 2);
    assert_eq!(c.local, 0, "handed over, not consumed");
}

#[test]
fn without_host_interfaces_they_are_consumed() {
    let path = Path::new("examples/pe-l3.toml");
    let cfg = config::load_str(&std::fs::read_to_string(path).unwrap(), path).unwrap();
    let plan = Arc::new(config::compile(&cfg));
    assert_eq!(plan.ports.len(), 3);
    let mut pipeline = Pipeline::new(plan.clone(), LinkState::new(3));
    pipeline.set_time_ms(Some(1_000));
    let mut ports = vec![MemPort::new(); 3];
    let r = Rig {
        plan: plan.clone(),
        pipeline,
        ports: Vec::new(),
        links: LinkState::new(3),
    };
    ports[TRUNK_A].inject(&from_msee(&r, 3784));
    let mut pipeline = r.pipeline;
    pump(&mut pipeline, &mut ports);
    assert!(ports.iter_mut().all(|p| p.take_sent().is_empty()));
    assert_eq!(pipeline.counters().local, 1);
    assert_eq!(pipeline.counters().l3.punted_ip, 0);
}

#[test]
fn arp_answers_for_the_host_are_learned_and_handed_over_requests_answered() {
    let mut r = rig();
    let us: Ipv4Addr = "192.0.2.1".parse().unwrap();
    let msee: Ipv4Addr = "192.0.2.2".parse().unwrap();
    // The MSEE answers the host's ARP request: learned and handed over.
    let reply = arp(&r, 2, msee, us);
    r.ports[TRUNK_A].inject(&reply);
    pump(&mut r.pipeline, &mut r.ports);
    let out = sent(&mut r);
    assert_eq!(out[HOST_PRIMARY], [untagged(&reply, 2)]);
    assert_eq!(r.pipeline.counters().l3.nd_learned, 1);
    assert_eq!(r.pipeline.counters().l3.punted_arp, 1);
    // The MSEE asks for our address: the data plane answers, on the trunk.
    let request = arp(&r, 1, msee, us);
    r.ports[TRUNK_A].inject(&request);
    pump(&mut r.pipeline, &mut r.ports);
    let out = sent(&mut r);
    assert_eq!(out[TRUNK_A].len(), 1);
    assert!(out[HOST_PRIMARY].is_empty());
    assert_eq!(r.pipeline.counters().l3.nd_answers, 1);
}

/// An ICMP echo request from the MSEE on trunk A to our address there.
fn echo_to_us(r: &Rig) -> Vec<u8> {
    let mut s = FrameSpec::udp(
        &private_trunk(),
        "192.0.2.2".parse().unwrap(),
        "192.0.2.1".parse().unwrap(),
        (0, 0),
        0,
        100,
    );
    if let Payload::Ip { protocol, .. } = &mut s.payload {
        *protocol = 1;
    }
    s.src_mac = MSEE_A;
    s.dst_mac = r.plan.ports[TRUNK_A].mac;
    s.build()
}

#[test]
fn echo_to_our_address_is_still_answered_by_the_data_plane() {
    let mut r = rig();
    let echo = echo_to_us(&r);
    r.ports[TRUNK_A].inject(&echo);
    pump(&mut r.pipeline, &mut r.ports);
    let out = sent(&mut r);
    assert_eq!(out[TRUNK_A].len(), 1, "the echo reply");
    assert!(out[HOST_PRIMARY].is_empty());
    assert_eq!(r.pipeline.counters().l3.echo_replies, 1);
}

/// `host = { echo = "host" }`: the host answers echo (its own ICMP
/// policy, rate limits, counters); the data plane hands it over untagged.
#[test]
fn echo_goes_to_the_host_when_configured() {
    let mut r = rig_with("{ netns = \"xc-frr\", echo = \"host\" }");
    let echo = echo_to_us(&r);
    r.ports[TRUNK_A].inject(&echo);
    pump(&mut r.pipeline, &mut r.ports);
    let out = sent(&mut r);
    assert!(out[TRUNK_A].is_empty(), "not answered by the data plane");
    assert_eq!(out[HOST_PRIMARY].len(), 1);
    assert_eq!(out[HOST_PRIMARY][0], untagged(&echo, 2));
    assert_eq!(r.pipeline.counters().l3.echo_replies, 0);
    assert_eq!(r.pipeline.counters().l3.punted_ip, 1);
    // A bad value names the choices.
    let e = config_with_host("{ netns = \"xc-frr\", echo = \"kernel\" }").unwrap_err();
    assert!(e.contains("enum-value") && e.contains("forwarder"), "{e}");
}

#[test]
fn what_the_host_sends_leaves_by_its_link_with_the_links_tags() {
    let mut r = rig();
    // The host's BGP packet to the MSEE (an untagged frame from our MAC).
    let tagged = {
        let mut f = from_msee(&r, 179);
        f[..6].copy_from_slice(&MSEE_A);
        let ours = r.plan.ports[TRUNK_A].mac;
        f[6..12].copy_from_slice(&ours);
        f
    };
    let from_host = untagged(&tagged, 2);
    r.ports[HOST_PRIMARY].inject(&from_host);
    r.ports[HOST_SECONDARY].inject(&from_host);
    pump(&mut r.pipeline, &mut r.ports);
    let out = sent(&mut r);
    // Tags as on the trunk (S-tag 100, C-tag 200), bytes otherwise the same.
    let on_a = &out[TRUNK_A];
    assert_eq!(on_a.len(), 1);
    let info = wire::parse(&on_a[0]).unwrap();
    let vids: Vec<u16> = (0..info.tags.len()).map(|i| info.tags.vid(i)).collect();
    assert_eq!(vids, [100, 200]);
    assert_eq!(untagged(&on_a[0], 2), from_host);
    assert_eq!(out[TRUNK_B].len(), 1, "the secondary host interface's link");
    // Its link down: dropped, not sent by the other link.
    r.links.set(TRUNK_A as u16, false);
    r.ports[HOST_PRIMARY].inject(&from_host);
    pump(&mut r.pipeline, &mut r.ports);
    let out = sent(&mut r);
    assert!(out.iter().all(|o| o.is_empty()), "{out:?}");
    assert_eq!(r.pipeline.counters().drops[DropReason::PortDown.index()], 1);
}

#[test]
fn punting_is_rate_limited_per_worker() {
    let mut r = rig();
    let bfd = from_msee(&r, 3784);
    // Within the fuzz-free window of the hold queue etc.: one port, one
    // frame kind.
    for _ in 0..1_500 {
        r.ports[TRUNK_A].inject(&bfd);
    }
    pump(&mut r.pipeline, &mut r.ports);
    let out = sent(&mut r);
    // The burst (the clock is fixed, so nothing refills).
    assert_eq!(out[HOST_PRIMARY].len(), 1_000);
    let c = r.pipeline.counters();
    assert_eq!(c.l3.punted_ip, 1_000);
    assert_eq!(c.drops[DropReason::PuntLimited.index()], 500);
    // A second later the bucket has refilled.
    r.pipeline.set_time_ms(Some(2_000));
    r.ports[TRUNK_A].inject(&bfd);
    pump(&mut r.pipeline, &mut r.ports);
    assert_eq!(sent(&mut r)[HOST_PRIMARY].len(), 1);
}
