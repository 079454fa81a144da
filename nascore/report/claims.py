"""The papers' claims: the one place in the project where they live.

Every verdict in the book compares a measured statistic with a :class:`Claim` from this table;
no notebook types a paper number in by hand (GUIDE.md, "Honesty").

Sources (see ``shared/protocol/``):

* **automl-security** — Pang et al., "On the Security Risks of AutoML", USENIX Security 2022
  (arXiv 2110.06018). Only the abstract/introduction of the paper were available; the sizes come
  from the **artifact appendix** (protocol ``automl-security.md`` §6, "Expected results", CIFAR-10,
  NAS relative to manual). Figure/table numbers are the appendix's.
* **deepsloth** — Hong et al., "A Panda? No, It's a Sloth: Slowdown Attacks on Adaptive
  Multi-Exit Neural Network Inference", ICLR 2021 (arXiv 2010.02432); protocol ``deepsloth.md``.

Evidence tags (field ``evidence``; a claim may carry several):

=============  =====================================================================================
``appendix``   the authors' artifact appendix states the expectation (automl-security §6)
``artifact``   read in / implied by the authors' artifact code or scripts
``P``          stated in the paper's abstract (checked)
``A``          computed from artifacts the authors committed
``C``          read in the authors' code
``M``          recalled from the paper body, **not checked**: ``Claim.unverified`` is True and the
               claim must be printed as provisional, never as "the paper's number"
``extension``  this project's addition (the paper does not measure it)
=============  =====================================================================================

Sign conventions. ``statistic`` is what a chapter measures, ``comparison`` says which difference
it is (e.g. ``"NAS − manual"``: group a minus group b, one value per model), and ``direction``
is the sign of ``statistic − null`` that the claim predicts (``null`` is 0 for differences, 1 for
ratios). ``expected ± tolerance`` is the claimed size in the statistic's units, when the source
gives one. Mitigation claims (``comparison = "mitigation − DARTS-V2"``) also set
``manual_like``: the sign that means "behaves more like the manual models".
Informational claims (``direction is None``) are level statements (e.g. clean accuracy 96–97 %),
judged by overlap with the claimed band only.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Literal, Mapping

import pandas as pd

Direction = Literal["greater", "less"]

PAPERS: Mapping[str, str] = MappingProxyType({
    "automl-security": "Pang et al., On the Security Risks of AutoML, USENIX Security 2022 "
                       "(arXiv 2110.06018); expectations from the artifact appendix",
    "deepsloth": "Hong et al., A Panda? No, It's a Sloth: Slowdown Attacks on Adaptive "
                 "Multi-Exit Neural Network Inference, ICLR 2021 (arXiv 2010.02432)",
})

EVIDENCE_TAGS: Mapping[str, str] = MappingProxyType({
    "appendix": "stated in the authors' artifact appendix",
    "artifact": "read in or implied by the authors' artifact code/scripts",
    "P": "stated in the paper's abstract (checked)",
    "A": "computed from artifacts the authors committed",
    "C": "read in the authors' code",
    "M": "recalled from the paper body, NOT checked (provisional)",
    "extension": "this project's addition, not measured in the paper",
})


@dataclass(frozen=True)
class Claim:
    """One claim of a paper, in a form a measured statistic can be checked against.

    Attributes
    ----------
    id : stable identifier used by notebooks, ``"<area>.<what>"``.
    paper : key of :data:`PAPERS`.
    statement : the claim in words.
    statistic : what is measured, with units, e.g. ``"NAS − manual targeted-PGD ASR (pp)"``.
    direction : ``"greater"`` / ``"less"``: predicted sign of ``statistic − null``;
        ``None`` for informational level claims.
    expected, tolerance : claimed size ``expected ± tolerance`` in the statistic's units
        (``None`` where the source gives only a direction; ``tolerance=None`` with an
        ``expected`` means a point value).
    source : figure/table/section of the source.
    note : caveats (scale, ambiguity, what is this project's choice).
    evidence : tuple of :data:`EVIDENCE_TAGS` keys.
    comparison : the difference the statistic is, ``"a − b"`` (e.g. ``"NAS − manual"``).
    null : value of the statistic meaning "no effect" (0 for differences, 1 for ratios).
    manual_like : for mitigation claims, the sign of the statistic that means "more like the
        manual models" (equal to ``direction``); ``None`` otherwise.
    """

    id: str
    paper: str
    statement: str
    statistic: str
    direction: Direction | None
    expected: float | None
    tolerance: float | None
    source: str
    note: str = ""
    evidence: tuple[str, ...] = ("appendix",)
    comparison: str = "NAS − manual"
    null: float = 0.0
    manual_like: Direction | None = None

    def __post_init__(self) -> None:
        if self.paper not in PAPERS:
            raise ValueError(f"claim {self.id!r}: unknown paper {self.paper!r}; valid: {sorted(PAPERS)}")
        if self.direction not in ("greater", "less", None):
            raise ValueError(f"claim {self.id!r}: direction must be 'greater', 'less' or None, "
                             f"got {self.direction!r}")
        if self.manual_like not in ("greater", "less", None):
            raise ValueError(f"claim {self.id!r}: manual_like must be 'greater', 'less' or None")
        bad = [t for t in self.evidence if t not in EVIDENCE_TAGS]
        if bad or not self.evidence:
            raise ValueError(f"claim {self.id!r}: bad evidence tags {bad}; valid: {list(EVIDENCE_TAGS)}")
        if self.direction is None and self.expected is None:
            raise ValueError(f"claim {self.id!r}: an informational claim (direction None) needs expected")
        if self.tolerance is not None:
            if self.expected is None:
                raise ValueError(f"claim {self.id!r}: tolerance given without expected")
            if self.tolerance < 0:
                raise ValueError(f"claim {self.id!r}: tolerance must be >= 0")
        if self.direction is not None and self.expected is not None:
            side = self.expected - self.null
            if (self.direction == "greater" and side <= 0) or (self.direction == "less" and side >= 0):
                raise ValueError(f"claim {self.id!r}: expected {self.expected} is not on the "
                                 f"{self.direction} side of null {self.null}")

    @property
    def informational(self) -> bool:
        """True for level statements judged by band overlap only (no direction test)."""
        return self.direction is None

    @property
    def has_size(self) -> bool:
        return self.expected is not None

    @property
    def claimed_interval(self) -> tuple[float, float] | None:
        """``(expected − tolerance, expected + tolerance)``; a point if tolerance is None."""
        if self.expected is None:
            return None
        tol = self.tolerance or 0.0
        return (self.expected - tol, self.expected + tol)

    @property
    def unverified(self) -> bool:
        """True if any part rests on an [M] (recalled, unchecked) source."""
        return "M" in self.evidence

    @property
    def groups(self) -> tuple[str, str]:
        """The two sides of :attr:`comparison`, e.g. ``("NAS", "manual")``."""
        a, _, b = self.comparison.partition(" − ")
        return a.strip(), b.strip()

    def claimed_text(self) -> str:
        """Short human text for the claim's size/direction, e.g. ``"+10 ± 4"`` or ``"< 0"``."""
        if self.expected is not None:
            sign = "+" if not self.informational and self.null == 0 else ""
            txt = f"{self.expected:{sign}g}"
            if self.tolerance:
                txt += f" ± {self.tolerance:g}"
            return txt
        return f"{'>' if self.direction == 'greater' else '<'} {self.null:g}"


_CLAIMS: tuple[Claim, ...] = (
    # ---------------------------------------------------------------- automl-security: zoo
    Claim(id="zoo.clean_accuracy", paper="automl-security",
       statement="Most models reach 96–97 % clean CIFAR-10 test accuracy at full scale.",
       statistic="clean CIFAR-10 test accuracy per model (%)", direction=None,
       expected=96.5, tolerance=0.5, source="Table 1 (appendix §6; per-model values not found)",
       note="Informational: holds for the full 200-epoch recipe only; reduced profiles are expected "
            "to fall short and say so.", comparison="level"),
    Claim(id="zoo.early_convergence", paper="automl-security",
       statement="NAS models converge faster early in training (the search favours architectures "
                 "whose loss drops fastest early).",
       statistic="NAS − manual early-training speed (e.g. area under the test-accuracy curve over "
                 "the first epochs, normalised by the epoch span; pp)",
       direction="greater", expected=None, tolerance=None,
       source="protocol §5.4 (fast-convergence argument)",
       note="The authors argue it; the artifact runs no such check. The measurement (per-epoch "
            "accuracy over the first 10–20 epochs) is this project's.",
       evidence=("artifact", "extension")),
    # ---------------------------------------------------------------- evasion
    Claim(id="evasion.pgd_asr", paper="automl-security",
       statement="NAS models are more vulnerable to adversarial evasion: targeted PGD succeeds "
                 "more often.",
       statistic="NAS − manual targeted-PGD ASR (percentage points)", direction="greater",
       expected=10.0, tolerance=4.0, source="Fig. 2 (appendix §6)",
       note="Least-likely-class target, L_inf 8/255, step 2/255, 7 steps, 1,000 correctly "
            "classified test images (protocol §4.1)."),
    Claim(id="evasion.robustness", paper="automl-security",
       statement="NAS models have lower robust accuracy under untargeted PGD (and a lower area "
                 "under the accuracy-vs-ε curve).",
       statistic="NAS − manual robust accuracy under untargeted PGD (pp), or AUC of accuracy vs ε",
       direction="less", expected=None, tolerance=None,
       source="this project's extension of Fig. 2",
       note="Not in the paper or artifact (which only run targeted PGD at the default budget).",
       evidence=("extension",)),
    # ---------------------------------------------------------------- poisoning / backdoor
    Claim(id="poisoning.acc_drop", paper="automl-security",
       statement="NAS models lose less clean accuracy under random-label poisoning "
                 "(they are *more* robust to it).",
       statistic="NAS − manual clean-accuracy drop acc(0 %) − acc(p) (percentage points)",
       direction="less", expected=-5.0, tolerance=2.0, source="Fig. 6 (appendix §6)",
       note="The appendix gives no poisoning rate for the size; chapters state the rate "
            "(p ∈ {10, 20, 40} %). The abstract's 'more vulnerable to model poisoning' most likely "
            "means backdoor-style poisoning (protocol §6)."),
    Claim(id="backdoor.asr", paper="automl-security",
       statement="Backdoor (BadNet) attacks succeed more often on NAS models.",
       statistic="NAS − manual backdoor ASR (percentage points)", direction="greater",
       expected=2.0, tolerance=1.0, source="Fig. 7 (appendix §6)",
       note="ASR counts target-class images too (artifact quirk, protocol §4.3)."),
    Claim(id="backdoor.cad", paper="automl-security",
       statement="Backdoor injection costs NAS models less clean accuracy.",
       statistic="NAS − manual clean-accuracy drop after backdoor fine-tuning, CAD (pp)",
       direction="less", expected=-1.0, tolerance=1.0, source="Fig. 7 (appendix §6)",
       note="The claimed band [−2, 0] touches 0."),
    # ---------------------------------------------------------------- extraction / membership
    Claim(id="extraction.ce", paper="automl-security",
       statement="NAS models are easier to steal: the extracted model's cross entropy to the "
                 "victim is lower.",
       statistic="NAS − manual extraction CE H(p_victim, q_thief) on the test set (nats)",
       direction="less", expected=-0.3, tolerance=0.1, source="Fig. 9 (appendix §6)",
       note="KnockoffNets, same-architecture thief; the query budget is a chapter parameter."),
    Claim(id="membership.auc", paper="automl-security",
       statement="Membership inference works better against NAS models.",
       statistic="NAS − manual membership-inference ROC AUC (folded to ≥ 0.5)",
       direction="greater", expected=0.04, tolerance=0.01, source="Fig. 10 (appendix §6)",
       note="Label-only HopSkipJump boundary distance, 50 vs 50 (protocol §4.5)."),
    # ---------------------------------------------------------------- smoothness
    Claim(id="smoothness.grad_var", paper="automl-security",
       statement="NAS models have lower gradient variance.",
       statistic="NAS − manual gradient variance GV = Σ_j std_j of per-sample loss gradients "
                 "(untrained nets, 512 images)",
       direction="less", expected=-2.2, tolerance=0.5,
       source="Fig. 12 (appendix §6; protocol §5.1)",
       note="GV's absolute size scales with parameter count, so the size check is meaningful "
            "only at paper scale (C=36, 20 cells, full-width manual models)."),
    Claim(id="smoothness.flatness", paper="automl-security",
       statement="NAS loss surfaces are smoother/flatter.",
       statistic="NAS − manual sharpness (mean loss increase over the Eq. 12 contour grid, or "
                 "top Hessian eigenvalue of the test loss)",
       direction="less", expected=None, tolerance=None,
       source="loss contours, paper Eq. 12 (protocol §5.2–5.3)",
       note="The artifact shows contours only; any scalar sharpness and in particular the top "
            "Hessian eigenvalue are this project's addition.",
       evidence=("artifact", "extension")),
    # ---------------------------------------------------------------- mitigation
    Claim(id="mitigation.more_manual_like", paper="automl-security",
       statement="Deeper cells and fewer skips (DARTS-i, DARTS-iii) make DARTS more manual-like: "
                 "harder to steal (extraction CE higher by about 0.5).",
       statistic="mitigation − DARTS-V2 extraction CE (nats)",
       direction="greater", expected=0.5, tolerance=None,
       source="Table 4, Figs. 16–17 (appendix §6)",
       note="Headline mitigation claim (the extraction half); the poisoning half is "
            "mitigation.poison_drop. No tolerance is given ('about 0.5'), so the size check "
            "asks whether the CI contains 0.5.",
       comparison="mitigation − DARTS-V2", manual_like="greater"),
    Claim(id="mitigation.poison_drop", paper="automl-security",
       statement="Deeper cells and fewer skips make DARTS lose more accuracy under 40 % "
                 "random-label poisoning, like manual models.",
       statistic="mitigation − DARTS-V2 clean-accuracy drop at 40 % poisoning (pp)",
       direction="greater", expected=7.0, tolerance=3.0,
       source="Table 4, Figs. 16–17 (appendix §6)",
       note="No poisoning script exists for the mitigations; poison.sh is reused (protocol §5.5).",
       comparison="mitigation − DARTS-V2", manual_like="greater"),
    Claim(id="mitigation.evasion_manual_like", paper="automl-security",
       statement="Deeper cells and fewer skips make DARTS behave more like manual models, which "
                 "the paper finds less vulnerable to targeted PGD (Fig. 2): a lower ASR.",
       statistic="mitigation − DARTS-V2 targeted-PGD ASR (percentage points)",
       direction="less", expected=None, tolerance=None,
       source="Sec. 5 mitigation argument applied to Fig. 2 (this project's extension of Table 4)",
       note="The paper's Table 4 covers backdoor, extraction and poisoning; evasion is this "
            "project's extension. Direction only.",
       evidence=("artifact", "extension"),
       comparison="mitigation − DARTS-V2", manual_like="less"),
    Claim(id="mitigation.grad_var_manual_like", paper="automl-security",
       statement="Deeper cells and fewer skips make DARTS more manual-like in gradient variance, "
                 "which the paper finds higher for manual models (Fig. 12).",
       statistic="mitigation − DARTS-V2 gradient variance at initialisation",
       direction="greater", expected=None, tolerance=None,
       source="Sec. 5 mitigation argument applied to Fig. 12 (this project's extension)",
       note="Direction only; GV sums over parameters, so it also grows with the parameter count.",
       evidence=("artifact", "extension"),
       comparison="mitigation − DARTS-V2", manual_like="greater"),
    # ---------------------------------------------------------------- deepsloth
    Claim(id="deepsloth.efficacy_reduction", paper="deepsloth",
       statement="White-box per-sample DeepSloth reduces early-exit efficacy by 90–100 %, "
                 "erasing the computational savings.",
       statistic="relative efficacy reduction 1 − η_attacked/η_clean (fraction)",
       direction="greater", expected=0.95, tolerance=0.05, source="abstract; protocol §6",
       note="Acceptance band: η_attacked ≤ 0.1·η_clean for VGG-16/ResNet-56/MobileNet, "
            "CIFAR-10, RAD<5 % and RAD<15 %.",
       evidence=("P",), comparison="1 − attacked/clean"),
    Claim(id="deepsloth.latency_amplification", paper="deepsloth",
       statement="In a typical edge–cloud (IoT) deployment DeepSloth amplifies latency 1.5–5×.",
       statistic="mean latency on DeepSloth inputs / mean latency on clean inputs (ratio)",
       direction="greater", expected=3.25, tolerance=1.75, null=1.0,
       source="abstract; protocol §4 (edge–cloud)",
       note="Device/cloud throughput, split point and link are [M] details and notebook "
            "parameters; the band depends on them.",
       evidence=("P",), comparison="attacked / clean"),
    Claim(id="deepsloth.universal_effective", paper="deepsloth",
       statement="Universal (input-agnostic, reusable) DeepSloth perturbations also slow "
                 "multi-exit networks down.",
       statistic="relative efficacy reduction of universal DeepSloth, 1 − η_attacked/η_clean "
                 "(fraction)",
       direction="greater", expected=None, tolerance=None, source="abstract; protocol §6",
       note="'Substantially' per the acceptance bands; no size given.",
       evidence=("P",), comparison="1 − attacked/clean"),
    Claim(id="deepsloth.universal_weaker", paper="deepsloth",
       statement="The universal attack is weaker than the per-sample attack.",
       statistic="per-sample − universal relative efficacy reduction (fraction, paired by model)",
       direction="greater", expected=None, tolerance=None, source="paper body (protocol §6)",
       note="UNVERIFIED [M]: recalled from the paper body, not checked against the PDF.",
       evidence=("M",), comparison="per-sample − universal"),
    Claim(id="deepsloth.pgd_not_slowdown", paper="deepsloth",
       statement="Accuracy-oriented attacks (PGD-20) do not cause a comparable slowdown; "
                 "DeepSloth is needed.",
       statistic="DeepSloth − PGD-20 relative efficacy reduction (fraction, paired by model)",
       direction="greater", expected=None, tolerance=None, source="paper body (protocol §3, §6)",
       note="UNVERIFIED [M]: the paper's message as recalled; PGD may even raise efficacy.",
       evidence=("M",), comparison="DeepSloth − PGD-20"),
    Claim(id="deepsloth.transfer", paper="deepsloth",
       statement="DeepSloth crafted on a surrogate remains effective in black-box settings "
                 "(20–50 % slowdown).",
       statistic="relative efficacy reduction on the victim from surrogate-crafted inputs (fraction)",
       direction="greater", expected=0.35, tolerance=0.15, source="abstract; protocol §4 (black-box)",
       note="Direction is [P]; the 20–50 % size comes from an interview with the authors and is "
            "UNVERIFIED [M].",
       evidence=("P", "M"), comparison="1 − attacked/clean"),
    Claim(id="deepsloth.at_limited", paper="deepsloth",
       statement="Adversarial training gives only limited protection: DeepSloth still slows "
                 "adversarially trained SDNs down.",
       statistic="relative efficacy reduction by DeepSloth re-crafted against the AT SDN (fraction)",
       direction="greater", expected=None, tolerance=None, source="abstract; protocol §5",
       note="The attacked efficacy of the AT models is not in the artifacts ([M]); no size.",
       evidence=("P",), comparison="1 − attacked/clean"),
    Claim(id="deepsloth.at_accuracy_cost", paper="deepsloth",
       statement="Adversarial training costs about 17 points of clean accuracy (VGG-16, CIFAR-10).",
       statistic="undefended − adversarially trained final-exit clean accuracy (pp)",
       direction="greater", expected=17.3, tolerance=0.5, source="committed pickles (protocol §5 table)",
       note="The five AT variants span 17.0–17.8 pp in the [A] pickles; the tolerance covers that "
            "spread (this project's choice).",
       evidence=("A",), comparison="undefended − AT"),
    Claim(id="deepsloth.accuracy_drop", paper="deepsloth",
       statement="Early-exit accuracy falls under DeepSloth as a side effect, although the final "
                 "exit is not targeted.",
       statistic="attacked − clean early-exit accuracy (pp)",
       direction="less", expected=None, tolerance=None, source="paper body (protocol §6)",
       note="UNVERIFIED [M]: check the table values in the PDF.",
       evidence=("M",), comparison="attacked − clean"),
    Claim(id="deepsloth.clean_efficacy_rad5", paper="deepsloth",
       statement="Clean VGG-16 SDN on CIFAR-10 at RAD<5 % (q = 0.80) has efficacy η ≈ 0.769.",
       statistic="clean early-exit efficacy η (area under the EEC curve)", direction=None,
       expected=0.769, tolerance=0.02, source="committed pickles (protocol §2, sanity anchors)",
       note="Informational sanity anchor for retrained SDNs; the ±0.02 tolerance is this "
            "project's choice.",
       evidence=("A",), comparison="level"),
    Claim(id="deepsloth.clean_efficacy_rad15", paper="deepsloth",
       statement="Clean VGG-16 SDN on CIFAR-10 at RAD<15 % (q = 0.60) has efficacy η ≈ 0.887.",
       statistic="clean early-exit efficacy η (area under the EEC curve)", direction=None,
       expected=0.887, tolerance=0.02, source="committed pickles (protocol §2, sanity anchors)",
       note="Informational sanity anchor for retrained SDNs; the ±0.02 tolerance is this "
            "project's choice.",
       evidence=("A",), comparison="level"),
)

CLAIMS: Mapping[str, Claim] = MappingProxyType({c.id: c for c in _CLAIMS})
assert len(CLAIMS) == len(_CLAIMS), "duplicate claim ids"


def get(claim_id: str | Claim) -> Claim:
    """The claim with this id (a :class:`Claim` is passed through).

    Raises ``KeyError`` naming the valid ids.
    """
    if isinstance(claim_id, Claim):
        return claim_id
    try:
        return CLAIMS[claim_id]
    except KeyError:
        raise KeyError(f"unknown claim id {claim_id!r}; valid ids: {', '.join(CLAIMS)}") from None


def all_claims(paper: str | None = None) -> tuple[Claim, ...]:
    """All claims in table order, optionally only one paper's (a :data:`PAPERS` key)."""
    if paper is not None and paper not in PAPERS:
        raise ValueError(f"unknown paper {paper!r}; valid: {sorted(PAPERS)}")
    return tuple(c for c in _CLAIMS if paper is None or c.paper == paper)


def claims_frame(paper: str | None = None) -> pd.DataFrame:
    """The claims table as a DataFrame indexed by id (one row per claim).

    Adds the derived columns ``claimed`` (text such as ``"+10 ± 4"``), ``informational`` and
    ``unverified``; ``evidence`` is joined into a comma-separated string.
    """
    rows = []
    for c in all_claims(paper):
        row = asdict(c)
        row["evidence"] = ", ".join(c.evidence)
        row["claimed"] = c.claimed_text()
        row["informational"] = c.informational
        row["unverified"] = c.unverified
        rows.append(row)
    return pd.DataFrame(rows).set_index("id")
