"""The artifact's parameter-space contour: only the first conv weight moves (protocol §5.2).

Used by :func:`~.contours.parameter_contour` with ``mode="first-conv"``. Evaluation is batched,
never one forward per grid point unless asked: for a chunk of grid points the images are stacked
once per point and run as one batch, the first conv's output of replica ``p`` being
``conv(x, w) + a_p conv(x, d1) + b_p conv(x, d2)`` (= ``conv(x, w + a_p d1 + b_p d2)``, a
convolution is linear in its weight) through a temporary forward hook; a
``torch.func.vmap(functional_call(...))`` over the perturbed weights and a per-point loop are
the alternatives. The model's weights are never written. The caller provides eval mode and
``torch.no_grad``.
"""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

__all__ = ["first_conv_losses", "FIRST_CONV_METHODS"]

FIRST_CONV_METHODS = ("auto", "stack", "vmap", "loop")


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


def first_conv_losses(model: nn.Module, conv: nn.Conv2d, wname: str, x: torch.Tensor,
                      y: torch.Tensor, coords: torch.Tensor, d1: torch.Tensor, d2: torch.Tensor,
                      max_batch: int, method: str = "auto") -> tuple[torch.Tensor, str]:
    """``(grid**2, N)`` per-image CE with ``conv.weight`` moved to ``w + a d1 + b d2``.

    Grid point ``p = i * grid + j`` is ``(coords[i], coords[j])``. A chunk holds
    ``max(1, max_batch // N)`` grid points. ``method``:

    - ``"stack"``: the N images are stacked once per grid point of the chunk and run as one
      batch; a temporary forward hook on the first conv (removed afterwards) adds
      ``a_p conv(x, d1) + b_p conv(x, d2)`` to replica ``p``'s conv output — exactly
      ``conv(x, w + a_p d1 + b_p d2)`` up to float rounding. The fastest on CPU and GPU.
    - ``"vmap"``: ``torch.func.vmap(functional_call(model, {weight: w_p}, x))`` with the
      perturbed weights ``(c, *w.shape)`` as the batched argument (exact weight; measured
      about 2x slower than the loop on CPU for a small DARTS net).
    - ``"loop"``: one ``functional_call`` forward per grid point (reference).
    - ``"auto"``: ``"stack"``, then ``"vmap"``, then ``"loop"`` if a method fails for this
      model (with a warning).

    Returns the losses and the method used.
    """
    if method not in FIRST_CONV_METHODS:
        raise ValueError(f"method must be one of {FIRST_CONV_METHODS} in mode 'first-conv', "
                         f"got {method!r}")
    w = conv.weight.detach()
    d1, d2 = d1.to(device=w.device, dtype=w.dtype), d2.to(device=w.device, dtype=w.dtype)
    grid = coords.numel()
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
    for k, m in enumerate(order):
        try:
            return torch.cat(runners[m]()), m
        except (RuntimeError, NotImplementedError) as err:
            if k == len(order) - 1:
                raise
            warnings.warn(f"parameter_contour: method {m!r} failed ({type(err).__name__}: "
                          f"{str(err).splitlines()[0][:200]}); trying {order[k + 1]!r}",
                          RuntimeWarning, stacklevel=3)
    raise AssertionError("unreachable")
