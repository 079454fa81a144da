"""What does the strided-1x1 work-around (``nascore._cpu_workarounds``) cost per training step, on each ISA?

One training step (forward, backward, SGD) of a quick-scale model, one thread, fp32 channels_last, batch 64,
with the work-around (every strided 1x1 convolution computed on the subsampled input) and without it (the
plain ``nn.Conv2d``), alternating, median of ``--rounds`` timings of ``--steps`` steps each; the ratio is
taken within one process. Each instruction-set setting runs in a fresh subprocess. Without the
work-around, oneDNN capped to AVX2 aborts on layers with 2-7 input channels (ResNet-18 at width 1/16,
ResNet-56 at 3/8), so there only the work-around's time is reported.

    python benchmarks/bench_cpu_workarounds.py --out results/pilot/cpu_workarounds.csv
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys

from nascore.provenance import ISA_SETTINGS as SETTINGS, env_with_isa_caps

MODELS = {"resnet18 x1/8": ("resnet18", {"width": 1 / 8}), "resnet18 x1/16": ("resnet18", {"width": 1 / 16}),
          "resnet56 x3/8": ("resnet56", {"width": 3 / 8}), "darts C=8/5": ("darts", {"C": 8, "layers": 5})}

_CHILD = r"""
import json, statistics, sys, time, torch
from torch import nn
from nascore._cpu_workarounds import SubsampledPointwiseConv2d, restore_strided_pointwise_conv
from nascore.models import build
torch.set_num_threads(1)
name, scale, rounds, steps, plain_ok = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
def make(patched):
    torch.manual_seed(0)
    m = build(name, **scale)
    if not patched:
        restore_strided_pointwise_conv(m)
    m = m.to(memory_format=torch.channels_last).train()
    return m, torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
x = torch.rand(64, 3, 32, 32).contiguous(memory_format=torch.channels_last)
y = torch.randint(0, 10, (64,))
def time_steps(m, opt):
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = nn.functional.cross_entropy(m(x), y); opt.zero_grad(); loss.backward(); opt.step()
    return (time.perf_counter() - t0) / steps
variants = {"work-around": make(True)}
if plain_ok:
    variants["plain"] = make(False)
for m, opt in variants.values():
    time_steps(m, opt)  # warm-up
times = {k: [] for k in variants}
for _ in range(rounds):
    for k, (m, opt) in variants.items():
        times[k].append(time_steps(m, opt))
n = sum(type(mod) is SubsampledPointwiseConv2d for mod in variants["work-around"][0].modules())
print(json.dumps({"layers": n, **{f"{k}_ms": 1000 * statistics.median(v) for k, v in times.items()}}))
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--out", default="results/pilot/cpu_workarounds.csv")
    args = ap.parse_args(argv)
    rows = []
    for setting, env in SETTINGS.items():
        for label, (name, scale) in MODELS.items():
            crashes = setting == "oneDNN AVX2" and label in ("resnet18 x1/16", "resnet56 x3/8")
            out = subprocess.run([sys.executable, "-c", _CHILD, name, json.dumps(scale), str(args.rounds),
                                  str(args.steps), "0" if crashes else "1"],
                                 env={**env_with_isa_caps(env), "OMP_NUM_THREADS": "1"}, capture_output=True,
                                 text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            plain = r.get("plain_ms")
            row = {"setting": setting, "model": label, "layers_rewritten": r["layers"],
                   "step_ms_work_around": round(r["work-around_ms"], 2),
                   "step_ms_plain": round(plain, 2) if plain else "crashes",
                   "ratio": round(r["work-around_ms"] / plain, 3) if plain else ""}
            rows.append(row)
            print(json.dumps(row), flush=True)
    with open(args.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


if __name__ == "__main__":
    main()
