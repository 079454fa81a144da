"""The internal classifier (IC) head of SDNs and DeepSloth (protocol ``deepsloth.md`` §1.3).

Kaya et al., "Shallow-Deep Networks", ICML 2019 (the same head in the DeepSloth code):

1. **feature reduction** — a feature map of side ``s ≥ 4`` is pooled with kernel ``⌊s/4⌋`` (so the
   IC sees about 4×4); for ``s < 4`` there is no pooling;
2. **mixed pooling** — ``α·maxpool + (1−α)·avgpool`` with one learnable scalar ``α ~ U(0,1)``;
3. **one Linear layer** on the flattened result (no hidden layer, no nonlinearity).

A 2-D tap ``(N, D)`` (VGG's FC-1 block) gets a plain ``Linear(D, classes)``.

The head is split into a parameter-free :meth:`ICHead.reduce` (the pooling) and
:meth:`ICHead.classify` (the α mix and the Linear layer), so IC-only training can compute the
reduced features of a frozen backbone once and reuse them (:mod:`nascore.multiexit.train_ics`).
"""
from __future__ import annotations

import torch
from torch import nn

KINDS = ("pool", "flat", "linear")


class ICHead(nn.Module):
    """Internal classifier for a tap of shape ``tap_shape`` (no batch dim).

    ``forward(tap)``: ``(N, *tap_shape)`` → logits ``(N, num_classes)``. ``kind`` is ``"pool"``
    (4-D tap, side ≥ 4: mixed pooling), ``"flat"`` (4-D tap, side < 4) or ``"linear"`` (2-D tap).
    ``reduced_shape`` is the shape of :meth:`reduce`'s output without the batch dimension.
    """

    def __init__(self, tap_shape: tuple[int, ...], num_classes: int = 10):
        super().__init__()
        self.tap_shape = tuple(int(s) for s in tap_shape)
        if len(self.tap_shape) == 1:
            self.kind = "linear"
            features = self.tap_shape[0]
        elif len(self.tap_shape) == 3:
            c, h, w = self.tap_shape
            if h != w:
                raise ValueError(f"IC heads expect square feature maps, got tap shape {self.tap_shape}")
            if h >= 4:
                self.kind = "pool"
                k = h // 4
                self.max_pool = nn.MaxPool2d(kernel_size=k)
                self.avg_pool = nn.AvgPool2d(kernel_size=k)
                self.alpha = nn.Parameter(torch.rand(1))
                side = h // k
                features = c * side * side
            else:
                self.kind = "flat"
                features = c * h * w
        else:
            raise ValueError(f"tap shape must be (C, H, W) or (D,), got {self.tap_shape}")
        self.linear = nn.Linear(features, num_classes)
        self.reduced_shape = (2, features) if self.kind == "pool" else (features,)

    def reduce(self, tap: torch.Tensor) -> torch.Tensor:
        """Parameter-free part: ``(N, 2, F)`` (max- and avg-pooled, flattened) or ``(N, F)``."""
        if self.kind == "pool":
            return torch.stack((self.max_pool(tap).flatten(1), self.avg_pool(tap).flatten(1)), dim=1)
        return tap.flatten(1)

    def classify(self, reduced: torch.Tensor) -> torch.Tensor:
        """Learnable part: the α mix (pool heads) and the Linear layer → ``(N, num_classes)``."""
        if self.kind == "pool":
            reduced = self.alpha * reduced[:, 0] + (1 - self.alpha) * reduced[:, 1]
        return self.linear(reduced)

    def forward(self, tap: torch.Tensor) -> torch.Tensor:
        return self.classify(self.reduce(tap))

    def extra_repr(self) -> str:
        return f"tap_shape={self.tap_shape}, kind={self.kind!r}"
