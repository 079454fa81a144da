"""The papers' claims: the one place in the project where they live.

Every verdict in the book compares a measured statistic with a :class:`Claim`; no notebook types a
paper number in by hand (GUIDE.md, "Honesty"). The table itself is in :mod:`.claims_table`.

Each claim **pre-registers one primary statistic** (``primary``, a key of
:mod:`nascore.report.statistics`): only that statistic decides the claim's verdict. Every other
statistic shown under the claim is exploratory (:func:`nascore.report.statistics.role`).

Sources (``shared/protocol/``):

* **automl-security** — Pang et al., "On the Security Risks of AutoML", USENIX Security 2022
  (arXiv 2110.06018). Sizes from the artifact appendix (protocol ``automl-security.md`` §6) and
  the paper's figure data (§11: the first author's plotting scripts, ``paper_values_cifar10.csv``).
* **deepsloth** — Hong et al., "A Panda? No, It's a Sloth", ICLR 2021 (arXiv 2010.02432);
  protocol ``deepsloth.md``.

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

from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Literal, Mapping

import pandas as pd

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

    def __post_init__(self) -> None:
        def bad(msg):
            raise ValueError(f"claim {self.id!r}: {msg}")

        if self.paper not in PAPERS:
            bad(f"unknown paper {self.paper!r}; valid: {sorted(PAPERS)}")
        if self.direction not in ("greater", "less", None):
            bad(f"direction must be 'greater', 'less' or None, got {self.direction!r}")
        if self.manual_like not in ("greater", "less", None):
            bad(f"manual_like must be 'greater', 'less' or None, got {self.manual_like!r}")
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

    @property
    def statistic(self) -> str:
        """The primary statistic described in words (from the registry)."""
        from .statistics import statistic

        return statistic(self.primary).description

    def claimed_text(self) -> str:
        """The claim's size or direction, e.g. ``"+10 ± 4"``, ``"> 0"``, ``"96.5 ± 0.5"``."""
        if self.expected is not None:
            sign = "+" if not self.informational and self.null == 0 else ""
            txt = f"{self.expected:{sign}g}".replace("-", "−")
            if self.tolerance:
                txt += f" ± {self.tolerance:g}"
            return txt
        return f"{'>' if self.direction == 'greater' else '<'} {self.null:g}"


def get(claim_id: str | Claim) -> Claim:
    """The claim with this id (a :class:`Claim` is passed through); ``KeyError`` lists the ids."""
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
    return tuple(c for c in CLAIM_TABLE if paper is None or c.paper == paper)


def claims_frame(paper: str | None = None) -> pd.DataFrame:
    """The claims table as a DataFrame indexed by id, with the derived columns ``claimed``,
    ``informational``, ``extension``, ``unverified`` and ``units`` (of the primary statistic)."""
    from .statistics import statistic

    rows = []
    for c in all_claims(paper):
        row = asdict(c)
        row["evidence"] = ", ".join(c.evidence)
        row["subjects"] = ", ".join(c.subjects)
        row["claimed"] = c.claimed_text()
        row["informational"] = c.informational
        row["extension"] = c.extension
        row["unverified"] = c.unverified
        row["units"] = statistic(c.primary).difference_units
        rows.append(row)
    return pd.DataFrame(rows).set_index("id")


def _validate(table: tuple[Claim, ...]) -> Mapping[str, Claim]:
    from .statistics import STATISTICS

    out = {}
    for c in table:
        if c.id in out:
            raise AssertionError(f"duplicate claim id {c.id!r}")
        if c.primary not in STATISTICS:
            raise AssertionError(f"claim {c.id!r}: primary {c.primary!r} is not a registered statistic")
        out[c.id] = c
    for c in table:
        if c.counterpart and c.counterpart not in out:
            raise AssertionError(f"claim {c.id!r}: unknown counterpart {c.counterpart!r}")
    for key, s in STATISTICS.items():
        for cid in (s.claim, *s.also_under):
            if cid not in out:
                raise AssertionError(f"statistic {key!r}: unknown claim {cid!r}")
    return MappingProxyType(out)


from .claims_table import CLAIM_TABLE  # noqa: E402  (the data; imports Claim from here)

CLAIMS: Mapping[str, Claim] = _validate(CLAIM_TABLE)
