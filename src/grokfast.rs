//! The Grokfast gradient filters (Lee et al. 2024, "Grokfast: Accelerated Grokking by
//! Amplifying Slow Gradients"): before the optimizer sees it, each filtering model's
//! gradient gets its slow component added, g ← g + λ·slow(g), λ per model.
//!
//! - EMA: slow = μ with μ ← α·μ + (1−α)·g, μ starting at the first gradient (the
//!   reference `gradfilter_ema`).
//! - MA: slow = the mean of the last `window` gradients, this step's included, summed
//!   oldest first and divided by their count (the reference `gradfilter_ma`, filter type
//!   "mean"). With `warmup` (the reference default) nothing is added until the window is
//!   full; without it the mean is over the gradients held so far.
//!
//! The state is kept for every model of the batch (models with λ = 0 never read it), so
//! a checkpoint holds the same buffers whichever models filter, and the CUDA kernel
//! (kernels/optimizer_update.cu) keeps exactly the same state in the same order of
//! operations.

use crate::engine::stepper::{ring_from_window, window_from_ring, GrokfastFilter, Recipe};
use crate::real::Real;

/// Filter state. Buffers are empty until the first filtered step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GradFilter<F> {
    /// EMA μ, in the layout of the gradient (EMA filter only).
    pub ema: Vec<F>,
    /// MA window as a ring of `window` gradient-sized slots; slot `head` is written
    /// next and the `len` newest gradients are the slots before it (cyclically).
    ring: Vec<F>,
    /// Slots of the ring (0 until sized).
    window: usize,
    len: usize,
    head: usize,
    /// Per-element sums of the window (scratch, not state).
    sums: Vec<F>,
}

impl<F: Real> GradFilter<F> {
    /// Filters `grads` (model-major, `recipe.models.len()` equal slices) in place.
    pub fn apply(&mut self, recipe: &Recipe, grads: &mut [F]) {
        if !recipe.uses_grokfast() {
            return;
        }
        match recipe.grokfast {
            GrokfastFilter::Ema { alpha } => self.ema_step(recipe, alpha, grads),
            GrokfastFilter::Ma { window, warmup } => self.ma_step(recipe, window, warmup, grads),
        }
    }

    fn ema_step(&mut self, recipe: &Recipe, alpha: f64, grads: &mut [F]) {
        let per_model = grads.len() / recipe.models.len().max(1);
        let fresh = self.ema.is_empty();
        if fresh {
            // μ starts at the first gradient.
            self.ema = grads.to_vec();
        }
        for (k, hyper) in recipe.models.iter().enumerate() {
            if hyper.grokfast_lambda <= 0.0 {
                continue;
            }
            let range = k * per_model..(k + 1) * per_model;
            let filter = EmaFilter::new(alpha, hyper.grokfast_lambda);
            for (mu, g) in self.ema[range.clone()].iter_mut().zip(&mut grads[range]) {
                *mu = filter.apply(fresh, *mu, g);
            }
        }
    }

    fn ma_step(&mut self, recipe: &Recipe, window: usize, warmup: bool, grads: &mut [F]) {
        let n = grads.len();
        if self.window != window || self.ring.len() != window * n {
            self.ring = vec![F::zero(); window * n];
            (self.window, self.len, self.head) = (window, 0, 0);
        }
        self.ring[self.head * n..(self.head + 1) * n].copy_from_slice(grads);
        self.head = (self.head + 1) % window;
        self.len = (self.len + 1).min(window);
        if warmup && self.len < window {
            return;
        }
        let oldest = (self.head + window - self.len) % window;
        let slot = |j: usize| (oldest + j) % window;
        self.sums.clear();
        self.sums
            .extend_from_slice(&self.ring[slot(0) * n..(slot(0) + 1) * n]);
        for j in 1..self.len {
            let s = slot(j);
            for (sum, &g) in self.sums.iter_mut().zip(&self.ring[s * n..(s + 1) * n]) {
                *sum += g;
            }
        }
        let count = F::of(self.len as f64);
        let per_model = n / recipe.models.len().max(1);
        for (k, hyper) in recipe.models.iter().enumerate() {
            if hyper.grokfast_lambda <= 0.0 {
                continue;
            }
            let range = k * per_model..(k + 1) * per_model;
            let lambda = F::of(hyper.grokfast_lambda);
            for (g, &sum) in grads[range.clone()].iter_mut().zip(&self.sums[range]) {
                *g += lambda * (sum / count);
            }
        }
    }

    /// The MA window as [`crate::engine::stepper::TrainerState::grokfast_window`]:
    /// `[batch][len][n_params]`, oldest first; empty before the first MA step.
    pub fn window_state(&self, batch: usize) -> Vec<F> {
        window_from_ring(&self.ring, self.window, self.len, self.head, batch)
    }

    /// Continues from a [`GradFilter::window_state`] of `batch` models with gradients of
    /// `n` values (all models), for a filter of `window` slots. The caller checked that
    /// `state` holds whole gradients, at most `window` of them.
    pub fn restore_window(&mut self, state: &[F], window: usize, batch: usize, n: usize) {
        if state.is_empty() {
            self.ring.clear();
            (self.window, self.len, self.head) = (0, 0, 0);
            return;
        }
        let (ring, len) = ring_from_window(state, window, batch, n, F::zero());
        (self.ring, self.window, self.len, self.head) = (ring, window, len, len % window);
    }
}

/// The EMA filter of one model: α and its λ, as the element type.
pub(crate) struct EmaFilter<F> {
    alpha: F,
    one_minus: F,
    lambda: F,
}

impl<F: Real> EmaFilter<F> {
    pub(crate) fn new(alpha: f64, lambda: f64) -> EmaFilter<F> {
        EmaFilter {
            alpha: F::of(alpha),
            one_minus: F::of(1.0 - alpha),
            lambda: F::of(lambda),
        }
    }

    /// One parameter's step: the new μ from the old `mu` (on the `fresh` step μ is the
    /// gradient itself, already in `mu`), and `g` filtered in place.
    #[inline(always)]
    fn apply(&self, fresh: bool, mu: F, g: &mut F) -> F {
        let mu = if fresh {
            mu
        } else {
            self.alpha * mu + self.one_minus * *g
        };
        *g += self.lambda * mu;
        mu
    }

    /// Model `k`'s filter out of place, for the fused host step: its gradient `grads`
    /// filtered in place, its next μ written to `mu_next` from its μ `mu` (ignored on the
    /// `fresh` step, when μ starts at the gradient). A model with λ ≤ 0 keeps its μ and
    /// its gradient, as [`GradFilter::apply`] leaves them. The same bits as that.
    pub(crate) fn model(
        alpha: f64,
        lambda: f64,
        fresh: bool,
        mu: &[F],
        grads: &mut [F],
        mu_next: &mut [F],
    ) {
        mu_next.copy_from_slice(if fresh { grads } else { mu });
        if lambda > 0.0 {
            let filter = EmaFilter::new(alpha, lambda);
            for (mu, g) in mu_next.iter_mut().zip(grads) {
                *mu = filter.apply(fresh, *mu, g);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::OptimizerKind;
    use crate::optim::tests::{hypers, recipe};
    use crate::optim::Optimizer;

    /// The Grokfast filter against its recurrence, worked by hand for α = 0.5, λ = 2 and
    /// gradients 1, 3, −2, 0.5 (plain GD, lr 1, one parameter from 0):
    /// μ₀ = g₀ = 1 (the EMA starts at the first gradient), g̃₀ = 1 + 2·1 = 3, θ = −3;
    /// μ₁ = ½·1 + ½·3 = 2, g̃₁ = 3 + 4 = 7, θ = −10;
    /// μ₂ = ½·2 − ½·2 = 0, g̃₂ = −2, θ = −8;
    /// μ₃ = ½·0 + ½·0.5 = 0.25, g̃₃ = 0.5 + 0.5 = 1, θ = −9.
    /// A second model with λ = 0 in the same batch gets its raw gradients.
    #[test]
    fn grokfast_ema_follows_its_recurrence() {
        let mut r = recipe(
            OptimizerKind::Gd,
            vec![hypers(1.0, 0.0, 2.0), hypers(1.0, 0.0, 0.0)],
        );
        r.lr_milestones.clear();
        assert_eq!(r.grokfast, GrokfastFilter::Ema { alpha: 0.5 });
        let mut o = Optimizer::<f64>::new();
        let mut params = vec![0.0, 0.0];
        let raw = [1.0, 3.0, -2.0, 0.5];
        let filtered = [3.0, 7.0, -2.0, 1.0];
        let ema = [1.0, 2.0, 0.0, 0.25];
        let theta = [-3.0, -10.0, -8.0, -9.0];
        let mut plain = 0.0;
        for t in 0..4 {
            let mut grads = vec![raw[t], raw[t]];
            o.update(&r, t as u64, &mut params, &mut grads);
            plain -= raw[t];
            assert_eq!(
                grads,
                vec![filtered[t], raw[t]],
                "filtered gradient at step {t}"
            );
            assert_eq!(o.grokfast.ema[0], ema[t], "μ at step {t}");
            assert_eq!(params, vec![theta[t], plain], "parameters after step {t}");
        }
    }

    /// Grokfast-MA against its recurrence, worked by hand for window 3, λ = 2 and
    /// gradients 1, 3, −1, 4, −6 (plain GD, lr 1, one parameter from 0). Without warmup
    /// the mean is over what the window holds:
    /// [1] → 1, g̃ = 1 + 2 = 3, θ = −3; [1, 3] → 2, g̃ = 7, θ = −10;
    /// [1, 3, −1] → 1, g̃ = 1, θ = −11; [3, −1, 4] → 2 (1 has left), g̃ = 8, θ = −19;
    /// [−1, 4, −6] → −1, g̃ = −8, θ = −11.
    /// With warmup (the reference default) the first two steps are unfiltered:
    /// θ = −1, −4, −5, −13, −5. A second model with λ = 0 in the same batch gets its raw
    /// gradients (ten times model 0's), and the window holds them for it all the same.
    #[test]
    fn grokfast_ma_follows_its_recurrence() {
        let raw = [1.0, 3.0, -1.0, 4.0, -6.0];
        for (warmup, filtered, theta) in [
            (
                false,
                [3.0, 7.0, 1.0, 8.0, -8.0],
                [-3.0, -10.0, -11.0, -19.0, -11.0],
            ),
            (
                true,
                [1.0, 3.0, 1.0, 8.0, -8.0],
                [-1.0, -4.0, -5.0, -13.0, -5.0],
            ),
        ] {
            let mut r = recipe(
                OptimizerKind::Gd,
                vec![hypers(1.0, 0.0, 2.0), hypers(1.0, 0.0, 0.0)],
            );
            r.lr_milestones.clear();
            r.grokfast = GrokfastFilter::Ma { window: 3, warmup };
            let mut o = Optimizer::<f64>::new();
            let mut params = vec![0.0, 0.0];
            let mut plain = 0.0;
            for t in 0..raw.len() {
                let mut grads = vec![raw[t], 10.0 * raw[t]];
                o.update(&r, t as u64, &mut params, &mut grads);
                plain -= 10.0 * raw[t];
                assert_eq!(
                    grads,
                    vec![filtered[t], 10.0 * raw[t]],
                    "warmup {warmup}: filtered gradient at step {t}"
                );
                assert_eq!(params, vec![theta[t], plain], "warmup {warmup}: step {t}");
                // The window as a checkpoint holds it: per model, oldest first.
                let held = &raw[t.saturating_sub(2)..=t];
                let want: Vec<f64> = held
                    .iter()
                    .copied()
                    .chain(held.iter().map(|g| 10.0 * g))
                    .collect();
                assert_eq!(o.grokfast.window_state(2), want, "window after step {t}");
            }
        }
    }

    /// A filter restored from its window state continues exactly as the original, from
    /// every fill level (empty, partial, full, wrapped), with three models.
    #[test]
    fn grokfast_ma_resumes_exactly_from_its_window_state() {
        let mut r = recipe(
            OptimizerKind::Gd,
            vec![
                hypers(1.0, 0.0, 5.0),
                hypers(1.0, 0.0, 0.0),
                hypers(1.0, 0.0, 0.5),
            ],
        );
        r.grokfast = GrokfastFilter::Ma {
            window: 4,
            warmup: false,
        };
        let gradient = |t: usize| -> Vec<f32> {
            (0..6)
                .map(|i| ((t * 7 + i * 3) % 11) as f32 * 0.37 - 1.3)
                .collect()
        };
        let mut running = GradFilter::<f32>::default();
        for t in 0..11 {
            let mut resumed = GradFilter::<f32>::default();
            resumed.restore_window(&running.window_state(3), 4, 3, 6);
            assert_eq!(resumed.window_state(3), running.window_state(3), "step {t}");
            let (mut a, mut b) = (gradient(t), gradient(t));
            running.apply(&r, &mut a);
            resumed.apply(&r, &mut b);
            assert_eq!(a, b, "step {t}");
            assert_eq!(resumed.window_state(3), running.window_state(3), "step {t}");
        }
    }
}
