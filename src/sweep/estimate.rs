//! The dry run's time estimate: a few real steps (and one evaluation) of each batch
//! size of each shape group, timed on this machine and scaled to the run length.

use super::plan::batch_config;
use super::Sweep;
use crate::config::RunConfig;
use crate::error::Result;
use crate::kinds::Dtype;
use crate::real::Real;
use crate::train::Trainer;
use std::time::Instant;

/// Measured cost of one shape group (in the shard).
#[derive(Clone, Debug)]
pub struct GroupEstimate {
    /// Group index.
    pub group: usize,
    /// Models of the group in the shard.
    pub models: usize,
    /// Its batches in the shard.
    pub batches: usize,
    /// Seconds per step of its largest batch, as measured.
    pub step_s: f64,
    /// Estimated seconds for all its batches (steps and evaluations).
    pub total_s: f64,
}

/// Least time spent timing one batch size.
const MIN_TIMING_S: f64 = 0.3;
/// Most steps timed per batch size.
const MAX_TIMED_STEPS: u32 = 20;

/// Seconds per step and per evaluation of a trainer for `config`.
fn time_config(config: &RunConfig) -> Result<(f64, f64)> {
    match config.dtype {
        Dtype::F32 => time_typed::<f32>(config),
        Dtype::F64 => time_typed::<f64>(config),
    }
}

fn time_typed<F: Real>(config: &RunConfig) -> Result<(f64, f64)> {
    let mut trainer = Trainer::<F>::from_config(config)?;
    // A warm-up step: allocations, thread pool, caches.
    let _ = trainer.step();
    let started = Instant::now();
    let mut steps = 0;
    while steps < MAX_TIMED_STEPS && (steps < 2 || started.elapsed().as_secs_f64() < MIN_TIMING_S) {
        // A diverging point still takes the time of a step; the estimate only times.
        let _ = trainer.step();
        steps += 1;
    }
    let step_s = started.elapsed().as_secs_f64() / steps as f64;
    let started = Instant::now();
    trainer.evaluate()?;
    Ok((step_s, started.elapsed().as_secs_f64()))
}

/// Times every group with batches in `shard` and scales to its steps and evaluations.
pub fn estimate(sweep: &Sweep, shard: super::plan::Shard) -> Result<Vec<GroupEstimate>> {
    let mut out = Vec::new();
    for g in &sweep.plan.groups {
        let batches: Vec<&super::plan::Batch> = sweep
            .plan
            .batches
            .iter()
            .filter(|b| b.group == g.index && shard.holds(b.index))
            .collect();
        if batches.is_empty() {
            continue;
        }
        let mut sizes: Vec<usize> = batches.iter().map(|b| b.points.len()).collect();
        sizes.sort_unstable();
        sizes.dedup();
        let mut per_size = Vec::new();
        for &size in &sizes {
            let b = batches
                .iter()
                .find(|b| b.points.len() == size)
                .expect("a batch of each size");
            let pts: Vec<_> = b.points.iter().map(|&id| &sweep.points[id]).collect();
            let config = batch_config(&pts)?;
            per_size.push((size, time_config(&config)?, config.train.clone()));
        }
        let mut total = 0.0;
        for b in &batches {
            let (_, (step_s, eval_s), train) = per_size
                .iter()
                .find(|(s, _, _)| *s == b.points.len())
                .expect("timed");
            let evals = train.steps / train.eval_every.max(1) + 1;
            total += train.steps as f64 * step_s + evals as f64 * eval_s;
        }
        let largest = per_size.last().map_or(0.0, |(_, (s, _), _)| *s);
        out.push(GroupEstimate {
            group: g.index,
            models: batches.iter().map(|b| b.points.len()).sum(),
            batches: batches.len(),
            step_s: largest,
            total_s: total,
        });
    }
    Ok(out)
}
