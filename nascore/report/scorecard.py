"""The scorecard and the per-chapter verdict blocks, rendered as MyST Markdown.

Input: the ``results/<profile>/<chapter>/verdicts.csv`` files chapters write
(``save_results(verdict_table(rows), OUT / "verdicts", provenance)``; columns:
:data:`nascore.report.verdict.COLUMNS`). :func:`load_verdicts` reads one profile and Holm-adjusts
its primary rows together (:func:`~nascore.report.verdict.apply_holm`); :func:`render_scorecard`
lists **every** claim of the claims table — measured or "not yet measured" — grouped by paper,
one headline per claim (coloured badge, primary statistic, raw and Holm p) with the details and the
exploratory rows folded in a dropdown; :func:`render_chapter` renders the same blocks for one
chapter (``book/_verdicts/<chapter>.md``, which the chapter includes with ``{include}``, so the
chapter and the scorecard show the same final verdict). :func:`chapter_table` is the compact table
a chapter shows for its own rows, with raw p and the label before multiplicity correction;
:func:`claims_frame` the claims table itself as a DataFrame.
"""
from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from .claims import PAPERS, all_claims, get
from .statistics import STATISTICS, statistic
from .verdict import (COLUMNS, INCONCLUSIVE, NOT_MEASURABLE, NOT_REPRODUCED, NOT_YET_MEASURED, REPRODUCED,
                      apply_holm, fmt_p)

#: Badge colours (background, text) per label. A badge is an inline HTML span with the CSS class
#: ``verdict`` (the contract nascore.browsercheck relies on) and inline colours, so it needs no theme CSS.
BADGES = {REPRODUCED: ("#1a7f37", "#ffffff"), NOT_REPRODUCED: ("#cf222e", "#ffffff"),
          INCONCLUSIVE: ("#f2cc60", "#3d2c00"), NOT_MEASURABLE: ("#6e7781", "#ffffff"),
          NOT_YET_MEASURED: ("#eaeef2", "#24292f"), "mixed": ("#0969da", "#ffffff"), "invalid": ("#ffffff", "#cf222e")}
INVALID = "invalid"
TALLY_ORDER = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_MEASURABLE, "mixed", NOT_YET_MEASURED)
PAPER_TITLES = {"automl-security": "On the Security Risks of AutoML", "deepsloth": "DeepSloth"}


def badge(label: str) -> str:
    """The coloured verdict badge (inline HTML, survives ``jupyter-book build -W``)."""
    bg, fg = BADGES.get(label, BADGES[NOT_YET_MEASURED])
    slug = label.replace(" ", "-")
    border = fg if bg == "#ffffff" else bg
    style = (f"background:{bg};color:{fg};border:1px solid {border};border-radius:0.35em;"
             f"padding:0.05em 0.45em;font-weight:600;font-size:0.9em;white-space:nowrap")
    return f'<span class="verdict verdict-{slug}" style="{style}">{label}</span>'


def md(text) -> str:
    """Escape text for MyST Markdown (no emphasis, math, tables or HTML by accident); '—' for missing."""
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return "—"
    out = str(text).replace("\\", "\\\\")
    for ch in "`*_|<$":
        out = out.replace(ch, "\\" + ch)
    return out


def _num(x, units: str = "", signed: bool = True) -> str:
    """A number with the decimals suited to ``units``; '—' for missing; Unicode minus."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return "—"
    if not math.isfinite(x):
        return "—"
    digits = {"percent": 1, "percentage points": 1, "log10 units": 2, "ranks": 1}.get(units)
    spec = ("+" if signed else "") + (f".{digits}f" if digits is not None else ".3g")
    return format(x, spec).replace("-", "−")


def _interval(r) -> str:
    signed = r.get("comparison") != "level"
    units = r.get("units", "")
    est = _num(r.get("estimate"), units, signed)
    if est == "—":
        return "—"
    lo, hi = _num(r.get("low"), units, signed), _num(r.get("high"), units, signed)
    ci = r.get("ci_level")
    ci = f"{100 * float(ci):.0f} %" if ci == ci and ci not in (None, "") else "95 %"
    interval = f" [{ci} CI {lo}, {hi}]" if lo != "—" else ""
    return f"{est}{interval} {units}".strip()


# --------------------------------------------------------------------------- loading
def load_verdicts(results: Path, profile: str) -> tuple[pd.DataFrame, list[str], list[str]]:
    """All verdict rows of ``results/<profile>/*/verdicts.csv`` with a ``chapter`` column, Holm
    applied across the primary rows; the chapters whose files predate these columns (stale: re-run
    them); and sentences about rows that break pre-registration (several primary rows for one
    claim and subject: their role becomes ``"invalid"``, so none of them decides the claim)."""
    frames, stale, problems = [], [], []
    for csv in sorted((Path(results) / profile).glob("*/verdicts.csv")):
        df = pd.read_csv(csv, keep_default_na=True)
        if not {"role", "statistic", "label", "subject"} <= set(df.columns):
            stale.append(csv.parent.name)
            continue
        df.insert(0, "chapter", csv.parent.name)
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=["chapter", *COLUMNS]), stale, problems
    df = pd.concat(frames, ignore_index=True)
    for c in ("subject", "setting", "size", "adj_label", "adj_covariates", "text", "test"):
        if c in df.columns:
            df[c] = df[c].astype(object).where(df[c].notna(), "").astype(str)
    # Several primary rows for one (claim, subject) break pre-registration: none of them may decide
    # the claim. They are shown as invalid (never silently demoted to one of them).
    prim = df["role"] == "primary"
    dup = prim & df[prim].duplicated(["claim", "subject"], keep=False).reindex(df.index, fill_value=False)
    for (chapter, claim), g in df[dup].groupby(["chapter", "claim"]):
        problems.append(f"{chapter} reports {len(g)} primary rows for {claim} (one is pre-registered; mark the "
                        f"others exploratory=True)")
    df.loc[dup, "role"] = INVALID
    return apply_holm(df), stale, problems


def claim_verdict(rows: pd.DataFrame) -> str:
    """One label for a claim from its primary rows' final labels ('mixed' if they differ)."""
    prim = rows[rows["role"] == "primary"]
    labels = set(prim["final_label"])
    if not labels:
        return NOT_YET_MEASURED
    return labels.pop() if len(labels) == 1 else "mixed"


def claims_frame(paper: str | None = None) -> pd.DataFrame:
    """The claims table as a DataFrame indexed by id, with the derived columns ``claimed``,
    ``informational``, ``extension``, ``unverified`` and ``units`` (of the primary statistic)."""
    rows = []
    for c in all_claims(paper):
        row = asdict(c)
        row["evidence"] = ", ".join(c.evidence)
        row["subjects"] = ", ".join(c.subjects)
        row["claimed"] = c.claimed_text()
        row["informational"] = c.informational
        row["extension"] = c.extension
        row["unverified"] = c.unverified
        row["units"] = statistic(c.primary).difference_units
        rows.append(row)
    return pd.DataFrame(rows).set_index("id")


# --------------------------------------------------------------------------- rendering
def _unmeasurable_why(r) -> str:
    """A few words for why a row is "not measurable at this scale", read from the reason its text
    gives (:func:`nascore.report.compare._row` writes exactly one of these)."""
    text = str(r.get("text", ""))
    if "smallest p this exact test can give" in text:
        return "too few units for the test to decide"
    if "at the statistic's floor" in text or "at the statistic's ceiling" in text:
        return "floor/ceiling"
    if "was not computed from this chapter's data" in text:
        return "measurability gate not computed"
    if "Gate not met" in text:
        return "measurability gate not met"
    return "see details"


def _headline_row(r, claimed: str = "") -> str:
    who = f"{md(r['subject'])}: " if r.get("subject") else ""
    stat = STATISTICS.get(r["statistic"])
    name = md(stat.label if stat else r["statistic"])
    p = f"p = {fmt_p(r.get('p_value'))}, Holm p = {fmt_p(r.get('holm_p'))}"
    if r.get("final_label") == NOT_MEASURABLE:
        p = f"no test ({_unmeasurable_why(r)})"
    elif r.get("p_value") != r.get("p_value"):
        p = "level claim, no test" if r.get("comparison") == "level" else "no test"
    n_b = r.get("n_b")
    n = f"{int(r['n_a'])} vs {int(n_b)}" if n_b == n_b and n_b else f"n = {int(r['n_a'])}"
    comp = f"{md(r['comparison'])} " if r.get("comparison") not in ("level", "", None) else ""
    paper = f" (claimed {md(claimed)})" if claimed else ""
    about = " · about these trained weights, not the architecture" if "weights" in str(r.get("about", "")) else ""
    return (f"{badge(r['final_label'])} {who}{name}: {comp}{_interval(r)}{paper} · {p} · {n} "
            f"{md(r.get('units_of_analysis', ''))}{about}")


def _details(rows: pd.DataFrame, claim) -> str:
    prim = rows[rows["role"] == "primary"]
    expl = rows[rows["role"] != "primary"]
    out = [f"**Claim.** {md(claim.statement)} Source: {md(claim.source)}. {md(claim.note)} Claimed: "
           f"{md(claim.claimed_text())} ({md(claim.comparison)}).", ""]
    for _, r in prim.iterrows():
        where = f" (chapter {md(r['chapter'])})" if "chapter" in r and r["chapter"] else ""
        out += [f"**Primary{where}.** {md(r['text'])}", ""]
    if len(expl):
        out += ["**Exploratory statistics** (raw p, no multiplicity correction; they cannot carry the claim):", "",
                "| statistic | estimate | p | label |", "|:--|:--|:--|:--|"]
        for _, r in expl.iterrows():
            what = md(r["statistic"]) + (f" ({md(r['subject'])})" if r.get("subject") else "") + \
                (f", {md(r['setting'])}" if r.get("setting") else "") + \
                (" — invalid: one of several primary rows" if r.get("role") == INVALID else "")
            out.append(f"| {what} | {md(_interval(r))} | {fmt_p(r.get('p_value'))} | {md(r['label'])} |")
        out.append("")
    return "\n".join(out)


def render_claim(claim_id: str, rows: pd.DataFrame, note: str = "") -> str:
    """The block of one claim: headline with badge, primary rows, and a dropdown with the rest."""
    c = get(claim_id)
    st = statistic(c.primary)
    kind = "this project's extension" if c.extension else f"paper claim, {md(c.source)}"
    lines = [f"**`{c.id}`** ({kind}) — {md(c.statement)}", ""]
    prim = rows[rows["role"] == "primary"] if len(rows) else rows
    if not len(prim):
        extra = f" ({len(rows)} exploratory row(s) only)" if len(rows) else ""
        lines += [f"{badge(NOT_YET_MEASURED)} primary: {md(st.label)}{md(extra)}{md(note)}", ""]
        if not len(rows):
            return "\n".join(lines)
    for _, r in prim.iterrows():
        lines += [_headline_row(r, c.claimed_text()), ""]
    n_expl = int((rows["role"] != "primary").sum())
    title = "Details" + (f" and {n_expl} exploratory statistic{'s' if n_expl != 1 else ''}" if n_expl else "")
    lines += [f":::{{dropdown}} {title}", _details(rows, c), ":::", ""]
    return "\n".join(lines)


def tally(df: pd.DataFrame, claim_ids) -> dict[str, int]:
    counts = dict.fromkeys(TALLY_ORDER, 0)
    for cid in claim_ids:
        counts[claim_verdict(df[df["claim"] == cid]) if len(df) else NOT_YET_MEASURED] += 1
    return counts


def render_scorecard(tables: dict[str, tuple[pd.DataFrame, list[str], list[str]]]) -> str:
    """The scorecard page: per profile, the tally and every claim of the table, grouped by paper."""
    lines = ["# Scorecard", "",
             "Every claim of the two papers and of this project's extensions, with the verdict computed from "
             "the data by `nascore.report` (rules on the [Methods](methods.md) page). Each claim is decided by "
             "its one pre-registered primary statistic; p-values of the primary tests are Holm-adjusted "
             "together, and the badge is the verdict after that correction. Exploratory statistics sit in the "
             "fold. Generated by `python -m nascore.book status`.", ""]
    if not tables:
        tables = {"": (pd.DataFrame(columns=["chapter", *COLUMNS]), [], [])}
    ids = [c.id for c in all_claims()]
    for profile, (df, stale, problems) in tables.items():
        counts = tally(df, ids)
        n_ext = sum(get(i).extension for i in ids)
        tl = " · ".join(f"{badge(k)} {v}" for k, v in counts.items() if v)
        n_tests = int(df["holm_p"].notna().sum()) if len(df) else 0
        where = f"Profile `{profile}`: " if profile else ""
        lines += [f"{where}{tl} — {len(ids)} claims ({n_ext} of them this project's extensions); "
                  f"Holm correction over {n_tests} primary test{'s' if n_tests != 1 else ''}.", ""]
        if stale:
            lines += [f"Chapters whose verdicts predate these rules and must be re-run: {', '.join(stale)}.", ""]
        for problem in problems:
            lines += [f"{badge(INVALID)} {md(problem)}.", ""]
        for paper in PAPERS:
            lines += [f"## {PAPER_TITLES.get(paper, paper)}" + (f" ({profile})" if len(tables) > 1 else ""), ""]
            for c in all_claims(paper):
                rows = df[df["claim"] == c.id] if len(df) else df
                lines.append(render_claim(c.id, rows))
    return "\n".join(lines).rstrip() + "\n"


def render_summary(tables: dict[str, tuple[pd.DataFrame, list[str], list[str]]]) -> str:
    """``book/_verdicts/_summary.md`` for the closing page: per profile and paper, the tally and one
    line per claim (final verdict, the claim, its chapter) — generated, so the closing page never
    states a result by hand."""
    lines: list[str] = []
    for profile, (df, _stale, _problems) in tables.items():
        for paper in PAPERS:
            claims = all_claims(paper)
            counts = tally(df, [c.id for c in claims])
            tl = " · ".join(f"{badge(k)} {v}" for k, v in counts.items() if v)
            lines += [f"**{PAPER_TITLES.get(paper, paper)}** (profile `{profile}`): {tl}", "",
                      "| verdict | claim | chapter |", "|:--|:--|:--|"]
            for c in claims:
                rows = df[df["claim"] == c.id] if len(df) else df
                chapters = sorted(set(rows["chapter"])) if len(rows) else []
                kind = " *(extension)*" if c.extension else ""
                lines.append(f"| {badge(claim_verdict(rows) if len(rows) else NOT_YET_MEASURED)} | "
                             f"{md(c.statement)}{kind} | {', '.join(chapters) or '—'} |")
            lines.append("")
    if not lines:
        lines = [f"{badge(NOT_YET_MEASURED)} no chapter has saved verdicts yet.", ""]
    return "\n".join(lines).rstrip() + "\n"


def render_chapter(df: pd.DataFrame, chapter: str, profile: str, problems: list[str] = ()) -> str:
    """``book/_verdicts/<chapter>.md``: the chapter's claims with their final (Holm-adjusted) verdicts."""
    rows = df[df["chapter"] == chapter] if len(df) else df
    n_tests = int(df["holm_p"].notna().sum()) if len(df) else 0
    lines = [f"Final verdicts (profile `{profile}`), after Holm correction over the scorecard's {n_tests} primary "
             f"tests; the tables above show raw p-values, before that correction.", ""]
    lines += [f"{badge(INVALID)} {md(p)}." for p in problems if p.startswith(chapter + " ")] + [""]
    if not len(rows):
        return "\n".join(lines + [f"{badge(NOT_YET_MEASURED)} this chapter has saved no verdicts yet.", ""])
    for cid in dict.fromkeys(rows["claim"]):
        lines.append(render_claim(cid, rows[rows["claim"] == cid]))
    return "\n".join(lines).rstrip() + "\n"


def chapter_table(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Compact display of a chapter's own rows: claim, statistic, role, estimate with CI and units,
    raw p, the size-adjusted estimate with its common support ('overlap' / 'extrapolation'), and the
    label **before multiplicity correction**. Rows that claim, statistic and subject alone would not tell
    apart (the same statistic at two budgets, or on seeds and on images) name their setting too."""
    subject = verdicts["subject"].fillna("").astype(str)
    name = verdicts["statistic"] + subject.map(lambda s: f" ({s})" if s else "")
    ambiguous = pd.Series(list(zip(verdicts["claim"], name))).duplicated(keep=False).to_numpy()
    setting = verdicts["setting"].fillna("").astype(str) if "setting" in verdicts else pd.Series("", index=verdicts.index)
    name = [f"{n}, {st}" if amb and st else n for n, st, amb in zip(name, setting, ambiguous)]
    out = pd.DataFrame({
        "claim": verdicts["claim"],
        "statistic": name,
        "role": verdicts["role"],
        "estimate [95 % CI]": [_interval(r) for _, r in verdicts.iterrows()],
        "p (raw)": verdicts["p_value"].map(fmt_p),
        "size-adjusted": [
            f"{_num(r['adj_estimate'], r['units'])}, p = {fmt_p(r['adj_p'])}"
            + (f" ({r['adj_support']})" if isinstance(r.get("adj_support"), str) and r.get("adj_support") else "")
            if r["adj_estimate"] == r["adj_estimate"] else "—" for _, r in verdicts.iterrows()],
        "label (before multiplicity correction)": verdicts["label"],
    })
    return out.reset_index(drop=True)
