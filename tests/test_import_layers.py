"""The package's import graph: no cycles, no upward or sideways edges.

Every module of ``nascore`` is parsed with :mod:`ast` (nothing is imported), so **every**
``import`` counts — module level, inside functions and under ``if TYPE_CHECKING`` alike: a
function-level import that only hides a cycle is still a cycle. Relative imports are resolved
against the importing module; ``from pkg import name`` is an edge to ``pkg.name`` when that is a
module, else to ``pkg``. An import of ``a.b.c`` is an edge to ``a.b.c`` only (not to the packages
``a`` and ``a.b`` that Python also runs): a package's ``__init__`` re-exporting its submodules is
the normal shape, not a cycle.

The layering (:data:`LAYERS`, bottom first): a module imports only from its own part of the
package (``nascore.<name>``) and from parts in lower layers — never upward, never sideways to
another part of the same layer. So ``report`` (claims, statistics, verdicts, tables) imports nothing
from the chapters (``findings``); the attack library and the analyses know nothing of the
experiment cache (``zoo``), the profiles, the worker pool, the report or the chapters. Chapter
modules of ``findings`` do not import each other, only their own parts (``backdoor_injection``
belongs to ``backdoor``) and the shared helpers (:data:`FINDINGS_SHARED`). Violations are all
reported, each with its rule.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterable, Mapping

import pytest

PACKAGE = "nascore"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE

#: The layers, bottom first. A module imports only from its own part of the package and from parts in
#: lower layers: never upward, never sideways to another part of its own layer (so, e.g., ``report``
#: imports nothing from ``findings``, ``attacks`` nothing from ``zoo``, ``profiles`` or ``parallel``,
#: ``analysis`` nothing from ``report`` or ``findings``). A part is ``nascore.<name>``.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("nascore._cpu_workarounds", "nascore._torchvision_compat", "nascore.io", "nascore.provenance",
     "nascore.cifar_archive", "nascore.progress"),
    ("nascore.data",),
    ("nascore.models",),
    ("nascore.train", "nascore.fingerprint"),
    ("nascore.attacks", "nascore.analysis", "nascore.report", "nascore.parallel", "nascore.profiles"),
    ("nascore.zoo",),
    ("nascore.multiexit",),
    ("nascore.findings",),
    ("nascore.book", "nascore.browsercheck"),
)
#: The modules of ``nascore.findings`` every chapter may import.
FINDINGS_SHARED = ("nascore.findings", "nascore.findings.common", "nascore.findings.inputs")
#: The chapters' modules in ``nascore.findings``; ``<chapter>_<part>`` (e.g. ``backdoor_injection``) is
#: part of that chapter. A chapter imports its own parts and the shared modules, never another chapter.
FINDINGS_CHAPTERS = ("model_zoo", "evasion", "smoothness", "mitigations", "poisoning", "backdoor", "extraction",
                     "membership", "deepsloth")


# --------------------------------------------------------------------------- the graph
def module_names(root: Path = ROOT, package: str = PACKAGE) -> dict[str, Path]:
    """``{dotted module name: path}`` for every ``.py`` file under ``root`` (``pkg/__init__.py`` is ``pkg``)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name of ``from <level dots><target> import ...`` written in ``module``."""
    if level == 0:
        return target or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def imports_of(source: str, module: str, is_package: bool, known: Iterable[str]) -> set[str]:
    """The internal modules ``module`` imports anywhere in ``source`` (a module's text)."""
    known = set(known)
    out: set[str] = set()

    def add(name: str) -> None:
        while name and name not in known:  # ``import a.b.attr`` style or a package: walk up to a module
            name = name.rpartition(".")[0]
        if name and name != module:
            out.add(name)

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node.level, node.module)
            if base.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                add(sub if sub in known else base)
    return out


def import_graph(root: Path = ROOT, package: str = PACKAGE) -> dict[str, set[str]]:
    """``{module: the internal modules it imports}`` for the whole package, statically."""
    mods = module_names(root, package)
    return {name: imports_of(path.read_text(), name, path.name == "__init__.py", mods) for name, path in mods.items()}


# --------------------------------------------------------------------------- the checks
def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The cycles of ``graph``, each as ``[a, b, ..., a]``: for every strongly connected component
    with more than one module (or a self-edge; Tarjan's algorithm, iterative), the shortest cycle
    through each of its modules, each distinct cycle once."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        comp.append(m)
                        if m == node:
                            break
                    if len(comp) > 1 or node in graph.get(node, ()):
                        components.append(sorted(comp))
    cycles, seen = [], set()
    for comp in components:
        for member in comp:  # the shortest cycle through each member, each cycle once
            cycle = _cycle_through(graph, set(comp), member)
            key = frozenset(zip(cycle, cycle[1:]))
            if key not in seen:
                seen.add(key)
                cycles.append(cycle)
    return cycles


def _cycle_through(graph: Mapping[str, Iterable[str]], members: set[str], start: str) -> list[str]:
    """A shortest cycle ``[start, ..., start]`` inside the strongly connected component ``members``
    (breadth-first)."""
    parent: dict[str, str | None] = {start: None}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(graph.get(node, ())):
                if child == start:
                    path = [node]
                    while parent[path[-1]] is not None:
                        path.append(parent[path[-1]])
                    return [*reversed(path), start]
                if child in members and child not in parent:
                    parent[child] = node
                    nxt.append(child)
        frontier = nxt
    raise AssertionError(f"{sorted(members)} is not strongly connected")


def chapter_of(module: str, chapters: tuple[str, ...] = FINDINGS_CHAPTERS) -> str:
    """The chapter a ``nascore.findings`` module belongs to: ``backdoor`` for ``findings.backdoor`` and
    ``findings.backdoor_injection``; a module of no listed chapter is a chapter of its own."""
    name = module.rpartition(".")[2]
    return next((c for c in chapters if name == c or name.startswith(c + "_")), name)


def part_of(module: str) -> str:
    """``nascore.<name>`` for any module below it; the package's own ``__init__`` is ``nascore``."""
    return ".".join(module.split(".")[:2])


def layer_of(module: str, layers: tuple[tuple[str, ...], ...] = LAYERS) -> int | None:
    """The index of the layer ``module``'s part is in, or None if no layer lists it."""
    return next((i for i, parts in enumerate(layers) if part_of(module) in parts), None)


def layer_violations(graph: Mapping[str, Iterable[str]], layers: tuple[tuple[str, ...], ...] = LAYERS,
                     findings_shared: tuple[str, ...] = FINDINGS_SHARED) -> list[str]:
    """``"importer -> imported (rule)"`` for every edge the layering forbids, sorted: upward,
    sideways within a layer, between two chapters of ``findings``, or from a part no layer lists."""
    out = []
    for importer, targets in graph.items():
        if importer == PACKAGE:
            continue
        li = layer_of(importer, layers)
        if li is None:
            out.append(f"{importer} (its part {part_of(importer)} is in no layer: add it to LAYERS)")
            continue
        for target in targets:
            lt = layer_of(target, layers)
            same_part = part_of(importer) == part_of(target)
            if lt is None:
                continue  # reported as an importer of its own
            if lt > li:
                out.append(f"{importer} -> {target} (upward: {part_of(importer)} is below {part_of(target)})")
            elif lt == li and not same_part:
                out.append(f"{importer} -> {target} (sideways: {part_of(importer)} and {part_of(target)} share a "
                           f"layer)")
            if (same_part and part_of(importer) == "nascore.findings"
                    and importer not in findings_shared and target not in findings_shared
                    and chapter_of(importer) != chapter_of(target)):
                out.append(f"{importer} -> {target} (a chapter imports only its own modules and "
                           f"{', '.join(findings_shared[1:])})")
    return sorted(out)


# --------------------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def graph():
    return import_graph()


def test_the_walk_sees_the_whole_package(graph):
    assert len(graph) == len(list(ROOT.rglob("*.py"))) and len(graph) > 50
    # a function-level import and a relative import from a parent package are both edges
    assert "nascore.models" in graph["nascore.report.compare"] or "nascore.models" in graph["nascore.report.paper"]
    assert "nascore.report.confounds" in graph["nascore.report"]


def test_no_import_cycles(graph):
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_upward_or_sideways_imports(graph):
    bad = layer_violations(graph)
    assert not bad, f"{len(bad)} forbidden import(s):\n" + "\n".join(bad)


# ----------------------------------------------------------------------- the checker itself
def test_cycle_finder_reports_a_synthetic_cycle_and_passes_a_dag():
    dag = {"a": {"b", "c"}, "b": {"c"}, "c": set()}
    assert find_cycles(dag) == []
    cyclic = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    cycles = find_cycles(cyclic)
    assert ["a", "b", "c", "a"] in cycles and ["e", "e"] in cycles and len(cycles) == 2


def test_layer_rules_flag_upward_sideways_and_cross_chapter_edges():
    g = {"nascore.report.paper": {"nascore.findings.common", "nascore.report.statistics", "nascore.models"},
         "nascore.findings.smoothness": {"nascore.findings.evasion", "nascore.findings.common"},
         "nascore.findings.mitigations": {"nascore.findings.inputs", "nascore.report"},
         "nascore.findings.backdoor": {"nascore.findings.backdoor_injection"},       # its own part: allowed
         "nascore.findings.backdoor_injection": {"nascore.findings.poisoning"},      # another chapter: not
         "nascore.attacks.extraction": {"nascore.zoo"},                              # upward
         "nascore.attacks.pgd": {"nascore.report.estimators", "nascore.attacks.base"},  # sideways
         "nascore.newpart": {"nascore.io"}}                                          # in no layer
    bad = layer_violations(g)
    expected = ("nascore.report.paper -> nascore.findings.common (upward",
                "nascore.findings.smoothness -> nascore.findings.evasion (a chapter",
                "nascore.findings.backdoor_injection -> nascore.findings.poisoning (a chapter",
                "nascore.attacks.extraction -> nascore.zoo (upward",
                "nascore.attacks.pgd -> nascore.report.estimators (sideways",
                "nascore.newpart (its part")
    assert len(bad) == len(expected), bad
    for start in expected:
        assert any(v.startswith(start) for v in bad), (start, bad)


def test_imports_are_resolved_relative_to_the_module_and_inside_functions():
    src = ("from . import claims as _c\nfrom .verdict import decide\nfrom ..models import family\n"
           "import nascore.io\nimport numpy\n\ndef f():\n    from ..findings.common import GROUP_COLOURS\n")
    known = {"nascore.report.claims", "nascore.report.verdict", "nascore.models", "nascore.io",
             "nascore.findings.common", "nascore.report"}
    got = imports_of(src, "nascore.report.compare", False, known)
    assert got == {"nascore.report.claims", "nascore.report.verdict", "nascore.models", "nascore.io",
                   "nascore.findings.common"}
    # in a package's __init__, one dot is the package itself
    assert imports_of("from .claims import get\n", "nascore.report", True, known) == {"nascore.report.claims"}
