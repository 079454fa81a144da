"""Threat-model geometry, batched over the first dimension (no per-sample loops).

Perturbations ``delta`` are ``(N, ...)`` in [0,1] pixel units; each sample is projected, stepped
and randomly started in its own ball of radius ``eps`` in the chosen norm (``"linf"`` or ``"l2"``).
"""
from __future__ import annotations

import torch

__all__ = ["NORMS", "project_linf", "project_l2", "project", "step_direction", "random_start"]

NORMS = ("linf", "l2")


def _per_sample(v: torch.Tensor, ndim: int) -> torch.Tensor:
    return v.view(-1, *([1] * (ndim - 1)))


def _bad_norm(norm: str) -> ValueError:
    return ValueError(f"norm must be one of {NORMS}, got {norm!r}")


def project_linf(delta: torch.Tensor, eps: float) -> torch.Tensor:
    """Project each sample of ``delta`` ``(N, ...)`` onto the L∞ ball of radius ``eps``."""
    return delta.clamp(-eps, eps)


def project_l2(delta: torch.Tensor, eps: float) -> torch.Tensor:
    """Project each sample of ``delta`` ``(N, ...)`` onto the L2 ball of radius ``eps``."""
    norms = delta.flatten(1).norm(p=2, dim=1)
    factor = (eps / norms.clamp_min(1e-12)).clamp(max=1.0)
    return delta * _per_sample(factor, delta.dim())


def project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Projection onto the ``norm`` ball (``"linf"`` or ``"l2"``), per sample."""
    if norm == "linf":
        return project_linf(delta, eps)
    if norm == "l2":
        return project_l2(delta, eps)
    raise _bad_norm(norm)


def step_direction(grad: torch.Tensor, norm: str) -> torch.Tensor:
    """Steepest-ascent unit direction for ``norm``: ``sign(g)`` (L∞) or ``g/‖g‖₂`` (L2), per sample."""
    if norm == "linf":
        return grad.sign()
    if norm == "l2":
        norms = grad.flatten(1).norm(p=2, dim=1).clamp_min(1e-12)
        return grad / _per_sample(norms, grad.dim())
    raise _bad_norm(norm)


def random_start(x: torch.Tensor, eps: float, norm: str,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """A random point of the ``eps`` ball around ``x`` (uniform in the L∞ box; uniform in the L2
    ball via a Gaussian direction and radius ``eps·u^(1/d)``), clipped to [0,1]."""
    if norm == "linf":
        delta = (torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) * 2 - 1) * eps
    elif norm == "l2":
        d = x[0].numel()
        g = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        g = g / _per_sample(g.flatten(1).norm(dim=1).clamp_min(1e-12), x.dim())
        r = torch.rand(x.shape[0], generator=generator, device=x.device, dtype=x.dtype) ** (1.0 / d)
        delta = g * _per_sample(r * eps, x.dim())
    else:
        raise _bad_norm(norm)
    return (x + delta).clamp(0.0, 1.0)
