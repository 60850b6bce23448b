//! The training loop for a batch of models: engine pass, regularizer, chain rule to the
//! parameters, optimizer. It only talks to a [`Backend`], never to a device directly.

use crate::config::RunConfig;
pub use crate::engine::stepper::{StepReport, TrainerState};
use crate::engine::{Backend, CoreSpec, PassStats};
use crate::error::{Error, Result};
use crate::model::{Params, Weights};
use crate::optim::Optimizer;
use crate::real::Real;
use crate::regularizer::Regularizer;
use crate::task::{PairSet, Split, Task};
use crate::theory;

/// Metrics of the current parameters, per model.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Steps taken when it was measured (so it describes the parameters after update
    /// `step − 1`).
    pub step: u64,
    /// Data loss, accuracy and unnormalized minimum margin on the training pairs, one
    /// entry per model.
    pub train: Vec<PassStats>,
    /// The same on the held-out pairs; None when the whole table is trained on.
    pub test: Option<Vec<PassStats>>,
    /// Normalized margin over the training pairs (theory.md §2), one entry per model:
    /// `train[k].min_margin` divided by `Σ_i (‖u_i‖² + ‖v_i‖² + ‖w_i‖²)^{h/2}`, h the
    /// network's homogeneity ([`crate::theory::normalized_margin`]).
    pub margin: Vec<f64>,
    /// γ* of the setup when the theory gives one (x², a+b mod p), else None.
    pub gamma_star: Option<f64>,
}

/// Trains a batch of models of one shape on one task, on the host, with the per-pair
/// work done by a [`Backend`] (CPU, or CUDA through [`crate::engine::cuda::CudaBackend`]).
///
/// `F` is the element type and must match [`RunConfig::dtype`]. The B models share the
/// task, split, hyperparameters and backend passes but are otherwise independent: model
/// `k` is initialized from stream `k` of the seed and has its own loss and gradient.
pub struct Trainer<F: Real> {
    config: RunConfig,
    core: CoreSpec,
    regularizer: Regularizer,
    task: Task,
    train: PairSet,
    test: PairSet,
    params: Params<F>,
    optimizer: Optimizer<F>,
    backend: Box<dyn Backend<F>>,
    /// Effective weights of the current parameters (kept in sync after every update).
    weights: Weights<F>,
    grads: Weights<F>,
    param_grads: Vec<F>,
    step: u64,
}

/// Builds the backend a config asks for: a [`CpuBackend`] with `threads` workers, or a
/// [`crate::engine::cuda::CudaBackend`] in `precision` for `cuda[:N]` (which fails with
/// [`Error::Backend`] on a machine without CUDA).
pub fn backend_for<F: Real>(config: &RunConfig) -> Result<Box<dyn Backend<F>>> {
    crate::engine::open(config.device, config.precision, config.threads)
}

impl<F: Real> Trainer<F> {
    /// A trainer for `config` on the device it names, initialized from its seed.
    /// Validates the config; fails with [`Error::InvalidConfig`] (key `dtype`) if `F`
    /// is not the config's `dtype`.
    pub fn from_config(config: &RunConfig) -> Result<Trainer<F>> {
        Trainer::with_backend(config, backend_for(config)?)
    }

    /// A trainer on a backend of the caller's choosing (the config's `device`,
    /// `precision` and `threads` are then not used).
    pub fn with_backend(config: &RunConfig, backend: Box<dyn Backend<F>>) -> Result<Trainer<F>> {
        config.validate()?;
        if config.dtype.name() != F::NAME {
            return Err(Error::config(
                "dtype",
                config.dtype,
                format!(
                    "this trainer runs in {} (build a Trainer::<{}> instead)",
                    F::NAME,
                    config.dtype
                ),
            ));
        }
        let task = config.build_task()?;
        let split = Split::new(task.len(), config.task.train_fraction, config.seed)?;
        let train = task.pairs.select(&split.train);
        let test = task.pairs.select(&split.test);
        let params = Params::<F>::init(&config.model_spec(), config.models, config.seed)?;
        let weights = params.effective();
        let grads = Weights::zeros(&params.spec, params.batch);
        Ok(Trainer {
            core: CoreSpec {
                activation: config.model.activation,
                loss: config.train.loss,
            },
            regularizer: Regularizer {
                kind: config.train.regularizer,
                strength: config.train.reg_strength,
            },
            optimizer: Optimizer::new(&config.optimizer),
            param_grads: vec![F::zero(); params.data.len()],
            config: config.clone(),
            task,
            train,
            test,
            params,
            backend,
            weights,
            grads,
            step: 0,
        })
    }

    /// One full-batch step of every model. On a NaN/inf loss nothing is updated and an
    /// [`Error::Diverged`] comes back, so the parameters stay the last good ones.
    pub fn step(&mut self) -> Result<StepReport> {
        let train =
            self.backend
                .loss_and_grad(self.core, &self.weights, &self.train, &mut self.grads)?;
        let reg_loss = self.regularizer.apply(&self.weights, &mut self.grads);
        for (model, (s, r)) in train.iter().zip(&reg_loss).enumerate() {
            let total = s.loss + r;
            if !total.is_finite() {
                return Err(Error::Diverged {
                    step: self.step,
                    model,
                    loss: total,
                });
            }
        }
        self.params.chain_grads(&self.grads, &mut self.param_grads);
        let lr = self.optimizer.lr_at(self.step);
        self.optimizer
            .update(self.step, &mut self.params.data, &mut self.param_grads);
        self.params.effective_into(&mut self.weights);
        let report = StepReport {
            step: self.step,
            lr: vec![lr; self.params.batch],
            train,
            reg_loss,
        };
        self.step += 1;
        Ok(report)
    }

    /// Evaluates the objective (data loss + regularizer) at the current parameters and
    /// its gradient with respect to the parameters, readable with [`Trainer::param_grads`].
    /// Returns the data-loss statistics and the regularizer value per model.
    pub fn compute_gradients(&mut self) -> Result<(Vec<PassStats>, Vec<f64>)> {
        let train =
            self.backend
                .loss_and_grad(self.core, &self.weights, &self.train, &mut self.grads)?;
        let reg_loss = self.regularizer.apply(&self.weights, &mut self.grads);
        self.params.chain_grads(&self.grads, &mut self.param_grads);
        Ok((train, reg_loss))
    }

    /// Gradient of the objective from the last [`Trainer::compute_gradients`] or
    /// [`Trainer::step`] (flat, model-major, in [`Params`] order).
    pub fn param_grads(&self) -> &[F] {
        &self.param_grads
    }

    /// Loss, accuracy (train and test) and normalized margin of the current parameters.
    pub fn evaluate(&self) -> Result<Evaluation> {
        let train = self
            .backend
            .evaluate(self.core, &self.weights, &self.train)?;
        let test = if self.test.is_empty() {
            None
        } else {
            Some(
                self.backend
                    .evaluate(self.core, &self.weights, &self.test)?,
            )
        };
        let margin = train
            .iter()
            .enumerate()
            .map(|(k, s)| {
                theory::normalized_margin(s.min_margin, &self.weights, k, self.core.activation)
            })
            .collect();
        Ok(Evaluation {
            step: self.step,
            train,
            test,
            margin,
            gamma_star: self.gamma_star(),
        })
    }

    /// γ* when the theory covers this setup: x², addition, untied and unfactored, trained
    /// on the whole table. γ* is the maximum normalized margin over all p² pairs; with a
    /// train split the margin is taken over the training pairs, which may exceed it, so
    /// no γ* is reported (`analyze` compares the all-pairs margin with γ* instead).
    pub fn gamma_star(&self) -> Option<f64> {
        let c = &self.config;
        (c.task.train_fraction == 1.0
            && c.model.activation == crate::model::Activation::Square
            && c.task.op == crate::task::Op::Add
            && !c.model.tied
            && c.model.embed_dim == 0)
            .then(|| theory::gamma_star_modular_addition(c.task.p))
    }

    /// Steps taken so far.
    pub fn steps_done(&self) -> u64 {
        self.step
    }
    /// The config the trainer was built from.
    pub fn config(&self) -> &RunConfig {
        &self.config
    }
    /// The whole operation table (train and test pairs).
    pub fn task(&self) -> &Task {
        &self.task
    }
    /// The pairs trained on (ascending table order), which every step passes over.
    pub fn train_pairs(&self) -> &PairSet {
        &self.train
    }
    /// The held-out pairs; empty when `train_fraction = 1`.
    pub fn test_pairs(&self) -> &PairSet {
        &self.test
    }
    /// Effective U, V, W of every model (use `u_array(k)` etc. for ndarray views).
    pub fn weights(&self) -> &Weights<F> {
        &self.weights
    }
    /// The trainable parameters (factors when factored).
    pub fn params(&self) -> &Params<F> {
        &self.params
    }
    /// The backend computing the passes (e.g. for [`Backend::describe`]).
    pub fn backend(&self) -> &dyn Backend<F> {
        self.backend.as_ref()
    }

    /// Snapshot of everything that evolves during training.
    pub fn state(&self) -> TrainerState<F> {
        TrainerState {
            step: self.step,
            params: self.params.data.clone(),
            adam_m: self.optimizer.m.clone(),
            adam_v: self.optimizer.v.clone(),
            grokfast_ema: self.optimizer.ema.clone(),
        }
    }

    /// Continues from a snapshot taken from a trainer with the same config (from
    /// [`Trainer::state`], [`crate::checkpoint::load_state`] or a `CudaTrainer`).
    /// Buffer lengths are checked ([`Error::Shape`]); that the config matches is not.
    pub fn restore(&mut self, state: TrainerState<F>) -> Result<()> {
        let n = self.params.data.len();
        // The parameters must match; each optimizer buffer is empty (not used yet) or
        // parameter-sized. Name the first buffer that is neither.
        let buffers = [
            ("params", &state.params, false),
            ("adam_m", &state.adam_m, true),
            ("adam_v", &state.adam_v, true),
            ("grokfast_ema", &state.grokfast_ema, true),
        ];
        if let Some((name, buffer, _)) = buffers
            .iter()
            .find(|(_, v, may_be_empty)| v.len() != n && !(*may_be_empty && v.is_empty()))
        {
            return Err(Error::Shape {
                what: format!("trainer state `{name}`"),
                expected: format!("{n} values"),
                got: format!("{} values", buffer.len()),
            });
        }
        self.step = state.step;
        self.params.data = state.params;
        self.optimizer.m = state.adam_m;
        self.optimizer.v = state.adam_v;
        self.optimizer.ema = state.grokfast_ema;
        self.params.effective_into(&mut self.weights);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_trainer() -> Trainer<f64> {
        let mut config = RunConfig::default();
        config.task.p = 5;
        config.model.width = 8;
        config.dtype = crate::kinds::Dtype::F64;
        Trainer::from_config(&config).unwrap()
    }

    #[test]
    fn restore_names_the_buffer_of_the_wrong_size() {
        let mut trainer = small_trainer();
        let n = trainer.state().params.len();
        let mut state = trainer.state();
        state.adam_v = vec![0.0; n + 1];
        let message = trainer.restore(state).unwrap_err().to_string();
        assert!(
            message.contains("adam_v") && message.contains(&(n + 1).to_string()),
            "{message}"
        );

        let mut state = trainer.state();
        state.params.pop();
        let message = trainer.restore(state).unwrap_err().to_string();
        assert!(
            message.contains("params") && message.contains(&(n - 1).to_string()),
            "{message}"
        );

        // Empty optimizer buffers (not used yet) are fine.
        let mut state = trainer.state();
        state.adam_m.clear();
        state.grokfast_ema.clear();
        trainer.restore(state).unwrap();
    }
}
