"""The confound rule of every family comparison: adjust for size fixed before training, on common support.

A NAS − manual difference may come from something other than the architecture family: at the book's
scales the NAS cells are also much smaller networks than the manual ones. The rule (GUIDE "Honesty
and inference", Methods "The confound rule"):

* **Adjust only for covariates fixed before training** — :data:`COVARIATES`: log10 of the parameter
  count and log10 of the forward FLOPs per image. The size-adjusted difference is the coefficient
  of the NAS indicator in an ordinary least-squares fit over the same units (models,
  seed-averaged; ``statsmodels`` OLS)::

      statistic ~ 1 + NAS + log10(parameters) + log10(FLOPs)

  with its t-based CI and p-value; each covariate is also fitted alone. A fit is reported only with
  at least :data:`MIN_RESIDUAL_DF` residual degrees of freedom; the variance inflation factor of
  the NAS indicator says when the data cannot separate "NAS" from "small".
* **Outcomes of training are mediators, not confounds** — :data:`MEDIATORS` (clean accuracy, final
  training loss; a chapter may add its own, e.g. the train–test gap of membership inference). They
  lie on the path the paper claims (NAS cells converge fast early → ...), so conditioning on them
  removes part of the effect being measured. They are shown as exploratory "mediator" rows and
  never adjusted for.
* **Common support** (:func:`common_support`): a covariate supports the adjustment only if each
  family has at least :data:`MIN_SUPPORT` models inside the range where the two families' values
  overlap. Where they do not overlap the adjusted estimate is an extrapolation along the fitted line
  and decides nothing; the row says so. The size-matched variants (``nascore.models.SIZE_VARIANTS``:
  manual networks at a smaller width) exist to give this overlap; they enter the adjusted fit, never
  the raw comparison.
* A decisive verdict ("reproduced" / "not reproduced") needs the raw primary and the supported
  size-adjusted estimate to agree (:func:`nascore.report.verdict.confound_agreement`).

:func:`entry_confounds` reads the covariates and mediators of one trained zoo entry,
:func:`model_confounds` tabulates them for many.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Covariates fixed before training: the only adjustment set of a family comparison (column names;
#: ``log10_params`` / ``log10_flops`` are derived from the ``params`` / ``flops`` counts).
COVARIATES: tuple[str, ...] = ("log10_params", "log10_flops")
#: Outcomes of training on the claimed causal path: exploratory mediator rows, never adjustment covariates.
MEDIATORS: tuple[str, ...] = ("clean_acc", "train_loss")
#: Words for covariates and mediators in verdict text.
CONFOUND_WORDS = {"log10_params": "log10 parameters", "log10_flops": "log10 FLOPs per image",
                  "clean_acc": "clean accuracy", "train_loss": "final training loss",
                  "gen_gap": "train–test accuracy gap"}
#: A regression is reported only with at least this many residual degrees of freedom.
MIN_RESIDUAL_DF = 5
#: Common support: each family needs at least this many models inside the overlap of the two ranges.
MIN_SUPPORT = 2
#: A size-matched variant enters the size adjustment only with at least this clean accuracy (%): the
#: book's accuracy floor for every zoo model, pre-registered; one below it is reported and left out.
SIZE_VARIANT_FLOOR = 50.0
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
    """The covariates and mediators of one trained zoo entry (a :class:`nascore.zoo.TrainedModel`):
    ``{"params": count, "flops": forward FLOPs per 32×32 image, "clean_acc": % (final epoch),
    "train_loss": mean training loss of the final epoch}``. Reads the record's ``metrics``
    (``params``, ``flops``, ``final_train_loss``), else counts them on the model
    (:func:`nascore.models.cost.flops_per_image`) and reads the record's last history row. Every
    chapter's per-model table takes these columns from here."""
    from ..models.cost import flops_per_image

    record = entry.record
    metrics = record.get("metrics", {})
    history = record.get("history") or []
    loss = metrics.get("final_train_loss", history[-1].get("train_loss") if history else None)
    if loss is None:
        raise ValueError(f"zoo entry {record.get('key', '?')} has no final training loss in its record")
    params = metrics.get("params") or sum(p.numel() for p in entry.model.parameters())
    flops = metrics.get("flops") or flops_per_image(entry.model)
    return {"params": int(params), "flops": int(flops), "clean_acc": 100 * float(metrics["test_acc"]),
            "train_loss": float(loss)}


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
    keep = ["model", "seed"] + [c for c in ("params", "flops", "clean_acc", "train_loss") if c not in df.columns]
    return df.merge(conf[keep], on=["model", "seed"], how="left", validate="many_to_one")


_LOG_OF = {"log10_params": "params", "log10_flops": "flops"}


def confound_columns(confounds) -> list[str]:
    """The raw columns a chapter's table needs for ``confounds`` (``params`` for ``log10_params``, …)."""
    return [_LOG_OF.get(c, c) for c in confounds]


def confound_values(units: pd.DataFrame, confounds) -> pd.DataFrame:
    """Per-unit covariate values (``log10_params`` / ``log10_flops`` computed from the counts)."""
    out = pd.DataFrame(index=units.index)
    for c in confounds:
        if c in _LOG_OF:
            p = units[_LOG_OF[c]].astype(float)
            if (p <= 0).any():
                raise ValueError(f"{_LOG_OF[c]} must be positive to take log10")
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


@dataclass(frozen=True)
class Support:
    """Common support of one covariate between two families (:func:`common_support`).

    ``range_a`` / ``range_b``: the families' (min, max); ``overlap``: the intersection (``None`` if
    empty); ``n_a`` / ``n_b``: models of each family inside it."""

    covariate: str
    range_a: tuple[float, float]
    range_b: tuple[float, float]
    overlap: tuple[float, float] | None
    n_a: int
    n_b: int

    @property
    def supported(self) -> bool:
        return self.overlap is not None and min(self.n_a, self.n_b) >= MIN_SUPPORT

    def words(self, groups: tuple[str, str] = ("NAS", "manual")) -> str:
        what = CONFOUND_WORDS.get(self.covariate, self.covariate)
        ranges = (f"{groups[0]} {self.range_a[0]:.2f}–{self.range_a[1]:.2f}, "
                  f"{groups[1]} {self.range_b[0]:.2f}–{self.range_b[1]:.2f}")
        if self.overlap is None:
            return f"{what}: {ranges}, no overlap"
        return f"{what}: {ranges}; {self.n_a} {groups[0]} and {self.n_b} {groups[1]} models in the overlap"


def common_support(covars: pd.DataFrame, is_a) -> dict[str, Support]:
    """Per covariate, whether the two families' values overlap with at least :data:`MIN_SUPPORT`
    models of each inside the overlap (then an adjusted difference compares like with like; else it
    extrapolates). ``covars``: per-unit covariate values; ``is_a``: boolean per unit (NAS)."""
    a_mask = np.asarray(is_a, bool)
    out = {}
    for c in covars.columns:
        v = covars[c].to_numpy(float)
        a, b = v[a_mask], v[~a_mask]
        ra, rb = (float(a.min()), float(a.max())), (float(b.min()), float(b.max()))
        lo, hi = max(ra[0], rb[0]), min(ra[1], rb[1])
        if lo > hi:
            out[c] = Support(c, ra, rb, None, 0, 0)
        else:
            inside = (v >= lo) & (v <= hi)
            out[c] = Support(c, ra, rb, (lo, hi), int((inside & a_mask).sum()), int((inside & ~a_mask).sum()))
    return out


def variants_below_floor(df: pd.DataFrame) -> list[str]:
    """The size-matched variants (``nascore.models.SIZE_VARIANTS``) of ``df`` (rows with ``model``
    and ``clean_acc`` %) whose clean accuracy is under :data:`SIZE_VARIANT_FLOOR`: left out of every
    size-adjusted fit, as pre-registered. ``[]`` when ``df`` has no ``clean_acc``."""
    from ..models import SIZE_VARIANTS

    if "clean_acc" not in df.columns:
        return []
    low = df["model"].isin(list(SIZE_VARIANTS)) & (df["clean_acc"] < SIZE_VARIANT_FLOOR)
    return sorted(set(df.loc[low, "model"]))


def _si(x: float) -> str:
    """A count in k / M with three significant digits (44.6k, 12.8M)."""
    for div, sfx in ((1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.3g}{sfx}"
    return f"{x:.3g}"


def support_table(df: pd.DataFrame, covariates=COVARIATES, groups: tuple[str, str] = ("nas", "manual")) -> pd.DataFrame:
    """The common support of the size adjustment over the models of ``df`` (one row per model and
    seed, with ``model``, ``family``, the covariates' count columns and ``clean_acc`` %), as
    :func:`nascore.report.compare.compare_families` fits it (``family`` is looked up when absent, so
    :func:`model_confounds` of the zoo's entries is a valid input): seeds averaged, the size-matched
    variants included, those under :data:`SIZE_VARIANT_FLOOR` left out. One row per covariate: each
    family's range (in the covariate's own units, e.g. parameters, not their log), the overlap, the
    models of each family inside it and whether it supports the adjustment (≥ :data:`MIN_SUPPORT` each)."""
    from ..models import family

    data = df if "family" in df.columns else df.assign(family=df["model"].map(family))
    data = data[data["family"].isin(groups)]
    data = data[~data["model"].isin(variants_below_floor(data))]
    cols = confound_columns(covariates)
    units = data.groupby("model").agg({"family": "first", **{c: "mean" for c in cols}})
    covars = confound_values(units, covariates)
    is_a = (units["family"] == groups[0]).to_numpy()
    rows = []
    for c, sup in common_support(covars, is_a).items():
        v = covars[c]
        inside = (v >= sup.overlap[0]) & (v <= sup.overlap[1]) if sup.overlap else v < -np.inf
        span = (lambda r: f"{_si(10 ** r[0])} – {_si(10 ** r[1])}") if c in _LOG_OF else (
            lambda r: f"{r[0]:.3g} – {r[1]:.3g}")
        rows.append({"covariate": _LOG_OF.get(c, c),
                     f"{groups[0]} range": span(sup.range_a), f"{groups[1]} range": span(sup.range_b),
                     "overlap": span(sup.overlap) if sup.overlap else "none",
                     f"{groups[0]} inside": sup.n_a, f"{groups[1]} inside": sup.n_b, "supported": sup.supported,
                     "models inside": ", ".join(sorted(v.index[inside]))})
    return pd.DataFrame(rows)


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
