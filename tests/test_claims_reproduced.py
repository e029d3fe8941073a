"""The committed claims are what the notebooks report when executed (run after nbval).

``make test`` runs nbval with ``NLCL_FIGURES_DIR=build/nbval-figures``, so each executed
notebook writes its claims.json there; this module then compares those files with the
committed ``figures/NN_name/claims.json`` and with the manifest. A hand-edited measured
value, a deleted or added claim, a changed threshold: each is a difference. Without
``NLCL_NBVAL_FIGURES`` (the folder nbval wrote into) the comparison is skipped.
"""

import json
import os
from pathlib import Path

import pytest

from nlcl_utils import regenerate

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_NAMES = regenerate.discover(ROOT / "notebooks")
EXECUTED = os.environ.get("NLCL_NBVAL_FIGURES")


@pytest.mark.skipif(not EXECUTED, reason="set NLCL_NBVAL_FIGURES to the folder nbval wrote into (make test does)")
@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_committed_claims_equal_executed_claims(name):
    executed_path = Path(EXECUTED) / name / "claims.json"
    assert executed_path.exists(), f"{executed_path} missing: nbval did not execute {name} to its end"
    committed = json.loads((ROOT / "figures" / name / "claims.json").read_text())
    executed = json.loads(executed_path.read_text())
    problems = regenerate.claims_differences(committed, executed)
    assert not problems, f"{name}: committed claims.json differs from the executed notebook:\n" + "\n".join(problems)
    manifest = json.loads((ROOT / "figures" / "MANIFEST.json").read_text())["notebooks"][name]
    from_manifest = {"notebook": name, "claims": manifest["claims"], "findings": manifest["findings"]}
    problems = regenerate.claims_differences(from_manifest, executed)
    assert not problems, f"{name}: MANIFEST.json's claims differ from the executed notebook:\n" + "\n".join(problems)
