"""Measured wall-clock latency of early-exit inference (batch 1, one thread).

DeepSloth's slowdown is first of all a change in the *exit position*, which the analytic cost
model turns into efficacy (:mod:`.metrics`). This module measures what it costs on real hardware:
every image is pushed alone through :func:`~.inference.early_exit_one` — the network runs block
by block and stops at the first confident IC — and the wall time per image is recorded
(``time.perf_counter``), with ``torch`` limited to one intra-op thread for the measurement.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from ..models.base import eval_mode
from .inference import early_exit_one


class one_thread:
    """Context manager: ``torch.set_num_threads(1)`` inside, the previous value restored after."""

    def __enter__(self):
        self.before = torch.get_num_threads()
        torch.set_num_threads(1)
        return self

    def __exit__(self, *exc):
        torch.set_num_threads(self.before)
        return False


def measure_latency(sdn, x: torch.Tensor, q: float, warmup: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Per-image wall seconds ``(N,)`` and exit indices ``(N,)`` of batch-1 early-exit inference
    of images ``x`` ``(N, 3, H, W)`` at threshold ``q`` (one thread, eval mode, no autograd).

    The first ``warmup`` images are run once before timing (allocator and kernel warm-up)."""
    device = next(sdn.parameters()).device
    seconds = np.empty(x.shape[0])
    exits = np.empty(x.shape[0], dtype=np.int64)
    with one_thread(), eval_mode(sdn), torch.inference_mode():
        for i in range(min(warmup, x.shape[0])):
            early_exit_one(sdn, x[i:i + 1].to(device), q)
        for i in range(x.shape[0]):
            xi = x[i:i + 1].to(device)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            exits[i], _ = early_exit_one(sdn, xi, q)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds[i] = time.perf_counter() - t0
    return seconds, exits


def latency_summary(seconds: np.ndarray) -> dict:
    """Median and 95th percentile in milliseconds, and the number of images."""
    s = np.asarray(seconds, dtype=float) * 1e3
    return {"median_ms": float(np.median(s)), "p95_ms": float(np.percentile(s, 95)), "n": int(s.size)}
