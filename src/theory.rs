//! Closed-form results from the margin theory (shared/theory.md §2) the engine checks
//! itself against.

use crate::model::{Activation, Weights};
use crate::real::Real;

/// Maximum normalized margin of the x² network on addition mod p (width ≥ 4(p−1)),
/// with the L_{2,3} normalization: `√(2/27) / (√p · (p − 1))`.
pub fn gamma_star_modular_addition(p: usize) -> f64 {
    let p = p as f64;
    (2.0f64 / 27.0).sqrt() / (p.sqrt() * (p - 1.0))
}

/// The normalizer of the margin for an `h`-homogeneous network:
/// `Σ_i (‖u_i‖² + ‖v_i‖² + ‖w_i‖²)^{h/2}` (h = 3 for x²: the L_{2,3} norm).
pub fn margin_norm<F: Real>(weights: &Weights<F>, k: usize, activation: Activation) -> f64 {
    let half_h = activation.homogeneity() / 2.0;
    weights
        .neuron_sq_norms(k)
        .iter()
        .map(|n| n.powf(half_h))
        .sum()
}

/// Normalized margin: the smallest unnormalized margin over the pairs divided by
/// [`margin_norm`]. Scale-invariant.
pub fn normalized_margin<F: Real>(
    min_margin: f64,
    weights: &Weights<F>,
    k: usize,
    activation: Activation,
) -> f64 {
    min_margin / margin_norm(weights, k, activation)
}
