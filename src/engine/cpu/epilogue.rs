//! The loss epilogue of the fused pass: a tile's logits become `dL/dlogits` in place,
//! and each row's loss, correctness and margin are counted.
//!
//! Two layouts. [`epilogue_slice`] works on one row-major row of logits (the multi-head
//! epilogue, per head; the kernel harness through `epilogue_row`). [`epilogue_columns`]
//! works on a class-major tile (`logits_t[c·ld + r]`, the token and dense jobs), sixteen
//! rows at a time with the rows in the SIMD lanes: with few classes (p = 23; 2 for bit
//! strings) a row is one and a half vectors or less, so the row-wise max, exp and sum ran
//! mostly in scalar tails and took a fifth of a sweep step; across rows every operation
//! is a full vector and there is no horizontal reduction at all.

use super::tile::JobResult;
use crate::engine::Loss;
use crate::real::Real;

const LANES: usize = 8;

/// Maximum of a slice, with eight independent lanes so it vectorizes.
#[inline(always)]
fn lane_max<F: Real>(x: &[F]) -> F {
    let mut acc = [F::neg_infinity(); LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            acc[l] = if c[l] > acc[l] { c[l] } else { acc[l] };
        }
    }
    let mut best = F::neg_infinity();
    for &v in acc.iter().chain(tail) {
        if v > best {
            best = v;
        }
    }
    best
}

/// Replaces `x[c]` by `exp(x[c] − shift)` and returns the sum, lane-wise.
#[inline(always)]
fn exp_in_place<F: Real>(x: &mut [F], shift: F) -> F {
    let mut acc = [F::zero(); LANES];
    let mut chunks = x.chunks_exact_mut(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            let e = F::softmax_exp(c[l] - shift);
            c[l] = e;
            acc[l] += e;
        }
    }
    let mut sum = F::zero();
    for v in chunks.into_remainder() {
        *v = F::softmax_exp(*v - shift);
        sum += *v;
    }
    acc.iter().fold(F::zero(), |s, &a| s + a) + sum
}

/// Turns a row of logits into `dL/dlogits` in place (already divided by the number of
/// pairs) and records the row's loss, correctness and margin.
#[cfg(feature = "dev-kernels")]
#[inline(always)]
pub fn epilogue_row<F: Real>(
    loss: Loss,
    row: &mut [F],
    y: usize,
    inv_n: f64,
    out: &mut JobResult<F>,
) {
    let (row_loss, margin) = epilogue_slice(loss, row, y, inv_n);
    if margin > 0.0 {
        out.correct += 1;
    }
    if margin < out.min_margin {
        out.min_margin = margin;
    }
    out.loss += row_loss * inv_n;
}

/// The loss epilogue of one softmax (or MSE) over `row` with correct class `y`: turns the
/// logits into `g_scale · dloss/dlogits` in place and returns the row's loss (unscaled)
/// and its margin `f_y − max_{c≠y} f_c`. The plain pass calls it on whole rows with
/// `g_scale = 1/N`; a multi-head pass on each head's slice with `weight/N`.
#[inline(always)]
pub fn epilogue_slice<F: Real>(loss: Loss, row: &mut [F], y: usize, g_scale: f64) -> (f64, f64) {
    let f_y = row[y];
    row[y] = F::neg_infinity();
    let other = lane_max(row);
    row[y] = f_y;
    let margin = (f_y - other).f64();
    let row_loss = match loss {
        Loss::CrossEntropy => {
            let max = if f_y > other { f_y } else { other };
            let sum = exp_in_place(row, max);
            let scale = F::of(g_scale) / sum;
            for g in row.iter_mut() {
                *g *= scale;
            }
            row[y] -= F::of(g_scale);
            sum.f64().ln() + (max - f_y).f64()
        }
        Loss::Mse => {
            row[y] -= F::one();
            let scale = 2.0 * g_scale / row.len() as f64;
            let mut acc = [F::zero(); LANES];
            let mut chunks = row.chunks_exact_mut(LANES);
            for c in &mut chunks {
                for l in 0..LANES {
                    acc[l] += c[l] * c[l];
                    c[l] *= F::of(scale);
                }
            }
            let mut sq = acc.iter().fold(F::zero(), |s, &a| s + a).f64();
            for g in chunks.into_remainder() {
                sq += g.f64() * g.f64();
                *g *= F::of(scale);
            }
            sq / row.len() as f64
        }
    };
    (row_loss, margin)
}

/// Rows [`epilogue_columns`] handles together: one AVX-512 register of f32 (two of
/// AVX2), so the loops over a block compile to whole-vector operations.
pub const COLUMN_BLOCK: usize = 16;

/// The loss epilogue over a class-major tile: `logits_t[c·ld + r]` is row `r`'s logit
/// for class `c` (`n_out` classes, `rows` rows, `labels[r]` the correct class). Turns
/// the logits into `dL/dlogits` (÷ the pass's pair count, `inv_n`) in place and adds the
/// rows' loss, correct count and smallest margin to `out` in row order. The cross-entropy
/// of a block takes one logarithm of the product of its rows' softmax sums, so the loss
/// can differ from a row-by-row epilogue's in the last bits of the f64 sum.
///
/// `ld` must be at least `rows` rounded up to [`COLUMN_BLOCK`]: the last block's padding
/// columns (`rows..`) are zeroed and computed on, never counted.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn epilogue_columns<F: Real>(
    loss: Loss,
    logits_t: &mut [F],
    ld: usize,
    n_out: usize,
    rows: usize,
    labels: &[u32],
    inv_n: f64,
    out: &mut JobResult<F>,
) {
    const L: usize = COLUMN_BLOCK;
    assert!(ld >= rows.div_ceil(L) * L && logits_t.len() >= n_out * ld);
    assert!(labels.len() >= rows && n_out > 0);
    let g_scale = F::of(inv_n);
    for r0 in (0..rows).step_by(L) {
        let live = L.min(rows - r0);
        // Padding lanes: class 0 and zero logits, so they stay finite; never counted.
        let mut y = [0u32; L];
        y[..live].copy_from_slice(&labels[r0..r0 + live]);
        if live < L {
            for c in 0..n_out {
                logits_t[c * ld + r0 + live..c * ld + r0 + L].fill(F::zero());
            }
        }
        let block = |c: usize| c * ld + r0;
        let mut f_y = [F::zero(); L];
        for l in 0..L {
            f_y[l] = logits_t[y[l] as usize * ld + r0 + l];
        }
        // The largest wrong logit, per row.
        let mut other = [F::neg_infinity(); L];
        for c in 0..n_out {
            let v: &[F; L] = logits_t[block(c)..][..L].try_into().expect("L lanes");
            // The correct class's logit is pushed to −∞ by adding a penalty (a select
            // between two constants, then an add and a max) rather than skipped: a
            // conditional read kept the loop scalar and branchy.
            for l in 0..L {
                let penalty = if y[l] == c as u32 {
                    F::neg_infinity()
                } else {
                    F::zero()
                };
                let wrong = v[l] + penalty;
                other[l] = if wrong > other[l] { wrong } else { other[l] };
            }
        }
        let mut row_loss = [0.0f64; L];
        match loss {
            Loss::CrossEntropy => {
                let mut shift = [F::zero(); L];
                for l in 0..L {
                    shift[l] = if f_y[l] > other[l] { f_y[l] } else { other[l] };
                }
                let mut sum = [F::zero(); L];
                for c in 0..n_out {
                    let v: &mut [F; L] = (&mut logits_t[block(c)..][..L])
                        .try_into()
                        .expect("L lanes");
                    for l in 0..L {
                        let e = F::softmax_exp(v[l] - shift[l]);
                        v[l] = e;
                        sum[l] += e;
                    }
                }
                let mut scale = [F::zero(); L];
                for l in 0..L {
                    scale[l] = g_scale / sum[l];
                }
                for c in 0..n_out {
                    let v: &mut [F; L] = (&mut logits_t[block(c)..][..L])
                        .try_into()
                        .expect("L lanes");
                    for l in 0..L {
                        v[l] *= scale[l];
                    }
                }
                // Σ ln(sum_l) as ln(Π sum_l): one logarithm per block instead of one per
                // row (a libm call each, 2.6 % of a p = 23 sweep step). Each sum is in
                // [1, n_out] (the max term is e^0 = 1), so the product of sixteen stays
                // far inside f64's range; the block's loss goes to the first row's slot.
                let mut product = 1.0f64;
                for l in 0..live {
                    logits_t[y[l] as usize * ld + r0 + l] -= g_scale;
                    product *= sum[l].f64();
                    row_loss[l] = (shift[l] - f_y[l]).f64();
                }
                row_loss[0] += product.ln();
            }
            Loss::Mse => {
                for l in 0..L {
                    logits_t[y[l] as usize * ld + r0 + l] -= F::one();
                }
                let scale = F::of(2.0 * inv_n / n_out as f64);
                let mut sq = [F::zero(); L];
                for c in 0..n_out {
                    let v: &mut [F; L] = (&mut logits_t[block(c)..][..L])
                        .try_into()
                        .expect("L lanes");
                    for l in 0..L {
                        sq[l] += v[l] * v[l];
                        v[l] *= scale;
                    }
                }
                for l in 0..live {
                    row_loss[l] = sq[l].f64() / n_out as f64;
                }
            }
        }
        for l in 0..live {
            let margin = (f_y[l] - other[l]).f64();
            if margin > 0.0 {
                out.correct += 1;
            }
            if margin < out.min_margin {
                out.min_margin = margin;
            }
            out.loss += row_loss[l] * inv_n;
        }
    }
}
