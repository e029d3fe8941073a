"""`nlcl tokens`: flags, JSON output, clear errors."""

import json

import pytest

from nlcl_utils.cli.tokens import main
from nlcl_utils.seeds import parse_seeds


def test_parse_seeds():
    assert parse_seeds("1-8") == list(range(1, 9))
    assert parse_seeds("3,1") == [1, 3]
    assert parse_seeds("1-2,10") == [1, 2, 10]
    for bad in ("", "a-b", "5-1", "-3", "1,,2", "3,1,3", "1-3,2"):
        with pytest.raises(ValueError, match="seeds"):
            parse_seeds(bad)


def test_main_writes_json(tmp_path, capsys):
    out = tmp_path / "sub" / "results.json"
    argv = [
        "--seeds",
        "1-2",
        "--steps",
        "30",
        "--batch-size",
        "32",
        "--beta",
        "2",
        "--no-bn",
        "--activation",
        "leaky_relu",
        "--loss",
        "quadratic",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert main(argv) == 0
    data = json.loads(out.read_text())
    assert set(data) >= {"config", "runs", "cpu_seconds", "wall_seconds"}
    assert data["config"]["bn"] is False and data["config"]["loss"] == "quadratic" and data["config"]["steps"] == 30
    assert [r["seed"] for r in data["runs"]] == [1, 2]
    for run in data["runs"]:
        assert {"chi_plus", "chi_minus", "final_loss", "nan"} <= set(run)
        assert 0 <= run["chi_minus"] <= 1 and run["nan"] is False
    printed = capsys.readouterr().out
    assert "chi+" in printed and "mean chi+" in printed


@pytest.mark.parametrize(
    "argv, name",
    [
        (["--per-location", "30"], "per_location"),
        (["--pattern-len", "11"], "pattern_len"),
        (["--beta", "0.5"], "beta"),
        (["--steps", "-3"], "steps"),
        (["--seeds", "x"], "seeds"),
    ],
)
def test_bad_values_exit_2_naming_the_parameter(argv, name, capsys):
    assert main(argv + ["--no-progress"]) == 2
    assert name in capsys.readouterr().err


def test_unknown_choice_is_rejected_by_argparse(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--activation", "swish"])
    assert exc.value.code == 2
    assert "activation" in capsys.readouterr().err
