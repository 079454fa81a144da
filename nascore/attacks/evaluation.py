"""Running an attack over a data set: batches, the artifact's evaluation set, robust accuracy.

Shapes and units as in :mod:`nascore.attacks.base`: images ``(N, C, H, W)`` float [0,1] or uint8,
labels ``(N,)`` int64, budgets in [0,1] pixel units.
"""
from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from ..models.base import eval_mode
from ._util import as_images, check_int, model_device
from .base import Attack
from .result import AttackResult
from .rules import misclassified

__all__ = ["attack_batches", "evaluation_set", "robust_accuracy"]


def attack_batches(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, attack: Attack,
                   batch_size: int = 100, *, target: Any = None,
                   device: torch.device | str | None = None,
                   generator: torch.Generator | None = None) -> AttackResult:
    """Run ``attack`` over ``x`` ``(N, C, H, W)`` (float [0,1] or uint8) in batches of
    ``batch_size`` and concatenate.

    Per-sample targets — a ``(N,)`` tensor given here as ``target`` or configured on the attack
    (``PGD(targeted=True, target=tensor)``) — are sliced with the batch; any other target
    (a named rule, an int, a callable) is passed to every batch as is. One random stream (from
    ``attack.seed`` unless ``generator`` is given) is used across all batches. ``device``
    defaults to the model's.
    """
    batch_size = check_int("batch_size", batch_size, 1)
    n = x.shape[0]
    spec = target if target is not None else getattr(attack, "target", None) \
        if getattr(attack, "targeted", False) else None
    per_sample = isinstance(spec, torch.Tensor) and spec.dim() == 1
    if per_sample and spec.shape[0] != n:
        raise ValueError(f"per-sample target must have shape ({n},) like x, got {tuple(spec.shape)}")
    device = torch.device(device) if device is not None else model_device(model, x.device)
    generator = attack._generator(device, generator)
    results = []
    for i in range(0, n, batch_size):
        xb = as_images(x[i:i + batch_size].to(device))
        yb = None if y is None else y[i:i + batch_size].to(device)
        tb = spec[i:i + batch_size] if per_sample else target
        results.append(attack(model, xb, yb, target=tb, generator=generator))
    return AttackResult.cat(results)


def evaluation_set(model: nn.Module, x: torch.Tensor, y: torch.Tensor, n: int = 1000,
                   batch_size: int = 100) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The first ``n`` images of ``x`` that ``model`` classifies correctly, in order.

    Protocol §4.1: the first 1,000 correctly classified images of the shuffled 3k test subset
    (shuffling is the data module's job; pass the images in that order). ``x`` ``(N, C, H, W)``
    float [0,1] or uint8, ``y`` ``(N,)``. Stops evaluating once ``n`` are found. Returns
    ``(x_sel, y_sel, index)`` with ``x_sel`` in ``x``'s dtype and device and ``index`` ``(m,)``
    positions in ``x`` (the image ids for :meth:`AttackResult.to_frame`); warns if fewer than
    ``n`` exist (``m < n``).
    """
    n = check_int("n", n, 0)
    batch_size = check_int("batch_size", batch_size, 1)
    if y.shape != (x.shape[0],):
        raise ValueError(f"y must have shape ({x.shape[0]},), got {tuple(y.shape)}")
    device = model_device(model, x.device)
    picked: list[torch.Tensor] = []
    found = 0
    with eval_mode(model), torch.inference_mode():
        for i in range(0, x.shape[0], batch_size):
            if found >= n:
                break
            xb = as_images(x[i:i + batch_size].to(device))
            ok = model(xb).argmax(dim=1) == y[i:i + batch_size].to(device)
            idx = torch.nonzero(ok).flatten().cpu() + i
            idx = idx[: n - found]
            picked.append(idx)
            found += idx.numel()
    index = torch.cat(picked) if picked else torch.zeros(0, dtype=torch.long)
    if found < n:
        warnings.warn(f"evaluation_set: only {found} of the requested {n} images are correctly "
                      "classified", stacklevel=2)
    index = index.to(x.device)
    return x[index], y[index.to(y.device)], index


def robust_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: Attack,
                    batch_size: int = 100, *, last_step: bool = False,
                    generator: torch.Generator | None = None) -> float:
    """Accuracy of ``model`` under the untargeted ``attack`` on ``(x, y)``; clean errors count as
    non-robust.

    Default: robust **at every step** — the adversarial points are re-checked with a fresh
    forward pass; a sample misclassified at any step counts as broken (the chapters' measure,
    see :mod:`nascore.attacks.result`). ``last_step=True``: correct after the last step, the
    number other tools report; needs an attack with ``early_stop=False`` and the default
    misclassification rule.
    """
    if last_step:
        if attack.early_stop:
            raise ValueError("last_step=True needs the last-step outcome: configure the attack "
                             "with early_stop=False")
        if getattr(attack, "targeted", False) or attack.success_fn is not misclassified:
            raise ValueError("robust accuracy needs an untargeted attack with the "
                             "misclassification rule (success_fn=misclassified)")
        result = attack_batches(model, x, y, attack, batch_size, generator=generator)
        return float((~result.success_last_step).float().mean()) if len(result) else float("nan")
    result = attack_batches(model, x, y, attack, batch_size, generator=generator)
    device = result.x_adv.device
    correct = 0
    with eval_mode(model), torch.inference_mode():
        for i in range(0, x.shape[0], batch_size):
            pred = model(result.x_adv[i:i + batch_size]).argmax(dim=1)
            correct += int((pred == y[i:i + batch_size].to(device)).sum())
    return correct / max(1, x.shape[0])
