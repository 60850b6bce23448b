//! The host stepper: a [`Stepper`] that asks a [`Backend`] for each pass and does the
//! rest of the step — regularizer, chain rule to the parameters, optimizer — on the host.
//!
//! It serves every backend (the CPU, the f64 reference, and CUDA for models the
//! device-resident stepper does not cover). Models that train on different splits are
//! passed over in one backend call per split group, each group's weights gathered into
//! a sub-batch; since the backends' results for a model never depend on the other models
//! of its batch, every model gets exactly the bits it would get trained alone.
//!
//! # The fused step
//! Where the backend offers [`Backend::loss_and_grad_each`] (the CPU does for sweep
//! batches), a step is one pass: as each model's gradient is complete, the thread that
//! computed it adds the regularizer, applies the chain rule and the optimizer and
//! computes the next effective weights, while the model is in that core's cache. The
//! batch-wide loops of the plain step would each stream every model's parameters,
//! gradients and moments through memory (27 MB arrays per loop for 1024 models at
//! p = 23, m = 96). The fused step writes into second buffers that are swapped in only
//! when every model's loss was finite, so a divergence still leaves every parameter as
//! it was; it calls the same per-model functions in the same order, so both steps give
//! the same bits. The Grokfast-EMA filter runs per model too; Grokfast-MA, whose window
//! ring the batch shares and a step overwrites, takes the plain step.

use crate::engine::stepper::{PassesReport, Recipe, SplitGroup, StepReport, Stepper};
use crate::engine::stepper::{StepperSetup, TrainerState};
use crate::engine::{AsPairSet, Backend, FrozenPairs, ModelGrads, PassStats};
use crate::error::{Error, Result};
use crate::grokfast::EmaFilter;
use crate::kinds::OptimizerKind;
use crate::model::{GradsBuffer, Params, Weights};
use crate::optim::{ModelState, ModelStateMut, Optimizer};
use crate::real::Real;
use crate::regularizer::Regularizer;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// See the module docs.
pub(crate) struct HostStepper<F: Real> {
    /// Shared so a call can run its steps inside [`Backend::within`] while they borrow
    /// the stepper.
    backend: Arc<dyn Backend<F>>,
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
    /// What the fused step writes the next state into (see the module docs).
    next: NextState<F>,
    step: u64,
    /// Wall seconds a step took in the last [`Stepper::advance`] (None before one).
    step_seconds: Option<f64>,
}

/// The fused step's second buffers: the next parameters, Adam moments and effective
/// weights, swapped with the current ones after a step in which every model was finite.
struct NextState<F> {
    params: Vec<F>,
    adam_m: Vec<F>,
    adam_v: Vec<F>,
    /// The Grokfast EMA μ (empty when the batch keeps none).
    ema: Vec<F>,
    weights: Weights<F>,
    /// Per-thread scratch for a model's parameter gradient (and the summed embedding
    /// gradient of a tied factored model), picked by rayon thread index.
    scratch: Vec<Mutex<Vec<F>>>,
}

/// One model's share of the next state, filled by the fused step's consumer.
struct ModelNext<'a, F> {
    params: &'a mut [F],
    adam_m: &'a mut [F],
    adam_v: &'a mut [F],
    ema: &'a mut [F],
    u: &'a mut [F],
    v: &'a mut [F],
    w: &'a mut [F],
    /// The regularizer's value at the current weights.
    reg_loss: f64,
    /// Whether the backend handed this model's gradient over.
    done: bool,
}

/// [`Error::Diverged`] for the first model whose objective (data loss + regularizer) at
/// `step` is not finite.
fn check_finite(step: u64, train: &[PassStats], reg_loss: &[f64]) -> Result<()> {
    for (model, (s, r)) in train.iter().zip(reg_loss).enumerate() {
        let loss = s.loss + r;
        if !loss.is_finite() {
            return Err(Error::Diverged { step, model, loss });
        }
    }
    Ok(())
}

/// Model `k`'s `n` values of a model-major buffer; empty for an unused (empty) buffer.
fn model_slice<F>(buf: &[F], k: usize, n: usize) -> &[F] {
    buf.get(k * n..(k + 1) * n).unwrap_or(&[])
}

/// Each model's `n` values of a model-major buffer, or endless empty slices for an
/// unused (empty) one, such as GD's Adam moments.
fn model_slices_mut<F>(buf: &mut [F], n: usize) -> Box<dyn Iterator<Item = &mut [F]> + '_> {
    if buf.is_empty() {
        Box::new(std::iter::repeat_with(|| &mut [] as &mut [F]))
    } else {
        Box::new(buf.chunks_mut(n))
    }
}

/// Scratch slots of [`NextState::scratch`]; a thread whose index maps to a busy slot
/// waits for it, so this bounds the memory, not the threads.
const SCRATCH_SLOTS: usize = 64;

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
            backend: Arc::from(backend),
            regularizer: Regularizer::for_recipe(&recipe),
            recipe,
            groups,
            param_grads: vec![F::zero(); params.data.len()],
            optimizer: Optimizer::new(),
            group_weights: Weights::zeros(&params.spec, 0),
            group_grads: Weights::zeros(&params.spec, 0),
            next: NextState {
                params: Vec::new(),
                adam_m: Vec::new(),
                adam_v: Vec::new(),
                ema: Vec::new(),
                weights: Weights::zeros(&params.spec, 0),
                scratch: (0..SCRATCH_SLOTS).map(|_| Mutex::default()).collect(),
            },
            params,
            weights,
            grads,
            step: 0,
            step_seconds: None,
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

    /// The fused step (module docs), or None when the batch takes the plain step: with
    /// the Grokfast-MA filter (its window is a ring shared by the batch, whose oldest
    /// slot a step overwrites), a split group without training pairs, or when the backend
    /// has no per-model pass for this batch.
    fn step_fused(&mut self) -> Option<Result<StepReport>> {
        // A group without training pairs is left to the plain step, which reports its
        // models' empty passes.
        if self.recipe.grokfast_ma_window().is_some()
            || self.groups.iter().any(|g| g.train.is_empty())
        {
            return None;
        }
        let HostStepper {
            backend,
            recipe,
            regularizer,
            groups,
            params,
            optimizer,
            weights,
            next,
            step,
            ..
        } = self;
        let step = *step;
        let n = params.spec.n_params();
        let width = params.spec.width;
        if recipe.optimizer == OptimizerKind::Adamw {
            optimizer.start_moments(params.data.len());
        }
        next.params.resize(params.data.len(), F::zero());
        next.adam_m.resize(optimizer.m.len(), F::zero());
        next.adam_v.resize(optimizer.v.len(), F::zero());
        // The Grokfast EMA μ, when the batch keeps one (it starts at this step's gradient).
        let ema_alpha = recipe.grokfast_ema_alpha();
        let ema_fresh = optimizer.grokfast.ema.is_empty();
        next.ema.resize(
            if ema_alpha.is_some() {
                params.data.len()
            } else {
                0
            },
            F::zero(),
        );
        if next.weights.shape() != weights.shape() {
            next.weights = Weights::zeros(&params.spec, params.batch);
        }
        let (embed, outs) = (weights.n_in * width, weights.n_out * width);
        let slots: Vec<Mutex<ModelNext<'_, F>>> = next
            .params
            .chunks_mut(n)
            .zip(model_slices_mut(&mut next.adam_m, n))
            .zip(model_slices_mut(&mut next.adam_v, n))
            .zip(model_slices_mut(&mut next.ema, n))
            .zip(next.weights.u.chunks_mut(embed))
            .zip(next.weights.v.chunks_mut(embed))
            .zip(next.weights.w.chunks_mut(outs))
            .map(|((((((params, adam_m), adam_v), ema), u), v), w)| {
                Mutex::new(ModelNext {
                    params,
                    adam_m,
                    adam_v,
                    ema,
                    u,
                    v,
                    w,
                    reg_loss: 0.0,
                    done: false,
                })
            })
            .collect();
        let (current, scratch) = (&*params, &next.scratch);
        let (adam_m, adam_v, ema) = (&optimizer.m, &optimizer.v, &optimizer.grokfast.ema);
        let each = |k: usize, stats: &PassStats, g: ModelGrads<'_, F>| {
            let mut to = slots[k].lock().unwrap_or_else(|e| e.into_inner());
            to.done = true;
            let grads = (&mut *g.u, &mut *g.v, &mut *g.w);
            to.reg_loss = regularizer.apply_model(k, weights.model(k), width, grads);
            if !(stats.loss + to.reg_loss).is_finite() {
                return; // reported below; nothing of this step is kept
            }
            let slot = rayon::current_thread_index().unwrap_or(0) % scratch.len();
            let mut buf = scratch[slot].lock().unwrap_or_else(|e| e.into_inner());
            buf.resize(n + embed, F::zero());
            let (param_grads, tied_sum) = buf.split_at_mut(n);
            let from_params = &current.data[k * n..(k + 1) * n];
            current.chain_model(from_params, (g.u, g.v, g.w), param_grads, tied_sum);
            let to = &mut *to;
            if let Some(alpha) = ema_alpha {
                let lambda = recipe.models[k].grokfast_lambda;
                let mu = model_slice(ema, k, n);
                EmaFilter::model(alpha, lambda, ema_fresh, mu, param_grads, to.ema);
            }
            Optimizer::update_model(
                recipe,
                step,
                k,
                ModelState {
                    params: from_params,
                    m: model_slice(adam_m, k, n),
                    v: model_slice(adam_v, k, n),
                },
                param_grads,
                ModelStateMut {
                    params: to.params,
                    m: to.adam_m,
                    v: to.adam_v,
                },
            );
            current.effective_model(to.params, to.u, to.v, to.w);
        };
        let train: Vec<(&[usize], &dyn AsPairSet)> = groups
            .iter()
            .map(|g| (g.models.as_slice(), &g.train as &dyn AsPairSet))
            .collect();
        let train = match backend.loss_and_grad_each(recipe.core, &*weights, &train, &each)? {
            Ok(stats) => stats,
            Err(e) => return Some(Err(e)),
        };
        let mut reg_loss = Vec::with_capacity(slots.len());
        for (k, slot) in slots.into_iter().enumerate() {
            let slot = slot.into_inner().unwrap_or_else(|e| e.into_inner());
            if !slot.done {
                return Some(Err(Error::backend(format!(
                    "{} handed over no gradient for model {k}",
                    backend.describe()
                ))));
            }
            reg_loss.push(slot.reg_loss);
        }
        if let Err(e) = check_finite(step, &train, &reg_loss) {
            return Some(Err(e));
        }
        std::mem::swap(&mut params.data, &mut next.params);
        std::mem::swap(&mut optimizer.m, &mut next.adam_m);
        std::mem::swap(&mut optimizer.v, &mut next.adam_v);
        if ema_alpha.is_some() {
            std::mem::swap(&mut optimizer.grokfast.ema, &mut next.ema);
        }
        std::mem::swap(weights, &mut next.weights);
        let lr = (0..recipe.models.len())
            .map(|k| recipe.lr_at(k, step))
            .collect();
        self.step += 1;
        Some(Ok(StepReport {
            step,
            lr,
            train,
            reg_loss,
        }))
    }

    fn step_once(&mut self) -> Result<StepReport> {
        if let Some(report) = self.step_fused() {
            return report;
        }
        let (train, reg_loss) = self.objective_gradients()?;
        check_finite(self.step, &train, &reg_loss)?;
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
        /// Wall time a call's steps should take: long enough that the hand-over to the
        /// backend's threads per call is noise, short enough for progress and Ctrl-C.
        const CALL_SECONDS: f64 = 0.02;
        self.step_seconds
            .map_or(1, |s| (CALL_SECONDS / s).clamp(1.0, 1e6) as u64)
    }

    fn steps_done(&self) -> u64 {
        self.step
    }

    fn advance(&mut self, n: u64, sink: &mut (dyn FnMut(StepReport) + Send)) -> Result<()> {
        let (started, before) = (Instant::now(), self.step);
        let backend = Arc::clone(&self.backend);
        let mut result = Ok(());
        let mut steps = || {
            result = (0..n).try_for_each(|_| {
                sink(self.step_once()?);
                Ok(())
            })
        };
        // One step runs where it is called: the hand-over to the backend's threads
        // (~100 µs on a shared VM) would cost as much as a small model's step, and a
        // caller stepping one at a time (`Trainer::step`, Python's `step(1)`) would pay
        // it every step. Many steps pay it once.
        if n == 1 {
            steps()
        } else {
            backend.within(&mut steps)
        }
        let taken = self.step - before;
        if taken > 0 {
            self.step_seconds = Some(started.elapsed().as_secs_f64() / taken as f64);
        }
        result
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
