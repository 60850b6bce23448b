//! The compute engine: loss and gradients of a batch of models over a set of pairs.
//!
//! [`Backend`] is the one interface the training code talks to; the CPU backend
//! ([`cpu::CpuBackend`]) implements it with fused, tiled loops, and
//! [`reference`](mod@reference) holds the plain-loop version every fast path is tested against.

pub mod cpu;
pub mod cuda;
pub mod reference;

use crate::error::{Error, Result};
use crate::model::{Activation, Weights};
use crate::real::Real;
use crate::task::PairSet;
use serde::{Deserialize, Serialize};

/// The training loss (`"cross_entropy"` or `"mse"` in configs; `"ce"` also parses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// Mean softmax cross-entropy over the pairs.
    CrossEntropy,
    /// Mean over pairs and classes of `(f_c − 1[c = y])²` (PyTorch's `MSELoss` on one-hot
    /// targets, as in Gromov's analytic-solution paper).
    Mse,
}

impl std::str::FromStr for Loss {
    type Err = Error;
    fn from_str(s: &str) -> Result<Loss> {
        match s {
            "cross_entropy" | "ce" => Ok(Loss::CrossEntropy),
            "mse" => Ok(Loss::Mse),
            _ => Err(Error::config("loss", s, "expected cross_entropy or mse")),
        }
    }
}

/// What the fused core computes: the activation and the loss. Passed with every call,
/// so one backend serves models of any activation and loss.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CoreSpec {
    /// The hidden nonlinearity σ.
    pub activation: Activation,
    /// The data loss whose gradient the pass computes.
    pub loss: Loss,
}

/// Per-model statistics of one pass over a pair set.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PassStats {
    /// Mean data loss over the pairs (no regularizer); for MSE the mean is over pairs
    /// and classes.
    pub loss: f64,
    /// Pairs whose correct logit is strictly above every other logit.
    pub correct: usize,
    /// Number of pairs.
    pub count: usize,
    /// Smallest margin `f_y − max_{c≠y} f_c` over the pairs (unnormalized; negative while
    /// some pair is misclassified). Divide by [`crate::theory::margin_norm`] for the
    /// scale-invariant γ.
    pub min_margin: f64,
}

impl PassStats {
    /// Fraction of pairs classified correctly, `correct / count`, in [0, 1]; NaN for an
    /// empty pass.
    pub fn accuracy(&self) -> f64 {
        if self.count == 0 {
            f64::NAN
        } else {
            self.correct as f64 / self.count as f64
        }
    }
}

/// A compute backend. It never sees optimizers, regularizers or factorizations: only
/// the effective `U, V, W` of B models and a list of pairs.
///
/// Both calls return one [`PassStats`] per model and fail with [`Error::Shape`] when a
/// pair indexes outside the weights, or an error for an empty pair set.
pub trait Backend<F: Real>: Send + Sync {
    /// Short description for logs, e.g. `"cpu (2 threads, avx2)"`.
    fn describe(&self) -> String;

    /// Loss, accuracy and margins of every model on `pairs`, and the gradient of the mean
    /// data loss with respect to the weights, written into `grads` (overwritten and
    /// reshaped to `weights`' shape; engine layout, see [`Weights`]). For a tied model
    /// the `u` and `v` gradients come back separately; the caller sums them.
    fn loss_and_grad(
        &self,
        core: CoreSpec,
        weights: &Weights<F>,
        pairs: &PairSet,
        grads: &mut Weights<F>,
    ) -> Result<Vec<PassStats>>;

    /// Forward only: loss, accuracy and margins of every model on `pairs`.
    fn evaluate(
        &self,
        core: CoreSpec,
        weights: &Weights<F>,
        pairs: &PairSet,
    ) -> Result<Vec<PassStats>>;
}

/// Checks that `pairs` index inside `weights` (a library caller can hand us anything).
pub(crate) fn check_pairs<F: Real>(weights: &Weights<F>, pairs: &PairSet) -> Result<()> {
    if pairs.a.len() != pairs.label.len() || pairs.b.len() != pairs.label.len() {
        return Err(Error::Shape {
            what: "pairs".into(),
            expected: "a, b and label of equal length".into(),
            got: format!(
                "{}, {}, {}",
                pairs.a.len(),
                pairs.b.len(),
                pairs.label.len()
            ),
        });
    }
    let max_in = pairs.a.iter().chain(&pairs.b).copied().max().unwrap_or(0) as usize;
    let max_label = pairs.label.iter().copied().max().unwrap_or(0) as usize;
    if max_in >= weights.n_in || max_label >= weights.n_out {
        return Err(Error::Shape {
            what: "pairs".into(),
            expected: format!("inputs < {} and labels < {}", weights.n_in, weights.n_out),
            got: format!("max input {max_in}, max label {max_label}"),
        });
    }
    Ok(())
}
