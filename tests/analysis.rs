//! Known-answer tests of the feature analysis (issue 5): planted sinusoids (exact with
//! no noise, within stated worst-case bounds with noise), the exact max-margin
//! construction (logits against the reference engine, γ = γ*, rescaling, a random
//! network below γ*, ideal Fourier features), and the DFT against a naive O(p²) one.
//! The `analyze` command itself is tested in `cli_analyze.rs`.

use clockwork::analysis::construct;
use clockwork::analysis::fourier::{self, FourierPlan, Part};
use clockwork::analysis::margin;
use clockwork::analysis::summary;
use clockwork::engine::{reference, Backend};
use clockwork::kinds::{Device, Precision};
use clockwork::model::{Activation, ModelSpec, Params, Weights};
use clockwork::task::{Op, Task};
use clockwork::theory::gamma_star_modular_addition;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::f64::consts::PI;

/// The f64 CPU backend the analysis evaluates margins with.
fn cpu() -> Box<dyn Backend<f64>> {
    clockwork::engine::open::<f64>(Device::Cpu, Precision::Fp32, 0).unwrap()
}

/// Weights whose neuron i has u, v, w = A·cos(2πka/p + θ) (+ noise) with the given
/// per-neuron (k, θu, θv, θw, A).
fn planted(
    p: usize,
    neurons: &[(usize, f64, f64, f64, f64)],
    noise: f64,
    seed: u64,
) -> Weights<f64> {
    let m = neurons.len();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut w = Weights {
        batch: 1,
        n_in: p,
        n_out: p,
        width: m,
        u: vec![0.0; p * m],
        v: vec![0.0; p * m],
        w: vec![0.0; p * m],
    };
    for (i, &(k, tu, tv, tw, amp)) in neurons.iter().enumerate() {
        for a in 0..p {
            let t = 2.0 * PI * ((k * a) % p) as f64 / p as f64;
            let mut n = || noise * (rng.gen::<f64>() - 0.5);
            w.u[a * m + i] = amp * (t + tu).cos() + n();
            w.v[a * m + i] = amp * (t + tv).cos() + n();
            w.w[a * m + i] = amp * (t + tw).cos() + n();
        }
    }
    w
}

fn random_neurons(p: usize, m: usize, seed: u64) -> Vec<(usize, f64, f64, f64, f64)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..m)
        .map(|_| {
            (
                rng.gen_range(1..=p / 2),
                rng.gen_range(-PI..PI),
                rng.gen_range(-PI..PI),
                rng.gen_range(-PI..PI),
                rng.gen_range(0.1..3.0),
            )
        })
        .collect()
}

#[test]
fn planted_sinusoids_are_recovered() {
    let p = 31;
    let neurons = random_neurons(p, 40, 1);
    // Noise-free: frequency exact, phases and fractions to 1e-6.
    let clean = planted(p, &neurons, 0.0, 2);
    let plan = FourierPlan::new(p).unwrap();
    let s = fourier::spectra(&plan, &clean, 0).unwrap();
    let f = summary::neuron_features(&s, 0.9);
    for (i, &(k, tu, tv, tw, amp)) in neurons.iter().enumerate() {
        let g = &f[i];
        assert_eq!(
            (g.freq, g.freq_u, g.freq_v, g.freq_w),
            (k, k, k, k),
            "neuron {i}"
        );
        assert!((g.fraction - 1.0).abs() < 1e-6 && (g.min_fraction - 1.0).abs() < 1e-6);
        for (got, want) in [(g.theta_u, tu), (g.theta_v, tv), (g.theta_w, tw)] {
            assert!(
                fourier::wrap_angle(got - want).abs() < 1e-6,
                "neuron {i}: {got} vs {want}"
            );
        }
        let want_res = fourier::wrap_angle(tu + tv - tw);
        let r = g.residual.unwrap();
        assert!(fourier::wrap_angle(r - want_res).abs() < 1e-6);
        assert!(r > -PI && r <= PI);
        // Amplitude from the coefficient: A = 2|X_k|/p.
        let a = 2.0 * s.coef(i, Part::U)[k].norm() / p as f64;
        assert!((a - amp).abs() < 1e-9);
        assert!(g.sinusoidal);
    }
    // With noise: every entry gets uniform noise in [−ε, ε]. Worst-case bounds (no
    // statistics, they hold for any draw): the noise moves each DFT coefficient by at
    // most |δX_k| ≤ p·ε, while the planted one has |X_k| = A·p/2. So
    // - the frequency is exact as long as A > 4ε (|X_k| − pε > pε ≥ any other |X_j|),
    // - the phase is off by at most asin(2ε/A), the residual by three times that,
    // - the amplitude 2|X_k|/p is off by at most 2ε,
    // - the power fraction is at least (A − 2ε)² / (A + √2·ε)² (power at k at least
    //   p(A − 2ε)²/2, total power at most (‖signal‖ + ‖noise‖)² ≤ p(A/√2 + ε)²).
    // Amplitudes are ≥ 0.1, so ε = 0.02 keeps A > 4ε for every neuron.
    let eps = 0.02;
    let noisy = planted(p, &neurons, 2.0 * eps, 3);
    let s = fourier::spectra(&plan, &noisy, 0).unwrap();
    let f = summary::neuron_features(&s, 0.9);
    let mut worst_phase = 0.0f64;
    for (i, &(k, tu, tv, tw, amp)) in neurons.iter().enumerate() {
        let g = &f[i];
        assert_eq!(
            (g.freq, g.freq_u, g.freq_v, g.freq_w),
            (k, k, k, k),
            "noisy neuron {i}"
        );
        let phase_tol = (2.0 * eps / amp).asin();
        for (got, want) in [(g.theta_u, tu), (g.theta_v, tv), (g.theta_w, tw)] {
            let err = fourier::wrap_angle(got - want).abs();
            assert!(err <= phase_tol, "noisy neuron {i}: {err} > {phase_tol}");
            worst_phase = worst_phase.max(err);
        }
        let want_res = fourier::wrap_angle(tu + tv - tw);
        assert!(fourier::wrap_angle(g.residual.unwrap() - want_res).abs() <= 3.0 * phase_tol);
        let a = 2.0 * s.coef(i, Part::U)[k].norm() / p as f64;
        assert!(
            (a - amp).abs() <= 2.0 * eps,
            "noisy neuron {i}: A {a} vs {amp}"
        );
        let frac_min = ((amp - 2.0 * eps) / (amp + 2f64.sqrt() * eps)).powi(2);
        assert!(
            g.min_fraction >= frac_min,
            "noisy neuron {i}: fraction {} < {frac_min}",
            g.min_fraction
        );
    }
    // The bounds are loose; the typical error is far smaller.
    assert!(worst_phase < 0.2, "{worst_phase}");
}

#[test]
fn dft_matches_naive_dft() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for p in [5, 16, 23, 97, 113] {
        let plan = FourierPlan::new(p).unwrap();
        let x: Vec<f64> = (0..p).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let (coef, power) = plan.transform(&x).unwrap();
        for k in 0..plan.n_freq() {
            let (mut re, mut im) = (0.0, 0.0);
            for (a, &xa) in x.iter().enumerate() {
                let t = -2.0 * PI * ((k * a) % p) as f64 / p as f64;
                re += xa * t.cos();
                im += xa * t.sin();
            }
            assert!((coef[k].re - re).abs() < 1e-10 && (coef[k].im - im).abs() < 1e-10);
            let pair = if k == 0 || 2 * k == p { 1.0 } else { 2.0 };
            assert!((power[k] - pair * (re * re + im * im) / p as f64).abs() < 1e-10);
        }
    }
}

#[test]
fn construction_logits_are_exact() {
    // Odd composite moduli too: Σ_ζ cos(2πζd/p) = −1/2 for d ≠ 0 needs only odd p.
    for p in [5, 7, 9, 11, 15, 23] {
        let w = construct::max_margin(p).unwrap();
        assert_eq!(w.width, 8 * (p - 1));
        let task = Task::modular(Op::Add, p).unwrap();
        let mut correct = 0;
        for j in 0..task.pairs.len() {
            let (a, b) = (task.pairs.a[j] as usize, task.pairs.b[j] as usize);
            let row = reference::logits(Activation::Square, &w, 0, a, b);
            let argmax = (0..p).max_by(|&x, &y| row[x].total_cmp(&row[y])).unwrap();
            correct += usize::from(argmax == task.pairs.label[j] as usize);
            for (c, &f) in row.iter().enumerate() {
                let want = if c == (a + b) % p {
                    4.0 * p as f64 - 4.0
                } else {
                    -4.0
                };
                assert!(
                    (f - want).abs() < 1e-9,
                    "p={p} ({a},{b}) c={c}: {f} vs {want}"
                );
            }
        }
        assert_eq!(correct, p * p, "p={p}: reference accuracy");
        // The engine agrees: every pair right, smallest margin exactly 4p.
        let backend = cpu();
        let m = margin::margins_with(
            backend.as_ref(),
            &w,
            Activation::Square,
            &task.pairs,
            "all",
            None,
        )
        .unwrap()
        .remove(0);
        assert_eq!(m.accuracy, 1.0, "p={p}: engine accuracy");
        assert!(
            (m.min_margin - 4.0 * p as f64).abs() < 1e-9,
            "p={p}: {}",
            m.min_margin
        );
    }
}

fn gamma(w: &Weights<f64>, p: usize) -> f64 {
    let backend = cpu();
    let task = Task::modular(Op::Add, p).unwrap();
    margin::margins_with(
        backend.as_ref(),
        w,
        Activation::Square,
        &task.pairs,
        "all",
        None,
    )
    .unwrap()[0]
        .gamma
}

#[test]
fn construction_attains_gamma_star() {
    // Odd composite moduli too: Σ_ζ cos(2πζd/p) = −1/2 for d ≠ 0 needs only odd p.
    for p in [5, 7, 9, 11, 15, 23] {
        let w = construct::max_margin(p).unwrap();
        let star = gamma_star_modular_addition(p);
        let g = gamma(&w, p);
        assert!(
            ((g - star) / star).abs() < 1e-9,
            "p={p}: γ = {g}, γ* = {star}"
        );
        // Any uniform rescaling has the same γ (3-homogeneous numerator and norm).
        let mut scaled = w.clone();
        for x in scaled
            .u
            .iter_mut()
            .chain(&mut scaled.v)
            .chain(&mut scaled.w)
        {
            *x *= 0.37;
        }
        let gs = gamma(&scaled, p);
        assert!(((gs - star) / star).abs() < 1e-9, "p={p} rescaled: {gs}");
        // A random network of the same width is far below.
        let spec = ModelSpec {
            n_in: p,
            n_out: p,
            width: w.width,
            activation: Activation::Square,
            tied: false,
            embed_dim: None,
            dense: false,
            init_scale: 1.0,
        };
        let random = Params::<f64>::init(&spec, 1, p as u64).unwrap().effective();
        assert!(gamma(&random, p) < star, "p={p}");
    }
}

#[test]
fn construction_fourier_features_are_ideal() {
    let p = 23;
    let w = construct::max_margin(p).unwrap();
    let plan = FourierPlan::new(p).unwrap();
    let f = summary::neuron_features(&fourier::spectra(&plan, &w, 0).unwrap(), 0.9);
    for g in &f {
        assert!((g.min_fraction - 1.0).abs() < 1e-9, "neuron {}", g.neuron);
        assert!(
            g.residual.unwrap().abs() < 1e-9,
            "neuron {}: {:?}",
            g.neuron,
            g.residual
        );
        assert_eq!(g.freq, 1 + g.neuron / 16);
    }
    let s = summary::summarize(&f, p / 2, 0.9);
    assert!(s.freqs_missing.is_empty());
    assert_eq!(s.freqs_used, (1..=11).collect::<Vec<_>>());
    assert_eq!(s.sinusoidal_share, 1.0);
    assert!(s.sinusoidal_per_freq[1..].iter().all(|&n| n == 16));
    // The construction spreads its weight exactly evenly over the 11 frequencies.
    let (lo, hi) = s.norm_share_range.unwrap();
    assert!(
        (lo - 1.0).abs() < 1e-9 && (hi - 1.0).abs() < 1e-9,
        "{lo} {hi}"
    );
    let equal = |shares: &[f64]| shares[1..].iter().all(|x| (x - 1.0 / 11.0).abs() < 1e-12);
    assert!(
        equal(&s.amplitude_share_per_freq),
        "{:?}",
        s.amplitude_share_per_freq
    );
}

/// What the max-margin solution holds equal across frequencies is Σ n_i^{3/2}, not the
/// neuron count or Σ n_i: split each frequency-1 neuron of the construction into two
/// copies scaled by 2^(−1/3). The logits (2·c³ = 1 times the neuron's) and the margin
/// normalizer (2·c³·n^{3/2}) are unchanged, so γ = γ* still; frequency 1 now has 32
/// neurons and 2^(1/3) times its Σ n_i, but the same Σ n_i^{3/2} share as every other.
#[test]
fn max_margin_equalizes_the_logit_amplitude_per_frequency() {
    let p = 23;
    let base = construct::max_margin(p).unwrap();
    let (m, extra) = (base.width, 16);
    let c = 2f64.powf(-1.0 / 3.0);
    let widen = |x: &[f64]| {
        let mut out = vec![0.0; p * (m + extra)];
        for a in 0..p {
            for i in 0..m {
                out[a * (m + extra) + i] = x[a * m + i] * if i < extra { c } else { 1.0 };
            }
            for i in 0..extra {
                out[a * (m + extra) + m + i] = x[a * m + i] * c;
            }
        }
        out
    };
    let split = Weights {
        width: m + extra,
        u: widen(&base.u),
        v: widen(&base.v),
        w: widen(&base.w),
        ..base.clone()
    };
    let star = gamma_star_modular_addition(p);
    let g = margin::margins_with(
        &*cpu(),
        &split,
        Activation::Square,
        &Task::modular(Op::Add, p).unwrap().pairs,
        "all",
        Some(star),
    )
    .unwrap()[0]
        .clone();
    assert!(
        (g.gamma / star - 1.0).abs() < 1e-9,
        "γ/γ* = {}",
        g.gamma / star
    );
    let plan = FourierPlan::new(p).unwrap();
    let f = summary::neuron_features(&fourier::spectra(&plan, &split, 0).unwrap(), 0.9);
    let s = summary::summarize(&f, p / 2, 0.9);
    assert_eq!(s.neurons_per_freq[1], 32);
    assert!(s.neurons_per_freq[2..].iter().all(|&n| n == 16));
    for k in 1..=11 {
        let a = s.amplitude_share_per_freq[k];
        assert!((a - 1.0 / 11.0).abs() < 1e-12, "k = {k}: {a}");
    }
    // Σ n_i of frequency 1 is 2^(1/3) that of each other frequency.
    let ratio = s.norm_share_per_freq[1] / s.norm_share_per_freq[2];
    assert!((ratio - 2f64.powf(1.0 / 3.0)).abs() < 1e-12, "{ratio}");
}

/// A two-model batch whose models train on different fractions with different seeds:
/// the analysis measures each model on its own split (train and test margins equal a
/// direct evaluation of that model alone on that split, and differ from the other
/// model's split) and re-draws each model's own initial weights.
#[test]
fn per_model_splits_and_inits_are_each_models_own() {
    use clockwork::analysis::margin::SplitPart;
    use clockwork::analysis::pipeline::{self, Options};
    use clockwork::analysis::progress;
    use clockwork::checkpoint;
    use clockwork::config::RunConfig;
    use clockwork::task::Split;

    let mut config = RunConfig::default();
    config.task.p = 23;
    config.model.width = 32;
    config.models = 2;
    config.per_model.train_fraction = vec![0.3, 0.8];
    config.per_model.seed = vec![3, 4];
    config.validate().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    std::fs::create_dir_all(run.join("checkpoints")).unwrap();
    std::fs::write(run.join("config.toml"), config.to_toml()).unwrap();
    // The "trained" weights are a fixed draw unrelated to the init, so a margin measured
    // on the wrong split would differ.
    let spec = config.model_spec();
    let last = Params::<f64>::init(&spec, 2, 99).unwrap().effective();
    checkpoint::save_weights(&checkpoint::path_for(&run, 100), &config, 100, &last).unwrap();

    let backend = cpu();
    let a = pipeline::analyze(backend.as_ref(), &run, &Options::default()).unwrap();
    let task = config.build_task().unwrap();
    let settings = config.model_settings();
    let alone = |k: usize| {
        let (u, v, w) = last.model(k);
        Weights {
            batch: 1,
            n_in: last.n_in,
            n_out: last.n_out,
            width: last.width,
            u: u.to_vec(),
            v: v.to_vec(),
            w: w.to_vec(),
        }
    };
    let on = |k: usize, fraction: f64, seed: u64, part: SplitPart| {
        let split = Split::new(task.len(), fraction, seed).unwrap();
        let idx = match part {
            SplitPart::Train => &split.train,
            SplitPart::Test => &split.test,
        };
        let pairs = task.pairs.select(idx);
        margin::margins_with(
            backend.as_ref(),
            &alone(k),
            config.model.activation,
            &pairs,
            part.label(),
            None,
        )
        .unwrap()
        .remove(0)
    };
    for (k, m) in a.summary.models.iter().enumerate() {
        let s = &settings[k];
        assert_eq!((m.train_fraction, m.seed), (s.train_fraction, s.seed));
        let train = m
            .margin_train
            .as_ref()
            .expect("a split model has a train margin");
        let test = m
            .margin_test
            .as_ref()
            .expect("a split model has a test margin");
        assert_eq!(train, &on(k, s.train_fraction, s.seed, SplitPart::Train));
        assert_eq!(test, &on(k, s.train_fraction, s.seed, SplitPart::Test));
        let other = &settings[1 - k];
        let wrong = on(k, other.train_fraction, other.seed, SplitPart::Train);
        // The smallest margin can sit on a pair both splits hold; the mean loss cannot
        // coincide on sets this different.
        assert_ne!(train.loss, wrong.loss, "model {k}");
    }
    // The library function agrees with the pipeline.
    let direct =
        margin::margins_on_split(backend.as_ref(), &config, &last, SplitPart::Train).unwrap();
    assert_eq!(direct[1], a.summary.models[1].margin_train);

    // Initial frequencies come from each model's own seed (no step-0 checkpoint here).
    let init = config.init_params::<f64>().unwrap().effective();
    let plan = FourierPlan::new(23).unwrap();
    for k in 0..2 {
        let want = progress::init_freqs(
            &fourier::spectra(&plan, &init, k).unwrap(),
            Some(clockwork::analysis::basis::Invariant::Sum),
        );
        assert_eq!(a.init[k], want, "model {k}");
    }
    assert_eq!(
        a.summary.init_source,
        "re-initialized from per_model.seed [3, 4]"
    );

    // Without [per_model], every model uses the [task] fraction and the config seed
    // (the whole batch in one pass).
    let mut plain = config.clone();
    plain.per_model.train_fraction.clear();
    plain.per_model.seed.clear();
    plain.task.train_fraction = 0.5;
    let shared =
        margin::margins_on_split(backend.as_ref(), &plain, &last, SplitPart::Test).unwrap();
    for (k, m) in shared.iter().enumerate() {
        let m = m.as_ref().expect("a test side at fraction 0.5");
        let want = on(k, 0.5, plain.seed, SplitPart::Test);
        assert_eq!(m.accuracy, want.accuracy, "model {k}");
        assert!((m.min_margin - want.min_margin).abs() <= 1e-12 * want.min_margin.abs());
    }
    plain.task.train_fraction = 1.0;
    let none = margin::margins_on_split(backend.as_ref(), &plain, &last, SplitPart::Train).unwrap();
    assert_eq!(none, vec![None, None]);
}
