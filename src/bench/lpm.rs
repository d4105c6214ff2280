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
//! - Then xconnect's own structures side by side ([`LpmReport::structures`],
//!   module `real`): on each IPv6 table of [`LpmSettings::v6_sizes`] and,
//!   with [`LpmSettings::real`], on the real BGP table (`bgp-v4`,
//!   `bgp-v6`), plus the `vrf-memory` case ([`LpmReport::vrf_memory`]) on
//!   tables sampled from it. Without a real table those cases are skipped
//!   and [`LpmReport::notes`] says why.

mod real;

pub use real::{parse_statm, sample, LpmStructRow, VrfRow, VrfSpec, COSTLY_CAP};

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
    /// The real BGP table ([`gen::bgp_table`]) for the real-table and
    /// `vrf-memory` cases (`None`: those cases are skipped).
    pub real: Option<std::path::PathBuf>,
    /// Why `real` is `None`, said in the report's notes.
    pub real_note: Option<String>,
    /// `vrf-memory` requests on the real IPv4 table.
    pub vrf_v4: Vec<VrfSpec>,
    /// `vrf-memory` requests on the real IPv6 table.
    pub vrf_v6: Vec<VrfSpec>,
    /// Prefixes removed and re-inserted per round by the `-update` rows.
    pub updates: usize,
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
            real: None,
            real_note: None,
            vrf_v4: vec![VrfSpec {
                tables: 200,
                prefixes: 4_000,
                clustered: false,
            }],
            vrf_v6: vec![VrfSpec {
                tables: 200,
                prefixes: 200,
                clustered: false,
            }],
            updates: 1_000,
        }
    }
}

impl LpmSettings {
    /// Number of (case, round) steps a run reports progress for.
    pub fn steps(&self) -> usize {
        let crates = (self.v4_sizes.len() + self.v6_sizes.len()) * LOOKUP_CASES * self.rounds;
        let n6 = real::v6_entries().len();
        let synthetic = self.v6_sizes.len() * real::set_steps(n6, self.rounds);
        crates + synthetic + self.real_steps()
    }

    /// Steps of the real-table and `vrf-memory` cases.
    fn real_steps(&self) -> usize {
        if self.real.is_none() {
            return 0;
        }
        let (n4, n6) = (real::v4_entries().len(), real::v6_entries().len());
        real::set_steps(n4, self.rounds)
            + real::set_steps(n6, self.rounds)
            + real::vrf_steps(n4, &self.vrf_v4)
            + real::vrf_steps(n6, &self.vrf_v6)
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
    /// xconnect's structures side by side: on the real table (`bgp-v4`,
    /// `bgp-v6`) and on the synthetic IPv6 tables.
    pub structures: Vec<LpmStructRow>,
    /// The `vrf-memory` case.
    pub vrf_memory: Vec<VrfRow>,
    /// The real table read, if any.
    pub real_table: Option<String>,
    /// What was skipped, and why.
    pub notes: Vec<String>,
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
    name: String,
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

/// Run the cases interleaved in `s.rounds` rounds of about `s.round`
/// each (calibrated first), filling each case's `samples` (one per round,
/// in round order).
fn time_rounds(cases: &mut [Timed<'_>], s: &LpmSettings, progress: &mut dyn FnMut()) {
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
}

/// Time the cases interleaved in rounds; returns rows without ratios.
fn time_cases(
    cases: &mut [Timed<'_>],
    table: &str,
    prefixes: usize,
    s: &LpmSettings,
    progress: &mut dyn FnMut(),
) -> Vec<LpmCaseResult> {
    time_rounds(cases, s, progress);
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
                name: c.name.clone(),
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
        name: "random-read-limit".to_string(),
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
        name: "random-read-limit-1024".to_string(),
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

/// `<impl>-single`, `<impl>-batch32` and `<impl>-batch1024` (`impl`:
/// `xconnect` for the public table) on the addresses of `ring`, each on a
/// view from `pin`, repinned per batch as a worker does.
fn xconnect_cases<'a, A: Copy + 'a, V: PinnedLpm<A>>(
    imp: &str,
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
            name: format!("{imp}-single"),
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
            name: format!("{imp}-batch32"),
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
            name: format!("{imp}-batch1024"),
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
        name: name.to_string(),
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
        cases.extend(xconnect_cases(
            "xconnect",
            || reader.pin(),
            kind,
            mem_ours,
            ring,
        ));
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
        cases.extend(xconnect_cases(
            "xconnect",
            || reader.pin(),
            kind,
            mem_ours,
            ring,
        ));
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
    drop(limit);
    add_ratios(&mut rows);

    // xconnect's structures side by side on the synthetic IPv6 tables.
    let mut structures = Vec::new();
    for &n in &s.v6_sizes {
        let table = table_label(true, n);
        let routes = gen::ipv6_table(n, 43);
        let random = gen::random_v6(s.ring_v6, 9);
        let inside = gen::inside_v6(&routes, s.ring_v6, 10);
        let input = real::SetInput {
            table: &table,
            routes: &routes,
            random: &random,
            inside: &inside,
        };
        structures.extend(real::struct_set(&input, &real::v6_entries(), s, &mut step)?);
    }

    // The real table: structures, then vrf-memory.
    let mut notes: Vec<String> = s.real_note.iter().cloned().collect();
    let mut vrf_memory = Vec::new();
    let mut real_table = None;
    if let Some(path) = &s.real {
        match gen::bgp_table(path) {
            Err(e) => {
                notes.push(format!(
                    "real table {} unreadable ({e}): real-table and vrf-memory cases skipped",
                    path.display()
                ));
                for _ in 0..s.real_steps() {
                    step();
                }
            }
            Ok((v4r, v6r)) => {
                real_table = Some(format!(
                    "{}: {} IPv4, {} IPv6 prefixes",
                    path.display(),
                    v4r.len(),
                    v6r.len()
                ));
                real_sets(s, &v4r, &v6r, &mut structures, &mut vrf_memory, &mut step)?;
                if !(s.vrf_v4.is_empty() && s.vrf_v6.is_empty()) {
                    let costly: Vec<&str> = real::v4_entries()
                        .iter()
                        .map(|e| (e.name, e.costly))
                        .chain(real::v6_entries().iter().map(|e| (e.name, e.costly)))
                        .filter(|e| e.1)
                        .map(|e| e.0)
                        .collect();
                    notes.push(format!(
                        "vrf-memory: {} build at most {COSTLY_CAP} tables each (tens of MiB per table whatever its size)",
                        costly.join(" and ")
                    ));
                }
            }
        }
    }
    if real::v6_entries().len() == 1 {
        notes.push(
            "Lpm6Writer is Trie6Writer in this build: its IPv6 rows are the Trie6Writer rows"
                .to_string(),
        );
    }
    Ok(LpmReport {
        cases: rows,
        huge_pages,
        structures,
        vrf_memory,
        real_table,
        notes,
        core,
        rounds: s.rounds,
    })
}

/// The structure sets on the real table (`bgp-v4`, `bgp-v6`) and
/// `vrf-memory` on it.
fn real_sets(
    s: &LpmSettings,
    v4r: &[(Ipv4Net, NextHop)],
    v6r: &[(Ipv6Net, NextHop)],
    structures: &mut Vec<LpmStructRow>,
    vrf_memory: &mut Vec<VrfRow>,
    step: &mut dyn FnMut(),
) -> anyhow::Result<()> {
    {
        let random = gen::random_v4(s.ring_v4, 7);
        let inside = gen::inside_v4(v4r, s.ring_v4, 8);
        let input = real::SetInput {
            table: "bgp-v4",
            routes: v4r,
            random: &random,
            inside: &inside,
        };
        structures.extend(real::struct_set(&input, &real::v4_entries(), s, step)?);
    }
    {
        let random = gen::random_v6(s.ring_v6, 9);
        let inside = gen::inside_v6(v6r, s.ring_v6, 10);
        let input = real::SetInput {
            table: "bgp-v6",
            routes: v6r,
            random: &random,
            inside: &inside,
        };
        structures.extend(real::struct_set(&input, &real::v6_entries(), s, step)?);
    }
    vrf_memory.extend(real::vrf_memory::<_, _, crate::lpm::oracle::Oracle4>(
        "v4",
        v4r,
        &s.vrf_v4,
        &real::v4_entries(),
        step,
    )?);
    vrf_memory.extend(real::vrf_memory::<_, _, crate::lpm::oracle::Oracle6>(
        "v6",
        v6r,
        &s.vrf_v6,
        &real::v6_entries(),
        step,
    )?);
    Ok(())
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
        if let Some(t) = &self.real_table {
            s += &format!("real table: {t}\n");
        }
        if !self.structures.is_empty() {
            s += &format!(
                "\n{:<24} {:<8} {:<7} {:>8} {:>9} {:>17} {:>8} {:>8} {:>15} {:>9}\n",
                "structure case",
                "table",
                "addrs",
                "prefixes",
                "M/s",
                "(min-max)",
                "ns",
                "vs base",
                "(min-max)",
                "table MiB"
            );
            for r in &self.structures {
                s += &format!(
                    "{:<24} {:<8} {:<7} {:>8} {:>9.2} {:>17} {:>8.2} {:>7.3}x {:>15} {:>9.1}\n",
                    r.name,
                    r.table,
                    r.addrs,
                    r.prefixes,
                    r.mlookups_per_s,
                    format!("({:.2}-{:.2})", r.mlookups_per_s_min, r.mlookups_per_s_max),
                    r.ns_per_lookup,
                    r.vs_baseline,
                    format!("({:.3}-{:.3})", r.vs_baseline_min, r.vs_baseline_max),
                    mib(r.table_bytes)
                );
            }
            s += "structure rows: median of per-round rates (M lookups/s; load: M prefixes/s, \
                  bulk from_routes, Trie6Writer by single inserts; update: M updates/s, one \
                  remove or insert, a reader running); vs base: median of per-round ratios \
                  over the table's first structure (Dir24Writer, Trie6Writer)\n";
        }
        if !self.vrf_memory.is_empty() {
            s += &format!(
                "\n{:<16} {:<6} {:<9} {:>9} {:>8} {:>14} {:>14} {:>14} {:>10}\n",
                "vrf-memory",
                "family",
                "mode",
                "tables",
                "prefixes",
                "RSS KiB/table",
                "resident KiB",
                "table KiB",
                "build ms"
            );
            for v in &self.vrf_memory {
                s += &format!(
                    "{:<16} {:<6} {:<9} {:>9} {:>8} {:>14.0} {:>14.0} {:>14.0} {:>10.2}\n",
                    v.structure,
                    v.family,
                    v.mode,
                    format!("{}/{}", v.tables, v.tables_asked),
                    v.prefixes,
                    v.rss_bytes_per_table as f64 / 1024.0,
                    v.resident_bytes_per_table as f64 / 1024.0,
                    v.table_bytes_per_table as f64 / 1024.0,
                    v.build_ms_per_table
                );
            }
            s += "vrf-memory: per table, all tables alive; RSS = process resident-set growth \
                  (/proc/self/statm), resident = the structure's resident_bytes(); build = \
                  thread CPU time of single inserts into an empty table\n";
        }
        for n in &self.notes {
            s += &format!("note: {n}\n");
        }
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
            ..LpmSettings::default()
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

    fn tiny(real: Option<std::path::PathBuf>) -> LpmSettings {
        LpmSettings {
            round: Duration::from_millis(2),
            rounds: 2,
            core: None,
            v4_sizes: vec![],
            v6_sizes: vec![],
            ring_v4: 1 << 12,
            ring_v6: 1 << 12,
            real,
            real_note: None,
            vrf_v4: vec![
                VrfSpec::parse("3:20").unwrap(),
                VrfSpec::parse("2:20:clustered").unwrap(),
            ],
            vrf_v6: vec![VrfSpec::parse("3:10").unwrap()],
            updates: 50,
        }
    }

    /// The real-table cases on a small file in the real table's format:
    /// every structure row, the baseline's ratios 1, vrf-memory rows with
    /// the cap, and the progress count.
    #[test]
    fn real_table_cases_report_every_row() {
        let dir = std::env::temp_dir().join(format!("xc-lpm-real-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bgpas.lpm");
        let mut text = String::new();
        for (p, nh) in gen::ipv4_table(3000, 1) {
            text += &format!("{p} {}\n", nh + 64_500);
        }
        for (p, nh) in gen::ipv6_table(800, 2) {
            text += &format!("{p} {}\n", nh + 64_500);
        }
        std::fs::write(&path, text).unwrap();
        let s = tiny(Some(path.clone()));
        let mut steps = 0;
        let r = run(&s, |_, _| steps += 1).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(steps, s.steps());
        assert!(r
            .real_table
            .as_deref()
            .unwrap()
            .contains("3000 IPv4, 800 IPv6"));
        let n4 = real::v4_entries().len();
        let n6 = real::v6_entries().len();
        assert_eq!(r.structures.len(), (n4 + n6) * 6);
        for (table, base) in [("bgp-v4", "Dir24Writer"), ("bgp-v6", "Trie6Writer")] {
            for mode in ["single", "batch32", "load", "update"] {
                let rows: Vec<_> = r
                    .structures
                    .iter()
                    .filter(|x| x.table == table && x.mode == mode)
                    .collect();
                assert!(!rows.is_empty(), "{table} {mode}");
                for x in rows {
                    assert_eq!(x.baseline, base);
                    assert!(x.mlookups_per_s > 0.0 && x.rounds == 2, "{x:?}");
                    assert!(x.mlookups_per_s_min <= x.mlookups_per_s);
                    assert!(x.mlookups_per_s <= x.mlookups_per_s_max);
                    if x.structure == base {
                        assert!((x.vs_baseline - 1.0).abs() < 1e-9, "{x:?}");
                    }
                }
            }
        }
        assert!(r
            .structures
            .iter()
            .any(|x| x.name == "Poptrie4Writer-batch32" && x.addrs == "inside"));
        assert_eq!(r.vrf_memory.len(), 2 * n4 + n6);
        for v in &r.vrf_memory {
            assert!(v.tables >= 1 && v.tables <= v.tables_asked, "{v:?}");
            assert!(
                v.table_bytes_per_table > 0 && v.build_ms_per_table > 0.0,
                "{v:?}"
            );
        }
        let text = r.table();
        assert!(text.contains("vrf-memory") && text.contains("Poptrie4Writer-load"));
        let json = serde_json::to_value(&r).unwrap();
        assert!(json["structures"][0].get("vs_baseline_min").is_some());
        assert!(json["vrf_memory"][0].get("rss_bytes_per_table").is_some());
    }

    /// The synthetic IPv6 structure set without updates: its rows but no
    /// update rows, and the progress count still right.
    #[test]
    fn zero_updates_give_no_update_rows() {
        let s = LpmSettings {
            v6_sizes: vec![300],
            updates: 0,
            ..tiny(None)
        };
        let mut steps = 0;
        let r = run(&s, |_, _| steps += 1).unwrap();
        assert_eq!(steps, s.steps());
        assert!(r.structures.iter().any(|x| x.name == "Trie6Writer-batch32"));
        assert!(r
            .structures
            .iter()
            .all(|x| x.mode != "update" && x.table == "v6-300"));
    }

    /// A real table that cannot be read skips its cases with a note, and
    /// the progress still reaches its total.
    #[test]
    fn unreadable_real_table_is_skipped_with_a_note() {
        let s = tiny(Some("/nonexistent/bgpas.lpm".into()));
        let mut steps = 0;
        let r = run(&s, |_, _| steps += 1).unwrap();
        assert_eq!(steps, s.steps());
        assert!(r.structures.is_empty() && r.vrf_memory.is_empty());
        assert!(
            r.notes.iter().any(|n| n.contains("skipped")),
            "{:?}",
            r.notes
        );
        assert!(r.table().contains("note: real table"));
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
