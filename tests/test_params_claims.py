"""Notebook parameter validation and claim bookkeeping."""

import json
import types

import pytest

from nlcl_utils import claims, params

SPEC = {
    "batch_size": params.Int(min=2),
    "tau": params.Float(min=0.0, min_exclusive=True),
    "activation": params.Choice("relu", "linear"),
    "use_bn": params.Bool(),
    "taus": params.List(params.Float(min=0.0), min_len=1),
}
GOOD = {"batch_size": 8, "tau": 0.1, "activation": "relu", "use_bn": True, "taus": [0.1, 1]}


def namespace(**changes):
    ns = {"torch": types, "__name__": "__main__", "_i1": "x", "In": [], **GOOD, **changes}
    return {k: v for k, v in ns.items() if v is not None}


def test_valid_parameters_pass_and_are_converted():
    p = params.validate(namespace(), SPEC)
    assert p.batch_size == 8 and p.taus == [0.1, 1.0] and isinstance(p.taus[1], float)


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"batch_sise": 8}, r"unknown parameter 'batch_sise'; did you mean 'batch_size'\?"),
        ({"batch_size": -4}, r"parameter 'batch_size': expected an integer >= 2, got -4"),
        ({"batch_size": 8.5}, r"parameter 'batch_size': expected an integer >= 2, got 8.5 \(float\)"),
        ({"batch_size": True}, r"parameter 'batch_size'"),
        ({"tau": 0.0}, r"parameter 'tau': expected a number > 0.0"),
        ({"tau": "0.1"}, r"parameter 'tau'.*\(str\)"),
        (
            {"activation": "rellu"},
            r"parameter 'activation': expected one of 'relu', 'linear', got 'rellu' \(did you mean 'relu'\?\)",
        ),
        ({"use_bn": 1}, r"parameter 'use_bn': expected True or False"),
        ({"taus": []}, r"parameter 'taus': expected a list of at least 1"),
        ({"taus": [0.1, -1.0]}, r"parameter 'taus\[1\]'"),
    ],
)
def test_bad_parameters_name_the_parameter(changes, message):
    with pytest.raises(params.ParameterError, match=message):
        params.validate(namespace(**changes), SPEC)


def test_missing_parameter():
    ns = namespace()
    del ns["tau"]
    with pytest.raises(params.ParameterError, match="parameter 'tau' is missing"):
        params.validate(ns, SPEC)


def test_claims_pass_fail_and_json(tmp_path, capsys):
    c = claims.Claims("99_test")
    assert c.check("small error", 1e-12, 1e-8, "<=")
    assert not c.check("big enough", 0.5, 0.9, ">=")
    assert not c.check("nan never passes", float("nan"), 1.0, "<=")
    c.finding("paper number", 0.7, expected=">= 0.9", note="differs because ...")
    c.report()
    out = capsys.readouterr().out
    assert "PASS  small error" in out and "FAIL  big enough" in out and "1/3 claims hold" in out
    data = json.loads(c.save(tmp_path).read_text())
    assert data["notebook"] == "99_test"
    assert [x["pass"] for x in data["claims"]] == [True, False, False]
    assert data["findings"][0]["expected"] == ">= 0.9"
    with pytest.raises(AssertionError, match="big enough: measured 0.5, needs >= 0.9"):
        c.assert_all()
    with pytest.raises(ValueError, match="op"):
        c.check("x", 1, 1, "=<")
    with pytest.raises(ValueError, match="twice"):
        c.check("small error", 1, 1, "==")
