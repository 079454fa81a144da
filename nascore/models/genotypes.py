"""NAS cell genotypes as plain data, and the cell statistics derived from them.

Source: the reproduction protocol ``automl-security.md`` §1.3 (genotypes shipped with the
artifact of Pang et al., "On the Security Risks of AutoML", USENIX Security 2022,
``ain-soph/autovul``), written in the DARTS convention (Liu et al., ICLR 2019; quark0/darts):
a cell has two inputs (index 0 = c_{k-2}, 1 = c_{k-1}); intermediate node ``k`` (index 2, 3, …)
is the sum of two operations, listed as consecutive ``(op, input_index)`` pairs; the cell output
is the channel concatenation of the nodes in ``concat``.

The mitigation genotypes (DARTS-i/ii/iii, the paper's §5) keep the DARTS-V2 reduction cell
unchanged, as the shipped genotypes do.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class Genotype(NamedTuple):
    normal: tuple[tuple[str, int], ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[tuple[str, int], ...]
    reduce_concat: tuple[int, ...]


# Short names used in the protocol's table → DARTS op names.
_OP = {
    "s3": "sep_conv_3x3", "s5": "sep_conv_5x5", "s7": "sep_conv_7x7",
    "d3": "dil_conv_3x3", "d5": "dil_conv_5x5",
    "mp": "max_pool_3x3", "ap": "avg_pool_3x3", "id": "skip_connect", "c71": "conv_7x1_1x7",
}
OPERATIONS = tuple(_OP.values())


def _cell(spec: str) -> tuple[tuple[str, int], ...]:
    """Parse ``"s3(1)+s3(0); id(0)+s3(1)"`` (one ``;``-separated entry per node, in order)."""
    pairs = []
    for node in spec.split(";"):
        for term in node.strip().split("+"):
            op, idx = term.strip().rstrip(")").split("(")
            pairs.append((_OP[op], int(idx)))
    return tuple(pairs)


def _g(normal: str, normal_concat: str, reduce: str, reduce_concat: str) -> Genotype:
    parse = lambda c: tuple(int(i) for i in c.split(","))  # noqa: E731
    return Genotype(_cell(normal), parse(normal_concat), _cell(reduce), parse(reduce_concat))


_DARTS_V2_REDUCE = "mp(0)+mp(1); id(2)+mp(1); mp(0)+id(2); id(2)+mp(1)"

#: name → genotype. Protocol §1.3 table, row by row.
GENOTYPES: dict[str, Genotype] = {
    "darts_v1": _g("s3(1)+s3(0); id(0)+s3(1); id(0)+s3(1); s3(0)+id(2)", "2,3,4,5",
                   "mp(0)+mp(1); id(2)+mp(0); mp(0)+id(2); id(2)+ap(0)", "2,3,4,5"),
    "darts": _g("s3(0)+s3(1); s3(0)+s3(1); s3(1)+id(0); id(0)+d3(2)", "2,3,4,5",
                _DARTS_V2_REDUCE, "2,3,4,5"),
    "pc_darts": _g("s3(1)+id(0); s3(0)+d3(1); s5(0)+s3(1); ap(0)+d3(1)", "2,3,4,5",
                   "s5(1)+mp(0); s5(1)+s5(2); s3(0)+s3(3); s3(1)+s3(2)", "2,3,4,5"),
    "snas_mild": _g("s3(0)+s3(1); id(0)+d3(1); id(0)+id(1); id(0)+s3(1)", "2,3,4,5",
                    "mp(0)+mp(1); id(2)+mp(1); mp(1)+id(2); d5(2)+mp(0)", "2,3,4,5"),
    "pdarts": _g("id(0)+d3(1); id(0)+s3(1); s3(1)+s3(3); s3(0)+d5(4)", "2,3,4,5",
                 "ap(0)+s5(1); s3(0)+d5(2); mp(0)+d3(1); d3(1)+d5(3)", "2,3,4,5"),
    "sgas": _g("s3(0)+d3(1); s3(0)+s3(1); s5(1)+s5(3); id(0)+d5(2)", "2,3,4,5",
               "mp(0)+d5(1); s3(0)+id(2); s3(1)+id(2); mp(0)+mp(1)", "2,3,4,5"),
    "drnas": _g("s3(0)+s5(1); s3(1)+s3(2); id(0)+s3(1); s3(2)+d5(3)", "2,3,4,5",
                "mp(0)+s5(1); d5(2)+s5(1); s5(1)+d5(3); id(4)+s5(1)", "2,3,4,5"),
    "enas": _g("s3(1)+id(1); s5(1)+id(0); ap(0)+s3(1); s3(0)+ap(1); s5(1)+ap(0)", "2,3,4,5,6",
               "s5(0)+ap(1); s3(1)+ap(1); s3(1)+ap(1); s5(4)+ap(1); s3(5)+s5(0)", "2,3,6"),
    "nasnet": _g("s5(1)+s3(0); s5(0)+s3(0); ap(1)+id(0); ap(0)+ap(0); s3(1)+id(1)", "2,3,4,5,6",
                 "s5(1)+s7(0); mp(1)+s7(0); ap(1)+s5(0); id(3)+ap(2); s3(2)+mp(1)", "4,5,6"),
    "amoebanet": _g("ap(0)+mp(1); s3(0)+s5(2); s3(0)+ap(3); s3(1)+id(1); id(0)+ap(1)", "4,5,6",
                    "ap(0)+s3(1); mp(0)+s7(2); s7(0)+ap(1); mp(0)+mp(1); c71(0)+s3(5)", "3,4,6"),
    "random": _g("mp(0)+d3(1); s3(2)+id(1); id(3)+ap(0); s3(1)+d3(2)", "2,3,4,5",
                 "ap(0)+mp(1); id(1)+d3(1); s3(3)+d3(1); mp(0)+s3(4)", "2,3,4,5"),
    # Mitigations (paper §5, DARTS-i/ii/iii): DARTS-V2 reduction cell unchanged.
    "diy_deep": _g("s3(0)+s3(1); s3(2)+s3(2); s3(3)+id(3); id(4)+d3(4)", "2,3,4,5",
                   _DARTS_V2_REDUCE, "2,3,4,5"),
    "diy_noskip": _g("s3(0)+s3(1); s3(0)+s3(1); s3(1)+s3(0); d3(0)+d3(2)", "2,3,4,5",
                     _DARTS_V2_REDUCE, "2,3,4,5"),
    "diy_deep_noskip": _g("s3(0)+s3(1); s3(2)+s3(2); s3(3)+s3(3); d3(4)+d3(4)", "2,3,4,5",
                          _DARTS_V2_REDUCE, "2,3,4,5"),
}

#: The ten NAS cells the paper evaluates (protocol §1.2). darts_v1 is defined but not in the study.
NAS_ARCHS = ("darts", "pc_darts", "pdarts", "snas_mild", "sgas", "drnas", "enas", "nasnet",
             "amoebanet", "random")
EXTRA_NAS_ARCHS = ("darts_v1",)
MITIGATION_ARCHS = ("diy_deep", "diy_noskip", "diy_deep_noskip")


@dataclass(frozen=True)
class CellStats:
    """Shape of one cell (protocol §1.5).

    depth: longest chain of intermediate nodes ending in a concat node (a node fed only by the
        cell inputs has depth 1).
    skips: number of ``skip_connect`` operations.
    input_edges / edges: operations reading a cell input (index 0 or 1) / all operations.
    """

    depth: int
    skips: int
    input_edges: int
    edges: int

    def __str__(self) -> str:
        return f"{self.depth}/{self.skips}/{self.input_edges}of{self.edges}"


CELLS = ("normal", "reduce")


def cell_stats(arch: "str | Genotype", cell: str = "normal") -> CellStats:
    """Statistics of the ``cell`` (``"normal"`` or ``"reduce"``) of a genotype, derived from its
    ``(op, input)`` pairs and concat list — never typed in.

    ``arch`` is a registered name (:data:`GENOTYPES`) or a :class:`Genotype`. The one way to get
    cell statistics (``nascore.models.cell_stats`` is this function).
    """
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {', '.join(CELLS)}; got {cell!r}")
    if isinstance(arch, Genotype):
        g = arch
    elif arch in GENOTYPES:
        g = GENOTYPES[arch]
    else:
        raise ValueError(f"no genotype named {arch!r} (only NAS and mitigation models have cells); "
                         f"valid: {', '.join(GENOTYPES)}")
    ops, concat = (g.normal, g.normal_concat) if cell == "normal" else (g.reduce, g.reduce_concat)
    depth = {0: 0, 1: 0}
    for k in range(len(ops) // 2):
        inputs = (ops[2 * k][1], ops[2 * k + 1][1])
        depth[k + 2] = 1 + max(depth[i] for i in inputs)
    return CellStats(
        depth=max(depth[i] for i in concat),
        skips=sum(op == "skip_connect" for op, _ in ops),
        input_edges=sum(i < 2 for _, i in ops),
        edges=len(ops),
    )


def genotype(name: str) -> Genotype:
    try:
        return GENOTYPES[name]
    except KeyError:
        raise KeyError(f"unknown genotype {name!r}; valid: {', '.join(GENOTYPES)}") from None
