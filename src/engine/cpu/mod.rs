//! The CPU backend: fused, tiled forward + backward, parallel over (model, chunk) jobs.
//!
//! # Strategy
//! The pairs are cut into tiles of at most `tile_rows` rows. For each tile the job builds the
//! hidden activations from the embedding rows (gather + add + σ, the only place they
//! exist), multiplies by `Wᵀ` to get the tile's logits, turns them into the loss gradient
//! `G` in place (softmax-CE or MSE epilogue), accumulates `dW += Gᵀ·hidden`, computes
//! `D = G·W` and scatters `σ'(s) ⊙ D` into the embedding gradients, recomputing `s`
//! instead of storing it. Memory is O(parameters + jobs × gradient size + tiles): neither
//! the `pairs × m` hidden matrix nor the `pairs × n_out` logits ever exist whole.
//!
//! # Parallelism and determinism
//! Tiles are grouped into chunks; a chunk is one rayon job with its own gradient
//! accumulator, and the partial gradients are summed in chunk order. The chunking depends
//! only on the problem (pairs, batch) and the options, never on the thread count, so the
//! results are bit-identical for any number of threads.
//!
//! The three products go through matrixmultiply (packed, AVX2/FMA microkernels, chosen
//! at run time); the elementwise parts are compiled once per instruction set
//! (the private `simd` module) and dispatched at run time.

#[cfg(target_arch = "x86_64")]
mod fused_avx2;
mod simd;
mod tile;

use super::{check_pairs, Backend, CoreSpec, PassStats};
use crate::error::{Error, Result};
use crate::model::Weights;
use crate::real::{GemmLib, Real};
use crate::task::PairSet;
use rayon::prelude::*;
use std::any::Any;
use std::sync::Mutex;

/// How the three products of a tile are computed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CpuKernel {
    /// Through a GEMM library, with the elementwise work fused around the calls.
    Library(GemmLib),
    /// The hand-written f32 AVX2+FMA microkernel with the σ'-scatter fused into the
    /// `D = G·W` product (`fused_avx2.rs`). f64 passes still use the default library.
    /// It measured ~5–10% slower than the `gemm` crate on the benchmark shapes, so it is
    /// opt-in (README, "Speed").
    FusedAvx2,
    /// The default: `Library(GemmLib::Gemm)`.
    #[default]
    Auto,
}

/// Tuning knobs of the CPU backend. The defaults are what the `step` benchmark picked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CpuOptions {
    /// Most rows (pairs) per tile; a job cuts its rows into the fewest tiles of at most
    /// this many, all of about one height.
    pub tile_rows: usize,
    /// Aim for at least this many jobs per pass across the batch, so every core stays busy
    /// with little imbalance; small problems with many models get one job per model.
    /// Each job carries its own gradient accumulator (zeroed, then summed in the
    /// reduction: 0.7 MB at p = 113, m = 512), so more jobs than needed cost memory
    /// traffic. The default is two per core of the machine and at least 8
    /// ([`std::thread::available_parallelism`]): a run is bit-identical for any `threads`
    /// on one machine; set it explicitly to pin results across machines.
    pub target_jobs: usize,
    /// Worker threads (None: rayon's global pool, i.e. all cores or RAYON_NUM_THREADS).
    pub threads: Option<usize>,
    /// Which implementation computes the products of a tile.
    pub kernel: CpuKernel,
}

impl Default for CpuOptions {
    fn default() -> Self {
        CpuOptions {
            tile_rows: 256,
            target_jobs: default_target_jobs(),
            threads: None,
            kernel: CpuKernel::Auto,
        }
    }
}

/// Two jobs per core, at least 8 (see [`CpuOptions::target_jobs`]).
fn default_target_jobs() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (2 * cores).max(8)
}

/// Fused CPU backend: implements [`Backend`] for f32 and f64. Results are
/// bit-identical for any thread count (see the module docs). Keeps its job buffers
/// between calls, so repeated passes of one shape do not allocate.
pub struct CpuBackend {
    options: CpuOptions,
    pool: Option<rayon::ThreadPool>,
    /// Job buffers kept from the previous call, one pool per element type.
    scratch: Mutex<Vec<Box<dyn Any + Send>>>,
}

impl CpuBackend {
    /// A backend with `options`. Fails with [`Error::InvalidConfig`] for a zero
    /// `tile_rows`, `target_jobs` or `threads`, or [`CpuKernel::FusedAvx2`] on a CPU
    /// without AVX2+FMA, and with [`Error::Backend`] if the thread pool cannot start.
    pub fn new(options: CpuOptions) -> Result<CpuBackend> {
        if options.tile_rows == 0 {
            return Err(Error::config("tile_rows", 0, "tiles need at least one row"));
        }
        if options.target_jobs == 0 {
            return Err(Error::config("target_jobs", 0, "need at least one job"));
        }
        if options.kernel == CpuKernel::FusedAvx2 && simd::level() < simd::Level::Avx2 {
            return Err(Error::config(
                "kernel",
                "fused-avx2",
                "this CPU has no AVX2+FMA (or CLOCKWORK_SIMD capped it); use the default kernel",
            ));
        }
        let pool = match options.threads {
            None => None,
            Some(0) => return Err(Error::config("threads", 0, "need at least one thread")),
            Some(n) => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .map_err(|e| Error::Backend(format!("cannot start {n} CPU threads: {e}")))?,
            ),
        };
        Ok(CpuBackend {
            options,
            pool,
            scratch: Mutex::new(Vec::new()),
        })
    }

    fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(pool) => pool.install(f),
            None => f(),
        }
    }

    /// Packs every model's W for the hand-written f32 kernels (empty if they don't run).
    #[cfg(target_arch = "x86_64")]
    fn pack_w<F: Real>(&self, weights: &Weights<F>) -> Vec<fused_avx2::PackedW> {
        if std::any::TypeId::of::<F>() != std::any::TypeId::of::<f32>()
            || self.options.kernel != CpuKernel::FusedAvx2
        {
            return Vec::new();
        }
        let w: &[f32] = bytemuck::cast_slice(&weights.w);
        let len = weights.n_out * weights.width;
        self.install(|| {
            (0..weights.batch)
                .into_par_iter()
                .map(|k| {
                    let mut packed = fused_avx2::PackedW::default();
                    packed.pack(&w[k * len..(k + 1) * len], weights.n_out, weights.width);
                    packed
                })
                .collect()
        })
    }

    fn take_scratch<F: Real>(&self) -> Vec<tile::JobResult<F>> {
        let mut pool = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        match pool.iter().position(|b| b.is::<Vec<tile::JobResult<F>>>()) {
            Some(i) => *pool.swap_remove(i).downcast().expect("type checked"),
            None => Vec::new(),
        }
    }

    fn keep_scratch<F: Real>(&self, results: Vec<tile::JobResult<F>>) {
        self.scratch
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Box::new(results));
    }

    /// Pair ranges of each model's chunks: `target_jobs / batch` of them (at least one, at
    /// most one per tile's worth of rows), of equal size but for the last, so the jobs of
    /// a pass weigh the same and spread evenly over the cores. (Whole tiles per chunk
    /// left p = 71 with 5 chunks of 2 tiles for 2 cores.)
    fn chunks(&self, n_pairs: usize, batch: usize) -> Vec<(usize, usize)> {
        let n_tiles = n_pairs.div_ceil(self.options.tile_rows).max(1);
        let chunks_per_model = self.options.target_jobs.div_ceil(batch).clamp(1, n_tiles);
        let chunk = n_pairs.div_ceil(chunks_per_model).max(1);
        (0..n_pairs.div_ceil(chunk).max(1))
            .map(|c| (c * chunk, ((c + 1) * chunk).min(n_pairs)))
            .collect()
    }

    fn run<F: Real>(
        &self,
        core: CoreSpec,
        weights: &Weights<F>,
        pairs: &PairSet,
        grads: Option<&mut Weights<F>>,
    ) -> Result<Vec<PassStats>> {
        check_pairs(weights, pairs)?;
        if pairs.is_empty() {
            return Err(Error::config(
                "pairs",
                0,
                "cannot run a pass over zero pairs",
            ));
        }
        let chunks = self.chunks(pairs.len(), weights.batch);
        let jobs: Vec<(usize, (usize, usize))> = (0..weights.batch)
            .flat_map(|k| chunks.iter().map(move |&c| (k, c)))
            .collect();
        let want_grads = grads.is_some();
        let ctx = tile::Context {
            core,
            weights,
            pairs,
            tile_rows: self.options.tile_rows,
            gemm: match self.options.kernel {
                CpuKernel::Library(lib) => lib,
                CpuKernel::FusedAvx2 | CpuKernel::Auto => GemmLib::default(),
            },
            inv_n: 1.0 / pairs.len() as f64,
            #[cfg(target_arch = "x86_64")]
            packed: self.pack_w(weights),
        };
        let mut results = self.take_scratch::<F>();
        results.resize_with(jobs.len(), Default::default);
        self.install(|| {
            jobs.par_iter()
                .zip(results.par_iter_mut())
                .for_each(|(&(k, range), out)| simd::run_job(&ctx, k, range, want_grads, out))
        });
        let per_model = chunks.len();
        let stats: Vec<PassStats> = results
            .chunks(per_model)
            .map(|model_jobs| {
                let mut s = PassStats {
                    min_margin: f64::INFINITY,
                    count: pairs.len(),
                    ..Default::default()
                };
                for job in model_jobs {
                    s.loss += job.loss;
                    s.correct += job.correct;
                    s.min_margin = s.min_margin.min(job.min_margin);
                }
                s
            })
            .collect();
        if let Some(grads) = grads {
            grads.zero_like(weights);
            self.install(|| reduce(&results, per_model, grads));
        }
        self.keep_scratch(results);
        Ok(stats)
    }
}

/// Sums the chunk gradients of each model in chunk order. Parallel over models and
/// over slices of each gradient; every element's sum keeps the same order, so the
/// result does not depend on the thread count.
fn reduce<F: Real>(results: &[tile::JobResult<F>], per_model: usize, grads: &mut Weights<F>) {
    const SLICE: usize = 4096;
    /// Which gradient of a job's result a destination sums.
    type Part<F> = fn(&tile::JobResult<F>) -> &[F];
    let batch = grads.batch;
    let fields: [(&mut Vec<F>, Part<F>); 3] = [
        (&mut grads.u, |r| &r.grad_u),
        (&mut grads.v, |r| &r.grad_v),
        (&mut grads.w, |r| &r.grad_w),
    ];
    for (dst, part) in fields {
        let model_len = dst.len() / batch;
        dst.par_chunks_mut(model_len)
            .enumerate()
            .for_each(|(k, model_dst)| {
                let jobs = &results[k * per_model..(k + 1) * per_model];
                model_dst
                    .par_chunks_mut(SLICE)
                    .enumerate()
                    .for_each(|(s, out)| {
                        let range = s * SLICE..s * SLICE + out.len();
                        out.copy_from_slice(&part(&jobs[0])[range.clone()]);
                        for job in &jobs[1..] {
                            for (o, g) in out.iter_mut().zip(&part(job)[range.clone()]) {
                                *o += *g;
                            }
                        }
                    });
            });
    }
}

impl<F: Real> Backend<F> for CpuBackend {
    fn describe(&self) -> String {
        let threads = self.install(rayon::current_num_threads);
        format!(
            "cpu ({threads} threads, {}, {:?})",
            simd::level_name(),
            self.options.kernel
        )
    }

    fn loss_and_grad(
        &self,
        core: CoreSpec,
        weights: &Weights<F>,
        pairs: &PairSet,
        grads: &mut Weights<F>,
    ) -> Result<Vec<PassStats>> {
        self.run(core, weights, pairs, Some(grads))
    }

    fn evaluate(
        &self,
        core: CoreSpec,
        weights: &Weights<F>,
        pairs: &PairSet,
    ) -> Result<Vec<PassStats>> {
        self.run(core, weights, pairs, None)
    }
}
