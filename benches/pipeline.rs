//! Criterion benches of the same cases as `xconnect bench`: the copy
//! baseline, the naive etherparse forwarder, and the L2 QinQ push and pop
//! through the driver (`Driver::step`: receive, pipeline, transmit per
//! port), 64-byte frames and IMIX, one batch of 32 per iteration; and the
//! worker's cost of a capture tap on that path (the tap as the driver's
//! observer, as a worker runs it).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use xconnect::bench::{cases, naive, BenchPorts};
use xconnect::driver::Driver;
use xconnect::frame::{Batch, BATCH_SIZE};
use xconnect::io::mem::{FrameSource, TxSlots};
use xconnect::io::Backend;

fn l2(c: &mut Criterion) {
    let mut g = c.benchmark_group("l2");
    g.throughput(Throughput::Elements(BATCH_SIZE as u64));
    for sizes in [cases::Sizes::Fixed(64), cases::Sizes::Imix] {
        let label = sizes.label();
        let mut batch = Batch::new();
        let mut sink = TxSlots::new(256);

        let mut src = FrameSource::new(cases::push_frames(sizes));
        g.bench_function(BenchmarkId::new("copy", &label), |b| {
            b.iter(|| {
                batch.clear();
                let _ = src.recv(&mut batch);
                for i in 0..batch.len() {
                    sink.put(batch.buf(i).frame());
                }
            })
        });
        g.bench_function(BenchmarkId::new("naive", &label), |b| {
            b.iter(|| {
                batch.clear();
                let _ = src.recv(&mut batch);
                for i in 0..batch.len() {
                    if let Some(out) = naive::forward(batch.buf(i).frame(), true) {
                        sink.put(&out);
                    }
                }
            })
        });
        for (name, port, frames) in [
            ("l2-qinq-push", cases::PUSH_PORT, cases::push_frames(sizes)),
            ("l2-qinq-pop", cases::POP_PORT, cases::pop_frames(sizes)),
        ] {
            let mut src = FrameSource::new(frames);
            let mut pl = cases::pipeline();
            let mut driver = Driver::new();
            g.bench_function(BenchmarkId::new(name, &label), |b| {
                b.iter(|| {
                    let mut ports = BenchPorts {
                        port,
                        source: &mut src,
                        sink: &mut sink,
                    };
                    driver.step(&mut pl, &mut ports, port, &mut ());
                })
            });
        }
    }
    g.finish();
    black_box(TxSlots::new(1).witness());
}

/// The worker's cost of `--capture` on every port: the QinQ push case
/// with and without a tap copying each frame as received and as sent (two
/// records per frame). The bench thread hands the full chunks straight
/// back to the free queue after each batch, standing in for the writer
/// (so the tap never runs dry and the copy is measured, not the loss
/// path; the cache traffic of a writer on another core is not).
fn capture(c: &mut Criterion) {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use xconnect::capture::tap::{CaptureTap, Pool};
    use xconnect::capture::Compiled;
    let mut g = c.benchmark_group("capture");
    g.throughput(Throughput::Elements(BATCH_SIZE as u64));
    let mut batch = Batch::new();
    let mut sink = TxSlots::new(256);
    let pool = Pool::new(128);
    let mut tap = CaptureTap::new(
        Compiled {
            port_dirs: vec![7; 8],
            reasons: u32::MAX,
        },
        pool.clone(),
        Arc::new(AtomicBool::new(false)),
        2048,
    );
    let mut driver = Driver::new();
    for with_tap in [false, true] {
        let mut src = FrameSource::new(cases::push_frames(cases::Sizes::Fixed(64)));
        let mut pl = cases::pipeline();
        let name = if with_tap {
            "l2-qinq-push+capture"
        } else {
            "l2-qinq-push"
        };
        g.bench_function(BenchmarkId::new(name, "64"), |b| {
            b.iter(|| {
                let mut ports = BenchPorts {
                    port: cases::PUSH_PORT,
                    source: &mut src,
                    sink: &mut sink,
                };
                if with_tap {
                    driver.step(&mut pl, &mut ports, cases::PUSH_PORT, &mut tap);
                } else {
                    driver.step(&mut pl, &mut ports, cases::PUSH_PORT, &mut ());
                }
                while let Some(mut c) = pool.full.pop() {
                    c.clear();
                    let _ = pool.free.push(c);
                }
            })
        });
    }
    // The writer's encoding of those records (pcapng packet blocks into
    // its buffer and out to a sink: no file system).
    {
        use xconnect::capture::tap::records;
        use xconnect::capture::writer::{Files, Interface};
        let dir = std::env::temp_dir().join(format!("xconnect-bench-{}", std::process::id()));
        let ifaces: Vec<Interface> = (0..4)
            .map(|i| Interface {
                name: format!("p{i}"),
                description: String::new(),
            })
            .collect();
        let mut files = Files::create(
            &dir,
            "bench",
            &ifaces,
            2048,
            u64::MAX,
            0,
            Box::new(|_: &std::path::Path| Ok(Box::new(std::io::sink()) as _)),
        )
        .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let mut src = FrameSource::new(cases::push_frames(cases::Sizes::Fixed(64)));
        batch.clear();
        batch.port = cases::PUSH_PORT;
        let _ = src.recv(&mut batch);
        let mut chunk = pool.free.pop().unwrap();
        tap.flush();
        tap.received(&batch);
        tap.flush();
        while let Some(c) = pool.full.pop() {
            chunk = c;
        }
        let n = records(&chunk).count() as u64;
        g.throughput(Throughput::Elements(n));
        g.bench_function(BenchmarkId::new("writer-encode", "64"), |b| {
            b.iter(|| {
                for r in records(&chunk) {
                    files.write(&r).unwrap();
                }
            })
        });
    }
    g.finish();
    tap.flush();
    println!(
        "capture bench: {} records lost for want of a free chunk",
        tap.dropped()
    );
    black_box(TxSlots::new(1).witness());
}

criterion_group!(benches, l2, capture);
criterion_main!(benches);
