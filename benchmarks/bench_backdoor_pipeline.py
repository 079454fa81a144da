"""Training-time attacks on the trainer: overhead of stamped batches and frozen poisoned images.

Same model, same weights at the start, same recipe (the backdoor fine-tuning recipe of protocol §4.3:
SGD lr 0.01, no schedule, crop + flip, batch 96), same images. One epoch of ``nascore.train.train``:

* ``plain`` — the trainer alone (the baseline);
* ``badnet`` — with :meth:`BadNet.poison_batch` as ``batch_transform`` (1–2 stamped, relabelled copies
  prepended to every batch of 96, opaque 3×3 trigger);
* ``trojannn`` — the same with TrojanNN's blended trigger (alpha 0.7) at 1 %;
* ``poison40`` — random-label poisoning at 40 %: the training set from :class:`RandomLabelPoison`, 40 % of
  it frozen (no augmentation) via the trainer's ``frozen`` mask.

Throughput is **training-set images per second** (the stamped copies are extra work the attack causes,
so they count as overhead, not as throughput); ``per processed image`` divides the copies out, leaving the
cost of the pipeline itself (stamping, concatenation, the per-batch draw). Runs alternate between the variants; the script reports
the median over ``--repeats`` and the ratio variant/plain from the same process.

    python benchmarks/bench_backdoor_pipeline.py                      # quick-scale DARTS and ResNet-18, CPU
    python benchmarks/bench_backdoor_pipeline.py --images 960 --repeats 5 --threads 1
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from nascore import provenance
from nascore.attacks import RandomLabelPoison
from nascore.attacks.backdoor import BadNet, TrojanNN, finetune_recipe
from nascore.models import build
from nascore.profiles import get_profile
from nascore.train import train
from nascore.zoo import dataset


def one_epoch(name, scale, start, x, y, test_x, test_y, recipe, device, **kw) -> tuple[float, int]:
    """Wall seconds of one training epoch of ``name`` from the weights ``start``, and the images the model
    processed (training images plus stamped copies)."""
    model = build(name, **scale)
    model.load_state_dict(start)
    t0 = time.perf_counter()
    hist = train(model, x, y, test_x, test_y, recipe, seed=0, device=device, progress=False, **kw)
    return time.perf_counter() - t0, int(hist[-1]["images"])


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["darts", "resnet18"])
    ap.add_argument("--profile", default="quick", help="scale of the models (nas_scale / manual_scale)")
    ap.add_argument("--images", type=int, default=960, help="training images per epoch")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    prof = get_profile(args.profile)
    data = dataset()
    x, y = data.train_x[:args.images], data.train_y[:args.images]
    test_x, test_y = data.test_x[:10], data.test_y[:10]  # the trainer's per-epoch evaluation, negligible here
    recipe = finetune_recipe(1)
    poisoned = RandomLabelPoison(0.4).inputs(x, y, seed=0)
    variants = {
        "plain": dict(),
        "badnet": dict(batch_transform=BadNet().poison_batch),
        "trojannn": dict(batch_transform=TrojanNN().poison_batch),
        "poison40": dict(frozen=poisoned.frozen, x=poisoned.train_x, y=poisoned.train_y),
    }
    results = {}
    for name in args.models:
        scale = prof.scale_for(name)
        torch.manual_seed(0)
        start = build(name, **scale).state_dict()
        times = {v: [] for v in variants}
        processed = {}
        one_epoch(name, scale, start, x[:96], y[:96], test_x, test_y, recipe, args.device)  # warm-up
        for _ in range(args.repeats):
            for v, kw in variants.items():
                kw = dict(kw)
                vx, vy = kw.pop("x", x), kw.pop("y", y)
                seconds, processed[v] = one_epoch(name, scale, start, vx, vy, test_x, test_y, recipe, args.device, **kw)
                times[v].append(seconds)
        base = statistics.median(times["plain"])
        plain_rate = processed["plain"] / base
        results[name] = {v: {"images_per_second": args.images / statistics.median(t),
                             "ratio_to_plain": base / statistics.median(t),
                             "overhead_percent": 100 * (statistics.median(t) / base - 1),
                             "processed_per_second": processed[v] / statistics.median(t),
                             "pipeline_overhead_percent": 100 * (plain_rate / (processed[v] / statistics.median(t)) - 1),
                             "seconds": [round(s, 3) for s in t]}
                         for v, t in times.items()}
        for v, r in results[name].items():
            print(f"{name:>10} {v:>9}: {r['images_per_second']:7.1f} img/s  ratio {r['ratio_to_plain']:.3f}  "
                  f"overhead {r['overhead_percent']:+5.1f} %  (per processed image: "
                  f"{r['pipeline_overhead_percent']:+5.1f} %)", flush=True)
    out = {"results": results, "args": vars(args),
           "provenance": provenance.collect(args.device, profile=prof.name, threads=args.threads)}
    print(json.dumps(out["args"]))
    return out


if __name__ == "__main__":
    main()
