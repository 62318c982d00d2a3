"""The package's modules import one another without circles (issue #17): every module can be
understood, and imported, after the modules it builds on; and the subpackages are floors, each
importing only from the floors below it (docs/design.md, "The layout")."""

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
            # a package above the module is imported before the module itself: no circle
            if t and t != name and not name.startswith(t + "."):
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


# bottom to top: the mathematics, the model, the engine, the runs, the figures
FLOORS = ["learning", "model", "engine", "study", "figures"]
# the engine writes its own checkpoints, with the run folder's safe writes (imported where it writes)
UPWARD = {("asyncneurons.engine.checkpoint", "asyncneurons.study.folders")}


def _floor(module: str):
    parts = module.split(".")
    return FLOORS.index(parts[1]) if len(parts) > 1 and parts[1] in FLOORS else None


def test_every_module_of_the_package_sits_on_a_floor_or_at_the_top():
    top = {m for m in import_graph() if _floor(m) is None}
    assert top == {"asyncneurons", "asyncneurons.cli", "asyncneurons.errors", "asyncneurons.plugins",
                   "asyncneurons.tasks", "asyncneurons.tasks.multiplexer", "asyncneurons.tasks.regression"}


def test_a_floor_imports_only_from_the_floors_below_it():
    g = import_graph()
    up = {(a, b) for a, b in g.edges if _floor(a) is not None and _floor(b) is not None and _floor(a) < _floor(b)}
    assert up == UPWARD
