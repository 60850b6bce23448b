//! Error types. Every message names the bad value and what would be accepted, so a user
//! can act on it without reading the source.

use std::path::PathBuf;

/// Everything the library can refuse or fail at. New kinds of failure may be added, so
/// a `match` on it needs a wildcard arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is out of range or inconsistent with another.
    #[error("invalid {key} = {value}: {reason}")]
    InvalidConfig {
        /// The offending key, dotted as in the TOML file where it comes from one
        /// (`optimizer.lr`), else the argument's name (`threads`, `p`).
        key: String,
        /// The rejected value as written.
        value: String,
        /// Why it was rejected and what would be accepted.
        reason: String,
    },
    /// Arrays handed to a library call do not have the shapes the model needs.
    #[error("shape mismatch for {what}: expected {expected}, got {got}")]
    Shape {
        /// Which argument (`"v"`, `"pairs"`, `"trainer state"`, ...).
        what: String,
        /// The shape or size that was needed.
        expected: String,
        /// The shape or size that was passed.
        got: String,
    },
    /// The loss (data loss plus regularizer) became NaN or infinite. The trainer did not
    /// apply that step's update, so its parameters are the last finite ones; the usual
    /// cure is a lower learning rate or init scale.
    #[error("training diverged at step {step}: loss of model {model} is {loss} (lower the learning rate or the init scale)")]
    Diverged {
        /// 0-based number of the step whose loss was not finite.
        step: u64,
        /// Index of the first model of the batch that diverged.
        model: usize,
        /// Its total loss (NaN or ±inf).
        loss: f64,
    },
    /// A checkpoint or run directory could not be read or is not ours.
    #[error("{path}: {reason}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it (wrong format, missing tensor, shape mismatch, ...).
        reason: String,
    },
    /// An I/O error on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A compute backend could not be used or failed: CUDA driver or NVRTC missing, no
    /// such device, a kernel that does not compile, a driver error, or a CPU thread pool
    /// that cannot start. The message is one line saying what to do, except NVRTC
    /// compile errors, which append the compiler log.
    #[error("{0}")]
    Backend(String),
}

/// `std::result::Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn config(
        key: &str,
        value: impl std::fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        Error::InvalidConfig {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
