"""`make book` killed mid-chapter (SIGKILL to its process group) and rerun: the committed notebook
is left untouched, the kernel does not outlive the kill, and the rerun resumes training from the
last finished epoch instead of starting again (issue 18)."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell, new_notebook

from nascore import book

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "05_demo"
EPOCHS = 6  # ~1 s each at the smoke scale on one core: the kill lands with several epochs to go

pytestmark = pytest.mark.skipif(not hasattr(os, "killpg"), reason="needs POSIX process groups")

_PARAMETERS = textwrap.dedent("""\
    profile = "smoke"
    marker = ""  # file the kernel writes its pid and checkpoint path to
    cache = ""  # NASCORE_CACHE for this run
    tests_dir = ""  # for the synthetic data helper (tests only)
    epochs = 2
""")

_SETUP = textwrap.dedent("""\
    import json, os, sys
    from pathlib import Path
    os.environ["NASCORE_CACHE"] = cache
    sys.path.insert(0, tests_dir)
    from conftest import make_synthetic_cifar
    from nascore import zoo
    from nascore.train import load_state

    data = make_synthetic_cifar()
    config, _ = zoo.resolve("darts", profile, 0, data, device="cpu", epochs=epochs)
    state = zoo.paths(config)["state"]
    done = len(load_state(state)["history"]) if state.is_file() else 0
    Path(marker).write_text(json.dumps({"pid": os.getpid(), "state": str(state)}))
    print(f"{done} epoch(s) checkpointed before this run")
""")

_TRAIN = textwrap.dedent("""\
    tm = zoo.get("darts", profile, data=data, progress=False, device="cpu", epochs=epochs)
    print("trained epochs", [h["epoch"] for h in tm.record["history"]])
""")

_RUN = "from nascore.book import run; import sys, json; run({chapter!r}, 'smoke', json.loads(sys.argv[1]), " \
       "notebooks=__import__('pathlib').Path({nbs!r}), book=__import__('pathlib').Path({out!r}))"


def _write_chapter(path: Path) -> None:
    params = new_code_cell(_PARAMETERS)
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[params, new_code_cell(_SETUP), new_code_cell(_TRAIN)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for a reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _group_empty(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def _wait_for(condition, seconds: float, what: str, proc=None, log=None) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"book run exited (rc {proc.returncode}) before {what}:\n{log.read_text()[-3000:]}")
        assert time.monotonic() < deadline, f"no {what} after {seconds:.0f} s"
        time.sleep(0.05)


def test_killed_chapter_keeps_committed_notebook_and_rerun_resumes(tmp_path, monkeypatch):
    nbs, out = tmp_path / "notebooks", tmp_path / "book"
    nbs.mkdir(), out.mkdir()
    _write_chapter(nbs / f"{CHAPTER}.ipynb")
    committed = out / f"{CHAPTER}.ipynb"
    committed_bytes = b'{"committed": "the page of the last good build"}\n'
    committed.write_bytes(committed_bytes)
    running = out / f".{CHAPTER}.running.ipynb"
    marker = tmp_path / "kernel.json"
    params = {"marker": str(marker), "cache": str(tmp_path / "cache"), "tests_dir": str(ROOT / "tests"),
              "epochs": EPOCHS}

    # 1. `make book` in its own process group, killed as a whole once the first epoch is checkpointed.
    log = tmp_path / "run.log"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    with open(log, "wb") as f:
        proc = subprocess.Popen([sys.executable, "-c", _RUN.format(chapter=CHAPTER, nbs=str(nbs), out=str(out)),
                                 json.dumps(params)], cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True)
    kernel_pid = None
    try:
        _wait_for(marker.exists, 120, "kernel start marker", proc, log)
        time.sleep(0.05)  # the marker is written in one small write; let it land
        info = json.loads(marker.read_text())
        kernel_pid, state = info["pid"], Path(info["state"])
        sidecar = state.with_suffix(".json")
        _wait_for(state.exists, 120, "first training checkpoint", proc, log)
        time.sleep(0.3)  # into the next epoch: mid-chapter, mid-epoch
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
    assert proc.returncode == -signal.SIGKILL

    # 2. Nothing of the run is left running. papermill starts the kernel in a session of its own, so the
    # group kill does not reach it; ipykernel's parent poller must end it (it checks once a second).
    assert _group_empty(proc.pid)
    deadline = time.monotonic() + 15
    while _alive(kernel_pid):
        assert time.monotonic() < deadline, f"kernel {kernel_pid} still running 15 s after its parent was killed"
        time.sleep(0.1)

    # 3. The committed page is untouched; the partial notebook is only ever the hidden running file.
    assert committed.read_bytes() == committed_bytes
    assert not (out / "_failed").exists() and not (out / "_status").exists()
    assert not sidecar.exists(), "training finished before the kill: the test did not interrupt it"
    checkpointed = torch.load(state, weights_only=True)["history"]
    done = len(checkpointed)
    assert 1 <= done < EPOCHS

    # 4. Rerun to completion. The status record's data label would load CIFAR-10 in this process; the
    # chapter's data here is the synthetic test set, so label it as such.
    monkeypatch.setattr(book, "_data_source", lambda: "synthetic (tests only)")
    result = book.run(CHAPTER, "smoke", params, notebooks=nbs, book=out)
    assert result == committed and not running.exists()
    assert not (out / "_failed").exists()
    nb = nbformat.read(committed, as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert f"{done} epoch(s) checkpointed before this run" in text
    assert f"trained epochs {list(range(1, EPOCHS + 1))}" in text
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    status = json.loads((out / "_status" / f"{CHAPTER}.json").read_text())
    assert (status["chapter"], status["profile"], status["parameters"]["epochs"]) == (CHAPTER, "smoke", EPOCHS)

    # Resumed, not retrained: the finished model's first epochs are the killed run's rows, wall times
    # included (a retrained epoch would never reproduce them), and the training state is gone.
    record = json.loads(sidecar.read_text())
    assert [h["epoch"] for h in record["history"]] == list(range(1, EPOCHS + 1))
    assert record["history"][:done] == checkpointed
    assert not state.exists()
