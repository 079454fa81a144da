"""Tests for nascore.analysis: analytic cases and reference implementations."""
from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nascore.analysis import (ContourResult, balanced_sign_directions, first_conv, flatness,
                              gradient_variance, gradient_variance_loop, grid_coordinates,
                              hessian_trace, hvp, hvp_fn, input_contour, input_directions,
                              parameter_contour, plot_contour, top_eigenvalue)
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
    lam, hist = top_eigenvalue(f, params=theta, iters=200, tol=1e-9, method=method)
    assert lam == pytest.approx(10.0, rel=1e-3)
    assert len(hist) < 200                                 # converged and stopped
    # dict parameters work the same way
    lam2, _ = top_eigenvalue(lambda d: f(d["w"]), params={"w": theta}, iters=200, tol=1e-9,
                             method=method)
    assert lam2 == pytest.approx(10.0, rel=1e-3)


def test_hutchinson_is_exact_for_diagonal_hessian():
    # z^T D z = tr(D) for every Rademacher z: zero variance.
    d = torch.tensor([3.0, -1.0, 0.5, 7.0], dtype=torch.float64)
    mean, se = hessian_trace(lambda t: 0.5 * (d * t * t).sum(), params=torch.ones(4,
                             dtype=torch.float64), n_samples=5)
    assert mean == pytest.approx(9.5, abs=1e-12) and se == pytest.approx(0.0, abs=1e-12)


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
    mean, se = hessian_trace(m, x, y, n_samples=n, seed=0, method="double-backward")
    exact = float(torch.trace(H))
    exact_se = (2 * float(H.square().sum() - H.diagonal().square().sum()) / n) ** 0.5
    assert exact_se < 0.03 * abs(exact)                    # the test has power against a 10% bias
    assert abs(mean - exact) <= 3 * exact_se
    assert se == pytest.approx(exact_se, rel=0.15)         # reported stderr is calibrated
    ev = torch.linalg.eigvalsh(H)
    top = float(ev[ev.abs().argmax()])
    lam, _ = top_eigenvalue(m, x, y, iters=300, tol=1e-10)  # default method (torch.func)
    assert lam == pytest.approx(top, rel=1e-3)


# ------------------------------------------------------------------------------------------
# contours
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(8, 3, 3, 3), (3, 32, 32), (64, 3, 7, 7)])
def test_balanced_directions_even(shape):
    d1, d2 = balanced_sign_directions(shape, seed=40)
    assert d1.shape == d2.shape == torch.Size(shape)
    assert set(d1.unique().tolist()) == {-1.0, 1.0} and set(d2.unique().tolist()) == {-1.0, 1.0}
    assert d1.sum().item() == 0 and (d1 == -1).sum().item() == d1.numel() // 2
    assert (d1 * d2).sum().item() == 0.0                   # exact, float32
    assert (d1.double() * d2.double()).sum().item() == 0.0
    e1, e2 = balanced_sign_directions(shape, seed=40)
    assert torch.equal(d1, e1) and torch.equal(d2, e2)     # deterministic
    f1, _ = balanced_sign_directions(shape, seed=41)
    assert not torch.equal(d1, f1)


def test_balanced_directions_odd():
    d1, d2 = balanced_sign_directions((3, 3, 3), seed=0)   # 27 entries
    assert (d1 == -1).sum().item() == 13 and (d1 == 1).sum().item() == 14
    assert (d2 == 0).sum().item() == 1 and (d2.abs() == 1).sum().item() == 26
    assert (d1 * d2).sum().item() == 0.0


def test_first_conv_in_module_order():
    m = small_convnet()
    assert first_conv(m) is m[1][0]
    with pytest.raises(ValueError):
        first_conv(nn.Linear(2, 2))


def test_grid_coordinates_protocol_grid():
    c = grid_coordinates(41, 0.5)
    assert c[0] == -0.5 and c[-1] == 0.5 and c[20] == 0.0
    torch.testing.assert_close(c.diff(), torch.full((40,), 0.025, dtype=torch.float64))
    with pytest.raises(ValueError):
        grid_coordinates(40, 0.5)


def _naive_param_loss(model, x, y, d1, d2, a, b):
    m = copy.deepcopy(model).eval()
    conv = first_conv(m)
    with torch.no_grad():
        conv.weight.add_(a * d1 + b * d2)
        return F.cross_entropy(m(x), y, reduction="none").double()


@pytest.mark.parametrize("method", ["stack", "vmap"])
def test_parameter_contour_batched_matches_naive_and_leaves_model_intact(method):
    m = small_convnet()
    torch.manual_seed(6)
    x, y = torch.rand(5, 3, 16, 16), torch.randint(0, 10, (5,))
    before, mode_before = state_copy(m), modes(m)
    res = parameter_contour(m, x, y, grid=7, span=0.5, seed=40, max_batch=15,  # 3 points/chunk
                            method=method)
    assert res.info["method"] == method and res.loss.shape == (5, 7, 7)
    assert_bit_identical(m, before)
    assert modes(m) == mode_before
    assert not first_conv(m)._forward_hooks                # temporary hook removed
    with torch.no_grad():
        clean = F.cross_entropy(copy.deepcopy(m).eval()(x), y, reduction="none").double()
    torch.testing.assert_close(res.center, clean, rtol=1e-5, atol=1e-6)
    d1, d2 = balanced_sign_directions(first_conv(m).weight.shape, 40)
    for i, j in [(0, 0), (0, 6), (2, 5), (6, 1), (3, 3)]:
        naive = _naive_param_loss(m, x, y, d1, d2, float(res.alphas[i]), float(res.betas[j]))
        torch.testing.assert_close(res.loss[:, i, j], naive, rtol=1e-4, atol=1e-5)
    # the perturbation matters (the surface is not flat), and the batch variant is the mean
    assert (res.loss - res.center[:, None, None]).abs().max() > 1e-3
    mean_res = parameter_contour(m, x, y, grid=7, span=0.5, seed=40, per_image=False,
                                 method=method)
    torch.testing.assert_close(mean_res.loss, res.loss.mean(0), rtol=1e-6, atol=1e-7)
    loop = parameter_contour(m, x, y, grid=7, span=0.5, seed=40, method="loop")
    torch.testing.assert_close(loop.loss, res.loss, rtol=1e-4, atol=1e-5)


def test_parameter_contour_auto_falls_back_when_first_conv_is_reused():
    class Twice(nn.Module):                                # the stack hook's assumption breaks
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)
            self.fc = nn.Linear(3, 4)

        def forward(self, x):
            return self.fc(self.conv(self.conv(x)).mean((2, 3)))

    torch.manual_seed(9)
    m = Twice()
    x, y = torch.rand(2, 3, 8, 8), torch.tensor([0, 3])
    with pytest.warns(RuntimeWarning, match="'stack' failed"):
        res = parameter_contour(m, x, y, grid=5, max_batch=4)
    assert res.info["method"] == "vmap" and not m.conv._forward_hooks
    loop = parameter_contour(m, x, y, grid=5, method="loop")
    torch.testing.assert_close(res.loss, loop.loss, rtol=1e-5, atol=1e-6)


class MeanPixel(nn.Module):
    """logits = [5 * mean(x), 0]: out-of-range pixels would change the mean."""

    def forward(self, x):
        s = 5 * x.flatten(1).mean(1, keepdim=True)
        return torch.cat([s, torch.zeros_like(s)], dim=1)


def test_input_contour_clamps_to_unit_interval():
    # all-white images: without clamping the balanced directions leave the mean at 1 exactly,
    # with clamping every positive push is cut off, so the mean drops to 1 + mean(min(v, 0)).
    x = torch.ones(2, 3, 8, 8)
    y = torch.tensor([0, 1])
    res = input_contour(MeanPixel(), x, y, grid=5, span=0.2, seed=7, max_batch=7)
    D1, D2 = input_directions((3, 8, 8), 2, 7)
    assert torch.equal(D1[0], balanced_sign_directions((3, 8, 8), 7)[0])
    for k in range(2):
        for i in range(5):
            for j in range(5):
                v = res.alphas[i] * D1[k].double() + res.betas[j] * D2[k].double()
                mean = 1 + v.clamp(max=0).mean()
                logits = torch.stack([5 * mean, torch.zeros((), dtype=torch.float64)])
                expected = F.cross_entropy(logits[None], y[k:k + 1])
                assert res.loss[k, i, j].item() == pytest.approx(expected.item(), rel=1e-5)
    assert res.loss[0, 0, 0] != res.loss[0, 2, 2]          # clamping is visible


def test_input_contour_batched_matches_naive_on_convnet():
    m = small_convnet()
    torch.manual_seed(8)
    x, y = torch.rand(3, 3, 16, 16), torch.randint(0, 10, (3,))
    before = state_copy(m)
    res = input_contour(m, x, y, grid=5, span=0.2, seed=3, max_batch=8)
    assert_bit_identical(m, before) and m.training
    D1, D2 = input_directions((3, 16, 16), 3, 3)
    ref = copy.deepcopy(m).eval()
    with torch.no_grad():
        for k, i, j in [(0, 2, 2), (1, 0, 4), (2, 3, 1)]:
            img = (x[k] + float(res.alphas[i]) * D1[k] + float(res.betas[j]) * D2[k]).clamp(0, 1)
            want = F.cross_entropy(ref(img[None]), y[k:k + 1]).item()
            assert res.loss[k, i, j].item() == pytest.approx(want, rel=1e-4, abs=1e-6)


def test_flatness_on_known_surfaces():
    a = grid_coordinates(5, 1.0)
    A, B = torch.meshgrid(a, a, indexing="ij")
    bowl = ContourResult(a, a.clone(), (A ** 2 + B ** 2 + 1.0), "parameter", 1.0, 0)
    # mean of alpha^2 over {-1,-.5,0,.5,1} is 0.5, so mean(alpha^2+beta^2) = 1.0
    assert flatness(bowl) == pytest.approx(1.0)
    assert flatness(bowl, radius=0.5) == pytest.approx(4 * 0.25 / 5)  # centre + 4 neighbours
    flat = ContourResult(a, a.clone(), torch.full((3, 5, 5), 2.0, dtype=torch.float64), "input",
                         1.0, 0)
    assert flatness(flat) == 0.0
    sharp = ContourResult(a, a.clone(), torch.stack([A ** 2 + B ** 2, 2 * (A ** 2 + B ** 2)]),
                          "input", 1.0, 0)
    torch.testing.assert_close(flatness(sharp, per_image=True),
                               torch.tensor([1.0, 2.0], dtype=torch.float64))
    assert flatness(sharp) == pytest.approx(1.5)


def test_plot_contour_draws():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a = grid_coordinates(9, 0.5)
    A, B = torch.meshgrid(a, a, indexing="ij")
    res = ContourResult(a, a.clone(), (A ** 2 + 3 * B ** 2)[None], "parameter", 0.5, 40)
    ax = plot_contour(res, title="bowl")
    assert ax.get_title() == "bowl" and len(ax.collections) > 0
    plt.close(ax.figure)
