//! IPv4 longest-prefix match, compressed: a Poptrie (Asai & Ohara,
//! SIGCOMM 2015) under a direct-pointing top level.
//!
//! # Contract
//! - **Structure.** A top level of `2^top_bits` slots (`top_bits` is 12
//!   for small tables, 16 for large ones) indexed by the top bits of the
//!   address. A slot holds either a route (every address of the slot has
//!   the same answer) or a pointer to an immutable *subtree*: Poptrie
//!   nodes of 6-bit stride, each a 64-bit `vector` (which of the 64
//!   positions has a child node) and a 64-bit `leafvec` (where a run of
//!   equal answers starts among the other positions), with the children
//!   and the (run-compressed) leaves in two contiguous blocks indexed by
//!   population count. A lookup reads the slot, then one node per 6 bits
//!   below it (at most 3 for `top_bits = 16`), then one leaf.
//! - **Size.** A table costs what its prefixes need: 8 bytes per top slot
//!   plus ~24 bytes per node and 4 bytes per leaf run; no huge first level.
//! - **Concurrency** (one writer, lock-free readers, as [`super::v4`]).
//!   Subtrees are never modified after they are linked. A single
//!   [`Poptrie4Writer::insert`] / [`Poptrie4Writer::remove`] builds a fresh
//!   subtree for each top slot the prefix touches and links it with one
//!   atomic `Release` swap of the slot; readers load slots with `Acquire`
//!   (or `Relaxed` plus one `fence(Acquire)` in the batch path). The
//!   replaced subtree is freed through `crossbeam::epoch` after every
//!   reader pinned at the swap has unpinned. Every address therefore
//!   answers its old or its new route during an update (a prefix shorter
//!   than the top level changes slot by slot). [`Poptrie4Writer::apply`]
//!   builds a whole new table from the rule set and publishes it with one
//!   root swap (the root scheme of the `mem` module): a batch is seen whole
//!   or not at all.
//! - The writer keeps the rule set in address order (a `BTreeMap`), which
//!   is what every rebuild reads; answers are exact for any sequence of
//!   overlapping inserts, replaces and removes, checked against
//!   [`super::oracle::Oracle4`].
//! - Batch lookups prefetch the 32 slots of a batch, then walk the lanes.

use super::mem::{prefetch, Root, RootWriter};
use super::table::{NH_MASK, VALID};
use super::{LpmError, NextHop, Route, Update, BATCH, MAX_NEXT_HOP};
use crossbeam::epoch::{self, Guard};
use ipnet::Ipv4Net;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Bits per node.
const STRIDE: u32 = 6;
/// Words (`u32`) per node: vector (2), leafvec (2), leaf base, child base.
const NODE_WORDS: usize = 6;
/// Top level of small tables: 4,096 slots (32 KiB).
const SMALL_TOP: u32 = 12;
/// Top level of large tables: 65,536 slots (512 KiB).
const LARGE_TOP: u32 = 16;
/// A table grows to the large top level above this many prefixes...
const GROW_AT: usize = 32_768;
/// ...and shrinks back to the small one below this many.
const SHRINK_AT: usize = 8_192;

/// Route bits (`VALID | next hop`) of a next hop.
#[inline(always)]
fn route_bits(nh: NextHop) -> u32 {
    VALID | (nh & NH_MASK)
}

/// Slot value for a route.
#[inline(always)]
fn leaf_slot(route: u32) -> u64 {
    (u64::from(route) << 1) | 1
}

/// The 6 bits of `addr` at bit position `pos` counted from the top (bits
/// past the 32nd read as zero).
#[inline(always)]
fn chunk(addr: u32, pos: u32) -> u32 {
    (((u64::from(addr) << 32) >> (64 - STRIDE - pos)) & 63) as u32
}

/// Free a subtree that was linked from a slot (`slot` even, non-zero).
///
/// # Safety
/// `slot` came from [`link_sub`] and no reference into the subtree can
/// be used any more (it is unlinked and every reader that could have
/// loaded it has unpinned, or the table owning it is being dropped).
unsafe fn free_sub(slot: u64) {
    let ptr = slot as usize as *mut u32;
    // SAFETY (caller's contract): `ptr` is the start of a `Box<[u32]>`
    // leaked by `link_sub`, whose first word is its length.
    unsafe {
        let len = *ptr as usize;
        drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)));
    }
}

/// Leak a built subtree into a slot value (an even pointer).
fn link_sub(data: Box<[u32]>) -> u64 {
    debug_assert_eq!(data[0] as usize, data.len());
    let ptr = Box::into_raw(data).cast::<u32>();
    let slot = ptr as usize as u64;
    debug_assert_eq!(slot & 1, 0, "u32 alignment keeps the tag bit clear");
    slot
}

/// The subtree a (non-leaf) slot value points to.
///
/// # Safety
/// `slot` is a subtree slot loaded (with acquire semantics) from a table
/// that is valid for `'g`, and the subtree is not freed during `'g`: it
/// stays linked, or is freed through the epoch collector after the guard
/// of `'g` is dropped.
#[inline(always)]
unsafe fn sub_data<'g>(slot: u64) -> &'g [u32] {
    let ptr = slot as usize as *const u32;
    // SAFETY (caller's contract): `ptr` starts a live, fully written and
    // never again modified `[u32]` whose first word is its length.
    unsafe { std::slice::from_raw_parts(ptr, *ptr as usize) }
}

/// Walk a subtree from its root node for `addr`; returns route bits.
#[inline(always)]
fn walk(data: &[u32], addr: u32, top_bits: u32) -> u32 {
    let mut pos = top_bits;
    let mut n = 1usize;
    loop {
        let v = chunk(addr, pos);
        let bit = 1u64 << v;
        let upto = (bit << 1).wrapping_sub(1);
        let vector = u64::from(data[n]) | (u64::from(data[n + 1]) << 32);
        if vector & bit != 0 {
            let rank = (vector & upto).count_ones() as usize - 1;
            n = data[n + 5] as usize + NODE_WORDS * rank;
            pos += STRIDE;
        } else {
            let leafvec = u64::from(data[n + 2]) | (u64::from(data[n + 3]) << 32);
            let rank = (leafvec & upto).count_ones() as usize - 1;
            return data[data[n + 4] as usize + rank];
        }
    }
}

/// One published version: the top level; subtrees hang off its slots.
pub(crate) struct Snap {
    top_bits: u32,
    top: Box<[AtomicU64]>,
}

impl Drop for Snap {
    fn drop(&mut self) {
        for s in self.top.iter() {
            let v = s.load(Ordering::Relaxed);
            if v & 1 == 0 {
                // SAFETY: a snap owns the subtrees linked from its slots
                // (each is linked from exactly one slot of one snap; an
                // unlinked one is owned by the epoch collector instead), and
                // a snap is dropped only when no reader can reach it (the
                // root scheme of `mem`), so neither can reach its subtrees.
                unsafe { free_sub(v) };
            }
        }
    }
}

impl Snap {
    /// Route bits for `addr`.
    #[inline(always)]
    fn lookup(&self, addr: u32) -> u32 {
        let s = self.top[(addr >> (32 - self.top_bits)) as usize].load(Ordering::Acquire);
        if s & 1 != 0 {
            return (s >> 1) as u32;
        }
        // SAFETY: `s` was loaded with Acquire from this snap, which the
        // caller holds under a pinned guard (or as the writer); a subtree
        // is freed only after being unlinked and a grace period.
        walk(unsafe { sub_data(s) }, addr, self.top_bits)
    }

    /// Exactly one batch: prefetch the 32 slots, then walk each lane.
    ///
    /// Measured against loading all 32 slots first, fencing, prefetching
    /// the subtree roots and then walking (the DIR-24-8 shape): that was
    /// slower on VRF-size tables (which are cache resident) and no faster
    /// on the 1.07M-prefix table (docs/lpm.md).
    #[inline(never)]
    fn lookup_32(&self, addrs: &[u32; BATCH], out: &mut [Route; BATCH]) {
        let shift = 32 - self.top_bits;
        let top = &*self.top;
        for &a in addrs {
            prefetch(&top[(a >> shift) as usize]);
        }
        for (o, &a) in out.iter_mut().zip(addrs) {
            o.0 = self.lookup(a);
        }
    }

    /// Any number of addresses, in batches of [`BATCH`].
    #[inline]
    fn lookup_slice(&self, addrs: &[u32], out: &mut [Route]) {
        assert_eq!(
            addrs.len(),
            out.len(),
            "lookup_batch: addrs and out differ in length"
        );
        let mut chunks = addrs.chunks_exact(BATCH);
        let mut out_chunks = out.chunks_exact_mut(BATCH);
        for (a, o) in (&mut chunks).zip(&mut out_chunks) {
            self.lookup_32(
                a.try_into().expect("chunk of BATCH"),
                o.try_into().expect("chunk of BATCH"),
            );
        }
        for (o, &a) in out_chunks
            .into_remainder()
            .iter_mut()
            .zip(chunks.remainder())
        {
            o.0 = self.lookup(a);
        }
    }
}

/// Builds subtrees; its buffers are reused from one subtree to the next.
#[derive(Default)]
struct Builder {
    /// Nodes, `NODE_WORDS` each (leaf bases relative to `leaves`).
    nodes: Vec<u32>,
    leaves: Vec<u32>,
}

impl Builder {
    /// The subtree of one slot of a `top_bits` top level: `default` is the
    /// route of the longest prefix of at most `top_bits` covering the
    /// slot, `rules` the longer prefixes inside it as `(network, len,
    /// route)`, sorted by network then length. `None` when the slot is
    /// uniform (no rules).
    fn build(&mut self, top_bits: u32, default: u32, rules: &[(u32, u8, u32)]) -> u64 {
        if rules.is_empty() {
            return leaf_slot(default);
        }
        self.nodes.clear();
        self.leaves.clear();
        self.nodes.resize(NODE_WORDS, 0);
        self.node(0, top_bits, default, rules);
        // Layout: [length][nodes][leaves]; node words are absolute.
        let leaf_base = 1 + self.nodes.len() as u32;
        let len = leaf_base as usize + self.leaves.len();
        let mut data = Vec::with_capacity(len);
        data.push(len as u32);
        for (i, w) in self.nodes.iter().enumerate() {
            data.push(match i % NODE_WORDS {
                4 => w + leaf_base,
                5 => w + 1,
                _ => *w,
            });
        }
        data.extend_from_slice(&self.leaves);
        link_sub(data.into_boxed_slice())
    }

    /// Fill node `at` (index into `nodes`, in words) covering bits
    /// `pos..pos+6` for the `rules` longer than `pos` (shorter ones are
    /// already in `default`, and skipped).
    fn node(&mut self, at: usize, pos: u32, default: u32, rules: &[(u32, u8, u32)]) {
        let end = pos + STRIDE;
        let mut vals = [default; 64];
        // Sorted by (network, len), a prefix comes after every prefix that
        // contains it: filling in this order leaves the longest match.
        for &(a, len, r) in rules {
            if u32::from(len) > pos && u32::from(len) <= end {
                let v = chunk(a, pos) as usize;
                let n = 1usize << (end - u32::from(len));
                vals[v..v + n].fill(r);
            }
        }
        let mut vector = 0u64;
        for &(a, len, _) in rules {
            if u32::from(len) > end {
                vector |= 1 << chunk(a, pos);
            }
        }
        let mut leafvec = 0u64;
        let leaf_start = self.leaves.len() as u32;
        let mut last = None;
        for (v, &r) in vals.iter().enumerate() {
            if vector & (1 << v) == 0 && last != Some(r) {
                leafvec |= 1 << v;
                self.leaves.push(r);
                last = Some(r);
            }
        }
        let child_start = self.nodes.len();
        self.nodes
            .resize(child_start + NODE_WORDS * vector.count_ones() as usize, 0);
        let w = &mut self.nodes[at..at + NODE_WORDS];
        w[0] = vector as u32;
        w[1] = (vector >> 32) as u32;
        w[2] = leafvec as u32;
        w[3] = (leafvec >> 32) as u32;
        w[4] = leaf_start;
        w[5] = child_start as u32;
        // Children in position order, each with the rules under it.
        let mut child = child_start;
        let mut i = 0;
        while i < rules.len() {
            let (a, len, _) = rules[i];
            if u32::from(len) <= end {
                i += 1;
                continue;
            }
            let v = chunk(a, pos);
            let mut j = i;
            while j < rules.len() && chunk(rules[j].0, pos) == v {
                j += 1;
            }
            self.node(child, end, vals[v as usize], &rules[i..j]);
            child += NODE_WORDS;
            i = j;
        }
    }
}

/// Rule-set key: network in the high bits, length in the low 8, so that
/// the map is sorted by network then length.
#[inline]
fn rule_key(addr: u32, len: u8) -> u64 {
    (u64::from(addr) << 8) | u64::from(len)
}

#[inline]
fn mask(len: u32) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len)
    }
}

/// The single writer of a compressed IPv4 table. Not `Clone`.
pub struct Poptrie4Writer {
    root: RootWriter<Snap>,
    rules: BTreeMap<u64, NextHop>,
    builder: Builder,
    scratch: Vec<(u32, u8, u32)>,
    /// Bytes of the subtrees linked in the published table.
    sub_bytes: usize,
}

impl Default for Poptrie4Writer {
    fn default() -> Self {
        Self::new()
    }
}

impl Poptrie4Writer {
    /// An empty table.
    pub fn new() -> Self {
        let (snap, sub_bytes) =
            Self::build_snap(&BTreeMap::new(), SMALL_TOP, &mut Builder::default());
        Self {
            root: RootWriter::new(snap),
            rules: BTreeMap::new(),
            builder: Builder::default(),
            scratch: Vec::new(),
            sub_bytes,
        }
    }

    /// An empty table. `groups` is accepted for compatibility with the
    /// DIR-24-8 writer ([`super::v4::Poptrie4Writer`]) and ignored: this
    /// table has no fixed pools.
    pub fn with_tbl8_groups(groups: u32) -> Self {
        let _ = groups;
        Self::new()
    }

    /// A table holding `routes` (later duplicates replace earlier ones),
    /// built in one pass over the sorted rule set. `tbl8_groups` is
    /// ignored (see [`Self::with_tbl8_groups`]).
    pub fn from_routes(
        routes: impl IntoIterator<Item = (Ipv4Net, NextHop)>,
        tbl8_groups: u32,
    ) -> Result<Self, LpmError> {
        let _ = tbl8_groups;
        let mut v: Vec<(u64, usize, NextHop)> = Vec::new();
        for (i, (p, nh)) in routes.into_iter().enumerate() {
            if nh > MAX_NEXT_HOP {
                return Err(LpmError::NextHopTooLarge(nh));
            }
            let p = p.trunc();
            v.push((rule_key(p.network().into(), p.prefix_len()), i, nh));
        }
        v.sort_unstable_by_key(|&(k, i, _)| (k, i));
        // Keep the last of equal keys.
        v.dedup_by(|later, earlier| {
            if later.0 == earlier.0 {
                *earlier = *later;
                true
            } else {
                false
            }
        });
        let rules: BTreeMap<u64, NextHop> = v.into_iter().map(|(k, _, nh)| (k, nh)).collect();
        let mut builder = Builder::default();
        let top = Self::top_bits_for(rules.len(), SMALL_TOP);
        let (snap, sub_bytes) = Self::build_snap(&rules, top, &mut builder);
        Ok(Self {
            root: RootWriter::new(snap),
            rules,
            builder,
            scratch: Vec::new(),
            sub_bytes,
        })
    }

    /// Top level for a table of `n` prefixes that has `current` now.
    fn top_bits_for(n: usize, current: u32) -> u32 {
        if n > GROW_AT {
            LARGE_TOP
        } else if n < SHRINK_AT {
            SMALL_TOP
        } else {
            current
        }
    }

    /// A whole table from `rules`, and the bytes of its subtrees.
    fn build_snap(rules: &BTreeMap<u64, NextHop>, top_bits: u32, b: &mut Builder) -> (Snap, usize) {
        let slots = 1usize << top_bits;
        let shift = 32 - top_bits;
        let mut defaults = vec![0u32; slots];
        let mut top: Vec<AtomicU64> = Vec::with_capacity(slots);
        let mut bytes = 0;
        let mut pending: Vec<(u32, u8, u32)> = Vec::new();
        let mut pending_slot = 0usize;
        // Address order: every prefix of at most `top_bits` covering a
        // slot comes before the longer prefixes inside it, so a slot's
        // default is final when its first longer prefix shows up.
        let mut flush = |slot: usize,
                         pending: &mut Vec<(u32, u8, u32)>,
                         defaults: &[u32],
                         top: &mut Vec<AtomicU64>| {
            while top.len() < slot {
                top.push(AtomicU64::new(leaf_slot(defaults[top.len()])));
            }
            if !pending.is_empty() {
                let s = b.build(top_bits, defaults[slot], pending);
                // SAFETY: just built, not shared yet.
                bytes += unsafe { sub_data(s) }.len() * 4;
                top.push(AtomicU64::new(s));
                pending.clear();
            }
        };
        for (&k, &nh) in rules {
            let (a, len) = ((k >> 8) as u32, (k & 0xff) as u32);
            let r = route_bits(nh);
            if len <= top_bits {
                let first = (a >> shift) as usize;
                let n = 1usize << (top_bits - len);
                defaults[first..first + n].fill(r);
            } else {
                let slot = (a >> shift) as usize;
                if slot != pending_slot && !pending.is_empty() {
                    flush(pending_slot, &mut pending, &defaults, &mut top);
                }
                pending_slot = slot;
                pending.push((a, len as u8, r));
            }
        }
        if !pending.is_empty() {
            flush(pending_slot, &mut pending, &defaults, &mut top);
        }
        flush(slots, &mut pending, &defaults, &mut top);
        (
            Snap {
                top_bits,
                top: top.into_boxed_slice(),
            },
            bytes,
        )
    }

    /// Rebuild top slot `slot` of the published table from the rule set
    /// and link it (one atomic swap; the old subtree goes to the epoch
    /// collector).
    fn refresh_slot(&mut self, slot: usize, guard: &Guard) {
        let snap = self.root.current();
        let tb = snap.top_bits;
        let base = (slot as u32) << (32 - tb);
        let last = base | !mask(tb);
        let mut default = 0;
        for l in (0..=tb).rev() {
            if let Some(&nh) = self.rules.get(&rule_key(base & mask(l), l as u8)) {
                default = route_bits(nh);
                break;
            }
        }
        self.scratch.clear();
        for (&k, &nh) in self.rules.range(rule_key(base, 0)..=rule_key(last, 32)) {
            let len = (k & 0xff) as u32;
            if len > tb {
                self.scratch
                    .push(((k >> 8) as u32, len as u8, route_bits(nh)));
            }
        }
        let new = self.builder.build(tb, default, &self.scratch);
        let cell = &snap.top[slot];
        let old = cell.load(Ordering::Relaxed);
        if new == old {
            return;
        }
        if new & 1 == 0 {
            // SAFETY: just built, not shared yet.
            self.sub_bytes += unsafe { sub_data(new) }.len() * 4;
        }
        // Release: a reader that sees the new subtree sees it written.
        cell.store(new, Ordering::Release);
        if old & 1 == 0 {
            // SAFETY: the writer's own view of an unlinked subtree.
            self.sub_bytes -= unsafe { sub_data(old) }.len() * 4;
            guard.defer(move || {
                // SAFETY: `old` is unlinked (no new reader can load it); the
                // collector runs this only after every reader pinned at the
                // swap has unpinned, and nothing else frees it (it is no
                // longer in any snap's top).
                unsafe { free_sub(old) }
            });
        }
    }

    /// Rebuild the slots prefix `addr/len` touches.
    fn refresh(&mut self, addr: u32, len: u8) {
        let tb = self.root.current().top_bits;
        let want = Self::top_bits_for(self.rules.len(), tb);
        if want != tb {
            self.rebuild(want);
            return;
        }
        let guard = epoch::pin();
        let first = (addr >> (32 - tb)) as usize;
        let n = 1usize << tb.saturating_sub(u32::from(len));
        for slot in first..first + n {
            self.refresh_slot(slot, &guard);
        }
        guard.flush();
    }

    /// Build the whole table again and publish it with one root swap.
    fn rebuild(&mut self, top_bits: u32) {
        let (snap, bytes) = Self::build_snap(&self.rules, top_bits, &mut self.builder);
        self.root.publish(snap);
        self.sub_bytes = bytes;
    }

    /// A reader handle on this table; clone it for each worker.
    pub fn reader(&self) -> Poptrie4Reader {
        Poptrie4Reader {
            root: self.root.shared(),
        }
    }

    /// Add `prefix` (host bits ignored) → `next_hop`, or replace its next
    /// hop. Returns the previous next hop. Visible to readers at once,
    /// top slot by top slot (see the module contract).
    pub fn insert(
        &mut self,
        prefix: Ipv4Net,
        next_hop: NextHop,
    ) -> Result<Option<NextHop>, LpmError> {
        if next_hop > MAX_NEXT_HOP {
            return Err(LpmError::NextHopTooLarge(next_hop));
        }
        self.root.collect();
        let p = prefix.trunc();
        let (a, len) = (u32::from(p.network()), p.prefix_len());
        let old = self.rules.insert(rule_key(a, len), next_hop);
        if old != Some(next_hop) {
            self.refresh(a, len);
        }
        Ok(old)
    }

    /// Remove `prefix`; addresses under it fall back to the longest
    /// remaining prefix that covers them. Returns its next hop if present.
    pub fn remove(&mut self, prefix: Ipv4Net) -> Option<NextHop> {
        self.root.collect();
        let p = prefix.trunc();
        let (a, len) = (u32::from(p.network()), p.prefix_len());
        let old = self.rules.remove(&rule_key(a, len))?;
        self.refresh(a, len);
        Some(old)
    }

    /// Apply a batch and publish it atomically: the whole table is built
    /// again from the updated rule set and swapped in with one root swap,
    /// so readers see the table before or after the whole batch. On error
    /// nothing changes.
    pub fn apply(&mut self, updates: &[Update<Ipv4Net>]) -> Result<(), LpmError> {
        for u in updates {
            if let Update::Insert(_, nh) = u {
                if *nh > MAX_NEXT_HOP {
                    return Err(LpmError::NextHopTooLarge(*nh));
                }
            }
        }
        for u in updates {
            match u {
                Update::Insert(p, nh) => {
                    let p = p.trunc();
                    self.rules
                        .insert(rule_key(p.network().into(), p.prefix_len()), *nh);
                }
                Update::Remove(p) => {
                    let p = p.trunc();
                    self.rules
                        .remove(&rule_key(p.network().into(), p.prefix_len()));
                }
            }
        }
        let tb = Self::top_bits_for(self.rules.len(), self.root.current().top_bits);
        self.rebuild(tb);
        Ok(())
    }

    /// Next hop of exactly `prefix`, if present.
    pub fn get(&self, prefix: Ipv4Net) -> Option<NextHop> {
        let p = prefix.trunc();
        self.rules
            .get(&rule_key(p.network().into(), p.prefix_len()))
            .copied()
    }

    /// Longest-prefix match as readers see it now.
    pub fn lookup(&self, addr: Ipv4Addr) -> Option<NextHop> {
        Route(self.root.current().lookup(addr.into())).next_hop()
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// No prefix at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Every prefix and its next hop, in address order.
    pub fn routes(&self) -> impl Iterator<Item = (Ipv4Net, NextHop)> + '_ {
        self.rules.iter().map(|(&k, &nh)| {
            let net = Ipv4Net::new(Ipv4Addr::from((k >> 8) as u32), (k & 0xff) as u8)
                .expect("stored length is at most 32");
            (net, nh)
        })
    }

    /// Bytes used in all: [`Self::table_bytes`] plus an estimate of the
    /// writer's rule set (`BTreeMap` entries and node overhead).
    pub fn memory_bytes(&self) -> usize {
        // 12 bytes of key and value per entry, nodes ~2/3 full, plus
        // edges and headers: ~24 bytes per rule.
        self.table_bytes() + self.rules.len() * 24
    }

    /// Always 0: this table uses no transparent huge pages (it is small
    /// enough to live in cache). Kept for the DIR-24-8 writer's API.
    pub fn huge_page_bytes(&self) -> usize {
        0
    }

    /// Bytes of the published table (all committed: heap memory).
    pub fn resident_bytes(&self) -> usize {
        self.table_bytes()
    }

    /// Bytes of the lookup structure readers see: the top level and the
    /// subtrees linked from it.
    pub fn table_bytes(&self) -> usize {
        self.root.current().top.len() * 8 + self.sub_bytes
    }

    /// Always 0: this table has no tbl8 groups. Kept for the DIR-24-8
    /// writer's API.
    pub fn tbl8_groups_in_use(&self) -> u32 {
        0
    }
}

/// A lock-free read handle: `Clone + Send + Sync`, one per worker.
#[derive(Clone)]
pub struct Poptrie4Reader {
    root: Arc<Root<Snap>>,
}

impl Poptrie4Reader {
    /// [`Self::lookup_u32`] under the caller's pinned `guard`.
    #[inline(always)]
    pub(crate) fn lookup_pinned(&self, guard: &Guard, addr: u32) -> Option<NextHop> {
        Route(self.root.load(guard).lookup(addr)).next_hop()
    }

    /// [`Self::lookup_batch`] under the caller's pinned `guard`.
    #[inline(always)]
    pub(crate) fn lookup_batch_pinned(&self, guard: &Guard, addrs: &[u32], out: &mut [Route]) {
        self.root.load(guard).lookup_slice(addrs, out);
    }

    /// Longest-prefix match of `addr`. Pins an epoch guard per call; for
    /// many lookups use [`Self::lookup_batch`] or [`Self::pin`].
    #[inline]
    pub fn lookup(&self, addr: Ipv4Addr) -> Option<NextHop> {
        self.lookup_u32(addr.into())
    }

    /// [`Self::lookup`] of an address in host order.
    #[inline]
    pub fn lookup_u32(&self, addr: u32) -> Option<NextHop> {
        let guard = epoch::pin();
        Route(self.root.load(&guard).lookup(addr)).next_hop()
    }

    /// Look up every address of `addrs` (host order) into `out`, 32 at a
    /// time with prefetch, under one epoch guard. `out[i].next_hop()` is
    /// what [`Self::lookup_u32`] of `addrs[i]` answers.
    ///
    /// # Panics
    /// If `addrs` and `out` differ in length.
    #[inline]
    pub fn lookup_batch(&self, addrs: &[u32], out: &mut [Route]) {
        let guard = epoch::pin();
        self.root.load(&guard).lookup_slice(addrs, out);
    }

    /// Pin once and look up many times. Keep a view for one batch or one
    /// poll loop iteration: while it lives, retired memory is not freed.
    pub fn pin(&self) -> Poptrie4View<'_> {
        Poptrie4View {
            root: &self.root,
            guard: epoch::pin(),
        }
    }
}

/// A pinned reader: lookups without pinning cost. Not `Send`.
pub struct Poptrie4View<'r> {
    root: &'r Root<Snap>,
    guard: Guard,
}

impl Poptrie4View<'_> {
    /// Let the writer reclaim memory retired since this view was pinned,
    /// and stay pinned: cheaper than a new [`epoch::pin`].
    #[inline]
    pub fn repin(&mut self) {
        self.guard.repin();
    }

    /// Longest-prefix match of `addr` (host order).
    #[inline(always)]
    pub fn lookup(&self, addr: u32) -> Option<NextHop> {
        Route(self.root.load(&self.guard).lookup(addr)).next_hop()
    }

    /// Batch lookup, as [`Poptrie4Reader::lookup_batch`].
    ///
    /// # Panics
    /// If `addrs` and `out` differ in length.
    #[inline(always)]
    pub fn lookup_batch(&self, addrs: &[u32], out: &mut [Route]) {
        self.root.load(&self.guard).lookup_slice(addrs, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lpm::oracle::Oracle4;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn overlapping_insert_remove_uncovers_covering_prefix() {
        let mut w = Poptrie4Writer::new();
        let r = w.reader();
        w.insert(net("10.0.0.0/8"), 1).unwrap();
        w.insert(net("10.1.0.0/16"), 2).unwrap();
        w.insert(net("10.1.2.0/24"), 3).unwrap();
        w.insert(net("10.1.2.128/25"), 4).unwrap();
        w.insert(net("10.1.2.130/32"), 5).unwrap();
        assert_eq!(r.lookup(ip("10.9.9.9")), Some(1));
        assert_eq!(r.lookup(ip("10.1.9.9")), Some(2));
        assert_eq!(r.lookup(ip("10.1.2.1")), Some(3));
        assert_eq!(r.lookup(ip("10.1.2.129")), Some(4));
        assert_eq!(r.lookup(ip("10.1.2.130")), Some(5));
        assert_eq!(r.lookup(ip("11.0.0.0")), None);
        assert_eq!(w.remove(net("10.1.2.0/24")), Some(3));
        assert_eq!(r.lookup(ip("10.1.2.1")), Some(2));
        assert_eq!(r.lookup(ip("10.1.2.129")), Some(4));
        assert_eq!(w.remove(net("10.1.2.128/25")), Some(4));
        assert_eq!(r.lookup(ip("10.1.2.129")), Some(2));
        assert_eq!(w.remove(net("10.1.2.130/32")), Some(5));
        assert_eq!(r.lookup(ip("10.1.2.130")), Some(2));
        assert_eq!(w.remove(net("10.1.2.130/32")), None);
        assert_eq!(w.len(), 2);
        assert_eq!(w.remove(net("10.1.0.0/16")), Some(2));
        assert_eq!(r.lookup(ip("10.1.2.130")), Some(1));
        // Only the top level is left: no subtree.
        assert_eq!(w.table_bytes(), 8 << SMALL_TOP);
    }

    #[test]
    fn default_route_host_routes_and_errors() {
        let mut w = Poptrie4Writer::new();
        w.insert(net("0.0.0.0/0"), 9).unwrap();
        w.insert(net("255.255.255.255/32"), 1).unwrap();
        w.insert(net("0.0.0.0/32"), 2).unwrap();
        assert_eq!(w.lookup(ip("255.255.255.255")), Some(1));
        assert_eq!(w.lookup(ip("255.255.255.254")), Some(9));
        assert_eq!(w.lookup(ip("0.0.0.0")), Some(2));
        assert_eq!(w.lookup(ip("0.0.0.1")), Some(9));
        assert_eq!(w.insert(net("1.2.3.4/24"), 3).unwrap(), None);
        assert_eq!(w.get(net("1.2.3.0/24")), Some(3));
        assert_eq!(
            w.insert(net("1.0.0.0/8"), 1 << 24),
            Err(LpmError::NextHopTooLarge(1 << 24))
        );
        assert_eq!(
            w.apply(&[Update::Insert(net("1.0.0.0/8"), 1 << 24)]),
            Err(LpmError::NextHopTooLarge(1 << 24))
        );
        assert_eq!(w.len(), 4);
    }

    /// Random overlapping prefixes (dense in a few /16s so that nodes fill
    /// up), single updates, a batch and the switch between top levels,
    /// against the oracle.
    #[test]
    // Too slow under Miri (4,096-slot tables, thousands of lookups); the
    // concurrent test below covers the unsafe parts there.
    #[cfg_attr(miri, ignore)]
    fn matches_oracle_across_top_level_switch() {
        let mut rng = crate::lpm::gen::XorShift64::new(7);
        let mut w = Poptrie4Writer::new();
        let r = w.reader();
        let mut o = Oracle4::new();
        let rounds = if cfg!(miri) { 200 } else { 20_000 };
        let mut live = Vec::new();
        for i in 0..rounds {
            let a = match rng.below(3) {
                0 => 0x0a00_0000 | (rng.next_u32() & 0x0003_ffff),
                1 => 0xc0a8_0000 | (rng.next_u32() & 0xffff),
                _ => rng.next_u32(),
            };
            let p = Ipv4Net::new(Ipv4Addr::from(a), rng.below(33) as u8)
                .unwrap()
                .trunc();
            if rng.below(4) == 0 && !live.is_empty() {
                let q: Ipv4Net = live.swap_remove(rng.below(live.len() as u32) as usize);
                assert_eq!(w.remove(q), o.remove(q), "remove {q}");
            } else {
                let nh = i % 1000;
                assert_eq!(w.insert(p, nh).unwrap(), o.insert(p, nh), "insert {p}");
                live.push(p);
            }
        }
        // Enough distinct prefixes to switch to the large top level.
        let distinct = if cfg!(miri) { 0 } else { GROW_AT as u32 };
        for i in 0..distinct {
            let p = Ipv4Net::new(Ipv4Addr::from(0x2000_0000 + (i << 8)), 24).unwrap();
            assert_eq!(w.insert(p, i).unwrap(), o.insert(p, i));
            live.push(p);
        }
        let check = |w: &Poptrie4Writer, o: &Oracle4, rng: &mut crate::lpm::gen::XorShift64| {
            let mut addrs: Vec<u32> = (0..3000)
                .map(|i| match i % 3 {
                    0 => 0x0a00_0000 | (rng.next_u32() & 0x0003_ffff),
                    1 => 0xc0a8_0000 | (rng.next_u32() & 0xffff),
                    _ => rng.next_u32(),
                })
                .collect();
            for (p, _) in o.routes() {
                addrs.push(p.network().into());
                addrs.push(p.broadcast().into());
            }
            let mut out = vec![Route::NONE; addrs.len()];
            r.lookup_batch(&addrs, &mut out);
            for (a, got) in addrs.iter().zip(&out) {
                let want = o.lookup(Ipv4Addr::from(*a));
                assert_eq!(*got, want, "batch {}", Ipv4Addr::from(*a));
                assert_eq!(w.lookup(Ipv4Addr::from(*a)), want);
            }
            assert_eq!(w.len(), o.len());
        };
        check(&w, &o, &mut rng);
        if !cfg!(miri) {
            assert_eq!(w.root.current().top_bits, LARGE_TOP);
        }
        // A batch, then remove almost everything (back to the small top).
        let batch: Vec<Update<Ipv4Net>> = live
            .iter()
            .take(100)
            .map(|&p| Update::Remove(p))
            .chain([Update::Insert(net("10.0.0.0/9"), 77)])
            .collect();
        w.apply(&batch).unwrap();
        for u in &batch {
            match *u {
                Update::Insert(p, nh) => {
                    o.insert(p, nh);
                }
                Update::Remove(p) => {
                    o.remove(p);
                }
            }
        }
        check(&w, &o, &mut rng);
        let all: Vec<Ipv4Net> = o.routes().map(|(p, _)| p).collect();
        for p in all.iter().skip(50) {
            assert_eq!(w.remove(*p), o.remove(*p));
        }
        check(&w, &o, &mut rng);
        assert_eq!(w.root.current().top_bits, SMALL_TOP);
        let built = Poptrie4Writer::from_routes(o.routes(), 0).unwrap();
        assert_eq!(built.table_bytes(), w.table_bytes());
        check(&built, &o, &mut rng);
    }

    /// One reader thread while the writer links and unlinks subtrees
    /// (freed through the epoch collector) and publishes batches.
    #[test]
    fn concurrent_reader_sees_old_or_new_route() {
        let mut w = Poptrie4Writer::new();
        w.insert(net("10.1.0.0/16"), 1).unwrap();
        w.insert(net("10.1.2.200/30"), 2).unwrap();
        let r = w.reader();
        let rounds = if cfg!(miri) { 20 } else { 2000 };
        let reader = std::thread::spawn(move || {
            let probes = [0x0a01_02c8u32, 0x0a01_0201, 0x0a01_0280];
            let mut out = [Route::NONE; 3];
            for _ in 0..rounds {
                r.lookup_batch(&probes, &mut out);
                assert_eq!(out[0], Some(2));
                assert!(matches!(out[1].next_hop(), Some(1) | Some(3)));
                assert_eq!(out[2], Some(1));
                assert_eq!(r.lookup_u32(probes[0]), Some(2));
                let v = r.pin();
                assert_eq!(v.lookup(probes[2]), Some(1));
            }
        });
        for i in 0..rounds {
            let p = if i % 2 == 0 {
                "10.1.2.0/28"
            } else {
                "10.1.3.0/28"
            };
            w.insert(net(p), 3).unwrap();
            w.remove(net(p));
            if i % 8 == 7 {
                w.apply(&[
                    Update::Insert(net("20.0.0.0/24"), 4),
                    Update::Remove(net("20.0.0.0/24")),
                ])
                .unwrap();
            }
        }
        reader.join().unwrap();
    }
}
