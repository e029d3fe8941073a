"""A claims.json that was edited after the run differs from the executed one, and ``make test``
compares them after nbval."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nlcl_utils.notebook import claims
from nlcl_utils.pipeline import reproduce

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------
# A tampered claims.json is noticed
# ------------------------------------------------------------------------------------------


def _tampered(kind: str) -> tuple[dict, dict]:
    checks = claims.Claims("98_good")
    checks.prediction("a", "T0.1", per_seed=[1.0, 2.0, 3.0], op=">=", threshold=0, threshold_source="t")
    checks.identity("b", "T0.2", measured=1e-12, op="<=", threshold=1e-10, threshold_source="t")
    executed = json.loads(json.dumps(checks.to_dict()))
    committed = json.loads(json.dumps(executed))
    if kind == "measured":
        committed["claims"][1]["measured"] = 1e-13
    elif kind == "deleted":
        del committed["claims"][0]
    elif kind == "added":
        committed["claims"].append({**committed["claims"][1], "name": "c"})
    elif kind == "threshold":
        committed["claims"][0]["threshold"] = -1
    elif kind == "verdict":
        committed["claims"][0]["verdict"] = "refuted"
    return committed, executed


@pytest.mark.parametrize("kind", ["measured", "deleted", "added", "threshold", "verdict"])
def test_tampered_claims_differ_from_the_executed_ones(kind):
    committed, executed = _tampered(kind)
    assert reproduce.differences(committed, executed, strict=True)
    assert not reproduce.differences(executed, executed, strict=True)
    # on another machine a round-off residual may take other digits below its bound: nothing else may change
    assert bool(reproduce.differences(committed, executed)) == (kind != "measured")


def test_make_test_compares_committed_claims_after_nbval():
    makefile = (ROOT / "Makefile").read_text()
    rule = lambda target: makefile.split(f"\n{target}: ", 1)[1].split("\n\n", 1)[0]
    test = rule("test")
    assert test.startswith("check\n")  # make test = make check, then nbval and the claims
    recipe = rule("check") + test
    assert recipe.index("--nbval") < recipe.index('NLCL_NBVAL_FIGURES="$(NBVAL_FIGURES)"')
    assert '"$(BIN)/nlcl" figures --profile quick' in recipe and recipe.count("-n auto") == 2
    assert "tests/test_claims_reproduced.py" in recipe and "tests/test_reproduce_anywhere.py" in recipe
    assert "verify --nbval-config" in recipe
