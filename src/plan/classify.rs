//! Classification: (ingress port, VID stack) → attachment, by exact match
//! on the whole tag stack.
//!
//! The key packs the port (16 bits), the tag count (2 bits) and up to three
//! 12-bit VIDs into a `u64`; a labelled frame's key ([`label_key`]) packs
//! the port, a marker bit no tag key has (bit 38) and the 20-bit label; an open-addressing table with linear probing
//! keeps it at one cache line per lookup. TPIDs are not part of the key:
//! 0x8100, 0x88a8 and 0x9100 are all accepted as the outer tag.

use crate::wire::TagStack;

const EMPTY: u64 = u64::MAX;

/// Pack a port and a VID stack into a key.
#[inline(always)]
pub fn key(port: u16, vids: &[u16]) -> u64 {
    let mut k = (port as u64) << 40 | (vids.len() as u64 & 3) << 36;
    for (i, v) in vids.iter().take(3).enumerate() {
        k |= ((*v & 0x0fff) as u64) << (24 - 12 * i);
    }
    k
}

/// Marks a label key: no tag key sets bit 38 (the tag count is bits 36-37).
const LABEL_KEY: u64 = 1 << 38;

/// Key of an MPLS attachment: the port and the bottom-of-stack label.
#[inline(always)]
pub fn label_key(port: u16, label: u32) -> u64 {
    (port as u64) << 40 | LABEL_KEY | (label & 0xf_ffff) as u64
}

/// Key of a received frame's tag stack (the same packing as [`key`],
/// without a loop or a shift by a variable count).
#[inline(always)]
pub fn key_of(port: u16, tags: &TagStack) -> u64 {
    let [v0, v1, v2] = tags.vids();
    (port as u64) << 40
        | (tags.len() as u64 & 3) << 36
        | (v0 as u64) << 24
        | (v1 as u64) << 12
        | v2 as u64
}

/// The classification table (immutable once built).
#[derive(Clone, Debug)]
pub struct ClassTable {
    keys: Box<[u64]>,
    values: Box<[u32]>,
    shift: u32,
}

#[inline(always)]
fn slot(k: u64, shift: u32) -> usize {
    (k.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> shift) as usize
}

impl ClassTable {
    /// Build from (key, attachment) pairs. Later duplicates are ignored
    /// (the config validator rejects duplicates before this point).
    pub fn build(entries: &[(u64, u32)]) -> ClassTable {
        let cap = (entries.len() * 2).next_power_of_two().max(16);
        let bits = cap.trailing_zeros();
        let shift = 64 - bits;
        let mut keys = vec![EMPTY; cap].into_boxed_slice();
        let mut values = vec![u32::MAX; cap].into_boxed_slice();
        for &(k, v) in entries {
            let mut i = slot(k, shift);
            loop {
                if keys[i] == EMPTY {
                    keys[i] = k;
                    values[i] = v;
                    break;
                }
                if keys[i] == k {
                    break;
                }
                i = (i + 1) & (cap - 1);
            }
        }
        ClassTable {
            keys,
            values,
            shift,
        }
    }

    /// The attachment for `k`, if any.
    #[inline(always)]
    pub fn get(&self, k: u64) -> Option<u32> {
        let mask = self.keys.len() - 1;
        let mut i = slot(k, self.shift);
        // The table is at most half full, so an empty slot ends every probe.
        loop {
            let s = self.keys[i];
            if s == k {
                return Some(self.values[i]);
            }
            if s == EMPTY {
                return None;
            }
            i = (i + 1) & mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    proptest! {
        #[test]
        fn agrees_with_hashmap(entries in proptest::collection::vec((0u16..4, proptest::collection::vec(1u16..4095, 0..=3)), 0..64),
                               probes in proptest::collection::vec((0u16..4, proptest::collection::vec(1u16..4095, 0..=3)), 0..64)) {
            let mut oracle = HashMap::new();
            let mut pairs = Vec::new();
            for (i, (p, v)) in entries.iter().enumerate() {
                let k = key(*p, v);
                oracle.entry(k).or_insert(i as u32);
                pairs.push((k, i as u32));
            }
            let t = ClassTable::build(&pairs);
            for (p, v) in entries.iter().chain(probes.iter()) {
                let k = key(*p, v);
                prop_assert_eq!(t.get(k), oracle.get(&k).copied());
            }
        }
    }

    #[test]
    fn label_keys_never_meet_tag_keys() {
        assert_ne!(label_key(1, 100), key(1, &[100]));
        assert_ne!(label_key(1, 0), key(1, &[]));
        assert_ne!(label_key(1, 100), label_key(2, 100));
        assert_ne!(label_key(1, 100), label_key(1, 101));
        for n in 0..=3 {
            assert_eq!(key(u16::MAX, &[4095; 3][..n]) & LABEL_KEY, 0);
        }
    }

    #[test]
    fn untagged_and_tagged_differ() {
        assert_ne!(key(1, &[]), key(1, &[1]));
        assert_ne!(key(1, &[100, 200]), key(1, &[100]));
        assert_ne!(key(1, &[100]), key(2, &[100]));
    }
}
