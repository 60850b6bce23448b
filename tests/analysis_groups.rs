//! Finite groups as tasks (issue 12): the irrep analysis and the group γ*.
//!
//! - On a cyclic group the irrep basis is the Z_p Fourier basis: the same powers, neuron
//!   by neuron, irrep ρk = frequency k.
//! - A trained x² network on S3 (width 18, theory.md §2's minimum; f64, GD with the blog
//!   recipe's L_{2,3}) approaches the group γ* and never exceeds it.
//! - The irrep analysis of that network: every neuron concentrated on one nontrivial
//!   irrep, the powers splitting each neuron's squared norm.

use clockwork::analysis::basis::Basis;
use clockwork::config::RunConfig;
use clockwork::kinds::{Dtype, OptimizerKind};
use clockwork::model::Weights;
use clockwork::task::{Group, Op};
use clockwork::theory;
use clockwork::train::Trainer;

/// A weight set with pseudo-random entries (a fixed linear congruential stream).
fn random_weights(n: usize, m: usize) -> Weights<f64> {
    let mut x = 12345u64;
    let mut next = move || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let mut fill = |len: usize| (0..len).map(|_| next()).collect::<Vec<f64>>();
    Weights {
        batch: 1,
        n_in: n,
        n_out: n,
        width: m,
        u: fill(n * m),
        v: fill(n * m),
        w: fill(n * m),
    }
}

#[test]
fn cyclic_irreps_agree_with_the_fourier_analysis() {
    for n in [5usize, 7, 11, 8] {
        let group = Group::named(&format!("C{n}")).unwrap();
        let irreps = Basis::for_group(&group).unwrap();
        let fourier = Basis::for_task(Op::Add, n).unwrap();
        assert_eq!(irreps.max_freq(), fourier.max_freq(), "C{n}");
        let w = random_weights(n, 13);
        let a = irreps.spectra(&w, 0).unwrap();
        let b = fourier.spectra(&w, 0).unwrap();
        // Irrep ρr is frequency k where its character at the generator (element 1) is
        // cos(2πk/n) times its dimension; for odd n that is k = r.
        let freq: Vec<usize> = irreps
            .irreps()
            .unwrap()
            .irreps
            .iter()
            .map(|r| {
                let c = r.character[1] / r.dim as f64;
                (c.clamp(-1.0, 1.0).acos() * n as f64 / (2.0 * std::f64::consts::PI)).round()
                    as usize
            })
            .collect();
        let mut sorted = freq.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            (0..=n / 2).collect::<Vec<_>>(),
            "C{n}: one irrep per frequency"
        );
        if n % 2 == 1 {
            assert_eq!(freq, sorted, "C{n}: ρk is frequency k");
        }
        for i in 0..13 {
            let (pa, pb) = (a.combined_power(i), b.combined_power(i));
            assert_eq!(pa.len(), pb.len());
            for (r, x) in pa.iter().enumerate() {
                let (k, y) = (freq[r], pb[freq[r]]);
                assert!(
                    (x - y).abs() < 1e-10,
                    "C{n} neuron {i}: ρ{r} power {x} vs DFT power at k = {k} {y}"
                );
            }
        }
        let report = irreps.report();
        assert_eq!(report.name, format!("irreps of C{n}"));
        assert_eq!(report.unit, "irrep");
    }
}

#[test]
fn trained_s3_network_approaches_the_group_gamma_star() {
    let mut config = RunConfig::default();
    config.task.group = Some("S3".into());
    let name = config.group_name().unwrap().unwrap();
    config.model.width = theory::gamma_star_group_width(&name).unwrap();
    assert_eq!(config.model.width, 18);
    config.dtype = Dtype::F64;
    config.optimizer.kind = OptimizerKind::Gd;
    config.validate().unwrap();
    let gamma_star = theory::gamma_star_for(&config, true).unwrap();
    assert_eq!(format!("{gamma_star:.4e}"), "2.3605e-2");

    let mut trainer = Trainer::<f64>::from_config(&config).unwrap();
    assert_eq!(trainer.gamma_star(), [Some(gamma_star)]);
    let (steps, every) = (40_000, 500);
    let mut best: f64 = f64::NEG_INFINITY;
    let mut last = 0.0;
    for chunk in 0..steps / every {
        for _ in 0..every {
            trainer.step().unwrap();
        }
        let eval = trainer.evaluate().unwrap();
        let ratio = eval.margin[0] / gamma_star;
        assert!(
            ratio <= 1.0 + 1e-9,
            "step {}: γ/γ* = {ratio} exceeds the maximum",
            (chunk + 1) * every
        );
        best = best.max(ratio);
        last = ratio;
    }
    eprintln!("S3, x², width 18, {steps} steps: γ/γ* = {last:.4} (best {best:.4})");
    assert!(last >= 0.9, "γ/γ* = {last} after {steps} steps");

    // Its neurons live in nontrivial irreps, one each.
    let w = trainer.weights().unwrap().clone();
    let basis = Basis::for_group(&Group::named("S3").unwrap()).unwrap();
    let spectra = basis.spectra(&w, 0).unwrap();
    for i in 0..w.width {
        let p = spectra.combined_power(i);
        let total: f64 = p.iter().sum();
        assert!((total - spectra.sq_norm(i)).abs() <= 1e-9 * total.max(1.0));
        let top = p[1..].iter().cloned().fold(0.0, f64::max);
        assert!(top > 0.9 * total, "neuron {i}: irrep powers {p:?}");
    }
}
