//! The floating-point types the engine runs in (f32, f64) and what it needs of them.
//!
//! Everything numeric in clockwork is generic over [`Real`], so the same code path
//! serves the fast f32 engine and the f64 reference used by the correctness tests.

use std::fmt::Debug;

/// A floating-point element type the engine can train in.
pub trait Real:
    num_traits::Float
    + num_traits::FromPrimitive
    + Default
    + Debug
    + Send
    + Sync
    + std::iter::Sum
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::ops::MulAssign
    + bytemuck::Pod
    + 'static
{
    /// Name used in configs and checkpoints ("f32" or "f64").
    const NAME: &'static str;
    /// safetensors dtype of this type.
    const DTYPE: safetensors::Dtype;
    /// The config's name for this type (`RunConfig::dtype` of a run in it).
    const ELEMENT: crate::kinds::Dtype;

    /// `C = alpha·A·B + beta·C` with arbitrary row/column strides (`beta = 0` never
    /// reads `C`), through the `gemm` crate (its AVX-512 / AVX2 kernels, picked at run
    /// time). `A` is `m×k`, `B` is `k×n`, `C` is `m×n`. Single-threaded: the engine
    /// parallelizes over jobs, not inside a product.
    ///
    /// # Safety
    /// The pointers and strides must describe valid, non-overlapping (for `C`) memory.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    ) {
        // gemm's convention is dst = alpha·dst + beta·lhs·rhs, with (column, row) strides.
        gemm::gemm(
            m,
            n,
            k,
            c,
            csc,
            rsc,
            beta != Self::zero(),
            a,
            csa,
            rsa,
            b,
            csb,
            rsb,
            beta,
            alpha,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }

    /// `exp` used inside the softmax. f32 uses a polynomial that the compiler can
    /// vectorize (relative error below 2e-7); f64 uses the exact libm `exp` because the
    /// f64 path is the reference that finite-difference checks rely on.
    fn softmax_exp(x: Self) -> Self;

    /// Converts from f64, rounding to nearest for f32 (values beyond f32's range become
    /// ±inf).
    fn of(x: f64) -> Self {
        <Self as num_traits::FromPrimitive>::from_f64(x).expect("f64 converts to any Real")
    }
    /// Converts to f64 (exact for both f32 and f64).
    fn f64(self) -> f64 {
        num_traits::ToPrimitive::to_f64(&self).expect("Real converts to f64")
    }
}

impl Real for f32 {
    const NAME: &'static str = "f32";
    const DTYPE: safetensors::Dtype = safetensors::Dtype::F32;
    const ELEMENT: crate::kinds::Dtype = crate::kinds::Dtype::F32;

    #[inline(always)]
    fn softmax_exp(x: f32) -> f32 {
        fast_exp_f32(x)
    }
}

impl Real for f64 {
    const NAME: &'static str = "f64";
    const DTYPE: safetensors::Dtype = safetensors::Dtype::F64;
    const ELEMENT: crate::kinds::Dtype = crate::kinds::Dtype::F64;

    #[inline(always)]
    fn softmax_exp(x: f64) -> f64 {
        x.exp()
    }
}

/// `exp(x)` for `x <= 0` (the softmax only ever exponentiates `logit - max`), written
/// branch-free with plain arithmetic so a loop over it compiles to SIMD code.
///
/// Range reduction `x = n·ln2 + r`, |r| <= ln2/2, then a degree-6 polynomial for `e^r`
/// and `2^n` built in the exponent bits. Inputs are clamped to [-87, 88], so anything
/// below -87 gives `e^-87 ≈ 1.6e-38` rather than 0 (negligible next to the max term, 1).
#[inline(always)]
pub fn fast_exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E + 0.5).floor();
    let r = x - n * LN2_HI - n * LN2_LO;
    // Taylor coefficients of e^r to degree 6 (|r| <= 0.347: truncation error < 3e-8).
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // 2^n from n's bits: adding 1.5·2^23 puts the integer n in the low mantissa bits
    // (exact for |n| < 2^22); the shift keeps n + 127, the biased exponent, alone.
    // Not `n as i32`, whose saturating conversion (NaN → 0) kept the loop scalar.
    const ROUND: f32 = 12_582_912.0;
    let scale = f32::from_bits((n + ROUND).to_bits().wrapping_add(127) << 23);
    p * scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_is_accurate_on_the_softmax_range() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x <= 0.0 {
            let exact = (x as f64).exp();
            let got = fast_exp_f32(x) as f64;
            worst = worst.max(((got - exact) / exact).abs());
            x += 0.001;
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
    }
}
