"""The one training recipe for every model (protocol §3, the artifact's ``train.sh``).

SGD (lr 0.025, momentum 0.9, weight decay 5e-4, no Nesterov), cosine annealing over the epochs
(stepped once per epoch, eta_min 0), global gradient-norm clipping at 5, plain cross entropy,
batch 96, crop + flip + cutout 16 — every value a :class:`Recipe` field.

Deviation from the artifact, stated: the artifact keeps the checkpoint with the best *test*
accuracy (model selection on the test set); here the final epoch's weights are kept and the
per-epoch test accuracy is recorded in the history instead.

Devices: on CUDA, bf16 autocast + channels_last; on CPU, fp32 + channels_last on all cores.
Training is resumable: with ``checkpoint=path`` the state (weights, optimiser, scheduler, RNG
states, history) is written atomically after every epoch and a rerun resumes from the last
finished epoch, bit-identically on CPU.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from .data import DeviceLoader
from .io import atomic_write


@dataclass(frozen=True)
class Recipe:
    """Training hyper-parameters (defaults: protocol §3)."""

    epochs: int = 200
    batch_size: int = 96
    lr: float = 0.025
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    grad_clip: float | None = 5.0
    schedule: str = "cosine"  # "cosine" (T_max = epochs, eta_min 0) or "constant"
    crop_padding: int = 4
    flip: bool = True
    cutout: int = 16
    aux_weight: float = 0.4  # used only by models built with an auxiliary head
    eval_batch_size: int = 500

    def __post_init__(self):
        checks = {"epochs": self.epochs >= 1, "batch_size": self.batch_size >= 1, "lr": self.lr > 0,
                  "momentum": 0 <= self.momentum < 1, "weight_decay": self.weight_decay >= 0,
                  "grad_clip": self.grad_clip is None or self.grad_clip > 0,
                  "schedule": self.schedule in ("cosine", "constant"),
                  "cutout": 0 <= self.cutout <= 32, "crop_padding": 0 <= self.crop_padding <= 16}
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid recipe value(s): {', '.join(f'{k}={getattr(self, k)!r}' for k in bad)} "
                             "(epochs/batch_size >= 1, lr > 0, 0 <= momentum < 1, weight_decay >= 0, "
                             "grad_clip > 0 or None, schedule in {'cosine','constant'}, 0 <= cutout <= 32)")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@torch.inference_mode()
def evaluate(model: nn.Module, x_uint8: torch.Tensor, y: torch.Tensor, batch_size: int = 500,
             device: torch.device | str | None = None) -> float:
    """Top-1 accuracy (fraction) of ``model`` on uint8 images ``(N, 3, H, W)``."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=device)
    for xb, yb in DeviceLoader(x_uint8, y, batch_size, device):
        with _autocast(device):
            correct += (model(xb).argmax(1) == yb).sum()
    model.train(was_training)
    return correct.item() / len(y)


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def _make_optimizer(model: nn.Module, recipe: Recipe):
    opt = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                          weight_decay=recipe.weight_decay, nesterov=recipe.nesterov)
    if recipe.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=recipe.epochs, eta_min=0.0)
    else:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    return opt, sched


def _save_state(path: Path, state: dict) -> None:
    atomic_write(path, lambda f: torch.save(state, f))


def load_state(path: str | Path, map_location="cpu") -> dict:
    """Load a training checkpoint or weights file **without unpickling code** (weights_only)."""
    return torch.load(path, map_location=map_location, weights_only=True)


def train(model: nn.Module, train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
          test_y: torch.Tensor, recipe: Recipe = Recipe(), seed: int = 0,
          device: torch.device | str | None = None, checkpoint: str | Path | None = None,
          progress: bool = True, desc: str = "train",
          stop_after_epoch: int | None = None) -> list[dict]:
    """Train ``model`` in place with ``recipe``; return the per-epoch history.

    Parameters
    ----------
    train_x, test_x : uint8 ``(N, 3, 32, 32)``;  train_y, test_y : int64 ``(N,)``.
    seed : seeds weight-independent randomness (shuffling, augmentation, dropout). The model's
        initial weights are whatever the caller built (the zoo seeds that too).
    checkpoint : resumable state file (see module docstring); removed by the caller when done.
    stop_after_epoch : stop (as if interrupted) once this many epochs are finished; for tests.

    Returns
    -------
    list of dicts, one per epoch: ``epoch`` (1-based), ``lr``, ``train_loss``, ``train_acc``,
    ``test_acc`` (fractions), ``epoch_seconds``, ``images_per_second``.
    """
    device = torch.device(device) if device is not None else default_device()
    model.to(device).to(memory_format=torch.channels_last)
    opt, sched = _make_optimizer(model, recipe)
    loader = DeviceLoader(train_x, train_y, recipe.batch_size, device, train=True, seed=seed,
                          crop_padding=recipe.crop_padding, flip=recipe.flip, cutout=recipe.cutout)
    torch.manual_seed(seed)
    history: list[dict] = []
    if checkpoint is not None and Path(checkpoint).is_file():
        state = load_state(checkpoint, map_location=device)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        loader.generator.set_state(state["loader_rng"].cpu())  # generator states are CPU ByteTensors
        torch.set_rng_state(state["cpu_rng"].cpu())
        if device.type == "cuda" and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"].cpu(), device)
        history = list(state["history"])
    criterion = nn.CrossEntropyLoss()
    params = [p for p in model.parameters() if p.requires_grad]
    bar = tqdm(total=recipe.epochs, initial=len(history), desc=desc, disable=not progress, leave=False)
    for epoch in range(len(history), recipe.epochs):
        if stop_after_epoch is not None and epoch >= stop_after_epoch:
            break
        t0 = time.perf_counter()
        model.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.long, device=device)
        for xb, yb in loader:
            with _autocast(device):
                logits = model(xb)
                loss = criterion(logits, yb)
                aux = getattr(model, "aux_logits", None)
                if aux is not None:
                    loss = loss + recipe.aux_weight * criterion(aux, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if recipe.grad_clip is not None:
                nn.utils.clip_grad_norm_(params, recipe.grad_clip)
            opt.step()
            loss_sum += loss.detach() * len(yb)
            correct += (logits.detach().argmax(1) == yb).sum()
        lr = opt.param_groups[0]["lr"]
        sched.step()
        train_seconds = time.perf_counter() - t0
        n = len(train_y)
        row = {"epoch": epoch + 1, "lr": lr, "train_loss": loss_sum.item() / n, "train_acc": correct.item() / n,
               "test_acc": evaluate(model, test_x, test_y, recipe.eval_batch_size, device),
               "epoch_seconds": time.perf_counter() - t0, "images_per_second": n / train_seconds}
        if not math.isfinite(row["train_loss"]):
            raise FloatingPointError(f"{desc}: training loss became {row['train_loss']} in epoch {epoch + 1}")
        history.append(row)
        if checkpoint is not None:
            state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                     "loader_rng": loader.generator.get_state(), "cpu_rng": torch.get_rng_state(),
                     "history": history}
            if device.type == "cuda":
                state["cuda_rng"] = torch.cuda.get_rng_state(device)
            _save_state(Path(checkpoint), state)
        bar.update(1)
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", test_acc=f"{row['test_acc']:.3f}")
    bar.close()
    return history
