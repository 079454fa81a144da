"""The DARTS evaluation network that hosts every NAS cell (protocol §1.4).

Liu et al., "DARTS: Differentiable Architecture Search", ICLR 2019 (quark0/darts
``model.py``/``operations.py``), as modified by the artifact of Pang et al., "On the Security
Risks of AutoML" (USENIX Security 2022, ``ain-soph/autovul``):

* stem: 3×3 conv (3 → 3C) + BN; ``layers`` cells, reductions at ``layers//3`` and
  ``2*layers//3`` (cells 6 and 13 for 20 cells), each doubling the width (36 → 72 → 144);
* cell inputs preprocessed by ReLU-conv1×1-BN, or FactorizedReduce after a reduction;
* **every non-identity op ends in ``nn.Dropout(p=0.2)``** (pools and strided skips included),
  the artifact's deviation from DARTS; drop-path and the auxiliary head exist but are off by
  default, as in every artifact script;
* head: global average pool + one Linear.

Input ``(N, 3, H, W)`` in [0,1] → logits ``(N, classes)``. The blocks are the cells, so
:meth:`DartsNetwork.forward_with_taps` yields every cell output (for multi-exit variants).
"""
from __future__ import annotations

import torch
from torch import nn

from .base import BlockNet, Normalize
from .genotypes import Genotype


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int):
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False),
                         nn.BatchNorm2d(c_out))


class DilConv(nn.Sequential):
    """ReLU → depthwise k×k (dilated) → pointwise 1×1 → BN."""

    def __init__(self, c_in, c_out, kernel, stride, padding, dilation):
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(c_in, c_in, kernel, stride, padding, dilation, groups=c_in, bias=False),
                         nn.Conv2d(c_in, c_out, 1, bias=False),
                         nn.BatchNorm2d(c_out))


class SepConv(nn.Sequential):
    """Two stacked DilConv(dilation 1) blocks; only the first carries the stride."""

    def __init__(self, c_in, c_out, kernel, stride, padding):
        super().__init__(DilConv(c_in, c_in, kernel, stride, padding, 1),
                         DilConv(c_in, c_out, kernel, 1, padding, 1))


class FactorizedReduce(nn.Module):
    """ReLU → two offset stride-2 1×1 convs (each ``c_out/2`` channels) → concat → BN."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce needs an even c_out, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x):
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


def make_op(name: str, c: int, stride: int) -> nn.Module:
    """One DARTS operation on ``c`` channels (``stride`` 1 or 2)."""
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride=stride, padding=1)
    if name.startswith("sep_conv_"):
        k = int(name[-1])
        return SepConv(c, c, k, stride, k // 2)
    if name.startswith("dil_conv_"):
        k = int(name[-1])
        return DilConv(c, c, k, stride, k - 1, 2)
    if name == "conv_7x1_1x7":
        return nn.Sequential(nn.ReLU(inplace=False),
                             nn.Conv2d(c, c, (1, 7), stride=(1, stride), padding=(0, 3), bias=False),
                             nn.Conv2d(c, c, (7, 1), stride=(stride, 1), padding=(3, 0), bias=False),
                             nn.BatchNorm2d(c))
    raise ValueError(f"unknown operation {name!r}")


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples with probability ``drop_prob`` and rescale (DARTS drop-path)."""
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x * mask / keep


class Cell(nn.Module):
    """One DARTS cell: ``(s0, s1) → concat of the genotype's output nodes``."""

    def __init__(self, genotype: Genotype, c_prev_prev: int, c_prev: int, c: int,
                 reduction: bool, reduction_prev: bool, dropout: float):
        super().__init__()
        self.preprocess0 = (FactorizedReduce(c_prev_prev, c) if reduction_prev
                            else ReLUConvBN(c_prev_prev, c, 1, 1, 0))
        self.preprocess1 = ReLUConvBN(c_prev, c, 1, 1, 0)
        pairs, concat = ((genotype.reduce, genotype.reduce_concat) if reduction
                         else (genotype.normal, genotype.normal_concat))
        self.reduction = reduction
        self.indices = [i for _, i in pairs]
        self.concat = list(concat)
        self.multiplier = len(concat)
        ops = []
        for name, index in pairs:
            stride = 2 if reduction and index < 2 else 1
            op = make_op(name, c, stride)
            if not isinstance(op, nn.Identity) and dropout > 0:
                op = nn.Sequential(op, nn.Dropout(dropout))
            ops.append(op)
        self.ops = nn.ModuleList(ops)
        self.drop_path_prob = 0.0

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for k in range(len(self.ops) // 2):
            hs = []
            for j in (2 * k, 2 * k + 1):
                h = self.ops[j](states[self.indices[j]])
                if self.training and self.drop_path_prob > 0 and not isinstance(self.ops[j], nn.Identity):
                    h = drop_path(h, self.drop_path_prob)
                hs.append(h)
            states.append(hs[0] + hs[1])
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHead(nn.Module):
    """DARTS auxiliary classifier for 8×8 inputs (optional; weight 0.4 in DARTS)."""

    def __init__(self, c: int, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=True), nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),
            nn.Conv2d(c, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False), nn.BatchNorm2d(768), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class DartsNetwork(BlockNet):
    """DARTS evaluation network (``NetworkCIFAR``) for one genotype.

    Parameters
    ----------
    genotype : Genotype
    C : int
        Initial channels (36 in the artifact). The stem has ``3*C``.
    layers : int
        Number of cells (20 in the artifact).
    reductions : tuple[int, ...] or None
        0-based indices of the reduction cells; default ``(layers//3, 2*layers//3)``.
    dropout : float
        Dropout after every non-identity op (0.2 in the artifact).
    drop_path_prob : float
        DARTS drop-path probability (0 in the artifact).
    auxiliary : bool
        Build the auxiliary head after the last reduction cell. ``forward`` still returns only
        the main logits; during training the auxiliary logits are left in ``self.aux_logits``
        for the trainer (DARTS weight 0.4).
    """

    def __init__(self, genotype: Genotype, num_classes: int = 10, C: int = 36, layers: int = 20,
                 reductions: tuple[int, ...] | None = None, dropout: float = 0.2,
                 drop_path_prob: float = 0.0, auxiliary: bool = False):
        super().__init__()
        if reductions is None:
            reductions = (layers // 3, 2 * layers // 3)
        reductions = tuple(int(r) for r in reductions)
        bad = [r for r in reductions if not 0 <= r < layers]
        if bad:
            raise ValueError(f"reduction cell indices {bad} outside 0..{layers - 1}")
        self.genotype = genotype
        self.reductions = reductions
        self.normalize = Normalize()
        stem_c = 3 * C
        self.stem = nn.Sequential(nn.Conv2d(3, stem_c, 3, padding=1, bias=False), nn.BatchNorm2d(stem_c))
        c_pp, c_p, c = stem_c, stem_c, C
        cells, reduction_prev = [], False
        self.aux_index = max(reductions) if reductions else None
        c_aux = None
        for i in range(layers):
            reduction = i in reductions
            if reduction:
                c *= 2
            cell = Cell(genotype, c_pp, c_p, c, reduction, reduction_prev, dropout)
            cells.append(cell)
            reduction_prev = reduction
            c_pp, c_p = c_p, cell.multiplier * c
            if i == self.aux_index:
                c_aux = c_p
        self.blocks = nn.ModuleList(cells)
        self.auxiliary = AuxiliaryHead(c_aux, num_classes) if auxiliary and c_aux else None
        self.aux_logits: torch.Tensor | None = None
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_p, num_classes))
        self.drop_path_prob = drop_path_prob

    @property
    def drop_path_prob(self) -> float:
        return self._drop_path_prob

    @drop_path_prob.setter
    def drop_path_prob(self, p: float) -> None:
        """DARTS raises drop-path linearly over training; the trainer may set it per epoch."""
        self._drop_path_prob = float(p)
        for cell in self.blocks:
            cell.drop_path_prob = float(p)

    def features(self, x: torch.Tensor, taps: list[torch.Tensor] | None = None) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        self.aux_logits = None
        for i, cell in enumerate(self.blocks):
            s0, s1 = s1, cell(s0, s1)
            if taps is not None:
                taps.append(s1)
            if i == self.aux_index and self.auxiliary is not None and self.training:
                self.aux_logits = self.auxiliary(s1)
        return s1
