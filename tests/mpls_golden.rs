//! The any-to-any (IPVPN) model over `io::mem` with `examples/pe-ipvpn.toml`:
//! L3VPN in and out on both peerings (labels popped and pushed, TTL
//! uniform, TC from DSCP), isolation between VPN labels, unknown labels
//! dropped and counted, the transport label on top, replies behind the
//! labels, the Ethernet pseudowire both ways (with the control word), and
//! failover of a trunk.

use std::path::Path;
use std::sync::Arc;
use xconnect::config;
use xconnect::driver::pump;
use xconnect::frame::DropReason;
use xconnect::gen::{FrameSpec, Payload};
use xconnect::io::mem::MemPort;
use xconnect::pipeline::{LinkState, Pipeline};
use xconnect::plan::Plan;
use xconnect::wire::mpls::{LabelEntry, LabelStack, ETHERTYPE_MPLS};
use xconnect::wire::{self, checksum, Tpid, VlanTag, L3};

const WAN: usize = 0;
const TRUNK_A: usize = 1;
const TRUNK_B: usize = 2;
const BACKBONE: [u8; 6] = [0x02, 0, 0, 0, 0, 0xb1];
const MSEE_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xa1];
const MSEE_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0xa2];
const SITE: [u8; 6] = [0x02, 0, 0, 0, 0, 0x51];

struct Rig {
    plan: Arc<Plan>,
    pipeline: Pipeline,
    ports: Vec<MemPort>,
    links: LinkState,
}

fn rig() -> Rig {
    let path = Path::new("examples/pe-ipvpn.toml");
    let cfg = config::load(path).unwrap_or_else(|d| panic!("{d}"));
    let plan = Arc::new(config::compile(&cfg));
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    let links = LinkState::new(plan.ports.len());
    let mut pipeline = Pipeline::new(plan.clone(), links.clone());
    pipeline.set_time_ms(Some(1_000));
    let mut r = Rig {
        ports: vec![MemPort::new(); plan.ports.len()],
        plan,
        pipeline,
        links,
    };
    // The MSEEs announce themselves on both peerings' trunks.
    for (c_tag, a, b, us_a, us_b) in [
        (200, "192.0.2.2", "192.0.2.6", "192.0.2.1", "192.0.2.5"),
        (
            300,
            "198.51.100.2",
            "198.51.100.6",
            "198.51.100.1",
            "198.51.100.5",
        ),
    ] {
        r.ports[TRUNK_A].inject(&arp(&qinq(100, c_tag), MSEE_A, a, us_a));
        r.ports[TRUNK_B].inject(&arp(&qinq(100, c_tag), MSEE_B, b, us_b));
    }
    pump(&mut r.pipeline, &mut r.ports);
    assert_eq!(r.ports[TRUNK_A].take_sent().len(), 2);
    assert_eq!(r.ports[TRUNK_B].take_sent().len(), 2);
    r
}

fn qinq(s: u16, c: u16) -> Vec<VlanTag> {
    vec![
        VlanTag::from_tci(Tpid::DOT1Q, s),
        VlanTag::from_tci(Tpid::DOT1Q, c),
    ]
}

fn arp(tags: &[VlanTag], mac: [u8; 6], sender: &str, target: &str) -> Vec<u8> {
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
        operation: 1,
        sender_mac: mac,
        sender_ip: sender.parse().unwrap(),
        target_mac: [0; 6],
        target_ip: target.parse().unwrap(),
    }
    .emit(&mut f[l3..])
    .unwrap();
    f
}

/// An IP frame (UDP) with `tags`, from `src_mac` to `dst_mac`.
#[allow(clippy::too_many_arguments)]
fn ip(
    tags: &[VlanTag],
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: &str,
    dst: &str,
    ttl: u8,
    dscp: u8,
) -> Vec<u8> {
    let mut s = FrameSpec::udp(
        tags,
        src.parse().unwrap(),
        dst.parse().unwrap(),
        (4000, 443),
        dscp << 2,
        100,
    );
    s.dst_mac = dst_mac;
    s.src_mac = src_mac;
    if let Payload::Ip { ttl: ref mut t, .. } = s.payload {
        *t = ttl;
    }
    s.build()
}

/// `inner` (an untagged frame) behind labels: L3VPN when `pw` is false
/// (the IP packet under the labels, MACs from `inner`), else a pseudowire
/// (the whole frame, behind `cw` and a new Ethernet header to our MAC).
fn labelled(inner: &[u8], labels: &[(u32, u8)], pw: bool, cw: bool, to: [u8; 6]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&to);
    f.extend_from_slice(&BACKBONE);
    f.extend_from_slice(&ETHERTYPE_MPLS.to_be_bytes());
    for (k, (label, ttl)) in labels.iter().enumerate() {
        let w = label << 12 | u32::from(k + 1 == labels.len()) << 8 | u32::from(*ttl);
        f.extend_from_slice(&w.to_be_bytes());
    }
    if pw {
        if cw {
            f.extend_from_slice(&[0; 4]);
        }
        f.extend_from_slice(inner);
    } else {
        f.extend_from_slice(&inner[14..]);
    }
    f
}

fn our_mac(r: &Rig, port: usize) -> [u8; 6] {
    r.plan.ports[port].mac
}

fn drops(r: &Rig, why: DropReason) -> u64 {
    r.pipeline.counters().drops[why.index()]
}

fn ipv4_ok(f: &[u8], l3: usize) -> bool {
    checksum::checksum(&f[l3..l3 + 20]) == 0
}

fn sent(r: &mut Rig) -> [Vec<Vec<u8>>; 3] {
    [
        r.ports[WAN].take_sent(),
        r.ports[TRUNK_A].take_sent(),
        r.ports[TRUNK_B].take_sent(),
    ]
}

#[test]
fn l3vpn_to_the_trunks_pops_labels_and_routes_by_the_peerings_table() {
    let mut r = rig();
    let us = our_mac(&r, WAN);
    let inner = ip(&[], us, BACKBONE, "203.0.113.70", "198.51.100.129", 64, 46);
    // PHP'd (VPN label only), and with our transport label on top; label
    // TTL 30 is below the IP TTL: uniform model, the IP TTL becomes 30.
    r.ports[WAN].inject(&labelled(&inner, &[(1001, 30)], false, false, us));
    r.ports[WAN].inject(&labelled(
        &inner,
        &[(16001, 30), (1001, 31)],
        false,
        false,
        us,
    ));
    pump(&mut r.pipeline, &mut r.ports);
    let [wan, a, b] = sent(&mut r);
    assert!(wan.is_empty());
    let out: Vec<Vec<u8>> = a.into_iter().chain(b).collect();
    assert_eq!(out.len(), 2, "both routed to a trunk");
    for f in &out {
        let i = wire::parse(f).unwrap();
        assert_eq!(i.tags.vids(), [100, 200, 0]);
        assert_eq!(i.l3, L3::Ipv4);
        assert_eq!(i.ttl, 29, "min(IP 64, label 30) - 1");
        assert_eq!(i.dscp().get(), 46, "private peering preserves DSCP");
        assert!(ipv4_ok(f, i.l3_offset as usize));
        assert!(f[6..12] == our_mac(&r, TRUNK_A) || f[6..12] == our_mac(&r, TRUNK_B));
        assert_eq!(
            &f[i.l3_offset as usize + 20..],
            &inner[34..],
            "payload untouched"
        );
    }
    assert_eq!(r.pipeline.counters().l3.routed, 2);
}

#[test]
fn trunk_to_l3vpn_pushes_transport_and_vpn_labels_with_tc_and_ttl() {
    let mut r = rig();
    let to_us = our_mac(&r, TRUNK_A);
    // Private peering: to the branch behind the remote PE (203.0.113.64/26
    // via 203.0.113.2, the L3VPN access side). DSCP AF41 → class 4.
    let f = ip(
        &qinq(100, 200),
        to_us,
        MSEE_A,
        "198.51.100.129",
        "203.0.113.70",
        50,
        34,
    );
    r.ports[TRUNK_A].inject(&f);
    // Microsoft peering: DSCP EF (class 5) and CS6 (class 6 → TC 5 by its map).
    for dscp in [46, 48] {
        let f = ip(
            &qinq(100, 300),
            to_us,
            MSEE_A,
            "198.51.100.133",
            "203.0.113.140",
            50,
            dscp,
        );
        r.ports[TRUNK_A].inject(&f);
    }
    pump(&mut r.pipeline, &mut r.ports);
    let [wan, a, b] = sent(&mut r);
    assert!(a.is_empty() && b.is_empty());
    assert_eq!(wan.len(), 3, "{:?}", r.pipeline.counters().drops);
    for (f, (vpn, tc)) in wan.iter().zip([(2001, 4), (2002, 5), (2002, 5)]) {
        assert_eq!(&f[..6], &BACKBONE, "to the backbone router");
        assert_eq!(&f[6..12], &our_mac(&r, WAN));
        assert_eq!(&f[12..14], &ETHERTYPE_MPLS.to_be_bytes());
        let stack = LabelStack::parse(&f[14..], 14).unwrap();
        let e = stack.as_slice();
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[0].label.value(), e[0].tc, e[0].bottom, e[0].ttl),
            (16002, tc, false, 49)
        );
        assert_eq!(
            (e[1].label.value(), e[1].tc, e[1].bottom, e[1].ttl),
            (vpn, tc, true, 49)
        );
        // The IP packet right under the labels, TTL decremented once.
        assert_eq!(f[22] >> 4, 4);
        assert_eq!(f[22 + 8], 49);
        assert!(ipv4_ok(f, 22));
    }
    // The Microsoft peering's ExpressRoute marker kept EF, reset CS6.
    assert_eq!(wan[1][22 + 1] >> 2, 46);
}

#[test]
fn a_label_reaches_only_its_own_peerings_table() {
    let mut r = rig();
    let us = our_mac(&r, WAN);
    // Microsoft peering's label to the private peering's VNet: its table
    // has no such route. And the other way round.
    let to_vnet = ip(&[], us, BACKBONE, "203.0.113.140", "198.51.100.129", 64, 0);
    r.ports[WAN].inject(&labelled(&to_vnet, &[(1002, 64)], false, false, us));
    let to_m365 = ip(&[], us, BACKBONE, "203.0.113.70", "198.51.100.133", 64, 0);
    r.ports[WAN].inject(&labelled(&to_m365, &[(1001, 64)], false, false, us));
    pump(&mut r.pipeline, &mut r.ports);
    let [wan, a, b] = sent(&mut r);
    // Nothing reached a trunk; each got its unreachable back over its own labels.
    assert!(a.is_empty() && b.is_empty(), "{a:?} {b:?}");
    assert_eq!(r.pipeline.counters().l3.icmp_errors, 2);
    assert_eq!(wan.len(), 2);
    for (f, vpn) in wan.iter().zip([2002, 2001]) {
        let e = LabelStack::parse(&f[14..], 14).unwrap();
        assert_eq!(e.bottom().unwrap().label.value(), vpn);
        assert_eq!(f[22 + 9], 1, "ICMP");
        assert_eq!(f[22 + 20], 3, "destination unreachable");
    }
}

#[test]
fn unknown_labels_are_dropped_and_counted() {
    let mut r = rig();
    let us = our_mac(&r, WAN);
    let inner = ip(&[], us, BACKBONE, "203.0.113.70", "198.51.100.129", 64, 0);
    // A label nobody owns; another PE's transport label on top; three
    // labels; a label stack cut short.
    r.ports[WAN].inject(&labelled(&inner, &[(1999, 64)], false, false, us));
    r.ports[WAN].inject(&labelled(
        &inner,
        &[(16009, 64), (1001, 64)],
        false,
        false,
        us,
    ));
    r.ports[WAN].inject(&labelled(
        &inner,
        &[(16001, 64), (16001, 64), (1001, 64)],
        false,
        false,
        us,
    ));
    let cut = labelled(&inner, &[(16001, 64), (1001, 64)], false, false, us);
    r.ports[WAN].inject(&cut[..17]);
    // A label of the pseudowire with no control word under it (the inner
    // destination MAC's first nibble, 4, is not a control word's 0).
    let plain = ip(
        &[],
        [0x42, 0, 0, 0, 0, 9],
        SITE,
        "192.0.2.77",
        "192.0.2.78",
        64,
        0,
    );
    r.ports[WAN].inject(&labelled(&plain, &[(1101, 255)], true, false, us));
    pump(&mut r.pipeline, &mut r.ports);
    assert!(sent(&mut r).iter().all(Vec::is_empty));
    assert_eq!(drops(&r, DropReason::UnknownLabel), 3);
    assert_eq!(drops(&r, DropReason::Malformed), 2);
}

#[test]
fn echo_and_ttl_expiry_answer_behind_the_labels() {
    let mut r = rig();
    let us = our_mac(&r, WAN);
    let mut echo = FrameSpec::udp(
        &[],
        "203.0.113.2".parse().unwrap(),
        "203.0.113.1".parse().unwrap(),
        (0, 0),
        0,
        100,
    );
    if let Payload::Ip { protocol, .. } = &mut echo.payload {
        *protocol = 1;
    }
    echo.dst_mac = us;
    echo.src_mac = BACKBONE;
    r.ports[WAN].inject(&labelled(&echo.build(), &[(1001, 64)], false, false, us));
    let dying = ip(&[], us, BACKBONE, "203.0.113.70", "198.51.100.129", 64, 0);
    r.ports[WAN].inject(&labelled(&dying, &[(1001, 1)], false, false, us));
    pump(&mut r.pipeline, &mut r.ports);
    let [wan, a, b] = sent(&mut r);
    assert!(a.is_empty() && b.is_empty());
    assert_eq!(wan.len(), 2);
    for (f, icmp_type) in wan.iter().zip([0u8, 11]) {
        assert_eq!(&f[..6], &BACKBONE);
        let e = LabelStack::parse(&f[14..], 14).unwrap();
        let labels: Vec<u32> = e.as_slice().iter().map(|x| x.label.value()).collect();
        assert_eq!(labels, [16002, 2001]);
        assert_eq!(f[22 + 20], icmp_type);
        assert!(ipv4_ok(f, 22));
    }
    assert_eq!(r.pipeline.counters().l3.icmp_errors, 1);
    assert_eq!(r.pipeline.counters().l3.echo_replies, 1);
}

#[test]
fn pseudowire_carries_a_sites_frames_both_ways() {
    let mut r = rig();
    let us = our_mac(&r, WAN);
    // The second site's frame, as its CE sent it (any MACs, untagged).
    let site = ip(
        &[],
        [2, 0, 0, 0, 0, 0x99],
        SITE,
        "192.0.2.9",
        "192.0.2.10",
        64,
        26,
    );
    r.ports[WAN].inject(&labelled(&site, &[(1101, 255)], true, true, us));
    r.ports[WAN].inject(&labelled(
        &site,
        &[(16001, 255), (1101, 254)],
        true,
        true,
        us,
    ));
    pump(&mut r.pipeline, &mut r.ports);
    let [wan, a, b] = sent(&mut r);
    assert!(wan.is_empty());
    let out: Vec<Vec<u8>> = a.into_iter().chain(b).collect();
    assert_eq!(out.len(), 2);
    for f in &out {
        let i = wire::parse(f).unwrap();
        assert_eq!(i.tags.vids(), [101, 200, 0]);
        // Untouched apart from the tags.
        assert_eq!(&f[..12], &site[..12]);
        assert_eq!(&f[20..], &site[12..]);
    }
    // And back: the MSEE side's frame to the site, tags popped, behind the
    // outer header, pseudowire label (TTL 255, TC from DSCP class) and the
    // control word.
    let back = ip(
        &qinq(101, 200),
        SITE,
        [2, 0, 0, 0, 0, 0x99],
        "192.0.2.10",
        "192.0.2.9",
        64,
        46,
    );
    r.ports[TRUNK_B].inject(&back);
    // A non-IP frame: TC from the PCP of its outer tag.
    let mut tags = qinq(101, 200);
    tags[0].pcp = 3;
    let raw = FrameSpec {
        dst_mac: SITE,
        src_mac: [2, 0, 0, 0, 0, 0x99],
        tags,
        payload: Payload::Raw(0x88b5),
        wire_len: 80,
    }
    .build();
    r.ports[TRUNK_A].inject(&raw);
    pump(&mut r.pipeline, &mut r.ports);
    let [wan, _, _] = sent(&mut r);
    assert_eq!(wan.len(), 2);
    for (f, (inner, tc)) in wan.iter().zip([(&raw, 3u8), (&back, 5)]) {
        assert_eq!(&f[..6], &BACKBONE);
        assert_eq!(&f[6..12], &us);
        assert_eq!(&f[12..14], &ETHERTYPE_MPLS.to_be_bytes());
        let e = LabelEntry::parse(&f[14..], 14).unwrap();
        assert_eq!(
            (e.label.value(), e.tc, e.bottom, e.ttl),
            (2101, tc, true, 255)
        );
        assert_eq!(&f[18..22], &[0; 4], "control word");
        assert_eq!(&f[22..34], &inner[..12]);
        assert_eq!(&f[34..], &inner[20..], "tags popped, rest untouched");
    }
}

#[test]
fn a_trunk_down_fails_over_to_the_other_for_l3vpn_and_pseudowire() {
    let mut r = rig();
    let us = our_mac(&r, WAN);
    r.links.set(TRUNK_A as u16, false);
    for k in 0..16u8 {
        let src = format!("203.0.113.{}", 65 + k);
        let inner = ip(&[], us, BACKBONE, &src, "198.51.100.129", 64, 0);
        r.ports[WAN].inject(&labelled(&inner, &[(1001, 64)], false, false, us));
        let site = ip(
            &[],
            [2, 0, 0, 0, 0, 0x99],
            SITE,
            &format!("192.0.2.{}", 100 + k),
            "192.0.2.10",
            64,
            0,
        );
        r.ports[WAN].inject(&labelled(&site, &[(1101, 255)], true, true, us));
    }
    pump(&mut r.pipeline, &mut r.ports);
    let [_, a, b] = sent(&mut r);
    assert!(a.is_empty(), "trunk-a is down");
    assert_eq!(b.len(), 32);
    r.links.set(TRUNK_A as u16, true);
    for k in 0..16u8 {
        let src = format!("203.0.113.{}", 65 + k);
        let inner = ip(&[], us, BACKBONE, &src, "198.51.100.129", 64, 0);
        r.ports[WAN].inject(&labelled(&inner, &[(1001, 64)], false, false, us));
    }
    pump(&mut r.pipeline, &mut r.ports);
    let [_, a, b] = sent(&mut r);
    assert_eq!(a.len() + b.len(), 16);
    assert!(!a.is_empty() && !b.is_empty(), "both trunks again (ECMP)");
}
