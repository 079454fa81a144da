"""Does the JPEG decoder decide the pixels? Decode the offline CIFAR-10 archive with whatever
Pillow/libjpeg-turbo this interpreter has and print the arrays' fingerprint.

Standalone on purpose (Pillow + numpy only, no torch), so it can run in scratch environments with
other Pillow versions; it reproduces ``nascore.data.decode_jpeg_archive`` (same order, same RGB
conversion) and ``nascore.data.arrays_sha256``. Compare the printed hashes across environments:

    python benchmarks/decode_fingerprint.py ../shared/data/cifar10-jpeg.tar.gz
"""
import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path

import numpy as np
import PIL
from PIL import Image, features

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def decode(archive):
    images = {"train": [], "test": []}
    labels = {"train": [], "test": []}
    with tarfile.open(archive, "r:gz") as tar:
        members = sorted((m for m in tar if m.isfile() and m.name.endswith(".jpg")), key=lambda m: m.name)
        for m in members:
            split, cls, _ = Path(m.name).parts[-3:]
            with Image.open(io.BytesIO(tar.extractfile(m).read())) as im:
                images[split].append(np.asarray(im.convert("RGB"), dtype=np.uint8))
            labels[split].append(CLASSES.index(cls))
    rng = np.random.default_rng(10)
    out = {}
    for split in ("train", "test"):
        order = rng.permutation(len(labels[split]))
        out[f"{split}_x"] = np.ascontiguousarray(np.stack(images[split])[order].transpose(0, 3, 1, 2))
        out[f"{split}_y"] = np.asarray(labels[split], dtype=np.int64)[order]
    return out


def fingerprint(arrays):
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


if __name__ == "__main__":
    arrays = decode(sys.argv[1])
    out = {"pillow": PIL.__version__, "libjpeg_turbo": features.version("libjpeg_turbo"),
           "arrays_sha256": fingerprint(arrays)}
    if len(sys.argv) > 2:  # optional: compare pixels with a reference .npy of train_x
        ref = np.load(sys.argv[2])
        diff = np.abs(ref.astype(int) - arrays["train_x"].astype(int))
        out.update(pixels_differing=float((diff > 0).mean()), max_abs_diff=int(diff.max()))
    print(json.dumps(out))
