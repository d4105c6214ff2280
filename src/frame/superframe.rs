//! Super-frames in a batch: a TCP or UDP super-frame (a GSO frame of up to
//! 64 KiB that a host's stack handed over whole, with its `virtio_net_hdr`)
//! travels through the pipeline as its headers alone.
//!
//! Contract:
//! - A backend receives the whole super-frame into the [`SuperFrame`] of a
//!   batch slot ([`crate::frame::Batch::next_super`]) and calls
//!   [`SuperFrame::split`]: the headers (Ethernet through TCP or UDP) go
//!   into the slot's [`PacketBuf`] with the IP length field (and a UDP
//!   header's length) counting only them, and
//!   [`PacketBuf::tail`] says how many payload bytes stay here. Every stage
//!   then sees an ordinary, well-formed frame and touches only headers: a
//!   tag pushed or popped, DSCP marked, TTL or hop limit decremented once
//!   for the whole super-frame, labels pushed.
//! - On the way out, [`SuperFrame::rejoin`] gives the headers back their
//!   full IP length and the offload metadata follows them: the checksum
//!   start and header length move by the change in header length (tags,
//!   labels, MACs: every rewrite lies in front of the network header).
//!   [`SuperFrame::rejoin_whole`] writes the whole frame, for software
//!   segmentation ([`crate::wire::Segmenter`]).
//! - A backend whose receive memory outlives the batch's step may lend
//!   the payload instead ([`SuperFrame::split_lent`]): only the headers are
//!   copied, and the payload is read where the kernel wrote it, until the
//!   batch's lending window closes ([`crate::frame::Batch::open_lending`]).
//! - A super-frame whose payload fits in one segment is not kept as one:
//!   it becomes an ordinary frame with its checksum completed.
//! - Nothing here panics or allocates after [`SuperFrame::new`]; every
//!   failure is a [`GsoError`].

use crate::wire::gso::{self, ChecksumState, GsoError, GsoKind, Offload, Segmenter};
use crate::wire::packet::MAX_FRAME;
use crate::wire::PacketBuf;

/// The largest super-frame held: an IP packet of 65,535 bytes behind an
/// Ethernet header and three tags, rounded up.
pub const SUPER_FRAME_MAX: usize = 65_536 + 512;

/// Header bytes (Ethernet through TCP) a super-frame may have: what the
/// pipeline's buffer holds in front of its out-of-line payload.
pub const SUPER_HEADERS_MAX: usize = 256;

/// Payload bytes a backend lent from its receive ring instead of copying
/// them ([`SuperFrame::split_lent`]).
#[derive(Clone, Copy)]
struct Lent {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
}

// SAFETY: a `Lent` is a read-only view of bytes that its lender keeps
// valid and unchanged for the lending window (`SuperFrame::split_lent`);
// it is only dereferenced in that window, on whichever thread holds the
// batch, and nobody writes the bytes meanwhile.
unsafe impl Send for Lent {}

/// A super-frame's bytes and metadata, beside one batch slot.
pub struct SuperFrame {
    bytes: Box<[u8]>,
    /// The payload when a backend lent it (see [`SuperFrame::split_lent`]);
    /// else it is in `bytes`.
    lent: Option<Lent>,
    /// The whole frame's length as received.
    len: usize,
    /// Header bytes as received (where the payload starts).
    headers: usize,
    /// Offset of the network header as received.
    l3: usize,
    offload: Offload,
}

impl Default for SuperFrame {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for SuperFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SuperFrame")
            .field("len", &self.len)
            .field("headers", &self.headers)
            .field("offload", &self.offload)
            .finish()
    }
}

impl SuperFrame {
    /// Room for one super-frame (allocates [`SUPER_FRAME_MAX`] bytes once).
    pub fn new() -> SuperFrame {
        SuperFrame {
            bytes: vec![0; SUPER_FRAME_MAX].into_boxed_slice(),
            lent: None,
            len: 0,
            headers: 0,
            l3: 0,
            offload: Offload::NONE,
        }
    }

    /// Where a backend writes a received super-frame, whole.
    #[inline]
    pub fn receive_area(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// Take the `len` bytes written into [`SuperFrame::receive_area`],
    /// received with `offload` (its offsets counting those bytes), and put
    /// the frame into `buf`: a super-frame's headers, with its payload kept
    /// here (returns `true`), or, when the payload fits in one segment, the
    /// whole frame with its checksum completed (`false`). On an error
    /// `buf` holds nothing to forward.
    pub fn split(
        &mut self,
        len: usize,
        offload: Offload,
        buf: &mut PacketBuf,
    ) -> Result<bool, GsoError> {
        self.lent = None;
        buf.set_received(0);
        let frame = self.bytes.get(..len).ok_or(GsoError::Truncated {
            what: "super-frame buffer",
            needed: len,
            present: SUPER_FRAME_MAX,
        })?;
        let Some((headers, l3)) = split_headers(frame, offload, buf)? else {
            return Ok(false);
        };
        self.keep(len, headers, l3, offload);
        Ok(true)
    }

    /// [`SuperFrame::split`] of a super-frame that stays where the backend
    /// received it: the headers are copied into `buf`, the payload is only
    /// pointed at (a copy of up to 64 KiB saved per super-frame).
    ///
    /// # Safety
    /// `frame`'s bytes must stay valid and unchanged until
    /// [`SuperFrame::forget_lent`] (the batch's lending window,
    /// [`crate::frame::Batch::open_lending`]): a backend keeps the ring
    /// memory they are in from the kernel until then.
    pub unsafe fn split_lent(
        &mut self,
        frame: &[u8],
        offload: Offload,
        buf: &mut PacketBuf,
    ) -> Result<bool, GsoError> {
        self.lent = None;
        let Some((headers, l3)) = split_headers(frame, offload, buf)? else {
            return Ok(false);
        };
        let payload = &frame[headers..];
        self.lent = Some(Lent {
            ptr: std::ptr::NonNull::from(payload).cast(),
            len: payload.len(),
        });
        self.keep(frame.len(), headers, l3, offload);
        Ok(true)
    }

    /// Whether the payload is lent ([`SuperFrame::split_lent`]).
    #[inline]
    pub fn is_lent(&self) -> bool {
        self.lent.is_some()
    }

    /// Drop the view of a lent payload: the super-frame has none any more
    /// ([`SuperFrame::payload`] is empty) until it is split again.
    #[inline]
    pub fn forget_lent(&mut self) {
        if self.lent.take().is_some() {
            self.len = self.headers;
        }
    }

    fn keep(&mut self, len: usize, headers: usize, l3: usize, offload: Offload) {
        self.len = len;
        self.headers = headers;
        self.l3 = l3;
        self.offload = Offload {
            header_len: headers as u16,
            ..offload
        };
    }

    /// The payload, held here or lent.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        if let Some(l) = self.lent {
            // SAFETY: `split_lent`'s caller keeps these bytes valid and
            // unchanged until `forget_lent` clears `lent`.
            return unsafe { std::slice::from_raw_parts(l.ptr.as_ptr(), l.len) };
        }
        self.bytes.get(self.headers..self.len).unwrap_or(&[])
    }

    /// The offload metadata as received (header length set to the
    /// headers' length).
    #[inline]
    pub fn offload(&self) -> Offload {
        self.offload
    }

    /// Where the network header starts in `headers_len` bytes of headers
    /// as the pipeline left them: every rewrite lies in front of it, so the
    /// network and transport headers keep their received length.
    #[inline]
    pub fn network_offset(&self, headers_len: usize) -> usize {
        headers_len.saturating_sub(self.headers - self.l3)
    }

    /// The GSO kind (TCP over IPv4 or IPv6, or UDP).
    #[inline]
    pub fn kind(&self) -> GsoKind {
        self.offload.gso
    }

    /// Write `headers` (the headers [`SuperFrame::split`] gave, as the
    /// pipeline left them) into the front of `out` with the IP length
    /// counting the payload again. Returns their length and the offload
    /// metadata to send them and the payload with: checksum start and
    /// header length moved by the change in header length. Fails when the
    /// bytes in front of the moved network header are no longer its
    /// ethertype (the frame was encapsulated in MPLS, which Linux does not
    /// segment here) or `out` is too short.
    pub fn rejoin(&self, headers: &[u8], out: &mut [u8]) -> Result<(usize, Offload), GsoError> {
        let n = headers.len();
        let delta = n as isize - self.headers as isize;
        let l3 = Some(self.network_offset(n))
            .filter(|&v| v >= 2 && n >= self.headers - self.l3)
            .ok_or(GsoError::ShiftOutOfRange {
                value: self.l3 as u16,
                delta,
            })?;
        let ethertype = u16::from_be_bytes([headers[l3 - 2], headers[l3 - 1]]);
        let (v4, v6) = (
            crate::wire::ethernet::ethertype::IPV4,
            crate::wire::ethernet::ethertype::IPV6,
        );
        let fits = match self.offload.gso {
            GsoKind::TcpV4 => ethertype == v4,
            GsoKind::TcpV6 => ethertype == v6,
            GsoKind::Udp => ethertype == v4 || ethertype == v6,
            GsoKind::None => false,
        };
        if !fits {
            return Err(GsoError::KindMismatch {
                kind: self.offload.gso,
                ethertype,
            });
        }
        let present = out.len();
        let dst = out.get_mut(..n).ok_or(GsoError::Truncated {
            what: "header buffer",
            needed: n,
            present,
        })?;
        dst.copy_from_slice(headers);
        gso::set_ip_length(dst, l3, self.offload.gso, self.payload().len())?;
        let mut offload = self.offload;
        offload.shift(delta)?;
        offload.header_len = n as u16;
        if let ChecksumState::Partial { start, .. } = offload.checksum {
            if start as usize >= n {
                return Err(GsoError::ChecksumOutOfFrame {
                    start: start as usize,
                    offset: 16,
                    len: n,
                });
            }
        }
        Ok((n, offload))
    }

    /// [`SuperFrame::rejoin`], then the payload after the headers: the whole
    /// super-frame in `out`, for software segmentation. Returns its length
    /// and metadata.
    pub fn rejoin_whole(
        &self,
        headers: &[u8],
        out: &mut [u8],
    ) -> Result<(usize, Offload), GsoError> {
        let (n, offload) = self.rejoin(headers, out)?;
        let payload = self.payload();
        let total = n + payload.len();
        let present = out.len();
        let dst = out.get_mut(n..total).ok_or(GsoError::Truncated {
            what: "super-frame buffer",
            needed: total,
            present,
        })?;
        dst.copy_from_slice(payload);
        Ok((total, offload))
    }
}

/// The split shared by [`SuperFrame::split`] and
/// [`SuperFrame::split_lent`]: the headers of super-frame `frame` into
/// `buf` with the IP length counting only them and the payload's length as
/// `buf`'s tail; returns the header length and the network header's
/// offset. `None`: the payload fits one segment, and `buf` holds the whole
/// frame with its checksum completed.
fn split_headers(
    frame: &[u8],
    offload: Offload,
    buf: &mut PacketBuf,
) -> Result<Option<(usize, usize)>, GsoError> {
    buf.set_received(0);
    let mut seg = Segmenter::new(frame, &offload, None)?;
    if seg.segments() == 1 {
        // Not a super-frame after all (or not one any more): whole,
        // checksum completed, if it fits a buffer.
        let area = &mut buf.receive_area()[..MAX_FRAME];
        let n = seg.write_next(area)?.unwrap_or(0);
        buf.set_received(n);
        return Ok(None);
    }
    let headers = seg.header_len();
    if headers > SUPER_HEADERS_MAX {
        return Err(GsoError::Truncated {
            what: "super-frame headers (256 bytes at most)",
            needed: headers,
            present: SUPER_HEADERS_MAX,
        });
    }
    let l3 = seg.network_offset();
    if !buf.load(&frame[..headers]) {
        return Err(GsoError::Truncated {
            what: "packet buffer",
            needed: headers,
            present: MAX_FRAME,
        });
    }
    gso::set_ip_length(buf.frame_mut(), l3, offload.gso, 0)?;
    buf.set_tail(frame.len() - headers);
    Ok(Some((headers, l3)))
}
