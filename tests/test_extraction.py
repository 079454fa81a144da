"""Model extraction: the query set, what the thief sees in each label mode, the CE metric's
analytic cases, recovery of a linear victim, the thief as a cached zoo variant, bad parameters."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nascore import zoo
from nascore.attacks.extraction import (
    MODES,
    THIEF_RECIPE,
    ThiefVariant,
    check_budgets,
    extraction_metrics,
    predict_probs,
    query_set,
    victim_answers,
)
from nascore.findings.extraction import victim_model
from nascore.train import Recipe, train

pytestmark = pytest.mark.usefixtures("one_thread")


class Centered(nn.Module):
    def forward(self, x):
        return x - 0.5


SIDE = 8  # small images: a linear victim with d = 192 inputs is identifiable from a few thousand queries


def linear_net(seed: int, scale: float = 1.0) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(Centered(), nn.Flatten(), nn.Linear(3 * SIDE * SIDE, 10))
    with torch.no_grad():
        net[-1].weight.mul_(scale)
    return net.eval()


def random_images(n: int, seed: int, side: int = SIDE) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, side, side), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_query_set_is_seeded_distinct_frozen_and_validated():
    x = random_images(50, 0, side=32)
    q, idx = query_set(x, 20, seed=1)
    q2, idx2 = query_set(x, 20, seed=1)
    assert torch.equal(q, q2) and torch.equal(idx, idx2) and len(set(idx.tolist())) == 20
    assert q.dtype == torch.uint8 and q.shape == (20, 3, 32, 32)
    assert not torch.equal(q, x[idx])  # one crop/flip draw per image
    assert not torch.equal(query_set(x, 20, seed=2)[1], idx)
    with pytest.raises(ValueError, match=r"valid: 1..50"):
        query_set(x, 51)


def test_soft_and_hard_modes_show_the_thief_different_targets_on_the_same_images():
    victim = linear_net(0, scale=3.0)
    x = random_images(64, 1)
    soft = victim_answers(victim, x, "soft")
    hard = victim_answers(victim, x, "hard")
    assert soft.dtype == torch.float32 and soft.shape == (64, 10) and hard.dtype == torch.int64
    assert torch.allclose(soft.sum(1), torch.ones(64)) and torch.equal(soft.argmax(1), hard)
    assert (soft.max(1).values < 0.999).all()  # soft targets carry the victim's uncertainty, hard ones do not
    onehot = torch.nn.functional.one_hot(hard, 10).float()
    assert (soft - onehot).abs().sum(1).min() > 1e-3


def test_ce_metric_analytic_cases():
    victim = linear_net(0, scale=3.0)
    x, y = random_images(40, 2), torch.randint(0, 10, (40,))
    p = predict_probs(victim, x)
    same = extraction_metrics(p, predict_probs(victim, x, log=True), y)
    assert same["agreement"] == 1.0 and same["kl"] == pytest.approx(0.0, abs=1e-5)
    assert same["ce"] == pytest.approx(same["victim_entropy"], abs=1e-5) and same["victim_acc"] == same["thief_acc"]
    uniform = nn.Sequential(nn.Flatten(), nn.Linear(3 * SIDE * SIDE, 10))
    nn.init.zeros_(uniform[-1].weight), nn.init.zeros_(uniform[-1].bias)
    flat = extraction_metrics(p, predict_probs(uniform, x, log=True), y)
    assert flat["ce"] == pytest.approx(torch.log(torch.tensor(10.0)).item(), abs=1e-5)
    assert flat["kl"] == pytest.approx(flat["ce"] - same["victim_entropy"], abs=1e-9)
    with pytest.raises(ValueError, match="same images"):
        extraction_metrics(p[:5], predict_probs(victim, x, log=True), y)
    # the constant predictor's agreement: the victim's most frequent class share (the gate's baseline)
    one_hot = torch.nn.functional.one_hot(torch.tensor([3] * 30 + [5] * 10), 10).double() * 0.9 + 0.01
    const = extraction_metrics(one_hot, torch.log(one_hot[[0] * 40]), torch.zeros(40, dtype=torch.long))
    assert const["victim_majority"] == pytest.approx(0.75) and const["agreement"] == pytest.approx(0.75)


def _steal_linear(victim, budget: int, mode: str) -> dict:
    from conftest import TEST_SEED

    queries = random_images(budget, 3)
    targets = victim_answers(victim, queries, mode)
    thief = linear_net(99 + TEST_SEED)
    test_x = random_images(500, 4)
    recipe = Recipe(epochs=30, batch_size=100, lr=0.5, momentum=0.9, weight_decay=0.0, schedule="constant",
                    grad_clip=None, crop_padding=0, flip=False, cutout=0)
    train(thief, queries, targets, test_x[:10], torch.zeros(10, dtype=torch.long), recipe, seed=TEST_SEED,
          progress=False, device="cpu", frozen=torch.ones(budget, dtype=torch.bool))
    return extraction_metrics(predict_probs(victim, test_x), predict_probs(thief, test_x, log=True),
                              torch.zeros(500, dtype=torch.long))


@pytest.mark.learned
def test_many_queries_recover_a_linear_victim_and_few_do_not(outcome):
    victim = linear_net(0, scale=10.0)
    few, many = _steal_linear(victim, 100, "soft"), _steal_linear(victim, 3000, "soft")
    outcome.above("agreement, 3,000 soft queries", many["agreement"], 0.97)  # recovered: same decisions,
    outcome.below("KL, 3,000 soft queries", many["kl"], 0.01)                 # same probabilities
    outcome.above("KL, 100 soft queries", few["kl"], 0.1)
    outcome.below("agreement, 100 soft queries", few["agreement"], 0.6)
    hard = _steal_linear(victim, 3000, "hard")
    outcome.above("agreement, 3,000 hard queries", hard["agreement"], 0.7)
    outcome.above("KL, 3,000 hard queries", hard["kl"], 0.1)  # argmax labels lose the victim's confidence


@pytest.mark.slow
def test_thief_variant_trains_a_cached_zoo_thief_in_both_modes(synthetic_cifar, cache_tmp):
    kw = dict(data=synthetic_cifar, device="cpu", progress=False, C=4, layers=3)
    victim = zoo.get("darts", "smoke", epochs=1, **kw)
    thieves = {}
    for mode in MODES:
        v = ThiefVariant(victim="darts", victim_key=victim.record["key"], budget=60, mode=mode, load_victim=victim_model)
        thieves[mode] = zoo.get("darts", "smoke", variant=v, **{**THIEF_RECIPE, "epochs": 1}, **kw)
        rec = thieves[mode].record
        assert rec["config"]["variant"]["victim_key"] == victim.record["key"] and rec["metrics"]["n_train"] == 60
        assert rec["config"]["recipe"]["schedule"] == "constant" and rec["config"]["recipe"]["cutout"] == 0
        assert zoo.is_cached("darts", "smoke", variant=v, **{**THIEF_RECIPE, "epochs": 1},
                             data=synthetic_cifar, device="cpu", C=4, layers=3)
    assert thieves["hard"].record["key"] != thieves["soft"].record["key"]
    w = [t.model.head[-1].weight for t in thieves.values()]
    assert not torch.allclose(w[0], w[1])
    inputs = {m: ThiefVariant("darts", victim.record["key"], 60, m, load_victim=victim_model).inputs(
        synthetic_cifar.train_x, synthetic_cifar.train_y, 0) for m in MODES}
    assert torch.equal(inputs["hard"].train_x, inputs["soft"].train_x) and inputs["hard"].frozen.all()
    assert torch.equal(inputs["soft"].train_y.argmax(1), inputs["hard"].train_y)
    with pytest.raises(FileNotFoundError, match="no finished model .*train it first"):
        ThiefVariant("darts", "0" * 16, 60, load_victim=victim_model).inputs(synthetic_cifar.train_x,
                                                                           synthetic_cifar.train_y, 0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(mode="medium"), "unknown label mode 'medium'; valid: hard, soft"),
    (dict(budget=0), "integer >= 1"),
    (dict(budget=2.5), "integer >= 1"),
])
def test_bad_thief_parameters_fail_before_any_compute(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ThiefVariant(**{"victim": "darts", "victim_key": "k", "budget": 10, "load_victim": victim_model, **kwargs})


def test_check_budgets():
    assert check_budgets((400, 100, 100)) == (100, 400)
    with pytest.raises(ValueError, match="exceeds the 300 training images"):
        check_budgets((100, 1000), n_available=300)
    with pytest.raises(ValueError, match="at least one"):
        check_budgets(())


def test_chapter_tables_pick_the_largest_budget_and_pair_the_modes():
    import pandas as pd

    from nascore.findings import extraction

    rows = []
    for model, fam in (("darts", "nas"), ("resnet18", "manual")):
        for budget, mode, ce in ((10, "hard", 2.5), (20, "hard", 2.0), (20, "soft", 1.8)):
            rows.append({"model": model, "family": fam, "seed": 0, "params": 10, "clean_acc": 50.0, "train_loss": 1.0,
                         "budget": budget, "mode": mode, "ce": ce + (model == "darts"), "thief_acc": 30.0,
                         "agreement": 40.0, "victim_entropy": 1.0, "kl": ce + (model == "darts") - 1.0,
                         "flops": 1000, "agreement_gain": 30.0, "victim_majority": 10.0})
    t = pd.DataFrame(rows)
    pm = extraction.per_model(t)
    assert list(pm.budget) == [20, 20] and list(pm.extraction_ce) == [3.0, 2.0]
    # CE = victim entropy + KL(victim || thief): the primary is the imitation part
    assert list(pm.extraction_kl) == [2.0, 1.0] and list(pm.victim_entropy) == [1.0, 1.0]
    assert list(pm.extraction_ce_soft) == [2.8, 1.8] and list(pm.soft_budget) == [20, 20]
    modes = extraction.mode_comparison(t)
    assert len(modes) == 2 and np.allclose(modes.soft_minus_hard, -0.2)


def test_extraction_knobs_fail_with_the_valid_range_before_compute():
    from nascore.findings import extraction
    from nascore.profiles import get_profile

    with pytest.raises(ValueError, match="exceeds the 200 training images"):
        extraction.check_parameters(get_profile("smoke", extraction_budgets=(50, 500)), n_train=200)
    with pytest.raises(ValueError, match="integer >= 1"):
        extraction.check_parameters(get_profile("smoke", extraction_budgets=(0, 50)))
    with pytest.raises(ValueError, match="thief_epochs must be >= 1"):
        extraction.check_parameters(get_profile("smoke", thief_epochs=0))
    with pytest.raises(ValueError, match="not in profile"):
        extraction.chapter_models(get_profile("smoke", extraction_models=("darts", "nasnet")))


def test_paper_values_are_parsed_per_budget(monkeypatch):
    import sys
    import types

    import pandas as pd

    from nascore.findings import extraction

    rows = [{"figure": "Fig. 9", "setting": f"extraction CE H(victim, thief) at {k}k queries", "family": "nas",
             "model": "darts", "value": v} for k, v in ((1, 2.3), (16, 1.3))]
    fake = types.ModuleType("nascore.report.paper")
    fake.paper_values = lambda figure=None, setting=None: pd.DataFrame(rows)
    monkeypatch.setitem(sys.modules, "nascore.report.paper", fake)
    got = extraction.paper_ce(["darts", "resnet18"])
    assert got.to_dict("records") == [{"model": "darts", "family": "nas", "budget": 1000, "paper_ce": 2.3},
                                      {"model": "darts", "family": "nas", "budget": 16000, "paper_ce": 1.3}]


def test_label_mode_text_reads_the_ln10_property_off_the_data():
    import pandas as pd

    from nascore.findings import extraction

    t = pd.DataFrame({"mode": ["hard"] * 4 + ["soft"] * 4, "ce": [2.5, 2.6, 2.0, 1.0, 2.0, 2.1, 1.5, 1.0]})
    paper = pd.DataFrame({"paper_ce": [3.1, 1.2, 2.0]})
    text = extraction.label_mode_text(t, paper)
    assert "2 of 4 thieves above ln 10" in text and "1 of 3 values above ln 10" in text and "fit **hard labels**" in text
    t.loc[t["mode"] == "soft", "ce"] = 3.0
    assert "cannot tell" in extraction.label_mode_text(t, paper)
    assert "not in this checkout" in extraction.label_mode_text(t, None)
