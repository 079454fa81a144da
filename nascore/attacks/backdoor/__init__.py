"""Backdoor attacks behind one interface (Pang et al., USENIX Security 2022, Fig. 7, Table 4; protocol §4.3).

Configure once, bind to a model, then ``stamp(x)``, ``poison_batch(x, y, generator)``, ``asr(model, x, y)``
(see :mod:`.base`). Images are [0,1] float ``(N, C, H, W)``, the trigger lives in pixel space, and
everything is batched on the images' device.

* :class:`BadNet` — fixed 3×3 white square, top-left, target 0, 2 % per batch (the artifact's backdoor.sh);
* :class:`TrojanNN` — BadNet plus a trigger that excites the least-used penultimate units (alpha 0.7, 1 %);
* :class:`LatentBackdoor` — a trigger matched to the target class's mean feature (never run by the artifact);
* :class:`IMC` — TrojanNN plus trigger re-optimisation every epoch (never run by the artifact).

Injection by fine-tuning the clean model: an :class:`InjectionJob` (per-epoch evaluation; run through the
model cache, resumably and in parallel, by :mod:`nascore.findings.backdoor_injection`) or
:class:`BackdoorFinetune`, a training variant (:mod:`nascore.attacks.training`).
"""
from .badnet import BadNet, badnet
from .base import Backdoor, BackdoorScore
from .features import mean_features, pooled_features
from .finetune import (ATTACKS, FINETUNE_RECIPE, MAX_CAD, MIN_CLEAN, BackdoorFinetune, InjectionJob, finetune_recipe,
                       make_attack, pack_bits, select_epoch, training_subset, unpack_bits)
from .imc import IMC
from .latent import LatentBackdoor
from .trigger import Trigger
from .trojannn import TrojanNN

__all__ = ["ATTACKS", "FINETUNE_RECIPE", "MAX_CAD", "MIN_CLEAN", "Backdoor", "BackdoorScore", "BadNet", "TrojanNN",
           "LatentBackdoor", "IMC", "Trigger", "BackdoorFinetune", "InjectionJob", "badnet", "make_attack",
           "finetune_recipe", "select_epoch", "training_subset", "pack_bits", "unpack_bits",
           "pooled_features", "mean_features"]
