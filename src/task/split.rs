//! Seeded train/test splits, over ordered pairs or over unordered pairs {a, b}.

use crate::error::{Error, Result};
use crate::task::{Op, PairSet};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// What a split draws: ordered pairs `(a, b)` one by one, or unordered pairs `{a, b}`
/// (a pair and its mirror `(b, a)` always land on the same side).
///
/// Why unordered exists: for a commutative operation a tied model computes
/// `f(a, b) = f(b, a)` exactly, so with an ordered split about `fraction` of the test
/// pairs are mirror images of training pairs and memorization alone scores that much
/// test accuracy. Seed 003's colab splits the pairs `a ≤ b` for this reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitKind {
    /// Every ordered pair is drawn on its own (the default).
    #[default]
    Ordered,
    /// Unordered pairs are drawn; `train_fraction` is the fraction of unordered pairs.
    /// Only for commutative operations ([`SplitKind::check_op`]).
    Unordered,
}

impl SplitKind {
    /// The name used in configs (`"ordered"`, `"unordered"`).
    pub fn name(self) -> &'static str {
        match self {
            SplitKind::Ordered => "ordered",
            SplitKind::Unordered => "unordered",
        }
    }

    /// An unordered split of a non-commutative table would put `(a, b)` and `(b, a)`,
    /// which have different labels, on one side for no reason: refused, naming the op.
    pub fn check_op(self, op: Op) -> Result<()> {
        let commutative = matches!(op, Op::Add | Op::Mul | Op::Quad);
        if self == SplitKind::Unordered && !commutative {
            return Err(Error::config(
                "task.split",
                self.name(),
                format!(
                    "an unordered split keeps (a, b) and (b, a) together, which only makes \
                     sense for a commutative operation; task.op = \"{}\" is not (use \
                     \"ordered\")",
                    op.name()
                ),
            ));
        }
        Ok(())
    }
}

/// Which examples of a task are trained on and which are held out.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    /// Indices into the task's examples, in ascending order (ascending keeps the
    /// engine's memory access pattern close to the table's row-major order).
    pub train: Vec<usize>,
    /// The held-out indices (every index not in `train`), ascending; empty when the
    /// fraction is 1.
    pub test: Vec<usize>,
}

/// Offset of the split's seed, so the split and the initialization draw different streams.
const SPLIT_SEED_OFFSET: u64 = 0x5350_4c49_545f_5345;

impl Split {
    /// Keeps `round(fraction · n)` examples (at least one) for training, chosen by a
    /// seeded shuffle. `fraction = 1` trains on the whole table and leaves no test set.
    /// The same `(n, fraction, seed)` always gives the same split; `fraction` outside
    /// (0, 1] is [`Error::InvalidConfig`]. `n` must be at least 1.
    pub fn new(n: usize, fraction: f64, seed: u64) -> Result<Split> {
        let (order, n_train) = shuffled(n, fraction, seed)?;
        let sorted = |part: &[usize]| -> Vec<usize> {
            let mut v = part.to_vec();
            v.sort_unstable();
            v
        };
        Ok(Split {
            train: sorted(&order[..n_train]),
            test: sorted(&order[n_train..]),
        })
    }

    /// The split of `kind` over the examples `pairs`: [`Split::new`] for ordered
    /// splits; for unordered ones, `round(fraction · g)` of the g unordered pairs
    /// `{a, b}` (at least one) are trained on, each with every example that has those
    /// inputs in either order.
    pub fn of(kind: SplitKind, pairs: &PairSet, fraction: f64, seed: u64) -> Result<Split> {
        match kind {
            SplitKind::Ordered => Split::new(pairs.len(), fraction, seed),
            SplitKind::Unordered => {
                // Group the examples by {min, max}, groups in order of first appearance.
                let mut group_of: std::collections::HashMap<(u32, u32), usize> =
                    std::collections::HashMap::new();
                let mut groups: Vec<Vec<usize>> = Vec::new();
                for i in 0..pairs.len() {
                    let (a, b) = (pairs.a[i], pairs.b[i]);
                    let key = (a.min(b), a.max(b));
                    let g = *group_of.entry(key).or_insert_with(|| {
                        groups.push(Vec::new());
                        groups.len() - 1
                    });
                    groups[g].push(i);
                }
                Split::of_groups(&groups, fraction, seed)
            }
        }
    }

    /// Trains on `round(fraction · groups.len())` whole groups chosen by a seeded shuffle.
    fn of_groups(groups: &[Vec<usize>], fraction: f64, seed: u64) -> Result<Split> {
        let (order, n_train) = shuffled(groups.len(), fraction, seed)?;
        let gather = |gs: &[usize]| -> Vec<usize> {
            let mut v: Vec<usize> = gs.iter().flat_map(|&g| groups[g].iter().copied()).collect();
            v.sort_unstable();
            v
        };
        Ok(Split {
            train: gather(&order[..n_train]),
            test: gather(&order[n_train..]),
        })
    }
}

/// `0..n` in the seeded order of the split and how many of its first entries are trained
/// on (`round(fraction · n)`, at least one; no shuffle when that is all of them).
fn shuffled(n: usize, fraction: f64, seed: u64) -> Result<(Vec<usize>, usize)> {
    if !(fraction > 0.0 && fraction <= 1.0) {
        return Err(Error::config(
            "train_fraction",
            fraction,
            "must be in (0, 1] (1 trains on every pair)",
        ));
    }
    if n == 0 {
        return Err(Error::config(
            "split",
            0,
            "cannot split an empty table (it needs at least one pair)",
        ));
    }
    let n_train = ((fraction * n as f64).round() as usize).clamp(1, n);
    let mut order: Vec<usize> = (0..n).collect();
    if n_train < n {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ SPLIT_SEED_OFFSET);
        order.shuffle(&mut rng);
    }
    Ok((order, n_train))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::Task;

    #[test]
    fn split_is_seeded_and_disjoint() {
        let s = Split::new(100, 0.3, 7).unwrap();
        assert_eq!(s.train.len(), 30);
        assert_eq!(s.test.len(), 70);
        assert_eq!(s, Split::new(100, 0.3, 7).unwrap());
        assert_ne!(s, Split::new(100, 0.3, 8).unwrap());
        let mut all: Vec<_> = s.train.iter().chain(&s.test).copied().collect();
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        for bad in [0.0, -0.1, 1.5, f64::NAN] {
            assert!(Split::new(10, bad, 0).is_err());
        }
    }

    #[test]
    fn ordered_split_of_a_task_is_the_plain_split() {
        let task = Task::modular(Op::Add, 11).unwrap();
        assert_eq!(
            Split::of(SplitKind::Ordered, &task.pairs, 0.4, 3).unwrap(),
            Split::new(task.len(), 0.4, 3).unwrap()
        );
    }

    #[test]
    fn unordered_split_keeps_mirror_pairs_together() {
        let p = 13;
        let task = Task::modular(Op::Add, p).unwrap();
        let s = Split::of(SplitKind::Unordered, &task.pairs, 0.4, 5).unwrap();
        let side = |a: usize, b: usize| s.train.binary_search(&(a * p + b)).is_ok();
        for a in 0..p {
            for b in 0..p {
                assert_eq!(
                    side(a, b),
                    side(b, a),
                    "({a}, {b}) and its mirror split apart"
                );
            }
        }
        // round(0.4 · 91) = 36 unordered pairs of the 91 = p(p+1)/2 trained on.
        let unordered_train = (0..p)
            .flat_map(|a| (a..p).map(move |b| (a, b)))
            .filter(|&(a, b)| side(a, b))
            .count();
        assert_eq!(unordered_train, 36);
        let mut all: Vec<_> = s.train.iter().chain(&s.test).copied().collect();
        all.sort();
        assert_eq!(all, (0..p * p).collect::<Vec<_>>());
        assert_eq!(
            s,
            Split::of(SplitKind::Unordered, &task.pairs, 0.4, 5).unwrap()
        );
        assert_ne!(
            s,
            Split::of(SplitKind::Unordered, &task.pairs, 0.4, 6).unwrap()
        );
        // An ordered split of the same table does split mirror pairs.
        let o = Split::of(SplitKind::Ordered, &task.pairs, 0.4, 5).unwrap();
        let split_apart = (0..p)
            .flat_map(|a| (0..p).map(move |b| (a, b)))
            .any(|(a, b)| o.train.contains(&(a * p + b)) != o.train.contains(&(b * p + a)));
        assert!(split_apart);
    }

    #[test]
    fn unordered_split_needs_a_commutative_op() {
        for op in [Op::Add, Op::Mul, Op::Quad] {
            SplitKind::Unordered.check_op(op).unwrap();
        }
        for op in [Op::Sub, Op::Div] {
            let e = SplitKind::Unordered.check_op(op).unwrap_err().to_string();
            assert!(e.contains("task.split") && e.contains(op.name()), "{e}");
            SplitKind::Ordered.check_op(op).unwrap();
        }
    }
}
