"""Chapter 6's backdoor injections through the model cache: :func:`inject` and :func:`inject_many`.

The attack (:mod:`nascore.attacks.backdoor`: the stamp, the triggers, :class:`InjectionJob` with the
fine-tuning recipe of protocol §4.3, the epoch selection) knows nothing of the cache; this module
composes it with :mod:`nascore.zoo`:

* :func:`inject` — one job's fine-tuning run **epoch by epoch** through :func:`nascore.zoo.cached`,
  with ``nascore.train.train`` resumed one epoch at a time and the backdoor evaluated in between (the
  trainer's history has no ASR). Resumable: the trainer's checkpoint plus a side file with the
  per-epoch evaluations and the current trigger. The cache key is the clean model's key plus the
  job's config and the code of the backdoor modules and of this one (``InjectionJob.key_config``).
* :func:`inject_many` — many jobs in parallel single-threaded worker processes on CPU, like
  ``zoo.train_many``.

Deviation from the artifact, stated: the artifact saves the weights of the selected epoch; here the
final weights are kept and both the selected and the final epoch's numbers are recorded.
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from .. import zoo
from ..attacks.backdoor.base import Backdoor
from ..attacks.backdoor.finetune import InjectionJob, pack_bits, select_epoch, training_subset
from ..attacks.backdoor.trigger import Trigger
from ..io import atomic_write
from ..models import build, family
from ..parallel import map_in_workers
from ..profiles import Profile, get_profile
from ..train import default_device, evaluate, load_state, train

__all__ = ["inject", "inject_many", "SMALL_JOB"]


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
    tm = inject(job, Profile(**profile_fields))
    sel = tm.record["metrics"]["selected"]
    return {"attack": job.attack.name, "model": job.model, "asr": sel["asr"], "cad": sel["cad"],
            "seconds": tm.record["metrics"]["seconds"]}


#: Jobs that fine-tune on fewer images than this in all (epochs × images; seconds of work) run in-process.
SMALL_JOB = 1000
_SLOW = {"densenet121": 5.0, "nasnet": 1.5, "amoebanet": 1.5, "enas": 1.4, "bit_r50x1": 1.3}
_ATTACK_COST = {"badnet": 1.0, "trojannn": 1.0, "latent": 2.0, "imc": 3.0}


def _job_cost(job: InjectionJob) -> float:
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
