//! LPM lookups and loads: xconnect's tables beside `prefix-trie`,
//! `ip_network_table` and `treebitmap` on the same generated tables, and a
//! "random-read limit" ([`RandomReadLimit`], allocated as the tables' first
//! level is): independent reads of a 64 MiB array with the same batch-of-32
//! prefetch (what a DIR-24-8 lookup cannot beat), and pipelined over 1024
//! addresses as `lookup_batch` of a long slice is (the `_long` groups).
//!
//! Every lookup benchmark reports elements = lookups (32 per iteration).
//! Time is the benchmark thread's CPU time ([`ThreadCpuTime`]): on a box
//! shared with builds, wall time also counts the time the thread waits
//! for a core; CPU time gives the per-core figure.
//! Addresses come from a ring much larger than the caches (see [`RING`]).
//!
//! The `lpm_real_*` groups run on the real BGP table (`gen::bgp_table`)
//! and are skipped with a message when it is not found.
//!
//! Quick run: `cargo bench --bench lpm -- --warm-up-time 1
//! --measurement-time 3 'v4_lookup(_long)?/1M|limit'`; the real table
//! only: `cargo bench --bench lpm -- lpm_real`.

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ipnet::{Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;
use std::cell::OnceCell;
use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;
use xconnect::lpm::limit::RandomReadLimit;
use xconnect::lpm::{gen, poptrie, v4, v6, Lpm4Writer, Lpm6Writer, NextHop, Route, BATCH};

/// Addresses per input ring: 4 Mi IPv4 (16 MiB) and 1 Mi IPv6 (16 MiB),
/// read sequentially, so that the table lines they hit are not all
/// cache-resident (a 2^16 ring touches at most 4 MiB of tbl24 and fits
/// in L3).
const RING: usize = 1 << 22;
const RING6: usize = 1 << 20;

/// Use every answer of a batch as a worker does: decode it to its next hop
/// (no route as 0) and fold them, so the timed loop pays the decode.
fn decoded(out: &[Route]) -> u32 {
    out.iter().fold(0, |a, o| a ^ o.next_hop().unwrap_or(0))
}

/// Addresses per call of the `_long` groups: `lookup_batch` pipelines its
/// chunks of 32 over a longer slice.
const LONG: usize = 1024;

/// Criterion measurement: CPU time of the calling thread (user + system),
/// in nanoseconds.
struct ThreadCpuTime;

static WALL: WallTime = WallTime;

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }

    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns() - start
    }

    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }

    fn zero(&self) -> u64 {
        0
    }

    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        // Same unit (ns) as wall time: reuse its formatting.
        WALL.formatter()
    }
}

type Crit = Criterion<ThreadCpuTime>;

/// A generated table and the implementations built from it on demand.
struct Fixture4 {
    routes: Vec<(Ipv4Net, NextHop)>,
    ours: OnceCell<Lpm4Writer>,
    prefix_trie: OnceCell<PrefixMap<Ipv4Net, NextHop>>,
    ip_network_table: OnceCell<ip_network_table::IpNetworkTable<NextHop>>,
    treebitmap: OnceCell<treebitmap::IpLookupTable<Ipv4Addr, NextHop>>,
}

impl Fixture4 {
    fn new(n: usize) -> Self {
        Self {
            routes: gen::ipv4_table(n, 42),
            ours: OnceCell::new(),
            prefix_trie: OnceCell::new(),
            ip_network_table: OnceCell::new(),
            treebitmap: OnceCell::new(),
        }
    }

    fn ours(&self) -> &Lpm4Writer {
        self.ours.get_or_init(|| {
            let mut w = Lpm4Writer::new();
            for &(p, nh) in &self.routes {
                w.insert(p, nh).unwrap();
            }
            eprintln!(
                "xconnect v4 {} prefixes: table {:.1} MiB, total {:.1} MiB, {} tbl8 groups, \
                 tbl24 {} MiB in huge pages",
                self.routes.len(),
                w.table_bytes() as f64 / (1 << 20) as f64,
                w.memory_bytes() as f64 / (1 << 20) as f64,
                w.tbl8_groups_in_use(),
                w.huge_page_bytes() >> 20
            );
            w
        })
    }

    fn prefix_trie(&self) -> &PrefixMap<Ipv4Net, NextHop> {
        self.prefix_trie.get_or_init(|| {
            let mut m = PrefixMap::new();
            for &(p, nh) in &self.routes {
                m.insert(p, nh);
            }
            m
        })
    }

    fn ip_network_table(&self) -> &ip_network_table::IpNetworkTable<NextHop> {
        self.ip_network_table.get_or_init(|| {
            let mut t = ip_network_table::IpNetworkTable::new();
            for &(p, nh) in &self.routes {
                let n = ip_network::Ipv4Network::new(p.network(), p.prefix_len()).unwrap();
                t.insert(n, nh);
            }
            t
        })
    }

    fn treebitmap(&self) -> &treebitmap::IpLookupTable<Ipv4Addr, NextHop> {
        self.treebitmap.get_or_init(|| {
            let mut t = treebitmap::IpLookupTable::new();
            for &(p, nh) in &self.routes {
                t.insert(p.network(), u32::from(p.prefix_len()), nh);
            }
            t
        })
    }
}

/// Run `f` on the next 32 addresses of the ring per iteration.
fn ring_iter<A: Copy>(
    b: &mut criterion::Bencher<'_, ThreadCpuTime>,
    addrs: &[A],
    mut f: impl FnMut(&[A]),
) {
    let mut at = 0;
    b.iter(|| {
        f(&addrs[at..at + BATCH]);
        at = (at + BATCH) % addrs.len();
    });
}

/// Run `f` on the next `n` addresses of the ring per iteration (`n`
/// divides the ring length).
fn ring_iter_n<A: Copy>(
    b: &mut criterion::Bencher<'_, ThreadCpuTime>,
    addrs: &[A],
    n: usize,
    mut f: impl FnMut(&[A]),
) {
    let mut at = 0;
    b.iter(|| {
        f(&addrs[at..at + n]);
        at = (at + n) % addrs.len();
    });
}

fn v4_lookups(c: &mut Crit) {
    for (name, n) in [("4k", 4_000), ("100k", 100_000), ("1M", 1_000_000)] {
        let fx = Fixture4::new(n);
        let mut g = c.benchmark_group(format!("v4_lookup/{name}"));
        g.throughput(Throughput::Elements(BATCH as u64));
        let random = gen::random_v4(RING, 7);
        let inside = gen::inside_v4(&fx.routes, RING, 8);
        for (kind, addrs) in [("random", &random), ("inside", &inside)] {
            g.bench_function(BenchmarkId::new("xconnect_batch32", kind), |b| {
                let r = fx.ours().reader();
                let mut out = [Route::NONE; BATCH];
                ring_iter(b, addrs, |a| {
                    r.lookup_batch(a, &mut out);
                    black_box(decoded(&out));
                });
            });
            g.bench_function(BenchmarkId::new("xconnect_batch32_view_repin", kind), |b| {
                let r = fx.ours().reader();
                let mut view = r.pin();
                let mut out = [Route::NONE; BATCH];
                ring_iter(b, addrs, |a| {
                    view.repin();
                    view.lookup_batch(a, &mut out);
                    black_box(decoded(&out));
                });
            });
            g.bench_function(BenchmarkId::new("xconnect_single_pinned", kind), |b| {
                let r = fx.ours().reader();
                let view = r.pin();
                ring_iter(b, addrs, |a| {
                    for &x in a {
                        black_box(view.lookup(x));
                    }
                });
            });
            g.bench_function(BenchmarkId::new("xconnect_single_pin_each", kind), |b| {
                let r = fx.ours().reader();
                ring_iter(b, addrs, |a| {
                    for &x in a {
                        black_box(r.lookup_u32(x));
                    }
                });
            });
            g.bench_function(BenchmarkId::new("prefix_trie", kind), |b| {
                let t = fx.prefix_trie();
                ring_iter(b, addrs, |a| {
                    for &x in a {
                        let q = Ipv4Net::new(Ipv4Addr::from(x), 32).unwrap();
                        black_box(t.get_lpm(&q).map(|(_, nh)| *nh));
                    }
                });
            });
            g.bench_function(BenchmarkId::new("ip_network_table", kind), |b| {
                let t = fx.ip_network_table();
                ring_iter(b, addrs, |a| {
                    for &x in a {
                        black_box(t.longest_match_ipv4(Ipv4Addr::from(x)).map(|(_, nh)| *nh));
                    }
                });
            });
            g.bench_function(BenchmarkId::new("treebitmap", kind), |b| {
                let t = fx.treebitmap();
                ring_iter(b, addrs, |a| {
                    for &x in a {
                        black_box(t.longest_match(Ipv4Addr::from(x)).map(|(_, _, nh)| *nh));
                    }
                });
            });
        }
        g.finish();
        let mut g = c.benchmark_group(format!("v4_lookup_long/{name}"));
        g.throughput(Throughput::Elements(LONG as u64));
        for (kind, addrs) in [("random", &random), ("inside", &inside)] {
            g.bench_function(
                BenchmarkId::new("xconnect_batch1024_view_repin", kind),
                |b| {
                    let r = fx.ours().reader();
                    let mut view = r.pin();
                    let mut out = vec![Route::NONE; LONG];
                    ring_iter_n(b, addrs, LONG, |a| {
                        view.repin();
                        view.lookup_batch(a, &mut out);
                        black_box(decoded(&out));
                    });
                },
            );
        }
        g.finish();
    }
}

fn v4_limit(c: &mut Crit) {
    let addrs = gen::random_v4(RING, 7);
    let limit = RandomReadLimit::new();
    eprintln!(
        "random-read limit array: {} of {} MiB in huge pages",
        limit.huge_page_bytes() >> 20,
        limit.bytes() >> 20
    );
    let mut g = c.benchmark_group("v4_limit");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("random_read_64MiB_batch32", |b| {
        ring_iter(b, &addrs, |a| {
            black_box(limit.read_batch(a.try_into().unwrap()));
        });
    });
    g.finish();
    let mut g = c.benchmark_group("v4_limit_long");
    g.throughput(Throughput::Elements(LONG as u64));
    g.bench_function("random_read_64MiB_pipelined_1024", |b| {
        ring_iter_n(b, &addrs, LONG, |a| {
            black_box(limit.read_slice(a));
        });
    });
    g.finish();
}

fn v4_bulk_load(c: &mut Crit) {
    let mut g = c.benchmark_group("v4_bulk_load");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    let routes = gen::ipv4_table(1_000_000, 42);
    g.throughput(Throughput::Elements(routes.len() as u64));
    g.bench_function("xconnect_insert_1M", |b| {
        b.iter(|| {
            let mut w = Lpm4Writer::new();
            for &(p, nh) in &routes {
                w.insert(p, nh).unwrap();
            }
            w
        });
    });
    g.bench_function("xconnect_from_routes_1M", |b| {
        b.iter(|| Lpm4Writer::from_routes(routes.iter().copied(), 1 << 16).unwrap());
    });
    g.finish();
}

fn v6_lookups(c: &mut Crit) {
    let routes = gen::ipv6_table(200_000, 43);
    let ours = OnceCell::new();
    let ours = || {
        ours.get_or_init(|| {
            let mut w = Lpm6Writer::with_groups(1 << 20);
            for &(p, nh) in &routes {
                w.insert(p, nh).unwrap();
            }
            eprintln!(
                "xconnect v6 {} prefixes: table {:.1} MiB, total {:.1} MiB, {} groups, \
                 first level {} MiB in huge pages",
                routes.len(),
                w.table_bytes() as f64 / (1 << 20) as f64,
                w.memory_bytes() as f64 / (1 << 20) as f64,
                w.groups_in_use(),
                w.huge_page_bytes() >> 20
            );
            w
        })
    };
    let pt = OnceCell::new();
    let pt = || {
        pt.get_or_init(|| {
            let mut m: PrefixMap<Ipv6Net, NextHop> = PrefixMap::new();
            for &(p, nh) in &routes {
                m.insert(p, nh);
            }
            m
        })
    };
    let int = OnceCell::new();
    let int = || {
        int.get_or_init(|| {
            let mut t = ip_network_table::IpNetworkTable::new();
            for &(p, nh) in &routes {
                t.insert(
                    ip_network::Ipv6Network::new(p.network(), p.prefix_len()).unwrap(),
                    nh,
                );
            }
            t
        })
    };
    let tbm = OnceCell::new();
    let tbm = || {
        tbm.get_or_init(|| {
            let mut t = treebitmap::IpLookupTable::<Ipv6Addr, NextHop>::new();
            for &(p, nh) in &routes {
                t.insert(p.network(), u32::from(p.prefix_len()), nh);
            }
            t
        })
    };
    let mut g = c.benchmark_group("v6_lookup/200k");
    g.throughput(Throughput::Elements(BATCH as u64));
    let random = gen::random_v6(RING6, 9);
    let inside = gen::inside_v6(&routes, RING6, 10);
    for (kind, addrs) in [("random", &random), ("inside", &inside)] {
        g.bench_function(BenchmarkId::new("xconnect_batch32", kind), |b| {
            let r = ours().reader();
            let mut out = [Route::NONE; BATCH];
            ring_iter(b, addrs, |a| {
                r.lookup_batch(a, &mut out);
                black_box(decoded(&out));
            });
        });
        g.bench_function(BenchmarkId::new("xconnect_batch32_view_repin", kind), |b| {
            let r = ours().reader();
            let mut view = r.pin();
            let mut out = [Route::NONE; BATCH];
            ring_iter(b, addrs, |a| {
                view.repin();
                view.lookup_batch(a, &mut out);
                black_box(decoded(&out));
            });
        });
        g.bench_function(BenchmarkId::new("xconnect_single_pinned", kind), |b| {
            let r = ours().reader();
            let view = r.pin();
            ring_iter(b, addrs, |a| {
                for &x in a {
                    black_box(view.lookup(x));
                }
            });
        });
        g.bench_function(BenchmarkId::new("prefix_trie", kind), |b| {
            let t = pt();
            ring_iter(b, addrs, |a| {
                for &x in a {
                    let q = Ipv6Net::new(Ipv6Addr::from(x), 128).unwrap();
                    black_box(t.get_lpm(&q).map(|(_, nh)| *nh));
                }
            });
        });
        g.bench_function(BenchmarkId::new("ip_network_table", kind), |b| {
            let t = int();
            ring_iter(b, addrs, |a| {
                for &x in a {
                    black_box(t.longest_match_ipv6(Ipv6Addr::from(x)).map(|(_, nh)| *nh));
                }
            });
        });
        g.bench_function(BenchmarkId::new("treebitmap", kind), |b| {
            let t = tbm();
            ring_iter(b, addrs, |a| {
                for &x in a {
                    black_box(t.longest_match(Ipv6Addr::from(x)).map(|(_, _, nh)| *nh));
                }
            });
        });
    }
    g.finish();
    let mut g = c.benchmark_group("v6_lookup_long/200k");
    g.throughput(Throughput::Elements(LONG as u64));
    for (kind, addrs) in [("random", &random), ("inside", &inside)] {
        g.bench_function(
            BenchmarkId::new("xconnect_batch1024_view_repin", kind),
            |b| {
                let r = ours().reader();
                let mut view = r.pin();
                let mut out = vec![Route::NONE; LONG];
                ring_iter_n(b, addrs, LONG, |a| {
                    view.repin();
                    view.lookup_batch(a, &mut out);
                    black_box(decoded(&out));
                });
            },
        );
    }
    g.finish();
}

/// Batch-of-32 lookups of `$addrs()` on a pinned view of the reader
/// `$reader()` gives, repinned per batch (as a worker does), as `$name` in
/// group `$g`. A macro, not a function: the structures share method
/// names, not a trait. The closures build the fixture only when criterion
/// runs the case (not when a filter leaves it out).
macro_rules! batch32_view {
    ($g:expr, $name:expr, $reader:expr, $addrs:expr) => {{
        $g.bench_function($name, |b| {
            let r = $reader();
            let mut view = r.pin();
            let mut out = [Route::NONE; BATCH];
            ring_iter(b, $addrs(), |a| {
                view.repin();
                view.lookup_batch(a, &mut out);
                black_box(decoded(&out));
            });
        });
    }};
}

/// Addresses whose answers every structure must agree on before timing.
const CHECK: usize = 4096;

/// The real table's IPv4 structures and ring, answers checked equal.
struct Real4 {
    dir: v4::Dir24Writer,
    pop: poptrie::Poptrie4Writer,
    public: Lpm4Writer,
    random: Vec<u32>,
}

/// The real BGP table (`gen::bgp_table`: 1.07M IPv4, 176k IPv6 prefixes):
/// IPv4 batch-of-32 random lookups on today's DIR-24-8, the compressed
/// table and the public per-size `Lpm4Writer` (DIR-24-8 at this size);
/// IPv6 batch-of-32 lookups inside the table on today's trie (the public
/// `Lpm6Writer` too once it is another type). Skipped, with a message,
/// when the table is not found. Short (10 samples, 2 s each).
fn real_table(c: &mut Crit) {
    let Some(path) = gen::bgp_table_path() else {
        eprintln!(
            "lpm_real: skipped: no real BGP table (set $XCONNECT_BGP_TABLE, or `cargo fetch` a \
             project depending on iptrie so that its benches/bgpas.lpm is in cargo's registry)"
        );
        return;
    };
    if !path.is_file() {
        eprintln!("lpm_real: skipped: {} is not a file", path.display());
        return;
    }
    let table = OnceCell::new();
    let table = || {
        table.get_or_init(|| {
            let t = gen::bgp_table(&path)
                .unwrap_or_else(|e| panic!("lpm_real: {}: {e}", path.display()));
            eprintln!(
                "lpm_real: {}: {} IPv4, {} IPv6 prefixes",
                path.display(),
                t.0.len(),
                t.1.len()
            );
            t
        })
    };
    let real4 = OnceCell::new();
    let real4 = || {
        real4.get_or_init(|| {
            let v4r = &table().0;
            let fx = Real4 {
                dir: v4::Dir24Writer::from_routes(v4r.iter().copied(), 1 << 17).unwrap(),
                pop: poptrie::Poptrie4Writer::from_routes(v4r.iter().copied(), 0).unwrap(),
                public: Lpm4Writer::from_routes(v4r.iter().copied(), 1 << 17).unwrap(),
                random: gen::random_v4(RING, 7),
            };
            let (d, p, l) = (fx.dir.reader(), fx.pop.reader(), fx.public.reader());
            let inside = gen::inside_v4(v4r, CHECK, 8);
            for &a in fx.random[..CHECK].iter().chain(&inside) {
                let want = d.lookup_u32(a);
                assert_eq!(p.lookup_u32(a), want, "Poptrie4Writer {a:#x}");
                assert_eq!(l.lookup_u32(a), want, "Lpm4Writer {a:#x}");
            }
            fx
        })
    };
    let mut g = c.benchmark_group("lpm_real_v4/batch32_random");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(2));
    let random = || &real4().random[..];
    batch32_view!(g, "Dir24Writer", || real4().dir.reader(), random);
    batch32_view!(g, "Poptrie4Writer", || real4().pop.reader(), random);
    batch32_view!(g, "Lpm4Writer", || real4().public.reader(), random);
    g.finish();

    let real6 = OnceCell::new();
    let real6 = || {
        real6.get_or_init(|| {
            let v6r = &table().1;
            let mut trie = v6::Trie6Writer::with_groups(1 << 21);
            for &(p, nh) in v6r {
                trie.insert(p, nh).unwrap();
            }
            // Further structures: build here, check against the trie on
            // `inside`, and add a case below. (`Lpm6Writer` is the trie
            // itself today.)
            (trie, gen::inside_v6(v6r, RING6, 10))
        })
    };
    let mut g = c.benchmark_group("lpm_real_v6/batch32_inside");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(2));
    batch32_view!(g, "Trie6Writer", || real6().0.reader(), || &real6().1[..]);
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = v4_limit, v4_lookups, v6_lookups, v4_bulk_load, real_table
}
criterion_main!(benches);
