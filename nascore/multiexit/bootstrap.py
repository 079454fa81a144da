"""Bootstrap over test images for early-exit statistics (ratios and differences of means).

Efficacy is a mean of per-image values (:func:`~.metrics.per_sample_efficacy`), so "relative
efficacy reduction" ``1 − η_attacked/η_clean`` is a **ratio of two paired means** over the same
images, and the chapter's summaries combine several such ratios (the smallest over backbones,
differences between attacks). :func:`paired_bootstrap` resamples the *images* — one set of
multinomial weights per replicate, shared by every series, because every backbone and attack is
evaluated on the same test images — and applies a statistic to the weighted means. The
percentile interval is returned as a :class:`nascore.report.DiffEstimate` (``n_a`` = images,
``n_b = 0``) so the verdict layer can judge it.

``nascore.report.bootstrap_ci`` resamples one 1-D series and applies a statistic to it; a ratio
of paired means over several series needs the joint resampling done here.
"""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from ..report.stats import DiffEstimate

Statistic = Callable[[Mapping[str, np.ndarray]], np.ndarray]


def paired_bootstrap(series: Mapping[str, np.ndarray], statistic: Statistic, n_boot: int = 10_000,
                     ci: float = 0.95, seed: int = 0, chunk: int = 500) -> DiffEstimate:
    """``statistic(means)`` with a percentile CI from resampling images jointly.

    Parameters
    ----------
    series : ``{name: (n,) array}`` of per-image values, all over the same ``n`` images in the
        same order (e.g. per-image efficacy of backbone b on clean and attacked inputs).
    statistic : maps ``{name: (b,) array of resampled means}`` to a ``(b,)`` array (vectorised
        over replicates); called once with the plain means (``b = 1``) for the point estimate.
    n_boot, ci, seed : replicates, coverage, seed of ``np.random.default_rng``.
    chunk : replicates materialised at once (memory ``chunk × n``).
    """
    if not series:
        raise ValueError("series must hold at least one per-image array")
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in series.items()}
    lengths = {v.shape for v in arrays.values()}
    if len(lengths) != 1 or len(next(iter(lengths))) != 1 or next(iter(lengths))[0] < 1:
        raise ValueError(f"every series must be 1-D over the same images, got shapes "
                         f"{ {k: v.shape for k, v in arrays.items()} }")
    if not 0 < ci < 1 or n_boot < 1:
        raise ValueError(f"need 0 < ci < 1 and n_boot >= 1, got ci={ci}, n_boot={n_boot}")
    n = next(iter(lengths))[0]
    names = list(arrays)
    stacked = np.stack([arrays[k] for k in names])                     # (s, n)
    point = float(np.asarray(statistic({k: np.array([arrays[k].mean()]) for k in names}))[0])
    rng = np.random.default_rng(seed)
    reps = []
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=b) / n  # (b, n), rows sum to 1
        means = weights @ stacked.T                                     # (b, s)
        reps.append(np.asarray(statistic({k: means[:, i] for i, k in enumerate(names)}), dtype=np.float64))
    reps = np.concatenate(reps)
    alpha = (1 - ci) / 2
    low, high = np.nanquantile(reps, [alpha, 1 - alpha])
    return DiffEstimate(point, float(low), float(high), int(n), 0, ci)


def relative_reduction(clean: np.ndarray, attacked: np.ndarray) -> np.ndarray:
    """``1 − attacked/clean`` elementwise (NaN where ``clean`` is 0)."""
    clean = np.asarray(clean, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(clean > 0, 1.0 - np.asarray(attacked, dtype=np.float64) / clean, np.nan)
