"""The lower bound on the quick book's wall time that the measured training costs and the inference rules set.

README "Why the budgets cannot be met on 2 cores". Reads the committed chapter 1 table (training CPU-minutes
of every quick model, one thread), the chapter run records (``book/_status``) and the progressive-resizing
pilot, and prints:

* the smallest attainable two-sided p of an exact NAS − manual permutation test for n vs m architectures
  against Holm's first threshold 0.05 / (number of primaries);
* the cheapest zoo that keeps ≥ 13 architectures (the fewest for which that p is below the threshold), DARTS and
  ResNet-18 twice, and the three mitigations, and its chapter 1–4 wall-time floor on 2 cores (perfect packing;
  chapters 2–4 scaled by the number of trainings from their measured times), with and without progressive resizing;
* the cheapest set of poisoned trainings issue 11 allows (≥ 5 NAS, ≥ 5 manual, the 3 mitigations) and its floor.

    python benchmarks/budget_floor.py
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from nascore.report.estimators import smallest_attainable_p

ROOT = Path(__file__).resolve().parent.parent
CORES = 2


def main():
    zoo = pd.read_csv(ROOT / "results/quick/01_model_zoo/zoo_table.csv")
    per_arch = zoo.groupby(["model", "family"]).train_cpu_min.agg(["sum", "first"]).reset_index()
    m = int(re.search(r"Holm correction over (\d+) primary tests", (ROOT / "book/scorecard.md").read_text()).group(1))
    first = 0.05 / m
    print(f"Holm's first threshold: 0.05/{m} = {first:.4f}")
    for n in ((5, 5), (6, 5), (6, 6), (7, 6), (10, 7)):
        p = smallest_attainable_p("exact permutation", *n)
        print(f"  {n[0]} vs {n[1]} architectures: smallest attainable p {p:.4f} {'<=' if p <= first else '>'} threshold")

    nas = per_arch[per_arch.family == "nas"].sort_values("first")
    manual = per_arch[per_arch.family == "manual"].sort_values("first")
    mitig = per_arch[per_arch.family == "mitigation"]
    darts = nas[nas.model == "darts"]
    others = nas[nas.model != "darts"]
    # 13 architectures: DARTS + the cheapest other cells + every manual model, or 7 NAS + 6 manual
    options = {
        "6 NAS + 7 manual": pd.concat([darts, others.head(5), manual]),
        "7 NAS + 6 manual": pd.concat([darts, others.head(6),
                                       pd.concat([manual[manual.model == "resnet18"],
                                                  manual[manual.model != "resnet18"].head(5)])]),
    }
    wall = {ch: json.loads((ROOT / f"book/_status/{ch}.json").read_text())["wall_seconds"] / 60
            for ch in ("02_evasion", "03_smoothness", "04_mitigations")}
    n_now = len(zoo)
    pilot = pd.read_csv(ROOT / "results/pilot/progressive_resizing.csv")
    pilot = pilot[pilot.fraction == 0.5].groupby("low_res").cpu_ratio_vs_baseline.mean()
    print(f"\nChapters 2-4 measured: {sum(wall.values()):.1f} min for {n_now} trainings")
    for name, sel in options.items():
        sel = pd.concat([sel, mitig])
        cpu = sel["sum"].sum()          # "sum" counts both seeds of DARTS and ResNet-18
        trainings = len(sel) + 2
        rest = sum(wall.values()) * trainings / n_now
        print(f"{name} + 3 mitigations ({trainings} trainings): {cpu:.1f} CPU-min -> chapter 1 >= "
              f"{cpu / CORES:.1f} min; chapters 1-4 >= {cpu / CORES + rest:.1f} min")
        for res, ratio in pilot.items():
            print(f"    with the first half at {res} px (x{ratio:.2f} CPU): >= {cpu * ratio / CORES + rest:.1f} min")

    one_seed = zoo.drop_duplicates("model").set_index("model").train_cpu_min
    cheapest = (one_seed[nas.model].sort_values().head(5).sum() + one_seed[manual.model].sort_values().head(5).sum()
                + one_seed[mitig.model].sum())
    print(f"\nPoisoning minimum (5 NAS + 5 manual + 3 mitigations, one seed each): {cheapest:.1f} CPU-min -> "
          f">= {cheapest / CORES:.1f} min on {CORES} cores before any evaluation or backdoor")


if __name__ == "__main__":
    main()
