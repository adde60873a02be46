"""Data for the training chapters: the embedded digits and CIFAR-10.

Scope:

- :func:`digits_loaders`: scikit-learn's bundled handwritten digits (1,797
  real 8x8 grayscale images, no download) split into train / validation /
  test with a fixed, seeded, stratified split. This is the book's default:
  it runs anywhere in seconds.
- :func:`cifar10_loaders`: CIFAR-10 read from the "python version" of the
  data set (``cifar-10-batches-py/``, read safely by :mod:`resnet_edu.cifar10`),
  with the augmentation of He et al. (2015), section 4.2: pad 4 pixels, take a
  random 32x32 crop, flip horizontally with probability 1/2. ``download=True`` fetches the archive
  through torchvision (about 170 MB, for Colab and GPU users).
- :func:`get_loaders`: either of the two by name.

Both data sets fit in memory, so a :class:`TensorLoader` cuts mini-batches
from one tensor and augments the whole batch at once (no per-image PIL
transforms: one pass over the augmented digits takes milliseconds). Shuffling
and augmentation draw from a ``torch.Generator`` seeded by ``(seed, epoch)``,
so the batches of epoch 7 are the same whether or not training was resumed
from a checkpoint in between.

Normalisation statistics always come from the training split only.

References: He, Zhang, Ren, Sun, "Deep Residual Learning for Image
Recognition", CVPR 2016 (arXiv:1512.03385), section 4.2; Krizhevsky,
"Learning Multiple Layers of Features from Tiny Images", 2009 (CIFAR-10).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .cifar10 import (  # noqa: F401
    CIFAR10_ARCHIVE,
    CIFAR10_ARCHIVE_MD5,
    CIFAR10_FOLDER,
    CIFAR10_META_FILE,
    CIFAR10_TEST_FILE,
    CIFAR10_TRAIN_FILES,
    CIFAR10_URL,
    load_cifar10,
    prepare_cifar10,
    read_cifar10_batch,
)

DATASETS = ("digits", "cifar10")
NORMALIZATIONS = ("channel", "pixel")

DIGITS_CLASSES = tuple(str(d) for d in range(10))

# A generator of epoch e of a loader with seed s is seeded with s * _EPOCH_STRIDE + e.
_EPOCH_STRIDE = 1_000_003

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


# --------------------------------------------------------------------------------------
# Augmentation on whole batches (N, C, H, W), drawing from an explicit generator
# --------------------------------------------------------------------------------------
def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad by ``padding`` pixels and cut a random crop of the original size.

    Per image this is torchvision's ``RandomCrop(size, padding=padding)``: a
    random shift by up to ``padding`` pixels in each direction, with the
    uncovered border filled with zeros (black).
    """
    n, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (padding,) * 4)                # (N, C, H+2p, W+2p)
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None]           # (N, 1, H, 1)
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :]           # (N, 1, 1, W)
    batch = torch.arange(n)[:, None, None, None]
    channel = torch.arange(c)[None, :, None, None]
    return padded[batch, channel, rows, cols]                          # (N, C, H, W)


def random_hflip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    flip = torch.rand(x.shape[0], generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def shift_augment(padding: int = 1) -> Augment:
    """Random shifts only: right for digits (a mirrored 2, 3 or 7 is not a digit)."""
    def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return random_crop(x, padding, generator)
    return augment


def cifar_augment(padding: int = 4) -> Augment:
    """The paper's CIFAR-10 augmentation: pad 4, random 32x32 crop, horizontal flip."""
    def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return random_hflip(random_crop(x, padding, generator), generator)
    return augment


# --------------------------------------------------------------------------------------
# The loader
# --------------------------------------------------------------------------------------
class TensorLoader:
    """Mini-batches ``(x, y)`` of in-memory images, like a ``DataLoader``.

    Args:
        images: raw pixels, ``(N, C, H, W)``, any integer or float dtype.
        labels: class indices, ``(N,)``.
        batch_size: images per batch (the last batch may be smaller).
        scale: multiplies the raw pixels (``1/16`` for digits, ``1/255`` for
            CIFAR) so they lie in [0, 1] before augmentation.
        mean, std: normalisation, broadcast against ``(C, H, W)``; applied
            after augmentation, so padding is black as in the paper.
        shuffle: draw a new order every epoch.
        augment: ``augment(x, generator)`` applied to each training batch.
        seed: seeds shuffling and augmentation together with the epoch number.

    Iterating yields float32 ``x`` of shape ``(B, C, H, W)`` and int64 ``y``.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int,
                 scale: float = 1.0, mean: Union[float, torch.Tensor] = 0.0,
                 std: Union[float, torch.Tensor] = 1.0, shuffle: bool = False,
                 augment: Optional[Augment] = None, seed: int = 0):
        if images.dim() != 4 or labels.dim() != 1 or len(images) != len(labels):
            raise ValueError(f"expected images (N, C, H, W) and labels (N,), got "
                             f"{tuple(images.shape)} and {tuple(labels.shape)}")
        _check_batch_size(batch_size)
        self.images, self.labels = images, labels.long()
        self.batch_size, self.scale = batch_size, scale
        self.mean = torch.as_tensor(mean, dtype=torch.float32)
        self.std = torch.as_tensor(std, dtype=torch.float32)
        self.shuffle, self.augment, self.seed = shuffle, augment, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass draw the order and augmentation of ``epoch``."""
        self.epoch = epoch

    def __len__(self) -> int:
        return (len(self.labels) + self.batch_size - 1) // self.batch_size

    @property
    def num_samples(self) -> int:
        return len(self.labels)

    def __iter__(self) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        generator = torch.Generator().manual_seed(self.seed * _EPOCH_STRIDE + self.epoch)
        self.epoch += 1
        n = len(self.labels)
        order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            x = self.images[idx].to(torch.float32) * self.scale         # (B, C, H, W) in [0, 1]
            if self.augment is not None:
                x = self.augment(x, generator)
            yield (x - self.mean) / self.std, self.labels[idx]

    def __repr__(self) -> str:
        return (f"TensorLoader({self.num_samples} images of shape "
                f"{tuple(self.images.shape[1:])}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, augment={self.augment is not None})")


@dataclass
class Loaders:
    """Train, validation and test loaders of one data set, and what describes it.

    Unpacks like a tuple: ``train_loader, val_loader, test_loader = loaders``.
    ``val`` is ``None`` when no validation split was asked for.
    """

    train: TensorLoader
    val: Optional[TensorLoader]
    test: TensorLoader
    classes: Tuple[str, ...]
    name: str

    def __iter__(self):
        return iter((self.train, self.val, self.test))

    @property
    def input_shape(self) -> Tuple[int, int, int]:
        """``(C, H, W)`` of one image: (1, 8, 8) for digits, (3, 32, 32) for CIFAR-10."""
        return tuple(self.train.images.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.classes)


# --------------------------------------------------------------------------------------
# Splitting and normalisation
# --------------------------------------------------------------------------------------
def _check_batch_size(batch_size: int) -> None:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


def stratified_split(labels: np.ndarray, sizes: Sequence[Union[float, int]], seed: int):
    """Index arrays of a seeded split that keeps every class's share in every part.

    ``sizes`` are the parts after the first (training) part, as fractions of
    all samples or as counts: ``(0.1, 0.2)`` gives 70% / 10% / 20%; a size of
    0 gives an empty part. The last part is drawn first.
    """
    from sklearn.model_selection import train_test_split

    n = len(labels)
    counts = []
    for size in sizes:
        if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
            count = int(size)
        elif isinstance(size, float) and 0 <= size < 1:
            count = math.ceil(size * n)          # rounds up, as scikit-learn does
        else:
            raise ValueError(f"split sizes must be fractions in [0, 1) or counts, got {size!r}")
        if count < 0:
            raise ValueError(f"split sizes must not be negative, got {size!r}")
        counts.append(count)
    if sum(counts) >= n:
        raise ValueError(f"split sizes {tuple(sizes)} leave no training data out of {n} samples")
    rest = np.arange(n)
    parts = []
    for count in reversed(counts):
        if count == 0:
            parts.append(np.array([], dtype=np.int64))
            continue
        rest, part = train_test_split(rest, test_size=count, stratify=labels[rest],
                                      random_state=seed)
        parts.append(np.sort(part))
    return [np.sort(rest)] + parts[::-1]


def _normalization(images: torch.Tensor, scale: float, mode: str):
    """Mean and std of the (scaled) training images: per channel, or the paper's per-pixel mean."""
    if mode not in NORMALIZATIONS:
        raise ValueError(f"normalize={mode!r} is not supported; choose one of "
                         f"{', '.join(repr(m) for m in NORMALIZATIONS)}")
    x = images.to(torch.float64) * scale
    if mode == "pixel":    # He et al. (2015): "the per-pixel mean subtracted", no scaling
        return x.mean(dim=0).float(), torch.ones(1)
    mean = x.mean(dim=(0, 2, 3), keepdim=True)[0]                        # (C, 1, 1)
    std = x.std(dim=(0, 2, 3), keepdim=True)[0]
    return mean.float(), std.float()


def _make_loaders(name, classes, images, labels, parts, batch_size, scale, augment, seed,
                  normalize) -> Loaders:
    _check_batch_size(batch_size)
    train_idx, val_idx, test_idx = parts
    mean, std = _normalization(images[train_idx], scale, normalize)
    common = dict(batch_size=batch_size, scale=scale, mean=mean, std=std, seed=seed)
    train = TensorLoader(images[train_idx], labels[train_idx], shuffle=True,
                         augment=augment, **common)
    val = (TensorLoader(images[val_idx], labels[val_idx], **common)
           if len(val_idx) else None)
    test = TensorLoader(images[test_idx], labels[test_idx], **common)
    return Loaders(train, val, test, tuple(classes), name)


# --------------------------------------------------------------------------------------
# Digits (embedded)
# --------------------------------------------------------------------------------------
def digits_loaders(batch_size: int = 64, val_fraction: float = 0.1,
                   test_fraction: float = 0.2, seed: int = 0, augment: bool = True,
                   normalize: str = "channel") -> Loaders:
    """scikit-learn's handwritten digits as train / validation / test loaders.

    1,797 images of 1x8x8 pixels (values 0-16), ten classes. With the defaults
    the seeded stratified split has 1,257 / 180 / 360 images. Training batches
    are shifted by up to one pixel at random (no flips: mirrored digits are
    not digits).
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy(digits.images.astype(np.uint8))[:, None]   # (1797, 1, 8, 8)
    labels = torch.from_numpy(digits.target.astype(np.int64))
    parts = stratified_split(digits.target, (val_fraction, test_fraction), seed)
    return _make_loaders("digits", DIGITS_CLASSES, images, labels, parts, batch_size,
                         scale=1 / 16, augment=shift_augment(1) if augment else None,
                         seed=seed, normalize=normalize)


def cifar10_loaders(root: Union[str, Path] = "data", batch_size: int = 128,
                    download: bool = False, val_size: Union[int, float] = 0.1, seed: int = 0,
                    augment: bool = True, normalize: str = "channel") -> Loaders:
    """CIFAR-10 train / validation / test loaders with the paper's augmentation.

    The paper chose its schedule on a 45k/5k train/validation split: the
    default ``val_size=0.1`` (a fraction, or a count such as 5000) gives
    exactly that on the real data; ``val_size=0`` trains on all 50,000 images
    and returns no validation loader. Training batches are padded by 4 pixels,
    randomly cropped back to 32x32 and flipped horizontally.
    ``normalize="channel"`` scales each colour channel to zero mean and unit
    variance; ``"pixel"`` subtracts the per-pixel mean image, as the paper does.
    """
    train_images, train_labels, test_images, test_labels, classes = load_cifar10(root, download)
    n = len(train_labels)
    train_idx, val_idx = stratified_split(train_labels.numpy(), (val_size,), seed)
    images = torch.cat([train_images, test_images])
    labels = torch.cat([train_labels, test_labels])
    test_idx = np.arange(n, n + len(test_labels))
    return _make_loaders("cifar10", classes, images, labels, (train_idx, val_idx, test_idx),
                         batch_size, scale=1 / 255,
                         augment=cifar_augment(4) if augment else None, seed=seed,
                         normalize=normalize)


def get_loaders(name: str = "digits", batch_size: Optional[int] = None, seed: int = 0,
                augment: bool = True, root: Union[str, Path] = "data",
                download: bool = False) -> Loaders:
    """``digits_loaders`` or ``cifar10_loaders`` by name, with their default batch sizes."""
    if name == "digits":
        return digits_loaders(batch_size=batch_size or 64, seed=seed, augment=augment)
    if name == "cifar10":
        return cifar10_loaders(root, batch_size=batch_size or 128, download=download,
                               seed=seed, augment=augment)
    raise ValueError(f"unknown data set {name!r}; supported: {', '.join(DATASETS)}")
