//! Same seed → the same bits, whatever the thread count; a model trains to the same bits
//! alone or in a batch (the CPU engine's chunking depends on the model, not the batch).

use clockwork::engine::cpu::{CpuBackend, CpuOptions};
use clockwork::prelude::*;
use clockwork::real::Real;

/// A trainer of `models` models (dtype `F`) of a small split task on a CPU engine with
/// `options`.
fn small_trainer<F: Real>(options: CpuOptions, models: usize) -> Trainer<F> {
    let mut config = RunConfig::default();
    config.task.p = 13;
    config.model.width = 24;
    config.models = models;
    config.dtype = F::ELEMENT;
    config.task.train_fraction = 0.7;
    let backend = CpuBackend::new(options).unwrap();
    Trainer::<F>::with_backend(&config, Box::new(backend)).unwrap()
}

/// The parameters of `models` models (dtype `F`) after `steps` steps of a small split
/// task on a CPU engine with `options`.
fn run_with<F: Real>(options: CpuOptions, models: usize, steps: usize) -> Vec<F> {
    let mut trainer = small_trainer::<F>(options, models);
    for _ in 0..steps {
        trainer.step().unwrap();
    }
    trainer.state().unwrap().params
}

/// `threads` threads and 16-row tiles (so the small task has several).
fn on_threads(threads: usize) -> CpuOptions {
    CpuOptions {
        threads: Some(threads),
        tile_rows: 16,
        ..CpuOptions::default()
    }
}

fn run(threads: usize, models: usize, steps: usize) -> Vec<f32> {
    run_with(on_threads(threads), models, steps)
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
    let defaults = on_threads(2);
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

/// A trainer's steps run on its backend's pool: the host loops between the passes see
/// the configured thread count, and a host call takes many small steps at once (each
/// call hands the work to a pool thread and back, ~tens of µs, as long as a p = 23
/// one-model step takes).
#[test]
fn steps_run_on_the_backends_threads() {
    let three = CpuOptions {
        threads: Some(3),
        ..CpuOptions::default()
    };
    let backend = CpuBackend::new(three).unwrap();
    let mut seen = 0;
    <CpuBackend as Backend<f32>>::within(&backend, &mut || seen = rayon::current_num_threads());
    assert_eq!(
        seen, 3,
        "work inside `within` must run on the backend's 3 threads"
    );
    // Without a thread count: on a thread of rayon's global pool.
    let global = CpuBackend::new(CpuOptions::default()).unwrap();
    let mut index = None;
    <CpuBackend as Backend<f32>>::within(&global, &mut || index = rayon::current_thread_index());
    assert!(
        index.is_some(),
        "work inside `within` must run on a pool thread"
    );

    let mut trainer = small_trainer::<f32>(three, 1);
    assert_eq!(trainer.preferred_batch(), 1, "no step timed yet");
    trainer.advance(1, &mut |_| {}).unwrap();
    assert!(
        trainer.preferred_batch() > 1,
        "a step of ~10 µs should be batched up to ~20 ms, got {}",
        trainer.preferred_batch()
    );
}

/// Steps taken in one `advance` call are the same bits as one `step` call at a time,
/// and every report is handed over in order.
#[test]
fn advance_in_one_call_equals_single_steps() {
    let options = on_threads(2);
    let singles = run_with::<f32>(options, 3, 40);
    let mut trainer = small_trainer::<f32>(options, 3);
    let mut steps = Vec::new();
    trainer.advance(40, &mut |r| steps.push(r.step)).unwrap();
    assert_eq!(steps, (0..40).collect::<Vec<u64>>());
    assert_eq!(trainer.state().unwrap().params, singles);
}
