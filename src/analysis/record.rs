//! `RUN/spectra.jsonl`: a compact per-neuron spectrum summary written during training,
//! so the evolution of the Fourier features can be plotted without keeping every
//! checkpoint.
//!
//! One line per (step, model), arrays indexed by neuron (struct of arrays, so key names
//! are not repeated per neuron):
//!
//! ```json
//! {"step":1000,"model":0,"p":31,"margin":0.0012,"train_acc":1.0,"test_acc":null,
//!  "freq":[3,7,...],"frac":[0.9731,...],"sq_norm":[1.234,...],
//!  "power":[[0.0,0.0012,...],...]}
//! ```
//!
//! - `freq`: dominant frequency (k ≥ 1) of the combined u+v+w power,
//! - `frac`: share of that power at `freq`,
//! - `sq_norm`: ‖u_i‖² + ‖v_i‖² + ‖w_i‖² (4 significant digits),
//! - `power`: the combined power per frequency 0..=⌊p/2⌋ as shares of the neuron's total
//!   (so it is scale-free; multiply by `sq_norm` for absolute power).
//!
//! Shares are rounded to 1e-4: enough for heat maps and participation ratios, and it
//! keeps a p = 113, m = 512 record near 150 kB.

use super::fourier::{dominant, spectra, spectra_many, FourierPlan, ModelSpectra};
use super::jsonl;
use crate::error::{Error, Result};
use crate::model::Weights;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// File name inside a run directory.
pub const SPECTRA_FILE: &str = "spectra.jsonl";

/// One snapshot of one model's per-neuron spectra.
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

/// Optional scalars stored with a record.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RecordMetrics {
    /// Normalized margin.
    pub margin: Option<f64>,
    /// Accuracy on the training pairs, when known.
    pub train_acc: Option<f64>,
    /// Accuracy on the held-out pairs (None without a split).
    pub test_acc: Option<f64>,
}

fn round_share(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

fn round_sig4(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    format!("{x:.3e}").parse().unwrap_or(x)
}

impl SpectraRecord {
    /// The record of model `model` of `weights` at `step`.
    pub fn from_weights(
        plan: &FourierPlan,
        step: u64,
        weights: &Weights<f64>,
        model: usize,
    ) -> Result<SpectraRecord> {
        Ok(SpectraRecord::from_spectra(
            &spectra(plan, weights, model)?,
            step,
            model,
        ))
    }

    /// The record of spectra already computed.
    pub fn from_spectra(s: &ModelSpectra, step: u64, model: usize) -> SpectraRecord {
        let m = s.width;
        let mut rec = SpectraRecord {
            step,
            model,
            p: s.p,
            margin: None,
            train_acc: None,
            test_acc: None,
            freq: Vec::with_capacity(m),
            frac: Vec::with_capacity(m),
            sq_norm: Vec::with_capacity(m),
            power: Vec::with_capacity(m),
        };
        for i in 0..m {
            let power = s.combined_power(i);
            let total: f64 = power.iter().sum();
            let (k, frac) = dominant(&power);
            rec.freq.push(k);
            rec.frac.push(round_share(frac));
            rec.sq_norm.push(round_sig4(total));
            rec.power.push(
                power
                    .iter()
                    .map(|&x| {
                        if total > 0.0 {
                            round_share(x / total)
                        } else {
                            0.0
                        }
                    })
                    .collect(),
            );
        }
        rec
    }

    /// The record with `metrics` stored alongside (non-finite values dropped).
    pub fn with_metrics(mut self, metrics: RecordMetrics) -> SpectraRecord {
        self.margin = metrics.margin.filter(|x| x.is_finite());
        self.train_acc = metrics.train_acc.filter(|x| x.is_finite());
        self.test_acc = metrics.test_acc.filter(|x| x.is_finite());
        self
    }

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

/// Appends [`SpectraRecord`]s to `RUN/spectra.jsonl`, one whole line per write.
pub struct SpectraRecorder {
    path: PathBuf,
    file: File,
    plan: FourierPlan,
}

impl SpectraRecorder {
    /// Opens (creating if needed) `run_dir/spectra.jsonl` for appending, for models over
    /// Z_p.
    pub fn create(run_dir: &Path, p: usize) -> Result<SpectraRecorder> {
        let path = run_dir.join(SPECTRA_FILE);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok(SpectraRecorder {
            path,
            file,
            plan: FourierPlan::new(p)?,
        })
    }

    /// For a resumed run: drops the records past `step` (they belong to the abandoned
    /// continuation; rewritten atomically), then opens for appending.
    pub fn resume(run_dir: &Path, p: usize, step: u64) -> Result<SpectraRecorder> {
        let path = run_dir.join(SPECTRA_FILE);
        if let Ok(text) = std::fs::read_to_string(&path) {
            let kept: String = text
                .lines()
                .filter(|line| serde_json::from_str::<StepOnly>(line).is_ok_and(|r| r.step <= step))
                .flat_map(|line| [line, "\n"])
                .collect();
            crate::fsutil::write_atomic(&path, kept.as_bytes())?;
        }
        SpectraRecorder::create(run_dir, p)
    }

    /// The file appended to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends the record of model `model` of `weights` at `step`.
    pub fn append(&mut self, step: u64, weights: &Weights<f64>, model: usize) -> Result<()> {
        self.append_with(step, weights, model, RecordMetrics::default())
    }

    /// [`SpectraRecorder::append`] with margin and accuracies stored alongside.
    pub fn append_with(
        &mut self,
        step: u64,
        weights: &Weights<f64>,
        model: usize,
        metrics: RecordMetrics,
    ) -> Result<()> {
        let record =
            SpectraRecord::from_weights(&self.plan, step, weights, model)?.with_metrics(metrics);
        self.write(&record)
    }

    /// Appends one record per model of `weights` at `step`, `metrics[k]` stored with
    /// model k (missing entries store none). All models go through one parallel Fourier
    /// pass and all lines are written with one `write`.
    pub fn append_all(
        &mut self,
        step: u64,
        weights: &Weights<f64>,
        metrics: &[RecordMetrics],
    ) -> Result<()> {
        let jobs: Vec<(&Weights<f64>, usize)> = (0..weights.batch).map(|k| (weights, k)).collect();
        let mut text = String::new();
        for (k, s) in spectra_many(&self.plan, &jobs)?.iter().enumerate() {
            let record = SpectraRecord::from_spectra(s, step, k)
                .with_metrics(metrics.get(k).copied().unwrap_or_default());
            text.push_str(&self.line(&record)?);
        }
        self.write_text(&text)
    }

    /// Appends a ready record.
    pub fn write(&mut self, record: &SpectraRecord) -> Result<()> {
        let line = self.line(record)?;
        self.write_text(&line)
    }

    /// One record as a JSON line. Refuses non-finite numbers: JSON has none, and a
    /// `null` in an array would make the whole file unreadable.
    fn line(&self, record: &SpectraRecord) -> Result<String> {
        let finite = record.frac.iter().all(|x| x.is_finite())
            && record.sq_norm.iter().all(|x| x.is_finite())
            && record.power.iter().flatten().all(|x| x.is_finite());
        if !finite {
            return Err(Error::BadFile {
                path: self.path.clone(),
                reason: format!(
                    "spectra record of step {} model {} has non-finite values (diverged weights?)",
                    record.step, record.model
                ),
            });
        }
        let mut line = serde_json::to_string(record).map_err(|e| Error::BadFile {
            path: self.path.clone(),
            reason: format!("cannot serialize a spectra record: {e}"),
        })?;
        line.push('\n');
        Ok(line)
    }

    /// Writes whole lines with one `write_all` (regular files take it in one `write`, so
    /// a crash cuts at most the tail of the last line).
    fn write_text(&mut self, text: &str) -> Result<()> {
        self.file
            .write_all(text.as_bytes())
            .and_then(|_| self.file.flush())
            .map_err(|e| Error::io(&self.path, e))
    }
}

#[derive(Deserialize)]
struct StepOnly {
    step: u64,
}

/// Reads and checks every record of a spectra file.
pub fn read(path: &Path) -> Result<Vec<SpectraRecord>> {
    let records: Vec<SpectraRecord> = jsonl::read(path)?;
    for r in &records {
        r.validate(path)?;
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding() {
        assert_eq!(round_share(0.123456), 0.1235);
        assert_eq!(round_sig4(123456.0), 123500.0);
        assert_eq!(round_sig4(0.00012345), 0.0001234);
        assert_eq!(round_sig4(0.0), 0.0);
    }

    #[test]
    fn append_read_resume() {
        let dir = tempfile::tempdir().unwrap();
        let w = crate::analysis::construct::max_margin(7).unwrap();
        let mut rec = SpectraRecorder::create(dir.path(), 7).unwrap();
        for step in [0, 10, 20] {
            rec.append(step, &w, 0).unwrap();
        }
        drop(rec);
        let all = read(&dir.path().join(SPECTRA_FILE)).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[1].step, 10);
        assert_eq!(all[0].width(), 48);
        assert!(all[0].frac.iter().all(|&f| f == 1.0));
        assert_eq!(all[0].freq[..16], [1; 16]);
        let mut rec = SpectraRecorder::resume(dir.path(), 7, 10).unwrap();
        rec.append(15, &w, 0).unwrap();
        let steps: Vec<u64> = read(rec.path()).unwrap().iter().map(|r| r.step).collect();
        assert_eq!(steps, vec![0, 10, 15]);
    }
}
