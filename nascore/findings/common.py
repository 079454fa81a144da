"""Helpers shared by the chapter modules: model lists, group comparisons, result folders."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from ..models import family
from ..provenance import REPO_ROOT
from ..profiles import Profile
from ..report import compare_groups

GROUP_COLOURS = {"nas": "tab:orange", "manual": "tab:blue", "mitigation": "tab:green"}


def results_dir(profile: Profile | str, chapter: str) -> Path:
    """``<repo>/results/<profile>/<chapter>/`` (``results/smoke`` is git-ignored)."""
    name = profile if isinstance(profile, str) else profile.name
    path = REPO_ROOT / "results" / name / chapter
    path.mkdir(parents=True, exist_ok=True)
    return path


def per_model(df: pd.DataFrame, value: str, by: Iterable[str] = ("model",)) -> pd.DataFrame:
    """Average ``value`` over seeds: one row per model (the unit of the NAS-vs-manual tests)."""
    by = list(by)
    out = df.groupby(by, as_index=False)[value].mean()
    out["family"] = out["model"].map(family)
    return out


def nas_vs_manual(df: pd.DataFrame, value: str, claim: str, seed: int = 0, **kw) -> dict:
    """Bootstrap CI of mean(NAS) − mean(manual) over models, permutation p-value, verdict.

    ``df`` has one row per (model, seed); mitigation models are excluded from both groups.
    """
    pm = per_model(df, value)
    nas = pm.loc[pm.family == "nas", value].to_numpy(float)
    manual = pm.loc[pm.family == "manual", value].to_numpy(float)
    row = compare_groups(claim, nas, manual, seed=seed, **kw)
    row["setting"] = value
    return row


def group_summary(df: pd.DataFrame, value: str) -> pd.DataFrame:
    """Mean, std and count of the per-model ``value`` in each family."""
    pm = per_model(df, value)
    return pm.groupby("family")[value].agg(["mean", "std", "count"])


def finite(values) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    return arr[np.isfinite(arr)]
