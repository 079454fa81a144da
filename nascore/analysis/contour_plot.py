"""Plots of loss contours: one surface (:func:`plot_contour`) or several models on one shared
colour scale with one colourbar (:func:`plot_contours`).

Both draw :attr:`ContourResult.surface <.contours.ContourResult.surface>` (the image-averaged
loss, or one image's loss when asked), the same array :attr:`~.contours.ContourResult.sharpness`
is computed from, so the number printed in a panel title is a statement about the picture.
``surface[i, j]`` is at ``(alphas[i], betas[j])``; matplotlib wants ``Z[row=y, col=x]``, hence
the transpose.
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from .contours import ContourResult

__all__ = ["plot_contour", "plot_contours", "BOOK_WIDTH_IN"]

#: The book's text width (~770 px) in inches at 100 dpi: figures this wide display at 1:1.
BOOK_WIDTH_IN = 7.7


def _surface(result: ContourResult, image: int | None) -> np.ndarray:
    if image is None:
        return result.surface.numpy()
    if result.loss.ndim != 3 or not 0 <= image < result.loss.shape[0]:
        n = result.loss.shape[0] if result.loss.ndim == 3 else 0
        raise ValueError(f"image must be None or in [0, {n}) (per-image results only), got {image}")
    return result.loss[image].numpy()


def plot_contour(result: ContourResult, ax=None, title: str | None = None,
                 image: int | None = None, clabel: bool = False):
    """Matplotlib ``contour`` (default levels, as the artifact) of one loss surface.

    ``image=None`` draws :attr:`~.contours.ContourResult.surface` (the image average); an int
    draws that image of a per-image result. x axis alpha (``d1``), y axis beta (``d2``).
    Returns the Axes (a new figure is made when ``ax`` is None).
    """
    import matplotlib.pyplot as plt

    z = _surface(result, image)
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    cs = ax.contour(result.alphas.numpy(), result.betas.numpy(), z.T)
    if clabel:
        ax.clabel(cs, inline=True, fontsize=10)
    ax.set_xlabel(r"$\alpha$ (d1)")
    ax.set_ylabel(r"$\beta$ (d2)")
    ax.set_aspect("equal")
    if title is None:
        title = f"{result.space} space, span ±{result.span:g}"
    ax.set_title(title)
    return ax


def _levels(surfaces: dict, n_levels: int, vmin, vmax, scale: str):
    from matplotlib.colors import LogNorm, Normalize

    data_lo = min(float(z.min()) for z in surfaces.values())
    data_hi = max(float(z.max()) for z in surfaces.values())
    lo = data_lo if vmin is None else float(vmin)
    hi = data_hi if vmax is None else float(vmax)
    if not hi > lo:
        hi = lo + max(abs(lo), 1.0) * 1e-6  # constant surfaces: one thin band
    if scale == "log":
        if lo <= 0:
            raise ValueError(f"scale='log' needs positive losses (vmin), got {lo!r}")
        levels, norm = np.geomspace(lo, hi, n_levels + 1), LogNorm(lo, hi)
    else:
        levels, norm = np.linspace(lo, hi, n_levels + 1), Normalize(lo, hi)
    extend = {(False, False): "neither", (True, False): "min", (False, True): "max",
              (True, True): "both"}[(data_lo < lo, data_hi > hi)]
    return levels, norm, extend


def plot_contours(results: Mapping[str, ContourResult], *, ncols: int = 3,
                  colours: Mapping[str, str] | None = None, n_levels: int = 16,
                  vmin: float | None = None, vmax: float | None = None, scale: str = "log",
                  cmap: str = "viridis", width: float = BOOK_WIDTH_IN, fontsize: float = 10,
                  show_sharpness: bool = True):
    """Several models' loss surfaces on **one shared colour scale** with **one colourbar**.

    Parameters
    ----------
    results : mapping label -> ContourResult
        One panel per entry, in order; each draws ``result.surface`` (filled contours at the
        shared levels, thin black lines at the same levels, a white ``+`` at the centre).
    ncols : int
        Panels per row (default 3: each panel ~2.2 in wide at the book's width).
    colours : mapping label -> colour, optional
        Title colour per panel (pass the book's family colours: one colour code per family).
    n_levels : int
        Number of colour bands between ``vmin`` and ``vmax``.
    vmin, vmax : float, optional
        Ends of the shared scale; default the minimum and maximum over all surfaces. Values
        beyond are drawn in the end colours and the colourbar gets an arrow (``extend``).
    scale : {"log", "linear"}
        Spacing of the levels. Default log: across models the loss on the grid spans orders of
        magnitude, and on a shared linear scale every flatter model is a single colour. Log
        needs positive losses (cross-entropy is).
    width, fontsize : float
        Figure width in inches (default the book's 7.7 in ≈ 770 px at 100 dpi) and the size of
        every text in points (default 10: legible at display size).
    show_sharpness : bool
        Second title line ``sharpness = <ContourResult.sharpness> nats``.

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.axes`` holds the panels in order, then the colourbar.
    """
    import matplotlib.pyplot as plt

    if not results:
        raise ValueError("results is empty")
    if scale not in ("linear", "log"):
        raise ValueError(f"scale must be 'linear' or 'log', got {scale!r}")
    if not (isinstance(ncols, int) and ncols >= 1):
        raise ValueError(f"ncols must be a positive int, got {ncols!r}")
    if not (isinstance(n_levels, int) and n_levels >= 2):
        raise ValueError(f"n_levels must be an int >= 2, got {n_levels!r}")
    surfaces = {label: r.surface.numpy() for label, r in results.items()}
    bad = [label for label, z in surfaces.items() if not np.isfinite(z).all()]
    if bad:
        raise ValueError(f"non-finite loss on the grid of {bad}: nothing honest to draw")
    levels, norm, extend = _levels(surfaces, n_levels, vmin, vmax, scale)

    n = len(results)
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    side = (width - 1.1) / ncols  # ~1.1 in for the colourbar and its label
    title_h = (2.6 if show_sharpness else 1.5) * fontsize / 72
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, nrows * (side + title_h)),
                             squeeze=False, layout="constrained")
    cf = None
    units = {r.info.get("n_images") for r in results.values()}
    for k, (label, r) in enumerate(results.items()):
        ax = axes[k // ncols][k % ncols]
        a, b, z = r.alphas.numpy(), r.betas.numpy(), surfaces[label]
        cf = ax.contourf(a, b, z.T, levels=levels, norm=norm, cmap=cmap, extend=extend)
        ax.contour(a, b, z.T, levels=levels, colors="k", linewidths=0.4, alpha=0.6)
        ax.plot([0.0], [0.0], marker="+", color="white", markersize=8, mew=1.5)
        ax.set_aspect("equal")
        title = f"{label}\nsharpness {r.sharpness:.3g} nats" if show_sharpness else label
        ax.set_title(title, fontsize=fontsize,
                     color=(colours or {}).get(label, "black"))
        ax.tick_params(labelsize=fontsize)
        if k // ncols == nrows - 1 or k + ncols >= n:
            ax.set_xlabel(r"$\alpha$", fontsize=fontsize)
        if k % ncols == 0:
            ax.set_ylabel(r"$\beta$", fontsize=fontsize)
    for k in range(n, nrows * ncols):
        fig.delaxes(axes[k // ncols][k % ncols])
    used = [axes[k // ncols][k % ncols] for k in range(n)]
    n_img = units.pop() if len(units) == 1 else None
    label = "loss (nats)" if n_img is None else f"loss (nats), mean over {n_img} images"
    cbar = fig.colorbar(cf, ax=used, shrink=0.9)
    cbar.set_label(label, fontsize=fontsize)
    ticks = levels[::max(1, len(levels) // 6)]
    cbar.ax.minorticks_off()
    cbar.set_ticks(ticks, labels=[f"{t:.3g}" for t in ticks])
    cbar.ax.tick_params(labelsize=fontsize)
    return fig
