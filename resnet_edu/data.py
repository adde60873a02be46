"""Data for the training chapters: the embedded digits and CIFAR-10.

Scope:

- :func:`digits_loaders`: scikit-learn's bundled handwritten digits (1,797
  real 8x8 grayscale images, no download) split into train / validation /
  test with a fixed, seeded, stratified split. This is the book's default:
  it runs anywhere in seconds.
- :func:`cifar10_loaders`: CIFAR-10 read from the "python version" of the
  data set (``cifar-10-batches-py/``), with the augmentation of He et al.
  (2015), section 4.2: pad 4 pixels, take a random 32x32 crop, flip
  horizontally with probability 1/2. ``download=True`` fetches the archive
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
import os
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence, Tuple, Union

import numpy as np
import torch

DATASETS = ("digits", "cifar10")
NORMALIZATIONS = ("channel", "pixel")

DIGITS_CLASSES = tuple(str(d) for d in range(10))

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"  # the md5 torchvision checks
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch"
CIFAR10_META_FILE = "batches.meta"

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


# --------------------------------------------------------------------------------------
# CIFAR-10 (the "python version" of the data set)
# --------------------------------------------------------------------------------------
def _how_to_get(root: Path) -> str:
    return (f"Put the 'CIFAR-10 python version' ({CIFAR10_URL}) into {str(root)!r}, "
            f"either as the archive {CIFAR10_ARCHIVE} or extracted as {CIFAR10_FOLDER}/, "
            f"or pass download=True (command line: --download; about 170 MB).")


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, numbers, strings and NumPy arrays, and nothing else.

    The CIFAR batches are pickles; this keeps a doctored file from running code.
    """

    def find_class(self, module: str, name: str):
        if (module, name) in (("numpy.core.multiarray", "_reconstruct"),
                              ("numpy._core.multiarray", "_reconstruct")):
            core = getattr(np, "_core", None)
            return core.multiarray._reconstruct if core is not None else \
                np.core.multiarray._reconstruct
        if (module, name) == ("numpy", "ndarray"):
            return np.ndarray
        if (module, name) == ("numpy", "dtype"):
            return np.dtype
        if (module, name) == ("_codecs", "encode"):   # bytes in protocol-2 pickles of Python 3
            import codecs
            return codecs.encode
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR-10 batch "
                                     f"holds only arrays, lists, numbers and strings")


def _read_pickle(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR-10 file missing: {str(path)!r}. "
                                f"{_how_to_get(path.parent.parent)}")
    try:
        with open(path, "rb") as f:
            entry = _ArrayUnpickler(f, encoding="latin1").load()
    except Exception as exc:
        raise ValueError(f"{str(path)!r} is not a readable CIFAR-10 batch ({type(exc).__name__}: "
                         f"{exc}); the file is corrupt. Delete {CIFAR10_FOLDER}/ and get the "
                         f"data again. {_how_to_get(path.parent.parent)}") from exc
    if not isinstance(entry, dict):
        raise ValueError(f"{str(path)!r} should hold a dict, found {type(entry).__name__}")
    # Python 2 pickles give str keys (with encoding="latin1"), Python 3 ones may give bytes
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}


def read_cifar10_batch(path: Union[str, Path]) -> Tuple[torch.Tensor, torch.Tensor]:
    """One CIFAR-10 batch file as uint8 images ``(N, 3, 32, 32)`` and int64 labels ``(N,)``.

    The file is a pickled dict whose ``data`` is a uint8 array ``(N, 3072)``,
    each row 1024 red, then 1024 green, then 1024 blue values in row-major
    order, and whose ``labels`` is a list of N integers in 0-9.
    """
    path = Path(path)
    entry = _read_pickle(path)
    data, labels = entry.get("data"), entry.get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3 * 32 * 32:
        found = (f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray)
                 else type(data).__name__)
        raise ValueError(f"{str(path)!r}: 'data' should be a uint8 array of shape (N, 3072), "
                         f"found {found}; the file is corrupt or not CIFAR-10")
    labels = np.asarray(labels if labels is not None else [], dtype=np.int64)
    if labels.shape != (len(data),) or (len(labels) and (labels.min() < 0 or labels.max() > 9)):
        raise ValueError(f"{str(path)!r}: 'labels' should be {len(data)} integers in 0-9, "
                         f"found {labels.shape[0]} values; the file is corrupt or not CIFAR-10")
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())
    return images, torch.from_numpy(labels)


def _safe_extract(archive: Path, root: Path) -> None:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar.getmembers():
                target = (root / member.name).resolve()
                if not (member.isfile() or member.isdir()) or \
                        not str(target).startswith(str(root.resolve()) + os.sep):
                    raise ValueError(f"unexpected entry {member.name!r}")
            tar.extractall(root)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise ValueError(f"{str(archive)!r} is not a valid CIFAR-10 archive ({exc}). "
                         f"Delete it and get it again. {_how_to_get(root)}") from exc


def prepare_cifar10(root: Union[str, Path], download: bool = False) -> Path:
    """Make sure ``root/cifar-10-batches-py`` exists and return it.

    Extracts ``root/cifar-10-python.tar.gz`` if only the archive is there;
    downloads it (through torchvision, which checks its md5) if ``download``.
    """
    root = Path(root).expanduser()
    folder = root / CIFAR10_FOLDER
    if folder.is_dir():
        return folder
    archive = root / CIFAR10_ARCHIVE
    if not archive.is_file():
        if not download:
            raise FileNotFoundError(f"CIFAR-10 not found in {str(root)!r}. {_how_to_get(root)}")
        from torchvision.datasets.utils import download_url

        download_url(CIFAR10_URL, str(root), filename=CIFAR10_ARCHIVE, md5=CIFAR10_ARCHIVE_MD5)
    _safe_extract(archive, root)
    if not folder.is_dir():
        raise ValueError(f"{str(archive)!r} does not contain {CIFAR10_FOLDER}/. "
                         f"{_how_to_get(root)}")
    return folder


def load_cifar10(root: Union[str, Path], download: bool = False):
    """CIFAR-10 as uint8 tensors: ``(train_images, train_labels, test_images, test_labels,
    classes)``, with 50,000 and 10,000 images for the real data set."""
    folder = prepare_cifar10(root, download)
    batches = [read_cifar10_batch(folder / name) for name in CIFAR10_TRAIN_FILES]
    test_images, test_labels = read_cifar10_batch(folder / CIFAR10_TEST_FILE)
    meta = _read_pickle(folder / CIFAR10_META_FILE)
    classes = meta.get("label_names")
    if not isinstance(classes, list) or len(classes) != 10:
        raise ValueError(f"{str(folder / CIFAR10_META_FILE)!r}: 'label_names' should list "
                         f"10 class names; the file is corrupt")
    classes = [c.decode() if isinstance(c, bytes) else str(c) for c in classes]
    train_images = torch.cat([b[0] for b in batches])
    train_labels = torch.cat([b[1] for b in batches])
    return train_images, train_labels, test_images, test_labels, tuple(classes)


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
