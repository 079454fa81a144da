"""Small helpers shared by the attack modules: input conversion, parameter validation, and the
plumbing of model outputs that are a tensor or a list of tensors (one per exit)."""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


def as_images(x: torch.Tensor) -> torch.Tensor:
    """``uint8`` [0,255] → float32 [0,1]; floating inputs are returned unchanged (must be in [0,1])."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype == torch.uint8:
        return x.float().div_(255.0)
    if not x.is_floating_point():
        raise TypeError(f"x must be uint8 or floating point, got {x.dtype}")
    return x


def model_device(model: nn.Module, fallback: torch.device) -> torch.device:
    """The device of the model's first parameter (``fallback`` for a parameter-free model)."""
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else fallback


def cat_outputs(outs: list[Any]) -> Any:
    """Concatenate chunked model outputs (a tensor, or a list/tuple of tensors per exit)."""
    if len(outs) == 1:
        return outs[0]
    if isinstance(outs[0], torch.Tensor):
        return torch.cat(outs)
    return type(outs[0])(torch.cat(parts) for parts in zip(*outs))


def detach_outputs(out: Any) -> Any:
    if isinstance(out, torch.Tensor):
        return out.detach()
    return type(out)(o.detach() for o in out)


def take(v: torch.Tensor | None, idx: torch.Tensor) -> torch.Tensor | None:
    """``v[idx]``, or ``None`` when ``v`` is ``None``."""
    return None if v is None else v[idx]


def check_real(name: str, value: Any, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'}, got {value!r}")
    return float(value)


def check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value
