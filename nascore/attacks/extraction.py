"""Model extraction: Knockoff Nets with random sampling (Orekondy, Schiele & Fritz, "Knockoff
Nets: Stealing Functionality of Black-Box Models", CVPR 2019), as the artifact of Pang et al.
(2022) runs it (protocol §4.4; ART ``KnockoffNets(sampling_strategy="random")``).

The thief draws ``budget`` random images of the training distribution (here: of the training
set, each with one frozen crop/flip draw), queries the victim once per image, and trains a
freshly initialised model — by default of the victim's architecture — on the answers.

Label modes (:data:`MODES`):

* ``"hard"`` — the victim's argmax class (equivalently a one-hot vector). **What the artifact
  actually trained on**: ART's ``PyTorchClassifier`` with ``CrossEntropyLoss`` reduces the
  probability vectors it is given to argmax labels (protocol §4.4, "Caveat").
* ``"soft"`` — the victim's softmax probability vector; the thief minimises cross entropy with
  probability targets. What the paper describes (``use_probability=True``).

The thief is trained by the project's one trainer through a :class:`ThiefVariant` (a training
variant of the model cache: cached,
resumable, parallel in :func:`nascore.zoo.train_many`-style workers), with the artifact's thief
optimiser (:data:`THIEF_RECIPE`: SGD lr 0.025, momentum 0.9, weight decay 5e-4, no schedule, no
augmentation — ART's own loop) and the number of epochs the caller gives (the artifact: 25).

Score (:func:`extraction_metrics`): the cross entropy ``H(p_victim, q_thief) = mean_x −Σ_k
softmax(victim(x))_k · log_softmax(thief(x))_k`` over test images, in nats (lower = stolen
better; its floor is the victim's own entropy ``H(p_victim)``, the rest is
``KL(p_victim ‖ q_thief)``), plus the thief's test accuracy and its agreement with the victim.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..data import augment_once
from ..models.predict import predict
from .training import TrainingInputs

__all__ = ["MODES", "THIEF_RECIPE", "ThiefVariant", "query_set", "victim_answers", "predict_probs", "per_image_ce",
           "extraction_metrics", "check_budgets"]

MODES = ("hard", "soft")

#: The thief's training recipe (protocol §4.4: ART's fit loop with the artifact's optimiser):
#: plain SGD, constant learning rate, no clipping, no augmentation. ``epochs`` comes from the
#: caller (the artifact: 25); ``precision`` stays the profile's.
THIEF_RECIPE = dict(optimizer="sgd", lr=0.025, momentum=0.9, weight_decay=5e-4, nesterov=False,
                    schedule="constant", grad_clip=None, crop_padding=0, flip=False, cutout=0,
                    batch_size=96, eval_points=0)


def check_budgets(budgets, n_available: int | None = None) -> tuple[int, ...]:
    """Validate query budgets (integers ``>= 1``, at most ``n_available`` images); sorted tuple."""
    if not isinstance(budgets, (list, tuple)):
        budgets = (budgets,)
    out = []
    for b in budgets:
        if isinstance(b, bool) or not isinstance(b, int) or b < 1:
            raise ValueError(f"query budget must be an integer >= 1, got {b!r}")
        if n_available is not None and b > n_available:
            raise ValueError(f"query budget {b} exceeds the {n_available} training images the thief can draw from "
                             f"(valid: 1..{n_available})")
        out.append(b)
    if not out:
        raise ValueError("need at least one query budget")
    return tuple(sorted(set(out)))


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"unknown label mode {mode!r}; valid: {', '.join(MODES)}")
    return mode


def query_set(train_x: torch.Tensor, budget: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``budget`` random training images (without replacement), each with one frozen random
    crop (4-pixel zero padding) and horizontal-flip draw; ``(images uint8 (Q, C, H, W), indices (Q,))``.

    The same ``(budget, seed)`` gives the same images for every victim and both label modes.
    """
    check_budgets(budget, len(train_x))
    g = torch.Generator().manual_seed(int(seed))
    idx = torch.randperm(len(train_x), generator=g)[:budget]
    return augment_once(train_x[idx], g, crop_padding=4, flip=True, cutout=0), idx


@torch.no_grad()
def victim_answers(victim: nn.Module, x_uint8: torch.Tensor, mode: str, batch_size: int = 500) -> torch.Tensor:
    """The victim's answer to each query: ``hard`` → argmax classes int64 ``(Q,)``; ``soft`` →
    softmax probabilities float32 ``(Q, K)`` (fp32 inference, eval mode, on the victim's device)."""
    _check_mode(mode)
    probs = predict_probs(victim, x_uint8, batch_size)
    return probs.argmax(dim=1) if mode == "hard" else probs


def predict_probs(model: nn.Module, x_uint8: torch.Tensor, batch_size: int = 500, log: bool = False) -> torch.Tensor:
    """Softmax probabilities (or log-probabilities) ``(N, K)`` float32 on the CPU; fp32, eval mode."""
    def probabilities(logits: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        return F.log_softmax(logits, dim=1) if log else logits.softmax(dim=1)

    return predict(model, x_uint8, batch_size, reduce=probabilities)


def per_image_ce(victim_probs: torch.Tensor, thief_log_probs: torch.Tensor) -> torch.Tensor:
    """``−Σ_k p_victim,k · log q_thief,k`` per image, ``(N,)`` nats."""
    if victim_probs.shape != thief_log_probs.shape:
        raise ValueError(f"victim_probs {tuple(victim_probs.shape)} and thief_log_probs "
                         f"{tuple(thief_log_probs.shape)} must describe the same images")
    return -(victim_probs.double() * thief_log_probs.double()).sum(dim=1)


def extraction_metrics(victim_probs: torch.Tensor, thief_log_probs: torch.Tensor, y: torch.Tensor) -> dict:
    """How well a thief imitates its victim on ``N`` test images with labels ``y`` ``(N,)``.

    ``victim_probs`` ``(N, K)``: the victim's softmax; ``thief_log_probs`` ``(N, K)``: the thief's
    log-softmax on the same images (:func:`predict_probs` with ``log=True``). Returns ``ce`` =
    H(p_victim, q_thief) (nats, mean over images), ``victim_entropy`` = H(p_victim),
    ``kl`` = ce − victim_entropy, ``thief_acc`` and ``victim_acc`` (fractions, against ``y``),
    ``agreement`` (fraction of images where the two argmax classes agree), ``victim_majority`` (the
    share of the victim's most frequent predicted class: the agreement a constant thief reaches)
    and ``n_eval``.
    """
    if len(y) != len(victim_probs):
        raise ValueError(f"{len(y)} labels for {len(victim_probs)} images: they must describe the same images")
    ce = per_image_ce(victim_probs, thief_log_probs)
    p = victim_probs.double()
    ent = -(p * torch.log(p.clamp_min(1e-300))).sum(dim=1)
    thief_pred, victim_pred = thief_log_probs.argmax(1), victim_probs.argmax(1)
    n = len(y)
    return {"ce": float(ce.mean()), "victim_entropy": float(ent.mean()), "kl": float((ce - ent).mean()),
            "thief_acc": float((thief_pred == y).sum()) / n, "victim_acc": float((victim_pred == y).sum()) / n,
            "agreement": float((thief_pred == victim_pred).sum()) / n,
            "victim_majority": float(torch.bincount(victim_pred, minlength=victim_probs.shape[1]).max()) / n,
            "n_eval": n}


@dataclass(frozen=True)
class ThiefVariant:
    """A Knockoff-Nets thief as a training variant (:mod:`nascore.attacks.training`; train it with
    ``zoo.get(thief_arch, profile, variant=ThiefVariant(...), **THIEF_RECIPE, epochs=E)``).

    victim, victim_key : registry name and cache key of the trained victim (``record["key"]``).
    load_victim : ``load_victim(victim, victim_key) -> nn.Module``, the trained victim the thief
        queries (the chapter passes a loader from the model cache; a module-level function, so
        the variant pickles to training workers). Not part of the config.
    budget : number of queries Q (>= 1).
    mode : ``"hard"`` or ``"soft"`` (see the module docstring).
    query_seed : seed of the query set (which images, which crop/flip); independent of the
        thief's training seed, so thieves of different seeds see the same queries.
    """

    victim: str
    victim_key: str
    budget: int
    mode: str = "hard"
    query_seed: int = 0
    load_victim: Callable[[str, str], nn.Module] = field(compare=False, repr=False, kw_only=True)

    def __post_init__(self):
        _check_mode(self.mode)
        check_budgets(self.budget)

    def config(self) -> dict:
        return {"attack": "knockoff_nets", "sampling": "random", "victim": self.victim,
                "victim_key": self.victim_key, "budget": self.budget, "mode": self.mode,
                "query_seed": self.query_seed}

    def inputs(self, train_x: torch.Tensor, train_y: torch.Tensor, seed: int):
        x, _ = query_set(train_x, self.budget, self.query_seed)
        targets = victim_answers(self.load_victim(self.victim, self.victim_key), x, self.mode)
        return TrainingInputs(train_x=x, train_y=targets, frozen=torch.ones(len(x), dtype=torch.bool))

    def initial_state(self, name: str, profile, seed: int) -> dict | None:
        return None  # a fresh initialisation (the artifact: --pretrain False for the thief)
