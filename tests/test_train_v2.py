"""The trainer's extension points (soft labels, frozen samples, batch transforms, within-run
evaluation, schedules), the complete cache key, variants and the generic cache."""
import importlib
import sys
from dataclasses import dataclass

import pytest
import torch

from nascore import fingerprint, zoo
from nascore.models import build
from nascore.profiles import get_profile
from nascore.train import CorruptCheckpointError, Recipe, train, warmup_linear

TINY = dict(C=4, layers=3)


def _fresh(seed=0):
    torch.manual_seed(seed)
    return build("darts", **TINY)


def test_warmup_linear_rises_then_falls_to_zero():
    f = warmup_linear(100, 0.2)
    values = [f(s) for s in range(100)]
    assert values[0] == pytest.approx(1 / 20) and values[19] == pytest.approx(1.0)
    assert all(a <= b for a, b in zip(values[:20], values[1:20]))
    assert all(a >= b for a, b in zip(values[19:], values[20:]))
    assert f(100) == 0.0 and values[-1] == pytest.approx(1 / 80)


def test_one_hot_soft_labels_train_like_hard_labels_and_soft_targets_differ(synthetic_cifar, one_thread):
    d = synthetic_cifar
    r = Recipe(epochs=1, batch_size=50, cutout=0)
    hard, soft, smooth = _fresh(), _fresh(), _fresh()
    train(hard, d.train_x, d.train_y, d.test_x, d.test_y, r, progress=False, device="cpu")
    onehot = torch.nn.functional.one_hot(d.train_y, 10).float()
    train(soft, d.train_x, onehot, d.test_x, d.test_y, r, progress=False, device="cpu")
    train(smooth, d.train_x, 0.5 * onehot + 0.05, d.test_x, d.test_y, r, progress=False, device="cpu")
    w = [m.head[-1].weight.detach() for m in (hard, soft, smooth)]
    assert torch.allclose(w[0], w[1], atol=1e-5)
    assert not torch.allclose(w[0], w[2], atol=1e-3)
    with pytest.raises(ValueError, match="soft labels must be"):
        train(_fresh(), d.train_x, onehot[:10], d.test_x, d.test_y, r, progress=False, device="cpu")


def test_batch_transform_sees_every_batch_and_its_samples_count(synthetic_cifar, one_thread):
    d = synthetic_cifar
    calls = []

    def prepend_first(x, y, g):
        calls.append(len(y))
        extra = torch.randint(0, 2, (1,), generator=g).item() + 1
        return torch.cat([x[:extra], x]), torch.cat([torch.zeros(extra, dtype=y.dtype), y])

    h = train(_fresh(), d.train_x, d.train_y, d.test_x, d.test_y, Recipe(epochs=2, batch_size=64, cutout=0),
              progress=False, device="cpu", batch_transform=prepend_first)
    assert len(calls) == 2 * 4  # 200 images / 64 = 4 batches per epoch
    assert all(len(d.train_y) < row["images"] <= len(d.train_y) + 8 for row in h)


def test_eval_points_record_an_early_curve(synthetic_cifar, one_thread):
    d = synthetic_cifar
    h = train(_fresh(), d.train_x, d.train_y, d.test_x, d.test_y,
              Recipe(epochs=2, batch_size=20, cutout=0, schedule="warmup_linear", nesterov=True, lr=0.05,
                     eval_points=5, curve_images=50), progress=False, device="cpu")
    steps = [p["step"] for p in h.curve]
    assert steps == sorted(steps) and len(steps) == 6 and steps[0] == 0 and steps[-1] == 2 * 10
    assert h.curve[0]["train_loss"] is None and h.curve[0]["images"] == 0
    assert all(0 <= p["test_acc"] <= 1 and p["train_loss"] > 0 for p in h.curve[1:])
    assert h.curve[-1]["images"] == 2 * len(d.train_y)
    assert h[0]["lr"] < 0.05  # warm-up: the first step runs below the peak


def test_key_normalises_numbers_and_covers_resolved_defaults(synthetic_cifar):
    a, _ = zoo.resolve("resnet18", "smoke", 0, synthetic_cifar, device="cpu", width=1)
    b, _ = zoo.resolve("resnet18", "smoke", 0, synthetic_cifar, device="cpu", width=1.0)
    assert a.key() == b.key()
    c, _ = zoo.resolve("darts", "smoke", 0, synthetic_cifar, device="cpu", **TINY)
    # defaults resolved (drop_path_prob is not set by the profile), genotype as data
    assert c.build["drop_path_prob"] == 0.0 and c.build["auxiliary"] is False and c.build["genotype"]["normal"]
    d, _ = zoo.resolve("darts", "smoke", 0, synthetic_cifar, device="cpu", drop_path_prob=0.0, **TINY)
    e, _ = zoo.resolve("darts", "smoke", 0, synthetic_cifar, device="cpu", drop_path_prob=0.1, **TINY)
    assert c.key() == d.key() != e.key()  # explicit default == implicit default; a changed value is not
    f, _ = zoo.resolve("darts", "smoke", 0, synthetic_cifar, device="cpu", precision="bf16", **TINY)
    assert f.key() != c.key() and c.recipe["precision"] == "fp32" and c.device_type == "cpu"


def test_code_fingerprint_ignores_docstrings_but_not_code(tmp_path, monkeypatch):
    pkg = tmp_path / "fpmod.py"
    monkeypatch.syspath_prepend(str(tmp_path))

    def fp(src):
        pkg.write_text(src)
        sys.modules.pop("fpmod", None)
        importlib.invalidate_caches()
        fingerprint.module_fingerprint.cache_clear()
        return fingerprint.module_fingerprint("fpmod")

    base = fp('"""Doc."""\ndef f(x, p=0.2):\n    """Say."""\n    return x * p  # comment\n')
    assert fp('"""Other doc."""\ndef f(x, p=0.2):\n    """Reworded."""\n    return x * p\n') == base
    assert fp('"""Doc."""\ndef f(x, p=0.3):\n    """Say."""\n    return x * p\n') != base
    fingerprint.module_fingerprint.cache_clear()


def test_corrupt_sidecar_and_checkpoint_raise_naming_the_file(synthetic_cifar, cache_tmp):
    kw = dict(data=synthetic_cifar, progress=False, device="cpu", **TINY)
    zoo.get("darts", "smoke", **kw)
    p = zoo.paths(zoo.resolve("darts", "smoke", 0, synthetic_cifar, device="cpu", **TINY)[0])
    for text in ("{not json", "[1, 2]", '{"history": []}'):
        p["sidecar"].write_text(text)
        with pytest.raises(CorruptCheckpointError, match=p["sidecar"].name):
            zoo.get("darts", "smoke", **kw)
    p["sidecar"].unlink()
    p["state"].write_bytes(b"\x80\x04garbage")
    with pytest.raises(CorruptCheckpointError, match=p["state"].name):
        zoo.get("darts", "smoke", **kw)


@dataclass(frozen=True)
class _AllToClass:
    """Toy variant: every training label becomes ``cls``; starts from given weights if any."""

    cls: int
    start: dict | None = None

    def config(self):
        return {"all_to": self.cls}

    def inputs(self, train_x, train_y, seed):
        return zoo.TrainingInputs(train_x, torch.full_like(train_y, self.cls))

    def initial_state(self, name, profile, seed):
        return self.start


@pytest.mark.learned
def test_variant_changes_the_key_and_the_training_data(synthetic_cifar, cache_tmp, outcome):
    from conftest import TEST_SEED

    kw = dict(data=synthetic_cifar, progress=False, device="cpu", epochs=3, seed=TEST_SEED, **TINY)
    clean = zoo.get("darts", "smoke", **kw)
    poisoned = zoo.get("darts", "smoke", variant=_AllToClass(3), **kw)
    assert poisoned.record["key"] != clean.record["key"]
    assert poisoned.record["config"]["variant"] == {"all_to": 3.0}
    counts = poisoned.record["metrics"]["prediction_counts"]
    outcome.above("share of test images answered 3", counts[3] / sum(counts), 0.8, inclusive=True)  # clean: ~10 %
    assert zoo.is_cached("darts", "smoke", variant=_AllToClass(3), data=synthetic_cifar, device="cpu", epochs=3,
                         seed=TEST_SEED, **TINY)
    assert not zoo.is_cached("darts", "smoke", variant=_AllToClass(4), data=synthetic_cifar, device="cpu", epochs=3,
                             seed=TEST_SEED,
                             **TINY)
    with pytest.raises(TypeError, match="must implement nascore.zoo.Variant"):
        zoo.get("darts", "smoke", variant=object(), **kw)


def test_variant_initial_state_is_the_starting_point(synthetic_cifar, cache_tmp):
    kw = dict(data=synthetic_cifar, progress=False, device="cpu", epochs=1, lr=1e-9, **TINY)
    clean = zoo.get("darts", "smoke", **kw)
    start = {k: v.clone() for k, v in clean.model.state_dict().items()}
    tuned = zoo.get("darts", "smoke", variant=_AllToClass(1, start), **kw)
    w0, w1 = clean.model.head[-1].weight, tuned.model.head[-1].weight
    assert torch.allclose(w0, w1, atol=1e-4)  # lr ~ 0: stays at the starting weights


def test_generic_cache_trains_once_and_verifies(cache_tmp):
    calls = []

    def fit(model, ckpt):
        calls.append(ckpt)
        with torch.no_grad():
            model.weight.fill_(2.0)
        return [{"epoch": 1}], {"score": 1.0}

    a = zoo.cached("toy", {"n": 3}, lambda: torch.nn.Linear(2, 2), fit, device="cpu")
    b = zoo.cached("toy", {"n": 3.0}, lambda: torch.nn.Linear(2, 2), fit, device="cpu")
    assert len(calls) == 1 and torch.equal(b.model.weight, torch.full((2, 2), 2.0))
    assert b.record["metrics"]["score"] == 1.0
    zoo.cached("toy", {"n": 4}, lambda: torch.nn.Linear(2, 2), fit, device="cpu")
    assert len(calls) == 2
    weights = zoo.paths("toy", a.record["key"])["weights"]
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(CorruptCheckpointError, match="sha256"):
        zoo.cached("toy", {"n": 3}, lambda: torch.nn.Linear(2, 2), fit, device="cpu")


@pytest.mark.parametrize("knobs, message", [
    ({"epochs": 0}, "epochs=0: must be >= 1"),
    ({"epochs": 1.5}, "expected an integer"),
    ({"pgd_images": "10"}, "expected an integer"),
    ({"eps_linf": (0.01, -1)}, "expected positive numbers"),
    ({"nas_models": "darts"}, "expected a list of model names"),
    ({"nas_models": ["darts", "nope"]}, "unknown model"),
    ({"recipe": {"lr": -1}}, "lr=-1"),
    ({"recipe": {"nope": 1}}, "unexpected keyword"),
    ({"train_per_class": 0}, "must be >= 1"),
])
def test_profile_override_validates_values(knobs, message):
    with pytest.raises(ValueError, match=message):
        get_profile("smoke", **knobs)


def test_profile_override_accepts_valid_values_and_none():
    p = get_profile("smoke", epochs=3, train_per_class=None, eps_linf=[1 / 255], recipe={"lr": 0.1})
    assert p.epochs == 3 and p.train_per_class is None and p.evasion.eps_linf == (1 / 255,)
    assert p.recipe_overrides()["lr"] == 0.1
