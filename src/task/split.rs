//! Seeded train/test splits.

use crate::error::{Error, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

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

impl Split {
    /// Keeps `round(fraction · n)` examples (at least one) for training, chosen by a
    /// seeded shuffle. `fraction = 1` trains on the whole table and leaves no test set.
    /// The same `(n, fraction, seed)` always gives the same split; `fraction` outside
    /// (0, 1] is [`Error::InvalidConfig`]. `n` must be at least 1.
    pub fn new(n: usize, fraction: f64, seed: u64) -> Result<Split> {
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
            // Offset the seed so the split and the initialization draw different streams.
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5350_4c49_545f_5345);
            order.shuffle(&mut rng);
        }
        let mut train = order[..n_train].to_vec();
        let mut test = order[n_train..].to_vec();
        train.sort_unstable();
        test.sort_unstable();
        Ok(Split { train, test })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
