"""Shared fixtures. The synthetic dataset lives here, for unit tests only: chapters and the
package never fall back to it."""
from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("NASCORE_PROFILE", "smoke")


def make_synthetic_cifar(n_train: int = 200, n_test: int = 100, seed: int = 0):
    """A learnable toy stand-in shaped like CIFAR-10: class c brightens channel c % 3."""
    from nascore.data import CIFAR10

    g = torch.Generator().manual_seed(seed)

    def split(n):
        y = torch.arange(n) % 10
        x = torch.randint(0, 120, (n, 3, 32, 32), generator=g, dtype=torch.int16)
        x[torch.arange(n), y % 3] += (40 + 12 * y).to(torch.int16)[:, None, None]
        return x.clamp(0, 255).to(torch.uint8), y

    train_x, train_y = split(n_train)
    test_x, test_y = split(n_test)
    return CIFAR10(train_x, train_y, test_x, test_y, provenance={"source": "synthetic", "label": "synthetic (tests only)"})


@pytest.fixture
def synthetic_cifar():
    return make_synthetic_cifar()


@pytest.fixture
def cache_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("NASCORE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models: on a shared 2-core machine a second intra-op thread only adds spin-wait stalls."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def train_toy_sdn(make_backbone, n_train: int = 400, n_test: int = 200):
    """A toy multi-exit network for the DeepSloth tests: ``make_backbone()`` (a small BlockNet, built
    after seeding ``TEST_SEED``) trained 3 epochs on synthetic data, then its ICs; returns ``(sdn in eval mode, data)``."""
    from nascore.multiexit import SDN, ICRecipe, fit_ics
    from nascore.train import Recipe, train

    data = make_synthetic_cifar(n_train, n_test)
    torch.manual_seed(TEST_SEED)
    backbone = make_backbone()
    train(backbone, data.train_x, data.train_y, data.test_x, data.test_y,
          Recipe(epochs=3, batch_size=50, lr=0.05, cutout=0, grad_clip=None), seed=TEST_SEED, progress=False)
    sdn = SDN(backbone)
    fit_ics(sdn, data.train_x, data.train_y, ICRecipe(epochs=6, reuse=3, batch_size=50, lr=1e-2), seed=TEST_SEED)
    return sdn.eval(), data


# ----------------------------------------------------------------------------- learned outcomes
#: The training seed of every learned-outcome test (``make test-portable`` sweeps it; default 0).
TEST_SEED = int(os.environ.get("NASCORE_TEST_SEED", "0"))


class Outcomes:
    """Asserts a learned outcome against its threshold and records it for ``make test-portable``.

    A learned outcome is a quantity a test gets only by training or attacking on this CPU (an
    accuracy, a success rate, a loss drop): its value depends on the seed and on the instruction set
    (README, "Determinism"), so its threshold is set from the smallest value measured across both
    (``benchmarks/learned_outcomes.py``, README "Portable tests"). With ``$NASCORE_OUTCOMES`` set, every
    check appends one JSON line (test, outcome, value, direction, threshold, seed, ISA caps) to that
    file, whether it passes or not.
    """

    def __init__(self, nodeid: str):
        self.nodeid = nodeid

    def _check(self, name: str, value, threshold: float, op: str) -> None:
        import json

        value = float(value)
        ok = {">": value > threshold, ">=": value >= threshold, "<": value < threshold,
              "<=": value <= threshold}[op]
        path = os.environ.get("NASCORE_OUTCOMES")
        if path:
            row = {"test": self.nodeid, "outcome": name, "value": value, "op": op, "threshold": threshold,
                   "seed": TEST_SEED, "ATEN_CPU_CAPABILITY": os.environ.get("ATEN_CPU_CAPABILITY", ""),
                   "ONEDNN_MAX_CPU_ISA": os.environ.get("ONEDNN_MAX_CPU_ISA", ""),
                   "capability": torch.backends.cpu.get_cpu_capability()}
            with open(path, "a") as f:
                f.write(json.dumps(row) + "\n")
        assert ok, f"{name} = {value:.6g}, expected {op} {threshold:g} (seed {TEST_SEED})"

    def above(self, name: str, value, threshold: float, inclusive: bool = False) -> None:
        self._check(name, value, threshold, ">=" if inclusive else ">")

    def below(self, name: str, value, threshold: float, inclusive: bool = False) -> None:
        self._check(name, value, threshold, "<=" if inclusive else "<")


@pytest.fixture
def outcome(request):
    """:class:`Outcomes` for the requesting test; mark the test ``@pytest.mark.learned``."""
    return Outcomes(request.node.nodeid)
