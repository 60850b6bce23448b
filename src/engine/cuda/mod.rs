//! The CUDA backend: hand-written fused kernels (kernels/*.cu) compiled at run time by
//! NVRTC, driven through cudarc with dynamic loading, so this crate builds and runs on
//! machines with no CUDA at all; asking for CUDA there gives one clear error line.
//!
//! Two ways in:
//! * [`CudaBackend`]: a [`Backend`](super::Backend) like the CPU one (loss, stats and the
//!   gradient of the effective weights; the host trainer does the rest). Works for every
//!   model the CPU trains (tied, factored, dense bit-string inputs, any activation/loss);
//!   runs in f32.
//! * the device-resident stepper (`stepper.rs`), which [`CudaBackend`] offers the trainer
//!   through [`Backend::resident_stepper`](super::Backend::resident_stepper): the whole
//!   training step on the device — pass, regularizer, Grokfast, GD/AdamW, each model with
//!   its own hyperparameters — captured once as a CUDA graph and replayed, with the
//!   metrics read back every N steps and never a host sync per step. f32, unfactored
//!   models whose batch shares one split.
//!
//! # The step on the device (kernels/, one file per kernel family)
//! Per chunk of pairs (the pairs are cut into chunks only when the per-chunk buffers would
//! exceed the memory budget):
//! 1. `fused_forward_ce.cu`: logits = `σ(U[a]+V[b])·Wᵀ`, the hidden activations built in the
//!    GEMM operand load; softmax-CE/MSE in the epilogue writes G = dL/dlogits and per-row
//!    loss and margin.
//! 2. `fused_backward.cu`: partial dW = Gᵀ·H over row splits (H recomputed in the operand
//!    load), and dS = σ'(s) ⊙ (G·W) with s recomputed in the epilogue.
//! 3. `reduce.cu`: split partials summed in order, dU/dV as segmented sums of dS over the
//!    rows of each token (CSR lists built once per pair set), per-model statistics.
//! 4. `optimizer_update.cu` (trainer only): per-neuron norms, regularizer value,
//!    divergence check, then one fused regularizer-gradient + Grokfast + optimizer kernel.
//!
//! A bit-string (dense-input) pair set runs the `*_bits` twins of steps 1–2, whose
//! hidden layer is `σ(X·U)` rebuilt from the packed masks inside the operand loads
//! (`bit_inputs.cuh`), and `dense_input.cu`'s dU = Xᵀ·dS (split over rows, partials summed
//! by `dw_reduce`) in place of the segmented sums; dV is zeroed (V is absent). Through
//! [`CudaBackend`] only: the resident stepper declines dense models.
//!
//! No atomics anywhere: every reduction has a fixed order, so results are bit-identical
//! run to run (fp32 by default; TF32 / bf16 tensor-core products are opt-in,
//! [`Precision`]).

mod backend;
mod buffers;
mod device;
pub mod kernels;
mod params;
mod stepper;

pub use backend::CudaBackend;
pub use stepper::DEFAULT_READ_EVERY;

use crate::error::{Error, Result};
pub use crate::kinds::Precision;

/// Whether the CUDA driver library can be loaded, or the one-line reason it cannot.
pub fn driver_status() -> std::result::Result<(), String> {
    // SAFETY: only tries to dlopen the library by its candidate names.
    if unsafe { cudarc::driver::sys::is_culib_present() } {
        Ok(())
    } else {
        Err(
            "the NVIDIA driver library libcuda.so was not found: install the NVIDIA driver, \
             or put the directory holding libcuda.so.1 in LD_LIBRARY_PATH before starting \
             the program"
                .to_string(),
        )
    }
}

/// Number of CUDA devices, or a one-line reason why CUDA cannot be used at all (missing
/// driver or NVRTC library, driver that finds no device). Never panics.
pub fn device_count() -> Result<usize> {
    let unavailable = |why: String| Error::backend(format!("CUDA unavailable: {why}"));
    driver_status().map_err(unavailable)?;
    kernels::nvrtc_status().map_err(unavailable)?;
    match cudarc::driver::CudaContext::device_count() {
        Ok(n) if n > 0 => Ok(n as usize),
        Ok(_) => Err(unavailable("the driver reports no CUDA device".into())),
        Err(e) => Err(unavailable(format!(
            "the driver reports no usable CUDA device ({e})"
        ))),
    }
}

/// (free, total) bytes of `cuda:device`'s memory as the driver reports them now (for
/// memory figures in benchmarks).
pub fn memory_info(device: usize) -> Result<(usize, usize)> {
    probe(device)?;
    let context = cudarc::driver::CudaContext::new(device)
        .map_err(|e| Error::backend_from(format!("cannot open cuda:{device}: {e}"), e))?;
    context
        .mem_get_info()
        .map_err(|e| Error::backend_from(format!("cuMemGetInfo on cuda:{device}: {e}"), e))
}

/// `Ok(())` when `cuda:N` can be used, else the one-line reason. Cheap: it does not
/// compile anything. Tests and benches use it to decide whether to skip.
pub fn probe(device: usize) -> Result<()> {
    let n = device_count()?;
    if device >= n {
        return Err(Error::backend(format!(
            "CUDA device cuda:{device} does not exist: this machine has {n} CUDA device(s) (cuda:0 .. cuda:{})",
            n - 1
        )));
    }
    Ok(())
}
