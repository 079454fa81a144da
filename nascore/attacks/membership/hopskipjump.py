"""HopSkipJump, untargeted, batched across samples (Chen, Jordan & Wainwright, "HopSkipJumpAttack:
A Query-Efficient Decision-Based Attack", IEEE S&P 2020).

A decision-based attack: it sees only the predicted class. Starting from a misclassified point
it alternates (i) a binary search towards the original image, which lands just on the
adversarial side of the decision boundary, (ii) a Monte-Carlo estimate of the boundary's normal
from ``num_eval`` random probes around that point, and (iii) a geometric step along it. The
final distance to the original image is what the label-only membership attack of Pang et al.
(2022, protocol §4.5) scores: training images tend to sit further from the boundary.

The details follow the Adversarial Robustness Toolbox (ART ``HopSkipJump``, the artifact's
implementation) rather than the paper where the two differ: binary-search threshold
``θ = 0.01/√d`` (L2) or ``0.01/d`` (L∞) with ``d`` the input size, first probe radius
``δ = 0.1`` (``0.1·(clip_max − clip_min)``), then ``√d·θ·dist`` (L2) or ``d·θ·dist`` (L∞),
``num_eval = min(init_eval·√(t+1), max_eval)`` probes at iteration ``t``, step search from
``2·dist/√(t+1)`` halving until adversarial, initialisation by up to ``init_size`` uniform random
images followed by an L2 binary search with threshold 0.001, and, untargeted, the class to leave
is the model's own prediction on the clean image (ART ignores ``y`` in the untargeted case; here
``y`` may be passed to leave the true class instead). A sample without an adversarial initial
image keeps ``x_adv = x`` (distance 0, ``success`` False), as in ART. Defaults are the
artifact's budgets: L2, ``max_iter=10, max_eval=100, init_eval=25, init_size=50``.

Why not ART itself: ART attacks one sample at a time (a Python loop over samples, numpy
round-trips per query). Here every query of one step — all samples' binary-search midpoints, all
samples' ``num_eval`` probes, all samples' step candidates — goes through the model in one
batched forward pass (chunked to ``max_batch`` rows), and finished samples leave the batch.

Randomness: every sample draws from its own ``torch.Generator`` seeded by ``(seed, sample_id)``
(:func:`nascore.attacks._util.sample_generator`; a ``generator`` argument is refused), in the same order as it would alone. A sample's result therefore does not depend on which other
samples share its batch: the batched call and a loop over single samples give the same images
(``benchmarks/bench_hopskipjump.py`` checks this). The draws themselves are a short loop over
the samples of a step (no model query inside it).

Shapes and units: ``x`` ``(N, C, H, W)`` in [0,1] (or uint8), ``y`` ``(N,)`` or ``None``;
distances in [0,1] pixel units. Returns a :class:`BoundaryResult` with per-sample ``l2`` and
``linf`` distances ``‖x_adv − x‖`` and exact per-sample query counts (every image row sent
through the model, including the clean prediction when ``y`` is ``None``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
from torch import nn

from .._util import check_int, sample_generator
from ..base import Attack
from ..result import AttackResult

__all__ = ["HopSkipJump", "BoundaryResult", "artifact_hopskipjump"]


@dataclass
class BoundaryResult(AttackResult):
    """:class:`~nascore.attacks.AttackResult` plus the distances the membership attack scores.

    l2, linf : Tensor ``(N,)`` float — ``‖x_adv − x‖₂`` and ``‖x_adv − x‖∞`` (0 where no
        adversarial starting point was found).
    """

    l2: torch.Tensor | None = None
    linf: torch.Tensor | None = None

    @staticmethod
    def cat(results) -> "BoundaryResult":
        if not results:
            raise ValueError("BoundaryResult.cat needs at least one result")
        out = {}
        for f in fields(BoundaryResult):
            vals = [getattr(r, f.name) for r in results]
            out[f.name] = None if any(v is None for v in vals) else torch.cat(vals)
        return BoundaryResult(**out)


def _per_sample(v: torch.Tensor, ndim: int = 4) -> torch.Tensor:
    return v.view(-1, *([1] * (ndim - 1)))


class HopSkipJump(Attack):
    """Untargeted HopSkipJump (see the module docstring), batched across samples.

    An :class:`~nascore.attacks.base.Attack` without a budget (``eps = None``): it minimises the
    distance to the boundary in ``norm`` instead. ``attack(model, x, y=None, *, sample_ids=None)``
    returns a :class:`BoundaryResult`.

    Parameters
    ----------
    norm : {"l2", "linf"}
        Distance the attack minimises (the artifact: ``"l2"``).
    max_iter : int
        Boundary-walk iterations (the artifact: 10).
    max_eval, init_eval : int
        Probes for the gradient-direction estimate: ``min(init_eval·√(t+1), max_eval)`` at
        iteration ``t`` (the artifact: 100 and 25).
    init_size : int
        Uniform random images tried to find an adversarial starting point (the artifact: 50).
    seed : int
        Seed of the per-sample random streams.
    max_batch : int or None
        Most image rows per forward pass; does not change the results beyond float rounding.
        ``None``: 256 on the CPU, where larger batches fall out of the cache (DARTS C=8/5 cells,
        1 thread: 6.5–8 ms per image at 64–256 rows, 13 ms at 512–1,024, 45 ms for one image
        alone), 8,192 on a GPU.
    max_halvings : int
        Safety bound of the step-size search (ART loops until success; after 60 halvings the
        step is below float32 resolution, so the sample stays where it is, which is adversarial).
    """

    name = "hopskipjump"
    counts_queries = True

    def __init__(self, *, norm: str = "l2", max_iter: int = 10, max_eval: int = 100, init_eval: int = 25,
                 init_size: int = 50, seed: int = 0, max_batch: int | None = None, max_halvings: int = 60):
        super().__init__(norm=norm, eps=None, seed=check_int("seed", seed, 0))
        self.max_iter = check_int("max_iter", max_iter, 0)
        self.max_eval = check_int("max_eval", max_eval, 1)
        self.init_eval = check_int("init_eval", init_eval, 1)
        if init_eval > max_eval:
            raise ValueError(f"init_eval ({init_eval}) must be <= max_eval ({max_eval})")
        self.init_size = check_int("init_size", init_size, 1)
        self.max_batch = None if max_batch is None else check_int("max_batch", max_batch, 1)
        self.max_halvings = check_int("max_halvings", max_halvings, 1)

    def num_evals(self) -> list[int]:
        """Probes per iteration, ``min(init_eval·√(t+1), max_eval)`` for ``t < max_iter``."""
        return [min(int(self.init_eval * math.sqrt(t + 1)), self.max_eval) for t in range(self.max_iter)]

    # ------------------------------------------------------------------ entry point
    def _generator(self, device, generator):
        if generator is not None:
            raise ValueError("HopSkipJump draws one stream per sample from (seed, sample_id); pass sample_ids, "
                             "not a generator")
        return None

    def _attack(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, target=None,
                generator=None, *, sample_ids: torch.Tensor | None = None) -> BoundaryResult:
        """Attack ``x`` ``(N, C, H, W)``; ``y=None`` leaves the model's clean prediction (ART).

        ``sample_ids`` ``(N,)`` (default ``0..N-1``) name each sample's random stream, so a
        subset of a batch can be re-run alone with the same draws.
        """
        self._no_target(target)
        n, dev = x.shape[0], x.device
        ids = torch.arange(n) if sample_ids is None else torch.as_tensor(sample_ids).flatten()
        if len(ids) != n:
            raise ValueError(f"sample_ids must have {n} entries, got {len(ids)}")
        d = x[0].numel()
        self._theta = 0.01 / math.sqrt(d) if self.norm == "l2" else 0.01 / d
        self._rows = self.max_batch or (8192 if dev.type == "cuda" else 256)
        gens = [sample_generator(self.seed, int(i), dev) for i in ids.tolist()]
        queries = torch.zeros(n, dtype=torch.long, device=dev)
        with torch.no_grad():  # no_grad, not inference_mode: x_adv stays usable in autograd
            if y is None:
                label = self._predict(model, x)
                queries += 1
            else:
                label = y.to(device=dev, dtype=torch.long)
            x_adv = x.clone()
            found = self._initial_points(model, x, x_adv, label, gens, queries)
            idx = torch.nonzero(found).flatten()
            if idx.numel():
                x_adv[idx] = self._walk(model, x[idx], x_adv[idx], label[idx], idx, gens, queries)
        diff = (x_adv - x).flatten(1)
        return BoundaryResult(x_adv=x_adv, success=found,
                              iterations=torch.where(found, self.max_iter, 0).to(torch.long),
                              queries=queries, target=None,
                              l2=diff.norm(dim=1), linf=diff.abs().amax(dim=1))

    # ------------------------------------------------------------------ model access
    def _predict(self, model: nn.Module, rows: torch.Tensor) -> torch.Tensor:
        return torch.cat([model(rows[i:i + self._rows]).argmax(dim=1) for i in range(0, rows.shape[0], self._rows)])

    def _adversarial(self, model: nn.Module, rows: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """``argmax model(clip(rows)) != label`` per row (the untargeted criterion)."""
        return self._predict(model, rows.clamp(0.0, 1.0)) != label

    # ------------------------------------------------------------------ the algorithm
    def _initial_points(self, model, x, x_adv, label, gens, queries) -> torch.Tensor:
        """Up to ``init_size`` uniform random images per sample, the first misclassified one
        kept, then pulled towards ``x`` by an L2 binary search (threshold 0.001); in place."""
        found = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        todo = torch.arange(x.shape[0], device=x.device)
        for _ in range(self.init_size):
            cand = torch.stack([torch.rand(x.shape[1:], generator=gens[i], device=x.device, dtype=x.dtype) for i in todo.tolist()])
            ok = self._adversarial(model, cand, label[todo])
            queries[todo] += 1
            hit = todo[ok]
            x_adv[hit], found[hit] = cand[ok], True
            todo = todo[~ok]
            if todo.numel() == 0:
                break
        h = torch.nonzero(found).flatten()
        if h.numel():
            x_adv[h] = self._binary_search(model, x_adv[h], x[h], label[h], h, queries, "l2", threshold=0.001)
        return found

    def _walk(self, model, x0, cur, label, owner, gens, queries) -> torch.Tensor:
        d = x0[0].numel()
        for t, num_eval in enumerate(self.num_evals()):
            if t == 0:
                delta = torch.full((len(x0),), 0.1, device=x0.device)
            else:
                scale = math.sqrt(d) * self._theta if self.norm == "l2" else d * self._theta
                delta = scale * self._distance(x0, cur)
            cur = self._binary_search(model, cur, x0, label, owner, queries, self.norm)
            update = self._direction(model, cur, delta, num_eval, label, owner, gens, queries)
            eps = 2.0 * self._distance(x0, cur) / math.sqrt(t + 1)
            cur = self._step(model, cur, update, eps, label, owner, queries)
        return cur

    def _distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        diff = (a - b).flatten(1)
        return diff.norm(dim=1) if self.norm == "l2" else diff.abs().amax(dim=1)

    @staticmethod
    def _interpolate(cur: torch.Tensor, x0: torch.Tensor, alpha: torch.Tensor, norm: str) -> torch.Tensor:
        a = _per_sample(alpha.to(cur.dtype))
        if norm == "l2":
            return (1 - a) * x0 + a * cur
        return torch.maximum(torch.minimum(cur, x0 + a), x0 - a)

    def _binary_search(self, model, cur, x0, label, owner, queries, norm, threshold=None) -> torch.Tensor:
        """Per-sample bisection between ``x0`` (alpha 0) and the adversarial ``cur`` (alpha 1 in
        L2, the L∞ radius in L∞); returns the point at the adversarial end of the final bracket.
        Samples whose bracket is narrow enough leave the batch."""
        n, dev = cur.shape[0], cur.device
        lo = torch.zeros(n, dtype=torch.float64, device=dev)
        if norm == "l2":
            hi = torch.ones(n, dtype=torch.float64, device=dev)
            thr = torch.full((n,), self._theta if threshold is None else threshold, dtype=torch.float64, device=dev)
        else:
            hi = (x0 - cur).flatten(1).abs().amax(dim=1).double()
            thr = (torch.full((n,), threshold, dtype=torch.float64, device=dev) if threshold is not None
                   else (hi * self._theta).clamp(max=self._theta))
        while True:
            act = torch.nonzero(hi - lo > thr).flatten()
            if act.numel() == 0:
                break
            alpha = (hi[act] + lo[act]) / 2
            sat = self._adversarial(model, self._interpolate(cur[act], x0[act], alpha, norm), label[act])
            queries[owner[act]] += 1
            lo[act] = torch.where(sat, lo[act], alpha)
            hi[act] = torch.where(sat, alpha, hi[act])
        return self._interpolate(cur, x0, hi, norm)

    def _direction(self, model, cur, delta, num_eval, label, owner, gens, queries) -> torch.Tensor:
        """Monte-Carlo estimate of the boundary normal at ``cur`` from ``num_eval`` probes per
        sample (ART ``_compute_update``: baseline-subtracted ±1 votes), as a unit L2 vector
        or its sign (L∞). Samples are processed in chunks of about ``max_batch`` probe rows."""
        out = torch.empty_like(cur)
        per_chunk = max(1, self._rows // num_eval)
        shape = cur.shape[1:]
        ones = [1] * len(shape)
        for s in range(0, cur.shape[0], per_chunk):
            sl = slice(s, s + per_chunk)
            c, dl = cur[sl], _per_sample(delta[sl], 5)
            if self.norm == "l2":
                noise = torch.stack([torch.randn((num_eval, *shape), generator=gens[i], device=cur.device, dtype=cur.dtype)
                                     for i in owner[sl].tolist()])
            else:
                noise = torch.stack([torch.rand((num_eval, *shape), generator=gens[i], device=cur.device, dtype=cur.dtype) * 2 - 1
                                     for i in owner[sl].tolist()])
            noise = noise / noise.flatten(2).norm(dim=2).view(*noise.shape[:2], *ones)  # both norms: unit L2 (as ART)
            probes = (c[:, None] + dl * noise).clamp(0.0, 1.0)
            noise = (probes - c[:, None]) / dl
            votes = self._adversarial(model, probes.flatten(0, 1), label[sl].repeat_interleave(num_eval))
            queries[owner[sl]] += num_eval
            f = votes.view(-1, num_eval).to(cur.dtype) * 2 - 1
            fbar = f.mean(dim=1, keepdim=True)
            f = torch.where(fbar.abs() == 1, f, f - fbar)  # all-agree case: plain mean, as ART
            grad = (f.view(*f.shape, *ones) * noise).mean(dim=1)
            if self.norm == "l2":
                out[sl] = grad / _per_sample(grad.flatten(1).norm(dim=1).clamp_min(1e-30))
            else:
                out[sl] = grad.sign()
        return out

    def _step(self, model, cur, update, eps, label, owner, queries) -> torch.Tensor:
        """Geometric step-size search: halve ``eps`` per sample until ``cur + eps·update`` is
        adversarial; accepted points are clipped to [0,1]."""
        out = cur.clone()
        eps = eps.clone()
        todo = torch.arange(cur.shape[0], device=cur.device)
        for _ in range(self.max_halvings):
            eps[todo] /= 2
            cand = cur[todo] + _per_sample(eps[todo]) * update[todo]
            ok = self._adversarial(model, cand, label[todo])
            queries[owner[todo]] += 1
            out[todo[ok]] = cand[ok].clamp(0.0, 1.0)
            todo = todo[~ok]
            if todo.numel() == 0:
                break
        return out


def artifact_hopskipjump(seed: int = 0, **overrides) -> HopSkipJump:
    """The artifact's configuration (protocol §4.5; ``projects/membership.py``): untargeted,
    L2, ``max_iter=10, max_eval=100, init_eval=25, init_size=50``."""
    cfg = dict(norm="l2", max_iter=10, max_eval=100, init_eval=25, init_size=50, seed=seed)
    cfg.update(overrides)
    return HopSkipJump(**cfg)
