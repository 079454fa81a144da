"""Every verdict row of the executed chapters, before (a git commit) and after (the working tree).

Reads ``results/<profile>/<chapter>/verdicts.csv`` at ``--before`` (via ``git show``) and on disk and
prints one Markdown row per (claim, statistic, setting, role) whose label, estimate or size-adjusted
estimate changed, with the numbers, for an issue note ("every changed verdict, before → after").

    python benchmarks/compare_verdicts.py --before 685eb20 --profile quick 01_model_zoo 02_evasion
"""
from __future__ import annotations

import argparse
import io
import subprocess
from pathlib import Path

import pandas as pd

KEY = ["claim", "statistic", "subject", "setting", "role"]


def _read(text: str) -> pd.DataFrame:
    df = pd.read_csv(io.StringIO(text), keep_default_na=False)
    for col in ("subject", "setting"):
        df[col] = df[col] if col in df.columns else ""
    return df


def _label(r) -> str:
    return str(r.get("final_label") or r.get("label") or "—")


def _num(r, col: str) -> str:
    v = r.get(col, "")
    try:
        return f"{float(v):+.3g}"
    except (TypeError, ValueError):
        return "—"


def compare(before: pd.DataFrame, after: pd.DataFrame) -> list[str]:
    b = {tuple(r[k] for k in KEY): r for r in before.to_dict("records")}
    a = {tuple(r[k] for k in KEY): r for r in after.to_dict("records")}
    lines = []
    for key in list(dict.fromkeys([*b, *a])):
        rb, ra = b.get(key), a.get(key)
        what = (f"`{key[0]}` {key[1]}" + (f" {key[2]}" if key[2] else "") + (f" ({key[3]})" if key[3] else "")
                + f", {key[4]}")
        if rb is None or ra is None:
            lines.append(f"| {what} | {'—' if rb is None else _label(rb)} | {'—' if ra is None else _label(ra)} | "
                         f"{'new row' if rb is None else 'row removed'} |")
            continue
        changed = (_label(rb) != _label(ra) or _num(rb, "estimate") != _num(ra, "estimate")
                   or _num(rb, "adj_estimate") != _num(ra, "adj_estimate"))
        if changed:
            sup = ra.get("adj_support", "")
            lines.append(f"| {what} | {_label(rb)} (est {_num(rb, 'estimate')}, adj {_num(rb, 'adj_estimate')}) | "
                         f"{_label(ra)} (est {_num(ra, 'estimate')}, adj {_num(ra, 'adj_estimate')}"
                         f"{', ' + sup if sup else ''}) | |")
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("chapters", nargs="+")
    ap.add_argument("--before", required=True, help="git commit of the earlier results")
    ap.add_argument("--profile", default="quick")
    args = ap.parse_args(argv)
    print("| claim, statistic, role | before | after | note |\n|---|---|---|---|")
    for ch in args.chapters:
        rel = f"results/{args.profile}/{ch}/verdicts.csv"
        old = subprocess.run(["git", "show", f"{args.before}:{rel}"], capture_output=True, text=True)
        before = _read(old.stdout) if old.returncode == 0 else pd.DataFrame(columns=KEY)
        after = _read(Path(rel).read_text()) if Path(rel).is_file() else pd.DataFrame(columns=KEY)
        for line in compare(before, after):
            print(line)


if __name__ == "__main__":
    main()
