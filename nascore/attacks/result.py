"""What every attack returns (:class:`AttackResult`), its per-image table, and the summary
statistics computed from it (ASR, ASR at a query budget, mean iterations).

Two meanings of "the attack succeeded"
--------------------------------------
An attack checks its success rule before every update step and after the last one. A sample
can meet the rule at an intermediate step and lose it again later (the objective keeps being
pushed, the step overshoots). So there are two outcomes per sample:

* ``success`` (alias ``success_any_step``): the rule held at **some** check — the sample is
  broken. Robust accuracy under this rule means *robust at every step*. This is what per-sample
  early stopping measures (the artifact of Pang et al., 2022, on trojanzoo), what
  :func:`asr` and :func:`mean_iterations` report by default, and **what the chapters use**.
* ``success_last_step``: the rule held at the point reached after all ``steps`` updates — the
  number other tools report for the same attack (e.g. torchattacks' PGD returns the last
  iterate). It is at most ``success`` per sample, so ASR(last step) ≤ ASR(any step); issue 9
  reports robust accuracy up to 4.7 points lower at every step than at the last step on the
  book's models. It is measured only by attacks run with ``early_stop=False`` (samples keep
  being updated after they first succeed) and is ``None`` otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Sequence

import torch

__all__ = ["AttackResult", "asr", "asr_at_budget", "mean_iterations"]


@dataclass
class AttackResult:
    """What every attack returns for a batch of ``N`` samples.

    Attributes
    ----------
    x_adv : Tensor ``(N, C, H, W)`` float in [0,1]
        The first point where the success rule held, else the final point (of the best run when
        restarting). The rule holds at ``x_adv[i]`` exactly when ``success[i]``.
    success : Tensor ``(N,)`` bool
        The rule held at some check ("any step"; see the module docstring). Also available as
        :attr:`success_any_step`.
    iterations : Tensor ``(N,)`` int64
        Update steps applied before the first success (0 = the starting point already met the
        rule); ``steps`` on failure, summed over restarts (a failure got ``steps·(1 + restarts)``).
    queries : Tensor ``(N,)`` int64 or None
        Model queries spent per sample (query-based attacks); ``None`` for white-box attacks.
    target : Tensor ``(N,)`` int64 or None
        The target class per sample for targeted attacks, else ``None``.
    success_last_step : Tensor ``(N,)`` bool or None
        The rule held after the last update step (``early_stop=False`` only, else ``None``).
    """

    x_adv: torch.Tensor
    success: torch.Tensor
    iterations: torch.Tensor
    queries: torch.Tensor | None = None
    target: torch.Tensor | None = None
    success_last_step: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.success)

    @property
    def success_any_step(self) -> torch.Tensor:
        """``success``, named for contrast with :attr:`success_last_step`."""
        return self.success

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

    def to_frame(self, index: Any = None, **columns: Any):
        """One row per image, a tidy :class:`pandas.DataFrame` that can be stored (CSV) and paired
        with another model's table on ``image`` (e.g. for McNemar's test on the same images).

        ``index`` ``(N,)`` gives each row's image id — e.g. the positions returned by
        :func:`~nascore.attacks.evaluation.evaluation_set`; default ``0..N-1``. Keyword
        ``columns`` are constants put first (``model="darts", seed=0``).

        Columns: ``*columns``, ``image``, ``success_any_step``, ``success_last_step`` (only if
        measured), ``iterations``, ``queries`` (query-based attacks), ``target`` (targeted).
        The adversarial images are not part of the table.
        """
        import pandas as pd

        n = len(self)
        image = torch.arange(n) if index is None else torch.as_tensor(index)
        if image.shape != (n,):
            raise ValueError(f"index must have shape ({n},) (one id per image), got {tuple(image.shape)}")
        table: dict[str, Any] = {k: [v] * n for k, v in columns.items()}
        table["image"] = image.cpu().long().numpy()
        table["success_any_step"] = self.success.cpu().numpy()
        if self.success_last_step is not None:
            table["success_last_step"] = self.success_last_step.cpu().numpy()
        table["iterations"] = self.iterations.cpu().numpy()
        if self.queries is not None:
            table["queries"] = self.queries.cpu().numpy()
        if self.target is not None:
            table["target"] = self.target.cpu().numpy()
        return pd.DataFrame(table)


def _outcome(result: AttackResult, last_step: bool) -> torch.Tensor:
    if not last_step:
        return result.success
    if result.success_last_step is None:
        raise ValueError("the last-step outcome was not measured: run the attack with early_stop=False")
    return result.success_last_step


def asr(result: AttackResult, last_step: bool = False) -> float:
    """Attack success rate: fraction of samples whose success rule held at some step (default)
    or, with ``last_step=True``, after the last step (needs ``early_stop=False``)."""
    success = _outcome(result, last_step)
    return float(success.float().mean()) if len(result) else float("nan")


def asr_at_budget(result: AttackResult, budgets: Sequence[int]) -> list[float]:
    """ASR when each sample may spend at most ``b`` model queries, for each ``b`` in ``budgets``:
    ``mean(success & queries <= b)``. Valid because early stopping records the queries spent at
    the moment of success (needs ``early_stop=True`` and a query-counting attack)."""
    if result.queries is None:
        raise ValueError("result has no query counts (white-box attack); use a query-based attack")
    return [float((result.success & (result.queries <= b)).float().mean()) for b in budgets]


def mean_iterations(result: AttackResult, fail_value: float | None = None) -> float:
    """Mean of ``result.iterations`` with each failure counted twice: ``2 ×`` the update steps the
    attack gave it (the artifact's rule, ``2 * steps`` — 14 for its 7-step PGD; with restarts
    ``2 * steps * (1 + restarts)``). ``fail_value`` replaces that by a fixed number."""
    if not len(result):
        return float("nan")
    it = result.iterations.to(torch.float64)
    penalty = 2 * it if fail_value is None else torch.full_like(it, float(fail_value))
    return float(torch.where(result.success, it, penalty).mean())
