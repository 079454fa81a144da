"""Estimators behind every verdict, on the field's libraries.

* Bootstrap intervals: :func:`scipy.stats.bootstrap` (BCa by default, seeded; each group resampled
  independently, or pairs resampled together for paired data).
* Permutation tests: :func:`scipy.stats.permutation_test`. It enumerates every distinct relabelling
  (exact test) when ``n_perm`` is at least their number, otherwise draws ``n_perm`` random ones and
  reports ``(1 + #extreme) / (1 + n_perm)``. The default ``n_perm = 100_000`` makes the usual book
  comparisons exact (10 NAS vs 7 manual models: 19,448 splits).
* Spearman's ρ: :func:`scipy.stats.spearmanr`; Holm: :func:`statsmodels.stats.multitest.multipletests`;
  McNemar: :func:`statsmodels.stats.contingency_tables.mcnemar`.

Only glue is written here (input checks, degenerate cases, result types). Two-sided permutation
p-values follow scipy's convention (twice the smaller one-sided p, capped at 1), which equals the
"|difference| at least as large" rule when the null distribution is symmetric.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Callable, Literal, Mapping

import numpy as np
from scipy import stats as _st

Alternative = Literal["two-sided", "greater", "less"]
CIMethod = Literal["BCa", "percentile", "basic"]
N_PERM = 100_000
#: Most array elements one vectorised scipy resampling call may hold per input (2**22 float64 =
#: 34 MB; scipy keeps a few such arrays). scipy otherwise draws all resamples at once: a sign-flip
#: test over 2,000 images with 100,000 flips peaks at 12.8 GB, over chapter 5's 10,000 paired
#: images the kernel was killed for memory (24 GB).
MAX_RESAMPLE_ELEMENTS = 2 ** 22


def _batch(n: int) -> int:
    """Resamples per vectorised scipy call so that ``batch × n`` stays under
    :data:`MAX_RESAMPLE_ELEMENTS` (the same random stream: scipy draws the batches in sequence)."""
    return max(1, MAX_RESAMPLE_ELEMENTS // max(1, int(n)))


@dataclass(frozen=True)
class DiffEstimate:
    """A point estimate with a bootstrap confidence interval.

    ``estimate = stat(a) − stat(b)`` (or ``stat(values)`` for one group, where ``n_b == 0``);
    ``[low, high]`` is the ``ci`` interval computed by ``method`` (NaN when it cannot be computed,
    e.g. a group with a single value). Units are those of the input values.
    """

    estimate: float
    low: float
    high: float
    n_a: int
    n_b: int
    ci: float = 0.95
    method: str = "BCa"

    @property
    def has_interval(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.estimate:+.4g} [{self.ci:.0%} CI {self.low:+.4g}, {self.high:+.4g}]"


@dataclass(frozen=True)
class SpearmanResult:
    """Spearman ρ, percentile bootstrap CI over pairs, permutation p-value (two-sided)."""

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


@dataclass(frozen=True)
class McNemarResult:
    """Paired binary outcomes of two models on the same images.

    ``only_a``/``only_b``: images where only model a / only model b succeeded (the discordant
    pairs); ``exact`` says whether the exact binomial test was used (fewer than 25 discordant
    pairs) or the χ² test with continuity correction.
    """

    only_a: int
    only_b: int
    n: int
    statistic: float
    p_value: float
    exact: bool


# --------------------------------------------------------------------------- input checks
def _as_1d(x, name: str, min_len: int = 1) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per unit), got shape {arr.shape}")
    if arr.size < min_len:
        raise ValueError(f"{name} needs at least {min_len} value(s), got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf: {arr}")
    return arr


def _check(ci: float, n: int, name: str, alternative: str = "two-sided", method: str = "BCa") -> None:
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    if int(n) != n or n < 1:
        raise ValueError(f"{name} must be a positive integer, got {n}")
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(f"alternative must be 'two-sided', 'greater' or 'less', got {alternative!r}")
    if method not in ("BCa", "percentile", "basic"):
        raise ValueError(f"method must be 'BCa', 'percentile' or 'basic', got {method!r}")


def _vectorised(stat: Callable) -> Callable:
    """``stat(x, axis=...)`` if ``stat`` takes ``axis`` (np.mean, np.median), else row by row."""
    def apply(x, axis=-1):
        try:
            return np.asarray(stat(x, axis=axis), dtype=float)
        except TypeError:
            return np.apply_along_axis(stat, axis, x).astype(float)
    return apply


def _interval(data: tuple, statistic: Callable, estimate: float, n_boot: int, ci: float, seed: int,
              method: str, paired: bool = False) -> tuple[float, float, str]:
    """scipy bootstrap interval; a constant bootstrap distribution gives the point itself, and an
    undefined BCa interval (the jackknife degenerates, e.g. heavy ties) the percentile one,
    with the method actually used returned alongside."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = _st.bootstrap(data, statistic, n_resamples=n_boot, confidence_level=ci, method=method,
                            vectorized=True, paired=paired, rng=np.random.default_rng(seed),
                            batch=_batch(sum(np.shape(d)[-1] for d in data)))
    dist = res.bootstrap_distribution
    if np.ptp(dist) <= 1e-12 * max(1.0, abs(estimate)):
        return estimate, estimate, "degenerate (every resample equal)"
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if math.isfinite(low) and math.isfinite(high):
        return low, high, method
    alpha = (1 - ci) / 2
    low, high = np.nanquantile(dist, [alpha, 1 - alpha])
    return float(low), float(high), f"percentile ({method} undefined for these data)"


# --------------------------------------------------------------------------- bootstrap
def bootstrap_diff(a, b, stat: Callable = np.mean, n_boot: int = 10_000, ci: float = 0.95,
                   seed: int = 0, method: CIMethod = "BCa") -> DiffEstimate:
    """``stat(a) − stat(b)`` with a two-sample bootstrap CI (:func:`scipy.stats.bootstrap`).

    ``a``, ``b``: 1-D, one value per unit (e.g. a = NAS models, b = manual models), in the
    statistic's units. Each group is resampled independently (group sizes kept). A group with a
    single value gives a NaN interval (method ``"not computed"``); the verdict then says so.
    """
    a, b = _as_1d(a, "a"), _as_1d(b, "b")
    _check(ci, n_boot, "n_boot", method=method)
    f = _vectorised(stat)
    est = float(f(a) - f(b))
    if min(a.size, b.size) < 2:
        return DiffEstimate(est, math.nan, math.nan, a.size, b.size, ci, "not computed (a group has one value)")
    low, high, used = _interval((a, b), lambda x, y, axis: f(x, axis) - f(y, axis), est, n_boot, ci, seed, method)
    return DiffEstimate(est, low, high, int(a.size), int(b.size), ci, used)


def bootstrap_ci(values, stat: Callable = np.mean, n_boot: int = 10_000, ci: float = 0.95,
                 seed: int = 0, method: CIMethod = "BCa") -> DiffEstimate:
    """``stat(values)`` with a one-sample bootstrap CI; returned with ``n_b = 0``."""
    x = _as_1d(values, "values")
    _check(ci, n_boot, "n_boot", method=method)
    f = _vectorised(stat)
    est = float(f(x))
    if x.size < 2:
        return DiffEstimate(est, math.nan, math.nan, 1, 0, ci, "not computed (one value)")
    low, high, used = _interval((x,), lambda v, axis: f(v, axis), est, n_boot, ci, seed, method)
    return DiffEstimate(est, low, high, int(x.size), 0, ci, used)


def _check_extreme(groups, which: str, ci: float, n_boot: int) -> None:
    """The arguments every extreme-over-groups bootstrap shares, checked before any compute."""
    if which not in ("min", "max"):
        raise ValueError(f"which must be 'min' or 'max', got {which!r}")
    if not groups:
        raise ValueError("groups is empty")
    _check(ci, n_boot, "n_boot")


def bootstrap_extreme(groups: Mapping[str, np.ndarray], statistic: Callable = np.mean, which: str = "min",
                      n_boot: int = 2_000, ci: float = 0.95, seed: int = 0) -> tuple[DiffEstimate, dict, np.ndarray]:
    """The smallest (``which="min"``) or largest group statistic, with a percentile bootstrap CI.

    ``groups``: ``{name: per-unit data}`` (first axis = units, e.g. the test images of one
    backbone; further axes allowed, e.g. ``(images, 2)`` for clean/attacked exits).
    ``statistic(data) -> float`` is applied to each group's (resampled) rows. Units are
    resampled **within** each group, independently across groups (``scipy.stats.bootstrap`` with
    one sample per group), and the extreme is recomputed in every resample, so the interval
    includes the uncertainty of which group is the extreme. BCa is not used: the minimum is
    not a smooth statistic. Returns ``(estimate, {name: statistic}, bootstrap distribution)``;
    ``n_a`` is the smallest group size and ``n_b`` the number of groups.
    """
    _check_extreme(groups, which, ci, n_boot)
    names = list(groups)
    data = [np.asarray(groups[k]) for k in names]
    for k, d in zip(names, data):
        if d.ndim == 0 or len(d) < 2:
            raise ValueError(f"group {k!r} needs at least 2 units, got {d.shape}")
    per_group = {k: float(statistic(d)) for k, d in zip(names, data)}
    pick = min if which == "min" else max
    est = pick(per_group.values())

    def stat_of_indices(*idx):
        return pick(float(statistic(d[np.asarray(i, dtype=np.intp)])) for d, i in zip(data, idx))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = _st.bootstrap(tuple(np.arange(len(d)) for d in data), stat_of_indices, n_resamples=n_boot,
                            confidence_level=ci, method="percentile", vectorized=False,
                            rng=np.random.default_rng(seed))
    dist = np.asarray(res.bootstrap_distribution, dtype=float)
    alpha = (1 - ci) / 2
    low, high = np.nanquantile(dist, [alpha, 1 - alpha])
    return (DiffEstimate(est, float(low), float(high), min(len(d) for d in data), len(data), ci, "percentile"),
            per_group, dist)


def bootstrap_extreme_seeds(groups: Mapping[str, list], statistic: Callable = np.mean, which: str = "min",
                            n_boot: int = 2_000, ci: float = 0.95, seed: int = 0
                            ) -> tuple[DiffEstimate, dict, np.ndarray]:
    """:func:`bootstrap_extreme` with two levels of units: each group (a backbone) holds one array per
    **training seed** (``{name: [rows of seed 0, rows of seed 1, ...]}``, first axis = test images).

    A group's value is the mean over its seeds of ``statistic(rows of that seed)``. Each resample draws
    the group's seeds with replacement and then, within every drawn seed, its images with replacement
    (the two-level, or cluster, bootstrap: Davison & Hinkley 1997, §3.8; Field & Welsh 2007), so the
    interval carries both retraining and image sampling; the extreme over groups is recomputed in every
    resample. With ``k`` seeds a group's seed draw repeats one seed with probability ``1 − k!/kᵏ``
    (½ for two), so intervals over two seeds are honest but wide. Written here because
    ``scipy.stats.bootstrap`` resamples one level only. ``n_a`` is the fewest seeds in a group,
    ``n_b`` the number of groups.
    """
    _check_extreme(groups, which, ci, n_boot)
    names = list(groups)
    data = {k: [np.asarray(d) for d in groups[k]] for k in names}
    for k, seeds in data.items():
        if len(seeds) < 1:
            raise ValueError(f"group {k!r} has no seeds")
        for d in seeds:
            if d.ndim == 0 or len(d) < 2:
                raise ValueError(f"group {k!r} needs at least 2 images per seed, got {d.shape}")
    per_group = {k: float(np.mean([statistic(d) for d in data[k]])) for k in names}
    pick = min if which == "min" else max
    est = pick(per_group.values())
    rng = np.random.default_rng(seed)
    dist = np.empty(n_boot)
    for b in range(n_boot):
        values = []
        for k in names:
            seeds = data[k]
            drawn = rng.integers(len(seeds), size=len(seeds))
            values.append(np.mean([statistic(seeds[j][rng.integers(len(seeds[j]), size=len(seeds[j]))])
                                   for j in drawn]))
        dist[b] = pick(values)
    alpha = (1 - ci) / 2
    low, high = np.nanquantile(dist, [alpha, 1 - alpha])
    return (DiffEstimate(est, float(low), float(high), min(len(v) for v in data.values()), len(names), ci,
                         "percentile, seeds then images"), per_group, dist)


def bootstrap_p(distribution: np.ndarray, null: float) -> float:
    """Two-sided bootstrap p-value that inverts the percentile interval (about the smallest α at
    which the ``1 − α`` interval excludes ``null``): ``2·(min(#θ* ≤ null, #θ* ≥ null) + 1) / (B + 1)``,
    capped at 1. Less exact than a permutation test; used where none applies (extremes over groups)."""
    d = np.asarray(distribution, float)
    d = d[np.isfinite(d)]
    below, above = int((d <= null).sum()), int((d >= null).sum())
    return float(min(1.0, 2 * (min(below, above) + 1) / (d.size + 1)))


# --------------------------------------------------------------------------- permutation tests
def n_splits(n_a: int, n_b: int) -> int:
    """Number of distinct ways to split ``n_a + n_b`` labelled values into groups of n_a and n_b."""
    return math.comb(n_a + n_b, n_a)


def _mean_diff(x, y, axis=-1):
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def smallest_attainable_p(test: str, n_a: int, n_b: int = 0) -> float | None:
    """Smallest two-sided p an **exact** permutation test named ``test`` (as the comparison rows
    name it) can give with these unit counts, whatever the data: ``2 / C(n_a + n_b, n_a)`` for two
    independent groups, ``2 / 2**n_a`` for a one-sample sign-flip test; ``None`` for other tests.
    E.g. 5 vs 5 architectures: 2/252 = 0.0079."""
    if not isinstance(test, str) or not test.startswith("exact"):
        return None
    if "sign-flip" in test:
        return min(1.0, 2.0 / 2 ** int(n_a))
    if not n_b:
        return None
    return min(1.0, 2.0 / n_splits(int(n_a), int(n_b)))


def permutation_test(a, b, n_perm: int = N_PERM, alternative: Alternative = "two-sided",
                     seed: int = 0) -> float:
    """Permutation p-value of ``mean(a) − mean(b)`` (:func:`scipy.stats.permutation_test`,
    independent samples). Exact when ``n_splits(n_a, n_b) <= n_perm``; else Monte Carlo with
    the +1 correction. Null: the group labels are exchangeable across units."""
    a, b = _as_1d(a, "a"), _as_1d(b, "b")
    _check(0.5, n_perm, "n_perm", alternative)
    res = _st.permutation_test((a, b), _mean_diff, permutation_type="independent", vectorized=True,
                               n_resamples=n_perm, alternative=alternative, rng=np.random.default_rng(seed),
                               batch=_batch(a.size + b.size))
    return float(min(1.0, res.pvalue))


def sign_flip_test(values, null: float = 0.0, n_perm: int = N_PERM, alternative: Alternative = "two-sided",
                   seed: int = 0) -> float:
    """One-sample sign-flip permutation p-value for ``mean(values) − null`` (scipy
    ``permutation_type="samples"`` with one sample flips signs). Exact over all ``2**n`` sign
    patterns when ``2**n <= n_perm``. Null: ``values − null`` is symmetric about 0."""
    d = _as_1d(values, "values") - float(null)
    _check(0.5, n_perm, "n_perm", alternative)
    if not np.any(d):
        return 1.0
    res = _st.permutation_test((d,), lambda x, axis=-1: np.mean(x, axis=axis), permutation_type="samples",
                               vectorized=True, n_resamples=n_perm, alternative=alternative,
                               rng=np.random.default_rng(seed), batch=_batch(d.size))
    return float(min(1.0, res.pvalue))


# --------------------------------------------------------------------------- correlation
def _rho(x, y, axis=-1):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rx, ry = _st.rankdata(x, axis=axis), _st.rankdata(y, axis=axis)
        return _st.pearsonr(rx, ry, axis=axis).statistic


def spearman_ci(x, y, n_boot: int = 10_000, ci: float = 0.95, seed: int = 0,
                n_perm: int | None = None) -> SpearmanResult:
    """Spearman's ρ (:func:`scipy.stats.spearmanr`) between paired 1-D arrays (e.g. a cell
    statistic and an attack metric per model).

    CI: percentile bootstrap over pairs; resamples with constant ranks (ρ undefined) are left
    out. p: two-sided permutation test of ρ = 0 (pairings shuffled), exact when
    ``n! <= n_perm`` (default ``n_perm = max(n_boot, 100_000)``).
    """
    x, y = _as_1d(x, "x", min_len=3), _as_1d(y, "y", min_len=3)
    if x.size != y.size:
        raise ValueError(f"x and y must pair up, got {x.size} and {y.size} values")
    _check(ci, n_boot, "n_boot")
    n_perm = max(n_boot, N_PERM) if n_perm is None else n_perm
    _check(ci, n_perm, "n_perm")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        raise ValueError("Spearman rho is undefined: x or y is constant")
    rho = float(_st.spearmanr(x, y).statistic)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        boot = _st.bootstrap((x, y), _rho, paired=True, vectorized=True, n_resamples=n_boot, method="percentile",
                             confidence_level=ci, rng=np.random.default_rng(seed), batch=_batch(2 * x.size))
    alpha = (1 - ci) / 2
    low, high = np.nanquantile(boot.bootstrap_distribution, [alpha, 1 - alpha])
    # Permuting y's ranks alone against fixed x ranks gives the n! pairings (ranks are computed once:
    # a permutation of y permutes its ranks).
    rx, ry = _st.rankdata(x), _st.rankdata(y)

    def pearson(yy, axis=-1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _st.pearsonr(np.broadcast_to(rx, yy.shape), yy, axis=axis).statistic

    perm = _st.permutation_test((ry,), pearson, permutation_type="pairings", vectorized=True, n_resamples=n_perm,
                                rng=np.random.default_rng(seed), batch=_batch(2 * ry.size))
    return SpearmanResult(rho, float(low), float(high), float(min(1.0, perm.pvalue)), int(x.size), ci)


# --------------------------------------------------------------------------- paired / multiplicity
def mcnemar_test(success_a, success_b) -> McNemarResult:
    """McNemar's test for two models' binary outcomes on the **same** images
    (:func:`statsmodels.stats.contingency_tables.mcnemar`): exact binomial when there are fewer
    than 25 discordant pairs, else χ² with continuity correction."""
    from statsmodels.stats.contingency_tables import mcnemar

    a = np.asarray(success_a).astype(bool).ravel()
    b = np.asarray(success_b).astype(bool).ravel()
    if a.size != b.size or a.size == 0:
        raise ValueError(f"success_a and success_b must be paired outcomes on the same images, "
                         f"got {a.size} and {b.size}")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    table = [[int((a & b).sum()), only_a], [only_b, int((~a & ~b).sum())]]
    exact = only_a + only_b < 25
    res = mcnemar(table, exact=exact, correction=True)
    p = 1.0 if only_a + only_b == 0 else float(min(1.0, res.pvalue))
    return McNemarResult(only_a, only_b, int(a.size), float(res.statistic), p, exact)


def holm(p_values) -> np.ndarray:
    """Holm step-down adjusted p-values (``statsmodels`` ``multipletests(method="holm")``);
    NaN entries are left out of the family and stay NaN."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        if np.any((p[ok] < 0) | (p[ok] > 1)):
            raise ValueError(f"p-values must lie in [0, 1], got {p[ok]}")
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out


# --------------------------------------------------------------------------- curves
def mean_band(curves, ci: float = 0.95, n_boot: int = 2_000, seed: int = 0) -> MeanBand:
    """Mean curve and percentile bootstrap band per column (rows = models resampled together).

    ``curves``: ``(models, columns)``, e.g. per-epoch test accuracy of each model of one group.
    NaN entries are ignored per column; each column needs one finite value.
    """
    arr = np.asarray(curves, dtype=float)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"curves must have shape (models, columns), got {arr.shape}")
    if np.isinf(arr).any():
        raise ValueError("curves contain inf")
    if not np.isfinite(arr).any(axis=0).all():
        raise ValueError("every column needs at least one finite value")
    _check(ci, n_boot, "n_boot")
    mean = np.nanmean(arr, axis=0)
    if arr.shape[0] < 2:
        return MeanBand(mean, mean.copy(), mean.copy(), 1, ci)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = _st.bootstrap((arr,), lambda x, axis: np.nanmean(x, axis=axis), axis=0, vectorized=True,
                            n_resamples=n_boot, method="percentile", confidence_level=ci,
                            rng=np.random.default_rng(seed), batch=_batch(arr.size))
        alpha = (1 - ci) / 2
        low, high = np.nanquantile(res.bootstrap_distribution, [alpha, 1 - alpha], axis=-1)
    return MeanBand(mean, low, high, int(arr.shape[0]), ci)


def auc_trapz(x, y, normalize: bool = False) -> np.ndarray | float:
    """Trapezoid-rule area under ``y(x)`` (:func:`scipy.integrate.trapezoid`).

    ``x``: ``(k,)`` strictly increasing; ``y``: ``(k,)`` or ``(rows, k)``. ``normalize=True``
    divides by ``x[-1] − x[0]`` (the curve's mean height, in ``y``'s units).
    """
    from scipy.integrate import trapezoid

    x = _as_1d(x, "x", min_len=2)
    y = np.asarray(y, dtype=float)
    if y.shape[-1] != x.size:
        raise ValueError(f"y's last axis ({y.shape[-1]}) must match x ({x.size})")
    if np.any(np.diff(x) <= 0):
        raise ValueError("x must be strictly increasing")
    area = trapezoid(y, x, axis=-1)
    if normalize:
        area = area / (x[-1] - x[0])
    return float(area) if np.ndim(area) == 0 else np.asarray(area)
