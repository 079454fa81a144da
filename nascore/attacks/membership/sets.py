"""Member and non-member sets, balanced and seeded (protocol §4.5).

* :func:`artifact_members` — the artifact's members: random training images, each with one random
  crop/flip draw (the artifact reads them through the training transform once).
* :func:`confidence_matched` — the artifact's non-members: test images whose victim max-softmax
  lies in ``[0.999, 0.99999]`` (:data:`CONFIDENCE_BAND`), taken in a seeded random order. The
  order is the same for every model, so two victims that qualify the same images get the same ones.
  **Widening rule** for weakly trained models with too few such images: the band's lower end moves
  away from 1 by a factor of 10 per step (0.999 → 0.99 → 0.9 → 0), then the upper end rises to 1;
  the band actually used is returned and must be reported.
* :func:`shared_band` — one band for every victim of a comparison: the first band of the widening
  sequence that holds enough candidates for **all** of them (per-victim widening would give the
  families different non-member sets by construction).
* :func:`random_indices` — plain random members/non-members for the score-based attacks and the
  label-only attack's random-non-member control.

The artifact's numpy seed is 30 (:data:`ARTIFACT_SEED`); the draws here use torch generators, so
the same seed picks different images than the artifact did.
"""
from __future__ import annotations

import numpy as np
import torch

from ...data import augment_once

__all__ = ["CONFIDENCE_BAND", "ARTIFACT_SEED", "random_indices", "artifact_members", "confidence_matched",
           "widened_bands", "shared_band"]

CONFIDENCE_BAND = (0.999, 0.99999)
ARTIFACT_SEED = 30


def random_indices(n_available: int, n: int, seed: int) -> torch.Tensor:
    """``n`` distinct indices of ``range(n_available)`` in seeded random order."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"need an integer number of samples >= 1, got {n!r}")
    if n > n_available:
        raise ValueError(f"asked for {n} samples but only {n_available} are available (valid: 1..{n_available})")
    g = torch.Generator().manual_seed(int(seed))
    return torch.randperm(n_available, generator=g)[:n]


def artifact_members(train_x: torch.Tensor, n: int, seed: int = ARTIFACT_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random training images with one frozen crop/flip draw each; ``(images uint8, indices)``."""
    idx = random_indices(len(train_x), n, seed)
    g = torch.Generator().manual_seed(int(seed) + 1)
    return augment_once(train_x[idx], g, crop_padding=4, flip=True, cutout=0), idx


def widened_bands(band: tuple[float, float] = CONFIDENCE_BAND):
    """The sequence of bands the widening rule tries, starting with ``band`` itself."""
    lo, hi = band
    if not 0 <= lo < hi <= 1:
        raise ValueError(f"band must satisfy 0 <= low < high <= 1, got {band!r}")
    yield lo, hi
    while lo > 0:
        lo = round(max(0.0, 1 - 10 * (1 - lo)), 12)
        yield lo, hi
    if hi < 1:
        yield 0.0, 1.0


def confidence_matched(max_prob, n: int, seed: int = ARTIFACT_SEED,
                       band: tuple[float, float] = CONFIDENCE_BAND) -> tuple[np.ndarray, tuple[float, float]]:
    """Indices of ``n`` candidates whose ``max_prob`` lies in the band, in seeded random order.

    ``max_prob`` ``(M,)``: the victim's max-softmax on the candidate non-members (the test images).
    Returns ``(indices, band_used)``; ``band_used != band`` means the widening rule was applied.
    """
    conf = np.asarray(max_prob, dtype=float)
    order = random_indices(len(conf), len(conf), seed).numpy()
    if n > len(conf):
        raise ValueError(f"asked for {n} non-members but only {len(conf)} candidates exist")
    for lo, hi in widened_bands(band):
        ok = (conf >= lo) & (conf <= hi)
        if ok.sum() >= n:
            return order[ok[order]][:n], (lo, hi)
    raise AssertionError("unreachable: the widest band [0, 1] holds every candidate")


def shared_band(max_probs, n: int, band: tuple[float, float] = CONFIDENCE_BAND) -> tuple[float, float]:
    """The first band of :func:`widened_bands` (from ``band``) holding at least ``n`` candidates for
    every victim; ``max_probs``: one ``(M,)`` array of max-softmax values per victim. Passed to
    :func:`confidence_matched` it gives every victim non-members from the same band."""
    probs = [np.asarray(p, dtype=float) for p in max_probs]
    if not probs:
        raise ValueError("shared_band needs the max-softmax values of at least one victim")
    for lo, hi in widened_bands(band):
        if all(((p >= lo) & (p <= hi)).sum() >= n for p in probs):
            return lo, hi
    raise ValueError(f"fewer than {n} candidates even in [0, 1] for some victim: {[len(p) for p in probs]}")
