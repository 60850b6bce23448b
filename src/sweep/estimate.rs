//! The dry run: what a sweep would train ([`DryRun`]: models, shape groups, batches, the
//! shard's share) and its time estimate, a few real steps (and one evaluation) of each
//! batch size of each shape group, timed on this machine and scaled to the run length.
//! `sweep --dry-run` prints it; the Python package returns it as a dict.

use super::plan::{batch_config, Shard};
use super::Sweep;
use crate::config::RunConfig;
use crate::error::Result;
use crate::kinds::Dtype;
use crate::real::Real;
use crate::train::Trainer;
use std::time::Instant;

/// Measured cost of one shape group (in the shard).
#[derive(Clone, Debug, serde::Serialize)]
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
pub fn estimate(sweep: &Sweep, shard: Shard) -> Result<Vec<GroupEstimate>> {
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

/// One shape group as the dry run lists it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct GroupPlan {
    /// Group index.
    pub index: usize,
    /// The shared shape and recipe, one line.
    pub describe: String,
    /// Models of the group (whole sweep).
    pub models: usize,
    /// Its batches (whole sweep).
    pub batches: usize,
}

/// What a sweep would do: its size, groups and batches, the shard's share and, when
/// asked for, the timed estimate.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DryRun {
    /// The sweep's name.
    pub name: String,
    /// [`Sweep::fingerprint`].
    pub fingerprint: String,
    /// Models in the whole sweep.
    pub models: usize,
    /// Batches in the whole sweep.
    pub batches: usize,
    /// Most models per batch.
    pub batch_max: usize,
    /// Each axis' key and number of values, in key order.
    pub axes: Vec<(String, usize)>,
    /// Number of `[[points]]`.
    pub explicit_points: usize,
    /// The shape groups.
    pub groups: Vec<GroupPlan>,
    /// The slice this plan is for.
    pub shard: Shard,
    /// Batches in that slice.
    pub shard_batches: usize,
    /// Per group with batches in the slice (empty when not estimated).
    pub estimates: Vec<GroupEstimate>,
    /// Sum of the estimates' seconds (None when not estimated).
    pub estimated_s: Option<f64>,
}

/// The dry run of `sweep` for `shard`; with `timed`, trains a few steps of each batch
/// size to estimate the time (nothing is written).
pub fn dry_run(sweep: &Sweep, shard: Shard, timed: bool) -> Result<DryRun> {
    let groups = sweep
        .plan
        .groups
        .iter()
        .map(|g| GroupPlan {
            index: g.index,
            describe: g.describe.clone(),
            models: g.points.len(),
            batches: sweep
                .plan
                .batches
                .iter()
                .filter(|b| b.group == g.index)
                .count(),
        })
        .collect();
    let estimates = if timed {
        estimate(sweep, shard)?
    } else {
        Vec::new()
    };
    Ok(DryRun {
        name: sweep.spec.name.clone(),
        fingerprint: sweep.fingerprint.clone(),
        models: sweep.points.len(),
        batches: sweep.plan.batches.len(),
        batch_max: sweep.spec.batch_max,
        axes: sweep
            .spec
            .axes
            .iter()
            .map(|a| (a.key.clone(), a.values.len()))
            .collect(),
        explicit_points: sweep.spec.points.len(),
        groups,
        shard,
        shard_batches: sweep
            .plan
            .batches
            .iter()
            .filter(|b| shard.holds(b.index))
            .count(),
        estimated_s: timed.then(|| estimates.iter().map(|e| e.total_s).sum()),
        estimates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::spec::SweepSpec;
    use std::path::Path;

    fn sweep(text: &str) -> Sweep {
        let spec = SweepSpec::parse(text, "t", Path::new(".")).unwrap();
        Sweep::new(spec, text.into()).unwrap()
    }

    #[test]
    fn dry_run_counts_the_plan_and_the_shard() {
        let s = sweep(
            "batch_max = 2\n[base.set]\n\"task.p\" = 7\n\"train.steps\" = 4\n\
             [axes]\n\"model.width\" = [8, 12]\nseed = { seeds = 3 }\n",
        );
        let plan = dry_run(&s, Shard::ALL, false).unwrap();
        assert_eq!((plan.models, plan.batches, plan.batch_max), (6, 4, 2));
        assert_eq!(
            plan.axes,
            vec![("model.width".to_string(), 2), ("seed".to_string(), 3)]
        );
        let per_group: Vec<(usize, usize)> =
            plan.groups.iter().map(|g| (g.models, g.batches)).collect();
        assert_eq!(per_group, vec![(3, 2), (3, 2)]);
        assert!(plan.estimates.is_empty() && plan.estimated_s.is_none());
        let half = dry_run(&s, Shard { index: 1, count: 2 }, true).unwrap();
        assert_eq!(half.shard_batches, 2);
        let models: usize = half.estimates.iter().map(|e| e.models).sum();
        assert_eq!(models, 2, "batches 1 and 3 hold one model each");
        let total: f64 = half.estimates.iter().map(|e| e.total_s).sum();
        assert!(total > 0.0 && half.estimated_s == Some(total));
    }
}
