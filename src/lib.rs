//! # clockwork
//!
//! A fast engine for the science of how small neural networks learn algebra: two-layer
//! MLPs trained with full-batch gradient descent over every input pair of a modular
//! arithmetic table, and the analysis that turns their weights into findings.
//!
//! ```no_run
//! use clockwork::prelude::*;
//!
//! let config = RunConfig::default(); // a+b mod 31, x², blog-style recipe
//! let mut trainer = Trainer::<f32>::from_config(&config)?;
//! for _ in 0..100 {
//!     trainer.step()?;
//! }
//! let u = trainer.weights().u_array(0); // m × p, ndarray
//! # Ok::<(), clockwork::Error>(())
//! ```

pub mod analysis;
pub mod checkpoint;
pub mod config;
pub mod engine;
pub mod error;
pub mod fsutil;
pub mod model;
pub mod optim;
pub mod presets;
pub mod real;
pub mod regularizer;
pub mod run;
pub mod task;
pub mod theory;
pub mod train;

pub use error::{Error, Result};

/// The names most programs need.
pub mod prelude {
    pub use crate::config::{Device, RunConfig};
    pub use crate::engine::{Backend, CoreSpec, Loss, PassStats};
    pub use crate::model::{Activation, ModelSpec, Params, Weights};
    pub use crate::task::{Op, PairSet, Split, Task};
    pub use crate::train::{Evaluation, StepReport, Trainer};
    pub use crate::{Error, Result};
}
