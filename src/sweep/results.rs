//! One model's results: what its metric history and final weights say — final and best
//! accuracy, the memorization and grokking steps, losses, normalized margin, the
//! frequencies it uses and its share of sinusoidal neurons — and the category the sweep
//! file's thresholds put it in.
//!
//! "Frequencies" are read in the task's own basis ([`Basis::for_config`]): the DFT over
//! Z_p for a+b, a−b, a²+ab+b², the discrete-log basis for a·b and a/b, and the irreps
//! for a group task (frequency k = irrep ρk; "sinusoidal" = one irrep holds the power).

use crate::analysis::basis::Basis;
use crate::analysis::progress::stages;
use crate::analysis::summary::{neuron_features_with, summarize, DEFAULT_THRESHOLD};
use crate::error::Result;
use crate::layout::MetricsRecord;
use crate::model::Weights;
use serde::{Deserialize, Serialize};

/// Where a model ended up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Fits the training set and the held-out set.
    Generalizes,
    /// Fits the training set only.
    Memorizes,
    /// Does not fit the training set.
    Fails,
    /// Its loss became NaN/inf; it was taken out of its batch.
    Diverged,
}

impl Category {
    /// Every category, in the order diagrams list them.
    pub const ALL: [Category; 4] = [
        Category::Generalizes,
        Category::Memorizes,
        Category::Fails,
        Category::Diverged,
    ];

    /// The lowercase name used in the tables.
    pub fn name(self) -> &'static str {
        match self {
            Category::Generalizes => "generalizes",
            Category::Memorizes => "memorizes",
            Category::Fails => "fails",
            Category::Diverged => "diverged",
        }
    }
}

/// One row of the results table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelRow {
    /// The point's id (expansion order).
    pub model: usize,
    /// Its shape group and batch.
    pub group: usize,
    /// Batch index.
    pub batch: usize,
    /// The swept keys' values, as `key = value` in TOML spelling.
    pub settings: Vec<(String, String)>,
    /// Steps trained (up to divergence for a diverged model).
    pub steps: u64,
    /// Metrics at the last evaluation.
    pub final_train_loss: Option<f64>,
    /// Test loss at the last evaluation (None without a test split).
    pub final_test_loss: Option<f64>,
    /// Train accuracy at the last evaluation.
    pub final_train_acc: Option<f64>,
    /// Test accuracy at the last evaluation.
    pub final_test_acc: Option<f64>,
    /// Best train accuracy over the evaluations.
    pub best_train_acc: Option<f64>,
    /// Best test accuracy over the evaluations.
    pub best_test_acc: Option<f64>,
    /// First evaluated step with train accuracy ≥ 95 %.
    pub memorization_step: Option<u64>,
    /// First evaluated step with test accuracy ≥ 95 % (grokking time).
    pub grok_step: Option<u64>,
    /// Normalized margin over the training pairs at the last evaluation.
    pub margin: Option<f64>,
    /// γ* of the setup, where the theory gives one.
    pub gamma_star: Option<f64>,
    /// Regularizer value at the last evaluation.
    pub reg_loss: Option<f64>,
    /// Frequencies with at least one sinusoidal neuron in the final weights.
    pub freqs_used: Vec<usize>,
    /// Share of neurons that are sinusoidal (one frequency holds ≥ 90 % of their power).
    pub sinusoidal_share: Option<f64>,
    /// Step whose loss was not finite, for a diverged model.
    pub diverged_step: Option<u64>,
    /// Step early stopping froze it at (`train.early_stop_patience`), if it did; its
    /// final metrics are those of that step.
    #[serde(default)]
    pub stop_step: Option<u64>,
    /// The category from the sweep file's thresholds.
    pub category: Category,
}

/// The per-model metrics a diagram can show, in the tables' column order.
pub const METRICS: [&str; 16] = [
    "steps",
    "final_train_loss",
    "final_test_loss",
    "final_train_acc",
    "final_test_acc",
    "best_train_acc",
    "best_test_acc",
    "memorization_step",
    "grok_step",
    "margin",
    "gamma_ratio",
    "reg_loss",
    "n_freqs_used",
    "sinusoidal_share",
    "diverged_step",
    "stop_step",
];

impl ModelRow {
    /// A metric by name (see [`METRICS`]): None when the model has no value for it.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let step = |s: Option<u64>| s.map(|s| s as f64);
        match name {
            "steps" => Some(self.steps as f64),
            "final_train_loss" => self.final_train_loss,
            "final_test_loss" => self.final_test_loss,
            "final_train_acc" => self.final_train_acc,
            "final_test_acc" => self.final_test_acc,
            "best_train_acc" => self.best_train_acc,
            "best_test_acc" => self.best_test_acc,
            "memorization_step" => step(self.memorization_step),
            "grok_step" => step(self.grok_step),
            "margin" => self.margin,
            "gamma_ratio" => self.margin.zip(self.gamma_star).map(|(m, g)| m / g),
            "reg_loss" => self.reg_loss,
            "n_freqs_used" => Some(self.freqs_used.len() as f64),
            "sinusoidal_share" => self.sinusoidal_share,
            "diverged_step" => step(self.diverged_step),
            "stop_step" => step(self.stop_step),
            _ => None,
        }
    }

    /// A swept key's value at this model.
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// What a batch knows about one of its models when it is done.
pub struct ModelOutcome<'a> {
    /// Point id, group, batch and swept settings.
    pub model: usize,
    /// Shape group.
    pub group: usize,
    /// Batch index.
    pub batch: usize,
    /// Swept settings.
    pub settings: Vec<(String, String)>,
    /// Its evaluations in step order (`model` = the point id).
    pub history: &'a [MetricsRecord],
    /// Final weights and the model's index in them (None if it has no checkpoint).
    pub weights: Option<(&'a Weights<f64>, usize)>,
    /// The step it diverged at, if it did.
    pub diverged_step: Option<u64>,
}

/// Accuracy thresholds of the categories.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    /// Final train accuracy from which a model fits its training set.
    pub train_acc: f64,
    /// Final test accuracy from which it generalizes.
    pub test_acc: f64,
}

/// The category of a model: diverged; else fails below the train threshold; else
/// generalizes when its test accuracy (its train accuracy when it trains on the whole
/// table) reaches the test threshold; else memorizes.
pub fn categorize(row: &ModelRow, t: Thresholds) -> Category {
    if row.diverged_step.is_some() {
        return Category::Diverged;
    }
    let train = row.final_train_acc.unwrap_or(0.0);
    if train < t.train_acc {
        return Category::Fails;
    }
    let test = row.final_test_acc.unwrap_or(train);
    if test >= t.test_acc {
        Category::Generalizes
    } else {
        Category::Memorizes
    }
}

/// The rows of a batch's models (frequencies from one batched transform of their weights
/// in `basis`, the batch's task basis).
pub fn rows(outcomes: &[ModelOutcome], basis: &Basis, t: Thresholds) -> Result<Vec<ModelRow>> {
    let snapshots: Vec<(&Weights<f64>, usize)> =
        outcomes.iter().filter_map(|o| o.weights).collect();
    let mut spectra = basis.spectra_many(&snapshots)?.into_iter();
    let mut rows = Vec::with_capacity(outcomes.len());
    for o in outcomes {
        let summary = match o.weights {
            Some(_) => spectra.next().map(|s| {
                summarize(
                    &neuron_features_with(&s, basis.invariant(), DEFAULT_THRESHOLD),
                    basis.max_freq(),
                    DEFAULT_THRESHOLD,
                )
            }),
            None => None,
        };
        let last = o.history.last();
        let best =
            |f: fn(&MetricsRecord) -> Option<f64>| o.history.iter().filter_map(f).reduce(f64::max);
        let st = stages(o.history.iter().map(|r| (r.step, r.train_acc, r.test_acc)));
        let stop_step = last.and_then(|r| r.stopped_at);
        let mut row = ModelRow {
            model: o.model,
            group: o.group,
            batch: o.batch,
            settings: o.settings.clone(),
            steps: o
                .diverged_step
                .or(stop_step)
                .or(last.map(|r| r.step))
                .unwrap_or_default(),
            final_train_loss: last.and_then(|r| r.train_loss),
            final_test_loss: last.and_then(|r| r.test_loss),
            final_train_acc: last.and_then(|r| r.train_acc),
            final_test_acc: last.and_then(|r| r.test_acc),
            best_train_acc: best(|r| r.train_acc),
            best_test_acc: best(|r| r.test_acc),
            memorization_step: st.memorized,
            grok_step: st.generalized,
            margin: last.and_then(|r| r.margin),
            gamma_star: last.and_then(|r| r.gamma_star),
            reg_loss: last.and_then(|r| r.reg_loss),
            freqs_used: summary
                .as_ref()
                .map(|s| s.freqs_used.clone())
                .unwrap_or_default(),
            sinusoidal_share: summary.as_ref().map(|s| s.sinusoidal_share),
            diverged_step: o.diverged_step,
            stop_step,
            category: Category::Fails,
        };
        row.category = categorize(&row, t);
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_follow_the_thresholds() {
        let t = Thresholds {
            train_acc: 0.95,
            test_acc: 0.9,
        };
        let mut row = ModelRow {
            model: 0,
            group: 0,
            batch: 0,
            settings: vec![],
            steps: 10,
            final_train_loss: None,
            final_test_loss: None,
            final_train_acc: Some(1.0),
            final_test_acc: Some(0.5),
            best_train_acc: None,
            best_test_acc: None,
            memorization_step: None,
            grok_step: None,
            margin: None,
            gamma_star: None,
            reg_loss: None,
            freqs_used: vec![],
            sinusoidal_share: None,
            diverged_step: None,
            stop_step: None,
            category: Category::Fails,
        };
        assert_eq!(categorize(&row, t), Category::Memorizes);
        row.final_test_acc = Some(0.9);
        assert_eq!(categorize(&row, t), Category::Generalizes);
        row.final_train_acc = Some(0.94);
        assert_eq!(categorize(&row, t), Category::Fails);
        row.final_test_acc = None;
        row.final_train_acc = Some(1.0);
        assert_eq!(categorize(&row, t), Category::Generalizes);
        row.diverged_step = Some(3);
        assert_eq!(categorize(&row, t), Category::Diverged);
        for m in METRICS {
            let _ = row.metric(m);
        }
        assert_eq!(row.metric("steps"), Some(10.0));
    }
}
