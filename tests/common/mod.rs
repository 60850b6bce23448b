//! Helpers shared by the integration tests (`mod common;` in a test file).
//!
//! Each test file is its own crate and uses only some of these, hence the
//! `dead_code` allowance.
#![allow(dead_code)]

use clockwork::config::RunConfig;
use clockwork::kinds::Dtype;
use clockwork::model::{Activation, ModelSpec};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

/// Prints a line past the test harness's output capture (it captures `eprintln!`, not
/// the stderr handle), so a note such as a skipped or failed precondition shows in a
/// plain `cargo test`.
pub fn say(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// An untied, unfactored p → p model of width `m` with init scale 0.5.
pub fn spec(p: usize, m: usize, activation: Activation) -> ModelSpec {
    ModelSpec {
        n_in: p,
        n_out: p,
        width: m,
        activation,
        tied: false,
        embed_dim: None,
        dense: false,
        init_scale: 0.5,
    }
}

/// The default recipe at task size `p`, width `m`, `models` models (f32).
pub fn config(p: usize, m: usize, models: usize) -> RunConfig {
    let mut c = RunConfig::default();
    c.task.p = p;
    c.model.width = m;
    c.models = models;
    c
}

/// The default recipe in f64 at task size `p`, width `m`, one model.
pub fn f64_config(p: usize, m: usize) -> RunConfig {
    let mut c = RunConfig {
        dtype: Dtype::F64,
        ..RunConfig::default()
    };
    c.task.p = p;
    c.model.width = m;
    c
}

/// ‖a − b‖ / ‖b‖ (0 when both are 0).
pub fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "rel_err of different lengths");
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>();
    let den: f64 = b.iter().map(|y| y * y).sum::<f64>();
    (num / den.max(1e-60)).sqrt()
}

pub fn to64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The `train` binary of this build.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_train"))
}

/// Runs the `train` binary with `args` to the end.
pub fn train(args: &[&str]) -> Output {
    bin().args(args).output().expect("the train binary runs")
}

/// Asserts that a binary exited with status 0, showing its stdout and stderr if not.
pub fn assert_success(o: &Output) {
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
}

/// Every line of RUN/metrics.jsonl, parsed (none when it is missing).
pub fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join(clockwork::layout::METRICS_FILE))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Metrics lines without the wall-clock field (what two runs of the same steps share).
pub fn metrics_without_time(dir: &Path) -> Vec<serde_json::Value> {
    let mut lines = metrics(dir);
    for v in &mut lines {
        v.as_object_mut().unwrap().remove("elapsed_s");
    }
    lines
}

/// Panics with "needs a GPU" and the reason unless cuda:0 is usable. For the tests
/// marked `#[ignore = "needs a GPU"]`: they run only when asked for (`--ignored`, as
/// scripts/gpu-check.sh does), and then a missing GPU is a failure, never a silent pass.
pub fn require_gpu() {
    if let Err(e) = clockwork::engine::cuda::probe(0) {
        panic!("needs a GPU: cuda:0 is not usable here ({e})");
    }
}

/// Eight different per-model settings (learning rates `lr_scale` × eight factors, weight
/// decays under AdamW, regularizer strengths, Grokfast λs, init scales); seeds and train
/// fractions are left to the caller.
pub fn eight_settings(
    kind: clockwork::kinds::OptimizerKind,
    lr_scale: f64,
) -> clockwork::config::PerModelConfig {
    let adamw = kind == clockwork::kinds::OptimizerKind::Adamw;
    clockwork::config::PerModelConfig {
        lr: [1.0, 0.5, 2.0, 1.0, 1.5, 0.8, 1.2, 0.3]
            .iter()
            .map(|x| x * lr_scale)
            .collect(),
        weight_decay: if adamw {
            vec![0.0, 0.1, 1.0, 0.5, 0.0, 2.0, 0.3, 0.05]
        } else {
            Vec::new()
        },
        reg_strength: vec![1e-4, 0.0, 1e-3, 1e-4, 5e-4, 0.0, 2e-4, 1e-2],
        grokfast_lambda: vec![0.0, 0.0, 2.0, 0.5, 0.0, 1.0, 0.0, 3.0],
        init_scale: vec![0.5, 0.3, 0.7, 0.5, 1.0, 0.4, 0.6, 0.5],
        ..Default::default()
    }
}
