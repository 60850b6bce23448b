//! Same seed → the same bits, whatever the thread count; a model trains to the same bits
//! alone or in a batch (the CPU engine's chunking depends on the model, not the batch).

use clockwork::engine::cpu::{CpuBackend, CpuOptions};
use clockwork::prelude::*;
use clockwork::real::Real;

/// The parameters of `models` models (dtype `F`) after `steps` steps of a small split
/// task on a CPU engine with `options`.
fn run_with<F: Real>(options: CpuOptions, models: usize, steps: usize) -> Vec<F> {
    let mut config = RunConfig::default();
    config.task.p = 13;
    config.model.width = 24;
    config.models = models;
    config.dtype = F::ELEMENT;
    config.task.train_fraction = 0.7;
    let backend = CpuBackend::new(options).unwrap();
    let mut trainer = Trainer::<F>::with_backend(&config, Box::new(backend)).unwrap();
    for _ in 0..steps {
        trainer.step().unwrap();
    }
    trainer.state().unwrap().params
}

fn run(threads: usize, models: usize, steps: usize) -> Vec<f32> {
    run_with(
        CpuOptions {
            threads: Some(threads),
            tile_rows: 16,
            ..CpuOptions::default()
        },
        models,
        steps,
    )
}

#[test]
fn bit_identical_across_runs_and_thread_counts() {
    let one = run(1, 2, 50);
    assert_eq!(one, run(1, 2, 50));
    assert_eq!(one, run(2, 2, 50));
    assert_eq!(one, run(3, 2, 50));
}

/// Model 0 of a batch of `models` equals the model trained alone, bit for bit, and the
/// other models of the batch differ from it.
fn alone_equals_batch<F: Real>(options: CpuOptions, models: usize) {
    let alone = run_with::<F>(options, 1, 30);
    let batch = run_with::<F>(options, models, 30);
    assert_eq!(
        &batch[..alone.len()],
        &alone[..],
        "{}: model 0 of a batch of {models} differs from the same model alone ({options:?})",
        F::NAME
    );
    assert_ne!(
        &batch[alone.len()..2 * alone.len()],
        &alone[..],
        "models of a batch must differ"
    );
}

#[test]
fn a_model_trains_the_same_alone_or_in_a_batch() {
    // The defaults: this small model is one chunk.
    let defaults = CpuOptions {
        threads: Some(2),
        tile_rows: 16,
        ..CpuOptions::default()
    };
    // Several chunks per model (118 pairs, 8 tiles), so the reduction order is at stake.
    let chunked = CpuOptions {
        chunks_per_model: 5,
        min_chunk_work: 0,
        ..defaults
    };
    // A batch of 3 on 2 threads runs a job per chunk; one of 9 (at least four models a
    // thread) runs each model's chunks in turn on one thread: both sum as the model alone.
    for options in [defaults, chunked] {
        for models in [3, 9] {
            alone_equals_batch::<f32>(options, models);
            alone_equals_batch::<f64>(options, models);
        }
    }
}
