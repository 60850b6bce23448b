//! Tasks: binary operation tables and train/test splits over their input pairs.
//!
//! A [`Task`] is just a list of input pairs `(a, b)` with a label each, plus the sizes of
//! the input vocabulary and of the output. Modular arithmetic builds one with
//! [`Task::modular`], finite groups with [`Group::task`]; multi-head tasks can build their own.

mod bits;
mod eigen;
mod group;
mod heads;
mod irreps;
mod modular;
mod multitask;
mod split;

pub use bits::{BitEncoding, Inputs, Parity, MAX_BITS, MAX_POPULATION_BITS};
pub use group::{Group, GroupName, MAX_GROUP_ORDER};
pub use heads::{Head, Heads};
pub use irreps::{Irrep, IrrepType, Irreps};
pub(crate) use modular::pow_mod;
pub use modular::{is_prime, Op, MAX_P};
pub use multitask::{check_base_p, primes_below};
pub use split::{Split, SplitKind};

use crate::error::{Error, Result};
use std::sync::Arc;

/// A labelled table of input pairs.
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    /// Human-readable name, e.g. `"a+b mod 71"`.
    pub name: String,
    /// Size of each input's vocabulary (inputs are `0..n_in`).
    pub n_in: usize,
    /// Number of output classes.
    pub n_out: usize,
    /// Every example: first input, second input, label.
    pub pairs: PairSet,
}

/// A list of examples in structure-of-arrays form, the layout the engine streams.
///
/// Example `t` is `(a[t], b[t]) → label[t]`. The three vectors must have equal lengths
/// ([`Task::new`] and the backends check, since the fields are public). With a head
/// layout ([`PairSet::heads`]) the label is one integer read by every head modulo its
/// size; without one it is the class, `< n_out`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PairSet {
    /// First inputs, each `< n_in` (row of `U` it selects).
    pub a: Vec<u32>,
    /// Second inputs, each `< n_in` (row of `V` it selects).
    pub b: Vec<u32>,
    /// Correct classes, each `< n_out`; or, under a head layout, the integer each head
    /// reads its class from ([`Heads::class`]).
    pub label: Vec<u32>,
    /// The head layout of a multi-head task (None: one softmax over all outputs). Part
    /// of the pair set because it says what the labels mean; shared, not copied, by
    /// [`PairSet::select`].
    pub heads: Option<Arc<Heads>>,
    /// What `a` and `b` mean: two token indices (the default), or one bit string held as
    /// a mask in `a` for a dense-input model ([`Inputs::Bits`]).
    pub inputs: Inputs,
}

impl PairSet {
    /// Number of examples (the length of `label`).
    pub fn len(&self) -> usize {
        self.label.len()
    }
    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.label.is_empty()
    }
    /// Appends the example `(a, b) → label`.
    pub fn push(&mut self, a: u32, b: u32, label: u32) {
        self.a.push(a);
        self.b.push(b);
        self.label.push(label);
    }
    /// The examples at `indices`, in that order (e.g. [`Split::train`]). Panics on an
    /// index out of range.
    pub fn select(&self, indices: &[usize]) -> PairSet {
        PairSet {
            a: indices.iter().map(|&i| self.a[i]).collect(),
            b: indices.iter().map(|&i| self.b[i]).collect(),
            label: indices.iter().map(|&i| self.label[i]).collect(),
            heads: self.heads.clone(),
            inputs: self.inputs,
        }
    }
}

impl Task {
    /// Builds a task from explicit examples, checking every index is in range.
    pub fn new(name: impl Into<String>, n_in: usize, n_out: usize, pairs: PairSet) -> Result<Task> {
        if n_in == 0 || n_out == 0 {
            return Err(Error::config(
                "task",
                format!("n_in={n_in}, n_out={n_out}"),
                "sizes must be positive",
            ));
        }
        if pairs.a.len() != pairs.label.len() || pairs.b.len() != pairs.label.len() {
            return Err(Error::Shape {
                what: "task pairs".into(),
                expected: "a, b and label of equal length".into(),
                got: format!(
                    "{}, {}, {}",
                    pairs.a.len(),
                    pairs.b.len(),
                    pairs.label.len()
                ),
            });
        }
        if pairs.is_empty() {
            return Err(Error::config(
                "task",
                "0 examples",
                "a task needs at least one example",
            ));
        }
        for i in 0..pairs.len() {
            let (a, b, y) = (
                pairs.a[i] as usize,
                pairs.b[i] as usize,
                pairs.label[i] as usize,
            );
            let label_ok = pairs.heads.is_some() || y < n_out;
            if a >= n_in || b >= n_in || !label_ok {
                return Err(Error::config(
                    "task",
                    format!("example {i} = ({a}, {b}) -> {y}"),
                    format!("inputs must be < {n_in} and labels < {n_out}"),
                ));
            }
        }
        if let Some(heads) = &pairs.heads {
            if heads.n_out() != n_out {
                return Err(Error::config(
                    "task",
                    format!("n_out={n_out}"),
                    format!("the head layout has {} outputs", heads.n_out()),
                ));
            }
        }
        Ok(Task {
            name: name.into(),
            n_in,
            n_out,
            pairs,
        })
    }

    /// The table of `op` over Z_p (every valid pair, in row-major `(a, b)` order, so for
    /// ops defined everywhere example `a·p + b` is `(a, b)`); `n_in = n_out = p`. Fails
    /// for `p < 2`, `p > 65 521`, or a composite `p` with `mul`/`div`.
    pub fn modular(op: Op, p: usize) -> Result<Task> {
        modular::build(op, p)
    }

    /// Seed 002's multi-task table over inputs `x0, x1 < p`: one head per prime q < p
    /// with target `(x0 + x1·p) mod q` and loss weight `1 / ln q`, the heads' losses
    /// summed. Fails unless p is a prime ≥ 3 (module `multitask`).
    pub fn multitask(p: usize) -> Result<Task> {
        multitask::build(p)
    }

    /// The single-task version of one of [`Task::multitask`]'s targets: label
    /// `(x0 + x1·p) mod q`, `n_in = p`, `n_out = q`. Fails unless p is a prime ≥ 3 and q
    /// a prime below p.
    pub fn mod_target(p: usize, q: usize) -> Result<Task> {
        multitask::build_single(p, q)
    }

    /// The head layout, for a multi-head task.
    pub fn heads(&self) -> Option<&Heads> {
        self.pairs.heads.as_deref()
    }

    /// Number of examples in the table (p² for most ops, p(p−1) for `div`).
    pub fn len(&self) -> usize {
        self.pairs.len()
    }
    /// Whether the table has no examples (never true for a task built by
    /// [`Task::new`], which refuses empty ones).
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}
