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
        ({"tau": 0.0}, r"parameter 'tau': expected a finite number > 0.0"),
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


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_numbers_are_rejected(value):
    with pytest.raises(params.ParameterError, match="parameter 'tau': expected a finite number"):
        params.validate(namespace(tau=value), SPEC)


def test_specs_inferred_from_defaults():
    defaults = {"n": 3, "tau": 0.1, "flag": False, "name": "relu", "taus": [0.1, 1], "sizes": [2, 4]}
    specs = params.specs_from_defaults(defaults, ranges={"n": params.Int(min=1)})
    assert specs["n"] == params.Int(min=1)
    assert isinstance(specs["tau"], params.Float) and isinstance(specs["flag"], params.Bool)
    assert specs["taus"] == params.List(params.Float()) and specs["sizes"] == params.List(params.Int())
    with pytest.raises(ValueError, match="parameter 'mnist_dir': cannot infer a type"):
        params.specs_from_defaults({"mnist_dir": None})
    with pytest.raises(ValueError, match=r"ranges: \['nn'\] are not parameters"):
        params.specs_from_defaults(defaults, ranges={"nn": params.Int()})
    assert params.OrNone(params.Str()).check("mnist_dir", None) is None


def test_claims_kinds_intervals_and_json(tmp_path, capsys):
    c = claims.Claims("99_test")
    assert c.identity("small error", "T0.1", measured=1e-12, op="<=", threshold=1e-8, threshold_source="round-off")
    assert not c.prediction("big enough", "T1.1", measured=0.5, op=">=", threshold=0.9, threshold_source="theory")
    assert not c.implementation("nan never passes", "T0.2", measured=float("nan"), op="<=", threshold=1.0,
                                threshold_source="x")  # fmt: skip
    # per-seed: the mean passes but the interval's lower bound does not
    assert not c.prediction("noisy gain", "T2.1", per_seed=[0.9, -0.5, 1.0, 0.8], op=">", threshold=0.0,
                            threshold_source="sign")  # fmt: skip
    assert c.prediction("solid gain", "T2.1", per_seed=[0.9, 0.7, 1.0, 0.8], op=">", threshold=0.0,
                        threshold_source="sign")  # fmt: skip
    assert c.prediction(
        "exact count", "T1.2", per_seed=[8, 8, 8], op="==", threshold=8, threshold_source="one per cluster"
    )
    assert not c.prediction("one seed off", "T1.2", per_seed=[8, 7, 8], op="==", threshold=8,
                            threshold_source="one per cluster")  # fmt: skip
    c.finding("paper number", "T3.5", per_seed=[0.7, 0.8], expected=">= 0.9", note="differs because ...")
    c.report()
    out = capsys.readouterr().out
    assert out.index("Predictions") < out.index("Identities") < out.index("Findings")
    assert "PASS  T0.1  small error" in out and "FAIL  T1.1  big enough" in out
    assert "2/5 predictions hold; 1/2 checks hold; 1 findings" in out
    data = json.loads(c.save(tmp_path).read_text())
    assert claims.schema_errors(data) == []
    by_name = {x["name"]: x for x in data["claims"]}
    assert by_name["nan never passes"]["measured"] is None  # strict JSON: no NaN
    assert by_name["noisy gain"]["tested"] == "interval lower bound" and by_name["noisy gain"]["interval"][0] < 0
    assert by_name["exact count"]["tested"] == "every seed"
    with pytest.raises(AssertionError, match="T1.1 big enough: measured 0.5 \\(value\\), needs >= 0.9"):
        c.assert_all()
    with pytest.raises(ValueError, match="op"):
        c.prediction("x", "T1.1", measured=1, op="=<", threshold=1, threshold_source="x")
    with pytest.raises(ValueError, match="twice"):
        c.identity("small error", "T0.1", measured=1, op="==", threshold=1, threshold_source="x")
    with pytest.raises(ValueError, match="statement id"):
        c.prediction("y", "1.1", measured=1, op="==", threshold=1, threshold_source="x")
    with pytest.raises(ValueError, match="threshold_source"):
        c.prediction("y", "T1.1", measured=1, op="==", threshold=1, threshold_source=" ")
    with pytest.raises(ValueError, match="exactly one of measured"):
        c.prediction("y", "T1.1", measured=1, per_seed=[1], op="==", threshold=1, threshold_source="x")


def test_interval_is_deterministic_and_contains_the_mean():
    values = [0.1, 0.4, 0.35, 0.2, 0.3, 0.25, 0.5, 0.15]
    mean, low, high = claims.interval(values)
    assert (mean, low, high) == claims.interval(values)
    assert low < mean < high and low >= min(values) and high <= max(values)
    assert claims.interval([2.0]) == (2.0, 2.0, 2.0)


def test_schema_errors_catch_missing_fields():
    bad = {"notebook": "x", "claims": [{"name": "a", "measured": 1, "pass": True}], "findings": []}
    assert any("missing or unexpected" in e for e in claims.schema_errors(bad))
