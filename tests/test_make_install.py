"""``make install``: a .venv made by another Python is replaced, or make says how to fix it."""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------
# a .venv made by the wrong Python is replaced, or make says how to fix it
# ------------------------------------------------------------------------------------------

FAKE_311 = """#!/bin/sh
# Stands in for Python 3.11: real interpreter for -c/--version, fake venv and pip.
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then mkdir -p "$3/bin"; cp "$0" "$3/bin/python"; exit 0; fi
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then exit 0; fi
exec {real} "$@"
"""
FAKE_312 = """#!/bin/sh
# Stands in for Python 3.12: every version check fails.
if [ "$1" = "--version" ]; then echo "Python 3.12.1"; exit 0; fi
exit 1
"""


def _make_tree(tmp_path: Path) -> Path:
    for name in ("Makefile", "pyproject.toml", "constraints.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    for name, text in (("py311", FAKE_311.format(real=sys.executable)), ("py312", FAKE_312)):
        (tmp_path / name).write_text(text)
        (tmp_path / name).chmod(stat.S_IRWXU)
    return tmp_path


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_a_venv_of_the_wrong_python_is_recreated(tmp_path):
    tree = _make_tree(tmp_path)
    (tree / ".venv" / "bin").mkdir(parents=True)
    shutil.copy(tree / "py312", tree / ".venv" / "bin" / "python")  # what a 3.12 install left behind
    out = subprocess.run(["make", "install", f"PYTHON={tree / 'py311'}"], cwd=tree, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert ".venv was made with Python 3.12.1; removing it" in out.stdout
    assert "exec" in (tree / ".venv" / "bin" / "python").read_text() and (tree / ".venv" / ".installed").exists()


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_the_wrong_python_is_refused_with_the_fix(tmp_path):
    tree = _make_tree(tmp_path)
    out = subprocess.run(["make", "install", f"PYTHON={tree / 'py312'}"], cwd=tree, capture_output=True, text=True)
    assert out.returncode != 0
    assert "Python 3.11 is needed" in out.stderr and "Python 3.12.1" in out.stderr
    assert "make install PYTHON=/path/to/python3.11" in out.stderr
    assert not (tree / ".venv").exists()
