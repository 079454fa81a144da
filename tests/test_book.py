"""The book pipeline: a failing chapter stops with its error and keeps earlier results."""
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from nascore import book


def _notebook(path, source):
    params = new_code_cell("profile = 'smoke'")
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[params, new_code_cell(source)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_failing_chapter_keeps_the_executed_one(tmp_path):
    nbs, out = tmp_path / "notebooks", tmp_path / "book"
    nbs.mkdir(), out.mkdir()
    _notebook(nbs / "01_demo.ipynb", "print('ok', profile)")
    good = book.run("01_demo", "smoke", notebooks=nbs, book=out)
    text = good.read_text()
    assert "ok smoke" in text and "remove-cell" in text  # injected parameters hidden
    assert (out / "_status" / "01_demo.json").is_file()
    _notebook(nbs / "01_demo.ipynb", "raise ValueError('boom')")
    with pytest.raises(Exception, match="boom"):
        book.run("01_demo", "smoke", notebooks=nbs, book=out)
    assert good.read_text() == text
    assert "boom" in (out / "_failed" / "01_demo.ipynb").read_text()


def test_bad_chapter_or_profile_is_rejected_before_running(tmp_path):
    with pytest.raises(SystemExit, match="valid: 01_model_zoo"):
        book.run("99_nope", "smoke")
    with pytest.raises(SystemExit, match="unknown profile 'fast'"):
        book.run("01_model_zoo", "fast")


def test_every_notebook_has_one_parameters_cell_and_python3_kernel():
    for path in sorted(book.NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, path
        assert "profile" in tagged[0].source
        assert nb.metadata["kernelspec"]["name"] == "python3"


def test_invalid_notebook_parameter_fails_in_the_first_cell(tmp_path):
    """A bad parameter must stop the chapter right after the parameters, with a message that
    names the bad value and the valid choices."""
    import papermill as pm

    out = tmp_path / "out.ipynb"
    with pytest.raises(pm.PapermillExecutionError, match="unknown profile 'fastest'; valid: smoke, quick, paper"):
        pm.execute_notebook(str(book.NOTEBOOKS / "01_model_zoo.ipynb"), str(out), parameters={"profile": "fastest"},
                            kernel_name="python3", progress_bar=False, cwd=str(book.NOTEBOOKS))
    nb = nbformat.read(out, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    failed = [i for i, c in enumerate(code) if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    assert failed == [2]  # parameters, injected parameters, then the validation cell
