"""One setup call per notebook: threads, theme, parameters, figure folder, claims.

Every notebook starts, right after its ``parameters`` cell, with::

    nb = notebook.setup("01_one_layer_local_optima", globals(), ranges={"n_inits": params.Int(min=1)})
    P, FIG_DIR, checks = nb.params, nb.fig_dir, nb.claims

and ends with ``nb.finish()``. ``setup``

* sets torch to one thread (these workloads are small; more threads oversubscribe 2 cores),
* applies the plotting theme,
* validates the parameters: each parameter's type is inferred from its default in the
  notebook's source ``notebooks/NN_name.py`` (so a papermill override of the wrong type is
  caught), ranges come from ``ranges``; an unknown or misspelled parameter is an error,
* creates the figure folder (``plotting.figure_dir``) and an empty :class:`claims.Claims`.

Figures are written as the notebook goes; ``finish`` comes last, so a failing claim still
leaves every figure on disk to debug with.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nlcl_utils import claims as claims_module
from nlcl_utils import params as params_module
from nlcl_utils import plotting

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"


@dataclass
class Notebook:
    """What a notebook needs from its setup: validated parameters, figure folder, claims."""

    name: str
    params: types.SimpleNamespace
    fig_dir: Path
    claims: claims_module.Claims

    def finish(self) -> None:
        """Print the claims (predictions first), write claims.json, raise if a claim failed."""
        self.claims.finish(self.fig_dir)


def source_defaults(name: str, notebooks_dir: Path | None = None) -> dict[str, Any]:
    """The defaults of the ``parameters`` cell of ``notebooks/<name>.py`` (read, not executed)."""
    from nlcl_utils.regenerate import notebook_defaults

    if notebooks_dir is not None and Path(notebooks_dir) != NOTEBOOKS_DIR:
        raise ValueError("notebooks_dir: only the repository's notebooks/ folder is supported")
    path = NOTEBOOKS_DIR / f"{name}.py"
    if not path.exists():
        raise FileNotFoundError(f"name: no notebook source {path} (the name must be NN_name of notebooks/NN_name.py)")
    return notebook_defaults(name)


def setup(name: str, namespace: Mapping[str, Any], ranges: Mapping[str, params_module.Spec] | None = None) -> Notebook:
    """Prepare notebook ``name`` (see the module docstring); raises ParameterError on bad parameters."""
    torch.set_num_threads(1)
    plotting.set_theme()
    specs = params_module.specs_from_defaults(source_defaults(name), ranges)
    values = params_module.validate(namespace, specs)
    return Notebook(name, values, plotting.figure_dir(name), claims_module.Claims(name))
