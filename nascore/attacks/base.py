"""The shape every nascore attack shares: configure once, call on ``(model, x, y)``.

Calling convention
------------------
::

    attack = PGD(norm="linf", eps=8/255, alpha=2/255, steps=7)   # a configuration, no model
    result = attack(model, x, y)                                 # an AttackResult

An attack object is a *model-free configuration*; the model is an argument of the call. This
study runs one configuration against many models (7 manual + 10 NAS networks, multi-exit
variants of each), so binding the model at construction (the torchattacks way) would mean
rebuilding the attack per model. Model-free objects also make :func:`artifact_pgd`-style factories
possible, and :meth:`Attack.config` gives a plain dict for a result row's provenance. Every
attack in :mod:`nascore.attacks` (PGD, NES, and later the backdoor trigger search and the
DeepSloth slowdown attacks) follows this convention.

Units and shapes
----------------
* ``x``: ``(N, C, H, W)`` images in [0,1] (float), or ``uint8`` in [0,255] (converted with
  ``/255``). Models map [0,1] images to their output with normalisation inside
  (:mod:`nascore.models.base`), so all perturbation and clipping happen in pixel space.
* ``y``: ``(N,)`` int64 true labels, or ``None`` for label-free objectives (DeepSloth).
* Budgets ``eps`` and step sizes ``alpha`` are in pixel units on the [0,1] scale
  (``eps=8/255`` means 8/255 of the full intensity range), per sample, for the chosen norm.
* The result's ``x_adv`` is ``(N, C, H, W)`` float in [0,1] with ``‖x_adv - x‖ ≤ eps``.

The generic loop (:meth:`Attack._optimize`)
-------------------------------------------
Projected iterative first-order optimisation of a per-sample objective (Madry et al., 2018,
"Towards Deep Learning Models Resistant to Adversarial Attacks", ICLR) with

* a pluggable objective ``loss_fn(model_out, label) -> (n,)`` (default: cross-entropy), ascended
  (``descend=False``) or descended (``descend=True``); ``label`` is the target when the attack has
  one, else ``y``. ``model_out`` is whatever the model returns, so a multi-exit network may return
  a list of internal-classifier logits and the DeepSloth loss reads all of them;
* a pluggable success rule ``success_fn(model_out, y, target) -> (n,) bool``;
* per-sample early stopping (as in the artifact of Pang et al., 2022, ain-soph/autovul on top of
  trojanzoo): before every step the active samples are checked, finished ones are written back
  into the full-size output and **removed from the working batch** (index bookkeeping), so
  later forward/backward passes only see unfinished samples;
* white-box gradients w.r.t. the input only (``torch.autograd.grad``; parameters keep their
  ``requires_grad`` but accumulate no ``.grad``), fused with the success check: one
  forward+backward per step serves both. Subclasses may replace the gradient by an estimate
  (:class:`nascore.attacks.nes.NES`);
* the model in eval mode for the attack, every module's mode restored afterwards;
* no ``.item()`` host syncs in the step loop except **one** ``done.any()`` per step that decides
  whether to compact the batch and whether everything has finished (a second, implicit sync
  happens in boolean indexing only on steps where some sample finished).

Iteration and query accounting
------------------------------
``iterations[i]`` is the number of update steps applied to sample ``i`` before it met the success
rule (0 = the starting point already succeeded), ``steps`` if it never did; with restarts the steps
of all runs are summed. This is the artifact's count (trojanzoo ``Optimizer.optimize``); the
artifact reports failures as ``2 * steps`` (see :func:`nascore.attacks.pgd.mean_iterations`).
``queries[i]`` (query-based attacks only, ``None`` otherwise) counts every image row the attack
sent through the model for sample ``i``: see :class:`nascore.attacks.nes.NES`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..models.base import eval_mode

__all__ = [
    "NORMS",
    "AttackResult",
    "Attack",
    "LossFn",
    "SuccessFn",
    "cross_entropy",
    "misclassified",
    "hits_target",
    "confident_target",
    "never",
    "as_images",
    "eval_mode",
    "project_linf",
    "project_l2",
    "project",
    "step_direction",
    "attack_batches",
    "asr",
    "asr_at_budget",
]

NORMS = ("linf", "l2")

LossFn = Callable[[Any, "torch.Tensor | None"], torch.Tensor]
"""``loss_fn(model_out, label) -> (n,)`` per-sample loss; ``label`` is ``(n,)`` or ``None``."""
SuccessFn = Callable[[Any, "torch.Tensor | None", "torch.Tensor | None"], torch.Tensor]
"""``success_fn(model_out, y, target) -> (n,) bool``; ``y``/``target`` may be ``None``."""


# --------------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------------
@dataclass
class AttackResult:
    """What every attack returns for a batch of ``N`` samples.

    Attributes
    ----------
    x_adv : Tensor ``(N, C, H, W)`` float in [0,1]
        Adversarial images (the best run per sample when restarting).
    success : Tensor ``(N,)`` bool
        Whether the attack's success rule held at ``x_adv``.
    iterations : Tensor ``(N,)`` int64
        Update steps applied before success (``steps`` on failure; summed over restarts).
    queries : Tensor ``(N,)`` int64 or None
        Model queries spent per sample (query-based attacks); ``None`` for white-box attacks.
    target : Tensor ``(N,)`` int64 or None
        The target class per sample for targeted attacks, else ``None``.
    """

    x_adv: torch.Tensor
    success: torch.Tensor
    iterations: torch.Tensor
    queries: torch.Tensor | None = None
    target: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.success)

    @staticmethod
    def cat(results: Sequence["AttackResult"]) -> "AttackResult":
        """Concatenate results of consecutive batches (fields that are ``None`` stay ``None``)."""
        if not results:
            raise ValueError("AttackResult.cat needs at least one result")
        out = {}
        for f in fields(AttackResult):
            vals = [getattr(r, f.name) for r in results]
            out[f.name] = None if any(v is None for v in vals) else torch.cat(vals)
        return AttackResult(**out)

    def cpu(self) -> "AttackResult":
        return AttackResult(**{f.name: (None if getattr(self, f.name) is None
                                        else getattr(self, f.name).cpu()) for f in fields(self)})


# --------------------------------------------------------------------------------------------
# Losses and success rules (batched, per sample)
# --------------------------------------------------------------------------------------------
def cross_entropy(logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Per-sample CE, ``(n, classes), (n,) -> (n,)``: the default objective."""
    return F.cross_entropy(logits, label, reduction="none")


def misclassified(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """Untargeted success: ``argmax(logits) != y``."""
    return logits.argmax(dim=1) != y


def hits_target(logits: torch.Tensor, y: torch.Tensor | None, target: torch.Tensor) -> torch.Tensor:
    """Targeted success: ``argmax(logits) == target``."""
    return logits.argmax(dim=1) == target


def confident_target(threshold: float = 0.99, require_class: bool = True) -> SuccessFn:
    """Targeted success ``p(target) > threshold`` (and ``argmax == target`` if ``require_class``).

    With ``threshold=0.99, require_class=True`` this is the artifact's early-stop rule
    (trojanzoo ``PGD.early_stop_check`` with ``--stop_threshold 0.99 --require_class``).
    """
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"threshold must be in [0, 1), got {threshold!r}")

    def rule(logits: torch.Tensor, y: torch.Tensor | None, target: torch.Tensor) -> torch.Tensor:
        p = logits.softmax(dim=1).gather(1, target[:, None]).squeeze(1)
        ok = p > threshold
        if require_class:
            ok = ok & (logits.argmax(dim=1) == target)
        return ok

    rule.__name__ = f"confident_target(threshold={threshold}, require_class={require_class})"
    return rule


def never(model_out: Any, y: torch.Tensor | None, target: torch.Tensor | None) -> torch.Tensor:
    """No success rule (fixed-step attacks such as DeepSloth): always ``False``."""
    first = model_out if isinstance(model_out, torch.Tensor) else model_out[0]
    return torch.zeros(first.shape[0], dtype=torch.bool, device=first.device)


# --------------------------------------------------------------------------------------------
# Norm helpers (batched over the first dimension, no per-sample loops)
# --------------------------------------------------------------------------------------------
def _per_sample(v: torch.Tensor, ndim: int) -> torch.Tensor:
    return v.view(-1, *([1] * (ndim - 1)))


def project_linf(delta: torch.Tensor, eps: float) -> torch.Tensor:
    """Project each sample of ``delta`` ``(N, ...)`` onto the L∞ ball of radius ``eps``."""
    return delta.clamp(-eps, eps)


def project_l2(delta: torch.Tensor, eps: float) -> torch.Tensor:
    """Project each sample of ``delta`` ``(N, ...)`` onto the L2 ball of radius ``eps``."""
    norms = delta.flatten(1).norm(p=2, dim=1)
    factor = (eps / norms.clamp_min(1e-12)).clamp(max=1.0)
    return delta * _per_sample(factor, delta.dim())


def project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Projection onto the ``norm`` ball (``"linf"`` or ``"l2"``), per sample."""
    if norm == "linf":
        return project_linf(delta, eps)
    if norm == "l2":
        return project_l2(delta, eps)
    raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")


def step_direction(grad: torch.Tensor, norm: str) -> torch.Tensor:
    """Steepest-ascent unit direction for ``norm``: ``sign(g)`` (L∞) or ``g/‖g‖₂`` (L2), per sample."""
    if norm == "linf":
        return grad.sign()
    if norm == "l2":
        norms = grad.flatten(1).norm(p=2, dim=1).clamp_min(1e-12)
        return grad / _per_sample(norms, grad.dim())
    raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")


def random_start(x: torch.Tensor, eps: float, norm: str,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """A random point of the ``eps`` ball around ``x`` (uniform in the L∞ box; uniform in the L2
    ball via a Gaussian direction and radius ``eps·u^(1/d)``), clipped to [0,1]."""
    if norm == "linf":
        delta = (torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) * 2 - 1) * eps
    elif norm == "l2":
        d = x[0].numel()
        g = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        g = g / _per_sample(g.flatten(1).norm(dim=1).clamp_min(1e-12), x.dim())
        r = torch.rand(x.shape[0], generator=generator, device=x.device, dtype=x.dtype) ** (1.0 / d)
        delta = g * _per_sample(r * eps, x.dim())
    else:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    return (x + delta).clamp(0.0, 1.0)


# --------------------------------------------------------------------------------------------
# Small utilities
# --------------------------------------------------------------------------------------------
def as_images(x: torch.Tensor) -> torch.Tensor:
    """``uint8`` [0,255] → float32 [0,1]; floating inputs are returned unchanged (must be in [0,1])."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype == torch.uint8:
        return x.float().div_(255.0)
    if not x.is_floating_point():
        raise TypeError(f"x must be uint8 or floating point, got {x.dtype}")
    return x


def _rows(out: Any) -> int:
    return out.shape[0] if isinstance(out, torch.Tensor) else out[0].shape[0]


def _cat_outputs(outs: list[Any]) -> Any:
    """Concatenate chunked model outputs (a tensor, or a list/tuple of tensors per exit)."""
    if len(outs) == 1:
        return outs[0]
    if isinstance(outs[0], torch.Tensor):
        return torch.cat(outs)
    return type(outs[0])(torch.cat(parts) for parts in zip(*outs))


def _detach(out: Any) -> Any:
    if isinstance(out, torch.Tensor):
        return out.detach()
    return type(out)(o.detach() for o in out)


def _take(v: torch.Tensor | None, idx: torch.Tensor) -> torch.Tensor | None:
    return None if v is None else v[idx]


def _check_real(name: str, value: Any, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'}, got {value!r}")
    return float(value)


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


# --------------------------------------------------------------------------------------------
# The base class
# --------------------------------------------------------------------------------------------
class Attack:
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
        Extra runs for the samples that still failed; the best run per sample is kept (a success,
        else the run with the best final objective). Total runs ``= 1 + restarts``. (trojanzoo's
        ``num_restart=k`` means ``k`` random-start runs, i.e. ``random_start=True, restarts=k-1``.)
    loss_fn : callable or None
        ``loss_fn(model_out, label) -> (n,)``; default cross-entropy. Summed over the batch before
        differentiation, so each sample's gradient is independent of the others.
    success_fn : callable or None
        ``success_fn(model_out, y, target) -> (n,) bool``; default set by the subclass.
    descend : bool
        Minimise (``True``) or maximise (``False``) the objective.
    early_stop : bool
        Check the success rule before every step and drop finished samples; if ``False`` every
        sample runs all ``steps`` and success is checked once at the end.
    seed : int or None
        Seed for the attack's own ``torch.Generator`` (random starts, NES directions), so the same
        seed on the same device gives the same numbers; ``None`` uses the global RNG.
    """

    name: str = "attack"
    #: query-based attacks count model queries per sample (``AttackResult.queries``)
    counts_queries: bool = False

    def __init__(self, *, norm: str = "linf", eps: float = 8 / 255, alpha: float = 2 / 255,
                 steps: int = 10, random_start: bool = False, restarts: int = 0,
                 loss_fn: LossFn | None = None, success_fn: SuccessFn | None = None,
                 descend: bool = False, early_stop: bool = True, seed: int | None = None):
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        self.norm = norm
        self.eps = _check_real("eps", eps)
        self.alpha = _check_real("alpha", alpha, positive=True)
        self.steps = _check_int("steps", steps, 0)
        self.random_start = bool(random_start)
        self.restarts = _check_int("restarts", restarts, 0)
        if loss_fn is not None and not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable, got {loss_fn!r}")
        if success_fn is not None and not callable(success_fn):
            raise TypeError(f"success_fn must be callable, got {success_fn!r}")
        self.loss_fn: LossFn = loss_fn or cross_entropy
        self.success_fn: SuccessFn = success_fn or misclassified
        self.descend = bool(descend)
        self.early_stop = bool(early_stop)
        if seed is not None:
            _check_int("seed", seed, 0)
        self.seed = seed

    # ---------------------------------------------------------------- description
    def config(self) -> dict[str, Any]:
        """Plain-data description of the configuration (for result rows / provenance)."""
        out: dict[str, Any] = {"attack": self.name}
        for k, v in vars(self).items():
            if callable(v):
                v = getattr(v, "__name__", type(v).__name__)
            elif isinstance(v, torch.Tensor):
                v = v.tolist()
            out[k] = v
        return out

    def __repr__(self) -> str:
        cfg = self.config()
        cfg.pop("attack")
        return f"{type(self).__name__}(" + ", ".join(f"{k}={v!r}" for k, v in cfg.items()) + ")"

    # ---------------------------------------------------------------- entry point
    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, *,
                 target: Any = None, generator: torch.Generator | None = None) -> AttackResult:
        """Attack the batch ``x`` ``(N, C, H, W)`` with labels ``y`` ``(N,)``.

        ``target`` overrides the configured target for this call (targeted attacks only);
        ``generator`` overrides the seed (used by :func:`attack_batches` to draw one random
        stream across batches).
        """
        x = as_images(x)
        if x.dim() != 4:
            raise ValueError(f"x must be (N, C, H, W), got shape {tuple(x.shape)}")
        if y is not None:
            if y.shape != (x.shape[0],):
                raise ValueError(f"y must have shape ({x.shape[0]},), got {tuple(y.shape)}")
            y = y.to(device=x.device, dtype=torch.long)
        if generator is None and self.seed is not None:
            generator = torch.Generator(device=x.device)
            generator.manual_seed(self.seed)
        x = x.detach()
        with eval_mode(model):
            queries = torch.zeros(x.shape[0], dtype=torch.long, device=x.device) \
                if self.counts_queries else None
            target = self._prepare_target(model, x, y, target, generator, queries)
            result = self._run(model, x, y, target, generator, queries)
        return result

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
        return (_detach(out), grad) if return_output else grad

    def _gradient(self, model: nn.Module, x: torch.Tensor, label: torch.Tensor | None,
                  generator: torch.Generator | None) -> torch.Tensor:
        """The gradient used for a step (white-box here; estimated in query-based subclasses)."""
        return self.gradient(model, x, label)

    def _query_cost_per_step(self) -> int:
        """Model queries per sample for one gradient step (query-based attacks)."""
        return 0

    # ---------------------------------------------------------------- loops
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
        iterations = torch.zeros(n, dtype=torch.long, device=x.device)
        best_obj = torch.full((n,), -math.inf, device=x.device)
        label = self._label(y, target)
        todo = torch.arange(n, device=x.device)
        for r in range(1 + self.restarts):
            start = self.random_start or r > 0
            xr, succ, it, q, obj = self._optimize(
                model, x[todo], _take(y, todo), _take(target, todo), _take(label, todo),
                start, generator)
            iterations[todo] += it
            if queries is not None:
                queries[todo] += q
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
                            queries=queries, target=target)

    def _optimize(self, model: nn.Module, x0: torch.Tensor, y: torch.Tensor | None,
                  target: torch.Tensor | None, label: torch.Tensor | None, start: bool,
                  generator: torch.Generator | None):
        """One run on ``x0`` ``(n, C, H, W)``. Returns ``(x_adv, success, iterations, queries,
        objective)``, each ``(n,)`` except ``x_adv``; ``objective`` is the final loss oriented so
        that larger is better for the attacker (``-inf`` where the sample succeeded early)."""
        n, dev = x0.shape[0], x0.device
        x_out = x0.clone()
        succ_out = torch.zeros(n, dtype=torch.bool, device=dev)
        it_out = torch.full((n,), self.steps, dtype=torch.long, device=dev)
        count = self.counts_queries
        q_out = torch.zeros(n, dtype=torch.long, device=dev)
        obj_out = torch.full((n,), -math.inf, device=dev)
        sign = -1.0 if self.descend else 1.0
        q_step = self._query_cost_per_step()

        active = torch.arange(n, device=dev)     # run-local indices of the working batch
        xa = random_start(x0, self.eps, self.norm, generator) if start else x0.clone()
        xo, ya, ta, la = x0, y, target, label
        for t in range(self.steps + 1):
            last = t == self.steps
            grad = None
            if self.early_stop or last:
                out, grad = self._evaluate(model, xa, la, with_grad=not last)
                if count:
                    q_out[active] += 1
                done = self.success_fn(out, ya, ta)
                if last:
                    x_out[active] = xa
                    succ_out[active] = done
                    with torch.no_grad():
                        obj_out[active] = sign * self.loss_fn(out, la).float()
                    break
                if bool(done.any()):          # the one host sync per step
                    fin = active[done]
                    x_out[fin] = xa[done]
                    succ_out[fin] = True
                    it_out[fin] = t
                    keep = ~done
                    active, xa, xo = active[keep], xa[keep], xo[keep]
                    ya, ta, la = _take(ya, keep), _take(ta, keep), _take(la, keep)
                    grad = _take(grad, keep)
                    if active.numel() == 0:
                        break
            if grad is None:
                grad = self._gradient(model, xa, la, generator)
            if count:
                q_out[active] += q_step
            with torch.no_grad():
                xa = xa + (sign * self.alpha) * step_direction(grad, self.norm)
                xa = (xo + project(xa - xo, self.eps, self.norm)).clamp_(0.0, 1.0)
        return x_out, succ_out, it_out, q_out, obj_out


# --------------------------------------------------------------------------------------------
# Batch drivers and summary statistics
# --------------------------------------------------------------------------------------------
def attack_batches(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, attack: Attack,
                   batch_size: int = 100, *, device: torch.device | str | None = None,
                   generator: torch.Generator | None = None) -> AttackResult:
    """Run ``attack`` over ``x`` ``(N, C, H, W)`` (float [0,1] or uint8) in batches of
    ``batch_size`` and concatenate. One random stream (from ``attack.seed`` unless
    ``generator`` is given) is used across all batches. ``device`` defaults to the model's."""
    batch_size = _check_int("batch_size", batch_size, 1)
    if device is None:
        p = next(iter(model.parameters()), None)
        device = p.device if p is not None else x.device
    device = torch.device(device)
    if generator is None and attack.seed is not None:
        generator = torch.Generator(device=device)
        generator.manual_seed(attack.seed)
    results = []
    for i in range(0, x.shape[0], batch_size):
        xb = as_images(x[i:i + batch_size].to(device))
        yb = None if y is None else y[i:i + batch_size].to(device)
        results.append(attack(model, xb, yb, generator=generator))
    return AttackResult.cat(results)


def asr(result: AttackResult) -> float:
    """Attack success rate: fraction of samples whose success rule held."""
    return float(result.success.float().mean()) if len(result) else float("nan")


def asr_at_budget(result: AttackResult, budgets: Sequence[int]) -> list[float]:
    """ASR when each sample may spend at most ``b`` model queries, for each ``b`` in ``budgets``:
    ``mean(success & queries <= b)``. Valid because early stopping records the queries spent at
    the moment of success (needs ``early_stop=True`` and a query-counting attack)."""
    if result.queries is None:
        raise ValueError("result has no query counts (white-box attack); use a query-based attack")
    return [float((result.success & (result.queries <= b)).float().mean()) for b in budgets]
