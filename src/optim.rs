//! Optimizers over the flat parameter vector: full-batch GD with a step schedule and
//! AdamW, with an optional Grokfast filter on the gradient (EMA or windowed mean,
//! src/grokfast.rs). Each model of the batch
//! has its own learning rate, weight decay and Grokfast λ ([`Recipe::models`]); the
//! update of model `k` reads only model `k`'s slice, so it is the update that model
//! would get alone.

use crate::engine::stepper::Recipe;
use crate::grokfast::GradFilter;
use crate::kinds::OptimizerKind;
use crate::model::models_per_task;
use crate::real::Real;
use rayon::prelude::*;

/// Optimizer state. Buffers are empty until used, so GD carries none.
///
/// The buffers have the layout of the parameter vector they were first updated with
/// ([`crate::model::Params::data`]); an empty buffer is (re)started on the next update:
/// Adam moments at zero, the Grokfast state at that step's gradient.
#[derive(Clone, Debug, PartialEq)]
pub struct Optimizer<F> {
    /// Adam first moment.
    pub m: Vec<F>,
    /// Adam second moment.
    pub v: Vec<F>,
    /// Grokfast filter state (kept for the whole batch when any model filters; models
    /// with λ = 0 never read it).
    pub grokfast: GradFilter<F>,
}

impl<F: Real> Default for Optimizer<F> {
    fn default() -> Self {
        Optimizer::new()
    }
}

impl<F: Real> Optimizer<F> {
    /// A fresh optimizer (no state yet).
    pub fn new() -> Optimizer<F> {
        Optimizer {
            m: Vec::new(),
            v: Vec::new(),
            grokfast: GradFilter::default(),
        }
    }

    /// Applies update number `step` (0-based) to `params` given `grads` (which the
    /// Grokfast filter may modify in place); both hold `recipe.models.len()` equal
    /// model-major slices. `step` sets the learning rate and AdamW's bias correction
    /// (`t = step + 1`), so a resumed run must pass the same count.
    pub fn update(&mut self, recipe: &Recipe, step: u64, params: &mut [F], grads: &mut [F]) {
        let per_model = params.len() / recipe.models.len().max(1);
        self.grokfast.apply(recipe, grads);
        match recipe.optimizer {
            OptimizerKind::Gd => {
                params
                    .par_chunks_exact_mut(per_model)
                    .zip(grads.par_chunks_exact(per_model))
                    .enumerate()
                    .with_min_len(models_per_task(per_model))
                    .for_each(|(k, (p, g))| {
                        let lr = F::of(recipe.lr_at(k, step));
                        for (p, &g) in p.iter_mut().zip(g) {
                            *p = gd(*p, g, lr);
                        }
                    });
            }
            OptimizerKind::Adamw => {
                self.start_moments(params.len());
                let adam = AdamwStep::new(recipe, step);
                params
                    .par_chunks_exact_mut(per_model)
                    .zip(grads.par_chunks_exact(per_model))
                    .zip(self.m.par_chunks_exact_mut(per_model))
                    .zip(self.v.par_chunks_exact_mut(per_model))
                    .enumerate()
                    .with_min_len(models_per_task(per_model))
                    .for_each(|(k, (((p, g), m), v))| {
                        let (decay, step_size) = adam.of_model(recipe, step, k);
                        for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m).zip(v) {
                            (*p, *m, *v) = adam.apply(*p, g, *m, *v, decay, step_size);
                        }
                    });
            }
        }
    }

    /// Sizes the Adam moments (at zero) for `n` parameters if they are not yet in use.
    pub(crate) fn start_moments(&mut self, n: usize) {
        if self.m.is_empty() {
            self.m = written_zeros(n);
            self.v = written_zeros(n);
        }
    }

    /// Update number `step` of model `k` alone, out of place: from its parameters and
    /// moments `from` and its gradient `grads` into `to` (the moments are empty under
    /// GD). The same operations in the same order as [`Optimizer::update`], so the same
    /// bits; the fused host step calls it per model while the model is in cache. The
    /// Grokfast filter is not applied here (the fused step filters the gradient first,
    /// `grokfast::EmaFilter::model`), nor are the Adam moments started: see
    /// [`Optimizer::start_moments`].
    pub(crate) fn update_model(
        recipe: &Recipe,
        step: u64,
        k: usize,
        from: ModelState<'_, F>,
        grads: &[F],
        to: ModelStateMut<'_, F>,
    ) {
        match recipe.optimizer {
            OptimizerKind::Gd => {
                let lr = F::of(recipe.lr_at(k, step));
                for ((new, &p), &g) in to.params.iter_mut().zip(from.params).zip(grads) {
                    *new = gd(p, g, lr);
                }
            }
            OptimizerKind::Adamw => {
                let adam = AdamwStep::new(recipe, step);
                let (decay, step_size) = adam.of_model(recipe, step, k);
                let new = to.params.iter_mut().zip(to.m).zip(to.v);
                let old = from.params.iter().zip(from.m).zip(from.v).zip(grads);
                for (((new_p, new_m), new_v), (((&p, &m), &v), &g)) in new.zip(old) {
                    (*new_p, *new_m, *new_v) = adam.apply(p, g, m, v, decay, step_size);
                }
            }
        }
    }
}

/// One model's parameters and Adam moments (empty moments under GD).
#[derive(Clone, Copy)]
pub(crate) struct ModelState<'a, F> {
    pub params: &'a [F],
    pub m: &'a [F],
    pub v: &'a [F],
}

/// Where [`Optimizer::update_model`] writes a model's next parameters and moments.
pub(crate) struct ModelStateMut<'a, F> {
    pub params: &'a mut [F],
    pub m: &'a mut [F],
    pub v: &'a mut [F],
}

/// `n` zeros written out. Why not `vec![0; n]`: that maps untouched pages that read as
/// the shared zero page, and the first write to each page after a read (the moments are
/// read before they are written) is a copy-on-write fault with a TLB shootdown across
/// cores; for 1024 explainer models that cost seconds in the first steps.
fn written_zeros<F: Real>(n: usize) -> Vec<F> {
    let mut zeros = Vec::with_capacity(n);
    zeros.resize(n, F::zero());
    zeros
}

/// Plain gradient descent on one parameter.
#[inline(always)]
fn gd<F: Real>(p: F, g: F, lr: F) -> F {
    p - lr * g
}

/// The AdamW constants of one step, shared by the batch.
struct AdamwStep<F> {
    bias1: f64,
    b1: F,
    b2: F,
    nb1: F,
    nb2: F,
    inv_sqrt_bias2: F,
    eps: F,
}

impl<F: Real> AdamwStep<F> {
    fn new(recipe: &Recipe, step: u64) -> AdamwStep<F> {
        let t = (step + 1) as i32;
        let bias2 = 1.0 - recipe.beta2.powi(t);
        AdamwStep {
            bias1: 1.0 - recipe.beta1.powi(t),
            b1: F::of(recipe.beta1),
            b2: F::of(recipe.beta2),
            nb1: F::of(1.0 - recipe.beta1),
            nb2: F::of(1.0 - recipe.beta2),
            inv_sqrt_bias2: F::of(1.0 / bias2.sqrt()),
            eps: F::of(recipe.eps),
        }
    }

    /// Model `k`'s decoupled decay factor and bias-corrected step size.
    fn of_model(&self, recipe: &Recipe, step: u64, k: usize) -> (F, F) {
        let lr = recipe.lr_at(k, step);
        (
            F::of(1.0 - lr * recipe.models[k].weight_decay),
            F::of(lr / self.bias1),
        )
    }

    /// One parameter's `(p, m, v)` after the step.
    #[inline(always)]
    fn apply(&self, p: F, g: F, m: F, v: F, decay: F, step_size: F) -> (F, F, F) {
        let p = p * decay;
        let m = self.b1 * m + self.nb1 * g;
        let v = self.b2 * v + self.nb2 * g * g;
        (
            p - step_size * m / (v.sqrt() * self.inv_sqrt_bias2 + self.eps),
            m,
            v,
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::engine::stepper::{GrokfastFilter, ModelHypers};
    use crate::engine::CoreSpec;
    use crate::kinds::{Loss, RegularizerKind};
    use crate::model::Activation;

    pub(crate) fn recipe(kind: OptimizerKind, models: Vec<ModelHypers>) -> Recipe {
        Recipe {
            core: CoreSpec {
                activation: Activation::Square,
                loss: Loss::CrossEntropy,
            },
            regularizer: RegularizerKind::None,
            reg_q: 2.0,
            optimizer: kind,
            lr_milestones: vec![1000, 2000],
            lr_factor: 2.0,
            warmup_steps: 0,
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
            grokfast: GrokfastFilter::Ema { alpha: 0.5 },
            models,
        }
    }

    pub(crate) fn hypers(lr: f64, weight_decay: f64, grokfast_lambda: f64) -> ModelHypers {
        ModelHypers {
            lr,
            weight_decay,
            reg_strength: 0.0,
            grokfast_lambda,
        }
    }

    #[test]
    fn schedule_multiplies_at_milestones() {
        let r = recipe(OptimizerKind::Gd, vec![hypers(0.05, 0.0, 0.0)]);
        assert_eq!(r.lr_at(0, 0), 0.05);
        assert_eq!(r.lr_at(0, 999), 0.05);
        assert_eq!(r.lr_at(0, 1000), 0.1);
        assert_eq!(r.lr_at(0, 5000), 0.2);
    }

    /// The warm-up multiplies the milestone schedule by step/W before step W, exactly 1
    /// from W on (step 0 takes no step, as PyTorch's `LambdaLR(min(s/W, 1))`).
    #[test]
    fn warmup_composes_with_the_milestones() {
        let mut r = recipe(OptimizerKind::Gd, vec![hypers(0.4, 0.0, 0.0)]);
        r.lr_milestones = vec![2];
        r.warmup_steps = 4;
        let lrs: Vec<f64> = (0..6).map(|t| r.lr_at(0, t)).collect();
        assert_eq!(lrs, vec![0.0, 0.1, 0.4, 0.6000000000000001, 0.8, 0.8]);
        r.warmup_steps = 0;
        assert_eq!(r.lr_at(0, 0), 0.4);
        let mut o = Optimizer::<f64>::new();
        let mut p = vec![1.0];
        r.warmup_steps = 4;
        o.update(&r, 0, &mut p, &mut [5.0]);
        assert_eq!(p, vec![1.0], "step 0 of a warm-up does not move");
    }

    #[test]
    fn adamw_matches_a_hand_computed_step() {
        let mut r = recipe(OptimizerKind::Adamw, vec![hypers(0.1, 0.5, 0.0)]);
        r.lr_milestones.clear();
        let mut o = Optimizer::<f64>::new();
        let mut p = vec![1.0];
        o.update(&r, 0, &mut p, &mut [2.0]);
        // decay: 1·(1 − 0.05) = 0.95; m̂ = 2, v̂ = 4 → step 0.1·2/(2 + 1e-8)
        assert!((p[0] - (0.95 - 0.1 * 2.0 / (2.0 + 1e-8))).abs() < 1e-12);
    }

    /// Each model's slice is updated exactly as that model alone would be.
    #[test]
    fn per_model_settings_update_each_model_as_if_alone() {
        let settings = [hypers(0.1, 0.5, 0.0), hypers(0.3, 0.0, 2.0)];
        for kind in [OptimizerKind::Gd, OptimizerKind::Adamw] {
            let together_recipe = recipe(kind, settings.to_vec());
            let mut together = Optimizer::<f64>::new();
            let mut params = vec![1.0, -2.0, 0.5, 3.0];
            for step in 0..3 {
                let mut grads = vec![0.2 * step as f64, -1.0, 0.7, 0.1];
                together.update(&together_recipe, step, &mut params, &mut grads);
            }
            for (k, s) in settings.iter().enumerate() {
                let alone_recipe = recipe(kind, vec![*s]);
                let mut alone = Optimizer::<f64>::new();
                let mut p = [[1.0, -2.0], [0.5, 3.0]][k].to_vec();
                for step in 0..3 {
                    let all = [0.2 * step as f64, -1.0, 0.7, 0.1];
                    let mut g = all[2 * k..2 * k + 2].to_vec();
                    alone.update(&alone_recipe, step, &mut p, &mut g);
                }
                assert_eq!(&params[2 * k..2 * k + 2], &p[..], "{kind:?} model {k}");
            }
        }
    }
}
