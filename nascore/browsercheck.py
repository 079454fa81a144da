"""Open every page of the built book in a real browser and list what a reader would trip over.

``python -m nascore.browsercheck [_build/html]`` prints one line per defect and exits 1 if there
is any; ``tests/test_browser.py`` runs the same check in CI after ``make html``.

The book is served from ``127.0.0.1`` (``http.server`` in a thread) and every HTML page is opened
in headless Chromium — Debian's ``chromium`` and ``chromium-driver`` packages, driven by Selenium
with an explicit driver path (nothing is downloaded). Defect kinds (:data:`KINDS`):

* ``broken-image``: an ``<img>`` that did not load (``naturalWidth == 0``);
* ``broken-link``: a same-site link or a resource the page requested that answers HTTP 404
  (``#fragment`` parts are ignored; ``/favicon.ico`` is not counted);
* ``stderr``: an output block for stderr, an error or a traceback (``.output.stderr``,
  ``.output.error``, ``.output.traceback``), or the text ``Traceback (most recent call last)``;
* ``absolute-path``: ``/work/``, ``/tmp/``, ``/root/`` or ``/home/`` at the start of a path in
  the page's text (folded code cells included) or in a link target, or a ``file:`` link;
* ``verdict-offscreen``: at 1400 px, a verdict whose right edge is outside the window or outside
  a scrolling/clipping container (e.g. the theme's scrollable table wrapper), or whose text is
  clipped. A verdict is marked in the HTML by the CSS class ``verdict`` (on any element, e.g. a
  table cell; the scorecard generator's contract) or is a cell of a table column headed
  ``verdict`` or ``label`` (the name :mod:`nascore.report.verdict` gives the verdict column);
* ``raw-repr``: a Python object's repr printed as a cell's result, e.g. ``<matplotlib.legend.Legend
  at 0x7f…>`` or ``<Figure size 770x420 with 2 Axes>`` (a call whose return value was not swallowed);
* ``empty-page``: at 420 px (the smoke look at a phone width) the page shows no text.
"""
from __future__ import annotations

import functools
import http.server
import re
import shutil
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

KINDS = ("broken-image", "broken-link", "stderr", "absolute-path", "raw-repr", "verdict-offscreen", "empty-page")
WIDE, NARROW, HEIGHT = 1400, 420, 900
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--no-first-run", "--hide-scrollbars")
ABSOLUTE_PATH = re.compile(r"(?<![\w.\-~])/(?:work|tmp|root|home)/[^\s\"'<>)]*")
RAW_REPR = re.compile(r"<(?:[A-Za-z_][\w.]* (?:object )?at 0x[0-9a-fA-F]+|Figure size \d+x\d+ with \d+ Axes)>")
SKIP_DIRS = {"_static", "_sources", "_images", "_sphinx_design_static"}


@dataclass(frozen=True)
class Defect:
    page: str      # path relative to the served root, e.g. "book/02_evasion.html"
    kind: str      # one of KINDS
    detail: str    # a short snippet: the URL, the text around it, the offending cell

    def __str__(self) -> str:
        return f"{self.page}: {self.kind}: {self.detail}"


def find_browser() -> tuple[str, str] | str:
    """``(chromium, chromedriver)`` paths, or a sentence saying why there is no browser."""
    chromium = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"),
                                 "/usr/bin/chromium") if p and Path(p).exists()), None)
    driver = next((p for p in (shutil.which("chromedriver"), "/usr/bin/chromedriver",
                               "/usr/lib/chromium/chromedriver") if p and Path(p).exists()), None)
    if chromium is None or driver is None:
        return ("no headless browser: install Debian's chromium and chromium-driver "
                "(apt-get install -y chromium chromium-driver; .ci/run does this)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    return chromium, driver


def pages(root: Path) -> list[str]:
    """Every HTML page under ``root`` (theme assets excluded), as paths relative to it."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.html")
                  if not SKIP_DIRS & set(p.relative_to(root).parts[:-1]))


class _Handler(http.server.SimpleHTTPRequestHandler):
    missing: list[str]

    def log_message(self, *args) -> None:          # quiet: no request log on stderr
        pass

    def send_error(self, code, message=None, explain=None):
        if code == 404 and self.path.split("?")[0] != "/favicon.ico":
            self.missing.append(self.path)
        super().send_error(code, message, explain)


@contextmanager
def serve(root: Path) -> Iterator[tuple[str, list[str]]]:
    """Serve ``root`` on 127.0.0.1 (a free port) in a thread; yields ``(base_url, missing)`` where
    ``missing`` collects the paths answered with 404."""
    missing: list[str] = []
    handler = type("Handler", (_Handler,), {"missing": missing})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", missing
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def browser(chromium: str, chromedriver: str) -> Iterator[object]:
    """A Selenium Chrome driver on Debian's chromium, fresh profile, no network chatter."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="nascore-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={WIDE},{HEIGHT}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _viewport(driver, width: int) -> None:
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False})


# Runs in the page; returns plain data. Images are made eager and awaited (up to ~10 s).
_INSPECT_JS = r"""
const done = arguments[arguments.length - 1];
const imgs = [...document.images];
imgs.forEach(i => { if (i.loading === 'lazy') i.loading = 'eager'; });
const t0 = Date.now();
(function wait() {
  if (imgs.every(i => i.complete) || Date.now() - t0 > 10000) { done(inspect()); }
  else { setTimeout(wait, 100); }
})();
function snippet(el) { return (el.innerText || el.textContent || '').trim().replace(/\s+/g, ' ').slice(0, 80); }
function inspect() {
  const out = {images: [], stderr: [], text: '', hrefs: [], verdicts: [], chars: 0};
  out.images = imgs.filter(i => i.naturalWidth === 0).map(i => i.getAttribute('src') || '(no src)');
  document.querySelectorAll('.output.stderr, .output.error, .output.traceback').forEach(
      el => out.stderr.push(snippet(el)));
  const body = document.body.cloneNode(true);
  body.querySelectorAll('script, style, noscript, button').forEach(el => el.remove());
  out.text = body.textContent;
  out.chars = (document.body.innerText || '').trim().length;
  out.hrefs = [...document.querySelectorAll('a[href]')].map(a => [a.getAttribute('href'), a.href]);
  const marked = new Set(document.querySelectorAll('.verdict'));
  document.querySelectorAll('table').forEach(table => {
    const rows = [...table.rows];
    const head = rows.findIndex(r => [...r.cells].some(c => /^(verdict|label)\b/i.test(c.textContent.trim())));
    if (head < 0) return;
    const col = [...rows[head].cells].findIndex(c => /^(verdict|label)\b/i.test(c.textContent.trim()));
    rows.slice(head).forEach(r => { if (r.cells[col]) marked.add(r.cells[col]); });
  });
  const width = Math.min(window.innerWidth, document.documentElement.clientWidth || window.innerWidth);
  marked.forEach(el => {
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) return;           // folded away: not on screen
    let right = width, left = 0;
    for (let a = el.parentElement; a && a !== document.documentElement; a = a.parentElement) {
      const s = getComputedStyle(a);
      if (s.overflowX !== 'visible') {
        const ar = a.getBoundingClientRect();
        right = Math.min(right, ar.right); left = Math.max(left, ar.left);
      }
    }
    const s = getComputedStyle(el);
    const clipped = s.overflowX !== 'visible' && el.scrollWidth > el.clientWidth + 1;
    if (r.right > right + 0.5 || r.left < left - 0.5 || clipped) {
      out.verdicts.push({text: snippet(el), right: Math.round(r.right), limit: Math.round(right),
                         clipped: clipped});
    }
  });
  return out;
}
"""


def _status(url: str) -> int:
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def _around(text: str, match: re.Match, width: int = 40) -> str:
    s = text[max(0, match.start() - width):match.end() + width]
    return " ".join(s.split())


def check_site(root: str | Path, chromium: str, chromedriver: str,
               only: list[str] | None = None) -> list[Defect]:
    """Every defect on every page of the site in ``root`` (or on the pages ``only``)."""
    root = Path(root)
    todo = only if only is not None else pages(root)
    defects: list[Defect] = []
    links: dict[str, str] = {}                      # same-site URL -> first page linking it
    with serve(root) as (base, missing), browser(chromium, chromedriver) as driver:
        driver.set_script_timeout(30)
        for page in todo:
            for width in (WIDE, NARROW):
                before = len(missing)
                _viewport(driver, width)
                driver.get(base + page)
                landed = driver.current_url.split("#")[0]
                if landed != base + page and landed.startswith(base) \
                        and landed[len(base):] in todo:
                    break                           # a redirect (index.html): checked there
                info = driver.execute_async_script(_INSPECT_JS)
                found: list[tuple[str, str]] = []
                found += [("broken-image", src) for src in info["images"]]
                found += [("broken-link", path) for path in missing[before:]]
                if width == NARROW:
                    if info["chars"] == 0:
                        found.append(("empty-page", f"no visible text at {NARROW} px"))
                    defects += [Defect(page, k, f"{d} (at {NARROW} px)") for k, d in found
                                if Defect(page, k, d) not in defects]
                    continue
                found += [("stderr", s or "(empty block)") for s in info["stderr"]]
                tb = "Traceback (most recent call last)"
                if tb in info["text"] and not any(tb in s for s in info["stderr"]):
                    found.append(("stderr", tb))
                found += [("absolute-path", _around(info["text"], m))
                          for m in ABSOLUTE_PATH.finditer(info["text"])]
                found += [("raw-repr", _around(info["text"], m)) for m in RAW_REPR.finditer(info["text"])]
                for raw, url in info["hrefs"]:
                    if raw.startswith("file:") or ABSOLUTE_PATH.match(raw):
                        found.append(("absolute-path", f"link to {raw}"))
                    elif url.startswith(base):
                        links.setdefault(url.split("#")[0], page)
                for v in info["verdicts"]:
                    why = "text clipped" if v["clipped"] else \
                        f"right edge {v['right']} px > visible {v['limit']} px"
                    found.append(("verdict-offscreen", f"'{v['text']}' ({why} at {WIDE} px)"))
                defects += [Defect(page, k, d) for k, d in found]
        for url, page in sorted(links.items()):
            if _status(url) == 404:
                defects.append(Defect(page, "broken-link", url[len(base) - 1:]))
    return list(dict.fromkeys(defects))


def report(defects: list[Defect]) -> str:
    """Every defect on its own line, grouped by page."""
    if not defects:
        return "no defects"
    lines = [f"{len(defects)} defect(s) on {len({d.page for d in defects})} page(s):"]
    lines += [f"  {d}" for d in sorted(defects, key=lambda d: (d.page, KINDS.index(d.kind)))]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    root = Path(argv[0] if argv else "_build/html")
    if not root.is_dir():
        print(f"{root} does not exist: run 'make html' first")
        return 2
    found = find_browser()
    if isinstance(found, str):
        print(found)
        return 2
    defects = check_site(root, *found)
    print(report(defects))
    return 1 if defects else 0


if __name__ == "__main__":
    sys.exit(main())
