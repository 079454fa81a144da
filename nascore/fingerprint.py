"""Fingerprints of the code that decides a trained model's weights, and key normalisation.

The model cache (``nascore.zoo``) must retrain when the computation changes and only then
(issue "quick v2": *changing a default must retrain, never load stale weights*). The fingerprint of
a model is the SHA-256 over the **abstract syntax trees, docstrings removed**, of

* every ``nascore`` module that defines a class used in the model (its ops, cells, blocks: a
  changed op, default or initialisation changes the tree; a reworded docstring or comment does not);
* the training loop and the on-device augmentation (``nascore.train``, ``nascore.data``).

Classes from other packages (``torch.nn``, ``torchvision``) are covered by the package versions in
the record's provenance, not by the key. Moving a class to another module changes the fingerprint:
conservative (a retrain), never stale.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import inspect
import math
import textwrap
from typing import Any

from torch import nn

#: Code that decides the weights of every trained model: the training loop (whole module) and the
#: on-device data pipeline (the objects only — the loading code does not change pixels it verifies).
TRAINING_CODE = ("nascore.train", "nascore.models.predict", "nascore.data:augment", "nascore.data:augment_once", "nascore.data:DeviceLoader")


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


@functools.lru_cache(maxsize=None)
def module_fingerprint(name: str) -> str:
    """SHA-256 of the AST without docstrings (comments and formatting do not count) of a module
    ``"pkg.mod"`` or of one object in it, ``"pkg.mod:qualname"``."""
    module_name, _, qualname = name.partition(":")
    obj = importlib.import_module(module_name)
    for part in filter(None, qualname.split(".")):
        obj = getattr(obj, part)
    source = inspect.getsource(obj)
    tree = _strip_docstrings(ast.parse(textwrap.dedent(source)))
    return hashlib.sha256(ast.dump(tree, annotate_fields=False).encode()).hexdigest()


def model_modules(model: nn.Module) -> list[str]:
    """The ``nascore`` modules defining the classes used in ``model`` (sorted)."""
    mods = set()
    for m in model.modules():
        for cls in type(m).__mro__:
            if cls.__module__.startswith("nascore."):
                mods.add(cls.__module__)
    return sorted(mods)


def code_fingerprint(model: nn.Module, extra: tuple[str, ...] = ()) -> str:
    """16-hex fingerprint of the model's own code plus the training loop and augmentation, plus
    ``extra`` modules/objects (e.g. the module of a training-time attack that shapes the data)."""
    mods = sorted(set(model_modules(model)) | set(TRAINING_CODE) | set(extra))
    h = hashlib.sha256()
    for name in mods:
        h.update(f"{name}:{module_fingerprint(name)};".encode())
    return h.hexdigest()[:16]


def normalise(obj: Any) -> Any:
    """A JSON-stable form of a config: numbers as floats (``1`` and ``1.0`` are one key, bools stay
    bools), tuples as lists, mappings with string keys, recursively."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, (int, float)):
        f = float(obj)
        return f if math.isfinite(f) else str(f)
    if isinstance(obj, dict) or hasattr(obj, "items"):
        return {str(k): normalise(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [normalise(v) for v in obj]
    return str(obj)
