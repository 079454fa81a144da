"""IC-only training of a multi-exit network (protocol ``deepsloth.md`` §1.4, fact 2).

DeepSloth converts a trained CNN into an SDN, **freezes the backbone and its final head** and
trains only the internal classifiers: Adam (lr 1e-3, weight decay as the CNN's: 5e-4 for VGG,
1e-4 for ResNet/MobileNet), 25 epochs with the learning rate ×0.1 at epoch 15, the loss the
unweighted sum of the ICs' cross-entropies (the final exit excluded), crop + flip augmentation.
:class:`ICRecipe` holds these values; profiles shorten ``epochs`` (the milestone stays at 60 %
of the optimisation steps).

**Feature reuse.** The backbone is frozen and runs in eval mode, so an IC's input is a fixed
function of the (augmented) image, and the IC head's pooling is parameter-free
(:meth:`~.heads.ICHead.reduce`). The pooled features of one augmentation draw can therefore be
computed once and reused for several passes (``reuse``): with ``reuse = R`` every draw of the
training set is seen ``R`` times by the ICs but costs one backbone forward pass. ``reuse = 1`` is
the authors' schedule (a fresh augmentation every epoch). Features are computed in chunks that
fit in ``cache_mb`` of memory, stored as ``cache_dtype`` (bfloat16 halves the memory); with
``reuse > 1`` a chunk's passes run back to back (with one chunk covering the whole training set
this is exactly ``R`` epochs on one draw). ``benchmarks/bench_early_exit.py`` measures what
reuse buys: 2.6–4.7× less IC-training time for 10 passes at width 1/8.

Deviation, stated: the authors' IC-only loop put the whole SDN in training mode, so the frozen
backbone's BatchNorm layers used batch statistics and their running averages drifted while the
ICs trained; here the backbone stays in eval mode and the final exit is exactly the trained CNN.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..data import augment
from ..io import atomic_write


CACHE_DTYPES = ("float32", "bfloat16")


@dataclass(frozen=True)
class ICRecipe:
    """Hyper-parameters of IC-only training (defaults: the protocol's, §1.4)."""

    epochs: int = 25           # passes over the training set seen by the ICs
    reuse: int = 1             # passes per augmentation draw (its features computed once)
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float | None = None  # None: the backbone's ``weight_decay`` attribute, else 5e-4
    milestone: float = 0.6     # lr × gamma after this fraction of the steps (epoch 15 of 25)
    gamma: float = 0.1
    crop_padding: int = 4
    flip: bool = True
    cache_mb: int = 768        # memory for one chunk of cached features
    cache_dtype: str = "float32"  # "float32" or "bfloat16" (halves the memory of reused features)
    train_images: int | None = None  # a class-balanced subset of the training set; None = all
    feature_batch: int = 500   # images per backbone forward pass when computing features

    def __post_init__(self):
        checks = {"epochs": self.epochs >= 1, "reuse": 1 <= self.reuse <= self.epochs,
                  "epochs % reuse": self.epochs % self.reuse == 0, "batch_size": self.batch_size >= 1,
                  "lr": self.lr > 0, "weight_decay": self.weight_decay is None or self.weight_decay >= 0,
                  "milestone": 0 < self.milestone <= 1, "gamma": 0 < self.gamma <= 1,
                  "crop_padding": 0 <= self.crop_padding <= 16, "cache_mb": self.cache_mb >= 1,
                  "feature_batch": self.feature_batch >= 1,
                  "train_images": self.train_images is None or self.train_images >= 10,
                  "cache_dtype": self.cache_dtype in CACHE_DTYPES}
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid IC recipe ({', '.join(bad)}): {self}; need epochs >= 1, 1 <= reuse <= epochs "
                             "with epochs a multiple of reuse, batch_size >= 1, lr > 0, weight_decay >= 0, "
                             "0 < milestone <= 1, 0 < gamma <= 1, 0 <= crop_padding <= 16, cache_mb >= 1, "
                             f"train_images >= 10 or None, cache_dtype in {CACHE_DTYPES}")

    @property
    def draws(self) -> int:
        return self.epochs // self.reuse

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _bytes_per_image(sdn, dtype: str = "float32") -> int:
    return (4 if dtype == "float32" else 2) * sum(math.prod(ic.reduced_shape) for ic in sdn.ics)


def chunk_size(sdn, recipe: ICRecipe, n: int) -> int:
    """Images per feature chunk: the fewest equal chunks whose features fit in
    ``recipe.cache_mb`` (at least one batch per chunk)."""
    fit = max(1, int(recipe.cache_mb * 2**20 // max(1, _bytes_per_image(sdn, recipe.cache_dtype))))
    chunks = math.ceil(n / fit)
    return max(recipe.batch_size, math.ceil(n / chunks))


def training_subset(train_y: torch.Tensor, recipe: ICRecipe, seed: int) -> torch.Tensor | None:
    """Indices of the class-balanced subset of ``recipe.train_images`` images, or ``None`` (all)."""
    if recipe.train_images is None or recipe.train_images >= len(train_y):
        return None
    from ..data import balanced_subset

    classes = int(train_y.max()) + 1
    return balanced_subset(train_y, recipe.train_images // classes, seed, num_classes=classes)


@torch.no_grad()
def reduced_features(sdn, x: torch.Tensor, batch: int = 500, dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    """Every IC's reduced (pooled) features of float images ``x`` ``(n, 3, H, W)`` on the SDN's
    device: a list of ``K`` tensors ``(n, *ic.reduced_shape)`` stored as ``dtype``. The backbone
    runs in eval mode."""
    sdn.backbone.eval()
    parts: list[list[torch.Tensor]] = [[] for _ in sdn.ics]
    for i in range(0, x.shape[0], batch):
        for k, tap in sdn.iter_taps(x[i:i + batch]):
            if k < sdn.num_ics:
                parts[k].append(sdn.ics[k].reduce(tap).to(dtype))
    return [torch.cat(p) for p in parts]


def _lr_factor(recipe: ICRecipe, total_steps: int):
    boundary = math.ceil(recipe.milestone * total_steps)
    return lambda step: 1.0 if step < boundary else recipe.gamma


def fit_ics(sdn, train_x: torch.Tensor, train_y: torch.Tensor, recipe: ICRecipe = ICRecipe(), seed: int = 0,
            device: torch.device | str | None = None, checkpoint: str | Path | None = None,
            progress: bool = False, stop_after_draw: int | None = None) -> list[dict]:
    """Train ``sdn``'s ICs in place (backbone frozen); returns one history row per augmentation draw.

    ``train_x`` uint8 ``(N, 3, 32, 32)`` (on any device), ``train_y`` int64 ``(N,)``. Rows:
    ``draw`` (1-based), ``passes`` (cumulative passes over the data), ``loss`` (mean summed IC
    cross-entropy of the draw), ``ic_acc`` (mean training accuracy of the ICs), ``feature_seconds``
    (backbone forward + pooling), ``ic_seconds`` (IC updates), ``lr``. Resumable per draw with
    ``checkpoint``; same seed on the same machine ⇒ same weights. ``stop_after_draw`` stops (as if
    interrupted) once that many draws are done; for tests.
    """
    if train_x.dtype != torch.uint8 or train_x.dim() != 4 or train_y.shape != (train_x.shape[0],):
        raise ValueError(f"expected uint8 images (N,3,H,W) and labels (N,), got {train_x.dtype} "
                         f"{tuple(train_x.shape)} and {tuple(train_y.shape)}")
    device = torch.device(device) if device is not None else next(sdn.parameters()).device
    subset = training_subset(train_y, recipe, seed)
    if subset is not None:
        train_x, train_y = train_x[subset], train_y[subset]
    sdn.to(device)
    params = [p for ic in sdn.ics for p in ic.parameters()]
    wd = recipe.weight_decay if recipe.weight_decay is not None else getattr(sdn.backbone, "weight_decay", 5e-4)
    opt = torch.optim.Adam(params, lr=recipe.lr, weight_decay=wd)
    n = train_x.shape[0]
    m = chunk_size(sdn, recipe, n)
    steps_per_draw = sum(recipe.reuse * math.ceil(min(m, n - s) / recipe.batch_size) for s in range(0, n, m))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_factor(recipe, recipe.draws * steps_per_draw))
    g = torch.Generator(device=device).manual_seed(seed)
    history: list[dict] = []
    if checkpoint is not None and Path(checkpoint).is_file():
        from ..train import load_state
        state = load_state(checkpoint, map_location=device)
        sdn.ics.load_state_dict(state["ics"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        g.set_state(state["generator"].cpu())
        history = list(state["history"])
    y_all = train_y.to(device)
    for draw in range(len(history), recipe.draws):
        if stop_after_draw is not None and draw >= stop_after_draw:
            break
        sdn.train()
        t_feat = t_ic = 0.0
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        seen = 0
        perm = torch.randperm(n, device=device, generator=g)
        for start in range(0, n, m):
            t0 = time.perf_counter()
            idx = perm[start:start + m]
            x = augment(train_x[idx.to(train_x.device)].to(device).float().div_(255.0), g,
                        recipe.crop_padding, recipe.flip, 0).contiguous(memory_format=torch.channels_last)
            feats = reduced_features(sdn, x, recipe.feature_batch, getattr(torch, recipe.cache_dtype))
            y = y_all[idx]
            t1 = time.perf_counter()
            t_feat += t1 - t0
            for _ in range(recipe.reuse):
                order = torch.randperm(len(idx), device=device, generator=g)
                for b in order.split(recipe.batch_size):
                    logits = [ic.classify(f[b].float()) for ic, f in zip(sdn.ics, feats)]
                    loss = sum(F.cross_entropy(lg, y[b]) for lg in logits)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
                    loss_sum += loss.detach() * len(b)
                    correct += sum((lg.detach().argmax(1) == y[b]).sum() for lg in logits) / len(logits)
                    seen += len(b)
            t_ic += time.perf_counter() - t1
        row = {"draw": draw + 1, "passes": (draw + 1) * recipe.reuse, "loss": float(loss_sum) / seen,
               "ic_acc": float(correct) / seen, "feature_seconds": t_feat, "ic_seconds": t_ic,
               "lr": opt.param_groups[0]["lr"]}
        if not math.isfinite(row["loss"]):
            raise FloatingPointError(f"IC training loss became {row['loss']} in draw {draw + 1}")
        history.append(row)
        if progress:
            print(f"IC draw {draw + 1}/{recipe.draws}: loss {row['loss']:.3f}, IC train acc {row['ic_acc']:.3f} "
                  f"({t_feat:.0f} s features, {t_ic:.0f} s updates)", flush=True)
        if checkpoint is not None:
            state = {"ics": sdn.ics.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                     "generator": g.get_state(), "history": history}
            atomic_write(Path(checkpoint), lambda f: torch.save(state, f))
    sdn.eval()
    return history
