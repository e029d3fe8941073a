"""The Makefile's file operations are safe in a checkout whose path has spaces and non-ASCII characters.

``make test`` removes ``build/nbval-figures`` before nbval; an unquoted path there would split at
the space and remove a folder beside the checkout. This runs the real Makefile recipe in such a
path, with stand-ins for the virtualenv's programs (they only record their arguments), and
checks that nothing outside the checkout is touched.
"""

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAND_IN = """#!/bin/sh
# Records its arguments; 'nlcl verify --nbval-config' answers with the strict config's path.
echo "$0 $*" >> "$(dirname "$0")/../calls.log"
case "$*" in *--nbval-config*) echo tests/nbval_sanitize.cfg ;; esac
exit 0
"""


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_test_touches_nothing_outside_a_checkout_with_a_space_and_non_ascii(tmp_path):
    beside = tmp_path / "victim"
    beside.mkdir()
    (beside / "keep.txt").write_text("must survive")
    checkout = tmp_path / "victim dir é" / "nlcl"
    checkout.mkdir(parents=True)
    for name in ("Makefile", "pyproject.toml", "constraints.txt"):
        shutil.copy(ROOT / name, checkout / name)
    bin_dir = checkout / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for program in ("python", "nlcl", "ruff"):
        path = bin_dir / program
        path.write_text(STAND_IN)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    (checkout / ".venv" / ".installed").touch()
    os.utime(checkout / ".venv" / ".installed", (2**31, 2**31))  # newer than the copied sources
    nbval_figures = checkout / "build" / "nbval-figures"
    nbval_figures.mkdir(parents=True)
    (nbval_figures / "old.json").write_text("{}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    done = subprocess.run(["make", "test"], cwd=checkout, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert (beside / "keep.txt").read_text() == "must survive"
    assert not nbval_figures.exists(), "make test did not clear build/nbval-figures"
    calls = (checkout / ".venv" / "calls.log").read_text()
    assert "--nbval-sanitize-with tests/nbval_sanitize.cfg" in calls and "figures --profile quick" in calls
