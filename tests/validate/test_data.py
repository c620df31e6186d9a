"""Data: IDX reading, Fashion-MNIST, the byte corpus and the deterministic batch order."""

import gzip
import hashlib
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from laws.errors import InputError
from tests.components import require
from validate.data import (
    FASHION_MNIST_DIR,
    epoch_indices,
    load_corpus,
    load_fashion_mnist,
    read_idx,
    stdlib_sources,
)


def test_read_idx_of_a_hand_made_file(tmp_path):
    # Header: two zero bytes, type 0x08 (unsigned byte), 2 dimensions, then 2 x 3 (big-endian).
    raw = bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(6))
    path = tmp_path / "x-idx2-ubyte.gz"
    path.write_bytes(gzip.compress(raw))
    assert read_idx(path).tolist() == [[0, 1, 2], [3, 4, 5]]
    path.write_bytes(gzip.compress(raw[:-1]))
    with pytest.raises(InputError, match="holds 5 bytes"):
        read_idx(path)


def test_missing_fashion_mnist_says_how_to_install_it(tmp_path):
    with pytest.raises(InputError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path)


def test_fashion_mnist_has_the_published_sizes():
    if not FASHION_MNIST_DIR.is_dir():
        require("Fashion-MNIST", "dataset-fashion-mnist is not installed")
    images = load_fashion_mnist()
    assert images.train_images.shape == (60000, 1, 28, 28)
    assert images.test_images.shape == (10000, 1, 28, 28)
    # Balanced classes: 6000 training and 1000 test images of each of the 10.
    assert torch.bincount(images.train_labels).tolist() == [6000] * 10
    assert torch.bincount(images.test_labels).tolist() == [1000] * 10


def test_corpus_from_a_file_records_its_hash(tmp_path):
    path = tmp_path / "text.txt"
    path.write_bytes(b"hello world\n" * 200)
    corpus = load_corpus(path)
    assert corpus.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert bytes(corpus.data.tolist()) == path.read_bytes()
    with pytest.raises(InputError, match="cannot read"):
        load_corpus(tmp_path / "absent.txt")


def test_stdlib_corpus_is_python_source():
    sources = stdlib_sources()
    assert sources == sorted(sources) and all(p.suffix == ".py" for p in sources)
    assert any(p.name == "os.py" for p in sources)
    assert not any("site-packages" in Path(p).parts for p in sources)


@settings(max_examples=40, deadline=None)
@given(size=st.integers(1, 30), start=st.integers(0, 100), count=st.integers(1, 80))
def test_epoch_order_is_a_sequence_of_permutations(size, start, count):
    everything = epoch_indices(size, seed=3, position=0, count=start + count)
    assert torch.equal(epoch_indices(size, 3, start, count), everything[start:])
    for epoch in range(len(everything) // size):
        assert sorted(everything[epoch * size : (epoch + 1) * size].tolist()) == list(range(size))
