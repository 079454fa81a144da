"""Chapter 2 — adversarial evasion: are NAS models easier to fool?

Pang et al. (USENIX Security 2022, Fig. 2; protocol §4.1) report that targeted PGD succeeds
about 10 points more often on NAS models than on manual ones. This module measures, per model:

* the artifact's attack exactly (:func:`nascore.attacks.artifact_pgd`): L∞, ε = 8/255, step
  2/255, 7 steps, no random start, least-likely target, success when p(target) > 0.99 and
  argmax = target; and the same attack scored with the relaxed rule argmax = target. It is run
  **once per image** with ``early_stop=False``, which records both outcomes of every image
  (:mod:`nascore.attacks.result`): *broken at any step* (the artifact's early-stopping ASR, the
  number the chapters use) and *successful at the last step* (what tools without early stopping,
  e.g. torchattacks, report). The per-image table is stored so that chapter 4 pairs images
  instead of re-attacking;
* untargeted robust accuracy against ε for L∞ and L2 PGD (random start, step 2.5·ε/steps,
  Madry et al. 2018), again both "robust at every step" and "robust at the last step",
  summarised by the normalised area under the curve and the ε where it falls to 50 %;
* a query-based black-box attack (NES gradient estimates in the same PGD loop, Ilyas et al. 2018,
  runner-up target), ASR against the number of model queries, from the cost of one step on.

Image sets. Every model is attacked on the first ``pgd_images`` test-subset images it classifies
correctly (the protocol set). Each mitigation and DARTS-V2 are also attacked on the first
``pgd_images`` images that **both** classify correctly (the pair's paired set, for chapter 4's
McNemar tests); an image in several sets is attacked once per model.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..attacks import NES, PGD, artifact_pgd, asr_at_budget, attack_batches, hits_target
from ..models import cell_stats, family, is_size_variant
from ..models.predict import predict
from ..parallel import map_in_workers
from ..profiles import Profile
from ..report.estimators import auc_trapz
from ..zoo import load as zoo_load
from .common import nas_vs_manual, spearman_row
from .inputs import evaluation_subset

BATCH = 100
PGD_STEPS = 7  # the artifact's step count (failures count 2 × 7 = 14 iterations)
#: Success rules of the targeted PGD: the artifact's (p(target) > 0.99 and argmax = target) and
#: the relaxed one (argmax = target). Weakly trained, low-confidence networks can sit at 0 % under
#: the artifact's rule (a floor effect); the relaxed rule keeps the comparison informative.
SUCCESS_RULES = {"artifact": None, "argmax": hits_target}
#: The model every mitigation is paired with in chapter 4 (DARTS-V2).
PAIRED_BASELINE = "darts"

# --------------------------------------------------------------------------- images
def correct_mask(model, x, y, batch_size: int = BATCH) -> torch.Tensor:
    """``(N,)`` bool CPU tensor: the model's clean prediction equals the label."""
    return predict(model, x, batch_size, reduce=lambda logits: logits.argmax(1)) == y


def image_sets(entries: dict, data, n: int, baseline: str = "", subjects: tuple[str, ...] = ()):
    """The images to attack, as positions in the profile's test subset.

    Returns ``(protocol, pairs)``: ``protocol[(model, seed)]`` = the first ``n`` images the
    model classifies correctly (protocol §4.1); ``pairs[(subject, seed)]`` = the first ``n``
    images that both ``subject`` and ``baseline`` (same seed) classify correctly — the paired
    set of chapter 4's McNemar tests (may be shorter than ``n``, or empty).

    Only a prefix of the test subset is classified: ``4 n`` images first, doubled until every
    set is full or the subset is exhausted (the full 10,000-image test set would cost each model
    a pass that the first few hundred images make unnecessary).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1 images, got {n}")
    subsets = {key: evaluation_subset(entry, data) for key, entry in entries.items()}
    sizes = {len(y) for _, y in subsets.values()}
    if len(sizes) != 1:
        raise ValueError(f"the models' test subsets differ in size ({sorted(sizes)}): not one profile")
    total = sizes.pop()
    pair_keys = [((m, s), (baseline, s)) for (m, s) in entries if m in subjects and (baseline, s) in entries]
    masks = {key: torch.zeros(0, dtype=torch.bool) for key in entries}
    done, length = 0, min(total, 4 * n)
    while True:
        for key, entry in entries.items():
            x, y = subsets[key]
            masks[key] = torch.cat([masks[key], correct_mask(entry.model, x[done:length], y[done:length])])
        enough = all(int(m.sum()) >= n for m in masks.values()) and \
            all(int((masks[a] & masks[b]).sum()) >= n for a, b in pair_keys)
        if enough or length == total:
            break
        done, length = length, min(total, 2 * length)
    protocol = {key: torch.nonzero(mask).flatten()[:n] for key, mask in masks.items()}
    pairs = {a: torch.nonzero(masks[a] & masks[b]).flatten()[:n] for a, b in pair_keys}
    return protocol, pairs


def paired_table(pairs: dict, baseline: str) -> pd.DataFrame:
    """The paired image sets as a table: ``seed, subject, baseline, image`` (one row per image)."""
    rows = [{"seed": s, "subject": m, "baseline": baseline, "image": int(i)}
            for (m, s), idx in pairs.items() for i in idx.tolist()]
    return pd.DataFrame(rows, columns=["seed", "subject", "baseline", "image"])


# --------------------------------------------------------------------------- targeted PGD
def targeted_pgd(entry, x, y, index, name: str, seed: int, protocol) -> pd.DataFrame:
    """The artifact's targeted PGD under each rule of :data:`SUCCESS_RULES`, run once on the
    images ``x`` (positions ``index`` in the test subset) with ``early_stop=False``: one row per
    (rule, image) with ``success_any_step``, ``success_last_step``, ``iterations``, ``target``
    and ``in_protocol_set`` (the image is one of the model's protocol images)."""
    frames = []
    in_protocol = np.isin(index.numpy(), protocol.numpy())
    for rule, fn in SUCCESS_RULES.items():
        attack = artifact_pgd(early_stop=False) if fn is None else artifact_pgd(success_fn=fn, early_stop=False)
        res = attack_batches(entry.model, x, y, attack, BATCH)
        df = res.to_frame(index, model=name, seed=seed, rule=rule)
        df["in_protocol_set"] = in_protocol
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def pgd_summary(per_image: pd.DataFrame) -> pd.DataFrame:
    """Per (model, seed), over the protocol set: ASR (%) broken at any step and at the last step,
    and mean iterations (failures counted 2 × 7 = 14, the artifact's rule), for each rule."""
    rows = []
    for (name, seed), g in per_image[per_image.in_protocol_set].groupby(["model", "seed"]):
        row = {"model": name, "seed": seed}
        for rule, r in g.groupby("rule"):
            sfx = "" if rule == "artifact" else f"_{rule}"
            ok = r.success_any_step.to_numpy(bool)
            row[f"pgd_asr{sfx}"] = 100 * ok.mean()
            row[f"pgd_asr{sfx}_last_step"] = 100 * r.success_last_step.to_numpy(bool).mean()
            row[f"pgd_mean_iter{sfx}"] = float(np.where(ok, r.iterations, 2 * PGD_STEPS).mean())
            row["n_images"] = len(r)
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- untargeted sweeps
def robust_curve(entry, x, y, norm: str, eps_values, steps: int, seed: int = 0) -> list[dict]:
    """Untargeted robust accuracy (%) at each ε on correctly classified images (100 % at ε = 0),
    random start, step 2.5·ε/steps, one run per ε with ``early_stop=False``: robust at every
    step (``robust_acc``, what the chapters use) and at the last step (``robust_acc_last_step``)."""
    rows = [{"norm": norm, "eps": 0.0, "robust_acc": 100.0, "robust_acc_last_step": 100.0}]
    for eps in eps_values:
        attack = PGD(norm=norm, eps=eps, alpha=2.5 * eps / steps, steps=steps, random_start=True, seed=seed,
                     early_stop=False)
        res = attack_batches(entry.model, x, y, attack, BATCH)
        rows.append({"norm": norm, "eps": float(eps), "robust_acc": 100 * (1 - res.success.float().mean().item()),
                     "robust_acc_last_step": 100 * (1 - res.success_last_step.float().mean().item())})
    return rows


def curve_summary(curve: pd.DataFrame, column: str = "robust_acc") -> dict:
    """Normalised area under robust accuracy vs ε (%, higher = more robust) and the ε where it
    first falls to 50 % (linear interpolation; NaN if it never does within the sweep)."""
    curve = curve.sort_values("eps")
    eps, acc = curve.eps.to_numpy(), curve[column].to_numpy()
    auc = float(auc_trapz(eps, acc, normalize=True))
    below = np.nonzero(acc <= 50)[0]
    if len(below) == 0:
        eps50 = np.nan
    else:
        i = below[0]
        eps50 = float(np.interp(50, [acc[i], acc[i - 1]], [eps[i], eps[i - 1]])) if i > 0 else float(eps[0])
    return {"auc": auc, "eps50": eps50}


# --------------------------------------------------------------------------- NES
def nes_steps(profile: Profile) -> int:
    """PGD steps the NES budget affords. Queries of an image that fails after ``t`` steps
    (runner-up target, early stopping; :mod:`nascore.attacks.nes`): 1 target query + ``t + 1``
    success checks + ``2·samples`` per step, i.e. ``2 + t·(2·samples + 1)``."""
    per_step = 2 * profile.evasion.nes_samples + 1
    steps = (profile.evasion.nes_max_queries - 2) // per_step
    if steps < 1:
        raise ValueError(f"nes_max_queries={profile.evasion.nes_max_queries} affords no NES step with "
                         f"nes_samples={profile.evasion.nes_samples}: one step costs 2 + {per_step} = {2 + per_step} "
                         f"queries")
    return steps


def nes_budgets(profile: Profile) -> list[int]:
    """The query budgets on the x-axis: the cost of 1, 2, …, :func:`nes_steps` steps, so the axis
    starts where one step is affordable and has one point per step."""
    return [2 + t * (2 * profile.evasion.nes_samples + 1) for t in range(1, nes_steps(profile) + 1)]


def nes_attack(profile: Profile, seed: int = 0) -> NES:
    """Targeted (runner-up class) NES-PGD, L∞ 8/255, step 2/255, σ = 10⁻³, argmax = target,
    with as many steps as the profile's query budget affords."""
    return NES(norm="linf", eps=8 / 255, alpha=2 / 255, steps=nes_steps(profile), targeted=True, target="runner_up",
               success_fn=hits_target, sigma=1e-3, samples=profile.evasion.nes_samples, seed=seed)


def nes_run(entry, x, y, index, profile: Profile, name: str, seed: int):
    """NES on ``(x, y)``: ``(curve rows: queries, nes_asr %; per-image table)``."""
    res = attack_batches(entry.model, x, y, nes_attack(profile, seed), BATCH)
    budgets = nes_budgets(profile)
    rows = [{"queries": b, "nes_asr": 100 * a} for b, a in zip(budgets, asr_at_budget(res, budgets))]
    return rows, res.to_frame(index, model=name, seed=seed)


# --------------------------------------------------------------------------- all models
def _evaluate_model(name: str, key: str, profile_fields: dict, seed: int, x: torch.Tensor, y: torch.Tensor,
                    union: torch.Tensor, own: torch.Tensor, entry=None) -> dict:
    """Every measurement on one model (a worker function: the model is loaded from the zoo cache by
    its ``key`` when ``entry`` is not given). ``union`` = positions in the test subset of the
    images ``x`` (uint8) / ``y``: the model's protocol images ``own`` and every paired set it belongs
    to. Returns the per-model row and its per-image, curve and NES tables."""
    import time

    t0 = time.perf_counter()
    profile = Profile(**profile_fields)
    entry = entry if entry is not None else zoo_load(name, key)
    torch.manual_seed(seed)
    xs, ys = x.float().div(255), y
    per_image = targeted_pgd(entry, xs, ys, union, name, seed, own)
    base = {"model": name, "family": family(name), "seed": seed}
    row = {**base, "clean_acc": 100 * entry.record["metrics"]["test_acc"]}
    pos = torch.searchsorted(union, own)  # own ⊆ union, both sorted
    xp, yp = xs[pos], ys[pos]
    curves = []
    for norm, eps_values in (("linf", profile.evasion.eps_linf), ("l2", profile.evasion.eps_l2)):
        c = pd.DataFrame(robust_curve(entry, xp[:profile.evasion.sweep_images], yp[:profile.evasion.sweep_images], norm,
                                      eps_values, profile.evasion.sweep_steps, seed))
        curves += [{**base, **r} for r in c.to_dict("records")]
        for col, sfx in (("robust_acc", ""), ("robust_acc_last_step", "_last_step")):
            s = curve_summary(c, col)
            row[f"{norm}_auc{sfx}"], row[f"{norm}_eps50{sfx}"] = s["auc"], s["eps50"]
    k = profile.evasion.nes_images
    rows, nes_table = nes_run(entry, xp[:k], yp[:k], own[:k], profile, name, seed)
    row["nes_asr"], row["nes_images"] = rows[-1]["nes_asr"], len(nes_table)
    if family(name) != "manual":
        st = cell_stats(name)
        row["depth"], row["skips"] = st.depth, st.skips
    row["seconds"] = time.perf_counter() - t0
    return {"row": row, "per_image": per_image, "curves": curves, "nes": [{**base, **r} for r in rows],
            "nes_per_image": nes_table}


def evaluate_models(entries: dict, profile: Profile, data, workers: int | None = None,
                    progress: bool = False) -> dict[str, pd.DataFrame]:
    """Every measurement on every model: ``{"per_model", "pgd_per_image", "paired_images", "curves",
    "nes", "nes_per_image"}`` tidy tables (one row per model and seed, per image, per ε, per
    budget). Each image is attacked once per model: the union of its protocol set and the paired
    sets it belongs to (:func:`image_sets`).

    ``workers``: the models are attacked in that many single-threaded processes
    (:mod:`nascore.parallel`), slowest first, each loading its model from the zoo cache by key;
    ``None`` = one per core on CPU, except at smoke scale (in this process). Every attack is seeded
    per model, so the tables do not depend on the layout beyond the float rounding of the thread count.
    """
    nes_budgets(profile)  # validate the NES budget before any compute
    if workers is not None and int(workers) < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    protocol, pairs = image_sets(entries, data, profile.evasion.pgd_images, PAIRED_BASELINE, profile.mitigation_models)
    jobs = []
    for (name, seed), entry in entries.items():
        test_x, test_y = evaluation_subset(entry, data)
        own = protocol[(name, seed)]
        mine = [idx for (m, s), idx in pairs.items() if s == seed and name in (m, PAIRED_BASELINE)]
        union = torch.unique(torch.cat([own, *mine]))
        jobs.append((name, entry.record["key"], profile.to_dict(), seed, test_x[union], test_y[union], union, own))
    if workers is None:  # smoke scale: process start-up (~5 s each) would dominate
        workers = 1 if profile.evasion.pgd_images * len(jobs) < 1_000 else None
    if workers == 1:
        results = [_evaluate_model(*job, entry=entries[(job[0], job[3])]) for job in jobs]
    else:
        order = sorted(range(len(jobs)), key=lambda i: -_attack_cost(jobs[i][0]))  # slowest first

        def report(r, elapsed):
            if progress:
                print(f"{r['row']['model']:>16} seed {r['row']['seed']}: {r['row']['seconds']:.0f} s "
                      f"({elapsed:.0f} s elapsed)", flush=True)
        done = map_in_workers(_evaluate_model, [jobs[i] for i in order], workers, report)
        results = [None] * len(jobs)
        for i, r in zip(order, done):
            results[i] = r
    pgd = pd.concat([r["per_image"] for r in results], ignore_index=True)
    per_model = pd.DataFrame([r["row"] for r in results])
    table = per_model.merge(pgd_summary(pgd), on=["model", "seed"], how="left", validate="one_to_one")
    return {"per_model": table, "pgd_per_image": pgd, "paired_images": paired_table(pairs, PAIRED_BASELINE),
            "curves": pd.DataFrame([c for r in results for c in r["curves"]]),
            "nes": pd.DataFrame([n for r in results for n in r["nes"]]),
            "nes_per_image": pd.concat([r["nes_per_image"] for r in results], ignore_index=True)}


def _attack_cost(name: str) -> float:
    """Relative time of one model's measurements (chapter 2 at quick, one thread per worker: ~75–98 s
    for the NAS cells, mitigations, ResNeXt-50, WRN-50-2, DenseNet-121 and BiT; DLA-34 27 s,
    ResNet-18 15 s, VGG-13-BN 9 s). The paired sets barely matter: NES and the sweeps dominate."""
    return {"dla34": 0.3, "resnet18": 0.2, "vgg13_bn": 0.1}.get(name, 1.0)


# --------------------------------------------------------------------------- verdicts
#: (statistic, claim) pairs of the chapter: each claim's primary first, the rest exploratory
#: (the registry decides the role).
VERDICT_STATISTICS = (("pgd_asr", "evasion.pgd_asr"), ("pgd_asr_last_step", "evasion.pgd_asr"),
                      ("pgd_asr_argmax", "evasion.pgd_asr"), ("pgd_mean_iter", "evasion.pgd_asr"),
                      ("linf_auc", "evasion.robustness"), ("linf_auc_last_step", "evasion.robustness"),
                      ("l2_auc", "evasion.robustness"), ("nes_asr", "evasion.nes_asr"))


def verdict_rows(per_model: pd.DataFrame, entries: dict, profile: str, seed: int = 0) -> list[dict]:
    """NAS − manual rows (models as units, confounds from the zoo records) for
    :data:`VERDICT_STATISTICS`."""
    return [nas_vs_manual(per_model, stat, claim, seed=seed, entries=entries, profile=profile)
            for stat, claim in VERDICT_STATISTICS]


def step_gap(per_model: pd.DataFrame) -> dict:
    """How far apart the two outcome definitions are, in percentage points, over the models:
    targeted ASR (any step − last step, both rules) and L∞ robust-accuracy AUC (last step −
    every step). Mean and largest gap over models (seed-averaged)."""
    per_model = per_model.groupby("model").mean(numeric_only=True)
    out = {}
    for key, a, b in (("asr", "pgd_asr", "pgd_asr_last_step"), ("asr_argmax", "pgd_asr_argmax",
                                                                "pgd_asr_argmax_last_step"),
                      ("linf_auc", "linf_auc_last_step", "linf_auc")):
        d = (per_model[a] - per_model[b]).to_numpy(float)
        out[key] = {"mean": float(np.mean(d)), "max": float(np.max(d)), "n": int(d.size)}
    return out


def cell_correlations(per_model: pd.DataFrame, values=("pgd_asr", "pgd_asr_argmax", "linf_auc"),
                      seed: int = 0) -> pd.DataFrame:
    """Exploratory: Spearman ρ (bootstrap CI, permutation p) between cell statistics and attack
    numbers, over the NAS and mitigation cells (manual models have no cell; a size-matched variant
    repeats its base cell and is left out)."""
    keep = (per_model.family != "manual") & ~per_model.model.map(is_size_variant)
    cells = per_model[keep].groupby("model").mean(numeric_only=True)
    rows = []
    for stat in ("skips", "depth"):
        for value in values:
            rows.append({"cell_stat": stat, "value": value, **spearman_row(cells[stat], cells[value], seed)})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- figures
def plot_asr(per_model: pd.DataFrame):
    """Targeted-PGD ASR per model, one stacked panel per success rule: bars = broken at any step
    (the chapters' number), black ticks = successful at the last step. Sorted by the bar.

    A rule under which every model sits at 0 % gets no (empty) panel. Returns ``(figure or None,
    omitted)``: ``omitted`` lists the rules left out."""
    from matplotlib.lines import Line2D

    from .common import FONT_PT, family_legend, figure, model_colour

    rules = (("", "artifact rule: p(target) > 0.99 and argmax = target"), ("_argmax", "relaxed rule: argmax = target"))
    pm = per_model.groupby("model", as_index=False).mean(numeric_only=True)
    shown = [(sfx, t) for sfx, t in rules if (pm[f"pgd_asr{sfx}"].fillna(0) != 0).any()]
    omitted = [t.split(":")[0] for sfx, t in rules if (sfx, t) not in shown]
    if not shown:
        return None, omitted
    fig, axes = figure(len(shown), 3.3)
    for ax, (sfx, title) in zip(axes, shown):
        d = pm.sort_values(f"pgd_asr{sfx}")
        x = np.arange(len(d))
        ax.bar(x, d[f"pgd_asr{sfx}"], color=[model_colour(m) for m in d.model])
        ax.scatter(x, d[f"pgd_asr{sfx}_last_step"], marker="_", s=160, color="black", linewidths=2, zorder=3)
        ax.set_xticks(x, d.model, rotation=60, ha="right", rotation_mode="anchor", fontsize=FONT_PT)
        ax.set_ylabel("targeted-PGD ASR (%)", fontsize=FONT_PT)
        ax.set_title(title, fontsize=FONT_PT)
        ax.tick_params(axis="y", labelsize=FONT_PT)
        ax.grid(axis="y", alpha=0.3)
        tick = Line2D([], [], marker="_", ls="", color="black", markersize=12, mew=2, label="at the last step")
        family_legend(ax, d.model.map(family), extra=[tick], ncols=4, loc="upper left")
        ax.set_ylim(0, max(5.0, 1.25 * float(d[f"pgd_asr{sfx}"].max())))
    return fig, omitted


def plot_robust_curves(curves: pd.DataFrame):
    """Untargeted robust accuracy (robust at every step) against ε: L∞ above, L2 below; thin
    lines are models, thick lines family means with 95 % bootstrap bands over models."""
    from .common import figure, plot_family_lines

    fig, axes = figure(2, 3.0)
    for ax, norm in zip(axes, ("linf", "l2")):
        c = curves[curves.norm == norm].copy()
        if norm == "linf":
            c["eps"] = c["eps"] * 255
        plot_family_lines(c, "eps", "robust_acc", ax,
                          xlabel="ε (L∞, in units of 1/255)" if norm == "linf" else "ε (L2, [0,1] pixel scale)",
                          ylabel="robust accuracy (%)")
        ax.set_ylim(-2, 102)
    return fig


def plot_nes(nes: pd.DataFrame):
    """Black-box NES ASR against the query budget per image, from the cost of one step on (one
    point per step); thin lines models, thick lines family means with 95 % bands."""
    from .common import figure, plot_family_lines

    fig, (ax,) = figure(1, 3.2)
    plot_family_lines(nes, "queries", "nes_asr", ax, xlabel="model queries per image (one point per NES step)",
                      ylabel="targeted NES ASR (%)")
    ax.set_ylim(-2, 102)
    return fig
