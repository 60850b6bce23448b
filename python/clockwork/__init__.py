"""clockwork: fast full-batch training and Fourier/margin analysis of small MLPs on
modular arithmetic, from Python.

The model (shared/theory.md §1): neuron i owns u_i, v_i, w_i ∈ R^p and the logits are
``f_c(a, b) = Σ_i w_i[c]·σ(u_i[a] + v_i[b])``; a Trainer runs full-batch gradient
descent over every pair (a, b) of a table such as a+b mod p, on the CPU engine (or
CUDA), with the GIL released.

>>> import clockwork as cw
>>> cfg = cw.Config.preset("default").with_(p=23, width=176, steps=2000)
>>> tr = cw.Trainer(cfg)
>>> tr.step(2000)["train_loss"]            # one entry per model of the batch
>>> ev = tr.evaluate()                      # loss, accuracy, margin γ, γ*, per model
>>> U, V, W = tr.weights()                  # NumPy: U, V are m × p, W is p × m
>>> cw.neuron_features(U, V, W, as_frame=True)   # one row per neuron (pandas)

Sweeps (``clockwork.sweeps``): ``Sweep(path)`` / ``Sweep.from_dict({...})`` checks a
grid of settings as the ``sweep`` binary does; ``plan()`` is its dry run, ``run(out=...)``
trains it resumably, ``sweep_results(out)`` is the per-model table.

Arrays: weights come out as new NumPy arrays (one copy per call; U and V are transposed
views of it) and go in as any real array (NumPy, lists, CPU torch tensors), converted
once. Errors are ``clockwork.Error`` subclasses that are also the matching built-in
(``ConfigError`` is a ``ValueError`` with ``key``, ``value`` and ``reason``).
"""

from __future__ import annotations

from typing import Any, Dict, Union

from . import errors
from ._clockwork import (
    Config,
    Trainer,
    __version__,
    analyze_run as _analyze_run,
    construct,
    dominant_frequencies,
    frequency_summary,
    gamma_star,
    load_checkpoint,
    margin,
    phases,
    save_weights,
    spectra,
    write_construction,
)
from ._clockwork import neuron_features as _neuron_features
from ._tables import _as_table, _csv_table, resolve_as_frame
from .sweeps import Sweep, merge_sweeps, report_sweep, sweep_histories, sweep_results, sweep_status
from .errors import (
    BackendError,
    BadFileError,
    ConfigError,
    DivergedError,
    Error,
    FileIOError,
    ShapeError,
)

__all__ = [
    "Config",
    "Trainer",
    "spectra",
    "neuron_features",
    "dominant_frequencies",
    "phases",
    "frequency_summary",
    "margin",
    "gamma_star",
    "construct",
    "write_construction",
    "load_checkpoint",
    "save_weights",
    "analyze",
    "summary",
    "Sweep",
    "sweep_results",
    "sweep_histories",
    "sweep_status",
    "merge_sweeps",
    "report_sweep",
    "errors",
    "__version__",
] + errors.__all__

def neuron_features(u, v, w, threshold: float = 0.9, as_frame: bool = False) -> Any:
    """Per-neuron Fourier features of one model, as columns (a dict of lists) or, with
    ``as_frame=True``, a pandas DataFrame with one row per neuron.

    Columns: ``neuron``, ``freq`` (dominant frequency k ≥ 1 of the combined u+v+w
    power), ``fraction``, ``min_fraction``, ``freq_u/v/w`` and ``fraction_u/v/w`` (each
    vector alone), ``shared_freq``, the phases ``theta_u/v/w`` at ``freq`` (radians,
    ``x[a] = A·cos(2πka/p + θ)``), ``residual`` (θu + θv − θw wrapped to (−π, π]),
    ``sq_norm``, ``ipr`` and ``sinusoidal`` (every vector keeps ≥ ``threshold`` of its
    power at ``freq``). ``u``, ``v``: ``m × p``; ``w``: ``p × m``.
    """
    return _as_table(_neuron_features(u, v, w, threshold), as_frame)


def analyze(run_dir, threshold: float = 0.9, as_frame: Union[bool, None] = None) -> Dict[str, Any]:
    """Analyzes every checkpoint of a run directory, as ``analyze RUN`` does (nothing
    is written): spectra of every neuron, margins over all pairs, lottery, stages.

    Returns ``{"summary": dict, "neurons": T, "frequencies": T, "checkpoints": T,
    "timeline": T}``: the summary is what ``analyze --json`` prints; each table T has
    the columns of the CSV file ``analyze`` writes, as a pandas DataFrame when pandas is
    installed (``as_frame=None``, the default) or asked for (``True``), else a dict of
    column lists (``False``).
    """
    as_frame = resolve_as_frame(as_frame)
    summary_dict, csv_texts = _analyze_run(run_dir, threshold)
    out: Dict[str, Any] = {"summary": summary_dict}
    for name, text in csv_texts.items():
        out[name.removesuffix(".csv")] = _csv_table(text, as_frame)
    return out


def summary(run_dir, threshold: float = 0.9) -> Dict[str, Any]:
    """The run summary of a run directory as a dict: what ``analyze RUN --json`` prints
    (per model: frequencies used, neurons per frequency, margin and γ/γ*, lottery,
    stages, last metrics)."""
    return _analyze_run(run_dir, threshold)[0]
