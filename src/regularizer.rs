//! Weight-norm regularizers on the effective U, V, W (per neuron).

use crate::engine::stepper::Recipe;
use crate::kinds::RegularizerKind;
use crate::model::{models_per_task, neuron_sq_norms, ModelParts, Weights};
use crate::real::Real;
use rayon::prelude::*;

/// A regularizer with one strength λ per model.
///
/// It acts on the effective weights, so for a factored model it penalizes the products,
/// not the factors, and for a tied model ‖u_i‖² counts twice (once as `v_i`).
#[derive(Clone, Debug, PartialEq)]
pub struct Regularizer {
    /// Which penalty; [`RegularizerKind::None`] makes [`Regularizer::apply`] a no-op.
    pub kind: RegularizerKind,
    /// The exponent q of [`RegularizerKind::L2k`] (≥ 1; unused by the other kinds).
    pub q: f64,
    /// λ (≥ 0) of each model of the batch; 0 makes it a no-op for that model.
    pub strength: Vec<f64>,
}

/// Coefficient of `x` in the L_{2,q} gradient of a neuron with squared norm `n`:
/// `∂/∂x λ n^{q/2} = q·λ·n^{q/2−1}·x`. At `n = 0` every entry is 0 and the gradient is 0
/// for q > 1 (and 0 is a subgradient at q = 1), so the coefficient is 0 there instead of
/// the `0·∞` that `n^{q/2−1}` would give for q < 2.
pub(crate) fn l2k_coefficient(strength: f64, q: f64, n: f64) -> f64 {
    if n > 0.0 {
        q * strength * n.powf(0.5 * q - 1.0)
    } else {
        0.0
    }
}

impl Regularizer {
    /// The regularizer a recipe trains with: its kind and q, each model's λ.
    pub fn for_recipe(recipe: &Recipe) -> Regularizer {
        Regularizer {
            kind: recipe.regularizer,
            q: recipe.reg_q,
            strength: recipe.models.iter().map(|m| m.reg_strength).collect(),
        }
    }

    /// λ of model `k` (0, a no-op, for a model past the end of `strength`).
    fn strength_of(&self, k: usize) -> f64 {
        self.strength.get(k).copied().unwrap_or(0.0)
    }

    /// The penalty of one model from its neurons' squared norms `n_i`.
    fn penalty(&self, strength: f64, norms: &[f64]) -> f64 {
        match self.kind {
            _ if strength == 0.0 => 0.0,
            RegularizerKind::None => 0.0,
            RegularizerKind::L2 => 0.5 * strength * norms.iter().sum::<f64>(),
            RegularizerKind::L23 => strength * norms.iter().map(|n| n * n.sqrt()).sum::<f64>(),
            RegularizerKind::L2k => {
                strength * norms.iter().map(|n| n.powf(0.5 * self.q)).sum::<f64>()
            }
            RegularizerKind::L1 => unreachable!("L1 is per entry: l1_value"),
        }
    }

    /// L1's value of one model: `λ Σ |θ|` over its U, V and W.
    fn l1_value<F: Real>(strength: f64, parts: ModelParts<'_, F>) -> f64 {
        let (u, v, w) = parts;
        strength
            * [u, v, w]
                .iter()
                .flat_map(|x| x.iter())
                .map(|x| x.f64().abs())
                .sum::<f64>()
    }

    /// The value of one model (`parts`, width `m`) with λ = `strength`.
    fn value_of<F: Real>(&self, strength: f64, parts: ModelParts<'_, F>, m: usize) -> f64 {
        match self.kind {
            _ if strength == 0.0 => 0.0,
            RegularizerKind::L1 => Regularizer::l1_value(strength, parts),
            _ => self.penalty(strength, &neuron_sq_norms(parts, m)),
        }
    }

    /// The regularizer's value per model, without a gradient (for evaluations).
    pub fn value<F: Real>(&self, weights: &Weights<F>) -> Vec<f64> {
        (0..weights.batch)
            .map(|k| self.value_of(self.strength_of(k), weights.model(k), weights.width))
            .collect()
    }

    /// Adds the regularizer's gradient to `grads` (engine layout, same shape as
    /// `weights`) and returns its value per model, model `k` with `strength[k]`.
    ///
    /// With `n_i = ‖u_i‖² + ‖v_i‖² + ‖w_i‖²`: L2 is `(λ/2) Σ n_i` (gradient `λ·x`),
    /// L_{2,3} is `λ Σ n_i^{3/2}` (gradient `3λ √n_i · x` on every entry of neuron i),
    /// L_{2,q} is `λ Σ n_i^{q/2}` (gradient `q·λ·n_i^{q/2−1} · x`).
    pub fn apply<F: Real>(&self, weights: &Weights<F>, grads: &mut Weights<F>) -> Vec<f64> {
        let m = weights.width;
        let embed = weights.n_in * m;
        let outs = weights.n_out * m;
        let mut penalties = vec![0.0; weights.batch];
        // Models are independent: a large batch regularizes them in parallel, each by one
        // thread exactly as alone.
        penalties
            .par_iter_mut()
            .zip(grads.u.par_chunks_mut(embed))
            .zip(grads.v.par_chunks_mut(embed))
            .zip(grads.w.par_chunks_mut(outs))
            .enumerate()
            .with_min_len(models_per_task(2 * embed + outs))
            .for_each(|(k, (((penalty, gu), gv), gw))| {
                *penalty = self.apply_model(k, weights.model(k), m, (gu, gv, gw));
            });
        penalties
    }

    /// [`Regularizer::apply`] for model `k` alone: adds the gradient of its weights
    /// `parts` (width `m`) to `grads` and returns its value. The fused host step calls
    /// this per model while the model's gradient is in cache; the result is the same bits
    /// as the batch loop's.
    pub(crate) fn apply_model<F: Real>(
        &self,
        k: usize,
        parts: ModelParts<'_, F>,
        m: usize,
        (gu, gv, gw): (&mut [F], &mut [F], &mut [F]),
    ) -> f64 {
        let strength = self.strength_of(k);
        if self.kind == RegularizerKind::None || strength == 0.0 {
            return 0.0;
        }
        let (u, v, w) = parts;
        if self.kind == RegularizerKind::L1 {
            // Subgradient λ·sign(θ), 0 at θ = 0 (so zero weights stay put).
            for (x, g) in [(u, gu), (v, gv), (w, gw)] {
                for (g, &x) in g.iter_mut().zip(x) {
                    if x > F::zero() {
                        *g += F::of(strength);
                    } else if x < F::zero() {
                        *g -= F::of(strength);
                    }
                }
            }
            return Regularizer::l1_value(strength, parts);
        }
        let norms = neuron_sq_norms(parts, m);
        let coef: Vec<F> = match self.kind {
            RegularizerKind::L2 => vec![F::of(strength); m],
            RegularizerKind::L23 => norms
                .iter()
                .map(|n| F::of(3.0 * strength * n.sqrt()))
                .collect(),
            RegularizerKind::L2k => norms
                .iter()
                .map(|&n| F::of(l2k_coefficient(strength, self.q, n)))
                .collect(),
            RegularizerKind::None | RegularizerKind::L1 => unreachable!("handled above"),
        };
        for (x, g) in [(u, gu), (v, gv), (w, gw)] {
            for (x_row, g_row) in x.chunks_exact(m).zip(g.chunks_exact_mut(m)) {
                for ((g, &x), &c) in g_row.iter_mut().zip(x_row).zip(&coef) {
                    *g += c * x;
                }
            }
        }
        self.penalty(strength, &norms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two models, p = 3 inputs, 4 outputs, width 5, entries from a fixed LCG in
    /// [−1, 1), one neuron of model 1 all zero (the n = 0 case).
    fn weights() -> Weights<f64> {
        let (batch, n_in, n_out, width) = (2, 3, 4, 5);
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        };
        let mut w = Weights {
            batch,
            n_in,
            n_out,
            width,
            u: (0..batch * n_in * width).map(|_| next()).collect(),
            v: (0..batch * n_in * width).map(|_| next()).collect(),
            w: (0..batch * n_out * width).map(|_| next()).collect(),
        };
        let (u, v, wo) = w.model_mut(1);
        for x in [u, v, wo] {
            for row in x.chunks_exact_mut(width) {
                row[2] = 0.0;
            }
        }
        w
    }

    fn zeros_like(w: &Weights<f64>) -> Weights<f64> {
        Weights {
            u: vec![0.0; w.u.len()],
            v: vec![0.0; w.v.len()],
            w: vec![0.0; w.w.len()],
            ..w.clone()
        }
    }

    fn reg(kind: RegularizerKind, q: f64) -> Regularizer {
        Regularizer {
            kind,
            q,
            strength: vec![0.3, 1.7],
        }
    }

    /// The analytic gradient of every kind against central differences of its value,
    /// in f64, entry by entry (q below, at and above 2, where n^{q/2−1} changes shape).
    #[test]
    fn gradient_matches_finite_differences() {
        let w0 = weights();
        let cases = [
            (RegularizerKind::L2, 0.0),
            (RegularizerKind::L23, 0.0),
            (RegularizerKind::L2k, 1.0),
            (RegularizerKind::L2k, 1.5),
            (RegularizerKind::L2k, 2.0),
            (RegularizerKind::L2k, 3.0),
            (RegularizerKind::L2k, 4.0),
            (RegularizerKind::L2k, 5.5),
            (RegularizerKind::L1, 0.0),
        ];
        for (kind, q) in cases {
            let r = reg(kind, q);
            let mut grads = zeros_like(&w0);
            r.apply(&w0, &mut grads);
            let h = 1e-6;
            let mut worst = 0.0f64;
            for which in 0..3 {
                let len = [w0.u.len(), w0.v.len(), w0.w.len()][which];
                for e in 0..len {
                    let at = |d: f64| {
                        let mut w = w0.clone();
                        [&mut w.u, &mut w.v, &mut w.w][which][e] += d;
                        r.value(&w).iter().sum::<f64>()
                    };
                    let x = [&w0.u, &w0.v, &w0.w][which][e];
                    let g = [&grads.u, &grads.v, &grads.w][which][e];
                    if x == 0.0 {
                        // A zeroed neuron: the kink of q = 1 has no derivative, and the
                        // defined gradient there is 0.
                        assert_eq!(g, 0.0, "{kind:?} q = {q}: zero neuron");
                        continue;
                    }
                    let fd = (at(h) - at(-h)) / (2.0 * h);
                    worst = worst.max((g - fd).abs() / fd.abs().max(1e-3));
                }
            }
            assert!(worst < 1e-6, "{kind:?} q = {q}: relative error {worst:e}");
        }
    }

    /// l2k with q = 3 is l23; with q = 2 it is l2 at twice the strength, since
    /// L2 = (λ/2) Σ n_i and L_{2,2} = λ Σ n_i. Both values and gradients.
    #[test]
    fn l2k_reduces_to_l23_and_l2() {
        let w = weights();
        let compare = |a: &Regularizer, b: &Regularizer| {
            let (mut ga, mut gb) = (zeros_like(&w), zeros_like(&w));
            let (va, vb) = (a.apply(&w, &mut ga), b.apply(&w, &mut gb));
            assert_eq!(va, a.value(&w));
            for (x, y) in va.iter().zip(&vb) {
                assert!((x / y - 1.0).abs() < 1e-13, "value {x} vs {y}");
            }
            for (x, y) in [(&ga.u, &gb.u), (&ga.v, &gb.v), (&ga.w, &gb.w)] {
                for (x, y) in x.iter().zip(y) {
                    assert!((x - y).abs() <= 1e-13 * y.abs().max(1e-300), "{x} vs {y}");
                }
            }
        };
        compare(
            &reg(RegularizerKind::L2k, 3.0),
            &reg(RegularizerKind::L23, 0.0),
        );
        let mut l2 = reg(RegularizerKind::L2, 0.0);
        l2.strength.iter_mut().for_each(|s| *s *= 2.0);
        compare(&reg(RegularizerKind::L2k, 2.0), &l2);
        // And the value at q = 2 by hand: λ Σ n_i.
        let r = reg(RegularizerKind::L2k, 2.0);
        let by_hand: f64 = 0.3 * w.neuron_sq_norms(0).iter().sum::<f64>();
        assert!((r.value(&w)[0] / by_hand - 1.0).abs() < 1e-14);
    }

    /// L1: λ Σ|θ| by hand, subgradient λ·sign(θ) and exactly 0 at θ = 0.
    #[test]
    fn l1_value_and_subgradient() {
        let w = weights();
        let r = reg(RegularizerKind::L1, 0.0);
        let mut g = zeros_like(&w);
        let values = r.apply(&w, &mut g);
        assert_eq!(values, r.value(&w));
        for (k, value) in values.iter().enumerate() {
            let (u, v, wo) = w.model(k);
            let by_hand: f64 = u.iter().chain(v).chain(wo).map(|x| x.abs()).sum();
            let lambda = r.strength[k];
            assert!((value / (lambda * by_hand) - 1.0).abs() < 1e-14);
            let (gu, gv, gw) = g.model(k);
            for (x, d) in u
                .iter()
                .chain(v)
                .chain(wo)
                .zip(gu.iter().chain(gv).chain(gw))
            {
                let want = if *x > 0.0 {
                    lambda
                } else if *x < 0.0 {
                    -lambda
                } else {
                    0.0
                };
                assert_eq!(*d, want, "entry {x}");
            }
        }
        // Model 1 has zero entries (its neuron 2), and their subgradient is 0.
        assert!(w.model(1).0.contains(&0.0));
    }
}
