"""Dense receptive-field network: fast gradient == autograd (float64), seeds, lockstep groups, metrics, errors."""

import dataclasses
import math

import pytest
import torch

from nlcl_utils.data.images import Augmentation, ImageData, ViewSampler, load_digits
from nlcl_utils.engine import image_metrics as im
from nlcl_utils.engine.image_net import DenseReceptiveFieldNet
from nlcl_utils.engine.image_train import ImageConfig, NetworkGroup, run_images

F64 = torch.float64

CASES = [
    dict(),  # the default: ReLU, BN with mean gradient and no variance gradient, InfoNCE
    dict(activation="linear"),
    dict(bn=False),
    dict(bn_var_grad=True),
    dict(bn_scale=False),
    dict(bn_mean_grad=False, activation="leaky_relu", slope=0.2),
    dict(activation="linear", loss="quadratic"),
    dict(activation="tanh", tau=0.5),
]


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.mark.parametrize("options", CASES)
def test_fast_gradient_equals_autograd_float64(digits, options):
    net = DenseReceptiveFieldNet.init([1, 2], 4, 7, 16, 6, dtype=F64, **options)
    batch = ViewSampler(digits.train_images.to(F64), 24, [1, 2])()
    loss, grads = net.loss_and_grads(batch)
    ref_loss, ref_grads = net.reference_loss_and_grads(batch)
    assert torch.allclose(loss, ref_loss, rtol=1e-12, atol=1e-13)
    for g, r in zip(grads, ref_grads):
        assert g.shape == r.shape
        assert (g - r).abs().max() <= 1e-10 * r.abs().max()


def test_init_is_per_seed_and_hidden_has_the_right_shape(digits):
    both = DenseReceptiveFieldNet.init([4, 9], 4, 5, 16, 3)
    alone = DenseReceptiveFieldNet.init([9], 4, 5, 16, 3)
    assert torch.equal(both.first[1], alone.first[0]) and torch.equal(both.top[1], alone.top[0])
    assert both.first.abs().max() <= 1 / math.sqrt(16) and both.top.abs().max() <= 1 / math.sqrt(20)
    x = ViewSampler(digits.train_images, 8, [4, 9])()[0]
    assert both.hidden(x).shape == (2, 8, 20)
    assert both.hidden(x).min() >= 0  # ReLU


def _small_data(digits, n=200):
    return ImageData(
        digits.train_images[:n], digits.train_labels[:n], digits.test_images[:50], digits.test_labels[:50], "subset"
    )


def test_training_a_seed_alone_or_batched_gives_the_same_weights(digits):
    data = _small_data(digits)
    config = ImageConfig(beta=1, steps=30, batch_size=32)
    together = run_images([config], data, [1, 2, 3], progress=False)[0]
    alone = run_images([config], data, [2], progress=False)[0]
    assert torch.allclose(together.model.first[1], alone.model.first[0], rtol=0, atol=1e-6)
    assert torch.allclose(together.result.losses[:, 1], alone.result.losses[:, 0], rtol=0, atol=1e-6)
    assert not torch.allclose(together.model.first[1], together.init.first[1])  # it did train


def test_lockstep_group_equals_separate_runs(digits):
    data = _small_data(digits)
    base = ImageConfig(beta=1, steps=25, batch_size=32)
    configs = [base, dataclasses.replace(base, activation="linear", bn=False)]
    grouped = run_images(configs, data, [5, 6], progress=False)
    for config, run in zip(configs, grouped):
        single = run_images([config], data, [5, 6], progress=False)[0]
        assert torch.equal(run.model.first, single.model.first)
        assert torch.equal(run.result.losses, single.result.losses)
        assert run.config == config


def test_identical_views_control_trains(digits):
    data = _small_data(digits)
    config = ImageConfig(beta=1, steps=5, batch_size=16, augmentation=Augmentation(identical=True))
    run = run_images([config], data, [1], progress=False)[0]
    assert torch.isfinite(run.result.losses).all()


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(beta=0), "beta"),
        (dict(activation="softplus"), "activation: unknown 'softplus'"),
        (dict(loss="hinge"), "loss"),
        (dict(tau=0.0), "tau"),
        (dict(batch_size=1), "batch_size"),
        (dict(dtype="float16"), "dtype"),
        (dict(grid=0), "grid"),
        (dict(lr=-1.0), "lr"),
        (dict(momentum=1.0), "momentum"),
        (dict(bn_scale=False, bn_var_grad=True), "bn_var_grad"),
        (dict(augmentation=Augmentation(crop_min_area=2.0)), "crop_min_area"),
    ],
)
def test_config_rejects_bad_settings(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(ImageConfig(), **change).validate()


def test_group_and_network_reject_mismatches(digits):
    data = _small_data(digits)
    with pytest.raises(ValueError, match="configs: steps must be the same"):
        run_images([ImageConfig(steps=2), ImageConfig(steps=3)], data, [1], progress=False)
    with pytest.raises(ValueError, match="grid: 3 does not divide"):
        run_images([ImageConfig(grid=3)], data, [1], progress=False)
    with pytest.raises(ValueError, match="same number of replicas"):
        NetworkGroup([DenseReceptiveFieldNet.init([1], 4, 2, 16, 3), DenseReceptiveFieldNet.init([1, 2], 4, 2, 16, 3)])
    net = DenseReceptiveFieldNet.init([1], 4, 2, 16, 3)
    with pytest.raises(ValueError, match=r"inputs: expected shape \[R=1, N, K=4, d=16\]"):
        net.loss_and_grads((torch.zeros(1, 8, 4, 9), torch.zeros(1, 8, 4, 9)))
    with pytest.raises(ValueError, match="top: expected shape"):
        DenseReceptiveFieldNet(torch.zeros(1, 4, 2, 16), torch.zeros(1, 3, 7))
    with pytest.raises(ValueError, match="filters: must be an integer >= 1"):
        DenseReceptiveFieldNet.init([1], 4, 0, 16, 3)


def test_filter_metrics_on_known_cases():
    gen = torch.Generator().manual_seed(0)
    parallel = torch.randn(1, 5, dtype=F64, generator=gen).repeat(4, 1) * torch.tensor([[1.0], [-2.0], [3.0], [0.5]])
    assert torch.allclose(im.mean_abs_cosine(parallel), torch.tensor(1.0, dtype=F64))
    orthogonal = torch.eye(4, dtype=F64)
    assert im.mean_abs_cosine(orthogonal).item() == 0.0
    # Gaussian responses have excess kurtosis ~ 0; a sparse (Bernoulli) response has a large one
    patches = torch.randn(1, 200_000, 3, generator=gen, dtype=F64)
    assert abs(im.response_kurtosis(torch.eye(3, dtype=F64)[None], patches)).max() < 0.05
    sparse = (torch.rand(1, 200_000, 1, generator=gen, dtype=F64) < 0.01).to(F64)  # p(1 - p) = 0.0099
    expected = (1 - 6 * 0.01 * 0.99) / (0.01 * 0.99)  # excess kurtosis of a Bernoulli(p)
    assert abs(im.response_kurtosis(torch.ones(1, 1, 1, dtype=F64), sparse).item() - expected) < 0.05 * expected
    # random filters lie in the span of the patches and have unit norm
    flat = torch.zeros(1, 50, 4, dtype=F64)
    flat[0, :, :2] = torch.randn(50, 2, generator=gen, dtype=F64)
    bases = im.span_bases(flat)
    assert bases[0].shape == (2, 4)
    rnd = im.random_span_filters(bases, 7, gen)
    assert rnd.shape == (1, 7, 4) and torch.allclose(rnd.norm(dim=-1), torch.ones(1, 7, dtype=F64))
    assert rnd[..., 2:].abs().max() < 1e-12
    assert torch.isnan(im.response_kurtosis(torch.tensor([[[0.0, 0.0, 1.0, 0.0]]], dtype=F64), flat)).all()
    assert im.dead_fraction(-torch.ones(1, 2, 3, dtype=F64), torch.rand(1, 10, 3, generator=gen, dtype=F64)) == 1.0


def test_linear_probe_separable_and_errors():
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(60) % 3
    features = torch.nn.functional.one_hot(labels, 3).to(F64) * 5 + 0.1 * torch.randn(60, 3, generator=gen, dtype=F64)
    assert im.linear_probe_accuracy(features[:40], labels[:40], features[40:], labels[40:]) == 1.0
    with pytest.raises(ValueError, match="features"):
        im.linear_probe_accuracy(features[:40], labels[:40], features[40:, :2], labels[40:])
    with pytest.raises(ValueError, match="C: must be a number > 0"):
        im.linear_probe_accuracy(features[:40], labels[:40], features[40:], labels[40:], C=0)
