//! Stress test of the LPM publication scheme: three reader threads look up
//! without pause while the writer churns updates (single in-place updates
//! and atomic batches) of random prefixes that never cover a set of probe
//! addresses. The probes' own prefixes never change, so every answer for a
//! probe is known; any other address must answer `None` or a next hop that
//! some route could have had (never garbage).

use ipnet::{Ipv4Net, Ipv6Net};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use xconnect::lpm::gen::XorShift64;
use xconnect::lpm::{Lpm4Writer, Lpm6Writer, NextHop, Route, Update};

const READERS: usize = 3;
/// Next hops of churn routes are below this; probe routes above.
const CHURN_NH: u32 = 1000;

/// Probe `i` answers `expected[i]`, whatever the churn does.
struct Probes<A> {
    addrs: Vec<A>,
    expected: Vec<Option<NextHop>>,
}

fn v4_probes(rng: &mut XorShift64, w: &mut Lpm4Writer) -> Probes<u32> {
    let mut p = Probes {
        addrs: vec![],
        expected: vec![],
    };
    for i in 0..64u32 {
        // One probe per /16 of 10.0.0.0/10 and 100.64.0.0/10.
        let base = if i < 32 { 0x0a00_0000 } else { 0x6440_0000 } | ((i % 32) << 16);
        let addr = base | (rng.next_u32() & 0xffff);
        let wide = Ipv4Net::new(Ipv4Addr::from(base), 16).unwrap();
        w.insert(wide, CHURN_NH + i).unwrap();
        let mut expected = Some(CHURN_NH + i);
        if i % 2 == 0 {
            let len = 20 + (i % 13) as u8;
            let narrow = Ipv4Net::new(Ipv4Addr::from(addr), len).unwrap().trunc();
            w.insert(narrow, CHURN_NH + 100 + i).unwrap();
            expected = Some(CHURN_NH + 100 + i);
        }
        if i % 8 == 7 {
            // A probe with no route at all: its /16 goes again.
            w.remove(wide);
            expected = None;
        }
        p.addrs.push(addr);
        p.expected.push(expected);
    }
    p
}

fn v4_churn_prefix(rng: &mut XorShift64, probes: &[u32]) -> Ipv4Net {
    loop {
        let addr = if rng.below(2) == 0 {
            // Near a probe: inside its /16.
            let p = probes[rng.below(probes.len() as u32) as usize];
            (p & 0xffff_0000) | (rng.next_u32() & 0xffff)
        } else {
            rng.next_u32()
        };
        let len = if rng.below(2) == 0 {
            17 + rng.below(16)
        } else {
            8 + rng.below(25)
        } as u8;
        let net = Ipv4Net::new(Ipv4Addr::from(addr), len).unwrap().trunc();
        if !probes.iter().any(|&p| net.contains(&Ipv4Addr::from(p))) {
            return net;
        }
    }
}

fn run_readers<F>(
    stop: &Arc<AtomicBool>,
    lookups: &Arc<AtomicU64>,
    body: F,
) -> Vec<thread::JoinHandle<()>>
where
    F: Fn(&mut XorShift64) -> u64 + Send + Clone + 'static,
{
    (0..READERS)
        .map(|r| {
            let (stop, lookups, body) = (Arc::clone(stop), Arc::clone(lookups), body.clone());
            thread::spawn(move || {
                let mut rng = XorShift64::new(100 + r as u64);
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += body(&mut rng);
                }
                lookups.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect()
}

#[test]
fn v4_readers_see_exact_answers_under_100k_updates() {
    let mut rng = XorShift64::new(4);
    let mut w = Lpm4Writer::with_tbl8_groups(1 << 14);
    let probes = v4_probes(&mut rng, &mut w);
    // Two prefixes that only ever change together, in atomic batches: a
    // reader must always see them with the same next hop.
    let pair = [
        "192.0.2.0/24".parse::<Ipv4Net>().unwrap(),
        "198.51.100.0/24".parse().unwrap(),
    ];
    let pair_addrs = [0xc000_0207u32, 0xc633_64f0];
    for p in pair {
        w.insert(p, 0).unwrap();
    }
    let mut avoid = probes.addrs.clone();
    avoid.extend(pair_addrs);
    let reader = w.reader();
    let stop = Arc::new(AtomicBool::new(false));
    let lookups = Arc::new(AtomicU64::new(0));
    let (addrs, expected) = (probes.addrs.clone(), probes.expected.clone());
    let handles = run_readers(&stop, &lookups, move |rng| {
        let mut both = [Route::NONE; 2];
        reader.lookup_batch(&pair_addrs, &mut both);
        assert!(
            both[0].next_hop().is_some() && both[0] == both[1],
            "batch seen half applied: {both:?}"
        );
        let mut out = vec![Route::NONE; addrs.len()];
        reader.lookup_batch(&addrs, &mut out);
        assert_eq!(out, expected, "batch answers for probes");
        let view = reader.pin();
        for (a, e) in addrs.iter().zip(&expected) {
            assert_eq!(view.lookup(*a), *e, "probe {}", Ipv4Addr::from(*a));
        }
        drop(view);
        let random: Vec<u32> = (0..32).map(|_| rng.next_u32()).collect();
        let mut out = [Route::NONE; 32];
        reader.lookup_batch(&random, &mut out);
        for (a, nh) in random.iter().zip(out) {
            assert!(
                nh.next_hop().is_none_or(|nh| nh < CHURN_NH + 200),
                "garbage for {a:#x}: {nh:?}"
            );
        }
        (2 * expected.len() + 34) as u64
    });

    let mut live: Vec<Ipv4Net> = Vec::new();
    let mut updates = 0;
    while updates < 100_000 {
        if updates % 5_000 == 4_999 {
            // An atomic batch of 50, with the pair.
            let k = (updates / 5_000) as u32 + 1;
            let mut batch = vec![Update::Insert(pair[0], k), Update::Insert(pair[1], k)];
            for _ in 0..48 {
                if rng.below(2) == 0 && !live.is_empty() {
                    let i = rng.below(live.len() as u32) as usize;
                    batch.push(Update::Remove(live.swap_remove(i)));
                } else {
                    let p = v4_churn_prefix(&mut rng, &avoid);
                    live.push(p);
                    batch.push(Update::Insert(p, rng.below(CHURN_NH)));
                }
            }
            w.apply(&batch).unwrap();
            updates += batch.len();
            continue;
        }
        if rng.below(100) < 55 || live.is_empty() {
            let p = v4_churn_prefix(&mut rng, &avoid);
            if w.insert(p, rng.below(CHURN_NH)).unwrap().is_none() {
                live.push(p);
            }
        } else {
            let i = rng.below(live.len() as u32) as usize;
            w.remove(live.swap_remove(i));
        }
        updates += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().expect("reader saw a wrong answer");
    }
    assert!(lookups.load(Ordering::Relaxed) > 0);
    for (a, e) in probes.addrs.iter().zip(&probes.expected) {
        assert_eq!(w.lookup(Ipv4Addr::from(*a)), *e);
    }
    eprintln!(
        "v4: {} updates, {} live churn prefixes, {} tbl8 groups, {} reader lookups",
        updates,
        live.len(),
        w.tbl8_groups_in_use(),
        lookups.load(Ordering::Relaxed)
    );
}

fn v6_churn_prefix(rng: &mut XorShift64, probes: &[u128]) -> Ipv6Net {
    loop {
        let addr = if rng.below(2) == 0 {
            let p = probes[rng.below(probes.len() as u32) as usize];
            (p & (!0u128 << 80)) | (rng.next_u128() >> 48)
        } else {
            (0x2001_0db8u128 << 96) | (rng.next_u128() >> 32)
        };
        let len = 32 + rng.below(97) as u8;
        let net = Ipv6Net::new(Ipv6Addr::from(addr), len).unwrap().trunc();
        if !probes.iter().any(|&p| net.contains(&Ipv6Addr::from(p))) {
            return net;
        }
    }
}

#[test]
fn v6_readers_see_exact_answers_under_30k_updates() {
    let mut rng = XorShift64::new(6);
    let mut w = Lpm6Writer::with_groups(1 << 17);
    let mut addrs = Vec::new();
    let mut expected = Vec::new();
    for i in 0..32u32 {
        let base = (0x2001_0db8u128 << 96) | (u128::from(i) << 80);
        let addr = base | (rng.next_u128() >> 48);
        w.insert(
            Ipv6Net::new(Ipv6Addr::from(base), 48).unwrap(),
            CHURN_NH + i,
        )
        .unwrap();
        let mut e = Some(CHURN_NH + i);
        if i % 2 == 0 {
            let len = 56 + (i % 73) as u8;
            let narrow = Ipv6Net::new(Ipv6Addr::from(addr), len).unwrap().trunc();
            w.insert(narrow, CHURN_NH + 100 + i).unwrap();
            e = Some(CHURN_NH + 100 + i);
        }
        addrs.push(addr);
        expected.push(e);
    }
    let reader = w.reader();
    let stop = Arc::new(AtomicBool::new(false));
    let lookups = Arc::new(AtomicU64::new(0));
    let (probe_addrs, probe_expected) = (addrs.clone(), expected.clone());
    let handles = run_readers(&stop, &lookups, move |_| {
        let mut out = vec![Route::NONE; probe_addrs.len()];
        reader.lookup_batch(&probe_addrs, &mut out);
        assert_eq!(out, probe_expected, "batch answers for probes");
        for (a, e) in probe_addrs.iter().zip(&probe_expected) {
            assert_eq!(reader.lookup_u128(*a), *e, "probe {}", Ipv6Addr::from(*a));
        }
        (2 * probe_expected.len()) as u64
    });
    let mut live: Vec<Ipv6Net> = Vec::new();
    for n in 0..30_000u32 {
        if n % 10_000 == 9_999 {
            let batch: Vec<_> = live.drain(..live.len() / 2).map(Update::Remove).collect();
            w.apply(&batch).unwrap();
        } else if rng.below(100) < 55 || live.is_empty() {
            let p = v6_churn_prefix(&mut rng, &addrs);
            if w.insert(p, rng.below(CHURN_NH)).unwrap().is_none() {
                live.push(p);
            }
        } else {
            let i = rng.below(live.len() as u32) as usize;
            w.remove(live.swap_remove(i));
        }
    }
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().expect("reader saw a wrong answer");
    }
    assert!(lookups.load(Ordering::Relaxed) > 0);
    eprintln!(
        "v6: {} live churn prefixes, {} groups, {} reader lookups",
        live.len(),
        w.groups_in_use(),
        lookups.load(Ordering::Relaxed)
    );
}
