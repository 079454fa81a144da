"""Gradient variance (GV) of per-sample loss gradients.

Pang et al., *On the Security Risks of AutoML*, USENIX Security 2022, §5 ("fast convergence
at early training", Fig. 12); protocol ``automl-security.md`` §5.1 and fact 10:

* per-sample cross-entropy gradient ``g_i`` with respect to **all** (trainable) parameters,
  concatenated into one vector of length ``P``; the model is in **eval mode** (BatchNorm uses
  its running statistics, dropout is off);
* every ``g_i`` with L2 norm above ``clip_norm`` (5) is rescaled to norm ``clip_norm``;
* ``GV = sum_j sqrt(max(0, E[g_j^2] - E[g_j]^2))`` — the per-coordinate *population* standard
  deviation over the ``n`` samples, summed over the ``P`` coordinates, accumulated in float64.
  Units: loss units (nats) per parameter unit, summed over parameters; GV grows with ``P``, so
  :class:`GVResult` also gives ``GV / P`` (``gv_per_param``), log10 GV (the scale of the
  paper's Fig. 12) and the fraction of samples whose gradient was clipped (``clipped_fraction``:
  when it is near 1 every gradient has norm 5 and the clip decides the number).

The artifact draws n = 512 test images and measures freshly initialised nets (seed 1228);
choosing the images and the model is the caller's job.

Two implementations:

* :func:`gradient_variance` — vectorised: ``torch.func.vmap(torch.func.grad(...))`` over
  chunks of samples through :func:`torch.func.functional_call`; running sums of ``g`` and
  ``g**2`` are kept per parameter tensor in float64, so memory is ``O(chunk_size * P)``, never
  ``O(n * P)``.
* :func:`gradient_variance_loop` — the reference: one sample at a time with
  :func:`torch.autograd.grad` (what the artifact does with batch size 1). Used by the tests.

In eval mode BatchNorm has no cross-sample interaction, so vmapping the batch-of-one loss is
exactly the artifact's batch-size-1 loop. BatchNorm in *training* mode would mix samples (and
update running statistics), so :func:`gradient_variance` refuses it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from ..models.base import eval_mode

__all__ = [
    "GVResult",
    "gradient_variance",
    "gradient_variance_loop",
    "eval_mode",
    "trainable_parameters",
]

# Budget (bytes) for one chunk of float32 per-sample gradients when ``chunk_size`` is None.
_CHUNK_BYTES = 256 * 2**20


@dataclass(frozen=True)
class GVResult:
    """Result of a gradient-variance measurement.

    Attributes
    ----------
    gv : float
        ``sum_j std_j`` (population std over samples, per coordinate, after clipping).
    n : int
        Number of samples.
    per_sample_norms : torch.Tensor
        ``(n,)`` float64 CPU tensor: L2 norm of each sample's full gradient **before** clipping.
    clip_norm : float | None
        The clipping threshold used (None: no clipping).
    n_params : int
        ``P``, the length of the concatenated gradient.

    Derived (properties): :attr:`gv_per_param` (``gv / P``: the mean per-coordinate std, which
    does not grow with model size), :attr:`log10_gv` and :attr:`log10_gv_per_param` (the paper's
    Fig. 12 plots log10 GV), :attr:`clipped_fraction` (share of samples whose gradient was
    rescaled: near 1, the clip, not the model, sets the scale of GV) and :meth:`summary`.
    """

    gv: float
    n: int
    per_sample_norms: torch.Tensor
    clip_norm: float | None = 5.0
    n_params: int = 0

    @property
    def n_clipped(self) -> int:
        """Samples whose gradient norm was strictly above ``clip_norm`` (rescaled to it)."""
        if self.clip_norm is None:
            return 0
        return int((self.per_sample_norms > self.clip_norm).sum())

    @property
    def clipped_fraction(self) -> float:
        """Fraction of samples whose gradient norm exceeded ``clip_norm`` (0 without clipping)."""
        return self.n_clipped / self.n if self.n else 0.0

    @property
    def gv_per_param(self) -> float:
        """``gv / n_params``: the mean per-coordinate standard deviation."""
        if self.n_params <= 0:
            raise ValueError("n_params unknown (0): GV per parameter is undefined")
        return self.gv / self.n_params

    @property
    def log10_gv(self) -> float:
        """``log10(gv)`` (``-inf`` for GV = 0)."""
        return math.log10(self.gv) if self.gv > 0 else -math.inf

    @property
    def log10_gv_per_param(self) -> float:
        """``log10(gv / n_params)`` (``-inf`` for GV = 0)."""
        return math.log10(self.gv_per_param) if self.gv > 0 else -math.inf

    def summary(self, prefix: str = "") -> dict:
        """Flat dict for a result row, keys prefixed with ``prefix`` (e.g. ``"gv_trained_"``
        gives ``gv_trained_gv``...): ``gv, gv_per_param, log10_gv, log10_gv_per_param,
        clipped_fraction, n_clipped, median_norm`` (before clipping), ``clip_norm, n, n_params``.
        """
        row = {"gv": self.gv, "gv_per_param": self.gv_per_param, "log10_gv": self.log10_gv,
               "log10_gv_per_param": self.log10_gv_per_param,
               "clipped_fraction": self.clipped_fraction, "n_clipped": self.n_clipped,
               "median_norm": float(self.per_sample_norms.median()),
               "clip_norm": self.clip_norm, "n": self.n, "n_params": self.n_params}
        return {prefix + k: v for k, v in row.items()}


def trainable_parameters(model: nn.Module) -> dict[str, torch.Tensor]:
    """``{name: parameter}`` for every parameter with ``requires_grad`` (what has a gradient)."""
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def _check_inputs(model: nn.Module, x: torch.Tensor, y: torch.Tensor, clip_norm) -> tuple:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if x.ndim < 2:
        raise ValueError(f"x must be batched (N, ...), got shape {tuple(x.shape)}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"y must be (N,) class indices matching x's N={x.shape[0]}, "
                         f"got {tuple(y.shape)}")
    if x.shape[0] < 1:
        raise ValueError("need at least one sample")
    if clip_norm is not None and not clip_norm > 0:
        raise ValueError(f"clip_norm must be > 0 or None, got {clip_norm!r}")
    params = trainable_parameters(model)
    if not params:
        raise ValueError("model has no trainable parameters")
    ref = next(iter(params.values()))
    if x.dtype == torch.uint8:
        x = x.to(torch.float32) / 255.0
    if not x.is_floating_point():
        raise TypeError(f"x must be float images in [0,1] (or uint8), got dtype {x.dtype}")
    x = x.to(device=ref.device, dtype=ref.dtype)
    y = y.to(device=ref.device, dtype=torch.long)
    return x, y, params


def _refuse_train_bn(model: nn.Module) -> None:
    bad = [name or "<root>" for name, m in model.named_modules()
           if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
    if bad:
        raise ValueError(
            "gradient_variance needs BatchNorm in eval mode (running statistics): in training "
            f"mode BN mixes samples, so per-sample gradients are undefined. Modules in training "
            f"mode: {bad[:5]}{'...' if len(bad) > 5 else ''}. Use force_eval=True (the protocol).")


def _finish(s1: dict, s2: dict, n: int) -> float:
    total = torch.zeros((), dtype=torch.float64)
    for name in s1:
        mean = s1[name] / n
        var = s2[name] / n - mean * mean
        total += var.clamp_min(0).sqrt().sum().cpu()
    return float(total)


def gradient_variance(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    clip_norm: float | None = 5.0,
    chunk_size: int | None = None,
    force_eval: bool = True,
) -> GVResult:
    """Gradient variance of per-sample CE gradients (protocol §5.1), vectorised with torch.func.

    Parameters
    ----------
    model : nn.Module
        Maps ``(N, 3, H, W)`` images in [0,1] to logits ``(N, classes)``.
    x : torch.Tensor
        ``(n, 3, H, W)`` float images in [0,1] (uint8 is divided by 255).
    y : torch.Tensor
        ``(n,)`` integer labels.
    clip_norm : float or None
        Per-sample gradients with L2 norm above this are rescaled to this norm (5 in the
        artifact). None disables clipping.
    chunk_size : int or None
        Samples per vmapped chunk. None picks ``min(64, 256 MiB / (4 P))`` (at least 1).
    force_eval : bool
        True (protocol): evaluate in eval mode, restoring every module's mode afterwards. False:
        keep the model's current mode; refused if any BatchNorm is in training mode. Dropout in
        training mode then draws independent masks per sample (``vmap(randomness="different")``).

    Returns
    -------
    GVResult
        ``gv`` (float), ``n``, ``n_params``, ``per_sample_norms`` ((n,) float64, before
        clipping); derived ``gv_per_param``, ``log10_gv``, ``clipped_fraction``, ``summary()``.
    """
    x, y, params = _check_inputs(model, x, y, clip_norm)
    n = x.shape[0]
    n_params = sum(p.numel() for p in params.values())
    if chunk_size is None:
        chunk_size = int(max(1, min(64, _CHUNK_BYTES // (4 * n_params))))
    if not (isinstance(chunk_size, int) and chunk_size >= 1):
        raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}")

    buffers = dict(model.named_buffers())
    detached = {k: v.detach() for k, v in params.items()}

    def loss_one(p: dict, xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, (p, buffers), (xi.unsqueeze(0),))
        return F.cross_entropy(logits, yi.unsqueeze(0))

    s1 = {k: torch.zeros(v.shape, dtype=torch.float64, device=v.device) for k, v in params.items()}
    s2 = {k: torch.zeros_like(t) for k, t in s1.items()}
    norms = []
    with eval_mode(model, force_eval):
        _refuse_train_bn(model)
        randomness = "different" if any(m.training for m in model.modules()) else "error"
        per_sample = vmap(grad(loss_one), in_dims=(None, 0, 0), randomness=randomness)
        for start in range(0, n, chunk_size):
            g = per_sample(detached, x[start:start + chunk_size], y[start:start + chunk_size])
            sq = sum(t.to(torch.float64).flatten(1).square().sum(1) for t in g.values())
            norm = sq.sqrt()  # (c,)
            norms.append(norm)
            if clip_norm is None:
                scale = torch.ones_like(norm)
            else:
                scale = (clip_norm / norm.clamp_min(1e-300)).clamp(max=1.0)
            for k, t in g.items():
                t64 = t.to(torch.float64) * scale.view(-1, *([1] * (t.ndim - 1)))
                s1[k] += t64.sum(0)
                s2[k] += t64.square().sum(0)
            del g
    return GVResult(gv=_finish(s1, s2, n), n=n, per_sample_norms=torch.cat(norms).cpu(),
                    clip_norm=clip_norm, n_params=n_params)


def gradient_variance_loop(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    clip_norm: float | None = 5.0,
) -> GVResult:
    """Reference implementation of :func:`gradient_variance`: one sample at a time.

    Same definition and arguments (always eval mode, restored afterwards); each sample's
    gradient comes from :func:`torch.autograd.grad` on a batch of one, as in the artifact.
    Slow; meant for tests and for checking the vectorised version on new architectures.
    """
    x, y, params = _check_inputs(model, x, y, clip_norm)
    n = x.shape[0]
    names = list(params)
    plist = [params[k] for k in names]
    s1 = [torch.zeros(p.shape, dtype=torch.float64, device=p.device) for p in plist]
    s2 = [torch.zeros_like(t) for t in s1]
    norms = []
    with eval_mode(model):
        for i in range(n):
            loss = F.cross_entropy(model(x[i:i + 1]), y[i:i + 1])
            gs = [t.to(torch.float64) for t in torch.autograd.grad(loss, plist)]
            norm = torch.sqrt(sum(t.square().sum() for t in gs))
            norms.append(norm)
            scale = 1.0 if clip_norm is None else min(1.0, clip_norm / max(float(norm), 1e-300))
            for j, t in enumerate(gs):
                t = t * scale
                s1[j] += t
                s2[j] += t.square()
    gv = _finish(dict(zip(names, s1)), dict(zip(names, s2)), n)
    return GVResult(gv=gv, n=n, per_sample_norms=torch.stack(norms).cpu(), clip_norm=clip_norm,
                    n_params=sum(p.numel() for p in plist))
