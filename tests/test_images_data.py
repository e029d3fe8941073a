"""Image data: IDX reader and MNIST folder on files the test writes, fields, seeded augmentation."""

import gzip
import struct

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nlcl_utils.data.images import (
    Augmentation,
    IDXError,
    ViewSampler,
    augment,
    load_digits,
    load_images,
    load_mnist,
    merge_fields,
    read_idx,
    split_fields,
)


def _idx_bytes(array: np.ndarray, code: int) -> bytes:
    """IDX encoding written by hand from the format's description (big-endian header and data)."""
    big = array.astype(array.dtype.newbyteorder(">"))
    header = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", s) for s in array.shape)
    return header + big.tobytes()


def _write(path, data: bytes, compress: bool):
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize(
    "dtype, code",
    [(np.uint8, 0x08), (np.int8, 0x09), (np.int16, 0x0B), (np.int32, 0x0C), (np.float32, 0x0D), (np.float64, 0x0E)],
)
def test_read_idx_round_trip(tmp_path, compress, dtype, code):
    rng = np.random.default_rng(0)
    array = (rng.normal(size=(3, 5, 4)) * 50).astype(dtype)
    path = _write(tmp_path / "a.idx", _idx_bytes(array, code), compress)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.shape == (3, 5, 4)
    np.testing.assert_array_equal(out, array)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\x00\x00", "too short"),
        (b"\x01\x00\x08\x01" + struct.pack(">I", 2) + b"ab", "bad magic number"),
        (b"\x00\x00\x07\x01" + struct.pack(">I", 2) + b"ab", "unknown IDX type code 0x07"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (b"\x00\x00\x08\x03" + struct.pack(">I", 2), "truncated header"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 3) + b"ab", "data has 2 bytes"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 1) + b"ab", "data has 2 bytes"),
        (b"\x1f\x8b\x08garbage", "not a valid gzip file"),
    ],
)
def test_read_idx_rejects_malformed_files_naming_them(tmp_path, data, message):
    path = _write(tmp_path / "bad-file.idx", data, False)
    with pytest.raises(IDXError, match=message) as err:
        read_idx(path)
    assert "bad-file.idx" in str(err.value)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(IDXError, match="not found.*nothing.idx"):
        read_idx(tmp_path / "nothing.idx")


def _mnist_folder(tmp_path, n_train=6, n_test=4, size=4, compress=True, dotted=False):
    rng = np.random.default_rng(1)
    files = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, size, size), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        for kind, array, ndim in (("images", images, 3), ("labels", labels, 1)):
            name = f"{split}-{kind}{'.' if dotted else '-'}idx{ndim}-ubyte" + (".gz" if compress else "")
            _write(tmp_path / name, _idx_bytes(array, 0x08), compress)
            files[split, kind] = array
    return files


@pytest.mark.parametrize("compress, dotted", [(True, False), (False, False), (False, True)])
def test_load_mnist_reads_the_official_split(tmp_path, compress, dotted):
    files = _mnist_folder(tmp_path, compress=compress, dotted=dotted)
    data = load_mnist(tmp_path)
    np.testing.assert_allclose(data.train_images.numpy(), files["train", "images"] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(data.test_labels.numpy(), files["t10k", "labels"])
    assert data.train_images.dtype == torch.float32 and data.train_labels.dtype == torch.int64
    assert "MNIST" in data.source and str(tmp_path) in data.source and "6 train / 4 test" in data.source
    limited = load_images(tmp_path, max_train=3, max_test=2)
    assert limited.train_images.shape == (3, 4, 4) and limited.test_labels.shape == (2,)


def test_load_mnist_errors_name_the_folder_or_file(tmp_path):
    with pytest.raises(IDXError, match="folder not found"):
        load_mnist(tmp_path / "absent")
    with pytest.raises(IDXError, match="no train images file; expected one of train-images-idx3-ubyte"):
        load_mnist(tmp_path)
    _mnist_folder(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(IDXError, match="no test labels file"):
        load_mnist(tmp_path)
    # labels that do not match the images in count
    _write(tmp_path / "t10k-labels-idx1-ubyte.gz", _idx_bytes(np.zeros(3, np.uint8), 0x08), True)
    with pytest.raises(IDXError, match="has 4 images but .*t10k-labels-idx1-ubyte.gz has 3 labels"):
        load_mnist(tmp_path)
    # images stored as a 2-d array
    _write(tmp_path / "t10k-labels-idx1-ubyte.gz", _idx_bytes(np.zeros(4, np.uint8), 0x08), True)
    _write(tmp_path / "train-images-idx3-ubyte.gz", _idx_bytes(np.zeros((6, 16), np.uint8), 0x08), True)
    with pytest.raises(IDXError, match=r"train-images-idx3-ubyte.gz: expected uint8 images \[N, H, W\]"):
        load_mnist(tmp_path)
    with pytest.raises(ValueError, match="max_train"):
        load_mnist(tmp_path, max_train=1)


def test_load_digits_is_the_bundled_set_with_a_fixed_split():
    data = load_digits()
    assert data.image_shape == (8, 8)
    assert len(data.train_images) + len(data.test_images) == 1797
    assert float(data.train_images.max()) <= 1.0 and float(data.train_images.min()) >= 0.0
    assert "digits" in data.source and "1257 train / 540 test" in data.source
    again = load_images(None)
    assert torch.equal(again.test_labels, data.test_labels)
    with pytest.raises(ValueError, match="test_fraction"):
        load_digits(test_fraction=1.5)


def test_split_and_merge_fields():
    images = torch.arange(2 * 8 * 8, dtype=torch.float64).view(2, 8, 8)
    fields = split_fields(images, 2)
    assert fields.shape == (2, 4, 16)
    assert torch.equal(fields[0, 1].view(4, 4), images[0, :4, 4:])  # top-right field
    assert torch.equal(fields[1, 2].view(4, 4), images[1, 4:, :4])  # bottom-left field
    assert torch.equal(merge_fields(fields, 2, (4, 4)), images)
    with pytest.raises(ValueError, match="grid: 3 does not divide the image size 8x8"):
        split_fields(images, 3)


def test_augment_grid_equals_affine_grid_and_identity_is_exact():
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(6, 8, 8, generator=gen, dtype=torch.float64)
    draws = torch.rand(6, 5, generator=gen, dtype=torch.float64)
    aug = Augmentation(crop_min_area=0.5, max_shift=1.5, noise_std=0.0)
    out = augment(images, draws, torch.zeros_like(images), aug)
    # reference: the same scale/translation through torch's affine_grid
    side = torch.sqrt(0.5 + 0.5 * draws[:, 0])
    centre = (2 * draws[:, 1:3] - 1) * (1 - side).unsqueeze(1)
    shift = (2 * draws[:, 3:5] - 1) * 1.5
    theta = torch.zeros(6, 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = theta[:, 1, 1] = side
    theta[:, :, 2] = centre - side.unsqueeze(1) * 2 * shift / 8
    grid = F.affine_grid(theta, [6, 1, 8, 8], align_corners=False)
    ref = F.grid_sample(images.unsqueeze(1), grid, align_corners=False).squeeze(1)
    assert torch.allclose(out, ref, atol=1e-12)
    # no crop, no shift, no noise: the image itself
    plain = augment(images, draws, torch.zeros_like(images), Augmentation(1.0, 0.0, 0.0))
    assert torch.allclose(plain, images, atol=1e-12)
    # a whole-pixel shift moves the content by that many pixels
    one = torch.tensor([[0.0, 0.5, 0.5, 1.0, 0.5]], dtype=torch.float64)  # shift x by +max_shift
    moved = augment(images[:1], one, torch.zeros(1, 8, 8, dtype=torch.float64), Augmentation(1.0, 2.0, 0.0))
    assert torch.allclose(moved[0, :, 2:], images[0, :, :6], atol=1e-12)
    assert torch.all(moved[0, :, :2] == 0)


def test_view_sampler_per_replica_determinism():
    images = load_digits().train_images
    together = ViewSampler(images, 16, [3, 5, 7])
    alone = ViewSampler(images, 16, [5])
    for _ in range(3):
        a1, a2 = together()
        b1, b2 = alone()
        assert torch.equal(a1[1], b1[0]) and torch.equal(a2[1], b2[0])
    assert a1.shape == (3, 16, 4, 16)
    assert not torch.equal(a1[0], a1[1])  # different seeds, different batches
    assert not torch.equal(a1, a2)  # two different views


def test_view_sampler_identical_views_and_distinct_images():
    images = torch.arange(40 * 4 * 4, dtype=torch.float32).view(40, 4, 4)
    v1, v2 = ViewSampler(images, 40, [0], augmentation=Augmentation(identical=True))()
    assert torch.equal(v1, v2)
    firsts = v1[0, :, 0, 0]  # pixel (0, 0) identifies the image
    assert len(set(firsts.tolist())) == 40  # a batch never holds an image twice


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(augmentation=Augmentation(crop_min_area=0.0)), "crop_min_area"),
        (dict(augmentation=Augmentation(noise_std=-1.0)), "noise_std"),
        (dict(augmentation=Augmentation(max_shift=float("inf"))), "max_shift"),
        (dict(batch_size=1), "batch_size"),
        (dict(batch_size=10_000), "batch_size"),
        (dict(grid=3), "grid"),
        (dict(seeds=[-1]), "seeds"),
    ],
)
def test_view_sampler_rejects_bad_parameters(kwargs, message):
    images = torch.zeros(20, 8, 8)
    options = dict(batch_size=8, seeds=[0]) | kwargs
    with pytest.raises(ValueError, match=message):
        ViewSampler(images, **options)
