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
    after seeding 0) trained 3 epochs on synthetic data, then its ICs; returns ``(sdn in eval mode, data)``."""
    from nascore.multiexit import SDN, ICRecipe, fit_ics
    from nascore.train import Recipe, train

    data = make_synthetic_cifar(n_train, n_test)
    torch.manual_seed(0)
    backbone = make_backbone()
    train(backbone, data.train_x, data.train_y, data.test_x, data.test_y,
          Recipe(epochs=3, batch_size=50, lr=0.05, cutout=0, grad_clip=None), progress=False)
    sdn = SDN(backbone)
    fit_ics(sdn, data.train_x, data.train_y, ICRecipe(epochs=6, reuse=3, batch_size=50, lr=1e-2))
    return sdn.eval(), data
