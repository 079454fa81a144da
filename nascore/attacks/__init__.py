"""Adversarial attacks with one calling convention: ``attack(model, x, y) -> AttackResult``.

An attack is a model-free configuration (see :mod:`nascore.attacks.base` for why), called on a
batch of [0,1] images ``(N, C, H, W)`` and labels ``(N,)``; budgets are in [0,1] pixel units.

* :class:`PGD` — white-box L∞/L2 PGD (Madry et al., 2018), targeted or not, restarts, per-sample
  early stopping; :func:`artifact_pgd` is the exact setting of Pang et al. (2022).
* :class:`NES` — the same loop with antithetic NES gradient estimates and exact query counts
  (Ilyas et al., 2018); :func:`artifact_nes`.
* :class:`Attack` — the base class later attacks (backdoor trigger search, DeepSloth) extend;
  :class:`NESGradient` turns any of them into a query-based variant (``class X(NESGradient, A)``).
* :mod:`.extraction` — Knockoff Nets model extraction (Orekondy et al., 2019): the thief as a zoo
  :class:`ThiefVariant`, hard or soft labels, :func:`extraction_metrics`.
* :mod:`.membership` — membership inference: the label-only :class:`HopSkipJump` boundary
  distance (Chen et al., 2020) batched across samples, score-based attacks, ROC metrics.
"""
from .base import (
    NORMS,
    Attack,
    AttackResult,
    asr,
    asr_at_budget,
    attack_batches,
    confident_target,
    cross_entropy,
    eval_mode,
    hits_target,
    misclassified,
    never,
    project,
    project_l2,
    project_linf,
    step_direction,
)
from .nes import NES, NESGradient, artifact_nes
from .pgd import PGD, TARGET_MODES, artifact_pgd, evaluation_set, mean_iterations, robust_accuracy
from .extraction import MODES as EXTRACTION_MODES, ThiefVariant, extraction_metrics
from .membership import BoundaryResult, HopSkipJump, artifact_hopskipjump

__all__ = [
    "NORMS", "TARGET_MODES",
    "Attack", "AttackResult", "PGD", "NES", "NESGradient",
    "artifact_pgd", "artifact_nes",
    "attack_batches", "evaluation_set", "robust_accuracy", "asr", "asr_at_budget", "mean_iterations",
    "cross_entropy", "misclassified", "hits_target", "confident_target", "never",
    "eval_mode", "project", "project_linf", "project_l2", "step_direction",
]
__all__ += ["EXTRACTION_MODES", "ThiefVariant", "extraction_metrics", "HopSkipJump", "BoundaryResult",
            "artifact_hopskipjump"]
