//! A fixed amount of pipeline work, for comparing two builds by time
//! (this box has no hardware counters to count instructions, and
//! `xconnect bench` runs each case for a fixed time).
//!
//! - `fixed_work CASE BATCHES [64|imix]` runs exactly BATCHES batches of
//!   32 frames of one `xconnect bench` case (`copy`, `push` =
//!   l2-qinq-push, `pop` = l2-qinq-pop) and prints the frames and bytes
//!   sent; `scripts/alternate-fixed-work.py` runs two builds of it
//!   alternately and reports paired ratios.
//! - `fixed_work sliced CASE SLICES BATCHES` builds the case once (for
//!   `l3v4`/`l3v6` the bench's 1M-route IPv4 and 200k-route IPv6 tables)
//!   and then, SLICES times, times BATCHES batches of `copy` of the same
//!   frames and BATCHES batches of the case back to back, printing one
//!   `vs_copy` ratio per slice: the two halves of a slice meet the same
//!   machine noise.
//! - `fixed_work pair BASE CASE SLICES BATCHES` times BATCHES batches of
//!   BASE and of CASE back to back, SLICES times, and prints CASE/BASE
//!   per slice: the MPLS cases against their plain twins (`l3v4` and
//!   `l3vpn` share one set of tables; `push` and `pw`).

use std::time::Instant;
use xconnect::bench::{cases, BenchPorts};
use xconnect::driver::Driver;
use xconnect::frame::{Batch, PortId};
use xconnect::io::mem::{FrameSource, TxSlots};
use xconnect::io::Backend;
use xconnect::pipeline::{LinkState, Pipeline};

/// One case, ready to run.
struct Rig {
    port: PortId,
    source: FrameSource,
    pipeline: Pipeline,
    driver: Driver,
    batch: Batch,
    sink: TxSlots,
}

/// The bench's l3 plan and tables, built once for every case of a run.
type Tables = (
    std::sync::Arc<xconnect::plan::Plan>,
    Vec<(ipnet::Ipv4Net, u32)>,
    Vec<(ipnet::Ipv6Net, u32)>,
);

fn tables() -> Tables {
    cases::l3_plan(1_000_000, 200_000).expect("the bench's l3 tables")
}

impl Rig {
    fn new(case: &str, sizes: cases::Sizes) -> Rig {
        let needs_tables = matches!(case, "l3v4" | "l3v6" | "l3vpn");
        Rig::with(case, sizes, needs_tables.then(tables).as_ref())
    }

    fn with(case: &str, sizes: cases::Sizes, l3: Option<&Tables>) -> Rig {
        let (port, frames, pipeline) = match (case, l3) {
            ("pop", _) => (cases::POP_PORT, cases::pop_frames(sizes), cases::pipeline()),
            ("push" | "copy", _) => (
                cases::PUSH_PORT,
                cases::push_frames(sizes),
                cases::pipeline(),
            ),
            ("pw", _) => (
                cases::PUSH_PORT,
                cases::pw_frames(sizes),
                cases::pw_pipeline(),
            ),
            ("l3v4" | "l3v6", Some((plan, t4, t6))) => {
                let mac = cases::l3_access_mac(plan);
                let frames = cases::l3_frames(t4, t6, 8192, case == "l3v6", mac);
                let links = LinkState::new(plan.ports.len());
                (
                    cases::port::PRIVATE,
                    frames,
                    Pipeline::new(plan.clone(), links),
                )
            }
            ("l3vpn", Some((plan, t4, t6))) => {
                let vpn = cases::l3vpn_plan(plan);
                let mac = cases::l3_access_mac(&vpn);
                let frames = cases::labelled(
                    &cases::l3_frames(t4, t6, 8192, false, mac),
                    cases::L3VPN_LABEL,
                );
                let links = LinkState::new(vpn.ports.len());
                (cases::port::PRIVATE, frames, Pipeline::new(vpn, links))
            }
            (other, _) => {
                eprintln!(
                    "fixed_work: unknown case {other:?} (copy, push, pop, pw, l3v4, l3v6, l3vpn)"
                );
                std::process::exit(2);
            }
        };
        Rig {
            port,
            source: FrameSource::new(frames),
            pipeline,
            driver: Driver::new(),
            batch: Batch::new(),
            sink: TxSlots::new(256),
        }
    }

    fn copy(&mut self, batches: u64) {
        for _ in 0..batches {
            self.batch.clear();
            let _ = self.source.recv(&mut self.batch);
            for i in 0..self.batch.len() {
                self.sink.put(self.batch.buf(i).frame());
            }
        }
    }

    fn run(&mut self, batches: u64) {
        for _ in 0..batches {
            let mut ports = BenchPorts {
                port: self.port,
                source: &mut self.source,
                sink: &mut self.sink,
            };
            self.driver
                .step(&mut self.pipeline, &mut ports, self.port, &mut ());
        }
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: fixed_work copy|push|pop|pw BATCHES [64|imix]\n       fixed_work sliced CASE SLICES BATCHES\n       fixed_work pair BASE CASE SLICES BATCHES"
    );
    std::process::exit(2);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let number = |i: usize| -> u64 {
        args.get(i)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| usage())
    };
    let Some(case) = args.get(1) else { usage() };
    if case == "pair" {
        let (Some(base), Some(case)) = (args.get(2), args.get(3)) else {
            usage()
        };
        let (slices, batches) = (number(4), number(5));
        let needs_tables = [base, case]
            .iter()
            .any(|c| matches!(c.as_str(), "l3v4" | "l3v6" | "l3vpn"));
        let t = needs_tables.then(tables);
        let mut a = Rig::with(base, cases::Sizes::Fixed(64), t.as_ref());
        let mut b = Rig::with(case, cases::Sizes::Fixed(64), t.as_ref());
        for _ in 0..slices {
            let (p0, t0) = (a.sink.packets, Instant::now());
            a.run(batches);
            let (p1, t1) = (b.sink.packets, Instant::now());
            b.run(batches);
            let (p2, t2) = (b.sink.packets, Instant::now());
            let base = (a.sink.packets - p0) as f64 / (t1 - t0).as_secs_f64();
            let work = (p2 - p1) as f64 / (t2 - t1).as_secs_f64();
            println!("{:.4} {:.2} {:.2}", work / base, work / 1e6, base / 1e6);
        }
        eprintln!("witness {} {}", a.sink.witness(), b.sink.witness());
        return;
    }
    if case == "sliced" {
        let Some(case) = args.get(2) else { usage() };
        let (slices, batches) = (number(3), number(4));
        let mut rig = Rig::new(case, cases::Sizes::Fixed(64));
        for _ in 0..slices {
            let (p0, t0) = (rig.sink.packets, Instant::now());
            rig.copy(batches);
            let (p1, t1) = (rig.sink.packets, Instant::now());
            rig.run(batches);
            let (p2, t2) = (rig.sink.packets, Instant::now());
            let copy = (p1 - p0) as f64 / (t1 - t0).as_secs_f64();
            let work = (p2 - p1) as f64 / (t2 - t1).as_secs_f64();
            println!("{:.4} {:.2} {:.2}", work / copy, work / 1e6, copy / 1e6);
        }
        eprintln!("witness {}", rig.sink.witness());
        return;
    }
    let batches = number(2);
    let sizes = match args.get(3).map(String::as_str) {
        Some("imix") => cases::Sizes::Imix,
        _ => cases::Sizes::Fixed(64),
    };
    let mut rig = Rig::new(case, sizes);
    if case == "copy" {
        rig.copy(batches);
    } else {
        rig.run(batches);
    }
    println!(
        "{} {} {}",
        rig.sink.packets,
        rig.sink.bytes,
        rig.sink.witness()
    );
}
