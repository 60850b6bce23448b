//! Normalized margins of checkpoints, computed with the engine's own forward pass (the
//! CPU backend in f64), so the analysis and training agree on what a margin is.
//!
//! `γ = min over pairs of (f_y − max_{c≠y} f_c) / Σ_i (‖u_i‖² + ‖v_i‖² + ‖w_i‖²)^{h/2}`
//! with h the network's homogeneity ([`Activation::homogeneity`]; 3 for x²), which makes
//! γ invariant under rescaling the weights (theory.md §2).

use crate::config::RunConfig;
use crate::engine::cpu::{CpuBackend, CpuOptions};
use crate::engine::{Backend, CoreSpec, Loss};
use crate::error::Result;
use crate::model::{Activation, Weights};
use crate::task::{Op, PairSet};
use crate::theory;
use serde::{Deserialize, Serialize};

/// Margin of one model on one pair set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MarginReport {
    /// Which pairs: "all" or "train".
    pub pairs: String,
    /// Smallest unnormalized margin f_y − max_{c≠y} f_c.
    pub min_margin: f64,
    /// Σ_i (‖u_i‖² + ‖v_i‖² + ‖w_i‖²)^{h/2}.
    pub norm: f64,
    /// Normalized margin γ = min_margin / norm.
    pub gamma: f64,
    /// γ* where the theory gives it (see [`gamma_star`]).
    pub gamma_star: Option<f64>,
    /// γ / γ*.
    pub ratio: Option<f64>,
    /// Accuracy on the same pairs.
    pub accuracy: f64,
    /// Mean cross-entropy on the same pairs.
    pub loss: f64,
}

/// γ* = √(2/27)/(√p·(p−1)) where it is proven: x² activation, addition mod p, n_out = p,
/// untied and unfactored embeddings, and the margin taken over all p² pairs (on a subset
/// a larger margin is possible, so the bound does not apply to train-only margins).
pub fn gamma_star(config: &RunConfig) -> Option<f64> {
    let m = &config.model;
    (m.activation == Activation::Square && config.task.op == Op::Add && !m.tied && m.embed_dim == 0)
        .then(|| theory::gamma_star_modular_addition(config.task.p))
}

/// Computes margins of every model of `weights` on `pairs` with a given backend.
pub fn margins_with(
    backend: &dyn Backend<f64>,
    weights: &Weights<f64>,
    activation: Activation,
    pairs: &PairSet,
    label: &str,
    gamma_star: Option<f64>,
) -> Result<Vec<MarginReport>> {
    // The loss only changes the reported loss, never the logits or margins.
    let core = CoreSpec {
        activation,
        loss: Loss::CrossEntropy,
    };
    let stats = backend.evaluate(core, weights, pairs)?;
    Ok(stats
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let norm = theory::margin_norm(weights, k, activation);
            let gamma = s.min_margin / norm;
            MarginReport {
                pairs: label.to_string(),
                min_margin: s.min_margin,
                norm,
                gamma,
                gamma_star,
                ratio: gamma_star.map(|g| gamma / g),
                accuracy: s.accuracy(),
                loss: s.loss,
            }
        })
        .collect())
}

/// Margins of every model over all pairs of the config's task (CPU backend, f64).
/// γ/γ* is filled in when [`gamma_star`] applies.
pub fn margins_all_pairs(config: &RunConfig, weights: &Weights<f64>) -> Result<Vec<MarginReport>> {
    let backend = CpuBackend::new(CpuOptions::default())?;
    let task = config.build_task()?;
    margins_with(
        &backend,
        weights,
        config.model.activation,
        &task.pairs,
        "all",
        gamma_star(config),
    )
}
