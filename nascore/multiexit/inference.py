"""Early-exit inference (protocol ``deepsloth.md`` §2, fact 5).

**Exit rule.** For one sample, the ICs are evaluated in depth order; the first IC whose maximum
softmax probability is ``≥ q`` answers. If no IC fires, the **final exit** answers (DeepSloth's
rule; the SDN paper returned the most confident exit instead).

Two implementations with the same semantics:

* :func:`early_exit_one` — the reference, one image at a time: it runs the network block by block
  (:meth:`SDN.iter_exits`) and stops at the first confident IC, so later blocks are never computed
  (this is also what :mod:`nascore.multiexit.latency` times);
* :func:`exit_record` + :func:`exit_indices` — vectorised: every exit's confidence and
  prediction for a whole batch in one pass (``(N, K+1)`` tables), then the rule applied to the
  table for any number of thresholds without re-running the network. Because each sample's exit
  outputs do not depend on the other samples in eval mode, this gives the same exits as the
  batch-1 loop (``tests/test_multiexit.py`` checks it against :func:`early_exit_one`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..models.predict import predict


@dataclass
class ExitRecord:
    """Per-exit outputs of ``N`` samples on a ``K + 1``-exit network.

    confidence : float32 ``(N, K+1)`` — maximum softmax probability of every exit.
    prediction : int64 ``(N, K+1)`` — argmax class of every exit.
    """

    confidence: np.ndarray
    prediction: np.ndarray

    @property
    def num_exits(self) -> int:
        return self.confidence.shape[1]

    def __len__(self) -> int:
        return self.confidence.shape[0]

    def subset(self, index) -> "ExitRecord":
        return ExitRecord(self.confidence[index], self.prediction[index])


def _as_float(x: torch.Tensor) -> torch.Tensor:
    return x.float().div(255.0) if x.dtype == torch.uint8 else x.float()


def exit_record(sdn, x: torch.Tensor, batch_size: int = 500) -> ExitRecord:
    """Confidence and prediction of every exit for images ``x`` ``(N, 3, H, W)`` (uint8 or
    [0,1] float), computed in batches on the SDN's device (:func:`~nascore.models.predict.predict`)."""
    def confidence_and_prediction(exit_logits: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        probs = torch.stack([o.float().softmax(dim=1) for o in exit_logits], dim=1)  # (n, E, C)
        return tuple(probs.max(dim=2))

    conf, pred = predict(sdn, x, batch_size, reduce=confidence_and_prediction)
    return ExitRecord(conf.numpy(), pred.numpy())


def exit_indices(record: ExitRecord, q: float) -> np.ndarray:
    """0-based exit taken by each sample at threshold ``q``: the first IC with confidence ``≥ q``,
    else the final exit ``K``. ``(N,)`` int64. ``q = inf`` means no early exit."""
    if not (q > 0):
        raise ValueError(f"threshold q must be > 0, got {q!r}")
    fires = record.confidence[:, :-1] >= q
    k = record.num_exits - 1
    return np.where(fires.any(axis=1), fires.argmax(axis=1), k).astype(np.int64)


def early_exit_predictions(record: ExitRecord, exits: np.ndarray) -> np.ndarray:
    """The prediction of the exit each sample took, ``(N,)``."""
    return record.prediction[np.arange(len(record)), exits]


def early_exit_accuracy(record: ExitRecord, labels, exits: np.ndarray) -> float:
    """Fraction of samples whose early-exit prediction equals the label."""
    labels = np.asarray(labels)
    return float((early_exit_predictions(record, exits) == labels).mean())


@torch.inference_mode()
def early_exit_one(sdn, x: torch.Tensor, q: float) -> tuple[int, int]:
    """Batch-1 early-exit inference of one image ``x`` ``(1, 3, H, W)``: ``(exit, prediction)``.

    Evaluates exits lazily and stops at the first IC with max softmax ``≥ q`` (else the final
    exit), so the blocks after the exit are not run. The model must be in eval mode.
    """
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError(f"early_exit_one takes one image (1, C, H, W), got shape {tuple(x.shape)}")
    last = sdn.num_exits - 1
    for k, logits in enumerate(sdn.iter_exits(_as_float(x))):
        probs = logits.float().softmax(dim=1)
        conf, pred = probs.max(dim=1)
        if k == last or float(conf) >= q:
            return k, int(pred)
    raise AssertionError("unreachable: the final exit always answers")
