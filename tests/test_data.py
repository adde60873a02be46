"""Tests of resnet_edu.data: the digits split, the loaders, augmentation and CIFAR-10 (offline)."""
from __future__ import annotations

import importlib.util
import io
import os
import pickle
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from sklearn.datasets import load_digits

from resnet_edu import data
from resnet_edu.data import (
    cifar10_loaders,
    digits_loaders,
    get_loaders,
    random_crop,
    random_hflip,
    read_cifar10_batch,
    stratified_split,
)

_spec = importlib.util.spec_from_file_location("make_cifar",
                                               Path(__file__).with_name("make_cifar.py"))
make_cifar = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_cifar)


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.fixture(scope="module")
def loaders():
    return digits_loaders(batch_size=64, seed=0)


def _rows(images: torch.Tensor) -> list:
    return sorted(map(tuple, images.reshape(len(images), -1).tolist()))


def _collect(loader):
    xs, ys = zip(*loader)
    return torch.cat(xs), torch.cat(ys)


# ---------------------------------------------------------------- digits split
def test_digits_split_sizes_partition_and_stratification(loaders, digits):
    train, val, test = loaders
    assert (train.num_samples, val.num_samples, test.num_samples) == (1257, 180, 360)
    assert loaders.input_shape == (1, 8, 8) and loaders.num_classes == 10
    # the three parts together are exactly scikit-learn's images with their labels
    parts = torch.cat([train.images, val.images, test.images]).reshape(-1, 64).numpy()
    labels = torch.cat([train.labels, val.labels, test.labels]).numpy()
    ours = sorted(zip(map(tuple, parts.tolist()), labels.tolist()))
    ref = sorted(zip(map(tuple, digits.data.astype(int).tolist()), digits.target.tolist()))
    assert ours == ref
    # stratified: every class's share of the test part is within one image of 20%
    full = np.bincount(digits.target, minlength=10)
    for part, share in ((test, 0.2), (val, 0.1)):
        counts = np.bincount(part.labels.numpy(), minlength=10)
        assert np.all(np.abs(counts - share * full) <= 1), counts


def test_digits_split_is_seeded(loaders):
    again = digits_loaders(seed=0)
    other = digits_loaders(seed=1)
    assert torch.equal(again.test.images, loaders.test.images)
    assert torch.equal(again.test.labels, loaders.test.labels)
    assert _rows(other.test.images) != _rows(loaders.test.images)


def test_normalisation_uses_training_statistics_only(loaders):
    train_pixels = loaders.train.images.double() / 16
    assert loaders.train.mean.item() == pytest.approx(train_pixels.mean().item(), rel=1e-6)
    assert loaders.train.std.item() == pytest.approx(train_pixels.std().item(), rel=1e-6)
    for loader in loaders:       # one set of statistics for all three loaders
        assert torch.equal(loader.mean, loaders.train.mean)
    # without augmentation the normalised training set has mean 0 and std 1
    plain = digits_loaders(augment=False)
    x, _ = _collect(plain.train)
    assert abs(x.mean().item()) < 1e-5 and x.std().item() == pytest.approx(1.0, abs=1e-4)
    # evaluation loaders give the original pixels back after undoing the normalisation
    x, y = _collect(loaders.test)
    assert torch.allclose(x * loaders.test.std + loaders.test.mean,
                          loaders.test.images.float() / 16, atol=1e-6)
    assert torch.equal(y, loaders.test.labels)


def test_batches_cover_every_image_once_per_epoch():
    plain = digits_loaders(batch_size=50, augment=False)
    assert len(plain.train) == -(-1257 // 50)
    x, y = _collect(plain.train)
    assert x.shape == (1257, 1, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    raw = torch.round((x * plain.train.std + plain.train.mean) * 16).to(torch.int64)
    assert _rows(raw) == _rows(plain.train.images.to(torch.int64))
    assert sorted(y.tolist()) == sorted(plain.train.labels.tolist())


def test_loader_order_is_deterministic_per_epoch_and_resumable():
    a = digits_loaders(seed=3).train
    b = digits_loaders(seed=3).train
    epoch0_a, epoch1_a = list(a), list(a)
    epoch0_b = list(b)
    for (xa, ya), (xb, yb) in zip(epoch0_a, epoch0_b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(epoch0_a[0][1], epoch1_a[0][1])     # a new order each epoch
    fresh = digits_loaders(seed=3).train
    fresh.set_epoch(1)                                          # as after resuming
    for (xa, ya), (xf, yf) in zip(epoch1_a, fresh):
        assert torch.equal(xa, xf) and torch.equal(ya, yf)


def test_digits_augmentation_shifts_but_never_flips(loaders):
    train = loaders.train
    train.set_epoch(0)
    x, y = next(iter(train))
    raw = x * train.std + train.mean                  # back to [0, 1] pixels
    # find the source images: the first batch of epoch 0 draws the same permutation
    order = torch.randperm(train.num_samples,
                           generator=torch.Generator().manual_seed(train.seed * 1_000_003))
    src = train.images[order[:len(y)]].float() / 16
    assert torch.equal(train.labels[order[:len(y)]], y)
    shifted = 0
    for out, img in zip(raw, src):
        padded = torch.nn.functional.pad(img, (1, 1, 1, 1))
        crops = [padded[:, i:i + 8, j:j + 8] for i in range(3) for j in range(3)]
        match = [k for k, c in enumerate(crops) if torch.allclose(out, c, atol=1e-5)]
        assert match, "an augmented digit is not a shift of its source by at most one pixel"
        shifted += 4 not in match                      # index 4 = no shift
    assert 0.5 * len(y) < shifted < len(y)             # 8 of 9 offsets move the image


# ---------------------------------------------------------------- augmentation
def test_random_crop_matches_torchvision_crop_at_the_drawn_offset():
    x = torch.rand(64, 3, 32, 32)
    g = torch.Generator().manual_seed(0)
    out = random_crop(x, 4, g)
    g = torch.Generator().manual_seed(0)               # replay the offsets it drew
    dy = torch.randint(0, 9, (64,), generator=g)
    dx = torch.randint(0, 9, (64,), generator=g)
    for i in range(64):
        ref = TF.crop(TF.pad(x[i], [4]), int(dy[i]), int(dx[i]), 32, 32)   # torchvision
        assert torch.equal(out[i], ref)
    assert len(set(zip(dy.tolist(), dx.tolist()))) > 30   # many different shifts


def test_random_hflip_flips_about_half():
    x = torch.rand(400, 3, 4, 5)
    out = random_hflip(x, torch.Generator().manual_seed(1))
    flipped = torch.tensor([torch.equal(o, TF.hflip(i)) for o, i in zip(out, x)])
    kept = torch.tensor([torch.equal(o, i) for o, i in zip(out, x)])
    assert torch.all(flipped ^ kept)
    assert 150 < flipped.sum() < 250


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("kwargs, words", [
    ({"batch_size": 0}, "batch_size"),
    ({"val_fraction": 1.5}, "fractions"),
    ({"val_fraction": 0.5, "test_fraction": 0.5}, "no training data"),
    ({"normalize": "image"}, "'channel'"),
])
def test_bad_digits_arguments_are_clear(kwargs, words):
    with pytest.raises(ValueError, match=words):
        digits_loaders(**kwargs)


def test_unknown_data_set_names_the_supported_ones():
    with pytest.raises(ValueError, match="digits, cifar10"):
        get_loaders("mnist")


def test_no_validation_split():
    loaders = digits_loaders(val_fraction=0.0)
    assert loaders.val is None and loaders.train.num_samples == 1797 - 360


def test_stratified_split_accepts_counts():
    labels = np.repeat(np.arange(10), 30)
    train, val = stratified_split(labels, (50,), seed=0)
    assert len(val) == 50 and len(train) == 250
    assert set(np.concatenate([train, val]).tolist()) == set(range(300))


# ---------------------------------------------------------------- CIFAR-10, offline
@pytest.fixture
def cifar_root(tmp_path):
    return make_cifar.write_cifar10(tmp_path / "cifar", per_batch=20, test_size=30)


def _torchvision_cifar(root, train, monkeypatch):
    """torchvision's own reader, with its md5 checks (of the real files) switched off."""
    import torchvision.datasets.cifar as tv_cifar

    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *a, **k: True)
    return tv_cifar.CIFAR10(str(root), train=train, download=False)


def test_cifar_batches_read_like_torchvision(cifar_root, monkeypatch):
    images, labels, test_images, test_labels, classes = data.load_cifar10(cifar_root)
    assert images.shape == (100, 3, 32, 32) and images.dtype == torch.uint8
    for train, x, y in ((True, images, labels), (False, test_images, test_labels)):
        ref = _torchvision_cifar(cifar_root, train, monkeypatch)
        assert torch.equal(x.permute(0, 2, 3, 1), torch.from_numpy(ref.data))   # HWC
        assert y.tolist() == ref.targets
    assert list(classes) == ref.classes


def test_cifar_loaders_split_augment_normalise(cifar_root):
    loaders = cifar10_loaders(cifar_root, batch_size=16, seed=0)
    train, val, test = loaders
    assert (train.num_samples, val.num_samples, test.num_samples) == (90, 10, 30)
    assert sorted(val.labels.tolist()) == list(range(10))        # stratified
    assert loaders.input_shape == (3, 32, 32) and loaders.classes[0] == "airplane"
    raw = train.images.double() / 255
    assert torch.allclose(train.mean.double().flatten(), raw.mean(dim=(0, 2, 3)), atol=1e-6)
    assert torch.allclose(train.std.double().flatten(), raw.std(dim=(0, 2, 3)), atol=1e-6)
    x, y = next(iter(train))
    assert x.shape == (16, 3, 32, 32) and y.shape == (16,)
    assert train.augment is not None and test.augment is None
    # the paper's per-pixel mean: a (3, 32, 32) mean image and no scaling
    pixel = cifar10_loaders(cifar_root, normalize="pixel")
    assert pixel.train.mean.shape == (3, 32, 32)
    assert torch.allclose(pixel.train.mean.double(), raw.mean(dim=0), atol=1e-6)
    assert cifar10_loaders(cifar_root, val_size=0).val is None
    assert cifar10_loaders(cifar_root, val_size=20).val.num_samples == 20


def test_cifar_python3_bytes_keys_are_read_too(tmp_path):
    root = make_cifar.write_cifar10(tmp_path, per_batch=10, test_size=10, bytes_keys=True)
    loaders = cifar10_loaders(root, val_size=0)
    assert loaders.train.num_samples == 50 and loaders.classes[-1] == "truck"


def test_cifar_archive_is_extracted(tmp_path, cifar_root):
    src = make_cifar.write_cifar10(tmp_path / "src", archive=True)
    root = tmp_path / "only_archive"
    root.mkdir()
    shutil.copy(src / data.CIFAR10_ARCHIVE, root)
    loaders = cifar10_loaders(root)
    assert (root / data.CIFAR10_FOLDER / "test_batch").is_file()
    assert torch.equal(loaders.test.images, cifar10_loaders(src).test.images)


def test_missing_cifar_says_how_to_get_it(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tv_utils

    def no_network(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(tv_utils, "download_url", no_network)
    with pytest.raises(FileNotFoundError, match="download=True") as info:
        cifar10_loaders(tmp_path)
    assert data.CIFAR10_FOLDER in str(info.value) and data.CIFAR10_ARCHIVE in str(info.value)
    with pytest.raises(FileNotFoundError, match="download=True"):
        get_loaders("cifar10", root=tmp_path)


def test_download_goes_through_torchvision_with_the_md5(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tv_utils

    calls = []
    src = make_cifar.write_cifar10(tmp_path / "server", archive=True)

    def fake_download(url, root, filename=None, md5=None):
        calls.append((url, filename, md5))
        shutil.copy(src / data.CIFAR10_ARCHIVE, Path(root) / filename)

    monkeypatch.setattr(tv_utils, "download_url", fake_download)
    root = tmp_path / "client"
    root.mkdir()
    loaders = cifar10_loaders(root, download=True)
    assert calls == [(data.CIFAR10_URL, data.CIFAR10_ARCHIVE, "c58f30108f718f92721af3b95e74349a")]
    assert loaders.train.num_samples == 90
    cifar10_loaders(root, download=True)            # already there: no second download
    assert len(calls) == 1


def test_missing_batch_file_is_named(cifar_root):
    os.remove(cifar_root / data.CIFAR10_FOLDER / "data_batch_3")
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        cifar10_loaders(cifar_root)


def test_truncated_batch_is_reported_as_corrupt(cifar_root):
    path = cifar_root / data.CIFAR10_FOLDER / "data_batch_2"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match="corrupt"):
        cifar10_loaders(cifar_root)


@pytest.mark.parametrize("entry, words", [
    ({"data": np.zeros((4, 1024), np.uint8), "labels": [0, 1, 2, 3]}, "3072"),
    ({"data": np.zeros((4, 3072), np.float32), "labels": [0, 1, 2, 3]}, "uint8"),
    ({"data": np.zeros((4, 3072), np.uint8), "labels": [0, 1]}, "labels"),
    ({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 12]}, "0-9"),
    ([1, 2, 3], "dict"),
])
def test_malformed_batches_are_rejected(tmp_path, entry, words):
    path = tmp_path / "data_batch_1"
    with open(path, "wb") as f:
        pickle.dump(entry, f, protocol=2)
    with pytest.raises(ValueError, match=words):
        read_cifar10_batch(path)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_doctored_pickle_cannot_run_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "data_batch_1"
    with open(path, "wb") as f:
        pickle.dump({"data": _Exploit(str(marker)), "labels": [0]}, f, protocol=2)
    with pytest.raises(ValueError, match="refusing"):
        read_cifar10_batch(path)
    assert not marker.exists()
    # a plain pickle.load would have run it: the test's exploit is real
    with open(path, "rb") as f:
        pickle.load(f)
    assert marker.exists()


def test_corrupt_archive_is_reported(tmp_path):
    (tmp_path / data.CIFAR10_ARCHIVE).write_bytes(b"not a tar file at all")
    with pytest.raises(ValueError, match="not a valid CIFAR-10 archive"):
        cifar10_loaders(tmp_path)


def test_archive_with_escaping_paths_is_refused(tmp_path):
    evil = tmp_path / "evil.txt"
    evil.write_text("x")
    root = tmp_path / "root"
    root.mkdir()
    with tarfile.open(root / data.CIFAR10_ARCHIVE, "w:gz") as tar:
        tar.add(evil, arcname="../escaped.txt")
    with pytest.raises(ValueError, match="unexpected entry"):
        cifar10_loaders(root)
    assert not (tmp_path / "escaped.txt").exists()


@pytest.mark.parametrize("kind, words", [
    ("absolute", "does not contain"),      # extracted inside root ("/" stripped), not outside
    ("symlink_out", "unexpected entry"),
])
def test_archive_with_absolute_paths_or_escaping_links_stays_inside(tmp_path, kind, words):
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside.txt"
    with tarfile.open(root / data.CIFAR10_ARCHIVE, "w:gz") as tar:
        if kind == "absolute":
            info = tarfile.TarInfo(str(outside))          # an absolute name
            payload = b"x"
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        else:
            info = tarfile.TarInfo(f"{data.CIFAR10_FOLDER}/link")
            info.type, info.linkname = tarfile.SYMTYPE, str(outside)
            tar.addfile(info)
    with pytest.raises(ValueError, match=words):
        cifar10_loaders(root)
    assert not outside.exists() and not (root / data.CIFAR10_FOLDER / "link").exists()
