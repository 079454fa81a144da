"""Result tables on disk: ``<stem>.csv`` (the tidy rows) + ``<stem>.json`` (provenance, columns).

Every table carries provenance (GUIDE.md, "Interfaces": git commit, profile, data source, torch
version, device, seed, wall time) — build it with ``nascore.provenance.collect(device, **extra)``.
Both files are written atomically (``nascore.io``); the JSON sidecar is written last and records
the CSV's SHA-256, so :func:`load_results` detects a CSV/JSON pair that does not belong together
(e.g. an interrupted save).
"""
from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Mapping

import pandas as pd

from nascore.io import atomic_write_json, atomic_write_text

SCHEMA_VERSION = 1


def _paths(path_stem: str | os.PathLike) -> tuple[Path, Path]:
    stem = str(path_stem)
    for suffix in (".csv", ".json"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    # Append (not with_suffix): stems such as "pgd_eps0.03" keep their dots.
    return Path(stem + ".csv"), Path(stem + ".json")


def save_results(df: pd.DataFrame, path_stem: str | os.PathLike, provenance: Mapping,
                 columns: Mapping[str, str] | None = None) -> tuple[Path, Path]:
    """Write ``df`` to ``<stem>.csv`` and its metadata to ``<stem>.json``, atomically.

    Parameters
    ----------
    df : tidy table, one row per (model, seed, setting). A non-default index is written as
        columns and restored by :func:`load_results`.
    path_stem : path without suffix (a trailing ``.csv``/``.json`` is stripped).
    provenance : dict from ``nascore.provenance.collect(...)`` plus profile/seed/data source/wall
        time; stored verbatim (non-JSON values via ``str``).
    columns : optional ``{column: description}`` (units!); every column gets an entry in the
        JSON, with its dtype, described or not.

    Returns the two paths written.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    if not isinstance(provenance, Mapping):
        raise TypeError(f"provenance must be a dict (nascore.provenance.collect), got {type(provenance).__name__}")
    columns = dict(columns or {})
    unknown = sorted(set(columns) - set(map(str, df.columns)) - set(map(str, df.index.names)))
    if unknown:
        raise ValueError(f"descriptions for unknown columns {unknown}; columns: {list(map(str, df.columns))}")

    index_cols: list[str] = []
    table = df
    if not (isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1
            and df.index.name is None):
        index_cols = [str(n) if n is not None else f"level_{i}" if df.index.nlevels > 1 else "index"
                      for i, n in enumerate(df.index.names)]
        table = df.copy()
        table.index.names = index_cols
        table = table.reset_index()
    if len(set(map(str, table.columns))) != table.shape[1]:
        raise ValueError(f"duplicate column names: {list(table.columns)}")

    buf = io.StringIO()
    table.to_csv(buf, index=False, lineterminator="\n")
    text = buf.getvalue()
    csv_path, json_path = _paths(path_stem)
    atomic_write_text(csv_path, text)
    meta = {
        "schema_version": SCHEMA_VERSION,
        "csv": csv_path.name,
        "csv_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "n_rows": int(table.shape[0]),
        "index": index_cols,
        "columns": {str(c): {"dtype": str(table[c].dtype), "description": columns.get(str(c), "")}
                    for c in table.columns},
        "provenance": dict(provenance),
    }
    atomic_write_json(json_path, meta)
    return csv_path, json_path


def load_metadata(path_stem: str | os.PathLike) -> dict:
    """The JSON sidecar of a saved table (provenance, column dtypes/descriptions, checksum)."""
    import json

    _, json_path = _paths(path_stem)
    return json.loads(json_path.read_text(encoding="utf-8"))


def load_results(path_stem: str | os.PathLike, verify: bool = True) -> pd.DataFrame:
    """Read a table written by :func:`save_results`.

    Restores the index and the bool/int/float/string dtypes recorded in the JSON; the metadata
    is attached as ``df.attrs["provenance"]`` and ``df.attrs["columns"]``. With ``verify``, a
    CSV whose SHA-256 differs from the one recorded raises ``ValueError``.
    """
    csv_path, json_path = _paths(path_stem)
    if not csv_path.exists() or not json_path.exists():
        raise FileNotFoundError(f"need both {csv_path} and {json_path}")
    meta = load_metadata(path_stem)
    raw = csv_path.read_bytes()
    if verify and hashlib.sha256(raw).hexdigest() != meta.get("csv_sha256"):
        raise ValueError(f"{csv_path} does not match the checksum in {json_path} "
                         f"(modified after saving, or an interrupted save)")
    # Exact float round trip: pandas >= 3 does it by default (and deprecates the option).
    kw = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
    df = pd.read_csv(io.BytesIO(raw), **kw)
    for col, info in meta.get("columns", {}).items():
        if col not in df.columns:
            continue
        dtype = info.get("dtype", "")
        try:
            if dtype == "bool" or (dtype.startswith(("int", "uint")) and not df[col].isna().any()):
                df[col] = df[col].astype(dtype)
            elif dtype.startswith("float"):
                df[col] = df[col].astype(dtype)
            elif dtype in ("object", "string", "str") and df[col].dtype.kind in "iuf" and not df[col].isna().any():
                df[col] = df[col].astype(str)
        except (TypeError, ValueError):
            pass  # leave pandas' inferred dtype rather than fail on an odd column
    if meta.get("index"):
        df = df.set_index(meta["index"])
        if df.index.names == ["index"]:
            df.index.name = None
    df.attrs["provenance"] = meta.get("provenance", {})
    df.attrs["columns"] = meta.get("columns", {})
    return df
