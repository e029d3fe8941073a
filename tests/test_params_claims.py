"""Notebook parameter validation and claim bookkeeping."""

import json
import math
import types

import numpy as np
import pytest

from nlcl_utils.notebook import claims, params

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
    assert c.identity("small error", "T0.1", measured=1e-12, op="<=", threshold=1e-8, threshold_source="round-off") == (
        "holds"
    )
    assert c.prediction("big enough", "T1.1", measured=0.5, op=">=", threshold=0.9, threshold_source="theory") == (
        "refuted"
    )
    assert c.implementation("nan is invalid", "T0.2", measured=float("nan"), op="<=", threshold=1.0,
                            threshold_source="x") == "invalid"  # fmt: skip
    # per-seed: the mean clears the threshold but the interval straddles it
    assert c.prediction("noisy gain", "T2.1", per_seed=[0.9, -0.5, 1.0, 0.8], op=">", threshold=0.0,
                        threshold_source="sign") == "undecided"  # fmt: skip
    assert c.prediction("solid gain", "T2.1", per_seed=[0.9, 0.7, 1.0, 0.8], op=">", threshold=0.0,
                        threshold_source="sign") == "holds"  # fmt: skip
    assert (
        c.prediction(
            "exact count", "T1.2", per_seed=[8, 8, 8], op="==", threshold=8, threshold_source="one per cluster"
        )
        == "holds"
    )
    assert c.prediction("one seed off", "T1.2", per_seed=[8, 7, 8], op="==", threshold=8,
                        threshold_source="one per cluster") == "refuted"  # fmt: skip
    c.finding("paper number", "T3.5", per_seed=[0.7, 0.8], expected=">= 0.9", note="differs because ...")
    c.report()
    out = capsys.readouterr().out
    assert out.index("Predictions") < out.index("Identities") < out.index("Findings")
    assert "HOLDS     T0.1  small error: <= 1e-08 (round-off bound)" in out
    assert "REFUTED   T1.1  big enough: 0.5 >= 0.9" in out
    assert "predictions: 2 hold, 2 refuted, 1 undecided; checks: 1/2 hold; 1 findings" in out
    data = json.loads(c.save(tmp_path).read_text())
    assert claims.schema_errors(data) == []
    by_name = {x["name"]: x for x in data["claims"]}
    assert by_name["nan is invalid"]["measured"] is None  # strict JSON: no NaN
    assert by_name["noisy gain"]["tested"] == "interval" and by_name["noisy gain"]["interval"][0] < 0
    assert by_name["exact count"]["tested"] == "every seed"
    with pytest.raises(AssertionError, match="T0.2 nan is invalid: inputs are not all finite"):
        c.assert_valid()
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
    with pytest.raises(ValueError, match="tolerance"):
        c.prediction("z", "T1.1", measured=1, op="==", threshold=1, threshold_source="x", tolerance=-1,
                     tolerance_source="y")  # fmt: skip


def test_a_failed_check_raises_but_a_refuted_prediction_does_not(tmp_path):
    c = claims.Claims("99_test")
    c.prediction("refuted", "T1.1", measured=0.1, op=">=", threshold=0.9, threshold_source="theory")
    c.finish(tmp_path)  # no exception: a refuted prediction is a result
    c.identity("broken", "T0.1", measured=1e-3, op="<=", threshold=1e-10, threshold_source="round-off")
    with pytest.raises(AssertionError, match="T0.1 broken: check fails"):
        c.finish(tmp_path)


def test_reduced_scale_predictions_are_reported_only(capsys):
    c = claims.Claims("99_test", full_scale=False)
    c.prediction("p", "T1.1", measured=0.95, op=">=", threshold=0.9, threshold_source="theory")
    c.identity("i", "T0.1", measured=0.0, op="<=", threshold=1e-10, threshold_source="round-off")
    assert c.counts() == {"holds": 0, "refuted": 0, "undecided": 0}
    assert [x.scale for x in c.claims] == ["reduced", "full"]
    c.report()
    assert "[reduced run: reported only]" in capsys.readouterr().out


def test_interval_is_the_student_t_interval_of_the_mean():
    values = [0.1, 0.4, 0.35, 0.2, 0.3, 0.25, 0.5, 0.15]
    mean, low, high = claims.interval(values)
    sem = np.std(values, ddof=1) / np.sqrt(len(values))
    assert mean == pytest.approx(np.mean(values)) and high - mean == pytest.approx(2.3646243 * sem, rel=1e-6)
    assert claims.interval([2.0, 2.0]) == (2.0, 2.0, 2.0)
    assert claims.interval([2.0])[1:] == (-math.inf, math.inf)


def test_round_off_is_printed_as_a_bound_and_estimates_with_supported_digits():
    assert claims.bound(3.1e-16, 1e-10) == "< 1e-10"
    assert "NOT below" in claims.bound(1e-3, 1e-10) and "NOT below" in claims.bound(float("nan"), 1e-10)
    assert claims.estimate(0.4812, 0.39, 0.57) == "0.48 [0.39, 0.57]"


def test_schema_errors_catch_missing_fields():
    bad = {"notebook": "x", "claims": [{"name": "a", "measured": 1, "pass": True}], "findings": []}
    assert any("missing or unexpected" in e for e in claims.schema_errors(bad))
