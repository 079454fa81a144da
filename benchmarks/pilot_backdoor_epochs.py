"""Pilot: how many fine-tuning epochs does chapter 6 need at quick for BadNet to be *learned* on most models?

Issue "valid verdicts": at 2 epochs of 1,920 images (40 SGD steps at the ×12.5 poison rate) BadNet's ASR at the
last epoch was 30–57 % against ~10 % for the trigger on the clean model — a gain of 20.1–47.4 pp, so the
``backdoor_learned`` gate (gain > 20 pp on most models) passed by 0.1 pp on DenseNet-121; TrojanNN gained
7–17 pp. This pilot fine-tunes a few clean quick models for ``--epochs`` epochs with the chapter's own jobs
(``nascore.findings.backdoor.jobs``, through the injection cache, two single-threaded workers) and prints the
ASR gain over the clean model and the clean-accuracy drop after every epoch, so that the chapter's fixed
epoch can be chosen from measured values. Table: ``results/pilot/backdoor_epochs.csv``.

    python benchmarks/pilot_backdoor_epochs.py --models darts pc_darts resnet18 vgg13_bn --epochs 4
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from nascore.findings import backdoor as chapter
from nascore.findings.backdoor_injection import inject_many
from nascore.io import atomic_write_text
from nascore.profiles import get_profile


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["darts", "pc_darts", "resnet18", "vgg13_bn"])
    ap.add_argument("--attacks", nargs="+", default=["badnet", "trojannn"], choices=["badnet", "trojannn"])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="results/pilot/backdoor_epochs.csv")
    args = ap.parse_args(argv)
    prof = get_profile("quick", backdoor_epochs=args.epochs, backdoor_models=tuple(args.models),
                       neuron_sweep_models=(args.models[0],), latent_imc_models=(args.models[0],), seeds=(0,),
                       extra_seeds={})
    todo = {k: j for k, j in chapter.jobs(prof).items() if k[0] in args.attacks}
    done = inject_many(list(todo.values()), prof, workers=args.workers, progress=True)
    rows = []
    for (attack, model, seed), job in todo.items():
        tm = done[job]
        hist = tm.record["history"]
        for h in hist:
            rows.append({"attack": attack, "model": model, "seed": seed, "epoch": h["epoch"],
                         "sgd_steps": h["epoch"] * -(-job.train_images // 96), "asr": h["asr"],
                         "asr_gain": h["asr"] - hist[0]["asr"], "clean_acc": h["clean_acc"], "cad": h["cad"],
                         "seconds": h["seconds"]})
    df = pd.DataFrame(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(args.out), df.to_csv(index=False))
    print(df.pivot_table(index=["attack", "model"], columns="epoch", values="asr_gain").round(1).to_string())
    print(df.pivot_table(index=["attack", "model"], columns="epoch", values="cad").round(1).to_string())
    print("seconds per epoch (median):", df[df.epoch > 0].groupby("model").seconds.median().round(1).to_dict())


if __name__ == "__main__":
    main()
