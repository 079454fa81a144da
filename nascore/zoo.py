"""Train-or-load model cache (GUIDE.md, "Data flow": ``models`` → ``zoo``).

``get(name, profile=..., seed=..., **overrides)`` returns a trained model and its record,
training it if no finished checkpoint exists. The cache key is a hash of everything that decides
the weights: model name and scale, the training recipe, the data source and subset, and the seed.

Files in the cache directory (``$NASCORE_CACHE`` or ``<repo>/cache/models``), per key:

* ``<name>-<key>.pt`` — the final weights (a plain ``state_dict``), written atomically;
* ``<name>-<key>.json`` — the sidecar: config, history, metrics, provenance and the sha256 of
  the ``.pt`` file; written after the weights, so its presence marks a finished model;
* ``<name>-<key>.ckpt`` — the resumable training state while training runs (removed at the end).

A checkpoint is untrusted input: it is loaded with ``torch.load(..., weights_only=True)`` only,
after its sha256 has been checked against the sidecar, so a truncated, corrupted or substituted
file is refused before anything is unpickled, and a file carrying pickled code is refused by the
restricted unpickler.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from . import provenance
from .data import CIFAR10, balanced_subset, load_cifar10, sha256_file
from .io import atomic_write, atomic_write_json
from .models import build, family, scale_knobs
from .profiles import Profile, get_profile
from .train import Recipe, default_device, load_state, train

CACHE_VERSION = 1
_PROFILE_DATA_KNOBS = ("train_per_class", "test_per_class", "subset_seed")


class CorruptCheckpointError(RuntimeError):
    """A cached file failed its integrity check or could not be safely loaded."""


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
    keep = ("source", "sha256", "order_seed", "label")
    return {k: data.provenance[k] for k in keep if k in data.provenance}


@dataclass(frozen=True)
class ModelConfig:
    """Everything that decides a trained model's weights."""

    name: str
    scale: dict
    recipe: dict
    data: dict
    seed: int
    num_classes: int = 10
    version: int = CACHE_VERSION

    def key(self) -> str:
        blob = json.dumps({f.name: getattr(self, f.name) for f in fields(self)}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def resolve(name: str, profile: str | Profile | None = None, seed: int = 0, data: CIFAR10 | None = None,
            **overrides) -> tuple[ModelConfig, Profile]:
    """Validate ``overrides`` and build the model's config (no compute).

    Overrides may be scale knobs of the model (e.g. ``C``, ``layers``, ``width``), recipe fields
    (e.g. ``epochs``, ``lr``) or the profile's data knobs (``train_per_class``, ...).
    """
    family(name)  # raises on unknown names
    knobs = scale_knobs(name)
    recipe_fields = [f.name for f in fields(Recipe)]
    valid = set(knobs) | set(recipe_fields) | set(_PROFILE_DATA_KNOBS)
    bad = sorted(set(overrides) - valid)
    if bad:
        raise ValueError(f"unknown override(s) {bad} for {name!r}; valid: {', '.join(sorted(valid))}")
    prof = get_profile(profile, **{k: v for k, v in overrides.items() if k in _PROFILE_DATA_KNOBS})
    scale = prof.scale_for(name)
    scale.update({k: v for k, v in overrides.items() if k in knobs})
    recipe = Recipe(**{"epochs": prof.epochs, "batch_size": prof.batch_size,
                       **{k: v for k, v in overrides.items() if k in recipe_fields}})
    data = data if data is not None else dataset()
    data_id = {**_data_identity(data), "train_per_class": prof.train_per_class,
               "test_per_class": prof.test_per_class, "subset_seed": prof.subset_seed}
    rec = recipe.to_dict()
    rec.pop("eval_batch_size")  # does not change the weights
    return ModelConfig(name=name, scale=scale, recipe=rec, data=data_id, seed=int(seed)), prof


def paths(config: ModelConfig) -> dict[str, Path]:
    stem = cache_dir() / f"{config.name}-{config.key()}"
    return {"weights": stem.with_suffix(".pt"), "sidecar": stem.with_suffix(".json"), "state": stem.with_suffix(".ckpt")}


def splits(data: CIFAR10, config: ModelConfig):
    """The training subset and the evaluation subset of the test set for ``config``."""
    d = config.data
    tr = balanced_subset(data.train_y, d["train_per_class"], d["subset_seed"])
    te = balanced_subset(data.test_y, d["test_per_class"], d["subset_seed"] + 1)
    return data.train_x[tr], data.train_y[tr], data.test_x[te], data.test_y[te]


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


def get(name: str, profile: str | Profile | None = None, seed: int = 0, device: torch.device | str | None = None,
        data: CIFAR10 | None = None, progress: bool = True, retrain: bool = False, **overrides) -> TrainedModel:
    """A trained model (eval mode, on ``device``) and its record; trains it if needed.

    The record holds ``config``, ``key``, ``history`` (per epoch), ``metrics`` (``test_acc``,
    ``params``, ``train_seconds``) and ``provenance``.
    """
    config, prof = resolve(name, profile, seed, data, **overrides)
    device = torch.device(device) if device is not None else default_device()
    data = data if data is not None else dataset()
    p = paths(config)
    torch.manual_seed(config.seed)
    model = build(name, num_classes=config.num_classes, **config.scale)
    if p["sidecar"].is_file() and not retrain:
        record = json.loads(p["sidecar"].read_text())
        _load_weights(model, p, record)
        return TrainedModel(model.to(device).to(memory_format=torch.channels_last).eval(), record)

    train_x, train_y, test_x, test_y = splits(data, config)
    recipe = Recipe(**config.recipe)
    t0 = time.perf_counter()
    history = train(model, train_x, train_y, test_x, test_y, recipe, seed=config.seed, device=device,
                    checkpoint=p["state"], progress=progress, desc=name)
    wall = time.perf_counter() - t0
    atomic_write(p["weights"], lambda f: torch.save(model.state_dict(), f))
    record = {
        "config": config.to_dict(), "key": config.key(), "family": family(name), "history": history,
        "metrics": {"test_acc": history[-1]["test_acc"], "best_test_acc": max(h["test_acc"] for h in history),
                    "params": sum(t.numel() for t in model.parameters()),
                    "train_seconds": sum(h["epoch_seconds"] for h in history),
                    "wall_seconds_this_run": wall, "n_train": len(train_y), "n_test": len(test_y)},
        "provenance": provenance.collect(device, profile=prof.name, seed=config.seed,
                                         data_source=data.provenance.get("label")),
        "weights_sha256": sha256_file(p["weights"]),
    }
    atomic_write_json(p["sidecar"], record)
    p["state"].unlink(missing_ok=True)
    return TrainedModel(model.eval(), record)


def is_cached(name: str, profile: str | Profile | None = None, seed: int = 0, **overrides) -> bool:
    config, _ = resolve(name, profile, seed, **overrides)
    return paths(config)["sidecar"].is_file()


def _train_in_worker(name: str, profile_fields: dict, seed: int, overrides: dict) -> dict:
    torch.set_num_threads(1)
    tm = get(name, Profile(**profile_fields), seed=seed, device="cpu", progress=False, **overrides)
    return {"model": name, "seed": seed, "test_acc": tm.record["metrics"]["test_acc"]}


def default_workers(device: torch.device | str | None = None) -> int:
    """Processes for :func:`train_many`: one per core on CPU (each single-threaded), 1 on CUDA.

    Measured on 2 cores (README, "Measured performance"): two single-threaded trainings run at
    ~1.7× (DARTS C=8) to ~1.9× (ResNet-18 ×1/8) the combined throughput of one two-threaded
    training, because small networks use a second thread poorly.
    """
    device = torch.device(device) if device is not None else default_device()
    return 1 if device.type == "cuda" else max(1, os.cpu_count() or 1)


def train_many(names, profile: str | Profile | None = None, seeds=(0,), workers: int | None = None,
               progress: bool = True, **overrides) -> dict[tuple[str, int], TrainedModel]:
    """Train (in parallel on CPU) and then load ``names × seeds``; ``{(name, seed): TrainedModel}``.

    Models missing from the cache are trained by ``workers`` spawned processes with one thread
    each; every worker writes through the same atomic cache, so an interrupted run resumes.
    Parameters are validated for every model before any training starts.
    """
    prof = get_profile(profile)
    jobs = [(n, s) for s in seeds for n in names]
    for n, s in jobs:
        resolve(n, prof, s, **overrides)  # raises on bad input before any compute
    missing = [(n, s) for n, s in jobs if not is_cached(n, prof, s, **overrides)]
    workers = default_workers() if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if missing and workers > 1 and default_device().type == "cpu":
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        t0 = time.perf_counter()
        # One fresh process per model (max_tasks_per_child=1): memory is returned after every model
        # instead of accumulating allocator fragmentation across models (measured ~1.3 GiB per
        # long-lived worker at the quick scale).
        with ProcessPoolExecutor(max_workers=min(workers, len(missing)), mp_context=mp.get_context("spawn"),
                                 max_tasks_per_child=1) as pool:
            futures = [pool.submit(_train_in_worker, n, prof.to_dict(), s, overrides) for n, s in missing]
            for fut in as_completed(futures):
                r = fut.result()
                if progress:
                    print(f"trained {r['model']:>16} seed {r['seed']}: test acc {r['test_acc']:.3f} "
                          f"({time.perf_counter() - t0:.0f} s elapsed)", flush=True)
    return {(n, s): get(n, prof, seed=s, progress=progress, **overrides) for n, s in jobs}
