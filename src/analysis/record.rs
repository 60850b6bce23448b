//! `RUN/spectra.jsonl`: a compact per-neuron spectrum summary written during training,
//! so the evolution of the Fourier features can be plotted without keeping every
//! checkpoint. The record type lives in [`crate::layout`] (the run-directory format);
//! this module computes records and implements the run loop's
//! [`crate::layout::SpectraSink`] ([`open_sink`]).
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
//!
//! Training records the DFT over Z_p whatever the task (the run loop hands the writer
//! only p); the analysis of a·b and a/b, whose basis is the discrete log over Z_{p−1},
//! takes its timeline from the checkpoints instead ([`super::pipeline`]).

use super::fourier::{dominant, spectra, spectra_many, FourierPlan, ModelSpectra};
use super::jsonl;
use crate::error::{Error, Result};
use crate::layout::{records_through, SpectraSink};
use crate::model::Weights;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

pub use crate::layout::{RecordMetrics, SpectraRecord, SPECTRA_FILE};

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

    /// The record of spectra already computed. Its `p` is the size of the group the
    /// spectra were taken over (the modulus for the DFT over Z_p, p − 1 for the
    /// discrete-log basis), so its power rows have `p/2 + 1` entries either way.
    pub fn from_spectra(s: &ModelSpectra, step: u64, model: usize) -> SpectraRecord {
        let m = s.width;
        let mut rec = SpectraRecord {
            step,
            model,
            p: s.n,
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
            crate::fsutil::write_atomic(&path, records_through(&text, step).as_bytes())?;
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

impl SpectraSink for SpectraRecorder {
    fn append_all(
        &mut self,
        step: u64,
        weights: &Weights<f64>,
        metrics: &[RecordMetrics],
    ) -> Result<()> {
        SpectraRecorder::append_all(self, step, weights, metrics)
    }
}

/// The spectra writer a front end hands the run loop
/// ([`crate::run::RunOptions::spectra`]): a [`SpectraRecorder`] appending to
/// `run_dir/spectra.jsonl`. Its type is [`crate::layout::OpenSpectraSink`].
pub fn open_sink(run_dir: &Path, p: usize) -> Result<Box<dyn SpectraSink>> {
    Ok(Box::new(SpectraRecorder::create(run_dir, p)?))
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
