"""Universal and class-universal DeepSloth: one perturbation for every input (or every input of a class).

Reference: Hong et al., ICLR 2021 (the authors' ``craft_universal_perturb_attack`` in
``attacks/ours_*.py``); protocol ``deepsloth.md`` §3 and fact 9. One δ of shape ``(C, H, W)`` is
crafted on a small fixed set of **training** images (the first 250, in order) to minimise the
batch mean of :func:`~nascore.attacks.slowdown.sloth_loss`, then added to every test image and
clipped to [0,1] (:meth:`~nascore.attacks.universal.UniversalPerturbation.apply`).

=====  ================  ======================================================================
norm   budget            schedule (defaults)
=====  ================  ======================================================================
linf   ε = 0.03125       1 epoch × 1 batch (all crafting images) × 20 signed steps of 0.005,
                         start U(−ε, ε); **no clipping to [0,1] while crafting** (the model sees
                         ``x + δ``), δ clamped to the ε-box after every step
l2     ε = 0.9¹⁰ ≈ 0.35  11 epochs × 5 batches × 50 SGD steps, lr 0.1 and the ℓ2 bound (start
                         1.0) both ×(1 − γ) after every epoch (γ = 0.1 for the default ε), the
                         gradient clipped to norm ≤ 1, δ projected on the bound, the model sees
                         ``clip(x + δ)``; start: a Gaussian direction of norm 1
l1     ε = 8             1 epoch × 10 batches × 100 SLIDE steps of 0.5 on the top 10 % of
                         |gradient| coordinates, δ rescaled to ‖δ‖₁ ≤ ε; start: Laplace noise
                         scaled to ε; the model sees ``clip(x + δ)``
=====  ================  ======================================================================

The authors draw the ℓ2/ℓ1 batches from a training loader of batch 250 (1,250 / 2,500 images);
here the crafting images passed in are split into ``batches`` equal parts (the protocol's "first
250 training images" in 5 or 10 batches). **Class-universal**: one δ
per class (:class:`ClassUniversalDeepSloth`), crafted on that class's first training images and evaluated
on its test images.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ._util import check_int
from .base import Attack
from .result import AttackResult
from .slowdown import SLOWDOWN_NORMS, laplace_like, sloth_budget, sloth_loss, sparse_sign_step
from .universal import UniversalAttack, UniversalPerturbation

__all__ = ["UniversalDeepSloth", "ClassUniversalDeepSloth"]

_DEFAULTS = {"linf": dict(eps=0.03125, epochs=1, batches=1, steps=20, alpha=0.005),
             "l2": dict(eps=0.9 ** 10, epochs=11, batches=5, steps=50, alpha=0.1),
             "l1": dict(eps=8.0, epochs=1, batches=10, steps=100, alpha=0.5)}


class UniversalDeepSloth(UniversalAttack):
    """Universal DeepSloth (Hong et al., ICLR 2021): see the module docstring for the schedules.

    A :class:`~nascore.attacks.universal.UniversalAttack`: ``craft(model, x_craft)`` →
    :class:`~nascore.attacks.universal.UniversalPerturbation`; ``attack(model, x)`` crafts on
    ``x`` and applies to ``x`` (``y`` ignored; ``success`` all ``False``: no success rule).
    Parameters (``None`` = the protocol's value for the norm): ``eps``, ``epochs``, ``batches``
    (the crafting images are split into this many batches), ``steps`` (per batch and epoch),
    ``alpha`` (ℓ∞/ℓ1 step, ℓ2 learning rate), ``init_norm`` (ℓ2 start bound, 1.0), ``sparsity``
    (ℓ1, 0.9 = top 10 %), ``seed``.
    """

    name = "universal_deepsloth"
    norms = SLOWDOWN_NORMS

    def __init__(self, norm: str = "linf", eps: float | None = None, *, epochs: int | None = None,
                 batches: int | None = None, steps: int | None = None, alpha: float | None = None,
                 init_norm: float = 1.0, sparsity: float = 0.9, seed: int | None = None):
        b = sloth_budget(norm, _DEFAULTS, eps=eps, alpha=alpha, init_norm=init_norm, sparsity=sparsity,
                         epochs=epochs, batches=batches, steps=steps)
        super().__init__(norm=norm, eps=b["eps"], seed=seed)
        self.epochs, self.batches, self.steps = b["epochs"], b["batches"], b["steps"]
        self.alpha, self.init_norm, self.sparsity = b["alpha"], b["init_norm"], b["sparsity"]

    @property
    def gamma(self) -> float:
        """ℓ2: per-epoch decay of the bound and the learning rate, ``init_norm·(1−γ)^(epochs−1) = eps``."""
        return 0.0 if self.epochs == 1 else 1.0 - (self.eps / self.init_norm) ** (1.0 / (self.epochs - 1))

    def config(self) -> dict:
        keys = ["norm", "eps", "epochs", "batches", "steps", "alpha", "seed"]
        keys += {"l2": ["init_norm"], "l1": ["sparsity"], "linf": []}[self.norm]
        return {"attack": self.name, **{k: getattr(self, k) for k in keys}}

    def _check_images(self, x: torch.Tensor) -> None:
        if x.shape[0] < self.batches:
            raise ValueError(f"x must be (N, C, H, W) with N >= batches={self.batches}, got {tuple(x.shape)}")

    def _craft(self, model: nn.Module, x: torch.Tensor, generator: torch.Generator | None
               ) -> UniversalPerturbation:
        parts = list(x.chunk(self.batches))
        delta = {"linf": self._linf, "l2": self._l2, "l1": self._l1}[self.norm](model, parts, generator)
        return UniversalPerturbation(delta.detach(), self.norm, self.eps, self.config())

    @staticmethod
    def _grad(model, x_in_fn, delta):
        delta = delta.detach().requires_grad_(True)
        with torch.enable_grad():
            (g,) = torch.autograd.grad(sloth_loss(model(x_in_fn(delta))).mean(), delta)
        return g

    def _linf(self, model, parts, generator):
        x = parts[0]
        delta = (torch.rand(x.shape[1:], generator=generator, device=x.device, dtype=x.dtype) * 2 - 1) * self.eps
        for _ in range(self.epochs):
            for xb in parts:
                for _ in range(self.steps):
                    g = self._grad(model, lambda d: xb + d, delta)   # no clipping while crafting
                    delta = (delta - self.alpha * g.sign()).clamp(-self.eps, self.eps)
        return delta

    def _l2(self, model, parts, generator):
        x = parts[0]
        r = torch.randn(x.shape[1:], generator=generator, device=x.device, dtype=x.dtype)
        delta = r * (self.init_norm / r.norm().clamp_min(1e-12))
        bound, lr = self.init_norm, self.alpha
        for _ in range(self.epochs):
            for xb in parts:
                for _ in range(self.steps):
                    g = self._grad(model, lambda d: (xb + d).clamp(0, 1), delta)
                    g = g * (1.0 / g.norm().clamp_min(1e-12)).clamp(max=1.0)
                    delta = delta - lr * g
                    delta = delta * (bound / delta.norm().clamp_min(1e-12)).clamp(max=1.0)
            bound *= 1.0 - self.gamma
            lr *= 1.0 - self.gamma
        return delta

    def _l1(self, model, parts, generator):
        x = parts[0]
        r = laplace_like(x[0], generator)
        delta = r * (self.eps / r.abs().sum().clamp_min(1e-12))
        for _ in range(self.epochs):
            for xb in parts:
                for _ in range(self.steps):
                    g = self._grad(model, lambda d: (xb + d).clamp(0, 1), delta)
                    delta = delta + self.alpha * sparse_sign_step(-g[None], self.sparsity)[0]
                    delta = delta * (self.eps / delta.abs().sum().clamp_min(1e-12)).clamp(max=1.0)
        return delta


class ClassUniversalDeepSloth(Attack):
    """Class-universal DeepSloth ("ours-class", protocol §3): one universal perturbation per class.

    ``craft(model, x, y, classes=None)`` → ``{c: UniversalPerturbation}``: for every class ``c`` of
    ``classes`` (default: all in ``y``), :class:`UniversalDeepSloth` crafted on the first
    ``per_class`` images of ``x`` with label ``c`` (each class's crafting starts from ``seed``,
    unless a ``generator`` is passed, which the classes then draw from in turn).
    ``attack(model, x, y)`` crafts on ``(x, y)`` and returns every image with its class's δ
    (``y`` required; ``success`` all ``False``). The other parameters are those of
    :class:`UniversalDeepSloth` (``norm``, ``eps``, ``epochs``, ``batches``, ``steps``,
    ``alpha``, ``init_norm``, ``sparsity``, ``seed``).
    """

    name = "class_universal_deepsloth"
    norms = SLOWDOWN_NORMS

    def __init__(self, norm: str = "linf", eps: float | None = None, *, per_class: int = 250,
                 seed: int | None = None, **universal: Any):
        self.universal = UniversalDeepSloth(norm, eps, seed=seed, **universal)
        super().__init__(norm=norm, eps=self.universal.eps, seed=seed)
        self.per_class = check_int("per_class", per_class, 1)

    def craft(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, classes=None, *,
              generator: torch.Generator | None = None) -> dict[int, UniversalPerturbation]:
        """``{c: UniversalPerturbation}`` crafted on ``x`` ``(N, C, H, W)`` with labels ``y`` ``(N,)``."""
        if y is None or y.shape != (x.shape[0],):
            raise ValueError(f"y must have shape ({x.shape[0]},), got {None if y is None else tuple(y.shape)}")
        classes = sorted(int(c) for c in torch.unique(y)) if classes is None else [int(c) for c in classes]
        out = {}
        for c in classes:
            idx = torch.nonzero(y == c).flatten()[:self.per_class]
            if idx.numel() == 0:
                raise ValueError(f"no images of class {c} to craft on; classes present: {sorted(set(y.tolist()))}")
            out[c] = self.universal.craft(model, x[idx.to(x.device)], generator=generator)
        return out

    def _generator(self, device, generator):
        return generator   # each class's crafting seeds itself (UniversalDeepSloth._generator)

    def _attack(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, target: Any,
                generator: torch.Generator | None) -> AttackResult:
        self._no_target(target)
        x_adv = x.clone()
        for c, pert in self.craft(model, x, y, generator=generator).items():
            x_adv[y == c] = pert.apply(x[y == c])
        n = x.shape[0]
        return AttackResult(x_adv=x_adv, success=torch.zeros(n, dtype=torch.bool, device=x.device),
                            iterations=torch.zeros(n, dtype=torch.long, device=x.device))
