//! The engine shared by [`super::v4`] and [`super::v6`]: a multibit trie
//! with a direct first level of `2^first_bits` entries and 8-bit strides
//! below it, stored as two flat arrays of `AtomicU32` entries, plus the
//! writer's bookkeeping (rules per length, depth of every entry, group
//! allocator).
//!
//! # Entry
//! `bits 0..24` next hop (or group index when `EXT`), `bit 24` `VALID`,
//! `bit 25` `EXT` (the entry points to a 256-entry group one level down).
//! Zero is "no route".
//!
//! # Concurrency scheme (one writer, lock-free readers)
//! 1. **Single updates are applied in place** on the published table, one
//!    atomic 32-bit store per entry, in the order of DPDK `rte_lpm`: a new
//!    group is filled completely (with the value of the entry it refines)
//!    *before* the parent entry is switched to it with a `Release` store;
//!    readers load entries with `Acquire`. An entry therefore always holds
//!    either its old or its new final value, never a mix, and a reader that
//!    follows an `EXT` entry finds a fully initialised group. An update of
//!    one prefix that spans many entries (a /16 is 256 first-level entries)
//!    becomes visible entry by entry: during it, each address answers the
//!    route it had before or the route it has after, never anything else.
//! 2. **Group reuse waits for readers.** When a group becomes uniform it is
//!    folded into its parent entry (one `Release` store) and its index is
//!    handed back to the allocator only through `crossbeam::epoch`
//!    `Guard::defer`, i.e. after every reader pinned at the time of the fold
//!    has unpinned. Readers pin for (at least) one lookup or one batch, so a
//!    reader never follows a stale `EXT` entry into a reused group.
//! 3. **Batches are published atomically.** `apply` copies the table into a
//!    private version (first level plus the used groups), applies the whole
//!    batch there, and publishes it with one atomic swap of the root
//!    ([`super::mem::RootWriter::publish`]); the old version is handed back
//!    to the writer through `Guard::defer` after its readers moved on and
//!    dropped by the writer (never on a reader thread). A reader sees the
//!    whole batch or none of it.
//!
//! The writer's own truth is the rule set (`rules[len]`: network → next
//! hop) and the depth of the rule behind every entry (`depth_*`). Inserting
//! /len overwrites the entries of its range whose depth ≤ len; removing it
//! rewrites the entries whose depth == len with the longest remaining rule
//! that covers it (as `rte_lpm` does with its rules table).

use super::mem::{EntryArray, Root, RootWriter};
use super::{LpmError, NextHop, MAX_NEXT_HOP};
use crossbeam::epoch;
use crossbeam::queue::SegQueue;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Next-hop (or group index) bits of an entry.
pub(crate) const NH_MASK: u32 = 0x00FF_FFFF;
/// The entry holds a route.
pub(crate) const VALID: u32 = 1 << 24;
/// The entry points to a group one level down.
pub(crate) const EXT: u32 = 1 << 25;
/// Entries per group (8-bit stride).
pub(crate) const GROUP: usize = 256;
/// Largest group capacity an entry can address.
pub(crate) const MAX_GROUPS: u32 = 1 << 24;

/// Decode a final (non-`EXT`) entry.
#[inline(always)]
pub(crate) fn decode(e: u32) -> Option<NextHop> {
    if e & VALID != 0 {
        Some(e & NH_MASK)
    } else {
        None
    }
}

/// Index of the entry of group `e & NH_MASK` at `idx`.
#[inline(always)]
pub(crate) fn group_slot(e: u32, idx: usize) -> usize {
    (e & NH_MASK) as usize * GROUP + idx
}

/// One version of the lookup structure. Readers only load from it.
pub(crate) struct Table {
    /// Direct first level, indexed by the top `first_bits` of the address.
    pub(crate) first: EntryArray,
    /// Group pool: group `g` is `groups[g*256 .. g*256+256]`.
    pub(crate) groups: EntryArray,
    /// Optional summary of the first level, one bit per entry (bit `i % 32`
    /// of word `i / 32`): clear means the entry is zero, i.e. "no route".
    /// 1/32 of the first level (2 MiB for 2^24 entries, mostly cache
    /// resident), so that addresses under no prefix (most random IPv6
    /// addresses) are answered without reading the first level. Empty when
    /// the table has none. The writer sets a bit after storing a non-zero
    /// entry and clears it after storing zero, so a reader that sees a clear
    /// bit answers the entry's value before or after the current update.
    pub(crate) summary: EntryArray,
}

impl Table {
    fn new(first_bits: u32, group_capacity: u32, summary: bool) -> Self {
        // Every array is committed as it is written, in huge pages where
        // the kernel has them (the mappings are advised for them): a table
        // of a few routes takes a few MiB, not its 64 MiB first level.
        // Parts never written read as the kernel's (huge) zero page, so a
        // lookup there costs no more than in a committed page.
        Self {
            first: EntryArray::zeroed(1 << first_bits),
            groups: EntryArray::zeroed(group_capacity as usize * GROUP),
            summary: EntryArray::zeroed(if summary {
                (1usize << first_bits).div_ceil(32)
            } else {
                0
            }),
        }
    }

    /// Writer's store of `value` into flat location `loc` (`Release`: a
    /// reader that sees it sees what was written before), keeping the
    /// summary bit of a first-level entry in step.
    #[inline]
    fn set(&self, loc: usize, value: u32) {
        self.at(loc).store(value, Ordering::Release);
        if loc < self.first.len() && !self.summary.is_empty() {
            let (word, bit) = (&self.summary[loc / 32], 1u32 << (loc % 32));
            if value != 0 {
                word.fetch_or(bit, Ordering::Release);
            } else {
                word.fetch_and(!bit, Ordering::Release);
            }
        }
    }

    /// Entry at flat location `loc` (first level, then groups).
    #[inline]
    fn at(&self, loc: usize) -> &AtomicU32 {
        if loc < self.first.len() {
            &self.first[loc]
        } else {
            &self.groups[loc - self.first.len()]
        }
    }
}

/// Cheap multiply-xor hasher for the writer's rule maps (keys are
/// addresses, not attacker-chosen in a way that matters to the writer).
#[derive(Default, Clone, Copy)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u128(&mut self, v: u128) {
        let x = (v as u64) ^ ((v >> 64) as u64).rotate_left(29) ^ self.0;
        self.0 = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
}

/// Longest a writer waits for readers to release retired groups.
const RESERVE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

type RuleMap = HashMap<u128, NextHop, BuildHasherDefault<KeyHasher>>;

/// Group indices: fresh ones, free ones, and ones waiting for readers.
struct GroupAlloc {
    capacity: u32,
    /// Groups `0..high` have been handed out at least once.
    high: u32,
    free: Vec<u32>,
    /// Filled by deferred closures once readers moved on.
    retired: Arc<SegQueue<u32>>,
    live: Vec<bool>,
    in_use: u32,
}

impl GroupAlloc {
    fn new(capacity: u32) -> Self {
        Self {
            capacity,
            high: 0,
            free: Vec::new(),
            retired: Arc::new(SegQueue::new()),
            live: Vec::new(),
            in_use: 0,
        }
    }

    fn available(&self) -> u32 {
        self.free.len() as u32 + (self.capacity - self.high)
    }

    fn reclaim(&mut self) {
        while let Some(g) = self.retired.pop() {
            self.free.push(g);
        }
    }

    /// Make sure `n` groups can be taken without failing. When only groups
    /// waiting for readers are left, the writer waits for them (readers
    /// unpin after each batch; one preempted while pinned holds the epoch
    /// for a scheduler tick) up to [`RESERVE_WAIT`].
    fn reserve(&mut self, n: u32) -> Result<(), LpmError> {
        if self.available() >= n {
            return Ok(());
        }
        let waiting = self.high - self.in_use - self.free.len() as u32;
        let deadline = std::time::Instant::now() + RESERVE_WAIT;
        while self.available() + waiting >= n && std::time::Instant::now() < deadline {
            // Push our deferred frees to the global queue and help collect.
            epoch::pin().flush();
            self.reclaim();
            if self.available() >= n {
                return Ok(());
            }
            std::thread::yield_now();
        }
        Err(LpmError::GroupsExhausted {
            capacity: self.capacity,
        })
    }

    /// A group index, and whether it is fresh (never handed out: its
    /// entries in the current table and its depths are still zero);
    /// `reserve` must have been called.
    fn take(&mut self, depth_groups: &mut Vec<u8>) -> (u32, bool) {
        // Groups retired and not yet reclaimed exist: look for them (a
        // stream of inserts retires none and skips the queue).
        if self.free.is_empty() && self.in_use + (self.free.len() as u32) < self.high {
            self.reclaim();
        }
        let (g, fresh) = match self.free.pop() {
            Some(g) => (g, false),
            None => {
                assert!(self.high < self.capacity, "group taken without reserve");
                self.high += 1;
                depth_groups.resize(self.high as usize * GROUP, 0);
                self.live.push(false);
                (self.high - 1, true)
            }
        };
        self.live[g as usize] = true;
        self.in_use += 1;
        (g, fresh)
    }

    /// Hand `g` back once every reader that could still follow it is gone.
    fn retire(&mut self, g: u32) {
        self.live[g as usize] = false;
        self.in_use -= 1;
        let queue = Arc::clone(&self.retired);
        epoch::pin().defer(move || queue.push(g));
    }
}

/// Writer-side state; operations take the table version they modify.
struct State {
    first_bits: u32,
    width: u32,
    /// The prefix length behind each first-level entry, four to a word,
    /// in anonymous memory committed as it is written: a 2^24-entry first
    /// level costs the pages its prefixes touch, not 16 MiB zeroed per
    /// table (a `Vec` of that size is re-zeroed by `calloc` once the
    /// allocator has raised its mmap threshold, which made every new VRF
    /// cost milliseconds).
    depth_first: EntryArray,
    depth_groups: Vec<u8>,
    rules: Vec<RuleMap>,
    count: usize,
    alloc: GroupAlloc,
}

/// The writer: the published table plus the writer-side truth.
pub(crate) struct Engine {
    root: RootWriter<Table>,
    state: State,
}

#[inline]
fn mask(len: u32) -> u128 {
    if len == 0 {
        0
    } else {
        !0u128 << (128 - len)
    }
}

impl State {
    fn first_len(&self) -> usize {
        1 << self.first_bits
    }

    /// Bit span `(start, bits)` of `level`.
    fn span(&self, level: u32) -> (u32, u32) {
        if level == 0 {
            (0, self.first_bits)
        } else {
            (self.first_bits + 8 * (level - 1), 8)
        }
    }

    fn index(key: u128, start: u32, bits: u32) -> usize {
        ((key >> (128 - start - bits)) & ((1u128 << bits) - 1)) as usize
    }

    fn groups_needed(&self, len: u32) -> u32 {
        len.saturating_sub(self.first_bits).div_ceil(8)
    }

    /// Groups that inserting `key/len` would have to create.
    fn groups_missing(&self, t: &Table, key: u128, len: u32) -> u32 {
        let mut level = 0;
        let mut base = 0usize;
        loop {
            let (start, bits) = self.span(level);
            if len <= start + bits {
                return 0;
            }
            let e = t
                .at(base + Self::index(key, start, bits))
                .load(Ordering::Relaxed);
            if e & EXT == 0 {
                return self.groups_needed(len) - level;
            }
            base = self.group_base(e & NH_MASK);
            level += 1;
        }
    }

    fn depth(&self, loc: usize) -> u8 {
        let f = self.first_len();
        if loc < f {
            let word = self
                .depth_first
                .get(loc / 4)
                .map_or(0, |w| w.load(Ordering::Relaxed));
            (word >> (8 * (loc % 4))) as u8
        } else {
            self.depth_groups[loc - f]
        }
    }

    fn set_depth(&mut self, loc: usize, d: u8) {
        let f = self.first_len();
        if loc < f {
            if let Some(w) = self.depth_first.get(loc / 4) {
                let shift = 8 * (loc % 4);
                let old = w.load(Ordering::Relaxed);
                w.store(
                    (old & !(0xff << shift)) | (u32::from(d) << shift),
                    Ordering::Relaxed,
                );
            }
        } else {
            self.depth_groups[loc - f] = d;
        }
    }

    fn group_base(&self, g: u32) -> usize {
        self.first_len() + g as usize * GROUP
    }

    fn insert(
        &mut self,
        t: &Table,
        key: u128,
        len: u32,
        nh: NextHop,
    ) -> Result<Option<NextHop>, LpmError> {
        if nh > MAX_NEXT_HOP {
            return Err(LpmError::NextHopTooLarge(nh));
        }
        let key = key & mask(len);
        // An installed rule has its groups: nothing is missing and the
        // reservation cannot fail, so it is made before the one probe of
        // the rule map that both finds an unchanged rule and records the
        // new next hop.
        self.alloc.reserve(self.groups_missing(t, key, len))?;
        let prev = match self.rules[len as usize].entry(key) {
            Entry::Occupied(o) if *o.get() == nh => return Ok(Some(nh)),
            Entry::Occupied(mut o) => Some(o.insert(nh)),
            Entry::Vacant(v) => {
                v.insert(nh);
                self.count += 1;
                None
            }
        };
        let value = VALID | nh;
        let mut level = 0;
        let mut base = 0usize;
        loop {
            let (start, bits) = self.span(level);
            let end = start + bits;
            let idx = Self::index(key, start, bits);
            if len <= end {
                for j in idx..idx + (1usize << (end - len)) {
                    self.cover(t, base + j, len as u8, value);
                }
                return Ok(prev);
            }
            let loc = base + idx;
            let e = t.at(loc).load(Ordering::Relaxed);
            let g = if e & EXT != 0 {
                e & NH_MASK
            } else {
                self.spawn(t, loc, e)
            };
            base = self.group_base(g);
            level += 1;
        }
    }

    /// Write `value` (a rule of length `len`) into `loc` and, through
    /// groups, every entry below it that no longer rule refines.
    fn cover(&mut self, t: &Table, loc: usize, len: u8, value: u32) {
        let e = t.at(loc).load(Ordering::Relaxed);
        if e & EXT != 0 {
            self.cover_group(t, e & NH_MASK, len, value);
        } else if self.depth(loc) <= len {
            t.set(loc, value);
            self.set_depth(loc, len);
        }
    }

    /// [`State::cover`] of every entry of group `g`: one pass over the
    /// group's entries and depths as slices (no first-level or summary
    /// case per entry), descending into the groups below it. The same
    /// stores in the same order as entry-by-entry `cover`.
    fn cover_group(&mut self, t: &Table, g: u32, len: u8, value: u32) {
        let start = g as usize * GROUP;
        for j in 0..GROUP {
            let e = t.groups[start + j].load(Ordering::Relaxed);
            if e & EXT != 0 {
                self.cover_group(t, e & NH_MASK, len, value);
            } else if self.depth_groups[start + j] <= len {
                t.groups[start + j].store(value, Ordering::Release);
                self.depth_groups[start + j] = len;
            }
        }
    }

    /// Give `loc` (holding final entry `e`) a group filled with `e`, then
    /// publish the group in `loc`.
    fn spawn(&mut self, t: &Table, loc: usize, e: u32) -> u32 {
        let (g, fresh) = self.alloc.take(&mut self.depth_groups);
        let d = self.depth(loc);
        let start = g as usize * GROUP;
        // A fresh group is all zero already (groups past the high mark are
        // never written, in place or in `apply`'s copy): under no route
        // (most IPv6 groups) it needs no fill, and its fresh pages are not
        // written twice.
        if !(fresh && e == 0) {
            for slot in &t.groups[start..start + GROUP] {
                slot.store(e, Ordering::Relaxed);
            }
        }
        if !(fresh && d == 0) {
            self.depth_groups[start..start + GROUP].fill(d);
        }
        // Release: a reader that sees EXT|g sees the filled group.
        t.set(loc, EXT | g);
        g
    }

    fn remove(&mut self, t: &Table, key: u128, len: u32) -> Option<NextHop> {
        let key = key & mask(len);
        let old = self.rules[len as usize].remove(&key)?;
        self.count -= 1;
        let (cover_value, cover_depth) = self.covering(key, len);
        // (parent location, group, parent level) of every descent.
        let mut path = [(0usize, 0u32, 0u32); 16];
        let mut depth = 0;
        let mut level = 0;
        let mut base = 0usize;
        loop {
            let (start, bits) = self.span(level);
            let end = start + bits;
            let idx = Self::index(key, start, bits);
            if len <= end {
                for j in idx..idx + (1usize << (end - len)) {
                    self.uncover(t, base + j, len as u8, cover_value, cover_depth);
                }
                break;
            }
            let loc = base + idx;
            let e = t.at(loc).load(Ordering::Relaxed);
            if e & EXT == 0 {
                // Cannot happen: a group holding entries of a live rule
                // longer than its parent level is never folded.
                debug_assert!(false, "missing group under a live rule");
                return Some(old);
            }
            path[depth] = (loc, e & NH_MASK, level);
            depth += 1;
            base = self.group_base(e & NH_MASK);
            level += 1;
        }
        // Fold groups that became uniform, deepest first.
        for &(loc, g, parent_level) in path[..depth].iter().rev() {
            let (start, bits) = self.span(parent_level);
            match self.uniform(t, g) {
                Some((value, d)) if u32::from(d) <= start + bits => {
                    t.set(loc, value);
                    self.set_depth(loc, d);
                    self.alloc.retire(g);
                }
                _ => break,
            }
        }
        Some(old)
    }

    /// Replace the entries of rule /len at and below `loc` by the covering
    /// rule.
    fn uncover(&mut self, t: &Table, loc: usize, len: u8, value: u32, depth: u8) {
        let e = t.at(loc).load(Ordering::Relaxed);
        if e & EXT != 0 {
            let base = self.group_base(e & NH_MASK);
            for j in base..base + GROUP {
                self.uncover(t, j, len, value, depth);
            }
        } else if self.depth(loc) == len {
            t.set(loc, value);
            self.set_depth(loc, depth);
        }
    }

    /// Entry and depth of the longest rule shorter than `len` containing
    /// `key`, or "no route".
    fn covering(&self, key: u128, len: u32) -> (u32, u8) {
        for l in (0..len).rev() {
            if let Some(&nh) = self.rules[l as usize].get(&(key & mask(l))) {
                return (VALID | nh, l as u8);
            }
        }
        (0, 0)
    }

    /// `Some((entry, depth))` if all entries of group `g` are the same final
    /// entry of the same depth.
    fn uniform(&self, t: &Table, g: u32) -> Option<(u32, u8)> {
        let start = g as usize * GROUP;
        let entries = &t.groups[start..start + GROUP];
        let depths = &self.depth_groups[start..start + GROUP];
        let first = entries[0].load(Ordering::Relaxed);
        if first & EXT != 0 {
            return None;
        }
        let same = entries
            .iter()
            .zip(depths)
            .all(|(e, &d)| e.load(Ordering::Relaxed) == first && d == depths[0]);
        same.then_some((first, depths[0]))
    }
}

impl Engine {
    /// An empty table over `width`-bit addresses (keys left-aligned in a
    /// `u128`) with a direct first level of `first_bits` and room for
    /// `group_capacity` groups.
    /// With `summary`, the table keeps a bit per first-level entry (see
    /// [`Table::summary`]).
    pub(crate) fn new(first_bits: u32, width: u32, group_capacity: u32, summary: bool) -> Self {
        assert!(first_bits <= width && (width - first_bits) % 8 == 0);
        let group_capacity = group_capacity.min(MAX_GROUPS);
        Self {
            root: RootWriter::new(Table::new(first_bits, group_capacity, summary)),
            state: State {
                first_bits,
                width,
                depth_first: EntryArray::zeroed((1usize << first_bits).div_ceil(4)),
                depth_groups: Vec::new(),
                rules: (0..=width).map(|_| RuleMap::default()).collect(),
                count: 0,
                alloc: GroupAlloc::new(group_capacity),
            },
        }
    }

    /// Handle for readers.
    pub(crate) fn shared(&self) -> Arc<Root<Table>> {
        self.root.shared()
    }

    /// The published table (writer's view).
    pub(crate) fn table(&self) -> &Table {
        self.root.current()
    }

    /// Add or replace rule `key/len`; returns the previous next hop.
    pub(crate) fn insert(
        &mut self,
        key: u128,
        len: u32,
        nh: NextHop,
    ) -> Result<Option<NextHop>, LpmError> {
        debug_assert!(len <= self.state.width);
        self.root.collect();
        self.state.insert(self.root.current(), key, len, nh)
    }

    /// Remove rule `key/len`; returns its next hop if it was present.
    pub(crate) fn remove(&mut self, key: u128, len: u32) -> Option<NextHop> {
        debug_assert!(len <= self.state.width);
        self.root.collect();
        self.state.remove(self.root.current(), key, len)
    }

    /// Make room for `n` more rules of length `len` (bulk loads).
    pub(crate) fn reserve_rules(&mut self, len: u32, n: usize) {
        self.state.rules[len as usize].reserve(n);
    }

    /// Next hop of exactly rule `key/len`.
    pub(crate) fn get(&self, key: u128, len: u32) -> Option<NextHop> {
        self.state.rules[len as usize]
            .get(&(key & mask(len)))
            .copied()
    }

    /// Number of rules.
    pub(crate) fn len(&self) -> usize {
        self.state.count
    }

    /// Every rule as `(key, len, next hop)`, in no particular order.
    pub(crate) fn rules(&self) -> impl Iterator<Item = (u128, u32, NextHop)> + '_ {
        self.state
            .rules
            .iter()
            .enumerate()
            .flat_map(|(len, m)| m.iter().map(move |(&k, &nh)| (k, len as u32, nh)))
    }

    /// Apply `updates` (key, len, `Some(nh)` to insert / `None` to remove)
    /// to a private copy and publish it with one swap. On error nothing
    /// changes.
    pub(crate) fn apply(
        &mut self,
        updates: impl Iterator<Item = (u128, u32, Option<NextHop>)> + Clone,
    ) -> Result<(), LpmError> {
        let mut needed = 0u32;
        for (_, len, nh) in updates.clone() {
            if let Some(nh) = nh {
                if nh > MAX_NEXT_HOP {
                    return Err(LpmError::NextHopTooLarge(nh));
                }
                needed = needed.saturating_add(self.state.groups_needed(len));
            }
        }
        let alloc = &mut self.state.alloc;
        // In the copy, every group not live in the current table is free.
        let free_in_copy = alloc.capacity - alloc.in_use;
        if free_in_copy < needed {
            return Err(LpmError::GroupsExhausted {
                capacity: alloc.capacity,
            });
        }
        let current = self.root.current();
        let copy = Table::new(
            self.state.first_bits,
            alloc.capacity,
            !current.summary.is_empty(),
        );
        // The copy starts zeroed: only non-zero entries are written, so
        // it commits no more pages than the current version holds.
        let used = alloc.high as usize * GROUP;
        for (dst, src) in [
            (&copy.first[..], &current.first[..]),
            (&copy.summary[..], &current.summary[..]),
            (&copy.groups[..used], &current.groups[..used]),
        ] {
            for (d, s) in dst.iter().zip(src) {
                let v = s.load(Ordering::Relaxed);
                if v != 0 {
                    d.store(v, Ordering::Relaxed);
                }
            }
        }
        alloc.free = (0..alloc.high)
            .filter(|&g| !alloc.live[g as usize])
            .collect();
        // Frees still deferred belong to the old version; forget them.
        alloc.retired = Arc::new(SegQueue::new());
        for (key, len, nh) in updates {
            match nh {
                Some(nh) => {
                    self.state.insert(&copy, key, len, nh)?;
                }
                None => {
                    self.state.remove(&copy, key, len);
                }
            }
        }
        self.root.publish(copy);
        Ok(())
    }

    /// Bytes held: the table as readers see it (first level plus groups
    /// handed out) and the writer's bookkeeping.
    pub(crate) fn memory_bytes(&self) -> usize {
        let s = &self.state;
        let table = self.table_bytes();
        let depths = s.depth_first.len() * 4 + s.depth_groups.capacity();
        let rules: usize = s
            .rules
            .iter()
            .map(|m| m.capacity() * (std::mem::size_of::<(u128, NextHop)>() + 1))
            .sum();
        table + depths + rules + s.alloc.live.capacity() + s.alloc.free.capacity() * 4
    }

    /// Bytes of the table readers see: the first level, its summary and
    /// the groups handed out so far.
    pub(crate) fn table_bytes(&self) -> usize {
        let summary = self.table().summary.len();
        (self.state.first_len() + summary + self.state.alloc.high as usize * GROUP) * 4
    }

    /// Bytes of the published first level backed by transparent huge
    /// pages, and its size.
    pub(crate) fn first_level_huge_pages(&self) -> (usize, usize) {
        let first = &self.table().first;
        (first.huge_page_bytes(), first.len() * 4)
    }

    /// Bytes of the published table committed in memory now (first level,
    /// summary and groups).
    pub(crate) fn resident_bytes(&self) -> usize {
        let t = self.table();
        super::mem::smaps_bytes("Rss:", &[&t.first, &t.summary, &t.groups])
    }

    /// Groups in use now.
    pub(crate) fn groups_in_use(&self) -> u32 {
        self.state.alloc.in_use
    }
}

/// The engine on a small geometry (16-bit keys: an 8-bit first level and
/// one level of groups), so that Miri can run it: concurrent readers, group
/// reuse through the epoch collector, batch publication.
#[cfg(test)]
mod tests {
    use super::*;

    const FIRST: u32 = 8;

    /// As the v6 reader: the summary bit first, then the entries.
    fn lookup(t: &Table, key: u128) -> Option<NextHop> {
        let i = (key >> (128 - FIRST)) as usize;
        if t.summary[i / 32].load(Ordering::Acquire) & (1 << (i % 32)) == 0 {
            return None;
        }
        let mut e = t.first[i].load(Ordering::Acquire);
        let mut shift = 128 - FIRST - 8;
        while e & EXT != 0 {
            e = t.groups[group_slot(e, ((key >> shift) & 0xff) as usize)].load(Ordering::Acquire);
            shift = shift.saturating_sub(8);
        }
        decode(e)
    }

    /// Every summary bit says whether its first-level entry is non-zero.
    fn assert_summary(t: &Table) {
        for (i, e) in t.first.iter().enumerate() {
            let bit = t.summary[i / 32].load(Ordering::Relaxed) >> (i % 32) & 1;
            assert_eq!(bit == 1, e.load(Ordering::Relaxed) != 0, "entry {i}");
        }
    }

    fn key(hi: u8, lo: u8) -> u128 {
        (u128::from(hi) << 120) | (u128::from(lo) << 112)
    }

    #[test]
    fn small_engine_overlaps_fold_and_apply() {
        let mut e = Engine::new(FIRST, 16, 4, true);
        e.insert(key(10, 0), 8, 1).unwrap();
        e.insert(key(10, 128), 9, 2).unwrap();
        e.insert(key(10, 130), 16, 3).unwrap();
        assert_eq!(lookup(e.table(), key(10, 1)), Some(1));
        assert_eq!(lookup(e.table(), key(10, 131)), Some(2));
        assert_eq!(lookup(e.table(), key(10, 130)), Some(3));
        assert_eq!(e.groups_in_use(), 1);
        assert_eq!(e.remove(key(10, 128), 9), Some(2));
        assert_eq!(lookup(e.table(), key(10, 131)), Some(1));
        assert_summary(e.table());
        assert_eq!(e.remove(key(10, 130), 16), Some(3));
        assert_eq!(e.groups_in_use(), 0);
        assert_summary(e.table());
        e.apply(
            [
                (key(11, 0), 8, Some(5)),
                (key(11, 7), 16, Some(6)),
                (key(10, 0), 8, None),
            ]
            .into_iter(),
        )
        .unwrap();
        assert_eq!(lookup(e.table(), key(10, 1)), None);
        assert_eq!(lookup(e.table(), key(11, 7)), Some(6));
        assert_eq!(lookup(e.table(), key(11, 8)), Some(5));
        assert_eq!(e.len(), 2);
        assert_summary(e.table());
    }

    #[test]
    fn small_engine_concurrent_reader() {
        let mut e = Engine::new(FIRST, 16, 3, true);
        e.insert(key(10, 0), 8, 1).unwrap();
        e.insert(key(10, 200), 16, 2).unwrap();
        let root = e.shared();
        let rounds = if cfg!(miri) { 12 } else { 3000 };
        let reader = std::thread::spawn(move || {
            for _ in 0..rounds {
                let guard = epoch::pin();
                let t = root.load(&guard);
                assert_eq!(lookup(t, key(10, 200)), Some(2));
                assert!(matches!(lookup(t, key(10, 5)), Some(1) | Some(3)));
                assert_eq!(lookup(t, key(12, 6)), None);
            }
        });
        for i in 0..rounds {
            // Make and fold groups under 11.x and 12.x (reused after the
            // reader moved on), and now and then publish a batch.
            let hi = 11 + (i % 2) as u8;
            e.insert(key(hi, 5), 16, 3).unwrap();
            e.remove(key(hi, 5), 16);
            e.insert(key(10, 5), 16, 3).unwrap();
            e.remove(key(10, 5), 16);
            if i % 4 == 3 {
                e.apply([(key(13, 1), 16, Some(4)), (key(13, 1), 16, None)].into_iter())
                    .unwrap();
            }
        }
        reader.join().unwrap();
        assert_eq!(e.groups_in_use(), 1);
    }
}
