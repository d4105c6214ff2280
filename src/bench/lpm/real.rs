//! The structure cases of `xconnect bench --lpm`: xconnect's own LPM
//! structures side by side (IPv4: today's DIR-24-8 `v4::Dir24Writer`, the
//! public per-size `Lpm4Writer`, the compressed `poptrie::Poptrie4Writer`;
//! IPv6: today's trie `v6::Trie6Writer`, and the public `Lpm6Writer` when it
//! is another type), on the real BGP table (`gen::bgp_table`) and on the
//! synthetic IPv6 tables, plus the `vrf-memory` case: many small tables
//! sampled from the real one.
//!
//! # Contract
//! - Every structure is reached through [`LpmTable`] (build, insert,
//!   remove, sizes, a reader with pinned views). The lists
//!   [`v4_entries`] / [`v6_entries`] say which run; the first of each is
//!   the baseline the `vs_baseline` ratios are over (today's DIR-24-8,
//!   today's trie).
//! - A structure set ([`struct_set`]) on one table: each structure is bulk
//!   loaded once per round (`-load` rows: thread CPU time of the build, the
//!   drop of the previous round's table not counted), the last load kept;
//!   every structure's single and batch answers are checked equal to the
//!   baseline's on a sample of both rings before timing (a disagreement
//!   fails the run); then `-single` and `-batch32` on `random` and
//!   `inside` addresses, all structures interleaved in the same rounds
//!   (as the crate cases are); then `-update` rows: [`LpmSettings::updates`]
//!   prefixes of the table removed and re-inserted per round, in random
//!   order, with a reader thread looking up in batches meanwhile, writer
//!   thread CPU time per update (one remove or one insert).
//! - Ratios: `vs_baseline` is the median over rounds of the row's rate over
//!   the baseline's in the same round (rounds are interleaved, so both ran
//!   under the same load); min and max beside it.
//! - `vrf-memory` ([`vrf_memory`]): for each [`VrfSpec`] N:K, N tables of K
//!   prefixes sampled from the real table ([`sample`]: spread = K distinct
//!   prefixes uniformly over the table, clustered = a run of K consecutive
//!   prefixes), each built by single inserts into an empty table (as routes
//!   arrive from a peer), all kept alive; per table: the process's
//!   resident-set growth (`/proc/self/statm`, heap trimmed before), the
//!   structure's own `resident_bytes()`, and the build's thread CPU time.
//!   Structures that commit tens of MiB per table whatever its size
//!   (DIR-24-8, today's IPv6 trie) build at most [`COSTLY_CAP`] tables.
//!   The first table of each structure is checked against the oracle.

use super::{thread_cpu, trim_heap, xconnect_cases, LpmSettings, PinnedLpm, Timed, DIFF_SAMPLE};
use crate::lpm::gen::XorShift64;
use crate::lpm::oracle::{Oracle4, Oracle6};
use crate::lpm::{poptrie, v4, v6, Lpm4Writer, Lpm6Writer, LpmError, NextHop, Route, BATCH};
use ipnet::{Ipv4Net, Ipv6Net};
use serde::Serialize;
use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Most tables a costly structure (DIR-24-8, today's IPv6 trie: tens of
/// MiB per table) builds in `vrf-memory`.
pub const COSTLY_CAP: usize = 16;

/// A reader of one structure: lookups, and pinned views as a worker uses.
pub(super) trait LpmRead<A>: Clone + Send + 'static {
    /// The pinned view.
    type View<'r>: PinnedLpm<A>
    where
        Self: 'r;
    fn pin(&self) -> Self::View<'_>;
    fn lookup(&self, addr: A) -> Option<NextHop>;
    fn lookup_batch(&self, addrs: &[A], out: &mut [Route]);
}

/// One of xconnect's LPM structures, as the structure cases use it.
pub(super) trait LpmTable: Sized + 'static {
    /// Row name (the type's name).
    const NAME: &'static str;
    type Prefix: Copy + Send + 'static;
    type Addr: Copy + Send + Sync + 'static;
    type Reader: LpmRead<Self::Addr>;
    /// An empty table with room for about `n` prefixes.
    fn empty(n: usize) -> Self;
    /// A table of `routes` built the fastest way the structure has (its
    /// `from_routes`, else inserts into [`Self::empty`]).
    fn build(routes: &[(Self::Prefix, NextHop)]) -> Result<Self, LpmError> {
        let mut t = Self::empty(routes.len());
        for &(p, nh) in routes {
            t.insert(p, nh)?;
        }
        Ok(t)
    }
    fn insert(&mut self, p: Self::Prefix, nh: NextHop) -> Result<(), LpmError>;
    fn remove(&mut self, p: Self::Prefix);
    /// Bytes of the published table committed in memory.
    fn resident_bytes(&self) -> usize;
    /// Bytes of the lookup structure readers see.
    fn table_bytes(&self) -> usize;
    fn reader(&self) -> Self::Reader;
}

macro_rules! pinned_view {
    ($view:ty, $addr:ty) => {
        impl PinnedLpm<$addr> for $view {
            fn repin(&mut self) {
                <$view>::repin(self)
            }
            #[inline(always)]
            fn lookup(&self, addr: $addr) -> Option<NextHop> {
                <$view>::lookup(self, addr)
            }
            #[inline(always)]
            fn lookup_batch(&self, addrs: &[$addr], out: &mut [Route]) {
                <$view>::lookup_batch(self, addrs, out)
            }
        }
    };
}

macro_rules! reader {
    ($reader:ty, $view:ident, $addr:ty, $lookup:ident) => {
        impl LpmRead<$addr> for $reader {
            type View<'r> = $view<'r>;
            fn pin(&self) -> $view<'_> {
                <$reader>::pin(self)
            }
            #[inline(always)]
            fn lookup(&self, addr: $addr) -> Option<NextHop> {
                <$reader>::$lookup(self, addr)
            }
            #[inline(always)]
            fn lookup_batch(&self, addrs: &[$addr], out: &mut [Route]) {
                <$reader>::lookup_batch(self, addrs, out)
            }
        }
    };
}

use crate::lpm::ipv4::Lpm4View;
use crate::lpm::poptrie::{Poptrie4View, Poptrie6View};
use crate::lpm::v4::Dir24View;
use crate::lpm::v6::Trie6View;

pinned_view!(Dir24View<'_>, u32);
pinned_view!(Poptrie4View<'_>, u32);
reader!(v4::Dir24Reader, Dir24View, u32, lookup_u32);
reader!(poptrie::Poptrie4Reader, Poptrie4View, u32, lookup_u32);
reader!(crate::lpm::Lpm4Reader, Lpm4View, u32, lookup_u32);
reader!(v6::Trie6Reader, Trie6View, u128, lookup_u128);
pinned_view!(Poptrie6View<'_>, u128);
pinned_view!(Trie6View<'_>, u128);
reader!(poptrie::Poptrie6Reader, Poptrie6View, u128, lookup_u128);
reader!(crate::lpm::Lpm6Reader, Lpm6View, u128, lookup_u128);
use crate::lpm::Lpm6View;

/// tbl8 groups of a DIR-24-8 table built for the bench (as `lpm_real`).
const TBL8_GROUPS: u32 = 1 << 17;

/// [`LpmTable`] for a writer of prefixes `$net` and addresses `$addr`
/// whose constructor for a table of `n` prefixes is `$empty(groups(n))`
/// and whose bulk load is `from_routes(routes, groups(len))`.
macro_rules! table {
    ($ty:ty, $reader:ty, $name:literal, $net:ty, $addr:ty, $empty:ident, $groups:expr) => {
        impl LpmTable for $ty {
            const NAME: &'static str = $name;
            type Prefix = $net;
            type Addr = $addr;
            type Reader = $reader;
            fn empty(n: usize) -> Self {
                <$ty>::$empty($groups(n))
            }
            fn build(routes: &[($net, NextHop)]) -> Result<Self, LpmError> {
                <$ty>::from_routes(routes.iter().copied(), $groups(routes.len()))
            }
            fn insert(&mut self, p: $net, nh: NextHop) -> Result<(), LpmError> {
                <$ty>::insert(self, p, nh).map(drop)
            }
            fn remove(&mut self, p: $net) {
                <$ty>::remove(self, p);
            }
            fn resident_bytes(&self) -> usize {
                <$ty>::resident_bytes(self)
            }
            fn table_bytes(&self) -> usize {
                <$ty>::table_bytes(self)
            }
            fn reader(&self) -> $reader {
                <$ty>::reader(self)
            }
        }
    };
}

/// tbl8 groups of a DIR-24-8 table built for the bench, whatever its size.
fn tbl8_groups(_n: usize) -> u32 {
    TBL8_GROUPS
}

table!(
    v4::Dir24Writer,
    v4::Dir24Reader,
    "Dir24Writer",
    Ipv4Net,
    u32,
    with_tbl8_groups,
    tbl8_groups
);
table!(
    Lpm4Writer,
    crate::lpm::Lpm4Reader,
    "Lpm4Writer",
    Ipv4Net,
    u32,
    with_tbl8_groups,
    tbl8_groups
);
table!(
    poptrie::Poptrie4Writer,
    poptrie::Poptrie4Reader,
    "Poptrie4Writer",
    Ipv4Net,
    u32,
    with_tbl8_groups,
    tbl8_groups
);

/// Groups of today's IPv6 trie for a table of `n` prefixes (room to spare:
/// the pool is committed only where used).
fn trie6_groups(n: usize) -> u32 {
    (n.saturating_mul(8))
        .next_power_of_two()
        .clamp(1 << 12, 1 << 24) as u32
}

impl LpmTable for v6::Trie6Writer {
    const NAME: &'static str = "Trie6Writer";
    type Prefix = Ipv6Net;
    type Addr = u128;
    type Reader = v6::Trie6Reader;
    fn empty(n: usize) -> Self {
        v6::Trie6Writer::with_groups(trie6_groups(n))
    }
    fn insert(&mut self, p: Ipv6Net, nh: NextHop) -> Result<(), LpmError> {
        v6::Trie6Writer::insert(self, p, nh).map(drop)
    }
    fn remove(&mut self, p: Ipv6Net) {
        v6::Trie6Writer::remove(self, p);
    }
    fn resident_bytes(&self) -> usize {
        v6::Trie6Writer::resident_bytes(self)
    }
    fn table_bytes(&self) -> usize {
        v6::Trie6Writer::table_bytes(self)
    }
    fn reader(&self) -> v6::Trie6Reader {
        v6::Trie6Writer::reader(self)
    }
}

table!(
    Lpm6Writer,
    crate::lpm::Lpm6Reader,
    "Lpm6Writer",
    Ipv6Net,
    u128,
    with_groups,
    trie6_groups
);
table!(
    poptrie::Poptrie6Writer,
    poptrie::Poptrie6Reader,
    "Poptrie6Writer",
    Ipv6Net,
    u128,
    with_groups,
    trie6_groups
);

/// A built structure with its reader, type-erased so that the lists of
/// structures are plain vectors.
pub(super) trait Live<P, A>: Send {
    fn name(&self) -> &'static str;
    fn lookup(&self, addr: A) -> Option<NextHop>;
    fn lookup_batch(&self, addrs: &[A], out: &mut [Route]);
    /// `<name>-single` and `<name>-batch32` on `ring`.
    fn cases<'a>(&'a self, kind: &'static str, ring: &'a [A]) -> Vec<Timed<'a>>;
    fn insert(&mut self, p: P, nh: NextHop) -> Result<(), LpmError>;
    fn remove(&mut self, p: P);
    fn resident_bytes(&self) -> usize;
    fn table_bytes(&self) -> usize;
    /// A thread looking up `ring` in batches of 32 until `stop`.
    fn spawn_reader(
        &self,
        ring: Arc<Vec<A>>,
        stop: Arc<AtomicBool>,
    ) -> std::thread::JoinHandle<u64>;
}

struct Built<T: LpmTable> {
    w: T,
    r: T::Reader,
}

impl<T: LpmTable + Send> Live<T::Prefix, T::Addr> for Built<T> {
    fn name(&self) -> &'static str {
        T::NAME
    }
    fn lookup(&self, addr: T::Addr) -> Option<NextHop> {
        self.r.lookup(addr)
    }
    fn lookup_batch(&self, addrs: &[T::Addr], out: &mut [Route]) {
        self.r.lookup_batch(addrs, out)
    }
    fn cases<'a>(&'a self, kind: &'static str, ring: &'a [T::Addr]) -> Vec<Timed<'a>> {
        let r = &self.r;
        let mem = self.w.table_bytes();
        let [single, batch, _long] = xconnect_cases(T::NAME, move || r.pin(), kind, mem, ring);
        vec![single, batch]
    }
    fn insert(&mut self, p: T::Prefix, nh: NextHop) -> Result<(), LpmError> {
        self.w.insert(p, nh)
    }
    fn remove(&mut self, p: T::Prefix) {
        self.w.remove(p)
    }
    fn resident_bytes(&self) -> usize {
        self.w.resident_bytes()
    }
    fn table_bytes(&self) -> usize {
        self.w.table_bytes()
    }
    fn spawn_reader(
        &self,
        ring: Arc<Vec<T::Addr>>,
        stop: Arc<AtomicBool>,
    ) -> std::thread::JoinHandle<u64> {
        let r = self.r.clone();
        std::thread::spawn(move || {
            let mut out = [Route::NONE; BATCH];
            let mut x = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for c in ring.chunks_exact(BATCH) {
                    r.lookup_batch(c, &mut out);
                    x = x.wrapping_add(super::fold(&out));
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
            }
            x
        })
    }
}

/// A structure of a list: how to build it.
pub(super) struct Entry<P, A> {
    /// Row name.
    pub name: &'static str,
    /// Tens of MiB per table whatever its size: `vrf-memory` builds at most
    /// [`COSTLY_CAP`] of it.
    pub costly: bool,
    /// The bulk load ([`LpmTable::build`]).
    pub build: BuildFn<P, A>,
    /// An empty table with room for about `n` prefixes.
    pub empty: fn(usize) -> Box<dyn Live<P, A>>,
}

/// [`Entry::build`].
pub(super) type BuildFn<P, A> = fn(&[(P, NextHop)]) -> Result<Box<dyn Live<P, A>>, LpmError>;

fn build_live<T: LpmTable + Send>(
    routes: &[(T::Prefix, NextHop)],
) -> Result<Box<dyn Live<T::Prefix, T::Addr>>, LpmError> {
    let w = T::build(routes)?;
    let r = w.reader();
    Ok(Box::new(Built { w, r }))
}

fn empty_live<T: LpmTable + Send>(n: usize) -> Box<dyn Live<T::Prefix, T::Addr>> {
    let w = T::empty(n);
    let r = w.reader();
    Box::new(Built { w, r })
}

fn entry<T: LpmTable + Send>(costly: bool) -> Entry<T::Prefix, T::Addr> {
    Entry {
        name: T::NAME,
        costly,
        build: build_live::<T>,
        empty: empty_live::<T>,
    }
}

/// The IPv4 structures compared; the first is the baseline.
pub(super) fn v4_entries() -> Vec<Entry<Ipv4Net, u32>> {
    vec![
        entry::<v4::Dir24Writer>(true),
        entry::<Lpm4Writer>(false),
        entry::<poptrie::Poptrie4Writer>(false),
    ]
}

/// The IPv6 structures compared; the first (today's trie) is the baseline.
pub(super) fn v6_entries() -> Vec<Entry<Ipv6Net, u128>> {
    vec![
        entry::<v6::Trie6Writer>(true),
        entry::<Lpm6Writer>(false),
        entry::<poptrie::Poptrie6Writer>(false),
    ]
}

/// One row of a structure set.
#[derive(Clone, Debug, Serialize)]
pub struct LpmStructRow {
    /// `<structure>-<mode>`, e.g. `Poptrie4Writer-batch32`.
    pub name: String,
    /// The structure (a type of `lpm`).
    pub structure: String,
    /// `single`, `batch32`, `load` (bulk load) or `update` (one remove or
    /// one insert of a table prefix, a reader running).
    pub mode: String,
    /// Table label: `bgp-v4`, `bgp-v6` (the real table) or `v6-200k`.
    pub table: String,
    /// `random`, `inside`, or `-` for load and update rows.
    pub addrs: String,
    /// Prefixes in the table.
    pub prefixes: usize,
    /// Rounds measured.
    pub rounds: usize,
    /// Median over rounds: million lookups (load: prefixes loaded;
    /// update: updates) per second of thread CPU time.
    pub mlookups_per_s: f64,
    /// Slowest round.
    pub mlookups_per_s_min: f64,
    /// Fastest round.
    pub mlookups_per_s_max: f64,
    /// Nanoseconds per lookup (load: per prefix; update: per update) of
    /// the median round.
    pub ns_per_lookup: f64,
    /// The structure the ratios are over (today's DIR-24-8 or trie).
    pub baseline: String,
    /// Median over rounds of this row's rate over the baseline's in the
    /// same round, same table, addresses and mode.
    pub vs_baseline: f64,
    /// Smallest per-round ratio.
    pub vs_baseline_min: f64,
    /// Largest per-round ratio.
    pub vs_baseline_max: f64,
    /// The structure's `table_bytes()` (what readers see).
    pub table_bytes: usize,
    /// The structure's `resident_bytes()` (committed now).
    pub resident_bytes: usize,
}

/// Median, min and max of `v` (not empty).
fn stats(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    (s[s.len() / 2], s[0], s[s.len() - 1])
}

/// Per-round rates (million per second) of `samples` of (count, time).
fn rates(samples: &[(u64, Duration)]) -> Vec<f64> {
    samples
        .iter()
        .map(|(n, d)| *n as f64 / d.as_secs_f64().max(1e-12) / 1e6)
        .collect()
}

/// Rows for one (structure, mode, addrs) group: `rates[i]` per structure,
/// the first the baseline.
#[allow(clippy::too_many_arguments)]
fn rows_of(
    table: &str,
    prefixes: usize,
    mode: &str,
    addrs: &str,
    names: &[&'static str],
    per_round: &[Vec<f64>],
    sizes: &[(usize, usize)],
) -> Vec<LpmStructRow> {
    let base = &per_round[0];
    names
        .iter()
        .zip(per_round)
        .zip(sizes)
        .map(|((name, r), &(table_bytes, resident_bytes))| {
            let (med, min, max) = stats(r);
            let ratios: Vec<f64> = r.iter().zip(base).map(|(a, b)| a / b).collect();
            let (rm, rmin, rmax) = stats(&ratios);
            LpmStructRow {
                name: format!("{name}-{mode}"),
                structure: name.to_string(),
                mode: mode.to_string(),
                table: table.to_string(),
                addrs: addrs.to_string(),
                prefixes,
                rounds: r.len(),
                mlookups_per_s: med,
                mlookups_per_s_min: min,
                mlookups_per_s_max: max,
                ns_per_lookup: 1e3 / med.max(1e-9),
                baseline: names[0].to_string(),
                vs_baseline: rm,
                vs_baseline_min: rmin,
                vs_baseline_max: rmax,
                table_bytes,
                resident_bytes,
            }
        })
        .collect()
}

/// Steps (progress calls) of one structure set of `n` structures.
pub(super) fn set_steps(n: usize, rounds: usize) -> usize {
    n * (2 * 2 + 2) * rounds
}

/// Tables, rings and update picks of one structure set.
pub(super) struct SetInput<'a, P, A> {
    pub table: &'a str,
    pub routes: &'a [(P, NextHop)],
    pub random: &'a [A],
    pub inside: &'a [A],
}

/// Run one structure set (see the module contract).
pub(super) fn struct_set<P: Copy + std::fmt::Debug, A: Copy + Send + Sync + std::fmt::Debug>(
    input: &SetInput<'_, P, A>,
    entries: &[Entry<P, A>],
    s: &LpmSettings,
    progress: &mut dyn FnMut(),
) -> anyhow::Result<Vec<LpmStructRow>> {
    let table = input.table;
    let n = input.routes.len();
    let names: Vec<&'static str> = entries.iter().map(|e| e.name).collect();
    // Bulk loads, interleaved per round; the last one kept.
    let mut built: Vec<Option<Box<dyn Live<P, A>>>> = entries.iter().map(|_| None).collect();
    let mut load: Vec<Vec<f64>> = vec![Vec::new(); entries.len()];
    for _ in 0..s.rounds {
        for (i, e) in entries.iter().enumerate() {
            built[i] = None;
            trim_heap();
            let t = thread_cpu();
            let b = (e.build)(input.routes)
                .map_err(|err| anyhow::anyhow!("{table}: {} load: {err}", e.name))?;
            let el = thread_cpu() - t;
            load[i].push(n as f64 / el.as_secs_f64().max(1e-12) / 1e6);
            built[i] = Some(b);
            progress();
        }
    }
    let built: Vec<Box<dyn Live<P, A>>> = built.into_iter().map(|b| b.expect("built")).collect();
    let sizes: Vec<(usize, usize)> = built
        .iter()
        .map(|b| (b.table_bytes(), b.resident_bytes()))
        .collect();

    // Same answers, single and batch, before timing.
    let mut out = vec![Route::NONE; DIFF_SAMPLE];
    for ring in [input.random, input.inside] {
        let sample = &ring[..DIFF_SAMPLE.min(ring.len())];
        let want: Vec<Option<NextHop>> = sample.iter().map(|&a| built[0].lookup(a)).collect();
        for b in &built {
            b.lookup_batch(sample, &mut out[..sample.len()]);
            for ((&a, w), o) in sample.iter().zip(&want).zip(&out) {
                let got = b.lookup(a);
                if got != *w || o.next_hop() != *w {
                    anyhow::bail!(
                        "{table}: {} answers {got:?} (batch {o:?}) for {a:?}, {} {w:?}",
                        b.name(),
                        names[0]
                    );
                }
            }
        }
    }

    let mut cases = Vec::new();
    for (kind, ring) in [("random", input.random), ("inside", input.inside)] {
        for b in &built {
            cases.extend(b.cases(kind, ring));
        }
    }
    super::time_rounds(&mut cases, s, progress);
    let mut rows = rows_of(table, n, "load", "-", &names, &load, &sizes);
    // cases: per ring, per structure, [single, batch32].
    let k = entries.len();
    for (ri, kind) in ["random", "inside"].into_iter().enumerate() {
        for (mi, mode) in ["single", "batch32"].into_iter().enumerate() {
            let per: Vec<Vec<f64>> = (0..k)
                .map(|si| rates(&cases[ri * k * 2 + si * 2 + mi].samples))
                .collect();
            rows.extend(rows_of(table, n, mode, kind, &names, &per, &sizes));
        }
    }
    drop(cases);

    // Single updates under a reader.
    let mut rng = XorShift64::new(3);
    let picks: Vec<(P, NextHop)> = (0..s.updates.min(n))
        .map(|_| input.routes[rng.below(n as u32) as usize])
        .collect();
    let ring = Arc::new(input.random[..input.random.len().min(1 << 16)].to_vec());
    let mut built = built;
    let mut upd: Vec<Vec<f64>> = vec![Vec::new(); k];
    if picks.is_empty() {
        // `--lpm-updates 0`: no update rows.
        for _ in 0..k * s.rounds {
            progress();
        }
        return Ok(rows);
    }
    for _ in 0..s.rounds {
        for (i, b) in built.iter_mut().enumerate() {
            let stop = Arc::new(AtomicBool::new(false));
            let h = b.spawn_reader(Arc::clone(&ring), Arc::clone(&stop));
            let t = thread_cpu();
            for &(p, nh) in &picks {
                b.remove(p);
                b.insert(p, nh)
                    .map_err(|err| anyhow::anyhow!("{table}: {} update: {err}", b.name()))?;
            }
            let el = thread_cpu() - t;
            stop.store(true, Ordering::Relaxed);
            let _ = h.join();
            upd[i].push(2.0 * picks.len() as f64 / el.as_secs_f64().max(1e-12) / 1e6);
            progress();
        }
    }
    rows.extend(rows_of(table, n, "update", "-", &names, &upd, &sizes));
    Ok(rows)
}

/// One `vrf-memory` request: `tables` tables of `prefixes` prefixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct VrfSpec {
    /// Tables built (costly structures: at most [`COSTLY_CAP`]).
    pub tables: usize,
    /// Prefixes sampled per table.
    pub prefixes: usize,
    /// A run of consecutive prefixes of the table (else spread over it).
    pub clustered: bool,
}

impl VrfSpec {
    /// Parse `N:K[:spread|clustered]`.
    pub fn parse(s: &str) -> Result<VrfSpec, String> {
        let parts: Vec<&str> = s.trim().split(':').collect();
        let num = |x: &str, what: &str| {
            x.trim()
                .parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| {
                    format!("{x:?} is not a count of {what} in {s:?} (N:K[:spread|clustered])")
                })
        };
        let clustered = match parts.get(2).map(|m| m.trim()) {
            None | Some("spread") => false,
            Some("clustered") => true,
            Some(m) => return Err(format!("{m:?} is neither spread nor clustered in {s:?}")),
        };
        if !(2..=3).contains(&parts.len()) {
            return Err(format!("{s:?} is not N:K[:spread|clustered]"));
        }
        Ok(VrfSpec {
            tables: num(parts[0], "tables")?,
            prefixes: num(parts[1], "prefixes")?,
            clustered,
        })
    }

    /// `spread` or `clustered`.
    pub fn mode(&self) -> &'static str {
        if self.clustered {
            "clustered"
        } else {
            "spread"
        }
    }
}

/// The prefixes of VRF table `index` of `spec`, drawn from `routes`
/// (deterministic in `seed` and `index`): spread, `spec.prefixes` distinct
/// routes chosen uniformly (all of them if the table is smaller), in table
/// order; clustered, a run of that many consecutive routes at a random
/// start.
pub fn sample<T: Copy>(routes: &[T], spec: &VrfSpec, seed: u64, index: usize) -> Vec<T> {
    let n = routes.len();
    let k = spec.prefixes.min(n);
    let mut rng = XorShift64::new(seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    if spec.clustered {
        let start = if n > k {
            rng.below((n - k + 1) as u32) as usize
        } else {
            0
        };
        return routes[start..start + k].to_vec();
    }
    let mut picked = HashSet::with_capacity(k);
    let mut idx = Vec::with_capacity(k);
    if k * 2 > n {
        // Dense: a partial shuffle of all indices.
        let mut all: Vec<usize> = (0..n).collect();
        for i in 0..k {
            let j = i + rng.below((n - i) as u32) as usize;
            all.swap(i, j);
        }
        idx.extend_from_slice(&all[..k]);
    } else {
        while idx.len() < k {
            let i = rng.below(n as u32) as usize;
            if picked.insert(i) {
                idx.push(i);
            }
        }
    }
    idx.sort_unstable();
    idx.into_iter().map(|i| routes[i]).collect()
}

/// One row of `vrf-memory`.
#[derive(Clone, Debug, Serialize)]
pub struct VrfRow {
    /// The structure.
    pub structure: String,
    /// `v4` or `v6`.
    pub family: String,
    /// `spread` or `clustered`.
    pub mode: String,
    /// Tables asked for.
    pub tables_asked: usize,
    /// Tables built and kept alive (costly structures: capped).
    pub tables: usize,
    /// Prefixes per table (distinct, sampled).
    pub prefixes: usize,
    /// Process resident-set growth over all tables, per table.
    pub rss_bytes_per_table: usize,
    /// Mean of the tables' own `resident_bytes()`.
    pub resident_bytes_per_table: usize,
    /// Mean of the tables' `table_bytes()`.
    pub table_bytes_per_table: usize,
    /// Thread CPU time to build one table by single inserts, mean, ms.
    pub build_ms_per_table: f64,
}

/// Pages resident from the text of `/proc/self/statm` (its second field).
pub fn parse_statm(text: &str) -> Option<usize> {
    text.split_whitespace().nth(1)?.parse().ok()
}

/// Resident set size of the process in bytes (0 where unknown).
pub fn rss_bytes() -> usize {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let page = usize::try_from(page).unwrap_or(4096);
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| parse_statm(&s))
        .map_or(0, |pages| pages * page)
}

/// Steps of `vrf-memory` for `n` structures and `specs`.
pub(super) fn vrf_steps(n: usize, specs: &[VrfSpec]) -> usize {
    n * specs.len()
}

/// An oracle answering for the first table of a `vrf-memory` spec.
pub(super) trait Oracle<P, A> {
    fn new_from(routes: &[(P, NextHop)]) -> Self;
    fn answer(&self, a: A) -> Option<NextHop>;
    fn addrs(routes: &[(P, NextHop)], n: usize) -> Vec<A>;
}

impl Oracle<Ipv4Net, u32> for Oracle4 {
    fn new_from(routes: &[(Ipv4Net, NextHop)]) -> Self {
        let mut o = Oracle4::new();
        for &(p, nh) in routes {
            o.insert(p, nh);
        }
        o
    }
    fn answer(&self, a: u32) -> Option<NextHop> {
        self.lookup(Ipv4Addr::from(a))
    }
    fn addrs(routes: &[(Ipv4Net, NextHop)], n: usize) -> Vec<u32> {
        let mut v = crate::lpm::gen::random_v4(n, 21);
        v.extend(crate::lpm::gen::inside_v4(routes, n, 22));
        v
    }
}

impl Oracle<Ipv6Net, u128> for Oracle6 {
    fn new_from(routes: &[(Ipv6Net, NextHop)]) -> Self {
        let mut o = Oracle6::new();
        for &(p, nh) in routes {
            o.insert(p, nh);
        }
        o
    }
    fn answer(&self, a: u128) -> Option<NextHop> {
        self.lookup(Ipv6Addr::from(a))
    }
    fn addrs(routes: &[(Ipv6Net, NextHop)], n: usize) -> Vec<u128> {
        let mut v = crate::lpm::gen::random_v6(n, 21);
        v.extend(crate::lpm::gen::inside_v6(routes, n, 22));
        v
    }
}

/// `vrf-memory` of one family (see the module contract).
pub(super) fn vrf_memory<P: Copy, A: Copy + std::fmt::Debug, O: Oracle<P, A>>(
    family: &str,
    routes: &[(P, NextHop)],
    specs: &[VrfSpec],
    entries: &[Entry<P, A>],
    progress: &mut dyn FnMut(),
) -> anyhow::Result<Vec<VrfRow>> {
    let mut rows = Vec::new();
    for (si, spec) in specs.iter().enumerate() {
        let samples: Vec<Vec<(P, NextHop)>> = (0..spec.tables)
            .map(|i| sample(routes, spec, 11 + si as u64, i))
            .collect();
        let oracle = O::new_from(&samples[0]);
        let check = O::addrs(&samples[0], 2048);
        for e in entries {
            let m = if e.costly {
                spec.tables.min(COSTLY_CAP)
            } else {
                spec.tables
            };
            trim_heap();
            let before = rss_bytes();
            let mut cpu = Duration::ZERO;
            let mut keep: Vec<Box<dyn Live<P, A>>> = Vec::with_capacity(m);
            for smp in &samples[..m] {
                let t = thread_cpu();
                let mut w = (e.empty)(smp.len());
                for &(p, nh) in smp {
                    w.insert(p, nh)
                        .map_err(|err| anyhow::anyhow!("vrf-memory {}: {err}", e.name))?;
                }
                cpu += thread_cpu() - t;
                keep.push(w);
            }
            let grown = rss_bytes().saturating_sub(before);
            let resident: usize = keep.iter().map(|w| w.resident_bytes()).sum();
            let table: usize = keep.iter().map(|w| w.table_bytes()).sum();
            for &a in &check {
                let (got, want) = (keep[0].lookup(a), oracle.answer(a));
                if got != want {
                    anyhow::bail!(
                        "vrf-memory {family}: {} answers {got:?} for {a:?}, the oracle {want:?}",
                        e.name
                    );
                }
            }
            drop(keep);
            trim_heap();
            rows.push(VrfRow {
                structure: e.name.to_string(),
                family: family.to_string(),
                mode: spec.mode().to_string(),
                tables_asked: spec.tables,
                tables: m,
                prefixes: samples[0].len(),
                rss_bytes_per_table: grown / m,
                resident_bytes_per_table: resident / m,
                table_bytes_per_table: table / m,
                build_ms_per_table: cpu.as_secs_f64() * 1e3 / m as f64,
            });
            progress();
        }
    }
    Ok(rows)
}

#[cfg(all(test, not(miri)))]
mod tests {
    use super::*;

    #[test]
    fn vrf_specs_parse() {
        assert_eq!(
            VrfSpec::parse("200:4000").unwrap(),
            VrfSpec {
                tables: 200,
                prefixes: 4000,
                clustered: false
            }
        );
        assert!(VrfSpec::parse("1000:200:clustered").unwrap().clustered);
        assert!(!VrfSpec::parse("3:2:spread").unwrap().clustered);
        for bad in ["", "5", "0:10", "5:0", "a:3", "5:5:lumpy", "1:2:spread:x"] {
            assert!(VrfSpec::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn samples_are_deterministic_spread_and_clustered() {
        let routes: Vec<u32> = (0..10_000).collect();
        let spread = VrfSpec {
            tables: 4,
            prefixes: 300,
            clustered: false,
        };
        let a = sample(&routes, &spread, 1, 0);
        assert_eq!(a, sample(&routes, &spread, 1, 0));
        assert_ne!(a, sample(&routes, &spread, 1, 1));
        assert_eq!(a.len(), 300);
        assert!(
            a.windows(2).all(|w| w[0] < w[1]),
            "distinct, in table order"
        );
        // Spread: over the whole table, not one run.
        assert!(a[299] - a[0] > 5000, "{}..{}", a[0], a[299]);
        let clustered = VrfSpec {
            clustered: true,
            ..spread
        };
        let c = sample(&routes, &clustered, 1, 2);
        assert_eq!(c, sample(&routes, &clustered, 1, 2));
        assert_eq!(c.len(), 300);
        assert!(c.windows(2).all(|w| w[1] == w[0] + 1), "one run");
        // Larger than the table: all of it, once.
        let all = VrfSpec {
            prefixes: 50_000,
            ..spread
        };
        assert_eq!(sample(&routes, &all, 1, 0), routes);
        let most = VrfSpec {
            prefixes: 9_000,
            ..spread
        };
        let m = sample(&routes, &most, 1, 0);
        assert_eq!(m.len(), 9_000);
        assert!(m.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn statm_parses() {
        assert_eq!(parse_statm("12345 678 90 1 0 200 0\n"), Some(678));
        assert_eq!(parse_statm("12345"), None);
        assert_eq!(parse_statm(""), None);
        assert_eq!(parse_statm("1 x 2"), None);
        assert!(rss_bytes() > 0);
    }

    /// Every listed structure answers as the oracle does, single and batch,
    /// and after the updates the set does.
    #[test]
    fn structures_answer_as_the_oracle() {
        let routes = crate::lpm::gen::ipv4_table(3000, 5);
        let o = Oracle4::new_from(&routes);
        let addrs = Oracle4::addrs(&routes, 1024);
        for e in v4_entries() {
            let mut t = (e.build)(&routes).unwrap();
            let mut out = vec![Route::NONE; addrs.len()];
            t.lookup_batch(&addrs, &mut out);
            for (&a, r) in addrs.iter().zip(&out) {
                assert_eq!(t.lookup(a), o.answer(a), "{} {a:#x}", e.name);
                assert_eq!(r.next_hop(), o.answer(a), "{} batch {a:#x}", e.name);
            }
            for &(p, nh) in &routes[..100] {
                t.remove(p);
                t.insert(p, nh).unwrap();
            }
            assert!(
                addrs.iter().all(|&a| t.lookup(a) == o.answer(a)),
                "{}",
                e.name
            );
        }
        let routes = crate::lpm::gen::ipv6_table(1000, 6);
        let o = Oracle6::new_from(&routes);
        let addrs = Oracle6::addrs(&routes, 1024);
        for e in v6_entries() {
            let t = (e.build)(&routes).unwrap();
            let mut out = vec![Route::NONE; addrs.len()];
            t.lookup_batch(&addrs, &mut out);
            for (&a, r) in addrs.iter().zip(&out) {
                assert_eq!(t.lookup(a), o.answer(a), "{} {a:#x}", e.name);
                assert_eq!(r.next_hop(), o.answer(a), "{} batch {a:#x}", e.name);
            }
        }
    }
}
