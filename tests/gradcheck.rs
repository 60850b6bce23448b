//! f64 central finite differences against the engine's analytic gradients, for every
//! activation × loss × regularizer, untied, tied and factored.

use clockwork::kinds::RegularizerKind;
use clockwork::prelude::*;

mod common;

fn objective(trainer: &mut Trainer<f64>) -> f64 {
    let (train, reg) = trainer.compute_gradients().unwrap();
    train[0].loss + reg[0]
}

fn check(
    activation: Activation,
    loss: Loss,
    regularizer: RegularizerKind,
    tied: bool,
    embed_dim: usize,
) {
    let mut config = common::f64_config(5, 4);
    config.task.train_fraction = 0.8;
    config.model.activation = activation;
    config.model.tied = tied;
    config.model.embed_dim = embed_dim;
    config.model.init_scale = 0.7;
    config.train.loss = loss;
    config.train.regularizer = regularizer;
    config.train.reg_strength = 0.05;
    config.seed = 3;
    let mut trainer = Trainer::<f64>::from_config(&config).unwrap();
    objective(&mut trainer);
    let analytic = trainer.param_grads().to_vec();
    let base = trainer.state().unwrap();
    let h = 1e-6;
    let numeric: Vec<f64> = (0..analytic.len())
        .map(|i| {
            let mut at = |delta: f64| {
                let mut state = base.clone();
                state.params[i] += delta;
                trainer.restore(state).unwrap();
                objective(&mut trainer)
            };
            (at(h) - at(-h)) / (2.0 * h)
        })
        .collect();
    let diff: f64 = analytic
        .iter()
        .zip(&numeric)
        .map(|(a, n)| (a - n).powi(2))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = numeric.iter().map(|n| n * n).sum::<f64>().sqrt();
    let rel = diff / norm;
    assert!(
        rel < 1e-6,
        "{activation} {loss:?} {regularizer:?} tied={tied} embed_dim={embed_dim}: relative error {rel:e}"
    );
}

#[test]
fn gradients_match_finite_differences() {
    for activation in [Activation::Square, Activation::Relu, Activation::Pow(3)] {
        for loss in [Loss::CrossEntropy, Loss::Mse] {
            for reg in [
                RegularizerKind::None,
                RegularizerKind::L2,
                RegularizerKind::L23,
                // q = the activation's degree: 3, 2 and 4 here.
                RegularizerKind::L2k,
            ] {
                for (tied, embed_dim) in [(false, 0), (true, 0), (false, 3), (true, 3)] {
                    check(activation, loss, reg, tied, embed_dim);
                }
            }
        }
    }
}

#[test]
fn a_wrong_gradient_would_be_caught() {
    // The check must be able to fail: scaling the analytic gradient by 1 + 1e-4 breaks it.
    let config = common::f64_config(5, 4);
    let mut trainer = Trainer::<f64>::from_config(&config).unwrap();
    objective(&mut trainer);
    let g0 = trainer.param_grads()[0] * (1.0 + 1e-4);
    let base = trainer.state().unwrap();
    let h = 1e-6;
    let mut at = |delta: f64| {
        let mut state = base.clone();
        state.params[0] += delta;
        trainer.restore(state).unwrap();
        objective(&mut trainer)
    };
    let numeric = (at(h) - at(-h)) / (2.0 * h);
    assert!(((g0 - numeric) / numeric).abs() > 1e-6);
}
