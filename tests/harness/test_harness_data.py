"""Datasets load as fixed numpy splits; Fashion-MNIST errors name the Debian package."""

import gzip
import lzma

import numpy as np
import pytest
from harness import data


def test_digits_splits_disjoint_sizes():
    splits = data.load_digits()
    sizes = {k: len(v[1]) for k, v in splits.items()}
    assert sizes == {"train": 1257, "val": 270, "test": 270}
    assert splits["train"][0].shape[1:] == (1, 8, 8)
    assert splits["train"][0].max() == 1.0


def test_digits_split_fixed():
    first, second = data.load_digits(), data.load_digits()
    np.testing.assert_array_equal(first["test"][1], second["test"][1])


def test_shakespeare_splits():
    splits, vocab = data.load_shakespeare()
    total = sum(len(v) for v in splits.values())
    assert total == 1_110_630
    assert len(splits["val"]) == int(0.05 * total)
    assert max(int(v.max()) for v in splits.values()) == len(vocab) - 1
    assert vocab[0] == "\n"


def test_shakespeare_layout():
    """The shipped corpus starts in the Tiny Shakespeare layout."""
    text = lzma.decompress(data.SHAKESPEARE_FILE.read_bytes()).decode("ascii")
    assert text.startswith("BERNARDO:\nWho's there?\n\nFRANCISCO:\n")


def test_batch_indices_cover_epoch():
    idx = data.batch_indices(10, 5, 2, seed=0)
    assert sorted(idx.ravel().tolist()) == list(range(10))


def write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_read_idx_roundtrip(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", array)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "a.gz"), array)


def test_read_idx_rejects_float(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(bytes([0, 0, 0x0D, 1, 0, 0, 0, 1]) + b"\0\0\0\0")
    with pytest.raises(ValueError, match="not an IDX file of unsigned bytes"):
        data.read_idx(path)


def test_fashion_mnist_fake_folder(tmp_path):
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (5100, 28, 28)))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, 5100))
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (7, 28, 28)))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, 7))
    splits = data.load_fashion_mnist(tmp_path)
    assert {k: len(v[1]) for k, v in splits.items()} == {"train": 100, "val": 5000, "test": 7}
    assert splits["test"][0].shape == (7, 1, 28, 28)


def test_fashion_mnist_missing_names_package(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        data.load_fashion_mnist(tmp_path)


def test_shakespeare_text_sha256():
    """The shipped corpus is the text that benchmarks/data/README.md documents."""
    import hashlib

    raw = lzma.decompress(data.SHAKESPEARE_FILE.read_bytes())
    assert hashlib.sha256(raw).hexdigest() == (
        "8c98825b691b2abb4d9fe8c0f22cae1f8f64df3fb071f3a666ef86e0ab33c2a4"
    )
