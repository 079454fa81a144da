"""Statistics for NAS-vs-manual comparisons: bootstrap intervals and permutation tests.

The unit of analysis is the **model**: each group holds one value per model (e.g. a = the NAS
models' targeted-PGD ASR, b = the manual models'), so a group has 3–17 values. Everything is
numpy, seeded (``np.random.default_rng(seed)``; same seed ⇒ same numbers) and vectorised over
resamples (resamples are processed in memory-bounded chunks, never one at a time).

GUIDE.md, "Honesty": NAS-vs-manual differences are reported with bootstrap confidence intervals
and a permutation test across models.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from typing import Callable, Literal

import numpy as np

Alternative = Literal["two-sided", "greater", "less"]

#: Resampled elements materialised at once (chunking bound for the vectorised resampling).
_CHUNK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class DiffEstimate:
    """A point estimate with a percentile-bootstrap confidence interval.

    ``estimate = stat(a) − stat(b)`` (or ``stat(values)`` for :func:`bootstrap_ci`, where
    ``n_b == 0``); ``[low, high]`` is the ``ci`` interval; ``n_a``/``n_b`` are the group sizes.
    Units are those of the input values.
    """

    estimate: float
    low: float
    high: float
    n_a: int
    n_b: int
    ci: float = 0.95

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.estimate:+.4g} [{self.ci:.0%} CI {self.low:+.4g}, {self.high:+.4g}]"


@dataclass(frozen=True)
class SpearmanResult:
    """Spearman rank correlation with a bootstrap CI (pairs resampled) and a permutation p-value."""

    rho: float
    low: float
    high: float
    p_value: float
    n: int
    ci: float = 0.95

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class MeanBand:
    """Per-column mean of curves and a bootstrap CI band; arrays of shape ``(columns,)``."""

    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n: int
    ci: float = 0.95


# --------------------------------------------------------------------------- helpers
def _as_1d(x, name: str, min_len: int = 1) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per model), got shape {arr.shape}")
    if arr.size < min_len:
        raise ValueError(f"{name} needs at least {min_len} value(s), got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf: {arr}")
    return arr


def _check_ci(ci: float) -> None:
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci must be in (0, 1), got {ci}")


def _check_n(n: int, name: str) -> None:
    if int(n) != n or n < 1:
        raise ValueError(f"{name} must be a positive integer, got {n}")


def _apply_stat(stat: Callable, samples: np.ndarray) -> np.ndarray:
    """``stat`` along the last axis; uses ``axis=-1`` when ``stat`` supports it."""
    try:
        out = np.asarray(stat(samples, axis=-1), dtype=float)
        if out.shape == samples.shape[:-1]:
            return out
    except TypeError:
        pass
    return np.apply_along_axis(stat, -1, samples).astype(float)


def _chunks(total: int, per_item: int):
    step = max(1, _CHUNK_ELEMENTS // max(1, per_item))
    for start in range(0, total, step):
        yield start, min(total, start + step)


def _boot_stats(x: np.ndarray, stat: Callable, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``n_boot`` bootstrap replicates of ``stat(x)``, shape ``(n_boot,)``."""
    out = np.empty(n_boot)
    for lo, hi in _chunks(n_boot, x.size):
        idx = rng.integers(0, x.size, size=(hi - lo, x.size))
        out[lo:hi] = _apply_stat(stat, x[idx])
    return out


def _percentile_interval(reps: np.ndarray, ci: float) -> tuple[float, float]:
    alpha = (1.0 - ci) / 2.0
    low, high = np.nanquantile(reps, [alpha, 1.0 - alpha])
    return float(low), float(high)


# --------------------------------------------------------------------------- bootstrap
def bootstrap_diff(a, b, stat: Callable = np.mean, n_boot: int = 10_000, ci: float = 0.95,
                   seed: int = 0) -> DiffEstimate:
    """Difference of group statistics ``stat(a) − stat(b)`` with a percentile bootstrap CI.

    Parameters
    ----------
    a, b : 1-D arrays, one value per model (a = NAS models, b = manual models; shapes
        ``(n_a,)``, ``(n_b,)``), in the metric's units (pp, nats, AUC, ...).
    stat : group statistic, called as ``stat(x, axis=-1)`` if it accepts ``axis`` (np.mean,
        np.median), else applied row by row.
    n_boot : bootstrap resamples; each group is resampled **independently** with replacement
        (a stratified two-sample bootstrap: group sizes are kept).
    ci : coverage of the two-sided percentile interval.
    seed : seed of ``np.random.default_rng``.

    With very few models the percentile bootstrap under-covers; pair it with
    :func:`permutation_test` (as :func:`nascore.report.verdict.verdict` does).
    """
    a = _as_1d(a, "a")
    b = _as_1d(b, "b")
    _check_ci(ci)
    _check_n(n_boot, "n_boot")
    rng = np.random.default_rng(seed)
    est = float(_apply_stat(stat, a[None, :])[0] - _apply_stat(stat, b[None, :])[0])
    reps = _boot_stats(a, stat, n_boot, rng) - _boot_stats(b, stat, n_boot, rng)
    low, high = _percentile_interval(reps, ci)
    return DiffEstimate(est, low, high, int(a.size), int(b.size), ci)


def bootstrap_ci(values, stat: Callable = np.mean, n_boot: int = 10_000, ci: float = 0.95,
                 seed: int = 0) -> DiffEstimate:
    """``stat(values)`` (default the mean) with a percentile bootstrap CI.

    ``values`` is 1-D, shape ``(n,)``. Returned as a :class:`DiffEstimate` with ``n_a = n`` and
    ``n_b = 0``, so single-group statistics (e.g. a paired difference per model, or a relative
    efficacy reduction per SDN) feed :func:`~nascore.report.verdict.verdict` directly.
    """
    x = _as_1d(values, "values")
    _check_ci(ci)
    _check_n(n_boot, "n_boot")
    rng = np.random.default_rng(seed)
    est = float(_apply_stat(stat, x[None, :])[0])
    low, high = _percentile_interval(_boot_stats(x, stat, n_boot, rng), ci)
    return DiffEstimate(est, low, high, int(x.size), 0, ci)


# --------------------------------------------------------------------------- permutation
def _p_from_null(null: np.ndarray, observed: float, alternative: Alternative) -> np.ndarray:
    """Boolean mask of null statistics at least as extreme as ``observed``."""
    # Relative tolerance so that ties (including the observed split itself, recomputed in a
    # different summation order) count as extreme.
    tol = 1e-9 * max(1.0, abs(observed))
    if alternative == "greater":
        return null >= observed - tol
    if alternative == "less":
        return null <= observed + tol
    return np.abs(null) >= abs(observed) - tol


def n_splits(n_a: int, n_b: int) -> int:
    """Number of distinct ways to split ``n_a + n_b`` labelled values into groups of n_a and n_b."""
    return math.comb(n_a + n_b, n_a)


def permutation_test(a, b, n_perm: int = 10_000, alternative: Alternative = "two-sided",
                     seed: int = 0) -> float:
    """Permutation p-value for the difference of means ``mean(a) − mean(b)``.

    Null hypothesis: the group labels (NAS / manual) are exchangeable across models.
    ``alternative``: ``"greater"`` tests mean(a) > mean(b), ``"less"`` the reverse,
    ``"two-sided"`` uses ``|difference|``.

    * If the number of distinct splits ``C(n_a+n_b, n_a)`` is ≤ ``n_perm``, all splits are
      enumerated and ``p = #{splits at least as extreme} / #splits`` (exact; the observed split
      is one of them, so the smallest possible one-sided p is ``1 / C(n_a+n_b, n_a)``, e.g.
      1/20 for 3 vs 3).
    * Otherwise ``n_perm`` random relabellings are drawn and ``p = (1 + #extreme) / (1 + n_perm)``
      (the +1 correction keeps the test valid; p is never 0).

    ``a``, ``b``: 1-D, one value per model. Returns a float in (0, 1].
    """
    a = _as_1d(a, "a")
    b = _as_1d(b, "b")
    _check_n(n_perm, "n_perm")
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(f"alternative must be 'two-sided', 'greater' or 'less', got {alternative!r}")
    n_a, n_b = a.size, b.size
    pooled = np.concatenate([a, b])
    total = pooled.sum()
    observed = a.mean() - b.mean()

    def diffs(sum_a: np.ndarray) -> np.ndarray:
        return sum_a / n_a - (total - sum_a) / n_b

    if n_splits(n_a, n_b) <= n_perm:
        combos = np.array(list(itertools.combinations(range(n_a + n_b), n_a)), dtype=np.intp)
        null = diffs(pooled[combos].sum(axis=1))
        return float(_p_from_null(null, observed, alternative).mean())

    rng = np.random.default_rng(seed)
    n = n_a + n_b
    extreme = 0
    for lo, hi in _chunks(n_perm, n):
        # Each row of random keys, argsorted, is a uniform random permutation.
        perm = np.argsort(rng.random((hi - lo, n)), axis=1)[:, :n_a]
        extreme += int(_p_from_null(diffs(pooled[perm].sum(axis=1)), observed, alternative).sum())
    return (1.0 + extreme) / (1.0 + n_perm)


def sign_flip_test(values, null: float = 0.0, n_perm: int = 10_000,
                   alternative: Alternative = "two-sided", seed: int = 0) -> float:
    """One-sample permutation (sign-flip) p-value for ``mean(values) − null``.

    For single-group statistics: paired differences per model (e.g. per-sample − universal
    efficacy reduction of each SDN) or per-model effects against a ``null`` (0 for differences,
    1 for ratios). Null hypothesis: ``values − null`` is symmetric about 0. Exact over all
    ``2**n`` sign patterns when ``2**n ≤ n_perm`` (smallest two-sided p = 2 / 2**n), otherwise
    ``(1 + #extreme) / (1 + n_perm)``.
    """
    d = _as_1d(values, "values") - float(null)
    _check_n(n_perm, "n_perm")
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(f"alternative must be 'two-sided', 'greater' or 'less', got {alternative!r}")
    n = d.size
    observed = d.mean()
    if 2 ** n <= n_perm:
        signs = 1.0 - 2.0 * ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1)
        return float(_p_from_null((signs * d).mean(axis=1), observed, alternative).mean())
    rng = np.random.default_rng(seed)
    extreme = 0
    for lo, hi in _chunks(n_perm, n):
        signs = rng.choice(np.array([-1.0, 1.0]), size=(hi - lo, n))
        extreme += int(_p_from_null((signs * d).mean(axis=1), observed, alternative).sum())
    return (1.0 + extreme) / (1.0 + n_perm)


# --------------------------------------------------------------------------- correlation
def _rank_rows(x: np.ndarray) -> np.ndarray:
    """Average ranks along the last axis (ties share their mean rank)."""
    from scipy.stats import rankdata

    return rankdata(x, axis=-1)


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    den = np.sqrt((xc * xc).sum(axis=-1) * (yc * yc).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (xc * yc).sum(axis=-1) / np.where(den > 0, den, 1.0), np.nan)


def spearman_ci(x, y, n_boot: int = 10_000, ci: float = 0.95, seed: int = 0,
                n_perm: int | None = None) -> SpearmanResult:
    """Spearman's rho between paired 1-D arrays ``x``, ``y`` (shape ``(n,)``, e.g. a cell
    statistic and an attack metric per model).

    * CI: percentile bootstrap over **pairs**; resamples whose ranks are constant (undefined
      rho) are dropped.
    * p-value: two-sided permutation test of rho = 0 (y shuffled against x). Exact over all
      ``n!`` orderings when ``n! ≤ n_perm`` (default ``n_perm = n_boot``), otherwise
      ``(1 + #extreme) / (1 + n_perm)``.
    """
    x = _as_1d(x, "x", min_len=3)
    y = _as_1d(y, "y", min_len=3)
    if x.size != y.size:
        raise ValueError(f"x and y must pair up, got {x.size} and {y.size} values")
    _check_ci(ci)
    _check_n(n_boot, "n_boot")
    n_perm = n_boot if n_perm is None else n_perm
    _check_n(n_perm, "n_perm")
    n = x.size
    rx, ry = _rank_rows(x), _rank_rows(y)
    rho = float(_pearson_rows(rx, ry))
    if not np.isfinite(rho):
        raise ValueError("Spearman rho is undefined: x or y is constant")
    rng = np.random.default_rng(seed)

    reps = np.empty(n_boot)
    for lo, hi in _chunks(n_boot, 2 * n):
        idx = rng.integers(0, n, size=(hi - lo, n))
        reps[lo:hi] = _pearson_rows(_rank_rows(x[idx]), _rank_rows(y[idx]))
    low, high = _percentile_interval(reps, ci)

    if math.factorial(n) <= n_perm:
        perms = np.array(list(itertools.permutations(range(n))), dtype=np.intp)
        null = _pearson_rows(np.broadcast_to(rx, perms.shape), ry[perms])
        p = float(_p_from_null(null, rho, "two-sided").mean())
    else:
        extreme = 0
        for lo, hi in _chunks(n_perm, n):
            perm = np.argsort(rng.random((hi - lo, n)), axis=1)
            null = _pearson_rows(np.broadcast_to(rx, perm.shape), ry[perm])
            extreme += int(_p_from_null(null, rho, "two-sided").sum())
        p = (1.0 + extreme) / (1.0 + n_perm)
    return SpearmanResult(rho, low, high, p, int(n), ci)


# --------------------------------------------------------------------------- curves
def mean_band(curves, ci: float = 0.95, n_boot: int = 2_000, seed: int = 0) -> MeanBand:
    """Mean curve and bootstrap CI band per column.

    ``curves``: shape ``(models, columns)`` — e.g. per-epoch test accuracy (%) of each model of
    one group, columns = epochs. Rows (models) are resampled; the band at each column is the
    percentile interval of the resampled column means. NaN entries (e.g. a curve that stops
    early) are ignored per column; a column must have at least one finite value.
    Returns arrays of shape ``(columns,)``.
    """
    arr = np.asarray(curves, dtype=float)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"curves must have shape (models, columns), got {arr.shape}")
    if np.isinf(arr).any():
        raise ValueError("curves contain inf")
    finite = np.isfinite(arr)
    if not finite.any(axis=0).all():
        raise ValueError("every column needs at least one finite value")
    _check_ci(ci)
    _check_n(n_boot, "n_boot")
    m, k = arr.shape
    mean = np.nanmean(arr, axis=0)
    rng = np.random.default_rng(seed)
    zero = np.where(finite, arr, 0.0)
    reps = np.empty((n_boot, k))
    for lo, hi in _chunks(n_boot, m * k):
        idx = rng.integers(0, m, size=(hi - lo, m))
        cnt = finite[idx].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            reps[lo:hi] = np.where(cnt > 0, zero[idx].sum(axis=1) / np.maximum(cnt, 1), np.nan)
    alpha = (1.0 - ci) / 2.0
    low, high = np.nanquantile(reps, [alpha, 1.0 - alpha], axis=0)
    return MeanBand(mean, low, high, int(m), ci)


def auc_trapz(x, y, normalize: bool = False) -> np.ndarray | float:
    """Trapezoid-rule area under ``y(x)``.

    ``x``: shape ``(k,)``, strictly increasing (e.g. ε values, epochs, normalised costs);
    ``y``: shape ``(k,)`` or ``(rows, k)`` (one curve per row). ``normalize=True`` divides by
    ``x[-1] − x[0]``, giving the curve's mean height in ``y``'s units (e.g. the "mean accuracy
    over ε"). Returns a float for 1-D ``y``, else an array of shape ``(rows,)``.
    Same rule as ``np.trapz`` (DeepSloth efficacy uses it, protocol deepsloth.md §2).
    """
    x = _as_1d(x, "x", min_len=2)
    y = np.asarray(y, dtype=float)
    if y.shape[-1] != x.size:
        raise ValueError(f"y's last axis ({y.shape[-1]}) must match x ({x.size})")
    dx = np.diff(x)
    if np.any(dx <= 0):
        raise ValueError("x must be strictly increasing")
    area = (dx * (y[..., 1:] + y[..., :-1]) / 2.0).sum(axis=-1)
    if normalize:
        area = area / (x[-1] - x[0])
    return float(area) if np.ndim(area) == 0 else area
