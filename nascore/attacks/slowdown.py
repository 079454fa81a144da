"""DeepSloth: slowdown attacks on multi-exit networks (per-sample ℓ∞, ℓ2, ℓ1).

Reference: S. Hong, Y. Kaya, I.-V. Modoranu, T. Dumitraş, "A Panda? No, It's a Sloth: Slowdown
Attacks on Adaptive Multi-Exit Neural Network Inference", ICLR 2021 (arXiv 2010.02432); the
authors' code ``Sanghyun-Hong/DeepSloth`` (``attacks/ours_*.py``); protocol ``deepsloth.md`` §3.

**Objective** (:func:`sloth_loss`). The model returns a list of exit logits in depth order, the
final exit last (a :class:`nascore.multiexit.SDN`). The attack *minimises* the sum over the
internal classifiers — never the final exit — of the cross-entropy between the uniform
distribution and the exit's softmax, ``Σ_k −(1/C) Σ_c log p_k,c``, i.e. pushes every IC toward
maximum entropy so that no IC reaches the exit threshold. No labels; the model is in eval mode.
(The authors add 1e-9 inside the log; :func:`torch.log_softmax` needs no guard.)

Calling convention (:mod:`nascore.attacks`): ``DeepSloth(...)`` is a model-free configuration;
``attack(model, x, y=None)`` returns an :class:`~nascore.attacks.result.AttackResult` for images
``x`` ``(N, C, H, W)`` in [0,1] (or uint8); ``y`` is ignored. Budgets are in [0,1] pixel units,
per sample. Everything is batched; each sample's gradient comes from its own loss term, so the
result does not depend on the batch size.

Norms and defaults (CIFAR-10, protocol §3):

=====  ==================  =====================================================================
norm   budget              optimiser
=====  ==================  =====================================================================
linf   ε = 0.03125         30 signed-gradient descent steps of 0.002 from ``x + U(−0.002, 0.002)``,
                           projection to the ε-box and [0,1] after every step
l2     ε = 0.9¹⁰ ≈ 0.349   decaying-norm (DDN-style) schedule: 550 SGD steps on δ in 11 stages;
                           the ℓ2 bound starts at ``init_norm = 1`` and is multiplied by
                           ``1 − γ`` after every stage, γ chosen so that the last stage's bound
                           is ε (γ = 0.1 for the default ε); learning rate ``alpha = 1`` with
                           cosine annealing to ``0.01·alpha``; every sample's gradient clipped to
                           ℓ2 norm ≤ 1; δ projected on the current ball; the model sees
                           ``clip(x + δ)``; start: a Gaussian direction of norm ``init_norm``
l1     ε = 8               250 SLIDE-style steps of ``alpha = 0.5``: each step moves only the
                           coordinates whose |gradient| is at or above the ``sparsity`` = 99th
                           percentile, by their sign, the step split evenly across them; then
                           clip to [0,1] and rescale δ to ‖δ‖₁ ≤ ε; start: Laplace noise scaled
                           to ‖δ‖₁ = ε
=====  ==================  =====================================================================

Deviation, stated: the authors' ℓ2 attack differentiates the *batch mean* of the loss (250
images), so each sample's gradient is 1/250 of its own before the clip at norm 1; here each
sample's own gradient is clipped, which makes the attack independent of the batch size.

The result's ``success`` says, when a threshold ``q`` is configured, whether no IC reaches
confidence ``q`` on ``x_adv`` (the sample would leave at the final exit); without ``q`` it is all
``False`` (DeepSloth has no success rule of its own). ``iterations`` is ``steps`` for every
sample (no early stopping).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._util import check_choice, check_fraction, check_int, check_real
from .geometry import _per_sample, random_start
from .iterative import IterativeAttack
from .result import AttackResult
from .rules import never

__all__ = ["SLOWDOWN_NORMS", "sloth_loss", "ic_confidence", "DeepSloth", "laplace_like", "sparse_sign_step",
           "sloth_budget"]

SLOWDOWN_NORMS = ("linf", "l2", "l1")
_DEFAULTS = {"linf": dict(eps=0.03125, steps=30, alpha=0.002),
             "l2": dict(eps=0.9 ** 10, steps=550, alpha=1.0),
             "l1": dict(eps=8.0, steps=250, alpha=0.5)}


def _exits(model_out: Any) -> Sequence[torch.Tensor]:
    if isinstance(model_out, torch.Tensor) or len(model_out) < 2:
        raise TypeError("DeepSloth needs a multi-exit model returning a list of exit logits (ICs, then the "
                        "final exit); got a single output")
    return model_out


def sloth_loss(model_out: Sequence[torch.Tensor], label: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample DeepSloth objective ``(n,)``: Σ over the ICs (all exits but the last) of
    CE(uniform, softmax) = ``−mean_c log_softmax(z)_c``. Minimum ``K·log C`` at uniform outputs.
    ``label`` is ignored (the attack uses no labels)."""
    ics = _exits(model_out)[:-1]
    return sum(-F.log_softmax(z.float(), dim=1).mean(dim=1) for z in ics)


def ic_confidence(model_out: Sequence[torch.Tensor]) -> torch.Tensor:
    """Max softmax probability of every IC, ``(n, K)`` (the final exit excluded)."""
    ics = _exits(model_out)[:-1]
    return torch.stack([z.float().softmax(dim=1).amax(dim=1) for z in ics], dim=1)


def laplace_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard Laplace noise shaped like ``x`` (inverse CDF of a seeded uniform)."""
    u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) - 0.5
    return -torch.sign(u) * torch.log1p(-2 * u.abs().clamp(max=0.5 - 1e-7))


def sparse_sign_step(direction: torch.Tensor, sparsity: float) -> torch.Tensor:
    """SLIDE step direction per sample (Tramèr & Boneh 2019): ``sign(d)`` on the coordinates with
    ``|d|`` at or above the ``sparsity`` quantile, divided by their number (ℓ1 norm 1)."""
    flat = direction.flatten(1)
    k = max(1, min(flat.shape[1], int(sparsity * flat.shape[1])))
    kth = flat.abs().kthvalue(k, dim=1, keepdim=True).values
    mask = (flat.abs() >= kth).to(flat.dtype)
    step = flat.sign() * mask / mask.sum(dim=1, keepdim=True).clamp_min(1)
    return step.view_as(direction)


def sloth_budget(norm: str, defaults: dict, *, eps: float | None, alpha: float | None, init_norm: float,
                 sparsity: float, **counts: int | None) -> dict:
    """The validated budget of a DeepSloth attack (per-sample or universal): ``norm`` in
    :data:`SLOWDOWN_NORMS`; ``eps``, ``alpha`` (``None``: ``defaults[norm]``) and ``init_norm``
    finite and ``> 0``; ``sparsity`` in (0, 1); ℓ2: ``eps <= init_norm``; every keyword in
    ``counts`` (``steps``, ``epochs``, ...) an int ``>= 1`` (``None``: the default). Returns the
    resolved values by name."""
    d = defaults[check_choice("norm", norm, SLOWDOWN_NORMS)]
    out = {"eps": check_real("eps", d["eps"] if eps is None else eps, positive=True)}
    for name, value in counts.items():
        out[name] = check_int(name, d[name] if value is None else value, 1)
    out["alpha"] = check_real("alpha", d["alpha"] if alpha is None else alpha, positive=True)
    out["init_norm"] = check_real("init_norm", init_norm, positive=True)
    out["sparsity"] = check_fraction("sparsity", sparsity)
    if norm == "l2" and out["eps"] > out["init_norm"]:
        raise ValueError(f"l2: eps ({out['eps']}) must not exceed init_norm ({out['init_norm']})")
    return out


class DeepSloth(IterativeAttack):
    """Per-sample DeepSloth (Hong et al., ICLR 2021); see the module docstring for the schedules.

    An :class:`~nascore.attacks.iterative.IterativeAttack`: ℓ∞ is the shared projected loop
    (signed-gradient *descent* on :func:`sloth_loss`, start ``x + U(−alpha, alpha)``, no success
    rule, every sample runs all ``steps``); ℓ2 and ℓ1 replace one run of the loop
    (:meth:`_optimize`) by their own schedules.

    Parameters
    ----------
    norm : {"linf", "l2", "l1"}
    eps : float or None — budget in [0,1] pixel units (ℓ2: the final stage's bound); ``None``:
        the protocol's (0.03125, 0.9¹⁰, 8).
    steps : int or None — optimisation steps (30, 550, 250); ℓ2 needs a multiple of ``stages``.
    alpha : float or None — ℓ∞ step and start-noise width (0.002), ℓ2 initial learning rate (1),
        ℓ1 step ℓ1-length (0.5).
    init_norm, stages : ℓ2 only — the first bound (1.0) and the number of norm stages (11).
    sparsity : ℓ1 only — the gradient quantile above which coordinates move (0.99 = top 1 %).
    q : float or None — exit threshold used only for ``AttackResult.success``.
    seed : int or None — seed of the attack's generator (random start); ``None`` = global RNG.
    """

    name = "deepsloth"
    norms = SLOWDOWN_NORMS

    def __init__(self, norm: str = "linf", eps: float | None = None, steps: int | None = None,
                 alpha: float | None = None, *, init_norm: float = 1.0, stages: int = 11,
                 sparsity: float = 0.99, q: float | None = None, seed: int | None = None):
        b = sloth_budget(norm, _DEFAULTS, eps=eps, alpha=alpha, init_norm=init_norm, sparsity=sparsity,
                         steps=steps)
        self.init_norm = b["init_norm"]
        self.stages = check_int("stages", stages, 1)
        self.sparsity = b["sparsity"]
        if norm == "l2" and b["steps"] % self.stages:
            raise ValueError(f"l2: steps ({b['steps']}) must be a multiple of stages ({self.stages})")
        self.q = None if q is None else check_real("q", q, positive=True)
        super().__init__(norm=norm, eps=b["eps"], alpha=b["alpha"], steps=b["steps"], random_start=True,
                         loss_fn=sloth_loss, success_fn=never, descend=True, seed=seed)

    @property
    def gamma(self) -> float:
        """ℓ2 bound decay per stage: ``init_norm·(1−γ)^(stages−1) = eps``."""
        if self.stages == 1:
            return 0.0
        return 1.0 - (self.eps / self.init_norm) ** (1.0 / (self.stages - 1))

    def config(self) -> dict:
        keys = ["norm", "eps", "steps", "alpha", "q", "seed"]
        keys += {"l2": ["init_norm", "stages"], "l1": ["sparsity"], "linf": []}[self.norm]
        return {"attack": self.name, **{k: getattr(self, k) for k in keys}}

    # ------------------------------------------------------------------ entry point
    def _attack(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, target: Any,
                generator: torch.Generator | None) -> AttackResult:
        """``y`` is ignored; ``success`` is measured on the final ``x_adv`` (see the module docstring)."""
        result = super()._attack(model, x, y, target, generator)
        with torch.no_grad():
            result.success = self._success(model(result.x_adv))
        return result

    def _success(self, out) -> torch.Tensor:
        conf = ic_confidence(out)
        if self.q is None:
            return torch.zeros(conf.shape[0], dtype=torch.bool, device=conf.device)
        return (conf < self.q).all(dim=1)

    def _random_start(self, x0: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return random_start(x0, self.alpha, "linf", generator)   # ℓ∞: x + U(−alpha, alpha), as the authors

    def _optimize(self, model, x0, y, target, label, start, generator):
        if self.norm == "linf":
            return super()._optimize(model, x0, y, target, label, start, generator)
        x_adv = (self._l2 if self.norm == "l2" else self._l1)(model, x0, generator)
        n, dev = x0.shape[0], x0.device
        return (x_adv, torch.zeros(n, dtype=torch.bool, device=dev),
                torch.full((n,), self.steps, dtype=torch.long, device=dev), torch.zeros(n, dtype=torch.long, device=dev),
                torch.full((n,), -math.inf, device=dev), None)

    @staticmethod
    def _grad(model: nn.Module, x_in: torch.Tensor, wrt: torch.Tensor | None = None) -> torch.Tensor:
        wrt = x_in if wrt is None else wrt
        with torch.enable_grad():
            (g,) = torch.autograd.grad(sloth_loss(model(x_in)).sum(), wrt)
        return g

    # ------------------------------------------------------------------ ℓ2 and ℓ1 schedules
    def _l2(self, model, x0, generator):
        nd = x0.dim()
        r = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        delta = r * _per_sample(self.init_norm / r.flatten(1).norm(dim=1).clamp_min(1e-12), nd)
        stage_len = self.steps // self.stages
        bound, eta_min = self.init_norm, 0.01 * self.alpha
        for t in range(self.steps):
            lr = eta_min + (self.alpha - eta_min) * (1 + math.cos(math.pi * t / self.steps)) / 2
            delta.requires_grad_(True)
            with torch.enable_grad():
                x_in = (x0 + delta).clamp(0, 1)
                (g,) = torch.autograd.grad(sloth_loss(model(x_in)).sum(), delta)
            with torch.no_grad():
                g = g * _per_sample((1.0 / g.flatten(1).norm(dim=1).clamp_min(1e-12)).clamp(max=1.0), nd)
                delta = delta - lr * g
                delta = delta * _per_sample((bound / delta.flatten(1).norm(dim=1).clamp_min(1e-12)).clamp(max=1.0), nd)
            if (t + 1) % stage_len == 0 and t + 1 < self.steps:
                bound *= 1.0 - self.gamma
        return (x0 + delta.detach()).clamp(0, 1)

    def _l1(self, model, x0, generator):
        nd = x0.dim()
        r = laplace_like(x0, generator)
        delta = r * _per_sample(self.eps / r.flatten(1).abs().sum(dim=1).clamp_min(1e-12), nd)
        xa = (x0 + delta).clamp(0, 1)
        for _ in range(self.steps):
            xa.requires_grad_(True)
            g = self._grad(model, xa)
            with torch.no_grad():
                xa = (xa + self.alpha * sparse_sign_step(-g, self.sparsity)).clamp(0, 1)
                delta = xa - x0
                l1 = delta.flatten(1).abs().sum(dim=1)
                delta = delta * _per_sample((self.eps / l1.clamp_min(1e-12)).clamp(max=1.0), nd)
                xa = (x0 + delta).clamp(0, 1)
        return xa.detach()
