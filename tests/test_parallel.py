"""nascore.parallel: results in job order, several jobs per process without hanging, and why a
worker died."""
import gc
import operator
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nascore.parallel import map_in_workers


def test_results_in_job_order_with_several_jobs_per_process():
    seen = []
    out = map_in_workers(operator.mul, [(i, 3) for i in range(10)], workers=2, tasks_per_process=3,
                         progress=lambda r, t: seen.append(r))
    assert out == [3 * i for i in range(10)]
    assert sorted(seen) == sorted(out)


def _pid_of(_job):
    return os.getpid()


def test_jobs_share_processes_round_robin_so_the_largest_are_spread():
    """Callers sort jobs largest first: jobs 0 and 1 (the two largest) must not share a process."""
    pids = map_in_workers(_pid_of, [(i,) for i in range(6)], workers=2, tasks_per_process=3)
    assert pids[0] != pids[1]
    assert pids[0] == pids[2] == pids[4] and pids[1] == pids[3] == pids[5]


def test_in_process_when_one_worker_and_bad_arguments():
    assert map_in_workers(operator.add, [(1, 2), (3, 4)], workers=1) == [3, 7]
    for bad in (0, -1, 1.5, "2"):
        with pytest.raises(ValueError, match=r"workers must be a positive integer or None .*got " + repr(bad)):
            map_in_workers(operator.add, [(1, 2)], workers=bad)
    with pytest.raises(ValueError, match="tasks_per_process must be >= 1"):
        map_in_workers(operator.add, [(1, 2)], workers=2, tasks_per_process=0)


def _fail_on_three(i):
    if i == 3:
        raise KeyError(f"job {i}")
    return i


def _die_on_two(i):
    import os
    if i == 2:
        os._exit(7)
    return i


def test_more_chunks_than_workers_one_job_each_finishes():
    """The stdlib pool with max_tasks_per_child deadlocks here on CPython 3.11 (gh-115634)."""
    assert map_in_workers(operator.neg, [(i,) for i in range(7)], workers=2, tasks_per_process=1) == \
        [-i for i in range(7)]


def test_job_exception_is_reraised_with_its_type():
    with pytest.raises(KeyError, match="job 3"):
        map_in_workers(_fail_on_three, [(i,) for i in range(5)], workers=2)


def test_worker_that_dies_names_its_jobs():
    with pytest.raises(RuntimeError, match=r"jobs \[2\].*exited with code 7"):
        map_in_workers(_die_on_two, [(i,) for i in range(4)], workers=2)


# ----------------------------------------------------------------------------- why a worker died (issue 18)
def _write_then_exit_on_one(i):
    import os
    import sys
    if i == 1:
        sys.stderr.write("boom-marker: about to exit\n")
        sys.stderr.flush()
        os._exit(3)
    return i


def _kill_self_on_one(i):
    import os
    import signal
    if i == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return i


def _crash_on_one(i, how):
    import os
    import resource
    if i == 1:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file
        if how == "segv":
            import ctypes
            ctypes.string_at(0)
        os.abort()
    return i


def _warn_and_return(i):
    import sys
    print(f"warn-marker {i}", file=sys.stderr, flush=True)
    return i


def test_worker_exit_code_and_stderr_tail_in_message_not_memory():
    with pytest.raises(RuntimeError) as info:
        map_in_workers(_write_then_exit_on_one, [(0,), (1,)], workers=2)
    message = str(info.value)
    assert "jobs [1]" in message and "_write_then_exit_on_one" in message
    assert "code 3" in message and "boom-marker: about to exit" in message
    assert "memory" not in message and "SIG" not in message


def test_worker_killed_by_sigkill_suggests_memory():
    with pytest.raises(RuntimeError) as info:
        map_in_workers(_kill_self_on_one, [(0,), (1,)], workers=2)
    message = str(info.value)
    assert "code -9" in message and "SIGKILL" in message and "out of memory?" in message


@pytest.mark.parametrize("how, signame", [("segv", "SIGSEGV"), ("abort", "SIGABRT")])
def test_worker_crash_names_its_signal(how, signame):
    with pytest.raises(RuntimeError) as info:
        map_in_workers(_crash_on_one, [(0, how), (1, how)], workers=2)
    message = str(info.value)
    assert f"crashed with {signame}" in message and "memory" not in message


def test_death_message_and_stderr_tail_without_processes(tmp_path):
    import signal

    from nascore.parallel import _death_message, _stderr_tail

    assert _death_message([4], "f", -signal.SIGTERM, "") == \
        "worker process for jobs [4] (f) exited with code -15 without a result: killed by SIGTERM; " \
        "it wrote nothing to stderr"
    assert "killed by SIGKILL (out of memory?); the end of its stderr:\nlast words" in \
        _death_message([0, 1], "f", -signal.SIGKILL, "last words")
    assert "code 0 without a result; it wrote" in _death_message([0], "f", 0, "")
    with open(tmp_path / "err", "w+b", buffering=0) as f:
        f.write("".join(f"line {i}\n" for i in range(100)).encode())
        tail = _stderr_tail(f)
        assert tail.splitlines() == ["[...]"] + [f"line {i}" for i in range(60, 100)]
        f.write(b"x" * 10_000 + "\n\u00e9nd\n".encode())
        tail = _stderr_tail(f)
        assert tail.startswith("[...]\nxxx") and tail.endswith("x\n\u00e9nd") and len(tail) == 4006


def test_worker_stderr_is_forwarded_and_no_file_left_open(capfd):
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()  # its pipe stays open for good, once started
    gc.collect()  # earlier tests' garbage may hold fds
    open_fds = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    assert map_in_workers(_warn_and_return, [(0,), (1,), (2,)], workers=2) == [0, 1, 2]
    err = capfd.readouterr().err
    assert all(f"warn-marker {i}" in err for i in range(3))
    if open_fds is not None:
        assert len(os.listdir("/proc/self/fd")) == open_fds


@pytest.mark.parametrize("payload", ["small", "large"])
def test_script_without_main_guard_reports_the_bootstrap_error(tmp_path, payload):
    """Spawned workers re-import ``__main__``; unguarded, each fails in its bootstrap with exit code 1.
    A large payload (beyond the pipe buffer) used to hang ``Process.start()`` forever."""
    job = "(1,), (2,)" if payload == "small" else '(b"x" * 2_000_000,), (b"y",)'
    fn = "operator.neg" if payload == "small" else "len"
    (tmp_path / "unguarded.py").write_text(
        "import operator\n"
        "from nascore.parallel import map_in_workers\n"
        f"print(map_in_workers({fn}, [{job}], workers=2))\n")
    repo = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")]))}
    run = subprocess.run([sys.executable, "unguarded.py"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode != 0
    assert "exited with code 1 without a result" in run.stderr
    assert "bootstrapping phase" in run.stderr and "freeze_support" in run.stderr
    assert "memory" not in run.stderr
