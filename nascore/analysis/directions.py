"""Directions in parameter and input space for loss contours.

Two constructions, both deterministic in ``seed`` (a CPU ``torch.Generator``, so the same seed
gives the same directions on every device):

* :func:`filter_normalized_directions` — Li et al., "Visualizing the Loss Landscape of Neural
  Nets", NeurIPS 2018, §4: a Gaussian direction ``d`` with the shape of every parameter; each
  **filter** ``d_i`` (slice ``i`` along dim 0 of a weight with ``ndim >= 2``: a conv's output
  channel, a linear layer's output row) is rescaled to the norm of the weight's filter,
  ``d_i <- d_i * ||w_i|| / (||d_i|| + 1e-10)`` (the reference code's ``normalize_direction``).
  Parameters with ``ndim <= 1`` (biases, BatchNorm weight and bias) get a **zero** direction, as
  in the reference code's default (``--xignore biasbn``): they are not perturbed. BatchNorm
  running statistics are buffers and are never perturbed. Li et al. do not orthogonalise the two
  directions: independent Gaussian vectors in ``P`` dimensions have a cosine of order
  ``1/sqrt(P)``; :func:`cosine` reports it.
* :func:`balanced_sign_directions` — the artifact's construction (protocol ``automl-security.md``
  §5.2): ``d1`` a random ±1 vector with exactly half its entries −1, ``d2 = d1 * s`` with ``s``
  another balanced ±1 vector, so ``d1 . d2 = 0`` **exactly**.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn

__all__ = ["balanced_sign_directions", "filter_normalized_directions", "cosine",
           "input_directions"]


def _balanced_signs(n: int, gen: torch.Generator, zero_if_odd: bool) -> torch.Tensor:
    """``(n,)`` float32: ``n//2`` entries −1, the rest +1, in random order.

    For odd ``n`` there is one more +1 than −1 (sum = +1), or, with ``zero_if_odd``, that extra
    entry is 0 so the sum is exactly 0.
    """
    v = torch.ones(n, dtype=torch.float32)
    v[: n // 2] = -1.0
    if n % 2 == 1 and zero_if_odd:
        v[-1] = 0.0
    return v[torch.randperm(n, generator=gen)]


def _direction_pair(shape: Sequence[int],
                    gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    shape = tuple(int(s) for s in shape)
    n = 1
    for s in shape:
        n *= s
    if n < 2:
        raise ValueError(f"need at least 2 entries to build orthogonal directions, shape={shape}")
    d1 = _balanced_signs(n, gen, zero_if_odd=False)
    s = _balanced_signs(n, gen, zero_if_odd=True)
    return d1.view(shape), (d1 * s).view(shape)


def balanced_sign_directions(shape: Sequence[int], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two orthogonal ±1 directions of ``shape`` (protocol §5.2), float32 on the CPU.

    ``d1``: random ±1 with exactly ``n // 2`` entries −1 (``n = prod(shape)``). For even ``n``
    that is exactly half, ``d1.sum() == 0``; for odd ``n`` the one extra entry is +1
    (``d1.sum() == 1``).

    ``d2 = d1 * s`` with ``s`` another balanced random ±1 vector, so ``d1 . d2 = s.sum() = 0``
    exactly (every partial sum is an integer of magnitude < 2^24 for ``n`` < 16.7M, so even the
    float32 dot product is exact). For odd ``n``, ``s`` has ``(n-1)/2`` entries +1,
    ``(n-1)/2`` entries -1 and **one 0**, so ``d2`` has exactly one zero entry and
    ``d1 . d2 = 0`` still holds exactly.

    Deterministic in ``seed`` (``torch.Generator().manual_seed(seed)``, two ``randperm`` draws).
    """
    gen = torch.Generator().manual_seed(int(seed))
    return _direction_pair(shape, gen)


def input_directions(shape: Sequence[int], n_images: int,
                     seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image direction pairs ``(n_images, *shape)`` each: image ``k`` gets the ``k``-th
    consecutive :func:`balanced_sign_directions`-style pair drawn from one generator seeded with
    ``seed`` (so image 0's pair equals ``balanced_sign_directions(shape, seed)``)."""
    gen = torch.Generator().manual_seed(int(seed))
    pairs = [_direction_pair(shape, gen) for _ in range(n_images)]
    return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


def _filter_normalize(d: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``d`` with each slice along dim 0 rescaled to the norm of ``w``'s slice (Li et al. 2018);
    zeros for ``ndim <= 1`` (bias / BatchNorm parameters are not perturbed)."""
    if w.ndim <= 1:
        return torch.zeros_like(d)
    dims = tuple(range(1, w.ndim))
    wn = torch.linalg.vector_norm(w.to(torch.float64), dim=dims, keepdim=True)
    dn = torch.linalg.vector_norm(d.to(torch.float64), dim=dims, keepdim=True)
    return (d.to(torch.float64) * (wn / (dn + 1e-10))).to(d.dtype)


def filter_normalized_directions(
    params: Mapping[str, torch.Tensor] | nn.Module, seed: int,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Two filter-normalised random directions (Li et al., NeurIPS 2018, §4).

    Parameters
    ----------
    params : dict[str, Tensor] or nn.Module
        The weights ``w`` (a module means its trainable parameters, in ``named_parameters``
        order).
    seed : int
        Seeds one CPU generator; ``d1`` is drawn for every parameter in order, then ``d2``, each
        entry standard normal in float32 (so the draw does not depend on device or dtype).

    Returns
    -------
    (d1, d2) : two dicts ``{name: Tensor}`` shaped, typed and placed like ``params``. For every
    weight with ``ndim >= 2`` and every ``i``, ``||d[name][i]|| = ||w[name][i]||`` (up to the
    1e-10 guard and float rounding); parameters with ``ndim <= 1`` get zeros.
    """
    if isinstance(params, nn.Module):
        params = {k: p for k, p in params.named_parameters() if p.requires_grad}
    if not params:
        raise ValueError("no parameters to build directions for")
    gen = torch.Generator().manual_seed(int(seed))
    out = []
    for _ in range(2):
        d = {}
        for k, w in params.items():
            g = torch.randn(w.shape, generator=gen, dtype=torch.float32)
            d[k] = _filter_normalize(g, w.detach().cpu()).to(device=w.device, dtype=w.dtype)
        out.append(d)
    return out[0], out[1]


def cosine(d1: Mapping[str, torch.Tensor], d2: Mapping[str, torch.Tensor]) -> float:
    """Cosine of the angle between two directions given as dicts (float64 accumulation)."""
    dot = n1 = n2 = 0.0
    for k in d1:
        a, b = d1[k].to(torch.float64), d2[k].to(torch.float64)
        dot += float((a * b).sum())
        n1 += float(a.square().sum())
        n2 += float(b.square().sum())
    if n1 == 0 or n2 == 0:
        return float("nan")
    return dot / (n1 * n2) ** 0.5
