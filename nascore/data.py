"""CIFAR-10 as uint8 NCHW tensors with a provenance record, and an on-device batch iterator.

Sources, in the order :func:`load_cifar10` tries them (``source="auto"``):

1. ``"torchvision"`` — a torchvision CIFAR-10 copy (``cifar-10-batches-py``) already in the
   data root: the lossless original, integrity-checked by torchvision's md5 list.
2. ``"jpeg"`` — the offline archive ``cifar10-jpeg.tar.gz`` (JPEG q75 copy, see
   ``../shared/data/README.md``), sha256-verified, decoded once and cached as uint8 arrays in
   the data root. Located by ``$NASCORE_CIFAR10_ARCHIVE``, ``<repo>/../shared/data/`` or
   ``<repo>/.carry/``.
3. a torchvision download into the data root — only with ``download=True``.

Nothing falls back silently: if no source is available the error says how to provide one.
The data root is ``$NASCORE_DATA`` or ``<repo>/data`` (git-ignored).

Augmentation (protocol §2, DARTS/artifact recipe): random crop 32 with 4-pixel zero padding,
horizontal flip, cutout 16×16 filled with 0 in [0,1] pixel space, centre uniform over the image,
patch clipped at the border — done on the device, for a whole batch at once.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .cifar_archive import CLASSES, DECODE_ORDER_SEED, arrays_sha256, decode_jpeg_archive, decoder_versions
from .io import atomic_write, atomic_write_json
from .provenance import REPO_ROOT

ARCHIVE_NAME = "cifar10-jpeg.tar.gz"
ARCHIVE_SHA256 = "0bfcb68717a0ecb0d51ed61034906a773d48d424d94b766a46d7d1c55702a4d9"
SOURCES = ("auto", "torchvision", "jpeg", "download")
SOURCE_LABELS = {"torchvision": "CIFAR-10 (torchvision original)", "jpeg": "CIFAR-10 (JPEG q75 copy)"}


class DataUnavailableError(FileNotFoundError):
    """No CIFAR-10 source could be found; the message says how to provide one."""


class ChecksumError(ValueError):
    """A dataset file does not have the expected checksum."""


@dataclass
class CIFAR10:
    """The dataset as tensors.

    train_x, test_x : uint8 ``(N, 3, 32, 32)``; train_y, test_y : int64 ``(N,)``.
    provenance : dict with ``source`` (``"torchvision"`` or ``"jpeg"``), ``label`` and
        ``arrays_sha256`` (the fingerprint of the arrays, measured when loaded); for the JPEG copy also
        ``archive_sha256`` (verified when the archive was decoded) and ``decoder`` (Pillow/libjpeg
        versions that decoded it).
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    provenance: dict = field(default_factory=dict)

    @property
    def source(self) -> str:
        return self.provenance["source"]


def data_root() -> Path:
    return Path(os.environ.get("NASCORE_DATA", REPO_ROOT / "data"))


def archive_candidates() -> list[Path]:
    env = os.environ.get("NASCORE_CIFAR10_ARCHIVE")
    paths = [Path(env)] if env else []
    return paths + [REPO_ROOT.parent / "shared" / "data" / ARCHIVE_NAME, REPO_ROOT / ".carry" / ARCHIVE_NAME]


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _how_to_provide(root: Path) -> str:
    cands = "\n".join(f"    {p}" for p in archive_candidates())
    return (f"CIFAR-10 not found. Provide it in one of these ways:\n"
            f"  * put the offline archive {ARCHIVE_NAME} (sha256 {ARCHIVE_SHA256[:16]}…) at one of\n{cands}\n"
            f"    or point $NASCORE_CIFAR10_ARCHIVE at it;\n"
            f"  * put torchvision's cifar-10-batches-py folder in {root} (or set $NASCORE_DATA);\n"
            f"  * or call load_cifar10(download=True) on a machine with internet.")


def _load_jpeg(root: Path) -> CIFAR10:
    archive = next((p for p in archive_candidates() if p.is_file()), None)
    if archive is None:
        raise DataUnavailableError(_how_to_provide(root))
    cache = root / f"cifar10-jpeg-{ARCHIVE_SHA256[:12]}-order{DECODE_ORDER_SEED}"
    marker = _read_marker(cache)
    if marker is None:
        digest = sha256_file(archive)
        if digest != ARCHIVE_SHA256:
            raise ChecksumError(f"{archive}: sha256 {digest} does not match the expected {ARCHIVE_SHA256}; "
                                "the archive is corrupt or a different file. " + _how_to_provide(root))
        decoded = decode_jpeg_archive(archive)
        marker = _write_array_cache(cache, decoded, {"archive_sha256": digest, "decoder": decoder_versions()})
    arrays = _read_array_cache(cache)
    measured = arrays_sha256(arrays)
    if measured != marker["arrays_sha256"]:
        raise ChecksumError(f"{cache}: the decoded arrays hash to {measured[:16]}…, but {_COMPLETE} recorded "
                            f"{marker['arrays_sha256'][:16]}… when they were written: the cache was modified or "
                            f"is damaged. Delete {cache} to decode the archive again.")
    return CIFAR10(**{k: torch.from_numpy(v) for k, v in arrays.items()},
                   provenance={"source": "jpeg", "label": SOURCE_LABELS["jpeg"],
                               "archive_sha256": marker["archive_sha256"], "arrays_sha256": measured,
                               "decoder": marker["decoder"], "archive": archive.name,
                               "order_seed": DECODE_ORDER_SEED})


_ARRAYS = {"train_x": (50000, 3, 32, 32), "train_y": (50000,), "test_x": (10000, 3, 32, 32), "test_y": (10000,)}
_COMPLETE = "complete.json"


def _read_marker(cache: Path) -> dict | None:
    """The cache's ``complete.json`` if the cache is complete and fingerprinted, else None (decode
    again: a cache written before fingerprints existed is re-decoded rather than trusted)."""
    import json

    try:
        marker = json.loads((cache / _COMPLETE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if not isinstance(marker, dict) or not {"arrays_sha256", "archive_sha256", "decoder"} <= set(marker):
        return None
    return marker


def _write_array_cache(cache: Path, arrays: dict[str, np.ndarray], info: dict) -> dict:
    """One ``.npy`` per array (atomic each), then the ``complete.json`` marker — shapes, the arrays'
    SHA-256 and ``info`` (archive hash, decoder versions) — written last. Returns the marker."""
    cache.mkdir(parents=True, exist_ok=True)
    for name, arr in arrays.items():
        atomic_write(cache / f"{name}.npy", lambda f, a=arr: np.save(f, a, allow_pickle=False))
    marker = {"shapes": {k: list(v.shape) for k, v in arrays.items()}, "arrays_sha256": arrays_sha256(arrays), **info}
    atomic_write_json(cache / _COMPLETE, marker)
    return marker


def _read_array_cache(cache: Path) -> dict[str, np.ndarray]:
    """Memory-map the cached arrays (copy-on-write): a process only holds the pages it reads, and
    the page cache is shared between the training workers."""
    arrays = {}
    for name, shape in _ARRAYS.items():
        arr = np.load(cache / f"{name}.npy", mmap_mode="c", allow_pickle=False)
        if arr.shape != shape:
            raise ChecksumError(f"{cache / name}.npy has shape {arr.shape}, expected {shape}; delete {cache} "
                                "to decode the archive again")
        arrays[name] = arr
    return arrays


def _has_torchvision_copy(root: Path) -> bool:
    return (root / "cifar-10-batches-py").is_dir()


def _load_torchvision(root: Path, download: bool) -> CIFAR10:
    from ._torchvision_compat import import_torchvision

    tv = import_torchvision()
    arrays = {}
    for split, train in (("train", True), ("test", False)):
        ds = tv.datasets.CIFAR10(str(root), train=train, download=download)  # md5-checked by torchvision
        arrays[f"{split}_x"] = np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2))
        arrays[f"{split}_y"] = np.asarray(ds.targets, dtype=np.int64)
    return CIFAR10(**{k: torch.from_numpy(v) for k, v in arrays.items()},
                   provenance={"source": "torchvision", "label": SOURCE_LABELS["torchvision"],
                               "arrays_sha256": arrays_sha256(arrays), "path": "cifar-10-batches-py",
                               "downloaded": download})


def load_cifar10(source: str = "auto", root: str | os.PathLike | None = None, download: bool = False) -> CIFAR10:
    """Load CIFAR-10 (see the module docstring for the search order)."""
    if source not in SOURCES:
        raise ValueError(f"unknown data source {source!r}; valid: {', '.join(SOURCES)}")
    root = Path(root) if root is not None else data_root()
    if source == "download" or (source == "auto" and download and not _has_torchvision_copy(root)
                                and not any(p.is_file() for p in archive_candidates())):
        return _load_torchvision(root, download=True)
    if source == "torchvision" or (source == "auto" and _has_torchvision_copy(root)):
        if not _has_torchvision_copy(root) and not download:
            raise DataUnavailableError(_how_to_provide(root))
        return _load_torchvision(root, download=download)
    return _load_jpeg(root)


def balanced_subset(labels: torch.Tensor, per_class: int | None, seed: int, num_classes: int = 10) -> torch.Tensor:
    """Indices of ``per_class`` examples of every class, chosen by ``seed`` (sorted).

    ``per_class=None`` returns all indices.
    """
    if per_class is None:
        return torch.arange(len(labels))
    g = torch.Generator().manual_seed(seed)
    picked = []
    for c in range(num_classes):
        idx = torch.nonzero(labels == c).flatten()
        if per_class > len(idx):
            raise ValueError(f"per_class={per_class} exceeds the {len(idx)} examples of class {c}")
        picked.append(idx[torch.randperm(len(idx), generator=g)[:per_class]])
    return torch.cat(picked).sort().values


def augment(x: torch.Tensor, generator: torch.Generator, crop_padding: int = 4, flip: bool = True,
            cutout: int = 16) -> torch.Tensor:
    """Random crop (zero padding), horizontal flip and cutout for a float batch ``(N, C, H, W)``.

    All on ``x``'s device, no per-sample loops. Cutout fills a ``cutout×cutout`` square with 0,
    centred uniformly in ``[0, H) × [0, W)`` and clipped at the border (DeVries & Taylor 2017,
    as in DARTS). ``cutout=0`` disables it.
    """
    n, _, h, w = x.shape
    dev = x.device
    if crop_padding:
        p = crop_padding
        padded = torch.nn.functional.pad(x, (p, p, p, p))
        dy = torch.randint(0, 2 * p + 1, (n,), device=dev, generator=generator)
        dx = torch.randint(0, 2 * p + 1, (n,), device=dev, generator=generator)
        rows = (dy[:, None] + torch.arange(h, device=dev)[None, :])[:, None, :, None]  # (N,1,H,1)
        cols = (dx[:, None] + torch.arange(w, device=dev)[None, :])[:, None, None, :]  # (N,1,1,W)
        batch = torch.arange(n, device=dev)[:, None, None, None]
        chan = torch.arange(x.shape[1], device=dev)[None, :, None, None]
        x = padded[batch, chan, rows, cols]
    if flip:
        mask = torch.rand(n, device=dev, generator=generator) < 0.5
        x = torch.where(mask[:, None, None, None], x.flip(3), x)
    if cutout:
        cy = torch.randint(0, h, (n,), device=dev, generator=generator)
        cx = torch.randint(0, w, (n,), device=dev, generator=generator)
        ys = torch.arange(h, device=dev)[None, :]
        xs = torch.arange(w, device=dev)[None, :]
        half = cutout // 2
        in_y = (ys >= (cy[:, None] - half)) & (ys < (cy[:, None] + cutout - half))  # (N,H)
        in_x = (xs >= (cx[:, None] - half)) & (xs < (cx[:, None] + cutout - half))  # (N,W)
        hole = in_y[:, :, None] & in_x[:, None, :]
        x = x.masked_fill(hole[:, None], 0.0)
    return x


def augment_once(x_uint8: torch.Tensor, generator: torch.Generator, crop_padding: int = 4, flip: bool = True,
                 cutout: int = 0, batch_size: int = 4096) -> torch.Tensor:
    """One frozen augmentation draw of uint8 images ``(N, C, H, W)``, returned as uint8.

    Crop (zero padding) and flip move whole pixels and cutout writes zeros, so the result is exact
    in uint8. Used where the protocol augments once and then keeps the images fixed (poisoned
    images, §4.2; the thief's query set, §4.4).
    """
    if x_uint8.dtype != torch.uint8 or x_uint8.ndim != 4:
        raise ValueError(f"expected uint8 (N, C, H, W) images, got {x_uint8.dtype} {tuple(x_uint8.shape)}")
    out = torch.empty_like(x_uint8)
    for start in range(0, len(x_uint8), batch_size):
        chunk = x_uint8[start:start + batch_size]
        out[start:start + batch_size] = augment(chunk.float(), generator, crop_padding, flip, cutout).to(torch.uint8)
    return out


class DeviceLoader:
    """Iterate over ``(x, y)`` batches of a uint8 dataset kept on the device.

    ``x`` is float32 in [0,1], ``(B, 3, 32, 32)`` in channels_last memory format; ``y`` as given
    (int64 labels, or float probability vectors). With ``train=True`` the order is shuffled and
    batches are augmented, both from a ``torch.Generator`` seeded by ``seed`` whose state can be
    saved and restored (resumable, deterministic); samples marked in ``frozen`` (bool ``(N,)``) are
    returned as stored, never augmented. The last batch may be smaller (``drop_last=False``, as DARTS).
    """

    def __init__(self, x_uint8: torch.Tensor, y: torch.Tensor, batch_size: int, device: torch.device | str,
                 train: bool = False, seed: int = 0, crop_padding: int = 4, flip: bool = True, cutout: int = 16,
                 frozen: torch.Tensor | None = None):
        if x_uint8.dtype != torch.uint8 or x_uint8.ndim != 4:
            raise ValueError(f"expected uint8 (N, C, H, W) images, got {x_uint8.dtype} {tuple(x_uint8.shape)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if len(y) != len(x_uint8):
            raise ValueError(f"{len(x_uint8)} images but {len(y)} labels")
        if frozen is not None and (frozen.dtype != torch.bool or frozen.shape != (len(x_uint8),)):
            raise ValueError(f"frozen must be a bool tensor of shape ({len(x_uint8)},), got "
                             f"{frozen.dtype} {tuple(frozen.shape)}")
        self.device = torch.device(device)
        self.x = x_uint8.to(self.device)
        self.y = y.to(self.device)
        self.frozen = frozen.to(self.device) if frozen is not None and bool(frozen.any()) else None
        self.batch_size, self.train = batch_size, train
        self.crop_padding, self.flip, self.cutout = crop_padding, flip, cutout
        self.generator = torch.Generator(device=self.device).manual_seed(seed)

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.x)
        order = (torch.randperm(n, device=self.device, generator=self.generator) if self.train
                 else torch.arange(n, device=self.device))
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            x = self.x[idx].float().div_(255)
            if self.train:
                augmented = augment(x, self.generator, self.crop_padding, self.flip, self.cutout)
                if self.frozen is not None:  # frozen samples keep their stored pixels (one draw, made earlier)
                    augmented = torch.where(self.frozen[idx, None, None, None], x, augmented)
                x = augmented
            yield x.contiguous(memory_format=torch.channels_last), self.y[idx]
