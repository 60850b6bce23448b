//! Same seed → the same bits, whatever the thread count; a model's training does not
//! depend on the batch it is trained in (up to summation order).

use clockwork::engine::cpu::{CpuBackend, CpuOptions};
use clockwork::prelude::*;

fn run(threads: usize, models: usize, steps: usize) -> Vec<f32> {
    let mut config = RunConfig::default();
    config.task.p = 13;
    config.model.width = 24;
    config.models = models;
    config.task.train_fraction = 0.7;
    let backend = CpuBackend::new(CpuOptions {
        threads: Some(threads),
        tile_rows: 16,
        ..CpuOptions::default()
    })
    .unwrap();
    let mut trainer = Trainer::<f32>::with_backend(&config, Box::new(backend)).unwrap();
    for _ in 0..steps {
        trainer.step().unwrap();
    }
    trainer.state().unwrap().params
}

#[test]
fn bit_identical_across_runs_and_thread_counts() {
    let one = run(1, 2, 50);
    assert_eq!(one, run(1, 2, 50));
    assert_eq!(one, run(2, 2, 50));
    assert_eq!(one, run(3, 2, 50));
}

#[test]
fn a_model_trains_the_same_alone_or_in_a_batch() {
    let alone = run(2, 1, 30);
    let batch = run(2, 3, 30);
    let first = &batch[..alone.len()];
    let max_rel = alone
        .iter()
        .zip(first)
        .map(|(a, b)| ((a - b).abs() / a.abs().max(1e-3)) as f64)
        .fold(0.0, f64::max);
    assert!(max_rel < 1e-4, "model 0 differs by {max_rel}");
    assert_ne!(
        &batch[alone.len()..2 * alone.len()],
        &alone[..],
        "models of a batch must differ"
    );
}
