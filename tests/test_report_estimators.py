"""nascore.report.estimators and .confounds against brute force, analytic cases and the libraries.

The estimators call scipy/statsmodels; these tests check the glue (exactness, conventions,
degenerate cases) and that the few hand-written pieces agree with a library on random cases.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from nascore.report import estimators
from nascore.report.confounds import adjust


def _brute_perm(a, b, alternative):
    pooled = np.r_[a, b]
    obs = a.mean() - b.mean()
    null = np.array([pooled[list(c)].mean() - np.delete(pooled, list(c)).mean()
                     for c in itertools.combinations(range(pooled.size), a.size)])
    tol = 1e-12
    if alternative == "greater":
        return np.mean(null >= obs - tol)
    if alternative == "less":
        return np.mean(null <= obs + tol)
    return np.mean(np.abs(null) >= abs(obs) - tol)


@pytest.mark.parametrize("case", range(6))
def test_exact_permutation_equals_brute_force(case):
    rng = np.random.default_rng(case)
    a, b = rng.normal(0.7, 1, 4 + case % 3), rng.normal(0, 1, 5)
    for alt in ("greater", "less"):
        assert estimators.permutation_test(a, b, alternative=alt) == pytest.approx(_brute_perm(a, b, alt))
    a2 = rng.normal(0.5, 1, 5)                                   # equal sizes: symmetric null
    assert estimators.permutation_test(a2, b) == pytest.approx(_brute_perm(a2, b, "two-sided"))


def test_permutation_minimum_and_monte_carlo_path():
    assert estimators.permutation_test([4, 5, 6], [1, 2, 3], alternative="greater") == pytest.approx(1 / 20)
    assert estimators.permutation_test([4, 5, 6], [1, 2, 3]) == pytest.approx(2 / 20)
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.5, 1, 12), rng.normal(0, 1, 12)           # C(24, 12) > 2,000: Monte Carlo
    p1 = estimators.permutation_test(a, b, n_perm=2000, seed=3)
    assert p1 == estimators.permutation_test(a, b, n_perm=2000, seed=3)
    assert 1 / 2001 <= p1 <= 1 and abs(p1 - estimators.permutation_test(a, b, n_perm=100_000)) < 0.05


def test_sign_flip_exact_equals_brute_force():
    rng = np.random.default_rng(4)
    d = rng.normal(0.4, 1, 7)
    signs = np.array(list(itertools.product([-1, 1], repeat=d.size)))
    null = (signs * d).mean(axis=1)
    assert estimators.sign_flip_test(d, alternative="greater") == pytest.approx(np.mean(null >= d.mean() - 1e-12))
    assert estimators.sign_flip_test(d) == pytest.approx(np.mean(np.abs(null) >= abs(d.mean()) - 1e-12))
    assert estimators.sign_flip_test([0.0, 0.0, 0.0]) == 1.0


def test_bootstrap_covers_truth_and_handles_degenerate_cases():
    rng = np.random.default_rng(1)
    a, b = 10 + rng.normal(0, 1, 12), 5 + rng.normal(0, 1, 12)
    est = estimators.bootstrap_diff(a, b, n_boot=4000, seed=3)
    assert est.estimate == pytest.approx(a.mean() - b.mean()) and est.low < 5 < est.high and est.low > 3
    assert est.method == "BCa" and est == estimators.bootstrap_diff(a, b, n_boot=4000, seed=3)
    same = estimators.bootstrap_diff([2.0, 2.0, 2.0], [2.0, 2.0])
    assert (same.low, same.high) == (0.0, 0.0) and same.method.startswith("degenerate")
    one = estimators.bootstrap_diff([1.0], [2.0, 3.0])
    assert math.isnan(one.low) and not one.has_interval
    med = estimators.bootstrap_ci([1.0, 2.0, 3.0, 100.0], stat=np.median, n_boot=2000)
    assert med.estimate == 2.5 and med.n_b == 0
    with pytest.raises(ValueError, match="NaN"):
        estimators.bootstrap_diff([1.0, np.nan], [1.0, 2.0])


def test_bootstrap_ci_matches_scipy_percentile_directly():
    rng = np.random.default_rng(7)
    x = rng.exponential(size=15)
    ours = estimators.bootstrap_ci(x, n_boot=3000, seed=5, method="percentile")
    ref = st.bootstrap((x,), np.mean, n_resamples=3000, method="percentile", rng=np.random.default_rng(5))
    assert (ours.low, ours.high) == pytest.approx((ref.confidence_interval.low, ref.confidence_interval.high))


@pytest.mark.parametrize("seed", range(5))
def test_bootstrap_p_agrees_with_the_percentile_interval(seed):
    """Hand-written bootstrap_p: p < 0.05 exactly when the 95 % percentile interval excludes the null."""
    rng = np.random.default_rng(seed)
    dist = rng.normal(rng.uniform(-0.3, 0.3), 0.1, 4000)
    for null in (-0.2, 0.0, 0.2):
        low, high = np.quantile(dist, [0.025, 0.975])
        excluded = null < low or null > high
        p = estimators.bootstrap_p(dist, null)
        if abs(null - low) > 0.01 and abs(null - high) > 0.01:     # away from the boundary
            assert (p < 0.05) == excluded


def test_bootstrap_extreme_picks_the_smallest_group_and_resamples_within_groups():
    rng = np.random.default_rng(2)
    g = {"a": rng.normal(1.0, 0.1, 200), "b": rng.normal(0.5, 0.1, 200), "c": rng.normal(2.0, 0.1, 50)}
    est, per, dist = estimators.bootstrap_extreme(g, np.mean, "min", n_boot=1000)
    assert est.estimate == pytest.approx(g["b"].mean()) and per["c"] == pytest.approx(g["c"].mean())
    assert est.low < g["b"].mean() < est.high and est.n_b == 3 and est.n_a == 50
    assert dist.size == 1000 and abs(np.std(dist) - 0.1 / np.sqrt(200)) < 0.003   # se of group b's mean


def test_bootstrap_extreme_seeds_resamples_seeds_then_images():
    """Two seeds per group: the estimate is the mean of the seeds' statistics, and a seed-level shift
    (retraining) widens the interval far beyond the image-only standard error."""
    rng = np.random.default_rng(4)
    tight = {"a": [rng.normal(1.0, 0.1, 200), rng.normal(1.0, 0.1, 200)],
             "b": [rng.normal(0.5, 0.1, 200), rng.normal(0.5, 0.1, 200)]}
    est, per, dist = estimators.bootstrap_extreme_seeds(tight, np.mean, "min", n_boot=1000)
    assert est.estimate == pytest.approx(np.mean([d.mean() for d in tight["b"]]))
    assert per["a"] == pytest.approx(np.mean([d.mean() for d in tight["a"]])) and est.n_a == 2 and est.n_b == 2
    assert est.low < est.estimate < est.high and np.std(dist) < 0.02
    shifted = {"a": tight["a"], "b": [rng.normal(0.3, 0.1, 200), rng.normal(0.7, 0.1, 200)]}
    est2, _, dist2 = estimators.bootstrap_extreme_seeds(shifted, np.mean, "min", n_boot=1000)
    # seed draws {0,0}, {0,1}, {1,1}: the interval spans (about) both seeds' means
    assert est2.low < 0.32 and est2.high > 0.68 and np.std(dist2) > 0.1
    with pytest.raises(ValueError, match="at least 2 images per seed"):
        estimators.bootstrap_extreme_seeds({"a": [np.ones(1)]})
    with pytest.raises(ValueError, match="no seeds"):
        estimators.bootstrap_extreme_seeds({"a": []})


def test_spearman_matches_scipy_and_exact_permutation():
    rng = np.random.default_rng(3)
    x = rng.normal(size=6)
    y = x + rng.normal(0, 0.7, 6)
    r = estimators.spearman_ci(x, y, n_boot=2000)
    assert r.rho == pytest.approx(st.spearmanr(x, y).statistic)
    rx, ry = st.rankdata(x), st.rankdata(y)
    null = [st.pearsonr(rx, ry[list(p)]).statistic for p in itertools.permutations(range(6))]
    assert r.p_value == pytest.approx(2 * min(np.mean(np.array(null) >= r.rho - 1e-12),
                                              np.mean(np.array(null) <= r.rho + 1e-12)))
    assert r.low <= r.rho <= r.high
    with pytest.raises(ValueError, match="constant"):
        estimators.spearman_ci([1, 1, 1], [1, 2, 3])


def test_rank_comparison_agrees_with_scipy_mann_whitney():
    rng = np.random.default_rng(5)
    a, b = rng.normal(1, 1, 6), rng.normal(0, 1, 5)
    ranks = st.rankdata(np.r_[a, b])
    p = estimators.permutation_test(ranks[:6], ranks[6:])
    assert p == pytest.approx(st.mannwhitneyu(a, b, method="exact").pvalue)


def test_holm_on_a_constructed_vector_matches_the_hand_computation():
    p = [0.01, 0.04, 0.03, 0.005, np.nan]
    # sorted 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 → max(0.04, 0.06) = 0.06
    np.testing.assert_allclose(estimators.holm(p)[:4], [0.03, 0.06, 0.06, 0.02])
    assert math.isnan(estimators.holm(p)[4])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        estimators.holm([0.5, 1.5])


def test_mcnemar_on_constructed_tables():
    a = np.r_[np.ones(2), np.zeros(10), np.ones(50), np.zeros(38)]     # 2 only-a, 10 only-b discordant
    b = np.r_[np.zeros(2), np.ones(10), np.ones(50), np.zeros(38)]
    m = estimators.mcnemar_test(a, b)
    assert (m.only_a, m.only_b, m.exact) == (2, 10, True)
    assert m.p_value == pytest.approx(2 * (1 + 12 + 66) / 4096)       # exact binomial, n = 12
    a = np.r_[np.ones(30), np.zeros(10), np.zeros(60)]
    b = np.r_[np.zeros(30), np.ones(10), np.zeros(60)]
    m = estimators.mcnemar_test(a, b)
    assert not m.exact and m.statistic == pytest.approx((20 - 1) ** 2 / 40)
    assert m.p_value == pytest.approx(st.chi2.sf((20 - 1) ** 2 / 40, 1))
    assert estimators.mcnemar_test([1, 0, 1], [1, 0, 1]).p_value == 1.0


@pytest.mark.parametrize("seed", range(4))
def test_vif_and_adjusted_estimate_agree_with_statsmodels(seed):
    import statsmodels.api as sm
    from statsmodels.stats.outliers_influence import variance_inflation_factor

    rng = np.random.default_rng(seed)
    n = 20
    nas = (np.arange(n) < 10).astype(float)
    cov = pd.DataFrame({"log10_params": 5 + nas * rng.uniform(0, 1) + rng.normal(0, 0.5, n),
                        "clean_acc": rng.uniform(50, 70, n)})
    y = (2 * nas + cov["log10_params"] + rng.normal(0, 1, n)).to_numpy()
    fit = adjust(y, nas, cov)["joint"]
    X = sm.add_constant(np.column_stack([nas, cov.to_numpy()]))
    assert fit.vif == pytest.approx(variance_inflation_factor(X, 1))
    ref = sm.OLS(y, X).fit()
    assert fit.estimate == pytest.approx(ref.params[1]) and fit.p_value == pytest.approx(ref.pvalues[1])


def test_adjustment_respects_residual_degrees_of_freedom():
    rng = np.random.default_rng(0)
    n = 7                                                          # 7 − 5 = 2 < 5: no joint fit
    cov = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.normal(size=n)})
    out = adjust(rng.normal(size=n), np.r_[np.ones(3), np.zeros(4)], cov)
    assert out["joint"] is None and out["a"] is None               # 7 − 3 = 4 < 5 as well
    n = 9
    cov = pd.DataFrame({"a": rng.normal(size=n)})
    out = adjust(rng.normal(size=n), np.r_[np.ones(4), np.zeros(5)], cov)
    assert out["a"] is not None and out["a"].df_resid == 6


def test_mean_band_and_auc():
    curves = np.array([[1.0, 2.0, 3.0], [3.0, 4.0, np.nan], [2.0, 3.0, 5.0]])
    band = estimators.mean_band(curves, n_boot=500)
    np.testing.assert_allclose(band.mean, [2.0, 3.0, 4.0])
    assert np.all(band.low <= band.mean) and np.all(band.mean <= band.high) and band.n == 3
    x = np.array([0.0, 1.0, 3.0])
    assert estimators.auc_trapz(x, 2 * x) == pytest.approx(9.0)        # ∫0..3 2x dx
    assert estimators.auc_trapz(x, np.ones(3), normalize=True) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="increasing"):
        estimators.auc_trapz([0, 0, 1], [1, 2, 3])


def test_resampling_is_batched_with_the_same_numbers(monkeypatch):
    """Batches bound the memory of scipy's vectorised resampling and leave the numbers unchanged."""
    from nascore.report import estimators as S

    rng = np.random.default_rng(3)
    d, x, y = rng.normal(0.1, 1, 300), rng.normal(size=40), rng.normal(size=40)
    before = (S.sign_flip_test(d, n_perm=5000), S.bootstrap_ci(d, n_boot=2000), S.spearman_ci(x, x + y, n_boot=2000),
              S.permutation_test(x, y, n_perm=5000))
    monkeypatch.setattr(S, "MAX_RESAMPLE_ELEMENTS", 700)  # forces batches of 1-2 resamples
    after = (S.sign_flip_test(d, n_perm=5000), S.bootstrap_ci(d, n_boot=2000), S.spearman_ci(x, x + y, n_boot=2000),
             S.permutation_test(x, y, n_perm=5000))
    assert before == after


def test_sign_flip_over_many_images_stays_small_in_memory():
    """A per-image paired test (chapter 5: 10,000 images, 100,000 flips) must not hold all flips at
    once (8 GB per array; the chapter's kernel was killed for memory). Here 2,000 images: an
    unbatched call peaks above 3 GB."""
    import tracemalloc

    from nascore.report import estimators as S

    d = np.random.default_rng(0).choice([-100.0, 0.0, 100.0], size=2000, p=[0.1, 0.8, 0.1])
    tracemalloc.start()
    try:
        p = S.sign_flip_test(d)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert 0 <= p <= 1
    assert peak < 500e6, f"peak {peak / 1e6:.0f} MB"
