"""DeepSloth and its baselines (protocol deepsloth.md §3): the objective, budgets, universal
perturbations, the accuracy baselines, and that the attack actually slows a trained toy SDN down."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nascore.attacks import (PGD, ClassUniversalDeepSloth, DeepFoolUAP, DeepSloth, ExitPGD, UniversalDeepSloth,
                             exit_cross_entropy, ic_confidence, never, sloth_loss)
from nascore.models.base import BlockNet
from nascore.multiexit import exit_indices, exit_record


class ToyNet(BlockNet):
    def __init__(self):
        super().__init__()
        self.normalize = nn.Identity()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.blocks = nn.ModuleList([
            nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2)),
            nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2)),
            nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(4))])
        self.head = nn.Sequential(nn.Flatten(1), nn.Linear(64, 10))


@pytest.fixture(scope="module")
def toy(one_thread):
    """A trained toy SDN (3 ICs + final exit) and 40 test images it is confident about."""
    from conftest import train_toy_sdn

    sdn, data = train_toy_sdn(ToyNet)
    x = data.test_x[:40].float() / 255
    return sdn, x, data.test_y[:40], data


def _entropy(out):
    return torch.stack([-(F.softmax(z, 1) * F.log_softmax(z, 1)).sum(1) for z in out[:-1]], dim=1)


# ---------------------------------------------------------------- objective
def test_sloth_loss_is_minimal_at_uniform_outputs_and_ignores_the_final_exit():
    k, c = 3, 10
    uniform = [torch.zeros(4, c, requires_grad=True) for _ in range(k + 1)]
    loss = sloth_loss(uniform)
    assert torch.allclose(loss, torch.full((4,), k * math.log(c)))
    grads = torch.autograd.grad(loss.sum(), uniform, allow_unused=True)
    assert all(float(g.abs().max()) < 1e-6 for g in grads[:-1]) and grads[-1] is None   # final exit unused
    peaked = [torch.tensor([[5.0] + [0.0] * (c - 1)])] * (k + 1)
    assert float(sloth_loss(peaked)) > k * math.log(c)
    with pytest.raises(TypeError, match="multi-exit"):
        sloth_loss(torch.zeros(2, c))


@pytest.mark.learned
def test_deepsloth_raises_every_ic_entropy_on_a_trained_sdn(toy, outcome):
    sdn, x, _, _ = toy
    result = DeepSloth("linf", seed=0)(sdn, x)
    with torch.no_grad():
        before, after = _entropy(sdn(x)).mean(0), _entropy(sdn(result.x_adv)).mean(0)
        conf_before, conf_after = ic_confidence(sdn(x)), ic_confidence(sdn(result.x_adv))
    # Thresholds from benchmarks/learned_outcomes.py (README "Portable tests"): the smallest rise measured over
    # seeds and ISA caps was 0.061 nats; the share of the 40 images reaching the final exit rose by as little as
    # one image (ATen AVX2, seed 1), so the mean exit taken is the slowdown measured here.
    outcome.above("smallest IC entropy rise (nats)", (after - before).min(), 0.02)
    outcome.above("IC confidence drop", conf_before.mean() - conf_after.mean(), 0)
    q = float(conf_before.median())
    depth = lambda xx: exit_indices(exit_record(sdn, xx), q).mean()   # noqa: E731
    outcome.above("rise in the mean exit taken (exits)", depth(result.x_adv) - depth(x), 0)


def test_deepsloth_success_uses_the_configured_threshold(toy):
    sdn, x, _, _ = toy
    res = DeepSloth("linf", steps=5, q=0.5, seed=0)(sdn, x)
    with torch.no_grad():
        expected = (ic_confidence(sdn(res.x_adv)) < 0.5).all(dim=1)
    assert torch.equal(res.success, expected)
    assert not DeepSloth("linf", steps=2, seed=0)(sdn, x).success.any()   # no threshold: no success rule


@pytest.mark.parametrize("norm,steps", [("linf", 30), ("l2", 22), ("l1", 20)])
def test_per_sample_budgets_and_pixel_range(toy, norm, steps):
    sdn, x, _, _ = toy
    attack = DeepSloth(norm, steps=steps, stages=11, seed=0)
    res = attack(sdn, x)
    d = (res.x_adv - x).flatten(1)
    norms = {"linf": d.abs().amax(1), "l2": d.norm(dim=1), "l1": d.abs().sum(1)}[norm]
    assert float(norms.max()) <= attack.eps * (1 + 1e-5)
    assert float(norms.max()) > 0.5 * attack.eps                 # the budget is actually used
    assert 0 <= float(res.x_adv.min()) and float(res.x_adv.max()) <= 1
    assert (res.iterations == steps).all()


def test_l2_schedule_ends_at_the_protocol_bound():
    attack = DeepSloth("l2")
    assert attack.steps == 550 and attack.stages == 11
    assert attack.gamma == pytest.approx(0.1, abs=1e-12) and attack.eps == pytest.approx(0.3487, abs=1e-4)


def test_same_seed_same_result_independent_of_batching(toy):
    sdn, x, _, _ = toy
    a = DeepSloth("linf", steps=3, seed=1)(sdn, x)
    b = DeepSloth("linf", steps=3, seed=1)(sdn, x)
    assert torch.equal(a.x_adv, b.x_adv)
    g = torch.Generator().manual_seed(5)
    parts = [DeepSloth("l2", steps=11, seed=None)(sdn, x[i:i + 10], generator=g).x_adv for i in range(0, 40, 10)]
    g = torch.Generator().manual_seed(5)
    whole = DeepSloth("l2", steps=11, seed=None)(sdn, x, generator=g).x_adv
    assert torch.allclose(torch.cat(parts)[:10], whole[:10], atol=1e-5)   # per-sample: batch-size independent


# ---------------------------------------------------------------- universal
@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_universal_delta_is_one_tensor_applied_to_every_image(toy, norm):
    sdn, x, _, data = toy
    attack = UniversalDeepSloth(norm, epochs=2 if norm == "l2" else 1, steps=3, seed=0)
    pert = attack.craft(sdn, data.train_x[:30])
    assert pert.delta.shape == (3, 32, 32)
    assert pert.norm_value() <= attack.eps * (1 + 1e-5)
    x_adv = pert.apply(x)
    inside = ((x + pert.delta) >= 0) & ((x + pert.delta) <= 1)
    assert torch.allclose((x_adv - x)[inside], pert.delta.expand_as(x)[inside], atol=1e-6)
    assert 0 <= float(x_adv.min()) and float(x_adv.max()) <= 1
    res = attack(sdn, x)                                         # the calling convention: craft on x, apply to x
    assert res.x_adv.shape == x.shape


@pytest.mark.learned
def test_universal_linf_lowers_ic_confidence_on_held_out_images(toy, outcome):
    sdn, x, _, data = toy
    pert = UniversalDeepSloth("linf", eps=0.1, seed=0).craft(sdn, data.train_x[:100])
    with torch.no_grad():
        drop = ic_confidence(sdn(x)).mean() - ic_confidence(sdn(pert.apply(x))).mean()
    outcome.above("held-out IC confidence drop", drop, 0)


def test_class_universal_crafts_one_delta_per_class(toy):
    sdn, _, _, data = toy
    attack = ClassUniversalDeepSloth("linf", steps=2, seed=0, per_class=5)
    perts = attack.craft(sdn, data.train_x, data.train_y, classes=[0, 3])
    assert sorted(perts) == [0, 3] and not torch.equal(perts[0].delta, perts[3].delta)
    alone = UniversalDeepSloth("linf", steps=2, seed=0).craft(sdn, data.train_x[data.train_y == 3][:5])
    assert torch.equal(perts[3].delta, alone.delta)              # each class crafted from the seed, on its first images
    with pytest.raises(ValueError, match="no images of class 11"):
        ClassUniversalDeepSloth("linf", steps=1, per_class=5).craft(sdn, data.train_x, data.train_y, classes=[11])


# ---------------------------------------------------------------- baselines
@pytest.mark.parametrize("mode", ["final", "avg", "max"])
@pytest.mark.learned
def test_exit_pgd_budget_and_it_raises_the_loss(toy, mode, outcome):
    sdn, x, y, _ = toy
    res = ExitPGD(mode, eps=0.05, alpha=0.01, steps=5, seed=0)(sdn, x, y)
    assert float((res.x_adv - x).abs().max()) <= 0.05 + 1e-6
    assert 0 <= float(res.x_adv.min()) and float(res.x_adv.max()) <= 1
    with torch.no_grad():
        ce0, ce1 = exit_cross_entropy(sdn(x), y), exit_cross_entropy(sdn(res.x_adv), y)
    rise = ce1[:, -1].mean() - ce0[:, -1].mean() if mode == "final" else ce1.sum(1).mean() - ce0.sum(1).mean()
    outcome.above(f"cross-entropy rise ({mode})", rise, 0)
    with torch.no_grad():
        assert torch.equal(res.success, sdn(res.x_adv)[-1].argmax(1) != y)


def test_pgd20_returns_the_last_iterate_of_twenty_signed_steps(toy):
    from nascore.attacks import random_start

    sdn, x, y, _ = toy
    got = ExitPGD("final", eps=0.05, alpha=0.01, steps=20, seed=3)(sdn, x, y).x_adv
    g = torch.Generator().manual_seed(3)
    xa = random_start(x, 0.05, "linf", g)
    for _ in range(20):                                        # the authors' loop, written out
        xa.requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(sdn(xa)[-1], y, reduction="sum"), xa)
        with torch.no_grad():
            xa = (x + (xa + 0.01 * grad.sign() - x).clamp(-0.05, 0.05)).clamp(0, 1)
    assert torch.allclose(got, xa, atol=1e-6)


@pytest.mark.learned
def test_pgd_max_keeps_the_candidate_with_the_largest_summed_loss(toy, outcome):
    from nascore.attacks.multiexit_pgd import _exit

    sdn, x, y, _ = toy
    attack = ExitPGD("max", eps=0.05, alpha=0.01, steps=3, seed=7)
    best = attack(sdn, x, y).x_adv
    g = torch.Generator().manual_seed(7)                      # the same random starts, exit by exit
    pgd = PGD(norm="linf", eps=0.05, alpha=0.01, steps=3, random_start=True, success_fn=never)   # last iterate
    cands = torch.stack([pgd(_exit(sdn, k), x, y, generator=g).x_adv for k in range(sdn.num_exits)])
    with torch.no_grad():
        losses = torch.stack([exit_cross_entropy(sdn(c), y).sum(1) for c in cands])   # (exits, n)
    pick = losses.argmax(0)
    assert torch.equal(best, cands[pick, torch.arange(len(y))])
    outcome.above("distinct winning exits", len(set(pick.tolist())), 1)  # different exits win for different samples


@pytest.mark.learned
def test_deepfool_uap_stays_in_the_box_and_fools_with_a_large_budget(toy, outcome):
    sdn, _, _, data = toy
    small = DeepFoolUAP(eps=0.03125, max_passes=1, seed=0).craft(sdn, data.train_x[:20])
    assert small.norm_value() <= 0.03125 + 1e-7 and 0 <= small.config["fool_rate"] <= 1
    large = DeepFoolUAP(eps=0.5, max_passes=3, seed=0).craft(sdn, data.train_x[:20])
    assert large.norm_value() <= 0.5 + 1e-7
    outcome.above("fool rate at eps 0.5", large.config["fool_rate"], 0.2)


# ---------------------------------------------------------------- bad inputs
def test_bad_inputs_fail_with_the_valid_choices(toy):
    sdn, x, _, _ = toy
    with pytest.raises(ValueError, match=r"norm must be one of \('linf', 'l2', 'l1'\)"):
        DeepSloth("l0")
    with pytest.raises(ValueError, match="multiple of stages"):
        DeepSloth("l2", steps=100, stages=11)
    with pytest.raises(ValueError, match="eps must be > 0"):
        DeepSloth("linf", eps=-1)
    with pytest.raises(ValueError, match=r"mode must be one of \('final', 'avg', 'max'\)"):
        ExitPGD("mean")
    with pytest.raises(ValueError, match="needs the true labels"):
        ExitPGD("final")(sdn, x, None)
    with pytest.raises(ValueError, match="batches"):
        UniversalDeepSloth("l1").craft(sdn, x[:3])
    with pytest.raises(TypeError, match="multi-exit"):
        DeepSloth("linf", steps=1)(sdn.backbone, x)
