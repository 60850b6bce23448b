//! `cargo bench --bench cuda_step [-- FILTER...]`: the device-resident training step
//! (CudaTrainer: one CUDA graph per step, metrics read back once per timed run) on the
//! issue's shapes, in every precision. Prints a table: µs per step, model-steps/s and
//! effective TFLOP/s = 6·p²·m·n_out·B / step time (shared/theory.md §1), plus the device
//! memory in use. Without a usable GPU it prints "no CUDA device: skipped" and exits 0.
//!
//! The `bits` row is seed 003's 30-bit parity task on the dense-input kernels
//! (kernels/dense_input.cu). The resident stepper declines dense models, so that row
//! times the host-stepped trainer (one pass per step through CudaBackend: weights up,
//! gradients down); its FLOPs are the dense pass's products, (4·N·n·m + 6·N·m·n_out)·B.
//!
//! FILTER words select rows by substring of their label, e.g. `p113` or `tf32`.

use clockwork::engine::cuda::{self, CudaBackend, Precision};
use clockwork::prelude::*;
use std::time::Instant;

struct Shape {
    /// Bit-string task (n bits, N training strings) instead of the p-table.
    bits: Option<(usize, usize)>,
    p: usize,
    m: usize,
    batch: usize,
    /// Timed steps (one read-back at the end).
    steps: u64,
    precisions: &'static [Precision],
}

const SHAPES: [Shape; 4] = [
    Shape {
        bits: None,
        p: 113,
        m: 512,
        batch: 1,
        steps: 2000,
        precisions: &Precision::ALL,
    },
    Shape {
        bits: None,
        p: 23,
        m: 96,
        batch: 1024,
        steps: 500,
        precisions: &Precision::ALL,
    },
    Shape {
        bits: None,
        p: 1009,
        m: 4032,
        batch: 1,
        steps: 3,
        precisions: &Precision::ALL,
    },
    Shape {
        bits: Some((30, 1200)),
        p: 0, // no table
        m: 64,
        batch: 1024,
        // Host-stepped (an optimizer step on the CPU per step): few steps, fp32 only, so
        // the row fits scripts/gpu-check.sh's time for this bench.
        steps: 30,
        precisions: &[Precision::Fp32],
    },
];

fn main() {
    // `cargo test --all-targets` runs bench targets without --bench: stay out of its way.
    if !std::env::args().any(|a| a == "--bench") {
        println!("cuda_step: benchmark not run (no --bench; use cargo bench --bench cuda_step)");
        return;
    }
    if let Err(e) = cuda::probe(0) {
        println!("no CUDA device: skipped ({e})");
        return;
    }
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    println!(
        "{:<28} {:>12} {:>16} {:>10} {:>12}",
        "shape", "µs/step", "model-steps/s", "TFLOP/s", "GPU mem MiB"
    );
    for s in &SHAPES {
        for &precision in s.precisions {
            let label = match s.bits {
                None => format!("p{}_m{}_B{}_{precision}", s.p, s.m, s.batch),
                Some((n, rows)) => format!("bits{n}_N{rows}_m{}_B{}_{precision}", s.m, s.batch),
            };
            if !filters.is_empty() && !filters.iter().any(|f| label.contains(f.as_str())) {
                continue;
            }
            match bench(s, precision) {
                Ok((us, mem)) => {
                    let flops = match s.bits {
                        None => 6.0 * (s.p * s.p * s.m * s.p * s.batch) as f64,
                        // parity: two classes
                        Some((n, rows)) => ((4 * n + 6 * 2) * rows * s.m * s.batch) as f64,
                    };
                    println!(
                        "{label:<28} {us:>12.1} {:>16.0} {:>10.2} {:>12}",
                        s.batch as f64 / (us * 1e-6),
                        flops / (us * 1e-6) / 1e12,
                        mem >> 20
                    );
                }
                Err(e) => println!("{label:<28} failed: {e}"),
            }
        }
    }
}

/// (µs per step, device bytes in use, device-wide, after the run).
fn bench(s: &Shape, precision: Precision) -> Result<(f64, usize)> {
    let mut config = RunConfig::default();
    match s.bits {
        None => config.task.p = s.p,
        Some((n, rows)) => {
            config.task.bits = Some(n);
            config.task.train_size = Some(rows);
            config.model.activation = clockwork::model::Activation::Relu;
        }
    }
    config.model.width = s.m;
    config.models = s.batch;
    config.device = clockwork::kinds::Device::Cuda(0);
    // A small lr keeps the work per step stable; no milestones.
    config.optimizer.lr = 1e-4;
    config.optimizer.lr_milestones.clear();
    let backend = CudaBackend::new(0, precision)?.with_read_every(s.steps as usize)?;
    let mut t = Trainer::<f32>::with_backend(&config, Box::new(backend))?;
    t.advance(s.steps.min(3), &mut |_| {})?; // capture the graph, warm up
    let start = Instant::now();
    t.advance(s.steps, &mut |_| {})?;
    let secs = start.elapsed().as_secs_f64();
    let (free, total) = cuda::memory_info(0)?;
    Ok((secs * 1e6 / s.steps as f64, total - free))
}
