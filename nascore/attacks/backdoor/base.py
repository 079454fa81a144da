"""The interface every backdoor attack shares: configure once, then ``stamp``, ``poison_batch``, ``asr``.

A backdoor is injected by **fine-tuning** a trained (clean) model on its own training data with a few
stamped, relabelled copies prepended to every batch (the artifact of Pang et al. 2022 on top of
trojanzoo, ``BadNet.get_data``, protocol §4.3)::

    attack = BadNet()                                     # configuration: trigger, target, poison rate
    bound = attack.prepare(model, train_x, train_y, g)    # model-specific trigger (TrojanNN, latent); BadNet: itself
    x2, y2 = bound.poison_batch(x, y, g)                  # the training batch the fine-tuning sees
    score = bound.asr(model, test_x, test_y)              # attack success on stamped test images

Units and shapes: images ``(N, C, H, W)`` float in [0,1] (``uint8`` accepted by :meth:`Backdoor.asr`),
labels int64 ``(N,)``; the trigger lives in pixel space (:class:`~.trigger.Trigger`). Everything is batched
on the images' device. :meth:`Backdoor.epoch_start` is the hook of attacks that change the trigger during
fine-tuning (IMC re-optimises it at the start of every epoch).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import ClassVar, NamedTuple

import torch
from torch import nn

from ...models.predict import predict
from .trigger import Trigger


class BackdoorScore(NamedTuple):
    """Per-image outcome of stamped test images.

    ``success`` (N,) bool: the stamped image is classified as the target class.
    ``is_target`` (N,) bool: its true label already is the target class.
    """

    success: torch.Tensor
    is_target: torch.Tensor

    @property
    def artifact(self) -> float:
        """ASR as the artifact counts it: over **all** stamped test images, target-class images included."""
        return float(self.success.float().mean()) if len(self.success) else float("nan")

    @property
    def standard(self) -> float:
        """ASR over the stamped images whose true class is not the target (the usual definition)."""
        keep = ~self.is_target
        return float(self.success[keep].float().mean()) if bool(keep.any()) else float("nan")


@dataclass(eq=False)
class Backdoor:
    """BadNet-style backdoor injection (Gu et al., 2017, arXiv 1708.06733), the base of the others.

    Parameters
    ----------
    trigger : :class:`Trigger` — default the artifact's 3×3 opaque white square at the top-left corner.
    target : int — the target class (default 0, airplane).
    poison_rate : float in [0, 1) — stamped copies per clean image of a training batch. A batch of
        ``B`` images gets ``floor(B·rate)`` copies plus one more with probability ``frac(B·rate)``
        (the artifact: 96 × 0.02 = 1.92, i.e. 2 copies with probability 0.92, else 1).
    num_classes : int — for validating ``target``.
    """

    name: ClassVar[str] = "badnet"
    trigger: Trigger = field(default_factory=Trigger.white_square)
    target: int = 0
    poison_rate: float = 0.02
    num_classes: int = 10

    def __post_init__(self):
        bad = []
        if not isinstance(self.trigger, Trigger):
            bad.append(f"trigger={self.trigger!r} (valid: a nascore Trigger)")
        if isinstance(self.target, bool) or not isinstance(self.target, int) or not 0 <= self.target < self.num_classes:
            bad.append(f"target={self.target!r} (valid: 0..{self.num_classes - 1})")
        if isinstance(self.poison_rate, bool) or not isinstance(self.poison_rate, (int, float)) \
                or not 0.0 <= self.poison_rate < 1.0:
            bad.append(f"poison_rate={self.poison_rate!r} (valid: a number in [0, 1))")
        bad += self._validate()
        if bad:
            raise ValueError(f"invalid {self.name} configuration: {'; '.join(bad)}")

    def _validate(self) -> list[str]:
        """Subclasses: messages for invalid extra parameters."""
        return []

    def config(self) -> dict:
        """JSON-able description of the attack (goes into the backdoored model's cache key)."""
        return {"attack": self.name, "target": self.target, "poison_rate": float(self.poison_rate),
                "trigger": self.trigger.config(), **self._extra_config()}

    def _extra_config(self) -> dict:
        return {}

    # ------------------------------------------------------------------ the three operations
    def stamp(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (N, C, H, W) in [0,1] with the trigger pasted on (see :meth:`Trigger.apply`)."""
        return self.trigger.apply(x)

    def poison_count(self, batch: int, generator: torch.Generator) -> int:
        """How many stamped copies a batch of ``batch`` images gets (random rounding of ``batch · rate``)."""
        frac, whole = math.modf(batch * float(self.poison_rate))
        extra = 0
        if frac > 0:
            draw = torch.rand((), generator=generator, device=generator.device)
            extra = int(draw < frac)  # one host sync per batch; the count decides the batch shape
        return int(whole) + extra

    def poison_batch(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator):
        """Prepend stamped copies of the first ``k`` images of the batch, labelled ``target``.

        ``x`` (B, C, H, W) float in [0,1] (already augmented), ``y`` (B,) int64; returns
        ``(B + k, ...)``. Randomness comes from ``generator`` only (the trainer's loader generator), so
        fine-tuning stays deterministic and resumable. Use as ``nascore.train.train(batch_transform=...)``.
        """
        k = min(self.poison_count(len(y), generator), len(y))
        if k == 0:
            return x, y
        stamped = self.stamp(x[:k])
        out = torch.cat((stamped, x)).contiguous(memory_format=torch.channels_last)
        return out, torch.cat((torch.full((k,), self.target, dtype=y.dtype, device=y.device), y))

    def asr(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500,
            precision: str = "fp32") -> BackdoorScore:
        """Classify the stamped images ``x`` (float [0,1] or uint8) with ``model`` in eval mode
        (``precision``: ``"fp32"`` or ``"bf16"`` autocast, as the model was trained).

        Returns a :class:`BackdoorScore` (per image, on the CPU): ``.artifact`` and ``.standard`` are the
        two ASR countings (fractions).
        """
        if len(x) == 0:
            return BackdoorScore(torch.zeros(0, dtype=torch.bool), y.cpu() == self.target)
        success_t = predict(lambda xb: model(self.stamp(xb)), x, batch_size, module=model, channels_last=True,
                            precision=precision, reduce=lambda logits: logits.argmax(1) == self.target)
        return BackdoorScore(success_t, (y.cpu() == self.target))

    # ------------------------------------------------------------------ model-specific hooks
    def prepare(self, model: nn.Module, train_x: torch.Tensor, train_y: torch.Tensor,
                generator: torch.Generator) -> "Backdoor":
        """The attack bound to ``model`` before fine-tuning (trigger optimisation); BadNet: itself."""
        return self

    def epoch_start(self, model: nn.Module, train_x: torch.Tensor, train_y: torch.Tensor,
                    generator: torch.Generator) -> "Backdoor":
        """Called before every fine-tuning epoch; returns the attack for that epoch (IMC: a new trigger)."""
        return self

    def with_trigger(self, trigger: Trigger) -> "Backdoor":
        return replace(self, trigger=trigger)

    def diagnostics(self) -> dict:
        """Numbers about the preparation (e.g. TrojanNN's unit activations), for the result tables."""
        return {}
