//! Run-time instruction-set dispatch for the fused job.
//!
//! [`super::tile::job`] is compiled three times: for AVX-512, for AVX2+FMA and for the
//! baseline target. The best level the CPU supports is picked once; setting
//! `CLOCKWORK_SIMD=avx2` or `=scalar` caps it (to compare paths or rule one out).

use super::tile::{self, Act, Context, JobResult, Pow, Relu, Square};
use crate::model::Activation;
use crate::real::Real;
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

pub(crate) fn run_job<F: Real>(
    ctx: &Context<F>,
    k: usize,
    range: (usize, usize),
    want: bool,
    out: &mut JobResult<F>,
) {
    match ctx.core.activation {
        Activation::Square => dispatch(ctx, Square, k, range, want, out),
        Activation::Relu => dispatch(ctx, Relu, k, range, want, out),
        Activation::Pow(n) => dispatch(ctx, Pow(n), k, range, want, out),
    }
}

fn dispatch<F: Real, A: Act<F>>(
    ctx: &Context<F>,
    act: A,
    k: usize,
    range: (usize, usize),
    want: bool,
    out: &mut JobResult<F>,
) {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: the level was detected on this CPU.
        match level() {
            Level::Avx512 => return unsafe { job_avx512(ctx, act, k, range, want, out) },
            Level::Avx2 => return unsafe { job_avx2(ctx, act, k, range, want, out) },
            Level::Scalar => {}
        }
    }
    tile::job(ctx, act, k, range, want, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
unsafe fn job_avx512<F: Real, A: Act<F>>(
    ctx: &Context<F>,
    act: A,
    k: usize,
    range: (usize, usize),
    want: bool,
    out: &mut JobResult<F>,
) {
    tile::job(ctx, act, k, range, want, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn job_avx2<F: Real, A: Act<F>>(
    ctx: &Context<F>,
    act: A,
    k: usize,
    range: (usize, usize),
    want: bool,
    out: &mut JobResult<F>,
) {
    tile::job(ctx, act, k, range, want, out)
}
