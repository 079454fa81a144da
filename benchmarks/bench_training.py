"""Training throughput: nascore's trainer vs a plain torchvision DataLoader loop.

Same model, same recipe (SGD + grad clipping, batch 96, crop/flip/cutout), same data (the
profile's CIFAR-10 subset). The baseline is the usual PyTorch loop: a ``Dataset`` applying
torchvision transforms per image (``RandomCrop(32, 4)``, ``RandomHorizontalFlip``, cutout on
the tensor), a ``DataLoader`` (shuffle, ``num_workers`` configurable), contiguous NCHW
tensors, fp32. The trainer keeps uint8 data on the device, augments whole batches there, uses
channels_last (and bf16 autocast on CUDA).

Each measurement trains ``--batches`` batches after ``--warmup`` batches; the script reports the
median images/second over ``--repeats`` alternating runs and the ratio trainer/baseline.

    python benchmarks/bench_training.py                       # quick-scale DARTS and ResNet-18, CPU
    python benchmarks/bench_training.py --models darts --scale C=36 layers=20 --device cuda
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch import nn

from nascore import provenance
from nascore._torchvision_compat import import_torchvision
from nascore.data import DeviceLoader
from nascore.models import build, scale_knobs
from nascore.profiles import get_profile
from nascore.train import Recipe, _autocast, _make_optimizer
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


class _TensorDataset(torch.utils.data.Dataset):
    def __init__(self, x_uint8, y, transform):
        self.x, self.y, self.transform = x_uint8, y, transform

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.transform(self.x[i].float().div(255)), self.y[i]


def _step_fn(model, opt, recipe, device, channels_last):
    criterion = nn.CrossEntropyLoss()
    params = list(model.parameters())

    def step(xb, yb):
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with _autocast(device):
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


def bench(name, scale, x, y, device, args):
    tv = import_torchvision()
    recipe = Recipe(epochs=1)
    results = {"baseline": [], "nascore": []}
    tf = tv.transforms.Compose([tv.transforms.RandomCrop(32, padding=4), tv.transforms.RandomHorizontalFlip(),
                                _Cutout(16)])
    base_loader = torch.utils.data.DataLoader(_TensorDataset(x, y, tf), batch_size=recipe.batch_size, shuffle=True,
                                              num_workers=args.workers, drop_last=True,
                                              persistent_workers=args.workers > 0, pin_memory=device.type == "cuda")
    dev_loader = DeviceLoader(x, y, recipe.batch_size, device, train=True, seed=0)
    for _ in range(args.repeats):
        for kind in ("baseline", "nascore"):
            torch.manual_seed(0)
            model = build(name, **scale).to(device).train()
            channels_last = kind == "nascore"
            if channels_last:
                model = model.to(memory_format=torch.channels_last)
            opt, _ = _make_optimizer(model, recipe)
            step = _step_fn(model, opt, recipe, device, channels_last)
            if kind == "baseline":
                with torch.autocast(device.type, enabled=False):
                    ips = _time(_cycle(base_loader), step, args.warmup, args.batches, device)
            else:
                ips = _time(_cycle(dev_loader), step, args.warmup, args.batches, device)
            results[kind].append(ips)
    med = {k: statistics.median(v) for k, v in results.items()}
    return {"model": name, "scale": scale, "baseline_img_s": round(med["baseline"], 1),
            "nascore_img_s": round(med["nascore"], 1), "ratio": round(med["nascore"] / med["baseline"], 2),
            "runs": {k: [round(v, 1) for v in vs] for k, vs in results.items()}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["darts", "resnet18"])
    parser.add_argument("--profile", default="quick", help="scale and data subset of this profile")
    parser.add_argument("--scale", nargs="*", default=[], help="override scale knobs, e.g. C=36 layers=20")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batches", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers of the baseline")
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
        print(f"{name:>10} {r['scale']}: baseline {r['baseline_img_s']:8.1f} img/s | nascore "
              f"{r['nascore_img_s']:8.1f} img/s | ratio {r['ratio']:.2f}  runs {r['runs']}", flush=True)
    out = {"device": provenance.device_name(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
           "commit": provenance.git_commit(), "profile": profile.name, "results": rows}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    print(json.dumps({k: v for k, v in out.items() if k != "results"}))


if __name__ == "__main__":
    main()
