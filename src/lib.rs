//! # clockwork
//!
//! A fast engine for the science of how small neural networks learn algebra: two-layer
//! MLPs trained with full-batch gradient descent over every input pair of a modular
//! arithmetic table, and the analysis that turns their weights into findings.
//!
//! ```no_run
//! use clockwork::prelude::*;
//!
//! let config = RunConfig::default(); // a+b mod 23, x², blog-style recipe
//! let mut trainer = Trainer::<f32>::from_config(&config)?;
//! for _ in 0..100 {
//!     trainer.step()?;
//! }
//! let u = trainer.weights().u_array(0); // m × p, ndarray
//! # Ok::<(), clockwork::Error>(())
//! ```

pub mod engine;
pub mod error;
pub mod model;
pub mod real;
pub mod task;

pub use error::{Error, Result};
