"""Real images for the receptive-field network: loaders, receptive fields, two-view augmentation.

Data (never downloaded; :func:`load_images` says in ``ImageData.source`` what it used):

* :func:`load_digits` -- scikit-learn's bundled 8x8 handwritten digits (1,797 images, pixel
  values 0..16 scaled to [0, 1]), split once into train / held-out test by a fixed seed
  (stratified by label).
* :func:`load_mnist` -- real MNIST from a local folder of IDX files (``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each plain
  or ``.gz``; the dotted spelling ``train-images.idx3-ubyte`` is accepted too), read by
  :func:`read_idx`. The official train / t10k split is kept; pixel values 0..255 -> [0, 1].

IDX format (big-endian): two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16,
0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions, one uint32 per dimension,
then the data in C order. A file that is missing, truncated, too long or has a bad header
raises :class:`IDXError` naming the file.

Receptive fields: :func:`split_fields` cuts ``[.., H, W]`` images into a ``grid x grid`` array
of non-overlapping patches, ``[.., K = grid**2, d = (H/grid)*(W/grid)]``, fields in row-major
order (top-left, top-right, bottom-left, bottom-right for grid 2), pixels row-major inside.

Views: :class:`ViewSampler` draws, for R replicas, a batch of distinct training images and two
augmented views of each (:class:`Augmentation`: a random resized crop -- square, area fraction
uniform in ``[crop_min_area, 1]``, placed uniformly inside the image -- then a random shift of
up to ``max_shift`` pixels in x and y (zero padding), resampled bilinearly to the original size;
then i.i.d. Gaussian pixel noise of std ``noise_std``). ``identical=True`` is the control: both
views are the clean image. Each replica draws from its own ``"data"`` generator
(:func:`nlcl_utils.data.tokens.replica_generator`), in a fixed order, so a seed run alone or
batched with others sees the same images and the same augmentations.
"""

from __future__ import annotations

import gzip
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from nlcl_utils.seeds import check_seeds, replica_generator

Tensor = torch.Tensor

IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MNIST_FILES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}
GZIP_MAGIC = b"\x1f\x8b"


class IDXError(ValueError):
    """An IDX file (or the folder that should hold it) is missing or malformed."""


# ----------------------------------------------------------------------------------------------
# IDX reader and MNIST.
# ----------------------------------------------------------------------------------------------


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in the IDX file ``path`` (gzip-compressed or plain, told by its first bytes)."""
    path = Path(path)
    if not path.is_file():
        raise IDXError(f"IDX file not found: {path}")
    raw = path.read_bytes()
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise IDXError(f"{path}: not a valid gzip file ({err})") from None
    if len(raw) < 4:
        raise IDXError(f"{path}: {len(raw)} bytes is too short for an IDX header (4 bytes of magic number)")
    if raw[0] != 0 or raw[1] != 0:
        raise IDXError(f"{path}: bad magic number {raw[:4].hex()} (an IDX file starts with two zero bytes)")
    code, ndim = raw[2], raw[3]
    if code not in IDX_TYPES:
        allowed = ", ".join(f"0x{c:02X}" for c in IDX_TYPES)
        raise IDXError(f"{path}: unknown IDX type code 0x{code:02X} (allowed: {allowed})")
    if ndim == 0:
        raise IDXError(f"{path}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXError(f"{path}: truncated header ({len(raw)} bytes, {ndim} dimensions need {header})")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_TYPES[code])
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) - header != expected:
        raise IDXError(
            f"{path}: data has {len(raw) - header} bytes, the header (shape {shape}, {dtype.name}) needs {expected}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


MIN_SPLIT_IMAGES = 2  # as max_train / max_test: fewer leaves no batch to train on or no accuracy to measure


def find_mnist_file(folder: Path, split: str, kind: str) -> Path:
    """The IDX file of ``split`` (train/test) ``kind`` (images/labels) in ``folder``; plain before ``.gz``."""
    stem = MNIST_FILES[split, kind]
    dotted = stem.replace("-idx", ".idx")
    candidates = [folder / name for base in (stem, dotted) for name in (base, base + ".gz")]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    names = ", ".join(c.name for c in candidates)
    raise IDXError(f"mnist_dir {folder}: no {split} {kind} file; expected one of {names}")


def _mnist_split(folder: Path, split: str, limit: int | None) -> tuple[Tensor, Tensor, list[str]]:
    image_file, label_file = find_mnist_file(folder, split, "images"), find_mnist_file(folder, split, "labels")
    images, labels = read_idx(image_file), read_idx(label_file)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise IDXError(f"{image_file}: expected uint8 images [N, H, W], got {images.dtype.name} {images.shape}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise IDXError(f"{label_file}: expected uint8 labels [N], got {labels.dtype.name} {labels.shape}")
    if len(images) != len(labels):
        raise IDXError(f"{image_file} has {len(images)} images but {label_file} has {len(labels)} labels")
    if len(images) < MIN_SPLIT_IMAGES:
        raise IDXError(
            f"{image_file}: holds {len(images)} images; the {split} split needs at least {MIN_SPLIT_IMAGES} "
            "(training, probe fitting and probe accuracy use both splits)"
        )
    if labels.size and labels.max() > 9:
        raise IDXError(f"{label_file}: labels must be digits 0..9, found {int(labels.max())}")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    as_images = torch.from_numpy(images.astype(np.float32) / 255.0)
    return as_images, torch.from_numpy(labels.astype(np.int64)), [image_file.name, label_file.name]


@dataclass(frozen=True)
class ImageData:
    """Labelled images split into train (used for contrastive training and probe fitting) and test.

    train_images [N, H, W] / test_images [N', H, W] float32 in [0, 1]; train_labels / test_labels
    int64 digits; ``source`` says in words which data these are.
    """

    train_images: Tensor
    train_labels: Tensor
    test_images: Tensor
    test_labels: Tensor
    source: str

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.train_images.shape[1:])


def _check_limit(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 2):
        raise ValueError(f"{name}: must be None (all) or an integer >= 2, got {value!r}")


def load_mnist(mnist_dir: str | Path, max_train: int | None = None, max_test: int | None = None) -> ImageData:
    """MNIST from local IDX files (official split; the first ``max_train`` / ``max_test`` images if given)."""
    _check_limit("max_train", max_train)
    _check_limit("max_test", max_test)
    folder = Path(mnist_dir).expanduser()
    if not folder.is_dir():
        raise IDXError(f"mnist_dir: folder not found: {folder}")
    train_x, train_y, train_files = _mnist_split(folder, "train", max_train)
    test_x, test_y, test_files = _mnist_split(folder, "test", max_test)
    if train_x.shape[1:] != test_x.shape[1:]:
        shapes = f"train images are {tuple(train_x.shape[1:])}, test images {tuple(test_x.shape[1:])}"
        raise IDXError(f"mnist_dir {folder}: {shapes}")
    source = (
        f"MNIST from IDX files in {folder} ({', '.join(train_files + test_files)}): "
        f"{len(train_x)} train / {len(test_x)} test images of {train_x.shape[1]}x{train_x.shape[2]}"
    )
    return ImageData(train_x, train_y, test_x, test_y, source)


def load_digits(test_fraction: float = 0.3, split_seed: int = 0) -> ImageData:
    """scikit-learn's bundled 8x8 digits, split train/test (stratified, ``split_seed``)."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    if not (isinstance(test_fraction, (int, float)) and 0 < test_fraction < 1):
        raise ValueError(f"test_fraction: must be a number in (0, 1), got {test_fraction!r}")
    bunch = sklearn_digits()
    images = (bunch.images / 16.0).astype(np.float32)
    labels = bunch.target.astype(np.int64)
    train_x, test_x, train_y, test_y = train_test_split(
        images, labels, test_size=test_fraction, random_state=split_seed, stratify=labels
    )
    source = (
        f"scikit-learn's bundled digits ({len(images)} images of 8x8), stratified split seed {split_seed}: "
        f"{len(train_x)} train / {len(test_x)} test"
    )
    return ImageData(*(torch.from_numpy(a) for a in (train_x, train_y, test_x, test_y)), source)


def load_images(
    mnist_dir: str | Path | None = None,
    *,
    test_fraction: float = 0.3,
    split_seed: int = 0,
    max_train: int | None = None,
    max_test: int | None = None,
) -> ImageData:
    """Bundled digits when ``mnist_dir`` is None, else MNIST from that folder (errors if it is unusable)."""
    if mnist_dir is None:
        return load_digits(test_fraction, split_seed)
    return load_mnist(mnist_dir, max_train, max_test)


# ----------------------------------------------------------------------------------------------
# Receptive fields.
# ----------------------------------------------------------------------------------------------


def split_fields(images: Tensor, grid: int) -> Tensor:
    """``[.., H, W]`` images -> ``[.., grid**2, (H/grid)*(W/grid)]`` receptive fields (row-major)."""
    if isinstance(grid, bool) or not isinstance(grid, int) or grid < 1:
        raise ValueError(f"grid: must be an integer >= 1, got {grid!r}")
    h, w = images.shape[-2:]
    if h % grid or w % grid:
        raise ValueError(f"grid: {grid} does not divide the image size {h}x{w}")
    ph, pw = h // grid, w // grid
    lead = images.shape[:-2]
    x = images.reshape(*lead, grid, ph, grid, pw).transpose(-3, -2)  # [.., gy, gx, ph, pw]
    return x.reshape(*lead, grid * grid, ph * pw)


def merge_fields(fields: Tensor, grid: int, field_shape: tuple[int, int]) -> Tensor:
    """Inverse of :func:`split_fields`: ``[.., K, d]`` -> ``[.., H, W]``."""
    ph, pw = field_shape
    lead = fields.shape[:-2]
    x = fields.reshape(*lead, grid, grid, ph, pw).transpose(-3, -2)
    return x.reshape(*lead, grid * ph, grid * pw)


# ----------------------------------------------------------------------------------------------
# Two-view augmentation, seeded per replica.
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Augmentation:
    """How the two views of an image are made (see the module docstring).

    crop_min_area: smallest area fraction of the random square crop (1 = no crop); max_shift:
    largest shift in pixels along x and y (0 = none); noise_std: std of the added pixel noise;
    identical: both views are the clean image (the control; the other settings are ignored).
    """

    crop_min_area: float = 0.6
    max_shift: float = 1.0
    noise_std: float = 0.1
    identical: bool = False

    def validate(self) -> None:
        if not (isinstance(self.crop_min_area, (int, float)) and 0 < self.crop_min_area <= 1):
            raise ValueError(f"crop_min_area: must be a number in (0, 1], got {self.crop_min_area!r}")
        for name in ("max_shift", "noise_std"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name}: must be a finite number >= 0, got {value!r}")
        if not isinstance(self.identical, bool):
            raise ValueError(f"identical: must be True or False, got {self.identical!r}")


def augment(images: Tensor, draws: Tensor, noise: Tensor, aug: Augmentation) -> Tensor:
    """Apply crop + shift + noise to ``images [B, H, W]``.

    ``draws [B, 5]`` are uniforms in [0, 1) (crop area, crop centre x, y, shift x, y) and
    ``noise [B, H, W]`` standard normals, so the randomness is drawn by the caller.
    """
    b, h, w = images.shape
    side = torch.sqrt(aug.crop_min_area + (1 - aug.crop_min_area) * draws[:, 0])  # crop side / image side
    centre = (2 * draws[:, 1:3] - 1) * (1 - side).unsqueeze(1)  # crop inside the image (normalized coords)
    shift_px = (2 * draws[:, 3:5] - 1) * aug.max_shift
    offset = centre - side.unsqueeze(1) * 2 * shift_px / torch.tensor([w, h], dtype=images.dtype)  # [B, 2] (x, y)
    # sampling grid in normalized coordinates (align_corners=False: pixel centres at (2i + 1)/size - 1);
    # the affine map is a scale and a translation per axis, so the grid is an outer sum
    xs = (2 * torch.arange(w, dtype=images.dtype) + 1) / w - 1
    ys = (2 * torch.arange(h, dtype=images.dtype) + 1) / h - 1
    gx = side[:, None, None] * xs[None, None, :] + offset[:, 0, None, None]  # [B, 1, W]
    gy = side[:, None, None] * ys[None, :, None] + offset[:, 1, None, None]  # [B, H, 1]
    grid = torch.stack([gx.expand(b, h, w), gy.expand(b, h, w)], -1)
    out = F.grid_sample(images.unsqueeze(1), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.squeeze(1) + aug.noise_std * noise


class ViewSampler:
    """Two augmented views of a batch of training images for each replica, as receptive fields.

    ``images [N, H, W]`` (shared by the replicas); each call returns ``(view1, view2)``, each
    ``[R, batch_size, K, d]`` (:func:`split_fields` with ``grid``). Per replica and call the
    ``"data"`` generator draws, in this order: a random permutation of the N images (the first
    ``batch_size`` are the batch: no image twice in a batch), uniforms ``[2, batch, 5]`` and
    normals ``[2, batch, H, W]`` for the two views (skipped when ``identical``).
    """

    def __init__(
        self, images: Tensor, batch_size: int, seeds: Sequence[int], grid: int = 2, augmentation: Augmentation = None
    ):
        self.seeds = check_seeds(seeds)
        self.augmentation = augmentation or Augmentation()
        self.augmentation.validate()
        if images.dim() != 3:
            raise ValueError(f"images: expected [N, H, W], got shape {tuple(images.shape)}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 2 <= batch_size <= len(images):
            allowed = f"an integer in [2, number of images = {len(images)}]"
            raise ValueError(f"batch_size: must be {allowed}, got {batch_size!r}")
        split_fields(images[:1], grid)  # rejects a bad grid before any sampling
        self.images, self.batch_size, self.grid = images, batch_size, grid
        self.generators = [replica_generator(s, "data") for s in self.seeds]

    def __call__(self) -> tuple[Tensor, Tensor]:
        n, h, w = self.images.shape
        b, aug = self.batch_size, self.augmentation
        picks, draws, noise = [], [], []
        for gen in self.generators:
            picks.append(torch.randperm(n, generator=gen)[:b])
            if not aug.identical:
                draws.append(torch.rand(2, b, 5, generator=gen, dtype=self.images.dtype))
                noise.append(torch.randn(2, b, h, w, generator=gen, dtype=self.images.dtype))
        clean = self.images[torch.stack(picks)]  # [R, b, H, W]
        if aug.identical:
            fields = split_fields(clean, self.grid)
            return fields, fields.clone()
        r = len(self.generators)
        both = clean.unsqueeze(1).expand(r, 2, b, h, w).reshape(-1, h, w)
        views = augment(both, torch.stack(draws).view(-1, 5), torch.stack(noise).view(-1, h, w), aug)
        fields = split_fields(views.view(r, 2, b, h, w), self.grid)  # [R, 2, b, K, d]
        return fields[:, 0], fields[:, 1]
