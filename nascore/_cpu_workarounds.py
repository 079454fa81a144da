"""Work-arounds for bugs of the pinned CPU torch build, kept in one place (like ``_torchvision_compat``).

**Odd batches corrupt the heap in multi-threaded conv weight gradients.** With torch 2.13.0+cpu the
weight gradient of a strided 1×1 convolution on ``channels_last`` input (ResNet's downsampling shortcut)
corrupts the heap — ``double free or corruption``, ``free(): invalid next size`` or a segfault, which
kills a notebook kernel without a traceback (it hung chapters 6 and 7 in CI until nbval's timeout) —
when the batch size is odd and more than one intra-op thread is used. Measured on the development
machine (AVX-512 + AMX), ``Conv2d(4, 8, 1, stride=2)``, 2 threads: batch 3, 5, 17, 33, 49, 127 crash;
batch 1, 2, 50, 66, 98, 130 do not; one thread, contiguous NCHW input, no weight gradient, or oneDNN
disabled do not crash (``tests/test_cpu_workarounds.py`` reproduces it in a subprocess). Odd batches
occur in the trainer when a backdoor prepends its stamped copies to each batch, and as the last, short
batch of an epoch.

:func:`training_threads` therefore trains on one intra-op thread on the CPU — what the zoo's worker
processes always did. It costs little: for these small networks one two-threaded training is only
~5–15 % faster than a one-threaded one (two one-threaded processes give 1.7–1.9× the throughput of
one two-threaded process; README, "Measured performance"). Giving up ``channels_last`` (1.4–1.5× on this
CPU) or oneDNN would cost far more.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch


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
