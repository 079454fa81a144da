"""CPU speed levers for the quick profile, measured on the real workload (issue "quick v2").

For each model, one training step of the quick recipe (Nesterov SGD, batch 128, grad clip 5,
crop + flip, on-device batches) is timed under each lever, **in one process**, alternating the
levers over ``--repeats`` rounds; the report is the median images per CPU-second of the process
(``time.process_time``: robust to other processes sharing the machine) and the ratio against the
baseline *fp32, contiguous NCHW, eager* measured in the same rounds.

Levers: memory format (``channels_last``), precision (bf16 autocast: this CPU has avx512_bf16),
and ``torch.compile`` (inductor; its warm-up is reported separately, in seconds, so it can be
weighed against the minutes of one quick training run).

    OMP_NUM_THREADS=1 python benchmarks/bench_speed_levers.py                 # darts, resnet18, densenet121
    OMP_NUM_THREADS=1 python benchmarks/bench_speed_levers.py --models darts --compile
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch import nn

from nascore import provenance
from nascore.data import DeviceLoader
from nascore.models import build, family
from nascore.models.predict import autocast
from nascore.train import Recipe, _make_optimizer
from nascore.zoo import dataset

LEVERS = {  # name: (channels_last, precision, compile)
    "fp32": (False, "fp32", False),
    "fp32+cl": (True, "fp32", False),
    "bf16": (False, "bf16", False),
    "bf16+cl": (True, "bf16", False),
}
COMPILED = {"fp32+compile": (False, "fp32", True), "bf16+compile": (False, "bf16", True)}


def _scale(name: str, args) -> dict:
    return {"width": args.width} if family(name) == "manual" else {"C": args.C, "layers": args.layers, "dropout": 0.0}


def _make_step(name, args, channels_last, precision, compiled):
    torch.manual_seed(0)
    model = build(name, **_scale(name, args))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    recipe = Recipe(epochs=1, batch_size=args.batch, lr=0.2, nesterov=True, schedule="constant", cutout=0)
    opt, _ = _make_optimizer(model, recipe, 1)
    forward = torch.compile(model) if compiled else model
    criterion = nn.CrossEntropyLoss()
    params = list(model.parameters())

    def step(xb, yb):
        xb = xb.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        with autocast("cpu", precision):
            loss = criterion(forward(xb).float(), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
    return step


def _time(step, batches, n):
    t0 = time.process_time()
    for xb, yb in batches[:n]:
        step(xb, yb)
    return n * len(batches[0][1]) / (time.process_time() - t0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["darts", "resnet18", "densenet121"])
    ap.add_argument("--C", type=int, default=8)
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--width", type=float, default=1 / 8)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--batches", type=int, default=6, help="timed batches per measurement")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--compile", action="store_true", help="also measure torch.compile (slow warm-up)")
    ap.add_argument("--out", default=None, help="write the JSON result here")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    data = dataset()
    loader = DeviceLoader(data.train_x[:args.batch * (args.batches + 2)], data.train_y[:args.batch * (args.batches + 2)],
                          args.batch, "cpu", train=True, seed=0, cutout=0)
    batches = list(loader)
    levers = {**LEVERS, **(COMPILED if args.compile else {})}
    results = []
    for name in args.models:
        steps, warmup = {}, {}
        for lever, (cl, prec, comp) in levers.items():
            step = _make_step(name, args, cl, prec, comp)
            t0 = time.perf_counter()
            for xb, yb in batches[:2]:  # warm-up (compilation happens here)
                step(xb, yb)
            warmup[lever] = time.perf_counter() - t0
            steps[lever] = step
        rates = {lever: [] for lever in levers}
        for _ in range(args.repeats):
            for lever, step in steps.items():
                rates[lever].append(_time(step, batches[2:], args.batches))
        base = statistics.median(rates["fp32"])
        for lever in levers:
            med = statistics.median(rates[lever])
            results.append({"model": name, "lever": lever, "img_per_cpu_s": round(med, 1),
                            "ratio_vs_fp32": round(med / base, 3), "warmup_s": round(warmup[lever], 1)})
            print(f"{name:12s} {lever:14s} {med:8.1f} img/CPU-s  x{med / base:5.2f}  warm-up {warmup[lever]:6.1f} s",
                  flush=True)
    record = {"results": results, "args": vars(args), "provenance": provenance.collect("cpu")}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(record, f, indent=2)


if __name__ == "__main__":
    main()
