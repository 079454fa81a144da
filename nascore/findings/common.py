"""Helpers shared by the chapter modules: colours, model lists, NAS − manual rows, result folders,
and the page elements every chapter draws (figures legible at the book's text width, tables
without an index, the verdicts table with its badges).

One colour code for the whole book (:data:`GROUP_COLOURS`, legend order :data:`FAMILY_ORDER`,
both from :mod:`nascore.report.style`): manual blue, NAS orange, mitigation green; chapter 4 tells the three mitigations apart by shades
of the mitigation green (:data:`MITIGATION_COLOURS`). Figures are drawn :data:`BOOK_WIDTH_IN`
inches wide with :data:`FONT_PT` text, so they display at about 1:1 in the ~770 px text column.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from ..models import family
from ..provenance import REPO_ROOT
from ..profiles import Profile
from ..report import add_confounds, compare_families
from ..report.estimators import spearman_ci
from ..report.style import FAMILY_ORDER, GROUP_COLOURS
FAMILY_NAMES = {"manual": "manual", "nas": "NAS", "mitigation": "mitigation"}
#: DARTS-V2 and its three mitigations (Pang et al. 2022, §5, Table 4) under the paper's names.
MODEL_LABELS = {"darts": "DARTS-V2", "diy_deep": "DARTS-i", "diy_noskip": "DARTS-ii", "diy_deep_noskip": "DARTS-iii"}
#: The mitigations' own colours: shades of the mitigation green, dark to light.
MITIGATION_COLOURS = {"diy_deep": "#1b5e20", "diy_noskip": "#388e3c", "diy_deep_noskip": "#689f38"}
BOOK_WIDTH_IN = 7.7   # the book's ~770 px text column at 100 dpi
FONT_PT = 10          # every text of a figure, in points at display size
MISSING = "—"


def model_colour(name: str) -> str:
    """A model's colour: its own shade for a mitigation, else its family's."""
    return MITIGATION_COLOURS.get(name) or GROUP_COLOURS[family(name)]


def results_dir(profile: Profile | str, chapter: str) -> Path:
    """``<repo>/results/<profile>/<chapter>/`` (``results/smoke`` is git-ignored)."""
    name = profile if isinstance(profile, str) else profile.name
    path = REPO_ROOT / "results" / name / chapter
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_chapter(out: Path, tables: Mapping[str, pd.DataFrame | None], profile: Profile, data, device=None,
                 **settings) -> dict:
    """The closing cell every chapter shares: one provenance record and a CSV + JSON pair per table.

    The record (:func:`nascore.provenance.collect`) holds the machine and software, then
    ``profile`` (its name), ``seeds`` (the profile's) and ``data_source`` (``data.provenance``'s
    label), then the chapter's own ``settings`` in the order given. A chapter that runs one seed of
    its own passes ``seed=…``, which takes the place of the profile's ``seeds``. Each table is
    written to ``out/<name>.csv`` / ``.json`` (:func:`nascore.report.save_results`); a table that is
    ``None`` (not computed at this profile) is skipped. ``device``: the device the chapter ran on
    (default :func:`nascore.train.default_device`). Returns the provenance record.
    """
    from ..provenance import collect
    from ..report import save_results
    from ..train import default_device

    head = {"profile": profile.name}
    if "seed" in settings:
        head["seed"] = settings.pop("seed")
    else:
        head["seeds"] = list(profile.seeds)
    head["data_source"] = data.provenance["label"]
    prov = collect(default_device() if device is None else device, **head, **settings)
    for name, df in tables.items():
        if df is not None:
            save_results(df, Path(out) / name, prov)
    return prov


def per_model(df: pd.DataFrame, value: str, by: Iterable[str] = ("model",)) -> pd.DataFrame:
    """Average ``value`` over seeds: one row per model (the unit of the NAS-vs-manual tests)."""
    by = list(by)
    out = df.groupby(by, as_index=False)[value].mean()
    out["family"] = out["model"].map(family)
    return out


def nas_vs_manual(df: pd.DataFrame, value: str, claim: str | None = None, seed: int = 0, entries=None,
                  **kw) -> dict:
    """NAS − manual verdict row for the registered statistic ``value`` (models as units).

    ``df`` has one row per (model, seed); mitigation models are left out of both groups. The
    confound columns (``params``, ``clean_acc``, ``train_loss``) are merged from the zoo
    ``entries`` on (model, seed) when given and missing from ``df``. ``claim`` defaults to the
    statistic's own claim; other keywords go to :func:`nascore.report.compare_families` (e.g.
    ``confounds=()``, ``exploratory=True``, ``profile``, ``setting``).
    """
    if entries is not None:
        df = add_confounds(df, entries)
    return compare_families(df, value, claim, seed=seed, **kw)


def spearman_row(x, y, seed: int) -> dict:
    """Spearman ρ with CI and p; all NaN (with a note) when either variable is constant."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"rho": np.nan, "low": np.nan, "high": np.nan, "p_value": np.nan, "n": len(x),
                "note": "undefined: fewer than 3 models or a constant variable"}
    r = spearman_ci(x, y, n_boot=2000, seed=seed)
    return {"rho": r.rho, "low": r.low, "high": r.high, "p_value": r.p_value, "n": r.n, "note": ""}


# --------------------------------------------------------------------------- tables
def fmt_number(value, decimals: int = 1, signed: bool = False) -> str:
    """``value`` with fixed ``decimals`` and a Unicode minus; "—" for missing or non-finite."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return MISSING if value is None else str(value)
    if not np.isfinite(v):
        return MISSING
    return format(v, f"{'+' if signed else ''}.{decimals}f").replace("-", "\u2212")


def show_table(df: pd.DataFrame, columns: Mapping[str, str] | None = None, caption: str = "",
               decimals: Mapping[str, int] | int = 1, nowrap_first: bool = True):
    """A table for the page: readable headers (``columns``: old name → header with units, in
    order; other columns are dropped), fixed decimals for float columns (one number, or per
    *original* column name; default 1), "—" for missing values, no index, a caption above; the
    first column (model names) is not wrapped unless ``nowrap_first=False``. Returns a pandas
    ``Styler``."""
    out = df if columns is None else df[list(columns)].rename(columns=dict(columns))
    out = out.reset_index(drop=True)
    names = list(columns) if columns is not None else list(out.columns)
    fmt = {}
    for orig, col in zip(names, out.columns):
        if pd.api.types.is_float_dtype(out[col]):
            d = decimals.get(orig, 1) if isinstance(decimals, Mapping) else int(decimals)
            fmt[col] = (lambda d: lambda v: fmt_number(v, d))(d)
    sty = out.style.hide(axis="index").format(fmt, na_rep=MISSING)
    if caption:
        sty = sty.set_caption(caption)
    first = [{"selector": "td.col0", "props": "white-space: nowrap;"}] if nowrap_first else []
    return sty.set_table_styles(_TABLE_CSS + first, overwrite=False)


_TABLE_CSS = [{"selector": "caption", "props": "caption-side: top; text-align: left; font-weight: 600;"},
              {"selector": "td, th", "props": "white-space: normal;"}]


#: Short unit words for the compact verdicts table.
_SHORT_UNITS = {"percentage points": "pp", "log10 units": "log10", "percent": "%"}


def _short_estimate(text: str) -> str:
    text = text.replace("[95 % CI ", "[")
    for long, short in _SHORT_UNITS.items():
        if text.endswith(" " + long):
            text = text[: -len(long)] + short
    return text


def verdicts_view(verdicts: pd.DataFrame, caption: str = ""):
    """The chapter's own verdict rows (:func:`nascore.report.chapter_table`) compacted for the
    page: claim and statistic (with its role) in one cell, the label before multiplicity
    correction as a coloured badge second from the left (CSS class ``verdict``, which the browser
    check keeps inside the viewport), the estimate with its 95 % interval in short units (pp =
    percentage points), raw p and the size-adjusted estimate (with its common support); no index, "—" for missing."""
    from ..report import chapter_table
    from ..report.scorecard import badge

    t = chapter_table(verdicts)
    out = pd.DataFrame({
        "claim · statistic (role)": [f"<code>{c}</code><br>{s} <i>({r})</i>"
                                     for c, s, r in zip(t["claim"], t["statistic"], t["role"])],
        "label, raw p": t["label (before multiplicity correction)"].map(badge),
        "estimate [95 % CI]": t["estimate [95 % CI]"].map(_short_estimate),
        "p (raw)": t["p (raw)"],
        "size-adjusted": t["size-adjusted"],
    })
    sty = out.style.hide(axis="index").format(na_rep=MISSING)
    if caption:
        sty = sty.set_caption(caption)
    compact = {"selector": "td, th", "props": "font-size: 0.85em; padding: 0.2em 0.4em;"}
    return sty.set_table_styles(_TABLE_CSS + [compact], overwrite=False)


# --------------------------------------------------------------------------- figures
def figure(nrows: int = 1, height: float = 3.4, **kw):
    """A figure the width of the book's text column with ``nrows`` stacked panels, each
    ``height`` inches tall (constrained layout)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, 1, figsize=(BOOK_WIDTH_IN, height * nrows), layout="constrained",
                             squeeze=False, **kw)
    return fig, list(axes[:, 0])


def family_legend(ax, families: Iterable[str] = FAMILY_ORDER, extra=(), **kw):
    """One legend entry per family present, in :data:`FAMILY_ORDER`, plus ``extra`` handles."""
    from matplotlib.patches import Patch

    fams = [f for f in FAMILY_ORDER if f in set(families)]
    handles = [Patch(color=GROUP_COLOURS[f], label=FAMILY_NAMES[f]) for f in fams] + list(extra)
    kw = {"fontsize": FONT_PT, "frameon": False, **kw}
    return ax.legend(handles=handles, **kw)


def plot_family_lines(df: pd.DataFrame, x: str, value: str, ax, families=("manual", "nas"),
                      xlabel: str | None = None, ylabel: str | None = None):
    """Thin line per model (mean over seeds), family mean with a 95 % bootstrap band over models."""
    from ..report.estimators import mean_band

    for fam in [f for f in FAMILY_ORDER if f in families]:
        sub = df[df.family == fam]
        if sub.empty:
            continue
        wide = sub.groupby(["model", x])[value].mean().unstack(x)
        for _, row in wide.iterrows():
            ax.plot(wide.columns, row.values, color=GROUP_COLOURS[fam], alpha=0.3, lw=0.8)
        band = mean_band(wide.to_numpy())
        ax.plot(wide.columns, band.mean, color=GROUP_COLOURS[fam], lw=2.2,
                label=f"{FAMILY_NAMES[fam]} mean ({band.n} models)")
        ax.fill_between(wide.columns, band.low, band.high, color=GROUP_COLOURS[fam], alpha=0.2)
    ax.set_xlabel(xlabel or x, fontsize=FONT_PT)
    ax.set_ylabel(ylabel or value, fontsize=FONT_PT)
    ax.tick_params(labelsize=FONT_PT)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=FONT_PT, frameon=False)
    return ax


def plot_model_bars(df: pd.DataFrame, value: str, ax, label: str | None = None):
    """One bar per model (mean over seeds), coloured by family, sorted by value; model names at
    :data:`FONT_PT`, families in the legend in :data:`FAMILY_ORDER`."""
    pm = per_model(df, value).sort_values(value)
    ax.bar(pm.model, pm[value], color=[model_colour(m) for m in pm.model])
    ax.set_ylabel(label or value, fontsize=FONT_PT)
    ax.tick_params(axis="x", rotation=60, labelsize=FONT_PT)
    ax.tick_params(axis="y", labelsize=FONT_PT)
    for t in ax.get_xticklabels():
        t.set_ha("right")
        t.set_rotation_mode("anchor")
    ax.grid(axis="y", alpha=0.3)
    fams = set(pm.family.unique())  # above the axes: bars of similar height leave no free corner inside
    family_legend(ax, fams, loc="lower left", bbox_to_anchor=(0, 1.01), borderaxespad=0,
                  ncol=len([f for f in FAMILY_ORDER if f in fams]), handlelength=1.2, columnspacing=1.0)
    return ax


def plot_scatter(df: pd.DataFrame, x: str, y: str, ax, labels: bool = True, xlabel: str | None = None,
                 ylabel: str | None = None, xscale: str | None = None, **scale_kw):
    """Per-model scatter (mean over seeds), coloured by family; with ``labels`` each point is
    named (:data:`FONT_PT`), labels that would overlap another label are left out rather than
    drawn on top of each other. ``xscale`` (e.g. ``"symlog"``, with ``scale_kw`` such as
    ``linthresh``) is set before the labels are placed; the x range is then fitted to the data."""
    pm = df.groupby("model", as_index=False).mean(numeric_only=True)
    pm["family"] = pm.model.map(family)
    from matplotlib.lines import Line2D

    fams = [f for f in FAMILY_ORDER if f in set(pm.family)]
    for fam in fams:
        g = pm[pm.family == fam]
        ax.scatter(g[x], g[y], color=[model_colour(m) for m in g.model], s=36, zorder=3)
    ax.set_xlabel(xlabel or x, fontsize=FONT_PT)
    ax.set_ylabel(ylabel or y, fontsize=FONT_PT)
    ax.tick_params(labelsize=FONT_PT)
    ax.grid(alpha=0.3)
    ax.legend(handles=[Line2D([], [], marker="o", ls="", color=GROUP_COLOURS[f], label=FAMILY_NAMES[f])
                       for f in fams], fontsize=FONT_PT, frameon=False)
    if xscale:
        ax.set_xscale(xscale, **scale_kw)
        xs = pm[x].to_numpy(float)
        xs = xs[np.isfinite(xs)]
        if xs.size:
            tr = ax.xaxis.get_transform()
            lo, hi = tr.transform([[xs.min()], [xs.max()]])[:, 0]
            pad = 0.06 * max(hi - lo, 1e-9)
            ax.set_xlim(*tr.inverted().transform([[lo - pad], [hi + pad]])[:, 0])
    if labels:
        place_labels(ax, pm[x].to_numpy(float), pm[y].to_numpy(float), list(pm.model))
    return ax


def place_labels(ax, xs, ys, texts, fontsize: float = FONT_PT) -> int:
    """Name points without overlapping labels: each label tries four positions around its point
    and is drawn at the first one that overlaps no label drawn before and stays inside the axes;
    a label with no free position is left out. Returns how many were left out."""
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    placed, skipped = [], 0
    offsets = [(4, 3, "left", "bottom"), (4, -3, "left", "top"), (-4, 3, "right", "bottom"),
               (-4, -3, "right", "top")]
    for xv, yv, text in sorted(zip(xs, ys, texts), key=lambda t: (-t[1], t[0])):
        if not (np.isfinite(xv) and np.isfinite(yv)):
            continue
        for dx, dy, ha, va in offsets:
            ann = ax.annotate(text, (xv, yv), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                              fontsize=fontsize)
            box = ann.get_window_extent(renderer).expanded(1.02, 1.05)
            inside = (box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0 and box.y1 <= frame.y1)
            if inside and not any(box.overlaps(b) for b in placed):
                placed.append(box)
                break
            ann.remove()
        else:
            skipped += 1
    return skipped
