"""The papers' claims: the one place in the project where they live.

Every verdict in the book compares a measured statistic with a :class:`Claim`; no notebook types a
paper number in by hand (GUIDE.md, "Honesty"). The type is :class:`~.claim_types.Claim` (its
fields and sign conventions are documented there), the table itself is in :mod:`.claims_table`;
this module looks claims up and checks the table's internal references.

Each claim **pre-registers one primary statistic** (``primary``, a key of
:mod:`nascore.report.statistics`): only that statistic decides the claim's verdict. Every other
statistic shown under the claim is exploratory (:func:`nascore.report.statistics.role`).

Sources (``shared/protocol/``):

* **automl-security** — Pang et al., "On the Security Risks of AutoML", USENIX Security 2022
  (arXiv 2110.06018). Sizes from the artifact appendix (protocol ``automl-security.md`` §6) and
  the paper's figure data (§11: the first author's plotting scripts, ``paper_values_cifar10.csv``).
* **deepsloth** — Hong et al., "A Panda? No, It's a Sloth", ICLR 2021 (arXiv 2010.02432);
  protocol ``deepsloth.md``.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

from .claim_types import PAPERS, Claim
from .claims_table import CLAIM_TABLE


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


def _validate(table: tuple[Claim, ...]) -> Mapping[str, Claim]:
    """``{id: claim}``; raises on a duplicate id or an unknown ``counterpart``. That every primary is a
    registered statistic is checked where the registry is built (:mod:`.statistics`)."""
    out = {}
    for c in table:
        if c.id in out:
            raise AssertionError(f"duplicate claim id {c.id!r}")
        out[c.id] = c
    for c in table:
        if c.counterpart and c.counterpart not in out:
            raise AssertionError(f"claim {c.id!r}: unknown counterpart {c.counterpart!r}")
    return MappingProxyType(out)


CLAIMS: Mapping[str, Claim] = _validate(CLAIM_TABLE)
