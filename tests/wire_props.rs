//! Property tests of the wire layer: our one-pass parse agrees with
//! etherparse on generated frames (0-3 tags of every TPID, IPv4 with and
//! without options and fragments, IPv6 with extension headers,
//! TCP/UDP/ICMP/ARP, truncated at every length); no panic on arbitrary
//! bytes; marking changes only the DSCP bits and leaves a valid checksum.

use etherparse::{LinkExtSlice, NetSlice, SlicedPacket, TransportSlice};
use proptest::prelude::*;
use std::net::IpAddr;
use xconnect::qos::{DscpAction, DscpPolicy, Marker};
use xconnect::wire::{self, checksum, Dscp, FrameInfo, L3};

#[derive(Debug, Clone)]
struct Tag {
    tpid: u16,
    tci: u16,
}

#[derive(Debug, Clone)]
enum Net {
    V4 {
        tos: u8,
        options: Vec<u8>,
        frag: u16,
        ttl: u8,
        src: [u8; 4],
        dst: [u8; 4],
    },
    V6 {
        tc: u8,
        exts: Vec<(u8, Vec<u8>)>,
        frag: Option<u16>,
        hop: u8,
        src: [u8; 16],
        dst: [u8; 16],
    },
    Arp {
        op: u16,
        spa: [u8; 4],
        tpa: [u8; 4],
    },
    Other(u16),
}

#[derive(Debug, Clone)]
enum Transport {
    Udp(u16, u16),
    Tcp(u16, u16, u8),
    Icmp(u8, u8),
    Raw(u8),
}

#[derive(Debug, Clone)]
struct Spec {
    tags: Vec<Tag>,
    net: Net,
    transport: Transport,
    payload: Vec<u8>,
}

fn tag() -> impl Strategy<Value = Tag> {
    (
        prop_oneof![Just(0x8100u16), Just(0x88a8), Just(0x9100)],
        any::<u16>(),
    )
        .prop_map(|(tpid, tci)| Tag { tpid, tci })
}

fn net() -> impl Strategy<Value = Net> {
    prop_oneof![
        4 => (any::<u8>(), prop_oneof![Just(0usize), 1usize..=10], prop_oneof![Just(0u16), Just(0x4000), Just(0x2000), Just(0x0010), any::<u16>()], any::<u8>(), any::<[u8; 4]>(), any::<[u8; 4]>())
            .prop_map(|(tos, words, frag, ttl, src, dst)| Net::V4 { tos, options: vec![1u8; words * 4], frag, ttl, src, dst }),
        3 => (any::<u8>(), proptest::collection::vec((prop_oneof![Just(0u8), Just(60), Just(43)], 0usize..3), 0..3),
              proptest::option::of(prop_oneof![Just(0u16), Just(1), Just(8), any::<u16>()]), any::<u8>(), any::<[u8; 16]>(), any::<[u8; 16]>())
            .prop_map(|(tc, exts, frag, hop, src, dst)| Net::V6 { tc, exts: exts.into_iter().map(|(t, n)| (t, vec![0u8; 6 + 8 * n])).collect(), frag, hop, src, dst }),
        1 => (1u16..=2, any::<[u8; 4]>(), any::<[u8; 4]>()).prop_map(|(op, spa, tpa)| Net::Arp { op, spa, tpa }),
        1 => prop_oneof![Just(0x88b5u16), Just(0x88cc), Just(0x0842)].prop_map(Net::Other),
    ]
}

fn transport() -> impl Strategy<Value = Transport> {
    prop_oneof![
        (any::<u16>(), any::<u16>()).prop_map(|(s, d)| Transport::Udp(s, d)),
        (any::<u16>(), any::<u16>(), 5u8..=8).prop_map(|(s, d, o)| Transport::Tcp(s, d, o)),
        (any::<u8>(), any::<u8>()).prop_map(|(t, c)| Transport::Icmp(t, c)),
        prop_oneof![Just(47u8), Just(50), Just(132)].prop_map(Transport::Raw),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        proptest::collection::vec(tag(), 0..=3),
        net(),
        transport(),
        proptest::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(|(tags, net, transport, payload)| Spec {
            tags,
            net,
            transport,
            payload,
        })
}

fn l4_bytes(t: &Transport, v6: bool, payload: &[u8]) -> (u8, Vec<u8>) {
    let mut b = Vec::new();
    let proto = match t {
        Transport::Udp(s, d) => {
            b.extend_from_slice(&s.to_be_bytes());
            b.extend_from_slice(&d.to_be_bytes());
            b.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
            b.extend_from_slice(&[0, 0]);
            17
        }
        Transport::Tcp(s, d, off) => {
            b.extend_from_slice(&s.to_be_bytes());
            b.extend_from_slice(&d.to_be_bytes());
            b.extend_from_slice(&[0; 8]);
            b.push(off << 4);
            b.push(0x10);
            b.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
            b.resize(*off as usize * 4, 1); // NOP options
            6
        }
        Transport::Icmp(ty, code) => {
            b.extend_from_slice(&[*ty, *code, 0, 0, 0, 0, 0, 0]);
            if v6 {
                58
            } else {
                1
            }
        }
        Transport::Raw(p) => *p,
    };
    b.extend_from_slice(payload);
    (proto, b)
}

fn build(s: &Spec) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    for t in &s.tags {
        f.extend_from_slice(&t.tpid.to_be_bytes());
        f.extend_from_slice(&t.tci.to_be_bytes());
    }
    match &s.net {
        Net::V4 {
            tos,
            options,
            frag,
            ttl,
            src,
            dst,
        } => {
            f.extend_from_slice(&[0x08, 0x00]);
            let (proto, l4) = l4_bytes(&s.transport, false, &s.payload);
            let hlen = 20 + options.len();
            let mut h = vec![0x40 | (hlen / 4) as u8, *tos];
            h.extend_from_slice(&((hlen + l4.len()) as u16).to_be_bytes());
            h.extend_from_slice(&[0x12, 0x34]);
            h.extend_from_slice(&frag.to_be_bytes());
            h.extend_from_slice(&[*ttl, proto, 0, 0]);
            h.extend_from_slice(src);
            h.extend_from_slice(dst);
            h.extend_from_slice(options);
            let c = checksum::checksum(&h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&h);
            f.extend_from_slice(&l4);
        }
        Net::V6 {
            tc,
            exts,
            frag,
            hop,
            src,
            dst,
        } => {
            f.extend_from_slice(&[0x86, 0xdd]);
            let (proto, l4) = l4_bytes(&s.transport, true, &s.payload);
            // Chain: exts..., fragment?, upper layer. Hop-by-hop only first.
            let mut chain: Vec<(u8, Vec<u8>)> = exts
                .iter()
                .enumerate()
                .filter(|(i, (t, _))| *t != 0 || *i == 0)
                .map(|(_, e)| e.clone())
                .collect();
            if let Some(fo) = frag {
                chain.push((44, {
                    let mut b = vec![0u8; 6];
                    b[0..2].copy_from_slice(&fo.to_be_bytes());
                    b
                }));
            }
            let mut ext_bytes = Vec::new();
            for (i, (_, body)) in chain.iter().enumerate() {
                let next = chain.get(i + 1).map_or(proto, |n| n.0);
                ext_bytes.push(next);
                ext_bytes.push(((body.len() + 2) / 8 - 1) as u8);
                ext_bytes.extend_from_slice(body);
            }
            let first = chain.first().map_or(proto, |c| c.0);
            let mut h = vec![0x60 | (tc >> 4), tc << 4, 0, 0];
            h.extend_from_slice(&((ext_bytes.len() + l4.len()) as u16).to_be_bytes());
            h.push(first);
            h.push(*hop);
            h.extend_from_slice(src);
            h.extend_from_slice(dst);
            f.extend_from_slice(&h);
            f.extend_from_slice(&ext_bytes);
            f.extend_from_slice(&l4);
        }
        Net::Arp { op, spa, tpa } => {
            f.extend_from_slice(&[0x08, 0x06]);
            let mut a = [0u8; 28];
            wire::ArpRepr {
                operation: *op,
                sender_mac: [2, 0, 0, 0, 0, 2],
                sender_ip: (*spa).into(),
                target_mac: [0; 6],
                target_ip: (*tpa).into(),
            }
            .emit(&mut a)
            .unwrap();
            f.extend_from_slice(&a);
        }
        Net::Other(et) => {
            f.extend_from_slice(&et.to_be_bytes());
            f.extend_from_slice(&s.payload);
        }
    }
    f
}

/// Compare our parse with etherparse's on one frame.
fn agree(frame: &[u8]) -> Result<(), TestCaseError> {
    let ours = wire::parse(frame);
    let theirs = SlicedPacket::from_ethernet(frame);
    match (&ours, &theirs) {
        (Ok(o), Ok(t)) => compare(o, t, frame),
        (Err(_), Err(_)) => Ok(()),
        (o, t) => Err(TestCaseError::fail(format!(
            "disagree on {} bytes {:02x?}:\n ours {o:?}\n etherparse {t:?}",
            frame.len(),
            frame
        ))),
    }
}

fn compare(o: &FrameInfo, t: &SlicedPacket<'_>, frame: &[u8]) -> Result<(), TestCaseError> {
    // Tags: TPID of tag i is the ethertype field that announced it.
    let mut tpid = u16::from_be_bytes([frame[12], frame[13]]);
    let vlans: Vec<_> = t
        .link_exts
        .iter()
        .filter_map(|e| match e {
            LinkExtSlice::Vlan(v) => Some(v.clone()),
            _ => None,
        })
        .collect();
    prop_assert_eq!(o.tags.len(), vlans.len());
    for (i, v) in vlans.iter().enumerate() {
        let ot = o.tags.get(i).unwrap();
        prop_assert_eq!(ot.tpid.0, tpid);
        prop_assert_eq!(ot.vid, v.vlan_identifier().value());
        prop_assert_eq!(ot.pcp, v.priority_code_point().value());
        prop_assert_eq!(ot.dei, v.drop_eligible_indicator());
        tpid = v.ether_type().0;
    }
    prop_assert_eq!(o.ethertype, tpid);
    match &t.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            prop_assert_eq!(o.l3, L3::Ipv4);
            prop_assert_eq!(o.dscp().get(), h.dcp().value());
            prop_assert_eq!(o.ecn(), h.ecn().value());
            prop_assert_eq!(o.ttl, h.ttl());
            prop_assert_eq!(o.fragment, ip.is_payload_fragmented());
            let (s, d) = xconnect::qos::marker::addresses(o, frame).unwrap();
            prop_assert_eq!(s, IpAddr::V4(h.source_addr()));
            prop_assert_eq!(d, IpAddr::V4(h.destination_addr()));
        }
        Some(NetSlice::Ipv6(ip)) => {
            let h = ip.header();
            prop_assert_eq!(o.l3, L3::Ipv6);
            prop_assert_eq!(o.tos, h.traffic_class());
            prop_assert_eq!(o.ttl, h.hop_limit());
            prop_assert_eq!(o.fragment, ip.is_payload_fragmented());
            let (s, d) = xconnect::qos::marker::addresses(o, frame).unwrap();
            prop_assert_eq!(s, IpAddr::V6(h.source_addr()));
            prop_assert_eq!(d, IpAddr::V6(h.destination_addr()));
        }
        Some(NetSlice::Arp(_)) => prop_assert_eq!(o.l3, L3::Arp),
        None => prop_assert_eq!(o.l3, L3::Other),
    }
    match &t.transport {
        Some(TransportSlice::Udp(u)) => {
            prop_assert!(o.has_ports);
            prop_assert_eq!(
                (o.src_port, o.dst_port),
                (u.source_port(), u.destination_port())
            );
        }
        Some(TransportSlice::Tcp(tc)) => {
            prop_assert!(o.has_ports);
            prop_assert_eq!(
                (o.src_port, o.dst_port),
                (tc.source_port(), tc.destination_port())
            );
        }
        _ => prop_assert!(!o.has_ports),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn agrees_with_etherparse_at_every_length(s in spec()) {
        let f = build(&s);
        for n in 0..=f.len() {
            agree(&f[..n])?;
        }
    }

    #[test]
    fn no_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(info) = wire::parse(&bytes) {
            let _ = xconnect::qos::marker::addresses(&info, &bytes);
        }
        let _ = wire::parse_tags(&bytes);
        xconnect::invariants::mpls_round_trip(&bytes);
        let _ = wire::ipv4::Ipv4Packet::new_checked(&bytes[..], 0).map(|p| (p.payload().len(), p.options().len(), p.verify_checksum()));
        let _ = wire::ipv6::Ipv6Packet::new_checked(&bytes[..], 0).map(|p| wire::ipv6::upper_layer(p.next_header(), p.payload(), 40));
        let _ = wire::arp::ArpPacket::new_checked(&bytes[..], 0).map(|a| a.target_ip());
        let _ = wire::l4::TcpHeader::new_checked(&bytes[..], 0).map(|t| t.flags());
        let mut b = wire::PacketBuf::new();
        b.load(&bytes);
        let _ = b.rewrite_tags(bytes.first().map_or(0, |x| (*x % 4) as usize), &[0x81, 0, 0, 1]);
    }

    #[test]
    fn marking_changes_only_dscp_and_keeps_checksum(s in spec(), action in 0u8..4, set in 0u8..64) {
        let mut f = build(&s);
        let Ok(mut info) = wire::parse(&f) else { return Ok(()) };
        let action = match action {
            0 => DscpAction::Preserve,
            1 => DscpAction::ExpressRoute,
            2 => DscpAction::Reset,
            _ => DscpAction::Set(Dscp::new(set).unwrap()),
        };
        let before = f.clone();
        let m = Marker::new(&DscpPolicy::plain(action));
        let r = m.apply(&mut info, &mut f);
        prop_assert_eq!(r.is_some(), info.is_ip());
        let l3 = info.l3_offset as usize;
        // Every byte outside the DSCP bits and the IPv4 checksum is unchanged.
        for i in 0..f.len() {
            let (mask_ok, is_csum) = match info.l3 {
                L3::Ipv4 => (i == l3 + 1, i == l3 + 10 || i == l3 + 11),
                L3::Ipv6 => (i == l3 || i == l3 + 1, false),
                _ => (false, false),
            };
            if is_csum { continue; }
            if mask_ok {
                let dscp_bits: u8 = match (info.l3, i - l3) {
                    (L3::Ipv4, 1) => 0xfc,
                    (L3::Ipv6, 0) => 0x0f,
                    (L3::Ipv6, 1) => 0xc0,
                    _ => 0,
                };
                prop_assert_eq!(f[i] & !dscp_bits, before[i] & !dscp_bits, "byte {} outside DSCP changed", i);
            } else {
                prop_assert_eq!(f[i], before[i], "byte {} changed", i);
            }
        }
        if info.l3 == L3::Ipv4 {
            let ip = wire::ipv4::Ipv4Packet::new_checked(&f[l3..], l3).unwrap();
            let hl = ip.header_len();
            prop_assert_eq!(checksum::checksum(&f[l3..l3 + hl]), 0, "checksum invalid after marking");
            let want = match action {
                DscpAction::Preserve => Dscp::from_tos(before[l3 + 1]),
                DscpAction::Reset => Dscp::CS0,
                DscpAction::Set(d) => d,
                DscpAction::ExpressRoute => {
                    let d = Dscp::from_tos(before[l3 + 1]);
                    if [0, 10, 18, 34, 46].contains(&d.get()) { d } else { Dscp::CS0 }
                }
            };
            prop_assert_eq!(ip.dscp(), want);
            prop_assert_eq!(ip.ecn(), before[l3 + 1] & 3);
        }
    }
}
