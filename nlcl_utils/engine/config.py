"""The settings every network the engine trains shares: architecture, loss and optimizer.

:class:`NetworkSettings` holds them once, with their defaults (the paper's main setting) and
checks; :class:`~nlcl_utils.engine.train.TokenConfig` (token task) and
:class:`~nlcl_utils.engine.image_train.ImageConfig` (images) inherit them and add their own data
fields. ``nlcl tokens`` builds its flags from these fields (:func:`nlcl_utils.settings.add_flags`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nlcl_utils.checks import SettingError, require_bool, require_choice, require_int, require_number
from nlcl_utils.engine.activations import ACTIVATION_NAMES, LEAKY_SLOPE
from nlcl_utils.engine.models import LOSS_NAMES
from nlcl_utils.settings import setting

DTYPES = {"float32": torch.float32, "float64": torch.float64}

# What the network is built from (keyword options of both networks), in this order.
NETWORK_OPTIONS = ("activation", "slope", "bn", "bn_mean_grad", "bn_var_grad", "bn_eps", "bn_scale", "loss", "tau")


def check_optimizer(steps: object, lr: object, momentum: object, weight_decay: object) -> None:
    """Raise SettingError naming a bad optimizer setting (SGD with momentum and weight decay)."""
    require_int("steps", steps, 0)
    require_number("lr", lr, 0.0)
    require_number("momentum", momentum, 0.0, 1.0, high_open=True)
    require_number("weight_decay", weight_decay, 0.0)


@dataclass(frozen=True)
class NetworkSettings:
    """Architecture, loss and optimizer of a receptive-field network (defaults: the paper's)."""

    beta: float = setting(5, "over-parameterization: M = beta * P filters per receptive field")
    out_dim: int = setting(50, "output dimension of the top layer")
    activation: str = setting("relu", "activation h of the hidden units", choices=ACTIVATION_NAMES)
    slope: float = setting(LEAKY_SLOPE, "negative slope of leaky_relu (the reference code's)")
    bn: bool = setting(True, "BatchNorm on the hidden units")
    bn_mean_grad: bool = setting(True, "gradient through the BN batch mean")
    bn_var_grad: bool = setting(False, "gradient through the BN batch variance")
    bn_eps: float = setting(1e-5, "BN epsilon added to the batch variance", flag=False)
    bn_scale: bool = setting(True, "divide by the batch standard deviation (--no-bn-scale: mean-only BN)")
    loss: str = setting("infonce", "contrastive loss (quadratic_tau: quadratic with 1/tau)", choices=LOSS_NAMES)
    tau: float = setting(0.1, "InfoNCE temperature")
    lr: float = setting(0.02, "SGD learning rate")
    momentum: float = setting(0.9, "SGD momentum, in [0, 1)")
    weight_decay: float = setting(5e-3, "SGD weight decay")
    batch_size: int = setting(128, "pairs per batch (each pair's negatives are the batch's other samples)")
    steps: int = setting(5000, "SGD steps")
    dtype: str = setting("float32", "floating-point type of the run", choices=tuple(DTYPES))

    def validate_network(self, min_beta: float = 0.0) -> None:
        """Raise SettingError naming the first bad network, loss or optimizer setting."""
        require_choice("dtype", self.dtype, DTYPES)
        largest = torch.finfo(DTYPES[self.dtype]).max
        for name in ("beta", "slope", "bn_eps", "tau", "lr", "momentum", "weight_decay"):
            if abs(require_number(name, getattr(self, name))) > largest:
                raise SettingError(
                    f"{name}: must be a finite number representable in {self.dtype}, got {getattr(self, name)!r}"
                )
        if min_beta > 0:
            require_number("beta", self.beta, min_beta, rule=" (M = beta * P filters per RF)")
        else:
            require_number("beta", self.beta, 0.0, low_open=True)
        require_int("out_dim", self.out_dim, 1)
        require_choice("activation", self.activation, ACTIVATION_NAMES)
        require_choice("loss", self.loss, LOSS_NAMES)
        require_number("tau", self.tau, 0.0, low_open=True)
        require_int("batch_size", self.batch_size, 2)
        require_number("slope", self.slope, 0.0, 1.0)
        require_number("bn_eps", self.bn_eps, 0.0, low_open=True)
        for name in ("bn", "bn_mean_grad", "bn_var_grad", "bn_scale"):
            require_bool(name, getattr(self, name))
        if self.bn_var_grad and not self.bn_scale:
            why = "a mean-only BN (bn_scale=False) has no variance to pass gradient through"
            raise SettingError(f"bn_var_grad: {why}")
        check_optimizer(self.steps, self.lr, self.momentum, self.weight_decay)

    def optimizer_options(self) -> dict:
        """Keyword options of :func:`nlcl_utils.engine.train.train` (lr, momentum, weight decay)."""
        return {"lr": self.lr, "momentum": self.momentum, "weight_decay": self.weight_decay}

    def network_options(self) -> dict:
        """Keyword options of the networks' ``init`` (activation, BN, loss) for these settings."""
        return {name: getattr(self, name) for name in NETWORK_OPTIONS}
