//! The exact max-margin solution of addition mod p with x² activation (theory.md §2):
//! a known answer for the engine (logits), the margin code (γ = γ*) and the Fourier
//! analysis (every frequency used, every neuron a pure sinusoid, θu + θv = θw).

use super::outdir;
use super::pipeline::{self, Options, RunAnalysis};
use super::record::SpectraRecorder;
use super::text::pct;
use crate::checkpoint;
use crate::config::{RunConfig, TaskConfig};
use crate::engine::{Backend, CoreSpec};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::layout::{self, MetricsRecord};
use crate::model::{Activation, Weights};
use crate::task::Op;
use crate::theory;
use std::f64::consts::{FRAC_PI_2, PI};
use std::path::{Path, PathBuf};

/// Width of the construction: 16 neurons per frequency 1..=(p−1)/2.
pub fn width(p: usize) -> usize {
    8 * (p - 1)
}

fn check_p(p: usize) -> Result<()> {
    if p < 3 || p.is_multiple_of(2) {
        return Err(Error::config(
            "p",
            p,
            "the max-margin construction needs an odd modulus p >= 3 (frequencies 1..(p-1)/2 must pair up)",
        ));
    }
    Ok(())
}

/// The construction's weights for odd p ≥ 3 (one model, width 8(p−1)).
///
/// For each frequency ζ = 1..=(p−1)/2 and each (θu, θv) ∈ {0, π/2, π, 3π/2}², in that
/// order (ζ outermost, θv innermost), one neuron with
/// `u[a] = cos(θu + 2πζa/p)`, `v[b] = cos(θv + 2πζb/p)`, `w[c] = cos(θu + θv + 2πζc/p)`.
/// Summing the 16 phase pairs cancels every term but `8·cos(2πζ(a+b−c)/p)`, and summing
/// over ζ gives the logits `f_c(a,b) = 4p·1[c = a+b mod p] − 4`.
pub fn max_margin(p: usize) -> Result<Weights<f64>> {
    check_p(p)?;
    let m = width(p);
    let mut weights = Weights {
        batch: 1,
        n_in: p,
        n_out: p,
        width: m,
        u: vec![0.0; p * m],
        v: vec![0.0; p * m],
        w: vec![0.0; p * m],
    };
    let phases = [0.0, FRAC_PI_2, PI, 3.0 * FRAC_PI_2];
    let mut i = 0;
    for zeta in 1..=(p - 1) / 2 {
        for &tu in &phases {
            for &tv in &phases {
                for a in 0..p {
                    // Reduce ζ·a mod p first so the angle stays small and exact.
                    let t = 2.0 * PI * ((zeta * a) % p) as f64 / p as f64;
                    weights.u[a * m + i] = (tu + t).cos();
                    weights.v[a * m + i] = (tv + t).cos();
                    weights.w[a * m + i] = (tu + tv + t).cos();
                }
                i += 1;
            }
        }
    }
    debug_assert_eq!(i, m);
    Ok(weights)
}

/// The config of a constructed run: addition mod p, x², untied, width 8(p−1), f64, all
/// pairs, no training steps.
pub fn config(p: usize) -> Result<RunConfig> {
    check_p(p)?;
    let mut config = RunConfig {
        dtype: crate::kinds::Dtype::F64,
        task: TaskConfig {
            op: Op::Add,
            p,
            ..TaskConfig::default()
        },
        ..RunConfig::default()
    };
    config.model.width = width(p);
    config.model.activation = Activation::Square;
    config.model.tied = false;
    config.model.embed_dim = 0;
    config.train.steps = 0;
    config.validate()?;
    Ok(config)
}

/// Writes a run directory holding the construction: `config.toml`, the checkpoint at
/// step 0, one `metrics.jsonl` line (accuracy and normalized margin over all pairs) and
/// one `spectra.jsonl` record, so `analyze` and the engine load it like a trained run.
/// `backend` evaluates the margin that goes into `metrics.jsonl`.
pub fn write_run(backend: &dyn Backend<f64>, p: usize, dir: &Path) -> Result<()> {
    write_constructed_run(backend, &config(p)?, &max_margin(p)?, dir)
}

/// One model's score over every pair of its task.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Score {
    /// Accuracy over all pairs.
    pub accuracy: f64,
    /// Mean data loss over all pairs, of the config's loss.
    pub loss: f64,
    /// Normalized margin γ (the activation's degree).
    pub gamma: f64,
    /// γ* where the theory gives one.
    pub gamma_star: Option<f64>,
}

/// Evaluates every model of `weights` on every pair of `config`'s task with `backend`,
/// the loss being `config`'s (cross-entropy for the max-margin run, MSE for Gromov's).
pub(crate) fn evaluate_all_pairs(
    backend: &dyn Backend<f64>,
    config: &RunConfig,
    weights: &Weights<f64>,
) -> Result<Vec<Score>> {
    let task = config.build_task()?;
    let activation = config.model.activation;
    let core = CoreSpec {
        activation,
        loss: config.train.loss,
    };
    let gamma_star = super::margin::gamma_star(config);
    Ok(backend
        .evaluate(core, weights, &task.pairs)?
        .iter()
        .enumerate()
        .map(|(k, s)| Score {
            accuracy: s.accuracy(),
            loss: s.loss,
            gamma: theory::normalized_margin(s.min_margin, weights, k, activation),
            gamma_star,
        })
        .collect())
}

/// Writes constructed (untrained) `weights` as a step-0 run directory of `config` at
/// `dir`: `config.toml`, the checkpoint, one [`MetricsRecord`] per model (loss, accuracy
/// and normalized margin over all pairs, evaluated with `backend`) and one spectra record
/// per model.
pub(crate) fn write_constructed_run(
    backend: &dyn Backend<f64>,
    config: &RunConfig,
    weights: &Weights<f64>,
    dir: &Path,
) -> Result<()> {
    std::fs::create_dir_all(dir.join(layout::CHECKPOINTS_DIR)).map_err(|e| Error::io(dir, e))?;
    write_atomic(&dir.join(layout::CONFIG_FILE), config.to_toml().as_bytes())?;
    checkpoint::save_weights(&checkpoint::path_for(dir, 0), config, 0, weights)?;
    let mut lines = String::new();
    for (k, score) in evaluate_all_pairs(backend, config, weights)?
        .iter()
        .enumerate()
    {
        let record = MetricsRecord {
            step: 0,
            model: k,
            lr: Some(0.0),
            train_loss: Some(score.loss),
            train_acc: Some(score.accuracy),
            margin: Some(score.gamma),
            gamma_star: score.gamma_star,
            elapsed_s: Some(0.0),
            ..MetricsRecord::default()
        };
        let line = serde_json::to_string(&record).map_err(|e| Error::Backend(e.to_string()))?;
        lines.push_str(&line);
        lines.push('\n');
    }
    write_atomic(&dir.join(layout::METRICS_FILE), lines.as_bytes())?;
    if config.task.group.is_some() {
        // spectra.jsonl is over Z_p; a group's run is analyzed in its irreps from the
        // checkpoint, as a trained group run is.
        return Ok(());
    }
    let spectra = dir.join(super::record::SPECTRA_FILE);
    let _ = std::fs::remove_file(&spectra);
    SpectraRecorder::create(dir, config.task.p)?.append_all(0, weights, &[])
}

/// What `analyze construct` does: writes the construction of addition mod `p` as a run
/// directory at `out` (replacing what is there: check it with
/// [`outdir::check_new_run_dir`] first), analyzes it, writes the analysis into
/// `out/analysis` (with `pictures`, also the pictures and `index.html`) and measures
/// the known answers. Returns the analysis, the files written into `out/analysis` and
/// the known answers, which the caller checks with [`KnownAnswers::miss`].
pub fn write_and_analyze(
    backend: &dyn Backend<f64>,
    p: usize,
    out: &Path,
    options: &Options,
    pictures: bool,
) -> Result<(RunAnalysis, Vec<PathBuf>, KnownAnswers)> {
    outdir::replace_dir(out, |tmp| write_run(backend, p, tmp))?;
    let analysis = pipeline::analyze(backend, out, options)?;
    let files = outdir::write_analysis(&analysis, &out.join("analysis"), pictures)?;
    let known = KnownAnswers::of(&analysis).ok_or_else(|| Error::BadFile {
        path: out.into(),
        reason: "the constructed run has no model".into(),
    })?;
    Ok((analysis, files, known))
}

/// How far the analysis of a constructed run (model 0) is from the construction's
/// known answers: γ/γ* = 1, every frequency used, every neuron a pure sinusoid with
/// θu + θv = θw, every pair right.
#[derive(Clone, Debug, PartialEq)]
pub struct KnownAnswers {
    /// γ/γ* (NaN when the analysis has no γ*).
    pub ratio: f64,
    /// Frequencies without a sinusoidal neuron.
    pub freqs_missing: Vec<usize>,
    /// Frequencies 1..=max_freq in use, and how many.
    pub freqs_used: usize,
    /// ⌊p/2⌋.
    pub max_freq: usize,
    /// Neurons at frequency 1.
    pub neurons_per_freq: usize,
    /// Smallest power fraction at the neuron's frequency, over u, v, w and neurons.
    pub min_fraction: f64,
    /// Largest |θu + θv − θw| over neurons.
    pub max_residual: f64,
    /// Accuracy over all pairs.
    pub accuracy: f64,
}

/// Tolerance of [`KnownAnswers::hold`]: f64 round-off over sums of p² terms.
const TOLERANCE: f64 = 1e-9;

impl KnownAnswers {
    /// Reads model 0 of an analysis; `None` when it has no model.
    pub fn of(a: &RunAnalysis) -> Option<KnownAnswers> {
        let m = a.summary.models.first()?;
        let neurons = a.neurons.first()?;
        let f = &m.frequencies;
        Some(KnownAnswers {
            ratio: m.margin.ratio.unwrap_or(f64::NAN),
            freqs_missing: f.freqs_missing.clone(),
            freqs_used: f.freqs_used.len(),
            max_freq: f.max_freq,
            neurons_per_freq: f.neurons_per_freq.get(1).copied().unwrap_or(0),
            min_fraction: neurons
                .iter()
                .map(|f| f.min_fraction)
                .fold(f64::INFINITY, f64::min),
            max_residual: neurons
                .iter()
                .map(|f| f.residual.map_or(f64::INFINITY, f64::abs))
                .fold(0.0, f64::max),
            accuracy: m.margin.accuracy,
        })
    }

    /// Whether every known answer is met to within 1e-9.
    pub fn hold(&self) -> bool {
        (self.ratio - 1.0).abs() <= TOLERANCE
            && self.freqs_missing.is_empty()
            && (self.min_fraction - 1.0).abs() <= TOLERANCE
            && self.max_residual <= TOLERANCE
            && self.accuracy == 1.0
    }

    /// `None` when they [`hold`](Self::hold), else a line listing every measured value
    /// (a miss is a bug in the construction or the analysis, not bad input).
    pub fn miss(&self) -> Option<String> {
        if self.hold() {
            return None;
        }
        Some(format!(
            "the construction misses its known answer: γ/γ* = {}, missing frequencies {:?}, \
             smallest power fraction {}, largest |residual| {}, accuracy {}",
            self.ratio, self.freqs_missing, self.min_fraction, self.max_residual, self.accuracy
        ))
    }

    /// The lines `analyze construct` prints under "known answers:".
    pub fn text(&self) -> String {
        format!(
            "known answers:\n  γ/γ* = {:.9} (|γ/γ* − 1| = {:.1e}); accuracy {}\n  \
             all {} frequencies 1..={} present, {} neurons each\n  every neuron: power \
             fraction {:.9} (smallest over u, v, w and neurons), residual θu+θv−θw = 0 \
             (largest |residual| {:.1e})\n",
            self.ratio,
            (self.ratio - 1.0).abs(),
            pct(self.accuracy),
            self.freqs_used,
            self.max_freq,
            self.neurons_per_freq,
            self.min_fraction,
            self.max_residual
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_even_and_tiny_p() {
        for p in [0, 1, 2, 4, 10] {
            assert!(max_margin(p).is_err(), "p = {p}");
        }
        assert_eq!(max_margin(5).unwrap().width, 32);
    }
}
