"""Sweeps from Python: the ``sweep`` binary's runner (``Sweep``: a sweep file, TOML text
or dict; ``plan`` = ``--dry-run``; ``run`` = a resumable, shardable run; ``merge_sweeps``
= ``sweep merge``; ``report_sweep`` = ``sweep report``) and its tables read back as
DataFrames.

>>> import clockwork as cw
>>> sw = cw.Sweep.from_dict({
...     "base": {"preset": "explainer", "set": {"train.steps": 500}},
...     "axes": {"optimizer.weight_decay": [0.0, 1.0], "seed": {"seeds": 2}},
... }, name="wd")
>>> sw.plan()["estimated_s"]                  # seconds, timed on this machine
>>> sw.run(out="sweeps/wd")                   # Ctrl-C, then the same call resumes
>>> df = cw.sweep_results("sweeps/wd")        # one row per model (results.csv)
>>> h = cw.sweep_histories("sweeps/wd")       # every evaluation of every model
"""

from __future__ import annotations

import csv as _csv
import json as _json
import os
from typing import Any, Dict, List, Optional, Sequence, Union

from ._clockwork import Sweep, merge_sweeps, report_sweep, sweep_status
from ._clockwork import sweep_table_files as _table_files
from ._tables import _as_table, resolve_as_frame

__all__ = ["Sweep", "sweep_results", "sweep_histories", "sweep_status", "merge_sweeps", "report_sweep"]

_PathLike = Union[str, "os.PathLike[str]"]


def _columns(records: List[Dict[str, Any]], order: Sequence[str]) -> Dict[str, list]:
    """Records → columns in ``order``, then any key a record adds, absent = None."""
    names = list(order)
    seen = set(names)
    for r in records:
        for k in r:
            if k not in seen:
                seen.add(k)
                names.append(k)
    return {n: [r.get(n) for r in records] for n in names}


def _jsonl(path: str) -> List[Dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [_json.loads(line) for line in f if line.strip()]


def sweep_results(sweep_dir: _PathLike, as_frame: Optional[bool] = None) -> Any:
    """The per-model results table of a finished sweep, shard or merged directory: the
    rows and columns of its ``results.csv`` (model, group, batch, each swept key, the
    metrics — final/best accuracies, memorization and grokking steps, losses, margin and
    γ/γ*, frequencies used, sinusoidal share —, ``gamma_star``, ``freqs_used``,
    ``category``), with the values of ``results.jsonl`` (numbers as numbers, absent as
    None/NaN, ``freqs_used`` a list of ints).

    A pandas DataFrame when pandas is installed (``as_frame=None``) or asked for
    (``True``), else a dict of column lists (``False``). An unfinished sweep raises
    ``BadFileError`` saying how many batches are done.
    """
    as_frame = resolve_as_frame(as_frame)
    csv_path, jsonl_path, _ = _table_files(sweep_dir)
    with open(csv_path, encoding="utf-8", newline="") as f:
        header = next(_csv.reader(f))
    return _as_table(_columns(_jsonl(jsonl_path), header), as_frame)


def sweep_histories(sweep_dir: _PathLike, as_frame: Optional[bool] = None) -> Any:
    """Every evaluation of every model of a finished sweep (``histories.jsonl``), one
    row per (model, step) in model then step order, with the fields of a run's
    ``metrics.jsonl`` (``model`` is the sweep's model id). A DataFrame or a dict of
    column lists, as :func:`sweep_results`."""
    as_frame = resolve_as_frame(as_frame)
    _, _, histories_path = _table_files(sweep_dir)
    return _as_table(_columns(_jsonl(histories_path), ["model", "step"]), as_frame)
