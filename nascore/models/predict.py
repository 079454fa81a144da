"""Run a model over a set of images in batches: the one prediction loop of the package.

Every chapter needs "the model's output on these N images" — clean accuracy (:func:`nascore.train.evaluate`),
the correctly classified images an evasion attack starts from, membership scores, a thief's and a
victim's softmax, a backdoor's mean penultimate features, every exit of a multi-exit network. They
all go through :func:`predict`:

* images ``x`` ``(N, C, H, W)`` as ``uint8`` in [0,255] (divided by 255) or float in [0,1] (used as
  given), cut into batches of ``batch_size`` and moved to ``device`` (default: the model's);
* the model in eval mode for the pass, every submodule's own train/eval flag restored afterwards
  (:func:`~nascore.models.base.eval_mode`); no autograd graph (``torch.no_grad``: the outputs may
  still feed later autograd computations, which ``inference_mode`` tensors cannot);
* ``channels_last=True`` hands the model channels_last batches (the training loop's layout);
  the default keeps the dense NCHW layout. The two layouts can pick different convolution kernels, so
  each caller keeps the layout its committed results were computed with;
* ``precision`` (``"fp32"``, ``"bf16"`` or ``"auto"`` = bf16 on CUDA) chooses autocast as in training;
* ``reduce(output)`` maps each batch's output (a tensor, or the list of exit logits of a multi-exit
  network) to a tensor or a tuple of tensors, e.g. ``lambda logits: logits.argmax(1)``; the default
  keeps the output (which must then be a tensor). The per-batch results are concatenated along
  dim 0 (tuples element-wise) and returned on the CPU, or on the device with ``to_cpu=False``.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

import torch
from torch import nn

from .base import eval_mode

__all__ = ["PRECISIONS", "autocast", "image_batches", "predict"]

PRECISIONS = ("auto", "fp32", "bf16")


def autocast(device: torch.device | str, precision: str = "auto"):
    """The autocast context for ``device`` and a precision in :data:`PRECISIONS` (bf16 or none)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    device = torch.device(device)
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def image_batches(x: torch.Tensor, batch_size: int, device: torch.device | str,
                  channels_last: bool = False) -> Iterator[torch.Tensor]:
    """Float batches in [0,1] on ``device`` of images ``x`` ``(N, C, H, W)`` (uint8 or [0,1] float)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if x.ndim != 4:
        raise ValueError(f"expected images (N, C, H, W), got shape {tuple(x.shape)}")
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size].to(device)
        xb = xb.float().div_(255) if xb.dtype == torch.uint8 else xb.float()
        yield xb.contiguous(memory_format=torch.channels_last) if channels_last else xb


def _cat(parts: list) -> Any:
    if isinstance(parts[0], tuple):
        return tuple(torch.cat(column) for column in zip(*parts))
    return torch.cat(parts)


@torch.no_grad()
def predict(model: nn.Module | Callable, x: torch.Tensor, batch_size: int = 500, *,
            reduce: Callable[[Any], Any] | None = None, device: torch.device | str | None = None,
            channels_last: bool = False, precision: str = "fp32", to_cpu: bool = True,
            module: nn.Module | None = None) -> Any:
    """``reduce(model(batch))`` over the batches of ``x``, concatenated; see the module docstring.

    ``model`` may be any callable of [0,1] images (e.g. a feature extractor bound to a network);
    then ``module`` names the ``nn.Module`` whose device and eval mode apply (default: ``model``).
    Raises ``ValueError`` for an empty ``x``.
    """
    net = model if module is None else module
    if len(x) == 0:
        raise ValueError("predict needs at least one image")
    device = torch.device(device) if device is not None else next(net.parameters()).device
    parts = []
    with eval_mode(net):
        for xb in image_batches(x, batch_size, device, channels_last):
            with autocast(device, precision):
                out = model(xb)
            out = out if reduce is None else reduce(out)
            if to_cpu:
                out = tuple(o.cpu() for o in out) if isinstance(out, tuple) else out.cpu()
            parts.append(out)
    return _cat(parts)
