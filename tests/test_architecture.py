"""The package's layers: every import points down (or sideways within a layer), none makes a cycle.

Layers, lowest first: the shared modules at the package's top (seeds, stats, publish, processes,
progress), ``data``, ``engine``, ``theory``, ``experiments``, ``notebook``, ``pipeline``, ``cli``.
Imports inside functions count too: a local import is no way around the layering.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "nlcl_utils"
LAYERS = ("", "data", "engine", "theory", "experiments", "notebook", "pipeline", "cli")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> int:
    """0 for nlcl_utils and its top-level modules, else the index of its subpackage in LAYERS."""
    parts = module.split(".")
    if len(parts) == 1 or (PACKAGE / f"{parts[1]}.py").is_file():
        return 0
    return LAYERS.index(parts[1])


def imports(module: str) -> set[str]:
    """The package modules ``module`` imports (``from nlcl_utils.x import y`` counts y when y is a module)."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nlcl_utils"):
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in MODULES else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("nlcl_utils"))
    return {name for name in found if name in MODULES and name != module}


GRAPH = {module: imports(module) for module in MODULES}


def test_every_module_belongs_to_a_layer():
    for module in MODULES:
        assert layer(module) >= 0, module
    subpackages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert subpackages == set(LAYERS[1:])


def upward(graph: dict[str, set[str]]) -> list[str]:
    """Every import from a higher layer, as "importer -> imported"."""
    return sorted(f"{m} -> {d}" for m, deps in graph.items() for d in deps if layer(d) > layer(m))


def into_cli(graph: dict[str, set[str]]) -> list[str]:
    """Every import of the cli layer from outside it."""
    inside = lambda name: name == "nlcl_utils.cli" or name.startswith("nlcl_utils.cli.")
    return sorted(f"{m} -> {d}" for m, deps in graph.items() if not inside(m) for d in deps if inside(d))


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (its modules in order, the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1 while on the current path, 2 when done

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = 1
        for dep in sorted(graph.get(module, ())):
            if state.get(dep) == 1:
                return path[path.index(dep) :] + [dep]
            if dep not in state and (cycle := visit(dep, path + [dep])):
                return cycle
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module, [module])):
            return cycle
    return None


def test_imports_point_down():
    assert not upward(GRAPH)


def test_nothing_outside_cli_imports_cli():
    assert not into_cli(GRAPH)


def test_no_import_cycles():
    assert find_cycle(GRAPH) is None


def test_the_checks_catch_what_they_forbid():
    bad = {
        "nlcl_utils.engine.train": {"nlcl_utils.notebook.claims"},  # up
        "nlcl_utils.experiments.sweep": {"nlcl_utils.cli.tokens"},  # into cli (and up)
        "nlcl_utils.notebook.claims": {"nlcl_utils.notebook.params"},
        "nlcl_utils.notebook.params": {"nlcl_utils.notebook.claims"},  # a cycle within a layer
    }
    assert "nlcl_utils.engine.train -> nlcl_utils.notebook.claims" in upward(bad)
    assert into_cli(bad) == ["nlcl_utils.experiments.sweep -> nlcl_utils.cli.tokens"]
    assert find_cycle(bad) == ["nlcl_utils.notebook.claims", "nlcl_utils.notebook.params", "nlcl_utils.notebook.claims"]
    assert layer("nlcl_utils.seeds") == 0 and layer("nlcl_utils.cli") == LAYERS.index("cli")
