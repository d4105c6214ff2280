//! Sample frames for the fuzz seed corpus and the trace tests: a fixed,
//! named set that covers what the parsers must handle.

use super::{FrameSpec, Payload, MAC_A, MAC_B};
use crate::wire::{Tpid, VlanTag};

/// Diverse frames: every tag combination of 0-3 tags and TPIDs (PCP set,
/// DEI on some), each L3/L4 kind, IPv4 options and fragments, IPv6
/// extension headers, bad checksums, and each one truncated at every
/// header boundary. Named by what they hold. Deterministic.
pub fn sample_frames() -> Vec<(String, Vec<u8>)> {
    let v4 = |p: u8| Payload::Ip {
        src: "192.0.2.1".parse().unwrap(),
        dst: "198.51.100.1".parse().unwrap(),
        protocol: p,
        src_port: 50000,
        dst_port: 3478,
        tos: (26 << 2) | 1,
        ttl: 64,
    };
    let v6 = |p: u8| Payload::Ip {
        src: "2001:db8::1".parse().unwrap(),
        dst: "2001:db8::2".parse().unwrap(),
        protocol: p,
        src_port: 50020,
        dst_port: 443,
        tos: 46 << 2,
        ttl: 64,
    };
    let t = |tpid: u16, vid: u16| VlanTag::from_tci(Tpid(tpid), 0x6000 | vid);
    let stacks: Vec<(&str, Vec<VlanTag>)> = vec![
        ("untagged", vec![]),
        ("8100", vec![t(0x8100, 10)]),
        ("8100-8100", vec![t(0x8100, 100), t(0x8100, 200)]),
        ("88a8-8100", vec![t(0x88a8, 100), t(0x8100, 300)]),
        ("9100-8100", vec![t(0x9100, 100), t(0x8100, 200)]),
        (
            "three-tags",
            vec![t(0x88a8, 10), t(0x8100, 100), t(0x8100, 200)],
        ),
    ];
    let payloads: Vec<(&str, Payload)> = vec![
        ("ipv4-udp", v4(17)),
        ("ipv4-tcp", v4(6)),
        ("ipv4-icmp", v4(1)),
        ("ipv6-udp", v6(17)),
        ("ipv6-tcp", v6(6)),
        ("ipv6-icmpv6", v6(58)),
        (
            "arp",
            Payload::ArpRequest {
                sender: "192.0.2.1".parse().unwrap(),
                target: "192.0.2.2".parse().unwrap(),
            },
        ),
        ("lldp", Payload::Raw(0x88cc)),
    ];
    let mut out = Vec::new();
    for (sn, tags) in &stacks {
        for (pn, p) in &payloads {
            let f = FrameSpec {
                dst_mac: MAC_B,
                src_mac: MAC_A,
                tags: tags.clone(),
                payload: *p,
                wire_len: 64 + 4 * tags.len(),
            }
            .build();
            out.push((format!("{sn}-{pn}"), f));
        }
    }
    // IPv4 with options, and fragments (first and later).
    let base = FrameSpec::udp(
        &[],
        "192.0.2.1".parse().unwrap(),
        "198.51.100.1".parse().unwrap(),
        (1, 2),
        0,
        100,
    )
    .build();
    let mut opts = base[..14].to_vec();
    let mut ip = base[14..34].to_vec();
    ip[0] = 0x47;
    ip.extend_from_slice(&[0x01, 0x01, 0x01, 0x00, 0x94, 0x04, 0x00, 0x00]);
    let total = (ip.len() + base.len() - 34) as u16;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[10] = 0;
    ip[11] = 0;
    let c = crate::wire::checksum::checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    opts.extend_from_slice(&ip);
    opts.extend_from_slice(&base[34..]);
    out.push(("ipv4-options".into(), opts));
    for (name, flags) in [
        ("ipv4-first-fragment", 0x2000u16),
        ("ipv4-later-fragment", 0x0010),
    ] {
        let mut f = base.clone();
        f[20..22].copy_from_slice(&flags.to_be_bytes());
        out.push((name.into(), f));
    }
    // IPv6 with hop-by-hop and fragment extension headers.
    let b6 = FrameSpec::udp(
        &[],
        "2001:db8::1".parse().unwrap(),
        "2001:db8::2".parse().unwrap(),
        (1, 2),
        0,
        100,
    )
    .build();
    let mut e = b6[..54].to_vec();
    e[20] = 0; // next header: hop-by-hop
    e.extend_from_slice(&[44, 0, 1, 4, 0, 0, 0, 0]);
    e.extend_from_slice(&[17, 0, 0, 1, 0, 0, 0, 7]);
    e.extend_from_slice(&b6[54..]);
    let plen = (e.len() - 54) as u16;
    e[18..20].copy_from_slice(&plen.to_be_bytes());
    out.push(("ipv6-hbh-fragment".into(), e));
    // DEI set, PCP 7 on a QinQ stack; PCP 0 on a single tag.
    let dei = |tpid: u16, vid: u16| VlanTag::from_tci(Tpid(tpid), 0xf000 | vid);
    for (name, tags) in [
        ("88a8-8100-dei", vec![dei(0x88a8, 4094), dei(0x8100, 1)]),
        ("8100-pcp0", vec![VlanTag::from_tci(Tpid(0x8100), 7)]),
    ] {
        let f = FrameSpec {
            dst_mac: MAC_B,
            src_mac: MAC_A,
            tags,
            payload: v4(17),
            wire_len: 72,
        }
        .build();
        out.push((name.into(), f));
    }
    // Bad checksums: IPv4 header, UDP, TCP (parsers do not verify them;
    // the l3 service drops a bad IPv4 header).
    let mut bad = base.clone();
    bad[24] ^= 0xff;
    out.push(("ipv4-bad-header-checksum".into(), bad));
    for (name, payload, at) in [
        ("ipv4-udp-bad-checksum", v4(17), 40),
        ("ipv4-tcp-bad-checksum", v4(6), 50),
    ] {
        let mut f = FrameSpec {
            dst_mac: MAC_B,
            src_mac: MAC_A,
            tags: vec![],
            payload,
            wire_len: 80,
        }
        .build();
        f[at] ^= 0x5a;
        out.push((name.into(), f));
    }
    // Every frame truncated at each header boundary.
    let mut cuts = Vec::new();
    for (n, f) in &out {
        for at in [
            6usize, 13, 14, 16, 18, 20, 22, 26, 30, 34, 38, 42, 54, 58, 62,
        ] {
            if at < f.len() {
                cuts.push((format!("{n}-cut{at}"), f[..at].to_vec()));
            }
        }
    }
    out.extend(cuts);
    out
}
