"""nascore.report: claims table, statistics, verdict rules, result files.

Constructed cases with known answers; each test can fail if the estimator or rule is wrong.
"""
from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest

from nascore.report import claims, stats, tables
from nascore.report.verdict import TABLE_COLUMN_DESCRIPTIONS
from nascore.report import (DiffEstimate, bootstrap_ci, bootstrap_diff, compare_groups,
                            compare_values, get, permutation_test, sign_flip_test, spearman_ci,
                            verdict, verdict_table)


# --------------------------------------------------------------------------- claims
REQUIRED_IDS = [
    "zoo.clean_accuracy", "zoo.early_convergence", "evasion.pgd_asr", "evasion.robustness",
    "poisoning.acc_drop", "backdoor.asr", "backdoor.cad", "extraction.ce", "membership.auc",
    "smoothness.grad_var", "smoothness.flatness", "mitigation.more_manual_like",
]


def test_required_claim_ids_present_and_signed_as_the_appendix():
    for cid in REQUIRED_IDS:
        assert get(cid).id == cid
    # Appendix §6 sizes and signs (NAS − manual).
    assert (get("evasion.pgd_asr").direction, get("evasion.pgd_asr").claimed_interval) == ("greater", (6.0, 14.0))
    assert (get("poisoning.acc_drop").direction, get("poisoning.acc_drop").claimed_interval) == ("less", (-7.0, -3.0))
    assert get("extraction.ce").claimed_interval == pytest.approx((-0.4, -0.2))
    assert get("membership.auc").claimed_interval == pytest.approx((0.03, 0.05))
    assert get("smoothness.grad_var").claimed_interval == pytest.approx((-2.7, -1.7))
    assert get("backdoor.cad").claimed_interval == (-2.0, 0.0)
    assert get("evasion.robustness").expected is None and "extension" in get("evasion.robustness").evidence
    m = get("mitigation.more_manual_like")
    assert m.comparison == "mitigation − DARTS-V2" and m.manual_like == m.direction == "greater"
    assert get("zoo.clean_accuracy").informational


def test_deepsloth_claims_carry_evidence_tags_and_unverified_flags():
    ds = claims.all_claims("deepsloth")
    assert ds and all(set(c.evidence) <= set(claims.EVIDENCE_TAGS) for c in ds)
    assert get("deepsloth.efficacy_reduction").claimed_interval == pytest.approx((0.9, 1.0))
    assert get("deepsloth.latency_amplification").null == 1.0
    assert get("deepsloth.universal_weaker").unverified
    assert not get("deepsloth.efficacy_reduction").unverified
    frame = claims.claims_frame()
    assert list(frame.index) == [c.id for c in claims.all_claims()]
    assert frame.loc["deepsloth.universal_weaker", "unverified"]


def test_get_unknown_id_lists_valid_ids():
    with pytest.raises(KeyError) as exc:
        get("nope")
    msg = str(exc.value)
    assert "nope" in msg and "evasion.pgd_asr" in msg and "membership.auc" in msg


def test_claim_validation_rejects_inconsistent_sign():
    with pytest.raises(ValueError, match="side"):
        claims.Claim(id="x", paper="automl-security", statement="s", statistic="t",
                     direction="less", expected=3.0, tolerance=1.0, source="-")
    with pytest.raises(ValueError, match="direction"):
        claims.Claim(id="x", paper="automl-security", statement="s", statistic="t",
                     direction="up", expected=None, tolerance=None, source="-")


# --------------------------------------------------------------------------- bootstrap
def test_bootstrap_diff_separated_groups_excludes_zero_and_covers_truth():
    rng = np.random.default_rng(1)
    a = 10.0 + rng.normal(0, 1, 12)   # true difference 5
    b = 5.0 + rng.normal(0, 1, 12)
    est = bootstrap_diff(a, b, n_boot=4000, seed=3)
    assert est.estimate == pytest.approx(a.mean() - b.mean())
    assert est.low > 0 and est.low <= 5.0 <= est.high
    assert (est.n_a, est.n_b) == (12, 12)
    # Deterministic with a fixed seed; a different seed moves the interval a little.
    assert bootstrap_diff(a, b, n_boot=4000, seed=3) == est
    assert bootstrap_diff(a, b, n_boot=4000, seed=4) != est


def test_bootstrap_diff_identical_groups_contains_zero():
    a = np.array([3.0, 5.0, 4.0, 6.0, 2.0])
    est = bootstrap_diff(a, a.copy(), n_boot=4000, seed=0)
    assert est.estimate == 0.0 and est.low < 0 < est.high


def test_bootstrap_interval_matches_analytic_quantiles_for_two_point_sample():
    # Resampled mean of n fair 0/1 values ~ Binomial(n, 1/2)/n: percentiles known exactly.
    x = np.array([0.0, 1.0] * 10)
    est = bootstrap_ci(x, n_boot=20_000, seed=0)
    from scipy.stats import binom
    lo, hi = binom.ppf([0.025, 0.975], 20, 0.5) / 20
    assert est.estimate == 0.5 and est.n_b == 0
    assert est.low == pytest.approx(lo, abs=0.051) and est.high == pytest.approx(hi, abs=0.051)


def test_bootstrap_diff_supports_median_and_rejects_nan():
    est = bootstrap_diff([1, 2, 100], [0, 0, 0], stat=np.median, n_boot=500)
    assert est.estimate == 2.0
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_diff([1.0, np.nan], [0.0, 1.0])


# --------------------------------------------------------------------------- permutation
def _brute_force_p(a, b, alternative):
    pooled = np.concatenate([a, b])
    obs = a.mean() - b.mean()
    hits = total = 0
    for idx in itertools.combinations(range(len(pooled)), len(a)):
        mask = np.zeros(len(pooled), bool)
        mask[list(idx)] = True
        d = pooled[mask].mean() - pooled[~mask].mean()
        hit = {"greater": d >= obs - 1e-12, "less": d <= obs + 1e-12,
               "two-sided": abs(d) >= abs(obs) - 1e-12}[alternative]
        hits += hit
        total += 1
    return hits / total


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_exact_permutation_equals_brute_force(alternative):
    rng = np.random.default_rng(7)
    a, b = rng.normal(0.5, 1, 4), rng.normal(0, 1, 5)   # C(9,4) = 126 splits ≤ n_perm → exact
    assert permutation_test(a, b, alternative=alternative) == pytest.approx(_brute_force_p(a, b, alternative))


def test_permutation_minimum_p_for_3_vs_3_is_one_over_20():
    a, b = np.array([10.0, 11.0, 12.0]), np.array([1.0, 2.0, 3.0])
    assert permutation_test(a, b, alternative="greater") == pytest.approx(1 / 20)
    assert permutation_test(a, b, alternative="two-sided") == pytest.approx(2 / 20)
    assert permutation_test(a, b, alternative="less") == 1.0


def test_permutation_monte_carlo_path():
    rng = np.random.default_rng(0)
    a, b = rng.normal(3, 1, 15), rng.normal(0, 1, 15)    # C(30,15) ≫ n_perm → Monte Carlo
    p = permutation_test(a, b, n_perm=2000, alternative="greater", seed=1)
    assert p == pytest.approx(1 / 2001)                  # +1 correction: never 0
    assert p == permutation_test(a, b, n_perm=2000, alternative="greater", seed=1)
    same = rng.normal(0, 1, 30)
    assert permutation_test(same[:15], same[15:], n_perm=2000, seed=2) > 0.05
    # Same null distribution: large p for identical groups.
    assert permutation_test(same[:15], same[:15].copy(), n_perm=2000, seed=2) == 1.0


def test_sign_flip_exact_minimum_and_null():
    assert sign_flip_test([1.0, 2.0, 3.0, 4.0, 5.0], alternative="greater") == pytest.approx(1 / 32)
    assert sign_flip_test([1.0, -1.0, 2.0, -2.0]) == 1.0
    assert sign_flip_test([1.5, 1.6, 1.7, 1.8], null=1.0, alternative="greater") == pytest.approx(1 / 16)


def test_spearman_perfect_monotone_and_exact_p():
    x = np.arange(6.0)
    res = spearman_ci(x, x ** 3, n_boot=2000, seed=0)
    assert res.rho == pytest.approx(1.0)
    assert res.p_value == pytest.approx(2 / math.factorial(6))   # exact, two-sided
    assert res.high == pytest.approx(1.0)
    from scipy.stats import spearmanr
    y = np.array([2.0, 1.0, 4.0, 3.0, 6.0, 5.0, 5.0])
    assert spearman_ci(np.arange(7.0), y, n_boot=500).rho == pytest.approx(spearmanr(np.arange(7.0), y)[0])


def test_mean_band_and_auc():
    curves = np.array([[0.0, 1.0, 2.0], [2.0, 3.0, 4.0]])
    band = stats.mean_band(curves, n_boot=2000, seed=0)
    np.testing.assert_allclose(band.mean, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(band.low, [0.0, 1.0, 2.0])    # resampling 2 rows: min/mean/max
    np.testing.assert_allclose(band.high, [2.0, 3.0, 4.0])
    assert stats.auc_trapz([0.0, 1.0, 3.0], [0.0, 1.0, 1.0]) == pytest.approx(2.5)
    np.testing.assert_allclose(stats.auc_trapz([0, 2], [[1, 1], [0, 2]], normalize=True), [1.0, 1.0])
    with pytest.raises(ValueError, match="increasing"):
        stats.auc_trapz([0, 0], [1, 1])


# --------------------------------------------------------------------------- verdict
PGD = get("evasion.pgd_asr")   # greater, +10 ± 4


def test_verdict_strong_effect_in_claimed_direction():
    v = verdict(PGD, DiffEstimate(11.0, 8.0, 14.0, 10, 7), p_value=0.001)
    assert v.label == "reproduced" and v.size_agrees is True and v.direction == "as claimed"
    assert "+11" in v.reason and "+8" in v.reason and "+14" in v.reason


def test_verdict_strong_effect_opposite():
    v = verdict(PGD, DiffEstimate(-9.0, -12.0, -6.0, 10, 7), p_value=0.001)
    assert v.label == "not reproduced" and v.direction == "opposite" and v.size_agrees is False
    assert "opposite" in v.reason


def test_verdict_null_effect_is_inconclusive():
    v = verdict(PGD, DiffEstimate(0.5, -3.0, 4.0, 10, 7), p_value=0.7)
    assert v.label == "inconclusive at this scale" and v.direction == "unresolved"
    # End to end from data: identical groups.
    a = np.array([50.0, 52.0, 48.0, 51.0])
    assert compare_groups(PGD, a, a[::-1].copy(), n_boot=1000)["verdict"].label == "inconclusive at this scale"


def test_verdict_size_disagreement_is_flagged_but_direction_reproduced():
    v = verdict(PGD, DiffEstimate(30.0, 25.0, 35.0, 10, 7), p_value=0.001)
    assert v.label == "reproduced" and v.size_agrees is False
    assert "size differs" in v.reason and "+10 ± 4" in v.reason
    assert verdict("evasion.robustness", DiffEstimate(-3.0, -5.0, -1.0, 5, 5)).size_agrees is None


def test_verdict_p_value_veto():
    est = DiffEstimate(11.0, 8.0, 14.0, 3, 3)
    assert verdict(PGD, est).label == "reproduced"
    v = verdict(PGD, est, p_value=0.10)
    assert v.label == "inconclusive at this scale" and "p ≥ α" in v.reason
    assert verdict(PGD, DiffEstimate(-9.0, -12.0, -6.0, 3, 3), p_value=0.10).label != "reproduced"


def test_verdict_less_direction_null_and_informational_and_too_few():
    drop = get("poisoning.acc_drop")  # less, −5 ± 2
    assert verdict(drop, DiffEstimate(-5.0, -7.0, -3.0, 10, 7), 0.01).label == "reproduced"
    assert verdict(drop, DiffEstimate(4.0, 2.0, 6.0, 10, 7), 0.01).label == "not reproduced"
    lat = get("deepsloth.latency_amplification")  # ratio, null 1
    assert verdict(lat, DiffEstimate(0.8, 0.6, 0.95, 6, 0)).label == "not reproduced"
    assert verdict(lat, DiffEstimate(2.0, 1.5, 2.5, 6, 0)).label == "reproduced"
    acc = get("zoo.clean_accuracy")
    assert verdict(acc, DiffEstimate(61.0, 58.0, 64.0, 17, 0)).label == "not reproduced"
    assert verdict(acc, DiffEstimate(96.2, 95.8, 96.6, 17, 0)).label == "reproduced"
    assert verdict(PGD, DiffEstimate(11.0, 11.0, 11.0, 1, 1)).label == "inconclusive at this scale"


def test_compare_groups_end_to_end_and_scorecard():
    rng = np.random.default_rng(5)
    nas, manual = 60 + rng.normal(0, 2, 10), 50 + rng.normal(0, 2, 7)
    row = compare_groups("evasion.pgd_asr", nas, manual, n_boot=2000, n_perm=2000, seed=0)
    assert row["verdict"].label == "reproduced" and row["p_value"] < 0.01
    assert compare_groups("evasion.pgd_asr", nas, manual, n_boot=2000, n_perm=2000, seed=0)["estimate"] == row["estimate"]
    vals = compare_values("deepsloth.efficacy_reduction", [0.97, 0.93, 0.99, 0.95, 0.96, 0.91], n_boot=2000)
    card = verdict_table([{**row, "setting": "eps=8/255"}, vals,
                          ("backdoor.asr", DiffEstimate(0.1, -1.0, 1.2, 10, 7), 0.8)])
    assert list(card["label"]) == ["reproduced", "reproduced", "inconclusive at this scale"]
    assert card.loc[0, "setting"] == "eps=8/255" and np.isnan(card.loc[2, "setting"])
    assert set(TABLE_COLUMN_DESCRIPTIONS) <= set(card.columns)


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
