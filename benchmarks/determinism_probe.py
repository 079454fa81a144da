"""What decides whether two machines of the same kind train bit-identical models?

A fresh-clone rerun of chapter 1 on another 2-core machine with the same pinned torch gave
different accuracies for every model, diverging from the first steps, while reruns on one machine
are bit-identical. Candidates: the JPEG decoder (checked separately by ``decode_fingerprint.py``:
Pillow 10.4 / 11.3 / 13.0 with libjpeg-turbo 3.0.3 / 3.1.1 / 3.2.0 decode the archive to identical
arrays) and the CPU's instruction set, which decides the kernels oneDNN and ATen dispatch to.

This probe trains the same model on the same batches for ``--steps`` steps in fresh
subprocesses, each with a different cap on the instruction set (``ATEN_CPU_CAPABILITY`` for
ATen's vectorised kernels, ``ONEDNN_MAX_CPU_ISA`` for oneDNN's convolutions/matmuls) — the way
an older CPU of the same family would run — and compares the loss trajectories and the weights'
SHA-256 with an uncapped run, and an uncapped run with a second uncapped run.

    OMP_NUM_THREADS=1 python benchmarks/determinism_probe.py --out results/determinism.json
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

SETTINGS = {
    "native": {},
    "native (again)": {},
    "ATen AVX2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "oneDNN AVX2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
    "oneDNN AVX-512 (no AMX)": {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"},
    "ATen AVX2 + oneDNN AVX2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
}

_CHILD = r"""
import hashlib, json, sys, torch
from nascore.data import DeviceLoader
from nascore.models import build
from nascore.models.predict import autocast
from nascore.train import Recipe, _make_optimizer
from nascore.zoo import dataset
torch.set_num_threads(1)
model_name, steps, precision = sys.argv[1], int(sys.argv[2]), sys.argv[3]
d = dataset()
loader = DeviceLoader(d.train_x[:128 * steps], d.train_y[:128 * steps], 128, "cpu", train=True, seed=0, cutout=0)
torch.manual_seed(0)
scale = {"width": 0.125} if model_name in ("resnet18", "densenet121") else {"C": 8, "layers": 5, "dropout": 0.0}
model = build(model_name, **scale).to(memory_format=torch.channels_last)
recipe = Recipe(epochs=1, batch_size=128, lr=0.2, nesterov=True, schedule="constant", cutout=0, precision=precision)
opt, _ = _make_optimizer(model, recipe, 1)
losses = []
for xb, yb in loader:
    with autocast("cpu", precision):
        loss = torch.nn.functional.cross_entropy(model(xb).float(), yb)
    opt.zero_grad(set_to_none=True); loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0); opt.step()
    losses.append(loss.item())
h = hashlib.sha256()
for k, v in sorted(model.state_dict().items()):
    h.update(k.encode()); h.update(v.detach().float().contiguous().numpy().tobytes())
print(json.dumps({"losses": losses, "weights_sha256": h.hexdigest(),
                  "capability": torch.backends.cpu.get_cpu_capability()}))
"""


def run(model: str, steps: int, precision: str, env_extra: dict) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **env_extra}
    out = subprocess.run([sys.executable, "-c", _CHILD, model, str(steps), precision], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["darts", "resnet18"])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--precision", nargs="+", default=["bf16", "fp32"])
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    rows = []
    for model in args.models:
        for precision in args.precision:
            ref = None
            for name, env in SETTINGS.items():
                r = run(model, args.steps, precision, env)
                ref = ref or r
                first_diff = next((i for i, (a, b) in enumerate(zip(ref["losses"], r["losses"])) if a != b), None)
                row = {"model": model, "precision": precision, "setting": name, "capability": r["capability"],
                       "weights_identical_to_native": r["weights_sha256"] == ref["weights_sha256"],
                       "first_differing_step": first_diff,
                       "final_loss": r["losses"][-1], "max_abs_loss_diff": max(abs(a - b) for a, b in
                                                                                zip(ref["losses"], r["losses"]))}
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.out:
        from nascore import provenance
        with open(args.out, "w") as f:
            json.dump({"rows": rows, "steps": args.steps, "provenance": provenance.collect("cpu")}, f, indent=2)


if __name__ == "__main__":
    main()
