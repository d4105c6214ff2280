//! Offline trace: the frames of a capture file through the forwarding
//! pipeline, one port's receive side, with what was decided for each.
//!
//! Contract:
//! - Frames go through [`Pipeline::process`] in batches of up to
//!   [`BATCH_SIZE`], exactly as `xconnect run` sends them; the trace only
//!   reads the results (the input bytes, the metadata the stages left, the
//!   bytes out). The pipeline's clock is the capture's: each batch runs at
//!   its first frame's timestamp, so rate limits and neighbour ageing
//!   replay deterministically.
//! - Every frame of the file is visited once, in file order, as a
//!   [`Record`]; [`FrameTrace::of`] turns a record into the per-frame report
//!   (`--json` serialises it); [`Summary`] counts verdicts only.
//! - A frame the parser cannot fully decode is reported with what was
//!   decoded (Ethernet, tags) and the layer and offset that failed.
//! - Frames too long for a buffer are dropped as `malformed`, as `run`
//!   drops them.

mod describe;

pub use describe::{FrameTrace, Summary};

use crate::io::pcap::PcapSource;
use crate::pipeline::{Batch, DropReason, LinkState, Meta, Pipeline, Plan, PortId, BATCH_SIZE};
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
    pub fn verdict(&self) -> crate::pipeline::Verdict {
        self.meta
            .map_or(crate::pipeline::Verdict::Drop(DropReason::Malformed), |m| {
                m.verdict
            })
    }
}

/// Runs a capture through a pipeline.
pub struct Tracer {
    pipeline: Pipeline,
    port: PortId,
    batch: Batch,
    keep_input: bool,
    inputs: Vec<Vec<u8>>,
    numbers: [u64; BATCH_SIZE],
    stamps: [Duration; BATCH_SIZE],
    lens: [(u32, usize); BATCH_SIZE],
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
            batch: Batch::new(),
            keep_input,
            inputs: vec![Vec::new(); BATCH_SIZE],
            numbers: [0; BATCH_SIZE],
            stamps: [Duration::ZERO; BATCH_SIZE],
            lens: [(0, 0); BATCH_SIZE],
        }
    }

    /// The pipeline (its counters after a run).
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// Run frames of `source` (at most `limit`) through the pipeline and
    /// hand each to `visit`, in order. Returns the frames visited. Stops at
    /// the end of the file or at its first corrupt record
    /// ([`PcapSource::error`]).
    pub fn run(
        &mut self,
        source: &mut PcapSource,
        limit: Option<u64>,
        mut visit: impl FnMut(&Record<'_>),
    ) -> u64 {
        let mut done = 0u64;
        let limit = limit.unwrap_or(u64::MAX);
        loop {
            self.batch.clear();
            self.batch.port = self.port;
            // A frame too long for a buffer, reported after the batch
            // before it: (number, timestamp, original and captured
            // length, its bytes when inputs are kept).
            let mut too_long = None;
            while !self.batch.is_full() && done + (self.batch.len() as u64) < limit {
                let Some(f) = source.next_frame() else { break };
                let k = self.batch.len();
                if !self.batch.push(f.data) {
                    let input = if self.keep_input {
                        f.data.to_vec()
                    } else {
                        Vec::new()
                    };
                    too_long = Some((f.number, f.timestamp, f.original_len, f.data.len(), input));
                    break;
                }
                self.numbers[k] = f.number;
                self.stamps[k] = f.timestamp;
                self.lens[k] = (f.original_len, f.data.len());
                if self.keep_input {
                    self.inputs[k].clear();
                    self.inputs[k].extend_from_slice(f.data);
                }
            }
            let n = self.batch.len();
            if n > 0 {
                let now_ms = self.stamps[0].as_millis() as u64 + 1;
                self.pipeline.set_time_ms(Some(now_ms));
                self.pipeline.process(&mut self.batch);
                let plan = self.pipeline.plan().clone();
                for i in 0..n {
                    let meta = self.batch.meta(i);
                    let r = Record {
                        number: self.numbers[i],
                        timestamp: self.stamps[i],
                        original_len: self.lens[i].0,
                        captured_len: self.lens[i].1,
                        input: if self.keep_input {
                            &self.inputs[i]
                        } else {
                            &[]
                        },
                        output: meta.verdict.egress().map(|_| self.batch.buf(i).frame()),
                        meta: Some(meta),
                        plan: &plan,
                        port: self.port,
                    };
                    visit(&r);
                }
                done += n as u64;
            }
            if let Some((number, timestamp, original_len, captured_len, input)) = too_long {
                self.pipeline
                    .count_rx_drop(self.port, captured_len, DropReason::Malformed);
                let plan = self.pipeline.plan().clone();
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
