"""Tests for nascore.analysis (gradient variance, Hessian): analytic cases and references.

Contours and directions: tests/test_analysis_contours.py."""
from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nascore.analysis import (EigenResult, TraceResult, gradient_variance,
                              gradient_variance_loop, hessian_trace, hvp, hvp_fn,
                              power_iteration, top_eigenvalue)
from nascore.models.base import Normalize


pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
def small_convnet(seed: int = 0) -> nn.Module:
    """Conv net with BN (non-trivial running stats) and dropout, left in *train* mode."""
    torch.manual_seed(seed)
    m = nn.Sequential(
        Normalize(),
        nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU()),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5), nn.Linear(8, 10),
    )
    g = torch.Generator().manual_seed(seed + 1)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.copy_(torch.rand(mod.running_mean.shape, generator=g) - 0.5)
            mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=g) + 0.5)
            mod.weight.data.copy_(torch.rand(mod.weight.shape, generator=g) + 0.5)
            mod.bias.data.copy_(torch.rand(mod.bias.shape, generator=g) - 0.5)
    return m.train()


def modes(m: nn.Module) -> list[bool]:
    return [mod.training for mod in m.modules()]


def state_copy(m: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def assert_bit_identical(m: nn.Module, before: dict) -> None:
    after = m.state_dict()
    assert set(after) == set(before)
    for k in before:
        assert torch.equal(after[k], before[k]), k


def tiny_mlp() -> nn.Module:
    """Tiny float64 MLP with BN1d (non-trivial running stats) and dropout, in train mode."""
    torch.manual_seed(3)
    m = nn.Sequential(nn.Flatten(), nn.Linear(6, 4), nn.BatchNorm1d(4), nn.Tanh(),
                      nn.Dropout(0.3), nn.Linear(4, 3)).double()
    m[2].running_mean.copy_(torch.tensor([0.1, -0.2, 0.3, 0.0]))
    m[2].running_var.copy_(torch.tensor([0.5, 1.5, 1.0, 2.0]))
    return m.train()


def flat_loss(model: nn.Module, x, y):
    """``theta -> CE(model_theta(x), y)`` in eval mode, on a flat parameter vector."""
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    sizes = [p.numel() for _, p in model.named_parameters()]
    buffers = dict(model.named_buffers())

    def f(theta):
        params = {n: t.view(s) for n, t, s in zip(names, theta.split(sizes), shapes)}
        was = model.training
        model.eval()
        try:
            return F.cross_entropy(torch.func.functional_call(model, (params, buffers), (x,)), y)
        finally:
            model.train(was)

    theta0 = torch.cat([p.detach().flatten() for p in model.parameters()])
    return f, theta0, names, shapes, sizes


# ------------------------------------------------------------------------------------------
# gradient variance
# ------------------------------------------------------------------------------------------
def test_gv_linear_softmax_closed_form_with_clipping():
    torch.manual_seed(0)
    n, c, k = 40, 3, 4
    x = torch.rand(n, c, 2, 2)
    x[::3] *= 3.0  # large inputs -> large gradients -> clipping active
    y = torch.randint(0, k, (n,))
    model = nn.Sequential(nn.Flatten(), nn.Linear(c * 4, k))

    # closed form: dCE/dW = (p - e_y) x^T, dCE/db = p - e_y, in float64
    W = model[1].weight.detach().double()
    b = model[1].bias.detach().double()
    xf = x.flatten(1).double()
    p = torch.softmax(xf @ W.T + b, dim=1)
    r = p - F.one_hot(y, k).double()                       # (n, k)
    g = torch.cat([(r[:, :, None] * xf[:, None, :]).flatten(1), r], dim=1)  # (n, P)
    norms = g.norm(dim=1)
    assert (norms > 5.5).sum() >= 3 and (norms < 4.5).sum() >= 3, "both regimes needed"

    def gv_of(gg):
        return float((gg.square().mean(0) - gg.mean(0).square()).clamp_min(0).sqrt().sum())

    g_clip = g * (5.0 / norms).clamp(max=1.0)[:, None]
    expected, unclipped = gv_of(g_clip), gv_of(g)
    assert abs(expected - unclipped) > 0.05 * expected  # clipping changes the answer

    res = gradient_variance(model, x, y, clip_norm=5.0, chunk_size=7)
    assert res.n == n and res.n_params == g.shape[1]
    torch.testing.assert_close(res.per_sample_norms, norms, rtol=1e-5, atol=1e-6)
    assert res.gv == pytest.approx(expected, rel=1e-5)
    assert res.clipped_fraction == pytest.approx(float((norms > 5).double().mean()))
    assert gradient_variance_loop(model, x, y).gv == pytest.approx(expected, rel=1e-5)
    assert gradient_variance(model, x, y, clip_norm=None).gv == pytest.approx(unclipped, rel=1e-5)


def test_gv_vmap_equals_loop_on_convnet_with_bn_and_dropout():
    m = small_convnet()
    torch.manual_seed(1)
    x, y = torch.rand(11, 3, 16, 16), torch.randint(0, 10, (11,))
    before, mode_before = state_copy(m), modes(m)
    fast = gradient_variance(m, x, y, chunk_size=4)      # chunks 4, 4, 3
    ref = gradient_variance_loop(m, x, y)
    assert fast.gv == pytest.approx(ref.gv, rel=1e-5)
    torch.testing.assert_close(fast.per_sample_norms, ref.per_sample_norms, rtol=1e-5, atol=1e-7)
    assert fast.n_params == sum(p.numel() for p in m.parameters())
    assert modes(m) == mode_before and m.training          # mode restored
    assert_bit_identical(m, before)                        # BN running stats untouched


def test_gv_uses_eval_mode_not_train_mode():
    # With dropout/BN in train mode the result would differ (and be random); eval is the protocol.
    m = small_convnet()
    torch.manual_seed(2)
    x, y = torch.rand(6, 3, 16, 16), torch.randint(0, 10, (6,))
    a = gradient_variance(m, x, y).gv
    m.eval()
    b = gradient_variance(m, x, y, force_eval=False).gv
    assert a == pytest.approx(b, rel=1e-6)


def test_gv_refuses_batchnorm_in_train_mode():
    m = small_convnet()
    x, y = torch.rand(4, 3, 16, 16), torch.randint(0, 10, (4,))
    with pytest.raises(ValueError, match="BatchNorm"):
        gradient_variance(m, x, y, force_eval=False)
    with pytest.raises(ValueError, match="clip_norm"):
        gradient_variance(m, x, y, clip_norm=0)


def test_gv_clipped_fraction_and_closed_form_on_known_gradient_norms():
    # Zero-weight linear model, 2 classes, no bias, all labels 0: p = (1/2, 1/2) for every input,
    # so dCE/dW = (p - e_0) x^T = [-x/2; x/2], with norm ||x|| / sqrt(2). Inputs along one
    # coordinate with x_i = sqrt(2) * c_i give gradient norms |c_i| exactly.
    c = torch.tensor([1.0, 3.0, 10.0, -10.0, 4.9, -5.5], dtype=torch.float64)
    d = 3
    x = torch.zeros(len(c), 1, 1, d, dtype=torch.float64)
    x[:, 0, 0, 1] = math.sqrt(2) * c
    y = torch.zeros(len(c), dtype=torch.long)
    model = nn.Sequential(nn.Flatten(), nn.Linear(d, 2, bias=False)).double()
    nn.init.zeros_(model[1].weight)

    res = gradient_variance(model, x, y, clip_norm=5.0, chunk_size=4)
    torch.testing.assert_close(res.per_sample_norms, c.abs(), rtol=1e-12, atol=1e-12)
    assert res.n_clipped == 3 and res.clipped_fraction == pytest.approx(0.5)   # 10, 10, 5.5
    # Clipped gradients: coordinate (0,1) holds -c'/sqrt(2), coordinate (1,1) holds +c'/sqrt(2)
    # with c' = sign(c) min(|c|, 5); GV = 2 * std(c') / sqrt(2) = sqrt(2) * std(c').
    c_clip = c.sign() * c.abs().clamp(max=5.0)
    expected = math.sqrt(2) * float(c_clip.std(unbiased=False))
    assert res.gv == pytest.approx(expected, rel=1e-12)
    assert res.n_params == 2 * d
    assert res.gv_per_param == pytest.approx(expected / (2 * d), rel=1e-12)
    assert res.log10_gv == pytest.approx(math.log10(expected), rel=1e-12)
    assert res.log10_gv_per_param == pytest.approx(math.log10(expected / (2 * d)), rel=1e-12)
    unclipped = gradient_variance(model, x, y, clip_norm=None)
    assert unclipped.gv == pytest.approx(math.sqrt(2) * float(c.std(unbiased=False)), rel=1e-12)
    assert unclipped.clipped_fraction == 0.0 and unclipped.n_clipped == 0
    row = res.summary("gv_trained_")
    assert row["gv_trained_gv"] == res.gv and row["gv_trained_clipped_fraction"] == 0.5
    assert row["gv_trained_gv_per_param"] == res.gv_per_param
    assert row["gv_trained_median_norm"] == pytest.approx(float(c.abs().median()))
    assert {"gv_trained_log10_gv", "gv_trained_n_params", "gv_trained_clip_norm"} <= set(row)
    # gradient exactly at the threshold is not "clipped" (rescaling by 1 changes nothing)
    at = gradient_variance(model, x[:1] * 5, y[:1])
    assert at.per_sample_norms.item() == pytest.approx(5.0) and at.n_clipped == 0


# ------------------------------------------------------------------------------------------
# Hessian
# ------------------------------------------------------------------------------------------
def quadratic(eigs, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(len(eigs), len(eigs), generator=g, dtype=torch.float64))
    A = q @ torch.diag(torch.tensor(eigs, dtype=torch.float64)) @ q.T
    A = (A + A.T) / 2
    theta = torch.randn(len(eigs), generator=g, dtype=torch.float64)
    return A, theta, (lambda t: 0.5 * t @ A @ t)


@pytest.mark.parametrize("method", ["forward-over-reverse", "double-backward"])
def test_power_iteration_recovers_top_eigenvalue_of_quadratic(method):
    A, theta, f = quadratic([10.0, 6.0, 3.0, 1.0, 0.5, -2.0, -4.0, 0.1])
    res = top_eigenvalue(f, params=theta, max_iter=200, tol=1e-9, method=method)
    assert res.eigenvalue == pytest.approx(10.0, rel=1e-3)
    assert len(res.history) < 200                          # converged and stopped
    # dict parameters work the same way
    res2 = top_eigenvalue(lambda d: f(d["w"]), params={"w": theta}, max_iter=200, tol=1e-9, method=method)
    assert res2.eigenvalue == pytest.approx(10.0, rel=1e-3)


def test_hutchinson_is_exact_for_diagonal_hessian():
    # z^T D z = tr(D) for every Rademacher z: zero variance.
    d = torch.tensor([3.0, -1.0, 0.5, 7.0], dtype=torch.float64)
    res = hessian_trace(lambda t: 0.5 * (d * t * t).sum(), params=torch.ones(4, dtype=torch.float64), n_samples=5)
    assert res.trace == pytest.approx(9.5, abs=1e-12) and res.stderr == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("method", ["forward-over-reverse", "double-backward"])
def test_hvp_matches_exact_hessian_of_small_network(method):
    m = tiny_mlp()
    torch.manual_seed(4)
    x, y = torch.randn(9, 6, dtype=torch.float64), torch.randint(0, 3, (9,))
    f, theta0, names, shapes, sizes = flat_loss(m, x, y)
    H = torch.autograd.functional.hessian(f, theta0)
    v_flat = torch.randn(theta0.numel(), dtype=torch.float64)
    v = {n: t.view(s) for n, t, s in zip(names, v_flat.split(sizes), shapes)}
    op = hvp(m, None, x, y, method=method)
    hv = op(v)
    assert op.method == method
    got = torch.cat([hv[n].flatten() for n in names])
    torch.testing.assert_close(got, H @ v_flat, rtol=1e-8, atol=1e-10)
    assert m.training and m[4].training                    # modes restored


def test_hvp_auto_falls_back_to_double_backward():
    class Cube(torch.autograd.Function):                   # old style: no torch.func support
        @staticmethod
        def forward(ctx, t):
            ctx.save_for_backward(t)
            return t ** 3

        @staticmethod
        def backward(ctx, go):
            (t,) = ctx.saved_tensors
            return go * 3 * t ** 2                         # differentiable -> double backward ok

    theta = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    op = hvp_fn(lambda t: Cube.apply(t).sum(), theta)      # H = diag(6 t)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        out = op(torch.ones(3, dtype=torch.float64))
    assert op.method == "double-backward"
    assert any("falling back" in str(w.message) for w in rec)
    torch.testing.assert_close(out, 6 * theta)
    torch.testing.assert_close(op(torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)),
                               torch.tensor([0.0, -6.0, 0.0], dtype=torch.float64))


def test_hutchinson_trace_and_top_eigenvalue_of_small_network():
    m = tiny_mlp()
    torch.manual_seed(5)
    x, y = torch.randn(12, 6, dtype=torch.float64), torch.randint(0, 3, (12,))
    f, theta0, *_ = flat_loss(m, x, y)
    H = torch.autograd.functional.hessian(f, theta0)
    # Rademacher variance is 2 * sum_{i != j} H_ij^2: large here (std ~1.4x the trace), so many
    # probes; double-backward is the fastest HVP on a tiny model (both methods tested above).
    n = 3000
    tr = hessian_trace(m, x, y, n_samples=n, seed=0, tol=None, method="double-backward")
    mean, se = tr.trace, tr.stderr
    exact = float(torch.trace(H))
    exact_se = (2 * float(H.square().sum() - H.diagonal().square().sum()) / n) ** 0.5
    assert exact_se < 0.03 * abs(exact)                    # the test has power against a 10% bias
    assert abs(mean - exact) <= 3 * exact_se
    assert se == pytest.approx(exact_se, rel=0.15)         # reported stderr is calibrated
    ev = torch.linalg.eigvalsh(H)
    top = float(ev[ev.abs().argmax()])
    res = top_eigenvalue(m, x, y, max_iter=300, tol=1e-10)  # default method (torch.func)
    assert res.eigenvalue == pytest.approx(top, rel=1e-3)




def test_power_iteration_converges_within_tol_and_reports_it():
    eigs = [10.0, 5.0, 3.0, 1.0, -2.0, 0.5]
    A, theta, f = quadratic(eigs, seed=3)
    res = top_eigenvalue(f, params=theta, max_iter=500, tol=1e-6)
    assert isinstance(res, EigenResult)
    assert res.converged and res.iterations < 500 and res.rel_change < 1e-6
    assert res.iterations == len(res.history)
    h = res.history
    assert abs(h[-1] - h[-2]) / abs(h[-1]) == pytest.approx(res.rel_change)
    assert abs(h[-2] - h[-3]) / abs(h[-2]) >= 1e-6          # it stopped at the first step below tol
    assert res.eigenvalue == pytest.approx(10.0, rel=1e-5)
    assert res.which == "magnitude" and res.largest_magnitude == res.eigenvalue and not res.shifted


def test_power_iteration_reports_not_converged_when_cap_is_hit():
    # top two eigenvalues 10 and 9.9: the Rayleigh quotient approaches 10 at rate 0.99^2 per step
    A, theta, f = quadratic([10.0, 9.9, 1.0, 0.5], seed=1)
    op = hvp_fn(f, theta)
    slow = power_iteration(lambda v: {"theta": op(v["theta"])}, {"theta": theta}, max_iter=15,
                           tol=1e-6, seed=2)
    assert not slow.converged and slow.iterations == 15 and slow.rel_change >= 1e-6
    assert slow.max_iter == 15 and slow.tol == 1e-6
    done = power_iteration(lambda v: {"theta": op(v["theta"])}, {"theta": theta}, max_iter=5000,
                           tol=1e-6, seed=2)
    assert done.converged and done.iterations > 15
    assert done.eigenvalue == pytest.approx(10.0, rel=1e-4)


def test_power_iteration_rejects_bad_arguments():
    A, theta, f = quadratic([1.0, 2.0])
    with pytest.raises(ValueError, match="max_iter"):
        top_eigenvalue(f, params=theta, max_iter=0)
    with pytest.raises(ValueError, match="tol"):
        top_eigenvalue(f, params=theta, tol=0)
    with pytest.raises(ValueError, match="data whose loss"):
        top_eigenvalue(tiny_mlp(), None, None)
    with pytest.raises(ValueError, match="which"):
        top_eigenvalue(f, params=theta, which="smallest")
    with pytest.raises(TypeError):
        top_eigenvalue(f, params=theta, iters=10)                # the one name is max_iter


# ------------------------------------------------------------------------------------------
# the largest algebraic eigenvalue (shifted power iteration), as chapter 3 uses it
# ------------------------------------------------------------------------------------------
def _diagonal_quadratic(diag):
    a = torch.tensor(diag, dtype=torch.float64)
    w = {"w": torch.zeros(len(diag), dtype=torch.float64)}
    return hvp_fn(lambda p: 0.5 * (a * p["w"] ** 2).sum(), w), w


@pytest.mark.parametrize("diag, top, magnitude, shifted", [((-5.0, 1.0, 2.0), 2.0, -5.0, True),
                                                           ((3.0, 1.0, -0.5), 3.0, 3.0, False)])
def test_largest_eigenvalue_is_algebraic_not_magnitude(diag, top, magnitude, shifted):
    op, like = _diagonal_quadratic(diag)
    r = power_iteration(op, like, max_iter=500, tol=1e-10, which="algebraic")
    assert r.eigenvalue == pytest.approx(top, rel=1e-6)
    assert r.largest_magnitude == pytest.approx(magnitude, rel=1e-6)
    assert r.shifted is shifted and r.converged and r.which == "algebraic"
    assert r.history[-1] == r.eigenvalue and len(r.history) == r.iterations      # both runs, in λ units
    plain = power_iteration(op, like, max_iter=500, tol=1e-10)                   # which="magnitude"
    assert plain.eigenvalue == pytest.approx(magnitude, rel=1e-6) and not plain.shifted


def test_largest_eigenvalue_reports_non_convergence():
    op, like = _diagonal_quadratic((1.0, 0.999, 0.998, -0.5))
    r = power_iteration(op, like, max_iter=3, tol=1e-12, which="algebraic")
    assert not r.converged and r.iterations == 3


def test_largest_eigenvalue_of_a_model_matches_the_dense_hessian():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 2 * 2, 3)).double().eval()
    x, y = torch.rand(16, 3, 2, 2, dtype=torch.float64), torch.randint(0, 3, (16,))
    r = top_eigenvalue(model, x, y, max_iter=2000, tol=1e-10, which="algebraic")
    params = dict(model.named_parameters())
    flat = torch.cat([p.detach().flatten() for p in params.values()])

    def loss(v):
        w, b = v[:36].view(3, 12), v[36:]
        return nn.functional.cross_entropy(x.flatten(1) @ w.T + b, y)

    eig = torch.linalg.eigvalsh(torch.autograd.functional.hessian(loss, flat))
    assert r.eigenvalue == pytest.approx(float(eig.max()), rel=1e-4)


def test_hutchinson_stops_at_tolerance_or_cap():
    d = torch.tensor([3.0, -1.0, 0.5, 7.0], dtype=torch.float64)
    f = lambda t: 0.5 * (d * t * t).sum()  # noqa: E731  diagonal: every probe is exact, se = 0
    res = hessian_trace(f, params=torch.ones(4, dtype=torch.float64), n_samples=50, tol=1e-3,
                        min_samples=7)
    assert isinstance(res, TraceResult)
    assert res.converged and res.n_probes == 7 and res.stderr == 0.0 and res.trace == 9.5
    # non-diagonal Hessian: probes vary; a tight tolerance is not met within the cap
    A, theta, g = quadratic([4.0, -3.0, 2.0, 1.0, 0.5], seed=5)
    capped = hessian_trace(g, params=theta, n_samples=12, tol=1e-6, seed=1)
    assert capped.converged is False and capped.n_probes == 12 and capped.max_probes == 12
    vals = torch.tensor(capped.samples, dtype=torch.float64)
    assert capped.trace == pytest.approx(float(vals.mean()))
    assert capped.stderr == pytest.approx(float(vals.std(unbiased=True)) / 12 ** 0.5)
    assert capped.rel_stderr == pytest.approx(capped.stderr / abs(capped.trace))
    assert capped.rel_stderr >= 1e-6
    fixed = hessian_trace(g, params=theta, n_samples=12, tol=None, seed=1)
    assert fixed.converged is None and fixed.samples == capped.samples
    loose = hessian_trace(g, params=theta, n_samples=400, tol=0.2, seed=1, min_samples=10)
    assert loose.converged and 10 <= loose.n_probes < 400 and loose.rel_stderr < 0.2


def test_hessian_is_of_the_data_passed_and_batching_is_exact():
    m = tiny_mlp()
    torch.manual_seed(6)
    x, y = torch.randn(13, 6, dtype=torch.float64), torch.randint(0, 3, (13,))
    f, theta0, names, shapes, sizes = flat_loss(m, x, y)
    H = torch.autograd.functional.hessian(f, theta0)
    f_half, *_ = flat_loss(m, x[:6], y[:6])
    H_half = torch.autograd.functional.hessian(f_half, theta0)
    v_flat = torch.randn(theta0.numel(), dtype=torch.float64)
    v = {n: t.view(s) for n, t, s in zip(names, v_flat.split(sizes), shapes)}
    for method in ("forward-over-reverse", "double-backward"):
        op = hvp(m, None, x, y, method=method, batch_size=5)   # batches 5, 5, 3
        got = torch.cat([op(v)[n].flatten() for n in names])
        torch.testing.assert_close(got, H @ v_flat, rtol=1e-8, atol=1e-10)
        assert op.method == method
    ev = torch.linalg.eigvalsh(H)
    ev_half = torch.linalg.eigvalsh(H_half)
    top = float(ev[ev.abs().argmax()])
    top_half = float(ev_half[ev_half.abs().argmax()])
    assert abs(top - top_half) > 1e-3 * abs(top)             # the two data sets differ
    res = top_eigenvalue(m, x, y, max_iter=500, tol=1e-9, batch_size=4)
    assert res.eigenvalue == pytest.approx(top, rel=1e-5) and res.n_images == 13
    half = top_eigenvalue(m, x[:6], y[:6], max_iter=500, tol=1e-9)
    assert half.eigenvalue == pytest.approx(top_half, rel=1e-5) and half.n_images == 6
    tr = hessian_trace(m, x, y, n_samples=4, tol=None, batch_size=6)
    assert tr.n_images == 13 and tr.n_probes == 4
    with pytest.raises(ValueError, match="batch_size"):
        hvp(m, None, x, y, batch_size=0)
