"""Pilot: does progressive resizing make the quick zoo cheap enough for the 45-minute budget?

Issue "quick v2" lists progressive resizing ("if it pays") among the recipe candidates; it was the one not
tried. Each run trains one model by the quick recipe (one pass over all 50,000 training images, batch 64,
Nesterov SGD, peak lr 0.1 with warm-up and linear decay, fp32 channels_last, one thread) but feeds the first
``fraction`` of the SGD steps at ``res`` × ``res`` pixels: the augmented batch is downsampled on the fly
(2×2 average pooling for 16 px, antialiased bilinear otherwise) by a ``batch_transform`` of
:func:`nascore.train.train`, so the trainer itself is unchanged. Accuracy on the full 10,000-image test set
at 32 px; training CPU-minutes of the process (robust to other load); ratios against the full-resolution
baseline of the same process. VGG-13-BN cannot take part: its classifier expects 1×1 maps after five
poolings (16 or 24 px inputs leave 0×0). Not cached: a pilot, not a zoo model.

    OMP_NUM_THREADS=1 python benchmarks/pilot_progressive_resizing.py --model darts --variants 32:0 16:0.5
"""
from __future__ import annotations

import argparse
import time

import pandas as pd
import torch
import torch.nn.functional as F

from nascore import zoo
from nascore.models import build
from nascore.profiles import get_profile
from nascore.train import Recipe, train


class LowResFirst:
    """``batch_transform``: the first ``steps`` training batches downsampled to ``res`` px, then unchanged."""

    def __init__(self, res: int, steps: int):
        self.res, self.steps, self.calls = res, steps, 0

    def __call__(self, x, y, generator):
        self.calls += 1
        if self.calls > self.steps or self.res >= x.shape[-1]:
            return x, y
        if x.shape[-1] % self.res == 0:
            k = x.shape[-1] // self.res
            return F.avg_pool2d(x, k), y
        return F.interpolate(x, size=(self.res, self.res), mode="bilinear", antialias=True, align_corners=False), y


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="darts")
    ap.add_argument("--variants", nargs="+", default=["32:0", "16:0.5", "24:0.5", "16:0.75"],
                    help="RES:FRACTION — the first FRACTION of the steps at RES px (32:0 is the baseline)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="CSV to write the rows to")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    prof = get_profile("quick")
    data = zoo.dataset()
    recipe = Recipe(**{**prof.recipe_overrides(args.model), "eval_points": 0})
    steps = -(-len(data.train_y) // recipe.batch_size) * recipe.epochs
    rows = []
    for v in args.variants:
        res, frac = int(v.split(":")[0]), float(v.split(":")[1])
        torch.manual_seed(args.seed)
        model = build(args.model, **prof.scale_for(args.model)).to(memory_format=torch.channels_last)
        t0 = time.perf_counter()
        h = train(model, data.train_x, data.train_y, data.test_x, data.test_y, recipe, seed=args.seed,
                  progress=False, batch_transform=LowResFirst(res, round(frac * steps)))[-1]
        rows.append({"model": args.model, "low_res": res, "fraction": frac, "test_acc": 100 * h["test_acc"],
                     "train_loss": h["train_loss"], "train_cpu_min": h["train_cpu_seconds"] / 60,
                     "wall_min": (time.perf_counter() - t0) / 60})
        print(pd.DataFrame(rows[-1:]).to_string(index=False, float_format="%.3f"), flush=True)
    df = pd.DataFrame(rows)
    base = df[(df.fraction == 0) | (df.low_res >= 32)]
    if len(base):
        df["cpu_ratio_vs_baseline"] = df.train_cpu_min / base.train_cpu_min.iloc[0]
        df["acc_change_pp"] = df.test_acc - base.test_acc.iloc[0]
    print(df.to_string(index=False, float_format="%.3f"))
    if args.out:
        df.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
