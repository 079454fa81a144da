"""The contract of every evasion-time attack exported by ``nascore.attacks`` (issue 21).

For each attack class in ``nascore.attacks.__all__`` that subclasses :class:`nascore.attacks.Attack`,
a tiny configuration (below) is checked for: ``attack(model, x, y)`` returns an ``AttackResult``
with the batch's shapes; ``‖x_adv − x‖ ≤ ε`` in the attack's norm; ``x_adv`` in [0, 1]; the same
seed gives the same result; and, where it applies, permuting the batch permutes the result.

The test enumerates ``__all__`` itself: a class added there that is neither a configured attack
below nor listed as a base / training-time / result class makes it fail.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

import nascore.attacks as A
from nascore.attacks import Attack, AttackResult

pytestmark = pytest.mark.usefixtures("one_thread")


class MultiExit(nn.Module):
    """3 internal classifiers + final exit on 3×8×8 images, with ``exit_view`` (as an SDN)."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(3, 6, 3, padding=1), nn.Conv2d(6, 8, 3, padding=1, stride=2)
        self.ics = nn.ModuleList([nn.Linear(6 * 64, 10), nn.Linear(8 * 16, 10), nn.Linear(8 * 16, 10)])
        self.head = nn.Linear(8 * 16, 10)

    def forward(self, x):
        h1 = torch.tanh(self.c1(x))
        h2 = torch.tanh(self.c2(h1))
        return [self.ics[0](h1.flatten(1)), self.ics[1](h2.flatten(1)), 3 * self.ics[2](h2.flatten(1)),
                3 * self.head(h2.flatten(1))]

    def exit_view(self, k):
        return _View(self, range(4)[k])


class _View(nn.Module):
    def __init__(self, m, k):
        super().__init__()
        self.m, self.k = m, k

    def forward(self, x):
        return self.m(x)[self.k]


def _cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(6 * 64, 10))


def _multi_exit():
    torch.manual_seed(1)
    return MultiExit()


# name -> (model factory, attack factory, batch-order invariance: True or the reason it does not apply)
SHARED_STREAM = "the random start is one stream drawn over the batch in order"
WHOLE_BATCH = "one perturbation is crafted on the whole batch"
CONTRACT = {
    "PGD": (_cnn, lambda: A.PGD(eps=8 / 255, steps=4), True),
    "NES": (_cnn, lambda: A.NES(steps=2, samples=3, seed=0), "the NES directions are one stream drawn in batch order"),
    "NESGradient": (_cnn, lambda: A.NESGradient(steps=2, samples=3, random_start=True, seed=0),
                    "the NES directions are one stream drawn in batch order"),
    "DeepSloth": (_multi_exit, lambda: A.DeepSloth("linf", steps=3, seed=0), SHARED_STREAM),
    "DeepSloth/l2": (_multi_exit, lambda: A.DeepSloth("l2", steps=4, stages=2, seed=0), SHARED_STREAM),
    "DeepSloth/l1": (_multi_exit, lambda: A.DeepSloth("l1", steps=3, seed=0), SHARED_STREAM),
    "ExitPGD": (_multi_exit, lambda: A.ExitPGD("final", steps=3, seed=0), SHARED_STREAM),
    "ExitPGD/avg": (_multi_exit, lambda: A.ExitPGD("avg", steps=3, seed=0), SHARED_STREAM),
    "ExitPGD/max": (_multi_exit, lambda: A.ExitPGD("max", steps=2, seed=0), SHARED_STREAM),
    "UniversalDeepSloth": (_multi_exit, lambda: A.UniversalDeepSloth("linf", steps=3, seed=0), WHOLE_BATCH),
    "UniversalDeepSloth/l2": (_multi_exit, lambda: A.UniversalDeepSloth("l2", epochs=2, batches=2, steps=2, seed=0),
                              WHOLE_BATCH),
    "UniversalDeepSloth/l1": (_multi_exit, lambda: A.UniversalDeepSloth("l1", batches=2, steps=2, seed=0),
                              WHOLE_BATCH),
    "ClassUniversalDeepSloth": (_multi_exit, lambda: A.ClassUniversalDeepSloth("linf", steps=2, per_class=3, seed=0),
                                "each class's perturbation is crafted on that class's first images"),
    "DeepFoolUAP": (_multi_exit, lambda: A.DeepFoolUAP(eps=0.1, max_passes=1, seed=0), WHOLE_BATCH),
    "HopSkipJump": (_cnn, lambda: A.HopSkipJump(max_iter=1, max_eval=6, init_eval=2, init_size=5, seed=0), True),
}
#: classes in ``__all__`` that are not configured evasion attacks, and why
NOT_EVASION = {
    "Attack": "the contract's base class", "IterativeAttack": "the shared loop's base class",
    "UniversalAttack": "the universal attacks' base class",
    "AttackResult": "result", "BoundaryResult": "result", "UniversalPerturbation": "result of craft()",
    "RandomLabelPoison": "training-time", "ThiefVariant": "training-time", "Backdoor": "training-time",
    "BadNet": "training-time", "TrojanNN": "training-time", "LatentBackdoor": "training-time", "IMC": "training-time",
}


def _exported_classes() -> dict[str, type]:
    return {n: getattr(A, n) for n in A.__all__ if isinstance(getattr(A, n), type)}


def test_every_exported_class_is_covered():
    classes = _exported_classes()
    configured = {k.split("/")[0] for k in CONTRACT}
    missing = sorted(set(classes) - configured - set(NOT_EVASION))
    assert not missing, f"attack classes in nascore.attacks.__all__ without a contract entry: {missing}"
    for name in configured:
        assert issubclass(classes[name], Attack), f"{name} does not follow the Attack contract"
    for name in set(classes) & set(NOT_EVASION) - {"Attack", "IterativeAttack", "UniversalAttack"}:
        assert not issubclass(classes[name], Attack) or NOT_EVASION[name].startswith("the ")
    assert issubclass(A.IterativeAttack, Attack) and issubclass(A.UniversalAttack, Attack)


def _inputs(n=8):
    g = torch.Generator().manual_seed(2)
    return torch.rand(n, 3, 8, 8, generator=g), torch.tensor([0, 1, 2, 3, 0, 1, 2, 3][:n])


def _delta_norm(d: torch.Tensor, norm: str) -> torch.Tensor:
    d = d.flatten(1).double()
    return {"linf": d.abs().amax(1), "l2": d.norm(dim=1), "l1": d.abs().sum(1)}[norm]


def _fields(r: AttackResult):
    return [r.x_adv, r.success, r.iterations, r.queries, r.success_last_step]


@pytest.mark.parametrize("entry", sorted(CONTRACT))
def test_attack_contract(entry):
    make_model, make_attack, order = CONTRACT[entry]
    model, attack = make_model(), make_attack()
    x, y = _inputs()
    result = attack(model, x, y)
    assert isinstance(result, AttackResult) and result.x_adv.shape == x.shape
    assert result.success.shape == (8,) and result.success.dtype == torch.bool
    assert result.iterations.shape == (8,) and result.iterations.dtype == torch.long
    assert 0 <= float(result.x_adv.min()) and float(result.x_adv.max()) <= 1
    delta = result.x_adv - x
    if attack.eps is None:                      # HopSkipJump minimises the distance instead
        assert torch.allclose(result.l2, delta.flatten(1).norm(dim=1))
        assert torch.allclose(result.linf, delta.flatten(1).abs().amax(1))
    else:
        assert float(_delta_norm(delta, attack.norm).max()) <= attack.eps * (1 + 1e-5)
    assert attack.config()["attack"]
    again = make_attack()(model, x, y)
    for a, b in zip(_fields(result), _fields(again)):
        assert (a is None and b is None) or torch.equal(a, b), "same seed, different result"
    if order is True:
        perm = torch.tensor([3, 0, 7, 5, 1, 6, 2, 4])
        kw = {"sample_ids": perm} if isinstance(attack, A.HopSkipJump) else {}
        permuted = make_attack()(model, x[perm], y[perm], **kw)
        assert torch.allclose(permuted.x_adv, result.x_adv[perm], atol=1e-6)
        assert torch.equal(permuted.success, result.success[perm])
        assert torch.equal(permuted.iterations, result.iterations[perm])
    else:
        assert isinstance(order, str) and order          # the reason batch order matters
