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
use xconnect::gen::{FrameSpec, Payload, MAC_A, MAC_B};
use xconnect::invariants::{self, LpmOp, PipelineCase, TagOp};
use xconnect::wire::{Tpid, VlanTag};

const TARGETS: [&str; 5] = [
    "wire_parse",
    "tag_rewrite",
    "pipeline",
    "config",
    "lpm_diff",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run one fuzz input through the invariant of `target`, decoding
/// structured inputs exactly as libfuzzer-sys does.
fn run(target: &str, data: &[u8]) {
    match target {
        "wire_parse" => invariants::wire_parse(data),
        "tag_rewrite" => {
            if let Ok((frame, ops)) =
                <(Vec<u8>, Vec<TagOp>)>::arbitrary_take_rest(Unstructured::new(data))
            {
                invariants::tag_rewrite(&frame, &ops);
            }
        }
        "pipeline" => {
            if let Ok(case) = PipelineCase::arbitrary_take_rest(Unstructured::new(data)) {
                invariants::pipeline(&case);
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

/// The frames of the seed corpus: every tag combination of the issue, each
/// L3/L4 kind, and each one truncated at every header boundary.
fn seed_frames() -> Vec<(String, Vec<u8>)> {
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
    let c = xconnect::wire::checksum::checksum(&ip);
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
    for (name, data) in lpm_seeds() {
        fs::write(dir("lpm_diff").join(name), data).unwrap();
    }
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
