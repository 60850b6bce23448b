//! The whole analysis of one run directory, and its machine-readable outputs
//! (`summary.json`, `neurons.csv`, `frequencies.csv`, `checkpoints.csv`,
//! `timeline.csv`).
//!
//! Every checkpoint is analyzed (spectra of all neurons of all models, margin over all
//! pairs); the last one gives the final per-neuron table. Checkpoints are processed in
//! groups so memory stays bounded however many a run saved, and within a group all
//! neurons of all checkpoints go through one parallel Fourier pass.

use super::fourier::{spectra_many, FourierPlan, ModelSpectra};
use super::margin::{self, MarginReport};
use super::progress::{self, InitFreqs, Lottery, Stages};
use super::record::SpectraRecord;
use super::rundir::{MetricsRow, RunDir};
use super::summary::{self, FrequencySummary, NeuronFeatures};
use crate::checkpoint::Checkpoint;
use crate::engine::cpu::{CpuBackend, CpuOptions};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::kinds::Dtype;
use crate::model::Weights;
use crate::task::Split;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Checkpoints loaded and transformed together.
const GROUP: usize = 16;

/// Knobs of [`analyze`].
#[derive(Clone, Debug)]
pub struct Options {
    /// Power fraction above which a neuron counts as sinusoidal.
    pub threshold: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            threshold: summary::DEFAULT_THRESHOLD,
        }
    }
}

/// Everything `analyze RUN --json` prints.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunSummary {
    /// The run directory as given.
    pub run: String,
    /// Task name, e.g. `a+b mod 23`.
    pub task: String,
    /// The modulus.
    pub p: usize,
    /// Hidden width m.
    pub width: usize,
    /// Activation, as in config.toml.
    pub activation: String,
    /// Tied input embeddings (v_i = u_i).
    pub tied: bool,
    /// Factored embedding dimension (0 = unfactored).
    pub embed_dim: usize,
    /// Share of the pairs trained on (1 = all).
    pub train_fraction: f64,
    /// Checkpoints analyzed.
    pub checkpoints: usize,
    /// Step of the last checkpoint (the final state described here).
    pub final_step: u64,
    /// Power fraction above which a neuron counts as sinusoidal.
    pub threshold: f64,
    /// Where the initial weights of the lottery check came from.
    pub init_source: String,
    /// One report per model of the batch.
    pub models: Vec<ModelReport>,
}

/// The final state of one model.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelReport {
    /// Index of the model in the batch.
    pub model: usize,
    /// Frequency statistics of the final checkpoint.
    pub frequencies: FrequencySummary,
    /// Normalized margin over all pairs (with γ/γ* where the theory applies).
    pub margin: MarginReport,
    /// Normalized margin over the training pairs, for split runs.
    pub margin_train: Option<MarginReport>,
    /// Whether final frequencies were already favoured at initialization.
    pub lottery: Lottery,
    /// Memorization and generalization steps (from metrics.jsonl).
    pub stages: Stages,
    /// The last line of metrics.jsonl for this model.
    pub last_metrics: Option<MetricsRow>,
}

/// One (checkpoint, model): the measures that are cheap to keep for every checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckpointRow {
    /// Training step of the checkpoint.
    pub step: u64,
    /// Index of the model in the batch.
    pub model: usize,
    /// Normalized margin over all pairs.
    pub gamma: f64,
    /// γ/γ* where the theory applies.
    pub gamma_ratio: Option<f64>,
    /// Accuracy over all pairs.
    pub accuracy: f64,
    /// Share of sinusoidal neurons.
    pub sinusoidal_share: f64,
    /// Share of neurons whose u, v, w have one dominant frequency.
    pub shared_freq_share: f64,
    /// Mean inverse participation ratio of the neurons' combined power.
    pub mean_ipr: f64,
    /// Number of frequencies with at least one sinusoidal neuron.
    pub freqs_used: usize,
}

/// The result of [`analyze`].
pub struct RunAnalysis {
    /// The run directory (config, metrics, spectra records).
    pub dir: RunDir,
    /// What `analyze --json` prints and `summary.json` holds.
    pub summary: RunSummary,
    /// Final per-neuron features, per model.
    pub neurons: Vec<Vec<NeuronFeatures>>,
    /// Init frequencies, per model.
    pub init: Vec<InitFreqs>,
    /// One row per (checkpoint, model), in step order.
    pub checkpoints: Vec<CheckpointRow>,
    /// Spectra over training per model: `spectra.jsonl` when the run has it, else one
    /// record per checkpoint.
    pub timeline: Vec<Vec<SpectraRecord>>,
    /// γ* of the setup where the theory applies.
    pub gamma_star: Option<f64>,
}

/// Initial weights: the step-0 checkpoint when saved, else re-drawn from the seed
/// (initialization is the run's only random draw besides the split).
fn initial_weights(dir: &RunDir, first: Option<&Checkpoint>) -> Result<(Weights<f64>, String)> {
    if let Some(c) = first.filter(|c| c.step == 0) {
        return Ok((c.weights.clone(), "checkpoint at step 0".into()));
    }
    let c = &dir.config;
    let w = match c.dtype {
        Dtype::F32 => c.init_params::<f32>()?.effective().cast::<f64>(),
        Dtype::F64 => c.init_params::<f64>()?.effective(),
    };
    Ok((w, format!("re-initialized from seed {}", c.seed)))
}

/// Analyzes every checkpoint of the run at `path`.
pub fn analyze(path: &Path, options: &Options) -> Result<RunAnalysis> {
    if !(options.threshold > 0.0 && options.threshold <= 1.0) {
        return Err(Error::config(
            "threshold",
            options.threshold,
            "must be in (0, 1]",
        ));
    }
    let dir = RunDir::open(path)?;
    let config = &dir.config;
    let p = config.task.p;
    let b = config.models;
    let plan = FourierPlan::new(p)?;
    let backend = CpuBackend::new(CpuOptions::default())?;
    let task = config.build_task()?;
    let gamma_star = margin::gamma_star(config);
    let activation = config.model.activation;

    let mut rows = Vec::new();
    let mut ckpt_records: Vec<Vec<SpectraRecord>> = vec![Vec::new(); b];
    let mut first: Option<Checkpoint> = None;
    let mut last: Option<(Checkpoint, Vec<ModelSpectra>, Vec<MarginReport>)> = None;
    for group in dir.checkpoints.chunks(GROUP) {
        let loaded: Vec<Checkpoint> = group
            .par_iter()
            .map(|(_, path)| dir.load(path))
            .collect::<Result<_>>()?;
        let jobs: Vec<(&Weights<f64>, usize)> = loaded
            .iter()
            .flat_map(|c| (0..b).map(move |k| (&c.weights, k)))
            .collect();
        let mut spectra = spectra_many(&plan, &jobs)?;
        for (j, ckpt) in loaded.into_iter().enumerate() {
            let margins = margin::margins_with(
                &backend,
                &ckpt.weights,
                activation,
                &task.pairs,
                "all",
                gamma_star,
            )?;
            let mine: Vec<ModelSpectra> = spectra.drain(..b).collect();
            debug_assert!(j < GROUP);
            for (k, s) in mine.iter().enumerate() {
                let f = summary::neuron_features(s, options.threshold);
                let sum = summary::summarize(&f, p / 2, options.threshold);
                rows.push(CheckpointRow {
                    step: ckpt.step,
                    model: k,
                    gamma: margins[k].gamma,
                    gamma_ratio: margins[k].ratio,
                    accuracy: margins[k].accuracy,
                    sinusoidal_share: sum.sinusoidal_share,
                    shared_freq_share: sum.shared_freq_share,
                    mean_ipr: sum.mean_ipr,
                    freqs_used: sum.freqs_used.len(),
                });
                ckpt_records[k].push(SpectraRecord::from_spectra(s, ckpt.step, k));
            }
            if first.is_none() {
                first = Some(ckpt.clone());
            }
            last = Some((ckpt, mine, margins));
        }
    }
    let (last, last_spectra, last_margins) =
        last.expect("RunDir::open guarantees at least one checkpoint");

    let (init_weights, init_source) = initial_weights(&dir, first.as_ref())?;
    let init_jobs: Vec<(&Weights<f64>, usize)> = (0..b).map(|k| (&init_weights, k)).collect();
    let init: Vec<InitFreqs> = spectra_many(&plan, &init_jobs)?
        .iter()
        .map(progress::init_freqs)
        .collect();

    let train_margins = if config.task.train_fraction < 1.0 {
        let split = Split::new(task.len(), config.task.train_fraction, config.seed)?;
        let train = task.pairs.select(&split.train);
        Some(margin::margins_with(
            &backend,
            &last.weights,
            activation,
            &train,
            "train",
            None,
        )?)
    } else {
        None
    };

    let mut neurons = Vec::with_capacity(b);
    let mut models = Vec::with_capacity(b);
    for k in 0..b {
        let f = summary::neuron_features(&last_spectra[k], options.threshold);
        let metrics = dir.metrics_of(k);
        models.push(ModelReport {
            model: k,
            frequencies: summary::summarize(&f, p / 2, options.threshold),
            margin: last_margins[k].clone(),
            margin_train: train_margins.as_ref().map(|m| m[k].clone()),
            lottery: progress::lottery(&init[k], &f, p / 2),
            stages: progress::stages(metrics.iter().map(|r| (r.step, r.train_acc, r.test_acc))),
            last_metrics: metrics.last().map(|r| (*r).clone()),
        });
        neurons.push(f);
    }

    let timeline = (0..b)
        .map(|k| {
            let recorded = dir.spectra_of(k);
            if recorded.is_empty() {
                std::mem::take(&mut ckpt_records[k])
            } else {
                recorded.into_iter().cloned().collect()
            }
        })
        .collect();

    let spec = config.model_spec();
    let summary = RunSummary {
        run: dir.path.display().to_string(),
        task: task.name.clone(),
        p,
        width: spec.width,
        activation: spec.activation.to_string(),
        tied: spec.tied,
        embed_dim: config.model.embed_dim,
        train_fraction: config.task.train_fraction,
        checkpoints: dir.checkpoints.len(),
        final_step: last.step,
        threshold: options.threshold,
        init_source,
        models,
    };
    Ok(RunAnalysis {
        dir,
        summary,
        neurons,
        init,
        checkpoints: rows,
        timeline,
        gamma_star,
    })
}

/// A CSV cell: empty for a missing or non-finite number.
fn cell(x: Option<f64>) -> String {
    match x {
        Some(v) if v.is_finite() => format!("{v}"),
        _ => String::new(),
    }
}

/// `neurons.csv`: the final per-neuron table of every model.
pub fn neurons_csv(a: &RunAnalysis) -> String {
    let mut s = String::from(
        "model,neuron,freq,fraction,min_fraction,freq_u,freq_v,freq_w,fraction_u,fraction_v,fraction_w,\
         shared_freq,theta_u,theta_v,theta_w,residual,sq_norm,ipr,sinusoidal,init_strongest_freq,init_aligned_freq\n",
    );
    for (k, features) in a.neurons.iter().enumerate() {
        for f in features {
            let _ = writeln!(
                s,
                "{k},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                f.neuron,
                f.freq,
                f.fraction,
                f.min_fraction,
                f.freq_u,
                f.freq_v,
                f.freq_w,
                f.fraction_u,
                f.fraction_v,
                f.fraction_w,
                f.shared_freq,
                f.theta_u,
                f.theta_v,
                f.theta_w,
                f.residual,
                f.sq_norm,
                f.ipr,
                f.sinusoidal,
                a.init[k].strongest[f.neuron],
                a.init[k].aligned[f.neuron],
            );
        }
    }
    s
}

/// `frequencies.csv`: neurons per dominant frequency and the share of the weight norm²
/// they hold, final checkpoint.
pub fn frequencies_csv(a: &RunAnalysis) -> String {
    let mut s = String::from("model,freq,neurons,sinusoidal,norm_share\n");
    for m in &a.summary.models {
        let f = &m.frequencies;
        for k in 1..=f.max_freq {
            let _ = writeln!(
                s,
                "{},{k},{},{},{}",
                m.model,
                f.neurons_per_freq[k],
                f.sinusoidal_per_freq[k],
                f.norm_share_per_freq.get(k).copied().unwrap_or(0.0)
            );
        }
    }
    s
}

/// `checkpoints.csv`: margin and Fourier measures of every checkpoint.
pub fn checkpoints_csv(a: &RunAnalysis) -> String {
    let mut s = String::from(
        "step,model,gamma,gamma_ratio,accuracy_all_pairs,sinusoidal_share,shared_freq_share,mean_ipr,freqs_used\n",
    );
    for r in &a.checkpoints {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{}",
            r.step,
            r.model,
            cell(Some(r.gamma)),
            cell(r.gamma_ratio),
            cell(Some(r.accuracy)),
            r.sinusoidal_share,
            r.shared_freq_share,
            r.mean_ipr,
            r.freqs_used
        );
    }
    s
}

/// Mean IPR and share of neurons above `threshold` of one spectra record.
pub fn record_measures(r: &SpectraRecord, threshold: f64) -> (f64, f64) {
    let n = r.width().max(1) as f64;
    let mean_ipr = r.power.iter().map(|p| progress::ipr(p)).sum::<f64>() / n;
    let share = r.frac.iter().filter(|&&f| f >= threshold).count() as f64 / n;
    (mean_ipr, share)
}

/// `timeline.csv`: per spectra record, mean IPR and share of neurons whose combined
/// power is concentrated above the threshold.
pub fn timeline_csv(a: &RunAnalysis) -> String {
    let mut s = String::from("step,model,mean_ipr,concentrated_share,margin\n");
    for records in &a.timeline {
        for r in records {
            let (ipr, share) = record_measures(r, a.summary.threshold);
            let _ = writeln!(s, "{},{},{ipr},{share},{}", r.step, r.model, cell(r.margin));
        }
    }
    s
}

/// Writes summary.json and the CSV tables into `out` (created if needed); returns the
/// paths written.
pub fn write_tables(a: &RunAnalysis, out: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let json = serde_json::to_string_pretty(&a.summary).map_err(|e| Error::BadFile {
        path: out.join(crate::layout::SUMMARY_FILE),
        reason: format!("cannot serialize the summary: {e}"),
    })?;
    let files = [
        (crate::layout::SUMMARY_FILE, json + "\n"),
        ("neurons.csv", neurons_csv(a)),
        ("frequencies.csv", frequencies_csv(a)),
        ("checkpoints.csv", checkpoints_csv(a)),
        ("timeline.csv", timeline_csv(a)),
    ];
    let mut written = Vec::new();
    for (name, text) in files {
        let path = out.join(name);
        write_atomic(&path, text.as_bytes())?;
        written.push(path);
    }
    Ok(written)
}
