"""Multi-exit networks ("Shallow-Deep Networks") built from any :class:`BlockNet`.

Protocol ``deepsloth.md`` §1.2–1.3 (Kaya et al., ICML 2019; Hong et al., ICLR 2021). An
:class:`SDN` wraps a trained, **frozen** backbone and attaches an :class:`~.heads.ICHead` after
chosen blocks. Its output is the list of exit logits in depth order: the ``K`` internal
classifiers, then the backbone's own head (the final exit), ``K + 1`` tensors ``(N, classes)``.

IC layouts (:func:`ic_blocks`):

* ``"every"`` (DeepSloth, the default): an IC after every block — 14 / 27 / 13 ICs for VGG-16 /
  ResNet-56 / MobileNet, one per cell for a DARTS network;
* ``"sdn_paper"``: the SDN paper's sparse layout (the backbone's ``sdn_paper_blocks``, e.g.
  VGG-16 after conv 2, 4, 6, 7, 9, 10); for other backbones the blocks whose cumulative cost is
  nearest to 15, 30, …, 90 % of the backbone's (the SDN paper's placement rule);
* an explicit sequence of 0-based block indices.

Because the backbone is frozen it always runs in eval mode (BatchNorm running statistics,
dropout off), also while the ICs train; ``SDN.train()`` leaves it in eval mode. (The authors'
IC-only training left the frozen backbone's BatchNorm in training mode, so its running statistics
drifted during IC training; here the final exit stays exactly the trained CNN.)
"""
from __future__ import annotations

from typing import Iterator, Sequence

import torch
from torch import nn

from ..models.base import BlockNet
from .heads import ICHead
from .taps import iter_taps, tap_shapes

LAYOUTS = ("every", "sdn_paper")
SDN_PAPER_FRACTIONS = (0.15, 0.30, 0.45, 0.60, 0.75, 0.90)


def ic_blocks(backbone: BlockNet, layout: str | Sequence[int] = "every") -> tuple[int, ...]:
    """0-based indices of the blocks that get an IC, ascending."""
    n = len(backbone.blocks)
    if isinstance(layout, str):
        if layout == "every":
            return tuple(range(n))
        if layout == "sdn_paper":
            own = getattr(backbone, "sdn_paper_blocks", None)
            return tuple(own) if own is not None else _blocks_near_fractions(backbone, SDN_PAPER_FRACTIONS)
        raise ValueError(f"unknown IC layout {layout!r}; valid: {', '.join(LAYOUTS)} or a list of block indices")
    blocks = tuple(int(b) for b in layout)
    bad = [b for b in blocks if not 0 <= b < n]
    if not blocks or bad or list(blocks) != sorted(set(blocks)):
        raise ValueError(f"IC blocks must be distinct ascending indices in [0, {n - 1}], got {list(layout)}")
    return blocks


def _blocks_near_fractions(backbone: BlockNet, fractions: Sequence[float]) -> tuple[int, ...]:
    from .cost import block_costs

    seg = block_costs(backbone)
    cum = torch.tensor(seg["blocks"], dtype=torch.float64).cumsum(0) + seg["stem"]
    total = float(cum[-1]) + seg["head"]
    picked = sorted({int((cum / total - f).abs().argmin()) for f in fractions})
    return tuple(picked)


class SDN(nn.Module):
    """A frozen backbone plus internal classifiers; ``forward(x)`` → list of ``K + 1`` logits.

    Parameters
    ----------
    backbone : BlockNet
        The trained CNN; its parameters are frozen (``requires_grad=False``) in place.
    layout : ``"every"``, ``"sdn_paper"`` or block indices (see :func:`ic_blocks`).
    num_classes : classes of every IC (default: the backbone's ``num_classes`` or 10).
    image_size : input side used to infer the tap shapes (32 for CIFAR-10).

    IC initialisation draws from the global RNG (``α ~ U(0,1)``, PyTorch's Linear init): seed
    it before construction for reproducible heads.
    """

    def __init__(self, backbone: BlockNet, layout: str | Sequence[int] = "every",
                 num_classes: int | None = None, image_size: int = 32):
        super().__init__()
        if not isinstance(backbone, BlockNet):
            raise TypeError(f"backbone must be a nascore BlockNet, got {type(backbone).__name__}")
        self.backbone = backbone.requires_grad_(False).eval()
        self.layout = layout if isinstance(layout, str) else "custom"
        self.ic_blocks = ic_blocks(backbone, layout)
        num_classes = int(num_classes or getattr(backbone, "num_classes", 10))
        shapes = tap_shapes(backbone, image_size)
        self.ics = nn.ModuleList(ICHead(shapes[b], num_classes) for b in self.ic_blocks)
        self._ic_of_block = {b: i for i, b in enumerate(self.ic_blocks)}

    @property
    def num_ics(self) -> int:
        return len(self.ics)

    @property
    def num_exits(self) -> int:
        """``K + 1``: the ICs and the final exit."""
        return len(self.ics) + 1

    def train(self, mode: bool = True) -> "SDN":
        super().train(mode)
        self.backbone.eval()
        return self

    def iter_taps(self, x: torch.Tensor) -> Iterator[tuple[int, torch.Tensor]]:
        """Yield ``(ic_index, tap)`` for every IC in depth order, then ``(K, final_logits)``;
        blocks after the last consumed item are not computed."""
        for b, out in enumerate(iter_taps(self.backbone, x)):
            if b == len(self.backbone.blocks):
                yield self.num_ics, out
            elif b in self._ic_of_block:
                yield self._ic_of_block[b], out

    def iter_exits(self, x: torch.Tensor) -> Iterator[torch.Tensor]:
        """Lazily yield the ``K + 1`` exit logits ``(N, classes)`` in depth order (early exit:
        stop iterating and the rest of the network is not run)."""
        for i, out in self.iter_taps(x):
            yield out if i == self.num_ics else self.ics[i](out)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.iter_exits(x))

    def exit_view(self, k: int) -> nn.Module:
        """A module returning only exit ``k``'s logits (negative ``k`` counts from the end); it
        runs the backbone only up to that exit."""
        k = range(self.num_exits)[k]
        return _ExitView(self, k)

    def extra_repr(self) -> str:
        return f"layout={self.layout!r}, ics={self.num_ics}, exits={self.num_exits}"


class _ExitView(nn.Module):
    """``x → logits of exit k`` of an SDN (for attacks on a single exit, e.g. PGD-max)."""

    def __init__(self, sdn: SDN, k: int):
        super().__init__()
        self.sdn = sdn
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, logits in enumerate(self.sdn.iter_exits(x)):
            if i == self.k:
                return logits
        raise AssertionError("unreachable: exit index checked in SDN.exit_view")
