"""Train-or-load model cache (GUIDE.md, "Data flow": ``models`` → ``zoo``).

``get(name, profile=..., seed=..., variant=..., **overrides)`` returns a trained model and its
record, training it if no finished checkpoint exists. The cache key (:class:`ModelConfig`) is a
hash of everything that decides the weights:

* the model name, its **resolved** build arguments (defaults included, numbers normalised so that
  ``width=1`` and ``width=1.0`` are one key) and, for cells, the genotype;
* a **fingerprint of the code** that computes the model and trains it (the AST, without
  docstrings, of every nascore module defining a class used in the model, plus the training loop
  and the augmentation; see :mod:`nascore.fingerprint`): editing a default or an op retrains, and
  never loads stale weights;
* the resolved training recipe, including the precision, and the device type;
* the data (the fingerprint of the decoded arrays, the subset), the seed;
* for training-time attacks, the :class:`~nascore.attacks.training.Variant`'s config (e.g. the poisoning rate).

:func:`cached` is the same machinery for anything that is not "a registry model trained by the
recipe" (e.g. the internal classifiers of a multi-exit network).

Files in the cache directory (``$NASCORE_CACHE`` or ``<repo>/cache/models``), per key:

* ``<name>-<key>.pt`` — the final weights (a plain ``state_dict``), written atomically;
* ``<name>-<key>.json`` — the sidecar: config, history, metrics, provenance and the sha256 of
  the ``.pt`` file; written after the weights, so its presence marks a finished model;
* ``<name>-<key>.ckpt`` — the resumable training state while training runs (removed at the end).

A checkpoint is untrusted input: it is loaded with ``torch.load(..., weights_only=True)`` only,
after its sha256 has been checked against the sidecar, so a truncated, corrupted or substituted
file is refused before anything is unpickled; an unreadable sidecar is refused too.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, NamedTuple

import torch
from torch import nn

from . import provenance
from .attacks.training import TrainingInputs, Variant
from .data import CIFAR10, balanced_subset, load_cifar10, sha256_file
from .fingerprint import code_fingerprint, normalise
from .io import atomic_write, atomic_write_json
from .models import base_architecture, build, build_arguments, family, scale_knobs
from ._cpu_workarounds import training_threads
from .parallel import default_workers, map_in_workers
from .progress import duration, note
from .profiles import Profile, get_profile
from .train import CorruptCheckpointError, Recipe, default_device, load_state, train

CACHE_VERSION = 2
_PROFILE_DATA_KNOBS = ("train_per_class", "test_per_class", "subset_seed")

__all__ = ["CorruptCheckpointError", "TrainedModel", "TrainingInputs", "Variant", "ModelConfig", "get", "load", "cached",
           "train_many", "resolve", "is_cached", "paths", "splits", "dataset", "cache_dir"]


class TrainedModel(NamedTuple):
    model: nn.Module
    record: dict


def cache_dir() -> Path:
    return Path(os.environ.get("NASCORE_CACHE", provenance.REPO_ROOT / "cache" / "models"))


_DATA: dict[str, CIFAR10] = {}


def dataset(source: str = "auto") -> CIFAR10:
    """CIFAR-10, loaded once per process."""
    if source not in _DATA:
        _DATA[source] = load_cifar10(source)
    return _DATA[source]


def _data_identity(data: CIFAR10) -> dict:
    keep = ("source", "arrays_sha256", "order_seed", "label")
    return {k: data.provenance[k] for k in keep if k in data.provenance}


@dataclass(frozen=True)
class ModelConfig:
    """Everything that decides a trained model's weights (the cache key's inputs)."""

    name: str
    build: dict
    recipe: dict
    data: dict
    seed: int
    device_type: str
    code: str
    variant: dict | None = None
    num_classes: int = 10
    version: int = CACHE_VERSION

    def key(self) -> str:
        return _hash(self.to_dict())

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _hash(obj: Any) -> str:
    blob = json.dumps(normalise(obj), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _recipe_fields() -> list[str]:
    return [f.name for f in fields(Recipe)]


def resolve(name: str, profile: str | Profile | None = None, seed: int = 0, data: CIFAR10 | None = None,
            device: torch.device | str | None = None, variant: Variant | None = None,
            **overrides) -> tuple[ModelConfig, Profile]:
    """Validate ``overrides`` and build the model's config (no training).

    Overrides may be scale knobs of the model (e.g. ``C``, ``layers``, ``width``), recipe fields
    (e.g. ``epochs``, ``lr``) or the profile's data knobs (``train_per_class``, ...). Recipe values
    come from :class:`~nascore.train.Recipe`'s defaults (protocol §3), then the profile's
    ``recipe`` overrides, then ``overrides``.
    """
    family(name)  # raises on unknown names
    knobs = scale_knobs(name)
    valid = set(knobs) | set(_recipe_fields()) | set(_PROFILE_DATA_KNOBS)
    bad = sorted(set(overrides) - valid)
    if bad:
        raise ValueError(f"unknown override(s) {bad} for {name!r}; valid: {', '.join(sorted(valid))}")
    prof = get_profile(profile, **{k: v for k, v in overrides.items() if k in _PROFILE_DATA_KNOBS})
    scale = {**prof.scale_for(name), **{k: v for k, v in overrides.items() if k in knobs}}
    build_args = build_arguments(name, **scale)
    recipe_over = {k: v for k, v in overrides.items() if k in _recipe_fields()}
    recipe = Recipe(**{**prof.recipe_overrides(name), **recipe_over})
    if variant is not None and not isinstance(variant, Variant):
        raise TypeError(f"variant must implement nascore.zoo.Variant (config/inputs/initial_state), "
                        f"got {type(variant).__name__}")
    device = torch.device(device) if device is not None else default_device()
    data = data if data is not None else dataset()
    data_id = {**_data_identity(data), "train_per_class": prof.train_per_class,
               "test_per_class": prof.test_per_class, "subset_seed": prof.subset_seed}
    rec = recipe.to_dict()
    rec.pop("eval_batch_size")  # does not change the weights
    rec["precision"] = recipe.resolved_precision(device)
    with torch.device("meta"):
        skeleton = build(name, **scale)
    config = ModelConfig(name=name, build=build_args, recipe=rec, data=data_id, seed=int(seed),
                         device_type=device.type,
                         code=code_fingerprint(skeleton, () if variant is None else (type(variant).__module__,)),
                         variant=None if variant is None else normalise(variant.config()))
    return config, prof


def paths(config: ModelConfig | str, key: str | None = None) -> dict[str, Path]:
    """Cache files of a config (or of a ``kind`` and ``key`` for :func:`cached`)."""
    stem = cache_dir() / (f"{config.name}-{config.key()}" if key is None else f"{config}-{key}")
    return {"weights": stem.with_suffix(".pt"), "sidecar": stem.with_suffix(".json"), "state": stem.with_suffix(".ckpt")}


def splits(data: CIFAR10, config: ModelConfig):
    """The training subset and the evaluation subset of the test set for ``config``."""
    d = config.data
    tr = balanced_subset(data.train_y, d["train_per_class"], d["subset_seed"])
    te = balanced_subset(data.test_y, d["test_per_class"], d["subset_seed"] + 1)
    return data.train_x[tr], data.train_y[tr], data.test_x[te], data.test_y[te]


def _read_sidecar(p: dict[str, Path]) -> dict:
    try:
        record = json.loads(p["sidecar"].read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CorruptCheckpointError(f"{p['sidecar']}: unreadable sidecar ({err}); delete it and "
                                     f"{p['weights'].name} to retrain") from err
    if not isinstance(record, dict) or not isinstance(record.get("weights_sha256"), str):
        raise CorruptCheckpointError(f"{p['sidecar']}: not a sidecar (a JSON object with 'weights_sha256' is "
                                     f"expected); delete it and {p['weights'].name} to retrain")
    return record


def _load_weights(model: nn.Module, p: dict[str, Path], sidecar: dict) -> None:
    weights = p["weights"]
    if not weights.is_file():
        raise CorruptCheckpointError(f"{weights}: missing although its sidecar exists; delete {p['sidecar']} to retrain")
    digest = sha256_file(weights)
    if digest != sidecar.get("weights_sha256"):
        raise CorruptCheckpointError(f"{weights}: sha256 {digest[:16]}… does not match the sidecar "
                                     f"({str(sidecar.get('weights_sha256'))[:16]}…): truncated or modified. "
                                     "Delete both files to retrain.")
    try:
        state = load_state(weights)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means: refuse the file
        raise CorruptCheckpointError(f"{weights}: refused by the weights-only loader ({type(err).__name__}: {err})") from err
    model.load_state_dict(state)


def _finish(model: nn.Module, p: dict[str, Path], record: dict, device: torch.device) -> TrainedModel:
    """Write weights then sidecar (atomically, in that order), drop the training state."""
    atomic_write(p["weights"], lambda f: torch.save(model.state_dict(), f))
    record["weights_sha256"] = sha256_file(p["weights"])
    atomic_write_json(p["sidecar"], record)
    p["state"].unlink(missing_ok=True)
    return TrainedModel(model.to(device).eval(), record)


def cached(kind: str, config: dict, build_model: Callable[[], nn.Module],
           fit: Callable[[nn.Module, Path], tuple[list[dict], dict]], device: torch.device | str | None = None,
           retrain: bool = False, **provenance_extra) -> TrainedModel:
    """Generic train-or-load: the model ``build_model()`` returns, trained by ``fit``, cached by ``config``.

    ``kind`` names the files (e.g. ``"sdn-vgg16"``); the key hashes ``kind``, ``config`` and the
    fingerprint of the built model's code. ``fit(model, checkpoint_path)`` trains ``model`` in
    place (it may use ``checkpoint_path`` to be resumable) and returns ``(history, metrics)``.
    Loading follows the same integrity rules as :func:`get`.
    """
    device = torch.device(device) if device is not None else default_device()
    model = build_model()
    key = _hash({"kind": kind, "config": config, "code": code_fingerprint(model), "version": CACHE_VERSION})
    p = paths(kind, key)
    if p["sidecar"].is_file() and not retrain:
        record = _read_sidecar(p)
        _load_weights(model, p, record)
        return TrainedModel(model.to(device).eval(), record)
    t0 = time.perf_counter()
    note(f"training {kind} (key {key})")
    with training_threads(device):  # a torch CPU bug with odd batches: see nascore._cpu_workarounds
        history, metrics = fit(model, p["state"])
    wall = time.perf_counter() - t0
    note(f"trained {kind} in {duration(wall)}")
    record = {"kind": kind, "config": normalise(config), "key": key, "history": list(history),
              "metrics": {**metrics, "wall_seconds_this_run": wall},
              "provenance": provenance.collect(device, **provenance_extra)}
    return _finish(model, p, record, device)


def get(name: str, profile: str | Profile | None = None, seed: int = 0, device: torch.device | str | None = None,
        data: CIFAR10 | None = None, progress: bool = True, retrain: bool = False, variant: Variant | None = None,
        **overrides) -> TrainedModel:
    """A trained model (eval mode, on ``device``) and its record; trains it if needed.

    The record holds ``config``, ``key``, ``history`` (per epoch), ``curve`` (evaluation points
    inside the run), ``metrics`` (``test_acc``, ``params``, ``train_seconds``, ``final_train_loss``,
    ``prediction_counts`` — test predictions per class) and ``provenance``.
    """
    device = torch.device(device) if device is not None else default_device()
    data = data if data is not None else dataset()
    config, prof = resolve(name, profile, seed, data, device, variant, **overrides)
    p = paths(config)
    scale = {k: v for k, v in config.build.items() if k != "genotype"}
    torch.manual_seed(config.seed)
    model = build(name, num_classes=config.num_classes, **scale)
    if p["sidecar"].is_file() and not retrain:
        record = _read_sidecar(p)
        _load_weights(model, p, record)
        return TrainedModel(model.to(device).to(memory_format=torch.channels_last).eval(), record)

    train_x, train_y, test_x, test_y = splits(data, config)
    inputs = TrainingInputs(train_x, train_y)
    if variant is not None:
        start = variant.initial_state(name, prof, seed)
        if start is not None:
            model.load_state_dict(start)
        inputs = variant.inputs(train_x, train_y, config.seed)
    recipe = Recipe(**{k: v for k, v in config.recipe.items() if k in _recipe_fields()})
    t0 = time.perf_counter()
    note(f"training {name} seed {config.seed} ({len(inputs.train_y):,} images x {recipe.epochs} epochs, key {config.key()})")
    with training_threads(device):  # a torch CPU bug with odd batches: see nascore._cpu_workarounds
        history = train(model, inputs.train_x, inputs.train_y, test_x, test_y, recipe, seed=config.seed,
                        device=device, checkpoint=p["state"], progress=progress, desc=name, frozen=inputs.frozen,
                        batch_transform=inputs.batch_transform)
    wall = time.perf_counter() - t0
    note(f"trained {name} seed {config.seed} in {duration(wall)}: test acc {100 * history[-1]['test_acc']:.1f} %")
    record = {
        "config": config.to_dict(), "key": config.key(), "family": family(name), "history": list(history),
        "curve": history.curve,
        "metrics": {"test_acc": history[-1]["test_acc"], "best_test_acc": max(h["test_acc"] for h in history),
                    "final_train_loss": history[-1]["train_loss"],
                    "prediction_counts": history[-1]["prediction_counts"],
                    "params": sum(t.numel() for t in model.parameters()),
                    "train_seconds": sum(h["train_seconds"] for h in history),
                    "train_cpu_seconds": sum(h["train_cpu_seconds"] for h in history),
                    "wall_seconds_this_run": wall, "n_train": len(inputs.train_y), "n_test": len(test_y)},
        "provenance": provenance.collect(device, profile=prof.name, seed=config.seed,
                                         data_source=data.provenance.get("label"),
                                         data_arrays_sha256=data.provenance.get("arrays_sha256")),
    }
    return _finish(model.to(memory_format=torch.channels_last), p, record, device)


def load(name: str, key: str, device: torch.device | str | None = None) -> TrainedModel:
    """A finished zoo model by its cache key (integrity-checked, weights-only), in eval mode.

    For code that names a model by its key rather than its config — e.g. the victim a
    model-extraction thief queries, whose key is part of the thief's own key. Raises
    ``FileNotFoundError`` if no such model was trained, :class:`CorruptCheckpointError` if the
    sidecar does not hash to ``key``.
    """
    p = paths(name, key)
    if not p["sidecar"].is_file():
        raise FileNotFoundError(f"no finished model {name!r} with key {key} in {cache_dir()}: train it first "
                                "(nascore.zoo.get / train_many)")
    record = _read_sidecar(p)
    config = ModelConfig(**record["config"])
    if config.key() != key or config.name != name:
        raise CorruptCheckpointError(f"{p['sidecar']}: its config hashes to {config.key()}, not {key}")
    model = build(name, num_classes=config.num_classes, **{k: v for k, v in config.build.items() if k != "genotype"})
    _load_weights(model, p, record)
    device = torch.device(device) if device is not None else default_device()
    return TrainedModel(model.to(device).to(memory_format=torch.channels_last).eval(), record)


def is_cached(name: str, profile: str | Profile | None = None, seed: int = 0, variant: Variant | None = None,
              **overrides) -> bool:
    config, _ = resolve(name, profile, seed, variant=variant, **overrides)
    return paths(config)["sidecar"].is_file()


def _train_in_worker(name: str, profile_fields: dict, seed: int, variant: Variant | None, overrides: dict) -> dict:
    torch.set_num_threads(1)
    tm = get(name, Profile(**profile_fields), seed=seed, device="cpu", progress=False, variant=variant, **overrides)
    return {"model": name, "seed": seed, "test_acc": tm.record["metrics"]["test_acc"]}


def train_many(names, profile: str | Profile | None = None, seeds=(0,), workers: int | None = None,
               progress: bool = True, variant: Variant | None = None,
               **overrides) -> dict[tuple[str, int], TrainedModel]:
    """Train (in parallel on CPU) and then load ``names × seeds``; ``{(name, seed): TrainedModel}``.

    ``seeds`` is one tuple for every model, or a mapping ``name -> seeds`` (e.g.
    ``{n: profile.seeds_for(n) for n in names}``). Models missing from the cache are trained by
    ``workers`` spawned processes with one thread each; every worker writes through the same atomic
    cache, so an interrupted run resumes. Parameters are validated for every model before any
    training starts. ``variant`` (see :class:`Variant`) applies to every model.
    """
    prof = get_profile(profile)
    per_model = seeds if hasattr(seeds, "items") else {n: tuple(seeds) for n in names}
    jobs = [(n, s) for n in names for s in per_model[n]]
    for n, s in jobs:
        resolve(n, prof, s, variant=variant, **overrides)  # raises on bad input before any compute
    workers = default_workers() if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    missing = [(n, s) for n, s in jobs if not is_cached(n, prof, s, variant=variant, **overrides)]
    if missing and workers > 1 and default_device().type == "cpu":  # else: trained in this process below
        # Slowest models first, so the workers finish together; one fresh process per model returns
        # its memory after every model instead of accumulating allocator fragmentation.
        missing.sort(key=lambda job: _relative_cost(job[0]), reverse=True)

        def report(r, elapsed):
            if progress:
                print(f"trained {r['model']:>16} seed {r['seed']}: test acc {r['test_acc']:.3f} ({elapsed:.0f} s elapsed)",
                      flush=True)
        map_in_workers(_train_in_worker, [(n, prof.to_dict(), s, variant, overrides) for n, s in missing],
                       workers=workers, progress=report, desc=f"zoo training ({len(missing)} models)")
    return {(n, s): get(n, prof, seed=s, progress=progress, variant=variant, **overrides) for n, s in jobs}


def _relative_cost(name: str) -> float:
    """Rough training cost order (measured img/s at quick scale, README): slow models first."""
    slow = {"densenet121": 5.0, "nasnet": 1.5, "amoebanet": 1.5, "enas": 1.4, "bit_r50x1": 1.3,
            "darts_wide": 3.4, "enas_wide": 4.8}   # the two cells at C=16: their FLOPs against C=8
    base = name if name in slow else base_architecture(name)
    return slow.get(base, 1.0 if family(name) != "manual" else 0.5)
