"""The three data sources, all offline, and their deterministic batch order.

- Fashion-MNIST (images, 28x28, 10 classes) from Debian's ``dataset-fashion-mnist`` package.
- A byte-level text corpus: the running interpreter's standard-library ``.py`` files, or any
  file; its SHA-256 is recorded because another Python version gives another corpus.
- A teacher-student regression task: a fixed random teacher MLP labels Gaussian inputs.

Batches are a pure function of (seed, position), where position counts the training samples
consumed so far. A resumed run continues at its saved position and sees exactly the samples it
would have seen; under DDP every rank draws the same global batch and keeps its own slice.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

import torch

from laws.errors import InputError
from validate.models.mlp import Mlp

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                  "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
# Pixel mean and standard deviation of the Fashion-MNIST training set, after dividing by 255.
_FASHION_MEAN, _FASHION_STD = 0.2860, 0.3530


@dataclass(frozen=True)
class ImageSet:
    """Images as uint8 (N, 1, H, W) with int64 labels; ``source`` names the files read."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    source: dict = field(default_factory=dict)


def read_idx(path: Path) -> torch.Tensor:
    """An IDX file (gzipped or not) as a uint8 tensor of the shape its header gives."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise InputError(f"{path}: not an unsigned-byte IDX file")
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    body = raw[4 + 4 * dims :]
    if len(body) != torch.Size(shape).numel():
        raise InputError(f"{path}: header says shape {shape}, but holds {len(body)} bytes")
    return torch.frombuffer(bytearray(body), dtype=torch.uint8).view(shape)


def load_fashion_mnist(data_dir: str | Path | None = None) -> ImageSet:
    """Fashion-MNIST from ``data_dir`` (default: where the Debian package puts it)."""
    folder = Path(data_dir) if data_dir else FASHION_MNIST_DIR
    missing = [name for name in FASHION_FILES if not (folder / name).is_file()]
    if missing:
        raise InputError(
            f"Fashion-MNIST not found in {folder} (missing {missing[0]}); install it with "
            "`sudo apt-get install dataset-fashion-mnist` or pass --data-dir DIR holding the "
            f"four files {', '.join(FASHION_FILES)}"
        )
    train_x, train_y, test_x, test_y = (read_idx(folder / name) for name in FASHION_FILES)
    return ImageSet(train_x.unsqueeze(1), train_y.long(), test_x.unsqueeze(1), test_y.long(),
                    source={"dataset": "fashion-mnist", "dir": str(folder)})


def normalize_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 Fashion-MNIST pixels to zero-mean, unit-variance floats."""
    return (images.float() / 255 - _FASHION_MEAN) / _FASHION_STD


@dataclass(frozen=True)
class ByteCorpus:
    """Bytes as a uint8 tensor, their SHA-256 and where they came from."""

    data: torch.Tensor
    sha256: str
    source: str


def stdlib_sources() -> list[Path]:
    """The standard library's ``.py`` files of the running interpreter, in a fixed order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    return sorted(
        path for path in root.rglob("*.py")
        if not {"site-packages", "dist-packages"} & set(path.relative_to(root).parts)
    )


def load_corpus(path: str | Path | None = None) -> ByteCorpus:
    """The bytes of ``path``, or of the standard library's sources when ``path`` is None."""
    if path is None:
        raw = b"".join(source.read_bytes() for source in stdlib_sources())
        where = f"stdlib of Python at {sysconfig.get_paths()['stdlib']}"
    else:
        try:
            raw = Path(path).read_bytes()
        except OSError as err:
            raise InputError(f"--corpus {path}: cannot read it ({err.strerror})") from None
        where = str(path)
    if len(raw) < 1024:
        raise InputError(f"corpus {where} has {len(raw)} bytes; need at least 1024")
    data = torch.frombuffer(bytearray(raw), dtype=torch.uint8)
    return ByteCorpus(data, hashlib.sha256(raw).hexdigest(), where)


def batch_generator(seed: int, position: int) -> torch.Generator:
    """The random stream of the batch that starts at sample ``position``."""
    return torch.Generator().manual_seed(seed * 1_000_003 + position)


@functools.lru_cache(maxsize=2)  # a batch reads the current epoch's order, rarely the next
def _epoch_permutation(size: int, seed: int, epoch: int) -> torch.Tensor:
    return torch.randperm(size, generator=batch_generator(seed, -1 - epoch))


def epoch_indices(size: int, seed: int, position: int, count: int) -> torch.Tensor:
    """Samples ``position .. position+count`` of an endless sequence of shuffled epochs.

    >>> order = epoch_indices(5, seed=0, position=0, count=10)
    >>> sorted(order[:5].tolist()) == sorted(order[5:].tolist()) == [0, 1, 2, 3, 4]
    True
    >>> bool((epoch_indices(5, 0, 3, 4) == order[3:7]).all())
    True
    """
    parts, end = [], position + count
    while position < end:
        epoch, offset = divmod(position, size)
        permutation = _epoch_permutation(size, seed, epoch)
        take = min(size - offset, end - position)
        parts.append(permutation[offset : offset + take])
        position += take
    return torch.cat(parts)


class Teacher:
    """A fixed random MLP that labels N(0, I) inputs; students learn it by mean squared error."""

    def __init__(self, d_in: int = 16, hidden: int = 64, d_out: int = 4, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.d_in = d_in
        with torch.random.fork_rng():  # leave the run's random stream untouched
            self.net = Mlp(d_in, hidden, d_out).requires_grad_(False)
        for param in self.net.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * param.shape[-1] ** -0.5)

    def sample(self, count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        inputs = torch.randn(count, self.d_in, generator=generator)
        return inputs, self.net(inputs)
