"""The registry of statistics a chapter may report: what each one is, in words and units.

Every verdict row names a statistic by its key. The registry says what one value of it is
(``description``), its ``units`` in words, the ``scale`` on which families are compared, the
raw ``column`` a chapter's table holds, an optional ``floor``/``ceiling`` (a comparison where every
value sits at the floor, or every value at the ceiling, is "not measurable at this scale"), and
the ``claim`` it is judged under. Whether it decides that claim is fixed by the claims table:
a statistic is **primary** for a claim when it is the claim's pre-registered ``primary``;
anywhere else it is **exploratory** and cannot carry the claim (:func:`role`).

Scales
------
``linear``  families are compared on the values as they are.
``log10``   on log10 of the ``column`` (values must be > 0): for quantities spanning orders of
            magnitude (gradient variance); differences are in log10 units (−1 = ten times smaller).
``rank``    on the ranks of the per-model values across all models compared (1 = smallest); the
            estimate is a difference of mean ranks, the permutation test on ranks is the
            Wilcoxon–Mann–Whitney test. For heavy-tailed statistics whose sign may vary.

A chapter needing a further *exploratory* statistic calls :func:`register` at import time of its
findings module; primary statistics are fixed in this file (pre-registration).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from .claim_types import Claim
from .claims import CLAIMS, get

SCALES = ("linear", "log10", "rank")
UNITS = ("percent", "percentage points", "nats", "log10 units", "fraction", "AUC", "ranks", "ratio",
         "iterations", "pixel units", "efficacy", "curvature")
_DIGITS = {"percent": 1, "percentage points": 1, "nats": 3, "log10 units": 2, "fraction": 3, "AUC": 3,
           "ranks": 1, "ratio": 2, "iterations": 2, "pixel units": 4, "efficacy": 3, "curvature": 3}


@dataclass(frozen=True)
class Statistic:
    """One statistic (see the module docstring for the fields' meaning).

    ``short`` is a compact label for table headers and axes (default: the key).
    ``also_under``: further claims under which it may be judged as exploratory.
    """

    key: str
    description: str
    units: str
    claim: str
    scale: str = "linear"
    column: str | None = None
    floor: float | None = None
    ceiling: float | None = None
    short: str = ""
    also_under: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(f"statistic {self.key!r}: scale {self.scale!r} not in {SCALES}")
        if self.units not in UNITS:
            raise ValueError(f"statistic {self.key!r}: units {self.units!r} not in {UNITS}")
        if self.floor is not None and self.ceiling is not None and self.floor >= self.ceiling:
            raise ValueError(f"statistic {self.key!r}: floor {self.floor} must be below ceiling {self.ceiling}")

    @property
    def source_column(self) -> str:
        """The column of a chapter's table that holds the raw values."""
        return self.column or self.key

    @property
    def compared_units(self) -> str:
        """Units of the compared quantity: ranks for rank scale, log10 units for log10 scale."""
        return {"rank": "ranks", "log10": "log10 units"}.get(self.scale, self.units)

    @property
    def difference_units(self) -> str:
        """Units of a difference of two values: percent becomes percentage points."""
        u = self.compared_units
        return "percentage points" if u == "percent" else u

    @property
    def label(self) -> str:
        return self.short or self.key

    def fmt(self, x: float, signed: bool = False) -> str:
        """``x`` with the number of decimals suited to the units ("—" for missing)."""
        if x is None or x != x:
            return "—"
        d = _DIGITS[self.compared_units]
        return (f"{x:+.{d}f}" if signed else f"{x:.{d}f}").replace("-", "−")


def _s(key, description, units, claim, **kw) -> Statistic:
    return Statistic(key=key, description=description, units=units, claim=claim, **kw)


_PCT = dict(floor=0.0, ceiling=100.0)
_RAD5 = "per-sample ℓ∞ DeepSloth (ε = 0.03125 = 8/256, the artifact's value; the paper's text says 8/255) at RAD<5 %"

_STATISTICS: tuple[Statistic, ...] = (
    # ---------------------------------------------------------------- zoo
    _s("test_acc", "clean CIFAR-10 test accuracy of the trained model (final epoch)", "percent",
       "zoo.clean_accuracy", short="clean accuracy (%)", **_PCT),
    _s("early_auc", "mean test accuracy over the first 30 % of the optimisation steps (normalised area under "
       "the within-epoch test-accuracy curve)", "percent", "zoo.early_convergence",
       short="early test accuracy (%)", **_PCT),
    _s("early_acc", "test accuracy at the end of the early window (30 % of the optimisation steps)", "percent",
       "zoo.early_convergence", short="accuracy at 30 % of steps (%)", **_PCT),
    _s("early_loss_drop", "drop of the training loss (augmented training batches, not test loss) from the first "
       "evaluation point to the end of the early window", "nats", "zoo.early_convergence",
       short="early training-loss drop (nats)"),
    # ---------------------------------------------------------------- evasion
    _s("pgd_asr", "success rate of the artifact's targeted PGD (least-likely target, L∞ 8/255, 7 steps; success "
       "= p(target) > 0.99 and argmax = target) on correctly classified test images", "percent",
       "evasion.pgd_asr", short="targeted-PGD ASR (%)", **_PCT),
    _s("pgd_asr_argmax", "success rate of the same targeted PGD counting argmax = target as success (no "
       "confidence threshold)", "percent", "evasion.pgd_asr", short="targeted-PGD ASR, argmax rule (%)", **_PCT),
    _s("pgd_asr_last_step", "success rate of the artifact's targeted PGD counted at the last of the 7 steps (what "
       "tools without early stopping report; an image that succeeded earlier and lost it again is not counted)",
       "percent", "evasion.pgd_asr", short="targeted-PGD ASR at the last step (%)", **_PCT),
    _s("pgd_mean_iter", "mean number of PGD iterations to success (failures counted as twice the step count)",
       "iterations", "evasion.pgd_asr", short="PGD iterations"),
    _s("linf_auc", "untargeted L∞ PGD robust accuracy averaged over the ε sweep (normalised area under robust "
       "accuracy vs ε, correctly classified test images)", "percent", "evasion.robustness",
       short="L∞ robust-accuracy AUC (%)", **_PCT),
    _s("linf_auc_last_step", "untargeted L∞ PGD robust accuracy at the last step, averaged over the ε sweep "
       "(normalised area under the curve)", "percent", "evasion.robustness",
       short="L∞ robust-accuracy AUC, last step (%)", **_PCT),
    _s("l2_auc", "untargeted L2 PGD robust accuracy averaged over the ε sweep (normalised area under the curve)",
       "percent", "evasion.robustness", short="L2 robust-accuracy AUC (%)", **_PCT),
    _s("linf_eps50", "L∞ budget at which untargeted robust accuracy falls to 50 %", "pixel units",
       "evasion.robustness", short="L∞ ε at 50 %"),
    _s("l2_eps50", "L2 budget at which untargeted robust accuracy falls to 50 %", "pixel units",
       "evasion.robustness", short="L2 ε at 50 %"),
    _s("nes_asr", "success rate of the black-box targeted NES attack (runner-up target, L∞ 8/255) at the "
       "largest query budget", "percent", "evasion.nes_asr", short="NES black-box ASR (%)", **_PCT),
    # ---------------------------------------------------------------- smoothness
    _s("log10_gv_init", "log10 of the gradient variance GV (sum over parameters of the std of per-sample, "
       "norm-clipped loss gradients over test images) of the untrained network at initialisation",
       "log10 units", "smoothness.grad_var", scale="log10", column="gv_init", short="log10 GV at init"),
    _s("gv_init_per_param", "log10 of GV per parameter of the untrained network", "log10 units",
       "smoothness.grad_var", scale="log10", column="gv_init_per_param", short="log10 GV/parameter at init"),
    _s("gv_clipped_frac_init", "fraction of per-sample gradients clipped at norm 5 (untrained network)", "fraction",
       "smoothness.grad_var", column="clipped_frac_init", floor=0.0, ceiling=1.0, short="clipped fraction at init"),
    _s("log10_gv_trained", "log10 of the gradient variance GV of the trained network (same images and clipping)",
       "log10 units", "smoothness.grad_var_trained", scale="log10", column="gv_trained", short="log10 GV trained"),
    _s("gv_per_param_trained", "log10 of GV per parameter of the trained network", "log10 units",
       "smoothness.grad_var_trained", scale="log10", column="gv_trained_per_param",
       short="log10 GV/parameter trained"),
    _s("gv_clipped_frac_trained", "fraction of per-sample gradients clipped at norm 5 (trained network)",
       "fraction", "smoothness.grad_var_trained", column="clipped_frac_trained", floor=0.0, ceiling=1.0,
       short="clipped fraction trained"),
    _s("contour_sharpness", "mean increase of the test loss over the Eq. 12 parameter-space contour grid "
       "(filter-normalised random directions, Li et al. 2018), compared by rank", "nats", "smoothness.flatness",
       scale="rank", short="contour sharpness (rank)"),
    _s("hessian_top_eig", "largest eigenvalue of the Hessian of the test loss (power iteration on test images), compared by rank",
       "curvature", "smoothness.hessian", scale="rank", column="top_eig", short="top Hessian eigenvalue (rank)"),
    _s("hessian_trace", "trace of the Hessian of the test loss (Hutchinson estimate on test images), compared by rank", "curvature",
       "smoothness.hessian", scale="rank", column="trace", short="Hessian trace (rank)"),
    # ---------------------------------------------------------------- poisoning
    _s("poison_acc_drop_40", "clean test accuracy of the model trained on clean labels minus that of the same "
       "model trained with 40 % random wrong labels (final epoch, same recipe)", "percentage points",
       "poisoning.acc_drop", short="accuracy drop at 40 % poison (pp)"),
    _s("poison_acc_drop_20", "clean-accuracy drop under 20 % random wrong labels (final epoch)",
       "percentage points", "poisoning.acc_drop", short="accuracy drop at 20 % poison (pp)"),
    _s("poison_acc_drop_10", "clean-accuracy drop under 10 % random wrong labels (final epoch)",
       "percentage points", "poisoning.acc_drop", short="accuracy drop at 10 % poison (pp)"),
    # ---------------------------------------------------------------- backdoor
    _s("badnet_asr", "BadNet success rate: share of all stamped test images (target-class images included, as "
       "the artifact counts) classified as the target class, at the pre-registered fixed epoch (the profile's "
       "last fine-tuning epoch)", "percent", "backdoor.asr", short="BadNet ASR (%)", **_PCT),
    _s("badnet_asr_standard", "BadNet success rate on stamped test images of the non-target classes only "
       "(fixed epoch)", "percent", "backdoor.asr", short="BadNet ASR, target class excluded (%)", **_PCT),
    _s("badnet_asr_selected", "BadNet success rate at the artifact's epoch selection (an epoch's ASR is set to 0 "
       "when it cost more than 3 points of clean accuracy)", "percent", "backdoor.asr",
       short="BadNet ASR, artifact's epoch rule (%)", **_PCT),
    _s("latent_asr", "latent-backdoor success rate (artifact counting, fixed epoch; never run by the artifact)",
       "percent", "backdoor.asr", short="latent backdoor ASR (%)", **_PCT),
    _s("imc_asr", "IMC success rate (artifact counting, fixed epoch; never run by the artifact)", "percent",
       "backdoor.asr", short="IMC ASR (%)", **_PCT),
    _s("badnet_cad", "clean-accuracy drop from BadNet injection: clean accuracy before minus after fine-tuning "
       "(fixed epoch)", "percentage points", "backdoor.cad", short="BadNet CAD (pp)"),
    _s("trojannn_asr", "TrojanNN success rate (BadNet with the trigger optimised toward the least-activated "
       "penultimate units; artifact counting, fixed epoch)", "percent", "backdoor.trojannn_asr",
       short="TrojanNN ASR (%)", **_PCT),
    _s("trojannn_cad", "clean-accuracy drop from TrojanNN injection (fixed epoch)",
       "percentage points", "backdoor.trojannn_cad", short="TrojanNN CAD (pp)"),
    # ---------------------------------------------------------------- extraction / membership
    _s("extraction_kl", "imitation part of the extraction cross entropy, KL(p_victim ‖ q_thief) = H(p_victim, "
       "q_thief) − H(p_victim), on the test set, of a freshly initialised same-architecture thief trained on the "
       "victim's hard labels (argmax, as the artifact's ART loss did) at the profile's largest query budget", "nats",
       "extraction.ce", floor=0.0, short="extraction KL (nats)"),
    _s("extraction_ce", "cross entropy H(p_victim, q_thief) on the test set (the artifact's number: the victim's "
       "entropy plus the KL), same thieves", "nats", "extraction.ce", floor=0.0, short="extraction CE (nats)"),
    _s("victim_entropy", "mean entropy H(p_victim) of the victim's softmax on the same test images: the part of "
       "the cross entropy the victim's confidence sets, whatever the thief does", "nats", "extraction.ce",
       floor=0.0, short="victim entropy (nats)"),
    _s("extraction_ce_soft", "the same cross entropy for a thief trained on the victim's probability vectors "
       "(soft labels, as the paper describes)", "nats", "extraction.ce", floor=0.0,
       short="extraction CE, soft labels (nats)"),
    _s("extraction_ce_at_budget", "extraction cross entropy (hard labels) at the query budget named in the "
       "row's setting", "nats", "extraction.ce", floor=0.0, short="extraction CE at budget (nats)"),
    _s("extraction_thief_acc", "test accuracy of the thief at the largest query budget", "percent",
       "extraction.ce", short="thief accuracy (%)", **_PCT),
    _s("extraction_agreement", "share of test images on which thief and victim predict the same class",
       "percent", "extraction.ce", short="thief–victim agreement (%)", **_PCT),
    _s("mia_boundary_auc", "ROC AUC of the label-only HopSkipJump boundary-distance attack, unfolded (score = L∞ "
       "distance to the boundary as the artifact computes it, members farther = above 0.5; members vs non-members "
       "drawn from one confidence band shared by every victim)", "AUC", "membership.auc", floor=0.0, ceiling=1.0,
       short="label-only MIA AUC"),
    _s("mia_boundary_auc_folded", "the same AUC folded to max(AUC, 1 − AUC), as the artifact reports it "
       "(direction-free, so it cannot say which side members lie on)", "AUC", "membership.auc", floor=0.5,
       ceiling=1.0, short="label-only MIA AUC, folded"),
    _s("mia_boundary_auc_random", "the same unfolded AUC against random non-members (the first test images of the "
       "pool, not confidence-matched): the control for the matching", "AUC", "membership.auc", floor=0.0,
       ceiling=1.0, short="label-only MIA AUC, random non-members"),
    _s("mia_boundary_auc_l2", "the same attack scored by the L2 distance it optimises (unfolded)", "AUC",
       "membership.auc", floor=0.0, ceiling=1.0, short="label-only MIA AUC, L2 score"),
    _s("mia_loss_auc", "ROC AUC of the loss-threshold membership attack (Yeom et al. 2018; lower loss = member)",
       "AUC", "membership.score_auc", ceiling=1.0, short="loss-threshold MIA AUC"),
    _s("mia_conf_auc", "ROC AUC of the confidence-threshold membership attack", "AUC", "membership.score_auc",
       ceiling=1.0, short="confidence MIA AUC"),
    _s("mia_entropy_auc", "ROC AUC of the prediction-entropy membership attack", "AUC", "membership.score_auc",
       ceiling=1.0, short="entropy MIA AUC"),
    _s("mia_lira_auc", "ROC AUC of the LiRA-style calibrated membership score", "AUC", "membership.score_auc",
       ceiling=1.0, short="LiRA MIA AUC"),
    _s("mia_loss_tpr_at_1fpr", "true-positive rate of the loss-threshold attack at 1 % false positives",
       "percent", "membership.score_auc", short="loss MIA TPR @ 1 % FPR (%)", **_PCT),
    _s("mia_loss_tpr_at_01fpr", "true-positive rate of the loss-threshold attack at 0.1 % false positives",
       "percent", "membership.score_auc", short="loss MIA TPR @ 0.1 % FPR (%)", **_PCT),
    # ---------------------------------------------------------------- deepsloth
    _s("sloth_linf_min_reduction", "smallest over backbones of the relative early-exit efficacy reduction "
       f"1 − η_attacked/η_clean under {_RAD5}", "fraction", "deepsloth.efficacy_reduction",
       short="min efficacy reduction, ℓ∞"),
    _s("sloth_linf_min_reduction_rad15", "the same reduction at RAD<15 %", "fraction",
       "deepsloth.efficacy_reduction", short="min efficacy reduction, ℓ∞, RAD<15 %"),
    _s("sloth_l2_min_reduction", "smallest per-backbone efficacy reduction under per-sample ℓ2 DeepSloth "
       "(RAD<5 %)", "fraction", "deepsloth.efficacy_reduction", short="min efficacy reduction, ℓ2"),
    _s("sloth_l1_min_reduction", "smallest per-backbone efficacy reduction under per-sample ℓ1 DeepSloth "
       "(RAD<5 %)", "fraction", "deepsloth.efficacy_reduction", short="min efficacy reduction, ℓ1"),
    _s("sloth_universal_min_reduction", "smallest per-backbone efficacy reduction under universal ℓ∞ DeepSloth "
       "(one perturbation for all images, RAD<5 %)", "fraction", "deepsloth.universal_effective",
       short="min efficacy reduction, universal"),
    _s("sloth_class_universal_min_reduction", "smallest per-backbone efficacy reduction under class-universal "
       "ℓ∞ DeepSloth (RAD<5 %)", "fraction", "deepsloth.universal_effective",
       short="min efficacy reduction, class-universal"),
    _s("sloth_persample_minus_universal", "smallest over backbones of the per-sample minus the universal ℓ∞ "
       "DeepSloth efficacy reduction (RAD<5 %)", "fraction", "deepsloth.universal_weaker",
       short="per-sample − universal reduction"),
    _s("sloth_minus_pgd_reduction", "smallest over backbones of the DeepSloth minus the PGD-20 efficacy "
       "reduction (RAD<5 %)", "fraction", "deepsloth.pgd_not_slowdown", short="DeepSloth − PGD-20 reduction"),
    _s("sloth_minus_baseline_reduction", "smallest over backbones of the DeepSloth minus a baseline attack's "
       "efficacy reduction (the baseline is named in the row's setting)", "fraction",
       "deepsloth.pgd_not_slowdown", short="DeepSloth − baseline reduction"),
    _s("sloth_ee_accuracy_change", f"largest over backbones of attacked − clean early-exit accuracy under {_RAD5}",
       "percentage points", "deepsloth.accuracy_drop", short="early-exit accuracy change (pp)"),
    _s("clean_efficacy_rad5", "clean early-exit efficacy η of the VGG-16 SDN on CIFAR-10 at RAD<5 %",
       "efficacy", "deepsloth.clean_efficacy_rad5", short="clean η, RAD<5 %"),
    _s("clean_efficacy_rad15", "clean early-exit efficacy η of the VGG-16 SDN on CIFAR-10 at RAD<15 %",
       "efficacy", "deepsloth.clean_efficacy_rad15", short="clean η, RAD<15 %"),
    _s("sloth_latency_ratio", "mean latency on DeepSloth inputs divided by mean latency on clean inputs "
       "(edge–cloud deployment model)", "ratio", "deepsloth.latency_amplification", short="latency ratio"),
    _s("sloth_cpu_latency_ratio", "median per-image wall-clock latency of early-exit inference on this CPU "
       "(batch 1, one thread), attacked / clean", "ratio", "deepsloth.latency_amplification",
       short="CPU latency ratio"),
    _s("sloth_transfer_min_reduction", "smallest per-victim efficacy reduction from DeepSloth inputs crafted on "
       "a surrogate SDN (RAD<5 %)", "fraction", "deepsloth.transfer", short="min transfer reduction"),
    _s("sloth_at_min_reduction", "smallest efficacy reduction by DeepSloth re-crafted against adversarially "
       "trained SDNs (RAD<5 %)", "fraction", "deepsloth.at_limited", short="min reduction vs AT SDN"),
    _s("at_accuracy_cost", "final-exit clean accuracy of the undefended minus the adversarially trained VGG-16",
       "percentage points", "deepsloth.at_accuracy_cost", short="AT accuracy cost (pp)"),
)



def _build_registry(stats: tuple[Statistic, ...]) -> dict[str, Statistic]:
    """``{key: statistic}``; raises on a duplicate key, a statistic judged under an unknown claim,
    or a claim whose pre-registered primary is not registered."""
    out: dict[str, Statistic] = {}
    for s in stats:
        if s.key in out:
            raise AssertionError(f"duplicate statistic {s.key!r}")
        for cid in (s.claim, *s.also_under):
            if cid not in CLAIMS:
                raise AssertionError(f"statistic {s.key!r}: unknown claim {cid!r}")
        out[s.key] = s
    for c in CLAIMS.values():
        if c.primary not in out:
            raise AssertionError(f"claim {c.id!r}: primary {c.primary!r} is not a registered statistic")
    return out


_REGISTRY: dict[str, Statistic] = _build_registry(_STATISTICS)
STATISTICS: Mapping[str, Statistic] = MappingProxyType(_REGISTRY)


def statistic(key: str | Statistic) -> Statistic:
    """The registered statistic ``key`` (a :class:`Statistic` is passed through).

    Raises ``KeyError`` naming the valid keys.
    """
    if isinstance(key, Statistic):
        return key
    try:
        return _REGISTRY[key]
    except KeyError:
        raise KeyError(f"unknown statistic {key!r}; registered: {', '.join(_REGISTRY)} "
                       f"(a chapter adds an exploratory one with nascore.report.statistics.register)") from None


def register(stat: Statistic) -> Statistic:
    """Add a chapter-specific **exploratory** statistic (call at import of a findings module).

    Re-registering an identical definition is a no-op; a different definition of an existing key
    raises. A registered statistic is primary only if a claim names it as ``primary``, which
    the claims table fixes in advance, so registration can never promote a statistic.
    """
    if stat.claim not in CLAIMS:
        raise ValueError(f"statistic {stat.key!r}: unknown claim {stat.claim!r}; valid: {', '.join(CLAIMS)}")
    old = _REGISTRY.get(stat.key)
    if old is not None and old != stat:
        raise ValueError(f"statistic {stat.key!r} is already registered differently: {old}")
    _REGISTRY[stat.key] = stat
    return stat


def role(claim: str | Claim, key: str | Statistic, subject: str = "") -> str:
    """``"primary"`` if ``key`` is ``claim``'s pre-registered primary statistic (and, for claims
    about named subjects such as DARTS-i/iii, ``subject`` is one of them), else ``"exploratory"``.

    Raises ``ValueError`` if the statistic does not belong under the claim at all (its home claim,
    a mitigation claim's NAS − manual counterpart, or ``also_under``).
    """
    c = get(claim)
    s = statistic(key)
    if c.primary == s.key:
        return "primary" if (not c.subjects or subject in c.subjects) else "exploratory"
    allowed = {s.claim, *s.also_under}
    if s.claim == c.id or c.id in allowed or (c.counterpart and c.counterpart == s.claim):
        return "exploratory"
    raise ValueError(f"statistic {s.key!r} measures claim {s.claim!r}, not {c.id!r}; judge it under its own "
                     f"claim (primary of {c.id!r}: {c.primary!r})")

