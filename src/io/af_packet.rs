//! The AF_PACKET backend: a TPACKET_V3 receive ring and a TPACKET_V2
//! transmit ring on one Linux interface — the fast path.
//!
//! Contract:
//! - **Receive** costs no system call: frames are copied out of ring blocks
//!   the kernel has handed to user space, and a block goes back to the
//!   kernel once every frame in it is consumed. The worker sleeps in
//!   `poll`/`epoll` on the socket only when every port is idle.
//! - **The outer VLAN tag is put back.** AF_PACKET always strips the outer
//!   tag on receive (veth, TAP) and reports it in `tp_vlan_tci` with
//!   `TP_STATUS_VLAN_VALID`; its TPID comes from `tp_vlan_tpid` when
//!   `TP_STATUS_VLAN_TPID_VALID` is set, else 0x8100. The 4 tag bytes are
//!   re-inserted after the MAC addresses as the frame is copied into
//!   [`PacketBuf::receive_area`](crate::wire::PacketBuf::receive_area), so
//!   the pipeline sees the frame as it was on the wire.
//! - **Transmit** goes through a TPACKET_V2 `PACKET_TX_RING` on a second,
//!   transmit-only socket that no epoll watches (a watched socket pays a
//!   locked wake-up of its waiters for every sent frame the kernel frees):
//!   frames are copied into ring slots in order and one zero-length `send`
//!   per batch and egress port hands them to the kernel. The frames
//!   accepted are a prefix of the frames forwarded to the port, in order:
//!   the first frame that finds no free slot (ring full) or is longer than
//!   the interface MTU allows stops the batch, and the worker counts the
//!   rest as `tx-full`. A frame the device refuses at the kick (busy)
//!   stays in its slot and goes out at the next kick, which the worker
//!   also makes before it sleeps ([`Port::flush`]). So do frames queued
//!   while the interface goes down, before the link monitor marks the
//!   port down (the pipeline then stops forwarding to it): they leave
//!   when it is back up, at most one ring's worth.
//! - Each slot carries a `virtio_net_hdr` (`PACKET_VNET_HDR`) that asks for
//!   no offload and whose `hdr_len` spans the frame: the kernel then
//!   copies the whole frame into the skb. Without it the kernel attaches
//!   the ring pages as fragments, and a veth copies those again into
//!   fresh pages before its peer sees the frame.
//! - **Super-frames.** The receive socket has `PACKET_VNET_HDR` too: each
//!   frame comes with its `virtio_net_hdr`. A host's TCP super-frame (GSO,
//!   up to 64 KiB: the ring's 256 KiB blocks hold it whole) goes into the
//!   batch slot's [`SuperFrame`]: its headers to the pipeline, its payload
//!   kept aside, its segment size and partial checksum as metadata. While
//!   the batch's lending window is open (the driver's step,
//!   [`Batch::open_lending`]) the payload is not copied but lent: the
//!   super-frame's block stays user space's until the port's next receive
//!   ([`RxRing::keep`], [`RxRing::release_kept`]), and the payload leaves
//!   from the ring. A trunk's super-frame, whose outer tag the kernel
//!   stripped, gets the tag back in place in the ring, in the room the
//!   kernel leaves in front of the frame ([`RxRing::restore_tag_in_place`]).
//!   The ring never keeps all its blocks: a super-frame that would leave the
//!   kernel none is copied. An
//!   ordinary frame whose checksum the sender left to offload
//!   (`NEEDS_CSUM`) gets it completed as it is copied in. On transmit a
//!   super-frame leaves whole, with its `virtio_net_hdr`, by a third socket
//!   that goes through the qdisc (the kernel refuses a GSO frame on a
//!   socket with `PACKET_QDISC_BYPASS`): the kernel, or the veth's peer,
//!   takes it from there. When its segments would not fit the interface
//!   MTU it is cut here, to the MTU, into the TX ring. Frames before it
//!   are kicked out of the ring first, so the order holds.
//! - The receive socket ignores outgoing frames (`PACKET_IGNORE_OUTGOING`),
//!   both sockets bypass the qdisc (`PACKET_QDISC_BYPASS`); the receive
//!   socket puts the interface in
//!   promiscuous mode (`PACKET_ADD_MEMBERSHIP`, `PACKET_MR_PROMISC`), and
//!   may join a hash fanout group so that several workers share a port:
//!   [`Fanout::New`] has the kernel pick a group id no other socket of the
//!   namespace uses (`PACKET_FANOUT_FLAG_UNIQUEID`), read back with
//!   [`AfPacketPort::fanout_group`], and the other queues of the port
//!   [`Fanout::Join`] it. A group belongs to one interface: the queues of an
//!   interface that was deleted and created again need a new group, as the
//!   old one lives on while a socket of it is open.
//! - Kernel drops (ring full) are read from `PACKET_STATISTICS`; frames
//!   longer than a buffer or truncated by the ring are counted as oversize.
//!
//! Unsafe code is limited to [`RxRing`] and [`TxRing`] (the shared ring
//! memory), the two system calls below and the lending of payloads
//! ([`Batch::lend_super`]); the block and frame parsing is safe code over
//! byte slices, unit-tested with synthetic blocks.

use super::sys::{self, Mmap};
use super::{IoStats, Port};
use crate::frame::{Batch, Outgoing, SuperFrame};
use crate::wire::ethernet::MACS_LEN;
use crate::wire::gso::{
    self, vnet_flags, vnet_gso, ChecksumState, Offload, Segmenter, VirtioNetHdr,
};
use crate::wire::packet::MAX_FRAME;
use crate::wire::vlan::TAG_LEN;
use crate::wire::{Tpid, VlanTag};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};

/// `TPACKET3_HDRLEN`: a frame's header and the `sockaddr_ll` after it
/// (the kernel puts the frame's bytes behind them).
const TPACKET3_HDRLEN: usize = field::FRAME_HDR_LEN + std::mem::size_of::<libc::sockaddr_ll>();

/// `TP_STATUS_KERNEL`: the block belongs to the kernel.
const TP_STATUS_KERNEL: u32 = 0;
/// `TP_STATUS_USER`: the block is ready for user space.
const TP_STATUS_USER: u32 = 1;
/// `TP_STATUS_VLAN_VALID`: `tp_vlan_tci` holds the stripped outer tag.
pub const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
/// `TP_STATUS_VLAN_TPID_VALID`: `tp_vlan_tpid` holds its TPID.
pub const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;

/// Byte offsets in a TPACKET_V3 block (`struct tpacket_block_desc` with
/// its `tpacket_hdr_v1`) and frame header (`struct tpacket3_hdr`).
mod field {
    pub const BLOCK_STATUS: usize = 8;
    pub const NUM_PKTS: usize = 12;
    pub const FIRST_PKT: usize = 16;
    pub const BLOCK_HDR_LEN: usize = 48;

    pub const NEXT_OFFSET: usize = 0;
    pub const SNAPLEN: usize = 12;
    pub const LEN: usize = 16;
    pub const STATUS: usize = 20;
    pub const MAC: usize = 24;
    pub const VLAN_TCI: usize = 32;
    pub const VLAN_TPID: usize = 36;
    pub const FRAME_HDR_LEN: usize = 48;
}

/// Whether and how the receive socket joins a `PACKET_FANOUT_HASH` group
/// (several workers sharing a port, each with its own socket).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fanout {
    /// No fanout: the socket gets every frame.
    #[default]
    None,
    /// Create a group under an id the kernel picks, unique in the network
    /// namespace ([`AfPacketPort::fanout_group`] tells it).
    New,
    /// Join the group with this id (made by [`Fanout::New`] on the same
    /// interface).
    Join(u16),
}

/// How a ring and socket are set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AfPacketOptions {
    /// Bytes per ring block (a power of two, multiple of the page size).
    pub block_size: usize,
    /// Number of blocks.
    pub block_count: usize,
    /// Milliseconds after which the kernel hands over a partly filled block
    /// (bounds the latency of a quiet port).
    pub retire_ms: u32,
    /// Fanout group of the receive socket (several workers on one port).
    pub fanout: Fanout,
    /// The smallest interface MTU the configuration needs (IP MTU plus the
    /// tag bytes beyond the one tag the kernel allows over the MTU).
    pub required_mtu: u32,
    /// Slots of the transmit ring (2 KiB each; rounded up to a multiple
    /// of 32).
    pub tx_slots: usize,
}

impl Default for AfPacketOptions {
    fn default() -> Self {
        AfPacketOptions {
            block_size: 1 << 18,
            block_count: 64,
            retire_ms: 1,
            fanout: Fanout::None,
            required_mtu: 0,
            tx_slots: 512,
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let w = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    let w = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_ne_bytes([w[0], w[1]]))
}

/// The header of a ring block the kernel handed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockHeader {
    /// Frames in the block.
    pub num_pkts: u32,
    /// Offset of the first frame header from the block start.
    pub first: usize,
}

impl BlockHeader {
    /// Read the header of `block`; `None` if it is too short.
    pub fn parse(block: &[u8]) -> Option<BlockHeader> {
        if block.len() < field::BLOCK_HDR_LEN {
            return None;
        }
        Some(BlockHeader {
            num_pkts: u32_at(block, field::NUM_PKTS)?,
            first: u32_at(block, field::FIRST_PKT)? as usize,
        })
    }
}

/// One received frame in a block, as the kernel describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxFrame<'a> {
    /// The captured bytes (outer tag stripped by the kernel).
    pub data: &'a [u8],
    /// Length on the wire (without the stripped tag); more than
    /// `data.len()` if the ring truncated it.
    pub wire_len: usize,
    /// `tp_status` bits.
    pub status: u32,
    /// `tp_vlan_tci`.
    pub vlan_tci: u16,
    /// `tp_vlan_tpid`.
    pub vlan_tpid: u16,
    /// Offset of the next frame header from this one (0: last).
    pub next: usize,
    /// Offset of the frame's first byte in the block (the
    /// `virtio_net_hdr` lies in the 10 bytes before it).
    pub start: usize,
}

impl RxFrame<'_> {
    /// Read the frame header at `at` in `block`; `None` if any offset or
    /// length points outside the block.
    pub fn parse(block: &[u8], at: usize) -> Option<RxFrame<'_>> {
        let hdr = block.get(at..at.checked_add(field::FRAME_HDR_LEN)?)?;
        let snap = u32_at(hdr, field::SNAPLEN)? as usize;
        let mac = u16_at(hdr, field::MAC)? as usize;
        let start = at.checked_add(mac)?;
        Some(RxFrame {
            data: block.get(start..start.checked_add(snap)?)?,
            wire_len: u32_at(hdr, field::LEN)? as usize,
            status: u32_at(hdr, field::STATUS)?,
            vlan_tci: u32_at(hdr, field::VLAN_TCI)? as u16,
            vlan_tpid: u16_at(hdr, field::VLAN_TPID)?,
            next: u32_at(hdr, field::NEXT_OFFSET)? as usize,
            start,
        })
    }

    /// The `virtio_net_hdr` the kernel wrote in front of the frame (a
    /// socket with `PACKET_VNET_HDR`); `None` if it lies outside `block`
    /// or is malformed.
    pub fn vnet_header(&self, block: &[u8]) -> Option<VirtioNetHdr> {
        let at = self.start.checked_sub(VirtioNetHdr::LEN)?;
        VirtioNetHdr::parse(block.get(at..self.start)?).ok()
    }

    /// The stripped outer tag as (TPID, TCI), if the kernel reported one.
    pub fn outer_tag(&self) -> Option<(u16, u16)> {
        if self.status & TP_STATUS_VLAN_VALID == 0 {
            return None;
        }
        let tpid = if self.status & TP_STATUS_VLAN_TPID_VALID != 0 {
            self.vlan_tpid
        } else {
            0x8100
        };
        Some((tpid, self.vlan_tci))
    }
}

/// Copy `frame` into `dst`, inserting the 4 bytes of `tag` (TPID, TCI)
/// after the two MAC addresses. Returns the length written, or `None` if
/// `dst` is too small or the frame is shorter than its MACs. The tag is
/// written by `wire`'s [`VlanTag::emit`]; the TCI goes back bit for bit.
pub fn restore_tag(dst: &mut [u8], frame: &[u8], tag: Option<(u16, u16)>) -> Option<usize> {
    match tag {
        None => {
            dst.get_mut(..frame.len())?.copy_from_slice(frame);
            Some(frame.len())
        }
        Some((tpid, tci)) => {
            let (macs, rest) = frame.split_first_chunk::<MACS_LEN>()?;
            let total = frame.len().checked_add(TAG_LEN)?;
            let out = dst.get_mut(..total)?;
            let (out_macs, out) = out.split_first_chunk_mut::<MACS_LEN>()?;
            let (out_tag, out_rest) = out.split_first_chunk_mut::<TAG_LEN>()?;
            out_macs.copy_from_slice(macs);
            VlanTag::from_tci(Tpid(tpid), tci).emit(out_tag).ok()?;
            // Same length: total − MACS_LEN − TAG_LEN = frame.len() − MACS_LEN.
            out_rest.copy_from_slice(rest);
            Some(total)
        }
    }
}

/// A TPACKET_V3 receive ring mapped from the socket.
pub struct RxRing {
    map: Mmap,
    block_size: usize,
    blocks: usize,
    current: usize,
    /// Blocks consumed but kept from the kernel ([`RxRing::keep`]), oldest
    /// first; at most `blocks - 1`.
    kept: Vec<usize>,
}

impl RxRing {
    /// The ring over `map`: `blocks` blocks of `block_size` bytes.
    /// `None` if they do not fit in the mapping or a block is smaller
    /// than its header or not 8-byte aligned.
    pub fn new(map: Mmap, block_size: usize, blocks: usize) -> Option<RxRing> {
        if blocks == 0
            || block_size < field::BLOCK_HDR_LEN
            || block_size % 8 != 0
            || block_size.checked_mul(blocks)? > map.len()
            || (map.as_ptr() as usize) % 8 != 0
        {
            return None;
        }
        Some(RxRing {
            map,
            block_size,
            blocks,
            current: 0,
            kept: Vec::with_capacity(blocks),
        })
    }

    fn status(&self, block: usize) -> &AtomicU32 {
        let at = (block % self.blocks) * self.block_size + field::BLOCK_STATUS;
        // SAFETY: `at + 4 <= blocks * block_size <= map.len()` (checked in
        // `new`), and `at` is 4-byte aligned (8-aligned base and block
        // size, offset 8). The kernel accesses this word concurrently, which
        // is why it is only ever read and written as an atomic.
        unsafe { &*(self.map.as_ptr().add(at) as *const AtomicU32) }
    }

    /// The current block if the kernel has handed it to user space (and
    /// it is not a kept block the ring came round to again).
    pub fn user_block(&self) -> Option<&[u8]> {
        if self.status(self.current).load(Ordering::Acquire) & TP_STATUS_USER == 0
            || self.kept.contains(&self.current)
        {
            return None;
        }
        let at = self.current * self.block_size;
        // SAFETY: the range is inside the mapping (checked in `new`). The
        // block is owned by user space until `release` stores
        // TP_STATUS_KERNEL (the Acquire load above orders our reads after
        // the kernel's writes), and `release` takes `&mut self`, so no
        // slice from here is alive when the block goes back to the kernel.
        Some(unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(at), self.block_size) })
    }

    /// Hand the current block back to the kernel and move to the next.
    pub fn release(&mut self) {
        self.status(self.current)
            .store(TP_STATUS_KERNEL, Ordering::Release);
        self.current = (self.current + 1) % self.blocks;
    }

    /// Move to the next block but keep the current one from the kernel
    /// (a batch reads a payload in it) until [`RxRing::release_kept`].
    /// `false`, and nothing done, when every other block is kept already:
    /// the caller releases instead or stops.
    pub fn keep(&mut self) -> bool {
        if !self.can_keep() {
            return false;
        }
        self.kept.push(self.current);
        self.current = (self.current + 1) % self.blocks;
        true
    }

    /// Put the outer tag `tag` (TPID, TCI) that the kernel stripped back
    /// into frame `len` bytes long at `start` of the current block, whose
    /// frame header is at `at`: the two MAC addresses move 4 bytes to the
    /// front, into the room the kernel leaves before the frame (where the
    /// tail of its `virtio_net_hdr` was: read it first), and the tag goes
    /// behind them. The frame then starts at `start - 4`. `false`, and
    /// nothing written, when the block is not user space's or the room
    /// would reach into the frame header or its address.
    pub fn restore_tag_in_place(
        &mut self,
        at: usize,
        start: usize,
        len: usize,
        tag: (u16, u16),
    ) -> bool {
        let mut bytes = [0u8; MACS_LEN + TAG_LEN];
        if self.status(self.current).load(Ordering::Acquire) & TP_STATUS_USER == 0
            || len < MACS_LEN
            || start < at.saturating_add(TPACKET3_HDRLEN + TAG_LEN)
            || start.saturating_add(len) > self.block_size
        {
            return false;
        }
        let base = self.current * self.block_size + start - TAG_LEN;
        let mut macs = [0u8; MACS_LEN];
        // SAFETY: `base .. base + 16` lies inside the current block (checked
        // above: `start + len <= block_size`, `len >= 12`), which user space
        // owns (status checked, and it is only handed back by `&mut self`
        // methods). No reference into these bytes is alive (`&mut self`);
        // lent payloads point at other bytes (payloads, past every header).
        let p = unsafe { self.map.as_ptr().add(base) };
        // SAFETY: as above (the 12 MAC bytes at `start`).
        unsafe { std::ptr::copy_nonoverlapping(p.add(TAG_LEN), macs.as_mut_ptr(), MACS_LEN) };
        // The MACs and the tag, as a copy would put them back.
        if restore_tag(&mut bytes, &macs, Some(tag)) != Some(bytes.len()) {
            return false;
        }
        // SAFETY: as above.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len()) };
        true
    }

    /// Whether another block can be kept ([`RxRing::keep`]).
    pub fn can_keep(&self) -> bool {
        self.kept.len() + 1 < self.blocks
    }

    /// Hand the kept blocks back to the kernel. The caller has stopped
    /// reading them (whatever read their bytes is gone: the batch's
    /// lending window is closed).
    pub fn release_kept(&mut self) {
        for &b in &self.kept {
            self.status(b).store(TP_STATUS_KERNEL, Ordering::Release);
        }
        self.kept.clear();
    }
}

/// `TP_STATUS_SEND_REQUEST`: a transmit slot user space filled.
const TP_STATUS_SEND_REQUEST: u32 = 1;
/// `TP_STATUS_SENDING`: the kernel is sending the slot's frame.
const TP_STATUS_SENDING: u32 = 2;

/// Byte offsets in a TPACKET_V2 transmit slot (`struct tpacket2_hdr`).
mod tx_field {
    pub const STATUS: usize = 0;
    pub const LEN: usize = 4;
    pub const SNAPLEN: usize = 8;
    /// Where the kernel reads the frame without `PACKET_TX_HAS_OFF`:
    /// `TPACKET2_HDRLEN - sizeof(struct sockaddr_ll)`. With
    /// `PACKET_VNET_HDR` a `struct virtio_net_hdr` comes first.
    pub const DATA: usize = 32;
    /// `sizeof(struct virtio_net_hdr)`.
    pub const VNET_HDR: usize = 10;
    /// Its `hdr_len` (little-endian: `vio_le()` on every host we build for).
    pub const VNET_HDR_LEN: usize = 2;
    /// The frame, after the virtio header.
    pub const FRAME: usize = DATA + VNET_HDR;
}

/// A TPACKET_V2 transmit ring mapped from the socket: fixed-size slots,
/// filled in order by [`TxRing::push`], sent by the kernel in the same
/// order when the socket is kicked ([`sys::kick_tx_ring`]).
pub struct TxRing {
    map: Mmap,
    slot_size: usize,
    slots: usize,
    next: usize,
}

impl TxRing {
    /// The ring over `map`: `slots` slots of `slot_size` bytes, back to
    /// back. `None` if they do not fit in the mapping, or a slot is not
    /// 16-byte aligned or has no room after its header.
    pub fn new(map: Mmap, slot_size: usize, slots: usize) -> Option<TxRing> {
        if slots == 0
            || slot_size <= tx_field::FRAME
            || slot_size % 16 != 0
            || slot_size.checked_mul(slots)? > map.len()
            || (map.as_ptr() as usize) % 16 != 0
        {
            return None;
        }
        Some(TxRing {
            map,
            slot_size,
            slots,
            next: 0,
        })
    }

    /// The longest frame a slot holds.
    pub fn max_frame(&self) -> usize {
        self.slot_size - tx_field::FRAME
    }

    fn status(&self, slot: usize) -> &AtomicU32 {
        let at = (slot % self.slots) * self.slot_size + tx_field::STATUS;
        // SAFETY: `at + 4 <= slots * slot_size <= map.len()` (checked in
        // `new`) and `at` is 16-byte aligned. The kernel reads and writes
        // this word concurrently, so it is only accessed as an atomic.
        unsafe { &*(self.map.as_ptr().add(at) as *const AtomicU32) }
    }

    /// True if the next slot is user space's to fill: neither queued
    /// (`SEND_REQUEST`) nor in flight (`SENDING`; the kernel sets
    /// `AVAILABLE` once the frame's buffer is freed).
    pub fn has_room(&self) -> bool {
        self.status(self.next).load(Ordering::Acquire)
            & (TP_STATUS_SEND_REQUEST | TP_STATUS_SENDING)
            == 0
    }

    /// True if the last frame pushed still waits for the kernel (which
    /// sends in ring order, so nothing pushed is waiting otherwise).
    pub fn queued(&self) -> bool {
        let last = (self.next + self.slots - 1) % self.slots;
        self.status(last).load(Ordering::Acquire) & TP_STATUS_SEND_REQUEST != 0
    }

    /// A copy of slot `slot` with its status word (tests: what the kernel
    /// would read).
    #[cfg(test)]
    fn slot_copy(&self, slot: usize) -> (u32, Vec<u8>) {
        let status = self.status(slot).load(Ordering::Acquire);
        let at = (slot % self.slots) * self.slot_size + 4;
        // SAFETY (test): inside the mapping, after the status word, and no
        // mutable reference exists while `&self` is held.
        let rest =
            unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(at), self.slot_size - 4) };
        (status, rest.to_vec())
    }

    /// Queue `frame` in the next slot; `false` (nothing written) if the
    /// slot is not free or the frame is longer than [`TxRing::max_frame`].
    pub fn push(&mut self, frame: &[u8]) -> bool {
        if frame.len() > self.max_frame() || !self.has_room() {
            return false;
        }
        let at = self.next * self.slot_size;
        // SAFETY: the slot lies inside the mapping (checked in `new`); the
        // slice starts after the status word (only ever accessed as an
        // atomic, above) and ends at the slot's end. The slot is user
        // space's: its status, read with Acquire in `has_room`, says the
        // kernel is done with it, and the kernel does not touch it again
        // until the Release store below hands it over. `&mut self` keeps
        // any other reference to the slot from existing meanwhile.
        let slot = unsafe {
            std::slice::from_raw_parts_mut(self.map.as_ptr().add(at + 4), self.slot_size - 4)
        };
        // The virtio header asks for no offload, and its `hdr_len` (bytes
        // the kernel copies into the skb's linear part) covers the whole
        // frame: without it the kernel would attach the frame as page
        // fragments of the ring, which a veth then copies again into fresh
        // pages (`skb_copy_ubufs`) before handing it to its peer.
        let len = ((tx_field::VNET_HDR + frame.len()) as u32).to_ne_bytes();
        slot[tx_field::LEN - 4..tx_field::LEN].copy_from_slice(&len);
        slot[tx_field::SNAPLEN - 4..tx_field::SNAPLEN].copy_from_slice(&len);
        let vnet = &mut slot[tx_field::DATA - 4..tx_field::FRAME - 4];
        vnet.fill(0);
        vnet[tx_field::VNET_HDR_LEN..tx_field::VNET_HDR_LEN + 2]
            .copy_from_slice(&(frame.len() as u16).to_le_bytes());
        slot[tx_field::FRAME - 4..tx_field::FRAME - 4 + frame.len()].copy_from_slice(frame);
        self.status(self.next)
            .store(TP_STATUS_SEND_REQUEST, Ordering::Release);
        self.next = (self.next + 1) % self.slots;
        true
    }
}

/// Where the reader is inside the current block.
#[derive(Clone, Copy, Debug, Default)]
struct Cursor {
    /// Frames of the block already consumed.
    done: u32,
    /// Offset of the next frame header (valid when `done > 0`).
    at: usize,
    /// A frame of the block lent its payload to the batch: keep the block
    /// from the kernel until the next receive.
    lent: bool,
}

/// An AF_PACKET port: TPACKET_V3 RX ring, TPACKET_V2 TX ring.
pub struct AfPacketPort {
    /// The receive socket (ring owner, registered with the worker's epoll).
    fd: OwnedFd,
    /// The transmit socket: see [`open_tx_socket`] for why it is separate.
    tx: OwnedFd,
    /// Its transmit ring.
    tx_ring: TxRing,
    /// Frames longer than this are refused (the kernel's limit for the
    /// interface MTU: MTU + Ethernet header + one tag).
    tx_max: usize,
    /// The last kick failed (device busy): frames wait in the ring.
    tx_pending: bool,
    /// Frames pushed into the ring since the last kick.
    tx_unkicked: bool,
    /// The socket super-frames leave by, whole: `PACKET_VNET_HDR`, and
    /// through the qdisc (with `PACKET_QDISC_BYPASS` the kernel refuses a
    /// GSO frame with `ENOBUFS`). Opened at the first super-frame.
    gso_tx: Option<OwnedFd>,
    /// Room for one whole super-frame, when it must be cut here (its
    /// segments would not fit the MTU); allocated the first time.
    cut_room: Vec<u8>,
    ring: RxRing,
    cursor: Cursor,
    interface: String,
    /// The fanout group joined, if any.
    fanout_group: Option<u16>,
    stats: IoStats,
}

impl AfPacketPort {
    /// Open `interface` (see the module contract). Errors name the
    /// interface and, for a missing privilege, what to grant.
    pub fn open(interface: &str, opts: &AfPacketOptions) -> io::Result<AfPacketPort> {
        let cap = "CAP_NET_RAW";
        let index = sys::if_index(interface)?;
        // Protocol 0: nothing is queued before the ring exists and bind()
        // sets ETH_P_ALL.
        let fd = sys::socket(libc::AF_PACKET, libc::SOCK_RAW, 0)
            .map_err(|e| sys::explain(e, interface, "opening an AF_PACKET socket", cap))?;
        let raw = fd.as_raw_fd();
        let (flags, mtu) = sys::if_flags_mtu(raw, interface)
            .map_err(|e| sys::explain(e, interface, "reading the interface flags", cap))?;
        if flags & libc::IFF_UP as u32 == 0 {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                format!("interface {interface} is down: `ip link set {interface} up`"),
            ));
        }
        if mtu < opts.required_mtu {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "interface {interface} has MTU {mtu}, too small for the tags the \
                     configuration puts on it: it needs at least {need} \
                     (`ip link set {interface} mtu {need}` on both ends of the link)",
                    need = opts.required_mtu
                ),
            ));
        }
        let opt = |name, value: &libc::c_int, what: &str| {
            sys::setsockopt(raw, libc::SOL_PACKET, name, value)
                .map_err(|e| sys::explain(e, interface, what, cap))
        };
        opt(
            libc::PACKET_VERSION,
            &(libc::tpacket_versions::TPACKET_V3 as libc::c_int),
            "selecting TPACKET_V3",
        )?;
        // Each frame comes with its virtio_net_hdr: a host stack's TCP
        // super-frames arrive whole with their segment size, and frames
        // whose checksum the sender left to offload say so.
        opt(libc::PACKET_VNET_HDR, &1, "setting PACKET_VNET_HDR")?;
        let page = 4096;
        let block_size = opts.block_size.max(page).next_power_of_two();
        let frame_size = 2048u32;
        let req = libc::tpacket_req3 {
            tp_block_size: block_size as u32,
            tp_block_nr: opts.block_count.max(2) as u32,
            tp_frame_size: frame_size,
            tp_frame_nr: (block_size as u32 / frame_size) * opts.block_count.max(2) as u32,
            tp_retire_blk_tov: opts.retire_ms.max(1),
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        sys::setsockopt(raw, libc::SOL_PACKET, libc::PACKET_RX_RING, &req)
            .map_err(|e| sys::explain(e, interface, "setting up the TPACKET_V3 RX ring", cap))?;
        let blocks = req.tp_block_nr as usize;
        let map = Mmap::shared(&fd, block_size * blocks)
            .map_err(|e| sys::explain(e, interface, "mapping the RX ring", cap))?;
        let ring = RxRing::new(map, block_size, blocks)
            .ok_or_else(|| io::Error::other(format!("{interface}: RX ring layout rejected")))?;
        opt(
            libc::PACKET_IGNORE_OUTGOING,
            &1,
            "setting PACKET_IGNORE_OUTGOING",
        )?;
        opt(libc::PACKET_QDISC_BYPASS, &1, "setting PACKET_QDISC_BYPASS")?;
        // SAFETY: sockaddr_ll is plain data; all-zero is valid.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = index as i32;
        bind(&fd, &sll).map_err(|e| sys::explain(e, interface, "binding", cap))?;
        let mreq = libc::packet_mreq {
            mr_ifindex: index as i32,
            mr_type: libc::PACKET_MR_PROMISC as u16,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        sys::setsockopt(raw, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq)
            .map_err(|e| sys::explain(e, interface, "entering promiscuous mode", cap))?;
        let hash = libc::PACKET_FANOUT_HASH as libc::c_int;
        let fanout_group = match opts.fanout {
            Fanout::None => None,
            Fanout::Join(group) => {
                opt(
                    libc::PACKET_FANOUT,
                    &(group as libc::c_int | hash << 16),
                    "joining the fanout group",
                )?;
                Some(group)
            }
            Fanout::New => {
                // Id 0 with UNIQUEID: the kernel allocates a free id.
                let unique = libc::PACKET_FANOUT_FLAG_UNIQUEID as libc::c_int;
                opt(
                    libc::PACKET_FANOUT,
                    &((hash | unique) << 16),
                    "creating a fanout group",
                )?;
                // Reads back id | type << 16 | flags << 24.
                let v: u32 = sys::getsockopt(raw, libc::SOL_PACKET, libc::PACKET_FANOUT)
                    .map_err(|e| sys::explain(e, interface, "reading the fanout group", cap))?;
                Some(v as u16)
            }
        };
        // Transmit on a second socket that no epoll watches: every skb a
        // socket sent wakes that socket's waiters when it is freed
        // (`sock_wfree` → `sock_def_write_space`), and the receive socket
        // always has one, the worker's epoll — a locked wake-up per frame.
        let tx = open_tx_socket(interface)?;
        let tx_ring = setup_tx_ring(&tx, opts.tx_slots)
            .map_err(|e| sys::explain(e, interface, "setting up the TPACKET_V2 TX ring", cap))?;
        let tx_max = (mtu as usize + 18).min(tx_ring.max_frame());
        let mut port = AfPacketPort {
            fd,
            tx,
            tx_ring,
            tx_max,
            tx_pending: false,
            tx_unkicked: false,
            gso_tx: None,
            cut_room: Vec::new(),
            ring,
            cursor: Cursor::default(),
            interface: interface.to_string(),
            fanout_group,
            stats: IoStats::default(),
        };
        // Reading the statistics resets them: start from zero.
        let _ = port.kernel_stats();
        Ok(port)
    }

    /// The interface name.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// The id of the fanout group the receive socket is in (the one the
    /// kernel picked for [`Fanout::New`]); `None` without fanout.
    pub fn fanout_group(&self) -> Option<u16> {
        self.fanout_group
    }

    /// Have the kernel send what the TX ring holds. A frame the device
    /// refused (busy) or the socket had no buffer for stays queued in its
    /// slot, and the kernel starts from it at the next kick: remember to
    /// kick again.
    fn kick(&mut self) {
        let _ = sys::kick_tx_ring(self.tx.as_raw_fd());
        self.tx_pending = self.tx_ring.queued();
        self.tx_unkicked = false;
    }

    /// Receive a frame that came with offload work (a super-frame, or a
    /// checksum left to offload) into `batch`; `false` when it is dropped
    /// (counted as oversize/malformed by the caller).
    ///
    /// With `lend`, a super-frame lends its payload to the batch
    /// ([`Batch::lend_super`]) instead of being copied: the caller keeps
    /// its block from the kernel until the next receive. `tag_inline`: the
    /// stripped outer tag is back in `f.data` already
    /// ([`RxRing::restore_tag_in_place`]).
    #[cold]
    fn receive_offloaded(
        batch: &mut Batch,
        f: &RxFrame<'_>,
        h: &VirtioNetHdr,
        lend: bool,
        tag_inline: bool,
    ) -> Taken {
        let stripped = f.outer_tag();
        // The tag to put back while copying.
        let tag = stripped.filter(|_| !tag_inline);
        let Ok(mut offload) = Offload::from_virtio(h) else {
            return Taken::Dropped;
        };
        // The kernel's offsets count the frame without the outer tag that
        // it stripped and we put back.
        if stripped.is_some() && offload.shift(TAG_LEN as isize).is_err() {
            return Taken::Dropped;
        }
        if !offload.is_super_frame() {
            let Some(buf) = batch.next_buf() else {
                return Taken::Dropped;
            };
            let Some(len) = restore_tag(&mut buf.receive_area()[..MAX_FRAME], f.data, tag) else {
                return Taken::Dropped;
            };
            buf.set_received(len);
            if let ChecksumState::Partial { start, offset } = offload.checksum {
                if gso::complete_checksum(buf.frame_mut(), start as usize, offset as usize).is_err()
                {
                    return Taken::Dropped;
                }
            }
            batch.commit();
            return Taken::Copied;
        }
        if lend && tag.is_none() {
            // SAFETY: `lend` is only passed while the batch's lending
            // window is open, and `recv_blocks` keeps this frame's block
            // from the kernel (`Cursor::lent`) until the port's next
            // receive, which the window's owner closes it before.
            return match unsafe { batch.lend_super(f.data, offload) } {
                Ok(Some(true)) => Taken::Lent,
                Ok(Some(false)) => Taken::Copied,
                _ => Taken::Dropped,
            };
        }
        let Some((buf, sf)) = batch.next_super() else {
            return Taken::Dropped;
        };
        let Some(len) = restore_tag(sf.receive_area(), f.data, tag) else {
            return Taken::Dropped;
        };
        match sf.split(len, offload, buf) {
            Ok(true) => batch.commit_super(),
            Ok(false) => batch.commit(),
            Err(_) => return Taken::Dropped,
        }
        Taken::Copied
    }

    /// Send super-frame `sf`, whose headers the pipeline left in
    /// `headers`: whole, with its virtio_net_hdr, when its segments fit
    /// the MTU (the kernel segments it, or a veth hands it on whole);
    /// otherwise cut here into segments that fit, through the ring.
    /// `false`: refused (socket or ring full, or not a frame xconnect can
    /// rejoin or cut).
    fn send_super(&mut self, headers: &[u8], sf: &SuperFrame) -> bool {
        let mut hdr = [0u8; crate::frame::superframe::SUPER_HEADERS_MAX + 64];
        let Ok((n, offload)) = sf.rejoin(headers, &mut hdr) else {
            return false;
        };
        if self.tx_unkicked || self.tx_pending {
            // Frames before it leave first.
            self.kick();
        }
        if n + offload.segment_size as usize <= self.tx_max {
            if self.gso_tx.is_none() {
                self.gso_tx = open_gso_socket(&self.interface).ok();
            }
            let Some(fd) = &self.gso_tx else {
                return false;
            };
            let mut vnet = [0u8; VirtioNetHdr::LEN];
            if offload.to_virtio().emit(&mut vnet).is_err() {
                return false;
            }
            return sys::send_gathered(fd.as_raw_fd(), &[&vnet, &hdr[..n], sf.payload()]).is_ok();
        }
        // The segments would not fit: cut them to the MTU here.
        let mut room = std::mem::take(&mut self.cut_room);
        if room.is_empty() {
            room = vec![0; crate::frame::superframe::SUPER_FRAME_MAX];
        }
        let ok = self.cut_into_ring(headers, sf, &mut room);
        self.cut_room = room;
        ok
    }

    /// Cut super-frame `sf` (headers from the pipeline) into segments that
    /// fit the MTU, assembled whole in `room`, and queue them in the ring.
    fn cut_into_ring(&mut self, headers: &[u8], sf: &SuperFrame, room: &mut [u8]) -> bool {
        let Ok((total, offload)) = sf.rejoin_whole(headers, room) else {
            return false;
        };
        let whole = &room[..total];
        let l3 = sf.network_offset(headers.len());
        let mtu = (self.tx_max.saturating_sub(l3)).min(u16::MAX as usize) as u16;
        let Ok(mut cutter) = Segmenter::new(whole, &offload, Some(mtu)) else {
            return false;
        };
        let mut seg = [0u8; MAX_FRAME];
        loop {
            match cutter.write_next(&mut seg) {
                Ok(Some(len)) => {
                    if !self.tx_ring.has_room() {
                        self.kick();
                    }
                    if !self.tx_ring.push(&seg[..len]) {
                        return false;
                    }
                    self.tx_unkicked = true;
                }
                Ok(None) => return true,
                Err(_) => return false,
            }
        }
    }

    /// [`Backend::send`](super::Backend::send) for a set holding
    /// super-frames: in order, ordinary frames through the ring, each
    /// super-frame by [`AfPacketPort::send_super`].
    #[cold]
    fn send_with_supers(&mut self, out: Outgoing<'_>) -> usize {
        let batch = out.batch();
        let mut n = 0;
        for i in out.positions() {
            let buf = batch.buf(i);
            let ok = match batch.super_frame(i) {
                Some(sf) => self.send_super(buf.frame(), sf),
                None => {
                    let f = buf.frame();
                    let ok = f.len() <= self.tx_max && self.tx_ring.push(f);
                    self.tx_unkicked |= ok;
                    ok
                }
            };
            if !ok {
                break;
            }
            n += 1;
        }
        if self.tx_unkicked || self.tx_pending {
            self.kick();
        }
        n
    }

    /// Frames the kernel dropped (ring full) since the last call.
    fn kernel_stats(&mut self) -> io::Result<u64> {
        // struct tpacket_stats_v3 { tp_packets, tp_drops, tp_freeze_q_cnt }
        let s: [u32; 3] = sys::getsockopt(
            self.fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
        )?;
        Ok(s[1] as u64)
    }
}

/// A transmit-only AF_PACKET socket bound to `interface`, bypassing the
/// qdisc, for [`send_frames`] (a port's transmit side, and the traffic
/// generator of `xconnect gen`). Protocol 0: the socket receives nothing.
/// Keep it out of any epoll set: a socket with waiters pays a locked
/// wake-up each time the kernel frees one of its sent frames.
pub fn open_tx_socket(interface: &str) -> io::Result<OwnedFd> {
    tx_only_socket(
        interface,
        libc::PACKET_QDISC_BYPASS,
        "setting PACKET_QDISC_BYPASS",
    )
}

/// An AF_PACKET socket bound to `interface` with protocol 0 (it receives
/// nothing) and the `SOL_PACKET` option `option` set to 1 (`what` names it
/// in an error).
fn tx_only_socket(interface: &str, option: libc::c_int, what: &str) -> io::Result<OwnedFd> {
    let cap = "CAP_NET_RAW";
    let index = sys::if_index(interface)?;
    let fd = sys::socket(libc::AF_PACKET, libc::SOCK_RAW, 0)
        .map_err(|e| sys::explain(e, interface, "opening an AF_PACKET socket", cap))?;
    sys::setsockopt(fd.as_raw_fd(), libc::SOL_PACKET, option, &1)
        .map_err(|e| sys::explain(e, interface, what, cap))?;
    // SAFETY: sockaddr_ll is plain data; all-zero is valid.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = 0;
    sll.sll_ifindex = index as i32;
    bind(&fd, &sll).map_err(|e| sys::explain(e, interface, "binding", cap))?;
    Ok(fd)
}

/// A transmit-only AF_PACKET socket bound to `interface` that sends
/// super-frames whole: `PACKET_VNET_HDR` (each frame starts with its
/// `virtio_net_hdr`), through the qdisc (the kernel refuses a GSO frame
/// on a socket with `PACKET_QDISC_BYPASS`). Receives nothing.
pub fn open_gso_socket(interface: &str) -> io::Result<OwnedFd> {
    let fd = tx_only_socket(interface, libc::PACKET_VNET_HDR, "setting PACKET_VNET_HDR")?;
    // A super-frame is charged to the socket until the receiving side
    // takes it off the backlog: the default send buffer (wmem_default,
    // 208 KiB) holds three, and a fourth would be refused (tx-full) while
    // another core has them queued. Root may go past wmem_max.
    let bytes = GSO_SNDBUF as libc::c_int;
    if sys::setsockopt(
        fd.as_raw_fd(),
        libc::SOL_SOCKET,
        libc::SO_SNDBUFFORCE,
        &bytes,
    )
    .is_err()
    {
        let _ = sys::setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, &bytes);
    }
    Ok(fd)
}

/// Send buffer of the super-frame socket: 64 super-frames in flight.
const GSO_SNDBUF: usize = 64 * 65536;

/// Give the transmit socket `fd` a TPACKET_V2 `PACKET_TX_RING` of at
/// least `slots` 2 KiB slots and map it. `PACKET_LOSS` makes the kernel
/// skip a frame it cannot send as built (too long for the MTU) instead of
/// stopping the ring at it; [`AfPacketPort`] never queues such frames.
pub fn setup_tx_ring(fd: &OwnedFd, slots: usize) -> io::Result<TxRing> {
    let raw = fd.as_raw_fd();
    sys::setsockopt(
        raw,
        libc::SOL_PACKET,
        libc::PACKET_VERSION,
        &(libc::tpacket_versions::TPACKET_V2 as libc::c_int),
    )?;
    sys::setsockopt(raw, libc::SOL_PACKET, libc::PACKET_LOSS, &1)?;
    sys::setsockopt(raw, libc::SOL_PACKET, libc::PACKET_VNET_HDR, &1)?;
    let slot_size = 2048usize;
    let per_block = 32usize; // 64 KiB blocks
    let blocks = slots.max(1).div_ceil(per_block);
    let req = libc::tpacket_req {
        tp_block_size: (slot_size * per_block) as u32,
        tp_block_nr: blocks as u32,
        tp_frame_size: slot_size as u32,
        tp_frame_nr: (blocks * per_block) as u32,
    };
    sys::setsockopt(raw, libc::SOL_PACKET, libc::PACKET_TX_RING, &req)?;
    let map = Mmap::shared(fd, slot_size * per_block * blocks)?;
    TxRing::new(map, slot_size, blocks * per_block)
        .ok_or_else(|| io::Error::other("TX ring layout rejected"))
}

fn bind(fd: &OwnedFd, sll: &libc::sockaddr_ll) -> io::Result<()> {
    // SAFETY: the pointer and length describe `sll`, a live sockaddr_ll.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Send `frames` on the bound socket with as few `sendmmsg` calls as the
/// kernel allows; returns how many were accepted (a prefix). Stops at the
/// first error other than `EINTR`. Not for a socket with a TX ring: such a
/// socket sends only what its ring holds.
pub fn send_frames<'a>(fd: &OwnedFd, frames: impl Iterator<Item = &'a [u8]>) -> usize {
    const N: usize = crate::frame::BATCH_SIZE;
    // SAFETY: iovec and mmsghdr are plain data; all-zero is valid (null
    // pointers, zero lengths).
    let mut iov: [libc::iovec; N] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut msgs: [libc::mmsghdr; N] = unsafe { std::mem::zeroed() };
    let mut n = 0;
    for f in frames.take(N) {
        iov[n] = libc::iovec {
            iov_base: f.as_ptr() as *mut libc::c_void,
            iov_len: f.len(),
        };
        n += 1;
    }
    for i in 0..n {
        msgs[i].msg_hdr.msg_iov = &mut iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    let mut sent = 0;
    while sent < n {
        // SAFETY: `msgs[sent..n]` are initialised headers whose iovecs
        // point into frames borrowed for the duration of this function;
        // the kernel only reads them (and writes `msg_len`).
        let r = unsafe {
            libc::sendmmsg(
                fd.as_raw_fd(),
                msgs.as_mut_ptr().add(sent),
                (n - sent) as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if r > 0 {
            sent += r as usize;
        } else if r < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        } else {
            break;
        }
    }
    sent
}

/// What [`take_frame`] did with a received frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Taken {
    /// Not added (counted, or the batch is full).
    Dropped,
    /// Copied into the batch.
    Copied,
    /// Added with its payload lent ([`Batch::lend_super`]): its block must
    /// stay user space's until the next receive.
    Lent,
}

/// Take one received frame into `batch`: through the offload path when
/// its virtio_net_hdr asks for work (a super-frame's payload lent when
/// `lend`), else copied with its outer tag put back.
#[inline(always)]
fn take_frame(batch: &mut Batch, f: &RxFrame<'_>, vnet: Option<VirtioNetHdr>, lend: bool) -> Taken {
    if let Some(h) = vnet {
        if (h.gso_type != vnet_gso::NONE || h.flags & vnet_flags::NEEDS_CSUM != 0)
            && f.data.len() == f.wire_len
        {
            let taken = AfPacketPort::receive_offloaded(batch, f, &h, lend, false);
            if taken == Taken::Dropped {
                batch.count_oversize(f.wire_len);
            }
            return taken;
        }
    }
    let Some(buf) = batch.next_buf() else {
        return Taken::Dropped;
    };
    let written = if f.data.len() < f.wire_len {
        None
    } else {
        restore_tag(&mut buf.receive_area()[..MAX_FRAME], f.data, f.outer_tag())
    };
    match written {
        Some(len) => {
            buf.set_received(len);
            batch.commit();
            Taken::Copied
        }
        None => {
            batch.count_oversize(f.wire_len);
            Taken::Dropped
        }
    }
}

/// Take a super-frame whose outer tag the kernel stripped (`h`, its
/// virtio_net_hdr, read before the tag's room overwrites it) with its
/// payload lent: the tag goes back in place in the ring, then the frame
/// is lent as an untagged one would be. Copied as before when there is
/// no room for the tag.
#[cold]
fn take_tagged_super(
    ring: &mut RxRing,
    batch: &mut Batch,
    (at, start, len): (usize, usize, usize),
    tag: (u16, u16),
    h: &VirtioNetHdr,
) -> Taken {
    let inline = ring.restore_tag_in_place(at, start, len, tag);
    let Some(block) = ring.user_block() else {
        return Taken::Dropped;
    };
    let Some(f) = RxFrame::parse(block, at) else {
        return Taken::Dropped;
    };
    // With its tag back, the frame starts 4 bytes earlier (`inline`
    // checked that the room is there).
    let frame = match inline
        .then(|| block.get(start - TAG_LEN..start + len))
        .flatten()
    {
        Some(data) => RxFrame {
            data,
            wire_len: data.len(),
            start: start - TAG_LEN,
            ..f
        },
        _ => f,
    };
    let taken = AfPacketPort::receive_offloaded(batch, &frame, h, inline, inline);
    if taken == Taken::Dropped {
        batch.count_oversize(len);
    }
    taken
}

/// Receive from a TPACKET_V3 ring: the frames of the blocks the kernel
/// handed over, up to a full batch; a block goes back when consumed, or,
/// when it lent a payload to the batch, at the next call.
fn recv_blocks(ring: &mut RxRing, cursor: &mut Cursor, batch: &mut Batch) -> usize {
    // The batch that read the kept blocks is done (its lending window
    // closed before this receive).
    ring.release_kept();
    cursor.lent = false;
    let lend = batch.lending();
    let mut n = 0;
    while !batch.is_full() {
        let Some(block) = ring.user_block() else {
            break;
        };
        let Some(hdr) = BlockHeader::parse(block) else {
            *cursor = Cursor::default();
            ring.release();
            continue;
        };
        if cursor.done == 0 {
            cursor.at = hdr.first;
        }
        while cursor.done < hdr.num_pkts && !batch.is_full() {
            // Lend only while the block can be kept (a ring smaller than
            // a batch's blocks copies the rest).
            let lend = lend && ring.can_keep();
            let Some(block) = ring.user_block() else {
                break;
            };
            let Some(f) = RxFrame::parse(block, cursor.at) else {
                // A header outside the block: give up on the rest of it.
                cursor.done = hdr.num_pkts;
                break;
            };
            let at = cursor.at;
            cursor.done += 1;
            cursor.at += f.next;
            if f.next == 0 {
                cursor.done = hdr.num_pkts;
            }
            let vnet = f.vnet_header(block);
            let taken = match (f.outer_tag(), vnet) {
                // A tagged super-frame (a trunk's) is lent too, once its
                // tag is back in place in the ring.
                (Some(tag), Some(h))
                    if lend && h.gso_type != vnet_gso::NONE && f.data.len() == f.wire_len =>
                {
                    take_tagged_super(ring, batch, (at, f.start, f.data.len()), tag, &h)
                }
                _ => take_frame(batch, &f, vnet, lend),
            };
            match taken {
                Taken::Dropped => {}
                Taken::Copied => n += 1,
                Taken::Lent => {
                    n += 1;
                    cursor.lent = true;
                }
            }
        }
        if cursor.done >= hdr.num_pkts {
            let lent = cursor.lent;
            *cursor = Cursor::default();
            if !lent {
                ring.release();
            } else if !ring.keep() {
                // Cannot happen (`can_keep` held when the frame was lent,
                // and nothing was kept since); were it to, the batch must
                // stop reading the block before it goes back.
                debug_assert!(false, "a lent block could not be kept");
                batch.close_lending();
                ring.release();
            }
        }
    }
    n
}

impl super::Backend for AfPacketPort {
    fn recv(&mut self, batch: &mut Batch) -> io::Result<usize> {
        Ok(recv_blocks(&mut self.ring, &mut self.cursor, batch))
    }

    fn send(&mut self, out: Outgoing<'_>) -> io::Result<usize> {
        if out.supers() != 0 {
            return Ok(self.send_with_supers(out));
        }
        let mut n = 0;
        for f in out.frames() {
            if f.len() > self.tx_max || !self.tx_ring.push(f) {
                break;
            }
            n += 1;
        }
        if n > 0 || self.tx_pending {
            self.kick();
        }
        Ok(n)
    }

    /// Super-frames leave whole (GSO, by the socket without qdisc bypass) or are cut here to the MTU.
    fn takes_super_frames(&self) -> bool {
        true
    }
}

impl Port for AfPacketPort {
    fn register(&mut self, registry: &mio::Registry, token: mio::Token) -> io::Result<()> {
        let raw = self.fd.as_raw_fd();
        registry.register(
            &mut mio::unix::SourceFd(&raw),
            token,
            mio::Interest::READABLE,
        )
    }

    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        let raw = self.fd.as_raw_fd();
        registry.deregister(&mut mio::unix::SourceFd(&raw))
    }

    fn take_stats(&mut self) -> IoStats {
        if let Ok(d) = self.kernel_stats() {
            self.stats.kernel_drops += d;
        }
        std::mem::take(&mut self.stats)
    }

    fn clear_error(&mut self) {
        let _ = sys::take_socket_error(self.fd.as_raw_fd());
        let _ = sys::take_socket_error(self.tx.as_raw_fd());
    }

    fn flush(&mut self) {
        if self.tx_pending {
            self.kick();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::Backend;
    use std::mem::offset_of;

    #[test]
    fn offsets_match_the_kernel_headers() {
        use libc::{tpacket3_hdr, tpacket_hdr_v1};
        let bd = offset_of!(libc::tpacket_block_desc, hdr);
        assert_eq!(
            bd + offset_of!(tpacket_hdr_v1, block_status),
            field::BLOCK_STATUS
        );
        assert_eq!(bd + offset_of!(tpacket_hdr_v1, num_pkts), field::NUM_PKTS);
        assert_eq!(
            bd + offset_of!(tpacket_hdr_v1, offset_to_first_pkt),
            field::FIRST_PKT
        );
        assert!(bd + std::mem::size_of::<tpacket_hdr_v1>() <= field::BLOCK_HDR_LEN);
        assert_eq!(offset_of!(tpacket3_hdr, tp_next_offset), field::NEXT_OFFSET);
        assert_eq!(offset_of!(tpacket3_hdr, tp_snaplen), field::SNAPLEN);
        assert_eq!(offset_of!(tpacket3_hdr, tp_len), field::LEN);
        assert_eq!(offset_of!(tpacket3_hdr, tp_status), field::STATUS);
        assert_eq!(offset_of!(tpacket3_hdr, tp_mac), field::MAC);
        let hv1 = offset_of!(tpacket3_hdr, hv1);
        assert_eq!(
            hv1 + offset_of!(libc::tpacket_hdr_variant1, tp_vlan_tci),
            field::VLAN_TCI
        );
        assert_eq!(
            hv1 + offset_of!(libc::tpacket_hdr_variant1, tp_vlan_tpid),
            field::VLAN_TPID
        );
        assert_eq!(std::mem::size_of::<tpacket3_hdr>(), field::FRAME_HDR_LEN);
        assert_eq!(libc::TP_STATUS_VLAN_VALID, TP_STATUS_VLAN_VALID);
        assert_eq!(libc::TP_STATUS_VLAN_TPID_VALID, TP_STATUS_VLAN_TPID_VALID);
    }

    /// A block as the kernel lays it out, holding `frames` as
    /// (bytes, status, tci, tpid, wire_len).
    fn block(frames: &[(&[u8], u32, u16, u16, usize)]) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        let put32 =
            |b: &mut Vec<u8>, at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
        put32(&mut b, field::BLOCK_STATUS, TP_STATUS_USER);
        put32(&mut b, field::NUM_PKTS, frames.len() as u32);
        put32(&mut b, field::FIRST_PKT, field::BLOCK_HDR_LEN as u32);
        let mut at = field::BLOCK_HDR_LEN;
        for (i, (data, status, tci, tpid, wire)) in frames.iter().enumerate() {
            let mac = 66usize; // TPACKET_ALIGN(hdr) + NET_IP_ALIGN-ish padding
            let size = (mac + data.len() + 15) & !15;
            let next = if i + 1 == frames.len() { 0 } else { size };
            put32(&mut b, at + field::NEXT_OFFSET, next as u32);
            put32(&mut b, at + field::SNAPLEN, data.len() as u32);
            put32(&mut b, at + field::LEN, *wire as u32);
            put32(&mut b, at + field::STATUS, *status | TP_STATUS_USER);
            b[at + field::MAC..at + field::MAC + 2].copy_from_slice(&(mac as u16).to_ne_bytes());
            put32(&mut b, at + field::VLAN_TCI, *tci as u32);
            b[at + field::VLAN_TPID..at + field::VLAN_TPID + 2]
                .copy_from_slice(&tpid.to_ne_bytes());
            b[at + mac..at + mac + data.len()].copy_from_slice(data);
            at += size;
        }
        b
    }

    fn frame(payload: u8, len: usize) -> Vec<u8> {
        let mut f = vec![payload; len];
        f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&[0x81, 0x00]); // inner C-tag stays in the bytes
        f
    }

    #[test]
    fn frames_are_walked_and_outer_tags_restored() {
        let a = frame(0xaa, 60);
        let b = frame(0xbb, 100);
        let c = frame(0xcc, 64);
        let blk = block(&[
            (
                &a,
                TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID,
                0x2064,
                0x88a8,
                60,
            ),
            (&b, TP_STATUS_VLAN_VALID, 100, 0, 100),
            (&c, 0, 0, 0, 64),
        ]);
        let hdr = BlockHeader::parse(&blk).unwrap();
        assert_eq!(hdr.num_pkts, 3);
        let mut at = hdr.first;
        let mut out = Vec::new();
        for _ in 0..hdr.num_pkts {
            let f = RxFrame::parse(&blk, at).unwrap();
            let mut dst = [0u8; 2048];
            let n = restore_tag(&mut dst, f.data, f.outer_tag()).unwrap();
            out.push(dst[..n].to_vec());
            at += f.next;
        }
        // 802.1ad outer tag with PCP 1, VID 100 put back after the MACs.
        assert_eq!(&out[0][..12], &a[..12]);
        assert_eq!(&out[0][12..16], &[0x88, 0xa8, 0x20, 0x64]);
        assert_eq!(&out[0][16..], &a[12..]);
        // No TPID reported: 0x8100.
        assert_eq!(&out[1][12..16], &[0x81, 0x00, 0x00, 100]);
        assert_eq!(out[1].len(), 104);
        // Untagged frame unchanged.
        assert_eq!(out[2], c);
    }

    /// Every TCI bit comes back (PCP 7, DEI, VID 4095), a buffer of
    /// exactly the restored length is enough and one byte less is not, and
    /// a runt of just the MACs (and one byte) still gets its tag.
    #[test]
    fn restored_tags_keep_every_tci_bit() {
        let mut runt = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x5a];
        for tci in [0u16, 0x0001, 0x1000, 0xe000, 0x0fff, 0xffff] {
            let mut dst = [0u8; 17];
            assert_eq!(restore_tag(&mut dst, &runt, Some((0x88a8, tci))), Some(17));
            assert_eq!(&dst[..12], &runt[..12]);
            assert_eq!(&dst[12..16], &[0x88, 0xa8, (tci >> 8) as u8, tci as u8]);
            assert_eq!(dst[16], 0x5a);
            assert_eq!(
                restore_tag(&mut dst[..16], &runt, Some((0x9100, tci))),
                None
            );
        }
        runt.truncate(12);
        let mut dst = [0u8; 16];
        assert_eq!(restore_tag(&mut dst, &runt, Some((0x8100, 5))), Some(16));
        assert_eq!(&dst[12..], &[0x81, 0x00, 0x00, 0x05]);
    }

    #[test]
    fn bad_offsets_and_small_buffers_are_refused() {
        let a = frame(1, 60);
        let blk = block(&[(&a, 0, 0, 0, 60)]);
        assert!(RxFrame::parse(&blk, blk.len() - 10).is_none());
        assert!(RxFrame::parse(&blk, usize::MAX - 3).is_none());
        let mut bad = blk.clone();
        bad[field::BLOCK_HDR_LEN + field::SNAPLEN..][..4]
            .copy_from_slice(&100_000u32.to_ne_bytes());
        assert!(RxFrame::parse(&bad, field::BLOCK_HDR_LEN).is_none());
        assert!(BlockHeader::parse(&blk[..20]).is_none());
        let mut small = [0u8; 62];
        assert_eq!(restore_tag(&mut small, &a, Some((0x8100, 1))), None);
        assert_eq!(restore_tag(&mut small, &a, None), Some(60));
        assert_eq!(restore_tag(&mut small, &a[..10], Some((0x8100, 1))), None);
    }

    fn tx_ring(slots: usize) -> TxRing {
        // SAFETY (test): memfd_create with a valid C string.
        let fd = unsafe { libc::memfd_create(c"xc-tx-ring".as_ptr(), 0) };
        assert!(fd >= 0);
        // SAFETY (test): `fd` is fresh and owned here.
        let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        let len = 2048 * slots;
        // SAFETY (test): resize the memfd we own.
        assert_eq!(unsafe { libc::ftruncate(fd.as_raw_fd(), len as i64) }, 0);
        TxRing::new(Mmap::shared(&fd, len).unwrap(), 2048, slots).unwrap()
    }

    /// A frame as the kernel puts it in a block: its bytes (outer tag
    /// stripped), `tp_status`, TCI, TPID and virtio_net_hdr.
    type RingFrame = (Vec<u8>, u32, u16, u16, VirtioNetHdr);

    const RING_BLOCK: usize = 1 << 17;

    /// A ring of `blocks.len()` blocks of 128 KiB in shared memory, each
    /// block handed to user space with its frames (an empty block stays
    /// the kernel's), the frames laid out as the kernel does (frame at 92
    /// from its header, the virtio_net_hdr in the 10 bytes before).
    fn ring_of(blocks: &[Vec<RingFrame>]) -> RxRing {
        // SAFETY (test): memfd_create with a valid C string.
        let fd = unsafe { libc::memfd_create(c"xc-rx-ring".as_ptr(), 0) };
        assert!(fd >= 0);
        // SAFETY (test): `fd` is fresh and owned here.
        let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        let len = RING_BLOCK * blocks.len();
        // SAFETY (test): resize the memfd we own.
        assert_eq!(unsafe { libc::ftruncate(fd.as_raw_fd(), len as i64) }, 0);
        let map = Mmap::shared(&fd, len).unwrap();
        for (i, frames) in blocks.iter().enumerate() {
            let mut b = vec![0u8; RING_BLOCK];
            let put32 = |b: &mut Vec<u8>, at: usize, v: u32| {
                b[at..at + 4].copy_from_slice(&v.to_ne_bytes())
            };
            if !frames.is_empty() {
                put32(&mut b, field::BLOCK_STATUS, TP_STATUS_USER);
            }
            put32(&mut b, field::NUM_PKTS, frames.len() as u32);
            put32(&mut b, field::FIRST_PKT, field::BLOCK_HDR_LEN as u32);
            let mut at = field::BLOCK_HDR_LEN;
            for (j, (data, status, tci, tpid, vnet)) in frames.iter().enumerate() {
                let mac = 92usize;
                let size = (mac + data.len() + 15) & !15;
                let next = if j + 1 == frames.len() { 0 } else { size };
                put32(&mut b, at + field::NEXT_OFFSET, next as u32);
                put32(&mut b, at + field::SNAPLEN, data.len() as u32);
                put32(&mut b, at + field::LEN, data.len() as u32);
                put32(&mut b, at + field::STATUS, *status | TP_STATUS_USER);
                b[at + field::MAC..at + field::MAC + 2]
                    .copy_from_slice(&(mac as u16).to_ne_bytes());
                put32(&mut b, at + field::VLAN_TCI, *tci as u32);
                b[at + field::VLAN_TPID..at + field::VLAN_TPID + 2]
                    .copy_from_slice(&tpid.to_ne_bytes());
                vnet.emit(&mut b[at + mac - VirtioNetHdr::LEN..at + mac])
                    .unwrap();
                b[at + mac..at + mac + data.len()].copy_from_slice(data);
                at += size;
            }
            // SAFETY (test): the block lies inside the fresh mapping.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    b.as_ptr(),
                    map.as_ptr().add(i * RING_BLOCK),
                    RING_BLOCK,
                )
            };
        }
        RxRing::new(map, RING_BLOCK, blocks.len()).unwrap()
    }

    fn block_status(ring: &RxRing, block: usize) -> u32 {
        ring.status(block).load(Ordering::Acquire)
    }

    /// An IPv4 TCP super-frame of `payload` bytes behind `tags` (S-tag
    /// first), checksums complete, segments of 1,000 bytes; the offload
    /// metadata counts the frame as given.
    fn tcp_super(tags: &[(u16, u16)], payload: usize) -> (Vec<u8>, Offload) {
        let data: Vec<u8> = (0..payload).map(|i| (i * 7) as u8).collect();
        let mut untagged = Vec::new();
        etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
            .tcp(40000, 5201, 1, 65535)
            .ack(7)
            .write(&mut untagged, &data)
            .unwrap();
        let mut frame = untagged[..12].to_vec();
        for &(tpid, tci) in tags {
            frame.extend_from_slice(&tpid.to_be_bytes());
            frame.extend_from_slice(&tci.to_be_bytes());
        }
        frame.extend_from_slice(&untagged[12..]);
        let headers = 54 + 4 * tags.len();
        let o = Offload {
            gso: crate::wire::gso::GsoKind::TcpV4,
            ecn: false,
            segment_size: 1000,
            header_len: headers as u16,
            checksum: ChecksumState::Partial {
                start: (headers - 20) as u16,
                offset: 16,
            },
        };
        (frame, o)
    }

    /// `frame` as the ring holds it: its outer tag stripped into the
    /// frame header, the virtio_net_hdr's offsets counting what is left.
    fn as_received(frame: &[u8], o: Offload, tagged: bool) -> RingFrame {
        if !tagged {
            return (frame.to_vec(), 0, 0, 0, o.to_virtio());
        }
        let mut data = frame[..12].to_vec();
        data.extend_from_slice(&frame[16..]);
        let tpid = u16::from_be_bytes([frame[12], frame[13]]);
        let tci = u16::from_be_bytes([frame[14], frame[15]]);
        let mut o = o;
        o.shift(-(TAG_LEN as isize)).unwrap();
        o.header_len -= TAG_LEN as u16;
        (
            data,
            TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID,
            tci,
            tpid,
            o.to_virtio(),
        )
    }

    fn rejoined(batch: &Batch, i: usize) -> Vec<u8> {
        let sf = batch.super_frame(i).expect("a super-frame");
        let mut out = vec![0u8; crate::frame::superframe::SUPER_FRAME_MAX];
        let (n, _) = sf.rejoin_whole(batch.buf(i).frame(), &mut out).unwrap();
        out.truncate(n);
        out
    }

    /// A super-frame as the sender's stack handed it over: the TCP
    /// checksum field holds the pseudo-header sum, which the rejoined frame
    /// keeps (the checksum is completed by whoever segments it).
    fn with_partial_checksum(mut frame: Vec<u8>, o: &Offload) -> Vec<u8> {
        let ChecksumState::Partial { start, offset } = o.checksum else {
            return frame;
        };
        let at = (start + offset) as usize;
        frame[at..at + 2].copy_from_slice(&[0x12, 0x34]);
        frame
    }

    #[test]
    fn lent_payloads_keep_their_blocks_until_the_next_receive() {
        let (a, oa) = tcp_super(&[], 3000);
        let (b, ob) = tcp_super(&[(0x88a8, 100), (0x8100, 200)], 2500);
        let (a, b) = (with_partial_checksum(a, &oa), with_partial_checksum(b, &ob));
        let plain = frame(0x55, 60);
        let mut ring = ring_of(&[
            vec![as_received(&a, oa, false)],
            vec![(plain.clone(), 0, 0, 0, Offload::NONE.to_virtio())],
            vec![as_received(&b, ob, true)],
            vec![],
        ]);
        let mut cursor = Cursor::default();
        let mut batch = Batch::new();
        // SAFETY (test): closed below before the ring receives again.
        unsafe { batch.open_lending() };
        assert_eq!(recv_blocks(&mut ring, &mut cursor, &mut batch), 3);
        let map = ring.map.as_ptr() as usize..ring.map.as_ptr() as usize + ring.map.len();
        for i in [0, 2] {
            let sf = batch.super_frame(i).expect("a super-frame");
            assert!(sf.is_lent(), "frame {i} lent");
            assert!(
                map.contains(&(sf.payload().as_ptr() as usize)),
                "read in the ring"
            );
        }
        assert_eq!(rejoined(&batch, 0), a);
        // The trunk's frame: its S-tag back in place, headers and payload
        // as they were on the wire.
        assert_eq!(&batch.buf(2).frame()[12..16], &[0x88, 0xa8, 0, 100]);
        assert_eq!(rejoined(&batch, 2), b);
        assert_eq!(batch.buf(1).frame(), &plain[..]);
        // Blocks 0 and 2 are kept, block 1 went back at once.
        assert_eq!(
            (0..3).map(|i| block_status(&ring, i)).collect::<Vec<_>>(),
            [TP_STATUS_USER, TP_STATUS_KERNEL, TP_STATUS_USER]
        );
        batch.close_lending();
        batch.clear();
        assert_eq!(recv_blocks(&mut ring, &mut cursor, &mut batch), 0);
        assert_eq!(block_status(&ring, 0), TP_STATUS_KERNEL);
        assert_eq!(block_status(&ring, 2), TP_STATUS_KERNEL);
    }

    #[test]
    fn without_a_lending_window_super_frames_are_copied() {
        let (a, oa) = tcp_super(&[(0x8100, 300)], 3000);
        let mut ring = ring_of(&[vec![as_received(&a, oa, true)], vec![]]);
        let (mut cursor, mut batch) = (Cursor::default(), Batch::new());
        assert_eq!(recv_blocks(&mut ring, &mut cursor, &mut batch), 1);
        assert!(!batch.super_frame(0).unwrap().is_lent());
        assert_eq!(rejoined(&batch, 0), a);
        assert_eq!(block_status(&ring, 0), TP_STATUS_KERNEL);
    }

    #[test]
    fn a_ring_never_keeps_every_block() {
        // Two blocks: the first is kept; lending the second would leave the
        // kernel no block, so it is copied and goes back.
        let (a, oa) = tcp_super(&[], 3000);
        let (b, ob) = tcp_super(&[], 2000);
        let mut ring = ring_of(&[
            vec![as_received(&a, oa, false)],
            vec![as_received(&b, ob, false)],
        ]);
        let (mut cursor, mut batch) = (Cursor::default(), Batch::new());
        // SAFETY (test): closed below before the ring receives again.
        unsafe { batch.open_lending() };
        assert_eq!(recv_blocks(&mut ring, &mut cursor, &mut batch), 2);
        assert!(batch.super_frame(0).unwrap().is_lent());
        assert!(!batch.super_frame(1).unwrap().is_lent());
        assert_eq!((rejoined(&batch, 0), rejoined(&batch, 1)), (a, b));
        assert_eq!(block_status(&ring, 0), TP_STATUS_USER);
        assert_eq!(block_status(&ring, 1), TP_STATUS_KERNEL);
        batch.close_lending();
        ring.release_kept();
        assert_eq!(block_status(&ring, 0), TP_STATUS_KERNEL);
    }

    #[test]
    fn a_tag_goes_back_in_place_only_with_room_in_front() {
        let (a, oa) = tcp_super(&[(0x8100, 300)], 3000);
        let mut ring = ring_of(&[vec![as_received(&a, oa, true)]]);
        let at = field::BLOCK_HDR_LEN;
        // The frame starts 92 bytes after its header: 20 bytes of room.
        assert!(!ring.restore_tag_in_place(at, at + TPACKET3_HDRLEN + 3, 100, (0x8100, 1)));
        assert!(!ring.restore_tag_in_place(at, at + 92, RING_BLOCK, (0x8100, 1)));
        assert!(!ring.restore_tag_in_place(at, at + 92, 11, (0x8100, 1)));
        let len = a.len() - TAG_LEN;
        assert!(ring.restore_tag_in_place(at, at + 92, len, (0x8100, 300)));
        let block = ring.user_block().unwrap();
        assert_eq!(&block[at + 88..at + 88 + a.len()], &a[..]);
    }

    #[test]
    fn tx_slot_layout_matches_the_kernel_headers() {
        use libc::tpacket2_hdr;
        assert_eq!(offset_of!(tpacket2_hdr, tp_status), tx_field::STATUS);
        assert_eq!(offset_of!(tpacket2_hdr, tp_len), tx_field::LEN);
        assert_eq!(offset_of!(tpacket2_hdr, tp_snaplen), tx_field::SNAPLEN);
        assert_eq!(
            libc::TPACKET2_HDRLEN - std::mem::size_of::<libc::sockaddr_ll>(),
            tx_field::DATA
        );
        assert_eq!(libc::TP_STATUS_SEND_REQUEST, TP_STATUS_SEND_REQUEST);
        assert_eq!(libc::TP_STATUS_SENDING, TP_STATUS_SENDING);
    }

    #[test]
    fn tx_ring_queues_in_order_and_stops_when_full() {
        let mut ring = tx_ring(2);
        assert_eq!(ring.max_frame(), 2048 - 42);
        assert!(!ring.queued());
        let a = frame(0xaa, 60);
        let b = frame(0xbb, 1522);
        assert!(ring.push(&a));
        assert!(ring.queued());
        assert!(ring.push(&b));
        // Both slots are the kernel's now: the third frame is refused.
        assert!(!ring.has_room());
        assert!(!ring.push(&a));
        let (st, s0) = ring.slot_copy(0);
        assert_eq!(st, TP_STATUS_SEND_REQUEST);
        let len = |s: &[u8], at: usize| u32::from_ne_bytes(s[at - 4..at].try_into().unwrap());
        assert_eq!(len(&s0, tx_field::LEN), 70);
        assert_eq!(len(&s0, tx_field::SNAPLEN), 70);
        let vnet = &s0[tx_field::DATA - 4..tx_field::FRAME - 4];
        assert_eq!(
            vnet,
            &[0, 0, 60, 0, 0, 0, 0, 0, 0, 0],
            "no offload, hdr_len = frame"
        );
        assert_eq!(&s0[tx_field::FRAME - 4..][..60], &a[..]);
        let (_, s1) = ring.slot_copy(1);
        assert_eq!(len(&s1, tx_field::LEN), 1532);
        assert_eq!(&s1[tx_field::FRAME - 4..][..1522], &b[..]);
        // The kernel took slot 0 (SENDING, not free yet), then freed it.
        ring.status(0).store(TP_STATUS_SENDING, Ordering::Release);
        assert!(!ring.push(&a));
        ring.status(0).store(0, Ordering::Release);
        assert!(ring.push(&b), "slot 0 reused once the kernel freed it");
        // A slot the kernel rejected (PACKET_LOSS off) is user space's too.
        ring.status(1)
            .store(libc::TP_STATUS_WRONG_FORMAT, Ordering::Release);
        assert!(ring.has_room());
        // Too long for a slot: refused without touching it.
        assert!(!ring.push(&vec![0u8; 2048 - 41]));
        assert_eq!(ring.slot_copy(1).0, libc::TP_STATUS_WRONG_FORMAT);
    }

    #[test]
    fn tx_ring_layouts_are_checked() {
        // SAFETY (test): as in `tx_ring`.
        let fd = unsafe { libc::memfd_create(c"xc-tx-bad".as_ptr(), 0) };
        // SAFETY (test): fresh fd owned here.
        let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        // SAFETY (test): resize the memfd we own.
        assert_eq!(unsafe { libc::ftruncate(fd.as_raw_fd(), 4096) }, 0);
        let map = || Mmap::shared(&fd, 4096).unwrap();
        assert!(TxRing::new(map(), 2048, 3).is_none(), "does not fit");
        assert!(TxRing::new(map(), 2040, 2).is_none(), "unaligned slots");
        assert!(TxRing::new(map(), 32, 2).is_none(), "no room for a frame");
        assert!(TxRing::new(map(), 2048, 0).is_none());
        assert!(TxRing::new(map(), 2048, 2).is_some());
    }

    fn is_root() -> bool {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }

    #[test]
    fn opening_reports_missing_interface_and_privilege() {
        let e = AfPacketPort::open("xc-missing0", &AfPacketOptions::default())
            .err()
            .unwrap();
        assert!(e.to_string().contains("xc-missing0"), "{e}");
        if !is_root() {
            let e = AfPacketPort::open("lo", &AfPacketOptions::default())
                .err()
                .unwrap();
            assert!(e.to_string().contains("CAP_NET_RAW"), "{e}");
        }
    }

    #[test]
    fn mtu_too_small_is_named() {
        if !is_root() {
            return;
        }
        let opts = AfPacketOptions {
            required_mtu: u32::MAX,
            ..AfPacketOptions::default()
        };
        let e = AfPacketPort::open("lo", &opts).err().unwrap();
        assert!(
            e.to_string().contains("MTU") && e.to_string().contains("lo"),
            "{e}"
        );
    }

    /// On loopback a sent frame comes back as received: the kernel strips
    /// its outer tag and the ring walker must put it back (root only).
    #[test]
    fn loopback_round_trip_restores_the_outer_tag() {
        if !is_root() {
            eprintln!("skipping loopback_round_trip_restores_the_outer_tag: needs CAP_NET_RAW");
            return;
        }
        let Ok(mut port) = AfPacketPort::open("lo", &AfPacketOptions::default()) else {
            eprintln!("skipping: loopback is down in this namespace");
            return;
        };
        let marker: [u8; 8] = *b"xc-ring!";
        let mut f = vec![0x02, 0x78, 0x63, 0, 0, 2, 0x02, 0x78, 0x63, 0, 0, 1];
        f.extend_from_slice(&[0x88, 0xa8, 0x00, 100, 0x81, 0x00, 0x00, 200, 0x08, 0x00]);
        f.extend_from_slice(&[0x45; 20]);
        f.extend_from_slice(&marker);
        f.resize(80, 0);
        // Once through a plain socket (a socket with a TX ring sends
        // only what its ring holds)…
        let plain = open_tx_socket("lo").unwrap();
        assert_eq!(send_frames(&plain, std::iter::once(&f[..])), 1);
        // … and once through the port's TX ring.
        let mut out = Batch::new();
        assert!(out.push(&f));
        out.set_verdict(0, crate::frame::Verdict::Forward(0));
        assert_eq!(port.send(Outgoing::scan(0, &out)).unwrap(), 1);
        assert!(!port.tx_pending);
        let mut batch = Batch::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        // Both copies (sendmmsg, then the TX ring) come back byte for byte.
        let mut got = Vec::new();
        while got.len() < 2 && std::time::Instant::now() < deadline {
            batch.clear();
            port.recv(&mut batch).unwrap();
            for i in 0..batch.len() {
                let fr = batch.buf(i).frame();
                if fr.windows(8).any(|w| w == marker) {
                    got.push(fr.to_vec());
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(got.len(), 2, "both frames came back on lo");
        for g in got {
            assert_eq!(g, f, "outer 0x88a8 tag restored, inner tag kept");
        }
        let _ = port.take_stats();
        port.clear_error();
    }

    /// A new fanout group gets an id no other group has; other sockets
    /// join it by that id (root only).
    #[test]
    fn new_fanout_groups_are_unique_and_joinable() {
        if !is_root() {
            eprintln!("skipping new_fanout_groups_are_unique_and_joinable: needs CAP_NET_RAW");
            return;
        }
        let opts = |fanout| AfPacketOptions {
            fanout,
            block_count: 2,
            block_size: 1 << 12,
            tx_slots: 32,
            ..AfPacketOptions::default()
        };
        let Ok(a) = AfPacketPort::open("lo", &opts(Fanout::New)) else {
            eprintln!("skipping: loopback is down in this namespace");
            return;
        };
        let b = AfPacketPort::open("lo", &opts(Fanout::New)).unwrap();
        let (ga, gb) = (a.fanout_group().unwrap(), b.fanout_group().unwrap());
        assert_ne!(ga, gb);
        let c = AfPacketPort::open("lo", &opts(Fanout::Join(ga))).unwrap();
        assert_eq!(c.fanout_group(), Some(ga));
        let plain = AfPacketPort::open("lo", &opts(Fanout::None)).unwrap();
        assert_eq!(plain.fanout_group(), None);
    }
}
