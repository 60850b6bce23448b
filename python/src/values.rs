//! Plain values across the boundary: JSON-like Rust values (summaries, configs) to
//! Python dicts and lists, and Python config values (and sweep descriptions) to TOML.

use crate::errors::config_error;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyMapping, PyString};

/// A `serde_json::Value` as Python objects (dict, list, int, float, str, bool, None).
pub fn json_to_py(py: Python<'_>, v: &serde_json::Value) -> PyResult<Py<PyAny>> {
    use serde_json::Value;
    Ok(match v {
        Value::Null => py.None(),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any().unbind(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any().unbind()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any().unbind()
            } else {
                n.as_f64()
                    .unwrap_or(f64::NAN)
                    .into_pyobject(py)?
                    .into_any()
                    .unbind()
            }
        }
        Value::String(s) => s.into_pyobject(py)?.into_any().unbind(),
        Value::Array(a) => {
            let items = a
                .iter()
                .map(|x| json_to_py(py, x))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any().unbind()
        }
        Value::Object(o) => {
            let d = PyDict::new(py);
            for (k, x) in o {
                d.set_item(k, json_to_py(py, x)?)?;
            }
            d.into_any().unbind()
        }
    })
}

/// Any serializable value as Python objects, through JSON. Non-finite floats (which
/// JSON cannot hold) come back as None.
pub fn to_py<T: serde::Serialize>(py: Python<'_>, x: &T) -> PyResult<Py<PyAny>> {
    let v = serde_json::to_value(x)
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
    json_to_py(py, &v)
}

/// A TOML value as Python objects (for `Config.to_dict`).
pub fn toml_to_py(py: Python<'_>, v: &toml::Value) -> PyResult<Py<PyAny>> {
    Ok(match v {
        toml::Value::String(s) => s.into_pyobject(py)?.into_any().unbind(),
        toml::Value::Integer(i) => i.into_pyobject(py)?.into_any().unbind(),
        toml::Value::Float(x) => x.into_pyobject(py)?.into_any().unbind(),
        toml::Value::Boolean(b) => PyBool::new(py, *b).to_owned().into_any().unbind(),
        toml::Value::Datetime(d) => d.to_string().into_pyobject(py)?.into_any().unbind(),
        toml::Value::Array(a) => {
            let items = a
                .iter()
                .map(|x| toml_to_py(py, x))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any().unbind()
        }
        toml::Value::Table(t) => {
            let d = PyDict::new(py);
            for (k, x) in t {
                d.set_item(k, toml_to_py(py, x)?)?;
            }
            d.into_any().unbind()
        }
    })
}

/// A Python config value (int, float, bool, str, or a list of them) written as the TOML
/// text `--set key=value` takes, so it goes through the same checks as the command line.
pub fn py_to_toml_text(py: Python<'_>, key: &str, x: &Bound<'_, PyAny>) -> PyResult<String> {
    Ok(py_to_toml(py, key, x, false)?.to_string())
}

/// A Python mapping as a TOML table, nested mappings as tables and lists of them as
/// arrays of tables (a sweep description given as a dict); `key` names it in errors.
/// Keys stay as written: `{"axes": {"task.p": [7, 11]}}` is `[axes] "task.p" = [7, 11]`.
pub fn py_to_toml_table(py: Python<'_>, key: &str, x: &Bound<'_, PyAny>) -> PyResult<toml::Table> {
    match py_to_toml(py, key, x, true)? {
        toml::Value::Table(t) => Ok(t),
        _ => Err(config_error(
            py,
            key,
            x.repr()?,
            &format!("expected a dict, not {}", x.get_type().name()?),
        )),
    }
}

/// `tables`: whether mappings are taken (as TOML tables); a config value is never one.
fn py_to_toml(
    py: Python<'_>,
    key: &str,
    x: &Bound<'_, PyAny>,
    tables: bool,
) -> PyResult<toml::Value> {
    // bool before int: Python's bool is an int.
    if x.is_instance_of::<PyBool>() {
        return Ok(toml::Value::Boolean(x.extract()?));
    }
    if x.is_instance_of::<PyInt>() {
        return match x.extract::<i64>() {
            Ok(i) => Ok(toml::Value::Integer(i)),
            Err(_) => Err(config_error(py, key, x.repr()?, "integer out of range")),
        };
    }
    if x.is_instance_of::<PyFloat>() {
        return Ok(toml::Value::Float(x.extract()?));
    }
    if x.is_instance_of::<PyString>() {
        return Ok(toml::Value::String(x.extract()?));
    }
    // NumPy scalars and other numbers: through their Python float / int.
    if let Ok(i) = x.call_method0("__index__").and_then(|i| i.extract::<i64>()) {
        return Ok(toml::Value::Integer(i));
    }
    if x.hasattr("__float__")? && !x.hasattr("__len__")? {
        return Ok(toml::Value::Float(x.call_method0("__float__")?.extract()?));
    }
    if tables {
        if let Ok(m) = x.cast::<PyMapping>() {
            let mut t = toml::Table::new();
            for item in m.items()?.iter() {
                let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
                let name: String = k.extract().map_err(|_| {
                    config_error(
                        py,
                        key,
                        k.repr().map(|r| r.to_string()).unwrap_or_default(),
                        "keys must be strings",
                    )
                })?;
                let sub = format!("{key}.{name}");
                t.insert(name, py_to_toml(py, &sub, &v, tables)?);
            }
            return Ok(toml::Value::Table(t));
        }
    }
    if let Ok(items) = x.try_iter() {
        let mut out = Vec::new();
        for (i, item) in items.enumerate() {
            let sub = if tables {
                format!("{key}[{i}]")
            } else {
                key.to_string()
            };
            out.push(py_to_toml(py, &sub, &item?, tables)?);
        }
        return Ok(toml::Value::Array(out));
    }
    let what = if tables {
        "a value must be a bool, int, float, str, or a list or dict of them"
    } else {
        "a config value must be a bool, int, float, str or a list of them"
    };
    Err(config_error(
        py,
        key,
        x.repr()?,
        &format!("{what}, not {}", x.get_type().name()?),
    ))
}
