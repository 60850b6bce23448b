//! Gromov's analytic solution of addition mod p (A. Gromov, "Grokking modular
//! arithmetic", 2023; theory.md §3): N x² neurons with random phases whose logits
//! approximate a delta at `c = a + b`, beside the exact max-margin construction of
//! [`super::construct`].
//!
//! Neuron k has a frequency σ(k), σ a random permutation of 1..=N (frequencies above
//! p/2 alias to p − σ(k), a conjugate phase: a neuron at frequency p is a constant), and
//! two phases φ1_k, φ2_k uniform in [−π, π):
//!
//! ```text
//! u_k[a] = cos(2πσ(k)a/p + φ1_k)    v_k[b] = cos(2πσ(k)b/p + φ2_k)
//! w_k[c] = cos(2πσ(k)c/p + φ1_k + φ2_k) / (D·N),   D = 2p
//! ```
//!
//! Squaring `u_k[a] + v_k[b]` gives the cross term `cos(2πσ(k)(a+b)/p + φ1 + φ2)`, which
//! `w_k` turns into `½cos(2πσ(k)(a+b−c)/p)`: a peak at `c = a + b` summed over the
//! neurons. Every other term carries a random phase and only averages out as N grows,
//! so a finite N misclassifies some pairs; this is what his accuracies measure (p = 97:
//! 88.1 % at N = 48, 99.47 % at N = 97, 100 % for N ≥ 200). His network carries the
//! output factor 1/(D·N) explicitly; this engine's has none, so it is folded into W
//! (it scales every logit alike: the accuracy does not depend on it, the MSE does).
//! D is taken as his input dimension 2p (the two one-hot vectors side by side).

use super::construct;
use crate::config::{RunConfig, TaskConfig};
use crate::engine::Backend;
use crate::error::{Error, Result};
use crate::kinds::{Dtype, Loss, RegularizerKind};
use crate::model::{Activation, Weights};
use crate::task::Op;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::f64::consts::PI;
use std::path::Path;

/// Which draws of the construction: modulus, width and the seeded random phases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct GromovSpec {
    /// The modulus p (≥ 3).
    pub p: usize,
    /// N, the number of neurons.
    pub width: usize,
    /// Independent draws of the permutation and phases (one model each).
    pub draws: usize,
    /// Seed of the draws; draw d uses stream d of ChaCha8 seeded with it.
    pub seed: u64,
}

/// Most draws one call makes (each is a full model; 10 is the comparison's count).
pub const MAX_DRAWS: usize = 10_000;

/// Most f64 weights (u, v, w over all draws) one call builds: 2 GiB.
pub const MAX_WEIGHTS: usize = 1 << 28;

impl GromovSpec {
    /// Checks the numbers (p ≥ 3 within the task limit, N ≥ 1, 1 ≤ draws ≤ MAX_DRAWS,
    /// at most [`MAX_WEIGHTS`] weights), naming the bad one as its `analyze construct`
    /// flag.
    pub fn validate(&self) -> Result<()> {
        if self.p < 3 || self.p > crate::task::MAX_P {
            return Err(Error::config(
                "--p",
                self.p,
                format!(
                    "Gromov's construction needs a modulus in 3..={}",
                    crate::task::MAX_P
                ),
            ));
        }
        if self.width == 0 {
            return Err(Error::config("--width", 0, "need at least one neuron"));
        }
        if self.draws == 0 || self.draws > MAX_DRAWS {
            return Err(Error::config(
                "--draws",
                self.draws,
                format!("must be in 1..={MAX_DRAWS}"),
            ));
        }
        let numbers = self
            .width
            .checked_mul(3 * self.p)
            .and_then(|n| n.checked_mul(self.draws));
        if numbers.is_none_or(|n| n > MAX_WEIGHTS) {
            return Err(Error::config(
                "--width",
                self.width,
                format!(
                    "{} draws of 3·{}·{} weights exceed the {MAX_WEIGHTS} numbers (2 GiB) this \
                     construction holds in memory; use fewer --draws or a smaller --width",
                    self.draws, self.p, self.width
                ),
            ));
        }
        Ok(())
    }

    /// The run config the draws are written with: addition mod p, x², untied, width N,
    /// one model per draw, MSE (his loss), no regularizer, f64, all pairs, no steps.
    pub fn config(&self) -> Result<RunConfig> {
        self.validate()?;
        let mut config = RunConfig {
            dtype: Dtype::F64,
            seed: self.seed,
            models: self.draws,
            task: TaskConfig {
                op: Op::Add,
                p: self.p,
                train_fraction: 1.0,
                ..TaskConfig::default()
            },
            ..RunConfig::default()
        };
        config.model.width = self.width;
        config.model.activation = Activation::Square;
        config.model.tied = false;
        config.model.embed_dim = 0;
        config.train.loss = Loss::Mse;
        config.train.regularizer = RegularizerKind::None;
        config.train.reg_strength = 0.0;
        config.train.steps = 0;
        config.validate()?;
        Ok(config)
    }

    /// The weights of every draw, draw d as model d.
    pub fn weights(&self) -> Result<Weights<f64>> {
        self.validate()?;
        let (p, m) = (self.p, self.width);
        let mut weights = Weights {
            batch: self.draws,
            n_in: p,
            n_out: p,
            width: m,
            u: vec![0.0; self.draws * p * m],
            v: vec![0.0; self.draws * p * m],
            w: vec![0.0; self.draws * p * m],
        };
        let out_scale = 1.0 / (2.0 * p as f64 * m as f64);
        for d in 0..self.draws {
            let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
            rng.set_stream(d as u64);
            let mut freqs: Vec<usize> = (1..=m).collect();
            freqs.shuffle(&mut rng);
            let (u, v, w) = weights.model_mut(d);
            for (k, &f) in freqs.iter().enumerate() {
                let phi1 = rng.gen_range(-PI..PI);
                let phi2 = rng.gen_range(-PI..PI);
                for a in 0..p {
                    // Reduce σ(k)·a mod p first so the angle stays small and exact.
                    let t = 2.0 * PI * ((f * a) % p) as f64 / p as f64;
                    u[a * m + k] = (t + phi1).cos();
                    v[a * m + k] = (t + phi2).cos();
                    w[a * m + k] = (t + phi1 + phi2).cos() * out_scale;
                }
            }
        }
        Ok(weights)
    }
}

/// What the draws score over all p² pairs, one entry per draw.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GromovDraws {
    /// The construction measured.
    pub spec: GromovSpec,
    /// Accuracy of each draw (argmax of the logits = a + b mod p).
    pub accuracy: Vec<f64>,
    /// MSE against one-hot targets of each draw, at his output scale 1/(2p·N).
    pub mse: Vec<f64>,
    /// Normalized margin γ (x², L_{2,3} norm) of each draw as constructed; negative when a
    /// pair is wrong. His W is ~1/(2pN) of U and V, so this unbalanced γ is far below
    /// what the same logits reach with balanced layers (rescaling u, v by α and w by
    /// α⁻² keeps f): do not read it against γ*.
    pub margin: Vec<f64>,
}

impl GromovDraws {
    /// Draws the construction and evaluates every draw on every pair with `backend`.
    pub fn measure(backend: &dyn Backend<f64>, spec: GromovSpec) -> Result<GromovDraws> {
        let config = spec.config()?;
        let weights = spec.weights()?;
        Self::of(backend, &config, &weights)
    }

    fn of(
        backend: &dyn Backend<f64>,
        config: &RunConfig,
        weights: &Weights<f64>,
    ) -> Result<GromovDraws> {
        let spec = GromovSpec {
            p: config.task.p,
            width: config.model.width,
            draws: config.models,
            seed: config.seed,
        };
        let stats = construct::evaluate_all_pairs(backend, config, weights)?;
        Ok(GromovDraws {
            spec,
            accuracy: stats.iter().map(|s| s.accuracy).collect(),
            mse: stats.iter().map(|s| s.loss).collect(),
            margin: stats.iter().map(|s| s.gamma).collect(),
        })
    }

    /// Mean accuracy over the draws.
    pub fn mean(&self) -> f64 {
        self.accuracy.iter().sum::<f64>() / self.accuracy.len() as f64
    }

    /// Lowest and highest accuracy over the draws.
    pub fn range(&self) -> (f64, f64) {
        let lo = self.accuracy.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = self
            .accuracy
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        (lo, hi)
    }

    /// The lines `analyze construct --kind gromov` prints.
    pub fn text(&self) -> String {
        let s = &self.spec;
        let (lo, hi) = self.range();
        let pct = |x: f64| format!("{:.2}%", 100.0 * x);
        let per_draw: Vec<String> = self.accuracy.iter().map(|&a| pct(a)).collect();
        let perfect = self.accuracy.iter().filter(|&&a| a == 1.0).count();
        format!(
            "Gromov's analytic solution of addition mod {p} (x², width N = {n}, output scale \
             1/(2p·N)), {d} draws of the random phases (seed {seed})\n  \
             accuracy over all {pairs} pairs: mean {mean}, range {lo} .. {hi}; {perfect} of {d} \
             draws at 100%\n  per draw: {list}\n  MSE against one-hot at this output scale: mean \
             {mse:.4e} (the logits are O(1/p); the accuracy does not depend on the scale)\n",
            p = s.p,
            n = s.width,
            d = s.draws,
            seed = s.seed,
            pairs = s.p * s.p,
            mean = pct(self.mean()),
            lo = pct(lo),
            hi = pct(hi),
            list = per_draw.join(" "),
            mse = self.mse.iter().sum::<f64>() / self.mse.len() as f64,
        )
    }

    /// The draws as one JSON object (`analyze construct --kind gromov --json`).
    pub fn json(&self) -> Result<String> {
        let (lo, hi) = self.range();
        let mut v = serde_json::to_value(self).map_err(|e| Error::Backend(e.to_string()))?;
        v["mean_accuracy"] = serde_json::json!(self.mean());
        v["min_accuracy"] = serde_json::json!(lo);
        v["max_accuracy"] = serde_json::json!(hi);
        serde_json::to_string_pretty(&v)
            .map(|t| t + "\n")
            .map_err(|e| Error::Backend(e.to_string()))
    }
}

/// Writes the draws of `spec` as a run directory at `dir` (one model per draw, step 0,
/// like [`construct::write_run`]) and returns what they score.
pub fn write_run(backend: &dyn Backend<f64>, spec: GromovSpec, dir: &Path) -> Result<GromovDraws> {
    let config = spec.config()?;
    let weights = spec.weights()?;
    construct::write_constructed_run(backend, &config, &weights, dir)?;
    GromovDraws::of(backend, &config, &weights)
}

/// Evaluates a single-draw batch's logits directly (no engine), for the tests' f64
/// cross-check of the engine's accuracy.
#[cfg(test)]
fn accuracy_by_hand(w: &Weights<f64>, k: usize) -> f64 {
    let (u, v, wo) = w.model(k);
    let (p, m) = (w.n_in, w.width);
    let mut correct = 0;
    for a in 0..p {
        for b in 0..p {
            let h: Vec<f64> = (0..m)
                .map(|i| (u[a * m + i] + v[b * m + i]).powi(2))
                .collect();
            let logit = |c: usize| -> f64 { (0..m).map(|i| wo[c * m + i] * h[i]).sum() };
            let y = (a + b) % p;
            let fy = logit(y);
            if (0..p).filter(|&c| c != y).all(|c| logit(c) < fy) {
                correct += 1;
            }
        }
    }
    correct as f64 / (p * p) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine;
    use crate::kinds::{Device, Precision};

    fn spec(p: usize, width: usize, draws: usize) -> GromovSpec {
        GromovSpec {
            p,
            width,
            draws,
            seed: 0,
        }
    }

    fn cpu() -> Box<dyn Backend<f64>> {
        engine::open::<f64>(Device::Cpu, Precision::Fp32, 0).unwrap()
    }

    /// Gromov's claim at p = 97: 100 % for N ≥ 200, for every draw of the phases.
    #[test]
    fn width_200_is_exact_on_every_draw_at_p_97() {
        let d = GromovDraws::measure(cpu().as_ref(), spec(97, 200, 10)).unwrap();
        assert_eq!(d.accuracy, vec![1.0; 10], "{}", d.text());
        assert!(d.margin.iter().all(|&g| g > 0.0));
    }

    /// The engine's accuracy of a draw is the one a plain f64 loop over the logits gives,
    /// and narrow widths do miss pairs (so the test above can fail).
    #[test]
    fn engine_accuracy_matches_a_direct_loop_and_narrow_widths_miss() {
        let s = spec(31, 12, 3);
        let w = s.weights().unwrap();
        let d = GromovDraws::measure(cpu().as_ref(), s).unwrap();
        for k in 0..3 {
            assert_eq!(d.accuracy[k], accuracy_by_hand(&w, k), "draw {k}");
            assert!(d.accuracy[k] < 1.0, "draw {k}: {}", d.accuracy[k]);
        }
    }

    /// The structure: each neuron one frequency with θu + θv = θw, u and v unit-amplitude
    /// cosines, w scaled by 1/(2p·N); draws differ, and equal seeds give equal draws.
    #[test]
    fn draws_are_seeded_clocks_with_his_output_scale() {
        let s = spec(13, 9, 2);
        let w = s.weights().unwrap();
        assert_eq!(w, s.weights().unwrap());
        let (u0, _, _) = w.model(0);
        let (u1, _, _) = w.model(1);
        assert_ne!(u0, u1);
        let (u, v, wo) = w.model(1);
        let (p, m) = (13, 9);
        for i in 0..m {
            // Σ_a cos²(2πfa/p + φ) = p/2 for f ≢ 0 mod p (every f in 1..=9 < 13).
            let sq = |x: &[f64], scale: f64| -> f64 {
                (0..p).map(|a| (x[a * m + i] / scale).powi(2)).sum()
            };
            assert!((sq(u, 1.0) - 6.5).abs() < 1e-12);
            assert!((sq(v, 1.0) - 6.5).abs() < 1e-12);
            assert!((sq(wo, 1.0 / (2.0 * 13.0 * 9.0)) - 6.5).abs() < 1e-12);
        }
        for bad in [
            spec(2, 9, 1),
            spec(13, 0, 1),
            spec(13, 9, 0),
            spec(13, 1 << 30, 1),
            spec(13, usize::MAX, 1),
        ] {
            assert!(bad.weights().is_err(), "{bad:?}");
        }
    }
}
