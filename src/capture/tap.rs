//! The worker's side of a capture: copies frames into preallocated chunks
//! and hands full chunks to the writer thread.
//!
//! Each worker has its own pool ([`Pool`]): a fixed number of chunks of
//! [`CHUNK_BYTES`], allocated at start-up, that circulate between two
//! bounded lock-free queues (`free` → worker fills → `full` → writer
//! writes → `free`). A chunk holds many records back to back (a
//! [`RECORD_HEADER`]-byte header, then the frame's first `snaplen` bytes),
//! so a queue operation is paid per 64 KiB, not per frame. The worker never
//! waits: when no free chunk is left (the writer is behind) the record is
//! not copied and counted in `dropped`. No allocation, lock or system call
//! per frame; one clock read (vDSO) per batch.

use super::filter::{Compiled, Direction};
use crate::driver::Observer;
use crate::frame::{Batch, DropReason, PortId, Verdict};
use crossbeam::queue::ArrayQueue;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Bytes of one chunk.
pub const CHUNK_BYTES: usize = 64 * 1024;
/// Bytes of a record's header: timestamp (ns, u64), original length
/// (u32), captured length (u16), direction (u8), drop reason (u8, 0xff for
/// none), port (u16); little-endian.
pub const RECORD_HEADER: usize = 18;
/// The largest snap length a chunk allows.
pub const MAX_SNAPLEN: usize = 65_535;

const NO_REASON: u8 = 0xff;

/// One worker's chunks and counters, shared with the writer thread.
pub struct Pool {
    /// Empty chunks, ready for the worker.
    pub free: ArrayQueue<Vec<u8>>,
    /// Filled chunks, waiting for the writer.
    pub full: ArrayQueue<Vec<u8>>,
    /// Records the worker could not copy (no free chunk): written by the
    /// worker only.
    pub dropped: AtomicU64,
    /// Records handed to the writer: written by the worker only.
    pub queued: AtomicU64,
}

impl Pool {
    /// A pool of `chunks` (≥ 2) empty chunks.
    pub fn new(chunks: usize) -> Arc<Pool> {
        let chunks = chunks.max(2);
        let pool = Pool {
            free: ArrayQueue::new(chunks),
            full: ArrayQueue::new(chunks),
            dropped: AtomicU64::new(0),
            queued: AtomicU64::new(0),
        };
        for _ in 0..chunks {
            let _ = pool.free.push(Vec::with_capacity(CHUNK_BYTES));
        }
        Arc::new(pool)
    }
}

/// One record decoded from a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Nanoseconds since the Unix epoch (the batch's clock read).
    pub ts_ns: u64,
    /// The frame's length on the wire.
    pub orig_len: u32,
    /// Port id (the plan's).
    pub port: PortId,
    /// Which way it went.
    pub dir: Direction,
    /// Why it was dropped (drops only).
    pub reason: Option<DropReason>,
    /// The captured bytes (at most the snap length).
    pub data: &'a [u8],
}

/// Iterate over the records of a chunk (stops at the first inconsistent
/// header, which a chunk written by [`CaptureTap`] never has).
pub fn records(chunk: &[u8]) -> impl Iterator<Item = Record<'_>> {
    let mut rest = chunk;
    std::iter::from_fn(move || {
        if rest.len() < RECORD_HEADER {
            return None;
        }
        let (h, tail) = rest.split_at(RECORD_HEADER);
        let u16_at = |i: usize| u16::from_le_bytes([h[i], h[i + 1]]);
        let ts_ns = u64::from_le_bytes(h[0..8].try_into().ok()?);
        let orig_len = u32::from_le_bytes(h[8..12].try_into().ok()?);
        let cap = u16_at(12) as usize;
        let dir = match h[14] {
            0 => Direction::Rx,
            1 => Direction::Tx,
            2 => Direction::Drop,
            _ => return None,
        };
        let reason = DropReason::ALL.get(h[15] as usize).copied();
        let port = u16_at(16);
        if tail.len() < cap {
            return None;
        }
        let (data, next) = tail.split_at(cap);
        rest = next;
        Some(Record {
            ts_ns,
            orig_len,
            port,
            dir,
            reason,
            data,
        })
    })
}

/// What a worker holds: the filter, its pool, the chunk being filled.
pub struct CaptureTap {
    filter: Compiled,
    wants_drops: bool,
    pool: Arc<Pool>,
    failed: Arc<AtomicBool>,
    current: Option<Vec<u8>>,
    pending: u64,
    snaplen: usize,
    now_ns: u64,
    dropped: u64,
    queued: u64,
}

fn dir_code(d: Direction) -> u8 {
    match d {
        Direction::Rx => 0,
        Direction::Tx => 1,
        Direction::Drop => 2,
    }
}

impl CaptureTap {
    /// A tap over `pool`; `failed` is set by the writer when it stopped
    /// (the tap then stops copying).
    pub fn new(filter: Compiled, pool: Arc<Pool>, failed: Arc<AtomicBool>, snaplen: usize) -> Self {
        let wants_drops = filter
            .port_dirs
            .iter()
            .any(|m| m & Direction::Drop.bit() != 0);
        CaptureTap {
            filter,
            wants_drops,
            pool,
            failed,
            current: None,
            pending: 0,
            snaplen: snaplen.clamp(1, MAX_SNAPLEN.min(CHUNK_BYTES - RECORD_HEADER)),
            now_ns: 0,
            dropped: 0,
            queued: 0,
        }
    }

    /// A batch was received (call before the pipeline runs): reads the
    /// clock for the batch and copies the frames if `rx` is captured on
    /// its port.
    #[inline]
    pub fn received(&mut self, batch: &Batch) {
        self.now_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        if !self.filter.wants(batch.port as usize, Direction::Rx) {
            return;
        }
        for i in 0..batch.len() {
            self.record(batch.buf(i).frame(), batch.port, Direction::Rx, NO_REASON);
        }
    }

    /// The batch went through the pipeline: copies the frames it dropped
    /// (if `drop` is captured on the ingress port and the reason selected).
    #[inline]
    pub fn processed(&mut self, batch: &Batch) {
        if !self.wants_drops || !self.filter.wants(batch.port as usize, Direction::Drop) {
            return;
        }
        for i in 0..batch.len() {
            if let Verdict::Drop(r) = batch.meta(i).verdict {
                if self.filter.wants_reason(r) {
                    self.record(batch.buf(i).frame(), batch.port, Direction::Drop, r as u8);
                }
            }
        }
    }

    /// `sent` of the batch's frames for `out` left by it; the rest were
    /// refused (`tx-full` drops).
    #[inline]
    pub fn transmitted(&mut self, batch: &Batch, out: PortId, sent: usize) {
        if self.filter.wants(out as usize, Direction::Tx) {
            for f in batch.forwarded_to(out).take(sent) {
                self.record(f, out, Direction::Tx, NO_REASON);
            }
        }
        if self.filter.wants(out as usize, Direction::Drop)
            && self.filter.wants_reason(DropReason::TxFull)
        {
            for f in batch.forwarded_to(out).skip(sent) {
                self.record(f, out, Direction::Drop, DropReason::TxFull as u8);
            }
        }
    }

    #[inline]
    fn record(&mut self, frame: &[u8], port: PortId, dir: Direction, reason: u8) {
        let cap = frame.len().min(self.snaplen);
        let need = RECORD_HEADER + cap;
        let fits = matches!(&self.current, Some(c) if c.capacity() - c.len() >= need);
        if !fits {
            if let Some(c) = self.current.take() {
                self.hand_over(c);
            }
            self.current = self.pool.free.pop();
        }
        let Some(c) = self.current.as_mut() else {
            self.dropped += 1;
            return;
        };
        c.extend_from_slice(&self.now_ns.to_le_bytes());
        c.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        c.extend_from_slice(&(cap as u16).to_le_bytes());
        c.push(dir_code(dir));
        c.push(reason);
        c.extend_from_slice(&port.to_le_bytes());
        c.extend_from_slice(&frame[..cap]);
        self.pending += 1;
    }

    fn hand_over(&mut self, mut c: Vec<u8>) {
        if c.is_empty() {
            let _ = self.pool.free.push(c);
            return;
        }
        if self.failed.load(Ordering::Relaxed) {
            // The writer stopped for good: capture nothing more; what this
            // chunk holds is lost and counted.
            self.filter.port_dirs.iter_mut().for_each(|m| *m = 0);
            self.wants_drops = false;
            self.dropped += self.pending;
            self.pending = 0;
            c.clear();
            let _ = self.pool.free.push(c);
            self.publish();
            return;
        }
        // `full` has room for every chunk of the pool, so this succeeds;
        // if it did not, the records are lost and counted.
        match self.pool.full.push(c) {
            Ok(()) => self.queued += self.pending,
            Err(back) => {
                self.dropped += self.pending;
                c = back;
                c.clear();
                let _ = self.pool.free.push(c);
            }
        }
        self.pending = 0;
        self.publish();
    }

    /// Hand the chunk being filled to the writer (a worker calls this
    /// when it goes idle and every publish interval, so slow traffic
    /// reaches the file too) and publish the counters.
    pub fn flush(&mut self) {
        if let Some(c) = self.current.take() {
            self.hand_over(c);
        }
        self.publish();
    }

    fn publish(&self) {
        self.pool.dropped.store(self.dropped, Ordering::Relaxed);
        self.pool.queued.store(self.queued, Ordering::Relaxed);
    }

    /// Records not copied so far (no free chunk).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

impl Observer for CaptureTap {
    #[inline]
    fn received(&mut self, batch: &Batch) {
        CaptureTap::received(self, batch);
    }
    #[inline]
    fn processed(&mut self, batch: &Batch) {
        CaptureTap::processed(self, batch);
    }
    #[inline]
    fn transmitted(&mut self, batch: &Batch, port: PortId, sent: usize) {
        CaptureTap::transmitted(self, batch, port, sent);
    }
}

impl Drop for CaptureTap {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Batch;

    fn all(ports: usize) -> Compiled {
        Compiled {
            port_dirs: vec![7; ports],
            reasons: u32::MAX,
        }
    }

    fn batch(port: PortId, frames: &[&[u8]]) -> Batch {
        let mut b = Batch::new();
        b.port = port;
        for f in frames {
            assert!(b.push(f));
        }
        b
    }

    #[test]
    fn records_round_trip_through_a_chunk() {
        let pool = Pool::new(4);
        let failed = Arc::new(AtomicBool::new(false));
        let mut tap = CaptureTap::new(all(3), pool.clone(), failed, 40);
        let long = [0xabu8; 100];
        let mut b = batch(1, &[&[1u8; 60], &long]);
        tap.received(&b);
        b.set_verdict(0, Verdict::Drop(DropReason::NoLinkUp));
        tap.processed(&b);
        tap.flush();
        assert_eq!(pool.full.len(), 1);
        let c = pool.full.pop().unwrap();
        let r: Vec<Record> = records(&c).collect();
        assert_eq!(r.len(), 3);
        assert_eq!((r[0].port, r[0].dir, r[0].reason), (1, Direction::Rx, None));
        assert_eq!(r[0].data, &[1u8; 40][..], "snap length 40");
        assert_eq!(r[0].orig_len, 60);
        assert_eq!(r[1].orig_len, 100);
        assert_eq!(r[2].dir, Direction::Drop);
        assert_eq!(r[2].reason, Some(DropReason::NoLinkUp));
        assert!(r[0].ts_ns > 1_600_000_000_000_000_000);
        assert_eq!(pool.queued.load(Ordering::Relaxed), 3);
        assert_eq!(pool.dropped.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_full_pool_drops_and_counts_and_never_blocks() {
        let pool = Pool::new(2);
        let failed = Arc::new(AtomicBool::new(false));
        let mut tap = CaptureTap::new(all(1), pool.clone(), failed, 2048);
        // 1000-byte frames: 64 per chunk; two chunks hold 2 × 64 records.
        let f = [7u8; 1000];
        let frames: Vec<&[u8]> = (0..32).map(|_| &f[..]).collect();
        let b = batch(0, &frames);
        for _ in 0..10 {
            tap.received(&b);
        }
        tap.flush();
        let per_chunk = (CHUNK_BYTES / (RECORD_HEADER + 1000)) as u64;
        assert_eq!(pool.full.len(), 2);
        assert_eq!(pool.queued.load(Ordering::Relaxed), 2 * per_chunk);
        assert_eq!(pool.dropped.load(Ordering::Relaxed), 320 - 2 * per_chunk);
        // The writer frees one chunk: capture resumes.
        let mut c = pool.full.pop().unwrap();
        assert_eq!(records(&c).count() as u64, per_chunk);
        c.clear();
        pool.free.push(c).unwrap();
        tap.received(&b);
        tap.flush();
        assert_eq!(pool.queued.load(Ordering::Relaxed), 2 * per_chunk + 32);
    }

    #[test]
    fn filter_selects_ports_directions_and_reasons() {
        let pool = Pool::new(4);
        let failed = Arc::new(AtomicBool::new(false));
        let filter = Compiled {
            port_dirs: vec![Direction::Rx.bit(), Direction::Drop.bit()],
            reasons: 1 << DropReason::UnknownAttachment.index(),
        };
        let mut tap = CaptureTap::new(filter, pool.clone(), failed.clone(), 2048);
        let mut b0 = batch(0, &[&[0u8; 60], &[0u8; 60]]);
        let mut b1 = batch(1, &[&[1u8; 60], &[1u8; 60], &[1u8; 60]]);
        tap.received(&b0); // 2 rx
        tap.received(&b1); // none: port 1 captures drops only
        b0.set_verdict(0, Verdict::Drop(DropReason::UnknownAttachment));
        tap.processed(&b0); // none: port 0 captures rx only
        b1.set_verdict(0, Verdict::Drop(DropReason::UnknownAttachment));
        b1.set_verdict(1, Verdict::Drop(DropReason::NoLinkUp));
        b1.set_verdict(2, Verdict::Forward(0));
        tap.processed(&b1); // 1: unknown-attachment only
        tap.transmitted(&b1, 0, 1); // none: port 0 has no tx
        tap.flush();
        let c = pool.full.pop().unwrap();
        let got: Vec<(PortId, Direction)> = records(&c).map(|r| (r.port, r.dir)).collect();
        assert_eq!(
            got,
            vec![(0, Direction::Rx), (0, Direction::Rx), (1, Direction::Drop)]
        );
        // After the writer failed, the tap stops copying.
        failed.store(true, Ordering::Relaxed);
        tap.received(&b0);
        tap.flush();
        tap.received(&b0);
        tap.flush();
        assert_eq!(pool.queued.load(Ordering::Relaxed), 3);
        assert_eq!(pool.dropped.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn tx_and_tx_full_are_told_apart() {
        let pool = Pool::new(4);
        let mut tap = CaptureTap::new(all(2), pool.clone(), Arc::new(AtomicBool::new(false)), 2048);
        let mut b = batch(0, &[&[1u8; 60], &[2u8; 60], &[3u8; 60]]);
        for i in 0..3 {
            b.set_verdict(i, Verdict::Forward(1));
        }
        tap.received(&b);
        tap.transmitted(&b, 1, 2);
        tap.flush();
        let c = pool.full.pop().unwrap();
        let got: Vec<(PortId, Direction, Option<DropReason>, u8)> = records(&c)
            .map(|r| (r.port, r.dir, r.reason, r.data[0]))
            .collect();
        assert_eq!(
            got[3..],
            [
                (1, Direction::Tx, None, 1),
                (1, Direction::Tx, None, 2),
                (1, Direction::Drop, Some(DropReason::TxFull), 3)
            ]
        );
    }
}
