//! Deterministic route tables and lookup addresses for benchmarks, tests
//! and the CLI `bench` command.
//!
//! # Contract
//! - Same seed, same output, on every platform (a xorshift generator, no
//!   external RNG).
//! - [`ipv4_table`]: distinct prefixes with a length mix shaped like a
//!   full Internet table: ≈58 % /24, then /22, /23, /20–/21, /16–/19, a few
//!   hundred per million shorter than /16 and ≈1 % longer than /24, in
//!   unicast space (1.0.0.0–223.255.255.255).
//! - [`ipv6_table`]: distinct /32–/64 prefixes in 2000::/3, clustered under
//!   /32 allocations as real tables are (≈50 % /48).
//! - Next hops are `0..256`.
//! - [`bgp_table`]: the real BGP table (1.07M IPv4 and 176k IPv6 prefixes
//!   with their origin AS) that the `iptrie` crate (MIT) ships as
//!   `benches/bgpas.lpm`, read from the crate's sources in cargo's
//!   registry (or from `$XCONNECT_BGP_TABLE`); next hop = origin AS
//!   modulo 2^24. Not copied into this repository (27 MB).

use super::NextHop;
use ipnet::{Ipv4Net, Ipv6Net};
use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};

/// xorshift64* generator: tiny, fast, deterministic. Not for secrets.
#[derive(Debug, Clone)]
pub struct XorShift64(u64);

impl XorShift64 {
    /// A generator from `seed` (any value; zero is remapped).
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// Next 128 random bits.
    pub fn next_u128(&mut self) -> u128 {
        (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64())
    }

    /// Uniform-ish value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u32) -> u32 {
        ((u64::from(self.next_u32()) * u64::from(n)) >> 32) as u32
    }

    /// Pick a value from `(weight, value)` pairs.
    fn weighted<T: Copy>(&mut self, table: &[(u32, T)]) -> T {
        let total: u32 = table.iter().map(|w| w.0).sum();
        let mut x = self.below(total);
        for &(w, v) in table {
            if x < w {
                return v;
            }
            x -= w;
        }
        table[table.len() - 1].1
    }
}

/// Prefix-length mix of [`ipv4_table`], per 100,000: (weight, (min, max)).
/// Shaped after the public IPv4 table of the mid-2020s (≈58 % /24, ≈0.4 %
/// shorter than /16); ≈1 % longer than /24 as customer routes add.
const V4_LENGTHS: &[(u32, (u8, u8))] = &[
    (58_000, (24, 24)),
    (11_500, (23, 23)),
    (12_500, (22, 22)),
    (5_700, (21, 21)),
    (4_700, (20, 20)),
    (2_600, (19, 19)),
    (1_460, (18, 18)),
    (840, (17, 17)),
    (1_350, (16, 16)),
    (210, (15, 15)),
    (125, (14, 14)),
    (60, (13, 13)),
    (30, (12, 12)),
    (10, (11, 11)),
    (4, (10, 10)),
    (2, (9, 9)),
    (2, (8, 8)),
    (1_000, (25, 32)),
];

/// `n` distinct IPv4 prefixes with next hops, deterministic in `seed`.
pub fn ipv4_table(n: usize, seed: u64) -> Vec<(Ipv4Net, NextHop)> {
    let mut rng = XorShift64::new(seed);
    let mut seen = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let (lo, hi) = rng.weighted(V4_LENGTHS);
        let len = lo + rng.below(u32::from(hi - lo) + 1) as u8;
        // Unicast space 1.0.0.0 .. 223.255.255.255.
        let addr = 0x0100_0000 + rng.below(0xDF00_0000);
        let net = Ipv4Net::new(Ipv4Addr::from(addr), len)
            .expect("len <= 32")
            .trunc();
        if seen.insert(net) {
            out.push((net, rng.below(256)));
        }
    }
    out
}

/// Prefix-length mix of [`ipv6_table`] under a /32 allocation.
const V6_LENGTHS: &[(u32, (u8, u8))] = &[
    (520, (48, 48)),
    (100, (44, 44)),
    (80, (40, 40)),
    (60, (45, 47)),
    (40, (33, 39)),
    (40, (56, 56)),
    (20, (49, 55)),
    (10, (57, 63)),
    (10, (64, 64)),
];

/// `n` distinct IPv6 prefixes of /32–/64 with next hops: ≈12 % are /32
/// allocations, the rest more specifics under them.
pub fn ipv6_table(n: usize, seed: u64) -> Vec<(Ipv6Net, NextHop)> {
    let mut rng = XorShift64::new(seed);
    let allocations: Vec<u128> = (0..(n / 8).max(1))
        .map(|_| {
            let a = (0x2000_0000u128 | u128::from(rng.next_u32() >> 3)) << 96;
            a & (!0u128 << 96)
        })
        .collect();
    let mut seen = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let base = allocations[rng.below(allocations.len() as u32) as usize];
        let net = if rng.below(100) < 12 {
            Ipv6Net::new(Ipv6Addr::from(base), 32).expect("32 <= 128")
        } else {
            let (lo, hi) = rng.weighted(V6_LENGTHS);
            let len = lo + rng.below(u32::from(hi - lo) + 1) as u8;
            let addr = base | (rng.next_u128() >> 32);
            Ipv6Net::new(Ipv6Addr::from(addr), len)
                .expect("len <= 128")
                .trunc()
        };
        if seen.insert(net) {
            out.push((net, rng.below(256)));
        }
    }
    out
}

/// `n` uniformly random IPv4 addresses (host order).
pub fn random_v4(n: usize, seed: u64) -> Vec<u32> {
    let mut rng = XorShift64::new(seed);
    (0..n).map(|_| rng.next_u32()).collect()
}

/// `n` random addresses, each inside a random prefix of `table`.
pub fn inside_v4(table: &[(Ipv4Net, NextHop)], n: usize, seed: u64) -> Vec<u32> {
    let mut rng = XorShift64::new(seed);
    (0..n)
        .map(|_| {
            let (net, _) = table[rng.below(table.len() as u32) as usize];
            let host = !u32::from(net.netmask());
            u32::from(net.network()) | (rng.next_u32() & host)
        })
        .collect()
}

/// `n` random addresses in 2000::/3 (where routed IPv6 traffic goes).
pub fn random_v6(n: usize, seed: u64) -> Vec<u128> {
    let mut rng = XorShift64::new(seed);
    (0..n)
        .map(|_| (0x2u128 << 124) | (rng.next_u128() >> 3))
        .collect()
}

/// `n` random addresses, each inside a random prefix of `table`.
pub fn inside_v6(table: &[(Ipv6Net, NextHop)], n: usize, seed: u64) -> Vec<u128> {
    let mut rng = XorShift64::new(seed);
    (0..n)
        .map(|_| {
            let (net, _) = table[rng.below(table.len() as u32) as usize];
            let host = !u128::from(net.netmask());
            u128::from(net.network()) | (rng.next_u128() & host)
        })
        .collect()
}

#[cfg(all(test, not(miri)))]
mod tests {
    use super::*;

    #[test]
    fn tables_are_deterministic_distinct_and_shaped() {
        let a = ipv4_table(5000, 1);
        assert_eq!(a, ipv4_table(5000, 1));
        let distinct: HashSet<_> = a.iter().map(|r| r.0).collect();
        assert_eq!(distinct.len(), 5000);
        let p24 = a.iter().filter(|r| r.0.prefix_len() == 24).count();
        assert!((2700..3300).contains(&p24), "{p24} /24s of 5000");
        let v6 = ipv6_table(2000, 2);
        assert!(v6.iter().all(
            |r| (32..=64).contains(&r.0.prefix_len()) && u128::from(r.0.network()) >> 125 == 1
        ));
        for a in inside_v6(&v6, 100, 3) {
            assert!(v6.iter().any(|r| r.0.contains(&Ipv6Addr::from(a))));
        }
    }
}

/// Where [`bgp_table`] reads the real table: `$XCONNECT_BGP_TABLE`, else
/// `benches/bgpas.lpm` of the newest `iptrie-*` crate source in cargo's
/// registry (`cargo fetch` of a project depending on `iptrie` puts it
/// there). `None` when neither exists.
pub fn bgp_table_path() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("XCONNECT_BGP_TABLE") {
        return Some(p.into());
    }
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")))?;
    let mut found: Vec<std::path::PathBuf> = std::fs::read_dir(home.join("registry/src"))
        .ok()?
        .flatten()
        .flat_map(|index| {
            std::fs::read_dir(index.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .filter(|c| c.file_name().to_string_lossy().starts_with("iptrie-"))
        .map(|c| c.path().join("benches/bgpas.lpm"))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found.pop()
}

/// IPv4 and IPv6 routes of a table.
pub type Routes46 = (Vec<(Ipv4Net, NextHop)>, Vec<(Ipv6Net, NextHop)>);

/// The real BGP table of [`bgp_table_path`]: IPv4 and IPv6 prefixes (host
/// bits cleared, in file order: address order) with next hop = origin AS
/// modulo 2^24. Lines that do not parse are skipped.
pub fn bgp_table(path: &std::path::Path) -> std::io::Result<Routes46> {
    let text = std::fs::read_to_string(path)?;
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let mut w = line.split_whitespace();
        let (Some(p), Some(asn)) = (w.next(), w.next()) else {
            continue;
        };
        let Ok(asn) = asn.parse::<u64>() else {
            continue;
        };
        let nh = (asn % (1 << 24)) as NextHop;
        if let Ok(p) = p.parse::<Ipv4Net>() {
            v4.push((p.trunc(), nh));
        } else if let Ok(p) = p.parse::<Ipv6Net>() {
            v6.push((p.trunc(), nh));
        }
    }
    Ok((v4, v6))
}
