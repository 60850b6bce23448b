//! The run-directory format, in one place: the names of its files and folders and the
//! records of its JSON-lines files. The training loop ([`crate::run`]) writes it, the
//! analysis ([`crate::analysis`]) reads it, and neither has to know where the other keeps
//! its names.
//!
//! ```text
//! RUN/config.toml                              the resolved RunConfig
//! RUN/metrics.jsonl                            one MetricsRecord per (evaluation, model)
//! RUN/spectra.jsonl                            one SpectraRecord per (record step, model)
//! RUN/checkpoints/step-NNNNNNNN.safetensors    crate::checkpoint files
//! RUN/train.lock                               held by the process training the run
//! RUN/analysis/                                what `analyze` writes by default
//! ```
//!
//! The JSON-lines files are append-only, one whole line per record, so a crash can at
//! worst cut off the last line (readers skip it, a resume drops it).

use crate::error::{Error, Result};
use crate::model::Weights;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The resolved config of a run (what `--resume` and the analysis read back).
pub const CONFIG_FILE: &str = "config.toml";
/// The evaluation log: one [`MetricsRecord`] per line.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// Per-neuron spectra over training: one [`SpectraRecord`] per line.
pub const SPECTRA_FILE: &str = "spectra.jsonl";
/// The folder of checkpoints, named by [`checkpoint_file_name`].
pub const CHECKPOINTS_DIR: &str = "checkpoints";
/// Start of a checkpoint's file name (then the 8-digit step).
pub const CHECKPOINT_PREFIX: &str = "step-";
/// End of a checkpoint's file name.
pub const CHECKPOINT_SUFFIX: &str = ".safetensors";
/// The file a training process holds an exclusive OS lock on (and writes its pid into)
/// while it writes the run directory. It stays after the process ends: the lock, not the
/// file, says whether the run is busy, so a killed process never leaves a stale lock.
pub const LOCK_FILE: &str = "train.lock";
/// The folder `analyze` writes a run's analysis into by default.
pub const ANALYSIS_DIR: &str = "analysis";
/// The analysis summary inside [`ANALYSIS_DIR`] (also what marks a folder as an earlier
/// analysis that `analyze` may replace).
pub const SUMMARY_FILE: &str = "summary.json";

/// `step-00001000.safetensors`: 8-digit zero-padded steps, so names sort by step up to
/// 10⁸.
pub fn checkpoint_file_name(step: u64) -> String {
    format!("{CHECKPOINT_PREFIX}{step:08}{CHECKPOINT_SUFFIX}")
}

/// The step a checkpoint's file name stands for (None for any other name).
pub fn checkpoint_step(file_name: &str) -> Option<u64> {
    file_name
        .strip_prefix(CHECKPOINT_PREFIX)?
        .strip_suffix(CHECKPOINT_SUFFIX)?
        .parse()
        .ok()
}

/// One line of `metrics.jsonl`, written by the run loop and read by the analysis.
///
/// Fields serialize in this order, `None` as `null`. `step` counts the steps taken, `lr`
/// is the learning rate in effect at that step (the one the next step uses), `test_*` are
/// null without a split, `margin` is the normalized margin over the training pairs
/// ([`crate::theory::normalized_margin`]), `gamma_star` is null where the formula does
/// not apply, `reg_loss` is the regularizer's value and `elapsed_s` the training wall
/// time so far (summed over resumptions). Non-finite numbers are written as null. Missing
/// fields read as `None` (model 0), so files written by hand or by older versions load.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsRecord {
    /// Steps taken when evaluated.
    pub step: u64,
    /// Index of the model in the batch.
    #[serde(default)]
    pub model: usize,
    /// Learning rate in effect.
    pub lr: Option<f64>,
    /// Data loss on the training pairs.
    pub train_loss: Option<f64>,
    /// Accuracy on the training pairs.
    pub train_acc: Option<f64>,
    /// Loss on the held-out pairs (None without a split).
    pub test_loss: Option<f64>,
    /// Accuracy on the held-out pairs (None without a split).
    pub test_acc: Option<f64>,
    /// Normalized margin over the training pairs.
    pub margin: Option<f64>,
    /// The theory's γ* (None where it does not apply).
    pub gamma_star: Option<f64>,
    /// Value of the regularizer.
    pub reg_loss: Option<f64>,
    /// Training wall time so far, over all sessions of the run.
    pub elapsed_s: Option<f64>,
    /// The step at which early stopping froze this model (`train.early_stop_patience`),
    /// on every record from then on; absent while it trains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<u64>,
    /// Multi-head tasks (`task.heads`): each head's own mean loss on the training pairs,
    /// in the order of the head layout (the task's primes, ascending); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_head_loss: Option<Vec<Option<f64>>>,
    /// Each head's accuracy on the training pairs (multi-head tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_head_acc: Option<Vec<Option<f64>>>,
    /// Each head's loss on the held-out pairs (multi-head tasks with a split).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_head_loss: Option<Vec<Option<f64>>>,
    /// Each head's accuracy on the held-out pairs (multi-head tasks with a split).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_head_acc: Option<Vec<Option<f64>>>,
}

/// One snapshot of one model's per-neuron spectra: a line of `spectra.jsonl`. The
/// analysis computes them ([`crate::analysis::record`]); arrays are indexed by neuron.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpectraRecord {
    /// Training step of the snapshot.
    pub step: u64,
    /// Index of the model in the batch.
    pub model: usize,
    /// The modulus (power rows have `p/2 + 1` entries).
    pub p: usize,
    /// Normalized margin, when the caller knows it.
    #[serde(default)]
    pub margin: Option<f64>,
    #[serde(default)]
    /// Accuracy on the training pairs, when known.
    pub train_acc: Option<f64>,
    #[serde(default)]
    /// Accuracy on the held-out pairs (None without a split).
    pub test_acc: Option<f64>,
    /// Dominant frequency (k ≥ 1) of each neuron's combined power.
    pub freq: Vec<usize>,
    /// Share of each neuron's power at `freq` (rounded to 1e-4).
    pub frac: Vec<f64>,
    /// ‖u_i‖² + ‖v_i‖² + ‖w_i‖² (4 significant digits).
    pub sq_norm: Vec<f64>,
    /// Per neuron, the combined power per frequency as shares of its total.
    pub power: Vec<Vec<f64>>,
}

impl SpectraRecord {
    /// Number of neurons.
    pub fn width(&self) -> usize {
        self.freq.len()
    }

    /// Checks the arrays agree with each other and with p (a hand-edited or foreign
    /// file would otherwise panic the plotting code).
    pub fn validate(&self, path: &Path) -> Result<()> {
        let m = self.freq.len();
        let nf = self.p / 2 + 1;
        let bad = |reason: String| Error::BadFile {
            path: path.into(),
            reason: format!(
                "record of step {} model {}: {reason}",
                self.step, self.model
            ),
        };
        if self.frac.len() != m || self.sq_norm.len() != m || self.power.len() != m {
            return Err(bad("freq, frac, sq_norm and power differ in length".into()));
        }
        if let Some(row) = self.power.iter().find(|r| r.len() != nf) {
            return Err(bad(format!(
                "a power row has {} entries, p = {} needs {nf}",
                row.len(),
                self.p
            )));
        }
        if let Some(k) = self.freq.iter().find(|&&k| k >= nf) {
            return Err(bad(format!("frequency {k} is above p/2 = {}", self.p / 2)));
        }
        Ok(())
    }
}

/// Optional scalars stored with a [`SpectraRecord`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RecordMetrics {
    /// Normalized margin.
    pub margin: Option<f64>,
    /// Accuracy on the training pairs, when known.
    pub train_acc: Option<f64>,
    /// Accuracy on the held-out pairs (None without a split).
    pub test_acc: Option<f64>,
}

/// What the run loop hands the weights to every `train.spectra_every` steps: a writer of
/// `spectra.jsonl`. The loop cannot compute spectra itself (that is the analysis, which
/// sits above it), so its caller passes one in; `crate::analysis::record::open_sink`
/// is the implementation.
pub trait SpectraSink {
    /// Appends one record per model of `weights` at `step`, `metrics[k]` stored with
    /// model k, as whole lines (a crash cuts at most the last one).
    fn append_all(
        &mut self,
        step: u64,
        weights: &Weights<f64>,
        metrics: &[RecordMetrics],
    ) -> Result<()>;
}

/// Opens the [`SpectraSink`] of the run directory `dir` for models over Z_p, appending to
/// its `spectra.jsonl` (created if missing).
pub type OpenSpectraSink = fn(dir: &Path, p: usize) -> Result<Box<dyn SpectraSink>>;

/// The lines of a JSON-lines file whose record has `step <= step`, each ending in a
/// newline. Lines that do not parse as a record with a step (a line cut short by a crash)
/// are dropped. What a resume keeps of a file it continues.
pub fn records_through(text: &str, step: u64) -> String {
    #[derive(Deserialize)]
    struct StepOnly {
        step: u64,
    }
    text.lines()
        .filter(|line| serde_json::from_str::<StepOnly>(line).is_ok_and(|r| r.step <= step))
        .flat_map(|line| [line, "\n"])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_names_round_trip() {
        assert_eq!(checkpoint_file_name(1000), "step-00001000.safetensors");
        assert_eq!(checkpoint_step("step-00001000.safetensors"), Some(1000));
        assert_eq!(checkpoint_step("step-00001000.safetensors.tmp"), None);
        assert_eq!(checkpoint_step("notes.txt"), None);
    }

    #[test]
    fn records_through_keeps_earlier_lines_and_drops_torn_ones() {
        let text = "{\"step\":0}\n{\"step\":10}\n{\"step\":20}\n{\"st";
        assert_eq!(records_through(text, 10), "{\"step\":0}\n{\"step\":10}\n");
    }

    #[test]
    fn a_metrics_record_serializes_every_field_in_order() {
        let r = MetricsRecord {
            step: 5,
            lr: Some(0.5),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            "{\"step\":5,\"model\":0,\"lr\":0.5,\"train_loss\":null,\"train_acc\":null,\
             \"test_loss\":null,\"test_acc\":null,\"margin\":null,\"gamma_star\":null,\
             \"reg_loss\":null,\"elapsed_s\":null}"
        );
        let back: MetricsRecord = serde_json::from_str("{\"step\":5,\"lr\":0.5}").unwrap();
        assert_eq!(back, r);
    }
}
