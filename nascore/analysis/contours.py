"""Loss contours in parameter space and input space, and the sharpness number that summarises them.

Pang et al., *On the Security Risks of AutoML*, USENIX Security 2022, §5 (Eq. 12:
``L(alpha, beta) = loss(w + alpha d1 + beta d2)``); protocol ``automl-security.md`` §5.2. The
claim: NAS models show smoother, flatter (wider, more regular) contours.

:func:`parameter_contour` has two modes:

* ``mode="filter"`` (**main**, Li et al., "Visualizing the Loss Landscape of Neural Nets",
  NeurIPS 2018): **all** trainable parameters move along two filter-normalised Gaussian
  directions (:func:`~.directions.filter_normalized_directions`; biases and BatchNorm
  parameters are not moved, running statistics never). Filter normalisation makes ``alpha = 1``
  a move of one filter norm in every filter, so models of different width and scale are
  comparable, which raw directions are not (Li et al., §4). Default span 1 (Li et al. plot
  [−1, 1]).
* ``mode="first-conv"`` (the **artifact's** construction, protocol §5.2): only the weight of the
  first ``nn.Conv2d`` moves, along raw balanced ±1 directions with ``d1 . d2 = 0`` exactly;
  41×41 grid with step 0.025 (span 0.5). Kept to reproduce the paper's pictures; without
  normalisation its scale differs from model to model.

The loss at each grid point is the cross-entropy (nats) of each image, evaluated in batches of
at most ``max_batch`` images per forward and averaged over the ``N`` images passed (at paper
scale ``N >= 20``). The model runs in eval mode (BatchNorm running statistics; modes restored
afterwards) under ``torch.no_grad``; its weights are never written (perturbed copies go through
:func:`torch.func.functional_call`), so they are bit-identical afterwards.

**Sharpness** (:attr:`ContourResult.sharpness`, :func:`flatness`): with ``S`` the image-averaged
loss surface (:attr:`ContourResult.surface`, ``S[i, j]`` at ``(alphas[i], betas[j])``, the array
:func:`~.contour_plot.plot_contours` draws), ``sharpness = mean_{i,j} S[i, j] - S[c, c]`` over all
``grid**2`` points, ``c`` the centre index: the mean loss increase over the square
``[-span, span]^2`` relative to the unperturbed weights, in nats. Higher = sharper; 0 for a flat
surface; negative where the centre is not a minimum.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from .directions import (balanced_sign_directions, cosine, filter_normalized_directions,
                         input_directions)
from .first_conv_contour import FIRST_CONV_METHODS, first_conv_losses
from .grad_variance import eval_mode, trainable_parameters

__all__ = ["ContourResult", "first_conv", "grid_coordinates", "parameter_contour",
           "input_contour", "flatness", "MODES", "DEFAULT_SPAN"]

#: Parameter-space modes of :func:`parameter_contour`.
MODES = ("filter", "first-conv")
#: Default half-width of the grid per mode (Li et al. 2018: 1; the artifact: 0.5).
DEFAULT_SPAN = {"filter": 1.0, "first-conv": 0.5, "input": 0.02}
# Budget (bytes) for the stacked perturbed parameters of one vmap chunk in filter mode.
_STACK_BYTES = 512 * 2**20


@dataclass
class ContourResult:
    """A loss surface on a square grid.

    Attributes
    ----------
    alphas, betas : torch.Tensor
        ``(grid,)`` float64 coordinates along ``d1`` and ``d2``; the centre entry is exactly 0.
    loss : torch.Tensor
        float64 CPU tensor, ``(grid, grid)`` (image-averaged) or ``(n_images, grid, grid)``
        (per image); ``loss[..., i, j]`` is the CE loss (nats) at ``(alphas[i], betas[j])``.
    space : str
        ``"parameter"`` or ``"input"``.
    span : float
        Half-width of the grid.
    seed : int
        Seed of the directions.
    info : dict
        Metadata: ``mode``, ``n_images``, ``n_perturbed`` (parameters moved), ``cosine``
        (between ``d1`` and ``d2``), ``method``, ``layer`` (first-conv mode).
    """

    alphas: torch.Tensor
    betas: torch.Tensor
    loss: torch.Tensor
    space: str
    span: float
    seed: int
    info: dict = field(default_factory=dict)

    @property
    def center_index(self) -> int:
        return (self.alphas.numel() - 1) // 2

    @property
    def center(self) -> torch.Tensor:
        """Loss at ``(0, 0)``: scalar tensor or ``(n_images,)``."""
        c = self.center_index
        return self.loss[..., c, c]

    @property
    def surface(self) -> torch.Tensor:
        """``(grid, grid)`` image-averaged loss: the array that is plotted and summarised."""
        return self.loss if self.loss.ndim == 2 else self.loss.mean(0)

    @property
    def sharpness(self) -> float:
        """``surface.mean() - surface[c, c]`` in nats (see the module docstring)."""
        s, c = self.surface, self.center_index
        return float(s.mean() - s[c, c])


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The first ``nn.Conv2d`` in ``model.modules()`` order (the stem conv / ResNet conv1)."""
    return _first_conv_named(model)[1]


def _first_conv_named(model: nn.Module) -> tuple[str, nn.Conv2d]:
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            return name, m
    raise ValueError(f"{type(model).__name__} has no nn.Conv2d")


def grid_coordinates(grid: int, span: float) -> torch.Tensor:
    """``(grid,)`` float64 ``span * (i - c) / c`` with ``c = (grid-1)/2``: symmetric, centre 0.

    ``grid=41, span=0.5`` gives step 0.025 over [−0.5, 0.5] (protocol §5.2).
    """
    if not (isinstance(grid, int) and grid >= 3 and grid % 2 == 1):
        raise ValueError(f"grid must be an odd int >= 3 (so (0,0) is on the grid), got {grid!r}")
    if not span > 0:
        raise ValueError(f"span must be > 0, got {span!r}")
    c = (grid - 1) // 2
    return span * (torch.arange(grid, dtype=torch.float64) - c) / c


def _prep(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if x.ndim != 4:
        raise ValueError(f"x must be (N, C, H, W) images, got shape {tuple(x.shape)}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"y must be (N,) labels matching x's N={x.shape[0]}, got {tuple(y.shape)}")
    if x.shape[0] < 1:
        raise ValueError("need at least one image")
    ref = next(model.parameters(), None)
    device = ref.device if ref is not None else x.device
    dtype = ref.dtype if ref is not None and ref.is_floating_point() else torch.float32
    if x.dtype == torch.uint8:
        x = x.to(torch.float32) / 255.0
    return x.to(device=device, dtype=dtype), y.to(device=device, dtype=torch.long)


def _default_max_batch(device: torch.device) -> int:
    # CPU: compute/memory-bound already at ~20 images per forward; bigger stacked batches only
    # thrash the cache (measured on 2 cores for a C=8 DARTS net: 512 images/forward was ~2x
    # slower per grid point than 20-60). GPU: large batches are what makes the grid cheap.
    return 4096 if device.type == "cuda" else 128


def _check_max_batch(max_batch, x) -> int:
    if max_batch is None:
        return _default_max_batch(x.device)
    if not (isinstance(max_batch, int) and max_batch >= 1):
        raise ValueError(f"max_batch must be a positive int or None, got {max_batch!r}")
    return max_batch


# ------------------------------------------------------------------------------------------
# parameter space
# ------------------------------------------------------------------------------------------
FILTER_METHODS = ("auto", "loop", "vmap")


def _filter_losses(model, x, y, params, d1, d2, a, b, max_batch, method) -> torch.Tensor:
    """``(G, N)`` per-image CE at the ``G`` grid points ``(a[p], b[p])`` (all parameters moved)."""
    names = list(params)
    n_img, G = x.shape[0], len(a)
    bs = min(n_img, max_batch)
    out = torch.empty(G, n_img, dtype=torch.float64, device=x.device)

    def ce(p: dict, xb, yb):
        return F.cross_entropy(functional_call(model, p, (xb,)), yb, reduction="none")

    if method == "loop":  # one grid point per forward, its images in batches of <= max_batch
        for p in range(G):
            wp = {k: torch.add(params[k], d1[k], alpha=a[p]).add_(d2[k], alpha=b[p])
                  for k in names}
            for s in range(0, n_img, bs):
                out[p, s:s + bs] = ce(wp, x[s:s + bs], y[s:s + bs])
        return out
    # vmap: c grid points share one forward of c * bs images; stacked weights take c * P floats
    n_par = sum(params[k].numel() * params[k].element_size() for k in names)
    c = max(1, min(max_batch // bs, _STACK_BYTES // max(n_par, 1)))
    batched = vmap(ce, in_dims=(0, None, None))
    at = torch.tensor(a, dtype=next(iter(params.values())).dtype, device=x.device)
    bt = torch.tensor(b, dtype=at.dtype, device=x.device)
    for p0 in range(0, G, c):
        ac, bc = at[p0:p0 + c], bt[p0:p0 + c]
        shape = lambda w: (-1,) + (1,) * w.ndim  # noqa: E731
        wp = {k: params[k] + ac.view(shape(params[k])) * d1[k] + bc.view(shape(params[k])) * d2[k]
              for k in names}
        for s in range(0, n_img, bs):
            out[p0:p0 + c, s:s + bs] = batched(wp, x[s:s + bs], y[s:s + bs])
    return out


def _filter_mode(model, x, y, coords, seed, max_batch, method):
    params = {k: p.detach() for k, p in trainable_parameters(model).items()}
    if not params:
        raise ValueError("model has no trainable parameters")
    d1, d2 = filter_normalized_directions(params, seed)
    grid = coords.numel()
    a = coords.repeat_interleave(grid).tolist()  # point p = i * grid + j <-> (alphas[i], betas[j])
    b = coords.repeat(grid).tolist()
    used = "loop" if method == "auto" else method  # auto: loop, see parameter_contour
    losses = _filter_losses(model, x, y, params, d1, d2, a, b, max_batch, used)
    info = {"n_perturbed": sum(int((d1[k] != 0).any()) * d1[k].numel() for k in params),
            "n_params": sum(p.numel() for p in params.values()), "cosine": cosine(d1, d2),
            "method": used}
    return losses, info


def _first_conv_mode(model, x, y, coords, seed, max_batch, method):
    name, conv = _first_conv_named(model)
    d1, d2 = balanced_sign_directions(conv.weight.shape, seed)
    losses, used = first_conv_losses(model, conv, f"{name}.weight" if name else "weight", x, y,
                                     coords, d1, d2, max_batch, method)
    info = {"layer": f"{name}.weight" if name else "weight", "n_perturbed": conv.weight.numel(),
            "cosine": cosine({"w": d1}, {"w": d2}), "method": used}
    return losses, info


def parameter_contour(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    grid: int = 41,
    span: float | None = None,
    seed: int = 40,
    per_image: bool = False,
    max_batch: int | None = None,
    method: str = "auto",
    *,
    mode: str = "filter",
) -> ContourResult:
    """Loss over ``w + alpha d1 + beta d2`` on a ``grid × grid`` square (module docstring).

    Parameters
    ----------
    model : nn.Module
        ``(N, 3, H, W)`` [0,1] images → logits. Never written; eval mode during the evaluation,
        every module's mode restored after.
    x, y : torch.Tensor
        ``(N, 3, H, W)`` images and ``(N,)`` labels; the loss is averaged over all ``N``
        (paper scale: ``N >= 20``).
    grid, span : int, float or None
        ``grid`` (odd) points per axis over ``[-span, span]``. ``span=None``: 1.0 in mode
        ``"filter"`` (Li et al.), 0.5 in mode ``"first-conv"`` (step 0.025 at 41 points).
    seed : int
        Seed of the directions (same seed ⇒ same directions, on any device).
    per_image : bool
        False: ``loss`` is the ``(grid, grid)`` mean over images; True: ``(N, grid, grid)``.
        :attr:`ContourResult.surface` and :attr:`~ContourResult.sharpness` are the same either way.
    max_batch : int or None
        Images per forward (None: 128 on CPU, 4096 on CUDA).
    method : str
        Mode ``"filter"``: ``"loop"`` (one grid point per forward; ``"auto"`` picks it) or
        ``"vmap"`` (``torch.func.vmap`` over stacked perturbed weights, several grid points per
        forward). On one CPU thread the two are within ±10 % of each other
        (``benchmarks/bench_analysis.py``), so auto takes the simpler loop; GPU unmeasured.
        Mode ``"first-conv"``: ``"stack"``, ``"vmap"``, ``"loop"`` or ``"auto"``, see
        :func:`~.first_conv_contour.first_conv_losses`. ``result.info["method"]`` records it.
    mode : {"filter", "first-conv"}
        Which parameters move and how the directions are built (module docstring).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    methods = FILTER_METHODS if mode == "filter" else FIRST_CONV_METHODS
    if method not in methods:
        raise ValueError(f"method must be one of {methods} in mode {mode!r}, got {method!r}")
    span = DEFAULT_SPAN[mode] if span is None else span
    coords = grid_coordinates(grid, span)
    x, y = _prep(model, x, y)
    max_batch = _check_max_batch(max_batch, x)
    run = _filter_mode if mode == "filter" else _first_conv_mode
    with eval_mode(model), torch.no_grad():
        losses, info = run(model, x, y, coords, seed, max_batch, method)
    n_img = x.shape[0]
    loss = losses.to(torch.float64).cpu().T.reshape(n_img, grid, grid)
    if not per_image:
        loss = loss.mean(0)
    info.update(mode=mode, n_images=n_img, per_image=per_image)
    return ContourResult(alphas=coords, betas=coords.clone(), loss=loss, space="parameter",
                         span=float(span), seed=int(seed), info=info)


# ------------------------------------------------------------------------------------------
# input space
# ------------------------------------------------------------------------------------------
def input_contour(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    grid: int = 41,
    span: float = 0.02,
    seed: int = 40,
    max_batch: int | None = None,
) -> ContourResult:
    """Per-image loss over ``clamp(x_k + alpha d1_k + beta d2_k, 0, 1)`` (protocol §5.2).

    Parameters
    ----------
    model : nn.Module
        ``(N, 3, H, W)`` [0,1] images → logits; eval mode during evaluation, modes restored.
    x, y : torch.Tensor
        ``(N, 3, H, W)`` images in [0,1] and ``(N,)`` labels.
    grid, span : int, float
        ``grid`` (odd) points per axis over ``[-span, span]`` in pixel units; 0.02 is the
        artifact's code (step 1e-3 for 41 points), 0.2 the README/appendix.
    seed : int
        Seed of :func:`~.directions.input_directions` (per-image balanced ±1 pairs of shape
        ``(C, H, W)``).
    max_batch : int or None
        Perturbed images per forward (grid points of one or several images are stacked).
        None: 128 on CPU, 4096 on CUDA.

    Returns
    -------
    ContourResult
        ``loss`` ``(N, grid, grid)``, single-image CE in nats.
    """
    coords = grid_coordinates(grid, span)
    x, y = _prep(model, x, y)
    max_batch = _check_max_batch(max_batch, x)
    n_img = x.shape[0]
    D1, D2 = input_directions(x.shape[1:], n_img, seed)
    D1, D2 = D1.to(x.device, x.dtype), D2.to(x.device, x.dtype)
    a = coords.repeat_interleave(grid).to(x.device, x.dtype)
    b = coords.repeat(grid).to(x.device, x.dtype)
    G = a.numel()
    total = n_img * G
    # flat index q = k * G + p  (image k, grid point p)
    out = []
    with eval_mode(model), torch.no_grad():
        for start in range(0, total, max_batch):
            q = torch.arange(start, min(start + max_batch, total), device=x.device)
            k, p = q // G, q % G
            s = (-1, 1, 1, 1)
            imgs = (x[k] + a[p].view(s) * D1[k] + b[p].view(s) * D2[k]).clamp_(0.0, 1.0)
            out.append(F.cross_entropy(model(imgs), y[k], reduction="none"))
    loss = torch.cat(out).to(torch.float64).cpu().view(n_img, grid, grid)
    return ContourResult(alphas=coords, betas=coords.clone(), loss=loss, space="input",
                         span=float(span), seed=int(seed),
                         info={"mode": "input", "per_image": True, "n_images": n_img})


# ------------------------------------------------------------------------------------------
# summary
# ------------------------------------------------------------------------------------------
def flatness(result: ContourResult, radius: float | None = None,
             per_image: bool = False) -> float | torch.Tensor:
    """Contour sharpness: mean loss increase over the grid relative to the centre (nats).

    Without ``radius`` and ``per_image`` this is exactly :attr:`ContourResult.sharpness`
    (``surface.mean() - surface[c, c]``, the plotted array). With ``radius``: the mean over grid
    points with ``sqrt(alpha^2 + beta^2) <= radius`` only. ``per_image=True`` (per-image
    results): ``(n_images,)``, each image's own increase (their mean is the sharpness).
    **Higher = sharper** (less flat); 0 for a constant surface; negative where the centre is not
    a minimum.
    """
    if radius is None and not per_image:
        return result.sharpness
    A, B = torch.meshgrid(result.alphas, result.betas, indexing="ij")
    mask = torch.ones_like(A, dtype=torch.bool)
    if radius is not None:
        if not radius >= 0:
            raise ValueError(f"radius must be >= 0, got {radius!r}")
        mask = (A.square() + B.square()).sqrt() <= radius
    c = result.center_index
    loss = result.loss if result.loss.ndim == 3 else result.loss.unsqueeze(0)
    inc = (loss - loss[:, c:c + 1, c:c + 1])[:, mask].mean(1)  # (n_images,)
    if per_image:
        return inc
    return float(inc.mean())
