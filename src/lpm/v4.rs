//! IPv4 longest-prefix match, DIR-24-8 (as DPDK `rte_lpm`).
//!
//! # Contract
//! - `tbl24`: 2^24 entries indexed by the top 24 bits of the address;
//!   `tbl8`: groups of 256 entries for the /24s that hold a prefix longer
//!   than /24. A lookup is one read, or two when the /24 has a group.
//!   An entry is 32 bits: next hop (24 bits) or group index, `VALID`,
//!   `EXT`.
//! - [`Dir24Writer`] is the single writer; [`Dir24Reader`] handles are
//!   `Clone + Send + Sync` and never lock or wait.
//! - **Concurrency.** A single [`Dir24Writer::insert`] / [`Dir24Writer::remove`]
//!   updates the published table in place with one atomic 32-bit store per
//!   entry, groups filled before they are linked (`Release`/`Acquire`): while
//!   a prefix spanning many entries is being written, every address answers
//!   either its old or its new route, never garbage. Groups freed by a
//!   removal are reused only after an epoch grace period
//!   (`crossbeam::epoch`), so a reader never follows a link into a reused
//!   group. [`Dir24Writer::apply`] writes a whole batch into a private copy
//!   and publishes it with one atomic root swap: readers see all of it or
//!   none. Details: the `table` module.
//! - Answers are exact for any sequence of overlapping inserts, replaces and
//!   removes (removing a prefix uncovers the longest remaining one), checked
//!   against [`super::oracle::Oracle4`].
//! - [`Dir24Reader::lookup_batch`] prefetches the tbl24 slots of a chunk of
//!   32 addresses, then reads them; on a longer slice it prefetches chunk
//!   k+1 before reading chunk k (software pipelining), which a caller
//!   making separate calls of 32 cannot get.
//! - Memory: 64 MiB for `tbl24` plus 1 KiB per group in use, reserved up
//!   front and committed as written, in huge pages when available
//!   ([`Dir24Writer::huge_page_bytes`]): a table of a few routes commits a
//!   few MiB; what was never written reads as the kernel's zero page.

use super::mem::{prefetch, Root};
use super::table::{decode, group_slot, Engine, Table, EXT};
use super::{LpmError, NextHop, Route, Update, BATCH};
use crossbeam::epoch::{self, Guard};
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;
use std::sync::atomic::{fence, AtomicU32, Ordering};
use std::sync::Arc;

/// Group capacity of [`Dir24Writer::new`]: 65,536 groups (64 MiB reserved,
/// committed only as groups are used), enough for ~65,000 /24s that hold
/// longer prefixes.
pub const DEFAULT_TBL8_GROUPS: u32 = 1 << 16;

const FIRST_BITS: u32 = 24;
const TBL24_LEN: usize = 1 << FIRST_BITS;

fn key(prefix: &Ipv4Net) -> (u128, u32) {
    (
        u128::from(u32::from(prefix.network())) << 96,
        u32::from(prefix.prefix_len()),
    )
}

impl Table {
    #[inline(always)]
    fn lookup_v4(&self, addr: u32) -> Option<NextHop> {
        let mut e = self.tbl24()[(addr >> 8) as usize].load(Ordering::Acquire);
        if e & EXT != 0 {
            e = self.groups[group_slot(e, (addr & 0xff) as usize)].load(Ordering::Acquire);
        }
        decode(e)
    }

    /// tbl24 as a fixed-size array: indexing it with `addr >> 8` needs no
    /// bounds check.
    #[inline(always)]
    fn tbl24(&self) -> &[AtomicU32; TBL24_LEN] {
        self.first[..].try_into().expect("tbl24 has 2^24 entries")
    }

    /// Prefetch the tbl24 slots of a batch.
    #[inline(always)]
    fn prefetch_v4_32(tbl24: &[AtomicU32; TBL24_LEN], addrs: &[u32; BATCH]) {
        for &a in addrs {
            prefetch(&tbl24[(a >> 8) as usize]);
        }
    }

    /// Exactly [`BATCH`] addresses whose tbl24 slots were prefetched: read
    /// them all, then prefetch and read the tbl8 slots needed.
    ///
    /// The tbl24 read loop has no branch on the loaded values and a fixed
    /// trip count, so the CPU keeps all 32 misses in flight (with a branch
    /// per entry the loop overflowed the reorder buffer: 64 % of the
    /// random-read limit instead of ~80 %, measured on a 1M table).
    /// Those reads are `Relaxed`; one `Acquire` fence before following an
    /// `EXT` entry gives them acquire semantics (fence synchronisation).
    ///
    /// The answers are written undecoded ([`Route`]): decoding them here
    /// would put 32 more dependent instructions between this batch's
    /// misses and the caller's next batch.
    #[inline(always)]
    fn read_v4_32(
        &self,
        tbl24: &[AtomicU32; TBL24_LEN],
        addrs: &[u32; BATCH],
        out: &mut [Route; BATCH],
    ) {
        let mut any = 0;
        for (o, &a) in out.iter_mut().zip(addrs) {
            let e = tbl24[(a >> 8) as usize].load(Ordering::Relaxed);
            any |= e;
            o.0 = e;
        }
        if any & EXT != 0 {
            self.resolve_tbl8(addrs, out);
        }
    }

    /// Any number of addresses: exactly one batch (a worker's rx batch)
    /// takes the straight path, measured faster than going through the
    /// pipelined loop of [`Self::lookup_v4_batch`].
    #[inline(always)]
    fn lookup_v4_slice(&self, addrs: &[u32], out: &mut [Route]) {
        match (addrs.try_into(), <&mut [_; BATCH]>::try_from(&mut *out)) {
            (Ok(a), Ok(o)) => self.lookup_v4_32(a, o),
            _ => self.lookup_v4_batch(addrs, out),
        }
    }

    /// Exactly one batch: prefetch the 32 tbl24 slots, then read them.
    ///
    /// Out of line on purpose: inlined, the compiler kept all 32 loaded
    /// entries live for the caller's use of `out` and spilled each one
    /// beside its store to `out`, and those extra stores, waiting on the
    /// misses, stalled the next batch (`xconnect-batch32`: 0.79 → 0.87 of
    /// the random-read limit out of line, same run). Without the prefetch
    /// loop it fell to 0.79 too.
    #[inline(never)]
    fn lookup_v4_32(&self, addrs: &[u32; BATCH], out: &mut [Route; BATCH]) {
        let tbl24 = self.tbl24();
        Self::prefetch_v4_32(tbl24, addrs);
        self.read_v4_32(tbl24, addrs, out);
    }

    /// Second step for the lanes whose tbl24 entry points to a group.
    #[cold]
    #[inline(never)]
    fn resolve_tbl8(&self, addrs: &[u32; BATCH], entries: &mut [Route; BATCH]) {
        let tbl8 = &*self.groups;
        fence(Ordering::Acquire);
        for (e, &a) in entries.iter().zip(addrs) {
            if e.0 & EXT != 0 {
                prefetch(&tbl8[group_slot(e.0, (a & 0xff) as usize)]);
            }
        }
        for (e, &a) in entries.iter_mut().zip(addrs) {
            if e.0 & EXT != 0 {
                e.0 = tbl8[group_slot(e.0, (a & 0xff) as usize)].load(Ordering::Acquire);
            }
        }
    }

    /// Batches of [`BATCH`], software-pipelined: the tbl24 slots of batch
    /// k+1 are prefetched before batch k is read, so the memory system
    /// never drains between batches (a caller's own work between two
    /// calls cannot overlap like this: long slices are faster).
    #[inline(never)]
    fn lookup_v4_batch(&self, addrs: &[u32], out: &mut [Route]) {
        assert_eq!(
            addrs.len(),
            out.len(),
            "lookup_batch: addrs and out differ in length"
        );
        let tbl24 = self.tbl24();
        let mut chunks = addrs.chunks_exact(BATCH);
        let mut out_chunks = out.chunks_exact_mut(BATCH);
        fn batch(c: &[u32]) -> &[u32; BATCH] {
            c.try_into().expect("chunk of BATCH")
        }
        let mut next = chunks.next().map(batch);
        if let Some(first) = next {
            Self::prefetch_v4_32(tbl24, first);
        }
        while let Some(a) = next {
            next = chunks.next().map(batch);
            if let Some(n) = next {
                Self::prefetch_v4_32(tbl24, n);
            }
            let o = out_chunks
                .next()
                .expect("as many out chunks as address chunks");
            self.read_v4_32(tbl24, a, o.try_into().expect("chunk of BATCH"));
        }
        let (rest, rest_out) = (chunks.remainder(), out_chunks.into_remainder());
        if !rest.is_empty() {
            let mut padded = [0u32; BATCH];
            padded[..rest.len()].copy_from_slice(rest);
            let mut answers = [Route::NONE; BATCH];
            Self::prefetch_v4_32(tbl24, &padded);
            self.read_v4_32(tbl24, &padded, &mut answers);
            rest_out.copy_from_slice(&answers[..rest.len()]);
        }
    }
}

/// The single writer of an IPv4 table. Not `Clone`: there is one writer.
pub struct Dir24Writer {
    engine: Engine,
}

impl Default for Dir24Writer {
    fn default() -> Self {
        Self::new()
    }
}

impl Dir24Writer {
    /// An empty table with [`DEFAULT_TBL8_GROUPS`] groups.
    pub fn new() -> Self {
        Self::with_tbl8_groups(DEFAULT_TBL8_GROUPS)
    }

    /// An empty table with room for `groups` tbl8 groups (at most 2^24).
    pub fn with_tbl8_groups(groups: u32) -> Self {
        Self {
            engine: Engine::new(FIRST_BITS, 32, groups, false),
        }
    }

    /// A table holding `routes` (later duplicates replace earlier ones),
    /// with room for `tbl8_groups` groups. Faster than inserting one by
    /// one: routes are loaded shortest first in address order, so tbl24
    /// is written sequentially.
    pub fn from_routes(
        routes: impl IntoIterator<Item = (Ipv4Net, NextHop)>,
        tbl8_groups: u32,
    ) -> Result<Self, LpmError> {
        let mut routes: Vec<(u32, u8, usize, NextHop)> = routes
            .into_iter()
            .enumerate()
            .map(|(i, (p, nh))| (u32::from(p.network()), p.prefix_len(), i, nh))
            .collect();
        // Shortest first, then by address, then input order (last wins).
        routes.sort_unstable_by_key(|&(a, len, i, _)| (len, a, i));
        let mut w = Self::with_tbl8_groups(tbl8_groups);
        let mut per_len = [0usize; 33];
        for r in &routes {
            per_len[usize::from(r.1)] += 1;
        }
        for (len, &n) in per_len.iter().enumerate() {
            w.engine.reserve_rules(len as u32, n);
        }
        for (a, len, _, nh) in routes {
            w.engine.insert(u128::from(a) << 96, u32::from(len), nh)?;
        }
        Ok(w)
    }

    /// A reader handle on this table; clone it for each worker.
    pub fn reader(&self) -> Dir24Reader {
        Dir24Reader {
            root: self.engine.shared(),
        }
    }

    /// Add `prefix` (host bits ignored) → `next_hop`, or replace its next
    /// hop. Returns the previous next hop. Visible to readers at once,
    /// entry by entry (see the module contract).
    pub fn insert(
        &mut self,
        prefix: Ipv4Net,
        next_hop: NextHop,
    ) -> Result<Option<NextHop>, LpmError> {
        let (k, len) = key(&prefix);
        self.engine.insert(k, len, next_hop)
    }

    /// Remove `prefix`; addresses under it fall back to the longest
    /// remaining prefix that covers them. Returns its next hop if present.
    pub fn remove(&mut self, prefix: Ipv4Net) -> Option<NextHop> {
        let (k, len) = key(&prefix);
        self.engine.remove(k, len)
    }

    /// Apply a batch and publish it atomically (one root swap): readers see
    /// the table before or after the whole batch. Costs a copy of the
    /// table (~64 MiB), so use it for bulk changes. On error nothing
    /// changes.
    pub fn apply(&mut self, updates: &[Update<Ipv4Net>]) -> Result<(), LpmError> {
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
    pub fn get(&self, prefix: Ipv4Net) -> Option<NextHop> {
        let (k, len) = key(&prefix);
        self.engine.get(k, len)
    }

    /// Longest-prefix match as readers see it now.
    pub fn lookup(&self, addr: Ipv4Addr) -> Option<NextHop> {
        self.engine.table().lookup_v4(addr.into())
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
    pub fn routes(&self) -> impl Iterator<Item = (Ipv4Net, NextHop)> + '_ {
        self.engine.rules().map(|(k, len, nh)| {
            let net = Ipv4Net::new(Ipv4Addr::from((k >> 96) as u32), len as u8)
                .expect("stored length is at most 32");
            (net, nh)
        })
    }

    /// Bytes used in all: [`Self::table_bytes`] plus the writer's rule
    /// and depth bookkeeping.
    pub fn memory_bytes(&self) -> usize {
        self.engine.memory_bytes()
    }

    /// Bytes of the tbl24 (64 MiB) backed by transparent huge pages now
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

    /// Bytes of the lookup structure readers see (tbl24 and the tbl8
    /// groups handed out), without the writer's bookkeeping.
    pub fn table_bytes(&self) -> usize {
        self.engine.table_bytes()
    }

    /// tbl8 groups in use.
    pub fn tbl8_groups_in_use(&self) -> u32 {
        self.engine.groups_in_use()
    }
}

/// A lock-free read handle: `Clone + Send + Sync`, one per worker.
#[derive(Clone)]
pub struct Dir24Reader {
    root: Arc<Root<Table>>,
}

impl Dir24Reader {
    /// [`Self::lookup_u32`] under the caller's pinned `guard`.
    #[inline(always)]
    pub(crate) fn lookup_pinned(&self, guard: &Guard, addr: u32) -> Option<NextHop> {
        self.root.load(guard).lookup_v4(addr)
    }

    /// [`Self::lookup_batch`] under the caller's pinned `guard`.
    #[inline(always)]
    pub(crate) fn lookup_batch_pinned(&self, guard: &Guard, addrs: &[u32], out: &mut [Route]) {
        self.root.load(guard).lookup_v4_slice(addrs, out);
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
        self.root.load(&guard).lookup_v4(addr)
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
        self.root.load(&guard).lookup_v4_slice(addrs, out);
    }

    /// Pin once and look up many times. Keep a view for one batch or one
    /// poll loop iteration: while it lives, retired memory is not freed.
    pub fn pin(&self) -> Dir24View<'_> {
        Dir24View {
            root: &self.root,
            guard: epoch::pin(),
        }
    }
}

/// A pinned reader: lookups without pinning cost. Not `Send`.
pub struct Dir24View<'r> {
    root: &'r Root<Table>,
    guard: Guard,
}

impl Dir24View<'_> {
    /// Let the writer reclaim memory retired since this view was pinned,
    /// and stay pinned: cheaper than a new [`epoch::pin`]. A worker that
    /// keeps one view calls this between batches.
    #[inline]
    pub fn repin(&mut self) {
        self.guard.repin();
    }

    /// Longest-prefix match of `addr` (host order).
    #[inline(always)]
    pub fn lookup(&self, addr: u32) -> Option<NextHop> {
        self.root.load(&self.guard).lookup_v4(addr)
    }

    /// Batch lookup, as [`Dir24Reader::lookup_batch`].
    ///
    /// # Panics
    /// If `addrs` and `out` differ in length.
    #[inline(always)]
    pub fn lookup_batch(&self, addrs: &[u32], out: &mut [Route]) {
        self.root.load(&self.guard).lookup_v4_slice(addrs, out);
    }
}

// Every table here has a 2^24-entry first level: too big for Miri, which
// runs the same engine on a small geometry in `table::tests`.
#[cfg(all(test, not(miri)))]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn a_table_of_a_few_routes_commits_a_few_mib() {
        let mut w = Dir24Writer::new();
        w.insert(net("192.0.2.0/24"), 1).unwrap();
        // A /25: a tbl8 group.
        w.insert(net("198.51.100.0/25"), 2).unwrap();
        // A batch goes through a private copy of the whole table.
        w.apply(&[
            Update::Insert(net("203.0.113.0/24"), 3),
            Update::Insert(net("10.0.0.0/8"), 4),
        ])
        .unwrap();
        // Lookups all over the space read the never-written parts.
        let r = w.reader();
        let (mut x, mut hits) = (1u32, 0);
        for _ in 0..100_000 {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            hits += u32::from(r.lookup(Ipv4Addr::from(x)).is_some());
        }
        assert!(hits > 0 && r.lookup(ip("198.51.100.1")) == Some(2));
        // At most one 2 MiB huge page per route and one for the groups;
        // the whole tbl24 would be 64 MiB.
        let resident = w.resident_bytes();
        assert!(
            resident > 0 && resident <= 10 << 20,
            "{resident} bytes committed"
        );
    }

    #[test]
    fn overlapping_insert_remove_uncovers_covering_prefix() {
        let mut w = Dir24Writer::with_tbl8_groups(16);
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
        assert_eq!(w.tbl8_groups_in_use(), 1);

        assert_eq!(w.remove(net("10.1.2.0/24")), Some(3));
        assert_eq!(r.lookup(ip("10.1.2.1")), Some(2));
        assert_eq!(r.lookup(ip("10.1.2.129")), Some(4));
        assert_eq!(w.remove(net("10.1.2.128/25")), Some(4));
        assert_eq!(r.lookup(ip("10.1.2.129")), Some(2));
        assert_eq!(r.lookup(ip("10.1.2.130")), Some(5));
        assert_eq!(w.remove(net("10.1.2.130/32")), Some(5));
        assert_eq!(r.lookup(ip("10.1.2.130")), Some(2));
        // The group became uniform and was folded back into tbl24.
        assert_eq!(w.tbl8_groups_in_use(), 0);
        assert_eq!(w.remove(net("10.1.2.130/32")), None);
        assert_eq!(w.len(), 2);
    }

    /// Small enough for Miri: one reader thread while the writer makes and
    /// folds groups (their reuse goes through the epoch collector).
    #[test]
    fn concurrent_reader_sees_old_or_new_route() {
        let mut w = Dir24Writer::with_tbl8_groups(4);
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
                assert!(
                    matches!(out[1].next_hop(), Some(1) | Some(3)),
                    "{:?}",
                    out[1]
                );
                assert_eq!(out[2], Some(1));
                assert_eq!(r.lookup_u32(probes[0]), Some(2));
            }
        });
        for i in 0..rounds {
            // 10.1.2.0/28 and 10.1.3.0/28 toggle: groups are made, folded
            // and reused.
            let p = if i % 2 == 0 {
                "10.1.2.0/28"
            } else {
                "10.1.3.0/28"
            };
            w.insert(net(p), 3).unwrap();
            w.remove(net(p));
        }
        reader.join().unwrap();
        assert_eq!(w.tbl8_groups_in_use(), 1);
    }

    #[test]
    fn replace_and_default_route() {
        let mut w = Dir24Writer::with_tbl8_groups(4);
        let r = w.reader();
        w.insert(net("0.0.0.0/0"), 9).unwrap();
        w.insert(net("192.168.1.0/24"), 1).unwrap();
        assert_eq!(w.insert(net("192.168.1.7/24"), 2).unwrap(), Some(1));
        assert_eq!(r.lookup(ip("192.168.1.1")), Some(2));
        assert_eq!(r.lookup(ip("8.8.8.8")), Some(9));
        assert_eq!(w.remove(net("0.0.0.0/0")), Some(9));
        assert_eq!(r.lookup(ip("8.8.8.8")), None);
        assert_eq!(w.get(net("192.168.1.0/24")), Some(2));
        assert_eq!(
            w.insert(net("1.0.0.0/8"), 1 << 24),
            Err(LpmError::NextHopTooLarge(1 << 24))
        );
    }

    #[test]
    fn from_routes_matches_inserts() {
        let routes = [
            (net("10.0.0.0/8"), 1),
            (net("10.1.2.3/32"), 2),
            (net("10.1.0.0/16"), 3),
            (net("10.0.0.0/8"), 4),
        ];
        let w = Dir24Writer::from_routes(routes, 4).unwrap();
        assert_eq!(w.len(), 3);
        assert_eq!(w.lookup(ip("10.9.0.0")), Some(4));
        assert_eq!(w.lookup(ip("10.1.2.3")), Some(2));
        assert_eq!(w.lookup(ip("10.1.2.4")), Some(3));
    }

    #[test]
    fn groups_exhausted_changes_nothing() {
        let mut w = Dir24Writer::with_tbl8_groups(1);
        w.insert(net("1.1.1.1/32"), 1).unwrap();
        assert_eq!(
            w.insert(net("1.1.2.1/32"), 2),
            Err(LpmError::GroupsExhausted { capacity: 1 })
        );
        assert_eq!(w.lookup(ip("1.1.2.1")), None);
        assert_eq!(w.len(), 1);
        // The same /24 reuses its group.
        w.insert(net("1.1.1.2/32"), 3).unwrap();
        assert_eq!(w.lookup(ip("1.1.1.2")), Some(3));
    }

    #[test]
    fn batch_matches_single_lookups() {
        let mut w = Dir24Writer::with_tbl8_groups(64);
        for i in 0..40u32 {
            let p = Ipv4Net::new(Ipv4Addr::from(i.wrapping_mul(0x9E37_79B9)), (i % 33) as u8)
                .unwrap()
                .trunc();
            w.insert(p, i).unwrap();
        }
        let r = w.reader();
        let addrs: Vec<u32> = (0..100u32).map(|i| i.wrapping_mul(0x9E37_79B1)).collect();
        let mut out = vec![Route::NONE; addrs.len()];
        r.lookup_batch(&addrs, &mut out);
        let view = r.pin();
        for (a, o) in addrs.iter().zip(&out) {
            assert_eq!(*o, r.lookup_u32(*a));
            assert_eq!(*o, view.lookup(*a));
        }
    }

    #[test]
    fn apply_publishes_batch_atomically() {
        let mut w = Dir24Writer::with_tbl8_groups(8);
        w.insert(net("10.0.0.0/8"), 1).unwrap();
        w.insert(net("10.0.0.1/32"), 2).unwrap();
        let r = w.reader();
        let view = r.pin();
        w.apply(&[
            Update::Insert(net("10.0.0.0/8"), 3),
            Update::Remove(net("10.0.0.1/32")),
            Update::Insert(net("20.0.0.0/30"), 4),
            Update::Insert(net("20.0.0.2/31"), 5),
        ])
        .unwrap();
        assert_eq!(r.lookup(ip("10.0.0.1")), Some(3));
        assert_eq!(r.lookup(ip("20.0.0.3")), Some(5));
        assert_eq!(r.lookup(ip("20.0.0.1")), Some(4));
        // A view pinned before keeps the old version alive and consistent
        // only until it reloads the root: it loads the root per lookup.
        assert_eq!(view.lookup(0x0a00_0001), Some(3));
        drop(view);
        assert_eq!(w.tbl8_groups_in_use(), 1);
        w.remove(net("20.0.0.2/31"));
        assert_eq!(w.lookup(ip("20.0.0.3")), Some(4));
        w.remove(net("20.0.0.0/30"));
        assert_eq!(w.tbl8_groups_in_use(), 0);
        assert_eq!(w.lookup(ip("20.0.0.3")), None);
    }
}
