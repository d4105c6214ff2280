//! The IPv4 table of the public API ([`Lpm4Writer`], [`Lpm4Reader`],
//! [`Lpm4View`]): a compressed table ([`super::poptrie`]) for small and
//! medium tables, DIR-24-8 ([`super::v4`]) for large ones, chosen per table
//! by its number of prefixes.
//!
//! # Contract
//! - **Choice by size, with hysteresis.** A table holds a
//!   [`Poptrie4Writer`] while it has at most [`LARGE_AT`] prefixes, and
//!   moves to a [`Dir24Writer`] when it grows past that; it moves back when
//!   it shrinks below [`SMALL_AT`]. Why: a 4,000-prefix VRF costs ~0.3 MiB
//!   compressed against ~65 MiB in DIR-24-8 (spread prefixes), while on
//!   the 1.07M-prefix real table DIR-24-8 answers batches of 32 random
//!   addresses ~2.4× faster and single updates ~90× cheaper on this
//!   machine (docs/lpm.md has the figures).
//! - **Concurrency.** Readers reach the table through a second root: one
//!   atomic pointer naming which structure is current. Updates within one
//!   structure follow its own scheme (see its module). A move between
//!   structures builds the new one completely from the rule set, then
//!   publishes it with one root swap: every address answers its route
//!   from before or after the move (the same rule set), and the old
//!   structure is freed after its readers moved on (epoch reclamation).
//! - Answers are exact: both structures are checked against
//!   [`super::oracle::Oracle4`], and so is this wrapper across moves.

use super::mem::{Root, RootWriter};
use super::poptrie::{Poptrie4Reader, Poptrie4Writer};
use super::v4::{Dir24Reader, Dir24Writer, DEFAULT_TBL8_GROUPS};
use super::{LpmError, NextHop, Route, Update};
use crossbeam::epoch::{self, Guard};
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// A table moves to DIR-24-8 when it has more prefixes than this.
pub const LARGE_AT: usize = 65_536;
/// A DIR-24-8 table moves back to the compressed one below this.
pub const SMALL_AT: usize = 16_384;

/// Which structure readers use now.
enum Current {
    Small(Poptrie4Reader),
    Large(Dir24Reader),
}

/// The writer's structure.
enum Imp {
    Small(Poptrie4Writer),
    Large(Dir24Writer),
}

/// The single writer of an IPv4 table. Not `Clone`: there is one writer.
pub struct Lpm4Writer {
    imp: Imp,
    root: RootWriter<Current>,
    /// tbl8 capacity for when the table is (or becomes) DIR-24-8.
    groups: u32,
}

impl Default for Lpm4Writer {
    fn default() -> Self {
        Self::new()
    }
}

impl Lpm4Writer {
    /// An empty table (compressed; DIR-24-8 with [`DEFAULT_TBL8_GROUPS`]
    /// groups once it grows past [`LARGE_AT`]).
    pub fn new() -> Self {
        Self::with_tbl8_groups(DEFAULT_TBL8_GROUPS)
    }

    /// An empty table that gets room for `groups` tbl8 groups (at most
    /// 2^24) if it grows into DIR-24-8.
    pub fn with_tbl8_groups(groups: u32) -> Self {
        Self::wrap(Imp::Small(Poptrie4Writer::new()), groups)
    }

    fn wrap(imp: Imp, groups: u32) -> Self {
        let current = match &imp {
            Imp::Small(w) => Current::Small(w.reader()),
            Imp::Large(w) => Current::Large(w.reader()),
        };
        Self {
            imp,
            root: RootWriter::new(current),
            groups,
        }
    }

    /// A table holding `routes` (later duplicates replace earlier ones),
    /// in the structure its size calls for, with room for `tbl8_groups`
    /// groups if that is DIR-24-8.
    pub fn from_routes(
        routes: impl IntoIterator<Item = (Ipv4Net, NextHop)>,
        tbl8_groups: u32,
    ) -> Result<Self, LpmError> {
        let routes: Vec<(Ipv4Net, NextHop)> = routes.into_iter().collect();
        // Distinct prefixes are at most the routes given.
        if routes.len() <= LARGE_AT {
            let small = Poptrie4Writer::from_routes(routes, tbl8_groups)?;
            return Ok(Self::wrap(Imp::Small(small), tbl8_groups));
        }
        let large = Dir24Writer::from_routes(routes, tbl8_groups)?;
        if large.len() <= LARGE_AT {
            let small = Poptrie4Writer::from_routes(large.routes(), tbl8_groups)?;
            return Ok(Self::wrap(Imp::Small(small), tbl8_groups));
        }
        Ok(Self::wrap(Imp::Large(large), tbl8_groups))
    }

    /// Move to the other structure if the size calls for it.
    fn rebalance(&mut self) -> Result<(), LpmError> {
        match &self.imp {
            Imp::Small(w) if w.len() > LARGE_AT => {
                let large = Dir24Writer::from_routes(w.routes(), self.groups)?;
                self.root.publish(Current::Large(large.reader()));
                self.imp = Imp::Large(large);
            }
            Imp::Large(w) if w.len() < SMALL_AT => {
                let small = Poptrie4Writer::from_routes(w.routes(), self.groups)?;
                self.root.publish(Current::Small(small.reader()));
                self.imp = Imp::Small(small);
            }
            _ => self.root.collect(),
        }
        Ok(())
    }

    /// Whether the table is compressed now (else DIR-24-8).
    pub fn is_compressed(&self) -> bool {
        matches!(self.imp, Imp::Small(_))
    }

    /// A reader handle on this table; clone it for each worker.
    pub fn reader(&self) -> Lpm4Reader {
        Lpm4Reader {
            root: self.root.shared(),
        }
    }

    /// Add `prefix` (host bits ignored) → `next_hop`, or replace its next
    /// hop. Returns the previous next hop. Visible to readers at once (see
    /// the contracts of [`super::poptrie`] and [`super::v4`]).
    pub fn insert(
        &mut self,
        prefix: Ipv4Net,
        next_hop: NextHop,
    ) -> Result<Option<NextHop>, LpmError> {
        let old = match &mut self.imp {
            Imp::Small(w) => w.insert(prefix, next_hop)?,
            Imp::Large(w) => w.insert(prefix, next_hop)?,
        };
        if old.is_none() {
            // A move that fails (DIR-24-8 out of groups) leaves the table
            // as it is, holding the route.
            let _ = self.rebalance();
        }
        Ok(old)
    }

    /// Remove `prefix`; addresses under it fall back to the longest
    /// remaining prefix that covers them. Returns its next hop if present.
    pub fn remove(&mut self, prefix: Ipv4Net) -> Option<NextHop> {
        let old = match &mut self.imp {
            Imp::Small(w) => w.remove(prefix),
            Imp::Large(w) => w.remove(prefix),
        };
        if old.is_some() {
            let _ = self.rebalance();
        }
        old
    }

    /// Apply a batch and publish it atomically: readers see the table
    /// before or after the whole batch. On error nothing changes.
    pub fn apply(&mut self, updates: &[Update<Ipv4Net>]) -> Result<(), LpmError> {
        match &mut self.imp {
            Imp::Small(w) => w.apply(updates)?,
            Imp::Large(w) => w.apply(updates)?,
        }
        let _ = self.rebalance();
        Ok(())
    }

    /// Next hop of exactly `prefix`, if present.
    pub fn get(&self, prefix: Ipv4Net) -> Option<NextHop> {
        match &self.imp {
            Imp::Small(w) => w.get(prefix),
            Imp::Large(w) => w.get(prefix),
        }
    }

    /// Longest-prefix match as readers see it now.
    pub fn lookup(&self, addr: Ipv4Addr) -> Option<NextHop> {
        match &self.imp {
            Imp::Small(w) => w.lookup(addr),
            Imp::Large(w) => w.lookup(addr),
        }
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        match &self.imp {
            Imp::Small(w) => w.len(),
            Imp::Large(w) => w.len(),
        }
    }

    /// No prefix at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every prefix and its next hop, in no particular order.
    pub fn routes(&self) -> Box<dyn Iterator<Item = (Ipv4Net, NextHop)> + '_> {
        match &self.imp {
            Imp::Small(w) => Box::new(w.routes()),
            Imp::Large(w) => Box::new(w.routes()),
        }
    }

    /// Bytes used in all: the table readers see plus the writer's
    /// bookkeeping.
    pub fn memory_bytes(&self) -> usize {
        match &self.imp {
            Imp::Small(w) => w.memory_bytes(),
            Imp::Large(w) => w.memory_bytes(),
        }
    }

    /// Bytes of the table backed by transparent huge pages now (DIR-24-8's
    /// first level; 0 for a compressed table).
    pub fn huge_page_bytes(&self) -> usize {
        match &self.imp {
            Imp::Small(w) => w.huge_page_bytes(),
            Imp::Large(w) => w.huge_page_bytes(),
        }
    }

    /// Bytes of the published table committed in memory now.
    pub fn resident_bytes(&self) -> usize {
        match &self.imp {
            Imp::Small(w) => w.resident_bytes(),
            Imp::Large(w) => w.resident_bytes(),
        }
    }

    /// Bytes of the lookup structure readers see, without the writer's
    /// bookkeeping.
    pub fn table_bytes(&self) -> usize {
        match &self.imp {
            Imp::Small(w) => w.table_bytes(),
            Imp::Large(w) => w.table_bytes(),
        }
    }

    /// tbl8 groups in use (0 while the table is compressed).
    pub fn tbl8_groups_in_use(&self) -> u32 {
        match &self.imp {
            Imp::Small(w) => w.tbl8_groups_in_use(),
            Imp::Large(w) => w.tbl8_groups_in_use(),
        }
    }
}

/// A lock-free read handle: `Clone + Send + Sync`, one per worker.
#[derive(Clone)]
pub struct Lpm4Reader {
    root: Arc<Root<Current>>,
}

impl Current {
    #[inline(always)]
    fn lookup(&self, guard: &Guard, addr: u32) -> Option<NextHop> {
        match self {
            Current::Small(r) => r.lookup_pinned(guard, addr),
            Current::Large(r) => r.lookup_pinned(guard, addr),
        }
    }

    #[inline(always)]
    fn lookup_batch(&self, guard: &Guard, addrs: &[u32], out: &mut [Route]) {
        match self {
            Current::Small(r) => r.lookup_batch_pinned(guard, addrs, out),
            Current::Large(r) => r.lookup_batch_pinned(guard, addrs, out),
        }
    }
}

impl Lpm4Reader {
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
        self.root.load(&guard).lookup(&guard, addr)
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
        self.root.load(&guard).lookup_batch(&guard, addrs, out);
    }

    /// Pin once and look up many times. Keep a view for one batch or one
    /// poll loop iteration: while it lives, retired memory is not freed.
    pub fn pin(&self) -> Lpm4View<'_> {
        Lpm4View {
            root: &self.root,
            guard: epoch::pin(),
        }
    }
}

/// A pinned reader: lookups without pinning cost. Not `Send`.
pub struct Lpm4View<'r> {
    root: &'r Root<Current>,
    guard: Guard,
}

impl Lpm4View<'_> {
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
        self.root.load(&self.guard).lookup(&self.guard, addr)
    }

    /// Batch lookup, as [`Lpm4Reader::lookup_batch`].
    ///
    /// # Panics
    /// If `addrs` and `out` differ in length.
    #[inline(always)]
    pub fn lookup_batch(&self, addrs: &[u32], out: &mut [Route]) {
        self.root
            .load(&self.guard)
            .lookup_batch(&self.guard, addrs, out);
    }
}

#[cfg(all(test, not(miri)))]
mod tests {
    use super::*;
    use crate::lpm::oracle::Oracle4;

    /// Grow past LARGE_AT (to DIR-24-8) and shrink below SMALL_AT (back),
    /// with a reader thread checking probe routes that never change, and
    /// the oracle at each stage.
    #[test]
    fn moves_between_structures_keep_answers() {
        let mut w = Lpm4Writer::new();
        let probe = "192.0.2.0/24".parse::<Ipv4Net>().unwrap();
        w.insert(probe, 7).unwrap();
        let r = w.reader();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let reader = std::thread::spawn(move || {
            let mut out = [Route::NONE; 2];
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                r.lookup_batch(&[0xc000_0201, 0xc000_02ff], &mut out);
                assert_eq!(out, [Route::new(Some(7)); 2]);
                assert_eq!(r.pin().lookup(0xc000_0205), Some(7));
            }
        });
        let mut o = Oracle4::new();
        o.insert(probe, 7);
        let n = LARGE_AT as u32 + 10;
        let nets: Vec<Ipv4Net> = (0..n)
            .map(|i| Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + (i << 8)), 24).unwrap())
            .collect();
        for (i, p) in nets.iter().enumerate() {
            assert_eq!(w.insert(*p, i as u32).unwrap(), o.insert(*p, i as u32));
        }
        assert!(!w.is_compressed());
        let check = |w: &Lpm4Writer, o: &Oracle4| {
            let r = w.reader();
            let mut x = 0x0a00_0000u32;
            for _ in 0..20_000 {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let a = 0x0a00_0000 | (x & 0x01ff_ffff);
                assert_eq!(r.lookup_u32(a), o.lookup(Ipv4Addr::from(a)));
                assert_eq!(w.lookup(Ipv4Addr::from(a)), o.lookup(Ipv4Addr::from(a)));
            }
            assert_eq!(w.len(), o.len());
        };
        check(&w, &o);
        for p in &nets[SMALL_AT - 10..] {
            assert_eq!(w.remove(*p), o.remove(*p));
        }
        assert!(w.is_compressed());
        check(&w, &o);
        w.apply(&[Update::Insert("10.0.0.0/8".parse().unwrap(), 3)])
            .unwrap();
        o.insert("10.0.0.0/8".parse().unwrap(), 3);
        check(&w, &o);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        reader.join().unwrap();
        let big = Lpm4Writer::from_routes(nets.iter().map(|&p| (p, 1)), 1 << 10).unwrap();
        assert!(!big.is_compressed() && big.len() == nets.len());
        assert!(big.tbl8_groups_in_use() == 0 && big.get(nets[5]) == Some(1));
    }
}
