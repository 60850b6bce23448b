//! v1: the production tile loop (gather + σ, logits product, softmax-CE epilogue, dW and
//! D products, σ'-scatter) with bluss's matrixmultiply (`sgemm` / `dgemm`, its own
//! packing and AVX2/FMA microkernels) for the three products. The portable comparison:
//! the production path (v3) differs from it only in the GEMM library, which measured
//! ~20% faster here.

use clockwork::engine::cpu::dev::{
    self, balanced_tile, epilogue_row, Act, Context, JobResult, Pow, Relu, Square,
};
use clockwork::engine::cpu::CpuBackend;
use clockwork::engine::{CoreSpec, PassStats};
use clockwork::error::Result;
use clockwork::model::{Activation, Weights};
use clockwork::real::Real;
use clockwork::task::PairSet;

/// The element types matrixmultiply multiplies.
pub trait MmGemm: Real {
    /// `C = alpha·A·B + beta·C` with matrixmultiply's (row, column) strides.
    ///
    /// # Safety
    /// As for [`Real::gemm`].
    #[allow(clippy::too_many_arguments)]
    unsafe fn mm_gemm(
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
    );
}

impl MmGemm for f32 {
    unsafe fn mm_gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: f32,
        a: *const f32,
        rsa: isize,
        csa: isize,
        b: *const f32,
        rsb: isize,
        csb: isize,
        beta: f32,
        c: *mut f32,
        rsc: isize,
        csc: isize,
    ) {
        matrixmultiply::sgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
    }
}

impl MmGemm for f64 {
    unsafe fn mm_gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: f64,
        a: *const f64,
        rsa: isize,
        csa: isize,
        b: *const f64,
        rsb: isize,
        csb: isize,
        beta: f64,
        c: *mut f64,
        rsc: isize,
        csc: isize,
    ) {
        matrixmultiply::dgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
    }
}

/// One pass (with `grads`: loss and gradient; without: forward only) through `backend`'s
/// chunking and reduction with the v1 job.
pub fn pass<F: MmGemm>(
    backend: &CpuBackend,
    core: CoreSpec,
    weights: &Weights<F>,
    pairs: &PairSet,
    grads: Option<&mut Weights<F>>,
) -> Result<Vec<PassStats>> {
    dev::run_with_job(
        backend,
        core,
        weights,
        pairs,
        grads,
        |ctx, k, range, want, out| match ctx.core.activation {
            Activation::Square => dispatch(ctx, Square, k, range, want, out),
            Activation::Relu => dispatch(ctx, Relu, k, range, want, out),
            Activation::Pow(n) => dispatch(ctx, Pow(n), k, range, want, out),
        },
    )
}

/// Compiles the job for the instruction set the production path runs on, so the
/// elementwise work is as fast as there and only the products differ.
fn dispatch<F: MmGemm, A: Act<F>>(
    ctx: &Context<F>,
    act: A,
    k: usize,
    range: (usize, usize),
    want: bool,
    out: &mut JobResult<F>,
) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        unsafe fn avx512<F: MmGemm, A: Act<F>>(
            ctx: &Context<F>,
            act: A,
            k: usize,
            range: (usize, usize),
            want: bool,
            out: &mut JobResult<F>,
        ) {
            job(ctx, act, k, range, want, out)
        }
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2<F: MmGemm, A: Act<F>>(
            ctx: &Context<F>,
            act: A,
            k: usize,
            range: (usize, usize),
            want: bool,
            out: &mut JobResult<F>,
        ) {
            job(ctx, act, k, range, want, out)
        }
        // SAFETY: the production path detected this level on this CPU.
        match dev::simd_level() {
            "avx512" => return unsafe { avx512(ctx, act, k, range, want, out) },
            "avx2+fma" => return unsafe { avx2(ctx, act, k, range, want, out) },
            _ => {}
        }
    }
    job(ctx, act, k, range, want, out)
}

/// One job: model `k`, pairs `start..end`; the production `tile::job` with `mm_gemm`.
#[inline(always)]
fn job<F: MmGemm, A: Act<F>>(
    ctx: &Context<F>,
    act: A,
    k: usize,
    (start, end): (usize, usize),
    want_grads: bool,
    out: &mut JobResult<F>,
) {
    let weights = ctx.weights;
    let (u, v, w) = weights.model(k);
    let (p, m, n_out) = (weights.n_in(), weights.width(), weights.n_out());
    let tile_rows = balanced_tile(end - start, ctx.tile_rows);
    out.reset(want_grads, p * m, n_out * m);
    let [hidden, logits, delta] = out.workspaces();
    let (mut hidden, mut logits, mut delta) = (
        std::mem::take(hidden),
        std::mem::take(logits),
        std::mem::take(delta),
    );
    hidden.resize(tile_rows * m, F::zero());
    logits.resize(tile_rows * n_out, F::zero());
    delta.resize(if want_grads { tile_rows * m } else { 0 }, F::zero());
    let mut t0 = start;
    while t0 < end {
        let t1 = (t0 + tile_rows).min(end);
        let rows = t1 - t0;
        let (a, b, y) = (
            &ctx.pairs.a[t0..t1],
            &ctx.pairs.b[t0..t1],
            &ctx.pairs.label[t0..t1],
        );
        for r in 0..rows {
            let (ua, vb) = (&u[a[r] as usize * m..][..m], &v[b[r] as usize * m..][..m]);
            for ((h, &x), &z) in hidden[r * m..(r + 1) * m].iter_mut().zip(ua).zip(vb) {
                *h = act.act(x + z);
            }
        }
        // SAFETY (all three products): the slices hold rows × m, rows × n_out and
        // n_out × m elements at the strides given.
        unsafe {
            F::mm_gemm(
                rows,
                m,
                n_out,
                F::one(),
                hidden.as_ptr(),
                m as isize,
                1,
                w.as_ptr(),
                1,
                m as isize,
                F::zero(),
                logits.as_mut_ptr(),
                n_out as isize,
                1,
            );
        }
        for r in 0..rows {
            epilogue_row(
                ctx.core.loss,
                &mut logits[r * n_out..(r + 1) * n_out],
                y[r] as usize,
                ctx.inv_n,
                out,
            );
        }
        if want_grads {
            unsafe {
                F::mm_gemm(
                    n_out,
                    rows,
                    m,
                    F::one(),
                    logits.as_ptr(),
                    1,
                    n_out as isize,
                    hidden.as_ptr(),
                    m as isize,
                    1,
                    F::one(),
                    out.grad_w.as_mut_ptr(),
                    m as isize,
                    1,
                );
                F::mm_gemm(
                    rows,
                    n_out,
                    m,
                    F::one(),
                    logits.as_ptr(),
                    n_out as isize,
                    1,
                    w.as_ptr(),
                    m as isize,
                    1,
                    F::zero(),
                    delta.as_mut_ptr(),
                    m as isize,
                    1,
                );
            }
            for r in 0..rows {
                let (ia, ib) = (a[r] as usize * m, b[r] as usize * m);
                let d_row = &mut delta[r * m..(r + 1) * m];
                for ((d, &x), &z) in d_row.iter_mut().zip(&u[ia..ia + m]).zip(&v[ib..ib + m]) {
                    *d *= act.grad(x + z);
                }
                for (g, &d) in out.grad_u[ia..ia + m].iter_mut().zip(d_row.iter()) {
                    *g += d;
                }
                for (g, &d) in out.grad_v[ib..ib + m].iter_mut().zip(d_row.iter()) {
                    *g += d;
                }
            }
        }
        t0 = t1;
    }
    let [h, l, d] = out.workspaces();
    (*h, *l, *d) = (hidden, logits, delta);
}
