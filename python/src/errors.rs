//! clockwork's [`Error`] as Python exceptions: each kind becomes an instance of a class
//! defined in `clockwork/errors.py` (so the classes can inherit from both
//! `clockwork.Error` and the matching built-in, e.g. `ConfigError(Error, ValueError)`,
//! and carry the key and value as attributes).

use clockwork::Error;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::IntoPyObjectExt;

/// Builds `clockwork.errors.<class>(message, *args)` as a raisable error.
fn raise(py: Python<'_>, class: &str, message: String, args: Vec<Py<PyAny>>) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let cls = py.import("clockwork.errors")?.getattr(class)?;
        let mut all: Vec<Py<PyAny>> = vec![message.clone().into_pyobject(py)?.into_any().unbind()];
        all.extend(args);
        let tuple = pyo3::types::PyTuple::new(py, all)?;
        Ok(PyErr::from_value(cls.call1(tuple)?))
    };
    // The module is part of the package; if it cannot be imported the package is broken,
    // and the original message still reaches the user.
    build().unwrap_or_else(|e| PyRuntimeError::new_err(format!("{message} (and {e})")))
}

fn obj<'py, T: IntoPyObject<'py>>(py: Python<'py>, x: T) -> Py<PyAny> {
    match x.into_bound_py_any(py) {
        Ok(o) => o.unbind(),
        Err(_) => py.None(),
    }
}

/// Converts a library error into the Python exception of its kind.
pub fn to_py(py: Python<'_>, e: Error) -> PyErr {
    let message = e.to_string();
    match e {
        Error::InvalidConfig {
            key, value, reason, ..
        } => raise(
            py,
            "ConfigError",
            message,
            vec![obj(py, key), obj(py, value), obj(py, reason)],
        ),
        Error::Shape {
            what,
            expected,
            got,
        } => raise(
            py,
            "ShapeError",
            message,
            vec![obj(py, what), obj(py, expected), obj(py, got)],
        ),
        Error::Diverged { step, model, loss } => raise(
            py,
            "DivergedError",
            message,
            vec![obj(py, step), obj(py, model), obj(py, loss)],
        ),
        Error::BadFile { path, reason } => raise(
            py,
            "BadFileError",
            message,
            vec![obj(py, path.display().to_string()), obj(py, reason)],
        ),
        Error::Io { path, source } => raise(
            py,
            "FileIOError",
            message,
            vec![
                obj(py, path.display().to_string()),
                obj(py, source.raw_os_error()),
            ],
        ),
        // A file a format library refused: damaged or not ours, like BadFile; the
        // library's error is quoted in the message and the reason.
        Error::Format {
            path,
            reason,
            source,
        } => raise(
            py,
            "BadFileError",
            message,
            vec![
                obj(py, path.display().to_string()),
                obj(py, format!("{reason} ({source})")),
            ],
        ),
        Error::Backend(_) | Error::Driver { .. } => raise(py, "BackendError", message, vec![]),
        // Error is non_exhaustive: a kind added later is still raised, as the base class.
        _ => raise(py, "Error", message, vec![]),
    }
}

/// `Result<T, clockwork::Error>` → `PyResult<T>` with the exception of the error's kind.
pub trait IntoPyResult<T> {
    /// Converts the error (needs the GIL: call it with the GIL held).
    fn py(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for clockwork::Result<T> {
    fn py(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, e))
    }
}

/// A `ConfigError` for a bad argument of a Python call (key = the argument's name).
pub fn config_error(
    py: Python<'_>,
    key: &str,
    value: impl std::fmt::Display,
    reason: &str,
) -> PyErr {
    to_py(
        py,
        Error::InvalidConfig {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
            source: None,
        },
    )
}

/// A `ShapeError` for an array argument of a Python call.
pub fn shape_error(py: Python<'_>, what: &str, expected: String, got: String) -> PyErr {
    to_py(
        py,
        Error::Shape {
            what: what.to_string(),
            expected,
            got,
        },
    )
}
