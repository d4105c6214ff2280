//! The in-memory throughput benchmark behind `xconnect bench`.
//!
//! Each case pushes batches of 32 frames from a [`FrameSource`] (one
//! receive copy per frame) through some work into [`TxSlots`] (one transmit
//! copy per frame), on one pinned core. Cases run interleaved in rounds so
//! machine noise hits them alike, and each reports the median round.
//! Baselines measured in the same run:
//! - `copy`: frames only copied from rx to tx buffers — the floor for any
//!   forwarder that touches every frame;
//! - `naive`: an etherparse forwarder that parses into owned headers and
//!   serialises a new `Vec` per frame ([`naive`]).
//!
//! `xconnect bench --lpm` runs the longest-prefix-match lookup cases of
//! [`lpm`] instead, on the same pinned core; `xconnect bench --case
//! fpm-ingest` the route-ingest benchmark of [`fpm`].

pub mod cases;
pub mod fpm;
pub mod lpm;
pub mod naive;

use crate::driver::{Driver, Ports};
use crate::frame::{Batch, Outgoing, PortId};
use crate::io::mem::{FrameSource, TxSlots};
use crate::io::pcap::{pcap_bytes, PcapSource};
use crate::io::Backend;
use crate::pipeline::{LinkState, Pipeline};
use crate::trace::{Summary, Tracer};
use cases::Sizes;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a case does with each frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// Copy rx → tx only.
    Copy,
    /// etherparse owned-header forwarder, push direction.
    Naive,
    /// The pipeline; frames enter on this port.
    Pipeline(PortId),
    /// The l3 pipeline with the large tables: access frames routed to the
    /// trunks (IPv6 when `true`).
    L3(bool),
    /// The same, the access side an L3VPN attachment: the IPv4 frames of
    /// `L3(false)` under a VPN label.
    L3Vpn,
    /// The push case's frames arriving by a pseudowire (label and control
    /// word) instead of an untagged access port.
    Pseudowire,
    /// `xconnect trace --summary` over a capture of
    /// [`TRACE_CAPTURE_FRAMES`] push-direction frames held in memory: pcap
    /// records read, pipeline, verdicts counted (nothing transmitted).
    TraceSummary,
}

/// Frames in the `trace-summary` case's capture.
pub const TRACE_CAPTURE_FRAMES: usize = 1_000_000;

/// A benchmark case.
#[derive(Clone, Debug)]
pub struct Case {
    /// Case name (`copy`, `naive`, `trace-summary`, `l2-qinq-push`,
    /// `l2-qinq-pop`, `pw-to-qinq`, `l3-route-v4`, `l3-route-v6`,
    /// `l3vpn-to-qinq`).
    pub name: &'static str,
    /// Frame sizes.
    pub sizes: Sizes,
    /// The work.
    pub work: Work,
}

/// The l3 cases: 64-byte IPv4 and 66-byte IPv6 frames routed by the
/// peering's table (see [`Settings::l3_routes`]).
pub fn l3_cases() -> Vec<Case> {
    vec![
        Case {
            name: "l3-route-v4",
            sizes: Sizes::Fixed(64),
            work: Work::L3(false),
        },
        Case {
            name: "l3-route-v6",
            sizes: Sizes::Fixed(66),
            work: Work::L3(true),
        },
        Case {
            name: "l3vpn-to-qinq",
            sizes: Sizes::Fixed(64),
            work: Work::L3Vpn,
        },
    ]
}

/// The default case list: for 64-byte frames and IMIX, the two baselines
/// and the push and pop cross-connects.
pub fn default_cases() -> Vec<Case> {
    let mut v = Vec::new();
    for sizes in [Sizes::Fixed(64), Sizes::Imix] {
        v.push(Case {
            name: "copy",
            sizes,
            work: Work::Copy,
        });
        v.push(Case {
            name: "naive",
            sizes,
            work: Work::Naive,
        });
        if sizes == Sizes::Fixed(64) {
            v.push(Case {
                name: "trace-summary",
                sizes,
                work: Work::TraceSummary,
            });
        }
        v.push(Case {
            name: "l2-qinq-push",
            sizes,
            work: Work::Pipeline(cases::PUSH_PORT),
        });
        v.push(Case {
            name: "l2-qinq-pop",
            sizes,
            work: Work::Pipeline(cases::POP_PORT),
        });
        v.push(Case {
            name: "pw-to-qinq",
            sizes,
            work: Work::Pseudowire,
        });
    }
    v
}

/// One case's result.
#[derive(Clone, Debug, Serialize)]
pub struct CaseResult {
    /// Case name.
    pub name: String,
    /// `64`, `imix`…
    pub sizes: String,
    /// Mean wire bytes per frame (FCS included).
    pub frame_bytes: f64,
    /// Frames processed in the median round.
    pub packets: u64,
    /// Million frames per second (median round).
    pub mpps: f64,
    /// Nanoseconds per frame (median round).
    pub ns_per_packet: f64,
    /// Ratio of `mpps` to the `copy` case of the same sizes.
    pub vs_copy: Option<f64>,
    /// Ratio of `mpps` to the `naive` case of the same sizes.
    pub vs_naive: Option<f64>,
}

/// A whole run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Results in case order.
    pub cases: Vec<CaseResult>,
    /// Core the run was pinned to, if pinning worked.
    pub core: Option<usize>,
    /// Rounds per case.
    pub rounds: usize,
}

/// Settings of a run.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Time per case per round.
    pub round: Duration,
    /// Rounds (the median is reported).
    pub rounds: usize,
    /// Core to pin to (`None`: do not pin).
    pub core: Option<usize>,
    /// Routes in the l3 cases' tables (IPv4, IPv6).
    pub l3_routes: (usize, usize),
}

struct Prepared {
    case: Case,
    source: FrameSource,
    driver: Driver,
    pipeline: Pipeline,
    sink: TxSlots,
    samples: Vec<(u64, Duration)>,
    trace: Option<TraceRun>,
}

/// The `trace-summary` case: a capture in memory, replayed.
struct TraceRun {
    capture: PcapSource,
    tracer: Tracer,
    summary: Summary,
}

/// The ports of a pipeline case: frames of `port` come from the source,
/// whatever is sent goes into the sink (one copy per frame each way, as a
/// ring would). The criterion benches use it too.
pub struct BenchPorts<'a> {
    /// The port frames arrive on.
    pub port: PortId,
    /// Where they come from.
    pub source: &'a mut FrameSource,
    /// Where every sent frame goes, whatever its port.
    pub sink: &'a mut TxSlots,
}

impl Ports for BenchPorts<'_> {
    #[inline]
    fn recv(&mut self, port: PortId, batch: &mut Batch) -> std::io::Result<usize> {
        if port == self.port {
            self.source.recv(batch)
        } else {
            Ok(0)
        }
    }

    #[inline]
    fn send(&mut self, out: Outgoing<'_>) -> std::io::Result<usize> {
        self.sink.send(out)
    }
}

/// Run `batches` batches of one case; returns frames sent out.
fn run_batches(p: &mut Prepared, batch: &mut Batch, batches: u64) -> u64 {
    let mut sent = 0u64;
    for _ in 0..batches {
        batch.clear();
        match p.case.work {
            Work::Copy => {
                batch.port = 0;
                let _ = p.source.recv(batch);
                for i in 0..batch.len() {
                    p.sink.put(batch.buf(i).frame());
                }
                sent += batch.len() as u64;
            }
            Work::TraceSummary => {
                let Some(t) = p.trace.as_mut() else { break };
                // Frames the summary counts as forwarded (the bench's
                // check that the case works end to end).
                let mut forwarded = 0u64;
                let mut count = |r: &crate::trace::Record<'_>| {
                    t.summary.count(r);
                    forwarded += u64::from(r.verdict().egress().is_some());
                };
                if t.tracer.run(&mut t.capture, Some(32), &mut count) == 0 {
                    t.capture.rewind();
                    t.tracer.run(&mut t.capture, Some(32), &mut count);
                }
                sent += forwarded;
            }
            Work::Naive => {
                let _ = p.source.recv(batch);
                for i in 0..batch.len() {
                    if let Some(out) = naive::forward(batch.buf(i).frame(), true) {
                        p.sink.put(&out);
                        sent += 1;
                    }
                }
            }
            Work::Pipeline(_) | Work::L3(_) | Work::L3Vpn | Work::Pseudowire => {
                let port = match p.case.work {
                    Work::Pipeline(port) => port,
                    Work::Pseudowire => cases::PUSH_PORT,
                    _ => cases::port::PRIVATE,
                };
                let before = p.sink.packets;
                let mut ports = BenchPorts {
                    port,
                    source: &mut p.source,
                    sink: &mut p.sink,
                };
                p.driver.step(&mut p.pipeline, &mut ports, port, &mut ());
                sent += p.sink.packets - before;
            }
        }
    }
    sent
}

/// The l3 plan and its tables, built once per run.
type L3Tables = (
    Arc<crate::plan::Plan>,
    Vec<(ipnet::Ipv4Net, u32)>,
    Vec<(ipnet::Ipv6Net, u32)>,
);

/// Distinct destinations per l3 case (spread over the whole table).
const L3_FLOWS: usize = 8192;

fn prepare(case: &Case, l3: Option<&L3Tables>) -> Prepared {
    let (frames, pipeline) = match (case.work, l3) {
        (Work::L3(v6), Some((plan, t4, t6))) => {
            let links = LinkState::new(plan.ports.len());
            (
                cases::l3_frames(t4, t6, L3_FLOWS, v6, cases::l3_access_mac(plan)),
                Pipeline::new(plan.clone(), links),
            )
        }
        (Work::L3Vpn, Some((plan, t4, t6))) => {
            let vpn = cases::l3vpn_plan(plan);
            let links = LinkState::new(vpn.ports.len());
            let mac = cases::l3_access_mac(&vpn);
            (
                cases::labelled(
                    &cases::l3_frames(t4, t6, L3_FLOWS, false, mac),
                    cases::L3VPN_LABEL,
                ),
                Pipeline::new(vpn, links),
            )
        }
        (Work::Pseudowire, _) => (cases::pw_frames(case.sizes), cases::pw_pipeline()),
        (Work::Pipeline(p), _) if p == cases::POP_PORT => {
            (cases::pop_frames(case.sizes), cases::pipeline())
        }
        _ => (cases::push_frames(case.sizes), cases::pipeline()),
    };
    let trace = (case.work == Work::TraceSummary).then(|| {
        let capture = pcap_bytes(
            frames
                .iter()
                .cycle()
                .take(TRACE_CAPTURE_FRAMES)
                .enumerate()
                .map(|(i, f)| (Duration::from_micros(i as u64), f.as_slice())),
        );
        let plan = pipeline.plan().clone();
        let links = LinkState::new(plan.ports.len());
        TraceRun {
            capture: PcapSource::from_bytes("bench.pcap", capture)
                .expect("the bench capture is well formed"),
            tracer: Tracer::new(plan, links, cases::PUSH_PORT, false),
            summary: Summary::default(),
        }
    });
    Prepared {
        case: case.clone(),
        source: FrameSource::new(frames),
        driver: Driver::new(),
        pipeline,
        sink: TxSlots::new(256),
        samples: Vec::new(),
        trace,
    }
}

/// Pin the calling thread to `core`; returns the core if pinning worked.
pub fn pin_to(core: Option<usize>) -> Option<usize> {
    core.and_then(|c| {
        let ids = core_affinity::get_core_ids()?;
        let id = ids.into_iter().find(|i| i.id == c)?;
        core_affinity::set_for_current(id).then_some(c)
    })
}

/// Run the cases; `progress` is called after each (case, round) with
/// (done, total).
pub fn run(
    cases: &[Case],
    settings: &Settings,
    mut progress: impl FnMut(usize, usize),
) -> anyhow::Result<Report> {
    let core = pin_to(settings.core);
    let l3 = if cases
        .iter()
        .any(|c| matches!(c.work, Work::L3(_) | Work::L3Vpn))
    {
        Some(cases::l3_plan(settings.l3_routes.0, settings.l3_routes.1)?)
    } else {
        None
    };
    let mut prepared: Vec<Prepared> = cases.iter().map(|c| prepare(c, l3.as_ref())).collect();
    let mut batch = Batch::new();
    // Check every case forwards every frame before timing anything.
    for p in &mut prepared {
        let sent = run_batches(p, &mut batch, 64);
        if sent != 64 * 32 {
            anyhow::bail!(
                "bench case {} forwarded {sent} of {} frames: the bench plan or frames are broken",
                p.case.name,
                64 * 32
            );
        }
    }
    // Calibrate: batches per round so that a round takes about `settings.round`.
    let mut per_round = Vec::new();
    for p in &mut prepared {
        let t = Instant::now();
        let mut b = 0u64;
        while t.elapsed() < settings.round / 10 {
            run_batches(p, &mut batch, 256);
            b += 256;
        }
        per_round.push((b * 10).max(256));
    }
    let total = settings.rounds * prepared.len();
    let mut done = 0;
    for _ in 0..settings.rounds {
        for (p, &n) in prepared.iter_mut().zip(&per_round) {
            let t = Instant::now();
            let sent = run_batches(p, &mut batch, n);
            let el = t.elapsed();
            p.samples.push((sent, el));
            done += 1;
            progress(done, total);
        }
    }
    let witness: u8 = prepared
        .iter()
        .map(|p| p.sink.witness())
        .fold(0, |a, b| a ^ b);
    std::hint::black_box(witness);
    let mut results: Vec<CaseResult> = prepared
        .iter()
        .map(|p| {
            let mut s: Vec<(f64, u64)> = p
                .samples
                .iter()
                .map(|(n, d)| (d.as_secs_f64() * 1e9 / *n as f64, *n))
                .collect();
            s.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (ns, packets) = s[s.len() / 2];
            CaseResult {
                name: p.case.name.to_string(),
                sizes: p.case.sizes.label(),
                frame_bytes: p.case.sizes.mean(),
                packets,
                mpps: 1e3 / ns,
                ns_per_packet: ns,
                vs_copy: None,
                vs_naive: None,
            }
        })
        .collect();
    let base: Vec<(String, String, f64)> = results
        .iter()
        .map(|r| (r.name.clone(), r.sizes.clone(), r.mpps))
        .collect();
    for r in &mut results {
        let find = |n: &str| {
            base.iter()
                .find(|(bn, bs, _)| bn == n && *bs == r.sizes)
                .map(|b| b.2)
        };
        r.vs_copy = find("copy").map(|c| r.mpps / c);
        r.vs_naive = find("naive").map(|c| r.mpps / c);
    }
    Ok(Report {
        cases: results,
        core,
        rounds: settings.rounds,
    })
}

impl Report {
    /// A fixed-width table for people.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{:<16} {:>6} {:>10} {:>10} {:>9} {:>9} {:>9}\n",
            "case", "sizes", "packets", "Mpps", "ns/pkt", "vs copy", "vs naive"
        );
        for r in &self.cases {
            let ratio = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.3}x"));
            s += &format!(
                "{:<16} {:>6} {:>10} {:>10.2} {:>9.2} {:>9} {:>9}\n",
                r.name,
                r.sizes,
                r.packets,
                r.mpps,
                r.ns_per_packet,
                ratio(r.vs_copy),
                ratio(r.vs_naive)
            );
        }
        s += &format!(
            "median of {} rounds; {}\n",
            self.rounds,
            match self.core {
                Some(c) => format!("pinned to core {c}"),
                None => "not pinned".to_string(),
            }
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::mem::MemPort;

    /// The naive forwarder and the pipeline produce the same bytes.
    #[test]
    fn naive_matches_pipeline() {
        for sizes in [Sizes::Fixed(64), Sizes::Imix] {
            let frames = cases::push_frames(sizes);
            let mut pl = cases::pipeline();
            let mut ports = vec![MemPort::new(); 4];
            for f in &frames[..64] {
                ports[cases::PUSH_PORT as usize].inject(f);
            }
            crate::driver::pump(&mut pl, &mut ports);
            let mut out: Vec<Vec<u8>> = ports[2].take_sent();
            out.extend(ports[3].take_sent());
            out.sort();
            let mut want: Vec<Vec<u8>> = frames[..64]
                .iter()
                .map(|f| naive::forward(f, true).unwrap())
                .collect();
            want.sort();
            assert_eq!(out, want);
        }
    }

    #[test]
    fn tiny_run_reports_every_case() {
        let s = Settings {
            round: Duration::from_millis(2),
            rounds: 1,
            core: None,
            l3_routes: (2000, 500),
        };
        let mut all = default_cases();
        all.extend(l3_cases());
        let r = run(&all, &s, |_, _| {}).unwrap();
        assert_eq!(r.cases.len(), 14);
        for name in ["trace-summary", "pw-to-qinq", "l3vpn-to-qinq"] {
            assert!(r.cases.iter().any(|c| c.name == name), "{name}");
        }
        assert!(r.cases.iter().all(|c| c.mpps > 0.0 && c.packets > 0));
        assert!(r.cases[0].vs_copy.is_some_and(|v| (v - 1.0).abs() < 1e-9));
    }
}
