//! The fused per-job loop: embedding gather + σ, logits GEMM, loss epilogue, the two
//! backward GEMMs and the σ'-scatter, one tile at a time.
//!
//! Everything here is `#[inline(always)]` and generic so that [`super::simd`] can
//! compile it once per instruction set; the loops are written lane-wise (fixed-width
//! accumulators) so the compiler vectorizes them without reassociating floating point.

use super::epilogue::{epilogue_columns, COLUMN_BLOCK};
use crate::engine::{CoreSpec, HeadStats};
use crate::model::WeightsView;
use crate::real::Real;
use crate::task::PairSet;

/// What every job of one pass shares: the problem, the weights and the tiling.
pub struct Context<'a, F> {
    /// The activation and loss of the pass.
    pub core: CoreSpec,
    /// The effective weights of every model of the batch.
    pub weights: WeightsView<'a, F>,
    /// The pairs of the pass; a job reads its range of them.
    pub pairs: &'a PairSet,
    /// Most rows per tile (a job balances its tiles below this, see [`balanced_tile`]).
    pub tile_rows: usize,
    /// 1 / (number of pairs): the loss is a mean over all pairs, not per chunk.
    pub inv_n: f64,
}

/// What one job produces: its share of the loss statistics and (when asked for) its
/// partial gradients, plus its tile workspaces. The backend keeps these between calls
/// so that a step allocates (and page-faults) nothing.
#[derive(Default)]
pub struct JobResult<F> {
    /// The job's share of the mean loss (already divided by the pass's pair count).
    pub loss: f64,
    /// Pairs of the job classified correctly.
    pub correct: usize,
    /// Smallest margin over the job's pairs.
    pub min_margin: f64,
    /// The job's share of each head's figures under a head layout (empty without one).
    pub heads: Vec<HeadStats>,
    /// The job's partial dL/dU (p × m, zeroed by [`JobResult::reset`]; empty without
    /// gradients).
    pub grad_u: Vec<F>,
    /// The job's partial dL/dV, like `grad_u`.
    pub grad_v: Vec<F>,
    /// The job's partial dL/dW (n_out × m).
    pub grad_w: Vec<F>,
    hidden: Vec<F>,
    logits: Vec<F>,
    delta: Vec<F>,
    /// A fourth workspace, for the dense-input job's input tile (`super::dense`).
    extra: Vec<F>,
}

impl<F: Real> JobResult<F> {
    /// Clears the statistics and sizes the gradients (zeroed) for a new job: `embed_len`
    /// elements for each embedding gradient, `w_len` for W's (none without `want_grads`).
    /// Under a head layout the per-head figures are cleared by the head epilogue.
    pub fn reset(&mut self, want_grads: bool, embed_len: usize, w_len: usize) {
        self.loss = 0.0;
        self.correct = 0;
        self.min_margin = f64::INFINITY;
        self.heads.clear();
        let len = |n: usize| if want_grads { n } else { 0 };
        reset(&mut self.grad_u, len(embed_len));
        reset(&mut self.grad_v, len(embed_len));
        reset(&mut self.grad_w, len(w_len));
    }
}

impl<F> JobResult<F> {
    /// The job's four tile workspaces, taken out (the dense-input job's input,
    /// pre-activation, hidden and logits tiles); [`JobResult::put_back`] returns them so
    /// the next pass reuses their storage.
    pub(super) fn take_workspaces(&mut self) -> [Vec<F>; 4] {
        [
            std::mem::take(&mut self.extra),
            std::mem::take(&mut self.delta),
            std::mem::take(&mut self.hidden),
            std::mem::take(&mut self.logits),
        ]
    }

    /// Gives back what [`JobResult::take_workspaces`] took.
    pub(super) fn put_back(&mut self, [extra, delta, hidden, logits]: [Vec<F>; 4]) {
        (self.extra, self.delta, self.hidden, self.logits) = (extra, delta, hidden, logits);
    }
}

#[cfg(feature = "dev-kernels")]
impl<F> JobResult<F> {
    /// The job's three tile workspaces (the production loop's hidden, logits and delta),
    /// for a harness kernel to size and use as it likes; like the production ones they
    /// are kept between passes, so a kernel's pass allocates nothing either.
    pub fn workspaces(&mut self) -> [&mut Vec<F>; 3] {
        [&mut self.hidden, &mut self.logits, &mut self.delta]
    }
}

/// Clears `v` and sets it to `len` zeros without giving back its allocation.
#[inline(always)]
fn reset<F: Real>(v: &mut Vec<F>, len: usize) {
    v.clear();
    v.resize(len, F::zero());
}

/// σ and σ' with the activation known at compile time, so the elementwise loops
/// vectorize without a branch on the activation.
pub trait Act<F: Real>: Copy + Send + Sync {
    /// σ(x).
    fn act(self, x: F) -> F;
    /// σ'(x) (ReLU's is 0 at 0, as in the reference).
    fn grad(self, x: F) -> F;
}

/// σ(x) = x².
#[derive(Clone, Copy)]
pub struct Square;
/// σ(x) = max(x, 0).
#[derive(Clone, Copy)]
pub struct Relu;
/// σ(x) = xⁿ.
#[derive(Clone, Copy)]
pub struct Pow(pub u32);

impl<F: Real> Act<F> for Square {
    #[inline(always)]
    fn act(self, x: F) -> F {
        x * x
    }
    #[inline(always)]
    fn grad(self, x: F) -> F {
        x + x
    }
}

impl<F: Real> Act<F> for Relu {
    #[inline(always)]
    fn act(self, x: F) -> F {
        if x > F::zero() {
            x
        } else {
            F::zero()
        }
    }
    #[inline(always)]
    fn grad(self, x: F) -> F {
        if x > F::zero() {
            F::one()
        } else {
            F::zero()
        }
    }
}

impl<F: Real> Act<F> for Pow {
    #[inline(always)]
    fn act(self, x: F) -> F {
        let mut r = x;
        for _ in 1..self.0 {
            r *= x;
        }
        r
    }
    #[inline(always)]
    fn grad(self, x: F) -> F {
        let mut r = F::one();
        for _ in 1..self.0 {
            r *= x;
        }
        r * F::of(self.0 as f64)
    }
}

/// The tile height for a job of `rows` rows: the fewest tiles of at most `max_tile`
/// rows, all of (nearly) one height, so no job ends on a sliver of a tile that runs the
/// products at a fraction of their speed.
#[inline(always)]
pub fn balanced_tile(rows: usize, max_tile: usize) -> usize {
    let tiles = rows.div_ceil(max_tile.max(1)).max(1);
    rows.div_ceil(tiles).max(1)
}

/// One job: model `k`, pairs `start..end`.
#[inline(always)]
pub(crate) fn job<F: Real, A: Act<F>>(
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
    // Never more than the job's rows, so it also sizes the workspaces.
    let tile_rows = balanced_tile(end - start, ctx.tile_rows);
    let grad_len = |n: usize| if want_grads { n } else { 0 };
    out.reset(want_grads, p * m, n_out * m);
    // The logits tile is class-major (`logits[c·ld + r]`) for the column epilogue, or
    // row-major under a head layout, whose epilogue cuts each row into heads. The
    // products only see the strides: element (row r, class c) at r·row_step + c·class_step.
    let class_major = ctx.pairs.heads.is_none();
    let ld = tile_rows.div_ceil(COLUMN_BLOCK) * COLUMN_BLOCK;
    let (row_step, class_step) = if class_major { (1, ld) } else { (n_out, 1) };
    // Workspaces: every element is written before it is read, so no zeroing needed
    // beyond the first growth.
    let mut hidden = std::mem::take(&mut out.hidden);
    let mut logits = std::mem::take(&mut out.logits);
    let mut delta = std::mem::take(&mut out.delta);
    hidden.resize(tile_rows * m, F::zero());
    logits.resize(ld * n_out, F::zero());
    delta.resize(grad_len(tile_rows * m), F::zero());
    let mut t0 = start;
    while t0 < end {
        let t1 = (t0 + tile_rows).min(end);
        let rows = t1 - t0;
        let (a, b, y) = (
            &ctx.pairs.a[t0..t1],
            &ctx.pairs.b[t0..t1],
            &ctx.pairs.label[t0..t1],
        );

        // hidden = σ(U[a] + V[b]), built here and nowhere else.
        for r in 0..rows {
            let (ua, vb) = (&u[a[r] as usize * m..][..m], &v[b[r] as usize * m..][..m]);
            for ((h, &x), &z) in hidden[r * m..(r + 1) * m].iter_mut().zip(ua).zip(vb) {
                *h = act.act(x + z);
            }
        }
        // logits (rows × n_out) = hidden (rows × m) · Wᵀ (m × n_out)
        unsafe {
            F::gemm(
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
                row_step as isize,
                class_step as isize,
            );
        }
        match &ctx.pairs.heads {
            None => epilogue_columns(
                ctx.core.loss,
                &mut logits,
                ld,
                n_out,
                rows,
                y,
                ctx.inv_n,
                out,
            ),
            Some(heads) => super::heads::epilogue_rows(
                ctx.core.loss,
                heads,
                &mut logits[..rows * n_out],
                y,
                ctx.inv_n,
                out,
            ),
        }
        if want_grads {
            // logits now holds G. dW (n_out × m) += Gᵀ (n_out × rows) · hidden (rows × m)
            // D (rows × m) = G (rows × n_out) · W (n_out × m)
            unsafe {
                F::gemm(
                    n_out,
                    rows,
                    m,
                    F::one(),
                    logits.as_ptr(),
                    class_step as isize,
                    row_step as isize,
                    hidden.as_ptr(),
                    m as isize,
                    1,
                    F::one(),
                    out.grad_w.as_mut_ptr(),
                    m as isize,
                    1,
                );
                F::gemm(
                    rows,
                    n_out,
                    m,
                    F::one(),
                    logits.as_ptr(),
                    row_step as isize,
                    class_step as isize,
                    w.as_ptr(),
                    m as isize,
                    1,
                    F::zero(),
                    delta.as_mut_ptr(),
                    m as isize,
                    1,
                );
            }
            // dS = σ'(U[a] + V[b]) ⊙ D, recomputing the pre-activation rather than storing it.
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
    out.hidden = hidden;
    out.logits = logits;
    out.delta = delta;
}
