"""Backdoor injection: fine-tune a clean zoo model with stamped batches, evaluated after every epoch.

Protocol §4.3 (``bash/backdoor.sh``, ``mitigation_backdoor.sh``): the trained model is fine-tuned for
20 epochs with SGD lr 0.01, momentum 0.9, weight decay 5e-4, **no scheduler, no gradient clipping, no
cutout** (crop and flip stay), batch 96, every batch carrying the attack's stamped, relabelled copies.
After every epoch: clean accuracy, the ASR on all stamped test images (the artifact's counting, which
includes target-class images, and the standard one, which excludes them) and the clean-accuracy drop
CAD = clean accuracy before − after. :func:`select_epoch` applies the artifact's epoch selection.

Two ways to run it:

* :class:`BackdoorFinetune` — a training variant (:mod:`nascore.attacks.training`; ``initial_state`` =
  the clean model's weights, ``inputs`` = the training images with the attack's ``poison_batch`` as
  ``batch_transform``): ``zoo.get(name, profile, variant=..., **FINETUNE_RECIPE)`` trains and caches the
  final weights only.
* :class:`InjectionJob` — the same fine-tuning run **epoch by epoch** with the backdoor evaluated in
  between (the trainer's history has no ASR); the chapter runs it through the model cache,
  resumably and in parallel (:mod:`nascore.findings.backdoor_injection`: ``inject``, ``inject_many``).
  This module holds what decides the numbers of such a run (recipe, subset, epoch selection) and
  none of the cache.

Deviation from the artifact, stated: the artifact saves the weights of the selected epoch; here the
final weights are kept and both the selected and the final epoch's numbers are recorded.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Callable

import numpy as np
import torch
from torch import nn

from ...fingerprint import module_fingerprint
from ...models import family
from ...train import Recipe
from .badnet import BadNet
from .base import Backdoor
from .imc import IMC
from .latent import LatentBackdoor
from .trojannn import TrojanNN
from ..training import TrainingInputs

#: The attacks by name (valid choices of :func:`make_attack`).
ATTACKS: dict[str, type[Backdoor]] = {"badnet": BadNet, "trojannn": TrojanNN, "latent": LatentBackdoor, "imc": IMC}

#: The fine-tuning recipe of protocol §4.3 (epochs are set per profile).
FINETUNE_RECIPE = dict(batch_size=96, optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4, nesterov=False,
                       schedule="constant", grad_clip=None, crop_padding=4, flip=True, cutout=0, eval_points=0)

#: The artifact's epoch selection: an epoch's ASR counts as 0 if clean accuracy fell by more than
#: ``MAX_CAD`` points, but only when the clean model's accuracy exceeds ``MIN_CLEAN`` % (``BadNet.validate_fn``).
MAX_CAD, MIN_CLEAN = 3.0, 40.0

_CODE = ("nascore.attacks.backdoor.base", "nascore.attacks.backdoor.trigger", "nascore.attacks.backdoor.features",
         "nascore.attacks.backdoor.badnet", "nascore.attacks.backdoor.trojannn", "nascore.attacks.backdoor.latent",
         "nascore.attacks.backdoor.imc", "nascore.attacks.backdoor.finetune", "nascore.findings.backdoor_injection")


def make_attack(name: str, **params) -> Backdoor:
    """A configured backdoor attack by name; unknown names or parameters raise before any compute."""
    if name not in ATTACKS:
        raise ValueError(f"unknown backdoor attack {name!r}; valid: {', '.join(ATTACKS)}")
    cls = ATTACKS[name]
    valid = [f.name for f in fields(cls) if f.init]
    bad = sorted(set(params) - set(valid))
    if bad:
        raise ValueError(f"unknown parameter(s) {bad} for {name!r}; valid: {', '.join(valid)}")
    return cls(**params)


def finetune_recipe(epochs: int, **overrides) -> Recipe:
    """The protocol's fine-tuning recipe for ``epochs`` epochs (``overrides``: other Recipe fields)."""
    return Recipe(**{**FINETUNE_RECIPE, "epochs": epochs, **overrides})


def training_subset(train_x: torch.Tensor, train_y: torch.Tensor, n: int | None, seed: int):
    """The first ``n`` images of a seeded permutation of the training set (all of them if ``n`` is None)."""
    if n is None or n >= len(train_y):
        return train_x, train_y
    if n < 1:
        raise ValueError(f"train_images must be >= 1 or None, got {n}")
    idx = torch.randperm(len(train_y), generator=torch.Generator().manual_seed(1228 + seed))[:n].sort().values
    return train_x[idx], train_y[idx]


def pack_bits(b: torch.Tensor) -> str:
    """A bool vector as a hex string (8 images per byte) for JSON records."""
    return np.packbits(b.cpu().numpy().astype(np.uint8)).tobytes().hex()


def unpack_bits(s: str, n: int) -> torch.Tensor:
    return torch.from_numpy(np.unpackbits(np.frombuffer(bytes.fromhex(s), dtype=np.uint8))[:n].astype(bool))


def select_epoch(rows: list[dict], max_cad: float = MAX_CAD, min_clean: float = MIN_CLEAN) -> dict:
    """The artifact's epoch selection over ``rows`` = [clean model (epoch 0), epoch 1, …] (values in % / pp).

    Each epoch's score is its ASR (artifact counting), set to 0 when ``CAD > max_cad`` and the clean model's
    accuracy exceeds ``min_clean``; the selected epoch has the highest score (the last one on ties, as the
    artifact's ``>=``). Returns ``epoch``, ``asr`` (the score), ``asr_raw``, ``asr_standard``, ``cad``,
    ``clean_acc`` of that epoch and ``zeroed_epochs``.
    """
    if len(rows) < 2 or rows[0]["epoch"] != 0:
        raise ValueError("select_epoch needs the clean model's row (epoch 0) and at least one fine-tuning epoch")
    base = rows[0]["clean_acc"]
    scores = [0.0 if (r["cad"] > max_cad and base > min_clean) else r["asr"] for r in rows[1:]]
    best = max(range(len(scores)), key=lambda i: (scores[i], i))
    r = rows[1 + best]
    return {"epoch": r["epoch"], "asr": scores[best], "asr_raw": r["asr"], "asr_standard": r["asr_standard"],
            "cad": r["cad"], "clean_acc": r["clean_acc"], "zeroed_epochs": sum(
                1 for s, q in zip(scores, rows[1:]) if s == 0.0 and q["asr"] > 0)}


# ---------------------------------------------------------------------------------------- zoo Variant
@dataclass(frozen=True)
class BackdoorFinetune:
    """Fine-tuning of the clean model with ``backdoor`` (prepared) as a training variant
    (:mod:`nascore.attacks.training`).

    ``clean_key`` is the clean model's cache key (so the fine-tuned model's key depends on it);
    ``train_images`` limits fine-tuning to a seeded subset of the training set (None = all);
    ``load_clean(name, clean_key) -> nn.Module`` gives the clean trained model to start from
    (the caller passes a loader from the model cache, e.g. ``nascore.zoo.load``'s model; a
    module-level function, so the variant pickles to training workers). Not part of the config.
    """

    backdoor: Backdoor
    clean_key: str
    train_images: int | None = None
    load_clean: Callable[[str, str], nn.Module] = field(compare=False, repr=False, kw_only=True)

    def config(self) -> dict:
        return {"backdoor": self.backdoor.config(), "clean_key": self.clean_key, "train_images": self.train_images}

    def inputs(self, train_x, train_y, seed):
        x, y = training_subset(train_x, train_y, self.train_images, seed)
        return TrainingInputs(x, y, batch_transform=self.backdoor.poison_batch)

    def initial_state(self, name, profile, seed):
        """The clean model's weights (``load_clean(name, clean_key)``); ``profile`` and ``seed`` are
        already part of ``clean_key``."""
        return self.load_clean(name, self.clean_key).state_dict()


# ---------------------------------------------------------------------------------------- per-epoch path
@dataclass(frozen=True)
class InjectionJob:
    """One fine-tuning run: ``attack`` (unprepared) into the clean ``model`` (zoo name) of training ``seed``."""

    attack: Backdoor
    model: str
    epochs: int
    seed: int = 0
    train_images: int | None = None
    test_images: int | None = None

    def __post_init__(self):
        family(self.model)  # raises on unknown names, listing the valid ones
        if not isinstance(self.attack, Backdoor):
            raise ValueError(f"attack must be a nascore backdoor ({', '.join(ATTACKS)}), got {self.attack!r}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        for k in ("train_images", "test_images"):
            v = getattr(self, k)
            if v is not None and v < 1:
                raise ValueError(f"{k} must be >= 1 or None, got {v}")

    def recipe(self, precision: str = "fp32") -> Recipe:
        """The fine-tuning recipe (protocol §4.3) at the clean model's training precision."""
        return finetune_recipe(self.epochs, precision=precision)

    def key_config(self, clean_key: str, precision: str = "fp32") -> dict:
        return {"attack": self.attack.config(), "clean_key": clean_key, "epochs": self.epochs,
                "recipe": self.recipe(precision).to_dict(), "train_images": self.train_images,
                "test_images": self.test_images, "seed": self.seed,
                "code": {m: module_fingerprint(m)[:16] for m in _CODE}}


