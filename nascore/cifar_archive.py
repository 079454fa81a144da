"""Decode the offline CIFAR-10 JPEG archive and fingerprint the arrays — numpy and Pillow only.

No torch and no other ``nascore`` module is imported here, so
``benchmarks/decode_fingerprint.py`` can load this file by its path in a scratch environment with
another Pillow / libjpeg-turbo and print the fingerprint the package itself would record
(:mod:`nascore.data` uses these functions for its ``"jpeg"`` source).
"""
from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
DECODE_ORDER_SEED = 10


def decode_jpeg_archive(archive: Path) -> dict[str, np.ndarray]:
    """Decode the JPEG archive (layout ``{train,test}/<class>/NNNN.jpg``) into uint8 arrays.

    The archive lists images class by class; each split is put in a fixed pseudo-random order
    (seed :data:`DECODE_ORDER_SEED`) so that a prefix of it is not a single class, like the
    original CIFAR-10 files.
    """
    from PIL import Image

    images: dict[str, list] = {"train": [], "test": []}
    labels: dict[str, list] = {"train": [], "test": []}
    class_index = {c: i for i, c in enumerate(CLASSES)}
    with tarfile.open(archive, "r:gz") as tar:
        members = sorted((m for m in tar if m.isfile() and m.name.endswith(".jpg")), key=lambda m: m.name)
        for m in members:
            split, cls, _ = Path(m.name).parts[-3:]
            if split not in images or cls not in class_index:
                raise ValueError(f"unexpected member {m.name!r} in {archive}")
            with Image.open(io.BytesIO(tar.extractfile(m).read())) as im:
                images[split].append(np.asarray(im.convert("RGB"), dtype=np.uint8))
            labels[split].append(class_index[cls])
    out = {}
    rng = np.random.default_rng(DECODE_ORDER_SEED)
    for split in ("train", "test"):
        order = rng.permutation(len(labels[split]))  # class folders are sorted; mix them once, fixed
        out[f"{split}_x"] = np.ascontiguousarray(np.stack(images[split])[order].transpose(0, 3, 1, 2))
        out[f"{split}_y"] = np.asarray(labels[split], dtype=np.int64)[order]
    if out["train_x"].shape != (50000, 3, 32, 32) or out["test_x"].shape != (10000, 3, 32, 32):
        raise ValueError(f"{archive}: decoded shapes {out['train_x'].shape}/{out['test_x'].shape}, "
                         "expected (50000,3,32,32)/(10000,3,32,32)")
    return out


def decoder_versions() -> dict:
    """Versions of what turns the JPEG files into pixels (decoding can differ between them)."""
    import PIL
    from PIL import features

    return {"pillow": PIL.__version__, "libjpeg_turbo": features.version("libjpeg_turbo"),
            "jpg": features.version("jpg")}


def arrays_sha256(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over the names, shapes, dtypes and bytes of the dataset arrays (sorted by name):
    the fingerprint of the pixels and labels actually used, whatever their source."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()
