//! A fixed amount of pipeline work, for comparing two builds by time:
//! `fixed_work CASE BATCHES [64|imix]` runs exactly BATCHES batches of 32
//! frames of one `xconnect bench` case (`copy`, `push` = l2-qinq-push,
//! `pop` = l2-qinq-pop) on the calling thread and prints the frames and
//! bytes sent. `scripts/alternate-fixed-work.py` runs two builds of it
//! alternately and reports paired ratios: the same work in both, so only
//! the time differs (this box has no hardware counters to count
//! instructions, and `xconnect bench` runs each case for a fixed time).

use xconnect::bench::{cases, BenchPorts};
use xconnect::driver::Driver;
use xconnect::frame::Batch;
use xconnect::io::mem::{FrameSource, TxSlots};
use xconnect::io::Backend;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(case), Some(Ok(batches))) = (args.get(1), args.get(2).map(|n| n.parse::<u64>()))
    else {
        eprintln!("usage: fixed_work copy|push|pop BATCHES [64|imix]");
        std::process::exit(2);
    };
    let sizes = match args.get(3).map(String::as_str) {
        Some("imix") => cases::Sizes::Imix,
        _ => cases::Sizes::Fixed(64),
    };
    let (port, frames) = match case.as_str() {
        "pop" => (cases::POP_PORT, cases::pop_frames(sizes)),
        "push" | "copy" => (cases::PUSH_PORT, cases::push_frames(sizes)),
        other => {
            eprintln!("fixed_work: unknown case {other:?} (copy, push, pop)");
            std::process::exit(2);
        }
    };
    let mut sink = TxSlots::new(256);
    let mut source = FrameSource::new(frames);
    let mut pipeline = cases::pipeline();
    let mut driver = Driver::new();
    let mut batch = Batch::new();
    for _ in 0..batches {
        if case == "copy" {
            batch.clear();
            let _ = source.recv(&mut batch);
            for i in 0..batch.len() {
                sink.put(batch.buf(i).frame());
            }
        } else {
            let mut ports = BenchPorts {
                port,
                source: &mut source,
                sink: &mut sink,
            };
            driver.step(&mut pipeline, &mut ports, port, &mut ());
        }
    }
    println!("{} {} {}", sink.packets, sink.bytes, sink.witness());
}
