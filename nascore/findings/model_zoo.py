"""Chapter 1 — the model zoo: clean accuracy, cost, cell shape and early convergence.

Pang et al. (USENIX Security 2022) attribute the NAS models' vulnerabilities to a preference
of the search for architectures that *converge fast early in training* (protocol §5.4), visible
in cells that are wide, shallow and skip-heavy (§1.5). This module trains (or loads) the zoo of
a profile and measures that preference: the per-epoch test accuracy and training loss of every
model, and an early-speed statistic compared between NAS and manual models.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .. import zoo
from ..models import cell_stats, family
from ..models.cost import flops_per_image, parameter_count
from ..profiles import Profile
from ..report.stats import auc_trapz
from .common import nas_vs_manual, plot_family_lines


def train_all(profile: Profile, progress: bool = True, workers: int | None = None) -> dict[tuple[str, int], zoo.TrainedModel]:
    """Train (in parallel on CPU) or load every model of ``profile`` for every seed.

    Returns ``{(model, seed): TrainedModel}``; see :func:`nascore.zoo.train_many`.
    """
    return zoo.train_many(profile.models, profile, seeds=profile.seeds, workers=workers, progress=progress)


def zoo_table(entries: dict) -> pd.DataFrame:
    """Table 1: one row per (model, seed) — accuracy, parameters, MFLOPs/image, training time,
    and for NAS cells the normal-cell statistics derived from the genotype."""
    rows = []
    for (name, seed), (model, record) in entries.items():
        fam = family(name)
        stats = cell_stats(name) if fam != "manual" else None
        rows.append({
            "model": name, "family": fam, "seed": seed,
            "test_acc": 100 * record["metrics"]["test_acc"],
            "params_M": parameter_count(model) / 1e6,
            "MFLOPs": flops_per_image(model) / 1e6,
            "train_min": record["metrics"]["train_seconds"] / 60,
            "epochs": len(record["history"]),
            "depth": stats.depth if stats else np.nan,
            "skips": stats.skips if stats else np.nan,
            "input_edges": f"{stats.input_edges}/{stats.edges}" if stats else "",
            "device": record["provenance"]["device"],
        })
    return pd.DataFrame(rows)


def curves(entries: dict) -> pd.DataFrame:
    """Per-epoch history in long form: model, family, seed, epoch, test_acc (%), train_loss."""
    rows = []
    for (name, seed), (_, record) in entries.items():
        for h in record["history"]:
            rows.append({"model": name, "family": family(name), "seed": seed, "epoch": h["epoch"],
                         "test_acc": 100 * h["test_acc"], "train_loss": h["train_loss"]})
    return pd.DataFrame(rows)


def early_window(n_epochs: int, fraction: float = 0.3) -> int:
    """Number of epochs counted as "early": ``ceil(fraction × epochs)``, at least 1."""
    if not 0 < fraction <= 1:
        raise ValueError(f"early fraction must be in (0, 1], got {fraction}")
    return max(1, math.ceil(fraction * n_epochs))


def early_speed(curve_df: pd.DataFrame, fraction: float = 0.3) -> pd.DataFrame:
    """Early-convergence statistics per (model, seed).

    * ``early_acc`` — test accuracy (%) after the first ``early_window`` epochs;
    * ``early_auc`` — mean test accuracy (%) over epochs 1..window (normalised area under the
      early curve; equals ``early_acc`` for a one-epoch window);
    * ``early_loss_drop`` — training loss of epoch 1 minus that of the window's last epoch.
    """
    rows = []
    for (name, seed), g in curve_df.groupby(["model", "seed"]):
        g = g.sort_values("epoch")
        w = early_window(int(g.epoch.max()), fraction)
        e = g[g.epoch <= w]
        auc = float(e.test_acc.mean()) if len(e) == 1 else float(auc_trapz(e.epoch, e.test_acc, normalize=True))
        rows.append({"model": name, "family": family(name), "seed": seed, "window": w,
                     "early_acc": float(e.test_acc.iloc[-1]), "early_auc": auc,
                     "early_loss_drop": float(e.train_loss.iloc[0] - e.train_loss.iloc[-1]),
                     "final_acc": float(g.test_acc.iloc[-1])})
    return pd.DataFrame(rows)


def convergence_verdicts(speed: pd.DataFrame, seed: int = 0) -> list[dict]:
    """NAS − manual for each early-speed statistic against claim ``zoo.early_convergence``."""
    return [nas_vs_manual(speed, stat, "zoo.early_convergence", seed=seed)
            for stat in ("early_auc", "early_acc", "early_loss_drop")]


def plot_curves(curve_df: pd.DataFrame, window: int | None = None, axes=None):
    """Test accuracy and training loss per epoch: thin lines per model, family mean ± 95 % band."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, value, label in zip(axes, ("test_acc", "train_loss"), ("test accuracy (%)", "training loss")):
        plot_family_lines(curve_df, "epoch", value, ax)
        ax.set_ylabel(label)
        if window:
            ax.axvspan(0.5, window + 0.5, color="grey", alpha=0.1, label="early window")
            ax.legend(fontsize=8)
    return axes


def plot_cell(name: str, ax=None, reduce: bool = False):
    """Draw a cell's DAG: inputs c_{k-2}, c_{k-1}, intermediate nodes by depth, edges labelled
    with their operation, concat nodes outlined."""
    import matplotlib.pyplot as plt

    from ..models.genotypes import genotype

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
    out_x = max(depth.values()) + 1
    pos["out"] = (out_x, 0)
    short = {"sep_conv_3x3": "s3", "sep_conv_5x5": "s5", "sep_conv_7x7": "s7", "dil_conv_3x3": "d3",
             "dil_conv_5x5": "d5", "max_pool_3x3": "mp", "avg_pool_3x3": "ap", "skip_connect": "skip",
             "conv_7x1_1x7": "c71"}
    for k in range(len(pairs) // 2):
        for op, src in pairs[2 * k: 2 * k + 2]:
            (x0, y0), (x1, y1) = pos[src], pos[k + 2]
            colour = "tab:red" if op == "skip_connect" else "0.4"
            ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                        arrowprops=dict(arrowstyle="->", color=colour, lw=1, shrinkA=9, shrinkB=9,
                                        connectionstyle="arc3,rad=0.15"))
            ax.text((x0 + x1) / 2, (y0 + y1) / 2, short[op], fontsize=6, color=colour, ha="center")
    for node in concat:
        (x0, y0), (x1, y1) = pos[node], pos["out"]
        ax.plot([x0, x1], [y0, y1], color="0.8", lw=0.8, zorder=0)
    for node, (x, y) in pos.items():
        label = {0: "c$_{k-2}$", 1: "c$_{k-1}$", "out": "out"}.get(node, str(node))
        edge = "tab:green" if node in concat else "0.3"
        ax.scatter([x], [y], s=260, c="white", edgecolors=edge, linewidths=1.5, zorder=3)
        ax.text(x, y, label, ha="center", va="center", fontsize=6, zorder=4)
    stats = cell_stats(name, cell="reduce" if reduce else "normal")
    ax.set_title(f"{name} ({'reduce' if reduce else 'normal'}): depth {stats.depth}, skips {stats.skips}",
                 fontsize=8)
    ax.set_axis_off()
    return ax
