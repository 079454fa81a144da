"""The scorecard and the per-chapter verdict blocks: every claim listed, no 'nan', Holm applied,
and the MyST renders under ``jupyter-book build -W``."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from nbformat.v4 import new_markdown_cell, new_notebook

from nascore import book
from nascore.report import (NOT_YET_MEASURED, all_claims, chapter_table, compare_families, save_results,
                            verdict_table)

REPO = Path(__file__).resolve().parents[1]


def _zoo(column, nas, manual, seed=0):
    rng = np.random.default_rng(seed)
    rows = [{"model": f"n{i}", "family": "nas", column: v} for i, v in enumerate(nas)]
    rows += [{"model": f"m{i}", "family": "manual", column: v} for i, v in enumerate(manual)]
    df = pd.DataFrame(rows)
    return df.assign(params=rng.uniform(1e5, 1e7, len(df)), flops=rng.uniform(1e6, 1e8, len(df)), clean_acc=rng.uniform(50, 70, len(df)),
                     train_loss=rng.uniform(0.5, 1.5, len(df)))


def _results(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    res, out = tmp_path / "results", tmp_path / "book"
    chapters = {
        "02_evasion": [compare_families(_zoo("pgd_asr", rng.uniform(20, 40, 5), rng.uniform(0, 20, 5)), "pgd_asr",
                                        n_boot=500, profile="quick"),
                       compare_families(_zoo("pgd_asr_argmax", rng.uniform(0, 40, 5), rng.uniform(0, 40, 5)),
                                        "pgd_asr_argmax", n_boot=500),
                       compare_families(_zoo("linf_auc", [0.0] * 5, [0.0] * 5), "linf_auc", n_boot=500)],
        "03_smoothness": [compare_families(_zoo("gv_init", 10 ** rng.normal(2, .3, 5), 10 ** rng.normal(3, .3, 5)),
                                           "log10_gv_init", n_boot=500)],
    }
    for chapter, rows in chapters.items():
        save_results(verdict_table(rows), res / "quick" / chapter / "verdicts", {"seed": 0})
    stale = res / "quick" / "01_model_zoo"
    stale.mkdir(parents=True)
    pd.DataFrame({"claim": ["zoo.early_convergence"], "label": ["reproduced"]}).to_csv(stale / "verdicts.csv", index=False)
    (out / "_status").mkdir(parents=True)
    for chapter in ("01_model_zoo", *chapters):
        (out / "_status" / f"{chapter}.json").write_text(json.dumps({"profile": "quick"}))
    return res, out


def test_scorecard_lists_every_claim_and_never_shows_nan(tmp_path):
    res, out = _results(tmp_path)
    text = book.write_scorecard(results=res, book=out).read_text()
    for c in all_claims():
        assert f"`{c.id}`" in text, c.id
    assert "nan" not in text.lower().replace("nans", "")
    assert text.count(NOT_YET_MEASURED) >= len(all_claims()) - 3
    assert "Holm p = " in text and 'class="verdict verdict-reproduced"' in text
    assert '"verdict verdict-not-measurable-at-this-scale"' in text
    assert "must be re-run: 01_model_zoo" in text and "invalid" not in text
    assert ":::{dropdown} Details and 1 exploratory statistic" in text       # pgd_asr_argmax folded
    assert "this project's extension" in text and "paper claim" in text
    # the tally counts every claim once
    tally = text.split("\n")[4]
    counts = [int(tok.split()[-1]) for tok in tally.split(" — ")[0].split(" · ")]
    assert sum(counts) == len(all_claims())
    # no line wider than a paragraph in a table: tables have at most four columns
    assert all(line.count("|") <= 5 for line in text.splitlines())


def test_chapter_blocks_show_the_same_final_labels_as_the_scorecard(tmp_path):
    res, out = _results(tmp_path)
    card = book.write_scorecard(results=res, book=out).read_text()
    chapter = (out / "_verdicts" / "02_evasion.md").read_text()
    assert chapter.startswith("Final verdicts (profile `quick`), after Holm correction over the scorecard's 2")
    block = chapter[chapter.index("**`evasion.pgd_asr`**"):chapter.index(":::{dropdown}")]
    assert block in card
    assert "re-run" in (out / "_verdicts" / "01_model_zoo.md").read_text()
    assert not (out / "_verdicts" / "04_mitigations.md").exists()


def test_two_primary_rows_for_one_claim_are_shown_invalid_not_silently_picked(tmp_path):
    res, out = _results(tmp_path)
    row = compare_families(_zoo("nes_asr", [30, 31, 32.0], [1, 2, 3.0]), "nes_asr", n_boot=500)
    save_results(verdict_table([row, row]), res / "quick" / "05_demo" / "verdicts", {"seed": 0})
    (out / "_status" / "05_demo.json").write_text(json.dumps({"profile": "quick"}))
    text = book.write_scorecard(results=res, book=out).read_text()
    assert "05\\_demo reports 2 primary rows for evasion.nes\\_asr" in text
    block = text[text.index("**`evasion.nes_asr`**"):text.index("**`smoothness.grad_var`**")]
    assert NOT_YET_MEASURED in block and "invalid: one of several primary rows" in block
    assert "invalid" in (out / "_verdicts" / "05_demo.md").read_text()


def test_chapter_table_labels_the_raw_verdict():
    rows = [compare_families(_zoo("pgd_asr", [30, 31, 32.0], [1, 2, 3.0]), "pgd_asr", n_boot=500)]
    t = chapter_table(verdict_table(rows))
    assert list(t.columns)[-1] == "label (before multiplicity correction)"
    assert t.loc[0, "estimate [95 % CI]"].endswith("percentage points") and t.index.equals(pd.RangeIndex(1))
    assert t.loc[0, "statistic"] == "pgd_asr"  # one row: nothing to tell apart, no setting appended


def test_chapter_table_names_the_setting_only_where_rows_would_look_alike():
    rows = [compare_families(_zoo("pgd_asr", [30, 31, 32.0], [1, 2, 3.0]), "pgd_asr", n_boot=200, setting=s)
            for s in ("eps 2/255", "eps 8/255")]
    rows.append(compare_families(_zoo("nes_asr", [30, 31, 32.0], [1, 2, 3.0]), "nes_asr", n_boot=200, setting="eps 8/255"))
    t = chapter_table(verdict_table(rows))
    assert t.statistic.tolist() == ["pgd_asr, eps 2/255", "pgd_asr, eps 8/255", "nes_asr"]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) is None,
                    reason="jupyter-book is not installed in this environment")
def test_scorecard_and_chapter_include_render_with_warnings_as_errors(tmp_path):
    """A tiny book with the repository's parse settings: the scorecard page, and a notebook page that
    includes its verdict block with ``{include}``. ``-W`` turns any MyST problem into a failure."""
    res, out = _results(tmp_path)
    book.write_scorecard(results=res, book=out)
    site = tmp_path / "site"
    (site / "book").mkdir(parents=True)
    shutil.copytree(out / "_verdicts", site / "book" / "_verdicts")
    shutil.copy(out / "scorecard.md", site / "book" / "scorecard.md")
    (site / "book" / "methods.md").write_text("# Methods\n\nRules.\n")
    nb = new_notebook(cells=[new_markdown_cell("# Evasion\n\nRaw tables would be here.\n\n"
                                               "```{include} _verdicts/02_evasion.md\n```\n")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, site / "book" / "02_evasion.ipynb")
    shutil.copy(REPO / "_config.yml", site / "_config.yml")
    (site / "_toc.yml").write_text("format: jb-book\nroot: book/methods\nchapters:\n  - file: book/02_evasion\n"
                                   "  - file: book/scorecard\n")
    exe = Path(sys.executable).parent / "jupyter-book"
    run = subprocess.run([str(exe), "build", str(site), "-W", "-n", "--keep-going", "--builder", "html"],
                         capture_output=True, text=True, timeout=280)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    html = (site / "_build" / "html" / "book" / "02_evasion.html").read_text()
    assert "evasion.pgd_asr" in html and 'class="verdict verdict-reproduced"' in html
    card = (site / "_build" / "html" / "book" / "scorecard.html").read_text()
    assert 'class="verdict verdict-not-yet-measured"' in card and "<details" in card   # the fold


def test_closing_summary_lists_every_claim_once_with_its_final_verdict(tmp_path):
    res, out = _results(tmp_path)
    card = book.write_scorecard(results=res, book=out).read_text()
    summary = (out / "_verdicts" / "_summary.md").read_text()
    rows = [line for line in summary.splitlines() if line.startswith("| <span")]
    assert len(rows) == len(all_claims())
    # the same tally as the scorecard, split by paper: the per-paper counts add up to the scorecard's
    card_counts = [int(tok.split()[-1]) for tok in card.split("\n")[4].split(" — ")[0].split(" · ")]
    paper_counts = [int(tok.split()[-1]) for line in summary.splitlines() if line.startswith("**")
                    for tok in line.split(": ", 1)[1].split(" · ")]
    assert sum(paper_counts) == sum(card_counts) == len(all_claims())
    evasion = next(line for line in rows if "02_evasion" in line)
    assert "verdict" in evasion and "nan" not in summary.lower()


def test_a_not_measurable_headline_names_its_reason():
    from nascore.report.scorecard import _unmeasurable_why

    assert _unmeasurable_why({"text": "14 of 19 values sit at the statistic's floor (0.000): no difference"}) == \
        "floor/ceiling"
    assert _unmeasurable_why({"text": "With 2 vs 2 units the smallest p this exact test can give is 0.33"}) == \
        "too few units for the test to decide"
    assert _unmeasurable_why({"text": "Gate not met: the backdoor is learned — 3 of 17 models pass"}) == \
        "measurability gate not met"
