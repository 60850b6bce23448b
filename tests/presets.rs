//! Every preset `train --help` lists, at its full size (modulus, width, split, optimizer,
//! init), takes a few dozen steps without diverging.
//!
//! Why: a preset is a claim that its recipe trains; `gromov-mse` once diverged at step 3
//! (`loss of model 0 is inf`, plain GD far past the MSE Hessian's stability limit), which
//! only a full-size run shows. Each preset runs in f32 (its own dtype) for `STEPS` steps;
//! the loss of every step must be finite and the evaluation afterwards too.

use clockwork::presets::{preset, PRESETS};
use clockwork::train::Trainer;

/// Enough steps for an unstable learning rate to blow up (the old `gromov-mse` did by
/// step 3), few enough to keep the whole file within seconds on two cores.
const STEPS: u64 = 30;

fn runs_without_diverging(name: &str) {
    let config = preset(name).unwrap_or_else(|e| panic!("preset {name}: {e}"));
    let mut trainer = Trainer::<f32>::from_config(&config)
        .unwrap_or_else(|e| panic!("preset {name}: building its trainer failed: {e}"));
    let mut losses = Vec::new();
    trainer
        .advance(STEPS, &mut |r| losses.push(r.train[0].loss + r.reg_loss[0]))
        .unwrap_or_else(|e| panic!("preset {name} diverged: {e} (losses so far {losses:?})"));
    assert_eq!(losses.len() as u64, STEPS, "preset {name}");
    assert!(
        losses.iter().all(|l| l.is_finite()),
        "preset {name}: non-finite loss in {losses:?}"
    );
    let eval = trainer.evaluate().unwrap();
    assert!(
        eval.train[0].loss.is_finite(),
        "preset {name}: train loss {} after {STEPS} steps",
        eval.train[0].loss
    );
    if let Some(test) = eval.test_of(0) {
        assert!(
            test.loss.is_finite(),
            "preset {name}: test loss {}",
            test.loss
        );
    }
}

#[test]
fn every_listed_preset_is_tested_here() {
    let tested = [
        "default",
        "blog-x2",
        "blog-relu",
        "nanda",
        "explainer",
        "gromov-mse",
    ];
    let listed: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(listed, tested, "add a test below for each new preset");
}

#[test]
fn default_runs() {
    runs_without_diverging("default");
}

#[test]
fn blog_x2_runs() {
    runs_without_diverging("blog-x2");
}

#[test]
fn blog_relu_runs() {
    runs_without_diverging("blog-relu");
}

#[test]
fn nanda_runs() {
    runs_without_diverging("nanda");
}

#[test]
fn explainer_runs() {
    runs_without_diverging("explainer");
}

#[test]
fn gromov_mse_runs() {
    runs_without_diverging("gromov-mse");
}
