"""How far apart do quick-scale accuracies land on other instruction sets, next to the seed spread?

The README's determinism section shows that the CPU's vector instruction set decides the floating-point
results from the first steps. This script measures what that does to a finished model: it trains
models at the ``quick`` profile (one pass over the training set) with several seeds, each in a fresh
subprocess with the instruction-set cap an older or other CPU would impose (``ATEN_CPU_CAPABILITY``
for ATen's kernels, ``ONEDNN_MAX_CPU_ISA`` for oneDNN's convolutions), and a cache of its own per
setting (the model cache's key does not hold the ISA), and writes one row per (model, seed, setting):
test accuracy on the full 10,000-image test set, the weights' SHA-256 and the CPU-seconds.

    python benchmarks/cross_isa_spread.py --workers 2 --cache /tmp/isa_cache   # resumes: done rows are kept

Rows are appended to ``results/pilot/cross_isa.csv`` as they finish (in job order), so an interrupted run
resumes where it stopped; with ``--cache`` a trained model is also reused.
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from nascore.provenance import ISA_SETTINGS as SETTINGS, env_with_isa_caps

FIELDS = ["model", "family", "seed", "setting", "test_acc", "weights_sha256", "cpu_seconds", "capability", "cpu"]

_CHILD = r"""
import hashlib, json, resource, sys, torch
from nascore import zoo
from nascore.models import family
from nascore.provenance import collect
name, seed = sys.argv[1], int(sys.argv[2])
m = zoo.get(name, "quick", seed=seed, device="cpu", progress=False)
h = hashlib.sha256()
for k, v in sorted(m.model.state_dict().items()):
    h.update(k.encode()); h.update(v.detach().float().contiguous().numpy().tobytes())
usage = resource.getrusage(resource.RUSAGE_SELF)
prov = collect("cpu")
print(json.dumps({"model": name, "family": family(name), "seed": seed,
                  "test_acc": round(100 * m.record["metrics"]["test_acc"], 2), "weights_sha256": h.hexdigest()[:16],
                  "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
                  "capability": torch.backends.cpu.get_cpu_capability(),
                  "cpu": prov.get("cpu", {}).get("model", "") if isinstance(prov.get("cpu"), dict) else prov.get("cpu", "")}))
"""


def train_one(model: str, seed: int, setting: str, cache_root: Path) -> dict:
    env = {**env_with_isa_caps(SETTINGS[setting]), "OMP_NUM_THREADS": "1",
           "NASCORE_CACHE": str(cache_root / setting.replace(" ", "_"))}
    out = subprocess.run([sys.executable, "-c", _CHILD, model, str(seed)], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{model} seed {seed} under {setting!r} exited with {out.returncode}:\n{out.stderr[-3000:]}")
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "setting": setting}


def markdown_table(path: Path) -> str:
    """One row per (model, seed): accuracy under each setting and the largest difference between
    settings, next to the largest difference between that model's seeds under one setting."""
    import pandas as pd

    df = pd.read_csv(path)
    settings = [s for s in SETTINGS if s in set(df.setting)]
    lines = ["| model | seed | " + " | ".join(settings) + " | ISA range (pp) | seed range, same ISA (pp) |",
             "|---|---|" + "---|" * (len(settings) + 2)]
    for model, g in df.groupby("model", sort=False):
        wide = g.pivot_table(index="seed", columns="setting", values="test_acc").reindex(columns=settings)
        seed_range = (wide.max() - wide.min())[wide.count() > 1]
        for seed, row in wide.iterrows():
            cells = [f"{v:.2f}" if v == v else "—" for v in row]
            isa = row.max() - row.min() if row.count() > 1 else float("nan")
            lines.append(f"| {model} | {seed} | " + " | ".join(cells) + (f" | {isa:.2f} | " if isa == isa else " | — | ")
                         + (f"{seed_range.min():.2f}–{seed_range.max():.2f}" if len(seed_range) else "—") + " |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["darts", "snas_mild", "resnet18", "vgg13_bn"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--out", default="results/pilot/cross_isa.csv")
    ap.add_argument("--cache", default=None, help="model cache root (default: a temporary folder)")
    ap.add_argument("--workers", type=int, default=1, help="trainings at once (each one thread)")
    ap.add_argument("--table", action="store_true", help="print the README's markdown table from --out; train nothing")
    args = ap.parse_args(argv)
    if args.table:
        print(markdown_table(Path(args.out)))
        return
    out = Path(args.out)
    done = set()
    if out.exists():
        with out.open() as f:
            done = {(r["model"], int(r["seed"]), r["setting"]) for r in csv.DictReader(f)}
    cache_root = Path(args.cache) if args.cache else Path(tempfile.mkdtemp(prefix="cross_isa_"))
    jobs = [(m, s, st) for st in args.settings for s in args.seeds for m in args.models if (m, s, st) not in done]
    if args.workers < 1:
        raise SystemExit(f"--workers must be >= 1, got {args.workers}")
    with ThreadPoolExecutor(args.workers) as pool:
        for row in pool.map(lambda job: train_one(*job, cache_root), jobs):
            new = not out.exists()
            with out.open("a", newline="") as f:
                w = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
                if new:
                    w.writeheader()
                w.writerow(row)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
