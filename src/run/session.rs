//! The training loop of one call: steps up to the next evaluation, spectra record or
//! checkpoint, and what happens at each. Every failure after the run directory exists
//! goes through [`Session::fail_keeping_checkpoint`], so the last good state is on disk
//! whatever failed.
//!
//! The trainer is reached only through `self.trainer` (the `Driver` trait: steps_done,
//! batch, advance, evaluate, weights, state, restore, describe).

use super::dir::RunFiles;
use super::display::Display;
use super::early_stop::{watched_losses, EarlyStop};
use super::metrics::Measured;
use super::{RunError, RunOptions, RunStatus, RunSummary};
use crate::checkpoint;
use crate::error::{Error, Result};
use crate::layout::{MetricsRecord, RecordMetrics};
use crate::real::Real;
use crate::train::{Evaluation, Trainer, TrainerState};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// The state of one training call.
pub(super) struct Session<'a, F: Real> {
    trainer: Trainer<F>,
    /// The run directory, its lock and its logs.
    files: RunFiles,
    /// elapsed_s of earlier sessions (resume).
    elapsed_before: f64,
    options: &'a RunOptions,
    /// `train.steps`, `train.eval_every` (at least 1), `train.checkpoint_every`,
    /// `train.spectra_every`.
    total: u64,
    eval_every: u64,
    checkpoint_every: u64,
    spectra_every: u64,
    /// Steps done when this call started, and when.
    first: u64,
    started: Instant,
    display: Display,
    /// The newest evaluation.
    last_eval: Option<Measured>,
    /// The newest state that evaluated finite (not yet necessarily on disk).
    last_good: Option<TrainerState<F>>,
    resumed_from: Option<PathBuf>,
    /// Step 0's metrics and spectra are already in the files (a run resumed from its
    /// step-0 checkpoint): evaluate it, but do not write it again.
    step0_written: bool,
    /// The early-stop rule (`train.early_stop_patience > 0`).
    early_stop: Option<EarlyStop>,
}

impl<'a, F: Real> Session<'a, F> {
    /// A session training `trainer` into `files`, `elapsed_before` seconds of training
    /// already logged.
    pub fn new(
        trainer: Trainer<F>,
        files: RunFiles,
        elapsed_before: f64,
        options: &'a RunOptions,
    ) -> Self {
        let c = trainer.config();
        let (total, first) = (c.train.steps, trainer.steps_done());
        let early_stop = EarlyStop::for_config(c);
        Session {
            total,
            eval_every: c.train.eval_every.max(1),
            checkpoint_every: c.train.checkpoint_every,
            spectra_every: c.train.spectra_every,
            first,
            started: Instant::now(),
            display: Display::new(options.progress, first, total),
            trainer,
            files,
            elapsed_before,
            options,
            last_eval: None,
            last_good: None,
            resumed_from: None,
            step0_written: false,
            early_stop,
        }
    }

    /// The session continues the run from `checkpoint`; `step0_written` when that is the
    /// step-0 checkpoint and step 0 is already logged.
    pub fn resumed(mut self, checkpoint: PathBuf, step0_written: bool) -> Self {
        self.resumed_from = Some(checkpoint);
        self.step0_written = step0_written;
        self
    }

    /// A resumed session's early-stop state: the rule replayed over the `metrics.jsonl`
    /// text kept up to the checkpoint, the models it stopped frozen again.
    pub fn replay_early_stop(mut self, kept: &str) -> Result<Self> {
        if let Some(rule) = self.early_stop.as_mut() {
            let records: Vec<MetricsRecord> = kept
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            for k in rule.replay(&records) {
                self.trainer.freeze(k)?;
            }
        }
        Ok(self)
    }

    /// Whether every model has stopped early (the run ends).
    fn all_stopped(&self) -> bool {
        self.early_stop.as_ref().is_some_and(|r| r.all_stopped())
    }

    /// Applies the early-stop rule to an evaluation: models that stop are frozen, and
    /// every stopped model's stop step goes into `m`.
    fn early_stop(&mut self, m: &mut Measured) -> Result<()> {
        let Some(rule) = self.early_stop.as_mut() else {
            return Ok(());
        };
        let stopping = rule.observe(m.eval.step, &watched_losses(&m.eval));
        m.stopped = (0..m.eval.train.len())
            .map(|k| rule.stopped_at(k))
            .collect();
        for k in stopping {
            self.trainer.freeze(k)?;
        }
        Ok(())
    }

    /// Trains up to `train.steps` (or the interrupt) and reports.
    pub fn run(mut self) -> std::result::Result<RunSummary, RunError> {
        match self.train().and_then(|status| self.finish(status)) {
            Ok(summary) => Ok(summary),
            Err(e) => Err(self.fail_keeping_checkpoint(e)),
        }
    }

    /// The failure of the run: the display stops, the last state that evaluated finite
    /// is written if it is not on disk yet, and the newest good checkpoint is reported.
    fn fail_keeping_checkpoint(&mut self, error: Error) -> RunError {
        self.display.finish();
        let checkpoint = self.save_last_good();
        RunError::failed(error, &self.files.dir, checkpoint)
    }

    fn train(&mut self) -> Result<RunStatus> {
        if self.first == 0 {
            self.evaluate_step_zero()?;
        }
        while self.trainer.steps_done() < self.total && !self.all_stopped() {
            if self.interrupted() {
                return Ok(RunStatus::Interrupted);
            }
            let done = self.advance()?;
            if done.is_multiple_of(self.eval_every) || done == self.total {
                self.evaluate(done)?;
            }
            if self.files.spectra.is_some()
                && (done.is_multiple_of(self.spectra_every) || done == self.total)
            {
                self.record(done)?;
            }
            let ckpt_every = self.checkpoint_every;
            if ckpt_every > 0 && done.is_multiple_of(ckpt_every) && done != self.total {
                self.save()?;
            }
        }
        Ok(RunStatus::Completed)
    }

    /// Step 0 (of a run that has taken none): evaluated, logged and recorded, unless a
    /// resume from the step-0 checkpoint finds it on file.
    fn evaluate_step_zero(&mut self) -> Result<()> {
        let mut m = self.measure_finite()?;
        self.early_stop(&mut m)?;
        if !self.step0_written {
            self.log(&m)?;
            self.write_spectra(0, &record_metrics(&m.eval))?;
        }
        self.last_good = Some(self.trainer.state()?);
        self.display.show_eval(&m, 0, 0.0);
        self.last_eval = Some(m);
        Ok(())
    }

    /// Steps up to the next step that logs, records or checkpoints: one step at a time
    /// on the host, a read-back batch at a time on the device. Returns the steps done.
    fn advance(&mut self) -> Result<u64> {
        let (done, total) = (self.trainer.steps_done(), self.total);
        // The next multiple of `every` after `done` (never, for every = 0).
        let next_stop = |every: u64| done.checked_div(every).map_or(total, |k| (k + 1) * every);
        let record_every = if self.files.spectra.is_some() {
            self.spectra_every
        } else {
            0
        };
        let stop = next_stop(self.eval_every)
            .min(next_stop(record_every))
            .min(next_stop(self.checkpoint_every))
            .min(total);
        let n = (stop - done).clamp(1, self.trainer.preferred_batch());
        let mut last = None;
        self.trainer.advance(n, &mut |r| last = Some(r))?;
        let report = last.expect("advance took n >= 1 steps");
        let done = self.trainer.steps_done();
        let (first, started) = (self.first, self.started);
        self.display
            .show_steps(done, &report, || rate(done - first, started));
        Ok(done)
    }

    /// An evaluation step: logged, and its state becomes the last good one.
    fn evaluate(&mut self, done: u64) -> Result<()> {
        let mut m = self.measure_finite()?;
        self.early_stop(&mut m)?;
        self.log(&m)?;
        self.last_good = Some(self.trainer.state()?);
        self.display
            .show_eval(&m, done, rate(done - self.first, self.started));
        self.last_eval = Some(m);
        Ok(())
    }

    /// A spectra record step. One that is not an evaluation step is evaluated for the
    /// record's margin and accuracy (not logged, so metrics.jsonl is unchanged).
    fn record(&mut self, done: u64) -> Result<()> {
        let metrics = match &self.last_eval {
            Some(m) if m.eval.step == done => record_metrics(&m.eval),
            _ => record_metrics(&self.measure_finite()?.eval),
        };
        self.write_spectra(done, &metrics)
    }

    /// The final checkpoint (unless on disk already) and the summary.
    fn finish(&mut self, status: RunStatus) -> Result<RunSummary> {
        let session_s = self.started.elapsed().as_secs_f64();
        self.display.finish();
        let step = self.trainer.steps_done();
        let path = checkpoint::path_for(&self.files.dir, step);
        if !path.exists() {
            self.save()?;
        }
        // The current state is on disk, the newest checkpoint: what a failure from here
        // on reports (an older last good state must not be written over it).
        self.last_good = None;
        let m = match self.last_eval.take() {
            Some(m) if m.eval.step == step => m,
            _ => self.measure()?,
        };
        Ok(RunSummary {
            dir: self.files.dir.clone(),
            status,
            step,
            total_steps: self.total,
            session_steps: step - self.first,
            session_s,
            checkpoint: path,
            models: m.summaries(),
        })
    }

    fn measure(&mut self) -> Result<Measured> {
        let eval = self.trainer.evaluate()?;
        let stopped = (0..eval.train.len())
            .map(|k| self.early_stop.as_ref().and_then(|r| r.stopped_at(k)))
            .collect();
        Ok(Measured { eval, stopped })
    }

    /// [`Session::measure`], with a non-finite loss as [`Error::Diverged`].
    fn measure_finite(&mut self) -> Result<Measured> {
        let m = self.measure()?;
        match m.non_finite() {
            Some((model, loss)) => Err(Error::Diverged {
                step: m.eval.step,
                model,
                loss,
            }),
            None => Ok(m),
        }
    }

    fn log(&mut self, m: &Measured) -> Result<()> {
        let elapsed = self.elapsed_before + self.started.elapsed().as_secs_f64();
        self.files.metrics.append(m, elapsed)
    }

    /// Appends the spectra records of every model at `step` (nothing when recording is
    /// off).
    fn write_spectra(&mut self, step: u64, metrics: &[RecordMetrics]) -> Result<()> {
        let Some(sink) = self.files.spectra.as_mut() else {
            return Ok(());
        };
        let weights = self.trainer.weights()?;
        sink.append_all(step, &weights.cast::<f64>(), metrics)
    }

    fn save(&mut self) -> Result<PathBuf> {
        let state = self.trainer.state()?;
        let path = checkpoint::path_for(&self.files.dir, state.step);
        let config = self.trainer.config().clone();
        let weights = self.trainer.weights()?;
        checkpoint::save_state(&path, &config, weights, &state)?;
        Ok(path)
    }

    /// Writes a checkpoint of the last state that evaluated finite, if it is not on
    /// disk yet, and returns the newest good checkpoint.
    fn save_last_good(&mut self) -> Option<PathBuf> {
        if let Some(good) = self.last_good.take() {
            let path = checkpoint::path_for(&self.files.dir, good.step);
            if path.exists() {
                return Some(path);
            }
            if self.trainer.restore(good).is_ok() && self.save().is_ok() {
                return Some(path);
            }
        }
        checkpoint::list(&self.files.dir)
            .ok()
            .and_then(|l| l.last().map(|(_, p)| p.clone()))
            .or_else(|| self.resumed_from.clone())
    }

    fn interrupted(&self) -> bool {
        self.options
            .interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst))
    }
}

/// Steps per second of `steps` taken since `started`.
fn rate(steps: u64, started: Instant) -> f64 {
    steps as f64 / started.elapsed().as_secs_f64().max(1e-9)
}

/// The scalars a spectra record stores, per model.
fn record_metrics(eval: &Evaluation) -> Vec<RecordMetrics> {
    (0..eval.train.len())
        .map(|k| RecordMetrics {
            margin: Some(eval.margin[k]),
            train_acc: Some(eval.train[k].accuracy()),
            test_acc: eval.test_of(k).map(|s| s.accuracy()),
        })
        .collect()
}
