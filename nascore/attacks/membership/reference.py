"""Reference models for offline LiRA (Carlini et al., IEEE S&P 2022): the same architecture and
recipe as the attacked model, trained on its training set **minus** the candidate members, so
every candidate is "out" for every reference model.

:class:`HoldOutVariant` is a training variant (:mod:`nascore.attacks.training`): the held-out images are the
first ``n_held_out`` of a seeded permutation of the training split — the same call
(:func:`~nascore.attacks.membership.sets.random_indices`) that draws the score-based members.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..training import TrainingInputs
from .sets import random_indices

__all__ = ["HoldOutVariant"]


@dataclass(frozen=True)
class HoldOutVariant:
    """Train without ``random_indices(len(train_x), n_held_out, held_out_seed)``."""

    n_held_out: int
    held_out_seed: int

    def __post_init__(self):
        if isinstance(self.n_held_out, bool) or not isinstance(self.n_held_out, int) or self.n_held_out < 1:
            raise ValueError(f"n_held_out must be an integer >= 1, got {self.n_held_out!r}")

    def config(self) -> dict:
        return {"purpose": "lira_reference", "n_held_out": self.n_held_out, "held_out_seed": self.held_out_seed}

    def inputs(self, train_x: torch.Tensor, train_y: torch.Tensor, seed: int):
        keep = torch.ones(len(train_x), dtype=torch.bool)
        keep[random_indices(len(train_x), self.n_held_out, self.held_out_seed)] = False
        return TrainingInputs(train_x=train_x[keep], train_y=train_y[keep])

    def initial_state(self, name: str, profile, seed: int) -> dict | None:
        return None
