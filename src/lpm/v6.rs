//! IPv6 longest-prefix match: a multibit trie with a direct 2^24-entry
//! first level (`tbl24`) and 8-bit strides below it (as DPDK `rte_lpm6`).
//!
//! # Contract
//! - A lookup reads the first level and then one 256-entry group per
//!   further byte of the longest matching prefix: a /32 route takes 2
//!   reads, a /48 route 4. Addresses under no prefix longer than their /24
//!   (most random addresses) take one read, as in IPv4.
//! - [`Lpm6Reader::lookup_batch`] walks a batch of 32 addresses level by
//!   level: at each level it prefetches the next entry of every address
//!   still descending, then reads them, so the memory latencies of the
//!   batch overlap instead of adding up.
//! - Same writer/reader model and concurrency scheme as [`super::v4`]: in
//!   place single updates (each address answers its old or its new route),
//!   group reuse after an epoch grace period, atomic batches through
//!   [`Lpm6Writer::apply`].
//! - Answers are exact, checked against [`super::oracle::Oracle6`].
//! - Memory: 64 MiB first level (huge pages when available) plus 1 KiB
//!   per group; the pool of groups is reserved, not committed, up front.
//!   A 2^16 first level (256 KiB) was tried first: random addresses then
//!   take two reads instead of one and the measured batch throughput was
//!   half; addresses inside a 200k table were no faster.

use super::mem::{prefetch, Root};
use super::table::{decode, group_slot, Engine, Table, EXT};
use super::{LpmError, NextHop, Update, BATCH};
use crossbeam::epoch::{self, Guard};
use ipnet::Ipv6Net;
use std::net::Ipv6Addr;
use std::sync::atomic::{fence, AtomicU32, Ordering};
use std::sync::Arc;

/// Group capacity of [`Lpm6Writer::new`]: 2^18 groups (256 MiB reserved,
/// committed only as used). A realistic table of 200,000 prefixes of
/// /32–/64 needs a few hundred thousand: size it with
/// [`Lpm6Writer::with_groups`].
pub const DEFAULT_GROUPS: u32 = 1 << 18;

const FIRST_BITS: u32 = 24;
const FIRST_LEN: usize = 1 << FIRST_BITS;
/// Shift of the byte indexing the first group level.
const FIRST_GROUP_SHIFT: u32 = 128 - FIRST_BITS - 8;

fn key(prefix: &Ipv6Net) -> (u128, u32) {
    (u128::from(prefix.network()), u32::from(prefix.prefix_len()))
}

impl Table {
    #[inline(always)]
    fn lookup_v6(&self, addr: u128) -> Option<NextHop> {
        let mut e = self.first_v6()[(addr >> (128 - FIRST_BITS)) as usize].load(Ordering::Acquire);
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

    /// Prefetch the first-level slots of up to [`BATCH`] addresses.
    #[inline(always)]
    fn prefetch_v6_chunk(first: &[AtomicU32; FIRST_LEN], addrs: &[u128]) {
        for &a in addrs {
            prefetch(&first[(a >> (128 - FIRST_BITS)) as usize]);
        }
    }

    /// Up to [`BATCH`] addresses whose first-level slots were prefetched,
    /// level-synchronous with prefetch: at each level only the lanes still
    /// descending are visited.
    #[inline(always)]
    fn lookup_v6_chunk(&self, addrs: &[u128], out: &mut [Option<NextHop>]) {
        let first = self.first_v6();
        let groups = &*self.groups;
        let mut entries = [0u32; BATCH];
        let mut active = [0u8; BATCH];
        let mut n = 0;
        // Each lane's next read is prefetched as soon as its current entry
        // is known, so the lanes' misses stay in flight across levels.
        let mut shift = FIRST_GROUP_SHIFT;
        // First level: no branch on the loaded values, so that all lanes'
        // misses are in flight at once (as in `v4`).
        for (e, &a) in entries.iter_mut().zip(addrs) {
            *e = first[(a >> (128 - FIRST_BITS)) as usize].load(Ordering::Relaxed);
        }
        for (i, (e, &a)) in entries.iter().zip(addrs).enumerate() {
            if *e & EXT != 0 {
                prefetch(&groups[group_slot(*e, ((a >> shift) & 0xff) as usize)]);
                active[n] = i as u8;
                n += 1;
            }
        }
        if n > 0 {
            // Acquire for all the Relaxed first-level loads above.
            fence(Ordering::Acquire);
        }
        while n > 0 {
            let mut still = 0;
            for k in 0..n {
                let i = usize::from(active[k]);
                let e = groups[group_slot(entries[i], ((addrs[i] >> shift) & 0xff) as usize)]
                    .load(Ordering::Acquire);
                entries[i] = e;
                if e & EXT != 0 {
                    let next = ((addrs[i] >> shift.saturating_sub(8)) & 0xff) as usize;
                    prefetch(&groups[group_slot(e, next)]);
                    active[still] = i as u8;
                    still += 1;
                }
            }
            n = still;
            shift = shift.saturating_sub(8);
        }
        for (o, &e) in out.iter_mut().zip(&entries) {
            *o = decode(e);
        }
    }

    fn lookup_v6_batch(&self, addrs: &[u128], out: &mut [Option<NextHop>]) {
        assert_eq!(
            addrs.len(),
            out.len(),
            "lookup_batch: addrs and out differ in length"
        );
        // Software-pipelined as in `v4`: the first-level slots of chunk
        // k+1 are prefetched before chunk k is walked.
        let first = self.first_v6();
        let mut chunks = addrs.chunks(BATCH);
        let mut next = chunks.next();
        if let Some(c) = next {
            Self::prefetch_v6_chunk(first, c);
        }
        for o in out.chunks_mut(BATCH) {
            let Some(a) = next else { break };
            next = chunks.next();
            if let Some(c) = next {
                Self::prefetch_v6_chunk(first, c);
            }
            self.lookup_v6_chunk(a, o);
        }
    }
}

/// The single writer of an IPv6 table. Not `Clone`: there is one writer.
pub struct Lpm6Writer {
    engine: Engine,
}

impl Default for Lpm6Writer {
    fn default() -> Self {
        Self::new()
    }
}

impl Lpm6Writer {
    /// An empty table with [`DEFAULT_GROUPS`] groups.
    pub fn new() -> Self {
        Self::with_groups(DEFAULT_GROUPS)
    }

    /// An empty table with room for `groups` 256-entry groups (at most
    /// 2^24). A prefix of length L > 24 needs up to ⌈(L−24)/8⌉ groups of
    /// its own.
    pub fn with_groups(groups: u32) -> Self {
        Self {
            engine: Engine::new(FIRST_BITS, 128, groups),
        }
    }

    /// A reader handle on this table; clone it for each worker.
    pub fn reader(&self) -> Lpm6Reader {
        Lpm6Reader {
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
    /// (from `/proc/self/smaps`; 0 where unknown). Below the full size,
    /// random lookups also pay TLB misses.
    pub fn huge_page_bytes(&self) -> usize {
        self.engine.first_level_huge_pages().0
    }

    /// Bytes of the lookup structure readers see (first level and the
    /// groups handed out), without the writer's bookkeeping.
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
pub struct Lpm6Reader {
    root: Arc<Root<Table>>,
}

impl Lpm6Reader {
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

    /// Look up every address of `addrs` into `out`, 32 at a time,
    /// level-synchronous with prefetch, under one epoch guard.
    ///
    /// # Panics
    /// If `addrs` and `out` differ in length.
    #[inline]
    pub fn lookup_batch(&self, addrs: &[u128], out: &mut [Option<NextHop>]) {
        let guard = epoch::pin();
        self.root.load(&guard).lookup_v6_batch(addrs, out);
    }

    /// Pin once and look up many times (see [`super::Lpm4Reader::pin`]).
    pub fn pin(&self) -> Lpm6View<'_> {
        Lpm6View {
            root: &self.root,
            guard: epoch::pin(),
        }
    }
}

/// A pinned reader: lookups without pinning cost. Not `Send`.
pub struct Lpm6View<'r> {
    root: &'r Root<Table>,
    guard: Guard,
}

impl Lpm6View<'_> {
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

    /// Batch lookup, as [`Lpm6Reader::lookup_batch`].
    ///
    /// # Panics
    /// If `addrs` and `out` differ in length.
    #[inline]
    pub fn lookup_batch(&self, addrs: &[u128], out: &mut [Option<NextHop>]) {
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

    /// Small enough for Miri: deep prefixes only.
    #[test]
    fn deep_prefixes_fold_back() {
        let mut w = Lpm6Writer::with_groups(16);
        let r = w.reader();
        w.insert(net("2001:db8::/32"), 1).unwrap();
        w.insert(net("2001:db8:1:2::1/128"), 2).unwrap();
        assert_eq!(w.groups_in_use(), 13);
        let addrs = [
            u128::from(ip("2001:db8:1:2::1")),
            u128::from(ip("2001:db8:1:2::2")),
        ];
        let mut out = [None; 2];
        r.lookup_batch(&addrs, &mut out);
        assert_eq!(out, [Some(2), Some(1)]);
        assert_eq!(w.remove(net("2001:db8:1:2::1/128")), Some(2));
        assert_eq!(w.groups_in_use(), 1);
        assert_eq!(r.lookup(ip("2001:db8:1:2::1")), Some(1));
    }

    #[test]
    fn overlapping_insert_remove_and_fold() {
        let mut w = Lpm6Writer::with_groups(64);
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
        let mut w = Lpm6Writer::with_groups(512);
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
        let mut out = vec![None; addrs.len()];
        r.lookup_batch(&addrs, &mut out);
        let view = r.pin();
        for (a, o) in addrs.iter().zip(&out) {
            assert_eq!(*o, r.lookup_u128(*a));
            assert_eq!(*o, view.lookup(*a));
        }
        assert_eq!(r.lookup(ip("2001:db8::1")), Some(7));
    }
}
