"""Early-exit metrics: the early-exit capacity (EEC) curve, efficacy η, thresholds for a
relative-accuracy-drop budget (protocol ``deepsloth.md`` §2, facts 6–7).

**EEC curve.** With normalised exit costs ``c_1 ≤ … ≤ c_{K+1} = 1`` and ``F_k`` the fraction of
samples that exited at or before exit ``k``, the curve joins ``(0,0), (c_1,F_1), …, (1,1)``.

**Efficacy** ``η`` is its area by the trapezoid rule (the authors' ``np.trapz``):
``η = Σ_k (c_k − c_{k−1})(F_k + F_{k−1})/2`` with ``c_0 = F_0 = 0``. Because the area is linear in
the exit indicators it is the mean over samples of a per-sample value: a sample that exits at
exit ``j`` contributes ``η_i = 1 − (c_j + c_{j−1})/2`` (:func:`per_sample_efficacy`), so
``η = mean(η_i)`` and a bootstrap over images can resample ``η_i``. Everything exits at the
first IC ⇒ ``η = 1 − c_1/2``; nothing exits early ⇒ ``η = (1 − c_K)/2``.

**Threshold.** On the threshold grid ``q ∈ {0.05, 0.10, …, 0.95}``, the smallest ``q`` whose
early-exit accuracy is strictly greater than ``(1 − r)·`` the final exit's accuracy, for a
relative-accuracy-drop budget ``r`` (RAD<5 %: ``r = 0.05``; RAD<15 %: ``r = 0.15``); chosen on
clean data and then frozen for attacked data.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .inference import ExitRecord, early_exit_accuracy, exit_indices

THRESHOLD_GRID = tuple(round(0.05 * i, 2) for i in range(1, 20))
"""q ∈ {0.05, 0.10, …, 0.95} (19 values, protocol §2)."""
RAD_BUDGETS = (0.05, 0.15)


def _check_costs(costs) -> np.ndarray:
    c = np.asarray(costs, dtype=np.float64)
    if c.ndim != 1 or c.size < 2:
        raise ValueError(f"costs must be 1-D with one entry per exit (>= 2), got shape {c.shape}")
    if not (np.all(np.diff(c) >= 0) and c[0] > 0 and abs(c[-1] - 1.0) < 1e-9):
        raise ValueError(f"costs must be normalised exit costs: positive, non-decreasing, ending at 1; got {c}")
    return c


def _check_exits(exits, n_exits: int) -> np.ndarray:
    e = np.asarray(exits)
    if e.ndim != 1 or e.size == 0 or not np.issubdtype(e.dtype, np.integer):
        raise ValueError(f"exits must be a non-empty 1-D integer array, got {e.dtype} {e.shape}")
    if e.min() < 0 or e.max() >= n_exits:
        raise ValueError(f"exit indices must lie in [0, {n_exits - 1}], got range [{e.min()}, {e.max()}]")
    return e


def per_sample_efficacy(exits, costs) -> np.ndarray:
    """``η_i = 1 − (c_j + c_{j−1})/2`` for a sample leaving at 0-based exit ``j`` ``(N,)``."""
    c = _check_costs(costs)
    e = _check_exits(exits, c.size)
    prev = np.concatenate([[0.0], c[:-1]])
    return 1.0 - (c[e] + prev[e]) / 2.0


def eec_curve(exits, costs) -> tuple[np.ndarray, np.ndarray]:
    """The early-exit capacity curve: ``(x, y)`` of length ``K + 2`` from ``(0, 0)`` to ``(1, 1)``;
    ``x`` the normalised exit costs, ``y`` the cumulative fraction of samples that have exited."""
    c = _check_costs(costs)
    e = _check_exits(exits, c.size)
    frac = np.bincount(e, minlength=c.size) / e.size
    return np.concatenate([[0.0], c]), np.concatenate([[0.0], np.cumsum(frac)])


def efficacy(exits, costs) -> float:
    """Area under the EEC curve by the trapezoid rule (η, in [0, 1])."""
    x, y = eec_curve(exits, costs)
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


def threshold_table(record: ExitRecord, labels, costs, grid=THRESHOLD_GRID) -> pd.DataFrame:
    """For every ``q`` of ``grid``: early-exit accuracy, efficacy and mean normalised cost."""
    c = _check_costs(costs)
    rows = []
    for q in grid:
        e = exit_indices(record, q)
        rows.append({"q": float(q), "ee_acc": early_exit_accuracy(record, labels, e),
                     "efficacy": efficacy(e, c), "mean_cost": float(c[e].mean())})
    return pd.DataFrame(rows)


def choose_threshold(table: pd.DataFrame, final_acc: float, rad: float) -> float:
    """Smallest ``q`` of ``table`` with ``ee_acc > (1 − rad)·final_acc``; ``inf`` (no early
    exit) when no grid value meets the budget."""
    if not 0.0 <= rad < 1.0:
        raise ValueError(f"rad (relative accuracy drop) must be in [0, 1), got {rad!r}")
    ok = table[table.ee_acc > (1.0 - rad) * final_acc].sort_values("q")
    return float(ok.q.iloc[0]) if len(ok) else math.inf


def exit_accuracies(record: ExitRecord, labels) -> np.ndarray:
    """Accuracy of every exit on its own (every sample forced through it), ``(K+1,)``."""
    return (record.prediction == np.asarray(labels)[:, None]).mean(axis=0)
