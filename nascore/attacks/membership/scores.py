"""Score-based membership inference: per-image scores from the model's output, higher = "member".

Each attack thresholds one number per image; its ROC AUC and TPR at low FPR
(:mod:`.metrics`) summarise it over all thresholds.

* ``loss`` — ``−CE(f(x), y)``: the loss-threshold attack of Yeom, Giacomelli, Fredrikson & Jha,
  "Privacy Risk in Machine Learning: Analyzing the Connection to Overfitting", CSF 2018
  (training images have lower loss).
* ``confidence`` — ``max_k p_k``: the confidence threshold of Salem et al., "ML-Leaks", NDSS 2019.
* ``entropy`` — ``−H(p)``: prediction-entropy threshold (Salem et al. 2019; Song & Mittal 2021).
* ``modified_entropy`` — ``−Mentr(p, y)`` with ``Mentr = −(1−p_y) log p_y − Σ_{k≠y} p_k log(1−p_k)``
  (Song & Mittal, "Systematic Evaluation of Privacy Risks of Machine Learning Models", USENIX
  Security 2021): uses the label, monotone in the right direction for both correct and wrong
  predictions.
* :func:`lira_offline` — the offline variant of the likelihood-ratio attack (Carlini, Chien,
  Nasr, Song, Terzis & Tramèr, "Membership Inference Attacks From First Principles", IEEE S&P
  2022): the target's logit-scaled true-class confidence ``φ = log p_y − log(1 − p_y)`` is compared
  with its distribution under reference models that did **not** train on the image,
  ``z = (φ − μ_out(x)) / σ_out``; with few reference models a global ``σ_out`` (the paper's advice
  below 64 models).

Shapes: ``logits`` ``(N, K)`` float, ``labels`` ``(N,)`` int64 → scores ``(N,)`` float64 numpy.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["SCORE_ATTACKS", "membership_scores", "logit_confidence", "lira_offline"]

SCORE_ATTACKS = ("loss", "confidence", "entropy", "modified_entropy")


def _check(logits: torch.Tensor, labels: torch.Tensor) -> None:
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(f"logits must be (N, K) and labels (N,), got {tuple(logits.shape)} and {tuple(labels.shape)}")


def membership_scores(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, np.ndarray]:
    """``{attack: scores (N,)}`` for every attack in :data:`SCORE_ATTACKS` (higher = member)."""
    _check(logits, labels)
    logits = logits.detach().double().cpu()
    labels = labels.cpu().long()
    logp = F.log_softmax(logits, dim=1)
    p = logp.exp()
    log1mp = torch.log1p(-p.clamp(max=1 - 1e-16))
    p_y = p.gather(1, labels[:, None]).squeeze(1)
    logp_y = logp.gather(1, labels[:, None]).squeeze(1)
    other = torch.ones_like(p, dtype=torch.bool).scatter_(1, labels[:, None], False)
    mentr = -(1 - p_y) * logp_y - (p * log1mp * other).sum(1)
    out = {"loss": logp_y, "confidence": p.max(dim=1).values, "entropy": (p * logp).sum(1), "modified_entropy": -mentr}
    return {k: v.numpy() for k, v in out.items()}


def logit_confidence(logits: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """``φ = log p_y − log(1 − p_y) = z_y − logsumexp_{k≠y} z_k`` (numerically stable), ``(N,)``."""
    _check(logits, labels)
    z = logits.detach().double().cpu()
    labels = labels.cpu().long()
    z_y = z.gather(1, labels[:, None]).squeeze(1)
    rest = z.scatter(1, labels[:, None], float("-inf"))
    return (z_y - torch.logsumexp(rest, dim=1)).numpy()


def lira_offline(target_phi, reference_phi, global_variance: bool = True) -> np.ndarray:
    """Offline LiRA score ``(φ − μ_out) / σ_out`` per image (higher = member).

    target_phi : ``(N,)`` — :func:`logit_confidence` of the attacked model.
    reference_phi : ``(R, N)`` — the same for ``R >= 2`` reference models trained without these images.
    global_variance : one ``σ_out`` for all images (pooled over images) instead of one per image.
    """
    t = np.asarray(target_phi, dtype=float)
    r = np.asarray(reference_phi, dtype=float)
    if r.ndim != 2 or r.shape[1] != t.shape[0]:
        raise ValueError(f"reference_phi must be (R, N) with N = {t.shape[0]}, got {r.shape}")
    if r.shape[0] < 2:
        raise ValueError(f"offline LiRA needs >= 2 reference models to estimate a variance, got {r.shape[0]}")
    mu = r.mean(axis=0)
    var = r.var(axis=0, ddof=1)
    sigma = np.sqrt(var.mean()) if global_variance else np.sqrt(var)
    return (t - mu) / np.maximum(sigma, 1e-12)
