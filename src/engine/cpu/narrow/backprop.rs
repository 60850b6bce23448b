//! `D = G·W` of a tile with the σ'-scatter fused in: each block of `D` is summed in
//! registers ([`super::Lanes::MR`] rows × up to [`super::Lanes::NV`] vectors of neurons)
//! and goes through σ' into dU, dV from there, so `D` is never stored.

#[cfg(target_arch = "x86_64")]
use super::{Avx2, Avx512, Grads, Isa, LaneGrad, Lanes};

/// What the σ'-scatter fused into [`backprop_scatter`] reads and adds to: the model's
/// embeddings (rows of `m`), the tile's pairs and the job's embedding gradients.
pub(in crate::engine::cpu) struct Scatter<'a> {
    /// σ' of the activation, in lanes.
    pub grad: LaneGrad,
    /// `U` and `V`, `p` rows of `m` each.
    pub u: &'a [f32],
    pub v: &'a [f32],
    /// Neurons per row.
    pub m: usize,
    /// The tile's pairs: row `r` is `(a[r], b[r])`.
    pub a: &'a [u32],
    pub b: &'a [u32],
    /// `dU` and `dV`, shaped as `U` and `V`.
    pub grad_u: &'a mut [f32],
    pub grad_v: &'a mut [f32],
}

/// σ' at `x` in lanes, with the same operations in the same order as the scalar
/// [`crate::engine::cpu::tile::Act::grad`] (so the fused scatter adds the same bits). `KIND` is
/// [`LaneGrad`]'s variant as a constant ([`lane_grad_kind`]), so each kernel is compiled
/// for one activation and this match folds away; `power` is `Power`'s exponent.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn lane_grad<L: Lanes, const KIND: u8>(power: u32, x: L) -> L {
    match KIND {
        DOUBLE => x.add(x),
        STEP => x.step(),
        _ => {
            let mut r = L::splat(1.0);
            for _ in 1..power {
                r = r.mul(x);
            }
            r.mul(L::splat(power as f32))
        }
    }
}

const DOUBLE: u8 = 0;
const STEP: u8 = 1;
const POWER: u8 = 2;

/// `LaneGrad` as (kind constant, exponent) for [`lane_grad`].
fn lane_grad_kind(grad: LaneGrad) -> (u8, u32) {
    match grad {
        LaneGrad::Double => (DOUBLE, 2),
        LaneGrad::Step => (STEP, 1),
        LaneGrad::Power(n) => (POWER, n),
    }
}

/// `D = G·W` for every row of the tile, `L::MR` rows × up to `L::NV` vectors of neurons
/// at a time, and straight from those registers `dS = σ'(U[a] + V[b]) ⊙ D` added into
/// `dU[a]` and `dV[b]`: `D` is never stored. Each gradient element still takes its rows
/// in tile order, so the sums are those of a row-by-row scatter, bit for bit. `w` is `W`
/// with rows padded to `mp` (a multiple of `L::N`) neurons.
///
/// # Safety
/// The CPU must have `L`'s instruction set; `w` holds `n_out · mp` values.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn backprop_scatter<L: Lanes, const KIND: u8>(
    g: Grads<'_>,
    w: &[f32],
    mp: usize,
    s: &mut Scatter<'_>,
) {
    if g.rows == 0 {
        return;
    }
    assert!(g.in_bounds() && w.len() >= g.n_out * mp && mp.is_multiple_of(L::N));
    let m = s.m;
    assert!(m <= mp && s.a.len() >= g.rows && s.b.len() >= g.rows);
    assert!(s.grad_u.len() >= s.u.len() && s.grad_v.len() >= s.v.len());
    // Every pair's rows lie inside U and V (so inside dU and dV).
    let inside =
        |r: usize| (s.a[r] as usize + 1) * m <= s.u.len() && (s.b[r] as usize + 1) * m <= s.v.len();
    assert!(
        (0..g.rows).all(inside),
        "a pair indexes past the embeddings"
    );
    let power = lane_grad_kind(s.grad).1;
    let (u, v) = (s.u.as_ptr(), s.v.as_ptr());
    let (grad_u, grad_v) = (s.grad_u.as_mut_ptr(), s.grad_v.as_mut_ptr());
    // Row r's neurons j.. in U, V, dU and dV: (offset of U[a], offset of V[b]).
    let (a, b) = (s.a.as_ptr(), s.b.as_ptr());
    let at = |r: usize| (*a.add(r) as usize * m, *b.add(r) as usize * m);
    // One vector of one row: σ'(U[a] + V[b]) ⊙ d into dU[a] and dV[b], `n` lanes.
    let scatter = |(ia, ib): (usize, usize), j: usize, n: usize, d: L| {
        let x = L::load_first(u.add(ia + j), n).add(L::load_first(v.add(ib + j), n));
        let ds = d.mul(lane_grad::<L, KIND>(power, x));
        ds.add_into(grad_u.add(ia + j), n);
        ds.add_into(grad_v.add(ib + j), n);
    };
    for r0 in (0..g.rows).step_by(L::MR) {
        let live = L::MR.min(g.rows - r0);
        for_each_block!(L, mp / L::N, |NV, v0| {
            let sums = backprop_block::<L, NV>(g, w, mp, r0, v0 * L::N);
            let j0 = v0 * L::N;
            for (i, row) in sums.iter().enumerate().take(live) {
                let rows = at(r0 + i);
                for (k, &d) in row.iter().enumerate() {
                    let j = j0 + k * L::N;
                    if j < m {
                        scatter(rows, j, m - j, d);
                    }
                }
            }
        });
    }
}

/// One block of [`backprop_scatter`]: rows `r0..r0 + MR` (the last row repeated past the
/// tile's end), neurons `j0..j0 + NV·N`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn backprop_block<L: Lanes, const NV: usize>(
    g: Grads<'_>,
    w: &[f32],
    mp: usize,
    r0: usize,
    j0: usize,
) -> [[L; NV]; 6] {
    let mut acc = [[L::zero(); NV]; 6];
    let rows: [usize; 6] = std::array::from_fn(|i| (r0 + i).min(g.rows - 1));
    for c in 0..g.n_out {
        let w_row = w.as_ptr().add(c * mp + j0);
        let w_vec: [L; NV] = std::array::from_fn(|v| L::load(w_row.add(v * L::N)));
        for i in 0..L::MR {
            let gi = L::splat(g.at(rows[i], c));
            for v in 0..NV {
                acc[i][v] = gi.mul_add(w_vec[v], acc[i][v]);
            }
        }
    }
    acc
}

/// [`backprop_scatter`] at `isa`, compiled for it.
///
/// # Safety
/// `isa` must come from [`Isa::detect`]; `w` as [`backprop_scatter`] requires, with
/// `mp` a multiple of `isa.lanes()`.
#[cfg(target_arch = "x86_64")]
pub(in crate::engine::cpu) unsafe fn backprop_scatter_at(
    isa: Isa,
    g: Grads<'_>,
    w: &[f32],
    mp: usize,
    s: &mut Scatter<'_>,
) {
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    unsafe fn avx512<const KIND: u8>(g: Grads<'_>, w: &[f32], mp: usize, s: &mut Scatter<'_>) {
        backprop_scatter::<Avx512, KIND>(g, w, mp, s)
    }
    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2<const KIND: u8>(g: Grads<'_>, w: &[f32], mp: usize, s: &mut Scatter<'_>) {
        backprop_scatter::<Avx2, KIND>(g, w, mp, s)
    }
    match (isa, lane_grad_kind(s.grad).0) {
        (Isa::Avx512, DOUBLE) => avx512::<DOUBLE>(g, w, mp, s),
        (Isa::Avx512, STEP) => avx512::<STEP>(g, w, mp, s),
        (Isa::Avx512, _) => avx512::<POWER>(g, w, mp, s),
        (Isa::Avx2, DOUBLE) => avx2::<DOUBLE>(g, w, mp, s),
        (Isa::Avx2, STEP) => avx2::<STEP>(g, w, mp, s),
        (Isa::Avx2, _) => avx2::<POWER>(g, w, mp, s),
    }
}
