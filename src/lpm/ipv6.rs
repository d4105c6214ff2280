//! The IPv6 table of the public API ([`Lpm6Writer`], [`Lpm6Reader`],
//! [`Lpm6View`]): a compressed table ([`super::poptrie`]) for small and
//! medium tables (a VRF of ExpressRoute size: ~80 KiB for 200 prefixes
//! instead of ~8 MiB), the 8-bit-stride trie ([`super::v6`]) for large
//! ones, chosen per table by its number of prefixes ([`super::chosen`]
//! has the contract).

use super::chosen::{structure, LpmReader, LpmView, LpmWriter};
use super::poptrie::{Poptrie6Reader, Poptrie6Writer};
use super::v6::{Trie6Reader, Trie6Writer, DEFAULT_GROUPS};
use super::NextHop;
use ipnet::Ipv6Net;
use std::net::Ipv6Addr;

/// A table moves to the trie when it has more prefixes than this. Lower
/// than IPv4's: IPv6 prefixes crowd into few top-level slots of the
/// compressed table (2001::/16, 2a00::/12, ...), and a single update
/// rebuilds its slot's subtree, so the cost of an update grows with the
/// table faster than in IPv4 (docs/lpm.md).
pub const LARGE_AT: usize = 16_384;
/// A trie table moves back to the compressed one below this.
pub const SMALL_AT: usize = 4_096;

/// The single writer of an IPv6 table. Not `Clone`: there is one writer.
pub type Lpm6Writer = LpmWriter<Poptrie6Writer, Trie6Writer>;
/// A lock-free read handle on an IPv6 table: `Clone + Send + Sync`, one
/// per worker.
pub type Lpm6Reader = LpmReader<Poptrie6Writer, Trie6Writer>;
/// A pinned IPv6 reader: lookups without pinning cost. Not `Send`.
pub type Lpm6View<'r> = LpmView<'r, Poptrie6Writer, Trie6Writer>;

structure!(
    Poptrie6Writer,
    Poptrie6Reader,
    Ipv6Net,
    Ipv6Addr,
    u128,
    Poptrie6Writer::with_tbl8_groups,
    Poptrie6Writer::from_routes,
    tbl8_groups_in_use,
    LARGE_AT,
    SMALL_AT
);
structure!(
    Trie6Writer,
    Trie6Reader,
    Ipv6Net,
    Ipv6Addr,
    u128,
    Trie6Writer::with_groups,
    Trie6Writer::from_routes,
    groups_in_use,
    LARGE_AT,
    SMALL_AT
);

impl Default for Lpm6Writer {
    fn default() -> Self {
        Self::new()
    }
}

impl Lpm6Writer {
    /// An empty table (compressed; the trie with [`DEFAULT_GROUPS`] groups
    /// once it grows past [`LARGE_AT`]).
    pub fn new() -> Self {
        Self::with_groups(DEFAULT_GROUPS)
    }

    /// An empty table that gets room for `groups` 256-entry groups (at
    /// most 2^24) if it grows into the trie.
    pub fn with_groups(groups: u32) -> Self {
        Self::with_capacity(groups)
    }
}

impl Lpm6Reader {
    /// Longest-prefix match of `addr`. Pins an epoch guard per call; for
    /// many lookups use [`Self::lookup_batch`] or [`Self::pin`].
    #[inline]
    pub fn lookup(&self, addr: Ipv6Addr) -> Option<NextHop> {
        self.lookup_bits(addr.into())
    }

    /// [`Self::lookup`] of an address as a `u128`.
    #[inline]
    pub fn lookup_u128(&self, addr: u128) -> Option<NextHop> {
        self.lookup_bits(addr)
    }
}

#[cfg(all(test, not(miri)))]
mod tests {
    use super::*;
    use crate::lpm::oracle::Oracle6;
    use crate::lpm::{Route, Update};

    /// Grow past LARGE_AT (to the trie) and shrink below SMALL_AT (back),
    /// with a reader thread on a probe route that never changes, and the
    /// oracle at each stage.
    #[test]
    fn moves_between_structures_keep_answers() {
        let mut w = Lpm6Writer::with_groups(1 << 16);
        let probe: Ipv6Net = "2001:db8:ffff::/48".parse().unwrap();
        w.insert(probe, 7).unwrap();
        let r = w.reader();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = std::sync::Arc::clone(&stop);
        let p1: u128 = "2001:db8:ffff::1".parse::<Ipv6Addr>().unwrap().into();
        let reader = std::thread::spawn(move || {
            let mut out = [Route::NONE; 2];
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                r.lookup_batch(&[p1, p1 + 5], &mut out);
                assert_eq!(out, [Route::new(Some(7)); 2]);
                assert_eq!(r.pin().lookup(p1), Some(7));
                assert_eq!(r.lookup_u128(p1), Some(7));
            }
        });
        let mut o = Oracle6::new();
        o.insert(probe, 7);
        let n = LARGE_AT as u128 + 10;
        // /48s spread over top-level slots (bits 96.. vary), as a real
        // table's are; the bulk through `apply`, the last ones singly.
        let nets: Vec<Ipv6Net> = (0..n)
            .map(|i| {
                Ipv6Net::new(
                    Ipv6Addr::from(
                        (0x2001_0db8u128 << 96) ^ (i.reverse_bits() >> 8) & !((1u128 << 80) - 1),
                    ),
                    48,
                )
                .unwrap()
            })
            .collect();
        let bulk = nets.len() - 20;
        for chunk in nets[..bulk].chunks(1000) {
            let batch: Vec<Update<Ipv6Net>> = chunk.iter().map(|&p| Update::Insert(p, 1)).collect();
            w.apply(&batch).unwrap();
            for &p in chunk {
                o.insert(p, 1);
            }
        }
        for (i, p) in nets.iter().enumerate().skip(bulk) {
            assert_eq!(w.insert(*p, i as u32).unwrap(), o.insert(*p, i as u32));
        }
        assert!(!w.is_compressed());
        let check = |w: &Lpm6Writer, o: &Oracle6| {
            let r = w.reader();
            let mut x = 1u64;
            for _ in 0..20_000 {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let a = nets[(x >> 33) as usize % nets.len()].network().into();
                let a: u128 = a;
                let a = a | u128::from(x >> 20);
                assert_eq!(r.lookup_u128(a), o.lookup(Ipv6Addr::from(a)));
                assert_eq!(w.lookup(Ipv6Addr::from(a)), o.lookup(Ipv6Addr::from(a)));
            }
            assert_eq!(w.len(), o.len());
        };
        check(&w, &o);
        for p in &nets[SMALL_AT - 10..] {
            assert_eq!(w.remove(*p), o.remove(*p));
        }
        assert!(w.is_compressed());
        check(&w, &o);
        w.apply(&[Update::Insert("2001:db8::/32".parse().unwrap(), 3)])
            .unwrap();
        o.insert("2001:db8::/32".parse().unwrap(), 3);
        check(&w, &o);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        reader.join().unwrap();
        let big = Lpm6Writer::from_routes(nets.iter().map(|&p| (p, 1)), 1 << 16).unwrap();
        assert!(!big.is_compressed() && big.len() == nets.len());
        assert!(big.groups_in_use() > 0 && big.get(nets[5]) == Some(1));
        let small = Lpm6Writer::from_routes(nets[..100].iter().map(|&p| (p, 1)), 0).unwrap();
        assert!(small.is_compressed() && small.table_bytes() < 1 << 20);
    }
}
