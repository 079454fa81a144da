"""The comparisons every chapter uses; each returns one verdicts-table row (a dict, :data:`COLUMNS`).

=================================  =====================================================================
:func:`compare_families`           NAS − manual over models (seed-averaged), with confound adjustment
:func:`compare_to_baseline`        mitigation − DARTS-V2 with seeds as units (≥ 2 seeds each)
:func:`compare_paired`             two single models on the same images (McNemar for 0/1 outcomes):
                                   about these trained weights, not the architecture
:func:`compare_values`             one group of values against the claim's null (or level band)
:func:`compare_extreme`            the smallest (largest) per-group statistic, bootstrap within groups
                                   (e.g. DeepSloth: the least-slowed backbone, images resampled)
=================================  =====================================================================

Common keyword arguments: ``seed`` (all resampling), ``ci`` (0.95), ``alpha`` (0.05),
``setting`` (free text shown with the row), ``exploratory=True`` (demote a primary statistic
shown for a non-pre-registered setting; nothing can promote a row), ``profile`` (words in the
size sentence). The statistic's registry entry decides the scale (linear/log10/rank), the
units in the text and the floor/ceiling of the "not measurable" rule.
"""
from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from . import claims as _claims
from .confounds import CONFOUNDS, MIN_RESIDUAL_DF, Adjusted, adjust, confound_columns, confound_values, pooled_seed_sd
from .estimators import (N_PERM, DiffEstimate, bootstrap_ci, bootstrap_diff, bootstrap_extreme, bootstrap_p,
                         mcnemar_test, n_splits, permutation_test, sign_flip_test)
from .statistics import role as _role
from .statistics import statistic as _statistic
from .verdict import (ALPHA, INCONCLUSIVE, NOT_MEASURABLE, decide, fmt_p, measured_text, not_measurable,
                      reason_text, size_words, unit_words)

WEIGHTS = "these trained weights (one model each, the same images), not the architecture"


def _row(claim, stat, role, est: DiffEstimate, p, test, n_text, *, units_of_analysis, about="architecture",
         subject="", setting="", comparison=None, alpha=ALPHA, min_n=2, bound="", profile=None, extra="",
         adjusted: dict | None = None, seed_sd=(math.nan, 0), incomparable: str = "") -> dict:
    """One verdict row. ``bound`` ("floor"/"ceiling") or ``incomparable`` (why this scale cannot be
    compared with the claim) make it "not measurable at this scale", with that reason and no size."""
    n_min = est.n_a if est.n_b == 0 else min(est.n_a, est.n_b)
    if incomparable:
        label, direction, reason = NOT_MEASURABLE, "n/a", incomparable
    elif bound:
        label, direction = NOT_MEASURABLE, "n/a"
        p, limit = math.nan, stat.floor if bound == "floor" else stat.ceiling
        reason = (f"Every value sits at the statistic's {bound} ({stat.fmt(limit)} {unit_words(stat.units)}".rstrip()
                  + "): no difference can show at this scale, so no test is run.")
    elif n_min < min_n or not est.has_interval:
        label, direction = INCONCLUSIVE, "n/a"
        reason = f"Fewer than {min_n} units in a group: the uncertainty cannot be estimated."
    else:
        label, direction = decide(claim, est.low, est.high, p, alpha)
        groups = tuple(comparison.split(" − ")) if comparison and " − " in comparison else None
        reason = reason_text(claim, label, direction, p, alpha, groups)
    size = "" if bound or incomparable else size_words(claim, stat, est, profile)
    text = measured_text(claim, stat, est, p, test, n_text, comparison) + " " + reason
    if size:
        text += f" Size: {size}."
    if role == "exploratory":
        text += " Exploratory: this statistic cannot carry the claim."
    if claim.unverified:
        text += " The claim itself is unverified [M]."
    text += extra
    adj = (adjusted or {}).get("joint")
    return {
        "claim": claim.id, "paper": claim.paper, "extension": claim.extension, "statistic": stat.key,
        "description": stat.description, "units": stat.compared_units if claim.informational else stat.difference_units,
        "scale": stat.scale, "role": role, "comparison": comparison or claim.comparison, "subject": subject,
        "setting": setting, "units_of_analysis": units_of_analysis, "about": about, "n_a": est.n_a, "n_b": est.n_b,
        "estimate": est.estimate, "low": est.low, "high": est.high, "ci_level": est.ci, "ci_method": est.method,
        "test": test if p == p and p is not None else "", "p_value": math.nan if p is None else float(p),
        "adj_estimate": adj.estimate if adj else math.nan, "adj_low": adj.low if adj else math.nan,
        "adj_high": adj.high if adj else math.nan, "adj_p": adj.p_value if adj else math.nan,
        "adj_label": (decide(claim, adj.low, adj.high, adj.p_value, alpha)[0]
                      if adj and math.isfinite(adj.low) and not bound else ""),
        "adj_covariates": adj.covariate_words if adj else "", "seed_sd": seed_sd[0], "seed_models": seed_sd[1],
        "claimed": claim.claimed_text(), "size": size, "label": label, "holm_p": math.nan, "final_label": "",
        "text": text,
    }


def _claim_and_role(statistic, claim, subject="", exploratory=False):
    stat = _statistic(statistic)
    c = _claims.get(claim if claim is not None else stat.claim)
    r = _role(c, stat, subject)
    return stat, c, ("exploratory" if exploratory else r)


def _transform(values: np.ndarray, stat) -> np.ndarray:
    if stat.scale == "log10":
        if np.any(values <= 0):
            raise ValueError(f"statistic {stat.key!r} is compared on a log10 scale but column "
                             f"{stat.source_column!r} has values ≤ 0: {values[values <= 0]}")
        return np.log10(values)
    return values


def _perm_name(n_a, n_b, n_perm, rank=False) -> str:
    base = "Wilcoxon–Mann–Whitney (permutation on ranks)" if rank else "permutation"
    kind = "exact" if n_splits(n_a, n_b) <= n_perm else f"Monte-Carlo ({n_perm:,} relabellings)"
    return f"{kind} {base}"


# --------------------------------------------------------------------------- families
def _adjust_text(claim, stat, raw_label: str, adjusted: dict, ci: float, alpha: float) -> str:
    joint = adjusted.get("joint")
    units = stat.difference_units
    parts = []

    def one(a: Adjusted) -> str:
        if not math.isfinite(a.estimate):
            return "not estimable (NAS is collinear with the confounds)"
        return (f"{stat.fmt(a.estimate, True)} {unit_words(units)} [{ci * 100:.0f} % CI {stat.fmt(a.low, True)}, "
                f"{stat.fmt(a.high, True)}], p = {fmt_p(a.p_value)}")

    if joint is not None:
        adj_label = decide(claim, joint.low, joint.high, joint.p_value, alpha)[0] if math.isfinite(joint.low) else ""
        parts.append(f" Adjusted for {joint.covariate_words} together (OLS over {joint.n} models): {one(joint)}")
        if adj_label and adj_label != raw_label:
            parts.append(f" — {adj_label}: the raw and the adjusted verdicts disagree.")
        elif adj_label:
            parts.append(" — the same verdict as unadjusted.")
        if joint.vif > 10:
            parts.append(f" NAS is nearly collinear with the confounds (VIF {joint.vif:.0f}): the data cannot "
                         f"separate the family from them.")
    alone = [(c, a) for c, a in adjusted.items() if c != "joint" and a is not None]
    if joint is None:
        k = len(adjusted) - 1
        need = f"{3 + MIN_RESIDUAL_DF} models for one confound, {2 + k + MIN_RESIDUAL_DF} for all {k}"
        parts.append(f" Too few models for the joint confound adjustment (it needs {need})." if alone else
                     f" Too few models to adjust for confounds (it needs {need}).")
    if alone:
        each = "; ".join(f"{a.covariate_words or c}: {one(a)}" for c, a in alone)
        parts.append(f" Each confound alone: {each}.")
        flips = [a.covariate_words for c, a in alone if math.isfinite(a.low)
                 and decide(claim, a.low, a.high, a.p_value, alpha)[0] != raw_label]
        if flips and joint is None:
            parts.append(f" Adjusting for {', '.join(flips)} alone changes the verdict.")
    return "".join(parts)


def compare_families(df: pd.DataFrame, statistic: str, claim: str | None = None, *,
                     confounds: Sequence[str] = CONFOUNDS, groups: tuple[str, str] = ("nas", "manual"),
                     seed: int = 0, n_boot: int = 10_000, n_perm: int = N_PERM, ci: float = 0.95,
                     alpha: float = ALPHA, method: str = "BCa", setting: str = "", exploratory: bool = False,
                     profile: str | None = None) -> dict:
    """NAS − manual difference of a registered statistic, models as units.

    ``df``: one row per (model, seed) with ``model``, ``family`` (derived from the model registry
    if absent), optionally ``seed``, the statistic's column (``statistic(statistic).source_column``),
    and the confound columns (``params`` count for ``log10_params``, ``clean_acc`` %,
    ``train_loss``; any other column name works as a confound, e.g. ``gen_gap``).
    :func:`nascore.report.confounds.add_confounds` merges them from zoo entries; ``confounds=()``
    skips the adjustment (the row says so).

    Seeds are averaged per model (on the comparison scale: log10 before averaging; ranks are taken
    of the seed-averaged values). Returns the row: difference of family means with a scipy
    bootstrap CI, two-sided permutation p (exact when feasible), label before multiplicity
    correction, the confound-adjusted difference (joint and each confound alone) and the
    within-architecture seed spread where some architectures have ≥ 2 seeds.
    """
    stat, claim, role = _claim_and_role(statistic, claim, "", exploratory)
    if claim.comparison != "NAS − manual":
        raise ValueError(f"claim {claim.id!r} compares {claim.comparison!r}; compare_families is for NAS − manual")
    col = stat.source_column
    need = ["model", col] + confound_columns(confounds)
    missing = [c for c in need if c not in df.columns]
    if missing:
        hint = (" — merge them with nascore.report.add_confounds(df, entries), or pass confounds=() to skip the "
                "adjustment" if set(missing) & set(confound_columns(confounds)) else "")
        raise ValueError(f"df lacks column(s) {missing} needed for {stat.key!r}{hint}; columns: {list(df.columns)}")
    data = df.copy()
    if "family" not in data.columns:
        from ..models import family
        data["family"] = data["model"].map(family)
    if "seed" not in data.columns:
        data["seed"] = 0
    data = data[data["family"].isin(groups)]
    dropped = int(data[col].isna().sum())
    data = data[data[col].notna()]
    raw = data[col].to_numpy(float)
    bound = not_measurable(raw, stat.floor, stat.ceiling)
    data["_v"] = raw if stat.scale == "rank" else _transform(raw, stat)
    agg = {"_v": "mean", "family": "first", **{c: "mean" for c in confound_columns(confounds)}}
    units = data.groupby("model").agg(agg)
    if stat.scale == "rank":
        units["_v"] = rankdata(units["_v"].to_numpy())
    a = units.loc[units.family == groups[0], "_v"].to_numpy(float)
    b = units.loc[units.family == groups[1], "_v"].to_numpy(float)
    if a.size == 0 or b.size == 0:
        raise ValueError(f"need models of both families {groups}; found {units.family.value_counts().to_dict()}")
    est = bootstrap_diff(a, b, n_boot=n_boot, ci=ci, seed=seed, method=method)
    p = None if bound or min(a.size, b.size) < 2 else permutation_test(a, b, n_perm, "two-sided", seed)
    test = _perm_name(a.size, b.size, n_perm, stat.scale == "rank")
    seeds = data.groupby("model")["seed"].nunique()
    seed_txt = ("one seed each" if seeds.max() == 1 else f"{seeds.max()} seeds each, averaged"
                if seeds.min() == seeds.max() else f"seed-averaged, {seeds.min()}–{seeds.max()} seeds")
    n_text = f"over {a.size} {claim.groups[0]} and {b.size} {claim.groups[1]} models ({seed_txt})"
    if dropped:
        n_text += f"; {dropped} row(s) without a value left out"
    spread = pooled_seed_sd(data, "_v") if stat.scale != "rank" else (math.nan, 0)
    adjusted: dict = {}
    extra = ""
    if confounds and not bound and min(a.size, b.size) >= 2:
        covars = confound_values(units, confounds)
        adjusted = adjust(units["_v"].to_numpy(float), (units.family == groups[0]).to_numpy(), covars, ci)
        raw_label = decide(claim, est.low, est.high, p, alpha)[0] if est.has_interval else INCONCLUSIVE
        extra = _adjust_text(claim, stat, raw_label, adjusted, ci, alpha)
    elif not confounds:
        extra = " Not adjusted for confounds (none given)."
    if spread[1]:
        extra += (f" Seed-to-seed spread within an architecture: SD {stat.fmt(spread[0])} "
                  f"{unit_words(stat.difference_units)} "
                  f"({spread[1]} architectures with ≥ 2 seeds), next to the family difference "
                  f"{stat.fmt(est.estimate, True)}.")
    return _row(claim, stat, role, est, p, test, n_text, units_of_analysis="models (seed-averaged)",
                setting=setting, alpha=alpha, bound=bound, profile=profile, extra=extra, adjusted=adjusted,
                seed_sd=spread)


# --------------------------------------------------------------------------- mitigations
def compare_to_baseline(df: pd.DataFrame, statistic: str, claim: str, subject: str, *, baseline: str = "darts",
                        unit: str = "seed", seed: int = 0, n_boot: int = 10_000, n_perm: int = N_PERM,
                        ci: float = 0.95, alpha: float = ALPHA, method: str = "BCa", setting: str = "",
                        exploratory: bool = False, profile: str | None = None) -> dict:
    """``subject − baseline`` (e.g. ``diy_deep − darts``) with the ``unit`` column (training seeds,
    or initialisation seeds) as units: needs ≥ 2 units per model. With one trained model each,
    use :func:`compare_paired` on per-image outcomes instead."""
    stat, claim, role = _claim_and_role(statistic, claim, subject, exploratory)
    col = stat.source_column
    missing = [c for c in ("model", unit, col) if c not in df.columns]
    if missing:
        raise ValueError(f"df lacks column(s) {missing}; columns: {list(df.columns)}")
    vals = {}
    for name in (subject, baseline):
        v = df.loc[df["model"] == name].dropna(subset=[col]).groupby(unit)[col].mean().to_numpy(float)
        if v.size < 2:
            raise ValueError(f"{name!r} has {v.size} {unit}(s) with a value; seeds as units need ≥ 2 — with single "
                             f"models use compare_paired on per-image outcomes")
        vals[name] = v
    raw = np.concatenate(list(vals.values()))
    bound = not_measurable(raw, stat.floor, stat.ceiling)
    if stat.scale == "rank":
        a, b = np.split(rankdata(raw), [vals[subject].size])
    else:
        a, b = _transform(vals[subject], stat), _transform(vals[baseline], stat)
    est = bootstrap_diff(a, b, n_boot=n_boot, ci=ci, seed=seed, method=method)
    p = None if bound else permutation_test(a, b, n_perm, "two-sided", seed)
    n_text = f"over {a.size} vs {b.size} {unit}s"
    return _row(claim, stat, role, est, p, _perm_name(a.size, b.size, n_perm, stat.scale == "rank"), n_text,
                units_of_analysis=f"{unit}s", about=f"architecture ({unit}s as units)", subject=subject,
                setting=setting, comparison=f"{subject} − {baseline}", alpha=alpha, bound=bound, profile=profile)


def compare_paired(outcome_a, outcome_b, statistic: str, claim: str, subject: str, *, baseline: str = "darts",
                   seed: int = 0, n_boot: int = 10_000, n_perm: int = N_PERM, ci: float = 0.95,
                   alpha: float = ALPHA, setting: str = "", exploratory: bool = False,
                   profile: str | None = None) -> dict:
    """Two single trained models on the **same** images: ``outcome_a`` (subject) and
    ``outcome_b`` (baseline), one value per image in the same order.

    0/1 outcomes (e.g. attack success): McNemar's test (exact binomial below 25 discordant pairs),
    estimate = difference of rates (×100 for percent statistics), paired bootstrap CI.
    Continuous outcomes: mean paired difference, paired bootstrap CI, sign-flip permutation p.
    The row is labelled as about these trained weights, not the architecture.
    """
    stat, claim, role = _claim_and_role(statistic, claim, subject, exploratory)
    a, b = np.asarray(outcome_a, float).ravel(), np.asarray(outcome_b, float).ravel()
    if a.shape != b.shape or a.size < 2:
        raise ValueError(f"outcome_a and outcome_b must be per-image values on the same images, "
                         f"got {a.shape}, {b.shape}")
    binary = bool(np.isin(a, (0, 1)).all() and np.isin(b, (0, 1)).all())
    scale = 100.0 if binary and stat.units == "percent" else 1.0
    d = scale * (a - b)
    bound = not_measurable(scale * np.concatenate([a, b]), stat.floor, stat.ceiling)
    est = bootstrap_ci(d, n_boot=n_boot, ci=ci, seed=seed)
    est = DiffEstimate(est.estimate, est.low, est.high, a.size, b.size, ci, est.method + ", images resampled in pairs")
    if binary:
        m = mcnemar_test(a, b)
        p = None if bound else m.p_value
        test = "McNemar exact binomial" if m.exact else "McNemar χ² (continuity-corrected)"
        n_text = f"on the same {a.size} images (discordant: {m.only_a} only {subject}, {m.only_b} only {baseline})"
    else:
        p = None if bound else sign_flip_test(d, 0.0, n_perm, "two-sided", seed)
        test = "paired sign-flip permutation"
        n_text = f"on the same {a.size} images (paired)"
    return _row(claim, stat, role, est, p, test, n_text, units_of_analysis="test images (paired)", about=WEIGHTS,
                subject=subject, setting=setting, comparison=f"{subject} − {baseline}", alpha=alpha, bound=bound,
                profile=profile, extra=f" This is about {WEIGHTS}.")


# --------------------------------------------------------------------------- single groups
def compare_values(claim, values, *, statistic: str | None = None, stat: Callable = np.mean, n_boot: int = 10_000,
                   n_perm: int = N_PERM, ci: float = 0.95, alpha: float = ALPHA, seed: int = 0,
                   method: str = "BCa", units_of_analysis: str = "models", subject: str = "", setting: str = "",
                   exploratory: bool = False, profile: str | None = None, incomparable: str = "") -> dict:
    """One group of values (per model, per backbone, per image) against the claim's null —
    bootstrap CI of ``stat(values)``, two-sided sign-flip p of ``mean(values) − null`` — or, for
    informational claims, against the claimed level band (no p). ``statistic`` defaults to the
    claim's primary. ``incomparable``: why these values cannot be read against the claim at this
    scale (e.g. a full-size anchor); the row is then "not measurable at this scale"."""
    c = _claims.get(claim)
    st_, c, role = _claim_and_role(statistic or c.primary, c, subject, exploratory)
    x = np.asarray(values, float).ravel()
    bound = "" if c.informational else not_measurable(x, st_.floor, st_.ceiling)
    x = _transform(x, st_) if st_.scale == "log10" else x
    est = bootstrap_ci(x, stat=stat, n_boot=n_boot, ci=ci, seed=seed, method=method)
    p = None if c.informational or bound or x.size < 2 else sign_flip_test(x, c.null, n_perm, "two-sided", seed)
    kind = "exact" if 2 ** x.size <= n_perm else f"Monte-Carlo ({n_perm:,} sign patterns)"
    return _row(c, st_, role, est, p, f"{kind} sign-flip permutation", f"n = {x.size} {units_of_analysis}",
                units_of_analysis=units_of_analysis, subject=subject, setting=setting, alpha=alpha, bound=bound,
                profile=profile, min_n=2, incomparable=incomparable)


def compare_extreme(groups: Mapping[str, np.ndarray], statistic: str, claim: str | None = None, *,
                    aggregate: Callable = np.mean, which: str | None = None, n_boot: int = 2_000,
                    ci: float = 0.95, alpha: float = ALPHA, seed: int = 0, setting: str = "",
                    exploratory: bool = False, profile: str | None = None) -> dict:
    """The smallest (``which="min"``, default for "greater" claims) or largest group value, e.g.
    the least-slowed backbone's efficacy reduction. ``groups``: ``{backbone: per-image data}``;
    ``aggregate(rows) -> float`` turns one group's (resampled) rows into its value (default:
    the mean). Images are resampled within each backbone; p inverts the percentile interval
    at the claim's null (:func:`nascore.report.estimators.bootstrap_p`)."""
    stat, c, role = _claim_and_role(statistic, claim, "", exploratory)
    which = which or ("max" if c.direction == "less" else "min")
    est, per_group, dist = bootstrap_extreme(groups, aggregate, which, n_boot, ci, seed)
    p = None if c.informational else bootstrap_p(dist, c.null)
    per = ", ".join(f"{k} {stat.fmt(v)}" for k, v in per_group.items())
    n_text = (f"the {'smallest' if which == 'min' else 'largest'} of {len(per_group)} groups ({per}); "
              f"≥ {est.n_a} images per group resampled within groups")
    row = _row(c, stat, role, est, p, "bootstrap (percentile inversion)", n_text,
               units_of_analysis=f"test images per group (the fewest), {len(per_group)} groups", setting=setting,
               alpha=alpha, profile=profile)
    return {**row, "n_b": 0}  # one extreme over groups, not two groups compared: n = the fewest images
