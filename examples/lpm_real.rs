//! The compressed IPv4 table (`lpm::poptrie`) against today's DIR-24-8
//! (`lpm::v4`) on the real BGP table (`lpm::gen::bgp_table`), in one
//! process, interleaved, on the core the caller pins it to
//! (`taskset -c 1`).
//!
//! - `lpm_real lookup [ROUNDS]`: batch-of-32 and single lookups of random
//!   and inside-table addresses on the 1.07M-prefix table; per round both
//!   structures run the same addresses back to back (thread CPU time);
//!   prints the median rate, min–max, and the median of per-round ratios.
//!   `lpm_real lookup ROUNDS K`: the same on K prefixes sampled spread
//!   over the table (a VRF).
//! - `lpm_real load [ROUNDS]`: bulk load (`from_routes`) of the table.
//! - `lpm_real update [N]`: N single updates (remove then re-insert of a
//!   prefix of the table, in random order) on the full table, with one
//!   reader thread looking up in batches meanwhile; mean time per update.
//! - `lpm_real vrf N K [spread|clustered]`: N tables of K prefixes sampled
//!   from the real table (spread: uniformly over it; clustered: a run of
//!   K consecutive prefixes), process resident-set growth per table and
//!   build time per table (DIR-24-8: at most 16 tables).
//! - `lpm_real wrap [ROUNDS]`: the public `Lpm4Writer` (which holds a
//!   DIR-24-8 for this table, behind a second root) against a bare
//!   `Dir24Writer` on the 1.07M table, random batch-of-32 lookups: the
//!   cost of choosing the structure per table.
//! - `lpm_real diff [DIR]`: runs `invariants::lpm_diff` (the body of the
//!   `lpm_diff` fuzz target) over every input of the corpus
//!   (`fuzz/corpus/lpm_diff`), decoded as libFuzzer hands them to the
//!   target, and prints inputs per second: for all inputs, for those
//!   touching only IPv4, and for those touching IPv6. Without the
//!   fuzzer's instrumentation, so it is an upper bound of the target's rate.

use ipnet::{Ipv4Net, Ipv6Net};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use xconnect::lpm::gen::{self, XorShift64};
use xconnect::lpm::{poptrie, v4, v6, NextHop, Route, BATCH};

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec; the clock id is a constant.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn rss() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = s
        .split_whitespace()
        .nth(1)
        .and_then(|w| w.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn table() -> Vec<(Ipv4Net, NextHop)> {
    let path = gen::bgp_table_path().expect("no bgpas.lpm: cargo fetch a project using iptrie");
    eprintln!("table: {}", path.display());
    gen::bgp_table(&path).expect("read table").0
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn summary(name: &str, rates: &mut [f64]) -> f64 {
    let m = median(rates);
    println!(
        "{name:<40} median {m:8.2}  min {:8.2}  max {:8.2}",
        rates[0],
        rates[rates.len() - 1]
    );
    m
}

fn lookup(rounds: usize, k: usize) {
    let mut routes = table();
    if k > 0 {
        // A VRF: k prefixes sampled spread over the table.
        let mut rng = XorShift64::new(5);
        routes = (0..k)
            .map(|_| routes[rng.below(routes.len() as u32) as usize])
            .collect();
    }
    println!("{} IPv4 prefixes", routes.len());
    let dir = v4::Dir24Writer::from_routes(routes.iter().copied(), 1 << 17).unwrap();
    let pop = poptrie::Poptrie4Writer::from_routes(routes.iter().copied(), 0).unwrap();
    println!(
        "table bytes: dir24-8 {} (resident {}), poptrie {}",
        dir.table_bytes(),
        dir.resident_bytes(),
        pop.table_bytes()
    );
    let n = 1 << 22;
    let random = gen::random_v4(n, 7);
    let inside = gen::inside_v4(&routes, n, 8);
    let (dr, pr) = (dir.reader(), pop.reader());
    // Same answers first.
    for ring in [&random, &inside] {
        for &a in ring.iter().take(200_000) {
            assert_eq!(dr.lookup_u32(a), pr.lookup_u32(a), "{a:#x}");
        }
    }
    for (kind, ring) in [("random", &random), ("inside", &inside)] {
        for batch in [true, false] {
            let mut d = Vec::new();
            let mut p = Vec::new();
            let mut ratio = Vec::new();
            for _ in 0..rounds {
                let t = thread_cpu();
                let mut x = 0u64;
                {
                    let mut view = dr.pin();
                    let mut out = [Route::NONE; BATCH];
                    for c in ring.chunks_exact(BATCH) {
                        view.repin();
                        if batch {
                            view.lookup_batch(c, &mut out);
                            x = x.wrapping_add(u64::from(out[7].next_hop().unwrap_or(0)));
                        } else {
                            for &a in c {
                                x = x.wrapping_add(u64::from(view.lookup(a).unwrap_or(0)));
                            }
                        }
                    }
                }
                let td = (thread_cpu() - t).as_secs_f64();
                let t = thread_cpu();
                {
                    let mut view = pr.pin();
                    let mut out = [Route::NONE; BATCH];
                    for c in ring.chunks_exact(BATCH) {
                        view.repin();
                        if batch {
                            view.lookup_batch(c, &mut out);
                            x = x.wrapping_add(u64::from(out[7].next_hop().unwrap_or(0)));
                        } else {
                            for &a in c {
                                x = x.wrapping_add(u64::from(view.lookup(a).unwrap_or(0)));
                            }
                        }
                    }
                }
                let tp = (thread_cpu() - t).as_secs_f64();
                black_box(x);
                d.push(n as f64 / td / 1e6);
                p.push(n as f64 / tp / 1e6);
                ratio.push(td / tp);
            }
            let mode = if batch { "batch32" } else { "single" };
            summary(&format!("{kind} {mode} dir24-8 Mlookups/s"), &mut d);
            summary(&format!("{kind} {mode} poptrie Mlookups/s"), &mut p);
            summary(&format!("{kind} {mode} poptrie/dir24-8"), &mut ratio);
        }
    }
}

fn load(rounds: usize) {
    let routes = table();
    let n = routes.len() as f64;
    let (mut d, mut p) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        black_box(v4::Dir24Writer::from_routes(routes.iter().copied(), 1 << 17).unwrap());
        d.push(n / t.elapsed().as_secs_f64() / 1e6);
        let t = Instant::now();
        black_box(poptrie::Poptrie4Writer::from_routes(routes.iter().copied(), 0).unwrap());
        p.push(n / t.elapsed().as_secs_f64() / 1e6);
    }
    summary("bulk load dir24-8 Mprefixes/s (incl. drop)", &mut d);
    summary("bulk load poptrie Mprefixes/s (incl. drop)", &mut p);
}

fn update(count: usize) {
    let routes = table();
    let mut rng = XorShift64::new(3);
    let picks: Vec<(Ipv4Net, NextHop)> = (0..count)
        .map(|_| routes[rng.below(routes.len() as u32) as usize])
        .collect();
    let ring = gen::random_v4(1 << 20, 9);
    let mut dir = v4::Dir24Writer::from_routes(routes.iter().copied(), 1 << 17).unwrap();
    let mut pop = poptrie::Poptrie4Writer::from_routes(routes.iter().copied(), 0).unwrap();
    for round in 0..3 {
        for which in ["dir24-8", "poptrie"] {
            let stop = Arc::new(AtomicBool::new(false));
            let reader: Box<dyn Fn() -> u64 + Send> = if which == "dir24-8" {
                let r = dir.reader();
                let ring = ring.clone();
                let stop = Arc::clone(&stop);
                Box::new(move || {
                    let mut out = [Route::NONE; BATCH];
                    let mut x = 0;
                    while !stop.load(Ordering::Relaxed) {
                        for c in ring.chunks_exact(BATCH) {
                            r.lookup_batch(c, &mut out);
                            x += u64::from(out[0].next_hop().unwrap_or(0));
                        }
                    }
                    x
                })
            } else {
                let r = pop.reader();
                let ring = ring.clone();
                let stop = Arc::clone(&stop);
                Box::new(move || {
                    let mut out = [Route::NONE; BATCH];
                    let mut x = 0;
                    while !stop.load(Ordering::Relaxed) {
                        for c in ring.chunks_exact(BATCH) {
                            r.lookup_batch(c, &mut out);
                            x += u64::from(out[0].next_hop().unwrap_or(0));
                        }
                    }
                    x
                })
            };
            let h = std::thread::spawn(reader);
            let t = thread_cpu();
            for &(p, nh) in &picks {
                if which == "dir24-8" {
                    dir.remove(p);
                    dir.insert(p, nh).unwrap();
                } else {
                    pop.remove(p);
                    pop.insert(p, nh).unwrap();
                }
            }
            let el = thread_cpu() - t;
            stop.store(true, Ordering::Relaxed);
            black_box(h.join().unwrap());
            println!(
                "round {round} {which}: {:.2} us per single update (writer CPU time, reader running)",
                el.as_secs_f64() * 1e6 / (2 * count) as f64
            );
        }
    }
}

fn vrf(n: usize, k: usize, clustered: bool) {
    let routes = table();
    let mut rng = XorShift64::new(11);
    let sample = |rng: &mut XorShift64| -> Vec<(Ipv4Net, NextHop)> {
        if clustered {
            let start = rng.below((routes.len() - k) as u32) as usize;
            routes[start..start + k].to_vec()
        } else {
            (0..k)
                .map(|_| routes[rng.below(routes.len() as u32) as usize])
                .collect()
        }
    };
    let samples: Vec<_> = (0..n).map(|_| sample(&mut rng)).collect();
    let mode = if clustered { "clustered" } else { "spread" };
    for which in ["poptrie", "dir24-8"] {
        let m = if which == "dir24-8" { n.min(16) } else { n };
        let before = rss();
        let t = Instant::now();
        let mut keep_p = Vec::new();
        let mut keep_d = Vec::new();
        for s in &samples[..m] {
            if which == "poptrie" {
                let mut w = poptrie::Poptrie4Writer::new();
                for &(p, nh) in s {
                    w.insert(p, nh).unwrap();
                }
                keep_p.push(w);
            } else {
                let mut w = v4::Dir24Writer::new();
                for &(p, nh) in s {
                    w.insert(p, nh).unwrap();
                }
                keep_d.push(w);
            }
        }
        let el = t.elapsed();
        let grown = rss().saturating_sub(before);
        let table: usize = keep_p.iter().map(|w| w.table_bytes()).sum::<usize>()
            + keep_d.iter().map(|w| w.resident_bytes()).sum::<usize>();
        println!(
            "vrf-memory {which} {mode}: {m} tables of {k}: resident growth {:.1} MiB total, {:.0} KiB per table (table alone {:.0} KiB); build {:.2} ms per table (single inserts)",
            grown as f64 / (1 << 20) as f64,
            grown as f64 / m as f64 / 1024.0,
            table as f64 / m as f64 / 1024.0,
            el.as_secs_f64() * 1e3 / m as f64
        );
        drop(keep_p);
        drop(keep_d);
    }
}

/// The real IPv6 table (or, with `synthetic`, `gen::ipv6_table(200_000)`).
fn table6(synthetic: bool) -> Vec<(Ipv6Net, NextHop)> {
    if synthetic {
        return gen::ipv6_table(200_000, 42);
    }
    let path = gen::bgp_table_path().expect("no bgpas.lpm: cargo fetch a project using iptrie");
    gen::bgp_table(&path).expect("read table").1
}

/// Time `f` over `ring` in batches of 32 (or singly), thread CPU time.
fn time6(
    ring: &[u128],
    batch: bool,
    mut one: impl FnMut(&[u128], &mut [Route; BATCH], bool) -> u64,
) -> f64 {
    let t = thread_cpu();
    let mut x = 0u64;
    let mut out = [Route::NONE; BATCH];
    for c in ring.chunks_exact(BATCH) {
        x = x.wrapping_add(one(c, &mut out, batch));
    }
    black_box(x);
    ring.len() as f64 / (thread_cpu() - t).as_secs_f64() / 1e6
}

/// IPv6: today's trie (`v6::Trie6Writer`) against the compressed table
/// (`poptrie::Poptrie6Writer`), random and inside-table addresses, batch
/// of 32 and single, interleaved rounds. `k > 0`: k prefixes sampled
/// spread over the table.
fn lookup6(rounds: usize, k: usize, synthetic: bool) {
    let mut routes = table6(synthetic);
    if k > 0 {
        let mut rng = XorShift64::new(5);
        routes = (0..k)
            .map(|_| routes[rng.below(routes.len() as u32) as usize])
            .collect();
    }
    println!(
        "{} IPv6 prefixes{}",
        routes.len(),
        if synthetic { " (synthetic)" } else { "" }
    );
    let mut trie = v6::Trie6Writer::with_groups(1 << 20);
    for &(p, nh) in &routes {
        trie.insert(p, nh).unwrap();
    }
    let t = Instant::now();
    let pop = poptrie::Poptrie6Writer::from_routes(routes.iter().copied(), 0).unwrap();
    println!(
        "poptrie build {:.0} ms; table bytes: trie {} (resident {}), poptrie {}",
        t.elapsed().as_secs_f64() * 1e3,
        trie.table_bytes(),
        trie.resident_bytes(),
        pop.table_bytes()
    );
    let n = 1 << 22;
    let random = gen::random_v6(n, 7);
    let inside = gen::inside_v6(&routes, n, 8);
    let (tr, pr) = (trie.reader(), pop.reader());
    for ring in [&random, &inside] {
        for &a in ring.iter().take(200_000) {
            assert_eq!(tr.lookup_u128(a), pr.lookup_u128(a), "{a:#x}");
        }
    }
    for (kind, ring) in [("random", &random), ("inside", &inside)] {
        for batch in [true, false] {
            let (mut d, mut p, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..rounds {
                let mut tv = tr.pin();
                let a = time6(ring, batch, |c, out, batch| {
                    tv.repin();
                    if batch {
                        tv.lookup_batch(c, out);
                        u64::from(out[7].next_hop().unwrap_or(0))
                    } else {
                        c.iter()
                            .map(|&a| u64::from(tv.lookup(a).unwrap_or(0)))
                            .sum()
                    }
                });
                drop(tv);
                let mut pv = pr.pin();
                let b = time6(ring, batch, |c, out, batch| {
                    pv.repin();
                    if batch {
                        pv.lookup_batch(c, out);
                        u64::from(out[7].next_hop().unwrap_or(0))
                    } else {
                        c.iter()
                            .map(|&a| u64::from(pv.lookup(a).unwrap_or(0)))
                            .sum()
                    }
                });
                d.push(a);
                p.push(b);
                ratio.push(b / a);
            }
            let mode = if batch { "batch32" } else { "single" };
            summary(&format!("v6 {kind} {mode} trie Mlookups/s"), &mut d);
            summary(&format!("v6 {kind} {mode} poptrie Mlookups/s"), &mut p);
            summary(&format!("v6 {kind} {mode} poptrie/trie"), &mut ratio);
        }
    }
}

/// IPv6 VRFs: n tables of k prefixes sampled spread over the real table.
fn vrf6(n: usize, k: usize) {
    let routes = table6(false);
    let mut rng = XorShift64::new(11);
    let samples: Vec<Vec<(Ipv6Net, NextHop)>> = (0..n)
        .map(|_| {
            (0..k)
                .map(|_| routes[rng.below(routes.len() as u32) as usize])
                .collect()
        })
        .collect();
    for which in ["poptrie", "trie"] {
        let m = if which == "trie" { n.min(16) } else { n };
        let before = rss();
        let t = Instant::now();
        let (mut keep_p, mut keep_t, mut table) = (Vec::new(), Vec::new(), 0);
        for s in &samples[..m] {
            if which == "poptrie" {
                let mut w = poptrie::Poptrie6Writer::new();
                for &(p, nh) in s {
                    w.insert(p, nh).unwrap();
                }
                table += w.table_bytes();
                keep_p.push(w);
            } else {
                let mut w = v6::Trie6Writer::with_groups(1 << 12);
                for &(p, nh) in s {
                    w.insert(p, nh).unwrap();
                }
                table += w.resident_bytes();
                keep_t.push(w);
            }
        }
        let el = t.elapsed();
        let grown = rss().saturating_sub(before);
        println!(
            "vrf-memory v6 {which} spread: {m} tables of {k}: resident growth {:.1} MiB total, {:.0} KiB per table (table alone {:.0} KiB); build {:.2} ms per table",
            grown as f64 / (1 << 20) as f64,
            grown as f64 / m as f64 / 1024.0,
            table as f64 / m as f64 / 1024.0,
            el.as_secs_f64() * 1e3 / m as f64
        );
    }
}

fn diff(dir: &str) {
    use arbitrary::{Arbitrary, Unstructured};
    use xconnect::invariants::{lpm_diff, LpmOp};
    let mut inputs: Vec<Vec<LpmOp>> = Vec::new();
    for e in std::fs::read_dir(dir).expect("corpus directory").flatten() {
        let data = std::fs::read(e.path()).unwrap_or_default();
        if let Ok(ops) = Vec::<LpmOp>::arbitrary_take_rest(Unstructured::new(&data)) {
            inputs.push(ops);
        }
    }
    let v6 = |ops: &[LpmOp]| {
        ops.iter().any(|o| {
            matches!(
                o,
                LpmOp::Insert6(..)
                    | LpmOp::Remove6(_)
                    | LpmOp::Replace6(..)
                    | LpmOp::RemoveTouched6(_)
                    | LpmOp::Batch6(_)
                    | LpmOp::Lookup6(_)
            )
        })
    };
    for (name, set) in [
        ("all", inputs.iter().collect::<Vec<_>>()),
        ("ipv4 only", inputs.iter().filter(|o| !v6(o)).collect()),
        ("with ipv6", inputs.iter().filter(|o| v6(o)).collect()),
    ] {
        let t = Instant::now();
        let mut n = 0;
        while t.elapsed() < Duration::from_secs(3) {
            for ops in &set {
                lpm_diff(ops);
                n += 1;
            }
        }
        println!(
            "lpm_diff {name}: {} inputs, {:.0} inputs/s",
            set.len(),
            n as f64 / t.elapsed().as_secs_f64()
        );
    }
}

fn wrap(rounds: usize) {
    let routes = table();
    let dir = v4::Dir24Writer::from_routes(routes.iter().copied(), 1 << 17).unwrap();
    let pubw = xconnect::lpm::Lpm4Writer::from_routes(routes.iter().copied(), 1 << 17).unwrap();
    assert!(!pubw.is_compressed());
    let n = 1 << 22;
    let random = gen::random_v4(n, 7);
    let (dr, pr) = (dir.reader(), pubw.reader());
    let (mut d, mut p, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let mut out = [Route::NONE; BATCH];
        let mut x = 0u64;
        let t = thread_cpu();
        {
            let mut view = dr.pin();
            for c in random.chunks_exact(BATCH) {
                view.repin();
                view.lookup_batch(c, &mut out);
                x = x.wrapping_add(u64::from(out[7].next_hop().unwrap_or(0)));
            }
        }
        let td = (thread_cpu() - t).as_secs_f64();
        let t = thread_cpu();
        {
            let mut view = pr.pin();
            for c in random.chunks_exact(BATCH) {
                view.repin();
                view.lookup_batch(c, &mut out);
                x = x.wrapping_add(u64::from(out[7].next_hop().unwrap_or(0)));
            }
        }
        let tp = (thread_cpu() - t).as_secs_f64();
        black_box(x);
        d.push(n as f64 / td / 1e6);
        p.push(n as f64 / tp / 1e6);
        ratio.push(td / tp);
    }
    summary("random batch32 Dir24Writer Mlookups/s", &mut d);
    summary("random batch32 Lpm4Writer Mlookups/s", &mut p);
    summary("random batch32 Lpm4Writer/Dir24Writer", &mut ratio);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let num = |i: usize, d: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    match args.get(1).map(String::as_str) {
        Some("lookup") => lookup(num(2, 7), num(3, 0)),
        Some("load") => load(num(2, 5)),
        Some("update") => update(num(2, 20_000)),
        Some("vrf") => vrf(
            num(2, 1000),
            num(3, 4000),
            args.get(4).map(String::as_str) == Some("clustered"),
        ),
        Some("wrap") => wrap(num(2, 7)),
        Some("lookup6") => lookup6(
            num(2, 7),
            num(3, 0),
            args.get(3).map(String::as_str) == Some("synthetic"),
        ),
        Some("vrf6") => vrf6(num(2, 1000), num(3, 200)),
        Some("diff") => diff(args.get(2).map_or("fuzz/corpus/lpm_diff", String::as_str)),
        _ => eprintln!("usage: lpm_real lookup|load|update|vrf N K [spread|clustered]|diff [DIR]"),
    }
}
