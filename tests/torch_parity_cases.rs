//! The engine against PyTorch autograd beyond the one case of tests/torch_parity.rs:
//! ReLU and x³, tied and factored embeddings, MSE, the L2 and L_{2,3} penalties through
//! the factors, GD and AdamW (several steps, so the moments and bias corrections count).
//!
//! The expected values are benches/reference/torch_parity_cases.json, written by
//! benches/reference/torch_parity_cases.py (float64 PyTorch, its own model code written
//! from the definitions; the torch version is recorded in the file). Regenerate with
//! `python benches/reference/torch_parity_cases.py > benches/reference/torch_parity_cases.json`.
//! Each case sets the same deterministic init in both, compares the objective and its
//! gradient at the init, then the parameters and the objective after the optimizer's
//! steps, all in f64 to 1e-10.

use clockwork::config::RunConfig;
use clockwork::kinds::{Dtype, Loss, OptimizerKind, RegularizerKind};
use clockwork::train::Trainer;
use serde_json::Value;

const FIXTURE: &str = include_str!("../benches/reference/torch_parity_cases.json");
const TOL: f64 = 1e-10;

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("fixture: {key} is not a number"))
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("fixture: {key} is not a string"))
}

/// A config enum from its TOML spelling in the fixture (e.g. `"l2"`, `"adamw"`).
fn parse<T: serde::de::DeserializeOwned>(v: &Value, key: &str) -> T {
    serde_json::from_value(v[key].clone())
        .unwrap_or_else(|e| panic!("fixture: {key} = {}: {e}", v[key]))
}

fn close(case: &str, what: &str, got: f64, want: f64, scale: f64) {
    let err = (got - want).abs();
    assert!(
        err <= TOL * scale.max(want.abs()),
        "{case}: {what}: clockwork {got:e}, PyTorch {want:e} (error {err:e}, scale {scale:e})"
    );
}

/// The run config of a fixture case (every pair trained on, no schedule).
fn config_of(case: &Value) -> RunConfig {
    let mut c = RunConfig {
        dtype: Dtype::F64,
        ..RunConfig::default()
    };
    c.task.p = case["p"].as_u64().unwrap() as usize;
    c.model.width = case["m"].as_u64().unwrap() as usize;
    c.model.embed_dim = case["d"].as_u64().unwrap() as usize;
    c.model.tied = case["tied"].as_bool().unwrap();
    c.model.activation = parse(case, "activation");
    c.train.loss = parse::<Loss>(case, "loss");
    c.train.regularizer = parse::<RegularizerKind>(case, "regularizer");
    c.train.reg_strength = num(case, "reg_strength");
    c.optimizer.kind = parse::<OptimizerKind>(case, "optimizer");
    c.optimizer.lr = num(case, "lr");
    c.optimizer.lr_milestones = Vec::new();
    c.optimizer.weight_decay = num(case, "weight_decay");
    c.optimizer.beta1 = num(case, "beta1");
    c.optimizer.beta2 = num(case, "beta2");
    c.optimizer.eps = num(case, "eps");
    c.validate().unwrap();
    c
}

/// Checks a tensor's norm and its entries 0, 7 and last against the fixture's record.
fn check_tensor(case: &str, what: &str, values: &[f64], want: &Value) {
    let norm = values.iter().map(|x| x * x).sum::<f64>().sqrt();
    close(case, &format!("|{what}|"), norm, num(want, "norm"), 0.0);
    let picks = [0, 7, values.len() - 1];
    for (k, &i) in picks.iter().enumerate() {
        let w = want["entries"][k].as_f64().unwrap();
        close(case, &format!("{what}[{i}]"), values[i], w, norm);
    }
}

fn check_case(case: &Value) {
    let name = text(case, "name");
    let config = config_of(case);
    let mut trainer = Trainer::<f64>::from_config(&config).unwrap();
    let tensors = config.model_spec().tensors();

    // The fixture's init: tensor t, flat index j: 0.4·sin(0.37·j + 1.3·t + 0.2).
    let mut state = trainer.state().unwrap();
    let mut offset = 0;
    for (t, (_, shape)) in tensors.iter().enumerate() {
        for j in 0..shape[0] * shape[1] {
            state.params[offset + j] = 0.4 * (0.37 * j as f64 + 1.3 * t as f64 + 0.2).sin();
        }
        offset += shape[0] * shape[1];
    }
    assert_eq!(offset, state.params.len(), "{name}: tensor layout");
    trainer.restore(state).unwrap();

    let (stats, reg) = trainer.compute_gradients().unwrap();
    close(
        name,
        "data loss",
        stats[0].loss,
        num(case, "data_loss"),
        0.0,
    );
    close(name, "penalty", reg[0], num(case, "reg_loss"), 1e-300);
    let grads = trainer.param_grads().to_vec();
    let mut offset = 0;
    for (tensor, shape) in &tensors {
        let len = shape[0] * shape[1];
        let g = &grads[offset..offset + len];
        check_tensor(name, &format!("d{tensor}"), g, &case["grads"][*tensor]);
        offset += len;
    }

    let steps = case["steps"].as_u64().unwrap();
    for _ in 0..steps {
        trainer.step().unwrap();
    }
    let eval = trainer.evaluate().unwrap();
    close(
        name,
        &format!("data loss after {steps} steps"),
        eval.train[0].loss,
        num(case, "data_loss_after"),
        0.0,
    );
    close(
        name,
        &format!("penalty after {steps} steps"),
        eval.reg_loss[0],
        num(case, "reg_loss_after"),
        1e-300,
    );
    let params = trainer.state().unwrap().params;
    let mut offset = 0;
    for (tensor, shape) in &tensors {
        let len = shape[0] * shape[1];
        check_tensor(
            name,
            &format!("{tensor} after {steps} steps"),
            &params[offset..offset + len],
            &case["params_after"][*tensor],
        );
        offset += len;
    }
}

#[test]
fn every_case_matches_pytorch() {
    let fixture: Value = serde_json::from_str(FIXTURE).expect("the fixture is JSON");
    let cases = fixture["cases"].as_array().expect("fixture: cases");
    assert!(cases.len() >= 6, "fixture has {} cases", cases.len());
    let mut covered = std::collections::BTreeSet::new();
    for case in cases {
        check_case(case);
        for key in ["activation", "loss", "optimizer", "regularizer"] {
            covered.insert(text(case, key).to_string());
        }
        if case["tied"].as_bool().unwrap() {
            covered.insert("tied".into());
        }
        if case["d"].as_u64().unwrap() > 0 {
            covered.insert("factored".into());
        }
    }
    for need in ["relu", "mse", "adamw", "tied", "factored", "l2"] {
        assert!(covered.contains(need), "no case covers {need}");
    }
}
