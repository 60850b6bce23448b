//! `cargo bench --bench step`: one full-batch training step (forward + backward over
//! every pair, regularizer, optimizer) of the fused CPU engine, reported as effective
//! GFLOP/s = 6·p²·m·n_out·B / step time (shared/theory.md §1).
//!
//! Shapes: (p, m, B) = (71, 500, 1), (113, 512, 1), (23, 96, 64), in f32 and f64.

use clockwork::prelude::*;
use clockwork::real::Real;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;

const SHAPES: [(usize, usize, usize); 3] = [(71, 500, 1), (113, 512, 1), (23, 96, 64)];

fn trainer<F: Real>(p: usize, m: usize, b: usize) -> Trainer<F> {
    let mut config = RunConfig::default();
    config.task.p = p;
    config.model.width = m;
    config.models = b;
    config.dtype = F::ELEMENT;
    // A small lr keeps the parameters (and so the work per step) stable over many steps.
    config.optimizer.lr = 1e-4;
    config.optimizer.lr_milestones.clear();
    Trainer::from_config(&config).expect("bench config is valid")
}

fn bench_dtype<F: Real>(c: &mut Criterion) {
    let mut group = c.benchmark_group(format!("step/{}", F::NAME));
    group
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20);
    for (p, m, b) in SHAPES {
        let flops = 6 * p * p * m * p * b;
        group.throughput(Throughput::Elements(flops as u64));
        let mut t = trainer::<F>(p, m, b);
        group.bench_function(
            BenchmarkId::from_parameter(format!("p{p}_m{m}_B{b}")),
            |bench| bench.iter(|| t.step().expect("step")),
        );
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    bench_dtype::<f32>(c);
    bench_dtype::<f64>(c);
}

criterion_group!(step, benches);
criterion_main!(step);
