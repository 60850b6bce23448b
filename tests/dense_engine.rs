//! The dense-input (bit-string) variant of the fused CPU step against the plain-loop f64
//! reference: loss, gradients, accuracy and margins, in f64 (to rounding) and f32
//! (relative 1e-5), for every activation and loss and both encodings; thread- and
//! batch-independence; finite differences through the trainer with L1; and per-model
//! training sets in one batch.

use clockwork::engine::cpu::{CpuBackend, CpuOptions};
use clockwork::engine::{reference, Backend, CoreSpec, Loss, PassStats};
use clockwork::kinds::RegularizerKind;
use clockwork::model::{Activation, ModelSpec, Params, Weights};
use clockwork::prelude::*;
use clockwork::task::{BitEncoding, Parity, Split};
use common::rel_err;

mod common;

fn dense_spec(n: usize, m: usize, activation: Activation) -> ModelSpec {
    ModelSpec {
        n_in: n,
        n_out: 2,
        dense: true,
        init_scale: 0.4,
        ..common::spec(n, m, activation)
    }
}

fn backend(tile_rows: usize, threads: Option<usize>) -> CpuBackend {
    CpuBackend::new(CpuOptions {
        tile_rows,
        chunks_per_model: 3,
        min_chunk_work: 1,
        threads,
    })
    .unwrap()
}

fn flat(w: &Weights<f64>) -> Vec<f64> {
    w.u.iter().chain(&w.v).chain(&w.w).copied().collect()
}

fn flat32(w: &Weights<f32>) -> Vec<f64> {
    w.u.iter()
        .chain(&w.v)
        .chain(&w.w)
        .map(|&x| x as f64)
        .collect()
}

fn close(a: &PassStats, b: &PassStats, tol: f64, what: &str) {
    assert!(
        (a.loss - b.loss).abs() <= tol * b.loss.abs().max(1e-12),
        "{what}: loss {} vs {}",
        a.loss,
        b.loss
    );
    assert!(
        (a.min_margin - b.min_margin).abs() <= tol * 10.0 * b.min_margin.abs().max(1e-6),
        "{what}: margin {} vs {}",
        a.min_margin,
        b.min_margin
    );
    assert_eq!(a.count, b.count, "{what}");
}

/// f64 engine = reference to rounding, f32 engine within 1e-5, on small problems of
/// every activation, loss and encoding, tiles smaller than the chunks.
#[test]
fn dense_step_matches_the_f64_reference() {
    let acts = [Activation::Square, Activation::Relu, Activation::Pow(3)];
    for (case, act) in acts.into_iter().enumerate() {
        for loss in [Loss::CrossEntropy, Loss::Mse] {
            for encoding in [BitEncoding::PlusMinusOne, BitEncoding::ZeroOne] {
                let n = 7;
                let parity = Parity { n, k: 3, encoding };
                let task = parity.population().unwrap();
                let split = Split::new(task.len(), 0.7, case as u64).unwrap();
                let pairs = task.pairs.select(&split.train);
                let core = CoreSpec {
                    activation: act,
                    loss,
                };
                let spec = dense_spec(n, 6, act);
                let what = format!("{act} {loss:?} {}", encoding.name());
                let p64 = Params::<f64>::init(&spec, 3, 11 + case as u64).unwrap();
                let w64 = p64.effective();
                let mut want = Weights::<f64>::zeros(&spec, 3);
                let ref_stats = reference::loss_and_grad(core, &w64, &pairs, Some(&mut want));
                let mut got = w64.clone();
                let stats = backend(16, Some(2))
                    .loss_and_grad(core, &w64, &pairs, &mut got)
                    .unwrap();
                for k in 0..3 {
                    close(&stats[k], &ref_stats[k], 1e-12, &what);
                    assert_eq!(stats[k].correct, ref_stats[k].correct, "{what}");
                }
                let e = rel_err(&flat(&got), &flat(&want));
                assert!(e < 1e-12, "{what}: f64 gradient error {e:e}");
                assert!(got.v.iter().all(|&g| g == 0.0), "{what}: V is absent");
                // f32 against the f64 reference at the same (rounded) weights.
                let w32: Weights<f32> = w64.cast();
                let mut want32 = Weights::<f64>::zeros(&spec, 3);
                let ref32 = reference::loss_and_grad(core, &w32, &pairs, Some(&mut want32));
                let mut got32 = w32.clone();
                let stats32 = backend(16, Some(2))
                    .loss_and_grad(core, &w32, &pairs, &mut got32)
                    .unwrap();
                for k in 0..3 {
                    close(&stats32[k], &ref32[k], 1e-5, &what);
                    // Random weights leave no margin within f32 rounding of 0 here.
                    assert_eq!(stats32[k].correct, ref32[k].correct, "{what}");
                }
                let e = rel_err(&flat32(&got32), &flat(&want32));
                assert!(e < 1e-5, "{what}: f32 gradient error {e:e}");
            }
        }
    }
}

/// A model's bits do not depend on the thread count, the batch it is in, or evaluate
/// vs loss_and_grad.
#[test]
fn dense_results_do_not_depend_on_threads_or_batch() {
    let parity = Parity {
        n: 12,
        k: 3,
        encoding: BitEncoding::PlusMinusOne,
    };
    let pairs = parity.population().unwrap().pairs;
    let core = CoreSpec {
        activation: Activation::Relu,
        loss: Loss::CrossEntropy,
    };
    let spec = dense_spec(12, 20, Activation::Relu);
    let batch = Params::<f32>::init(&spec, 4, 5).unwrap().effective();
    let mut g_batch = batch.clone();
    let s_batch = backend(100, Some(2))
        .loss_and_grad(core, &batch, &pairs, &mut g_batch)
        .unwrap();
    let mut one = Weights::<f32>::zeros(&spec, 1);
    batch.gather_models_into(&[2], &mut one);
    let mut g_one = one.clone();
    let s_one = backend(100, Some(1))
        .loss_and_grad(core, &one, &pairs, &mut g_one)
        .unwrap();
    assert_eq!(s_one[0], s_batch[2]);
    let mut g2 = Weights::<f32>::zeros(&spec, 1);
    g_batch.gather_models_into(&[2], &mut g2);
    assert_eq!(g_one.u, g2.u);
    assert_eq!(g_one.w, g2.w);
    assert_eq!(
        backend(100, Some(2))
            .evaluate(core, &batch, &pairs)
            .unwrap(),
        s_batch
    );
}

/// Masks out of range and a bit count that is not the weights' n_in are errors.
#[test]
fn bad_bit_string_pairs_are_errors() {
    let parity = Parity {
        n: 5,
        k: 2,
        encoding: BitEncoding::ZeroOne,
    };
    let mut pairs = parity.population().unwrap().pairs;
    let core = CoreSpec {
        activation: Activation::Square,
        loss: Loss::CrossEntropy,
    };
    let w = Params::<f64>::init(&dense_spec(6, 3, Activation::Square), 1, 0)
        .unwrap()
        .effective();
    let e = backend(8, None).evaluate(core, &w, &pairs).unwrap_err();
    assert!(e.to_string().contains("5 bits"), "{e}");
    let w = Params::<f64>::init(&dense_spec(5, 3, Activation::Square), 1, 0)
        .unwrap()
        .effective();
    pairs.a[3] = 1 << 5;
    let e = backend(8, None).evaluate(core, &w, &pairs).unwrap_err();
    assert!(e.to_string().contains("a = 32"), "{e}");
}

fn bits_config(train_size: Option<usize>) -> RunConfig {
    let mut c = RunConfig {
        dtype: clockwork::kinds::Dtype::F64,
        ..RunConfig::default()
    };
    c.model.width = 5;
    c.task.bits = Some(6);
    c.task.parity_k = Some(3);
    c.task.train_size = train_size;
    c.task.test_size = train_size.map(|_| 20);
    if train_size.is_none() {
        c.task.train_fraction = 0.75;
    }
    c.model.init_scale = 0.5;
    c.seed = 9;
    c
}

fn objective(trainer: &mut Trainer<f64>) -> f64 {
    let (train, reg) = trainer.compute_gradients().unwrap();
    train[0].loss + reg[0]
}

/// Central differences of the whole objective through the trainer (dense pass, the
/// chain from effective weights to parameters, the regularizer), L1 included: at
/// random weights no entry sits on L1's kink.
#[test]
fn dense_gradients_match_finite_differences() {
    for act in [Activation::Square, Activation::Relu, Activation::Pow(4)] {
        for reg in [
            RegularizerKind::None,
            RegularizerKind::L1,
            RegularizerKind::L2k,
        ] {
            let mut config = bits_config(None);
            config.model.activation = act;
            config.train.regularizer = reg;
            config.train.reg_strength = 0.03;
            let mut trainer = Trainer::<f64>::from_config(&config).unwrap();
            objective(&mut trainer);
            let analytic = trainer.param_grads().to_vec();
            assert_eq!(analytic.len(), (6 + 2) * 5, "u and w only");
            let base = trainer.state().unwrap();
            let h = 1e-6;
            let numeric: Vec<f64> = (0..analytic.len())
                .map(|i| {
                    let mut at = |d: f64| {
                        let mut s = base.clone();
                        s.params[i] += d;
                        trainer.restore(s).unwrap();
                        objective(&mut trainer)
                    };
                    (at(h) - at(-h)) / (2.0 * h)
                })
                .collect();
            let e = rel_err(&analytic, &numeric);
            assert!(e < 1e-6, "{act} {reg:?}: relative error {e:e}");
        }
    }
}

/// A sampled task trains each seed on its own strings in one batch; a model's
/// training matches the same model trained alone, and training reduces the loss.
#[test]
fn per_model_training_sets_in_one_batch() {
    let mut config = bits_config(Some(40));
    config.dtype = clockwork::kinds::Dtype::F32;
    config.models = 3;
    config.per_model.seed = vec![1, 2, 3];
    config.train.regularizer = RegularizerKind::L1;
    config.train.reg_strength = 1e-4;
    config.optimizer.lr = 0.05;
    config.optimizer.lr_milestones = vec![];
    let mut batch = Trainer::<f32>::from_config(&config).unwrap();
    assert_ne!(*batch.train_pairs(0), *batch.train_pairs(1));
    assert_eq!(batch.train_pairs(2).len(), 40);
    assert_eq!(batch.test_pairs(2).len(), 20);
    let first = batch.evaluate().unwrap();
    for _ in 0..30 {
        batch.step().unwrap();
    }
    let last = batch.evaluate().unwrap();
    let mut alone_config = config.clone();
    alone_config.models = 1;
    alone_config.per_model.seed = vec![2];
    let mut alone = Trainer::<f32>::from_config(&alone_config).unwrap();
    for _ in 0..30 {
        alone.step().unwrap();
    }
    let alone_last = alone.evaluate().unwrap();
    assert_eq!(
        alone_last.train[0], last.train[1],
        "model 1 = trained alone"
    );
    assert_eq!(
        alone_last.test.as_ref().unwrap()[0],
        last.test.as_ref().unwrap()[1]
    );
    for k in 0..3 {
        assert!(last.train[k].loss < first.train[k].loss, "model {k} learns");
    }
}
