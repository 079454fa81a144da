"""Tests for loss contours: directions, parameter/input-space surfaces, sharpness, plots."""
from __future__ import annotations

import copy
from unittest import mock

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nascore.analysis import (BOOK_WIDTH_IN, ContourResult, balanced_sign_directions, cosine,
                              filter_normalized_directions, first_conv, flatness,
                              grid_coordinates, input_contour, input_directions,
                              parameter_contour, plot_contour, plot_contours)
from test_analysis import assert_bit_identical, modes, small_convnet, state_copy

pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------------------------------
# the artifact's construction: balanced ±1 directions, first conv (protocol §5.2)
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
                            method=method, mode="first-conv", per_image=True)
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
                                 method=method, mode="first-conv")
    torch.testing.assert_close(mean_res.loss, res.loss.mean(0), rtol=1e-6, atol=1e-7)
    loop = parameter_contour(m, x, y, grid=7, span=0.5, seed=40, method="loop",
                             mode="first-conv", per_image=True)
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
        res = parameter_contour(m, x, y, grid=5, max_batch=4, mode="first-conv")
    assert res.info["method"] == "vmap" and not m.conv._forward_hooks
    loop = parameter_contour(m, x, y, grid=5, method="loop", mode="first-conv")
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


# ------------------------------------------------------------------------------------------
# filter-normalised directions, all parameters (Li et al. 2018)
# ------------------------------------------------------------------------------------------
def test_filter_normalisation_gives_each_filter_the_weight_filter_norm():
    m = small_convnet()
    params = {k: p.detach() for k, p in m.named_parameters()}
    d1, d2 = filter_normalized_directions(m, seed=11)
    assert list(d1) == list(params) == list(d2)
    n_checked = 0
    for k, w in params.items():
        for d in (d1[k], d2[k]):
            assert d.shape == w.shape and d.dtype == w.dtype
            if w.ndim <= 1:                                # biases, BN weight/bias: not moved
                assert torch.count_nonzero(d) == 0
                continue
            wn = w.flatten(1).norm(dim=1)
            dn = d.flatten(1).norm(dim=1)
            torch.testing.assert_close(dn, wn, rtol=1e-5, atol=1e-6)
            n_checked += w.shape[0]
    assert n_checked == 2 * (6 + 8 + 10)                   # two convs and the linear layer
    # a Gaussian direction, not a copy of the weights
    assert cosine({"w": d1["1.0.weight"]}, {"w": params["1.0.weight"]}) < 0.9


def test_filter_directions_are_deterministic_and_nearly_orthogonal():
    m = small_convnet()
    d1, d2 = filter_normalized_directions(m, seed=40)
    e1, e2 = filter_normalized_directions(m, seed=40)
    f1, _ = filter_normalized_directions(m, seed=41)
    assert all(torch.equal(d1[k], e1[k]) and torch.equal(d2[k], e2[k]) for k in d1)
    assert any(not torch.equal(d1[k], f1[k]) for k in d1)
    flat1 = torch.cat([t.flatten() for t in d1.values()]).double()
    flat2 = torch.cat([t.flatten() for t in d2.values()]).double()
    cos = float(flat1 @ flat2 / (flat1.norm() * flat2.norm()))
    assert cosine(d1, d2) == pytest.approx(cos, rel=1e-9)
    # Li et al. promise near-orthogonality only: |cos| ~ 1/sqrt(P) for independent draws
    p = int((flat1 != 0).sum())
    assert abs(cos) < 4 / p ** 0.5
    with pytest.raises(ValueError, match="no parameters"):
        filter_normalized_directions({}, 0)


def _naive_filter_loss(model, x, y, d1, d2, a, b):
    m = copy.deepcopy(model).eval()
    with torch.no_grad():
        for k, p in m.named_parameters():
            p.add_(a * d1[k] + b * d2[k])
        return F.cross_entropy(m(x), y, reduction="none").double()


@pytest.mark.parametrize("method", ["loop", "vmap"])
def test_filter_contour_matches_naive_all_parameter_perturbation(method):
    m = small_convnet()
    torch.manual_seed(6)
    x, y = torch.rand(7, 3, 16, 16), torch.randint(0, 10, (7,))
    before, mode_before = state_copy(m), modes(m)
    res = parameter_contour(m, x, y, grid=5, seed=3, per_image=True, max_batch=3, method=method)
    assert res.info["mode"] == "filter" and res.info["method"] == method
    assert res.span == 1.0 and res.loss.shape == (7, 5, 5) and res.info["n_images"] == 7
    assert res.info["n_perturbed"] == sum(p.numel() for p in m.parameters() if p.ndim >= 2)
    assert_bit_identical(m, before)                        # weights and BN stats untouched
    assert modes(m) == mode_before
    with torch.no_grad():
        clean = F.cross_entropy(copy.deepcopy(m).eval()(x), y, reduction="none").double()
    torch.testing.assert_close(res.center, clean, rtol=1e-5, atol=1e-6)
    d1, d2 = filter_normalized_directions(m, seed=3)
    for i, j in [(0, 0), (0, 4), (1, 3), (4, 2)]:
        naive = _naive_filter_loss(m, x, y, d1, d2, float(res.alphas[i]), float(res.betas[j]))
        torch.testing.assert_close(res.loss[:, i, j], naive, rtol=1e-4, atol=1e-5)
    assert (res.loss - res.center[:, None, None]).abs().max() > 1e-2
    mean = parameter_contour(m, x, y, grid=5, seed=3, method=method)   # default: image mean
    assert mean.loss.shape == (5, 5)
    torch.testing.assert_close(mean.loss, res.loss.mean(0), rtol=1e-6, atol=1e-7)
    assert mean.sharpness == pytest.approx(res.sharpness, abs=1e-6)   # float32 batching
    other = parameter_contour(m, x, y, grid=5, seed=4, method=method)
    assert not torch.allclose(other.loss, mean.loss)       # the seed picks the directions


def test_filter_contour_vmap_equals_loop_and_batch_size_does_not_matter():
    m = small_convnet(seed=2)
    torch.manual_seed(7)
    x, y = torch.rand(5, 3, 16, 16), torch.randint(0, 10, (5,))
    ref = parameter_contour(m, x, y, grid=3, span=0.3, seed=1, method="loop", max_batch=128)
    for method, mb in [("loop", 2), ("vmap", 2), ("vmap", 11)]:
        got = parameter_contour(m, x, y, grid=3, span=0.3, seed=1, method=method, max_batch=mb)
        torch.testing.assert_close(got.loss, ref.loss, rtol=1e-5, atol=1e-6)


def test_parameter_contour_rejects_bad_mode_and_method_before_compute():
    m = small_convnet()
    x, y = torch.rand(2, 3, 16, 16), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="mode must be one of"):
        parameter_contour(m, x, y, grid=3, mode="conv1")
    with pytest.raises(ValueError, match=r"method must be one of \('auto', 'loop', 'vmap'\)"):
        parameter_contour(m, x, y, grid=3, method="stack")    # stack is first-conv only
    with pytest.raises(ValueError, match="grid must be an odd int"):
        parameter_contour(m, x, y, grid=4)


# ------------------------------------------------------------------------------------------
# sharpness and the picture
# ------------------------------------------------------------------------------------------
def _bowl(scale: float, offset: float = 2.0, grid: int = 7, n_images: int | None = None):
    """Tilted bowl: asymmetric in alpha (a transpose would show) and lowest off the centre
    (a sharpness measured from the minimum would differ)."""
    a = grid_coordinates(grid, 1.0)
    A, B = torch.meshgrid(a, a, indexing="ij")
    z = scale * (A ** 2 + 2 * B ** 2 + 1.5 * A) + offset
    if n_images:
        z = torch.stack([z * (k + 1) for k in range(n_images)])
    return ContourResult(a, a.clone(), z, "parameter", 1.0, 0, {"n_images": n_images or 20})


def test_sharpness_is_mean_of_surface_minus_centre():
    r = _bowl(2.0, n_images=3)
    s = r.surface
    assert s.shape == (7, 7)
    torch.testing.assert_close(s, r.loss.mean(0))
    assert r.sharpness == pytest.approx(float(s.mean() - s[3, 3]))
    # closed form: image k (k = 1, 2, 3) is k * (2 (A^2 + 2 B^2 + 1.5 A) + 2); the grid mean of
    # A^2 and of B^2 is m2, of A is 0, so image k's increase is 6 k m2 and the mean's is 12 m2
    m2 = float(grid_coordinates(7, 1.0).square().mean())
    assert r.sharpness == pytest.approx(12 * m2, rel=1e-12)
    assert float(s.min()) < float(s[3, 3])                  # the centre is not the minimum
    assert flatness(r) == r.sharpness
    torch.testing.assert_close(flatness(r, per_image=True),
                               torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64) * 6 * m2)


def test_plot_contours_draws_the_surface_the_sharpness_is_computed_from():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes

    results = {"darts": _bowl(0.5), "resnet18": _bowl(1.0, offset=2.2, n_images=2),
               "vgg13_bn": _bowl(1.0), "pc_darts": _bowl(0.1)}
    colours = {"darts": "tab:orange", "pc_darts": "tab:orange", "resnet18": "tab:blue",
               "vgg13_bn": "tab:blue"}
    seen = []
    real = Axes.contourf

    def spy(self, *args, **kw):
        seen.append((args, kw))
        return real(self, *args, **kw)

    with mock.patch.object(Axes, "contourf", spy):
        fig = plot_contours(results, colours=colours, ncols=3)
    try:
        assert len(seen) == len(results)
        levels = [kw["levels"] for _, kw in seen]
        assert all((lv == levels[0]).all() for lv in levels)            # one shared scale
        norms = {(kw["norm"].vmin, kw["norm"].vmax) for _, kw in seen}
        assert len(norms) == 1
        lo = min(float(r.surface.min()) for r in results.values())
        hi = max(float(r.surface.max()) for r in results.values())
        assert levels[0][0] == pytest.approx(lo) and levels[0][-1] == pytest.approx(hi)
        for (args, _), (label, r) in zip(seen, results.items()):
            a, b, zt = args
            z = zt.T                                                    # z[i, j] at (a[i], b[j])
            c = r.center_index
            assert float(z.mean() - z[c, c]) == pytest.approx(r.sharpness, rel=1e-12)
            assert z[c, c] == pytest.approx(float(r.surface[c, c]))
            assert z[-1, c] > z[0, c]                                   # the alpha tilt
        panels, cbars = fig.axes[:4], fig.axes[4:]
        assert len(cbars) == 1                                          # one colourbar
        assert "20 images" not in cbars[0].get_ylabel()                 # n differs: not claimed
        for ax, (label, r) in zip(panels, results.items()):
            assert ax.get_title().startswith(label)
            assert f"{r.sharpness:.3g}" in ax.get_title()
            assert matplotlib.colors.same_color(ax.title.get_color(), colours[label])
        w, h = fig.get_size_inches()
        assert w <= BOOK_WIDTH_IN + 1e-9
        fig.canvas.draw()
        sizes = [t.get_fontsize() for t in fig.findobj(matplotlib.text.Text) if t.get_text()]
        assert sizes and min(sizes) >= 10                               # legible at 770 px
    finally:
        plt.close(fig)


def test_plot_contours_shared_scale_options_and_errors():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = {"a": _bowl(1.0), "b": _bowl(2.0)}
    fig = plot_contours(r, vmax=2.0, scale="log")
    try:
        cf = [c for c in fig.axes[0].collections if hasattr(c, "levels")][0]
        assert cf.extend == "max" and cf.levels[-1] == pytest.approx(2.0)
        assert fig.axes[-1].get_ylabel() == "loss (nats), mean over 20 images"
    finally:
        plt.close(fig)
    bad = _bowl(1.0)
    bad.loss[0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        plot_contours({"x": bad})
    with pytest.raises(ValueError, match="scale must be"):
        plot_contours(r, scale="sqrt")
    with pytest.raises(ValueError, match="log"):
        plot_contours({"x": _bowl(1.0, offset=-5.0)}, scale="log")
