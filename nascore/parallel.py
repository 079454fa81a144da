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
    chunks = [list(range(i, min(i + tasks_per_process, len(jobs)))) for i in range(0, len(jobs), tasks_per_process)]
    results: list = [None] * len(jobs)
    for chunk, outputs in _run_chunks_in_processes(fn, jobs, chunks, workers):
        for i, result in zip(chunk, outputs):
            results[i] = result
            if progress:
                progress(result, time.perf_counter() - t0)
    return results


def _run_chunks_in_processes(fn: Callable, jobs: Sequence[tuple], chunks: list[list[int]], workers: int):
    """Yield ``(chunks[k], outputs)`` as each chunk (a list of indices into ``jobs``) finishes in its own
    fresh spawned process.

    Written here rather than with :class:`concurrent.futures.ProcessPoolExecutor`: with
    ``max_tasks_per_child`` (needed so that each process returns its memory) that pool can stop
    replacing exited workers and hang forever (CPython gh-115634, 3.11 up to 3.15 beta; it hung two
    chapters in CI). Here every chunk gets one process; at most ``workers`` run at once; a worker that
    dies without answering raises :class:`RuntimeError` naming its jobs; an exception inside a job is
    re-raised here; on any error or interrupt the other workers are terminated.
    """
    import multiprocessing as mp
    from multiprocessing.connection import wait

    ctx = mp.get_context("spawn")
    pending = list(range(len(chunks)))[::-1]
    running: dict = {}  # receiving connection -> (process, chunk index)
    try:
        while pending or running:
            while pending and len(running) < workers:
                k = pending.pop()
                receive, send = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_run_chunk, args=(send, fn, [tuple(jobs[i]) for i in chunks[k]]), daemon=True)
                proc.start()
                send.close()  # the child holds the only writer: its death makes ``receive`` readable (EOF)
                running[receive] = (proc, k)
            for conn in wait(list(running)):
                proc, k = running.pop(conn)
                try:
                    status, payload = conn.recv()
                except EOFError:
                    proc.join()
                    raise RuntimeError(f"worker process for jobs {chunks[k]} ({fn.__name__}) exited with code "
                                       f"{proc.exitcode} without a result (killed for memory?)") from None
                finally:
                    conn.close()
                proc.join()
                if status == "error":
                    exc, trace = payload
                    raise exc from RuntimeError(f"in worker process for jobs {chunks[k]}:\n{trace}")
                yield chunks[k], payload
    finally:
        for conn, (proc, _) in running.items():
            proc.terminate()
            proc.join()
            conn.close()


def _run_chunk(conn, fn: Callable, jobs: list[tuple]) -> None:
    """Worker process body: run ``jobs`` single-threaded, send ``("ok", outputs)`` or ``("error", ...)``."""
    import traceback

    torch.set_num_threads(1)
    try:
        message = ("ok", [fn(*job) for job in jobs])
    except BaseException as exc:  # noqa: BLE001 - sent to the parent, which re-raises it
        trace = traceback.format_exc()
        try:
            import pickle
            pickle.dumps(exc)
            message = ("error", (exc, trace))
        except Exception:  # an exception that cannot travel: keep its text
            message = ("error", (RuntimeError(f"{type(exc).__name__}: {exc}"), trace))
    conn.send(message)
    conn.close()
