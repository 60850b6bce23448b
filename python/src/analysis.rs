//! The analysis as functions on arrays and on run directories: spectra, dominant
//! frequencies, phases, margins and γ*, the exact construction, checkpoints, and the
//! whole-run analysis (summary and tables) of `analyze`.
//!
//! Weights come in the paper orientation (`U`, `V`: `m × p`, `W`: `p × m`), one model at
//! a time, and are copied once into the engine's f64 layout. Everything heavy runs with
//! the GIL released.

use crate::arrays::{from_vec, read, transposed_view};
use crate::config::PyConfig;
use crate::errors::{config_error, shape_error, IntoPyResult};
use crate::values;
use clockwork::analysis::construct as construction;
use clockwork::analysis::fourier::{self, FourierPlan, ModelSpectra, Part};
use clockwork::analysis::margin as margins;
use clockwork::analysis::{outdir, pipeline, summary, tables};
use clockwork::checkpoint;
use clockwork::engine;
use clockwork::kinds::{Device, Precision};
use clockwork::model::{Activation, ModelSpec, Weights};
use clockwork::task::{Op, Task};
use clockwork::theory;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;

/// One model's weights from `U` (`m × p`), `V` (`m × p`), `W` (`n_out × m`).
pub fn weights_from(
    py: Python<'_>,
    u: &Bound<'_, PyAny>,
    v: &Bound<'_, PyAny>,
    w: &Bound<'_, PyAny>,
) -> PyResult<Weights<f64>> {
    let (u, su) = read::<f64>(py, u, "u", &[2], true)?;
    let (v, sv) = read::<f64>(py, v, "v", &[2], true)?;
    let (w, sw) = read::<f64>(py, w, "w", &[2], false)?;
    let (m, p) = (su[0], su[1]);
    if m == 0 || p == 0 {
        return Err(shape_error(
            py,
            "u",
            "m × p with m, p ≥ 1".into(),
            format!("{m}×{p}"),
        ));
    }
    if sv != su {
        return Err(shape_error(
            py,
            "v",
            format!("{m}×{p} (like u)"),
            format!("{}×{}", sv[0], sv[1]),
        ));
    }
    if sw[1] != m {
        return Err(shape_error(
            py,
            "w",
            format!("n_out×{m} (m = u's rows)"),
            format!("{}×{}", sw[0], sw[1]),
        ));
    }
    if let Some(bad) = u.iter().chain(&v).chain(&w).find(|x| !x.is_finite()) {
        return Err(config_error(py, "weights", bad, "weights must be finite"));
    }
    Ok(Weights {
        batch: 1,
        n_in: p,
        n_out: sw[0],
        width: m,
        u,
        v,
        w,
    })
}

fn model_spectra(py: Python<'_>, weights: Weights<f64>) -> PyResult<ModelSpectra> {
    py.detach(move || {
        let plan = FourierPlan::new(weights.n_in)?;
        fourier::spectra(&plan, &weights, 0)
    })
    .py(py)
}

fn check_threshold(py: Python<'_>, threshold: f64) -> PyResult<()> {
    if !(threshold > 0.0 && threshold <= 1.0) {
        return Err(config_error(
            py,
            "threshold",
            threshold,
            "must be in (0, 1]",
        ));
    }
    Ok(())
}

/// The spectra of one model's weights and its neurons' features at `threshold`.
fn features_of(
    py: Python<'_>,
    u: &Bound<'_, PyAny>,
    v: &Bound<'_, PyAny>,
    w: &Bound<'_, PyAny>,
    threshold: f64,
) -> PyResult<(ModelSpectra, Vec<summary::NeuronFeatures>)> {
    check_threshold(py, threshold)?;
    let s = model_spectra(py, weights_from(py, u, v, w)?)?;
    let f = summary::neuron_features(&s, threshold);
    Ok((s, f))
}

/// Fourier spectra of every neuron over Z_p: ``{"power", "phase"}``, each an array of
/// shape ``(m, 3, ⌊p/2⌋+1)`` (axis 1: u, v, w; axis 2: frequency k = 0..⌊p/2⌋), with
/// ``p`` and ``n_freq``. Power of k < p/2 combines k and p−k, so it sums to ‖x‖²;
/// phase θ_k = arg X_k, so ``x[a] = A·cos(2πka/p + θ)`` has phase θ.
#[pyfunction]
pub fn spectra(
    py: Python<'_>,
    u: &Bound<'_, PyAny>,
    v: &Bound<'_, PyAny>,
    w: &Bound<'_, PyAny>,
) -> PyResult<Py<PyAny>> {
    let s = model_spectra(py, weights_from(py, u, v, w)?)?;
    let (m, nf) = (s.width, s.n_freq);
    let mut power = Vec::with_capacity(m * 3 * nf);
    let mut phase = Vec::with_capacity(m * 3 * nf);
    for i in 0..m {
        for part in Part::ALL {
            power.extend_from_slice(s.power(i, part));
            phase.extend(s.coef(i, part).iter().map(|c| c.im.atan2(c.re)));
        }
    }
    let d = PyDict::new(py);
    d.set_item("power", from_vec(py, power, &[m, 3, nf])?)?;
    d.set_item("phase", from_vec(py, phase, &[m, 3, nf])?)?;
    d.set_item("p", s.n)?;
    d.set_item("n_freq", nf)?;
    Ok(d.into_any().unbind())
}

/// Per-neuron Fourier features as columns (one entry per neuron): ``freq`` (dominant
/// k ≥ 1 of the combined u+v+w power), ``fraction``, ``min_fraction``, each vector's own
/// ``freq_u/v/w`` and ``fraction_u/v/w``, ``shared_freq``, the phases ``theta_u/v/w`` at
/// ``freq``, ``residual`` = θu+θv−θw, ``sq_norm``, ``ipr``, and ``sinusoidal``
/// (min_fraction ≥ threshold).
#[pyfunction]
#[pyo3(signature = (u, v, w, threshold=summary::DEFAULT_THRESHOLD))]
pub fn neuron_features(
    py: Python<'_>,
    u: &Bound<'_, PyAny>,
    v: &Bound<'_, PyAny>,
    w: &Bound<'_, PyAny>,
    threshold: f64,
) -> PyResult<Py<PyAny>> {
    let (_, features) = features_of(py, u, v, w, threshold)?;
    // Rows → columns (a dict of lists, what pandas.DataFrame takes).
    let rows = match serde_json::to_value(&features) {
        Ok(serde_json::Value::Array(rows)) => rows,
        _ => Vec::new(),
    };
    let mut columns: Vec<(String, Vec<serde_json::Value>)> = Vec::new();
    for row in rows {
        if let serde_json::Value::Object(o) = row {
            for (j, (k, x)) in o.into_iter().enumerate() {
                if columns.len() <= j {
                    columns.push((k, Vec::new()));
                }
                columns[j].1.push(x);
            }
        }
    }
    let d = PyDict::new(py);
    for (k, col) in columns {
        d.set_item(k, values::json_to_py(py, &serde_json::Value::Array(col))?)?;
    }
    Ok(d.into_any().unbind())
}

/// Each neuron's dominant frequency (k ≥ 1 of the combined u+v+w power) and the share
/// of its power there: ``(freq, fraction)``, two arrays of length m.
#[pyfunction]
pub fn dominant_frequencies<'py>(
    py: Python<'py>,
    u: &Bound<'py, PyAny>,
    v: &Bound<'py, PyAny>,
    w: &Bound<'py, PyAny>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let s = model_spectra(py, weights_from(py, u, v, w)?)?;
    let (freq, frac): (Vec<i64>, Vec<f64>) = (0..s.width)
        .map(|i| {
            let (k, f) = fourier::dominant(&s.combined_power(i));
            (k as i64, f)
        })
        .unzip();
    let m = s.width;
    Ok((from_vec(py, freq, &[m])?, from_vec(py, frac, &[m])?))
}

/// Phases ``(theta_u, theta_v, theta_w)`` of every neuron (arrays of length m, radians
/// in (−π, π]) at ``freq``: each neuron's dominant frequency when None, else one
/// frequency for all (an int) or one per neuron (a sequence of m ints).
#[pyfunction]
#[pyo3(signature = (u, v, w, freq=None))]
pub fn phases<'py>(
    py: Python<'py>,
    u: &Bound<'py, PyAny>,
    v: &Bound<'py, PyAny>,
    w: &Bound<'py, PyAny>,
    freq: Option<&Bound<'py, PyAny>>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let s = model_spectra(py, weights_from(py, u, v, w)?)?;
    let m = s.width;
    let freqs: Vec<i64> = match freq {
        None => (0..m)
            .map(|i| fourier::dominant(&s.combined_power(i)).0 as i64)
            .collect(),
        Some(f) => match f.extract::<i64>() {
            Ok(k) => vec![k; m],
            Err(_) => f.extract::<Vec<i64>>().map_err(|_| {
                config_error(
                    py,
                    "freq",
                    f.repr().map(|r| r.to_string()).unwrap_or_default(),
                    "expected None, an int or a sequence of m ints",
                )
            })?,
        },
    };
    if freqs.len() != m {
        return Err(shape_error(
            py,
            "freq",
            format!("{m} frequencies (one per neuron)"),
            format!("{}", freqs.len()),
        ));
    }
    if let Some(&bad) = freqs.iter().find(|&&k| k < 0 || k as usize >= s.n_freq) {
        return Err(config_error(
            py,
            "freq",
            bad,
            &format!("frequencies are 0..={} for p = {}", s.n_freq - 1, s.n),
        ));
    }
    let at = |part: Part| -> Vec<f64> {
        (0..m)
            .map(|i| s.phase(i, part, freqs[i] as usize))
            .collect()
    };
    Ok((
        from_vec(py, at(Part::U), &[m])?,
        from_vec(py, at(Part::V), &[m])?,
        from_vec(py, at(Part::W), &[m])?,
    ))
}

/// What the neurons add up to (``analyze``'s per-model frequency statistics): neurons
/// and sinusoidal neurons per frequency, weight share per frequency, frequencies used and
/// missing, sinusoidal share, phase residuals, mean IPR. A dict.
#[pyfunction]
#[pyo3(signature = (u, v, w, threshold=summary::DEFAULT_THRESHOLD))]
pub fn frequency_summary(
    py: Python<'_>,
    u: &Bound<'_, PyAny>,
    v: &Bound<'_, PyAny>,
    w: &Bound<'_, PyAny>,
    threshold: f64,
) -> PyResult<Py<PyAny>> {
    let (s, f) = features_of(py, u, v, w, threshold)?;
    values::to_py(py, &summary::summarize(&f, s.n / 2, threshold))
}

fn spec_for(weights: &Weights<f64>, activation: Activation) -> ModelSpec {
    ModelSpec {
        n_in: weights.n_in,
        n_out: weights.n_out,
        width: weights.width,
        activation,
        tied: false,
        embed_dim: None,
        init_scale: 1.0,
        dense: false,
    }
}

/// The normalized margin over all p² pairs of ``op`` mod p, computed with the engine's
/// f64 forward pass (GIL released): ``{"min_margin", "norm", "gamma", "gamma_star",
/// "ratio", "accuracy", "loss", "pairs"}``. γ* (and γ/γ*) where the theory gives it
/// (x², addition), else None.
#[pyfunction]
#[pyo3(signature = (u, v, w, op="add", activation="square"))]
pub fn margin(
    py: Python<'_>,
    u: &Bound<'_, PyAny>,
    v: &Bound<'_, PyAny>,
    w: &Bound<'_, PyAny>,
    op: &str,
    activation: &str,
) -> PyResult<Py<PyAny>> {
    let weights = weights_from(py, u, v, w)?;
    let op: Op = op.parse().py(py)?;
    let activation: Activation = activation.parse().py(py)?;
    let report = py
        .detach(move || -> clockwork::Result<margins::MarginReport> {
            let task = Task::modular(op, weights.n_in)?;
            let gamma_star = theory::gamma_star(op, &spec_for(&weights, activation), true);
            let backend = engine::open::<f64>(Device::Cpu, Precision::Fp32, 0)?;
            Ok(margins::margins_with(
                &*backend,
                &weights,
                activation,
                &task.pairs,
                "all",
                gamma_star,
            )?
            .remove(0))
        })
        .py(py)?;
    values::to_py(py, &report)
}

/// γ*, the maximum normalized margin the theory gives (x², addition mod p, untied,
/// unfactored, over all pairs; width ≥ 4(p−1)): ``√(2/27) / (√p·(p−1))``. None where the
/// theory gives none.
#[pyfunction]
#[pyo3(signature = (p, op="add", activation="square"))]
pub fn gamma_star(py: Python<'_>, p: usize, op: &str, activation: &str) -> PyResult<Option<f64>> {
    if p < 2 {
        return Err(config_error(py, "p", p, "the modulus must be at least 2"));
    }
    let op: Op = op.parse().py(py)?;
    let activation: Activation = activation.parse().py(py)?;
    let spec = ModelSpec {
        n_in: p,
        n_out: p,
        width: 4 * (p - 1),
        activation,
        tied: false,
        embed_dim: None,
        init_scale: 1.0,
        dense: false,
    };
    Ok(theory::gamma_star(op, &spec, true))
}

/// The exact max-margin network of addition mod p (odd p ≥ 3, x², width 8(p−1);
/// theory.md §2): ``(U, V, W)`` in f64, ``U``, ``V``: ``m × p``, ``W``: ``p × m``. Its
/// margin is γ* and every neuron is a pure sinusoid with θu + θv = θw.
#[pyfunction]
pub fn construct<'py>(
    py: Python<'py>,
    p: usize,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let w = construction::max_margin(p).py(py)?;
    let (p, m) = (w.n_in, w.width);
    Ok((
        transposed_view(from_vec(py, w.u, &[p, m])?)?,
        transposed_view(from_vec(py, w.v, &[p, m])?)?,
        from_vec(py, w.w, &[p, m])?,
    ))
}

/// Writes the construction as a run directory at ``path`` (config, a step-0
/// checkpoint, metrics and spectra records) that :func:`analyze` reads like a trained
/// run; what ``analyze construct`` writes. An existing non-empty directory is refused
/// unless ``replace``.
#[pyfunction]
#[pyo3(signature = (p, path, replace=false))]
pub fn write_construction(py: Python<'_>, p: usize, path: PathBuf, replace: bool) -> PyResult<()> {
    py.detach(move || -> clockwork::Result<()> {
        outdir::check_new_run_dir(&path, replace)?;
        let backend = engine::open::<f64>(Device::Cpu, Precision::Fp32, 0)?;
        outdir::replace_dir(&path, |tmp| construction::write_run(&*backend, p, tmp))
    })
    .py(py)
}

/// Reads a checkpoint (checksums verified): ``{"step", "dtype", "config", "u", "v",
/// "w"}`` with the weights of every model in f64: ``u``, ``v`` of shape ``(B, m, p)``,
/// ``w`` of shape ``(B, p, m)`` (paper orientation, as the file stores them; ``u`` and
/// ``v`` are transposed views of one copy each).
#[pyfunction]
pub fn load_checkpoint(py: Python<'_>, path: PathBuf) -> PyResult<Py<PyAny>> {
    let c = py
        .detach(move || checkpoint::Checkpoint::load(&path))
        .py(py)?;
    let w = c.weights;
    let (b, p, n_out, m) = (w.batch, w.n_in, w.n_out, w.width);
    let d = PyDict::new(py);
    d.set_item("step", c.step)?;
    d.set_item("dtype", c.dtype)?;
    d.set_item("path", c.path.display().to_string())?;
    d.set_item("config", PyConfig { config: c.config })?;
    d.set_item("u", transposed_view(from_vec(py, w.u, &[b, p, m])?)?)?;
    d.set_item("v", transposed_view(from_vec(py, w.v, &[b, p, m])?)?)?;
    d.set_item("w", from_vec(py, w.w, &[b, n_out, m])?)?;
    Ok(d.into_any().unbind())
}

/// Writes weights as a weights-only checkpoint of ``config``'s run (checksummed,
/// atomic) that :func:`load_checkpoint` and ``analyze`` read (it cannot be resumed
/// from: :meth:`Trainer.save` writes resumable ones). ``u``, ``v``: ``(m, p)`` or
/// ``(B, m, p)``; ``w``: ``(p, m)`` or ``(B, p, m)``; they must fit the config's shape
/// and ``models``.
#[pyfunction]
#[pyo3(signature = (path, config, u, v, w, step=0))]
pub fn save_weights(
    py: Python<'_>,
    path: PathBuf,
    config: &PyConfig,
    u: &Bound<'_, PyAny>,
    v: &Bound<'_, PyAny>,
    w: &Bound<'_, PyAny>,
    step: u64,
) -> PyResult<()> {
    let cfg = config.config.clone();
    let spec = cfg.model_spec();
    let (b, m, p, c) = (cfg.models, spec.width, spec.n_in, spec.n_out);
    let get = |x: &Bound<'_, PyAny>, what: &str, rows: usize, cols: usize, transpose: bool| {
        let (data, shape) = read::<f64>(py, x, what, &[2, 3], transpose)?;
        let want = if shape.len() == 2 {
            vec![rows, cols]
        } else {
            vec![b, rows, cols]
        };
        if shape != want || (shape.len() == 2 && b != 1) {
            return Err(shape_error(
                py,
                what,
                format!(
                    "{rows}×{cols} per model, {b} model(s): shape {:?}",
                    [b, rows, cols]
                ),
                format!("shape {shape:?}"),
            ));
        }
        Ok(data)
    };
    let weights = Weights {
        batch: b,
        n_in: p,
        n_out: c,
        width: m,
        u: get(u, "u", m, p, true)?,
        v: get(v, "v", m, p, true)?,
        w: get(w, "w", c, m, false)?,
    };
    py.detach(move || checkpoint::save_weights(&path, &cfg, step, &weights))
        .py(py)
}

/// The whole analysis of a run directory (``analyze RUN``, without writing anything):
/// ``(summary, tables)``, the summary as a dict (what ``analyze --json`` prints) and the
/// tables as CSV text keyed by file name (``neurons.csv``, ``frequencies.csv``,
/// ``checkpoints.csv``, ``timeline.csv``). ``clockwork.analyze`` wraps it.
#[pyfunction]
#[pyo3(signature = (path, threshold=summary::DEFAULT_THRESHOLD))]
pub fn analyze_run(
    py: Python<'_>,
    path: PathBuf,
    threshold: f64,
) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
    check_threshold(py, threshold)?;
    let (summary, csv) = py
        .detach(move || -> clockwork::Result<_> {
            let backend = engine::open::<f64>(Device::Cpu, Precision::Fp32, 0)?;
            let a = pipeline::analyze(&*backend, &path, &pipeline::Options { threshold })?;
            let csv = vec![
                ("neurons.csv", tables::neurons_csv(&a)?),
                ("frequencies.csv", tables::frequencies_csv(&a)?),
                ("checkpoints.csv", tables::checkpoints_csv(&a)?),
                ("timeline.csv", tables::timeline_csv(&a)?),
            ];
            Ok((a.summary, csv))
        })
        .py(py)?;
    let t = PyDict::new(py);
    for (name, text) in csv {
        t.set_item(name, text)?;
    }
    Ok((values::to_py(py, &summary)?, t.into_any().unbind()))
}
