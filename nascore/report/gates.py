"""Measurability gates: the condition under which a claim's primary statistic can measure the claim
at the scale it was run (issue "valid verdicts"; GUIDE "Honesty and inference").

A p-value says whether two groups differ; it does not say whether the statistic measured the
attack. A backdoor that was never learned gives every model an ASR near zero, a membership attack on
models with no train–test gap gives AUCs at 0.5, thieves that predict one class give a cross entropy
set by the victims' entropy — and the families can still "differ" on those numbers. Every claim
therefore names a gate in the claims table (``Claim.gate``, pre-registered beside its ``primary``):

* a :class:`Gate` is a per-unit condition (``column`` ``side`` ``threshold``) and a quorum: the gate
  passes when **more than** ``quorum`` of the units meet the condition;
* the chapter computes the gate's column from its own data and calls :func:`check`; the
  :class:`GateResult` goes to the comparison functions (``gate=``), which label a claim whose gate
  fails "not measurable at this scale", with the computed reason, whatever its p;
* :data:`BOUNDS` is the gate every primary has in addition, through its statistic's floor and
  ceiling (:func:`nascore.report.verdict.not_measurable`): more than half the values at a bound is
  "not measurable" (a rule that zeroes most values cannot decide a claim).

The gates are data (:data:`GATES`); a chapter never types a threshold.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, Mapping

import numpy as np
import pandas as pd

BOUNDS = "bounds"


@dataclass(frozen=True)
class Gate:
    """One pre-registered measurability condition.

    ``condition``: the words shown on the page; ``column``: the per-unit column of the chapter's
    table it reads; a unit passes when its value is ``side`` (``"above"``: strictly greater,
    ``"below"``: strictly smaller) ``threshold``; the gate passes when more than ``quorum`` of the
    units with a value pass. ``units``: what one value is about (models, thieves, backbones).
    ``column_words``: the column in words, with units."""

    key: str
    condition: str
    column: str
    column_words: str
    threshold: float
    side: Literal["above", "below"] = "above"
    quorum: float = 0.5
    units: str = "models"

    def __post_init__(self) -> None:
        if self.side not in ("above", "below"):
            raise ValueError(f"gate {self.key!r}: side must be 'above' or 'below', got {self.side!r}")
        if not 0 <= self.quorum < 1:
            raise ValueError(f"gate {self.key!r}: quorum must be in [0, 1), got {self.quorum}")


@dataclass(frozen=True)
class GateResult:
    """The outcome of one gate on one chapter's data: ``passed``, ``n_pass`` of ``n`` units, the
    units that failed, and ``text`` (the reason shown on the page)."""

    gate: str
    passed: bool
    n_pass: int
    n: int
    failed: tuple[str, ...]
    text: str


GATES: Mapping[str, Gate] = MappingProxyType({g.key: g for g in (
    Gate("backdoor_learned",
         "the backdoor is learned: on most models the trigger's success on the backdoored model exceeds its "
         "success on the clean model by at least 20 points",
         column="asr_gain", column_words="ASR of the backdoored model − ASR of the clean model on the same "
                                         "triggered images (percentage points)", threshold=20.0),
    Gate("trojan_neurons_raised",
         "the TrojanNN trigger search works: on most models the generated trigger raises the selected "
         "neurons' activation by at least 10 % of the target",
         column="trojan_activation_gain", column_words="activation gain of the selected neurons / target "
                                                       "activation", threshold=0.1),
    Gate("membership_signal",
         "a membership signal exists: on most victims the loss-threshold AUC's 95 % interval lies above 0.5",
         column="mia_loss_auc_low", column_words="lower end of the 95 % CI of the loss-threshold AUC",
         threshold=0.5),
    Gate("thieves_learn",
         "the thieves learn: on most victims the thief agrees with the victim on more test images than a "
         "constant predictor (the victim's most frequent label) by at least 5 points",
         column="agreement_gain", column_words="thief–victim agreement − share of the victim's most frequent "
                                               "label (percentage points)", threshold=5.0, units="thieves"),
    Gate("poison_trains",
         "the poisoned models train: on most models the 40 %-poisoned model is above 20 % clean accuracy "
         "(twice chance), so a drop is not a failed training",
         column="acc_40", column_words="clean test accuracy of the 40 %-poisoned model (%)", threshold=20.0),
    Gate("exit_thresholds_in_range",
         "the exit thresholds are in the range the claim speaks of: on most backbones the clean early-exit "
         "efficacy at RAD<5 % is between 0.1 and 0.9 (there is a saving to erase, and not every input is forced "
         "out at the first exit)",
         column="clean_efficacy_margin", column_words="distance of the clean efficacy from the nearer end of "
                                                      "[0.1, 0.9] (positive inside)",
         threshold=0.0, units="backbones"),
)})


def gate(key: str) -> Gate:
    """The gate named ``key``; unknown keys raise ``KeyError`` naming the valid ones."""
    if key not in GATES:
        raise KeyError(f"unknown gate {key!r}; valid: {', '.join(GATES)}")
    return GATES[key]


def _fmt(v: float) -> str:
    return f"{v:.3g}".replace("-", "−")


def check(key: str, values, names=None) -> GateResult:
    """Evaluate gate ``key`` on per-unit ``values`` (a Series, an array, or a DataFrame holding the
    gate's column; ``names``: the units' names, default the Series/DataFrame ``model`` column or
    index). NaN values are left out; no value at all fails the gate."""
    g = gate(key)
    if isinstance(values, pd.DataFrame):
        if g.column not in values.columns:
            raise ValueError(f"gate {key!r} reads column {g.column!r}, which the table lacks; columns: "
                             f"{list(values.columns)}")
        names = values["model"].astype(str).tolist() if names is None and "model" in values else names
        values = values[g.column]
    if isinstance(values, pd.Series) and names is None:
        names = [str(i) for i in values.index]
    v = np.asarray(values, float).ravel()
    names = [str(n) for n in (names if names is not None else range(v.size))]
    if len(names) != v.size:
        raise ValueError(f"gate {key!r}: {len(names)} names for {v.size} values")
    keep = np.isfinite(v)
    v, names = v[keep], [n for n, k in zip(names, keep) if k]
    ok = v > g.threshold if g.side == "above" else v < g.threshold
    n, n_pass = int(v.size), int(ok.sum())
    passed = n > 0 and n_pass > g.quorum * n
    failed = tuple(nm for nm, good in zip(names, ok) if not good)
    need = "every" if g.quorum >= 0.99 else f"more than {g.quorum:.0%} of the"
    if n == 0:
        text = f"Gate not met: {g.condition}; no {g.units} had a value."
    else:
        verb = "met" if passed else "not met"
        text = (f"Gate {verb}: {g.condition} — {n_pass} of {n} {g.units} pass ({need} {g.units} must; "
                f"{g.column_words} {g.side} {_fmt(g.threshold)}; median {_fmt(float(np.median(v)))}).")
        if not passed:
            text += " So the primary cannot measure the claim at this scale."
    return GateResult(key, bool(passed), n_pass, n, failed, text)


def combine(results) -> GateResult | None:
    """One result for several gates of a claim: passed if every one passed; the texts joined.
    ``None`` for no results."""
    results = [r for r in results if r is not None]
    if not results:
        return None
    if len(results) == 1:
        return results[0]
    return GateResult("+".join(r.gate for r in results), all(r.passed for r in results),
                      min(r.n_pass for r in results), min(r.n for r in results),
                      tuple(dict.fromkeys(f for r in results for f in r.failed)),
                      " ".join(r.text for r in results))


def bound_count(values, bound: float | None) -> int:
    """How many finite ``values`` sit at ``bound`` (to relative 1e-9)."""
    if bound is None:
        return 0
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    return int(np.sum(np.abs(v - bound) <= 1e-9 * max(1.0, abs(bound))))


__all__ = ["BOUNDS", "GATES", "Gate", "GateResult", "gate", "check", "combine", "bound_count"]
