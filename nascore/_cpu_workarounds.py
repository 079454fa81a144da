"""Work-arounds for bugs of the pinned CPU torch build, kept in one place (like ``_torchvision_compat``).

**oneDNN's strided 1×1 convolution corrupts the heap in its weight gradient.** With torch 2.13.0+cpu
the weight gradient of a *strided* 1×1 convolution on ``channels_last`` input (ResNet's downsampling
shortcut, DARTS' ``FactorizedReduce``, BiT's projection) aborts the process — ``double free or
corruption``, ``free(): invalid next size`` or a segfault, which kills a notebook kernel or a pytest
run without a traceback. oneDNN computes such a convolution by first copying the input to a
unit-stride buffer ("reduce to unit stride"); both failures below are in that path. Measured on the
development machine (Xeon, AVX-512 + AMX), one process per case, ``tests/test_cpu_workarounds.py``
reproduces both in subprocesses:

* **on the AVX2 instruction set** (``ONEDNN_MAX_CPU_ISA=AVX2``, ``AVX2_VNNI`` or ``AVX2_VNNI_2``:
  what oneDNN runs on an AVX2-only CPU), even on one thread: ``Conv2d(c_in, c_out, 1, stride=2)``
  with 2 ≤ c_in ≤ 7 (fewer input channels than one 8-float AVX2 vector) crashes at every batch
  size ≥ 2 (c_out 4–64, 8–32 px); c_in = 1, c_in ≥ 8, stride 1, 3×3 kernels, contiguous NCHW input,
  and the input gradient alone do not. This is what crashed ResNet-18 at the smoke width (1/16: a
  4-channel first stage) on AVX2, and not at quick's 1/8 (8 channels). The SSE4.1, AVX and
  AVX-512 paths (``AVX512_CORE``, ``AVX512_CORE_BF16``, uncapped) do not crash;
* **with more than one intra-op thread and an odd batch** (on AVX-512 too): batch 3, 5, 17, 33, 49,
  127 crash for c_in = 4 and 8; c_in = 16, batch 1, 2, 50, 66, 98, 130, and one thread do not.

:func:`avoid_strided_pointwise_conv` removes the path: a strided 1×1 convolution without padding
is the same sum as a unit-stride 1×1 convolution of the input subsampled at the stride
(``x[:, :, ::s, ::s]``), which is what oneDNN's buffer holds. Computed that way neither failure
occurs, and on the even feature-map sizes of every model here (32, 16, 8 px) the result is
**bit-identical** to the strided convolution wherever that one runs — forward, weight and input
gradient, on the uncapped, AVX-512-without-AMX, ATen-AVX2 and (for c_in ≥ 8) oneDNN-AVX2 paths,
tested on the running CPU for the layer and for a few training steps of quick-scale ResNet-18 and
DARTS — so trained weights, cache entries and committed results do not change. On an odd size the
weight gradient's summation order differs (equal to rounding). Cost (``benchmarks/bench_cpu_workarounds.py``): one strided slice
and copy of the block's input, measured per training step.
:func:`nascore.models.build` and :func:`nascore.train.train` apply it to every model.

:func:`training_threads` also trains on one intra-op thread on the CPU — what the zoo's worker
processes always did (for these small networks one two-threaded training is only ~5–15 % faster than
a one-threaded one; two one-threaded processes give 1.7–1.9× the throughput of one two-threaded
process; README, "Measured performance").
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn


def is_strided_pointwise(conv: nn.Conv2d) -> bool:
    """A 1×1 convolution with a stride above 1, zero padding of 0: the layers of the oneDNN bug."""
    return (tuple(conv.kernel_size) == (1, 1) and tuple(conv.stride) != (1, 1)
            and conv.padding in ((0, 0), "valid") and conv.padding_mode == "zeros")


def strided_pointwise_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                             stride: tuple[int, int], groups: int = 1) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, stride)`` for a 1×1 ``weight`` without padding; for a dense ``channels_last`` ``x``
    computed as a unit-stride convolution of ``x[:, :, ::stride[0], ::stride[1]]``.

    ``x``: ``(N, C_in, H, W)``; returns ``(N, C_out, ceil(H / s0), ceil(W / s1))``, the shape and
    values of the strided convolution; a ``channels_last`` input stays ``channels_last``. Only a
    dense ``channels_last`` input reaches the crashing path; any other input (contiguous NCHW; one
    dense in both formats, e.g. one channel; a view such as DARTS' ``FactorizedReduce`` convolves,
    ``x[:, :, 1:, 1:]`` — measured not to crash: c_in 2–7 on AVX2, odd batches on two threads) is
    convolved as it is, because subsampling it first changes the weight gradient's summation order
    there (not bit-identical).
    """
    if not x.is_contiguous(memory_format=torch.channels_last) or x.is_contiguous():
        return F.conv2d(x, weight, bias, stride, 0, 1, groups)
    x = x[:, :, ::stride[0], ::stride[1]].contiguous(memory_format=torch.channels_last)
    return F.conv2d(x, weight, bias, 1, 0, 1, groups)


class SubsampledPointwiseConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` whose strided 1×1 convolution is computed by :func:`strided_pointwise_conv2d`.

    Same parameters, buffers, ``state_dict`` keys and attributes (``stride`` keeps its value) as the
    ``nn.Conv2d`` it replaces: only how the sum is computed differs.
    """

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
        return strided_pointwise_conv2d(input, weight, bias, self.stride, self.groups)


def avoid_strided_pointwise_conv(model: nn.Module) -> nn.Module:
    """Compute every strided 1×1 ``nn.Conv2d`` of ``model`` (in place) without oneDNN's crashing path.

    Each such layer becomes a :class:`SubsampledPointwiseConv2d` (its class is replaced; weights,
    hooks and the module tree stay). Subclasses of ``nn.Conv2d`` with their own ``forward`` (BiT's
    ``StdConv2d``) call :func:`strided_pointwise_conv2d` themselves. Idempotent; returns ``model``.
    """
    for module in model.modules():
        if type(module) is nn.Conv2d and is_strided_pointwise(module):
            module.__class__ = SubsampledPointwiseConv2d
    return model


def restore_strided_pointwise_conv(model: nn.Module) -> nn.Module:
    """Undo :func:`avoid_strided_pointwise_conv` in place (the plain ``nn.Conv2d`` path, for the
    benchmark and the bit-identity tests that compare both); returns ``model``."""
    for module in model.modules():
        if type(module) is SubsampledPointwiseConv2d:
            module.__class__ = nn.Conv2d
    return model


@contextmanager
def training_threads(device: torch.device | str):
    """Context for a whole training run: one intra-op thread on CPU (restored afterwards); on other
    devices, or when one thread is already configured, nothing changes."""
    threads = torch.get_num_threads()
    if torch.device(device).type != "cpu" or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
