"""Accuracy-oriented PGD baselines against multi-exit networks (DeepSloth's comparison, §3).

The DeepSloth authors (``run_attacks.py``, ``attacks/PGDs.py``) compare their slowdown attack
with three L∞ PGD variants, all with ε = 0.03125, step 0.001, 20 steps, a uniform random start
in the ε-box, the true labels, and no early stopping:

* ``"final"`` — **PGD-20** on the final exit only (Madry et al., ICLR 2018): the loop on the
  SDN's final-exit view (which is the original CNN);
* ``"avg"`` — **PGD-avg**: ascends the cross-entropy averaged over all exits;
* ``"max"`` — **PGD-max**: one PGD per exit (each on that exit's view), then keeps for every
  sample the candidate with the largest cross-entropy summed over all exits.

All three run the shared projected loop of :class:`~nascore.attacks.iterative.IterativeAttack`
with no success rule (every sample runs all steps and ``x_adv`` is the last iterate, the authors'
PGD) and the random stream drawn in the order final / avg / exit 0, 1, … .

PGD-avg and PGD-max are from Hu et al., "Triple Wins: Boosting Accuracy, Robustness and
Efficiency Together by Enabling Input-Adaptive Inference", ICLR 2020. (The authors' PGD-max
start is ``x + (2x − 1)·ε`` — the image instead of a random draw; here every start is random.)

Calling convention: ``ExitPGD(mode=...)(model, x, y) -> AttackResult``; ``model`` returns the list
of exit logits (final last), as :class:`nascore.multiexit.SDN`; its ``exit_view(k)`` is used when
available. ``success`` = the final exit misclassifies ``x_adv``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._util import check_choice, check_int, check_real
from .iterative import IterativeAttack
from .result import AttackResult
from .rules import cross_entropy, never

__all__ = ["PGD_MODES", "ExitPGD", "exit_cross_entropy"]

PGD_MODES = ("final", "avg", "max")


class _Select(nn.Module):
    """Exit ``k`` of a multi-exit model without an ``exit_view`` method (runs the whole model)."""

    def __init__(self, model: nn.Module, k: int):
        super().__init__()
        self.model, self.k = model, k

    def forward(self, x):
        return self.model(x)[self.k]


def _exit(model: nn.Module, k: int) -> nn.Module:
    view = getattr(model, "exit_view", None)
    return view(k) if callable(view) else _Select(model, k)


def exit_cross_entropy(model_out, y: torch.Tensor) -> torch.Tensor:
    """Per-sample cross-entropy of every exit, ``(n, E)``."""
    return torch.stack([F.cross_entropy(z.float(), y, reduction="none") for z in model_out], dim=1)


def mean_exit_cross_entropy(model_out, y: torch.Tensor) -> torch.Tensor:
    """PGD-avg's objective: the cross-entropy averaged over the exits, ``(n,)``."""
    return exit_cross_entropy(model_out, y).mean(dim=1)


class ExitPGD(IterativeAttack):
    """PGD-20 / PGD-avg / PGD-max against a multi-exit network; see the module docstring.

    Parameters: ``mode`` in :data:`PGD_MODES`; ``eps`` (0.03125), ``alpha`` (0.001), ``steps``
    (20) in [0,1] pixel units (L∞); ``seed`` for the random starts (``None`` = global RNG).
    ``attack(model, x, y)`` needs the true labels ``y`` ``(N,)``; ``success`` = the final exit
    misclassifies ``x_adv``; ``iterations`` = ``steps``.
    """

    name = "exit_pgd"

    def __init__(self, mode: str = "final", eps: float = 0.03125, alpha: float = 0.001, steps: int = 20,
                 seed: int | None = None):
        self.mode = check_choice("mode", mode, PGD_MODES)
        super().__init__(norm="linf", eps=check_real("eps", eps, positive=True),
                         alpha=check_real("alpha", alpha, positive=True), steps=check_int("steps", steps, 1),
                         random_start=True, loss_fn=mean_exit_cross_entropy if mode == "avg" else cross_entropy,
                         success_fn=never, seed=seed)

    def config(self) -> dict:
        return {"attack": f"pgd_{self.mode}", "mode": self.mode, "eps": self.eps, "alpha": self.alpha,
                "steps": self.steps, "seed": self.seed}

    def _attack(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, target=None,
                generator: torch.Generator | None = None) -> AttackResult:
        """Attack ``x`` ``(N, C, H, W)`` with true labels ``y`` ``(N,)`` (required; untargeted)."""
        self._no_target(target)
        if y is None:
            raise ValueError(f"ExitPGD needs the true labels y of shape ({x.shape[0]},), got None")
        if self.mode == "final":
            x_adv = self._last_iterate(_exit(model, -1), x, y, generator)
        elif self.mode == "avg":
            x_adv = self._last_iterate(model, x, y, generator)
        else:
            x_adv = self._max(model, x, y, generator)
        with torch.no_grad():
            success = model(x_adv)[-1].argmax(dim=1) != y
        steps = torch.full((x.shape[0],), self.steps, dtype=torch.long, device=x.device)
        return AttackResult(x_adv=x_adv, success=success, iterations=steps)

    def _last_iterate(self, model, x, y, generator):
        return self._run(model, x, y, None, generator, None).x_adv

    def _max(self, model, x0, y, generator):
        n_exits = len(model(x0[:1]))
        best = x0.clone()
        best_loss = torch.full((x0.shape[0],), -float("inf"), device=x0.device)
        for k in range(n_exits):
            cand = self._last_iterate(_exit(model, k), x0, y, generator)
            with torch.no_grad():
                loss = exit_cross_entropy(model(cand), y).sum(dim=1)
            better = loss > best_loss
            best[better] = cand[better]
            best_loss = torch.where(better, loss, best_loss)
        return best
