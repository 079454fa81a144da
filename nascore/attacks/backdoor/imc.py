"""IMC, input-model co-optimisation (Pang et al., "A Tale of Evil Twins: Adversarial Inputs versus
Poisoned Models", CCS 2020) as the artifact of Pang et al. (2022) implements it
(``autovul/vision/attacks/backdoor/imc.py``, protocol §4.3). **The artifact implements it but no script
runs it**; this project runs it.

TrojanNN (neuron selection, trigger preprocessing, injection), plus a trigger re-optimisation at the
start of **every** fine-tuning epoch, with the model frozen and in eval mode: a fresh tanh-parameterised
mark (``w`` standard normal, ``mark = (tanh(w) + 1)/2``) is optimised with Adam (lr ``inner_lr`` 0.1) for
``inner_iters`` (20) passes, each over the first ``inner_batches`` (21) batches of a fresh shuffle of the
training images, minimising the cross entropy of the stamped images towards the target class. The artifact starts every re-optimisation
from a random mark, so the preprocessed TrojanNN mark is replaced before the first epoch. Deviation,
stated: the artifact's batches come from its augmented training loader; here they are not augmented.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from ...models.base import eval_mode
from .trojannn import TrojanNN


@dataclass(eq=False)
class IMC(TrojanNN):
    """IMC; extra parameters ``inner_iters``, ``inner_batches``, ``inner_lr``, ``inner_batch_size``."""

    name = "imc"
    inner_iters: int = 20
    inner_batches: int = 21
    inner_lr: float = 0.1
    inner_batch_size: int = 96
    last_inner_loss: float = float("nan")

    def _validate(self) -> list[str]:
        bad = super()._validate()
        for k in ("inner_iters", "inner_batches", "inner_batch_size"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                bad.append(f"{k}={v!r} (valid: an integer >= 1)")
        if not self.inner_lr > 0:
            bad.append(f"inner_lr={self.inner_lr!r} (valid: > 0)")
        return bad

    def _extra_config(self) -> dict:
        return {**super()._extra_config(), "inner_iters": self.inner_iters, "inner_batches": self.inner_batches,
                "inner_lr": self.inner_lr, "inner_batch_size": self.inner_batch_size}

    def epoch_start(self, model, train_x, train_y, generator) -> "IMC":
        device = next(model.parameters()).device
        n = min(len(train_x), self.inner_batches * self.inner_batch_size)
        w = torch.randn(self.trigger.mark.shape, generator=generator).to(device).requires_grad_(True)
        opt = torch.optim.Adam([w], lr=self.inner_lr)
        loss = torch.zeros(())
        with eval_mode(model), torch.enable_grad():
            for _ in range(self.inner_iters):
                pool = train_x[torch.randperm(len(train_x), generator=generator)[:n]].to(device)  # a fresh shuffle
                for s in range(0, n, self.inner_batch_size):
                    xb = pool[s:s + self.inner_batch_size].float().div(255).contiguous(memory_format=torch.channels_last)
                    logits = model(self.trigger.apply(xb, (torch.tanh(w) + 1) / 2))
                    loss = F.cross_entropy(logits, torch.full((len(xb),), self.target, device=device))
                    grad, = torch.autograd.grad(loss, w)
                    w.grad = grad
                    opt.step()
        mark = ((torch.tanh(w) + 1) / 2).detach().cpu()
        return replace(self, trigger=self.trigger.with_mark(mark), last_inner_loss=float(loss.detach()))

    def diagnostics(self) -> dict:
        return {**super().diagnostics(), "last_inner_loss": self.last_inner_loss}
