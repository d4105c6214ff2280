//! `xconnect trace`: golden output (text and JSON) for every example
//! configuration, every port of it (so both directions), corrupt and
//! truncated captures, pcapng input, `--summary`, `--out` and `--limit`.
//!
//! `UPDATE_GOLDEN=1 cargo test --test trace` rewrites the golden files
//! under `tests/golden/trace/`; review the diff before committing it.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;
use xconnect::config;
use xconnect::gen::{FrameSpec, Payload, MAC_A};
use xconnect::io::pcap::pcap_bytes;
use xconnect::plan::{Egress, Plan, Service, TagPush};
use xconnect::wire::{Tpid, VlanTag};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xconnect-trace-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn xconnect(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xconnect"))
        .args(args)
        .output()
        .expect("run xconnect")
}

/// `xconnect trace examples/pe-qinq.toml --pcap PCAP --port customer EXTRA…`.
fn trace_customer(pcap: &str, extra: &[&str]) -> Output {
    let ex = root().join("examples/pe-qinq.toml");
    let mut args = vec![
        "trace",
        ex.to_str().unwrap(),
        "--pcap",
        pcap,
        "--port",
        "customer",
    ];
    args.extend_from_slice(extra);
    xconnect(&args)
}

/// The tags of a stack's bytes (TPID and TCI each, outermost first).
fn tags_in(stack: &[u8]) -> Vec<VlanTag> {
    stack
        .chunks(4)
        .map(|c| {
            VlanTag::from_tci(
                Tpid(u16::from_be_bytes([c[0], c[1]])),
                u16::from_be_bytes([c[2], c[3]]),
            )
        })
        .collect()
}

/// Every tag stack (bytes, TPIDs included) the plan sends out of each port:
/// exactly what arrives on that port from the other side.
fn stacks(plan: &Plan) -> Vec<BTreeSet<Vec<u8>>> {
    let mut v = vec![BTreeSet::new(); plan.ports.len()];
    let mut add = |p: &TagPush| {
        v[p.port as usize].insert(p.bytes().to_vec());
    };
    for a in &plan.attachments {
        if let Service::L2 { egress, .. } = a.service {
            match egress {
                Egress::Access(p) => add(&p),
                Egress::Trunk([p, q]) => {
                    add(&p);
                    add(&q);
                }
            }
        }
    }
    for l in &plan.l3 {
        for adj in l.links.iter().flatten() {
            add(&adj.push);
        }
    }
    v
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The backbone router's MAC in pe-ipvpn.toml.
const BACKBONE: [u8; 6] = [2, 0, 0, 0, 0, 0xb1];

/// `inner` (an untagged Ethernet frame) behind `labels` (label, TC, TTL;
/// outermost first), sent by the backbone router to `to`: for an L3VPN
/// (`pw` false) the IP packet of `inner` goes under the labels, for a
/// pseudowire the whole frame, behind a control word if `cw`.
fn labelled(inner: &[u8], labels: &[(u32, u8, u8)], pw: bool, cw: bool, to: [u8; 6]) -> Vec<u8> {
    let mut f = to.to_vec();
    f.extend_from_slice(&BACKBONE);
    f.extend_from_slice(&[0x88, 0x47]);
    for (k, (label, tc, ttl)) in labels.iter().enumerate() {
        let bos = u32::from(k + 1 == labels.len());
        let w = label << 12 | u32::from(*tc) << 9 | bos << 8 | u32::from(*ttl);
        f.extend_from_slice(&w.to_be_bytes());
    }
    if pw {
        if cw {
            f.extend_from_slice(&[0, 0, 0, 0x2a]);
        }
        f.extend_from_slice(inner);
    } else {
        f.extend_from_slice(&inner[14..]);
    }
    f
}

/// The frames sent to port `port` of `plan`: for each tag stack arriving
/// there, IPv4/IPv6 UDP and TCP towards the example routes with several
/// DSCPs, TTL 1, and ARP for each l3 address; the same flows under the
/// label of each MPLS attachment of the port (every other one with the
/// port's transport label on top); then an unknown VLAN and a truncated
/// frame.
fn frames_for(plan: &Plan, port: usize) -> Vec<Vec<u8>> {
    let mac = plan.ports[port].mac;
    let mut out = Vec::new();
    let flows: [(&str, &str, u8, u8, u8); 6] = [
        ("192.0.2.77", "198.51.100.200", 17, (26 << 2) | 1, 64),
        ("192.0.2.77", "203.0.113.200", 6, 46 << 2, 64),
        ("192.0.2.77", "198.51.100.70", 17, 8 << 2, 64),
        ("192.0.2.77", "198.51.100.200", 17, 0, 1),
        ("2001:db8:1::7", "2001:db8:100::9", 17, 26 << 2, 64),
        ("2001:db8:1::7", "2001:db8:200::9", 6, (46 << 2) | 2, 64),
    ];
    for stack in &stacks(plan)[port] {
        let tags = tags_in(stack);
        for (i, (s, d, proto, tos, ttl)) in flows.iter().enumerate() {
            let spec = FrameSpec {
                dst_mac: mac,
                src_mac: MAC_A,
                tags: tags.clone(),
                payload: Payload::Ip {
                    src: ip(s),
                    dst: ip(d),
                    protocol: *proto,
                    src_port: 40000 + i as u16,
                    dst_port: 443,
                    tos: *tos,
                    ttl: *ttl,
                },
                wire_len: 96 + 4 * tags.len(),
            };
            out.push(spec.build());
        }
        // ARP for this forwarder's address on the links that use this stack.
        for l in &plan.l3 {
            for adj in l.links.iter().flatten() {
                if adj.push.port as usize == port && adj.push.bytes() == stack.as_slice() {
                    if let (Some(own), Some(peer)) = (adj.own_v4, adj.peer_v4) {
                        out.push(
                            FrameSpec {
                                dst_mac: [0xff; 6],
                                src_mac: MAC_A,
                                tags: tags.clone(),
                                payload: Payload::ArpRequest {
                                    sender: peer,
                                    target: own,
                                },
                                wire_len: 64 + 4 * tags.len(),
                            }
                            .build(),
                        );
                    }
                }
            }
        }
    }
    for a in &plan.attachments {
        let Some(m) = a.mpls.filter(|_| a.port as usize == port) else {
            continue;
        };
        for (i, (s, d, proto, tos, ttl)) in flows.iter().enumerate() {
            let inner = FrameSpec {
                dst_mac: if m.pseudowire {
                    [0x02, 0, 0, 0, 0, 0x99]
                } else {
                    mac
                },
                src_mac: MAC_A,
                tags: Vec::new(),
                payload: Payload::Ip {
                    src: ip(s),
                    dst: ip(d),
                    protocol: *proto,
                    src_port: 40000 + i as u16,
                    dst_port: 443,
                    tos: *tos,
                    ttl: *ttl,
                },
                wire_len: 96,
            }
            .build();
            let mut labels = vec![(m.label, tos >> 5, 64 - i as u8)];
            if let Some(t) = plan.ports[port].transport_label.filter(|_| i % 2 == 0) {
                labels.insert(0, (t, 0, 63));
            }
            out.push(labelled(&inner, &labels, m.pseudowire, m.control_word, mac));
        }
    }
    let unknown = vec![VlanTag::from_tci(Tpid::DOT1Q, 4000)];
    out.push(FrameSpec::udp(&unknown, ip("192.0.2.1"), ip("198.51.100.1"), (1, 2), 0, 68).build());
    let mut cut = out[0].clone();
    cut.truncate(30);
    out.push(cut);
    // The first frame again, to another station's MAC: l2 forwards it as
    // any frame, l3 drops it as not-our-mac (and shows no route stage).
    let mut foreign = out[0].clone();
    foreign[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x99]);
    out.push(foreign);
    out
}

fn capture(frames: &[Vec<u8>]) -> Vec<u8> {
    pcap_bytes(frames.iter().enumerate().map(|(i, f)| {
        (
            Duration::from_secs(1_700_000_000) + Duration::from_millis(i as u64),
            f.as_slice(),
        )
    }))
}

fn check_golden(path: &Path, got: &str) {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (UPDATE_GOLDEN=1 cargo test --test trace writes it)",
            path.display()
        )
    });
    if want != got {
        let line = want
            .lines()
            .zip(got.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(want.lines().count().min(got.lines().count()));
        panic!(
            "{}: trace output differs from line {}:\n want: {:?}\n  got: {:?}",
            path.display(),
            line + 1,
            want.lines().nth(line),
            got.lines().nth(line)
        );
    }
}

fn examples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    v.sort();
    assert!(v.len() >= 6);
    v
}

#[test]
fn golden_traces_of_every_example_and_port() {
    for ex in examples() {
        let cfg = config::load(&ex).unwrap_or_else(|d| panic!("{}: {d}", ex.display()));
        let plan = Arc::new(xconnect::config::compile(&cfg));
        let stem = ex.file_stem().unwrap().to_string_lossy().to_string();
        for (port, pp) in plan.ports.iter().enumerate() {
            let frames = frames_for(&plan, port);
            let file = tmp(&format!("{stem}-{}.pcap", pp.name));
            std::fs::write(&file, capture(&frames)).unwrap();
            let rel = |p: &Path| {
                p.strip_prefix(root())
                    .unwrap()
                    .to_string_lossy()
                    .to_string()
            };
            let exs = rel(&ex);
            let f = file.to_str().unwrap();
            for json in [false, true] {
                let mut args = vec!["trace", &exs, "--pcap", f, "--port", &pp.name];
                if json {
                    args.push("--json");
                }
                let o = Command::new(env!("CARGO_BIN_EXE_xconnect"))
                    .args(&args)
                    .current_dir(root())
                    .output()
                    .unwrap();
                let stdout = String::from_utf8(o.stdout).unwrap();
                assert!(
                    o.status.success(),
                    "{args:?}: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                let n = if json {
                    stdout.lines().count()
                } else {
                    stdout.matches("\nframe ").count() + 1
                };
                assert_eq!(n, frames.len(), "{args:?}: one trace per frame");
                let ext = if json { "jsonl" } else { "txt" };
                check_golden(
                    &root().join(format!("tests/golden/trace/{stem}/{}.{ext}", pp.name)),
                    &stdout,
                );
            }
        }
    }
}

/// `xconnect trace examples/pe-ipvpn.toml` of hand-picked labelled frames
/// on the backbone port and of frames that leave into labels from a
/// trunk: the label stack decoded (with the control word and the inner
/// frame of a pseudowire), the labels popped and pushed, unknown, too
/// many and cut stacks. Text and JSON goldens under
/// `tests/golden/trace/labelled/`.
#[test]
fn golden_traces_of_labelled_frames() {
    let ex = "examples/pe-ipvpn.toml";
    let cfg = config::load(&root().join(ex)).unwrap();
    let plan = xconnect::config::compile(&cfg);
    let (wan, trunk_a) = (plan.ports[0].mac, plan.ports[1].mac);
    let udp = |tags: &[VlanTag], to: [u8; 6], src: &str, dst: &str, tos: u8| {
        let mut s = FrameSpec::udp(tags, ip(src), ip(dst), (40000, 443), tos, 96);
        s.dst_mac = to;
        s.src_mac = MAC_A;
        s.build()
    };
    let mut echo = FrameSpec::udp(&[], ip("203.0.113.2"), ip("203.0.113.1"), (0, 0), 0, 96);
    if let Payload::Ip { protocol, .. } = &mut echo.payload {
        *protocol = 1;
    }
    echo.dst_mac = wan;
    let echo = echo.build();
    let site_tag = [VlanTag::from_tci(Tpid::DOT1Q, 0x600a)];
    let site = udp(
        &site_tag,
        [2, 0, 0, 0, 0, 0x99],
        "192.0.2.9",
        "192.0.2.10",
        26 << 2,
    );
    let routed = udp(&[], wan, "203.0.113.70", "198.51.100.129", 46 << 2);
    let mut cut_cw = labelled(&site, &[(1101, 3, 255)], true, true, wan);
    cut_cw.truncate(20);
    let mut cut_stack = labelled(&routed, &[(16001, 0, 63), (1001, 5, 62)], false, false, wan);
    cut_stack.truncate(20);
    let from_wan = [
        // L3VPN under the transport label: popped, routed to the MSEEs.
        labelled(&routed, &[(16001, 0, 63), (1001, 5, 62)], false, false, wan),
        // L3VPN echo to this PE: answered behind the remote PE's labels.
        labelled(&echo, &[(1001, 0, 64)], false, false, wan),
        // Pseudowire with control word, a tagged inner frame.
        labelled(&site, &[(1101, 3, 255)], true, true, wan),
        // A label no attachment owns: IP by its version nibble, dropped.
        labelled(&routed, &[(1999, 0, 64)], false, false, wan),
        // Three labels: decoded under the owner of the bottom one, but
        // refused (a stack is one label, or two with ours on top).
        labelled(
            &routed,
            &[(16001, 0, 63), (500, 0, 63), (1001, 5, 62)],
            false,
            false,
            wan,
        ),
        cut_cw,
        cut_stack,
    ];
    let qinq = |c: u16| {
        vec![
            VlanTag::from_tci(Tpid::DOT1Q, 100 + u16::from(c == 201)),
            VlanTag::from_tci(Tpid::DOT1Q, 200),
        ]
    };
    let from_trunk = [
        // The second site's circuit: into the pseudowire, control word on.
        udp(
            &qinq(201),
            [2, 0, 0, 0, 0, 0x98],
            "192.0.2.10",
            "192.0.2.9",
            0,
        ),
        // Private peering toward the branch behind the remote PE.
        udp(&qinq(200), trunk_a, "192.0.2.2", "203.0.113.70", 46 << 2),
    ];
    for (port, frames) in [("wan", &from_wan[..]), ("trunk-a", &from_trunk[..])] {
        let file = tmp(&format!("labelled-{port}.pcap"));
        std::fs::write(&file, capture(frames)).unwrap();
        for json in [false, true] {
            let mut args = vec![
                "trace",
                ex,
                "--pcap",
                file.to_str().unwrap(),
                "--port",
                port,
            ];
            if json {
                args.push("--json");
            }
            let o = Command::new(env!("CARGO_BIN_EXE_xconnect"))
                .args(&args)
                .current_dir(root())
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let stdout = String::from_utf8(o.stdout).unwrap();
            let ext = if json { "jsonl" } else { "txt" };
            check_golden(
                &root().join(format!("tests/golden/trace/labelled/{port}.{ext}")),
                &stdout,
            );
        }
    }
}

fn sample_capture() -> (PathBuf, Vec<Vec<u8>>) {
    let cfg = config::load(&root().join("examples/pe-qinq.toml")).unwrap();
    let plan = xconnect::config::compile(&cfg);
    let frames = frames_for(&plan, 0);
    let file = tmp("pe-qinq-customer.pcap");
    std::fs::write(&file, capture(&frames)).unwrap();
    (file, frames)
}

#[test]
fn corrupt_capture_names_file_frame_and_offset_and_keeps_earlier_frames() {
    let (file, frames) = sample_capture();
    let bytes = std::fs::read(&file).unwrap();
    // Cut inside the record of frame 4.
    let offset: usize = 24 + frames[..3].iter().map(|f| 16 + f.len()).sum::<usize>();
    let cut = tmp("cut.pcap");
    std::fs::write(&cut, &bytes[..offset + 20]).unwrap();
    let c = cut.to_str().unwrap();
    let ex = root().join("examples/pe-qinq.toml");
    let ex = ex.to_str().unwrap();
    let o = trace_customer(c, &["--json"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 3);
    let err = String::from_utf8_lossy(&o.stderr);
    let want = format!("{c}: frame 4 at byte offset {offset}: truncated record");
    assert!(err.contains(&want), "stderr {err:?} lacks {want:?}");
    // Garbage and a missing file: clear errors, no panic.
    let junk = tmp("junk.pcap");
    std::fs::write(&junk, b"not a capture at all").unwrap();
    let o = trace_customer(junk.to_str().unwrap(), &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a pcap or pcapng file"));
    let o = trace_customer("/nonexistent.pcap", &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr)
        .contains("/nonexistent.pcap: byte offset 0: cannot read"));
    let o = xconnect(&["trace", ex, "--pcap", c, "--port", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no such port"));
}

#[test]
fn summary_out_and_limit_agree_with_the_detailed_trace() {
    let (file, frames) = sample_capture();
    let f = file.to_str().unwrap();
    let sent = tmp("sent.pcap");
    let o = trace_customer(f, &["--json", "--out", sent.to_str().unwrap()]);
    assert!(o.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let forwarded: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|v| v["verdict"]["action"] == "forward")
        .collect();
    assert!(!forwarded.is_empty());
    // --out holds exactly the transmitted frames, with their lengths.
    let mut src = xconnect::io::pcap::PcapSource::open(&sent).unwrap();
    let mut n = 0;
    while let Some(fr) = src.next_frame() {
        assert_eq!(
            Some(fr.data.len() as u64),
            forwarded[n]["verdict"]["bytes"].as_u64()
        );
        n += 1;
    }
    assert_eq!(n, forwarded.len());
    // --summary counts the same verdicts.
    let o = trace_customer(f, &["--summary", "--json"]);
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["frames"].as_u64(), Some(frames.len() as u64));
    let fwd: u64 = s["forwarded"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(fwd as usize, forwarded.len());
    let drops: u64 = s["dropped"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(
        drops as usize,
        lines
            .iter()
            .filter(|v| v["verdict"]["action"] == "drop")
            .count()
    );
    // --limit.
    let o = trace_customer(f, &["--json", "--limit", "5"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 5);
    // --down moves flows to the other trunk.
    let o = trace_customer(f, &["--summary", "--json", "--down", "trunk-a"]);
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(s["forwarded"].get("trunk-a").is_none(), "{s}");
    assert_eq!(s["forwarded"]["trunk-b"].as_u64(), Some(fwd));
}

#[test]
fn pcapng_input_traces_like_pcap() {
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
    use pcap_file::pcapng::blocks::interface_description::{
        InterfaceDescriptionBlock, InterfaceDescriptionOption,
    };
    use pcap_file::pcapng::PcapNgWriter;
    use pcap_file::DataLink;
    let (file, frames) = sample_capture();
    let mut w = PcapNgWriter::new(Vec::new()).unwrap();
    // Interface 0 is not Ethernet: its packet is skipped (and numbered).
    w.write_pcapng_block(InterfaceDescriptionBlock::new(DataLink::RAW, 0))
        .unwrap();
    // pcap-file writes EPB times as nanoseconds: say so (if_tsresol 9),
    // as readers take microseconds otherwise.
    w.write_pcapng_block(InterfaceDescriptionBlock {
        linktype: DataLink::ETHERNET,
        snaplen: 0,
        options: vec![InterfaceDescriptionOption::IfTsResol(9)],
    })
    .unwrap();
    w.write_pcapng_block(EnhancedPacketBlock {
        interface_id: 0,
        timestamp: Duration::ZERO,
        original_len: 4,
        data: std::borrow::Cow::Borrowed(&[0x45, 0, 0, 4]),
        options: vec![],
    })
    .unwrap();
    for (i, f) in frames.iter().enumerate() {
        w.write_pcapng_block(EnhancedPacketBlock {
            interface_id: 1,
            timestamp: Duration::from_secs(1_700_000_000) + Duration::from_millis(i as u64),
            original_len: f.len() as u32,
            data: std::borrow::Cow::Borrowed(f),
            options: vec![],
        })
        .unwrap();
    }
    let ng = tmp("sample.pcapng");
    std::fs::write(&ng, w.into_inner()).unwrap();
    let run = |p: &Path| {
        let o = trace_customer(p.to_str().unwrap(), &["--json"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        (
            String::from_utf8(o.stdout).unwrap(),
            String::from_utf8(o.stderr).unwrap(),
        )
    };
    let (a, _) = run(&file);
    let (b, err) = run(&ng);
    assert!(err.contains("1 frames skipped"), "{err}");
    // Same traces, frame numbers shifted by the skipped packet.
    let a: Vec<serde_json::Value> = a
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let b: Vec<serde_json::Value> = b
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(a.len(), b.len());
    for (x, mut y) in a.into_iter().zip(b) {
        assert_eq!(
            y["frame"].as_u64().unwrap(),
            x["frame"].as_u64().unwrap() + 1
        );
        y["frame"] = x["frame"].clone();
        assert_eq!(x, y);
    }
}

/// `frame` (Ethernet, tags, IPv4 or IPv6, TCP, checksums complete) as a
/// sender with segmentation offload hands it over and `tcpdump` records
/// it: the TCP checksum field holds only the pseudo-header sum.
fn owing_its_checksum(mut frame: Vec<u8>) -> Vec<u8> {
    use xconnect::wire::checksum::{fold, PseudoHeader};
    let (_, et_at) = xconnect::wire::parse_tags(&frame).unwrap();
    let l3 = et_at + 2;
    let (l4, pseudo) = if frame[et_at..l3] == [0x08, 0x00] {
        let b = |at: usize| -> [u8; 4] { frame[at..at + 4].try_into().unwrap() };
        let ph = PseudoHeader::V4 {
            src: b(l3 + 12).into(),
            dst: b(l3 + 16).into(),
        };
        (l3 + 4 * (frame[l3] & 0x0f) as usize, ph)
    } else {
        let b = |at: usize| -> [u8; 16] { frame[at..at + 16].try_into().unwrap() };
        let ph = PseudoHeader::V6 {
            src: b(l3 + 8).into(),
            dst: b(l3 + 24).into(),
        };
        (l3 + 40, ph)
    };
    let sum = fold(pseudo.sum(6, frame.len() - l4));
    frame[l4 + 16..l4 + 18].copy_from_slice(&sum.to_be_bytes());
    frame
}

/// TCP super-frames for every tag stack that arrives on `port`: IPv4 and
/// IPv6, 4 segments' payload at a 1500-byte MTU's MSS, owing their
/// checksum; one
/// IPv4 frame of the largest size with its checksum complete.
fn super_frames_for(plan: &Plan, port: usize) -> Vec<Vec<u8>> {
    let mac = plan.ports[port].mac;
    let mut out = Vec::new();
    let flows = [
        (
            "192.0.2.77",
            "203.0.113.200",
            46 << 2,
            64,
            4 * 1460 + 54 + 4,
            true,
        ),
        (
            "2001:db8:1::7",
            "2001:db8:200::9",
            26 << 2,
            9,
            4 * 1440 + 74 + 4,
            true,
        ),
        (
            "192.0.2.77",
            "198.51.100.200",
            0,
            64,
            14 + 65_535 + 4,
            false,
        ),
    ];
    for stack in &stacks(plan)[port] {
        let tags = tags_in(stack);
        for (i, (s, d, tos, ttl, len, owing)) in flows.iter().enumerate() {
            let f = FrameSpec {
                dst_mac: mac,
                src_mac: MAC_A,
                tags: tags.clone(),
                payload: Payload::Ip {
                    src: ip(s),
                    dst: ip(d),
                    protocol: 6,
                    src_port: 41000 + i as u16,
                    dst_port: 5201,
                    tos: *tos,
                    ttl: *ttl,
                },
                wire_len: len + 4 * tags.len(),
            }
            .build();
            out.push(if *owing { owing_its_checksum(f) } else { f });
        }
    }
    out
}

/// `xconnect trace` of TCP super-frames (as `tcpdump` records them where
/// offloads are on) through the provider edge's push, the MSEE's pop and
/// a managed-L3 route: goldens under `tests/golden/trace/super-frames/`,
/// and the facts they must show: the metadata read back (segment size,
/// header length, partial checksum at the TCP header), moved on the way
/// out by exactly what the headers grew or shrank, the segment size
/// kept, the whole super-frame out (TTL/hop limit decremented once when
/// routed).
#[test]
fn golden_traces_of_super_frames() {
    for stem in ["lab-pe-qinq", "msee-qinq", "pe-l3"] {
        let ex = format!("examples/{stem}.toml");
        let cfg = config::load(&root().join(&ex)).unwrap();
        let plan = Arc::new(xconnect::config::compile(&cfg));
        let mut forwarded = 0;
        for (port, pp) in plan.ports.iter().enumerate() {
            let frames = super_frames_for(&plan, port);
            if frames.is_empty() {
                continue;
            }
            let file = tmp(&format!("super-{stem}-{}.pcap", pp.name));
            std::fs::write(&file, capture(&frames)).unwrap();
            let sent = tmp(&format!("super-{stem}-{}-out.pcap", pp.name));
            let f = file.to_str().unwrap();
            let mut jsonl = String::new();
            for json in [false, true] {
                let mut args = vec!["trace", &ex, "--pcap", f, "--port", &pp.name];
                if json {
                    args.extend(["--json", "--out", sent.to_str().unwrap()]);
                }
                let o = Command::new(env!("CARGO_BIN_EXE_xconnect"))
                    .args(&args)
                    .current_dir(root())
                    .output()
                    .unwrap();
                assert!(
                    o.status.success(),
                    "{args:?}: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                let stdout = String::from_utf8(o.stdout).unwrap();
                let ext = if json { "jsonl" } else { "txt" };
                check_golden(
                    &root().join(format!(
                        "tests/golden/trace/super-frames/{stem}-{}.{ext}",
                        pp.name
                    )),
                    &stdout,
                );
                if json {
                    jsonl = stdout;
                }
            }
            let mut outputs = xconnect::io::pcap::PcapSource::open(&sent).unwrap();
            for (line, input) in jsonl.lines().zip(&frames) {
                let t: serde_json::Value = serde_json::from_str(line).unwrap();
                let g = &t["gso"];
                let r = &g["received"];
                let hl = |v: &serde_json::Value| v["header_len"].as_i64().unwrap();
                // The MSS of a 1500-byte MTU after these IP and TCP headers.
                let l3 = xconnect::wire::parse_tags(input).unwrap().1 + 2;
                let mss = 1500 - (hl(r) - l3 as i64);
                assert_eq!(r["segment_size"], mss, "{stem} {}: {line}", pp.name);
                let payload = input.len() - hl(r) as usize;
                assert_eq!(g["segments"], payload.div_ceil(mss as usize), "{line}");
                let owing = r["checksum"] == "partial";
                assert_eq!(owing, input.len() < 60_000, "{line}");
                if t["verdict"]["bytes"].is_null() {
                    continue;
                }
                let out = outputs.next_frame().unwrap().data.to_vec();
                assert_eq!(t["verdict"]["bytes"], out.len());
                let s = &g["sent"];
                if s.is_null() {
                    // Answered (an ICMP error) or a resolution request.
                    assert!(!t["stages"]["reply"].is_null() || t["verdict"]["action"] == "resolve");
                    continue;
                }
                forwarded += 1;
                let grew = out.len() as i64 - input.len() as i64;
                assert_eq!(hl(s) - hl(r), grew, "{line}");
                if owing {
                    let cs = |v: &serde_json::Value| v["csum_start"].as_i64().unwrap();
                    assert_eq!(cs(s) - cs(r), grew, "{line}");
                }
                assert_eq!(s["segment_size"], r["segment_size"]);
                // The payload is the input's, byte for byte.
                let payload = hl(r) as usize;
                assert_eq!(out[hl(s) as usize..], input[payload..], "{line}");
                // TTL / hop limit: once less when routed, as it was when
                // cross-connected.
                let ttl_at = |f: &[u8]| {
                    let l3 = xconnect::wire::parse_tags(f).unwrap().1 + 2;
                    f[l3 + if f[l3] >> 4 == 4 { 8 } else { 7 }]
                };
                let routed = t["stages"]["route"].is_object();
                assert_eq!(ttl_at(&out) + u8::from(routed), ttl_at(input), "{line}");
            }
        }
        assert!(
            forwarded >= 2,
            "{stem}: super-frames forwarded: {forwarded}"
        );
    }
}
