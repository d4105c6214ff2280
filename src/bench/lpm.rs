//! The LPM lookup benchmark behind `xconnect bench --lpm`: xconnect's
//! tables beside the crates `prefix-trie`, `ip_network_table` and
//! `treebitmap`, and a "random-read limit", in one run on one pinned core.
//!
//! # Contract
//! - Tables: one IPv4 table per entry of [`LpmSettings::v4_sizes`]
//!   ([`gen::ipv4_table`]) and one IPv6 table per entry of
//!   [`LpmSettings::v6_sizes`] ([`gen::ipv6_table`]). Every implementation
//!   is loaded with the same prefixes, and looks up the same addresses:
//!   a `random` ring and an `inside` ring (each address inside a prefix of
//!   the table), both much larger than the caches (16 MiB of addresses by
//!   default), read sequentially 32 at a time.
//! - Before timing, every implementation's answer is compared with
//!   xconnect's on a sample of both rings; a disagreement fails the run, so
//!   the rows always compare the same table.
//! - Lookup cases per table: `xconnect-single` (one lookup at a time on a
//!   pinned view), `xconnect-batch32` (`lookup_batch` of 32 on a pinned
//!   view with `repin()` per batch, as a worker does), `xconnect-batch1024`
//!   (`lookup_batch` of [`LONG_BATCH`] addresses per call, `repin()` per
//!   call: the table software-pipelines its 32-address batches, which one
//!   call of 32 cannot), `prefix-trie`, `ip_network_table`, `treebitmap`
//!   (one lookup at a time), and `random-read-limit`: independent reads of
//!   a 64 MiB array ([`RandomReadLimit`], allocated as xconnect's first
//!   level is) indexed by the top 24 bits of random addresses, 32 per batch
//!   with prefetch. A DIR-24-8 lookup in batches of 32 cannot beat it.
//!   `random-read-limit-1024` reads the same array pipelined over 1024
//!   addresses exactly as `xconnect-batch1024` is: the limit of that mode.
//!   `vs_limit` is always over `random-read-limit`.
//! - Huge pages: the report says how much of the limit array and of each
//!   xconnect first level the kernel backed with transparent huge pages
//!   (`AnonHugePages`), measured after the timed rounds; a comparison in
//!   which only one side has them is not fair.
//! - The cases of a table run interleaved in rounds of about
//!   [`LpmSettings::round`] each; a row reports the median round. Time is
//!   the thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), so time spent
//!   waiting for a shared core is not counted.
//! - `vs_limit` is a row's lookup rate over the limit's, measured in the
//!   same rounds; `vs_best_crate` is over the fastest of the three crates
//!   on the same table and addresses.
//! - Load rows (`addrs` = `load`): the time to insert every prefix into an
//!   empty structure once (one sample, not a median). `lookups` then
//!   counts prefixes and `mlookups_per_s` is millions of prefixes per
//!   second.
//! - `memory_bytes`: for xconnect, [`Lpm4Writer::memory_bytes`] /
//!   [`Lpm6Writer::memory_bytes`]; for the crates, the growth of the
//!   process's resident set while loading (approximate); for the limit, its
//!   array.

use crate::lpm::limit::RandomReadLimit;
use crate::lpm::{gen, Lpm4View, Lpm4Writer, Lpm6View, Lpm6Writer, NextHop, Route, BATCH};
use ipnet::{Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;
use serde::Serialize;
use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// Settings of an LPM run.
#[derive(Clone, Debug)]
pub struct LpmSettings {
    /// CPU time per case per round.
    pub round: Duration,
    /// Rounds (the median is reported).
    pub rounds: usize,
    /// Core to pin to (`None`: do not pin).
    pub core: Option<usize>,
    /// Prefix counts of the IPv4 tables.
    pub v4_sizes: Vec<usize>,
    /// Prefix counts of the IPv6 tables.
    pub v6_sizes: Vec<usize>,
    /// Addresses per IPv4 ring (a multiple of 32; of 1024 for whole
    /// `-1024` calls).
    pub ring_v4: usize,
    /// Addresses per IPv6 ring (a multiple of 32; of 1024 for whole
    /// `-1024` calls).
    pub ring_v6: usize,
}

impl Default for LpmSettings {
    /// The `xconnect bench --lpm` defaults: IPv4 4,000 / 100,000 /
    /// 1,000,000 and IPv6 200,000 prefixes, 0.3 s rounds, 5 rounds,
    /// 16 MiB rings.
    fn default() -> Self {
        Self {
            round: Duration::from_millis(300),
            rounds: 5,
            core: None,
            v4_sizes: vec![4_000, 100_000, 1_000_000],
            v6_sizes: vec![200_000],
            ring_v4: 1 << 22,
            ring_v6: 1 << 20,
        }
    }
}

impl LpmSettings {
    /// Number of (case, round) steps a run reports progress for.
    pub fn steps(&self) -> usize {
        (self.v4_sizes.len() + self.v6_sizes.len()) * LOOKUP_CASES * self.rounds
    }
}

/// Timed lookup cases per table: the two limits, plus six implementations
/// on two address rings.
const LOOKUP_CASES: usize = 2 + 2 * 6;

/// Addresses per `lookup_batch` call of the `-1024` rows.
pub const LONG_BATCH: usize = 1024;

/// The three crates compared, by row name.
pub const CRATES: [&str; 3] = ["prefix-trie", "ip_network_table", "treebitmap"];

/// One row of the report.
#[derive(Clone, Debug, Serialize)]
pub struct LpmCaseResult {
    /// Implementation: `xconnect-single`, `xconnect-batch32`, a crate name,
    /// `random-read-limit`, or `<implementation>-load` for load rows.
    pub name: String,
    /// Table label, e.g. `v4-1M`.
    pub table: String,
    /// Address set: `random`, `inside`, or `load` for load rows.
    pub addrs: String,
    /// Prefixes in the table.
    pub prefixes: usize,
    /// Lookups in the median round (load rows: prefixes loaded).
    pub lookups: u64,
    /// Million lookups per second of CPU time (load rows: million
    /// prefixes loaded per second).
    pub mlookups_per_s: f64,
    /// Nanoseconds per lookup (load rows: per prefix).
    pub ns_per_lookup: f64,
    /// Ratio of `mlookups_per_s` to the random-read limit of the same
    /// table's rounds (lookup rows only).
    pub vs_limit: Option<f64>,
    /// Ratio of `mlookups_per_s` to the fastest crate on the same table
    /// and address set (load rows: the fastest crate load).
    pub vs_best_crate: Option<f64>,
    /// Bytes the structure uses (see the module contract).
    pub memory_bytes: usize,
}

/// How much of a 64 MiB array the kernel backed with huge pages.
#[derive(Clone, Debug, Serialize)]
pub struct HugePages {
    /// `random-read-limit` or a table label (its first level).
    pub array: String,
    /// Bytes of the array.
    pub bytes: usize,
    /// Bytes backed by transparent huge pages after the timed rounds.
    pub huge_bytes: usize,
}

/// A whole LPM run.
#[derive(Clone, Debug, Serialize)]
pub struct LpmReport {
    /// Rows, table by table.
    pub cases: Vec<LpmCaseResult>,
    /// Huge-page backing of the limit array and of each first level.
    pub huge_pages: Vec<HugePages>,
    /// Core the run was pinned to, if pinning worked.
    pub core: Option<usize>,
    /// Rounds per case.
    pub rounds: usize,
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Resident set size of the process in bytes (0 where unknown).
fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Give freed heap memory back to the kernel so that the next RSS growth
/// measures the next structure only.
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Build `f`'s structure, returning it with its load time (CPU) and RSS
/// growth.
fn measure_load<T>(f: impl FnOnce() -> T) -> (T, Duration, usize) {
    trim_heap();
    let rss = rss_bytes();
    let t = thread_cpu();
    let v = f();
    let el = thread_cpu() - t;
    (v, el, rss_bytes().saturating_sub(rss))
}

/// Label of a table: `v4-4k`, `v4-1M`, `v6-200k`, `v4-1500`.
pub fn table_label(v6: bool, n: usize) -> String {
    let n = if n >= 1_000_000 && n % 1_000_000 == 0 {
        format!("{}M", n / 1_000_000)
    } else if n >= 1000 && n % 1000 == 0 {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    };
    format!("{}-{n}", if v6 { "v6" } else { "v4" })
}

/// A timed lookup case: `run(batches)` looks up `batches` batches of 32
/// addresses (continuing round the ring) and returns a value to keep.
struct Timed<'a> {
    name: &'static str,
    addrs: &'static str,
    memory: usize,
    run: Box<dyn FnMut(u64) -> u64 + 'a>,
    samples: Vec<(u64, Duration)>,
}

/// A cursor over a ring of addresses, 32 at a time.
struct Ring<'a, A> {
    addrs: &'a [A],
    at: usize,
}

impl<'a, A> Ring<'a, A> {
    fn new(addrs: &'a [A]) -> Self {
        assert!(
            addrs.len() >= BATCH && addrs.len() % BATCH == 0,
            "ring length must be a positive multiple of {BATCH}"
        );
        Self { addrs, at: 0 }
    }

    /// The next `max` addresses or fewer (never wrapping round the end).
    #[inline(always)]
    fn take(&mut self, max: usize) -> &'a [A] {
        let len = max.min(self.addrs.len() - self.at);
        let s = &self.addrs[self.at..self.at + len];
        self.at += len;
        if self.at == self.addrs.len() {
            self.at = 0;
        }
        s
    }

    #[inline(always)]
    fn next(&mut self) -> &'a [A; BATCH] {
        let s = &self.addrs[self.at..self.at + BATCH];
        self.at += BATCH;
        if self.at == self.addrs.len() {
            self.at = 0;
        }
        s.try_into().expect("BATCH addresses")
    }
}

/// Time the cases interleaved in rounds; returns rows without ratios.
fn time_cases(
    cases: &mut [Timed<'_>],
    table: &str,
    prefixes: usize,
    s: &LpmSettings,
    progress: &mut dyn FnMut(),
) -> Vec<LpmCaseResult> {
    // Calibrate: batches per round so that a round takes about `s.round`.
    let mut per_round = Vec::with_capacity(cases.len());
    for c in cases.iter_mut() {
        let t = thread_cpu();
        let mut b = 0u64;
        while thread_cpu() - t < s.round / 10 {
            black_box((c.run)(64));
            b += 64;
        }
        per_round.push((b * 10).max(64));
    }
    for _ in 0..s.rounds {
        for (c, &n) in cases.iter_mut().zip(&per_round) {
            let t = thread_cpu();
            black_box((c.run)(n));
            c.samples.push((n * BATCH as u64, thread_cpu() - t));
            progress();
        }
    }
    cases
        .iter()
        .map(|c| {
            let mut v: Vec<(f64, u64)> = c
                .samples
                .iter()
                .map(|(n, d)| (d.as_secs_f64() * 1e9 / *n as f64, *n))
                .collect();
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (ns, lookups) = v[v.len() / 2];
            let ns = ns.max(1e-3);
            LpmCaseResult {
                name: c.name.to_string(),
                table: table.to_string(),
                addrs: c.addrs.to_string(),
                prefixes,
                lookups,
                mlookups_per_s: 1e3 / ns,
                ns_per_lookup: ns,
                vs_limit: None,
                vs_best_crate: None,
                memory_bytes: c.memory,
            }
        })
        .collect()
}

/// A load row.
fn load_row(name: &str, table: &str, n: usize, el: Duration, memory: usize) -> LpmCaseResult {
    let ns = (el.as_secs_f64() * 1e9 / n.max(1) as f64).max(1e-3);
    LpmCaseResult {
        name: format!("{name}-load"),
        table: table.to_string(),
        addrs: "load".to_string(),
        prefixes: n,
        lookups: n as u64,
        mlookups_per_s: 1e3 / ns,
        ns_per_lookup: ns,
        vs_limit: None,
        vs_best_crate: None,
        memory_bytes: memory,
    }
}

/// Addresses of each ring compared across implementations before timing.
const DIFF_SAMPLE: usize = 4096;

fn limit_case<'a>(limit: &'a RandomReadLimit, ring: &'a [u32]) -> Timed<'a> {
    let mut r = Ring::new(ring);
    Timed {
        name: "random-read-limit",
        addrs: "random",
        memory: limit.bytes(),
        run: Box::new(move |n| {
            let mut x = 0u32;
            for _ in 0..n {
                x ^= limit.read_batch(r.next());
            }
            u64::from(x)
        }),
        samples: Vec::new(),
    }
}

fn limit_long_case<'a>(limit: &'a RandomReadLimit, ring: &'a [u32]) -> Timed<'a> {
    let mut r = Ring::new(ring);
    Timed {
        name: "random-read-limit-1024",
        addrs: "random",
        memory: limit.bytes(),
        run: Box::new(move |n| {
            let mut x = 0u32;
            let mut left = n as usize * BATCH;
            while left > 0 {
                let a = r.take(left.min(LONG_BATCH));
                left -= a.len();
                x ^= limit.read_slice(a);
            }
            u64::from(x)
        }),
        samples: Vec::new(),
    }
}

/// What the timing loops do with a batch's answers: decode each to its
/// next hop (no route as 0) and xor them together, as a worker pays for
/// using them ([`RandomReadLimit`] xors the words it reads).
fn fold(out: &[Route]) -> u64 {
    u64::from(out.iter().fold(0u32, |a, o| a ^ o.next_hop().unwrap_or(0)))
}

/// A pinned reader of either family, as the xconnect cases use it.
trait PinnedLpm<A> {
    fn repin(&mut self);
    fn lookup(&self, addr: A) -> Option<NextHop>;
    fn lookup_batch(&self, addrs: &[A], out: &mut [Route]);
}

impl PinnedLpm<u32> for Lpm4View<'_> {
    fn repin(&mut self) {
        Lpm4View::repin(self)
    }
    #[inline(always)]
    fn lookup(&self, addr: u32) -> Option<NextHop> {
        Lpm4View::lookup(self, addr)
    }
    #[inline(always)]
    fn lookup_batch(&self, addrs: &[u32], out: &mut [Route]) {
        Lpm4View::lookup_batch(self, addrs, out)
    }
}

impl PinnedLpm<u128> for Lpm6View<'_> {
    fn repin(&mut self) {
        Lpm6View::repin(self)
    }
    #[inline(always)]
    fn lookup(&self, addr: u128) -> Option<NextHop> {
        Lpm6View::lookup(self, addr)
    }
    #[inline(always)]
    fn lookup_batch(&self, addrs: &[u128], out: &mut [Route]) {
        Lpm6View::lookup_batch(self, addrs, out)
    }
}

/// `xconnect-single`, `xconnect-batch32` and `xconnect-batch1024` on the
/// addresses of `ring`, each on a view from `pin`, repinned per batch as a
/// worker does.
fn xconnect_cases<'a, A: Copy + 'a, V: PinnedLpm<A>>(
    pin: impl Fn() -> V + Copy + 'a,
    kind: &'static str,
    memory: usize,
    ring: &'a [A],
) -> [Timed<'a>; 3] {
    let mut single = Ring::new(ring);
    let mut batch = Ring::new(ring);
    let mut long = Ring::new(ring);
    [
        Timed {
            name: "xconnect-single",
            addrs: kind,
            memory,
            run: Box::new(move |n| {
                let mut view = pin();
                let mut x = 0u64;
                for _ in 0..n {
                    view.repin();
                    for &a in single.next() {
                        x = x.wrapping_add(u64::from(view.lookup(a).unwrap_or(0)));
                    }
                }
                x
            }),
            samples: Vec::new(),
        },
        Timed {
            name: "xconnect-batch32",
            addrs: kind,
            memory,
            run: Box::new(move |n| {
                let mut view = pin();
                let mut out = [Route::NONE; BATCH];
                let mut x = 0u64;
                for _ in 0..n {
                    view.repin();
                    view.lookup_batch(batch.next(), &mut out);
                    x = x.wrapping_add(fold(&out));
                }
                x
            }),
            samples: Vec::new(),
        },
        Timed {
            name: "xconnect-batch1024",
            addrs: kind,
            memory,
            run: Box::new(move |n| {
                let mut view = pin();
                let mut out = vec![Route::NONE; LONG_BATCH];
                let mut x = 0u64;
                let mut left = n as usize * BATCH;
                while left > 0 {
                    let a = long.take(left.min(LONG_BATCH));
                    left -= a.len();
                    view.repin();
                    view.lookup_batch(a, &mut out[..a.len()]);
                    x = x.wrapping_add(fold(&out[..a.len()]));
                }
                x
            }),
            samples: Vec::new(),
        },
    ]
}

/// A crate's case: `lookup` of every address of `ring`, one at a time.
fn crate_case<'a, A: Copy + 'a>(
    name: &'static str,
    kind: &'static str,
    memory: usize,
    ring: &'a [A],
    lookup: impl Fn(A) -> Option<NextHop> + 'a,
) -> Timed<'a> {
    let mut r = Ring::new(ring);
    Timed {
        name,
        addrs: kind,
        memory,
        run: Box::new(move |n| {
            let mut x = 0u64;
            for _ in 0..n {
                for &a in r.next() {
                    x = x.wrapping_add(u64::from(lookup(a).unwrap_or(0)));
                }
            }
            x
        }),
        samples: Vec::new(),
    }
}

/// Run one IPv4 table: returns its rows.
fn run_v4(
    n: usize,
    s: &LpmSettings,
    limit: &RandomReadLimit,
    limit_ring: &[u32],
    progress: &mut dyn FnMut(),
) -> anyhow::Result<(Vec<LpmCaseResult>, HugePages)> {
    let table = table_label(false, n);
    let routes = gen::ipv4_table(n, 42);
    let random = gen::random_v4(s.ring_v4, 7);
    let inside = gen::inside_v4(&routes, s.ring_v4, 8);
    let mut rows = Vec::new();

    let (ours, el, _) = measure_load(|| {
        let mut w = Lpm4Writer::new();
        for &(p, nh) in &routes {
            w.insert(p, nh)?;
        }
        anyhow::Ok(w)
    });
    let ours = ours?;
    rows.push(load_row("xconnect", &table, n, el, ours.memory_bytes()));
    let (pt, el, mem) = measure_load(|| {
        let mut m: PrefixMap<Ipv4Net, NextHop> = PrefixMap::new();
        for &(p, nh) in &routes {
            m.insert(p, nh);
        }
        m
    });
    let pt_mem = mem;
    rows.push(load_row(CRATES[0], &table, n, el, mem));
    let (int, el, mem) = measure_load(|| {
        let mut t = ip_network_table::IpNetworkTable::new();
        for &(p, nh) in &routes {
            let net = ip_network::Ipv4Network::new(p.network(), p.prefix_len())
                .expect("generated prefixes are truncated");
            t.insert(net, nh);
        }
        t
    });
    let int_mem = mem;
    rows.push(load_row(CRATES[1], &table, n, el, mem));
    let (tbm, el, mem) = measure_load(|| {
        let mut t = treebitmap::IpLookupTable::<Ipv4Addr, NextHop>::new();
        for &(p, nh) in &routes {
            t.insert(p.network(), u32::from(p.prefix_len()), nh);
        }
        t
    });
    let tbm_mem = mem;
    rows.push(load_row(CRATES[2], &table, n, el, mem));

    // Differential check: every implementation answers as xconnect does.
    let reader = ours.reader();
    for ring in [&random, &inside] {
        for &a in ring.iter().take(DIFF_SAMPLE) {
            let ip = Ipv4Addr::from(a);
            let want = reader.lookup_u32(a);
            let q = Ipv4Net::new(ip, 32).expect("/32");
            let got = [
                pt.get_lpm(&q).map(|(_, nh)| *nh),
                int.longest_match_ipv4(ip).map(|(_, nh)| *nh),
                tbm.longest_match(ip).map(|(_, _, nh)| *nh),
            ];
            for (name, g) in CRATES.iter().zip(got) {
                if g != want {
                    anyhow::bail!("{table}: {name} answers {g:?} for {ip}, xconnect {want:?}");
                }
            }
        }
    }

    let mem_ours = ours.memory_bytes();
    let mut cases = vec![
        limit_case(limit, limit_ring),
        limit_long_case(limit, limit_ring),
    ];
    for (kind, ring) in [("random", &random[..]), ("inside", &inside[..])] {
        cases.extend(xconnect_cases(|| reader.pin(), kind, mem_ours, ring));
        let (pt, int, tbm) = (&pt, &int, &tbm);
        cases.extend([
            crate_case(CRATES[0], kind, pt_mem, ring, move |a: u32| {
                let q = Ipv4Net::new(Ipv4Addr::from(a), 32).expect("/32");
                pt.get_lpm(&q).map(|(_, nh)| *nh)
            }),
            crate_case(CRATES[1], kind, int_mem, ring, move |a: u32| {
                int.longest_match_ipv4(Ipv4Addr::from(a)).map(|(_, nh)| *nh)
            }),
            crate_case(CRATES[2], kind, tbm_mem, ring, move |a: u32| {
                tbm.longest_match(Ipv4Addr::from(a)).map(|(_, _, nh)| *nh)
            }),
        ]);
    }
    debug_assert_eq!(cases.len(), LOOKUP_CASES);
    let mut timed = time_cases(&mut cases, &table, n, s, progress);
    timed.append(&mut rows);
    let huge = HugePages {
        array: format!("{table} first level"),
        bytes: RandomReadLimit::LEN * 4,
        huge_bytes: ours.huge_page_bytes(),
    };
    Ok((timed, huge))
}

/// Run one IPv6 table: returns its rows.
fn run_v6(
    n: usize,
    s: &LpmSettings,
    limit: &RandomReadLimit,
    limit_ring: &[u32],
    progress: &mut dyn FnMut(),
) -> anyhow::Result<(Vec<LpmCaseResult>, HugePages)> {
    let table = table_label(true, n);
    let routes = gen::ipv6_table(n, 43);
    let random = gen::random_v6(s.ring_v6, 9);
    let inside = gen::inside_v6(&routes, s.ring_v6, 10);
    let mut rows = Vec::new();

    let groups = (n * 5).next_power_of_two().clamp(1 << 12, 1 << 24) as u32;
    let (ours, el, _) = measure_load(|| {
        let mut w = Lpm6Writer::with_groups(groups);
        for &(p, nh) in &routes {
            w.insert(p, nh)?;
        }
        anyhow::Ok(w)
    });
    let ours = ours?;
    rows.push(load_row("xconnect", &table, n, el, ours.memory_bytes()));
    let (pt, el, mem) = measure_load(|| {
        let mut m: PrefixMap<Ipv6Net, NextHop> = PrefixMap::new();
        for &(p, nh) in &routes {
            m.insert(p, nh);
        }
        m
    });
    let pt_mem = mem;
    rows.push(load_row(CRATES[0], &table, n, el, mem));
    let (int, el, mem) = measure_load(|| {
        let mut t = ip_network_table::IpNetworkTable::new();
        for &(p, nh) in &routes {
            let net = ip_network::Ipv6Network::new(p.network(), p.prefix_len())
                .expect("generated prefixes are truncated");
            t.insert(net, nh);
        }
        t
    });
    let int_mem = mem;
    rows.push(load_row(CRATES[1], &table, n, el, mem));
    let (tbm, el, mem) = measure_load(|| {
        let mut t = treebitmap::IpLookupTable::<Ipv6Addr, NextHop>::new();
        for &(p, nh) in &routes {
            t.insert(p.network(), u32::from(p.prefix_len()), nh);
        }
        t
    });
    let tbm_mem = mem;
    rows.push(load_row(CRATES[2], &table, n, el, mem));

    let reader = ours.reader();
    for ring in [&random, &inside] {
        for &a in ring.iter().take(DIFF_SAMPLE) {
            let ip = Ipv6Addr::from(a);
            let want = reader.lookup_u128(a);
            let q = Ipv6Net::new(ip, 128).expect("/128");
            let got = [
                pt.get_lpm(&q).map(|(_, nh)| *nh),
                int.longest_match_ipv6(ip).map(|(_, nh)| *nh),
                tbm.longest_match(ip).map(|(_, _, nh)| *nh),
            ];
            for (name, g) in CRATES.iter().zip(got) {
                if g != want {
                    anyhow::bail!("{table}: {name} answers {g:?} for {ip}, xconnect {want:?}");
                }
            }
        }
    }

    let mem_ours = ours.memory_bytes();
    let mut cases = vec![
        limit_case(limit, limit_ring),
        limit_long_case(limit, limit_ring),
    ];
    for (kind, ring) in [("random", &random[..]), ("inside", &inside[..])] {
        cases.extend(xconnect_cases(|| reader.pin(), kind, mem_ours, ring));
        let (pt, int, tbm) = (&pt, &int, &tbm);
        cases.extend([
            crate_case(CRATES[0], kind, pt_mem, ring, move |a: u128| {
                let q = Ipv6Net::new(Ipv6Addr::from(a), 128).expect("/128");
                pt.get_lpm(&q).map(|(_, nh)| *nh)
            }),
            crate_case(CRATES[1], kind, int_mem, ring, move |a: u128| {
                int.longest_match_ipv6(Ipv6Addr::from(a)).map(|(_, nh)| *nh)
            }),
            crate_case(CRATES[2], kind, tbm_mem, ring, move |a: u128| {
                tbm.longest_match(Ipv6Addr::from(a)).map(|(_, _, nh)| *nh)
            }),
        ]);
    }
    debug_assert_eq!(cases.len(), LOOKUP_CASES);
    let mut timed = time_cases(&mut cases, &table, n, s, progress);
    timed.append(&mut rows);
    let huge = HugePages {
        array: format!("{table} first level"),
        bytes: RandomReadLimit::LEN * 4,
        huge_bytes: ours.huge_page_bytes(),
    };
    Ok((timed, huge))
}

/// Fill `vs_limit` and `vs_best_crate`.
fn add_ratios(rows: &mut [LpmCaseResult]) {
    let base: Vec<(String, String, String, f64)> = rows
        .iter()
        .map(|r| {
            (
                r.name.clone(),
                r.table.clone(),
                r.addrs.clone(),
                r.mlookups_per_s,
            )
        })
        .collect();
    for r in rows.iter_mut() {
        let same = |b: &&(String, String, String, f64)| b.1 == r.table && b.2 == r.addrs;
        if r.addrs != "load" {
            r.vs_limit = base
                .iter()
                .find(|b| b.0 == "random-read-limit" && b.1 == r.table)
                .map(|b| r.mlookups_per_s / b.3);
        }
        let crate_name = |n: &str| {
            CRATES
                .iter()
                .any(|c| n == *c || n.strip_suffix("-load") == Some(c))
        };
        r.vs_best_crate = base
            .iter()
            .filter(same)
            .filter(|b| crate_name(&b.0))
            .map(|b| b.3)
            .max_by(f64::total_cmp)
            .map(|best| r.mlookups_per_s / best);
    }
}

/// Run every table; `progress` is called after each (case, round) with
/// (done, total).
pub fn run(s: &LpmSettings, mut progress: impl FnMut(usize, usize)) -> anyhow::Result<LpmReport> {
    if s.rounds == 0 {
        anyhow::bail!("at least one round");
    }
    let core = super::pin_to(s.core);
    let total = s.steps();
    let mut done = 0;
    let mut step = || {
        done += 1;
        progress(done, total);
    };
    let limit = RandomReadLimit::new();
    let limit_ring = gen::random_v4(s.ring_v4, 7);
    let mut rows = Vec::new();
    let mut huge_pages = Vec::new();
    for &n in &s.v4_sizes {
        let (r, h) = run_v4(n, s, &limit, &limit_ring, &mut step)?;
        rows.extend(r);
        huge_pages.push(h);
    }
    for &n in &s.v6_sizes {
        let (r, h) = run_v6(n, s, &limit, &limit_ring, &mut step)?;
        rows.extend(r);
        huge_pages.push(h);
    }
    huge_pages.insert(
        0,
        HugePages {
            array: "random-read-limit".to_string(),
            bytes: limit.bytes(),
            huge_bytes: limit.huge_page_bytes(),
        },
    );
    add_ratios(&mut rows);
    Ok(LpmReport {
        cases: rows,
        huge_pages,
        core,
        rounds: s.rounds,
    })
}

impl LpmReport {
    /// A fixed-width table for people.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{:<22} {:<8} {:<7} {:>9} {:>10} {:>9} {:>8} {:>8} {:>9} {:>9}\n",
            "case",
            "table",
            "addrs",
            "prefixes",
            "lookups",
            "M/s",
            "ns",
            "vs limit",
            "vs crate",
            "MiB"
        );
        for r in &self.cases {
            let ratio = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.3}x"));
            s += &format!(
                "{:<22} {:<8} {:<7} {:>9} {:>10} {:>9.2} {:>8.2} {:>8} {:>9} {:>9.1}\n",
                r.name,
                r.table,
                r.addrs,
                r.prefixes,
                r.lookups,
                r.mlookups_per_s,
                r.ns_per_lookup,
                ratio(r.vs_limit),
                ratio(r.vs_best_crate),
                r.memory_bytes as f64 / (1 << 20) as f64
            );
        }
        s += &format!(
            "median of {} rounds (thread CPU time); load rows: one load, M prefixes/s; {}\n",
            self.rounds,
            match self.core {
                Some(c) => format!("pinned to core {c}"),
                None => "not pinned".to_string(),
            }
        );
        let mib = |b: usize| b as f64 / (1 << 20) as f64;
        let huge: Vec<String> = self
            .huge_pages
            .iter()
            .map(|h| {
                format!(
                    "{} {:.0}/{:.0} MiB",
                    h.array,
                    mib(h.huge_bytes),
                    mib(h.bytes)
                )
            })
            .collect();
        s += &format!("huge pages (AnonHugePages): {}\n", huge.join(", "));
        s
    }
}

#[cfg(all(test, not(miri)))]
mod tests {
    use super::*;
    use crate::lpm::oracle::{Oracle4, Oracle6};

    #[test]
    fn labels() {
        assert_eq!(table_label(false, 4000), "v4-4k");
        assert_eq!(table_label(false, 1_000_000), "v4-1M");
        assert_eq!(table_label(true, 200_000), "v6-200k");
        assert_eq!(table_label(false, 1500), "v4-1500");
    }

    #[test]
    fn tiny_run_reports_every_row() {
        let s = LpmSettings {
            round: Duration::from_millis(2),
            rounds: 1,
            core: None,
            v4_sizes: vec![2000],
            v6_sizes: vec![500],
            ring_v4: 1 << 12,
            ring_v6: 1 << 12,
        };
        let mut steps = 0;
        let r = run(&s, |_, _| steps += 1).unwrap();
        assert_eq!(steps, s.steps());
        let impls = [
            "xconnect-single",
            "xconnect-batch32",
            "xconnect-batch1024",
            "prefix-trie",
            "ip_network_table",
            "treebitmap",
        ];
        for table in ["v4-2k", "v6-500"] {
            let row = |name: &str, addrs: &str| {
                r.cases
                    .iter()
                    .find(|c| c.table == table && c.name == name && c.addrs == addrs)
                    .unwrap_or_else(|| panic!("row {name} {table} {addrs} missing"))
            };
            let limit = row("random-read-limit", "random");
            assert!((limit.vs_limit.unwrap() - 1.0).abs() < 1e-9);
            assert!(row("random-read-limit-1024", "random").vs_limit.unwrap() > 0.0);
            for addrs in ["random", "inside"] {
                for name in impls {
                    let c = row(name, addrs);
                    assert!(c.vs_limit.unwrap() > 0.0 && c.vs_best_crate.unwrap() > 0.0);
                }
                let best = CRATES
                    .iter()
                    .map(|n| row(n, addrs).vs_best_crate.unwrap())
                    .fold(0.0, f64::max);
                assert!((best - 1.0).abs() < 1e-9);
            }
            for name in ["xconnect", "prefix-trie", "ip_network_table", "treebitmap"] {
                let c = row(&format!("{name}-load"), "load");
                assert!(c.vs_best_crate.unwrap() > 0.0 && c.vs_limit.is_none());
            }
        }
        assert_eq!(r.cases.len(), 2 * (LOOKUP_CASES + 4));
        for c in &r.cases {
            assert!(
                c.mlookups_per_s > 0.0 && c.ns_per_lookup > 0.0 && c.lookups > 0,
                "{c:?}"
            );
            assert!(c.prefixes > 0);
            if c.name.starts_with("xconnect") || c.name.starts_with("random") {
                assert!(c.memory_bytes > 0, "{c:?}");
            }
        }
        let json = serde_json::to_value(&r).unwrap();
        let first = &json["cases"][0];
        for k in [
            "name",
            "table",
            "prefixes",
            "lookups",
            "mlookups_per_s",
            "ns_per_lookup",
            "vs_limit",
            "vs_best_crate",
            "memory_bytes",
        ] {
            assert!(first.get(k).is_some(), "{k}");
        }
        assert!(r.table().contains("treebitmap"));
    }

    /// The crates, loaded as the bench loads them, answer as xconnect and
    /// the oracle do on a sample of addresses: the rows compare one table.
    #[test]
    fn crates_answer_as_xconnect() {
        let routes = gen::ipv4_table(3000, 42);
        let mut ours = Lpm4Writer::new();
        let mut oracle = Oracle4::new();
        let mut pt: PrefixMap<Ipv4Net, NextHop> = PrefixMap::new();
        let mut int = ip_network_table::IpNetworkTable::new();
        let mut tbm = treebitmap::IpLookupTable::<Ipv4Addr, NextHop>::new();
        for &(p, nh) in &routes {
            ours.insert(p, nh).unwrap();
            oracle.insert(p, nh);
            pt.insert(p, nh);
            int.insert(
                ip_network::Ipv4Network::new(p.network(), p.prefix_len()).unwrap(),
                nh,
            );
            tbm.insert(p.network(), u32::from(p.prefix_len()), nh);
        }
        let mut addrs = gen::random_v4(2000, 1);
        addrs.extend(gen::inside_v4(&routes, 2000, 2));
        let r = ours.reader();
        let mut hits = 0;
        for a in addrs {
            let ip = Ipv4Addr::from(a);
            let want = oracle.lookup(ip);
            hits += usize::from(want.is_some());
            assert_eq!(r.lookup_u32(a), want, "{ip}");
            let q = Ipv4Net::new(ip, 32).unwrap();
            assert_eq!(pt.get_lpm(&q).map(|(_, nh)| *nh), want, "{ip}");
            assert_eq!(int.longest_match_ipv4(ip).map(|(_, nh)| *nh), want, "{ip}");
            assert_eq!(tbm.longest_match(ip).map(|(_, _, nh)| *nh), want, "{ip}");
        }
        assert!(hits >= 2000, "inside addresses must hit ({hits})");

        let routes = gen::ipv6_table(1000, 43);
        let mut ours = Lpm6Writer::with_groups(1 << 13);
        let mut oracle = Oracle6::new();
        let mut pt: PrefixMap<Ipv6Net, NextHop> = PrefixMap::new();
        let mut int = ip_network_table::IpNetworkTable::new();
        let mut tbm = treebitmap::IpLookupTable::<Ipv6Addr, NextHop>::new();
        for &(p, nh) in &routes {
            ours.insert(p, nh).unwrap();
            oracle.insert(p, nh);
            pt.insert(p, nh);
            int.insert(
                ip_network::Ipv6Network::new(p.network(), p.prefix_len()).unwrap(),
                nh,
            );
            tbm.insert(p.network(), u32::from(p.prefix_len()), nh);
        }
        let mut addrs = gen::random_v6(1000, 1);
        addrs.extend(gen::inside_v6(&routes, 1000, 2));
        let r = ours.reader();
        for a in addrs {
            let ip = Ipv6Addr::from(a);
            let want = oracle.lookup(ip);
            assert_eq!(r.lookup_u128(a), want, "{ip}");
            let q = Ipv6Net::new(ip, 128).unwrap();
            assert_eq!(pt.get_lpm(&q).map(|(_, nh)| *nh), want, "{ip}");
            assert_eq!(int.longest_match_ipv6(ip).map(|(_, nh)| *nh), want, "{ip}");
            assert_eq!(tbm.longest_match(ip).map(|(_, _, nh)| *nh), want, "{ip}");
        }
    }
}
