"""Chapter 3 — why: gradient variance, loss smoothness, Hessian spectrum; chapter 4 reuses it.

Pang et al. (USENIX Security 2022, §5; protocol §5) explain the NAS models' vulnerabilities by
the search's preference for fast early convergence, which for SGD means a smooth loss (small
β) and low gradient variance σ² (protocol §5.4). They measure gradient variance (Fig. 12, on
freshly initialised networks) and draw loss contours (Eq. 12). This module measures both, and
adds numbers the paper only draws: the top Hessian eigenvalue and the Hessian trace of the
training loss on a fixed batch, and a contour flatness number.
"""
from __future__ import annotations

import time

import pandas as pd
import torch

from ..analysis import flatness, gradient_variance, hessian_trace, input_contour, parameter_contour, top_eigenvalue
from ..models import build, family
from ..profiles import Profile
from ..zoo import ModelConfig, splits
from .common import spearman_row

HVP_METHOD = "double-backward"  # measured faster than forward-over-reverse on CPU (analysis tests)


def fixed_batches(entry, data, profile: Profile):
    """Fixed, un-augmented batches for one model: the first ``gv_images`` test-subset images
    (protocol §5.1: test images) and the first ``hessian_images`` training images."""
    cfg = ModelConfig(**entry.record["config"])
    train_x, train_y, test_x, test_y = splits(data, cfg)
    as_float = lambda t: t.float().div(255)  # noqa: E731
    return ((as_float(test_x[:profile.gv_images]), test_y[:profile.gv_images]),
            (as_float(train_x[:profile.hessian_images]), train_y[:profile.hessian_images]))


def fresh_model(name: str, profile: Profile, seed: int):
    """The freshly initialised network (the artifact's GV setting): BN running stats (0, 1)."""
    torch.manual_seed(seed)
    return build(name, **profile.scale_for(name)).eval()


def measure(entries: dict, data, profile: Profile, progress: bool = True) -> pd.DataFrame:
    """Per (model, seed): GV at init and after training, top Hessian eigenvalue and trace, contour
    flatness in parameter space (first conv) — one row each."""
    rows = []
    for (name, seed), entry in entries.items():
        t0 = time.perf_counter()
        (gx, gy), (hx, hy) = fixed_batches(entry, data, profile)
        model = entry.model
        device = next(model.parameters()).device
        gx, gy, hx, hy = gx.to(device), gy.to(device), hx.to(device), hy.to(device)
        gv_init = gradient_variance(fresh_model(name, profile, seed).to(device), gx, gy)
        gv_trained = gradient_variance(model, gx, gy)
        eig, _ = top_eigenvalue(model, hx, hy, iters=profile.hessian_iters, seed=seed, method=HVP_METHOD)
        trace, trace_se = hessian_trace(model, hx, hy, n_samples=profile.trace_samples, seed=seed, method=HVP_METHOD)
        n_img = profile.contour_images
        pc = parameter_contour(model, gx[:n_img], gy[:n_img], grid=profile.contour_grid, span=0.5, seed=40)
        rows.append({"model": name, "family": family(name), "seed": seed,
                     "clean_acc": 100 * entry.record["metrics"]["test_acc"], "params": gv_trained.n_params,
                     "gv_init": gv_init.gv, "gv_trained": gv_trained.gv,
                     "gv_init_per_param": gv_init.gv / gv_init.n_params,
                     "gv_trained_per_param": gv_trained.gv / gv_trained.n_params,
                     "clipped_frac_init": gv_init.clipped_fraction, "top_eig": eig, "trace": trace,
                     "trace_se": trace_se, "param_flatness": flatness(pc), "seconds": time.perf_counter() - t0})
        if progress:
            r = rows[-1]
            print(f"{name:>16}: GV init {r['gv_init']:9.2f} trained {r['gv_trained']:9.2f}  λmax {eig:8.2f}  "
                  f"tr {trace:9.1f}  flat {r['param_flatness']:.3f}  ({r['seconds']:.0f} s)", flush=True)
    return pd.DataFrame(rows)


def contour_pair(entries: dict, data, profile: Profile, models: tuple[str, str], seed: int = 0):
    """Parameter- and input-space contours (both input grids) for two representative models."""
    out = {}
    for name in models:
        entry = entries[(name, seed)]
        (gx, gy), _ = fixed_batches(entry, data, profile)
        x, y = gx[:profile.contour_images], gy[:profile.contour_images]
        out[name] = {
            "parameter": parameter_contour(entry.model, x, y, grid=profile.contour_grid, span=0.5, seed=40),
            "input_0.02": input_contour(entry.model, x[:1], y[:1], grid=profile.contour_grid, span=0.02, seed=40),
            "input_0.2": input_contour(entry.model, x[:1], y[:1], grid=profile.contour_grid, span=0.2, seed=40),
        }
    return out


def chain_correlations(table: pd.DataFrame, pairs, seed: int = 0) -> pd.DataFrame:
    """Spearman ρ (bootstrap CI, permutation p) across models for each ``(x, y)`` column pair."""
    pm = table.groupby("model").mean(numeric_only=True)
    rows = []
    for x, y in pairs:
        ok = pm[[x, y]].dropna()
        rows.append({"x": x, "y": y, **spearman_row(ok[x], ok[y], seed)})
    return pd.DataFrame(rows)
