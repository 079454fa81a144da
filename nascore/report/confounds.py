"""Confounds of a NAS − manual difference: size, accuracy and fit of each model.

A NAS − manual difference may come from something other than the architecture family: bigger
networks, better trained ones, or ones that fit their training data more closely. Every family
comparison therefore also reports the difference **adjusted** for these, by ordinary least
squares over the same units (models, seed-averaged; ``statsmodels`` OLS)::

    statistic ~ 1 + NAS + log10(parameters) + clean accuracy + final training loss

The adjusted estimate is the coefficient of the NAS indicator, with its t-based CI and p-value.
With few models the covariates are kept honest: each confound is also fitted **alone**
(``statistic ~ 1 + NAS + confound``), and a fit is reported only if it leaves at least
:data:`MIN_RESIDUAL_DF` residual degrees of freedom. The variance inflation factor of the NAS
indicator says when it is nearly collinear with the confounds (then the data cannot separate
"NAS" from, e.g., "small").

:func:`entry_confounds` reads the three confounds of one trained zoo entry, :func:`model_confounds`
tabulates them for many.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Confounds of every NAS − manual comparison (column names; ``log10_params`` is derived from ``params``).
CONFOUNDS: tuple[str, ...] = ("log10_params", "clean_acc", "train_loss")
#: Words for the confounds in verdict text.
CONFOUND_WORDS = {"log10_params": "log10 parameters", "clean_acc": "clean accuracy",
                  "train_loss": "final training loss", "gen_gap": "train–test accuracy gap"}
#: A regression is reported only with at least this many residual degrees of freedom.
MIN_RESIDUAL_DF = 5
#: Variance inflation factor of the NAS indicator above which the text warns of collinearity.
VIF_WARN = 10.0


@dataclass(frozen=True)
class Adjusted:
    """The NAS coefficient of one OLS fit: estimate, CI, p, covariates, residual df, VIF."""

    estimate: float
    low: float
    high: float
    p_value: float
    covariates: tuple[str, ...]
    n: int
    df_resid: int
    vif: float

    @property
    def covariate_words(self) -> str:
        return ", ".join(CONFOUND_WORDS.get(c, c) for c in self.covariates)


def entry_confounds(entry) -> dict:
    """The three confounds of one trained zoo entry (a :class:`nascore.zoo.TrainedModel`):
    ``{"params": count, "clean_acc": % (final epoch), "train_loss": mean training loss of the final
    epoch}``. Reads the record's ``metrics`` (``params``, ``final_train_loss``), else the model's
    parameters and the record's last history row. Every chapter's per-model table takes its
    confound columns from here."""
    record = entry.record
    metrics = record.get("metrics", {})
    history = record.get("history") or []
    loss = metrics.get("final_train_loss", history[-1].get("train_loss") if history else None)
    if loss is None:
        raise ValueError(f"zoo entry {record.get('key', '?')} has no final training loss in its record")
    params = metrics.get("params") or sum(p.numel() for p in entry.model.parameters())
    return {"params": int(params), "clean_acc": 100 * float(metrics["test_acc"]), "train_loss": float(loss)}


def model_confounds(entries) -> pd.DataFrame:
    """One row per (model, seed) with ``model``, ``seed`` and the :func:`entry_confounds` of
    trained zoo entries (``{(model, seed): TrainedModel}``, as :func:`nascore.zoo.train_many`
    returns)."""
    return pd.DataFrame([{"model": name, "seed": seed, **entry_confounds(entry)}
                         for (name, seed), entry in entries.items()])


def add_confounds(df: pd.DataFrame, entries) -> pd.DataFrame:
    """``df`` (one row per model, seed) with the confound columns of :func:`model_confounds`
    merged in; columns already present in ``df`` are kept, not overwritten."""
    conf = model_confounds(entries)
    keep = ["model", "seed"] + [c for c in ("params", "clean_acc", "train_loss") if c not in df.columns]
    return df.merge(conf[keep], on=["model", "seed"], how="left", validate="many_to_one")


def confound_columns(confounds) -> list[str]:
    """The raw columns a chapter's table needs for ``confounds``."""
    return ["params" if c == "log10_params" else c for c in confounds]


def confound_values(units: pd.DataFrame, confounds) -> pd.DataFrame:
    """Per-unit confound values (``log10_params`` computed from ``params``)."""
    out = pd.DataFrame(index=units.index)
    for c in confounds:
        if c == "log10_params":
            p = units["params"].astype(float)
            if (p <= 0).any():
                raise ValueError("params must be positive to take log10")
            out[c] = np.log10(p)
        else:
            out[c] = units[c].astype(float)
    return out


def _fit(y: np.ndarray, nas: np.ndarray, covars: pd.DataFrame, ci: float) -> Adjusted | None:
    import statsmodels.api as sm

    n = len(y)
    cols = [c for c in covars.columns if np.ptp(covars[c].to_numpy(float)) > 0]
    if n - 2 - len(cols) < MIN_RESIDUAL_DF:
        return None
    X = pd.DataFrame({"const": 1.0, "nas": nas.astype(float)}, index=covars.index)
    for c in cols:
        X[c] = covars[c].to_numpy(float)
    if np.linalg.matrix_rank(X.to_numpy()) < X.shape[1]:
        return Adjusted(math.nan, math.nan, math.nan, math.nan, tuple(cols), n, n - X.shape[1], math.inf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sm.OLS(y, X).fit()
        low, high = fit.conf_int(alpha=1 - ci).loc["nas"]
    vif = 1.0
    if cols:
        aux = sm.OLS(X["nas"], X.drop(columns="nas")).fit()
        vif = math.inf if aux.rsquared >= 1 else 1.0 / (1.0 - aux.rsquared)
    return Adjusted(float(fit.params["nas"]), float(low), float(high), float(fit.pvalues["nas"]), tuple(cols),
                    n, int(fit.df_resid), float(vif))


def adjust(y, nas, covars: pd.DataFrame, ci: float = 0.95) -> dict[str, Adjusted | None]:
    """OLS adjustments of a family difference: ``{"joint": fit with all confounds,
    <confound>: fit with that confound alone}``; ``None`` where too few residual df remain.

    ``y``: per-unit statistic (already on its comparison scale), ``nas``: 1 for NAS units, 0 for
    manual ones, ``covars``: per-unit confounds (columns = confound names).
    """
    y = np.asarray(y, float)
    nas = np.asarray(nas, float)
    out: dict[str, Adjusted | None] = {"joint": _fit(y, nas, covars, ci) if covars.shape[1] else None}
    for c in covars.columns:
        out[c] = _fit(y, nas, covars[[c]], ci)
    return out


def pooled_seed_sd(df: pd.DataFrame, value: str) -> tuple[float, int]:
    """Pooled within-architecture standard deviation of ``value`` across seeds, and the number
    of architectures with ≥ 2 seeds it is pooled over (``(nan, 0)`` if none)."""
    g = df.groupby("model")[value]
    counts = g.count()
    multi = counts[counts >= 2].index
    if len(multi) == 0:
        return math.nan, 0
    var = g.var(ddof=1).loc[multi]
    dof = counts.loc[multi] - 1
    return float(np.sqrt((var * dof).sum() / dof.sum())), int(len(multi))
