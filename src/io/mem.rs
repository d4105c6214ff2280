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

/// Cycles a fixed set of template frames into batches (bench receive side).
#[derive(Debug, Clone)]
pub struct FrameSource {
    frames: Vec<Vec<u8>>,
    next: usize,
}

impl FrameSource {
    /// A source over `frames` (must not be empty, each ≤ the buffer size).
    pub fn new(frames: Vec<Vec<u8>>) -> FrameSource {
        FrameSource { frames, next: 0 }
    }

    /// Total bytes of one pass over the templates.
    pub fn bytes_per_cycle(&self) -> usize {
        self.frames.iter().map(Vec::len).sum()
    }

    /// The templates.
    pub fn frames(&self) -> &[Vec<u8>] {
        &self.frames
    }

    /// The next template, advancing the cycle.
    #[inline(always)]
    pub fn next_frame(&mut self) -> &[u8] {
        let i = self.next;
        self.next = if i + 1 == self.frames.len() { 0 } else { i + 1 };
        &self.frames[i]
    }
}

impl Backend for FrameSource {
    #[inline]
    fn recv(&mut self, batch: &mut Batch) -> io::Result<usize> {
        let mut n = 0;
        if self.frames.is_empty() {
            return Ok(0);
        }
        while !batch.is_full() {
            let i = self.next;
            self.next = if i + 1 == self.frames.len() { 0 } else { i + 1 };
            if batch.push(&self.frames[i]) {
                n += 1;
            }
        }
        Ok(n)
    }

    fn send(&mut self, _out: Outgoing<'_>) -> io::Result<usize> {
        Ok(0)
    }
}

/// A transmit ring of fixed slots: each sent frame is copied into the next
/// slot (bench transmit side).
#[derive(Debug, Clone)]
pub struct TxSlots {
    slots: Vec<[u8; 2048]>,
    next: usize,
    /// Frames accepted.
    pub packets: u64,
    /// Bytes accepted.
    pub bytes: u64,
}

impl TxSlots {
    /// A ring of `n` slots (n ≥ 1).
    pub fn new(n: usize) -> TxSlots {
        TxSlots {
            slots: vec![[0u8; 2048]; n.max(1)],
            next: 0,
            packets: 0,
            bytes: 0,
        }
    }

    /// Copy one frame into the next slot (truncated to the slot size).
    #[inline(always)]
    pub fn put(&mut self, frame: &[u8]) {
        let slot = &mut self.slots[self.next];
        let n = frame.len().min(slot.len());
        slot[..n].copy_from_slice(&frame[..n]);
        self.next = if self.next + 1 == self.slots.len() {
            0
        } else {
            self.next + 1
        };
        self.packets += 1;
        self.bytes += n as u64;
    }

    /// A byte of the last slot written, so the optimiser keeps the copies.
    pub fn witness(&self) -> u8 {
        self.slots.iter().map(|s| s[12]).fold(0, |a, b| a ^ b)
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
