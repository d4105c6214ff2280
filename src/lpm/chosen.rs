//! A table that holds one of two structures and moves between them by
//! its number of prefixes: the public IPv4 and IPv6 tables
//! ([`super::Lpm4Writer`], [`super::Lpm6Writer`]) are this with a
//! compressed structure ([`super::poptrie`]) for small and medium tables
//! and a flat one (DIR-24-8, [`super::v4`]; the 8-bit-stride trie,
//! [`super::v6`]) for large ones.
//!
//! # Contract
//! - **Choice by size, with hysteresis.** A table holds its small
//!   structure while it has at most [`Structure::LARGE_AT`] prefixes (of
//!   the small structure), moves to the large one when it grows past
//!   that, and moves back when it shrinks below [`Structure::SMALL_AT`]. Why: a 4,000-prefix IPv4 VRF costs ~0.3 MiB
//!   compressed against ~65 MiB in DIR-24-8 (spread prefixes), a 200-prefix
//!   IPv6 VRF ~0.08 MiB against ~8 MiB in the trie; on the 1.07M-prefix
//!   real IPv4 table DIR-24-8 answers batches of 32 random addresses ~2×
//!   faster and single updates ~90× cheaper on this machine, and the IPv6
//!   trie answers addresses inside a large table faster (docs/lpm.md has
//!   the figures).
//! - **Concurrency.** Readers reach the table through a second root: one
//!   atomic pointer naming which structure is current. Updates within one
//!   structure follow its own scheme (see its module). A move between
//!   structures builds the new one completely from the rule set, then
//!   publishes it with one root swap: every address answers its route
//!   from before or after the move (the same rule set), and the old
//!   structure is freed after its readers moved on (epoch reclamation).
//! - Answers are exact: every structure is checked against
//!   [`super::oracle`], and so is this wrapper across moves.

use super::mem::{Root, RootWriter};
use super::{LpmError, NextHop, Route, Update};
use crossbeam::epoch::{self, Guard};
use std::sync::Arc;

/// What the chooser needs of a structure's writer (sealed: implemented by
/// this crate's tables only).
pub trait Structure: Send + Sized + 'static {
    /// The prefix type (`Ipv4Net`, `Ipv6Net`).
    type Net: Copy;
    /// The address type (`Ipv4Addr`, `Ipv6Addr`).
    type Addr: Copy;
    /// An address as an integer in host order (`u32`, `u128`).
    type Bits: Copy;
    /// The structure's reader.
    type Reader: StructureReader<Self::Bits>;
    /// As the small structure: a table moves to the large one when it has
    /// more prefixes than this.
    const LARGE_AT: usize;
    /// As the small structure: a table in the large structure moves back
    /// below this.
    const SMALL_AT: usize;
    /// An empty table with room for `groups` groups where it has pools.
    fn empty(groups: u32) -> Self;
    /// A table holding `routes` (later duplicates replace earlier ones).
    fn build(routes: Vec<(Self::Net, NextHop)>, groups: u32) -> Result<Self, LpmError>;
    /// See [`LpmWriter::insert`].
    fn insert(&mut self, prefix: Self::Net, nh: NextHop) -> Result<Option<NextHop>, LpmError>;
    /// See [`LpmWriter::remove`].
    fn remove(&mut self, prefix: Self::Net) -> Option<NextHop>;
    /// See [`LpmWriter::apply`].
    fn apply(&mut self, updates: &[Update<Self::Net>]) -> Result<(), LpmError>;
    /// See [`LpmWriter::get`].
    fn get(&self, prefix: Self::Net) -> Option<NextHop>;
    /// See [`LpmWriter::lookup`].
    fn lookup(&self, addr: Self::Addr) -> Option<NextHop>;
    /// See [`LpmWriter::len`].
    fn len(&self) -> usize;
    /// See [`LpmWriter::is_empty`].
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// See [`LpmWriter::routes`].
    fn routes(&self) -> Box<dyn Iterator<Item = (Self::Net, NextHop)> + '_>;
    /// See [`LpmWriter::memory_bytes`].
    fn memory_bytes(&self) -> usize;
    /// See [`LpmWriter::huge_page_bytes`].
    fn huge_page_bytes(&self) -> usize;
    /// See [`LpmWriter::resident_bytes`].
    fn resident_bytes(&self) -> usize;
    /// See [`LpmWriter::table_bytes`].
    fn table_bytes(&self) -> usize;
    /// See [`LpmWriter::groups_in_use`].
    fn groups_in_use(&self) -> u32;
    /// A reader of this structure.
    fn reader(&self) -> Self::Reader;
}

/// What the chooser needs of a structure's reader.
pub trait StructureReader<B>: Send + Sync + 'static {
    /// Longest-prefix match under the caller's pinned guard.
    fn lookup_pinned(&self, guard: &Guard, addr: B) -> Option<NextHop>;
    /// Batch lookup under the caller's pinned guard.
    fn lookup_batch_pinned(&self, guard: &Guard, addrs: &[B], out: &mut [Route]);
}

/// Which structure readers use now.
pub(crate) enum Current<S: Structure, L: Structure<Bits = S::Bits>> {
    Small(S::Reader),
    Large(L::Reader),
}

/// The writer's structure.
enum Imp<S, L> {
    Small(S),
    Large(L),
}

/// Call `$f` on whichever structure `$imp` holds.
macro_rules! either {
    ($imp:expr, $w:ident => $f:expr) => {
        match $imp {
            Imp::Small($w) => $f,
            Imp::Large($w) => $f,
        }
    };
}

/// The single writer of a table that is a small structure `S` or a large
/// one `L` by its size. Not `Clone`: there is one writer. Use it as
/// [`super::Lpm4Writer`] or [`super::Lpm6Writer`].
pub struct LpmWriter<S: Structure, L: Structure<Net = S::Net, Addr = S::Addr, Bits = S::Bits>> {
    imp: Imp<S, L>,
    root: RootWriter<Current<S, L>>,
    /// Group capacity for when the table is (or becomes) `L`.
    groups: u32,
}

impl<S, L> LpmWriter<S, L>
where
    S: Structure,
    L: Structure<Net = S::Net, Addr = S::Addr, Bits = S::Bits>,
{
    /// An empty table (small structure) that gets room for `groups`
    /// groups if it grows into the large one.
    pub fn with_capacity(groups: u32) -> Self {
        Self::wrap(Imp::Small(S::empty(groups)), groups)
    }

    fn wrap(imp: Imp<S, L>, groups: u32) -> Self {
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
    /// in the structure its size calls for, with room for `groups`
    /// groups if that is the large one.
    pub fn from_routes(
        routes: impl IntoIterator<Item = (S::Net, NextHop)>,
        groups: u32,
    ) -> Result<Self, LpmError> {
        let routes: Vec<(S::Net, NextHop)> = routes.into_iter().collect();
        // Distinct prefixes are at most the routes given.
        if routes.len() <= S::LARGE_AT {
            return Ok(Self::wrap(Imp::Small(S::build(routes, groups)?), groups));
        }
        let large = L::build(routes, groups)?;
        if large.len() <= S::LARGE_AT {
            let small = S::build(large.routes().collect(), groups)?;
            return Ok(Self::wrap(Imp::Small(small), groups));
        }
        Ok(Self::wrap(Imp::Large(large), groups))
    }

    /// Move to the other structure if the size calls for it.
    fn rebalance(&mut self) -> Result<(), LpmError> {
        match &self.imp {
            Imp::Small(w) if w.len() > S::LARGE_AT => {
                let large = L::build(w.routes().collect(), self.groups)?;
                self.root.publish(Current::Large(large.reader()));
                self.imp = Imp::Large(large);
            }
            Imp::Large(w) if w.len() < S::SMALL_AT => {
                let small = S::build(w.routes().collect(), self.groups)?;
                self.root.publish(Current::Small(small.reader()));
                self.imp = Imp::Small(small);
            }
            _ => self.root.collect(),
        }
        Ok(())
    }

    /// Whether the table is in its small (compressed) structure now.
    pub fn is_compressed(&self) -> bool {
        matches!(self.imp, Imp::Small(_))
    }

    /// A reader handle on this table; clone it for each worker.
    pub fn reader(&self) -> LpmReader<S, L> {
        LpmReader {
            root: self.root.shared(),
        }
    }

    /// Add `prefix` (host bits ignored) → `next_hop`, or replace its next
    /// hop. Returns the previous next hop. Visible to readers at once (see
    /// the contract of the structure's module).
    pub fn insert(
        &mut self,
        prefix: S::Net,
        next_hop: NextHop,
    ) -> Result<Option<NextHop>, LpmError> {
        let old = either!(&mut self.imp, w => w.insert(prefix, next_hop)?);
        if old.is_none() {
            // A move that fails (out of groups) leaves the table as it
            // is, holding the route.
            let _ = self.rebalance();
        }
        Ok(old)
    }

    /// Remove `prefix`; addresses under it fall back to the longest
    /// remaining prefix that covers them. Returns its next hop if present.
    pub fn remove(&mut self, prefix: S::Net) -> Option<NextHop> {
        let old = either!(&mut self.imp, w => w.remove(prefix));
        if old.is_some() {
            let _ = self.rebalance();
        }
        old
    }

    /// Apply a batch and publish it atomically: readers see the table
    /// before or after the whole batch. On error nothing changes.
    pub fn apply(&mut self, updates: &[Update<S::Net>]) -> Result<(), LpmError> {
        either!(&mut self.imp, w => w.apply(updates)?);
        let _ = self.rebalance();
        Ok(())
    }

    /// Next hop of exactly `prefix`, if present.
    pub fn get(&self, prefix: S::Net) -> Option<NextHop> {
        either!(&self.imp, w => w.get(prefix))
    }

    /// Longest-prefix match as readers see it now.
    pub fn lookup(&self, addr: S::Addr) -> Option<NextHop> {
        either!(&self.imp, w => w.lookup(addr))
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        either!(&self.imp, w => w.len())
    }

    /// No prefix at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every prefix and its next hop, in no particular order.
    pub fn routes(&self) -> Box<dyn Iterator<Item = (S::Net, NextHop)> + '_> {
        either!(&self.imp, w => w.routes())
    }

    /// Bytes used in all: the table readers see plus the writer's
    /// bookkeeping.
    pub fn memory_bytes(&self) -> usize {
        either!(&self.imp, w => w.memory_bytes())
    }

    /// Bytes of the table backed by transparent huge pages now (the flat
    /// structures' first level; 0 for a compressed table).
    pub fn huge_page_bytes(&self) -> usize {
        either!(&self.imp, w => w.huge_page_bytes())
    }

    /// Bytes of the published table committed in memory now.
    pub fn resident_bytes(&self) -> usize {
        either!(&self.imp, w => w.resident_bytes())
    }

    /// Bytes of the lookup structure readers see, without the writer's
    /// bookkeeping.
    pub fn table_bytes(&self) -> usize {
        either!(&self.imp, w => w.table_bytes())
    }

    /// Groups in use (tbl8 groups of DIR-24-8, groups of the IPv6 trie; 0
    /// while the table is compressed).
    pub fn groups_in_use(&self) -> u32 {
        either!(&self.imp, w => w.groups_in_use())
    }
}

/// A lock-free read handle: `Clone + Send + Sync`, one per worker. Use it
/// as [`super::Lpm4Reader`] or [`super::Lpm6Reader`].
pub struct LpmReader<S: Structure, L: Structure<Bits = S::Bits>> {
    root: Arc<Root<Current<S, L>>>,
}

impl<S: Structure, L: Structure<Bits = S::Bits>> Clone for LpmReader<S, L> {
    fn clone(&self) -> Self {
        Self {
            root: Arc::clone(&self.root),
        }
    }
}

impl<S: Structure, L: Structure<Bits = S::Bits>> Current<S, L> {
    #[inline(always)]
    fn lookup(&self, guard: &Guard, addr: S::Bits) -> Option<NextHop> {
        match self {
            Current::Small(r) => r.lookup_pinned(guard, addr),
            Current::Large(r) => r.lookup_pinned(guard, addr),
        }
    }

    #[inline(always)]
    fn lookup_batch(&self, guard: &Guard, addrs: &[S::Bits], out: &mut [Route]) {
        match self {
            Current::Small(r) => r.lookup_batch_pinned(guard, addrs, out),
            Current::Large(r) => r.lookup_batch_pinned(guard, addrs, out),
        }
    }
}

impl<S: Structure, L: Structure<Bits = S::Bits>> LpmReader<S, L> {
    /// Longest-prefix match of `addr` (an integer in host order). Pins an
    /// epoch guard per call; for many lookups use [`Self::lookup_batch`]
    /// or [`Self::pin`].
    #[inline]
    pub fn lookup_bits(&self, addr: S::Bits) -> Option<NextHop> {
        let guard = epoch::pin();
        self.root.load(&guard).lookup(&guard, addr)
    }

    /// Look up every address of `addrs` (host order) into `out` under one
    /// epoch guard, in batches of 32 (see the structure's module).
    /// `out[i].next_hop()` is what [`Self::lookup_bits`] of `addrs[i]`
    /// answers.
    ///
    /// # Panics
    /// If `addrs` and `out` differ in length.
    #[inline]
    pub fn lookup_batch(&self, addrs: &[S::Bits], out: &mut [Route]) {
        let guard = epoch::pin();
        self.root.load(&guard).lookup_batch(&guard, addrs, out);
    }

    /// Pin once and look up many times. Keep a view for one batch or one
    /// poll loop iteration: while it lives, retired memory is not freed.
    pub fn pin(&self) -> LpmView<'_, S, L> {
        LpmView {
            root: &self.root,
            guard: epoch::pin(),
        }
    }
}

/// A pinned reader: lookups without pinning cost. Not `Send`. Use it as
/// [`super::Lpm4View`] or [`super::Lpm6View`].
pub struct LpmView<'r, S: Structure, L: Structure<Bits = S::Bits>> {
    root: &'r Root<Current<S, L>>,
    guard: Guard,
}

impl<S: Structure, L: Structure<Bits = S::Bits>> LpmView<'_, S, L> {
    /// Let the writer reclaim memory retired since this view was pinned,
    /// and stay pinned: cheaper than a new [`epoch::pin`]. A worker that
    /// keeps one view calls this between batches.
    #[inline]
    pub fn repin(&mut self) {
        self.guard.repin();
    }

    /// Longest-prefix match of `addr` (host order).
    #[inline(always)]
    pub fn lookup(&self, addr: S::Bits) -> Option<NextHop> {
        self.root.load(&self.guard).lookup(&self.guard, addr)
    }

    /// Batch lookup, as [`LpmReader::lookup_batch`].
    ///
    /// # Panics
    /// If `addrs` and `out` differ in length.
    #[inline(always)]
    pub fn lookup_batch(&self, addrs: &[S::Bits], out: &mut [Route]) {
        self.root
            .load(&self.guard)
            .lookup_batch(&self.guard, addrs, out);
    }
}

/// [`Structure`] for a writer type whose inherent methods have the
/// chooser's names: `$net`/`$addr`/`$bits` its types, `$empty` and
/// `$build` its constructors, `$groups` its group count, `$large` and
/// `$small` its thresholds as a small structure.
macro_rules! structure {
    ($w:ty, $r:ty, $net:ty, $addr:ty, $bits:ty, $empty:expr, $build:expr, $groups:ident, $large:expr, $small:expr) => {
        impl $crate::lpm::chosen::Structure for $w {
            type Net = $net;
            type Addr = $addr;
            type Bits = $bits;
            type Reader = $r;
            const LARGE_AT: usize = $large;
            const SMALL_AT: usize = $small;
            fn empty(groups: u32) -> Self {
                $empty(groups)
            }
            fn build(
                routes: Vec<($net, $crate::lpm::NextHop)>,
                groups: u32,
            ) -> Result<Self, $crate::lpm::LpmError> {
                $build(routes, groups)
            }
            fn insert(
                &mut self,
                p: $net,
                nh: $crate::lpm::NextHop,
            ) -> Result<Option<$crate::lpm::NextHop>, $crate::lpm::LpmError> {
                <$w>::insert(self, p, nh)
            }
            fn remove(&mut self, p: $net) -> Option<$crate::lpm::NextHop> {
                <$w>::remove(self, p)
            }
            fn apply(
                &mut self,
                u: &[$crate::lpm::Update<$net>],
            ) -> Result<(), $crate::lpm::LpmError> {
                <$w>::apply(self, u)
            }
            fn get(&self, p: $net) -> Option<$crate::lpm::NextHop> {
                <$w>::get(self, p)
            }
            fn lookup(&self, a: $addr) -> Option<$crate::lpm::NextHop> {
                <$w>::lookup(self, a)
            }
            fn len(&self) -> usize {
                <$w>::len(self)
            }
            fn routes(&self) -> Box<dyn Iterator<Item = ($net, $crate::lpm::NextHop)> + '_> {
                Box::new(<$w>::routes(self))
            }
            fn memory_bytes(&self) -> usize {
                <$w>::memory_bytes(self)
            }
            fn huge_page_bytes(&self) -> usize {
                <$w>::huge_page_bytes(self)
            }
            fn resident_bytes(&self) -> usize {
                <$w>::resident_bytes(self)
            }
            fn table_bytes(&self) -> usize {
                <$w>::table_bytes(self)
            }
            fn groups_in_use(&self) -> u32 {
                <$w>::$groups(self)
            }
            fn reader(&self) -> $r {
                <$w>::reader(self)
            }
        }
        impl $crate::lpm::chosen::StructureReader<$bits> for $r {
            #[inline(always)]
            fn lookup_pinned(
                &self,
                guard: &crossbeam::epoch::Guard,
                addr: $bits,
            ) -> Option<$crate::lpm::NextHop> {
                <$r>::lookup_pinned(self, guard, addr)
            }
            #[inline(always)]
            fn lookup_batch_pinned(
                &self,
                guard: &crossbeam::epoch::Guard,
                addrs: &[$bits],
                out: &mut [$crate::lpm::Route],
            ) {
                <$r>::lookup_batch_pinned(self, guard, addrs, out)
            }
        }
    };
}
pub(crate) use structure;
