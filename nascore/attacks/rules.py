"""Objectives and success rules of the attacks: batched, one value per sample.

An objective is ``loss_fn(model_out, label) -> (n,)``; a success rule is
``success_fn(model_out, y, target) -> (n,) bool``. ``model_out`` is whatever the model returns
(logits ``(n, classes)``, or a list of logits for a multi-exit network); ``y`` and ``target`` are
``(n,)`` int64 or ``None``.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

__all__ = ["LossFn", "SuccessFn", "cross_entropy", "misclassified", "hits_target",
           "confident_target", "never"]

LossFn = Callable[[Any, "torch.Tensor | None"], torch.Tensor]
"""``loss_fn(model_out, label) -> (n,)`` per-sample loss; ``label`` is ``(n,)`` or ``None``."""
SuccessFn = Callable[[Any, "torch.Tensor | None", "torch.Tensor | None"], torch.Tensor]
"""``success_fn(model_out, y, target) -> (n,) bool``; ``y``/``target`` may be ``None``."""


def cross_entropy(logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Per-sample CE, ``(n, classes), (n,) -> (n,)``: the default objective."""
    return F.cross_entropy(logits, label, reduction="none")


def misclassified(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """Untargeted success: ``argmax(logits) != y``."""
    return logits.argmax(dim=1) != y


def hits_target(logits: torch.Tensor, y: torch.Tensor | None, target: torch.Tensor) -> torch.Tensor:
    """Targeted success: ``argmax(logits) == target``."""
    return logits.argmax(dim=1) == target


def confident_target(threshold: float = 0.99, require_class: bool = True) -> SuccessFn:
    """Targeted success ``p(target) > threshold`` (and ``argmax == target`` if ``require_class``).

    With ``threshold=0.99, require_class=True`` this is the artifact's early-stop rule
    (trojanzoo ``PGD.early_stop_check`` with ``--stop_threshold 0.99 --require_class``).
    """
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"threshold must be in [0, 1), got {threshold!r}")

    def rule(logits: torch.Tensor, y: torch.Tensor | None, target: torch.Tensor) -> torch.Tensor:
        p = logits.softmax(dim=1).gather(1, target[:, None]).squeeze(1)
        ok = p > threshold
        if require_class:
            ok = ok & (logits.argmax(dim=1) == target)
        return ok

    rule.__name__ = f"confident_target(threshold={threshold}, require_class={require_class})"
    return rule


def never(model_out: Any, y: torch.Tensor | None, target: torch.Tensor | None) -> torch.Tensor:
    """No success rule (fixed-step attacks such as DeepSloth): always ``False``."""
    first = model_out if isinstance(model_out, torch.Tensor) else model_out[0]
    return torch.zeros(first.shape[0], dtype=torch.bool, device=first.device)
