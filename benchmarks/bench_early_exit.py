"""Early-exit inference and IC-only training: what vectorising and feature reuse buy, in one process.

1. **Evaluator** — the vectorised early-exit evaluator (:func:`nascore.multiexit.exit_record`:
   every exit's confidence and prediction for a batch in one pass, then the exit rule applied to
   the table by :func:`~nascore.multiexit.exit_indices`) against the batch-1 reference loop
   (:func:`~nascore.multiexit.early_exit_one`: one image at a time, stopping at the first confident
   IC). Images per second, the median of ``--runs`` interleaved timed runs after a warm-up, the
   ratio vectorised / batch-1, and whether the two give identical exits and predictions, in
   three threshold regimes: most images leave at the first IC, images leave at many depths, no
   image leaves early (DeepSloth's goal). The batch-1 loop skips the blocks after the exit, so it
   is cheapest when images leave early; the vectorised one computes every exit, which also lets
   it answer all 19 thresholds of the grid from the same pass.
2. **IC training** — :func:`~nascore.multiexit.fit_ics` for ``--passes`` passes over ``--images``
   images: a fresh augmentation draw per pass (``reuse=1``, the authors' schedule: a backbone
   forward pass per image and pass) against one draw whose pooled features are computed once and
   reused (``reuse=passes``). Seconds per run (median of ``--runs``), ratio, and the split into
   feature computation and IC updates.

Tiny scale by default (random-init SDNs at width 1/8, random images, one thread)::

    python benchmarks/bench_early_exit.py
    python benchmarks/bench_early_exit.py --backbones vgg16_bn --width 0.25 --images 500 --runs 5
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nascore import models  # noqa: E402
from nascore.multiexit import SDN, ICRecipe, early_exit_one, exit_indices, exit_record, fit_ics  # noqa: E402


def thresholds(rec) -> dict[str, float]:
    """Three regimes: most images leave at IC 1, images leave at many depths, none leaves early
    (the regime DeepSloth aims for)."""
    ic = rec.confidence[:, :-1]
    return {"early": float(np.quantile(ic[:, 0], 0.25)), "mixed": float(np.median(ic.max(axis=1))),
            "none early": float(min(1.0, ic.max() + 1e-6))}


def bench_evaluator(name: str, width: float, images: int, runs: int, batch: int) -> list[dict]:
    torch.manual_seed(0)
    sdn = SDN(models.build(name, width=width)).eval()
    x = torch.rand(images, 3, 32, 32)
    rows = []
    for regime, q in thresholds(exit_record(sdn, x, batch)).items():
        def vectorised():
            r = exit_record(sdn, x, batch)
            e = exit_indices(r, q)
            return e, r.prediction[np.arange(images), e]

        def batch_one():
            out = [early_exit_one(sdn, x[i:i + 1], q) for i in range(images)]
            return np.array([e for e, _ in out]), np.array([p for _, p in out])

        vectorised(), batch_one()                               # warm-up
        times = {"vectorised": [], "batch-1": []}
        results = {}
        for _ in range(runs):
            for label, fn in (("vectorised", vectorised), ("batch-1", batch_one)):
                t0 = time.perf_counter()
                results[label] = fn()
                times[label].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) for k, v in times.items()}
        same = all(np.array_equal(a, b) for a, b in zip(results["vectorised"], results["batch-1"]))
        rows.append({"backbone": name, "regime": regime, "exits": sdn.num_exits,
                     "mean_exit": float(results["batch-1"][0].mean() + 1),
                     "vectorised_img_s": images / med["vectorised"], "batch1_img_s": images / med["batch-1"],
                     "ratio": med["batch-1"] / med["vectorised"], "identical": same})
    return rows


def bench_ic_training(name: str, width: float, images: int, passes: int, runs: int) -> dict:
    x = torch.randint(0, 256, (images, 3, 32, 32), dtype=torch.uint8)
    y = torch.arange(images) % 10
    out = {}
    for reuse in (1, passes):
        secs, feat, upd = [], [], []
        for r in range(runs + 1):                                   # run 0 is the warm-up
            torch.manual_seed(0)
            sdn = SDN(models.build(name, width=width))
            t0 = time.perf_counter()
            hist = fit_ics(sdn, x, y, ICRecipe(epochs=passes, reuse=reuse, batch_size=128))
            if r:
                secs.append(time.perf_counter() - t0)
                feat.append(sum(h["feature_seconds"] for h in hist))
                upd.append(sum(h["ic_seconds"] for h in hist))
        out[reuse] = (statistics.median(secs), statistics.median(feat), statistics.median(upd))
    fresh, reused = out[1], out[passes]
    return {"backbone": name, "passes": passes, "fresh_s": fresh[0], "fresh_features_s": fresh[1],
            "fresh_updates_s": fresh[2], "reuse_s": reused[0], "reuse_features_s": reused[1],
            "reuse_updates_s": reused[2], "speedup": fresh[0] / reused[0]}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backbones", nargs="+", default=list(models.SDN_NAMES), choices=list(models.SDN_NAMES))
    ap.add_argument("--width", type=float, default=1 / 8)
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--batch", type=int, default=200, help="batch size of the vectorised evaluator")
    ap.add_argument("--passes", type=int, default=4, help="IC-training passes over the images")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip", choices=["evaluator", "training"], default=None)
    args = ap.parse_args(argv)
    if args.images < 1 or args.runs < 1 or args.passes < 2 or args.width <= 0:
        ap.error("need --images >= 1, --runs >= 1, --passes >= 2, --width > 0")
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), width {args.width:g}, {args.images} images, "
          f"median of {args.runs} runs")
    if args.skip != "evaluator":
        print("\nearly-exit evaluator | threshold regime | exits | mean exit taken | vectorised img/s | "
              "batch-1 img/s | ratio | identical exits and predictions")
        for name in args.backbones:
            for r in bench_evaluator(name, args.width, args.images, args.runs, args.batch):
                print(f"{name} | {r['regime']} | {r['exits']} | {r['mean_exit']:.1f} | {r['vectorised_img_s']:,.0f} | "
                      f"{r['batch1_img_s']:,.0f} | {r['ratio']:.1f}x | {r['identical']}")
    if args.skip != "training":
        print(f"\nIC-only training, {args.passes} passes | fresh draw per pass: s (features + updates) | "
              "one draw reused: s (features + updates) | speed-up")
        for name in args.backbones:
            r = bench_ic_training(name, args.width, args.images, args.passes, args.runs)
            print(f"{name} | {r['fresh_s']:.2f} ({r['fresh_features_s']:.2f} + {r['fresh_updates_s']:.2f}) | "
                  f"{r['reuse_s']:.2f} ({r['reuse_features_s']:.2f} + {r['reuse_updates_s']:.2f}) | "
                  f"{r['speedup']:.2f}x")


if __name__ == "__main__":
    main()
