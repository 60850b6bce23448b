//! Loading a run directory (its format: [`crate::layout`]). It reads without taking the
//! run's lock, so a run can be analyzed while it trains:
//!
//! ```text
//! RUN/config.toml                  the resolved RunConfig
//! RUN/metrics.jsonl                one JSON object per (eval step, model)
//! RUN/checkpoints/step-NNNNNNNN.safetensors
//! RUN/spectra.jsonl                per-neuron spectra over training (optional)
//! ```
//!
//! `config.toml` and at least one checkpoint are required; the two JSON-lines files are
//! optional (a run directory built by hand or by `analyze construct` may lack them), and
//! the plots that need them are then left out.

use super::jsonl;
use super::record;
use crate::checkpoint::{self, Checkpoint};
use crate::config::RunConfig;
use crate::error::{Error, Result};
use crate::layout::{
    MetricsRecord, SpectraRecord, CHECKPOINTS_DIR, CHECKPOINT_PREFIX, CHECKPOINT_SUFFIX,
    CONFIG_FILE, METRICS_FILE, SPECTRA_FILE,
};
use std::path::{Path, PathBuf};

/// One line of `metrics.jsonl`: the run loop's [`MetricsRecord`] under the name the
/// analysis has always used.
pub type MetricsRow = MetricsRecord;

/// What a run directory holds, checkpoints not yet loaded.
#[derive(Clone, Debug)]
pub struct RunDir {
    /// The directory.
    pub path: PathBuf,
    /// Its config.toml.
    pub config: RunConfig,
    /// `(step, path)` sorted by step.
    pub checkpoints: Vec<(u64, PathBuf)>,
    /// metrics.jsonl (empty when absent).
    pub metrics: Vec<MetricsRow>,
    /// spectra.jsonl (empty when absent).
    pub spectra: Vec<SpectraRecord>,
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::BadFile {
        path: path.into(),
        reason: reason.into(),
    }
}

impl RunDir {
    /// Opens and checks a run directory.
    pub fn open(path: &Path) -> Result<RunDir> {
        if !path.is_dir() {
            return Err(bad(
                path,
                if path.exists() {
                    format!(
                        "not a directory; expected a run directory ({CONFIG_FILE}, \
                         {CHECKPOINTS_DIR}/)"
                    )
                } else {
                    "no such run directory".into()
                },
            ));
        }
        let config_path = path.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&config_path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                bad(
                    &config_path,
                    "missing: this is not a run directory written by train or analyze construct",
                )
            } else {
                Error::io(&config_path, e)
            }
        })?;
        let config = RunConfig::from_toml(&text).map_err(|e| bad(&config_path, e.to_string()))?;
        // A missing or unreadable checkpoints/ folder reads as "no checkpoints" below.
        let checkpoints = checkpoint::list(path).unwrap_or_default();
        if checkpoints.is_empty() {
            return Err(bad(
                &path.join(CHECKPOINTS_DIR),
                format!(
                    "no checkpoints (expected files named {CHECKPOINT_PREFIX}NNNNNNNN{CHECKPOINT_SUFFIX})"
                ),
            ));
        }
        let metrics_path = path.join(METRICS_FILE);
        let metrics = if metrics_path.exists() {
            jsonl::read(&metrics_path)?
        } else {
            Vec::new()
        };
        let spectra_path = path.join(SPECTRA_FILE);
        let spectra = if spectra_path.exists() {
            record::read(&spectra_path)?
        } else {
            Vec::new()
        };
        if let Some(r) = spectra.iter().find(|r| r.p != config.task.p) {
            return Err(bad(
                &spectra_path,
                format!(
                    "record of step {} is for p = {}, but {CONFIG_FILE} says p = {}",
                    r.step, r.p, config.task.p
                ),
            ));
        }
        Ok(RunDir {
            path: path.into(),
            config,
            checkpoints,
            metrics,
            spectra,
        })
    }

    /// Loads a checkpoint and checks it belongs to this run's model shape.
    pub fn load(&self, path: &Path) -> Result<Checkpoint> {
        let ckpt = Checkpoint::load(path)?;
        let (want, got) = (self.config.model_spec(), ckpt.config.model_spec());
        let shape = |c: &RunConfig, s: &crate::model::ModelSpec| {
            format!(
                "p = {}, width = {}, n_out = {}, models = {}",
                s.n_in, s.width, s.n_out, c.models
            )
        };
        if (want.n_in, want.n_out, want.width, self.config.models)
            != (got.n_in, got.n_out, got.width, ckpt.config.models)
        {
            return Err(bad(
                path,
                format!(
                    "checkpoint has {}, but {CONFIG_FILE} says {}",
                    shape(&ckpt.config, &got),
                    shape(&self.config, &want)
                ),
            ));
        }
        Ok(ckpt)
    }

    /// Metrics rows of one model, in step order.
    pub fn metrics_of(&self, model: usize) -> Vec<&MetricsRow> {
        let mut rows: Vec<&MetricsRow> = self.metrics.iter().filter(|r| r.model == model).collect();
        rows.sort_by_key(|r| r.step);
        rows
    }

    /// Spectra records of one model, in step order.
    pub fn spectra_of(&self, model: usize) -> Vec<&SpectraRecord> {
        let mut rows: Vec<&SpectraRecord> =
            self.spectra.iter().filter(|r| r.model == model).collect();
        rows.sort_by_key(|r| r.step);
        rows
    }
}
