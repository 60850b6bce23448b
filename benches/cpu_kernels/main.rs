//! The CPU kernel harness, in the style of llm.c's dev/cuda: numbered versions of the
//! fused tile kernel, each checked against the plain-loop f64 reference
//! (`clockwork::engine::reference`) and timed side by side in one table.
//!
//! ```sh
//! cargo bench --bench cpu_kernels --features dev-kernels            # checks + timing table
//! cargo bench --bench cpu_kernels --features dev-kernels -- p113    # only shapes matching
//! cargo test --release --bench cpu_kernels --features dev-kernels   # the checks alone
//! ```
//!
//! | version | products of a tile | file |
//! |---|---|---|
//! | v1 | matrixmultiply `sgemm`/`dgemm` | v1_matrixmultiply.rs |
//! | v2 | hand-written 6×16 AVX2+FMA microkernel, σ'-scatter fused into `G·W` (f32) | v2_fused_avx2.rs |
//! | v3 | the production `CpuBackend`: narrow kernels (f32, ≤ 64 classes), else the `gemm` crate | v3_production.rs |
//!
//! Every version runs inside the production backend's chunking, thread pool and
//! fixed-order reduction (`engine::cpu::dev`, the `dev-kernels` feature), so the table
//! compares the tile kernels alone. A pass is one loss-and-gradient evaluation (forward,
//! softmax-CE, backward over all p² pairs; no optimizer), GFLOP/s = 6·p²·m·p·B / time.
//! Versions alternate within each round so the load of a shared machine falls on all
//! of them alike; the table gives the median pass over all rounds.
//!
//! Without `--bench` (how `cargo test` runs a bench target) only the checks run.

mod v1_matrixmultiply;
#[cfg(target_arch = "x86_64")]
mod v2_fused_avx2;
mod v3_production;

use clockwork::engine::cpu::{dev, CpuBackend, CpuOptions};
use clockwork::engine::{reference, CoreSpec, Loss, PassStats};
use clockwork::model::{Activation, ModelSpec, Params, Weights};
use clockwork::task::{Op, PairSet, Split, Task};
use clockwork::Result;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

/// The element types the harness runs, and which versions support each.
trait Elem: v1_matrixmultiply::MmGemm {
    /// Largest relative error against the f64 reference that passes.
    const TOLERANCE: f64;
    /// One pass of version `version` (1, 2, 3); `None` where it does not run (v2 in f64
    /// or without AVX2).
    fn pass(
        version: usize,
        backend: &CpuBackend,
        core: CoreSpec,
        weights: &Weights<Self>,
        pairs: &PairSet,
        grads: Option<&mut Weights<Self>>,
    ) -> Option<Result<Vec<PassStats>>>;
}

impl Elem for f32 {
    const TOLERANCE: f64 = 1e-5;
    fn pass(
        version: usize,
        backend: &CpuBackend,
        core: CoreSpec,
        weights: &Weights<f32>,
        pairs: &PairSet,
        grads: Option<&mut Weights<f32>>,
    ) -> Option<Result<Vec<PassStats>>> {
        match version {
            1 => Some(v1_matrixmultiply::pass(
                backend, core, weights, pairs, grads,
            )),
            #[cfg(target_arch = "x86_64")]
            2 => v2_fused_avx2::pass(backend, core, weights, pairs, grads),
            3 => Some(v3_production::pass(backend, core, weights, pairs, grads)),
            _ => None,
        }
    }
}

impl Elem for f64 {
    // Only the summation order differs from the reference.
    const TOLERANCE: f64 = 1e-12;
    fn pass(
        version: usize,
        backend: &CpuBackend,
        core: CoreSpec,
        weights: &Weights<f64>,
        pairs: &PairSet,
        grads: Option<&mut Weights<f64>>,
    ) -> Option<Result<Vec<PassStats>>> {
        match version {
            1 => Some(v1_matrixmultiply::pass(
                backend, core, weights, pairs, grads,
            )),
            3 => Some(v3_production::pass(backend, core, weights, pairs, grads)),
            _ => None,
        }
    }
}

const VERSIONS: [(usize, &str); 3] = [(1, "matrixmultiply"), (2, "fused avx2"), (3, "production")];

/// The timed shapes (p, m, B): those of `cargo bench --bench step`.
const SHAPES: [(usize, usize, usize); 3] = [(71, 500, 1), (113, 512, 1), (23, 96, 64)];

/// One problem: B models of one spec over a pair set, with its reference result.
struct Problem<F> {
    core: CoreSpec,
    spec: ModelSpec,
    weights: Weights<F>,
    pairs: PairSet,
    ref_stats: Vec<PassStats>,
    ref_grads: Weights<f64>,
}

impl<F: Elem> Problem<F> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        p: usize,
        m: usize,
        batch: usize,
        activation: Activation,
        loss: Loss,
        fraction: f64,
        seed: u64,
    ) -> Problem<F> {
        let task = Task::modular(Op::Add, p).expect("p >= 2");
        let pairs = if fraction >= 1.0 {
            task.pairs.clone()
        } else {
            let split = Split::new(task.len(), fraction, seed).expect("valid fraction");
            task.pairs.select(&split.train)
        };
        let spec = ModelSpec {
            n_in: p,
            n_out: p,
            width: m,
            activation,
            tied: false,
            embed_dim: None,
            dense: false,
            init_scale: 0.5,
        };
        let weights = Params::<F>::init(&spec, batch, seed)
            .expect("valid spec")
            .effective();
        let core = CoreSpec { activation, loss };
        let mut ref_grads = Weights::<f64>::zeros(&spec, batch);
        let ref_stats = reference::loss_and_grad(core, &weights, &pairs, Some(&mut ref_grads));
        Problem {
            core,
            spec,
            weights,
            pairs,
            ref_stats,
            ref_grads,
        }
    }

    /// Version `version`'s largest relative error against the reference (loss, margins,
    /// the three gradients), after checking that a forward-only pass reports the same
    /// statistics; `None` if the version does not run here. Panics on an error above
    /// the tolerance, so `cargo test` fails.
    fn check(&self, version: usize, backend: &CpuBackend, what: &str) -> Option<f64> {
        let mut grads = Weights::zeros(&self.spec, self.weights.batch);
        let (core, weights, pairs) = (self.core, &self.weights, &self.pairs);
        let stats =
            F::pass(version, backend, core, weights, pairs, Some(&mut grads))?.expect("pass runs");
        let forward = F::pass(version, backend, core, weights, pairs, None)?.expect("pass runs");
        assert_eq!(
            forward, stats,
            "v{version} forward-only statistics ({what})"
        );
        let mut worst = 0.0f64;
        for (s, r) in stats.iter().zip(&self.ref_stats) {
            assert_eq!(s.count, r.count, "v{version} ({what})");
            worst = worst.max((s.loss - r.loss).abs() / r.loss.abs().max(1e-3));
            let margin = (s.min_margin - r.min_margin).abs() / r.min_margin.abs().max(1.0);
            assert!(
                margin <= 10.0 * F::TOLERANCE,
                "v{version} min margin {} vs {} ({what})",
                s.min_margin,
                r.min_margin
            );
        }
        let g = grads.cast::<f64>();
        for (got, want) in [
            (&g.u, &self.ref_grads.u),
            (&g.v, &self.ref_grads.v),
            (&g.w, &self.ref_grads.w),
        ] {
            worst = worst.max(rel_err(got, want));
        }
        assert!(
            worst < F::TOLERANCE,
            "v{version} {}: relative error {worst:.2e} ({what})",
            F::NAME
        );
        Some(worst)
    }
}

/// ‖a − b‖ / ‖b‖.
fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum();
    let den: f64 = b.iter().map(|y| y * y).sum();
    num.sqrt() / den.sqrt().max(1e-30)
}

/// Every version on small problems of every activation and loss, with tiles and chunks
/// small enough to exercise edges, padding and the reduction: the fixed cases and 24
/// random ones (the cases tests/engine_vs_reference.rs runs on the production path).
/// Returns per version: cases run and the worst error.
fn check_small<F: Elem>() -> Vec<(usize, f64)> {
    let mut cases = Vec::new();
    for act in [Activation::Square, Activation::Relu, Activation::Pow(3)] {
        for loss in [Loss::CrossEntropy, Loss::Mse] {
            cases.push((7, 12, 2, 16, act, loss, 1.0, 1));
            cases.push((11, 9, 1, 7, act, loss, 0.6, 2));
            cases.push((17, 33, 1, 20, act, loss, 1.0, 3));
        }
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2026);
    for _ in 0..24 {
        let act = [Activation::Square, Activation::Relu, Activation::Pow(3)][rng.gen_range(0..3)];
        let loss = if rng.gen() {
            Loss::Mse
        } else {
            Loss::CrossEntropy
        };
        cases.push((
            rng.gen_range(2..20),
            rng.gen_range(1..40),
            rng.gen_range(1..4),
            rng.gen_range(1..70),
            act,
            loss,
            rng.gen_range(0.2..1.0),
            rng.gen_range(0..1000),
        ));
    }
    let mut summary = vec![(0, 0.0f64); VERSIONS.len()];
    for (p, m, batch, tile_rows, act, loss, fraction, seed) in cases {
        let problem = Problem::<F>::new(p, m, batch, act, loss, fraction, seed);
        let backend = CpuBackend::new(CpuOptions {
            tile_rows,
            chunks_per_model: 5,
            min_chunk_work: 0,
            threads: None,
        })
        .expect("valid options");
        let what = format!("p={p} m={m} B={batch} tile={tile_rows} {act} {loss:?} seed {seed}");
        for (i, &(version, _)) in VERSIONS.iter().enumerate() {
            if let Some(err) = problem.check(version, &backend, &what) {
                summary[i].0 += 1;
                summary[i].1 = summary[i].1.max(err);
            }
        }
    }
    summary
}

/// Median of `x` (not empty).
fn median(x: &mut [f64]) -> f64 {
    x.sort_by(f64::total_cmp);
    let n = x.len();
    if n % 2 == 1 {
        x[n / 2]
    } else {
        0.5 * (x[n / 2 - 1] + x[n / 2])
    }
}

/// Checks then times every version on shape (p, m, B), alternating versions within each
/// of `rounds` rounds of about `per_round` each; prints one table row per version.
fn time_shape<F: Elem>((p, m, batch): (usize, usize, usize), rounds: usize, per_round: Duration) {
    let problem = Problem::<F>::new(p, m, batch, Activation::Square, Loss::CrossEntropy, 1.0, 0);
    let backend = CpuBackend::new(CpuOptions::default()).expect("default options");
    let what = format!("p={p} m={m} B={batch}");
    let mut grads = Weights::zeros(&problem.spec, batch);
    let (core, weights, pairs) = (problem.core, &problem.weights, &problem.pairs);
    let mut rows = Vec::new();
    for &(version, name) in &VERSIONS {
        if let Some(err) = problem.check(version, &backend, &what) {
            rows.push((version, name, err, Vec::new()));
        }
    }
    for _ in 0..rounds {
        for (version, _, _, times) in &mut rows {
            let mut pass = || {
                F::pass(*version, &backend, core, weights, pairs, Some(&mut grads))
                    .expect("checked above")
                    .expect("pass runs");
            };
            // Untimed: the first pass after another version ran refills the caches.
            pass();
            let start = Instant::now();
            let mut n = 0;
            while n < 3 || start.elapsed() < per_round {
                let t = Instant::now();
                pass();
                times.push(t.elapsed().as_secs_f64());
                n += 1;
            }
        }
    }
    let flops = (6 * p * p * m * p * batch) as f64;
    let medians: Vec<f64> = rows
        .iter_mut()
        .map(|(_, _, _, times)| median(times))
        .collect();
    let prod = rows
        .iter()
        .position(|r| r.0 == 3)
        .map(|i| medians[i])
        .expect("v3 runs everywhere");
    for ((version, name, err, times), t) in rows.iter().zip(&medians) {
        println!(
            "{:<17} {:<5} v{version} {:<15} {:>9.1e} {:>9.3} {:>8.1} {:>8.2}x {:>6}",
            format!("p{p} m{m} B{batch}"),
            F::NAME,
            name,
            err,
            t * 1e3,
            flops / t / 1e9,
            t / prod,
            times.len(),
        );
    }
}

/// Whether `shape`'s row is wanted by the filters (none: all).
fn wanted(filters: &[String], shape: (usize, usize, usize), dtype: &str) -> bool {
    let name = format!("p{} m{} B{} {dtype}", shape.0, shape.1, shape.2);
    filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
}

fn cpu_flags() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        let flags = [
            ("avx512f", is_x86_feature_detected!("avx512f")),
            ("avx512vl", is_x86_feature_detected!("avx512vl")),
            ("avx2", is_x86_feature_detected!("avx2")),
            ("fma", is_x86_feature_detected!("fma")),
        ];
        flags
            .iter()
            .map(|(name, on)| format!("{name}{}", if *on { "+" } else { "-" }))
            .collect::<Vec<_>>()
            .join(" ")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::env::consts::ARCH.to_string()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bench = args.iter().any(|a| a == "--bench");
    let filters: Vec<String> = args
        .iter()
        .filter(|a| !a.starts_with('-'))
        .cloned()
        .collect();
    let rounds: usize = std::env::var("CPU_KERNELS_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    println!(
        "cpu_kernels: CPU {} | production elementwise path {} | {} threads",
        cpu_flags(),
        dev::simd_level(),
        rayon::current_num_threads()
    );
    println!("checks against the f64 reference (engine::reference), small problems:");
    let small = [("f32", check_small::<f32>()), ("f64", check_small::<f64>())];
    for (i, &(version, name)) in VERSIONS.iter().enumerate() {
        let cells: Vec<String> = small
            .iter()
            .map(|(dtype, s)| match s[i] {
                (0, _) => format!("{dtype}: n/a"),
                (n, worst) => format!("{dtype}: {n} cases ok, worst rel err {worst:.1e}"),
            })
            .collect();
        println!("  v{version} {name:<15} {}", cells.join(" | "));
    }
    if !bench {
        println!("(checks only; `cargo bench --bench cpu_kernels --features dev-kernels` times)");
        return;
    }
    println!(
        "\none pass (loss + gradient over all p² pairs, x², CE); median over {rounds} interleaved rounds"
    );
    println!(
        "{:<17} {:<5} {:<18} {:>9} {:>9} {:>8} {:>9} {:>6}",
        "shape", "dtype", "version", "rel err", "ms", "GFLOP/s", "/ v3", "passes"
    );
    let per_round = Duration::from_millis(400);
    for shape in SHAPES {
        if wanted(&filters, shape, "f32") {
            time_shape::<f32>(shape, rounds, per_round);
        }
    }
    for shape in SHAPES {
        if wanted(&filters, shape, "f64") {
            time_shape::<f64>(shape, rounds, per_round);
        }
    }
}
