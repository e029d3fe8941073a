"""session.setup: one call validates a notebook's parameters against its own defaults."""

import pytest

from nlcl_utils.notebook import params, session

NAME = "00_alpha_cl_foundations"


def test_defaults_pass_and_ranges_apply():
    defaults = session.source_defaults(NAME)
    nb = session.setup(NAME, dict(defaults))
    assert vars(nb.params) == {k: (float(v) if isinstance(v, float) else v) for k, v in defaults.items()}
    assert nb.fig_dir.name == NAME and nb.claims.notebook == NAME
    name = next(k for k, v in defaults.items() if isinstance(v, int) and not isinstance(v, bool))
    with pytest.raises(params.ParameterError, match=f"parameter '{name}': expected an integer >= 10000"):
        session.setup(NAME, dict(defaults), ranges={name: params.Int(min=10_000)})


def test_wrong_type_and_misspelled_override_fail_before_compute():
    defaults = session.source_defaults(NAME)
    name = next(k for k, v in defaults.items() if isinstance(v, int) and not isinstance(v, bool))
    with pytest.raises(params.ParameterError, match=f"parameter '{name}': expected an integer"):
        session.setup(NAME, {**defaults, name: "3"})
    with pytest.raises(params.ParameterError, match="unknown parameter"):
        session.setup(NAME, {**defaults, name + "x": 3})


def test_unknown_notebook_is_named():
    with pytest.raises(FileNotFoundError, match="no notebook source"):
        session.setup("99_nothing", {})
