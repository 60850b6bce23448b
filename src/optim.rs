//! Optimizers over the flat parameter vector: full-batch GD with a step schedule and
//! AdamW, with an optional Grokfast EMA filter on the gradient.

use crate::config::OptimizerConfig;
use crate::kinds::OptimizerKind;
use crate::real::Real;

/// Optimizer state. Buffers are empty until used, so GD carries none.
///
/// The buffers have the layout of the parameter vector they were first updated with
/// ([`crate::model::Params::data`]); an empty buffer is (re)started on the next update:
/// Adam moments at zero, the Grokfast EMA at that step's gradient.
#[derive(Clone, Debug, PartialEq)]
pub struct Optimizer<F> {
    /// Update rule, learning-rate schedule and filter settings.
    pub config: OptimizerConfig,
    /// Adam first moment.
    pub m: Vec<F>,
    /// Adam second moment.
    pub v: Vec<F>,
    /// Grokfast gradient EMA.
    pub ema: Vec<F>,
}

impl<F: Real> Optimizer<F> {
    /// A fresh optimizer (no state yet) for `config`.
    pub fn new(config: &OptimizerConfig) -> Optimizer<F> {
        Optimizer {
            config: config.clone(),
            m: Vec::new(),
            v: Vec::new(),
            ema: Vec::new(),
        }
    }

    /// Learning rate in effect at `step` (0-based): `lr · factor^(milestones ≤ step)`.
    pub fn lr_at(&self, step: u64) -> f64 {
        let c = &self.config;
        let passed = c.lr_milestones.iter().filter(|&&s| s <= step).count();
        c.lr * c.lr_factor.powi(passed as i32)
    }

    /// Applies update number `step` (0-based) to `params` given `grads` (which the
    /// Grokfast filter may modify in place). `step` sets the learning rate and AdamW's
    /// bias correction (`t = step + 1`), so a resumed run must pass the same count.
    pub fn update(&mut self, step: u64, params: &mut [F], grads: &mut [F]) {
        let lr = self.lr_at(step);
        let c = &self.config;
        if c.grokfast_lambda > 0.0 {
            if self.ema.is_empty() {
                // μ starts at the first gradient.
                self.ema = grads.to_vec();
            } else {
                let (alpha, one_minus) = (F::of(c.grokfast_alpha), F::of(1.0 - c.grokfast_alpha));
                for (mu, &g) in self.ema.iter_mut().zip(grads.iter()) {
                    *mu = alpha * *mu + one_minus * g;
                }
            }
            let lambda = F::of(c.grokfast_lambda);
            for (g, &mu) in grads.iter_mut().zip(&self.ema) {
                *g += lambda * mu;
            }
        }
        match c.kind {
            OptimizerKind::Gd => {
                let lr = F::of(lr);
                for (p, &g) in params.iter_mut().zip(grads.iter()) {
                    *p -= lr * g;
                }
            }
            OptimizerKind::Adamw => {
                if self.m.is_empty() {
                    self.m = vec![F::zero(); params.len()];
                    self.v = vec![F::zero(); params.len()];
                }
                let t = (step + 1) as i32;
                let bias1 = 1.0 - c.beta1.powi(t);
                let bias2 = 1.0 - c.beta2.powi(t);
                let (b1, b2) = (F::of(c.beta1), F::of(c.beta2));
                let (nb1, nb2) = (F::of(1.0 - c.beta1), F::of(1.0 - c.beta2));
                let decay = F::of(1.0 - lr * c.weight_decay);
                let step_size = F::of(lr / bias1);
                let inv_sqrt_bias2 = F::of(1.0 / bias2.sqrt());
                let eps = F::of(c.eps);
                for (((p, &g), m), v) in params
                    .iter_mut()
                    .zip(grads.iter())
                    .zip(&mut self.m)
                    .zip(&mut self.v)
                {
                    *p *= decay;
                    *m = b1 * *m + nb1 * g;
                    *v = b2 * *v + nb2 * g * g;
                    *p -= step_size * *m / ((*v).sqrt() * inv_sqrt_bias2 + eps);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_multiplies_at_milestones() {
        let o = Optimizer::<f64>::new(&OptimizerConfig {
            lr: 0.05,
            lr_milestones: vec![1000, 2000],
            lr_factor: 2.0,
            ..Default::default()
        });
        assert_eq!(o.lr_at(0), 0.05);
        assert_eq!(o.lr_at(999), 0.05);
        assert_eq!(o.lr_at(1000), 0.1);
        assert_eq!(o.lr_at(5000), 0.2);
    }

    #[test]
    fn adamw_matches_a_hand_computed_step() {
        let mut o = Optimizer::<f64>::new(&OptimizerConfig {
            kind: OptimizerKind::Adamw,
            lr: 0.1,
            lr_milestones: vec![],
            weight_decay: 0.5,
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
            ..Default::default()
        });
        let mut p = vec![1.0];
        o.update(0, &mut p, &mut [2.0]);
        // decay: 1·(1 − 0.05) = 0.95; m̂ = 2, v̂ = 4 → step 0.1·2/(2 + 1e-8)
        assert!((p[0] - (0.95 - 0.1 * 2.0 / (2.0 + 1e-8))).abs() < 1e-12);
    }
}
