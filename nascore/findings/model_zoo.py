"""Chapter 1 — the model zoo: clean accuracy, cost, cell shape and early convergence.

Pang et al. (USENIX Security 2022) attribute the NAS models' vulnerabilities to a preference of
the search for architectures that *converge fast early in training* (protocol §5.4), visible in
cells that are wide, shallow and skip-heavy (§1.5). This module trains (or loads) the zoo of a
profile — the one zoo every later chapter reuses — and measures:

* Table 1: clean accuracy on the full test set (next to the paper's per-model values), parameters,
  FLOPs, training CPU-minutes, final training loss, predictions per class (a collapsed model
  answers one class), and for cells the normal-cell statistics derived from the genotype;
* the accuracy goal of the profile (quick: every model ≥ 50 %, median ≥ 60 %);
* the seed spread of the architectures trained with several seeds;
* early convergence from the within-run evaluation points the trainer records
  (``record["curve"]``): the test accuracy over the first 30 % of the optimisation steps.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .. import zoo
from ..models import cell_stats, family, is_size_variant
from ..models.cost import flops_per_image, parameter_count
from ..profiles import Profile
from ..provenance import ISA_SETTINGS, REPO_ROOT
from .common import GROUP_COLOURS

FAMILY_ORDER = ("nas", "manual", "mitigation")
FAMILY_WORDS = {"nas": "NAS", "manual": "manual", "mitigation": "mitigation"}
PILOT_CSV = REPO_ROOT / "results" / "pilot" / "pilot.csv"
#: ``benchmarks/cross_isa_spread.py``: quick-scale accuracies per (model, seed, instruction-set setting).
CROSS_ISA_CSV = REPO_ROOT / "results" / "pilot" / "cross_isa.csv"


def train_all(profile: Profile, progress: bool = True, workers: int | None = None) -> dict[tuple[str, int], zoo.TrainedModel]:
    """Train (two single-threaded processes on CPU) or load every model of ``profile`` for each of
    its seeds (``profile.seeds_for``). Returns ``{(model, seed): TrainedModel}``."""
    seeds = {n: profile.seeds_for(n) for n in profile.models}
    return zoo.train_many(profile.models, profile, seeds=seeds, workers=workers, progress=progress)


def zoo_table(entries: dict) -> pd.DataFrame:
    """Table 1: one row per (model, seed).

    Columns: ``test_acc`` (%, full evaluation set, final weights), ``params`` (count), ``MFLOPs``
    (forward, one 32×32 image, multiply-add = 2), ``train_cpu_min`` (CPU time of the training
    run, minutes, excluding evaluation), ``images_seen`` (training images processed), ``train_loss``
    (mean training loss of the final epoch, nats), ``top_class_share`` (% of test images assigned
    to the most predicted class; 10 % is uniform, 100 % a collapsed model), ``depth``/``skips``/
    ``input_edges`` of the normal cell (NAS and mitigation models).
    """
    rows = []
    for (name, seed), (model, record) in entries.items():
        fam = family(name)
        stats = cell_stats(name) if fam != "manual" else None
        m, hist = record["metrics"], record["history"]
        counts = m.get("prediction_counts") or [math.nan]
        rows.append({
            "model": name, "family": fam, "seed": seed,
            "test_acc": 100 * m["test_acc"], "params": parameter_count(model),
            "MFLOPs": flops_per_image(model) / 1e6,
            "train_cpu_min": m.get("train_cpu_seconds", m["train_seconds"]) / 60,
            "images_seen": sum(h.get("images", m.get("n_train", 0)) for h in hist),
            "train_loss": hist[-1]["train_loss"], "top_class_share": 100 * max(counts) / max(1, sum(counts)),
            "n_test": m.get("n_test"),
            "depth": stats.depth if stats else np.nan, "skips": stats.skips if stats else np.nan,
            "input_edges": f"{stats.input_edges}/{stats.edges}" if stats else "",
        })
    return pd.DataFrame(rows)


def prediction_counts(entries: dict) -> pd.DataFrame:
    """Test-set predictions per class, one row per (model, seed), columns the 10 classes."""
    from ..data import CLASSES

    rows = []
    for (name, seed), (_, record) in entries.items():
        counts = record["metrics"].get("prediction_counts") or [np.nan] * 10
        rows.append({"model": name, "family": family(name), "seed": seed, **dict(zip(CLASSES, counts))})
    return pd.DataFrame(rows)


def accuracy_goal(table: pd.DataFrame, floor: float = 50.0, median: float = 60.0) -> dict:
    """The quick profile's goal (issue "quick v2"): every model ≥ ``floor`` %, median ≥ ``median`` %
    (the study's models, seed-averaged; a size-matched variant below the floor is named in
    ``variants_below_floor`` and left out of the size adjustment). Returns the numbers and whether
    each part is met."""
    variant = table.model.map(is_size_variant)
    v_acc = table[variant].groupby("model")["test_acc"].mean()
    acc = table[~variant].groupby("model")["test_acc"].mean()
    below = sorted(acc[acc < floor].index)
    return {"models": int(acc.size), "min": float(acc.min()), "median": float(acc.median()), "max": float(acc.max()),
            "below_floor": below, "floor_met": not below, "median_met": bool(acc.median() >= median),
            "floor": floor, "median_goal": median, "variants_below_floor": sorted(v_acc[v_acc < floor].index)}


def seed_spread(table: pd.DataFrame) -> pd.DataFrame:
    """Architectures trained with ≥ 2 seeds: accuracy per seed, mean, sample SD and range (pp)."""
    rows = []
    for name, g in table.groupby("model"):
        if g.seed.nunique() < 2:
            continue
        acc = g.sort_values("seed").test_acc.to_numpy()
        rows.append({"model": name, "family": family(name), "seeds": int(g.seed.nunique()),
                     "accuracies": ", ".join(f"{a:.1f}" for a in acc), "mean": acc.mean(),
                     "sd": acc.std(ddof=1), "range": np.ptp(acc)})
    return pd.DataFrame(rows, columns=["model", "family", "seeds", "accuracies", "mean", "sd", "range"])




def cross_isa_spread(path: Path = CROSS_ISA_CSV) -> pd.DataFrame | None:
    """The instruction-set spread beside the seed spread (``benchmarks/cross_isa_spread.py``), or None.

    One row per model: its test accuracies (%) under each setting, seed 0 first (``"63.2, 63.4"``);
    the largest difference between settings for one seed (``isa_range``, pp; max over seeds) and
    between seeds under one setting (``seed_range``, pp; max over settings); and the capped settings
    whose weights were bit-identical to the uncapped run's for every seed measured under both.
    """
    if not Path(path).is_file():
        return None
    df = pd.read_csv(path)
    settings = [st for st in ISA_SETTINGS if st in set(df.setting)]
    rows = []
    for name, g in df.groupby("model", sort=False):
        wide = g.pivot_table(index="seed", columns="setting", values="test_acc").reindex(columns=settings)
        isa = (wide.max(axis=1) - wide.min(axis=1))[wide.count(axis=1) > 1].max()
        seed = (wide.max(axis=0) - wide.min(axis=0))[wide.count(axis=0) > 1].max()
        sha = g.pivot_table(index="seed", columns="setting", values="weights_sha256", aggfunc="first")
        same = []
        for st in settings[1:]:
            if st in sha and "uncapped" in sha:
                both = sha[[st, "uncapped"]].dropna()
                if len(both) and (both[st] == both["uncapped"]).all():
                    same.append(st)
        rows.append({"model": name, "family": family(name),
                     **{st: ", ".join(f"{a:.2f}" for a in wide[st].dropna()) or None for st in settings},
                     "isa_range": isa, "seed_range": seed, "identical_to_uncapped": ", ".join(same) or None})
    return pd.DataFrame(rows)


def curves(entries: dict) -> pd.DataFrame:
    """Within-run evaluation points in long form: model, family, seed, step, images (training images
    seen), progress (fraction of the run's steps), test_acc (%, on the curve's test images),
    train_loss (mean since the previous point; NaN at step 0)."""
    rows = []
    for (name, seed), (_, record) in entries.items():
        points = record.get("curve") or []
        total = max((p["step"] for p in points), default=0) or 1
        for p in points:
            rows.append({"model": name, "family": family(name), "seed": seed, "step": p["step"],
                         "images": p["images"], "progress": p["step"] / total, "test_acc": 100 * p["test_acc"],
                         "train_loss": np.nan if p["train_loss"] is None else p["train_loss"]})
    return pd.DataFrame(rows, columns=["model", "family", "seed", "step", "images", "progress", "test_acc",
                                       "train_loss"])


def early_speed(curve_df: pd.DataFrame, fraction: float = 0.3) -> pd.DataFrame:
    """Early-convergence statistics per (model, seed) from the within-run curve.

    The early window is the first ``fraction`` of the optimisation steps (progress ∈ [0, fraction]).
    The curve is linearly interpolated at the window's end.

    * ``early_auc`` — mean test accuracy (%) over the window: the trapezoid area under accuracy vs
      progress from step 0 (before training) to the window's end, divided by its width;
    * ``early_acc`` — test accuracy (%) at the window's end;
    * ``early_loss_drop`` — training loss of the first measured interval minus that of the last
      interval ending inside the window (nats; training batches, augmented).
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"early fraction must be in (0, 1], got {fraction}")
    rows = []
    for (name, seed), g in curve_df.groupby(["model", "seed"]):
        g = g.sort_values("progress")
        if len(g) < 2 or g.progress.iloc[0] > 0:
            raise ValueError(f"{name} seed {seed}: the run has no within-run curve starting at step 0 "
                             "(train with recipe eval_points > 0)")
        x, y = g.progress.to_numpy(float), g.test_acc.to_numpy(float)
        y_end = float(np.interp(fraction, x, y))
        inside = x < fraction
        xs = np.append(x[inside], fraction)
        ys = np.append(y[inside], y_end)
        auc = float(np.trapezoid(ys, xs) / fraction)
        losses = g.train_loss.to_numpy(float)
        early_losses = losses[(x > 0) & (x <= fraction + 1e-9)]
        drop = float(early_losses[0] - early_losses[-1]) if early_losses.size >= 2 else np.nan
        rows.append({"model": name, "family": family(name), "seed": seed, "window": fraction,
                     "early_auc": auc, "early_acc": y_end, "early_loss_drop": drop,
                     "points_in_window": int(inside.sum())})
    return pd.DataFrame(rows)


def check_parameters(early_fraction) -> None:
    """The chapter's own knob, before any compute: ``early_fraction`` (the share of the optimisation
    steps that counts as early training) must be a number in (0, 1]."""
    if isinstance(early_fraction, bool) or not isinstance(early_fraction, (int, float, np.integer, np.floating)) \
            or not 0 < early_fraction <= 1:
        raise ValueError(f"early_fraction must be in (0, 1], got {early_fraction!r}")


#: (statistic, claim) of the NAS − manual rows: the claim's primary first, the rest exploratory
#: (the registry decides the role); then the informational level ``zoo.clean_accuracy``.
VERDICT_STATISTICS = (("early_auc", "zoo.early_convergence"), ("early_acc", "zoo.early_convergence"),
                      ("early_loss_drop", "zoo.early_convergence"))


def verdict_rows(speed: pd.DataFrame, table: pd.DataFrame, entries: dict, profile: str, seed: int = 0) -> list[dict]:
    """The chapter's verdict plan: NAS − manual rows (models as units, confounds from the zoo
    ``entries``) of :data:`VERDICT_STATISTICS` on the early-convergence table ``speed``
    (:func:`early_speed`), and the paper's level claim ``zoo.clean_accuracy`` on the seed-mean test
    accuracy per model of ``table`` (:func:`zoo_table`)."""
    from ..report import add_confounds, compare_families, compare_values

    units = add_confounds(speed, entries)
    rows = [compare_families(units, stat, claim, seed=seed, profile=profile) for stat, claim in VERDICT_STATISTICS]
    study = table[~table.model.map(is_size_variant)]          # the level claim is about the study's models
    rows.append(compare_values("zoo.clean_accuracy", study.groupby("model").test_acc.mean(), statistic="test_acc",
                               units_of_analysis="models", profile=profile))
    return rows


def pilot_results(path: Path = PILOT_CSV) -> pd.DataFrame | None:
    """The recipe pilot's table (``benchmarks/pilot_quick_recipe.py``), or None if it was not run."""
    return pd.read_csv(path) if Path(path).is_file() else None


# --------------------------------------------------------------------------- figures
def _family_handles(families):
    from matplotlib.lines import Line2D
    return [Line2D([], [], color=GROUP_COLOURS[f], lw=2.5, label=FAMILY_WORDS[f]) for f in FAMILY_ORDER if f in families]


def plot_curves(curve_df: pd.DataFrame, fraction: float = 0.3, axes=None):
    """Test accuracy (top) and training loss (bottom) against training images seen: a thin line per
    model, the family mean as a thick line; the early window shaded. Stacked for the 772 px page."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(2, 1, figsize=(7.7, 6.4), sharex=True)
    for ax, value, label in zip(axes, ("test_acc", "train_loss"), ("test accuracy (%)", "training loss (nats)")):
        for fam in FAMILY_ORDER:
            sub = curve_df[curve_df.family == fam]
            if sub.empty:
                continue
            for _, g in sub.groupby(["model", "seed"]):
                ax.plot(g.images / 1000, g[value], color=GROUP_COLOURS[fam], alpha=0.3, lw=0.8)
            mean = sub.groupby("step").agg(images=("images", "mean"), v=(value, "mean"))
            ax.plot(mean.images / 1000, mean.v, color=GROUP_COLOURS[fam], lw=2.5)
        total = curve_df.groupby(["model", "seed"]).images.max().median() / 1000
        ax.axvspan(0, fraction * total, color="0.85", zorder=0)
        ax.set_ylabel(label, fontsize=11)
        ax.tick_params(labelsize=10)
    axes[0].legend(handles=_family_handles(set(curve_df.family)) +
                   [plt.Rectangle((0, 0), 1, 1, color="0.85", label=f"early window ({fraction:.0%} of steps)")],
                   fontsize=10, loc="lower right")
    axes[-1].set_xlabel("training images seen (thousands)", fontsize=11)
    return axes


def plot_accuracy(table: pd.DataFrame, goal: dict, ax=None):
    """Clean accuracy per model (seed mean; dots for individual seeds), coloured by family, with the
    profile's floor and median goal lines."""
    import matplotlib.pyplot as plt

    acc = table.groupby(["model", "family"], as_index=False).test_acc.mean()
    acc["order"] = acc.family.map({f: i for i, f in enumerate(FAMILY_ORDER)})
    acc = acc.sort_values(["order", "test_acc"])
    ax = ax or plt.subplots(figsize=(7.7, 3.6))[1]
    ax.bar(acc.model, acc.test_acc, color=[GROUP_COLOURS[f] for f in acc.family])
    for i, name in enumerate(acc.model):
        seeds = table[table.model == name].test_acc
        if len(seeds) > 1:
            ax.scatter([i] * len(seeds), seeds, color="black", s=12, zorder=3)
    ax.axhline(goal["floor"], color="0.3", ls="--", lw=1)
    ax.axhline(goal["median_goal"], color="0.3", ls=":", lw=1)
    ax.set_ylabel("clean test accuracy (%)", fontsize=11)
    ax.set_ylim(0, 100)
    ax.tick_params(axis="x", rotation=60, labelsize=10)
    ax.tick_params(axis="y", labelsize=10)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    ax.legend(handles=_family_handles(set(acc.family)), fontsize=10, loc="upper left", ncol=3)
    return ax


def plot_pilot(pilot: pd.DataFrame, ax=None):
    """The recipe pilot: accuracy against training CPU-minutes, one marker per (model, candidate)."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(7.7, 3.8))[1]
    markers = dict(zip(sorted(pilot.candidate.unique()), "osD^v<>"))
    for model, g in pilot.groupby("model"):
        g = g.sort_values("cpu_minutes")
        ax.plot(g.cpu_minutes, g.test_acc, color="0.7", lw=0.8, zorder=1)
        for _, r in g.iterrows():
            ax.scatter(r.cpu_minutes, r.test_acc, marker=markers[r.candidate], s=45,
                       color=GROUP_COLOURS[family(model)], zorder=2)
        last = g.iloc[-1]
        ax.annotate(model, (last.cpu_minutes, last.test_acc), xytext=(4, 0), textcoords="offset points",
                    fontsize=10, va="center")
    from matplotlib.lines import Line2D
    ax.legend(handles=[Line2D([], [], marker=m, ls="", color="0.3", label=c) for c, m in markers.items()],
              fontsize=9, loc="lower right")
    ax.set_xlabel("training CPU-minutes (one thread)", fontsize=11)
    ax.set_ylabel("clean test accuracy (%)", fontsize=11)
    ax.tick_params(labelsize=10)
    return ax


def plot_cells(names, ncols: int = 3):
    """The normal cells of ``names`` in a grid sized for the 772 px page."""
    import matplotlib.pyplot as plt

    nrows = -(-len(names) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(7.7, 2.5 * nrows))
    for ax in np.ravel(axes)[len(names):]:
        ax.set_axis_off()
    for ax, name in zip(np.ravel(axes), names):
        plot_cell(name, ax=ax)
    fig.tight_layout()
    return fig


def plot_cell(name: str, ax=None, reduce: bool = False):
    """Draw a cell's DAG: inputs c_{k-2}, c_{k-1}, intermediate nodes by depth, edges labelled
    with their operation (red: skip connections), concat nodes outlined in green."""
    import matplotlib.pyplot as plt

    from ..models import genotype

    g = genotype(name)
    pairs, concat = (g.reduce, g.reduce_concat) if reduce else (g.normal, g.normal_concat)
    depth = {0: 0, 1: 0}
    for k in range(len(pairs) // 2):
        depth[k + 2] = 1 + max(depth[pairs[2 * k][1]], depth[pairs[2 * k + 1][1]])
    ax = ax or plt.subplots(figsize=(4, 3))[1]
    by_depth: dict[int, list[int]] = {}
    for node, d in depth.items():
        by_depth.setdefault(d, []).append(node)
    pos = {}
    for d, nodes in by_depth.items():
        for i, node in enumerate(nodes):
            pos[node] = (d, i - (len(nodes) - 1) / 2)
    pos["out"] = (max(depth.values()) + 1, 0)
    short = {"sep_conv_3x3": "s3", "sep_conv_5x5": "s5", "sep_conv_7x7": "s7", "dil_conv_3x3": "d3",
             "dil_conv_5x5": "d5", "max_pool_3x3": "mp", "avg_pool_3x3": "ap", "skip_connect": "id",
             "conv_7x1_1x7": "c71"}
    seen_edges: dict[tuple, int] = {}
    for k in range(len(pairs) // 2):
        for op, src in pairs[2 * k: 2 * k + 2]:
            (x0, y0), (x1, y1) = pos[src], pos[k + 2]
            dup = seen_edges.get((src, k + 2), 0)  # two ops on the same edge: bend them apart
            seen_edges[(src, k + 2)] = dup + 1
            rad = 0.25 if dup == 0 else -0.25
            colour = "tab:red" if op == "skip_connect" else "0.35"
            ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                        arrowprops=dict(arrowstyle="->", color=colour, lw=1, shrinkA=10, shrinkB=10,
                                        connectionstyle=f"arc3,rad={rad}"))
            # the label sits on the arc, offset perpendicular to the chord by the bend
            t = 0.5
            mx, my = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
            nx, ny = (y1 - y0), -(x1 - x0)
            ax.text(mx + rad * nx * 0.5, my + rad * ny * 0.5, short[op], fontsize=8, color=colour, ha="center",
                    va="center", bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.85), zorder=5)
    for node in concat:
        (x0, y0), (x1, y1) = pos[node], pos["out"]
        ax.plot([x0, x1], [y0, y1], color="0.85", lw=0.8, zorder=0)
    for node, (x, y) in pos.items():
        label = {0: "k−2", 1: "k−1", "out": "out"}.get(node, str(node))
        edge = "tab:green" if node in concat else "0.3"
        ax.scatter([x], [y], s=330, c="white", edgecolors=edge, linewidths=1.5, zorder=3)
        ax.text(x, y, label, ha="center", va="center", fontsize=7, zorder=4)
    stats = cell_stats(name, cell="reduce" if reduce else "normal")
    ax.set_title(f"{name}: depth {stats.depth}, skips {stats.skips}", fontsize=10)
    ax.set_axis_off()
    ax.margins(0.12)
    return ax
