//! [`Heads`]: how a multi-head task's labels are read against the model's output.
//!
//! A multi-head model has one output layer holding several classifiers side by side:
//! head `h` owns the logits `offset_h .. offset_h + size_h`, and the output width is the
//! sum of the sizes. Each pair carries one integer label `L`; head `h`'s correct class is
//! `L mod size_h`. Why one integer rather than one label per head: seed 002's targets are
//! `(x0 + x1·p) mod q` for several q, so the integer `x0 + x1·p` names them all; the pair
//! lists keep one label per pair, so splitting, freezing and uploading pair sets stay as
//! they are, and a device needs no extra label buffer. A task whose heads are not
//! residues of one integer can still be written this way by mixed-radix encoding (sizes
//! coprime, label by the Chinese remainder theorem) — nothing in the engine assumes primes.
//!
//! The loss of a pair is `Σ_h weight_h · loss_h`, each head's loss computed over its own
//! slice of the logits (softmax cross-entropy or MSE), so a single-head layout with
//! weight 1 is exactly the plain loss.

use crate::error::{Error, Result};

/// One head of a [`Heads`] layout.
#[derive(Clone, Debug, PartialEq)]
pub struct Head {
    /// Short name for metrics and reports, e.g. `"mod 7"`.
    pub name: String,
    /// First logit of the head.
    pub offset: usize,
    /// Number of classes of the head (the pair's label is read modulo this).
    pub size: usize,
    /// The head's weight in the summed loss.
    pub weight: f64,
}

/// The head layout of a multi-head task (module docs). Built by [`Heads::new`], which
/// checks it; immutable afterwards.
#[derive(Clone, Debug, PartialEq)]
pub struct Heads {
    heads: Vec<Head>,
    n_out: usize,
}

impl Heads {
    /// Heads of the given `(name, size, weight)`, laid out in order from logit 0. Fails
    /// for no heads, a size below 2 (a one-class head has no loss and no accuracy to
    /// speak of), more than 2³¹ outputs in all, or a weight that is not finite and ≥ 0.
    pub fn new(heads: impl IntoIterator<Item = (String, usize, f64)>) -> Result<Heads> {
        let mut out = Vec::new();
        let mut offset = 0usize;
        for (name, size, weight) in heads {
            if size < 2 {
                return Err(Error::config(
                    &format!("heads[{}].size", out.len()),
                    size,
                    "a head needs at least 2 classes",
                ));
            }
            if !(weight.is_finite() && weight >= 0.0) {
                return Err(Error::config(
                    &format!("heads[{}].weight", out.len()),
                    weight,
                    "a head's loss weight must be finite and >= 0",
                ));
            }
            out.push(Head {
                name,
                offset,
                size,
                weight,
            });
            offset = offset.saturating_add(size);
        }
        if out.is_empty() {
            return Err(Error::config("heads", 0, "need at least one head"));
        }
        if offset > i32::MAX as usize {
            return Err(Error::config(
                "heads",
                offset,
                "the heads' sizes must sum to at most 2^31 - 1 outputs",
            ));
        }
        Ok(Heads {
            heads: out,
            n_out: offset,
        })
    }

    /// The heads, in layout order.
    pub fn heads(&self) -> &[Head] {
        &self.heads
    }

    /// Number of heads.
    pub fn len(&self) -> usize {
        self.heads.len()
    }

    /// Always false ([`Heads::new`] refuses an empty layout); here for API symmetry.
    pub fn is_empty(&self) -> bool {
        self.heads.is_empty()
    }

    /// Output width of the model: the sum of the head sizes.
    pub fn n_out(&self) -> usize {
        self.n_out
    }

    /// Head `h`'s correct class for a pair labelled `label` (relative to its offset).
    #[inline(always)]
    pub fn class(&self, h: usize, label: u32) -> usize {
        label as usize % self.heads[h].size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_offsets_and_classes() {
        let h = Heads::new([("a".into(), 2, 1.0), ("b".into(), 3, 0.5)]).unwrap();
        assert_eq!(h.n_out(), 5);
        assert_eq!(h.heads()[1].offset, 2);
        assert_eq!((h.class(0, 7), h.class(1, 7)), (1, 1));
    }

    #[test]
    fn bad_layouts_name_the_key() {
        let e = Heads::new([("a".into(), 1, 1.0)]).unwrap_err().to_string();
        assert!(e.contains("heads[0].size"), "{e}");
        let e = Heads::new([("a".into(), 2, 1.0), ("b".into(), 3, f64::NAN)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("heads[1].weight"), "{e}");
        assert!(Heads::new(Vec::new())
            .unwrap_err()
            .to_string()
            .contains("heads"));
    }
}
