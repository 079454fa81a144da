"""Latent backdoor (Yao et al., "Latent Backdoor Attacks on Deep Neural Networks", CCS 2019) as the
artifact of Pang et al. (2022) implements it (``autovul/vision/attacks/backdoor/latent_backdoor.py``,
protocol §4.3). **The artifact implements it but no script runs it**; this project runs it.

Preparation on the clean model:

1. sample ``samples_per_class`` training images of every class (protocol: 1,000);
2. the **target feature**: the mean pooled penultimate feature of the target-class sample;
3. the **trigger**: a tanh-parameterised mark, ``mark = (tanh(w) + 1) / 2`` with ``w`` drawn from a
   standard normal, optimised with Adam (lr 0.1) for ``epochs`` (100) passes over the other classes'
   sample in batches of ``batch_size`` (96), minimising the mean squared error between the pooled
   features of the stamped images and the target feature.

Injection: as BadNet with the optimised trigger. The artifact's ``mse_weight`` (0.5) enters only its
``train_mode='loss'`` path, which the default ``'batch'`` mode (the one every script uses) never calls, so
the fine-tuning loss is plain cross entropy here too.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from ...models.base import eval_mode
from .base import Backdoor
from .features import mean_features, pooled_features


def per_class_sample(y: torch.Tensor, per_class: int, generator: torch.Generator, num_classes: int = 10):
    """Indices of ``min(per_class, available)`` random samples of every class, per class (list of tensors)."""
    out = []
    for c in range(num_classes):
        idx = torch.nonzero(y.cpu() == c).flatten()
        out.append(idx[torch.randperm(len(idx), generator=generator)[:per_class]])
    return out


@dataclass(eq=False)
class LatentBackdoor(Backdoor):
    """Latent backdoor; extra parameters ``samples_per_class``, ``epochs``, ``lr``, ``batch_size``."""

    name = "latent"
    samples_per_class: int = 1000
    epochs: int = 100
    lr: float = 0.1
    batch_size: int = 96
    # Filled in by prepare():
    feature_mse_before: float = float("nan")
    feature_mse_after: float = float("nan")

    def _validate(self) -> list[str]:
        bad = []
        for k in ("samples_per_class", "epochs", "batch_size"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                bad.append(f"{k}={v!r} (valid: an integer >= 1)")
        if not self.lr > 0:
            bad.append(f"lr={self.lr!r} (valid: > 0)")
        return bad

    def _extra_config(self) -> dict:
        return {"samples_per_class": self.samples_per_class, "epochs": self.epochs, "lr": self.lr,
                "batch_size": self.batch_size}

    def prepare(self, model, train_x, train_y, generator) -> "LatentBackdoor":
        device = next(model.parameters()).device
        picks = per_class_sample(train_y, self.samples_per_class, generator, self.num_classes)
        target_x = train_x[picks[self.target]]
        other = torch.cat([p for c, p in enumerate(picks) if c != self.target])
        if len(target_x) == 0 or len(other) == 0:
            raise ValueError("the latent backdoor needs training images of the target class and of other classes")
        target_feat = mean_features(model, target_x).to(device)
        other_x = train_x[other].to(device)
        w = torch.randn(self.trigger.mark.shape, generator=generator).to(device).requires_grad_(True)
        opt = torch.optim.Adam([w], lr=self.lr)

        def batch_loss(xb_uint8, mark):
            xb = xb_uint8.float().div(255).contiguous(memory_format=torch.channels_last)
            f = pooled_features(model, self.trigger.apply(xb, mark))
            return F.mse_loss(f, target_feat.expand_as(f))

        def mean_loss(mark):
            with torch.no_grad():
                return sum(float(batch_loss(other_x[s:s + 500], mark)) * len(other_x[s:s + 500])
                           for s in range(0, len(other_x), 500)) / len(other_x)

        with eval_mode(model), torch.enable_grad():
            before = mean_loss(self.trigger.mark.to(device))
            for _ in range(self.epochs):
                order = torch.randperm(len(other_x), generator=generator).to(device)
                for s in range(0, len(other_x), self.batch_size):
                    loss = batch_loss(other_x[order[s:s + self.batch_size]], (torch.tanh(w) + 1) / 2)
                    grad, = torch.autograd.grad(loss, w)
                    w.grad = grad
                    opt.step()
            mark = ((torch.tanh(w) + 1) / 2).detach()
            after = mean_loss(mark)
        return replace(self, trigger=self.trigger.with_mark(mark.cpu()), feature_mse_before=before,
                       feature_mse_after=after)

    def diagnostics(self) -> dict:
        return {"feature_mse_before": self.feature_mse_before, "feature_mse_after": self.feature_mse_after}
