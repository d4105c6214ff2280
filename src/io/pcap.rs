//! Capture files as ports: [`PcapSource`] reads a pcap or pcapng file
//! (Ethernet link type, tags in the bytes) as one port's receive side;
//! [`PcapSink`] writes frames to a pcap file (a port's transmit side).
//!
//! Contract:
//! - The file format is read and written by the `pcap-file` crate; this
//!   module adds frame numbering, byte offsets and Ethernet checks, and
//!   reads pcapng as libpcap and Wireshark do where pcap-file 2 does not:
//!   an option list that runs to the end of its block without the
//!   end-of-options marker is accepted; packet times are in the
//!   interface's `if_tsresol` units (default microseconds) plus its
//!   `if_tsoffset`; the obsolete packet block's timestamp is high word
//!   first in either byte order; a simple packet block's frame ends at its
//!   original length and the interface's snap length, not its padding.
//! - Frames are numbered from 1 in file order, as Wireshark numbers them
//!   (every packet record counts, including ones skipped for their link
//!   type).
//! - A truncated or corrupt file ends the frames with a [`CaptureError`]
//!   that names the file, the number the next frame would have had and
//!   the byte offset of its record; every frame before it was delivered.
//! - Never panics on any file content.

use super::Backend;
use crate::frame::{Batch, Outgoing};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapParser, PcapWriter};
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::{DataLink, Endianness};
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
            let (start, parser) = open_section(&data).map_err(|e| {
                header_error(format!(
                    "not a valid pcapng section header: {}",
                    describe(&e)
                ))
            })?;
            (Format::PcapNg(parser), start)
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

    /// Start again from the first frame (the bench replays a capture).
    pub fn rewind(&mut self) {
        self.pos = self.start;
        self.number = 0;
        self.error = None;
        if let Format::PcapNg(p) = &mut self.format {
            // Re-read the section header so interface numbering restarts.
            if let Ok((_, fresh)) = open_section(&self.data) {
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
                    // A block pcap-file refuses only for a missing
                    // end-of-options marker is parsed from a copy that has
                    // one (`patched`); its length in the file is 4 less.
                    let patched: Vec<u8>;
                    let (block_len, block, base) = match parser.next_block(slice) {
                        Ok((rest, block)) => (slice.len() - rest.len(), block, slice.as_ptr()),
                        Err(e) => {
                            let order = section_order(slice).unwrap_or(parser.section().endianness);
                            patched = with_end_of_options(slice, order).unwrap_or_default();
                            match parser.next_block(&patched) {
                                Ok((_, block)) if !patched.is_empty() => {
                                    (patched.len() - 4, block, patched.as_ptr())
                                }
                                _ => {
                                    self.error = Some(fail(describe(&e), self.number));
                                    return None;
                                }
                            }
                        }
                    };
                    let next = at + block_len;
                    // Timestamps in ticks of the interface's resolution
                    // (pcap-file hands them over as nanoseconds unscaled).
                    let (ticks, original_len, data, interface) = match &block {
                        Block::EnhancedPacket(p) => (
                            Some(p.timestamp.as_nanos() as u64),
                            p.original_len,
                            borrowed(&p.data),
                            p.interface_id,
                        ),
                        // Cut below: no captured length in the block.
                        Block::SimplePacket(p) => (None, p.original_len, borrowed(&p.data), 0u32),
                        // The obsolete packet block: its timestamp is two
                        // 32-bit words, high first, which pcap-file reads as
                        // one 64-bit number (words swapped in a
                        // little-endian section).
                        Block::Packet(p) => (
                            Some(match parser.section().endianness {
                                Endianness::Big => p.timestamp,
                                Endianness::Little => p.timestamp.rotate_left(32),
                            }),
                            p.original_len,
                            borrowed(&p.data),
                            p.interface_id as u32,
                        ),
                        _ => {
                            self.pos = next;
                            continue;
                        }
                    };
                    let Some(iface) = parser.interfaces().get(interface as usize) else {
                        self.error = Some(fail(
                            format!("packet of undeclared interface {interface}"),
                            self.number,
                        ));
                        return None;
                    };
                    let link = iface.linktype;
                    // A simple packet block's frame is its body up to the
                    // original length and the snap length (0: no limit),
                    // not the body's padding.
                    let data = match (&block, data) {
                        (Block::SimplePacket(_), Some(d)) => {
                            let snap = if iface.snaplen == 0 {
                                u32::MAX
                            } else {
                                iface.snaplen
                            };
                            Some(&d[..d.len().min(original_len.min(snap) as usize)])
                        }
                        (_, d) => d,
                    };
                    let timestamp =
                        ticks.map_or(Duration::ZERO, |t| interface_time(&iface.options, t));
                    // Where the packet bytes sit in the file (the same
                    // place in a patched copy as in the original block).
                    let data = data.map(|d| {
                        let off = at + (d.as_ptr() as usize - base as usize);
                        off..off + d.len()
                    });
                    let Some(data) = data.and_then(|r| self.data.get(r)) else {
                        // pcap-file 2 borrows packet data from the input,
                        // inside the block it parsed.
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

/// The first section of a pcapng file: the offset of the block after its
/// section header, and the parser.
fn open_section(data: &[u8]) -> Result<(usize, PcapNgParser), pcap_file::PcapError> {
    match PcapNgParser::new(data) {
        Ok((rest, parser)) => Ok((data.len() - rest.len(), parser)),
        Err(e) => {
            let order = section_order(data).unwrap_or(Endianness::Big);
            let Some(patched) = with_end_of_options(data, order) else {
                return Err(e);
            };
            let (_, parser) = PcapNgParser::new(&patched).map_err(|_| e)?;
            Ok((patched.len() - 4, parser))
        }
    }
}

/// The byte order of the section header block at the start of `src`, from
/// its byte-order magic (a section header carries its own, whatever the
/// section before it used); `None` when `src` starts with another block.
fn section_order(src: &[u8]) -> Option<Endianness> {
    if !src.starts_with(&PCAPNG_MAGIC) {
        return None;
    }
    match src.get(8..12)? {
        [0x4d, 0x3c, 0x2b, 0x1a] => Some(Endianness::Little),
        _ => Some(Endianness::Big),
    }
}

/// pcapng block types whose body is a fixed part followed by options.
const SHB: u32 = 0x0a0d_0d0a;
const IDB: u32 = 1;
const PB: u32 = 2;
const NRB: u32 = 4;
const ISB: u32 = 5;
const EPB: u32 = 6;

/// `n` rounded up to a multiple of 4 (pcapng pads fields to 32 bits).
fn pad4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

/// Where the options of a block of type `kind` start in its `body` (the
/// bytes between the length fields); `None` for a block without options
/// or one too short to say.
fn options_start(kind: u32, body: &[u8], order: Endianness) -> Option<usize> {
    let u16_at = |i| read_u16(body, i, order).map(usize::from);
    match kind {
        SHB => Some(16),
        IDB => Some(8),
        ISB => Some(12),
        // interface, drops (PB) or interface (EPB), timestamp, captured
        // length, original length, then the padded packet bytes.
        EPB | PB => Some(20 + pad4(read_u32(body, 12, order)? as usize)),
        NRB => {
            // Records up to and including the nrb_record_end (type 0).
            let mut at = 0;
            loop {
                let (kind, len) = (u16_at(at)?, u16_at(at + 2)?);
                at += 4 + pad4(len);
                if kind == 0 {
                    return Some(at);
                }
            }
        }
        _ => None,
    }
}

/// A copy of the block at the start of `src` with an end-of-options marker
/// added, when its option list runs to the end of the block without one.
/// libpcap and Wireshark read such blocks; pcap-file 2 refuses them.
/// `None` when the block is anything else (the caller's error stands).
fn with_end_of_options(src: &[u8], order: Endianness) -> Option<Vec<u8>> {
    let kind = read_u32(src, 0, order)?;
    let total = read_u32(src, 4, order)? as usize;
    if total < 12
        || total % 4 != 0
        || total > src.len()
        || read_u32(src, total - 4, order)? as usize != total
    {
        return None;
    }
    let body = &src[8..total - 4];
    let start = options_start(kind, body, order)?;
    if start >= body.len() {
        return None; // no options at all: not the case handled here
    }
    let mut at = start;
    while at < body.len() {
        if read_u16(body, at, order)? == 0 {
            return None; // terminated: something else is wrong
        }
        at += 4 + pad4(usize::from(read_u16(body, at + 2, order)?));
    }
    if at != body.len() {
        return None; // the last option overruns the block
    }
    let grown = u32::try_from(total + 4).ok()?;
    let len_bytes = match order {
        Endianness::Big => grown.to_be_bytes(),
        Endianness::Little => grown.to_le_bytes(),
    };
    let mut out = Vec::with_capacity(total + 4);
    out.extend_from_slice(&src[..4]);
    out.extend_from_slice(&len_bytes);
    out.extend_from_slice(body);
    out.extend_from_slice(&[0; 4]); // opt_endofopt, length 0
    out.extend_from_slice(&len_bytes);
    Some(out)
}

/// The 16-bit field at `at` of `b` in byte order `order`, if `b` holds it.
fn read_u16(b: &[u8], at: usize, order: Endianness) -> Option<u16> {
    let v: [u8; 2] = b.get(at..at.checked_add(2)?)?.try_into().ok()?;
    Some(match order {
        Endianness::Big => u16::from_be_bytes(v),
        Endianness::Little => u16::from_le_bytes(v),
    })
}

/// The 32-bit field at `at` of `b` in byte order `order`, if `b` holds it.
fn read_u32(b: &[u8], at: usize, order: Endianness) -> Option<u32> {
    let v: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(match order {
        Endianness::Big => u32::from_be_bytes(v),
        Endianness::Little => u32::from_le_bytes(v),
    })
}

/// A packet timestamp of `ticks` in the units of the interface whose
/// description carries `options`: `if_tsresol` (bit 7 clear: 10^-v s, set:
/// 2^-v s; microseconds when absent) and `if_tsoffset` (seconds added,
/// signed). Saturates at zero and at `Duration::MAX`.
fn interface_time(options: &[InterfaceDescriptionOption<'_>], ticks: u64) -> Duration {
    let mut resol = 6u8;
    let mut offset = 0i64;
    for o in options {
        match o {
            InterfaceDescriptionOption::IfTsResol(v) => resol = *v,
            InterfaceDescriptionOption::IfTsOffset(v) => offset = *v as i64,
            _ => {}
        }
    }
    let per_second = if resol & 0x80 == 0 {
        10u128.checked_pow(u32::from(resol))
    } else {
        2u128.checked_pow(u32::from(resol & 0x7f))
    };
    // A resolution finer than u128 can count puts every tick below 1 ns.
    let (whole, nanos) = match per_second {
        Some(per_second) => {
            let ticks = u128::from(ticks);
            (
                ticks / per_second,
                (ticks % per_second) * 1_000_000_000 / per_second,
            )
        }
        None => (0, 0),
    };
    let secs = i128::try_from(whole).unwrap_or(i128::MAX) + i128::from(offset);
    match u64::try_from(secs) {
        Ok(s) => Duration::new(s, nanos as u32),
        Err(_) if secs < 0 => Duration::ZERO,
        Err(_) => Duration::MAX,
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
    /// recorded in the batch ([`Batch::count_oversize`]).
    fn recv(&mut self, batch: &mut Batch) -> io::Result<usize> {
        let mut n = 0;
        while !batch.is_full() {
            let Some(f) = self.next_frame() else { break };
            let len = f.data.len() as u64;
            if batch.push(f.data) {
                n += 1;
            } else {
                batch.count_oversize(len as usize);
            }
        }
        Ok(n)
    }

    /// A capture file has no transmit side.
    fn send(&mut self, _out: Outgoing<'_>) -> io::Result<usize> {
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

/// The snap length of the files written here: tcpdump's largest
/// (`MAXIMUM_SNAPLEN`), so that a super-frame (64 KiB of IP behind its
/// Ethernet header and tags) is written whole.
pub const WRITE_SNAPLEN: u32 = 262_144;

impl PcapSink {
    /// Create (or truncate) `path`.
    pub fn create(path: impl AsRef<Path>) -> anyhow::Result<PcapSink> {
        let path = path.as_ref();
        let f = File::create(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot create: {e}", path.display()))?;
        let header = PcapHeader {
            datalink: DataLink::ETHERNET,
            snaplen: WRITE_SNAPLEN,
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
        snaplen: WRITE_SNAPLEN,
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
        assert_eq!(b.oversize(), 1);
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

    /// Writes pcapng blocks in one byte order.
    #[derive(Clone, Copy)]
    struct Ng(Endianness);

    impl Ng {
        fn u16(self, v: u16) -> [u8; 2] {
            match self.0 {
                Endianness::Big => v.to_be_bytes(),
                Endianness::Little => v.to_le_bytes(),
            }
        }

        fn u32(self, v: u32) -> [u8; 4] {
            match self.0 {
                Endianness::Big => v.to_be_bytes(),
                Endianness::Little => v.to_le_bytes(),
            }
        }

        /// A block of type `kind` around `body`.
        fn block(self, kind: u32, body: &[u8]) -> Vec<u8> {
            let total = (12 + body.len()) as u32;
            [
                &self.u32(kind)[..],
                &self.u32(total),
                body,
                &self.u32(total),
            ]
            .concat()
        }

        /// An option (code, value) padded to 32 bits.
        fn opt(self, code: u16, value: &[u8]) -> Vec<u8> {
            let mut o = [self.u16(code), self.u16(value.len() as u16)].concat();
            o.extend_from_slice(value);
            o.resize(4 + pad4(value.len()), 0);
            o
        }

        fn shb(self, opts: &[u8]) -> Vec<u8> {
            let mut body = self.u32(0x1a2b_3c4d).to_vec();
            body.extend_from_slice(&self.u16(1));
            body.extend_from_slice(&self.u16(0));
            body.extend_from_slice(&[0xff; 8]); // section length: unknown
            body.extend_from_slice(opts);
            self.block(SHB, &body)
        }

        fn idb(self, snaplen: u32, opts: &[u8]) -> Vec<u8> {
            let mut body = [self.u16(1), self.u16(0)].concat(); // Ethernet
            body.extend_from_slice(&self.u32(snaplen));
            body.extend_from_slice(opts);
            self.block(IDB, &body)
        }

        /// An enhanced packet block (or, `obsolete`, a packet block) of
        /// `frame`, which was `original_len` bytes on the wire.
        fn packet(
            self,
            obsolete: bool,
            ticks: u64,
            frame: &[u8],
            original_len: u32,
            opts: &[u8],
        ) -> Vec<u8> {
            let mut body = self.u32(0).to_vec(); // interface (and drops)
            body.extend_from_slice(&self.u32((ticks >> 32) as u32));
            body.extend_from_slice(&self.u32(ticks as u32));
            body.extend_from_slice(&self.u32(frame.len() as u32));
            body.extend_from_slice(&self.u32(original_len));
            body.extend_from_slice(frame);
            body.resize(20 + pad4(frame.len()), 0);
            body.extend_from_slice(opts);
            self.block(if obsolete { PB } else { EPB }, &body)
        }

        fn epb(self, ticks: u64, frame: &[u8], opts: &[u8]) -> Vec<u8> {
            self.packet(false, ticks, frame, frame.len() as u32, opts)
        }

        fn spb(self, frame: &[u8]) -> Vec<u8> {
            let mut body = self.u32(frame.len() as u32).to_vec();
            body.extend_from_slice(frame);
            body.resize(4 + pad4(frame.len()), 0);
            self.block(3, &body)
        }
    }

    const LE: Ng = Ng(Endianness::Little);
    const BE: Ng = Ng(Endianness::Big);
    const END: [u8; 4] = [0; 4];

    #[test]
    fn pcapng_options_without_end_marker_are_read() {
        let fs = frames();
        for ng in [LE, BE] {
            let comment = ng.opt(1, b"written without opt_endofopt");
            let mut file = ng.shb(&ng.opt(3, b"some os"));
            file.extend(ng.idb(0, &ng.opt(9, &[6])));
            file.extend(ng.epb(1_000_001, &fs[1], &comment));
            // Cut by a snap length: captured 40 of 61 bytes.
            file.extend(ng.packet(false, 2_000_000, &fs[1][..40], 61, &comment));
            file.extend(ng.epb(3_000_000, &fs[2], &[]));
            let corrupt_at = file.len();
            file.extend(ng.epb(4_000_000, &fs[3], &[comment.as_slice(), &END].concat()));
            // The last block ends inside its option list.
            file.truncate(file.len() - 8);
            let mut s = PcapSource::from_bytes("t.pcapng", file).unwrap();
            let f = s.next_frame().unwrap();
            assert_eq!((f.number, f.data), (1, fs[1].as_slice()));
            assert_eq!(f.timestamp, Duration::new(1, 1_000));
            let f = s.next_frame().unwrap();
            assert_eq!((f.number, f.data, f.original_len), (2, &fs[1][..40], 61));
            let f = s.next_frame().unwrap();
            assert_eq!((f.number, f.data), (3, fs[2].as_slice()));
            assert!(s.next_frame().is_none());
            let e = s.error().expect("the cut block is an error");
            assert_eq!((e.frame, e.offset), (4, corrupt_at), "{e}");
            s.rewind();
            assert_eq!(s.next_frame().unwrap().data, fs[1].as_slice());
        }
    }

    #[test]
    fn pcapng_second_section_in_the_other_byte_order() {
        let fs = frames();
        for (a, b) in [(LE, BE), (BE, LE)] {
            let mut file = a.shb(&[]);
            file.extend(a.idb(0, &[]));
            file.extend(a.epb(1_000_000, &fs[0], &[]));
            file.extend(b.shb(&b.opt(3, b"unmarked")));
            file.extend(b.idb(0, &b.opt(9, &[9])));
            file.extend(b.epb(2_000_000_000, &fs[1], &[]));
            let mut s = PcapSource::from_bytes("t.pcapng", file).unwrap();
            let got: Vec<_> =
                std::iter::from_fn(|| s.next_frame().map(|f| (f.timestamp, f.data.to_vec())))
                    .collect();
            assert!(s.error().is_none(), "{:?}", s.error());
            assert_eq!(
                got,
                [
                    (Duration::from_secs(1), fs[0].clone()),
                    (Duration::from_secs(2), fs[1].clone())
                ]
            );
        }
    }

    #[test]
    fn pcapng_obsolete_and_simple_packet_blocks() {
        let fs = frames();
        for ng in [LE, BE] {
            let mut file = ng.shb(&[]);
            file.extend(ng.idb(0, &[]));
            // 1,700,000,000.000001 s in microseconds: both 32-bit words used.
            file.extend(ng.packet(true, 1_700_000_000_000_001, &fs[1], 61, &[]));
            // 61 bytes padded to 64 in the block: the frame is 61 bytes.
            file.extend(ng.spb(&fs[1]));
            let mut s = PcapSource::from_bytes("t.pcapng", file).unwrap();
            let f = s.next_frame().unwrap();
            assert_eq!(
                (f.timestamp, f.data),
                (Duration::new(1_700_000_000, 1_000), fs[1].as_slice())
            );
            let f = s.next_frame().unwrap();
            assert_eq!((f.timestamp, f.data), (Duration::ZERO, fs[1].as_slice()));
            assert!(
                s.next_frame().is_none() && s.error().is_none(),
                "{:?}",
                s.error()
            );
        }
        // A simple packet block is cut to the interface's snap length.
        let mut file = LE.shb(&[]);
        file.extend(LE.idb(50, &[]));
        file.extend(LE.spb(&fs[1]));
        let mut s = PcapSource::from_bytes("t.pcapng", file).unwrap();
        assert_eq!(s.next_frame().unwrap().data, &fs[1][..50]);
    }

    #[test]
    fn pcapng_terminated_options_read_as_before() {
        let fs = frames();
        let mut file = LE.shb(&[LE.opt(3, b"os").as_slice(), &END].concat());
        file.extend(LE.idb(0, &[LE.opt(9, &[9]).as_slice(), &END].concat()));
        file.extend(LE.epb(5_000_000_007, &fs[0], &[]));
        let mut s = PcapSource::from_bytes("t.pcapng", file).unwrap();
        let f = s.next_frame().unwrap();
        assert_eq!(f.timestamp, Duration::new(5, 7));
        assert!(s.next_frame().is_none() && s.error().is_none());
    }

    #[test]
    fn pcapng_timestamps_follow_the_interface_resolution() {
        let fs = frames();
        let stamp = |idb_opts: Vec<u8>, ticks: u64| {
            let mut file = LE.shb(&[]);
            file.extend(LE.idb(0, &idb_opts));
            file.extend(LE.epb(ticks, &fs[0], &[]));
            let mut s = PcapSource::from_bytes("t.pcapng", file).unwrap();
            let t = s.next_frame().map(|f| f.timestamp);
            assert!(s.error().is_none(), "{:?}", s.error());
            t.unwrap()
        };
        let opts = |o: &[&[u8]]| [o.concat().as_slice(), &END].concat();
        let resol = |v: u8| LE.opt(9, &[v]);
        // No if_tsresol: microseconds.
        assert_eq!(stamp(vec![], 2_500_000), Duration::new(2, 500_000_000));
        assert_eq!(
            stamp(opts(&[&resol(3)]), 1_234),
            Duration::new(1, 234_000_000)
        );
        assert_eq!(
            stamp(opts(&[&resol(9)]), 1_000_000_001),
            Duration::new(1, 1)
        );
        // 2^-10 s ticks.
        assert_eq!(
            stamp(opts(&[&resol(0x80 | 10)]), 1024 + 512),
            Duration::new(1, 500_000_000)
        );
        // if_tsoffset (seconds, signed) is added; below the epoch is zero.
        let offset = |s: i64| LE.opt(14, &s.to_le_bytes());
        assert_eq!(
            stamp(opts(&[&offset(100)]), 1_000_000),
            Duration::new(101, 0)
        );
        assert_eq!(stamp(opts(&[&offset(-5)]), 1_000_000), Duration::ZERO);
        // A resolution finer than can be counted: ticks count for nothing,
        // the offset still does; no panic.
        assert_eq!(stamp(opts(&[&resol(120)]), u64::MAX), Duration::ZERO);
        assert_eq!(
            stamp(opts(&[&resol(60), &offset(100)]), u64::MAX),
            Duration::new(100, 0)
        );
        assert_eq!(
            interface_time(&[], u64::MAX),
            Duration::new(u64::MAX / 1_000_000, 551_615_000)
        );
    }

    #[test]
    fn pcapng_option_fix_never_panics_on_corrupt_bytes() {
        let fs = frames();
        let mut file = LE.shb(&LE.opt(3, b"some os"));
        file.extend(LE.idb(0, &LE.opt(9, &[6])));
        file.extend(LE.epb(1, &fs[1], &LE.opt(1, b"c")));
        file.extend(LE.packet(true, 1, &fs[1], 61, &LE.opt(1, b"c")));
        file.extend(LE.spb(&fs[1]));
        for i in 0..file.len() {
            for v in [0u8, 0xff, 0x04, 0x80] {
                let mut f = file.clone();
                f[i] = v;
                if let Ok(mut s) = PcapSource::from_bytes("t.pcapng", f.clone()) {
                    while s.next_frame().is_some() {}
                }
                for cut in [i, i.saturating_sub(3)] {
                    if let Ok(mut s) = PcapSource::from_bytes("t.pcapng", f[..cut].to_vec()) {
                        while s.next_frame().is_some() {}
                    }
                }
            }
        }
    }
}
