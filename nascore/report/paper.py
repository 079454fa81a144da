"""The paper's own per-model numbers (protocol §11), and a plot of them next to ours.

``data/paper_values_cifar10.csv`` is the hard-coded input of the paper's figures, from the first
author's plotting scripts (``ain-soph/alpsplot`` @ 192beedc…, see ``data/PROVENANCE.md``).

* :func:`paper_values` — the tidy rows, filtered by figure/setting.
* :func:`paper_statistic` — per-model values in a registered statistic's units (e.g.
  ``poison_acc_drop_40`` = accuracy at 0 % minus at 40 %, ``log10_gv_init`` = log10 GV).
* :func:`paper_difference` — the paper's NAS − manual (or mitigation − DARTS) mean difference.
* :func:`plot_paper_vs_ours` — paired markers per model: ours filled, the paper's hollow.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from .statistics import statistic as _statistic
from .style import FAMILY_ORDER, GROUP_COLOURS

PAPER_CSV = Path(__file__).with_name("data") / "paper_values_cifar10.csv"
_NOT_LISTED = " (not in the artifact list)"

_F6 = "clean accuracy at {} % random-label poisoning (50 epochs)"
_T4 = "clean accuracy at {} % poisoning"
#: statistic key → [(series, figure, setting or (setting at 0 %, setting at p %), transform)]
_FAMILY = {
    "test_acc": [("", "Table 1", "clean accuracy (200 epochs)", None)],
    "pgd_asr": [("best", "Fig. 2", 'PGD ASR, "best" series (128 images)', None),
                ("worst", "Fig. 2", 'PGD ASR, "worst" series (128 images)', None)],
    "poison_acc_drop_10": [("", "Fig. 6", (_F6.format(0), _F6.format(10)), "drop")],
    "poison_acc_drop_20": [("", "Fig. 6", (_F6.format(0), _F6.format(20)), "drop")],
    "poison_acc_drop_40": [("", "Fig. 6", (_F6.format(0), _F6.format(40)), "drop")],
    "badnet_asr": [("", "Fig. 7", "BadNet ASR", None)],
    "badnet_cad": [("", "Fig. 7", "BadNet CAD = clean acc − acc after injection", None)],
    "trojannn_asr": [("", "Fig. 7", "TrojanNN ASR", None)],
    "trojannn_cad": [("", "Fig. 7", "TrojanNN CAD = clean acc − acc after injection", None)],
    "extraction_ce": [("", "Fig. 9", "extraction CE H(victim, thief) at 16k queries", None)],
    "mia_boundary_auc": [("", "Fig. 10", "membership AUC (label-only)", None)],
    "log10_gv_init": [("", "Fig. 12", "gradient variance before training (figure plots log10)", "log10")],
    "log10_gv_trained": [("", "Fig. 12", "gradient variance after training (figure plots log10)", "log10")],
}
_MITIGATION = {
    "poison_acc_drop_40": [("", "Table 4 / Fig. 16", (_T4.format(0), _T4.format(40)), "drop")],
    "extraction_ce": [("", "Table 4 / Fig. 17", "extraction CE at 16k queries", None)],
}


@lru_cache(maxsize=1)
def _table() -> pd.DataFrame:
    df = pd.read_csv(PAPER_CSV)
    df["in_artifact"] = ~df["model"].str.endswith(_NOT_LISTED)
    df["model"] = df["model"].str.replace(_NOT_LISTED, "", regex=False)
    return df


def paper_values(figure: str | None = None, setting: str | None = None) -> pd.DataFrame:
    """The paper's per-model CIFAR-10 values: columns ``figure, dataset, setting, unit, family,
    model, value, naming, script, in_artifact``. ``figure`` (e.g. ``"Fig. 6"``) and ``setting``
    (exact text, or a case-insensitive fragment that matches exactly one setting) filter rows."""
    df = _table()
    if figure is not None:
        if figure not in set(df["figure"]):
            raise ValueError(f"unknown figure {figure!r}; valid: {sorted(set(df['figure']))}")
        df = df[df["figure"] == figure]
    if setting is not None:
        settings = list(dict.fromkeys(df["setting"]))
        hits = [s for s in settings if s == setting] or [s for s in settings if setting.lower() in s.lower()]
        if len(hits) != 1:
            raise ValueError(f"setting {setting!r} matches {len(hits)} settings; valid: {settings}")
        df = df[df["setting"] == hits[0]]
    return df.reset_index(drop=True)


def _series(key: str, mitigation: bool) -> list:
    table = _MITIGATION if mitigation else _FAMILY
    if key not in table:
        raise KeyError(f"the paper's data have no {'mitigation ' if mitigation else ''}values for {key!r}; "
                       f"available: {', '.join(table)}")
    return table[key]


def paper_statistic(statistic: str, series: str | None = None, mitigation: bool = False) -> pd.DataFrame:
    """Per-model values of a registered statistic from the paper's data, in its units.

    Columns ``model, family, value, series, figure, in_artifact``. ``series`` picks one series where
    the figure has several (Fig. 2: ``"best"`` / ``"worst"``); ``mitigation=True`` reads Table 4
    (DARTS-V2 and DARTS-i/ii/iii) instead of the NAS/manual figures.
    """
    specs = _series(statistic, mitigation)
    if series is not None:
        specs = [s for s in specs if s[0] == series]
        if not specs:
            valid = [s[0] for s in _series(statistic, mitigation)]
            raise ValueError(f"unknown series {series!r} for {statistic!r}; valid: {valid}")
    frames = []
    for name, figure, setting, transform in specs:
        if transform == "drop":
            clean = paper_values(figure, setting[0]).set_index("model")
            poisoned = paper_values(figure, setting[1]).set_index("model")
            both = clean.index.intersection(poisoned.index)
            df = clean.loc[both].copy()
            df["value"] = clean.loc[both, "value"] - poisoned.loc[both, "value"]
            df = df.reset_index()
        else:
            df = paper_values(figure, setting).copy()
            if transform == "log10":
                df["value"] = np.log10(df["value"])
        df["series"] = name
        frames.append(df[["model", "family", "value", "series", "figure", "in_artifact"]])
    return pd.concat(frames, ignore_index=True)


def paper_difference(statistic: str | None = None, *, figure: str | None = None, setting: str | None = None,
                     series: str | None = None, subject: str | None = None, baseline: str = "darts") -> float:
    """The paper's mean difference: mean over NAS models − mean over manual models, or, with
    ``subject`` (e.g. ``"diy_deep"``), ``subject − baseline`` from Table 4.

    Give a registered ``statistic`` (values in its units) or a raw ``figure`` + ``setting``.
    Every model of the figure counts, as in the paper's means (protocol §11), including the two
    not in the artifact's lists.
    """
    if statistic is not None:
        df = paper_statistic(statistic, series, mitigation=subject is not None)
        if df["series"].nunique() > 1:
            raise ValueError(f"{statistic!r} has several series in the paper's data; pass series= one of "
                             f"{sorted(df['series'].unique())}")
    elif figure is not None and setting is not None:
        df = paper_values(figure, setting)
    else:
        raise ValueError("give a statistic, or a figure and a setting")
    if subject is not None:
        values = df.set_index("model")["value"]
        missing = [m for m in (subject, baseline) if m not in values.index]
        if missing:
            raise ValueError(f"no paper value for {missing}; models: {sorted(values.index)}")
        return float(values[subject] - values[baseline])
    means = df.groupby("family")["value"].mean()
    if not {"nas", "manual"} <= set(means.index):
        raise ValueError(f"the selection has families {sorted(means.index)}, need nas and manual")
    return float(means["nas"] - means["manual"])


def plot_paper_vs_ours(ours: pd.DataFrame, statistic: str, ax=None, *, series: str | None = None,
                       mitigation: bool = False, ours_label: str = "this book",
                       families=FAMILY_ORDER):
    """Model by model: our value (filled circle) next to the paper's (hollow diamond), one colour per
    family, models grouped by family and sorted by the paper's value. Legible at the book's
    772 px text width (10 pt text).

    ``ours``: one row per (model[, seed]) with ``model`` and the statistic's raw column (seeds
    are averaged; a log10 statistic is plotted in log10 units, as the paper's figure). Models
    with only one of the two values get one marker.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from ..models import family as family_of

    stat = _statistic(statistic)
    col = stat.source_column
    if col not in ours.columns or "model" not in ours.columns:
        raise ValueError(f"ours needs columns 'model' and {col!r}; has {list(ours.columns)}")
    mine = ours.groupby("model")[col].mean()
    if stat.scale == "log10":
        mine = np.log10(mine)
    paper = paper_statistic(statistic, series, mitigation)
    if paper["series"].nunique() > 1:
        raise ValueError(f"pass series= one of {sorted(paper['series'].unique())}")
    paper = paper.set_index("model")["value"]
    names = sorted(set(mine.index) | set(paper.index))

    def fam(m):
        try:
            return family_of(m)
        except (KeyError, ValueError):
            return "manual" if m == "mobilenet" else "nas"

    order = sorted(names, key=lambda m: (families.index(fam(m)) if fam(m) in families else 9,
                                         paper.get(m, np.inf), m))
    if ax is None:
        _, ax = plt.subplots(figsize=(7.7, 3.8), layout="constrained")
    for i, m in enumerate(order):
        colour = GROUP_COLOURS.get(fam(m), "0.4")
        pv, ov = paper.get(m, np.nan), mine.get(m, np.nan)
        if np.isfinite(pv) and np.isfinite(ov):
            ax.plot([i, i], [pv, ov], color="0.75", lw=1, zorder=1)
        ax.scatter([i], [pv], marker="D", s=42, facecolors="white", edgecolors=colour, linewidths=1.6, zorder=3)
        ax.scatter([i], [ov], marker="o", s=42, color=colour, zorder=3)
    ax.set_xticks(range(len(order)), order, rotation=60, ha="right", fontsize=10)
    ax.tick_params(axis="y", labelsize=10)
    ax.set_ylabel(stat.label, fontsize=10)
    present = [f for f in families if any(fam(m) == f for m in order)]
    handles = [Line2D([], [], marker="o", ls="", color="0.3", label=ours_label),
               Line2D([], [], marker="D", ls="", markerfacecolor="white", color="0.3", label="paper")]
    handles += [Line2D([], [], marker="s", ls="", color=GROUP_COLOURS[f], label=f) for f in present]
    ax.legend(handles=handles, fontsize=10, ncols=len(handles), loc="upper center", bbox_to_anchor=(0.5, 1.16),
              frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return ax
