//! Per-model hyperparameters: a batch of eight models with eight different settings,
//! trained together in one batched pass, equals each model trained alone — bit for bit,
//! in f32 and f64, under GD and AdamW.

use clockwork::config::PerModelConfig;
use clockwork::kinds::{Dtype, OptimizerKind, RegularizerKind};
use clockwork::prelude::*;
use clockwork::real::Real;

mod common;

const MODELS: usize = 8;
const STEPS: usize = 25;

fn base(kind: OptimizerKind, dtype: Dtype) -> RunConfig {
    let mut c = RunConfig {
        dtype,
        ..RunConfig::default()
    };
    c.task.p = 13;
    c.model.width = 24;
    c.train.regularizer = RegularizerKind::L23;
    c.optimizer.kind = kind;
    c.optimizer.lr_milestones = vec![10, 20];
    if kind == OptimizerKind::Adamw {
        c.optimizer.lr = 3e-3;
        c.optimizer.lr_factor = 1.5;
    }
    c
}

/// Eight different settings: every per-model key differs between models, and the train
/// fractions make four different splits (three models share the seed-2, 0.7 split).
fn per_model(kind: OptimizerKind) -> PerModelConfig {
    let lr_scale = if kind == OptimizerKind::Adamw {
        3e-3
    } else {
        0.05
    };
    PerModelConfig {
        seed: vec![0, 1, 2, 2, 4, 2, 6, 7],
        train_fraction: vec![1.0, 0.5, 0.7, 0.7, 1.0, 0.7, 0.9, 0.6],
        ..common::eight_settings(kind, lr_scale)
    }
}

/// Model `k` of the batch as a one-model config with plain scalar keys.
fn alone(batch: &RunConfig, k: usize) -> RunConfig {
    let pm = &batch.per_model;
    let mut c = batch.clone();
    c.models = 1;
    c.per_model = PerModelConfig::default();
    c.seed = pm.seed[k];
    c.optimizer.lr = pm.lr[k];
    if let Some(&wd) = pm.weight_decay.get(k) {
        c.optimizer.weight_decay = wd;
    }
    c.train.reg_strength = pm.reg_strength[k];
    c.optimizer.grokfast_lambda = pm.grokfast_lambda[k];
    c.model.init_scale = pm.init_scale[k];
    c.task.train_fraction = pm.train_fraction[k];
    c
}

/// Final parameters and every step's (train loss, reg loss) of each model.
fn train<F: Real>(config: &RunConfig) -> (Vec<F>, Vec<Vec<(f64, f64)>>) {
    let mut trainer = Trainer::<F>::from_config(config).unwrap();
    let mut curves = vec![Vec::new(); config.models];
    for _ in 0..STEPS {
        let report = trainer.step().unwrap();
        for (k, curve) in curves.iter_mut().enumerate() {
            curve.push((report.train[k].loss, report.reg_loss[k]));
        }
    }
    (trainer.state().unwrap().params, curves)
}

fn together_equals_alone<F: Real>(kind: OptimizerKind) {
    let mut batch = base(kind, F::ELEMENT);
    batch.models = MODELS;
    batch.per_model = per_model(kind);
    batch.validate().unwrap();
    let (params, curves) = train::<F>(&batch);
    let n = params.len() / MODELS;
    for k in 0..MODELS {
        let (alone_params, alone_curves) = train::<F>(&alone(&batch, k));
        assert_eq!(
            alone_curves[0],
            curves[k],
            "{kind:?} {}: model {k}'s losses differ from the model trained alone",
            F::NAME
        );
        assert!(
            alone_params[..] == params[k * n..(k + 1) * n],
            "{kind:?} {}: model {k}'s parameters differ from the model trained alone",
            F::NAME
        );
    }
    // The settings matter: no two models end up equal.
    for k in 1..MODELS {
        assert!(
            params[..n] != params[k * n..(k + 1) * n],
            "model {k} equals model 0"
        );
    }
}

#[test]
fn eight_settings_together_equal_each_alone_gd_f64() {
    together_equals_alone::<f64>(OptimizerKind::Gd);
}

#[test]
fn eight_settings_together_equal_each_alone_gd_f32() {
    together_equals_alone::<f32>(OptimizerKind::Gd);
}

#[test]
fn eight_settings_together_equal_each_alone_adamw_f64() {
    together_equals_alone::<f64>(OptimizerKind::Adamw);
}

#[test]
fn eight_settings_together_equal_each_alone_adamw_f32() {
    together_equals_alone::<f32>(OptimizerKind::Adamw);
}

#[test]
fn evaluation_reports_each_models_own_split_lr_and_gamma_star() {
    let mut batch = base(OptimizerKind::Gd, Dtype::F64);
    batch.models = MODELS;
    batch.per_model = per_model(OptimizerKind::Gd);
    let mut trainer = Trainer::<f64>::from_config(&batch).unwrap();
    let eval = trainer.evaluate().unwrap();
    let test = eval.test.as_ref().expect("some models hold pairs out");
    for (k, s) in batch.model_settings().iter().enumerate() {
        let table = 13 * 13;
        let n_train = (s.train_fraction * table as f64).round() as usize;
        assert_eq!(eval.train[k].count, n_train, "model {k}");
        assert_eq!(test[k].count, table - n_train, "model {k}");
        assert_eq!(trainer.train_pairs(k).len(), n_train);
        assert_eq!(eval.lr[k], s.lr);
        // γ* only where the model trains on the whole table.
        assert_eq!(
            eval.gamma_star[k].is_some(),
            s.train_fraction == 1.0,
            "model {k}"
        );
    }
}

#[test]
fn per_model_lists_of_the_wrong_length_or_range_are_named() {
    let mut c = base(OptimizerKind::Gd, Dtype::F32);
    c.models = 3;
    c.per_model.lr = vec![0.1, 0.2];
    let e = c.validate().unwrap_err().to_string();
    assert!(
        e.contains("per_model.lr") && e.contains("models = 3"),
        "{e}"
    );
    c.per_model.lr = vec![0.1, -0.2, 0.3];
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("per_model.lr[1] = -0.2"), "{e}");
    c.per_model.lr.clear();
    c.per_model.train_fraction = vec![1.0, 0.5, 1.5];
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("per_model.train_fraction[2] = 1.5"), "{e}");
    c.per_model.train_fraction.clear();
    c.per_model.weight_decay = vec![0.0, 0.1, 0.0];
    let e = c.validate().unwrap_err().to_string();
    assert!(
        e.contains("per_model.weight_decay[1]") && e.contains("AdamW"),
        "{e}"
    );
}

#[test]
fn per_model_section_round_trips_through_toml_and_is_absent_when_unused() {
    let plain = RunConfig::default();
    assert!(!plain.to_toml().contains("per_model"));
    let mut c = base(OptimizerKind::Adamw, Dtype::F32);
    c.models = MODELS;
    c.per_model = per_model(OptimizerKind::Adamw);
    let text = c.to_toml();
    assert!(text.contains("[per_model]"), "{text}");
    assert_eq!(RunConfig::from_toml(&text).unwrap(), c);
}
