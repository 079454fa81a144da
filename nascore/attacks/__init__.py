"""Adversarial attacks with one calling convention: ``attack(model, x, y) -> AttackResult``.

An attack is a model-free configuration (see :mod:`nascore.attacks.base` for why), called on a
batch of [0,1] images ``(N, C, H, W)`` and labels ``(N,)``; budgets are in [0,1] pixel units.
The success rule is always the keyword ``success_fn``; the outcome is ``AttackResult.success``
(robust "at every step"; ``success_last_step`` is the last-iterate outcome, see
:mod:`nascore.attacks.result`).

* :class:`PGD` — white-box L∞/L2 PGD (Madry et al., 2018), targeted or not, restarts, per-sample
  early stopping; :func:`artifact_pgd` is the exact setting of Pang et al. (2022).
* :class:`NES` — the same loop with antithetic NES gradient estimates and exact query counts
  (Ilyas et al., 2018); :func:`artifact_nes`.
* :class:`Attack` — the base class later attacks (backdoor trigger search, DeepSloth) extend;
  :class:`NESGradient` turns any of them into a query-based variant (``class X(NESGradient, A)``).

Modules: :mod:`~nascore.attacks.base` (the loop), :mod:`~nascore.attacks.rules` (objectives and
success rules), :mod:`~nascore.attacks.geometry` (projections, steps), :mod:`~nascore.attacks.result`
(result, per-image table, ASR, mean iterations), :mod:`~nascore.attacks.evaluation` (batches,
evaluation set, robust accuracy), :mod:`~nascore.attacks.pgd`, :mod:`~nascore.attacks.nes`.
"""
from ..models.base import eval_mode
from .base import Attack
from .evaluation import attack_batches, evaluation_set, robust_accuracy
from .geometry import NORMS, project, project_l2, project_linf, random_start, step_direction
from .nes import NES, NESGradient, artifact_nes
from .pgd import PGD, TARGET_MODES, artifact_pgd
from .result import AttackResult, asr, asr_at_budget, mean_iterations
from .rules import confident_target, cross_entropy, hits_target, misclassified, never

__all__ = [
    "NORMS", "TARGET_MODES",
    "Attack", "AttackResult", "PGD", "NES", "NESGradient",
    "artifact_pgd", "artifact_nes",
    "attack_batches", "evaluation_set", "robust_accuracy", "asr", "asr_at_budget", "mean_iterations",
    "cross_entropy", "misclassified", "hits_target", "confident_target", "never",
    "eval_mode", "project", "project_linf", "project_l2", "random_start", "step_direction",
]
