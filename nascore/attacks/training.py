"""The contract of training-time attacks: a *training variant* that the model cache applies.

Poisoning (:class:`~nascore.attacks.poisoning.RandomLabelPoison`), backdoor fine-tuning
(:class:`~nascore.attacks.backdoor.BackdoorFinetune`), the model-extraction thief
(:class:`~nascore.attacks.extraction.ThiefVariant`) and the membership reference models
(:class:`~nascore.attacks.membership.reference.HoldOutVariant`) do not attack a trained model:
they change how one is trained. Each is a frozen dataclass (pickled to training workers) with

* ``config()`` — a JSON-able dict; part of the trained model's cache key (include the key of any
  model it depends on, e.g. the victim or the clean base model);
* ``inputs(train_x, train_y, seed)`` — the :class:`TrainingInputs` the trainer sees
  (``train_x`` uint8 ``(N, C, H, W)``, ``train_y`` int64 ``(N,)``);
* ``initial_state(name, profile, seed)`` — a ``state_dict`` to start from (fine-tuning) or
  ``None`` for a fresh initialisation.

The model cache (:func:`nascore.zoo.get`, ``variant=...``) calls them; a variant never reaches
into the cache itself: what it needs from other trained models (the victim a thief queries, the
clean weights a backdoor fine-tunes) is passed to it by the chapter (:mod:`nascore.findings`) that
composes it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch

from ..train import BatchTransform

__all__ = ["TrainingInputs", "Variant"]


@dataclass(frozen=True)
class TrainingInputs:
    """The training data as a variant presents it to the trainer (see ``nascore.train.train``).

    train_x : uint8 ``(N, C, H, W)``; train_y : int64 ``(N,)`` labels, or float ``(N, K)``
    probability targets; frozen : bool ``(N,)`` — samples used as stored (no augmentation), or
    ``None``; batch_transform : ``f(x, y, generator) -> (x, y)`` applied to every training batch
    (e.g. a backdoor's stamping), or ``None``.
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    frozen: torch.Tensor | None = None
    batch_transform: BatchTransform | None = None


@runtime_checkable
class Variant(Protocol):
    """A change to how a registry model is trained (see the module docstring)."""

    def config(self) -> dict: ...

    def inputs(self, train_x: torch.Tensor, train_y: torch.Tensor, seed: int) -> TrainingInputs: ...

    def initial_state(self, name: str, profile: Any, seed: int) -> dict | None: ...
