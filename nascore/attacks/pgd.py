"""Projected gradient descent (Madry et al., 2018) and the artifact's PGD evaluation.

References
----------
* A. Madry, A. Makelov, L. Schmidt, D. Tsipras, A. Vladu. "Towards Deep Learning Models
  Resistant to Adversarial Attacks", ICLR 2018 — PGD with L∞/L2 projection and random restarts.
* R. Pang, Z. Xi, S. Ji, X. Luo, T. Wang. "On the Security Risks of AutoML", USENIX Security 2022;
  artifact ``ain-soph/autovul`` (``bash/adv_attack.sh`` on top of ``trojanzoo``): targeted L∞ PGD,
  eps 8/255, step 2/255, 7 steps, no random start, least-likely target, early stop per sample at
  ``p(target) > 0.99`` with ``argmax == target``, ASR on the first 1,000 correctly classified test
  images, average iterations with failures counted as ``2 * steps = 14``. See
  :func:`artifact_pgd` and protocol ``automl-security.md`` §4.1 and §10 (fact 5).

Everything is batched; shapes and units as in :mod:`nascore.attacks` (images ``(N, C, H, W)``
in [0,1], labels ``(N,)`` int64, budgets in [0,1] pixel units). Running PGD over a data set
(:func:`~nascore.attacks.evaluation.attack_batches`, ``evaluation_set``, ``robust_accuracy``)
lives in :mod:`nascore.attacks.evaluation`.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ._util import check_int
from .iterative import IterativeAttack
from .rules import LossFn, SuccessFn, confident_target, hits_target, misclassified

__all__ = ["PGD", "TARGET_MODES", "artifact_pgd"]

#: named target rules, computed from the clean prediction of each sample
TARGET_MODES = ("least_likely", "runner_up", "random")


class PGD(IterativeAttack):
    """Projected gradient descent, L∞ or L2, untargeted or targeted (Madry et al., 2018).

    ``result = PGD(...)(model, x, y)`` with ``x`` ``(N, C, H, W)`` in [0,1] (or uint8) and ``y``
    ``(N,)``. Each step moves ``x_adv`` by ``alpha`` along the steepest direction of the norm
    (``sign(g)`` for L∞, ``g/‖g‖₂`` for L2), projects onto the ``eps`` ball around ``x`` and clips
    to [0,1].

    Parameters
    ----------
    norm, eps, alpha, steps, random_start, restarts, early_stop, seed
        See :class:`nascore.attacks.iterative.IterativeAttack` (``early_stop=False`` also measures the
        last-step outcome, :mod:`nascore.attacks.result`). Defaults are the artifact's L∞ budget
        (8/255, step 2/255, 7 steps, no random start).
    targeted : bool
        ``False``: ascend ``loss_fn(out, y)`` (default CE on the true label).
        ``True``: descend ``loss_fn(out, target)`` (default CE toward the target).
    target : str, int, Tensor or callable
        Targeted attacks only. ``"least_likely"`` (argmin of the clean logits; the artifact's
        ``target_idx=-1``), ``"runner_up"`` (second-highest clean logit; ``target_idx=1``),
        ``"random"`` (uniform over the classes other than ``y``, or other than the clean prediction
        if ``y`` is None), an int class for every sample, an ``(N,)`` tensor, or a callable
        ``target(clean_logits, y) -> (N,)``. A per-call ``attack(model, x, y, target=...)``
        overrides it.
    success_fn : callable or None
        The success rule ``success_fn(model_out, y, target) -> (n,) bool`` (the keyword every
        attack uses; the outcome is ``AttackResult.success``). Default: ``argmax != y``
        (untargeted), ``argmax == target`` (targeted). The artifact uses
        :func:`~nascore.attacks.rules.confident_target` ``(0.99, require_class=True)``.
    loss_fn : callable or None
        ``loss_fn(model_out, label) -> (n,)``; default per-sample cross-entropy.

    The result's ``target`` field holds the targets used (``None`` when untargeted);
    ``queries`` is ``None`` (white-box).
    """

    name = "pgd"

    def __init__(self, norm: str = "linf", eps: float = 8 / 255, alpha: float = 2 / 255,
                 steps: int = 7, random_start: bool = False, restarts: int = 0,
                 targeted: bool = False, target: Any = "least_likely",
                 success_fn: SuccessFn | None = None, early_stop: bool = True,
                 loss_fn: LossFn | None = None, seed: int | None = None):
        self.targeted = bool(targeted)
        self.target = _check_target_spec(target)
        if success_fn is None:
            success_fn = hits_target if self.targeted else misclassified
        super().__init__(norm=norm, eps=eps, alpha=alpha, steps=steps,
                         random_start=random_start, restarts=restarts, loss_fn=loss_fn,
                         success_fn=success_fn, descend=self.targeted, early_stop=early_stop,
                         seed=seed)

    def _prepare_target(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None,
                        target: Any, generator: torch.Generator | None,
                        queries: torch.Tensor | None) -> torch.Tensor | None:
        if not self.targeted:
            if target is not None:
                raise ValueError("target given to an untargeted attack; construct it with targeted=True")
            if y is None:
                raise ValueError("untargeted PGD needs the true labels y")
            return None
        spec = self.target if target is None else _check_target_spec(target)
        n = x.shape[0]
        if isinstance(spec, torch.Tensor):
            t = spec.to(device=x.device, dtype=torch.long)
            t = t.expand(n).clone() if t.dim() == 0 else t
            if t.shape != (n,):
                raise ValueError(f"target tensor must have shape ({n},) or (), got {tuple(t.shape)}")
            return t
        if isinstance(spec, int):
            return torch.full((n,), spec, dtype=torch.long, device=x.device)
        logits = self._forward(model, x)         # the clean prediction: one query per sample
        if queries is not None:
            queries += 1
        if not isinstance(logits, torch.Tensor):
            raise TypeError("named/callable targets need a model returning a logits tensor; "
                            "pass an explicit target tensor for multi-output models")
        if callable(spec):
            t = spec(logits, y)
            return t.to(device=x.device, dtype=torch.long)
        if spec == "least_likely":
            return logits.argmin(dim=1)
        if spec == "runner_up":
            return logits.topk(2, dim=1).indices[:, 1]
        # "random": uniform over the classes other than y (or the clean prediction)
        ref = y if y is not None else logits.argmax(dim=1)
        c = logits.shape[1]
        shift = torch.randint(1, c, (n,), generator=generator, device=x.device)
        return (ref + shift) % c


def _check_target_spec(target: Any) -> Any:
    if isinstance(target, str):
        if target not in TARGET_MODES:
            raise ValueError(f"target must be one of {TARGET_MODES}, an int, a tensor or a callable; "
                             f"got {target!r}")
        return target
    if isinstance(target, bool):
        raise ValueError(f"target must be one of {TARGET_MODES}, an int, a tensor or a callable; got {target!r}")
    if isinstance(target, int):
        return check_int("target", target, 0)
    if isinstance(target, torch.Tensor) or callable(target):
        return target
    raise ValueError(f"target must be one of {TARGET_MODES}, an int, a tensor or a callable; got {target!r}")


def artifact_pgd(**overrides: Any) -> PGD:
    """The artifact's PGD (Pang et al., 2022; protocol §4.1, §10 fact 5), exactly:

    L∞, ``eps = 8/255``, ``alpha = 2/255``, 7 steps, no random start, no restarts, targeted at the
    least-likely class of the clean prediction, success = ``p(target) > 0.99`` and
    ``argmax == target``, checked before every step and after the last, per-sample early stop.
    Report :func:`~nascore.attacks.result.asr` and :func:`~nascore.attacks.result.mean_iterations`
    (failures count ``2 * steps`` = 14).
    Keyword ``overrides`` replace single knobs (e.g. ``eps=4/255`` for an eps sweep).
    """
    cfg: dict[str, Any] = dict(norm="linf", eps=8 / 255, alpha=2 / 255, steps=7,
                               random_start=False, restarts=0, targeted=True,
                               target="least_likely", success_fn=confident_target(0.99, True),
                               early_stop=True)
    cfg.update(overrides)
    return PGD(**cfg)
