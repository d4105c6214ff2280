//! Packet capture from a running forwarder (`xconnect run --capture DIR`).
//!
//! Contract:
//! - What is captured: frames **received** (as they arrived, before the
//!   pipeline rewrites them), **transmitted** (as they left, after it) and
//!   **dropped** (as they were when dropped, with the [`DropReason`]),
//!   selected by a [`Filter`] on ports, directions and drop reasons. A
//!   received frame that is then dropped appears twice: once received,
//!   once dropped.
//! - Off the hot path: each worker owns a [`CaptureTap`] that copies frames
//!   (up to the snap length) into preallocated chunks of its own pool; a
//!   single writer thread turns full chunks into pcapng files. The worker
//!   never allocates, locks, makes a system call or waits for the writer:
//!   when the writer is behind and no chunk is free, the frame is not
//!   captured and counted as `dropped` — forwarding is never slowed down
//!   to keep the capture complete. With capture off a worker holds no tap
//!   and pays one branch per batch.
//! - Files: `DIR/xconnect-<start>-<pid>-<seq>.pcapng` (`<start>` the UTC
//!   start time `YYYYMMDDTHHMMSSZ`, `<seq>` from 0001), each a complete
//!   pcapng section ([`writer`]), rotated before a packet would take it
//!   past `max_bytes`; with `max_files > 0` only that many newest files are
//!   kept. Buffered blocks reach the file every 500 ms when traffic pauses
//!   and at stop. Records keep each worker's order; chunks of different
//!   workers interleave (timestamps not sorted across workers).
//! - Errors: a directory that cannot be created or written fails
//!   [`Capture::start`] with the path; a write error later (disk full)
//!   stops the capture with one logged message and the error in the
//!   report, the frames after it counted as dropped; forwarding goes on.

pub mod filter;
pub mod tap;
pub mod writer;

pub use filter::{Compiled, Direction, Filter};
pub use tap::CaptureTap;

use crate::config::PortSpec;
use crate::frame::DropReason;
use anyhow::Context;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tap::{Pool, CHUNK_BYTES};
use writer::{Files, Interface, WriterStats};

/// Parse a size: bytes, or a number with a K, M or G suffix (binary).
pub fn parse_size(s: &str, what: &str) -> anyhow::Result<u64> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1u64 << 10),
        Some((i, 'm' | 'M')) => (&t[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| {
            anyhow::anyhow!("{what}: {s:?} is not a size (bytes, or a number with K, M or G)")
        })
}

/// Default size at which a file is rotated.
pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;
/// Default snap length: whole frames (xconnect's buffers are 2 KiB).
pub const DEFAULT_SNAPLEN: usize = 2048;
/// Default chunk memory per worker.
pub const DEFAULT_BUFFER_BYTES: usize = 8 << 20;

/// How to capture.
#[derive(Clone, Debug, PartialEq)]
pub struct CaptureSpec {
    /// Directory of the files (created if missing).
    pub dir: PathBuf,
    /// What to keep.
    pub filter: Filter,
    /// Rotate a file before it would exceed this many bytes.
    pub max_bytes: u64,
    /// Keep only this many newest files (0: keep every file).
    pub max_files: usize,
    /// Bytes kept of each frame.
    pub snaplen: usize,
    /// Chunk memory per worker, in bytes (how far the writer may fall
    /// behind before frames are lost).
    pub buffer_bytes: usize,
    /// Core to pin the writer thread to (`None`: not pinned).
    pub core: Option<usize>,
}

impl CaptureSpec {
    /// Capture everything into `dir` with the defaults.
    pub fn new(dir: impl Into<PathBuf>) -> CaptureSpec {
        CaptureSpec {
            dir: dir.into(),
            filter: Filter::default(),
            max_bytes: DEFAULT_MAX_BYTES,
            max_files: 0,
            snaplen: DEFAULT_SNAPLEN,
            buffer_bytes: DEFAULT_BUFFER_BYTES,
            core: None,
        }
    }
}

/// The capture's counters in a stats report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CaptureReport {
    /// The directory written to.
    pub dir: String,
    /// What is captured ([`Filter::describe`]).
    pub filter: String,
    /// Frames written to a file.
    pub written: u64,
    /// Frames the filter selected but the capture lost: no free chunk
    /// (the writer was behind), or after a write error.
    pub dropped: u64,
    /// Files opened so far.
    pub files: u64,
    /// Bytes written so far.
    pub bytes: u64,
    /// Why the capture stopped early, if it did.
    pub error: Option<String>,
}

/// A running capture: the writer thread and every worker's pool.
pub struct Capture {
    dir: PathBuf,
    filter: String,
    first: PathBuf,
    pools: Vec<Arc<Pool>>,
    stats: Arc<WriterStats>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// `YYYYMMDDTHHMMSSZ` of a Unix time (UTC, proleptic Gregorian).
pub fn utc_stamp(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let rem = unix_secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

impl Capture {
    /// Open the first file (an error names the path), start the writer
    /// thread and return one tap per worker. `ports` are the forwarder's
    /// ports in port-id order (each becomes a pcapng interface). `log`
    /// receives the writer's messages (a stop after a write error).
    pub fn start(
        spec: &CaptureSpec,
        ports: &[PortSpec],
        workers: usize,
        log: impl FnMut(&str) + Send + 'static,
    ) -> anyhow::Result<(Capture, Vec<CaptureTap>)> {
        let names: Vec<&str> = ports.iter().map(|p| p.name.as_str()).collect();
        let compiled = spec.filter.compile(&names).map_err(anyhow::Error::msg)?;
        let interfaces: Vec<Interface> = ports
            .iter()
            .map(|p| Interface {
                name: p.name.clone(),
                description: format!("{} ({})", p.interface, p.backend.name()),
            })
            .collect();
        let snaplen = spec.snaplen.clamp(1, tap::MAX_SNAPLEN);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let stem = format!("xconnect-{}-{}", utc_stamp(now), std::process::id());
        let files = Files::create(
            &spec.dir,
            &stem,
            &interfaces,
            snaplen as u32,
            spec.max_bytes,
            spec.max_files,
            writer::create_new(),
        )
        .with_context(|| format!("--capture {}", spec.dir.display()))?;
        let first = files.current().map(Path::to_path_buf).unwrap_or_default();
        let chunks = (spec.buffer_bytes / CHUNK_BYTES).max(2);
        let pools: Vec<Arc<Pool>> = (0..workers.max(1)).map(|_| Pool::new(chunks)).collect();
        let failed = Arc::new(AtomicBool::new(false));
        let taps = pools
            .iter()
            .map(|p| CaptureTap::new(compiled.clone(), p.clone(), failed.clone(), snaplen))
            .collect();
        let stats = Arc::new(WriterStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let core = spec.core.and_then(|c| {
            let cores = core_affinity::get_core_ids().unwrap_or_default();
            (!cores.is_empty()).then(|| cores[c % cores.len()])
        });
        let thread = {
            let (pools, stop, failed, stats) =
                (pools.clone(), stop.clone(), failed.clone(), stats.clone());
            std::thread::Builder::new()
                .name("xc-capture".into())
                .spawn(move || {
                    if let Some(core) = core {
                        core_affinity::set_for_current(core);
                    }
                    writer::run(files, pools, stop, failed, stats, log)
                })
                .context("starting the capture writer thread")?
        };
        Ok((
            Capture {
                dir: spec.dir.clone(),
                filter: spec.filter.describe(),
                first,
                pools,
                stats,
                stop,
                thread: Some(thread),
            },
            taps,
        ))
    }

    /// The first file written.
    pub fn first_file(&self) -> &Path {
        &self.first
    }

    /// The counters now.
    pub fn report(&self) -> CaptureReport {
        let lost: u64 = self
            .pools
            .iter()
            .map(|p| p.dropped.load(Ordering::Relaxed))
            .sum();
        CaptureReport {
            dir: self.dir.display().to_string(),
            filter: self.filter.clone(),
            written: self.stats.written.load(Ordering::Relaxed),
            dropped: lost + self.stats.discarded.load(Ordering::Relaxed),
            files: self.stats.files.load(Ordering::Relaxed),
            bytes: self.stats.bytes.load(Ordering::Relaxed),
            error: self.stats.error.lock().ok().and_then(|e| e.clone()),
        }
    }

    /// Stop the writer once it has written everything queued (call after
    /// the workers stopped and flushed their taps) and return the final
    /// counters.
    pub fn finish(&mut self) -> CaptureReport {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.report()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The comment a dropped frame carries in the files.
pub fn drop_comment(reason: DropReason) -> String {
    format!("drop: {}", reason.name())
}

#[cfg(test)]
mod tests;
