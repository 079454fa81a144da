"""Run independent per-model jobs in parallel single-threaded worker processes.

Used by :func:`nascore.zoo.train_many` and the chapters (measured: two single-threaded processes
give 1.7–1.9× the throughput of one two-threaded process for the small quick-scale networks):
on the CPU, ``workers`` spawned processes with one thread each, each replaced after
``tasks_per_process`` jobs so that memory is returned. On CUDA, or with ``workers=1``, the jobs run
in this process. Starting a process costs seconds (importing torch: measured 3–10 s on the shared
2-core machine), so short jobs should share processes or run in this one.
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable, Sequence

import torch

from .train import default_device


def default_workers(device: torch.device | str | None = None) -> int:
    """Worker processes: one per core on CPU (each single-threaded), 1 on CUDA.

    Measured on 2 cores (README, "Measured performance"): two single-threaded trainings run at
    ~1.7× (DARTS C=8) to ~1.9× (ResNet-18 ×1/8) the combined throughput of one two-threaded
    training, because small networks use a second thread poorly.
    """
    device = torch.device(device) if device is not None else default_device()
    return 1 if device.type == "cuda" else max(1, os.cpu_count() or 1)


def map_in_workers(fn: Callable, jobs: Sequence[tuple], workers: int | None = None,
                   progress: Callable[[Any, float], None] | None = None, tasks_per_process: int = 1) -> list:
    """``[fn(*job) for job in jobs]``, in parallel where that pays (see the module docstring).

    ``fn`` must be a module-level function and the jobs picklable. ``progress(result, elapsed)``
    is called as each job finishes. Results come back in the order of ``jobs``.
    """
    workers = default_workers() if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if tasks_per_process < 1:
        raise ValueError(f"tasks_per_process must be >= 1, got {tasks_per_process}")
    t0 = time.perf_counter()
    if workers == 1 or len(jobs) <= 1 or default_device().type != "cpu":
        out = []
        for job in jobs:
            out.append(fn(*job))
            if progress:
                progress(out[-1], time.perf_counter() - t0)
        return out
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # ``tasks_per_process`` jobs run as one task in one fresh process (max_tasks_per_child=1). Letting the
    # pool recycle processes after several tasks instead (max_tasks_per_child > 1) can hang on CPython 3.11
    # (gh-115634), so the grouping is done here.
    chunks = [list(range(i, min(i + tasks_per_process, len(jobs)))) for i in range(0, len(jobs), tasks_per_process)]
    results: list = [None] * len(jobs)
    with ProcessPoolExecutor(max_workers=min(workers, len(chunks)), mp_context=mp.get_context("spawn"),
                             max_tasks_per_child=1) as pool:
        futures = {pool.submit(_run_chunk, fn, [tuple(jobs[i]) for i in chunk]): chunk for chunk in chunks}
        for fut in as_completed(futures):
            for i, result in zip(futures[fut], fut.result()):
                results[i] = result
                if progress:
                    progress(result, time.perf_counter() - t0)
    return results


def _run_chunk(fn: Callable, jobs: list[tuple]) -> list:
    torch.set_num_threads(1)
    return [fn(*job) for job in jobs]
