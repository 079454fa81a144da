"""The type of a paper's claim (:class:`Claim`) and the vocabularies it is validated against
(:data:`PAPERS`, :data:`EVIDENCE_TAGS`).

This module imports only :mod:`.gates` (the gate vocabulary) from :mod:`nascore.report`: the claims table
(:mod:`.claims_table`), the claims lookup (:mod:`.claims`) and the statistics registry
(:mod:`.statistics`) all build on it.

Sign conventions. ``comparison`` names the difference (``"NAS − manual"``: mean over NAS models
minus mean over manual models; ``"mitigation − DARTS-V2"``), ``direction`` the predicted sign of
``estimate − null`` (``null`` is 0 for differences, 1 for ratios, or a threshold such as 0.9 for
"reduces efficacy by 90–100 %"), ``expected ± tolerance`` the claimed size **in the primary
statistic's units**. Informational claims (``direction is None``) are level statements judged by
overlap with the claimed band. Mitigation claims set ``manual_like``: the sign of the difference
that means "more like the manual models" (it may be opposite to ``direction``: the deeper cells
lose *more* accuracy under poisoning, which moves them *away* from the manual models).
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, Mapping

Direction = Literal["greater", "less"]

PAPERS: Mapping[str, str] = MappingProxyType({
    "automl-security": "Pang et al., On the Security Risks of AutoML, USENIX Security 2022 "
                       "(arXiv 2110.06018)",
    "deepsloth": "Hong et al., A Panda? No, It's a Sloth: Slowdown Attacks on Adaptive "
                 "Multi-Exit Neural Network Inference, ICLR 2021 (arXiv 2010.02432)",
})

EVIDENCE_TAGS: Mapping[str, str] = MappingProxyType({
    "appendix": "stated in the authors' artifact appendix",
    "artifact": "read in or implied by the authors' artifact code/scripts",
    "F": "the paper's figure data (first author's plotting scripts, protocol §11)",
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
    id : ``"<area>.<what>"``, used by chapters and the scorecard.
    paper : key of :data:`PAPERS`.
    statement : the claim in words.
    primary : key of the pre-registered primary statistic (:mod:`.statistics`).
    direction : ``"greater"`` / ``"less"``: predicted sign of ``estimate − null``; ``None`` for
        informational level claims.
    expected, tolerance : claimed size ``expected ± tolerance`` in the primary's units (``None``
        where only a direction is claimed; ``tolerance=None`` with ``expected`` is a point value).
    source : figure/table/section of the source.
    note : caveats, provenance of the size, this project's choices.
    evidence : :data:`EVIDENCE_TAGS` keys.
    comparison : the difference the estimate is, e.g. ``"NAS − manual"``.
    null : the no-effect value (0 for differences, 1 for ratios, a threshold for band claims).
    manual_like : for mitigation claims, the sign of the difference meaning "more manual-like".
    subjects : for claims about named models (e.g. DARTS-i and DARTS-iii), the subjects whose
        primary rows decide the claim; rows about other subjects are exploratory.
    counterpart : for mitigation claims, the NAS − manual claim whose exploratory statistics
        may also be shown here.
    gates : keys of :data:`nascore.report.gates.GATES`, pre-registered beside ``primary``: the
        conditions under which the primary can measure the claim at a given scale (every gate must
        pass; ``()`` = only the statistic's floor/ceiling rule).
    """

    id: str
    paper: str
    statement: str
    primary: str
    direction: Direction | None
    expected: float | None
    tolerance: float | None
    source: str
    note: str = ""
    evidence: tuple[str, ...] = ("appendix",)
    comparison: str = "NAS − manual"
    null: float = 0.0
    manual_like: Direction | None = None
    subjects: tuple[str, ...] = ()
    counterpart: str = ""
    gates: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        def bad(msg):
            raise ValueError(f"claim {self.id!r}: {msg}")

        if self.paper not in PAPERS:
            bad(f"unknown paper {self.paper!r}; valid: {sorted(PAPERS)}")
        if self.direction not in ("greater", "less", None):
            bad(f"direction must be 'greater', 'less' or None, got {self.direction!r}")
        if self.manual_like not in ("greater", "less", None):
            bad(f"manual_like must be 'greater', 'less' or None, got {self.manual_like!r}")
        from .gates import GATES
        bad_gates = [g for g in self.gates if g not in GATES]
        if bad_gates:
            bad(f"unknown gate(s) {bad_gates}; valid: {', '.join(GATES)}")
        unknown = [t for t in self.evidence if t not in EVIDENCE_TAGS]
        if unknown or not self.evidence:
            bad(f"bad evidence tags {unknown}; valid: {list(EVIDENCE_TAGS)}")
        if self.direction is None and self.expected is None:
            bad("an informational claim (direction None) needs expected")
        if self.tolerance is not None:
            if self.expected is None:
                bad("tolerance given without expected")
            if self.tolerance < 0:
                bad("tolerance must be >= 0")
        if self.direction is not None and self.expected is not None:
            side = self.expected - self.null
            if (self.direction == "greater" and side <= 0) or (self.direction == "less" and side >= 0):
                bad(f"expected {self.expected} is not on the {self.direction} side of null {self.null}")

    @property
    def informational(self) -> bool:
        """True for level statements judged by band overlap only (no direction test)."""
        return self.direction is None

    @property
    def extension(self) -> bool:
        """True if the claim is this project's addition (the paper does not measure it)."""
        return "extension" in self.evidence

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
        """The claim's size or direction, e.g. ``"+10 ± 4"``, ``"> 0"``, ``"96.5 ± 0.5"``."""
        if self.expected is not None:
            sign = "+" if not self.informational and self.null == 0 else ""
            txt = f"{self.expected:{sign}g}".replace("-", "−")
            if self.tolerance:
                txt += f" ± {self.tolerance:g}"
            return txt
        return f"{'>' if self.direction == 'greater' else '<'} {self.null:g}"
