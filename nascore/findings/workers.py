"""Run independent per-model jobs of a chapter in parallel single-threaded worker processes.

The same layout as :func:`nascore.zoo.train_many` (measured there: two single-threaded processes
give 1.7–1.9× the throughput of one two-threaded process for the small quick-scale networks):
on the CPU, ``workers`` spawned processes with one thread each, each replaced after
``tasks_per_process`` jobs so that memory is returned. On CUDA, or with ``workers=1``, the jobs run
in this process. Starting a process costs seconds (importing torch: measured 3–10 s on the shared
2-core machine), so short jobs should share processes or run in this one.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import torch

from ..train import default_device
from ..zoo import default_workers


def _one_thread(fn: Callable, args: tuple) -> Any:
    torch.set_num_threads(1)
    return fn(*args)


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

    results: list = [None] * len(jobs)
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=mp.get_context("spawn"),
                             max_tasks_per_child=tasks_per_process) as pool:
        futures = {pool.submit(_one_thread, fn, tuple(job)): i for i, job in enumerate(jobs)}
        for fut in as_completed(futures):
            results[futures[fut]] = fut.result()
            if progress:
                progress(results[futures[fut]], time.perf_counter() - t0)
    return results
