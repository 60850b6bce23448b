//! `clockwork.Sweep`: the library's sweeps ([`clockwork::sweep`]) for Python — a sweep
//! file, TOML text or dict checked as `sweep` checks it, its plan and dry-run estimate,
//! a (sharded, resumable) run, `merge` of shard directories, and the state of a sweep
//! directory. The tables are read by `clockwork/sweeps.py`.
//!
//! A run trains on a worker thread while the calling thread waits with the GIL released,
//! taking it back every [`POLL`] to let Python handle signals: Ctrl-C sets the library's
//! interrupt flag, the worker checkpoints the current batch after its next step, and the
//! call raises `KeyboardInterrupt`; running it again resumes (finished batches are read
//! back, never retrained).

use crate::config::PyConfig;
use crate::errors::{config_error, to_py, IntoPyResult};
use crate::values;
use clockwork::run::Progress;
use clockwork::sweep::batch::{batch_dir, RESULT_FILE};
use clockwork::sweep::plan::Shard;
use clockwork::sweep::spec::SweepSpec;
use clockwork::sweep::{
    self, estimate, merge, rewrite, tables, Sweep, SweepMeta, SweepOptions, SweepStatus,
};
use clockwork::Error;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often a waiting `run` takes the GIL back to let Python handle Ctrl-C.
const POLL: Duration = Duration::from_millis(50);

/// Name of a sweep given as text or a dict without `name`.
const DEFAULT_NAME: &str = "sweep";

/// A checked, expanded sweep: every point resolved and validated like ``train``
/// resolves a config, the shape groups and batches planned, the diagrams checked —
/// nothing trained or written. ``Sweep(path)`` reads a sweep file (the format of the
/// README's Sweeps section); :meth:`from_toml` and :meth:`from_dict` take the same
/// schema as text or a dict. A bad value raises ``ConfigError`` naming the key and the
/// value, with the message the ``sweep`` binary prints.
#[pyclass(name = "Sweep", module = "clockwork", frozen)]
pub struct PySweep {
    sweep: Sweep,
}

/// A shard argument: None (the whole sweep), ``"i/n"`` or ``(i, n)``.
fn shard_arg(py: Python<'_>, shard: Option<&Bound<'_, PyAny>>) -> PyResult<Shard> {
    let Some(s) = shard else {
        return Ok(Shard::ALL);
    };
    let text = if let Ok(t) = s.cast::<PyString>() {
        t.to_string()
    } else if let Ok((i, n)) = s.extract::<(i64, i64)>() {
        format!("{i}/{n}")
    } else {
        s.repr()?.to_string()
    };
    Shard::parse(&text).map_err(|_| {
        config_error(
            py,
            "shard",
            &text,
            "expected \"i/n\" or (i, n) with 0 <= i < n, e.g. \"0/4\"",
        )
    })
}

/// Parses sweep TOML (named `name` unless it says otherwise; a relative `base.config`
/// is looked up in `folder`) and checks it.
fn from_text(
    py: Python<'_>,
    text: String,
    name: Option<String>,
    folder: Option<PathBuf>,
) -> PyResult<PySweep> {
    let folder = folder.unwrap_or_else(|| PathBuf::from("."));
    let stem = name.unwrap_or_else(|| DEFAULT_NAME.into());
    let sweep = py
        .detach(move || -> clockwork::Result<Sweep> {
            let spec = SweepSpec::parse(&text, &stem, &folder)?;
            Sweep::new(spec, text)
        })
        .py(py)?;
    Ok(PySweep { sweep })
}

#[pymethods]
impl PySweep {
    /// Reads, expands and checks a sweep file (``sweep FILE`` does the same first).
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<PySweep> {
        let sweep = py.detach(move || Sweep::load(&path)).py(py)?;
        Ok(PySweep { sweep })
    }

    /// A sweep from TOML text in the sweep-file format. ``name`` names it when the text
    /// has no ``name`` (default ``"sweep"``); a relative ``base.config`` is looked up in
    /// ``folder`` (default: the working directory).
    #[staticmethod]
    #[pyo3(signature = (text, name=None, folder=None))]
    fn from_toml(
        py: Python<'_>,
        text: String,
        name: Option<String>,
        folder: Option<PathBuf>,
    ) -> PyResult<PySweep> {
        from_text(py, text, name, folder)
    }

    /// A sweep from a dict with the sweep file's schema, e.g. ``{"base": {"preset":
    /// "explainer", "set": {"train.steps": 500}}, "axes": {"optimizer.weight_decay":
    /// [0.0, 1.0], "seed": {"seeds": 2}}}``; ``"points"`` is a list of dicts, dotted
    /// keys stay as written. ``name`` and ``folder`` as in :meth:`from_toml`.
    #[staticmethod]
    #[pyo3(signature = (mapping, name=None, folder=None))]
    fn from_dict(
        py: Python<'_>,
        mapping: &Bound<'_, PyAny>,
        name: Option<String>,
        folder: Option<PathBuf>,
    ) -> PyResult<PySweep> {
        let table = values::py_to_toml_table(py, "sweep", mapping)?;
        let text = toml::to_string(&table).map_err(|e| {
            config_error(py, "sweep", "(dict)", &format!("not writable as TOML: {e}"))
        })?;
        from_text(py, text, name, folder)
    }

    /// The sweep's name (``name``, else the file stem).
    #[getter]
    fn name(&self) -> String {
        self.sweep.spec.name.clone()
    }

    /// Checksum of the points, the batch cut and the thresholds (equal for the same
    /// sweep however it was given; a sweep directory holds one sweep).
    #[getter]
    fn fingerprint(&self) -> String {
        self.sweep.fingerprint.clone()
    }

    /// Number of models.
    #[getter]
    fn models(&self) -> usize {
        self.sweep.points.len()
    }

    /// The swept keys (axes first, then those of explicit points): the table's setting
    /// columns.
    #[getter]
    fn keys(&self) -> Vec<String> {
        self.sweep.spec.swept_keys()
    }

    /// The sweep file's text (for a dict, the TOML written from it).
    #[getter]
    fn text(&self) -> String {
        self.sweep.text.clone()
    }

    /// Every model: ``[{"model", "group", "batch", <swept key>: value, ...}]``.
    fn points(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let mut batch_of = vec![0; self.sweep.points.len()];
        let mut group_of = vec![0; self.sweep.points.len()];
        for b in &self.sweep.plan.batches {
            for &id in &b.points {
                batch_of[id] = b.index;
                group_of[id] = b.group;
            }
        }
        let out = pyo3::types::PyList::empty(py);
        for p in &self.sweep.points {
            let d = PyDict::new(py);
            d.set_item("model", p.id)?;
            d.set_item("group", group_of[p.id])?;
            d.set_item("batch", batch_of[p.id])?;
            for (k, v) in &p.settings {
                d.set_item(k, values::toml_to_py(py, v)?)?;
            }
            out.append(d)?;
        }
        Ok(out.into_any().unbind())
    }

    /// The resolved one-model config of model ``model`` (what ``train`` would run for
    /// that point; the sweep trains it, bit for bit, inside its batch).
    fn config(&self, py: Python<'_>, model: i64) -> PyResult<PyConfig> {
        let n = self.sweep.points.len();
        if model < 0 || model as usize >= n {
            return Err(config_error(
                py,
                "model",
                model,
                &format!("the sweep has models 0..{n}"),
            ));
        }
        Ok(PyConfig {
            config: self.sweep.points[model as usize].config.clone(),
        })
    }

    /// What ``sweep FILE --dry-run`` prints, as a dict: ``name``, ``fingerprint``,
    /// ``models``, ``batches``, ``batch_max``, ``axes`` (``[(key, count)]``),
    /// ``explicit_points``, ``groups`` (``[{"index", "describe", "models",
    /// "batches"}]``), ``shard``, ``shard_batches``, and with ``estimate=True`` (the
    /// default) the timed ``estimates`` per group (``{"group", "models", "batches",
    /// "step_s", "total_s"}``) and their sum ``estimated_s`` — a few steps of each batch
    /// size are trained to time them (GIL released); nothing is written.
    #[pyo3(signature = (shard=None, estimate=true))]
    fn plan(
        &self,
        py: Python<'_>,
        shard: Option<&Bound<'_, PyAny>>,
        estimate: bool,
    ) -> PyResult<Py<PyAny>> {
        let shard = shard_arg(py, shard)?;
        let sweep = &self.sweep;
        let plan = py
            .detach(move || estimate::dry_run(sweep, shard, estimate))
            .py(py)?;
        let d = values::to_py(py, &plan)?;
        d.bind(py).set_item("shard", shard.to_string())?;
        Ok(d)
    }

    /// Trains the sweep (or slice ``shard``, ``"i/n"`` or ``(i, n)``) into ``out``
    /// (default ``sweeps/NAME``, or ``sweeps/NAME-shard-i-of-n``) as ``sweep FILE
    /// --out OUT --shard i/n`` does, and writes the tables, diagrams and
    /// ``index.html``. The same call again resumes: finished batches are read back,
    /// unfinished ones continue from their last checkpoint. ``progress`` prints each
    /// batch and its training progress on stderr (the process', not a notebook's);
    /// ``explore`` also writes ``explore.html`` (the interactive page; ``sweep
    /// --explore``).
    ///
    /// Returns ``{"status", "out", "trained", "skipped", "models", "elapsed_s",
    /// "written"}`` (``trained``: batches trained by this call; ``skipped``: found
    /// finished). Ctrl-C (or any exception a signal handler raises) checkpoints the
    /// current batch after its next step and then raises; the GIL is released while it
    /// trains.
    #[pyo3(signature = (out=None, shard=None, progress=false, explore=false))]
    fn run(
        &self,
        py: Python<'_>,
        out: Option<PathBuf>,
        shard: Option<&Bound<'_, PyAny>>,
        progress: bool,
        explore: bool,
    ) -> PyResult<Py<PyAny>> {
        let shard = shard_arg(py, shard)?;
        let out = out.unwrap_or_else(|| sweep::default_out(&self.sweep, shard));
        let interrupt = Arc::new(AtomicBool::new(false));
        let options = SweepOptions {
            progress: if progress {
                Progress::Auto
            } else {
                Progress::Off
            },
            interrupt: Some(interrupt.clone()),
            quiet: !progress,
            explore,
        };
        let sweep = &self.sweep;
        let (result, signal) = std::thread::scope(|scope| {
            let worker = scope.spawn(|| sweep::run(sweep, &out, shard, &options));
            let mut signal = None;
            while !worker.is_finished() {
                py.detach(|| std::thread::sleep(POLL));
                if signal.is_none() {
                    if let Err(e) = py.check_signals() {
                        interrupt.store(true, Ordering::SeqCst);
                        signal = Some(e);
                    }
                }
            }
            (worker.join(), signal)
        });
        let report = match result {
            Ok(r) => r.py(py)?,
            Err(_) => {
                return Err(PyRuntimeError::new_err(
                    "the sweep's worker thread panicked",
                ))
            }
        };
        if let Some(e) = signal {
            return Err(e);
        }
        let d = written_dict(py, report.models, &report.out, &report.written)?;
        let status = match report.status {
            SweepStatus::Completed => "completed",
            SweepStatus::Interrupted => "interrupted",
        };
        d.set_item("status", status)?;
        d.set_item("trained", report.trained)?;
        d.set_item("skipped", report.skipped)?;
        d.set_item("elapsed_s", report.elapsed_s)?;
        Ok(d.into_any().unbind())
    }

    fn __repr__(&self) -> String {
        let s = &self.sweep;
        format!(
            "Sweep('{}': {} models, {} shape group(s), {} batch(es); keys {})",
            s.spec.name,
            s.points.len(),
            s.plan.groups.len(),
            s.plan.batches.len(),
            s.spec.swept_keys().join(", ")
        )
    }
}

/// ``{"models", "out", "written"}``: what a run, merge or report wrote.
fn written_dict<'py>(
    py: Python<'py>,
    models: usize,
    out: &std::path::Path,
    written: &[PathBuf],
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("models", models)?;
    d.set_item("out", out.display().to_string())?;
    let written: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    d.set_item("written", written)?;
    Ok(d)
}

/// Joins the directories of all shards of one sweep into ``out`` (a new directory): one
/// table, one set of diagrams, as ``sweep merge DIRS --out OUT [--explore]`` does.
/// Shards of different sweeps, a missing or repeated shard or an unfinished batch are
/// refused before anything is written. Returns ``{"models", "out", "written"}``.
#[pyfunction]
#[pyo3(signature = (dirs, out, explore=false))]
pub fn merge_sweeps(
    py: Python<'_>,
    dirs: Vec<PathBuf>,
    out: PathBuf,
    explore: bool,
) -> PyResult<Py<PyAny>> {
    let report = py.detach(|| merge::merge(&dirs, &out, explore)).py(py)?;
    Ok(written_dict(py, report.models, &out, &report.written)?
        .into_any()
        .unbind())
}

/// Writes the tables, diagrams and ``index.html`` of a finished sweep, shard or merged
/// directory again from what it holds, without training (``sweep report DIR
/// [--explore]``): how a finished sweep gets ``explore.html``. Returns ``{"models",
/// "out", "written"}``.
#[pyfunction]
#[pyo3(signature = (path, explore=false))]
pub fn report_sweep(py: Python<'_>, path: PathBuf, explore: bool) -> PyResult<Py<PyAny>> {
    let report = py.detach(|| rewrite::rewrite(&path, explore)).py(py)?;
    Ok(written_dict(py, report.models, &path, &report.written)?
        .into_any()
        .unbind())
}

/// The state of a sweep directory: a sweep or shard directory (``sweep.json``) gives
/// ``{"kind": "sweep", "name", "fingerprint", "shard", "models", "batches",
/// "shard_batches", "batches_done", "finished"}``; a merged one (``merge.json``)
/// ``{"kind": "merged", "name", "fingerprint", "shards", "finished"}``. Anything else
/// raises ``BadFileError``.
#[pyfunction]
pub fn sweep_status(py: Python<'_>, path: PathBuf) -> PyResult<Py<PyAny>> {
    let d = PyDict::new(py);
    let merged = path.join(merge::MERGE_FILE);
    if !path.join(sweep::META_FILE).exists() && merged.exists() {
        let text = std::fs::read_to_string(&merged).map_err(|e| {
            to_py(
                py,
                Error::Io {
                    path: merged.clone(),
                    source: e,
                },
            )
        })?;
        let note: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            to_py(
                py,
                Error::BadFile {
                    path: merged.clone(),
                    reason: format!("not a merge description: {e}"),
                },
            )
        })?;
        d.set_item("kind", "merged")?;
        for key in ["name", "fingerprint", "shards"] {
            d.set_item(key, values::json_to_py(py, &note[key])?)?;
        }
        d.set_item("finished", path.join(tables::RESULTS_CSV).exists())?;
        return Ok(d.into_any().unbind());
    }
    let meta = SweepMeta::read(&path).py(py)?;
    let mine: Vec<usize> = (0..meta.batches).filter(|&b| meta.shard.holds(b)).collect();
    let done = mine
        .iter()
        .filter(|&&b| batch_dir(&path, b).join(RESULT_FILE).exists())
        .count();
    d.set_item("kind", "sweep")?;
    d.set_item("name", &meta.name)?;
    d.set_item("fingerprint", &meta.fingerprint)?;
    d.set_item("shard", meta.shard.to_string())?;
    d.set_item("models", meta.models)?;
    d.set_item("batches", meta.batches)?;
    d.set_item("shard_batches", mine.len())?;
    d.set_item("batches_done", done)?;
    d.set_item(
        "finished",
        done == mine.len() && path.join(tables::RESULTS_CSV).exists(),
    )?;
    Ok(d.into_any().unbind())
}

/// The table files of a finished sweep, shard or merged directory: ``(results.csv,
/// results.jsonl, histories.jsonl)``; an unfinished sweep raises ``BadFileError``
/// saying how far it got.
#[pyfunction]
pub fn sweep_table_files(py: Python<'_>, path: PathBuf) -> PyResult<Py<PyTuple>> {
    let status = sweep_status(py, path.clone())?;
    let status = status.bind(py);
    if !status.get_item("finished")?.extract::<bool>()? {
        let reason = if status.get_item("kind")?.extract::<String>()? == "sweep" {
            format!(
                "the sweep is not finished ({} of {} batch(es) done): run it again to finish it",
                status.get_item("batches_done")?,
                status.get_item("shard_batches")?
            )
        } else {
            "the merge is not finished (no results.csv): merge again".into()
        };
        return Err(to_py(py, Error::BadFile { path, reason }));
    }
    let file = |name: &str| -> PyResult<String> {
        let f = path.join(name);
        if !f.exists() {
            return Err(to_py(
                py,
                Error::BadFile {
                    path: f.clone(),
                    reason: "missing from a finished sweep directory".into(),
                },
            ));
        }
        Ok(f.display().to_string())
    };
    let files = (
        file(tables::RESULTS_CSV)?,
        file(tables::RESULTS_JSONL)?,
        file(tables::HISTORIES_JSONL)?,
    );
    PyTuple::new(py, [files.0, files.1, files.2]).map(|t| t.unbind())
}
