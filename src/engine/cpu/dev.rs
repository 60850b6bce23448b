//! The CPU backend's internals for the kernel development harness (benches/cpu_kernels/,
//! `cargo bench --bench cpu_kernels --features dev-kernels`), compiled only with the
//! `dev-kernels` feature and not a stable API.
//!
//! An alternative tile kernel runs through [`run_with_job`], inside the backend's own
//! chunking, thread pool and fixed-order reduction, so the harness times kernels against
//! the production path and nothing else differs.

use super::CpuBackend;
use crate::engine::{CoreSpec, PassStats};
use crate::error::Result;
use crate::model::{GradsBuffer, Weights};
use crate::real::Real;
use crate::task::PairSet;

pub use super::epilogue::epilogue_row;
pub use super::tile::{balanced_tile, Act, Context, JobResult, Pow, Relu, Square};

/// One pass of `backend` with `job` computing each job — model `k`, pairs
/// `start..end` — into its [`JobResult`] (reset it first: [`JobResult::reset`]) in place
/// of the production tile loop. With `grads` it is a
/// [`crate::engine::Backend::loss_and_grad`], without an `evaluate`, with the same
/// checks and results.
pub fn run_with_job<F: Real>(
    backend: &CpuBackend,
    core: CoreSpec,
    weights: &Weights<F>,
    pairs: &PairSet,
    grads: Option<&mut Weights<F>>,
    job: impl Fn(&Context<F>, usize, (usize, usize), bool, &mut JobResult<F>) + Sync,
) -> Result<Vec<PassStats>> {
    let grads = grads.map(|g| g as &mut dyn GradsBuffer<F>);
    backend.run_jobs(core, weights.view(), pairs, grads, job)
}

/// The instruction set the production path dispatched to ("avx512", "avx2+fma" or
/// "scalar"), for the harness's header.
pub fn simd_level() -> &'static str {
    super::simd::level_name()
}
