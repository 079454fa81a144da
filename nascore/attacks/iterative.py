"""The projected iterative loop that PGD, NES, DeepSloth and the multi-exit PGD baselines share.

:class:`IterativeAttack` is an :class:`~nascore.attacks.base.Attack` (the calling convention,
units and shapes are in :mod:`nascore.attacks`) whose call runs the generic loop
(:meth:`IterativeAttack._optimize`):

Projected iterative first-order optimisation of a per-sample objective (Madry et al., 2018,
"Towards Deep Learning Models Resistant to Adversarial Attacks", ICLR) with

* a pluggable objective ``loss_fn(model_out, label) -> (n,)`` (default: cross-entropy), ascended
  (``descend=False``) or descended (``descend=True``); ``label`` is the target when the attack has
  one, else ``y``. ``model_out`` is whatever the model returns, so a multi-exit network may return
  a list of internal-classifier logits and the DeepSloth loss reads all of them;
* a pluggable success rule ``success_fn(model_out, y, target) -> (n,) bool``
  (:mod:`nascore.attacks.rules`), checked before every step and after the last one;
* per-sample early stopping (``early_stop=True``, as in the artifact of Pang et al., 2022,
  ain-soph/autovul on top of trojanzoo): finished samples are written back into the full-size
  output and **removed from the working batch** (index bookkeeping), so later forward/backward
  passes only see unfinished samples. With ``early_stop=False`` every sample runs all steps; the
  first success is recorded the same way (same ``x_adv``, ``success``, ``iterations``), and the
  outcome after the last step is recorded too (``success_last_step``; see
  :mod:`nascore.attacks.result` for the two meanings of success and which one the chapters use);
* white-box gradients w.r.t. the input only (``torch.autograd.grad``; parameters keep their
  ``requires_grad`` but accumulate no ``.grad``), fused with the success check: one
  forward+backward per step serves both. Subclasses may replace the gradient by an estimate
  (:class:`nascore.attacks.nes.NES`);
* the model in eval mode for the attack, every module's mode restored afterwards;
* no ``.item()`` host syncs in the step loop except, with early stopping, **one** ``done.any()``
  per step that decides whether to compact the batch and whether everything has finished (a
  second, implicit sync happens in boolean indexing only on steps where some sample finished).

Iteration and query accounting
------------------------------
``iterations[i]`` is the number of update steps applied to sample ``i`` before it first met the
success rule (0 = the starting point already succeeded), ``steps`` if it never did; with restarts
the steps of all runs are summed. This is the artifact's count (trojanzoo ``Optimizer.optimize``);
the artifact reports failures as ``2 * steps`` (:func:`~nascore.attacks.result.mean_iterations`).
``queries[i]`` (query-based attacks only, ``None`` otherwise) counts every image row the attack
sent through the model for sample ``i``: see :class:`nascore.attacks.nes.NES`.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ._util import check_int, check_real, detach_outputs, take
from .base import Attack
from .geometry import project, random_start, step_direction
from .result import AttackResult
from .rules import LossFn, SuccessFn, cross_entropy, misclassified

__all__ = ["IterativeAttack"]


class IterativeAttack(Attack):
    """Projected iterative attack with per-sample early stopping; see the module docstring.

    Parameters
    ----------
    norm : {"linf", "l2"}
        Threat model; ``eps`` and ``alpha`` are measured in this norm, in [0,1] pixel units.
    eps : float
        Budget per sample (e.g. ``8/255`` for L∞).
    alpha : float
        Step length per iteration (L∞: every pixel moves by ``alpha``; L2: the step has norm ``alpha``).
    steps : int
        Update steps per run.
    random_start : bool
        Start run 0 at a uniform random point of the ball (later restarts always do).
    restarts : int
        Extra runs for the samples that have not succeeded (at any step); the best run per sample
        is kept (a success, else the run with the best final objective). Total runs
        ``= 1 + restarts``. (trojanzoo's ``num_restart=k`` means ``k`` random-start runs, i.e.
        ``random_start=True, restarts=k-1``.) ``success_last_step`` is then the last-step outcome
        of any run the sample took part in.
    loss_fn : callable or None
        ``loss_fn(model_out, label) -> (n,)``; default cross-entropy. Summed over the batch before
        differentiation, so each sample's gradient is independent of the others.
    success_fn : callable or None
        ``success_fn(model_out, y, target) -> (n,) bool``; default ``argmax != y``
        (:func:`~nascore.attacks.rules.misclassified`); targeted subclasses default to
        ``argmax == target``.
    descend : bool
        Minimise (``True``) or maximise (``False``) the objective.
    early_stop : bool
        ``True``: drop samples from the working batch once they succeed (``success_last_step``
        is ``None``). ``False``: every sample runs all ``steps`` (more compute) and the result
        also holds ``success_last_step``. Both record the same first success.
    seed : int or None
        Seed for the attack's own ``torch.Generator`` (random starts, NES directions), so the same
        seed on the same device gives the same numbers; ``None`` uses the global RNG.
    """

    name: str = "attack"

    def __init__(self, *, norm: str = "linf", eps: float = 8 / 255, alpha: float = 2 / 255,
                 steps: int = 10, random_start: bool = False, restarts: int = 0,
                 loss_fn: LossFn | None = None, success_fn: SuccessFn | None = None,
                 descend: bool = False, early_stop: bool = True, seed: int | None = None):
        super().__init__(norm=norm, eps=check_real("eps", eps), seed=seed)
        self.alpha = check_real("alpha", alpha, positive=True)
        self.steps = check_int("steps", steps, 0)
        self.random_start = bool(random_start)
        self.restarts = check_int("restarts", restarts, 0)
        if loss_fn is not None and not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable, got {loss_fn!r}")
        if success_fn is not None and not callable(success_fn):
            raise TypeError(f"success_fn must be callable, got {success_fn!r}")
        self.loss_fn: LossFn = loss_fn or cross_entropy
        self.success_fn: SuccessFn = success_fn or misclassified
        self.descend = bool(descend)
        self.early_stop = bool(early_stop)

    # ---------------------------------------------------------------- entry point
    def _attack(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, target: Any,
                generator: torch.Generator | None) -> AttackResult:
        queries = torch.zeros(x.shape[0], dtype=torch.long, device=x.device) \
            if self.counts_queries else None
        target = self._prepare_target(model, x, y, target, generator, queries)
        return self._run(model, x, y, target, generator, queries)

    def _prepare_target(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None,
                        target: Any, generator: torch.Generator | None,
                        queries: torch.Tensor | None) -> torch.Tensor | None:
        """Per-sample target ``(N,)`` or ``None``; subclasses with targets override this.

        A subclass that runs a clean forward pass here adds 1 to ``queries`` (if not ``None``).
        """
        if target is not None:
            raise ValueError(f"{type(self).__name__} takes no target, got {target!r}")
        return None

    # ---------------------------------------------------------------- model access
    def _forward(self, model: nn.Module, x: torch.Tensor) -> Any:
        """One forward pass (no autograd). Query-based subclasses chunk it."""
        with torch.no_grad():
            return model(x)

    def _evaluate(self, model: nn.Module, x: torch.Tensor, label: torch.Tensor | None,
                  with_grad: bool) -> tuple[Any, torch.Tensor | None]:
        """Model output at ``x`` for the success check and, if ``with_grad`` and the attack is
        white-box, the objective's input gradient from the same pass; ``(out, grad or None)``."""
        if not with_grad:
            return self._forward(model, x), None
        return self.gradient(model, x, label, return_output=True)

    def gradient(self, model: nn.Module, x: torch.Tensor, label: torch.Tensor | None,
                 return_output: bool = False):
        """Input gradient of ``loss_fn(model(x), label).sum()`` ``(N, C, H, W)``; only ``x`` gets a
        gradient (``torch.autograd.grad``), parameters accumulate nothing. With
        ``return_output`` returns ``(model_out, grad)``."""
        xg = x.detach().requires_grad_(True)
        with torch.enable_grad():
            out = model(xg)
            loss = self.loss_fn(out, label)
            (grad,) = torch.autograd.grad(loss.sum(), xg)
        return (detach_outputs(out), grad) if return_output else grad

    def _gradient(self, model: nn.Module, x: torch.Tensor, label: torch.Tensor | None,
                  generator: torch.Generator | None) -> torch.Tensor:
        """The gradient used for a step (white-box here; estimated in query-based subclasses)."""
        return self.gradient(model, x, label)

    def _query_cost_per_step(self) -> int:
        """Model queries per sample for one gradient step (query-based attacks)."""
        return 0

    # ---------------------------------------------------------------- loops
    def _random_start(self, x0: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """The start of a random-start run: uniform in the ``eps`` ball (subclasses may narrow it)."""
        return random_start(x0, self.eps, self.norm, generator)

    def _label(self, y: torch.Tensor | None, target: torch.Tensor | None) -> torch.Tensor | None:
        """What ``loss_fn`` receives: the target if there is one, else the true label."""
        return target if target is not None else y

    def _run(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None,
             target: torch.Tensor | None, generator: torch.Generator | None,
             queries: torch.Tensor | None) -> AttackResult:
        """Runs ``1 + restarts`` times on the samples that still fail; keeps the best per sample."""
        n = x.shape[0]
        x_best = x.clone()
        success = torch.zeros(n, dtype=torch.bool, device=x.device)
        last = None if self.early_stop else torch.zeros(n, dtype=torch.bool, device=x.device)
        iterations = torch.zeros(n, dtype=torch.long, device=x.device)
        best_obj = torch.full((n,), -math.inf, device=x.device)
        label = self._label(y, target)
        todo = torch.arange(n, device=x.device)
        for r in range(1 + self.restarts):
            start = self.random_start or r > 0
            xr, succ, it, q, obj, succ_last = self._optimize(
                model, x[todo], take(y, todo), take(target, todo), take(label, todo),
                start, generator)
            iterations[todo] += it
            if queries is not None:
                queries[todo] += q
            if last is not None:
                last[todo] |= succ_last
            # todo holds only failures so far: a success always wins, else a better objective
            better = succ | (obj > best_obj[todo]) if r else torch.ones_like(succ)
            upd = todo[better]
            x_best[upd] = xr[better]
            best_obj[upd] = obj[better]
            success[todo] = succ
            todo = todo[~succ]
            if todo.numel() == 0:
                break
        return AttackResult(x_adv=x_best, success=success, iterations=iterations,
                            queries=queries, target=target, success_last_step=last)

    def _optimize(self, model: nn.Module, x0: torch.Tensor, y: torch.Tensor | None,
                  target: torch.Tensor | None, label: torch.Tensor | None, start: bool,
                  generator: torch.Generator | None):
        """One run on ``x0`` ``(n, C, H, W)``. Returns ``(x_adv, success, iterations, queries,
        objective, success_last_step)``, each ``(n,)`` except ``x_adv``; ``objective`` is the final
        loss oriented so that larger is better for the attacker (``-inf`` where the sample
        succeeded before the last check); ``success_last_step`` is ``None`` with early stopping."""
        n, dev = x0.shape[0], x0.device
        x_out = x0.clone()
        succ_out = torch.zeros(n, dtype=torch.bool, device=dev)
        last_out = None if self.early_stop else torch.zeros(n, dtype=torch.bool, device=dev)
        it_out = torch.full((n,), self.steps, dtype=torch.long, device=dev)
        count = self.counts_queries
        q_out = torch.zeros(n, dtype=torch.long, device=dev)
        obj_out = torch.full((n,), -math.inf, device=dev)
        sign = -1.0 if self.descend else 1.0
        q_step = self._query_cost_per_step()

        active = torch.arange(n, device=dev)     # run-local indices of the working batch
        xa = self._random_start(x0, generator) if start else x0.clone()
        xo, ya, ta, la = x0, y, target, label
        for t in range(self.steps + 1):
            last = t == self.steps
            out, grad = self._evaluate(model, xa, la, with_grad=not last)
            if count:
                q_out[active] += 1
            done = self.success_fn(out, ya, ta)
            if not self.early_stop:
                # all samples stay in the batch: record first successes without a host sync
                first = done & ~succ_out
                x_out.copy_(torch.where(_rows(first, xa), xa, x_out))
                it_out.masked_fill_(first, t)
                succ_out |= done
                if last:
                    last_out.copy_(done)
                    x_out.copy_(torch.where(_rows(succ_out, xa), x_out, xa))
                    with torch.no_grad():
                        obj = sign * self.loss_fn(out, la).float()
                    obj_out.copy_(torch.where(succ_out, obj_out, obj))
                    break
            elif last:
                x_out[active] = xa
                succ_out[active] = done
                with torch.no_grad():
                    obj_out[active] = sign * self.loss_fn(out, la).float()
                break
            elif bool(done.any()):          # the one host sync per step
                fin = active[done]
                x_out[fin] = xa[done]
                succ_out[fin] = True
                it_out[fin] = t
                keep = ~done
                active, xa, xo = active[keep], xa[keep], xo[keep]
                ya, ta, la = take(ya, keep), take(ta, keep), take(la, keep)
                grad = take(grad, keep)
                if active.numel() == 0:
                    break
            if grad is None:
                grad = self._gradient(model, xa, la, generator)
            if count:
                q_out[active] += q_step
            with torch.no_grad():
                xa = xa + (sign * self.alpha) * step_direction(grad, self.norm)
                xa = (xo + project(xa - xo, self.eps, self.norm)).clamp_(0.0, 1.0)
        return x_out, succ_out, it_out, q_out, obj_out, last_out


def _rows(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``(n,)`` mask viewed to broadcast over the sample dimensions of ``like``."""
    return mask.view(-1, *([1] * (like.dim() - 1)))

