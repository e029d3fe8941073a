"""Bad notebook parameters stop before any compute, whichever way they come in (``nlcl figures -p``,
papermill, a notebook's own setup); a non-finite input makes a claim invalid."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from nlcl_utils.notebook import claims, params, session
from nlcl_utils.pipeline import regenerate

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_NAMES = regenerate.discover(ROOT / "notebooks")


# ------------------------------------------------------------------------------------------
# bad notebook parameters stop before compute; a non-finite claim fails
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case, argv, message",
    [
        ("inf in a list", ["-p", "taus", "[1e999, 1.0]"], "non-finite number"),
        ("inf", ["-p", "n_trials", "1e999"], "non-finite number"),
        ("misspelled", ["-p", "n_trails", "2"], "did you mean 'n_trials'"),
        ("unknown profile", ["--profile", "huge"], "unknown profile 'huge'"),
        ("unknown notebook", ["--only", "77"], "no notebook '77'"),
    ],
)
def test_figures_rejects_bad_overrides_before_any_kernel(case, argv, message, capsys):
    assert regenerate.main(["--only", "00", *argv] if "--only" not in argv else argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--jobs", "--timeout"])
@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_figures_rejects_bad_jobs_and_timeout(flag, value, capsys):
    with pytest.raises(SystemExit) as exc:
        regenerate.main([flag, value])
    assert exc.value.code == 2 and flag in capsys.readouterr().err


def _bad_values(default):
    """Values of the wrong kind for a parameter with this default (whatever its range)."""
    if isinstance(default, bool):
        return [1, "True"]
    if isinstance(default, int):
        return ["3", 2.5, True]
    if isinstance(default, float):
        return [math.nan, math.inf, -math.inf, "0.1"]
    if isinstance(default, str):
        return [3, None]
    if isinstance(default, list):
        return [[], "[1]"] + ([[math.nan]] if default and isinstance(default[0], float) else [])
    return []


DEFAULTS = {name: params.notebook_defaults(name) for name in NOTEBOOK_NAMES}
NOTEBOOK_CASES = [
    (name, key, bad)
    for name in NOTEBOOK_NAMES
    for key, default in DEFAULTS[name].items()
    for bad in _bad_values(default)
]


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_every_notebook_parameter_rejects_wrong_types_nan_inf_and_empty_lists(name):
    """The validation of session.setup (the cell after the parameters) rejects each value by name.

    One case per parameter and bad value (``_bad_values``); ranges (sizes >= 1 ...) are each
    notebook's own and are tested by running it (test_pipeline.py).
    """
    # a parameter whose default carries no type (e.g. None) has an explicit spec in its notebook
    inferable = {}
    for key, value in DEFAULTS[name].items():
        try:
            params.infer_spec(key, value)
        except ValueError:
            continue
        inferable[key] = value
    specs = {**params.specs_from_defaults(inferable), **{k: params.OrNone(params.Str()) for k in DEFAULTS[name]
                                                          if k not in inferable}}  # fmt: skip
    cases = [(key, bad) for n, key, bad in NOTEBOOK_CASES if n == name and key in inferable]
    accepted = []
    for key, bad in cases:
        try:
            params.validate({**DEFAULTS[name], key: bad}, specs)
        except params.ParameterError as err:
            assert f"parameter '{key}" in str(err), err
        else:
            accepted.append((key, bad))
    assert cases and not accepted, f"{name}: bad values accepted: {accepted}"


def test_notebook_setup_is_what_validates():
    name = NOTEBOOK_NAMES[0]
    key = next(k for k, v in DEFAULTS[name].items() if isinstance(v, int) and not isinstance(v, bool))
    with pytest.raises(params.ParameterError, match=f"parameter '{key}'"):
        session.setup(name, {**DEFAULTS[name], key: "3"})


def test_a_non_finite_input_makes_a_claim_invalid_and_json_stays_strict(tmp_path):
    checks = claims.Claims("98_good")
    assert checks.prediction("inf", "T0.1", measured=math.inf, op=">=", threshold=0, threshold_source="t") == "invalid"
    assert checks.prediction("nan seed", "T0.1", per_seed=[1.0, math.nan], op=">=", threshold=0,
                             threshold_source="t") == "invalid"  # fmt: skip
    path = checks.save(tmp_path)
    data = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert [c["verdict"] for c in data["claims"]] == ["invalid", "invalid"] and data["claims"][0]["measured"] is None
    with pytest.raises(AssertionError, match="not all finite"):
        checks.assert_valid()
