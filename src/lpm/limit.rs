//! The random-read limit that the lookup benches compare against: one
//! independent read per lookup from a 64 MiB array, 32 per batch with
//! prefetch — what a table answering with one random read per lookup (a
//! DIR-24-8 miss) cannot beat.
//!
//! # Contract
//! - The array is allocated exactly as the first level of [`super::v4`] and
//!   [`super::v6`] tables (2 MiB aligned anonymous mapping, advised for
//!   transparent huge pages and committed up front), so both sides of a
//!   comparison get the same page treatment; [`RandomReadLimit::huge_page_bytes`]
//!   says what the kernel actually gave.
//! - [`RandomReadLimit::read_batch`] indexes by the top 24 bits of each
//!   address, as tbl24 is, and does the same prefetch-all-then-read-all of
//!   one batch as [`super::Lpm4View::lookup_batch`] of 32 addresses.
//! - [`RandomReadLimit::read_slice`] reads a longer slice software-pipelined
//!   exactly as `lookup_batch` of a longer slice does (the slots of batch
//!   k+1 prefetched before batch k is read): the limit for that mode.

use super::mem::{prefetch, EntryArray};
use super::BATCH;
use std::sync::atomic::{AtomicU32, Ordering};

/// A 2^24-entry array read at random (see the module contract).
pub struct RandomReadLimit {
    entries: EntryArray,
}

impl Default for RandomReadLimit {
    fn default() -> Self {
        Self::new()
    }
}

impl RandomReadLimit {
    /// Entries of the array (2^24 `u32`, 64 MiB).
    pub const LEN: usize = 1 << 24;

    /// Allocate the array and fill entry `i` with `i`.
    pub fn new() -> Self {
        let entries = EntryArray::zeroed_resident(Self::LEN);
        for (i, e) in entries.iter().enumerate() {
            e.store(i as u32, Ordering::Relaxed);
        }
        Self { entries }
    }

    /// Bytes of the array (64 MiB).
    pub fn bytes(&self) -> usize {
        Self::LEN * 4
    }

    /// Bytes of the array backed by transparent huge pages now (0 where
    /// unknown).
    pub fn huge_page_bytes(&self) -> usize {
        self.entries.huge_page_bytes()
    }

    #[inline(always)]
    fn array(&self) -> &[AtomicU32; Self::LEN] {
        self.entries[..]
            .try_into()
            .expect("the array has 2^24 entries")
    }

    #[inline(always)]
    fn prefetch_batch(t: &[AtomicU32; Self::LEN], addrs: &[u32; BATCH]) {
        for &x in addrs {
            prefetch(&t[(x >> 8) as usize]);
        }
    }

    #[inline(always)]
    fn read_prefetched(t: &[AtomicU32; Self::LEN], addrs: &[u32; BATCH]) -> u32 {
        let mut out = [0u32; BATCH];
        for (o, &x) in out.iter_mut().zip(addrs) {
            *o = t[(x >> 8) as usize].load(Ordering::Relaxed);
        }
        out.iter().fold(0, |a, b| a ^ b)
    }

    /// Read the entries indexed by the top 24 bits of 32 addresses:
    /// prefetch all, then read all. Returns the xor of the values read.
    #[inline(always)]
    pub fn read_batch(&self, addrs: &[u32; BATCH]) -> u32 {
        let t = self.array();
        Self::prefetch_batch(t, addrs);
        Self::read_prefetched(t, addrs)
    }

    /// Read the entries of every address of `addrs` (a multiple of
    /// [`BATCH`] long; a shorter tail is ignored), 32 at a time, prefetching
    /// the next batch before reading the current one. Returns the xor of
    /// the values read.
    pub fn read_slice(&self, addrs: &[u32]) -> u32 {
        fn batch(c: &[u32]) -> &[u32; BATCH] {
            c.try_into().expect("chunk of BATCH")
        }
        let t = self.array();
        let mut chunks = addrs.chunks_exact(BATCH);
        let mut next = chunks.next().map(batch);
        if let Some(first) = next {
            Self::prefetch_batch(t, first);
        }
        let mut x = 0;
        while let Some(a) = next {
            next = chunks.next().map(batch);
            if let Some(n) = next {
                Self::prefetch_batch(t, n);
            }
            x ^= Self::read_prefetched(t, a);
        }
        x
    }
}

#[cfg(all(test, not(miri)))]
mod tests {
    use super::*;

    #[test]
    fn reads_the_indexed_entries() {
        let l = RandomReadLimit::new();
        let mut addrs = [0u32; BATCH];
        addrs[0] = 0x0102_0304;
        addrs[1] = 0xffff_ff00;
        assert_eq!(l.read_batch(&addrs), 0x0001_0203 ^ 0x00ff_ffff);
        let mut long = vec![0u32; 3 * BATCH + 5];
        long[0] = 0x0102_0304;
        long[2 * BATCH + 1] = 0xffff_ff00;
        long[3 * BATCH + 1] = 0x0000_0100; // in the ignored tail
        assert_eq!(l.read_slice(&long), 0x0001_0203 ^ 0x00ff_ffff);
        assert!(l.huge_page_bytes() <= l.bytes());
    }
}
