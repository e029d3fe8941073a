"""Every third-party package that a notebook or the package imports is declared in pyproject.toml."""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------
# every package a notebook or the package imports is declared
# ------------------------------------------------------------------------------------------


def _imported_top_level(paths: list[Path]) -> set[str]:
    names = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


# Imported modules that come with a declared package rather than being declared themselves.
BROUGHT_BY = {"IPython": "ipykernel (the notebooks' kernel is IPython)"}


def test_every_third_party_import_is_declared():
    import tomllib

    sources = sorted((ROOT / "notebooks").glob("*.py")) + sorted((ROOT / "nlcl_utils").rglob("*.py"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    # main dependencies, and the optional extras of the features that need them (site, test)
    requirements = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    declared = {re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0].lower() for r in requirements}
    providers = metadata.packages_distributions()
    missing = []
    for module in sorted(_imported_top_level(sources)):
        if module in sys.stdlib_module_names or module == "nlcl_utils" or module in BROUGHT_BY:
            continue
        # an optional extra that is not installed (e.g. `site` in a default install) provides
        # nothing: then the module must be declared under its own name
        dists = {d.lower() for d in providers.get(module, [])} or {module.lower()}
        if not dists & declared:
            missing.append(f"{module} (installed by {sorted(dists) or 'nothing'})")
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"
