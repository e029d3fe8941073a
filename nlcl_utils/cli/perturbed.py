"""Run a command with another processor's kernels: ``python -m nlcl_utils.cli.perturbed CMD ...``
(the environment of :func:`nlcl_utils.pipeline.reproduce.perturbed_env`)."""

from __future__ import annotations

import subprocess
import sys

from nlcl_utils.pipeline.reproduce import perturbed_env


def run_perturbed(argv: list[str]) -> int:
    """Run the command ``argv`` with :func:`perturbed_env` (``python -m nlcl_utils.cli.perturbed CMD ...``)."""
    if not argv:
        print("usage: python -m nlcl_utils.cli.perturbed COMMAND [ARGS...]  (runs it with another processor's kernels)",
              file=sys.stderr)  # fmt: skip
        return 2
    env = perturbed_env()
    shown = " ".join(f"{k}={env[k]!r}" for k in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "NPY_DISABLE_CPU_FEATURES",
                                                  "OPENBLAS_CORETYPE") if k in env)  # fmt: skip
    print(f"with another processor's kernels: {shown}", file=sys.stderr)
    return subprocess.run(argv, env=env).returncode


if __name__ == "__main__":
    sys.exit(run_perturbed(sys.argv[1:]))
