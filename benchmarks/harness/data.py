"""Datasets as numpy arrays, with fixed splits, so every framework trains on the same data.

No file is downloaded at run time: the digits ship with scikit-learn, the
Shakespeare corpus ships in ``benchmarks/data/``, and Fashion-MNIST comes from the
Debian package ``dataset-fashion-mnist``.
"""

from __future__ import annotations

import gzip
import lzma
import os
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
SHAKESPEARE_FILE = DATA_DIR / "shakespeare.txt.xz"
# Install folder of the IDX files in the Debian package dataset-fashion-mnist.
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
# Seed of the train/validation/test split; fixed so tuning never uses test data.
SPLIT_SEED = 0

Splits = dict[str, tuple[np.ndarray, np.ndarray]]


def load_digits() -> Splits:
    """Return scikit-learn's 8×8 digits as train/val/test splits of 70/15/15%.

    Images are float32 of shape (N, 1, 8, 8) scaled to [0, 1]; labels are int64.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = (bunch.images / 16.0).astype(np.float32)[:, None]
    labels = bunch.target.astype(np.int64)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(labels))
    n_val = n_test = round(0.15 * len(labels))
    val, test, train = np.split(order, [n_val, n_val + n_test])
    return {
        name: (images[idx], labels[idx])
        for name, idx in (("train", train), ("val", val), ("test", test))
    }


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (optionally gzipped) of unsigned bytes into an array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    zero, dtype_code, ndim = raw[0] * 256 + raw[1], raw[2], raw[3]
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes (header {raw[:4]!r})")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path} contains {data.size} values, but its header gives shape {shape}")
    return data.reshape(shape)


def fashion_mnist_dir() -> Path:
    """Return the Fashion-MNIST folder: $VRADAM_FASHION_MNIST_DIR or the Debian path."""
    return Path(os.environ.get("VRADAM_FASHION_MNIST_DIR", FASHION_MNIST_DIR))


def load_fashion_mnist(root: Path | None = None) -> Splits:
    """Return Fashion-MNIST: 55,000 train, 5,000 validation (from the training set), 10,000 test.

    Images are float32 of shape (N, 1, 28, 28) scaled to [0, 1]; labels are int64.
    """
    root = fashion_mnist_dir() if root is None else Path(root)
    names = {
        "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    }
    arrays = {}
    for split, files in names.items():
        pair = []
        for stem in files:
            path = next(
                (root / f"{stem}{ext}" for ext in (".gz", "") if (root / f"{stem}{ext}").exists()),
                None,
            )
            if path is None:
                raise FileNotFoundError(
                    f"Fashion-MNIST file {stem}.gz not found in {root}. Install the Debian "
                    "package dataset-fashion-mnist (`sudo apt-get install dataset-fashion-mnist`) "
                    "or set VRADAM_FASHION_MNIST_DIR to a folder with the four IDX files."
                )
            pair.append(read_idx(path))
        arrays[split] = pair

    train_images, train_labels = arrays["train"]
    order = np.random.default_rng(SPLIT_SEED).permutation(len(train_labels))
    val_idx, train_idx = order[:5000], order[5000:]

    def scale(images):
        return (images.astype(np.float32) / 255.0)[:, None]

    test_images, test_labels = arrays["test"]
    return {
        "train": (scale(train_images[train_idx]), train_labels[train_idx].astype(np.int64)),
        "val": (scale(train_images[val_idx]), train_labels[val_idx].astype(np.int64)),
        "test": (scale(test_images), test_labels.astype(np.int64)),
    }


def load_shakespeare() -> tuple[dict[str, np.ndarray], str]:
    """Return the corpus as uint8 character ids split 90/5/5% in order, and the vocabulary.

    The splits are contiguous slices, so validation and test text come from the
    last plays of the corpus and never overlap the training text.
    """
    text = lzma.decompress(SHAKESPEARE_FILE.read_bytes()).decode("ascii")
    vocab = "".join(sorted(set(text)))
    lookup = np.zeros(128, dtype=np.uint8)
    lookup[[ord(c) for c in vocab]] = np.arange(len(vocab), dtype=np.uint8)
    ids = lookup[np.frombuffer(text.encode("ascii"), dtype=np.uint8)]
    n_train, n_val = int(0.9 * len(ids)), int(0.05 * len(ids))
    splits = {
        "train": ids[:n_train],
        "val": ids[n_train : n_train + n_val],
        "test": ids[n_train + n_val :],
    }
    return splits, vocab


def batch_indices(n: int, batch_size: int, steps: int, seed: int) -> np.ndarray:
    """Return (steps, batch_size) example indices: shuffled epochs, reshuffled each epoch."""
    rng = np.random.default_rng(seed)
    epochs = -(-steps * batch_size // n)
    order = np.concatenate([rng.permutation(n) for _ in range(epochs)])
    return order[: steps * batch_size].reshape(steps, batch_size)
