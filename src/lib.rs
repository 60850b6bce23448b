//! # clockwork
//!
//! A fast engine for the science of how small neural networks learn algebra: two-layer
//! MLPs trained with full-batch gradient descent over every input pair of a modular
//! arithmetic table, and the analysis that turns their weights into findings.
//!
//! The model: neuron `i` owns `u_i, v_i ∈ R^p` and `w_i ∈ R^p`, computes
//! `h_i(a, b) = σ(u_i[a] + v_i[b])`, and the logits are `f_c(a, b) = Σ_i w_i[c]·h_i(a, b)`.
//! A [`train::Trainer`] trains a batch of such models (independent seeds, one shape) on
//! the pairs of a [`task::Task`], described by a [`config::RunConfig`] that round-trips
//! through TOML.
//!
//! ```
//! use clockwork::prelude::*;
//!
//! // a+b mod 7, x², width 4(p−1); the rest of the recipe is the default (blog-style GD
//! // with L_{2,3} regularization, see RunConfig::default).
//! let mut config = RunConfig::default();
//! config.task.p = 7;
//! config.model.width = 24;
//! config.validate()?;
//!
//! let mut trainer = Trainer::<f32>::from_config(&config)?;
//! for _ in 0..5 {
//!     let report = trainer.step()?; // loss measured before the update
//!     assert!(report.train[0].loss.is_finite());
//! }
//! let eval = trainer.evaluate()?; // train/test loss, accuracy, normalized margin, γ*
//! assert_eq!(eval.step, 5);
//!
//! // Effective weights of model 0 as ndarray, in the paper's orientation.
//! let weights = trainer.weights()?;
//! let u = weights.u_array(0); // m × p: row i is neuron i's embedding of the first input
//! let v = weights.v_array(0); // m × p
//! let w = weights.w_array(0); // p × m: column i is neuron i's output weights
//! assert_eq!(u.dim(), (24, 7));
//! assert_eq!(v.dim(), (24, 7));
//! assert_eq!(w.dim(), (7, 24));
//! # Ok::<(), clockwork::Error>(())
//! ```
//!
//! Where things are:
//! - [`config`]: the run description (with `[per_model]` settings); [`kinds`]: its typed
//!   choices; [`presets`]: named recipes from the seed material and the merging of TOML
//!   files and overrides over them.
//! - [`task`]: operation tables and train/test splits; [`model`]: shapes, parameters,
//!   effective weights and their layouts.
//! - [`engine`]: the [`engine::Backend`] trait (loss, statistics and gradients of a batch
//!   of models over a pair set) with the CPU and CUDA implementations and a plain-loop
//!   reference, [`engine::open`] to get one for a device, and [`engine::stepper`] (the
//!   step as a device runs it); the regularizer and the optimizer (internal) are what a
//!   host step adds on top of a pass.
//! - [`train`]: one [`train::Trainer`] for every device (it drives the backend's own
//!   device-resident stepper where there is one, else steps on the host).
//!   [`checkpoint`] saves and resumes; [`run`] manages run directories, whose format
//!   (file names, record types) is [`layout`].
//! - [`theory`]: closed-form margins (γ*); [`analysis`]: Fourier and margin analysis of
//!   trained weights.
//!
//! Errors are one [`Error`] type whose messages name the bad value and what would be
//! accepted.

// Every public item is documented; keep it that way (CI runs clippy with -D warnings).
#![warn(missing_docs)]

pub mod analysis;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod engine;
pub mod error;
pub(crate) mod fsutil;
pub(crate) mod grokfast;
pub mod kinds;
pub mod layout;
pub mod model;
pub(crate) mod optim;
pub mod presets;
pub mod real;
pub(crate) mod regularizer;
pub mod run;
pub mod sweep;
pub mod task;
pub mod theory;
pub mod train;

pub use error::{Error, Result};

/// The names most programs need: a config (or a preset), a trainer on any device, its
/// weights and metrics, and the analysis of a run.
pub mod prelude {
    pub use crate::analysis::pipeline::{analyze, Options as AnalysisOptions, RunAnalysis};
    pub use crate::config::{PerModelConfig, RunConfig};
    pub use crate::engine::{open as open_backend, Backend, CoreSpec, FrozenPairs, PassStats};
    pub use crate::kinds::{Device, Dtype, Loss, OptimizerKind, Precision, RegularizerKind};
    pub use crate::model::{
        Activation, ModelSpec, Params, Weights, WeightsShape, WeightsView, WeightsViewMut,
    };
    pub use crate::presets::preset;
    pub use crate::task::{Op, PairSet, Split, SplitKind, Task};
    pub use crate::train::{Evaluation, StepReport, Trainer, TrainerState};
    pub use crate::{Error, Result};
}
