//! Run directories: the training loop behind the `train` binary, reusable by any front
//! end (a sweep, a notebook-style example).
//!
//! A run directory holds:
//! - `config.toml`: the resolved [`RunConfig`] (what `--resume` reads back),
//! - `metrics.jsonl`: one JSON object per (evaluation, model), evaluations at step 0,
//!   every `train.eval_every` steps and at the last step:
//!   `{"step", "model", "lr", "train_loss", "train_acc", "test_loss", "test_acc",
//!   "margin", "gamma_star", "reg_loss", "elapsed_s"}`. `step` counts the steps taken,
//!   `lr` is the learning rate in effect at that step (the one the next step uses),
//!   `test_*` are null without a split, `margin` is the normalized margin over the
//!   training pairs ([`crate::theory::normalized_margin`]), `gamma_star` is null where
//!   the formula does not apply, `reg_loss` is the regularizer's value, and `elapsed_s`
//!   the training wall time so far (summed over resumptions). Non-finite numbers are null.
//! - `checkpoints/step-XXXXXXXX.safetensors`: [`crate::checkpoint`] files every
//!   `train.checkpoint_every` steps and at the end, written atomically.
//! - `spectra.jsonl` (when `train.spectra_every > 0`): one
//!   [`crate::analysis::record::SpectraRecord`] per (record step, model) at step 0,
//!   every `train.spectra_every` steps and at the last step: every neuron's Fourier
//!   spectrum summary with the margin (over the training pairs, as in `metrics.jsonl`),
//!   train and test accuracy of that step. A record step that is not an evaluation step
//!   gets its own evaluation (one forward pass, not logged to `metrics.jsonl`). Each
//!   record is one whole line written with one `write`, so a crash can at worst cut off
//!   the last line, which readers skip and [`resume`] drops.
//!
//! [`start`] checks everything (config, task, trainer, output directory) before it
//! creates anything, and creates the directory under a temporary name that is renamed
//! into place once `config.toml` is written, so bad input never leaves a half-written
//! directory. [`resume`] continues from the newest checkpoint and produces the same bits
//! as an uninterrupted run: the trainer's whole evolving state is in the checkpoint, and
//! the only random draws (initialization and split) come from the seed.
//!
//! A NaN/inf loss stops the run ([`RunError::Failed`]) after writing a checkpoint of the
//! last state that evaluated finite; setting the interrupt flag makes the loop write a
//! checkpoint of the current state and return [`RunStatus::Interrupted`].

use crate::analysis::record::{RecordMetrics, SpectraRecorder};
use crate::checkpoint;
use crate::config::RunConfig;
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::kinds::Dtype;
use crate::real::Real;
use crate::train::{Evaluation, Trainer, TrainerState};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// File name of the resolved config inside a run directory.
pub const CONFIG_FILE: &str = "config.toml";
/// File name of the metrics log inside a run directory.
pub const METRICS_FILE: &str = "metrics.jsonl";

/// How progress is shown (on stderr).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Progress {
    /// A bar when stderr is a terminal, else plain lines.
    #[default]
    Auto,
    /// A progress bar with step, loss, accuracy and steps/s.
    Bar,
    /// One line per evaluation, at most one a second (plus the last).
    Lines,
    /// Nothing.
    Off,
}

/// How a run behaves (not part of its config: none of this changes the result).
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// How progress is shown.
    pub progress: Progress,
    /// Replace an existing run directory (one holding a `config.toml`) at the output path.
    pub force: bool,
    /// When this becomes true, the loop writes a checkpoint and returns
    /// [`RunStatus::Interrupted`] (the `train` binary sets it on Ctrl-C).
    pub interrupt: Option<Arc<AtomicBool>>,
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunStatus {
    /// Reached `train.steps`.
    Completed,
    /// Stopped by the interrupt flag; resume with [`resume`].
    Interrupted,
}

/// Final metrics of one model.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSummary {
    /// Data loss on the training pairs.
    pub train_loss: f64,
    /// Accuracy on the training pairs.
    pub train_acc: f64,
    /// Loss on the held-out pairs (None without a split).
    pub test_loss: Option<f64>,
    /// Accuracy on the held-out pairs (None without a split).
    pub test_acc: Option<f64>,
    /// Normalized margin over the training pairs.
    pub margin: f64,
    /// Value of the regularizer.
    pub reg_loss: f64,
    /// γ* of the model's setup where the theory gives it.
    pub gamma_star: Option<f64>,
}

/// What a finished (or interrupted) run reports.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    /// The run directory.
    pub dir: PathBuf,
    /// Finished or interrupted.
    pub status: RunStatus,
    /// Steps taken in all (across resumptions).
    pub step: u64,
    /// `train.steps` of the config.
    pub total_steps: u64,
    /// Steps taken by this call.
    pub session_steps: u64,
    /// Wall time of this call's training loop.
    pub session_s: f64,
    /// Checkpoint holding the final state.
    pub checkpoint: PathBuf,
    /// Final metrics per model.
    pub models: Vec<ModelSummary>,
}

impl RunSummary {
    /// Steps per second of this call.
    pub fn steps_per_s(&self) -> f64 {
        if self.session_s > 0.0 {
            self.session_steps as f64 / self.session_s
        } else {
            0.0
        }
    }
}

/// Why a run did not finish.
#[derive(Debug)]
pub enum RunError {
    /// Bad input (config, paths, checkpoint): nothing was written.
    Input(Error),
    /// The run failed after it started (divergence, I/O).
    Failed(Box<RunFailure>),
}

/// A run that failed after it started. The directory holds everything up to
/// `checkpoint`, the last good state, when there is one.
#[derive(Debug)]
pub struct RunFailure {
    /// What went wrong.
    pub error: Error,
    /// The run directory.
    pub dir: PathBuf,
    /// The last good checkpoint, if any.
    pub checkpoint: Option<PathBuf>,
}

impl RunError {
    fn failed(error: Error, dir: &Path, checkpoint: Option<PathBuf>) -> RunError {
        RunError::Failed(Box::new(RunFailure {
            error,
            dir: dir.into(),
            checkpoint,
        }))
    }

    /// The process exit code the `train` binary uses: 2 for bad input, 1 for failures.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Input(_) => 2,
            RunError::Failed(_) => 1,
        }
    }
    /// The underlying error.
    pub fn error(&self) -> &Error {
        match self {
            RunError::Input(e) => e,
            RunError::Failed(f) => &f.error,
        }
    }
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.error())
    }
}

impl std::error::Error for RunError {}

/// A fresh, unused directory name `runs/<label>-<UTC timestamp>[-N]` (under `root`).
pub fn default_out_dir(root: &Path, label: &str) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    let stamp = format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    let base = root.join(format!("{label}-{stamp}"));
    let mut path = base.clone();
    let mut n = 2;
    while path.exists() {
        path = PathBuf::from(format!("{}-{n}", base.display()));
        n += 1;
    }
    path
}

/// Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Starts a run of `config` in the new directory `out`.
///
/// Everything is checked before `out` is created; errors up to then are
/// [`RunError::Input`] and leave nothing behind.
pub fn start(
    config: &RunConfig,
    out: &Path,
    options: &RunOptions,
) -> std::result::Result<RunSummary, RunError> {
    config.validate().map_err(RunError::Input)?;
    match config.dtype {
        Dtype::F64 => start_typed::<f64>(config, out, options),
        Dtype::F32 => start_typed::<f32>(config, out, options),
    }
}

/// Continues the run in `dir` from its newest checkpoint, optionally changing
/// `train.steps` to `steps` (which is then written back to `config.toml`).
///
/// Checks the directory, config and checkpoint before touching anything; lines of
/// `metrics.jsonl` past the checkpoint's step are dropped (atomically), so the file ends
/// up as an uninterrupted run's would.
pub fn resume(
    dir: &Path,
    steps: Option<u64>,
    options: &RunOptions,
) -> std::result::Result<RunSummary, RunError> {
    let config_path = dir.join(CONFIG_FILE);
    if !dir.is_dir() {
        return Err(RunError::Input(Error::BadFile {
            path: dir.into(),
            reason: "no such run directory".into(),
        }));
    }
    let text = std::fs::read_to_string(&config_path).map_err(|e| {
        RunError::Input(Error::BadFile {
            path: dir.into(),
            reason: format!("not a run directory: cannot read {CONFIG_FILE} ({e})"),
        })
    })?;
    let mut config = RunConfig::from_toml(&text).map_err(|e| {
        RunError::Input(Error::BadFile {
            path: config_path.clone(),
            reason: e.to_string(),
        })
    })?;
    if let Some(s) = steps {
        config.train.steps = s;
    }
    match config.dtype {
        Dtype::F64 => resume_typed::<f64>(dir, config, steps.is_some(), options),
        Dtype::F32 => resume_typed::<f32>(dir, config, steps.is_some(), options),
    }
}

/// A one-line description of a config: task, model, optimizer, length.
pub fn describe(c: &RunConfig) -> String {
    let split = if c.task.train_fraction < 1.0 {
        format!(" (train fraction {})", c.task.train_fraction)
    } else {
        String::new()
    };
    let tied = if c.model.tied { "tied " } else { "" };
    let embed = if c.model.embed_dim > 0 {
        format!(", embedding {}", c.model.embed_dim)
    } else {
        String::new()
    };
    format!(
        "{} mod {}{split}, {tied}{} width {}{embed}, {} lr {}, {} steps, {} model(s) in {}",
        c.task.op.name(),
        c.task.p,
        c.model.activation,
        c.model.width,
        format!("{:?}", c.optimizer.kind).to_lowercase(),
        c.optimizer.lr,
        c.train.steps,
        c.models,
        c.dtype
    )
}

fn input<T>(r: Result<T>) -> std::result::Result<T, RunError> {
    r.map_err(RunError::Input)
}

fn start_typed<F: Real>(
    config: &RunConfig,
    out: &Path,
    options: &RunOptions,
) -> std::result::Result<RunSummary, RunError> {
    let trainer = input(Trainer::<F>::from_config(config))?;
    input(check_out_dir(out, options.force))?;
    input(create_run_dir(out, config))?;
    if options.progress != Progress::Off {
        eprintln!(
            "{} on {} → {}",
            describe(config),
            trainer.describe(),
            out.display()
        );
    }
    let metrics = open_metrics(out).map_err(|e| RunError::failed(e, out, None))?;
    let spectra = open_spectra(out, config, None).map_err(|e| RunError::failed(e, out, None))?;
    let mut session = Session::new(trainer, out.into(), metrics, spectra, 0.0, options);
    session.run()
}

fn resume_typed<F: Real>(
    dir: &Path,
    config: RunConfig,
    steps_changed: bool,
    options: &RunOptions,
) -> std::result::Result<RunSummary, RunError> {
    let checkpoints = input(checkpoint::list(dir))?;
    let (ckpt_step, path) = checkpoints.last().cloned().ok_or_else(|| {
        RunError::Input(Error::BadFile {
            path: dir.join("checkpoints"),
            reason: "no checkpoint to resume from".into(),
        })
    })?;
    let corrupt = |e: Error| {
        RunError::Input(Error::BadFile {
            path: path.clone(),
            reason: format!(
                "cannot resume from it: {e} (delete it to resume from the previous checkpoint)"
            ),
        })
    };
    let saved = checkpoint::Checkpoint::load(&path).map_err(corrupt)?;
    let mut expected = saved.config.clone();
    expected.train.steps = config.train.steps;
    if expected != config {
        return Err(RunError::Input(Error::BadFile {
            path: dir.join(CONFIG_FILE),
            reason: format!(
                "differs from the config stored in {} (only train.steps may change on resume)",
                path.display()
            ),
        }));
    }
    let state = checkpoint::load_state::<F>(&path, &config).map_err(corrupt)?;
    if state.step != ckpt_step {
        return Err(corrupt(Error::BadFile {
            path: path.clone(),
            reason: format!(
                "holds step {} but is named for step {ckpt_step}",
                state.step
            ),
        }));
    }
    if ckpt_step > config.train.steps {
        return Err(RunError::Input(Error::config(
            "train.steps",
            config.train.steps,
            format!("the run is already at step {ckpt_step}; pass a larger --steps"),
        )));
    }
    let mut trainer = input(Trainer::<F>::from_config(&config))?;
    input(trainer.restore(state))?;
    let metrics_path = dir.join(METRICS_FILE);
    let previous = std::fs::read_to_string(&metrics_path).unwrap_or_default();
    // Everything is checked: from here on the directory is modified.
    let failed = |e: Error| RunError::failed(e, dir, Some(path.clone()));
    if steps_changed {
        write_atomic(&dir.join(CONFIG_FILE), config_file_text(&config).as_bytes())
            .map_err(failed)?;
    }
    let (kept, elapsed) = truncate_metrics(&previous, ckpt_step);
    if kept != previous {
        write_atomic(&metrics_path, kept.as_bytes()).map_err(failed)?;
    }
    let metrics = open_metrics(dir).map_err(failed)?;
    // Records past the checkpoint belong to the abandoned continuation.
    let spectra = open_spectra(dir, &config, Some(ckpt_step)).map_err(failed)?;
    if options.progress != Progress::Off {
        eprintln!(
            "resuming {} at step {ckpt_step} of {}: {}",
            dir.display(),
            config.train.steps,
            describe(&config)
        );
    }
    let mut session = Session::new(trainer, dir.into(), metrics, spectra, elapsed, options);
    session.resumed_from = Some(path.clone());
    // Step 0 is evaluated and written before any checkpoint exists, so a step-0
    // checkpoint's run has it on file already (kept by the truncation above).
    session.step0_written = ckpt_step == 0 && !kept.is_empty();
    session.run()
}

/// The lines of a metrics file with `step <= step` (unparsable lines, such as a line cut
/// short by a crash, are dropped) and the largest `elapsed_s` among them.
fn truncate_metrics(text: &str, step: u64) -> (String, f64) {
    let mut kept = String::new();
    let mut elapsed = 0.0f64;
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        match v.get("step").and_then(|s| s.as_u64()) {
            Some(s) if s <= step => {
                if let Some(e) = v.get("elapsed_s").and_then(|e| e.as_f64()) {
                    elapsed = elapsed.max(e);
                }
                kept.push_str(line);
                kept.push('\n');
            }
            _ => {}
        }
    }
    (kept, elapsed)
}

/// Refuses an output path that holds anything but an empty directory, unless `force`
/// and it is a run directory.
fn check_out_dir(out: &Path, force: bool) -> Result<()> {
    if out.file_name().is_none() {
        return Err(Error::BadFile {
            path: out.into(),
            reason: "not usable as a run directory name".into(),
        });
    }
    if !out.exists() {
        return Ok(());
    }
    if !out.is_dir() {
        return Err(Error::BadFile {
            path: out.into(),
            reason: "exists and is not a directory".into(),
        });
    }
    let empty = std::fs::read_dir(out)
        .map_err(|e| Error::io(out, e))?
        .next()
        .is_none();
    if empty {
        return Ok(());
    }
    if !force {
        return Err(Error::BadFile {
            path: out.into(),
            reason: "already exists and is not empty (pass --force to replace it, or \
                     --resume to continue it)"
                .into(),
        });
    }
    if !out.join(CONFIG_FILE).is_file() {
        return Err(Error::BadFile {
            path: out.into(),
            reason: format!(
                "refusing to replace it: not a run directory (no {CONFIG_FILE}), and --force only replaces run directories"
            ),
        });
    }
    Ok(())
}

fn config_file_text(config: &RunConfig) -> String {
    format!(
        "# Resolved configuration of this run (written by clockwork's train).\n\
         # Continue it with: train --resume <this directory> [--steps N]\n\n{}",
        config.to_toml()
    )
}

/// Creates `out` with its config, an empty metrics file and a checkpoint folder, under a
/// temporary name renamed into place at the end (replacing an existing run directory,
/// which [`check_out_dir`] vetted).
fn create_run_dir(out: &Path, config: &RunConfig) -> Result<()> {
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let pid = std::process::id();
    let tmp = parent.join(format!(".{name}.partial-{pid}"));
    let old = parent.join(format!(".{name}.replaced-{pid}"));
    let build = || -> Result<()> {
        std::fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
        write_atomic(&tmp.join(CONFIG_FILE), config_file_text(config).as_bytes())?;
        File::create(tmp.join(METRICS_FILE)).map_err(|e| Error::io(tmp.join(METRICS_FILE), e))?;
        let ck = tmp.join("checkpoints");
        std::fs::create_dir(&ck).map_err(|e| Error::io(&ck, e))?;
        if out.exists() {
            // An empty directory, or a run directory replaced under --force.
            std::fs::rename(out, &old).map_err(|e| Error::io(out, e))?;
        }
        std::fs::rename(&tmp, out).map_err(|e| Error::io(out, e))
    };
    let result = build();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
        if old.exists() && !out.exists() {
            let _ = std::fs::rename(&old, out);
        }
    }
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
    }
    result
}

/// The spectra recorder of a run (None when `train.spectra_every` is 0). On resume
/// (`resume_step`), records past that step are dropped first, also when recording is off
/// (a file left by an earlier config must not keep records of the abandoned steps).
fn open_spectra(
    dir: &Path,
    config: &RunConfig,
    resume_step: Option<u64>,
) -> Result<Option<SpectraRecorder>> {
    let p = config.task.p;
    match resume_step {
        Some(step) if config.train.spectra_every > 0 => {
            SpectraRecorder::resume(dir, p, step).map(Some)
        }
        Some(step) => {
            if dir.join(crate::analysis::record::SPECTRA_FILE).exists() {
                SpectraRecorder::resume(dir, p, step)?;
            }
            Ok(None)
        }
        None if config.train.spectra_every > 0 => SpectraRecorder::create(dir, p).map(Some),
        None => Ok(None),
    }
}

fn open_metrics(dir: &Path) -> Result<File> {
    let path = dir.join(METRICS_FILE);
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))
}

/// A number for JSON: non-finite becomes null.
fn num(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// One line of `metrics.jsonl` (fields in this order).
#[derive(serde::Serialize)]
struct MetricsLine {
    step: u64,
    model: usize,
    lr: Option<f64>,
    train_loss: Option<f64>,
    train_acc: Option<f64>,
    test_loss: Option<f64>,
    test_acc: Option<f64>,
    margin: Option<f64>,
    gamma_star: Option<f64>,
    reg_loss: Option<f64>,
    elapsed_s: Option<f64>,
}

/// The metrics of one evaluation, per model.
struct Measured {
    eval: Evaluation,
}

impl Measured {
    fn jsonl(&self, elapsed_s: f64) -> String {
        let e = &self.eval;
        let mut out = String::new();
        for (k, train) in e.train.iter().enumerate() {
            let test = e.test.as_ref().map(|t| &t[k]);
            let line = MetricsLine {
                step: e.step,
                model: k,
                lr: num(e.lr[k]),
                train_loss: num(train.loss),
                train_acc: num(train.accuracy()),
                test_loss: test.and_then(|t| num(t.loss)),
                test_acc: test.and_then(|t| num(t.accuracy())),
                margin: num(e.margin[k]),
                gamma_star: e.gamma_star[k].and_then(num),
                reg_loss: num(e.reg_loss[k]),
                elapsed_s: num(elapsed_s),
            };
            out.push_str(&serde_json::to_string(&line).expect("plain numbers serialize"));
            out.push('\n');
        }
        out
    }

    /// The first model whose loss (data + regularizer) is not finite.
    fn non_finite(&self) -> Option<(usize, f64)> {
        self.eval
            .train
            .iter()
            .zip(&self.eval.reg_loss)
            .map(|(s, r)| s.loss + r)
            .enumerate()
            .find(|(_, l)| !l.is_finite())
    }

    fn summaries(&self) -> Vec<ModelSummary> {
        let e = &self.eval;
        (0..e.train.len())
            .map(|k| ModelSummary {
                train_loss: e.train[k].loss,
                train_acc: e.train[k].accuracy(),
                test_loss: e.test.as_ref().map(|t| t[k].loss),
                test_acc: e.test.as_ref().map(|t| t[k].accuracy()),
                margin: e.margin[k],
                reg_loss: e.reg_loss[k],
                gamma_star: e.gamma_star[k],
            })
            .collect()
    }
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        s / n as f64
    }
}

/// Progress display on stderr.
enum Display {
    Off,
    Lines { last: Option<Instant> },
    Bar(ProgressBar),
}

impl Display {
    fn new(mode: Progress, done: u64, total: u64) -> Display {
        let mode = match mode {
            Progress::Auto if std::io::stderr().is_terminal() => Progress::Bar,
            Progress::Auto => Progress::Lines,
            m => m,
        };
        match mode {
            Progress::Off => Display::Off,
            Progress::Lines | Progress::Auto => Display::Lines { last: None },
            Progress::Bar => {
                let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template(
                        "{wide_bar:.cyan/blue} {pos}/{len} {msg} eta {eta}",
                    )
                    .expect("valid template")
                    .progress_chars("█▉▊▋▌▍▎▏ "),
                );
                bar.set_position(done);
                bar.reset_elapsed();
                Display::Bar(bar)
            }
        }
    }
}

/// The state of one training call.
struct Session<'a, F: Real> {
    trainer: Trainer<F>,
    dir: PathBuf,
    metrics: File,
    /// `spectra.jsonl`, when `train.spectra_every > 0`.
    spectra: Option<SpectraRecorder>,
    /// elapsed_s of earlier sessions (resume).
    elapsed_before: f64,
    options: &'a RunOptions,
    /// The newest state that evaluated finite (not yet necessarily on disk).
    last_good: Option<TrainerState<F>>,
    resumed_from: Option<PathBuf>,
    /// Step 0's metrics and spectra are already in the files (a run resumed from its
    /// step-0 checkpoint): evaluate it, but do not write it again.
    step0_written: bool,
}

impl<'a, F: Real> Session<'a, F> {
    fn new(
        trainer: Trainer<F>,
        dir: PathBuf,
        metrics: File,
        spectra: Option<SpectraRecorder>,
        elapsed_before: f64,
        options: &'a RunOptions,
    ) -> Self {
        Session {
            trainer,
            dir,
            metrics,
            spectra,
            elapsed_before,
            options,
            last_good: None,
            resumed_from: None,
            step0_written: false,
        }
    }

    fn failed(&self, error: Error, checkpoint: Option<PathBuf>) -> RunError {
        RunError::failed(error, &self.dir, checkpoint)
    }

    fn measure(&mut self) -> Result<Measured> {
        Ok(Measured {
            eval: self.trainer.evaluate()?,
        })
    }

    fn save(&mut self) -> Result<PathBuf> {
        let state = self.trainer.state()?;
        let path = checkpoint::path_for(&self.dir, state.step);
        let config = self.trainer.config().clone();
        let weights = self.trainer.weights()?;
        checkpoint::save_state(&path, &config, weights, &state)?;
        Ok(path)
    }

    /// Writes a checkpoint of the last state that evaluated finite, if it is not on
    /// disk yet, and returns the newest good checkpoint.
    fn save_last_good(&mut self) -> Option<PathBuf> {
        if let Some(good) = self.last_good.take() {
            let path = checkpoint::path_for(&self.dir, good.step);
            if path.exists() {
                return Some(path);
            }
            if self.trainer.restore(good).is_ok() && self.save().is_ok() {
                return Some(path);
            }
        }
        checkpoint::list(&self.dir)
            .ok()
            .and_then(|l| l.last().map(|(_, p)| p.clone()))
            .or_else(|| self.resumed_from.clone())
    }

    fn diverged(&mut self, error: Error) -> RunError {
        let checkpoint = self.save_last_good();
        self.failed(error, checkpoint)
    }

    fn interrupted(&self) -> bool {
        self.options
            .interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst))
    }

    fn run(&mut self) -> std::result::Result<RunSummary, RunError> {
        let total = self.trainer.config().train.steps;
        let eval_every = self.trainer.config().train.eval_every.max(1);
        let ckpt_every = self.trainer.config().train.checkpoint_every;
        let spectra_every = self.trainer.config().train.spectra_every;
        let first = self.trainer.steps_done();
        let started = Instant::now();
        let mut display = Display::new(self.options.progress, first, total);
        let mut last_eval: Option<Measured> = None;
        let mut test_acc: Option<f64> = None;
        let mut last_msg = Instant::now() - Duration::from_secs(1);

        if first == 0 {
            let m = self.measure().map_err(|e| self.failed(e, None))?;
            if let Some((model, loss)) = m.non_finite() {
                return Err(self.failed(
                    Error::Diverged {
                        step: 0,
                        model,
                        loss,
                    },
                    None,
                ));
            }
            if !self.step0_written {
                self.log(&m, started).map_err(|e| self.failed(e, None))?;
                self.record_spectra(&m.eval)
                    .map_err(|e| self.failed(e, None))?;
            }
            test_acc = m
                .eval
                .test
                .as_ref()
                .map(|t| mean(t.iter().map(|s| s.accuracy())));
            self.last_good = Some(self.trainer.state().map_err(|e| self.failed(e, None))?);
            show_eval(&mut display, &m, first, total, 0.0);
            last_eval = Some(m);
        }

        let mut status = RunStatus::Completed;
        while self.trainer.steps_done() < total {
            if self.interrupted() {
                status = RunStatus::Interrupted;
                break;
            }
            // Up to the next step that logs, records or checkpoints: one step at a time on
            // the host, a read-back batch at a time on the device.
            let done = self.trainer.steps_done();
            // The next multiple of `every` after `done` (never, for every = 0).
            let next_stop = |every: u64| done.checked_div(every).map_or(total, |k| (k + 1) * every);
            let record_every = if self.spectra.is_some() {
                spectra_every
            } else {
                0
            };
            let stop = next_stop(eval_every)
                .min(next_stop(record_every))
                .min(next_stop(ckpt_every))
                .min(total);
            let n = (stop - done).clamp(1, self.trainer.preferred_batch());
            let mut last = None;
            let report = match self.trainer.advance(n, &mut |r| last = Some(r)) {
                Ok(()) => last.expect("advance took n >= 1 steps"),
                Err(e @ Error::Diverged { .. }) => {
                    finish_display(&mut display);
                    return Err(self.diverged(e));
                }
                Err(e) => {
                    finish_display(&mut display);
                    let ck = self.save_last_good();
                    return Err(self.failed(e, ck));
                }
            };
            let done = self.trainer.steps_done();
            if let Display::Bar(bar) = &display {
                // Redraws are throttled anyway; touching the bar every step is not free.
                if done == total || last_msg.elapsed() >= Duration::from_millis(100) {
                    last_msg = Instant::now();
                    bar.set_position(done);
                    let rate = (done - first) as f64 / started.elapsed().as_secs_f64().max(1e-9);
                    bar.set_message(bar_message(
                        mean(report.train.iter().map(|s| s.loss)),
                        mean(report.train.iter().map(|s| s.accuracy())),
                        test_acc,
                        rate,
                    ));
                }
            }
            if done.is_multiple_of(eval_every) || done == total {
                let m = self.measure().map_err(|e| {
                    let ck = self.save_last_good();
                    self.failed(e, ck)
                })?;
                if let Some((model, loss)) = m.non_finite() {
                    finish_display(&mut display);
                    return Err(self.diverged(Error::Diverged {
                        step: done,
                        model,
                        loss,
                    }));
                }
                self.log(&m, started).map_err(|e| {
                    let ck = self.save_last_good();
                    self.failed(e, ck)
                })?;
                let state = self.trainer.state().map_err(|e| {
                    let ck = self.save_last_good();
                    self.failed(e, ck)
                })?;
                self.last_good = Some(state);
                test_acc = m
                    .eval
                    .test
                    .as_ref()
                    .map(|t| mean(t.iter().map(|s| s.accuracy())));
                let rate = (done - first) as f64 / started.elapsed().as_secs_f64().max(1e-9);
                show_eval(&mut display, &m, done, total, rate);
                last_eval = Some(m);
            }
            if self.spectra.is_some() && (done.is_multiple_of(spectra_every) || done == total) {
                let fresh;
                let m = match &last_eval {
                    Some(m) if m.eval.step == done => m,
                    _ => {
                        // Not an evaluation step: evaluate for the record's margin and
                        // accuracy (not logged, so metrics.jsonl is unchanged).
                        fresh = self.measure().map_err(|e| {
                            let ck = self.save_last_good();
                            self.failed(e, ck)
                        })?;
                        if let Some((model, loss)) = fresh.non_finite() {
                            finish_display(&mut display);
                            return Err(self.diverged(Error::Diverged {
                                step: done,
                                model,
                                loss,
                            }));
                        }
                        &fresh
                    }
                };
                self.record_spectra(&m.eval).map_err(|e| {
                    let ck = self.save_last_good();
                    self.failed(e, ck)
                })?;
            }
            if ckpt_every > 0 && done.is_multiple_of(ckpt_every) && done != total {
                self.save().map_err(|e| {
                    let ck = self.save_last_good();
                    self.failed(e, ck)
                })?;
            }
        }
        let session_s = started.elapsed().as_secs_f64();
        finish_display(&mut display);

        let step = self.trainer.steps_done();
        let path = checkpoint::path_for(&self.dir, step);
        if !path.exists() {
            self.save().map_err(|e| self.failed(e, None))?;
        }
        let m = match last_eval {
            Some(m) if m.eval.step == step => m,
            _ => self
                .measure()
                .map_err(|e| self.failed(e, Some(path.clone())))?,
        };
        Ok(RunSummary {
            dir: self.dir.clone(),
            status,
            step,
            total_steps: total,
            session_steps: step - first,
            session_s,
            checkpoint: path,
            models: m.summaries(),
        })
    }

    /// Appends the spectra records of every model at the evaluated step (nothing when
    /// recording is off).
    fn record_spectra(&mut self, eval: &Evaluation) -> Result<()> {
        let Some(recorder) = self.spectra.as_mut() else {
            return Ok(());
        };
        let metrics: Vec<RecordMetrics> = (0..eval.train.len())
            .map(|k| RecordMetrics {
                margin: Some(eval.margin[k]),
                train_acc: Some(eval.train[k].accuracy()),
                test_acc: eval.test.as_ref().map(|t| t[k].accuracy()),
            })
            .collect();
        let weights = self.trainer.weights()?;
        recorder.append_all(eval.step, &weights.cast::<f64>(), &metrics)
    }

    fn log(&mut self, m: &Measured, started: Instant) -> Result<()> {
        let elapsed = self.elapsed_before + started.elapsed().as_secs_f64();
        let text = m.jsonl(elapsed);
        let path = self.dir.join(METRICS_FILE);
        self.metrics
            .write_all(text.as_bytes())
            .and_then(|_| self.metrics.flush())
            .map_err(|e| Error::io(path, e))
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn bar_message(loss: f64, train_acc: f64, test_acc: Option<f64>, rate: f64) -> String {
    let test = test_acc.map_or(String::new(), |t| format!(" test {}", pct(t)));
    format!(
        "loss {loss:.3e} train {}{test} {rate:.0} steps/s",
        pct(train_acc)
    )
}

fn show_eval(display: &mut Display, m: &Measured, done: u64, total: u64, rate: f64) {
    let e = &m.eval;
    let loss = mean(e.train.iter().map(|s| s.loss));
    let acc = mean(e.train.iter().map(|s| s.accuracy()));
    let test = e
        .test
        .as_ref()
        .map(|t| mean(t.iter().map(|s| s.accuracy())));
    match display {
        Display::Off => {}
        Display::Bar(bar) => bar.set_message(bar_message(loss, acc, test, rate)),
        Display::Lines { last } => {
            if done != total && last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
                return;
            }
            *last = Some(Instant::now());
            // γ* depends only on the task and shape, so it is one number when every model
            // has one.
            let common_gamma_star = e.gamma_star.iter().copied().collect::<Option<Vec<f64>>>();
            let margin = match common_gamma_star.and_then(|g| g.first().copied()) {
                Some(g) => format!("  γ/γ* {:.4}", mean(e.margin.iter().copied()) / g),
                None => format!("  margin {:.3e}", mean(e.margin.iter().copied())),
            };
            let test = test.map_or(String::new(), |t| format!("  test {}", pct(t)));
            eprintln!(
                "step {done:>7}/{total}  loss {loss:.4e}  train {}{test}{margin}  {rate:.0} steps/s",
                pct(acc)
            );
        }
    }
}

fn finish_display(display: &mut Display) {
    if let Display::Bar(bar) = display {
        bar.abandon();
    }
    *display = Display::Off;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn truncation_keeps_earlier_lines_and_drops_torn_ones() {
        let text = "{\"step\":0,\"elapsed_s\":0.0}\n{\"step\":100,\"elapsed_s\":1.5}\n\
                    {\"step\":200,\"elapsed_s\":3.0}\n{\"step\":3";
        let (kept, elapsed) = truncate_metrics(text, 100);
        assert_eq!(
            kept,
            "{\"step\":0,\"elapsed_s\":0.0}\n{\"step\":100,\"elapsed_s\":1.5}\n"
        );
        assert_eq!(elapsed, 1.5);
    }
}
