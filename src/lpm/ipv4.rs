//! The IPv4 table of the public API ([`Lpm4Writer`], [`Lpm4Reader`],
//! [`Lpm4View`]): a compressed table ([`super::poptrie`]) for small and
//! medium tables, DIR-24-8 ([`super::v4`]) for large ones, chosen per table
//! by its number of prefixes ([`super::chosen`] has the contract: the
//! thresholds, the hysteresis and how a move is published).

use super::chosen::{structure, LpmReader, LpmView, LpmWriter};
use super::poptrie::{Poptrie4Reader, Poptrie4Writer};
use super::v4::{Dir24Reader, Dir24Writer, DEFAULT_TBL8_GROUPS};
use super::NextHop;
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

/// A table moves to DIR-24-8 when it has more prefixes than this.
pub const LARGE_AT: usize = 65_536;
/// A DIR-24-8 table moves back to the compressed one below this.
pub const SMALL_AT: usize = 16_384;

/// The single writer of an IPv4 table. Not `Clone`: there is one writer.
pub type Lpm4Writer = LpmWriter<Poptrie4Writer, Dir24Writer>;
/// A lock-free read handle on an IPv4 table: `Clone + Send + Sync`, one
/// per worker.
pub type Lpm4Reader = LpmReader<Poptrie4Writer, Dir24Writer>;
/// A pinned IPv4 reader: lookups without pinning cost. Not `Send`.
pub type Lpm4View<'r> = LpmView<'r, Poptrie4Writer, Dir24Writer>;

structure!(
    Poptrie4Writer,
    Poptrie4Reader,
    Ipv4Net,
    Ipv4Addr,
    u32,
    Poptrie4Writer::with_tbl8_groups,
    Poptrie4Writer::from_routes,
    tbl8_groups_in_use,
    LARGE_AT,
    SMALL_AT
);
structure!(
    Dir24Writer,
    Dir24Reader,
    Ipv4Net,
    Ipv4Addr,
    u32,
    Dir24Writer::with_tbl8_groups,
    Dir24Writer::from_routes,
    tbl8_groups_in_use,
    LARGE_AT,
    SMALL_AT
);

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
        Self::with_capacity(groups)
    }

    /// tbl8 groups in use (0 while the table is compressed).
    pub fn tbl8_groups_in_use(&self) -> u32 {
        self.groups_in_use()
    }
}

impl Lpm4Reader {
    /// Longest-prefix match of `addr`. Pins an epoch guard per call; for
    /// many lookups use [`Self::lookup_batch`] or [`Self::pin`].
    #[inline]
    pub fn lookup(&self, addr: Ipv4Addr) -> Option<NextHop> {
        self.lookup_bits(addr.into())
    }

    /// [`Self::lookup`] of an address in host order.
    #[inline]
    pub fn lookup_u32(&self, addr: u32) -> Option<NextHop> {
        self.lookup_bits(addr)
    }
}

#[cfg(all(test, not(miri)))]
mod tests {
    use super::*;
    use crate::lpm::oracle::Oracle4;
    use crate::lpm::{Route, Update};
    use std::sync::Arc;

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
