"""Atomic writes: an interrupted write leaves the previous file intact and no temp file behind."""
import pytest

from nascore.io import atomic_write, atomic_write_json, atomic_write_text


def test_failed_write_keeps_previous_version(tmp_path):
    path = tmp_path / "result.json"
    atomic_write_json(path, {"epoch": 1})
    before = path.read_text()

    def crash(f):
        f.write(b'{"epoch": 2, "half')
        raise KeyboardInterrupt  # e.g. the user stops the run mid-write

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, crash)
    assert path.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]


def test_write_replaces_whole_file(tmp_path):
    path = tmp_path / "a" / "b.txt"
    atomic_write_text(path, "x" * 1000)
    atomic_write_text(path, "short")
    assert path.read_text() == "short"
