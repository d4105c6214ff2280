//! Offline trace: the frames of a capture file through the forwarding
//! pipeline, one port's receive side, with what was decided for each.
//!
//! Contract:
//! - Frames go through the driver ([`Driver::step`]) in batches of up to
//!   [`BATCH_SIZE`], exactly as `xconnect run` moves them; the trace only
//!   reads the results (the input bytes, the metadata the stages left, the
//!   bytes out). The pipeline's clock is the capture's: each batch runs at
//!   its first frame's timestamp, so rate limits and neighbour ageing
//!   replay deterministically.
//! - Every frame of the file is visited once, in file order, as a
//!   [`Record`]; [`FrameTrace::of`] turns a record into the per-frame report
//!   (`--json` serialises it); [`Summary`] counts verdicts only.
//! - A frame the parser cannot fully decode is reported with what was
//!   decoded (Ethernet, tags) and the layer and offset that failed.
//! - A labelled frame is decoded through its label stack: what is under
//!   it is what the attachment owning its bottom label expects (an L3VPN's
//!   IP, a pseudowire's Ethernet frame behind its control word), else IP by
//!   the version nibble; the stages show the labels popped and pushed.
//! - Frames too long for a buffer are dropped as `malformed`, as `run`
//!   drops them.

mod describe;
mod mpls;

pub use describe::{FrameTrace, LabelStagesTrace, Summary};
pub use mpls::{ControlWordTrace, InnerEthernetTrace, LabelTrace, MplsTrace};

use crate::driver::{Driver, Ports};
use crate::frame::{Batch, DropReason, Meta, Outgoing, PortId, Verdict, BATCH_SIZE};
use crate::io::pcap::PcapSource;
use crate::pipeline::{LinkState, Pipeline};
use crate::plan::Plan;
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// One frame as the pipeline left it.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    /// Frame number in the file (from 1).
    pub number: u64,
    /// Capture timestamp.
    pub timestamp: Duration,
    /// Length on the wire (the capture may hold fewer bytes).
    pub original_len: u32,
    /// Captured length.
    pub captured_len: usize,
    /// The bytes received (empty unless the tracer keeps inputs).
    pub input: &'a [u8],
    /// The bytes sent, for a frame that leaves by a port.
    pub output: Option<&'a [u8]>,
    /// The stages' metadata; `None` for a frame too long for a buffer.
    pub meta: Option<&'a Meta>,
    /// The plan the frame went through.
    pub plan: &'a Plan,
    /// The ingress port.
    pub port: PortId,
}

impl Record<'_> {
    /// The verdict (too-long frames are `malformed` drops).
    pub fn verdict(&self) -> Verdict {
        self.meta
            .map_or(Verdict::Drop(DropReason::Malformed), |m| m.verdict)
    }
}

/// What the tracer keeps of each frame of the batch in flight.
struct Inputs {
    keep: bool,
    bytes: Vec<Vec<u8>>,
    numbers: [u64; BATCH_SIZE],
    stamps: [Duration; BATCH_SIZE],
    lens: [(u32, usize); BATCH_SIZE],
    /// A frame too long for a buffer, met after the batch before it:
    /// (number, timestamp, original and captured length, its bytes when
    /// inputs are kept).
    too_long: Option<(u64, Duration, u32, usize, Vec<u8>)>,
}

/// The capture as the driver's only port: frames of `port` come from the
/// file (up to `left` of them); whatever the pipeline sends is accepted
/// (the tracer reads it from the batch).
struct Capture<'a> {
    source: &'a mut PcapSource,
    port: PortId,
    left: u64,
    inputs: &'a mut Inputs,
}

impl Ports for Capture<'_> {
    fn recv(&mut self, port: PortId, batch: &mut Batch) -> io::Result<usize> {
        if port != self.port {
            return Ok(0);
        }
        let i = &mut *self.inputs;
        while !batch.is_full() && (batch.len() as u64) < self.left {
            let Some(f) = self.source.next_frame() else {
                break;
            };
            let k = batch.len();
            if !batch.push(f.data) {
                let input = if i.keep { f.data.to_vec() } else { Vec::new() };
                i.too_long = Some((f.number, f.timestamp, f.original_len, f.data.len(), input));
                break;
            }
            i.numbers[k] = f.number;
            i.stamps[k] = f.timestamp;
            i.lens[k] = (f.original_len, f.data.len());
            if i.keep {
                i.bytes[k].clear();
                i.bytes[k].extend_from_slice(f.data);
            }
        }
        if !batch.is_empty() {
            // The batch runs at its first frame's time (0 means "never").
            batch.time_ms = Some(i.stamps[0].as_millis() as u64 + 1);
        }
        Ok(batch.len())
    }

    fn send(&mut self, out: Outgoing<'_>) -> io::Result<usize> {
        Ok(out.len())
    }
}

/// Runs a capture through a pipeline.
pub struct Tracer {
    pipeline: Pipeline,
    port: PortId,
    driver: Driver,
    inputs: Inputs,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracer").field("port", &self.port).finish()
    }
}

impl Tracer {
    /// A tracer feeding `port` of `plan`; `keep_input` keeps each frame's
    /// received bytes for the record (needed by [`FrameTrace::of`], not by
    /// [`Summary`]).
    pub fn new(plan: Arc<Plan>, links: LinkState, port: PortId, keep_input: bool) -> Tracer {
        Tracer {
            pipeline: Pipeline::new(plan, links),
            port,
            driver: Driver::new(),
            inputs: Inputs {
                keep: keep_input,
                bytes: vec![Vec::new(); BATCH_SIZE],
                numbers: [0; BATCH_SIZE],
                stamps: [Duration::ZERO; BATCH_SIZE],
                lens: [(0, 0); BATCH_SIZE],
                too_long: None,
            },
        }
    }

    /// The pipeline (its counters after a run).
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// Run frames of `source` (at most `limit`) through the pipeline, one
    /// [`Driver::step`] per batch, and hand each to `visit`, in order.
    /// Returns the frames visited. Stops at the end of the file or at its
    /// first corrupt record ([`PcapSource::error`]).
    pub fn run(
        &mut self,
        source: &mut PcapSource,
        limit: Option<u64>,
        mut visit: impl FnMut(&Record<'_>),
    ) -> u64 {
        let mut done = 0u64;
        let limit = limit.unwrap_or(u64::MAX);
        loop {
            let mut capture = Capture {
                source: &mut *source,
                port: self.port,
                left: limit.saturating_sub(done),
                inputs: &mut self.inputs,
            };
            let n = self
                .driver
                .step(&mut self.pipeline, &mut capture, self.port, &mut ());
            let plan = self.pipeline.plan().clone();
            let batch = self.driver.batch();
            let i = &self.inputs;
            for k in 0..n {
                let meta = batch.meta(k);
                visit(&Record {
                    number: i.numbers[k],
                    timestamp: i.stamps[k],
                    original_len: i.lens[k].0,
                    captured_len: i.lens[k].1,
                    input: if i.keep { &i.bytes[k] } else { &[] },
                    output: meta.verdict.egress().map(|_| batch.buf(k).frame()),
                    meta: Some(meta),
                    plan: &plan,
                    port: self.port,
                });
            }
            done += n as u64;
            if let Some((number, timestamp, original_len, captured_len, input)) =
                self.inputs.too_long.take()
            {
                self.pipeline
                    .count_rx_drop(self.port, captured_len, DropReason::Malformed);
                visit(&Record {
                    number,
                    timestamp,
                    original_len,
                    captured_len,
                    input: &input,
                    output: None,
                    meta: None,
                    plan: &plan,
                    port: self.port,
                });
                done += 1;
                continue;
            }
            if n == 0 || done >= limit {
                return done;
            }
        }
    }
}
