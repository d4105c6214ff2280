//! IPv6 longest-prefix match: a multibit trie with a direct 2^24-entry
//! first level (`tbl24`) and 8-bit strides below it (as DPDK `rte_lpm6`),
//! plus a summary bitmap of the first level.
//!
//! # Contract
//! - A lookup reads the summary bit of its /24 (a 2 MiB bitmap, one bit
//!   per first-level entry): a clear bit means "no route" and ends the
//!   lookup — most random addresses stop there, in a structure small
//!   enough to stay in cache. Otherwise it reads the first level and then
//!   one 256-entry group per further byte of the longest matching prefix:
//!   a /32 route takes 2 more reads, a /48 route 4.
//! - [`Trie6Reader::lookup_batch`] is software-pipelined over chunks of 32
//!   addresses: each step reads the summary bits of one chunk (prefetched
//!   a step earlier) and queues the lanes that go on, after prefetching
//!   their next slot; a queued lane is read three steps later, one level
//!   per visit. The few deep walks thus overlap with the following chunks
//!   instead of stalling their own; a batch of one chunk walks level by
//!   level.
//! - Same writer/reader model and concurrency scheme as [`super::v4`]: in
//!   place single updates (each address answers its old or its new route),
//!   group reuse after an epoch grace period, atomic batches through
//!   [`Trie6Writer::apply`]. The summary bit of an entry is set after the
//!   entry becomes non-zero and cleared after it becomes zero, so a reader
//!   stopped by a clear bit answers the entry's old or new value.
//! - Answers are exact, checked against [`super::oracle::Oracle6`].
//! - Memory: 64 MiB first level and 2 MiB summary plus 1 KiB per group,
//!   reserved up front and committed as written (in huge pages when
//!   available): a table of a few routes commits a few MiB. A 2^16 first level (256 KiB) was
//!   tried first: random addresses then take two reads instead of one and
//!   the measured batch throughput was half; addresses inside a 200k table
//!   were no faster.

use super::mem::{prefetch, Root};
use super::table::{decode, group_slot, Engine, Table, EXT};
use super::{LpmError, NextHop, Route, Update, BATCH};
use crossbeam::epoch::{self, Guard};
use ipnet::Ipv6Net;
use std::net::Ipv6Addr;
use std::sync::atomic::{fence, AtomicU32, Ordering};
use std::sync::Arc;

/// Group capacity of [`Trie6Writer::new`]: 2^18 groups (256 MiB reserved,
/// committed only as used). A realistic table of 200,000 prefixes of
/// /32–/64 needs a few hundred thousand: size it with
/// [`Trie6Writer::with_groups`].
pub const DEFAULT_GROUPS: u32 = 1 << 18;

const FIRST_BITS: u32 = 24;
const FIRST_LEN: usize = 1 << FIRST_BITS;
/// Words of the first level's summary bitmap (one bit per entry).
const SUMMARY_LEN: usize = FIRST_LEN / 32;
/// Shift of the byte indexing the first group level.
const FIRST_GROUP_SHIFT: u32 = 128 - FIRST_BITS - 8;

/// Summary bit of first-level entry `i`: clear means the entry is zero
/// ("no route", see `Table::summary`).
#[inline(always)]
fn summary_bit(summary: &[AtomicU32; SUMMARY_LEN], i: usize) -> bool {
    summary[(i >> 5) & (SUMMARY_LEN - 1)].load(Ordering::Relaxed) & (1 << (i & 31)) != 0
}

fn key(prefix: &Ipv6Net) -> (u128, u32) {
    (u128::from(prefix.network()), u32::from(prefix.prefix_len()))
}

impl Table {
    #[inline(always)]
    fn lookup_v6(&self, addr: u128) -> Option<NextHop> {
        let i = (addr >> (128 - FIRST_BITS)) as usize;
        if !summary_bit(self.summary_v6(), i) {
            return None;
        }
        let mut e = self.first_v6()[i].load(Ordering::Acquire);
        let mut shift = FIRST_GROUP_SHIFT;
        while e & EXT != 0 {
            e = self.groups[group_slot(e, ((addr >> shift) & 0xff) as usize)]
                .load(Ordering::Acquire);
            // The last level (shift 0) never holds EXT entries.
            shift = shift.saturating_sub(8);
        }
        decode(e)
    }

    /// The first level as a fixed-size array: indexing it with the top 24
    /// bits needs no bounds check.
    #[inline(always)]
    fn first_v6(&self) -> &[AtomicU32; FIRST_LEN] {
        self.first[..]
            .try_into()
            .expect("first level has 2^24 entries")
    }

    /// The first level's summary bitmap as a fixed-size array.
    #[inline(always)]
    fn summary_v6(&self) -> &[AtomicU32; SUMMARY_LEN] {
        self.summary[..]
            .try_into()
            .expect("an IPv6 table has a summary of 2^19 words")
    }

    /// Prefetch the summary words of up to [`BATCH`] addresses.
    #[inline(always)]
    fn prefetch_v6_chunk(summary: &[AtomicU32; SUMMARY_LEN], addrs: &[u128]) {
        for &a in addrs {
            prefetch(&summary[(a >> (128 - FIRST_BITS + 5)) as usize]);
        }
    }

    /// Every address of `addrs`, software-pipelined over chunks of
    /// [`BATCH`]: step k takes chunk k's summary bits (prefetched in step
    /// k−1; a clear bit answers "no route" at once, branch-free), prefetches
    /// the first-level slot of each lane whose bit is set and queues the
    /// lane; and it reads one level for every lane queued in an earlier
    /// step (its slot was prefetched then), answering it or prefetching its
    /// next group slot and keeping it queued. The deep walks of a few lanes
    /// (a random address inside an allocated /24 takes 2–5 dependent
    /// reads) thus overlap with the following chunks instead of stalling
    /// their own chunk for each level; after the last chunk the queue
    /// drains level by level.
    fn lookup_v6_batch(&self, addrs: &[u128], out: &mut [Route]) {
        assert_eq!(
            addrs.len(),
            out.len(),
            "lookup_batch: addrs and out differ in length"
        );
        if addrs.len() <= BATCH {
            // One chunk: at most BATCH lanes ever queued, one bucket.
            self.walk_v6::<1, BATCH>(addrs, out);
        } else {
            // Lanes index their slice with a u32.
            for (a, o) in addrs.chunks(1 << 30).zip(out.chunks_mut(1 << 30)) {
                self.walk_v6::<WALK_DISTANCE, { BATCH * MAX_READS }>(a, o);
            }
        }
    }

    /// The pipelined walk of [`Self::lookup_v6_batch`] with `D` buckets of
    /// `CAP` lanes: a lane queued or advanced in step k is read again in
    /// step k+D, so its prefetch has D steps to land.
    ///
    /// Bucket `k % D` holds the lanes of chunks k, k−D, …; a lane leaves it
    /// after at most [`MAX_READS`] reads, one per D steps, and each D steps
    /// queue at most [`BATCH`] lanes in it: `CAP = BATCH * MAX_READS`
    /// always suffices (`BATCH` for a single chunk).
    #[inline(always)]
    fn walk_v6<const D: usize, const CAP: usize>(&self, addrs: &[u128], out: &mut [Route]) {
        let first = self.first_v6();
        let summary = self.summary_v6();
        let groups = &*self.groups;
        let mut queues = [[Lane::default(); CAP]; D];
        let mut queued = [0usize; D];
        let chunk = |start: usize| &addrs[start..(start + BATCH).min(addrs.len())];
        let mut next = 0;
        if !addrs.is_empty() {
            Self::prefetch_v6_chunk(summary, chunk(0));
        }
        for step in 0.. {
            let b = step % D;
            let (queue, n) = (&mut queues[b], queued[b]);
            // This bucket's lanes: one level each (slots prefetched D steps
            // ago).
            if n > 0 {
                // Acquire for the Relaxed loads of the EXT entries read in
                // earlier steps, before following them into their groups.
                fence(Ordering::Acquire);
            }
            let mut still = 0;
            for k in 0..n {
                let lane = queue[k];
                let i = lane.i as usize;
                let a = addrs[i];
                let e = if lane.shift == IN_FIRST {
                    first[(a >> (128 - FIRST_BITS)) as usize].load(Ordering::Relaxed)
                } else {
                    groups[group_slot(lane.e, ((a >> lane.shift) & 0xff) as usize)]
                        .load(Ordering::Relaxed)
                };
                if e & EXT != 0 {
                    // The last level (shift 0) never holds EXT entries.
                    let shift = if lane.shift == IN_FIRST {
                        FIRST_GROUP_SHIFT
                    } else {
                        lane.shift - 8
                    };
                    prefetch(&groups[group_slot(e, ((a >> shift) & 0xff) as usize)]);
                    queue[still] = Lane {
                        i: lane.i,
                        e,
                        shift,
                    };
                    still += 1;
                } else {
                    out[i] = Route(e);
                }
            }
            queued[b] = still;
            if next >= addrs.len() {
                if queued.iter().all(|&q| q == 0) {
                    break;
                }
                continue;
            }
            let base = next;
            let a = chunk(base);
            next += a.len();
            if next < addrs.len() {
                Self::prefetch_v6_chunk(summary, chunk(next));
                // And the addresses of the chunk after (4 per cache line).
                for a in addrs.iter().skip(next + BATCH).take(BATCH).step_by(4) {
                    prefetch(a);
                }
            }
            // This chunk: lanes with a set summary bit are queued without a
            // branch (written always, kept when the bit is 1); only their
            // prefetch sits behind a (well predicted) branch.
            let mut n = still;
            for (j, (&x, o)) in a.iter().zip(&mut out[base..next]).enumerate() {
                *o = Route::NONE;
                let idx = (x >> (128 - FIRST_BITS)) as usize;
                queue[n] = Lane {
                    i: (base + j) as u32,
                    e: 0,
                    shift: IN_FIRST,
                };
                let hit = summary_bit(summary, idx);
                if hit {
                    prefetch(&first[idx]);
                }
                n += usize::from(hit);
            }
            queued[b] = n;
        }
    }
}

/// A lane of [`Table::walk_v6`]: its index in the addresses and the slot
/// to read next (`shift == IN_FIRST`: the first level, else the group of
/// entry `e` at byte `addr >> shift`).
#[derive(Clone, Copy, Default)]
struct Lane {
    i: u32,
    e: u32,
    shift: u32,
}

/// `Lane::shift` of a lane whose next read is in the first level.
const IN_FIRST: u32 = 128;
/// Most reads of one lookup: the first level and one per group level.
const MAX_READS: usize = 1 + (128 - FIRST_BITS as usize) / 8;
/// Steps between a lane's prefetch and its read in long batches.
const WALK_DISTANCE: usize = 3;

/// The single writer of an IPv6 table. Not `Clone`: there is one writer.
pub struct Trie6Writer {
    engine: Engine,
}

impl Default for Trie6Writer {
    fn default() -> Self {
        Self::new()
    }
}

impl Trie6Writer {
    /// An empty table with [`DEFAULT_GROUPS`] groups.
    pub fn new() -> Self {
        Self::with_groups(DEFAULT_GROUPS)
    }

    /// An empty table with room for `groups` 256-entry groups (at most
    /// 2^24). A prefix of length L > 24 needs up to ⌈(L−24)/8⌉ groups of
    /// its own.
    pub fn with_groups(groups: u32) -> Self {
        Self {
            engine: Engine::new(FIRST_BITS, 128, groups, true),
        }
    }

    /// A table holding `routes` (later duplicates replace earlier ones)
    /// with room for `groups` groups, published once.
    pub fn from_routes(
        routes: impl IntoIterator<Item = (Ipv6Net, NextHop)>,
        groups: u32,
    ) -> Result<Self, LpmError> {
        let mut w = Self::with_groups(groups);
        let updates: Vec<Update<Ipv6Net>> = routes
            .into_iter()
            .map(|(p, nh)| Update::Insert(p, nh))
            .collect();
        w.apply(&updates)?;
        Ok(w)
    }

    /// A reader handle on this table; clone it for each worker.
    pub fn reader(&self) -> Trie6Reader {
        Trie6Reader {
            root: self.engine.shared(),
        }
    }

    /// Add `prefix` (host bits ignored) → `next_hop`, or replace its next
    /// hop. Returns the previous next hop.
    pub fn insert(
        &mut self,
        prefix: Ipv6Net,
        next_hop: NextHop,
    ) -> Result<Option<NextHop>, LpmError> {
        let (k, len) = key(&prefix);
        self.engine.insert(k, len, next_hop)
    }

    /// Remove `prefix`; addresses under it fall back to the longest
    /// remaining prefix that covers them. Returns its next hop if present.
    pub fn remove(&mut self, prefix: Ipv6Net) -> Option<NextHop> {
        let (k, len) = key(&prefix);
        self.engine.remove(k, len)
    }

    /// Apply a batch and publish it atomically (one root swap). Costs a
    /// copy of the groups in use. On error nothing changes.
    pub fn apply(&mut self, updates: &[Update<Ipv6Net>]) -> Result<(), LpmError> {
        self.engine.apply(updates.iter().map(|u| match u {
            Update::Insert(p, nh) => {
                let (k, len) = key(p);
                (k, len, Some(*nh))
            }
            Update::Remove(p) => {
                let (k, len) = key(p);
                (k, len, None)
            }
        }))
    }

    /// Next hop of exactly `prefix`, if present.
    pub fn get(&self, prefix: Ipv6Net) -> Option<NextHop> {
        let (k, len) = key(&prefix);
        self.engine.get(k, len)
    }

    /// Longest-prefix match as readers see it now.
    pub fn lookup(&self, addr: Ipv6Addr) -> Option<NextHop> {
        self.engine.table().lookup_v6(addr.into())
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.engine.len()
    }

    /// No prefix at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every prefix and its next hop, in no particular order.
    pub fn routes(&self) -> impl Iterator<Item = (Ipv6Net, NextHop)> + '_ {
        self.engine.rules().map(|(k, len, nh)| {
            let net =
                Ipv6Net::new(Ipv6Addr::from(k), len as u8).expect("stored length is at most 128");
            (net, nh)
        })
    }

    /// Bytes used in all: [`Self::table_bytes`] plus the writer's rule
    /// and depth bookkeeping.
    pub fn memory_bytes(&self) -> usize {
        self.engine.memory_bytes()
    }

    /// Bytes of the first level (64 MiB) backed by transparent huge pages now
    /// (from `/proc/self/smaps`; 0 where unknown). Only written parts are
    /// committed; the rest reads the kernel's (huge) zero page.
    pub fn huge_page_bytes(&self) -> usize {
        self.engine.first_level_huge_pages().0
    }

    /// Bytes of the published table committed in memory now (`Rss` of its
    /// arrays in `/proc/self/smaps`; 0 where unknown): what routes have
    /// written, a few MiB for a few routes. Never-written parts read as
    /// the kernel's zero page and cost nothing.
    pub fn resident_bytes(&self) -> usize {
        self.engine.resident_bytes()
    }

    /// Bytes of the lookup structure readers see (first level, its
    /// summary and the groups handed out), without the writer's bookkeeping.
    pub fn table_bytes(&self) -> usize {
        self.engine.table_bytes()
    }

    /// Groups in use.
    pub fn groups_in_use(&self) -> u32 {
        self.engine.groups_in_use()
    }
}

/// A lock-free read handle: `Clone + Send + Sync`, one per worker.
#[derive(Clone)]
pub struct Trie6Reader {
    root: Arc<Root<Table>>,
}

impl Trie6Reader {
    /// [`Self::lookup_u128`] under the caller's pinned `guard`.
    #[inline(always)]
    pub(crate) fn lookup_pinned(&self, guard: &Guard, addr: u128) -> Option<NextHop> {
        self.root.load(guard).lookup_v6(addr)
    }

    /// [`Self::lookup_batch`] under the caller's pinned `guard`.
    #[inline(always)]
    pub(crate) fn lookup_batch_pinned(&self, guard: &Guard, addrs: &[u128], out: &mut [Route]) {
        self.root.load(guard).lookup_v6_batch(addrs, out);
    }

    /// Longest-prefix match of `addr`. Pins an epoch guard per call.
    #[inline]
    pub fn lookup(&self, addr: Ipv6Addr) -> Option<NextHop> {
        self.lookup_u128(addr.into())
    }

    /// [`Self::lookup`] of an address as a `u128`.
    #[inline]
    pub fn lookup_u128(&self, addr: u128) -> Option<NextHop> {
        let guard = epoch::pin();
        self.root.load(&guard).lookup_v6(addr)
    }

    /// Look up every address of `addrs` into `out` under one epoch guard:
    /// chunks of 32, each lane's next read prefetched and taken up again
    /// some chunks later (software-pipelined, see the module contract).
    /// `out[i].next_hop()` is what [`Self::lookup_u128`] of `addrs[i]`
    /// answers.
    ///
    /// # Panics
    /// If `addrs` and `out` differ in length.
    #[inline]
    pub fn lookup_batch(&self, addrs: &[u128], out: &mut [Route]) {
        let guard = epoch::pin();
        self.root.load(&guard).lookup_v6_batch(addrs, out);
    }

    /// Pin once and look up many times (see [`super::Lpm4Reader::pin`]).
    pub fn pin(&self) -> Trie6View<'_> {
        Trie6View {
            root: &self.root,
            guard: epoch::pin(),
        }
    }
}

/// A pinned reader: lookups without pinning cost. Not `Send`.
pub struct Trie6View<'r> {
    root: &'r Root<Table>,
    guard: Guard,
}

impl Trie6View<'_> {
    /// Let the writer reclaim memory retired since this view was pinned,
    /// and stay pinned: cheaper than a new [`epoch::pin`]. A worker that
    /// keeps one view calls this between batches.
    #[inline]
    pub fn repin(&mut self) {
        self.guard.repin();
    }

    /// Longest-prefix match of `addr`.
    #[inline(always)]
    pub fn lookup(&self, addr: u128) -> Option<NextHop> {
        self.root.load(&self.guard).lookup_v6(addr)
    }

    /// Batch lookup, as [`Trie6Reader::lookup_batch`].
    ///
    /// # Panics
    /// If `addrs` and `out` differ in length.
    #[inline]
    pub fn lookup_batch(&self, addrs: &[u128], out: &mut [Route]) {
        self.root.load(&self.guard).lookup_v6_batch(addrs, out);
    }
}

// Every table here has a 2^24-entry first level: too big for Miri, which
// runs the same engine on a small geometry in `table::tests`.
#[cfg(all(test, not(miri)))]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv6Net {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[cfg(not(miri))]
    #[test]
    fn a_table_of_a_few_routes_commits_a_few_mib() {
        let mut w = Trie6Writer::new();
        w.insert(net("2001:db8::/32"), 1).unwrap();
        w.insert(net("2001:db8:1::/48"), 2).unwrap();
        w.apply(&[Update::Insert(net("2001:db8:2:3::/64"), 3)])
            .unwrap();
        let r = w.reader();
        let mut x = 1u128;
        for _ in 0..100_000 {
            x = x
                .wrapping_mul(0x2360_ed05_1fc6_5da4_4385_df64_9fcc_f645)
                .wrapping_add(1);
            assert_eq!(r.lookup_u128(x), None);
        }
        assert_eq!(r.lookup(ip("2001:db8:2:3::1")), Some(3));
        // First level, summary and groups: one 2 MiB huge page each at
        // most; the first level alone would be 64 MiB.
        let resident = w.resident_bytes();
        assert!(
            resident > 0 && resident <= 8 << 20,
            "{resident} bytes committed"
        );
    }

    /// Small enough for Miri: deep prefixes only.
    #[test]
    fn deep_prefixes_fold_back() {
        let mut w = Trie6Writer::with_groups(16);
        let r = w.reader();
        w.insert(net("2001:db8::/32"), 1).unwrap();
        w.insert(net("2001:db8:1:2::1/128"), 2).unwrap();
        assert_eq!(w.groups_in_use(), 13);
        let addrs = [
            u128::from(ip("2001:db8:1:2::1")),
            u128::from(ip("2001:db8:1:2::2")),
        ];
        let mut out = [Route::NONE; 2];
        r.lookup_batch(&addrs, &mut out);
        assert_eq!(out, [Some(2), Some(1)]);
        assert_eq!(w.remove(net("2001:db8:1:2::1/128")), Some(2));
        assert_eq!(w.groups_in_use(), 1);
        assert_eq!(r.lookup(ip("2001:db8:1:2::1")), Some(1));
    }

    #[test]
    fn overlapping_insert_remove_and_fold() {
        let mut w = Trie6Writer::with_groups(64);
        let r = w.reader();
        w.insert(net("2001:db8::/32"), 1).unwrap();
        w.insert(net("2001:db8:1::/48"), 2).unwrap();
        w.insert(net("2001:db8:1:2::/64"), 3).unwrap();
        w.insert(net("2001:db8:1:2::1/128"), 4).unwrap();
        w.insert(net("::/0"), 5).unwrap();
        assert_eq!(r.lookup(ip("2001:db8:ffff::1")), Some(1));
        assert_eq!(r.lookup(ip("2001:db8:1:ffff::1")), Some(2));
        assert_eq!(r.lookup(ip("2001:db8:1:2::2")), Some(3));
        assert_eq!(r.lookup(ip("2001:db8:1:2::1")), Some(4));
        assert_eq!(r.lookup(ip("2002::1")), Some(5));
        let used = w.groups_in_use();
        assert_eq!(w.remove(net("2001:db8:1:2::1/128")), Some(4));
        assert_eq!(r.lookup(ip("2001:db8:1:2::1")), Some(3));
        assert_eq!(w.remove(net("2001:db8:1:2::/64")), Some(3));
        assert_eq!(r.lookup(ip("2001:db8:1:2::1")), Some(2));
        assert!(w.groups_in_use() < used);
        assert_eq!(w.remove(net("2001:db8:1::/48")), Some(2));
        assert_eq!(w.remove(net("2001:db8::/32")), Some(1));
        assert_eq!(w.groups_in_use(), 0);
        assert_eq!(r.lookup(ip("2001:db8:1:2::1")), Some(5));
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn batch_matches_single_lookups_and_apply() {
        let mut w = Trie6Writer::with_groups(512);
        for i in 0..60u32 {
            let a = u128::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
            let p = Ipv6Net::new(Ipv6Addr::from(a), (i * 7 % 129) as u8)
                .unwrap()
                .trunc();
            w.insert(p, i).unwrap();
        }
        w.apply(&[
            Update::Insert(net("2001:db8::/33"), 7),
            Update::Remove(net("::/0")),
        ])
        .unwrap();
        let r = w.reader();
        let addrs: Vec<u128> = (0..100u32)
            .map(|i| u128::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C831))
            .collect();
        let mut out = vec![Route::NONE; addrs.len()];
        r.lookup_batch(&addrs, &mut out);
        let view = r.pin();
        for (a, o) in addrs.iter().zip(&out) {
            assert_eq!(*o, r.lookup_u128(*a));
            assert_eq!(*o, view.lookup(*a));
        }
        assert_eq!(r.lookup(ip("2001:db8::1")), Some(7));
    }

    /// Long batches (the pipelined walk with several buckets) on a
    /// realistic table: deep walks of inside addresses interleaved with
    /// summary misses, chunk lengths that do not divide the slice.
    #[test]
    fn long_batches_match_single_lookups() {
        let routes = crate::lpm::gen::ipv6_table(3000, 5);
        let mut w = Trie6Writer::with_groups(1 << 14);
        for &(p, nh) in &routes {
            w.insert(p, nh).unwrap();
        }
        let r = w.reader();
        let inside = crate::lpm::gen::inside_v6(&routes, 3000, 6);
        let random = crate::lpm::gen::random_v6(3000, 7);
        let addrs: Vec<u128> = inside
            .iter()
            .zip(&random)
            .flat_map(|(a, b)| [*a, *b, *a ^ 0xff])
            .collect();
        let hits = addrs
            .iter()
            .filter(|&&a| r.lookup_u128(a).is_some())
            .count();
        assert!(hits >= 3000, "inside addresses must hit ({hits})");
        for len in [1, 31, 32, 33, 100, 1000, addrs.len()] {
            let mut out = vec![Route::new(Some(crate::lpm::MAX_NEXT_HOP)); len];
            r.lookup_batch(&addrs[..len], &mut out);
            for (a, o) in addrs.iter().zip(&out) {
                assert_eq!(*o, r.lookup_u128(*a), "{} (len {len})", Ipv6Addr::from(*a));
            }
        }
    }
}
