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

const TARGETS: [&str; 6] = [
    "wire_parse",
    "tag_rewrite",
    "pipeline",
    "config",
    "lpm_diff",
    "pcap_trace",
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
        "pcap_trace" => invariants::trace_capture(data),
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
