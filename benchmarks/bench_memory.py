"""Peak memory: the quick profile's training processes on CPU, and one paper-scale training step.

* ``quick``: peak RSS (MiB) of a single-threaded worker process training each listed model at the
  quick scale for one epoch (how :func:`nascore.zoo.train_many` runs), and of a process holding
  the dataset and all the quick profile's models (the notebook kernel). The worst case of a
  chapter is ``kernel + workers × worst worker``.
* ``paper``: the memory one training step (forward + backward + SGD step, fp32, batch 96) adds
  to a process, for the paper-scale DARTS network (C=36, 20 cells) and the largest manual model
  (Wide-ResNet-50-2). On a GPU with bf16 autocast the activations take less, so the fp32 number
  is an upper bound for the 80 GB check (peak allocator memory on the device is what
  ``torch.cuda.max_memory_allocated`` would report there).

    python benchmarks/bench_memory.py quick
    python benchmarks/bench_memory.py paper
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource

import torch


def _rss_peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _quick_worker(name: str) -> float:
    torch.set_num_threads(1)
    from nascore.data import DeviceLoader
    from nascore.profiles import get_profile
    from nascore.train import Recipe, _make_optimizer
    from nascore.models import build
    from nascore.zoo import dataset, resolve, splits

    prof = get_profile("quick")
    data = dataset()
    cfg, _ = resolve(name, prof, 0, data)
    train_x, train_y, *_ = splits(data, cfg)
    model = build(name, **cfg.scale).train().to(memory_format=torch.channels_last)
    opt, _ = _make_optimizer(model, Recipe(epochs=1), 1)
    for xb, yb in DeviceLoader(train_x, train_y, 96, "cpu", train=True):
        loss = torch.nn.functional.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return _rss_peak_mib()


def _kernel_like() -> float:
    from nascore import zoo
    from nascore.profiles import get_profile

    prof = get_profile("quick")
    zoo.dataset()
    models = [zoo.get(n, prof, progress=False).model for n in prof.models if zoo.is_cached(n, prof)]
    return _rss_peak_mib(), len(models)


def _paper_step(name: str) -> dict:
    from nascore.models import build
    from nascore.profiles import get_profile

    scale = get_profile("paper").scale_for(name)
    model = build(name, **scale).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.025, momentum=0.9, weight_decay=5e-4)
    x, y = torch.rand(96, 3, 32, 32), torch.randint(0, 10, (96,))
    before = _rss_peak_mib()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return {"model": name, "scale": scale, "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
            "rss_before_mib": round(before), "rss_peak_mib": round(_rss_peak_mib()),
            "step_adds_mib": round(_rss_peak_mib() - before)}


def _in_fresh_process(fn, *args):
    with mp.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        return pool.apply(fn, args)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["quick", "paper"])
    ap.add_argument("--models", nargs="+", default=None)
    args = ap.parse_args()
    if args.what == "quick":
        names = args.models or ["wide_resnet50_2", "nasnet", "densenet121", "bit_r50x1"]
        workers = {n: round(_in_fresh_process(_quick_worker, n)) for n in names}
        kernel, n_models = _in_fresh_process(_kernel_like)
        n_workers = os.cpu_count() or 1
        out = {"worker_peak_mib": workers, "kernel_peak_mib": round(kernel), "kernel_models_loaded": n_models,
               "workers": n_workers, "worst_case_total_mib": round(kernel + n_workers * max(workers.values()))}
    else:
        names = args.models or ["darts", "wide_resnet50_2"]
        out = {"steps": [_in_fresh_process(_paper_step, n) for n in names]}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
