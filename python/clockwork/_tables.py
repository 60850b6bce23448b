"""Tables for Python: a dict of column lists, or a pandas DataFrame when pandas is
installed or asked for (``as_frame``); shared by ``analyze`` and the sweep readers."""

from __future__ import annotations

import csv as _csv
import io as _io
from typing import Any, Dict, Optional


def _pandas():
    try:
        import pandas
    except ImportError:
        return None
    return pandas


def _as_table(columns: Dict[str, list], as_frame: bool) -> Any:
    if as_frame:
        pd = _pandas()
        if pd is None:
            raise ImportError("as_frame=True needs pandas (pip install pandas)")
        return pd.DataFrame(columns)
    return columns


def _parse_cell(s: str) -> Any:
    if s == "":
        return None
    if s in ("true", "false"):
        return s == "true"
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        return s


def _csv_table(text: str, as_frame: bool) -> Any:
    if as_frame:
        return _pandas().read_csv(_io.StringIO(text))
    rows = list(_csv.reader(_io.StringIO(text)))
    header, body = rows[0], rows[1:]
    return {name: [_parse_cell(r[j]) for r in body] for j, name in enumerate(header)}


def resolve_as_frame(as_frame: Optional[bool]) -> bool:
    """``None``: a DataFrame when pandas is installed; ``True`` insists on one."""
    if as_frame is None:
        return _pandas() is not None
    if as_frame and _pandas() is None:
        raise ImportError("as_frame=True needs pandas (pip install pandas)")
    return bool(as_frame)
