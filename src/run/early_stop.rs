//! Early stopping per model: a model whose watched loss has not improved by
//! `train.early_stop_min_delta` for `train.early_stop_patience` steps (and not before
//! step `train.early_stop_start`) is frozen
//! ([`crate::train::Trainer::freeze`]) and reported with its stop step; the other models
//! of the batch train on, with exactly the bits they would get without it. When every
//! model has stopped the run ends there.
//!
//! The watched loss is the model's test loss where it holds pairs out, else its train
//! loss (a model trained on the whole table has no other; the peer this mirrors,
//! modular-addition-feature-learning, uses the whole table as its "test" set then).
//! The rule runs at the evaluations on the `train.eval_every` grid only (not at a final
//! evaluation off the grid), so a resumed run, which replays the rule over the
//! `metrics.jsonl` lines kept up to its checkpoint ([`EarlyStop::replay`]), stops the
//! same models at the same steps as an uninterrupted one.

use crate::config::RunConfig;
use crate::layout::MetricsRecord;
use crate::train::Evaluation;

/// The rule's state for one model.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Watch {
    /// Lowest watched loss so far (∞ before the first evaluation).
    best: f64,
    /// Step of the last improvement.
    best_step: u64,
    /// Step it stopped at.
    stopped: Option<u64>,
}

/// The early-stop rule of a batch (module docs).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct EarlyStop {
    patience: u64,
    min_delta: f64,
    /// No stop before this step.
    start: u64,
    eval_every: u64,
    models: Vec<Watch>,
}

impl EarlyStop {
    /// The rule of `config`, or None when `train.early_stop_patience` is 0.
    pub fn for_config(config: &RunConfig) -> Option<EarlyStop> {
        let t = &config.train;
        (t.early_stop_patience > 0).then(|| EarlyStop {
            patience: t.early_stop_patience,
            min_delta: t.early_stop_min_delta,
            start: t.early_stop_start,
            eval_every: t.eval_every.max(1),
            models: vec![
                Watch {
                    best: f64::INFINITY,
                    best_step: 0,
                    stopped: None,
                };
                config.models
            ],
        })
    }

    /// Takes the evaluation at `step` (each model's watched loss in `losses`) and
    /// returns the models that stop at it. Steps off the evaluation grid change nothing.
    pub fn observe(&mut self, step: u64, losses: &[f64]) -> Vec<usize> {
        if !step.is_multiple_of(self.eval_every) {
            return Vec::new();
        }
        let mut stopping = Vec::new();
        for (k, (w, &loss)) in self.models.iter_mut().zip(losses).enumerate() {
            if w.stopped.is_some() {
                continue;
            }
            if loss < w.best - self.min_delta {
                w.best = loss;
                w.best_step = step;
            } else if step >= self.start && step - w.best_step >= self.patience {
                w.stopped = Some(step);
                stopping.push(k);
            }
        }
        stopping
    }

    /// Replays the rule over `metrics.jsonl` records (any order; several models), as the
    /// run that wrote them applied it; returns the models stopped by then.
    pub fn replay(&mut self, records: &[MetricsRecord]) -> Vec<usize> {
        let mut steps: Vec<u64> = records.iter().map(|r| r.step).collect();
        steps.sort_unstable();
        steps.dedup();
        let mut stopped = Vec::new();
        for step in steps {
            let mut losses = vec![f64::INFINITY; self.models.len()];
            for r in records.iter().filter(|r| r.step == step) {
                if let (Some(slot), Some(loss)) =
                    (losses.get_mut(r.model), r.test_loss.or(r.train_loss))
                {
                    *slot = loss;
                }
            }
            stopped.extend(self.observe(step, &losses));
        }
        stopped
    }

    /// The step model `k` stopped at, if it has.
    pub fn stopped_at(&self, k: usize) -> Option<u64> {
        self.models.get(k).and_then(|w| w.stopped)
    }

    /// Whether every model has stopped.
    pub fn all_stopped(&self) -> bool {
        self.models.iter().all(|w| w.stopped.is_some())
    }
}

/// Each model's watched loss in an evaluation (module docs).
pub(super) fn watched_losses(eval: &Evaluation) -> Vec<f64> {
    (0..eval.train.len())
        .map(|k| eval.test_of(k).map_or(eval.train[k].loss, |t| t.loss))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(patience: u64, min_delta: f64, models: usize) -> EarlyStop {
        let mut c = RunConfig {
            models,
            ..RunConfig::default()
        };
        c.train.eval_every = 10;
        c.train.early_stop_patience = patience;
        c.train.early_stop_min_delta = min_delta;
        EarlyStop::for_config(&c).unwrap()
    }

    #[test]
    fn stops_after_patience_without_improvement_by_min_delta() {
        let mut r = rule(20, 0.1, 2);
        assert!(r.observe(0, &[1.0, 1.0]).is_empty());
        // model 0 improves by less than min_delta; model 1 by more
        assert!(r.observe(10, &[0.95, 0.5]).is_empty());
        assert_eq!(r.observe(20, &[0.92, 0.3]), vec![0]);
        assert_eq!(r.stopped_at(0), Some(20));
        assert!(r.observe(25, &[9.0, 9.0]).is_empty(), "off the grid");
        assert!(r.observe(30, &[0.0, 0.25]).is_empty());
        assert!(!r.all_stopped());
        assert_eq!(r.observe(50, &[0.0, 0.25]), vec![1]);
        assert!(r.all_stopped());
        assert_eq!(r.stopped_at(1), Some(50));
    }

    #[test]
    fn no_stop_before_the_start_step() {
        let mut r = rule(20, 0.0, 1);
        r.start = 50;
        for step in (0..50).step_by(10) {
            assert!(r.observe(step, &[1.0]).is_empty(), "step {step}");
        }
        assert_eq!(r.observe(50, &[1.0]), vec![0]);
    }

    #[test]
    fn replay_matches_live_observation() {
        let losses = [[1.0, 2.0], [0.9, 2.0], [0.9, 1.0], [0.9, 1.0], [0.9, 0.5]];
        let mut live = rule(20, 0.0, 2);
        let mut records = Vec::new();
        for (i, l) in losses.iter().enumerate() {
            live.observe(10 * i as u64, l);
            for (k, &loss) in l.iter().enumerate() {
                records.push(MetricsRecord {
                    step: 10 * i as u64,
                    model: k,
                    train_loss: Some(loss + 1.0),
                    test_loss: Some(loss),
                    ..MetricsRecord::default()
                });
            }
        }
        let mut replayed = rule(20, 0.0, 2);
        records.reverse();
        assert_eq!(replayed.replay(&records), vec![0]);
        assert_eq!(replayed, live);
    }
}
