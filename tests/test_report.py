"""nascore.report: the claims table, the statistics registry, the verdict rules and result files.

Constructed cases with known answers; each test fails if a rule, a sign or a size is wrong.
Estimators against the libraries: tests/test_report_estimators.py; the paper's data:
tests/test_report_paper.py; the scorecard: tests/test_report_scorecard.py.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from nascore.report import (COLUMNS, INCONCLUSIVE, NOT_MEASURABLE, NOT_REPRODUCED, REPRODUCED, Claim, DiffEstimate,
                            apply_holm, claims, compare_extreme, compare_families, compare_paired,
                            compare_to_baseline, compare_values, get, role, statistic, tables, verdict_table)
from nascore.report.statistics import STATISTICS, Statistic, register
from nascore.report.verdict import decide, measured_text, not_measurable, size_words

from nascore.report.gates import GateResult

#: A passing gate for rows of gated claims whose gate is not what a test is about.
_MET = GateResult("test", True, 1, 1, (), "Gate met: test gate.")

# --------------------------------------------------------------------------- claims and registry
#: The pre-registered primaries other engineers rely on (issue 9).
PRIMARIES = {
    "zoo.clean_accuracy": "test_acc", "zoo.early_convergence": "early_auc", "evasion.pgd_asr": "pgd_asr",
    "evasion.robustness": "linf_auc", "evasion.nes_asr": "nes_asr", "smoothness.grad_var": "log10_gv_init",
    "smoothness.flatness": "contour_sharpness", "smoothness.hessian": "hessian_top_eig",
    "poisoning.acc_drop": "poison_acc_drop_40", "backdoor.asr": "badnet_asr", "backdoor.cad": "badnet_cad",
    "backdoor.trojannn_asr": "trojannn_asr", "backdoor.trojannn_cad": "trojannn_cad",
    "extraction.ce": "extraction_kl", "membership.auc": "mia_boundary_auc", "membership.score_auc": "mia_loss_auc",
    "mitigation.more_manual_like": "extraction_kl", "mitigation.poison_drop": "poison_acc_drop_40",
    "mitigation.backdoor_asr": "trojannn_asr", "mitigation.evasion_manual_like": "pgd_asr",
    "mitigation.grad_var_manual_like": "log10_gv_init",
    "deepsloth.efficacy_reduction": "sloth_linf_min_reduction",
    "deepsloth.universal_effective": "sloth_universal_min_reduction",
    "deepsloth.universal_weaker": "sloth_persample_minus_universal",
    "deepsloth.pgd_not_slowdown": "sloth_minus_pgd_reduction", "deepsloth.accuracy_drop": "sloth_ee_accuracy_change",
    "deepsloth.clean_efficacy_rad5": "clean_efficacy_rad5", "deepsloth.clean_efficacy_rad15": "clean_efficacy_rad15",
}


def test_every_claim_preregisters_a_registered_primary():
    for cid, key in PRIMARIES.items():
        assert get(cid).primary == key, cid
    for c in claims.all_claims():
        assert c.primary in STATISTICS, c.id


def test_sizes_and_signs_of_the_corrected_claims():
    gv = get("smoothness.grad_var")
    assert gv.claimed_interval == pytest.approx((-2.7, -1.7))
    assert statistic(gv.primary).difference_units == "log10 units" and statistic(gv.primary).scale == "log10"
    poison = get("poisoning.acc_drop")                    # hurts NAS more (§11: 15.1 vs 10.2)
    assert (poison.direction, poison.claimed_interval) == ("greater", (3.0, 7.0))
    mit = get("mitigation.poison_drop")                   # higher drop moves AWAY from manual models
    assert mit.direction == "greater" and mit.manual_like == "less" and mit.subjects == ("diy_deep", "diy_deep_noskip")
    assert get("evasion.pgd_asr").claimed_interval == (6.0, 14.0)
    assert get("extraction.ce").claimed_interval == pytest.approx((-0.4, -0.2))
    assert get("deepsloth.efficacy_reduction").null == 0.9
    assert get("deepsloth.clean_efficacy_rad5").claimed_interval == pytest.approx((0.719, 0.819))
    assert get("evasion.nes_asr").extension and not get("evasion.pgd_asr").extension


def test_role_primary_exploratory_and_misplaced_statistics():
    assert role("evasion.pgd_asr", "pgd_asr") == "primary"
    assert role("evasion.pgd_asr", "pgd_asr_argmax") == "exploratory"
    assert role("zoo.early_convergence", "early_loss_drop") == "exploratory"
    assert role("smoothness.grad_var_trained", "gv_per_param_trained") == "exploratory"
    for stat, claim in (("nes_asr", "evasion.pgd_asr"), ("log10_gv_trained", "smoothness.grad_var"),
                        ("hessian_top_eig", "smoothness.flatness")):
        with pytest.raises(ValueError, match="measures claim"):
            role(claim, stat)
    assert role("mitigation.more_manual_like", "extraction_kl", "diy_deep") == "primary"
    assert role("mitigation.more_manual_like", "extraction_kl", "diy_noskip") == "exploratory"
    assert role("mitigation.more_manual_like", "extraction_ce", "diy_deep") == "exploratory"   # the CE: its parts
    assert role("mitigation.evasion_manual_like", "pgd_asr_argmax", "diy_deep") == "exploratory"  # counterpart


def test_register_adds_exploratory_only_and_refuses_conflicts():
    s = Statistic("test_only_stat", "a test statistic", "percent", "evasion.pgd_asr")
    register(s)
    register(s)                                           # identical: no-op
    assert role("evasion.pgd_asr", "test_only_stat") == "exploratory"
    with pytest.raises(ValueError, match="already registered"):
        register(Statistic("test_only_stat", "different", "nats", "evasion.pgd_asr"))
    with pytest.raises(ValueError, match="unknown claim"):
        register(Statistic("x2", "x", "nats", "no.such.claim"))
    with pytest.raises(KeyError, match="registered"):
        statistic("no_such_statistic")


def test_claim_validation_rejects_inconsistent_sign():
    with pytest.raises(ValueError, match="side"):
        Claim(id="x", paper="automl-security", statement="s", primary="pgd_asr", direction="less",
              expected=3.0, tolerance=1.0, source="-")
    with pytest.raises(KeyError, match="evasion.pgd_asr"):
        get("nope")


# --------------------------------------------------------------------------- decision rule
def test_decide_rule_direction_p_veto_and_informational():
    assert decide("evasion.pgd_asr", 2.0, 9.0, 0.01) == (REPRODUCED, "as claimed")
    assert decide("evasion.pgd_asr", -9.0, -2.0, 0.01) == (NOT_REPRODUCED, "opposite")
    assert decide("evasion.pgd_asr", -9.0, -2.0, 0.2) == (INCONCLUSIVE, "opposite")      # p veto
    assert decide("evasion.pgd_asr", -1.0, 5.0, 0.01) == (INCONCLUSIVE, "unresolved")
    assert decide("smoothness.grad_var", -2.0, -1.0, 0.001)[0] == REPRODUCED            # "less"
    assert decide("zoo.clean_accuracy", 96.8, 97.5, None)[0] == REPRODUCED              # band overlap
    assert decide("zoo.clean_accuracy", 58.0, 62.0, None)[0] == NOT_REPRODUCED
    assert decide("deepsloth.efficacy_reduction", 0.85, 0.97, 0.2)[0] == INCONCLUSIVE   # crosses 0.9


def test_decided_row_words_and_too_few_units():
    claim, est = get("evasion.pgd_asr"), DiffEstimate(10.0, 6.0, 14.0, 10, 7)
    assert decide(claim, est.low, est.high, 0.001)[0] == REPRODUCED
    assert "percentage points" in measured_text(claim, statistic("pgd_asr"), est, 0.001, "permutation", "10 vs 7")
    assert size_words(claim, statistic("pgd_asr"), est).startswith("within")
    one = compare_families(_zoo([10.0], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]), "pgd_asr", n_boot=500, covariates=(), mediators=())
    assert one["label"] == INCONCLUSIVE and "Fewer than 2" in one["text"]


# --------------------------------------------------------------------------- not measurable
def _zoo(values_nas, values_manual, column="pgd_asr", seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i, v in enumerate(values_nas):
        rows.append({"model": f"n{i}", "family": "nas", column: v})
    for i, v in enumerate(values_manual):
        rows.append({"model": f"m{i}", "family": "manual", column: v})
    df = pd.DataFrame(rows)
    df["params"] = rng.uniform(1e5, 1e7, len(df))
    df["flops"] = rng.uniform(1e6, 1e8, len(df))
    df["clean_acc"] = rng.uniform(50, 70, len(df))
    df["train_loss"] = rng.uniform(0.5, 1.5, len(df))
    return df


def test_not_measurable_at_floor_and_ceiling_but_not_for_mixed_values():
    assert not_measurable([0, 0, 0], 0.0, 100.0) == "floor"
    assert not_measurable([100, 100.0], 0.0, 100.0) == "ceiling"
    assert not_measurable([0, 100], 0.0, 100.0) == ""                     # mixed bounds: measurable
    assert not_measurable([0, 0, 3.0], 0.0, 100.0) == "floor"              # most values at the floor
    assert not_measurable([0, 3.0, 3.0], 0.0, 100.0) == ""
    floor = compare_families(_zoo([0.0] * 5, [0.0] * 5), "pgd_asr", n_boot=500)
    ceil = compare_families(_zoo([100.0] * 5, [100.0] * 5), "pgd_asr", n_boot=500)
    for row in (floor, ceil):
        assert row["label"] == NOT_MEASURABLE and math.isnan(row["p_value"]) and "no test" in row["text"]
    mixed = compare_families(_zoo([0.0] * 5, [100.0] * 5), "pgd_asr", n_boot=500)
    assert mixed["label"] == NOT_REPRODUCED and mixed["p_value"] < 0.05
    most = compare_families(_zoo([0.0, 0.0, 1.0, 0.0, 0.0], [0.0] * 5), "pgd_asr", n_boot=500)
    assert most["label"] == NOT_MEASURABLE and "9 of 10 values sit at the statistic's floor" in most["text"]
    half = compare_families(_zoo([0.0, 3.0, 1.0, 0.0, 2.0], [0.0, 0.0, 4.0, 5.0, 0.0]), "pgd_asr", n_boot=500)
    assert half["label"] == INCONCLUSIVE            # exactly half at the floor: still measured


# --------------------------------------------------------------------------- confounds
def _confounded(nas_effect: float, seed: int = 0, n: int = 12, gap: float = 1.0):
    """log10 params and FLOPs differ by family (by ``gap``, spread 0.5: overlapping at gap 1);
    the statistic = 4·log10(params) + nas_effect·NAS + noise; clean accuracy carries the effect too."""
    rng = np.random.default_rng(seed)
    fam = np.array(["nas"] * n + ["manual"] * n)
    logp = np.where(fam == "nas", 5.0, 5.0 + gap) + rng.normal(0, 0.5, 2 * n)
    y = 4 * logp + nas_effect * (fam == "nas") + rng.normal(0, 0.3, 2 * n)
    return pd.DataFrame({"model": [f"m{i}" for i in range(2 * n)], "family": fam, "early_auc": y,
                         "params": 10 ** logp, "flops": 10 ** (logp + 1 + rng.normal(0, 0.05, 2 * n)),
                         "clean_acc": 60 + y + rng.normal(0, 0.1, 2 * n), "train_loss": rng.uniform(0.5, 1.5, 2 * n)})


def test_a_difference_driven_by_size_is_not_decisive_where_the_families_overlap():
    row = compare_families(_confounded(0.0), "early_auc", n_boot=1000)
    assert row["adj_support"] == "overlap" and row["adj_low"] < 0 < row["adj_high"]
    assert row["adj_label"] == INCONCLUSIVE
    assert row["label"] == INCONCLUSIVE             # raw alone would say NAS lower: size explains it
    assert "does not confirm the raw one" in row["text"] and "not decisive" in row["text"]
    assert row["adj_covariates"] == "log10 parameters, log10 FLOPs per image"


def test_a_difference_not_driven_by_size_stays_decisive_when_the_adjustment_agrees():
    df = _confounded(3.0)
    rng = np.random.default_rng(1)
    df["params"] = 1e6 * rng.uniform(0.5, 2, len(df))          # size now unrelated to family
    df["flops"] = 1e7 * rng.uniform(0.5, 2, len(df))
    df["early_auc"] = 3.0 * (df.family == "nas") + np.random.default_rng(2).normal(0, 0.3, len(df))
    row = compare_families(df, "early_auc", n_boot=1000)
    assert row["label"] == REPRODUCED and row["adj_label"] == REPRODUCED and row["adj_support"] == "overlap"
    assert row["adj_low"] > 1.5 and "agrees with the raw one" in row["text"]


def test_without_common_support_the_adjustment_extrapolates_and_decides_nothing():
    row = compare_families(_confounded(0.0, gap=4.0), "early_auc", n_boot=1000)
    assert row["adj_support"] == "extrapolation" and row["adj_label"] == ""
    assert row["label"] == NOT_REPRODUCED            # the raw verdict stands; the adjustment cannot speak
    assert "no overlap" in row["text"] and "extrapolates and decides nothing" in row["text"]


def test_mediators_are_reported_but_never_adjusted_for():
    row = compare_families(_confounded(0.0), "early_auc", n_boot=500)
    assert "clean accuracy" not in row["adj_covariates"] and "training loss" not in row["adj_covariates"]
    assert "Mediators (outcomes of training on the claimed path" in row["text"]
    assert "clean accuracy:" in row["text"] and "final training loss:" in row["text"]


def test_size_matched_variants_enter_the_adjustment_not_the_raw_comparison():
    df = _zoo([5.0, 6.0, 7.0, 8.0, 9.0], [1.0, 2.0, 3.0, 4.0, 5.0])
    variant = pd.DataFrame([{"model": "resnet18_narrow", "family": "manual", "pgd_asr": 100.0, "params": 5e4,
                             "flops": 5e6, "clean_acc": 55.0, "train_loss": 1.0}])
    row = compare_families(pd.concat([df, variant]), "pgd_asr", n_boot=500)
    base = compare_families(df, "pgd_asr", n_boot=500)
    assert (row["n_a"], row["n_b"]) == (5, 5) and row["estimate"] == pytest.approx(base["estimate"]) == 4.0
    assert "OLS over 11 models, 1 of them size-matched variants" in row["text"]
    assert row["adj_estimate"] != pytest.approx(base["adj_estimate"])
    weak = compare_families(pd.concat([df, variant.assign(clean_acc=45.0)]), "pgd_asr", n_boot=500)
    assert weak["adj_estimate"] == pytest.approx(base["adj_estimate"])        # below the 50 % floor: left out
    assert "accuracy floor: resnet18_narrow" in weak["text"]


def test_missing_confounds_are_an_error_unless_explicitly_skipped():
    df = _zoo([5, 6, 7], [1, 2, 3]).drop(columns=["flops"])
    with pytest.raises(ValueError, match="add_confounds"):
        compare_families(df, "pgd_asr")
    row = compare_families(df, "pgd_asr", covariates=(), mediators=(), n_boot=500)
    assert "Not adjusted for size" in row["text"] and math.isnan(row["adj_estimate"])


def test_holm_keeps_the_agreement_rule():
    rows = [compare_families(_confounded(0.0), "early_auc", n_boot=500)]
    rows[0].update(label=REPRODUCED)                 # as if decided before the rule; apply_holm re-applies it
    t = apply_holm(verdict_table(rows))
    assert t["final_label"].iloc[0] != REPRODUCED


# --------------------------------------------------------------------------- measurability gates
def test_gate_quorum_and_reason():
    from nascore.report import gates
    ok = gates.check("backdoor_learned", pd.DataFrame({"model": list("abcde"), "asr_gain": [30, 40, 25, 5, 21]}))
    assert ok.passed and (ok.n_pass, ok.n) == (4, 5) and ok.failed == ("d",) and "4 of 5 models pass" in ok.text
    half = gates.check("backdoor_learned", pd.DataFrame({"model": list("abcd"), "asr_gain": [30, 40, 0, 0]}))
    assert not half.passed and "cannot measure the claim" in half.text      # more than half must pass
    none = gates.check("backdoor_learned", pd.Series([np.nan, np.nan]))
    assert not none.passed and "no models had a value" in none.text
    most = gates.check("exit_thresholds_in_range", pd.Series([0.2, -0.1, -0.05], index=["vgg", "resnet", "mobile"]))
    assert not most.passed and most.failed == ("resnet", "mobile")
    with pytest.raises(ValueError, match="asr_gain"):
        gates.check("backdoor_learned", pd.DataFrame({"model": ["a"], "asr": [1.0]}))
    with pytest.raises(KeyError, match="valid: "):
        gates.check("nope", [1.0])


def test_a_failed_gate_makes_the_claim_not_measurable_whatever_its_p():
    from nascore.report import claim_gate
    df = _zoo([50.0, 60.0, 70.0, 80.0, 90.0], [1.0, 2.0, 3.0, 4.0, 5.0], column="badnet_asr")
    learned = df.assign(asr_gain=[40.0] * 10)
    zeroed = df.assign(asr_gain=[40.0, 40.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 40.0, 40.0])
    yes = compare_families(learned, "badnet_asr", gate=claim_gate("backdoor.asr", learned), n_boot=500)
    no = compare_families(zeroed, "badnet_asr", gate=claim_gate("backdoor.asr", zeroed), n_boot=500)
    assert yes["label"] == REPRODUCED and "Gate met" in yes["gate"]
    assert no["label"] == NOT_MEASURABLE and math.isnan(no["p_value"]) and "4 of 10 models pass" in no["text"]
    assert claim_gate("evasion.pgd_asr", df) is None            # a claim with the bounds rule only
    two = claim_gate("backdoor.trojannn_asr", df.assign(asr_gain=40.0, trojan_activation_gain=0.01))
    assert not two.passed and two.gate == "trojan_neurons_raised+backdoor_learned"


def test_a_gated_claim_without_its_gate_is_not_measurable():
    row = compare_families(_zoo([50.0, 60.0, 70.0], [1.0, 2.0, 3.0], column="badnet_asr"), "badnet_asr", n_boot=500)
    assert row["label"] == NOT_MEASURABLE and "backdoor_learned) was not computed" in row["text"]
    assert compare_families(_zoo([50.0, 60.0, 70.0, 65.0], [1.0, 2.0, 3.0, 4.0]), "pgd_asr",
                            n_boot=500)["label"] != NOT_MEASURABLE


def test_every_gate_of_the_claims_table_exists_and_unknown_ones_are_refused():
    from nascore.report.gates import GATES
    used = {g for c in claims.all_claims() for g in c.gates}
    assert used <= set(GATES) and used == set(GATES)          # no gate defined and never used
    with pytest.raises(ValueError, match="unknown gate"):
        Claim(id="x.y", paper="automl-security", statement="s", primary="pgd_asr", direction="greater",
              expected=None, tolerance=None, source="s", gates=("no_such_gate",))


def test_model_confounds_from_zoo_records():
    from types import SimpleNamespace

    import torch

    from nascore.report import add_confounds, entry_confounds, model_confounds

    lin = torch.nn.Linear(3, 2)                                     # 8 parameters
    entries = {("darts", 0): SimpleNamespace(model=lin, record={"metrics": {"test_acc": 0.5, "final_train_loss": 1.25,
                                                                            "params": 8, "flops": 12}}),
               ("resnet18", 0): SimpleNamespace(model=lin, record={"metrics": {"test_acc": 0.25, "flops": 12},
                                                                   "history": [{"train_loss": 2.0}, {"train_loss": 1.5}]})}
    conf = model_confounds(entries)
    assert conf[["params", "flops", "clean_acc", "train_loss"]].values.tolist() == [[8, 12, 50.0, 1.25],
                                                                                  [8, 12, 25.0, 1.5]]
    assert entry_confounds(entries[("resnet18", 0)]) == {"params": 8, "flops": 12, "clean_acc": 25.0,
                                                         "train_loss": 1.5}
    merged = add_confounds(pd.DataFrame({"model": ["darts", "resnet18"], "seed": [0, 0], "clean_acc": [1.0, 2.0]}),
                           entries)
    assert merged["clean_acc"].tolist() == [1.0, 2.0] and merged["train_loss"].tolist() == [1.25, 1.5]
    conv = torch.nn.Conv2d(3, 2, 1, bias=False)                     # FLOPs counted on the model: 2·3·2·32·32
    counted = SimpleNamespace(model=conv, record={"metrics": {"test_acc": 0.5, "final_train_loss": 1.0}})
    assert entry_confounds(counted)["flops"] == 2 * 3 * 2 * 32 * 32 and entry_confounds(counted)["params"] == 6
    with pytest.raises(ValueError, match="final training loss"):
        model_confounds({("x", 0): SimpleNamespace(model=lin, record={"metrics": {"test_acc": 0.1}})})


# --------------------------------------------------------------------------- scales, seeds, units
def test_log10_and_rank_scales():
    df = _zoo([10.0, 100.0, 1000.0], [1e4, 1e5, 1e3], column="gv_init")
    row = compare_families(df, "log10_gv_init", n_boot=500, covariates=(), mediators=())
    assert row["estimate"] == pytest.approx(np.mean([1, 2, 3]) - np.mean([4, 5, 3]))
    assert row["units"] == "log10 units" and row["scale"] == "log10"
    df = _zoo([5.0, 1e9, 7.0], [100.0, 200.0, 300.0], column="top_eig")
    row = compare_families(df, "hessian_top_eig", n_boot=500, covariates=(), mediators=())
    assert row["estimate"] == pytest.approx(np.mean([1, 6, 2]) - np.mean([3, 4, 5]))   # mean ranks
    assert row["units"] == "ranks"


def test_seed_spread_is_reported_next_to_the_family_difference():
    base = _zoo([10, 12, 14, 11], [1, 3, 2, 4])
    df = pd.concat([base.assign(seed=0), base.assign(seed=1, pgd_asr=base.pgd_asr + 2.0)], ignore_index=True)
    row = compare_families(df, "pgd_asr", n_boot=500)
    assert row["seed_models"] == 8 and row["seed_sd"] == pytest.approx(np.sqrt(2.0))   # pairs differ by 2
    assert "Seed-to-seed spread" in row["text"] and "2 seeds each" in row["text"]
    assert row["n_a"] == 4 and row["n_b"] == 4                                          # models are the units


def test_paired_single_models_use_mcnemar_and_speak_about_weights():
    a = np.r_[np.ones(30), np.zeros(70)]
    b = np.r_[np.ones(10), np.zeros(90)]
    row = compare_paired(a, b, "pgd_asr", "mitigation.evasion_manual_like", "diy_deep", n_boot=500)
    assert row["estimate"] == pytest.approx(20.0) and "McNemar" in row["test"]
    assert row["label"] == NOT_REPRODUCED and "not the architecture" in row["about"]
    cont = compare_paired(np.arange(10.0), np.arange(10.0) - 0.5, "extraction_kl", "mitigation.more_manual_like",
                          "diy_deep", n_boot=500, gate=_MET)
    assert "sign-flip" in cont["test"] and cont["estimate"] == pytest.approx(0.5) and cont["role"] == "primary"


def test_baseline_comparison_needs_two_seeds_each():
    df = pd.DataFrame({"model": ["diy_deep", "darts"], "seed": [0, 0], "pgd_asr": [10.0, 20.0]})
    with pytest.raises(ValueError, match="compare_paired"):
        compare_to_baseline(df, "pgd_asr", "mitigation.evasion_manual_like", "diy_deep")
    df = pd.DataFrame({"model": ["diy_deep"] * 4 + ["darts"] * 4, "seed": list(range(4)) * 2,
                       "pgd_asr": [10, 11, 9, 10, 20, 21, 19, 22.0]})
    row = compare_to_baseline(df, "pgd_asr", "mitigation.evasion_manual_like", "diy_deep", n_boot=500)
    assert row["estimate"] == pytest.approx(-10.5) and row["comparison"] == "diy_deep − darts"
    assert row["units_of_analysis"] == "seeds" and row["p_value"] == pytest.approx(2 / 70)


def test_extreme_over_groups_and_single_group_values():
    rng = np.random.default_rng(0)
    groups = {"vgg16": rng.uniform(0.95, 1.0, 300), "resnet56": rng.uniform(0.6, 0.7, 300)}
    row = compare_extreme(groups, "sloth_linf_min_reduction", n_boot=500, gate=_MET)
    assert row["estimate"] == pytest.approx(groups["resnet56"].mean())
    assert row["high"] < 0.9 and row["label"] == NOT_REPRODUCED        # below the 90 % band: contradicts
    from nascore.report.scorecard import _headline_row
    head = _headline_row({**row, "final_label": row["label"], "holm_p": row["p_value"]})
    assert "300 vs 2" not in head and "n = 300 test images per group (the fewest), 2 groups" in head
    vals = compare_values("zoo.clean_accuracy", [96.2, 96.6, 96.9, 96.4], n_boot=500)
    assert vals["label"] == REPRODUCED and math.isnan(vals["p_value"])  # level claim: no test


def test_text_is_in_the_statistics_own_words_and_units():
    row = compare_families(_zoo([0.3, 0.2, 0.25, 0.28], [0.5, 0.6, 0.55, 0.58], column="extraction_kl"),
                           "extraction_kl", n_boot=500, covariates=(), mediators=(), gate=_MET)
    assert "nats" in row["text"] and "hard labels" in row["text"] and "4 NAS and 4 manual models" in row["text"]
    assert row["size"].startswith(("within", "overlaps", "outside"))
    expl = compare_families(_zoo([1, 2, 3], [4, 5, 6], column="extraction_ce_soft"), "extraction_ce_soft",
                            n_boot=500, covariates=(), mediators=(), gate=_MET)
    assert expl["role"] == "exploratory" and expl["size"] == "" and "cannot carry" in expl["text"]


# --------------------------------------------------------------------------- multiplicity
def test_apply_holm_uses_adjusted_p_for_primary_rows_only():
    rows = [compare_families(_zoo([10 + i for i in range(4)], [0, 1, 2, 3.0]), "pgd_asr", n_boot=500),
            compare_families(_zoo([1, 2, 3, 4.0], [0, 1, 2, 3.0], column="linf_auc"), "linf_auc", n_boot=500),
            compare_families(_zoo([10, 11, 12, 13.0], [0, 1, 2, 3.0], column="pgd_asr_argmax"), "pgd_asr_argmax",
                             n_boot=500)]
    table = apply_holm(verdict_table(rows))
    p = table["p_value"].to_numpy()
    assert p[0] == pytest.approx(2 / 70) and p[1] > 0.1          # 4 vs 4 fully separated: exact minimum
    assert table.loc[0, "holm_p"] == pytest.approx(2 * 2 / 70)   # Holm, 2 primary tests: smallest p × 2
    assert table.loc[1, "holm_p"] == pytest.approx(max(p[1], 4 / 70))
    assert math.isnan(table.loc[2, "holm_p"]) and table.loc[2, "final_label"] == table.loc[2, "label"]
    # significant before the correction, not after it: the final label is the adjusted one
    assert table.loc[0, "label"] == REPRODUCED and table.loc[0, "final_label"] == INCONCLUSIVE
    dup = verdict_table([rows[0], rows[0]])
    with pytest.raises(ValueError, match="more than one primary"):
        apply_holm(dup)


# --------------------------------------------------------------------------- verdicts table
def test_verdict_table_has_the_documented_columns_in_order(tmp_path):
    row = compare_families(_zoo([10, 11, 12, 13], [1, 2, 3.0, 4.0]), "pgd_asr", n_boot=500, setting="eps 8/255")
    unclear = compare_families(_zoo([1.0, 2.0, 3.0, 2.2], [1.5, 2.5, 2.0, 1.8], column="badnet_asr"), "badnet_asr",
                               n_boot=500, covariates=(), mediators=(), gate=_MET)
    card = verdict_table([row, unclear])
    assert list(card.columns[:len(COLUMNS)]) == list(COLUMNS)
    assert card.loc[1, "label"] == INCONCLUSIVE and card.loc[0, "setting"] == "eps 8/255"
    tables.save_results(card, tmp_path / "verdicts", {"seed": 0})
    back = tables.load_results(tmp_path / "verdicts")
    assert list(back["label"]) == list(card["label"])
    with pytest.raises(ValueError, match="lacks"):
        verdict_table([{"claim": "evasion.pgd_asr"}])
    with pytest.raises(TypeError, match="compare_"):
        verdict_table([("backdoor.asr", DiffEstimate(0.1, -1.0, 1.2, 10, 7), 0.8)])


# --------------------------------------------------------------------------- tables
def test_save_load_round_trip_with_provenance(tmp_path):
    df = pd.DataFrame({
        "model": ["darts", "resnet18_comp", "pdarts"],
        "family": ["nas", "manual", "nas"],
        "asr": [0.1 + 0.2, 1 / 3, 55.5],
        "n": [1000, 1000, 999],
        "ok": [True, False, True],
    })
    prov = {"git_commit": "abc123", "profile": "smoke", "seed": 0, "device": "cpu"}
    csv_path, json_path = tables.save_results(df, tmp_path / "pgd_eps0.03", prov, columns={"asr": "ASR (%)"})
    assert csv_path.name == "pgd_eps0.03.csv" and json_path.name == "pgd_eps0.03.json"
    meta = json.loads(json_path.read_text())
    assert meta["provenance"] == prov and meta["n_rows"] == 3
    assert meta["columns"]["asr"]["description"] == "ASR (%)"
    back = tables.load_results(tmp_path / "pgd_eps0.03")
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    assert back["asr"].tolist() == df["asr"].tolist()            # exact float round trip
    assert back["ok"].dtype == bool and back["n"].dtype == np.int64
    assert back.attrs["provenance"] == prov
    assert not list(tmp_path.glob(".*.tmp"))                      # no temp files left behind


def test_save_load_index_and_checksum(tmp_path):
    df = pd.DataFrame({"v": [1.5, 2.5]}, index=pd.Index(["a", "b"], name="model"))
    tables.save_results(df, tmp_path / "t.csv", {"seed": 1})
    back = tables.load_results(tmp_path / "t")
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    (tmp_path / "t.csv").write_text("model,v\na,9.9\n")
    with pytest.raises(ValueError, match="checksum"):
        tables.load_results(tmp_path / "t")
    with pytest.raises(TypeError, match="provenance"):
        tables.save_results(df, tmp_path / "u", None)


def test_smallest_attainable_p_is_what_the_exact_test_gives_on_separated_groups():
    from nascore.report.estimators import permutation_test, smallest_attainable_p

    for n_a, n_b in ((5, 5), (7, 6), (4, 3)):
        p = permutation_test(np.arange(n_a) + 100.0, np.arange(n_b, dtype=float))
        assert smallest_attainable_p("exact permutation", n_a, n_b) == pytest.approx(p)
    assert smallest_attainable_p("exact sign-flip permutation", 4) == pytest.approx(2 / 16)
    assert smallest_attainable_p("McNemar χ² (continuity-corrected)", 1000, 1000) is None
    assert smallest_attainable_p("Monte-Carlo (100,000 relabellings) permutation", 30, 30) is None


def test_holm_reach_note_says_when_a_test_cannot_pass_the_first_threshold():
    from nascore.report.verdict import holm_reach_note

    assert "at least 28 of the other 33" in holm_reach_note("exact permutation", 5, 5, 34)   # 2/252 > 0.05/34
    assert holm_reach_note("exact permutation", 10, 7, 34) == ""                             # 1.0e-4 < 0.0015
    assert "cannot pass" in holm_reach_note("exact sign-flip permutation", 4, 0, 34)          # 0.125 > 0.05
    rows = [compare_families(_zoo([10 + i for i in range(5)], [0, 1, 2, 3, 4.0]), "pgd_asr", n_boot=200),
            compare_families(_zoo([1 + i for i in range(8)], [0, 1, 2, 3, 4, 5, 6.0], column="linf_auc"),
                             "linf_auc", n_boot=200)]
    rows += [{**rows[1], "subject": f"copy {i}"} for i in range(6)]                         # 8 tested primaries
    table = apply_holm(verdict_table(rows))
    small = table[table.statistic == "pgd_asr"].iloc[0]                                      # 2/252 > 0.05/8
    assert "Reach: with 5 vs 5 units" in small["text"] and "at least 2 of the other 7" in small["text"]
    assert not table[table.statistic == "linf_auc"].text.str.contains("Reach").any()         # 2/6435 < 0.05/8


def test_support_table_counts_models_inside_the_overlap_and_applies_the_variant_floor():
    import pandas as pd

    from nascore.report.confounds import support_table

    rows = [("darts", "nas", 4e4, 1.5e7, 64), ("enas", "nas", 6.5e4, 2.2e7, 65), ("darts_wide", "nas", 1.3e5, 5e7, 66),
            ("resnet18", "manual", 1.8e5, 1.8e7, 59), ("vgg13_bn", "manual", 1.6e5, 7.5e6, 54),
            ("resnet18_narrow", "manual", 4.5e4, 4.5e6, 52), ("dla34_narrow", "manual", 6e4, 7e6, 46),
            ("diy_deep", "mitigation", 3.7e4, 1.5e7, 64)]
    df = pd.DataFrame(rows, columns=["model", "family", "params", "flops", "clean_acc"])
    t = support_table(df).set_index("covariate")
    p = t.loc["params"]
    # dla34_narrow (46 % < 50 % floor) and the mitigation are not in the fit
    assert p["manual range"] == "45k – 180k" and p["overlap"] == "45k – 130k"
    assert (p["nas inside"], p["manual inside"], p["supported"]) == (2, 1, False)   # enas, darts_wide | resnet18_narrow
    assert "dla34_narrow" not in p["models inside"] and "diy_deep" not in p["models inside"]
    f = t.loc["flops"]
    assert f["overlap"] == "15M – 18M" and (f["nas inside"], f["manual inside"]) == (1, 1) and not f["supported"]


def test_an_exact_test_that_cannot_reach_alpha_is_not_measurable_with_its_reason():
    import pandas as pd

    from nascore.report import compare
    from nascore.report.verdict import NOT_MEASURABLE

    # 2 vs 2 training seeds: an exact permutation test gives p >= 1/3 whatever the data
    df = pd.DataFrame({"model": ["darts", "darts", "diy_deep", "diy_deep"], "seed": [0, 1, 0, 1],
                       "pgd_asr": [40.0, 42.0, 20.0, 22.0]})
    row = compare.compare_to_baseline(df, "pgd_asr", "mitigation.evasion_manual_like", "diy_deep", n_boot=500)
    assert row["label"] == NOT_MEASURABLE and "smallest p this exact test can give is 0.33" in row["text"]
    assert row["estimate"] == -20.0   # the measurement is still shown
    assert "0.1" in compare.unreachable_reason("exact permutation", 3, 3, 0.2)      # 2/C(6,3) = 0.1 > 0.05
    assert compare.unreachable_reason("exact permutation", 4, 4, 0.2) == ""         # 2/70 = 0.029 can reach
    assert compare.unreachable_reason("McNemar", 1, 1, 0.2) == ""                   # not an exact test
