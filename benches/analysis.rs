//! `cargo bench --bench analysis`: the feature analysis at the scale, p = 113,
//! m = 512 (f32 checkpoints, analysis in f64):
//!
//! - `checkpoint/in_memory`: one checkpoint's spectra of all 3·512 vectors, per-neuron
//!   features (dominant frequency, phases, residual), the frequency summary, and the
//!   normalized margin over all 113² pairs (CPU engine, f64). Target: well under 1 s.
//! - `checkpoint/run_dir`: `pipeline::analyze` of a run directory holding that one
//!   checkpoint (load, everything above, init spectra and lottery).
//! - `snapshots_100/spectra`: spectra and per-neuron features of 100 snapshots in one
//!   batched pass. Target: a few seconds.
//! - `snapshots_100/run_dir`: `pipeline::analyze` of a run directory with 100
//!   checkpoints (each also gets its margin over all pairs).
//! - `record/p31_m240`: one `spectra.jsonl` record of the default run's shape (what the
//!   training loop pays every `train.spectra_every` steps).

use clockwork::analysis::fourier::{spectra_many, FourierPlan};
use clockwork::analysis::margin;
use clockwork::analysis::pipeline::{self, Options};
use clockwork::analysis::record::SpectraRecorder;
use clockwork::analysis::summary;
use clockwork::checkpoint;
use clockwork::prelude::*;
use criterion::{criterion_group, criterion_main, Criterion};
use std::path::Path;
use std::time::Duration;

const P: usize = 113;
const M: usize = 512;
const SNAPSHOTS: usize = 100;

fn config(p: usize, m: usize) -> RunConfig {
    let mut c = RunConfig::default();
    c.task.p = p;
    c.model.width = m;
    c
}

/// A randomly initialized model (cost does not depend on the values), stored as f32
/// like a trained run's checkpoint, read back in f64.
fn weights(config: &RunConfig, seed: u64) -> Weights<f64> {
    Params::<f32>::init(&config.model_spec(), 1, seed)
        .expect("valid spec")
        .effective()
        .cast::<f64>()
}

/// A run directory with one checkpoint per snapshot.
fn run_dir(dir: &Path, config: &RunConfig, snapshots: &[Weights<f64>]) {
    std::fs::create_dir_all(dir.join("checkpoints")).unwrap();
    std::fs::write(dir.join("config.toml"), config.to_toml()).unwrap();
    for (i, w) in snapshots.iter().enumerate() {
        let step = 100 * (i as u64 + 1);
        checkpoint::save_weights(
            &checkpoint::path_for(dir, step),
            config,
            step,
            &w.cast::<f32>(),
        )
        .unwrap();
    }
}

/// Everything the analysis computes for one checkpoint held in memory.
fn analyze_one(
    plan: &FourierPlan,
    backend: &dyn Backend<f64>,
    task: &Task,
    config: &RunConfig,
    w: &Weights<f64>,
) -> f64 {
    let spectra = spectra_many(plan, &[(w, 0)]).unwrap();
    let features = summary::neuron_features(&spectra[0], summary::DEFAULT_THRESHOLD);
    let s = summary::summarize(&features, P / 2, summary::DEFAULT_THRESHOLD);
    let m = margin::margins_with(
        backend,
        w,
        config.model.activation,
        &task.pairs,
        "all",
        margin::gamma_star(config),
    )
    .unwrap();
    s.mean_ipr + m[0].gamma
}

fn benches(c: &mut Criterion) {
    let config = config(P, M);
    let plan = FourierPlan::new(P).unwrap();
    let backend = clockwork::engine::open::<f64>(Device::Cpu, Precision::Fp32, 0).unwrap();
    let task = config.build_task().unwrap();
    // `cargo test --all-targets` runs each benchmark once without `--bench`: a couple of
    // snapshots are enough to check it works, and spare the test run writing 100.
    let n = if std::env::args().any(|a| a == "--bench") {
        SNAPSHOTS
    } else {
        2
    };
    let snapshots: Vec<Weights<f64>> = (0..n as u64).map(|seed| weights(&config, seed)).collect();
    let tmp = tempfile::tempdir().unwrap();
    let one = tmp.path().join("one");
    run_dir(&one, &config, &snapshots[..1]);
    let hundred = tmp.path().join("hundred");
    run_dir(&hundred, &config, &snapshots);

    let mut g = c.benchmark_group("checkpoint_p113_m512");
    g.sample_size(10).warm_up_time(Duration::from_secs(1));
    g.bench_function("in_memory", |b| {
        b.iter(|| analyze_one(&plan, backend.as_ref(), &task, &config, &snapshots[0]))
    });
    g.bench_function("run_dir", |b| {
        b.iter(|| pipeline::analyze(backend.as_ref(), &one, &Options::default()).unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group("snapshots_100_p113_m512");
    g.sample_size(10).warm_up_time(Duration::from_secs(1));
    g.bench_function("spectra", |b| {
        b.iter(|| {
            let jobs: Vec<(&Weights<f64>, usize)> = snapshots.iter().map(|w| (w, 0)).collect();
            spectra_many(&plan, &jobs)
                .unwrap()
                .iter()
                .map(|s| summary::neuron_features(s, summary::DEFAULT_THRESHOLD).len())
                .sum::<usize>()
        })
    });
    g.measurement_time(Duration::from_secs(30));
    g.bench_function("run_dir", |b| {
        b.iter(|| pipeline::analyze(backend.as_ref(), &hundred, &Options::default()).unwrap())
    });
    g.finish();

    // The recorder's cost per record at the default run's shape (p = 31, m = 240).
    let small = self::config(31, 240);
    let w = weights(&small, 0);
    let rec_dir = tempfile::tempdir().unwrap();
    let mut recorder = SpectraRecorder::create(rec_dir.path(), 31).unwrap();
    let mut g = c.benchmark_group("record");
    g.sample_size(10);
    g.bench_function("p31_m240", |b| {
        b.iter(|| recorder.append(0, &w, 0).unwrap())
    });
    g.finish();
}

criterion_group!(analysis, benches);
criterion_main!(analysis);
