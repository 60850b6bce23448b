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
//! Each model's pairs are cut into chunks; a chunk is one rayon job with its own gradient
//! accumulator, and the partial gradients are summed in chunk order. The chunking depends
//! only on the model's problem (its pair count, width and classes) and the options, never
//! on the batch size or the thread count, so a model's results are bit-identical for any
//! number of threads and whether it is trained alone or in a batch of any size.
//!
//! A batch with one chunk per model, or with at least four models a thread (a sweep
//! batch), runs one task per model instead: a thread computes the model's chunks in
//! turn in its one kept workspace and sums them straight into the model's gradient, in
//! the same order as the reduction, so the bits are the same and no per-job buffers
//! stream through memory (`CpuBackend::run_by_model`).
//!
//! The three products go through the `gemm` crate ([`Real::gemm`]: packed AVX-512 / AVX2
//! microkernels, chosen at run time); the elementwise parts are compiled once per
//! instruction set (the private `simd` module) and dispatched at run time. Slower
//! alternatives (matrixmultiply, a hand-written AVX2 microkernel) live in the kernel
//! harness, benches/cpu_kernels/, not here.

mod by_model;
mod dense;
#[cfg(feature = "dev-kernels")]
#[doc(hidden)]
pub mod dev;
mod epilogue;
mod heads;
mod narrow;
mod simd;
mod tile;

use super::PassStats;
use super::{check_pass, AsPairSet, Backend, CoreSpec, GradConsumer, HeadStats};
use crate::error::{Error, Result};
use crate::model::{AsWeightsView, GradsBuffer, WeightsView, WeightsViewMut};
use crate::real::Real;
use crate::task::PairSet;
use by_model::{GradsTo, ModelPlan, MODELS_PER_THREAD};
use rayon::prelude::*;
use std::any::Any;
use std::sync::Mutex;

/// One job of a pass: model `k`, a pair range, whether gradients are wanted.
type JobFn<F> = fn(&tile::Context<F>, usize, (usize, usize), bool, &mut tile::JobResult<F>);

/// The fused job for `pairs`: the dense-input job (dense.rs) for bit strings, the token
/// job otherwise; the chunking, threads and reduction around it are shared.
fn job_for<F: Real>(pairs: &PairSet) -> JobFn<F> {
    match pairs.inputs.bits() {
        Some(_) => dense::run_job::<F>,
        None => simd::run_job::<F>,
    }
}

/// Tuning knobs of the CPU backend. The defaults are what the `step` benchmark picked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CpuOptions {
    /// Most rows (pairs) per tile; a job cuts its rows into the fewest tiles of at most
    /// this many, all of about one height.
    pub tile_rows: usize,
    /// Most chunks (parallel jobs) one model's pairs are cut into: never more than one
    /// per tile's worth of rows, nor more than [`CpuOptions::min_chunk_work`] allows.
    /// Each chunk carries its own gradient accumulator (zeroed, then summed in the
    /// reduction: 0.7 MB at p = 113, m = 512), so more chunks than cores need cost memory
    /// traffic. The default is two per core of the machine and at least 8
    /// ([`std::thread::available_parallelism`]), so one large model keeps both cores
    /// evenly busy: a run is bit-identical for any `threads` on one machine; set it
    /// explicitly to pin results across machines.
    pub chunks_per_model: usize,
    /// Least work per chunk, in multiply-adds of one product (rows × width × classes):
    /// a model gets at most `rows·width·classes / min_chunk_work` chunks (at least one).
    /// Below this a chunk spends about as long zeroing and summing its accumulator as on
    /// its products (3 chunks per model instead of 1 measured ~10% slower at p = 23,
    /// m = 96, B = 64); small models in a batch then run one job each. 0 or 1: no minimum.
    pub min_chunk_work: usize,
    /// Worker threads (None: rayon's global pool, i.e. all cores or RAYON_NUM_THREADS).
    pub threads: Option<usize>,
}

impl Default for CpuOptions {
    fn default() -> Self {
        CpuOptions {
            tile_rows: 256,
            chunks_per_model: default_chunks_per_model(),
            min_chunk_work: 1 << 20,
            threads: None,
        }
    }
}

/// Two chunks per core, at least 8 (see [`CpuOptions::chunks_per_model`]).
fn default_chunks_per_model() -> usize {
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
    /// `tile_rows`, `chunks_per_model` or `threads`, and with [`Error::Backend`] if the
    /// thread pool cannot start.
    pub fn new(options: CpuOptions) -> Result<CpuBackend> {
        if options.tile_rows == 0 {
            return Err(Error::config("tile_rows", 0, "tiles need at least one row"));
        }
        if options.chunks_per_model == 0 {
            return Err(Error::config(
                "chunks_per_model",
                0,
                "need at least one chunk",
            ));
        }
        let pool = match options.threads {
            None => None,
            Some(0) => return Err(Error::config("threads", 0, "need at least one thread")),
            Some(n) => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .map_err(|e| {
                        Error::backend_from(format!("cannot start {n} CPU threads: {e}"), e)
                    })?,
            ),
        };
        Ok(CpuBackend {
            options,
            pool,
            scratch: Mutex::new(Vec::new()),
        })
    }

    /// Runs `f` on this backend's pool (in place when called from one of its threads).
    fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(pool) => pool.install(f),
            None => f(),
        }
    }

    /// The threads a pass runs on, read without a round trip to the pool.
    fn threads(&self) -> usize {
        self.pool
            .as_ref()
            .map_or_else(rayon::current_num_threads, |p| p.current_num_threads())
    }

    /// Buffers of type `T` kept from an earlier call (empty the first time): kept, large
    /// buffers are not mapped, faulted in and unmapped again on every step.
    fn take_scratch<T: Send + 'static>(&self) -> Vec<T> {
        let mut pool = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        match pool.iter().position(|b| b.is::<Vec<T>>()) {
            Some(i) => *pool.swap_remove(i).downcast().expect("type checked"),
            None => Vec::new(),
        }
    }

    fn keep_scratch<T: Send + 'static>(&self, results: Vec<T>) {
        self.scratch
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Box::new(results));
    }

    /// Pair ranges of one model's chunks: the most of [`CpuOptions::chunks_per_model`],
    /// one per tile's worth of rows and one per [`CpuOptions::min_chunk_work`] (at least
    /// one), of equal size but for the last, so the jobs of a pass weigh the same and
    /// spread evenly over the cores. (Whole tiles per chunk left p = 71 with 5 chunks of
    /// 2 tiles for 2 cores.) Depends on the model's problem alone, not on the batch size:
    /// a model trained alone sums its gradient in the same order as in a batch.
    fn chunks(&self, n_pairs: usize, width: usize, n_out: usize) -> Vec<(usize, usize)> {
        let by_tiles = n_pairs.div_ceil(self.options.tile_rows);
        let by_work = n_pairs.saturating_mul(width).saturating_mul(n_out)
            / self.options.min_chunk_work.max(1);
        let per_model = self
            .options
            .chunks_per_model
            .min(by_tiles)
            .min(by_work)
            .max(1);
        let chunk = n_pairs.div_ceil(per_model).max(1);
        (0..n_pairs.div_ceil(chunk).max(1))
            .map(|c| (c * chunk, ((c + 1) * chunk).min(n_pairs)))
            .collect()
    }

    fn run<F: Real>(
        &self,
        core: CoreSpec,
        weights: WeightsView<'_, F>,
        pairs: &PairSet,
        grads: Option<&mut dyn GradsBuffer<F>>,
    ) -> Result<Vec<PassStats>> {
        self.run_jobs(core, weights, pairs, grads, job_for::<F>(pairs))
    }

    /// One pass over every model of the batch, each on its own group's pairs
    /// (`groups[g] = (models, pairs)`, every model in exactly one group): one task per
    /// model as [`CpuBackend::run_by_model`] runs a sweep batch, with each model's chunks
    /// cut from its own pair count, so every model's result is bit-identical to a pass of
    /// its group alone (and to the model alone). Handing gradients to `each` instead of
    /// `grads` ([`Backend::loss_and_grad_each`]), it declines
    /// (`Ok(None)`) a batch that the chunk-parallel pass would run faster: fewer than
    /// [`MODELS_PER_THREAD`] models a thread with some model cut into several chunks.
    fn run_grouped<F: Real>(
        &self,
        core: CoreSpec,
        weights: WeightsView<'_, F>,
        groups: &[(&[usize], &PairSet)],
        grads: Option<&mut dyn GradsBuffer<F>>,
        each: Option<&GradConsumer<'_, F>>,
    ) -> Result<Option<Vec<PassStats>>> {
        let batch = weights.batch();
        let mut group_of = vec![usize::MAX; batch];
        for (g, (models, pairs)) in groups.iter().enumerate() {
            check_pass(&weights, pairs)?;
            for &k in models.iter() {
                match group_of.get_mut(k) {
                    Some(slot) if *slot == usize::MAX => *slot = g,
                    Some(_) => return Err(Error::config("groups", k, "model in two split groups")),
                    None => {
                        return Err(Error::config(
                            "groups",
                            k,
                            format!("no such model in a batch of {batch}"),
                        ))
                    }
                }
            }
        }
        if let Some(k) = group_of.iter().position(|&g| g == usize::MAX) {
            return Err(Error::config("groups", k, "model in no split group"));
        }
        let dense = groups[0].1.inputs.bits().is_some();
        if groups
            .iter()
            .any(|(_, p)| p.inputs.bits().is_some() != dense)
        {
            return Err(Error::config(
                "groups",
                "mixed",
                "token and bit-string pair sets in one pass",
            ));
        }
        let chunks: Vec<Vec<(usize, usize)>> = groups
            .iter()
            .map(|(_, p)| self.chunks(p.len(), weights.width(), weights.n_out()))
            .collect();
        let threads = self.threads();
        if each.is_some()
            && batch < MODELS_PER_THREAD * threads
            && chunks.iter().any(|c| c.len() > 1)
        {
            return Ok(None);
        }
        // Sized (or its shape checked) before any work, so a bad buffer costs nothing.
        let grads = match (grads, each) {
            (_, Some(each)) => GradsTo::Each(each),
            (Some(g), None) => GradsTo::Buffer(g.fit(weights.shape())?),
            (None, None) => GradsTo::Nowhere,
        };
        let contexts: Vec<tile::Context<F>> = groups
            .iter()
            .map(|(_, pairs)| tile::Context {
                core,
                weights,
                pairs,
                tile_rows: self.options.tile_rows,
                inv_n: 1.0 / pairs.len() as f64,
            })
            .collect();
        let plan = ModelPlan {
            contexts: &contexts,
            chunks: &chunks,
            group_of: &group_of,
        };
        Ok(Some(self.run_by_model(
            &plan,
            threads,
            grads,
            job_for::<F>(groups[0].1),
        )))
    }

    /// One pass in which `job` computes every (model, pair range) job: the chunking, the
    /// threads and the fixed-order reduction are the same whatever `job` is (the kernel
    /// harness runs its alternative kernels through here too).
    fn run_jobs<F: Real>(
        &self,
        core: CoreSpec,
        weights: WeightsView<'_, F>,
        pairs: &PairSet,
        grads: Option<&mut dyn GradsBuffer<F>>,
        job: impl Fn(&tile::Context<F>, usize, (usize, usize), bool, &mut tile::JobResult<F>) + Sync,
    ) -> Result<Vec<PassStats>> {
        check_pass(&weights, pairs)?;
        // Sized (or its shape checked) before any work, so a bad buffer costs nothing.
        let grads = match grads {
            Some(g) => Some(g.fit(weights.shape())?),
            None => None,
        };
        let chunks = self.chunks(pairs.len(), weights.width(), weights.n_out());
        let ctx = tile::Context {
            core,
            weights,
            pairs,
            tile_rows: self.options.tile_rows,
            inv_n: 1.0 / pairs.len() as f64,
        };
        let threads = self.threads();
        if chunks.len() == 1 || weights.batch() >= MODELS_PER_THREAD * threads {
            let plan = ModelPlan {
                contexts: std::slice::from_ref(&ctx),
                chunks: std::slice::from_ref(&chunks),
                group_of: &[],
            };
            let grads = match grads {
                Some(g) => GradsTo::Buffer(g),
                None => GradsTo::Nowhere,
            };
            return Ok(self.run_by_model(&plan, threads, grads, job));
        }
        let jobs: Vec<(usize, (usize, usize))> = (0..weights.batch())
            .flat_map(|k| chunks.iter().map(move |&c| (k, c)))
            .collect();
        let want_grads = grads.is_some();
        let mut results = self.take_scratch::<tile::JobResult<F>>();
        results.resize_with(jobs.len(), Default::default);
        self.install(|| {
            jobs.par_iter()
                .zip(results.par_iter_mut())
                .for_each(|(&(k, range), out)| job(&ctx, k, range, want_grads, out))
        });
        let per_model = chunks.len();
        let stats: Vec<PassStats> = results
            .chunks(per_model)
            .map(|model_jobs| {
                let mut s = empty_stats(pairs);
                model_jobs.iter().for_each(|job| add_job_stats(&mut s, job));
                s
            })
            .collect();
        if let Some(mut grads) = grads {
            self.install(|| reduce(&results, per_model, &mut grads));
        }
        self.keep_scratch(results);
        Ok(stats)
    }
}

/// Statistics of a pass over `pairs` (and their heads) before any job's share is added.
fn empty_stats(pairs: &PairSet) -> PassStats {
    PassStats {
        min_margin: f64::INFINITY,
        count: pairs.len(),
        heads: HeadStats::zeros(pairs.heads.as_ref().map_or(0, |h| h.len())),
        ..Default::default()
    }
}

/// Adds a job's share to its model's statistics (called in chunk order).
fn add_job_stats<F>(s: &mut PassStats, job: &tile::JobResult<F>) {
    s.loss += job.loss;
    s.correct += job.correct;
    s.min_margin = s.min_margin.min(job.min_margin);
    for (total, part) in s.heads.iter_mut().zip(&job.heads) {
        total.merge(part);
    }
}

/// Sums the chunk gradients of each model in chunk order. Parallel over models and
/// over slices of each gradient; every element's sum keeps the same order, so the
/// result does not depend on the thread count.
fn reduce<F: Real>(
    results: &[tile::JobResult<F>],
    per_model: usize,
    grads: &mut WeightsViewMut<'_, F>,
) {
    const SLICE: usize = 4096;
    /// Which gradient of a job's result a destination sums.
    type Part<F> = fn(&tile::JobResult<F>) -> &[F];
    let batch = grads.shape().batch;
    let (gu, gv, gw) = grads.parts_mut();
    let fields: [(&mut [F], Part<F>); 3] = [
        (gu, |r| &r.grad_u),
        (gv, |r| &r.grad_v),
        (gw, |r| &r.grad_w),
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
        let threads = self.threads();
        format!("cpu ({threads} threads, {})", simd::level_name())
    }

    /// On this backend's pool, or without one on a thread of rayon's global pool:
    /// there a pass's parallel loop splits its work with the other threads through
    /// `join`, and a thread asleep costs nothing (the caller runs the half itself),
    /// where from a thread outside the pool every loop is handed in and waited for.
    /// The main command (a+b mod 31, width 240, one model, two chunks a step) took
    /// 2.50–2.61 s per 4000 steps run from the calling thread, 2.03–2.18 s this way.
    fn within(&self, work: &mut (dyn FnMut() + Send)) {
        match &self.pool {
            Some(pool) => pool.install(work),
            None => rayon::scope(|_| work()),
        }
    }

    fn loss_and_grad(
        &self,
        core: CoreSpec,
        weights: &dyn AsWeightsView<F>,
        pairs: &dyn AsPairSet,
        grads: &mut dyn GradsBuffer<F>,
    ) -> Result<Vec<PassStats>> {
        self.run(core, weights.weights_view(), pairs.pair_set(), Some(grads))
    }

    fn evaluate(
        &self,
        core: CoreSpec,
        weights: &dyn AsWeightsView<F>,
        pairs: &dyn AsPairSet,
    ) -> Result<Vec<PassStats>> {
        self.run(core, weights.weights_view(), pairs.pair_set(), None)
    }

    fn grouped_pass(
        &self,
        core: CoreSpec,
        weights: &dyn AsWeightsView<F>,
        groups: &[(&[usize], &dyn AsPairSet)],
        grads: Option<&mut dyn GradsBuffer<F>>,
    ) -> Option<Result<Vec<PassStats>>> {
        let groups: Vec<(&[usize], &PairSet)> =
            groups.iter().map(|&(m, p)| (m, p.pair_set())).collect();
        if groups.is_empty() {
            return Some(Err(Error::config("groups", 0, "no split group")));
        }
        let stats = self.run_grouped(core, weights.weights_view(), &groups, grads, None);
        Some(stats.map(|s| s.expect("a pass into a buffer is never declined")))
    }

    fn loss_and_grad_each(
        &self,
        core: CoreSpec,
        weights: &dyn AsWeightsView<F>,
        groups: &[(&[usize], &dyn AsPairSet)],
        each: &GradConsumer<'_, F>,
    ) -> Option<Result<Vec<PassStats>>> {
        let groups: Vec<(&[usize], &PairSet)> =
            groups.iter().map(|&(m, p)| (m, p.pair_set())).collect();
        if groups.is_empty() {
            return Some(Err(Error::config("groups", 0, "no split group")));
        }
        self.run_grouped(core, weights.weights_view(), &groups, None, Some(each))
            .transpose()
    }
}
