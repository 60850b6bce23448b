//! `metrics.jsonl`: what one evaluation measured, its lines, and cutting the run's logs
//! back to a checkpoint on resume.

use super::ModelSummary;
use crate::engine::{HeadStats, PassStats};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::layout::{records_through, MetricsRecord, METRICS_FILE};
use crate::train::Evaluation;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The metrics of one evaluation, per model.
pub(super) struct Measured {
    /// Loss, accuracy, margin, regularizer value and learning rate of every model.
    pub eval: Evaluation,
    /// The step each model was stopped early at (None: training, or no early stop).
    pub stopped: Vec<Option<u64>>,
}

/// A number for JSON: non-finite becomes null.
fn num(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// One figure per head of a multi-head pass (None for a plain or an empty pass).
fn head_figures(s: &PassStats, f: impl Fn(&HeadStats) -> f64) -> Option<Vec<Option<f64>>> {
    (!s.heads.is_empty() && s.count > 0).then(|| s.heads.iter().map(|h| num(f(h))).collect())
}

impl Measured {
    /// One `metrics.jsonl` record per model.
    fn records(&self, elapsed_s: f64) -> impl Iterator<Item = MetricsRecord> + '_ {
        let e = &self.eval;
        e.train.iter().enumerate().map(move |(k, train)| {
            let test = e.test.as_ref().map(|t| &t[k]);
            MetricsRecord {
                step: e.step,
                model: k,
                lr: num(e.lr[k]),
                train_loss: num(train.loss),
                train_acc: num(train.accuracy()),
                test_loss: test.and_then(|t| num(t.loss)),
                test_acc: test.and_then(|t| num(t.accuracy())),
                margin: num(e.margin[k]),
                gamma_star: e.gamma_star[k].and_then(num),
                reg_loss: num(e.reg_loss[k]),
                elapsed_s: num(elapsed_s),
                stopped_at: self.stopped.get(k).copied().flatten(),
                train_head_loss: head_figures(train, |h| h.loss),
                train_head_acc: head_figures(train, |h| h.correct as f64 / train.count as f64),
                test_head_loss: test.and_then(|t| head_figures(t, |h| h.loss)),
                test_head_acc: test
                    .and_then(|t| head_figures(t, |h| h.correct as f64 / t.count as f64)),
            }
        })
    }

    /// The first model whose loss (data + regularizer) is not finite.
    pub fn non_finite(&self) -> Option<(usize, f64)> {
        self.eval
            .train
            .iter()
            .zip(&self.eval.reg_loss)
            .map(|(s, r)| s.loss + r)
            .enumerate()
            .find(|(_, l)| !l.is_finite())
    }

    /// The run's final metrics per model.
    pub fn summaries(&self) -> Vec<ModelSummary> {
        let e = &self.eval;
        (0..e.train.len())
            .map(|k| ModelSummary {
                train_loss: e.train[k].loss,
                train_acc: e.train[k].accuracy(),
                test_loss: e.test_of(k).map(|t| t.loss),
                test_acc: e.test_of(k).map(|t| t.accuracy()),
                margin: e.margin[k],
                reg_loss: e.reg_loss[k],
                gamma_star: e.gamma_star[k],
                stopped_at: self.stopped.get(k).copied().flatten(),
            })
            .collect()
    }
}

/// `metrics.jsonl` of a run, open for appending.
pub(super) struct MetricsLog {
    path: PathBuf,
    file: File,
}

impl MetricsLog {
    /// Opens (creating if needed) `dir/metrics.jsonl` for appending.
    pub fn open(dir: &Path) -> Result<MetricsLog> {
        let path = dir.join(METRICS_FILE);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok(MetricsLog { path, file })
    }

    /// Appends the lines of one evaluation with one `write` (a crash cuts at most the
    /// tail of the last line).
    pub fn append(&mut self, m: &Measured, elapsed_s: f64) -> Result<()> {
        let mut text = String::new();
        for record in m.records(elapsed_s) {
            text.push_str(&serde_json::to_string(&record).expect("plain numbers serialize"));
            text.push('\n');
        }
        self.file
            .write_all(text.as_bytes())
            .and_then(|_| self.file.flush())
            .map_err(|e| Error::io(&self.path, e))
    }
}

/// Drops the records of the JSON-lines file `path` past `step` (they belong to the
/// continuation a resume abandons; rewritten atomically, and only when something goes)
/// and returns what is kept. A missing or unreadable file keeps nothing and is left as
/// it is.
pub(super) fn cut_back(path: &Path, step: u64) -> Result<String> {
    let Ok(previous) = std::fs::read_to_string(path) else {
        return Ok(String::new());
    };
    let kept = records_through(&previous, step);
    if kept != previous {
        write_atomic(path, kept.as_bytes())?;
    }
    Ok(kept)
}

/// The largest `elapsed_s` of metrics lines (the wall time of the sessions so far).
pub(super) fn max_elapsed(text: &str) -> f64 {
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|v| v.get("elapsed_s").and_then(|e| e.as_f64()))
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_earlier_lines_and_drops_torn_ones() {
        let text = "{\"step\":0,\"elapsed_s\":0.0}\n{\"step\":100,\"elapsed_s\":1.5}\n\
                    {\"step\":200,\"elapsed_s\":3.0}\n{\"step\":3";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(METRICS_FILE);
        std::fs::write(&path, text).unwrap();
        let kept = cut_back(&path, 100).unwrap();
        assert_eq!(
            kept,
            "{\"step\":0,\"elapsed_s\":0.0}\n{\"step\":100,\"elapsed_s\":1.5}\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), kept);
        assert_eq!(max_elapsed(&kept), 1.5);
        assert_eq!(cut_back(&dir.path().join("missing"), 100).unwrap(), "");
    }
}
