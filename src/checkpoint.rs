//! Checkpoints: safetensors files holding a run's weights, optimizer state and config.
//!
//! (Over 600 lines: about 200 of them are the unit tests of the format and its
//! corruption checks.)
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
mod tests {
    use super::*;

    /// A two-model run with AdamW moments in use and no Grokfast EMA (an empty buffer,
    /// which the file leaves out).
    fn fixture() -> (RunConfig, Weights<f32>, TrainerState<f32>) {
        let mut config = RunConfig {
            models: 2,
            ..RunConfig::default()
        };
        config.task.p = 5;
        config.model.width = 8;
        let params = config.init_params::<f32>().unwrap();
        let weights = params.effective();
        let n = params.data.len();
        let state = TrainerState {
            step: 7,
            params: params.data.clone(),
            adam_m: (0..n).map(|i| i as f32 * 1e-3).collect(),
            adam_v: (0..n).map(|i| i as f32 * 1e-6).collect(),
            grokfast_ema: Vec::new(),
            grokfast_window: Vec::new(),
        };
        (config, weights, state)
    }

    /// Every tensor's data range in the file, from its safetensors header.
    fn data_ranges(bytes: &[u8]) -> Vec<(String, std::ops::Range<usize>)> {
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        let mut out: Vec<_> = header
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| *k != "__metadata__")
            .map(|(k, v)| {
                let o = &v["data_offsets"];
                let (a, b) = (o[0].as_u64().unwrap(), o[1].as_u64().unwrap());
                (k.clone(), 8 + n + a as usize..8 + n + b as usize)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The file re-serialized with its metadata changed by `edit` (tensors unchanged).
    fn rewrite(path: &Path, edit: impl FnOnce(&mut HashMap<String, String>)) {
        let bytes = std::fs::read(path).unwrap();
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let mut meta = header.metadata().clone().unwrap();
        edit(&mut meta);
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let out = safetensors::serialize(st.tensors(), &Some(meta)).unwrap();
        std::fs::write(path, out).unwrap();
    }

    #[test]
    fn a_checkpoint_round_trips_with_a_checksum_per_tensor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ck.safetensors");
        let (config, weights, state) = fixture();
        save_state(&path, &config, &weights, &state).unwrap();
        assert_eq!(load_state::<f32>(&path, &config).unwrap(), state);
        let ck = Checkpoint::load(&path).unwrap();
        assert_eq!(ck.step, 7);
        assert_eq!(ck.weights, weights.cast::<f64>());

        let bytes = std::fs::read(&path).unwrap();
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let meta = header.metadata().clone().unwrap();
        assert_eq!(meta["format"], FORMAT);
        let names: Vec<String> = data_ranges(&bytes).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["adam_m", "adam_v", "params", "u", "v", "w"]);
        for name in &names {
            assert!(
                parse_crc(&meta[&format!("crc32.{name}")]).is_some(),
                "{name}"
            );
        }
        assert!(parse_crc(&meta[METADATA_CRC]).is_some());
    }

    /// A Grokfast-MA window of 3 gradients is stored as `[B, 3, n]` with its checksum
    /// and read back.
    #[test]
    fn a_grokfast_window_round_trips_with_its_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ck.safetensors");
        let (config, weights, mut state) = fixture();
        let n = state.params.len();
        state.grokfast_window = (0..3 * n).map(|i| i as f32 * 0.25).collect();
        save_state(&path, &config, &weights, &state).unwrap();
        assert_eq!(load_state::<f32>(&path, &config).unwrap(), state);
        let bytes = std::fs::read(&path).unwrap();
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let meta = header.metadata().clone().unwrap();
        assert!(parse_crc(&meta["crc32.grokfast_window"]).is_some());
        assert_eq!(header.tensors()["grokfast_window"].shape, vec![2, 3, n / 2]);
    }

    #[test]
    fn a_flipped_byte_in_any_tensor_is_refused_naming_tensor_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ck.safetensors");
        let (config, weights, state) = fixture();
        save_state(&path, &config, &weights, &state).unwrap();
        let good = std::fs::read(&path).unwrap();
        for (name, range) in data_ranges(&good) {
            let mut bytes = good.clone();
            // A byte in the middle of the tensor, flipped so the value stays finite-looking.
            bytes[(range.start + range.end) / 2] ^= 0x01;
            std::fs::write(&path, &bytes).unwrap();
            let errors = [
                Checkpoint::load(&path).unwrap_err(),
                load_state::<f32>(&path, &config).unwrap_err(),
            ];
            for e in errors {
                let msg = e.to_string();
                assert!(matches!(e, Error::BadFile { .. }), "{msg}");
                assert!(
                    msg.contains(&format!("tensor '{name}' fails its checksum")),
                    "{msg}"
                );
                assert!(msg.contains("ck.safetensors"), "{msg}");
                assert!(msg.contains("stored crc32 "), "{msg}");
                assert!(msg.contains("the file is damaged"), "{msg}");
            }
        }
        std::fs::write(&path, &good).unwrap();
        assert_eq!(load_state::<f32>(&path, &config).unwrap(), state);
    }

    #[test]
    fn damaged_metadata_or_missing_checksums_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ck.safetensors");
        let (config, weights, state) = fixture();
        let write = || save_state(&path, &config, &weights, &state).unwrap();
        let refused = |what: &str| {
            let msg = Checkpoint::load(&path).unwrap_err().to_string();
            assert!(msg.contains(what), "{msg}");
            assert!(msg.contains("the file is damaged"), "{msg}");
            let msg = load_state::<f32>(&path, &config).unwrap_err().to_string();
            assert!(msg.contains(what), "{msg}");
        };

        write();
        rewrite(&path, |m| {
            m.insert("step".into(), "8".into());
        });
        refused("the metadata fails its checksum");

        write();
        rewrite(&path, |m| {
            m.remove("crc32.u");
        });
        // The metadata checksum covers the tensor checksums, so it notices first.
        refused("the metadata fails its checksum");

        write();
        rewrite(&path, |m| {
            m.remove("crc32.u");
            let crc = metadata_crc(m);
            m.insert(METADATA_CRC.into(), crc_text(crc));
        });
        refused("tensor 'u' has no checksum (metadata 'crc32.u' is missing)");

        write();
        rewrite(&path, |m| {
            m.insert("crc32.grokfast_ema".into(), "00000000".into());
            let crc = metadata_crc(m);
            m.insert(METADATA_CRC.into(), crc_text(crc));
        });
        refused("tensor 'grokfast_ema', which the file does not hold");

        write();
        rewrite(&path, |m| {
            m.insert("crc32.v".into(), "xyz".into());
            let crc = metadata_crc(m);
            m.insert(METADATA_CRC.into(), crc_text(crc));
        });
        refused("metadata 'crc32.v' = \"xyz\" is not a crc32");

        write();
        rewrite(&path, |m| {
            m.remove(METADATA_CRC);
        });
        refused("the metadata has no checksum");
    }

    /// Files written before checksums (v1) still load, unverified; an unknown format is
    /// refused.
    #[test]
    fn v1_files_load_without_verification() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ck.safetensors");
        let (config, weights, state) = fixture();
        save_state(&path, &config, &weights, &state).unwrap();
        rewrite(&path, |m| {
            m.retain(|k, _| !k.starts_with(TENSOR_CRC) && k != METADATA_CRC);
            m.insert("format".into(), FORMAT_V1.into());
        });
        assert_eq!(load_state::<f32>(&path, &config).unwrap(), state);
        assert_eq!(Checkpoint::load(&path).unwrap().weights, weights.cast());
        // Nothing to verify against: a damaged v1 file is read as it is.
        let mut bytes = std::fs::read(&path).unwrap();
        let (_, range) = data_ranges(&bytes).pop().unwrap();
        bytes[range.start] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        assert!(Checkpoint::load(&path).is_ok());

        rewrite(&path, |m| {
            m.insert("format".into(), "clockwork-checkpoint-v9".into());
        });
        let msg = Checkpoint::load(&path).unwrap_err().to_string();
        assert!(
            msg.contains("metadata 'format' is 'clockwork-checkpoint-v9'"),
            "{msg}"
        );
    }
}
