//! Normalized margins of checkpoints, computed with the engine's own forward pass (any
//! [`Backend`] in f64, handed in by the caller), so the analysis and training agree on
//! what a margin is.
//!
//! `γ = min over pairs of (f_y − max_{c≠y} f_c) / Σ_i (‖u_i‖² + ‖v_i‖² + ‖w_i‖²)^{h/2}`
//! with h the network's homogeneity ([`Activation::homogeneity`]; 3 for x²), which makes
//! γ invariant under rescaling the weights (theory.md §2).

use crate::config::RunConfig;
use crate::engine::{Backend, CoreSpec, Loss};
use crate::error::{Error, Result};
use crate::model::{Activation, Weights};
use crate::task::{PairSet, Split};
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

/// γ* of the all-pairs margin of `config`'s models: [`theory::gamma_star`] (the one rule
/// the trainer uses too) with the margin taken over the whole table.
pub fn gamma_star(config: &RunConfig) -> Option<f64> {
    theory::gamma_star_for(config, true)
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

/// Margins of every model over all pairs of the config's task. γ/γ* is filled in when
/// [`gamma_star`] applies.
pub fn margins_all_pairs(
    backend: &dyn Backend<f64>,
    config: &RunConfig,
    weights: &Weights<f64>,
) -> Result<Vec<MarginReport>> {
    let task = config.build_task()?;
    margins_with(
        backend,
        weights,
        config.model.activation,
        &task.pairs,
        "all",
        gamma_star(config),
    )
}

/// One side of a model's train/test split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitPart {
    /// The pairs the model trains on.
    Train,
    /// The held-out pairs.
    Test,
}

impl SplitPart {
    /// The label of its [`MarginReport::pairs`]: `"train"` or `"test"`.
    pub fn label(self) -> &'static str {
        match self {
            SplitPart::Train => "train",
            SplitPart::Test => "test",
        }
    }
}

/// Margins of every model on one side of its own split: model k's split is
/// `Split::of(config.task.split, &task.pairs, s.train_fraction, s.seed)` with
/// `s = config.model_settings()[k]`, so a batch whose models train on different
/// fractions or seeds is measured on the pairs each model actually saw (or did not).
/// `None` for a model that trains on every pair (no test side, and its train side is
/// [`margins_all_pairs`]). No γ* here: the bound holds over all pairs only.
pub fn margins_on_split(
    backend: &dyn Backend<f64>,
    config: &RunConfig,
    weights: &Weights<f64>,
    part: SplitPart,
) -> Result<Vec<Option<MarginReport>>> {
    let settings = config.model_settings();
    if weights.batch != settings.len() {
        return Err(Error::Shape {
            what: "weights".into(),
            expected: format!("{} models (the config's `models`)", settings.len()),
            got: format!("{} models", weights.batch),
        });
    }
    let task = config.build_task()?;
    let activation = config.model.activation;
    let pairs_of = |fraction: f64, seed: u64| -> Result<PairSet> {
        let split = Split::of(config.task.split, &task.pairs, fraction, seed)?;
        Ok(task.pairs.select(match part {
            SplitPart::Train => &split.train,
            SplitPart::Test => &split.test,
        }))
    };
    let same_split = settings
        .windows(2)
        .all(|w| w[0].seed == w[1].seed && w[0].train_fraction == w[1].train_fraction);
    match settings.first() {
        None => Ok(Vec::new()),
        Some(s) if s.train_fraction >= 1.0 && same_split => Ok(vec![None; settings.len()]),
        // One split for the whole batch: one pass over it (the common case, and the
        // engine is fastest on whole batches).
        Some(s) if same_split => {
            let pairs = pairs_of(s.train_fraction, s.seed)?;
            let reports = margins_with(backend, weights, activation, &pairs, part.label(), None)?;
            Ok(reports.into_iter().map(Some).collect())
        }
        _ => settings
            .iter()
            .enumerate()
            .map(|(k, s)| {
                if s.train_fraction >= 1.0 {
                    return Ok(None);
                }
                let pairs = pairs_of(s.train_fraction, s.seed)?;
                let one = single_model(weights, k);
                let mut r = margins_with(backend, &one, activation, &pairs, part.label(), None)?;
                Ok(r.pop())
            })
            .collect(),
    }
}

/// Model `k` of a batch as a batch of one.
fn single_model(weights: &Weights<f64>, k: usize) -> Weights<f64> {
    let (u, v, w) = weights.model(k);
    Weights {
        batch: 1,
        n_in: weights.n_in,
        n_out: weights.n_out,
        width: weights.width,
        u: u.to_vec(),
        v: v.to_vec(),
        w: w.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine;
    use crate::kinds::{Device, Precision};

    /// γ is invariant under θ → cθ exactly when the norm's degree is the network's
    /// homogeneity degree: f(cθ) = c^h f(θ) and Σ (c² n_i)^{h/2} = c^h Σ n_i^{h/2}, with
    /// h = 2 for ReLU, 3 for x², k+1 for x^k. Random (untrained) weights of a
    /// 3-model batch, scaled by c below and above 1.
    #[test]
    fn normalized_margin_is_scale_invariant_for_relu_and_powers() {
        let backend = engine::open::<f64>(Device::Cpu, Precision::Fp32, 1).unwrap();
        for (activation, h) in [
            (Activation::Relu, 2.0),
            (Activation::Square, 3.0),
            (Activation::Pow(3), 4.0),
        ] {
            assert_eq!(activation.homogeneity(), h, "{activation}");
            let mut config = RunConfig::default();
            config.task.p = 11;
            config.model.width = 24;
            config.model.activation = activation;
            config.models = 3;
            let weights = config.init_params::<f64>().unwrap().effective();
            let before = margins_all_pairs(backend.as_ref(), &config, &weights).unwrap();
            for c in [0.37, 2.9] {
                let mut scaled = weights.clone();
                for x in [&mut scaled.u, &mut scaled.v, &mut scaled.w] {
                    x.iter_mut().for_each(|x| *x *= c);
                }
                let after = margins_all_pairs(backend.as_ref(), &config, &scaled).unwrap();
                for (k, (b, a)) in before.iter().zip(&after).enumerate() {
                    assert!(
                        (a.gamma / b.gamma - 1.0).abs() < 1e-12,
                        "{activation}, model {k}, c = {c}: γ {} → {}",
                        b.gamma,
                        a.gamma
                    );
                    // The unnormalized margin does move, by c^h: the invariance is the
                    // norm's doing, not a margin that ignores the scale.
                    let moved = a.min_margin / b.min_margin;
                    assert!(
                        (moved / c.powf(h) - 1.0).abs() < 1e-12,
                        "{activation}: {moved}"
                    );
                }
            }
        }
    }
}
