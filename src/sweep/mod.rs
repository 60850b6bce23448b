//! Sweeps: many models over a grid of settings, trained in batched passes, summarized per
//! model and drawn as phase diagrams (issue 11).
//!
//! A sweep file (TOML) names a base config and the settings to vary:
//!
//! ```toml
//! name = "explainer-phase"          # optional (default: the file stem)
//! batch_max = 256                   # most models per trainer (bigger groups are split)
//! [base]
//! preset = "explainer"              # default "default"
//! config = "run.toml"               # optional, merged over the preset (relative path)
//! [base.set]                        # overrides for every point, dotted keys
//! "train.steps" = 3000
//! [axes]                            # cartesian product over any config keys
//! "optimizer.weight_decay" = [0.0, 0.3, 1.0]           # a list
//! "task.train_fraction" = { linspace = [0.2, 0.8, 4] } # a, b, count
//! "optimizer.lr" = { logspace = [1e-4, 1e-2, 3] }      # log-spaced
//! "model.width" = { range = [16, 64, 16] }             # start, stop (excluded), step
//! seed = { seeds = 3 }                                 # 0, 1, 2 (first = s shifts them)
//! [[points]]                        # optional explicit points, crossed with the axes
//! "task.p" = 23
//! label = "p23"                     # optional: names the point in tables (sets nothing)
//! [categories]                      # final accuracies that decide a model's category
//! train_acc = 0.95
//! test_acc = 0.95
//! [[diagrams]]                      # default: the first two swept keys besides seed
//! x = "task.train_fraction"
//! y = "optimizer.weight_decay"
//! metrics = ["final_test_acc", "grok_step"]
//! ```
//!
//! The pieces: [`spec`] (the file), [`expand`] (points, each resolved and validated like
//! `train` resolves a config), [`plan`] (shape groups, batches, shards), [`batch`]
//! (training a batch resumably, divergence handling), [`results`] (per-model rows),
//! [`tables`], [`diagram`], [`report`] (the outputs), [`estimate`] (the dry run's time
//! estimate), [`merge`] (joining shards), [`explore`] (the interactive page) and
//! [`rewrite`] (`sweep report`: the outputs again from what a directory holds). Everything a sweep file can get wrong is
//! found by [`Sweep::load`], before anything is trained.
//!
//! A sweep directory holds `sweep.json` (what was swept, the fingerprint and the shard),
//! `batches/bNNNNN/` (see [`batch`]), and the outputs: `results.csv`, `results.jsonl`,
//! `histories.jsonl`, the diagrams (PNG + SVG), `index.html` and, when asked for (and
//! from then on, so it never goes stale), `explore.html`.

pub mod batch;
pub mod diagram;
pub mod estimate;
pub mod expand;
pub mod explore;
pub mod merge;
pub mod plan;
pub mod report;
pub mod results;
pub mod rewrite;
pub mod spec;
pub mod tables;

use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::layout::MetricsRecord;
use crate::run::{Progress, RunOptions};
use expand::Point;
use plan::{Plan, Shard};
use results::{ModelRow, Thresholds, METRICS};
use serde::{Deserialize, Serialize};
use spec::{DiagramSpec, SweepSpec};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

/// The file describing a sweep directory.
pub const META_FILE: &str = "sweep.json";

/// A checked, expanded sweep.
#[derive(Clone, Debug)]
pub struct Sweep {
    /// The parsed file.
    pub spec: SweepSpec,
    /// Its text (stored in `sweep.json`, so a merge can re-read it).
    pub text: String,
    /// Every model.
    pub points: Vec<Point>,
    /// Groups and batches.
    pub plan: Plan,
    /// The diagrams to draw (the file's, or the default).
    pub diagrams: Vec<DiagramSpec>,
    /// Checksum of the points, the batch cut and the thresholds.
    pub fingerprint: String,
}

impl Sweep {
    /// Reads, expands and checks a sweep file: every point's config, every batch's
    /// config and the diagrams. Nothing is written.
    pub fn load(path: &Path) -> Result<Sweep> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let spec = SweepSpec::read(path)?;
        Sweep::new(spec, text)
    }

    /// Expands and checks a parsed spec.
    pub fn new(spec: SweepSpec, text: String) -> Result<Sweep> {
        let points = expand::expand(&spec)?;
        let plan = plan::plan(&points, spec.batch_max);
        for b in &plan.batches {
            let pts: Vec<&Point> = b.points.iter().map(|&id| &points[id]).collect();
            plan::batch_config(&pts)?;
        }
        let diagrams = resolved_diagrams(&spec)?;
        let fingerprint = plan::fingerprint(&points, &plan, (spec.train_acc, spec.test_acc));
        Ok(Sweep {
            spec,
            text,
            points,
            plan,
            diagrams,
            fingerprint,
        })
    }

    /// The category thresholds.
    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            train_acc: self.spec.train_acc,
            test_acc: self.spec.test_acc,
        }
    }
}

/// The diagrams of a spec, checked against its swept keys and the metrics; without
/// `[[diagrams]]`, the first two swept keys besides `seed` (none if there are fewer).
pub fn resolved_diagrams(spec: &SweepSpec) -> Result<Vec<DiagramSpec>> {
    let keys = spec.swept_keys();
    if spec.diagrams.is_empty() {
        let mut non_seed = keys.iter().filter(|k| k.as_str() != "seed");
        return Ok(match (non_seed.next(), non_seed.next()) {
            (Some(x), Some(y)) => vec![DiagramSpec {
                x: x.clone(),
                y: y.clone(),
                metrics: vec!["final_test_acc".into(), "grok_step".into()],
            }],
            _ => Vec::new(),
        });
    }
    for (i, d) in spec.diagrams.iter().enumerate() {
        for (axis, key) in [("x", &d.x), ("y", &d.y)] {
            if !keys.contains(key) {
                return Err(Error::config(
                    &format!("diagrams[{i}].{axis}"),
                    key,
                    format!("not a swept key; swept: {}", keys.join(", ")),
                ));
            }
        }
        if d.x == d.y {
            return Err(Error::config(
                &format!("diagrams[{i}].y"),
                &d.y,
                "x and y must be different keys",
            ));
        }
        for m in &d.metrics {
            if !METRICS.contains(&m.as_str()) {
                return Err(Error::config(
                    &format!("diagrams[{i}].metrics"),
                    m,
                    format!("unknown metric; one of {}", METRICS.join(", ")),
                ));
            }
        }
    }
    Ok(spec.diagrams.clone())
}

/// What a sweep directory says about itself (`sweep.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepMeta {
    /// The sweep's name.
    pub name: String,
    /// [`Sweep::fingerprint`].
    pub fingerprint: String,
    /// Which slice this directory trains.
    pub shard: Shard,
    /// Models in the whole sweep.
    pub models: usize,
    /// Batches in the whole sweep.
    pub batches: usize,
    /// The sweep file's text.
    pub spec: String,
}

impl SweepMeta {
    /// Reads `dir/sweep.json`.
    pub fn read(dir: &Path) -> Result<SweepMeta> {
        let path = dir.join(META_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::BadFile {
            path: path.clone(),
            reason: format!("not a sweep directory: {e}"),
        })?;
        serde_json::from_str(&text).map_err(|e| Error::BadFile {
            path,
            reason: format!("not a sweep description: {e}"),
        })
    }

    /// The rows and histories of every batch of this shard in `dir`, which must all be
    /// finished (an unfinished one is refused, naming it).
    pub fn read_batches(&self, dir: &Path) -> Result<(Vec<ModelRow>, Vec<MetricsRecord>)> {
        let (mut rows, mut history) = (Vec::new(), Vec::new());
        for b in (0..self.batches).filter(|&b| self.shard.holds(b)) {
            let bdir = batch::batch_dir(dir, b);
            let result = batch::read_result(&bdir)?.ok_or_else(|| Error::BadFile {
                path: bdir.clone(),
                reason: format!(
                    "batch {b} of shard {} is not finished: run that shard again (the same \
                     command resumes it)",
                    self.shard
                ),
            })?;
            rows.extend(result.rows);
            history.extend(result.history);
        }
        Ok((rows, history))
    }
}

/// How a sweep runs (none of this changes its results).
#[derive(Clone, Debug, Default)]
pub struct SweepOptions {
    /// Progress of each batch's training (on stderr).
    pub progress: Progress,
    /// Set to stop after the current batch's next step (a checkpoint is written).
    pub interrupt: Option<Arc<AtomicBool>>,
    /// No per-batch lines on stderr.
    pub quiet: bool,
    /// Also write `explore.html` ([`explore`]).
    pub explore: bool,
}

/// How a sweep call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SweepStatus {
    /// Every batch of the shard is done and the outputs are written.
    Completed,
    /// Interrupted; run it again to continue.
    Interrupted,
}

/// What a sweep call did.
#[derive(Clone, Debug)]
pub struct SweepReport {
    /// Finished or interrupted.
    pub status: SweepStatus,
    /// The sweep directory.
    pub out: PathBuf,
    /// Batches trained by this call, and found finished.
    pub trained: usize,
    /// Batches that were already done.
    pub skipped: usize,
    /// Models in the tables.
    pub models: usize,
    /// Wall time of this call.
    pub elapsed_s: f64,
    /// The files written (tables, diagrams, page).
    pub written: Vec<PathBuf>,
}

/// Where a sweep's directory goes unless told: `sweeps/NAME`, or
/// `sweeps/NAME-shard-i-of-n` for a slice.
pub fn default_out(sweep: &Sweep, shard: Shard) -> PathBuf {
    let name = if shard.count > 1 {
        format!(
            "{}-shard-{}-of-{}",
            sweep.spec.name, shard.index, shard.count
        )
    } else {
        sweep.spec.name.clone()
    };
    Path::new("sweeps").join(name)
}

/// Creates `out` or checks that it holds this sweep and shard.
fn prepare_out(out: &Path, sweep: &Sweep, shard: Shard) -> Result<()> {
    let meta = SweepMeta {
        name: sweep.spec.name.clone(),
        fingerprint: sweep.fingerprint.clone(),
        shard,
        models: sweep.points.len(),
        batches: sweep.plan.batches.len(),
        spec: sweep.text.clone(),
    };
    if out.join(META_FILE).exists() {
        let found = SweepMeta::read(out)?;
        if found.fingerprint != meta.fingerprint || found.shard != shard {
            return Err(Error::BadFile {
                path: out.join(META_FILE),
                reason: format!(
                    "this directory holds another sweep or shard (fingerprint {}, shard {}; \
                     this one is {}, shard {shard}): pick another --out",
                    found.fingerprint, found.shard, meta.fingerprint
                ),
            });
        }
        return Ok(());
    }
    if out.exists() && std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some()) {
        return Err(Error::BadFile {
            path: out.into(),
            reason: "exists, is not empty and is not a sweep directory".into(),
        });
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let text = serde_json::to_string_pretty(&meta).expect("plain data serializes");
    write_atomic(&out.join(META_FILE), text.as_bytes())
}

/// The pages' title for shard `shard` of sweep `name`.
pub fn title(name: &str, shard: Shard) -> String {
    if shard.count > 1 {
        format!("Sweep {name} (shard {shard})")
    } else {
        format!("Sweep {name}")
    }
}

/// Trains shard `shard` of `sweep` into `out` (resuming what is there: finished batches
/// are read back, unfinished ones continue from their checkpoints), then writes the
/// tables, diagrams and `index.html` of what the shard holds.
pub fn run(sweep: &Sweep, out: &Path, shard: Shard, options: &SweepOptions) -> Result<SweepReport> {
    let started = Instant::now();
    prepare_out(out, sweep, shard)?;
    let run_options = RunOptions {
        progress: options.progress,
        force: false,
        interrupt: options.interrupt.clone(),
        spectra: Some(crate::analysis::record::open_sink),
    };
    let mine: Vec<&plan::Batch> = sweep
        .plan
        .batches
        .iter()
        .filter(|b| shard.holds(b.index))
        .collect();
    let (mut rows, mut history) = (Vec::new(), Vec::new());
    let (mut trained, mut skipped) = (0, 0);
    for (n, b) in mine.iter().enumerate() {
        let dir = batch::batch_dir(out, b.index);
        let done = batch::read_result(&dir)?.is_some();
        if !options.quiet && !done {
            eprintln!(
                "batch {}/{} (index {}, group {}: {} models): {}",
                n + 1,
                mine.len(),
                b.index,
                b.group,
                b.points.len(),
                sweep.plan.groups[b.group].describe
            );
        }
        match batch::run_batch(&dir, &sweep.points, b, sweep.thresholds(), &run_options)? {
            Some(result) => {
                if done {
                    skipped += 1;
                } else {
                    trained += 1;
                }
                rows.extend(result.rows);
                history.extend(result.history);
            }
            None => {
                return Ok(SweepReport {
                    status: SweepStatus::Interrupted,
                    out: out.into(),
                    trained,
                    skipped,
                    models: rows.len(),
                    elapsed_s: started.elapsed().as_secs_f64(),
                    written: Vec::new(),
                })
            }
        }
    }
    let title = title(&sweep.spec.name, shard);
    let written = write_outputs(
        out,
        &Outputs {
            title: &title,
            keys: &sweep.spec.swept_keys(),
            diagrams: &sweep.diagrams,
            explore: options.explore,
        },
        rows,
        history,
    )?;
    Ok(SweepReport {
        status: SweepStatus::Completed,
        out: out.into(),
        trained,
        skipped,
        models: written.0,
        elapsed_s: started.elapsed().as_secs_f64(),
        written: written.1,
    })
}

/// What [`write_outputs`] writes besides the rows.
pub struct Outputs<'a> {
    /// Title of the pages.
    pub title: &'a str,
    /// The swept keys (the tables' setting columns).
    pub keys: &'a [String],
    /// The diagrams to draw.
    pub diagrams: &'a [DiagramSpec],
    /// Write `explore.html` too. An `explore.html` already in the directory is rewritten
    /// either way, so it never shows older results than the tables.
    pub explore: bool,
}

/// Writes the tables, diagrams and pages of `rows` into `out`; returns the number of
/// rows and the files.
pub fn write_outputs(
    out: &Path,
    o: &Outputs,
    mut rows: Vec<ModelRow>,
    mut history: Vec<MetricsRecord>,
) -> Result<(usize, Vec<PathBuf>)> {
    rows.sort_by_key(|r| r.model);
    history.sort_by_key(|r| (r.model, r.step));
    let mut written = tables::write_tables(out, &rows, &history, o.keys)?;
    let drawn = diagram::draw_all(&rows, o.diagrams, out)?;
    for d in &drawn {
        written.push(d.files.png.clone());
        written.push(d.files.svg.clone());
    }
    if o.explore || out.join(explore::EXPLORE_FILE).exists() {
        written.push(explore::write_explorer(
            out, o.title, o.keys, o.diagrams, &rows, &history,
        )?);
    }
    written.push(report::write_index(
        out,
        o.title,
        &[],
        &rows,
        o.keys,
        &drawn,
    )?);
    Ok((rows.len(), written))
}
