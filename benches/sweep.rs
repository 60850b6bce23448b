//! `cargo bench --bench sweep`: sweep throughput in model-steps per second — one trainer
//! stepping B models of one shape, as a sweep batch does — for p = 23, m = 96 (x²) and
//! the p = 67 explainer model at B = 1, 64, 1024, with the effective GFLOP/s of the three
//! big products (6·p²·m·p·B per step; the explainer's factored embedding adds work this
//! count leaves out), p = 113, m = 512 at B = 1 as the big-model efficiency the issue's
//! targets compare against (both ratios are printed under the table), and seed 003's
//! 30-bit parity task at B = 1024 (n = 30, k = 3, 1200 training strings, ReLU m = 64,
//! AdamW with L1; nine seeds, so nine training sets in the batch as in its phase
//! diagram; products 4·N·n·m + 6·N·m·2 per model), and p = 23 at B = 64, 1024 with
//! every model on its own split (seed k, fraction 0.5, as a sweep over seeds and
//! fractions trains it: one grouped pass). Also the cost of the sweep's
//! `histories.jsonl` for 1000 models × 200 evaluations (written and parsed back).
//!
//! Plain timing: a warm-up step, then five windows of at least 0.3 s and 2 steps (at
//! most 1000), each giving a wall time per step; the table prints their median and the
//! best window, and the CPU time per step over all five. Why windows: on a shared
//! machine a neighbour slows some windows by 10–40 % and never speeds one up, so the
//! best window is the steadier figure of what the code does, the median what a run
//! sees. Both target ratios are printed from each, and once more from seven pairs of
//! windows taken back to back from the two rows a ratio compares (the steadiest form on
//! a shared machine: the two rows of the table are timed seconds apart). Compare rows of
//! one run, and old against new builds interleaved. `cargo bench --bench sweep -- paired`
//! prints only the paired line (a quick A/B of the two targets).

use clockwork::layout::MetricsRecord;
use clockwork::prelude::*;
use clockwork::sweep::tables::histories_jsonl;
use std::time::Instant;

/// CPU seconds (user + system, all threads) this process has used so far, from
/// /proc/self/stat in clock ticks of 1/100 s (Linux's USER_HZ); None elsewhere.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the parenthesized command name; utime and stime are 14th and 15th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

/// Timing windows per row, and the least time and steps of one.
const WINDOWS: usize = 5;
const WINDOW_SECONDS: f64 = 0.3;

/// Seconds per step of a trainer for `config`: the median and the best of [`WINDOWS`]
/// windows of wall time, and the CPU time per step over all of them (None off Linux).
fn step_time(config: &RunConfig) -> (f64, f64, Option<f64>) {
    let mut t = Trainer::<f32>::from_config(config).expect("bench config is valid");
    t.step().expect("warm-up step");
    let cpu_started = cpu_seconds();
    let mut per_step = Vec::with_capacity(WINDOWS);
    let mut total = 0;
    for _ in 0..WINDOWS {
        let (seconds, steps) = window(&mut t);
        per_step.push(seconds);
        total += steps;
    }
    per_step.sort_by(f64::total_cmp);
    let cpu = cpu_seconds()
        .zip(cpu_started)
        .map(|(end, start)| (end - start) / total as f64);
    (per_step[WINDOWS / 2], per_step[0], cpu)
}

/// Seconds per step of one window of `t` (at least [`WINDOW_SECONDS`] and 2 steps, at
/// most 1000), and its steps.
fn window(t: &mut Trainer<f32>) -> (f64, usize) {
    let started = Instant::now();
    let mut n = 0;
    while n < 1000 && (n < 2 || started.elapsed().as_secs_f64() < WINDOW_SECONDS) {
        t.step().expect("step");
        n += 1;
    }
    (started.elapsed().as_secs_f64() / n as f64, n)
}

/// Pairs of windows alternating between two rows, for the target ratios.
const PAIRS: usize = 7;

/// `(work_a / s_a) / (work_b / s_b)` for [`PAIRS`] pairs of windows taken alternately
/// from a trainer for `a` and one for `b` (`work` per step: FLOPs, or models for a
/// per-model throughput), sorted. Why paired: the table's rows are timed seconds apart,
/// and a neighbour's load that changes in between moves a ratio of two rows by more than
/// the code does; two windows taken back to back see about the same machine.
fn paired_ratios(a: &RunConfig, work_a: f64, b: &RunConfig, work_b: f64) -> Vec<f64> {
    let mut ta = Trainer::<f32>::from_config(a).expect("bench config is valid");
    let mut tb = Trainer::<f32>::from_config(b).expect("bench config is valid");
    ta.step().expect("warm-up step");
    tb.step().expect("warm-up step");
    let mut ratios: Vec<f64> = (0..PAIRS)
        .map(|_| (work_a / window(&mut ta).0) / (work_b / window(&mut tb).0))
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios
}

/// "median (min–max)" of sorted ratios.
fn spread(ratios: &[f64]) -> String {
    format!(
        "{:.2} ({:.2}–{:.2})",
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1]
    )
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

/// p = 23, m = 96 as a sweep over seeds and splits trains it: model k has seed k and
/// train fraction 0.5, so every model trains on its own pairs (B split groups in one
/// grouped pass).
fn x2_splits(b: usize) -> RunConfig {
    let mut c = x2(b);
    c.task.train_fraction = 0.5;
    c.per_model.seed = (0..b as u64).collect();
    c
}

/// Seed 003's 1s-and-0s model: 30 bits, parity of 3, 1200 training strings, ReLU
/// m = 64, AdamW + L1; model k's seed is k mod 9 (nine training sets per batch).
fn bits30(b: usize) -> RunConfig {
    let mut c = RunConfig::default();
    c.task.bits = Some(30);
    c.task.parity_k = Some(3);
    c.task.train_size = Some(1200);
    c.model.width = 64;
    c.model.activation = Activation::Relu;
    c.model.init_scale = 0.1;
    c.train.regularizer = RegularizerKind::L1;
    c.train.reg_strength = 1e-4;
    c.optimizer.kind = OptimizerKind::Adamw;
    c.optimizer.lr = 1e-3;
    c.optimizer.lr_milestones.clear();
    c.models = b;
    c.per_model.seed = (0..b as u64).map(|k| k % 9).collect();
    c
}

/// Multiply-adds ×2 of one step's products, per model: the table's 6·p²·m·p, or for
/// a bit-string task X·U, Xᵀ·dS (2·N·n·m each) and the three W products (2·N·m·2).
fn step_flops(config: &RunConfig) -> f64 {
    let m = config.model.width as f64;
    match (config.task.bits, config.task.train_size) {
        (Some(n), Some(rows)) => 4.0 * rows as f64 * n as f64 * m + 12.0 * rows as f64 * m,
        _ => {
            let p = config.task.p as f64;
            let rows = (p * p * config.task.train_fraction).round();
            6.0 * rows * m * p
        }
    }
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

/// p = 113, m = 512 (x²), the big-model efficiency the small batches are held to.
fn big(b: usize) -> RunConfig {
    let mut c = x2(b);
    c.task.p = 113;
    c.model.width = 512;
    c
}

fn main() {
    // `cargo bench --bench sweep -- FILTER...`: only rows whose "name B=…" contains a
    // filter (the target ratios need every row, so they print only without filters);
    // `-- paired`: only the paired-window ratios (a quick A/B of the two targets).
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if filters.iter().any(|f| f == "paired") {
        paired();
        return;
    }
    println!(
        "| model | B | ms/step (median) | best | model-steps/s | GFLOP/s (products) | best GFLOP/s | CPU ms/step | model-steps per CPU-s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    /// A row group of the table: its name, its config at batch size B, the B to time.
    type Shape = (&'static str, fn(usize) -> RunConfig, &'static [usize]);
    let shapes: [Shape; 5] = [
        ("p=23 m=96 x²", x2, &[1, 64, 1024]),
        ("p=67 explainer", explainer, &[1, 64, 1024]),
        ("p=113 m=512 x²", big, &[1]),
        ("30-bit parity (seed 003)", bits30, &[1024]),
        ("p=23 m=96 x², own split each", x2_splits, &[64, 1024]),
    ];
    // Seconds per step (median, best) and FLOPs per step of each row, for the targets.
    let mut rows = Vec::new();
    for (name, make, batches) in shapes {
        for &b in batches {
            let label = format!("{name} B={b}");
            if !filters.is_empty() && !filters.iter().any(|f| label.contains(f.as_str())) {
                continue;
            }
            let config = make(b);
            let (median, best, cpu) = step_time(&config);
            let flops = step_flops(&config) * b as f64;
            let (cpu_ms, per_cpu_s) = match cpu {
                Some(c) => (format!("{:.2}", 1e3 * c), format!("{:.0}", b as f64 / c)),
                None => ("-".into(), "-".into()),
            };
            println!(
                "| {name} | {b} | {:.2} | {:.2} | {:.0} | {:.1} | {:.1} | {cpu_ms} | {per_cpu_s} |",
                1e3 * median,
                1e3 * best,
                b as f64 / median,
                flops / median / 1e9,
                flops / best / 1e9
            );
            rows.push((median, best, flops, b as f64));
        }
    }
    if !filters.is_empty() {
        return;
    }
    // Row i's work per second over row j's, from the median (pick 0) or the best window
    // (pick 1): the work is models (per-model throughput, `batching`) or FLOPs
    // (`efficiency`).
    let time = |i: usize, pick: usize| if pick == 0 { rows[i].0 } else { rows[i].1 };
    let ratio = |i: usize, j: usize, pick: usize, work: fn(&(f64, f64, f64, f64)) -> f64| {
        (work(&rows[i]) / time(i, pick)) / (work(&rows[j]) / time(j, pick))
    };
    let batching = |i: usize, j: usize, pick: usize| ratio(i, j, pick, |r| r.3);
    let efficiency = |i: usize, j: usize, pick: usize| ratio(i, j, pick, |r| r.2);
    println!(
        "batching pays (per-model throughput at B = 1024 / B = 1, target ≥ 3): \
         p=23 m=96 {:.2}× (best windows {:.2}×), explainer {:.2}× ({:.2}×)",
        batching(2, 0, 0),
        batching(2, 0, 1),
        batching(5, 3, 0),
        batching(5, 3, 1)
    );
    println!(
        "small-model efficiency (GFLOP/s of p=23 m=96 B=1024 / p=113 m=512 B=1, \
         target ≥ 0.70): {:.2} (best windows {:.2})",
        efficiency(2, 6, 0),
        efficiency(2, 6, 1)
    );
    paired();
    histories();
}

/// The two target ratios from [`PAIRS`] pairs of windows taken back to back.
fn paired() {
    let (small, big_model) = (x2(1024), big(1));
    let efficiency_pairs = paired_ratios(
        &small,
        step_flops(&small) * 1024.0,
        &big_model,
        step_flops(&big_model),
    );
    let batching_pairs = paired_ratios(&small, 1024.0, &x2(1), 1.0);
    println!(
        "paired windows ({PAIRS} pairs, each a window of one row then one of the other; \
         median (min–max)): small-model efficiency {}, batching pays (p=23 m=96) {}×",
        spread(&efficiency_pairs),
        spread(&batching_pairs)
    );
}
