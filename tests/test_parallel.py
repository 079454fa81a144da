"""nascore.parallel: results in job order, several jobs per process without hanging."""
import operator

import pytest

from nascore.parallel import map_in_workers


def test_results_in_job_order_with_several_jobs_per_process():
    seen = []
    out = map_in_workers(operator.mul, [(i, 3) for i in range(10)], workers=2, tasks_per_process=3,
                         progress=lambda r, t: seen.append(r))
    assert out == [3 * i for i in range(10)]
    assert sorted(seen) == sorted(out)


def test_in_process_when_one_worker_and_bad_arguments():
    assert map_in_workers(operator.add, [(1, 2), (3, 4)], workers=1) == [3, 7]
    with pytest.raises(ValueError, match="workers must be >= 1"):
        map_in_workers(operator.add, [(1, 2)], workers=0)
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
