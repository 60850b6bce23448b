//! The fused CPU engine against the plain-loop f64
//! reference on random problems: f32 relative error < 1e-5 on the loss and gradients,
//! and per model the same count of correctly classified pairs, up to the pairs whose
//! f64 margin is within f32 rounding of zero. One production-size case (p = 113,
//! m = 512) checks the same at the README's benchmark shape.

use clockwork::engine::cpu::{CpuBackend, CpuOptions};
use clockwork::engine::{reference, Backend, CoreSpec, Loss, PassStats};
use clockwork::model::{Activation, Params, Weights};
use clockwork::task::{Op, PairSet, Split, Task};
use common::{rel_err, say, spec};
use proptest::prelude::*;

mod common;

/// Per model, how many pairs have a margin `f_y − max_{c≠y} f_c` (in f64, from the same
/// f32 weights) too close to zero for f32 to be sure of its sign: |margin| ≤ 2·(m + 8)·ε₃₂
/// · (A_y + A_c), where A_c = Σ_i |w_ci h_i| and c is the runner-up. That is twice the
/// worst-case rounding bound of an f32 dot product of length m in any summation order,
/// with a few ε more for h = σ(u + v); only these pairs may be classified differently.
fn ambiguous_pairs(act: Activation, weights: &Weights<f32>, pairs: &PairSet) -> Vec<usize> {
    let (m, n_out) = (weights.width, weights.n_out);
    let eps = f32::EPSILON as f64;
    (0..weights.batch)
        .map(|k| {
            let (u, v, w) = weights.model(k);
            (0..pairs.len())
                .filter(|&t| {
                    let (a, b, y) = (
                        pairs.a[t] as usize,
                        pairs.b[t] as usize,
                        pairs.label[t] as usize,
                    );
                    let h: Vec<f64> = (0..m)
                        .map(|i| {
                            reference::activate(act, u[a * m + i] as f64 + v[b * m + i] as f64)
                        })
                        .collect();
                    let (mut f, mut abs) = (vec![0.0f64; n_out], vec![0.0f64; n_out]);
                    for c in 0..n_out {
                        for i in 0..m {
                            let x = w[c * m + i] as f64 * h[i];
                            f[c] += x;
                            abs[c] += x.abs();
                        }
                    }
                    let runner_up = (0..n_out)
                        .filter(|&c| c != y)
                        .max_by(|&c, &d| f[c].total_cmp(&f[d]))
                        .expect("n_out >= 2");
                    let bound = 2.0 * (m + 8) as f64 * eps * (abs[y] + abs[runner_up]);
                    (f[y] - f[runner_up]).abs() <= bound
                })
                .count()
        })
        .collect()
}

/// Tolerances of one comparison (relative, against the f64 reference).
#[derive(Clone, Copy, Debug)]
struct Tol {
    loss: f64,
    grad: f64,
    margin: f64,
}

const TOL: Tol = Tol {
    loss: 1e-5,
    grad: 1e-5,
    margin: 1e-4,
};

/// The engine's pass against the reference's; returns the worst relative gradient error.
fn compare(
    (stats, grads): (&[PassStats], &Weights<f32>),
    (ref_stats, ref_grads): (&[PassStats], &Weights<f64>),
    ambiguous: &[usize],
    tol: Tol,
    what: &str,
) -> f64 {
    assert_eq!(
        stats.len(),
        ref_stats.len(),
        "one PassStats per model ({what})"
    );
    for (k, (s, r)) in stats.iter().zip(ref_stats).enumerate() {
        assert!(
            (s.loss - r.loss).abs() <= tol.loss * r.loss.abs().max(1e-3),
            "model {k}: loss {} vs {} ({what})",
            s.loss,
            r.loss
        );
        assert!(
            (s.min_margin - r.min_margin).abs() <= tol.margin * r.min_margin.abs().max(1.0),
            "model {k}: min margin {} vs {} ({what})",
            s.min_margin,
            r.min_margin
        );
        assert_eq!(s.count, r.count, "model {k} ({what})");
        let flips = s.correct.abs_diff(r.correct);
        assert!(
            flips <= ambiguous[k],
            "model {k}: {} correct vs {} in the f64 reference, but only {} pairs have a \
             margin within f32 rounding of 0 ({what})",
            s.correct,
            r.correct,
            ambiguous[k]
        );
    }
    let g = grads.cast::<f64>();
    let mut worst = 0.0f64;
    for (name, got, want) in [
        ("u", &g.u, &ref_grads.u),
        ("v", &g.v, &ref_grads.v),
        ("w", &g.w, &ref_grads.w),
    ] {
        let e = rel_err(got, want);
        assert!(e < tol.grad, "grad_{name}: relative error {e} ({what})");
        worst = worst.max(e);
    }
    worst
}

#[allow(clippy::too_many_arguments)]
fn check(
    p: usize,
    m: usize,
    batch: usize,
    tile_rows: usize,
    activation: Activation,
    loss: Loss,
    fraction: f64,
    seed: u64,
) {
    let task = Task::modular(Op::Add, p).unwrap();
    let split = Split::new(task.len(), fraction, seed).unwrap();
    let pairs = task.pairs.select(&split.train);
    let params = Params::<f32>::init(&spec(p, m, activation), batch, seed).unwrap();
    let weights = params.effective();
    let core = CoreSpec { activation, loss };
    let mut ref_grads = Weights::<f64>::zeros(&params.spec, batch);
    let ref_stats = reference::loss_and_grad(core, &weights, &pairs, Some(&mut ref_grads));
    let ambiguous = ambiguous_pairs(activation, &weights, &pairs);
    {
        let options = CpuOptions {
            tile_rows,
            chunks_per_model: 5,
            ..CpuOptions::default()
        };
        let backend = CpuBackend::new(options).unwrap();
        let mut grads = Weights::zeros(&params.spec, batch);
        let stats = backend
            .loss_and_grad(core, &weights, &pairs, &mut grads)
            .unwrap();
        let what = format!("p={p} m={m} B={batch} tile={tile_rows} {activation} {loss:?}");
        compare(
            (&stats, &grads),
            (&ref_stats, &ref_grads),
            &ambiguous,
            TOL,
            &what,
        );
        // A forward-only pass reports the same statistics.
        assert_eq!(
            backend.evaluate(core, &weights, &pairs).unwrap(),
            stats,
            "{what}"
        );
    }
}

#[test]
fn fused_matches_reference_on_fixed_cases() {
    for act in [Activation::Square, Activation::Relu, Activation::Pow(3)] {
        for loss in [Loss::CrossEntropy, Loss::Mse] {
            check(7, 12, 2, 16, act, loss, 1.0, 1);
            check(11, 9, 1, 7, act, loss, 0.6, 2);
            check(17, 33, 1, 20, act, loss, 1.0, 3);
            // The f32 narrow kernels' edges (src/engine/cpu/narrow/): several class
            // vectors and class blocks (41, 61 classes), neuron rows of 7 vectors (100 →
            // 112 on AVX-512: a block of 6 and one of 1), row blocks cut by the tile.
            check(41, 37, 2, 50, act, loss, 0.5, 4);
            check(61, 100, 1, 33, act, loss, 0.3, 5);
        }
    }
}

/// The README's benchmark shape: a + b mod 113, width 512, x², cross-entropy, every pair,
/// one model (the f64 reference costs about 2·p²·m·p multiply-adds, ~2 s in --release).
///
/// Tolerances (PROD_TOL below): each logit is an f32 dot product of length 512 and each
/// entry of dW a sum over 12 769 pairs, so f32 rounding grows (~√m, ~√p² in the tiled
/// fixed-order sums) beyond the small cases'. Measured on this project's 2-vCPU EPYC
/// (2026-12-01, seed 11, every kernel then in production): loss 4.7e-9 relative, gradients 6.9e-7, min margin
/// 2.0e-7, correct 121 = 121 with 1 ambiguous pair. The limits leave 14× (gradients) to
/// 200× (loss) of headroom for other CPUs' kernels and summation orders, and stay orders
/// of magnitude below what a wrong index or a dropped tile gives (errors of order 1e-2
/// and up).
#[test]
fn fused_matches_reference_at_production_size() {
    const PROD_TOL: Tol = Tol {
        loss: 1e-6,
        grad: 1e-5,
        margin: 1e-5,
    };
    let (p, m, seed) = (113, 512, 11);
    let activation = Activation::Square;
    let task = Task::modular(Op::Add, p).unwrap();
    let params = Params::<f32>::init(&spec(p, m, activation), 1, seed).unwrap();
    let weights = params.effective();
    let core = CoreSpec {
        activation,
        loss: Loss::CrossEntropy,
    };
    let mut ref_grads = Weights::<f64>::zeros(&params.spec, 1);
    let ref_stats = reference::loss_and_grad(core, &weights, &task.pairs, Some(&mut ref_grads));
    let ambiguous = ambiguous_pairs(activation, &weights, &task.pairs);
    // The correct-count check must have teeth: few pairs may be ambiguous.
    assert!(
        ambiguous[0] <= task.pairs.len() / 100,
        "{} of {} pairs ambiguous",
        ambiguous[0],
        task.pairs.len()
    );
    {
        let backend = CpuBackend::new(CpuOptions::default()).unwrap();
        let mut grads = Weights::zeros(&params.spec, 1);
        let stats = backend
            .loss_and_grad(core, &weights, &task.pairs, &mut grads)
            .unwrap();
        let what = format!("p={p} m={m} {activation} CE");
        let worst = compare(
            (&stats, &grads),
            (&ref_stats, &ref_grads),
            &ambiguous,
            PROD_TOL,
            &what,
        );
        say(&format!(
            "{what}: loss {:.3e} rel, grad {worst:.2e} rel, min margin {:.2e} rel, correct {} \
             vs {} (f64), {} ambiguous",
            (stats[0].loss - ref_stats[0].loss).abs() / ref_stats[0].loss.abs(),
            (stats[0].min_margin - ref_stats[0].min_margin).abs()
                / ref_stats[0].min_margin.abs().max(1.0),
            stats[0].correct,
            ref_stats[0].correct,
            ambiguous[0]
        ));
        assert_eq!(
            backend.evaluate(core, &weights, &task.pairs).unwrap(),
            stats,
            "{what}"
        );
    }
}

#[test]
fn bad_pairs_are_refused() {
    let params = Params::<f32>::init(&spec(5, 4, Activation::Square), 1, 0).unwrap();
    let weights = params.effective();
    let backend = CpuBackend::new(CpuOptions::default()).unwrap();
    let core = CoreSpec {
        activation: Activation::Square,
        loss: Loss::CrossEntropy,
    };
    let mut pairs = Task::modular(Op::Add, 5).unwrap().pairs;
    pairs.label[3] = 9;
    let err = backend
        .evaluate(core, &weights, &pairs)
        .unwrap_err()
        .to_string();
    assert!(err.contains("max label 9"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]
    #[test]
    fn fused_matches_reference(p in 2usize..20, m in 1usize..40, batch in 1usize..4, tile_rows in 1usize..70,
                               act in 0usize..3, mse in any::<bool>(), fraction in 0.2f64..1.0, seed in 0u64..1000) {
        let activation = [Activation::Square, Activation::Relu, Activation::Pow(3)][act];
        let loss = if mse { Loss::Mse } else { Loss::CrossEntropy };
        check(p, m, batch, tile_rows, activation, loss, fraction, seed);
    }
}

/// The grouped pass (every model on its own group's pairs, one pass: how the trainer
/// runs a batch with several splits) equals one pass per group over that group's models,
/// bit for bit, in f32 and for the forward-only pass too; bad group lists are refused.
#[test]
fn grouped_pass_equals_a_pass_per_group() {
    let (p, m, batch) = (13, 24, 7);
    let task = Task::modular(Op::Add, p).unwrap();
    let params = Params::<f32>::init(&spec(p, m, Activation::Square), batch, 3).unwrap();
    let weights = params.effective();
    let core = CoreSpec {
        activation: Activation::Square,
        loss: Loss::CrossEntropy,
    };
    // Three splits of different sizes (one the whole table), models interleaved.
    let splits: Vec<PairSet> = [(0.4, 1), (1.0, 2), (0.75, 3)]
        .iter()
        .map(|&(f, seed)| {
            task.pairs
                .select(&Split::new(task.len(), f, seed).unwrap().train)
        })
        .collect();
    let members: [Vec<usize>; 3] = [vec![0, 3, 6], vec![1, 4], vec![2, 5]];
    let groups: Vec<(&[usize], &dyn clockwork::engine::AsPairSet)> = members
        .iter()
        .zip(&splits)
        .map(|(ms, ps)| (ms.as_slice(), ps as &dyn clockwork::engine::AsPairSet))
        .collect();
    let backend = CpuBackend::new(CpuOptions::default()).unwrap();
    let mut grads = Weights::zeros(&params.spec, batch);
    let stats = backend
        .grouped_pass(core, &weights, &groups, Some(&mut grads))
        .expect("the CPU backend has a grouped pass")
        .unwrap();
    let forward = backend
        .grouped_pass(core, &weights, &groups, None)
        .unwrap()
        .unwrap();
    assert_eq!(forward, stats);
    for (ms, pairs) in members.iter().zip(&splits) {
        let mut sub = Weights::zeros(&params.spec, ms.len());
        weights.gather_models_into(ms, &mut sub);
        let mut sub_grads = Weights::zeros(&params.spec, ms.len());
        let sub_stats = backend
            .loss_and_grad(core, &sub, pairs, &mut sub_grads)
            .unwrap();
        let mut mine = Weights::zeros(&params.spec, ms.len());
        grads.gather_models_into(ms, &mut mine);
        for (i, &k) in ms.iter().enumerate() {
            assert_eq!(stats[k], sub_stats[i], "model {k}");
        }
        assert!(mine.u == sub_grads.u && mine.v == sub_grads.v && mine.w == sub_grads.w);
    }
    // A model in two groups, or in none, is refused by name.
    let twice: [(&[usize], &dyn clockwork::engine::AsPairSet); 2] =
        [(&[0, 1, 2, 3, 4, 5, 6], &splits[0]), (&[6], &splits[1])];
    let e = backend
        .grouped_pass(core, &weights, &twice, None)
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(e.contains("two split groups") && e.contains('6'), "{e}");
    let missing: [(&[usize], &dyn clockwork::engine::AsPairSet); 1] =
        [(&[0, 1, 2, 3, 4, 5], &splits[0])];
    let e = backend
        .grouped_pass(core, &weights, &missing, None)
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(e.contains("no split group"), "{e}");
}
