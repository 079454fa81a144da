"""Loss contours in parameter space and input space.

Pang et al., *On the Security Risks of AutoML*, USENIX Security 2022, §5 (Eq. 12:
``L(alpha, beta) = loss(w + alpha d1 + beta d2)``); protocol ``automl-security.md`` §5.2 and
fact 10. The claim: NAS models show smoother, flatter (wider, more regular) contours.

* **Parameter space** (:func:`parameter_contour`): only the weight of the **first**
  ``nn.Conv2d`` in module order is perturbed. ``d1`` is a random ±1 vector with exactly half of
  its entries −1; ``d2 = d1 * s`` for another balanced ±1 vector ``s``, so ``d1 . d2 = sum(s) = 0``
  exactly (:func:`balanced_sign_directions`). Grid 41×41, step 0.025: alpha, beta in
  [−0.5, 0.5]. The loss is evaluated per test image (20 images in the artifact, seed 40) or
  averaged over a batch (400 images). Directions are raw ±1 (no filter normalisation).
* **Input space** (:func:`input_contour`): per-image balanced ±1 directions of shape
  ``3×H×W``; the perturbed image is clamped to [0,1]; the loss of that single image.
  Span 0.02 (the code: step 1e-3) or 0.2 (README/appendix); render both.

Evaluation is batched, never one forward per grid point: for the parameter contour the images
are stacked once per grid point of a chunk and run as one batch, the first conv's output of
replica ``p`` being ``conv(x, w) + a_p conv(x, d1) + b_p conv(x, d2)`` (= ``conv(x, w + a_p d1 +
b_p d2)``, a convolution is linear in its weight) through a temporary forward hook; a
``torch.func.vmap(functional_call(...))`` over the perturbed weights and a per-point loop are
the alternatives (``method=``). The model's weights are never written. For the input contour
the perturbed images of many grid points are stacked along the batch dimension. The model runs
in eval mode (modes restored afterwards) under ``torch.no_grad``.

Loss is cross-entropy in nats. ``ContourResult.loss[..., i, j]`` is the loss at
``(alphas[i], betas[j])``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from .grad_variance import eval_mode

__all__ = ["ContourResult", "balanced_sign_directions", "first_conv", "parameter_contour",
           "input_contour", "input_directions", "flatness", "plot_contour",
           "grid_coordinates"]


@dataclass
class ContourResult:
    """A loss surface on a square grid.

    Attributes
    ----------
    alphas, betas : torch.Tensor
        ``(grid,)`` float64 coordinates along ``d1`` and ``d2``; the centre entry is exactly 0.
    loss : torch.Tensor
        float64 CPU tensor, ``(grid, grid)`` (batch-averaged) or ``(n_images, grid, grid)``
        (per image); ``loss[..., i, j]`` is the CE loss (nats) at ``(alphas[i], betas[j])``.
    space : str
        ``"parameter"`` or ``"input"``.
    span : float
        Half-width of the grid.
    seed : int
        Seed of the directions.
    info : dict
        Extra metadata (perturbed layer name, number of parameters perturbed, method used).
    """

    alphas: torch.Tensor
    betas: torch.Tensor
    loss: torch.Tensor
    space: str
    span: float
    seed: int
    info: dict = field(default_factory=dict)

    @property
    def center(self) -> torch.Tensor:
        """Loss at ``(0, 0)``: scalar tensor or ``(n_images,)``."""
        c = (self.alphas.numel() - 1) // 2
        return self.loss[..., c, c]


# ------------------------------------------------------------------------------------------
# directions
# ------------------------------------------------------------------------------------------
def _balanced_signs(n: int, gen: torch.Generator, zero_if_odd: bool) -> torch.Tensor:
    """``(n,)`` float32: ``n//2`` entries −1, the rest +1, in random order.

    For odd ``n`` there is one more +1 than −1 (sum = +1), or, with ``zero_if_odd``, that extra
    entry is 0 so the sum is exactly 0.
    """
    v = torch.ones(n, dtype=torch.float32)
    v[: n // 2] = -1.0
    if n % 2 == 1 and zero_if_odd:
        v[-1] = 0.0
    return v[torch.randperm(n, generator=gen)]


def _direction_pair(shape: Sequence[int],
                    gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    shape = tuple(int(s) for s in shape)
    n = 1
    for s in shape:
        n *= s
    if n < 2:
        raise ValueError(f"need at least 2 entries to build orthogonal directions, shape={shape}")
    d1 = _balanced_signs(n, gen, zero_if_odd=False)
    s = _balanced_signs(n, gen, zero_if_odd=True)
    return d1.view(shape), (d1 * s).view(shape)


def balanced_sign_directions(shape: Sequence[int], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two orthogonal ±1 directions of ``shape`` (protocol §5.2), float32 on the CPU.

    ``d1``: random ±1 with exactly ``n // 2`` entries −1 (``n = prod(shape)``). For even ``n``
    that is exactly half, ``d1.sum() == 0``; for odd ``n`` the one extra entry is +1
    (``d1.sum() == 1``).

    ``d2 = d1 * s`` with ``s`` another balanced random ±1 vector, so ``d1 . d2 = s.sum() = 0``
    exactly (every partial sum is an integer of magnitude < 2^24 for ``n`` < 16.7M, so even the
    float32 dot product is exact). For odd ``n``, ``s`` has ``(n-1)/2`` entries +1,
    ``(n-1)/2`` entries -1 and **one 0**, so ``d2`` has exactly one zero entry and
    ``d1 . d2 = 0`` still holds exactly.

    Deterministic in ``seed`` (``torch.Generator().manual_seed(seed)``, two ``randperm`` draws).
    """
    gen = torch.Generator().manual_seed(int(seed))
    return _direction_pair(shape, gen)


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
    ref = next(model.parameters(), None)
    device = ref.device if ref is not None else x.device
    dtype = ref.dtype if ref is not None and ref.is_floating_point() else torch.float32
    if x.dtype == torch.uint8:
        x = x.to(torch.float32) / 255.0
    return x.to(device=device, dtype=dtype), y.to(device=device, dtype=torch.long)


# ------------------------------------------------------------------------------------------
# parameter space
# ------------------------------------------------------------------------------------------
def _default_max_batch(device: torch.device) -> int:
    # CPU: compute/memory-bound already at ~20 images per forward; bigger stacked batches only
    # thrash the cache (measured on 2 cores for a C=8 DARTS net: 512 images/forward was ~2x
    # slower per grid point than 20-60). GPU: large batches are what makes the grid cheap.
    return 4096 if device.type == "cuda" else 128


class _StackHook:
    """Forward hook on the first conv: for a batch of ``c`` stacked replicas of the ``N`` images
    (replica-major), replace the conv output of replica ``p`` by
    ``conv(x, w) + a_p conv(x, d1) + b_p conv(x, d2)`` — equal to ``conv(x, w + a_p d1 + b_p d2)``
    because a convolution is linear in its weight (bias unchanged). Checks that the conv runs once
    per forward on the expected batch; anything else is reported as an error."""

    def __init__(self, d1, d2, n_img):
        self.d1, self.d2, self.n_img = d1, d2, n_img
        self.a = self.b = None
        self.calls = 0

    def __call__(self, mod, inp, out):
        self.calls += 1
        c = self.a.numel()
        xin = inp[0]
        if self.calls > 1 or xin.shape[0] != c * self.n_img:
            raise RuntimeError("first conv is not called exactly once on the stacked batch "
                               f"(call {self.calls}, batch {xin.shape[0]} != {c}x{self.n_img})")
        base = xin[: self.n_img]
        e1 = mod._conv_forward(base, self.d1, None)
        e2 = mod._conv_forward(base, self.d2, None)
        s = (c, 1, 1, 1, 1)
        out = out.unflatten(0, (c, self.n_img)) + self.a.view(s) * e1 + self.b.view(s) * e2
        return out.flatten(0, 1)


def parameter_contour(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    grid: int = 41,
    span: float = 0.5,
    seed: int = 40,
    per_image: bool = True,
    max_batch: int | None = None,
    method: str = "auto",
) -> ContourResult:
    """Loss over ``w + alpha d1 + beta d2`` for the first conv weight ``w`` (protocol §5.2).

    Parameters
    ----------
    model : nn.Module
        ``(N, 3, H, W)`` [0,1] images → logits. Its weights are never written; eval mode during
        the evaluation, every module's mode restored after.
    x, y : torch.Tensor
        ``(N, 3, H, W)`` images and ``(N,)`` labels (20 images / 400 for the batch variant).
    grid, span : int, float
        ``grid`` (odd) points per axis over ``[-span, span]``; default 41 and 0.5 (step 0.025).
    seed : int
        Seed of :func:`balanced_sign_directions` for the conv weight's shape (artifact: 40).
    per_image : bool
        True: ``loss`` is ``(N, grid, grid)``; False: mean over the N images, ``(grid, grid)``.
    max_batch : int or None
        Images per forward: a chunk holds ``max(1, max_batch // N)`` grid points. None: 128 on
        CPU, 4096 on CUDA.
    method : {"auto", "stack", "vmap", "loop"}
        How a chunk of grid points is evaluated in one forward:

        - ``"stack"``: the N images are stacked once per grid point of the chunk and run as one
          batch; a temporary forward hook on the first conv (removed afterwards) adds
          ``a_p conv(x, d1) + b_p conv(x, d2)`` to replica ``p``'s conv output — exactly
          ``conv(x, w + a_p d1 + b_p d2)`` up to float rounding, by linearity of convolution.
          A plain batched forward: the fastest on CPU and GPU.
        - ``"vmap"``: ``torch.func.vmap(functional_call(model, {weight: w_p}, x))`` with the
          perturbed weights ``(c, *w.shape)`` as the batched argument (exact weight; measured
          about 2x slower than the loop on CPU for a small DARTS net).
        - ``"loop"``: one ``functional_call`` forward per grid point (reference).
        - ``"auto"``: ``"stack"``, then ``"vmap"``, then ``"loop"`` if a method fails for this
          model (with a warning). ``result.info["method"]`` records the one used.
    """
    methods = ("auto", "stack", "vmap", "loop")
    if method not in methods:
        raise ValueError(f"method must be one of {methods}, got {method!r}")
    coords = grid_coordinates(grid, span)
    x, y = _prep(model, x, y)
    if max_batch is None:
        max_batch = _default_max_batch(x.device)
    if not (isinstance(max_batch, int) and max_batch >= 1):
        raise ValueError(f"max_batch must be a positive int or None, got {max_batch!r}")
    name, conv = _first_conv_named(model)
    wname = f"{name}.weight" if name else "weight"
    w = conv.weight.detach()
    d1, d2 = (d.to(device=w.device, dtype=w.dtype) for d in balanced_sign_directions(w.shape, seed))
    # All grid points, alpha-major: point p = i * grid + j  <->  (alphas[i], betas[j]).
    a = coords.repeat_interleave(grid).to(device=w.device, dtype=w.dtype)
    b = coords.repeat(grid).to(device=w.device, dtype=w.dtype)
    n_img = x.shape[0]
    chunk = max(1, max_batch // n_img)
    shape1 = (-1,) + (1,) * w.ndim

    def weights(sl: slice) -> torch.Tensor:
        return w.unsqueeze(0) + a[sl].view(shape1) * d1 + b[sl].view(shape1) * d2

    def loss_at(wp: torch.Tensor) -> torch.Tensor:  # (N,)
        logits = functional_call(model, {wname: wp}, (x,), strict=False)
        return F.cross_entropy(logits, y, reduction="none")

    def run_stack() -> list:
        hook = _StackHook(d1, d2, n_img)
        handle = conv.register_forward_hook(hook)
        try:
            res = []
            for start in range(0, a.numel(), chunk):
                hook.a, hook.b, hook.calls = a[start:start + chunk], b[start:start + chunk], 0
                c = hook.a.numel()
                logits = model(x.repeat(c, *([1] * (x.ndim - 1))))
                if hook.calls != 1:
                    raise RuntimeError(f"first conv ran {hook.calls} times in one forward")
                res.append(F.cross_entropy(logits, y.repeat(c), reduction="none").view(c, n_img))
            return res
        finally:
            handle.remove()

    def run_vmap() -> list:
        batched = vmap(loss_at)
        return [batched(weights(slice(s, s + chunk))) for s in range(0, a.numel(), chunk)]

    def run_loop() -> list:
        return [loss_at(weights(slice(p, p + 1))[0]).unsqueeze(0) for p in range(a.numel())]

    runners = {"stack": run_stack, "vmap": run_vmap, "loop": run_loop}
    order = ["stack", "vmap", "loop"] if method == "auto" else [method]
    out, used = None, None
    with eval_mode(model), torch.no_grad():
        for k, m in enumerate(order):
            try:
                out, used = runners[m](), m
                break
            except (RuntimeError, NotImplementedError) as err:
                if k == len(order) - 1:
                    raise
                warnings.warn(f"parameter_contour: method {m!r} failed ({type(err).__name__}: "
                              f"{str(err).splitlines()[0][:200]}); trying {order[k + 1]!r}",
                              RuntimeWarning, stacklevel=2)
    loss = torch.cat(out).to(torch.float64).cpu()  # (grid*grid, N)
    loss = loss.T.reshape(n_img, grid, grid)
    if not per_image:
        loss = loss.mean(0)
    return ContourResult(alphas=coords, betas=coords.clone(), loss=loss, space="parameter",
                         span=float(span), seed=int(seed),
                         info={"layer": wname, "n_perturbed": w.numel(), "method": used,
                               "per_image": per_image})


# ------------------------------------------------------------------------------------------
# input space
# ------------------------------------------------------------------------------------------
def input_directions(shape: Sequence[int], n_images: int,
                     seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image direction pairs ``(n_images, *shape)`` each: image ``k`` gets the ``k``-th
    consecutive :func:`balanced_sign_directions`-style pair drawn from one generator seeded with
    ``seed`` (so image 0's pair equals ``balanced_sign_directions(shape, seed)``)."""
    gen = torch.Generator().manual_seed(int(seed))
    pairs = [_direction_pair(shape, gen) for _ in range(n_images)]
    return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


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
        Seed of :func:`input_directions` (per-image balanced ±1 pairs of shape ``(C, H, W)``).
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
    if max_batch is None:
        max_batch = _default_max_batch(x.device)
    if not (isinstance(max_batch, int) and max_batch >= 1):
        raise ValueError(f"max_batch must be a positive int or None, got {max_batch!r}")
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
                         span=float(span), seed=int(seed), info={"per_image": True})


# ------------------------------------------------------------------------------------------
# summaries and plots
# ------------------------------------------------------------------------------------------
def flatness(result: ContourResult, radius: float | None = None,
             per_image: bool = False) -> float | torch.Tensor:
    """Contour sharpness: mean loss increase over the grid relative to the centre (nats).

    ``mean_{(alpha, beta)} [L(alpha, beta) - L(0, 0)]`` over all grid points, or only those with
    ``sqrt(alpha^2 + beta^2) <= radius`` when ``radius`` is given. **Higher = sharper** (less
    flat); 0 for a constant surface; it can be negative where the centre is not a minimum.
    For per-image results the value is averaged over images (or returned per image, shape
    ``(n_images,)``, with ``per_image=True``).
    """
    A, B = torch.meshgrid(result.alphas, result.betas, indexing="ij")
    mask = torch.ones_like(A, dtype=torch.bool)
    if radius is not None:
        if not radius >= 0:
            raise ValueError(f"radius must be >= 0, got {radius!r}")
        mask = (A.square() + B.square()).sqrt() <= radius
    c = (result.alphas.numel() - 1) // 2
    loss = result.loss if result.loss.ndim == 3 else result.loss.unsqueeze(0)
    inc = (loss - loss[:, c:c + 1, c:c + 1])[:, mask].mean(1)  # (n_images,)
    if per_image:
        return inc
    return float(inc.mean())


def plot_contour(result: ContourResult, ax=None, title: str | None = None, image: int = 0,
                 clabel: bool = False):
    """Matplotlib ``contour`` of the loss surface with default levels (protocol §5.2).

    For per-image results, ``image`` picks which one. x axis alpha (``d1``), y axis beta
    (``d2``). Returns the Axes (a new figure is made when ``ax`` is None).
    """
    import matplotlib.pyplot as plt

    loss = result.loss
    if loss.ndim == 3:
        if not 0 <= image < loss.shape[0]:
            raise ValueError(f"image must be in [0, {loss.shape[0]}), got {image}")
        loss = loss[image]
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    cs = ax.contour(result.alphas.numpy(), result.betas.numpy(), loss.numpy().T)
    if clabel:
        ax.clabel(cs, inline=True, fontsize=7)
    ax.set_xlabel(r"$\alpha$ (d1)")
    ax.set_ylabel(r"$\beta$ (d2)")
    ax.set_aspect("equal")
    if title is None:
        title = f"{result.space} space, span ±{result.span:g}"
    ax.set_title(title)
    return ax
