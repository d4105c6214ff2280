//! `PacketBuf`: a frame in a fixed buffer with headroom, so tags can be
//! pushed and popped in place.
//!
//! A push or pop moves only the 12 bytes of MAC addresses (by 4 bytes per
//! tag) and writes the new tag bytes; the payload never moves. Every
//! operation checks its bounds and reports failure instead of panicking.

use super::ethernet::MACS_LEN;

/// Bytes kept free in front of a received frame for pushed tags.
pub const HEADROOM: usize = 64;
/// Largest frame a `PacketBuf` holds (tags included).
pub const MAX_FRAME: usize = 2048;
/// Total buffer size.
pub const BUF_LEN: usize = HEADROOM + MAX_FRAME;

/// The bytes of a [`PacketBuf`], aligned to a cache line: with the
/// headroom a whole number of lines, a received frame starts on a line,
/// so a minimum-size frame is one line, not two, for every copy and read.
#[derive(Clone)]
#[repr(C, align(64))]
struct Storage([u8; BUF_LEN]);

const _: () = assert!(HEADROOM % 64 == 0, "frames start on a cache line");

/// A frame in an owned, fixed-size buffer with headroom.
pub struct PacketBuf {
    buf: Box<Storage>,
    head: u16,
    len: u16,
    /// Payload bytes of a super-frame held out of line (see
    /// [`PacketBuf::tail`]); 0 for an ordinary frame.
    tail: u32,
}

impl Default for PacketBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl Clone for PacketBuf {
    fn clone(&self) -> Self {
        PacketBuf {
            buf: self.buf.clone(),
            head: self.head,
            len: self.len,
            tail: self.tail,
        }
    }
}

impl core::fmt::Debug for PacketBuf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "PacketBuf({} bytes)", self.len)
    }
}

impl PacketBuf {
    /// An empty buffer (allocates once; reuse it).
    pub fn new() -> PacketBuf {
        PacketBuf {
            buf: Box::new(Storage([0; BUF_LEN])),
            head: HEADROOM as u16,
            len: 0,
            tail: 0,
        }
    }

    /// Copy `frame` in after the headroom. `false` (buffer emptied) if it
    /// is longer than [`MAX_FRAME`].
    #[inline]
    pub fn load(&mut self, frame: &[u8]) -> bool {
        self.head = HEADROOM as u16;
        self.tail = 0;
        match self.buf.0.get_mut(HEADROOM..HEADROOM + frame.len()) {
            Some(dst) => {
                dst.copy_from_slice(frame);
                self.len = frame.len() as u16;
                true
            }
            None => {
                self.len = 0;
                false
            }
        }
    }

    /// Space after the headroom for a backend to receive into directly;
    /// call [`PacketBuf::set_received`] with the length written.
    #[inline]
    pub fn receive_area(&mut self) -> &mut [u8] {
        self.head = HEADROOM as u16;
        self.len = 0;
        self.tail = 0;
        &mut self.buf.0[HEADROOM..]
    }

    /// Declare that `len` bytes were written into [`PacketBuf::receive_area`].
    #[inline]
    pub fn set_received(&mut self, len: usize) {
        self.head = HEADROOM as u16;
        self.tail = 0;
        self.len = len.min(MAX_FRAME) as u16;
    }

    /// The frame bytes.
    #[inline(always)]
    pub fn frame(&self) -> &[u8] {
        let h = self.head as usize;
        &self.buf.0[h..h + self.len as usize]
    }

    /// The frame bytes, writable.
    #[inline(always)]
    pub fn frame_mut(&mut self) -> &mut [u8] {
        let h = self.head as usize;
        &mut self.buf.0[h..h + self.len as usize]
    }

    /// Frame length.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True if no frame is loaded.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes available from the frame's start to the end of the buffer.
    #[inline]
    pub fn capacity_from_head(&self) -> usize {
        BUF_LEN - self.head as usize
    }

    /// Set the frame length (growing exposes whatever bytes the buffer
    /// holds there); clamped to [`PacketBuf::capacity_from_head`]. The
    /// buffer then holds an ordinary frame (a reply built in place), never
    /// the headers of a super-frame.
    #[inline]
    pub fn set_len(&mut self, len: usize) {
        self.len = len.min(self.capacity_from_head()) as u16;
        self.tail = 0;
    }

    /// Bytes of this frame held out of line: for the headers of a TCP
    /// super-frame ([`crate::frame::SuperFrame`]), its payload; 0 for an
    /// ordinary frame. The buffer then holds the super-frame's headers
    /// alone, with the IP length field counting only them, so every stage
    /// sees a well-formed frame and touches only headers. Loading,
    /// receiving or sizing a new frame clears it.
    #[inline(always)]
    pub fn tail(&self) -> usize {
        self.tail as usize
    }

    /// Declare the frame the headers of a super-frame whose payload of
    /// `tail` bytes is held out of line (see [`PacketBuf::tail`]).
    #[inline]
    pub fn set_tail(&mut self, tail: usize) {
        self.tail = tail.min(u32::MAX as usize) as u32;
    }

    /// The frame's length on the wire: its bytes here and its tail.
    #[inline(always)]
    pub fn wire_len(&self) -> usize {
        self.len as usize + self.tail as usize
    }

    /// Free bytes in front of the frame.
    #[inline(always)]
    pub fn headroom(&self) -> usize {
        self.head as usize
    }

    /// Set the destination and source MACs. `false` (frame unchanged) if
    /// the frame is shorter than its two MACs.
    #[inline(always)]
    pub fn set_macs(&mut self, dst: &[u8; 6], src: &[u8; 6]) -> bool {
        match self.frame_mut().first_chunk_mut::<MACS_LEN>() {
            Some(m) => {
                let (d, s) = m.split_at_mut(6);
                d.copy_from_slice(dst);
                s.copy_from_slice(src);
                true
            }
            None => false,
        }
    }

    /// Replace the first `pop` tags after the MACs with `push` (whole tags,
    /// 4 bytes each, outermost first). Moves the 12 MAC bytes by the
    /// difference; the payload stays where it is. `false` (frame unchanged)
    /// if the frame is shorter than its MACs and `pop` tags, `push` is not
    /// whole tags or more than three, or the headroom is exhausted.
    #[inline]
    pub fn rewrite_tags(&mut self, pop: usize, push: &[u8]) -> bool {
        if push.len() % 4 != 0 || push.len() > 12 {
            return false;
        }
        let mut tags = [0u8; 12];
        tags[..push.len()].copy_from_slice(push);
        self.rewrite_tags_fixed(pop, &tags, push.len() / 4)
    }

    /// [`PacketBuf::rewrite_tags`] with the tags to push as the first
    /// `count` (≤ 3) tags of a fixed 12-byte array.
    #[inline(always)]
    pub fn rewrite_tags_fixed(&mut self, pop: usize, tags: &[u8; 12], count: usize) -> bool {
        let [a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3] = *tags;
        let words = [
            u32::from_be_bytes([a0, a1, a2, a3]),
            u32::from_be_bytes([b0, b1, b2, b3]),
            u32::from_be_bytes([c0, c1, c2, c3]),
        ];
        self.rewrite_tags_words(pop, words, count)
    }

    /// [`PacketBuf::rewrite_tags`] with the tags to push as words
    /// (TPID << 16 | TCI, the [`crate::wire::TagStack`] layout), the first
    /// `count` (≤ 3) of them used. Every move is of a fixed size, so it
    /// compiles to a few register loads and stores.
    #[inline(always)]
    pub fn rewrite_tags_words(&mut self, pop: usize, tags: [u32; 3], count: usize) -> bool {
        let head = self.head as usize;
        let len = self.len as usize;
        let removed = pop * 4;
        let added = count * 4;
        if count > 3 || len < MACS_LEN + removed {
            return false;
        }
        // new_head = head + removed - added, which must stay ≥ 0.
        let Some(new_head) = (head + removed).checked_sub(added) else {
            return false;
        };
        // In bounds: head + len ≤ BUF_LEN and len ≥ 12 + removed, so the
        // new MACs and tags end at new_head + 12 + added ≤ head + len.
        let Some(macs) = self
            .buf
            .0
            .get(head..)
            .and_then(|b| b.first_chunk::<MACS_LEN>())
        else {
            return false;
        };
        let macs = *macs;
        let Some(dst) = self.buf.0.get_mut(new_head..new_head + MACS_LEN + added) else {
            return false;
        };
        let (mac_dst, tag_dst) = dst.split_at_mut(MACS_LEN);
        mac_dst.copy_from_slice(&macs);
        let two = (((tags[0] as u64) << 32) | tags[1] as u64).to_be_bytes();
        match tag_dst.len() {
            4 => tag_dst.copy_from_slice(&tags[0].to_be_bytes()),
            8 => tag_dst.copy_from_slice(&two),
            12 => {
                let (ab, c) = tag_dst.split_at_mut(8);
                ab.copy_from_slice(&two);
                c.copy_from_slice(&tags[2].to_be_bytes());
            }
            _ => {}
        }
        self.head = new_head as u16;
        self.len = (len - removed + added) as u16;
        true
    }

    /// Replace the `remove` bytes right after the MACs with `insert`
    /// (at most [`MAX_SPLICE`] bytes): the MPLS encapsulation and
    /// decapsulation of routed packets (tags, ethertype and label stack
    /// between the MACs and the IP header). Moves the 12 MAC bytes by the
    /// difference; the payload stays where it is. `false` (frame
    /// unchanged) if the frame is shorter than its MACs and `remove`
    /// bytes, `insert` is too long, or the headroom is exhausted.
    pub fn splice_after_macs(&mut self, remove: usize, insert: &[u8]) -> bool {
        let head = self.head as usize;
        let len = self.len as usize;
        if insert.len() > MAX_SPLICE || len < MACS_LEN + remove {
            return false;
        }
        let Some(new_head) = (head + remove).checked_sub(insert.len()) else {
            return false;
        };
        let Some(macs) = self
            .buf
            .0
            .get(head..)
            .and_then(|b| b.first_chunk::<MACS_LEN>())
        else {
            return false;
        };
        let macs = *macs;
        // In bounds: the new MACs and inserted bytes end at
        // head + 12 + remove ≤ head + len ≤ BUF_LEN.
        let Some(dst) = self
            .buf
            .0
            .get_mut(new_head..new_head + MACS_LEN + insert.len())
        else {
            return false;
        };
        let (mac_dst, ins_dst) = dst.split_at_mut(MACS_LEN);
        mac_dst.copy_from_slice(&macs);
        ins_dst.copy_from_slice(insert);
        self.head = new_head as u16;
        self.len = (len - remove + insert.len()) as u16;
        true
    }

    /// [`PacketBuf::splice_after_macs`] with `insert` one ethertype: the
    /// `remove` bytes after the MACs (tags, ethertype, label stack) give
    /// way to `ethertype`. Every move is of a fixed size (the hot path of
    /// an L3VPN packet leaving its labels).
    #[inline]
    pub fn replace_after_macs_with_ethertype(&mut self, remove: usize, ethertype: u16) -> bool {
        let head = self.head as usize;
        let len = self.len as usize;
        if remove < 2 || len < MACS_LEN + remove {
            return false;
        }
        let new_head = head + remove - 2;
        let Some(macs) = self
            .buf
            .0
            .get(head..)
            .and_then(|b| b.first_chunk::<MACS_LEN>())
        else {
            return false;
        };
        let macs = *macs;
        // In bounds: new_head + 14 = head + 12 + remove ≤ head + len.
        let Some(dst) = self
            .buf
            .0
            .get_mut(new_head..)
            .and_then(|b| b.first_chunk_mut::<{ MACS_LEN + 2 }>())
        else {
            return false;
        };
        let (mac_dst, et_dst) = dst.split_at_mut(MACS_LEN);
        mac_dst.copy_from_slice(&macs);
        et_dst.copy_from_slice(&ethertype.to_be_bytes());
        self.head = new_head as u16;
        self.len = (len - remove + 2) as u16;
        true
    }

    /// Drop the first `n` bytes of the frame (an outer header: the
    /// pseudowire's Ethernet header, labels and control word). `false`
    /// (frame unchanged) if the frame is shorter than `n`.
    pub fn strip_front(&mut self, n: usize) -> bool {
        if n > self.len as usize {
            return false;
        }
        self.head += n as u16;
        self.len -= n as u16;
        true
    }

    /// Write `header` in front of the frame, into the headroom (the
    /// pseudowire's outer Ethernet header, labels and control word).
    /// `false` (frame unchanged) if the headroom is too small.
    pub fn prepend(&mut self, header: &[u8]) -> bool {
        let head = self.head as usize;
        let Some(new_head) = head.checked_sub(header.len()) else {
            return false;
        };
        let Some(dst) = self.buf.0.get_mut(new_head..head) else {
            return false;
        };
        dst.copy_from_slice(header);
        self.head = new_head as u16;
        self.len += header.len() as u16;
        true
    }
}

/// Most bytes [`PacketBuf::splice_after_macs`] inserts: three tags, an
/// ethertype and four label stack entries.
pub const MAX_SPLICE: usize = 12 + 2 + 16;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn push_then_pop() {
        let frame: Vec<u8> = (0..60u8).collect();
        let mut p = PacketBuf::new();
        assert!(p.load(&frame));
        assert!(p.rewrite_tags(0, &[0x81, 0x00, 0x00, 0x64, 0x81, 0x00, 0x00, 0xc8]));
        assert_eq!(p.len(), 68);
        assert_eq!(&p.frame()[..12], &frame[..12]);
        assert_eq!(
            &p.frame()[12..20],
            &[0x81, 0x00, 0x00, 0x64, 0x81, 0x00, 0x00, 0xc8]
        );
        assert_eq!(&p.frame()[20..], &frame[12..]);
        assert!(p.rewrite_tags(2, &[]));
        assert_eq!(p.frame(), &frame[..]);
        assert!(!p.rewrite_tags(0, &[1, 2, 3]));
        assert!(!PacketBuf::new().rewrite_tags(1, &[]));
    }

    #[test]
    fn headroom_is_bounded() {
        let mut p = PacketBuf::new();
        assert!(p.load(&[0u8; 64]));
        let tags = [0u8; 12];
        for _ in 0..HEADROOM / 12 {
            assert!(p.rewrite_tags(0, &tags));
        }
        // 60 of 64 headroom bytes used: one more 12-byte push does not fit.
        assert!(!p.rewrite_tags(0, &tags));
        assert!(!p.load(&vec![0u8; MAX_FRAME + 1]));
        assert!(p.is_empty());
    }

    #[test]
    fn splice_strip_and_prepend() {
        let frame: Vec<u8> = (0..60u8).collect();
        let mut p = PacketBuf::new();
        assert!(p.load(&frame));
        // Ethertype 12..14 becomes MPLS with two labels.
        assert!(p.splice_after_macs(2, &[0x88, 0x47, 1, 2, 3, 4, 5, 6, 7, 8]));
        assert_eq!(p.len(), 68);
        assert_eq!(&p.frame()[..12], &frame[..12]);
        assert_eq!(&p.frame()[12..22], &[0x88, 0x47, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&p.frame()[22..], &frame[14..]);
        let mut q = p.clone();
        assert!(p.splice_after_macs(10, &[12, 13]));
        assert_eq!(p.frame(), &frame[..]);
        assert!(q.replace_after_macs_with_ethertype(10, 0x0c0d));
        assert_eq!(q.frame(), &frame[..]);
        assert!(!q.replace_after_macs_with_ethertype(1, 0));
        assert!(!q.replace_after_macs_with_ethertype(49, 0));
        assert!(!p.splice_after_macs(49, &[]), "past the end");
        assert!(!p.splice_after_macs(0, &[0; MAX_SPLICE + 1]));
        assert!(p.prepend(&[9; 22]));
        assert_eq!(p.len(), 82);
        assert_eq!(&p.frame()[22..], &frame[..]);
        assert!(!p.prepend(&[0; HEADROOM]), "headroom used");
        assert_eq!(p.len(), 82);
        assert!(p.strip_front(22));
        assert_eq!(p.frame(), &frame[..]);
        assert!(!p.strip_front(61));
        assert!(p.strip_front(60));
        assert!(p.is_empty());
    }

    proptest! {
        #[test]
        fn splice_round_trips(frame in proptest::collection::vec(any::<u8>(), 0..200), remove in 0usize..40, insert in proptest::collection::vec(any::<u8>(), 0..=MAX_SPLICE)) {
            let mut p = PacketBuf::new();
            p.load(&frame);
            let before = p.frame().to_vec();
            if p.splice_after_macs(remove, &insert) {
                let removed = before[12..12 + remove].to_vec();
                prop_assert_eq!(&p.frame()[12..12 + insert.len()], &insert[..]);
                prop_assert_eq!(&p.frame()[12 + insert.len()..], &before[12 + remove..]);
                if removed.len() <= MAX_SPLICE {
                    prop_assert!(p.splice_after_macs(insert.len(), &removed));
                    prop_assert_eq!(p.frame(), &before[..]);
                }
            } else {
                prop_assert_eq!(p.frame(), &before[..]);
            }
        }

        #[test]
        fn rewrite_round_trips(frame in proptest::collection::vec(any::<u8>(), 0..200), pop in 0usize..4, push in proptest::collection::vec(any::<u8>(), 0..4).prop_map(|v| v.len())) {
            let mut p = PacketBuf::new();
            p.load(&frame);
            let push_bytes = vec![0xabu8; push * 4];
            let before = p.frame().to_vec();
            if p.rewrite_tags(pop, &push_bytes) {
                let popped = before[12..12 + pop * 4].to_vec();
                prop_assert_eq!(&p.frame()[12..12 + push * 4], &push_bytes[..]);
                prop_assert!(p.rewrite_tags(push, &popped));
                prop_assert_eq!(p.frame(), &before[..]);
            } else {
                prop_assert_eq!(p.frame(), &before[..]);
            }
        }
    }
}
