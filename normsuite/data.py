"""LightningDataModules that need no download by default: MNIST-1D, ImageFolder, FakeData.

CIFAR-10 is here too, for users with internet (``download=True``); it is not run in tests.

Example:
    >>> dm = MNIST1DDataModule(layout="rnn", batch_size=32)   # doctest: +SKIP
    >>> dm.prepare_data(); dm.setup("fit")                     # doctest: +SKIP
    >>> next(iter(dm.train_dataloader()))[0].shape             # doctest: +SKIP
    torch.Size([32, 40, 1])
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

LAYOUTS = ("cnn", "rnn")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def cache_dir() -> Path:
    """``$NORMSUITE_CACHE``, else ``~/.cache/normsuite``."""
    return Path(os.environ.get("NORMSUITE_CACHE") or Path.home() / ".cache" / "normsuite")


def _split(n: int, val_size: int, seed: int) -> tuple[list[int], list[int]]:
    """Deterministic train/val index split (the same on every rank and every run)."""
    if not 0 <= val_size < n:
        raise ValueError(f"val_size must be in [0, {n}), got {val_size}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return perm[val_size:], perm[:val_size]


class _Loaders(pl.LightningDataModule):
    """Dataloaders over ``self.train_set`` / ``val_set`` / ``test_set``."""

    train_set: Dataset
    val_set: Dataset | None = None
    test_set: Dataset | None = None

    def __init__(self, batch_size: int, num_workers: int) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.num_workers = num_workers

    def _loader(self, dataset: Dataset | None, shuffle: bool, train: bool = False) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__} has no such split; call setup() first")
        # Training drops the last partial batch: a remainder of 1 (91 images at batch 10)
        # crashes BatchNorm on (N, C) features and gives BN noisy statistics anyway, and the
        # guard only sees the first batch. Kept when the whole set is one partial batch.
        drop_last = train and len(dataset) > self.batch_size  # type: ignore[arg-type]
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)


class MNIST1DDataModule(_Loaders):
    """MNIST-1D (Greydanus & Kobak), generated locally with the ``mnist1d`` package and cached.

    The standard split: 4000 train (of which ``val_size`` held out for validation) and
    1000 test sequences of length 40, 10 classes. ``layout="cnn"`` gives ``(N, 1, 40)``,
    ``layout="rnn"`` gives ``(N, 40, 1)``. Generation takes a few seconds once; the
    arrays are cached under :func:`cache_dir`.

    Published test accuracies: logistic regression 32%, MLP 68%, CNN 94%, GRU 91%.
    """

    num_classes = 10

    def __init__(
        self,
        layout: str = "cnn",
        batch_size: int = 64,
        num_workers: int = 0,
        val_size: int = 500,
        seed: int = 0,
        num_samples: int = 5000,
    ) -> None:
        super().__init__(batch_size, num_workers)
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; use 'cnn' (N, 1, 40) or 'rnn' (N, 40, 1)")
        self.layout = layout
        self.val_size = val_size
        self.seed = seed
        self.num_samples = num_samples

    def _args(self) -> Any:
        from mnist1d.data import get_dataset_args

        args = get_dataset_args()
        args.num_samples = self.num_samples
        return args

    def cache_path(self) -> Path:
        """Where the generated arrays live; the name hashes the generator arguments."""
        args = {k: v for k, v in vars(self._args()).items() if k != "url"}
        key = hashlib.sha1(json.dumps(args, sort_keys=True).encode()).hexdigest()[:12]
        return cache_dir() / f"mnist1d-{key}.npz"

    def prepare_data(self) -> None:
        """Generate MNIST-1D once (rank 0 only under Lightning) and cache it."""
        path = self.cache_path()
        if path.exists():
            return
        from mnist1d.data import make_dataset

        # make_dataset reseeds numpy's global RNG; keep the caller's RNG state intact.
        state = np.random.get_state()
        try:
            data = make_dataset(self._args())
        finally:
            np.random.set_state(state)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, x=data["x"], y=data["y"], x_test=data["x_test"], y_test=data["y_test"])
        tmp.replace(path)  # atomic: a concurrent reader never sees half a file

    def _tensors(self, x: np.ndarray, y: np.ndarray) -> TensorDataset:
        xt = torch.as_tensor(x, dtype=torch.float32)
        xt = xt.unsqueeze(1) if self.layout == "cnn" else xt.unsqueeze(2)
        return TensorDataset(xt, torch.as_tensor(y, dtype=torch.long))

    def setup(self, stage: str | None = None) -> None:
        path = self.cache_path()
        if not path.exists():  # setup() without prepare_data(), e.g. plain Python use
            self.prepare_data()
        with np.load(path) as data:
            full = self._tensors(data["x"], data["y"])
            self.test_set = self._tensors(data["x_test"], data["y_test"])
        train_idx, val_idx = _split(len(full), self.val_size, self.seed)
        self.train_set = Subset(full, train_idx)
        self.val_set = Subset(full, val_idx) if val_idx else None

    def val_dataloader(self) -> DataLoader:
        # No held-out split (val_size=0): validate on nothing rather than on the test set.
        return self._loader(self.val_set, shuffle=False) if self.val_set is not None else []


def _image_transforms(image_size: int, mean: tuple, std: tuple, augment: bool) -> tuple:
    from torchvision import transforms as T

    base = [T.Resize((image_size, image_size)), T.ToTensor(), T.Normalize(mean, std)]
    train = [T.RandomHorizontalFlip(), *base] if augment else base
    return T.Compose(train), T.Compose(base)


class ImageFolderDataModule(_Loaders):
    """Images in ``root/<class>/*.png`` (torchvision ImageFolder), the article's loader done right.

    The transform is applied once (the article's ``ImageDataset`` applied it twice).
    ``val_fraction`` of ``root`` is held out for validation with a fixed seed; the held-out
    images get the evaluation transform (no augmentation). ``test_root`` is optional.
    """

    def __init__(
        self,
        root: str,
        image_size: int = 32,
        batch_size: int = 32,
        num_workers: int = 0,
        val_fraction: float = 0.1,
        test_root: str | None = None,
        augment: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers)
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        self.root = root
        self.image_size = image_size
        self.val_fraction = val_fraction
        self.test_root = test_root
        self.augment = augment
        self.seed = seed
        self.classes: list[str] = []

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def setup(self, stage: str | None = None) -> None:
        from torchvision.datasets import ImageFolder

        if not Path(self.root).is_dir():
            raise FileNotFoundError(
                f"image folder {self.root!r} not found; point root at a folder of "
                "<class>/<image> subfolders"
            )
        train_tf, eval_tf = _image_transforms(
            self.image_size, IMAGENET_MEAN, IMAGENET_STD, self.augment
        )
        # Two views of the same files so train and val get their own transform, applied once.
        train_view = ImageFolder(self.root, transform=train_tf)
        eval_view = ImageFolder(self.root, transform=eval_tf)
        self.classes = train_view.classes
        n_val = round(len(train_view) * self.val_fraction)
        train_idx, val_idx = _split(len(train_view), n_val, self.seed)
        self.train_set = Subset(train_view, train_idx)
        self.val_set = Subset(eval_view, val_idx) if val_idx else None
        if self.test_root is not None:
            self.test_set = ImageFolder(self.test_root, transform=eval_tf)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False) if self.val_set is not None else []


class CIFAR10DataModule(_Loaders):
    """CIFAR-10 through torchvision. Needs the internet once (``download=True``).

    45000/5000 train/val split of the training set (fixed seed), test set for ``test``.
    """

    num_classes = 10

    def __init__(
        self,
        root: str = "data/cifar10",
        download: bool = False,
        batch_size: int = 128,
        num_workers: int = 2,
        val_size: int = 5000,
        augment: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers)
        self.root = root
        self.download = download
        self.val_size = val_size
        self.augment = augment
        self.seed = seed

    def prepare_data(self) -> None:
        """Check the data, or download it with ``download=True``.

        Lightning calls this on the first process of every node; nodes that share a
        filesystem would download into the same folder at once, so a download holds a file
        lock next to the data (the next node then finds the files and skips the download).
        Data that is already there is only checked: no lock, nothing written, so a read-only
        dataset folder works.
        """
        from torchvision.datasets import CIFAR10

        try:
            for train in (True, False):
                CIFAR10(self.root, train=train, download=False)
            return
        except RuntimeError:  # missing or corrupt
            if not self.download:
                raise
        from filelock import FileLock

        Path(self.root).mkdir(parents=True, exist_ok=True)
        with FileLock(str(Path(self.root) / ".download.lock")):
            for train in (True, False):
                CIFAR10(self.root, train=train, download=True)

    def setup(self, stage: str | None = None) -> None:
        from torchvision import transforms as T
        from torchvision.datasets import CIFAR10

        base = [T.ToTensor(), T.Normalize(CIFAR10_MEAN, CIFAR10_STD)]
        aug = [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()] if self.augment else []
        train_view = CIFAR10(self.root, train=True, transform=T.Compose([*aug, *base]))
        eval_view = CIFAR10(self.root, train=True, transform=T.Compose(base))
        train_idx, val_idx = _split(len(train_view), self.val_size, self.seed)
        self.train_set = Subset(train_view, train_idx)
        self.val_set = Subset(eval_view, val_idx)
        self.test_set = CIFAR10(self.root, train=False, transform=T.Compose(base))


class FakeDataModule(_Loaders):
    """Random tensors of any ``shape`` with random labels: for smoke tests and benchmarks.

    Seeded, so every rank and every run sees the same data.
    """

    def __init__(
        self,
        shape: list[int] | None = None,
        num_classes: int = 10,
        num_samples: int = 64,
        batch_size: int = 16,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers)
        self.shape = list(shape) if shape is not None else [3, 32, 32]
        self.num_classes = num_classes
        self.num_samples = num_samples
        self.seed = seed

    def _make(self, offset: int) -> TensorDataset:
        g = torch.Generator().manual_seed(self.seed + offset)
        x = torch.randn(self.num_samples, *self.shape, generator=g)
        y = torch.randint(0, self.num_classes, (self.num_samples,), generator=g)
        return TensorDataset(x, y)

    def setup(self, stage: str | None = None) -> None:
        self.train_set = self._make(0)
        self.val_set = self._make(1)
        self.test_set = self._make(2)
