"""ROC analysis of membership scores, written with numpy (scikit-learn is not a dependency).

Convention: ``labels`` are 1 for members and 0 for non-members; a higher ``score`` means "more
likely a member". Attacks whose natural score points the other way (e.g. the loss) negate it.

* :func:`roc_curve` — every distinct threshold, ties handled as one step (as
  ``sklearn.metrics.roc_curve(drop_intermediate=False)``);
* :func:`roc_auc` — the area under it, equal to the Mann–Whitney probability
  ``P(score_member > score_nonmember) + ½ P(tie)``;
* :func:`folded_auc` — ``max(AUC, 1 − AUC)``, what the artifact of Pang et al. (2022) reports
  (``projects/membership.py``: "flipped to 1 − AUC if it falls below 0.5");
* :func:`folded_auc_null_mean` — the folded AUC expected **without any leakage**: folding
  makes it exceed 0.5 by about ``σ·√(2/π)`` (0.046 for 50 members vs 50 non-members, the
  artifact's sets), a bias of the same size as the paper's NAS − manual difference;
* :func:`tpr_at_fpr` — the largest true-positive rate among thresholds whose false-positive
  rate is at most the target (Carlini et al., "Membership Inference Attacks From First
  Principles", IEEE S&P 2022, recommend reporting this at 1 % and 0.1 %). With ``n`` non-members
  the attainable FPRs are multiples of ``1/n``: below ``1/n`` the only allowed threshold admits
  no false positive at all (see :func:`min_resolvable_fpr`);
* :func:`auc_p_value` — two-sided p-value of "AUC = 0.5" for one model (Mann–Whitney U, scipy).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["roc_curve", "roc_auc", "folded_auc", "folded_auc_null_mean", "tpr_at_fpr",
           "min_resolvable_fpr", "auc_p_value"]


def _check(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=float)
    if labels.ndim != 1 or scores.shape != labels.shape:
        raise ValueError(f"labels and scores must be 1-D of equal length, got {labels.shape} and {scores.shape}")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError(f"labels must be 0 (non-member) or 1 (member), got values {np.unique(labels)[:5]}")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite")
    if labels.sum() == 0 or labels.sum() == len(labels):
        raise ValueError("need at least one member (label 1) and one non-member (label 0)")
    return labels.astype(bool), scores


def roc_curve(labels, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)``: predict "member" when ``score >= threshold``.

    The first point is ``(0, 0)`` at threshold ``+inf``; one point per distinct score, in
    decreasing order, ending at ``(1, 1)``.
    """
    labels, scores = _check(labels, scores)
    order = np.argsort(-scores, kind="mergesort")
    s, lab = scores[order], labels[order]
    last_of_tie = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tp = np.cumsum(lab)[last_of_tie]
    fp = np.cumsum(~lab)[last_of_tie]
    tpr = np.r_[0.0, tp / labels.sum()]
    fpr = np.r_[0.0, fp / (~labels).sum()]
    return fpr, tpr, np.r_[np.inf, s[last_of_tie]]


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve (trapezoid over :func:`roc_curve`; ties count ½)."""
    fpr, tpr, _ = roc_curve(labels, scores)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def folded_auc(auc: float) -> float:
    """``max(auc, 1 − auc)`` — the artifact's convention (direction-free)."""
    return float(max(auc, 1.0 - auc))


def folded_auc_null_mean(n_members: int, n_nonmembers: int) -> float:
    """Expected :func:`folded_auc` when scores carry no membership information.

    Under the null the AUC is approximately normal with mean ½ and variance
    ``(n₁ + n₀ + 1) / (12 n₁ n₀)`` (Mann–Whitney, continuous scores), so
    ``E|AUC − ½| = σ √(2/π)``.
    """
    if n_members < 1 or n_nonmembers < 1:
        raise ValueError(f"need n_members, n_nonmembers >= 1, got {n_members}, {n_nonmembers}")
    sigma = math.sqrt((n_members + n_nonmembers + 1) / (12.0 * n_members * n_nonmembers))
    return 0.5 + sigma * math.sqrt(2.0 / math.pi)


def tpr_at_fpr(labels, scores, fpr_target: float) -> float:
    """Largest TPR over thresholds with FPR ≤ ``fpr_target`` (``0 ≤ fpr_target ≤ 1``)."""
    if not 0.0 <= fpr_target <= 1.0:
        raise ValueError(f"fpr_target must be in [0, 1], got {fpr_target!r}")
    fpr, tpr, _ = roc_curve(labels, scores)
    return float(tpr[fpr <= fpr_target + 1e-12].max())


def min_resolvable_fpr(n_nonmembers: int) -> float:
    """The smallest non-zero FPR ``n`` non-members can show (``1/n``)."""
    return 1.0 / n_nonmembers


def auc_interval(labels, scores, n_boot: int = 2000, ci: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of :func:`roc_auc`, members and non-members resampled separately
    (stratified, so every resample keeps both counts). The AUC of a resample is the Mann–Whitney
    statistic ``(rank sum of members − m(m+1)/2) / (m·n)`` with mid-ranks, equal to :func:`roc_auc`
    (ties ½). Returns ``(low, high)``."""
    from scipy.stats import rankdata

    labels, scores = _check(labels, scores)
    pos, neg = scores[labels], scores[~labels]
    m, n = len(pos), len(neg)
    rng = np.random.default_rng(seed)
    aucs = np.empty(n_boot)
    for b in range(n_boot):
        p, q = pos[rng.integers(0, m, m)], neg[rng.integers(0, n, n)]
        r = rankdata(np.concatenate([p, q]))
        aucs[b] = (r[:m].sum() - m * (m + 1) / 2) / (m * n)
    a = (1 - ci) / 2
    return float(np.quantile(aucs, a)), float(np.quantile(aucs, 1 - a))


def auc_p_value(labels, scores) -> float:
    """Two-sided p-value for AUC = ½: the Mann–Whitney U test (``scipy.stats.mannwhitneyu``,
    exact for small tie-free samples, else the tie-corrected normal approximation)."""
    from scipy.stats import mannwhitneyu

    labels, scores = _check(labels, scores)
    return float(mannwhitneyu(scores[labels], scores[~labels], alternative="two-sided").pvalue)
