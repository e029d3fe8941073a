"""One setup call per notebook: threads, theme, parameters, figure folder, claims.

Every notebook starts, right after its ``parameters`` cell, with::

    nb = session.setup("01_one_layer_local_optima", globals(), ranges={"n_inits": params.Int(min=1)})
    P, FIG_DIR, checks = nb.params, nb.fig_dir, nb.claims

and ends with ``nb.finish()``. ``setup``

* sets torch to one thread (these workloads are small; more threads oversubscribe 2 cores),
* applies the plotting theme,
* validates the parameters: each parameter's type is inferred from its default in the
  notebook's source ``notebooks/NN_name.py`` (so a papermill override of the wrong type is
  caught), ranges come from ``ranges``; an unknown or misspelled parameter is an error,
* creates the figure folder (``plotting.figure_dir``) and an empty :class:`claims.Claims`,
  at full scale (its predictions are tests of the paper's statements) when ``full_scale(params)``
  says so — by default when every parameter has its default value; a quick profile or other
  reduced parameters record the same verdicts as *reported only*.

Each claim is recorded right under the figure or paragraph it checks; recording never raises
for a refuted prediction. ``finish`` comes last: it prints every verdict, writes claims.json and
raises only for a broken computation (a non-finite input, a failed identity or implementation
check), so every figure is already on disk to debug with.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nlcl_utils.notebook import claims as claims_module
from nlcl_utils.notebook import params as params_module
from nlcl_utils.notebook import plotting

NOTEBOOKS_DIR = params_module.NOTEBOOKS_DIR


@dataclass
class Notebook:
    """What a notebook needs from its setup: validated parameters, figure folder, claims."""

    name: str
    params: types.SimpleNamespace
    fig_dir: Path
    claims: claims_module.Claims

    @property
    def full_scale(self) -> bool:
        """Whether the predictions are tests of the paper's statements (see the module docstring)."""
        return self.claims.full_scale

    def finish(self) -> None:
        """Print the verdicts (predictions first), write claims.json, raise on a broken computation."""
        self.claims.finish(self.fig_dir)


def source_defaults(name: str, notebooks_dir: Path | None = None) -> dict[str, Any]:
    """The defaults of the ``parameters`` cell of ``notebooks/<name>.py`` (read, not executed)."""
    if notebooks_dir is not None and Path(notebooks_dir) != NOTEBOOKS_DIR:
        raise ValueError("notebooks_dir: only the repository's notebooks/ folder is supported")
    path = NOTEBOOKS_DIR / f"{name}.py"
    if not path.exists():
        raise FileNotFoundError(f"name: no notebook source {path} (the name must be NN_name of notebooks/NN_name.py)")
    return params_module.notebook_defaults(name)


def _same(value: Any, default: Any) -> bool:
    if isinstance(value, (list, tuple)) and isinstance(default, (list, tuple)):
        return len(value) == len(default) and all(_same(a, b) for a, b in zip(value, default))
    return value == default


def setup(
    name: str,
    namespace: Mapping[str, Any],
    ranges: Mapping[str, params_module.Spec] | None = None,
    full_scale: Callable[[types.SimpleNamespace], bool] | None = None,
) -> Notebook:
    """Prepare notebook ``name`` (see the module docstring); raises ParameterError on bad parameters.

    ``full_scale``: a function of the validated parameters saying whether this run tests the
    statements (default: every parameter at its default value).
    """
    torch.set_num_threads(1)
    plotting.set_theme()
    defaults = source_defaults(name)
    specs = params_module.specs_from_defaults(defaults, ranges)
    values = params_module.validate(namespace, specs)
    if full_scale is None:
        at_scale = all(_same(getattr(values, key), default) for key, default in defaults.items())
    else:
        at_scale = bool(full_scale(values))
    return Notebook(name, values, plotting.figure_dir(name), claims_module.Claims(name, full_scale=at_scale))
