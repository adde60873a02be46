"""Reading CIFAR-10's "python version" files safely: the archive, the pickled batches.

The archive is extracted with ``tarfile``'s ``filter="data"`` (PEP 706), and the
pickled batches are read by an unpickler that builds arrays, dicts, lists,
numbers and strings only, so a doctored download cannot write outside the data
folder or run code. :mod:`resnet_edu.data` turns the tensors into loaders.

Reference: Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", 2009.
"""
from __future__ import annotations

import contextlib
import pickle
import tarfile
from pathlib import Path
from typing import Tuple, Union

import numpy as np
import torch

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"  # the md5 torchvision checks
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch"
CIFAR10_META_FILE = "batches.meta"


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
    except Exception as exc:  # a damaged or hostile file can fail anywhere in unpickling
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
    # filter="data" (PEP 706) refuses absolute paths, "..", links that leave root, devices,
    # and drops permissions such as setuid: what an archive from the internet must not do.
    if not hasattr(tarfile, "data_filter"):        # added in 3.9.17, 3.10.12, 3.11.4, 3.12
        raise RuntimeError("extracting CIFAR-10 safely needs tarfile's filter='data', which "
                           "this Python lacks: update Python, or extract the archive yourself")
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(root, filter="data")
    except tarfile.FilterError as exc:
        raise ValueError(f"{str(archive)!r} is not a valid CIFAR-10 archive (unexpected entry: "
                         f"{exc}). Delete it and get it again. {_how_to_get(root)}") from exc
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ValueError(f"{str(archive)!r} is not a valid CIFAR-10 archive ({exc}). "
                         f"Delete it and get it again. {_how_to_get(root)}") from exc


class DownloadError(OSError):
    """CIFAR-10 could not be downloaded (no network, a proxy, a bad checksum)."""


def _download(root: Path, archive: Path) -> None:
    """Download the archive into ``root`` through torchvision (which checks its md5). On
    failure leave nothing behind: no partial archive, no ``root`` that was not there."""
    from torchvision.datasets.utils import download_url

    made = [p for p in (root, *root.parents) if not p.exists()]
    try:
        download_url(CIFAR10_URL, str(root), filename=CIFAR10_ARCHIVE, md5=CIFAR10_ARCHIVE_MD5)
    except (OSError, RuntimeError) as exc:   # URLError is an OSError; RuntimeError: bad md5
        archive.unlink(missing_ok=True)
        for folder in made:                  # innermost first; only if still empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        reason = getattr(exc, "reason", None) or exc
        raise DownloadError(f"could not download CIFAR-10 from {CIFAR10_URL} ({reason}): "
                            f"check the network connection, or put the archive "
                            f"{CIFAR10_ARCHIVE} (or its {CIFAR10_FOLDER}/ folder) into "
                            f"{str(root)!r} by hand") from None


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
        _download(root, archive)
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
