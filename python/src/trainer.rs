//! `clockwork.Trainer`: the library's [`Trainer`] for Python, f32 or f64 as the config's
//! `dtype` says, on the device it names.
//!
//! Compute runs with the GIL released ([`Python::detach`]), so other Python threads run
//! meanwhile. A long `step(n)` goes in chunks of about [`CHUNK`] of wall time; between
//! chunks it takes the GIL back and lets Python handle signals, so Ctrl-C raises
//! `KeyboardInterrupt` within a chunk, with the steps taken so far kept.

use crate::arrays::{from_vec, read, transposed_view, DtypeName};
use crate::config::PyConfig;
use crate::errors::{config_error, shape_error, IntoPyResult};
use clockwork::checkpoint;
use clockwork::config::RunConfig;
use clockwork::real::Real;
use clockwork::train::{Evaluation, StepReport, Trainer, TrainerState};
use numpy::Element;
use pyo3::exceptions::PyKeyError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

/// Wall time of compute between two checks for Ctrl-C in `step(n)`.
const CHUNK: Duration = Duration::from_millis(50);

/// The trainer in the config's precision.
enum Inner {
    F32(Trainer<f32>),
    F64(Trainer<f64>),
}

/// Runs `$body` with `$t` bound to the trainer, whatever its precision.
macro_rules! dispatch {
    ($inner:expr, $t:ident => $body:expr) => {
        match $inner {
            Inner::F32($t) => $body,
            Inner::F64($t) => $body,
        }
    };
}

/// A `&mut` trainer carried into [`Python::detach`], which wants `Send` closures.
///
/// The trainer holds its stepper as `Box<dyn Stepper>`, which is not declared `Send`, but
/// the closure runs on the calling thread (`detach` only releases the GIL around it), the
/// trainer is reachable only through this one `&mut` while it runs, and [`PyTrainer`]
/// hands its trainer out on the thread that made it only, so no other thread ever
/// touches it.
struct OnThisThread<T>(T);
// SAFETY: see the type's docs: the value never leaves the thread that created it.
unsafe impl<T> Send for OnThisThread<T> {}
impl<T> OnThisThread<T> {
    fn get(self) -> T {
        self.0
    }
}

/// Trains a batch of models of one shape (``config.models``) on one task.
///
/// ``Trainer(config)`` builds it on ``config.device`` (``"cpu"`` or ``"cuda:N"``) in
/// ``config.dtype``, initialized from the config's seeds, exactly as ``train`` does: a
/// run here and the same config through ``train`` give the same bits. Compute releases
/// the GIL. A Trainer belongs to the thread that made it: a call from another thread
/// raises RuntimeError.
#[pyclass(name = "Trainer", module = "clockwork")]
pub struct PyTrainer {
    /// Reached only through [`PyTrainer::inner`] / [`PyTrainer::inner_mut`].
    inner: Inner,
    config: RunConfig,
    /// The thread that built the trainer, the only one that may use it.
    owner: ThreadId,
}

// SAFETY: the trainer (the one part that is not declared Send/Sync: its boxed stepper,
// which may hold a device's graph and streams) is only ever reached on the `owner`
// thread, checked by `inner`/`inner_mut` on every call; PyO3's borrow flag keeps a
// `&mut` call exclusive. What `#[pyclass(unsendable)]` would give, except that a call
// from another thread raises a RuntimeError there instead of a Rust panic.
unsafe impl Send for PyTrainer {}
unsafe impl Sync for PyTrainer {}

fn build(py: Python<'_>, config: &RunConfig) -> PyResult<Inner> {
    let config = config.clone();
    let built = py.detach(move || -> clockwork::Result<OnThisThread<Inner>> {
        Ok(OnThisThread(match config.dtype {
            clockwork::kinds::Dtype::F32 => Inner::F32(Trainer::from_config(&config)?),
            clockwork::kinds::Dtype::F64 => Inner::F64(Trainer::from_config(&config)?),
        }))
    });
    Ok(built.py(py)?.get())
}

/// Takes up to `n` steps, stopping after the first batch that ends past `budget`.
/// Returns the steps taken, the last report and how it ended.
fn run_chunk<F: Real>(
    t: &mut Trainer<F>,
    n: u64,
    budget: Duration,
) -> (u64, Option<StepReport>, clockwork::Result<()>) {
    let started = Instant::now();
    let batch = t.preferred_batch().max(1);
    let (mut taken, mut last) = (0u64, None);
    while taken < n {
        let k = batch.min(n - taken);
        let before = t.steps_done();
        let r = t.advance(k, &mut |rep| last = Some(rep));
        taken += t.steps_done() - before;
        if r.is_err() {
            return (taken, last, r);
        }
        if started.elapsed() >= budget {
            break;
        }
    }
    (taken, last, Ok(()))
}

fn report_dict<'py>(py: Python<'py>, r: &StepReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("step", r.step)?;
    d.set_item(
        "train_loss",
        r.train.iter().map(|s| s.loss).collect::<Vec<_>>(),
    )?;
    d.set_item(
        "train_acc",
        r.train.iter().map(|s| s.accuracy()).collect::<Vec<_>>(),
    )?;
    d.set_item("reg_loss", r.reg_loss.clone())?;
    d.set_item("lr", r.lr.clone())?;
    Ok(d)
}

fn evaluation_dict<'py>(py: Python<'py>, e: &Evaluation) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let b = e.train.len();
    d.set_item("step", e.step)?;
    d.set_item(
        "train_loss",
        e.train.iter().map(|s| s.loss).collect::<Vec<_>>(),
    )?;
    d.set_item(
        "train_acc",
        e.train.iter().map(|s| s.accuracy()).collect::<Vec<_>>(),
    )?;
    d.set_item(
        "min_margin",
        e.train.iter().map(|s| s.min_margin).collect::<Vec<_>>(),
    )?;
    let test = |f: &dyn Fn(&clockwork::engine::PassStats) -> f64| -> Vec<Option<f64>> {
        (0..b).map(|k| e.test_of(k).map(f)).collect()
    };
    d.set_item("test_loss", test(&|s| s.loss))?;
    d.set_item("test_acc", test(&|s| s.accuracy()))?;
    d.set_item("margin", e.margin.clone())?;
    d.set_item("gamma_star", e.gamma_star.clone())?;
    let ratio: Vec<Option<f64>> = e
        .margin
        .iter()
        .zip(&e.gamma_star)
        .map(|(m, g)| g.map(|g| m / g))
        .collect();
    d.set_item("gamma_ratio", ratio)?;
    d.set_item("reg_loss", e.reg_loss.clone())?;
    d.set_item("lr", e.lr.clone())?;
    Ok(d)
}

/// U, V, W of model `k` (or of every model) as NumPy arrays in the paper orientation.
fn weights_arrays<'py, F: Real + Element>(
    py: Python<'py>,
    t: &mut Trainer<F>,
    model: Option<usize>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let w = t.weights().py(py)?;
    let (b, p, c, m) = (w.batch, w.n_in, w.n_out, w.width);
    match model {
        Some(k) => {
            if k >= b {
                return Err(shape_error(
                    py,
                    "model",
                    format!("an index < {b} (models in the batch)"),
                    k.to_string(),
                ));
            }
            let (u, v, ww) = w.model(k);
            let u = transposed_view(from_vec(py, u.to_vec(), &[p, m])?)?;
            let v = transposed_view(from_vec(py, v.to_vec(), &[p, m])?)?;
            let ww = from_vec(py, ww.to_vec(), &[c, m])?;
            Ok((u, v, ww))
        }
        None => {
            let u = transposed_view(from_vec(py, w.u.clone(), &[b, p, m])?)?;
            let v = transposed_view(from_vec(py, w.v.clone(), &[b, p, m])?)?;
            let ww = from_vec(py, w.w.clone(), &[b, c, m])?;
            Ok((u, v, ww))
        }
    }
}

/// Writes U, V, W (paper orientation) of model `k` into the trainer's parameters,
/// keeping the step count and the optimizer's state.
fn set_weights<F: Real + Element + DtypeName>(
    py: Python<'_>,
    t: &mut Trainer<F>,
    u: &Bound<'_, PyAny>,
    v: &Bound<'_, PyAny>,
    w: &Bound<'_, PyAny>,
    k: usize,
) -> PyResult<()> {
    let config = t.config().clone();
    let spec = config.model_spec();
    if spec.embed_dim.is_some() {
        return Err(config_error(
            py,
            "model.embed_dim",
            spec.embed_dim.unwrap_or(0),
            "set_weights writes U, V, W, but this model's parameters are the factors of a factored embedding; use load_state for them",
        ));
    }
    if k >= config.models {
        return Err(shape_error(
            py,
            "model",
            format!("an index < {} (models in the batch)", config.models),
            k.to_string(),
        ));
    }
    let (p, m, c) = (spec.n_in, spec.width, spec.n_out);
    let get = |x: &Bound<'_, PyAny>, what: &str, rows: usize, cols: usize, transpose: bool| {
        let (data, shape) = read::<F>(py, x, what, &[2], transpose)?;
        if shape != [rows, cols] {
            return Err(shape_error(
                py,
                what,
                format!("{rows}×{cols}"),
                format!("{}×{}", shape[0], shape[1]),
            ));
        }
        if let Some(bad) = data.iter().find(|x| !x.f64().is_finite()) {
            return Err(config_error(py, what, bad.f64(), "weights must be finite"));
        }
        Ok(data)
    };
    let u = get(u, "u", m, p, true)?;
    let v = get(v, "v", m, p, true)?;
    let w = get(w, "w", c, m, false)?;
    if spec.tied && u != v {
        return Err(config_error(
            py,
            "model.tied",
            "true",
            "this model ties v to u, but the v given differs from u",
        ));
    }
    let mut state = t.state().py(py)?;
    let n = spec.n_params();
    let params = &mut state.params[k * n..(k + 1) * n];
    params[..p * m].copy_from_slice(&u);
    let rest = &mut params[p * m..];
    let rest = if spec.tied {
        rest
    } else {
        rest[..p * m].copy_from_slice(&v);
        &mut rest[p * m..]
    };
    rest[..c * m].copy_from_slice(&w);
    t.restore(state).py(py)
}

fn state_dict<'py, F: Real + Element>(
    py: Python<'py>,
    s: TrainerState<F>,
    b: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("step", s.step)?;
    let n = s.params.len() / b.max(1);
    for (name, v) in [
        ("params", s.params),
        ("adam_m", s.adam_m),
        ("adam_v", s.adam_v),
        ("grokfast_ema", s.grokfast_ema),
    ] {
        let shape = if v.is_empty() {
            vec![0]
        } else {
            vec![b, v.len() / b]
        };
        d.set_item(name, from_vec(py, v, &shape)?)?;
    }
    // The Grokfast-MA window: B × len × n_params (len ≤ window gradients, oldest first).
    let w = s.grokfast_window;
    let shape = if w.is_empty() {
        vec![0]
    } else {
        vec![b, w.len() / (b * n), n]
    };
    d.set_item("grokfast_window", from_vec(py, w, &shape)?)?;
    Ok(d)
}

fn state_from_dict<F: Real + Element + DtypeName>(
    py: Python<'_>,
    d: &Bound<'_, PyAny>,
) -> PyResult<TrainerState<F>> {
    let item = |name: &str| -> PyResult<Bound<'_, PyAny>> {
        d.get_item(name).map_err(|_| {
            PyKeyError::new_err(format!(
                "the state has no '{name}' (a state is the dict Trainer.state() returns: step, params, adam_m, adam_v, grokfast_ema, grokfast_window)"
            ))
        })
    };
    let step: u64 = item("step")?.extract().map_err(|_| {
        config_error(
            py,
            "step",
            "?",
            "a state's step must be a non-negative integer",
        )
    })?;
    let buf = |name: &str| -> PyResult<Vec<F>> {
        Ok(read::<F>(py, &item(name)?, name, &[1, 2], false)?.0)
    };
    Ok(TrainerState {
        step,
        params: buf("params")?,
        adam_m: buf("adam_m")?,
        adam_v: buf("adam_v")?,
        grokfast_ema: buf("grokfast_ema")?,
        // Optional, so a state saved before the MA filter existed still loads.
        grokfast_window: match d.get_item("grokfast_window") {
            Ok(x) => read::<F>(py, &x, "grokfast_window", &[1, 3], false)?.0,
            Err(_) => Vec::new(),
        },
    })
}

impl PyTrainer {
    fn on_owner_thread(&self) -> PyResult<()> {
        if std::thread::current().id() == self.owner {
            Ok(())
        } else {
            Err(pyo3::exceptions::PyRuntimeError::new_err(
                "this Trainer belongs to the thread that made it; build one in this thread \
                 (e.g. Trainer.from_checkpoint of a checkpoint that trainer saved)",
            ))
        }
    }
    fn inner(&self) -> PyResult<&Inner> {
        self.on_owner_thread()?;
        Ok(&self.inner)
    }
    fn inner_mut(&mut self) -> PyResult<&mut Inner> {
        self.on_owner_thread()?;
        Ok(&mut self.inner)
    }

    fn check_model(&self, py: Python<'_>, model: Option<i64>) -> PyResult<Option<usize>> {
        match model {
            None => Ok(None),
            Some(k) if k >= 0 && (k as usize) < self.config.models => Ok(Some(k as usize)),
            Some(k) => Err(shape_error(
                py,
                "model",
                format!(
                    "an index in 0..{} (models in the batch)",
                    self.config.models
                ),
                k.to_string(),
            )),
        }
    }
}

#[pymethods]
impl PyTrainer {
    /// Builds the trainer for ``config`` (validated) on its device.
    #[new]
    fn new(py: Python<'_>, config: &PyConfig) -> PyResult<PyTrainer> {
        Ok(PyTrainer {
            inner: build(py, &config.config)?,
            config: config.config.clone(),
            owner: std::thread::current().id(),
        })
    }

    /// A trainer resumed from a checkpoint file (``RUN/checkpoints/step-*.safetensors``
    /// or one written by :meth:`save`): its embedded config, parameters, optimizer state
    /// and step, checksums verified. ``device`` (e.g. ``"cpu"``) overrides the device
    /// the run trained on.
    #[staticmethod]
    #[pyo3(signature = (path, device=None))]
    fn from_checkpoint(py: Python<'_>, path: PathBuf, device: Option<&str>) -> PyResult<PyTrainer> {
        let ckpt = checkpoint::Checkpoint::load(&path).py(py)?;
        let mut config = ckpt.config;
        if let Some(d) = device {
            config.device = d.parse().py(py)?;
        }
        let mut inner = build(py, &config)?;
        match &mut inner {
            Inner::F32(t) => {
                let s = checkpoint::load_state::<f32>(&path, &config).py(py)?;
                t.restore(s).py(py)?
            }
            Inner::F64(t) => {
                let s = checkpoint::load_state::<f64>(&path, &config).py(py)?;
                t.restore(s).py(py)?
            }
        }
        Ok(PyTrainer {
            inner,
            config,
            owner: std::thread::current().id(),
        })
    }

    /// Takes ``n`` full-batch steps of every model (GIL released) and returns the last
    /// step's report: ``{"step", "train_loss", "train_acc", "reg_loss", "lr"}``, lists
    /// with one entry per model, measured before that step's update.
    ///
    /// Ctrl-C raises KeyboardInterrupt within ~50 ms; the steps taken before it are kept
    /// (``steps_done`` says how many). A NaN/inf loss raises DivergedError with the
    /// parameters of the last finite step kept.
    #[pyo3(signature = (n=1))]
    fn step(&mut self, py: Python<'_>, n: i64) -> PyResult<Py<PyAny>> {
        if n < 1 {
            return Err(config_error(
                py,
                "n",
                n,
                "the number of steps must be at least 1",
            ));
        }
        let mut left = n as u64;
        let mut last = None;
        let trainer = self.inner_mut()?;
        while left > 0 {
            let inner = OnThisThread(&mut *trainer);
            let (taken, report, result) = py.detach(move || {
                let inner = inner.get();
                dispatch!(inner, t => run_chunk(t, left, CHUNK))
            });
            left -= taken.min(left);
            if report.is_some() {
                last = report;
            }
            result.py(py)?;
            if left > 0 {
                py.check_signals()?;
            }
        }
        let last = last
            .ok_or_else(|| clockwork::Error::Backend("the stepper took no step".into()))
            .py(py)?;
        Ok(report_dict(py, &last)?.into_any().unbind())
    }

    /// Loss, accuracy, unnormalized and normalized margin (γ), γ* and γ/γ*, regularizer
    /// and learning rate of the current parameters, per model (GIL released). Test
    /// entries are None for a model that trains on the whole table.
    fn evaluate(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let inner = OnThisThread(self.inner_mut()?);
        let e = py.detach(move || {
            let inner = inner.get();
            dispatch!(inner, t => t.evaluate())
        });
        Ok(evaluation_dict(py, &e.py(py)?)?.into_any().unbind())
    }

    /// The effective weights as NumPy arrays ``(U, V, W)`` in the paper orientation, in
    /// the trainer's dtype: ``U``, ``V`` are ``m × p`` (row i is neuron i's embedding),
    /// ``W`` is ``p × m`` (column i is neuron i's output weights). ``model=None`` gives
    /// every model: ``(B, m, p)``, ``(B, m, p)``, ``(B, p, m)``.
    ///
    /// Copies once (the arrays are new and do not change as the trainer steps); ``U`` and
    /// ``V`` are transposed views of that copy (``U.T`` is C-contiguous).
    #[pyo3(signature = (model=Some(0)))]
    fn weights(&mut self, py: Python<'_>, model: Option<i64>) -> PyResult<Py<PyAny>> {
        let model = self.check_model(py, model)?;
        let (u, v, w) = dispatch!(self.inner_mut()?, t => weights_arrays(py, t, model)?);
        Ok((u, v, w).into_pyobject(py)?.into_any().unbind())
    }

    /// Replaces model ``model``'s U (``m × p``), V (``m × p``) and W (``p × m``): any
    /// real arrays (NumPy, lists, CPU tensors), converted to the trainer's dtype. The
    /// step count and optimizer state are kept. Unfactored models only (factored ones:
    /// :meth:`load_state`); for a tied model ``v`` must equal ``u``.
    #[pyo3(signature = (u, v, w, model=0))]
    fn set_weights(
        &mut self,
        py: Python<'_>,
        u: &Bound<'_, PyAny>,
        v: &Bound<'_, PyAny>,
        w: &Bound<'_, PyAny>,
        model: i64,
    ) -> PyResult<()> {
        let k = self.check_model(py, Some(model))?.unwrap_or(0);
        dispatch!(self.inner_mut()?, t => set_weights(py, t, u, v, w, k))
    }

    /// Everything that evolves in training, as a dict of NumPy arrays (copies):
    /// ``step``, ``params`` (``B × n_params``, the trainable parameters in storage
    /// order), ``adam_m``, ``adam_v``, ``grokfast_ema`` (same shape, or empty when not
    /// in use), ``grokfast_window`` (``B × len × n_params``, the Grokfast-MA filter's last
    /// gradients, oldest first, or empty). :meth:`load_state` takes it back.
    fn state(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let b = self.config.models;
        Ok(match self.inner()? {
            Inner::F32(t) => state_dict(py, t.state().py(py)?, b)?,
            Inner::F64(t) => state_dict(py, t.state().py(py)?, b)?,
        }
        .into_any()
        .unbind())
    }

    /// Continues from a state from :meth:`state` (of a trainer with the same config).
    /// Buffer sizes are checked (ShapeError naming the buffer).
    fn load_state(&mut self, py: Python<'_>, state: &Bound<'_, PyAny>) -> PyResult<()> {
        match self.inner_mut()? {
            Inner::F32(t) => t.restore(state_from_dict::<f32>(py, state)?).py(py),
            Inner::F64(t) => t.restore(state_from_dict::<f64>(py, state)?).py(py),
        }
    }

    /// Writes a resumable checkpoint (safetensors, the format of ``RUN/checkpoints``,
    /// checksummed, written atomically): ``Trainer.from_checkpoint`` and ``train
    /// --resume`` read it, ``clockwork.load_checkpoint`` and ``analyze`` too.
    fn save(&mut self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let config = self.config.clone();
        dispatch!(self.inner_mut()?, t => {
            let state = t.state().py(py)?;
            let weights = t.weights().py(py)?;
            checkpoint::save_state(&path, &config, weights, &state).py(py)
        })
    }

    /// Steps taken so far.
    #[getter]
    fn steps_done(&self) -> PyResult<u64> {
        Ok(dispatch!(self.inner()?, t => t.steps_done()))
    }

    /// The config it was built from.
    #[getter]
    fn config(&self) -> PyConfig {
        PyConfig {
            config: self.config.clone(),
        }
    }

    /// γ* per model where the theory gives one (x², a+b, untied, unfactored, all pairs
    /// trained on), else None.
    #[getter]
    fn gamma_star(&self) -> PyResult<Vec<Option<f64>>> {
        Ok(dispatch!(self.inner()?, t => t.gamma_star().to_vec()))
    }

    /// Where the steps run, e.g. ``"cpu (2 threads, avx512)"``.
    fn describe(&self) -> PyResult<String> {
        Ok(dispatch!(self.inner()?, t => t.describe()))
    }

    fn __repr__(&self) -> PyResult<String> {
        Ok(format!(
            "Trainer({}, step {}, on {})",
            crate::config::describe(&self.config),
            self.steps_done()?,
            self.describe()?
        ))
    }
}
