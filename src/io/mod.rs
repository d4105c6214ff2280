//! I/O backends: how batches of frames get in and out of the pipeline.
//!
//! A [`Backend`] receives a batch from one port and transmits the frames a
//! batch forwards to that port. `mem` runs everything in memory (tests,
//! benches, fuzzing); the kernel backends (AF_PACKET rings, TAP, pnet)
//! implement the same trait.

pub mod mem;

use crate::pipeline::{Batch, PortId};
use std::io;

/// A port's receive and transmit sides.
pub trait Backend {
    /// Fill `batch` (already cleared, `batch.port` set by the caller) with up
    /// to [`crate::pipeline::BATCH_SIZE`] frames; returns how many.
    fn recv(&mut self, batch: &mut Batch) -> io::Result<usize>;

    /// Transmit every frame of `batch` whose verdict is `Forward(port)`;
    /// returns how many were accepted (the rest are the caller's `tx-full`).
    fn send(&mut self, batch: &Batch, port: PortId) -> io::Result<usize>;
}
