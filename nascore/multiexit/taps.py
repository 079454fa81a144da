"""Lazy, block-by-block evaluation of a :class:`~nascore.models.base.BlockNet`.

A multi-exit network must be able to *stop* after any block (early-exit inference, protocol
``deepsloth.md`` §2), so the taps are produced by a generator: :func:`iter_taps` yields the tap of
every block in forward order and finally the backbone's logits; a consumer that stops iterating
skips the remaining blocks. It supports

* backbones that define ``iter_taps(x)`` themselves (the DeepSloth backbones of
  :mod:`nascore.models.sdn_backbones`; ResNet-56 yields its pre-ReLU residual sums);
* plain chains, i.e. any ``BlockNet`` that does not override ``features`` (the manual CNNs);
* the DARTS evaluation network (:class:`~nascore.models.darts.DartsNetwork`), whose cells read
  the two previous cell outputs.

Anything else raises ``TypeError`` rather than silently computing every block.
"""
from __future__ import annotations

from typing import Iterator

import torch

from ..models.base import BlockNet


def _is_plain_chain(backbone: BlockNet) -> bool:
    return type(backbone).features is BlockNet.features


def iter_taps(backbone: BlockNet, x: torch.Tensor) -> Iterator[torch.Tensor]:
    """Yield ``len(backbone.blocks)`` taps ``(N, …)``, then the logits ``(N, classes)``.

    The taps equal ``backbone.forward_with_taps(x)[1]`` and the last item equals ``backbone(x)``.
    """
    own = getattr(backbone, "iter_taps", None)
    if callable(own):
        yield from own(x)
        return
    if _is_plain_chain(backbone):
        h = backbone.stem(backbone.normalize(x))
        for block in backbone.blocks:
            h = block(h)
            yield h
        yield backbone.head(h)
        return
    from ..models.darts import DartsNetwork

    if isinstance(backbone, DartsNetwork):
        s0 = s1 = backbone.stem(backbone.normalize(x))
        for cell in backbone.blocks:
            s0, s1 = s1, cell(s0, s1)
            yield s1
        yield backbone.head(s1)
        return
    raise TypeError(f"{type(backbone).__name__} overrides BlockNet.features without an iter_taps(x) method; "
                    "add one (yield every block's tap, then the logits) to make it a multi-exit backbone")


@torch.no_grad()
def tap_shapes(backbone: BlockNet, image_size: int = 32, channels: int = 3) -> list[tuple[int, ...]]:
    """Per-block tap shapes without the batch dimension, from one zero image in eval mode."""
    from ..models.base import eval_mode

    p = next(iter(backbone.parameters()), None)
    device = p.device if p is not None else torch.device("cpu")
    with eval_mode(backbone):
        outs = list(iter_taps(backbone, torch.zeros(1, channels, image_size, image_size, device=device)))
    return [tuple(t.shape[1:]) for t in outs[:-1]]
