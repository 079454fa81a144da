"""Universal and class-universal DeepSloth: one perturbation for every input (or every input of a class).

Reference: Hong et al., ICLR 2021 (the authors' ``craft_universal_perturb_attack`` in
``attacks/ours_*.py``); protocol ``deepsloth.md`` §3 and fact 9. One δ of shape ``(C, H, W)`` is
crafted on a small fixed set of **training** images (the first 250, in order) to minimise the
batch mean of :func:`~nascore.attacks.slowdown.sloth_loss`, then added to every test image and
clipped to [0,1] (:meth:`UniversalPerturbation.apply`).

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
250 training images" in 5 or 10 batches). **Class-universal** (:func:`class_universal`): one δ
per class, crafted on that class's first training images and evaluated on its test images.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..models.base import eval_mode
from ._util import as_images
from .result import AttackResult
from .slowdown import (SLOWDOWN_NORMS, _check_count, _check_positive, _no_target, laplace_like, sloth_loss,
                       sparse_sign_step)

__all__ = ["UniversalPerturbation", "UniversalDeepSloth", "class_universal"]

_DEFAULTS = {"linf": dict(eps=0.03125, epochs=1, batches=1, steps=20, alpha=0.005),
             "l2": dict(eps=0.9 ** 10, epochs=11, batches=5, steps=50, alpha=0.1),
             "l1": dict(eps=8.0, epochs=1, batches=10, steps=100, alpha=0.5)}


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

    def attack(self, x: torch.Tensor) -> AttackResult:
        """The perturbed images as an :class:`AttackResult` (no success rule: all ``False``)."""
        x_adv = self.apply(x)
        n = x_adv.shape[0]
        return AttackResult(x_adv=x_adv, success=torch.zeros(n, dtype=torch.bool, device=x_adv.device),
                            iterations=torch.zeros(n, dtype=torch.long, device=x_adv.device))


class UniversalDeepSloth:
    """Universal DeepSloth (Hong et al., ICLR 2021): see the module docstring for the schedules.

    ``craft(model, x_craft)`` → :class:`UniversalPerturbation`; ``attack(model, x)`` crafts on
    ``x`` and applies to ``x`` (the package's calling convention; ``y`` ignored). Parameters
    (``None`` = the protocol's value for the norm): ``eps``, ``epochs``, ``batches`` (the crafting
    images are split into this many batches), ``steps`` (per batch and epoch), ``alpha`` (ℓ∞/ℓ1
    step, ℓ2 learning rate), ``init_norm`` (ℓ2 start bound, 1.0), ``sparsity`` (ℓ1, 0.9 = top 10 %),
    ``seed``.
    """

    name = "universal_deepsloth"

    def __init__(self, norm: str = "linf", eps: float | None = None, *, epochs: int | None = None,
                 batches: int | None = None, steps: int | None = None, alpha: float | None = None,
                 init_norm: float = 1.0, sparsity: float = 0.9, seed: int | None = None):
        if norm not in SLOWDOWN_NORMS:
            raise ValueError(f"norm must be one of {SLOWDOWN_NORMS}, got {norm!r}")
        d = _DEFAULTS[norm]
        self.norm = norm
        self.eps = _check_positive("eps", d["eps"] if eps is None else eps)
        self.epochs = _check_count("epochs", d["epochs"] if epochs is None else epochs)
        self.batches = _check_count("batches", d["batches"] if batches is None else batches)
        self.steps = _check_count("steps", d["steps"] if steps is None else steps)
        self.alpha = _check_positive("alpha", d["alpha"] if alpha is None else alpha)
        self.init_norm = _check_positive("init_norm", init_norm)
        if not 0.0 < sparsity < 1.0:
            raise ValueError(f"sparsity must be in (0, 1), got {sparsity!r}")
        self.sparsity = float(sparsity)
        if norm == "l2" and self.eps > self.init_norm:
            raise ValueError(f"l2: eps ({self.eps}) must not exceed init_norm ({self.init_norm})")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"seed must be an int >= 0 or None, got {seed!r}")
        self.seed = seed

    @property
    def gamma(self) -> float:
        """ℓ2: per-epoch decay of the bound and the learning rate, ``init_norm·(1−γ)^(epochs−1) = eps``."""
        return 0.0 if self.epochs == 1 else 1.0 - (self.eps / self.init_norm) ** (1.0 / (self.epochs - 1))

    def config(self) -> dict:
        keys = ["norm", "eps", "epochs", "batches", "steps", "alpha", "seed"]
        keys += {"l2": ["init_norm"], "l1": ["sparsity"], "linf": []}[self.norm]
        return {"attack": self.name, **{k: getattr(self, k) for k in keys}}

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, *,
                 target: Any = None, generator: torch.Generator | None = None) -> AttackResult:
        _no_target(self, target)
        return self.craft(model, x, generator=generator).attack(x)

    def craft(self, model: nn.Module, x: torch.Tensor, *, generator: torch.Generator | None = None
              ) -> UniversalPerturbation:
        """Craft one δ ``(C, H, W)`` on the images ``x`` ``(N, C, H, W)`` (N ≥ ``batches``)."""
        x = as_images(x).detach()
        if x.dim() != 4 or x.shape[0] < self.batches:
            raise ValueError(f"x must be (N, C, H, W) with N >= batches={self.batches}, got {tuple(x.shape)}")
        if generator is None and self.seed is not None:
            generator = torch.Generator(device=x.device).manual_seed(self.seed)
        parts = list(x.chunk(self.batches))
        with eval_mode(model):
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


def class_universal(attack: UniversalDeepSloth, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                    per_class: int = 250, classes=None, *, generator: torch.Generator | None = None
                    ) -> dict[int, UniversalPerturbation]:
    """One universal perturbation per class ("ours-class", protocol §3): for every class ``c`` of
    ``classes`` (default: all in ``y``), ``attack.craft`` on the first ``per_class`` images of ``x``
    with label ``c``. Returns ``{c: UniversalPerturbation}``."""
    if y.shape != (x.shape[0],):
        raise ValueError(f"y must have shape ({x.shape[0]},), got {tuple(y.shape)}")
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    classes = sorted(int(c) for c in torch.unique(y)) if classes is None else [int(c) for c in classes]
    out = {}
    for c in classes:
        idx = torch.nonzero(y == c).flatten()[:per_class]
        if idx.numel() == 0:
            raise ValueError(f"no images of class {c} to craft on; classes present: {sorted(set(y.tolist()))}")
        out[c] = attack.craft(model, x[idx.to(x.device)], generator=generator)
    return out
