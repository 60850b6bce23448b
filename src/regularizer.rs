//! Weight-norm regularizers on the effective U, V, W (per neuron).

use crate::engine::stepper::Recipe;
use crate::kinds::RegularizerKind;
use crate::model::Weights;
use crate::real::Real;

/// A regularizer with one strength λ per model.
///
/// It acts on the effective weights, so for a factored model it penalizes the products,
/// not the factors, and for a tied model ‖u_i‖² counts twice (once as `v_i`).
#[derive(Clone, Debug, PartialEq)]
pub struct Regularizer {
    /// Which penalty; [`RegularizerKind::None`] makes [`Regularizer::apply`] a no-op.
    pub kind: RegularizerKind,
    /// λ (≥ 0) of each model of the batch; 0 makes it a no-op for that model.
    pub strength: Vec<f64>,
}

impl Regularizer {
    /// The regularizer a recipe trains with: its kind, each model's λ.
    pub fn for_recipe(recipe: &Recipe) -> Regularizer {
        Regularizer {
            kind: recipe.regularizer,
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
        }
    }

    /// The regularizer's value per model, without a gradient (for evaluations).
    pub fn value<F: Real>(&self, weights: &Weights<F>) -> Vec<f64> {
        (0..weights.batch)
            .map(|k| self.penalty(self.strength_of(k), &weights.neuron_sq_norms(k)))
            .collect()
    }

    /// Adds the regularizer's gradient to `grads` (engine layout, same shape as
    /// `weights`) and returns its value per model, model `k` with `strength[k]`.
    ///
    /// With `n_i = ‖u_i‖² + ‖v_i‖² + ‖w_i‖²`: L2 is `(λ/2) Σ n_i` (gradient `λ·x`),
    /// L_{2,3} is `λ Σ n_i^{3/2}` (gradient `3λ √n_i · x` on every entry of neuron i).
    pub fn apply<F: Real>(&self, weights: &Weights<F>, grads: &mut Weights<F>) -> Vec<f64> {
        let m = weights.width;
        (0..weights.batch)
            .map(|k| {
                let strength = self.strength_of(k);
                if self.kind == RegularizerKind::None || strength == 0.0 {
                    return 0.0;
                }
                let norms = weights.neuron_sq_norms(k);
                let coef: Vec<F> = match self.kind {
                    RegularizerKind::L2 => vec![F::of(strength); m],
                    RegularizerKind::L23 => norms
                        .iter()
                        .map(|n| F::of(3.0 * strength * n.sqrt()))
                        .collect(),
                    RegularizerKind::None => unreachable!("handled above"),
                };
                let (u, v, w) = weights.model(k);
                let (gu, gv, gw) = grads.model_mut(k);
                for (x, g) in [(u, gu), (v, gv), (w, gw)] {
                    for (x_row, g_row) in x.chunks_exact(m).zip(g.chunks_exact_mut(m)) {
                        for ((g, &x), &c) in g_row.iter_mut().zip(x_row).zip(&coef) {
                            *g += c * x;
                        }
                    }
                }
                self.penalty(strength, &norms)
            })
            .collect()
    }
}
