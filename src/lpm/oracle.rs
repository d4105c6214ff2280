//! Plain, obviously-correct longest-prefix match used as the oracle of the
//! fast tables: one `BTreeMap` of `ipnet` prefixes per length, a lookup
//! tries every length that holds a prefix, from the longest down.
//!
//! # Contract
//! Same answers as [`super::Lpm4Writer`] / [`super::Lpm6Writer`] for any
//! sequence of inserts, replaces and removes. O(prefix length) map lookups
//! per query: for tests, not for forwarding.

use super::NextHop;
use ipnet::{Ipv4Net, Ipv6Net};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Add `len` to `held` (lengths that hold a prefix, longest first) if it
/// is not there yet.
fn hold(held: &mut Vec<u8>, len: u8) {
    if let Err(at) = held.binary_search_by(|l| len.cmp(l)) {
        held.insert(at, len);
    }
}

/// Naive IPv4 longest-prefix match.
#[derive(Debug, Clone)]
pub struct Oracle4 {
    by_len: Vec<BTreeMap<Ipv4Net, NextHop>>,
    /// The lengths whose map is not empty, longest first.
    held: Vec<u8>,
}

impl Default for Oracle4 {
    fn default() -> Self {
        Self::new()
    }
}

impl Oracle4 {
    /// An empty table.
    pub fn new() -> Self {
        Self {
            by_len: vec![BTreeMap::new(); 33],
            held: Vec::new(),
        }
    }

    /// Add or replace `prefix` (host bits ignored); returns the previous
    /// next hop.
    pub fn insert(&mut self, prefix: Ipv4Net, nh: NextHop) -> Option<NextHop> {
        let len = prefix.prefix_len();
        let prev = self.by_len[usize::from(len)].insert(prefix.trunc(), nh);
        hold(&mut self.held, len);
        prev
    }

    /// Remove `prefix`; returns its next hop if present.
    pub fn remove(&mut self, prefix: Ipv4Net) -> Option<NextHop> {
        let len = prefix.prefix_len();
        let map = &mut self.by_len[usize::from(len)];
        let prev = map.remove(&prefix.trunc());
        if map.is_empty() {
            self.held.retain(|&l| l != len);
        }
        prev
    }

    /// Next hop of the longest prefix containing `addr`.
    pub fn lookup(&self, addr: Ipv4Addr) -> Option<NextHop> {
        // Only the lengths that hold a prefix (most are empty), longest
        // first.
        self.held.iter().find_map(|&len| {
            let net = Ipv4Net::new(addr, len).expect("len <= 32").trunc();
            self.by_len[usize::from(len)].get(&net).copied()
        })
    }

    /// Every prefix, shortest first.
    pub fn routes(&self) -> impl Iterator<Item = (Ipv4Net, NextHop)> + '_ {
        self.by_len
            .iter()
            .flat_map(|m| m.iter().map(|(p, n)| (*p, *n)))
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.by_len.iter().map(BTreeMap::len).sum()
    }

    /// No prefix at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Naive IPv6 longest-prefix match.
#[derive(Debug, Clone)]
pub struct Oracle6 {
    by_len: Vec<BTreeMap<Ipv6Net, NextHop>>,
    /// The lengths whose map is not empty, longest first.
    held: Vec<u8>,
}

impl Default for Oracle6 {
    fn default() -> Self {
        Self::new()
    }
}

impl Oracle6 {
    /// An empty table.
    pub fn new() -> Self {
        Self {
            by_len: vec![BTreeMap::new(); 129],
            held: Vec::new(),
        }
    }

    /// Add or replace `prefix` (host bits ignored); returns the previous
    /// next hop.
    pub fn insert(&mut self, prefix: Ipv6Net, nh: NextHop) -> Option<NextHop> {
        let len = prefix.prefix_len();
        let prev = self.by_len[usize::from(len)].insert(prefix.trunc(), nh);
        hold(&mut self.held, len);
        prev
    }

    /// Remove `prefix`; returns its next hop if present.
    pub fn remove(&mut self, prefix: Ipv6Net) -> Option<NextHop> {
        let len = prefix.prefix_len();
        let map = &mut self.by_len[usize::from(len)];
        let prev = map.remove(&prefix.trunc());
        if map.is_empty() {
            self.held.retain(|&l| l != len);
        }
        prev
    }

    /// Next hop of the longest prefix containing `addr`.
    pub fn lookup(&self, addr: Ipv6Addr) -> Option<NextHop> {
        // Only the lengths that hold a prefix (most are empty), longest
        // first.
        self.held.iter().find_map(|&len| {
            let net = Ipv6Net::new(addr, len).expect("len <= 128").trunc();
            self.by_len[usize::from(len)].get(&net).copied()
        })
    }

    /// Every prefix, shortest first.
    pub fn routes(&self) -> impl Iterator<Item = (Ipv6Net, NextHop)> + '_ {
        self.by_len
            .iter()
            .flat_map(|m| m.iter().map(|(p, n)| (*p, *n)))
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.by_len.iter().map(BTreeMap::len).sum()
    }

    /// No prefix at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

// Proptests: too slow for Miri, and they touch the filesystem.
#[cfg(all(test, not(miri)))]
mod tests {
    use super::super::{Lpm4Writer, Lpm6Writer, Update};
    use super::*;
    use proptest::prelude::*;

    /// One step of a random update sequence. `Reinsert`/`RemoveKnown` pick
    /// a prefix touched before, so replaces and effective removes are
    /// frequent.
    #[derive(Debug, Clone)]
    enum Op<P> {
        Insert(P, NextHop),
        Remove(P),
        Reinsert(usize, NextHop),
        RemoveKnown(usize),
    }

    /// The held lengths follow inserts, replaces and removes: a lookup
    /// answers as a scan of every length does, for both families.
    #[test]
    fn held_lengths_follow_updates() {
        let mut rng = crate::lpm::gen::XorShift64::new(7);
        let mut o4 = Oracle4::new();
        let mut o6 = Oracle6::new();
        let scan4 = |o: &Oracle4, a: Ipv4Addr| {
            (0..=32u8).rev().find_map(|len| {
                let net = Ipv4Net::new(a, len).unwrap().trunc();
                o.by_len[usize::from(len)].get(&net).copied()
            })
        };
        let scan6 = |o: &Oracle6, a: Ipv6Addr| {
            (0..=128u8).rev().find_map(|len| {
                let net = Ipv6Net::new(a, len).unwrap().trunc();
                o.by_len[usize::from(len)].get(&net).copied()
            })
        };
        for step in 0..4000u32 {
            // Few distinct prefixes (3 address bits, 8 lengths each), so
            // lengths fill and empty again often.
            let r = rng.next_u64();
            let a4 = Ipv4Addr::from(((r & 7) as u32) << 29);
            let l4 = [0u8, 1, 2, 3, 8, 24, 31, 32][(r >> 3) as usize & 7];
            let a6 = Ipv6Addr::from(u128::from(r & 7) << 125);
            let l6 = [0u8, 1, 2, 3, 48, 64, 127, 128][(r >> 6) as usize & 7];
            let (p4, p6) = (Ipv4Net::new(a4, l4).unwrap(), Ipv6Net::new(a6, l6).unwrap());
            if (r >> 9) & 1 == 0 {
                o4.insert(p4, step);
                o6.insert(p6, step);
            } else {
                o4.remove(p4);
                o6.remove(p6);
            }
            let mut held4: Vec<u8> = (0..=32u8)
                .rev()
                .filter(|&l| !o4.by_len[usize::from(l)].is_empty())
                .collect();
            assert_eq!(o4.held, held4);
            held4 = (0..=128u8)
                .rev()
                .filter(|&l| !o6.by_len[usize::from(l)].is_empty())
                .collect();
            assert_eq!(o6.held, held4);
            for _ in 0..4 {
                // Under the prefixes above: top 3 bits, and the low 2.
                let r = rng.next_u64();
                let a = Ipv4Addr::from((((r & 7) as u32) << 29) | ((r >> 3) as u32 & 3));
                assert_eq!(o4.lookup(a), scan4(&o4, a), "{a}");
                let a = Ipv6Addr::from((u128::from(r & 7) << 125) | u128::from((r >> 3) & 3));
                assert_eq!(o6.lookup(a), scan6(&o6, a), "{a}");
            }
        }
    }

    fn v4_prefix() -> impl Strategy<Value = Ipv4Net> + Clone {
        // Clustered under a few /16s so that prefixes overlap often.
        let addr = prop_oneof![
            3 => (0..4u32, any::<u16>()).prop_map(|(h, l)| 0x0a00_0000 | (h << 16) | u32::from(l)),
            1 => any::<u32>(),
        ];
        let len = prop_oneof![1 => 0..8u8, 12 => 8..=32u8, 4 => 22..=32u8];
        (addr, len).prop_map(|(a, l)| Ipv4Net::new(Ipv4Addr::from(a), l).unwrap().trunc())
    }

    fn v6_prefix() -> impl Strategy<Value = Ipv6Net> + Clone {
        let addr = prop_oneof![
            3 => (0..4u128, any::<u64>(), any::<u32>()).prop_map(|(h, m, l)| {
                (0x2001_0db8u128 << 96) | (h << 80) | (u128::from(m) << 32) | u128::from(l)
            }),
            1 => any::<u128>(),
        ];
        let len = prop_oneof![1 => 0..16u8, 10 => 16..=64u8, 3 => 65..=128u8];
        (addr, len).prop_map(|(a, l)| Ipv6Net::new(Ipv6Addr::from(a), l).unwrap().trunc())
    }

    fn ops<P: Clone + std::fmt::Debug>(
        prefix: impl Strategy<Value = P> + Clone,
    ) -> impl Strategy<Value = Vec<Op<P>>> {
        let op = prop_oneof![
            5 => (prefix.clone(), 0..1000u32).prop_map(|(p, n)| Op::Insert(p, n)),
            1 => prefix.prop_map(Op::Remove),
            2 => (any::<usize>(), 0..1000u32).prop_map(|(i, n)| Op::Reinsert(i, n)),
            3 => any::<usize>().prop_map(Op::RemoveKnown),
        ];
        proptest::collection::vec(op, 1..120)
    }

    /// Resolve `Reinsert`/`RemoveKnown` against the prefixes seen so far.
    fn resolve<P: Copy>(ops: &[Op<P>]) -> Vec<Update<P>> {
        let mut seen: Vec<P> = Vec::new();
        let mut out = Vec::new();
        for op in ops {
            let u = match *op {
                Op::Insert(p, n) => Update::Insert(p, n),
                Op::Remove(p) => Update::Remove(p),
                Op::Reinsert(i, n) if !seen.is_empty() => Update::Insert(seen[i % seen.len()], n),
                Op::RemoveKnown(i) if !seen.is_empty() => Update::Remove(seen[i % seen.len()]),
                _ => continue,
            };
            if let Update::Insert(p, _) = u {
                seen.push(p);
            }
            out.push(u);
        }
        out
    }

    fn boundaries_v4(p: &Ipv4Net) -> [u32; 4] {
        let (n, b) = (u32::from(p.network()), u32::from(p.broadcast()));
        [n, b, n.wrapping_sub(1), b.wrapping_add(1)]
    }

    fn boundaries_v6(p: &Ipv6Net) -> [u128; 4] {
        let (n, b) = (u128::from(p.network()), u128::from(p.broadcast()));
        [n, b, n.wrapping_sub(1), b.wrapping_add(1)]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

        #[test]
        fn v4_matches_oracle(
            ops in ops(v4_prefix()),
            probes in proptest::collection::vec(any::<u32>(), 64),
            batch_from in proptest::option::weighted(0.2, any::<usize>()),
        ) {
            let updates = resolve(&ops);
            let split = batch_from.map_or(updates.len(), |i| i % (updates.len() + 1));
            let mut fast = Lpm4Writer::with_tbl8_groups(4096);
            let reader = fast.reader();
            let mut oracle = Oracle4::new();
            for u in &updates[..split] {
                match *u {
                    Update::Insert(p, n) => {
                        prop_assert_eq!(fast.insert(p, n).unwrap(), oracle.insert(p, n));
                    }
                    Update::Remove(p) => prop_assert_eq!(fast.remove(p), oracle.remove(p)),
                }
            }
            if split < updates.len() {
                fast.apply(&updates[split..]).unwrap();
                for u in &updates[split..] {
                    match *u {
                        Update::Insert(p, n) => { oracle.insert(p, n); }
                        Update::Remove(p) => { oracle.remove(p); }
                    }
                }
            }
            prop_assert_eq!(fast.len(), oracle.len());
            let mut addrs = probes;
            for u in &updates {
                let (Update::Insert(p, _) | Update::Remove(p)) = u;
                addrs.extend(boundaries_v4(p));
            }
            let mut out = vec![crate::lpm::Route::NONE; addrs.len()];
            reader.lookup_batch(&addrs, &mut out);
            for (a, got) in addrs.iter().zip(&out) {
                let want = oracle.lookup(Ipv4Addr::from(*a));
                prop_assert_eq!(*got, want, "batch {}", Ipv4Addr::from(*a));
                prop_assert_eq!(reader.lookup_u32(*a), want, "single {}", Ipv4Addr::from(*a));
            }
            // Removing everything folds every group back.
            let all: Vec<Ipv4Net> = oracle.routes().map(|(p, _)| p).collect();
            for p in all {
                prop_assert!(fast.remove(p).is_some());
            }
            prop_assert_eq!(fast.tbl8_groups_in_use(), 0);
            prop_assert!(fast.is_empty());
        }

        #[test]
        fn v6_matches_oracle(
            ops in ops(v6_prefix()),
            probes in proptest::collection::vec(any::<u128>(), 64),
            batch_from in proptest::option::weighted(0.3, any::<usize>()),
        ) {
            let updates = resolve(&ops);
            let split = batch_from.map_or(updates.len(), |i| i % (updates.len() + 1));
            let mut fast = Lpm6Writer::with_groups(8192);
            let reader = fast.reader();
            let mut oracle = Oracle6::new();
            for u in &updates[..split] {
                match *u {
                    Update::Insert(p, n) => {
                        prop_assert_eq!(fast.insert(p, n).unwrap(), oracle.insert(p, n));
                    }
                    Update::Remove(p) => prop_assert_eq!(fast.remove(p), oracle.remove(p)),
                }
            }
            if split < updates.len() {
                fast.apply(&updates[split..]).unwrap();
                for u in &updates[split..] {
                    match *u {
                        Update::Insert(p, n) => { oracle.insert(p, n); }
                        Update::Remove(p) => { oracle.remove(p); }
                    }
                }
            }
            prop_assert_eq!(fast.len(), oracle.len());
            let mut addrs = probes;
            for u in &updates {
                let (Update::Insert(p, _) | Update::Remove(p)) = u;
                addrs.extend(boundaries_v6(p));
            }
            let mut out = vec![crate::lpm::Route::NONE; addrs.len()];
            reader.lookup_batch(&addrs, &mut out);
            for (a, got) in addrs.iter().zip(&out) {
                let want = oracle.lookup(Ipv6Addr::from(*a));
                prop_assert_eq!(*got, want, "batch {}", Ipv6Addr::from(*a));
                prop_assert_eq!(reader.lookup_u128(*a), want, "single {}", Ipv6Addr::from(*a));
            }
            let all: Vec<Ipv6Net> = oracle.routes().map(|(p, _)| p).collect();
            for p in all {
                prop_assert!(fast.remove(p).is_some());
            }
            prop_assert_eq!(fast.groups_in_use(), 0);
            prop_assert!(fast.is_empty());
        }
    }
}
