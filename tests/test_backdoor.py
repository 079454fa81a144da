"""Backdoors (protocol §4.3): the stamp, the per-batch injection, the two ASR countings, TrojanNN's trigger
search, the latent/IMC trigger optimisation, the artifact's epoch selection, and on a small learnable
task: a backdoor that works while clean accuracy holds, resumably, through the cache."""
import pytest
import torch
from torch import nn

from nascore import zoo
from nascore.attacks.backdoor import (IMC, BackdoorFinetune, BackdoorScore, BadNet, InjectionJob, LatentBackdoor,
                                      Trigger, TrojanNN, badnet, make_attack, mean_features, pooled_features,
                                      select_epoch, unpack_bits)
from nascore.findings import backdoor_injection
from nascore.findings.backdoor_injection import inject, inject_many
from nascore.findings.extraction import victim_model
from nascore.models import build
from nascore.profiles import get_profile

TINY = dict(C=4, layers=3)


def _images(n=8, seed=0):
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- the stamp
@pytest.mark.parametrize("top,left,size", [(0, 0, 3), (5, 20, 4)])
def test_opaque_stamp_changes_exactly_the_trigger_pixels(top, left, size):
    x = _images() * 0.9  # never exactly white
    t = Trigger.white_square(size, top=top, left=left)
    s = t.apply(x)
    changed = (s != x).any(1)  # (N, H, W)
    region = torch.zeros(32, 32, dtype=torch.bool)
    region[top:top + size, left:left + size] = True
    assert bool((changed == region).all())
    assert bool((s[:, :, region] == 1).all())  # opaque white
    assert torch.equal(s[:, :, ~region], x[:, :, ~region])  # bit for bit elsewhere


def test_blended_stamp_is_the_artifacts_alpha_blend():
    x = _images()
    mark = torch.rand(3, 3, 3, generator=torch.Generator().manual_seed(1))
    s = Trigger(mark, alpha=0.7).apply(x)
    assert torch.allclose(s[:, :, :3, :3], 0.7 * x[:, :, :3, :3] + 0.3 * mark)
    assert torch.equal(s[:, :, 3:], x[:, :, 3:]) and torch.equal(s[:, :, :, 3:], x[:, :, :, 3:])
    assert float(s.min()) >= 0 and float(s.max()) <= 1


def test_stamp_keeps_channels_last_and_rejects_bad_input():
    x = _images().contiguous(memory_format=torch.channels_last)
    assert BadNet().stamp(x).is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match="does not fit"):
        Trigger.white_square(3, top=30).apply(x)
    with pytest.raises(ValueError, match="alpha must be in"):
        Trigger.white_square(3, alpha=1.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Trigger(torch.full((3, 3, 3), 2.0))


# ----------------------------------------------------------------------------- injection per batch
def test_poison_batch_prepends_one_or_two_stamped_copies_at_the_artifacts_rate():
    attack = BadNet()  # 96 × 0.02 = 1.92: 2 copies with probability 0.92, else 1
    g = torch.Generator().manual_seed(0)
    x, y = _images(96), torch.randint(1, 10, (96,), generator=g)
    counts = []
    for _ in range(1000):
        xb, yb = attack.poison_batch(x, y, g)
        k = len(yb) - 96
        counts.append(k)
        assert torch.equal(xb[k:], x) and torch.equal(yb[k:], y)
    assert set(counts) == {1, 2}
    share_two = sum(c == 2 for c in counts) / len(counts)
    assert abs(share_two - 0.92) < 5 * (0.92 * 0.08 / 1000) ** 0.5
    xb, yb = attack.poison_batch(x, y, torch.Generator().manual_seed(5))
    k = len(yb) - 96
    assert torch.equal(xb[:k], attack.stamp(x[:k])) and bool((yb[:k] == 0).all())


def test_poison_batch_is_deterministic_in_the_generator():
    x, y = _images(96), torch.arange(96) % 10
    a = [len(BadNet().poison_batch(x, y, torch.Generator().manual_seed(s))[1]) for s in range(20)]
    b = [len(BadNet().poison_batch(x, y, torch.Generator().manual_seed(s))[1]) for s in range(20)]
    assert a == b


# ----------------------------------------------------------------------------- ASR countings
class _Constant(nn.Module):
    def __init__(self, cls):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(10))
        with torch.no_grad():
            self.bias[cls] = 1.0

    def forward(self, x):
        return self.bias.expand(len(x), 10)


def test_two_asr_countings():
    y = torch.tensor([0, 0, 1, 2, 3, 4, 5, 6, 7, 8])
    always_target = BadNet().asr(_Constant(0), _images(10), y)
    assert always_target.artifact == 1.0 and always_target.standard == 1.0
    never = BadNet().asr(_Constant(5), _images(10), y)
    assert never.artifact == 0.0 and never.standard == 0.0
    # success only on the target-class images: 2/10 by the artifact's counting, 0 by the standard one
    score = BackdoorScore(success=(y == 0), is_target=(y == 0))
    assert score.artifact == pytest.approx(0.2) and score.standard == 0.0


def test_asr_accepts_uint8_and_float_alike():
    x = (_images(6) * 255).to(torch.uint8)
    y = torch.arange(6)
    model = build("darts", **TINY).eval()
    a = BadNet().asr(model, x, y)
    b = BadNet().asr(model, x.float() / 255, y)
    assert torch.equal(a.success, b.success)


# ----------------------------------------------------------------------------- trigger optimisation
def test_pooled_features_match_the_heads_input():
    model = build("darts", **TINY).eval()
    x = _images(4)
    f = pooled_features(model, x)
    assert torch.allclose(model.head[-1](f), model(x), atol=1e-5)
    vgg = build("vgg13_bn", width=1 / 16).eval()
    assert pooled_features(vgg, x).shape == (4, vgg.head.fc1.in_features)


def test_trojannn_search_raises_the_chosen_units_activation(one_thread):
    torch.manual_seed(0)
    model = build("darts", **TINY).eval()
    train_x = (_images(64, seed=2) * 255).to(torch.uint8)
    attack = TrojanNN(neuron_num=2)
    bound = attack.prepare(model, train_x, torch.zeros(64, dtype=torch.long), torch.Generator())
    means = mean_features(model, train_x)
    assert list(bound.neurons) == means.argsort()[:2].tolist()  # the least-activated units
    assert bound.activation_after > bound.activation_before
    assert bound.gap_after < bound.gap_before
    assert 1 <= bound.steps_taken <= attack.steps
    # Recomputed on the returned trigger, on the black canvas the search used:
    canvas = bound.trigger.canvas((3, 32, 32))
    act = pooled_features(model, canvas)[0, list(bound.neurons)].mean().detach()
    assert float(act) == pytest.approx(bound.activation_after, abs=1e-4)
    assert float(bound.trigger.mark.min()) >= 0 and float(bound.trigger.mark.max()) <= 1
    assert bound.trigger.alpha == 0.7 and bound.poison_rate == 0.01  # the artifact's TrojanNN runs


def test_trojannn_stops_at_the_threshold():
    model = build("darts", **TINY).eval()
    train_x = (_images(16) * 255).to(torch.uint8)
    bound = TrojanNN(threshold=1e9).prepare(model, train_x, torch.zeros(16, dtype=torch.long), torch.Generator())
    assert bound.steps_taken == 0 and torch.equal(bound.trigger.mark, torch.ones(3, 3, 3))


def test_latent_trigger_moves_stamped_features_toward_the_target_class(synthetic_cifar, one_thread):
    torch.manual_seed(0)
    model = build("darts", **TINY).eval()
    d = synthetic_cifar
    bound = LatentBackdoor(samples_per_class=8, epochs=5).prepare(model, d.train_x, d.train_y,
                                                                   torch.Generator().manual_seed(0))
    assert bound.feature_mse_after < bound.feature_mse_before
    assert not torch.equal(bound.trigger.mark, torch.ones(3, 3, 3))


def test_imc_reoptimises_the_trigger_toward_the_target(synthetic_cifar, one_thread):
    torch.manual_seed(0)
    model = build("darts", **TINY).eval()
    d = synthetic_cifar
    attack = IMC(inner_iters=5, inner_batches=2, inner_batch_size=16)
    a = attack.epoch_start(model, d.train_x, d.train_y, torch.Generator().manual_seed(0))
    b = a.epoch_start(model, d.train_x, d.train_y, torch.Generator().manual_seed(1))
    assert not torch.equal(a.trigger.mark, b.trigger.mark)  # a fresh trigger every epoch

    @torch.no_grad()
    def target_ce(mark):
        x = d.train_x[:64].float() / 255
        logits = model(Trigger(mark, alpha=attack.trigger.alpha).apply(x))
        return float(nn.functional.cross_entropy(logits, torch.zeros(64, dtype=torch.long)))

    start = torch.full((3, 3, 3), 0.5)
    assert target_ce(a.trigger.mark) < target_ce(start)


# ----------------------------------------------------------------------------- epoch selection
def _row(epoch, clean, asr):
    return {"epoch": epoch, "clean_acc": clean, "asr": asr, "asr_standard": asr, "cad": 80.0 - clean}


def test_epoch_selection_zeroes_epochs_that_lost_more_than_3_points():
    rows = [_row(0, 80, 10), _row(1, 79, 60), _row(2, 76, 95), _row(3, 78, 90), _row(4, 78.5, 90)]
    sel = select_epoch(rows)
    assert (sel["epoch"], sel["asr"], sel["zeroed_epochs"]) == (4, 90, 1)  # epoch 2 zeroed; ties: the last
    assert sel["cad"] == pytest.approx(1.5)
    low = [dict(r, clean_acc=r["clean_acc"] - 50) for r in rows]  # clean model at 30 %: no zeroing (> 40 rule)
    assert select_epoch(low)["epoch"] == 2
    with pytest.raises(ValueError, match="epoch 0"):
        select_epoch(rows[1:])


# ----------------------------------------------------------------------------- bad input
def test_bad_attack_or_parameters_fail_before_compute():
    with pytest.raises(ValueError, match="valid: badnet, trojannn, latent, imc"):
        make_attack("wanet")
    with pytest.raises(ValueError, match="unknown parameter.*valid: .*neuron_num"):
        make_attack("trojannn", neurons_num=2)
    with pytest.raises(ValueError, match=r"poison_rate=1.5 \(valid"):
        make_attack("badnet", poison_rate=1.5)
    with pytest.raises(ValueError, match=r"target=10 \(valid: 0..9\)"):
        BadNet(target=10)
    with pytest.raises(ValueError, match="neuron_num=0"):
        TrojanNN(neuron_num=0)
    with pytest.raises(ValueError, match="unknown model 'resnet1'"):
        InjectionJob(BadNet(), "resnet1", epochs=1)
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        InjectionJob(BadNet(), "resnet18", epochs=0)


# ----------------------------------------------------------------------------- end to end, small learnable task
@pytest.fixture(scope="module")
def learnable(tmp_path_factory):
    """The synthetic task of conftest (1,000 training images) as the zoo's dataset, a module-wide model
    cache, and the clean ResNet-18 (trained once for the module)."""
    import conftest

    data = conftest.make_synthetic_cifar(n_train=1000, n_test=200)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NASCORE_CACHE", str(tmp_path_factory.mktemp("cache")))
        mp.setattr(zoo, "dataset", lambda source="auto": data)
        # The protocol's training recipe (Recipe defaults), independent of the smoke profile's own.
        # 12 epochs: after 6 the clean model sat at 69-100 % depending on the seed and CPU, and the backdoor
        # test's outcome with it (benchmarks/learned_outcomes.py; README "Portable tests").
        prof = get_profile("smoke", train_per_class=100, test_per_class=20, epochs=12, recipe={})
        yield prof, zoo.get("resnet18", prof, seed=conftest.TEST_SEED, device="cpu", progress=False)
    torch.set_num_threads(threads)


@pytest.mark.learned
def test_backdoor_reaches_high_asr_while_clean_accuracy_holds(learnable, outcome):
    import conftest

    prof, clean = learnable
    # 8 epochs: with 6, fine-tuning was still unsettled at its end (clean accuracy 33-80 % in mid-run, a final
    # ASR of 88-100 % here and 48.9 % on an AMD EPYC; CAD up to 20 pp with oneDNN capped to AVX2).
    tm = inject(InjectionJob(badnet(poison_rate=0.3), "resnet18", epochs=8, seed=conftest.TEST_SEED), prof,
                device="cpu")
    rows = tm.record["history"]
    assert [r["epoch"] for r in rows] == list(range(9))
    assert rows[0]["clean_acc"] == pytest.approx(100 * clean.record["metrics"]["test_acc"])
    final = tm.record["metrics"]["final"]
    # The invariant, on any CPU: the backdoored model follows the trigger far more often than the clean one.
    outcome.above("ASR gain over the clean model (pp)", final["asr_standard"] - rows[0]["asr_standard"], 50)
    outcome.below("clean model's ASR (%)", rows[0]["asr_standard"], 20)  # the clean model ignores the trigger
    outcome.below("CAD (pp)", final["cad"], 5, inclusive=True)  # clean accuracy holds
    success = unpack_bits(tm.record["metrics"]["success_final"], 200)
    assert success.float().mean().item() * 100 == pytest.approx(final["asr"])


def test_injection_resumes_after_an_interruption(learnable, monkeypatch):
    prof, _ = learnable
    job = InjectionJob(IMC(poison_rate=0.2, inner_iters=1, inner_batches=1), "resnet18", epochs=3, train_images=300)
    whole = inject(job, prof, device="cpu", progress=False)
    for f in zoo.cache_dir().glob("backdoor-imc-*"):
        f.unlink()
    calls = {"n": 0}
    real_train = backdoor_injection.train

    def dies_in_epoch_2(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_train(*a, **k)

    monkeypatch.setattr(backdoor_injection, "train", dies_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        inject(job, prof, device="cpu")
    monkeypatch.setattr(backdoor_injection, "train", real_train)
    resumed = inject(job, prof, device="cpu")
    keys = ("epoch", "clean_acc", "asr", "asr_standard", "train_loss")
    assert [{k: r[k] for k in keys} for r in resumed.record["history"]] == \
        [{k: r[k] for k in keys} for r in whole.record["history"]]
    assert resumed.record["metrics"]["trigger"] == whole.record["metrics"]["trigger"]
    assert not list(zoo.cache_dir().glob("*.backdoor"))  # the side file is gone once finished


def test_cached_injection_loads_without_training_and_keys_differ(learnable, monkeypatch):
    prof, _ = learnable
    a = InjectionJob(BadNet(), "resnet18", epochs=1, train_images=100)
    first = inject_many([a], prof, workers=1, progress=False)[a]
    monkeypatch.setattr(backdoor_injection, "train", lambda *x, **k: pytest.fail("retrained a cached injection"))
    again = inject_many([a], prof, workers=1, progress=False)[a]
    assert again.record["key"] == first.record["key"]
    other = [InjectionJob(BadNet(poison_rate=0.05), "resnet18", epochs=1, train_images=100),
             InjectionJob(TrojanNN(), "resnet18", epochs=1, train_images=100),
             InjectionJob(BadNet(), "resnet18", epochs=2, train_images=100)]
    cfg, _ = zoo.resolve("resnet18", prof, 0, device="cpu")
    keys = {str(j.key_config(cfg.key())) for j in [a, *other]}
    assert len(keys) == 4


def test_finetune_variant_starts_from_the_clean_weights(learnable):
    prof, clean = learnable
    variant = BackdoorFinetune(BadNet(), clean.record["key"], train_images=100, load_clean=victim_model)
    start = variant.initial_state("resnet18", prof, 0)
    assert all(torch.equal(start[k], v) for k, v in clean.model.state_dict().items())
    inputs = variant.inputs(*zoo.splits(zoo.dataset(), zoo.resolve("resnet18", prof, 0, device="cpu")[0])[:2], seed=0)
    assert len(inputs.train_y) == 100 and inputs.batch_transform is not None
    with pytest.raises(FileNotFoundError, match="key"):
        BackdoorFinetune(BadNet(), "0" * 16, load_clean=victim_model).initial_state("resnet18", prof, 0)


def test_chapter_jobs_follow_the_profile_and_fail_before_compute():
    from nascore.findings import backdoor

    p = get_profile("smoke", backdoor_models=["darts", "resnet18", "vgg13_bn"], trojannn_neurons=[1, 2, 4],
                    neuron_sweep_models=["darts"], latent_imc_models=["darts", "resnet18"], backdoor_poison_scale=5.0)
    jobs = backdoor.jobs(p)
    assert sorted({k[0] for k in jobs}) == ["badnet", "imc", "latent", "trojannn", "trojannn_n1", "trojannn_n4"]
    assert {k[1] for k in jobs if k[0] == "trojannn_n4"} == {"darts"}
    assert jobs[("badnet", "darts", 0)].attack.poison_rate == pytest.approx(0.1)  # 0.02 × 5
    assert jobs[("trojannn", "darts", 0)].attack.poison_rate == pytest.approx(0.05)  # 0.01 × 5
    assert jobs[("trojannn_n4", "darts", 0)].attack.neuron_num == 4
    with pytest.raises(ValueError, match="not among the backdoor models"):
        backdoor.check(get_profile("smoke", backdoor_models=["darts", "resnet18"], neuron_sweep_models=["vgg13_bn"]))
    with pytest.raises(ValueError, match="needs NAS and manual models"):
        backdoor.check(get_profile("smoke", backdoor_models=["darts"], neuron_sweep_models=["darts"],
                                   latent_imc_models=["darts"]))
    with pytest.raises(ValueError, match="backdoor_poison_scale"):
        backdoor.check(get_profile("smoke", backdoor_poison_scale=60.0))
