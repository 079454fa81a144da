"""Backdoor injection: fine-tune a clean zoo model with stamped batches, evaluated after every epoch.

Protocol §4.3 (``bash/backdoor.sh``, ``mitigation_backdoor.sh``): the trained model is fine-tuned for
20 epochs with SGD lr 0.01, momentum 0.9, weight decay 5e-4, **no scheduler, no gradient clipping, no
cutout** (crop and flip stay), batch 96, every batch carrying the attack's stamped, relabelled copies.
After every epoch: clean accuracy, the ASR on all stamped test images (the artifact's counting, which
includes target-class images, and the standard one, which excludes them) and the clean-accuracy drop
CAD = clean accuracy before − after. :func:`select_epoch` applies the artifact's epoch selection.

Two ways to run it:

* :class:`BackdoorFinetune` — a :class:`nascore.zoo.Variant` (``initial_state`` = the clean model's
  weights, ``inputs`` = the training images with the attack's ``poison_batch`` as ``batch_transform``):
  ``zoo.get(name, profile, variant=..., **FINETUNE_RECIPE)`` trains and caches the final weights only.
* :func:`inject` — the same fine-tuning run **epoch by epoch** through :func:`nascore.zoo.cached`, with
  ``nascore.train.train`` resumed one epoch at a time and the backdoor evaluated in between (the trainer's
  history has no ASR). Resumable: the trainer's checkpoint plus a side file with the per-epoch
  evaluations and the current trigger. :func:`inject_many` runs jobs in parallel single-threaded worker
  processes on CPU, like ``zoo.train_many``.

Deviation from the artifact, stated: the artifact saves the weights of the selected epoch; here the
final weights are kept and both the selected and the final epoch's numbers are recorded.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from ...fingerprint import module_fingerprint
from ...io import atomic_write
from ...train import Recipe, default_device, evaluate, load_state, train
from .badnet import BadNet
from .base import Backdoor
from .imc import IMC
from .latent import LatentBackdoor
from .trigger import Trigger
from .trojannn import TrojanNN

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
         "nascore.attacks.backdoor.imc", "nascore.attacks.backdoor.finetune")


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
    """Fine-tuning of the clean zoo model with ``backdoor`` (prepared) as a :class:`nascore.zoo.Variant`.

    ``clean_key`` is the clean model's cache key (so the fine-tuned model's key depends on it);
    ``train_images`` limits fine-tuning to a seeded subset of the training set (None = all).
    """

    backdoor: Backdoor
    clean_key: str
    train_images: int | None = None

    def config(self) -> dict:
        return {"backdoor": self.backdoor.config(), "clean_key": self.clean_key, "train_images": self.train_images}

    def inputs(self, train_x, train_y, seed):
        from ...zoo import TrainingInputs

        x, y = training_subset(train_x, train_y, self.train_images, seed)
        return TrainingInputs(x, y, batch_transform=self.backdoor.poison_batch)

    def initial_state(self, name, profile, seed):
        from ... import zoo

        clean = zoo.get(name, profile, seed, device="cpu", progress=False)
        if clean.record["key"] != self.clean_key:
            raise ValueError(f"the clean {name!r} model at this profile has key {clean.record['key']}, "
                             f"the variant was built for {self.clean_key}")
        return clean.model.state_dict()


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
        from ...models import family

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


def _eval_row(model, bound: Backdoor, x, y, epoch: int, clean_acc: float, base: float | None, extra: dict,
              precision: str):
    score = bound.asr(model, x, y, precision=precision)
    return {"epoch": epoch, "clean_acc": 100 * clean_acc, "asr": 100 * score.artifact,
            "asr_standard": 100 * score.standard, "cad": 0.0 if base is None else base - 100 * clean_acc,
            **extra}, score.success


def inject(job: InjectionJob, profile=None, device=None, data=None, progress: bool = False):
    """Fine-tune, evaluate every epoch, cache; returns a :class:`nascore.zoo.TrainedModel`.

    The record's ``history`` has one row per epoch (epoch 0 = the clean model): ``clean_acc`` and the two
    ASR countings (%), ``cad`` (pp), ``train_loss``; its ``metrics`` hold ``selected`` (:func:`select_epoch`),
    ``final`` (the last epoch), ``clean_acc0``, the trigger used in the last epoch, the attack's
    diagnostics and the per-image successes (:func:`pack_bits`) of the selected and the final epoch.
    """
    device = torch.device(device) if device is not None else default_device()
    return _cached(job, profile, device, data, lambda cfg, prof, data: _fit(job, cfg, prof, data, device, progress))


def _cached(job: InjectionJob, profile, device, data, make_fit):
    """``zoo.cached`` for ``job``: the key is the clean model's key plus the job's config and code."""
    from ... import zoo
    from ...models import build

    data = data if data is not None else zoo.dataset()
    cfg, prof = zoo.resolve(job.model, profile, job.seed, data, device)
    scale = {k: v for k, v in cfg.build.items() if k != "genotype"}

    def build_model():
        torch.manual_seed(job.seed)
        return build(job.model, num_classes=cfg.num_classes, **scale)

    return zoo.cached(f"backdoor-{job.attack.name}-{job.model}", job.key_config(cfg.key(), cfg.recipe["precision"]),
                      build_model,
                      make_fit(cfg, prof, data), device=device, profile=prof.name, seed=job.seed)


def _fit(job: InjectionJob, cfg, prof, data, device, progress: bool):
    """The resumable epoch-by-epoch fine-tuning of ``job`` (the ``fit`` of ``zoo.cached``)."""
    from ... import zoo

    recipe = job.recipe(cfg.recipe["precision"])  # the clean model's precision (fp32, or bf16 where it pays)

    def fit(model, checkpoint: Path):
        train_x, train_y, test_x, test_y = zoo.splits(data, cfg)
        ft_x, ft_y = training_subset(train_x, train_y, job.train_images, job.seed)
        n_test = len(test_y) if job.test_images is None else min(job.test_images, len(test_y))
        ev_x, ev_y = test_x[:n_test], test_y[:n_test]
        side = checkpoint.with_name(checkpoint.name + ".backdoor")
        save = lambda: atomic_write(side, lambda f: torch.save(state, f))  # noqa: E731
        state = load_state(side) if side.is_file() and checkpoint.is_file() else None
        if state is None:  # start: the clean weights, the attack's preparation, the clean model's row (epoch 0)
            checkpoint.unlink(missing_ok=True)
            clean = zoo.get(job.model, prof, job.seed, device=device, data=data, progress=False)
            model.load_state_dict(clean.model.state_dict())
            model.to(device).to(memory_format=torch.channels_last)
            t0 = time.perf_counter()
            bound = job.attack.prepare(model, ft_x, ft_y, torch.Generator().manual_seed(job.seed))
            acc0 = evaluate(model, ev_x, ev_y, device=device, precision=recipe.precision)
            row, success = _eval_row(model, bound, ev_x, ev_y, 0, acc0, None,
                                     {"train_loss": None, "seconds": time.perf_counter() - t0}, recipe.precision)
            state = {"rows": [row], "success": [success], "mark": bound.trigger.mark, "mark_epoch": 0,
                     "prepared": bound.diagnostics()}
            save()
        else:  # resume: the weights of the last epoch the trainer finished
            model.to(device).to(memory_format=torch.channels_last)
            model.load_state_dict(load_state(checkpoint, map_location=device)["model"])
        base = state["rows"][0]["clean_acc"]
        bound = job.attack.with_trigger(job.attack.trigger.with_mark(state["mark"]))
        for epoch in range(len(state["rows"]), job.epochs + 1):
            t0 = time.perf_counter()
            per_epoch = {}
            if state["mark_epoch"] != epoch:  # not yet done for this epoch (IMC re-optimises the trigger)
                bound = bound.epoch_start(model, ft_x, ft_y, torch.Generator().manual_seed(job.seed * 100_003 + epoch))
                per_epoch = {k: v for k, v in bound.diagnostics().items() if k.startswith("last_")}
                state["mark"], state["mark_epoch"] = bound.trigger.mark, epoch
                save()
            hist = train(model, ft_x, ft_y, ev_x, ev_y, recipe, seed=job.seed, device=device, checkpoint=checkpoint,
                         progress=False, desc=f"{job.attack.name}:{job.model}", stop_after_epoch=epoch,
                         batch_transform=bound.poison_batch)
            h = hist[-1]
            row, success = _eval_row(model, bound, ev_x, ev_y, epoch, h["test_acc"], base,
                                     {"train_loss": h["train_loss"], "seconds": time.perf_counter() - t0,
                                      "images_per_second": h["images_per_second"], **per_epoch}, recipe.precision)
            state["rows"].append(row)
            state["success"].append(success)
            save()
            if progress:
                print(f"{job.attack.name}:{job.model} epoch {epoch}: clean {row['clean_acc']:.1f} % "
                      f"ASR {row['asr']:.1f} % CAD {row['cad']:+.1f}", flush=True)
        rows = state["rows"]
        sel = select_epoch(rows)
        metrics = {"clean_acc0": base, "selected": sel,
                   "final": {k: rows[-1][k] for k in ("epoch", "asr", "asr_standard", "cad", "clean_acc")},
                   "trigger": Trigger(state["mark"], bound.trigger.top, bound.trigger.left,
                                      bound.trigger.alpha).config(),
                   "diagnostics": state["prepared"], "n_test": n_test, "n_train": len(ft_y),
                   "success_selected": pack_bits(state["success"][sel["epoch"]]),
                   "success_final": pack_bits(state["success"][-1]), "is_target": pack_bits(ev_y == job.attack.target),
                   "seconds": sum(r["seconds"] for r in rows)}
        side.unlink(missing_ok=True)
        return rows, metrics

    return fit


class _NotCached(Exception):
    pass


def _is_cached(job: InjectionJob, profile, device, data=None) -> bool:
    """Whether :func:`inject` would load ``job`` from the cache (the lookup loads the weights; nothing trains)."""
    def refuse(*_):
        raise _NotCached

    try:
        _cached(job, profile, device, data, lambda *_: refuse)
    except _NotCached:
        return False
    return True


def _inject_in_worker(job: InjectionJob, profile_fields: dict) -> dict:
    from ...profiles import Profile

    tm = inject(job, Profile(**profile_fields))
    sel = tm.record["metrics"]["selected"]
    return {"attack": job.attack.name, "model": job.model, "asr": sel["asr"], "cad": sel["cad"],
            "seconds": tm.record["metrics"]["seconds"]}


#: Jobs that fine-tune on fewer images than this in all (epochs × images; seconds of work) run in-process.
SMALL_JOB = 1000
_SLOW = {"densenet121": 5.0, "nasnet": 1.5, "amoebanet": 1.5, "enas": 1.4, "bit_r50x1": 1.3}
_ATTACK_COST = {"badnet": 1.0, "trojannn": 1.0, "latent": 2.0, "imc": 3.0}


def _job_cost(job: InjectionJob) -> float:
    from ...models import family

    model = _SLOW.get(job.model, 1.0 if family(job.model) != "manual" else 0.5)
    return model * _ATTACK_COST.get(job.attack.name, 1.0) * job.epochs * (job.train_images or 50_000)


def inject_many(jobs, profile=None, workers: int | None = None, progress: bool = True, data=None,
                tasks_per_process: int = 1) -> dict:
    """Run :func:`inject` for every job, then load all; ``{job: TrainedModel}``.

    Missing jobs run through :func:`nascore.parallel.map_in_workers` (single-threaded worker processes on
    CPU, slowest first, ``tasks_per_process`` jobs per fresh process). With ``data`` given (tests)
    the jobs run in this process. Every job is validated (model names, attack parameters, profile) before
    any compute.
    """
    from ... import zoo
    from ...parallel import map_in_workers
    from ...profiles import get_profile

    prof = get_profile(profile)
    jobs = list(dict.fromkeys(jobs))
    for job in jobs:
        if not isinstance(job, InjectionJob):
            raise TypeError(f"expected InjectionJob, got {type(job).__name__}")
        zoo.resolve(job.model, prof, job.seed, data)  # raises on bad input before any compute
    if workers is not None and int(workers) < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    device = default_device()
    missing = sorted((j for j in jobs if not _is_cached(j, prof, device, data)), key=_job_cost, reverse=True)
    if missing and data is None:
        def report(r, elapsed):
            print(f"injected {r['attack']:>8} into {r['model']:>16}: ASR {r['asr']:5.1f} %, "
                  f"CAD {r['cad']:+5.1f} pp ({elapsed:.0f} s elapsed)", flush=True)

        # Jobs of a few seconds (smoke scale) cost less than starting a process for each: run them here.
        small = all(j.epochs * (j.train_images or 50_000) < SMALL_JOB for j in missing)
        map_in_workers(_inject_in_worker, [(j, prof.to_dict()) for j in missing], 1 if small else workers,
                       report if progress else None, tasks_per_process)
    return {j: inject(j, prof, data=data) for j in jobs}
