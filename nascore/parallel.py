"""Run independent per-model jobs in parallel single-threaded worker processes.

Used by :func:`nascore.zoo.train_many` and the chapters (measured: two single-threaded processes
give 1.7–1.9× the throughput of one two-threaded process for the small quick-scale networks):
on the CPU, ``workers`` spawned processes with one thread each, each replaced after
``tasks_per_process`` jobs so that memory is returned. On CUDA, or with ``workers=1``, the jobs run
in this process. Starting a process costs seconds (importing torch: measured 3–10 s on the shared
2-core machine), so short jobs should share processes or run in this one.

Each worker's stderr (file descriptor 2, from its first instruction, spawn's bootstrap included) goes
to its own anonymous temporary file: when the worker finishes, what it wrote (warnings) is copied to
this process's fd 2, where it went before; when it dies without a result, the :class:`RuntimeError` names its
jobs, its exit code (and signal: "out of memory?" only for SIGKILL) and the last lines it wrote, e.g.
the traceback of a script that starts workers without an ``if __name__ == "__main__":`` guard.
"""
from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Sequence

import torch

from .progress import eta, note
from .train import default_device


def default_workers(device: torch.device | str | None = None) -> int:
    """Worker processes: one per core on CPU (each single-threaded), 1 on CUDA.

    Measured on 2 cores (README, "Measured performance"): two single-threaded trainings run at
    ~1.7× (DARTS C=8) to ~1.9× (ResNet-18 ×1/8) the combined throughput of one two-threaded
    training, because small networks use a second thread poorly.
    """
    device = torch.device(device) if device is not None else default_device()
    return 1 if device.type == "cuda" else max(1, os.cpu_count() or 1)


def check_workers(workers: Any) -> int | None:
    """``workers`` as given, after checking it is ``None`` (one per core) or an integer >= 1; raises
    ``ValueError`` naming the bad value otherwise (chapters call it before any compute)."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive integer or None (one per core), got {workers!r}")
    return workers


def map_in_workers(fn: Callable, jobs: Sequence[tuple], workers: int | None = None,
                   progress: Callable[[Any, float], None] | None = None, tasks_per_process: int = 1,
                   desc: str | None = None) -> list:
    """``[fn(*job) for job in jobs]``, in parallel where that pays (see the module docstring).

    ``fn`` must be a module-level function and the jobs picklable. ``progress(result, elapsed)``
    is called as each job finishes. Results come back in the order of ``jobs``. Each finished job
    also writes one line (``desc``, default ``fn``'s name: done / total, time left) to the book
    runner's terminal through :func:`nascore.progress.note` — nothing when no runner listens.
    """
    workers = default_workers() if check_workers(workers) is None else workers
    if tasks_per_process < 1:
        raise ValueError(f"tasks_per_process must be >= 1, got {tasks_per_process}")
    t0 = time.perf_counter()
    label = desc or fn.__name__.strip("_").replace("_", " ")
    done = 0

    def finished(result) -> None:
        nonlocal done
        done += 1
        elapsed = time.perf_counter() - t0
        note(f"{label}: {eta(done, len(jobs), elapsed)}")
        if progress:
            progress(result, elapsed)

    in_process = workers == 1 or len(jobs) <= 1 or default_device().type != "cpu"
    note(f"{label}: {len(jobs)} job(s) " + ("in this process" if in_process else f"on {min(workers, len(jobs))} workers"))
    if in_process:
        out = []
        for job in jobs:
            out.append(fn(*job))
            finished(out[-1])
        return out
    # round-robin, not contiguous: callers sort their jobs largest first, and contiguous chunks would put the
    # largest ``tasks_per_process`` jobs into one process while the other workers finish early and idle
    n_chunks = -(-len(jobs) // tasks_per_process)
    chunks = [list(range(i, len(jobs), n_chunks)) for i in range(n_chunks)]
    results: list = [None] * len(jobs)
    for chunk, outputs in _run_chunks_in_processes(fn, jobs, chunks, workers):
        for i, result in zip(chunk, outputs):
            results[i] = result
            finished(result)
    return results


def _run_chunks_in_processes(fn: Callable, jobs: Sequence[tuple], chunks: list[list[int]], workers: int):
    """Yield ``(chunks[k], outputs)`` as each chunk (a list of indices into ``jobs``) finishes in its own
    fresh spawned process.

    Written here rather than with :class:`concurrent.futures.ProcessPoolExecutor`: with
    ``max_tasks_per_child`` (needed so that each process returns its memory) that pool can stop
    replacing exited workers and hang forever (CPython gh-115634, 3.11 up to 3.15 beta; it hung two
    chapters in CI). Here every chunk gets one process; at most ``workers`` run at once; a worker that
    dies without answering raises :class:`RuntimeError` naming its jobs, exit code or signal and the
    end of its stderr (see :func:`_start_worker`); an exception inside a job is re-raised here; what a
    worker that answered wrote to stderr is copied to this process's fd 2; on any error or interrupt the
    other workers are terminated.
    """
    import multiprocessing as mp
    from multiprocessing.connection import wait

    ctx = mp.get_context("spawn")
    name = getattr(fn, "__name__", None) or repr(fn)
    pending = list(range(len(chunks)))[::-1]
    running: dict = {}  # receiving connection -> (process, chunk index, its stderr file)
    try:
        while pending or running:
            while pending and len(running) < workers:
                k = pending.pop()
                proc, receive, errfile = _start_worker(ctx, fn, [tuple(jobs[i]) for i in chunks[k]])
                running[receive] = proc, k, errfile
            for conn in wait(list(running)):
                proc, k, errfile = running.pop(conn)
                try:
                    try:
                        status, payload = conn.recv()
                    except EOFError:
                        proc.join()
                        raise RuntimeError(_death_message(chunks[k], name, proc.exitcode,
                                                          _stderr_tail(errfile))) from None
                    finally:
                        conn.close()
                    proc.join()
                    _forward_stderr(errfile)  # warnings, and the traceback of a failed job
                finally:
                    errfile.close()
                    if proc.exitcode is not None:
                        proc.close()  # its sentinel fd now, not at garbage collection
                if status == "error":
                    exc, trace = payload
                    raise exc from RuntimeError(f"in worker process for jobs {chunks[k]}:\n{trace}")
                yield chunks[k], payload
    finally:
        for conn, (proc, _, errfile) in running.items():
            proc.terminate()
            proc.join()
            proc.close()
            conn.close()
            errfile.close()


#: Held while this process's fd 2 points at a starting worker's stderr file.
_STDERR_SWAP = threading.Lock()
_TAIL_LINES, _TAIL_CHARS = 40, 4000
_CRASH_SIGNALS = {"SIGSEGV", "SIGABRT", "SIGBUS", "SIGFPE", "SIGILL"}


def _start_worker(ctx, fn: Callable, jobs: list[tuple]):
    """Start one spawned worker for ``jobs`` with its fd 2 on a fresh anonymous temporary file;
    return ``(process, receiving connection, that file)``.

    A spawned child inherits this process's fd 2 when it is forked (and exec'd) inside
    ``proc.start()``, before it runs any Python, so fd 2 is pointed at the file just for that call
    and then restored: the file then holds everything the child writes to stderr, including a
    traceback from spawn's bootstrap (re-importing ``__main__``), which runs before the target
    function. The resource tracker, a long-lived process that the first start would otherwise
    launch inside that window, is started first so that it keeps this process's stderr.

    ``fn`` and the jobs travel through a pipe of their own after the start, not as the process's
    arguments: ``start()`` then writes only a few bytes, so the window stays short, and a child that
    dies in its bootstrap cannot hang this process. (``start()`` writes its arguments while still
    holding the child's end of that pipe, so arguments beyond the pipe's buffer, ~64 KiB, would block
    it forever.)
    """
    from multiprocessing import resource_tracker
    from multiprocessing.reduction import ForkingPickler

    payload = ForkingPickler.dumps((fn, jobs))  # raises here, before any process, if they cannot travel
    resource_tracker.ensure_running()
    errfile = tempfile.TemporaryFile(buffering=0)
    receive, send = ctx.Pipe(duplex=False)
    source, feed = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_run_chunk, args=(send, source), daemon=True)
    try:
        with _STDERR_SWAP:
            for stream in (sys.stderr, sys.__stderr__):
                try:
                    stream.flush()
                except Exception:  # noqa: BLE001 - None, closed or odd streams: nothing to flush
                    pass
            try:
                saved = os.dup(2)
            except OSError:  # no fd 2 here: the child gets the file, this process none again
                saved = None
            os.dup2(errfile.fileno(), 2)
            try:
                proc.start()
            finally:
                if saved is None:
                    os.close(2)
                else:
                    os.dup2(saved, 2)
                    os.close(saved)
    except BaseException:
        for conn in (receive, send, source, feed):
            conn.close()
        errfile.close()
        raise
    send.close()  # the child holds the only writer: its death makes ``receive`` readable (EOF)
    source.close()  # and the only reader: its death breaks ``feed``
    try:
        feed.send_bytes(payload)  # blocks, if large, until the child has bootstrapped and reads it
    except OSError:  # BrokenPipeError: it died first (see its stderr); ``receive`` reads EOF below
        pass
    except BaseException:
        proc.terminate()
        proc.join()
        receive.close()
        errfile.close()
        raise
    finally:
        feed.close()
    return proc, receive, errfile


def _death_message(chunk: list[int], name: str, code: int | None, tail: str) -> str:
    """The error for a worker that gave no result: jobs, function, exit code, signal, stderr tail."""
    text = f"worker process for jobs {chunk} ({name}) exited with code {code} without a result"
    if code is not None and code < 0:
        try:
            sig = signal.Signals(-code).name
        except ValueError:
            sig = f"signal {-code}"
        if sig == "SIGKILL":
            text += f": killed by {sig} (out of memory?)"
        elif sig in _CRASH_SIGNALS:
            text += f": crashed with {sig}"
        else:
            text += f": killed by {sig}"
    if tail:
        return text + f"; the end of its stderr:\n{tail}"
    return text + "; it wrote nothing to stderr"


def _stderr_tail(errfile) -> str:
    """The last ``_TAIL_LINES`` lines (at most ``_TAIL_CHARS`` characters) written to ``errfile``."""
    size = errfile.seek(0, os.SEEK_END)
    start = max(0, size - 4 * _TAIL_CHARS)
    errfile.seek(start)
    lines = errfile.read().decode("utf-8", "replace").rstrip().splitlines()
    cut = start > 0
    if cut:
        lines = lines[1:]  # the first may be a partial line
    if len(lines) > _TAIL_LINES:
        lines, cut = lines[-_TAIL_LINES:], True
    tail = "\n".join(lines)
    if len(tail) > _TAIL_CHARS:
        tail, cut = tail[-_TAIL_CHARS:], True
    return f"[...]\n{tail}" if cut and tail else tail


def _forward_stderr(errfile) -> None:
    """Copy what a finished worker wrote to stderr onto this process's fd 2 — where it went before it
    was captured (in a notebook kernel that is the kernel's log, not the cell's output)."""
    if errfile.seek(0, os.SEEK_END) == 0:
        return
    errfile.seek(0)
    try:
        while chunk := errfile.read(1 << 16):
            view = memoryview(chunk)
            while view:
                view = view[os.write(2, view):]
    except OSError:  # no fd 2 in this process: nowhere it could have gone
        pass


def _run_chunk(conn, source) -> None:
    """Worker process body: receive ``(fn, jobs)`` from ``source``, run the jobs single-threaded, send
    ``("ok", outputs)`` or ``("error", ...)`` on ``conn``."""
    import traceback

    torch.set_num_threads(1)
    try:
        fn, jobs = source.recv()
        source.close()
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
