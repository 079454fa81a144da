"""Pilot: at what query budget and number of thief epochs do freshly initialised thieves learn at quick?

Issue "valid verdicts": with thieves that start from their own initialisation (protocol §4.4; before, each
thief shared its victim's seed and so its initial weights), a thief must beat a constant predictor for the
extraction statistic to measure imitation (the ``thieves_learn`` gate: agreement with the victim more than
5 pp above the share of the victim's most frequent label). This pilot runs chapter 7's own thieves
(``nascore.findings.extraction.run``, hard labels, two single-threaded workers, through the model cache) on
a few victims for each (budget, epochs) pair and prints agreement, agreement gain, thief accuracy and
KL(victim ‖ thief), with the training cost. Table: ``results/pilot/extraction_budget.csv``.

    python benchmarks/pilot_extraction_budget.py --models darts pc_darts resnet18 vgg13_bn \
        --budgets 2000 8000 --epochs 2 6
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from nascore import zoo
from nascore.findings import extraction as chapter
from nascore.io import atomic_write_text
from nascore.profiles import get_profile


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["darts", "pc_darts", "resnet18", "vgg13_bn"])
    ap.add_argument("--budgets", nargs="+", type=int, default=[2000, 8000])
    ap.add_argument("--epochs", nargs="+", type=int, default=[2, 6])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="results/pilot/extraction_budget.csv")
    args = ap.parse_args(argv)
    data = zoo.dataset()
    frames = []
    for epochs in args.epochs:
        prof = get_profile("quick", extraction_models=tuple(args.models), extraction_budgets=tuple(args.budgets),
                           extraction_soft_budgets=(min(args.budgets),), thief_epochs=epochs, seeds=(0,),
                           extra_seeds={})
        _, thieves, _ = chapter.run(prof, data, progress=True, workers=args.workers)
        hard = thieves[thieves["mode"] == "hard"].assign(thief_epochs=epochs)
        frames.append(hard[["model", "family", "seed", "budget", "thief_epochs", "agreement", "victim_majority",
                            "agreement_gain", "thief_acc", "victim_acc", "kl", "ce", "victim_entropy",
                            "thief_train_seconds"]])
    df = pd.concat(frames, ignore_index=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(args.out), df.to_csv(index=False))
    print(df.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
