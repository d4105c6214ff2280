//! The `fpm-ingest` benchmark: routes streamed as zebra sends them over
//! FPM, decoded and written into an `l3` peering's table, beside the same
//! routes' `bulk_load` into the same kind of table in the same run, and
//! the `l3-route-v4` forwarding rate of a reader while a writer ingests.
//!
//! Contract:
//! - The stream is built in memory before anything is timed: one FPM frame
//!   per route (as `dplane_fpm_nl` sends an install), `RTM_NEWROUTE` with
//!   `NLM_F_REPLACE`, every route ECMP over both trunk peers
//!   (`RTA_MULTIPATH`), IPv4 and IPv6 tables from [`crate::lpm::gen`].
//! - `fpm-ingest-v4`/`-v6` time [`Ingest::push`] over the whole stream in
//!   64 KiB reads into a fresh bench plan's table (workers' readers exist,
//!   so every write is the in-place path the runtime takes);
//!   `bulk-load-v4`/`-v6` time `RouteTable::bulk_load` of the same routes
//!   into another fresh plan's table. Each row is the median of the rounds;
//!   `vs_bulk_load` is the ingest rate over the bulk-load rate.
//! - `l3-route-v4-idle` / `l3-route-v4-ingest`: the `l3-route-v4` case on
//!   the pinned core, without and then with a writer thread that keeps
//!   re-ingesting a stream that flips the table's routes between ECMP and
//!   one link (in place, while the reader forwards).

use super::{cases, prepare, run_batches, Case, Sizes, Work};
use crate::control::decode::encode::{push_route, route_message};
use crate::control::decode::NLM_F_REPLACE;
use crate::control::fpm::{frame, MAX_FRAME};
use crate::control::{Ingest, RouteSync};
use crate::frame::Batch;
use crate::lpm::gen as tables;
use crate::plan::PeeringKind;
use ipnet::IpNet;
use netlink_packet_route::route::RouteType;
use serde::Serialize;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to run.
#[derive(Clone, Debug)]
pub struct FpmSettings {
    /// IPv4 routes in the stream.
    pub v4: usize,
    /// IPv6 routes in the stream.
    pub v6: usize,
    /// Rounds (median reported).
    pub rounds: usize,
    /// Core of the timed thread (the reader; the writer runs unpinned).
    pub core: Option<usize>,
    /// Time per reader measurement.
    pub reader_round: Duration,
}

/// One row.
#[derive(Clone, Debug, Serialize)]
pub struct FpmRow {
    /// Row name.
    pub name: String,
    /// Routes per run (rate rows), or packets (reader rows).
    pub count: u64,
    /// Median seconds of a run.
    pub seconds: f64,
    /// Routes per second (ingest and bulk-load rows).
    pub routes_per_s: Option<f64>,
    /// Packets per second, millions (reader rows).
    pub mpps: Option<f64>,
    /// Ingest rate over the bulk-load rate of the same routes.
    pub vs_bulk_load: Option<f64>,
    /// Reader rate while ingesting over its idle rate.
    pub vs_idle: Option<f64>,
}

/// The benchmark's result.
#[derive(Clone, Debug, Serialize)]
pub struct FpmReport {
    /// The rows.
    pub rows: Vec<FpmRow>,
    /// The pinned core.
    pub core: Option<usize>,
    /// Rounds.
    pub rounds: usize,
    /// Bytes of the IPv4 and IPv6 streams.
    pub stream_bytes: (usize, usize),
}

const V4_HOPS: [&str; 2] = ["192.0.2.2", "192.0.2.6"];
const V6_HOPS: [&str; 2] = ["2001:db8:0:1::2", "2001:db8:0:1::6"];

fn hops(v6: bool, both: bool) -> Vec<IpAddr> {
    let h = if v6 { V6_HOPS } else { V4_HOPS };
    let n = if both { 2 } else { 1 };
    h[..n].iter().filter_map(|s| s.parse().ok()).collect()
}

/// One FPM frame per route, as zebra sends installs.
pub fn stream(prefixes: &[IpNet], ecmp: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefixes.len() * 80);
    let mut msg = Vec::with_capacity(128);
    for p in prefixes {
        msg.clear();
        let h = hops(!p.addr().is_ipv4(), ecmp);
        push_route(
            &mut msg,
            true,
            NLM_F_REPLACE,
            route_message(*p, RouteType::Unicast, &h, None),
        );
        if let Some(f) = frame(&msg) {
            out.extend_from_slice(&f);
        }
    }
    out
}

fn prefixes(v4: usize, v6: usize) -> (Vec<IpNet>, Vec<IpNet>) {
    (
        tables::ipv4_table(v4, 0x5eed_0004)
            .into_iter()
            .map(|(n, _)| IpNet::V4(n))
            .collect(),
        tables::ipv6_table(v6, 0x5eed_0006)
            .into_iter()
            .map(|(n, _)| IpNet::V6(n))
            .collect(),
    )
}

/// A fresh bench plan's table (readers exist) with its limits lifted.
fn fresh_table(
    v4: usize,
    v6: usize,
) -> anyhow::Result<(
    Arc<crate::plan::Plan>,
    Arc<std::sync::Mutex<crate::plan::RouteTable>>,
)> {
    let plan = Arc::new(crate::config::compile(&cases::l3_config()));
    let table = plan
        .route_table("bench", PeeringKind::Private)
        .ok_or_else(|| anyhow::anyhow!("bench plan has no l3 peering"))?;
    table
        .lock()
        .map_err(|_| anyhow::anyhow!("route table lock poisoned"))?
        .set_limits(v4.max(1), v6.max(1));
    Ok((plan, table))
}

/// Ingest `bytes` in 64 KiB reads into a fresh table; seconds and routes
/// installed.
fn ingest_once(bytes: &[u8], v4: usize, v6: usize) -> anyhow::Result<(f64, u64)> {
    let (_plan, table) = fresh_table(v4, v6)?;
    let mut sync = RouteSync::new("bench/private", table, Duration::from_secs(30));
    let mut ing = Ingest::new();
    let mut lines = 0usize;
    let t = Instant::now();
    for chunk in bytes.chunks(MAX_FRAME + 1) {
        ing.push(chunk, &mut sync, &mut |_| lines += 1)
            .map_err(|e| anyhow::anyhow!("fpm-ingest stream: {e}"))?;
    }
    let el = t.elapsed().as_secs_f64();
    let st = sync.stats();
    if st.rejected > 0 || lines > 0 {
        anyhow::bail!(
            "fpm-ingest: {} routes rejected ({lines} log lines)",
            st.rejected
        );
    }
    Ok((el, st.installed))
}

fn bulk_once(routes: &[(IpNet, IpAddr)], v4: usize, v6: usize) -> anyhow::Result<f64> {
    let (_plan, table) = fresh_table(v4, v6)?;
    let mut t = table
        .lock()
        .map_err(|_| anyhow::anyhow!("route table lock poisoned"))?;
    let start = Instant::now();
    t.bulk_load(routes)?;
    Ok(start.elapsed().as_secs_f64())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Run the benchmark; `progress` gets (done, total) steps.
pub fn run(s: &FpmSettings, mut progress: impl FnMut(usize, usize)) -> anyhow::Result<FpmReport> {
    let core = super::pin_to(s.core);
    let (p4, p6) = prefixes(s.v4, s.v6);
    let s4 = stream(&p4, true);
    let s6 = stream(&p6, true);
    let total = 4 * s.rounds + 2;
    let mut done = 0;
    let mut rows = Vec::new();
    for (name, prefixes, bytes) in [("v4", &p4, &s4), ("v6", &p6, &s6)] {
        if prefixes.is_empty() {
            continue;
        }
        let routes: Vec<(IpNet, IpAddr)> = prefixes
            .iter()
            .flat_map(|p| hops(!p.addr().is_ipv4(), true).into_iter().map(|h| (*p, h)))
            .collect();
        let (mut ti, mut tb) = (Vec::new(), Vec::new());
        for _ in 0..s.rounds {
            let (el, installed) = ingest_once(bytes, s.v4, s.v6)?;
            if installed != prefixes.len() as u64 {
                anyhow::bail!(
                    "fpm-ingest-{name}: {installed} of {} routes installed",
                    prefixes.len()
                );
            }
            ti.push(el);
            done += 1;
            progress(done, total);
            tb.push(bulk_once(&routes, s.v4, s.v6)?);
            done += 1;
            progress(done, total);
        }
        let n = prefixes.len() as f64;
        let (ti, tb) = (median(ti), median(tb));
        rows.push(FpmRow {
            name: format!("fpm-ingest-{name}"),
            count: prefixes.len() as u64,
            seconds: ti,
            routes_per_s: Some(n / ti),
            mpps: None,
            vs_bulk_load: Some(tb / ti),
            vs_idle: None,
        });
        rows.push(FpmRow {
            name: format!("bulk-load-{name}"),
            count: prefixes.len() as u64,
            seconds: tb,
            routes_per_s: Some(n / tb),
            mpps: None,
            vs_bulk_load: None,
            vs_idle: None,
        });
    }
    if !p4.is_empty() {
        rows.extend(reader_rows(s, &p4, &mut || {
            done += 1;
            progress(done, total);
        })?);
    }
    Ok(FpmReport {
        rows,
        core,
        rounds: s.rounds,
        stream_bytes: (s4.len(), s6.len()),
    })
}

/// The `l3-route-v4` case idle, then while a writer thread flips the
/// table's routes between ECMP and one link through FPM.
fn reader_rows(
    s: &FpmSettings,
    p4: &[IpNet],
    step: &mut dyn FnMut(),
) -> anyhow::Result<Vec<FpmRow>> {
    let l3 = cases::l3_plan(p4.len(), 0)?;
    let case = Case {
        name: "l3-route-v4",
        sizes: Sizes::Fixed(64),
        work: Work::L3(false),
    };
    let mut p = prepare(&case, Some(&l3));
    let mut batch = Batch::new();
    if run_batches(&mut p, &mut batch, 64) != 64 * 32 {
        anyhow::bail!("l3-route-v4 does not forward every frame");
    }
    let measure = |p: &mut super::Prepared, batch: &mut Batch| {
        let t = Instant::now();
        let mut sent = 0u64;
        while t.elapsed() < s.reader_round {
            sent += run_batches(p, batch, 256);
        }
        (sent, t.elapsed().as_secs_f64())
    };
    let (idle_n, idle_t) = measure(&mut p, &mut batch);
    step();
    // The writer: the same prefixes, one link, then both, in place.
    let flips = [stream(p4, false), stream(p4, true)];
    let table =
        l3.0.route_table("bench", PeeringKind::Private)
            .ok_or_else(|| anyhow::anyhow!("bench plan has no l3 peering"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, written) = (stop.clone(), written.clone());
        std::thread::Builder::new()
            .name("xc-bench-fpm".into())
            .spawn(move || {
                let mut sync = RouteSync::new("bench/private", table, Duration::from_secs(30));
                for f in flips.iter().cycle() {
                    let mut ing = Ingest::new();
                    for chunk in f.chunks(MAX_FRAME + 1) {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        let before = sync.stats().accepted;
                        if ing.push(chunk, &mut sync, &mut |_| {}).is_err() {
                            return;
                        }
                        written.fetch_add(sync.stats().accepted - before, Ordering::Relaxed);
                    }
                }
            })?
    };
    // Let the writer get going.
    let warm = Instant::now();
    while written.load(Ordering::Relaxed) == 0 && warm.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let w0 = written.load(Ordering::Relaxed);
    let (busy_n, busy_t) = measure(&mut p, &mut batch);
    let w1 = written.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let _ = writer.join();
    step();
    let idle = idle_n as f64 / idle_t / 1e6;
    let busy = busy_n as f64 / busy_t / 1e6;
    Ok(vec![
        FpmRow {
            name: "l3-route-v4-idle".into(),
            count: idle_n,
            seconds: idle_t,
            routes_per_s: None,
            mpps: Some(idle),
            vs_bulk_load: None,
            vs_idle: None,
        },
        FpmRow {
            name: "l3-route-v4-ingest".into(),
            count: busy_n,
            seconds: busy_t,
            routes_per_s: Some((w1 - w0) as f64 / busy_t),
            mpps: Some(busy),
            vs_bulk_load: None,
            vs_idle: Some(busy / idle),
        },
    ])
}

impl FpmReport {
    /// A fixed-width table for people.
    pub fn table(&self) -> String {
        let mut s = format!(
            "fpm-ingest: {} rounds (median), core {}, streams {} / {} bytes\n{:<22} {:>9} {:>9} {:>13} {:>8} {:>9} {:>8}\n",
            self.rounds,
            self.core.map_or("-".into(), |c| c.to_string()),
            self.stream_bytes.0,
            self.stream_bytes.1,
            "case",
            "count",
            "seconds",
            "routes/s",
            "Mpps",
            "vs_bulk",
            "vs_idle"
        );
        let opt = |v: Option<f64>, p: usize| v.map_or("-".to_string(), |x| format!("{x:.p$}"));
        for r in &self.rows {
            s.push_str(&format!(
                "{:<22} {:>9} {:>9.3} {:>13} {:>8} {:>9} {:>8}\n",
                r.name,
                r.count,
                r.seconds,
                opt(r.routes_per_s, 0),
                opt(r.mpps, 2),
                opt(r.vs_bulk_load, 2),
                opt(r.vs_idle, 2)
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_run_installs_every_route_and_reports_every_row() {
        let s = FpmSettings {
            v4: 3000,
            v6: 500,
            rounds: 1,
            core: None,
            reader_round: Duration::from_millis(50),
        };
        let r = run(&s, |_, _| {}).unwrap();
        let names: Vec<&str> = r.rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "fpm-ingest-v4",
                "bulk-load-v4",
                "fpm-ingest-v6",
                "bulk-load-v6",
                "l3-route-v4-idle",
                "l3-route-v4-ingest"
            ]
        );
        assert_eq!(r.rows[0].count, 3000);
        assert!(r.rows.iter().all(|x| x.seconds > 0.0));
        assert!(r.table().contains("fpm-ingest-v6"));
    }
}
