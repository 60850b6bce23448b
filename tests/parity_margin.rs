//! Sparse parity with σ = x^k and the L_{2,k+1} norm (theory.md §2): the construction of
//! `theory::gamma_star_sparse_parity`'s docs attains γ* exactly on the engine's margin,
//! and a trained x⁴ network on the population task approaches γ* = 0.60716 from below,
//! never exceeding it at any evaluation.

use clockwork::engine::cpu::{CpuBackend, CpuOptions};
use clockwork::engine::{Backend, CoreSpec, Loss};
use clockwork::model::{Activation, Weights};
use clockwork::prelude::*;
use clockwork::task::{BitEncoding, Parity};
use clockwork::theory::{gamma_star_sparse_parity, normalized_margin};

/// The max-margin construction: 2^k neurons, u = c·s on the parity bits, w = (−a/2, a/2)
/// with a = b·Π s, at the optimal c, b (up to scale).
fn construction(n: usize, k: usize) -> Weights<f64> {
    let m = 1 << k;
    let kf = k as f64;
    let c = (1.0 / (kf + 1.0)).sqrt(); // k c² = k/(k+1)
    let b = (2.0 / (kf + 1.0)).sqrt(); // b²/2 = 1/(k+1)
    let mut w = Weights {
        batch: 1,
        n_in: n,
        n_out: 2,
        width: m,
        u: vec![0.0; n * m],
        v: vec![0.0; n * m],
        w: vec![0.0; 2 * m],
    };
    for i in 0..m {
        let s: Vec<f64> = (0..k)
            .map(|j| if i >> j & 1 == 1 { -1.0 } else { 1.0 })
            .collect();
        for (j, sj) in s.iter().enumerate() {
            w.u[j * m + i] = c * sj;
        }
        // Label 1 = odd parity = product −1: logit 1 must win where Π x < 0.
        let a = -b * s.iter().product::<f64>();
        w.w[m + i] = a / 2.0;
        w.w[i] = -a / 2.0;
    }
    w
}

#[test]
fn the_construction_attains_gamma_star() {
    for k in [2usize, 3, 4] {
        let n = k + 2;
        let pairs = Parity {
            n,
            k,
            encoding: BitEncoding::PlusMinusOne,
        }
        .population()
        .unwrap()
        .pairs;
        let act = if k == 2 {
            Activation::Square
        } else {
            Activation::Pow(k as u32)
        };
        let weights = construction(n, k);
        let backend = CpuBackend::new(CpuOptions::default()).unwrap();
        let core = CoreSpec {
            activation: act,
            loss: Loss::CrossEntropy,
        };
        let stats = backend.evaluate(core, &weights, &pairs).unwrap();
        assert_eq!(stats[0].correct, pairs.len(), "k = {k}: every string right");
        let gamma = normalized_margin(stats[0].min_margin, &weights, 0, act);
        let ratio = gamma / gamma_star_sparse_parity(k as u32);
        assert!((ratio - 1.0).abs() < 1e-12, "k = {k}: γ/γ* = {ratio}");
    }
}

#[test]
fn a_trained_x4_network_approaches_gamma_star_from_below() {
    let mut config = RunConfig::from_toml(
        "dtype = \"f64\"\nmodels = 3\n[task]\nbits = 6\nparity_k = 4\n\
         [model]\nwidth = 16\nactivation = \"pow4\"\ninit_scale = 0.3\n\
         [train]\nregularizer = \"l2k\"\nreg_strength = 1e-4\n\
         [optimizer]\nlr = 0.05\nlr_milestones = [500, 1000, 1500, 2000, 3000, 4000, 6000, 8000]\n",
    )
    .unwrap();
    config.train.steps = 40_000;
    let mut trainer = Trainer::<f64>::from_config(&config).unwrap();
    let star = gamma_star_sparse_parity(4);
    assert!(trainer.gamma_star().iter().all(|g| *g == Some(star)));
    let mut last = Vec::new();
    for _ in 0..20 {
        for _ in 0..2000 {
            trainer.step().unwrap();
        }
        let e = trainer.evaluate().unwrap();
        for (k, g) in e.margin.iter().enumerate() {
            assert!(
                *g <= star * (1.0 + 1e-9),
                "model {k} at step {}: γ = {g} above γ* = {star}",
                e.step
            );
        }
        last = e.margin;
    }
    for (k, g) in last.iter().enumerate() {
        assert!(
            g / star > 0.999,
            "model {k}: γ/γ* = {} after 40k steps",
            g / star
        );
    }
}
