"""TrojanNN (Liu et al., "Trojaning Attack on Neural Networks", NDSS 2018) as the artifact of Pang et al.
(2022) implements it (``autovul/vision/attacks/backdoor/trojannn.py``; protocol §4.3).

BadNet plus a trigger preprocessing step on the clean model:

1. **neurons**: the ``neuron_num`` (default 2) units of the pooled penultimate layer with the lowest
   mean activation over the training images;
2. **mark**: the trigger alone on a black image (the "canvas") is moved by signed-gradient steps of
   ``step_size`` (0.015), at most ``steps`` (20) times, on the trigger's pixels only, clipped to [0,1],
   descending ``‖f(canvas)[units] − target_value‖₂`` (target 10); it stops as soon as that gap is
   below ``threshold`` (5);
3. injection as BadNet with the optimised mark. The artifact's TrojanNN runs (``mitigation_backdoor.sh``,
   ``neuron_number.sh``) use ``mark_alpha`` 0.7 (a 30 % blend) and the default poison percent 0.01.

Deviation, stated: the artifact averages the units over its augmented training loader; here the
un-augmented training images are used (the mean over random crops and flips of the same images
differs only by augmentation noise). Both use the model in eval mode.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from ...models.base import eval_mode
from .base import Backdoor
from .features import mean_features, pooled_features
from .trigger import Trigger


def _trojannn_trigger() -> Trigger:
    return Trigger.white_square(3, alpha=0.7)


@dataclass(eq=False)
class TrojanNN(Backdoor):
    """TrojanNN; the defaults are the artifact's TrojanNN runs (alpha 0.7, poison 0.01, 2 units).

    Extra parameters: ``neuron_num`` (units to excite), ``steps`` (max signed steps), ``step_size``
    (pixel units), ``target_value`` (activation aimed at), ``threshold`` (stop when the L2 gap is below),
    ``feature_images`` (training images averaged to rank the units; None = all given).
    """

    name = "trojannn"
    trigger: Trigger = field(default_factory=_trojannn_trigger)
    poison_rate: float = 0.01
    neuron_num: int = 2
    steps: int = 20
    step_size: float = 0.015
    target_value: float = 10.0
    threshold: float = 5.0
    feature_images: int | None = None
    # Filled in by prepare():
    neurons: tuple[int, ...] = ()
    activation_before: float = float("nan")
    activation_after: float = float("nan")
    gap_before: float = float("nan")
    gap_after: float = float("nan")
    steps_taken: int = 0

    def _validate(self) -> list[str]:
        bad = []
        if not isinstance(self.neuron_num, int) or self.neuron_num < 1:
            bad.append(f"neuron_num={self.neuron_num!r} (valid: an integer >= 1)")
        if not isinstance(self.steps, int) or self.steps < 0:
            bad.append(f"steps={self.steps!r} (valid: an integer >= 0)")
        if not self.step_size > 0:
            bad.append(f"step_size={self.step_size!r} (valid: > 0)")
        if not self.threshold >= 0:
            bad.append(f"threshold={self.threshold!r} (valid: >= 0)")
        if self.feature_images is not None and self.feature_images < 1:
            bad.append(f"feature_images={self.feature_images!r} (valid: >= 1 or None)")
        return bad

    def _extra_config(self) -> dict:
        return {"neuron_num": self.neuron_num, "steps": self.steps, "step_size": self.step_size,
                "target_value": self.target_value, "threshold": self.threshold,
                "feature_images": self.feature_images}

    def select_neurons(self, model, train_x: torch.Tensor) -> torch.Tensor:
        """Indices of the ``neuron_num`` least-activated pooled penultimate units (mean over ``train_x``)."""
        x = train_x if self.feature_images is None else train_x[:self.feature_images]
        mean = mean_features(model, x)
        if self.neuron_num > len(mean):
            raise ValueError(f"neuron_num={self.neuron_num} exceeds the {len(mean)} penultimate units")
        return mean.argsort()[:self.neuron_num]

    def unit_activation(self, model, canvas: torch.Tensor, neurons: torch.Tensor) -> torch.Tensor:
        """Mean activation of ``neurons`` on ``canvas`` and the L2 gap to ``target_value`` (two scalars)."""
        f = pooled_features(model, canvas)[:, neurons]
        return f.mean(), (f - self.target_value).norm(p=2, dim=1).mean()

    def optimise_mark(self, model, neurons: torch.Tensor, image_shape) -> tuple[torch.Tensor, dict]:
        """The signed-step trigger search on the black canvas; returns the mark ``(C, h, w)`` and diagnostics."""
        device = next(model.parameters()).device
        region = self.trigger.region(image_shape, device)
        canvas = self.trigger.canvas(image_shape, device)
        neurons = neurons.to(device)
        with eval_mode(model), torch.enable_grad():
            with torch.no_grad():
                act0, gap0 = self.unit_activation(model, canvas, neurons)
            taken = 0
            for _ in range(self.steps):
                canvas.requires_grad_(True)
                act, gap = self.unit_activation(model, canvas, neurons)
                if float(gap.detach()) < self.threshold:  # one sync per step (at most 20 steps)
                    break
                grad, = torch.autograd.grad(gap, canvas)
                canvas = (canvas.detach() - self.step_size * grad.sign() * region).clamp_(0, 1)
                taken += 1
            canvas = canvas.detach()
            with torch.no_grad():
                act1, gap1 = self.unit_activation(model, canvas, neurons)
        h, w = self.trigger.size
        t, l = self.trigger.top, self.trigger.left
        mark = canvas[0, :, t:t + h, l:l + w].cpu()
        return mark, {"activation_before": float(act0), "activation_after": float(act1),
                      "gap_before": float(gap0), "gap_after": float(gap1), "steps_taken": taken}

    def prepare(self, model, train_x, train_y, generator) -> "TrojanNN":
        neurons = self.select_neurons(model, train_x)
        mark, diag = self.optimise_mark(model, neurons, tuple(train_x.shape[1:]))
        return replace(self, trigger=self.trigger.with_mark(mark), neurons=tuple(int(i) for i in neurons), **diag)

    def diagnostics(self) -> dict:
        return {"neurons": " ".join(map(str, self.neurons)), "activation_before": self.activation_before,
                "activation_after": self.activation_after, "gap_before": self.gap_before,
                "gap_after": self.gap_after, "steps_taken": self.steps_taken}
