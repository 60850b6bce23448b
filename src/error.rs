//! Error types. Every message names the bad value and what would be accepted, so a user
//! can act on it without reading the source.
//!
//! Where a lower-level error caused ours (the OS, a file-format library, the CUDA driver
//! or NVRTC, the thread pool) it is kept as [`std::error::Error::source`], so a caller
//! can walk the chain or downcast to the library's own error type. The message still
//! includes the lower error's text: the command-line tools print one line, the top
//! message, and it must be enough to act on.

use std::path::PathBuf;

/// A lower-level error kept as the `source()` of an [`Error`].
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

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
        /// The parser's error, where one found the problem (e.g. `toml::de::Error`).
        #[source]
        source: Option<Source>,
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
    /// A checkpoint or run directory could not be read or is not ours, by our own
    /// checks (missing tensor, shape mismatch, failed checksum, ...).
    #[error("{path}: {reason}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A file that a format library (safetensors, TOML, JSON, CSV) or the OS refused to
    /// read or write; its error is the `source()`.
    #[error("{path}: {reason} ({source})")]
    Format {
        /// The file.
        path: PathBuf,
        /// What was being done, e.g. "not a safetensors checkpoint".
        reason: String,
        /// The library's error.
        #[source]
        source: Source,
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
    /// A compute backend could not be used or failed, by our own checks: CUDA driver or
    /// NVRTC missing, no such device, a kernel that does not compile, a device too old.
    /// The message is one line saying what to do, except NVRTC compile errors, which
    /// append the compiler log. (Failures reported by the driver, NVRTC or the thread
    /// pool are [`Error::Driver`].)
    #[error("{0}")]
    Backend(String),
    /// Like [`Error::Backend`], caused inside a library the backend drives (the CUDA
    /// driver, NVRTC, the OS thread pool), whose error is the `source()`; the message
    /// quotes it.
    #[error("{message}")]
    Driver {
        /// One line saying what failed and what to do, quoting the library's error.
        message: String,
        /// The library's error.
        #[source]
        source: Source,
    },
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
            source: None,
        }
    }
    /// [`Error::config`] caused by a parser's error `source` (the reason should still
    /// say what it says, e.g. with its line and column).
    // For the TOML readers (`RunConfig::from_toml`, `presets::read_config_file`), which
    // still flatten toml's error into the reason.
    #[allow(dead_code)]
    pub(crate) fn config_from(
        key: &str,
        value: impl std::fmt::Display,
        reason: impl Into<String>,
        source: impl Into<Source>,
    ) -> Self {
        Error::InvalidConfig {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.into(),
            source: Some(source.into()),
        }
    }
    /// [`Error::Format`]: `path` refused by a library whose error is `source`.
    pub(crate) fn format(
        path: impl Into<PathBuf>,
        reason: impl Into<String>,
        source: impl Into<Source>,
    ) -> Self {
        Error::Format {
            path: path.into(),
            reason: reason.into(),
            source: source.into(),
        }
    }
    /// [`Error::Backend`] with a message and no lower error.
    pub(crate) fn backend(message: impl Into<String>) -> Self {
        Error::Backend(message.into())
    }
    /// [`Error::Driver`]: a backend failure caused by `source` (the driver's, NVRTC's,
    /// the thread pool's error), which the message should quote.
    pub(crate) fn backend_from(message: impl Into<String>, source: impl Into<Source>) -> Self {
        Error::Driver {
            message: message.into(),
            source: source.into(),
        }
    }
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    /// Every error in `e`'s `source()` chain, top first.
    fn chain<'a>(
        e: &'a (dyn std::error::Error + 'static),
    ) -> Vec<&'a (dyn std::error::Error + 'static)> {
        let mut out = vec![e];
        let mut link = e;
        while let Some(next) = link.source() {
            out.push(next);
            link = next;
        }
        out
    }

    #[test]
    fn a_damaged_checkpoint_chains_to_the_safetensors_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("step-00000000.safetensors");
        std::fs::write(&path, b"\xff\xff\xff\xff\xff\xff\xff\x7fnot a checkpoint").unwrap();
        let e = crate::checkpoint::Checkpoint::load(&path).unwrap_err();
        let message = e.to_string();
        assert!(message.contains(&*path.to_string_lossy()), "{message}");
        assert!(matches!(e, Error::Format { .. }), "{e:?}");
        let links = chain(&e);
        assert_eq!(links.len(), 2, "{links:?}");
        assert!(
            links[1]
                .downcast_ref::<safetensors::SafeTensorError>()
                .is_some(),
            "{links:?}"
        );
    }

    #[test]
    fn an_unreadable_run_config_chains_to_the_os_error() {
        let dir = tempfile::tempdir().unwrap();
        // config.toml is a directory: reading it fails in the OS.
        std::fs::create_dir(dir.path().join(crate::layout::CONFIG_FILE)).unwrap();
        let e = crate::run::resume(dir.path(), None, &Default::default()).unwrap_err();
        let e = e.error();
        assert!(e.to_string().contains("not a run directory"), "{e}");
        let links = chain(e);
        assert!(
            links[1].downcast_ref::<std::io::Error>().is_some(),
            "{links:?}"
        );
    }

    #[test]
    fn a_config_error_from_a_parser_keeps_the_parser_error() {
        let text = "[model]\nwidth = ";
        let parse = toml::from_str::<toml::Table>(text).unwrap_err();
        let e = Error::config_from("config", "TOML", parse.message().to_string(), parse);
        let links = chain(&e);
        assert_eq!(links.len(), 2);
        assert!(links[1].downcast_ref::<toml::de::Error>().is_some());
        assert!(e.to_string().starts_with("invalid config = TOML: "), "{e}");
        // Our own findings have no lower error.
        assert!(Error::config("p", 4, "not prime").source().is_none());
        assert!(Error::backend("no GPU").source().is_none());
    }

    #[test]
    fn a_backend_error_exposes_its_cause() {
        let cause = std::io::Error::other("driver said no");
        let e = Error::backend_from(format!("cannot open cuda:0: {cause}"), cause);
        assert_eq!(e.to_string(), "cannot open cuda:0: driver said no");
        let links = chain(&e);
        assert_eq!(links.len(), 2, "{links:?}");
        assert_eq!(links[1].to_string(), "driver said no");
    }
}
