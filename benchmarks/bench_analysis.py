"""Cost of the parameter-space loss contour: Li et al.'s all-parameter mode vs the artifact's
first-conv mode, in the same process.

The contour's main mode changed from "move the first conv weight along ±1 directions" (the
artifact, protocol §5.2; evaluated with a forward hook that stacks the grid points) to "move every
parameter along filter-normalised directions" (Li et al., NeurIPS 2018), where every grid point
needs its own full forward. This script measures what that costs per grid point, and which of the
two all-parameter methods (``loop``: one forward per grid point; ``vmap``: several grid points per
forward over stacked weights) is faster, which sets ``method="auto"``.

Reports milliseconds per grid point (median of ``--runs`` timed runs after one warm-up; the
methods run interleaved within each round) and the ratio to the first-conv ``stack`` mode.
Inputs are random images in [0,1] with random labels — timing only, no result is read from them.

Usage::

    python benchmarks/bench_analysis.py                 # quick-profile scale: DARTS C=8/5, ResNet-18 w=1/8
    python benchmarks/bench_analysis.py --images 20 --grid 5 --runs 5
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nascore.analysis import parameter_contour  # noqa: E402
from nascore.models import build  # noqa: E402

MODELS = {"darts": dict(C=8, layers=5), "resnet18": dict(width=1 / 8)}
VARIANTS = {  # label -> parameter_contour keywords
    "first-conv stack (old default)": dict(mode="first-conv", method="stack"),
    "filter loop": dict(mode="filter", method="loop"),
    "filter vmap": dict(mode="filter", method="vmap"),
}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=20, help="images averaged per grid point")
    ap.add_argument("--grid", type=int, default=5, help="grid points per axis (odd)")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per variant")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(args.images, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (args.images,), generator=g)
    points = args.grid ** 2
    print(f"threads={torch.get_num_threads()}, torch {torch.__version__}, {args.images} images, "
          f"{points} grid points, median of {args.runs} runs (ms per grid point)")
    for name in args.models:
        torch.manual_seed(0)
        model = build(name, **MODELS[name]).eval()
        n_par = sum(p.numel() for p in model.parameters())
        times = {k: [] for k in VARIANTS}
        for rnd in range(args.runs + 1):  # round 0 is the warm-up
            for label, kw in VARIANTS.items():
                t0 = time.perf_counter()
                parameter_contour(model, x, y, grid=args.grid, **kw)
                if rnd:
                    times[label].append((time.perf_counter() - t0) / points * 1e3)
        base = statistics.median(times["first-conv stack (old default)"])
        print(f"{name} ({n_par:,} parameters)")
        for label, ts in times.items():
            med = statistics.median(ts)
            print(f"  {label:<32} {med:8.1f} ms   x{med / base:5.2f} vs first-conv stack")


if __name__ == "__main__":
    main()
