//! A batch of up to [`BATCH_SIZE`] frames from one ingress port, with the
//! per-frame metadata each stage fills in.
//!
//! Buffers are allocated once when the batch is created and reused for
//! every receive: the hot path never allocates.
//!
//! A super-frame's payload may be lent by the backend instead of copied
//! ([`Batch::lend_super`]), only inside a lending window that the batch's
//! owner opens and closes ([`Batch::open_lending`], [`Batch::close_lending`],
//! [`Batch::clear`]); closing it forgets every lent payload.

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
    /// Bit i: slot i's super-frame payload is lent by the backend.
    lent_mask: u32,
    /// Whether a backend may lend payloads ([`Batch::open_lending`]).
    lending: bool,
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
            lent_mask: 0,
            lending: false,
        }
    }

    /// Forget the frames (buffers are kept), the time and the oversize count.
    #[inline]
    pub fn clear(&mut self) {
        self.len = 0;
        self.time_ms = None;
        self.oversize = (0, 0);
        self.super_mask = 0;
        self.forget_lent();
    }

    /// Let backends lend super-frame payloads to this batch
    /// ([`Batch::lend_super`]) until [`Batch::close_lending`].
    ///
    /// # Safety
    /// The caller closes the window ([`Batch::close_lending`], or
    /// [`Batch::clear`]) before any backend that received into this batch
    /// receives again, is flushed or is dropped: a lending backend keeps
    /// the lent bytes from the kernel only until then.
    #[inline]
    pub unsafe fn open_lending(&mut self) {
        self.lending = true;
    }

    /// End the lending window: every lent payload is forgotten (those
    /// super-frames have no payload any more), and backends copy again.
    #[inline]
    pub fn close_lending(&mut self) {
        self.lending = false;
        self.forget_lent();
    }

    /// Whether the lending window is open ([`Batch::open_lending`]).
    #[inline(always)]
    pub fn lending(&self) -> bool {
        self.lending
    }

    fn forget_lent(&mut self) {
        let mut m = std::mem::take(&mut self.lent_mask);
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            if let Some(Some(sf)) = self.supers.get_mut(i) {
                sf.forget_lent();
            }
        }
    }

    /// Take super-frame `frame` (received with `offload`) without copying
    /// its payload: split as [`SuperFrame::split_lent`] does. `Ok(None)`:
    /// the batch is full; `Ok(Some(false))`: not a super-frame after all,
    /// copied whole as an ordinary frame.
    ///
    /// # Safety
    /// The lending window is open ([`Batch::lending`]) and `frame`'s bytes
    /// stay valid and unchanged until it closes: the backend keeps them
    /// from the kernel until its next receive (or its drop).
    pub unsafe fn lend_super(
        &mut self,
        frame: &[u8],
        offload: crate::wire::Offload,
    ) -> Result<Option<bool>, crate::wire::GsoError> {
        debug_assert!(self.lending);
        let i = self.len;
        let Some((buf, sf)) = self.next_super() else {
            return Ok(None);
        };
        // SAFETY: forwarded from the caller; `close_lending` and `clear`
        // forget the view through `lent_mask`, set below.
        if unsafe { sf.split_lent(frame, offload, buf)? } {
            self.lent_mask |= 1 << i;
            self.commit_super();
            Ok(Some(true))
        } else {
            self.commit();
            Ok(Some(false))
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::gso::{ChecksumState, GsoKind, Offload};

    /// An untagged IPv4 TCP super-frame of `payload` bytes (checksums
    /// complete) and its metadata: segments of 1,000 bytes.
    fn super_frame(payload: usize) -> (Vec<u8>, Offload) {
        let data: Vec<u8> = (0..payload).map(|i| i as u8).collect();
        let mut frame = Vec::new();
        etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
            .tcp(40000, 5201, 1, 65535)
            .ack(7)
            .write(&mut frame, &data)
            .unwrap();
        let o = Offload {
            gso: GsoKind::TcpV4,
            ecn: false,
            segment_size: 1000,
            header_len: 54,
            checksum: ChecksumState::InBytes,
        };
        (frame, o)
    }

    #[test]
    fn a_lent_payload_is_read_in_place_until_the_window_closes() {
        let (frame, o) = super_frame(3000);
        let mut b = Batch::new();
        // SAFETY (test): `frame` outlives the window, closed below.
        unsafe { b.open_lending() };
        // SAFETY (test): as above; nothing writes `frame` meanwhile.
        assert_eq!(unsafe { b.lend_super(&frame, o) }, Ok(Some(true)));
        let sf = b.super_frame(0).expect("a super-frame");
        assert!(sf.is_lent());
        assert_eq!(sf.payload(), &frame[54..]);
        assert_eq!(sf.payload().as_ptr(), frame[54..].as_ptr(), "not copied");
        // The headers alone, the IP length counting only them, the IPv4
        // header checksum valid.
        let h = b.buf(0).frame();
        assert_eq!(h.len(), 54);
        let (ip, _) = etherparse::Ipv4Header::from_slice(&h[14..]).unwrap();
        assert_eq!(ip.total_len, 40);
        assert_eq!(ip.header_checksum, ip.calc_header_checksum());
        // Rejoined, the frame is the one received.
        let mut out = vec![0u8; crate::frame::superframe::SUPER_FRAME_MAX];
        let (n, _) = sf.rejoin_whole(b.buf(0).frame(), &mut out).unwrap();
        assert_eq!(&out[..n], &frame[..]);
        b.close_lending();
        assert!(!b.lending());
        let sf = b.supers[0].as_ref().unwrap();
        assert!(!sf.is_lent());
        assert!(sf.payload().is_empty(), "the view is gone");
    }

    #[test]
    fn clear_forgets_lent_payloads_and_copies_are_not_lent() {
        let (frame, o) = super_frame(2500);
        let mut b = Batch::new();
        // SAFETY (test): `frame` outlives the window (closed by `clear`).
        unsafe { b.open_lending() };
        // SAFETY (test): as above.
        assert_eq!(unsafe { b.lend_super(&frame, o) }, Ok(Some(true)));
        b.clear();
        assert!(b.supers[0].as_ref().unwrap().payload().is_empty());
        // A copied super-frame in the same slot keeps its own payload.
        assert_eq!(b.push_super(&frame, o), Ok(true));
        let sf = b.super_frame(0).unwrap();
        assert!(!sf.is_lent());
        assert_eq!(sf.payload(), &frame[54..]);
        b.close_lending();
        assert_eq!(b.super_frame(0).unwrap().payload(), &frame[54..]);
    }

    #[test]
    fn a_lent_frame_that_fits_one_segment_is_copied_whole() {
        let (frame, o) = super_frame(900);
        let mut b = Batch::new();
        // SAFETY (test): `frame` outlives the window.
        unsafe { b.open_lending() };
        // SAFETY (test): as above.
        assert_eq!(unsafe { b.lend_super(&frame, o) }, Ok(Some(false)));
        assert_eq!(b.super_mask(), 0);
        assert_eq!(b.buf(0).frame(), &frame[..]);
        b.close_lending();
        assert_eq!(b.buf(0).frame(), &frame[..]);
    }
}
