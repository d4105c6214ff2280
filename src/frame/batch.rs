//! A batch of up to [`BATCH_SIZE`] frames from one ingress port, with the
//! per-frame metadata each stage fills in.
//!
//! Buffers are allocated once when the batch is created and reused for
//! every receive: the hot path never allocates.

use super::drop::DropReason;
use super::superframe::SuperFrame;
use super::PortId;
use crate::wire::{FrameInfo, PacketBuf};

/// Frames per batch.
pub const BATCH_SIZE: usize = 32;

/// What the pipeline decided for one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Verdict {
    /// Not processed yet.
    #[default]
    Pending,
    /// Send out of this port.
    Forward(PortId),
    /// Dropped for this reason.
    Drop(DropReason),
    /// Consumed by the forwarder itself (an ARP reply or neighbour
    /// advertisement it learned from, a packet to its own address).
    Local,
    /// The packet's buffer now holds an ARP request / neighbour
    /// solicitation to send out of this port. In a received batch the
    /// packet itself was dropped as `neighbor-unresolved` (no room to hold
    /// it); in a batch of released packets it is a renewed request for the
    /// neighbour they wait for.
    Resolve(PortId),
    /// The packet waits for its next hop's MAC (held by the `l3` stage; it
    /// is counted when it leaves the queue, sent or dropped).
    Held,
}

impl Verdict {
    /// The port the frame's buffer leaves by, if any.
    #[inline(always)]
    pub fn egress(self) -> Option<PortId> {
        match self {
            Verdict::Forward(p) | Verdict::Resolve(p) => Some(p),
            _ => None,
        }
    }
}

/// Per-frame metadata filled in by the stages.
#[derive(Clone, Copy, Debug, Default)]
pub struct Meta {
    /// The parse result (tags as received, offsets, ports).
    pub info: FrameInfo,
    /// Attachment the frame was classified to (`u32::MAX` if none).
    pub attachment: u32,
    /// DSCP before marking (IP only).
    pub dscp_before: u8,
    /// DSCP after marking (IP only).
    pub dscp_after: u8,
    /// The longest-prefix-match answer for a routed (`l3`) IP packet: the
    /// path id ([`crate::plan::PathId`]), [`Meta::NO_ROUTE`] when the table
    /// had no match or the frame was not looked up. Read by `trace`.
    pub route: u8,
    /// The decision.
    pub verdict: Verdict,
}

impl Meta {
    /// [`Meta::route`] when there is no route (or no lookup).
    pub const NO_ROUTE: u8 = u8::MAX;
}

/// A batch of frames received on one port.
pub struct Batch {
    /// The ingress port of every frame in the batch.
    pub port: PortId,
    /// The time the batch was received by the source's own clock, in ms,
    /// when it has one (a capture file: the first frame's timestamp); the
    /// pipeline then runs the batch at that time. `None`: the pipeline's
    /// clock.
    pub time_ms: Option<u64>,
    len: usize,
    /// Frames the backend received but could not hand over (too long for
    /// a buffer), and their bytes: counted by the pipeline as received and
    /// `malformed`.
    oversize: (usize, u64),
    bufs: Vec<PacketBuf>,
    meta: Vec<Meta>,
    /// The super-frame storage of each slot, allocated the first time a
    /// super-frame lands in the slot and kept.
    supers: Vec<Option<SuperFrame>>,
    /// Bit i: slot i was received as a super-frame in this batch (its
    /// buffer still holds the headers while [`PacketBuf::tail`] is not 0).
    super_mask: u32,
}

impl Default for Batch {
    fn default() -> Self {
        Self::new()
    }
}

impl Batch {
    /// A batch with [`BATCH_SIZE`] preallocated buffers.
    pub fn new() -> Batch {
        Batch {
            port: 0,
            time_ms: None,
            len: 0,
            oversize: (0, 0),
            bufs: (0..BATCH_SIZE).map(|_| PacketBuf::new()).collect(),
            meta: vec![Meta::default(); BATCH_SIZE],
            supers: (0..BATCH_SIZE).map(|_| None).collect(),
            super_mask: 0,
        }
    }

    /// Forget the frames (buffers are kept), the time and the oversize count.
    #[inline]
    pub fn clear(&mut self) {
        self.len = 0;
        self.time_ms = None;
        self.oversize = (0, 0);
        self.super_mask = 0;
    }

    /// Record a frame of `bytes` the backend received but could not hand
    /// over (too long for a buffer).
    #[inline]
    pub fn count_oversize(&mut self, bytes: usize) {
        self.oversize.0 += 1;
        self.oversize.1 += bytes as u64;
    }

    /// Frames (and their bytes) recorded by [`Batch::count_oversize`],
    /// reset to zero.
    #[inline]
    pub fn take_oversize(&mut self) -> (usize, u64) {
        std::mem::take(&mut self.oversize)
    }

    /// Frames recorded by [`Batch::count_oversize`] and not yet taken.
    #[inline]
    pub fn oversize(&self) -> usize {
        self.oversize.0
    }

    /// Number of frames.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if empty.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True if no more frames fit.
    #[inline(always)]
    pub fn is_full(&self) -> bool {
        self.len == BATCH_SIZE
    }

    /// The next free buffer, to be filled by a backend and then committed
    /// with [`Batch::commit`]. `None` when the batch is full.
    #[inline]
    pub fn next_buf(&mut self) -> Option<&mut PacketBuf> {
        self.bufs.get_mut(self.len)
    }

    /// Count the buffer returned by [`Batch::next_buf`] as received.
    #[inline]
    pub fn commit(&mut self) {
        if self.len < BATCH_SIZE {
            // Only what the pipeline reads before writing: the parse
            // overwrites `info`, the marker the DSCP pair.
            let m = &mut self.meta[self.len];
            m.attachment = u32::MAX;
            m.verdict = Verdict::Pending;
            m.dscp_before = 0;
            m.dscp_after = 0;
            m.route = Meta::NO_ROUTE;
            self.len += 1;
        }
    }

    /// The next free buffer and its slot's super-frame storage (allocated
    /// the first time this slot takes a super-frame), for a backend that
    /// received a super-frame: [`SuperFrame::split`] it into the buffer,
    /// then [`Batch::commit_super`] (or [`Batch::commit`] when it turned
    /// out an ordinary frame). `None` when the batch is full.
    pub fn next_super(&mut self) -> Option<(&mut PacketBuf, &mut SuperFrame)> {
        let i = self.len;
        let buf = self.bufs.get_mut(i)?;
        let slot = self.supers.get_mut(i)?;
        Some((buf, slot.get_or_insert_with(SuperFrame::new)))
    }

    /// Count the buffer of [`Batch::next_super`] as received, a super-frame.
    pub fn commit_super(&mut self) {
        if self.len < BATCH_SIZE {
            self.super_mask |= 1 << self.len;
            self.commit();
        }
    }

    /// Copy a whole super-frame in (tests, the traffic generator, capture
    /// replay): split as a backend does. `Ok(false)`: the batch is full.
    pub fn push_super(
        &mut self,
        frame: &[u8],
        offload: crate::wire::Offload,
    ) -> Result<bool, crate::wire::GsoError> {
        let Some((buf, sf)) = self.next_super() else {
            return Ok(false);
        };
        let area = sf.receive_area();
        let Some(dst) = area.get_mut(..frame.len()) else {
            return Err(crate::wire::GsoError::Truncated {
                what: "super-frame buffer",
                needed: frame.len(),
                present: area.len(),
            });
        };
        dst.copy_from_slice(frame);
        if sf.split(frame.len(), offload, buf)? {
            self.commit_super();
        } else {
            self.commit();
        }
        Ok(true)
    }

    /// The super-frame whose headers frame `i` holds, if it is one (a
    /// reply built in its buffer is not).
    #[inline]
    pub fn super_frame(&self, i: usize) -> Option<&SuperFrame> {
        if i >= BATCH_SIZE || self.super_mask & (1 << i) == 0 || self.bufs.get(i)?.tail() == 0 {
            return None;
        }
        self.supers.get(i)?.as_ref()
    }

    /// Bit i set: frame i was received as a super-frame (see
    /// [`Batch::super_frame`]).
    #[inline(always)]
    pub fn super_mask(&self) -> u32 {
        self.super_mask
    }

    /// Copy a frame in. `false` if the batch is full or the frame too long
    /// (a too-long frame is counted by the caller).
    #[inline]
    pub fn push(&mut self, frame: &[u8]) -> bool {
        let loaded = match self.next_buf() {
            Some(b) => b.load(frame),
            None => false,
        };
        if loaded {
            self.commit();
        }
        loaded
    }

    /// Frame `i`.
    #[inline(always)]
    pub fn buf(&self, i: usize) -> &PacketBuf {
        &self.bufs[i]
    }

    /// Frame `i` and its metadata, both writable.
    #[inline(always)]
    pub fn get_mut(&mut self, i: usize) -> (&mut PacketBuf, &mut Meta) {
        (&mut self.bufs[i], &mut self.meta[i])
    }

    /// Every frame with its metadata, both writable, in order.
    #[inline(always)]
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&mut PacketBuf, &mut Meta)> + '_ {
        let n = self.len.min(BATCH_SIZE);
        self.bufs.iter_mut().zip(self.meta.iter_mut()).take(n)
    }

    /// Metadata of frame `i`.
    #[inline(always)]
    pub fn meta(&self, i: usize) -> &Meta {
        &self.meta[i]
    }

    /// Metadata of every frame, in order.
    #[inline(always)]
    pub fn metas(&self) -> &[Meta] {
        self.meta.get(..self.len).unwrap_or(&[])
    }

    /// The frames to transmit out of `port` (forwarded frames and
    /// resolution requests), in order.
    pub fn forwarded_to(&self, port: PortId) -> impl Iterator<Item = &[u8]> + '_ {
        (0..self.len)
            .filter(move |&i| self.meta[i].verdict.egress() == Some(port))
            .map(move |i| self.bufs[i].frame())
    }

    /// Mark frame `i` as dropped (used by backends whose transmit failed).
    pub fn set_verdict(&mut self, i: usize, v: Verdict) {
        if i < self.len {
            self.meta[i].verdict = v;
        }
    }
}

/// The frames of a batch that leave by one port, in batch order: what a
/// backend's transmit takes. A batch holds at most 32 frames, so the set
/// is one bit per frame; the driver builds the sets of every port in one
/// pass over the verdicts, and each backend walks only its own frames.
#[derive(Clone, Copy)]
pub struct Outgoing<'a> {
    /// The egress port.
    pub port: PortId,
    batch: &'a Batch,
    mask: u32,
}

const _: () = assert!(BATCH_SIZE <= 32, "Outgoing keeps one bit per frame");

impl std::fmt::Debug for Outgoing<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing")
            .field("port", &self.port)
            .field("mask", &format_args!("{:#034b}", self.mask))
            .finish()
    }
}

impl<'a> Outgoing<'a> {
    /// The frames of `batch` whose bit is set in `mask` (bit i: frame i;
    /// bits past the batch's length are ignored), leaving by `port`.
    #[inline(always)]
    pub fn new(port: PortId, batch: &'a Batch, mask: u32) -> Outgoing<'a> {
        let valid = if batch.len >= 32 {
            u32::MAX
        } else {
            (1u32 << batch.len) - 1
        };
        Outgoing {
            port,
            batch,
            mask: mask & valid,
        }
    }

    /// Every frame of `batch` whose verdict sends it out of `port`.
    pub fn scan(port: PortId, batch: &'a Batch) -> Self {
        let mut mask = 0u32;
        for i in 0..batch.len() {
            if batch.meta(i).verdict.egress() == Some(port) {
                mask |= 1 << i;
            }
        }
        Outgoing::new(port, batch, mask)
    }

    /// The frames of the set received as super-frames (see
    /// [`Batch::super_frame`]): 0 on the fast path.
    #[inline(always)]
    pub fn supers(&self) -> u32 {
        self.mask & self.batch.super_mask
    }

    /// The same batch and port with the set `mask` (a subset).
    #[inline]
    pub fn with_mask(&self, mask: u32) -> Outgoing<'a> {
        Outgoing::new(self.port, self.batch, mask & self.mask)
    }

    /// How many frames.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.mask.count_ones() as usize
    }

    /// True when no frame leaves by the port.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.mask == 0
    }

    /// The set of frames, bit i for frame i.
    #[inline(always)]
    pub fn mask(&self) -> u32 {
        self.mask
    }

    /// The batch they are in.
    #[inline(always)]
    pub fn batch(&self) -> &'a Batch {
        self.batch
    }

    /// Their positions in the batch, in order.
    #[inline(always)]
    pub fn positions(&self) -> impl Iterator<Item = usize> {
        let mut m = self.mask;
        std::iter::from_fn(move || {
            if m == 0 {
                return None;
            }
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            Some(i)
        })
    }

    /// The frame bytes, in order. For a super-frame
    /// ([`Outgoing::supers`]), only its headers: a backend that takes
    /// super-frames reads the rest from [`Batch::super_frame`]; for one that
    /// does not, the driver segments them first.
    #[inline(always)]
    pub fn frames(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let bufs = self.batch.bufs.get(..self.batch.len).unwrap_or(&[]);
        self.positions()
            .filter_map(move |i| bufs.get(i).map(PacketBuf::frame))
    }
}
