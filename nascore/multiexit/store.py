"""Train-or-load multi-exit networks through the model cache.

The backbone is a registry model trained by the zoo's recipe (:func:`nascore.zoo.get`, the same
profile recipe as every other model); the SDN built on it and its IC-only training are cached by
:func:`nascore.zoo.cached` under a key that includes the backbone's own zoo key, the IC layout,
the :class:`~.train_ics.ICRecipe` and the seed (plus the fingerprint of the SDN's code).
"""
from __future__ import annotations

import copy

import torch

from .. import zoo
from ..profiles import Profile, get_profile
from .sdn import SDN
from .train_ics import ICRecipe, fit_ics


def ic_recipe(profile: Profile) -> ICRecipe:
    """The IC-only recipe at ``profile`` (``sdn_ic_epochs``, ``sdn_ic_reuse``, ``sdn_ic_train_images``).

    Reused features (``sdn_ic_reuse > 1``) are cached in bfloat16, so a draw of the quick profile's
    10,000 images fits in one chunk; features used once are kept in float32."""
    return ICRecipe(epochs=profile.deepsloth.sdn_ic_epochs, reuse=profile.deepsloth.sdn_ic_reuse, train_images=profile.deepsloth.sdn_ic_train_images,
                    cache_dtype="bfloat16" if profile.deepsloth.sdn_ic_reuse > 1 else "float32")


def backbone_splits(backbone: zoo.TrainedModel, data=None):
    """The training set and the test subset the backbone was trained/evaluated on."""
    cfg = zoo.ModelConfig(**backbone.record["config"])
    return zoo.splits(data if data is not None else zoo.dataset(), cfg)


def trained_sdn(name: str, profile: str | Profile | None = None, seed: int = 0, layout="every",
                device: torch.device | str | None = None, backbone: zoo.TrainedModel | None = None,
                recipe: ICRecipe | None = None, progress: bool = False, data=None) -> zoo.TrainedModel:
    """The IC-only-trained SDN of registry model ``name`` (trained and cached if missing).

    ``backbone`` may pass an already loaded ``zoo.get(name, profile, seed)`` result. Returns a
    :class:`nascore.zoo.TrainedModel` whose model is the :class:`SDN` (eval mode) and whose record
    holds the IC training ``history`` and ``metrics``.
    """
    prof = get_profile(profile)
    if backbone is None:
        backbone = zoo.get(name, prof, seed=seed, device=device, progress=progress, data=data)
    recipe = recipe or ic_recipe(prof)
    layout_key = layout if isinstance(layout, str) else [int(b) for b in layout]
    config = {"backbone": name, "backbone_key": backbone.record["key"], "layout": layout_key,
              "recipe": recipe.to_dict(), "seed": int(seed)}

    def build() -> SDN:
        torch.manual_seed(seed)
        return SDN(copy.deepcopy(backbone.model).float(), layout)

    def fit(sdn: SDN, checkpoint):
        train_x, train_y, _, _ = backbone_splits(backbone, data)
        history = fit_ics(sdn, train_x, train_y, recipe, seed=seed, device=device, checkpoint=checkpoint,
                          progress=progress)
        metrics = {"final_loss": history[-1]["loss"], "final_ic_train_acc": history[-1]["ic_acc"],
                   "feature_seconds": sum(h["feature_seconds"] for h in history),
                   "ic_seconds": sum(h["ic_seconds"] for h in history),
                   "ic_params": sum(p.numel() for p in sdn.ics.parameters()),
                   "n_train": min(len(train_y), recipe.train_images or len(train_y))}
        return history, metrics

    return zoo.cached(f"sdn-{name}", config, build, fit, device=device, profile=prof.name, seed=seed)
