//! Criterion benches of the same cases as `xconnect bench`: the copy
//! baseline, the naive etherparse forwarder, and the L2 QinQ push and pop
//! through the pipeline, 64-byte frames and IMIX, one batch of 32 per
//! iteration.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use xconnect::bench::{cases, naive};
use xconnect::io::mem::{FrameSource, TxSlots};
use xconnect::io::Backend;
use xconnect::pipeline::{Batch, BATCH_SIZE};

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
            g.bench_function(BenchmarkId::new(name, &label), |b| {
                b.iter(|| {
                    batch.clear();
                    batch.port = port;
                    let _ = src.recv(&mut batch);
                    pl.process(&mut batch);
                    for i in 0..batch.len() {
                        sink.put(batch.buf(i).frame());
                    }
                })
            });
        }
    }
    g.finish();
    black_box(TxSlots::new(1).witness());
}

criterion_group!(benches, l2);
criterion_main!(benches);
