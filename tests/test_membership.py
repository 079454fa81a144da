"""Membership inference: ROC metrics against constructed cases and brute force, score-based
attacks against their formulas, the member/non-member sets, and HopSkipJump's invariants
(misclassified outputs, exact distances, shrinking distances, query accounting, batch independence)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from nascore.attacks.membership import (
    CONFIDENCE_BAND,
    HopSkipJump,
    artifact_hopskipjump,
    artifact_members,
    auc_p_value,
    confidence_matched,
    folded_auc,
    folded_auc_null_mean,
    lira_offline,
    logit_confidence,
    membership_scores,
    random_indices,
    roc_auc,
    roc_curve,
    tpr_at_fpr,
)

pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------------------ ROC metrics
def _brute_auc(labels, scores):
    pos, neg = scores[labels == 1], scores[labels == 0]
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


def test_roc_curve_on_a_constructed_case():
    labels = np.array([1, 1, 0, 1, 0, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.55, 0.1])
    fpr, tpr, thr = roc_curve(labels, scores)
    assert np.allclose(tpr, [0, 1 / 3, 2 / 3, 2 / 3, 1, 1, 1])
    assert np.allclose(fpr, [0, 0, 0, 1 / 3, 1 / 3, 2 / 3, 1])
    assert thr[0] == np.inf and np.all(np.diff(thr) < 0)
    assert roc_auc(labels, scores) == pytest.approx(8 / 9)


def test_auc_perfect_reversed_random_and_tied_scores():
    labels = np.r_[np.ones(50), np.zeros(50)].astype(int)
    perfect = np.r_[np.linspace(2, 3, 50), np.linspace(0, 1, 50)]
    assert roc_auc(labels, perfect) == 1.0
    assert roc_auc(labels, -perfect) == 0.0 and folded_auc(roc_auc(labels, -perfect)) == 1.0
    assert roc_auc(labels, np.zeros(100)) == 0.5
    rng = np.random.default_rng(0)
    big = rng.integers(0, 2, 20_000)
    assert abs(roc_auc(big, rng.random(20_000)) - 0.5) < 0.02


def test_auc_matches_brute_force_mann_whitney_with_ties():
    rng = np.random.default_rng(1)
    for _ in range(20):
        n = int(rng.integers(5, 60))
        labels = rng.integers(0, 2, n)
        labels[:2] = [0, 1]
        scores = rng.integers(0, 6, n).astype(float)  # many ties
        assert roc_auc(labels, scores) == pytest.approx(_brute_auc(labels, scores), abs=1e-12)


def test_auc_interval_brackets_the_auc_and_resolves_a_signal():
    from nascore.attacks.membership import auc_interval
    labels = np.r_[np.ones(200), np.zeros(200)].astype(int)
    rng = np.random.default_rng(0)
    assert auc_interval(labels, np.r_[np.ones(200), np.zeros(200)], n_boot=200) == (1.0, 1.0)   # separated
    noise = rng.normal(size=400)
    lo, hi = auc_interval(labels, noise, n_boot=500)
    assert lo < roc_auc(labels, noise) < hi and lo < 0.5 < hi                   # no signal: contains 0.5
    shifted = noise + 0.8 * labels
    lo, hi = auc_interval(labels, shifted, n_boot=500)
    assert 0.5 < lo < roc_auc(labels, shifted) < hi                             # a real signal: above 0.5


def test_tpr_at_low_fpr_on_a_constructed_case():
    nonmembers = np.arange(1000) / 1000  # 0.000 … 0.999
    members = np.r_[np.full(50, 2.0), np.full(50, 0.9905)]  # half above all; half above all but 9
    labels = np.r_[np.ones(100), np.zeros(1000)].astype(int)
    scores = np.r_[members, nonmembers]
    assert tpr_at_fpr(labels, scores, 0.01) == 1.0  # threshold 0.9905: FPR 9/1000 <= 1 %
    assert tpr_at_fpr(labels, scores, 0.001) == 0.5  # only the 2.0 threshold has FPR <= 0.1 %
    assert tpr_at_fpr(labels, scores, 0.0) == 0.5
    assert tpr_at_fpr(labels, scores, 1.0) == 1.0
    with pytest.raises(ValueError, match="fpr_target"):
        tpr_at_fpr(labels, scores, 1.5)


def test_folded_auc_null_mean_matches_simulation():
    rng = np.random.default_rng(2)
    labels = np.r_[np.ones(50), np.zeros(50)].astype(int)
    sims = [folded_auc(roc_auc(labels, rng.random(100))) for _ in range(3000)]
    assert np.mean(sims) == pytest.approx(folded_auc_null_mean(50, 50), abs=0.004)
    assert folded_auc_null_mean(50, 50) == pytest.approx(0.5 + math.sqrt(101 / 30000) * math.sqrt(2 / math.pi))


def test_auc_p_value_separates_signal_from_noise():
    labels = np.r_[np.ones(20), np.zeros(20)].astype(int)
    assert auc_p_value(labels, np.r_[np.arange(20) + 100.0, np.arange(20)]) < 1e-6
    rng = np.random.default_rng(3)
    assert auc_p_value(labels, rng.random(40)) > 0.05


@pytest.mark.parametrize("labels, scores, match", [
    ([0, 2], [0.1, 0.2], "labels must be 0"),
    ([1, 1], [0.1, 0.2], "at least one member"),
    ([0, 1], [0.1], "equal length"),
    ([0, 1], [0.1, float("nan")], "finite"),
])
def test_roc_rejects_bad_input(labels, scores, match):
    with pytest.raises(ValueError, match=match):
        roc_auc(labels, scores)


# ------------------------------------------------------------------------------ score-based attacks
def test_membership_scores_follow_their_formulas():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0], [-3.0, 5.0, 0.0]])
    labels = torch.tensor([0, 2, 0])
    p = logits.double().softmax(1)
    s = membership_scores(logits, labels)
    assert np.allclose(s["loss"], np.log(p[torch.arange(3), labels].numpy()))
    assert np.allclose(s["confidence"], p.max(1).values.numpy())
    assert np.allclose(s["entropy"], (p * p.log()).sum(1).numpy())
    py = p[torch.arange(3), labels]
    mentr = -(1 - py) * py.log() - torch.stack([sum(p[i, k] * torch.log(1 - p[i, k]) for k in range(3) if k != labels[i])
                                                  for i in range(3)])
    assert np.allclose(s["modified_entropy"], -mentr.numpy())
    # a uniform prediction has the maximal entropy; the wrongly, confidently classified sample the lowest mentr score
    assert s["entropy"][1] == pytest.approx(-math.log(3)) and s["modified_entropy"].argmin() == 2
    assert np.allclose(logit_confidence(logits, labels), torch.log(py / (1 - py)).numpy())


def test_logit_confidence_is_stable_for_extreme_logits():
    phi = logit_confidence(torch.tensor([[200.0, 0.0], [0.0, 200.0]]), torch.tensor([0, 0]))
    assert phi[0] == pytest.approx(200.0) and phi[1] == pytest.approx(-200.0)


def test_offline_lira_detects_a_shift_that_raw_phi_hides():
    rng = np.random.default_rng(4)
    n = 400
    difficulty = rng.normal(0, 5, n)  # per-image offsets dominate the raw score
    member = np.r_[np.ones(n // 2), np.zeros(n // 2)].astype(int)
    target = difficulty + 1.0 * member + rng.normal(0, 0.3, n)
    refs = difficulty + rng.normal(0, 0.3, (8, n))
    assert roc_auc(member, lira_offline(target, refs)) > 0.95
    assert roc_auc(member, target) < 0.65
    with pytest.raises(ValueError, match=">= 2 reference"):
        lira_offline(target, refs[:1])


# ------------------------------------------------------------------------------ sets
def test_confidence_matched_picks_inside_the_band_in_a_fixed_order():
    conf = np.r_[np.full(30, 0.9995), np.full(30, 0.5), np.full(5, 0.999999)]
    idx, band = confidence_matched(conf, 10, seed=7)
    assert band == CONFIDENCE_BAND and len(set(idx)) == 10 and np.all(conf[idx] == 0.9995)
    again, _ = confidence_matched(conf, 10, seed=7)
    assert np.array_equal(idx, again)
    # the same order for every model: a victim with more qualifying images keeps the others' picks first
    conf2 = conf.copy()
    conf2[30:] = 0.9995
    idx2, _ = confidence_matched(conf2, 65, seed=7)
    assert [i for i in idx2 if i < 30][:10] == list(idx)


def test_confidence_band_widens_by_the_stated_rule_and_says_so():
    conf = np.r_[np.full(3, 0.9995), np.full(5, 0.95), np.full(20, 0.3)]
    idx, band = confidence_matched(conf, 6)
    assert band == (0.9, 0.99999) and np.all(conf[idx] >= 0.9)
    idx, band = confidence_matched(conf, 20)
    assert band == (0.0, 0.99999)
    idx, band = confidence_matched(np.ones(5), 3)
    assert band == (0.0, 1.0)
    with pytest.raises(ValueError, match="only 5 candidates"):
        confidence_matched(np.ones(5), 6)


def test_member_sets_are_seeded_distinct_and_augmented_once():
    x = torch.randint(0, 256, (40, 3, 8, 8), dtype=torch.uint8)
    imgs, idx = artifact_members(x, 10, seed=3)
    imgs2, idx2 = artifact_members(x, 10, seed=3)
    assert torch.equal(imgs, imgs2) and torch.equal(idx, idx2) and len(set(idx.tolist())) == 10
    assert imgs.dtype == torch.uint8 and imgs.shape == (10, 3, 8, 8)
    assert not torch.equal(imgs, x[idx])  # cropped/flipped (with 10 images some draw is not the identity)
    with pytest.raises(ValueError, match="valid: 1..40"):
        random_indices(40, 41, 0)
    with pytest.raises(ValueError, match=">= 1"):
        random_indices(40, 0, 0)


# ------------------------------------------------------------------------------ HopSkipJump
def _linear(seed=0, d=3 * 8 * 8, classes=3):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(d, classes)).eval()


@torch.no_grad()
def _min_l2_to_boundary(model, x):
    """Exact L2 distance to the nearest decision boundary of a linear model (ignoring the box)."""
    w, b = model[1].weight.double(), model[1].bias.double()
    z = x.flatten(1).double() @ w.T + b
    c = z.argmax(1)
    out = []
    for i in range(len(x)):
        gaps = [(z[i, c[i]] - z[i, k]) / (w[c[i]] - w[k]).norm() for k in range(w.shape[0]) if k != c[i]]
        out.append(float(min(gaps)))
    return torch.tensor(out)


def test_hopskipjump_outputs_are_misclassified_at_the_reported_distance():
    model = _linear()
    x = torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    label = model(x).argmax(1)
    for norm in ("l2", "linf"):
        r = HopSkipJump(norm=norm, max_iter=5)(model, x)
        assert r.success.all()
        assert (model(r.x_adv).argmax(1) != label).all()
        assert r.x_adv.min() >= 0 and r.x_adv.max() <= 1
        diff = (r.x_adv - x).flatten(1)
        assert torch.allclose(r.l2, diff.norm(dim=1)) and torch.allclose(r.linf, diff.abs().amax(1))
    # no adversarial point can be closer than the exact distance to the boundary
    r = HopSkipJump(max_iter=5)(model, x)
    assert (r.l2 >= _min_l2_to_boundary(model, x) - 1e-5).all()


@pytest.mark.learned
def test_hopskipjump_distance_shrinks_with_more_iterations_on_a_linear_model(outcome):
    from conftest import TEST_SEED

    model = _linear(1)
    x = torch.rand(10, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    exact = _min_l2_to_boundary(model, x)
    d = {it: HopSkipJump(max_iter=it, seed=TEST_SEED)(model, x).l2 for it in (0, 2, 8, 25)}
    means = [float((d[it] / exact).mean()) for it in (0, 2, 8, 25)]
    assert means[0] > means[1] > means[2] > means[3]
    outcome.above("distance / optimum after 0 iterations", means[0], 3)  # from far away
    outcome.below("distance / optimum after 25 iterations", means[3], 2.0)  # to within 2x of the optimum


def test_hopskipjump_counts_every_query_and_is_independent_of_the_batch():
    class Counting(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner, self.rows = inner, 0

        def forward(self, x):
            self.rows += x.shape[0]
            return self.inner(x)

    model = Counting(_linear(2).double())
    x = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    attack = HopSkipJump(max_iter=4, max_batch=37)
    r = attack(model, x)
    assert int(r.queries.sum()) == model.rows
    evals = sum(attack.num_evals())
    assert (r.queries >= 1 + 1 + 10 + evals).all()  # clean prediction, >= 1 init draw, init search, probes
    singles = [attack(model, x[i:i + 1], sample_ids=[i]) for i in range(6)]
    assert torch.allclose(r.l2, torch.cat([s.l2 for s in singles]), rtol=1e-6)
    assert torch.equal(r.queries, torch.cat([s.queries for s in singles]))


def test_hopskipjump_without_an_adversarial_start_returns_the_input():
    class Constant(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return torch.nn.functional.one_hot(torch.zeros(x.shape[0], dtype=torch.long), 3).float() + self.w

    x = torch.rand(3, 3, 8, 8)
    r = HopSkipJump(init_size=7)(Constant(), x)
    assert not r.success.any() and torch.equal(r.x_adv, x)
    assert (r.l2 == 0).all() and (r.queries == 1 + 7).all() and (r.iterations == 0).all()


@pytest.mark.parametrize("kwargs, match", [
    (dict(norm="l1"), r"norm must be one of \('linf', 'l2'\)"),
    (dict(max_iter=-1), "max_iter must be an int >= 0"),
    (dict(init_eval=200), "init_eval .* must be <= max_eval"),
    (dict(init_size=0), "init_size must be an int >= 1"),
])
def test_hopskipjump_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HopSkipJump(**kwargs)


def test_artifact_configuration():
    a = artifact_hopskipjump()
    assert (a.norm, a.max_iter, a.max_eval, a.init_eval, a.init_size) == ("l2", 10, 100, 25, 50)
    assert a.num_evals() == [25, 35, 43, 50, 55, 61, 66, 70, 75, 79]


# ------------------------------------------------------------------------------ chapter helpers
def test_holdout_variant_leaves_out_exactly_the_score_members():
    from nascore.attacks.membership.reference import HoldOutVariant
    from nascore.findings.membership import SCORE_SEED

    x = torch.arange(30, dtype=torch.uint8).view(30, 1, 1, 1).expand(30, 3, 2, 2).contiguous()
    y = torch.arange(30) % 10
    v = HoldOutVariant(8, SCORE_SEED)
    kept = v.inputs(x, y, seed=0)
    held = set(random_indices(30, 8, SCORE_SEED).tolist())
    assert set(kept.train_x[:, 0, 0, 0].tolist()) == set(range(30)) - held and len(kept.train_y) == 22
    assert v.config() == {"purpose": "lira_reference", "n_held_out": 8, "held_out_seed": SCORE_SEED}
    with pytest.raises(ValueError, match="n_held_out"):
        HoldOutVariant(0, 1)


def test_gap_adjustment_removes_a_family_difference_explained_by_the_gap():
    import pandas as pd

    from nascore.findings.membership import gap_adjusted

    rng = np.random.default_rng(5)
    gap = np.r_[rng.uniform(5, 10, 6), rng.uniform(0, 5, 6)]
    df = pd.DataFrame({"model": [f"m{i}" for i in range(12)], "family": ["nas"] * 6 + ["manual"] * 6,
                       "gen_gap": gap, "auc": 0.5 + 0.01 * gap + rng.normal(0, 1e-3, 12)})
    raw = df[df.family == "nas"].auc.mean() - df[df.family == "manual"].auc.mean()
    adj = gap_adjusted(df, "auc")
    assert raw > 0.03 and abs(adj["estimate"]) < 0.005 and adj["low"] < 0 < adj["high"]
    df["auc"] = df["auc"] + 0.05 * (df.family == "nas")
    assert gap_adjusted(df, "auc")["estimate"] == pytest.approx(0.05, abs=0.005)
    assert np.isnan(gap_adjusted(df.head(3), "auc")["estimate"])


def test_membership_knobs_fail_with_the_valid_range_before_compute():
    from nascore.findings import membership
    from nascore.profiles import get_profile

    with pytest.raises(ValueError, match="mia_reference_models must be 0"):
        membership.check_parameters(get_profile("smoke", mia_reference_models=1))
    with pytest.raises(ValueError, match="cannot supply"):
        membership.check_parameters(get_profile("smoke", mia_pool_images=10, mia_score_samples=20))
    with pytest.raises(ValueError, match="not in profile"):
        membership.chapter_models(get_profile("smoke", membership_models=("darts", "nasnet", "resnet18")))


def test_victim_training_knobs_reach_every_victim_and_reference_config():
    from nascore import zoo
    from nascore.findings import membership
    from nascore.profiles import get_profile

    plain = get_profile("smoke")
    assert membership.victim_overrides(plain) == {} and "zoo's models" in membership.victims_text(plain)
    P = get_profile("smoke", mia_victim_per_class=12, mia_victim_epochs=3)
    over = membership.victim_overrides(P)
    assert over == {"train_per_class": 12, "epochs": 3}
    cfg, _ = zoo.resolve("darts", P, 0, **over)
    assert cfg.data["train_per_class"] == 12 and cfg.recipe["epochs"] == 3
    assert cfg.key() != zoo.resolve("darts", plain, 0)[0].key()  # never the zoo's cached model
    assert "3 epochs on 12 training images per class" in membership.victims_text(P)
    with pytest.raises(ValueError, match="mia_victim_epochs.*>= 1"):
        get_profile("smoke", mia_victim_epochs=0)
    with pytest.raises(ValueError, match="fewer than the 20 members"):  # 10 x 1 images, checked before training
        membership.check_parameters(get_profile("smoke", mia_victim_per_class=1))


def test_hopskipjump_config_is_plain_and_unchanged_by_a_call():
    a = HopSkipJump(max_iter=1)
    before = a.config()
    a(_linear(), torch.rand(2, 3, 8, 8))
    assert a.config() == before and before["attack"] == "hopskipjump" and before["max_batch"] is None
