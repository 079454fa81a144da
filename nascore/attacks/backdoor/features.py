"""The pooled penultimate features of a nascore model (trojanzoo's ``get_layer(x, 'flatten')``).

Every nascore model is a :class:`~nascore.models.base.BlockNet`: ``normalize → stem → blocks → head``,
with a ``head`` that is an ``nn.Sequential`` starting (after optional norm/ReLU layers) with a global
``AdaptiveAvgPool2d``. The artifact's TrojanNN and latent backdoor work on the output of that pooling
(the ``flatten`` layer: 576 units for a DARTS net at C=36, 512·w for ResNet-18, the pooled conv
features before VGG's MLP). :func:`pooled_features` runs the head up to that pooling layer; the model
code is not touched.
"""
from __future__ import annotations

import torch
from torch import nn

from ...models.base import eval_mode


def _split_head(model: nn.Module) -> tuple[list[nn.Module], list[nn.Module]]:
    head = getattr(model, "head", None)
    if not isinstance(head, nn.Sequential) or not all(hasattr(model, a) for a in ("normalize", "features")):
        raise TypeError(f"{type(model).__name__} is not a nascore BlockNet with an nn.Sequential head; "
                        "pooled penultimate features are defined for BlockNet models only")
    layers = list(head)
    for i, layer in enumerate(layers):
        if isinstance(layer, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            return layers[:i + 1], layers[i + 1:]
    raise TypeError(f"{type(model).__name__}.head has no global pooling layer: {[type(m).__name__ for m in layers]}")


def pooled_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The pooled penultimate features ``(N, D)`` of [0,1] images ``x`` (the mode of ``model`` is the caller's)."""
    before, _ = _split_head(model)
    h = model.features(model.normalize(x))
    for layer in before:
        h = layer(h)
    return h.flatten(1)


@torch.no_grad()  # not inference_mode: the result feeds trigger optimisations that need autograd
def mean_features(model: nn.Module, x_uint8: torch.Tensor, batch_size: int = 500,
                  device: torch.device | str | None = None) -> torch.Tensor:
    """Mean pooled feature vector ``(D,)`` over uint8 images (eval mode; every module's flag restored)."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    total = None
    with eval_mode(model):
        for start in range(0, len(x_uint8), batch_size):
            xb = x_uint8[start:start + batch_size].to(device).float().div_(255)
            f = pooled_features(model, xb.contiguous(memory_format=torch.channels_last)).float().sum(0)
            total = f if total is None else total + f
    if total is None:
        raise ValueError("mean_features needs at least one image")
    return total / len(x_uint8)
