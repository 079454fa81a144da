"""Pilot: does the VGG head dropout keep the narrow quick-scale VGGs from training in one epoch?

Trains a VGG (``vgg13_bn`` of the zoo or the DeepSloth backbone ``vgg16_bn``) with the quick recipe
(one pass over all 50,000 training images, one thread) once per head-dropout value and peak learning
rate, and prints the test accuracy on the full 10,000-image test set and the training accuracy and
loss of the epoch. Not cached: a pilot, not a zoo model (README, "VGG head dropout").

    OMP_NUM_THREADS=1 python benchmarks/pilot_vgg_dropout.py --model vgg13_bn --width 0.125 --dropout 0.5 0
"""
from __future__ import annotations

import argparse
import time

import pandas as pd
import torch

from nascore import zoo
from nascore.models import build
from nascore.profiles import get_profile
from nascore.train import Recipe, train


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="vgg13_bn", choices=["vgg13_bn", "vgg16_bn"])
    ap.add_argument("--width", type=float, default=1 / 8)
    ap.add_argument("--dropout", type=float, nargs="+", default=[0.5, 0.0])
    ap.add_argument("--lr", type=float, nargs="+", default=[None], help="peak lr; default: the quick recipe's")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    data = zoo.dataset()
    base = get_profile("quick").recipe_overrides()
    rows = []
    for dropout in args.dropout:
        for lr in args.lr:
            recipe = Recipe(**{**base, "eval_points": 0, **({"lr": lr} if lr is not None else {})})
            torch.manual_seed(args.seed)
            model = build(args.model, width=args.width, dropout=dropout).to(memory_format=torch.channels_last)
            t0 = time.perf_counter()
            h = train(model, data.train_x, data.train_y, data.test_x, data.test_y, recipe, seed=args.seed,
                      progress=False)[-1]
            rows.append({"model": args.model, "width": args.width, "dropout": dropout, "peak_lr": recipe.lr,
                         "test_acc": 100 * h["test_acc"], "train_acc": 100 * h["train_acc"],
                         "train_loss": h["train_loss"], "seconds": time.perf_counter() - t0})
            print(pd.DataFrame(rows[-1:]).to_string(index=False, float_format="%.3f"), flush=True)
    print(pd.DataFrame(rows).to_string(index=False, float_format="%.3f"))


if __name__ == "__main__":
    main()
