//! Training one batch of a sweep, resumably, and turning it into result rows.
//!
//! A batch lives in `SWEEP/batches/bNNNNN/`:
//! - `seg-0/`, `seg-1/`, …: run directories ([`crate::run`]): config, metrics,
//!   checkpoints, lock. `seg-0` trains every model of the batch. When a model's loss
//!   becomes NaN/inf, the run loop stops the whole trainer (one non-finite loss fails
//!   the step of the batch, by design: nothing of that step is applied) and keeps the
//!   last good checkpoint. The sweep then marks that model diverged and starts the next
//!   segment from that checkpoint with the model cut out of every state buffer; the
//!   others continue with exactly the bits they would have had (a model's training does
//!   not depend on its batch), so a divergence costs the rest at most `eval_every`
//!   recomputed steps and changes none of their results.
//! - `state.json`: the segments (which models each trains) and the diverged models,
//!   rewritten atomically after each change.
//! - `result.json`: the batch's rows and metric histories, written atomically once it is
//!   done; a batch with this file is never trained again.
//!
//! After a crash or Ctrl-C the newest segment resumes from its newest checkpoint
//! (a segment killed before its first checkpoint starts over).

use super::expand::{raw, Point};
use super::plan::{batch_config, Batch};
use super::results::{rows, ModelOutcome, ModelRow, Thresholds};
use crate::analysis::basis::Basis;
use crate::checkpoint::{self, Checkpoint};
use crate::config::RunConfig;
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::kinds::Dtype;
use crate::layout::{MetricsRecord, CONFIG_FILE, METRICS_FILE};
use crate::model::Params;
use crate::real::Real;
use crate::run::{self, RunError, RunFailure, RunOptions, RunStatus};
use crate::train::TrainerState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The file of a finished batch.
pub const RESULT_FILE: &str = "result.json";
const STATE_FILE: &str = "state.json";

/// What a finished batch produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchResult {
    /// One row per model, in point order.
    pub rows: Vec<ModelRow>,
    /// Every evaluation of every model (`model` = point id; `elapsed_s` left out so the
    /// file depends on the results only), by model then step.
    pub history: Vec<MetricsRecord>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct BatchState {
    segments: Vec<Segment>,
    diverged: Vec<DivergedModel>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Segment {
    /// Point ids it trains, in batch order.
    models: Vec<usize>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct DivergedModel {
    model: usize,
    /// The step whose loss was not finite.
    step: u64,
    /// That loss, as text (NaN and inf are not JSON numbers).
    loss: String,
    /// The segment it was in, and the step of the last good checkpoint there (None: it
    /// was not finite at step 0).
    segment: usize,
    checkpoint: Option<u64>,
}

/// The directory of batch `b` in a sweep directory.
pub fn batch_dir(sweep_dir: &Path, b: usize) -> PathBuf {
    sweep_dir.join("batches").join(format!("b{b:05}"))
}

/// The finished result of a batch, if it has one.
pub fn read_result(dir: &Path) -> Result<Option<BatchResult>> {
    let path = dir.join(RESULT_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::BadFile {
            path,
            reason: format!("not a batch result: {e}"),
        })
}

/// Trains batch `batch` of `points` in `dir` (resuming what is there) and writes its
/// result. Returns None when interrupted (resume by calling it again).
pub fn run_batch(
    dir: &Path,
    points: &[Point],
    batch: &Batch,
    thresholds: Thresholds,
    options: &RunOptions,
) -> Result<Option<BatchResult>> {
    if let Some(done) = read_result(dir)? {
        return Ok(Some(done));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let state_path = dir.join(STATE_FILE);
    let mut state = match std::fs::read_to_string(&state_path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| Error::BadFile {
            path: state_path.clone(),
            reason: format!("not a batch state: {e}"),
        })?,
        Err(_) => BatchState {
            segments: vec![Segment {
                models: batch.points.clone(),
            }],
            diverged: Vec::new(),
        },
    };
    loop {
        let k = state.segments.len() - 1;
        let seg_dir = dir.join(format!("seg-{k}"));
        let config = segment_config(points, &state.segments[k])?;
        let outcome = if has_checkpoint(&seg_dir) {
            run::resume(&seg_dir, None, options)
        } else {
            remove_if_present(&seg_dir)?;
            run::start(&config, &seg_dir, options)
        };
        let failure = match outcome {
            Ok(s) if s.status == RunStatus::Completed => break,
            Ok(_) => return Ok(None),
            Err(RunError::Input(e)) => return Err(e),
            Err(RunError::Failed(f)) => *f,
        };
        let RunFailure {
            error, checkpoint, ..
        } = failure;
        let Error::Diverged { step, model, loss } = error else {
            return Err(error);
        };
        let models = &state.segments[k].models;
        let ckpt_step = checkpoint.as_ref().map(|c| state_step(c)).transpose()?;
        state.diverged.push(DivergedModel {
            model: models[model],
            step,
            loss: loss.to_string(),
            segment: k,
            checkpoint: ckpt_step,
        });
        let keep: Vec<usize> = (0..models.len()).filter(|&j| j != model).collect();
        if !keep.is_empty() {
            let next = Segment {
                models: keep.iter().map(|&j| models[j]).collect(),
            };
            let next_dir = dir.join(format!("seg-{}", k + 1));
            match &checkpoint {
                Some(path) => {
                    let next_config = segment_config(points, &next)?;
                    let history = kept_history(&seg_dir, &keep, ckpt_step.unwrap_or(0))?;
                    seed_segment(path, &config, &keep, &next_config, &next_dir, &history)?;
                }
                None => remove_if_present(&next_dir)?,
            }
            state.segments.push(next);
        }
        let text = serde_json::to_string_pretty(&state).expect("plain data serializes");
        write_atomic(&state_path, text.as_bytes())?;
        if keep.is_empty() {
            break;
        }
    }
    let result = collect(dir, points, batch, &state, thresholds)?;
    let text = serde_json::to_string(&result).expect("plain data serializes");
    write_atomic(&dir.join(RESULT_FILE), text.as_bytes())?;
    Ok(Some(result))
}

fn segment_config(points: &[Point], seg: &Segment) -> Result<RunConfig> {
    batch_config(&seg.models.iter().map(|&id| &points[id]).collect::<Vec<_>>())
}

fn has_checkpoint(dir: &Path) -> bool {
    dir.join(CONFIG_FILE).exists() && checkpoint::list(dir).is_ok_and(|l| !l.is_empty())
}

/// The step a checkpoint file is named for.
fn state_step(path: &Path) -> Result<u64> {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(crate::layout::checkpoint_step)
        .ok_or_else(|| Error::BadFile {
            path: path.into(),
            reason: "not named like a checkpoint".into(),
        })
}

/// The `metrics.jsonl` lines of segment `dir` up to `step` for the models `keep`
/// (indices into its batch), renumbered to their places in `keep`: what the next
/// segment's run directory starts with, so that a resume there replays the early-stop
/// rule ([`crate::run`]) over the same history and keeps a stopped model frozen.
fn kept_history(dir: &Path, keep: &[usize], step: u64) -> Result<String> {
    let mut text = String::new();
    for mut r in read_metrics(dir)? {
        let Some(j) = keep.iter().position(|&k| k == r.model) else {
            continue;
        };
        if r.step > step {
            continue;
        }
        r.model = j;
        text.push_str(&serde_json::to_string(&r).expect("plain numbers serialize"));
        text.push('\n');
    }
    Ok(text)
}

/// Writes run directory `out` holding `new`, one checkpoint — the state of `from`
/// (a checkpoint of config `old`) with only the models `keep` (indices into `old`'s
/// batch) — and `history` as its `metrics.jsonl`. Built under a temporary name and
/// renamed into place.
fn seed_segment(
    from: &Path,
    old: &RunConfig,
    keep: &[usize],
    new: &RunConfig,
    out: &Path,
    history: &str,
) -> Result<()> {
    match old.dtype {
        Dtype::F32 => seed_typed::<f32>(from, old, keep, new, out, history),
        Dtype::F64 => seed_typed::<f64>(from, old, keep, new, out, history),
    }
}

fn seed_typed<F: Real>(
    from: &Path,
    old: &RunConfig,
    keep: &[usize],
    new: &RunConfig,
    out: &Path,
    history: &str,
) -> Result<()> {
    let state = checkpoint::load_state::<F>(from, old)?;
    // Every buffer is model-major: `old.models` equal slices (the Grokfast window's
    // slice is its `len` gradients of that model).
    let pick = |v: &[F]| -> Vec<F> {
        if v.is_empty() {
            return Vec::new();
        }
        let n = v.len() / old.models;
        keep.iter()
            .flat_map(|&k| v[k * n..(k + 1) * n].iter().copied())
            .collect()
    };
    let state = TrainerState {
        step: state.step,
        params: pick(&state.params),
        adam_m: pick(&state.adam_m),
        adam_v: pick(&state.adam_v),
        grokfast_ema: pick(&state.grokfast_ema),
        grokfast_window: pick(&state.grokfast_window),
    };
    let weights = Params {
        spec: new.model_spec(),
        batch: keep.len(),
        data: state.params.clone(),
    }
    .effective();
    let (parent, name) = crate::fsutil::dir_and_name(out);
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    remove_if_present(&tmp)?;
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    write_atomic(&tmp.join(CONFIG_FILE), new.to_toml().as_bytes())?;
    write_atomic(&tmp.join(METRICS_FILE), history.as_bytes())?;
    checkpoint::save_state(
        &checkpoint::path_for(&tmp, state.step),
        new,
        &weights,
        &state,
    )?;
    remove_if_present(out)?;
    std::fs::rename(&tmp, out).map_err(|e| Error::io(out, e))
}

/// Removes a directory left by an earlier, abandoned attempt.
fn remove_if_present(dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    Ok(())
}

/// The metrics records of a run directory (a torn last line is skipped).
fn read_metrics(dir: &Path) -> Result<Vec<MetricsRecord>> {
    let path = dir.join(METRICS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&path, e)),
    };
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

/// The rows and histories of a finished batch, from its segments.
fn collect(
    dir: &Path,
    points: &[Point],
    batch: &Batch,
    state: &BatchState,
    thresholds: Thresholds,
) -> Result<BatchResult> {
    let diverged: BTreeMap<usize, &DivergedModel> =
        state.diverged.iter().map(|d| (d.model, d)).collect();
    // (model, step) → record; later segments repeat a step only at their start, with
    // the same bits.
    let mut history: BTreeMap<(usize, u64), MetricsRecord> = BTreeMap::new();
    for (k, seg) in state.segments.iter().enumerate() {
        for mut r in read_metrics(&dir.join(format!("seg-{k}")))? {
            let Some(&id) = seg.models.get(r.model) else {
                continue;
            };
            if let Some(d) = diverged.get(&id) {
                if d.segment == k && d.checkpoint.is_none_or(|c| r.step > c) {
                    continue;
                }
            }
            r.model = id;
            r.elapsed_s = None;
            history.insert((id, r.step), r);
        }
    }
    // Final weights: the last segment's newest checkpoint for the models that finished,
    // the last good checkpoint of its segment for a diverged one.
    let mut loaded: BTreeMap<PathBuf, Checkpoint> = BTreeMap::new();
    let mut where_: BTreeMap<usize, (PathBuf, usize)> = BTreeMap::new();
    let last = state.segments.len() - 1;
    let last_dir = dir.join(format!("seg-{last}"));
    let survivors: Vec<usize> = state.segments[last]
        .models
        .iter()
        .copied()
        .filter(|id| !diverged.contains_key(id))
        .collect();
    if !survivors.is_empty() {
        let newest = checkpoint::list(&last_dir)?
            .pop()
            .map(|(_, p)| p)
            .ok_or_else(|| Error::BadFile {
                path: last_dir.clone(),
                reason: "a finished segment without a checkpoint".into(),
            })?;
        for (j, &id) in state.segments[last].models.iter().enumerate() {
            where_.insert(id, (newest.clone(), j));
        }
    }
    for d in state.diverged.iter() {
        if let Some(c) = d.checkpoint {
            let seg = &state.segments[d.segment];
            let j = seg.models.iter().position(|&m| m == d.model).unwrap_or(0);
            let path = checkpoint::path_for(&dir.join(format!("seg-{}", d.segment)), c);
            where_.insert(d.model, (path, j));
        }
    }
    for (path, _) in where_.values() {
        if !loaded.contains_key(path) {
            loaded.insert(path.clone(), Checkpoint::load(path)?);
        }
    }
    let histories: Vec<Vec<MetricsRecord>> = batch
        .points
        .iter()
        .map(|&id| {
            history
                .range((id, 0)..=(id, u64::MAX))
                .map(|(_, r)| r.clone())
                .collect()
        })
        .collect();
    let outcomes: Vec<ModelOutcome> = batch
        .points
        .iter()
        .zip(&histories)
        .map(|(&id, h)| ModelOutcome {
            model: id,
            group: batch.group,
            batch: batch.index,
            settings: points[id]
                .settings
                .iter()
                .map(|(k, v)| (k.clone(), raw(v)))
                .collect(),
            history: h,
            weights: where_.get(&id).map(|(path, j)| (&loaded[path].weights, *j)),
            diverged_step: diverged.get(&id).map(|d| d.step),
        })
        .collect();
    let basis = Basis::for_config(&points[batch.points[0]].config)?;
    Ok(BatchResult {
        rows: rows(&outcomes, &basis, thresholds)?,
        history: histories.into_iter().flatten().collect(),
    })
}
