"""The image experiment: configs x seeds, trained in lockstep with the SGD loop of :mod:`nlcl_utils.engine.train`.

:class:`ImageConfig` holds every setting (network, loss, optimizer, augmentation);
:func:`run_images` builds one :class:`nlcl_utils.engine.image_net.DenseReceptiveFieldNet` per config
for the seeds (one replica per seed: its init and its data stream depend on that seed only),
wraps them in a :class:`NetworkGroup` so that every config sees the same two-view batches from
one :class:`nlcl_utils.data.images.ViewSampler`, trains the group with
:func:`nlcl_utils.engine.train.train` (SGD, momentum, weight decay, NaN guard) and returns one
:class:`ImageRun` per config. ``TrainResult.cpu_seconds`` of each run is the whole group's.

Defaults follow the token experiment of the same network (BN with gradients through the batch
mean but not the variance, no affine BN, InfoNCE tau = 0.1, SGD lr 0.02, momentum 0.9, weight
decay 5e-3, batch 128, 50 outputs) and M = 10 * beta filters per receptive field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from nlcl_utils.checks import SettingError
from nlcl_utils.data.images import Augmentation, ImageData, ViewSampler, split_fields
from nlcl_utils.engine.config import DTYPES, NetworkSettings
from nlcl_utils.engine.image_net import DenseReceptiveFieldNet
from nlcl_utils.engine.train import TrainResult, train
from nlcl_utils.seeds import check_seeds
from nlcl_utils.settings import check_fields, setting

Tensor = torch.Tensor


@dataclass(frozen=True)
class ImageConfig(NetworkSettings):
    """Every setting of one image run (see the module docstring for the defaults' origin).

    Network, loss and optimizer: :class:`nlcl_utils.engine.config.NetworkSettings`. Own fields:
    filters_per_beta (M = round(beta * filters_per_beta) filters per receptive field), grid (the
    image is cut into grid x grid receptive fields), augmentation (how the two views are made),
    and a shorter default run (steps).
    """

    steps: int = setting(2000, "SGD steps", low=0)
    filters_per_beta: int = setting(10, "filters per receptive field at beta = 1", low=1)
    grid: int = setting(2, "the image is cut into grid x grid receptive fields", low=1)
    augmentation: Augmentation = field(default_factory=Augmentation)

    @property
    def filters(self) -> int:
        """M = round(beta * filters_per_beta)."""
        return int(round(self.beta * self.filters_per_beta))

    def validate(self) -> None:
        """Raise SettingError (a ValueError) naming the first bad setting (before any compute)."""
        self.validate_network()
        check_fields(self, [f for f in dataclasses.fields(self) if f.name in ("filters_per_beta", "grid")])
        if self.filters < 1:
            raise SettingError(f"beta: beta * filters_per_beta must round to >= 1 filter, got {self.filters}")
        if not isinstance(self.augmentation, Augmentation):
            raise SettingError(f"augmentation: must be an Augmentation, got {type(self.augmentation).__name__}")
        self.augmentation.validate()


@dataclass
class ImageRun:
    """A batch of image runs: config, seeds, the network at init and trained, the training result."""

    config: ImageConfig
    seeds: list[int]
    init: DenseReceptiveFieldNet
    model: DenseReceptiveFieldNet
    result: TrainResult


class NetworkGroup:
    """Several networks with the same replicas, trained in lockstep on the same batches.

    Follows the model protocol of :func:`nlcl_utils.engine.train.train`: ``params`` is the
    concatenation of the members' parameters (names prefixed ``"i:"``), ``loss_and_grads``
    returns the sum of the members' losses [R] (what the NaN guard looks at: a non-finite value
    in any member freezes that replica in all of them) and records each member's own loss in
    ``member_losses``. Every member sees the same batch, so configs that share the data
    settings cost one sampler call per step instead of one per config.
    """

    def __init__(self, members: Sequence[DenseReceptiveFieldNet]):
        if not members:
            raise ValueError("members: give at least one network")
        replicas = {m.first.shape[0] for m in members}
        if len(replicas) != 1:
            raise ValueError(f"members: every network needs the same number of replicas, got {sorted(replicas)}")
        self.members = list(members)
        self.param_names = tuple(f"{i}:{name}" for i, m in enumerate(members) for name in m.param_names)
        self.member_losses: list[list[Tensor]] = [[] for _ in members]

    @property
    def params(self) -> list[Tensor]:
        return [p for m in self.members for p in m.params]

    def loss_and_grads(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, list[Tensor]]:
        total, grads = None, []
        for member, record in zip(self.members, self.member_losses):
            loss, member_grads = member.loss_and_grads(batch)
            record.append(loss)
            total = loss.clone() if total is None else total + loss
            grads.extend(member_grads)
        return total, grads


DATA_SETTINGS = ("grid", "batch_size", "steps", "lr", "momentum", "weight_decay", "dtype", "augmentation")


def init_network(config: ImageConfig, seeds: Sequence[int], image_shape: tuple[int, int]) -> DenseReceptiveFieldNet:
    """The network of ``config`` at its PyTorch-default init for ``seeds`` (images of ``image_shape``)."""
    config.validate()
    fields = split_fields(torch.zeros(1, *image_shape), config.grid)  # [1, K, d]; rejects a bad grid
    _, k, d = fields.shape
    return DenseReceptiveFieldNet.init(
        check_seeds(seeds), k, config.filters, d, config.out_dim, dtype=DTYPES[config.dtype], **config.network_options()
    )


def run_images(
    configs: Sequence[ImageConfig],
    data: ImageData,
    seeds: Sequence[int],
    *,
    snapshot_steps: Sequence[int] = (),
    progress: bool = True,
) -> list[ImageRun]:
    """Train the network of every config on ``data.train_images`` for every seed, all in lockstep.

    The configs must agree on the data and optimizer settings (:data:`DATA_SETTINGS`); they may
    differ in the network (beta, activation, BN, loss, ...). Each replica's init depends on its
    seed only, and all configs see the same batches, so a config's result does not depend on
    which other configs it was trained with (up to the shared NaN guard, see
    :class:`NetworkGroup`).
    """
    configs = list(configs)
    if not configs:
        raise ValueError("configs: give at least one ImageConfig")
    for config in configs:
        config.validate()
        for name in DATA_SETTINGS:
            if getattr(config, name) != getattr(configs[0], name):
                raise ValueError(
                    f"configs: {name} must be the same for configs trained together, "
                    f"got {getattr(configs[0], name)!r} and {getattr(config, name)!r}"
                )
    first = configs[0]
    models = [init_network(c, seeds, data.image_shape) for c in configs]
    inits = [
        DenseReceptiveFieldNet(m.first.clone(), m.top.clone(), **c.network_options()) for m, c in zip(models, configs)
    ]
    sampler = ViewSampler(
        data.train_images.to(DTYPES[first.dtype]), first.batch_size, seeds, first.grid, first.augmentation
    )
    group = NetworkGroup(models)
    result = train(
        group,
        sampler,
        first.steps,
        **first.optimizer_options(),
        snapshot_steps=snapshot_steps,
        progress=progress,
        desc=f"images: {len(configs)} configs x R={len(sampler.seeds)}",
    )
    runs = []
    for i, (config, model, init) in enumerate(zip(configs, models, inits)):
        losses = torch.stack(group.member_losses[i]) if first.steps else result.losses
        snaps = {name: result.snapshots[f"{i}:{name}"] for name in model.param_names}
        member = TrainResult(
            losses, result.snapshot_steps, snaps, result.nan, result.nan_step, result.cpu_seconds, result.wall_seconds
        )
        runs.append(ImageRun(config, list(sampler.seeds), init, model, member))
    return runs
