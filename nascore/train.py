"""The one training loop for every model, and the recipe that configures it.

:class:`Recipe`'s defaults are protocol §3 (the artifact's ``train.sh``): SGD lr 0.025, momentum
0.9, weight decay 5e-4, no Nesterov, cosine annealing over the epochs (stepped once per epoch,
eta_min 0), global gradient-norm clipping at 5, plain cross entropy, batch 96, crop + flip +
cutout 16. Profiles override single fields (the ``quick`` profile's short schedule, for example,
uses Nesterov SGD with a per-step linear warm-up and decay: see ``nascore.profiles``).

Deviation from the artifact, stated: the artifact keeps the checkpoint with the best *test*
accuracy (model selection on the test set); here the final weights are kept and the test
accuracy is recorded per epoch (and, with ``eval_points``, at points inside the run) instead.

Extension points used by the training-time attacks (all on the device, no per-sample loops):

* ``train_y`` may hold class labels ``(N,)`` or probability vectors ``(N, K)`` (soft labels: the
  loss is cross entropy with probability targets — model extraction);
* ``frozen`` marks samples used exactly as stored, without augmentation (random-label poisoning
  freezes its poisoned images with one augmentation draw, protocol §4.2);
* ``batch_transform(x, y, generator)`` rewrites every training batch after augmentation
  (backdoor injection prepends stamped, relabelled copies, protocol §4.3).

Devices and precision: ``precision="auto"`` is bf16 autocast on CUDA and fp32 on the CPU;
``"bf16"``/``"fp32"`` force one. channels_last everywhere. Training is resumable: with
``checkpoint=path`` the state (weights, optimiser, scheduler, RNG states, history, curve) is
written atomically after every epoch and a rerun resumes from the last finished epoch,
bit-identically on the same machine.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from tqdm import tqdm

from ._cpu_workarounds import avoid_strided_pointwise_conv
from .data import DeviceLoader
from .io import atomic_write
from .models.predict import autocast, predict

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("cosine", "constant", "warmup_linear")
PRECISIONS = ("auto", "fp32", "bf16")

BatchTransform = Callable[[torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]


class CorruptCheckpointError(RuntimeError):
    """A cached or checkpoint file failed its integrity check or could not be safely loaded."""


@dataclass(frozen=True)
class Recipe:
    """Training hyper-parameters (defaults: protocol §3). Every field except ``eval_batch_size``
    decides the weights and is part of the model cache key.

    ``schedule``: ``"cosine"`` (per epoch, T_max = epochs, eta_min 0 — the protocol),
    ``"constant"``, or ``"warmup_linear"`` (per step: linear warm-up from 0 over
    ``warmup_fraction`` of all steps, then linear decay to 0 — a short-schedule recipe).
    ``eval_points``: extra test evaluations spread evenly over the optimisation steps, on the first
    ``curve_images`` test images (the early-convergence curve); 0 = per-epoch evaluation only.
    """

    epochs: int = 200
    batch_size: int = 96
    optimizer: str = "sgd"
    lr: float = 0.025
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    grad_clip: float | None = 5.0
    schedule: str = "cosine"
    warmup_fraction: float = 0.15
    crop_padding: int = 4
    flip: bool = True
    cutout: int = 16
    precision: str = "auto"
    eval_points: int = 0
    curve_images: int = 2000
    aux_weight: float = 0.4  # used only by models built with an auxiliary head
    eval_batch_size: int = 500

    def __post_init__(self):
        checks = {"epochs": self.epochs >= 1, "batch_size": self.batch_size >= 1, "lr": self.lr > 0,
                  "optimizer": self.optimizer in OPTIMIZERS,
                  "momentum": 0 <= self.momentum < 1, "weight_decay": self.weight_decay >= 0,
                  "grad_clip": self.grad_clip is None or self.grad_clip > 0,
                  "schedule": self.schedule in SCHEDULES, "warmup_fraction": 0 <= self.warmup_fraction < 1,
                  "cutout": 0 <= self.cutout <= 32, "crop_padding": 0 <= self.crop_padding <= 16,
                  "precision": self.precision in PRECISIONS, "eval_points": self.eval_points >= 0,
                  "curve_images": self.curve_images >= 1, "eval_batch_size": self.eval_batch_size >= 1}
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid recipe value(s): {', '.join(f'{k}={getattr(self, k)!r}' for k in bad)} "
                             f"(epochs/batch_size >= 1, lr > 0, optimizer in {OPTIMIZERS}, 0 <= momentum < 1, "
                             f"weight_decay >= 0, grad_clip > 0 or None, schedule in {SCHEDULES}, "
                             f"0 <= warmup_fraction < 1, 0 <= cutout <= 32, 0 <= crop_padding <= 16, "
                             f"precision in {PRECISIONS}, eval_points >= 0)")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def resolved_precision(self, device: torch.device | str) -> str:
        """``"bf16"`` or ``"fp32"``: what ``"auto"`` means on ``device``."""
        if self.precision != "auto":
            return self.precision
        return "bf16" if torch.device(device).type == "cuda" else "fp32"


class TrainHistory(list):
    """The per-epoch history (a list of dicts) with the within-run evaluation points in ``curve``."""

    def __init__(self, rows=(), curve=()):
        super().__init__(rows)
        self.curve: list[dict] = list(curve)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def evaluate(model: nn.Module, x_uint8: torch.Tensor, y: torch.Tensor, batch_size: int = 500,
             device: torch.device | str | None = None, precision: str = "auto",
             return_counts: bool = False) -> float | tuple[float, list[int]]:
    """Top-1 accuracy (fraction) of ``model`` on uint8 images ``(N, 3, H, W)``; with
    ``return_counts`` also the number of images predicted as each class (a collapsed model
    predicts one class), from the same pass.

    One :func:`~nascore.models.predict.predict` pass in the training layout (channels_last,
    the recipe's ``precision``), in eval mode, every submodule's own train/eval flag restored;
    the counts stay on the device until the end (one host sync).
    """
    def top1_and_counts(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pred = logits.argmax(1)
        return pred, torch.bincount(pred, minlength=logits.shape[1])[None]

    device = torch.device(device) if device is not None else next(model.parameters()).device
    pred, counts = predict(model, x_uint8, batch_size, reduce=top1_and_counts, device=device,
                           channels_last=True, precision=precision, to_cpu=False)
    acc = (pred == y.to(device)).sum().item() / len(y)
    return (acc, counts.sum(0).tolist()) if return_counts else acc


def _make_optimizer(model: nn.Module, recipe: Recipe, steps_per_epoch: int):
    params = [p for p in model.parameters() if p.requires_grad]
    if recipe.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    else:
        opt = torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum,
                              weight_decay=recipe.weight_decay, nesterov=recipe.nesterov)
    if recipe.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=recipe.epochs, eta_min=0.0)
    elif recipe.schedule == "warmup_linear":
        sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_linear(recipe.epochs * steps_per_epoch,
                                                                     recipe.warmup_fraction))
    else:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    return opt, sched


def warmup_linear(total_steps: int, warmup_fraction: float) -> Callable[[int], float]:
    """LR multiplier of step ``s`` (0-based): ``(s+1)/w`` for the first ``w`` steps, then linear to 0
    at ``total_steps``; ``w = max(1, round(warmup_fraction · total_steps))``."""
    warm = max(1, round(warmup_fraction * total_steps))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total_steps - step) / max(1, total_steps - warm))

    return factor


def _save_state(path: Path, state: dict) -> None:
    atomic_write(path, lambda f: torch.save(state, f))


def load_state(path: str | Path, map_location="cpu") -> dict:
    """Load a training checkpoint or weights file **without unpickling code** (weights_only)."""
    return torch.load(path, map_location=map_location, weights_only=True)


def _load_checkpoint(path: Path, device: torch.device) -> dict:
    try:
        return load_state(path, map_location=device)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means: refuse the file
        raise CorruptCheckpointError(f"{path}: training checkpoint refused by the weights-only loader "
                                     f"({type(err).__name__}: {err}); delete it to restart training") from err


def _curve_steps(total_steps: int, points: int) -> set[int]:
    """Global step counts (1-based, after the step) at which the curve is evaluated."""
    if points <= 0:
        return set()
    return {max(1, round(total_steps * (i + 1) / points)) for i in range(points)}


def train(model: nn.Module, train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
          test_y: torch.Tensor, recipe: Recipe = Recipe(), seed: int = 0,
          device: torch.device | str | None = None, checkpoint: str | Path | None = None,
          progress: bool = True, desc: str = "train", stop_after_epoch: int | None = None, *,
          frozen: torch.Tensor | None = None, batch_transform: BatchTransform | None = None) -> TrainHistory:
    """Train ``model`` in place with ``recipe``; return the history.

    Parameters
    ----------
    train_x, test_x : uint8 ``(N, 3, 32, 32)``.
    train_y : int64 ``(N,)`` class labels, or float ``(N, K)`` probability vectors (soft labels).
    test_y : int64 ``(N,)``.
    seed : seeds weight-independent randomness (shuffling, augmentation, dropout). The model's
        initial weights are whatever the caller built (the zoo seeds that too).
    checkpoint : resumable state file (see module docstring); removed by the caller when done.
    stop_after_epoch : stop (as if interrupted) once this many epochs are finished; for tests.
    frozen : bool ``(N,)``: samples used exactly as stored (no crop/flip/cutout).
    batch_transform : ``(x, y, generator) -> (x, y)`` applied to every training batch on the
        device after augmentation; draw randomness from ``generator`` only (deterministic, resumable).

    Returns
    -------
    :class:`TrainHistory`: one dict per epoch — ``epoch`` (1-based), ``lr``, ``train_loss`` (mean
    over the epoch's batches, nats), ``train_acc``, ``test_acc`` (fractions), ``epoch_seconds`` (wall,
    with evaluation), ``train_seconds`` (wall, without evaluation), ``train_cpu_seconds`` (CPU time of
    the process without evaluation: robust to other processes sharing the machine), ``images``,
    ``images_per_second``, ``prediction_counts`` (test images predicted as each class) — and ``.curve``: one dict per evaluation point — ``step``, ``epoch``
    (fractional), ``images`` (training images seen), ``test_acc`` (on the first ``curve_images``
    test images), ``train_loss`` (mean since the previous point; None for the point at step 0,
    taken before training).
    """
    device = torch.device(device) if device is not None else default_device()
    precision = recipe.resolved_precision(device)
    soft = train_y.is_floating_point()
    if soft and (train_y.ndim != 2 or train_y.shape[0] != len(train_x)):
        raise ValueError(f"soft labels must be (N, K) with N = {len(train_x)}, got {tuple(train_y.shape)}")
    avoid_strided_pointwise_conv(model)  # a oneDNN crash on CPU: see nascore._cpu_workarounds
    model.to(device).to(memory_format=torch.channels_last)
    loader = DeviceLoader(train_x, train_y, recipe.batch_size, device, train=True, seed=seed,
                          crop_padding=recipe.crop_padding, flip=recipe.flip, cutout=recipe.cutout, frozen=frozen)
    opt, sched = _make_optimizer(model, recipe, len(loader))
    per_step = recipe.schedule == "warmup_linear"
    torch.manual_seed(seed)
    history = TrainHistory()
    if checkpoint is not None and Path(checkpoint).is_file():
        state = _load_checkpoint(Path(checkpoint), device)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        loader.generator.set_state(state["loader_rng"].cpu())  # generator states are CPU ByteTensors
        torch.set_rng_state(state["cpu_rng"].cpu())
        if device.type == "cuda" and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"].cpu(), device)
        history = TrainHistory(state["history"], state.get("curve", ()))
    criterion = nn.CrossEntropyLoss()
    params = [p for p in model.parameters() if p.requires_grad]
    total_steps = recipe.epochs * len(loader)
    curve_at = _curve_steps(total_steps, recipe.eval_points)
    curve_x, curve_y = test_x[:recipe.curve_images], test_y[:recipe.curve_images]
    step = len(history) * len(loader)
    images_seen = sum(h.get("images", len(train_y)) for h in history)
    if curve_at and step == 0:  # the starting point of the curve: accuracy before any step
        history.curve.append({"step": 0, "epoch": 0.0, "images": 0, "train_loss": None,
                              "test_acc": evaluate(model, curve_x, curve_y, recipe.eval_batch_size, device, precision)})
    bar = tqdm(total=recipe.epochs, initial=len(history), desc=desc, disable=not progress, leave=False)
    for epoch in range(len(history), recipe.epochs):
        if stop_after_epoch is not None and epoch >= stop_after_epoch:
            break
        t0, c0 = time.perf_counter(), time.process_time()
        model.train()
        lr = opt.param_groups[0]["lr"]
        loss_sum = torch.zeros((), device=device)
        window_loss = torch.zeros((), device=device)
        window_n = 0
        correct = torch.zeros((), dtype=torch.long, device=device)
        seen = 0
        eval_seconds = eval_cpu = 0.0
        for xb, yb in loader:
            if batch_transform is not None:
                xb, yb = batch_transform(xb, yb, loader.generator)
            with autocast(device, precision):
                logits = model(xb)
                loss = criterion(logits.float(), yb)
                aux = getattr(model, "aux_logits", None)
                if aux is not None:
                    loss = loss + recipe.aux_weight * criterion(aux.float(), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if recipe.grad_clip is not None:
                nn.utils.clip_grad_norm_(params, recipe.grad_clip)
            opt.step()
            if per_step:
                sched.step()
            step += 1
            n = len(yb)
            seen += n
            batch_loss = loss.detach() * n
            loss_sum += batch_loss
            window_loss += batch_loss
            window_n += n
            target = yb.argmax(1) if soft else yb
            correct += (logits.detach().argmax(1) == target).sum()
            if step in curve_at:
                t_eval, c_eval = time.perf_counter(), time.process_time()
                acc = evaluate(model, curve_x, curve_y, recipe.eval_batch_size, device, precision)
                model.train()
                history.curve.append({"step": step, "epoch": step / len(loader), "images": images_seen + seen,
                                      "test_acc": acc, "train_loss": window_loss.item() / window_n})
                window_loss.zero_()
                window_n = 0
                eval_seconds += time.perf_counter() - t_eval
                eval_cpu += time.process_time() - c_eval
        if not per_step:
            sched.step()
        train_seconds = time.perf_counter() - t0 - eval_seconds
        cpu_seconds = time.process_time() - c0 - eval_cpu
        images_seen += seen
        test_acc, counts = evaluate(model, test_x, test_y, recipe.eval_batch_size, device, precision, return_counts=True)
        row = {"epoch": epoch + 1, "lr": lr, "train_loss": loss_sum.item() / seen, "train_acc": correct.item() / seen,
               "test_acc": test_acc, "prediction_counts": counts,
               "epoch_seconds": time.perf_counter() - t0, "train_seconds": train_seconds,
               "train_cpu_seconds": cpu_seconds,
               "images": seen, "images_per_second": seen / train_seconds}
        if not math.isfinite(row["train_loss"]):
            raise FloatingPointError(f"{desc}: training loss became {row['train_loss']} in epoch {epoch + 1}")
        history.append(row)
        if checkpoint is not None:
            state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                     "loader_rng": loader.generator.get_state(), "cpu_rng": torch.get_rng_state(),
                     "history": list(history), "curve": history.curve}
            if device.type == "cuda":
                state["cuda_rng"] = torch.cuda.get_rng_state(device)
            _save_state(Path(checkpoint), state)
        bar.update(1)
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", test_acc=f"{row['test_acc']:.3f}")
    bar.close()
    model.eval()
    return history
