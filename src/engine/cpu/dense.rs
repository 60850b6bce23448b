//! The fused job for dense inputs (bit-string tasks): `hidden = σ(U x)` with `U` a dense
//! `n × m` first layer instead of the embedding gather `u[a] + v[b]`.
//!
//! # Strategy
//! Per tile of `rows` examples: unpack the masks into the input tile `X` (rows × n, ±1 or
//! 0/1), `S = X·U` (one GEMM, rows × n × m), `hidden = σ(S)`, logits `= hidden·Wᵀ`, the
//! shared loss epilogue ([`super::epilogue::epilogue_columns`], on a class-major tile), `dW += Gᵀ·hidden`, `D = G·W` (written
//! over `hidden`, no longer needed), `D ⊙= σ'(S)` and `dU += Xᵀ·D` (a GEMM again, where
//! the token job scatters rows). Four products, all through [`Real::gemm`]; the
//! elementwise loops are compiled per instruction set like the token job's. V is absent:
//! its gradient stays zero. Chunking, threads and the fixed-order reduction are the
//! backend's, so a model's bits do not depend on the batch or the thread count.

use super::epilogue::{epilogue_columns, COLUMN_BLOCK};
use super::tile::{balanced_tile, Act, Context, JobResult};
use crate::real::Real;

super::simd::per_isa_job!(job);

/// `c (r×n) = a·b + β·c` with explicit strides (row, column) for `a`, `b` and `c`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gemm<F: Real>(
    (r, kk, n): (usize, usize, usize),
    a: &[F],
    (a_rs, a_cs): (usize, usize),
    b: &[F],
    (b_rs, b_cs): (usize, usize),
    beta: F,
    (c, (c_rs, c_cs)): (&mut [F], (usize, usize)),
) {
    debug_assert!(r == 0 || n == 0 || c.len() > (r - 1) * c_rs + (n - 1) * c_cs);
    // SAFETY: every caller passes slices holding the r×kk, kk×n and r×n matrices at
    // these strides (sized from the same rows, n, m, n_out).
    unsafe {
        F::gemm(
            r,
            kk,
            n,
            F::one(),
            a.as_ptr(),
            a_rs as isize,
            a_cs as isize,
            b.as_ptr(),
            b_rs as isize,
            b_cs as isize,
            beta,
            c.as_mut_ptr(),
            c_rs as isize,
            c_cs as isize,
        );
    }
}

/// One dense job: model `k`, examples `start..end` (module docs).
#[inline(always)]
fn job<F: Real, A: Act<F>>(
    ctx: &Context<F>,
    act: A,
    k: usize,
    (start, end): (usize, usize),
    want_grads: bool,
    out: &mut JobResult<F>,
) {
    let (n, encoding) = ctx
        .pairs
        .inputs
        .bits()
        .expect("the backend runs the dense job on bit-string pairs only");
    let weights = ctx.weights;
    let (u, _, w) = weights.model(k);
    let (m, n_out) = (weights.width(), weights.n_out());
    let tile_rows = balanced_tile(end - start, ctx.tile_rows);
    out.reset(want_grads, n * m, n_out * m);
    let [mut x, mut pre, mut hidden, mut logits, spare] = out.take_workspaces();
    x.resize(tile_rows * n, F::zero());
    pre.resize(tile_rows * m, F::zero());
    hidden.resize(tile_rows * m, F::zero());
    // Class-major logits (`logits[c·ld + r]`) for the column epilogue: with two classes
    // a row-wise softmax is all scalar tails.
    let ld = tile_rows.div_ceil(COLUMN_BLOCK) * COLUMN_BLOCK;
    logits.resize(ld * n_out, F::zero());
    let (clear, set) = (F::of(encoding.value(false)), F::of(encoding.value(true)));
    let mut t0 = start;
    while t0 < end {
        let t1 = (t0 + tile_rows).min(end);
        let rows = t1 - t0;
        let (masks, y) = (&ctx.pairs.a[t0..t1], &ctx.pairs.label[t0..t1]);
        for (row, &mask) in x.chunks_exact_mut(n).zip(masks) {
            for (j, v) in row.iter_mut().enumerate() {
                *v = if mask >> j & 1 == 1 { set } else { clear };
            }
        }
        // S (rows × m) = X (rows × n) · U (n × m); hidden = σ(S).
        gemm(
            (rows, n, m),
            &x,
            (n, 1),
            u,
            (m, 1),
            F::zero(),
            (&mut pre, (m, 1)),
        );
        for (h, &s) in hidden[..rows * m].iter_mut().zip(&pre[..rows * m]) {
            *h = act.act(s);
        }
        // logits (rows × n_out) = hidden · Wᵀ, then G in place.
        gemm(
            (rows, m, n_out),
            &hidden,
            (m, 1),
            w,
            (1, m),
            F::zero(),
            (&mut logits, (1, ld)),
        );
        epilogue_columns(
            ctx.core.loss,
            &mut logits,
            ld,
            n_out,
            rows,
            y,
            ctx.inv_n,
            out,
        );
        if want_grads {
            // dW (n_out × m) += Gᵀ · hidden
            gemm(
                (n_out, rows, m),
                &logits,
                (ld, 1),
                &hidden,
                (m, 1),
                F::one(),
                (&mut out.grad_w, (m, 1)),
            );
            // D (rows × m) = G · W, over hidden; D ⊙= σ'(S).
            gemm(
                (rows, n_out, m),
                &logits,
                (1, ld),
                w,
                (m, 1),
                F::zero(),
                (&mut hidden, (m, 1)),
            );
            for (d, &s) in hidden[..rows * m].iter_mut().zip(&pre[..rows * m]) {
                *d *= act.grad(s);
            }
            // dU (n × m) += Xᵀ (n × rows) · D (rows × m)
            gemm(
                (n, rows, m),
                &x,
                (1, n),
                &hidden,
                (m, 1),
                F::one(),
                (&mut out.grad_u, (m, 1)),
            );
        }
        t0 = t1;
    }
    out.put_back([x, pre, hidden, logits, spare]);
}
