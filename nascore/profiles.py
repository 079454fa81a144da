"""The three scales of the book, defined in one place (GUIDE.md, "Profiles").

* ``smoke`` — CI: every notebook end to end in a minute or two on 2 cores (all nine in about
  8 minutes, measured); checks code paths, its numbers mean nothing.
* ``quick`` — the default on a CPU: narrow networks, one pass over the full CIFAR-10 training set,
  the full test set. The whole book takes about eight hours from scratch on 2 cores,
  about two with every model cached (README "Book run times", the book's status appendix).
  Its findings are real measurements, labelled with this scale.
* ``paper`` — the protocols' settings (C=36, 20 cells, full-width manual models, 200 epochs,
  full data, 1,000 PGD images): a GPU job.

Notebooks take ``profile`` as a papermill parameter, plus overrides of single knobs
(:meth:`Profile.override`). Which profile a notebook uses when opened by hand: the parameters
cell reads ``$NASCORE_PROFILE`` and defaults to ``quick``; CI sets ``NASCORE_PROFILE=smoke``.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import math
import os
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from .models import MANUAL_NAMES, SDN_NAMES, STUDY_NAS, family, names
from .models.genotypes import MITIGATION_ARCHS


@dataclass(frozen=True)
class EvasionSettings:
    """Chapter 2, evasion (automl protocol §4.1): image counts, budgets in [0,1] pixel units, NES queries."""

    pgd_images: int = 1000
    eps_linf: tuple[float, ...] = (1 / 255, 2 / 255, 4 / 255, 8 / 255)
    eps_l2: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0)
    sweep_images: int = 1000
    sweep_steps: int = 10
    nes_images: int = 100
    nes_samples: int = 50  # antithetic pairs per gradient estimate (100 queries, the artifact's)
    nes_max_queries: int = 10_000


@dataclass(frozen=True)
class SmoothnessSettings:
    """Chapters 3–4, smoothness (automl protocol §5): image counts, power/Hutchinson iterations, contour grid."""

    gv_images: int = 512
    hessian_images: int = 256
    hessian_iters: int = 20
    trace_samples: int = 20
    contour_grid: int = 41
    contour_images: int = 20


@dataclass(frozen=True)
class PoisoningSettings:
    """Chapter 5, random-label poisoning (automl protocol §4.2; ``None`` = the protocol's / the zoo's)."""

    poison_rates: tuple[float, ...] = (0.1, 0.2, 0.4)  # random wrong-label rates; 0 % is the reference
    poison_models: tuple[str, ...] | None = None  # models poisoned (and their 0 % reference); None = all
    poison_epochs: int | None = 50  # protocol: 50 epochs from scratch; None = the zoo's epochs
    poison_train_per_class: int | None = None  # training images per class; None = the zoo's
    poison_test_per_class: int | None = None  # test images per class; None = the zoo's


@dataclass(frozen=True)
class BackdoorSettings:
    """Chapter 6, backdoors by fine-tuning (automl protocol §4.3, §5.5; ``None`` = all models / the zoo's data)."""

    backdoor_models: tuple[str, ...] | None = None  # BadNet and TrojanNN into these; None = all
    backdoor_epochs: int = 20  # fine-tuning epochs (protocol: 20)
    backdoor_train_images: int | None = None  # fine-tuning images per epoch; None = the zoo's training set
    backdoor_test_images: int | None = None  # test images evaluated after every epoch; None = the zoo's
    backdoor_poison_scale: float = 1.0  # multiplies each attack's per-batch poison rate (BadNet 0.02, TrojanNN 0.01)
    trojannn_neurons: tuple[int, ...] = (1, 2, 4, 8)  # the neuron-number sweep (2 = the default run)
    neuron_sweep_models: tuple[str, ...] | None = None  # None = all backdoor models
    latent_imc_models: tuple[str, ...] | None = None  # latent backdoor and IMC; None = all backdoor models
    latent_samples_per_class: int = 1000  # latent backdoor's sample per class (protocol §4.3)
    latent_epochs: int = 100  # Adam passes of the latent trigger optimisation
    imc_inner_iters: int = 20  # IMC trigger re-optimisation passes per epoch
    imc_inner_batches: int = 21  # training batches per pass


@dataclass(frozen=True)
class ExtractionSettings:
    """Chapter 7, model extraction (automl protocol §4.4; ``None`` = all models / budgets / test images)."""

    extraction_models: tuple[str, ...] | None = None  # victims (and same-architecture thieves); None = all models
    extraction_budgets: tuple[int, ...] = (1000, 2000, 4000, 8000, 16000)  # queries Q per thief (hard labels)
    extraction_soft_budgets: tuple[int, ...] | None = None  # budgets also run with soft labels; None = all
    thief_epochs: int = 25  # the artifact's KnockoffNets nb_epochs
    extraction_test_images: int | None = None  # test images scoring H(p_victim, q_thief); None = all 10,000


@dataclass(frozen=True)
class MembershipSettings:
    """Chapter 8, membership inference (automl protocol §4.5)."""

    membership_models: tuple[str, ...] | None = None  # None = the NAS and manual models
    mia_samples: int = 50  # HopSkipJump: members = confidence-matched non-members (the artifact: 50 + 50)
    mia_score_samples: int = 5000  # score-based attacks: random members = random non-members
    mia_pool_images: int | None = None  # test images screened for non-members; None = all 10,000
    mia_reference_models: int = 0  # offline-LiRA reference models per architecture (0 = LiRA off)
    # The victims' training (a deviation from the protocol's 200 epochs on all images, stated on the page):
    # None = the zoo's own models; otherwise every victim is trained alike on this many class-balanced
    # training images per class for this many epochs, so that members are seen often enough to be told apart.
    mia_victim_per_class: int | None = None
    mia_victim_epochs: int | None = None


@dataclass(frozen=True)
class DeepSlothSettings:
    """Chapter 9, DeepSloth (protocol deepsloth.md; defaults are the protocol's). Image counts are test
    images per backbone, the first ones of the profile's test subset."""

    sdn_models: tuple[str, ...] = SDN_NAMES
    sdn_scale: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # backbone -> scale knobs
    sdn_ic_epochs: int = 25  # IC-only training passes over the training set (lr x0.1 at 60 %)
    sdn_ic_reuse: int = 1  # passes per augmentation draw whose pooled features are computed once
    sdn_ic_train_images: int | None = None  # class-balanced IC-training subset; None = the backbone's training set
    sloth_images: int = 10_000  # per-sample DeepSloth L-inf, PGD-20 and the universal attacks
    sloth_extra_images: int = 10_000  # per-sample L2 / L1 DeepSloth, PGD-avg, PGD-max (exploratory)
    sloth_iteration_scale: float = 1.0  # fraction of the protocol's iterations of the L2/L1 attacks
    sloth_universal_images: int = 250  # crafting set of the universal attacks: first training images
    sloth_class_images: int = 250  # class-universal: crafting training images per class
    sloth_uap_images: int = 100  # DeepFool-UAP crafting images
    sloth_uap_passes: int = 100  # DeepFool-UAP passes over them at most
    sloth_latency_images: int = 1_000  # batch-1 wall-clock timing, clean and attacked
    sloth_bootstrap: int = 10_000  # bootstrap resamples over test images


#: The chapter sections of a profile: attribute name -> settings class.
SECTIONS: Mapping[str, type] = MappingProxyType({
    "evasion": EvasionSettings, "smoothness": SmoothnessSettings, "poisoning": PoisoningSettings,
    "backdoor": BackdoorSettings, "extraction": ExtractionSettings, "membership": MembershipSettings,
    "deepsloth": DeepSlothSettings,
})
#: Every chapter knob -> its section (knob names are unique across sections, so papermill and
#: :meth:`Profile.override` take them flat: ``-p pgd_images 50``).
KNOB_SECTION: Mapping[str, str] = MappingProxyType(
    {f.name: section for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class Profile:
    """One scale of the whole book: the zoo's models, data and training at the top level, each
    chapter's knobs in its own section (``P.evasion.pgd_images``, ``P.deepsloth.sloth_images``, …;
    :data:`SECTIONS`). Field units: counts of images/models/epochs, minutes.

    Knobs are overridden by their (unique) names, flat — ``P.override(pgd_images=50)`` — and
    validated before any compute (:meth:`override`)."""

    name: str
    description: str
    # Models and their size
    nas_models: tuple[str, ...]
    manual_models: tuple[str, ...]
    mitigation_models: tuple[str, ...]
    nas_scale: Mapping[str, Any]
    manual_scale: Mapping[str, Any]
    # Data
    train_per_class: int | None  # None = all 5,000 per class
    test_per_class: int | None  # evaluation subset of the test set; None = all 1,000 per class
    subset_seed: int = 1228  # the artifact's data seed
    # Training (protocol §3; other recipe values keep their defaults unless ``recipe`` overrides them)
    epochs: int = 200
    batch_size: int = 96
    seeds: tuple[int, ...] = (0,)
    recipe: Mapping[str, Any] = field(default_factory=dict)  # further nascore.train.Recipe fields
    extra_seeds: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # model -> additional seeds
    model_scale: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # model -> knobs over its family's
    model_recipe: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # model -> Recipe fields over the profile's
    # Size-matched variants (nascore.models.SIZE_VARIANTS) trained beside the study's models, at the width
    # model_scale gives them: the common support of every size-adjusted family comparison (never raw units)
    size_matched_models: tuple[str, ...] = ()
    # Minutes each chapter may take at this profile (the book's budget, measured in README)
    chapter_minutes: Mapping[str, float] = field(default_factory=dict)
    # The chapters' sections
    evasion: EvasionSettings = field(default_factory=EvasionSettings)
    smoothness: SmoothnessSettings = field(default_factory=SmoothnessSettings)
    poisoning: PoisoningSettings = field(default_factory=PoisoningSettings)
    backdoor: BackdoorSettings = field(default_factory=BackdoorSettings)
    extraction: ExtractionSettings = field(default_factory=ExtractionSettings)
    membership: MembershipSettings = field(default_factory=MembershipSettings)
    deepsloth: DeepSlothSettings = field(default_factory=DeepSlothSettings)

    def __post_init__(self):
        for section, cls in SECTIONS.items():  # Profile(**p.to_dict()) in worker processes: dicts -> sections
            value = getattr(self, section)
            if isinstance(value, Mapping):
                object.__setattr__(self, section, cls(**value))
            elif not isinstance(value, cls):
                raise TypeError(f"Profile.{section} must be a {cls.__name__} or a mapping, got {type(value).__name__}")
        from .models import SIZE_VARIANTS
        for name in self.size_matched_models:
            if name not in SIZE_VARIANTS:
                raise ValueError(f"profile {self.name!r}: size_matched_models lists {name!r}, which is not a "
                                 f"size-matched variant; valid: {', '.join(SIZE_VARIANTS)}")
            knob = "width" if family(name) == "manual" else "C"
            if knob not in self.model_scale.get(name, {}):
                raise ValueError(f"profile {self.name!r}: size-matched variant {name!r} needs its own {knob} in "
                                 f"model_scale (else it is a copy of {SIZE_VARIANTS[name]!r})")

    @property
    def models(self) -> tuple[str, ...]:
        """Every zoo model of the profile: NAS, manual, mitigations, then the size-matched variants."""
        return self.nas_models + self.manual_models + self.mitigation_models + self.size_matched_models

    def scale_for(self, model: str) -> dict:
        """Scale knobs passed to :func:`nascore.models.build` for ``model`` at this profile."""
        if family(model) == "sdn":
            return dict(self.deepsloth.sdn_scale.get(model, {}))
        base = self.manual_scale if family(model) == "manual" else self.nas_scale
        return {**base, **self.model_scale.get(model, {})}

    def recipe_overrides(self, model: str | None = None) -> dict:
        """Keyword arguments for :class:`nascore.train.Recipe` at this profile; with ``model``, that
        model's own overrides (``model_recipe``, e.g. more epochs for one backbone) on top."""
        base = {"epochs": self.epochs, "batch_size": self.batch_size, **dict(self.recipe)}
        return base if model is None else {**base, **self.model_recipe.get(model, {})}

    def seeds_for(self, model: str) -> tuple[int, ...]:
        """The seeds trained for ``model``: the profile's seeds plus any extra ones for it."""
        return tuple(dict.fromkeys(self.seeds + tuple(self.extra_seeds.get(model, ()))))

    def override(self, **knobs) -> "Profile":
        """A copy with some knobs replaced, by their flat names (top-level fields or any section's knob).
        Unknown names, values of the wrong type and values out of range raise ``ValueError`` naming the
        knob, the value and what is valid — before any compute."""
        valid = [f.name for f in dataclasses.fields(self) if f.name != "name" and f.name not in SECTIONS]
        valid += list(KNOB_SECTION)
        bad = sorted(set(knobs) - set(valid))
        if bad:
            raise ValueError(f"unknown profile knob(s) {bad}; valid: {', '.join(valid)}")
        top, per_section = {}, {}
        for key, value in knobs.items():
            value = _validated(key, value)
            if key in KNOB_SECTION:
                per_section.setdefault(KNOB_SECTION[key], {})[key] = value
            else:
                top[key] = value
        for section, changes in per_section.items():
            top[section] = dataclasses.replace(getattr(self, section), **changes)
        return dataclasses.replace(self, **top)

    def to_dict(self) -> dict:
        """Plain, picklable fields (``Profile(**p.to_dict()) == p`` up to mapping types): mappings,
        nested ones included, and the sections become dicts."""
        def plain(v):
            if dataclasses.is_dataclass(v):
                return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
            return {k: plain(x) for k, x in v.items()} if isinstance(v, Mapping) else v
        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _profile(**knobs) -> Profile:
    """A profile from flat knobs (as :meth:`Profile.override` takes them): the chapter knobs are
    gathered into their sections, the rest are top-level fields."""
    sections: dict[str, dict] = {}
    for key in [k for k in knobs if k in KNOB_SECTION]:
        sections.setdefault(KNOB_SECTION[key], {})[key] = knobs.pop(key)
    return Profile(**knobs, **{s: SECTIONS[s](**kw) for s, kw in sections.items()})


#: Integer knobs that count something and must be >= 1 (other integer knobs must be >= 0).
POSITIVE_COUNTS = ("epochs", "batch_size", "pgd_images", "sweep_images", "sweep_steps", "nes_images",
                   "nes_samples", "nes_max_queries", "gv_images", "hessian_images", "hessian_iters",
                   "trace_samples", "contour_grid", "contour_images", "train_per_class", "test_per_class")
POSITIVE_COUNTS += ("sdn_ic_epochs", "sdn_ic_reuse", "sdn_ic_train_images", "sloth_images", "sloth_extra_images", "sloth_universal_images",
                    "sloth_class_images", "sloth_uap_images", "sloth_uap_passes", "sloth_latency_images",
                    "sloth_bootstrap", "mia_victim_per_class", "mia_victim_epochs")
_MODEL_LISTS = ("nas_models", "manual_models", "mitigation_models", "size_matched_models", "sdn_models")


def _check_per_model(value: Any, what: str, fail) -> None:
    """``value`` must map registered model names to mappings (of ``what``), or ``fail(why)``."""
    if not isinstance(value, Mapping) or not all(isinstance(v, Mapping) for v in value.values()):
        fail(f"expected a mapping model -> {{{what}: value}}")
    unknown = [m for m in value if m not in names()]
    if unknown:
        fail(f"unknown model(s) {unknown}; valid: {', '.join(names())}")


def _validated_recipe(value: Any, fail) -> Mapping[str, Any]:
    """``value`` as a read-only mapping of :class:`nascore.train.Recipe` fields, or ``fail(why)``."""
    from .train import Recipe
    if not isinstance(value, Mapping):
        fail("expected a mapping of nascore.train.Recipe fields")
    try:
        Recipe(**dict(value))
    except (TypeError, ValueError) as err:
        fail(str(err))
    return MappingProxyType(dict(value))


def _validated(key: str, value: Any) -> Any:
    """Check one override against the field's declared type and range; return it normalised."""
    import typing

    hint = typing.get_type_hints(SECTIONS[KNOB_SECTION[key]] if key in KNOB_SECTION else Profile)[key]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    def fail(why: str):
        raise ValueError(f"profile knob {key}={value!r}: {why}")
    if key in _MODEL_LISTS:
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            fail("expected a list of model names")
        unknown = [m for m in value if m not in names()]
        if unknown:
            fail(f"unknown model(s) {unknown}; valid: {', '.join(names())}")
        return tuple(value)
    if key == "model_scale":
        from .models import scale_knobs
        _check_per_model(value, "scale knob", fail)
        for model, knobs in value.items():
            bad = sorted(set(knobs) - set(scale_knobs(model)))
            if bad:
                fail(f"unknown scale knob(s) {bad} for {model!r}; valid: {', '.join(scale_knobs(model))}")
        return MappingProxyType({m: MappingProxyType(dict(k)) for m, k in value.items()})
    if key == "recipe":
        return _validated_recipe(value, fail)
    if key == "model_recipe":
        _check_per_model(value, "nascore.train.Recipe field", fail)
        return MappingProxyType({m: _validated_recipe(r, fail) for m, r in value.items()})
    if origin is typing.Union or (origin is not None and type(None) in args):  # X | None
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            fail("expected an integer")
        low = 1 if key in POSITIVE_COUNTS else 0
        if value < low:
            fail(f"must be >= {low}")
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            fail("expected a finite number >= 0")
        value = float(value)
    elif origin is tuple:
        if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
            fail("expected a non-empty list")
        inner = args[0]
        if inner is float and not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
                                      for v in value):
            fail("expected positive numbers")
        if inner is int and not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
            fail("expected integers >= 0")
        value = tuple(value)
    elif origin in (collections.abc.Mapping, dict) or hint in (Mapping, dict):
        if not isinstance(value, Mapping):
            fail("expected a mapping")
        value = MappingProxyType(dict(value))
    elif hint is str and not isinstance(value, str):
        fail("expected a string")
    return value


_FULL_DATA = dict(train_per_class=None, test_per_class=None)

#: The short-schedule recipe of the CPU profiles (issue "quick v2"; chosen by the pilot,
#: ``benchmarks/pilot_quick_recipe.py``, README "Quick profile v2"): Nesterov SGD, a linear warm-up
#: over 15 % of the steps to the peak lr 0.1 (at batch 64: +1.4 to +2.4 points over batch 128 / lr 0.2
#: at the same CPU cost), then linear decay to 0; no cutout (the small networks under-fit); test
#: accuracy evaluated at 10 points inside the run on 2,000 test images (the early-convergence curve of
#: chapter 1). Deviations from protocol §3 (200 epochs, batch 96, lr 0.025 cosine, cutout 16, dropout
#: 0.2) are stated in chapter 1.
SHORT_RECIPE = MappingProxyType({"nesterov": True, "lr": 0.1, "schedule": "warmup_linear", "warmup_fraction": 0.15,
                                 "cutout": 0, "eval_points": 10, "curve_images": 2000})

#: The size-matched variants of the quick zoo (README "Common support"): narrower manual networks inside the NAS
#: cells' parameter range and wider cells inside the manual one. Chapters 1-4 use all four; chapters 5-8 only the
#: two narrow manual networks (the C=16 cells cost three C=8 cells each, and the narrow ones already give both
#: families >= 2 models inside the parameter overlap).
#: Chosen by benchmarks/pilot_size_matched.py: VGG-13-BN and DLA-34 at width 1/16 (45.4 %, 46.4 %) and VGG-13-BN
#: at 1/12 (48.9 %) trained under the 50 % floor and are not used.
_SIZE_MATCHED_QUICK = ("resnet18_narrow", "densenet121_narrow", "darts_wide", "enas_wide")

PROFILES: Mapping[str, Profile] = MappingProxyType({
    "smoke": _profile(
        name="smoke",
        description="CI code-path check: 3 NAS + 3 manual + 3 mitigation models, tiny nets, 2 epochs on 200 images.",
        nas_models=("darts", "pc_darts", "snas_mild"),
        manual_models=("resnet18", "vgg13_bn", "densenet121"),
        mitigation_models=MITIGATION_ARCHS,
        nas_scale=MappingProxyType({"C": 4, "layers": 3, "dropout": 0.0}),
        manual_scale=MappingProxyType({"width": 1 / 16}),
        train_per_class=20, test_per_class=10, epochs=2, batch_size=48,
        recipe=MappingProxyType({**SHORT_RECIPE, "curve_images": 100, "precision": "fp32"}),
        # a second seed of DARTS-V2 and of each mitigation: the Table-4 claims take seeds as units; a second
        # seed of each DeepSloth backbone: chapter 9's intervals include retraining (issue "valid verdicts")
        extra_seeds=MappingProxyType({"darts": (1,), "resnet18": (1,), **{m: (1,) for m in MITIGATION_ARCHS},
                                      **{n: (1,) for n in SDN_NAMES}}),
        size_matched_models=("resnet18_narrow",),
        model_scale=MappingProxyType({"resnet18_narrow": MappingProxyType({"width": 1 / 32})}),
        pgd_images=16, sweep_images=8, sweep_steps=3, nes_images=4, nes_samples=5, nes_max_queries=60,
        gv_images=8, hessian_images=16, hessian_iters=3, trace_samples=2, contour_grid=5, contour_images=2,
        chapter_minutes=MappingProxyType({"01_model_zoo": 1.0, "02_evasion": 0.5, "03_smoothness": 0.5,
                                          "04_mitigations": 0.5}),
        # Chapters 5–6: every code path once (40 % only; 0 % = the clean zoo; tiny fine-tuning).
        poison_rates=(0.4,), poison_epochs=None,
        backdoor_epochs=2, backdoor_train_images=96, trojannn_neurons=(1, 2),
        neuron_sweep_models=("darts", "resnet18"), latent_imc_models=("darts", "resnet18"),
        latent_samples_per_class=4, latent_epochs=1, imc_inner_iters=1, imc_inner_batches=1,
        # Chapter 9 (DeepSloth): code paths only
        sdn_scale=MappingProxyType({n: {"width": 1 / 16} for n in SDN_NAMES}),
        sdn_ic_epochs=2, sdn_ic_reuse=2, sloth_images=6, sloth_extra_images=2, sloth_iteration_scale=0.02,
        sloth_universal_images=10, sloth_class_images=1, sloth_uap_images=2, sloth_uap_passes=1,
        sloth_latency_images=4, sloth_bootstrap=200,
        extraction_models=("darts", "pc_darts", "resnet18", "vgg13_bn", "diy_deep"),
        extraction_budgets=(25, 50, 100), extraction_soft_budgets=(100,), thief_epochs=1, extraction_test_images=100,
        membership_models=("darts", "pc_darts", "resnet18", "vgg13_bn"),
        mia_samples=4, mia_score_samples=20, mia_pool_images=100, mia_reference_models=2,
    ),
    "quick": _profile(
        name="quick",
        description=("CPU scale (2 cores; the book takes about eight hours from scratch: README "
                     "'Book run times'): all 10 NAS "
                     "cells, 7 manual models and 3 mitigations, narrow networks (NAS C=8, 5 cells, no dropout; "
                     "manual width 1/8), one pass over the full 50,000-image training set with a short schedule, "
                     "evaluation on the full 10,000-image test set; DARTS-V2, the three mitigations and ResNet-18 with "
                     "a second seed; four size-matched variants for the size adjustment's common support "
                     "(two narrower manual networks, two cells at C=16)."),
        nas_models=STUDY_NAS,
        manual_models=MANUAL_NAMES,
        mitigation_models=MITIGATION_ARCHS,
        nas_scale=MappingProxyType({"C": 8, "layers": 5, "dropout": 0.0}),
        manual_scale=MappingProxyType({"width": 1 / 8}),
        # VGG's MLP-head dropout off, like the NAS ops' dropout: with it VGG-13-BN x1/8 under-fits in one epoch
        # (29.6 % test accuracy vs 53.9 % without; README "VGG head dropout").
        model_scale=MappingProxyType({"vgg13_bn": MappingProxyType({"dropout": 0.0}),
                                      # size-matched variants (README "Common support"): two manual networks
                                      # at 44.6k and 68.2k parameters, inside the NAS cells' 31.8k–69.7k, and
                                      # two cells at C=16 (130k, 212k) inside the manual networks' 119k–1.05M
                                      "resnet18_narrow": MappingProxyType({"width": 1 / 16}),
                                      "densenet121_narrow": MappingProxyType({"width": 1 / 12}),
                                      "darts_wide": MappingProxyType({"C": 16}),
                                      "enas_wide": MappingProxyType({"C": 16})}),
        size_matched_models=_SIZE_MATCHED_QUICK,
        **_FULL_DATA, epochs=1, batch_size=64,
        # fp32, not bf16: bf16 autocast is 1.04x (DARTS) to 1.29x (ResNet-18) faster here, but DARTS trained in
        # bf16 on this CPU is not bit-reproducible from one run to the next (benchmarks/determinism_probe.py;
        # fp32 is), and "same seed => same numbers" comes first.
        recipe=MappingProxyType({**SHORT_RECIPE, "precision": "fp32"}),
        # a second seed of DARTS-V2 and of each mitigation: the Table-4 claims take seeds as units; a second
        # seed of each DeepSloth backbone: chapter 9's intervals include retraining (issue "valid verdicts")
        extra_seeds=MappingProxyType({"darts": (1,), "resnet18": (1,), **{m: (1,) for m in MITIGATION_ARCHS},
                                      **{n: (1,) for n in SDN_NAMES}}),
        # NES: 10 antithetic pairs (21 queries per step incl. the success check), 10 steps = 212 queries, on 100
        # images so that ASR moves in 1-point steps; Hessian: power iteration to a 1 % tolerance, at most 20
        # products on 32 test images (worst case 640 image-products, as 8 x 64 before).
        pgd_images=200, sweep_images=64, sweep_steps=5, nes_images=100, nes_samples=10, nes_max_queries=212,
        gv_images=128, hessian_images=32, hessian_iters=20, trace_samples=6, contour_grid=21, contour_images=4,
        # Chapters 5–6 (≤ 20 min together on 2 cores), sized from single-thread training throughput (issue 8 probe:
        # darts C=8/5 cells 239 img/s, resnet18 ×1/8 1,033, densenet121 186; other models by their relative cost in
        # the quick-v1 zoo table), 2 worker processes, one fresh process per job (~1.5 s CPU to start):
        # * poisoning: the 5 cheapest NAS cells and 5 cheapest manual models with a Fig. 6 value (VGG has none but
        #   is the cheapest) + the 3 mitigations, 40 % only, trained from scratch by the zoo's own quick recipe
        #   (one pass over all 50,000 images, bf16; no within-run curve), so that the 0 % reference is the clean
        #   zoo model itself and the models are as trained as the zoo (a 6,000-image variant was ~30 % accurate):
        #   8 cells × ~170 s + 5 manual ≈ 490 s (bf16 throughput, bench_speed_levers) ≈ 1,900 worker-s ≈ 16 min;
        # * backdoor: BadNet and TrojanNN into all 20 models + neuron sweep (darts, resnet18) + latent and IMC
        #   (darts, resnet18) = 50 jobs, each 2 epochs over 1,920 images (40 SGD steps), evaluated on 1,000 test
        #   images before and after every epoch: a NAS job ≈ 2 × (2,400/239 + 2.5) + 5.5 ≈ 30 s → 13 cells × 2 ×
        #   1.15 × 30 ≈ 910 s + 7 manual ≈ 300 s + sweep/latent/IMC ≈ 200 s ≈ 1,410 worker-s ≈ 12 min;
        #   together ≈ 28 min + the notebooks' own evaluation (≈ 0.5 min): over the 20-minute target, by choice.
        #   Measured (README "Book run times"; the zoo now trains in fp32, ~1.5x slower than this bf16 estimate):
        #   poisoning 38 min of training + 8 min of evaluation, backdoor 25 min.
        # 40 steps at the artifact's 1–2 stamped copies per batch leave the trigger unlearned (resnet18 ×1/8: standard
        # ASR 4 % after 160 steps at 2 %), so the per-batch poison rate is scaled ×12.5 (BadNet 25 %, TrojanNN
        # 12.5 %). Measured at 25 %: darts (C=8) standard ASR 16/41/54/77 % after 20/40/60/80 steps, resnet18 ×1/8
        # 34/33/29/32 %, and 91 % after 200 steps.
        poison_rates=(0.4,),
        # 7 NAS vs 6 manual architectures, not 5 vs 5: an exact permutation test over 5 vs 5 cannot give p below
        # 2/252 = 0.0079, above Holm's first threshold 0.05/34 (README "Why the budgets cannot be met"); ENAS,
        # NASNet and DenseNet-121 (all with a Fig. 6 value) cost ~8 more minutes on 2 cores.
        # The narrow manual variants give the parameter overlap; the C=16 cells (34 of the 192 CPU-minutes the 25
        # poisoned trainings would cost, zoo table) are left out, as in chapters 6-7.
        poison_models=("darts", "snas_mild", "amoebanet", "pdarts", "pc_darts", "enas", "nasnet", "vgg13_bn",
                       "resnet18", "dla34", "bit_r50x1", "wide_resnet50_2", "densenet121", "diy_deep", "diy_noskip",
                       "diy_deep_noskip", "resnet18_narrow", "densenet121_narrow"),
        poison_epochs=None, poison_train_per_class=None, poison_test_per_class=None,
        # Backdoor fine-tuning: 3 epochs of 1,920 images (60 SGD steps), the primaries read at the last (pilot
        # benchmarks/pilot_backdoor_epochs.py, README "Backdoor fine-tuning length"): BadNet's ASR gain over
        # the clean model after 2 / 3 / 4 epochs was DARTS 31.7 / 42.7 / 65.3, PC-DARTS 47.4 / 66.8 / 73.7,
        # ResNet-18 43.0 / 61.4 / 78.8, VGG-13-BN 21.3 / 26.2 / 26.8 pp (at 2 epochs the 20-pp gate passed by
        # 0.1 pp on DenseNet-121); 4 epochs would cost a third more for a gate that 3 already pass. Models: the
        # chapters 7-8 set (7 NAS cells, 6 manual networks, 3 mitigations) and the two narrow manual variants
        # (they give the parameter overlap; the C=16 cells cost 3x a cell and are left out).
        backdoor_models=("snas_mild", "darts", "pdarts", "pc_darts", "sgas", "amoebanet", "enas", "vgg13_bn",
                         "resnet18", "dla34", "resnext50_32x4d", "densenet121", "bit_r50x1", "diy_deep", "diy_noskip",
                         "diy_deep_noskip", "resnet18_narrow", "densenet121_narrow"),
        backdoor_epochs=3, backdoor_train_images=1920, backdoor_test_images=1000, backdoor_poison_scale=12.5,
        trojannn_neurons=(1, 2, 4, 8), neuron_sweep_models=("darts", "resnet18"), latent_imc_models=("darts", "resnet18"),
        latent_samples_per_class=100, latent_epochs=2, imc_inner_iters=2, imc_inner_batches=4,
        chapter_minutes=MappingProxyType({"01_model_zoo": 25, "02_evasion": 10, "03_smoothness": 7,
                                          "04_mitigations": 2, "05_poisoning + 06_backdoor": 28, "07_extraction + 08_membership": 15,
                                          "09_deepsloth": 15, "book build": 1}),
        # Chapter 9 (DeepSloth), sized for <= 15 min on 2 cores from single-thread throughput measured on
        # this CPU (1 thread, img/s; train = SGD step at batch 128, step = DeepSloth input-gradient step
        # through backbone + every IC, fwd = SDN forward):
        #   vgg16_bn w=1/4 (0.96 M params): train 275, step 223, fwd 644
        #   resnet56 w=3/8 (0.12 M):        train ~190, step 110, fwd 298   (w=1/2: 144 / 91 / 260)
        #   mobilenet_v1 w=1/4 (0.22 M):    train 644, step 208, fwd 860
        # Backbones (zoo.train_many, 2 workers, the quick recipe: 1 epoch of 50k, fp32 rates above; bf16 and
        # the recipe's 10 curve evaluations of 2,000 images roughly cancel): ResNet ~265 s + 35 s final test
        # evaluation on one worker, VGG 182 + MobileNet 78 s on the other: ~5 min wall.
        # IC-only training: one augmentation draw of 10k images (features: 14 / 33 / 12 s), reused for
        # 10 passes (the updates cost ~2 s).
        # Attacks, in input-gradient steps per backbone: DeepSloth L-inf 200x30 = 6,000, PGD-20 ~3,000,
        # universal L-inf 250x20 = 5,000, universal L2 (scale .04: 11 epochs x 5 batches x 2 steps x 50
        # images) 5,500, universal L1 1,000, class-universal 10x25x20 = 5,000, L2/L1/PGD-avg on 25 images
        # ~1,300, PGD-max 25x20x(exits)x~0.55 = 4,100 (VGG) .. 7,700 (ResNet), DeepFool-UAP ~3,500,
        # forward passes (10k clean test images + 12 attacked sets) ~4,000 step-equivalents:
        # ~42k steps = 380 s for ResNet (one worker), ~170 + 180 s for VGG + MobileNet (the other).
        # Latency (batch 1): 2 x 100 images x 3 backbones, < 10 s. Total ~13 min + start-up.
        # Accuracy pilot (quick-v2-like recipe: Nesterov SGD, peak lr 0.2, warm-up/linear decay, batch 128,
        # 1 thread): after 10k training images VGG 18 %, ResNet-56 11 %, MobileNet 23 %; ResNet-56 after
        # 20k images 33 % (still rising). One epoch of 50k is expected to leave ResNet-56 near the 50 % floor.
        # Two passes over the training set for the backbones (pilot ``benchmarks/pilot_sdn_epochs.py``, README):
        # after one, VGG-16 reached 39 % and its first IC (44 %) beat the final exit, so the RAD rule chose
        # q = 0.05 and every input left at IC 1 (DeepSloth not measurable); after two VGG-16 / ResNet-56 /
        # MobileNet reach 56 / 60 / 54 % with q = 0.35 / 0.55 / 0.45 at RAD<5 %, for ~2 min more wall time.
        model_recipe=MappingProxyType({n: MappingProxyType({"epochs": 2}) for n in SDN_NAMES}),
        sdn_scale=MappingProxyType({"vgg16_bn": {"width": 1 / 4, "dropout": 0.0}, "resnet56": {"width": 3 / 8},
                                    "mobilenet_v1": {"width": 1 / 4}}),
        sdn_ic_epochs=10, sdn_ic_reuse=10, sdn_ic_train_images=10_000,
        sloth_images=200, sloth_extra_images=25, sloth_iteration_scale=0.04, sloth_universal_images=250,
        sloth_class_images=25, sloth_uap_images=50, sloth_uap_passes=2, sloth_latency_images=100,
        sloth_bootstrap=10_000,
        # Chapters 7–8 together <= 15 min on 2 cores, sized for the quick-v2 zoo (victims trained on all 50,000
        # images). Throughputs, 1 thread: training DARTS-type C=8/5 cells ~240 img/s (mitigations ~215),
        # VGG-13 ~2,260, ResNet-18 ~1,000, DLA-34 ~490, ResNeXt-50 ~205, DenseNet-121 ~190 (width 1/8); inference
        # DARTS ~850, ResNet-18 ~3,600, DenseNet ~545 img/s. Models: the five 4-node NAS cells with the fewest
        # parameters (SNAS, DARTS, PDARTS, PC-DARTS, SGAS), the five manual models with a paper Fig. 9 value that
        # train fastest (WRN-50-2 and BiT left out), and the three mitigations. Thieves: Q = 500/1,000/2,000 hard
        # + 2,000 soft, 2 epochs (the victims' 1-2) -> 11,000 images per model; sum of 1/throughput over the 13
        # models ~0.049 s -> ~540 core-s, + victim queries, thief evaluation on 2,000 test images and one spawned
        # process per thief (~3 s each) ~360 core-s -> ~7.5 min on 2 workers. Membership (5 + 5 models):
        # HopSkipJump on 20 + 20 images, ~710 queries each (measured) -> ~29k forward passes per model; measured
        # ~1.2-1.7 s per image on DARTS C=8 (1 thread, batch of 12-40 images) -> ~50-70 s per NAS model, ~390 core-s
        # in all, + 3,000 forward passes per model for the score-based attacks -> ~3.5 min on 2 workers.
        # Extraction and membership: 7 NAS vs 6 manual architectures, for the same reason as poisoning.
        # Budgets (pilot benchmarks/pilot_extraction_budget.py, README "Extraction budget"): freshly initialised
        # thieves after 2 epochs agree with their victim 10.8-15.3 pp above a constant predictor at Q = 2,000
        # and 24.9-37.9 pp at Q = 8,000 (6 epochs: 49.5-56.8 pp at 3x the cost); the primary is read at 8,000.
        # The C=16 cells (3x a cell's cost) are left out; the narrow manual variants give the parameter overlap.
        extraction_models=("snas_mild", "darts", "pdarts", "pc_darts", "sgas", "amoebanet", "enas", "vgg13_bn",
                           "resnet18", "dla34", "resnext50_32x4d", "densenet121", "bit_r50x1", "diy_deep",
                           "diy_noskip", "diy_deep_noskip", "resnet18_narrow", "densenet121_narrow"),
        extraction_budgets=(1000, 2000, 8000), extraction_soft_budgets=(2000,), thief_epochs=2,
        extraction_test_images=2000,
        membership_models=("snas_mild", "darts", "pdarts", "pc_darts", "sgas", "amoebanet", "enas", "vgg13_bn",
                           "resnet18", "dla34", "resnext50_32x4d", "densenet121", "bit_r50x1", "resnet18_narrow",
                           "densenet121_narrow"),
        # 100 members + 100 confidence-matched + 100 random non-members for HopSkipJump (issue "valid verdicts": was
        # 20 + 20, too few to resolve an AUC difference of a few hundredths)
        mia_samples=100, mia_score_samples=1000, mia_pool_images=2000, mia_reference_models=0,
        # Victims on 1,000 images per class for 5 epochs (the cost of one zoo epoch): the zoo's one-epoch models
        # have no train-test gap (-2.3 to +2.4 pp, loss AUC 0.500-0.514). Pilot (benchmarks/pilot_membership_gap.py,
        # README "Membership victims"): DARTS-V2 gap 7.3 pp, loss AUC 0.550 [0.523, 0.574], test acc 63.1 %;
        # ResNet-18 7.9 pp, 0.556 [0.531, 0.580], 56.9 %; 500 per class x 10 epochs gave less (6.6 and 4.6 pp).
        mia_victim_per_class=1000, mia_victim_epochs=5,
    ),
    "paper": _profile(
        name="paper",
        description="The protocol's settings: C=36, 20 cells, full-width manual models, 200 epochs, full data (GPU).",
        nas_models=STUDY_NAS,
        manual_models=MANUAL_NAMES,
        mitigation_models=MITIGATION_ARCHS,
        nas_scale=MappingProxyType({"C": 36, "layers": 20}),
        manual_scale=MappingProxyType({"width": 1.0}),
        **_FULL_DATA, epochs=200, seeds=(0, 1, 2), recipe=MappingProxyType({"eval_points": 20}),
        nes_images=500, nes_max_queries=1012,  # 10 NES steps of 101 queries (50 antithetic pairs + the check)
        chapter_minutes=MappingProxyType({}),
        # Chapters 5–6: the protocol (p ∈ {10, 20, 40} %, 50 epochs from scratch; 20 fine-tuning epochs on all
        # 50,000 images, every test image; TrojanNN neurons 1/2/4/8; latent 1,000/class × 100; IMC 20 × 21).
        poison_rates=(0.1, 0.2, 0.4), poison_epochs=50, backdoor_epochs=20, trojannn_neurons=(1, 2, 4, 8),
        latent_samples_per_class=1000, latent_epochs=100, imc_inner_iters=20, imc_inner_batches=21,
        # Chapter 9 (DeepSloth): the protocol's settings (full width; per-sample attacks on the whole test set)
        sdn_scale=MappingProxyType({n: {"width": 1.0} for n in SDN_NAMES}),
        # Offline LiRA would need reference models per architecture (17 x R more 200-epoch trainings): off.
        mia_reference_models=0,
    ),
})

DEFAULT_PROFILE = "quick"
ENV_VAR = "NASCORE_PROFILE"


def get_profile(name: str | Profile | None = None, **overrides) -> Profile:
    """The named profile (default: ``$NASCORE_PROFILE`` or ``quick``) with ``overrides`` applied."""
    if isinstance(name, Profile):
        profile = name
    else:
        name = name or os.environ.get(ENV_VAR) or DEFAULT_PROFILE
        if name not in PROFILES:
            raise ValueError(f"unknown profile {name!r}; valid: {', '.join(PROFILES)}")
        profile = PROFILES[name]
    return profile.override(**overrides) if overrides else profile
