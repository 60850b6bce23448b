//! `cargo bench --bench sweep`: sweep throughput in model-steps per second — one trainer
//! stepping B models of one shape, as a sweep batch does — for p = 23, m = 96 (x²) and
//! the p = 67 explainer model at B = 1, 64, 1024, with the effective GFLOP/s of the three
//! big products (6·p²·m·p·B per step; the explainer's factored embedding adds work this
//! count leaves out). Also the cost of the sweep's `histories.jsonl` for 1000 models ×
//! 200 evaluations (written and parsed back).
//!
//! Plain timing (a warm-up step, then steps until 2 s or 50 steps), printed as one table;
//! figures from a loaded machine are noisy, so compare rows of one run.

use clockwork::layout::MetricsRecord;
use clockwork::prelude::*;
use clockwork::sweep::tables::histories_jsonl;
use std::time::Instant;

/// Seconds per step of a trainer for `config`.
fn step_time(config: &RunConfig) -> f64 {
    let mut t = Trainer::<f32>::from_config(config).expect("bench config is valid");
    t.step().expect("warm-up step");
    let started = Instant::now();
    let mut n = 0;
    while n < 50 && (n < 2 || started.elapsed().as_secs_f64() < 2.0) {
        t.step().expect("step");
        n += 1;
    }
    started.elapsed().as_secs_f64() / n as f64
}

fn x2(b: usize) -> RunConfig {
    let mut c = RunConfig::default();
    c.task.p = 23;
    c.model.width = 96;
    c.models = b;
    // A small lr keeps the work per step stable.
    c.optimizer.lr = 1e-4;
    c.optimizer.lr_milestones.clear();
    c
}

fn explainer(b: usize) -> RunConfig {
    let mut c = preset("explainer").expect("a preset");
    c.models = b;
    c
}

fn histories() {
    let (models, evals) = (1000, 200);
    let records: Vec<MetricsRecord> = (0..models)
        .flat_map(|m| {
            (0..evals).map(move |e| MetricsRecord {
                step: e * 250,
                model: m,
                lr: Some(1e-3),
                train_loss: Some(1.0 / (1.0 + e as f64)),
                train_acc: Some(0.5 + e as f64 / 400.0),
                test_loss: Some(2.0 / (1.0 + e as f64)),
                test_acc: Some(0.3 + e as f64 / 300.0),
                margin: Some(-1e-3 + e as f64 * 1e-5),
                gamma_star: None,
                reg_loss: Some(0.1),
                elapsed_s: None,
                stopped_at: None,
                ..MetricsRecord::default()
            })
        })
        .collect();
    let started = Instant::now();
    let text = histories_jsonl(&records);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("histories.jsonl");
    std::fs::write(&path, &text).expect("write");
    let write_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let back: Vec<MetricsRecord> = std::fs::read_to_string(&path)
        .expect("read")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a record"))
        .collect();
    let read_s = started.elapsed().as_secs_f64();
    assert_eq!(back.len(), records.len());
    println!(
        "histories.jsonl, {models} models × {evals} evaluations = {} lines, {:.1} MB: \
         written in {:.2} s, parsed back in {:.2} s",
        records.len(),
        text.len() as f64 / 1e6,
        write_s,
        read_s
    );
}

fn main() {
    println!("| model | B | ms/step | model-steps/s | GFLOP/s (products) |");
    println!("|---|---:|---:|---:|---:|");
    type Shape = (&'static str, fn(usize) -> RunConfig);
    let shapes: [Shape; 2] = [("p=23 m=96 x²", x2), ("p=67 explainer", explainer)];
    for (name, make) in shapes {
        for b in [1, 64, 1024] {
            let config = make(b);
            let s = step_time(&config);
            let (p, m) = (config.task.p as f64, config.model.width as f64);
            let flops = 6.0 * p * p * m * p * b as f64;
            println!(
                "| {name} | {b} | {:.2} | {:.0} | {:.1} |",
                1e3 * s,
                b as f64 / s,
                flops / s / 1e9
            );
        }
    }
    histories();
}
