//! `clockwork.Config`: a validated [`RunConfig`] built the way the `train` command line
//! builds one (preset → TOML file → overrides, [`presets::resolve`]), so a notebook gets
//! the same keys, the same checks and the same error messages.

use crate::errors::{config_error, IntoPyResult};
use crate::values::{py_to_toml_text, toml_to_py};
use clockwork::config::{PerModelConfig, RunConfig};
use clockwork::presets;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde::Deserialize;
use std::path::PathBuf;

/// A validated run configuration (the ``config.toml`` of a run directory).
///
/// Build one from a preset (``Config.preset("blog-x2")``), a dict
/// (``Config.from_dict({"task": {"p": 23}})``) or a TOML file (``Config.from_file(path)``),
/// and refine it with ``.with_(...)``; every step checks keys and values exactly like
/// ``train --preset/--config/--set`` and raises ``clockwork.ConfigError`` (a
/// ``ValueError`` carrying ``key``, ``value`` and ``reason``) on a bad one. A Config is
/// immutable: ``with_`` returns a new one.
#[pyclass(name = "Config", module = "clockwork", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct PyConfig {
    pub config: RunConfig,
}

/// Flattens a (possibly nested) dict into dotted `key = TOML text` overrides.
fn flatten(
    py: Python<'_>,
    prefix: &str,
    d: &Bound<'_, PyDict>,
    out: &mut Vec<(String, String)>,
) -> PyResult<()> {
    for (k, v) in d.iter() {
        let k: String = k.extract().map_err(|_| {
            config_error(
                py,
                "config",
                k.repr().map(|r| r.to_string()).unwrap_or_default(),
                "config keys must be strings",
            )
        })?;
        let key = if prefix.is_empty() {
            k
        } else {
            format!("{prefix}.{k}")
        };
        if let Ok(sub) = v.cast::<PyDict>() {
            flatten(py, &key, sub, out)?;
        } else {
            let text = py_to_toml_text(py, &key, &v)?;
            out.push((key, text));
        }
    }
    Ok(())
}

/// The config key a keyword argument names: `task__p` is `task.p`; a bare name is the
/// one key ending in it (`p` → `task.p`, `lr` → `optimizer.lr`; `[per_model]` lists are
/// only reached by their dotted name). An unknown name is passed on unchanged so the
/// resolver reports it with the list of keys.
fn keyword_key(py: Python<'_>, name: &str) -> PyResult<String> {
    let dotted = name.replace("__", ".");
    if dotted.contains('.') {
        return Ok(dotted);
    }
    let keys = presets::keys_with_defaults();
    let matches: Vec<&String> = keys
        .iter()
        .map(|(k, _)| k)
        .filter(|k| !k.starts_with("per_model."))
        .filter(|k| k.as_str() == name || k.rsplit('.').next() == Some(name))
        .collect();
    match matches.as_slice() {
        [] => Ok(dotted),
        [one] => Ok((*one).clone()),
        many => Err(config_error(
            py,
            name,
            "(keyword)",
            &format!(
                "ambiguous: it is the last part of {}; pass the dotted key in a dict, e.g. with_({{\"{}\": ...}})",
                many.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                many[0]
            ),
        )),
    }
}

/// Overrides from a positional mapping and keyword arguments, in that order.
fn overrides(
    py: Python<'_>,
    mapping: Option<&Bound<'_, PyAny>>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    if let Some(m) = mapping {
        let d = m.cast::<PyDict>().map_err(|_| {
            config_error(
                py,
                "config",
                m.repr().map(|r| r.to_string()).unwrap_or_default(),
                "expected a dict of config keys (nested {\"task\": {\"p\": 23}} or dotted {\"task.p\": 23})",
            )
        })?;
        flatten(py, "", d, &mut out)?;
    }
    if let Some(kw) = kwargs {
        for (k, v) in kw.iter() {
            let name: String = k.extract()?;
            let key = keyword_key(py, &name)?;
            let text = py_to_toml_text(py, &key, &v)?;
            out.push((key, text));
        }
    }
    Ok(out)
}

/// One line naming what a config trains (its `repr`).
pub fn describe(c: &RunConfig) -> String {
    format!(
        "Config({} mod {}, width {}, {}, {} model(s), {}, {}, {} steps)",
        c.task.op.name(),
        c.task.p,
        c.model.width,
        c.model.activation,
        c.models,
        c.dtype,
        c.device,
        c.train.steps
    )
}

/// `overrides` applied over `base` as [`presets::resolve_over`] applies them, and
/// `[per_model]` lists too (`--set` has no per-model keys; a notebook sweeping seeds
/// wants them): those are set after the others, then the whole config is validated, so
/// `models = 4` and four-entry lists can change together.
fn resolve_with(
    py: Python<'_>,
    mut base: RunConfig,
    overrides: &[(String, String)],
) -> PyResult<RunConfig> {
    let (per_model, plain): (Vec<_>, Vec<_>) = overrides
        .iter()
        .cloned()
        .partition(|(k, _)| k.starts_with("per_model."));
    if per_model.is_empty() {
        return presets::resolve_over(base, None, &plain).py(py);
    }
    let mut lists = match toml::Value::try_from(&base.per_model) {
        Ok(toml::Value::Table(t)) => t,
        _ => toml::Table::new(),
    };
    base.per_model = PerModelConfig::default();
    let mut config = presets::resolve_over(base, None, &plain).py(py)?;
    for (key, text) in &per_model {
        let name = &key["per_model.".len()..];
        let value = toml::from_str::<toml::Table>(&format!("v = {text}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .ok_or_else(|| config_error(py, key, text, "expected a list, e.g. [0, 1, 2]"))?;
        lists.insert(name.to_string(), value);
        config.per_model =
            PerModelConfig::deserialize(toml::Value::Table(lists.clone())).map_err(|e| {
                let msg = e.to_string();
                config_error(py, key, text, msg.trim())
            })?;
    }
    config.validate().py(py)?;
    Ok(config)
}

impl PyConfig {
    /// The config as a TOML table, with `[per_model]` always present (its lists empty
    /// when unset; `config.toml` leaves the section out then).
    fn table(&self) -> toml::Table {
        let mut t: toml::Table =
            toml::from_str(&self.config.to_toml()).expect("a RunConfig's TOML parses");
        if !t.contains_key("per_model") {
            if let Ok(pm) = toml::Value::try_from(&self.config.per_model) {
                t.insert("per_model".into(), pm);
            }
        }
        t
    }
}

#[pymethods]
impl PyConfig {
    /// ``Config()`` is the ``default`` preset; keyword arguments override keys as in
    /// :meth:`with_` (``Config(p=23, width=176)``).
    #[new]
    #[pyo3(signature = (mapping=None, /, **kwargs))]
    fn new(
        py: Python<'_>,
        mapping: Option<&Bound<'_, PyAny>>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyConfig> {
        let ov = overrides(py, mapping, kwargs)?;
        let config = resolve_with(py, presets::preset("default").py(py)?, &ov)?;
        Ok(PyConfig { config })
    }

    /// The config of a named preset (see :meth:`preset_names`), e.g. ``"blog-x2"``.
    #[staticmethod]
    fn preset(py: Python<'_>, name: &str) -> PyResult<PyConfig> {
        let config = presets::resolve(name, None, &[]).py(py)?;
        Ok(PyConfig { config })
    }

    /// A config from a dict of keys over a preset (default ``"default"``): nested
    /// (``{"task": {"p": 23}}``) or dotted (``{"task.p": 23}``) keys.
    #[staticmethod]
    #[pyo3(signature = (mapping, preset="default"))]
    fn from_dict(py: Python<'_>, mapping: &Bound<'_, PyAny>, preset: &str) -> PyResult<PyConfig> {
        let ov = overrides(py, Some(mapping), None)?;
        let config = resolve_with(py, presets::preset(preset).py(py)?, &ov)?;
        Ok(PyConfig { config })
    }

    /// A TOML file (e.g. a run directory's ``config.toml``) merged over a preset, as
    /// ``train --preset PRESET --config PATH`` does. Bad TOML is reported with its line.
    #[staticmethod]
    #[pyo3(signature = (path, preset="default"))]
    fn from_file(py: Python<'_>, path: PathBuf, preset: &str) -> PyResult<PyConfig> {
        let config = presets::resolve(preset, Some(&path), &[]).py(py)?;
        Ok(PyConfig { config })
    }

    /// A config from TOML text (every key has a default, so the text names only what it
    /// changes from the ``default`` preset).
    #[staticmethod]
    fn from_toml(py: Python<'_>, text: &str) -> PyResult<PyConfig> {
        let config = RunConfig::from_toml(text).py(py)?;
        Ok(PyConfig { config })
    }

    /// A new config with some keys changed, checked as ``--set key=value`` is:
    /// ``with_(p=97)``, ``with_(task__p=97)``, ``with_({"task.p": 97})`` or
    /// ``with_({"task": {"p": 97}})``. A bare keyword is the one key ending in it
    /// (``p``, ``width``, ``lr``, ``steps``, ``seed``, ``device`` ...).
    #[pyo3(signature = (mapping=None, /, **kwargs))]
    fn with_(
        &self,
        py: Python<'_>,
        mapping: Option<&Bound<'_, PyAny>>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyConfig> {
        let ov = overrides(py, mapping, kwargs)?;
        let config = resolve_with(py, self.config.clone(), &ov)?;
        Ok(PyConfig { config })
    }

    /// The names of the presets.
    #[staticmethod]
    fn preset_names() -> Vec<&'static str> {
        presets::PRESETS.iter().map(|(n, _)| *n).collect()
    }

    /// Every config key with its default and its description (what ``train --help``
    /// prints).
    #[staticmethod]
    fn key_reference() -> String {
        presets::key_reference()
    }

    /// Every config key, dotted (``"task.p"``), in file order.
    #[staticmethod]
    fn keys() -> Vec<String> {
        presets::keys_with_defaults()
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    /// The config as nested dicts (sections ``task``, ``model``, ``train``,
    /// ``optimizer``, ``per_model``), as in ``config.toml`` (which leaves ``per_model``
    /// out when its lists are empty).
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        toml_to_py(py, &toml::Value::Table(self.table()))
    }

    /// The config as TOML text, re-readable with :meth:`from_toml` and by
    /// ``train --config``.
    fn to_toml(&self) -> String {
        self.config.to_toml()
    }

    /// The value of a dotted key (``cfg["task.p"]``) or a whole section (``cfg["task"]``).
    fn __getitem__(&self, py: Python<'_>, key: &str) -> PyResult<Py<PyAny>> {
        let table = self.table();
        let found = match key.split_once('.') {
            None => table.get(key).cloned(),
            Some((s, k)) => table.get(s).and_then(|t| t.get(k)).cloned(),
        };
        match found {
            Some(v) => toml_to_py(py, &v),
            None => Err(pyo3::exceptions::PyKeyError::new_err(format!(
                "no config key '{key}' (Config.keys() lists them)"
            ))),
        }
    }

    /// The modulus p (``task.p``).
    #[getter]
    fn p(&self) -> usize {
        self.config.task.p
    }
    /// Hidden width m (``model.width``).
    #[getter]
    fn width(&self) -> usize {
        self.config.model.width
    }
    /// Number of models trained together (``models``).
    #[getter]
    fn models(&self) -> usize {
        self.config.models
    }
    /// ``"f32"`` or ``"f64"``.
    #[getter]
    fn dtype(&self) -> String {
        self.config.dtype.to_string()
    }
    /// ``"cpu"`` or ``"cuda:N"``.
    #[getter]
    fn device(&self) -> String {
        self.config.device.to_string()
    }
    /// Steps of a full run (``train.steps``).
    #[getter]
    fn steps(&self) -> u64 {
        self.config.train.steps
    }

    fn __repr__(&self) -> String {
        describe(&self.config)
    }
}
