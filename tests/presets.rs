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
        "s4-x2",
        "multitask",
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

#[test]
fn s4_x2_runs() {
    runs_without_diverging("s4-x2");
    let c = preset("s4-x2").unwrap();
    assert_eq!((c.n_tokens(), c.model.width), (24, 126));
}

#[test]
fn multitask_runs() {
    runs_without_diverging("multitask");
    let c = preset("multitask").unwrap();
    // 11 heads, one per prime below 37: 2 + 3 + 5 + … + 31 outputs.
    assert_eq!((c.task.p, c.model_spec().n_out), (37, 160));
    let eval = Trainer::<f32>::from_config(&c).unwrap().evaluate().unwrap();
    assert_eq!(eval.test_of(0).unwrap().heads.len(), 11);
}

/// The explainer's unordered split holds per model: with `[per_model]` seeds and fractions,
/// each model trains on the split a one-model run with its seed and fraction would draw,
/// and that split keeps every pair with its mirror.
#[test]
fn unordered_split_is_per_model() {
    use clockwork::task::{Split, SplitKind};
    let mut config = preset("explainer").unwrap();
    config.models = 2;
    config.per_model.seed = vec![1, 2];
    config.per_model.train_fraction = vec![0.4, 0.5];
    config.validate().unwrap();
    let trainer = Trainer::<f32>::from_config(&config).unwrap();
    let task = config.build_task().unwrap();
    let p = config.task.p as u32;
    for (k, (&seed, &fraction)) in [1u64, 2].iter().zip(&[0.4, 0.5]).enumerate() {
        let split = Split::of(SplitKind::Unordered, &task.pairs, fraction, seed).unwrap();
        let train = trainer.train_pairs(k);
        assert_eq!(*train, task.pairs.select(&split.train), "model {k}");
        assert_eq!(
            *trainer.test_pairs(k),
            task.pairs.select(&split.test),
            "model {k}"
        );
        let in_train: std::collections::HashSet<(u32, u32)> = train
            .a
            .iter()
            .zip(&train.b)
            .map(|(&a, &b)| (a, b))
            .collect();
        for &(a, b) in &in_train {
            assert!(
                in_train.contains(&(b, a)),
                "model {k}: ({a}, {b}) without its mirror"
            );
        }
        // round(fraction · p(p+1)/2) unordered pairs.
        let unordered = in_train.iter().filter(|(a, b)| a <= b).count();
        let groups = (p * (p + 1) / 2) as f64;
        assert_eq!(unordered, (fraction * groups).round() as usize, "model {k}");
    }
}
