//! Run-time instruction-set dispatch for the fused job.
//!
//! [`super::tile::job`] is compiled three times: for AVX-512, for AVX2+FMA and for the
//! baseline target. The best level the CPU supports is picked once; setting
//! `CLOCKWORK_SIMD=avx2` or `=scalar` caps it (to compare paths or rule one out).

use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    Scalar,
    Avx2,
    Avx512,
}

pub(crate) fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let cap = match std::env::var("CLOCKWORK_SIMD").as_deref() {
            Ok("scalar") => Level::Scalar,
            Ok("avx2") => Level::Avx2,
            _ => Level::Avx512,
        };
        detect().min(cap)
    })
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Level {
    if is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("fma")
    {
        Level::Avx512
    } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        Level::Avx2
    } else {
        Level::Scalar
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Level {
    Level::Scalar
}

pub(crate) fn level_name() -> &'static str {
    match level() {
        Level::Scalar => "scalar",
        Level::Avx2 => "avx2+fma",
        Level::Avx512 => "avx512",
    }
}

/// Flush-to-zero and denormals-are-zero (the MXCSR's FTZ and DAZ bits) while a job
/// runs, restored when it ends, so the caller's floating-point environment is left as it
/// was. Once a model fits its pairs, the softmax gradient of the wrong classes is
/// e^(−87)/N and below: subnormal in f32, and every FMA on a subnormal takes a microcode
/// assist. A sweep of the explainer model (AdamW, weight decay) slowed to a tenth of its
/// dry-run speed after ~2000 steps, nine tenths of the time inside the products; values
/// under 1.2e-38 change nothing a loss or a gradient step can see.
pub(crate) struct FlushDenormals {
    #[cfg(target_arch = "x86_64")]
    saved: u32,
}

impl FlushDenormals {
    const FTZ_DAZ: u32 = 0x8040;

    #[inline(always)]
    pub(crate) fn new() -> FlushDenormals {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: SSE is part of x86-64; only the FTZ and DAZ bits change.
            #[allow(deprecated)]
            let saved = unsafe { std::arch::x86_64::_mm_getcsr() };
            #[allow(deprecated)]
            unsafe {
                std::arch::x86_64::_mm_setcsr(saved | Self::FTZ_DAZ)
            };
            FlushDenormals { saved }
        }
        #[cfg(not(target_arch = "x86_64"))]
        FlushDenormals {}
    }
}

impl Drop for FlushDenormals {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: restores the register read in `new`.
        #[cfg(target_arch = "x86_64")]
        #[allow(deprecated)]
        unsafe {
            std::arch::x86_64::_mm_setcsr(self.saved)
        };
    }
}

/// Defines `run_job` for a generic fused job `$job(ctx, act, k, range, want, out)`: σ
/// picked at compile time (one monomorphization per activation), the instruction set at
/// run time — `$job` is compiled three times, inside an AVX-512 function, an AVX2+FMA one
/// and the baseline one, so its lane-wise loops vectorize for each. The token job (here)
/// and the dense job (`super::dense`) both use it.
macro_rules! per_isa_job {
    ($job:path) => {
        /// The job for model `k`, pairs `range`, at the best instruction set this CPU has
        /// (see `super::simd`).
        pub(crate) fn run_job<F: $crate::real::Real>(
            ctx: &$crate::engine::cpu::tile::Context<F>,
            k: usize,
            range: (usize, usize),
            want: bool,
            out: &mut $crate::engine::cpu::tile::JobResult<F>,
        ) {
            use $crate::engine::cpu::tile::{Pow, Relu, Square};
            use $crate::model::Activation;
            match ctx.core.activation {
                Activation::Square => dispatch(ctx, Square, k, range, want, out),
                Activation::Relu => dispatch(ctx, Relu, k, range, want, out),
                Activation::Pow(n) => dispatch(ctx, Pow(n), k, range, want, out),
            }
        }

        fn dispatch<F: $crate::real::Real, A: $crate::engine::cpu::tile::Act<F>>(
            ctx: &$crate::engine::cpu::tile::Context<F>,
            act: A,
            k: usize,
            range: (usize, usize),
            want: bool,
            out: &mut $crate::engine::cpu::tile::JobResult<F>,
        ) {
            let _flush = $crate::engine::cpu::simd::FlushDenormals::new();
            #[cfg(target_arch = "x86_64")]
            {
                use $crate::engine::cpu::simd::{level, Level};
                // SAFETY: the level was detected on this CPU.
                match level() {
                    Level::Avx512 => return unsafe { job_avx512(ctx, act, k, range, want, out) },
                    Level::Avx2 => return unsafe { job_avx2(ctx, act, k, range, want, out) },
                    Level::Scalar => {}
                }
            }
            $job(ctx, act, k, range, want, out)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        unsafe fn job_avx512<F: $crate::real::Real, A: $crate::engine::cpu::tile::Act<F>>(
            ctx: &$crate::engine::cpu::tile::Context<F>,
            act: A,
            k: usize,
            range: (usize, usize),
            want: bool,
            out: &mut $crate::engine::cpu::tile::JobResult<F>,
        ) {
            $job(ctx, act, k, range, want, out)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn job_avx2<F: $crate::real::Real, A: $crate::engine::cpu::tile::Act<F>>(
            ctx: &$crate::engine::cpu::tile::Context<F>,
            act: A,
            k: usize,
            range: (usize, usize),
            want: bool,
            out: &mut $crate::engine::cpu::tile::JobResult<F>,
        ) {
            $job(ctx, act, k, range, want, out)
        }
    };
}
pub(crate) use per_isa_job;

per_isa_job!(super::tile::job);

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::FlushDenormals;

    /// `MIN_POSITIVE / 2`, computed at run time (each call its own multiply).
    fn half_of_smallest_normal() -> f32 {
        std::hint::black_box(f32::MIN_POSITIVE) * std::hint::black_box(0.5f32)
    }

    #[test]
    #[allow(deprecated)]
    fn denormals_flush_inside_a_job_and_the_callers_mode_comes_back() {
        let before = unsafe { std::arch::x86_64::_mm_getcsr() };
        assert!(half_of_smallest_normal() > 0.0, "subnormal outside a job");
        {
            let _flush = FlushDenormals::new();
            assert_eq!(half_of_smallest_normal(), 0.0, "flushed to zero inside");
        }
        // The mode bits; the low six are sticky exception flags the multiplies set.
        let mode = |csr: u32| csr & !0x3f;
        assert_eq!(
            mode(unsafe { std::arch::x86_64::_mm_getcsr() }),
            mode(before)
        );
        assert!(half_of_smallest_normal() > 0.0);
    }
}
