"""Accuracy-oriented PGD baselines against multi-exit networks (DeepSloth's comparison, §3).

The DeepSloth authors (``run_attacks.py``, ``attacks/PGDs.py``) compare their slowdown attack
with three L∞ PGD variants, all with ε = 0.03125, step 0.001, 20 steps, a uniform random start
in the ε-box, the true labels, and no early stopping:

* ``"final"`` — **PGD-20** on the final exit only (Madry et al., ICLR 2018): runs
  :class:`nascore.attacks.PGD` on the SDN's final-exit view (which is the original CNN);
* ``"avg"`` — **PGD-avg**: ascends the cross-entropy averaged over all exits;
* ``"max"`` — **PGD-max**: one PGD per exit (each on that exit's view, :class:`~nascore.attacks.PGD`),
  then keeps for every sample the candidate with the largest cross-entropy summed over all exits.

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

from ..models.base import eval_mode
from ._util import as_images
from .result import AttackResult
from .pgd import PGD
from .rules import never
from .slowdown import _check_count, _check_positive, _no_target

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


class ExitPGD:
    """PGD-20 / PGD-avg / PGD-max against a multi-exit network; see the module docstring.

    Parameters: ``mode`` in :data:`PGD_MODES`; ``eps`` (0.03125), ``alpha`` (0.001), ``steps``
    (20) in [0,1] pixel units; ``seed`` for the random starts (``None`` = global RNG).
    """

    name = "exit_pgd"

    def __init__(self, mode: str = "final", eps: float = 0.03125, alpha: float = 0.001, steps: int = 20,
                 seed: int | None = None):
        if mode not in PGD_MODES:
            raise ValueError(f"mode must be one of {PGD_MODES}, got {mode!r}")
        self.mode = mode
        self.eps = _check_positive("eps", eps)
        self.alpha = _check_positive("alpha", alpha)
        self.steps = _check_count("steps", steps)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"seed must be an int >= 0 or None, got {seed!r}")
        self.seed = seed

    def config(self) -> dict:
        return {"attack": f"pgd_{self.mode}", "mode": self.mode, "eps": self.eps, "alpha": self.alpha,
                "steps": self.steps, "seed": self.seed}

    def _pgd(self) -> PGD:
        # success_fn=never: every sample runs all steps and x_adv is the last iterate (the authors'
        # PGD), not the first misclassified point nascore's PGD returns under a success rule
        return PGD(norm="linf", eps=self.eps, alpha=self.alpha, steps=self.steps, random_start=True,
                   success_fn=never)

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, target=None,
                 generator: torch.Generator | None = None) -> AttackResult:
        """Attack ``x`` ``(N, C, H, W)`` with true labels ``y`` ``(N,)`` (required; untargeted)."""
        _no_target(self, target)
        x = as_images(x).detach()
        if y is None or y.shape != (x.shape[0],):
            raise ValueError(f"ExitPGD needs the true labels y of shape ({x.shape[0]},), got "
                             f"{None if y is None else tuple(y.shape)}")
        y = y.to(device=x.device, dtype=torch.long)
        if generator is None and self.seed is not None:
            generator = torch.Generator(device=x.device).manual_seed(self.seed)
        with eval_mode(model):
            if self.mode == "final":
                x_adv = self._pgd()(_exit(model, -1), x, y, generator=generator).x_adv
            elif self.mode == "avg":
                x_adv = self._avg(model, x, y, generator)
            else:
                x_adv = self._max(model, x, y, generator)
            with torch.no_grad():
                success = model(x_adv)[-1].argmax(dim=1) != y
        steps = torch.full((x.shape[0],), self.steps, dtype=torch.long, device=x.device)
        return AttackResult(x_adv=x_adv, success=success, iterations=steps)

    def _avg(self, model, x0, y, generator):
        noise = (torch.rand(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype) * 2 - 1) * self.eps
        xa = (x0 + noise).clamp(0, 1)
        for _ in range(self.steps):
            xa.requires_grad_(True)
            with torch.enable_grad():
                (g,) = torch.autograd.grad(exit_cross_entropy(model(xa), y).mean(dim=1).sum(), xa)
            with torch.no_grad():
                xa = (x0 + (xa + self.alpha * g.sign() - x0).clamp(-self.eps, self.eps)).clamp(0, 1)
        return xa.detach()

    def _max(self, model, x0, y, generator):
        n_exits = len(model(x0[:1]))
        best = x0.clone()
        best_loss = torch.full((x0.shape[0],), -float("inf"), device=x0.device)
        pgd = self._pgd()
        for k in range(n_exits):
            cand = pgd(_exit(model, k), x0, y, generator=generator).x_adv
            with torch.no_grad():
                loss = exit_cross_entropy(model(cand), y).sum(dim=1)
            better = loss > best_loss
            best[better] = cand[better]
            best_loss = torch.where(better, loss, best_loss)
        return best
