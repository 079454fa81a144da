"""Invariants of nascore.attacks: budgets, monotonicity, success rules, analytic optima, early
stopping bookkeeping, NES estimates and exact query counts. Tiny models, fixed seeds."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nascore.attacks import (
    NES,
    PGD,
    IterativeAttack,
    NESGradient,
    AttackResult,
    artifact_nes,
    artifact_pgd,
    asr,
    asr_at_budget,
    attack_batches,
    confident_target,
    evaluation_set,
    mean_iterations,
    never,
    project,
    project_l2,
    project_linf,
    robust_accuracy,
    step_direction,
)


# ------------------------------------------------------------------------------ helpers
pytestmark = pytest.mark.usefixtures("one_thread")


class Center(nn.Module):
    """``4 (x - 0.5)``: stands in for the models' normalisation so predictions vary with x."""

    def forward(self, x):
        return 4 * (x - 0.5)


def tiny_cnn(seed: int = 0, classes: int = 10, head_scale: float = 1.0) -> nn.Module:
    """A small conv net on (N, 3, H, W) [0,1] images (no normalisation needed for the tests)."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        Center(), nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, stride=2), nn.ReLU(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, classes),
    )
    with torch.no_grad():
        model[-1].weight.mul_(head_scale)
    return model.eval()


def images(n: int, size: int = 8, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g)


def predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x).argmax(1)


class RowCounter(nn.Module):
    """Wraps a model; counts image rows per forward call and whether autograd was on."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.rows = 0
        self.calls = 0
        self.grad_calls = 0

    def forward(self, x):
        self.rows += x.shape[0]
        self.calls += 1
        self.grad_calls += int(torch.is_grad_enabled() and x.requires_grad)
        return self.model(x)


def linf(d: torch.Tensor) -> torch.Tensor:
    return d.flatten(1).abs().amax(1)


def l2(d: torch.Tensor) -> torch.Tensor:
    return d.flatten(1).norm(dim=1)


# ------------------------------------------------------------------------------ budgets
@pytest.mark.parametrize("norm,eps", [("linf", 8 / 255), ("l2", 0.5)])
@pytest.mark.parametrize("targeted", [False, True])
@pytest.mark.parametrize("random_start", [False, True])
@pytest.mark.parametrize("cls", [PGD, NES])
def test_budget_and_box(cls, norm, eps, targeted, random_start):
    model = tiny_cnn(head_scale=5.0)
    x = images(24)
    x[:4] = (x[:4] > 0.5).float()            # saturated pixels: the [0,1] clip is active
    y = predict(model, x)
    kw = dict(samples=4) if cls is NES else {}
    attack = cls(norm=norm, eps=eps, alpha=eps / 2, steps=4, random_start=random_start,
                 restarts=1, targeted=targeted, target="random", seed=3, **kw)
    res = attack(model, x, y)
    d = res.x_adv - x
    assert res.x_adv.shape == x.shape and res.x_adv.dtype == x.dtype
    assert res.x_adv.min() >= 0.0 and res.x_adv.max() <= 1.0
    assert (linf(d) <= eps + 1e-6).all() if norm == "linf" else (l2(d) <= eps * (1 + 1e-5)).all()
    assert res.success.dtype == torch.bool and res.success.shape == (24,)
    assert ((res.iterations >= 0) & (res.iterations <= 2 * 4)).all()
    assert (res.target is not None) == targeted
    if targeted:
        assert (res.target != y).all()      # "random" never picks the true class
    assert (res.queries is not None) == (cls is NES)
    # the perturbation is not trivially zero
    assert (d.abs().flatten(1).amax(1) > 0).any()


def test_projection_helpers():
    g = torch.Generator().manual_seed(0)
    d = torch.randn(6, 3, 4, 4, generator=g)
    small, big = 1e-3 * d, 10 * d
    for norm, measure, eps in [("linf", linf, 0.05), ("l2", l2, 0.5)]:
        torch.testing.assert_close(project(small, eps, norm), small)     # inside: unchanged
        p = project(big, eps, norm)
        torch.testing.assert_close(measure(p), torch.full((6,), eps))    # outside: onto the sphere
    # L2 projection keeps the direction; L-inf projection clips coordinates
    p = project_l2(big, 0.5)
    torch.testing.assert_close(F.cosine_similarity(p.flatten(1), big.flatten(1)), torch.ones(6))
    torch.testing.assert_close(project_linf(big, 0.05), big.clamp(-0.05, 0.05))
    s = step_direction(d, "l2")
    torch.testing.assert_close(l2(s), torch.ones(6))
    assert torch.equal(step_direction(d, "linf"), d.sign())


# ------------------------------------------------------------------------------ monotonicity
@pytest.mark.parametrize("norm,eps_list", [
    ("linf", [0.0, 1 / 255, 2 / 255, 4 / 255, 8 / 255]),
    ("l2", [0.0, 0.05, 0.1, 0.2, 0.4]),
])
@pytest.mark.learned
def test_robust_accuracy_monotone_in_eps(norm, eps_list, outcome):
    from conftest import TEST_SEED

    model = tiny_cnn(seed=2, head_scale=3.0)
    x = images(64, seed=5)
    y = predict(model, x)
    accs = []
    for eps in eps_list:
        attack = PGD(norm=norm, eps=eps, alpha=max(eps, 1e-6) / 4, steps=20, random_start=True,
                     restarts=2, seed=TEST_SEED)
        accs.append(robust_accuracy(model, x, y, attack, batch_size=32))
    assert accs[0] == 1.0                                  # eps = 0 changes nothing
    assert all(a >= b for a, b in zip(accs, accs[1:])), accs
    outcome.above("error rate at the smallest eps > 0", 1 - accs[1], 0)   # the attack does something,
    outcome.above("robust accuracy, smallest minus largest eps", accs[1] - accs[-1], 0)  # more with more eps


# ------------------------------------------------------------------------------ targeted rule
def fragile_linear(seed: int = 0) -> nn.Module:
    """An easily fooled model: 10-class linear map of 3x16x16 centred images."""
    torch.manual_seed(seed)
    model = nn.Sequential(Center(), nn.Flatten(), nn.Linear(3 * 16 * 16, 10)).eval()
    with torch.no_grad():
        model[2].weight.normal_(0, 1)
        model[2].bias.zero_()
    return model


def test_artifact_success_rule_and_least_likely_target():
    model = fragile_linear()
    x = images(48, size=16, seed=7)
    y = predict(model, x)
    attack = artifact_pgd()
    assert (attack.norm, attack.eps, attack.alpha, attack.steps) == ("linf", 8 / 255, 2 / 255, 7)
    assert (attack.random_start, attack.restarts, attack.targeted, attack.target) == \
        (False, 0, True, "least_likely")
    res = attack(model, x, y)
    with torch.no_grad():
        clean = model(x)
        adv = model(res.x_adv)
    assert torch.equal(res.target, clean.argmin(1))
    p_t = adv.softmax(1).gather(1, res.target[:, None]).squeeze(1)
    rule = (p_t > 0.99) & (adv.argmax(1) == res.target)
    assert 0 < int(res.success.sum()) < len(x), "need both successes and failures to test the rule"
    assert torch.equal(rule, res.success)                 # re-checked with a fresh forward pass
    assert (res.iterations[~res.success] == 7).all()
    assert ((res.iterations[res.success] >= 1) & (res.iterations[res.success] <= 7)).all()
    expected = torch.where(res.success, res.iterations.double(), torch.tensor(14.0)).mean()
    assert mean_iterations(res) == pytest.approx(float(expected))
    assert asr(res) == pytest.approx(float(res.success.float().mean()))


# ------------------------------------------------------------------------------ analytic optimum
def linear_two_class(d: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(d, 2)).double().eval()


@pytest.mark.parametrize("norm,eps", [("linf", 0.05), ("l2", 0.3)])
@pytest.mark.parametrize("targeted", [False, True])
def test_linear_single_step_is_analytic_optimum(norm, eps, targeted):
    model = linear_two_class(3 * 4 * 4)
    g = torch.Generator().manual_seed(0)
    x = (0.4 + 0.2 * torch.rand(10, 3, 4, 4, generator=g)).double()   # middle of [0,1]
    y = predict(model, x)
    other = 1 - y
    attack = PGD(norm=norm, eps=eps, alpha=eps, steps=1, targeted=targeted,
                 target=other if targeted else "least_likely", early_stop=False)
    res = attack(model, x, y)
    W = model[1].weight.detach()                                       # (2, d)
    w_diff = (W[other] - W[y]).view_as(x)                              # w_other - w_y per sample
    if norm == "linf":
        expected = eps * w_diff.sign()                                 # -eps sign(w_y - w_other)
        dual = w_diff.flatten(1).abs().sum(1)
    else:
        expected = eps * w_diff / w_diff.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        dual = w_diff.flatten(1).norm(dim=1)
    torch.testing.assert_close(res.x_adv - x, expected, atol=1e-9, rtol=0)
    # it achieves the dual-norm bound: the margin drops by exactly eps * ||w_y - w_other||_*
    with torch.no_grad():
        m_clean = model(x).gather(1, y[:, None]) - model(x).gather(1, other[:, None])
        m_adv = model(res.x_adv).gather(1, y[:, None]) - model(res.x_adv).gather(1, other[:, None])
    torch.testing.assert_close((m_clean - m_adv).squeeze(1), eps * dual, atol=1e-9, rtol=1e-9)


# ------------------------------------------------------------------------------ early stopping
def test_early_stopping_drops_finished_samples():
    base = tiny_cnn(seed=4, head_scale=3.0)
    x = images(40, seed=11)
    y = predict(base, x)
    steps = 10
    es, full = RowCounter(base), RowCounter(base)
    r_es = PGD(eps=4 / 255, alpha=1 / 255, steps=steps, early_stop=True)(es, x, y)
    r_full = PGD(eps=4 / 255, alpha=1 / 255, steps=steps, early_stop=False)(full, x, y)
    early = r_es.success & (r_es.iterations < steps)
    assert early.any() and (~early).any(), "need samples finishing early and late"
    # without early stopping every sample is seen steps + 1 times; with it, t + 1 times
    assert full.rows == len(x) * (steps + 1)
    assert es.rows == int((r_es.iterations + 1).sum()) < full.rows
    assert full.calls == es.calls == steps + 1
    # samples that had not finished early follow exactly the same trajectory
    late = ~early
    torch.testing.assert_close(r_es.x_adv[late], r_full.x_adv[late], atol=1e-6, rtol=0)
    assert torch.equal(r_es.success[late], r_full.success[late])
    # without early stopping the first success is recorded too (and the last step measured)
    assert torch.equal(r_full.iterations, r_es.iterations)
    assert r_es.success_last_step is None and r_full.success_last_step is not None
    # early finishers were flagged at a point where the rule holds
    assert (predict(base, r_es.x_adv[early]) != y[early]).all()


class DeadAtCentre(nn.Module):
    """2 classes: logits ``[0.1, relu(sum(x - 0.5))]``. At ``x = 0.5`` the input gradient is exactly
    zero (relu'(0) = 0), so PGD without a random start cannot move; random starts can."""

    def forward(self, x):
        s = (x - 0.5).flatten(1).sum(1)
        return torch.stack([torch.full_like(s, 0.1), torch.relu(s)], dim=1)


def test_restarts_keep_best_and_add_successes():
    model = DeadAtCentre()
    x = torch.full((32, 3, 4, 4), 0.5)
    y = torch.zeros(32, dtype=torch.long)
    one = PGD(eps=0.1, alpha=0.05, steps=3, seed=0)(model, x, y)
    assert not one.success.any() and torch.equal(one.x_adv, x)      # stuck at a zero gradient
    more = PGD(eps=0.1, alpha=0.05, steps=3, restarts=3, seed=0)(model, x, y)
    assert 0 < int(more.success.sum())
    assert (predict(model, more.x_adv[more.success]) == 1).all()
    # iterations sum over runs: a sample failing all 4 runs spent 4 * 3 steps
    assert (more.iterations[~more.success] == 12).all()
    assert (more.iterations[more.success] >= 3).all()               # run 0 always failed


def test_restarts_never_lose_run_zero():
    model = tiny_cnn(seed=3, head_scale=3.0)
    x = images(48, seed=12)
    y = predict(model, x)
    one = PGD(eps=2 / 255, alpha=0.5 / 255, steps=5, seed=0)(model, x, y)
    more = PGD(eps=2 / 255, alpha=0.5 / 255, steps=5, restarts=3, seed=0)(model, x, y)
    assert (more.success | ~one.success).all()             # never loses a success
    torch.testing.assert_close(more.x_adv[one.success], one.x_adv[one.success])
    # failures keep the run with the largest final loss, so never worse than run 0
    fail = ~more.success
    with torch.no_grad():
        l_one = F.cross_entropy(model(one.x_adv[fail]), y[fail], reduction="none")
        l_more = F.cross_entropy(model(more.x_adv[fail]), y[fail], reduction="none")
    assert (l_more >= l_one - 1e-6).all()


def test_eval_mode_restored_and_no_parameter_grads():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5),
                          nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    model.train()
    model[3].eval()                                          # a submodule with its own mode
    bn_mean = model[1].running_mean.clone()
    x = images(8)
    y = torch.arange(8) % 10
    seen_training = []
    model[1].register_forward_pre_hook(lambda m, i: seen_training.append(m.training))
    PGD(steps=3, early_stop=False)(model, x, y)
    assert seen_training and not any(seen_training)          # eval mode during the attack
    assert model.training and model[1].training and not model[3].training   # restored per module
    assert torch.equal(model[1].running_mean, bn_mean)       # BN statistics untouched
    assert all(p.grad is None and p.requires_grad for p in model.parameters())


def test_uint8_input_and_batches_match_single_call():
    model = tiny_cnn(seed=1, head_scale=3.0)
    x8 = (images(30) * 255).round().to(torch.uint8)
    xf = x8.float() / 255
    y = predict(model, xf)
    attack = PGD(eps=4 / 255, alpha=1 / 255, steps=4)
    a = attack(model, x8, y)
    b = attack_batches(model, x8, y, attack, batch_size=7)
    c = attack(model, xf, y)
    torch.testing.assert_close(a.x_adv, c.x_adv)
    torch.testing.assert_close(a.x_adv, b.x_adv, atol=1e-6, rtol=0)
    assert torch.equal(a.success, b.success) and torch.equal(a.iterations, b.iterations)
    assert len(AttackResult.cat([a, c])) == 60


def test_evaluation_set_first_n_correct():
    model = tiny_cnn(seed=0)
    x = images(50, seed=3)
    y = predict(model, x)
    y[[0, 3, 4, 10]] = (y[[0, 3, 4, 10]] + 1) % 10           # make some wrong
    xs, ys, idx = evaluation_set(model, x, y, n=20, batch_size=8)
    expected = [i for i in range(50) if i not in (0, 3, 4, 10)][:20]
    assert idx.tolist() == expected
    assert torch.equal(xs, x[expected]) and torch.equal(ys, y[expected])
    with pytest.warns(UserWarning):
        _, _, idx_all = evaluation_set(model, x, y, n=100, batch_size=16)
    assert len(idx_all) == 46


def test_parameter_validation_names_bad_values():
    with pytest.raises(ValueError, match="l3"):
        PGD(norm="l3")
    with pytest.raises(ValueError, match="most_likely"):
        PGD(targeted=True, target="most_likely")
    with pytest.raises(ValueError, match="eps"):
        PGD(eps=-1.0)
    with pytest.raises(ValueError, match="steps"):
        PGD(steps=2.5)
    with pytest.raises(ValueError, match="samples"):
        NES(samples=0)
    with pytest.raises(ValueError, match="untargeted"):
        PGD()(tiny_cnn(), images(2), torch.zeros(2, dtype=torch.long), target=1)


# ------------------------------------------------------------------------------ NES
def smooth_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(48, 16), nn.Tanh(), nn.Linear(16, 3)).double().eval()


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.cosine_similarity(a.flatten(1), b.flatten(1), dim=1)


def test_nes_gradient_matches_true_gradient():
    model = smooth_model()
    x = images(4, size=4, seed=2).double()
    y = torch.tensor([0, 1, 2, 0])
    nes = NES(sigma=1e-3, samples=2000, max_batch=1000)
    gen = torch.Generator().manual_seed(0)
    est = nes.estimate_gradient(model, x, y, generator=gen)
    true = PGD().gradient(model, x, y)
    assert (cosine(est, true) > 0.9).all(), cosine(est, true)
    # with few samples the estimate is clearly worse: the test can tell estimates apart
    few = NES(sigma=1e-3, samples=2).estimate_gradient(model, x, y, generator=gen)
    assert cosine(few, true).mean() < cosine(est, true).mean()


def test_nes_pluggable_loss_on_quadratic():
    # loss = ||x - c||^2 on the identity "model": gradient 2 (x - c)
    c = torch.full((3 * 4 * 4,), 0.3, dtype=torch.float64)
    nes = NES(sigma=1e-3, samples=1000, loss_fn=lambda out, lab: ((out - c) ** 2).sum(1))
    x = images(3, size=4, seed=4).double()
    est = nes.estimate_gradient(nn.Flatten(), x, None, generator=torch.Generator().manual_seed(1))
    assert (cosine(est, 2 * (x.flatten(1) - c)) > 0.9).all()


def test_nes_is_the_antithetic_formula_exactly_on_a_quadratic():
    # For L(x) = ||x - c||^2, L(x + s u) - L(x - s u) = 4 s (x - c).u exactly, so the estimate
    # must equal (2/S) sum_k ((x - c).u_k) u_k for the directions it drew.
    S, sigma = 5, 1e-2
    g = torch.Generator().manual_seed(3)
    u = torch.randn(2, S, 3, 4, 4, generator=g, dtype=torch.float64)

    class FixedDirections(NES):
        def sample_directions(self, m, shape, like, generator=None):
            return u[:m]

    c = torch.full((48,), 0.3, dtype=torch.float64)
    nes = FixedDirections(sigma=sigma, samples=S, loss_fn=lambda out, lab: ((out - c) ** 2).sum(1))
    x = images(2, size=4, seed=4).double()
    est = nes.estimate_gradient(nn.Flatten(), x, None)
    a = (x.flatten(1) - c).view_as(x)
    proj = (a[:, None] * u).flatten(2).sum(2)                     # (2, S): (x - c).u_k
    expected = 2.0 / S * (proj[..., None, None, None] * u).sum(1)
    torch.testing.assert_close(est, expected, atol=1e-9, rtol=1e-7)


@pytest.mark.parametrize("early_stop", [True, False])
@pytest.mark.parametrize("targeted", [False, True])
def test_nes_query_counts_are_exact(early_stop, targeted):
    base = tiny_cnn(seed=4, head_scale=5.0)
    x = images(20, seed=8)
    y = predict(base, x)
    S, steps = 6, 5
    wrapped = RowCounter(base)
    attack = NES(sigma=1e-3, samples=S, max_batch=50, eps=8 / 255, alpha=2 / 255, steps=steps,
                 targeted=targeted, target="runner_up", early_stop=early_stop, seed=0)
    res = attack(wrapped, x, y)
    c = 1 if targeted else 0                                    # the clean target query
    t = res.iterations
    run = t if early_stop else torch.full_like(t, steps)        # updates each sample received
    assert torch.equal(res.queries, c + (run + 1) + run * 2 * S)
    assert wrapped.rows == int(res.queries.sum())               # every row is accounted for
    assert wrapped.grad_calls == 0                              # forward queries only
    assert all(p.grad is None for p in base.parameters())
    if early_stop:
        assert res.success.any() and (t < steps).any()
        budgets = [int(res.queries.min()), int(res.queries.max())]
        curve = asr_at_budget(res, budgets)
        assert curve[0] <= curve[1] == pytest.approx(asr(res))
    else:
        assert (res.success | ~res.success_last_step).all()     # last-step success => any-step
        assert (t[~res.success] == steps).all() and (t[res.success] <= steps).all()


@pytest.mark.learned
def test_nes_attack_succeeds_and_artifact_nes_setting(outcome):
    a = artifact_nes()
    assert (a.sigma, a.samples, a.steps, a.eps, a.target) == (1e-3, 50, 7, 8 / 255, "runner_up")
    assert a._query_cost_per_step() == 100
    from conftest import TEST_SEED

    model = tiny_cnn(seed=0, head_scale=5.0)  # the model is fixed test data; the attack's seed varies
    x = images(16, seed=9)
    y = predict(model, x)
    res = NES(samples=20, eps=8 / 255, alpha=2 / 255, steps=7, seed=TEST_SEED)(model, x, y)
    outcome.above("NES success rate", asr(res), 0.3)
    assert (predict(model, res.x_adv[res.success]) != y[res.success]).all()
    assert confident_target(0.5)(torch.tensor([[0.0, 5.0]]), None, torch.tensor([1])).item()


# ------------------------------------------------------------------------------ multi-exit outputs
class TwoExits(nn.Module):
    """Returns a list of logits (an internal classifier and the final exit), like a multi-exit net."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(Center(), nn.Flatten(), nn.Linear(48, 16), nn.Tanh())
        self.ic, self.final = nn.Linear(48, 5), nn.Linear(16, 5)

    def forward(self, x):
        return [self.ic(4 * (x - 0.5).flatten(1)), self.final(self.body(x))]


def uniform_ce(outs, label):
    """DeepSloth-style objective: CE between the uniform distribution and each exit, summed."""
    return sum(-(o.log_softmax(1)).mean(1) for o in outs)


@pytest.mark.parametrize("cls", [IterativeAttack, NESGradient])
def test_label_free_loss_on_list_outputs(cls):
    model = TwoExits().eval()
    x = images(6, size=4, seed=1)
    kw = dict(samples=20, max_batch=30) if cls is NESGradient else {}
    attack = cls(norm="linf", eps=0.05, alpha=0.01, steps=6, loss_fn=uniform_ce,
                 success_fn=never, descend=True, **kw)
    res = attack(model, x)
    with torch.no_grad():
        before, after = uniform_ce(model(x), None), uniform_ce(model(res.x_adv), None)
    assert (after < before).all()
    assert not res.success.any() and (res.iterations == 6).all()
    assert (linf(res.x_adv - x) <= 0.05 + 1e-6).all()
    if cls is NESGradient:                      # no target query, 6 + 1 checks, 6 steps x 40
        assert (res.queries == 7 + 6 * 40).all()


# ------------------------------------------------------------------------------ review fixes (issue 10)
def test_mean_iterations_counts_failures_as_twice_the_steps_run():
    """The artifact's rule is "failures count 2 x steps"; with 3 steps that is 6, not 14."""
    model = tiny_cnn(seed=4, head_scale=3.0)
    x = images(40, seed=11)
    y = predict(model, x)
    res = PGD(eps=2 / 255, alpha=0.5 / 255, steps=3)(model, x, y)
    assert res.success.any() and (~res.success).any(), "need successes and failures"
    expected = torch.where(res.success, res.iterations.double(), torch.tensor(6.0)).mean()
    assert mean_iterations(res) == pytest.approx(float(expected))
    # with restarts a failure received steps x runs updates: 2 x 3 x 2 = 12
    more = PGD(eps=2 / 255, alpha=0.5 / 255, steps=3, restarts=1, seed=0)(model, x, y)
    fail = ~more.success
    assert fail.any() and (more.iterations[fail] == 6).all()
    expected = torch.where(more.success, more.iterations.double(), torch.tensor(12.0)).mean()
    assert mean_iterations(more) == pytest.approx(float(expected))
    # an explicit value still wins
    expected = torch.where(res.success, res.iterations.double(), torch.tensor(14.0)).mean()
    assert mean_iterations(res, fail_value=14) == pytest.approx(float(expected))


@pytest.mark.parametrize("where", ["attack", "call"])
def test_attack_batches_slices_per_sample_targets(where):
    model = fragile_linear()
    x = images(10, size=16, seed=7)
    y = predict(model, x)
    target = (y + 1 + torch.arange(10) % 9) % 10            # a different target per image
    assert (target != y).all()
    if where == "attack":
        attack = PGD(targeted=True, target=target, steps=4)
        res = attack_batches(model, x, y, attack, batch_size=4)
        single = attack(model, x, y)
    else:
        attack = PGD(targeted=True, steps=4)
        res = attack_batches(model, x, y, attack, batch_size=4, target=target)
        single = attack(model, x, y, target=target)
    assert torch.equal(res.target, target)
    assert torch.equal(res.success, single.success)
    torch.testing.assert_close(res.x_adv, single.x_adv, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="target"):
        attack_batches(model, x, y, PGD(targeted=True), batch_size=4, target=target[:7])


def test_success_rule_has_one_keyword_success_fn():
    """``success_fn`` is the rule (a callable) for every attack; ``AttackResult.success`` is the
    outcome (a tensor). The old ``PGD(success=...)`` spelling is rejected."""
    from nascore.attacks import hits_target

    for make in (lambda **k: PGD(targeted=True, **k), lambda **k: NES(targeted=True, samples=2, **k),
                 artifact_pgd, artifact_nes):
        attack = make(success_fn=hits_target)
        assert attack.success_fn is hits_target
        assert "success" not in attack.config() and attack.config()["success_fn"] == "hits_target"
        with pytest.raises(TypeError, match="success"):
            make(success=hits_target)


# ------------------------------------------------------------------------------ any step vs last step (issue 9)
class Overshoot(nn.Module):
    """Two classes, logits ``[0, g(s)]`` with ``s = mean(x - 0.5)`` and a bump
    ``g(s) = 1 - ((s - 1.2a) / 0.5a)^2``. Untargeted L∞ PGD with step ``a`` from ``x = 0.5`` moves
    ``s`` by ``±a`` per step along ``sign(g')``: 0 → a → 2a → a → 2a …; class 1 (misclassified)
    wins at ``s = a`` only. So the sample is broken after step 1, correct again after step 2."""

    def __init__(self, a: float):
        super().__init__()
        self.a = a

    def forward(self, x):
        s = (x - 0.5).flatten(1).mean(1)
        g = 1 - ((s - 1.2 * self.a) / (0.5 * self.a)) ** 2
        return torch.stack([torch.zeros_like(g), g], dim=1)


@pytest.mark.parametrize("cls", [PGD, NES])
def test_any_step_and_last_step_success_differ_on_an_overshooting_path(cls):
    a = 0.01
    model = Overshoot(a).double()
    x = torch.full((3, 3, 1, 1), 0.5, dtype=torch.float64)   # 3 pixels: NES gets every sign right
    y = torch.zeros(3, dtype=torch.long)
    assert (predict(model, x) == 0).all()
    kw = dict(samples=200, sigma=1e-4, seed=0) if cls is NES else {}
    for steps, broken_at_end in ((2, False), (3, True)):
        full = cls(eps=0.05, alpha=a, steps=steps, early_stop=False, **kw)(model, x, y)
        assert full.success.all() and full.success_any_step.all()       # broken at step 1
        assert (full.iterations == 1).all()
        assert bool(full.success_last_step.all()) is broken_at_end
        # x_adv is the first point where the rule held: misclassified there
        assert (predict(model, full.x_adv) == 1).all()
        # early stopping reaches the same any-step outcome and does not measure the last step
        es = cls(eps=0.05, alpha=a, steps=steps, early_stop=True, **kw)(model, x, y)
        assert torch.equal(es.success, full.success) and torch.equal(es.iterations, full.iterations)
        assert es.success_last_step is None
        torch.testing.assert_close(es.x_adv, full.x_adv)
    # robust accuracy: 0 % robust at every step, 100 % at the last step (steps = 2)
    attack = PGD(eps=0.05, alpha=a, steps=2, early_stop=False)
    assert robust_accuracy(model, x, y, attack) == 0.0
    assert robust_accuracy(model, x, y, attack, last_step=True) == 1.0
    with pytest.raises(ValueError, match="early_stop=False"):
        robust_accuracy(model, x, y, PGD(eps=0.05, alpha=a, steps=2), last_step=True)


def test_early_stop_changes_cost_not_outcome():
    """White-box, deterministic: with and without early stopping the adversarial points, the any-step
    successes and the iteration counts are identical; only the last-step outcome is extra."""
    model = tiny_cnn(seed=4, head_scale=3.0)
    x = images(40, seed=11)
    y = predict(model, x)
    es = PGD(eps=4 / 255, alpha=1 / 255, steps=10, early_stop=True)(model, x, y)
    full = PGD(eps=4 / 255, alpha=1 / 255, steps=10, early_stop=False)(model, x, y)
    torch.testing.assert_close(es.x_adv, full.x_adv, atol=1e-6, rtol=0)
    assert torch.equal(es.success, full.success) and torch.equal(es.iterations, full.iterations)
    # a sample broken at the last step was broken at some step
    assert (full.success | ~full.success_last_step).all()
    with torch.no_grad():
        assert torch.equal(model(full.x_adv).argmax(1) != y, full.success)


# ------------------------------------------------------------------------------ per-image table (issue 9)
def test_result_as_a_per_image_table_with_image_indices(tmp_path):
    import pandas as pd

    model = tiny_cnn(seed=0)
    x_all = images(50, seed=3)
    y_all = predict(model, x_all)
    y_all[[0, 3, 4, 10]] = (y_all[[0, 3, 4, 10]] + 1) % 10
    x, y, index = evaluation_set(model, x_all, y_all, n=20, batch_size=8)
    attack = PGD(targeted=True, target="least_likely", eps=4 / 255, alpha=1 / 255, steps=3,
                 early_stop=False)
    res = attack_batches(model, x, y, attack, batch_size=8)
    table = res.to_frame(index=index, model="tiny", seed=0)
    assert list(table.columns[:2]) == ["model", "seed"]
    assert table["image"].tolist() == index.tolist() and table["image"].is_unique
    assert table["success_any_step"].tolist() == res.success.tolist()
    assert table["success_last_step"].tolist() == res.success_last_step.tolist()
    assert table["iterations"].tolist() == res.iterations.tolist()
    assert table["target"].tolist() == res.target.tolist()
    assert "queries" not in table                                     # white-box: none
    assert len(table) == len(res) and table.index.tolist() == list(range(len(res)))
    # stored and read back, then paired with another model's table on the image index
    table.to_csv(tmp_path / "a.csv", index=False)
    back = pd.read_csv(tmp_path / "a.csv")
    other = PGD(targeted=True, eps=4 / 255, alpha=1 / 255, steps=3)(tiny_cnn(seed=1), x, y)
    pair = back.merge(other.to_frame(index=index).iloc[::-1], on="image", suffixes=("_a", "_b"))
    assert pair["image"].tolist() == index.tolist()
    assert pair["success_any_step_b"].tolist() == other.success.tolist()
    assert "success_last_step_b" not in pair                          # early stop: not measured
    with pytest.raises(ValueError, match="index"):
        res.to_frame(index=index[:5])
