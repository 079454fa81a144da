"""The contract every evasion-time attack of nascore follows: configure once, call on ``(model, x, y)``.

The calling convention, units and shapes are described in :mod:`nascore.attacks`. :class:`Attack`
is that contract and nothing more:

* the constructor takes the configuration only (no model): the threat model ``norm``, the budget
  ``eps`` in that norm (pixel units on the [0,1] scale; ``None`` for attacks that minimise the
  distance instead of bounding it, :class:`~nascore.attacks.membership.HopSkipJump`) and a
  ``seed``; everything is validated by :mod:`nascore.attacks._util` before any compute;
* ``attack(model, x, y=None, *, target=None, generator=None) -> AttackResult``
  (:class:`~nascore.attacks.result.AttackResult`): ``x`` ``(N, C, H, W)`` float in [0,1] or
  uint8, ``y`` ``(N,)`` int64 or ``None``. The call checks the shapes, converts uint8 to [0,1],
  makes the call's random stream (:meth:`Attack._generator`: the given ``generator``, else one
  seeded with ``seed``, else the global RNG), puts the model in eval mode (every module's mode
  restored afterwards) and hands over to the subclass's :meth:`Attack._attack`;
* ``config()`` — a plain dict of the configuration for result rows and provenance.

Subclasses: :class:`~nascore.attacks.iterative.IterativeAttack` (the projected iterative loop of
PGD, NES, DeepSloth and the multi-exit PGD baselines), :class:`~nascore.attacks.universal.UniversalAttack`
(one perturbation for a whole set of images: universal DeepSloth, DeepFool-UAP),
:class:`~nascore.attacks.slowdown_universal.ClassUniversalDeepSloth` and
:class:`~nascore.attacks.membership.HopSkipJump`. Training-time attacks (poisoning, backdoors,
extraction) follow the other contract, :mod:`nascore.attacks.training`.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from ..models.base import eval_mode
from ._util import as_images, check_choice, check_seed, seeded_generator
from .geometry import NORMS
from .result import AttackResult

__all__ = ["Attack"]


class Attack:
    """Base of every evasion-time attack (see the module docstring).

    Parameters
    ----------
    norm : str
        Threat model, one of the class's :attr:`norms`; ``eps`` is measured in it.
    eps : float or None
        Budget per sample in [0,1] pixel units (``None``: the attack has no budget).
    seed : int or None
        Seed of the call's ``torch.Generator``, so the same seed on the same device gives the
        same numbers; ``None`` uses the global RNG.
    """

    name: str = "attack"
    #: the threat models this attack supports
    norms: Sequence[str] = NORMS
    #: query-based attacks count model queries per sample (``AttackResult.queries``)
    counts_queries: bool = False
    #: device of the call's random stream; ``None``: the images' device
    rng_device: str | None = None

    def __init__(self, *, norm: str, eps: float | None, seed: int | None):
        self.norm = check_choice("norm", norm, self.norms)
        self.eps = eps
        self.seed = check_seed(seed)

    # ---------------------------------------------------------------- description
    def config(self) -> dict[str, Any]:
        """Plain-data description of the configuration (for result rows / provenance)."""
        out: dict[str, Any] = {"attack": self.name}
        for k, v in vars(self).items():
            if k.startswith("_"):
                continue
            if callable(v):
                v = getattr(v, "__name__", type(v).__name__)
            elif isinstance(v, torch.Tensor):
                v = v.tolist()
            elif isinstance(v, Attack):
                v = v.config()
            out[k] = v
        return out

    def __repr__(self) -> str:
        cfg = self.config()
        cfg.pop("attack")
        return f"{type(self).__name__}(" + ", ".join(f"{k}={v!r}" for k, v in cfg.items()) + ")"

    # ---------------------------------------------------------------- entry point
    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, *,
                 target: Any = None, generator: torch.Generator | None = None, **options: Any) -> AttackResult:
        """Attack the batch ``x`` ``(N, C, H, W)`` with labels ``y`` ``(N,)`` (or ``None``).

        ``target`` overrides the configured target for this call (targeted attacks only);
        ``generator`` overrides the seed (used by :func:`~nascore.attacks.evaluation.attack_batches`
        to draw one random stream across batches); ``options`` are attack-specific keywords
        (e.g. HopSkipJump's ``sample_ids``).
        """
        x = self._images(x)
        if y is not None:
            if y.shape != (x.shape[0],):
                raise ValueError(f"y must have shape ({x.shape[0]},), got {tuple(y.shape)}")
            y = y.to(device=x.device, dtype=torch.long)
        generator = self._generator(x.device, generator)
        with eval_mode(model):
            return self._attack(model, x, y, target, generator, **options)

    def _attack(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, target: Any,
                generator: torch.Generator | None) -> AttackResult:
        """The attack proper, on validated float images ``x`` (detached), in eval mode."""
        raise NotImplementedError

    # ---------------------------------------------------------------- shared plumbing
    @staticmethod
    def _images(x: torch.Tensor) -> torch.Tensor:
        """``x`` as detached float images ``(N, C, H, W)`` in [0,1] (uint8 converted)."""
        x = as_images(x)
        if x.dim() != 4:
            raise ValueError(f"x must be (N, C, H, W), got shape {tuple(x.shape)}")
        return x.detach()

    def _generator(self, device: torch.device, generator: torch.Generator | None) -> torch.Generator | None:
        """The call's random stream: ``generator``, else one seeded with :attr:`seed` (on
        :attr:`rng_device` or ``device``), else ``None`` (the global RNG)."""
        return seeded_generator(self.seed, self.rng_device or device, generator)

    def _no_target(self, target: Any) -> None:
        if target is not None:
            raise ValueError(f"{type(self).__name__} is untargeted and takes no target, got {target!r}")
