"""Chapter 7 — model extraction: are NAS models easier to steal?

Pang et al. (USENIX Security 2022, Fig. 9; protocol §4.4) report that a Knockoff-Nets thief of
the victim's own architecture reaches a lower cross entropy H(p_victim, q_thief) against NAS
victims (about −0.3 nats), and (Table 4) that the deeper mitigation cells are harder to steal
(about +0.5 nats against DARTS). This module, per victim of the chapter's model list:

* trains one thief per query budget Q on the victim's **hard** labels (what the artifact's ART loss
  actually used) and one per soft-label budget on its probability vectors, each a cached zoo model
  (:class:`nascore.attacks.extraction.ThiefVariant`) **freshly initialised** with its own seed
  (:func:`thief_seed`: never the victim's, so a thief does not start from the victim's initial
  weights), in parallel workers;
* scores each thief on a fixed, seeded set of test images — the same for every model: the CE
  H(p_victim, q_thief) split into the victim's entropy H(p_victim) (what the victim's confidence
  sets; the CE's floor) and the imitation part KL(p_victim ‖ q_thief) = CE − H(p_victim), the
  primary ``extraction_kl`` at the largest budget; the thief's accuracy, its agreement with the
  victim and the agreement a constant predictor would reach (the gate "thieves learn") — and keeps
  the per-image KL for the paired mitigation comparison.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from .. import zoo
from ..attacks.extraction import (MODES, THIEF_RECIPE, ThiefVariant, check_budgets, extraction_metrics,
                                  per_image_ce, predict_probs)
from ..models import family
from ..profiles import Profile
from ..report import compare_paired
from ..report.confounds import entry_confounds
from ..parallel import map_in_workers

BASELINE = "darts"
EVAL_SEED = 77  # which test images score the thieves (the same for every model)
MONITOR_PER_CLASS = 10  # the thief's per-epoch test accuracy in its record: a progress monitor on 100 images
#: Below this many training image-passes over all thieves the chapter trains them in this process: starting
#: worker processes (seconds each) would cost more than it saves (smoke: 20 thieves, 27 s in-process vs 236 s
#: with fresh processes, measured on the shared 2-core machine).
IN_PROCESS_BELOW = 20_000
THIEVES_PER_PROCESS = 8  # a worker process is replaced after this many thieves (returns fragmented memory)
THIEF_SEED_OFFSET = 10_000  # a thief's seed = its victim's + this: its own initialisation and data order


def thief_seed(victim_seed: int) -> int:
    """The seed a thief of the victim trained with ``victim_seed`` is built and trained with: its own
    (protocol §4.4: the thief is freshly initialised), not the victim's — with the victim's seed a
    same-architecture thief would start from the victim's exact initial weights."""
    return victim_seed + THIEF_SEED_OFFSET


def chapter_models(profile: Profile) -> tuple[str, ...]:
    """The victims of this chapter: ``profile.extraction.extraction_models`` (validated against the profile's
    zoo) or, if ``None``, every model of the profile."""
    models = profile.models if profile.extraction.extraction_models is None else tuple(profile.extraction.extraction_models)
    unknown = [m for m in models if m not in profile.models]
    if unknown:
        raise ValueError(f"extraction_models {unknown} are not in profile {profile.name!r}'s zoo; "
                         f"valid: {', '.join(profile.models)}")
    fams = {family(m) for m in models}
    if not {"nas", "manual"} <= fams:
        raise ValueError(f"extraction_models need NAS and manual models, got {models}")
    return models


def check_parameters(profile: Profile, n_train: int | None = None) -> None:
    """Every knob of this chapter, before any compute (budgets against ``n_train`` when known)."""
    check_budgets(tuple(profile.extraction.extraction_budgets), n_train)
    if profile.extraction.extraction_soft_budgets is not None:
        check_budgets(tuple(profile.extraction.extraction_soft_budgets), n_train)
    if profile.extraction.thief_epochs < 1:
        raise ValueError(f"thief_epochs must be >= 1, got {profile.extraction.thief_epochs}")
    n = profile.extraction.extraction_test_images
    if n is not None and not 1 <= n <= 10_000:
        raise ValueError(f"extraction_test_images must be in 1..10000 or None, got {n}")


def soft_budgets(profile: Profile) -> tuple[int, ...]:
    return tuple(profile.extraction.extraction_budgets) if profile.extraction.extraction_soft_budgets is None \
        else tuple(profile.extraction.extraction_soft_budgets)


def thief_overrides(profile: Profile) -> dict:
    """The thief's recipe (the artifact's ART loop, :data:`THIEF_RECIPE`) for ``profile.extraction.thief_epochs``."""
    return {**THIEF_RECIPE, "epochs": profile.extraction.thief_epochs,
            "test_per_class": min(MONITOR_PER_CLASS, profile.test_per_class or MONITOR_PER_CLASS)}


def eval_indices(profile: Profile, n_test: int) -> torch.Tensor:
    n = n_test if profile.extraction.extraction_test_images is None else profile.extraction.extraction_test_images
    return torch.randperm(n_test, generator=torch.Generator().manual_seed(EVAL_SEED))[:n].sort().values


def victim_row(name: str, seed: int, entry) -> dict:
    """Model identity and the confounds every per-model table carries."""
    return {"model": name, "family": family(name), "seed": seed, **entry_confounds(entry)}


def victim_model(name: str, key: str):
    """The trained victim a thief queries, by its cache key (:func:`nascore.zoo.load`), in eval mode."""
    return zoo.load(name, key).model


def _score_thief(name: str, profile_fields: dict, seed: int, variant: ThiefVariant, overrides: dict,
                 idx: torch.Tensor, victim_probs: torch.Tensor) -> dict:
    """Train (or load) one thief and score it on the test images ``idx`` (worker function)."""
    t0 = time.perf_counter()
    thief = zoo.get(name, Profile(**profile_fields), seed=thief_seed(seed), progress=False, variant=variant,
                    **overrides)
    data = zoo.dataset()
    x, y = data.test_x[idx], data.test_y[idx]
    logq = predict_probs(thief.model, x, log=True)
    hist = thief.record["history"]
    p = victim_probs.double()
    entropy = -(p * torch.log(p.clamp_min(1e-300))).sum(dim=1)
    return {"model": variant.victim, "thief": name, "seed": seed, "budget": variant.budget, "mode": variant.mode,
            **extraction_metrics(victim_probs, logq, y),
            "kl_per_image": (per_image_ce(victim_probs, logq) - entropy).numpy(),
            "thief_train_loss": hist[-1]["train_loss"], "thief_train_seconds": thief.record["metrics"]["train_seconds"],
            "seconds": time.perf_counter() - t0}


def run(profile: Profile, data, progress: bool = True, workers: int | None = None):
    """Victims (cached zoo), thieves (trained in parallel, cached), scores.

    Returns ``(victims, thieves, per_image)``: the zoo entries ``{(model, seed): TrainedModel}``;
    one row per (model, seed, budget, mode) with the victim's covariates and mediators; per-image
    KL(victim ‖ thief) arrays ``{(model, seed, budget, mode): (n,)}``. DARTS-V2 and the mitigations are
    victims with all their seeds (the Table-4 claim takes seeds as units), the others with the profile's.
    """
    models = chapter_models(profile)
    seeds = {m: profile.seeds_for(m) if m in (BASELINE, *profile.mitigation_models) else profile.seeds
             for m in models}
    victims = zoo.train_many(models, profile, seeds=seeds, progress=progress)
    cfg = zoo.ModelConfig(**next(iter(victims.values())).record["config"])
    n_train = len(zoo.splits(data, cfg)[1])
    check_parameters(profile, n_train)
    idx = eval_indices(profile, len(data.test_y))
    overrides = thief_overrides(profile)
    jobs = []
    for (name, seed), entry in victims.items():
        probs = predict_probs(entry.model, data.test_x[idx])
        budgets = [(b, "hard") for b in profile.extraction.extraction_budgets] + [(b, "soft") for b in soft_budgets(profile)]
        for budget, mode in budgets:
            variant = ThiefVariant(victim=name, victim_key=entry.record["key"], budget=budget, mode=mode,
                                   load_victim=victim_model)
            zoo.resolve(name, profile, thief_seed(seed), variant=variant, **overrides)  # validates before training
            jobs.append((name, profile.to_dict(), seed, variant, overrides, idx, probs))
    # the largest jobs first, so that the workers finish together
    jobs.sort(key=lambda j: j[3].budget * (1.0 if family(j[0]) != "manual" else 0.4), reverse=True)

    def report(r, elapsed):
        if progress:
            print(f"thief {r['thief']:>16} Q={r['budget']:>5} {r['mode']}: CE {r['ce']:.3f} "
                  f"acc {100 * r['thief_acc']:.1f} % ({elapsed:.0f} s)", flush=True)

    passes = sum(j[3].budget for j in jobs) * profile.extraction.thief_epochs
    results = map_in_workers(_score_thief, jobs, 1 if passes < IN_PROCESS_BELOW else workers, report,
                             tasks_per_process=THIEVES_PER_PROCESS)
    conf = {key: victim_row(*key, entry) for key, entry in victims.items()}
    rows, per_image = [], {}
    for r in results:
        per_image[(r["model"], r["seed"], r["budget"], r["mode"])] = r.pop("kl_per_image")
        rows.append({**conf[(r["model"], r["seed"])], **r})
    thieves = pd.DataFrame(rows)
    for c in ("thief_acc", "victim_acc", "agreement", "victim_majority"):
        thieves[c] = 100 * thieves[c]
    thieves["agreement_gain"] = thieves["agreement"] - thieves["victim_majority"]
    return victims, thieves.sort_values(["model", "seed", "mode", "budget"], ignore_index=True), per_image


def per_model(thieves: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, seed): the chapter's statistics at the largest hard-label budget, with the
    victim's covariates and mediators: ``extraction_kl`` (primary: KL(victim ‖ thief), nats),
    ``extraction_ce`` (= ``victim_entropy`` + ``extraction_kl``), ``extraction_thief_acc``,
    ``extraction_agreement`` and ``agreement_gain`` (agreement − the victim's majority share, pp: the
    gate); ``extraction_ce_soft`` at the largest soft-label budget (``soft_budget``; exploratory).
    """
    keys = ["model", "family", "seed", "params", "flops", "clean_acc", "train_loss"]
    hard = thieves[thieves["mode"] == "hard"]
    top = hard[hard.budget == hard.budget.max()]
    out = top[keys + ["budget", "kl", "ce", "thief_acc", "agreement", "agreement_gain", "victim_majority",
                      "victim_entropy"]].rename(columns={
        "kl": "extraction_kl", "ce": "extraction_ce", "thief_acc": "extraction_thief_acc",
        "agreement": "extraction_agreement"})
    soft = thieves[thieves["mode"] == "soft"]
    if not soft.empty:
        s = soft[soft.budget == soft.budget.max()][["model", "seed", "budget", "ce"]]
        out = out.merge(s.rename(columns={"budget": "soft_budget", "ce": "extraction_ce_soft"}),
                        on=["model", "seed"], how="left")
    return out.reset_index(drop=True)


def mode_comparison(thieves: pd.DataFrame) -> pd.DataFrame:
    """Hard vs soft labels at the budgets run in both modes: mean CE per family (nats)."""
    both = thieves.pivot_table(index=["model", "family", "seed", "budget"], columns="mode", values="ce").dropna()
    if both.empty or not set(MODES) <= set(both.columns):
        return pd.DataFrame(columns=["family", "budget", "hard", "soft", "soft_minus_hard", "n_models"])
    both = both.reset_index()
    both["soft_minus_hard"] = both["soft"] - both["hard"]
    out = both.groupby(["family", "budget"]).agg(hard=("hard", "mean"), soft=("soft", "mean"),
                                                 soft_minus_hard=("soft_minus_hard", "mean"),
                                                 n_models=("model", "nunique"))
    return out.reset_index()


def _gate(per_model_df: pd.DataFrame, claim: str, models=None):
    from ..report import claim_gate
    pm = per_model_df if models is None else per_model_df[per_model_df.model.isin(models)]
    return claim_gate(claim, pm.groupby("model", as_index=False)["agreement_gain"].mean())


def mitigation_rows(per_image: dict, thieves: pd.DataFrame, mitigations, seed: int = 0,
                    per_model_df: pd.DataFrame | None = None) -> list[dict]:
    """mitigation − DARTS-V2 extraction KL at the largest hard-label budget, per mitigation cell.

    With ≥ 2 victim seeds of both (and ``per_model_df``) the seeds are the units (primary); the
    comparison on **paired** test images (both thieves scored on the same images; bootstrap CI and
    sign-flip p of the mean per-image difference: about these trained weights) is then
    exploratory, else primary. Every row carries the claim's gate on DARTS-V2 and the mitigations.
    """
    from ..report import compare_to_baseline

    budget = int(thieves.loc[thieves["mode"] == "hard", "budget"].max())
    base = per_image.get((BASELINE, seed, budget, "hard"))
    if base is None:
        raise ValueError(f"the mitigation comparison needs {BASELINE!r} among the extraction models")
    gate = _gate(per_model_df, "mitigation.more_manual_like", (BASELINE, *mitigations)) \
        if per_model_df is not None else None
    seeds_of = lambda m: {k[1] for k in per_image if k[0] == m and k[2] == budget and k[3] == "hard"}  # noqa: E731
    by_seeds = per_model_df is not None and all(len(seeds_of(m)) >= 2 for m in (BASELINE, *mitigations))
    rows = []
    if by_seeds:
        rows += [compare_to_baseline(per_model_df, "extraction_kl", "mitigation.more_manual_like", name, unit="seed",
                                     gate=gate, setting=f"Q = {budget}, hard labels, victim seeds as units")
                 for name in mitigations]
    return rows + [compare_paired(per_image[(name, seed, budget, "hard")], base, "extraction_kl",
                                  "mitigation.more_manual_like", name, baseline=BASELINE, seed=seed,
                                  exploratory=by_seeds, gate=gate,
                                  setting=f"Q = {budget}, hard labels, same images, seed {seed}")
                   for name in mitigations]


def paper_ce(models=None) -> pd.DataFrame | None:
    """The paper's per-model Fig. 9 CE at each budget it reports (1k–16k) for ``models`` (all if
    ``None``), or ``None`` when this checkout has no copy of the paper's values (``nascore.report.paper``)."""
    try:
        from ..report.paper import paper_values
    except ImportError:
        return None
    df = paper_values("Fig. 9")
    df = df.assign(budget=df["setting"].str.extract(r"at (\d+)k queries")[0].astype(int) * 1000)
    if models is not None:
        df = df[df.model.isin(models)]
    return df[["model", "family", "budget", "value"]].rename(columns={"value": "paper_ce"})


def paper_mitigation_ce() -> pd.DataFrame | None:
    """The paper's Table 4 extraction CE at 16k queries (DARTS and the mitigations), or ``None``."""
    try:
        from ..report.paper import paper_values
    except ImportError:
        return None
    df = paper_values("Table 4 / Fig. 17", "extraction CE at 16k queries")
    return df[["model", "value"]].rename(columns={"value": "paper_ce_16k"})


def label_mode_text(thieves: pd.DataFrame, paper: pd.DataFrame | None) -> str:
    """Which label mode the paper's numbers fit, read off one property: cross entropies above
    ln 10 (the CE of a thief answering uniformly), which confidently wrong hard-label thieves reach."""
    ln10 = float(np.log(10))
    share = {m: float((g.ce > ln10).mean()) for m, g in thieves.groupby("mode")}
    lines = [f"- **{m} labels** (this run): CE from {g.ce.min():.2f} to {g.ce.max():.2f} nats; "
             f"{int((g.ce > ln10).sum())} of {len(g)} thieves above ln 10." for m, g in thieves.groupby("mode")]
    if paper is None:
        return "\n".join(lines + ["- The paper's values are not in this checkout."])
    above = int((paper.paper_ce > ln10).sum())
    lines.append(f"- **the paper** (Fig. 9, all models and budgets): {above} of {len(paper)} values above ln 10, "
                 f"up to {paper.paper_ce.max():.2f} nats.")
    if above and set(MODES) <= set(share):
        if share["hard"] > share["soft"]:
            lines.append(f"- Here {100 * share['hard']:.0f} % of the hard-label thieves and {100 * share['soft']:.0f} % "
                         "of the soft-label ones exceed ln 10: the paper's values above ln 10 fit **hard labels**, as "
                         "the artifact's code implies.")
        else:
            lines.append(f"- Here the modes do not separate on this property ({100 * share['hard']:.0f} % of the "
                         f"hard-label and {100 * share['soft']:.0f} % of the soft-label thieves above ln 10): this run "
                         "cannot tell which mode the paper's numbers come from.")
    return "\n".join(lines)


def family_budget_means(thieves: pd.DataFrame, mode: str = "hard") -> pd.DataFrame:
    """Mean CE per family and budget (nats): the numbers behind the budget plot."""
    sub = thieves[thieves["mode"] == mode]
    return sub.groupby(["family", "budget"], as_index=False).agg(ce=("ce", "mean"), thief_acc=("thief_acc", "mean"),
                                                                 n_models=("model", "nunique"))


def confound_correlations(per_model_df: pd.DataFrame, value: str = "extraction_ce", seed: int = 0) -> pd.DataFrame:
    """Spearman ρ between ``value`` and each confound over all victims (is it just size or accuracy?)."""
    from .common import spearman_row

    pm = per_model_df.groupby("model").mean(numeric_only=True)
    rows = []
    for c in ("params", "clean_acc", "train_loss", "victim_entropy"):
        if c in pm:
            rows.append({"confound": c, "value": value, **spearman_row(np.log10(pm[c]) if c == "params" else pm[c],
                                                                        pm[value], seed)})
    return pd.DataFrame(rows)


def chapter_mitigations(profile: Profile, models) -> list[str]:
    """The mitigation cells among the chapter's victims ``models`` (compared with :data:`BASELINE`)."""
    return [m for m in models if m in profile.mitigation_models]


def verdict_rows(per_model_df: pd.DataFrame, thieves: pd.DataFrame, per_image: dict, profile: Profile,
                 models) -> list[dict]:
    """The chapter's verdict plan, in the order of its table.

    * ``extraction_kl`` (KL(victim ‖ thief), hard labels, largest budget): the primary statistic of
      ``extraction.ce``, NAS − manual over the victims; its two parts ``extraction_ce`` (exploratory)
      and ``victim_entropy`` (exploratory: what the victims' confidence alone contributes);
    * ``extraction_ce_soft`` at the largest soft-label budget, where soft-label thieves were run,
      and the thief's accuracy and agreement at the largest budget (exploratory);
    * the hard-label CE at every smaller budget (:func:`budget_rows`, exploratory);
    * each mitigation cell − DARTS-V2 on paired test images (``mitigation.more_manual_like``,
      :func:`mitigation_rows`), where :data:`BASELINE` and a mitigation are among ``models``.
    """
    from .common import nas_vs_manual

    pm = per_model_df
    fam = pm[pm.family.isin(["nas", "manual"])]
    gate = _gate(fam, "extraction.ce")
    top, soft_top = int(pm.budget.max()), pm.get("soft_budget", pd.Series(dtype=float)).max()
    rows = [nas_vs_manual(pm, "extraction_kl", "extraction.ce", setting=f"Q = {top}, hard labels",
                          profile=profile.name, gate=gate),
            nas_vs_manual(pm, "extraction_ce", "extraction.ce", setting=f"Q = {top}, hard labels",
                          profile=profile.name, gate=gate),
            nas_vs_manual(pm, "victim_entropy", "extraction.ce", setting=f"Q = {top}, hard labels",
                          profile=profile.name, gate=gate)]
    if "extraction_ce_soft" in pm and pm.extraction_ce_soft.notna().any():
        rows.append(nas_vs_manual(pm.dropna(subset=["extraction_ce_soft"]), "extraction_ce_soft",
                                  setting=f"Q = {int(soft_top)}, soft labels", profile=profile.name, gate=gate))
    rows += [nas_vs_manual(pm, s, setting=f"Q = {top}, hard labels", profile=profile.name, gate=gate)
             for s in ("extraction_thief_acc", "extraction_agreement")]
    rows += budget_rows(thieves, profile, gate)
    mitigations = chapter_mitigations(profile, models)
    if mitigations and BASELINE in models:
        rows += mitigation_rows(per_image, thieves, mitigations, seed=profile.seeds[0], per_model_df=pm)
    return rows


def budget_rows(thieves: pd.DataFrame, profile: Profile, gate=None) -> list[dict]:
    """Exploratory NAS − manual rows of the hard-label CE at each budget below the largest
    (``extraction_ce_at_budget``): the paper's −0.3 fits its small budgets (§11)."""
    from .common import nas_vs_manual

    hard = thieves[thieves["mode"] == "hard"]
    rows = []
    for b in sorted(hard.budget.unique())[:-1]:
        df = hard[hard.budget == b].rename(columns={"ce": "extraction_ce_at_budget"})
        rows.append(nas_vs_manual(df, "extraction_ce_at_budget", setting=f"Q = {b}, hard labels", profile=profile.name,
                                  gate=gate))
    return rows
