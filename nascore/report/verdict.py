"""Verdicts: the project's definition of "reproduced", and the columns of a verdicts table.

Labels (:data:`LABELS`):

* **reproduced** — the bootstrap interval lies entirely on the claimed side of the claim's null
  and the two-sided p-value is below α (0.05);
* **not reproduced** — the interval lies entirely on the opposite side and p < α (the data
  contradict the claim);
* **inconclusive at this scale** — otherwise: the interval contains the null, p ≥ α, or a group
  has fewer than two units;
* **not measurable at this scale** — the claim's measurability gate failed (:mod:`.gates`: the
  attack was not learned, no membership signal, thieves no better than a constant predictor, exit
  thresholds outside the claim's range), or more than half the values sit at the statistic's floor
  or at its ceiling (e.g. 0 % attack success on most models, whether measured or zeroed by a
  selection rule): the primary cannot measure the claim, so no test decides it. Never "inconclusive".
* **Confound agreement** — a decisive label ("reproduced" / "not reproduced") of a family
  comparison also needs the size-adjusted estimate to agree where the families share common support
  (:mod:`.confounds`); where they disagree the label is "inconclusive at this scale", with the reason.
* Informational (level) claims: "reproduced" if the interval overlaps the claimed band, else
  "not reproduced"; no p-value.

Multiplicity. A chapter's table carries the raw p and the label computed from it ("before
multiplicity correction"). The scorecard (:func:`apply_holm`) Holm-adjusts the p-values of all
**primary** rows of a profile together and recomputes the label from the adjusted p: that
``final_label`` is the verdict. Exploratory rows keep their raw p and can never carry a claim.

Size. When the claim states a size in the primary statistic's units, the text says whether
the paper's range lies within, overlaps or misses the interval (column ``size``, in words). The
size never changes the label: "reproduced" means the direction is reproduced.
"""
from __future__ import annotations

import math
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from . import claims as _claims
from .claim_types import Claim
from .estimators import DiffEstimate, holm, smallest_attainable_p

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive at this scale"
NOT_MEASURABLE = "not measurable at this scale"
NOT_YET_MEASURED = "not yet measured"
LABELS: tuple[str, ...] = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_MEASURABLE)
ALPHA = 0.05

#: The columns of every ``verdicts.csv`` a chapter writes (``save_results(verdict_table(rows), ...)``),
#: in order. The scorecard reads these files; this is their one definition.
COLUMNS: Mapping[str, str] = {
    "claim": "claim id (nascore.report.claims)",
    "paper": "source paper key",
    "extension": "True if the claim is this project's extension, not the paper's",
    "statistic": "statistic key (nascore.report.statistics)",
    "description": "what one value of the statistic is, in words",
    "units": "units of estimate, low and high, in words",
    "scale": "linear / log10 / rank: how the values were compared",
    "role": "primary (decides the claim) or exploratory (cannot carry it)",
    "comparison": "which difference or level the estimate is, e.g. 'NAS − manual'",
    "subject": "the model or setting a mitigation/per-subject row is about ('' for family comparisons)",
    "setting": "free text from the chapter (rate, budget, ...)",
    "units_of_analysis": "what the n's count: models (seed-averaged), seeds, images (paired), ...",
    "about": "architecture, or 'these trained weights' for single-model comparisons on images",
    "n_a": "units in group a (NAS, mitigation, or the single group)",
    "n_b": "units in group b (manual, DARTS-V2; 0 for single-group statistics)",
    "estimate": "measured point estimate",
    "low": "lower end of the bootstrap CI",
    "high": "upper end of the bootstrap CI",
    "ci_level": "CI coverage",
    "ci_method": "bootstrap method actually used (BCa, percentile, ...)",
    "test": "the test that gave p_value",
    "p_value": "raw two-sided p-value (NaN: no test)",
    "adj_estimate": "difference adjusted for the confounds jointly (OLS, NaN: not estimable)",
    "adj_low": "lower end of the adjusted CI",
    "adj_high": "upper end of the adjusted CI",
    "adj_p": "p-value of the adjusted difference",
    "adj_label": "label the adjusted difference alone would get",
    "adj_covariates": "covariates fixed before training in the joint adjustment",
    "adj_support": "'overlap' (each family has ≥ 2 models in the other's covariate range: the adjusted "
                   "estimate is checked against the raw one) or 'extrapolation' (it decides nothing)",
    "gate": "the claim's measurability gate on this chapter's data, in words ('' = none beyond the bounds)",
    "seed_sd": "pooled within-architecture seed standard deviation (NaN: no architecture has 2 seeds)",
    "seed_models": "architectures with ≥ 2 seeds behind seed_sd",
    "claimed": "the claim's size or direction, in the primary statistic's units",
    "size": "the paper's size vs the interval, in words ('' where the units do not transfer)",
    "label": "verdict from the raw p-value (before multiplicity correction)",
    "holm_p": "Holm-adjusted p across the scorecard's primary rows (filled by the scorecard)",
    "final_label": "verdict from holm_p (primary rows; filled by the scorecard)",
    "text": "the verdict in words, with the numbers",
}


# --------------------------------------------------------------------------- the rule
def decide(claim: Claim | str, low: float, high: float, p_value: float | None, alpha: float = ALPHA) -> tuple[str, str]:
    """``(label, direction)`` from an interval and a p-value (the rule in the module docstring)."""
    claim = _claims.get(claim)
    if not (math.isfinite(low) and math.isfinite(high)):
        return INCONCLUSIVE, "n/a"
    if claim.informational:
        lo, hi = claim.claimed_interval
        return (REPRODUCED if low <= hi and high >= lo else NOT_REPRODUCED), "n/a"
    null = claim.null
    above, below = low > null, high < null
    if (claim.direction == "greater" and above) or (claim.direction == "less" and below):
        direction = "as claimed"
    elif above or below:
        direction = "opposite"
    else:
        direction = "unresolved"
    significant = p_value is None or (p_value == p_value and p_value < alpha)
    if direction == "as claimed" and significant:
        return REPRODUCED, direction
    if direction == "opposite" and significant:
        return NOT_REPRODUCED, direction
    return INCONCLUSIVE, direction


#: More than this fraction of values at a bound makes a comparison "not measurable at this scale".
BOUND_SHARE = 0.5


def not_measurable(values, floor: float | None, ceiling: float | None) -> str:
    """``"floor"``/``"ceiling"`` if more than :data:`BOUND_SHARE` of the finite values sit at that
    bound (a rule that zeroes most values cannot decide a claim), else ``""``."""
    from .gates import bound_count
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return ""
    for name, bound in (("floor", floor), ("ceiling", ceiling)):
        if bound_count(v, bound) > BOUND_SHARE * v.size:
            return name
    return ""


def bound_reason(values, stat) -> str:
    """The "not measurable" sentence for ``values`` of registered statistic ``stat`` ('' if fewer
    than half sit at a bound): how many of them sit at which bound."""
    from .gates import bound_count
    side = not_measurable(values, stat.floor, stat.ceiling)
    if not side:
        return ""
    limit = stat.floor if side == "floor" else stat.ceiling
    v = np.asarray(values, float)
    n = int(np.isfinite(v).sum())
    k = bound_count(v, limit)
    which = "every value sits" if k == n else f"{k} of {n} values sit"
    return (f"{which[0].upper()}{which[1:]} at the statistic's {side} ({stat.fmt(limit)} "
            f"{unit_words(stat.units)}".rstrip() + "): no difference can show at this scale, so no test decides it.")


def confound_agreement(label: str, adj_label: str, support: str) -> tuple[str, str]:
    """``(label, reason)``: a decisive ``label`` whose size-adjusted estimate, on common support
    (``support == "overlap"``), gets another label becomes "inconclusive at this scale"; otherwise
    ``label`` is returned unchanged with reason ''."""
    if support == "overlap" and adj_label and label in (REPRODUCED, NOT_REPRODUCED) and adj_label != label:
        how = ("does not confirm the raw one (" + label + "): its interval leaves the claimed difference open"
               if adj_label == INCONCLUSIVE else f"({adj_label}) contradicts the raw one ({label})")
        return INCONCLUSIVE, (f"The size-adjusted estimate {how}, and the families overlap in size, so by the "
                              f"agreement rule (Methods) the verdict is not decisive.")
    return label, ""


# --------------------------------------------------------------------------- words
def fmt_p(p: float | None) -> str:
    if p is None or p != p:
        return "—"
    return f"{p:.2g}" if p >= 0.001 else f"{p:.1e}"


def is_group_comparison(comparison: str) -> bool:
    """True for 'A − B' comparisons of two groups or models (not '1 − x/y', ratios or levels)."""
    a, sep, b = comparison.partition(" − ")
    return bool(sep) and a[:1].isalpha() and "/" not in comparison


def _side_words(claim: Claim, direction: str, groups: tuple[str, str] | None = None) -> str:
    a, b = groups or claim.groups
    if not is_group_comparison(claim.comparison):
        return {"greater": "above", "less": "below"}[direction] + f" {claim.null:g}"
    return f"{'higher' if direction == 'greater' else 'lower'} for {a} than for {b}"


def unit_words(units: str) -> str:
    """Units as written after a number ('' for dimensionless fractions and efficacies)."""
    return "" if units in ("fraction", "efficacy", "ratio") else units


def size_words(claim: Claim, stat, est: DiffEstimate, profile: str | None = None) -> str:
    """The paper's size against the interval, in words ('' when the claim gives none or the
    statistic is compared by rank)."""
    if claim.expected is None or stat.key != claim.primary or stat.scale == "rank" or not est.has_interval:
        return ""
    lo, hi = claim.claimed_interval
    units = unit_words(stat.difference_units if not claim.informational else stat.compared_units)
    paper = f"the paper's {claim.claimed_text()} {units}".rstrip()
    if est.low <= lo and hi <= est.high:
        out = f"within the interval: {paper} lies inside it"
    elif est.low <= hi and est.high >= lo:
        out = f"overlaps the interval: {paper} overlaps it"
    else:
        side = "above" if lo > est.high else "below"
        out = f"outside the interval: {paper} lies {side} it"
    if profile and profile != "paper":
        out += f" (a full-scale number; at the {profile} profile read it as orientation)"
    return out


def measured_text(claim: Claim, stat, est: DiffEstimate, p_value: float | None, test: str, n_text: str,
                  comparison: str | None = None) -> str:
    signed = not claim.informational and claim.null == 0
    units = unit_words(stat.compared_units if claim.informational else stat.difference_units)
    interval = (f" [{est.ci * 100:.0f} % CI {stat.fmt(est.low, signed)}, {stat.fmt(est.high, signed)}]"
                if est.has_interval else " (no interval: too few units)")
    comparison = comparison or claim.comparison
    lead = f"{comparison}, " if is_group_comparison(comparison) else ""
    value = f"{stat.fmt(est.estimate, signed)} {units}".rstrip()
    text = f"{lead}{stat.description}: {value}{interval}, {n_text}"
    if p_value is not None and p_value == p_value:
        text += f"; {test} p = {fmt_p(p_value)}"
    return text + "."


def reason_text(claim: Claim, label: str, direction: str, p_value: float | None, alpha: float,
                groups: tuple[str, str] | None = None, profile: str | None = None) -> str:
    if claim.informational:
        where = "overlaps" if label == REPRODUCED else "does not overlap"
        return f"The interval {where} the claimed level {claim.claimed_text()} (a level claim)."
    claimed = _side_words(claim, claim.direction, groups)
    if direction == "as claimed":
        core = f"The interval lies on the claimed side ({claimed})"
        core += "." if label == REPRODUCED else f", but p ≥ {alpha:g}: not significant."
    elif direction == "opposite":
        core = f"The interval lies on the opposite side to the claim ({claimed} was claimed)"
        if label != NOT_REPRODUCED:
            core += f", but p ≥ {alpha:g}: not significant."
        elif profile and profile != "paper":
            core += (f": not reproduced at this scale — the data of the `{profile}` profile contradict it; the "
                     f"full-scale claim itself is not tested here.")
        else:
            core += ": the data contradict it."
    elif direction == "unresolved":
        core = f"The interval contains {claim.null:g}: the sign is not resolved at this scale."
    else:
        core = "Too few units to estimate the uncertainty."
    if claim.manual_like:
        core += (f" Here a {'higher' if claim.manual_like == 'greater' else 'lower'} value means more like "
                 f"the manual models.")
    return core


def verdict_table(rows: Iterable[Mapping]) -> pd.DataFrame:
    """A verdicts table: one row per judged statistic, the :data:`COLUMNS` first, extra keys after.

    ``rows`` are the dicts the comparison functions return (:func:`~nascore.report.compare.compare_families`
    and friends); a row lacking the identifying columns raises ``ValueError``.
    """
    out = []
    for row in rows:
        if not isinstance(row, Mapping):
            raise TypeError(f"a verdict row is a dict from a nascore.report.compare_* function, got "
                            f"{type(row).__name__}")
        missing = [c for c in ("claim", "statistic", "role", "label") if c not in row]
        if missing:
            raise ValueError(f"row lacks {missing}; build rows with nascore.report.compare_* functions")
        out.append(dict(row))
    if not out:
        return pd.DataFrame(columns=list(COLUMNS))
    df = pd.DataFrame(out)
    for c in COLUMNS:
        if c not in df.columns:
            df[c] = np.nan if c in ("holm_p",) else ""
    extra = [c for c in df.columns if c not in COLUMNS]
    return df[list(COLUMNS) + extra]


# --------------------------------------------------------------------------- multiplicity
def apply_holm(table: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """Holm-adjust the p-values of the **primary** rows of ``table`` together and set
    ``holm_p`` and ``final_label`` (the verdict). Rows without a test (informational, not
    measurable, too few units) keep their label; exploratory rows keep the raw label and a
    NaN ``holm_p``. Raises if a claim has two primary rows for the same subject (a chapter
    must mark the non-pre-registered one exploratory)."""
    df = table.copy()
    prim = df["role"].eq("primary")
    dup = df[prim].groupby(["claim", df["subject"].fillna("")]).size()
    dup = dup[dup > 1]
    if len(dup):
        raise ValueError(f"more than one primary row for {list(dup.index)}; pass exploratory=True for the "
                         f"rows that are not the pre-registered setting")
    p = pd.to_numeric(df["p_value"], errors="coerce")
    tested = prim & p.notna() & df["label"].isin([REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE])
    df["holm_p"] = np.nan
    df.loc[tested, "holm_p"] = holm(p[tested].to_numpy())
    final = df["label"].astype(str).copy()
    for i in df.index[tested]:
        r = df.loc[i]
        if math.isfinite(float(r["low"])) and math.isfinite(float(r["high"])):
            final[i] = decide(r["claim"], float(r["low"]), float(r["high"]), float(r["holm_p"]), alpha)[0]
            final[i] = confound_agreement(final[i], _text(r.get("adj_label")), _text(r.get("adj_support")))[0]
    df["final_label"] = final
    m = int(tested.sum())
    for i in df.index[tested]:
        note = holm_reach_note(df.loc[i, "test"], df.loc[i, "n_a"], df.loc[i, "n_b"], m, alpha)
        if note:
            df.loc[i, "text"] = f"{df.loc[i, 'text']} {note}"
    return df


def _text(value) -> str:
    """A table cell as text: '' for missing values (NaN after a CSV round trip)."""
    return value if isinstance(value, str) else ""


def holm_reach_note(test: str, n_a, n_b, m: int, alpha: float = ALPHA) -> str:
    """A sentence when an exact test's smallest attainable p (its unit counts allow no smaller,
    whatever the data) exceeds Holm's first threshold ``alpha / m``: Holm is step-down, so the
    test can pass only after ``k`` others, where ``alpha / (m − k)`` reaches that p. '' otherwise."""
    try:
        floor = smallest_attainable_p(test, int(n_a), int(n_b) if n_b == n_b and n_b else 0)
    except (TypeError, ValueError):
        return ""
    if floor is None or floor <= alpha / m:
        return ""
    k = math.ceil(m - alpha / floor - 1e-12)
    units = f"{int(n_a)} vs {int(n_b)}" if n_b == n_b and n_b else f"{int(n_a)}"
    if k >= m:
        return (f"Reach: with {units} units the smallest attainable p is {floor:.2g}, above α = {alpha:g}; this "
                f"test cannot pass at this scale whatever the data.")
    return (f"Reach: with {units} units the smallest attainable p is {floor:.2g}, above Holm's first threshold "
            f"{alpha:g}/{m} = {alpha / m:.2g}; this test can pass the correction only if at least {k} of the other "
            f"{m - 1} primary tests pass first (Holm is step-down), so at this scale an 'inconclusive' here is "
            f"largely structural.")
