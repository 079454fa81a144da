"""CIFAR-10 loading, subsets and on-device augmentation (automl protocol §2)."""
import gzip
import hashlib
import io
import tarfile

import numpy as np
import pytest
import torch

from nascore import data


def test_augment_keeps_range_and_shape():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 32, 32) * 0.5 + 0.5  # strictly positive, so zeros come from padding/cutout
    out = data.augment(x, g)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1


def test_crop_is_a_translation_of_the_zero_padded_image():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(32, 3, 32, 32) + 1.0
    out = data.augment(x, g, crop_padding=4, flip=False, cutout=0)
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    shifts = set()
    for i in range(len(x)):
        matches = [(dy, dx) for dy in range(9) for dx in range(9)
                   if torch.equal(out[i], padded[i, :, dy:dy + 32, dx:dx + 32])]
        assert len(matches) == 1
        shifts.add(matches[0])
    assert len(shifts) > 5  # offsets vary across the batch


def test_flip_mirrors_about_half_the_batch():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(400, 3, 32, 32)
    out = data.augment(x, g, crop_padding=0, flip=True, cutout=0)
    flipped = torch.tensor([torch.equal(o, xi.flip(2)) for o, xi in zip(out, x)])
    same = torch.tensor([torch.equal(o, xi) for o, xi in zip(out, x)])
    assert bool((flipped | same).all())
    assert 150 < int(flipped.sum()) < 250


def test_cutout_zeroes_one_clipped_square_of_at_most_16x16():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(200, 3, 32, 32) + 1.0
    out = data.augment(x, g, crop_padding=0, flip=False, cutout=16)
    holes = (out == 0).all(1)  # (N, H, W)
    for h in holes:
        rows, cols = h.any(1).nonzero().flatten(), h.any(0).nonzero().flatten()
        assert 1 <= len(rows) <= 16 and 1 <= len(cols) <= 16
        assert int(h.sum()) == len(rows) * len(cols)  # a rectangle
        assert rows.max() - rows.min() + 1 == len(rows)
    sizes = holes.flatten(1).sum(1)
    assert (sizes == 256).any() and (sizes < 256).any()  # full squares and border-clipped ones


def test_balanced_subset_is_balanced_and_seeded():
    y = torch.arange(1000) % 10
    a = data.balanced_subset(y, 7, seed=5)
    assert torch.equal(torch.bincount(y[a], minlength=10), torch.full((10,), 7))
    assert torch.equal(a, data.balanced_subset(y, 7, seed=5))
    assert not torch.equal(a, data.balanced_subset(y, 7, seed=6))
    with pytest.raises(ValueError, match="exceeds"):
        data.balanced_subset(y, 101, seed=0)


def test_device_loader_batches(synthetic_cifar):
    d = synthetic_cifar
    loader = data.DeviceLoader(d.train_x, d.train_y, 64, "cpu", train=True, seed=0)
    batches = list(loader)
    assert len(batches) == len(loader) == 4 and len(batches[-1][0]) == 200 - 3 * 64
    x, y = batches[0]
    assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert x.is_contiguous(memory_format=torch.channels_last)
    again = list(data.DeviceLoader(d.train_x, d.train_y, 64, "cpu", train=True, seed=0))
    assert torch.equal(batches[0][0], again[0][0])
    with pytest.raises(ValueError, match="uint8"):
        data.DeviceLoader(d.train_x.float(), d.train_y, 64, "cpu")


def _tiny_archive(path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("train/airplane/0000.jpg")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    path.write_bytes(gzip.compress(buf.getvalue()))


def test_checksum_mismatch_is_refused(tmp_path, monkeypatch):
    bad = tmp_path / "cifar10-jpeg.tar.gz"
    _tiny_archive(bad)
    monkeypatch.setenv("NASCORE_CIFAR10_ARCHIVE", str(bad))
    monkeypatch.setattr(data, "archive_candidates", lambda: [bad])
    with pytest.raises(data.ChecksumError, match="does not match"):
        data.load_cifar10(source="jpeg", root=tmp_path / "root")
    root = tmp_path / "root"
    assert not root.exists() or not any(root.rglob("*.npy"))  # nothing decoded or cached


def test_missing_data_says_how_to_provide_it(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "archive_candidates", lambda: [tmp_path / "nope.tar.gz"])
    with pytest.raises(data.DataUnavailableError, match="download=True"):
        data.load_cifar10(root=tmp_path)
    with pytest.raises(data.DataUnavailableError):
        data.load_cifar10(source="torchvision", root=tmp_path)
    with pytest.raises(ValueError, match="valid: auto"):
        data.load_cifar10(source="imagenet")


@pytest.mark.skipif(not any(p.is_file() for p in data.archive_candidates()), reason="offline archive not present")
def test_real_archive_loads_with_provenance():
    d = data.load_cifar10("jpeg")
    assert d.train_x.shape == (50000, 3, 32, 32) and d.test_x.shape == (10000, 3, 32, 32)
    assert d.train_x.dtype == torch.uint8
    assert torch.equal(torch.bincount(d.test_y), torch.full((10,), 1000))
    assert d.provenance["source"] == "jpeg" and d.provenance["archive_sha256"] == data.ARCHIVE_SHA256
    # the recorded arrays hash is the hash of these very arrays, recomputed independently here
    h = hashlib.sha256()
    for name, t in sorted({"test_x": d.test_x, "test_y": d.test_y, "train_x": d.train_x, "train_y": d.train_y}.items()):
        a = t.numpy()
        h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    assert d.provenance["arrays_sha256"] == h.hexdigest()
    assert d.provenance["decoder"]["pillow"]
    mean = d.train_x[:5000].float().mean((0, 2, 3)) / 255
    assert torch.allclose(mean, torch.tensor([0.4913, 0.4821, 0.4465]), atol=0.01)
    assert len(set(d.test_y[:20].tolist())) > 3  # not class-sorted


def test_tampered_decoded_cache_is_refused(tmp_path, monkeypatch):
    """A decoded cache whose arrays no longer match the hash recorded at decode time is refused."""
    arrays = {"train_x": np.zeros((50000, 3, 32, 32), np.uint8), "train_y": np.arange(50000) % 10,
              "test_x": np.ones((10000, 3, 32, 32), np.uint8), "test_y": np.arange(10000) % 10}
    archive = tmp_path / data.ARCHIVE_NAME
    archive.write_bytes(b"stand-in: never read, the cache is complete")
    monkeypatch.setattr(data, "archive_candidates", lambda: [archive])
    cache = tmp_path / f"cifar10-jpeg-{data.ARCHIVE_SHA256[:12]}-order{data.DECODE_ORDER_SEED}"
    data._write_array_cache(cache, arrays, {"archive_sha256": data.ARCHIVE_SHA256, "decoder": {}})
    d = data.load_cifar10("jpeg", root=tmp_path)
    assert d.provenance["arrays_sha256"] == data.arrays_sha256(arrays)
    tampered = arrays["test_x"].copy()
    tampered[0, 0, 0, 0] = 7
    np.save(cache / "test_x.npy", tampered)
    with pytest.raises(data.ChecksumError, match="modified or is damaged"):
        data.load_cifar10("jpeg", root=tmp_path)


def test_array_cache_round_trip_and_bad_shape_refused(tmp_path):
    arrays = {"train_x": np.zeros((50000, 3, 32, 32), np.uint8), "train_y": np.arange(50000) % 10,
              "test_x": np.ones((10000, 3, 32, 32), np.uint8), "test_y": np.arange(10000) % 10}
    cache = tmp_path / "c"
    data._write_array_cache(cache, arrays, {"archive_sha256": "x", "decoder": {}})
    back = data._read_array_cache(cache)
    assert all(np.array_equal(back[k], v) for k, v in arrays.items())
    np.save(cache / "test_x.npy", np.ones((10, 3, 32, 32), np.uint8))
    with pytest.raises(data.ChecksumError, match="expected"):
        data._read_array_cache(cache)


def test_augment_once_is_exact_uint8_and_seeded():
    x = torch.randint(1, 256, (64, 3, 32, 32), dtype=torch.uint8)
    a = data.augment_once(x, torch.Generator().manual_seed(5), cutout=0)
    b = data.augment_once(x, torch.Generator().manual_seed(5), cutout=0)
    assert a.dtype == torch.uint8 and torch.equal(a, b)
    ref = data.augment(x.float(), torch.Generator().manual_seed(5), cutout=0)
    assert torch.equal(a, ref.to(torch.uint8))  # same draw as the float pipeline, exact in uint8
    assert not torch.equal(a, x)


def test_frozen_samples_are_never_augmented():
    x = torch.randint(1, 256, (40, 3, 32, 32), dtype=torch.uint8)
    y = torch.arange(40)
    frozen = torch.zeros(40, dtype=torch.bool)
    frozen[::3] = True
    loader = data.DeviceLoader(x, y, 16, "cpu", train=True, seed=0, frozen=frozen)
    changed = torch.zeros(40, dtype=torch.bool)
    for _ in range(3):
        for xb, yb in loader:
            same = (xb * 255).round().to(torch.uint8).eq(x[yb]).flatten(1).all(1)
            assert bool(same[frozen[yb]].all())  # frozen: exactly as stored, every epoch
            changed[yb[~same]] = True
    assert bool(changed[~frozen].float().mean() > 0.5)  # the others are augmented
    with pytest.raises(ValueError, match="frozen must be a bool tensor"):
        data.DeviceLoader(x, y, 16, "cpu", frozen=torch.ones(5, dtype=torch.bool))
