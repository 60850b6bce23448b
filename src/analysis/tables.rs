//! The machine-readable outputs of an analysis: `summary.json` and the CSV tables
//! `neurons.csv`, `frequencies.csv`, `checkpoints.csv` and `timeline.csv`.
//!
//! Each table is one serde row type written with the `csv` crate, so a table's columns
//! are the fields of its row type, in order. Numbers are written with Rust's `{}`
//! formatting (shortest round-trip decimal, never an exponent), the format these files
//! have always had; a missing number is an empty cell.

use super::pipeline::RunAnalysis;
use super::progress::record_measures;
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use serde::{Serialize, Serializer};
use std::path::{Path, PathBuf};

pub use crate::layout::SUMMARY_FILE;

/// Every file [`write_tables`] writes, in the order it writes them.
pub const FILES: [&str; 5] = [
    SUMMARY_FILE,
    "neurons.csv",
    "frequencies.csv",
    "checkpoints.csv",
    "timeline.csv",
];

/// A number as Rust's `{}` writes it. The `csv` crate's own f64 format (ryu) writes
/// `0.0` and `1e-5` where these tables have always had `0` and `0.00001`.
struct Num(f64);

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// A number that may be missing: empty for `None` and for non-finite values.
struct Cell(Option<f64>);

impl Serialize for Cell {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self.0 {
            Some(v) if v.is_finite() => s.collect_str(&v),
            _ => s.serialize_str(""),
        }
    }
}

/// A row of `neurons.csv`: a neuron's final features and where it stood at init.
#[derive(Serialize)]
struct NeuronRow {
    model: usize,
    neuron: usize,
    freq: usize,
    fraction: Num,
    min_fraction: Num,
    freq_u: usize,
    freq_v: usize,
    freq_w: usize,
    fraction_u: Num,
    fraction_v: Num,
    fraction_w: Num,
    shared_freq: bool,
    theta_u: Num,
    theta_v: Num,
    theta_w: Num,
    /// Empty when the task has no phase invariant.
    residual: Cell,
    sq_norm: Num,
    /// Share of sq_norm outside the basis (input / output 0 of the log basis).
    excluded_share: Num,
    ipr: Num,
    sinusoidal: bool,
    init_strongest_freq: usize,
    /// Empty when the task has no phase invariant.
    init_aligned_freq: Option<usize>,
}

/// A row of `frequencies.csv`.
#[derive(Serialize)]
struct FrequencyRow {
    model: usize,
    freq: usize,
    neurons: usize,
    sinusoidal: usize,
    /// Share of Σ n_i, n_i = ‖u_i‖² + ‖v_i‖² + ‖w_i‖².
    norm_share: Num,
    /// Share of Σ n_i^{3/2} (the logit amplitude, equal across frequencies at max margin).
    amplitude_share: Num,
}

/// A row of `checkpoints.csv`.
#[derive(Serialize)]
struct CheckpointCsvRow {
    step: u64,
    model: usize,
    gamma: Cell,
    gamma_ratio: Cell,
    accuracy_all_pairs: Cell,
    sinusoidal_share: Num,
    shared_freq_share: Num,
    mean_ipr: Num,
    freqs_used: usize,
}

/// A row of `timeline.csv`.
#[derive(Serialize)]
struct TimelineRow {
    step: u64,
    model: usize,
    mean_ipr: Num,
    concentrated_share: Num,
    margin: Cell,
}

/// Writes `rows` as CSV text with a header of the row type's field names.
fn csv_text<R: Serialize>(name: &str, rows: impl IntoIterator<Item = R>) -> Result<String> {
    let bad = |e: &dyn std::fmt::Display| Error::BadFile {
        path: name.into(),
        reason: format!("cannot write the table: {e}"),
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    for row in rows {
        w.serialize(row).map_err(|e| bad(&e))?;
    }
    let bytes = w.into_inner().map_err(|e| bad(&e))?;
    String::from_utf8(bytes).map_err(|e| bad(&e))
}

/// `neurons.csv`: the final per-neuron table of every model.
pub fn neurons_csv(a: &RunAnalysis) -> Result<String> {
    let rows = a.neurons.iter().enumerate().flat_map(|(k, features)| {
        features.iter().map(move |f| NeuronRow {
            model: k,
            neuron: f.neuron,
            freq: f.freq,
            fraction: Num(f.fraction),
            min_fraction: Num(f.min_fraction),
            freq_u: f.freq_u,
            freq_v: f.freq_v,
            freq_w: f.freq_w,
            fraction_u: Num(f.fraction_u),
            fraction_v: Num(f.fraction_v),
            fraction_w: Num(f.fraction_w),
            shared_freq: f.shared_freq,
            theta_u: Num(f.theta_u),
            theta_v: Num(f.theta_v),
            theta_w: Num(f.theta_w),
            residual: Cell(f.residual),
            sq_norm: Num(f.sq_norm),
            excluded_share: Num(f.excluded_share),
            ipr: Num(f.ipr),
            sinusoidal: f.sinusoidal,
            init_strongest_freq: a.init[k].strongest[f.neuron],
            init_aligned_freq: a.init[k].aligned.as_ref().map(|v| v[f.neuron]),
        })
    });
    csv_text("neurons.csv", rows)
}

/// `frequencies.csv`: neurons per dominant frequency and the shares of Σ n_i and of
/// Σ n_i^{3/2} they hold, final checkpoint (frequencies of the analysis basis).
pub fn frequencies_csv(a: &RunAnalysis) -> Result<String> {
    let rows = a.summary.models.iter().flat_map(|m| {
        let f = &m.frequencies;
        (1..=f.max_freq).map(move |k| FrequencyRow {
            model: m.model,
            freq: k,
            neurons: f.neurons_per_freq[k],
            sinusoidal: f.sinusoidal_per_freq[k],
            norm_share: Num(f.norm_share_per_freq.get(k).copied().unwrap_or(0.0)),
            amplitude_share: Num(f.amplitude_share_per_freq.get(k).copied().unwrap_or(0.0)),
        })
    });
    csv_text("frequencies.csv", rows)
}

/// `checkpoints.csv`: margin and Fourier measures of every checkpoint.
pub fn checkpoints_csv(a: &RunAnalysis) -> Result<String> {
    let rows = a.checkpoints.iter().map(|r| CheckpointCsvRow {
        step: r.step,
        model: r.model,
        gamma: Cell(Some(r.gamma)),
        gamma_ratio: Cell(r.gamma_ratio),
        accuracy_all_pairs: Cell(Some(r.accuracy)),
        sinusoidal_share: Num(r.sinusoidal_share),
        shared_freq_share: Num(r.shared_freq_share),
        mean_ipr: Num(r.mean_ipr),
        freqs_used: r.freqs_used,
    });
    csv_text("checkpoints.csv", rows)
}

/// `timeline.csv`: per spectra record, mean IPR and share of neurons whose combined
/// power is concentrated above the threshold.
pub fn timeline_csv(a: &RunAnalysis) -> Result<String> {
    let rows = a.timeline.iter().flatten().map(|r| {
        let (ipr, share) = record_measures(r, a.summary.threshold);
        TimelineRow {
            step: r.step,
            model: r.model,
            mean_ipr: Num(ipr),
            concentrated_share: Num(share),
            margin: Cell(r.margin),
        }
    });
    csv_text("timeline.csv", rows)
}

/// `summary.json`: [`RunAnalysis::summary`], pretty-printed (what `analyze --json`
/// prints).
pub fn summary_json(a: &RunAnalysis) -> Result<String> {
    serde_json::to_string_pretty(&a.summary)
        .map(|json| json + "\n")
        .map_err(|e| Error::BadFile {
            path: SUMMARY_FILE.into(),
            reason: format!("cannot serialize the summary: {e}"),
        })
}

/// Writes [`FILES`] into `out` (created if needed), each atomically; returns the paths
/// written. Other files in `out` are left alone.
pub fn write_tables(a: &RunAnalysis, out: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let texts = [
        summary_json(a)?,
        neurons_csv(a)?,
        frequencies_csv(a)?,
        checkpoints_csv(a)?,
        timeline_csv(a)?,
    ];
    let mut written = Vec::with_capacity(FILES.len());
    for (name, text) in FILES.iter().zip(texts) {
        let path = out.join(name);
        write_atomic(&path, text.as_bytes())?;
        written.push(path);
    }
    Ok(written)
}
