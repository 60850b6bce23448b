//! The whole analysis of one run directory: [`analyze`] gives a [`RunAnalysis`], which
//! [`super::tables`] writes as `summary.json` and CSV tables and [`super::outdir`] as a
//! whole analysis directory.
//!
//! Every checkpoint is analyzed (spectra of all neurons of all models, margin over all
//! pairs); the last one gives the final per-neuron table. Checkpoints are processed in
//! groups so memory stays bounded however many a run saved, and within a group all
//! neurons of all checkpoints go through one parallel Fourier pass.
//!
//! The Fourier basis and the phase invariant follow the run's task
//! ([`Basis::for_task`]): a·b and a/b are analysed in the discrete-log basis over
//! Z_{p−1}. Training records `spectra.jsonl` over Z_p, so for those tasks the timeline
//! pictures are drawn from the checkpoints instead (in the task's basis).

use super::basis::{Basis, BasisReport};
use super::fourier::ModelSpectra;
use super::margin::{self, MarginReport, SplitPart};
use super::progress::{self, InitFreqs, Lottery, Stages};
use super::record::SpectraRecord;
use super::rundir::{MetricsRow, RunDir};
use super::summary::{self, FrequencySummary, NeuronFeatures};
use crate::checkpoint::Checkpoint;
use crate::engine::Backend;
use crate::error::{Error, Result};
use crate::kinds::Dtype;
use crate::model::Weights;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;

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
    /// Share of the pairs trained on (1 = all): `task.train_fraction` of the config; a
    /// `[per_model]` list overrides it per model ([`ModelReport::train_fraction`]).
    pub train_fraction: f64,
    /// Checkpoints analyzed.
    pub checkpoints: usize,
    /// Step of the last checkpoint (the final state described here).
    pub final_step: u64,
    /// Power fraction above which a neuron counts as sinusoidal.
    pub threshold: f64,
    /// The Fourier basis and phase invariant of the analysis (they follow the task).
    pub basis: BasisReport,
    /// Where the spectra over training come from: `spectra.jsonl` (recorded in
    /// training, additive basis) or the checkpoints (every other basis, or a run without
    /// records).
    pub timeline_source: String,
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
    /// Seed of this model's initialization and split.
    #[serde(default)]
    pub seed: u64,
    /// Share of the pairs this model trains on (1 = all).
    #[serde(default = "all_pairs")]
    pub train_fraction: f64,
    /// Frequency statistics of the final checkpoint.
    pub frequencies: FrequencySummary,
    /// Normalized margin over all pairs (with γ/γ* where the theory applies).
    pub margin: MarginReport,
    /// Normalized margin over this model's training pairs, when it holds some out.
    pub margin_train: Option<MarginReport>,
    /// Margin and accuracy over this model's held-out pairs, when it has any.
    #[serde(default)]
    pub margin_test: Option<MarginReport>,
    /// Whether final frequencies were already favoured at initialization.
    pub lottery: Lottery,
    /// Memorization and generalization steps (from metrics.jsonl).
    pub stages: Stages,
    /// The last line of metrics.jsonl for this model.
    pub last_metrics: Option<MetricsRow>,
}

/// What a summary without a train fraction meant: every pair.
fn all_pairs() -> f64 {
    1.0
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
    /// The Fourier basis every spectrum above is in.
    pub basis: Basis,
}

/// Initial weights: the step-0 checkpoint when saved, else re-drawn from each model's
/// seed and init scale (initialization is the run's only random draw besides the
/// split).
fn initial_weights(dir: &RunDir, first: Option<&Checkpoint>) -> Result<(Weights<f64>, String)> {
    if let Some(c) = first.filter(|c| c.step == 0) {
        return Ok((c.weights.clone(), "checkpoint at step 0".into()));
    }
    let c = &dir.config;
    let w = match c.dtype {
        Dtype::F32 => c.init_params::<f32>()?.effective().cast::<f64>(),
        Dtype::F64 => c.init_params::<f64>()?.effective(),
    };
    let source = if c.per_model.seed.is_empty() {
        format!("re-initialized from seed {}", c.seed)
    } else {
        format!("re-initialized from per_model.seed {:?}", c.per_model.seed)
    };
    Ok((w, source))
}

/// Analyzes every checkpoint of the run at `path`, evaluating margins with `backend`
/// (e.g. `engine::open::<f64>(Device::Cpu, Precision::Fp32, 0)`).
pub fn analyze(backend: &dyn Backend<f64>, path: &Path, options: &Options) -> Result<RunAnalysis> {
    if !(options.threshold > 0.0 && options.threshold <= 1.0) {
        return Err(Error::config(
            "threshold",
            options.threshold,
            "must be in (0, 1]",
        ));
    }
    let dir = RunDir::open(path)?;
    let config = &dir.config;
    let p = config.n_tokens();
    let b = config.models;
    let basis = Basis::for_config(config)?;
    let invariant = basis.invariant();
    let max_freq = basis.max_freq();
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
        let mut spectra = basis.spectra_many(&jobs)?;
        for (j, ckpt) in loaded.into_iter().enumerate() {
            let margins = margin::margins_with(
                backend,
                &ckpt.weights,
                activation,
                &task.pairs,
                "all",
                gamma_star,
            )?;
            let mine: Vec<ModelSpectra> = spectra.drain(..b).collect();
            debug_assert!(j < GROUP);
            for (k, s) in mine.iter().enumerate() {
                let f = summary::neuron_features_with(s, invariant, options.threshold);
                let sum = summary::summarize(&f, max_freq, options.threshold);
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
    let init: Vec<InitFreqs> = basis
        .spectra_many(&init_jobs)?
        .iter()
        .map(|s| progress::init_freqs(s, invariant))
        .collect();

    let train_margins = margin::margins_on_split(backend, config, &last.weights, SplitPart::Train)?;
    let test_margins = margin::margins_on_split(backend, config, &last.weights, SplitPart::Test)?;
    let settings = config.model_settings();

    let mut neurons = Vec::with_capacity(b);
    let mut models = Vec::with_capacity(b);
    for k in 0..b {
        let f = summary::neuron_features_with(&last_spectra[k], invariant, options.threshold);
        let metrics = dir.metrics_of(k);
        models.push(ModelReport {
            model: k,
            seed: settings[k].seed,
            train_fraction: settings[k].train_fraction,
            frequencies: summary::summarize(&f, max_freq, options.threshold),
            margin: last_margins[k].clone(),
            margin_train: train_margins[k].clone(),
            margin_test: test_margins[k].clone(),
            lottery: progress::lottery(&init[k], &f, max_freq),
            stages: progress::stages(metrics.iter().map(|r| (r.step, r.train_acc, r.test_acc))),
            last_metrics: metrics.last().map(|r| (*r).clone()),
        });
        neurons.push(f);
    }

    // spectra.jsonl is over Z_p: usable only when that is the analysis basis.
    let use_records = basis.is_additive() && (0..b).all(|k| !dir.spectra_of(k).is_empty());
    let timeline = (0..b)
        .map(|k| {
            if use_records {
                dir.spectra_of(k).into_iter().cloned().collect()
            } else {
                std::mem::take(&mut ckpt_records[k])
            }
        })
        .collect();
    let timeline_source = if use_records {
        format!("{} (recorded in training)", super::record::SPECTRA_FILE)
    } else if basis.irreps().is_some() {
        "checkpoints (a group run records no spectra in training)".to_string()
    } else if basis.is_additive() {
        "checkpoints (no spectra records for every model)".to_string()
    } else {
        format!(
            "checkpoints ({} is recorded over Z_{p}, not in this basis)",
            super::record::SPECTRA_FILE
        )
    };

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
        basis: basis.report(),
        timeline_source,
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
        basis,
    })
}
