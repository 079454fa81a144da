"""Chapter 4 — the remedies: deeper cells and fewer skip connections (Pang et al. 2022, §5).

DARTS-i (``diy_deep``: the normal cell's nodes chained), DARTS-ii (``diy_noskip``: skips replaced
by convolutions) and DARTS-iii (``diy_deep_noskip``: both) are compared with DARTS-V2 (``darts``),
whose reduction cell they share. The paper reports them more manual-like (Table 4). Units, so that
each comparison carries an uncertainty (methods page, "Units of analysis"):

* **targeted-PGD ASR** (the artifact's attack): chapter 2's stored per-image outcomes
  (``results/<profile>/02_evasion/pgd_per_image``), never re-run here. With one trained model
  per architecture the two models are compared on the **same images** (the pair's paired set:
  images both classify correctly) with McNemar's test — a statement about *these trained
  weights*; with ≥ 2 training seeds each, seeds are the units and the McNemar rows become
  exploratory;
* **gradient variance at initialisation** (the artifact's GV setting) with **initialisation
  seeds** as units (it needs no training).

"More manual-like" is a direction: the claims table fixes it from the paper (manual models have
the lower ASR and the higher GV). :func:`direction_check` compares it with this book's own
chapter 2 and 3 data — at a reduced scale the manual models may sit on the other side — and
says, per mitigation, whether the measured change points toward the book's manual models.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..analysis import gradient_variance
from ..models import family
from ..profiles import Profile
from ..report import compare_paired, compare_to_baseline, load_results
from ..report.claims import get as get_claim
from ..report.estimators import bootstrap_diff
from .common import MODEL_LABELS, results_dir
from .inputs import evaluation_images, fresh_model

BASELINE = "darts"
EVASION_CLAIM = "mitigation.evasion_manual_like"
GV_CLAIM = "mitigation.grad_var_manual_like"
#: Chapter 2's per-image outcomes compared per pair: (statistic, rule, outcome column).
PAIRED_STATISTICS = (("pgd_asr", "artifact", "success_any_step"),
                     ("pgd_asr_last_step", "artifact", "success_last_step"),
                     ("pgd_asr_argmax", "argmax", "success_any_step"))


def check(profile: Profile, init_seeds=None) -> list[int]:
    """Validate the chapter's knobs before any compute; returns the initialisation seeds of the
    gradient-variance-at-initialisation comparison (default: 3 at smoke, 8 otherwise)."""
    seeds = list(init_seeds) if init_seeds is not None else list(range(3 if profile.name == "smoke" else 8))
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise ValueError(f"init_seeds must be at least 2 distinct seeds, got {seeds}")
    if BASELINE not in profile.models or not profile.mitigation_models:
        raise ValueError(f"profile {profile.name!r} must contain {BASELINE!r} and the mitigation models")
    return seeds


class MissingChapterError(FileNotFoundError):
    """A chapter this one reuses has not been run at this profile."""


def load_inputs(profile: Profile | str) -> dict[str, pd.DataFrame]:
    """Chapter 2's per-model table, per-image targeted-PGD outcomes and paired image sets, and
    chapter 3's per-model table, for ``profile``. Raises :class:`MissingChapterError` naming the
    chapter to run first."""
    name = profile if isinstance(profile, str) else profile.name
    need = {"evasion": ("02_evasion", "per_model"), "pgd_per_image": ("02_evasion", "pgd_per_image"),
            "paired_images": ("02_evasion", "paired_images"), "smoothness": ("03_smoothness", "per_model")}
    out = {}
    for key, (chapter, table) in need.items():
        stem = results_dir(name, chapter) / table
        if not stem.with_suffix(".csv").is_file():
            raise MissingChapterError(
                f"chapter 4 reuses chapter {chapter}'s table {table!r} (results/{name}/{chapter}/{table}.csv), "
                f"which does not exist: run `python -m nascore.book run {chapter} --profile {name}` first")
        out[key] = load_results(stem)
    return out


# --------------------------------------------------------------------------- evasion, paired images
def paired_outcomes(per_image: pd.DataFrame, paired: pd.DataFrame, subject: str, baseline: str, seed: int,
                    rule: str = "artifact", outcome: str = "success_any_step") -> pd.DataFrame:
    """``image, subject, baseline``: 0/1 outcomes of the two models on the pair's paired images,
    merged on the image id (same seed). Raises if chapter 2's table lacks a paired image."""
    images = paired.loc[(paired.subject == subject) & (paired.baseline == baseline) & (paired.seed == seed), "image"]
    sel = per_image[(per_image.rule == rule) & (per_image.seed == seed)]
    cols = {}
    for name in (subject, baseline):
        s = sel[sel.model == name].set_index("image")[outcome]
        missing = sorted(set(images) - set(s.index))
        if missing:
            raise ValueError(f"chapter 2's per-image table has no {rule!r} outcome of {name!r} (seed {seed}) for "
                             f"paired images {missing[:5]}: re-run chapter 2")
        cols[name] = s.loc[images.to_numpy()].to_numpy(int)
    return pd.DataFrame({"image": images.to_numpy(), "subject": cols[subject], "baseline": cols[baseline]})


def _seeds(df: pd.DataFrame, model: str) -> list[int]:
    return sorted(df.loc[df.model == model, "seed"].unique().tolist())


def evasion_rows(inputs: dict, mitigations, profile: str, seed: int = 0) -> tuple[list[dict], list[str]]:
    """mitigation − DARTS-V2 rows for :data:`PAIRED_STATISTICS` and the seed-based ASR where
    ≥ 2 seeds exist; returns ``(rows, notes)`` (notes: comparisons that could not be made)."""
    per_model, per_image, paired = inputs["evasion"], inputs["pgd_per_image"], inputs["paired_images"]
    rows, notes = [], []
    for m in mitigations:
        by_seeds = min(len(_seeds(per_model, m)), len(_seeds(per_model, BASELINE))) >= 2
        if by_seeds:
            rows.append(compare_to_baseline(per_model, "pgd_asr", EVASION_CLAIM, m, unit="seed", seed=seed,
                                            profile=profile, setting="training seeds as units"))
        common = sorted(set(_seeds(per_model, m)) & set(_seeds(per_model, BASELINE)))
        if not common:
            notes.append(f"{MODEL_LABELS.get(m, m)} and DARTS-V2 share no training seed: no paired comparison")
            continue
        s = common[0]
        for stat, rule, outcome in PAIRED_STATISTICS:
            o = paired_outcomes(per_image, paired, m, BASELINE, s, rule, outcome)
            if len(o) < 2:
                if stat == "pgd_asr":
                    notes.append(f"{MODEL_LABELS.get(m, m)} and DARTS-V2 both classify only {len(o)} of the test "
                                 f"images correctly: no paired comparison")
                break
            rows.append(compare_paired(o.subject, o.baseline, stat, EVASION_CLAIM, m, baseline=BASELINE, seed=seed,
                                       profile=profile, exploratory=by_seeds or stat != "pgd_asr",
                                       setting=f"{len(o)} paired images, training seed {s}"))
    return rows, notes


# --------------------------------------------------------------------------- GV at init, init seeds
def gv_init_seeds(entries: dict, names, profile: Profile, data, init_seeds, seed: int = 0) -> pd.DataFrame:
    """Gradient variance of freshly initialised networks for several initialisation seeds, on the
    same ``gv_images`` test images for every model: one row per (model, init_seed)."""
    if len(init_seeds) < 2 or len(set(init_seeds)) != len(init_seeds):
        raise ValueError(f"init_seeds must be at least 2 distinct seeds, got {list(init_seeds)}")
    gx, gy = evaluation_images(entries[(BASELINE, seed)], data, profile.smoothness.gv_images)
    rows = []
    for name in names:
        for s in init_seeds:
            r = gradient_variance(fresh_model(name, profile, s), gx, gy)
            rows.append({"model": name, "init_seed": s, "gv_init": r.gv, "gv_init_per_param": r.gv_per_param,
                         "log10_gv_init": r.log10_gv, "clipped_frac_init": r.clipped_fraction, "params": r.n_params})
    return pd.DataFrame(rows)


def gv_rows(gv: pd.DataFrame, mitigations, profile: str, seed: int = 0) -> list[dict]:
    """mitigation − DARTS-V2 in log10 GV at init (primary) and log10 GV per parameter
    (exploratory), initialisation seeds as units."""
    return [compare_to_baseline(gv, stat, GV_CLAIM, m, unit="init_seed", seed=seed, profile=profile,
                                setting=f"{gv.init_seed.nunique()} initialisation seeds")
            for m in mitigations for stat in ("log10_gv_init", "gv_init_per_param")]


# --------------------------------------------------------------------------- "more manual-like"
#: (claim, statistic, chapter table, raw column, log10?) whose manual-like direction is checked.
DIRECTIONS = ((EVASION_CLAIM, "pgd_asr", "evasion", "pgd_asr", False),
              (EVASION_CLAIM, "pgd_asr_argmax", "evasion", "pgd_asr_argmax", False),
              (GV_CLAIM, "log10_gv_init", "smoothness", "gv_init", True))


def direction_check(inputs: dict, verdicts: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Per statistic and mitigation: the claims table's "manual-like" side (from the paper), the
    side the book's own manual models sit on (manual − NAS over models, bootstrap CI, from
    chapters 2 and 3), and whether the mitigation − DARTS-V2 difference measured here points
    toward the book's manual models. No ratio of differences is formed."""
    rows = []
    for claim_id, stat, table, col, log in DIRECTIONS:
        df = inputs[table]
        pm = df.groupby("model", as_index=False)[col].mean()
        pm["family"] = pm.model.map(family)
        v = np.log10(pm[col]) if log else pm[col]
        man, nas = v[pm.family == "manual"].to_numpy(float), v[pm.family == "nas"].to_numpy(float)
        est = bootstrap_diff(man, nas, seed=seed)
        book = ("higher" if est.low > 0 else "lower" if est.high < 0 else "unresolved") if est.has_interval \
            else "unresolved"
        claimed = "higher" if get_claim(claim_id).manual_like == "greater" else "lower"
        for _, r in verdicts[(verdicts.claim == claim_id) & (verdicts.statistic == stat)].iterrows():
            d = "unresolved"
            if r["label"] != "not measurable at this scale" and np.isfinite(r["low"]) and np.isfinite(r["high"]):
                d = "higher" if r["low"] > 0 else "lower" if r["high"] < 0 else "unresolved"
            toward = ("—" if book == "unresolved" or d == "unresolved" else "toward" if d == book else "away from")
            rows.append({"statistic": stat, "subject": r["subject"], "setting": r["setting"],
                         "manual_minus_nas": est.estimate, "mn_low": est.low, "mn_high": est.high,
                         "book_manual_side": book, "claimed_manual_side": claimed,
                         "book_agrees_with_paper": ("—" if book == "unresolved" else "yes" if book == claimed
                                                    else "no"),
                         "difference": r["estimate"], "low": r["low"], "high": r["high"], "change": d,
                         "toward_book_manual": toward})
    return pd.DataFrame(rows)


_STAT_WORDS = {"pgd_asr": "targeted-PGD ASR (artifact rule)", "pgd_asr_argmax": "targeted-PGD ASR (argmax rule)",
               "log10_gv_init": "log10 GV at initialisation"}


def direction_text(check: pd.DataFrame) -> str:
    """The direction check in words (Markdown), one paragraph per statistic, generated from
    :func:`direction_check`'s table."""
    from .common import fmt_number

    paras = []
    for stat, g in check.groupby("statistic", sort=False):
        r = g.iloc[0]
        words = _STAT_WORDS.get(stat, stat)
        dec = 2 if stat.startswith("log10") else 1
        mn = (f"manual − NAS = {fmt_number(r.manual_minus_nas, dec, True)} [95 % CI "
              f"{fmt_number(r.mn_low, dec, True)}, {fmt_number(r.mn_high, dec, True)}]")
        head = (f"**{words[0].upper() + words[1:]}.** The claims table counts a {r.claimed_manual_side} value as "
                f"more manual-like (the paper's manual models sit there). ")
        if r.book_manual_side == "unresolved":
            body = (f"In this book's own data the manual and NAS models cannot be told apart on it ({mn}), so at "
                    f"this scale there is no measured manual side to move toward: a verdict on this statistic is "
                    f"about the paper's direction only.")
        elif r.book_manual_side == r.claimed_manual_side:
            body = (f"This book's manual models also sit on that side ({mn}), so here the claim's direction and "
                    f"'toward the book's manual models' agree.")
        else:
            body = (f"This book's manual models sit on the **other** side ({mn}): at this scale a change in the "
                    f"claimed direction moves a mitigation *away* from the book's own manual models, and a "
                    f"'reproduced' verdict must be read that way.")
        per = []
        for _, x in g.iterrows():
            who = MODEL_LABELS.get(x.subject, x.subject)
            if x.change == "unresolved":
                per.append(f"{who}: no resolved change")
            else:
                where = "" if x.toward_book_manual == "—" else f", {x.toward_book_manual} the book's manual models"
                per.append(f"{who}: {x.change} than DARTS-V2{where}")
        paras.append(head + body + " Measured: " + "; ".join(per) + ".")
    return "\n\n".join(paras)


def summary_table(inputs: dict, names) -> pd.DataFrame:
    """DARTS-V2 and the mitigations side by side: chapter 2 and 3 numbers merged on (model, seed)."""
    ev = inputs["evasion"][["model", "seed", "clean_acc", "depth", "skips", "pgd_asr", "pgd_asr_argmax",
                            "pgd_asr_last_step", "linf_auc"]]
    sm = inputs["smoothness"][["model", "seed", "gv_init", "gv_trained", "contour_sharpness", "top_eig"]]
    out = ev.merge(sm, on=["model", "seed"], how="inner", validate="one_to_one")
    out = out[out.model.isin(names)].copy()
    out["log10_gv_init"] = np.log10(out.pop("gv_init"))
    out["log10_gv_trained"] = np.log10(out.pop("gv_trained"))
    out["label"] = out.model.map(lambda m: MODEL_LABELS.get(m, m))
    return out.sort_values(["seed", "model"], key=lambda s: s.map({n: i for i, n in enumerate(names)})
                           if s.name == "model" else s).reset_index(drop=True)


# --------------------------------------------------------------------------- figures
#: (label, table, raw column, log10?) of the panels of :func:`plot_positions`.
POSITION_PANELS = (("targeted-PGD ASR, artifact rule (%)", "evasion", "pgd_asr", False),
                   ("targeted-PGD ASR, argmax rule (%)", "evasion", "pgd_asr_argmax", False),
                   ("log10 GV at initialisation", "smoothness", "gv_init", True),
                   ("clean test accuracy (%)", "evasion", "clean_acc", False))


def plot_positions(inputs: dict, mitigations):
    """Where DARTS-V2 and the mitigations sit among the book's NAS and manual models, one stacked
    panel per statistic: rows manual / NAS (each model a dot, the family mean a bar), then
    DARTS-V2 and each mitigation in its own colour. Values only; nothing is divided. A statistic
    that is 0 for every model gets no (empty) panel. Returns ``(figure, omitted labels)``."""
    from .common import FONT_PT, GROUP_COLOURS, figure, model_colour

    rows = ["manual models", "NAS models", *(MODEL_LABELS.get(m, m) for m in (BASELINE, *mitigations))]
    panels = [p for p in POSITION_PANELS if (inputs[p[1]][p[2]].fillna(0) != 0).any()]
    omitted = [p[0] for p in POSITION_PANELS if p not in panels]
    fig, axes = figure(len(panels), 2.0)
    for ax, (label, table, col, log) in zip(axes, panels):
        pm = inputs[table].groupby("model", as_index=False)[col].mean()
        pm["value"] = np.log10(pm[col]) if log else pm[col]
        pm["family"] = pm.model.map(family)
        for i, fam in enumerate(("manual", "nas")):
            v = pm.loc[pm.family == fam, "value"].to_numpy(float)
            ax.scatter(v, np.full(v.size, i), color=GROUP_COLOURS[fam], s=28, alpha=0.7, zorder=3)
            if v.size:
                ax.plot([v.mean()] * 2, [i - 0.35, i + 0.35], color=GROUP_COLOURS[fam], lw=2.5)
        for j, m in enumerate((BASELINE, *mitigations), start=2):
            v = pm.loc[pm.model == m, "value"].to_numpy(float)
            ax.scatter(v, np.full(v.size, j), color=model_colour(m), s=60, marker="D", zorder=3,
                       edgecolors="black", linewidths=0.6)
        ax.set_yticks(range(len(rows)), rows, fontsize=FONT_PT)
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.set_xlabel(label, fontsize=FONT_PT)
        ax.tick_params(axis="x", labelsize=FONT_PT)
        ax.grid(axis="x", alpha=0.3)
    return fig, omitted


def plot_differences(verdicts: pd.DataFrame, check: pd.DataFrame):
    """mitigation − DARTS-V2 with its 95 % interval for each primary comparison, one stacked panel
    per claim, each mitigation in its own colour; the side where the book's own manual models sit
    (:func:`direction_check`) is shaded. Rows that are not measurable at this scale (every value at
    the floor or ceiling) are not drawn; a claim without a drawable row gets no panel. Returns
    ``None`` when nothing is left to draw."""
    from matplotlib.patches import Patch

    from ..report.statistics import statistic as get_stat
    from .common import FONT_PT, GROUP_COLOURS, figure, model_colour

    prim = verdicts[(verdicts.role == "primary") & np.isfinite(verdicts.low.astype(float))
                    & (verdicts.label != "not measurable at this scale")]
    panels = [c for c in (EVASION_CLAIM, GV_CLAIM) if c in set(prim.claim)]
    if not panels:
        return None
    fig, axes = figure(len(panels), 0.9 + 0.45 * max(3, prim.claim.value_counts().max()))
    for ax, claim_id in zip(axes, panels):
        rows = prim[prim.claim == claim_id].reset_index(drop=True)
        for i, r in rows.iterrows():
            colour = model_colour(r["subject"])
            ax.errorbar([r["estimate"]], [i], xerr=[[r["estimate"] - r["low"]], [r["high"] - r["estimate"]]],
                        fmt="o", color=colour, ms=7, capsize=4, lw=2)
        ax.axvline(0, color="0.3", lw=1)
        side = check[(check.statistic == rows.statistic.iloc[0])]["book_manual_side"] if len(rows) else []
        lo, hi = ax.get_xlim()
        span = max(abs(lo), abs(hi))
        ax.set_xlim(-span, span)
        if len(side) and side.iloc[0] in ("higher", "lower"):
            x0, x1 = (0, span) if side.iloc[0] == "higher" else (-span, 0)
            ax.axvspan(x0, x1, color=GROUP_COLOURS["manual"], alpha=0.08, zorder=0)
            ax.legend(handles=[Patch(color=GROUP_COLOURS["manual"], alpha=0.25,
                                     label="side of the book's manual models")], fontsize=FONT_PT, frameon=False,
                      loc="lower left", bbox_to_anchor=(0, 1.0))
        ax.set_yticks(range(len(rows)), [MODEL_LABELS.get(s, s) for s in rows.subject], fontsize=FONT_PT)
        ax.set_ylim(len(rows) - 0.5, -0.5)
        stat = get_stat(rows.statistic.iloc[0]) if len(rows) else None
        what = (stat.label if stat else "").replace(" (%)", "")
        ax.set_xlabel(f"mitigation − DARTS-V2: {what} ({stat.difference_units if stat else ''})", fontsize=FONT_PT)
        ax.tick_params(axis="x", labelsize=FONT_PT)
        ax.grid(axis="x", alpha=0.3)
    return fig
