//! The managed Layer 3 service over `io::mem` with `examples/pe-l3.toml`:
//! ARP and ND replies, routing to the right next hop (ECMP, failover),
//! TTL expiry with ICMP, no route, unresolved next hops, VRF isolation,
//! echo to our addresses, and route updates during traffic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::Arc;
use xconnect::config::{self, PeeringKind};
use xconnect::driver::pump;
use xconnect::frame::DropReason;
use xconnect::gen::{FrameSpec, Payload, MAC_A};
use xconnect::io::mem::MemPort;
use xconnect::pipeline::{LinkState, Pipeline};
use xconnect::plan::Plan;
use xconnect::wire::{self, checksum, Tpid, VlanTag, L3};

const CUSTOMER: usize = 0;
const TRUNK_A: usize = 1;
const TRUNK_B: usize = 2;
const MSEE_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xa1];
const MSEE_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0xb1];
const CE: [u8; 6] = [0x02, 0, 0, 0, 0, 0xc1];

struct Rig {
    plan: Arc<Plan>,
    pipeline: Pipeline,
    ports: Vec<MemPort>,
    links: LinkState,
}

fn rig() -> Rig {
    rig_with(|text| text)
}

/// The rig over `examples/pe-l3.toml` as changed by `edit`.
fn rig_with(edit: impl FnOnce(String) -> String) -> Rig {
    let path = Path::new("examples/pe-l3.toml");
    let text = edit(std::fs::read_to_string(path).unwrap());
    let cfg = config::load_str(&text, path).unwrap_or_else(|d| panic!("{d}"));
    let plan = Arc::new(xconnect::config::compile(&cfg));
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

fn t(vid: u16) -> VlanTag {
    VlanTag::from_tci(Tpid::DOT1Q, vid)
}

fn trunk_tags(c_tag: u16) -> Vec<VlanTag> {
    vec![t(100), t(c_tag)]
}

fn ip_frame(
    tags: &[VlanTag],
    src_mac: [u8; 6],
    src: &str,
    dst: &str,
    ttl: u8,
    tos: u8,
    sport: u16,
) -> Vec<u8> {
    let mut s = FrameSpec::udp(
        tags,
        src.parse().unwrap(),
        dst.parse().unwrap(),
        (sport, 443),
        tos,
        100,
    );
    s.src_mac = src_mac;
    s.dst_mac = [0x02, 0x78, 0x63, 0, 0, 1];
    if let Payload::Ip { ttl: ref mut t, .. } = s.payload {
        *t = ttl;
    }
    s.build()
}

/// `frame` with its destination MAC set to `mac`.
fn addressed(mut frame: Vec<u8>, mac: [u8; 6]) -> Vec<u8> {
    frame[..6].copy_from_slice(&mac);
    frame
}

fn arp(tags: &[VlanTag], mac: [u8; 6], op: u16, sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut f = FrameSpec {
        dst_mac: [0xff; 6],
        src_mac: mac,
        tags: tags.to_vec(),
        payload: Payload::Raw(0x0806),
        wire_len: 64,
    }
    .build();
    let l3 = 14 + 4 * tags.len();
    f.resize(l3 + 28, 0);
    wire::ArpRepr {
        operation: op,
        sender_mac: mac,
        sender_ip: sender,
        target_mac: [0x02, 0x78, 0x63, 0, 0, 2],
        target_ip: target,
    }
    .emit(&mut f[l3..])
    .unwrap();
    f
}

/// Teach the forwarder the MSEEs' MACs on both trunks of a peering (their ARP requests).
fn learn_msees(r: &mut Rig, c_tag: u16, a: &str, b: &str) {
    let us_a = if c_tag == 200 {
        "192.0.2.1"
    } else {
        "198.51.100.1"
    };
    let us_b = if c_tag == 200 {
        "192.0.2.5"
    } else {
        "198.51.100.5"
    };
    r.ports[TRUNK_A].inject(&arp(
        &trunk_tags(c_tag),
        MSEE_A,
        1,
        a.parse().unwrap(),
        us_a.parse().unwrap(),
    ));
    r.ports[TRUNK_B].inject(&arp(
        &trunk_tags(c_tag),
        MSEE_B,
        1,
        b.parse().unwrap(),
        us_b.parse().unwrap(),
    ));
    pump(&mut r.pipeline, &mut r.ports);
    // Their requests were answered.
    assert_eq!(r.ports[TRUNK_A].take_sent().len(), 1);
    assert_eq!(r.ports[TRUNK_B].take_sent().len(), 1);
}

fn sent_all(r: &mut Rig) -> [Vec<Vec<u8>>; 3] {
    [
        r.ports[CUSTOMER].take_sent(),
        r.ports[TRUNK_A].take_sent(),
        r.ports[TRUNK_B].take_sent(),
    ]
}

fn ipv4_valid(f: &[u8]) -> bool {
    let i = wire::parse(f).unwrap();
    let l3 = i.l3_offset as usize;
    checksum::checksum(&f[l3..l3 + 20]) == 0
}

#[test]
fn arp_reply_for_our_access_address() {
    let mut r = rig();
    r.ports[CUSTOMER].inject(&arp(
        &[t(10)],
        CE,
        1,
        "203.0.113.2".parse().unwrap(),
        "203.0.113.1".parse().unwrap(),
    ));
    // And a request for an address that is not ours: consumed, no reply.
    r.ports[CUSTOMER].inject(&arp(
        &[t(10)],
        CE,
        1,
        "203.0.113.2".parse().unwrap(),
        "203.0.113.3".parse().unwrap(),
    ));
    pump(&mut r.pipeline, &mut r.ports);
    let out = r.ports[CUSTOMER].take_sent();
    assert_eq!(out.len(), 1);
    let i = wire::parse(&out[0]).unwrap();
    assert_eq!(i.tags.vid(0), 10);
    let a = wire::arp::ArpPacket::new_checked(&out[0][18..], 18).unwrap();
    assert_eq!(a.operation(), 2);
    assert_eq!(a.sender_ip(), Ipv4Addr::new(203, 0, 113, 1));
    assert_eq!(a.sender_mac(), r.plan.ports[CUSTOMER].mac);
    assert_eq!(
        (a.target_mac(), a.target_ip()),
        (CE, Ipv4Addr::new(203, 0, 113, 2))
    );
    assert_eq!(&out[0][0..6], &CE);
    assert_eq!(r.pipeline.counters().local, 1);
}

#[test]
fn nd_advert_for_our_address_and_learning() {
    let mut r = rig();
    let ours: Ipv6Addr = "2001:db8:0:1::1".parse().unwrap();
    let peer: Ipv6Addr = "2001:db8:0:1::2".parse().unwrap();
    // An NS from the MSEE for our primary-link address, built by our own solicitation builder.
    let mut f = vec![0u8; 200];
    let l3 = 22;
    let n = xconnect::pipeline::l3::reply::nd_solicit(&mut f, l3, &MSEE_A, peer, ours).unwrap();
    f.truncate(n);
    f[12..20].copy_from_slice(&[0x81, 0, 0, 100, 0x81, 0, 0, 200]);
    r.ports[TRUNK_A].inject(&f);
    pump(&mut r.pipeline, &mut r.ports);
    let out = r.ports[TRUNK_A].take_sent();
    assert_eq!(out.len(), 1, "one neighbour advertisement");
    let na = &out[0];
    assert_eq!(na[l3 + 40], 136);
    assert_eq!(&na[l3 + 48..l3 + 64], &ours.octets());
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&na[l3 + 8..l3 + 24]).unwrap());
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&na[l3 + 24..l3 + 40]).unwrap());
    assert_eq!((src, dst), (ours, peer));
    assert_eq!(
        xconnect::pipeline::l3::reply::icmp6_checksum(&src, &dst, &na[l3 + 40..]),
        0
    );
    assert_eq!(&na[0..6], &MSEE_A);
    // The NS taught us the MSEE's MAC: traffic to the v6 route over the primary is routed at once.
    r.links.set(TRUNK_B as u16, false);
    let mut s = FrameSpec::udp(
        &[t(10)],
        "2001:db8:ff::2".parse().unwrap(),
        "2001:db8:100::9".parse().unwrap(),
        (1, 2),
        0,
        120,
    );
    s.src_mac = CE;
    s.dst_mac = r.plan.ports[CUSTOMER].mac;
    r.ports[CUSTOMER].inject(&s.build());
    pump(&mut r.pipeline, &mut r.ports);
    let out = r.ports[TRUNK_A].take_sent();
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][0..6], &MSEE_A);
    let i = wire::parse(&out[0]).unwrap();
    assert_eq!(i.ttl, 63);
}

#[test]
fn routes_to_the_right_next_hop_with_ecmp_and_failover() {
    let mut r = rig();
    learn_msees(&mut r, 200, "192.0.2.2", "192.0.2.6");
    let mut per = [0usize; 3];
    for flow in 0..64u16 {
        let input = ip_frame(
            &[t(10)],
            CE,
            "203.0.113.2",
            "198.51.100.200",
            64,
            (26 << 2) | 1,
            40000 + flow,
        );
        r.ports[CUSTOMER].inject(&input);
        pump(&mut r.pipeline, &mut r.ports);
        let s = sent_all(&mut r);
        let (port, out) = s
            .iter()
            .enumerate()
            .find(|(_, v)| !v.is_empty())
            .expect("routed somewhere");
        assert_eq!(s.iter().map(Vec::len).sum::<usize>(), 1);
        per[port] += 1;
        let f = &out[0];
        let i = wire::parse(f).unwrap();
        assert_eq!(
            (i.tags.vid(0), i.tags.vid(1)),
            (100, 200),
            "private peering C-tag"
        );
        assert_eq!(&f[0..6], if port == TRUNK_A { &MSEE_A } else { &MSEE_B });
        assert_eq!(&f[6..12], &r.plan.ports[port].mac);
        assert_eq!(i.ttl, 63);
        assert_eq!(i.tos, (26 << 2) | 1, "private peering preserves DSCP");
        assert!(ipv4_valid(f));
        // Beyond the IP header's TTL and checksum, the packet is unchanged.
        let (a, b) = (&input[18 + 20..], &f[22 + 20..]);
        assert_eq!(a, b);
    }
    assert_eq!(per[CUSTOMER], 0);
    assert!(
        per[TRUNK_A] > 10 && per[TRUNK_B] > 10,
        "ECMP over both links: {per:?}"
    );
    // Primary down: every flow on the secondary.
    r.links.set(TRUNK_A as u16, false);
    for flow in 0..32u16 {
        r.ports[CUSTOMER].inject(&ip_frame(
            &[t(10)],
            CE,
            "203.0.113.2",
            "198.51.100.200",
            64,
            0,
            40000 + flow,
        ));
    }
    pump(&mut r.pipeline, &mut r.ports);
    let s = sent_all(&mut r);
    assert_eq!((s[1].len(), s[2].len()), (0, 32));
    // From the trunks to the customer's prefix via the static neighbour.
    let from_msee = ip_frame(
        &trunk_tags(200),
        MSEE_B,
        "198.51.100.200",
        "203.0.113.200",
        30,
        0,
        1,
    );
    r.ports[TRUNK_B].inject(&addressed(from_msee, r.plan.ports[TRUNK_B].mac));
    pump(&mut r.pipeline, &mut r.ports);
    let s = sent_all(&mut r);
    assert_eq!(s[0].len(), 1);
    let i = wire::parse(&s[0][0]).unwrap();
    assert_eq!((i.tags.len(), i.tags.vid(0), i.ttl), (1, 10, 29));
    assert_eq!(&s[0][0][0..6], &CE);
}

#[test]
fn microsoft_peering_marks_dscp_after_routing() {
    let mut r = rig();
    learn_msees(&mut r, 300, "198.51.100.2", "198.51.100.6");
    r.ports[CUSTOMER].inject(&arp(
        &[t(20)],
        CE,
        2,
        "203.0.113.6".parse().unwrap(),
        "203.0.113.5".parse().unwrap(),
    ));
    for (tos, want) in [((26u8 << 2) | 1, 1u8), (46 << 2, 46 << 2)] {
        r.ports[CUSTOMER].inject(&ip_frame(
            &[t(20)],
            CE,
            "203.0.113.6",
            "198.51.100.70",
            64,
            tos,
            7,
        ));
        pump(&mut r.pipeline, &mut r.ports);
        let s = sent_all(&mut r);
        let f = s[1].iter().chain(&s[2]).next().expect("routed to a trunk");
        let i = wire::parse(f).unwrap();
        assert_eq!(i.tags.vid(1), 300);
        assert_eq!(i.tos, want, "AF31 → CS0 (ECN kept), EF kept");
        assert!(ipv4_valid(f));
    }
}

/// The pushed tags' PCP on a routed packet: DSCP >> 3 with
/// `pcp_from_dscp`, else the PCP of the tag it arrived with — as on an
/// `l2` peering (l3 used to push PCP 0 and ignore `pcp_from_dscp`).
#[test]
fn routed_packets_carry_pcp_like_bridged_ones() {
    for (from_dscp, in_pcp, want) in [(true, 0u8, 46 >> 3), (false, 3, 3), (false, 0, 0)] {
        let mut r = rig_with(|t| {
            t.replacen(
                "dscp = \"preserve\"",
                &format!("dscp = \"preserve\"\npcp_from_dscp = {from_dscp}"),
                1,
            )
        });
        learn_msees(&mut r, 200, "192.0.2.2", "192.0.2.6");
        let tag = VlanTag {
            pcp: in_pcp,
            ..t(10)
        };
        r.ports[CUSTOMER].inject(&ip_frame(
            &[tag],
            CE,
            "203.0.113.2",
            "198.51.100.130",
            64,
            46 << 2,
            7,
        ));
        pump(&mut r.pipeline, &mut r.ports);
        let s = sent_all(&mut r);
        let f = s[1].iter().chain(&s[2]).next().expect("routed to a trunk");
        let i = wire::parse(f).unwrap();
        assert_eq!(i.tags.len(), 2);
        for k in 0..2 {
            assert_eq!(
                i.tags.get(k).map(|t| t.pcp),
                Some(want),
                "tag {k}, pcp_from_dscp {from_dscp}, received PCP {in_pcp}"
            );
        }
        assert!(ipv4_valid(f));
    }
}

#[test]
fn ttl_expiry_and_no_route_send_icmp() {
    let mut r = rig();
    // TTL 1 towards a routed prefix: ICMP time exceeded back to the customer.
    let input = ip_frame(&[t(10)], CE, "203.0.113.2", "198.51.100.200", 1, 0, 5);
    r.ports[CUSTOMER].inject(&input);
    // No route: ICMP destination unreachable.
    r.ports[CUSTOMER].inject(&ip_frame(
        &[t(10)],
        CE,
        "203.0.113.2",
        "192.0.2.200",
        64,
        0,
        5,
    ));
    pump(&mut r.pipeline, &mut r.ports);
    let out = r.ports[CUSTOMER].take_sent();
    assert_eq!(out.len(), 2);
    for (f, (kind, code)) in out.iter().zip([(11u8, 0u8), (3, 0)]) {
        let i = wire::parse(f).unwrap();
        assert_eq!((i.tags.vid(0), i.protocol), (10, 1));
        let ip = wire::ipv4::Ipv4Packet::new_checked(&f[18..], 18).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.src(), Ipv4Addr::new(203, 0, 113, 1));
        assert_eq!(ip.dst(), Ipv4Addr::new(203, 0, 113, 2));
        let icmp = &f[38..18 + ip.total_len() as usize];
        assert_eq!((icmp[0], icmp[1]), (kind, code));
        assert_eq!(checksum::checksum(icmp), 0);
        if kind == 11 {
            assert_eq!(&icmp[8..28], &input[18..38], "quotes the offending header");
        }
        assert_eq!(&f[0..6], &CE);
    }
    let c = r.pipeline.counters();
    assert_eq!(c.l3.icmp_errors, 2);
    // IPv6 hop limit 1: ICMPv6 time exceeded.
    let mut s = FrameSpec::udp(
        &[t(10)],
        "2001:db8:ff::2".parse().unwrap(),
        "2001:db8:100::9".parse().unwrap(),
        (1, 2),
        0,
        120,
    );
    if let Payload::Ip { ttl, .. } = &mut s.payload {
        *ttl = 1;
    }
    s.dst_mac = r.plan.ports[CUSTOMER].mac;
    r.ports[CUSTOMER].inject(&s.build());
    pump(&mut r.pipeline, &mut r.ports);
    let out = r.ports[CUSTOMER].take_sent();
    assert_eq!(out.len(), 1);
    let f = &out[0];
    assert_eq!((f[18 + 6], f[18 + 40]), (58, 3));
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&f[26..42]).unwrap());
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&f[42..58]).unwrap());
    assert_eq!(src, "2001:db8:ff::1".parse::<Ipv6Addr>().unwrap());
    assert_eq!(
        xconnect::pipeline::l3::reply::icmp6_checksum(&src, &dst, &f[58..]),
        0
    );
}

/// A packet for a neighbour not resolved yet.
fn to_unresolved(sport: u16) -> Vec<u8> {
    ip_frame(&[t(10)], CE, "203.0.113.2", "198.51.100.200", 64, 0, sport)
}

fn udp_src_port(f: &[u8]) -> u16 {
    let i = wire::parse(f).unwrap();
    i.src_port
}

/// The first packets of a new flow wait for the neighbour instead of being
/// lost: one request goes out, they are held, and when the MSEE answers
/// they leave in order, ahead of later packets, addressed to it.
#[test]
fn unresolved_next_hop_holds_packets_until_it_answers() {
    let mut r = rig();
    r.links.set(TRUNK_B as u16, false);
    for sport in 1..=3 {
        r.ports[CUSTOMER].inject(&to_unresolved(sport));
    }
    pump(&mut r.pipeline, &mut r.ports);
    let out = r.ports[TRUNK_A].take_sent();
    assert_eq!(out.len(), 1, "one ARP request per 500 ms per neighbour");
    let i = wire::parse(&out[0]).unwrap();
    assert_eq!((i.l3, i.tags.vid(0), i.tags.vid(1)), (L3::Arp, 100, 200));
    let a = wire::arp::ArpPacket::new_checked(&out[0][22..], 22).unwrap();
    assert_eq!(
        (a.operation(), a.sender_ip(), a.target_ip()),
        (1, Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2))
    );
    let c = r.pipeline.counters();
    assert_eq!(c.drops_for(DropReason::NeighborUnresolved), 0);
    assert_eq!((c.held, r.pipeline.held()), (3, 3));
    // The MSEE answers; the held packets leave in order, then a new one.
    r.ports[TRUNK_A].inject(&arp(
        &trunk_tags(200),
        MSEE_A,
        2,
        "192.0.2.2".parse().unwrap(),
        "192.0.2.1".parse().unwrap(),
    ));
    pump(&mut r.pipeline, &mut r.ports);
    r.ports[CUSTOMER].inject(&to_unresolved(4));
    pump(&mut r.pipeline, &mut r.ports);
    let out = r.ports[TRUNK_A].take_sent();
    let ports: Vec<u16> = out.iter().map(|f| udp_src_port(f)).collect();
    assert_eq!(ports, [1, 2, 3, 4], "held packets first, in order");
    for f in &out {
        assert_eq!(&f[0..6], &MSEE_A);
        assert_eq!(&f[6..12], &r.plan.ports[TRUNK_A].mac);
        assert_eq!(wire::parse(f).unwrap().ttl, 63);
        assert!(ipv4_valid(f));
    }
    let c = r.pipeline.counters();
    assert_eq!((c.held, c.total_drops()), (0, 0));
    assert_eq!(c.total_rx(), c.total_tx() + c.local);
    // 300 s later the entry has aged out: resolution starts again.
    r.pipeline.set_time_ms(Some(1_000 + 301_000));
    r.ports[CUSTOMER].inject(&to_unresolved(5));
    pump(&mut r.pipeline, &mut r.ports);
    let out = r.ports[TRUNK_A].take_sent();
    assert_eq!(wire::parse(&out[0]).unwrap().l3, L3::Arp);
    assert_eq!(r.pipeline.held(), 1);
}

/// A reload that keeps the peering (its links and neighbour table: here
/// only the DSCP policy changed) keeps the packets held for a neighbour,
/// and they leave when it answers; a plan that rebuilt the peering drops
/// them as unresolved.
#[test]
fn held_packets_survive_a_reload_that_keeps_their_peering() {
    let text = std::fs::read_to_string("examples/pe-l3.toml").unwrap();
    let reloaded = |r: &Rig, keep: bool| {
        let next = config::load_str(
            &text.replacen("dscp = \"preserve\"", "dscp = \"reset\"", 1),
            Path::new("examples/pe-l3.toml"),
        )
        .unwrap_or_else(|d| panic!("{d}"));
        let running_cfg = config::load_str(&text, Path::new("x")).unwrap();
        let running = config::port_specs(&running_cfg);
        let layout = config::PortLayout::of(&running_cfg);
        let mut prepared =
            xconnect::runtime::reload::prepare(&running, &layout, next, 1, 256).unwrap();
        if keep {
            xconnect::runtime::reload::adopt_tables(&mut prepared.plan, &r.plan);
        }
        Arc::new(prepared.plan)
    };
    let mut r = rig();
    r.links.set(TRUNK_B as u16, false);
    for sport in 1..=2 {
        r.ports[CUSTOMER].inject(&to_unresolved(sport));
    }
    pump(&mut r.pipeline, &mut r.ports);
    assert_eq!(r.ports[TRUNK_A].take_sent().len(), 1, "the ARP request");
    assert_eq!(r.pipeline.held(), 2);
    let next = reloaded(&r, true);
    r.pipeline.set_plan(next.clone());
    r.plan = next;
    assert_eq!(r.pipeline.held(), 2, "kept across the reload");
    r.ports[TRUNK_A].inject(&arp(
        &trunk_tags(200),
        MSEE_A,
        2,
        "192.0.2.2".parse().unwrap(),
        "192.0.2.1".parse().unwrap(),
    ));
    pump(&mut r.pipeline, &mut r.ports);
    let ports: Vec<u16> = r.ports[TRUNK_A]
        .take_sent()
        .iter()
        .map(|f| udp_src_port(f))
        .collect();
    assert_eq!(ports, [1, 2]);
    let c = r.pipeline.counters();
    assert_eq!((c.held, c.total_drops()), (0, 0));

    // A plan whose peering has other tables (nothing adopted): dropped.
    let mut r = rig();
    r.links.set(TRUNK_B as u16, false);
    r.ports[CUSTOMER].inject(&to_unresolved(3));
    pump(&mut r.pipeline, &mut r.ports);
    assert_eq!(r.pipeline.held(), 1);
    r.pipeline.set_plan(reloaded(&r, false));
    assert_eq!(r.pipeline.held(), 0);
    let c = r.pipeline.counters();
    assert_eq!(
        (c.held, c.drops_for(DropReason::NeighborUnresolved)),
        (0, 1)
    );
}

/// The hold queue is bounded and timed: past the per-neighbour limit a
/// packet is dropped as unresolved; a neighbour that never answers is
/// asked again every 500 ms, and its packets are dropped after 3 s — each
/// counted once.
#[test]
fn held_packets_are_bounded_and_expire() {
    use xconnect::pipeline::l3::hold::{HOLD_MS, HOLD_PER_NEIGHBOR};
    let mut r = rig();
    r.links.set(TRUNK_B as u16, false);
    let n = HOLD_PER_NEIGHBOR as u16 + 2;
    for sport in 0..n {
        r.ports[CUSTOMER].inject(&to_unresolved(sport));
    }
    pump(&mut r.pipeline, &mut r.ports);
    assert_eq!(r.pipeline.held(), HOLD_PER_NEIGHBOR);
    let c = r.pipeline.counters();
    assert_eq!(c.drops_for(DropReason::NeighborUnresolved), 2);
    assert_eq!(r.ports[TRUNK_A].take_sent().len(), 1, "one request");
    // 600 ms on, still no answer: one more request (sent by the release
    // that follows any batch; here an unrelated ARP from the customer).
    let nudge = || {
        arp(
            &[t(10)],
            CE,
            1,
            "203.0.113.2".parse().unwrap(),
            "203.0.113.9".parse().unwrap(),
        )
    };
    r.pipeline.set_time_ms(Some(1_600));
    r.ports[CUSTOMER].inject(&nudge());
    pump(&mut r.pipeline, &mut r.ports);
    let out = r.ports[TRUNK_A].take_sent();
    assert_eq!(out.len(), 1);
    assert_eq!(wire::parse(&out[0]).unwrap().l3, L3::Arp);
    assert_eq!(r.pipeline.held(), HOLD_PER_NEIGHBOR);
    // Past the hold time: every held packet is dropped as unresolved.
    r.pipeline.set_time_ms(Some(1_000 + HOLD_MS + 1));
    r.ports[CUSTOMER].inject(&nudge());
    pump(&mut r.pipeline, &mut r.ports);
    assert_eq!(r.pipeline.held(), 0);
    let c = r.pipeline.counters();
    assert_eq!(c.drops_for(DropReason::NeighborUnresolved), n as u64);
    assert_eq!(c.held, 0);
    assert_eq!(c.total_rx(), c.total_tx() + c.total_drops() + c.local);
    assert!(
        r.ports[TRUNK_A].take_sent().is_empty(),
        "nothing sent for them"
    );
}

#[test]
fn vrfs_are_isolated() {
    let mut r = rig();
    learn_msees(&mut r, 200, "192.0.2.2", "192.0.2.6");
    learn_msees(&mut r, 300, "198.51.100.2", "198.51.100.6");
    // A private-peering destination sent on Microsoft peering: no route there.
    r.ports[CUSTOMER].inject(&ip_frame(
        &[t(20)],
        CE,
        "203.0.113.6",
        "198.51.100.200",
        64,
        0,
        1,
    ));
    // A Microsoft-peering destination sent on private peering.
    r.ports[CUSTOMER].inject(&ip_frame(
        &[t(10)],
        CE,
        "203.0.113.2",
        "198.51.100.70",
        64,
        0,
        1,
    ));
    pump(&mut r.pipeline, &mut r.ports);
    let s = sent_all(&mut r);
    assert!(
        s[1].is_empty() && s[2].is_empty(),
        "nothing reaches a trunk"
    );
    // Each gets an ICMP unreachable from its own peering's address, on its own VLAN.
    assert_eq!(s[0].len(), 2);
    for f in &s[0] {
        let i = wire::parse(f).unwrap();
        let ip = wire::ipv4::Ipv4Packet::new_checked(&f[18..], 18).unwrap();
        let own = if i.tags.vid(0) == 20 {
            Ipv4Addr::new(203, 0, 113, 5)
        } else {
            Ipv4Addr::new(203, 0, 113, 1)
        };
        assert_eq!(ip.src(), own);
        assert_eq!(f[38], 3);
    }
    assert_eq!(
        r.pipeline.counters().drops_for(DropReason::NoRoute),
        0,
        "answered, not dropped"
    );
}

#[test]
fn echo_to_our_address() {
    let mut r = rig();
    let mut s = FrameSpec::udp(
        &[t(10)],
        "203.0.113.2".parse().unwrap(),
        "203.0.113.1".parse().unwrap(),
        (0, 0),
        0,
        100,
    );
    if let Payload::Ip { protocol, .. } = &mut s.payload {
        *protocol = 1;
    }
    s.src_mac = MAC_A;
    s.dst_mac = r.plan.ports[CUSTOMER].mac;
    r.ports[CUSTOMER].inject(&s.build());
    pump(&mut r.pipeline, &mut r.ports);
    let out = r.ports[CUSTOMER].take_sent();
    assert_eq!(out.len(), 1);
    let ip = wire::ipv4::Ipv4Packet::new_checked(&out[0][18..], 18).unwrap();
    assert!(ip.verify_checksum());
    assert_eq!(
        (ip.src(), ip.dst()),
        (Ipv4Addr::new(203, 0, 113, 1), Ipv4Addr::new(203, 0, 113, 2))
    );
    assert_eq!(out[0][38], 0, "echo reply");
    assert_eq!(
        checksum::checksum(&out[0][38..18 + ip.total_len() as usize]),
        0
    );
    assert_eq!(r.pipeline.counters().l3.echo_replies, 1);
}

#[test]
fn route_updates_during_traffic() {
    let mut r = rig();
    learn_msees(&mut r, 200, "192.0.2.2", "192.0.2.6");
    let table = r
        .plan
        .route_table("contoso-ams", PeeringKind::Private)
        .unwrap();
    let send = |r: &mut Rig, n: u16| -> (usize, usize, usize) {
        for flow in 0..n {
            r.ports[CUSTOMER].inject(&ip_frame(
                &[t(10)],
                CE,
                "203.0.113.2",
                "198.51.100.10",
                64,
                0,
                flow,
            ));
        }
        pump(&mut r.pipeline, &mut r.ports);
        let s = sent_all(r);
        (s[0].len(), s[1].len(), s[2].len())
    };
    // No route yet: ICMP unreachable to the customer.
    assert_eq!(send(&mut r, 8), (8, 0, 0));
    let p: ipnet::IpNet = "198.51.100.0/25".parse().unwrap();
    table
        .lock()
        .unwrap()
        .add(p, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 6)))
        .unwrap();
    assert_eq!(send(&mut r, 8), (0, 0, 8));
    table
        .lock()
        .unwrap()
        .replace(p, "192.0.2.2".parse().unwrap())
        .unwrap();
    assert_eq!(send(&mut r, 8), (0, 8, 0));
    // More specific wins; deleting it reveals the covering route.
    table
        .lock()
        .unwrap()
        .add(
            "198.51.100.0/28".parse().unwrap(),
            "192.0.2.6".parse().unwrap(),
        )
        .unwrap();
    assert_eq!(send(&mut r, 8), (0, 0, 8));
    table
        .lock()
        .unwrap()
        .delete("198.51.100.0/28".parse().unwrap(), None)
        .unwrap();
    assert_eq!(send(&mut r, 8), (0, 8, 0));
    // Over the private IPv6 limit (100 distinct prefixes advertised toward
    // Microsoft: via the customer on the access link): the peering's routes
    // go down, connected stay.
    let many: Vec<(ipnet::IpNet, IpAddr)> = (0..101u16)
        .map(|i| {
            (
                format!("2001:db8:{:x}::/48", 0x1000 + i).parse().unwrap(),
                "2001:db8:ff::2".parse().unwrap(),
            )
        })
        .chain([(p, "192.0.2.2".parse().unwrap())])
        .collect();
    table.lock().unwrap().bulk_load(&many).unwrap();
    let st = table.lock().unwrap().state();
    assert!(st.over_limit);
    assert_eq!(st.limit_events, 1);
    assert_eq!(send(&mut r, 4), (4, 0, 0), "routes withdrawn: unreachable");
    table.lock().unwrap().bulk_load(&many[100..]).unwrap();
    assert!(!table.lock().unwrap().state().over_limit);
    assert_eq!(send(&mut r, 4), (0, 4, 0));
}

/// Promiscuous ports see frames for other stations too: an l3 attachment
/// routes only unicast frames addressed to its own MAC (broadcast ARP and
/// multicast ND are still answered, by the ARP and ND tests above), and
/// counts the others, IP sent to group MACs included.
#[test]
fn unicast_to_another_mac_is_not_routed() {
    let mut r = rig();
    let ours = ip_frame(&[t(10)], CE, "203.0.113.2", "198.51.100.200", 64, 0, 7);
    assert_eq!(
        &ours[..6],
        &r.plan.ports[CUSTOMER].mac,
        "the rig addresses us"
    );
    let foreign = addressed(ours.clone(), [0x02, 0, 0, 0, 0, 0x99]);
    // On the trunk, the customer port's MAC is another station's too.
    let wrong_port = addressed(
        ip_frame(
            &trunk_tags(200),
            MSEE_B,
            "198.51.100.200",
            "203.0.113.200",
            30,
            0,
            1,
        ),
        r.plan.ports[CUSTOMER].mac,
    );
    // IP sent to a group MAC is not routed either (RFC 1812 §5.3.4):
    // IPv4 to the broadcast MAC, IPv6 with a unicast destination to a
    // 33:33 multicast MAC.
    let broadcast = addressed(ours.clone(), [0xff; 6]);
    let mut v6 = FrameSpec::udp(
        &[t(10)],
        "2001:db8:ff::2".parse().unwrap(),
        "2001:db8:100::9".parse().unwrap(),
        (1, 2),
        0,
        120,
    );
    v6.src_mac = CE;
    v6.dst_mac = [0x33, 0x33, 0, 0, 0, 1];
    r.ports[CUSTOMER].inject(&foreign);
    r.ports[TRUNK_B].inject(&wrong_port);
    r.ports[CUSTOMER].inject(&broadcast);
    r.ports[CUSTOMER].inject(&v6.build());
    pump(&mut r.pipeline, &mut r.ports);
    let s = sent_all(&mut r);
    assert!(s.iter().all(|p| p.is_empty()), "nothing leaves: {s:?}");
    let c = r.pipeline.counters();
    assert_eq!(c.drops_for(DropReason::NotOurMac), 4);
    assert_eq!(c.l3.icmp_errors, 0, "no ICMP for frames not sent to us");
    // The same frame to our MAC is routed (towards an unresolved next hop:
    // the ARP request leaves a trunk).
    r.ports[CUSTOMER].inject(&ours);
    pump(&mut r.pipeline, &mut r.ports);
    let s = sent_all(&mut r);
    assert!(s[TRUNK_A].len() + s[TRUNK_B].len() >= 1, "{s:?}");
    assert_eq!(r.pipeline.counters().drops_for(DropReason::NotOurMac), 4);
}
