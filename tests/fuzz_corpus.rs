//! The fuzz targets' checks, run by `cargo test`: every committed seed
//! corpus entry and every regression input is replayed through the same
//! invariant the fuzz target checks (`xconnect::invariants`), and the
//! invariants also run as property tests on random input.
//!
//! `cargo test --test fuzz_corpus -- --ignored write_seed_corpus` rewrites
//! the seed corpus under `fuzz/corpus/` (deterministic).

use arbitrary::{Arbitrary, Unstructured};
use proptest::prelude::*;
use std::fs;
use std::path::{Path, PathBuf};
use xconnect::invariants::{self, LpmOp, PipelineCase, TagOp};

const TARGETS: [&str; 9] = [
    "wire_parse",
    "tag_rewrite",
    "pipeline",
    "config",
    "lpm_diff",
    "pcap_trace",
    "l3_reply",
    "fpm_decode",
    "control",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run one fuzz input through the invariant of `target`, decoding
/// structured inputs exactly as libfuzzer-sys does.
fn run(target: &str, data: &[u8]) {
    match target {
        "wire_parse" => {
            invariants::wire_parse(data);
            invariants::super_frame(data);
        }
        "tag_rewrite" => {
            if let Ok((frame, ops)) =
                <(Vec<u8>, Vec<TagOp>)>::arbitrary_take_rest(Unstructured::new(data))
            {
                invariants::tag_rewrite(&frame, &ops);
            }
        }
        "pipeline" => {
            if let Ok(case) = PipelineCase::arbitrary_take_rest(Unstructured::new(data)) {
                let _ = invariants::pipeline(&case);
            }
        }
        "config" => {
            if let Ok(text) = std::str::from_utf8(data) {
                invariants::config_text(text);
            }
        }
        "lpm_diff" => {
            if let Ok(ops) = <Vec<LpmOp>>::arbitrary_take_rest(Unstructured::new(data)) {
                invariants::lpm_diff(&ops);
            }
        }
        "pcap_trace" => invariants::trace_capture(data),
        "l3_reply" => invariants::l3_reply(data),
        "fpm_decode" => {
            invariants::fpm_decode(data);
        }
        "control" => xconnect::runtime::control::fuzz_request_line(data),
        _ => unreachable!("unknown target {target}"),
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(dir) else {
        return vec![];
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

#[test]
fn replay_seed_corpus_and_regressions() {
    let mut total = 0;
    for t in TARGETS {
        for kind in ["corpus", "regressions"] {
            for f in files(&root().join("fuzz").join(kind).join(t)) {
                let data = fs::read(&f).unwrap();
                let r = std::panic::catch_unwind(|| run(t, &data));
                assert!(r.is_ok(), "{}: invariant of {t} failed", f.display());
                total += 1;
            }
        }
    }
    assert!(
        total >= 40,
        "the seed corpus is missing ({total} inputs): run write_seed_corpus"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn fuzz_invariants_on_random_input(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        for t in TARGETS {
            run(t, &data);
        }
    }
}

/// The frames of the seed corpus (shared with the trace tests).
fn seed_frames() -> Vec<(String, Vec<u8>)> {
    xconnect::gen::samples::sample_frames()
}

#[test]
#[ignore = "writes the seed corpus; run by hand or by scripts/fuzz.sh seed"]
fn write_seed_corpus() {
    let dir = |t: &str| {
        let d = root().join("fuzz/corpus").join(t);
        fs::create_dir_all(&d).unwrap();
        d
    };
    for (name, f) in seed_frames() {
        fs::write(dir("wire_parse").join(&name), &f).unwrap();
        // tag_rewrite and pipeline decode bytes structurally; real frames
        // make good starting points for the mutator too.
        if !name.contains("-cut") {
            fs::write(dir("tag_rewrite").join(&name), &f).unwrap();
            fs::write(dir("pipeline").join(&name), &f).unwrap();
        }
    }
    // Capture files: the small ones of tcpdump's suite (tests/data/foreign).
    for f in files(&root().join("tests/data/foreign")) {
        let small = fs::metadata(&f).is_ok_and(|m| m.len() <= 200);
        if small && f.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
            fs::copy(&f, dir("pcap_trace").join(f.file_name().unwrap())).unwrap();
        }
    }
    for (name, data) in lpm_seeds() {
        fs::write(dir("lpm_diff").join(name), data).unwrap();
    }
    for (name, data) in l3_reply_seeds() {
        fs::write(dir("l3_reply").join(name), data).unwrap();
    }
    for (name, data) in mpls_pipeline_seeds() {
        fs::write(dir("pipeline").join(name), data).unwrap();
    }
    for (name, f) in labelled_frames() {
        fs::write(dir("wire_parse").join(&name), &f).unwrap();
        if !name.contains("-cut") {
            fs::write(dir("tag_rewrite").join(&name), &f).unwrap();
        }
    }
    for (name, data) in fpm_seeds() {
        fs::write(dir("fpm_decode").join(name), data).unwrap();
    }
    for (name, data) in gso_seeds().into_iter().chain(udp_gso_seeds()) {
        fs::write(dir("wire_parse").join(name), data).unwrap();
    }
    fs::write(dir("pcap_trace").join("gso-capture.pcap"), gso_capture()).unwrap();
    for src in ["examples", "tests/configs/broken", "tests/configs"] {
        for f in files(&root().join(src)) {
            if f.extension().is_some_and(|x| x == "toml") {
                let name = format!(
                    "{}-{}",
                    src.replace('/', "-"),
                    f.file_name().unwrap().to_string_lossy()
                );
                fs::copy(&f, dir("config").join(name)).unwrap();
            }
        }
    }
}

#[test]
fn seed_frames_cover_the_issue_list() {
    let names: Vec<String> = seed_frames().into_iter().map(|(n, _)| n).collect();
    for want in [
        "untagged-ipv4-udp",
        "8100-8100-ipv4-udp",
        "88a8-8100-ipv6-udp",
        "9100-8100-arp",
        "three-tags-ipv4-icmp",
        "ipv4-options",
        "ipv4-later-fragment",
        "ipv6-hbh-fragment",
    ] {
        assert!(names.iter().any(|n| n == want), "{want}");
    }
    // The well-formed seeds parse.
    for (n, f) in seed_frames() {
        if !n.contains("-cut") {
            assert!(xconnect::wire::parse(&f).is_ok(), "{n}");
        }
    }
}

/// Seeds of `lpm_diff`: deterministic random bytes of several lengths,
/// each the first candidate that decodes to several operations (many
/// random strings decode to an empty list: `arbitrary` reads a
/// continuation flag before each element).
fn lpm_seeds() -> Vec<(String, Vec<u8>)> {
    let mut rng = xconnect::lpm::gen::XorShift64::new(0x1fb);
    let mut out = Vec::new();
    for (i, len) in [32usize, 48, 64, 96, 128, 200, 300, 400, 800]
        .into_iter()
        .enumerate()
    {
        let bytes = loop {
            let b: Vec<u8> = (0..len).map(|_| rng.next_u32() as u8).collect();
            let ops = <Vec<LpmOp>>::arbitrary_take_rest(Unstructured::new(&b));
            if ops.is_ok_and(|o| o.len() >= 4) {
                break b;
            }
        };
        out.push((format!("random-{i}-{len}"), bytes));
    }
    out
}

/// The `lpm_diff` seeds decode to operations of both families, and
/// replay cleanly.
#[test]
fn lpm_seeds_decode_to_operations() {
    let mut kinds = std::collections::BTreeSet::new();
    for (name, data) in lpm_seeds() {
        let ops = <Vec<LpmOp>>::arbitrary_take_rest(Unstructured::new(&data)).unwrap();
        assert!(!ops.is_empty(), "{name}");
        for op in &ops {
            kinds.insert(format!("{op:?}").split('(').next().unwrap().to_string());
        }
        invariants::lpm_diff(&ops);
    }
    assert!(kinds.len() >= 6, "seeds cover only {kinds:?}");
}

/// Seeds of `fpm_decode`: a read-size byte, then an FPM stream — the
/// streams real zebra 8.4 sent (tests/data/fpm, with and without
/// next-hop groups) read whole and in small pieces, and streams built
/// with the crate's encoder (ECMP, replace, delete-then-add, next-hop
/// groups, a rejected next hop, a blackhole, a truncated tail).
fn fpm_seeds() -> Vec<(String, Vec<u8>)> {
    use netlink_packet_route::route::RouteType;
    use xconnect::control::decode::encode::{push_nexthop, push_route, route_message};
    use xconnect::control::decode::NLM_F_REPLACE;
    use xconnect::control::fpm::frame;
    let mut out = Vec::new();
    for f in files(&root().join("tests/data/fpm")) {
        let bytes = fs::read(&f).unwrap();
        let name = f.file_stem().unwrap().to_string_lossy().into_owned();
        for sel in [255u8, 6] {
            let mut d = vec![sel];
            d.extend_from_slice(&bytes);
            out.push((format!("{name}-read{}", sel as usize + 1), d));
        }
    }
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    let net = |s: &str| s.parse::<ipnet::IpNet>().unwrap();
    let mut s = Vec::new();
    let mut m = Vec::new();
    let hops = [ip("192.0.2.2"), ip("192.0.2.6")];
    push_route(
        &mut m,
        true,
        NLM_F_REPLACE,
        route_message(net("198.51.100.0/24"), RouteType::Unicast, &hops, None),
    );
    push_route(
        &mut m,
        true,
        0,
        route_message(net("198.51.100.0/25"), RouteType::Unicast, &hops[..1], None),
    );
    push_route(
        &mut m,
        true,
        0,
        route_message(
            net("203.0.113.0/24"),
            RouteType::Unicast,
            &[ip("192.0.2.9")],
            None,
        ),
    );
    s.extend(frame(&m).unwrap());
    m.clear();
    push_route(
        &mut m,
        false,
        0,
        route_message(net("198.51.100.0/24"), RouteType::Unicast, &hops, None),
    );
    push_route(
        &mut m,
        true,
        NLM_F_REPLACE,
        route_message(net("198.51.100.0/24"), RouteType::Unicast, &hops[1..], None),
    );
    push_route(
        &mut m,
        true,
        0,
        route_message(net("192.0.2.128/25"), RouteType::BlackHole, &[], None),
    );
    s.extend(frame(&m).unwrap());
    m.clear();
    push_nexthop(&mut m, true, 1, Some(ip("2001:db8::2")), &[]);
    push_nexthop(&mut m, true, 2, Some(ip("2001:db8::6")), &[]);
    push_nexthop(&mut m, true, 3, None, &[1, 2]);
    push_route(
        &mut m,
        true,
        0,
        route_message(net("2001:db8:100::/48"), RouteType::Unicast, &[], Some(3)),
    );
    push_route(
        &mut m,
        true,
        0,
        route_message(net("2001:db8:200::/48"), RouteType::Unicast, &[], Some(1)),
    );
    s.extend(frame(&m).unwrap());
    m.clear();
    push_route(
        &mut m,
        false,
        0,
        route_message(net("198.51.100.0/25"), RouteType::Unicast, &[], None),
    );
    s.extend(frame(&m).unwrap());
    for sel in [255u8, 0, 12] {
        let mut d = vec![sel];
        d.extend_from_slice(&s);
        out.push((format!("built-read{}", sel as usize + 1), d));
    }
    let mut cut = vec![255u8];
    cut.extend_from_slice(&s[..s.len() - 9]);
    out.push(("built-truncated".into(), cut));
    out
}

/// The `fpm_decode` seeds install routes (the invariant is not vacuous
/// on them): the built stream leaves its model's routes in the table.
#[test]
fn fpm_seeds_install_routes() {
    let seeds = fpm_seeds();
    assert!(seeds.len() >= 8, "{} seeds", seeds.len());
    for (name, data) in &seeds {
        let installed = invariants::fpm_decode(data);
        // FRR's streams end with two routes (one ECMP route down to one
        // leg, one IPv6; one deleted); the built one with three (one
        // rejected, one deleted), four when its last frame (the delete)
        // is cut off.
        let want = if name.starts_with("frr-") {
            2
        } else if name == "built-truncated" {
            4
        } else {
            3
        };
        assert_eq!(installed, want, "{name}");
    }
}

/// Seeds of `l3_reply`: the frames the reply builders answer, built with
/// `gen::FrameSpec` (the solicitation by `nd_solicit` over one), untagged
/// and QinQ, each with the builders that answer it, a roomy buffer and a
/// tight one.
fn l3_reply_seeds() -> Vec<(String, Vec<u8>)> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use xconnect::gen::{FrameSpec, Payload, MAC_A, MAC_B};
    use xconnect::invariants::{l3_reply_input, L3_REPLY_BUILDERS};
    use xconnect::wire::{Tpid, VlanTag};
    let index = |name: &str| L3_REPLY_BUILDERS.iter().position(|b| *b == name).unwrap();
    let mut out = Vec::new();
    for (stack, tags) in [
        ("untagged", vec![]),
        (
            "qinq",
            vec![
                VlanTag::from_tci(Tpid::DOT1AD, 0x6064),
                VlanTag::from_tci(Tpid::DOT1Q, 0x00c8),
            ],
        ),
    ] {
        let l3 = 14 + 4 * tags.len();
        let spec = |payload: Payload, wire_len: usize| FrameSpec {
            dst_mac: MAC_B,
            src_mac: MAC_A,
            tags: tags.clone(),
            payload,
            wire_len,
        };
        let ip = |src: &str, dst: &str, protocol: u8| Payload::Ip {
            src: src.parse::<IpAddr>().unwrap(),
            dst: dst.parse::<IpAddr>().unwrap(),
            protocol,
            src_port: 0,
            dst_port: 0,
            tos: 0,
            ttl: 64,
        };
        let arp = spec(
            Payload::ArpRequest {
                sender: Ipv4Addr::new(192, 0, 2, 2),
                target: Ipv4Addr::new(192, 0, 2, 1),
            },
            64,
        )
        .build();
        let echo4 = spec(ip("198.51.100.7", "192.0.2.1", 1), 98).build();
        let echo6 = spec(ip("2001:db8::7", "2001:db8::1", 58), 118).build();
        let mut ns = spec(ip("2001:db8::2", "2001:db8::1", 58), 64).build();
        ns.resize(l3 + 72, 0);
        let peer: Ipv6Addr = "2001:db8::2".parse().unwrap();
        xconnect::pipeline::l3::reply::nd_solicit(
            &mut ns,
            l3,
            &MAC_A,
            peer,
            "2001:db8::1".parse().unwrap(),
        )
        .unwrap();
        let cases: [(&str, &Vec<u8>, &[&str]); 4] = [
            (
                "arp-request",
                &arp,
                &["arp_reply", "arp_request", "ethernet"],
            ),
            ("echo4", &echo4, &["icmp4_echo_reply", "icmp4_error"]),
            ("echo6", &echo6, &["icmp6_echo_reply", "icmp6_error"]),
            ("ns", &ns, &["nd_advert", "nd_solicit", "nd_lladdr"]),
        ];
        for (frame_name, frame, builders) in cases {
            for builder in builders {
                // nd_lladdr reads the options: its offset is theirs.
                let at = if *builder == "nd_lladdr" { l3 + 64 } else { l3 };
                for (room, capacity) in [("roomy", 1600u16), ("tight", frame.len() as u16)] {
                    let name = format!("{stack}-{frame_name}-{builder}-{room}");
                    let data = l3_reply_input(index(builder), capacity, at as u8, 1, 0, frame);
                    out.push((name, data));
                }
            }
        }
    }
    out
}

/// The `l3_reply` seeds reach every builder, and each (with a roomy
/// buffer) gets an answer from the builder it names.
#[test]
fn l3_reply_seeds_reach_every_builder() {
    let seeds = l3_reply_seeds();
    for (i, b) in xconnect::invariants::L3_REPLY_BUILDERS.iter().enumerate() {
        assert!(
            seeds.iter().any(|(_, d)| d[0] as usize == i),
            "no seed for {b}"
        );
    }
    for (name, data) in &seeds {
        invariants::l3_reply(data);
        // The frame is valid input for its builder: the reply parses.
        if name.ends_with("roomy") && !name.contains("nd_lladdr") && !name.contains("ethernet") {
            let l3 = data[3] as usize;
            let mut f = data[6..].to_vec();
            let len = f.len();
            f.resize(1600, 0);
            use xconnect::pipeline::l3::reply;
            let mac = [2, 0x78, 0x63, 0, 0, 1];
            let n = match xconnect::invariants::L3_REPLY_BUILDERS[data[0] as usize] {
                "arp_reply" => {
                    reply::arp_reply(&mut f[..len], l3, &mac, "192.0.2.1".parse().unwrap())
                }
                "arp_request" => reply::arp_request(
                    &mut f,
                    l3,
                    &mac,
                    "192.0.2.1".parse().unwrap(),
                    "192.0.2.2".parse().unwrap(),
                ),
                "icmp4_echo_reply" => reply::icmp4_echo_reply(&mut f, len, l3, &mac),
                "icmp4_error" => {
                    reply::icmp4_error(&mut f, len, l3, 11, 0, &mac, "192.0.2.1".parse().unwrap())
                }
                "icmp6_echo_reply" => reply::icmp6_echo_reply(&mut f, len, l3, &mac),
                "icmp6_error" => {
                    reply::icmp6_error(&mut f, len, l3, 3, 0, &mac, "2001:db8::1".parse().unwrap())
                }
                "nd_advert" => {
                    reply::nd_advert(&mut f[..len], l3, &mac, "2001:db8::1".parse().unwrap())
                }
                "nd_solicit" => reply::nd_solicit(
                    &mut f,
                    l3,
                    &mac,
                    "2001:db8::1".parse().unwrap(),
                    "2001:db8::2".parse().unwrap(),
                ),
                other => unreachable!("{other}"),
            };
            let n = n.unwrap_or_else(|| panic!("{name}: no answer"));
            invariants::reply_is_valid(&f[..n]).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

/// Pipeline inputs for the IPVPN configurations (64..128): found by a
/// deterministic search over random inputs, kept when they forward a
/// labelled frame in, send one out, or drop one as `unknown-label`, until
/// each has eight.
fn mpls_pipeline_seeds() -> Vec<(String, Vec<u8>)> {
    let mut x: u64 = 0x5eed_0018;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut found = [0usize; 3];
    let mut seeds = Vec::new();
    for _ in 0..20_000 {
        if found.iter().all(|&n| n >= 8) {
            break;
        }
        let mut data: Vec<u8> = (0..160).map(|_| next() as u8).collect();
        data[0] = 64 + (next() % 64) as u8;
        data[1] = 0;
        let Ok(case) = PipelineCase::arbitrary_take_rest(Unstructured::new(&data)) else {
            continue;
        };
        let o = invariants::pipeline(&case);
        let unknown = o.drops[xconnect::frame::DropReason::UnknownLabel.index()];
        let hits = [o.labelled_in > 0, o.labelled_out > 0, unknown > 0];
        if hits.iter().zip(&found).any(|(&h, &n)| h && n < 8) {
            for (n, h) in found.iter_mut().zip(hits) {
                *n += usize::from(h);
            }
            seeds.push((format!("mpls-{:02}", seeds.len()), data));
        }
    }
    seeds
}

#[test]
fn mpls_seeds_reach_the_label_edge() {
    let seeds = mpls_pipeline_seeds();
    let (mut lin, mut lout, mut unknown) = (0, 0, 0);
    for (name, data) in &seeds {
        let case = PipelineCase::arbitrary_take_rest(Unstructured::new(data)).unwrap();
        let o = invariants::pipeline(&case);
        lin += o.labelled_in;
        lout += o.labelled_out;
        unknown += o.drops[xconnect::frame::DropReason::UnknownLabel.index()];
        // The committed corpus holds the same inputs.
        let committed = root().join("fuzz/corpus/pipeline").join(name);
        assert_eq!(
            fs::read(&committed).ok().as_ref(),
            Some(data),
            "{} is missing or stale: run write_seed_corpus",
            committed.display()
        );
    }
    eprintln!(
        "{} seeds: {lin} labelled frames forwarded in, {lout} sent labelled, {unknown} unknown-label drops",
        seeds.len()
    );
    assert!(
        lin >= 8 && lout >= 8 && unknown >= 8,
        "{lin} {lout} {unknown}"
    );
}

/// Labelled frames for the `wire_parse` and `tag_rewrite` seeds: the
/// untagged IPv4 and IPv6 sample frames under one to three labels (an
/// L3VPN's packet), and the tagged ones behind a pseudowire's header with
/// and without the control word; each also cut inside its label stack.
fn labelled_frames() -> Vec<(String, Vec<u8>)> {
    let samples = seed_frames();
    let pick = |n: &str| {
        samples
            .iter()
            .find(|(name, _)| name == n)
            .map(|(_, f)| f.clone())
            .unwrap_or_else(|| panic!("sample {n}"))
    };
    let head = |f: &mut Vec<u8>| {
        f.extend_from_slice(&[2, 0x78, 0x63, 0, 0, 1, 2, 0, 0, 0, 0, 0xb1, 0x88, 0x47]);
    };
    let stack = |f: &mut Vec<u8>, depth: usize, ttl: u8| {
        for k in 0..depth {
            let label: u32 = [16001, 1001, 1002][k % 3];
            let w = label << 12 | 5 << 9 | u32::from(k + 1 == depth) << 8 | u32::from(ttl);
            f.extend_from_slice(&w.to_be_bytes());
        }
    };
    let mut out = Vec::new();
    for (fam, sample) in [("ipv4", "untagged-ipv4-udp"), ("ipv6", "untagged-ipv6-udp")] {
        let inner = pick(sample);
        for depth in 1..=3 {
            let mut f = Vec::new();
            head(&mut f);
            stack(&mut f, depth, 64);
            f.extend_from_slice(&inner[14..]);
            for cut in (14..14 + 4 * depth).step_by(2) {
                out.push((
                    format!("mpls-l3vpn-{fam}-{depth}-cut{cut}"),
                    f[..cut].to_vec(),
                ));
            }
            out.push((format!("mpls-l3vpn-{fam}-{depth}"), f));
        }
    }
    for (tags, sample) in [
        ("untagged", "untagged-ipv4-udp"),
        ("8100-8100", "8100-8100-ipv4-udp"),
    ] {
        let inner = pick(sample);
        for cw in [false, true] {
            let mut f = Vec::new();
            head(&mut f);
            stack(&mut f, 1, 255);
            if cw {
                f.extend_from_slice(&[0, 0, 0, 7]);
            }
            f.extend_from_slice(&inner);
            let name = format!("mpls-pw-{tags}-{}", if cw { "cw" } else { "nocw" });
            out.push((format!("{name}-cut{}", 18 + 4 * usize::from(cw) + 6), {
                let n = 18 + 4 * usize::from(cw) + 6;
                f[..n].to_vec()
            }));
            out.push((name, f));
        }
    }
    out
}

#[test]
fn labelled_seeds_parse_their_stacks() {
    use xconnect::wire::mpls::LabelStack;
    let frames = labelled_frames();
    assert!(frames.len() >= 20);
    for (name, f) in &frames {
        let parsed = f.get(14..).map(|b| LabelStack::parse(b, 14));
        if name.contains("-cut") && name.contains("l3vpn") {
            assert!(
                parsed.is_none_or(|r| r.is_err()),
                "{name}: a cut stack parses"
            );
        } else {
            assert!(parsed.is_some_and(|r| r.is_ok()), "{name}");
        }
        let committed = root().join("fuzz/corpus/wire_parse").join(name);
        assert_eq!(
            fs::read(&committed).ok().as_ref(),
            Some(f),
            "{} is missing or stale: run write_seed_corpus",
            committed.display()
        );
    }
}

/// The addresses of the super-frame seeds (documentation prefixes).
const SEED_IP4: ([u8; 4], [u8; 4]) = ([192, 0, 2, 10], [198, 51, 100, 20]);
const SEED_IP6: ([u8; 16], [u8; 16]) = (
    [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
    [0x20, 1, 0xd, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
);

/// A `wire_parse` super-frame seed: the `virtio_net_hdr` of `o`, then
/// `frame`.
fn vnet_seed(o: &xconnect::wire::Offload, frame: &[u8]) -> Vec<u8> {
    let mut seed = vec![0u8; 10];
    o.to_virtio().emit(&mut seed).unwrap();
    seed.extend_from_slice(frame);
    seed
}

/// Super-frames for the `wire_parse` seeds (its target also reads its
/// input as a `virtio_net_hdr` and a super-frame): IPv4 untagged, under
/// one 802.1Q tag and under QinQ, IPv6 untagged, with partial and complete
/// checksums, MSS 1448 and 536, and one whose payload fits one segment.
fn gso_seeds() -> Vec<(String, Vec<u8>)> {
    use etherparse::{PacketBuilder, TcpOptionElement};
    use xconnect::wire::{ChecksumState, GsoKind, Offload};
    let mut out = Vec::new();
    for (name, tags, v6, len, mss, partial) in [
        ("gso-ipv4-untagged-partial", 0, false, 6000, 1448u16, true),
        ("gso-ipv4-8100-partial", 1, false, 4000, 536, true),
        ("gso-ipv4-qinq-complete", 2, false, 3000, 1448, false),
        ("gso-ipv6-untagged-partial", 0, true, 5000, 1440, true),
        ("gso-ipv4-one-segment", 0, false, 900, 1448, true),
    ] {
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0xc1], [2, 0, 0, 0, 0, 0xd1]);
        let data: Vec<u8> = (0..len).map(|i| (i * 13) as u8).collect();
        let mut frame = Vec::new();
        let (ip4, ip6) = (SEED_IP4, SEED_IP6);
        let tcp = |b: etherparse::PacketBuilderStep<etherparse::IpHeaders>| {
            b.tcp(40_000, 5201, 0x1000_0000, 512)
                .ack(1)
                .options(&[TcpOptionElement::Timestamp(1, 2)])
                .unwrap()
        };
        let built = match (tags, v6) {
            (0, false) => tcp(b.ipv4(ip4.0, ip4.1, 64)),
            (1, false) => tcp(b
                .single_vlan(100u16.try_into().unwrap())
                .ipv4(ip4.0, ip4.1, 64)),
            (2, false) => tcp(b
                .double_vlan(100u16.try_into().unwrap(), 200u16.try_into().unwrap())
                .ipv4(ip4.0, ip4.1, 64)),
            _ => tcp(b.ipv6(ip6.0, ip6.1, 64)),
        };
        built.write(&mut frame, &data).unwrap();
        let l4 = 14 + 4 * tags + if v6 { 40 } else { 20 };
        let checksum = if partial {
            let ph = if v6 {
                xconnect::wire::PseudoHeader::V6 {
                    src: ip6.0.into(),
                    dst: ip6.1.into(),
                }
            } else {
                xconnect::wire::PseudoHeader::V4 {
                    src: ip4.0.into(),
                    dst: ip4.1.into(),
                }
            };
            let sum = xconnect::wire::checksum::fold(ph.sum(6, frame.len() - l4));
            frame[l4 + 16..l4 + 18].copy_from_slice(&sum.to_be_bytes());
            ChecksumState::Partial {
                start: l4 as u16,
                offset: 16,
            }
        } else {
            ChecksumState::InBytes
        };
        let o = Offload {
            gso: if v6 { GsoKind::TcpV6 } else { GsoKind::TcpV4 },
            ecn: false,
            segment_size: mss,
            header_len: (l4 + 32) as u16,
            checksum,
        };
        out.push((name.to_string(), vnet_seed(&o, &frame)));
    }
    out
}

/// UDP super-frames (`UDP_SEGMENT`) for the `wire_parse` seeds: IPv4
/// under one 802.1Q tag and IPv6 untagged, partial checksums, datagrams
/// of 1200 and 1000 bytes.
fn udp_gso_seeds() -> Vec<(String, Vec<u8>)> {
    use etherparse::PacketBuilder;
    use xconnect::wire::{ChecksumState, GsoKind, Offload, PseudoHeader};
    let mut out = Vec::new();
    for (name, v6, len, size) in [
        ("gso-udp-ipv4-8100-partial", false, 5000, 1200u16),
        ("gso-udp-ipv6-untagged-partial", true, 3500, 1000),
    ] {
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0xc1], [2, 0, 0, 0, 0, 0xd1]);
        let data: Vec<u8> = (0..len).map(|i| (i * 29) as u8).collect();
        let (ip4, ip6) = (SEED_IP4, SEED_IP6);
        let mut frame = Vec::new();
        let (l4, ph) = if v6 {
            b.ipv6(ip6.0, ip6.1, 64)
                .udp(40_000, 443)
                .write(&mut frame, &data)
                .unwrap();
            let ph = PseudoHeader::V6 {
                src: ip6.0.into(),
                dst: ip6.1.into(),
            };
            (14 + 40, ph)
        } else {
            b.single_vlan(100u16.try_into().unwrap())
                .ipv4(ip4.0, ip4.1, 64)
                .udp(40_000, 443)
                .write(&mut frame, &data)
                .unwrap();
            let ph = PseudoHeader::V4 {
                src: ip4.0.into(),
                dst: ip4.1.into(),
            };
            (18 + 20, ph)
        };
        let sum = xconnect::wire::checksum::fold(ph.sum(17, frame.len() - l4));
        frame[l4 + 6..l4 + 8].copy_from_slice(&sum.to_be_bytes());
        let o = Offload {
            gso: GsoKind::Udp,
            ecn: false,
            segment_size: size,
            header_len: (l4 + 8) as u16,
            checksum: ChecksumState::Partial {
                start: l4 as u16,
                offset: 6,
            },
        };
        out.push((name.to_string(), vnet_seed(&o, &frame)));
    }
    out
}

/// The super-frames of [`gso_seeds`] as a capture taken with offloads on
/// records them (no `virtio_net_hdr`): the `pcap_trace` seed that makes
/// the tracer read super-frames back from their bytes.
fn gso_capture() -> Vec<u8> {
    let seeds = gso_seeds();
    xconnect::io::pcap::pcap_bytes(
        seeds
            .iter()
            .enumerate()
            .map(|(i, (_, d))| (std::time::Duration::from_millis(i as u64), &d[10..])),
    )
}

#[test]
fn gso_capture_seed_reaches_the_tracers_super_frame_path() {
    use std::sync::Arc;
    use xconnect::io::pcap::PcapSource;
    use xconnect::pipeline::LinkState;
    use xconnect::trace::Tracer;
    let data = gso_capture();
    let committed = root().join("fuzz/corpus/pcap_trace/gso-capture.pcap");
    assert_eq!(
        fs::read(&committed).ok().as_ref(),
        Some(&data),
        "{} is missing or stale: run write_seed_corpus",
        committed.display()
    );
    run("pcap_trace", &data);
    let plan = Arc::new(xconnect::config::compile(&xconnect::bench::cases::config()));
    let mut source = PcapSource::from_bytes("gso.pcap", data).unwrap();
    let mut tracer = Tracer::new(plan.clone(), LinkState::new(plan.ports.len()), 0, true);
    let mut supers = 0;
    tracer.run(&mut source, None, |r| {
        supers += usize::from(r.super_frame.is_some())
    });
    // All but the one whose payload fits a 1500-byte MTU's segment (and
    // the buffer).
    assert_eq!(supers, gso_seeds().len() - 1);
}

#[test]
fn gso_seeds_reach_the_super_frame_paths() {
    use xconnect::frame::Batch;
    use xconnect::wire::{Offload, VirtioNetHdr};
    let seeds: Vec<_> = gso_seeds().into_iter().chain(udp_gso_seeds()).collect();
    let mut split = 0;
    for (name, data) in &seeds {
        let o = Offload::from_virtio(&VirtioNetHdr::parse(&data[..10]).unwrap()).unwrap();
        let mut batch = Batch::new();
        assert_eq!(batch.push_super(&data[10..], o), Ok(true), "{name}");
        split += batch.super_mask().count_ones();
        assert_eq!(
            batch.super_mask() == 0,
            name.contains("one-segment"),
            "{name}: split unless it fits one segment"
        );
        run("wire_parse", data);
        let committed = root().join("fuzz/corpus/wire_parse").join(name);
        assert_eq!(
            fs::read(&committed).ok().as_ref(),
            Some(data),
            "{} is missing or stale: run write_seed_corpus",
            committed.display()
        );
    }
    assert_eq!(split as usize, seeds.len() - 1);
}
