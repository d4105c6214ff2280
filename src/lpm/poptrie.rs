//! Longest-prefix match, compressed, for IPv4 and IPv6: a Poptrie (Asai &
//! Ohara, SIGCOMM 2015) under a direct-pointing top level, generic over
//! the address [`Family`] ([`V4`]: [`Poptrie4Writer`], [`V6`]:
//! [`Poptrie6Writer`]).
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
//!   below it down to the longest prefix under it (IPv4: at most 3 for
//!   `top_bits = 16`; IPv6: a /48 under a 16-bit top level takes 6), then
//!   one leaf.
//! - **Size.** A table costs what its prefixes need: 8 bytes per top slot
//!   plus ~24 bytes per node and 4 bytes per leaf run; no huge first level.
//! - **Concurrency** (one writer, lock-free readers, as [`super::v4`]).
//!   Subtrees are never modified after they are linked. A single
//!   [`PoptrieWriter::insert`] / [`PoptrieWriter::remove`] builds a fresh
//!   subtree for each top slot the prefix touches and links it with one
//!   atomic `Release` swap of the slot; readers load slots with `Acquire`.
//!   The replaced subtree is freed through `crossbeam::epoch` after every
//!   reader pinned at the swap has unpinned. Every address therefore
//!   answers its old or its new route during an update (a prefix shorter
//!   than the top level changes slot by slot). [`PoptrieWriter::apply`]
//!   builds a whole new table from the rule set and publishes it with one
//!   root swap (the root scheme of the `mem` module): a batch is seen whole
//!   or not at all.
//! - The writer keeps the rule set in address order (a `BTreeMap`), which
//!   is what every rebuild reads; answers are exact for any sequence of
//!   overlapping inserts, replaces and removes, checked against
//!   [`super::oracle::Oracle4`] and [`super::oracle::Oracle6`].
//! - Batch lookups prefetch the 32 slots of a batch, then walk the lanes.

use super::mem::{prefetch, prefetch_ptr, Root, RootWriter};
use super::table::{NH_MASK, VALID};
use super::{LpmError, NextHop, Route, Update, BATCH, MAX_NEXT_HOP};
use crossbeam::epoch::{self, Guard};
use ipnet::{Ipv4Net, Ipv6Net};
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Bits per node.
const STRIDE: u32 = 6;
/// Words (`u32`) per node: vector (2), leafvec (2), leaf base, child base.
const NODE_WORDS: usize = 6;
/// Top level of small tables: 4,096 slots (32 KiB).
const SMALL_TOP: u32 = 12;
/// Top level of large IPv4 tables: 65,536 slots (512 KiB).
const LARGE_TOP_V4: u32 = 16;
/// Top level of large IPv6 tables.
const LARGE_TOP_V6: u32 = 20;
/// A table grows to the large top level above this many prefixes...
const GROW_AT: usize = 32_768;
/// ...and shrinks back to the small one below this many.
const SHRINK_AT: usize = 8_192;

mod sealed {
    pub trait Sealed {}
}

/// An address family of the compressed table: [`V4`] or [`V6`] (sealed).
pub trait Family: sealed::Sealed + Send + Sync + 'static {
    /// An address as an unsigned integer in host order (`u32`, `u128`).
    type Bits: Copy + Ord + Eq + Send + Sync + std::fmt::Debug + 'static;
    /// The prefix type of the API (`Ipv4Net`, `Ipv6Net`).
    type Net: Copy + std::fmt::Debug;
    /// The address type of the API (`Ipv4Addr`, `Ipv6Addr`).
    type Addr: Copy + std::fmt::Debug;
    /// Address width in bits.
    const BITS: u8;
    /// Top-level bits of a large table (more than `GROW_AT` prefixes).
    const LARGE_TOP: u32;
    /// The 6 bits of `a` at bit position `pos < BITS` counted from the top
    /// (bits past the end read as zero).
    #[inline(always)]
    fn chunk(a: Self::Bits, pos: u32) -> u32 {
        Self::top6(Self::shl(a, pos))
    }
    /// `a` shifted left by `n < BITS` bits.
    fn shl(a: Self::Bits, n: u32) -> Self::Bits;
    /// The top 6 bits of `a`.
    fn top6(a: Self::Bits) -> u32;
    /// Top-level slot of `a` in a `2^top_bits` top level.
    fn slot(a: Self::Bits, top_bits: u32) -> usize;
    /// First and last address of top-level slot `slot`.
    fn slot_range(slot: usize, top_bits: u32) -> (Self::Bits, Self::Bits);
    /// `a` with all but its first `len` bits cleared.
    fn masked(a: Self::Bits, len: u32) -> Self::Bits;
    /// The network (host bits cleared) and length of a prefix.
    fn split(net: Self::Net) -> (Self::Bits, u8);
    /// The prefix of network `a` and length `len` (`len <= BITS`).
    fn join(a: Self::Bits, len: u8) -> Self::Net;
    /// An address as bits.
    fn bits(addr: Self::Addr) -> Self::Bits;
}

/// IPv4.
pub enum V4 {}
/// IPv6.
pub enum V6 {}
impl sealed::Sealed for V4 {}
impl sealed::Sealed for V6 {}

/// The [`Family`] impl of one address family: its integer, prefix and
/// address types, width and large top level.
macro_rules! family {
    ($f:ty, $bits:ty, $net:ty, $addr:ty, $width:literal, $large:expr) => {
        impl Family for $f {
            type Bits = $bits;
            type Net = $net;
            type Addr = $addr;
            const BITS: u8 = $width;
            const LARGE_TOP: u32 = $large;
            #[inline(always)]
            fn shl(a: $bits, n: u32) -> $bits {
                a << n
            }
            #[inline(always)]
            fn top6(a: $bits) -> u32 {
                (a >> ($width - STRIDE)) as u32
            }
            #[inline(always)]
            fn slot(a: $bits, top_bits: u32) -> usize {
                (a >> ($width - top_bits)) as usize
            }
            fn slot_range(slot: usize, top_bits: u32) -> ($bits, $bits) {
                let base = (slot as $bits) << ($width - top_bits);
                (base, base | !Self::masked(<$bits>::MAX, top_bits))
            }
            fn masked(a: $bits, len: u32) -> $bits {
                if len == 0 {
                    0
                } else {
                    a & (<$bits>::MAX << ($width - len))
                }
            }
            fn split(net: $net) -> ($bits, u8) {
                let p = net.trunc();
                (p.network().into(), p.prefix_len())
            }
            fn join(a: $bits, len: u8) -> $net {
                <$net>::new(<$addr>::from(a), len).expect("stored length fits the family")
            }
            fn bits(addr: $addr) -> $bits {
                addr.into()
            }
        }
    };
}

family!(V4, u32, Ipv4Net, Ipv4Addr, 32, LARGE_TOP_V4);
family!(V6, u128, Ipv6Net, Ipv6Addr, 128, LARGE_TOP_V6);

/// The compressed IPv4 table's writer.
pub type Poptrie4Writer = PoptrieWriter<V4>;
/// The compressed IPv4 table's reader.
pub type Poptrie4Reader = PoptrieReader<V4>;
/// A pinned reader of a compressed IPv4 table.
pub type Poptrie4View<'r> = PoptrieView<'r, V4>;
/// The compressed IPv6 table's writer.
pub type Poptrie6Writer = PoptrieWriter<V6>;
/// The compressed IPv6 table's reader.
pub type Poptrie6Reader = PoptrieReader<V6>;
/// A pinned reader of a compressed IPv6 table.
pub type Poptrie6View<'r> = PoptrieView<'r, V6>;

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
fn walk<F: Family>(data: &[u32], addr: F::Bits, top_bits: u32) -> u32 {
    let mut pos = top_bits;
    let mut n = 1usize;
    loop {
        let v = F::chunk(addr, pos);
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
pub(crate) struct Snap<F: Family> {
    top_bits: u32,
    top: Box<[AtomicU64]>,
    _family: PhantomData<F>,
}

impl<F: Family> Drop for Snap<F> {
    fn drop(&mut self) {
        // Most slots of a small table hold a route (odd): skip 16 of them
        // at a time on one test of their AND (plain loads through
        // `&mut`, which vectorise), and look at each slot only in a chunk
        // that has a subtree.
        for chunk in self.top.chunks_mut(16) {
            if chunk.iter_mut().fold(1, |all, s| all & *s.get_mut()) & 1 != 0 {
                continue;
            }
            for s in chunk {
                let v = *s.get_mut();
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
}

impl<F: Family> Snap<F> {
    /// Route bits for `addr`.
    #[inline(always)]
    fn lookup(&self, addr: F::Bits) -> u32 {
        let s = self.top[F::slot(addr, self.top_bits)].load(Ordering::Acquire);
        if s & 1 != 0 {
            return (s >> 1) as u32;
        }
        // SAFETY: `s` was loaded with Acquire from this snap, which the
        // caller holds under a pinned guard (or as the writer); a subtree
        // is freed only after being unlinked and a grace period.
        walk::<F>(unsafe { sub_data(s) }, addr, self.top_bits)
    }

    /// Exactly one batch, walked level by level across the lanes: the 32
    /// slots are prefetched, then loaded; each round then reads one node
    /// (or the final leaf) of every lane still walking, after every one of
    /// them was prefetched in the round before. A lane's walk is a chain of
    /// dependent reads (IPv6: a /48 under a 16-bit top level is 6 nodes and
    /// a leaf); walking the lanes side by side keeps up to 32 of those
    /// reads in flight instead of one.
    ///
    /// Measured against walking each lane to its end (docs/lpm.md).
    #[inline(always)]
    fn lookup_32_body(&self, addrs: &[F::Bits; BATCH], out: &mut [Route; BATCH]) {
        /// `at` of a lane whose next read is its leaf: bit 31 (no subtree
        /// comes near 2^31 words).
        const LEAF: u32 = 1 << 31;
        let top = &*self.top;
        let tb = self.top_bits;
        for &a in addrs {
            prefetch(&top[F::slot(a, tb)]);
        }
        let mut sub = [0u64; BATCH];
        // Each lane's address shifted so that its next 6 bits are on top.
        let mut rest = [F::shl(addrs[0], 0); BATCH];
        let mut at = [0u32; BATCH];
        let mut lanes = [0u8; BATCH];
        let mut walking = 0;
        for (i, &a) in addrs.iter().enumerate() {
            let s = top[F::slot(a, tb)].load(Ordering::Acquire);
            if s & 1 != 0 {
                out[i].0 = (s >> 1) as u32;
            } else {
                // The length word and the root node.
                prefetch_ptr(s as usize as *const u32);
                prefetch_ptr((s as usize as *const u32).wrapping_add(NODE_WORDS));
                sub[i] = s;
                rest[i] = F::shl(a, tb);
                at[i] = 1;
                lanes[walking] = i as u8;
                walking += 1;
            }
        }
        let mut data: [&[u32]; BATCH] = [&[]; BATCH];
        let mut first = true;
        while walking > 0 {
            let mut still = 0;
            for k in 0..walking {
                let i = lanes[k] as usize;
                if first {
                    // SAFETY: `sub[i]` was loaded with Acquire from this
                    // snap, which the caller holds under a pinned guard (or
                    // as the writer); a subtree is freed only after being
                    // unlinked and a grace period.
                    data[i] = unsafe { sub_data(sub[i]) };
                }
                let d = data[i];
                let n = at[i];
                if n & LEAF != 0 {
                    out[i].0 = d[(n & !LEAF) as usize];
                    continue;
                }
                let n = n as usize;
                let bit = 1u64 << F::top6(rest[i]);
                let upto = (bit << 1).wrapping_sub(1);
                let vector = u64::from(d[n]) | (u64::from(d[n + 1]) << 32);
                let next = if vector & bit != 0 {
                    let rank = (vector & upto).count_ones() as usize - 1;
                    rest[i] = F::shl(rest[i], STRIDE);
                    let c = d[n + 5] as usize + NODE_WORDS * rank;
                    at[i] = c as u32;
                    c
                } else {
                    let leafvec = u64::from(d[n + 2]) | (u64::from(d[n + 3]) << 32);
                    let rank = (leafvec & upto).count_ones() as usize - 1;
                    let l = d[n + 4] as usize + rank;
                    at[i] = l as u32 | LEAF;
                    l
                };
                prefetch_ptr(d.as_ptr().wrapping_add(next));
                lanes[still] = i as u8;
                still += 1;
            }
            walking = still;
            first = false;
        }
    }

    /// [`Self::lookup_32_body`] compiled for a CPU with `POPCNT`, which
    /// every node visit uses twice: without it (the default x86-64
    /// target) a population count is a dozen instructions.
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    #[target_feature(enable = "popcnt")]
    #[inline(never)]
    fn lookup_32_popcnt(&self, addrs: &[F::Bits; BATCH], out: &mut [Route; BATCH]) {
        self.lookup_32_body(addrs, out);
    }

    /// [`Self::lookup_32_body`] for any CPU.
    #[inline(never)]
    fn lookup_32_plain(&self, addrs: &[F::Bits; BATCH], out: &mut [Route; BATCH]) {
        self.lookup_32_body(addrs, out);
    }

    /// One batch of [`BATCH`], with `POPCNT` where the CPU has it.
    #[inline(always)]
    fn lookup_32(&self, addrs: &[F::Bits; BATCH], out: &mut [Route; BATCH]) {
        #[cfg(all(target_arch = "x86_64", not(miri)))]
        if std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: the CPU has POPCNT (detected just above), the one
            // feature the function is compiled for.
            unsafe { self.lookup_32_popcnt(addrs, out) };
            return;
        }
        self.lookup_32_plain(addrs, out);
    }

    /// Any number of addresses, in batches of [`BATCH`].
    #[inline]
    fn lookup_slice(&self, addrs: &[F::Bits], out: &mut [Route]) {
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

/// A rule for the builder: network, length, route bits.
type Rule<F> = (<F as Family>::Bits, u8, u32);

/// Builds subtrees; its buffers are reused from one subtree to the next.
struct Builder<F: Family> {
    /// Nodes, `NODE_WORDS` each (leaf bases relative to `leaves`).
    nodes: Vec<u32>,
    leaves: Vec<u32>,
    _family: PhantomData<F>,
}

impl<F: Family> Default for Builder<F> {
    fn default() -> Self {
        Self {
            nodes: Vec::new(),
            leaves: Vec::new(),
            _family: PhantomData,
        }
    }
}

impl<F: Family> Builder<F> {
    /// The slot value of one slot of a `top_bits` top level: `default` is
    /// the route of the longest prefix of at most `top_bits` covering the
    /// slot, `rules` the longer prefixes inside it, sorted by network then
    /// length. A route slot when the slot is uniform (no rules), else a
    /// new subtree.
    fn build(&mut self, top_bits: u32, default: u32, rules: &[Rule<F>]) -> u64 {
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
    fn node(&mut self, at: usize, pos: u32, default: u32, rules: &[Rule<F>]) {
        let end = pos + STRIDE;
        let mut vals = [default; 64];
        // Sorted by (network, len), a prefix comes after every prefix that
        // contains it: filling in this order leaves the longest match.
        for &(a, len, r) in rules {
            if u32::from(len) > pos && u32::from(len) <= end {
                let v = F::chunk(a, pos) as usize;
                let n = 1usize << (end - u32::from(len));
                vals[v..v + n].fill(r);
            }
        }
        let mut vector = 0u64;
        for &(a, len, _) in rules {
            if u32::from(len) > end {
                vector |= 1 << F::chunk(a, pos);
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
            let v = F::chunk(a, pos);
            let mut j = i;
            while j < rules.len() && F::chunk(rules[j].0, pos) == v {
                j += 1;
            }
            self.node(child, end, vals[v as usize], &rules[i..j]);
            child += NODE_WORDS;
            i = j;
        }
    }
}

/// The rule set: (network, length) → next hop, in address order (a
/// prefix before the longer prefixes inside it).
type Rules<F> = BTreeMap<(<F as Family>::Bits, u8), NextHop>;

/// The single writer of a compressed table (of [`Family`] `F`). Not
/// `Clone`.
pub struct PoptrieWriter<F: Family> {
    root: RootWriter<Snap<F>>,
    rules: Rules<F>,
    builder: Builder<F>,
    scratch: Vec<Rule<F>>,
    /// Bytes of the subtrees linked in the published table.
    sub_bytes: usize,
}

impl<F: Family> Default for PoptrieWriter<F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F: Family> PoptrieWriter<F> {
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
    /// DIR-24-8 writer ([`super::v4::Dir24Writer`]) and ignored: this
    /// table has no fixed pools.
    pub fn with_tbl8_groups(groups: u32) -> Self {
        let _ = groups;
        Self::new()
    }

    /// An empty table, as [`Self::with_tbl8_groups`] (the name of the
    /// IPv6 trie's constructor).
    pub fn with_groups(groups: u32) -> Self {
        Self::with_tbl8_groups(groups)
    }

    /// A table holding `routes` (later duplicates replace earlier ones),
    /// built in one pass over the sorted rule set. `tbl8_groups` is
    /// ignored (see [`Self::with_tbl8_groups`]).
    pub fn from_routes(
        routes: impl IntoIterator<Item = (F::Net, NextHop)>,
        tbl8_groups: u32,
    ) -> Result<Self, LpmError> {
        let _ = tbl8_groups;
        let mut v: Vec<((F::Bits, u8), usize, NextHop)> = Vec::new();
        for (i, (p, nh)) in routes.into_iter().enumerate() {
            if nh > MAX_NEXT_HOP {
                return Err(LpmError::NextHopTooLarge(nh));
            }
            v.push((F::split(p), i, nh));
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
        let rules: Rules<F> = v.into_iter().map(|(k, _, nh)| (k, nh)).collect();
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
            F::LARGE_TOP
        } else if n < SHRINK_AT {
            SMALL_TOP
        } else {
            current
        }
    }

    /// A whole table from `rules`, and the bytes of its subtrees.
    fn build_snap(rules: &Rules<F>, top_bits: u32, b: &mut Builder<F>) -> (Snap<F>, usize) {
        let slots = 1usize << top_bits;
        let mut defaults = vec![0u32; slots];
        let mut top: Vec<AtomicU64> = Vec::with_capacity(slots);
        let mut bytes = 0;
        let mut pending: Vec<Rule<F>> = Vec::new();
        let mut pending_slot = 0usize;
        // Address order: every prefix of at most `top_bits` covering a
        // slot comes before the longer prefixes inside it, so a slot's
        // default is final when its first longer prefix shows up.
        let mut flush = |slot: usize,
                         pending: &mut Vec<Rule<F>>,
                         defaults: &[u32],
                         top: &mut Vec<AtomicU64>| {
            // The slots before it hold their defaults as leaves: one
            // pass over the defaults, no push per slot.
            let from = top.len();
            if from < slot {
                top.extend(
                    defaults[from..slot]
                        .iter()
                        .map(|&d| AtomicU64::new(leaf_slot(d))),
                );
            }
            if !pending.is_empty() {
                let s = b.build(top_bits, defaults[slot], pending);
                // SAFETY: just built, not shared yet.
                bytes += unsafe { sub_data(s) }.len() * 4;
                top.push(AtomicU64::new(s));
                pending.clear();
            }
        };
        for (&(a, len), &nh) in rules {
            let r = route_bits(nh);
            let slot = F::slot(a, top_bits);
            if u32::from(len) <= top_bits {
                let n = 1usize << (top_bits - u32::from(len));
                defaults[slot..slot + n].fill(r);
            } else {
                if slot != pending_slot && !pending.is_empty() {
                    flush(pending_slot, &mut pending, &defaults, &mut top);
                }
                pending_slot = slot;
                pending.push((a, len, r));
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
                _family: PhantomData,
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
        let (base, last) = F::slot_range(slot, tb);
        let mut default = 0;
        for l in (0..=tb).rev() {
            if let Some(&nh) = self.rules.get(&(F::masked(base, l), l as u8)) {
                default = route_bits(nh);
                break;
            }
        }
        self.scratch.clear();
        for (&(a, len), &nh) in self.rules.range((base, 0)..=(last, F::BITS)) {
            if u32::from(len) > tb {
                self.scratch.push((a, len, route_bits(nh)));
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
    fn refresh(&mut self, addr: F::Bits, len: u8) {
        let tb = self.root.current().top_bits;
        let want = Self::top_bits_for(self.rules.len(), tb);
        if want != tb {
            self.rebuild(want);
            return;
        }
        let guard = epoch::pin();
        let first = F::slot(addr, tb);
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
    pub fn reader(&self) -> PoptrieReader<F> {
        PoptrieReader {
            root: self.root.shared(),
        }
    }

    /// Add `prefix` (host bits ignored) → `next_hop`, or replace its next
    /// hop. Returns the previous next hop. Visible to readers at once,
    /// top slot by top slot (see the module contract).
    pub fn insert(
        &mut self,
        prefix: F::Net,
        next_hop: NextHop,
    ) -> Result<Option<NextHop>, LpmError> {
        if next_hop > MAX_NEXT_HOP {
            return Err(LpmError::NextHopTooLarge(next_hop));
        }
        self.root.collect();
        let (a, len) = F::split(prefix);
        let old = self.rules.insert((a, len), next_hop);
        if old != Some(next_hop) {
            self.refresh(a, len);
        }
        Ok(old)
    }

    /// Remove `prefix`; addresses under it fall back to the longest
    /// remaining prefix that covers them. Returns its next hop if present.
    pub fn remove(&mut self, prefix: F::Net) -> Option<NextHop> {
        self.root.collect();
        let (a, len) = F::split(prefix);
        let old = self.rules.remove(&(a, len))?;
        self.refresh(a, len);
        Some(old)
    }

    /// Apply a batch and publish it atomically: the whole table is built
    /// again from the updated rule set and swapped in with one root swap,
    /// so readers see the table before or after the whole batch. On error
    /// nothing changes.
    pub fn apply(&mut self, updates: &[Update<F::Net>]) -> Result<(), LpmError> {
        for u in updates {
            if let Update::Insert(_, nh) = u {
                if *nh > MAX_NEXT_HOP {
                    return Err(LpmError::NextHopTooLarge(*nh));
                }
            }
        }
        for u in updates {
            match *u {
                Update::Insert(p, nh) => {
                    self.rules.insert(F::split(p), nh);
                }
                Update::Remove(p) => {
                    self.rules.remove(&F::split(p));
                }
            }
        }
        let tb = Self::top_bits_for(self.rules.len(), self.root.current().top_bits);
        self.rebuild(tb);
        Ok(())
    }

    /// Next hop of exactly `prefix`, if present.
    pub fn get(&self, prefix: F::Net) -> Option<NextHop> {
        self.rules.get(&F::split(prefix)).copied()
    }

    /// Longest-prefix match as readers see it now.
    pub fn lookup(&self, addr: F::Addr) -> Option<NextHop> {
        Route(self.root.current().lookup(F::bits(addr))).next_hop()
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
    pub fn routes(&self) -> impl Iterator<Item = (F::Net, NextHop)> + '_ {
        self.rules
            .iter()
            .map(|(&(a, len), &nh)| (F::join(a, len), nh))
    }

    /// Bytes used in all: [`Self::table_bytes`] plus an estimate of the
    /// writer's rule set (`BTreeMap` entries and node overhead).
    pub fn memory_bytes(&self) -> usize {
        // Key and value per entry, nodes ~2/3 full, plus edges and
        // headers: about twice the entry.
        let entry = std::mem::size_of::<((F::Bits, u8), NextHop)>();
        self.table_bytes() + self.rules.len() * entry * 2
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
pub struct PoptrieReader<F: Family> {
    root: Arc<Root<Snap<F>>>,
}

impl<F: Family> Clone for PoptrieReader<F> {
    fn clone(&self) -> Self {
        Self {
            root: Arc::clone(&self.root),
        }
    }
}

impl<F: Family> PoptrieReader<F> {
    /// [`Self::lookup_bits`] under the caller's pinned `guard`.
    #[inline(always)]
    pub(crate) fn lookup_pinned(&self, guard: &Guard, addr: F::Bits) -> Option<NextHop> {
        Route(self.root.load(guard).lookup(addr)).next_hop()
    }

    /// [`Self::lookup_batch`] under the caller's pinned `guard`.
    #[inline(always)]
    pub(crate) fn lookup_batch_pinned(&self, guard: &Guard, addrs: &[F::Bits], out: &mut [Route]) {
        self.root.load(guard).lookup_slice(addrs, out);
    }

    /// Longest-prefix match of `addr`. Pins an epoch guard per call; for
    /// many lookups use [`Self::lookup_batch`] or [`Self::pin`].
    #[inline]
    pub fn lookup(&self, addr: F::Addr) -> Option<NextHop> {
        self.lookup_bits(F::bits(addr))
    }

    /// [`Self::lookup`] of an address as an integer in host order.
    #[inline]
    pub fn lookup_bits(&self, addr: F::Bits) -> Option<NextHop> {
        let guard = epoch::pin();
        Route(self.root.load(&guard).lookup(addr)).next_hop()
    }

    /// Look up every address of `addrs` (host order) into `out`, 32 at a
    /// time with prefetch, under one epoch guard. `out[i].next_hop()` is
    /// what [`Self::lookup_bits`] of `addrs[i]` answers.
    ///
    /// # Panics
    /// If `addrs` and `out` differ in length.
    #[inline]
    pub fn lookup_batch(&self, addrs: &[F::Bits], out: &mut [Route]) {
        let guard = epoch::pin();
        self.root.load(&guard).lookup_slice(addrs, out);
    }

    /// Pin once and look up many times. Keep a view for one batch or one
    /// poll loop iteration: while it lives, retired memory is not freed.
    pub fn pin(&self) -> PoptrieView<'_, F> {
        PoptrieView {
            root: &self.root,
            guard: epoch::pin(),
        }
    }
}

impl PoptrieReader<V4> {
    /// [`Self::lookup_bits`] of an IPv4 address in host order.
    #[inline]
    pub fn lookup_u32(&self, addr: u32) -> Option<NextHop> {
        self.lookup_bits(addr)
    }
}

impl PoptrieReader<V6> {
    /// [`Self::lookup_bits`] of an IPv6 address in host order.
    #[inline]
    pub fn lookup_u128(&self, addr: u128) -> Option<NextHop> {
        self.lookup_bits(addr)
    }
}

/// A pinned reader: lookups without pinning cost. Not `Send`.
pub struct PoptrieView<'r, F: Family> {
    root: &'r Root<Snap<F>>,
    guard: Guard,
}

impl<F: Family> PoptrieView<'_, F> {
    /// Let the writer reclaim memory retired since this view was pinned,
    /// and stay pinned: cheaper than a new [`epoch::pin`].
    #[inline]
    pub fn repin(&mut self) {
        self.guard.repin();
    }

    /// Longest-prefix match of `addr` (host order).
    #[inline(always)]
    pub fn lookup(&self, addr: F::Bits) -> Option<NextHop> {
        Route(self.root.load(&self.guard).lookup(addr)).next_hop()
    }

    /// Batch lookup, as [`PoptrieReader::lookup_batch`].
    ///
    /// # Panics
    /// If `addrs` and `out` differ in length.
    #[inline(always)]
    pub fn lookup_batch(&self, addrs: &[F::Bits], out: &mut [Route]) {
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
            assert_eq!(w.root.current().top_bits, LARGE_TOP_V4);
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

    fn net6(s: &str) -> Ipv6Net {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_overlapping_prefixes_host_routes_and_default() {
        let mut w = Poptrie6Writer::new();
        let r = w.reader();
        w.insert(net6("2001:db8::/32"), 1).unwrap();
        w.insert(net6("2001:db8:1::/48"), 2).unwrap();
        w.insert(net6("2001:db8:1:2::/64"), 3).unwrap();
        w.insert(net6("2001:db8:1:2::7/128"), 4).unwrap();
        let ip = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        assert_eq!(r.lookup(ip("2001:db8:ffff::1")), Some(1));
        assert_eq!(r.lookup(ip("2001:db8:1:ffff::1")), Some(2));
        assert_eq!(r.lookup(ip("2001:db8:1:2::1")), Some(3));
        assert_eq!(r.lookup(ip("2001:db8:1:2::7")), Some(4));
        assert_eq!(r.lookup(ip("2001:db9::1")), None);
        assert_eq!(w.remove(net6("2001:db8:1::/48")), Some(2));
        assert_eq!(r.lookup(ip("2001:db8:1:ffff::1")), Some(1));
        assert_eq!(r.lookup_u128(ip("2001:db8:1:2::7").into()), Some(4));
        w.insert(net6("::/0"), 9).unwrap();
        w.insert(net6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"), 5)
            .unwrap();
        assert_eq!(
            r.lookup(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")),
            Some(5)
        );
        assert_eq!(
            r.lookup(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe")),
            Some(9)
        );
        assert_eq!(r.lookup(ip("2001:db9::1")), Some(9));
        assert_eq!(w.get(net6("2001:db8:1:2::5/64")), Some(3));
        assert_eq!(w.len(), 5);
        let routes: Vec<_> = w.routes().collect();
        assert_eq!(routes[0], (net6("::/0"), 9));
    }

    /// IPv6 against the oracle: overlapping prefixes of every length
    /// (dense under two /32s, so that nodes fill up, and anywhere), single
    /// updates, a batch, the switch to the large top level and back.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn ipv6_matches_oracle_across_top_level_switch() {
        use crate::lpm::oracle::Oracle6;
        let mut rng = crate::lpm::gen::XorShift64::new(9);
        let mut w = Poptrie6Writer::new();
        let r = w.reader();
        let mut o = Oracle6::new();
        let pick = |rng: &mut crate::lpm::gen::XorShift64| -> u128 {
            match rng.below(3) {
                0 => (0x2001_0db8u128 << 96) | (rng.next_u128() >> 40),
                1 => (0x2a02_1234_0000u128 << 80) | (rng.next_u128() >> 70),
                _ => rng.next_u128(),
            }
        };
        let mut live = Vec::new();
        for i in 0..8_000u32 {
            let p = Ipv6Net::new(Ipv6Addr::from(pick(&mut rng)), rng.below(129) as u8)
                .unwrap()
                .trunc();
            if rng.below(4) == 0 && !live.is_empty() {
                let q: Ipv6Net = live.swap_remove(rng.below(live.len() as u32) as usize);
                assert_eq!(w.remove(q), o.remove(q), "remove {q}");
            } else {
                assert_eq!(w.insert(p, i).unwrap(), o.insert(p, i), "insert {p}");
                live.push(p);
            }
        }
        let check = |w: &Poptrie6Writer, o: &Oracle6, rng: &mut crate::lpm::gen::XorShift64| {
            let mut addrs: Vec<u128> = (0..3000).map(|_| pick(rng)).collect();
            for (p, _) in o.routes() {
                addrs.push(p.network().into());
                addrs.push(p.broadcast().into());
            }
            let mut out = vec![Route::NONE; addrs.len()];
            r.lookup_batch(&addrs, &mut out);
            for (a, got) in addrs.iter().zip(&out) {
                let want = o.lookup(Ipv6Addr::from(*a));
                assert_eq!(*got, want, "batch {}", Ipv6Addr::from(*a));
                assert_eq!(w.lookup(Ipv6Addr::from(*a)), want);
            }
            assert_eq!(w.len(), o.len());
        };
        check(&w, &o, &mut rng);
        for i in 0..GROW_AT as u32 {
            let p = Ipv6Net::new(
                Ipv6Addr::from((0x2400u128 << 112) | (u128::from(i) << 80)),
                48,
            )
            .unwrap();
            assert_eq!(w.insert(p, i).unwrap(), o.insert(p, i));
        }
        check(&w, &o, &mut rng);
        assert_eq!(w.root.current().top_bits, LARGE_TOP_V6);
        let all: Vec<Ipv6Net> = o.routes().map(|(p, _)| p).collect();
        let batch: Vec<Update<Ipv6Net>> = all
            .iter()
            .skip(40)
            .map(|&p| Update::Remove(p))
            .chain([Update::Insert(net6("2001:db8:8000::/33"), 77)])
            .collect();
        w.apply(&batch).unwrap();
        for u in &batch {
            match *u {
                Update::Insert(p, nh) => o.insert(p, nh),
                Update::Remove(p) => o.remove(p),
            };
        }
        check(&w, &o, &mut rng);
        assert_eq!(w.root.current().top_bits, SMALL_TOP);
        let built = Poptrie6Writer::from_routes(o.routes(), 0).unwrap();
        assert_eq!(built.table_bytes(), w.table_bytes());
        check(&built, &o, &mut rng);
    }

    /// IPv6 reader thread while subtrees are swapped and batches published.
    #[test]
    fn ipv6_concurrent_reader_sees_old_or_new_route() {
        let mut w = Poptrie6Writer::new();
        w.insert(net6("2001:db8::/32"), 1).unwrap();
        w.insert(net6("2001:db8:0:1::/64"), 2).unwrap();
        let r = w.reader();
        let rounds = if cfg!(miri) { 20 } else { 2000 };
        let a1: u128 = "2001:db8:0:1::9".parse::<Ipv6Addr>().unwrap().into();
        let a2: u128 = "2001:db8:0:2::9".parse::<Ipv6Addr>().unwrap().into();
        let reader = std::thread::spawn(move || {
            let mut out = [Route::NONE; 2];
            for _ in 0..rounds {
                r.lookup_batch(&[a1, a2], &mut out);
                assert_eq!(out[0], Some(2));
                assert!(matches!(out[1].next_hop(), Some(1) | Some(3)));
                assert_eq!(r.pin().lookup(a1), Some(2));
            }
        });
        for i in 0..rounds {
            w.insert(net6("2001:db8:0:2::/64"), 3).unwrap();
            w.remove(net6("2001:db8:0:2::/64"));
            if i % 8 == 7 {
                w.apply(&[Update::Insert(net6("2001:db8:ff::/48"), 4)])
                    .unwrap();
                w.remove(net6("2001:db8:ff::/48"));
            }
        }
        reader.join().unwrap();
    }
}
