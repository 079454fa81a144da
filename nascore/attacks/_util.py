"""Small helpers shared by the attack modules: input conversion, parameter validation, random
streams, and the plumbing of model outputs that are a tensor or a list of tensors (one per exit).

Every attack validates its parameters with :func:`check_real`, :func:`check_int`,
:func:`check_choice` and :func:`check_fraction`, and draws its randomness from
:func:`seeded_generator` (one stream per call) or :func:`sample_generator` (one stream per sample,
for attacks whose per-sample result must not depend on the batch).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
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


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """``value`` if it is one of ``choices``, else a ValueError naming the valid ones."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_fraction(name: str, value: Any, *, closed: bool = False) -> float:
    """A number in the open interval (0, 1), or (0, 1] with ``closed=True``."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and (
        0.0 < value <= 1.0 if closed else 0.0 < value < 1.0)
    if not ok:
        raise ValueError(f"{name} must be in (0, 1{']' if closed else ')'}, got {value!r}")
    return float(value)


def check_seed(seed: Any) -> int | None:
    """A seed: ``None`` (the global RNG) or an int >= 0."""
    return None if seed is None else check_int("seed", seed, 0)


def seeded_generator(seed: int | None, device: torch.device | str,
                     generator: torch.Generator | None = None) -> torch.Generator | None:
    """The random stream of one attack call: ``generator`` if given, else a ``torch.Generator`` on
    ``device`` seeded with ``seed``, else ``None`` (the global RNG)."""
    if generator is None and seed is not None:
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
    return generator


def sample_generator(seed: int, sample_id: int, device: torch.device | str) -> torch.Generator:
    """The random stream of sample ``sample_id``: seeded by ``SeedSequence([seed, sample_id])``, so
    a sample draws the same numbers whatever other samples share its batch."""
    state = np.random.SeedSequence([seed, sample_id]).generate_state(1, np.uint64)[0]
    return torch.Generator(device=device).manual_seed(int(state >> np.uint64(1)))
