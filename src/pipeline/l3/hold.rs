//! Packets waiting for their next hop's MAC: while an ARP request or
//! neighbour solicitation is out, a routed packet is held instead of
//! dropped, as the kernel's neighbour queue does, and sent in order once
//! the neighbour answers.
//!
//! Contract:
//! - Bounded: at most [`HOLD_PACKETS`] packets per worker and
//!   [`HOLD_PER_NEIGHBOR`] per neighbour; a packet that finds no room is
//!   dropped as `neighbor-unresolved` (its buffer becomes the request, as
//!   without a queue). The buffers are allocated once, with the queue.
//! - A held packet is marked and picked its link; it waits with what the
//!   egress tail needs to finish it (link, tags to pop, PCP rule, parse).
//! - [`HoldQueue::release`] (the driver calls it after every batch, and a
//!   worker while it idles) moves, in arrival order, every packet whose
//!   neighbour is known into a batch, finished (tags, MACs) and sent; sends
//!   one more request per waiting neighbour every request interval; and
//!   drops packets held longer than [`HOLD_MS`] (`neighbor-unresolved`,
//!   in the batch so that a capture sees them).
//! - While packets wait for a neighbour, later packets for it wait behind
//!   them ([`HoldQueue::waiting`]): the flow is not reordered.
//! - Each held packet is counted once: as sent or dropped when it leaves
//!   the queue; [`HoldQueue::len`] is how many wait now.

use super::reply;
use crate::frame::{Batch, DropReason, Meta, Verdict};
use crate::pipeline::egress::{encap, finish_any, Out};
use crate::pipeline::stats::Counters;
use crate::plan::{Family, Plan};
use crate::wire::{FrameInfo, PacketBuf};

/// Packets a worker holds at most.
pub const HOLD_PACKETS: usize = 64;
/// Packets held at most per neighbour.
pub const HOLD_PER_NEIGHBOR: usize = 16;
/// A held packet is dropped after this long without an answer (the kernel
/// gives up after three probes a second apart).
pub const HOLD_MS: u64 = 3_000;

/// One held packet and how to finish it.
struct Held {
    buf: PacketBuf,
    info: FrameInfo,
    out: Out,
    pop: u8,
    pcp_from_dscp: bool,
    peering: u16,
    since_ms: u64,
}

/// A worker's held packets, in arrival order.
pub struct HoldQueue {
    entries: Vec<Held>,
    len: usize,
}

impl Default for HoldQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for HoldQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HoldQueue").field("len", &self.len).finish()
    }
}

impl HoldQueue {
    /// An empty queue with its [`HOLD_PACKETS`] buffers allocated.
    pub fn new() -> HoldQueue {
        HoldQueue {
            entries: (0..HOLD_PACKETS)
                .map(|_| Held {
                    buf: PacketBuf::new(),
                    info: FrameInfo::default(),
                    out: Out::default(),
                    pop: 0,
                    pcp_from_dscp: false,
                    peering: 0,
                    since_ms: 0,
                })
                .collect(),
            len: 0,
        }
    }

    /// Packets waiting now.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no packet waits.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Do packets of `peering` wait for the neighbour in `slot`?
    #[inline(always)]
    pub fn waiting(&self, peering: u16, slot: u8) -> bool {
        self.len != 0
            && self.entries[..self.len]
                .iter()
                .any(|e| e.peering == peering && e.out.slot == slot)
    }

    /// Hold a copy of the packet in `buf` (marked, not yet encapsulated)
    /// for `out`'s neighbour. `false` when there is no room.
    #[allow(clippy::too_many_arguments)]
    pub fn hold(
        &mut self,
        peering: u16,
        out: Out,
        pop: u8,
        pcp_from_dscp: bool,
        buf: &PacketBuf,
        info: &FrameInfo,
        now_ms: u64,
    ) -> bool {
        // A super-frame's payload lives beside the batch, not in `buf`:
        // it cannot wait here (the caller counts it dropped).
        if buf.tail() != 0 {
            return false;
        }
        let same = self.entries[..self.len]
            .iter()
            .filter(|e| e.peering == peering && e.out.slot == out.slot)
            .count();
        if same >= HOLD_PER_NEIGHBOR {
            return false;
        }
        let Some(e) = self.entries.get_mut(self.len) else {
            return false;
        };
        if !e.buf.load(buf.frame()) {
            return false;
        }
        e.info = *info;
        e.out = out;
        e.pop = pop;
        e.pcp_from_dscp = pcp_from_dscp;
        e.peering = peering;
        e.since_ms = now_ms;
        self.len += 1;
        true
    }

    /// Forget every held packet without counting it (a pipeline reset).
    pub fn forget(&mut self) {
        self.len = 0;
    }

    /// Keep the held packets of the peerings `keep` says still stand (in
    /// order), and drop the others counting each as `neighbor-unresolved`
    /// (a reload: packets of a peering whose links and neighbours the new
    /// plan kept go on waiting).
    pub fn keep_where(&mut self, keep: impl Fn(u16) -> bool, counters: &mut Counters) {
        let mut kept = 0;
        for i in 0..self.len {
            if keep(self.entries[i].peering) {
                self.entries.swap(kept, i);
                kept += 1;
            } else {
                counters.drop(DropReason::NeighborUnresolved);
                counters.held = counters.held.saturating_sub(1);
            }
        }
        self.len = kept;
    }

    /// Move what can leave into `batch` (see the module contract): held
    /// packets whose neighbour answered (`Forward`), expired ones
    /// (`Drop`), and one request per waiting neighbour when one is due
    /// (`Resolve`). Counts each. Returns the frames put in the batch; it
    /// stops when the batch is full (the rest waits for the next call).
    pub fn release(
        &mut self,
        plan: &Plan,
        now_ms: u64,
        batch: &mut Batch,
        counters: &mut Counters,
    ) -> usize {
        let before = batch.len();
        let mut kept = 0;
        for i in 0..self.len {
            if batch.is_full() {
                // Keep this and every later entry, in order.
                for j in i..self.len {
                    self.entries.swap(kept, j);
                    kept += 1;
                }
                self.len = kept;
                return batch.len() - before;
            }
            let e = &mut self.entries[i];
            let Some(p) = plan.l3.get(e.peering as usize) else {
                leave(
                    batch,
                    e,
                    Verdict::Drop(DropReason::NeighborUnresolved),
                    counters,
                );
                continue;
            };
            if let Some(mac) = p.neighbors.lookup(e.out.slot as usize, now_ms) {
                let (pop, pcp) = (e.pop, e.pcp_from_dscp);
                let (out, info) = (e.out, e.info);
                let v = finish_any(&out, pop, pcp, Some(&mac), &mut e.buf, &info);
                if let Verdict::Forward(_) = v {
                    counters.l3.routed += 1;
                }
                leave(batch, e, v, counters);
                continue;
            }
            if now_ms.saturating_sub(e.since_ms) > HOLD_MS {
                leave(
                    batch,
                    e,
                    Verdict::Drop(DropReason::NeighborUnresolved),
                    counters,
                );
                continue;
            }
            // Still waiting: ask again when a request is due.
            if p.neighbors.claim_request(e.out.slot as usize, now_ms) {
                if let Some(buf) = batch.next_buf() {
                    if request(plan, e, buf) {
                        batch.commit();
                        let k = batch.len() - 1;
                        let (_, meta) = batch.get_mut(k);
                        meta.verdict = Verdict::Resolve(e.out.port);
                        counters.l3.nd_requests += 1;
                    }
                }
            }
            self.entries.swap(kept, i);
            kept += 1;
        }
        self.len = kept;
        batch.len() - before
    }
}

/// Put held packet `e` into `batch` with verdict `v` (its buffer swapped
/// with the batch's spare one, so nothing is copied) and count it.
fn leave(batch: &mut Batch, e: &mut Held, v: Verdict, counters: &mut Counters) {
    counters.held = counters.held.saturating_sub(1);
    let Some(buf) = batch.next_buf() else {
        counters.count(Verdict::Drop(DropReason::NeighborUnresolved), e.buf.len());
        return;
    };
    std::mem::swap(buf, &mut e.buf);
    batch.commit();
    let k = batch.len() - 1;
    let (buf, meta): (&mut PacketBuf, &mut Meta) = batch.get_mut(k);
    meta.info = e.info;
    meta.verdict = v;
    counters.count(v, buf.len());
}

/// Build into `buf` the request for held packet `e`'s neighbour: a copy of
/// the packet turned into an ARP request / neighbour solicitation from our
/// address on its link, with the link's tags.
fn request(plan: &Plan, e: &Held, buf: &mut PacketBuf) -> bool {
    let Some(p) = plan.l3.get(e.peering as usize) else {
        return false;
    };
    // The slot is the link's side and the family (`neighbor_slot`).
    let Some(link) = p
        .links
        .get(e.out.slot as usize / 2)
        .and_then(Option::as_ref)
    else {
        return false;
    };
    let fam = if e.out.slot % 2 == 1 {
        Family::V6
    } else {
        Family::V4
    };
    if !buf.load(e.buf.frame()) || !encap(&e.out, e.pop, 0, buf) {
        return false;
    }
    let l3 = 14 + 4 * e.out.count as usize;
    buf.set_len(buf.capacity_from_head());
    let n = match fam {
        Family::V4 => match (link.own_v4, link.peer_v4) {
            (Some(own), Some(peer)) => {
                reply::arp_request(buf.frame_mut(), l3, &link.mac, own, peer)
            }
            _ => None,
        },
        Family::V6 => match (link.own_v6, link.peer_v6) {
            (Some(own), Some(peer)) => reply::nd_solicit(buf.frame_mut(), l3, &link.mac, own, peer),
            _ => None,
        },
    };
    match n {
        Some(n) => {
            buf.set_len(n.max(60));
            true
        }
        None => false,
    }
}
