"""Settings: each field's default, meaning and allowed values are stated once and reach the Python
API, the ``nlcl tokens`` flags, the networks and the notebooks' parameter ranges unchanged."""

import dataclasses
import inspect

import pytest

from nlcl_utils import checks, settings
from nlcl_utils.cli import tokens as tokens_cli
from nlcl_utils.engine import activations
from nlcl_utils.engine.config import NetworkSettings
from nlcl_utils.engine.image_train import ImageConfig
from nlcl_utils.engine.models import HiddenLayerOptions
from nlcl_utils.engine.train import TokenConfig
from nlcl_utils.notebook import params


def test_the_flags_without_arguments_give_the_default_config():
    args = tokens_cli.build_parser().parse_args([])
    assert tokens_cli.config_from_args(args) == TokenConfig()


def test_every_flagged_field_has_a_flag_and_help():
    parser = tokens_cli.build_parser()
    options = {opt for action in parser._actions for opt in action.option_strings}
    for f in settings.flag_fields(TokenConfig):
        assert "--" + f.name.replace("_", "-") in options, f.name
        assert f.metadata["help"], f.name
    assert "--bn-eps" not in options and "--wildcard-probs" not in options  # declared API-only


def test_one_leaky_relu_slope_everywhere():
    hidden = inspect.signature(HiddenLayerOptions._set_hidden_options).parameters["slope"].default
    act = inspect.signature(activations.get_activation).parameters["slope"].default
    cli = tokens_cli.build_parser().parse_args([]).slope
    assert TokenConfig().slope == ImageConfig().slope == hidden == act == cli == activations.LEAKY_SLOPE


def test_token_and_image_configs_share_the_network_fields():
    shared = [f.name for f in dataclasses.fields(NetworkSettings)]
    for config in (TokenConfig, ImageConfig):
        names = [f.name for f in dataclasses.fields(config)]
        assert names[: len(shared)] == shared  # one flat record, the shared fields first
    assert set(TokenConfig().network_options()) == set(ImageConfig().network_options())


@pytest.mark.parametrize(
    "change, message",
    [
        ({"out_dim": 0}, "out_dim: must be an integer >= 1, got 0"),
        ({"momentum": 1.0}, "momentum: must be a number >= 0 and < 1, got 1"),
        ({"dtype": "float16"}, "dtype: unknown 'float16'; allowed: float32, float64"),
        ({"bn": "yes"}, "bn: must be True or False, got 'yes'"),
        ({"beta": 0.5}, "beta: must be a number >= 1, got 0.5"),
    ],
)
def test_declared_bounds_are_checked(change, message):
    with pytest.raises(checks.SettingError) as err:
        TokenConfig(**change)
    assert str(err.value).startswith(message)


def test_image_config_keeps_its_own_bounds():
    assert ImageConfig(beta=0.5).filters == 5  # images allow beta < 1 (beta * filters_per_beta filters)
    with pytest.raises(checks.SettingError, match="grid: must be an integer >= 1, got 0"):
        ImageConfig(grid=0).validate()  # checked before a run, not at construction


def test_notebook_ranges_come_from_the_declared_bounds():
    ranges = params.ranges_from(TokenConfig, ("batch_size", "tau", "activation"), prefix="pop_")
    assert params.validate({"pop_batch_size": 2, "pop_tau": 0.5, "pop_activation": "relu"}, ranges)
    for bad in ({"pop_batch_size": 1}, {"pop_tau": 0.0}, {"pop_activation": "rellu"}):
        with pytest.raises(params.ParameterError):
            params.validate({"pop_batch_size": 2, "pop_tau": 0.5, "pop_activation": "relu", **bad}, ranges)
    with pytest.raises(ValueError, match="no field 'vocabb'; did you mean 'vocab'"):
        params.ranges_from(TokenConfig, ("vocabb",))
