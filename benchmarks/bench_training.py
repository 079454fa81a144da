"""Training throughput: nascore's trainer vs plain torchvision DataLoader loops.

Same model, same recipe (SGD + grad clipping, batch 96, crop/flip/cutout), same data (the
profile's CIFAR-10 subset). Two baselines, both the usual PyTorch loop with contiguous NCHW
fp32 tensors:

* ``darts_pil`` — the DARTS reference pipeline (quark0/darts ``train.py``): PIL images,
  ``RandomCrop(32, 4)``, ``RandomHorizontalFlip``, ``ToTensor``, ``Normalize``, ``Cutout(16)`` per
  image in a ``DataLoader`` with 2 workers (its default), pinned memory;
* ``tensor`` — a leaner variant: uint8 tensors, the same transforms on tensors, no workers.

The trainer keeps uint8 data on the device, augments whole batches there, feeds channels_last
batches (and uses bf16 autocast on CUDA).

On CPU a third number, ``zoo_parallel``, is the combined throughput of ``--parallel`` trainer
processes with one thread each, running at the same time — how :func:`nascore.zoo.train_many`
trains a profile's zoo. Its ratio is against the best single-process number above.

Each measurement trains ``--batches`` batches after ``--warmup`` batches; the script reports the
median images/second over ``--repeats`` alternating runs and the ratio trainer/baseline.

    python benchmarks/bench_training.py                       # quick-scale DARTS and ResNet-18, CPU
    python benchmarks/bench_training.py --models darts --scale C=36 layers=20 --device cuda
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
from torch import nn

from nascore import provenance
from nascore._torchvision_compat import import_torchvision
from nascore.data import DeviceLoader
from nascore.models import build, scale_knobs
from nascore.profiles import get_profile
from nascore.models.predict import autocast
from nascore.train import Recipe, _make_optimizer
from nascore.zoo import dataset


class _Cutout:
    def __init__(self, size: int):
        self.size = size

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[1:]
        cy, cx = torch.randint(h, ()).item(), torch.randint(w, ()).item()
        y0, y1 = max(0, cy - self.size // 2), min(h, cy + self.size - self.size // 2)
        x0, x1 = max(0, cx - self.size // 2), min(w, cx + self.size - self.size // 2)
        img = img.clone()
        img[:, y0:y1, x0:x1] = 0
        return img


class _PILDataset(torch.utils.data.Dataset):
    """CIFAR-10 as torchvision's ``CIFAR10`` dataset serves it: a PIL image per item."""

    def __init__(self, x_uint8, y, transform):
        self.x = x_uint8.permute(0, 2, 3, 1).contiguous().numpy()  # NHWC uint8, like CIFAR10.data
        self.y, self.transform = y.tolist(), transform

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        from PIL import Image
        return self.transform(Image.fromarray(self.x[i])), self.y[i]


class _TensorDataset(torch.utils.data.Dataset):
    def __init__(self, x_uint8, y, transform):
        self.x, self.y, self.transform = x_uint8, y, transform

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.transform(self.x[i].float().div(255)), self.y[i]


def _step_fn(model, opt, recipe, device, channels_last):
    """One SGD step of the recipe (the loop body of :func:`nascore.train.train`)."""
    criterion = nn.CrossEntropyLoss()
    params = list(model.parameters())

    def step(xb, yb):
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with autocast(device, recipe.precision):
            loss = criterion(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, recipe.grad_clip)
        opt.step()
    return step


def _time(loader_iter, step, warmup, batches, device):
    n = 0
    for i, (xb, yb) in enumerate(loader_iter):
        if i == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        if i >= warmup:
            n += len(yb)
        xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        step(xb, yb)
        if i + 1 >= warmup + batches:
            break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t0)


def _cycle(loader):
    while True:
        yield from loader


def _baseline_loaders(x, y, batch_size, device, workers):
    tv = import_torchvision()
    T = tv.transforms
    from nascore.models.base import CIFAR10_MEAN, CIFAR10_STD
    darts_tf = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                          T.Normalize(CIFAR10_MEAN, CIFAR10_STD), _Cutout(16)])
    tensor_tf = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), _Cutout(16)])
    kw = dict(batch_size=batch_size, shuffle=True, drop_last=True, pin_memory=device.type == "cuda")
    return {
        "darts_pil": torch.utils.data.DataLoader(_PILDataset(x, y, darts_tf), num_workers=2,
                                                 persistent_workers=True, **kw),
        "tensor": torch.utils.data.DataLoader(_TensorDataset(x, y, tensor_tf), num_workers=workers,
                                              persistent_workers=workers > 0, **kw),
    }


def _single_thread_worker(name, scale, x, y, warmup, batches, barrier):
    torch.set_num_threads(1)
    recipe = Recipe(epochs=1)
    device = torch.device("cpu")
    torch.manual_seed(0)
    model = build(name, **scale).train().to(memory_format=torch.channels_last)
    opt, _ = _make_optimizer(model, recipe, 1)
    step = _step_fn(model, opt, recipe, device, True)
    loader = DeviceLoader(x, y, recipe.batch_size, device, train=True, seed=0)
    barrier.wait()  # start the timed work together
    return _time(_cycle(loader), step, warmup, batches, device)


def bench_parallel(name, scale, x, y, args) -> float:
    """Combined img/s of ``args.parallel`` single-threaded trainer processes running at once."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("spawn")
    manager = ctx.Manager()
    barrier = manager.Barrier(args.parallel)
    with ProcessPoolExecutor(args.parallel, mp_context=ctx) as pool:
        futures = [pool.submit(_single_thread_worker, name, scale, x, y, args.warmup, args.batches, barrier)
                   for _ in range(args.parallel)]
        total = sum(f.result() for f in futures)
    manager.shutdown()
    return total


def bench(name, scale, x, y, device, args):
    recipe = Recipe(epochs=1)
    loaders = _baseline_loaders(x, y, recipe.batch_size, device, args.workers)
    loaders["nascore"] = DeviceLoader(x, y, recipe.batch_size, device, train=True, seed=0)
    results = {k: [] for k in loaders}
    for _ in range(args.repeats):
        for kind, loader in loaders.items():
            torch.manual_seed(0)
            model = build(name, **scale).to(device).train()
            channels_last = kind == "nascore"
            if channels_last:
                model = model.to(memory_format=torch.channels_last)
            opt, _ = _make_optimizer(model, recipe, 1)
            step = _step_fn(model, opt, recipe, device, channels_last)
            results[kind].append(_time(_cycle(loader), step, args.warmup, args.batches, device))
        if device.type == "cpu" and args.parallel > 1:
            results.setdefault("zoo_parallel", []).append(bench_parallel(name, scale, x, y, args))
    med = {k: statistics.median(v) for k, v in results.items()}
    row = {"model": name, "scale": scale, **{f"{k}_img_s": round(v, 1) for k, v in med.items()}}
    for k in loaders:
        if k != "nascore":
            row[f"ratio_vs_{k}"] = round(med["nascore"] / med[k], 2)
            if "zoo_parallel" in med:
                row[f"parallel_ratio_vs_{k}"] = round(med["zoo_parallel"] / med[k], 2)
    row["runs"] = {k: [round(v, 1) for v in vs] for k, vs in results.items()}
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["darts", "resnet18"])
    parser.add_argument("--profile", default="quick", help="scale and data subset of this profile")
    parser.add_argument("--scale", nargs="*", default=[], help="override scale knobs, e.g. C=36 layers=20")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batches", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers of the tensor baseline")
    parser.add_argument("--parallel", type=int, default=os.cpu_count() or 1,
                        help="single-threaded trainer processes for the zoo_parallel number (CPU; 1 = skip)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    profile = get_profile(args.profile)
    device = torch.device(args.device)
    data = dataset()
    x, y = data.train_x[:4000], data.train_y[:4000]
    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.scale)}
    rows = []
    for name in args.models:
        scale = {**profile.scale_for(name), **{k: v for k, v in overrides.items() if k in scale_knobs(name)}}
        rows.append(bench(name, scale, x, y, device, args))
        r = rows[-1]
        print(f"{name:>10} {r['scale']}: darts_pil {r['darts_pil_img_s']:8.1f} | tensor {r['tensor_img_s']:8.1f} | "
              f"nascore {r['nascore_img_s']:8.1f} img/s | ratio vs darts_pil {r['ratio_vs_darts_pil']:.2f}, "
              f"vs tensor {r['ratio_vs_tensor']:.2f}", flush=True)
        if "zoo_parallel_img_s" in r:
            print(f"{'':>10} zoo_parallel ({args.parallel} x 1 thread) {r['zoo_parallel_img_s']:8.1f} img/s | ratio vs "
                  f"darts_pil {r['parallel_ratio_vs_darts_pil']:.2f}, vs tensor {r['parallel_ratio_vs_tensor']:.2f}",
                  flush=True)
    out = {"device": provenance.device_name(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
           "commit": provenance.git_commit(), "profile": profile.name, "results": rows}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    print(json.dumps({k: v for k, v in out.items() if k != "results"}))


if __name__ == "__main__":
    main()
