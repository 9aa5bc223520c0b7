"""Data modules: MNIST-1D (generated, cached), ImageFolder (transform once), FakeData."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from normsuite.data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    CIFAR10DataModule,
    FakeDataModule,
    ImageFolderDataModule,
    MNIST1DDataModule,
)


@pytest.fixture(scope="module")
def mnist1d_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def test_mnist1d_layouts_split_and_cache(
    mnist1d_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NORMSUITE_CACHE", str(mnist1d_cache))
    np.random.seed(123)
    expected_next = np.random.rand()
    np.random.seed(123)
    cnn = MNIST1DDataModule(layout="cnn", batch_size=32, val_size=500)
    cnn.prepare_data()
    assert np.random.rand() == expected_next  # the generator did not clobber numpy's RNG
    assert cnn.cache_path().parent == mnist1d_cache and cnn.cache_path().exists()
    cnn.setup("fit")
    assert (len(cnn.train_set), len(cnn.val_set), len(cnn.test_set)) == (3500, 500, 1000)
    x, y = next(iter(cnn.train_dataloader()))
    assert x.shape == (32, 1, 40) and x.dtype == torch.float32
    assert y.dtype == torch.long and int(y.min()) >= 0 and int(y.max()) <= 9

    # Second module: read from the cache, never regenerated.
    import mnist1d.data

    def _no_generation(*args, **kwargs):
        raise AssertionError("regenerated despite the cache")

    monkeypatch.setattr(mnist1d.data, "make_dataset", _no_generation)
    rnn = MNIST1DDataModule(layout="rnn", batch_size=8)
    rnn.setup("fit")
    xr, _ = next(iter(rnn.test_dataloader()))
    assert xr.shape == (8, 40, 1)
    # Same samples in both layouts, and the same split on every instance.
    torch.testing.assert_close(rnn.test_set.tensors[0][:5, :, 0], cnn.test_set.tensors[0][:5, 0])
    assert rnn.train_set.indices == cnn.train_set.indices
    with pytest.raises(ValueError, match="layout"):
        MNIST1DDataModule(layout="nchw")


def _make_image_folder(root: Path, classes: int = 2, per_class: int = 5) -> None:
    rng = np.random.default_rng(0)
    for c in range(classes):
        folder = root / f"class{c}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, size=(12, 20, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")


def test_image_folder_applies_the_transform_once_and_splits(tmp_path: Path) -> None:
    _make_image_folder(tmp_path / "train")
    dm = ImageFolderDataModule(
        str(tmp_path / "train"), image_size=16, batch_size=4, val_fraction=0.2, augment=False
    )
    dm.setup("fit")
    assert dm.num_classes == 2 and dm.classes == ["class0", "class1"]
    assert (len(dm.train_set), len(dm.val_set)) == (8, 2)
    assert set(dm.train_set.indices).isdisjoint(dm.val_set.indices)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 16, 16) and y.shape == (4,)
    # Reference: resize -> to [0, 1] -> normalize, done by hand once on the PNG file.
    idx = dm.val_set.indices[0]
    path, label = dm.val_set.dataset.samples[idx]
    img = Image.open(path).convert("RGB").resize((16, 16), Image.BILINEAR)
    ref = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
    ref = (ref - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[
        :, None, None
    ]
    got, got_label = dm.val_set[0]
    assert got_label == label
    torch.testing.assert_close(got, ref, atol=0.02, rtol=0)


def test_image_folder_test_root_and_errors(tmp_path: Path) -> None:
    _make_image_folder(tmp_path / "train")
    _make_image_folder(tmp_path / "test", per_class=2)
    dm = ImageFolderDataModule(
        str(tmp_path / "train"), image_size=8, val_fraction=0.0, test_root=str(tmp_path / "test")
    )
    dm.setup("fit")
    assert dm.val_set is None and len(dm.test_set) == 4
    assert next(iter(dm.test_dataloader()))[0].shape == (4, 3, 8, 8)
    with pytest.raises(FileNotFoundError, match="not found"):
        ImageFolderDataModule(str(tmp_path / "missing")).setup("fit")
    with pytest.raises(ValueError, match="val_fraction"):
        ImageFolderDataModule(str(tmp_path), val_fraction=1.5)


def test_fake_data_shapes_and_determinism() -> None:
    a = FakeDataModule(shape=[40, 1], num_classes=3, num_samples=10, batch_size=4)
    b = FakeDataModule(shape=[40, 1], num_classes=3, num_samples=10, batch_size=4)
    a.setup()
    b.setup()
    x, y = next(iter(a.val_dataloader()))
    assert x.shape == (4, 40, 1) and int(y.max()) < 3
    torch.testing.assert_close(a.train_set.tensors[0], b.train_set.tensors[0])
    assert not torch.equal(a.train_set.tensors[0], a.val_set.tensors[0])
    with pytest.raises(ValueError, match="batch_size"):
        FakeDataModule(batch_size=0)


def test_cifar10_without_download_says_how_to_get_it(tmp_path: Path) -> None:
    dm = CIFAR10DataModule(root=str(tmp_path), download=False)
    with pytest.raises(RuntimeError, match="download=True"):
        dm.prepare_data()


def _fake_cifar10(present: bool, calls: list[bool], overlaps: list[bool]) -> type:
    """Stands in for torchvision's CIFAR10 (no network in tests); records every call."""
    import threading
    import time

    inside, guard = [0], threading.Lock()

    class FakeCIFAR10:
        def __init__(self, root: str, train: bool, download: bool) -> None:
            calls.append(download)
            if not download:
                if not present:
                    raise RuntimeError("Dataset not found or corrupted. Use download=True")
                return
            with guard:
                inside[0] += 1
                overlaps.append(inside[0] > 1)
            time.sleep(0.05)
            with guard:
                inside[0] -= 1

    return FakeCIFAR10


def test_cifar10_download_is_serialized_across_processes_of_a_shared_filesystem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two nodes' first processes on one shared folder: the second must wait for the first.
    import threading

    import torchvision.datasets

    calls: list[bool] = []
    overlaps: list[bool] = []
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", _fake_cifar10(False, calls, overlaps))
    nodes = [CIFAR10DataModule(root=str(tmp_path / "cifar"), download=True) for _ in range(2)]
    threads = [threading.Thread(target=dm.prepare_data) for dm in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(overlaps) == 4 and not any(overlaps)


def test_cifar10_already_there_is_only_checked_without_a_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchvision.datasets

    calls: list[bool] = []
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", _fake_cifar10(True, calls, []))
    CIFAR10DataModule(root=str(tmp_path), download=True).prepare_data()
    assert calls == [False, False]  # checked, never downloaded
    assert list(tmp_path.iterdir()) == []  # no lock file: read-only dataset folders work


def _train_batch_sizes(dm) -> list[int]:
    return [len(y) for _, y in dm.train_dataloader()]


def test_training_drops_a_last_partial_batch_that_would_crash_batchnorm(tmp_path: Path) -> None:
    # 11 images at batch 5: the last training batch would hold 1 image, and BatchNorm on
    # (N, C) features raises on a batch of 1 in training.
    _make_image_folder(tmp_path / "train", classes=1, per_class=11)
    dm = ImageFolderDataModule(
        str(tmp_path / "train"), image_size=8, batch_size=5, val_fraction=0.0, augment=False
    )
    dm.setup("fit")
    assert len(dm.train_set) == 11
    assert _train_batch_sizes(dm) == [5, 5]
    bn = torch.nn.BatchNorm1d(3 * 8 * 8).train()
    for x, _ in dm.train_dataloader():
        bn(x.flatten(1))  # raised "Expected more than 1 value per channel" on the last batch
    # Evaluation keeps every sample.
    fake = FakeDataModule(shape=[4], num_samples=9, batch_size=4)
    fake.setup()
    assert _train_batch_sizes(fake) == [4, 4]
    assert [len(y) for _, y in fake.val_dataloader()] == [4, 4, 1]
    assert [len(y) for _, y in fake.test_dataloader()] == [4, 4, 1]
    # A training set no larger than one batch is kept whole rather than emptied.
    small = FakeDataModule(shape=[4], num_samples=3, batch_size=4)
    small.setup()
    assert _train_batch_sizes(small) == [3]
