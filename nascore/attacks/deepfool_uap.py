"""DeepFool universal adversarial perturbation (UAP), DeepSloth's universal accuracy baseline.

References: S.-M. Moosavi-Dezfooli, A. Fawzi, O. Fawzi, P. Frossard, "Universal adversarial
perturbations", CVPR 2017; DeepFool: Moosavi-Dezfooli, Fawzi, Frossard, CVPR 2016. The DeepSloth
authors run it on the SDN's final exit (``attacks/UAP.py``: L∞ ε = 0.03125, overshoot 0.02, at most
10 DeepFool iterations, stop when the fooling rate reaches 0.8 or after ``max_uiter`` passes;
crafted on 100 images). Protocol ``deepsloth.md`` §3.

Algorithm: ``v = 0``; in every pass over the crafting images (in a seeded random order), for each
image whose prediction is unchanged by ``v``, DeepFool finds the minimal ℓ2 step that crosses the
nearest decision boundary at ``x + v``; if DeepFool converged, ``v ← clip_ε(v + step)``. After
each pass the fooling rate (prediction of ``x + v`` ≠ prediction of ``x``) is measured on the
crafting images. As in the authors' code, ``x + v`` is not clipped to [0,1] while crafting;
:meth:`~.universal.UniversalPerturbation.apply` clips.

As an attack (:class:`~nascore.attacks.universal.UniversalAttack`), ``attack(model, x, y)``
crafts ``v`` on ``x`` and returns ``clip(x + v)``; ``success`` = the final exit's prediction of
the perturbed image differs from its clean prediction (the fooling rule, on the clipped images).

Why a per-image loop: UAP is sequential by definition — every image's DeepFool step starts from
the ``v`` left by the previous image. Each DeepFool iteration is batched over the classes (one
forward/backward pass of a ``(C, …)`` batch gives all class gradients).
"""
from __future__ import annotations

import torch
from torch import nn

from ._util import check_fraction, check_int, check_real
from .multiexit_pgd import _exit
from .universal import UniversalAttack, UniversalPerturbation

__all__ = ["DeepFoolUAP", "deepfool"]


def _logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    return out if isinstance(out, torch.Tensor) else out[-1]


def deepfool(model: nn.Module, x: torch.Tensor, overshoot: float = 0.02, max_iter: int = 10
             ) -> tuple[torch.Tensor, int]:
    """DeepFool (ℓ2) for one image ``x`` ``(1, C, H, W)``: the perturbation ``(1+overshoot)·r``
    that moves it across the nearest linearised boundary, and the number of linearisation steps
    taken (``max_iter`` if the label had not changed by then)."""
    with torch.no_grad():
        f = _logits(model, x)[0]
    k0, classes = int(f.argmax()), f.shape[0]
    r_tot = torch.zeros_like(x)
    it = 0
    while it < max_iter:
        xb = (x + (1 + overshoot) * r_tot).detach().expand(classes, *x.shape[1:]).clone().requires_grad_(True)
        with torch.enable_grad():
            out = _logits(model, xb)
            (grads,) = torch.autograd.grad(out.diagonal().sum(), xb)   # row c: d f_c / dx
        f = out[0].detach()
        if int(f.argmax()) != k0:
            break
        w = (grads - grads[k0]).flatten(1)
        norms = w.norm(dim=1).clamp_min(1e-12)
        ratio = (f - f[k0]).abs() / norms
        ratio[k0] = float("inf")
        c = int(ratio.argmin())
        r_tot = r_tot + (ratio[c] * w[c] / norms[c]).view_as(x)
        it += 1
    return (1 + overshoot) * r_tot, it


class DeepFoolUAP(UniversalAttack):
    """Universal adversarial perturbation by DeepFool on the final exit (Moosavi-Dezfooli et al. 2017).

    Parameters: ``eps`` (L∞, 0.03125), ``overshoot`` (0.02), ``deepfool_steps`` (10),
    ``min_fool`` (0.8), ``max_passes`` (100), ``seed`` (order of the images per pass; drawn on
    the CPU; ``None``: the global RNG). ``craft(model, x)`` →
    :class:`~nascore.attacks.universal.UniversalPerturbation`; ``model`` is a classifier or a
    multi-exit model (its final exit is attacked).
    """

    name = "deepfool_uap"
    norms = ("linf",)
    rng_device = "cpu"     # the pass order is a CPU randperm whatever the model's device

    def __init__(self, eps: float = 0.03125, overshoot: float = 0.02, deepfool_steps: int = 10,
                 min_fool: float = 0.8, max_passes: int = 100, seed: int | None = 0):
        super().__init__(norm="linf", eps=check_real("eps", eps, positive=True), seed=seed)
        self.overshoot = check_real("overshoot", overshoot, positive=True)
        self.deepfool_steps = check_int("deepfool_steps", deepfool_steps, 1)
        self.min_fool = check_fraction("min_fool", min_fool, closed=True)
        self.max_passes = check_int("max_passes", max_passes, 1)

    def config(self) -> dict:
        return {"attack": self.name, "eps": self.eps, "overshoot": self.overshoot,
                "deepfool_steps": self.deepfool_steps, "min_fool": self.min_fool,
                "max_passes": self.max_passes, "seed": self.seed}

    def _craft(self, model: nn.Module, x: torch.Tensor, generator: torch.Generator | None
               ) -> UniversalPerturbation:
        """Craft ``v`` ``(C, H, W)`` on images ``x`` ``(N, C, H, W)``; ``config['fool_rate']`` and
        ``config['passes']`` record where it stopped."""
        final = _final(model)
        v = torch.zeros_like(x[0])
        fool, passes = 0.0, 0
        with torch.no_grad():
            clean = _logits(final, x).argmax(dim=1)
        while fool < self.min_fool and passes < self.max_passes:
            for i in torch.randperm(x.shape[0], generator=generator).tolist():
                xi = x[i:i + 1]
                with torch.no_grad():
                    same = int(_logits(final, xi + v).argmax(dim=1)) == int(clean[i])
                if same:
                    dr, iters = deepfool(final, xi + v, self.overshoot, self.deepfool_steps)
                    if iters < self.deepfool_steps - 1:
                        v = (v + dr[0]).clamp(-self.eps, self.eps)
            with torch.no_grad():
                fool = float((_logits(final, x + v).argmax(dim=1) != clean).float().mean())
            passes += 1
        return UniversalPerturbation(v.detach(), "linf", self.eps, {**self.config(), "fool_rate": fool,
                                                                    "passes": passes})

    def _success(self, model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
        final = _final(model)
        with torch.no_grad():
            return _logits(final, x_adv).argmax(dim=1) != _logits(final, x).argmax(dim=1)


def _final(model: nn.Module) -> nn.Module:
    """The final exit of a multi-exit model (its ``exit_view``), or the classifier itself."""
    return _exit(model, -1) if hasattr(model, "exit_view") else model
