"""Progress lines from the package to the terminal of whoever runs the book — never onto the page.

The executed pages must stay free of logs, so the notebooks call the package with ``progress=False``
and a long chapter would run silently for an hour. :func:`note` is the side channel: it appends one
line to the file named by the environment variable :data:`ENV`, which ``python -m nascore.book run``
sets before it starts the kernel (worker processes inherit it) and follows with :class:`Follow`,
printing each line to its own stderr. Without the variable :func:`note` does nothing, so library
users and the tests see no change.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

ENV = "NASCORE_PROGRESS"


def note(message: str) -> None:
    """Append ``HH:MM:SS message`` to the progress file, if one is set. One ``write`` of one line to a
    file opened for appending: lines from concurrent worker processes stay whole."""
    path = os.environ.get(ENV)
    if not path:
        return
    line = f"{time.strftime('%H:%M:%S')} {' '.join(str(message).split())}\n"
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line)
    except OSError:  # a progress line is never worth failing a computation for
        pass


def duration(seconds: float) -> str:
    """``"45 s"``, ``"12 min"``, ``"1 h 05 min"``."""
    s = max(0, round(seconds))
    if s < 90:
        return f"{s} s"
    m = round(s / 60)
    return f"{m} min" if m < 60 else f"{m // 60} h {m % 60:02d} min"


def eta(done: int, total: int, elapsed: float) -> str:
    """``"3/10 done in 2 min, about 5 min left"``: the time left extrapolated from the mean so far."""
    if done <= 0 or total <= 0:
        return f"0/{total} done"
    text = f"{done}/{total} done in {duration(elapsed)}"
    return text if done >= total else f"{text}, about {duration(elapsed / done * (total - done))} left"


class Follow:
    """Context manager: a fresh progress file, published in :data:`ENV` while the block runs, whose new
    lines a daemon thread prints to ``stream`` with ``prefix``; the variable is restored on exit and
    the last lines are printed before it returns."""

    def __init__(self, path: Path, prefix: str = "", stream: TextIO | None = None, interval: float = 0.5):
        self.path, self.prefix, self.stream, self.interval = Path(path), prefix, stream, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._previous: str | None = None
        self._offset = 0

    def _print_new(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except OSError:
            return
        end = chunk.rfind(b"\n") + 1  # only whole lines; a line being written waits for the next pass
        if end:
            self._offset += end
            out = self.stream or sys.stderr
            for line in chunk[:end].decode("utf-8", "replace").splitlines():
                print(f"{self.prefix}{line}", file=out, flush=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._print_new()

    def __enter__(self) -> "Follow":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("", encoding="utf-8")
        self._previous = os.environ.get(ENV)
        os.environ[ENV] = str(self.path)
        self._thread = threading.Thread(target=self._loop, name="nascore-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._print_new()
        if self._previous is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = self._previous
        self.path.unlink(missing_ok=True)
