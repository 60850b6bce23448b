//! Bit-string tasks: n-bit inputs, label = parity of a chosen k-subset of the bits
//! (seed 003's "1s and 0s" task, the blog's sparse parity).
//!
//! An example is stored in the ordinary [`PairSet`] so that splits, frozen pair sets and
//! device uploads work unchanged: `a` holds the bits as a mask (bit j of `a` is input
//! bit j, j < n ≤ 32), `b` is 0, and the set's [`Inputs::Bits`] tells the engine to read
//! `a` as a dense input vector `x ∈ {±1}ⁿ` or `{0,1}ⁿ` (see [`BitEncoding`]) and run its
//! dense-input pass (`hidden = σ(U x)`) instead of the embedding gather.

use super::{PairSet, Task};
use crate::error::{Error, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Most input bits a bit-string task may have (the mask lives in one `u32`).
pub const MAX_BITS: usize = 32;
/// Most bits of a population task (all 2ⁿ strings are materialized).
pub const MAX_POPULATION_BITS: usize = 22;

/// How a bit becomes an input value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum BitEncoding {
    /// `"pm1"`: bit 0 → +1, bit 1 → −1, so the parity label is 0 exactly when the
    /// product of the chosen inputs is +1 (the sparse-parity convention of theory.md).
    #[default]
    #[serde(rename = "pm1")]
    PlusMinusOne,
    /// `"01"`: the bit itself, 0 or 1 (seed 003's strings of 1s and 0s).
    #[serde(rename = "01")]
    ZeroOne,
}

impl BitEncoding {
    /// The spelling in configs.
    pub fn name(self) -> &'static str {
        match self {
            BitEncoding::PlusMinusOne => "pm1",
            BitEncoding::ZeroOne => "01",
        }
    }

    /// The input value of a bit that is set (`true`) or clear.
    #[inline(always)]
    pub fn value(self, set: bool) -> f64 {
        match (self, set) {
            (BitEncoding::PlusMinusOne, false) => 1.0,
            (BitEncoding::PlusMinusOne, true) => -1.0,
            (BitEncoding::ZeroOne, false) => 0.0,
            (BitEncoding::ZeroOne, true) => 1.0,
        }
    }
}

/// What the `a`/`b` columns of a [`PairSet`] mean.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Inputs {
    /// Two token indices selecting rows of U and V (the binary-operation tables).
    #[default]
    Tokens,
    /// A dense input of `n` bits, held as a mask in `a` (`b` unused, 0); the model's
    /// first layer is a dense `n × m` matrix (U), and V is absent (zero).
    Bits {
        /// Number of input bits (the model's `n_in`).
        n: usize,
        /// How a bit becomes an input value.
        encoding: BitEncoding,
    },
}

impl Inputs {
    /// The bit count and encoding of a dense set, None for tokens.
    pub fn bits(self) -> Option<(usize, BitEncoding)> {
        match self {
            Inputs::Tokens => None,
            Inputs::Bits { n, encoding } => Some((n, encoding)),
        }
    }
}

/// A parity task's definition: `n` bits, label = parity of bits `0..k`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parity {
    /// Number of input bits.
    pub n: usize,
    /// Number of leading bits whose parity is the label.
    pub k: usize,
    /// How bits become input values.
    pub encoding: BitEncoding,
}

impl Parity {
    /// Checks `1 ≤ k ≤ n ≤ 32`, naming `task.bits` or `task.parity_k`.
    pub fn check(&self) -> Result<()> {
        if self.n == 0 || self.n > MAX_BITS {
            return Err(Error::config(
                "task.bits",
                self.n,
                format!("a bit-string task needs 1 to {MAX_BITS} bits"),
            ));
        }
        if self.k == 0 || self.k > self.n {
            return Err(Error::config(
                "task.parity_k",
                self.k,
                format!("the parity subset needs 1 to task.bits = {} bits", self.n),
            ));
        }
        Ok(())
    }

    /// The label of the string `mask`: 1 when an odd number of bits `0..k` are set.
    pub fn label(&self, mask: u32) -> u32 {
        let sub = if self.k >= 32 {
            mask
        } else {
            mask & ((1u32 << self.k) - 1)
        };
        sub.count_ones() & 1
    }

    fn inputs(&self) -> Inputs {
        Inputs::Bits {
            n: self.n,
            encoding: self.encoding,
        }
    }

    fn name(&self, what: &str) -> String {
        format!(
            "parity of {} of {} bits ({what}, {})",
            self.k,
            self.n,
            self.encoding.name()
        )
    }

    fn task(&self, masks: Vec<u32>, what: &str) -> Task {
        let pairs = PairSet {
            label: masks.iter().map(|&x| self.label(x)).collect(),
            b: vec![0; masks.len()],
            a: masks,
            inputs: self.inputs(),
            heads: None,
        };
        Task {
            name: self.name(what),
            n_in: self.n,
            n_out: 2,
            pairs,
        }
    }

    /// Every one of the 2ⁿ strings, in mask order (n ≤ 22).
    pub fn population(&self) -> Result<Task> {
        self.check()?;
        if self.n > MAX_POPULATION_BITS {
            return Err(Error::config(
                "task.bits",
                self.n,
                format!(
                    "the full population has 2^n strings; at most {MAX_POPULATION_BITS} bits \
                     (set task.train_size to sample a training set instead)"
                ),
            ));
        }
        Ok(self.task((0..1u32 << self.n).collect(), "population"))
    }

    /// `count` distinct random strings drawn from `seed` (a pool each model's split then
    /// cuts into its training and test strings). Fails when `count` exceeds 2ⁿ.
    pub fn sampled(&self, count: usize, seed: u64) -> Result<Task> {
        self.check()?;
        let space = 1u64 << self.n;
        if count == 0 || count as u64 > space {
            return Err(Error::config(
                "task.train_size",
                count,
                format!(
                    "training plus test strings must be between 1 and 2^{} = {space}",
                    self.n
                ),
            ));
        }
        const SAMPLE_SEED_OFFSET: u64 = 0x4249_5453_5f50_4f4f;
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ SAMPLE_SEED_OFFSET);
        let mut seen = std::collections::HashSet::with_capacity(count);
        let mut masks = Vec::with_capacity(count);
        while masks.len() < count {
            let x = (rng.gen::<u64>() & (space - 1)) as u32;
            if seen.insert(x) {
                masks.push(x);
            }
        }
        Ok(self.task(masks, "sampled"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::Split;

    #[test]
    fn labels_are_the_parity_of_the_first_k_bits() {
        let p = Parity {
            n: 30,
            k: 3,
            encoding: BitEncoding::ZeroOne,
        };
        // Seed 003's two examples, first digit = bit 0.
        let mask = |s: &str| {
            s.chars()
                .enumerate()
                .filter(|(_, c)| *c == '1')
                .fold(0u32, |m, (j, _)| m | 1 << j)
        };
        assert_eq!(p.label(mask("000110010110001010111001001011")), 0);
        assert_eq!(p.label(mask("010110010110001010111001001011")), 1);
        let all = Parity { n: 4, k: 4, ..p };
        assert_eq!(all.label(0b1011), 1);
        assert_eq!(all.label(0b1111), 0);
    }

    #[test]
    fn population_and_samples_are_deterministic_and_checked() {
        let p = Parity {
            n: 10,
            k: 3,
            encoding: BitEncoding::PlusMinusOne,
        };
        let t = p.population().unwrap();
        assert_eq!((t.len(), t.n_in, t.n_out), (1024, 10, 2));
        assert_eq!(t.pairs.inputs.bits(), Some((10, BitEncoding::PlusMinusOne)));
        // Half the strings have each label.
        assert_eq!(t.pairs.label.iter().sum::<u32>(), 512);
        let big = Parity { n: 30, ..p };
        let s = big.sampled(2000, 7).unwrap();
        assert_eq!(s, big.sampled(2000, 7).unwrap());
        assert_ne!(s, big.sampled(2000, 8).unwrap());
        let mut distinct = s.pairs.a.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 2000);
        assert!(s.pairs.a.iter().all(|&x| x < 1 << 30));
        // A split keeps the dense inputs and is seeded.
        let split = Split::new(s.len(), 0.5, 3).unwrap();
        let train = s.pairs.select(&split.train);
        assert_eq!(train.inputs, s.pairs.inputs);
        assert_eq!(train.len(), 1000);
        assert_eq!(split, Split::new(s.len(), 0.5, 3).unwrap());
        // Errors name the key and value.
        let e = |r: Result<Task>| r.unwrap_err().to_string();
        assert!(e(big.population()).contains("task.bits = 30"));
        assert!(e(Parity { k: 0, ..p }.population()).contains("task.parity_k = 0"));
        assert!(e(Parity { k: 11, ..p }.population()).contains("task.parity_k = 11"));
        assert!(e(Parity { n: 33, ..p }.population()).contains("task.bits = 33"));
        assert!(e(p.sampled(2000, 0)).contains("task.train_size = 2000"));
    }
}
