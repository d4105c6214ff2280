//! In-memory ports, so the whole data path runs in tests, benches and fuzz
//! targets without a kernel (the driver, `crate::driver`, moves their
//! frames through the pipeline exactly as it moves a kernel port's).
//!
//! [`MemPort`] is a queue pair (inject frames, collect what was sent).
//! [`FrameSource`] cycles a fixed set of template frames and [`TxSlots`]
//! copies transmitted frames into a fixed ring of slots: together they give
//! benchmarks a receive copy and a transmit copy per frame, with no
//! allocation, like a real ring would.

use super::Backend;
use crate::frame::{Batch, Outgoing};
use std::collections::VecDeque;
use std::io;

/// An in-memory port: frames injected for receive, frames sent collected.
#[derive(Debug, Default, Clone)]
pub struct MemPort {
    rx: VecDeque<Vec<u8>>,
    sent: Vec<Vec<u8>>,
}

impl MemPort {
    /// An empty port.
    pub fn new() -> MemPort {
        MemPort::default()
    }

    /// Queue a frame to be received.
    pub fn inject(&mut self, frame: &[u8]) {
        self.rx.push_back(frame.to_vec());
    }

    /// Frames waiting to be received.
    pub fn pending(&self) -> usize {
        self.rx.len()
    }

    /// Take the frames transmitted so far.
    pub fn take_sent(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.sent)
    }
}

impl Backend for MemPort {
    fn recv(&mut self, batch: &mut Batch) -> io::Result<usize> {
        let mut n = 0;
        while !batch.is_full() {
            let Some(f) = self.rx.pop_front() else { break };
            if batch.push(&f) {
                n += 1;
            } else {
                batch.count_oversize(f.len());
            }
        }
        Ok(n)
    }

    fn send(&mut self, out: Outgoing<'_>) -> io::Result<usize> {
        let before = self.sent.len();
        self.sent.extend(out.frames().map(<[u8]>::to_vec));
        Ok(self.sent.len() - before)
    }
}

/// Cache line size the bench buffers are aligned to.
const LINE: usize = 64;

/// Bytes in whole lines covering `len` bytes.
const fn round_up(len: usize) -> usize {
    len.div_ceil(LINE) * LINE
}

/// A zeroed byte buffer whose usable part starts on a cache line.
///
/// Bench buffers are built on it so that where the allocator puts them
/// cannot change what a case measures: every template and every transmit
/// slot starts on a cache line, as a ring's frames do. (With plain `Vec`s,
/// the `copy` baseline at 64 bytes ran at about 93 or about 125 Mpps
/// depending on where the transmit slots happened to start — a swing that
/// moved with the binary and the allocator's settings, not the code.)
#[derive(Debug)]
struct Aligned {
    raw: Vec<u8>,
    /// Where the usable part starts (the first cache line in `raw`).
    off: usize,
    /// Usable bytes.
    len: usize,
}

impl Aligned {
    fn zeroed(len: usize) -> Aligned {
        let raw = vec![0u8; len + LINE - 1];
        let off = raw.as_ptr().align_offset(LINE);
        Aligned { raw, off, len }
    }

    #[inline(always)]
    fn bytes(&self) -> &[u8] {
        &self.raw[self.off..self.off + self.len]
    }

    #[inline(always)]
    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.raw[self.off..self.off + self.len]
    }
}

impl Clone for Aligned {
    fn clone(&self) -> Aligned {
        let mut a = Aligned::zeroed(self.len);
        a.bytes_mut().copy_from_slice(self.bytes());
        a
    }
}

/// Cycles a fixed set of template frames into batches (bench receive side).
///
/// The templates are packed into one allocation, each starting on a cache
/// line (a 64-byte frame is one line), so their placement is the same in
/// every binary and run.
#[derive(Debug, Clone)]
pub struct FrameSource {
    store: Aligned,
    /// (first byte, length) of each template.
    spans: Vec<(usize, usize)>,
    next: usize,
}

impl FrameSource {
    /// A source over `frames` (must not be empty, each ≤ the buffer size).
    pub fn new(frames: Vec<Vec<u8>>) -> FrameSource {
        let mut store = Aligned::zeroed(frames.iter().map(|f| round_up(f.len())).sum());
        let mut spans = Vec::with_capacity(frames.len());
        let mut at = 0;
        for f in &frames {
            store.bytes_mut()[at..at + f.len()].copy_from_slice(f);
            spans.push((at, f.len()));
            at += round_up(f.len());
        }
        FrameSource {
            store,
            spans,
            next: 0,
        }
    }

    /// Total bytes of one pass over the templates.
    pub fn bytes_per_cycle(&self) -> usize {
        self.spans.iter().map(|s| s.1).sum()
    }

    /// Template `i`.
    #[inline(always)]
    fn frame(&self, i: usize) -> &[u8] {
        let (at, len) = self.spans[i];
        &self.store.bytes()[at..at + len]
    }

    /// The next template, advancing the cycle.
    #[inline(always)]
    pub fn next_frame(&mut self) -> &[u8] {
        let i = self.next;
        self.next = if i + 1 == self.spans.len() { 0 } else { i + 1 };
        self.frame(i)
    }
}

impl Backend for FrameSource {
    #[inline]
    fn recv(&mut self, batch: &mut Batch) -> io::Result<usize> {
        let mut n = 0;
        if self.spans.is_empty() {
            return Ok(0);
        }
        while !batch.is_full() {
            let i = self.next;
            self.next = if i + 1 == self.spans.len() { 0 } else { i + 1 };
            if batch.push(self.frame(i)) {
                n += 1;
            }
        }
        Ok(n)
    }

    fn send(&mut self, _out: Outgoing<'_>) -> io::Result<usize> {
        Ok(0)
    }
}

/// Bytes per [`TxSlots`] slot.
const SLOT: usize = 2048;

/// A transmit ring of fixed slots: each sent frame is copied into the next
/// slot (bench transmit side). Slots start on cache lines, as a ring's do.
#[derive(Debug, Clone)]
pub struct TxSlots {
    slots: Aligned,
    count: usize,
    next: usize,
    /// Frames accepted.
    pub packets: u64,
    /// Bytes accepted.
    pub bytes: u64,
}

impl TxSlots {
    /// A ring of `n` slots (n ≥ 1).
    pub fn new(n: usize) -> TxSlots {
        let count = n.max(1);
        TxSlots {
            slots: Aligned::zeroed(count * SLOT),
            count,
            next: 0,
            packets: 0,
            bytes: 0,
        }
    }

    /// Copy one frame into the next slot (truncated to the slot size).
    #[inline(always)]
    pub fn put(&mut self, frame: &[u8]) {
        let at = self.next * SLOT;
        let n = frame.len().min(SLOT);
        self.slots.bytes_mut()[at..at + n].copy_from_slice(&frame[..n]);
        self.next = if self.next + 1 == self.count {
            0
        } else {
            self.next + 1
        };
        self.packets += 1;
        self.bytes += n as u64;
    }

    /// A byte of the last slot written, so the optimiser keeps the copies.
    pub fn witness(&self) -> u8 {
        self.slots
            .bytes()
            .chunks(SLOT)
            .map(|s| s[12])
            .fold(0, |a, b| a ^ b)
    }
}

impl Backend for TxSlots {
    #[inline]
    fn recv(&mut self, _batch: &mut Batch) -> io::Result<usize> {
        Ok(0)
    }

    #[inline]
    fn send(&mut self, out: Outgoing<'_>) -> io::Result<usize> {
        for f in out.frames() {
            self.put(f);
        }
        Ok(out.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_buffers_start_on_cache_lines_and_cycle() {
        let frames: Vec<Vec<u8>> = (1..=3u8).map(|i| vec![i; 60 + i as usize]).collect();
        let mut src = FrameSource::new(frames.clone());
        assert_eq!(src.bytes_per_cycle(), 61 + 62 + 63);
        for f in frames.iter().chain(&frames) {
            let got = src.next_frame();
            assert_eq!(got, &f[..]);
            assert_eq!(got.as_ptr() as usize % LINE, 0);
        }
        let mut copy = src.clone();
        assert_eq!(copy.next_frame().as_ptr() as usize % LINE, 0, "a clone too");
        let mut tx = TxSlots::new(2);
        for f in &frames {
            tx.put(f);
        }
        assert_eq!((tx.packets, tx.bytes), (3, 61 + 62 + 63));
        assert!(tx.slots.bytes().as_ptr() as usize % LINE == 0);
        // Slot 0 holds frame 3 (the ring wrapped), slot 1 frame 2.
        assert_eq!(tx.witness(), 3 ^ 2);
    }
}
