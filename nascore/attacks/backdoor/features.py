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

from ...models.predict import predict


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
    if len(x_uint8) == 0:
        raise ValueError("mean_features needs at least one image")
    sums = predict(lambda xb: pooled_features(model, xb), x_uint8, batch_size, module=model, device=device,
                   channels_last=True, reduce=lambda f: f.float().sum(0)[None])  # (batches, D)
    total = sums[0]
    for batch_sum in sums[1:]:  # a running sum over the batches, in order (its rounding depends on batch_size)
        total = total + batch_sum
    return total / len(x_uint8)
