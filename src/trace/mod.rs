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
//! - A TCP super-frame in the capture (as `tcpdump` records one where the
//!   sender's offloads are on: one IP packet with many segments' payload)
//!   goes through as the super-frame a port with offloads on would hand
//!   over, its metadata read back from its bytes
//!   ([`Offload::of_captured`]); its record carries that metadata as
//!   received and as it would leave, and its output is the whole
//!   super-frame. By default only frames too long for a buffer are read
//!   as super-frames; with [`Tracer::segment_size`] set, every TCP frame
//!   with more payload than one segment is.
//! - Other frames too long for a buffer are dropped as `malformed`, as
//!   `run` drops them.

mod describe;
mod mpls;

pub use describe::{FrameTrace, GsoTrace, LabelStagesTrace, OffloadTrace, Summary};
pub use mpls::{ControlWordTrace, InnerEthernetTrace, LabelTrace, MplsTrace};

use crate::driver::{Driver, Ports};
use crate::frame::superframe::SUPER_FRAME_MAX;
use crate::frame::{Batch, DropReason, Meta, Outgoing, PortId, Verdict, BATCH_SIZE};
use crate::io::pcap::PcapSource;
use crate::pipeline::{LinkState, Pipeline};
use crate::plan::Plan;
use crate::wire::packet::MAX_FRAME;
use crate::wire::{GsoError, Offload};
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
    /// A super-frame's offload metadata (`None` for an ordinary frame).
    pub super_frame: Option<SuperFrameRecord>,
}

/// A super-frame's offload metadata through the pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SuperFrameRecord {
    /// As read from the capture.
    pub received: Offload,
    /// As it leaves (checksum start and header length moved with the
    /// headers), for a frame that leaves by a port; the error when its
    /// headers as the pipeline left them cannot carry it.
    pub sent: Option<Result<Offload, GsoError>>,
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
    /// The metadata of the frames read as super-frames.
    offloads: [Option<Offload>; BATCH_SIZE],
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
    segment_size: Option<u16>,
}

/// The metadata of a captured frame to be read as a super-frame: any TCP
/// frame with more payload than `segment_size` when it is given, else one
/// too long for a buffer ([`Offload::of_captured`]).
fn captured_super_frame(frame: &[u8], segment_size: Option<u16>) -> Option<Offload> {
    if segment_size.is_none() && frame.len() <= MAX_FRAME {
        return None;
    }
    Offload::of_captured(frame, segment_size)
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
            // A super-frame the batch cannot split (e.g. longer than its
            // room) is tried as an ordinary frame: too long, it is
            // reported so.
            let offload = captured_super_frame(f.data, self.segment_size)
                .filter(|&o| batch.push_super(f.data, o).unwrap_or(false))
                .filter(|_| batch.super_mask() & (1 << k) != 0);
            if offload.is_none() && batch.len() == k && !batch.push(f.data) {
                let input = if i.keep { f.data.to_vec() } else { Vec::new() };
                i.too_long = Some((f.number, f.timestamp, f.original_len, f.data.len(), input));
                break;
            }
            i.offloads[k] = offload;
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

    /// The trace shows a super-frame as it leaves whole (what `tcpdump`
    /// records on a port with offloads on), with the count of segments it
    /// makes.
    fn takes_super_frames(&self, _port: PortId) -> bool {
        true
    }
}

/// Runs a capture through a pipeline.
pub struct Tracer {
    pipeline: Pipeline,
    port: PortId,
    driver: Driver,
    inputs: Inputs,
    segment_size: Option<u16>,
    /// A leaving super-frame, whole again (headers and payload).
    rejoined: Vec<u8>,
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
                offloads: [None; BATCH_SIZE],
                too_long: None,
            },
            segment_size: None,
            rejoined: Vec::new(),
        }
    }

    /// Read every TCP frame of the capture with more than `segment_size`
    /// payload bytes as a super-frame of that segment size; `None` (the
    /// default): only frames too long for a buffer, at the segment size a
    /// 1500-byte MTU leaves ([`Offload::of_captured`]).
    pub fn segment_size(mut self, segment_size: Option<u16>) -> Tracer {
        self.segment_size = segment_size;
        self
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
                segment_size: self.segment_size,
            };
            let n = self
                .driver
                .step(&mut self.pipeline, &mut capture, self.port, &mut ());
            let plan = self.pipeline.plan().clone();
            let batch = self.driver.batch();
            let i = &self.inputs;
            for k in 0..n {
                let meta = batch.meta(k);
                let mut output = meta.verdict.egress().map(|_| batch.buf(k).frame());
                // Still a super-frame unless the pipeline answered it
                // with a reply built in its buffer.
                let leaving = batch.super_frame(k).and_then(|sf| {
                    let headers = output?;
                    if self.rejoined.is_empty() {
                        self.rejoined = vec![0; SUPER_FRAME_MAX + 256];
                    }
                    let r = sf.rejoin_whole(headers, &mut self.rejoined);
                    output = match r {
                        Ok((len, _)) => self.rejoined.get(..len),
                        Err(_) => None,
                    };
                    Some(r.map(|(_, o)| o))
                });
                let super_frame = i.offloads[k].map(|received| SuperFrameRecord {
                    received,
                    sent: leaving,
                });
                visit(&Record {
                    number: i.numbers[k],
                    timestamp: i.stamps[k],
                    original_len: i.lens[k].0,
                    captured_len: i.lens[k].1,
                    input: if i.keep { &i.bytes[k] } else { &[] },
                    output,
                    meta: Some(meta),
                    plan: &plan,
                    port: self.port,
                    super_frame,
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
                    super_frame: None,
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
