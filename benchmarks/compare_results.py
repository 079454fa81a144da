"""Are two runs of the book's chapters the same? Compare every CSV of two results folders.

    python benchmarks/compare_results.py BEFORE AFTER      # e.g. a copy of results/smoke, then results/smoke

For each CSV present in either folder: ``identical`` (same bytes), or the columns whose values differ.
Columns that hold measured wall-clock time (names with ``seconds``, ``_s``, ``_min``, ``ms``, ``latency``) and
the tables in :data:`TIMED_TABLES` differ from run to run by nature and are reported as ``timing
only``; so are the rows of a verdict table whose statistic is built on measured time
(:data:`TIMED_STATISTICS`). Measured on two runs of the unchanged code: 44 of 53 smoke CSVs
byte-identical, the other 9 differ in timing only.
Anything else differing is a changed result: the exit status is 1 then (0 otherwise).

A refactor that must not change numbers (issue "one attack contract") is checked by running the
chapters at smoke before and after it and comparing the two folders with this script.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd

TIMING = re.compile(r"seconds|_s$|_min$|(^|_)ms($|_)|latency")
#: tables that are measured wall-clock time throughout (chapter 9's batch-1 latencies and their ratios)
TIMED_TABLES = ("latency.csv", "latency_summary.csv")
#: verdict rows whose statistic is a measured wall-clock time (chapter 9's CPU latency ratio)
TIMED_STATISTICS = ("sloth_cpu_latency_ratio",)


def _frame(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, dtype=str)


def compare(before: Path, after: Path) -> list[tuple[str, str, str]]:
    """Rows ``(csv, status, detail)`` for every CSV under either folder."""
    names = sorted({p.relative_to(before).as_posix() for p in before.rglob("*.csv")}
                   | {p.relative_to(after).as_posix() for p in after.rglob("*.csv")})
    rows = []
    for name in names:
        a, b = before / name, after / name
        if not a.exists() or not b.exists():
            rows.append((name, "CHANGED", "only in " + ("after" if not a.exists() else "before")))
            continue
        if a.read_bytes() == b.read_bytes():
            rows.append((name, "identical", ""))
            continue
        fa, fb = _frame(a), _frame(b)
        if Path(name).name in TIMED_TABLES and list(fa.columns) == list(fb.columns):
            rows.append((name, "timing only", "a table of measured times"))
            continue
        if list(fa.columns) != list(fb.columns) or len(fa) != len(fb):
            rows.append((name, "CHANGED", f"shape/columns {fa.shape} {list(fa.columns)[:6]} vs {fb.shape}"))
            continue
        if "statistic" in fa.columns and Path(name).name == "verdicts.csv":
            timed = fa["statistic"].isin(TIMED_STATISTICS)
            if not timed.equals(fb["statistic"].isin(TIMED_STATISTICS)):
                rows.append((name, "CHANGED", "statistic column"))
                continue
            fa, fb = fa[~timed], fb[~timed]
            if fa.equals(fb):
                rows.append((name, "timing only", "rows " + ", ".join(TIMED_STATISTICS)))
                continue
        differing = [c for c in fa.columns if not fa[c].equals(fb[c])]
        results = [c for c in differing if not TIMING.search(c)]
        rows.append((name, "CHANGED" if results else "timing only", ", ".join(results or differing)))
    return rows


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        raise SystemExit("usage: compare_results.py BEFORE AFTER")
    before, after = map(Path, argv)
    for folder in (before, after):
        if not folder.is_dir():
            raise SystemExit(f"{folder} is not a folder")
    rows = compare(before, after)
    for name, status, detail in rows:
        print(f"{status:12s} {name}" + (f"  [{detail}]" if detail else ""))
    changed = sum(status == "CHANGED" for _, status, _ in rows)
    same = sum(status == "identical" for _, status, _ in rows)
    print(f"\n{len(rows)} CSVs: {same} byte-identical, {len(rows) - same - changed} differ in timing only, {changed} changed")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
