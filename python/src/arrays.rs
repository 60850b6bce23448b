//! NumPy arrays in and out, and where they copy.
//!
//! Out: the trainer's weights live in the engine's token-major layout (`u[a·m + i]`,
//! `p × m` per model) behind `&mut` of a trainer that keeps stepping, so handing Python a
//! borrow is not possible: each read copies once into a new NumPy array, and the paper
//! orientation (`U`: `m × p`) is a transposed *view* of that copy (no second copy).
//! In: arrays are converted with `numpy.asarray(x, dtype)` (a no-op for an array of the
//! right dtype) and, when the engine layout is the transpose, `ascontiguousarray(x.T)`
//! (NumPy's copy); the engine then takes its own copy of the values.

use crate::errors::shape_error;
use numpy::{Element, PyArray1, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

/// A new NumPy array of `shape` holding `data` (moved, not copied, into NumPy).
pub fn from_vec<'py, T: Element>(
    py: Python<'py>,
    data: Vec<T>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    let a = PyArray1::from_vec(py, data);
    Ok(a.reshape(shape.to_vec())?.into_any())
}

/// `(B, rows, cols)` data as the array of its transpose `(B, cols, rows)`: a view.
pub fn transposed_view<'py>(a: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let nd: usize = a.getattr("ndim")?.extract()?;
    if nd == 2 {
        a.getattr("T")
    } else {
        a.call_method1("swapaxes", (nd - 2, nd - 1))
    }
}

/// The NumPy dtype name of an element type.
pub trait DtypeName {
    /// `"float32"` or `"float64"`.
    const NUMPY: &'static str;
}
impl DtypeName for f32 {
    const NUMPY: &'static str = "float32";
}
impl DtypeName for f64 {
    const NUMPY: &'static str = "float64";
}

/// A real array argument, converted to `T` and C order (transposing its last two axes
/// first when `transpose`), with its shape as given. Raises TypeError for what is not a
/// real array and a ShapeError naming `what` when it has not `ndim` dimensions (any of
/// `ndims`).
pub fn read<T: Element + DtypeName + Copy>(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    what: &str,
    ndims: &[usize],
    transpose: bool,
) -> PyResult<(Vec<T>, Vec<usize>)> {
    let np = py.import("numpy")?;
    let arr = np.call_method1("asarray", (x,)).map_err(|e| {
        PyTypeError::new_err(format!(
            "{what}: expected a real-valued array, got {} ({e})",
            type_name(x)
        ))
    })?;
    let kind: String = arr.getattr("dtype")?.getattr("kind")?.extract()?;
    if !matches!(kind.as_str(), "f" | "i" | "u" | "b") {
        return Err(PyTypeError::new_err(format!(
            "{what}: expected a real-valued array, got dtype {}",
            arr.getattr("dtype")?.str()?
        )));
    }
    let shape: Vec<usize> = arr.getattr("shape")?.extract()?;
    if !ndims.contains(&shape.len()) {
        let want = ndims
            .iter()
            .map(|d| format!("{d}-D"))
            .collect::<Vec<_>>()
            .join(" or ");
        return Err(shape_error(py, what, want, format!("shape {shape:?}")));
    }
    let arr = if transpose && shape.len() >= 2 {
        transposed_view(arr)?
    } else {
        arr
    };
    let arr = np.call_method1("ascontiguousarray", (arr, T::NUMPY))?;
    let typed = arr.cast::<PyArrayDyn<T>>()?;
    let ro = typed.readonly();
    let data = ro.as_slice().map(|s| s.to_vec());
    let data = match data {
        Ok(d) => d,
        Err(_) => ro.as_array().iter().copied().collect(),
    };
    debug_assert_eq!(data.len(), typed.len());
    Ok((data, shape))
}

fn type_name(x: &Bound<'_, PyAny>) -> String {
    x.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}
