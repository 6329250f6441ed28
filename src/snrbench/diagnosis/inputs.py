"""Reading a user's model and data for :func:`snrbench.diagnose`.

Models (:func:`read_models`), each turned into an :class:`~snrbench.core.model.RBM` with ``W`` of shape
``(n_visible, n_hidden)``, visible bias ``a`` (n,) and hidden bias ``b`` (m,):

* an :class:`RBM`, a tuple ``(W, a, b)`` or a mapping of arrays (``W``/``weight``/``weights``,
  ``a``/``vbias``/``visible_bias``, ``b``/``hbias``/``hidden_bias``), such as a torch state dict;
* ``.npz`` files holding those keys and optionally ``units`` (snrbench checkpoints are such files);
* ``.pt``/``.pth`` torch state dicts (loaded with ``weights_only=True``: no code runs);
* scikit-learn ``BernoulliRBM`` objects and their joblib/pickle files (``components_`` is
  ``(m, n)``; it is transposed), with the ``sklearn`` extra installed (``pip install
  'snrbench[sklearn]'``: scikit-learn and joblib; the error says so when they are missing).
  Unpickling runs code: open only files you trust;
* ``rbms`` HDF5 training archives (``.h5``/``.hdf5``): every saved ``update_<k>`` group, or those
  asked for, with ``params/weight_matrix`` ``(n, m)``, ``params/vbias``, ``params/hbias`` (older
  archives: the same arrays directly under ``update_<k>``); ``model_type`` must be ``BBRBM``.

A weight matrix stored the other way round, ``(m, n)`` against biases of lengths n and m, is
transposed. Data (:func:`read_data`): ``.npy``, ``.npz`` (one array, or the key ``data``/``samples``/
``X``), ``.csv`` (numbers, optional header row) or HDF5 with a ``samples`` dataset; rows are
configurations, values in [0, 1] for binary units (fractions are used as given in the data term of the
gradient) or {−1, +1} for spins. Every malformed input raises :class:`InputError` naming the file,
the key and the expected shape.
"""
from __future__ import annotations

import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.model import RBM

__all__ = ["InputError", "NamedModel", "read_models", "read_data"]

_W_KEYS = ("W", "weight", "weights", "weight_matrix")
_A_KEYS = ("a", "vbias", "visible_bias", "v_bias", "bias_visible")
_B_KEYS = ("b", "hbias", "hidden_bias", "h_bias", "bias_hidden")
_DATA_KEYS = ("data", "samples", "X", "x", "v")
_UNITS = ("binary", "spin")


class InputError(ValueError):
    """A model or data input that cannot be used; the message names the file, the key and the expected shape."""


@dataclass(frozen=True)
class NamedModel:
    """One model to diagnose: ``label`` (e.g. ``update 128``), the RBM, and the training update if known."""

    label: str
    rbm: RBM
    update: int | None = None


def _find(arrays, keys, where: str, what: str):
    for k in keys:
        if k in arrays:
            return k, arrays[k]
    raise InputError(f"{where}: no {what} (looked for the keys {', '.join(keys)}; found {', '.join(map(str, arrays)) or 'none'})")


def _numeric(x, where: str, key: str, ndim: int) -> np.ndarray:
    try:
        arr = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
        arr = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: key {key!r} is not numeric ({exc})") from None
    if arr.ndim != ndim:
        want = "(n_visible, n_hidden)" if ndim == 2 else "a vector"
        raise InputError(f"{where}: key {key!r} has shape {arr.shape}; expected {want}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{where}: key {key!r} holds non-finite values")
    return arr


def _from_arrays(arrays, where: str, units: str | None) -> RBM:
    kw, W = _find(arrays, _W_KEYS, where, "weight matrix")
    ka, a = _find(arrays, _A_KEYS, where, "visible bias")
    kb, b = _find(arrays, _B_KEYS, where, "hidden bias")
    W, a, b = _numeric(W, where, kw, 2), _numeric(a, where, ka, 1), _numeric(b, where, kb, 1)
    return _oriented(W, a, b, where, (kw, ka, kb), _units(arrays, where, units))


def _oriented(W, a, b, where, keys, units) -> RBM:
    n, m = len(a), len(b)
    if W.shape != (n, m):
        if W.shape == (m, n):
            W = W.T
        else:
            raise InputError(f"{where}: key {keys[0]!r} has shape {W.shape}; expected (n_visible, n_hidden) = ({n}, {m}) "
                             f"from {keys[1]!r} ({n},) and {keys[2]!r} ({m},)")
    return RBM(W, a, b, units)


def _units(arrays, where: str, units: str | None) -> str:
    stored = arrays.get("units") if hasattr(arrays, "get") else None
    if stored is not None:
        stored = str(np.asarray(stored).reshape(-1)[0]) if np.asarray(stored).size else ""
        if stored not in _UNITS:
            raise InputError(f"{where}: key 'units' is {stored!r}; expected one of {_UNITS}")
        if units is not None and units != stored:
            raise InputError(f"{where}: key 'units' says {stored!r} but units={units!r} was asked for")
        return stored
    units = units or "binary"
    if units not in _UNITS:
        raise InputError(f"units must be one of {_UNITS}, got {units!r}")
    return units


def _sklearn(obj, where: str, units: str | None) -> RBM:
    if units not in (None, "binary"):
        raise InputError(f"{where}: a scikit-learn BernoulliRBM has binary units, not {units!r}")
    try:
        W = _numeric(obj.components_, where, "components_", 2)  # (m, n)
        a = _numeric(obj.intercept_visible_, where, "intercept_visible_", 1)
        b = _numeric(obj.intercept_hidden_, where, "intercept_hidden_", 1)
    except AttributeError as exc:
        raise InputError(f"{where}: the BernoulliRBM is not fitted ({exc})") from None
    if W.shape != (len(b), len(a)):
        raise InputError(f"{where}: components_ has shape {W.shape}; expected (n_components, n_features) = "
                         f"({len(b)}, {len(a)})")
    return RBM(W.T.copy(), a, b, "binary")


def _is_sklearn_rbm(obj) -> bool:
    return type(obj).__name__ == "BernoulliRBM" and hasattr(obj, "get_params")


def _update_number(name: str) -> int | None:
    m = re.fullmatch(r"update_(\d+)", name)
    return int(m.group(1)) if m else None


def _rbms_archive(path: Path, updates, units: str | None) -> list[NamedModel]:
    import h5py

    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"{path}: not a readable HDF5 file ({exc})") from None
    with fh:
        saved = sorted((u, k) for k in fh.keys() if (u := _update_number(k)) is not None)
        if not saved:
            raise InputError(f"{path}: no 'update_<k>' groups (an rbms training archive holds "
                             f"update_<k>/params/weight_matrix, vbias, hbias); found keys {sorted(fh.keys())}")
        kind = fh["model_type"][()] if "model_type" in fh else b"BBRBM"
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        if kind != "BBRBM":
            raise InputError(f"{path}: key 'model_type' is {kind!r}; only Bernoulli–Bernoulli RBMs ('BBRBM') are read")
        have = dict(saved)
        if updates is not None:
            missing = [u for u in updates if u not in have]
            if missing:
                raise InputError(f"{path}: update(s) {missing} not saved; saved updates: {[u for u, _ in saved]}")
            saved = [(u, have[u]) for u in updates]
        out = []
        for u, key in saved:
            group = fh[key]["params"] if "params" in fh[key] else fh[key]  # older archives: arrays under update_<k>/
            params = {k: group[k][()] for k in ("weight_matrix", "vbias", "hbias") if k in group}
            out.append(NamedModel(f"update {u}", _from_arrays(params, f"{path}:{group.name}", units), u))
    return out


def _load_file(path: Path, units: str | None, updates) -> list[NamedModel]:
    suffix = path.suffix.lower()
    if not path.is_file():
        raise InputError(f"{path}: no such model file")
    if suffix in (".h5", ".hdf5", ".hdf"):
        return _rbms_archive(path, updates, units)
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: not a readable .npz file ({exc})") from None
        return [NamedModel(path.stem, _from_arrays(arrays, str(path), units))]
    if suffix in (".pt", ".pth"):
        import torch

        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many kinds (UnpicklingError, RuntimeError, …)
            raise InputError(f"{path}: not a torch state dict loadable with weights_only=True ({exc})") from None
        return [NamedModel(path.stem, _from_object(obj, str(path), units))]
    if suffix in (".joblib", ".pkl", ".pickle"):
        try:
            if suffix == ".joblib":
                import joblib

                obj = joblib.load(path)
            else:
                with open(path, "rb") as fh:
                    obj = pickle.load(fh)
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] not in ("sklearn", "joblib", "scipy", "threadpoolctl"):
                raise InputError(f"{path}: could not unpickle (ModuleNotFoundError: {exc})") from None
            raise InputError(f"{path}: reading a scikit-learn model needs scikit-learn and joblib, which the "
                             f"'sklearn' extra installs: pip install 'snrbench[sklearn]' ({exc})") from None
        except Exception as exc:
            raise InputError(f"{path}: could not unpickle ({type(exc).__name__}: {exc})") from None
        return [NamedModel(path.stem, _from_object(obj, str(path), units))]
    raise InputError(f"{path}: unknown model format {suffix!r}; expected .npz, .h5/.hdf5 (rbms archive), "
                     ".pt/.pth (state dict), .joblib/.pkl (scikit-learn BernoulliRBM)")


def _from_object(obj: Any, where: str, units: str | None) -> RBM:
    if isinstance(obj, RBM):
        if units is not None and units != obj.units:
            raise InputError(f"{where}: the RBM has {obj.units} units, not {units!r}")
        return obj
    if _is_sklearn_rbm(obj):
        return _sklearn(obj, where, units)
    if isinstance(obj, (tuple, list)) and len(obj) == 3:
        return _from_arrays(dict(zip("Wab", obj)), where, units)
    if isinstance(obj, dict):
        return _from_arrays(obj, where, units)
    raise InputError(f"{where}: a {type(obj).__name__} is not a model (expected an RBM, (W, a, b), a mapping of "
                     "W/a/b arrays, or a fitted scikit-learn BernoulliRBM)")


def read_models(model, units: str | None = None, updates=None) -> list[NamedModel]:
    """The model(s) in ``model`` (a path or an object; see the module docstring), one per saved update
    for a training archive (``updates``: only these). ``units``: ``"binary"`` or ``"spin"`` where the
    input does not say (default binary)."""
    if isinstance(model, (str, Path)):
        return _load_file(Path(model), units, None if updates is None else [int(u) for u in updates])
    if updates is not None:
        raise InputError("updates= applies to an rbms training archive only")
    return [NamedModel(type(model).__name__, _from_object(model, f"model ({type(model).__name__})", units))]


def _read_data_file(path: Path) -> np.ndarray:
    suffix = path.suffix.lower()
    if not path.is_file():
        raise InputError(f"{path}: no such data file")
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                if len(z.files) == 1:
                    return z[z.files[0]]
                key = next((k for k in _DATA_KEYS if k in z.files), None)
                if key is None:
                    raise InputError(f"{path}: {len(z.files)} arrays and none named {', '.join(_DATA_KEYS)}; "
                                     f"found {', '.join(z.files)}")
                return z[key]
        if suffix == ".csv":
            import pandas as pd

            df = pd.read_csv(path, header=None)
            if not all(pd.api.types.is_numeric_dtype(t) for t in df.dtypes):  # a header row
                df = pd.read_csv(path)
            return df.to_numpy()
        if suffix in (".h5", ".hdf5", ".hdf"):
            import h5py

            with h5py.File(path, "r") as fh:
                if "samples" not in fh:
                    raise InputError(f"{path}: no dataset 'samples' (expected samples of shape (N, n_visible)); "
                                     f"found keys {sorted(fh.keys())}")
                return fh["samples"][()]
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{path}: could not read ({type(exc).__name__}: {exc})") from None
    raise InputError(f"{path}: unknown data format {suffix!r}; expected .npy, .npz, .csv or .h5/.hdf5 with 'samples'")


def read_data(data, n_visible: int, units: str = "binary") -> np.ndarray:
    """Training data as a float64 array ``(N, n_visible)``, checked against the model's units."""
    where = str(data) if isinstance(data, (str, Path)) else f"data ({type(data).__name__})"
    x = _read_data_file(Path(data)) if isinstance(data, (str, Path)) else data
    try:
        x = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: not numeric ({exc})") from None
    if x.ndim == 1 and x.size == n_visible:
        x = x[None, :]
    if x.ndim > 2 and int(np.prod(x.shape[1:])) == n_visible:
        x = x.reshape(len(x), -1)  # images (N, 28, 28) → (N, 784)
    if x.ndim != 2 or x.shape[1] != n_visible or len(x) == 0:
        raise InputError(f"{where}: data has shape {x.shape}; expected (N, {n_visible}) for a model with {n_visible} "
                         "visible units")
    if not np.all(np.isfinite(x)):
        raise InputError(f"{where}: data holds non-finite values")
    lo, hi = (0.0, 1.0) if units == "binary" else (-1.0, 1.0)
    if x.min() < lo or x.max() > hi:
        raise InputError(f"{where}: data values span [{x.min():g}, {x.max():g}]; {units} units need values in "
                         f"[{lo:g}, {hi:g}]" + (" (scale 0–255 images by 1/255)" if x.max() > 1 else ""))
    if units == "spin" and not np.all(np.isin(x, (-1.0, 1.0))):
        raise InputError(f"{where}: spin data must be −1 or +1")
    return x
