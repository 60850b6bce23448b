//! The multi-head loss epilogue of the fused CPU pass: one tile's logits, each row cut
//! into its heads' slices ([`Heads`]), each slice run through the same softmax-CE / MSE
//! epilogue as a plain row ([`epilogue_slice`]) with its head's weight folded into the
//! gradient scale. It replaces the plain epilogue inside the one fused pass, so the
//! products (and the backward ones, which see the concatenated heads' gradient) are
//! unchanged: no per-head pass.

use super::epilogue::epilogue_slice;
use super::tile::JobResult;
use crate::engine::{HeadStats, Loss};
use crate::real::Real;
use crate::task::Heads;

/// Turns `logits` (`labels.len()` rows of `heads.n_out()`) into `dL/dlogits` in place,
/// `L = Σ_h weight_h · loss_h` averaged over the pass's pairs (`inv_n` = 1/pairs), and
/// adds the rows' figures to `out`: per head (unweighted loss, correct, margin) and for the
/// model (weighted loss; correct when every head is; the smallest head margin).
#[inline(always)]
pub fn epilogue_rows<F: Real>(
    loss: Loss,
    heads: &Heads,
    logits: &mut [F],
    labels: &[u32],
    inv_n: f64,
    out: &mut JobResult<F>,
) {
    if out.heads.len() != heads.len() {
        out.heads = HeadStats::zeros(heads.len());
    }
    let n_out = heads.n_out();
    for (row, &label) in logits.chunks_exact_mut(n_out).zip(labels) {
        let mut row_margin = f64::INFINITY;
        for (h, (head, stats)) in heads.heads().iter().zip(out.heads.iter_mut()).enumerate() {
            let slice = &mut row[head.offset..head.offset + head.size];
            let (head_loss, margin) =
                epilogue_slice(loss, slice, heads.class(h, label), head.weight * inv_n);
            stats.add_pair(head_loss * inv_n, margin);
            out.loss += head.weight * head_loss * inv_n;
            row_margin = row_margin.min(margin);
        }
        if row_margin > 0.0 {
            out.correct += 1;
        }
        if row_margin < out.min_margin {
            out.min_margin = row_margin;
        }
    }
}
