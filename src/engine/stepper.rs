//! [`Stepper`]: the training step as the engine offers it, whichever device runs it.
//!
//! A trainer needs two kinds of engine. Most devices compute one pass at a time and leave
//! the regularizer and the optimizer to the host (the host stepper, built on a
//! [`super::Backend`] by the train layer). A GPU can instead keep the whole step —
//! pass, regularizer, Grokfast, optimizer — resident and replay it without a host sync
//! (the CUDA stepper, which a backend offers through
//! [`super::Backend::resident_stepper`]). Both take the same [`Recipe`], report the same
//! [`StepReport`]s and read and write the same [`TrainerState`], so the one
//! `train::Trainer` above never knows which one it drives.

use super::{CoreSpec, FrozenPairs, PassStats};
use crate::error::Result;
use crate::kinds::{OptimizerKind, RegularizerKind};
use crate::model::{Params, Weights};
use crate::real::Real;

/// The hyperparameters that may differ between the models of one batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelHypers {
    /// Learning rate before the first milestone.
    pub lr: f64,
    /// AdamW decoupled weight decay (0 under GD).
    pub weight_decay: f64,
    /// Regularizer strength λ.
    pub reg_strength: f64,
    /// Grokfast λ (0: no filter for this model).
    pub grokfast_lambda: f64,
}

/// Everything a stepper needs to know about how to train: what the pass computes, the
/// regularizer, the update rule and its schedule (shared by the batch), and each model's
/// own [`ModelHypers`].
#[derive(Clone, Debug, PartialEq)]
pub struct Recipe {
    /// Activation and loss of the pass.
    pub core: CoreSpec,
    /// Which weight-norm penalty is added (its λ is per model).
    pub regularizer: RegularizerKind,
    /// The exponent q of [`RegularizerKind::L2k`] (≥ 1; the other kinds ignore it).
    pub reg_q: f64,
    /// GD or AdamW.
    pub optimizer: OptimizerKind,
    /// Steps from which the learning rate is multiplied by `lr_factor` once more.
    pub lr_milestones: Vec<u64>,
    /// Factor applied at each milestone.
    pub lr_factor: f64,
    /// Linear warm-up length in steps (0: none); see [`Recipe::lr_at`].
    pub warmup_steps: u64,
    /// AdamW β₁.
    pub beta1: f64,
    /// AdamW β₂.
    pub beta2: f64,
    /// AdamW ε.
    pub eps: f64,
    /// Which Grokfast filter the models with λ > 0 run, and its shared setting.
    pub grokfast: GrokfastFilter,
    /// One entry per model of the batch.
    pub models: Vec<ModelHypers>,
}

impl Recipe {
    /// Learning rate of model `k` at `step` (0-based):
    /// `lr_k · factor^#{milestones ≤ step} · warmup(step)`, where `warmup(step)` is
    /// `step / warmup_steps` before `warmup_steps` and 1 from then on (and always 1 when
    /// `warmup_steps` is 0). The CUDA step (`step_control` in
    /// kernels/optimizer_update.cu) computes the same product in the same order.
    pub fn lr_at(&self, k: usize, step: u64) -> f64 {
        let passed = self.lr_milestones.iter().filter(|&&s| s <= step).count();
        self.models[k].lr * self.lr_factor.powi(passed as i32) * self.warmup_factor(step)
    }

    /// The warm-up multiplier of `step`: `step / warmup_steps` before the end of the
    /// warm-up, else exactly 1.
    pub fn warmup_factor(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            step as f64 / self.warmup_steps as f64
        } else {
            1.0
        }
    }

    /// Whether any model runs the Grokfast filter (and so keeps its state).
    pub fn uses_grokfast(&self) -> bool {
        self.models.iter().any(|m| m.grokfast_lambda > 0.0)
    }

    /// The EMA factor α when the batch keeps a Grokfast EMA.
    pub fn grokfast_ema_alpha(&self) -> Option<f64> {
        match self.grokfast {
            GrokfastFilter::Ema { alpha } if self.uses_grokfast() => Some(alpha),
            _ => None,
        }
    }

    /// The window length when the batch keeps a Grokfast-MA gradient window.
    pub fn grokfast_ma_window(&self) -> Option<usize> {
        match self.grokfast {
            GrokfastFilter::Ma { window, .. } if self.uses_grokfast() => Some(window),
            _ => None,
        }
    }
}

/// The Grokfast gradient filter of a batch (Lee et al. 2024). Its kind and setting are
/// shared by the batch because they decide the shape of the state every model keeps
/// (one EMA, or `window` past gradients, per parameter); λ is per model
/// ([`ModelHypers::grokfast_lambda`]). Semantics: src/grokfast.rs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GrokfastFilter {
    /// μ ← α·μ + (1−α)·g, μ starting at the first gradient; g ← g + λ·μ.
    Ema {
        /// The EMA factor α in [0, 1).
        alpha: f64,
    },
    /// g ← g + λ·(mean of the last `window` gradients, this step's included).
    Ma {
        /// Gradients averaged (≥ 1).
        window: usize,
        /// As the reference `gradfilter_ma(warmup=True)`: no filtering until the window
        /// is full. Without it, the mean is over the gradients held so far.
        warmup: bool,
    },
}

/// Which models train on which pairs. Models that share a split share one group, so a
/// batch with one split (the usual case) makes one pass per step. The pairs are frozen
/// so a device backend keeps them resident for the whole run ([`FrozenPairs`]).
#[derive(Clone, Debug, PartialEq)]
pub struct SplitGroup {
    /// The models of the batch in this group, ascending.
    pub models: Vec<usize>,
    /// The pairs they train on (ascending table order).
    pub train: FrozenPairs,
    /// Their held-out pairs; empty when they train on the whole table.
    pub test: FrozenPairs,
}

/// What a stepper starts from: the recipe, the initial parameters and the data.
#[derive(Clone, Debug)]
pub struct StepperSetup<F> {
    /// How to train.
    pub recipe: Recipe,
    /// The initial parameters of every model.
    pub params: Params<F>,
    /// The models grouped by split; every model is in exactly one group.
    pub groups: Vec<SplitGroup>,
}

/// What one step reports, per model, measured before the update (full batch: the loss
/// of the parameters the gradient was taken at).
#[derive(Clone, Debug, PartialEq)]
pub struct StepReport {
    /// Number of the step just taken (0-based).
    pub step: u64,
    /// Learning rate each model used, one entry per model.
    pub lr: Vec<f64>,
    /// Data loss and accuracy on the training pairs, one entry per model.
    pub train: Vec<PassStats>,
    /// Regularizer value, one entry per model (0 without a regularizer); the objective
    /// the step descended is `train[k].loss + reg_loss[k]`.
    pub reg_loss: Vec<f64>,
}

/// Loss, accuracy and margins of the current parameters on each model's own pairs.
#[derive(Clone, Debug, PartialEq)]
pub struct PassesReport {
    /// On the pairs each model trains on.
    pub train: Vec<PassStats>,
    /// On each model's held-out pairs; None when every model trains on the whole table.
    pub test: Option<Vec<PassStats>>,
}

/// Everything needed to continue a run exactly: what a checkpoint stores.
///
/// Every vector is flat and model-major in the layout of [`Params::data`]
/// (`batch × n_params`; the Grokfast window `batch × len × n_params`). An optimizer
/// buffer that is not in use yet (GD's Adam moments, the Grokfast state when no model
/// filters or the other filter runs, any of them before the first step) is empty.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainerState<F> {
    /// Steps taken so far.
    pub step: u64,
    /// The trainable parameters (the factors when factored).
    pub params: Vec<F>,
    /// AdamW first moment m (not bias-corrected).
    pub adam_m: Vec<F>,
    /// AdamW second moment v (not bias-corrected).
    pub adam_v: Vec<F>,
    /// Grokfast EMA μ of the gradient.
    pub grokfast_ema: Vec<F>,
    /// Grokfast-MA window: the last `len ≤ window` gradients, model-major and oldest
    /// first (`[B][len][n_params]`, each gradient in [`Params::data`] order).
    pub grokfast_window: Vec<F>,
}

/// A training step that runs somewhere: on the host over a backend's passes, or
/// resident on a device. See the module docs.
pub trait Stepper<F: Real> {
    /// Where it runs, for logs (e.g. `"cpu (2 threads, avx512)"`).
    fn describe(&self) -> String;

    /// How many steps [`Stepper::advance`] should be given at once to run at full
    /// speed: on the host as many as take about 20 ms (so progress and Ctrl-C stay
    /// responsive), the metrics read-back interval on a device (one host sync per that
    /// many steps).
    fn preferred_batch(&self) -> u64;

    /// Steps taken so far.
    fn steps_done(&self) -> u64;

    /// Takes `n` steps, handing each step's report to `sink` in order. On a non-finite
    /// loss it stops with [`crate::Error::Diverged`], leaving the parameters of the last
    /// finite step; the reports of the steps before it have been handed over.
    /// `sink` is `Send` because the steps may run on one of the backend's threads
    /// ([`crate::engine::Backend::within`]).
    fn advance(&mut self, n: u64, sink: &mut (dyn FnMut(StepReport) + Send)) -> Result<()>;

    /// Forward passes of the current parameters over each model's train and test pairs.
    fn passes(&mut self) -> Result<PassesReport>;

    /// The effective U, V, W of the current parameters (copied off the device once per
    /// call where they live on one).
    fn weights(&mut self) -> Result<&Weights<F>>;

    /// The gradient of the objective at the current parameters, in [`Params::data`]
    /// order, with the data-loss statistics and the regularizer value per model; no
    /// update is applied. For gradient checks; a stepper that cannot compute it on its
    /// own returns [`crate::Error::Backend`].
    fn gradients(&mut self) -> Result<(Vec<F>, Vec<PassStats>, Vec<f64>)>;

    /// Everything that evolves during training.
    fn state(&self) -> Result<TrainerState<F>>;

    /// Continues from `state` (buffer lengths are checked by the caller).
    fn restore(&mut self, state: TrainerState<F>) -> Result<()>;

    /// Freezes model `k` (an early stop): from the next step on its learning rate is 0,
    /// so its parameters stay bit for bit as they are (GD: θ − 0·g; AdamW: θ·(1 − 0·wd)
    /// − 0·m̂/(√v̂ + ε), the denominator ≥ ε), while the other models' steps are
    /// untouched. Its gradient is still computed with the batch's pass and its
    /// optimizer moments still follow it; only the update is zero. Panics if `k` is not
    /// a model of the batch.
    fn freeze(&mut self, k: usize) -> Result<()>;
}

/// A Grokfast-MA window kept as a ring of `slots` gradient-sized slots of `n` values
/// each (all models' gradients, in one order): the `len` newest gradients are the `len`
/// slots before `head`, cyclically. Returns them in the layout of
/// [`TrainerState::grokfast_window`]: `[batch][len][n / batch]`, oldest first. Shared by
/// the host filter and the CUDA stepper, so both write the same checkpoint.
pub fn window_from_ring<T: Copy>(
    ring: &[T],
    slots: usize,
    len: usize,
    head: usize,
    batch: usize,
) -> Vec<T> {
    if len == 0 || slots == 0 {
        return Vec::new();
    }
    let n = ring.len() / slots;
    let per_model = n / batch.max(1);
    let oldest = (head + slots - len) % slots;
    let mut out = Vec::with_capacity(len * n);
    for k in 0..batch {
        for j in 0..len {
            let start = ((oldest + j) % slots) * n + k * per_model;
            out.extend_from_slice(&ring[start..start + per_model]);
        }
    }
    out
}

/// The inverse of [`window_from_ring`]: a ring of `slots` slots of `n` values (unused
/// slots `fill`) holding `window`'s gradients oldest first from slot 0, and their count
/// (the next gradient goes to slot `count % slots`). The caller checked that `window`
/// holds whole gradients, at most `slots` of them.
pub fn ring_from_window<T: Copy>(
    window: &[T],
    slots: usize,
    batch: usize,
    n: usize,
    fill: T,
) -> (Vec<T>, usize) {
    let len = window.len() / n.max(1);
    let mut ring = vec![fill; slots * n];
    let per_model = n / batch.max(1);
    for k in 0..batch {
        for j in 0..len {
            let from = (k * len + j) * per_model;
            let to = j * n + k * per_model;
            ring[to..to + per_model].copy_from_slice(&window[from..from + per_model]);
        }
    }
    (ring, len)
}
