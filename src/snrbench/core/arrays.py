"""A model as plain arrays and back (for handing a cell to another process through a ``.npz``).

RBM: ``kind = "rbm"``, ``W`` (n × m), ``a`` (n), ``b`` (m), ``units``; Ising model: ``kind =
"ising-model"``, ``J`` (N × N), ``h`` (N). The round trip is exact (float64 arrays, no conversion).
"""
from __future__ import annotations

import numpy as np

from .ising import IsingModel
from .model import RBM

__all__ = ["model_arrays", "model_from_arrays"]


def model_arrays(model: RBM | IsingModel) -> dict[str, np.ndarray]:
    if isinstance(model, IsingModel):
        return dict(kind=np.array("ising-model"), J=model.J, h=model.h)
    if isinstance(model, RBM):
        return dict(kind=np.array("rbm"), W=model.W, a=model.a, b=model.b, units=np.array(model.units))
    raise TypeError(f"model_arrays() needs an RBM or IsingModel, got {type(model).__name__}")


def model_from_arrays(arrays) -> RBM | IsingModel:
    kind = str(arrays["kind"])
    if kind == "ising-model":
        return IsingModel(arrays["J"], arrays["h"])
    if kind == "rbm":
        return RBM(arrays["W"], arrays["a"], arrays["b"], str(arrays["units"]))
    raise ValueError(f"unknown model kind {kind!r} (expected 'rbm' or 'ising-model')")
