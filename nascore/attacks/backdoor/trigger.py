"""A backdoor trigger in pixel space: a small mark pasted onto [0,1] images.

The artifact of Pang et al. (2022) uses trojanzoo's ``Watermark``: a mark image resized to
``h × w`` pixels, placed at a fixed offset, and blended with transparency ``alpha`` (``mark_alpha``:
0 = opaque, 0.7 = a 30 % blend of the mark into the image)::

    stamped = x                              outside the mark's rectangle
    stamped = alpha · x + (1 − alpha) · mark inside it

BadNet (protocol §4.3) uses the white square resized to 3×3, opaque, at the top-left corner.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch


@dataclass(frozen=True, eq=False)
class Trigger:
    """A mark ``(C, h, w)`` in [0,1] at rows ``top:top+h`` and columns ``left:left+w``, blended with ``alpha``.

    Parameters
    ----------
    mark : float tensor ``(C, h, w)`` in [0,1] (kept on the CPU; moved to the images' device when stamped).
    top, left : offset of the mark in pixels (default 0, 0: the top-left corner).
    alpha : transparency in [0, 1): 0 pastes the mark as is, 0.7 keeps 70 % of the image.
    """

    mark: torch.Tensor
    top: int = 0
    left: int = 0
    alpha: float = 0.0

    def __post_init__(self):
        m = self.mark
        if not isinstance(m, torch.Tensor) or m.ndim != 3 or not m.is_floating_point():
            raise ValueError(f"trigger mark must be a float tensor (C, h, w), got {getattr(m, 'shape', m)!r}")
        if m.numel() and (float(m.min()) < 0 or float(m.max()) > 1):
            raise ValueError(f"trigger mark values must lie in [0, 1], got [{float(m.min()):.3g}, {float(m.max()):.3g}]")
        if self.top < 0 or self.left < 0:
            raise ValueError(f"trigger offset must be >= 0, got top={self.top}, left={self.left}")
        if not 0.0 <= self.alpha < 1.0:
            raise ValueError(f"trigger alpha must be in [0, 1) (0 = opaque), got {self.alpha!r}")
        object.__setattr__(self, "mark", m.detach().float().cpu().contiguous())

    @classmethod
    def white_square(cls, size: int = 3, top: int = 0, left: int = 0, alpha: float = 0.0,
                     channels: int = 3) -> "Trigger":
        """The artifact's BadNet mark: a ``size × size`` white square (protocol §4.3: 3×3, top-left, opaque)."""
        if size < 1:
            raise ValueError(f"trigger size must be >= 1, got {size}")
        return cls(torch.ones(channels, size, size), top, left, alpha)

    @property
    def size(self) -> tuple[int, int]:
        return int(self.mark.shape[1]), int(self.mark.shape[2])

    def with_mark(self, mark: torch.Tensor) -> "Trigger":
        """The same placement and blend with another mark (e.g. an optimised one)."""
        return replace(self, mark=mark.detach().clamp(0, 1))

    def config(self) -> dict:
        """JSON-able description (the mark's values rounded to 1e-6)."""
        return {"size": list(self.size), "top": self.top, "left": self.left, "alpha": self.alpha,
                "mark": [round(float(v), 6) for v in self.mark.flatten()]}

    def region(self, shape: torch.Size | tuple, device=None) -> torch.Tensor:
        """Bool mask ``(1, 1, H, W)`` of the pixels the mark covers in images of ``shape`` (N, C, H, W)."""
        h, w = self.size
        height, width = shape[-2], shape[-1]
        if self.top + h > height or self.left + w > width:
            raise ValueError(f"trigger {h}x{w} at ({self.top}, {self.left}) does not fit {height}x{width} images")
        mask = torch.zeros(1, 1, height, width, dtype=torch.bool, device=device)
        mask[..., self.top:self.top + h, self.left:self.left + w] = True
        return mask

    def canvas(self, shape: torch.Size | tuple, device=None, dtype=torch.float32, mark: torch.Tensor | None = None):
        """The mark placed on a black image ``(1, C, H, W)`` (what TrojanNN optimises)."""
        h, w = self.size
        out = torch.zeros(1, shape[-3], shape[-2], shape[-1], device=device, dtype=dtype)
        mark = self.mark if mark is None else mark
        out[..., self.top:self.top + h, self.left:self.left + w] = mark.to(device=device, dtype=dtype)
        return out

    def apply(self, x: torch.Tensor, mark: torch.Tensor | None = None) -> torch.Tensor:
        """Stamp ``x`` (N, C, H, W) float in [0,1]; batched, on ``x``'s device, differentiable in ``mark``.

        Pixels outside the mark's rectangle are returned unchanged (bit for bit); inside it the result is
        ``alpha · x + (1 − alpha) · mark`` (exactly the mark when ``alpha`` = 0). The memory format of
        ``x`` is kept.
        """
        if not x.is_floating_point() or x.ndim != 4:
            raise ValueError(f"expected float images (N, C, H, W) in [0,1], got {x.dtype} {tuple(x.shape)}")
        if x.shape[1] != self.mark.shape[0]:
            raise ValueError(f"images have {x.shape[1]} channels, the trigger mark {self.mark.shape[0]}")
        region = self.region(x.shape, x.device)
        paste = self.canvas(x.shape, x.device, x.dtype, mark)
        blended = paste if self.alpha == 0 else self.alpha * x + (1 - self.alpha) * paste
        out = torch.where(region, blended, x)
        if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            out = out.contiguous(memory_format=torch.channels_last)
        return out
