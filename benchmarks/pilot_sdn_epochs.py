"""Pilot: how many epochs do the quick DeepSloth backbones need for the early-exit thresholds to mean something?

At quick (one pass over the 50,000 training images, issue "quick v2") the VGG-16-BN ×1/4 backbone reached
39 % and its first internal classifier (after one conv layer, 44 %) beat the final exit, so the RAD<5 % rule
chose q = 0.05 ≤ 1/K: every input, clean or attacked, leaves at IC 1 — DeepSloth cannot be measured on it.
This pilot trains each backbone by the quick recipe for each number of epochs (through the zoo cache,
``Profile.model_recipe``; two single-threaded workers), fits its ICs as chapter 9 does, and prints the final
and first-IC accuracy, the thresholds for RAD<5 % / 15 % and the clean efficacy. Table: results/pilot/sdn_epochs.csv.

    python benchmarks/pilot_sdn_epochs.py --backbones vgg16_bn resnet56 mobilenet_v1 --epochs 1 2
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch

from nascore import zoo
from nascore.io import atomic_write_text
from nascore.multiexit import (RAD_BUDGETS, choose_threshold, cost_fractions, exit_accuracies, exit_record,
                               threshold_table, trained_sdn)
from nascore.multiexit.store import backbone_splits
from nascore.profiles import SDN_NAMES, get_profile


def measure(name: str, epochs: int) -> list[dict]:
    """Train (or load) ``name`` at quick with ``epochs``, fit its ICs, return one row per RAD budget."""
    prof = get_profile("quick").override(model_recipe={name: {"epochs": epochs}})
    backbone = zoo.get(name, prof, progress=False)
    sdn = trained_sdn(name, prof, backbone=backbone).model.eval()
    _, _, test_x, test_y = backbone_splits(backbone)
    rec = exit_record(sdn, test_x)
    accs = exit_accuracies(rec, test_y.numpy())
    table = threshold_table(rec, test_y.numpy(), cost_fractions(sdn))
    rows = []
    for rad in RAD_BUDGETS:
        q = choose_threshold(table, accs[-1], rad)
        row = table[table.q == q].iloc[0] if q in set(table.q) else {"ee_acc": float("nan"), "efficacy": float("nan")}
        rows.append({"backbone": name, "epochs": epochs, "train_cpu_min": backbone.record["metrics"]["train_cpu_seconds"] / 60,
                     "train_s": backbone.record["metrics"]["train_seconds"], "final_acc": 100 * accs[-1],
                     "ic1_acc": 100 * accs[0], "best_ic_acc": 100 * max(accs[:-1]), "rad": rad, "q": q,
                     "forced_first_exit": q <= 1 / rec.prediction.shape[-1],
                     "ee_acc": 100 * row["ee_acc"], "efficacy": row["efficacy"]})
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backbones", nargs="+", default=list(SDN_NAMES), choices=list(SDN_NAMES))
    ap.add_argument("--epochs", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--out", default="results/pilot/sdn_epochs.csv")
    args = ap.parse_args(argv)
    for e in args.epochs:  # train every backbone first, two at a time, slowest first
        zoo.train_many(args.backbones, get_profile("quick").override(
            model_recipe={b: {"epochs": e} for b in args.backbones}), progress=False)
    torch.set_num_threads(1)
    rows = [r for e in args.epochs for b in args.backbones for r in measure(b, e)]
    df = pd.DataFrame(rows)
    atomic_write_text(Path(args.out), df.to_csv(index=False))
    print(df.to_string(index=False, float_format="%.3f"))


if __name__ == "__main__":
    main()
