"""The package's modules import one another without circles (issue #17): every module can be
understood, and imported, after the modules it builds on."""

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parents[1] / "asyncneurons"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set) -> set:
    """The package's modules that ``path`` imports, at the top or inside functions."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            base = (f"{base}.{node.module}" if node.module else base) if node.level else node.module
            # ``from . import x`` names a module x; ``from .m import f`` names module m
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in modules:  # a name inside a module: the module
                t = t.rpartition(".")[0]
            if t and t != name and t != package:
                found.add(t)
    return found


def import_graph() -> nx.DiGraph:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {_module_name(p) for p in paths}
    g = nx.DiGraph()
    for p in paths:
        g.add_node(_module_name(p))
        for target in _imports(p, modules):
            g.add_edge(_module_name(p), target)
    return g


def test_the_import_graph_sees_the_package():
    g = import_graph()
    assert g.has_edge("asyncneurons.engine.simulation", "asyncneurons.engine.windows")
    assert g.has_edge("asyncneurons.learning.map_critic", "asyncneurons.learning.critic")
    assert g.has_edge("asyncneurons.figures.raster", "asyncneurons.figures.figure_style")  # imported inside a function


def test_no_module_of_the_package_imports_itself_through_others():
    g = import_graph()
    cycles = [c for c in nx.simple_cycles(g)]
    assert cycles == [], "import circles: " + "; ".join(" → ".join(c + c[:1]) for c in cycles[:5])
