//! [`Trainer`]: one trainer for every device.
//!
//! It owns what must exist once — the config, the task, each model's split, the recipe,
//! γ*, the checks on a state handed back to it — and drives one
//! [`Stepper`]: the device-resident one a backend offers
//! ([`Backend::resident_stepper`]: the whole step as a CUDA graph), or else the host
//! stepper (`host.rs`) over that backend's passes. Nothing here names a device; the
//! backend comes from [`crate::engine::open`].

mod host;

use crate::config::RunConfig;
use crate::engine::stepper::StepperSetup;
use crate::engine::stepper::{GrokfastFilter, ModelHypers, Recipe, SplitGroup, Stepper};
pub use crate::engine::stepper::{StepReport, TrainerState};
use crate::engine::{Backend, CoreSpec, PassStats};
use crate::error::{Error, Result};
use crate::kinds::GrokfastKind;
use crate::model::Weights;
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
    /// Data loss, accuracy and unnormalized minimum margin on each model's training
    /// pairs, one entry per model.
    pub train: Vec<PassStats>,
    /// The same on each model's held-out pairs; None when every model trains on the
    /// whole table (a model that does, in a batch where others do not, reports an empty
    /// pass: count 0, loss NaN).
    pub test: Option<Vec<PassStats>>,
    /// Normalized margin over the training pairs (theory.md §2), one entry per model:
    /// `train[k].min_margin` divided by `Σ_i (‖u_i‖² + ‖v_i‖² + ‖w_i‖²)^{h/2}`, h the
    /// network's homogeneity ([`crate::theory::normalized_margin`]).
    pub margin: Vec<f64>,
    /// γ* of each model's setup when the theory gives one ([`theory::gamma_star`]).
    pub gamma_star: Vec<Option<f64>>,
    /// Value of the regularizer at these parameters, per model.
    pub reg_loss: Vec<f64>,
    /// Learning rate in effect at `step` (the one the next step uses), per model.
    pub lr: Vec<f64>,
}

impl Evaluation {
    /// Model `k`'s pass over its held-out pairs; None when it has none (it trains on the
    /// whole table, possibly in a batch where others hold pairs out).
    pub fn test_of(&self, k: usize) -> Option<&PassStats> {
        self.test.as_ref().map(|t| &t[k]).filter(|s| s.count > 0)
    }
}

/// Trains a batch of models of one shape on one task, on whatever device the backend
/// runs on (module docs).
///
/// `F` is the element type and must match [`RunConfig::dtype`]. The B models share the
/// task, the shape and the passes but are otherwise independent: model `k` starts from
/// its own seed, stream and init scale, trains on its own split with its own learning
/// rate, weight decay, regularizer strength and Grokfast λ (the `[per_model]` section of
/// the config), and gets the bits it would get trained alone.
pub struct Trainer<F: Real> {
    config: RunConfig,
    task: Task,
    groups: Vec<SplitGroup>,
    /// Model `k`'s group in `groups`.
    group_of: Vec<usize>,
    recipe: Recipe,
    gamma_star: Vec<Option<f64>>,
    n_params: usize,
    stepper: Box<dyn Stepper<F>>,
    /// Gradient of the objective from the last [`Trainer::compute_gradients`].
    param_grads: Vec<F>,
}

/// The recipe a config describes, each model's hyperparameters resolved.
pub fn recipe_for(config: &RunConfig) -> Recipe {
    let o = &config.optimizer;
    Recipe {
        core: CoreSpec {
            activation: config.model.activation,
            loss: config.train.loss,
        },
        regularizer: config.train.regularizer,
        reg_q: config.reg_q(),
        optimizer: o.kind,
        lr_milestones: o.lr_milestones.clone(),
        lr_factor: o.lr_factor,
        warmup_steps: o.warmup_steps,
        beta1: o.beta1,
        beta2: o.beta2,
        eps: o.eps,
        grokfast: match o.grokfast {
            GrokfastKind::Ema => GrokfastFilter::Ema {
                alpha: o.grokfast_alpha,
            },
            GrokfastKind::Ma => GrokfastFilter::Ma {
                window: o.grokfast_window,
                warmup: o.grokfast_warmup,
            },
        },
        models: config
            .model_settings()
            .iter()
            .map(|s| ModelHypers {
                lr: s.lr,
                weight_decay: s.weight_decay,
                reg_strength: s.reg_strength,
                grokfast_lambda: s.grokfast_lambda,
            })
            .collect(),
    }
}

/// Each model's train/test split of `task`, models with equal splits grouped together
/// (in order of their first model), and each model's group.
pub fn split_groups(config: &RunConfig, task: &Task) -> Result<(Vec<SplitGroup>, Vec<usize>)> {
    let mut splits: Vec<(Split, Vec<usize>)> = Vec::new();
    let mut group_of = Vec::with_capacity(config.models);
    for (k, s) in config.model_settings().iter().enumerate() {
        let split = Split::of(config.task.split, &task.pairs, s.train_fraction, s.seed)?;
        match splits.iter().position(|(other, _)| *other == split) {
            Some(g) => {
                splits[g].1.push(k);
                group_of.push(g);
            }
            None => {
                group_of.push(splits.len());
                splits.push((split, vec![k]));
            }
        }
    }
    let groups = splits
        .into_iter()
        .map(|(split, models)| SplitGroup {
            models,
            train: task.pairs.select(&split.train).into(),
            test: task.pairs.select(&split.test).into(),
        })
        .collect();
    Ok((groups, group_of))
}

impl<F: Real> Trainer<F> {
    /// A trainer for `config` on the device it names ([`crate::engine::open`]),
    /// initialized from its seeds. Validates the config; fails with
    /// [`Error::InvalidConfig`] (key `dtype`) if `F` is not the config's `dtype`, and
    /// with [`Error::Backend`] when the device cannot be used.
    pub fn from_config(config: &RunConfig) -> Result<Trainer<F>> {
        Trainer::<F>::check_dtype(config)?;
        let backend = crate::engine::open(config.device, config.precision, config.threads)?;
        Trainer::with_backend(config, backend)
    }

    /// A trainer on a backend of the caller's choosing (the config's `device`,
    /// `precision` and `threads` are then not used). Takes the backend's device-resident
    /// stepper when it offers one for this config, else steps on the host.
    pub fn with_backend(config: &RunConfig, backend: Box<dyn Backend<F>>) -> Result<Trainer<F>> {
        Trainer::build(config, backend, true)
    }

    /// A trainer that steps on the host over `backend`'s passes even where the backend
    /// could keep the step on its device (for comparing the two, and for gradient checks).
    pub fn on_host(config: &RunConfig, backend: Box<dyn Backend<F>>) -> Result<Trainer<F>> {
        Trainer::build(config, backend, false)
    }

    fn check_dtype(config: &RunConfig) -> Result<()> {
        if config.dtype != F::ELEMENT {
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
        Ok(())
    }

    fn build(
        config: &RunConfig,
        backend: Box<dyn Backend<F>>,
        resident: bool,
    ) -> Result<Trainer<F>> {
        config.validate()?;
        Trainer::<F>::check_dtype(config)?;
        let task = config.build_task()?;
        let (groups, group_of) = split_groups(config, &task)?;
        let params = config.init_params::<F>()?;
        let n_params = params.data.len();
        // Computed once (a group's γ* decomposes its regular representation).
        let whole = theory::gamma_star_for(config, true);
        let gamma_star = config
            .model_settings()
            .iter()
            .map(|s| whole.filter(|_| s.train_fraction == 1.0))
            .collect();
        let recipe = recipe_for(config);
        let setup = StepperSetup {
            recipe: recipe.clone(),
            params,
            groups: groups.clone(),
        };
        let offered = if resident {
            backend.resident_stepper(&setup)?
        } else {
            None
        };
        let stepper = match offered {
            Some(stepper) => stepper,
            None => Box::new(host::HostStepper::new(setup, backend)) as Box<dyn Stepper<F>>,
        };
        Ok(Trainer {
            config: config.clone(),
            task,
            groups,
            group_of,
            recipe,
            gamma_star,
            n_params,
            stepper,
            param_grads: Vec::new(),
        })
    }

    /// One full-batch step of every model. On a NaN/inf loss nothing is updated and an
    /// [`Error::Diverged`] comes back, so the parameters stay the last good ones. On a
    /// device-resident stepper each call syncs with the device; prefer
    /// [`Trainer::advance`] there.
    pub fn step(&mut self) -> Result<StepReport> {
        let mut last = None;
        self.stepper.advance(1, &mut |r| last = Some(r))?;
        last.ok_or_else(|| Error::backend("the stepper took no step"))
    }

    /// Takes `n` steps, handing each step's report to `sink` in order; stops at the
    /// first non-finite loss with [`Error::Diverged`] (the reports before it have been
    /// handed over). Runs at full speed when `n` is a multiple of
    /// [`Trainer::preferred_batch`].
    pub fn advance(&mut self, n: u64, sink: &mut (dyn FnMut(StepReport) + Send)) -> Result<()> {
        self.stepper.advance(n, sink)
    }

    /// How many steps to [`Trainer::advance`] at once: on the host as many as take
    /// about 20 ms (1 before the first call), the metrics read-back interval on a
    /// device-resident stepper.
    pub fn preferred_batch(&self) -> u64 {
        self.stepper.preferred_batch()
    }

    /// Evaluates the objective (data loss + regularizer) at the current parameters and
    /// its gradient with respect to the parameters, readable with [`Trainer::param_grads`].
    /// Returns the data-loss statistics and the regularizer value per model.
    pub fn compute_gradients(&mut self) -> Result<(Vec<PassStats>, Vec<f64>)> {
        let (grads, train, reg_loss) = self.stepper.gradients()?;
        self.param_grads = grads;
        Ok((train, reg_loss))
    }

    /// Gradient of the objective from the last [`Trainer::compute_gradients`] (flat,
    /// model-major, in [`crate::model::Params`] order; empty before the first call).
    pub fn param_grads(&self) -> &[F] {
        &self.param_grads
    }

    /// Loss, accuracy (train and test), normalized margin, regularizer value and
    /// learning rate of the current parameters (the weights are read off a device once).
    pub fn evaluate(&mut self) -> Result<Evaluation> {
        let passes = self.stepper.passes()?;
        let step = self.stepper.steps_done();
        let activation = self.recipe.core.activation;
        let weights = self.stepper.weights()?;
        let margin = passes
            .train
            .iter()
            .enumerate()
            .map(|(k, s)| theory::normalized_margin(s.min_margin, weights, k, activation))
            .collect();
        let reg_loss = Regularizer::for_recipe(&self.recipe).value(weights);
        let lr = (0..self.recipe.models.len())
            .map(|k| self.recipe.lr_at(k, step))
            .collect();
        Ok(Evaluation {
            step,
            train: passes.train,
            test: passes.test,
            margin,
            gamma_star: self.gamma_star.clone(),
            reg_loss,
            lr,
        })
    }

    /// γ* of each model's setup where the theory gives one ([`theory::gamma_star`]:
    /// x², addition, untied, unfactored, trained on the whole table).
    pub fn gamma_star(&self) -> &[Option<f64>] {
        &self.gamma_star
    }

    /// Steps taken so far.
    pub fn steps_done(&self) -> u64 {
        self.stepper.steps_done()
    }
    /// The config the trainer was built from.
    pub fn config(&self) -> &RunConfig {
        &self.config
    }
    /// The recipe it trains with, each model's hyperparameters resolved.
    pub fn recipe(&self) -> &Recipe {
        &self.recipe
    }
    /// The whole operation table (train and test pairs).
    pub fn task(&self) -> &Task {
        &self.task
    }
    /// The pairs model `k` trains on (ascending table order). Panics if `k` is not a
    /// model of the batch.
    pub fn train_pairs(&self, k: usize) -> &PairSet {
        &self.groups[self.group_of[k]].train
    }
    /// Model `k`'s held-out pairs; empty when it trains on the whole table.
    pub fn test_pairs(&self, k: usize) -> &PairSet {
        &self.groups[self.group_of[k]].test
    }
    /// Effective U, V, W of every model (use `u_array(k)` etc. for ndarray views);
    /// copied off the device once per call where the step is device-resident.
    pub fn weights(&mut self) -> Result<&Weights<F>> {
        self.stepper.weights()
    }
    /// Where the steps run, for logs.
    pub fn describe(&self) -> String {
        self.stepper.describe()
    }

    /// Freezes model `k` from the next step on (an early stop; see
    /// [`Stepper::freeze`]): its parameters no longer change, the other models train on
    /// with exactly the bits they would get without it, and its learning rate reads 0
    /// from then on. Fails with [`Error::InvalidConfig`] when `k` is not a model of the
    /// batch.
    pub fn freeze(&mut self, k: usize) -> Result<()> {
        if k >= self.recipe.models.len() {
            return Err(Error::config(
                "model",
                k,
                format!("the batch has {} model(s)", self.recipe.models.len()),
            ));
        }
        self.recipe.models[k].lr = 0.0;
        self.stepper.freeze(k)
    }

    /// Snapshot of everything that evolves during training.
    pub fn state(&self) -> Result<TrainerState<F>> {
        self.stepper.state()
    }

    /// Continues from a snapshot taken from a trainer with the same config (from
    /// [`Trainer::state`] or [`crate::checkpoint::load_state`]), on any device.
    /// Buffer lengths are checked ([`Error::Shape`], naming the buffer); that the config
    /// matches is not.
    pub fn restore(&mut self, state: TrainerState<F>) -> Result<()> {
        let n = self.n_params;
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
        // The Grokfast-MA window: whole gradients, at most `window` of them, and none
        // unless this recipe runs the MA filter.
        let window = self.recipe.grokfast_ma_window().unwrap_or(0);
        let held = state.grokfast_window.len();
        if !held.is_multiple_of(n.max(1)) || held / n.max(1) > window {
            return Err(Error::Shape {
                what: "trainer state `grokfast_window`".into(),
                expected: format!("a multiple of {n} values, at most {window} gradients"),
                got: format!("{held} values"),
            });
        }
        self.stepper.restore(state)
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
        let n = trainer.state().unwrap().params.len();
        let mut state = trainer.state().unwrap();
        state.adam_v = vec![0.0; n + 1];
        let message = trainer.restore(state).unwrap_err().to_string();
        assert!(
            message.contains("adam_v") && message.contains(&(n + 1).to_string()),
            "{message}"
        );

        let mut state = trainer.state().unwrap();
        state.params.pop();
        let message = trainer.restore(state).unwrap_err().to_string();
        assert!(
            message.contains("params") && message.contains(&(n - 1).to_string()),
            "{message}"
        );

        // Empty optimizer buffers (not used yet) are fine.
        let mut state = trainer.state().unwrap();
        state.adam_m.clear();
        state.grokfast_ema.clear();
        trainer.restore(state).unwrap();

        // A Grokfast window on a trainer that keeps none is refused, naming it.
        let mut state = trainer.state().unwrap();
        state.grokfast_window = vec![0.0; n];
        let message = trainer.restore(state).unwrap_err().to_string();
        assert!(message.contains("grokfast_window"), "{message}");
    }
}
