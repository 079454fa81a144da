"""Top Hessian eigenvalue and Hessian trace of a loss, each with its convergence record.

**An addition to the paper.** Pang et al. (USENIX Security 2022, §5) argue smoothness
analytically and show it through loss contours; the artifact has no Hessian script (protocol
``automl-security.md`` §5.3), so any number from this module must be labelled as an addition.
In the convergence bound of protocol §5.4 the smoothness constant ``beta`` bounds the largest
Hessian eigenvalue, which :func:`top_eigenvalue` estimates (``which="algebraic"``).

**Which loss.** The Hessian is that of the mean loss on **the data the caller passes** (``x``,
``y``): for a claim about the test loss pass test images, for the training loss training
images. The functions draw no data themselves; results record ``n_images``.

* :func:`top_eigenvalue` / :func:`power_iteration` — power iteration from a normalised Gaussian
  start (PyHessian, Yao et al. 2020). Step ``k``: ``lam_k = v_k . H v_k`` (Rayleigh quotient),
  ``v_{k+1} = H v_k / ||H v_k||``. Stops at the first ``k >= 2`` with
  ``|lam_k - lam_{k-1}| / |lam_k| < tol`` (default 1e-3) — **converged** — or after
  ``max_iter`` products — **not converged**. The rate is ``(lam_2 / lam_1)^2`` per step: close
  top eigenvalues need many steps. ``which`` says which eigenvalue is returned (scipy's
  ``eigsh`` calls them ``"LM"`` and ``"LA"``):

  - ``"magnitude"`` (default): the eigenvalue of largest **magnitude** ``lam_1``, signed — what
    power iteration converges to.
  - ``"algebraic"``: the **largest** eigenvalue ``lam_max`` (the sharpness a smoothness claim is
    about). If ``lam_1 >= 0`` it is ``lam_1``. If ``lam_1 < 0``, a second power iteration on
    ``H - lam_1 I`` (eigenvalues ``lam_i - lam_1 >= 0`` when ``lam_1`` is the smallest; start seed
    ``seed + 1``) gives ``mu = lam_max - lam_1``, so ``lam_max = mu + lam_1``.

  Returns :class:`EigenResult`: the eigenvalue, iterations used, the final relative change, the
  flag, and for ``"algebraic"`` whether the shift was needed.
* :func:`hessian_trace` / :func:`hutchinson` — Hutchinson's estimator (Hutchinson 1989):
  ``tr(H) = E[z . H z]`` for Rademacher ``z``; the mean of the probes and its standard error
  ``std(ddof=1) / sqrt(n)``. With ``tol``, probing stops once ``stderr / |mean| < tol`` (after
  at least ``min_samples`` probes) — **converged** — or at ``n_samples`` probes. Returns
  :class:`TraceResult`. Stopping on the data biases the mean slightly toward larger ``|mean|``
  (optional stopping); ``tol=None`` runs exactly ``n_samples`` probes.

Units: loss units per (parameter unit)^2.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Literal, Union

import torch
from torch import nn

from .hvp import HVP, Params, hvp, hvp_fn

__all__ = ["EigenResult", "TraceResult", "power_iteration", "hutchinson", "top_eigenvalue",
           "hessian_trace", "HVP", "hvp", "hvp_fn", "WHICH"]

Which = Literal["magnitude", "algebraic"]
#: The eigenvalues :func:`power_iteration` can return (module docstring).
WHICH: tuple[str, ...] = ("magnitude", "algebraic")


@dataclass(frozen=True)
class EigenResult:
    """An eigenvalue by power iteration and how the iteration ended.

    ``eigenvalue``: the eigenvalue ``which`` names (module docstring), from the last Rayleigh
    quotient. ``iterations``: operator applications (Hessian-vector products), both runs where
    the shift was needed. ``rel_change``: ``|lam_k - lam_{k-1}| / |lam_k|`` at the last step of
    the last run (``inf`` after one step). ``converged``: every run reached ``rel_change < tol``
    (or ``H v = 0`` exactly). ``history``: every Rayleigh quotient, the shifted run's with the
    shift added back (so in the eigenvalue's units; the last entry is ``eigenvalue``).
    ``largest_magnitude``: the eigenvalue of largest magnitude, signed (the first run's result).
    ``shifted``: the second, shifted run was needed (``"algebraic"`` with ``largest_magnitude < 0``).
    ``n_images``: samples in the loss (None for a plain function).
    """

    eigenvalue: float
    iterations: int
    rel_change: float
    converged: bool
    tol: float
    max_iter: int
    history: tuple[float, ...]
    which: str = "magnitude"
    largest_magnitude: float = math.nan
    shifted: bool = False
    n_images: int | None = None
    method: str | None = None


@dataclass(frozen=True)
class TraceResult:
    """Hutchinson trace estimate and how the probing ended.

    ``trace``: mean of the probes ``z . H z``; ``stderr``: ``std(ddof=1) / sqrt(n_probes)``;
    ``rel_stderr``: ``stderr / |trace|``; ``converged``: ``rel_stderr < tol`` (None when no
    ``tol`` was set); ``samples``: every probe value.
    """

    trace: float
    stderr: float
    n_probes: int
    rel_stderr: float
    converged: bool | None
    tol: float | None
    max_probes: int
    samples: tuple[float, ...]
    n_images: int | None = None
    method: str | None = None


def _dot(a: Params, b: Params) -> torch.Tensor:
    return sum((a[k].to(torch.float64) * b[k].to(torch.float64)).sum() for k in a)


def _rand_like(params: Params, gen: torch.Generator, kind: str) -> dict[str, torch.Tensor]:
    out = {}
    for k, p in params.items():
        if kind == "normal":
            t = torch.randn(p.shape, generator=gen, dtype=torch.float64)
        else:  # rademacher
            t = torch.randint(0, 2, p.shape, generator=gen, dtype=torch.int8)
            t = t.to(torch.float64) * 2 - 1
        out[k] = t.to(device=p.device, dtype=p.dtype)
    return out


def _rel_change(lam: float, prev: float) -> float:
    if lam == prev:
        return 0.0
    return abs(lam - prev) / abs(lam) if lam != 0 else math.inf


def _power_run(hv: Callable, like: Params, max_iter: int, tol: float, seed: int) -> EigenResult:
    """One power iteration: the eigenvalue of largest magnitude of ``hv``."""
    if not (isinstance(max_iter, int) and max_iter >= 1):
        raise ValueError(f"max_iter must be an int >= 1, got {max_iter!r}")
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol!r}")
    gen = torch.Generator().manual_seed(int(seed))
    v = _rand_like(like, gen, "normal")
    nrm = float(_dot(v, v)) ** 0.5
    v = {k: t / nrm for k, t in v.items()}
    history: list[float] = []
    rel, converged = math.inf, False
    for _ in range(max_iter):
        w = hv(v)
        lam = float(_dot(v, w))
        history.append(lam)
        if len(history) > 1:
            rel = _rel_change(lam, history[-2])
            converged = rel < tol
        nrm = float(_dot(w, w)) ** 0.5
        if nrm == 0.0:  # H v = 0 exactly: v is an eigenvector with eigenvalue 0
            rel, converged = 0.0, True
        if converged:
            break
        v = {k: t / nrm for k, t in w.items()}
    return EigenResult(eigenvalue=history[-1], iterations=len(history), rel_change=rel,
                       converged=converged, tol=float(tol), max_iter=max_iter,
                       history=tuple(history), largest_magnitude=history[-1])


def power_iteration(hv: Callable, like: Params, max_iter: int = 100, tol: float = 1e-3,
                    seed: int = 0, *, which: Which = "magnitude") -> EigenResult:
    """The eigenvalue ``which`` names — of largest magnitude, or the largest (algebraic) — of the
    symmetric operator ``hv`` (dict of tensors -> dict of tensors), by power iteration (module
    docstring for the rule and the shift).

    ``like``: dict of tensors giving the vectors' shapes. ``seed``: CPU generator of the
    Gaussian start (``seed + 1`` for the shifted run). ``max_iter`` and ``tol`` apply to each run.
    """
    if which not in WHICH:
        raise ValueError(f"which must be one of {WHICH}, got {which!r}")
    first = _power_run(hv, like, max_iter, tol, seed)
    if which == "magnitude" or first.eigenvalue >= 0:
        return replace(first, which=which)
    lam = first.eigenvalue

    def shifted(v):
        return {k: hv_k - lam * v[k] for k, hv_k in hv(v).items()}

    res = _power_run(shifted, like, max_iter, tol, seed + 1)
    return EigenResult(eigenvalue=res.eigenvalue + lam, iterations=first.iterations + res.iterations,
                       rel_change=res.rel_change, converged=bool(first.converged and res.converged),
                       tol=float(tol), max_iter=max_iter, history=first.history + tuple(h + lam for h in res.history),
                       which=which, largest_magnitude=lam, shifted=True)


def hutchinson(hv: Callable, like: Params, n_samples: int = 100, seed: int = 0,
               tol: float | None = None, min_samples: int = 10) -> TraceResult:
    """Hutchinson trace ``mean_i z_i . H z_i`` with Rademacher ``z_i`` (seeded CPU draw).

    ``n_samples``: the most probes. ``tol``: stop once ``stderr / |mean| < tol``, checked from
    probe ``min(min_samples, n_samples)`` on (None: always ``n_samples`` probes).
    """
    if not (isinstance(n_samples, int) and n_samples >= 2):
        raise ValueError(f"n_samples must be an int >= 2, got {n_samples!r}")
    if tol is not None and not tol > 0:
        raise ValueError(f"tol must be > 0 or None, got {tol!r}")
    if not (isinstance(min_samples, int) and min_samples >= 2):
        raise ValueError(f"min_samples must be an int >= 2, got {min_samples!r}")
    first_check = min(min_samples, n_samples)
    gen = torch.Generator().manual_seed(int(seed))
    vals: list[float] = []
    mean = se = rel = math.nan
    for i in range(1, n_samples + 1):
        z = _rand_like(like, gen, "rademacher")
        vals.append(float(_dot(z, hv(z))))
        if i >= 2 and (i >= first_check or i == n_samples):
            t = torch.tensor(vals, dtype=torch.float64)
            mean, se = float(t.mean()), float(t.std(unbiased=True)) / i ** 0.5
            rel = se / abs(mean) if mean != 0 else (0.0 if se == 0 else math.inf)
            if tol is not None and i >= first_check and rel < tol:
                break
    converged = None if tol is None else bool(rel < tol)
    return TraceResult(trace=mean, stderr=se, n_probes=len(vals), rel_stderr=rel,
                       converged=converged, tol=tol, max_probes=n_samples, samples=tuple(vals))


def _resolve(model, x, y, params, loss_fn, method, batch_size):
    """The operator, the vector template and the number of images of the loss."""
    if isinstance(model, nn.Module):
        if x is None or y is None:
            raise ValueError("x and y (the data whose loss the Hessian is of) are required "
                             "when model is an nn.Module")
        return hvp(model, loss_fn, x, y, method, batch_size), None, int(x.shape[0])
    if not callable(model):
        raise TypeError(f"model must be an nn.Module or a callable, got {type(model).__name__}")
    if params is None:
        raise ValueError("params is required when model is a function f(params) -> scalar")
    op = HVP(model, params, method)
    if op._tensor_mode:
        return (lambda v: {"theta": op(v["theta"])}), op, None
    return op, None, None


def _op_method(op, inner) -> str:
    return getattr(inner if inner is not None else op, "method", None)


def top_eigenvalue(model: Union[nn.Module, Callable], x: torch.Tensor | None = None,
                   y: torch.Tensor | None = None, max_iter: int = 100, tol: float = 1e-3,
                   seed: int = 0, *, which: Which = "magnitude", params: Params | torch.Tensor | None = None,
                   loss_fn: Callable | None = None, method: str = "auto",
                   batch_size: int | None = None) -> EigenResult:
    """A top Hessian eigenvalue of the loss on ``(x, y)`` by power iteration: of largest magnitude
    (``which="magnitude"``) or the largest (``which="algebraic"``, shifted where needed).

    Parameters
    ----------
    model : nn.Module or callable
        A module: the Hessian of the mean ``loss_fn(model(x), y)`` (CE by default) in eval mode
        w.r.t. all trainable parameters. A function ``f(params) -> scalar``: pass ``params=``
        (dict of Tensors or a Tensor) instead of ``x, y``.
    x, y : torch.Tensor
        **The data the claim names** (e.g. test images and labels for the test loss),
        ``(N, 3, H, W)`` and ``(N,)``; evaluated in batches of ``batch_size`` (None: all).
    max_iter, tol : int, float
        Cap on Hessian-vector products and the relative-change tolerance, per run (module docstring).
    seed : int
        Seed of the Gaussian start.
    which : {"magnitude", "algebraic"}
        Which eigenvalue (module docstring): largest magnitude (signed), or largest algebraic.
    method : {"auto", "forward-over-reverse", "double-backward"}
        How ``H v`` is computed (:mod:`.hvp`).

    Returns
    -------
    EigenResult
        ``eigenvalue``, ``iterations``, ``rel_change``, ``converged``, ``history``,
        ``largest_magnitude``, ``shifted``, ``n_images``. An addition to the paper (protocol §5.3).
    """
    op, inner, n_images = _resolve(model, x, y, params, loss_fn, method, batch_size)
    like = {"theta": inner.params["theta"]} if inner is not None else op.params
    res = power_iteration(op, like, max_iter=max_iter, tol=tol, seed=seed, which=which)
    return replace(res, n_images=n_images, method=_op_method(op, inner))


def hessian_trace(model: Union[nn.Module, Callable], x: torch.Tensor | None = None,
                  y: torch.Tensor | None = None, n_samples: int = 100, seed: int = 0, *,
                  tol: float | None = 0.05, min_samples: int = 10,
                  params: Params | torch.Tensor | None = None, loss_fn: Callable | None = None,
                  method: str = "auto", batch_size: int | None = None) -> TraceResult:
    """Hessian trace of the loss on ``(x, y)`` by Hutchinson's estimator (Hutchinson 1989).

    Same ``model`` / ``x, y`` (**the data the claim names**) / ``params`` conventions as
    :func:`top_eigenvalue`. ``n_samples``: the most Rademacher probes; ``tol``: stop when the
    relative standard error falls below it, checked from ``min_samples`` probes on (None: run
    all ``n_samples``). Returns :class:`TraceResult` (``trace``, ``stderr``, ``n_probes``,
    ``rel_stderr``, ``converged``). An addition to the paper.
    """
    op, inner, n_images = _resolve(model, x, y, params, loss_fn, method, batch_size)
    like = {"theta": inner.params["theta"]} if inner is not None else op.params
    res = hutchinson(op, like, n_samples=n_samples, seed=seed, tol=tol, min_samples=min_samples)
    return replace(res, n_images=n_images, method=_op_method(op, inner))
