//! What the run loop drives: the host [`Trainer`] on any backend, or the device-resident
//! [`CudaTrainer`] that keeps the whole step on the GPU.
//!
//! The loop only needs steps, evaluations and the state as values, so both fit one small
//! trait. The difference that matters is how steps are taken: the host trainer is asked
//! one step at a time (its progress bar and Ctrl-C stay responsive), the CUDA trainer a
//! whole read-back batch at a time (one CUDA-graph launch per step and a single host
//! sync per batch, never one per step).

use crate::config::RunConfig;
use crate::engine::cuda::CudaTrainer;
use crate::error::Result;
use crate::kinds::Device;
use crate::model::Weights;
use crate::real::Real;
use crate::train::{Evaluation, StepReport, Trainer, TrainerState};
use std::any::Any;
use std::borrow::Cow;

/// A trainer as the run loop sees it.
pub(super) trait Driver<F: Real> {
    /// The config the trainer was built from.
    fn config(&self) -> &RunConfig;
    /// Steps taken so far.
    fn steps_done(&self) -> u64;
    /// The most steps [`Driver::advance`] should be asked for at once.
    fn batch(&self) -> u64;
    /// Takes `n >= 1` steps and returns the last one's report.
    fn advance(&mut self, n: u64) -> Result<StepReport>;
    /// Loss, accuracy and margin of the current parameters.
    fn evaluate(&mut self) -> Result<Evaluation>;
    /// The effective U, V, W (borrowed on the host, copied from a device).
    fn weights(&self) -> Result<Cow<'_, Weights<F>>>;
    /// Everything needed to continue bit-identically.
    fn state(&self) -> Result<TrainerState<F>>;
    /// Continues from `state`.
    fn restore(&mut self, state: TrainerState<F>) -> Result<()>;
    /// Where it runs, for the start-up line.
    fn describe(&self) -> String;
}

impl<F: Real> Driver<F> for Trainer<F> {
    fn config(&self) -> &RunConfig {
        Trainer::config(self)
    }
    fn steps_done(&self) -> u64 {
        Trainer::steps_done(self)
    }
    fn batch(&self) -> u64 {
        1
    }
    fn advance(&mut self, n: u64) -> Result<StepReport> {
        let mut report = self.step()?;
        for _ in 1..n {
            report = self.step()?;
        }
        Ok(report)
    }
    fn evaluate(&mut self) -> Result<Evaluation> {
        Trainer::evaluate(self)
    }
    fn weights(&self) -> Result<Cow<'_, Weights<F>>> {
        Ok(Cow::Borrowed(Trainer::weights(self)))
    }
    fn state(&self) -> Result<TrainerState<F>> {
        Ok(Trainer::state(self))
    }
    fn restore(&mut self, state: TrainerState<F>) -> Result<()> {
        Trainer::restore(self, state)
    }
    fn describe(&self) -> String {
        self.backend().describe()
    }
}

impl Driver<f32> for CudaTrainer {
    fn config(&self) -> &RunConfig {
        CudaTrainer::config(self)
    }
    fn steps_done(&self) -> u64 {
        CudaTrainer::steps_done(self)
    }
    fn batch(&self) -> u64 {
        self.read_every() as u64
    }
    fn advance(&mut self, n: u64) -> Result<StepReport> {
        let mut last = None;
        self.run_with(n, |reports| last = reports.last().cloned())?;
        Ok(last.expect("n >= 1 steps ran"))
    }
    fn evaluate(&mut self) -> Result<Evaluation> {
        CudaTrainer::evaluate(self)
    }
    fn weights(&self) -> Result<Cow<'_, Weights<f32>>> {
        CudaTrainer::weights(self).map(Cow::Owned)
    }
    fn state(&self) -> Result<TrainerState<f32>> {
        CudaTrainer::state(self)
    }
    fn restore(&mut self, state: TrainerState<f32>) -> Result<()> {
        CudaTrainer::restore(self, state)
    }
    fn describe(&self) -> String {
        format!(
            "{} (whole step on the device, CUDA graph)",
            CudaTrainer::describe(self)
        )
    }
}

/// The trainer for `config`: the device-resident [`CudaTrainer`] for f32 models it
/// supports on a CUDA device, else the host [`Trainer`] on the config's backend (the CPU,
/// or CUDA through [`crate::engine::cuda::CudaBackend`] for f64 and factored models).
pub(super) fn driver_for<F: Real>(config: &RunConfig) -> Result<Box<dyn Driver<F>>> {
    let on_cuda = matches!(config.device, Device::Cuda(_));
    let device_resident = on_cuda && F::NAME == "f32" && config.model.embed_dim == 0;
    if device_resident {
        let cuda: Box<dyn Driver<f32>> = Box::new(CudaTrainer::from_config(config)?);
        // F is f32 here (checked by name above); the downcast only restates that to the
        // compiler and cannot fail.
        let any: Box<dyn Any> = Box::new(cuda);
        return Ok(*any
            .downcast::<Box<dyn Driver<F>>>()
            .expect("F is f32 on this path"));
    }
    Ok(Box::new(Trainer::<F>::from_config(config)?))
}
