//! Run directories: the training loop behind the `train` binary, reusable by any front
//! end (a sweep, a notebook-style example).
//!
//! A run directory ([`crate::layout`] names its files) holds:
//! - `config.toml`: the resolved [`RunConfig`] (what `--resume` reads back),
//! - `metrics.jsonl`: one [`crate::layout::MetricsRecord`] per (evaluation, model),
//!   evaluations at step 0, every `train.eval_every` steps and at the last step.
//! - `checkpoints/step-XXXXXXXX.safetensors`: [`crate::checkpoint`] files every
//!   `train.checkpoint_every` steps and at the end, written atomically.
//! - `spectra.jsonl` (when `train.spectra_every > 0`): one
//!   [`crate::layout::SpectraRecord`] per (record step, model) at step 0, every
//!   `train.spectra_every` steps and at the last step: every neuron's Fourier spectrum
//!   summary with the margin (over the training pairs, as in `metrics.jsonl`), train and
//!   test accuracy of that step. A record step that is not an evaluation step gets its
//!   own evaluation (one forward pass, not logged to `metrics.jsonl`). Each record is one
//!   whole line written with one `write`, so a crash can at worst cut off the last line,
//!   which readers skip and [`resume`] drops.
//! - `train.lock`: the file the training process holds an exclusive OS lock on.
//!
//! The loop does not compute spectra itself (that is the analysis, which sits
//! above it): its caller passes the writer in as [`RunOptions::spectra`]
//! (`clockwork::analysis::record::open_sink` is the one the `train` binary passes). A run
//! whose config asks for spectra (`train.spectra_every > 0`) without one is refused with
//! an error naming `train.spectra_every`, before anything is written: spectra are never
//! dropped silently.
//!
//! One writer per run directory: [`start`] and [`resume`] hold an exclusive lock on the
//! directory's `train.lock` (which holds the writer's pid) for as long as they train. A
//! second writer is refused ([`RunError::Input`], naming the directory and the pid);
//! the OS releases the lock when the process ends, however it ends, so a killed run never
//! leaves a stale lock. Readers (`analyze`) do not take it.
//!
//! [`start`] checks everything (config, task, trainer, output directory) before it
//! creates anything, and creates the directory under a temporary name that is renamed
//! into place once `config.toml` is written, so bad input never leaves a half-written
//! directory, and of two processes creating the same directory exactly one succeeds.
//! [`resume`] continues from the newest checkpoint and produces the same bits as an
//! uninterrupted run: the trainer's whole evolving state is in the checkpoint, and the
//! only random draws (initialization and split) come from the seed.
//!
//! A NaN/inf loss stops the run ([`RunError::Failed`]) after writing a checkpoint of the
//! last state that evaluated finite; setting the interrupt flag makes the loop write a
//! checkpoint of the current state and return [`RunStatus::Interrupted`].
//!
//! The pieces: `dir` (creating and checking run directories, the open files of a run),
//! `lock` (the one-writer lock), `metrics` (`metrics.jsonl` and cutting the logs back on
//! resume), `display` (progress on stderr), `session` (the loop, driving one
//! [`Trainer`] whatever the device).

use crate::checkpoint;
use crate::config::RunConfig;
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::kinds::Dtype;
use crate::layout::{OpenSpectraSink, CHECKPOINTS_DIR, CONFIG_FILE, METRICS_FILE, SPECTRA_FILE};
use crate::real::Real;
use crate::train::Trainer;
use dir::{check_out_dir, config_file_text, create_run_dir, RunFiles};
use lock::RunLock;
use session::Session;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

mod dir;
mod display;
mod early_stop;
mod lock;
mod metrics;
mod session;

pub use dir::default_out_dir;

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
    /// Opens the writer of `spectra.jsonl` (`clockwork::analysis::record::open_sink`).
    /// Required when the config's `train.spectra_every > 0`: without it such a run is
    /// refused with an error naming `train.spectra_every`.
    pub spectra: Option<OpenSpectraSink>,
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunStatus {
    /// Reached `train.steps`, or every model stopped early (`train.early_stop_patience`;
    /// [`RunSummary::step`] is then the step of the last stop).
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
    /// The step early stopping froze it at (`train.early_stop_patience`), if it did.
    pub stopped_at: Option<u64>,
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

/// Starts a run of `config` in the new directory `out`.
///
/// Everything is checked before `out` is created; errors up to then are
/// [`RunError::Input`] and leave nothing behind. So is losing the race for `out` to
/// another process creating it at the same time.
pub fn start(
    config: &RunConfig,
    out: &Path,
    options: &RunOptions,
) -> std::result::Result<RunSummary, RunError> {
    config.validate().map_err(RunError::Input)?;
    input(require_spectra_sink(config, options))?;
    match config.dtype {
        Dtype::F64 => start_typed::<f64>(config, out, options),
        Dtype::F32 => start_typed::<f32>(config, out, options),
    }
}

/// Continues the run in `dir` from its newest checkpoint, optionally changing
/// `train.steps` to `steps` (which is then written back to `config.toml`).
///
/// Takes the directory's lock, then checks the config and checkpoint before touching
/// anything; lines of `metrics.jsonl` and `spectra.jsonl` past the checkpoint's step are
/// dropped (atomically), so the files end up as an uninterrupted run's would.
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
        RunError::Input(Error::format(
            dir,
            format!("not a run directory: cannot read {CONFIG_FILE}"),
            e,
        ))
    })?;
    // A run directory for sure: from here on nobody else may write it.
    let lock = input(RunLock::acquire(dir))?;
    let mut config = RunConfig::from_toml(&text).map_err(|e| {
        RunError::Input(Error::BadFile {
            path: config_path.clone(),
            reason: e.to_string(),
        })
    })?;
    if let Some(s) = steps {
        config.train.steps = s;
    }
    input(require_spectra_sink(&config, options))?;
    match config.dtype {
        Dtype::F64 => resume_typed::<f64>(dir, lock, config, steps.is_some(), options),
        Dtype::F32 => resume_typed::<f32>(dir, lock, config, steps.is_some(), options),
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
        "{}{split}, {tied}{} width {}{embed}, {} lr {}, {} steps, {} model(s) in {}",
        c.task_label(),
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

/// Refuses a config that records spectra when the caller gave no way to write them: the
/// loop cannot compute spectra itself, and dropping them silently would leave a run
/// without the file its config promises.
fn require_spectra_sink(config: &RunConfig, options: &RunOptions) -> Result<()> {
    if config.train.spectra_every > 0 && options.spectra.is_none() {
        return Err(Error::config(
            "train.spectra_every",
            config.train.spectra_every,
            format!(
                "recording {SPECTRA_FILE} needs a spectra writer, and this caller of \
                 clockwork::run passed none (set RunOptions::spectra to \
                 clockwork::analysis::record::open_sink, or set train.spectra_every = 0)"
            ),
        ));
    }
    Ok(())
}

fn start_typed<F: Real>(
    config: &RunConfig,
    out: &Path,
    options: &RunOptions,
) -> std::result::Result<RunSummary, RunError> {
    let trainer = input(Trainer::<F>::from_config(config))?;
    input(check_out_dir(out, options.force))?;
    let lock = input(create_run_dir(out, config, options.force))?;
    if options.progress != Progress::Off {
        eprintln!(
            "{} on {} → {}",
            describe(config),
            trainer.describe(),
            out.display()
        );
    }
    let files =
        RunFiles::open(out, lock, config, options).map_err(|e| RunError::failed(e, out, None))?;
    Session::new(trainer, files, 0.0, options).run()
}

fn resume_typed<F: Real>(
    dir: &Path,
    lock: RunLock,
    config: RunConfig,
    steps_changed: bool,
    options: &RunOptions,
) -> std::result::Result<RunSummary, RunError> {
    let checkpoints = input(checkpoint::list(dir))?;
    let (ckpt_step, path) = checkpoints.last().cloned().ok_or_else(|| {
        RunError::Input(Error::BadFile {
            path: dir.join(CHECKPOINTS_DIR),
            reason: "no checkpoint to resume from".into(),
        })
    })?;
    let corrupt = |e: Error| {
        // An error about this very checkpoint already names it: say it once.
        let why = match e {
            Error::BadFile { path: p, reason } if p == path => reason,
            Error::Format {
                path: p,
                reason,
                source,
            } if p == path => format!("{reason} ({source})"),
            other => other.to_string(),
        };
        RunError::Input(Error::BadFile {
            path: path.clone(),
            reason: format!(
                "cannot resume from it: {why} (delete it to resume from the previous checkpoint)"
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
    // Everything is checked: from here on the directory is modified.
    let failed = |e: Error| RunError::failed(e, dir, Some(path.clone()));
    if steps_changed {
        write_atomic(&dir.join(CONFIG_FILE), config_file_text(&config).as_bytes())
            .map_err(failed)?;
    }
    let kept = metrics::cut_back(&dir.join(METRICS_FILE), ckpt_step).map_err(failed)?;
    // Records past the checkpoint belong to the abandoned continuation, also when this
    // config records none (a file left by an earlier config must not keep them).
    metrics::cut_back(&dir.join(SPECTRA_FILE), ckpt_step).map_err(failed)?;
    let files = RunFiles::open(dir, lock, &config, options).map_err(failed)?;
    if options.progress != Progress::Off {
        eprintln!(
            "resuming {} at step {ckpt_step} of {}: {}",
            dir.display(),
            config.train.steps,
            describe(&config)
        );
    }
    // Step 0 is evaluated and written before any checkpoint exists, so a step-0
    // checkpoint's run has it on file already (kept by the cut above).
    let step0_written = ckpt_step == 0 && !kept.is_empty();
    Session::new(trainer, files, metrics::max_elapsed(&kept), options)
        .resumed(path, step0_written)
        .replay_early_stop(&kept)
        .map_err(|e| RunError::failed(e, dir, None))?
        .run()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A library caller that asks for spectra but gives no writer is told so, by the key,
    /// before anything is created.
    #[test]
    fn spectra_without_a_writer_are_refused_naming_the_key() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("run");
        let config = RunConfig::default();
        assert!(config.train.spectra_every > 0);
        let err = start(&config, &out, &RunOptions::default()).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let message = err.to_string();
        assert!(message.contains("train.spectra_every"), "{message}");
        assert!(message.contains("open_sink"), "{message}");
        assert!(!out.exists());
    }
}
