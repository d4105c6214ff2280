//! Longest-prefix match for IPv4 and IPv6: lock-free readers, one writer,
//! batch lookup with prefetch.
//!
//! # Contract
//! - IPv4 ([`Lpm4Writer`], module [`ipv4`]) is chosen per table by size:
//!   a compressed table ([`poptrie`]: a Poptrie under a 2^12 or 2^16 top
//!   level, ~0.3 MiB for 4,000 spread prefixes) up to
//!   [`ipv4::LARGE_AT`] prefixes, a DIR-24-8 table ([`v4`], as DPDK
//!   `rte_lpm`: one read in a 2^24-entry first level, plus one read in a
//!   256-entry group for addresses under a prefix longer than /24) above
//!   it, where it answers faster and updates cheaper. IPv6 ([`Lpm6Writer`],
//!   module [`ipv6`]) likewise: the compressed table (a 2^12 or 2^20 top
//!   level, ~80 KiB for a 200-prefix VRF) up to [`ipv6::LARGE_AT`]
//!   prefixes, above it [`v6`], a multibit trie with a direct 2^24-entry
//!   first level then 8-bit strides (as `rte_lpm6`) and a
//!   one-bit-per-entry summary of the first level that answers misses.
//!   [`chosen`] is the choice by size both use.
//! - Batch lookups (`lookup_batch`) take any number of addresses, in
//!   chunks of [`BATCH`]: the flat structures software-pipeline their
//!   chunks (long slices keep the memory system busy across chunks, which
//!   separate calls of 32 cannot); the compressed one walks the 32 lanes
//!   of a chunk level by level.
//! - A next hop is an index `0..=`[`MAX_NEXT_HOP`] (24 bits) into the caller's
//!   adjacency table; a lookup answers `Some(next_hop)` of the longest prefix
//!   that contains the address, or `None`; a batch lookup writes each answer
//!   as a [`Route`] (the same, undecoded until the caller asks).
//! - One writer (`Lpm4Writer`, `Lpm6Writer`, not `Clone`) owns the rule set;
//!   any number of readers (`Lpm4Reader`, `Lpm6Reader`: `Clone + Send + Sync`)
//!   look up without locks and without waiting on the writer. The
//!   publication schemes and their arguments are in the `table` module
//!   (DIR-24-8 and the IPv6 trie), [`poptrie`] and [`chosen`] (the move
//!   between a family's two structures).
//! - Answers are exact: inserting, replacing and removing overlapping
//!   prefixes in any order gives the same answers as the plain
//!   [`oracle`] (checked by property tests in that module).
//!
//! [`gen`] builds deterministic, realistic route tables for benches and the
//! CLI; [`limit`] is the random-read limit the benches compare lookups with.

pub mod chosen;
pub mod gen;
pub mod ipv4;
pub mod ipv6;
pub mod limit;
pub mod oracle;
pub mod poptrie;
pub mod v4;
pub mod v6;

mod mem;
mod table;

pub use ipv4::{Lpm4Reader, Lpm4View, Lpm4Writer};
pub use ipv6::{Lpm6Reader, Lpm6View, Lpm6Writer};

/// Index of a next hop (an adjacency) in the caller's table. Only the low
/// 24 bits are usable: see [`MAX_NEXT_HOP`].
pub type NextHop = u32;

/// Largest next-hop index a table can store (2^24 − 1).
pub const MAX_NEXT_HOP: NextHop = (1 << 24) - 1;

/// Batch size the lookup paths are tuned for: one rx batch of the pipeline.
pub const BATCH: usize = 32;

/// The answer of a batch lookup for one address: a next hop or no route,
/// kept in the 32-bit form the table stores (`bits 0..24` next hop,
/// `bit 24` valid) and decoded by [`Route::next_hop`] when the caller uses
/// it.
///
/// Why not `Option<NextHop>`: a batch of 32 is as fast as its last DRAM
/// miss lets the next batch start, and every instruction that waits on
/// the loaded entries delays that. Decoding 32 entries into `Option`s is
/// a test, a select and two stores each; the caller decodes only the
/// answers it uses, next to the work it does with them. With this and
/// the out-of-line batch path of `v4`, `xconnect-batch32` (`xconnect bench
/// --lpm`, 1M IPv4 prefixes) went from 0.75x to 0.88x of the random-read
/// limit measured in the same run.
#[derive(Clone, Copy, Default)]
#[repr(transparent)]
pub struct Route(pub(crate) u32);

impl PartialEq for Route {
    fn eq(&self, other: &Route) -> bool {
        self.next_hop() == other.next_hop()
    }
}

impl Eq for Route {}

/// `route == Some(nh)`: compare with what a single lookup answers.
impl PartialEq<Option<NextHop>> for Route {
    fn eq(&self, other: &Option<NextHop>) -> bool {
        self.next_hop() == *other
    }
}

impl std::hash::Hash for Route {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.next_hop().hash(h);
    }
}

impl Route {
    /// The no-route answer.
    pub const NONE: Route = Route(0);

    /// The next hop, or `None` when no prefix contains the address.
    #[inline(always)]
    pub fn next_hop(self) -> Option<NextHop> {
        table::decode(self.0)
    }

    /// The answer for `next_hop` (`None`: no route). Next hops above
    /// [`MAX_NEXT_HOP`] are truncated to 24 bits, as a table never holds
    /// them.
    #[inline]
    pub fn new(next_hop: Option<NextHop>) -> Route {
        match next_hop {
            Some(nh) => Route(table::VALID | (nh & table::NH_MASK)),
            None => Route::NONE,
        }
    }
}

/// `Some(nh) == route`: the same comparison the other way round.
impl PartialEq<Route> for Option<NextHop> {
    fn eq(&self, other: &Route) -> bool {
        *self == other.next_hop()
    }
}

impl From<Option<NextHop>> for Route {
    fn from(nh: Option<NextHop>) -> Route {
        Route::new(nh)
    }
}

impl From<Route> for Option<NextHop> {
    fn from(r: Route) -> Option<NextHop> {
        r.next_hop()
    }
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.next_hop().fmt(f)
    }
}

/// Why the writer refused an update. A refused update changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LpmError {
    /// The next hop does not fit in 24 bits.
    #[error("next hop {0} is larger than the maximum {MAX_NEXT_HOP}")]
    NextHopTooLarge(NextHop),
    /// All second-level groups (tbl8) are in use or still waiting for
    /// readers to move on; build the writer with a larger capacity.
    #[error("all {capacity} tbl8 groups are in use; raise the writer's group capacity")]
    GroupsExhausted {
        /// Number of groups the table was built with.
        capacity: u32,
    },
}

/// One change of a batch applied atomically by `apply` on a writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update<P> {
    /// Add the prefix, or replace its next hop if it is already present.
    Insert(P, NextHop),
    /// Remove the prefix if it is present.
    Remove(P),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_cross_threads() {
        fn reader<T: Send + Sync + Clone + 'static>() {}
        fn writer<T: Send + 'static>() {}
        reader::<Lpm4Reader>();
        reader::<Lpm6Reader>();
        writer::<Lpm4Writer>();
        writer::<Lpm6Writer>();
    }

    #[test]
    fn route_round_trips_next_hops() {
        for nh in [None, Some(0), Some(1), Some(255), Some(MAX_NEXT_HOP)] {
            assert_eq!(Route::new(nh).next_hop(), nh);
            assert_eq!(Option::<NextHop>::from(Route::from(nh)), nh);
        }
        assert_eq!(Route::NONE.next_hop(), None);
        assert_eq!(Route::default(), Route::NONE);
        assert_ne!(Route::new(Some(0)), Route::NONE);
        assert_eq!(format!("{:?}", Route::new(Some(7))), "Some(7)");
        assert!(Route::new(Some(7)) == Some(7) && Some(7) == Route::new(Some(7)));
        assert!(Route::NONE != Some(0) && None::<NextHop> == Route::NONE);
    }
}
