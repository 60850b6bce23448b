//! Prints a table of step times and effective GFLOP/s for a few shapes (a quick
//! alternative to `cargo bench --bench step`).
//!
//! `cargo run --release --example step_timing -- [p m B [f32|f64]]`
//!
//! Environment: `TILE_ROWS`, `CHUNKS_PER_MODEL` and `MIN_CHUNK_WORK` override the tiling
//! ([`clockwork::engine::cpu::CpuOptions`]). Other kernels than the production one are
//! timed by the kernel harness: `cargo bench --bench cpu_kernels --features dev-kernels`.

use clockwork::prelude::*;
use clockwork::real::Real;
use std::time::Instant;

fn time<F: Real>(p: usize, m: usize, b: usize) -> Result<()> {
    let mut config = RunConfig::default();
    config.task.p = p;
    config.model.width = m;
    config.models = b;
    config.dtype = F::ELEMENT;
    config.optimizer.lr = 1e-4;
    config.optimizer.lr_milestones.clear();
    let mut options = clockwork::engine::cpu::CpuOptions::default();
    if let Ok(t) = std::env::var("TILE_ROWS") {
        options.tile_rows = t.parse().expect("TILE_ROWS is an integer");
    }
    if let Ok(t) = std::env::var("CHUNKS_PER_MODEL") {
        options.chunks_per_model = t.parse().expect("CHUNKS_PER_MODEL is an integer");
    }
    if let Ok(t) = std::env::var("MIN_CHUNK_WORK") {
        options.min_chunk_work = t.parse().expect("MIN_CHUNK_WORK is an integer");
    }
    let backend = clockwork::engine::cpu::CpuBackend::new(options)?;
    let mut trainer = Trainer::<F>::with_backend(&config, Box::new(backend))?;
    trainer.step()?;
    let flops = (6 * p * p * m * p * b) as f64;
    let mut best = f64::INFINITY;
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed().as_secs_f64() < 3.0 || n < 5 {
        let t = Instant::now();
        trainer.step()?;
        best = best.min(t.elapsed().as_secs_f64());
        n += 1;
    }
    let mean = start.elapsed().as_secs_f64() / n as f64;
    println!(
        "{:>4} {:>5} {:>4} {:>4}  mean {:>9.3} ms  best {:>9.3} ms  {:>7.1} GFLOP/s (mean)  {:>7.1} (best)",
        p, m, b, F::NAME, mean * 1e3, best * 1e3, flops / mean / 1e9, flops / best / 1e9
    );
    Ok(())
}

/// Peak resident memory of this process so far (Linux), in MB.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    println!("   p     m    B type");
    if args.len() >= 3 {
        let n = |i: usize| args[i].parse::<usize>().expect("p m B are integers");
        if args.get(3).map(String::as_str) == Some("f64") {
            time::<f64>(n(0), n(1), n(2))?;
            if let Some(mb) = peak_rss_mb() {
                println!("peak resident memory: {mb:.0} MB");
            }
            return Ok(());
        }
        time::<f32>(n(0), n(1), n(2))?;
        if let Some(mb) = peak_rss_mb() {
            println!("peak resident memory: {mb:.0} MB");
        }
        return Ok(());
    }
    for (p, m, b) in [(71, 500, 1), (113, 512, 1), (23, 96, 64)] {
        time::<f32>(p, m, b)?;
        time::<f64>(p, m, b)?;
    }
    Ok(())
}
