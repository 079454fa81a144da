"""Does the JPEG decoder decide the pixels? Decode the offline CIFAR-10 archive with whatever
Pillow/libjpeg-turbo this interpreter has and print the arrays' fingerprint.

Standalone on purpose (Pillow + numpy only, no torch), so it can run in scratch environments with
other Pillow versions; it loads ``nascore/cifar_archive.py`` by its path (numpy + Pillow only) and runs
the package's own ``decode_jpeg_archive`` and ``arrays_sha256``. Compare the printed hashes across environments:

    python benchmarks/decode_fingerprint.py ../shared/data/cifar10-jpeg.tar.gz
"""
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np


def _archive_module():
    """``nascore/cifar_archive.py`` loaded by its path: the package's own decoder and fingerprint,
    without importing ``nascore`` (and torch)."""
    path = Path(__file__).resolve().parents[1] / "nascore" / "cifar_archive.py"
    spec = importlib.util.spec_from_file_location("cifar_archive", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    archive = _archive_module()
    arrays = archive.decode_jpeg_archive(Path(sys.argv[1]))
    out = {**archive.decoder_versions(), "arrays_sha256": archive.arrays_sha256(arrays)}
    if len(sys.argv) > 2:  # optional: compare pixels with a reference .npy of train_x
        ref = np.load(sys.argv[2])
        diff = np.abs(ref.astype(int) - arrays["train_x"].astype(int))
        out.update(pixels_differing=float((diff > 0).mean()), max_abs_diff=int(diff.max()))
    print(json.dumps(out))
