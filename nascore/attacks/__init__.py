"""Adversarial attacks with one calling convention: ``attack(model, x, y) -> AttackResult``.

An attack is a model-free configuration (see :mod:`nascore.attacks.base` for why), called on a
batch of [0,1] images ``(N, C, H, W)`` and labels ``(N,)``; budgets are in [0,1] pixel units.

* :class:`PGD` — white-box L∞/L2 PGD (Madry et al., 2018), targeted or not, restarts, per-sample
  early stopping; :func:`artifact_pgd` is the exact setting of Pang et al. (2022).
* :class:`NES` — the same loop with antithetic NES gradient estimates and exact query counts
  (Ilyas et al., 2018); :func:`artifact_nes`.
* :class:`Attack` — the base class later attacks (backdoor trigger search, DeepSloth) extend;
  :class:`NESGradient` turns any of them into a query-based variant (``class X(NESGradient, A)``).
* DeepSloth (Hong et al., ICLR 2021) against multi-exit networks (:mod:`nascore.multiexit`):
  :class:`DeepSloth` (per-sample ℓ∞/ℓ2/ℓ1), :class:`UniversalDeepSloth` and :func:`class_universal`
  (:mod:`.slowdown`, :mod:`.slowdown_universal`); the accuracy baselines :class:`ExitPGD` (PGD-20,
  PGD-avg, PGD-max) and :class:`DeepFoolUAP`. Labels are ignored where the attack uses none.
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
# DeepSloth (Hong et al., ICLR 2021): slowdown attacks on multi-exit networks and their baselines
from .deepfool_uap import DeepFoolUAP, deepfool
from .multiexit_pgd import PGD_MODES, ExitPGD, exit_cross_entropy
from .slowdown import SLOWDOWN_NORMS, DeepSloth, ic_confidence, sloth_loss
from .slowdown_universal import UniversalDeepSloth, UniversalPerturbation, class_universal

__all__ = [
    "NORMS", "TARGET_MODES",
    "Attack", "AttackResult", "PGD", "NES", "NESGradient",
    "artifact_pgd", "artifact_nes",
    "attack_batches", "evaluation_set", "robust_accuracy", "asr", "asr_at_budget", "mean_iterations",
    "cross_entropy", "misclassified", "hits_target", "confident_target", "never",
    "eval_mode", "project", "project_linf", "project_l2", "step_direction",
    "SLOWDOWN_NORMS", "PGD_MODES", "DeepSloth", "UniversalDeepSloth", "UniversalPerturbation", "class_universal",
    "ExitPGD", "DeepFoolUAP", "deepfool", "sloth_loss", "ic_confidence", "exit_cross_entropy",
]
