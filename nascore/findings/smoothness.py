"""Chapter 3 — why: gradient variance, loss smoothness, Hessian spectrum; chapter 4 reuses it.

Pang et al. (USENIX Security 2022, §5; protocol §5) explain the NAS models' vulnerabilities by
the search's preference for fast early convergence, which for SGD means a smooth loss (small
β) and low gradient variance σ² (protocol §5.4). They measure gradient variance (Fig. 12, on
freshly initialised networks) and draw loss contours (Eq. 12). This module measures, per model
and on **test images** of the profile's test subset:

* gradient variance GV (protocol §5.1) at initialisation and after training, with GV per
  parameter, log10 GV and the fraction of per-sample gradients clipped at norm 5
  (:class:`nascore.analysis.GVResult`);
* the loss contour around the trained weights along two filter-normalised directions in the
  space of **all** parameters (Li et al. 2018, :func:`nascore.analysis.parameter_contour`,
  ``mode="filter"``, span ±1), image-averaged, and its sharpness (mean loss increase over the
  plotted grid, nats); the artifact's first-conv ±1 contours and the input-space contours for
  two models, as pictures;
* the top Hessian eigenvalue (power iteration to a relative tolerance, with its convergence
  record) and the Hessian trace (Hutchinson) of the test loss — an addition to the paper.
  The largest **algebraic** eigenvalue (the sharpness the claim is about) comes from
  :func:`nascore.analysis.top_eigenvalue` with ``which="algebraic"``: power iteration, shifted by
  ``−λ I`` where the eigenvalue of largest magnitude ``λ`` is negative (:func:`eigen_columns`).
"""
from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd

from ..analysis import gradient_variance, hessian_trace, input_contour, parameter_contour, top_eigenvalue
from ..models import family
from ..profiles import Profile
from .common import nas_vs_manual, spearman_row
from .inputs import evaluation_images, fresh_model

HVP_METHOD = "auto"
HESSIAN_TOL = 1e-2   # relative change of the Rayleigh quotient at which power iteration stops (ranks need no more)
TRACE_TOL = 0.05     # relative standard error at which Hutchinson probing stops
FILTER_SPAN = 1.0    # Li et al. (2018): filter-normalised directions over [−1, 1]²
FIRST_CONV_SPAN = 0.5  # the artifact: 41 × 41 grid, step 0.025
INPUT_SPANS = (0.02, 0.2)  # the artifact's code and its README (protocol §5.2)
CONTOUR_SEED = 40    # the artifact's seed of the directions


def eigen_columns(result) -> dict:
    """The table's Hessian-eigenvalue columns from a :class:`nascore.analysis.EigenResult` of
    ``which="algebraic"``: ``top_eig`` (largest algebraic), ``top_eig_abs`` (largest magnitude,
    signed), ``eig_shifted``, and for the run(s) behind ``top_eig``: ``eig_iterations`` (operator
    applications, both runs), ``eig_converged`` (every run reached the tolerance),
    ``eig_rel_change`` (of the last run)."""
    return {"top_eig_abs": result.largest_magnitude, "eig_shifted": result.shifted, "top_eig": result.eigenvalue,
            "eig_iterations": result.iterations, "eig_converged": bool(result.converged),
            "eig_rel_change": result.rel_change}


def _gv_columns(result, when: str) -> dict:
    return {f"gv_{when}": result.gv, f"gv_{when}_per_param": result.gv_per_param,
            f"log10_gv_{when}": result.log10_gv, f"clipped_frac_{when}": result.clipped_fraction}


def measure(entries: dict, data, profile: Profile) -> tuple[pd.DataFrame, dict]:
    """Per (model, seed) one row: GV at init and trained (with per-parameter GV, log10 GV and
    clipped fraction), top Hessian eigenvalue and trace with convergence, and the filter-normalised
    contour's sharpness. Also returns ``{model: ContourResult}`` (first seed of each model) for
    :func:`nascore.analysis.plot_contours`."""
    rows, contours = [], {}
    for (name, seed), entry in entries.items():
        t0 = time.perf_counter()
        model = entry.model
        device = next(model.parameters()).device
        gx, gy = (t.to(device) for t in evaluation_images(entry, data, profile.smoothness.gv_images))
        hx, hy = (t.to(device) for t in evaluation_images(entry, data, profile.smoothness.hessian_images))
        cx, cy = (t.to(device) for t in evaluation_images(entry, data, profile.smoothness.contour_images))
        gv_init = gradient_variance(fresh_model(name, profile, seed).to(device), gx, gy)
        gv_trained = gradient_variance(model, gx, gy)
        # HVP "auto" falls back to double-backward (with a RuntimeWarning) where torch.func lacks a
        # forward-mode formula; that is expected, so it is recorded in the row, not printed on the page.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            eig = eigen_columns(top_eigenvalue(model, hx, hy, max_iter=profile.smoothness.hessian_iters, tol=HESSIAN_TOL,
                                               seed=seed, which="algebraic", method=HVP_METHOD))
            tr = hessian_trace(model, hx, hy, n_samples=max(2, profile.smoothness.trace_samples), seed=seed, tol=TRACE_TOL,
                               min_samples=max(2, min(10, profile.smoothness.trace_samples)), method=HVP_METHOD)
        fallbacks = [w for w in caught if "HVP failed" in str(w.message)]
        for w in caught:
            if w not in fallbacks:  # any other warning still reaches the caller
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        pc = parameter_contour(model, cx, cy, grid=profile.smoothness.contour_grid, span=FILTER_SPAN, seed=CONTOUR_SEED,
                               mode="filter")
        contours.setdefault(name, pc)
        rows.append({"model": name, "family": family(name), "seed": seed,
                     "clean_acc": 100 * entry.record["metrics"]["test_acc"], "params": gv_trained.n_params,
                     **_gv_columns(gv_init, "init"), **_gv_columns(gv_trained, "trained"), **eig,
                     "trace": tr.trace, "trace_se": tr.stderr, "trace_probes": tr.n_probes,
                     "trace_converged": bool(tr.converged), "hvp_double_backward_fallback": bool(fallbacks),
                     "contour_sharpness": pc.sharpness,
                     "contour_center_loss": float(pc.center), "seconds": time.perf_counter() - t0})
    return pd.DataFrame(rows), contours


def artifact_contours(entries: dict, data, profile: Profile, models, seed: int = 0) -> dict:
    """The artifact's pictures for a few models: first-conv ±1 contours (span 0.5) and
    input-space contours on both grids, each averaged over the profile's contour images.
    ``{"first conv": {model: result}, "input ±0.02": {...}, "input ±0.2": {...}}``."""
    out: dict = {"first conv": {}, **{f"input ±{s:g}": {} for s in INPUT_SPANS}}
    for name in models:
        if (name, seed) not in entries:
            raise ValueError(f"no trained model {(name, seed)}; valid: {sorted(entries)}")
        entry = entries[(name, seed)]
        x, y = evaluation_images(entry, data, profile.smoothness.contour_images)
        out["first conv"][name] = parameter_contour(entry.model, x, y, grid=profile.smoothness.contour_grid, span=FIRST_CONV_SPAN,
                                                    seed=CONTOUR_SEED, mode="first-conv")
        for s in INPUT_SPANS:
            out[f"input ±{s:g}"][name] = input_contour(entry.model, x, y, grid=profile.smoothness.contour_grid, span=s,
                                                       seed=CONTOUR_SEED)
    return out


# --------------------------------------------------------------------------- parameters
def check_parameters(profile: Profile, representatives) -> None:
    """The chapter's knobs, before any compute: ``profile.smoothness.contour_grid`` odd and ≥ 3 (the grid has a
    centre), and ``representatives`` — the NAS and the manual model whose artifact-style contours
    are drawn — two models of the profile. Each error names the bad value and the valid choices."""
    if profile.smoothness.contour_grid < 3 or profile.smoothness.contour_grid % 2 == 0:
        raise ValueError(f"contour_grid must be odd and >= 3, got {profile.smoothness.contour_grid}")
    reps = list(representatives) if isinstance(representatives, (list, tuple)) else [representatives]
    bad = [m for m in reps if m not in profile.models]
    if len(reps) != 2 or bad:
        raise ValueError(f"representatives must be two models of the profile; {bad or reps} invalid. "
                         f"Valid: {', '.join(profile.models)}")


def evasion_input(profile: Profile):
    """The path stem of chapter 2's per-model table at ``profile``, which the chain of the argument
    reads (:func:`nascore.report.load_results`); a clear error naming the chapter to run when it is
    not there — raised before any compute."""
    from .common import results_dir

    stem = results_dir(profile, "02_evasion") / "per_model"
    if not stem.with_suffix(".csv").is_file():
        raise FileNotFoundError(f"results/{profile.name}/02_evasion/per_model.csv is missing: run chapter 02_evasion "
                                f"at profile {profile.name!r} first (python -m nascore.book run 02_evasion "
                                f"--profile {profile.name})")
    return stem


# --------------------------------------------------------------------------- verdicts
#: (statistic, claim): each claim's primary and its exploratory statistics (the registry decides the role).
VERDICT_STATISTICS = (("log10_gv_init", "smoothness.grad_var"), ("gv_init_per_param", "smoothness.grad_var"),
                      ("gv_clipped_frac_init", "smoothness.grad_var"),
                      ("log10_gv_trained", "smoothness.grad_var_trained"),
                      ("gv_per_param_trained", "smoothness.grad_var_trained"),
                      ("gv_clipped_frac_trained", "smoothness.grad_var_trained"),
                      ("contour_sharpness", "smoothness.flatness"), ("hessian_top_eig", "smoothness.hessian"),
                      ("hessian_trace", "smoothness.hessian"))


def verdict_rows(table: pd.DataFrame, entries: dict, profile: str, seed: int = 0) -> list[dict]:
    """NAS − manual rows (models as units, confounds from the zoo records) for
    :data:`VERDICT_STATISTICS`."""
    return [nas_vs_manual(table, stat, claim, seed=seed, entries=entries, profile=profile)
            for stat, claim in VERDICT_STATISTICS]


def convergence_summary(table: pd.DataFrame) -> dict:
    """How many models' power iterations and trace estimates reached their tolerance, and how
    many needed the shift (negative largest-magnitude eigenvalue)."""
    return {"n": len(table), "eig_converged": int(table.eig_converged.sum()),
            "eig_shifted": int(table.eig_shifted.sum()), "trace_converged": int(table.trace_converged.sum()),
            "max_iterations": int(table.eig_iterations.max()) if len(table) else 0}


def chain_table(table: pd.DataFrame, speed: pd.DataFrame, evasion: pd.DataFrame) -> pd.DataFrame:
    """Per (model, seed): this chapter's numbers, early speed (chapter 1) and the evasion numbers
    (chapter 2), merged on (model, seed)."""
    keep_e = [c for c in ("pgd_asr", "pgd_asr_argmax", "linf_auc") if c in evasion.columns]
    out = table.merge(speed[["model", "seed", "early_auc"]], on=["model", "seed"], how="inner", validate="one_to_one")
    return out.merge(evasion[["model", "seed", *keep_e]], on=["model", "seed"], how="inner", validate="one_to_one")


#: The links of the paper's chain (smooth loss / low GV → fast early convergence → vulnerability)
#: the chapter correlates, as ``(x, y)`` columns of :func:`chain_table`.
CHAIN_PAIRS = (("gv_init", "early_auc"), ("contour_sharpness", "early_auc"), ("top_eig", "early_auc"),
               ("early_auc", "pgd_asr_argmax"), ("gv_init", "pgd_asr_argmax"), ("contour_sharpness", "pgd_asr_argmax"),
               ("top_eig", "pgd_asr_argmax"), ("early_auc", "linf_auc"), ("contour_sharpness", "linf_auc"))
#: The page's words for the columns of :data:`CHAIN_PAIRS`.
CHAIN_NAMES = {"gv_init": "GV at init", "early_auc": "early test accuracy", "contour_sharpness": "contour sharpness",
               "top_eig": "largest Hessian eigenvalue", "pgd_asr_argmax": "targeted-PGD ASR (argmax rule)",
               "linf_auc": "L∞ robust-accuracy AUC"}


def chain_correlations(table: pd.DataFrame, pairs=CHAIN_PAIRS, seed: int = 0) -> pd.DataFrame:
    """Exploratory: Spearman ρ (bootstrap CI, permutation p) across models for each ``(x, y)``
    column pair (seed-averaged per model); by default the chapter's :data:`CHAIN_PAIRS`."""
    pm = table.groupby("model").mean(numeric_only=True)
    rows = []
    for x, y in pairs:
        ok = pm[[x, y]].dropna()
        rows.append({"x": x, "y": y, **spearman_row(ok[x], ok[y], seed)})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- figures
def plot_gv_detail(table: pd.DataFrame):
    """Per model, stacked: log10 GV per parameter and the fraction of per-sample gradients clipped
    at norm 5, at initialisation (hollow) and after training (filled); family colours."""
    from matplotlib.lines import Line2D

    from .common import FONT_PT, family_legend, figure, model_colour

    pm = table.groupby("model", as_index=False).mean(numeric_only=True)
    pm["family"] = pm.model.map(family)
    pm = pm.sort_values(["family", "log10_gv_init"], key=lambda s: s.map({"manual": 0, "nas": 1, "mitigation": 2})
                        if s.name == "family" else s)
    x = np.arange(len(pm))
    fig, axes = figure(2, 3.0)
    for ax, (col, ylabel, log) in zip(axes, (("gv_{}_per_param", "GV per parameter", True),
                                             ("clipped_frac_{}", "fraction clipped at norm 5", False))):
        colours = [model_colour(m) for m in pm.model]
        ax.scatter(x, pm[col.format("init")], facecolors="white", edgecolors=colours, s=40, lw=1.5, zorder=3)
        ax.scatter(x, pm[col.format("trained")], color=colours, s=40, zorder=3)
        if log:
            from matplotlib.ticker import NullFormatter

            ax.set_yscale("log")
            ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_ylabel(ylabel, fontsize=FONT_PT)
        ax.set_xticks(x, pm.model, rotation=60, ha="right", rotation_mode="anchor", fontsize=FONT_PT)
        ax.tick_params(axis="y", labelsize=FONT_PT)
        ax.grid(alpha=0.3)
    marks = [Line2D([], [], marker="o", ls="", markerfacecolor="white", color="0.3", label="at init"),
             Line2D([], [], marker="o", ls="", color="0.3", label="trained")]
    family_legend(axes[0], pm.family, extra=marks, ncols=5, loc="lower left", bbox_to_anchor=(0, 1.0))
    axes[1].set_ylim(-0.05, 1.05)
    return fig


def plot_hessian(table: pd.DataFrame):
    """Per model, stacked: the largest Hessian eigenvalue (hollow where power iteration did not
    reach its tolerance) and the Hutchinson trace with ± 1 standard error; symmetric-log axes
    (both can be negative at small scale)."""
    from matplotlib.lines import Line2D

    from .common import FONT_PT, family_legend, figure, model_colour

    pm = table.groupby("model", as_index=False).agg(
        top_eig=("top_eig", "mean"), trace=("trace", "mean"), trace_se=("trace_se", "mean"),
        converged=("eig_converged", "all"))
    pm["family"] = pm.model.map(family)
    pm = pm.sort_values("top_eig")
    x = np.arange(len(pm))
    fig, axes = figure(2, 3.0)
    colours = [model_colour(m) for m in pm.model]
    ok = pm.converged.to_numpy(bool)
    axes[0].scatter(x[ok], pm.top_eig[ok], color=np.array(colours)[ok], s=40, zorder=3)
    axes[0].scatter(x[~ok], pm.top_eig[~ok], facecolors="white", edgecolors=np.array(colours)[~ok], s=40, lw=1.5,
                    zorder=3)
    axes[1].errorbar(x, pm.trace, yerr=pm.trace_se, fmt="none", ecolor="0.5", lw=1, zorder=2)
    axes[1].scatter(x, pm.trace, color=colours, s=40, zorder=3)
    for ax, ylabel in zip(axes, ("largest Hessian eigenvalue", "Hessian trace")):
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_ylabel(ylabel, fontsize=FONT_PT)
        ax.set_xticks(x, pm.model, rotation=60, ha="right", rotation_mode="anchor", fontsize=FONT_PT)
        ax.tick_params(axis="y", labelsize=FONT_PT)
        ax.grid(alpha=0.3)
    extra = [Line2D([], [], marker="o", ls="", markerfacecolor="white", color="0.3", label="not converged")]
    family_legend(axes[0], pm.family, extra=extra, ncols=4, loc="lower left", bbox_to_anchor=(0, 1.0))
    return fig


def plot_model_contours(results: dict, ncols: int = 4):
    """:func:`nascore.analysis.plot_contours` (one shared log colour scale, one colourbar) with
    compact two-line titles — the model's name in its colour and the contour sharpness (nats), the
    number :attr:`ContourResult.sharpness` computes from exactly the drawn surface."""
    from ..analysis import plot_contours
    from .common import FONT_PT, model_colour

    def colour(label: str) -> str:
        return model_colour(label.split(",")[0])

    fig = plot_contours(results, colours={k: colour(k) for k in results}, ncols=ncols, show_sharpness=False)
    for ax, (label, r) in zip(fig.axes, results.items()):
        s = r.sharpness
        num = f"{s:.3g}" if abs(s) < 1000 else f"{s:.1e}"
        ax.set_title(f"{label}\n{num.replace('-', '−')} nats", fontsize=FONT_PT, color=colour(label))
    return fig
