"""Import torchvision on a CPU-only torch build.

``torchvision==0.28.0`` is the only release that matches ``torch==2.13.0``, and its wheel is
built against CUDA. With the CPU build of torch, ``import torchvision`` fails while registering
fake kernels for its C++ operators::

    RuntimeError: operator torchvision::nms does not exist

because the compiled ``torchvision._C`` extension that defines the operator schemas cannot load.
Defining the two schemas that the Python side looks up at import time (``torchvision::nms`` and
``torchvision::qnms``) with :mod:`torch.library` lets the import finish; models, transforms and
datasets are pure Python and work. The C++ kernels (nms, roi_align, decode_jpeg, ...) stay
unavailable, and nascore never calls them.

The fix is applied only when the plain import fails with exactly that error, so on a machine
with a matching torchvision build nothing is patched. Everything in nascore imports torchvision
through :func:`import_torchvision`.
"""
from __future__ import annotations

import sys
import types

import torch

_MISSING_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_library: torch.library.Library | None = None  # kept alive: dropping it unregisters the schemas
patched = False  # True once the workaround was needed and applied


def _schema_missing(name: str) -> bool:
    try:
        torch._C._dispatch_find_schema_or_throw(f"torchvision::{name}", "")
    except RuntimeError:
        return True
    return False


def _define_missing_schemas() -> None:
    global _library, patched
    if _library is None:
        _library = torch.library.Library("torchvision", "FRAGMENT")
    for name, schema in _MISSING_SCHEMAS.items():
        if _schema_missing(name):
            _library.define(schema)
    patched = True


def _forget_partial_import() -> None:
    for mod in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[mod]


def import_torchvision() -> types.ModuleType:
    """Return the ``torchvision`` module, defining the missing operator schemas if needed."""
    if "torchvision" in sys.modules and hasattr(sys.modules["torchvision"], "models"):
        return sys.modules["torchvision"]
    try:
        import torchvision
    except RuntimeError as err:
        if "torchvision::nms" not in str(err) and "torchvision::qnms" not in str(err):
            raise
        _forget_partial_import()
        _define_missing_schemas()
        import torchvision
    return torchvision
