"""Batched HopSkipJump against a per-sample loop, in the same process.

The per-sample loop is the same attack called on one image at a time (with that image's random
stream, ``sample_ids=[i]``): the structure of ART's implementation, where an image's
``num_eval`` gradient probes go through the model together but every binary-search and
step-size query is a separate forward pass of one image. The batched attack sends the queries of
all images of one step through the model together and drops finished images.

Reports model queries per second (the attacks' exact per-image query counts, summed, over the
wall time), the median of ``--runs`` timed runs after one warm-up, the two implementations
interleaved, the ratio batched / loop, and whether the results agree: per-image query counts,
adversarial images, and L2 distances. The two can differ only where a forward pass of a batch and
of a single image round differently (float non-associativity) right at the decision boundary.

Models (random weights, made to predict several classes, see :func:`darts_net`):

* ``darts`` (default) — the DARTS-V2 network at the quick scale (C=8, 5 cells): many small
  operations per forward pass, so a forward pass of one image costs far more than 1/N of a
  batch of N (measured: 11.8 ms for 1 image vs 5.5 ms per image in a batch of 79, 1 thread);
* ``small_cnn`` — two convolutions: compute-bound on the CPU, where batching cannot pay.

``--art`` runs an external cross-check instead: the Adversarial Robustness Toolbox's
``HopSkipJump`` (the artifact's implementation) on the same model and images, with the same
budgets. The random draws differ, so the comparison is of distributions: per-image L2 and L∞
distances (median ratio ours / ART, rank correlation), success counts and model queries. ART is
not a dependency of nascore; install it in a scratch environment that reuses this one's torch, e.g.::

    python -m venv /tmp/artvenv
    echo "$PWD/.venv/lib/python3.11/site-packages" > /tmp/artvenv/lib/python3.11/site-packages/nascore-venv.pth
    /tmp/artvenv/bin/pip install --no-deps -c constraints.txt adversarial-robustness-toolbox scikit-learn \
        joblib threadpoolctl six cloudpickle narwhals
    /tmp/artvenv/bin/python benchmarks/bench_hopskipjump.py --art --max-iter 10

Usage::

    python benchmarks/bench_hopskipjump.py                        # DARTS C=8/5 cells, 8 images, 5 iterations
    python benchmarks/bench_hopskipjump.py --model small_cnn --images 16 --max-iter 10
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nascore.attacks.membership import BoundaryResult, HopSkipJump  # noqa: E402
from nascore.models.base import Normalize  # noqa: E402


def small_cnn(classes: int = 10, width: int = 16, seed: int = 0) -> nn.Module:
    """Normalise → 2 conv layers → pool → linear; the head is scaled so that random images fall
    into several classes (HopSkipJump needs a misclassified starting image)."""
    torch.manual_seed(seed)
    net = nn.Sequential(Normalize(), nn.Conv2d(3, width, 3, padding=1), nn.ReLU(),
                        nn.Conv2d(width, 2 * width, 3, padding=1, stride=2), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(8 * width, classes))
    with torch.no_grad():
        net[-1].weight.mul_(20)
    return net.eval()


def darts_net(seed: int = 0, C: int = 8, layers: int = 5) -> nn.Module:
    """DARTS-V2 with random weights; BatchNorm statistics set on random images and the head
    scaled ×30 so that random images fall into all classes (a random-init network in eval mode
    predicts one class for everything, and HopSkipJump needs misclassified starting images)."""
    from nascore.models import build

    torch.manual_seed(seed)
    net = build("darts", C=C, layers=layers, dropout=0.0)
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    with torch.no_grad():
        net.train()
        net(torch.rand(256, 3, 32, 32, generator=torch.Generator().manual_seed(seed + 7)))
        [m for m in net.modules() if isinstance(m, nn.Linear)][-1].weight.mul_(30)
    return net.eval()


def loop(attack: HopSkipJump, model: nn.Module, x: torch.Tensor) -> BoundaryResult:
    return BoundaryResult.cat([attack(model, x[i:i + 1], sample_ids=[i]) for i in range(len(x))])


class _Counting(nn.Module):
    """Counts the image rows sent through ``inner`` (ART does not report queries); casts to float32
    (ART's binary search hands float64 arrays to the classifier)."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner, self.rows = inner, 0

    def forward(self, x):
        self.rows += x.shape[0]
        return self.inner(x.float())


def art_crosscheck(model: nn.Module, x: torch.Tensor, max_iter: int, seed: int) -> dict:
    """Ours vs ART's HopSkipJump (untargeted, L2, the artifact's budgets) on the same images."""
    import numpy as np
    from scipy.stats import spearmanr

    try:
        import art
        from art.attacks.evasion import HopSkipJump as ArtHSJ
        from art.estimators.classification import PyTorchClassifier
    except ImportError as err:
        raise SystemExit(f"--art needs the Adversarial Robustness Toolbox ({err}); see this script's docstring "
                         "for a scratch environment") from err
    counted = _Counting(model).eval()
    clf = PyTorchClassifier(model=counted, loss=nn.CrossEntropyLoss(), input_shape=tuple(x.shape[1:]),
                            nb_classes=10, clip_values=(0.0, 1.0))
    np.random.seed(seed)
    t0 = time.perf_counter()
    x_art = ArtHSJ(clf, targeted=False, norm=2, max_iter=max_iter, max_eval=100, init_eval=25, init_size=50,
                   verbose=False).generate(x=x.numpy(), y=None)
    art_s, art_rows = time.perf_counter() - t0, counted.rows
    ours = HopSkipJump(norm="l2", max_iter=max_iter, max_eval=100, init_eval=25, init_size=50, seed=seed)
    t0 = time.perf_counter()
    r = ours(model, x)
    ours_s = time.perf_counter() - t0
    d_art = torch.from_numpy(x_art) - x
    with torch.no_grad():
        label = model(x).argmax(1)
        art_adv = model(torch.from_numpy(x_art)).argmax(1) != label
        our_adv = model(r.x_adv).argmax(1) != label
    l2_art, linf_art = d_art.flatten(1).norm(dim=1), d_art.flatten(1).abs().amax(1)
    both = (art_adv & our_adv).numpy()
    ratio = lambda a, b: float(np.median(a[both] / b[both]))  # noqa: E731
    return {"art_version": art.__version__, "images": len(x), "max_iter": max_iter,
            "misclassified": {"ours": int(our_adv.sum()), "art": int(art_adv.sum())},
            "median_l2": {"ours": float(r.l2[our_adv].median()), "art": float(l2_art[art_adv].median())},
            "median_linf": {"ours": float(r.linf[our_adv].median()), "art": float(linf_art[art_adv].median())},
            "median_ratio_l2_ours_over_art": ratio(r.l2.numpy(), l2_art.numpy()),
            "median_ratio_linf_ours_over_art": ratio(r.linf.numpy(), linf_art.numpy()),
            "spearman_l2": float(spearmanr(r.l2.numpy()[both], l2_art.numpy()[both]).statistic),
            "spearman_linf": float(spearmanr(r.linf.numpy()[both], linf_art.numpy()[both]).statistic),
            "queries_per_image": {"ours": float(r.queries.double().mean()), "art": art_rows / len(x)},
            "seconds": {"ours": ours_s, "art": art_s}}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=("darts", "small_cnn"), default="darts")
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--max-iter", type=int, default=5)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-batch", type=int, default=None, help="rows per forward pass (default: the attack's)")
    ap.add_argument("--art", action="store_true", help="cross-check against ART's HopSkipJump instead")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = darts_net(seed=args.seed) if args.model == "darts" else small_cnn(seed=args.seed)
    x = torch.rand(args.images, 3, 32, 32, generator=torch.Generator().manual_seed(args.seed + 1))
    if args.art:
        out = {"model": args.model, **art_crosscheck(model, x, args.max_iter, args.seed)}
        print(json.dumps(out, indent=2))
        return out
    attack = HopSkipJump(norm="l2", max_iter=args.max_iter, max_eval=100, init_eval=25, init_size=50, seed=args.seed,
                         max_batch=args.max_batch)
    impls = {"batched": lambda: attack(model, x), "per-sample loop": lambda: loop(attack, model, x)}
    results, times = {}, {k: [] for k in impls}
    for name, fn in impls.items():  # warm-up
        results[name] = fn()
    for _ in range(args.runs):
        for name, fn in impls.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    b, s = results["batched"], results["per-sample loop"]
    queries = int(b.queries.sum())
    rate = {k: queries / statistics.median(v) for k, v in times.items()}
    same_image = (b.x_adv == s.x_adv).flatten(1).all(dim=1)
    rel = ((b.l2 - s.l2).abs() / s.l2.clamp_min(1e-12)).max()
    out = {"model": args.model, "images": args.images, "max_batch": attack.max_batch or "default", "max_iter": args.max_iter, "threads": args.threads, "runs": args.runs,
           "queries_total": queries, "queries_equal": bool(torch.equal(b.queries, s.queries)),
           "found_start": int(b.success.sum()),
           "median_seconds": {k: statistics.median(v) for k, v in times.items()},
           "queries_per_second": rate, "ratio_batched_over_loop": rate["batched"] / rate["per-sample loop"],
           "identical_images": f"{int(same_image.sum())}/{len(same_image)}",
           "max_relative_l2_difference": float(rel), "median_l2": float(b.l2.median())}
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
