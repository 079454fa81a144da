"""Chapter 5 — random-label poisoning: do NAS models lose more accuracy when trained on wrong labels?

Pang et al. (USENIX Security 2022, Fig. 6; protocol §4.2): a seeded fraction p of the training set is
frozen with one augmentation draw and relabelled uniformly to a wrong class; models are trained **from
scratch** by the same recipe; the accuracy drop is acc(0 %) − acc(p). The first author's figure data (§11)
give 15.1 (NAS) vs 10.2 points (manual) at 40 %; Table 4 adds the mitigation cells (DARTS-i/iii lose
more, not less). This module trains the poisoned models through the zoo
(:class:`nascore.attacks.RandomLabelPoison` is a zoo ``Variant``, so the poisoning settings are in the
cache key), tabulates the drops with the confounds each comparison needs, and builds the comparisons:
NAS − manual over models, and mitigation − DARTS-V2 on the same test images.
"""
from __future__ import annotations

import pandas as pd
import torch

from .. import zoo
from ..attacks import RandomLabelPoison
from ..models import cell_stats, family, is_size_variant, names
from ..models.predict import predict
from ..report.confounds import entry_confounds
from ..parallel import check_workers
from ..profiles import Profile
from .common import results_dir, spearman_row

CHAPTER = "05_poisoning"
BASELINE = "darts"


def pct(rate: float) -> int:
    """40 for 0.4: the suffix of the per-rate columns (``acc_40``, ``poison_acc_drop_40``)."""
    return int(round(100 * rate))


def models(profile: Profile) -> tuple[str, ...]:
    """The models this chapter poisons: ``profile.poisoning.poison_models`` or every model of the profile."""
    return tuple(profile.poisoning.poison_models) if profile.poisoning.poison_models is not None else profile.models


def check(profile: Profile, workers: int | None = None) -> tuple[str, ...]:
    """Validate the chapter's profile knobs before any compute; returns the model list. ``workers`` is the
    chapter's worker-process count (``None``: one per core)."""
    check_workers(workers)
    chosen = models(profile)
    unknown = [m for m in chosen if m not in names()]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown} in poison_models; valid: {', '.join(names())}")
    bad = [r for r in profile.poisoning.poison_rates if not 0 < r < 1]
    if bad:
        raise ValueError(f"poison_rates {bad} outside (0, 1); valid: fractions such as 0.1, 0.2, 0.4")
    for k in ("poison_epochs", "poison_train_per_class", "poison_test_per_class"):
        v = getattr(profile.poisoning, k)
        if v is not None and v < 1:
            raise ValueError(f"{k}={v} must be >= 1 or None")
    fams = {family(m) for m in chosen}
    if not {"nas", "manual"} <= fams:
        raise ValueError(f"poison_models needs NAS and manual models for the comparison, got {sorted(chosen)}")
    return chosen


def overrides(profile: Profile) -> dict:
    """Zoo overrides of the poisoning recipe. Empty: the 0 % reference is the clean zoo model itself.
    Otherwise the 0 % reference is trained alike, without the within-run accuracy curve (``eval_points``
    0: it does not change the weights, and this chapter reads only the per-epoch accuracy)."""
    knobs = {"epochs": profile.poisoning.poison_epochs, "train_per_class": profile.poisoning.poison_train_per_class,
             "test_per_class": profile.poisoning.poison_test_per_class}
    knobs = {k: v for k, v in knobs.items() if v is not None}
    return {**knobs, "eval_points": 0} if knobs else knobs


def variant(profile: Profile, rate: float) -> RandomLabelPoison:
    """The poisoning at ``rate``, its one frozen augmentation draw matching the training recipe."""
    cfg, _ = zoo.resolve(models(profile)[0], profile, 0, **overrides(profile))
    r = cfg.recipe
    return RandomLabelPoison(rate, crop_padding=r["crop_padding"], flip=r["flip"], cutout=r["cutout"])


def seeds(profile: Profile) -> dict[str, tuple[int, ...]]:
    """Training seeds per poisoned model (the profile's seeds plus any extra ones for that model)."""
    return {m: profile.seeds_for(m) for m in models(profile)}


def train_all(profile: Profile, progress: bool = True, workers: int | None = None) -> dict:
    """Train (or load) the 0 % reference and every poisoned model: ``{(model, seed, rate): TrainedModel}``."""
    chosen, over = check(profile), overrides(profile)
    out = {}
    for rate in (0.0, *profile.poisoning.poison_rates):
        v = None if rate == 0 else variant(profile, rate)
        got = zoo.train_many(chosen, profile, seeds=seeds(profile), workers=workers, progress=progress, variant=v,
                             **over)
        out.update({(n, s, rate): tm for (n, s), tm in got.items()})
    return out


def per_model(entries: dict, clean: dict, profile: Profile) -> pd.DataFrame:
    """One row per (model, seed): the confounds of the **clean zoo** model (``params``, ``clean_acc`` %,
    ``train_loss``), the test accuracy (%) of the 0 % reference and of each poisoned model (final epoch:
    ``acc_<p>``; best epoch: ``acc_<p>_best``), the drops ``poison_acc_drop_<p>`` (final epoch, the
    registered statistic) and ``poison_acc_drop_<p>_best`` (best epoch of each run, exploratory), and the
    cell statistics."""
    rows = []
    for name, seed in sorted({(n, s) for n, s, _ in entries}):
        ref = clean[(name, seed)]
        row = {"model": name, "family": family(name), "seed": seed, **entry_confounds(ref)}
        for rate in (0.0, *profile.poisoning.poison_rates):
            hist = entries[(name, seed, rate)].record["history"]
            row[f"acc_{pct(rate)}"] = 100 * hist[-1]["test_acc"]
            row[f"acc_{pct(rate)}_best"] = 100 * max(h["test_acc"] for h in hist)
        for rate in profile.poisoning.poison_rates:
            row[f"poison_acc_drop_{pct(rate)}"] = row["acc_0"] - row[f"acc_{pct(rate)}"]
            row[f"poison_acc_drop_{pct(rate)}_best"] = row["acc_0_best"] - row[f"acc_{pct(rate)}_best"]
        if family(name) != "manual":
            st = cell_stats(name)
            row["depth"], row["skips"] = st.depth, st.skips
        rows.append(row)
    return pd.DataFrame(rows)


def drops_long(table: pd.DataFrame, profile: Profile) -> pd.DataFrame:
    """Long form for the drop-vs-rate figure: model, family, seed, rate (%), drop (pp; 0 at 0 %)."""
    rows = []
    for r in table.itertuples():
        rows.append({"model": r.model, "family": r.family, "seed": r.seed, "rate": 0, "drop": 0.0})
        for rate in profile.poisoning.poison_rates:
            rows.append({"model": r.model, "family": r.family, "seed": r.seed, "rate": pct(rate),
                         "drop": getattr(r, f"poison_acc_drop_{pct(rate)}")})
    return pd.DataFrame(rows)


def curves(entries: dict) -> pd.DataFrame:
    """Per-epoch test accuracy of every run: model, family, seed, rate (%), epoch, test_acc (%)."""
    return pd.DataFrame([{"model": n, "family": family(n), "seed": s, "rate": pct(rate), "epoch": h["epoch"],
                          "test_acc": 100 * h["test_acc"], "train_loss": h["train_loss"]}
                         for (n, s, rate), tm in entries.items() for h in tm.record["history"]])


def family_rows(table: pd.DataFrame, profile: Profile) -> list[dict]:
    """NAS − manual for every rate's drop (claim ``poisoning.acc_drop``; 40 % is the primary statistic),
    each with the claim's gate (the 40 %-poisoned models train) on the same models."""
    from ..report import claim_gate
    from .common import nas_vs_manual

    gate = claim_gate("poisoning.acc_drop", _gate_table(table, ("nas", "manual")))
    return [nas_vs_manual(table, f"poison_acc_drop_{pct(r)}", "poisoning.acc_drop", profile=profile.name, gate=gate)
            for r in sorted(profile.poisoning.poison_rates, reverse=True)]


def _gate_table(table: pd.DataFrame, families=None, names=None) -> pd.DataFrame:
    """Seed-averaged ``acc_40`` per model (the gate of the poisoning claims) of the chosen models."""
    keep = table.family.isin(families) if families is not None else table.model.isin(names)
    cols = [c for c in ("acc_40",) if c in table]
    return table[keep].groupby("model", as_index=False)[cols].mean() if cols else \
        pd.DataFrame({"model": table[keep].model.unique(), "acc_40": float("nan")})


def correct_per_image(entry, data) -> torch.Tensor:
    """Per test image (the run's own evaluation set), whether ``entry``'s model classifies it correctly."""
    cfg = zoo.ModelConfig(**entry.record["config"])
    *_, test_x, test_y = zoo.splits(data, cfg)
    return predict(entry.model, test_x, 500, channels_last=True, reduce=lambda logits: logits.argmax(1)) == test_y


def mitigation_rows(entries: dict, profile: Profile, data, rate: float = 0.4, seed: int = 0,
                    table: pd.DataFrame | None = None) -> list[dict]:
    """mitigation − DARTS-V2 drop at ``rate`` (claim ``mitigation.poison_drop``). With ≥ 2 training
    seeds of both models (and the per-model ``table``), seeds are the units (the primary); the paired
    comparison on the same test images — per image, 100·(correct at 0 % − correct at p), one trained
    model each, a statement about these weights — is then exploratory, else it is the primary. Every
    row carries the claim's gate on DARTS-V2 and the mitigations."""
    from ..report import claim_gate, compare_paired, compare_to_baseline

    chosen = models(profile)
    if rate not in profile.poisoning.poison_rates or BASELINE not in chosen:
        return []
    stat = f"poison_acc_drop_{pct(rate)}"
    subjects = [m for m in profile.mitigation_models if m in chosen]
    acc = pd.DataFrame([{"model": m, "seed": s, "acc_40": 100 * tm.record["history"][-1]["test_acc"]}
                        for (m, s, r), tm in entries.items() if r == 0.4 and m in (BASELINE, *subjects)])
    gate = claim_gate("mitigation.poison_drop", acc.groupby("model", as_index=False)["acc_40"].mean()
                      if len(acc) else pd.DataFrame({"model": [], "acc_40": []}))
    rows = []
    n_seeds = lambda m: len({s for (n, s, r) in entries if n == m and r == rate})  # noqa: E731
    by_seeds = table is not None and all(n_seeds(m) >= 2 for m in (BASELINE, *subjects))
    if by_seeds:
        rows += [compare_to_baseline(table, stat, "mitigation.poison_drop", m, unit="seed", profile=profile.name,
                                     setting=f"{pct(rate)} % poisoning, training seeds as units", gate=gate)
                 for m in subjects]
    outcome = {}
    for m in [BASELINE, *subjects]:
        c0 = correct_per_image(entries[(m, seed, 0.0)], data).float()
        cp = correct_per_image(entries[(m, seed, rate)], data).float()
        outcome[m] = 100 * (c0 - cp)
    return rows + [compare_paired(outcome[m], outcome[BASELINE], stat, "mitigation.poison_drop", subject=m,
                                  baseline=BASELINE, profile=profile.name, exploratory=by_seeds, gate=gate,
                                  setting=f"{pct(rate)} % poisoning, same images, training seed {seed}")
                   for m in outcome if m != BASELINE]


def mitigation_summary(table: pd.DataFrame, profile: Profile) -> pd.DataFrame:
    """DARTS-V2 and the mitigations: clean accuracy and drop at every rate, next to the NAS and manual means."""
    cols = ["clean_acc", "acc_0", *[f"poison_acc_drop_{pct(r)}" for r in profile.poisoning.poison_rates]]
    pm = table.groupby(["model", "family"], as_index=False)[cols].mean()
    rows = pm[pm.model.isin([BASELINE, *profile.mitigation_models])].copy()
    for fam in ("nas", "manual"):
        g = pm[pm.family == fam]
        rows = pd.concat([rows, pd.DataFrame([{"model": f"{fam} mean (n={len(g)})", "family": fam,
                                               **g[cols].mean().to_dict()}])], ignore_index=True)
    return rows


# ------------------------------------------------------------------------------------ explanations
def smoothness_table(profile: Profile) -> tuple[pd.DataFrame | None, str]:
    """Chapter 3's per-model table (``results/<profile>/03_smoothness/per_model``), or ``None`` and a note."""
    from ..report import load_results

    stem = results_dir(profile, "03_smoothness") / "per_model"
    if not stem.with_suffix(".csv").is_file():
        return None, (f"Chapter 3 (03_smoothness) has not been run at profile {profile.name!r}: the relation to "
                      "gradient variance and flatness is skipped.")
    return load_results(stem), ""


SMOOTHNESS_COLUMNS = ("gv_init", "gv_trained", "gv_trained_per_param", "top_eig", "param_flatness",
                      "contour_sharpness")


def relations(table: pd.DataFrame, values, profile: Profile, seed: int = 0) -> tuple[pd.DataFrame, str]:
    """Spearman ρ (bootstrap CI, permutation p) of each of ``values`` with the cell statistics (depth,
    skips; over NAS and mitigation cells, size-matched variants left out) and with chapter 3's gradient variance and flatness columns (over
    every model that has both). Exploratory: no claim is judged here. Returns the table and a note."""
    pm = table.groupby("model").mean(numeric_only=True)
    rows = []
    cells = pm[[family(m) != "manual" and not is_size_variant(m) for m in pm.index]]   # a variant repeats its cell
    for stat in ("depth", "skips"):
        for v in values:
            if v in cells and stat in cells:
                ok = cells[[stat, v]].dropna()
                rows.append({"x": stat, "y": v, "models": "NAS + mitigation cells", **spearman_row(ok[stat], ok[v], seed)})
    smooth, note = smoothness_table(profile)
    if smooth is not None:
        sm = smooth.groupby("model").mean(numeric_only=True)
        for col in [c for c in SMOOTHNESS_COLUMNS if c in sm.columns]:
            for v in values:
                if v not in pm:
                    continue
                both = pm[[v]].join(sm[[col]], how="inner").dropna()
                rows.append({"x": col, "y": v, "models": "all with both", **spearman_row(both[col], both[v], seed)})
    return pd.DataFrame(rows), note


def paper_side_by_side(table: pd.DataFrame, statistic: str, mitigation: bool = False) -> pd.DataFrame:
    """Our per-model value of ``statistic`` next to the paper's (protocol §11), models in either."""
    from ..report import paper_statistic

    ours = table.groupby("model")[statistic].mean().rename("ours")
    paper = paper_statistic(statistic, mitigation=mitigation).set_index("model")["value"].rename("paper")
    both = pd.concat([ours, paper], axis=1).reset_index().rename(columns={"index": "model"})
    if mitigation:  # Table 4: DARTS-V2 and the three mitigations only
        both = both[both.paper.notna()]
    both["family"] = [family(m) if m in names() else "not in this book" for m in both.model]
    return both[["model", "family", "ours", "paper"]].reset_index(drop=True)

