"""Universal perturbations: one ``δ`` ``(C, H, W)`` crafted on a set of images and added to any image.

Universal DeepSloth (:class:`~nascore.attacks.slowdown_universal.UniversalDeepSloth`, Hong et al.,
ICLR 2021) and the DeepFool universal adversarial perturbation
(:class:`~nascore.attacks.deepfool_uap.DeepFoolUAP`, Moosavi-Dezfooli et al., CVPR 2017) share
this shape, :class:`UniversalAttack`:

* ``craft(model, x)`` → :class:`UniversalPerturbation` — crafted on the images ``x``
  ``(N, C, H, W)`` (e.g. the first training images); the documented way to get ``δ`` itself and
  apply it to other images (``pert.apply(x_test)``);
* ``attack(model, x, y)`` → :class:`~nascore.attacks.result.AttackResult` — the calling
  convention of every attack (:mod:`nascore.attacks.base`): crafts ``δ`` on ``x`` and returns
  ``clip(x + δ, 0, 1)``. Its result depends on the whole batch (``δ`` is shared), not on each
  sample alone.

Budgets are in [0,1] pixel units, measured on ``δ`` in the attack's norm.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..models.base import eval_mode
from ._util import as_images
from .base import Attack
from .result import AttackResult

__all__ = ["UniversalPerturbation", "UniversalAttack"]


@dataclass
class UniversalPerturbation:
    """One perturbation ``delta`` ``(C, H, W)`` (pixel units) and how it was made.

    ``apply(x)`` adds it to every image of ``x`` ``(N, C, H, W)`` (uint8 or [0,1]) and clips to [0,1].
    """

    delta: torch.Tensor
    norm: str
    eps: float
    config: dict = field(default_factory=dict)

    def norm_value(self) -> float:
        d = self.delta.flatten().float()
        return float({"linf": d.abs().max(), "l2": d.norm(), "l1": d.abs().sum()}[self.norm])

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        x = as_images(x)
        if x.dim() != 4 or tuple(x.shape[1:]) != tuple(self.delta.shape):
            raise ValueError(f"x must be (N, {', '.join(map(str, self.delta.shape))}), got {tuple(x.shape)}")
        return (x + self.delta.to(device=x.device, dtype=x.dtype)).clamp(0, 1)


class UniversalAttack(Attack):
    """Base of the attacks that craft one perturbation for a set of images (module docstring).

    Subclasses implement :meth:`_craft` (validated images, the call's generator, eval mode) and
    may refine :meth:`_check_images` and :meth:`_success`.
    """

    def craft(self, model: nn.Module, x: torch.Tensor, *, generator: torch.Generator | None = None
              ) -> UniversalPerturbation:
        """Craft one δ ``(C, H, W)`` on the images ``x`` ``(N, C, H, W)`` (float [0,1] or uint8)."""
        x = self._images(x)
        self._check_images(x)
        generator = self._generator(x.device, generator)
        with eval_mode(model):
            return self._craft(model, x, generator)

    def _attack(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, target: Any,
                generator: torch.Generator | None) -> AttackResult:
        """Craft on ``x``, apply to ``x``; ``iterations`` are 0 (no per-sample steps)."""
        self._no_target(target)
        self._check_images(x)
        x_adv = self._craft(model, x, generator).apply(x)
        n = x_adv.shape[0]
        return AttackResult(x_adv=x_adv, success=self._success(model, x, x_adv),
                            iterations=torch.zeros(n, dtype=torch.long, device=x_adv.device))

    def _check_images(self, x: torch.Tensor) -> None:
        if x.shape[0] < 1:
            raise ValueError(f"x must be (N, C, H, W) with N >= 1, got {tuple(x.shape)}")

    def _craft(self, model: nn.Module, x: torch.Tensor, generator: torch.Generator | None
               ) -> UniversalPerturbation:
        raise NotImplementedError

    def _success(self, model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
        """Per-sample success ``(N,)`` bool; default: no success rule (all ``False``)."""
        return torch.zeros(x.shape[0], dtype=torch.bool, device=x_adv.device)
