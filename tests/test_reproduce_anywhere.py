"""Reproduction on another processor: the comparison rules, the interval's coverage, and a real run.

The last test re-runs the quick profile of a few notebooks with another processor's kernels
(:func:`nlcl_utils.pipeline.reproduce.perturbed_env`) and compares it with the quick run ``make test``
made just before (``$NLCL_QUICK_OUTPUTS``): the results must reproduce within tolerance, with the
same verdicts, while their bytes differ — so the test shows that it exercised the tolerance.
"""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nlcl_utils.notebook import claims
from nlcl_utils.pipeline import reproduce

ROOT = Path(__file__).resolve().parents[1]
QUICK = os.environ.get("NLCL_QUICK_OUTPUTS")
# Training (00's token network, 02's receptive-field networks), eigen-solvers (02's driving
# matrices, 00's kernel fits) and per-seed intervals, at quick-profile cost.
PERTURBED_NOTEBOOKS = ("00_alpha_cl_foundations", "02_two_layer_linear_no_specialization")


def _recorded() -> dict:
    c = claims.Claims("99_test")
    c.prediction("gain", "T1.1", per_seed=[0.9, 0.8, 0.85, 0.95, 0.9], op=">=", threshold=0.5, threshold_source="t")
    c.prediction("count", "T1.2", measured=8, op="==", threshold=8, threshold_source="one per cluster")
    c.identity("residual", "T0.1", measured=3e-16, op="<=", threshold=1e-10, threshold_source="round-off")
    c.prediction("fraction", "T1.3", measured=0.40, op="<=", threshold=0.5, threshold_source="t", tolerance=0.05,
                 tolerance_source="3 binomial standard errors")  # fmt: skip
    c.finding("spread", "T1.4", measured=2.0, expected="x", note="y")
    return json.loads(json.dumps(c.to_dict()))


def _claim(data: dict, name: str) -> dict:
    return next(c for c in data["claims"] + data["findings"] if c["name"] == name)


def test_identical_results_reproduce_at_both_levels():
    data = _recorded()
    assert reproduce.differences(data, copy.deepcopy(data)) == []
    assert reproduce.differences(data, copy.deepcopy(data), strict=True) == []


def test_round_off_and_estimates_move_within_their_tolerance():
    old, new = _recorded(), _recorded()
    _claim(new, "residual")["measured"] = 7e-15  # other digits, still below the bound
    _claim(new, "gain")["measured"] = 0.87  # inside the committed interval
    _claim(new, "fraction")["measured"] = 0.43  # within the stated tolerance
    _claim(new, "spread")["measured"] = 2.0 * (1 + 1e-5)  # within the default relative tolerance
    assert reproduce.differences(old, new) == []
    assert len(reproduce.differences(old, new, strict=True)) == 4
    assert reproduce.bytes_differ(old, new) == 4


@pytest.mark.parametrize(
    ("name", "field", "value", "problem"),
    [
        ("gain", "measured", 0.5, "value outside tolerance"),
        ("fraction", "measured", 0.46, "value outside tolerance"),
        ("spread", "measured", 2.01, "value outside tolerance"),
        ("count", "verdict", "refuted", "verdict changed"),
        ("gain", "threshold", 0.6, "threshold differs"),
        ("residual", "verdict", "fails", "verdict changed"),
    ],
)
def test_a_change_beyond_tolerance_is_reported(name, field, value, problem):
    old, new = _recorded(), _recorded()
    _claim(new, name)[field] = value
    found = reproduce.differences(old, new)
    assert len(found) == 1 and problem in found[0] and repr(name) in found[0]


def test_a_claim_appearing_or_disappearing_is_reported():
    old, new = _recorded(), _recorded()
    new["claims"] = new["claims"][1:]
    assert any("not reported now" in p for p in reproduce.differences(old, new))
    assert any("missing from the committed file" in p for p in reproduce.differences(new, old))


def test_student_t_interval_has_nominal_coverage_at_five_and_eight_seeds():
    rng = np.random.default_rng(7)
    for n in (5, 8):
        samples = rng.normal(0.3, 0.1, size=(4000, n))
        covered = 0
        for row in samples:
            _, low, high = claims.interval(row)
            covered += low <= 0.3 <= high
        # 4000 draws: the standard error of a 95% coverage is 0.0034
        assert abs(covered / 4000 - 0.95) < 0.015, (n, covered / 4000)


def test_verdicts_of_a_prediction():
    c = claims.Claims("99_test")
    assert c.prediction("a", "T1.1", per_seed=[0.9, 0.95, 0.92], op=">", threshold=0.5, threshold_source="t") == "holds"
    assert c.prediction("b", "T1.1", per_seed=[0.1, 0.15, 0.12], op=">", threshold=0.5, threshold_source="t") == (
        "refuted"
    )
    assert c.prediction("c", "T1.1", per_seed=[0.1, 0.9, 0.5], op=">", threshold=0.5, threshold_source="t") == (
        "undecided"
    )
    assert c.prediction("d", "T1.1", per_seed=[0.1, 0.15], op="<", threshold=0.5, threshold_source="t") == "holds"
    assert c.counts() == {"holds": 2, "refuted": 1, "undecided": 1}
    c.assert_valid()  # refuted and undecided predictions are results, not errors


def test_perturbed_env_changes_the_kernels_but_never_a_set_openblas_core():
    env = reproduce.perturbed_env({"PATH": "/bin"})
    assert env["ATEN_CPU_CAPABILITY"] == "default" and env["MKL_CBWR"] == "COMPATIBLE"
    assert "OPENBLAS_CORETYPE" in env
    kept = reproduce.perturbed_env({"OPENBLAS_CORETYPE": "Zen"})
    assert kept["OPENBLAS_CORETYPE"] == "Zen"


@pytest.mark.skipif(not QUICK, reason="set NLCL_QUICK_OUTPUTS to a quick-profile run (make test does)")
def test_another_processors_kernels_reproduce_the_quick_results_within_tolerance():
    only = [a for name in PERTURBED_NOTEBOOKS for a in ("--only", name)]
    cmd = [sys.executable, "-m", "nlcl_utils.cli", "figures", "--profile", "quick", *only, "--into", "quick-perturbed"]
    done = subprocess.run(cmd, cwd=ROOT, env=reproduce.perturbed_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    problems, differing = [], 0
    for name in PERTURBED_NOTEBOOKS:
        old = json.loads(reproduce.executed_claims(Path(QUICK), name).read_text())
        new = json.loads(reproduce.executed_claims(ROOT / "build" / "quick-perturbed", name).read_text())
        problems += [f"{name}: {p}" for p in reproduce.differences(old, new)]
        differing += reproduce.bytes_differ(old, new)
    assert not problems, "\n".join(problems)
    assert differing > 0, "no value changed under the perturbed kernels: the test did not exercise any tolerance"
