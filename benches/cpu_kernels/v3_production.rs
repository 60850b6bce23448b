//! v3: the production path, `CpuBackend` as the trainer runs it — the fused tile loop with
//! the hand-blocked narrow kernels (`src/engine/cpu/narrow/`) for f32 with up to 64
//! classes on AVX2/AVX-512, the `gemm` crate's kernels for the rest (f64, p > 64).
//! `CLOCKWORK_KERNELS=gemm` makes it the gemm-only path of earlier builds.

use clockwork::engine::cpu::CpuBackend;
use clockwork::engine::{Backend, CoreSpec, PassStats};
use clockwork::error::Result;
use clockwork::model::Weights;
use clockwork::real::Real;
use clockwork::task::PairSet;

/// One pass (with `grads`: loss and gradient; without: forward only) of the production
/// backend.
pub fn pass<F: Real>(
    backend: &CpuBackend,
    core: CoreSpec,
    weights: &Weights<F>,
    pairs: &PairSet,
    grads: Option<&mut Weights<F>>,
) -> Result<Vec<PassStats>> {
    match grads {
        Some(grads) => backend.loss_and_grad(core, weights, pairs, grads),
        None => backend.evaluate(core, weights, pairs),
    }
}
