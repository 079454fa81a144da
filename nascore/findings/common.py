"""Helpers shared by the chapter modules: model lists, group comparisons, result folders."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from ..models import family
from ..provenance import REPO_ROOT
from ..profiles import Profile
from ..report import add_confounds, compare_families
from ..report.stats import spearman_ci

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


def nas_vs_manual(df: pd.DataFrame, value: str, claim: str | None = None, seed: int = 0, entries=None,
                  **kw) -> dict:
    """NAS − manual verdict row for the registered statistic ``value`` (models as units).

    ``df`` has one row per (model, seed); mitigation models are left out of both groups. The
    confound columns (``params``, ``clean_acc``, ``train_loss``) are merged from the zoo
    ``entries`` when given and missing from ``df``. ``claim`` defaults to the statistic's own
    claim; other keywords go to :func:`nascore.report.compare_families` (e.g. ``confounds=()``,
    ``exploratory=True``, ``profile``, ``setting``).
    """
    if entries is not None:
        df = add_confounds(df, entries)
    return compare_families(df, value, claim, seed=seed, **kw)


def spearman_row(x, y, seed: int) -> dict:
    """Spearman ρ with CI and p; all NaN (with a note) when either variable is constant."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"rho": np.nan, "low": np.nan, "high": np.nan, "p_value": np.nan, "n": len(x),
                "note": "undefined: fewer than 3 models or a constant variable"}
    r = spearman_ci(x, y, n_boot=2000, seed=seed)
    return {"rho": r.rho, "low": r.low, "high": r.high, "p_value": r.p_value, "n": r.n, "note": ""}


def plot_family_lines(df: pd.DataFrame, x: str, value: str, ax, families=("manual", "nas")):
    """Thin line per model (mean over seeds), family mean with a 95 % bootstrap band over models."""
    from ..report.stats import mean_band

    for fam in families:
        sub = df[df.family == fam]
        if sub.empty:
            continue
        wide = sub.groupby(["model", x])[value].mean().unstack(x)
        for _, row in wide.iterrows():
            ax.plot(wide.columns, row.values, color=GROUP_COLOURS[fam], alpha=0.25, lw=0.8)
        band = mean_band(wide.to_numpy())
        ax.plot(wide.columns, band.mean, color=GROUP_COLOURS[fam], lw=2.2, label=f"{fam} mean (n={band.n})")
        ax.fill_between(wide.columns, band.low, band.high, color=GROUP_COLOURS[fam], alpha=0.2)
    ax.set_xlabel(x)
    ax.set_ylabel(value)
    ax.legend(fontsize=8)
    return ax


def plot_model_bars(df: pd.DataFrame, value: str, ax, label: str | None = None):
    """One bar per model (mean over seeds), coloured by family, sorted by value."""
    pm = per_model(df, value).sort_values(value)
    ax.bar(pm.model, pm[value], color=[GROUP_COLOURS[f] for f in pm.family])
    ax.set_ylabel(label or value)
    ax.tick_params(axis="x", rotation=70, labelsize=8)
    from matplotlib.patches import Patch
    ax.legend(handles=[Patch(color=GROUP_COLOURS[f], label=f) for f in pm.family.unique()], fontsize=8)
    return ax


def plot_scatter(df: pd.DataFrame, x: str, y: str, ax):
    """Per-model scatter (mean over seeds), coloured by family, labelled with the model name."""
    pm = df.groupby("model", as_index=False).mean(numeric_only=True)
    pm["family"] = pm.model.map(family)
    for fam, g in pm.groupby("family"):
        ax.scatter(g[x], g[y], color=GROUP_COLOURS[fam], label=fam)
        for _, r in g.iterrows():
            ax.annotate(r.model, (r[x], r[y]), fontsize=6, xytext=(2, 2), textcoords="offset points")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.legend(fontsize=8)
    return ax
