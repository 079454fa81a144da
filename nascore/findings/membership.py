"""Chapter 8 — membership inference: do NAS models leak more about their training images?

Pang et al. (USENIX Security 2022, Fig. 10; protocol §4.5) report a label-only membership
attack about 0.04 AUC more successful against NAS models. This module measures, per model:

* the artifact's attack: HopSkipJump (untargeted, L2, 10 iterations, ≤ 100 probes) from members
  (random training images, one crop/flip draw) and confidence-matched non-members (test images
  with victim max-softmax in [0.999, 0.99999], widened by the stated rule when too few exist);
  score = L∞ of the perturbation (the artifact) and L2 (what the attack optimises); ROC AUC
  folded to ≥ 0.5 as the artifact does (``mia_boundary_auc``, ``mia_boundary_auc_l2``);
* score-based attacks on random members vs random non-members (loss = Yeom et al. 2018, primary
  ``mia_loss_auc``; confidence, entropy, modified entropy; offline LiRA when the profile trains
  reference models), AUC and TPR at 1 % and 0.1 % FPR;
* the train–test generalisation gap on the same images (membership leaks through overfitting).

The member and non-member sets are drawn once per profile, seeded, the same for every model
(:class:`MembershipSets`); only the confidence-matched non-members depend on the victim, as the
artifact's selection rule does, chosen in one fixed order.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from .. import zoo
from ..attacks.membership import (ARTIFACT_SEED, SCORE_ATTACKS, HopSkipJump, artifact_hopskipjump, artifact_members,
                                  auc_interval, auc_p_value, confidence_matched, folded_auc, lira_offline, logit_confidence,
                                  membership_scores, random_indices, roc_auc, shared_band, tpr_at_fpr)
from ..attacks.membership.reference import HoldOutVariant
from ..models import family
from ..models.predict import predict
from ..report.confounds import entry_confounds
from ..profiles import Profile
from ..parallel import map_in_workers

SCORE_SEED = 31  # which training images are the score-based members (and the LiRA references' held-out set)
POOL_SEED = 32  # the order of the test images screened for non-members
REFERENCE_SEED0 = 1000  # training seeds of the LiRA reference models: 1000, 1001, ...
FPRS = {"1fpr": 0.01, "01fpr": 0.001}
#: Score-based attack → column prefix (the registered statistics' names).
COLUMN = {"loss": "mia_loss", "confidence": "mia_conf", "entropy": "mia_entropy",
          "modified_entropy": "mia_mentr", "lira": "mia_lira"}
SMOOTHNESS_STATS = ("gv_init", "gv_trained", "top_eig", "trace", "param_flatness")


@dataclass(frozen=True)
class MembershipSets:
    """The images every model of a profile is attacked with.

    boundary_members : uint8 ``(n, 3, 32, 32)`` — random training images with one crop/flip draw.
    boundary_member_idx, score_member_idx : indices into the profile's training split.
    pool_idx : indices into the test set, in the seeded order non-members are taken from (the
        first ``n_score`` are the score-based non-members).
    n_score : score-based members = non-members.
    """

    boundary_members: torch.Tensor
    boundary_member_idx: torch.Tensor
    score_member_idx: torch.Tensor
    pool_idx: torch.Tensor
    n_score: int


def chapter_models(profile: Profile) -> tuple[str, ...]:
    """``profile.membership.membership_models`` (validated) or the profile's NAS and manual models."""
    models = (profile.nas_models + profile.manual_models) if profile.membership.membership_models is None \
        else tuple(profile.membership.membership_models)
    unknown = [m for m in models if m not in profile.models]
    if unknown:
        raise ValueError(f"membership_models {unknown} are not in profile {profile.name!r}'s zoo; "
                         f"valid: {', '.join(profile.models)}")
    if not {"nas", "manual"} <= {family(m) for m in models}:
        raise ValueError(f"membership_models need NAS and manual models, got {models}")
    return models


def victim_overrides(profile: Profile) -> dict:
    """Zoo overrides of the victims' training (``mia_victim_per_class``, ``mia_victim_epochs``); empty = the
    zoo's own models. The same for every victim and for the LiRA references."""
    knobs = {"train_per_class": profile.membership.mia_victim_per_class, "epochs": profile.membership.mia_victim_epochs}
    return {k: v for k, v in knobs.items() if v is not None}


def victims_text(profile: Profile) -> str:
    """How this chapter's victims were trained, in words for the page."""
    over = victim_overrides(profile)
    if not over:
        return f"the zoo's models ({profile.epochs} epoch(s) on the profile's training split)"
    per_class = over.get("train_per_class", profile.train_per_class)
    images = "all 5,000" if per_class is None else f"{per_class:,}"
    return (f"trained for this chapter, every one alike: {over.get('epochs', profile.epochs)} epochs on {images} "
            "training images per class (class-balanced, seeded), the zoo's recipe otherwise")


def check_parameters(profile: Profile, n_train: int | None = None, n_test: int = 10_000) -> None:
    """Every knob of this chapter, before any compute."""
    for k in ("mia_samples", "mia_score_samples"):
        if getattr(profile.membership, k) < 1:
            raise ValueError(f"{k} must be >= 1, got {getattr(profile.membership, k)}")
    pool = profile.membership.mia_pool_images if profile.membership.mia_pool_images is not None else n_test
    if not 1 <= pool <= n_test:
        raise ValueError(f"mia_pool_images must be in 1..{n_test} or None, got {profile.membership.mia_pool_images}")
    need = max(profile.membership.mia_samples, profile.membership.mia_score_samples)
    if need > pool:
        raise ValueError(f"mia_pool_images={pool} test images cannot supply {need} non-members")
    per_class = victim_overrides(profile).get("train_per_class", profile.train_per_class)
    if n_train is None and per_class is not None:
        n_train = 10 * per_class  # the victims' class-balanced training split, known before training
    if n_train is not None and need > n_train:
        raise ValueError(f"the training split has {n_train} images, fewer than the {need} members asked for")
    if profile.membership.mia_reference_models == 1:
        raise ValueError("mia_reference_models must be 0 (LiRA off) or >= 2 (a variance needs two models)")


def draw_sets(profile: Profile, train_x: torch.Tensor, n_test: int) -> MembershipSets:
    members, member_idx = artifact_members(train_x, profile.membership.mia_samples, seed=ARTIFACT_SEED)
    pool = n_test if profile.membership.mia_pool_images is None else profile.membership.mia_pool_images
    return MembershipSets(boundary_members=members, boundary_member_idx=member_idx,
                          score_member_idx=random_indices(len(train_x), profile.membership.mia_score_samples, SCORE_SEED),
                          pool_idx=random_indices(n_test, pool, POOL_SEED), n_score=profile.membership.mia_score_samples)


def _attack_rows(attack: str, labels: np.ndarray, scores: np.ndarray, fold: bool) -> dict:
    auc = roc_auc(labels, scores)
    return {"attack": attack, "auc_raw": auc, "auc": folded_auc(auc) if fold else auc,
            "p_value": auc_p_value(labels, scores),
            **{f"tpr_at_{k}": 100 * tpr_at_fpr(labels, scores, f) for k, f in FPRS.items()},
            "n_members": int(labels.sum()), "n_nonmembers": int((labels == 0).sum())}


def _attack_model(name: str, profile_fields: dict, seed: int, sets: MembershipSets, hsj: HopSkipJump,
                  reference_keys: tuple[str, ...], band: tuple[float, float]) -> dict:
    """Every attack on one model (worker function): rows per attack, the per-model summary and
    the per-image scores for the ROC plots. ``band``: the confidence band every victim's matched
    non-members come from (:func:`nascore.attacks.membership.shared_band`)."""
    t0 = time.perf_counter()
    profile = Profile(**profile_fields)
    entry = zoo.get(name, profile, seed=seed, progress=False, **victim_overrides(profile))
    model = entry.model
    data = zoo.dataset()
    train_x, train_y, *_ = zoo.splits(data, zoo.ModelConfig(**entry.record["config"]))
    pool_x, pool_y = data.test_x[sets.pool_idx], data.test_y[sets.pool_idx]
    pool_logits = predict(model, pool_x)
    # --- the artifact's label-only attack
    n = len(sets.boundary_members)
    nm, used = confidence_matched(pool_logits.double().softmax(1).max(1).values.numpy(), n, band=band)
    if used != tuple(band):
        raise RuntimeError(f"{name}: the shared band {band} does not hold {n} non-members (got {used})")
    rand = sets.pool_idx.new_tensor(range(n))             # the random-non-member control: the first n pool images
    x = torch.cat([sets.boundary_members, pool_x[nm], pool_x[rand]]).float().div_(255)
    t_hsj = time.perf_counter()
    res = hsj(model, x.to(next(model.parameters()).device))
    t_hsj = time.perf_counter() - t_hsj
    labels = np.r_[np.ones(n), np.zeros(n)].astype(int)
    linf_all, l2_all = res.linf.cpu().numpy().astype(float), res.l2.cpu().numpy().astype(float)
    linf, l2 = linf_all[:2 * n], l2_all[:2 * n]
    linf_rand = np.r_[linf_all[:n], linf_all[2 * n:]]
    # score = distance to the boundary: members farther is the artifact's hypothesis (AUC > 0.5 unfolded)
    rows = [_attack_rows("boundary_linf", labels, linf, fold=True), _attack_rows("boundary_l2", labels, l2, fold=True),
            _attack_rows("boundary_linf_random", labels, linf_rand, fold=True)]
    # --- score-based attacks: random members vs the first n_score pool images
    m_idx = sets.score_member_idx
    m_logits, nm_logits = predict(model, train_x[m_idx]), pool_logits[:sets.n_score]
    s_labels = np.r_[np.ones(len(m_idx)), np.zeros(sets.n_score)].astype(int)
    y_all = torch.cat([train_y[m_idx], pool_y[:sets.n_score]])
    logits_all = torch.cat([m_logits, nm_logits])
    scores = membership_scores(logits_all, y_all)
    for attack in SCORE_ATTACKS:
        rows.append(_attack_rows(attack, s_labels, scores[attack], fold=False))
    if reference_keys:
        ref_phi = np.stack([logit_confidence(predict(zoo.load(name, k).model, torch.cat(
            [train_x[m_idx], pool_x[:sets.n_score]])), y_all) for k in reference_keys])
        scores["lira"] = lira_offline(logit_confidence(logits_all, y_all), ref_phi)
        rows.append(_attack_rows("lira", s_labels, scores["lira"], fold=False))
    acc_m = float((m_logits.argmax(1) == train_y[m_idx]).double().mean())
    acc_nm = float((nm_logits.argmax(1) == pool_y[:sets.n_score]).double().mean())
    ce = torch.nn.functional.cross_entropy
    summary = {"model": name, "seed": seed, "train_acc_members": 100 * acc_m, "test_acc_nonmembers": 100 * acc_nm,
               "gen_gap": 100 * (acc_m - acc_nm),
               "loss_gap": float(ce(nm_logits, pool_y[:sets.n_score]) - ce(m_logits, train_y[m_idx])),
               "band_low": band[0], "band_high": band[1],
               "boundary_failures": int((~res.success).sum()),
               "members_misclassified": 100 * float((linf[:n] == 0).mean()),
               "median_linf_members": float(np.median(linf[:n])), "median_linf_nonmembers": float(np.median(linf[n:2 * n])),
               "median_linf_random": float(np.median(linf_all[2 * n:])),
               "hsj_queries_mean": float(res.queries.double().mean()), "hsj_seconds": t_hsj,
               "seconds": time.perf_counter() - t0}
    per_image = {"boundary": {"labels": labels, "linf": linf, "l2": l2, "linf_random": linf_rand},
                 "score": {"labels": s_labels, **{k: np.asarray(v) for k, v in scores.items()}}}
    return {"rows": [{"model": name, "seed": seed, **r} for r in rows], "summary": summary, "per_image": per_image}


def train_references(models, profile: Profile, n_train: int, progress: bool = True) -> dict[str, tuple[str, ...]]:
    """Offline-LiRA reference models (``profile.membership.mia_reference_models`` per architecture, trained
    without the score-based members); ``{model: (cache keys,)}``, empty when LiRA is off."""
    r = profile.membership.mia_reference_models
    if r == 0:
        return {m: () for m in models}
    variant = HoldOutVariant(profile.membership.mia_score_samples, SCORE_SEED)
    seeds = tuple(REFERENCE_SEED0 + i for i in range(r))
    epochs = victim_overrides(profile).get("epochs", profile.epochs)
    small = n_train * epochs * len(models) * r < 20_000  # process start-up would dominate
    refs = zoo.train_many(models, profile, seeds=seeds, variant=variant, progress=progress,
                          workers=1 if small else None, **victim_overrides(profile))
    return {m: tuple(refs[(m, s)].record["key"] for s in seeds) for m in models}


def run(profile: Profile, data, progress: bool = True, workers: int | None = None, hsj: HopSkipJump | None = None):
    """Every attack on every model of the chapter.

    Returns ``(victims, per_model, attacks, per_image, sets)``: the zoo entries; one row per
    (model, seed) with confounds, gap and the registered statistics; one row per (model, seed,
    attack); per-image scores ``{(model, seed): {...}}``; the :class:`MembershipSets`.
    """
    models = chapter_models(profile)
    check_parameters(profile, n_test=len(data.test_y))
    victims = zoo.train_many(models, profile, seeds=profile.seeds, progress=progress, **victim_overrides(profile))
    configs = {k: zoo.ModelConfig(**e.record["config"]) for k, e in victims.items()}
    if len({str(c.data) for c in configs.values()}) != 1:
        raise ValueError("the models of this chapter were trained on different training splits: one member set "
                         "cannot serve them all")
    train_x = zoo.splits(data, next(iter(configs.values())))[0]
    check_parameters(profile, n_train=len(train_x), n_test=len(data.test_y))
    sets = draw_sets(profile, train_x, len(data.test_y))
    refs = train_references(models, profile, len(train_x), progress)
    hsj = hsj or artifact_hopskipjump()
    pool_x = data.test_x[sets.pool_idx]
    band = shared_band([predict(e.model, pool_x).double().softmax(1).max(1).values.numpy() for e in victims.values()],
                       profile.membership.mia_samples)
    jobs = [(name, profile.to_dict(), seed, sets, hsj, refs[name], band) for name, seed in victims]
    small = 2 * profile.membership.mia_samples * 720 * len(jobs) < 50_000  # forward passes: process start-up would dominate

    def report(r, elapsed):
        if progress:
            s = r["summary"]
            print(f"{s['model']:>16}: boundary AUC {r['rows'][0]['auc']:.3f}, loss AUC {r['rows'][2]['auc']:.3f}, "
                  f"gap {s['gen_gap']:.1f} pp ({elapsed:.0f} s)", flush=True)

    n_workers = 1 if small else (zoo.default_workers() if workers is None else workers)
    # one process per worker, each attacking its share of the victims (tasks_per_process = len(jobs) made a
    # single chunk: every victim attacked by one process while the other cores idled)
    results = map_in_workers(_attack_model, jobs, n_workers, report, tasks_per_process=-(-len(jobs) // n_workers),
                             desc="membership attacks")
    attacks = pd.DataFrame([row for r in results for row in r["rows"]])
    summary = pd.DataFrame([r["summary"] for r in results])
    conf = pd.DataFrame([{"model": n, "seed": s, "family": family(n), **entry_confounds(e)}
                         for (n, s), e in victims.items()])
    wide = attacks.pivot_table(index=["model", "seed"], columns="attack", values=["auc", "tpr_at_1fpr", "tpr_at_01fpr"])
    stats = pd.DataFrame(index=wide.index)
    raw = attacks.pivot_table(index=["model", "seed"], columns="attack", values="auc_raw")
    stats["mia_boundary_auc"] = raw["boundary_linf"]                 # unfolded: members farther = above 0.5
    stats["mia_boundary_auc_folded"] = wide[("auc", "boundary_linf")]   # the artifact's max(AUC, 1 − AUC)
    stats["mia_boundary_auc_random"] = raw["boundary_linf_random"]   # control: random non-members
    stats["mia_boundary_auc_l2"] = raw["boundary_l2"]
    for attack, col in COLUMN.items():
        if ("auc", attack) in wide:
            stats[f"{col}_auc"] = wide[("auc", attack)]
            for k in FPRS:
                stats[f"{col}_tpr_at_{k}"] = wide[(f"tpr_at_{k}", attack)]
    per_model = conf.merge(summary, on=["model", "seed"]).merge(stats.reset_index(), on=["model", "seed"])
    per_image = {(r["summary"]["model"], r["summary"]["seed"]): r["per_image"] for r in results}
    # the gate "a membership signal exists": the loss-threshold AUC's 95 % interval, per model
    low = {k: auc_interval(v["score"]["labels"], v["score"]["loss"], seed=SCORE_SEED)[0] for k, v in per_image.items()}
    per_model["mia_loss_auc_low"] = [low[(m, s)] for m, s in zip(per_model.model, per_model.seed)]
    return victims, per_model, attacks, per_image, sets


def gap_adjusted(per_model: pd.DataFrame, value: str, covariate: str = "gen_gap", ci: float = 0.95) -> dict:
    """NAS − manual difference of ``value`` adjusted for ``covariate`` alone, by least squares over
    the models (``value ~ 1 + NAS + covariate``, seed-averaged; :func:`nascore.report.confounds.adjust`):
    coefficient of NAS, its t-based CI and p; NaN with a note when too few models remain."""
    from ..report.confounds import MIN_RESIDUAL_DF, adjust

    pm = per_model[per_model.family.isin(["nas", "manual"])].groupby("model").agg(
        v=(value, "mean"), c=(covariate, "mean"), family=("family", "first"))
    fit = adjust(pm.v.to_numpy(float), (pm.family == "nas").to_numpy(), pm[["c"]].rename(columns={"c": covariate}),
                 ci)[covariate]
    row = {"value": value, "covariate": covariate, "n": len(pm)}
    if fit is None or not np.isfinite(fit.estimate):
        return {**row, "estimate": np.nan, "low": np.nan, "high": np.nan, "p_value": np.nan,
                "note": f"not estimable: needs >= {MIN_RESIDUAL_DF + 3} models and a covariate that varies"}
    return {**row, "estimate": fit.estimate, "low": fit.low, "high": fit.high, "p_value": fit.p_value, "note": ""}


def smoothness_correlations(per_model: pd.DataFrame, profile: Profile, values=("mia_boundary_auc", "mia_loss_auc"),
                            seed: int = 0) -> tuple[pd.DataFrame | None, str]:
    """Spearman ρ between this chapter's AUCs and chapter 3's smoothness statistics, over the
    models in both tables; ``(None, reason)`` when chapter 3's table is missing."""
    from ..provenance import REPO_ROOT
    from ..report import load_results
    from .common import spearman_row

    stem = REPO_ROOT / "results" / profile.name / "03_smoothness" / "per_model"
    if not stem.with_suffix(".csv").is_file():
        return None, f"chapter 3's table (results/{profile.name}/03_smoothness/per_model.csv) is not there: run chapter 3 first"
    smooth = load_results(stem).groupby("model").mean(numeric_only=True)
    ours = per_model.groupby("model").mean(numeric_only=True)
    both = ours.join(smooth[[c for c in SMOOTHNESS_STATS if c in smooth]], how="inner", rsuffix="_ch3")
    rows = [{"smoothness": s, "value": v, **spearman_row(both[s], both[v], seed)}
            for s in SMOOTHNESS_STATS if s in both for v in values if v in both]
    note = f"over the {len(both)} models in both tables"
    if victim_overrides(profile):
        note += (" (chapter 3's statistics are of the zoo's weights, this chapter's AUCs of victims trained on "
                 "a smaller subset for more epochs: an architecture-level comparison)")
    return pd.DataFrame(rows), note


#: Mediators beyond the book's (:data:`nascore.report.MEDIATORS`): membership leaks through
#: overfitting, so the generalisation gap on the attacked images lies on the path too — shown as an
#: exploratory mediator fit, never adjusted for.
EXTRA_MEDIATORS = ("gen_gap",)


def verdict_rows(per_model: pd.DataFrame, profile: Profile) -> list[dict]:
    """The chapter's verdict plan: NAS − manual rows (models as units), size-adjusted by the book's
    confound rule, with :data:`nascore.report.MEDIATORS` + :data:`EXTRA_MEDIATORS` as mediator fits,
    in the order of its table.

    * ``mia_boundary_auc`` (HopSkipJump, L∞ score): the primary statistic of ``membership.auc``;
      ``mia_boundary_auc_l2`` (L2 score) exploratory;
    * ``mia_loss_auc``: the primary statistic of ``membership.score_auc``; ``mia_loss_tpr_at_1fpr``
      and, where reference models were trained, ``mia_lira_auc`` exploratory.

    Each row's setting names the images it rests on (``profile.membership.mia_samples`` members + as many
    non-members for the label-only attack, ``profile.membership.mia_score_samples`` for the score-based ones).
    """
    from ..report import MEDIATORS
    from .common import nas_vs_manual

    from ..report import claim_gate

    conf = MEDIATORS + EXTRA_MEDIATORS
    n_b, n_s = profile.membership.mia_samples, profile.membership.mia_score_samples
    fam = per_model[per_model.model.map(family).isin(["nas", "manual"])] if "mia_loss_auc_low" in per_model else None
    gate = (claim_gate("membership.auc", fam.groupby("model", as_index=False)["mia_loss_auc_low"].mean())
            if fam is not None else None)
    rows = [nas_vs_manual(per_model, "mia_boundary_auc", mediators=conf, setting=f"{n_b} + {n_b} images, L∞ score",
                          profile=profile.name, gate=gate),
            nas_vs_manual(per_model, "mia_boundary_auc_l2", mediators=conf,
                          setting=f"{n_b} + {n_b} images, L2 score", profile=profile.name, gate=gate)]
    for s, words in (("mia_boundary_auc_folded", "L∞ score, folded as the artifact does"),
                     ("mia_boundary_auc_random", "L∞ score, random non-members (control)")):
        if s in per_model:
            rows.append(nas_vs_manual(per_model, s, mediators=conf, setting=f"{n_b} + {n_b} images, {words}",
                                      profile=profile.name, gate=gate))
    for s in ("mia_loss_auc", "mia_loss_tpr_at_1fpr") + (("mia_lira_auc",) if "mia_lira_auc" in per_model else ()):
        rows.append(nas_vs_manual(per_model, s, mediators=conf, setting=f"{n_s:,} + {n_s:,} images",
                                  profile=profile.name, gate=gate))
    return rows


def paper_auc(models) -> pd.DataFrame | None:
    """The paper's per-model label-only AUC (Fig. 10), or ``None`` when this checkout has no copy
    of the paper's values (``nascore.report.paper``)."""
    try:
        from ..report.paper import paper_values
    except ImportError:
        return None
    df = paper_values("Fig. 10")
    return df[df.model.isin(models)][["model", "family", "value"]].rename(columns={"value": "paper_auc"})


def roc_points(per_image: dict, kind: str, attack: str) -> dict:
    """``{(model, seed): (fpr, tpr)}`` of one attack (``kind`` "boundary" or "score")."""
    from ..attacks.membership import roc_curve

    out = {}
    for key, d in per_image.items():
        if attack in d[kind]:
            fpr, tpr, _ = roc_curve(d[kind]["labels"], d[kind][attack])
            out[key] = (fpr, tpr)
    return out
