//! The pass as one task per model ([`CpuBackend::run_by_model`]), which sweep batches
//! and grouped passes take: each thread runs its models' chunks in turn in one kept
//! workspace, and a model's gradient goes to its place in a batch buffer or, as soon as
//! it is complete, to the caller's consumer ([`crate::engine::Backend::loss_and_grad_each`]).

use super::{add_job_stats, empty_stats, tile, CpuBackend};
use crate::engine::{GradConsumer, ModelGrads, PassStats};
use crate::model::WeightsViewMut;
use crate::real::Real;
use rayon::prelude::*;
use std::sync::Mutex;

impl CpuBackend {
    /// The pass as one task per model — small models in a sweep batch, or a batch with
    /// enough models to keep every thread busy. A job per (model, chunk) with its own
    /// gradient accumulator and tile workspaces would stream them all through memory
    /// (≈ 180 KB a model at p = 23, m = 96: 184 MB at B = 1024) and then copy every
    /// gradient once more in the reduction; instead each thread runs its models' chunks
    /// one after another in one kept [`tile::JobResult`], hot in its caches, copying the
    /// first chunk's gradient to its place and adding the next ones: the same jobs and
    /// the same additions in the same order as [`super::reduce`], so the results are
    /// bit-identical to the chunk-parallel pass.
    pub(super) fn run_by_model<F: Real>(
        &self,
        plan: &ModelPlan<'_, '_, F>,
        threads: usize,
        grads: GradsTo<'_, F>,
        job: impl Fn(&tile::Context<F>, usize, (usize, usize), bool, &mut tile::JobResult<F>) + Sync,
    ) -> Vec<PassStats> {
        let mut kept = self.take_scratch::<tile::JobResult<F>>();
        kept.resize_with(threads, Default::default);
        // One workspace per worker thread; a thread holds its lock for one model at a time.
        let slots: Vec<Mutex<tile::JobResult<F>>> = kept.into_iter().map(Mutex::new).collect();
        let slot_of = || rayon::current_thread_index().unwrap_or(0) % slots.len();
        // Model k's chunks in order in one workspace, each chunk's gradient handed to
        // `add(i, chunk)` before the next overwrites it.
        let model_chunks =
            |k: usize,
             out: &mut tile::JobResult<F>,
             want: bool,
             add: &mut dyn FnMut(usize, &tile::JobResult<F>)| {
                let (ctx, chunks) = plan.of(k);
                let mut stats = empty_stats(ctx.pairs);
                for (i, &range) in chunks.iter().enumerate() {
                    job(ctx, k, range, want, out);
                    add_job_stats(&mut stats, out);
                    add(i, out);
                }
                stats
            };
        let mut stats = vec![PassStats::default(); plan.contexts[0].weights.batch()];
        self.install(|| match grads {
            GradsTo::Buffer(mut grads) => {
                let shape = grads.shape();
                let (gu, gv, gw) = grads.parts_mut();
                stats
                    .par_iter_mut()
                    .zip(gu.par_chunks_mut(shape.n_in * shape.width))
                    .zip(gv.par_chunks_mut(shape.n_in * shape.width))
                    .zip(gw.par_chunks_mut(shape.n_out * shape.width))
                    .enumerate()
                    .for_each(|(k, (((s, gu), gv), gw))| {
                        let mut out = slots[slot_of()].lock().unwrap_or_else(|e| e.into_inner());
                        *s = model_chunks(k, &mut out, true, &mut |i, chunk| {
                            accumulate_chunk([&mut *gu, &mut *gv, &mut *gw], chunk, i == 0)
                        });
                    })
            }
            GradsTo::Nowhere => stats.par_iter_mut().enumerate().for_each(|(k, s)| {
                let mut out = slots[slot_of()].lock().unwrap_or_else(|e| e.into_inner());
                *s = model_chunks(k, &mut out, false, &mut |_, _| {});
            }),
            GradsTo::Each(each) => {
                // The sums of a model cut into several chunks, one per workspace (never
                // sized when every model is one chunk).
                let mut kept_sums = self.take_scratch::<[Vec<F>; 3]>();
                kept_sums.resize_with(slots.len(), Default::default);
                let sums: Vec<Mutex<[Vec<F>; 3]>> = kept_sums.into_iter().map(Mutex::new).collect();
                stats.par_iter_mut().enumerate().for_each(|(k, s)| {
                    let slot = slot_of();
                    let mut out = slots[slot].lock().unwrap_or_else(|e| e.into_inner());
                    let out = &mut *out;
                    if plan.of(k).1.len() == 1 {
                        *s = model_chunks(k, out, true, &mut |_, _| {});
                        let grads = ModelGrads {
                            u: &mut out.grad_u,
                            v: &mut out.grad_v,
                            w: &mut out.grad_w,
                        };
                        each(k, s, grads);
                        return;
                    }
                    let mut sum = sums[slot].lock().unwrap_or_else(|e| e.into_inner());
                    let [su, sv, sw] = &mut *sum;
                    *s = model_chunks(k, out, true, &mut |i, chunk| {
                        su.resize(chunk.grad_u.len(), F::zero());
                        sv.resize(chunk.grad_v.len(), F::zero());
                        sw.resize(chunk.grad_w.len(), F::zero());
                        accumulate_chunk([&mut *su, &mut *sv, &mut *sw], chunk, i == 0)
                    });
                    each(
                        k,
                        s,
                        ModelGrads {
                            u: su,
                            v: sv,
                            w: sw,
                        },
                    );
                });
                let sums: Vec<[Vec<F>; 3]> = sums
                    .into_iter()
                    .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
                    .collect();
                self.keep_scratch(sums);
            }
        });
        let kept = slots
            .into_iter()
            .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
            .collect();
        self.keep_scratch(kept);
        stats
    }
}

/// Where a pass's gradients go.
pub(super) enum GradsTo<'g, F> {
    /// Nowhere: an evaluation, which computes none.
    Nowhere,
    /// Every model's gradient into its place in one batch buffer.
    Buffer(WeightsViewMut<'g, F>),
    /// Each model's gradient to the caller's consumer as soon as it is complete
    /// ([`crate::engine::Backend::loss_and_grad_each`]).
    Each(&'g GradConsumer<'g, F>),
}

/// Which pairs (context) and chunks each model of a [`CpuBackend::run_by_model`] pass
/// takes: model `k` those of group `group_of[k]` (group 0 for all when `group_of` is
/// empty).
pub(super) struct ModelPlan<'p, 'a, F> {
    pub(super) contexts: &'p [tile::Context<'a, F>],
    pub(super) chunks: &'p [Vec<(usize, usize)>],
    pub(super) group_of: &'p [usize],
}

impl<'a, F> ModelPlan<'_, 'a, F> {
    fn of(&self, k: usize) -> (&tile::Context<'a, F>, &[(usize, usize)]) {
        let g = self.group_of.get(k).copied().unwrap_or(0);
        (&self.contexts[g], &self.chunks[g])
    }
}

/// From this many models per worker thread on, a pass runs one task per model
/// ([`CpuBackend::run_by_model`]) rather than one per chunk: the models alone then
/// balance the threads.
pub(super) const MODELS_PER_THREAD: usize = 4;

/// [`accumulate`] of a chunk's dU, dV, dW into `dst`'s three parts.
fn accumulate_chunk<F: Real>(dst: [&mut [F]; 3], chunk: &tile::JobResult<F>, first: bool) {
    let parts = [&chunk.grad_u, &chunk.grad_v, &chunk.grad_w];
    for (dst, part) in dst.into_iter().zip(parts) {
        accumulate(dst, part, first);
    }
}

/// Copies the first chunk's gradient `part` to `dst`, adds the next ones.
fn accumulate<F: Real>(dst: &mut [F], part: &[F], first: bool) {
    if first {
        dst.copy_from_slice(part);
    } else {
        dst.iter_mut().zip(part).for_each(|(o, g)| *o += *g);
    }
}
