"""The committed claims are what the notebooks report when executed (run after nbval).

``make test`` runs nbval with ``NLCL_FIGURES_DIR=build/nbval-figures``, so each executed
notebook writes its claims.json there; this module then compares those files with the
committed ``figures/NN_name/claims.json`` and with the manifest, at the level that applies
(:func:`nlcl_utils.pipeline.reproduce.level`): bit for bit where the committed outputs were made on this
machine; elsewhere the same claims with the same verdicts and every value within its tolerance.
A hand-edited measured value, a deleted or added claim, a changed threshold or verdict: each is
a difference at both levels. Without ``NLCL_NBVAL_FIGURES`` (the folder nbval wrote into) the
comparison is skipped.
"""

import json
import os
from pathlib import Path

import pytest

from nlcl_utils.pipeline import regenerate, reproduce

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_NAMES = regenerate.discover(ROOT / "notebooks")
EXECUTED = os.environ.get("NLCL_NBVAL_FIGURES")


@pytest.mark.skipif(not EXECUTED, reason="set NLCL_NBVAL_FIGURES to the folder nbval wrote into (make test does)")
@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_committed_claims_reproduce(name):
    executed_path = Path(EXECUTED) / name / "claims.json"
    assert executed_path.exists(), f"{executed_path} missing: nbval did not execute {name} to its end"
    strict = reproduce.level(name) == "strict"
    committed = json.loads((ROOT / "figures" / name / "claims.json").read_text())
    executed = json.loads(executed_path.read_text())
    problems = reproduce.differences(committed, executed, strict=strict)
    how = "bit for bit (same machine)" if strict else "within tolerance (another machine)"
    assert not problems, f"{name}: the executed notebook does not reproduce the committed claims {how}:\n" + "\n".join(
        problems
    )
    manifest = json.loads((ROOT / "figures" / "MANIFEST.json").read_text())["notebooks"][name]
    from_manifest = {"notebook": name, "claims": manifest["claims"], "findings": manifest["findings"]}
    assert reproduce.differences(committed, from_manifest, strict=True) == [], f"{name}: MANIFEST.json is stale"
