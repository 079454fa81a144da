"""Chapter 9 — DeepSloth: slowdown attacks on multi-exit networks.

Hong et al., ICLR 2021 (protocol ``deepsloth.md``). Per backbone (VGG-16-BN, ResNet-56, MobileNet):
the registry backbone trained by the zoo recipe, an IC after every block trained IC-only
(:func:`nascore.multiexit.trained_sdn`), thresholds for RAD<5 % and RAD<15 % chosen on the clean
test subset, then every attack of §3 on the first ``sloth_images`` test images (the exploratory
ℓ2/ℓ1 DeepSloth, PGD-avg and PGD-max on the first ``sloth_extra_images``), the universal
perturbations crafted on the first training images. Everything is recorded **per image** (exit
taken, per-image efficacy ``η_i``, correctness) so that every statistic resamples images.

Backbones are evaluated in parallel worker processes on the CPU (one thread each, as
:func:`nascore.zoo.train_many`); the batch-1 latency is measured afterwards in this process, alone.

Deviation, stated: the DeepFool-UAP baseline is crafted on the first ``sloth_uap_images``
*training* images (the authors used 100 fixed test images), so that no universal perturbation
is crafted on the images it is evaluated on.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from .. import zoo
from ..parallel import map_in_workers
from ..attacks import ClassUniversalDeepSloth, DeepFoolUAP, DeepSloth, ExitPGD, UniversalDeepSloth, attack_batches
from ..multiexit import (RAD_BUDGETS, choose_threshold, cost_fractions, eec_curve, exit_accuracies, exit_indices,
                         exit_record, latency_summary, measure_latency, per_sample_efficacy, threshold_table,
                         trained_sdn)
from ..multiexit.store import backbone_splits
from ..profiles import Profile
from ..report import claim_gate, compare_extreme, compare_values
from ..report.statistics import statistic
from ..report.estimators import bootstrap_extreme

CHAPTER = "09_deepsloth"
ATTACK_LABELS = {"clean": "clean", "deepsloth_linf": "DeepSloth ℓ∞", "deepsloth_l2": "DeepSloth ℓ2",
                 "deepsloth_l1": "DeepSloth ℓ1", "universal_linf": "universal ℓ∞",
                 "universal_l2": "universal ℓ2", "universal_l1": "universal ℓ1",
                 "class_universal": "class-universal ℓ∞", "pgd20": "PGD-20", "pgd_avg": "PGD-avg",
                 "pgd_max": "PGD-max", "uap": "DeepFool-UAP"}
ATTACK_COLOURS = {"clean": "black", "deepsloth_linf": "tab:red", "deepsloth_l2": "tab:pink",
                  "deepsloth_l1": "tab:brown", "universal_linf": "tab:orange", "universal_l2": "gold",
                  "universal_l1": "tab:olive", "class_universal": "tab:purple", "pgd20": "tab:blue",
                  "pgd_avg": "tab:cyan", "pgd_max": "tab:green", "uap": "tab:gray"}
BACKBONE_LABELS = {"vgg16_bn": "VGG-16-BN", "resnet56": "ResNet-56", "mobilenet_v1": "MobileNet"}
#: the pre-registered primary statistics (``nascore.report``) this chapter measures, all at RAD<5 %
PRIMARY = ("sloth_linf_min_reduction", "sloth_universal_min_reduction", "sloth_persample_minus_universal",
           "sloth_minus_pgd_reduction", "sloth_ee_accuracy_change")
PER_SAMPLE_EXTRA = ("deepsloth_l2", "deepsloth_l1", "pgd_avg", "pgd_max")
#: The exit threshold of the paper's headline numbers (Hong et al. 2021, §5: q = 0.8 for the CIFAR-10
#: SDNs); the chapter's thresholds come from the RAD budgets, this one gives an exploratory row.
PAPER_Q = 0.8


def check_profile(P: Profile, seed: int = 0) -> None:
    """Chapter-specific parameter checks, before any compute (ranges the profile validation cannot
    know), and the chapter's ``seed`` (of the backbones, the ICs and the attacks): an int >= 0."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    if not 0 < P.deepsloth.sloth_iteration_scale <= 1:
        raise ValueError(f"sloth_iteration_scale must be in (0, 1], got {P.deepsloth.sloth_iteration_scale}")
    if P.deepsloth.sloth_extra_images > P.deepsloth.sloth_images:
        raise ValueError(f"sloth_extra_images ({P.deepsloth.sloth_extra_images}) must be <= sloth_images ({P.deepsloth.sloth_images})")
    if P.deepsloth.sloth_latency_images > P.deepsloth.sloth_images:
        raise ValueError(f"sloth_latency_images ({P.deepsloth.sloth_latency_images}) must be <= sloth_images ({P.deepsloth.sloth_images})")


def attack_plan(P: Profile, seed: int = 0) -> dict:
    """The configured attacks; ℓ2/ℓ1 iteration counts scaled by ``P.deepsloth.sloth_iteration_scale``."""
    s = P.deepsloth.sloth_iteration_scale
    def it(n): return max(1, round(n * s))  # noqa: E704
    return {"deepsloth_linf": DeepSloth("linf", seed=seed),
            "deepsloth_l2": DeepSloth("l2", steps=11 * it(50), seed=seed),
            "deepsloth_l1": DeepSloth("l1", steps=it(250), seed=seed),
            "universal_linf": UniversalDeepSloth("linf", seed=seed),
            "universal_l2": UniversalDeepSloth("l2", steps=it(50), seed=seed),
            "universal_l1": UniversalDeepSloth("l1", steps=it(100), seed=seed),
            "class_universal": ClassUniversalDeepSloth("linf", per_class=P.deepsloth.sloth_class_images, seed=seed),
            "pgd20": ExitPGD("final", seed=seed), "pgd_avg": ExitPGD("avg", seed=seed),
            "pgd_max": ExitPGD("max", seed=seed), "uap": DeepFoolUAP(max_passes=P.deepsloth.sloth_uap_passes, seed=seed)}


def _as_float(x: torch.Tensor) -> torch.Tensor:
    return x.float().div(255.0) if x.dtype == torch.uint8 else x


def evaluate_backbone(name: str, P: Profile, seed: int = 0, device=None, data=None) -> dict:
    """Everything measured on one backbone, as tidy tables (see :func:`evaluate`)."""
    t_start = time.perf_counter()
    backbone = zoo.get(name, P, seed=seed, device=device, progress=False, data=data)
    tm = trained_sdn(name, P, seed, device=device, backbone=backbone, data=data)
    sdn = tm.model.eval()
    train_x, train_y, test_x, test_y = backbone_splits(backbone, data)
    costs = cost_fractions(sdn)
    full = exit_record(sdn, test_x)
    accs = exit_accuracies(full, test_y.numpy())
    table = threshold_table(full, test_y.numpy(), costs)
    q = {rad: choose_threshold(table, accs[-1], rad) for rad in RAD_BUDGETS}
    n, m = min(P.deepsloth.sloth_images, len(test_y)), min(P.deepsloth.sloth_extra_images, len(test_y))
    x, y = _as_float(test_x[:n]), test_y[:n]
    plan, seconds, records, extra = attack_plan(P, seed), {}, {"clean": exit_record(sdn, x)}, {}
    for key in ("deepsloth_linf", "pgd20") + PER_SAMPLE_EXTRA:
        k = m if key in PER_SAMPLE_EXTRA else n
        t0 = time.perf_counter()
        res = attack_batches(sdn, x[:k], y[:k], plan[key], batch_size=250)
        seconds[key] = (time.perf_counter() - t0, k)
        records[key] = exit_record(sdn, res.x_adv)
        if key == "deepsloth_linf":
            extra["deepsloth_linf"] = res.x_adv[:P.deepsloth.sloth_latency_images].cpu()
    for key in ("universal_linf", "universal_l2", "universal_l1"):
        t0 = time.perf_counter()
        pert = plan[key].craft(sdn, train_x[:P.deepsloth.sloth_universal_images])
        seconds[key] = (time.perf_counter() - t0, P.deepsloth.sloth_universal_images)
        records[key] = exit_record(sdn, pert.apply(x))
    t0 = time.perf_counter()
    perts = plan["class_universal"].craft(sdn, train_x, train_y, classes=sorted(set(y.tolist())))
    seconds["class_universal"] = (time.perf_counter() - t0, P.deepsloth.sloth_class_images * len(perts))
    x_cls = x.clone()
    for c, pert in perts.items():
        x_cls[y == c] = pert.apply(x[y == c])
    records["class_universal"] = exit_record(sdn, x_cls)
    t0 = time.perf_counter()
    uap = plan["uap"].craft(sdn, train_x[:P.deepsloth.sloth_uap_images])
    seconds["uap"] = (time.perf_counter() - t0, P.deepsloth.sloth_uap_images)
    records["uap"] = exit_record(sdn, uap.apply(x))

    labels = y.numpy()

    def exits_at(key, rec, rad, threshold):
        e = exit_indices(rec, threshold)
        return pd.DataFrame({"backbone": name, "attack": key, "rad": rad, "image": np.arange(len(rec)),
                             "label": labels[:len(rec)], "q": threshold,
                             "forced_first_exit": threshold <= 1.0 / rec.prediction.shape[-1],
                             "exit": e, "early": e < len(costs) - 1, "eta": per_sample_efficacy(e, costs),
                             "correct": rec.prediction[np.arange(len(rec)), e] == labels[:len(rec)]})

    rows = [exits_at(key, rec, rad, q[rad]) for key, rec in records.items() for rad in RAD_BUDGETS]
    # the paper's operating point, whatever accuracy it costs here (exploratory; ``rad`` 0 marks a fixed q)
    fixed = [exits_at(key, records[key], 0.0, PAPER_Q) for key in ("clean", "deepsloth_linf")]
    bb = backbone.record
    info = {"backbone": name, "width": bb["config"]["build"].get("width"), "params": bb["metrics"]["params"],
            "ic_params": tm.record["metrics"]["ic_params"], "final_acc": float(accs[-1]),
            "backbone_train_s": bb["metrics"]["train_seconds"], "ic_train_images": tm.record["metrics"]["n_train"],
            "ic_feature_s": tm.record["metrics"]["feature_seconds"], "ic_update_s": tm.record["metrics"]["ic_seconds"],
            "uap_fool_rate": uap.config["fool_rate"], "uap_passes": uap.config["passes"],
            "n_test": len(test_y), "n_attacked": n, "n_extra": m, "seconds": time.perf_counter() - t_start}
    tables = {"per_image": pd.concat(rows, ignore_index=True), "fixed_q": pd.concat(fixed, ignore_index=True),
              "exits": pd.DataFrame({"backbone": name, "exit": np.arange(1, len(costs) + 1), "cost": costs,
                                     "clean_acc": accs}),
              "thresholds": pd.DataFrame([{"backbone": name, "rad": rad, "q": q[rad],
                                           **_full_at(table, q[rad], costs, accs[-1])} for rad in RAD_BUDGETS]),
              "threshold_table": table.assign(backbone=name),
              "attack_seconds": pd.DataFrame([{"backbone": name, "attack": k, "seconds": s, "images": i}
                                              for k, (s, i) in seconds.items()]),
              "backbones": pd.DataFrame([info])}
    tables = {k: t.assign(seed=seed) for k, t in tables.items()}
    return {**tables, "latency_inputs": {"clean": x[:P.deepsloth.sloth_latency_images].cpu(), **extra}}


def _full_at(table: pd.DataFrame, q: float, costs, final_acc: float) -> dict:
    if np.isinf(q):
        return {"ee_acc": final_acc, "efficacy": (1 - costs[-2]) / 2}
    row = table[np.isclose(table.q, q)].iloc[0]
    return {"ee_acc": float(row.ee_acc), "efficacy": float(row.efficacy)}


def _worker(name: str, profile_fields: dict, seed: int) -> dict:
    torch.set_num_threads(1)
    out = evaluate_backbone(name, Profile(**profile_fields), seed, device="cpu")
    # numpy, not tensors: torch would pass tensors through shared-memory handles of this (exiting) process
    out["latency_inputs"] = {k: v.numpy() for k, v in out["latency_inputs"].items()}
    return out


def backbone_seeds(P: Profile, seed: int = 0) -> dict[str, tuple[int, ...]]:
    """Training seeds per backbone: the profile's (``P.seeds_for``: at quick two per backbone, issue "valid
    verdicts": each claim's uncertainty includes retraining), offset by the chapter's first ``seed``."""
    return {n: tuple(seed + s for s in P.seeds_for(n)) for n in P.deepsloth.sdn_models}


def _evaluate_jobs(P: Profile, jobs: list[tuple[str, int]], workers: int | None, data) -> tuple[dict, list]:
    """:func:`evaluate_backbone` for every ``(backbone, seed)`` job (in ``workers`` single-threaded
    processes on the CPU), the tables concatenated; returns ``(tables, per-job latency inputs)``."""
    workers = zoo.default_workers() if workers is None else int(workers)
    if workers > 1 and data is None and zoo.default_device().type == "cpu" and len(jobs) > 1:
        parts = map_in_workers(_worker, [(n, P.to_dict(), s) for n, s in jobs], workers=workers,
                               desc="SDN backbones (ICs and attacks)")
    else:
        parts = [evaluate_backbone(n, P, s, data=data) for n, s in jobs]
    out = {k: pd.concat([p[k] for p in parts], ignore_index=True) for k in parts[0] if k != "latency_inputs"}
    return out, [{k: torch.as_tensor(v) for k, v in p["latency_inputs"].items()} for p in parts]


def evaluate_seeds(P: Profile, seed: int = 0, workers: int | None = None, data=None) -> dict:
    """:func:`evaluate` for every training seed of every backbone (:func:`backbone_seeds`): the same
    tables, each with a ``seed`` column; ``latency_inputs`` keyed by ``(backbone, seed)``."""
    check_profile(P, seed)
    jobs = [(n, s) for n, seeds in backbone_seeds(P, seed).items() for s in seeds]
    out, inputs = _evaluate_jobs(P, jobs, workers, data)
    return {**out, "latency_inputs": dict(zip(jobs, inputs))}


def first_seed(run: dict) -> dict:
    """The tables of :func:`evaluate_seeds` restricted to each backbone's first training seed (the
    per-weights figures and tables of the chapter); ``latency_inputs`` keyed by backbone again."""
    first = run["backbones"].groupby("backbone", sort=False).seed.min()
    out = {k: t[t.seed == t.backbone.map(first)].reset_index(drop=True) for k, t in run.items()
           if k != "latency_inputs"}
    out["latency_inputs"] = {b: v for (b, s), v in run["latency_inputs"].items() if s == first[b]}
    return out


def evaluate(P: Profile, seed: int = 0, workers: int | None = None, data=None) -> dict:
    """Run :func:`evaluate_backbone` for every backbone of ``P.deepsloth.sdn_models`` with one training
    ``seed`` (in ``workers`` single-threaded processes on the CPU) and concatenate: ``per_image``,
    ``fixed_q``, ``exits``, ``thresholds``, ``threshold_table``, ``attack_seconds``, ``backbones``
    (DataFrames) and ``latency_inputs`` ({backbone: {"clean", "deepsloth_linf"} images})."""
    check_profile(P, seed)
    names = list(P.deepsloth.sdn_models)
    out, inputs = _evaluate_jobs(P, [(n, seed) for n in names], workers, data)
    return {**out, "latency_inputs": dict(zip(names, inputs))}


def latency(P: Profile, run: dict, seed: int = 0, rad: float = 0.05, data=None) -> pd.DataFrame:
    """Measured batch-1, one-thread early-exit wall time per image, clean vs DeepSloth ℓ∞ inputs,
    at the RAD threshold ``rad``: one row per (backbone, input, image)."""
    rows = []
    for name in P.deepsloth.sdn_models:
        sdn = trained_sdn(name, P, seed, device="cpu", data=data).model
        th = run["thresholds"]
        q = float(th[(th.backbone == name) & np.isclose(th.rad, rad)].q.iloc[0])
        for key in ("clean", "deepsloth_linf"):
            seconds, exits = measure_latency(sdn, run["latency_inputs"][name][key], q)
            rows.append(pd.DataFrame({"backbone": name, "input": key, "image": np.arange(len(seconds)),
                                      "ms": seconds * 1e3, "exit": exits}))
    return pd.concat(rows, ignore_index=True)


def latency_table(per_image_ms: pd.DataFrame) -> pd.DataFrame:
    """Median and p95 latency (ms) and mean exit per (backbone, input), and the attacked/clean ratio."""
    rows = []
    for (b, inp), g in per_image_ms.groupby(["backbone", "input"], sort=False):
        rows.append({"backbone": b, "input": inp, **latency_summary(g.ms.to_numpy() / 1e3),
                     "mean_exit": float(g.exit.mean() + 1)})
    df = pd.DataFrame(rows)
    clean = df[df.input == "clean"].set_index("backbone").median_ms
    df["median_ratio"] = df.median_ms / df.backbone.map(clean)
    return df


# --------------------------------------------------------------------------- statistics
def _series(per_image: pd.DataFrame, backbone: str, attack: str, rad: float, column: str = "eta",
            n: int | None = None) -> np.ndarray:
    g = per_image[(per_image.backbone == backbone) & (per_image.attack == attack) & np.isclose(per_image.rad, rad)]
    v = g.sort_values("image")[column].to_numpy(dtype=np.float64)
    return v if n is None else v[:n]


def _paired(per_image, backbone, attacks, rad, column="eta") -> np.ndarray:
    """``(n, len(attacks))``: per-image values of each attack on the images all of them saw."""
    cols = [_series(per_image, backbone, a, rad, column) for a in attacks]
    n = min(len(c) for c in cols)
    return np.stack([c[:n] for c in cols], axis=1)


def relative_reduction(rows: np.ndarray) -> float:
    """``1 − mean(attacked)/mean(clean)`` of ``(n, 2)`` rows ``[clean η, attacked η]``."""
    m = rows.mean(axis=0)
    return float(1 - m[1] / m[0]) if m[0] > 0 else float("nan")


def reduction_gap(rows: np.ndarray) -> float:
    """Reduction by A minus reduction by B, ``(1 − mA/m0) − (1 − mB/m0) = (mB − mA)/m0``, of
    ``(n, 3)`` per-image efficacy rows ``[clean, attack A, attack B]`` (column means ``m``)."""
    m = rows.mean(axis=0)
    return float((m[2] - m[1]) / m[0]) if m[0] > 0 else float("nan")


def accuracy_change(rows: np.ndarray) -> float:
    """Attacked − clean early-exit accuracy in percentage points, ``(n, 2)`` 0/1 rows."""
    m = rows.mean(axis=0)
    return float(100 * (m[1] - m[0]))


def median_ratio(rows: np.ndarray) -> float:
    """``median(attacked)/median(clean)`` of ``(n, 2)`` per-image latencies."""
    return float(np.median(rows[:, 1]) / np.median(rows[:, 0]))


def unmeasurable_reason(per_image: pd.DataFrame, backbone: str, rad: float) -> str:
    """Why a slowdown cannot be measured on ``backbone`` at ``rad`` (``""`` when it can).

    ``"forced"``: the exit threshold ``q`` is at or below ``1/K`` (``forced_first_exit``). The largest
    softmax probability of K classes is never below ``1/K``, so every input — clean or attacked — leaves
    at the first IC and no attack can change an exit: a ceiling by construction, which happens when the
    first IC is already within the RAD budget of a weak final exit. ``"no early exits"``: no clean
    attacked-set image leaves early, so there is nothing to slow down (a relative reduction is undefined).
    """
    g = per_image[(per_image.backbone == backbone) & (per_image.attack == "clean") & np.isclose(per_image.rad, rad)]
    if "forced_first_exit" in g and g.forced_first_exit.any():
        return "forced"
    return "" if g.early.any() else "no early exits"


def measurable(per_image: pd.DataFrame, backbone: str, rad: float) -> bool:
    """Whether a slowdown can be measured on ``backbone`` at ``rad`` (see :func:`unmeasurable_reason`)."""
    return not unmeasurable_reason(per_image, backbone, rad)


def reductions(per_image: pd.DataFrame, rad: float, n_boot: int = 2_000, seed: int = 0) -> pd.DataFrame:
    """Per (backbone, attack): clean and attacked efficacy and early-exit accuracy on the attacked
    images, the relative efficacy reduction with a percentile bootstrap CI over those images
    (exploratory; :func:`nascore.report.estimators.bootstrap_extreme` with one group)."""
    rows = []
    for (b, a), g in per_image[np.isclose(per_image.rad, rad) & (per_image.attack != "clean")].groupby(
            ["backbone", "attack"], sort=False):
        eta = _paired(per_image, b, ["clean", a], rad)
        acc = _paired(per_image, b, ["clean", a], rad, "correct")
        why = unmeasurable_reason(per_image, b, rad)
        if not why:
            est = bootstrap_extreme({b: eta}, relative_reduction, "min", n_boot, seed=seed)[0]
            red, low, high = est.estimate, est.low, est.high
        else:
            red = low = high = float("nan")
        rows.append({"backbone": b, "attack": a, "rad": rad, "unmeasurable": why, "images": len(eta),
                     "eta_clean": eta[:, 0].mean(),
                     "eta_attacked": eta[:, 1].mean(), "reduction": red, "low": low, "high": high,
                     "ee_acc_clean": 100 * acc[:, 0].mean(), "ee_acc_attacked": 100 * acc[:, 1].mean()})
    return pd.DataFrame(rows)


#: Bootstrap resamples of the chapter's intervals and verdicts are capped here (the profile's
#: ``sloth_bootstrap`` may ask for more; 2,000 percentile-bootstrap draws are plenty for 95 % bounds).
BOOTSTRAP_CAP = 2_000


def bootstrap_draws(P: Profile) -> int:
    """Resamples used by the chapter's reductions and verdicts: ``P.deepsloth.sloth_bootstrap``, at most
    :data:`BOOTSTRAP_CAP`."""
    return min(P.deepsloth.sloth_bootstrap, BOOTSTRAP_CAP)


def pct(v) -> str:
    """A fraction as a whole percentage with a Unicode minus, "—" when missing (never "−0 %")."""
    return "—" if v != v else f"{round(100 * v) + 0:d} %".replace("-", "−")


def summary_numbers(red5: pd.DataFrame, latency_summary: pd.DataFrame, attack_seconds: pd.DataFrame,
                    backbones) -> dict[str, dict]:
    """The numbers of the chapter's closing prose, per backbone (RAD<5 %): ``{backbone: {...}}`` with

    * ``eta_clean``, ``eta_attacked`` — efficacy clean and under per-sample ℓ∞ DeepSloth;
    * ``reduction``, ``low``, ``high`` — its relative efficacy reduction and 95 % interval (fractions);
    * ``universal_linf``, ``pgd20`` — the reductions by universal ℓ∞ DeepSloth and by PGD-20;
    * ``ee_acc_clean``, ``ee_acc_attacked`` — early-exit accuracy (%) clean and under ℓ∞ DeepSloth;
    * ``median_ms_clean``, ``median_ms_sloth`` — median batch-1 latency (ms), clean and ℓ∞ DeepSloth;
    * ``attack_minutes`` — wall time of all attacks on the backbone.

    ``red5``: :func:`reductions` at RAD<5 %; ``latency_summary``: :func:`latency_table`;
    ``attack_seconds``: the ``run["attack_seconds"]`` table of :func:`evaluate`."""
    out = {}
    for b in backbones:
        r5 = red5[red5.backbone == b].set_index("attack")
        t = latency_summary[latency_summary.backbone == b].set_index("input")
        r = r5.loc["deepsloth_linf"]
        out[b] = {"eta_clean": float(r.eta_clean), "eta_attacked": float(r.eta_attacked),
                  "reduction": float(r.reduction), "low": float(r.low), "high": float(r.high),
                  "universal_linf": float(r5.loc["universal_linf"].reduction), "pgd20": float(r5.loc["pgd20"].reduction),
                  "ee_acc_clean": float(r.ee_acc_clean), "ee_acc_attacked": float(r.ee_acc_attacked),
                  "median_ms_clean": float(t.median_ms["clean"]), "median_ms_sloth": float(t.median_ms["deepsloth_linf"]),
                  "attack_minutes": float(attack_seconds[attack_seconds.backbone == b].seconds.sum() / 60)}
    return out


def exit_gate_table(per_image: pd.DataFrame, rad: float = 0.05) -> pd.DataFrame:
    """Per backbone the gate column of the efficacy claims (``exit_thresholds_in_range``):
    ``clean_efficacy_margin`` = min(η_clean − 0.1, 0.9 − η_clean) at ``rad`` (positive inside
    [0.1, 0.9]), with ``clean_efficacy`` itself."""
    rows = []
    for b in dict.fromkeys(per_image.backbone):
        eta = float(_series(per_image, b, "clean", rad).mean())
        rows.append({"model": BACKBONE_LABELS.get(b, b), "clean_efficacy": eta,
                     "clean_efficacy_margin": min(eta - 0.1, 0.9 - eta)})
    return pd.DataFrame(rows)


def verdict_rows(per_image: pd.DataFrame, latency_ms: pd.DataFrame | None = None, n_boot: int = 2_000,
                 seed: int = 0, profile: str | None = None, fixed_q: pd.DataFrame | None = None
                 ) -> tuple[list[dict], list[str]]:
    """Verdict rows (:func:`nascore.report.compare_extreme`: the least favourable backbone; with several
    training seeds per backbone (a ``seed`` column) each backbone's value is the mean over its seeds and
    seeds, then images within seeds, are resampled — otherwise images within each backbone) for the
    pre-registered primaries at RAD<5 % (:data:`PRIMARY`)
    and exploratory statistics (RAD<15 %, ℓ∞ at the paper's fixed q = 0.8 from ``fixed_q``, ℓ2/ℓ1,
    class-universal, the other baselines, CPU latency, the VGG-16 clean-efficacy anchors), and notes. Backbones on which no clean image
    leaves early are left out of the reduction statistics (named in the notes)."""
    every = list(dict.fromkeys(per_image.backbone))
    lab = BACKBONE_LABELS
    notes, rows = [], []
    seeds_of = {b: sorted(set(per_image.loc[per_image.backbone == b, "seed"])) if "seed" in per_image else [None]
                for b in every}
    several = any(len(v) > 1 for v in seeds_of.values())

    def one(b, s, frame=None):  # the per-image rows of one trained backbone
        t = per_image if frame is None else frame
        return t[t.backbone == b] if s is None else t[(t.backbone == b) & (t.seed == s)]

    def groups(attacks, rad, column="eta", only_measurable=True, frame=None):
        """``{backbone: per-image rows}``, or with several training seeds ``{backbone: [rows per seed]}``
        (seeds, then images resampled); a backbone counts only if measurable on every seed. ``frame``: the
        fixed-threshold table instead of ``per_image``."""
        out = {}
        for b in every:
            parts = [one(b, s, frame) for s in seeds_of[b]]
            if only_measurable and not all(measurable(p, b, rad) for p in parts):
                continue
            arrays = [_paired(p, b, attacks, rad, column) for p in parts]
            if all(len(a) >= 2 for a in arrays):      # else an attack not run on this backbone
                out[lab.get(b, b)] = arrays if several else arrays[0]
        return out

    gate_df = exit_gate_table(per_image)

    def add(stat, g, aggregate, setting="", exploratory=False):
        if g:
            gate = claim_gate(statistic(stat).claim, gate_df)
            rows.append(compare_extreme(g, stat, aggregate=aggregate, n_boot=n_boot, seed=seed, setting=setting,
                                        exploratory=exploratory, profile=profile, gate=gate))

    for rad in RAD_BUDGETS:
        for b in every:
            for s in seeds_of[b]:
                part = one(b, s)
                reason = unmeasurable_reason(part, b, rad)
                if not reason:
                    continue
                budget = f"RAD<{round(rad * 100)} %"
                if reason == "forced":
                    q = part[np.isclose(part.rad, rad)].q.iloc[0]
                    why = (f"its {budget} threshold q = {q:g} is at or below 1/K, so every input, clean or attacked, "
                           "leaves at the first IC and no attack can slow it down")
                else:
                    why = f"no clean image leaves early at {budget}, so there is nothing to slow down"
                which = f"{lab.get(b, b)}" + (f" (training seed {s})" if several else "")
                notes.append(f"{which}: {why}; the backbone is left out of that budget's reduction statistics.")
    r5 = 0.05
    add("sloth_linf_min_reduction", groups(["clean", "deepsloth_linf"], r5), relative_reduction)
    add("sloth_universal_min_reduction", groups(["clean", "universal_linf"], r5), relative_reduction)
    add("sloth_persample_minus_universal", groups(["clean", "deepsloth_linf", "universal_linf"], r5), reduction_gap)
    add("sloth_minus_pgd_reduction", groups(["clean", "deepsloth_linf", "pgd20"], r5), reduction_gap)
    add("sloth_ee_accuracy_change", groups(["clean", "deepsloth_linf"], r5, "correct", False), accuracy_change)
    add("sloth_linf_min_reduction_rad15", groups(["clean", "deepsloth_linf"], 0.15), relative_reduction,
        "RAD<15 %")
    if fixed_q is not None and len(fixed_q):
        add("sloth_linf_min_reduction", groups(["clean", "deepsloth_linf"], 0.0, frame=fixed_q), relative_reduction,
            f"q = {PAPER_Q:g}, the paper's operating point (early-exit accuracy not held within a RAD budget)",
            exploratory=True)
    add("sloth_l2_min_reduction", groups(["clean", "deepsloth_l2"], r5), relative_reduction)
    add("sloth_l1_min_reduction", groups(["clean", "deepsloth_l1"], r5), relative_reduction)
    add("sloth_class_universal_min_reduction", groups(["clean", "class_universal"], r5), relative_reduction)
    for base in ("pgd_avg", "pgd_max", "uap"):
        add("sloth_minus_baseline_reduction", groups(["clean", "deepsloth_linf", base], r5), reduction_gap,
            f"DeepSloth ℓ∞ − {ATTACK_LABELS[base]}")
    if latency_ms is not None and len(latency_ms):
        g = {lab.get(b, b): np.stack([d[d.input == k].sort_values("image").ms.to_numpy()
                                      for k in ("clean", "deepsloth_linf")], axis=1)
             for b, d in latency_ms.groupby("backbone", sort=False)}
        add("sloth_cpu_latency_ratio", g, median_ratio, "batch 1, one CPU thread, RAD<5 %")
    if "vgg16_bn" in every:
        for rad, stat in ((0.05, "clean_efficacy_rad5"), (0.15, "clean_efficacy_rad15")):
            rows.append(compare_values(
                f"deepsloth.{stat}", _series(one("vgg16_bn", seeds_of["vgg16_bn"][0]), "vgg16_bn", "clean", rad),
                statistic=stat, n_boot=n_boot,
                seed=seed, units_of_analysis="test images", exploratory=profile != "paper", profile=profile,
                setting="VGG-16-BN" if profile == "paper" else
                "VGG-16-BN at this profile's width: not comparable with the full-size anchor",
                incomparable="" if profile == "paper" else
                "The anchor is the full-width network's; this narrower one is not comparable with it, so the row "
                "has no verdict at this scale."))
    return rows, notes


# --------------------------------------------------------------------------- figures
def plot_exit_accuracy(exits: pd.DataFrame, thresholds: pd.DataFrame, ax) -> None:
    """Clean accuracy of every exit against its cost fraction, one line per backbone."""
    for b, g in exits.groupby("backbone", sort=False):
        ax.plot(g.cost, 100 * g.clean_acc, marker="o", ms=3, label=BACKBONE_LABELS.get(b, b))
    ax.set_xlabel("exit cost (fraction of the full SDN)")
    ax.set_ylabel("clean accuracy of the exit (%)")
    ax.legend()


def plot_eec(per_image: pd.DataFrame, exits: pd.DataFrame, backbone: str, rad: float, attacks, ax) -> None:
    """Early-exit capacity curves (cumulative fraction exited vs cost) on clean and attacked inputs."""
    costs = exits[exits.backbone == backbone].sort_values("exit").cost.to_numpy()
    for a in attacks:
        e = _series(per_image, backbone, a, rad, "exit").astype(int)
        if len(e):
            cx, cy = eec_curve(e, costs)
            eta = per_sample_efficacy(e, costs).mean()
            style = dict(ls="--", lw=2.5, zorder=3) if a == "clean" else dict(lw=1.5)
            ax.plot(cx, cy, color=ATTACK_COLOURS[a], label=f"{ATTACK_LABELS[a]} (η={eta:.2f})", **style)
    ax.set_title(f"{BACKBONE_LABELS.get(backbone, backbone)}, RAD<{round(rad * 100)} %")
    ax.set_xlabel("cost fraction")
    ax.set_ylabel("fraction exited")
    ax.legend(fontsize=9)


def plot_reductions(red: pd.DataFrame, attacks, ax) -> None:
    """Relative efficacy reduction with 95 % CI per attack (bars) and backbone (groups)."""
    backbones = list(dict.fromkeys(red.backbone))
    width = 0.8 / len(attacks)
    for i, a in enumerate(attacks):
        g = red[red.attack == a].set_index("backbone").reindex(backbones)
        xs = np.arange(len(backbones)) + (i - (len(attacks) - 1) / 2) * width
        ax.bar(xs, 100 * g.reduction, width, color=ATTACK_COLOURS[a], label=ATTACK_LABELS[a],
               yerr=100 * np.vstack([g.reduction - g.low, g.high - g.reduction]), capsize=2)
    ax.axhspan(90, 100, color="0.85", zorder=0, label="claimed 90–100 %")
    ax.set_xticks(np.arange(len(backbones)), [BACKBONE_LABELS.get(b, b) for b in backbones])
    ax.set_xlim(-0.5, len(backbones) - 0.5)
    for i, b in enumerate(backbones):
        g = red[red.backbone == b]
        if g.reduction.isna().all():
            forced = "unmeasurable" in g and (g.unmeasurable == "forced").any()
            ax.text(i, 50, "every input exits\nat IC 1 (q ≤ 1/K):\nnot measurable" if forced else "no clean\nearly exits",
                    ha="center", va="center", fontsize=10, color="0.3")
    ax.set_ylabel("efficacy reduction (%)")
    ax.axhline(0, color="black", lw=0.8)
    ax.legend(fontsize=9, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.1), frameon=False)


def plot_exit_histogram(per_image: pd.DataFrame, exits: pd.DataFrame, backbone: str, rad: float, ax,
                        attack: str = "deepsloth_linf") -> None:
    """Where images leave the network, clean vs attacked (last bar = the final exit)."""
    k = int((exits.backbone == backbone).sum())
    for a, shift in (("clean", -0.2), (attack, 0.2)):
        e = _series(per_image, backbone, a, rad, "exit").astype(int)
        frac = np.bincount(e, minlength=k) / max(1, len(e))
        ax.bar(np.arange(1, k + 1) + shift, 100 * frac, 0.4, color=ATTACK_COLOURS[a], label=ATTACK_LABELS[a])
    ax.set_xticks(np.arange(1, k + 1, 1 if k <= 16 else 2))
    ax.set_title(f"{BACKBONE_LABELS.get(backbone, backbone)}, RAD<{round(rad * 100)} %")
    ax.set_xlabel("exit (last = final)")
    ax.set_ylabel("images (%)")
    ax.legend(fontsize=9)
