"""Common shape of every nascore model.

Every model maps **[0,1] images** of shape ``(N, 3, H, W)`` to **logits** ``(N, classes)``;
the per-channel normalisation is the model's first operation (RobustBench convention), so
attacks perturb and clip in pixel space.

A model is ``stem`` → a sequence of *blocks* → ``head``. The blocks are what multi-exit
networks attach internal classifiers to (DeepSloth protocol §1.2: an IC after every block of
VGG-16, ResNet-56, MobileNet, and here also after every DARTS cell), so
:meth:`BlockNet.forward_with_taps` returns the output of every block next to the logits.
Subclasses whose blocks are not a plain chain (DARTS cells read the two previous outputs)
override :meth:`BlockNet.features`.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import torch
from torch import nn

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel; ``x`` is ``(N, C, H, W)`` in [0,1]."""

    def __init__(self, mean: Sequence[float] = CIFAR10_MEAN, std: Sequence[float] = CIFAR10_STD):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class BlockNet(nn.Module):
    """``normalize → stem → blocks[0] → … → blocks[-1] → head``, returning logits.

    Attributes
    ----------
    normalize : Normalize
    stem : nn.Module
    blocks : nn.ModuleList
        The units an internal classifier may follow, in forward order.
    head : nn.Module
        Maps the last block's output to logits ``(N, classes)``.
    """

    normalize: nn.Module
    stem: nn.Module
    blocks: nn.ModuleList
    head: nn.Module

    def features(self, x: torch.Tensor, taps: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Normalised input → last block output; appends each block's output to ``taps``."""
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
            if taps is not None:
                taps.append(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.normalize(x)))

    def forward_with_taps(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits ``(N, classes)`` and the list of block outputs (one tensor per block)."""
        taps: list[torch.Tensor] = []
        logits = self.head(self.features(self.normalize(x), taps))
        return logits, taps


@contextlib.contextmanager
def eval_mode(model: nn.Module, enabled: bool = True) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the block and restore every submodule's own flag after.

    ``model.train(mode)`` would overwrite submodules that were deliberately in another mode, so
    the flags are recorded per module and restored one by one. ``enabled=False`` is a no-op.
    """
    if not enabled:
        yield model
        return
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, flag in flags:
            m.training = flag
