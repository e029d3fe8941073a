"""The settings every network the engine trains shares: architecture, loss and optimizer.

:class:`NetworkSettings` holds them once, with their defaults (the paper's main setting) and
checks; :class:`~nlcl_utils.engine.train.TokenConfig` (token task) and
:class:`~nlcl_utils.engine.image_train.ImageConfig` (images) inherit them and add their own data
fields. ``nlcl tokens`` builds its flags from these fields (:func:`nlcl_utils.settings.add_flags`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from nlcl_utils.checks import SettingError, require_choice, require_int, require_number
from nlcl_utils.engine.activations import ACTIVATION_NAMES, LEAKY_SLOPE
from nlcl_utils.engine.models import LOSS_NAMES
from nlcl_utils.settings import check_fields, setting

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

    beta: float = setting(5, "over-parameterization: M = beta * P filters per receptive field", low=0, low_open=True)
    out_dim: int = setting(50, "output dimension of the top layer", low=1)
    activation: str = setting("relu", "activation h of the hidden units", choices=ACTIVATION_NAMES)
    slope: float = setting(LEAKY_SLOPE, "negative slope of leaky_relu (the reference code's)", low=0, high=1)
    bn: bool = setting(True, "BatchNorm on the hidden units")
    bn_mean_grad: bool = setting(True, "gradient through the BN batch mean")
    bn_var_grad: bool = setting(False, "gradient through the BN batch variance")
    bn_eps: float = setting(1e-5, "BN epsilon added to the batch variance", flag=False, low=0, low_open=True)
    bn_scale: bool = setting(True, "divide by the batch standard deviation (--no-bn-scale: mean-only BN)")
    loss: str = setting("infonce", "contrastive loss (quadratic_tau: quadratic with 1/tau)", choices=LOSS_NAMES)
    tau: float = setting(0.1, "InfoNCE temperature", low=0, low_open=True)
    lr: float = setting(0.02, "SGD learning rate", low=0)
    momentum: float = setting(0.9, "SGD momentum, in [0, 1)", low=0, high=1, high_open=True)
    weight_decay: float = setting(5e-3, "SGD weight decay", low=0)
    batch_size: int = setting(128, "pairs per batch (each pair's negatives are the batch's other samples)", low=2)
    steps: int = setting(5000, "SGD steps", low=0)
    dtype: str = setting("float32", "floating-point type of the run", choices=tuple(DTYPES))

    def validate_network(self) -> None:
        """Raise SettingError naming the first bad network, loss or optimizer setting."""
        require_choice("dtype", self.dtype, DTYPES)
        largest = torch.finfo(DTYPES[self.dtype]).max
        for name in ("beta", "slope", "bn_eps", "tau", "lr", "momentum", "weight_decay"):
            if abs(require_number(name, getattr(self, name))) > largest:
                value = getattr(self, name)
                raise SettingError(f"{name}: must be a finite number representable in {self.dtype}, got {value!r}")
        shared = {f.name for f in dataclasses.fields(NetworkSettings)}  # as declared here or overridden
        check_fields(self, [f for f in dataclasses.fields(self) if f.name in shared])
        if self.bn_var_grad and not self.bn_scale:
            why = "a mean-only BN (bn_scale=False) has no variance to pass gradient through"
            raise SettingError(f"bn_var_grad: {why}")

    def optimizer_options(self) -> dict:
        """Keyword options of :func:`nlcl_utils.engine.train.train` (lr, momentum, weight decay)."""
        return {"lr": self.lr, "momentum": self.momentum, "weight_decay": self.weight_decay}

    def network_options(self) -> dict:
        """Keyword options of the networks' ``init`` (activation, BN, loss) for these settings."""
        return {name: getattr(self, name) for name in NETWORK_OPTIONS}
