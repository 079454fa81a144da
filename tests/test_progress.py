"""Progress lines reach the book runner's terminal and never the executed page (nascore.progress)."""
from __future__ import annotations

import io
import os

import nbformat
import pytest

from nascore import book, progress
from nascore.parallel import map_in_workers


def _square(x):
    return x * x


def test_note_is_silent_without_a_listener(tmp_path, monkeypatch):
    monkeypatch.delenv(progress.ENV, raising=False)
    progress.note("nobody hears this")  # no file, no error
    assert list(tmp_path.iterdir()) == []


def test_eta_extrapolates_the_mean_job_time():
    assert progress.eta(0, 4, 10.0) == "0/4 done"
    assert progress.eta(1, 4, 60.0) == "1/4 done in 60 s, about 3 min left"
    assert progress.eta(4, 4, 3725.0) == "4/4 done in 1 h 02 min"
    assert progress.duration(89.4) == "89 s" and progress.duration(5400) == "1 h 30 min"


def test_follow_prints_every_line_once_and_restores_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(progress.ENV, "/elsewhere")
    out = io.StringIO()
    with progress.Follow(tmp_path / "p.log", prefix="[ch] ", stream=out, interval=0.01):
        assert os.environ[progress.ENV] == str(tmp_path / "p.log")
        for i in range(3):
            progress.note(f"step {i}\nwith a newline inside")  # one message = one line
    lines = out.getvalue().splitlines()
    assert [line.split(" ", 2)[2] for line in lines] == [f"step {i} with a newline inside" for i in range(3)]
    assert all(line.startswith("[ch] ") for line in lines)
    assert os.environ[progress.ENV] == "/elsewhere" and not (tmp_path / "p.log").exists()


@pytest.mark.parametrize("workers", [1, 2])
def test_map_in_workers_notes_every_finished_job(tmp_path, workers):
    out = io.StringIO()
    with progress.Follow(tmp_path / "p.log", stream=out, interval=0.01):
        assert map_in_workers(_square, [(i,) for i in range(3)], workers=workers, desc="squaring") == [0, 1, 4]
    text = out.getvalue()
    assert "squaring: 3 job(s) " + ("in this process" if workers == 1 else "on 2 workers") in text
    assert text.count("squaring: ") == 4 and "squaring: 3/3 done" in text and "about" in text  # 1/3, 2/3: time left


def test_book_run_shows_progress_on_the_terminal_not_on_the_page(tmp_path, capfd):
    nbs, out = tmp_path / "notebooks", tmp_path / "book"
    nbs.mkdir(), out.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('profile = "smoke"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("from nascore.progress import note\nnote('halfway through')\nx = 1")]
    nbformat.write(nb, nbs / "01_demo.ipynb")
    executed = book.run("01_demo", "smoke", notebooks=nbs, book=out)
    err = capfd.readouterr().err
    assert "[01_demo] " in err and "halfway through" in err
    outputs = [o for c in nbformat.read(executed, as_version=4).cells for o in c.get("outputs", [])]
    assert not any("halfway" in str(o) for o in outputs)  # the line went to the terminal only


def test_zoo_trainings_announce_start_and_end(tmp_path, monkeypatch):
    """Both train-or-load paths of the zoo (a registry model and a generic cached kind) write their lines."""
    import torch

    from nascore import zoo

    monkeypatch.setenv("NASCORE_CACHE", str(tmp_path / "cache"))

    def fit(model, _checkpoint):
        return [{"epoch": 1}], {"loss": 0.0}

    out = io.StringIO()
    with progress.Follow(tmp_path / "p.log", stream=out, interval=0.01):
        zoo.cached("demo-kind", {"a": 1}, lambda: torch.nn.Linear(2, 2), fit, device="cpu")
    text = out.getvalue()
    assert "training demo-kind (key " in text and "trained demo-kind in " in text
