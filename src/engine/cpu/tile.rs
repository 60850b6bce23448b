//! The fused per-job loop: embedding gather + σ, logits GEMM, loss epilogue, the two
//! backward GEMMs and the σ'-scatter, one tile at a time.
//!
//! Everything here is `#[inline(always)]` and generic so that [`super::simd`] can
//! compile it once per instruction set; the loops are written lane-wise (fixed-width
//! accumulators) so the compiler vectorizes them without reassociating floating point.

use super::epilogue::{epilogue_columns, COLUMN_BLOCK};
#[cfg(target_arch = "x86_64")]
use super::narrow;
use super::narrow::Isa;
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
    /// The narrow logits kernel's row-major scratch, transposed into `logits`.
    logits_rows: Vec<F>,
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
    /// The job's five tile workspaces, taken out (the dense-input job's input,
    /// pre-activation, hidden and logits tiles and a spare; the token job's packed W,
    /// delta, hidden, logits and row-major logits); [`JobResult::put_back`] returns them
    /// so the next pass reuses their storage.
    pub(super) fn take_workspaces(&mut self) -> [Vec<F>; 5] {
        [
            std::mem::take(&mut self.extra),
            std::mem::take(&mut self.delta),
            std::mem::take(&mut self.hidden),
            std::mem::take(&mut self.logits),
            std::mem::take(&mut self.logits_rows),
        ]
    }

    /// Gives back what [`JobResult::take_workspaces`] took.
    pub(super) fn put_back(&mut self, [extra, delta, hidden, logits, rows]: [Vec<F>; 5]) {
        (self.extra, self.delta, self.hidden, self.logits) = (extra, delta, hidden, logits);
        self.logits_rows = rows;
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
    /// σ' as the narrow kernels evaluate it on SIMD lanes; a constant of the type, so
    /// the match on it folds away where the job is compiled.
    fn lane_grad(self) -> LaneGrad;
}

/// σ' in the form the narrow kernels' fused scatter computes on SIMD lanes, with the
/// same operations in the same order as [`Act::grad`] (so both give the same bits).
#[derive(Clone, Copy, Debug)]
pub enum LaneGrad {
    /// `x + x` (σ = x²).
    Double,
    /// 1 where `x > 0`, else 0 (ReLU).
    Step,
    /// `x·x·…·x` (n − 1 factors) · n (σ = xⁿ).
    Power(u32),
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
    #[inline(always)]
    fn lane_grad(self) -> LaneGrad {
        LaneGrad::Double
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
    #[inline(always)]
    fn lane_grad(self) -> LaneGrad {
        LaneGrad::Step
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
    #[inline(always)]
    fn lane_grad(self) -> LaneGrad {
        LaneGrad::Power(self.0)
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

/// The hand-blocked backward kernels ([`super::narrow`]) take a job's products when they
/// can: f32 on AVX2 or AVX-512, up to this many classes. Past it the `gemm` crate's
/// packed kernels win (p = 113, m = 512: measured in the commit that set it).
const NARROW_MAX_OUT: usize = 64;

/// Whether the narrow kernels may run: `CLOCKWORK_KERNELS=gemm` sends every product
/// through the `gemm` crate instead, to compare the two in one build (unset or `narrow`:
/// the default; another value is reported once on stderr and ignored).
fn narrow_allowed() -> bool {
    static ALLOWED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ALLOWED.get_or_init(|| match std::env::var("CLOCKWORK_KERNELS").as_deref() {
        Ok("gemm") => false,
        Ok("narrow") | Err(_) => true,
        Ok(other) => {
            eprintln!("clockwork: CLOCKWORK_KERNELS={other:?} is not gemm or narrow; using narrow");
            true
        }
    })
}

/// The instruction set of the narrow kernels for an `F` job with `n_out` classes, if any.
#[inline(always)]
fn narrow_isa<F: Real>(n_out: usize) -> Option<Isa> {
    let is_f32 = std::any::TypeId::of::<F>() == std::any::TypeId::of::<f32>();
    if is_f32 && n_out <= NARROW_MAX_OUT && narrow_allowed() {
        Isa::detect()
    } else {
        None
    }
}

/// `dS = σ'(U[a] + V[b]) ⊙ D` for one row (`d`: its `m` values of D) added into `dU[a]`
/// and `dV[b]`, recomputing the pre-activation rather than storing it.
#[inline(always)]
fn scatter_row<F: Real, A: Act<F>>(
    act: A,
    (u, v): (&[F], &[F]),
    a: u32,
    b: u32,
    d: &[F],
    out: &mut JobResult<F>,
) {
    let m = d.len();
    let (ia, ib) = (a as usize * m, b as usize * m);
    let (us, vs) = (&u[ia..ia + m], &v[ib..ib + m]);
    let (gu, gv) = (&mut out.grad_u[ia..ia + m], &mut out.grad_v[ib..ib + m]);
    for ((((gu, gv), &d), &x), &z) in gu.iter_mut().zip(gv).zip(d).zip(us).zip(vs) {
        let ds = d * act.grad(x + z);
        *gu += ds;
        *gv += ds;
    }
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
    out.reset(want_grads, p * m, n_out * m);
    // The logits tile is class-major (`logits[c·ld + r]`) for the column epilogue, or
    // row-major under a head layout, whose epilogue cuts each row into heads. The
    // products only see the strides: element (row r, class c) at r·row_step + c·class_step.
    let class_major = ctx.pairs.heads.is_none();
    let ld = tile_rows.div_ceil(COLUMN_BLOCK) * COLUMN_BLOCK;
    let (row_step, class_step) = if class_major { (1, ld) } else { (n_out, 1) };
    #[cfg(target_arch = "x86_64")]
    let logits_layout = if class_major {
        narrow::LogitsLayout::ClassMajor { ld }
    } else {
        narrow::LogitsLayout::Strided {
            row_step,
            class_step,
        }
    };
    // With the narrow kernels, hidden's rows (and W's, repacked) are padded with zeros to
    // whole vectors: `hs` neurons a row.
    let narrow = narrow_isa::<F>(n_out);
    let hs = narrow.map_or(m, |isa| m.div_ceil(isa.lanes()) * isa.lanes());
    // ... and the logits kernel reads Wᵀ packed as m rows of `cp` classes.
    let cp = narrow.map_or(n_out, |isa| n_out.div_ceil(isa.lanes()) * isa.lanes());
    // Workspaces: every element is written before it is read, so no zeroing needed
    // beyond the first growth.
    // `packed_w`: W with rows padded to `hs` neurons, then Wᵀ as m rows of `cp` classes.
    let [mut packed_w, mut delta, mut hidden, mut logits, mut logits_rows] = out.take_workspaces();
    hidden.resize(tile_rows * hs, F::zero());
    logits.resize(ld * n_out, F::zero());
    if narrow.is_some() {
        if class_major {
            logits_rows.resize(ld * cp, F::zero());
        }
        packed_w.clear();
        packed_w.resize(n_out * hs + m * cp, F::zero());
        let (w_padded, w_t) = packed_w.split_at_mut(n_out * hs);
        for (c, (padded, row)) in w_padded
            .chunks_exact_mut(hs)
            .zip(w.chunks_exact(m))
            .enumerate()
        {
            padded[..m].copy_from_slice(row);
            for (j, &x) in row.iter().enumerate() {
                w_t[j * cp + c] = x;
            }
        }
    } else if want_grads {
        delta.resize(tile_rows * m, F::zero());
    }
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
            let row = &mut hidden[r * hs..(r + 1) * hs];
            for ((h, &x), &z) in row.iter_mut().zip(ua).zip(vb) {
                *h = act.act(x + z);
            }
            row[m..].fill(F::zero());
        }
        // logits (rows × n_out) = hidden (rows × m) · Wᵀ (m × n_out)
        match narrow {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: detected ISA; hidden holds rows × hs, packed Wᵀ m × cp values and
            // logits every (row, class) at these steps; F is f32 (narrow_isa).
            Some(isa) => unsafe {
                narrow::logits_at(
                    isa,
                    bytemuck::cast_slice(&hidden[..rows * hs]),
                    (hs, m, rows),
                    bytemuck::cast_slice(&packed_w[n_out * hs..]),
                    (cp, n_out),
                    bytemuck::cast_slice_mut(&mut logits),
                    logits_layout,
                    bytemuck::cast_slice_mut(&mut logits_rows),
                )
            },
            _ => unsafe {
                F::gemm(
                    rows,
                    m,
                    n_out,
                    F::one(),
                    hidden.as_ptr(),
                    hs as isize,
                    1,
                    w.as_ptr(),
                    1,
                    m as isize,
                    F::zero(),
                    logits.as_mut_ptr(),
                    row_step as isize,
                    class_step as isize,
                );
            },
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
        // logits now holds G: dW (n_out × m) += Gᵀ (n_out × rows) · hidden (rows × m) and
        // D (rows × m) = G (rows × n_out) · W (n_out × m), scattered as it comes.
        match narrow {
            #[cfg(target_arch = "x86_64")]
            Some(isa) if want_grads => {
                let grads = narrow::Grads {
                    g: bytemuck::cast_slice(&logits[..]),
                    row_step,
                    class_step,
                    rows,
                    n_out,
                };
                // SAFETY: `isa` was detected on this CPU; hidden holds rows × hs values,
                // packed W n_out × hs, grad_w n_out × m, delta block × hs; F is f32
                // (narrow_isa).
                unsafe {
                    narrow::grad_w_at(
                        isa,
                        grads,
                        bytemuck::cast_slice(&hidden[..rows * hs]),
                        hs,
                        bytemuck::cast_slice_mut(&mut out.grad_w),
                        m,
                    );
                }
                let mut scatter = narrow::Scatter {
                    grad: act.lane_grad(),
                    u: bytemuck::cast_slice(u),
                    v: bytemuck::cast_slice(v),
                    m,
                    a,
                    b,
                    grad_u: bytemuck::cast_slice_mut(&mut out.grad_u),
                    grad_v: bytemuck::cast_slice_mut(&mut out.grad_v),
                };
                // SAFETY: as above; packed W holds n_out × hs values.
                unsafe {
                    narrow::backprop_scatter_at(
                        isa,
                        grads,
                        bytemuck::cast_slice(&packed_w[..n_out * hs]),
                        hs,
                        &mut scatter,
                    );
                }
            }
            _ if want_grads => {
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
                        hs as isize,
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
                for r in 0..rows {
                    scatter_row(act, (u, v), a[r], b[r], &delta[r * m..(r + 1) * m], out);
                }
            }
            _ => {}
        }
        t0 = t1;
    }
    out.put_back([packed_w, delta, hidden, logits, logits_rows]);
}
