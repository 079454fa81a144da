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
size sentence), ``gate`` (the claim's :class:`~nascore.report.gates.GateResult` on the chapter's
data: failed = "not measurable at this scale"). The statistic's registry entry decides the scale (linear/log10/rank), the
units in the text and the floor/ceiling of the "not measurable" rule.
"""
from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from . import claims as _claims
from .confounds import (COVARIATES, MEDIATORS, MIN_RESIDUAL_DF, MIN_SUPPORT, SIZE_VARIANT_FLOOR, Adjusted, adjust,
                        common_support, variants_below_floor,
                        confound_columns, confound_values, pooled_seed_sd)
from .estimators import (N_PERM, DiffEstimate, bootstrap_ci, bootstrap_diff, bootstrap_extreme, bootstrap_extreme_seeds, bootstrap_p,
                         mcnemar_test, n_splits, permutation_test, sign_flip_test, smallest_attainable_p)
from .statistics import role as _role
from .statistics import statistic as _statistic
from .verdict import (ALPHA, INCONCLUSIVE, NOT_MEASURABLE, bound_reason, confound_agreement, decide, fmt_p,
                      measured_text, reason_text, size_words, unit_words)

WEIGHTS = "these trained weights (one model each, the same images), not the architecture"


def _row(claim, stat, role, est: DiffEstimate, p, test, n_text, *, units_of_analysis, about="architecture",
         subject="", setting="", comparison=None, alpha=ALPHA, min_n=2, bound="", profile=None, extra="",
         adjusted: dict | None = None, support: str = "", seed_sd=(math.nan, 0), incomparable: str = "",
         gate=None) -> dict:
    """One verdict row. A failed ``gate`` (:class:`nascore.report.gates.GateResult`), ``bound`` (the
    :func:`~nascore.report.verdict.bound_reason` sentence: most values at a floor or ceiling) or
    ``incomparable`` (why this scale cannot be compared with the claim) make it "not measurable at
    this scale", with that reason and no size. ``adjusted``/``support``: the size adjustment and its
    common support ('overlap' / 'extrapolation'); on overlap a decisive label needs it to agree."""
    n_min = est.n_a if est.n_b == 0 else min(est.n_a, est.n_b)
    adj = (adjusted or {}).get("joint")
    adj_label = (decide(claim, adj.low, adj.high, adj.p_value, alpha)[0]
                 if adj and math.isfinite(adj.low) and not bound else "")
    ungated = (f"Its pre-registered gate ({', '.join(claim.gates)}) was not computed from this chapter's data, so "
               f"the statistic cannot be read as measuring the claim." if claim.gates and gate is None else "")
    unmeasurable = (incomparable or bound or ungated
                    or (gate.text if gate is not None and not gate.passed else "")
                    or unreachable_reason(test, est.n_a, est.n_b, p, alpha))
    if unmeasurable:
        label, direction, reason, p = NOT_MEASURABLE, "n/a", unmeasurable, math.nan
    elif n_min < min_n or not est.has_interval:
        label, direction = INCONCLUSIVE, "n/a"
        reason = f"Fewer than {min_n} units in a group: the uncertainty cannot be estimated."
    else:
        label, direction = decide(claim, est.low, est.high, p, alpha)
        groups = tuple(comparison.split(" − ")) if comparison and " − " in comparison else None
        reason = reason_text(claim, label, direction, p, alpha, groups, profile)
        label, why = confound_agreement(label, adj_label, support)
        reason += f" {why}" if why else ""
    size = "" if unmeasurable else size_words(claim, stat, est, profile)
    text = measured_text(claim, stat, est, p, test, n_text, comparison) + " " + reason
    if size:
        text += f" Size: {size}."
    if gate is not None and gate.passed:
        text += f" {gate.text}"
    if role == "exploratory":
        text += " Exploratory: this statistic cannot carry the claim."
    if claim.unverified:
        text += " The claim itself is unverified [M]."
    text += extra
    return {
        "claim": claim.id, "paper": claim.paper, "extension": claim.extension, "statistic": stat.key,
        "description": stat.description, "units": stat.compared_units if claim.informational else stat.difference_units,
        "scale": stat.scale, "role": role, "comparison": comparison or claim.comparison, "subject": subject,
        "setting": setting, "units_of_analysis": units_of_analysis, "about": about, "n_a": est.n_a, "n_b": est.n_b,
        "estimate": est.estimate, "low": est.low, "high": est.high, "ci_level": est.ci, "ci_method": est.method,
        "test": test if p == p and p is not None else "", "p_value": math.nan if p is None else float(p),
        "adj_estimate": adj.estimate if adj else math.nan, "adj_low": adj.low if adj else math.nan,
        "adj_high": adj.high if adj else math.nan, "adj_p": adj.p_value if adj else math.nan,
        "adj_label": adj_label if support == "overlap" else "",
        "adj_covariates": adj.covariate_words if adj else "", "adj_support": support if adj else "",
        "gate": gate.text if gate is not None else "", "seed_sd": seed_sd[0], "seed_models": seed_sd[1],
        "claimed": claim.claimed_text(), "size": size, "label": label, "holm_p": math.nan, "final_label": "",
        "text": text,
    }


def unreachable_reason(test: str, n_a: int, n_b: int, p, alpha: float = ALPHA) -> str:
    """The reason an exact test cannot decide at all: its smallest attainable p with these unit
    counts (:func:`~nascore.report.estimators.smallest_attainable_p`) is above ``alpha``, so no data
    could make it significant (e.g. 2 vs 2 training seeds: 1/3). '' when it can, or when the test is
    not exact or gave no p."""
    if p is None or p != p:
        return ""
    floor = smallest_attainable_p(test, n_a, n_b)
    if floor is None or floor <= alpha:
        return ""
    units = f"{int(n_a)} vs {int(n_b)}" if n_b else f"{int(n_a)}"
    return (f"With {units} units the smallest p this exact test can give is {floor:.2g}, above α = {alpha:g}: no "
            f"data could make it decide, so it cannot measure the claim at this scale (more units are needed).")


def claim_gate(claim: str, table: pd.DataFrame):
    """Every pre-registered gate of ``claim`` (``Claim.gates``) evaluated on the chapter's per-unit
    ``table`` (one row per model or backbone, holding each gate's column), combined into one
    :class:`~nascore.report.gates.GateResult` for the ``gate=`` argument; ``None`` if the claim
    has none."""
    from .gates import check, combine
    return combine(check(g, table) for g in _claims.get(claim).gates)


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
def _fit_words(stat, a: Adjusted, ci: float) -> str:
    if not math.isfinite(a.estimate):
        return "not estimable (NAS is collinear with it)"
    return (f"{stat.fmt(a.estimate, True)} {unit_words(stat.difference_units)} [{ci * 100:.0f} % CI "
            f"{stat.fmt(a.low, True)}, {stat.fmt(a.high, True)}], p = {fmt_p(a.p_value)}")


def _adjust_text(claim, stat, raw_label: str, adjusted: dict, supports: dict, support: str, n_variants: int,
                 ci: float, alpha: float) -> str:
    """The size adjustment in words: the joint fit, its common support, each covariate alone."""
    joint = adjusted.get("joint")
    parts = []
    pool = (f"{joint.n if joint else '?'} models, {n_variants} of them size-matched variants" if n_variants
            else f"{joint.n if joint else '?'} models")
    if joint is not None:
        parts.append(f" Size-adjusted for {joint.covariate_words} (covariates fixed before training; OLS over "
                     f"{pool}): {_fit_words(stat, joint, ci)}.")
        where = "; ".join(supports[c].words() for c in joint.covariates if c in supports)
        if support == "overlap":
            adj_label = decide(claim, joint.low, joint.high, joint.p_value, alpha)[0] if math.isfinite(joint.low) else ""
            agree = ("agrees with" if adj_label == raw_label else
                     "does not confirm" if adj_label == INCONCLUSIVE else "contradicts")
            parts.append(f" Common support: {where}. The adjusted estimate {agree} the raw one"
                         f"{f' ({adj_label})' if adj_label else ''}.")
        else:
            parts.append(f" No common support ({where}; each family needs ≥ {MIN_SUPPORT} models in the "
                         f"overlap): the adjusted estimate extrapolates and decides nothing.")
        if joint.vif > 10:
            parts.append(f" NAS is nearly collinear with size (VIF {joint.vif:.0f}): the data cannot separate "
                         f"the family from it.")
    else:
        k = len(adjusted) - 1
        parts.append(f" Too few models for the size adjustment (it needs {2 + k + MIN_RESIDUAL_DF} for "
                     f"{k} covariates).")
    alone = [(c, a) for c, a in adjusted.items() if c != "joint" and a is not None]
    if alone and len(alone) > 1:
        parts.append(" Each covariate alone: " + "; ".join(f"{a.covariate_words or c}: {_fit_words(stat, a, ci)}"
                                                          for c, a in alone) + ".")
    return "".join(parts)


def _mediator_text(stat, mediated: dict, ci: float) -> str:
    fits = [(c, a) for c, a in mediated.items() if c != "joint" and a is not None]
    if not fits:
        return ""
    return (" Mediators (outcomes of training on the claimed path, exploratory, never adjusted for) — the "
            "difference conditional on " + "; ".join(f"{a.covariate_words or c}: {_fit_words(stat, a, ci)}"
                                                      for c, a in fits) + ".")


def compare_families(df: pd.DataFrame, statistic: str, claim: str | None = None, *,
                     covariates: Sequence[str] = COVARIATES, mediators: Sequence[str] = MEDIATORS,
                     groups: tuple[str, str] = ("nas", "manual"), gate=None,
                     seed: int = 0, n_boot: int = 10_000, n_perm: int = N_PERM, ci: float = 0.95,
                     alpha: float = ALPHA, method: str = "BCa", setting: str = "", exploratory: bool = False,
                     profile: str | None = None) -> dict:
    """NAS − manual difference of a registered statistic, models as units, with the confound rule.

    ``df``: one row per (model, seed) with ``model``, ``family`` (derived from the model registry
    if absent), optionally ``seed``, the statistic's column (``statistic(statistic).source_column``),
    the covariate columns (``params`` and ``flops`` counts for ``log10_params`` / ``log10_flops``)
    and the mediator columns (``clean_acc`` %, ``train_loss``; a chapter may add its own, e.g.
    ``gen_gap``). :func:`nascore.report.confounds.add_confounds` merges them from zoo entries;
    ``covariates=()`` / ``mediators=()`` skip them (the row says so).

    Seeds are averaged per model (on the comparison scale: log10 before averaging; ranks are taken
    of the seed-averaged values). The **raw** difference is over the study's architectures — rows of
    size-matched variants (``nascore.models.is_size_variant``) are left out of it — with a scipy
    bootstrap CI and a two-sided permutation p (exact when feasible). The **size-adjusted**
    difference (:mod:`.confounds`) is fitted over every model including the variants, with its common
    support; on overlap a decisive label needs it to agree. Mediators are reported as exploratory
    fits. A failed ``gate`` (:func:`nascore.report.gates.check`) makes the row "not measurable".
    """
    from ..models import SIZE_VARIANTS

    stat, claim, role = _claim_and_role(statistic, claim, "", exploratory)
    if claim.comparison != "NAS − manual":
        raise ValueError(f"claim {claim.id!r} compares {claim.comparison!r}; compare_families is for NAS − manual")
    col = stat.source_column
    need = ["model", col] + confound_columns(covariates) + confound_columns(mediators)
    missing = [c for c in need if c not in df.columns]
    if missing:
        extra_cols = set(confound_columns(covariates)) | set(confound_columns(mediators))
        hint = (" — merge them with nascore.report.add_confounds(df, entries), or pass covariates=() / "
                "mediators=() to skip them" if set(missing) & extra_cols else "")
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
    data["_variant"] = data["model"].isin(list(SIZE_VARIANTS))
    below = variants_below_floor(data)   # the pre-registered floor for size-matched variants
    data = data[~data["model"].isin(below)]
    study = data[~data["_variant"]]
    raw = study[col].to_numpy(float)
    bound = bound_reason(raw, stat)
    data["_v"] = data[col].to_numpy(float) if stat.scale == "rank" else _transform(data[col].to_numpy(float), stat)
    agg = {"_v": "mean", "family": "first", "_variant": "first",
           **{c: "mean" for c in dict.fromkeys(confound_columns(covariates) + confound_columns(mediators))}}
    every = data.groupby("model").agg(agg)
    units = every[~every["_variant"]].copy()
    if stat.scale == "rank":   # ranks among the units of each comparison: the study's models for the raw one
        every["_v"] = rankdata(every["_v"].to_numpy())
        units["_v"] = rankdata(units["_v"].to_numpy())
    a = units.loc[units.family == groups[0], "_v"].to_numpy(float)
    b = units.loc[units.family == groups[1], "_v"].to_numpy(float)
    if a.size == 0 or b.size == 0:
        raise ValueError(f"need models of both families {groups}; found {units.family.value_counts().to_dict()}")
    est = bootstrap_diff(a, b, n_boot=n_boot, ci=ci, seed=seed, method=method)
    p = None if bound or min(a.size, b.size) < 2 else permutation_test(a, b, n_perm, "two-sided", seed)
    test = _perm_name(a.size, b.size, n_perm, stat.scale == "rank")
    seeds = data[~data["_variant"]].groupby("model")["seed"].nunique()
    seed_txt = ("one seed each" if seeds.max() == 1 else f"{seeds.max()} seeds each, averaged"
                if seeds.min() == seeds.max() else f"seed-averaged, {seeds.min()}–{seeds.max()} seeds")
    n_text = f"over {a.size} {claim.groups[0]} and {b.size} {claim.groups[1]} models ({seed_txt})"
    if dropped:
        n_text += f"; {dropped} row(s) without a value left out"
    spread = pooled_seed_sd(data[~data["_variant"]], "_v") if stat.scale != "rank" else (math.nan, 0)
    adjusted: dict = {}
    support = ""
    extra = ""
    if covariates and not bound and min(a.size, b.size) >= 2:
        covars = confound_values(every, covariates)
        is_a = (every.family == groups[0]).to_numpy()
        adjusted = adjust(every["_v"].to_numpy(float), is_a, covars, ci)
        supports = common_support(covars, is_a)
        joint = adjusted.get("joint")
        if joint is not None:
            support = ("overlap" if joint.covariates and all(supports[c].supported for c in joint.covariates)
                       else "extrapolation")
        raw_label = decide(claim, est.low, est.high, p, alpha)[0] if est.has_interval else INCONCLUSIVE
        extra = _adjust_text(claim, stat, raw_label, adjusted, supports, support, int(every["_variant"].sum()),
                             ci, alpha)
        if below:
            extra += (f" Left out of it by the pre-registered {SIZE_VARIANT_FLOOR:g} % accuracy floor: "
                      f"{', '.join(below)}.")
    elif not covariates:
        extra = " Not adjusted for size (no covariates given)."
    if mediators and not bound and min(a.size, b.size) >= 2:
        mediated = adjust(every["_v"].to_numpy(float), (every.family == groups[0]).to_numpy(),
                          confound_values(every, mediators), ci)
        extra += _mediator_text(stat, mediated, ci)
    if spread[1]:
        extra += (f" Seed-to-seed spread within an architecture: SD {stat.fmt(spread[0])} "
                  f"{unit_words(stat.difference_units)} "
                  f"({spread[1]} architectures with ≥ 2 seeds), next to the family difference "
                  f"{stat.fmt(est.estimate, True)}.")
    return _row(claim, stat, role, est, p, test, n_text, units_of_analysis="models (seed-averaged)",
                setting=setting, alpha=alpha, bound=bound, profile=profile, extra=extra, adjusted=adjusted,
                support=support, seed_sd=spread, gate=gate)


# --------------------------------------------------------------------------- mitigations
def compare_to_baseline(df: pd.DataFrame, statistic: str, claim: str, subject: str, *, baseline: str = "darts",
                        unit: str = "seed", seed: int = 0, n_boot: int = 10_000, n_perm: int = N_PERM,
                        ci: float = 0.95, alpha: float = ALPHA, method: str = "BCa", setting: str = "",
                        exploratory: bool = False, profile: str | None = None, gate=None) -> dict:
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
    bound = bound_reason(raw, stat)
    if stat.scale == "rank":
        a, b = np.split(rankdata(raw), [vals[subject].size])
    else:
        a, b = _transform(vals[subject], stat), _transform(vals[baseline], stat)
    est = bootstrap_diff(a, b, n_boot=n_boot, ci=ci, seed=seed, method=method)
    p = None if bound else permutation_test(a, b, n_perm, "two-sided", seed)
    n_text = f"over {a.size} vs {b.size} {unit}s"
    return _row(claim, stat, role, est, p, _perm_name(a.size, b.size, n_perm, stat.scale == "rank"), n_text,
                units_of_analysis=f"{unit}s", about=f"architecture ({unit}s as units)", subject=subject,
                setting=setting, comparison=f"{subject} − {baseline}", alpha=alpha, bound=bound, profile=profile,
                gate=gate)


def compare_paired(outcome_a, outcome_b, statistic: str, claim: str, subject: str, *, baseline: str = "darts",
                   seed: int = 0, n_boot: int = 10_000, n_perm: int = N_PERM, ci: float = 0.95,
                   alpha: float = ALPHA, setting: str = "", exploratory: bool = False,
                   profile: str | None = None, gate=None) -> dict:
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
    # the bound rule reads the two models' values (rates for 0/1 outcomes), not single images
    bound = bound_reason(scale * np.array([a.mean(), b.mean()]) if binary else np.concatenate([a, b]), stat)
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
                profile=profile, extra=f" This is about {WEIGHTS}.", gate=gate)


# --------------------------------------------------------------------------- single groups
def compare_values(claim, values, *, statistic: str | None = None, stat: Callable = np.mean, n_boot: int = 10_000,
                   n_perm: int = N_PERM, ci: float = 0.95, alpha: float = ALPHA, seed: int = 0,
                   method: str = "BCa", units_of_analysis: str = "models", subject: str = "", setting: str = "",
                   exploratory: bool = False, profile: str | None = None, incomparable: str = "",
                   gate=None) -> dict:
    """One group of values (per model, per backbone, per image) against the claim's null —
    bootstrap CI of ``stat(values)``, two-sided sign-flip p of ``mean(values) − null`` — or, for
    informational claims, against the claimed level band (no p). ``statistic`` defaults to the
    claim's primary. ``incomparable``: why these values cannot be read against the claim at this
    scale (e.g. a full-size anchor); the row is then "not measurable at this scale"."""
    c = _claims.get(claim)
    st_, c, role = _claim_and_role(statistic or c.primary, c, subject, exploratory)
    x = np.asarray(values, float).ravel()
    bound = "" if c.informational else bound_reason(x, st_)
    x = _transform(x, st_) if st_.scale == "log10" else x
    est = bootstrap_ci(x, stat=stat, n_boot=n_boot, ci=ci, seed=seed, method=method)
    p = None if c.informational or bound or x.size < 2 else sign_flip_test(x, c.null, n_perm, "two-sided", seed)
    kind = "exact" if 2 ** x.size <= n_perm else f"Monte-Carlo ({n_perm:,} sign patterns)"
    return _row(c, st_, role, est, p, f"{kind} sign-flip permutation", f"n = {x.size} {units_of_analysis}",
                units_of_analysis=units_of_analysis, subject=subject, setting=setting, alpha=alpha, bound=bound,
                profile=profile, min_n=2, incomparable=incomparable, gate=gate)


def compare_extreme(groups: Mapping[str, np.ndarray], statistic: str, claim: str | None = None, *,
                    aggregate: Callable = np.mean, which: str | None = None, n_boot: int = 2_000,
                    ci: float = 0.95, alpha: float = ALPHA, seed: int = 0, setting: str = "",
                    exploratory: bool = False, profile: str | None = None, gate=None) -> dict:
    """The smallest (``which="min"``, default for "greater" claims) or largest group value, e.g.
    the least-slowed backbone's efficacy reduction. ``groups``: ``{backbone: per-image data}``;
    ``aggregate(rows) -> float`` turns one group's (resampled) rows into its value (default:
    the mean). Images are resampled within each backbone; p inverts the percentile interval
    at the claim's null (:func:`nascore.report.estimators.bootstrap_p`)."""
    stat, c, role = _claim_and_role(statistic, claim, "", exploratory)
    which = which or ("max" if c.direction == "less" else "min")
    by_seed = all(isinstance(v, (list, tuple)) for v in groups.values())
    if by_seed:  # {group: [per-image rows of each training seed]}: seeds, then images, resampled
        est, per_group, dist = bootstrap_extreme_seeds(groups, aggregate, which, n_boot, ci, seed)
        n_images = min(len(d) for v in groups.values() for d in v)
    else:
        est, per_group, dist = bootstrap_extreme(groups, aggregate, which, n_boot, ci, seed)
    p = None if c.informational else bootstrap_p(dist, c.null)
    per = ", ".join(f"{k} {stat.fmt(v)}" for k, v in per_group.items())
    extreme = f"the {'smallest' if which == 'min' else 'largest'} of {len(per_group)} groups ({per})"
    if by_seed:
        n_text = (f"{extreme}, each the mean over its training seeds; ≥ {est.n_a} seeds per group resampled, then "
                  f"≥ {n_images} images within each drawn seed")
        units = f"training seeds per group (the fewest: {est.n_a}), test images within seeds, {len(per_group)} groups"
    else:
        n_text = f"{extreme}; ≥ {est.n_a} images per group resampled within groups"
        units = f"test images per group (the fewest), {len(per_group)} groups"
    row = _row(c, stat, role, est, p, "bootstrap (percentile inversion)", n_text,
               units_of_analysis=units, setting=setting, alpha=alpha, profile=profile, gate=gate)
    return {**row, "n_b": 0}  # one extreme over groups, not two groups compared: n = the fewest images
