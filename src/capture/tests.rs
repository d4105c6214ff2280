use super::tap::{records, Record};
use super::writer::{Files, Interface, Opener};
use super::*;
use crate::frame::{Batch, Verdict};
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use std::borrow::Cow;
use std::io::Write;
use std::time::Duration;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xconnect-capture-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn ports() -> Vec<PortSpec> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pe-qinq.toml");
    crate::config::port_specs(&crate::config::load(&p).unwrap())
}

fn ifaces() -> Vec<Interface> {
    ["customer", "trunk-a"]
        .iter()
        .map(|n| Interface {
            name: n.to_string(),
            description: format!("if-{n} (af_packet)"),
        })
        .collect()
}

/// Every packet block of a file: (interface, timestamp, data, options).
type Epb = (
    u32,
    Duration,
    Vec<u8>,
    u32,
    Vec<EnhancedPacketOption<'static>>,
);

fn read(path: &Path) -> (Vec<Vec<InterfaceDescriptionOption<'static>>>, Vec<Epb>) {
    let f = std::fs::File::open(path).unwrap();
    let mut r = PcapNgReader::new(f).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut pkts = Vec::new();
    while let Some(b) = r.next_block() {
        match b.unwrap_or_else(|e| panic!("{}: {e}", path.display())) {
            Block::EnhancedPacket(p) => pkts.push((
                p.interface_id,
                p.timestamp,
                p.data.to_vec(),
                p.original_len,
                p.options.into_iter().map(|o| o.into_owned()).collect(),
            )),
            Block::InterfaceDescription(_) => {}
            other => panic!("unexpected block {other:?}"),
        }
    }
    let idbs = r
        .interfaces()
        .iter()
        .map(|i| i.options.iter().map(|o| o.clone().into_owned()).collect())
        .collect();
    (idbs, pkts)
}

fn rec(port: u16, dir: Direction, reason: Option<DropReason>, data: &[u8]) -> Record<'_> {
    Record {
        ts_ns: 1_763_900_000_123_456_789,
        orig_len: data.len() as u32 + 10,
        port,
        dir,
        reason,
        data,
    }
}

#[test]
fn packet_blocks_match_what_pcap_file_writes_and_reads() {
    let dir = scratch("epb");
    let mut f =
        Files::create(&dir, "t", &ifaces(), 2048, 1 << 20, 0, writer::create_new()).unwrap();
    let frame: Vec<u8> = (0..61u8).collect();
    f.write(&rec(1, Direction::Drop, Some(DropReason::NoLinkUp), &frame))
        .unwrap();
    f.write(&rec(0, Direction::Tx, None, &frame[..4])).unwrap();
    f.flush().unwrap();
    let path = f.current().unwrap().to_path_buf();
    assert_eq!(path, dir.join("t-0001.pcapng"));
    let (idbs, pkts) = read(&path);
    assert_eq!(idbs.len(), 2);
    assert!(
        idbs[1].contains(&InterfaceDescriptionOption::IfName(Cow::Borrowed(
            "trunk-a"
        )))
    );
    assert!(idbs[1].contains(&InterfaceDescriptionOption::IfTsResol(9)));
    assert_eq!(pkts.len(), 2);
    let (iface, ts, data, orig, opts) = &pkts[0];
    assert_eq!(
        (*iface, *ts, &data[..], *orig),
        (
            1,
            Duration::from_nanos(1_763_900_000_123_456_789),
            &frame[..],
            71
        )
    );
    assert_eq!(
        opts,
        &vec![
            EnhancedPacketOption::Flags(1),
            EnhancedPacketOption::Comment(Cow::Borrowed("drop: no-link-up"))
        ]
    );
    assert_eq!(pkts[1].4, vec![EnhancedPacketOption::Flags(2)]);
    // Byte for byte what pcap-file would have written for the same block.
    let mut w =
        pcap_file::pcapng::PcapNgWriter::with_endianness(Vec::new(), pcap_file::Endianness::Little)
            .unwrap();
    for _ in 0..2 {
        w.write_pcapng_block(
            pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock::new(
                pcap_file::DataLink::ETHERNET,
                2048,
            ),
        )
        .unwrap();
    }
    let before = w.get_ref().len();
    w.write_pcapng_block(EnhancedPacketBlock {
        interface_id: 1,
        timestamp: Duration::from_nanos(1_763_900_000_123_456_789),
        original_len: 71,
        data: Cow::Borrowed(&frame),
        options: vec![
            EnhancedPacketOption::Flags(1),
            EnhancedPacketOption::Comment(Cow::Borrowed("drop: no-link-up")),
        ],
    })
    .unwrap();
    let expected = w.into_inner()[before..].to_vec();
    let bytes = std::fs::read(&path).unwrap();
    assert!(
        bytes.windows(expected.len()).any(|w| w == &expected[..]),
        "the EPB bytes differ from pcap-file's"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_tiny_size_limit_rotates_and_keeps_every_frame() {
    let dir = scratch("rotate");
    let mut f = Files::create(&dir, "t", &ifaces(), 2048, 4096, 0, writer::create_new()).unwrap();
    let frame = [0x5au8; 200];
    for i in 0..100u32 {
        let mut fr = frame;
        fr[..4].copy_from_slice(&i.to_be_bytes());
        f.write(&rec((i % 2) as u16, Direction::Rx, None, &fr))
            .unwrap();
    }
    f.flush().unwrap();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    assert!(paths.len() >= 5, "{paths:?}");
    assert_eq!(f.files as usize, paths.len());
    let mut seen = Vec::new();
    let mut bytes = 0;
    for p in &paths {
        let len = std::fs::metadata(p).unwrap().len();
        assert!(len <= 4096, "{} is {len} bytes", p.display());
        bytes += len;
        let (idbs, pkts) = read(p);
        assert_eq!(idbs.len(), 2, "every file describes every port");
        assert!(!pkts.is_empty());
        seen.extend(
            pkts.iter()
                .map(|p| u32::from_be_bytes(p.2[..4].try_into().unwrap())),
        );
    }
    assert_eq!(
        seen,
        (0..100).collect::<Vec<u32>>(),
        "every frame once, in order"
    );
    assert_eq!(bytes, f.bytes);
    assert_eq!(f.written, 100);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn only_the_newest_files_are_kept() {
    let dir = scratch("keep");
    let mut f = Files::create(&dir, "t", &ifaces(), 2048, 2048, 3, writer::create_new()).unwrap();
    for _ in 0..60 {
        f.write(&rec(0, Direction::Tx, None, &[1u8; 300])).unwrap();
    }
    f.flush().unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let last = f.files as u32;
    assert!(last > 3);
    let want: Vec<String> = (last - 2..=last)
        .map(|s| format!("t-{s:04}.pcapng"))
        .collect();
    assert_eq!(names, want);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unusable_directory_is_an_error_naming_it() {
    let base = scratch("unusable");
    std::fs::create_dir_all(&base).unwrap();
    let file = base.join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let spec = CaptureSpec::new(file.join("sub"));
    let e = Capture::start(&spec, &ports(), 1, |_| {}).err().unwrap();
    let msg = format!("{e:#}");
    assert!(msg.contains("plain-file/sub"), "{msg}");
    let _ = std::fs::remove_dir_all(&base);
}

/// A writer that fails (disk full) after `left` bytes.
struct Full {
    left: usize,
}

impl Write for Full {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
        }
        let n = b.len().min(self.left);
        self.left -= n;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_write_error_stops_the_capture_not_the_workers() {
    let dir = scratch("full");
    let opener: Opener = Box::new(|_: &Path| Ok(Box::new(Full { left: 300_000 }) as _));
    let files = Files::create(&dir, "t", &ifaces(), 2048, 1 << 30, 0, opener).unwrap();
    let pool = tap::Pool::new(8);
    let failed = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(WriterStats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let logged = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let t = {
        let (pool, stop, failed, stats, logged) = (
            pool.clone(),
            stop.clone(),
            failed.clone(),
            stats.clone(),
            logged.clone(),
        );
        std::thread::spawn(move || {
            writer::run(files, vec![pool], stop, failed, stats, move |m| {
                logged.lock().unwrap().push(m.to_string())
            })
        })
    };
    let compiled = Compiled {
        port_dirs: vec![7, 7],
        reasons: u32::MAX,
    };
    let mut tap = CaptureTap::new(compiled, pool.clone(), failed.clone(), 2048);
    let mut b = Batch::new();
    let frame = [3u8; 1000];
    for _ in 0..32 {
        b.push(&frame);
    }
    // 2000 batches of 32 KB: far more than the 300 KB the "disk" takes.
    for _ in 0..2000 {
        tap.received(&b);
        if failed.load(Ordering::Relaxed) {
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    tap.flush();
    for _ in 0..100 {
        tap.received(&b);
    }
    tap.flush();
    stop.store(true, Ordering::Release);
    t.join().unwrap();
    assert!(failed.load(Ordering::Relaxed));
    let log = logged.lock().unwrap().clone();
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(
        log[0].contains("capture stopped") && log[0].contains("No space left"),
        "{log:?}"
    );
    assert!(stats
        .error
        .lock()
        .unwrap()
        .as_ref()
        .unwrap()
        .contains("No space"));
    let written = stats.written.load(Ordering::Relaxed);
    assert!(written > 0 && written < 300, "{written}");
    // Every record is either written or counted as lost; after the error
    // the tap copies nothing more.
    let queued = pool.queued.load(Ordering::Relaxed);
    let lost = pool.dropped.load(Ordering::Relaxed);
    let discarded = stats.discarded.load(Ordering::Relaxed);
    assert_eq!(
        written + discarded,
        queued,
        "written {written} discarded {discarded}"
    );
    assert!(queued + lost < 2100 * 32);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn capture_start_to_finish_through_the_taps() {
    let dir = scratch("e2e");
    let mut spec = CaptureSpec::new(&dir);
    spec.filter = Filter::parse(&["trunk-a".into()], &[], &[]).unwrap();
    let (mut cap, mut taps) = Capture::start(&spec, &ports(), 2, |_| {}).unwrap();
    assert_eq!(taps.len(), 2);
    let name = cap
        .first_file()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with("xconnect-20") && name.ends_with("-0001.pcapng"),
        "{name}"
    );
    let mut b = Batch::new();
    b.port = 1; // trunk-a
    b.push(&[1u8; 64]);
    b.push(&[2u8; 64]);
    taps[0].received(&b);
    b.set_verdict(0, Verdict::Drop(DropReason::UnknownAttachment));
    b.set_verdict(1, Verdict::Forward(1));
    taps[1].processed(&b);
    taps[1].transmitted(&b, 1, 1);
    b.port = 0; // customer: not captured
    taps[0].received(&b);
    drop(taps); // a dropped tap flushes
    let r = cap.finish();
    assert_eq!((r.written, r.dropped, r.files, r.error), (4, 0, 1, None));
    let (_, pkts) = read(cap.first_file());
    assert_eq!(pkts.len(), 4);
    let drops: Vec<_> = pkts
        .iter()
        .filter(|p| {
            p.4.contains(&EnhancedPacketOption::Comment(Cow::Borrowed(
                "drop: unknown-attachment",
            )))
        })
        .collect();
    assert_eq!(drops.len(), 1);
    assert_eq!(drop_comment(DropReason::TxFull), "drop: tx-full");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn utc_stamps() {
    assert_eq!(utc_stamp(0), "19700101T000000Z");
    assert_eq!(utc_stamp(951_782_400), "20000229T000000Z");
    assert_eq!(utc_stamp(1_763_911_871), "20251123T153111Z");
}

#[test]
fn records_in_an_empty_chunk() {
    assert_eq!(records(&[]).count(), 0);
    assert_eq!(records(&[0u8; 5]).count(), 0);
}
