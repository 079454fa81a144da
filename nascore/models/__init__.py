"""Model registry: ``names()``, ``family()``, ``build()``.

Every model maps [0,1] images ``(N, 3, 32, 32)`` to logits ``(N, num_classes)``, normalisation
inside, and is a :class:`~nascore.models.base.BlockNet` (so its block outputs can feed the
internal classifiers of a multi-exit network).

Families (Pang et al., USENIX Security 2022, protocol §1):

* ``"nas"`` — the ten searched cells in the DARTS evaluation network (plus ``darts_v1``);
  scale knobs ``C``, ``layers``, ``reductions``, ``dropout``, ``drop_path_prob``, ``auxiliary``.
* ``"mitigation"`` — DARTS-i/ii/iii (deeper cells, no skips), same network and knobs.
* ``"manual"`` — seven CIFAR-adapted hand-designed CNNs; scale knob ``width``.
* ``"sdn"`` — the three DeepSloth backbones (VGG-16-BN, ResNet-56, MobileNet v1) that
  :mod:`nascore.multiexit` turns into multi-exit networks; scale knob ``width``
  (:mod:`.sdn_backbones`; no input normalisation, as in DeepSloth).
"""
from __future__ import annotations

import inspect
from types import MappingProxyType
from typing import Callable, Mapping

from torch import nn

from .._cpu_workarounds import avoid_strided_pointwise_conv
from .base import BlockNet
from .darts import DartsNetwork
from . import genotypes as _genotypes
from .genotypes import EXTRA_NAS_ARCHS, GENOTYPES, MITIGATION_ARCHS, NAS_ARCHS, CellStats, Genotype
from .sdn_backbones import SDN_BACKBONES

FAMILIES = ("nas", "manual", "mitigation", "sdn")
#: The ten NAS cells of the paper's study (protocol §1.2).
STUDY_NAS = NAS_ARCHS


def _manual_builders() -> dict[str, Callable[..., BlockNet]]:
    from .manual import MANUAL_BUILDERS  # imports torchvision: only when a manual model is used
    if tuple(MANUAL_BUILDERS) != MANUAL_NAMES:
        raise ImportError(f"nascore.models.manual builds {tuple(MANUAL_BUILDERS)} but the registry lists "
                          f"MANUAL_NAMES = {MANUAL_NAMES}; keep the two in the same order")
    return MANUAL_BUILDERS


#: The registry's manual names, importable without torchvision; ``nascore.models.manual.MANUAL_BUILDERS``
#: (named by each builder's function name) must list the same names in this order.
MANUAL_NAMES = ("resnet18", "resnext50_32x4d", "wide_resnet50_2", "densenet121", "dla34",
                "vgg13_bn", "bit_r50x1")
SDN_NAMES = ("vgg16_bn", "resnet56", "mobilenet_v1")
#: Size-matched variants (issue "valid verdicts": common support of the size adjustment). A
#: registered architecture under a second name, meant to be trained at another width (the profile's
#: ``model_scale`` sets it) so that its parameter count falls inside the other family's range: at
#: ``quick`` the NAS cells have 32k–70k parameters and the manual networks 119k–1.05M, so without
#: them a size-adjusted NAS − manual difference is pure extrapolation. Same builder and family as the
#: base. A variant is never a unit of a raw family comparison (one unit per architecture); it gives
#: the size-adjusted estimate models of both families at the same size.
SIZE_VARIANTS: Mapping[str, str] = MappingProxyType({
    "resnet18_narrow": "resnet18", "vgg13_bn_narrow": "vgg13_bn", "dla34_narrow": "dla34",
    "densenet121_narrow": "densenet121", "darts_wide": "darts", "enas_wide": "enas"})

_FAMILY: dict[str, str] = {
    **{n: "nas" for n in NAS_ARCHS + EXTRA_NAS_ARCHS},
    **{n: "mitigation" for n in MITIGATION_ARCHS},
    **{n: "manual" for n in MANUAL_NAMES},
    **{n: "sdn" for n in SDN_NAMES},
}
_FAMILY.update({n: _FAMILY[base] for n, base in SIZE_VARIANTS.items()})


def _check_family(family: str | None) -> None:
    if family is not None and family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; valid: {', '.join(FAMILIES)}")


def names(family: str | None = None) -> list[str]:
    """Registered model names, optionally of one family.

    The ``"nas"`` family includes ``darts_v1`` (protocol §1.3), which the paper's study does not
    use; :data:`STUDY_NAS` lists the ten cells it does. The size-matched variants
    (:data:`SIZE_VARIANTS`) come last, under their base's family.
    """
    _check_family(family)
    return [n for n, f in _FAMILY.items() if family is None or f == family]


def family(name: str) -> str:
    """``"nas"``, ``"manual"``, ``"mitigation"`` or ``"sdn"``."""
    _check_name(name)
    return _FAMILY[name]


def base_architecture(name: str) -> str:
    """The architecture ``name`` builds: itself, or for a size-matched variant (:data:`SIZE_VARIANTS`)
    the registered architecture it is a narrower copy of."""
    _check_name(name)
    return SIZE_VARIANTS.get(name, name)


def is_size_variant(name: str) -> bool:
    """True for a size-matched variant (:data:`SIZE_VARIANTS`): a second width of an architecture,
    used for the common support of size adjustments, never as a unit of a raw family comparison."""
    _check_name(name)
    return name in SIZE_VARIANTS


def genotype(name: str) -> Genotype:
    """The cell genotype ``name`` builds (a size-matched variant's is its base cell's)."""
    return _genotypes.genotype(SIZE_VARIANTS.get(name, name))


def cell_stats(arch: "str | Genotype", cell: str = "normal") -> CellStats:
    """:func:`nascore.models.genotypes.cell_stats` of a registered name (a size-matched variant
    has its base cell's statistics) or a :class:`Genotype`."""
    return _genotypes.cell_stats(SIZE_VARIANTS.get(arch, arch) if isinstance(arch, str) else arch, cell)


def _check_name(name: str) -> None:
    if name not in _FAMILY:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(names())}")


def _builder(name: str) -> Callable[..., nn.Module]:
    if _FAMILY[name] == "manual":
        return _manual_builders()[SIZE_VARIANTS.get(name, name)]
    if _FAMILY[name] == "sdn":
        return SDN_BACKBONES[name]
    cell = genotype(name)
    return lambda num_classes=10, **scale: DartsNetwork(cell, num_classes=num_classes, **scale)


def scale_knobs(name: str) -> tuple[str, ...]:
    """The scale keyword arguments :func:`build` accepts for ``name``."""
    _check_name(name)
    fn = DartsNetwork.__init__ if _FAMILY[name] not in ("manual", "sdn") else _builder(name)
    return tuple(p for p in inspect.signature(fn).parameters if p not in ("self", "genotype", "num_classes"))


def build_arguments(name: str, **scale) -> dict:
    """The complete build arguments of ``name`` with ``scale``: every knob with its default filled
    in (so a changed default is visible), and for cells the genotype as data. Unknown knobs raise."""
    _check_name(name)
    valid = scale_knobs(name)
    bad = sorted(set(scale) - set(valid))
    if bad:
        raise ValueError(f"unknown scale knob(s) {bad} for {name!r} ({family(name)}); valid: {', '.join(valid)}")
    fn = DartsNetwork.__init__ if _FAMILY[name] not in ("manual", "sdn") else _builder(name)
    args = {p.name: p.default for p in inspect.signature(fn).parameters.values()
            if p.name in valid and p.default is not inspect.Parameter.empty}
    args.update(scale)
    if _FAMILY[name] not in ("manual", "sdn"):
        g = genotype(name)
        args["genotype"] = {"normal": [list(e) for e in g.normal], "normal_concat": list(g.normal_concat),
                            "reduce": [list(e) for e in g.reduce], "reduce_concat": list(g.reduce_concat)}
    return args


def build(name: str, num_classes: int = 10, **scale) -> BlockNet:
    """Build a freshly initialised model. Unknown names or knobs raise ``ValueError``."""
    _check_name(name)
    valid = scale_knobs(name)
    bad = sorted(set(scale) - set(valid))
    if bad:
        raise ValueError(f"unknown scale knob(s) {bad} for {name!r} ({family(name)}); valid: {', '.join(valid)}")
    return avoid_strided_pointwise_conv(_builder(name)(num_classes=num_classes, **scale))


__all__ = ["STUDY_NAS", "SDN_NAMES", "SIZE_VARIANTS", "names", "family", "base_architecture", "is_size_variant", "build", "build_arguments", "scale_knobs", "cell_stats",
           "FAMILIES", "GENOTYPES", "BlockNet"]
