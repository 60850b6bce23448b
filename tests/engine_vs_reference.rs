//! The fused CPU engine against the plain-loop f64 reference on random problems.

use clockwork::engine::cpu::{CpuBackend, CpuOptions};
use clockwork::engine::{reference, Backend, CoreSpec, Loss};
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
    let backend = CpuBackend::new(CpuOptions {
        tile_rows,
        target_jobs: 5,
        threads: None,
    })
    .unwrap();
    let mut grads = Weights::zeros(&params.spec, batch);
    let stats = backend
        .loss_and_grad(core, &weights, &pairs, &mut grads)
        .unwrap();
    let mut ref_grads = Weights::<f64>::zeros(&params.spec, batch);
    let ref_stats = reference::loss_and_grad(core, &weights, &pairs, Some(&mut ref_grads));
    for (s, r) in stats.iter().zip(&ref_stats) {
        assert!(
            (s.loss - r.loss).abs() <= 1e-5 * r.loss.abs().max(1e-3),
            "loss {} vs {}",
            s.loss,
            r.loss
        );
        assert!((s.min_margin - r.min_margin).abs() <= 1e-4 * r.min_margin.abs().max(1.0));
    }
    let g = grads.cast::<f64>();
    for (name, got, want) in [
        ("u", &g.u, &ref_grads.u),
        ("v", &g.v, &ref_grads.v),
        ("w", &g.w, &ref_grads.w),
    ] {
        let e = rel_err(got, want);
        assert!(e < 1e-5, "grad_{name}: relative error {e} (p={p} m={m} B={batch} tile={tile_rows} {activation} {loss:?})");
    }
}

#[test]
fn fused_matches_reference_on_fixed_cases() {
    for act in [Activation::Square, Activation::Relu, Activation::Pow(3)] {
        for loss in [Loss::CrossEntropy, Loss::Mse] {
            check(7, 12, 2, 16, act, loss, 1.0, 1);
            check(11, 9, 1, 7, act, loss, 0.6, 2);
        }
    }
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
