"""Training recipe, determinism, the model cache: atomicity, resume, integrity, safe loading."""
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from nascore import zoo
from nascore.train import Recipe, train
from nascore.models import build

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(C=4, layers=3)


def _weights_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_recipe_defaults_are_the_protocol_and_validate():
    r = Recipe()
    assert (r.lr, r.momentum, r.weight_decay, r.batch_size, r.grad_clip, r.cutout, r.epochs) == \
        (0.025, 0.9, 5e-4, 96, 5.0, 16, 200)
    with pytest.raises(ValueError, match="lr=-1"):
        Recipe(lr=-1)
    with pytest.raises(ValueError, match="schedule='step'"):
        Recipe(schedule="step")


@pytest.mark.learned
def test_training_learns_and_records_history(synthetic_cifar, outcome):
    from conftest import TEST_SEED

    d = synthetic_cifar
    torch.manual_seed(TEST_SEED)
    model = build("darts", **TINY)
    h = train(model, d.train_x, d.train_y, d.test_x, d.test_y, Recipe(epochs=4, batch_size=32, cutout=0),
              seed=TEST_SEED, progress=False, device="cpu")
    assert [r["epoch"] for r in h] == [1, 2, 3, 4]
    outcome.below("training loss, epoch 4 / epoch 1", h[-1]["train_loss"] / h[0]["train_loss"], 1.0)
    assert h[-1]["lr"] < h[0]["lr"]  # cosine schedule
    assert {"train_loss", "train_acc", "test_acc", "epoch_seconds", "images_per_second"} <= set(h[0])


def test_same_seed_same_weights(synthetic_cifar, cache_tmp):
    a = zoo.get("darts", "smoke", seed=3, data=synthetic_cifar, progress=False, device="cpu", **TINY).model
    b = zoo.get("darts", "smoke", seed=3, data=synthetic_cifar, progress=False, device="cpu", retrain=True, **TINY).model
    c = zoo.get("darts", "smoke", seed=4, data=synthetic_cifar, progress=False, device="cpu", **TINY).model
    assert _weights_equal(a, b)
    assert not _weights_equal(a, c)


def test_cache_hit_loads_without_training(synthetic_cifar, cache_tmp, monkeypatch):
    first = zoo.get("darts", "smoke", data=synthetic_cifar, progress=False, device="cpu", **TINY)
    monkeypatch.setattr(zoo, "train", lambda *a, **k: pytest.fail("retrained a cached model"))
    second = zoo.get("darts", "smoke", data=synthetic_cifar, progress=False, device="cpu", **TINY)
    assert _weights_equal(first.model, second.model)
    assert second.record["key"] == first.record["key"]
    assert second.record["provenance"]["git_commit"]
    assert second.record["provenance"]["data_source"] == "synthetic (tests only)"


def test_cache_key_covers_everything_that_decides_weights(synthetic_cifar):
    base, _ = zoo.resolve("darts", "smoke", 0, synthetic_cifar)
    variants = [zoo.resolve("darts", "smoke", 1, synthetic_cifar)[0],
                zoo.resolve("darts", "smoke", 0, synthetic_cifar, C=8)[0],
                zoo.resolve("darts", "smoke", 0, synthetic_cifar, lr=0.05)[0],
                zoo.resolve("darts", "smoke", 0, synthetic_cifar, epochs=3)[0],
                zoo.resolve("darts", "smoke", 0, synthetic_cifar, train_per_class=10)[0],
                zoo.resolve("darts", "smoke", 0, synthetic_cifar, subset_seed=1)[0],
                zoo.resolve("pc_darts", "smoke", 0, synthetic_cifar)[0]]
    other_data = type(synthetic_cifar)(*[t for t in (synthetic_cifar.train_x, synthetic_cifar.train_y,
                                                      synthetic_cifar.test_x, synthetic_cifar.test_y)],
                                       provenance={"source": "jpeg", "sha256": "x"})
    variants.append(zoo.resolve("darts", "smoke", 0, other_data)[0])
    keys = {v.key() for v in variants}
    assert base.key() not in keys and len(keys) == len(variants)
    assert zoo.resolve("darts", "smoke", 0, synthetic_cifar, eval_batch_size=7)[0].key() == base.key()


def test_bad_overrides_fail_before_compute(synthetic_cifar, cache_tmp, monkeypatch):
    monkeypatch.setattr(zoo, "train", lambda *a, **k: pytest.fail("trained despite bad input"))
    with pytest.raises(ValueError, match="unknown override.*'epoch'.*valid:.*epochs"):
        zoo.get("darts", "smoke", data=synthetic_cifar, epoch=3)
    with pytest.raises(ValueError, match="unknown model 'resnet19'"):
        zoo.get("resnet19", "smoke", data=synthetic_cifar)
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        zoo.get("darts", "fast", data=synthetic_cifar)


def _cached_files(cache):
    return sorted(p.name for p in Path(cache).iterdir())


def test_truncated_weights_are_detected(synthetic_cifar, cache_tmp):
    tm = zoo.get("darts", "smoke", data=synthetic_cifar, progress=False, device="cpu", **TINY)
    weights = zoo.paths(zoo.resolve("darts", "smoke", 0, synthetic_cifar, **TINY)[0])["weights"]
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(zoo.CorruptCheckpointError, match="sha256"):
        zoo.get("darts", "smoke", data=synthetic_cifar, progress=False, device="cpu", **TINY)
    assert tm.record["weights_sha256"]


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {_Payload.marker}",))


def test_malicious_pickle_is_refused_without_executing(synthetic_cifar, cache_tmp, tmp_path):
    zoo.get("darts", "smoke", data=synthetic_cifar, progress=False, device="cpu", **TINY)
    p = zoo.paths(zoo.resolve("darts", "smoke", 0, synthetic_cifar, **TINY)[0])
    marker = tmp_path / "pwned"
    _Payload.marker = marker
    torch.save({"stem.0.weight": _Payload()}, p["weights"])
    # An attacker who can write the cache can also rewrite the sidecar's checksum:
    sidecar = json.loads(p["sidecar"].read_text())
    from nascore.data import sha256_file
    sidecar["weights_sha256"] = sha256_file(p["weights"])
    p["sidecar"].write_text(json.dumps(sidecar))
    with pytest.raises(zoo.CorruptCheckpointError, match="weights-only"):
        zoo.get("darts", "smoke", data=synthetic_cifar, progress=False, device="cpu", **TINY)
    assert not marker.exists()
    # Sanity: the payload does execute under an unrestricted unpickler, so the test can fail.
    pickle.loads(pickle.dumps(_Payload()))
    assert marker.exists()


_RUNNER = textwrap.dedent("""
    import sys, torch
    sys.path.insert(0, {tests!r})
    from conftest import make_synthetic_cifar
    from nascore import zoo
    torch.set_num_threads(1)
    zoo.get("darts", "smoke", data=make_synthetic_cifar(n_train=600), progress=False, device="cpu",
            epochs=4, batch_size=50, C=4, layers=3)
""")


def test_resume_after_kill_mid_epoch_matches_uninterrupted(cache_tmp, tmp_path):
    """Kill a training run in a subprocess after its first epoch, resume, compare weights."""
    from conftest import make_synthetic_cifar

    d = make_synthetic_cifar(n_train=600)
    kw = dict(epochs=4, batch_size=50, C=4, layers=3)
    config, _ = zoo.resolve("darts", "smoke", 0, d, **kw)
    p = zoo.paths(config)
    env = dict(os.environ, NASCORE_CACHE=str(cache_tmp), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-c", _RUNNER.format(tests=str(ROOT / "tests"))], env=env, cwd=ROOT)
    try:
        deadline = time.time() + 120
        while not p["state"].exists():
            assert proc.poll() is None, "training subprocess died before its first checkpoint"
            assert time.time() < deadline, "no checkpoint after 120 s"
            time.sleep(0.05)
        time.sleep(0.3)  # into the next epoch
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not p["sidecar"].exists(), "subprocess finished before it could be interrupted"
    done = len(torch.load(p["state"], weights_only=True)["history"])
    assert 1 <= done < 4
    torch.set_num_threads(1)
    try:
        resumed = zoo.get("darts", "smoke", data=d, progress=False, device="cpu", **kw)
        assert len(resumed.record["history"]) == 4 and not p["state"].exists()
        # uninterrupted reference in a separate cache
        os.environ["NASCORE_CACHE"] = str(tmp_path / "ref")
        ref = zoo.get("darts", "smoke", data=d, progress=False, device="cpu", **kw)
    finally:
        os.environ["NASCORE_CACHE"] = str(cache_tmp)
        torch.set_num_threads(os.cpu_count() or 1)
    assert _weights_equal(resumed.model, ref.model)
    assert [h["train_loss"] for h in resumed.record["history"]] == [h["train_loss"] for h in ref.record["history"]]


def test_train_many_in_parallel_workers_matches_profile_overrides(cache_tmp):
    """Spawned workers must train exactly the configs the parent asks for (overrides included),
    so that afterwards everything loads from the cache without training again."""
    from nascore.profiles import get_profile

    prof = get_profile("smoke", epochs=1, nas_models=("darts", "pc_darts"), manual_models=(), mitigation_models=(),
                       size_matched_models=())
    out = zoo.train_many(prof.models, prof, seeds=(0,), workers=2, progress=False)
    assert set(out) == {("darts", 0), ("pc_darts", 0)}
    assert all(len(tm.record["history"]) == 1 for tm in out.values())
    assert all(zoo.is_cached(n, prof, 0) for n in prof.models)
    with pytest.raises(ValueError, match="workers must be >= 1"):
        zoo.train_many(["darts"], prof, workers=0)
    with pytest.raises(ValueError, match="unknown model"):
        zoo.train_many(["darts", "nope"], prof)
