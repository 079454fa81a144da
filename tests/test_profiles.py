import pytest

from nascore import models
from nascore.profiles import PROFILES, get_profile


def test_three_profiles_and_model_lists():
    assert set(PROFILES) == {"smoke", "quick", "paper"}
    for p in PROFILES.values():
        for m in p.models:
            assert m in models.names()
    paper = PROFILES["paper"]
    assert paper.scale_for("darts") == {"C": 36, "layers": 20} and paper.epochs == 200
    assert paper.train_per_class is None and paper.evasion.pgd_images == 1000
    assert len(PROFILES["quick"].nas_models) == 10 and len(PROFILES["quick"].manual_models) == 7


def test_scale_knobs_are_valid_for_build():
    for p in PROFILES.values():
        for m in p.models:
            assert set(p.scale_for(m)) <= set(models.scale_knobs(m))


def test_overrides_validate(monkeypatch):
    assert get_profile("quick", epochs=3).epochs == 3
    with pytest.raises(ValueError, match="unknown profile knob.*'epoch'.*valid:.*epochs"):
        get_profile("quick", epoch=3)
    with pytest.raises(ValueError, match="unknown model"):
        get_profile("quick", nas_models=["dartz"])
    monkeypatch.setenv("NASCORE_PROFILE", "paper")
    assert get_profile().name == "paper"


def test_model_scale_adds_knobs_for_one_model_and_validates():
    from torch import nn

    quick = get_profile("quick")
    assert quick.scale_for("vgg13_bn") == {"width": 1 / 8, "dropout": 0.0}
    assert quick.scale_for("resnet18") == {"width": 1 / 8}
    assert get_profile("paper").scale_for("vgg13_bn") == {"width": 1.0}
    drop = [m.p for m in models.build("vgg13_bn", **quick.scale_for("vgg13_bn")).modules() if isinstance(m, nn.Dropout)]
    assert drop == [0.0, 0.0]
    paper = [m.p for m in models.build("vgg13_bn", width=1 / 8).modules() if isinstance(m, nn.Dropout)]
    assert paper == [0.5, 0.5]  # the artifact's head
    with pytest.raises(ValueError, match="unknown model.*vgg19"):
        quick.override(model_scale={"vgg19": {"dropout": 0.0}})
    with pytest.raises(ValueError, match="unknown scale knob.*'depth'.*resnet18"):
        quick.override(model_scale={"resnet18": {"depth": 3}})
    with pytest.raises(ValueError, match="dropout must be in"):
        models.build("vgg16_bn", dropout=1.0)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_profile_pickles_for_the_workers(name):
    """Worker processes get ``Profile.to_dict()`` through pickle (spawn): no mappingproxy may survive."""
    import pickle

    from nascore.profiles import Profile

    prof = get_profile(name)
    back = Profile(**pickle.loads(pickle.dumps(prof.to_dict())))
    assert back.to_dict() == prof.to_dict()
    assert all(back.scale_for(m) == prof.scale_for(m) for m in prof.models)


def test_model_recipe_overrides_one_model_and_enters_its_cache_key(synthetic_cifar):
    """``model_recipe`` (e.g. two epochs for one DeepSloth backbone) changes that model's recipe and
    cache key only; a bad model name or Recipe field is refused before any compute."""
    from nascore import zoo

    quick = get_profile("quick")
    two = quick.override(model_recipe={"resnet18": {"epochs": 2}})
    assert two.recipe_overrides("resnet18")["epochs"] == 2
    assert two.recipe_overrides("darts")["epochs"] == quick.epochs == two.recipe_overrides()["epochs"]
    key = lambda p, m: zoo.resolve(m, p, data=synthetic_cifar, device="cpu")[0].key()
    assert key(two, "resnet18") != key(quick, "resnet18")
    assert key(two, "darts") == key(quick, "darts")
    with pytest.raises(ValueError, match="unknown model.*vgg19"):
        quick.override(model_recipe={"vgg19": {"epochs": 2}})
    with pytest.raises(ValueError, match="model_recipe"):
        quick.override(model_recipe={"resnet18": {"epoch": 2}})
    with pytest.raises(ValueError, match="model_recipe"):
        quick.override(model_recipe={"resnet18": 2})


def test_chapter_knobs_live_in_their_sections_and_are_overridden_flat():
    """Each chapter's knobs are one section of the profile (``P.evasion``, ``P.deepsloth``, …); an
    override names the knob flat, lands in its section only, and is validated before any compute."""
    from nascore.profiles import KNOB_SECTION, SECTIONS

    quick = get_profile("quick")
    assert set(KNOB_SECTION.values()) == set(SECTIONS)
    assert all(isinstance(getattr(quick, s), cls) for s, cls in SECTIONS.items())
    changed = quick.override(pgd_images=7, sloth_images=3, epochs=2)
    assert (changed.evasion.pgd_images, changed.deepsloth.sloth_images, changed.epochs) == (7, 3, 2)
    assert changed.smoothness == quick.smoothness and changed.evasion.eps_linf == quick.evasion.eps_linf
    assert quick.evasion.pgd_images == 200  # the original is untouched (frozen)
    with pytest.raises(ValueError, match=r"profile knob sloth_images=0: must be >= 1"):
        quick.override(sloth_images=0)
    with pytest.raises(ValueError, match=r"unknown profile knob\(s\) \['evasion'\]"):
        quick.override(evasion={"pgd_images": 3})
