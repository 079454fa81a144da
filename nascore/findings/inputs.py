"""What several chapters measure on: a zoo entry's evaluation images and a freshly initialised network.

Shared by chapters 2–4 (evasion, smoothness, mitigations), so that no chapter module imports another.

* :func:`evaluation_subset` — the profile's evaluation subset of the CIFAR-10 **test** set for a zoo
  entry: ``(x uint8 (N, 3, 32, 32), y int64 (N,))``, identical for every model of a profile.
* :func:`evaluation_images` — its first ``n`` images as float ``[0, 1]`` with their labels.
* :func:`fresh_model` — the untrained network the artifact measures gradient variance on.
"""
from __future__ import annotations

import torch

from ..models import build
from ..profiles import Profile
from ..zoo import ModelConfig, splits


def evaluation_subset(entry, data) -> tuple[torch.Tensor, torch.Tensor]:
    """The profile's evaluation subset ``(x uint8 (N, 3, H, W), y (N,))`` of the test set for a zoo
    entry (from its record's config; identical for all models of a profile)."""
    cfg = ModelConfig(**entry.record["config"])
    *_, test_x, test_y = splits(data, cfg)
    return test_x, test_y


def evaluation_images(entry, data, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` images of :func:`evaluation_subset` as float ``[0, 1]`` ``(n, 3, H, W)`` and
    their labels ``(n,)``."""
    x, y = evaluation_subset(entry, data)
    return x[:n].float().div(255), y[:n]


def fresh_model(name: str, profile: Profile, seed: int):
    """The freshly initialised network (the artifact's GV setting), in eval mode: BN running stats
    (0, 1). ``torch.manual_seed(seed)`` is set before it is built."""
    torch.manual_seed(seed)
    return build(name, **profile.scale_for(name)).eval()
