//! The host stepper: a [`Stepper`] that asks a [`Backend`] for each pass and does the
//! rest of the step — regularizer, chain rule to the parameters, optimizer — on the host.
//!
//! It serves every backend (the CPU, the f64 reference, and CUDA for models the
//! device-resident stepper does not cover). Models that train on different splits are
//! passed over in one backend call per split group, each group's weights gathered into
//! a sub-batch; since the backends' results for a model never depend on the other models
//! of its batch, every model gets exactly the bits it would get trained alone.

use crate::engine::stepper::{PassesReport, Recipe, SplitGroup, StepReport, Stepper};
use crate::engine::stepper::{StepperSetup, TrainerState};
use crate::engine::{AsPairSet, Backend, FrozenPairs, PassStats};
use crate::error::{Error, Result};
use crate::model::{GradsBuffer, Params, Weights};
use crate::optim::Optimizer;
use crate::real::Real;
use crate::regularizer::Regularizer;

/// See the module docs.
pub(crate) struct HostStepper<F: Real> {
    backend: Box<dyn Backend<F>>,
    recipe: Recipe,
    regularizer: Regularizer,
    groups: Vec<SplitGroup>,
    params: Params<F>,
    optimizer: Optimizer<F>,
    /// Effective weights of the current parameters (kept in sync after every update).
    weights: Weights<F>,
    grads: Weights<F>,
    param_grads: Vec<F>,
    /// Sub-batch buffers for passes over one split group (unused with one group).
    group_weights: Weights<F>,
    group_grads: Weights<F>,
    step: u64,
}

impl<F: Real> HostStepper<F> {
    pub(crate) fn new(setup: StepperSetup<F>, backend: Box<dyn Backend<F>>) -> HostStepper<F> {
        let StepperSetup {
            recipe,
            params,
            groups,
        } = setup;
        let weights = params.effective();
        let grads = Weights::zeros(&params.spec, params.batch);
        HostStepper {
            backend,
            regularizer: Regularizer::for_recipe(&recipe),
            recipe,
            groups,
            param_grads: vec![F::zero(); params.data.len()],
            optimizer: Optimizer::new(),
            group_weights: Weights::zeros(&params.spec, 0),
            group_grads: Weights::zeros(&params.spec, 0),
            params,
            weights,
            grads,
            step: 0,
        }
    }

    /// Runs `pass` for each split group over the pairs `pick` chooses from it, and puts
    /// each model's statistics at its index in the batch. With one group covering the
    /// batch it is a single call on the whole batch; otherwise each group's weights (and
    /// gradients, with `with_grads`) travel through the sub-batch buffers.
    fn per_group(
        &mut self,
        pick: fn(&SplitGroup) -> &FrozenPairs,
        with_grads: bool,
    ) -> Result<Vec<PassStats>> {
        let core = self.recipe.core;
        let batch = self.weights.batch;
        if let [group] = self.groups.as_slice() {
            return if with_grads {
                self.backend
                    .loss_and_grad(core, &self.weights, pick(group), &mut self.grads)
            } else {
                self.backend.evaluate(core, &self.weights, pick(group))
            };
        }
        // A model whose group has no such pairs (no test set) reports an empty pass.
        if self.groups.iter().all(|g| !pick(g).is_empty()) {
            let groups: Vec<(&[usize], &dyn AsPairSet)> = self
                .groups
                .iter()
                .map(|g| (g.models.as_slice(), pick(g) as &dyn AsPairSet))
                .collect();
            let grads = if with_grads {
                Some(&mut self.grads as &mut dyn GradsBuffer<F>)
            } else {
                None
            };
            if let Some(stats) = self
                .backend
                .grouped_pass(core, &self.weights, &groups, grads)
            {
                return stats;
            }
        }
        let empty = PassStats {
            loss: f64::NAN,
            correct: 0,
            count: 0,
            min_margin: f64::NAN,
            heads: Vec::new(),
        };
        let mut stats = vec![empty; batch];
        for group in &self.groups {
            let pairs = pick(group);
            if pairs.is_empty() {
                continue;
            }
            self.weights
                .gather_models_into(&group.models, &mut self.group_weights);
            let group_stats = if with_grads {
                let s = self.backend.loss_and_grad(
                    core,
                    &self.group_weights,
                    pairs,
                    &mut self.group_grads,
                )?;
                self.grads
                    .scatter_models_from(&group.models, &self.group_grads);
                s
            } else {
                self.backend.evaluate(core, &self.group_weights, pairs)?
            };
            for (&k, s) in group.models.iter().zip(group_stats) {
                stats[k] = s;
            }
        }
        Ok(stats)
    }

    /// Data-loss pass with gradients, regularizer and chain rule: `param_grads` then
    /// holds the gradient of the objective. Returns the data-loss statistics and the
    /// regularizer value per model.
    fn objective_gradients(&mut self) -> Result<(Vec<PassStats>, Vec<f64>)> {
        let train = self.per_group(|g| &g.train, true)?;
        let reg_loss = self.regularizer.apply(&self.weights, &mut self.grads);
        self.params.chain_grads(&self.grads, &mut self.param_grads);
        Ok((train, reg_loss))
    }

    fn step_once(&mut self) -> Result<StepReport> {
        let (train, reg_loss) = self.objective_gradients()?;
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
        let lr = (0..self.recipe.models.len())
            .map(|k| self.recipe.lr_at(k, self.step))
            .collect();
        self.optimizer.update(
            &self.recipe,
            self.step,
            &mut self.params.data,
            &mut self.param_grads,
        );
        self.params.effective_into(&mut self.weights);
        let report = StepReport {
            step: self.step,
            lr,
            train,
            reg_loss,
        };
        self.step += 1;
        Ok(report)
    }
}

impl<F: Real> Stepper<F> for HostStepper<F> {
    fn describe(&self) -> String {
        self.backend.describe()
    }

    fn preferred_batch(&self) -> u64 {
        1
    }

    fn steps_done(&self) -> u64 {
        self.step
    }

    fn advance(&mut self, n: u64, sink: &mut dyn FnMut(StepReport)) -> Result<()> {
        for _ in 0..n {
            sink(self.step_once()?);
        }
        Ok(())
    }

    fn passes(&mut self) -> Result<PassesReport> {
        let train = self.per_group(|g| &g.train, false)?;
        let test = if self.groups.iter().all(|g| g.test.is_empty()) {
            None
        } else {
            Some(self.per_group(|g| &g.test, false)?)
        };
        Ok(PassesReport { train, test })
    }

    fn weights(&mut self) -> Result<&Weights<F>> {
        Ok(&self.weights)
    }

    fn gradients(&mut self) -> Result<(Vec<F>, Vec<PassStats>, Vec<f64>)> {
        let (train, reg_loss) = self.objective_gradients()?;
        Ok((self.param_grads.clone(), train, reg_loss))
    }

    fn state(&self) -> Result<TrainerState<F>> {
        Ok(TrainerState {
            step: self.step,
            params: self.params.data.clone(),
            adam_m: self.optimizer.m.clone(),
            adam_v: self.optimizer.v.clone(),
            grokfast_ema: self.optimizer.grokfast.ema.clone(),
            grokfast_window: self.optimizer.grokfast.window_state(self.params.batch),
        })
    }

    fn restore(&mut self, state: TrainerState<F>) -> Result<()> {
        self.step = state.step;
        self.params.data = state.params;
        self.optimizer.m = state.adam_m;
        self.optimizer.v = state.adam_v;
        self.optimizer.grokfast.ema = state.grokfast_ema;
        if let Some(window) = self.recipe.grokfast_ma_window() {
            self.optimizer.grokfast.restore_window(
                &state.grokfast_window,
                window,
                self.params.batch,
                self.params.data.len(),
            );
        }
        self.params.effective_into(&mut self.weights);
        Ok(())
    }

    fn freeze(&mut self, k: usize) -> Result<()> {
        self.recipe.models[k].lr = 0.0;
        Ok(())
    }
}
