//! The writer thread's side of a capture: pcapng files that rotate at a
//! size limit.
//!
//! Every file is a complete pcapng section: a Section Header Block, one
//! Interface Description Block per port (`if_name` the port's name,
//! `if_description` its interface and backend, nanosecond timestamps),
//! then one Enhanced Packet Block per record with the direction in
//! `epb_flags` (inbound for received and dropped frames, outbound for
//! transmitted ones and `tx-full` drops) and, for a drop, the comment
//! `drop: <reason>`. The headers are written by `pcap-file`; packet blocks
//! are encoded here (the same bytes, without an allocation per packet).

use super::tap::{records, Pool, Record};
use super::Direction;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::{DataLink, Endianness};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One port as the files describe it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    /// The port's configuration name (`if_name`).
    pub name: String,
    /// Its interface and backend (`if_description`).
    pub description: String,
}

/// Opens one output file (the real one creates it, refusing to overwrite;
/// tests substitute failing writers).
pub type Opener = Box<dyn FnMut(&Path) -> io::Result<Box<dyn Write + Send>> + Send>;

/// The default [`Opener`]: create the file, never overwrite one.
pub fn create_new() -> Opener {
    Box::new(|p: &Path| {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(p)
            .map(|f| Box::new(f) as Box<dyn Write + Send>)
    })
}

/// `epb_flags` direction bits.
const INBOUND: u32 = 1;
const OUTBOUND: u32 = 2;
/// The file buffer: one `write` per this many bytes.
const BUF_BYTES: usize = 256 * 1024;

/// The rotating set of capture files.
pub struct Files {
    dir: PathBuf,
    stem: String,
    seq: u32,
    max_bytes: u64,
    keep: usize,
    kept: VecDeque<PathBuf>,
    out: Option<Box<dyn Write + Send>>,
    buf: Vec<u8>,
    buf_records: u64,
    in_file: u64,
    packets_in_file: u64,
    header: Vec<u8>,
    comments: Vec<Vec<u8>>,
    open: Opener,
    /// Packet blocks written to a file (the file took them), over all files.
    pub written: u64,
    /// Bytes written to a file, over all files.
    pub bytes: u64,
    /// Files opened.
    pub files: u64,
    /// Packet blocks encoded (written or still buffered).
    pub encoded: u64,
}

fn header(interfaces: &[Interface], snaplen: u32) -> io::Result<Vec<u8>> {
    let shb = SectionHeaderBlock {
        endianness: Endianness::Little,
        options: vec![SectionHeaderOption::UserApplication(Cow::Owned(format!(
            "xconnect {}",
            env!("CARGO_PKG_VERSION")
        )))],
        ..Default::default()
    };
    let mut w = PcapNgWriter::with_section_header(Vec::new(), shb).map_err(io::Error::other)?;
    for i in interfaces {
        w.write_pcapng_block(InterfaceDescriptionBlock {
            linktype: DataLink::ETHERNET,
            snaplen,
            options: vec![
                InterfaceDescriptionOption::IfName(Cow::Borrowed(&i.name)),
                InterfaceDescriptionOption::IfDescription(Cow::Borrowed(&i.description)),
                InterfaceDescriptionOption::IfTsResol(9),
            ],
        })
        .map_err(io::Error::other)?;
    }
    Ok(w.into_inner())
}

fn pad4(n: usize) -> usize {
    (4 - n % 4) % 4
}

impl Files {
    /// Create `dir` if needed and open the first file,
    /// `dir/<stem>-0001.pcapng`. Fails (naming the path) when the
    /// directory cannot be created or written.
    pub fn create(
        dir: &Path,
        stem: &str,
        interfaces: &[Interface],
        snaplen: u32,
        max_bytes: u64,
        keep: usize,
        open: Opener,
    ) -> io::Result<Files> {
        std::fs::create_dir_all(dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create the capture directory {}: {e}", dir.display()),
            )
        })?;
        let mut f = Files {
            dir: dir.to_path_buf(),
            stem: stem.to_string(),
            seq: 0,
            max_bytes,
            keep,
            kept: VecDeque::new(),
            out: None,
            buf: Vec::with_capacity(BUF_BYTES + 64 * 1024),
            buf_records: 0,
            in_file: 0,
            packets_in_file: 0,
            header: header(interfaces, snaplen)?,
            comments: crate::frame::DropReason::ALL
                .iter()
                .map(|r| format!("drop: {}", r.name()).into_bytes())
                .collect(),
            open,
            written: 0,
            bytes: 0,
            files: 0,
            encoded: 0,
        };
        f.rotate()?;
        Ok(f)
    }

    /// The file being written.
    pub fn current(&self) -> Option<&Path> {
        self.kept.back().map(PathBuf::as_path)
    }

    /// Path of file number `seq`.
    pub fn path(&self, seq: u32) -> PathBuf {
        self.dir.join(format!("{}-{seq:04}.pcapng", self.stem))
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.out.is_some() {
            self.spill()?;
            if let Some(mut out) = self.out.take() {
                out.flush()?;
            }
        }
        self.seq += 1;
        let path = self.path(self.seq);
        let mut out = (self.open)(&path).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display()))
        })?;
        out.write_all(&self.header)?;
        self.out = Some(out);
        self.in_file = self.header.len() as u64;
        self.bytes += self.header.len() as u64;
        self.packets_in_file = 0;
        self.files += 1;
        self.kept.push_back(path);
        while self.keep > 0 && self.kept.len() > self.keep {
            if let Some(old) = self.kept.pop_front() {
                let _ = std::fs::remove_file(old);
            }
        }
        Ok(())
    }

    /// Append one Enhanced Packet Block, rotating first if it would take
    /// the file past the size limit (only once the file holds a packet, so
    /// a limit smaller than one block still makes progress).
    pub fn write(&mut self, r: &Record) -> io::Result<()> {
        let comment_len = match (r.dir, r.reason) {
            (Direction::Drop, Some(reason)) => self.comments.get(reason.index()).map(Vec::len),
            _ => None,
        };
        let data_len = r.data.len();
        let opts = 8 + comment_len.map_or(0, |n| 4 + n + pad4(n)) + 4;
        let total = 28 + data_len + pad4(data_len) + opts + 4;
        if self.packets_in_file > 0 && self.in_file + total as u64 > self.max_bytes {
            self.rotate()?;
        }
        let comment = match (comment_len, r.reason) {
            (Some(_), Some(reason)) => self.comments.get(reason.index()),
            _ => None,
        };
        if self.out.is_none() {
            return Err(io::Error::other("capture file closed"));
        }
        let out = &mut self.buf;
        let flags = match (r.dir, r.reason) {
            (Direction::Tx, _) | (_, Some(crate::frame::DropReason::TxFull)) => OUTBOUND,
            _ => INBOUND,
        };
        let mut h = [0u8; 28];
        let words = [
            6u32,
            total as u32,
            r.port as u32,
            (r.ts_ns >> 32) as u32,
            r.ts_ns as u32,
            data_len as u32,
            r.orig_len,
        ];
        for (i, w) in words.iter().enumerate() {
            h[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(&h);
        out.extend_from_slice(r.data);
        out.extend_from_slice(&[0u8; 3][..pad4(data_len)]);
        // epb_flags (code 2, length 4)
        out.extend_from_slice(&[2, 0, 4, 0]);
        out.extend_from_slice(&flags.to_le_bytes());
        if let Some(c) = comment {
            out.extend_from_slice(&1u16.to_le_bytes());
            out.extend_from_slice(&(c.len() as u16).to_le_bytes());
            out.extend_from_slice(c);
            out.extend_from_slice(&[0u8; 3][..pad4(c.len())]);
        }
        // opt_endofopt, then the trailing block length.
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(&(total as u32).to_le_bytes());
        self.in_file += total as u64;
        self.packets_in_file += 1;
        self.buf_records += 1;
        self.encoded += 1;
        if self.buf.len() >= BUF_BYTES {
            self.spill()?;
        }
        Ok(())
    }

    /// Write the buffered blocks to the file; they count as written once
    /// the file took them all.
    fn spill(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let Some(out) = self.out.as_mut() else {
            return Err(io::Error::other("capture file closed"));
        };
        out.write_all(&self.buf)?;
        self.bytes += self.buf.len() as u64;
        self.written += self.buf_records;
        self.buf.clear();
        self.buf_records = 0;
        Ok(())
    }

    /// Push buffered blocks to the file.
    pub fn flush(&mut self) -> io::Result<()> {
        self.spill()?;
        match self.out.as_mut() {
            Some(o) => o.flush(),
            None => Ok(()),
        }
    }

    /// Blocks encoded but not yet taken by the file.
    pub fn buffered(&self) -> u64 {
        self.buf_records
    }

    /// Give up the current file (after a write error): what is buffered
    /// is forgotten.
    pub fn abandon(&mut self) {
        self.out = None;
        self.buf.clear();
        self.buf_records = 0;
    }
}

/// What the writer thread reports.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Records written to a file.
    pub written: AtomicU64,
    /// Records received from the workers but not written (after an error).
    pub discarded: AtomicU64,
    /// Files opened.
    pub files: AtomicU64,
    /// Bytes written.
    pub bytes: AtomicU64,
    /// Why the capture stopped, if it did.
    pub error: Mutex<Option<String>>,
}

/// How long the writer sleeps when every queue is empty.
pub const IDLE_SLEEP: Duration = Duration::from_millis(2);
/// Buffered blocks reach the file at least this often while idle.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(500);

/// The writer thread: drains every pool's `full` queue into `files` until
/// `stop` is set (then drains once more and flushes). On an I/O error it
/// logs, sets `failed` (the taps stop copying) and recycles what is still
/// queued as `discarded`.
pub fn run(
    mut files: Files,
    pools: Vec<Arc<Pool>>,
    stop: Arc<AtomicBool>,
    failed: Arc<AtomicBool>,
    stats: Arc<WriterStats>,
    mut log: impl FnMut(&str),
) {
    let mut dirty = false;
    let mut last_flush = Instant::now();
    let mut fail = |files: &mut Files, e: io::Error, stats: &WriterStats| {
        let at = files
            .current()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        stats
            .discarded
            .fetch_add(files.buffered(), Ordering::Relaxed);
        let msg = format!("capture stopped: writing {at}: {e}; forwarding goes on");
        log(&msg);
        if let Ok(mut err) = stats.error.lock() {
            *err = Some(format!("{at}: {e}"));
        }
        failed.store(true, Ordering::Relaxed);
        files.abandon();
    };
    loop {
        let stopping = stop.load(Ordering::Acquire);
        let mut any = false;
        for pool in &pools {
            while let Some(mut c) = pool.full.pop() {
                any = true;
                if failed.load(Ordering::Relaxed) {
                    stats
                        .discarded
                        .fetch_add(records(&c).count() as u64, Ordering::Relaxed);
                } else {
                    let mut err = None;
                    let before = files.encoded;
                    for r in records(&c) {
                        if let Err(e) = files.write(&r) {
                            err = Some(e);
                            break;
                        }
                    }
                    if let Some(e) = err {
                        // Lost: this chunk's records never encoded, and
                        // (in `fail`) every encoded one the file did not take.
                        let total = records(&c).count() as u64;
                        let encoded = files.encoded - before;
                        stats
                            .discarded
                            .fetch_add(total - encoded, Ordering::Relaxed);
                        fail(&mut files, e, &stats);
                    }
                    dirty = true;
                }
                c.clear();
                let _ = pool.free.push(c);
            }
        }
        stats.written.store(files.written, Ordering::Relaxed);
        stats.files.store(files.files, Ordering::Relaxed);
        stats.bytes.store(files.bytes, Ordering::Relaxed);
        if stopping {
            break;
        }
        if !any {
            if dirty && last_flush.elapsed() >= FLUSH_INTERVAL && !failed.load(Ordering::Relaxed) {
                if let Err(e) = files.flush() {
                    fail(&mut files, e, &stats);
                }
                dirty = false;
                last_flush = Instant::now();
            }
            std::thread::sleep(IDLE_SLEEP);
        }
    }
    if !failed.load(Ordering::Relaxed) {
        if let Err(e) = files.flush() {
            fail(&mut files, e, &stats);
        }
    }
    stats.written.store(files.written, Ordering::Relaxed);
    stats.files.store(files.files, Ordering::Relaxed);
    stats.bytes.store(files.bytes, Ordering::Relaxed);
}
