"""Gradient observables of an RBM (Rao–Blackwellised) and the magnetization.

Weight observables ``f_ij(v) = v_i · E[h_j | v]`` (n·m of them, row-major in (i, j)); with
``biases=True`` also ``v_i`` (n) and ``E[h_j | v]`` (m). The true gradient is
``g = mean_data f − E_p f``. Under spin-flip symmetry the weight observables are even
(``f(−v) = f(v)``) and the bias observables odd; ``parity`` records that, so the exact solver can
place each observable in its symmetry sector exactly.
"""
from __future__ import annotations

import numpy as np

from .model import RBM

__all__ = ["gradient_observables", "observable_parity", "magnetization", "OBSERVABLE_SETS"]

OBSERVABLE_SETS = ("weights", "weights+biases")


def gradient_observables(rbm: RBM, v: np.ndarray, which: str = "weights") -> np.ndarray:
    """Observables for each row of ``v``: shape ``(len(v), n_obs)``, dimensionless."""
    if which not in OBSERVABLE_SETS:
        raise ValueError(f"observables must be one of {OBSERVABLE_SETS}, got {which!r}")
    mh = rbm.mean_from_field(rbm.hidden_field(v))
    f = (v[:, :, None] * mh[:, None, :]).reshape(len(v), -1)
    if which == "weights+biases":
        f = np.concatenate([f, v, mh], axis=1)
    return f


def observable_parity(rbm: RBM, which: str = "weights") -> np.ndarray:
    """+1 for observables even under ``v → −v`` (with the symmetric model), −1 for odd ones."""
    n, m = rbm.W.shape
    par = [np.ones(n * m)]
    if which == "weights+biases":
        par += [-np.ones(n), -np.ones(m)]
    return np.concatenate(par)


def magnetization(v: np.ndarray) -> np.ndarray:
    """``m(v) = mean_i v_i`` as a one-column observable, shape ``(len(v), 1)``."""
    return v.mean(axis=1, keepdims=True)
