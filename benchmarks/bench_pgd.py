"""Throughput of nascore's PGD against a plain batched PGD loop, in the same process.

Reports images×steps per second (nominal work: ``N · steps`` / wall time), the median of
``--runs`` timed runs after one warm-up, runs of the two implementations interleaved, and the
ratio ours / reference, in two settings:

* ``rare-stop``: untargeted L∞, eps 1/255 (``--rare-eps``), step eps/4, 7 steps — early stopping rarely fires,
  so the ratio measures the bookkeeping overhead of per-sample early stopping;
* ``often-stop``: the artifact's targeted setting (:func:`nascore.attacks.artifact_pgd`: eps 8/255,
  step 2/255, 7 steps, least-likely target, stop at p > 0.99 and argmax == target) on an easily
  fooled model — finished samples leave the batch, which is where the speed-up comes from.

The reference is the straightforward loop: the whole batch for all 7 steps (forward + backward),
then one forward pass to evaluate the same success rule, so both produce the same information.

Usage::

    python benchmarks/bench_pgd.py                      # self-contained small CNN, 32x32
    python benchmarks/bench_pgd.py --model nascore.models:build --model-kwargs '{"name": "..."}'
    python benchmarks/bench_pgd.py --zoo darts --profile quick   # a trained zoo model, real test images

``--model`` is ``module:callable``; the callable returns an ``nn.Module`` mapping [0,1] images
``(N, 3, H, W)`` to logits. In ``often-stop`` the default model is replaced by an easily fooled
copy (:func:`make_fragile`: BatchNorm recalibrated on the batch, head scaled by
``--fragile-scale``); a ``--model`` is used as is in both settings.
"""
from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nascore.attacks import PGD, artifact_pgd, asr, mean_iterations  # noqa: E402
from nascore.models.base import Normalize  # noqa: E402


def small_cnn(classes: int = 10, width: int = 32) -> nn.Module:
    """Self-contained default: normalise → 3 conv+BN layers (w, 2w, 4w; two stride-2) → pool →
    BN → linear. Random init: it predicts (nearly) one class for all inputs and resists small
    untargeted budgets, which is what the rare-stop setting wants."""
    w = width
    return nn.Sequential(
        Normalize(),
        nn.Conv2d(3, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(),
        nn.Conv2d(w, 2 * w, 3, padding=1, stride=2), nn.BatchNorm2d(2 * w), nn.ReLU(),
        nn.Conv2d(2 * w, 4 * w, 3, padding=1, stride=2), nn.BatchNorm2d(4 * w), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.BatchNorm1d(4 * w), nn.Linear(4 * w, classes),
    )


def make_fragile(model: nn.Module, x: torch.Tensor, head_scale: float) -> nn.Module:
    """An easily fooled copy of the random-init default model: BatchNorm statistics recalibrated
    on ``x`` (so predictions vary across images) and the head scaled by ``head_scale``."""
    m = small_cnn().to(x.device)
    m.load_state_dict(model.state_dict())
    for mod in m.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            mod.reset_running_stats()
            mod.momentum = None          # cumulative average = the statistics of x
    m.train()
    with torch.no_grad():
        m(x)
        m[-1].weight.mul_(head_scale)
    return m.eval()


def load_factory(spec: str):
    if ":" not in spec:
        raise SystemExit(f"--model must be 'module:callable', got {spec!r}")
    mod, name = spec.split(":", 1)
    return getattr(importlib.import_module(mod), name)


def reference_pgd(model, x, y, eps, alpha, steps, targeted, target, success_fn):
    """Plain batched PGD: all samples, all steps, then one success evaluation."""
    x0 = x
    xa = x.clone()
    label = target if targeted else y
    sign = -1.0 if targeted else 1.0
    for _ in range(steps):
        xg = xa.detach().requires_grad_(True)
        loss = F.cross_entropy(model(xg), label, reduction="sum")
        (g,) = torch.autograd.grad(loss, xg)
        with torch.no_grad():
            xa = xa + sign * alpha * g.sign()
            xa = (x0 + (xa - x0).clamp(-eps, eps)).clamp(0, 1)
    with torch.no_grad():
        success = success_fn(model(xa), y, target)
    return xa, success


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="module:callable returning the model (default: small CNN)")
    ap.add_argument("--model-kwargs", default="{}", help="JSON kwargs for --model")
    ap.add_argument("--zoo", default=None, help="a trained zoo model (nascore.zoo.get) attacked on its "
                    "first correctly classified test images; used as is in both settings")
    ap.add_argument("--profile", default="quick", help="profile of the --zoo model")
    ap.add_argument("--n", type=int, default=128, help="images per batch")
    ap.add_argument("--size", type=int, default=32, help="image side (H = W)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (CPU)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rare-eps", type=float, default=1 / 255,
                    help="eps of the rare-stop setting (step eps/4, 7 steps, untargeted)")
    ap.add_argument("--fragile-scale", type=float, default=3.0,
                    help="head weight scale for the default model in the often-stop setting")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    torch.manual_seed(args.seed)
    x = None
    if args.zoo is not None:
        from nascore import zoo
        from nascore.findings.evasion import eval_images
        from nascore.profiles import get_profile

        entry = zoo.get(args.zoo, args.profile, progress=False)
        model, factory_name = entry.model, f"zoo {args.zoo} ({args.profile}, trained)"
        x, _ = eval_images(entry, get_profile(args.profile), zoo.dataset(), args.n)
        x = x.float().div(255).to(dev)
    elif args.model is None:
        model = small_cnn()
        factory_name = "small_cnn (default, random init)"
    else:
        model = load_factory(args.model)(**json.loads(args.model_kwargs))
        factory_name = args.model
    model = model.to(dev).eval()
    if x is None:
        g = torch.Generator().manual_seed(args.seed)
        x = torch.rand(args.n, 3, args.size, args.size, generator=g).to(dev)

    rare = PGD(norm="linf", eps=args.rare_eps, alpha=args.rare_eps / 4, steps=7)
    often = artifact_pgd()
    settings = [("rare-stop", model, rare), ("often-stop", None, often)]
    rows = []
    for name, m, attack in settings:
        if m is None:                   # an easily fooled copy for the artifact setting
            m = make_fragile(model, x, args.fragile_scale) if args.model is None and args.zoo is None else model
        with torch.no_grad():
            yy = m(x).argmax(1)
            target = m(x).argmin(1) if attack.targeted else None
        succ_fn = attack.success_fn

        def ours():
            return attack(m, x, yy)

        def ref():
            return reference_pgd(m, x, yy, attack.eps, attack.alpha, attack.steps,
                                 attack.targeted, target, succ_fn)

        ours(), ref()                   # warm-up
        t_ours, t_ref = [], []
        for _ in range(args.runs):      # interleaved to share the machine's drift
            dt, res = timed(ours)
            t_ours.append(dt)
            dt, (x_ref, s_ref) = timed(ref)
            t_ref.append(dt)
        late = ~res.success | (res.iterations == attack.steps)
        max_diff = float((res.x_adv[late] - x_ref[late]).abs().max()) if late.any() else 0.0
        work = args.n * attack.steps
        rows.append(dict(setting=name, asr=asr(res), ref_asr=float(s_ref.float().mean()),
                         mean_iter=mean_iterations(res),
                         ref=work / statistics.median(t_ref), ours=work / statistics.median(t_ours),
                         max_diff=max_diff))

    print(f"model: {factory_name}; N={args.n}, {args.size}x{args.size}, device={dev}, "
          f"threads={torch.get_num_threads()}, torch {torch.__version__}, median of {args.runs}")
    print(f"{'setting':<11} {'ASR':>6} {'ref ASR':>7} {'mean it':>7} {'ref img*step/s':>15} "
          f"{'ours img*step/s':>16} {'ratio':>6} {'max|Δ| unfinished':>18}")
    for r in rows:
        print(f"{r['setting']:<11} {r['asr']:>6.3f} {r['ref_asr']:>7.3f} {r['mean_iter']:>7.2f} "
              f"{r['ref']:>15.1f} {r['ours']:>16.1f} {r['ours'] / r['ref']:>6.2f} {r['max_diff']:>18.2e}")
    print("mean it: failures counted as 2*steps (artifact convention); ratio > 1: ours faster")


if __name__ == "__main__":
    main()
