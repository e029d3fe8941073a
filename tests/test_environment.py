"""pyproject.toml, environment.yml and constraints.txt agree on what the project needs."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch"}  # PyPI name -> conda-forge name where they differ


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower()


def _pyproject_requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]


def _conda_requirements() -> list[str]:
    """Every package environment.yml installs: conda-forge ones and those of its `pip:` block."""
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = lines.index("dependencies:")
    deps = [ln.split("#")[0].strip()[2:] for ln in lines[start + 1 :] if ln.strip().startswith("- ")]
    return [d for d in deps if _name(d) not in ("python", "pip", "pip:")]


def test_conda_and_pyproject_name_the_same_packages():
    pypi = {CONDA_NAMES.get(_name(r), _name(r)) for r in _pyproject_requirements()}
    conda = {_name(r) for r in _conda_requirements()}
    assert pypi == conda, f"only in pyproject: {sorted(pypi - conda)}; only in environment.yml: {sorted(conda - pypi)}"


def test_torch_is_pinned_everywhere():
    # An unpinned torch pulls a multi-GB CUDA build: every file pins the same release.
    assert "torch==2.13.0" in _pyproject_requirements()
    assert "pytorch=2.13.0=cpu*" in _conda_requirements()
    assert "torch==2.13.0" in (ROOT / "constraints.txt").read_text().splitlines()


def test_constraints_pin_every_direct_dependency():
    pinned = {_name(ln) for ln in (ROOT / "constraints.txt").read_text().splitlines() if "==" in ln}
    missing = {_name(r) for r in _pyproject_requirements()} - pinned
    assert not missing, f"constraints.txt lacks {sorted(missing)}"
