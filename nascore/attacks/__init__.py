"""Adversarial attacks with one calling convention: ``attack(model, x, y) -> AttackResult``.

Calling convention
------------------
::

    attack = PGD(norm="linf", eps=8/255, alpha=2/255, steps=7)   # a configuration, no model
    result = attack(model, x, y)                                 # an AttackResult

An attack object is a *model-free configuration*; the model is an argument of the call. This
study runs one configuration against many models (7 manual + 10 NAS networks, multi-exit
variants of each), so binding the model at construction (the torchattacks way) would mean
rebuilding the attack per model. Model-free objects also make :func:`artifact_pgd`-style factories
possible, and ``config()`` gives a plain dict for a result row's provenance.

Two contracts
-------------
* **Evasion-time attacks** subclass :class:`Attack` (:mod:`.base`): PGD, NES, DeepSloth (ℓ∞/ℓ2/ℓ1),
  universal and class-universal DeepSloth, the multi-exit PGD baselines, DeepFool-UAP and
  HopSkipJump. Each is configured once, validated by :mod:`._util`, seeded in one place
  (``Attack._generator``), and called as ``attack(model, x, y)`` returning an
  :class:`AttackResult`. The projected iterative loop they share lives in :class:`IterativeAttack`
  (:mod:`.iterative`); the universal ones craft one perturbation through :class:`UniversalAttack`
  (:mod:`.universal`, ``craft(model, x) -> UniversalPerturbation``). ``tests/test_attack_contract.py``
  checks every evasion attack exported here (budget, [0,1] outputs, seeds, batch order).
* **Training-time attacks** (poisoning, backdoors, model extraction, membership reference models)
  change how a model is trained: each is a *training variant* (:mod:`.training`: ``config()``,
  ``inputs(train_x, train_y, seed)``, ``initial_state(name, profile, seed)``) that the model cache
  (:mod:`nascore.zoo`) or a chapter (:mod:`nascore.findings`) composes; no attack module imports
  the cache. Backdoors are also evaluated through their own ``stamp`` / ``asr`` interface.

Units and shapes
----------------
* ``x``: ``(N, C, H, W)`` images in [0,1] (float), or ``uint8`` in [0,255] (converted with
  ``/255``). Models map [0,1] images to their output with normalisation inside
  (:mod:`nascore.models.base`), so all perturbation and clipping happen in pixel space.
* ``y``: ``(N,)`` int64 true labels, or ``None`` for label-free objectives (DeepSloth).
* Budgets ``eps`` and step sizes ``alpha`` are in pixel units on the [0,1] scale
  (``eps=8/255`` means 8/255 of the full intensity range), per sample, for the chosen norm.
* The result (:class:`~nascore.attacks.result.AttackResult`) holds ``x_adv`` ``(N, C, H, W)``
  float in [0,1] with ``‖x_adv - x‖ ≤ eps``, and per-sample outcomes.

The success rule is always the keyword ``success_fn``; the outcome is ``AttackResult.success``
(broken at some step, i.e. robust accuracy means "robust at every step"); ``success_last_step``
is the last-iterate outcome other tools report (see :mod:`nascore.attacks.result`).

Attacks
-------
* :class:`PGD` — white-box L∞/L2 PGD (Madry et al., 2018), targeted or not, restarts, per-sample
  early stopping; :func:`artifact_pgd` is the exact setting of Pang et al. (2022).
* :class:`NES` — the same loop with antithetic NES gradient estimates and exact query counts
  (Ilyas et al., 2018); :func:`artifact_nes`. :class:`NESGradient` turns any
  :class:`IterativeAttack` into a query-based variant (``class X(NESGradient, A)``).
* DeepSloth (Hong et al., ICLR 2021) against multi-exit networks (:mod:`nascore.multiexit`):
  :class:`DeepSloth` (per-sample ℓ∞/ℓ2/ℓ1, an :class:`IterativeAttack`), :class:`UniversalDeepSloth`
  and :class:`ClassUniversalDeepSloth` (:mod:`.slowdown`, :mod:`.slowdown_universal`); the accuracy
  baselines :class:`ExitPGD` (PGD-20, PGD-avg, PGD-max) and :class:`DeepFoolUAP`. Labels are ignored
  where the attack uses none.
* :class:`HopSkipJump` — the label-only boundary distance (Chen et al., 2020) batched across samples,
  for membership inference (:mod:`.membership`, with score-based attacks and ROC metrics).
* Training variants: :class:`RandomLabelPoison` (:mod:`.poisoning`); :class:`BadNet`, :class:`TrojanNN`,
  :class:`LatentBackdoor`, :class:`IMC` injected by fine-tuning (:mod:`.backdoor`); the Knockoff-Nets
  thief :class:`ThiefVariant` with :func:`extraction_metrics` (:mod:`.extraction`, Orekondy et al., 2019).

Modules: :mod:`~nascore.attacks.base` (the contract), :mod:`~nascore.attacks.iterative` (the loop),
:mod:`~nascore.attacks.universal`, :mod:`~nascore.attacks.training`, :mod:`~nascore.attacks.rules`
(objectives and success rules), :mod:`~nascore.attacks.geometry` (projections, steps),
:mod:`~nascore.attacks.result` (result, per-image table, ASR, mean iterations),
:mod:`~nascore.attacks.evaluation` (batches, evaluation set, robust accuracy).
"""
from ..models.base import eval_mode
from .base import Attack
from .iterative import IterativeAttack
from .universal import UniversalAttack, UniversalPerturbation
from .evaluation import attack_batches, evaluation_set, robust_accuracy
from .geometry import NORMS, project, project_l2, project_linf, random_start, step_direction
from .nes import NES, NESGradient, artifact_nes
from .pgd import PGD, TARGET_MODES, artifact_pgd
from .result import AttackResult, asr, asr_at_budget, mean_iterations
from .rules import confident_target, cross_entropy, hits_target, misclassified, never
from .poisoning import RandomLabelPoison
from .backdoor import IMC, Backdoor, BadNet, LatentBackdoor, TrojanNN, make_attack
# DeepSloth (Hong et al., ICLR 2021): slowdown attacks on multi-exit networks and their baselines
from .deepfool_uap import DeepFoolUAP, deepfool
from .multiexit_pgd import PGD_MODES, ExitPGD, exit_cross_entropy
from .slowdown import SLOWDOWN_NORMS, DeepSloth, ic_confidence, sloth_loss
from .slowdown_universal import ClassUniversalDeepSloth, UniversalDeepSloth
from .extraction import MODES as EXTRACTION_MODES, ThiefVariant, extraction_metrics
from .membership import BoundaryResult, HopSkipJump, artifact_hopskipjump

__all__ = [
    "NORMS", "TARGET_MODES",
    "Attack", "IterativeAttack", "UniversalAttack", "AttackResult", "PGD", "NES", "NESGradient",
    "artifact_pgd", "artifact_nes",
    "attack_batches", "evaluation_set", "robust_accuracy", "asr", "asr_at_budget", "mean_iterations",
    "cross_entropy", "misclassified", "hits_target", "confident_target", "never",
    "eval_mode", "project", "project_linf", "project_l2", "random_start", "step_direction",
    "RandomLabelPoison", "Backdoor", "BadNet", "TrojanNN", "LatentBackdoor", "IMC", "make_attack",
    "SLOWDOWN_NORMS", "PGD_MODES", "DeepSloth", "UniversalDeepSloth", "UniversalPerturbation",
    "ClassUniversalDeepSloth",
    "ExitPGD", "DeepFoolUAP", "deepfool", "sloth_loss", "ic_confidence", "exit_cross_entropy",
]
__all__ += ["EXTRACTION_MODES", "ThiefVariant", "extraction_metrics", "HopSkipJump", "BoundaryResult",
            "artifact_hopskipjump"]
