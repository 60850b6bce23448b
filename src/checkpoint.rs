//! Checkpoints: safetensors files holding a run's weights, optimizer state and config.
//!
//! Tensors (dtype of the run, f32 or f64):
//! - `u`, `v`: `[B, m, n_in]` effective input embeddings (paper orientation),
//! - `w`: `[B, n_out, m]` effective output weights,
//! - `params`: `[B, n_params]` the trainable parameters (factors when factored),
//! - `adam_m`, `adam_v`, `grokfast_ema`: `[B, n_params]`, present when in use,
//! - `grokfast_window`: `[B, len, n_params]`, the Grokfast-MA filter's last `len ≤ window`
//!   gradients per model, oldest first, present when in use.
//!
//! Metadata: `format` (= `clockwork-checkpoint-v2`), `step`, `seed`, `dtype`, `config`
//! (the run's TOML), and checksums: `crc32.NAME` for every tensor `NAME` (CRC32 of its
//! little-endian data bytes, 8 hex digits) and `metadata_crc32` over all other metadata
//! entries (so a damaged config or step is noticed too). There is no random state beyond
//! the seed: initialization and split are the only random draws, so the seed reproduces
//! them.
//!
//! # Integrity
//!
//! A truncated file or a broken header fails safetensors' own parsing, but a flipped byte
//! inside tensor data does not: without checksums, `train --resume` would continue from
//! damaged weights and `analyze` would report on them. So every load ([`Checkpoint::load`],
//! [`load_state`]) verifies the checksum of *every* tensor in the file, not only the
//! ones it reads, and of the metadata, before using anything; a mismatch, a missing or
//! malformed checksum, or a checksum of a tensor the file lacks is [`Error::BadFile`]
//! naming the file and the tensor. Writes are atomic (temporary file, then rename), so
//! an interrupted write never leaves a half-written checkpoint under the final name.
//!
//! # Compatibility
//!
//! Files written before checksums existed say `format = clockwork-checkpoint-v1` and
//! hold none. They still load, **unverified** (there is nothing to verify against), so
//! existing run directories can be analysed and resumed; every checkpoint written from
//! then on is v2. A v2 file without its checksums is refused, since only damage can
//! remove them.

use crate::config::RunConfig;
use crate::engine::stepper::TrainerState;
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::model::Weights;
use crate::real::Real;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Format of files written now: tensors and metadata carry CRC32 checksums.
const FORMAT: &str = "clockwork-checkpoint-v2";
/// Format of files written before checksums: loaded without verification.
const FORMAT_V1: &str = "clockwork-checkpoint-v1";
/// Prefix of a tensor's checksum key in the metadata (`crc32.u`).
const TENSOR_CRC: &str = "crc32.";
/// Key of the checksum over all other metadata entries.
const METADATA_CRC: &str = "metadata_crc32";
/// What a user can do about a damaged file, appended to every integrity error.
const DAMAGED: &str = "the file is damaged";

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

fn crc_text(crc: u32) -> String {
    format!("{crc:08x}")
}

/// The stored form of a checksum back to a number; `None` unless exactly 8 hex digits.
fn parse_crc(text: &str) -> Option<u32> {
    if text.len() != 8 {
        return None;
    }
    u32::from_str_radix(text, 16).ok()
}

/// CRC32 of every metadata entry but [`METADATA_CRC`] itself, in key order (the JSON
/// header's order is not fixed), each key and value length-prefixed so that no two
/// different maps hash the same bytes.
fn metadata_crc(meta: &HashMap<String, String>) -> u32 {
    let mut keys: Vec<&String> = meta.keys().filter(|k| *k != METADATA_CRC).collect();
    keys.sort();
    let mut hasher = crc32fast::Hasher::new();
    for key in keys {
        for part in [key.as_bytes(), meta[key].as_bytes()] {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
    }
    hasher.finalize()
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
        if !s.grokfast_window.is_empty() {
            let len = s.grokfast_window.len() / (b * n);
            tensors.push((
                "grokfast_window".into(),
                vec![b, len, n],
                to_bytes(&s.grokfast_window),
            ));
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
    let mut metadata: HashMap<String, String> = [
        ("format", FORMAT.to_string()),
        ("step", step.to_string()),
        ("seed", config.seed.to_string()),
        ("dtype", F::NAME.to_string()),
        ("config", config.to_toml()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (name, _, data) in &tensors {
        metadata.insert(
            format!("{TENSOR_CRC}{name}"),
            crc_text(crc32fast::hash(data)),
        );
    }
    // Last, so that it covers the tensor checksums too.
    metadata.insert(METADATA_CRC.into(), crc_text(metadata_crc(&metadata)));
    let bytes = safetensors::serialize(views, &Some(metadata))
        .map_err(|e| Error::format(path, "cannot serialize checkpoint", e))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    write_atomic(path, &bytes)
}

/// Writes a resumable checkpoint from its parts — the run's config, the effective U, V,
/// W of `state.params`, and the trainer state (parameters, optimizer moments, step) any
/// [`crate::engine::stepper::Stepper`] hands over — atomically, with a checksum of every
/// tensor, so a run can resume from it ([`load_state`]) or be analysed
/// ([`Checkpoint::load`]). Taking parts rather than a trainer keeps this module below
/// the training loop. Creates the parent directory.
pub fn save_state<F: Real>(
    path: &Path,
    config: &RunConfig,
    weights: &Weights<F>,
    state: &TrainerState<F>,
) -> Result<()> {
    write(path, config, state.step, weights, Some(state))
}

/// Writes a weights-only checkpoint (e.g. a constructed solution), checksummed like
/// [`save_state`]'s, that `analyze` and [`Checkpoint::load`] read; it cannot be resumed
/// from.
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

    /// The file, refused by a library (or our own config parser) whose error is `e`.
    fn refused(&self, reason: &str, e: impl Into<crate::error::Source>) -> Error {
        Error::format(&self.path, reason, e)
    }

    fn bad(&self, reason: impl Into<String>) -> Error {
        Error::BadFile {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    /// Parses the file and, for a v2 file, verifies every checksum before anything in it
    /// is used.
    fn parse(&self) -> Result<(SafeTensors<'_>, HashMap<String, String>)> {
        let (_, meta) = SafeTensors::read_metadata(&self.bytes)
            .map_err(|e| self.refused("not a safetensors checkpoint", e))?;
        let meta = meta.metadata().clone().unwrap_or_default();
        let format = meta.get("format").map(String::as_str);
        if format != Some(FORMAT) && format != Some(FORMAT_V1) {
            return Err(self.bad(format!(
                "not a clockwork checkpoint (metadata 'format' is {}, expected {FORMAT}, \
                 or {FORMAT_V1} for files written before checksums)",
                format.map_or("missing".into(), |f| format!("'{f}'"))
            )));
        }
        let st = SafeTensors::deserialize(&self.bytes)
            .map_err(|e| self.refused("corrupt safetensors data", e))?;
        if format == Some(FORMAT) {
            self.verify(&st, &meta)?;
        }
        Ok((st, meta))
    }

    /// The checksum stored under metadata `key`, for `what` (a tensor or the metadata).
    fn stored_crc(&self, meta: &HashMap<String, String>, key: &str, what: &str) -> Result<u32> {
        let text = meta.get(key).ok_or_else(|| {
            self.bad(format!(
                "{what} has no checksum (metadata '{key}' is missing): {DAMAGED}"
            ))
        })?;
        parse_crc(text).ok_or_else(|| {
            self.bad(format!(
                "metadata '{key}' = {text:?} is not a crc32 (8 hex digits): {DAMAGED}"
            ))
        })
    }

    /// Checks the metadata checksum, then every tensor's, then that no checksum names a
    /// tensor the file lacks (a lost optimizer tensor would otherwise read as "not in
    /// use").
    fn verify(&self, st: &SafeTensors, meta: &HashMap<String, String>) -> Result<()> {
        let stored = self.stored_crc(meta, METADATA_CRC, "the metadata")?;
        let computed = metadata_crc(meta);
        if stored != computed {
            return Err(self.bad(format!(
                "the metadata fails its checksum (stored crc32 {}, computed {}): {DAMAGED}",
                crc_text(stored),
                crc_text(computed)
            )));
        }
        let mut tensors = st.tensors();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, view) in &tensors {
            let what = format!("tensor '{name}'");
            let stored = self.stored_crc(meta, &format!("{TENSOR_CRC}{name}"), &what)?;
            let computed = crc32fast::hash(view.data());
            if stored != computed {
                return Err(self.bad(format!(
                    "{what} fails its checksum (stored crc32 {}, computed {}): {DAMAGED}",
                    crc_text(stored),
                    crc_text(computed)
                )));
            }
        }
        let mut keys: Vec<&String> = meta.keys().collect();
        keys.sort();
        for key in keys {
            if let Some(name) = key.strip_prefix(TENSOR_CRC) {
                if !tensors.iter().any(|(n, _)| n == name) {
                    return Err(self.bad(format!(
                        "metadata '{key}' is the checksum of tensor '{name}', which the file \
                         does not hold: {DAMAGED}"
                    )));
                }
            }
        }
        Ok(())
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
    /// Reads a checkpoint written by [`save_state`] or [`save_weights`], verifying the
    /// checksums of all its tensors (v2 files; v1 files load unverified, see the module
    /// docs) and checking that the tensors have the shapes its config implies.
    pub fn load(path: &Path) -> Result<Checkpoint> {
        let raw = Raw::read(path)?;
        let (st, meta) = raw.parse()?;
        let config = RunConfig::from_toml(raw.meta(&meta, "config")?)
            .map_err(|e| raw.refused("embedded config is invalid", e))?;
        let step = raw
            .meta(&meta, "step")?
            .parse()
            .map_err(|e| raw.refused("metadata 'step' is not a number", e))?;
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
/// for [`crate::engine::stepper::Stepper::restore`]. Fails with [`Error::BadFile`] if a
/// checksum does not match (v2 files; v1 files load unverified, see the module docs),
/// the file's dtype is not F, its tensors do not fit `config`'s shapes, or it holds
/// weights only.
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
    // The window's length is its own (how many gradients it held); the rest of its
    // shape must fit the config.
    let window_len = match st.tensor("grokfast_window") {
        Ok(view) => match view.shape() {
            [vb, len, vn] if *vb == b && *vn == n => *len,
            other => {
                return Err(raw.bad(format!(
                    "tensor 'grokfast_window' has shape {other:?}, but the config needs \
                     [{b}, len, {n}]"
                )))
            }
        },
        Err(_) => 0,
    };
    Ok(TrainerState {
        step: raw
            .meta(&meta, "step")?
            .parse()
            .map_err(|e| raw.refused("metadata 'step' is not a number", e))?,
        params,
        adam_m: opt("adam_m")?,
        adam_v: opt("adam_v")?,
        grokfast_ema: opt("grokfast_ema")?,
        grokfast_window: raw
            .tensor::<F>(&st, "grokfast_window", &[b, window_len, n])?
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests;
