//! The fused CPU engine against the plain-loop f64 reference on random problems: f32
//! relative error < 1e-5. (The slower kernels kept for comparison — matrixmultiply, the
//! hand-written AVX2 microkernel — are checked against the same reference by the kernel
//! harness, benches/cpu_kernels/, which `cargo test --features dev-kernels` runs.)

use clockwork::engine::cpu::{CpuBackend, CpuOptions};
use clockwork::engine::{reference, Backend, CoreSpec, Loss, PassStats};
use clockwork::model::{Activation, ModelSpec, Params, Weights};
use clockwork::task::{Op, Split, Task};
use proptest::prelude::*;

fn spec(p: usize, m: usize, activation: Activation) -> ModelSpec {
    ModelSpec {
        n_in: p,
        n_out: p,
        width: m,
        activation,
        tied: false,
        embed_dim: None,
        init_scale: 0.5,
    }
}

fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt();
    let den: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    num / den.max(1e-30)
}

fn compare(
    stats: &[PassStats],
    ref_stats: &[PassStats],
    grads: &Weights<f32>,
    ref_grads: &Weights<f64>,
    what: &str,
) {
    for (s, r) in stats.iter().zip(ref_stats) {
        assert!(
            (s.loss - r.loss).abs() <= 1e-5 * r.loss.abs().max(1e-3),
            "loss {} vs {} ({what})",
            s.loss,
            r.loss
        );
        assert!(
            (s.min_margin - r.min_margin).abs() <= 1e-4 * r.min_margin.abs().max(1.0),
            "{what}"
        );
        assert_eq!(s.count, r.count, "{what}");
    }
    let g = grads.cast::<f64>();
    for (name, got, want) in [
        ("u", &g.u, &ref_grads.u),
        ("v", &g.v, &ref_grads.v),
        ("w", &g.w, &ref_grads.w),
    ] {
        let e = rel_err(got, want);
        assert!(e < 1e-5, "grad_{name}: relative error {e} ({what})");
    }
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
    // No minimum work per chunk, so these small problems still split into several
    // chunks and the reduction is exercised.
    let options = CpuOptions {
        tile_rows,
        chunks_per_model: 5,
        min_chunk_work: 0,
        threads: None,
    };
    let backend = CpuBackend::new(options).unwrap();
    let mut grads = Weights::zeros(&params.spec, batch);
    let stats = backend
        .loss_and_grad(core, &weights, &pairs, &mut grads)
        .unwrap();
    let what = format!("p={p} m={m} B={batch} tile={tile_rows} {activation} {loss:?}");
    compare(&stats, &ref_stats, &grads, &ref_grads, &what);
    // A forward-only pass reports the same statistics.
    assert_eq!(
        backend.evaluate(core, &weights, &pairs).unwrap(),
        stats,
        "{what}"
    );
}

#[test]
fn fused_matches_reference_on_fixed_cases() {
    for act in [Activation::Square, Activation::Relu, Activation::Pow(3)] {
        for loss in [Loss::CrossEntropy, Loss::Mse] {
            check(7, 12, 2, 16, act, loss, 1.0, 1);
            check(11, 9, 1, 7, act, loss, 0.6, 2);
            check(17, 33, 1, 20, act, loss, 1.0, 3);
        }
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
