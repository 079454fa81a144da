"""Random wrong-label poisoning (Pang et al., USENIX Security 2022, Fig. 6; protocol §4.2).

The artifact (``bash/poison.sh``: ``--attack poison_random --train_mode dataset``) trains every model
**from scratch** on a training set of unchanged size in which a seeded random fraction ``p`` of the
images has been

* **frozen**: augmented once (the training transform: crop, flip and the recipe's cutout), then
  used as stored in every epoch, and
* **relabelled** to ``(y + U{1..C-1}) mod C``: uniformly one of the *wrong* classes;

the remaining images stay clean, with live augmentation. :class:`RandomLabelPoison` is that training
set as a training variant (:mod:`nascore.attacks.training`), so a poisoned model is trained by the same recipe and cached
like every zoo model, with the poisoning config in its cache key::

    poisoned = zoo.get("darts", "quick", variant=RandomLabelPoison(rate=0.4))
    many = zoo.train_many(names, "quick", variant=RandomLabelPoison(rate=0.4))   # in parallel

``rate=0`` is accepted and returns the clean data unchanged (still a distinct cache key); chapters
use the clean zoo model as the 0 % reference instead when the recipes match.

This module is part of the poisoned models' cache key (the zoo fingerprints a variant's module), so it
holds only the variant: edit it and poisoned models are retrained.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from ..data import augment_once
from .training import TrainingInputs

NAME = "poison_random"


def wrong_labels(y: torch.Tensor, generator: torch.Generator, num_classes: int = 10) -> torch.Tensor:
    """``(y + U{1..C-1}) mod C`` for int64 labels ``y`` (N,): a uniformly drawn wrong class per sample."""
    shift = torch.randint(1, num_classes, y.shape, generator=generator, device=y.device)
    return (y + shift) % num_classes


def poison_indices(n: int, rate: float, generator: torch.Generator) -> torch.Tensor:
    """Sorted indices of the ``int(rate · n)`` poisoned samples (the artifact's ``int`` split), drawn by
    ``generator`` without replacement."""
    count = int(rate * n)
    return torch.randperm(n, generator=generator)[:count].sort().values


@dataclass(frozen=True)
class RandomLabelPoison:
    """Random wrong-label poisoning of a fraction ``rate`` of the training set (a training variant, :mod:`nascore.attacks.training`).

    Parameters
    ----------
    rate : float in [0, 1)
        Fraction of the training set that is frozen and relabelled (protocol: 0.1, 0.2, 0.4).
    data_seed : int
        Seeds which samples are poisoned, their wrong labels and their one augmentation draw; the
        training seed is added, so seed 0 uses the artifact's data seed 1228 and other seeds other
        subsets.
    crop_padding, flip, cutout :
        The augmentation of the one frozen draw. Match the training recipe (the artifact freezes
        its poisoned images with its training transform; ``nascore.findings.poisoning`` passes the
        resolved recipe's values). Defaults: protocol §2 crop 4 and flip, no cutout.
    num_classes : int
        C in ``(y + U{1..C-1}) mod C``.
    """

    rate: float
    data_seed: int = 1228
    crop_padding: int = 4
    flip: bool = True
    cutout: int = 0
    num_classes: int = 10

    def __post_init__(self):
        bad = []
        if isinstance(self.rate, bool) or not isinstance(self.rate, (int, float)) or not 0.0 <= self.rate < 1.0:
            bad.append(f"rate={self.rate!r} (valid: a number in [0, 1))")
        if not isinstance(self.num_classes, int) or self.num_classes < 2:
            bad.append(f"num_classes={self.num_classes!r} (valid: an integer >= 2)")
        if not 0 <= self.crop_padding <= 16:
            bad.append(f"crop_padding={self.crop_padding!r} (valid: 0..16)")
        if not 0 <= self.cutout <= 32:
            bad.append(f"cutout={self.cutout!r} (valid: 0..32)")
        if bad:
            raise ValueError(f"invalid random-label poisoning: {'; '.join(bad)}")

    def config(self) -> dict:
        """JSON-able description; part of the poisoned model's cache key."""
        return {"attack": NAME, **asdict(self)}

    def generator(self, seed: int) -> torch.Generator:
        return torch.Generator().manual_seed(int(self.data_seed) + int(seed))

    def poison(self, train_x: torch.Tensor, train_y: torch.Tensor, seed: int = 0):
        """``(x, y, frozen, idx)``: the poisoned training set (same size), the bool mask of the frozen
        (poisoned) samples and their indices. ``train_x`` uint8 ``(N, 3, H, W)``, ``train_y`` int64 ``(N,)``."""
        if train_x.dtype != torch.uint8 or train_x.ndim != 4:
            raise ValueError(f"expected uint8 (N, C, H, W) images, got {train_x.dtype} {tuple(train_x.shape)}")
        if train_y.ndim != 1 or len(train_y) != len(train_x) or train_y.is_floating_point():
            raise ValueError(f"expected int64 labels of shape ({len(train_x)},), got {train_y.dtype} "
                             f"{tuple(train_y.shape)}")
        g = self.generator(seed)
        idx = poison_indices(len(train_y), float(self.rate), g)
        x, y = train_x.clone(), train_y.clone()
        frozen = torch.zeros(len(train_y), dtype=torch.bool)
        if len(idx):
            x[idx] = augment_once(train_x[idx].cpu(), g, self.crop_padding, self.flip, self.cutout).to(x.device)
            y[idx] = wrong_labels(train_y[idx].cpu(), g, self.num_classes).to(y.device)
            frozen[idx] = True
        return x, y, frozen.to(train_x.device), idx

    def inputs(self, train_x: torch.Tensor, train_y: torch.Tensor, seed: int):
        """The training data as the poisoned model sees it (:class:`~nascore.attacks.training.TrainingInputs`)."""
        x, y, frozen, _ = self.poison(train_x, train_y, seed)
        return TrainingInputs(x, y, frozen=frozen)

    def initial_state(self, name: str, profile, seed: int):
        """Poisoned models are trained from scratch (protocol §4.2: no ``--pretrain``)."""
        return None
