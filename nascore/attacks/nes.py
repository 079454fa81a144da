"""Query-based (score-based black-box) PGD with NES gradient estimates (Ilyas et al., 2018).

References
----------
* A. Ilyas, L. Engstrom, A. Athalye, J. Lin. "Black-box Adversarial Attacks with Limited Queries
  and Information", ICML 2018 — natural-evolution-strategies gradient estimate with antithetic
  Gaussian sampling, plugged into PGD.
* A. Madry et al., ICLR 2018 — the PGD loop (:class:`nascore.attacks.pgd.PGD`).
* Pang et al., USENIX Security 2022, artifact ``ain-soph/autovul`` / trojanzoo: ``--grad_method nes``
  with ``query_num = 100`` (50 antithetic pairs) and ``sigma = 1e-3``; never scripted there
  (protocol §4.1). See :func:`artifact_nes`.

The estimate for one sample ``x`` (``(C, H, W)`` in [0,1]) with ``S = samples`` pairs is

    g(x) = 1/(2·σ·S) · Σ_k [L(x + σ·u_k) − L(x − σ·u_k)] · u_k,     u_k ~ N(0, I),

an unbiased estimate of the gradient of the Gaussian-smoothed loss. ``L`` is the attack's
per-sample ``loss_fn`` on the model's output (score-based threat model: the attacker sees the
output scores, never gradients). The query points are not clipped to [0,1] (σ = 1e-3 moves
pixels by about 1e-3, as in the artifact).

Query accounting (``AttackResult.queries``, exact, per sample)
---------------------------------------------------------------
Every image row sent through the model for a sample counts as one query:

* ``+1`` for the clean forward pass that picks a named target (``least_likely``, ``runner_up``,
  ``random``, callable); not spent for untargeted attacks or explicit target tensors/ints;
* ``+1`` per success check, before every step and after the last one: a sample that succeeds
  at check ``t`` (after ``t`` updates) with ``early_stop=True`` has had ``t + 1`` checks; with
  ``early_stop=False`` every sample has ``steps + 1`` (the checks that measure both the
  any-step and the last-step outcome, :mod:`nascore.attacks.result`);
* ``+2·samples`` per gradient step (the antithetic pairs).

So a run spends ``c + (t + 1) + t·2S`` queries on a sample that stops after ``t`` updates
(``t = steps`` for failures and for every sample with ``early_stop=False``), with ``c`` the
target query; restarts add their own counts. With early stopping queries are recorded at the
moment of success, so
:func:`~nascore.attacks.result.asr_at_budget` gives ASR against any query budget from one run.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ._util import cat_outputs, check_int, check_real
from .iterative import IterativeAttack
from .pgd import PGD
from .rules import hits_target

__all__ = ["NESGradient", "NES", "artifact_nes"]


class NESGradient(IterativeAttack):
    """Replaces the white-box gradient of any :class:`~nascore.attacks.iterative.IterativeAttack` by
    an antithetic NES estimate from forward queries only, and counts queries.

    Put it first in the bases to make a black-box variant of an attack:
    ``class NES(NESGradient, PGD)``; a label-free objective (e.g. DeepSloth's) works the same way,
    ``class SlothNES(NESGradient, DeepSloth)``. Used alone it is the generic loop with a custom
    ``loss_fn`` / ``success_fn`` / ``descend``. The model is never differentiated: all forward
    passes run under ``torch.no_grad``.

    Parameters
    ----------
    sigma : float
        Std of the Gaussian query perturbation, in [0,1] pixel units (artifact: ``1e-3``).
    samples : int
        Antithetic pairs per gradient estimate, i.e. ``2·samples`` queries per sample and step
        (artifact: 50 pairs = 100 queries).
    max_batch : int
        Most image rows per forward pass: all active samples × all ``2·samples`` perturbations are
        evaluated in ``ceil(n·2·samples / max_batch)`` batched forward passes.
    **kwargs
        Everything the other base takes (for :class:`NES`: ``norm``, ``eps``, ``alpha``, ``steps``,
        ``targeted``, ``target``, ``success_fn``, ``early_stop``, ``restarts``, ``seed``, ...).

    ``AttackResult.queries`` ``(N,)`` int64 counts model queries per sample (module docstring).
    """

    name = "nes_attack"
    counts_queries = True

    def __init__(self, sigma: float = 1e-3, samples: int = 50, max_batch: int = 4096,
                 **kwargs: Any):
        self.sigma = check_real("sigma", sigma, positive=True)
        self.samples = check_int("samples", samples, 1)
        self.max_batch = check_int("max_batch", max_batch, 1)
        super().__init__(**kwargs)

    # every model access is a counted forward query; nothing is differentiated
    def _forward(self, model: nn.Module, x: torch.Tensor) -> Any:
        with torch.no_grad():
            outs = [model(x[i:i + self.max_batch]) for i in range(0, x.shape[0], self.max_batch)]
        return cat_outputs(outs)

    def _evaluate(self, model: nn.Module, x: torch.Tensor, label: torch.Tensor | None,
                  with_grad: bool) -> tuple[Any, None]:
        return self._forward(model, x), None      # the estimate comes after compaction

    def _gradient(self, model: nn.Module, x: torch.Tensor, label: torch.Tensor | None,
                  generator: torch.Generator | None) -> torch.Tensor:
        return self.estimate_gradient(model, x, label, generator=generator)

    def _query_cost_per_step(self) -> int:
        return 2 * self.samples

    def sample_directions(self, m: int, shape: torch.Size, like: torch.Tensor,
                          generator: torch.Generator | None = None) -> torch.Tensor:
        """``samples`` standard Gaussian directions per sample: ``(m, samples, *shape)``, with
        ``like``'s dtype and device (override to plug in other search distributions)."""
        return torch.randn((m, self.samples, *shape), generator=generator, device=like.device,
                           dtype=like.dtype)

    def estimate_gradient(self, model: nn.Module, x: torch.Tensor, label: torch.Tensor | None,
                          generator: torch.Generator | None = None) -> torch.Tensor:
        """NES estimate ``(n, C, H, W)`` of the input gradient of ``loss_fn(model(x), label)``.

        ``x`` ``(n, C, H, W)``; uses ``n·2·samples`` forward queries, batched over samples and
        perturbations (``max_batch`` rows per pass).
        """
        n, S = x.shape[0], self.samples
        per_chunk = max(1, self.max_batch // (2 * S))      # samples whose 2S rows share a pass
        grads = []
        with torch.no_grad():
            for i in range(0, n, per_chunk):
                xc = x[i:i + per_chunk]
                m = xc.shape[0]
                u = self.sample_directions(m, x.shape[1:], x, generator)
                rows = torch.cat([xc[:, None] + self.sigma * u, xc[:, None] - self.sigma * u], dim=1)
                rows = rows.reshape(m * 2 * S, *x.shape[1:])
                lab = None if label is None else label[i:i + per_chunk].repeat_interleave(2 * S)
                losses = []
                for j in range(0, rows.shape[0], self.max_batch):
                    out = model(rows[j:j + self.max_batch])
                    losses.append(self.loss_fn(out, None if lab is None else lab[j:j + self.max_batch]))
                loss = torch.cat(losses).view(m, 2 * S).to(x.dtype)
                diff = loss[:, :S] - loss[:, S:]                       # (m, S)
                g = torch.einsum("ms,ms...->m...", diff, u) / (2 * self.sigma * S)
                grads.append(g)
        return torch.cat(grads)


class NES(NESGradient, PGD):
    """Query-based PGD: :class:`~nascore.attacks.pgd.PGD` (same loop, targets, success rules,
    early stopping, restarts) with the gradient replaced by the antithetic NES estimate of
    :class:`NESGradient` (Ilyas et al., 2018).

    ``NES(sigma=1e-3, samples=50, max_batch=4096, **pgd_kwargs)``; ``result.queries`` ``(N,)``
    counts model queries per sample (module docstring).
    """

    name = "nes"


def artifact_nes(**overrides: Any) -> NES:
    """The artifact's black-box option, as we read it (never scripted; paper use unverified).

    ``--grad_method nes --query_num 100 --sigma 1e-3`` with the code comment's
    ``--stop_threshold 0.0 --target_idx 1``: L∞, eps 8/255, step 2/255, 7 steps, NES with 50
    antithetic pairs (100 queries per step) and ``sigma = 1e-3``, targeted at the runner-up class
    of the clean prediction; with ``require_class`` a 0.0 probability threshold reduces to
    ``argmax == target``. Early stop per sample, so ``queries`` give ASR at any query budget.
    """
    cfg: dict[str, Any] = dict(norm="linf", eps=8 / 255, alpha=2 / 255, steps=7,
                               random_start=False, restarts=0, targeted=True, target="runner_up",
                               success_fn=hits_target, early_stop=True, sigma=1e-3, samples=50)
    cfg.update(overrides)
    return NES(**cfg)
