"""The rendered book in a real browser (headless Chromium): every page of ``_build/html``.

``make test`` runs this file after ``make html``. It is skipped, with the reason shown in the
summary, where no browser exists (Debian's ``chromium`` + ``chromium-driver``; ``.ci/run``
installs them) or the book has not been built. What counts as a defect, and how a verdict is
marked in the HTML (CSS class ``verdict``, or a column headed "verdict"/"label"), is
documented in :mod:`nascore.browsercheck`.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from nascore import browsercheck

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "html"

_found = browsercheck.find_browser()
needs_browser = pytest.mark.skipif(isinstance(_found, str), reason=str(_found))


@needs_browser
def test_every_page_of_the_book_in_a_real_browser():
    if not (SITE / "book").is_dir():
        pytest.skip(f"{SITE.relative_to(ROOT)}/book does not exist: run 'make html' first")
    assert len(browsercheck.pages(SITE)) >= 8
    defects = browsercheck.check_site(SITE, *_found)
    if defects:
        pytest.fail(browsercheck.report(defects), pytrace=False)


# ----------------------------------------------------------------------------- planted defects
WIDE_COLUMNS = 30
PLANTED = f"""
<section id="planted-defects">
<p>A valid, lazily loaded image and a verdict that fits must not be reported:</p>
<img loading="lazy" alt="fine" src="data:image/gif;base64,R0lGODlhAQABAIAAAP///wAAACwAAAAAAQABAAACAkQBADs=">
<table><thead><tr><th>claim</th><th>verdict</th></tr></thead>
<tbody><tr><td>a claim</td><td class="verdict">PLANTED-FITTING-VERDICT</td></tr></tbody></table>
<details><summary>folded</summary><table><tr><td class="verdict">PLANTED-FOLDED-VERDICT</td></tr></table></details>

<img alt="broken" src="planted-missing.png">
<a href="planted-missing-page.html#top">a broken internal link</a>
<div class="cell_output docutils container"><div class="output stderr highlight-myst-ansi notranslate">
<div class="highlight"><pre><span></span>PLANTED-STDERR UserWarning: something went to stderr</pre></div></div></div>
<pre>Traceback (most recent call last):
  File "planted.py", line 1, in &lt;module&gt;</pre>
<p>results saved in /work/planted/results</p>
<div class="cell_output docutils container"><div class="output text_plain highlight-myst-ansi notranslate">
<div class="highlight"><pre><span></span>&lt;matplotlib.legend.Legend at 0x7f9e74e03550&gt;</pre></div></div></div>
<div class="pst-scrollable-table-container"><table class="table"><thead><tr>
{''.join(f'<th>column_{i}</th>' for i in range(WIDE_COLUMNS))}<th>verdict</th></tr></thead>
<tbody><tr>{''.join(f'<td style="white-space:nowrap">a_long_value_{i}</td>' for i in range(WIDE_COLUMNS))}
<td class="verdict">PLANTED-WIDE-VERDICT</td></tr></tbody></table></div>
<table><thead><tr><th>claim</th><th>label</th></tr></thead>
<tbody><tr><td>x</td><td style="max-width:30px;overflow:hidden;white-space:nowrap">PLANTED-CLIPPED-VERDICT inconclusive at this scale</td></tr></tbody></table>
<div class="pst-scrollable-table-container"><table class="table"><thead><tr>
{''.join(f'<th>column_{i}</th>' for i in range(WIDE_COLUMNS))}<th>label (before multiplicity correction)</th></tr></thead>
<tbody><tr>{''.join(f'<td style="white-space:nowrap">a_long_value_{i}</td>' for i in range(WIDE_COLUMNS))}
<td>PLANTED-CHAPTER-TABLE-VERDICT</td></tr></tbody></table></div>
</section>
"""


def _plant(html: str) -> str:
    """Insert the planted block at the start of the page's article (or of the body)."""
    m = re.search(r"<article[^>]*>", html) or re.search(r"<body[^>]*>", html)
    assert m, "no <article> or <body> to plant into"
    return html[:m.end()] + PLANTED + html[m.end():]


@pytest.fixture
def planted_site(tmp_path):
    """A copy of the built book (or, without one, a one-page site) with ``book/planted.html``:
    a copy of a real page with every defect kind planted in it. Returns ``(root, original)``."""
    root = tmp_path / "site"
    original = "book/intro.html"
    if (SITE / original).is_file():
        shutil.copytree(SITE, root)
    else:
        (root / "book").mkdir(parents=True)
        (root / original).write_text("<!doctype html><html><head><title>clean</title></head><body>"
                                     "<article class='bd-article'><p>A clean page.</p></article>"
                                     "</body></html>")
    page = (root / original).read_text()
    (root / "book" / "planted.html").write_text(_plant(page))
    return root, original


@needs_browser
def test_checker_reports_each_planted_defect(planted_site):
    root, original = planted_site
    defects = browsercheck.check_site(root, *_found, only=[original, "book/planted.html"])
    before = {(d.kind, d.detail) for d in defects if d.page == original}
    planted = [d for d in defects if d.page == "book/planted.html"]
    new = [d for d in planted if (d.kind, d.detail) not in before]
    message = browsercheck.report(defects)

    def found(kind: str, text: str) -> bool:
        return any(d.kind == kind and text in d.detail for d in new)

    assert found("broken-image", "planted-missing.png"), message
    assert found("broken-link", "planted-missing-page.html"), message
    assert found("stderr", "PLANTED-STDERR"), message
    assert found("stderr", "Traceback (most recent call last)"), message
    assert found("absolute-path", "/work/planted/results"), message
    assert found("raw-repr", "matplotlib.legend.Legend at 0x7f9e74e03550"), message
    assert found("verdict-offscreen", "PLANTED-WIDE-VERDICT"), message
    assert found("verdict-offscreen", "PLANTED-CLIPPED-VERDICT"), message
    assert found("verdict-offscreen", "PLANTED-CHAPTER-TABLE-VERDICT"), message  # header "label (...)"
    for fine in ("PLANTED-FITTING-VERDICT", "PLANTED-FOLDED-VERDICT", "data:image"):
        assert not any(fine in d.detail for d in planted), message
    # every planted defect is reported once, with the page and a snippet
    assert {d.kind for d in new} == {"broken-image", "broken-link", "stderr", "absolute-path", "raw-repr",
                                     "verdict-offscreen"}, message
    assert all(str(d).startswith("book/planted.html: ") for d in new)


def test_report_lists_every_defect_with_page_and_snippet():
    defects = [browsercheck.Defect("book/a.html", "stderr", "UserWarning: x"),
               browsercheck.Defect("book/b.html", "absolute-path", "saved in /work/x")]
    text = browsercheck.report(defects)
    assert "2 defect(s) on 2 page(s)" in text
    assert "book/a.html: stderr: UserWarning: x" in text
    assert "book/b.html: absolute-path: saved in /work/x" in text
    assert browsercheck.report([]) == "no defects"


def test_absolute_path_pattern():
    pat = browsercheck.ABSOLUTE_PATH
    for text in ("saved in /work/main/results", "(/tmp/x.png)", "file:///root/a", "at /home/u/f.py:3"):
        assert pat.search(text), text
    for text in ("https://github.com/home/x", "see a/tmp/b", "results/quick/02", "~/work/x", "/workshop/"):
        assert not pat.search(text), text


def test_raw_repr_pattern():
    hit = browsercheck.RAW_REPR.search
    assert hit("<matplotlib.legend.Legend at 0x7f9e74e03550>") and hit("<Figure size 770x420 with 2 Axes>")
    assert hit("<__main__.Thing object at 0x10>")
    assert not hit("<b>bold</b>") and not hit("a < b at 0x") and not hit("p < 0.05")
