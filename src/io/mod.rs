//! I/O backends: how batches of frames get in and out of a port.
//!
//! A [`Backend`] receives a batch from one port and transmits the frames a
//! batch sends to that port; the driver (`crate::driver`) runs the batch
//! through the pipeline in between. Backends know the frame types
//! ([`crate::frame`]) only: no pipeline, no plan, no configuration. `mem` runs everything in memory (tests,
//! benches, fuzzing); the kernel backends implement [`Port`] on top:
//!
//! | backend | receive | transmit | outer VLAN tag on receive |
//! |---|---|---|---|
//! | [`af_packet`] | TPACKET_V3 ring, no syscall per frame | TPACKET_V2 ring, one `send` per batch and port | restored from the ring's `tp_vlan_tci`/`tp_vlan_tpid` |
//! | [`tap`] | `read` per frame | `write` per frame | in the bytes (TAP never strips it) |
//! | [`pnet`] | `poll`+`recvfrom` per frame | `poll`+`sendto` per frame | **lost** (no auxdata): access ports only |
//!
//! Contract of every kernel port: non-blocking (the worker sleeps in one
//! `epoll` over all its ports, through [`Port::register`]), the frames
//! `send` accepts are a prefix of the frames forwarded to the port, frames
//! too long for a buffer are recorded in the batch (counted `malformed` by
//! the pipeline) and kernel drops in [`IoStats`]: never silently lost.

pub mod af_packet;
pub mod mem;
pub mod pcap;
pub mod pnet;
pub mod sys;
pub mod tap;

use crate::frame::{Batch, Outgoing};
use std::io;

/// A port's receive and transmit sides.
pub trait Backend {
    /// Fill `batch` (already cleared, `batch.port` set by the caller) with up
    /// to [`crate::frame::BATCH_SIZE`] frames; returns how many. A frame
    /// too long for a buffer is recorded with [`Batch::count_oversize`].
    fn recv(&mut self, batch: &mut Batch) -> io::Result<usize>;

    /// Transmit the frames `out` (all leaving by this port, in order);
    /// returns how many were accepted, a prefix (the rest are the caller's
    /// `tx-full`).
    fn send(&mut self, out: Outgoing<'_>) -> io::Result<usize>;

    /// Whether [`Backend::send`] takes super-frames ([`Outgoing::supers`])
    /// and sends them whole or cuts them itself. By default it does not,
    /// and the driver hands it the segments instead.
    fn takes_super_frames(&self) -> bool {
        false
    }
}

impl<B: Backend + ?Sized> Backend for Box<B> {
    #[inline]
    fn recv(&mut self, batch: &mut Batch) -> io::Result<usize> {
        (**self).recv(batch)
    }

    #[inline]
    fn send(&mut self, out: Outgoing<'_>) -> io::Result<usize> {
        (**self).send(out)
    }

    fn takes_super_frames(&self) -> bool {
        (**self).takes_super_frames()
    }
}

/// What a kernel port counted since the last [`Port::take_stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoStats {
    /// Frames the kernel dropped before we saw them (ring or queue full).
    pub kernel_drops: u64,
}

/// A kernel-backed port a worker polls: a [`Backend`] with a pollable file
/// descriptor and its own counters.
pub trait Port: Backend + Send {
    /// Register the port's file descriptor for readability under `token`.
    fn register(&mut self, registry: &mio::Registry, token: mio::Token) -> io::Result<()>;

    /// Take the port's file descriptor out of `registry` (before the
    /// queue is handed elsewhere to be closed). Ports without one need not
    /// implement it.
    fn deregister(&mut self, _registry: &mio::Registry) -> io::Result<()> {
        Ok(())
    }

    /// Counters since the last call.
    fn take_stats(&mut self) -> IoStats;

    /// Clear a pending socket error (e.g. `ENETDOWN` after the interface
    /// went down) that would otherwise keep the poll awake.
    fn clear_error(&mut self) {}

    /// Push out frames the port accepted but could not hand to the kernel
    /// yet (a transmit ring whose last kick met a busy device). Called by
    /// the worker before it sleeps.
    fn flush(&mut self) {}
}

/// The queue of a port that is closed (a reload removed it): it receives
/// nothing and accepts nothing (what is sent to it is counted `tx-full`
/// by the driver), and has no file descriptor to poll. Workers keep one
/// in a removed port's place so that no other port's id moves.
#[derive(Clone, Copy, Debug, Default)]
pub struct Closed;

impl Backend for Closed {
    fn recv(&mut self, _batch: &mut Batch) -> io::Result<usize> {
        Ok(0)
    }

    fn send(&mut self, _out: Outgoing<'_>) -> io::Result<usize> {
        Ok(0)
    }
}

impl Port for Closed {
    fn register(&mut self, _registry: &mio::Registry, _token: mio::Token) -> io::Result<()> {
        Ok(())
    }

    fn take_stats(&mut self) -> IoStats {
        IoStats::default()
    }
}
