"""Library functions reject wrong input with a message naming the parameter, instead of a silent
wrong result; and the shared checks of :mod:`nlcl_utils.checks`."""

from __future__ import annotations

import math
import re

import pytest
import torch

from nlcl_utils import checks, publish
from nlcl_utils.data.tokens import make_tasks
from nlcl_utils.engine import alpha_cl
from nlcl_utils.engine.models import ReceptiveFieldNet
from nlcl_utils.engine.train import TokenConfig
from nlcl_utils.notebook import params

# ------------------------------------------------------------------------------------------
# library functions reject wrong input instead of a silent wrong result
# ------------------------------------------------------------------------------------------


def _net_and_batch():
    config = TokenConfig(vocab=6, locations=3, per_location=2, patterns=4, pattern_len=2, out_dim=4, beta=1)
    tasks = make_tasks(config.task_spec(), [1], dtype=torch.float64)
    net = ReceptiveFieldNet.init([1], tasks.embeddings, 3, 2, 4, dtype=torch.float64)
    tok = torch.zeros(1, 8, 3, dtype=torch.long)
    return net, tok


def _token_id_equal_to_vocab():
    net, tok = _net_and_batch()
    tok2 = tok.clone()
    tok2[0, 0, 0] = 6
    net.loss_and_grads((tok, tok2))


def _float_token_ids():
    net, tok = _net_and_batch()
    net.loss_and_grads((tok.double(), tok.double()))


def _views_of_different_shapes():
    net, tok = _net_and_batch()
    net.loss_and_grads((tok, tok[:, :4]))


F = torch.randn(4, 3, dtype=torch.float64)
ALPHA = torch.rand(4, 4, dtype=torch.float64)

LIBRARY_CASES = [
    ("token id = V", _token_id_equal_to_vocab, ValueError, r"token ids must be in \[0, V=6\)"),
    ("float token ids", _float_token_ids, TypeError, "integer tensor of token ids"),
    ("views of different shapes", _views_of_different_shapes, ValueError, "tok2: expected shape"),
    ("bn given as a string", lambda: TokenConfig(bn="no"), ValueError, "bn: must be True or False"),
    ("bn_scale as 0", lambda: TokenConfig(bn_scale=0), ValueError, "bn_scale: must be True or False"),
    ("beta inf", lambda: TokenConfig(beta=math.inf), ValueError, "beta: must be a finite number"),
    ("lr nan", lambda: TokenConfig(lr=math.nan), ValueError, "lr: must be a finite number"),
    ("lr beyond float32", lambda: TokenConfig(lr=1e300), ValueError, "representable in float32"),
    ("tau as a string", lambda: TokenConfig(tau="0.1"), ValueError, "tau: must be a finite number"),
    ("energy: alpha of another batch", lambda: alpha_cl.energy(F, F, torch.rand(5, 5)), ValueError, "alpha"),
    (
        "energy: a 1 x 1 alpha would broadcast as a scalar",
        lambda: alpha_cl.energy(F, F, torch.ones(1, 1, dtype=torch.float64)),
        ValueError,
        r"alpha: expected shape \[\.\.\., 4, 4\]",
    ),
    (
        "energy: a vector alpha would broadcast over rows",
        lambda: alpha_cl.energy(F, F, torch.ones(4, dtype=torch.float64)),
        ValueError,
        "alpha: expected shape",
    ),
    ("energy: integer features", lambda: alpha_cl.energy(F.long(), F.long(), ALPHA), TypeError, "f1, f2"),
    ("energy: views differ", lambda: alpha_cl.energy(F, F[:3], ALPHA), ValueError, "same shape"),
    (
        "covariance: b of another batch size",
        lambda: alpha_cl.contrastive_covariance(F, F, ALPHA, F[:3], F[:3]),
        ValueError,
        "the same",
    ),
    (
        "covariance: alpha's replicas do not match the features' replicas",
        lambda: alpha_cl.contrastive_covariance(F.expand(3, 4, 3), F.expand(3, 4, 3), ALPHA.expand(2, 4, 4)),
        ValueError,
        "leading dims that broadcast",
    ),
    (
        "kernel variances: NaN feature",
        lambda: alpha_cl.kernel_local_variances(torch.tensor([[1.0, math.nan], [0.5, 1.0]]), torch.ones(2, 2)),
        ValueError,
        "NaN or inf",
    ),
    (
        "kernel variances: mismatched N",
        lambda: alpha_cl.kernel_local_variances(torch.ones(3, 2), torch.ones(2, 2)),
        ValueError,
        "same N",
    ),
]


@pytest.mark.parametrize("case, call, error, message", LIBRARY_CASES, ids=[c[0] for c in LIBRARY_CASES])
def test_library_rejects_wrong_input(case, call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_valid_input_still_works():
    net, tok = _net_and_batch()
    loss, _ = net.loss_and_grads((tok, tok))
    assert torch.isfinite(loss).all()
    assert torch.isfinite(alpha_cl.energy(F, F, ALPHA))
    shared = alpha_cl.contrastive_covariance(F.expand(3, 4, 3), F.expand(3, 4, 3), ALPHA)  # one alpha, 3 replicas
    assert torch.allclose(shared, alpha_cl.contrastive_covariance(F, F, ALPHA).expand(3, 3, 3))


# ------------------------------------------------------------------------------------------
# the shared checks
# ------------------------------------------------------------------------------------------


def test_require_int_names_the_parameter_and_its_bounds():
    assert checks.require_int("steps", 3, 0) == 3
    for bad, message in (
        (True, "steps: must be an integer, got True"),
        (2.0, "steps: must be an integer, got 2.0"),
        (-1, "steps: must be an integer >= 0, got -1"),
    ):
        with pytest.raises(checks.SettingError, match=re.escape(message)):
            checks.require_int("steps", bad, 0)
    with pytest.raises(ValueError, match=re.escape("redraw: must be an integer in [0, 5] (K - L), got 9")):
        checks.require_int("redraw", 9, 0, 5, " (K - L)")


def test_require_number_rejects_non_finite_and_open_bounds():
    assert checks.require_number("tau", 2, 0.0, low_open=True) == 2.0
    for bad in (math.nan, math.inf, "1", None, False):
        with pytest.raises(checks.SettingError, match="tau: must be a finite number"):
            checks.require_number("tau", bad)
    with pytest.raises(checks.SettingError, match=re.escape("tau: must be a number > 0, got 0")):
        checks.require_number("tau", 0.0, 0.0, low_open=True)
    with pytest.raises(checks.SettingError, match=re.escape("momentum: must be a number >= 0 and < 1, got 1")):
        checks.require_number("momentum", 1.0, 0.0, 1.0, high_open=True)


def test_require_choice_lists_the_choices_and_suggests_the_closest():
    assert checks.require_choice("loss", "infonce", ("infonce", "quadratic")) == "infonce"
    with pytest.raises(checks.SettingError) as err:
        checks.require_choice("loss", "infonse", ("infonce", "quadratic"))
    assert str(err.value) == "loss: unknown 'infonse'; allowed: infonce, quadratic; did you mean 'infonce'?"
    assert checks.did_you_mean("zzz", ("infonce",)) == ""
    with pytest.raises(checks.SettingError, match="bn: must be True or False, got 1"):
        checks.require_bool("bn", 1)


def test_every_package_error_shares_one_base_and_keeps_its_builtin_kind():
    from nlcl_utils.data.images import IDXError
    from nlcl_utils.experiments.sweep import GridError, SweepFailed
    from nlcl_utils.pipeline.regenerate import RegenerateError

    for error, builtin in (
        (checks.SettingError, ValueError),
        (params.ParameterError, ValueError),
        (GridError, ValueError),
        (IDXError, ValueError),
        (RegenerateError, RuntimeError),
        (SweepFailed, RuntimeError),
        (publish.LockBusy, RuntimeError),
    ):
        assert issubclass(error, checks.NlclError) and issubclass(error, builtin), error
