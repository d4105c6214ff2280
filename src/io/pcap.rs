//! Capture files as ports: [`PcapSource`] reads a pcap or pcapng file
//! (Ethernet link type, tags in the bytes) as one port's receive side;
//! [`PcapSink`] writes frames to a pcap file (a port's transmit side).
//!
//! Contract:
//! - The file format is read and written by the `pcap-file` crate; this
//!   module adds frame numbering, byte offsets and Ethernet checks.
//! - Frames are numbered from 1 in file order, as Wireshark numbers them
//!   (every packet record counts, including ones skipped for their link
//!   type).
//! - A truncated or corrupt file ends the frames with a [`CaptureError`]
//!   that names the file, the number the next frame would have had and
//!   the byte offset of its record; every frame before it was delivered.
//! - Never panics on any file content.

use super::{Backend, IoStats};
use crate::pipeline::{Batch, PortId};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapParser, PcapWriter};
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::DataLink;
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A capture file that cannot be read (further).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureError {
    /// The file.
    pub file: PathBuf,
    /// The number the failing frame would have had (0: the file header).
    pub frame: u64,
    /// Byte offset of the failing record (or header) in the file.
    pub offset: usize,
    /// What is wrong.
    pub what: String,
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.frame == 0 {
            write!(
                f,
                "{}: byte offset {}: {}",
                self.file.display(),
                self.offset,
                self.what
            )
        } else {
            write!(
                f,
                "{}: frame {} at byte offset {}: {}",
                self.file.display(),
                self.frame,
                self.offset,
                self.what
            )
        }
    }
}

impl std::error::Error for CaptureError {}

/// One frame read from a capture.
#[derive(Clone, Copy, Debug)]
pub struct CapturedFrame<'a> {
    /// Frame number (from 1).
    pub number: u64,
    /// Capture timestamp (since the Unix epoch).
    pub timestamp: Duration,
    /// Length of the frame on the wire.
    pub original_len: u32,
    /// The captured bytes (fewer than `original_len` if the capture cut it).
    pub data: &'a [u8],
}

enum Format {
    Pcap(PcapParser),
    PcapNg(PcapNgParser),
}

/// A pcap or pcapng file read as a port's receive side.
pub struct PcapSource {
    file: PathBuf,
    data: Vec<u8>,
    format: Format,
    /// Offset of the first record (rewind point).
    start: usize,
    pos: usize,
    /// Frames read so far (the last frame's number).
    number: u64,
    error: Option<CaptureError>,
    skipped: u64,
    stats: IoStats,
}

impl fmt::Debug for PcapSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PcapSource")
            .field("file", &self.file)
            .field("bytes", &self.data.len())
            .field("pos", &self.pos)
            .field("number", &self.number)
            .finish()
    }
}

/// The pcapng section header block type, byte-order independent.
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

fn describe(e: &pcap_file::PcapError) -> String {
    match e {
        pcap_file::PcapError::IncompleteBuffer => {
            "truncated record (the file ends inside it)".into()
        }
        other => other.to_string(),
    }
}

impl PcapSource {
    /// Open a capture file.
    pub fn open(path: impl AsRef<Path>) -> Result<PcapSource, CaptureError> {
        let path = path.as_ref();
        let data = std::fs::read(path).map_err(|e| CaptureError {
            file: path.to_path_buf(),
            frame: 0,
            offset: 0,
            what: format!("cannot read: {e}"),
        })?;
        PcapSource::from_bytes(path, data)
    }

    /// A capture held in memory; `file` names it in errors.
    pub fn from_bytes(file: impl AsRef<Path>, data: Vec<u8>) -> Result<PcapSource, CaptureError> {
        let file = file.as_ref().to_path_buf();
        let header_error = |what: String| CaptureError {
            file: file.clone(),
            frame: 0,
            offset: 0,
            what,
        };
        let (format, start) = if data.starts_with(&PCAPNG_MAGIC) {
            let (rest, parser) = PcapNgParser::new(&data).map_err(|e| {
                header_error(format!(
                    "not a valid pcapng section header: {}",
                    describe(&e)
                ))
            })?;
            (Format::PcapNg(parser), data.len() - rest.len())
        } else {
            let (rest, parser) = PcapParser::new(&data).map_err(|e| {
                header_error(format!(
                    "not a pcap or pcapng file (bad file header: {})",
                    describe(&e)
                ))
            })?;
            let link = parser.header().datalink;
            if !is_ethernet(link) {
                return Err(header_error(format!(
                    "link type {link:?}: xconnect reads Ethernet captures only"
                )));
            }
            (Format::Pcap(parser), data.len() - rest.len())
        };
        Ok(PcapSource {
            file,
            data,
            format,
            start,
            pos: start,
            number: 0,
            error: None,
            skipped: 0,
            stats: IoStats::default(),
        })
    }

    /// The file's path.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Frames read so far.
    pub fn frames_read(&self) -> u64 {
        self.number
    }

    /// Frames skipped because their pcapng interface is not Ethernet.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The error that ended the file, if any (after [`PcapSource::next_frame`]
    /// returned `None`).
    pub fn error(&self) -> Option<&CaptureError> {
        self.error.as_ref()
    }

    /// Counters since the last call (frames too long for a buffer, met by
    /// [`Backend::recv`]).
    pub fn take_stats(&mut self) -> IoStats {
        std::mem::take(&mut self.stats)
    }

    /// Start again from the first frame (the bench replays a capture).
    pub fn rewind(&mut self) {
        self.pos = self.start;
        self.number = 0;
        self.error = None;
        if let Format::PcapNg(p) = &mut self.format {
            // Re-read the section header so interface numbering restarts.
            if let Ok((_, fresh)) = PcapNgParser::new(&self.data) {
                *p = fresh;
            }
        }
    }

    /// The next Ethernet frame, or `None` at the end of the file or at the
    /// first corrupt record (then [`PcapSource::error`] says why).
    pub fn next_frame(&mut self) -> Option<CapturedFrame<'_>> {
        loop {
            if self.error.is_some() || self.pos >= self.data.len() {
                return None;
            }
            let at = self.pos;
            let slice = &self.data[at..];
            let fail = |what: String, number: u64| CaptureError {
                file: self.file.clone(),
                frame: number + 1,
                offset: at,
                what,
            };
            match &mut self.format {
                // Raw records: pcap-file's checked packets refuse an
                // original length over the snap length, which is what a
                // snap-length-limited capture holds; libpcap and Wireshark
                // accept it, and so does xconnect.
                Format::Pcap(parser) => match parser.next_raw_packet(slice) {
                    Ok((rest, raw)) => {
                        let nanos_per_frac = match parser.header().ts_resolution {
                            pcap_file::TsResolution::MicroSecond => 1_000,
                            pcap_file::TsResolution::NanoSecond => 1,
                        };
                        let frac = (raw.ts_frac as u64 * nanos_per_frac).min(999_999_999);
                        let timestamp = Duration::new(raw.ts_sec as u64, frac as u32);
                        let len = raw.data.len();
                        self.pos = self.data.len() - rest.len();
                        self.number += 1;
                        // The packet's bytes sit just before `rest`.
                        let end = self.pos;
                        return Some(CapturedFrame {
                            number: self.number,
                            timestamp,
                            original_len: raw.orig_len,
                            data: &self.data[end - len..end],
                        });
                    }
                    Err(e) => {
                        self.error = Some(fail(describe(&e), self.number));
                        return None;
                    }
                },
                Format::PcapNg(parser) => {
                    let (rest, block) = match parser.next_block(slice) {
                        Ok(x) => x,
                        Err(e) => {
                            self.error = Some(fail(describe(&e), self.number));
                            return None;
                        }
                    };
                    let next = self.data.len() - rest.len();
                    let (timestamp, original_len, data, interface) = match &block {
                        Block::EnhancedPacket(p) => (
                            p.timestamp,
                            p.original_len,
                            borrowed(&p.data),
                            p.interface_id,
                        ),
                        Block::SimplePacket(p) => {
                            (Duration::ZERO, p.original_len, borrowed(&p.data), 0u32)
                        }
                        // The obsolete packet block: microseconds (the
                        // default resolution).
                        Block::Packet(p) => (
                            Duration::from_micros(p.timestamp),
                            p.original_len,
                            borrowed(&p.data),
                            p.interface_id as u32,
                        ),
                        _ => {
                            self.pos = next;
                            continue;
                        }
                    };
                    let Some(link) = parser
                        .interfaces()
                        .get(interface as usize)
                        .map(|i| i.linktype)
                    else {
                        self.error = Some(fail(
                            format!("packet of undeclared interface {interface}"),
                            self.number,
                        ));
                        return None;
                    };
                    let Some(data) = data else {
                        // pcap-file 2 borrows packet data from the input.
                        self.error = Some(fail(
                            "packet data not borrowed from the file".into(),
                            self.number,
                        ));
                        return None;
                    };
                    self.pos = next;
                    self.number += 1;
                    if !is_ethernet(link) {
                        self.skipped += 1;
                        continue;
                    }
                    return Some(CapturedFrame {
                        number: self.number,
                        timestamp,
                        original_len,
                        data,
                    });
                }
            }
        }
    }
}

/// Ethernet: the link type is the low 16 bits of the pcap field (the
/// upper bits carry the FCS length and reserved flags), as libpcap and
/// Wireshark read it.
fn is_ethernet(link: DataLink) -> bool {
    match link {
        DataLink::ETHERNET => true,
        DataLink::Unknown(v) => v & 0xffff == 1,
        _ => false,
    }
}

/// The bytes of a block's data when they are borrowed from the input.
fn borrowed<'a>(c: &std::borrow::Cow<'a, [u8]>) -> Option<&'a [u8]> {
    match c {
        std::borrow::Cow::Borrowed(d) => Some(d),
        std::borrow::Cow::Owned(_) => None,
    }
}

impl Backend for PcapSource {
    /// The next frames of the file; frames too long for a buffer are
    /// counted in [`IoStats::rx_oversize`] (see [`PcapSource::take_stats`]).
    fn recv(&mut self, batch: &mut Batch) -> io::Result<usize> {
        let mut n = 0;
        while !batch.is_full() {
            let Some(f) = self.next_frame() else { break };
            let len = f.data.len() as u64;
            if batch.push(f.data) {
                n += 1;
            } else {
                self.stats.rx_oversize += 1;
                self.stats.rx_oversize_bytes += len;
            }
        }
        Ok(n)
    }

    /// A capture file has no transmit side.
    fn send(&mut self, _batch: &Batch, _port: PortId) -> io::Result<usize> {
        Ok(0)
    }
}

/// Frames written to a pcap file (Ethernet, microsecond timestamps).
pub struct PcapSink {
    file: PathBuf,
    writer: PcapWriter<BufWriter<File>>,
    written: u64,
}

impl fmt::Debug for PcapSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PcapSink")
            .field("file", &self.file)
            .field("written", &self.written)
            .finish()
    }
}

impl PcapSink {
    /// Create (or truncate) `path`.
    pub fn create(path: impl AsRef<Path>) -> anyhow::Result<PcapSink> {
        let path = path.as_ref();
        let f = File::create(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot create: {e}", path.display()))?;
        let header = PcapHeader {
            datalink: DataLink::ETHERNET,
            snaplen: 65535,
            endianness: pcap_file::Endianness::Little,
            ..PcapHeader::default()
        };
        let writer = PcapWriter::with_header(BufWriter::new(f), header)
            .map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", path.display()))?;
        Ok(PcapSink {
            file: path.to_path_buf(),
            writer,
            written: 0,
        })
    }

    /// Append one frame.
    pub fn write(&mut self, timestamp: Duration, frame: &[u8]) -> anyhow::Result<()> {
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        self.writer
            .write_packet(&PcapPacket::new(timestamp, len, frame))
            .map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", self.file.display()))?;
        self.written += 1;
        Ok(())
    }

    /// Frames written.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Flush to the file.
    pub fn finish(self) -> anyhow::Result<()> {
        use std::io::Write;
        let file = self.file;
        self.writer
            .into_writer()
            .flush()
            .map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", file.display()))
    }
}

/// A pcap file's bytes holding `frames` (microsecond timestamps from
/// `timestamps`), for tests and the bench.
pub fn pcap_bytes<'a>(frames: impl IntoIterator<Item = (Duration, &'a [u8])>) -> Vec<u8> {
    let header = PcapHeader {
        datalink: DataLink::ETHERNET,
        snaplen: 65535,
        endianness: pcap_file::Endianness::Little,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(Vec::new(), header).expect("writing to a Vec cannot fail");
    for (ts, f) in frames {
        let len = u32::try_from(f.len()).unwrap_or(u32::MAX);
        w.write_packet(&PcapPacket::new(ts, len, f))
            .expect("writing to a Vec cannot fail");
    }
    w.into_writer()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames() -> Vec<Vec<u8>> {
        (0..5u8)
            .map(|i| {
                let mut f = vec![0u8; 60 + i as usize];
                f[0] = i;
                f[12] = 0x08;
                f
            })
            .collect()
    }

    fn capture() -> Vec<u8> {
        let fs = frames();
        pcap_bytes(
            fs.iter()
                .enumerate()
                .map(|(i, f)| (Duration::from_micros(1_000 + i as u64), f.as_slice())),
        )
    }

    #[test]
    fn reads_back_what_was_written() {
        let mut s = PcapSource::from_bytes("t.pcap", capture()).unwrap();
        let want = frames();
        let mut n = 0;
        while let Some(f) = s.next_frame() {
            assert_eq!(f.data, want[n].as_slice());
            assert_eq!(f.number, n as u64 + 1);
            assert_eq!(f.timestamp, Duration::from_micros(1_000 + n as u64));
            n += 1;
        }
        assert_eq!(n, 5);
        assert!(s.error().is_none());
        s.rewind();
        assert_eq!(s.next_frame().unwrap().number, 1);
    }

    #[test]
    fn truncation_names_frame_and_offset_and_keeps_earlier_frames() {
        let bytes = capture();
        // Record 3 starts after the 24-byte header and two records of 16 + len bytes.
        let third = 24 + (16 + 60) + (16 + 61);
        for cut in [third + 1, third + 15, third + 16 + 30] {
            let mut s = PcapSource::from_bytes("cut.pcap", bytes[..cut].to_vec()).unwrap();
            let mut n = 0;
            while s.next_frame().is_some() {
                n += 1;
            }
            assert_eq!(n, 2, "cut at {cut}");
            let e = s.error().unwrap();
            assert_eq!((e.frame, e.offset), (3, third), "cut at {cut}: {e}");
            assert!(
                e.to_string()
                    .starts_with("cut.pcap: frame 3 at byte offset"),
                "{e}"
            );
        }
    }

    #[test]
    fn never_panics_on_corrupt_bytes() {
        let bytes = capture();
        for i in 0..bytes.len() {
            for v in [0u8, 0xff, 0x7f] {
                let mut b = bytes.clone();
                b[i] = v;
                if let Ok(mut s) = PcapSource::from_bytes("x.pcap", b) {
                    let mut guard = 0;
                    while s.next_frame().is_some() && guard < 100 {
                        guard += 1;
                    }
                }
            }
        }
        for cut in 0..bytes.len() {
            if let Ok(mut s) = PcapSource::from_bytes("x.pcap", bytes[..cut].to_vec()) {
                while s.next_frame().is_some() {}
            }
        }
    }

    #[test]
    fn snap_length_cut_frames_are_read() {
        // A record of 60 captured bytes from a 1,500-byte frame, in a file
        // whose snap length is 60 (as `tcpdump -s 60` writes it).
        let mut b = capture()[..24 + 16 + 60].to_vec();
        b[16..20].copy_from_slice(&60u32.to_le_bytes());
        b[24 + 12..24 + 16].copy_from_slice(&1500u32.to_le_bytes());
        let mut s = PcapSource::from_bytes("snap.pcap", b).unwrap();
        let f = s.next_frame().unwrap();
        assert_eq!((f.data.len(), f.original_len), (60, 1500));
        assert!(s.next_frame().is_none() && s.error().is_none());
    }

    #[test]
    fn rejects_other_link_types_and_non_captures() {
        let mut b = capture();
        b[20] = 113; // Linux cooked capture
        let e = PcapSource::from_bytes("sll.pcap", b).unwrap_err();
        assert!(e.to_string().contains("Ethernet captures only"), "{e}");
        let e = PcapSource::from_bytes("x.toml", b"[ports]\n".to_vec()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("x.toml: byte offset 0: not a pcap"),
            "{e}"
        );
    }

    #[test]
    fn recv_fills_batches_and_counts_oversize() {
        let mut fs = frames();
        fs.insert(1, vec![0u8; 20_000]);
        let bytes = pcap_bytes(fs.iter().map(|f| (Duration::ZERO, f.as_slice())));
        let mut s = PcapSource::from_bytes("big.pcap", bytes).unwrap();
        let mut b = Batch::new();
        assert_eq!(s.recv(&mut b).unwrap(), 5);
        assert_eq!(s.take_stats().rx_oversize, 1);
    }

    #[test]
    fn sink_writes_a_readable_file() {
        let dir = std::env::temp_dir().join(format!("xconnect-pcap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.pcap");
        let mut sink = PcapSink::create(&path).unwrap();
        for f in frames() {
            sink.write(Duration::from_secs(7), &f).unwrap();
        }
        assert_eq!(sink.written(), 5);
        sink.finish().unwrap();
        let mut s = PcapSource::open(&path).unwrap();
        let mut n = 0;
        while let Some(f) = s.next_frame() {
            assert_eq!(f.timestamp, Duration::from_secs(7));
            n += 1;
        }
        assert_eq!(n, 5);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
