"""A throw-away repository tree with tiny notebooks, for the pipeline tests.

The notebooks run through the real ``nlcl figures`` (``--root`` points it at the tree), in
worker processes and kernels that import this checkout's ``nlcl_utils``.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

GOOD = """\
# %% [markdown]
# # 98 test notebook

# %%
from nlcl_utils.notebook import claims, params, plotting
import matplotlib.pyplot as plt

# %% tags=["parameters"]
n_points = 5  # points on the line

# %%
P = params.validate(globals(), {"n_points": params.Int(min=1)})
FIG_DIR = plotting.figure_dir("98_good")
print("points:", P.n_points)
fig, ax = plt.subplots()
ax.plot(range(P.n_points))
plotting.savefig(fig, FIG_DIR, "line")
checks = claims.Claims("98_good")
checks.implementation("n_points positive", "T0.1", measured=P.n_points, op=">", threshold=0, threshold_source="test")
checks.finish(FIG_DIR)
"""
OTHER = GOOD.replace("98_good", "96_other").replace("ax.plot(range(P.n_points))", "ax.bar(range(P.n_points), 1)")
BAD = GOOD.replace("98_good", "99_bad").replace('print("points:", P.n_points)', "raise RuntimeError('boom in cell')")
# Writes the kernel's pid where the test can see it, then waits while notebooks/HOLD exists
# (the kernel's working directory is notebooks/): the test decides when it finishes.
SLOW = GOOD.replace("98_good", "97_slow").replace(
    'print("points:", P.n_points)',
    "import os, time\n(FIG_DIR / 'kernel.pid').write_text(str(os.getpid()))\n"
    "while os.path.exists('HOLD'):\n    time.sleep(0.05)",
)


def write_tree(root: Path, notebooks: dict[str, str] | None = None) -> Path:
    """A repository tree under ``root`` with notebooks (name -> py:percent text) and a quick profile."""
    notebooks = notebooks if notebooks is not None else {"98_good": GOOD, "99_bad": BAD}
    for sub in ("notebooks", "figures", "build"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for name, text in notebooks.items():
        (root / "notebooks" / f"{name}.py").write_text(text)
    (root / "notebooks" / "profiles.toml").write_text("[quick.98_good]\nn_points = 2\n")
    return root


def child_env() -> dict:
    """Environment for subprocesses: this checkout first on the path, one thread, no bars."""
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}


def figures_command(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "nlcl_utils.cli", "figures", "--root", str(root), *args]


def run_figures(root: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``nlcl figures --root root ARGS`` to completion in a subprocess."""
    return subprocess.run(
        figures_command(root, *args), capture_output=True, text=True, timeout=timeout, env=child_env()
    )


def start_figures(root: Path, *args: str) -> subprocess.Popen:
    """Start ``nlcl figures`` in the background, in a process group of its own (like a shell job)."""
    return subprocess.Popen(
        figures_command(root, *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
        start_new_session=True,
    )


def wait_for(path: Path, process: subprocess.Popen | None = None, timeout: float = 120) -> str:
    """Wait until ``path`` exists with content (failing early if ``process`` exits); returns it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the run ended before {path} appeared: {process.communicate()}")
        time.sleep(0.1)
    raise AssertionError(f"{path} did not appear within {timeout} s")


def process_gone(pid: int, timeout: float = 10) -> bool:
    """Whether process ``pid`` has exited (or is a zombie) within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.1)
    return False


def snapshot(root: Path) -> dict:
    """{relative path: bytes} of every file outside build/ (the committed part of a tree)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "build" not in p.relative_to(root).parts
    }
