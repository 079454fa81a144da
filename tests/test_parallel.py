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
