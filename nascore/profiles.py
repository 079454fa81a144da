"""The three scales of the book, defined in one place (GUIDE.md, "Profiles").

* ``smoke`` — CI: every notebook end to end in about a minute on 2 cores; checks code paths,
  its numbers mean nothing.
* ``quick`` — the default on a CPU: the whole book within about 60 minutes on 2 cores. Narrow
  networks, a balanced subset of CIFAR-10, few epochs. Its findings are real measurements,
  labelled with this scale.
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

from .models import MANUAL_NAMES, STUDY_NAS, family, names
from .models.genotypes import MITIGATION_ARCHS


@dataclass(frozen=True)
class Profile:
    """One scale of the whole book. Field units: counts of images/models/epochs, minutes."""

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
    # Evasion (automl protocol §4.1)
    pgd_images: int = 1000
    eps_linf: tuple[float, ...] = (1 / 255, 2 / 255, 4 / 255, 8 / 255)
    eps_l2: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0)
    sweep_images: int = 1000
    sweep_steps: int = 10
    nes_images: int = 100
    nes_samples: int = 50  # antithetic pairs per gradient estimate (100 queries, the artifact's)
    nes_max_queries: int = 10_000
    # Smoothness (automl protocol §5)
    gv_images: int = 512
    hessian_images: int = 256
    hessian_iters: int = 20
    trace_samples: int = 20
    contour_grid: int = 41
    contour_images: int = 20
    # Minutes each chapter may take at this profile (the book's budget, measured in README)
    chapter_minutes: Mapping[str, float] = field(default_factory=dict)
    # Chapters 7–8: extraction and membership (automl protocol §4.4, §4.5)
    extraction_models: tuple[str, ...] | None = None  # victims (and same-architecture thieves); None = all models
    extraction_budgets: tuple[int, ...] = (1000, 2000, 4000, 8000, 16000)  # queries Q per thief (hard labels)
    extraction_soft_budgets: tuple[int, ...] | None = None  # budgets also run with soft labels; None = all
    thief_epochs: int = 25  # the artifact's KnockoffNets nb_epochs
    extraction_test_images: int | None = None  # test images scoring H(p_victim, q_thief); None = all 10,000
    membership_models: tuple[str, ...] | None = None  # None = the NAS and manual models
    mia_samples: int = 50  # HopSkipJump: members = confidence-matched non-members (the artifact: 50 + 50)
    mia_score_samples: int = 5000  # score-based attacks: random members = random non-members
    mia_pool_images: int | None = None  # test images screened for non-members; None = all 10,000
    mia_reference_models: int = 0  # offline-LiRA reference models per architecture (0 = LiRA off)

    @property
    def models(self) -> tuple[str, ...]:
        return self.nas_models + self.manual_models + self.mitigation_models

    def scale_for(self, model: str) -> dict:
        """Scale knobs passed to :func:`nascore.models.build` for ``model`` at this profile."""
        return dict(self.manual_scale if family(model) == "manual" else self.nas_scale)

    def recipe_overrides(self) -> dict:
        """Keyword arguments for :class:`nascore.train.Recipe` at this profile."""
        return {"epochs": self.epochs, "batch_size": self.batch_size, **dict(self.recipe)}

    def seeds_for(self, model: str) -> tuple[int, ...]:
        """The seeds trained for ``model``: the profile's seeds plus any extra ones for it."""
        return tuple(dict.fromkeys(self.seeds + tuple(self.extra_seeds.get(model, ()))))

    def override(self, **knobs) -> "Profile":
        """A copy with some fields replaced. Unknown names, values of the wrong type and values out
        of range raise ``ValueError`` naming the knob, the value and what is valid — before any compute."""
        valid = [f.name for f in dataclasses.fields(self) if f.name != "name"]
        bad = sorted(set(knobs) - set(valid))
        if bad:
            raise ValueError(f"unknown profile knob(s) {bad}; valid: {', '.join(valid)}")
        for key, value in list(knobs.items()):
            knobs[key] = _validated(key, value)
        return dataclasses.replace(self, **knobs)

    def to_dict(self) -> dict:
        """Plain, picklable fields (``Profile(**p.to_dict()) == p`` up to mapping types)."""
        return {f.name: (dict(v) if isinstance(v, Mapping) else v)
                for f in dataclasses.fields(self) for v in [getattr(self, f.name)]}


#: Integer knobs that count something and must be >= 1 (other integer knobs must be >= 0).
POSITIVE_COUNTS = ("epochs", "batch_size", "pgd_images", "sweep_images", "sweep_steps", "nes_images",
                   "nes_samples", "nes_max_queries", "gv_images", "hessian_images", "hessian_iters",
                   "trace_samples", "contour_grid", "contour_images", "train_per_class", "test_per_class")
_MODEL_LISTS = ("nas_models", "manual_models", "mitigation_models")


def _validated(key: str, value: Any) -> Any:
    """Check one override against the field's declared type and range; return it normalised."""
    import typing

    hint = typing.get_type_hints(Profile)[key]
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
    if key == "recipe":
        from .train import Recipe
        if not isinstance(value, Mapping):
            fail("expected a mapping of nascore.train.Recipe fields")
        try:
            Recipe(**dict(value))
        except (TypeError, ValueError) as err:
            fail(str(err))
        return MappingProxyType(dict(value))
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

PROFILES: Mapping[str, Profile] = MappingProxyType({
    "smoke": Profile(
        name="smoke",
        description="CI code-path check: 3 NAS + 3 manual + 3 mitigation models, tiny nets, 2 epochs on 200 images.",
        nas_models=("darts", "pc_darts", "snas_mild"),
        manual_models=("resnet18", "vgg13_bn", "densenet121"),
        mitigation_models=MITIGATION_ARCHS,
        nas_scale=MappingProxyType({"C": 4, "layers": 3}),
        manual_scale=MappingProxyType({"width": 1 / 16}),
        train_per_class=20, test_per_class=10, epochs=2, batch_size=48,
        pgd_images=16, sweep_images=8, sweep_steps=3, nes_images=4, nes_samples=5, nes_max_queries=60,
        gv_images=8, hessian_images=16, hessian_iters=3, trace_samples=2, contour_grid=5, contour_images=2,
        chapter_minutes=MappingProxyType({"01_model_zoo": 1.0, "02_evasion": 0.5, "03_smoothness": 0.5,
                                          "04_mitigations": 0.5}),
        extraction_models=("darts", "pc_darts", "resnet18", "vgg13_bn", "diy_deep"),
        extraction_budgets=(25, 50, 100), extraction_soft_budgets=(100,), thief_epochs=1, extraction_test_images=100,
        membership_models=("darts", "pc_darts", "resnet18", "vgg13_bn"),
        mia_samples=4, mia_score_samples=20, mia_pool_images=100, mia_reference_models=2,
    ),
    "quick": Profile(
        name="quick",
        description=("CPU scale (2 cores, about an hour for the book): all 10 NAS cells, 7 manual models and "
                     "3 mitigations, narrow networks (C=8, 5 cells; manual width 1/8), 10 epochs on 1,200 "
                     "training images, evaluation on 1,000 test images."),
        nas_models=STUDY_NAS,
        manual_models=MANUAL_NAMES,
        mitigation_models=MITIGATION_ARCHS,
        nas_scale=MappingProxyType({"C": 8, "layers": 5}),
        manual_scale=MappingProxyType({"width": 1 / 8}),
        train_per_class=120, test_per_class=100, epochs=10,
        pgd_images=200, sweep_images=64, sweep_steps=5, nes_images=20, nes_samples=50, nes_max_queries=1000,
        gv_images=128, hessian_images=64, hessian_iters=8, trace_samples=6, contour_grid=21, contour_images=4,
        # Sized from measured CPU throughput (2 threads): DARTS C=8/5 cells ~210 img/s, NASNet ~165,
        # manual at width 1/8 from ~215 (DenseNet) to ~2,100 (VGG) img/s; see README "Measured performance".
        # Budget per chapter (minutes), from the measured quick run on 2 cores (book/appendix_status.md):
        # 14.8, 11.2, 5.0 and 1.0 min; the rest of the hour is left to the later chapters.
        chapter_minutes=MappingProxyType({"01_model_zoo": 15, "02_evasion": 12, "03_smoothness": 5,
                                          "04_mitigations": 1, "book build": 1, "later chapters": 26}),
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
        extraction_models=("snas_mild", "darts", "pdarts", "pc_darts", "sgas", "vgg13_bn", "resnet18", "dla34",
                           "resnext50_32x4d", "densenet121", "diy_deep", "diy_noskip", "diy_deep_noskip"),
        extraction_budgets=(500, 1000, 2000), extraction_soft_budgets=(2000,), thief_epochs=2,
        extraction_test_images=2000,
        membership_models=("snas_mild", "darts", "pdarts", "pc_darts", "sgas", "vgg13_bn", "resnet18", "dla34",
                           "resnext50_32x4d", "densenet121"),
        mia_samples=20, mia_score_samples=1000, mia_pool_images=2000, mia_reference_models=0,
    ),
    "paper": Profile(
        name="paper",
        description="The protocol's settings: C=36, 20 cells, full-width manual models, 200 epochs, full data (GPU).",
        nas_models=STUDY_NAS,
        manual_models=MANUAL_NAMES,
        mitigation_models=MITIGATION_ARCHS,
        nas_scale=MappingProxyType({"C": 36, "layers": 20}),
        manual_scale=MappingProxyType({"width": 1.0}),
        **_FULL_DATA, epochs=200, seeds=(0, 1, 2),
        chapter_minutes=MappingProxyType({}),
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
