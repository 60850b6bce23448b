//! Checkpoints: safetensors files holding a run's weights, optimizer state and config.
//!
//! Tensors (dtype of the run, f32 or f64):
//! - `u`, `v`: `[B, m, n_in]` effective input embeddings (paper orientation),
//! - `w`: `[B, n_out, m]` effective output weights,
//! - `params`: `[B, n_params]` the trainable parameters (factors when factored),
//! - `adam_m`, `adam_v`, `grokfast_ema`: `[B, n_params]`, present when in use.
//!
//! Metadata: `format` (= `clockwork-checkpoint-v1`), `step`, `seed`, `dtype`, and `config`
//! (the run's TOML). There is no random state beyond the seed: initialization and split
//! are the only random draws, so the seed reproduces them.

use crate::config::RunConfig;
use crate::engine::stepper::TrainerState;
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::model::Weights;
use crate::real::Real;
use crate::train::Trainer;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const FORMAT: &str = "clockwork-checkpoint-v1";

/// A loaded checkpoint, weights converted to f64 for analysis.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// The file it was read from.
    pub path: PathBuf,
    /// Steps the run had taken when it was written (the weights are those after update
    /// `step − 1`).
    pub step: u64,
    /// The run's config, as embedded in the file (validated on load).
    pub config: RunConfig,
    /// dtype the run trained in.
    pub dtype: String,
    /// Effective weights of all models of the batch, in the engine layout (converted
    /// back from the file's paper orientation).
    pub weights: Weights<f64>,
}

/// Where the checkpoint of `step` lives in a run directory:
/// `RUN/checkpoints/step-00001000.safetensors` (8-digit zero-padded step, so names sort
/// by step up to 10⁸).
pub fn path_for(run_dir: &Path, step: u64) -> PathBuf {
    run_dir
        .join(crate::layout::CHECKPOINTS_DIR)
        .join(crate::layout::checkpoint_file_name(step))
}

/// The checkpoints of a run directory as `(step, path)`, sorted by step. Files in
/// `RUN/checkpoints` not named like [`path_for`]'s are ignored; a missing directory is
/// [`Error::Io`].
pub fn list(run_dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let dir = run_dir.join(crate::layout::CHECKPOINTS_DIR);
    let entries = std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
    let mut found = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::io(&dir, e))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some(step) = crate::layout::checkpoint_step(name) {
            found.push((step, path));
        }
    }
    found.sort();
    Ok(found)
}

fn to_bytes<F: Real>(x: &[F]) -> &[u8] {
    bytemuck::cast_slice(x)
}

/// Effective weights in paper orientation, as three flat buffers.
fn paper_layout<F: Real>(weights: &Weights<F>) -> (Vec<F>, Vec<F>, Vec<F>) {
    let mut u = Vec::with_capacity(weights.u.len());
    let mut v = Vec::with_capacity(weights.v.len());
    for k in 0..weights.batch {
        u.extend(weights.u_array(k).iter().copied());
        v.extend(weights.v_array(k).iter().copied());
    }
    (u, v, weights.w.clone())
}

fn write<F: Real>(
    path: &Path,
    config: &RunConfig,
    step: u64,
    weights: &Weights<F>,
    state: Option<&TrainerState<F>>,
) -> Result<()> {
    let (b, m, p, c) = (weights.batch, weights.width, weights.n_in, weights.n_out);
    let (u, v, w) = paper_layout(weights);
    let mut tensors: Vec<(String, Vec<usize>, &[u8])> = vec![
        ("u".into(), vec![b, m, p], to_bytes(&u)),
        ("v".into(), vec![b, m, p], to_bytes(&v)),
        ("w".into(), vec![b, c, m], to_bytes(&w)),
    ];
    if let Some(s) = state {
        let n = s.params.len() / b;
        for (name, data) in [
            ("params", &s.params),
            ("adam_m", &s.adam_m),
            ("adam_v", &s.adam_v),
            ("grokfast_ema", &s.grokfast_ema),
        ] {
            if !data.is_empty() {
                tensors.push((name.into(), vec![b, n], to_bytes(data)));
            }
        }
    }
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(name, shape, data)| {
            (
                name.clone(),
                TensorView::new(F::DTYPE, shape.clone(), data).expect("sizes match shapes"),
            )
        })
        .collect();
    let metadata: HashMap<String, String> = [
        ("format", FORMAT.to_string()),
        ("step", step.to_string()),
        ("seed", config.seed.to_string()),
        ("dtype", F::NAME.to_string()),
        ("config", config.to_toml()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let bytes = safetensors::serialize(views, &Some(metadata)).map_err(|e| Error::BadFile {
        path: path.into(),
        reason: format!("cannot serialize checkpoint: {e}"),
    })?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    write_atomic(path, &bytes)
}

/// Writes the trainer's full state (weights, parameters, optimizer) atomically, so a
/// run can resume from it ([`load_state`]) or be analysed ([`Checkpoint::load`]). Creates
/// the parent directory.
pub fn save<F: Real>(path: &Path, trainer: &Trainer<F>) -> Result<()> {
    save_state(path, trainer.config(), trainer.weights(), &trainer.state())
}

/// Writes a resumable checkpoint from its parts: what [`save`] does for a [`Trainer`],
/// for trainers that hand their state over as values (the device-resident
/// [`crate::engine::cuda::CudaTrainer`]). `weights` are the effective U, V, W of
/// `state.params`.
pub fn save_state<F: Real>(
    path: &Path,
    config: &RunConfig,
    weights: &Weights<F>,
    state: &TrainerState<F>,
) -> Result<()> {
    write(path, config, state.step, weights, Some(state))
}

/// Writes a weights-only checkpoint (e.g. a constructed solution) that `analyze` and
/// [`Checkpoint::load`] read; it cannot be resumed from.
pub fn save_weights<F: Real>(
    path: &Path,
    config: &RunConfig,
    step: u64,
    weights: &Weights<F>,
) -> Result<()> {
    write(path, config, step, weights, None)
}

struct Raw {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl Raw {
    fn read(path: &Path) -> Result<Raw> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Ok(Raw {
            path: path.into(),
            bytes,
        })
    }

    fn bad(&self, reason: impl Into<String>) -> Error {
        Error::BadFile {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    fn parse(&self) -> Result<(SafeTensors<'_>, HashMap<String, String>)> {
        let (_, meta) = SafeTensors::read_metadata(&self.bytes)
            .map_err(|e| self.bad(format!("not a safetensors checkpoint ({e})")))?;
        let meta = meta.metadata().clone().unwrap_or_default();
        if meta.get("format").map(String::as_str) != Some(FORMAT) {
            return Err(self.bad(format!(
                "not a clockwork checkpoint (metadata 'format' is not {FORMAT})"
            )));
        }
        let st = SafeTensors::deserialize(&self.bytes)
            .map_err(|e| self.bad(format!("corrupt safetensors data ({e})")))?;
        Ok((st, meta))
    }

    fn meta<'a>(&self, meta: &'a HashMap<String, String>, key: &str) -> Result<&'a str> {
        meta.get(key)
            .map(String::as_str)
            .ok_or_else(|| self.bad(format!("metadata '{key}' is missing")))
    }

    /// Tensor `name` as f64, checking its shape.
    fn tensor<G: Real>(
        &self,
        st: &SafeTensors,
        name: &str,
        shape: &[usize],
    ) -> Result<Option<Vec<G>>> {
        let view = match st.tensor(name) {
            Ok(v) => v,
            Err(_) => return Ok(None),
        };
        if view.shape() != shape {
            return Err(self.bad(format!(
                "tensor '{name}' has shape {:?}, but the config needs {:?}",
                view.shape(),
                shape
            )));
        }
        let data = view.data();
        let out = match view.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|b| G::of(f32::from_le_bytes(b.try_into().expect("4 bytes")) as f64))
                .collect(),
            Dtype::F64 => data
                .chunks_exact(8)
                .map(|b| G::of(f64::from_le_bytes(b.try_into().expect("8 bytes"))))
                .collect(),
            other => {
                return Err(self.bad(format!(
                    "tensor '{name}' has dtype {other:?}; expected F32 or F64"
                )))
            }
        };
        Ok(Some(out))
    }
}

/// Weights from paper-layout buffers.
fn weights_from_paper<G: Real>(
    u: Vec<G>,
    v: Vec<G>,
    w: Vec<G>,
    b: usize,
    m: usize,
    p: usize,
    c: usize,
) -> Weights<G> {
    let tok_major = |x: Vec<G>| -> Vec<G> {
        let mut out = vec![G::zero(); x.len()];
        for k in 0..b {
            for i in 0..m {
                for a in 0..p {
                    out[k * p * m + a * m + i] = x[k * m * p + i * p + a];
                }
            }
        }
        out
    };
    Weights {
        batch: b,
        n_in: p,
        n_out: c,
        width: m,
        u: tok_major(u),
        v: tok_major(v),
        w,
    }
}

impl Checkpoint {
    /// Reads a checkpoint written by [`save`] or [`save_weights`], checking that its
    /// tensors have the shapes its config implies.
    pub fn load(path: &Path) -> Result<Checkpoint> {
        let raw = Raw::read(path)?;
        let (st, meta) = raw.parse()?;
        let config = RunConfig::from_toml(raw.meta(&meta, "config")?)
            .map_err(|e| raw.bad(format!("embedded config is invalid: {e}")))?;
        let step = raw
            .meta(&meta, "step")?
            .parse()
            .map_err(|_| raw.bad("metadata 'step' is not a number"))?;
        let dtype = raw.meta(&meta, "dtype")?.to_string();
        let spec = config.model_spec();
        let (b, m, p, c) = (config.models, spec.width, spec.n_in, spec.n_out);
        let get = |name: &str, shape: &[usize]| -> Result<Vec<f64>> {
            raw.tensor::<f64>(&st, name, shape)?
                .ok_or_else(|| raw.bad(format!("tensor '{name}' is missing")))
        };
        let u = get("u", &[b, m, p])?;
        let v = get("v", &[b, m, p])?;
        let w = get("w", &[b, c, m])?;
        Ok(Checkpoint {
            path: path.into(),
            step,
            config,
            dtype,
            weights: weights_from_paper(u, v, w, b, m, p, c),
        })
    }
}

/// Reads the resumable state of a checkpoint for a trainer of `config` in precision F,
/// for [`Trainer::restore`]. Fails with [`Error::BadFile`] if the file's dtype is not
/// F, its tensors do not fit `config`'s shapes, or it holds weights only.
pub fn load_state<F: Real>(path: &Path, config: &RunConfig) -> Result<TrainerState<F>> {
    let raw = Raw::read(path)?;
    let (st, meta) = raw.parse()?;
    let dtype = raw.meta(&meta, "dtype")?;
    if dtype != F::NAME {
        return Err(raw.bad(format!("checkpoint is {dtype}, but the run is {}", F::NAME)));
    }
    let b = config.models;
    let n = config.model_spec().n_params();
    let params = raw.tensor::<F>(&st, "params", &[b, n])?.ok_or_else(|| {
        raw.bad("holds weights only (no 'params' tensor): it cannot be resumed from")
    })?;
    let opt = |name| {
        raw.tensor::<F>(&st, name, &[b, n])
            .map(Option::unwrap_or_default)
    };
    Ok(TrainerState {
        step: raw
            .meta(&meta, "step")?
            .parse()
            .map_err(|_| raw.bad("metadata 'step' is not a number"))?,
        params,
        adam_m: opt("adam_m")?,
        adam_v: opt("adam_v")?,
        grokfast_ema: opt("grokfast_ema")?,
    })
}
