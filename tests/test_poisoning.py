"""Random wrong-label poisoning (protocol §4.2): exact fraction, never the true label, frozen augmentation
for the poisoned images only, poisoning settings in the cache key, bad input refused before compute."""
import pytest
import torch

from nascore import zoo
from nascore.attacks import RandomLabelPoison
from nascore.attacks.poisoning import poison_indices, wrong_labels
from nascore.data import DeviceLoader

TINY = dict(C=4, layers=3)


def _unique_images(n=400, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    return x, torch.arange(n) % 10


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.25, 0.4, 0.999])
def test_poisoned_fraction_is_exact_and_labels_are_always_wrong(rate):
    x, y = _unique_images()
    px, py, frozen, idx = RandomLabelPoison(rate).poison(x, y, seed=0)
    assert len(px) == len(x) and len(py) == len(y)  # dataset size unchanged
    assert int(frozen.sum()) == len(idx) == int(rate * len(y))
    assert torch.equal(torch.nonzero(frozen).flatten(), idx)
    assert bool((py[idx] != y[idx]).all())  # never the true label
    clean = ~frozen
    assert torch.equal(py[clean], y[clean]) and torch.equal(px[clean], x[clean])  # the rest untouched
    assert int(py.min()) >= 0 and int(py.max()) <= 9


def test_wrong_labels_are_uniform_over_the_other_classes():
    y = torch.full((18_000,), 3)
    new = wrong_labels(y, torch.Generator().manual_seed(1))
    counts = torch.bincount(new, minlength=10).float()
    assert counts[3] == 0
    expected = 18_000 / 9  # 2,000 each; binomial sd ≈ 42
    assert bool(((counts[torch.arange(10) != 3] - expected).abs() < 5 * 42).all()), counts


def test_poison_draw_depends_on_seed_and_is_reproducible():
    x, y = _unique_images()
    p = RandomLabelPoison(0.4)
    a, b, c = p.poison(x, y, 0), p.poison(x, y, 0), p.poison(x, y, 1)
    assert torch.equal(a[3], b[3]) and torch.equal(a[1], b[1]) and torch.equal(a[0], b[0])
    assert not torch.equal(a[3], c[3])
    assert p.generator(0).initial_seed() == 1228  # seed 0 uses the artifact's data seed


def test_augmentation_is_frozen_for_poisoned_images_only():
    x, y = _unique_images(200)
    inputs = RandomLabelPoison(0.3).inputs(x, y, seed=0)
    frozen = inputs.frozen
    idx = torch.nonzero(frozen).flatten()
    # The stored poisoned images are one augmentation draw of the originals (crop/flip change almost all).
    changed = (inputs.train_x[idx] != x[idx]).flatten(1).any(1).float().mean()
    assert changed > 0.9
    stored = inputs.train_x.float().div(255).flatten(1)
    loader = DeviceLoader(inputs.train_x, inputs.train_y, 64, "cpu", train=True, seed=0, cutout=0, frozen=frozen)
    for _ in range(2):  # two epochs: poisoned images come out exactly as stored, clean ones re-augmented
        seen = torch.cat([xb.flatten(1) for xb, _ in loader])
        exact = (seen[:, None, :] == stored[None, :, :]).all(-1).any(0)  # stored image i appears verbatim
        assert bool(exact[idx].all())
        assert exact[~frozen].float().mean() < 0.1  # identity crop and no flip: 1/162 per image


def test_cache_keys_differ_for_different_poison_settings(synthetic_cifar):
    def key(variant):
        return zoo.resolve("darts", "smoke", 0, synthetic_cifar, "cpu", variant, **TINY)[0].key()

    keys = {key(None), key(RandomLabelPoison(0.1)), key(RandomLabelPoison(0.4)),
            key(RandomLabelPoison(0.4, data_seed=7)), key(RandomLabelPoison(0.4, cutout=16))}
    assert len(keys) == 5
    assert key(RandomLabelPoison(0.4)) == key(RandomLabelPoison(0.4))


def test_poisoned_model_trains_through_the_zoo(synthetic_cifar, cache_tmp, one_thread):
    poison = RandomLabelPoison(0.4)
    tm = zoo.get("darts", "smoke", data=synthetic_cifar, device="cpu", progress=False, variant=poison, **TINY)
    assert tm.record["config"]["variant"]["rate"] == 0.4
    assert tm.record["metrics"]["n_train"] == 200  # size unchanged
    clean_key = zoo.resolve("darts", "smoke", 0, synthetic_cifar, "cpu", **TINY)[0].key()
    assert tm.record["key"] != clean_key


@pytest.mark.parametrize("bad", [1.0, -0.1, 1.5, "0.4", True, float("nan")])
def test_bad_rate_fails_with_the_valid_range(bad):
    with pytest.raises(ValueError, match=r"rate=.*valid: a number in \[0, 1\)"):
        RandomLabelPoison(bad)


def test_poison_indices_use_the_artifacts_floor():
    g = torch.Generator().manual_seed(0)
    assert len(poison_indices(1001, 0.1, g)) == 100


def test_chapter_knobs_fail_before_compute():
    from nascore.findings import poisoning
    from nascore.profiles import get_profile

    with pytest.raises(ValueError, match="needs NAS and manual models"):
        poisoning.check(get_profile("smoke", poison_models=["darts", "pc_darts"]))
    with pytest.raises(ValueError, match="unknown model"):
        get_profile("smoke", nas_models=["dartz"])
    with pytest.raises(ValueError, match=r"outside \(0, 1\)"):
        poisoning.check(get_profile("smoke", poison_rates=[0.4, 1.0]))
    p = get_profile("smoke", poison_models=["darts", "resnet18"], poison_rates=[0.2])
    assert poisoning.check(p) == ("darts", "resnet18")
    assert poisoning.overrides(get_profile("paper")) == {"epochs": 50, "eval_points": 0}  # protocol: 50 epochs
    assert poisoning.overrides(get_profile("smoke")) == {}  # 0 % reference = the clean zoo model
