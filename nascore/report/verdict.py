"""Verdicts: the project's definition of "reproduced", computed from the data.

A verdict compares a measured :class:`~nascore.report.stats.DiffEstimate` (point estimate and
bootstrap CI, one value per model) and optionally a permutation p-value with a
:class:`~nascore.report.claims.Claim`. The rules are the project's definition, applied to every
chapter alike:

1. **Too few models.** If a group has fewer than ``min_n`` (default 2) values, the uncertainty
   cannot be estimated → ``"inconclusive at this scale"``.
2. **Direction** (claims with a ``direction``). Let ``null`` be the claim's no-effect value
   (0 for differences, 1 for ratios) and ``[low, high]`` the CI.

   * CI entirely on the claimed side of ``null`` (``low > null`` for ``"greater"``,
     ``high < null`` for ``"less"``) → ``"reproduced"``;
   * CI entirely on the opposite side → ``"not reproduced"`` (the data contradict the claim);
   * CI contains ``null`` → ``"inconclusive at this scale"``.
3. **p-value veto.** If ``p_value`` is given and ``p_value ≥ alpha``, neither ``"reproduced"`` nor
   ``"not reproduced"`` is declared: the label is ``"inconclusive at this scale"`` (the bootstrap
   CI of a handful of models under-covers; the permutation test is the check). Pass the
   **two-sided** permutation p-value (the default of ``permutation_test``) — a one-sided p in the
   claimed direction would also veto a genuine contradiction.
4. **Size** (claims with ``expected``). ``size_agrees`` is True if the CI overlaps the claimed
   interval ``[expected − tolerance, expected + tolerance]`` (a point if ``tolerance`` is None),
   False if it does not, None if the claim gives no size. The size never changes the label:
   ``"reproduced"`` means *the direction* is reproduced; a size mismatch is reported in
   ``reason`` and in ``size_agrees`` (a scorecard shows both).
5. **Informational claims** (``direction is None``, level statements such as "96–97 % clean
   accuracy"): ``"reproduced"`` if the CI overlaps the claimed band, else ``"not reproduced"``;
   the p-value does not apply.

Scale caveat: at reduced profiles the magnitudes (accuracy, GV, CE) differ from the paper's
full-scale setting; labels are therefore always read as "at this scale".
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from . import claims as _claims
from .claims import Claim
from .stats import DiffEstimate, bootstrap_ci, bootstrap_diff, permutation_test, sign_flip_test

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive at this scale"
LABELS: tuple[str, str, str] = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE)


@dataclass(frozen=True)
class Verdict:
    """Outcome of :func:`verdict`.

    ``label`` ∈ :data:`LABELS`; ``reason`` one readable sentence with the numbers;
    ``size_agrees`` (None when the claim has no size or too few models); ``direction``:
    ``"as claimed"``, ``"opposite"``, ``"unresolved"`` (CI contains the null) or ``"n/a"``.
    """

    label: str
    reason: str
    size_agrees: bool | None = None
    direction: str = "n/a"
    claim_id: str = ""

    def __str__(self) -> str:
        return f"{self.label}: {self.reason}"


def _num(x: float, signed: bool) -> str:
    return f"{x:+.3g}" if signed else f"{x:.3g}"


def _p(p: float) -> str:
    return f"{p:.2g}" if p >= 0.001 else f"{p:.1e}"


def _measured(claim: Claim, est: DiffEstimate, p_value: float | None, alpha: float) -> str:
    signed = not claim.informational and claim.null == 0
    text = (f"{claim.statistic} = {_num(est.estimate, signed)} "
            f"[{est.ci:.0%} CI {_num(est.low, signed)}, {_num(est.high, signed)}]")
    if est.n_b == 0:
        text += f" (n = {est.n_a}"
    else:
        ga, gb = claim.groups
        text += f" ({est.n_a} {ga or 'a'} vs {est.n_b} {gb or 'b'}"
    if p_value is not None:
        text += f", permutation p = {_p(p_value)}, α = {alpha:g}"
    return text + ")"


def _overlaps(est: DiffEstimate, band: tuple[float, float]) -> bool:
    return est.low <= band[1] and est.high >= band[0]


def verdict(claim: Claim | str, estimate: DiffEstimate, p_value: float | None = None,
            alpha: float = 0.05, min_n: int = 2) -> Verdict:
    """Judge ``estimate`` (and optionally a two-sided permutation ``p_value``) against ``claim``.

    ``claim`` may be an id of :mod:`nascore.report.claims`. ``estimate`` must be in the claim's
    statistic and units, signed as its ``comparison`` (e.g. NAS − manual). The rules are in this
    module's docstring; they are the project's definition of "reproduced".
    """
    claim = _claims.get(claim)
    if not isinstance(estimate, DiffEstimate):
        raise TypeError(f"estimate must be a DiffEstimate, got {type(estimate).__name__}")
    if not (math.isfinite(estimate.low) and math.isfinite(estimate.high)) or estimate.low > estimate.high:
        raise ValueError(f"invalid interval [{estimate.low}, {estimate.high}]")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if p_value is not None and not (0.0 <= p_value <= 1.0):
        raise ValueError(f"p_value must be in [0, 1], got {p_value}")

    measured = _measured(claim, estimate, p_value, alpha)
    unverified = " (the claim itself is unverified [M])" if claim.unverified else ""
    n_min = estimate.n_a if estimate.n_b == 0 else min(estimate.n_a, estimate.n_b)
    if n_min < min_n:
        return Verdict(INCONCLUSIVE,
                       f"{measured}: fewer than {min_n} values per group, so the uncertainty "
                       f"cannot be estimated{unverified}.",
                       None, "n/a", claim.id)

    band = claim.claimed_interval
    size_agrees = None if band is None else _overlaps(estimate, band)
    claimed = claim.claimed_text()

    if claim.informational:
        label = REPRODUCED if size_agrees else NOT_REPRODUCED
        where = "overlaps" if size_agrees else "does not overlap"
        return Verdict(label, f"{measured}: the CI {where} the claimed level {claimed} "
                              f"(informational claim, judged by level only){unverified}.",
                       size_agrees, "n/a", claim.id)

    null = claim.null
    above, below = estimate.low > null, estimate.high < null
    if (claim.direction == "greater" and above) or (claim.direction == "less" and below):
        direction = "as claimed"
    elif above or below:
        direction = "opposite"
    else:
        direction = "unresolved"
    side = "above" if above else "below" if below else "across"
    vetoed = p_value is not None and p_value >= alpha

    if size_agrees is None:
        size_txt = ""
    elif size_agrees:
        size_txt = f"; the claimed size {claimed} overlaps the CI"
    else:
        size_txt = f"; the size differs from the claimed {claimed} (no overlap with the CI)"

    if direction == "as claimed":
        if vetoed:
            label = INCONCLUSIVE
            core = (f"the CI lies {side} {null:g} as claimed, but p ≥ α, so the difference is "
                    f"not significant across models")
        else:
            label = REPRODUCED
            core = f"the CI lies {side} {null:g}, so the claimed direction ({claim.direction}) is reproduced"
    elif direction == "opposite":
        if vetoed:
            label = INCONCLUSIVE
            core = (f"the CI lies {side} {null:g}, opposite to the claimed direction "
                    f"({claim.direction}), but p ≥ α, so the contradiction is not significant")
        else:
            label = NOT_REPRODUCED
            core = (f"the CI lies {side} {null:g}, opposite to the claimed direction "
                    f"({claim.direction}): the data contradict the claim")
    else:
        label = INCONCLUSIVE
        core = f"the CI contains {null:g}, so the sign is not resolved at this scale"
        if p_value is not None and p_value < alpha:
            core += " (although p < α)"
    return Verdict(label, f"{measured}: {core}{size_txt}{unverified}.", size_agrees, direction, claim.id)


# --------------------------------------------------------------------------- convenience
def compare_groups(claim: Claim | str, a, b, *, stat: Callable = np.mean, n_boot: int = 10_000,
                   n_perm: int = 10_000, ci: float = 0.95, alpha: float = 0.05,
                   seed: int = 0) -> dict:
    """Two-group comparison in one call: bootstrap CI of ``stat(a) − stat(b)``, two-sided
    permutation p-value (difference of means), and the verdict.

    ``a``/``b``: one value per model, signed as the claim's comparison (a = NAS, b = manual;
    or a = mitigation, b = DARTS-V2). Returns a row for :func:`verdict_table`:
    ``{"claim", "estimate", "p_value", "alpha", "verdict"}``.
    """
    claim = _claims.get(claim)
    est = bootstrap_diff(a, b, stat=stat, n_boot=n_boot, ci=ci, seed=seed)
    p = permutation_test(a, b, n_perm=n_perm, alternative="two-sided", seed=seed)
    return {"claim": claim, "estimate": est, "p_value": p, "alpha": alpha,
            "verdict": verdict(claim, est, p, alpha)}


def compare_values(claim: Claim | str, values, *, stat: Callable = np.mean, n_boot: int = 10_000,
                   n_perm: int = 10_000, ci: float = 0.95, alpha: float = 0.05,
                   seed: int = 0) -> dict:
    """Single-group version of :func:`compare_groups` for per-model effects (paired differences,
    relative efficacy reductions, latency ratios): bootstrap CI of ``stat(values)`` and a
    two-sided sign-flip p-value against ``claim.null`` (none for informational claims).
    """
    claim = _claims.get(claim)
    est = bootstrap_ci(values, stat=stat, n_boot=n_boot, ci=ci, seed=seed)
    p = None if claim.informational else sign_flip_test(values, null=claim.null, n_perm=n_perm,
                                                        alternative="two-sided", seed=seed)
    return {"claim": claim, "estimate": est, "p_value": p, "alpha": alpha,
            "verdict": verdict(claim, est, p, alpha)}


_TABLE_COLUMNS = ["claim", "paper", "statistic", "comparison", "claimed", "estimate", "low", "high",
                  "ci", "n_a", "n_b", "p_value", "label", "size_agrees", "direction", "evidence",
                  "unverified", "source", "reason"]

TABLE_COLUMN_DESCRIPTIONS: Mapping[str, str] = {
    "claim": "claim id (nascore.report.claims)",
    "paper": "source paper key",
    "statistic": "what was measured, with units",
    "comparison": "which difference/ratio the statistic is (a − b)",
    "claimed": "the claim's size or direction, in the statistic's units",
    "estimate": "measured point estimate",
    "low": "lower end of the bootstrap CI",
    "high": "upper end of the bootstrap CI",
    "ci": "CI coverage",
    "n_a": "values (models) in group a",
    "n_b": "values (models) in group b (0 for single-group statistics)",
    "p_value": "two-sided permutation p-value (NaN if none)",
    "label": "verdict: reproduced / not reproduced / inconclusive at this scale",
    "size_agrees": "CI overlaps the claimed size interval (None if the claim gives no size)",
    "direction": "as claimed / opposite / unresolved / n/a",
    "evidence": "evidence tags of the claim",
    "unverified": "the claim rests on an unchecked [M] source",
    "source": "figure/table/section of the claim",
    "reason": "the verdict in one sentence with the numbers",
}


def verdict_table(rows: Iterable) -> pd.DataFrame:
    """Scorecard: one row per judged claim.

    Each element of ``rows`` is either a dict with keys ``"claim"`` (id or Claim),
    ``"estimate"`` (DiffEstimate), optional ``"p_value"``, ``"alpha"``, ``"verdict"`` (reused
    if present, e.g. from :func:`compare_groups`) and any extra keys (e.g. ``"setting"``,
    ``"profile"``), which become extra columns; or a tuple ``(claim, estimate[, p_value])``.
    Columns: see :data:`TABLE_COLUMN_DESCRIPTIONS`, then the extra keys.
    """
    out = []
    for row in rows:
        if isinstance(row, Mapping):
            row = dict(row)
            claim = _claims.get(row.pop("claim"))
            est = row.pop("estimate")
            p = row.pop("p_value", None)
            alpha = row.pop("alpha", 0.05)
            v = row.pop("verdict", None) or verdict(claim, est, p, alpha)
            extra = row
        else:
            claim_ref, est, *rest = row
            claim = _claims.get(claim_ref)
            p = rest[0] if rest else None
            v = verdict(claim, est, p)
            extra = {}
        out.append({
            "claim": claim.id, "paper": claim.paper, "statistic": claim.statistic,
            "comparison": claim.comparison, "claimed": claim.claimed_text(),
            "estimate": est.estimate, "low": est.low, "high": est.high, "ci": est.ci,
            "n_a": est.n_a, "n_b": est.n_b, "p_value": np.nan if p is None else float(p),
            "label": v.label, "size_agrees": v.size_agrees, "direction": v.direction,
            "evidence": ", ".join(claim.evidence), "unverified": claim.unverified,
            "source": claim.source, "reason": v.reason, **extra,
        })
    df = pd.DataFrame(out)
    if df.empty:
        return pd.DataFrame(columns=_TABLE_COLUMNS)
    return df
